"""Bad inputs stop the bridge and kvm_node roles before anything changes.

Each case runs the roles' set_vars.yml and preflight.yml (which only read)
with ansible-playbook on this machine (connection local) against a small
inventory, and asserts a non-zero exit whose output names the variable to
fix. A good inventory passes, so the failures are the inputs' own. The
role's bridge_plan filter is also tested directly, for the DHCP path the
container tests cannot reach.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from preflight_testlib import ROOT, assert_run_refused, run_each, run_playbook

PLAYBOOK = """
- name: Preflight of the nodes roles
  hosts: nodes
  gather_facts: false
  tasks:
    - name: Bridge set_vars
      ansible.builtin.include_role: {name: bridge, tasks_from: set_vars.yml}
    - name: Bridge preflight
      ansible.builtin.include_role: {name: bridge, tasks_from: preflight.yml}
    - name: kvm_node set_vars
      ansible.builtin.include_role: {name: kvm_node, tasks_from: set_vars.yml}
    - name: kvm_node preflight
      ansible.builtin.include_role: {name: kvm_node, tasks_from: preflight.yml}
"""

# One network on the loopback interface, which every machine has.
GOOD_NETWORKS = [{"name": "loop", "bridge": "brloop", "interface": "lo", "cidr": "127.0.0.0/8"}]


# Hardware virtualisation on the machine running the tests (the node of
# every case): the kvm domain type is good there, and refused elsewhere.
HW_KVM = Path("/dev/kvm").exists() and any(Path("/sys/module", m).exists() for m in ("kvm_intel", "kvm_amd"))
GOOD_DOMAIN_TYPE = "kvm" if HW_KVM else "qemu"


def _inventory(nodes=None, frontend=("fe",), networks=None, domain_type=GOOD_DOMAIN_TYPE):
    nodes = nodes or {"node1": {}}
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {
        "all": {
            "vars": {"site_networks": networks if networks is not None else GOOD_NETWORKS,
                     "site_domain": "test.invalid", "site_kvm_domain_type": domain_type, **local},
            "children": {
                "frontend": {"hosts": {name: {"site_address": "127.0.0.1"} for name in frontend}},
                "nodes": {"hosts": {name: {"site_address": "127.0.0.1", **hv} for name, hv in nodes.items()}},
            },
        }
    }


def _run(case, work):
    proc = run_playbook(work, PLAYBOOK, CASES[case])
    return proc.returncode, proc.stdout + proc.stderr


GOOD = "good inputs"


BAD = {
    "bridge name over 15 bytes": (
        _inventory(networks=[dict(GOOD_NETWORKS[0], bridge="brthisistoolong0")]),
        ["site_networks[loop].bridge", "15"]),
    "interface missing on the node": (
        _inventory(networks=[dict(GOOD_NETWORKS[0], interface="ndmissing0")]),
        ["node1", "'loop'", "site_networks[loop].interface", "ndmissing0"]),
    "node address outside the cidr": (
        _inventory(nodes={"node1": {"site_network_addresses": {"loop": "10.9.9.9"}}}),
        ["node1", "10.9.9.9", "site_network_addresses.loop", "site_networks[loop].cidr"]),
    "duplicate bridge names": (
        _inventory(networks=GOOD_NETWORKS + [{"name": "other", "bridge": "brloop", "interface": "ndother0",
                                              "cidr": "10.99.0.0/24"}]),
        ["site_networks", "bridges ['brloop']"]),
    "two nodes with the same short name": (
        _inventory(nodes={"node1.a.test": {}, "NODE1.b.test": {}}),
        ["share the names", "node1", "hosts.yml"]),
    "a node named like the front-end": (
        _inventory(nodes={"fe.test.invalid": {}}),
        ["share the names", "fe"]),
    "empty front-end group": (
        _inventory(frontend=()),
        ["kvm_node_frontend_group", "'frontend'", "hosts.yml"]),
    "address given to two hosts": (
        _inventory(nodes={"node1": {"site_network_addresses": {"loop": "127.0.0.7"}},
                          "node2": {"site_network_addresses": {"loop": "127.0.0.7"}}}),
        ["site_network_addresses", "127.0.0.7"]),
}
if not HW_KVM:
    BAD["kvm domain type without hardware virtualisation"] = (
        _inventory(domain_type="kvm"),
        ["site_kvm_domain_type", "kvm_intel or kvm_amd", "node1", "site_kvm_domain_type: qemu"])
# Every case's inventory, the good one's among them.
CASES = dict({case: inventory for case, (inventory, _) in BAD.items()}, **{GOOD: _inventory()})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case's (rc, output), the playbooks run side by side (each takes seconds)."""
    return run_each(_run, tmp_path_factory.mktemp("nodes_preflight"), sorted(CASES), workers=4)


def test_good_inputs_pass(runs):
    rc, out = runs[GOOD]
    assert rc == 0, out


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_naming_the_variable(runs, case):
    assert_run_refused(runs[case], BAD[case][1], case)


# --- bridge_plan, the role's filter -------------------------------------------

def _filter():
    path = ROOT / "roles" / "bridge" / "filter_plugins" / "bridge_plan.py"
    spec = importlib.util.spec_from_file_location("bridge_plan", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.bridge_plan


NETS = [{"name": "public", "bridge": "brpublic", "interface": "eth0", "cidr": "10.0.0.0/24"},
        {"name": "private", "bridge": "brprivate", "interface": "eth1", "cidr": "10.1.0.0/24"}]


def _link(name, mac, *addresses, dynamic=False):
    info = [{"family": "inet", "local": a.split("/")[0], "prefixlen": int(a.split("/")[1])} for a in addresses]
    if dynamic:
        for item in info:
            item["dynamic"] = True
    return {"ifname": name, "address": mac, "addr_info": info}


def test_plan_keeps_dhcp_and_the_mac():
    links = [_link("eth0", "52:54:00:00:00:01", "10.0.0.5/24", dynamic=True), _link("eth1", "52:54:00:00:00:02")]
    routes = [{"dst": "default", "gateway": "10.0.0.1", "dev": "eth0", "protocol": "dhcp", "metric": 1024}]
    public, private = _filter()(NETS, links, routes, {}, "10.0.0.5")
    assert public["method"] == "dhcp" and public["mac"] == "52:54:00:00:00:01"
    assert public["routes"] == []  # DHCP brings its own routes back
    assert private["method"] == "none" and private["exists"]


def test_plan_moves_static_address_and_routes_then_stays_the_same():
    before = [_link("eth0", "52:54:00:00:00:01", "10.0.0.5/24"), _link("eth1", "52:54:00:00:00:02", "10.1.0.9/24")]
    routes = [{"dst": "default", "gateway": "10.0.0.1", "dev": "eth0", "protocol": "static", "metric": 100},
              {"dst": "10.1.0.0/24", "dev": "eth1", "protocol": "kernel"}]
    plan = _filter()(NETS, before, routes, {"private": "10.1.0.9"}, "10.0.0.5")
    assert plan[0]["addresses"] == ["10.0.0.5/24"]
    assert plan[0]["routes"] == [{"destination": "0.0.0.0/0", "gateway": "10.0.0.1", "metric": 100}]
    assert plan[1]["addresses"] == ["10.1.0.9/24"] and plan[1]["routes"] == []
    # Converged: the addresses and the route are on the bridges now.
    after = [_link("eth0", "52:54:00:00:00:01"), _link("brpublic", "52:54:00:00:00:01", "10.0.0.5/24"),
             _link("eth1", "52:54:00:00:00:02"), _link("brprivate", "52:54:00:00:00:02", "10.1.0.9/24")]
    moved = [dict(routes[0], dev="brpublic")]
    assert _filter()(NETS, after, moved, {"private": "10.1.0.9"}, "10.0.0.5") == plan


def test_plan_explicit_dhcp_and_missing_interface():
    plan = _filter()(NETS, [_link("eth0", "52:54:00:00:00:01")], [], {"private": "dhcp"}, "10.0.0.5")
    assert plan[0]["addresses"] == ["10.0.0.5/24"]  # no address yet: site_address
    assert plan[1]["method"] == "dhcp" and not plan[1]["exists"]


def test_plan_refuses_a_bad_cidr():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match=r"site_networks\[public\].cidr"):
        _filter()([dict(NETS[0], cidr="10.0.0.5/24")], [], [], {}, None)


def test_routes_json_shape_is_what_iproute2_prints():
    # Guard the probe's format: `ip -json -4 route show` on this machine.
    out = subprocess.run(["ip", "-json", "-4", "route", "show", "table", "main"],
                         capture_output=True, text=True, check=True).stdout
    assert isinstance(json.loads(out), list)
