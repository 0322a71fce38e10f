"""The site firewall's rules file is valid nftables, and replaces only the project's own table.

The base role's templates/firewall.nft.j2 is rendered with ansible-playbook on
this machine (connection local, into tmp_path) from rules of every shape the
filter sl_firewall_rules gives: one protocol and two, single ports and
ranges, IPv4 and IPv6 sources, a rule whose sources have no address. Then:

- ``nft -c -f`` (check only: the kernel parses and validates the whole
  transaction without applying it) accepts the file, when this machine has
  nft and the right to use it; otherwise that test is skipped and the
  molecule scenario `site` is where it runs;
- the file never flushes the ruleset and touches no other table: it
  declares, deletes and defines ``table inet stratuslab`` only;
- its input chain drops by default and accepts established connections,
  the loopback and ICMP first; it has no output or forward chain.
"""

import os
import re
import shutil
import subprocess

import pytest

from preflight_testlib import ROOT, run_playbook

FIREWALL = {
    "rules": [
        {"name": "SSH from the administration networks", "role": "base", "proto": "tcp", "ports": [22],
         "sources": ["admin"]},
        {"name": "OpenNebula monitor daemon, the nodes' probes", "role": "frontend", "proto": ["tcp", "udp"],
         "ports": [4124], "sources": ["group:nodes"]},
        {"name": "libvirt live migration", "role": "kvm_node", "proto": "tcp", "ports": ["49152-49215", 5900],
         "sources": ["group:nodes", "2001:db8::/64"]},
        {"name": "A role's rule for a group the site does not have", "role": "accounting", "proto": "tcp",
         "ports": [8443], "sources": ["group:accounting"]},
    ],
    "extra": [{"name": "Node exporter", "ports": [9100], "sources": ["192.0.2.50", "2001:db8::50"]}],
    "networks": {"admin": ["203.0.113.0/28"], "clients": []},
    "labels": {},
}

PLAY = """\
- name: Render the firewall of node1
  hosts: node1
  gather_facts: false
  vars_files:
    - {root}/roles/base/vars/main.yml
  vars:
    __base_firewall_ruleset: "{{{{ firewall | sl_firewall_rules(hostvars, groups) }}}}"
  tasks:
    - name: Render the rules file and the unit
      ansible.builtin.template:
        src: "{root}/roles/base/templates/{{{{ item }}}}.j2"
        dest: "{{{{ work }}}}/{{{{ item }}}}"
        mode: "0600"
      loop: [firewall.nft, stratuslab-firewall.service]
      vars:
        __base_firewall_nft: /usr/sbin/nft
""".format(root=ROOT)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    work = tmp_path_factory.mktemp("firewall_template")
    inventory = {"all": {"vars": {"ansible_connection": "local"}, "children": {
        "frontend": {"hosts": {"one": {"site_address": "192.0.2.10"}}},
        "nodes": {"hosts": {"node1": {"site_address": "192.0.2.21"},
                            "node2": {"site_address": "192.0.2.22",
                                      "site_network_addresses": {"private": "198.51.100.22"}}}}}}}
    proc = run_playbook(work, PLAY, inventory, extra_vars={"firewall": FIREWALL, "work": str(work)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = {name: (work / name).read_text(encoding="utf-8")
             for name in ("firewall.nft", "stratuslab-firewall.service")}
    return dict(files, dir=work)


def _statements(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_only_the_projects_table_is_replaced_in_one_file(rendered):
    statements = _statements(rendered["firewall.nft"])
    assert statements[:3] == ["table inet stratuslab", "delete table inet stratuslab", "table inet stratuslab {"]
    assert not [s for s in statements if re.search(r"\bflush\b|\bruleset\b", s)], statements
    assert [s for s in statements if s.startswith("table ")] == statements[0:1] + statements[2:3]


def test_the_input_chain_drops_by_default_after_the_basics(rendered):
    statements = _statements(rendered["firewall.nft"])
    assert statements[3:10] == [
        "chain input {",
        "type filter hook input priority filter; policy drop;",
        "ct state established,related accept",
        "ct state invalid drop",
        'iif "lo" accept',
        "meta l4proto { icmp, ipv6-icmp } accept",
        "ip6 saddr fe80::/10 udp dport 546 accept",
    ]
    assert not [s for s in statements if re.search(r"hook (output|forward)", s)]


def test_each_rule_accepts_its_sources_on_its_ports(rendered):
    statements = _statements(rendered["firewall.nft"])
    assert 'ip saddr { 203.0.113.0/28 } tcp dport { 22 } accept comment "base: SSH from the administration networks"' \
        in statements
    assert ("ip saddr { 192.0.2.21, 192.0.2.22, 198.51.100.22 } meta l4proto { tcp, udp } th dport { 4124 } accept "
            "comment \"frontend: OpenNebula monitor daemon, the nodes' probes\"") in statements
    assert ('ip6 saddr { 2001:db8::/64 } tcp dport { 5900, 49152-49215 } accept comment '
            '"kvm_node: libvirt live migration"') in statements
    assert 'ip6 saddr { 2001:db8::50 } tcp dport { 9100 } accept comment "site: Node exporter"' in statements
    # No source with an address: no rule, and no accept of everyone.
    assert not [s for s in statements if "8443" in s]
    assert "no source has an address" in rendered["firewall.nft"]


def test_the_unit_loads_reloads_and_removes_only_the_table(rendered):
    unit = rendered["stratuslab-firewall.service"]
    assert "ExecStart=/usr/sbin/nft -f /etc/stratuslab/firewall.nft" in unit
    assert "ExecReload=/usr/sbin/nft -f /etc/stratuslab/firewall.nft" in unit
    assert "ExecStop=/usr/sbin/nft 'add table inet stratuslab; delete table inet stratuslab'" in unit
    assert "RemainAfterExit=yes" in unit and "WantedBy=sysinit.target" in unit
    assert "Before=network-pre.target" in unit


@pytest.mark.skipif(not shutil.which("nft") or os.geteuid() != 0, reason="needs nft and root (nft -c asks the kernel)")
def test_nftables_accepts_the_file(rendered):
    check = subprocess.run(["nft", "-c", "-f", str(rendered["dir"] / "firewall.nft")], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stderr

