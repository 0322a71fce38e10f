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

import sys
import time
from pathlib import Path

import pytest
import yaml

from preflight_testlib import ROOT, run_cases

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


def run_site(server, work):
    home = work / "oneadmin"
    (home / ".one").mkdir(parents=True, exist_ok=True)
    (home / ".one" / "one_auth").write_text("oneadmin:%s\n" % server.password)
    site = yaml.safe_load(SITE.read_text(encoding="utf-8"))
    site["site_one_repo_key"] = str(work / "one-repo-key.asc")
    (work / "one-repo-key.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n")
    site.update(site_one_api_port=server.port, frontend_oneadmin_home=str(home))
    fe = {"frontend_nodes": ALL, "frontend_node_states": STATES, "frontend_nodes_wait_timeout": 120}
    nodes = {name: {"site_networks": [PUBLIC, PRIVATE]} for name in ALL}
    return run_cases(work, PLAY, {"frontend": {"fe": fe}, "others": nodes}, site=site, args=["--limit", "fe"])


@pytest.fixture(scope="module")
def runs(oned, tmp_path_factory):
    server = oned[0]
    first = run_site(server, tmp_path_factory.mktemp("lifecycle-first"))
    again = run_site(server, tmp_path_factory.mktemp("lifecycle-again"))
    return first, again


def test_the_retired_node_left_and_its_vm_runs_on_another_node(runs, oned):
    first, _ = runs
    _, client, vm_id, ids = oned
    assert first.passed("fe"), first.failures("fe") or first.output[-3000:]
    vm = client.vm_info(vm_id)
    assert vm.state_name == "RUNNING" and vm.hid == ids["lc-b"], (vm.state_name, vm.hostname)
    hosts = {h.name: h.state_name for h in client.hostpool()}
    assert hosts == {"lc-b": "MONITORED", "lc-c": "DISABLED"}
    drain = [r for r in first.results("fe") if "retire | Move the retired nodes' VMs" in r["task"]]
    assert drain and drain[0]["changed"] and drain[0]["summary"]["migrated"] == 1, drain


def test_the_rerun_changes_nothing(runs, oned):
    _, again = runs
    assert again.passed("fe"), again.failures("fe") or again.output[-3000:]
    assert again.report["stats"]["fe"]["changed"] == 0, [r["task"] for r in again.results("fe") if r.get("changed")]
