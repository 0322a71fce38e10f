"""The frontend role's entry points retire and nodes, as site.yml runs them
(playbooks/node_drain.yml, then playbooks/frontend_nodes.yml), against the
real OpenNebula 7.4.0: a node hosting a running VM is retired, the VM keeps
running on another node, the retired node is gone from OpenNebula, the
other nodes take the states hosts.yml gives them, and the rerun changes
nothing.

The real oned (tools/opennebula/run-oned-tree, dummy drivers) holds the
demo site's cluster with lc-a (a RUNNING VM), lc-b and lc-c, registered
beforehand: the role registers new nodes with the kvm drivers, which need a
real node. The play runs on this machine (connection local) with the demo
site file, the oned's port and oneadmin's credentials; each node's state is
frontend_node_states, which site_node_state gives on a real site.
"""

import pytest

from node_lifecycle_testlib import ALL, demo_site, lifecycle_oned, needs_real_oned, node_hosts  # noqa: F401
from preflight_testlib import run_cases

pytestmark = needs_real_oned

STATES = {"lc-a": "retired", "lc-b": "enabled", "lc-c": "disabled"}

PLAY = """
- name: Retire the retired nodes (playbooks/node_drain.yml)
  hosts: fe
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - name: Drain and delete every node whose site_node_state is retired
      ansible.builtin.include_role:
        name: frontend
        tasks_from: retire.yml

- name: Register the nodes (playbooks/frontend_nodes.yml)
  hosts: fe
  gather_facts: false
  tasks:
    - name: Register every node of group nodes and wait until monitored
      ansible.builtin.include_role:
        name: frontend
        tasks_from: nodes.yml
"""


def run_site(server, work):
    site = demo_site(server, work)
    fe = {"frontend_nodes": ALL, "frontend_node_states": STATES, "frontend_nodes_wait_timeout": 120}
    return run_cases(work, PLAY, {"frontend": {"fe": fe}, "others": node_hosts()}, site=site, args=["--limit", "fe"])


@pytest.fixture(scope="module")
def runs(lifecycle_oned, tmp_path_factory):
    server = lifecycle_oned[0]
    first = run_site(server, tmp_path_factory.mktemp("lifecycle-first"))
    again = run_site(server, tmp_path_factory.mktemp("lifecycle-again"))
    return first, again


def test_the_retired_node_left_and_its_vm_runs_on_another_node(runs, lifecycle_oned):
    first, _ = runs
    _, client, vm_id, ids = lifecycle_oned
    assert first.passed("fe"), first.failures("fe") or first.output[-3000:]
    vm = client.vm_info(vm_id)
    assert vm.state_name == "RUNNING" and vm.hid == ids["lc-b"], (vm.state_name, vm.hostname)
    hosts = {h.name: h.state_name for h in client.hostpool()}
    assert hosts == {"lc-b": "MONITORED", "lc-c": "DISABLED"}
    drain = [r for r in first.results("fe") if "retire | Move the retired nodes' VMs" in r["task"]]
    assert drain and drain[0]["changed"] and drain[0]["summary"]["migrated"] == 1, drain


def test_the_rerun_changes_nothing(runs, lifecycle_oned):
    _, again = runs
    assert again.passed("fe"), again.failures("fe") or again.output[-3000:]
    assert again.report["stats"]["fe"]["changed"] == 0, [r["task"] for r in again.results("fe") if r.get("changed")]
