"""The collector against a real test oned process (python3 -m stratuslab_test_oned, the
project's stand-in for oned, not OpenNebula), driven by its test clock.

Two users in two groups start, power off, resume and terminate VMs over ten
hours of test-clock time.  The collector runs in passes (in-process and as
the real command ``collect --once``), is restarted mid-way, and keeps
running while the test oned is stopped for a while.  The expected CPU-hours
and memory GB-hours are computed here from the script, not from records.

The test clock is set in the past (2026-09-21), so that the collections,
which happen now in real time, come after every scripted event: open
records are then counted up to the end of the window.
"""

import logging
import os
import subprocess
import sys
import threading
import time

import pytest

from acct_pgcluster import free_port
from acct_testlib import PKG_PARENT, ROOT, wait_for
from stratuslab_accounting.collector import STATE_HWM, CollectError, Collector
from stratuslab_accounting.oned import OnedClient
from stratuslab_accounting.records import parse_history_records

sys.path.insert(0, os.path.join(ROOT, "products", "test_oned", "tests"))
from oned_support import OnedProcess  # noqa: E402

T = 1790000000          # 2026-09-21 14:13:20 UTC
HOUR = 3600
SESSION = "oneadmin:opennebula"


def ok(answer):
    assert answer[0], answer
    return answer[1]


@pytest.fixture
def oned(tmp_path):
    proc = OnedProcess(tmp_path / "oned.sqlite", ["--monitor-interval", "0.05"])
    proc.start()
    yield proc
    proc.stop()


def setup_site(oned):
    one = oned.proxy()
    host = ok(one.one.host.allocate("acct-host", "dummy", "dummy", -1))
    assert wait_for(lambda: "<STATE>2</STATE>" in one.one.host.info(host)[1])
    ok(one.one.datastore.allocate('NAME="sys"\nTYPE="SYSTEM_DS"\nTM_MAD="dummy"', -1))
    ga, gb = ok(one.one.group.allocate("acct-a")), ok(one.one.group.allocate("acct-b"))
    ok(one.one.user.allocate("alice", "alicepw", "core", [ga]))
    ok(one.one.user.allocate("bob", "bobpw", "core", [gb]))
    return one, host


def cli_collect_once(config_path):
    env = dict(os.environ, PYTHONPATH=PKG_PARENT)
    return subprocess.run([sys.executable, "-m", "stratuslab_accounting", "--config", config_path,
                           "collect", "--once"], capture_output=True, text=True, env=env, timeout=60)


def write_config(tmp_path, oned_url, store):
    auth = tmp_path / "one_auth"
    auth.write_text(SESSION + "\n")
    lines = ["[oned]", "endpoint = " + oned_url, "auth_file = %s" % auth, "timeout = 5",
             "[collector]", "overlap = 60", "[store]", "backend = " + store.dialect]
    if store.dialect == "sqlite":
        lines.append("path = " + store.path)
    else:
        kw = store._kwargs
        pw = tmp_path / "db_password"
        pw.write_text(kw["password"] + "\n")
        lines += ["host = %s" % kw["host"], "port = %d" % kw["port"], "dbname = " + kw["dbname"],
                  "user = " + kw["user"], "password_file = %s" % pw]
    path = tmp_path / "accounting.ini"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def oned_records(one):
    return parse_history_records(ok(one.one.vmpool.accounting(-2, -1, -1)))


def stored_keys(store):
    with store.transaction() as cur:
        cur.execute("SELECT vm_id, seq, etime, retime FROM history ORDER BY vm_id, seq")
        return [tuple(r) for r in cur.fetchall()]


def test_scripted_scenario_restart_and_oned_outage(oned, store, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="stratuslab_accounting")
    one, host = setup_site(oned)
    alice, bob = oned.proxy("alice:alicepw"), oned.proxy("bob:bobpw")
    config = write_config(tmp_path, oned.url, store)
    collector = Collector(OnedClient(oned.url, SESSION, 5), store, interval=0.2, overlap=60, retry_max=1)

    def at(hour):
        ok(one.testoned.clock.set(T + int(hour * HOUR)))

    at(0)
    a1 = ok(alice.one.vm.allocate('NAME="a1"\nCPU="1"\nVCPU="2"\nMEMORY="2048"', True))
    a2 = ok(alice.one.vm.allocate('NAME="a2"\nCPU="0.5"\nMEMORY="512"', True))
    b1 = ok(bob.one.vm.allocate('NAME="b1"\nCPU="2"\nMEMORY="4096"\nDISK=[TYPE="fs",SIZE="10240"]', True))
    b2 = ok(bob.one.vm.allocate('NAME="b2"\nCPU="0.25"\nMEMORY="256"', True))
    for vm in (a1, a2, b1):
        ok(one.one.vm.deploy(vm, host, False, -1))
    collector.collect_once()                       # first pass: everything (start -1)
    at(1)
    ok(one.one.vm.deploy(b2, host, False, -1))
    at(2)
    ok(alice.one.vm.action("poweroff", a1))
    collector.collect_once()
    at(3)
    ok(one.one.vm.action("poweroff-hard", b1))     # oneadmin acts, bob is billed
    at(4)
    ok(bob.one.vm.action("poweroff", b2))
    collector.collect_once()

    # restart mid-way: a new process (the real command) on the same store
    proc = cli_collect_once(config)
    assert proc.returncode == 0, proc.stderr
    assert "collected" in proc.stdout
    assert SESSION.split(":")[1] not in proc.stdout + proc.stderr
    before = stored_keys(store)
    assert len(before) == len({k[:2] for k in before}) == len(oned_records(one))
    proc = cli_collect_once(config)                # an identical pass adds nothing
    assert proc.returncode == 0 and stored_keys(store) == before

    at(5)
    ok(alice.one.vm.action("resume", a1))
    at(6)
    ok(bob.one.vm.action("resume", b1))

    # the collector runs on its own; oned goes away for a while
    runner = threading.Thread(target=collector.run, daemon=True)
    runner.start()
    assert wait_for(lambda: len(stored_keys(store)) == len(oned_records(one)), timeout=20)
    oned.stop()
    with pytest.raises(CollectError):
        collector.collect_once()
    time.sleep(2.5)                                # several failed passes, with backoff
    assert runner.is_alive()
    oned.start()                                   # same port, same state file
    one = oned.proxy()
    alice, bob = oned.proxy("alice:alicepw"), oned.proxy("bob:bobpw")
    at(8)
    ok(alice.one.vm.action("terminate-hard", a2))
    at(9)
    ok(bob.one.vm.action("terminate", b1))
    at(10)
    final = oned_records(one)
    want = [(r["vm_id"], r["seq"], r["etime"], r["retime"]) for r in final]
    assert wait_for(lambda: stored_keys(store) == want, timeout=30), (stored_keys(store), want)
    collector.stop()
    runner.join(10)
    assert not runner.is_alive()
    failures = [r for r in caplog.records if "pass failed" in r.getMessage()]
    assert len(failures) >= 2 and "retrying" in failures[0].getMessage()
    assert all(SESSION.split(":")[1] not in r.getMessage() for r in caplog.records)

    # exactly the expected usage, computed from the script:
    # a1 (CPU 1, 2 GB) holds its host 0..10 h (poweroff 2..5 h does not free it), runs 0-2, 5-10
    # a2 (CPU 0.5, 0.5 GB) 0..8 h; b1 (CPU 2, 4 GB, 10 GB disk) 0..9 h, runs 0-3, 6-9
    # b2 (CPU 0.25, 0.25 GB) 1..10 h (powered off since 4 h, still allocated), runs 1-4
    rows, totals = store.usage(T, T + 10 * HOUR, T + 10 * HOUR)
    got = {r["user"]: r for r in rows}
    assert set(got) == {"alice", "bob"}
    assert (got["alice"]["group"], got["bob"]["group"]) == ("acct-a", "acct-b")
    assert got["alice"]["cpu_hours"] == pytest.approx(1 * 10 + 0.5 * 8)
    assert got["alice"]["memory_gb_hours"] == pytest.approx(2 * 10 + 0.5 * 8)
    assert got["alice"]["running_hours"] == pytest.approx(7 + 8)
    assert got["bob"]["cpu_hours"] == pytest.approx(2 * 9 + 0.25 * 9)
    assert got["bob"]["memory_gb_hours"] == pytest.approx(4 * 9 + 0.25 * 9)
    assert got["bob"]["disk_gb_hours"] == pytest.approx(10 * 9)
    assert got["bob"]["running_hours"] == pytest.approx(6 + 3)
    assert (got["alice"]["vms"], got["bob"]["vms"], totals["vms"]) == (2, 2, 4)
    # a window inside the run: [4 h, 7 h)
    rows, _ = store.usage(T + 4 * HOUR, T + 7 * HOUR, T + 10 * HOUR)
    got = {r["user"]: r for r in rows}
    assert got["alice"]["cpu_hours"] == pytest.approx(1 * 3 + 0.5 * 3)
    assert got["bob"]["cpu_hours"] == pytest.approx(2 * 3 + 0.25 * 3)
    # every record once; the high-water mark is the last close
    assert len(stored_keys(store)) == len(final)
    assert int(store.get_state(STATE_HWM)) == T + 9 * HOUR


def test_collect_once_fails_cleanly_when_oned_is_unreachable(tmp_path, store):
    config = write_config(tmp_path, "http://127.0.0.1:%d/RPC2" % free_port(), store)
    proc = cli_collect_once(config)
    assert proc.returncode == 1
    assert "oned" in proc.stderr and "Traceback" not in proc.stderr
    assert "opennebula" not in proc.stderr          # the password


def test_wrong_oned_password_is_a_logged_failure(oned, store, tmp_path):
    collector = Collector(OnedClient(oned.url, "oneadmin:wrong", 5), store)
    with pytest.raises(CollectError) as err:
        collector.collect_once()
    assert "wrong" not in str(err.value)
    assert store.count() == (0, 0)
