"""What live migration between the nodes needs from the kvm_node role, rendered as on a site.

A play on this machine (connection local, nothing written outside tmp_path)
loads the kvm_node role's vars/main.yml for a site of three nodes, one of
them retired, fakes what tasks/ssh.yml reads from each node (its own
oneadmin key, its host keys), and renders what the role renders:

- qemu.conf: ``migration_host`` is each node's site address, where the
  other nodes' qemu sends a migrating VM;
- the nodes each node trusts (authorised key and known host keys) and
  drops: every other node but the retired one, and a retired node none;
- the firewall rules the role declares: libvirt's migration ports open to
  the nodes only, and no opening for the front-end overlaps them, with the
  frontend role's oned.conf keeping every VM console below them.
"""

import copy
import json
import re

import pytest

from preflight_testlib import ROOT, run_playbook

INVENTORY = {"all": {"children": {
    "frontend": {"hosts": {"fe": {"site_address": "192.0.2.10"}}},
    "nodes": {"hosts": {"n1": {"site_address": "192.0.2.1"}, "n2": {"site_address": "192.0.2.2"},
                        "n3": {"site_address": "192.0.2.3", "site_node_state": "retired"}}}}}}

PLAY = """
- name: Render what the kvm_node role renders for live migration
  hosts: nodes
  gather_facts: false
  vars:
    kvm_node_nodes_group: nodes
    kvm_node_frontend_group: frontend
    kvm_node_domain: unit.test
    kvm_node_qemu_user: oneadmin
    kvm_node_qemu_group: oneadmin
    kvm_node_qemu_dynamic_ownership: false
  vars_files:
    - {root}/roles/kvm_node/vars/main.yml
  tasks:
    - name: Fake what tasks/ssh.yml reads from each node (a retired node reads nothing)
      ansible.builtin.set_fact:
        __kvm_node_own_pubkey: "{{{{ '' if inventory_hostname == 'n3' else 'ssh-ed25519 K' ~ inventory_hostname }}}}"
        __kvm_node_known: "{{{{ [] if inventory_hostname == 'n3' else [inventory_hostname ~ ' ssh-ed25519 H'] }}}}"
    - name: Render qemu.conf
      ansible.builtin.template:
        src: {root}/roles/kvm_node/templates/qemu.conf.j2
        dest: "{{{{ work }}}}/qemu-{{{{ inventory_hostname }}}}.conf"
        mode: "0600"
      delegate_to: localhost
    - name: Write the peers and the firewall rules
      ansible.builtin.copy:
        content: "{{{{ {{'peers': __kvm_node_peers, 'rules': __kvm_node_firewall_rules}} | to_json }}}}"
        dest: "{{{{ work }}}}/trust-{{{{ inventory_hostname }}}}.json"
        mode: "0600"
      delegate_to: localhost
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    work = tmp_path_factory.mktemp("kvm_node_migration")
    inventory = copy.deepcopy(INVENTORY)
    inventory["all"]["vars"] = {"ansible_connection": "local"}
    proc = run_playbook(work, PLAY.format(root=ROOT), inventory, extra_vars={"work": str(work)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {name: {"qemu": (work / ("qemu-%s.conf" % name)).read_text(encoding="utf-8"),
                   **json.loads((work / ("trust-%s.json" % name)).read_text(encoding="utf-8"))}
            for name in ("n1", "n2", "n3")}


@pytest.mark.parametrize("node, address", [("n1", "192.0.2.1"), ("n2", "192.0.2.2"), ("n3", "192.0.2.3")])
def test_qemu_conf_gives_the_nodes_site_address_as_migration_host(rendered, node, address):
    assert re.findall(r'^migration_host = "(.*)"$', rendered[node]["qemu"], re.M) == [address]


def test_each_node_trusts_the_other_nodes_and_drops_the_retired_one(rendered):
    assert rendered["n1"]["peers"] == {"complete": True, "authorized": ["ssh-ed25519 Kn2"], "known": ["n2 ssh-ed25519 H"]}
    assert rendered["n2"]["peers"] == {"complete": True, "authorized": ["ssh-ed25519 Kn1"], "known": ["n1 ssh-ed25519 H"]}


def test_the_retired_node_trusts_no_one(rendered):
    assert rendered["n3"]["peers"] == {"complete": True, "authorized": [], "known": []}


def _ranges(ports):
    for port in ports:
        first, _, last = str(port).partition("-")
        yield int(first), int(last or first)


def test_migration_ports_are_open_to_the_nodes_only(rendered):
    rules = rendered["n1"]["rules"]
    migration = [rule for rule in rules if (49152, 49215) in set(_ranges(rule["ports"]))]
    assert len(migration) == 1 and migration[0]["sources"] == ["group:nodes"], rules
    # No rule for another source (the front-end's VNC consoles) reaches a migration port.
    for rule in rules:
        if rule["sources"] != ["group:nodes"]:
            assert all(last < 49152 or first > 49215 for first, last in _ranges(rule["ports"])), rule


def test_vm_consoles_stay_below_the_ports_oned_reserves(rendered):
    vnc = [rule for rule in rendered["n1"]["rules"] if "VNC" in rule["name"]]
    assert len(vnc) == 1 and max(last for _, last in _ranges(vnc[0]["ports"])) < 32768, vnc
    oned_conf = (ROOT / "roles" / "frontend" / "templates" / "oned.conf.j2").read_text(encoding="utf-8")
    block = re.search(r"^VNC_PORTS = \[(.*?)\]", oned_conf, re.M | re.S)
    assert block and re.search(r'RESERVED\s*=\s*"32768:65536"', block.group(1)), block
