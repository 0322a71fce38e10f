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

import pytest

from node_lifecycle_testlib import ALL, demo_site, lifecycle_oned, needs_real_oned, node_hosts  # noqa: F401
from preflight_testlib import case_host, preflight_play, run_cases

pytestmark = needs_real_oned


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
def run(lifecycle_oned, tmp_path_factory):
    server, _, _, _ = lifecycle_oned
    work = tmp_path_factory.mktemp("lifecycle_preflight")
    site = demo_site(server, work)
    hosts = {case_host(case): dict(values) for case, values in GOOD.items()}
    hosts.update({case_host(case): dict(values) for case, (values, _) in BAD.items()})
    return run_cases(work, preflight_play("frontend"), {"cases": hosts, "others": node_hosts()}, site=site,
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


def test_the_preflight_changes_nothing(run, lifecycle_oned):
    _, client, vm, ids = lifecycle_oned
    hosts = client.hostpool()
    assert sorted(h.name for h in hosts) == ALL
    assert all(h.state_name == "MONITORED" for h in hosts), [(h.name, h.state_name) for h in hosts]
    assert client.vm_info(vm).hid == ids["lc-a"]
    assert all(stats["changed"] == 0 for stats in run.report["stats"].values()), run.report["stats"]
