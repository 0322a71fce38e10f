"""Virtual machines (one.vm.*, one.vmpool.info/infoextended/accounting)."""

import uuid

from ..errors import ACTION, AUTHORIZATION, INTERNAL, RPC_API, OnedError
from ..rpc import DEFAULT_PERMS, _authorize, _is_admin, define_reads, filter_pool, rpc
from ..template import (
    _vector_set, cdata, parse_or_fail, perms_xml, template_xml, tget, tset, tvectors)
from ..util import int_to_ip, int_to_mac, ip_to_int, mac_to_int
from ..wire import _xml_text


# --------------------------------------------------------------------------
# Virtual machines, VM templates and accounting
#
# Held to tests/fixtures/opennebula/samples-accounting-7.4.0 (README there): the VM
# and HISTORY documents, who is recorded as the actor of an action, how
# poweroff shows (RETIME set, record still open), and one.vmpool.accounting's
# overlap test, which never clips records.  There is no scheduler and no
# driver delay: one.vm.deploy places a VM and it is RUNNING when the call
# returns; actions complete within the call.  Times come from the test clock
# (testoned.clock.*, below), so hours of VM time can be scripted.
# --------------------------------------------------------------------------

VM_STATES = ["INIT", "PENDING", "HOLD", "ACTIVE", "STOPPED", "SUSPENDED",
             "DONE", "FAILED", "POWEROFF", "UNDEPLOYED", "CLONING",
             "CLONING_FAILURE"]
VM_PENDING, VM_HOLD, VM_ACTIVE, VM_STOPPED, VM_SUSPENDED = 1, 2, 3, 4, 5
VM_DONE, VM_POWEROFF, VM_UNDEPLOYED = 6, 8, 9
LCM_PROLOG, LCM_RUNNING, LCM_BOOT_POWEROFF, LCM_BOOT_SUSPENDED = 1, 3, 20, 21
LCM_NAMES = {0: "LCM_INIT", 1: "PROLOG", 2: "BOOT", 3: "RUNNING"}
# VMActions.h numbers of the actions one.vm.action accepts here
VM_ACTIONS = {
    "undeploy": 5, "undeploy-hard": 6, "hold": 7, "release": 8, "stop": 9,
    "suspend": 10, "resume": 11, "reboot": 15, "reboot-hard": 16,
    "poweroff": 19, "poweroff-hard": 20, "terminate": 27,
    "terminate-hard": 28,
}
# oned.conf VM_RESTRICTED_ATTR (the subset the test oned checks)
VM_RESTRICTED = ("CPU_COST", "MEMORY_COST", "DISK_COST", "RAW", "EMULATOR",
                 "USER_PRIORITY", "DEPLOY_ID", "PCI")
VM_RESTRICTED_VECTOR = {"NIC": ("MAC", "VLAN_ID", "BRIDGE", "INBOUND_AVG_BW",
                                "OUTBOUND_AVG_BW"),
                        "DISK": ("TOTAL_BYTES_SEC", "READ_BYTES_SEC",
                                 "WRITE_BYTES_SEC", "TOTAL_IOPS_SEC")}
# attributes that stay in the VM's TEMPLATE; any other goes to USER_TEMPLATE
VM_TEMPLATE_KEYS = {
    "CPU", "VCPU", "MEMORY", "DISK", "NIC", "NIC_ALIAS", "NIC_DEFAULT", "OS",
    "GRAPHICS", "INPUT", "CONTEXT", "FEATURES", "RAW", "PCI", "CPU_MODEL",
    "CPU_COST", "MEMORY_COST", "DISK_COST", "TEMPLATE_ID", "VMID",
    "SUBMIT_ON_HOLD", "SECURITY_GROUP_RULE", "TM_MAD_SYSTEM", "TOPOLOGY",
    "NUMA_NODE", "MEMORY_MAX", "VCPU_MAX", "MEMORY_RESIZE_MODE",
    "VROUTER_ID", "EMULATOR", "AUTOMATIC_REQUIREMENTS",
    "AUTOMATIC_DS_REQUIREMENTS", "AUTOMATIC_NIC_REQUIREMENTS", "VIDEO",
    "HYPERVISOR", "SPICE_OPTIONS", "IMPORTED", "DEPLOY_ID", "SNAPSHOT",
}


def _restricted_attr(tpl):
    for key, value in tpl:
        if isinstance(value, str) and key in VM_RESTRICTED:
            return key
        if isinstance(value, list):
            if key in VM_RESTRICTED:
                return key
            for sub, _ in value:
                if sub in VM_RESTRICTED_VECTOR.get(key, ()):
                    return "%s/%s" % (key, sub)
    return None


def _positive_number(text, integer=False):
    try:
        value = int(text) if integer else float(text)
    except (TypeError, ValueError):
        return False
    return value > 0


def _vm_state_name(vm):
    if vm["state"] == VM_ACTIVE:
        return LCM_NAMES.get(vm["lcm_state"], str(vm["lcm_state"]))
    return VM_STATES[vm["state"]]


def _nic_lease(o, vn, vmid, nic_id):
    """First free address of the network's ARs: (ar_id, ip or None, mac)."""
    leases = vn.setdefault("leases", {})
    for ar in vn["ars"]:
        attrs = ar["attrs"]
        for index in range(int(attrs["SIZE"])):
            key = "%s:%d" % (attrs["AR_ID"], index)
            if key in leases:
                continue
            leases[key] = vmid
            o.store.touch("vnet", vn)
            mac = int_to_mac(mac_to_int(attrs["MAC"]) + index)
            ip = int_to_ip(ip_to_int(attrs["IP"]) + index) \
                if "IP" in attrs else None
            return attrs["AR_ID"], ip, mac
    raise OnedError(INTERNAL, "Cannot get IP/MAC lease from virtual network "
                              "%d." % vn["id"])


def _release_leases(o, vmid):
    for vn in o.store.all("vnet"):
        leases = vn.get("leases") or {}
        mine = [k for k, v in leases.items() if v == vmid]
        for key in mine:
            del leases[key]
        if mine:
            o.store.touch("vnet", vn)


def _build_vm_template(o, vmid, tpl, hold):
    """The VM's TEMPLATE and USER_TEMPLATE as oned 7.4.0 builds them."""
    system, user_tpl = [], []
    for key, value in tpl:
        if key == "NAME":
            continue
        (system if key in VM_TEMPLATE_KEYS else user_tpl).append(
            [key, value if isinstance(value, str) else
             [list(x) for x in value]])
    clusters = None
    nic_id = 0
    for key, value in system:
        if key != "NIC":
            continue
        attrs = dict(value)
        vn = None
        if attrs.get("NETWORK_ID", "").strip().lstrip("-").isdigit():
            vn = o.store.get("vnet", int(attrs["NETWORK_ID"]))
        elif attrs.get("NETWORK"):
            vn = o.store.find_name("vnet", attrs["NETWORK"])
        if vn is None:
            raise OnedError(INTERNAL, "Cannot get virtual network [%s]." % (
                attrs.get("NETWORK_ID") or attrs.get("NETWORK", "")))
        ar_id, ip, mac = _nic_lease(o, vn, vmid, nic_id)
        fields = [("AR_ID", ar_id), ("BRIDGE", vn["bridge"]),
                  ("BRIDGE_TYPE", vn["bridge_type"]),
                  ("CLUSTER_ID", ",".join(str(c) for c in vn["clusters"])),
                  ("IP", ip), ("MAC", mac), ("NAME", "NIC%d" % nic_id),
                  ("NETWORK", vn["name"]), ("NETWORK_ID", str(vn["id"])),
                  ("NIC_ID", str(nic_id)), ("PHYDEV", vn["phydev"]),
                  ("SECURITY_GROUPS",
                   tget(vn["template"], "SECURITY_GROUPS", "0")),
                  ("TARGET", "one-%d-%d" % (vmid, nic_id)),
                  ("VLAN_ID", vn["vlan_id"]), ("VN_MAD", vn["vn_mad"])]
        for sub, sval in fields:
            if sval not in (None, ""):
                _vector_set(value, sub, sval)
        vc = set(vn["clusters"])
        clusters = vc if clusters is None else clusters & vc
        nic_id += 1
    disk_id = 0
    for key, value in system:
        if key != "DISK":
            continue
        attrs = dict(value)
        prefix = attrs.get("DEV_PREFIX") or "sd"
        _vector_set(value, "DEV_PREFIX", prefix)
        _vector_set(value, "DISK_ID", str(disk_id))
        if not attrs.get("TARGET"):
            _vector_set(value, "TARGET", prefix + "abcdefghijklmnopqrstuvwxyz"[
                disk_id % 26])
        disk_id += 1
    os_vec = tvectors(system, "OS")
    if os_vec:
        os_attrs = os_vec[0]
    else:
        os_attrs = []
        system.append(["OS", os_attrs])
    if not dict(os_attrs).get("MACHINE"):
        _vector_set(os_attrs, "MACHINE", "q35")
    _vector_set(os_attrs, "UUID", str(uuid.UUID(int=o.rand.getrandbits(128),
                                                version=4)))
    if nic_id:
        system.append(["SECURITY_GROUP_RULE", [
            ["PROTOCOL", "ALL"], ["RULE_TYPE", "OUTBOUND"],
            ["SECURITY_GROUP_ID", "0"], ["SECURITY_GROUP_NAME", "default"]]])
        system.append(["SECURITY_GROUP_RULE", [
            ["PROTOCOL", "ALL"], ["RULE_TYPE", "INBOUND"],
            ["SECURITY_GROUP_ID", "0"], ["SECURITY_GROUP_NAME", "default"]]])
    if clusters:
        ids = sorted(clusters)
        tset(system, "AUTOMATIC_DS_REQUIREMENTS", "(%s)" % " | ".join(
            '"CLUSTERS/ID" @> %d' % c for c in ids))
        tset(system, "AUTOMATIC_NIC_REQUIREMENTS", "(%s)" % " | ".join(
            '"CLUSTERS/ID" @> %d' % c for c in ids))
        tset(system, "AUTOMATIC_REQUIREMENTS", "(%s) & !(PIN_POLICY = "
             "PINNED)" % " | ".join("CLUSTER_ID = %d" % c for c in ids))
    else:
        tset(system, "AUTOMATIC_REQUIREMENTS", "!(PIN_POLICY = PINNED)")
    if hold:
        tset(system, "SUBMIT_ON_HOLD", "YES")
    tset(system, "VMID", str(vmid))
    return system, user_tpl


def vm_create(o, user, tpl, hold, name=None, restricted_ok=False):
    """one.vm.allocate's checks and object, owner = the caller."""
    if not restricted_ok and not _is_admin(user):
        bad = _restricted_attr(tpl)
        if bad:
            raise OnedError(AUTHORIZATION, "User [%d] : VM Template includes "
                            "a restricted attribute %s." % (user["id"], bad))
    if not _positive_number(tget(tpl, "CPU")):
        raise OnedError(INTERNAL, "CPU attribute must be a positive float or "
                                  "integer value.")
    if not _positive_number(tget(tpl, "MEMORY"), integer=True):
        raise OnedError(INTERNAL, "MEMORY attribute must be a positive "
                                  "integer value.")
    vcpu = tget(tpl, "VCPU")
    if vcpu is not None and not _positive_number(vcpu, integer=True):
        raise OnedError(INTERNAL, "VCPU attribute must be a positive integer "
                                  "value.")
    oid = o.store.new_id("vm")
    try:
        system, user_tpl = _build_vm_template(o, oid, tpl, hold)
    except OnedError:
        _release_leases(o, oid)     # the NICs leased before the failure
        raise
    state = VM_HOLD if hold else VM_PENDING
    vm = {"id": oid, "uid": user["id"], "gid": user["gid"],
          "name": name or tget(tpl, "NAME") or "one-%d" % oid,
          "perms": list(DEFAULT_PERMS), "state": state, "lcm_state": 0,
          "prev_state": state, "prev_lcm_state": 0, "stime": o.clock(),
          "etime": 0, "deploy_id": "", "template": system,
          "user_template": user_tpl, "history": []}
    o.store.put("vm", vm)
    return oid


def _vm_head(o, vm, state, lcm, prev_state, prev_lcm, empty):
    return ("<VM>%s%s<LAST_POLL>0</LAST_POLL>"
            "<STATE>%d</STATE><LCM_STATE>%d</LCM_STATE><PREV_STATE>%d"
            "</PREV_STATE><PREV_LCM_STATE>%d</PREV_LCM_STATE><RESCHED>0"
            "</RESCHED><STIME>%d</STIME><ETIME>%d</ETIME>%s%s%s%s%s") % (
        o.owned_xml(vm), perms_xml(vm["perms"]), state, lcm, prev_state,
        prev_lcm, vm["stime"], vm["etime"],
        _elem("DEPLOY_ID", vm["deploy_id"], empty),
        _elem("MONITORING", "", empty), _elem("SCHED_ACTIONS", "", empty),
        template_xml(vm["template"]),
        _elem("USER_TEMPLATE", "", empty) if not vm["user_template"] else
        template_xml(vm["user_template"], "USER_TEMPLATE"))


def _elem(tag, text, empty):
    """<TAG>text</TAG>; an empty one as oned (<TAG></TAG>) or as libxml
    re-serialises it inside a history record (<TAG/>)."""
    if text == "" and empty == "short":
        return "<%s/>" % tag
    return "<%s>%s</%s>" % (tag, _xml_text(text), tag)


def history_xml(o, h, with_vm):
    return ("<HISTORY><OID>%d</OID><SEQ>%d</SEQ><HOSTNAME>%s</HOSTNAME>"
            "<HID>%d</HID><CID>%d</CID><STIME>%d</STIME><ETIME>%d</ETIME>"
            "<VM_MAD>%s</VM_MAD><TM_MAD>%s</TM_MAD><DS_ID>%d</DS_ID>"
            "<PLAN_ID>-2</PLAN_ID><ACTION_ID>-1</ACTION_ID><PSTIME>%d"
            "</PSTIME><PETIME>%d</PETIME><RSTIME>%d</RSTIME><RETIME>%d"
            "</RETIME><ESTIME>%d</ESTIME><EETIME>%d</EETIME><ACTION>%d"
            "</ACTION><UID>%d</UID><GID>%d</GID><REQUEST_ID>%d</REQUEST_ID>"
            "%s</HISTORY>") % (
        h["oid"], h["seq"], _xml_text(h["hostname"]), h["hid"], h["cid"],
        h["stime"], h["etime"], cdata(h["vm_mad"]), cdata(h["tm_mad"]),
        h["ds_id"], h["pstime"], h["petime"], h["rstime"], h["retime"],
        h["estime"], h["eetime"], h["action"], h["uid"], h["gid"],
        h["request_id"], h["vm_xml"] if with_vm else "")


def vm_xml(o, vm, last_only=False):
    """The full VM: one.vm.info with every history record,
    one.vmpool.infoextended with the last one only."""
    history = vm["history"][-1:] if last_only else vm["history"]
    records = "".join(history_xml(o, h, False) for h in history)
    return "%s%s<BACKUPS><BACKUP_CONFIG/><BACKUP_IDS></BACKUP_IDS>" \
           "</BACKUPS></VM>" % (
               _vm_head(o, vm, vm["state"], vm["lcm_state"],
                        vm["prev_state"], vm["prev_lcm_state"], "long"),
               "<HISTORY_RECORDS>%s</HISTORY_RECORDS>" % records
               if records else "<HISTORY_RECORDS/>")


def vm_snapshot_xml(o, vm, state, lcm, prev_state, prev_lcm):
    """The VM as a history record keeps it (History::to_xml's <VM>)."""
    return "%s<HISTORY_RECORDS/><BACKUPS><BACKUP_CONFIG/><BACKUP_IDS/>" \
           "</BACKUPS></VM>" % _vm_head(o, vm, state, lcm, prev_state,
                                        prev_lcm, "short")


_SHORT_DISK = ("DISK_ID", "DATASTORE", "DATASTORE_ID", "IMAGE", "IMAGE_ID",
               "SIZE", "TYPE", "CLONE", "CLONE_TARGET", "LN_TARGET",
               "DISK_SNAPSHOT_TOTAL_SIZE")
_SHORT_NIC = ("IP", "MAC", "NETWORK", "NETWORK_ID", "NIC_ID",
              "SECURITY_GROUPS")


def vm_short_xml(o, vm):
    """The VM of one.vmpool.info (VirtualMachine::to_xml_short)."""
    tpl = vm["template"]
    parts = ["<VM>%s<LAST_POLL>0</LAST_POLL>"
             "<STATE>%d</STATE><LCM_STATE>%d</LCM_STATE><RESCHED>0</RESCHED>"
             "<STIME>%d</STIME><ETIME>%d</ETIME><DEPLOY_ID>%s</DEPLOY_ID>"
             "<TEMPLATE><CPU>%s</CPU><MEMORY>%s</MEMORY><VCPU>%s</VCPU>" % (
                 o.owned_xml(vm), vm["state"], vm["lcm_state"],
                 vm["stime"], vm["etime"], _xml_text(vm["deploy_id"]),
                 _xml_text(tget(tpl, "CPU", "")),
                 _xml_text(tget(tpl, "MEMORY", "")),
                 _xml_text(tget(tpl, "VCPU", "")))]
    for key, fields in (("DISK", _SHORT_DISK), ("NIC", _SHORT_NIC)):
        for vec in tvectors(tpl, key):
            attrs = dict(vec)
            parts.append("<%s>%s</%s>" % (key, "".join(
                "<%s>%s</%s>" % (f, cdata(attrs.get(f, "")), f)
                for f in fields), key))
    parts.append("</TEMPLATE><MONITORING/><USER_TEMPLATE/>")
    if vm["history"]:
        h = vm["history"][-1]
        parts.append(
            "<HISTORY_RECORDS><HISTORY><OID>%d</OID><SEQ>%d</SEQ><HOSTNAME>"
            "%s</HOSTNAME><HID>%d</HID><CID>%d</CID><DS_ID>%d</DS_ID><VM_MAD>"
            "%s</VM_MAD><TM_MAD>%s</TM_MAD><ACTION>%s</ACTION></HISTORY>"
            "</HISTORY_RECORDS>" % (
                h["oid"], h["seq"], cdata(h["hostname"]), h["hid"], h["cid"],
                h["ds_id"], cdata(h["vm_mad"]), cdata(h["tm_mad"]),
                cdata(h["action"])))
    else:
        parts.append("<HISTORY_RECORDS/>")
    parts.append("</VM>")
    return "".join(parts)


def _set_state(vm, state, lcm=0):
    vm["state"], vm["lcm_state"] = state, lcm
    vm["prev_state"], vm["prev_lcm_state"] = state, lcm


def _open_record(o, vm, host, ds, t, prolog, snap):
    """Open a history record (deploy, or resume from poweroff/suspend)."""
    cluster = host["cluster_id"]
    rec = {"oid": vm["id"], "seq": len(vm["history"]),
           "hostname": host["name"], "hid": host["id"], "cid": cluster,
           "stime": t, "etime": 0, "vm_mad": host["vm_mad"],
           "tm_mad": ds["tm_mad"], "ds_id": ds["id"],
           "pstime": t if prolog else 0, "petime": t if prolog else 0,
           "rstime": t, "retime": 0, "estime": 0, "eetime": 0, "action": 0,
           "uid": -1, "gid": -1, "request_id": -1,
           "vm_xml": vm_snapshot_xml(o, vm, *snap)}
    vm["history"].append(rec)
    return rec


def _record_action(o, rec, action, actor):
    rec["action"] = action
    rec["uid"], rec["gid"] = actor["id"], actor["gid"]
    rec["request_id"] = o.rand.randint(1000, 9999)


@rpc("one.vm.allocate", "s,?b")
def vm_allocate(o, user, m, text, hold=False):
    return vm_create(o, user, parse_or_fail(text), hold)


# one.vm.info: the full VM, every history record (USE permission)
define_reads("vm", None, "one.vm.info", vm_xml, use="VM")


@rpc("one.vm.deploy", "i,i,?b,?i,?s")
def vm_deploy(o, user, m, oid, hid, enforce=False, ds_id=-1, extra=""):
    host = o.get("host", hid)
    vm = o.get("vm", oid)
    _authorize(user, vm, "ADMIN", "VM")
    if vm["state"] not in (VM_PENDING, VM_HOLD, VM_STOPPED, VM_UNDEPLOYED):
        raise OnedError(ACTION, "Deploy action is not available for state "
                                "%s" % _vm_state_name(vm))
    if ds_id == -1:
        systems = [d for d in o.store.all("datastore")
                   if d["type"] == 1 and host["cluster_id"] in d["clusters"]]
        if not systems:
            raise OnedError(ACTION, "No system datastore in cluster %d." %
                            host["cluster_id"])
        ds = systems[0]
    else:
        ds = o.get("datastore", ds_id)
        if ds["type"] != 1:
            raise OnedError(INTERNAL, "Datastore [%d] is not a system "
                                      "datastore." % ds_id)
    t = o.clock()
    tpl = vm["template"]
    tset(tpl, "TM_MAD_SYSTEM", ds["tm_mad"])
    for disk in tvectors(tpl, "DISK"):
        for key, value in (
                ("ALLOW_ORPHANS", tget(ds["template"], "ALLOW_ORPHANS", "NO")),
                ("CLUSTER_ID", ",".join(str(c) for c in ds["clusters"])),
                ("DATASTORE", ds["name"]), ("DATASTORE_ID", str(ds["id"])),
                ("DISK_TYPE", tget(ds["template"], "DISK_TYPE", "FILE")),
                ("DRIVER", dict(disk).get("FORMAT") or "raw"),
                ("PERSISTENT_SNAPSHOTS",
                 tget(ds["template"], "PERSISTENT_SNAPSHOTS", "YES")),
                ("TM_MAD", ds["tm_mad"])):
            _vector_set(disk, key, value)
    _open_record(o, vm, host, ds, t, True,
                 (VM_ACTIVE, LCM_PROLOG, VM_ACTIVE, 0))
    if not vm["deploy_id"]:
        vm["deploy_id"] = "%s:%s:dummy" % (host["name"], vm["name"]) \
            if host["vm_mad"] == "dummy" else "one-%d" % vm["id"]
    _set_state(vm, VM_ACTIVE, LCM_RUNNING)
    o.store.touch("vm", vm)
    return oid


@rpc("one.vm.action", "s,i")
def vm_action(o, user, m, action, oid):
    code = VM_ACTIONS.get(action)
    if code is None:
        raise OnedError(ACTION, 'Action "%s" is not supported' % action)
    vm = o.get("vm", oid)
    _authorize(user, vm, "MANAGE", "VM")
    state = vm["state"]
    running = state == VM_ACTIVE and vm["lcm_state"] == LCM_RUNNING
    rec = vm["history"][-1] if vm["history"] else None
    t = o.clock()

    def refuse():
        raise OnedError(ACTION, 'Error performing action "%s": This action '
                        'is not available for state %s' % (
                            action, _vm_state_name(vm)))

    owner = {"id": vm["uid"], "gid": vm["gid"]}
    if action in ("poweroff", "poweroff-hard", "suspend", "reboot",
                  "reboot-hard"):
        if not running:
            refuse()
        _record_action(o, rec, code, user)
        if action.startswith("poweroff") or action == "suspend":
            rec["retime"] = t
            _set_state(vm, VM_POWEROFF if action != "suspend"
                       else VM_SUSPENDED)
    elif action in ("stop", "undeploy", "undeploy-hard"):
        if not (running or (action != "stop" and state == VM_POWEROFF)):
            refuse()
        _record_action(o, rec, code, user)
        if not rec["retime"]:
            rec["retime"] = t
        rec["estime"] = rec["eetime"] = rec["etime"] = t
        _set_state(vm, VM_STOPPED if action == "stop" else VM_UNDEPLOYED)
    elif action == "resume":
        if state in (VM_POWEROFF, VM_SUSPENDED):
            rec["etime"] = t
            host = o.store.get("host", rec["hid"]) or {
                "id": rec["hid"], "name": rec["hostname"],
                "cluster_id": rec["cid"], "vm_mad": rec["vm_mad"]}
            ds = {"id": rec["ds_id"], "tm_mad": rec["tm_mad"]}
            boot = LCM_BOOT_POWEROFF if state == VM_POWEROFF \
                else LCM_BOOT_SUSPENDED
            _open_record(o, vm, host, ds, t, False,
                         (VM_ACTIVE, boot, state, 0))
            _set_state(vm, VM_ACTIVE, LCM_RUNNING)
        elif state in (VM_STOPPED, VM_UNDEPLOYED):
            _set_state(vm, VM_PENDING)
        else:
            refuse()
    elif action == "hold":
        if state != VM_PENDING:
            refuse()
        _set_state(vm, VM_HOLD)
    elif action == "release":
        if state != VM_HOLD:
            refuse()
        _set_state(vm, VM_PENDING)
    else:   # terminate, terminate-hard
        if state in (VM_DONE, 0) or (state == VM_ACTIVE and not running):
            refuse()
        if rec is not None and not rec["etime"]:
            # trigger_shutdown records the owner; from POWEROFF (and
            # SUSPENDED) a hard terminate is recorded as a plain one
            _record_action(o, rec, code if running else
                           VM_ACTIONS["terminate"], owner)
            if not rec["retime"]:
                rec["retime"] = t
            rec["estime"] = rec["eetime"] = rec["etime"] = t
        vm["etime"] = t
        _set_state(vm, VM_DONE)
        _release_leases(o, vm["id"])
    o.store.touch("vm", vm)
    return oid


def _vm_state_filter(state):
    if state < -2 or state > 11:
        raise OnedError(RPC_API, "Incorrect state filter %d" % state)
    return lambda vm: state == -2 or (state == -1 and vm["state"] != VM_DONE) \
        or vm["state"] == state


def _vm_pool(o, user, flt, start, end, state, render):
    keep = _vm_state_filter(state)
    objs = [vm for vm in filter_pool(user, o.store.all("vm"), flt, start,
                                     end, perms=True) if keep(vm)]
    return o.pool_xml("vm", lambda vm: render(o, vm), objs)


@rpc("one.vmpool.info", "i,i,i,i,?s")
def vmpool_info(o, user, m, flt, start, end, state, query=""):
    return _vm_pool(o, user, flt, start, end, state, vm_short_xml)


@rpc("one.vmpool.infoextended", "i,i,i,i,?s")
def vmpool_infoextended(o, user, m, flt, start, end, state, query=""):
    return _vm_pool(o, user, flt, start, end, state,
                    lambda o, vm: vm_xml(o, vm, last_only=True))


@rpc("one.vmpool.accounting", "i,i,i")
def vmpool_accounting(o, user, m, flt, start, end):
    out = []
    for vm in filter_pool(user, o.store.all("vm"), flt, perms=True):
        for rec in vm["history"]:
            if start != -1 and not (rec["etime"] > start or
                                    rec["etime"] == 0):
                continue
            if end != -1 and not rec["stime"] < end:
                continue
            out.append(history_xml(o, rec, True))
    return "<HISTORY_RECORDS>%s</HISTORY_RECORDS>" % "".join(out)
