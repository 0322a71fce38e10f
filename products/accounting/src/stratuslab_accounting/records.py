"""History records: parsing oned's HISTORY_RECORDS and the usage rules.

One record is one ``<HISTORY>`` element of ``one.vmpool.accounting``: a
placement ("segment") of one VM, keyed by (VM id, SEQ).  The rules, from the
reference captures of oned 7.4.0 (shared/opennebula/samples-accounting-7.4.0):

* the **owner** is ``HISTORY/VM/UID,GID,UNAME,GNAME`` (who is billed);
  ``HISTORY/UID,GID`` is the *actor* of the last action and is kept only for
  information;
* ``ETIME == 0`` means the record is still open; poweroff does not close it
  (``RETIME`` is set at poweroff, ``ETIME`` at resume or terminate);
* capacity is taken per record from ``HISTORY/VM/TEMPLATE`` (CPU, VCPU,
  MEMORY in MB, the sum of DISK/SIZE plus DISK_SNAPSHOT_TOTAL_SIZE in MB):
  the VM as it was when the record was opened.
"""

import xml.etree.ElementTree as ET

# Columns of the ``history`` table, in order (store.py uses this list).
COLUMNS = (
    "vm_id", "seq", "uid", "gid", "uname", "gname", "vm_name", "vm_uuid",
    "vm_stime", "hostname", "hid", "stime", "etime", "pstime", "petime",
    "rstime", "retime", "estime", "eetime", "action", "actor_uid",
    "actor_gid", "cpu", "vcpu", "memory_mb", "disk_mb",
)

_INT_FIELDS = (("HID", "hid"), ("STIME", "stime"), ("ETIME", "etime"),
               ("PSTIME", "pstime"), ("PETIME", "petime"), ("RSTIME", "rstime"),
               ("RETIME", "retime"), ("ESTIME", "estime"), ("EETIME", "eetime"),
               ("ACTION", "action"), ("UID", "actor_uid"), ("GID", "actor_gid"))


class RecordError(ValueError):
    """A HISTORY element that lacks a field the accounting needs."""


def _int(elem, tag, default=None):
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if default is not None:
            return default
        raise RecordError("HISTORY without %s" % tag)
    return int(child.text.strip())


def _num(text, default=0.0):
    try:
        return float(text) if text is not None and text.strip() else default
    except ValueError:
        return default


def parse_history(elem):
    """One <HISTORY> element -> dict with the COLUMNS keys."""
    rec = {"vm_id": _int(elem, "OID"), "seq": _int(elem, "SEQ")}
    for tag, key in _INT_FIELDS:
        rec[key] = _int(elem, tag, 0 if tag not in ("STIME",) else None)
    rec["hostname"] = (elem.findtext("HOSTNAME") or "").strip()
    vm = elem.find("VM")
    if vm is None:
        raise RecordError("HISTORY %d.%d without VM" % (rec["vm_id"], rec["seq"]))
    rec["uid"] = _int(vm, "UID")
    rec["gid"] = _int(vm, "GID")
    rec["uname"] = (vm.findtext("UNAME") or "").strip()
    rec["gname"] = (vm.findtext("GNAME") or "").strip()
    rec["vm_name"] = (vm.findtext("NAME") or "").strip()
    rec["vm_stime"] = _int(vm, "STIME", 0)
    tpl = vm.find("TEMPLATE")
    cpu = vcpu = memory = disk = 0.0
    uuid = ""
    if tpl is not None:
        cpu = _num(tpl.findtext("CPU"))
        vcpu = _num(tpl.findtext("VCPU"))
        memory = _num(tpl.findtext("MEMORY"))
        for d in tpl.findall("DISK"):
            disk += _num(d.findtext("SIZE")) + _num(d.findtext("DISK_SNAPSHOT_TOTAL_SIZE"))
        uuid = (tpl.findtext("OS/UUID") or "").strip()
    rec["cpu"] = cpu
    rec["vcpu"] = int(vcpu)
    rec["memory_mb"] = int(memory)
    rec["disk_mb"] = int(disk)
    rec["vm_uuid"] = uuid
    return rec


def parse_history_records(xml_text):
    """The HISTORY_RECORDS document -> list of record dicts (oned's order)."""
    root = ET.fromstring(xml_text)
    if root.tag != "HISTORY_RECORDS":
        raise RecordError("expected HISTORY_RECORDS, got %s" % root.tag)
    return [parse_history(h) for h in root.iter("HISTORY")]


# --------------------------------------------------------------------------
# The usage rules (the SQL in store.py implements the same; tests compare)
# --------------------------------------------------------------------------

def clipped_spans(rec, start, end, open_end):
    """(allocated seconds, running seconds) of one record inside [start, end).

    * allocated: STIME..ETIME, poweroff included (the VM holds the host's
      capacity; OpenNebula's showback charges this span by default);
    * running: RSTIME..RETIME (RETIME 0: until ETIME, or still running);
    * an open end (ETIME 0, or RETIME and ETIME 0) stops at ``open_end``,
      which the caller sets to min(end, time of the last successful
      collection): usage is never extrapolated past what was observed.
    """
    s = max(rec["stime"], start)
    e = min(rec["etime"], end) if rec["etime"] else open_end
    alloc = max(0, e - s)
    run = 0
    if rec["rstime"]:
        rs = max(rec["rstime"], start)
        if rec["retime"]:
            re_ = min(rec["retime"], end)
        elif rec["etime"]:
            re_ = min(rec["etime"], end)
        else:
            re_ = open_end
        run = max(0, re_ - rs)
    return alloc, run


def usage_of(records, start, end, open_end):
    """Aggregate records (already filtered to one key) into usage figures."""
    vms = set()
    alloc_s = run_s = 0
    cpu_s = mem_mbs = disk_mbs = 0.0
    for rec in records:
        alloc, run = clipped_spans(rec, start, end, open_end)
        if alloc > 0:
            vms.add(rec["vm_id"])
        alloc_s += alloc
        run_s += run
        cpu_s += alloc * rec["cpu"]
        mem_mbs += alloc * rec["memory_mb"]
        disk_mbs += alloc * rec["disk_mb"]
    return figures(len(vms), alloc_s, run_s, cpu_s, mem_mbs, disk_mbs)


def figures(vms, alloc_s, run_s, cpu_s, mem_mbs, disk_mbs):
    """Seconds and MB-seconds -> the published units (hours, GB-hours)."""
    def f(value):
        return float(value or 0)  # PostgreSQL sums bigints as numeric
    return {
        "vms": int(vms or 0),
        "wall_hours": round(f(alloc_s) / 3600.0, 6),
        "running_hours": round(f(run_s) / 3600.0, 6),
        "cpu_hours": round(f(cpu_s) / 3600.0, 6),
        "memory_gb_hours": round(f(mem_mbs) / 1024.0 / 3600.0, 6),
        "disk_gb_hours": round(f(disk_mbs) / 1024.0 / 3600.0, 6),
    }
