"""Hosts (one.host.*, one.hostpool.info)."""

from ..constants import HOST_DISABLED, HOST_INIT, HOST_MONITORED, HOST_OFFLINE
from ..core import Oned
from ..errors import ALLOCATE, INTERNAL, OnedError
from ..rpc import define_reads, refuse_taken_name, rpc
from ..template import terase, tget, tset
from ..util import now


# ---------------------------------------------------------------- hosts
define_reads("host", "one.hostpool.info", "one.host.info", Oned.host_xml)


@rpc("one.host.allocate", "s,s,s,i")
def host_allocate(o, user, m, name, im_mad, vm_mad, cluster_id):
    cluster = o.cluster_for_allocate(cluster_id)
    if not name or len(name) > 63:
        raise OnedError(ALLOCATE, "Error allocating a new host. Invalid "
                        "HOSTNAME, HOSTNAME length should be greater than 1, "
                        "but smaller than 64 characters")
    refuse_taken_name(o, "host", name, ALLOCATE, "Error allocating a new host. ")
    oid = o.store.new_id("host")
    has_system_ds = any(cluster["id"] in d["clusters"] and d["type"] == 1
                        for d in o.store.all("datastore"))
    o.store.put("host", {
        "id": oid, "name": name, "state": HOST_INIT, "prev_state": HOST_INIT,
        "im_mad": im_mad, "vm_mad": vm_mad, "cluster_id": cluster["id"],
        "share": {},
        "ds_share": ({"DISK_USAGE": 0, "FREE_DISK": 0, "MAX_DISK": 0,
                      "USED_DISK": 0} if has_system_ds else None),
        "template": [["IM_MAD", im_mad], ["RESERVED_CPU", ""],
                     ["RESERVED_MEM", ""], ["VM_MAD", vm_mad]],
        "monitor_due": None})
    o.schedule_monitor(o.store.get("host", oid), now() + o.opts.monitor_interval)
    return oid


@rpc("one.host.delete", "i")
def host_delete(o, user, m, oid):
    o.get("host", oid)
    o.store.remove("host", oid)
    return oid


@rpc("one.host.status", "i,i")
def host_status(o, user, m, oid, status):
    if status not in (0, 1, 2):
        raise OnedError(INTERNAL, "Wrong status code")
    host = o.get("host", oid)
    if status == 0:
        # Host::enable: a disabled host that has been monitored is
        # MONITORED at once, any other one is INIT until its next probe
        share = host.get("share") or {}
        state = HOST_MONITORED if host["state"] == HOST_DISABLED and \
            share.get("TOTAL_CPU", 0) > 0 else HOST_INIT
        host["state"] = host["prev_state"] = state
        o.schedule_monitor(host, now())    # enabling triggers a probe
    elif status == 1:
        host["state"] = host["prev_state"] = HOST_DISABLED
        if host.get("monitor_due") is None:
            o.schedule_monitor(host, now() + o.opts.monitor_interval)
    else:
        # Host::offline: the capacity and the probe's figures are dropped
        host["state"] = host["prev_state"] = HOST_OFFLINE
        share = host.setdefault("share", {})
        for key in ("TOTAL_CPU", "TOTAL_MEM", "MAX_CPU", "MAX_MEM"):
            share[key] = 0
        for key in ("TOTALCPU", "TOTALMEMORY", "FREECPU", "FREEMEMORY",
                    "USEDCPU", "USEDMEMORY"):
            terase(host["template"], key)
        o.schedule_monitor(host, None)
    o.store.touch("host", host)
    return oid


def _post_update_host(o):
    """Host::post_update_template: IM_MAD and VM_MAD given in the template
    become the host's, and the reserved capacity is applied."""
    def post(host):
        tpl = host["template"]
        for key, fld in (("IM_MAD", "im_mad"), ("VM_MAD", "vm_mad")):
            if tget(tpl, key):
                host[fld] = tget(tpl, key)
            tset(tpl, key, host[fld])
        o.apply_reserved(host)
        o.rearm_monitor(host)       # the next probe rewrites what it owns
    return post


@rpc("one.host.update", "i,s,?i")
def host_update(o, user, m, oid, text, utype=0):
    o.update_template("host", oid, text, utype, _post_update_host(o))
    return oid
