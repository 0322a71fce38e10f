"""Showback (one.vmpool.calculateshowback, one.vmpool.showback)."""

import datetime
import xml.etree.ElementTree as ET

from ..rpc import filter_pool, rpc
from ..wire import _xml_text


# --------------------------------------------------------------------------
# Showback (one.vmpool.calculateshowback, one.vmpool.showback)
# Months are UTC months of the test clock; costs per CPU-hour, per MB-hour
# of MEMORY and per MB-hour of disk, from each record's own VM copy (as
# oned's showback, SHOWBACK_ONLY_RUNNING="no", DEFAULT_COST 0).
# --------------------------------------------------------------------------

def _month_start(year, month):
    return int(datetime.datetime(year, month, 1,
                                 tzinfo=datetime.timezone.utc).timestamp())


def _next_month(year, month):
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _record_capacity(rec):
    snap = ET.fromstring(rec["vm_xml"])

    def num(path):
        try:
            return float(snap.findtext(path) or 0)
        except ValueError:
            return 0.0
    disk = sum(float(d.findtext("SIZE") or 0)
               for d in snap.findall("TEMPLATE/DISK"))
    return {"cpu": num("TEMPLATE/CPU"), "memory": num("TEMPLATE/MEMORY"),
            "disk": disk, "cpu_cost": num("TEMPLATE/CPU_COST"),
            "memory_cost": num("TEMPLATE/MEMORY_COST"),
            "disk_cost": num("TEMPLATE/DISK_COST")}


def _cost_text(value):
    text = "%.2f" % round(value, 2)
    return text.rstrip("0").rstrip(".") if "." in text else text


@rpc("one.vmpool.calculateshowback", "i,i,i,i")
def vmpool_calculateshowback(o, user, m, sm, sy, em, ey):
    o.require_admin(user)
    t = o.clock()
    records = [r for vm in o.store.all("vm") for r in vm["history"]]
    if not records:
        return " "
    if sm == -1 or sy == -1:
        first = datetime.datetime.fromtimestamp(
            min(r["stime"] for r in records), datetime.timezone.utc)
        sy, sm = first.year, first.month
    if em == -1 or ey == -1:
        last = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
        ey, em = last.year, last.month
    year, month = sy, sm
    while (year, month) <= (ey, em):
        a = _month_start(year, month)
        b = _month_start(*_next_month(year, month))
        key = "%04d-%02d" % (year, month)
        for vm in o.store.all("vm"):
            total = {"hours": 0.0, "rhours": 0.0, "cpu": 0.0, "memory": 0.0,
                     "disk": 0.0}
            seen = False
            for r in vm["history"]:
                end = r["etime"] or t
                if not (r["stime"] < b and end > a):
                    continue
                seen = True
                hours = (min(end, b) - max(r["stime"], a)) / 3600.0
                run_end = r["retime"] or (t if r["rstime"] else 0)
                rhours = max(0, min(run_end, b) - max(r["rstime"], a)) \
                    / 3600.0 if r["rstime"] else 0.0
                cap = _record_capacity(r)
                total["hours"] += hours
                total["rhours"] += rhours
                total["cpu"] += cap["cpu_cost"] * cap["cpu"] * hours
                total["memory"] += cap["memory_cost"] * cap["memory"] * hours
                total["disk"] += cap["disk_cost"] * cap["disk"] * hours
            showback = vm.setdefault("showback", {})
            if seen:
                showback[key] = total       # rounded when shown
            else:
                showback.pop(key, None)
            o.store.touch("vm", vm)
        year, month = _next_month(year, month)
    return " "


@rpc("one.vmpool.showback", "i,i,i,i,i")
def vmpool_showback(o, user, m, flt, sm, sy, em, ey):
    lo = (sy, sm) if sm != -1 and sy != -1 else None
    hi = (ey, em) if em != -1 and ey != -1 else None
    out = []
    for vm in sorted(filter_pool(user, o.store.all("vm"), flt, perms=True),
                     key=lambda v: v["id"]):
        for key in sorted(vm.get("showback", {})):
            year, month = (int(x) for x in key.split("-"))
            if (lo and (year, month) < lo) or (hi and (year, month) > hi):
                continue
            s = vm["showback"][key]
            total = s["cpu"] + s["memory"] + s["disk"]
            out.append(
                "<SHOWBACK><VMID>%d</VMID><VMNAME>%s</VMNAME><UID>%d</UID>"
                "<GID>%d</GID><UNAME>%s</UNAME><GNAME>%s</GNAME><YEAR>%d"
                "</YEAR><MONTH>%d</MONTH><CPU_COST>%s</CPU_COST><MEMORY_COST>"
                "%s</MEMORY_COST><DISK_COST>%s</DISK_COST><TOTAL_COST>%s"
                "</TOTAL_COST><HOURS>%s</HOURS><RHOURS>%s</RHOURS></SHOWBACK>"
                % (vm["id"], _xml_text(vm["name"]), vm["uid"], vm["gid"],
                   _xml_text(o.uname(vm["uid"])),
                   _xml_text(o.gname(vm["gid"])), year, month,
                   _cost_text(s["cpu"]), _cost_text(s["memory"]),
                   _cost_text(s["disk"]), _cost_text(total),
                   _cost_text(s["hours"]), _cost_text(s["rhours"])))
    return "<SHOWBACK_RECORDS>%s</SHOWBACK_RECORDS>" % "".join(out)
