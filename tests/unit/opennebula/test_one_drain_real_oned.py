"""A node's life cycle through opennebula_hosts against the real oned 7.4.0:
enabled, disabled, offline, and retired (state absent with drain live: its
VMs are live-migrated to another enabled host of its cluster, then it is
deleted).

The hosts are registered with oned's dummy drivers (`-i dummy -v dummy`),
whose VMs deploy, run and migrate without a hypervisor, on a system
datastore with the dummy transfer driver; each VM is placed with
one.vm.deploy. The real oned is started by tools/opennebula/run-oned-tree,
as in test_one_real_oned.py.
"""

from __future__ import annotations

import time

import pytest

from one_testlib import needs_real_oned
from one_playbook import run_tasks

pytestmark = needs_real_oned

RUNNING = "RUNNING"


def hosts_task(title, hosts, cluster, ignore=False, **args):
    task = {"name": title, "opennebula_hosts": dict(hosts=hosts, cluster=cluster, im_mad="dummy", vmm_mad="dummy",
                                                    poll_interval=0.2, wait_timeout=120, **args)}
    if ignore:
        task["ignore_errors"] = True
    return task


def make_cluster(client, name):
    """A cluster with a dummy system datastore of its own: (cluster id, datastore id)."""
    cluster_id = client.cluster_allocate(name)
    ds_id = client.datastore_allocate('NAME="%s-system"\nTYPE="SYSTEM_DS"\nTM_MAD="dummy"' % name, cluster_id)
    return cluster_id, ds_id


def register(client, names, cluster_id):
    ids = [client.host_allocate(name, "dummy", "dummy", cluster_id) for name in names]
    client.wait_hosts(ids, timeout=120, interval=0.2)
    return dict(zip(names, ids))


def running_vm(client, name, host_id, ds_id):
    """A VM deployed on ``host_id`` and RUNNING there."""
    vm_id = client.call("one.vm.allocate", 'NAME="%s"\nCPU="0.1"\nMEMORY="64"' % name, True)
    client.call("one.vm.deploy", vm_id, host_id, False, ds_id)
    return wait_vm(client, vm_id, host_id, RUNNING)


def wait_vm(client, vm_id, host_id, state, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        vm = client.vm_info(vm_id)
        if vm.hid == host_id and vm.state_name == state and (state != RUNNING or vm.rstime > 0):
            return vm
        assert time.monotonic() < deadline, "VM %s is %s on host %s" % (vm_id, vm.state_name, vm.hid)
        time.sleep(0.2)


@pytest.fixture(scope="module")
def site(real_oned):
    """Cluster "life": hosts life-1 (one RUNNING VM) and life-2. Cluster "alone": alone-1 with a RUNNING VM."""
    client = real_oned.client()
    life, life_ds = make_cluster(client, "life")
    alone, alone_ds = make_cluster(client, "alone")
    ids = register(client, ["life-1", "life-2"], life)
    ids.update(register(client, ["alone-1"], alone))
    vms = {"web": running_vm(client, "web", ids["life-1"], life_ds).id,
           "lonely": running_vm(client, "lonely", ids["alone-1"], alone_ds).id}
    return dict(client=client, ids=ids, vms=vms)


def host_state(client, name):
    host = client.hostpool().named(name)
    return None if host is None else host.state_name


def test_retire_without_another_host_fails_naming_the_vm_and_changes_nothing(site, real_oned, tmp_path):
    client, vm_id = site["client"], site["vms"]["lonely"]
    for drain, words in (("live", ["no other enabled host of its cluster alone"]),
                         ("none", ["with drain none"])):
        run = run_tasks(tmp_path, [hosts_task("retire alone-1", [{"name": "alone-1", "state": "absent"}], "alone",
                                              ignore=True, drain=drain)], real_oned)
        res = run[0]
        assert res["failed"] and res["changed"] is False, res
        message = res["errors"]["alone-1"]
        assert "alone-1" in message and "%d (lonely, RUNNING)" % vm_id in message, message
        for word in words:
            assert word in message, message
    assert host_state(client, "alone-1") == "MONITORED"
    vm = client.vm_info(vm_id)
    assert vm.hid == site["ids"]["alone-1"] and vm.state_name == RUNNING


def test_check_mode_reports_the_retirement_without_doing_it(site, real_oned, tmp_path):
    client, ids, vm_id = site["client"], site["ids"], site["vms"]["web"]
    hosts = [{"name": "life-1", "state": "absent"}, {"name": "life-2", "state": "enabled"}]
    run = run_tasks(tmp_path, [hosts_task("retire life-1", hosts, "life", drain="live")], real_oned,
                    check=True, diff=True)
    res = run[0]
    assert res["changed"] and not res.get("failed"), res
    assert res["hosts"]["life-1"]["actions"] == [
        "set status disabled", "migrate VM %d (web) live to host life-2 (%d)" % (vm_id, ids["life-2"]), "delete"]
    assert res["hosts"]["life-1"]["vms"] == [dict(id=vm_id, name="web", state=RUNNING, to="life-2",
                                                 to_id=ids["life-2"], live=True)]
    assert res["diff"]["after"]["life-1"] == {}
    assert host_state(client, "life-1") == "MONITORED"
    assert client.vm_info(vm_id).hid == ids["life-1"]


def test_retire_moves_the_running_vm_then_deletes_the_host(site, real_oned, tmp_path):
    client, ids, vm_id = site["client"], site["ids"], site["vms"]["web"]
    hosts = [{"name": "life-1", "state": "absent"}, {"name": "life-2", "state": "enabled"}]
    run = run_tasks(tmp_path, [hosts_task("retire life-1", hosts, "life", drain="live"),
                               hosts_task("again", hosts, "life", drain="live")], real_oned)
    assert run.rc == 0, run.stdout[-3000:]
    first, again = run[0], run[1]
    assert first["changed"] and first["summary"]["migrated"] == 1 and first["summary"]["deleted"] == 1
    assert first["unlisted"] == []
    vm = client.vm_info(vm_id)
    assert vm.state_name == RUNNING and vm.hid == ids["life-2"] and vm.rstime > 0
    assert host_state(client, "life-1") is None
    assert not again["changed"] and again["summary"]["unchanged"] == 2


def test_disabled_and_offline_states_are_set_and_kept(site, real_oned, tmp_path):
    client = site["client"]
    for state, shown in (("disabled", "DISABLED"), ("offline", "OFFLINE"), ("enabled", "MONITORED")):
        hosts = [{"name": "life-2", "state": state}]
        run = run_tasks(tmp_path, [hosts_task("set " + state, hosts, "life"),
                                   hosts_task(state + " again", hosts, "life")], real_oned)
        assert run.rc == 0, run.stdout[-3000:]
        assert run[0]["changed"] and run[0]["hosts"]["life-2"]["actions"] == ["set status " + state]
        assert not run[1]["changed"]
        assert host_state(client, "life-2") == shown
    # a VM keeps running on a host that is disabled, then enabled again
    assert client.vm_info(site["vms"]["web"]).state_name == RUNNING


def test_unlisted_names_the_hosts_the_list_leaves_out(site, real_oned, tmp_path):
    run = run_tasks(tmp_path, [hosts_task("a new host only", ["alone-new"], "alone")], real_oned, check=True)
    res = run[0]
    assert [(h["name"], h["vms"]) for h in res["unlisted"]] == [("alone-1", [site["vms"]["lonely"]])]
    assert site["client"].hostpool().named("alone-1") is not None


def test_retire_moves_a_powered_off_vm_too(real_oned, tmp_path):
    client = real_oned.client()
    cluster, ds = make_cluster(client, "cold")
    ids = register(client, ["cold-1", "cold-2"], cluster)
    vm_id = running_vm(client, "sleeper", ids["cold-1"], ds).id
    client.call("one.vm.action", "poweroff", vm_id)
    wait_vm(client, vm_id, ids["cold-1"], "POWEROFF")
    hosts = [{"name": "cold-1", "state": "absent"}, "cold-2"]
    run = run_tasks(tmp_path, [hosts_task("retire cold-1", hosts, "cold", drain="live"),
                               hosts_task("again", hosts, "cold", drain="live")], real_oned)
    assert run.rc == 0, run.stdout[-3000:]
    assert run[0]["hosts"]["cold-1"]["vms"] == [dict(id=vm_id, name="sleeper", state="POWEROFF", to="cold-2",
                                                    to_id=ids["cold-2"], live=False)]
    vm = client.vm_info(vm_id)
    assert vm.state_name == "POWEROFF" and vm.hid == ids["cold-2"] and vm.petime > 0
    assert host_state(client, "cold-1") is None and not run[1]["changed"]
