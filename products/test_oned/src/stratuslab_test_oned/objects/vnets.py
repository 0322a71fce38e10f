"""Virtual networks and their address ranges (one.vn.*, one.vnpool.info)."""

from ..constants import VLAN_VN_MADS, VN_INIT, VN_LOCK_CREATE, VN_LOCK_DELETE, VN_MAD_CONF
from ..core import Oned, next_ar_id, parse_bridge_type
from ..errors import INTERNAL, OnedError
from ..rpc import define_reads, named_allocate, rpc
from ..template import parse_or_fail, terase, tget, tset, tvectors
from ..util import now


# ------------------------------------------------------ virtual networks
# in the pool, ARs without MAC_END, IP_END and LEASES, as oned
define_reads("vnet", "one.vnpool.info", "one.vn.info", Oned.vnet_xml,
             pool_render=lambda o, v: o.vnet_xml(v, extended=False),
             filtered=True)


@rpc("one.vn.allocate", "s,i")
def vn_allocate(o, user, m, text, cluster_id):
    tpl, cluster, name = named_allocate(
        o, "vnet", text, cluster_id,
        "No NAME in template for Virtual Network.")
    vn_mad = tget(tpl, "VN_MAD", "")
    if not vn_mad:
        raise OnedError(INTERNAL, "No VN_MAD in template for Virtual Network.")
    if vn_mad not in VN_MAD_CONF:
        raise OnedError(INTERNAL, 'VN_MAD named "%s" is not defined in '
                                  'oned.conf' % vn_mad)
    bridge_type = parse_bridge_type(vn_mad, tget(tpl, "BRIDGE_TYPE", ""))
    # the address ranges are read when the driver answers (_vnet_ready):
    # a wrong one does not fail the allocate, it puts the network in ERROR
    pending = tvectors(tpl, "AR")
    oid = o.store.new_id("vnet")
    terase(tpl, "NAME")
    vlan_id = tget(tpl, "VLAN_ID", "")
    vlan_auto = 0
    if not vlan_id and vn_mad in VLAN_VN_MADS and \
            tget(tpl, "AUTOMATIC_VLAN_ID", "YES").upper() != "NO":
        vlan_id = o.free_vlan()
        vlan_auto = 1
    bridge = tget(tpl, "BRIDGE", "")
    if not bridge:
        bridge = ("onebr.%s" % vlan_id) if vn_mad in VLAN_VN_MADS and \
            vlan_id else "onebr%d" % oid
    vn = {
        "id": oid, "uid": user["id"], "gid": user["gid"], "name": name,
        "clusters": [cluster["id"]], "bridge": bridge,
        "bridge_type": bridge_type,
        "state": VN_LOCK_CREATE, "prev_state": VN_INIT, "vn_mad": vn_mad,
        "phydev": tget(tpl, "PHYDEV", ""), "vlan_id": vlan_id,
        "outer_vlan_id": tget(tpl, "OUTER_VLAN_ID", ""),
        "vlan_auto": vlan_auto, "outer_vlan_auto": 0,
        "template": tpl, "ars": [], "pending_ars": pending,
        "due": now() + o.opts.vnet_driver_delay,
    }
    tset(tpl, "BRIDGE", vn["bridge"])
    tset(tpl, "BRIDGE_TYPE", vn["bridge_type"])
    tset(tpl, "PHYDEV", vn["phydev"])
    if tget(tpl, "SECURITY_GROUPS") is None:
        tset(tpl, "SECURITY_GROUPS", "0")
    tset(tpl, "VN_MAD", vn_mad)
    o.store.put("vnet", vn)
    return oid


@rpc("one.vn.update", "i,s,?i")
def vn_update(o, user, m, oid, text, utype=0):
    o.update_template("vnet", oid, text, utype, o.post_update_vnet)
    return oid


def _first_ar(text):
    tpl = parse_or_fail(text)
    vectors = tvectors(tpl, "AR")
    return vectors[0] if vectors else None


@rpc("one.vn.add_ar", "i,s")
def vn_add_ar(o, user, m, oid, text):
    vn = o.get("vnet", oid)
    o.vnet_ready_or_fail(vn, m)
    vector = _first_ar(text)
    if vector is None:
        raise OnedError(INTERNAL, "Wrong AR definition. AR vector attribute "
                                  "is missing.")
    ar = o.build_ar(vector, next_ar_id(vn))
    vn["ars"].append(ar)
    o.store.touch("vnet", vn)
    return oid


# attributes update_ar never takes from the request (IP/MAC/TYPE ignored)
_AR_FIXED = ("AR_ID", "IP", "MAC", "TYPE", "NEXT_INDEX", "SHARED",
             "GLOBAL_PREFIX", "ULA_PREFIX", "PARENT_NETWORK_AR_ID")
_AR_COMPUTED = ("MAC_END", "IP_END", "USED_LEASES", "LEASES", "ALLOCATED",
                "IP6_ULA", "IP6_ULA_END", "IP6_GLOBAL", "IP6_GLOBAL_END")


@rpc("one.vn.update_ar", "i,s")
def vn_update_ar(o, user, m, oid, text):
    vn = o.get("vnet", oid)
    o.vnet_ready_or_fail(vn, m)
    vector = _first_ar(text)
    values = dict(vector or [])
    if not values.get("AR_ID"):
        raise OnedError(INTERNAL, "AR/AR_ID attribute is missing.")
    target = None
    for ar in vn["ars"]:
        if ar["attrs"]["AR_ID"] == values["AR_ID"].strip():
            target = ar
    if target is None:
        raise OnedError(INTERNAL, "Address Range with ID %s was not found." %
                        values["AR_ID"])
    old = target["attrs"]
    new = {k: old[k] for k in _AR_FIXED if k in old}
    new["SIZE"] = old["SIZE"]
    if "SIZE" in values:
        try:
            size = int(values["SIZE"])
        except ValueError:
            size = -1
        if size < 0:
            raise OnedError(INTERNAL, "Wrong SIZE for address range")
        new["SIZE"] = str(size)
    for key, value in values.items():
        if key not in _AR_FIXED and key not in _AR_COMPUTED and key != "SIZE":
            new[key] = value
    target["attrs"] = new
    o.store.touch("vnet", vn)
    return oid


@rpc("one.vn.rm_ar", "i,i,?b")
def vn_rm_ar(o, user, m, oid, ar_id, force=False):
    vn = o.get("vnet", oid)
    o.vnet_ready_or_fail(vn, m)
    kept = [ar for ar in vn["ars"] if ar["attrs"]["AR_ID"] != str(ar_id)]
    if len(kept) == len(vn["ars"]):
        raise OnedError(INTERNAL, "Address Range does not exist")
    vn["ars"] = kept
    o.store.touch("vnet", vn)
    return oid


@rpc("one.vn.delete", "i")
def vn_delete(o, user, m, oid):
    vn = o.get("vnet", oid)
    if vn["state"] != VN_LOCK_DELETE:
        vn["state"] = vn["prev_state"] = VN_LOCK_DELETE
        vn["ars"] = []
        vn.pop("pending_ars", None)
        vn["due"] = now() + o.opts.vnet_driver_delay
        o.store.touch("vnet", vn)
    return oid
