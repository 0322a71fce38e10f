"""Synthetic history records shaped like oned's (tests and bench)."""

import random

from stratuslab_accounting.records import COLUMNS

HOUR = 3600


def synthetic_records(n, users=50, groups=5, start=1767225600, span_days=365, seed=1, open_share=0.05):
    """n records of VMs with 1..4 records each: (vm_id, seq) unique, times
    consistent (STIME <= RSTIME <= RETIME <= ETIME), some open or powered off."""
    rng = random.Random(seed)
    out = []
    vm_id = 0
    while len(out) < n:
        uid = rng.randrange(users)
        gid = uid % groups
        cpu = rng.choice([0.25, 0.5, 1.0, 2.0, 4.0])
        mem = rng.choice([256, 512, 1024, 2048, 4096, 8192])
        disk = rng.choice([0, 2048, 4096, 10240, 20480])
        t = start + rng.randrange(span_days * 86400)
        vm_stime = t - 2
        segments = min(rng.randint(1, 4), n - len(out))
        for seq in range(segments):
            last = seq == segments - 1
            length = rng.randrange(60, 30 * 24 * HOUR)
            etime = 0 if last and rng.random() < open_share else t + length
            run_len = rng.randrange(0, length + 1)
            retime = t + run_len if (etime or rng.random() < 0.5) else 0
            rec = {
                "vm_id": vm_id, "seq": seq, "uid": 100 + uid, "gid": 200 + gid,
                "uname": "user%03d" % uid, "gname": "group%02d" % gid, "vm_name": "vm-%d" % vm_id,
                "vm_uuid": "%08x-0000-4000-8000-%012x" % (vm_id, seq), "vm_stime": vm_stime,
                "hostname": "node%02d" % rng.randrange(20), "hid": rng.randrange(20),
                "stime": t, "etime": etime, "pstime": t, "petime": t, "rstime": t, "retime": retime,
                "estime": etime, "eetime": etime, "action": 27 if (last and etime) else (19 if not etime else 11),
                "actor_uid": -1, "actor_gid": -1, "cpu": cpu, "vcpu": max(1, int(cpu)),
                "memory_mb": mem, "disk_mb": disk,
            }
            assert set(rec) == set(COLUMNS)
            out.append(rec)
            if not etime:
                break
            t = etime
        vm_id += 1
    return out
