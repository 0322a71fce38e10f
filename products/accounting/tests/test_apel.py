"""APEL cloud usage records ("APEL-cloud-message: v0.4") from the reference
captures: the fields of EGI's Cloud Usage Record v0.4, the values computed
by hand, and the message written atomically in ssmsend's dirq layout."""

import json
import os
import re
import subprocess
import sys

import pytest

from acct_samples import T0, have_samples, payload
from acct_testlib import PKG_PARENT
from stratuslab_accounting import apel
from stratuslab_accounting.collector import STATE_LAST_SUCCESS
from stratuslab_accounting.records import parse_history_records
from stratuslab_accounting.store import SQLiteStore
from stratuslab_accounting.timeutil import iso, parse_iso

pytestmark = pytest.mark.skipif(not have_samples(), reason="samples missing")

# EGI Cloud Usage Record v0.4 (EGI accounting documentation, "Cloud Accounting")
V04_FIELDS = {"VMUUID", "SiteName", "CloudComputeService", "MachineName", "LocalUserId", "LocalGroupId",
              "GlobalUserName", "FQAN", "Status", "StartTime", "EndTime", "SuspendDuration",
              "WallDuration", "CpuDuration", "CpuCount", "NetworkType", "NetworkInbound",
              "NetworkOutbound", "PublicIPCount", "Memory", "Disk", "BenchmarkType", "Benchmark",
              "StorageRecordId", "ImageId", "CloudType"}
MANDATORY = {"VMUUID", "SiteName", "MachineName"}


@pytest.fixture
def sample_store(tmp_path):
    st = SQLiteStore(str(tmp_path / "acct.sqlite"))
    st.migrate()
    st.upsert(parse_history_records(payload("055_")), now=T0 + 65)
    st.set_state(STATE_LAST_SUCCESS, T0 + 65)
    return st


def export(store, out, start, end):
    return apel.export(store, start, end, "STRATUSLAB-TEST", "OpenNebula", "cloud.example.org", str(out))


def test_message_for_the_whole_capture(sample_store, tmp_path):
    path, count = export(sample_store, tmp_path / "out", T0, T0 + 65)
    assert count == 4
    assert re.fullmatch(r"[0-9a-f]{8}/[0-9a-f]{14}", os.path.relpath(path, tmp_path / "out"))
    assert [p for p in os.listdir(os.path.dirname(path)) if p.endswith(".tmp")] == []
    text = open(path, encoding="utf-8").read()
    assert text.startswith("APEL-cloud-message: v0.4\n") and text.endswith("%%\n")
    recs = apel.parse(text)
    for r in recs:
        assert set(r) <= V04_FIELDS and MANDATORY <= set(r)
        assert r["SiteName"] == "STRATUSLAB-TEST" and r["CloudType"] == "OpenNebula"
        assert r["CloudComputeService"] == "cloud.example.org"
        assert r["Status"] in ("started", "completed", "suspended")
        assert int(r["CpuDuration"]) == int(r["WallDuration"]) * int(r["CpuCount"])
        assert ("EndTime" in r) == (r["Status"] == "completed")
    by = {r["MachineName"]: r for r in recs}
    final = {(h["vm_id"]): h for h in parse_history_records(payload("055_"))}
    assert by["one-0"]["VMUUID"] == final[0]["vm_uuid"]
    # VM0: alice, terminate-hard at +51, ran 0..51, VCPU 2, 1024 MB, 2 GB disk
    assert (by["one-0"]["Status"], by["one-0"]["EndTime"], by["one-0"]["WallDuration"]) == \
        ("completed", str(T0 + 51), "51")
    assert (by["one-0"]["CpuCount"], by["one-0"]["Memory"], by["one-0"]["Disk"]) == ("2", "1024", "2")
    assert (by["one-0"]["LocalUserId"], by["one-0"]["LocalGroupId"]) == ("alice", "acct-a")
    # VM1: running 0..21, off 21..36, running 36..65 (two records, one VM)
    assert (by["one-1"]["Status"], by["one-1"]["WallDuration"], by["one-1"]["SuspendDuration"]) == \
        ("started", "50", "15")
    # VM2: bob, poweroff-hard done at +52, terminate at +55
    assert (by["one-2"]["Status"], by["one-2"]["WallDuration"], by["one-2"]["CpuCount"],
            by["one-2"]["Disk"]) == ("completed", "52", "4", "4")
    # VM3: powered off at +21, still allocated
    assert (by["one-3"]["Status"], by["one-3"]["WallDuration"], by["one-3"]["SuspendDuration"]) == \
        ("suspended", "21", "44")
    assert all(r["StartTime"] == str(T0) for r in recs)


def test_status_as_of_the_window_end(sample_store, tmp_path):
    _, count = export(sample_store, tmp_path / "out", T0, T0 + 30)
    path = next(os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "out") for f in fs)
    by = {r["MachineName"]: r for r in apel.parse(open(path).read())}
    assert count == 4
    assert [by["one-%d" % i]["Status"] for i in range(4)] == ["started", "suspended", "started", "suspended"]
    assert by["one-0"]["WallDuration"] == "30" and "EndTime" not in by["one-0"]


def test_nothing_to_export_writes_nothing(sample_store, tmp_path):
    assert export(sample_store, tmp_path / "out", T0 - 3600, T0) == (None, 0)
    assert not (tmp_path / "out").exists()


def test_two_messages_in_the_same_second_do_not_collide(tmp_path):
    paths = {apel.write_dirq(str(tmp_path), "x", now=1000.0) for _ in range(20)}
    assert len(paths) == 20


def test_cli_apel_export(sample_store, tmp_path):
    ini = tmp_path / "a.ini"
    ini.write_text("[store]\nbackend = sqlite\npath = %s\n[apel]\nsite = STRATUSLAB-TEST\n"
                   "out_dir = %s\n" % (sample_store.path, tmp_path / "spool"))
    env = dict(os.environ, PYTHONPATH=PKG_PARENT)
    base = [sys.executable, "-m", "stratuslab_accounting", "--config", str(ini), "apel-export"]
    proc = subprocess.run(base + ["--from", "2026-11-23", "--to", "2026-11-24"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("4 records written to %s" % (tmp_path / "spool"))
    proc = subprocess.run(base + ["--from", "2026-11-24", "--to", "2026-11-23"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "--from must be before --to" in proc.stderr
    proc = subprocess.run(base + ["--from", "nope", "--to", "2026-11-23"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_cli_usage_counts_open_records_up_to_the_last_collection(sample_store, tmp_path):
    """The usage command prints the store's usage of --from..--to as JSON, the
    records still open counted up to the last successful collection."""
    ini = tmp_path / "u.ini"
    ini.write_text("[store]\nbackend = sqlite\npath = %s\n" % sample_store.path)
    env = dict(os.environ, PYTHONPATH=PKG_PARENT)
    base = [sys.executable, "-m", "stratuslab_accounting", "--config", str(ini), "usage"]
    proc = subprocess.run(base + ["--from", "2026-11-23", "--to", "2026-11-24"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    start, end = parse_iso("2026-11-23", "--from"), parse_iso("2026-11-24", "--to")
    rows, totals = sample_store.usage(start, end, T0 + 65)
    assert rows
    assert json.loads(proc.stdout) == json.loads(json.dumps({"from": iso(start), "to": iso(end), "rows": rows,
                                                              "totals": totals}))
    proc = subprocess.run(base + ["--from", "2026-11-23", "--to", "later"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "--to" in proc.stderr and "Traceback" not in proc.stderr
