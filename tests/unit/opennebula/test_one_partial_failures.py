"""The opennebula_* modules when a write fails half-way, an object vanishes or
oned ignores what was asked, run by ansible-playbook against the test oned.

What every test here holds the modules to: a failure is reported as a
failure, with ``changed`` true exactly when something was written; a refused
change leaves the object as it was; a rerun with corrected input converges.
The same cases against a real oned 7.4.0 are in test_one_real_oned.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from one_testlib import ONE as one, LOGIC as logic, FakeClock, OnedProcess, pool_answer, ranges
from one_playbook import one_vnet, run_tasks, run_twice, task as T, vnet_left_in_error

# real oned 7.4.0's message for an IPv4 range it cannot read (AddressRange::init_ipv4)
BAD_IP_MESSAGE = "[one.vn.add_ar] Wrong or empty IP attribute"


@pytest.fixture(scope="module")
def oned(tmp_path_factory):
    proc = OnedProcess(tmp_path_factory.mktemp("oned-partial"),
                       extra_args=["--monitor-interval", "0.3", "--unreachable-hosts", "unreachable-*",
                                   "--vnet-driver-delay", "0.2"])
    yield proc
    proc.stop()


# --------------------------------------------------------------------------
# 1. a refused address range leaves the old one; a half-done update says changed
# --------------------------------------------------------------------------

def test_vnet_refused_new_range_keeps_the_old_one(oned, tmp_path):
    client = oned.client()
    good = dict(name="move-refused", address_ranges=[{"key": "pool", "ip": "10.40.0.10", "size": 10}])
    bad = dict(good, address_ranges=[{"key": "pool", "ip": "10.40.999.10", "size": 10}])
    run = run_tasks(tmp_path, [one_vnet(**good), one_vnet("refused start address", ignore=True, **bad)], oned)
    res = run[1]
    assert ranges(client, "move-refused") == [("10.40.0.10", 10, "pool")], "the old range was removed"
    assert res["failed"] and res["errors"] == {"move-refused": BAD_IP_MESSAGE} and BAD_IP_MESSAGE in res["msg"]
    assert res["changed"] is False  # oned refused the first write: nothing was changed

    # a template change that succeeds before the refused range: a failure that says changed
    half = dict(bad, template={"DESCRIPTION": "half-done"})
    run = run_tasks(tmp_path, [one_vnet("half-done", ignore=True, **half)], oned)
    assert run[0]["failed"] and run[0]["changed"] is True and run[0]["errors"] == {"move-refused": BAD_IP_MESSAGE}
    assert run[0]["vnets"]["move-refused"]["actions"] == ["update template DESCRIPTION"]
    assert client.vnpool().get("move-refused").template["DESCRIPTION"] == "half-done"
    assert ranges(client, "move-refused") == [("10.40.0.10", 10, "pool")]

    # an overlapping new start (oned accepts overlaps): added first, then the old one removed
    moved = dict(good, address_ranges=[{"key": "pool", "ip": "10.40.0.15", "size": 10}])
    run = run_twice(tmp_path, oned, one_vnet, "move", **moved)
    assert run[0]["vnets"]["move-refused"]["actions"] == ["add address range pool", "remove address range 0"]
    assert ranges(client, "move-refused") == [("10.40.0.15", 10, "pool")]


def test_vnets_refused_new_range_keeps_the_old_one(oned, tmp_path):
    client = oned.client()
    nets = [{"name": "batch-move", "address_ranges": [{"key": "pool", "ip": "10.41.0.10", "size": 10}]},
            {"name": "batch-other", "address_ranges": [{"ip": "10.42.0.10", "size": 4}]}]
    bad = [dict(nets[0], address_ranges=[{"key": "pool", "ip": "10.41.0.300", "size": 10}]),
           dict(nets[1], template={"DESCRIPTION": "still changed"})]
    run = run_tasks(tmp_path, [T("opennebula_vnets", vnets=nets, poll_interval=0.2),
                               T("opennebula_vnets", "refused", ignore=True, vnets=bad)], oned)
    res = run[1]
    assert ranges(client, "batch-move") == [("10.41.0.10", 10, "pool")], "the old range was removed"
    assert res["failed"] and res["errors"] == {"batch-move": BAD_IP_MESSAGE}
    assert res["vnets"]["batch-move"]["actions"] == []
    assert res["changed"] and res["vnets"]["batch-other"]["actions"] == ["update template DESCRIPTION"]


def test_half_done_move_is_finished_by_a_rerun():
    """A move whose removal of the old range failed leaves two ranges with the key: the rerun keeps the new one."""
    existing = [one.AddressRange(ar_id=0, type="IP4", size=10, ip="10.0.0.1", attributes={logic.AR_KEY_ATTR: "pool"}),
                one.AddressRange(ar_id=1, type="IP4", size=10, ip="10.0.1.1", attributes={logic.AR_KEY_ATTR: "pool"})]
    wanted = logic._desired_ars({"address_ranges": [{"key": "pool", "ip": "10.0.1.1", "size": 10}]})
    assert logic.plan_ars(existing, wanted, force=False) == [("rm", 0, None)]


# --------------------------------------------------------------------------
# 3. a cluster naming a host that does not exist
# --------------------------------------------------------------------------

def test_cluster_with_unknown_member_is_not_created(oned, tmp_path):
    client = oned.client()
    spec = dict(name="members-missing", hosts=["no-such-host"], datastores=["0"])
    run = run_tasks(tmp_path, [T("opennebula_cluster", "check mode", ignore=True, **spec)], oned, check=True)
    assert run[0]["failed"] and "no-such-host" in run[0]["msg"] and not run[0]["changed"]
    run = run_tasks(tmp_path, [T("opennebula_cluster", ignore=True, **spec)], oned)
    res = run[0]
    assert client.clusterpool().get("members-missing") is None, "the cluster was created and left behind"
    assert res["failed"] and res["msg"] == "host 'no-such-host' does not exist" and res["changed"] is False

    client.host_allocate("members-there", "dummy", "dummy")
    run = run_twice(tmp_path, oned, "opennebula_cluster", **dict(spec, hosts=["members-there"]))
    assert run[0]["changed"] and run[0]["cluster"]["hosts"] == [client.hostpool().get("members-there").id]


# --------------------------------------------------------------------------
# 4. hosts batch: a host that vanishes while waited for; each error once
# --------------------------------------------------------------------------

def _delete_when_registered(client, name, timeout=60):
    """Delete host ``name`` as soon as it is registered (another admin, while the batch waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        host = client.hostpool().named(name)
        if host is not None:
            client.host_delete(host.id)
            return
        time.sleep(0.02)


def test_hosts_batch_reports_a_host_that_vanishes_while_waited_for(tmp_path_factory, tmp_path):
    # a slow first probe: the hosts stay INIT for 3 s, the vanishing one is deleted meanwhile
    oned = OnedProcess(tmp_path_factory.mktemp("oned-vanish"), extra_args=["--monitor-interval", "3"])
    try:
        deleter = threading.Thread(target=_delete_when_registered, args=(oned.client(), "vanish-1"))
        deleter.start()
        run = run_tasks(tmp_path, [T("opennebula_hosts", ignore=True, hosts=["stay-1", "vanish-1"],
                                     im_mad="dummy", vmm_mad="dummy", poll_interval=0.2, wait_timeout=60)],
                        oned, diff=True)
        deleter.join()
    finally:
        oned.stop()
    res = run[0]
    assert res["failed"] and res["changed"]
    assert res["hosts"]["stay-1"]["state"] == "MONITORED"
    assert res["hosts"]["vanish-1"]["state"] == "gone"
    assert res["errors"] == {"vanish-1": res["hosts"]["vanish-1"]["error"]}
    assert "disappeared" in res["errors"]["vanish-1"]
    assert res["msg"] == "1 host(s) failed: vanish-1: %s" % res["errors"]["vanish-1"]
    assert res["summary"]["failed"] == 1 and res["summary"]["allocated"] == 2
    assert res["diff"]["after"]["vanish-1"] == {}


def test_hosts_batch_names_each_error_once(oned, tmp_path):
    run = run_tasks(tmp_path, [T("opennebula_hosts", ignore=True, hosts=["once-1", "unreachable-once"],
                                 poll_interval=0.2, wait_timeout=30)], oned)
    res = run[0]
    assert res["failed"] and res["changed"]
    assert set(res["errors"]) == {"unreachable-once"}
    assert res["msg"].count("Error monitoring Host unreachable-once") == 1, res["msg"]
    assert res["msg"].startswith("1 host(s) failed: unreachable-once: ")
    assert res["hosts"]["unreachable-once"]["error"] == res["errors"]["unreachable-once"]
    assert res["summary"]["failed"] == 1


def test_wait_hosts_counts_a_vanished_host_as_failed():
    answers = iter([pool_answer("host", {0: 0, 1: 0}), pool_answer("host", {0: 0}), pool_answer("host", {0: 2})])
    clock = FakeClock()
    client = one.OneClient(send=lambda method, params: next(answers), sleep=clock.sleep, clock=clock)
    with pytest.raises(one.OneActionError) as info:
        client.wait_hosts([0, 1], timeout=60, interval=1)
    assert info.value.hosts[1] is None and info.value.hosts[0].state_name == "MONITORED"  # 0 still waited for
    assert "host 1 disappeared" in info.value.message


# --------------------------------------------------------------------------
# 5. a vnet that oned left in ERROR
# --------------------------------------------------------------------------

def test_vnet_in_error_fails_then_converges(oned, tmp_path):
    client = oned.client()
    good, broken = vnet_left_in_error(tmp_path, oned, "born-broken", "10.50.0")

    run = run_tasks(tmp_path, [one_vnet("check", **good)], oned, check=True)
    assert run[0]["vnets"]["born-broken"]["actions"] == ["delete vnet born-broken (%d) in state ERROR" % broken.id,
                                                         "allocate vnet born-broken"]
    run = run_twice(tmp_path, oned, one_vnet, "corrected", **good)
    entry = run[0]["vnets"]["born-broken"]
    assert run[0]["changed"] and entry["state"] == "READY" and entry["id"] != broken.id
    assert ranges(client, "born-broken") == [("10.50.0.10", 8, "pool")]


def test_vnets_batch_in_error_fails_then_converges(oned, tmp_path):
    client = oned.client()
    bad = [{"name": "batch-broken", "address_ranges": [{"ip": "10.51.0.10", "mac": "zz:zz", "size": 4}]},
           {"name": "batch-fine", "address_ranges": [{"ip": "10.52.0.10", "size": 4}]}]
    run = run_tasks(tmp_path, [T("opennebula_vnets", ignore=True, vnets=bad, poll_interval=0.2)], oned)
    res = run[0]
    assert res["failed"] and res["changed"]
    assert "ERROR" in res["errors"]["batch-broken"]
    assert "Wrong format for MAC attribute: zz:zz" in res["errors"]["batch-broken"]
    broken = client.vnpool().get("batch-broken")
    assert broken.state_name == "ERROR"

    good = [dict(bad[0], address_ranges=[{"ip": "10.51.0.10", "size": 4}]), bad[1]]
    run = run_twice(tmp_path, oned, "opennebula_vnets", vnets=good, poll_interval=0.2)
    entry = run[0]["vnets"]["batch-broken"]
    assert entry["actions"] == ["delete vnet batch-broken (%d) in state ERROR" % broken.id,
                                "allocate vnet batch-broken"]
    assert entry["state"] == "READY" and entry["id"] != broken.id
    assert run[0]["summary"]["created"] == 1 and run[0]["summary"]["unchanged"] == 1
    assert client.vnpool().get("batch-broken").state_name == "READY"


# --------------------------------------------------------------------------
# 6. BASE_PATH: oned puts every datastore in DATASTORE_LOCATION/<id>
# --------------------------------------------------------------------------

def test_datastore_base_path_is_checked_not_sent(oned, tmp_path):
    client = oned.client()
    elsewhere = dict(name="ds-elsewhere", type="image", ds_mad="fs", tm_mad="qcow2", base_path="/srv/one/images")
    run = run_tasks(tmp_path, [T("opennebula_datastore", ignore=True, **elsewhere)], oned)
    res = run[0]
    assert client.datastorepool().get("ds-elsewhere") is None, "created although base_path cannot be applied"
    assert res["failed"] and not res["changed"]
    assert "/srv/one/images" in res["msg"] and "DATASTORE_LOCATION" in res["msg"]

    # the test oned's DATASTORE_LOCATION, written without its double slash
    located = dict(elsewhere, name="ds-located", base_path="/var/lib/one/datastores/")
    run = run_twice(tmp_path, oned, "opennebula_datastore", diff=True, **located)
    ds = run[0]["datastore"]
    assert ds["base_path"] == "/var/lib/one//datastores/%d" % ds["id"]
    assert "BASE_PATH" not in ds["template"]
    assert run[1]["actions"] == []

    # an existing datastore: compared with the BASE_PATH oned reports, nothing sent
    run = run_tasks(tmp_path, [T("opennebula_datastore", "moved", ignore=True,
                                 **dict(located, base_path="/srv/one/images"))], oned)
    assert run[0]["failed"] and not run[0]["changed"]
    assert "/var/lib/one//datastores/%d" % ds["id"] in run[0]["msg"]
    assert "BASE_PATH" not in client.datastore_info(ds["id"]).template
    run = run_tasks(tmp_path, [T("opennebula_datastore", "in the template", ignore=True,
                                 **dict(located, base_path=None, template={"base_path": "/srv/x"}))], oned)
    assert run[0]["failed"] and "base_path" in run[0]["msg"]
