"""Parsing oned's HISTORY_RECORDS and the usage rules, on the reference
captures of oned 7.4.0 (expected values typed from the samples README)."""

import pytest

from acct_samples import T0, have_samples, payload
from stratuslab_accounting.records import (RecordError, clipped_spans, parse_history_records,
                                           usage_of)

pytestmark = pytest.mark.skipif(not have_samples(), reason="tests/fixtures/opennebula samples missing")

# README table of sample 55: OID.SEQ -> (STIME, ETIME, RSTIME, RETIME, ACTION,
# actor UID, owner UID, owner GID, CPU, MEMORY), times relative to T0, None = 0
FINAL = {
    (0, 0): (0, 51, 0, 51, 28, 2, 2, 100, 1.0, 1024),
    (1, 0): (0, 36, 0, 21, 19, 0, 2, 100, 0.5, 512),
    (1, 1): (36, None, 36, None, 0, -1, 2, 100, 0.5, 512),
    (2, 0): (0, 55, 0, 52, 27, 3, 3, 101, 2.0, 2048),
    (3, 0): (0, None, 0, 21, 19, 3, 3, 101, 0.25, 256),
}


def rel(value):
    return None if value == 0 else value - T0


def test_final_accounting_sample_parses_like_the_readme_table():
    recs = parse_history_records(payload("055_"))
    assert [(r["vm_id"], r["seq"]) for r in recs] == list(FINAL)
    for r in recs:
        stime, etime, rstime, retime, action, actor, uid, gid, cpu, mem = FINAL[(r["vm_id"], r["seq"])]
        assert (rel(r["stime"]), rel(r["etime"]), rel(r["rstime"]), rel(r["retime"])) == \
            (stime, etime, rstime, retime)
        assert (r["action"], r["actor_uid"], r["uid"], r["gid"]) == (action, actor, uid, gid)
        assert (r["cpu"], r["memory_mb"]) == (cpu, mem)
    by = {(r["vm_id"], r["seq"]): r for r in recs}
    # billed owner, not the actor: oneadmin powered off alice's VM 1
    assert by[(1, 0)]["uname"] == "alice" and by[(1, 0)]["actor_uid"] == 0
    # disks: VM 0 has a 2 GB volatile disk, VM 2 a 4 GB one, VM 1/3 none
    assert [by[k]["disk_mb"] for k in sorted(by)] == [2048, 0, 0, 4096, 0]
    assert by[(2, 0)]["vcpu"] == 4 and by[(2, 0)]["gname"] == "acct-b"
    assert all(len(r["vm_uuid"]) == 36 for r in recs)


def test_samples_during_the_run_show_open_records():
    just_deployed = parse_history_records(payload("040_"))
    assert len(just_deployed) == 4 and all(r["etime"] == 0 and r["action"] == 0 for r in just_deployed)
    during_poweroff = {(r["vm_id"], r["seq"]): r for r in parse_history_records(payload("046_"))}
    # poweroff sets RETIME but does not close the record
    assert during_poweroff[(1, 0)]["retime"] and during_poweroff[(1, 0)]["etime"] == 0


def test_empty_answer_and_wrong_document():
    assert parse_history_records(payload("032_")) == []
    with pytest.raises(RecordError):
        parse_history_records("<VM_POOL></VM_POOL>")
    with pytest.raises(RecordError):
        parse_history_records("<HISTORY_RECORDS><HISTORY><OID>1</OID><SEQ>0</SEQ><STIME>5</STIME>"
                              "</HISTORY></HISTORY_RECORDS>")


def test_usage_of_the_final_sample_computed_by_hand():
    recs = parse_history_records(payload("055_"))
    end = T0 + 65                      # the final capture
    alice = usage_of([r for r in recs if r["uname"] == "alice"], T0, end, end)
    # VM0 0..51 (CPU 1, 1024 MB, 2 GB disk); VM1 0..36 and 36..65 (CPU 0.5, 512 MB)
    assert alice["vms"] == 2
    assert alice["wall_hours"] == round((51 + 36 + 29) / 3600, 6)
    assert alice["cpu_hours"] == round((51 * 1 + 65 * 0.5) / 3600, 6)
    assert alice["memory_gb_hours"] == round((51 * 1024 + 65 * 512) / 1024 / 3600, 6)
    assert alice["disk_gb_hours"] == round(51 * 2048 / 1024 / 3600, 6)
    # running: VM0 0..51, VM1 0..21 (poweroff 21..36 not running), 36..65
    assert alice["running_hours"] == round((51 + 21 + 29) / 3600, 6)
    bob = usage_of([r for r in recs if r["uname"] == "bob"], T0, end, end)
    # VM2 0..55 (CPU 2, 2048 MB, 4 GB); VM3 0..65 still allocated while powered off since 21
    assert bob["cpu_hours"] == round((55 * 2 + 65 * 0.25) / 3600, 6)
    assert bob["memory_gb_hours"] == round((55 * 2048 + 65 * 256) / 1024 / 3600, 6)
    assert bob["running_hours"] == round((52 + 21) / 3600, 6)


def test_clipping_to_a_window_inside_the_run():
    recs = {(r["vm_id"], r["seq"]): r for r in parse_history_records(payload("055_"))}
    a, b = T0 + 30, T0 + 40
    assert clipped_spans(recs[(0, 0)], a, b, b) == (10, 10)
    assert clipped_spans(recs[(1, 0)], a, b, b) == (6, 0)      # powered off since +21
    assert clipped_spans(recs[(1, 1)], a, b, b) == (4, 4)
    assert clipped_spans(recs[(3, 0)], a, b, b) == (10, 0)
    # an open record stops at the open end (last collection), not at the window end
    assert clipped_spans(recs[(1, 1)], T0, T0 + 3600, T0 + 50) == (14, 14)
    # windows outside the records
    assert clipped_spans(recs[(0, 0)], T0 + 51, T0 + 100, T0 + 100) == (0, 0)
    assert clipped_spans(recs[(0, 0)], T0 - 100, T0, T0) == (0, 0)
