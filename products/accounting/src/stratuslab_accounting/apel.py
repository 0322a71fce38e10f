"""APEL cloud usage records ("APEL-cloud-message: v0.4") for EGI accounting.

One record per VM that has a history record overlapping [from, to).  APEL
cloud records are cumulative per VM and keyed by VMUUID (a later record for
the same VMUUID replaces the earlier one), so every figure is the VM's
whole life **up to ``to``**, not only the part inside the window:

* VMUUID: the VM's ``TEMPLATE/OS/UUID`` (set by oned at the first deploy),
  else "<site> <cloud_compute_service> one-<id> <allocation epoch>";
* MachineName ``one-<id>``; LocalUserId / LocalGroupId the owner's
  OpenNebula user and group names (the billed owner, HISTORY/VM/UNAME, GNAME);
* Status: ``completed`` when the last record was closed by terminate
  (ACTION 27/28; also 3/4 shutdown and 13 delete), ``suspended`` when the
  VM is powered off (last record open with RETIME set), undeployed, stopped
  or suspended (closed by ACTION 5/6/9/10) at ``to``, else ``started``;
* StartTime the first record's STIME; EndTime (completed only) the last ETIME;
* WallDuration: seconds the VM was running (RSTIME..RETIME), up to ``to``;
  SuspendDuration: allocated but not running (poweroff) seconds, when > 0;
* CpuDuration = WallDuration x CpuCount (oned does not report consumed CPU);
* CpuCount: VCPU (CPU rounded up when VCPU is unset), Memory in MB, Disk in
  GB (rounded up) — from the VM's last record (its current capacity).

The message is written to ``out_dir`` in the dirq "QueueSimple" layout that
ssmsend reads (``<8 hex>/<14 hex>``), through a temporary file and an atomic
rename, so the sender never sees a partial message.
"""

import math
import os
import random
import tempfile
import time

from .records import clipped_spans

HEADER = "APEL-cloud-message: v0.4"
# ACTION of the record that closed (VMActions.h): the VM's end ...
END_ACTIONS = {3, 4, 13, 27, 28}    # shutdown(-hard) (pre-5.x), delete (recover), terminate(-hard)
# ... or a pause that frees the host: undeploy(-hard), stop, suspend
PAUSE_ACTIONS = {5, 6, 9, 10}


def vm_records(histories, site, cloud_type, cloud_compute_service, end, open_end):
    """Records (list of (key, value) lists) from all the history records of
    some VMs (ordered by vm_id, seq), as of ``end``."""
    by_vm = {}
    for rec in histories:
        by_vm.setdefault(rec["vm_id"], []).append(rec)
    out = []
    for vm_id in sorted(by_vm):
        recs = [r for r in by_vm[vm_id] if r["stime"] < end]
        if not recs:
            continue
        last = recs[-1]
        alloc = run = 0
        for r in recs:
            a, b = clipped_spans(r, 0, end, open_end)
            alloc += a
            run += b
        closed = last["etime"] != 0 and last["etime"] <= end
        if closed and last["action"] in END_ACTIONS:
            status = "completed"
        elif (closed and last["action"] in PAUSE_ACTIONS) or (
                not closed and last["retime"] and last["retime"] <= end):
            status = "suspended"  # undeployed, stopped, or powered off at `end`
        else:
            status = "started"    # running (or between two records, e.g. migrating)
        cpus = last["vcpu"] or int(math.ceil(last["cpu"])) or 1
        uuid = last["vm_uuid"] or "%s %s one-%d %d" % (site, cloud_compute_service, vm_id, last["vm_stime"])
        fields = [
            ("VMUUID", uuid),
            ("SiteName", site),
            ("CloudComputeService", cloud_compute_service),
            ("MachineName", "one-%d" % vm_id),
            ("LocalUserId", last["uname"]),
            ("LocalGroupId", last["gname"]),
            ("Status", status),
            ("StartTime", recs[0]["stime"]),
        ]
        if status == "completed":
            fields.append(("EndTime", last["etime"]))
        if alloc - run > 0:
            fields.append(("SuspendDuration", alloc - run))
        fields += [
            ("WallDuration", run),
            ("CpuDuration", run * cpus),
            ("CpuCount", cpus),
            ("Memory", last["memory_mb"]),
            ("Disk", int(math.ceil(last["disk_mb"] / 1024.0))),
            ("CloudType", cloud_type),
        ]
        out.append([(k, v) for k, v in fields if v is not None and v != ""])
    return out


def render(records):
    lines = [HEADER]
    for fields in records:
        for key, value in fields:
            text = str(value).replace("\n", " ")
            lines.append("%s: %s" % (key, text))
        lines.append("%%")
    return "\n".join(lines) + "\n"


def parse(text):
    """The message -> list of dicts (for tests and checks)."""
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        raise ValueError("not an %s message" % HEADER)
    records, cur = [], {}
    for line in lines[1:]:
        if line == "%%":
            records.append(cur)
            cur = {}
            continue
        key, sep, value = line.partition(": ")
        if not sep or key in cur:
            raise ValueError("bad line %r" % line)
        cur[key] = value
    if cur:
        raise ValueError("last record not terminated by %%")
    return records


def write_dirq(out_dir, text, now=None):
    """Add one message to a dirq QueueSimple directory; return its path."""
    now = time.time() if now is None else now
    sub = os.path.join(out_dir, "%08x" % (int(now) // 60 * 60))
    os.makedirs(sub, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=sub, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        while True:
            secs = int(now)
            usecs = int((now - secs) * 1e6)
            name = "%08x%05x%01x" % (secs, usecs, random.randrange(16))
            final = os.path.join(sub, name)
            if not os.path.exists(final):
                os.rename(tmp, final)
                return final
            now += 1e-6
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export(store, start, end, site, cloud_type, cloud_compute_service, out_dir, open_end=None):
    """Write the message for [start, end); return (path or None, record count)."""
    if open_end is None:
        open_end = end
    histories = store.vm_histories(start, end)
    records = vm_records(histories, site, cloud_type, cloud_compute_service, end, min(open_end, end))
    if not records:
        return None, 0
    return write_dirq(out_dir, render(records)), len(records)
