"""The frontend role's preflight holds the nodes' states (site_node_state in
hosts.yml) to what the real OpenNebula 7.4.0 knows, before any change.

A real oned (tools/opennebula/run-oned-tree, dummy drivers) holds the demo
site's cluster with three hosts: lc-a runs a VM, lc-b and lc-c none. Each
case is a local host running the role's set_vars.yml and preflight.yml (as
playbooks/preflight.yml does) with the demo site file, the oned's port and
oneadmin's credentials, and its own nodes and states (frontend_nodes,
frontend_node_states, which site_node_state gives on a real site). Kinds
refused, each naming the variable or the step to fix: a bad state, a node
registered but no longer in hosts.yml, a retired node whose VMs have
nowhere to go (the last enabled node, or live migration off). Nothing is
written: the VM still runs on lc-a afterwards.
"""

import sys
import time
from pathlib import Path

import pytest
import yaml

from preflight_testlib import ROOT, case_host, preflight_play, run_cases

sys.path.insert(0, str(Path(__file__).resolve().parent / "opennebula"))
from one_testlib import RealOned, needs_real_oned  # noqa: E402

pytestmark = needs_real_oned

SITE = ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml"
CLUSTER = "demo"  # the demo site file's site_one_cluster
PUBLIC = {"name": "public", "bridge": "brpublic", "interface": "eth0", "cidr": "10.89.7.0/24",
          "gateway": "10.89.7.1", "range": {"first": "10.89.7.100", "last": "10.89.7.199"}}
PRIVATE = {"name": "private", "bridge": "brprivate", "interface": "eth1", "cidr": "10.89.8.0/24",
           "leases": ["10.89.8.100", "10.89.8.101"]}
ALL = ["lc-a", "lc-b", "lc-c"]


def states(**given):
    return {name: given.get(name.replace("-", "_"), "enabled") for name in ALL}


GOOD = {
    "every node enabled": {"frontend_nodes": ALL},
    "a node without VMs retired": {"frontend_nodes": ALL, "frontend_node_states": states(lc_b="retired")},
    "the node with a VM retired, another enabled": {
        "frontend_nodes": ALL, "frontend_node_states": states(lc_a="retired", lc_c="disabled")},
    "disabled and offline nodes": {"frontend_nodes": ALL, "frontend_node_states": states(lc_b="disabled",
                                                                                          lc_c="offline")},
}
BAD = {
    "a bad state value": (
        {"frontend_nodes": ALL, "frontend_node_states": states(lc_b="retire")},
        ["site_node_state of node lc-b (hosts.yml) is 'retire'", "enabled, disabled, offline, retired"]),
    "a node registered but not in the inventory": (
        {"frontend_nodes": ["lc-a", "lc-b"]},
        ["node lc-c is registered in OpenNebula's cluster demo", "not in group nodes of hosts.yml",
         "site_node_state: retired"]),
    "retiring the last enabled node while it hosts a VM": (
        {"frontend_nodes": ALL, "frontend_node_states": states(lc_a="retired", lc_b="disabled", lc_c="offline")},
        ["site_node_state of node lc-a is retired, but its VMs cannot leave it", "(lcvm, RUNNING)",
         "no other enabled host of its cluster demo"]),
    "retiring a node with a VM, live migration off": (
        {"frontend_nodes": ALL, "frontend_node_states": states(lc_a="retired"),
         "frontend_node_live_migration": False},
        ["site_node_state of node lc-a is retired", "(lcvm, RUNNING)", "site_node_live_migration is false"]),
}


@pytest.fixture(scope="module")
def oned(tmp_path_factory):
    server = RealOned(tmp_path_factory.mktemp("real-oned"))
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        client = server.client()
        cluster = client.cluster_allocate(CLUSTER)
        ds = client.datastore_allocate('NAME="lc-system"\nTYPE="SYSTEM_DS"\nTM_MAD="dummy"', cluster)
        ids = {name: client.host_allocate(name, "dummy", "dummy", cluster) for name in ALL}
        client.wait_hosts(list(ids.values()), timeout=120, interval=0.2)
        vm = client.call("one.vm.allocate", 'NAME="lcvm"\nCPU="0.1"\nMEMORY="64"', True)
        client.call("one.vm.deploy", vm, ids["lc-a"], False, ds)
        deadline = time.monotonic() + 60
        while client.vm_info(vm).state_name != "RUNNING":
            assert time.monotonic() < deadline, "the test VM did not start"
            time.sleep(0.2)
        yield server, client, vm, ids
    finally:
        server.stop()


@pytest.fixture(scope="module")
def run(oned, tmp_path_factory):
    server, _, _, _ = oned
    work = tmp_path_factory.mktemp("lifecycle_preflight")
    home = work / "oneadmin"
    (home / ".one").mkdir(parents=True)
    (home / ".one" / "one_auth").write_text("oneadmin:%s\n" % server.password)
    site = yaml.safe_load(SITE.read_text(encoding="utf-8"))
    site["site_one_repo_key"] = str(work / "one-repo-key.asc")
    (work / "one-repo-key.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n")
    site.update(site_one_api_port=server.port, frontend_oneadmin_home=str(home))
    hosts = {case_host(case): dict(values) for case, values in GOOD.items()}
    hosts.update({case_host(case): dict(values) for case, (values, _) in BAD.items()})
    nodes = {name: {"site_networks": [PUBLIC, PRIVATE]} for name in ALL}
    return run_cases(work, preflight_play("frontend"), {"cases": hosts, "others": nodes}, site=site,
                     args=["--limit", "cases"])


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_states_pass(run, case):
    assert run.passed(case_host(case)), run.failures(case_host(case)) or run.output[-3000:]


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_states_are_refused_naming_what_to_fix(run, case):
    failures = run.failures(case_host(case))
    assert failures, "case %r passed" % case
    for word in BAD[case][1]:
        assert word in failures, failures


def test_the_preflight_changes_nothing(run, oned):
    _, client, vm, ids = oned
    hosts = client.hostpool()
    assert sorted(h.name for h in hosts) == ALL
    assert all(h.state_name == "MONITORED" for h in hosts), [(h.name, h.state_name) for h in hosts]
    assert client.vm_info(vm).hid == ids["lc-a"]
    assert all(stats["changed"] == 0 for stats in run.report["stats"].values()), run.report["stats"]
