"""The site firewall's preflight refuses bad rules before any change, naming the variable.

playbooks/preflight.yml checks each host's firewall in its last play, once
every role has declared the ports it needs there: the base role's
tasks/preflight_firewall.yml, after the base role's own preflight (which
checks the firewall options' types against meta/argument_specs.yml). Here
both run as playbooks/preflight.yml runs them, with ansible-playbook on this
machine (connection local, and --check: preflight only reads), in one run
for every case: one local host per case, a good site file's firewall values
as the inventory's group vars and the case's mistake as its host vars. Each
case host must fail with a message naming the site file variable to fix;
the control hosts, with no change, must pass.

A local connection has no SSH session to cut: the cases of the control
machine's own SSH give the host the session Ansible would have
(``case_ssh_connection``: client address and port, server address and
port, as SSH_CONNECTION holds them on the host), and the play marks the
connection as SSH, as the role does for ansible_connection ssh.

The entry point firewall is shown to refuse to run on a host whose rules
this run did not check (a run without playbooks/preflight.yml).
"""

import pytest

from preflight_testlib import assert_refused, bad_case_host, bad_cases, case_hosts, run_cases

PLAY = """\
- name: Run the base role's preflight, then the firewall's, as playbooks/preflight.yml does
  hosts: cases
  gather_facts: false
  tasks:
    - name: Load the base role's OS data
      ansible.builtin.include_role:
        name: base
        tasks_from: set_vars.yml
    - name: Run the base role's preflight
      ansible.builtin.include_role:
        name: base
        tasks_from: preflight.yml
    - name: Run the firewall's preflight with the rules the host's roles declared
      ansible.builtin.include_role:
        name: base
        tasks_from: preflight_firewall.yml
      vars:
        base_firewall_role_rules: "{{ case_role_rules | default([]) }}"
        __base_firewall_over_ssh: "{{ case_ssh_connection is defined }}"
        __base_firewall_ssh_connection: "{{ case_ssh_connection | default('') }}"

- name: Render the firewall on a host whose rules no preflight checked in this run
  hosts: unchecked
  gather_facts: false
  tasks:
    - name: Run the base role's entry point firewall
      ansible.builtin.include_role:
        name: base
        tasks_from: firewall.yml
"""

GOOD = {
    "site_oneadmin_uid": 9869, "site_oneadmin_gid": 9869, "site_domain": "test.invalid", "site_ntp_servers": [],
    "site_firewall_enabled": True,
    "site_firewall_admin_networks": ["192.0.2.0/28", "2001:db8:1::/64"],
    "site_firewall_client_networks": ["198.51.100.0/24"],
    "site_firewall_extra_rules": [{"name": "Node exporter", "proto": "tcp", "ports": [9100],
                                   "sources": ["192.0.2.50"]}],
}
LDAP_RULE = {"name": "LDAP (slapd), StartTLS and LDAPS", "role": "ldap", "proto": "tcp", "ports": [389, 636],
             "sources": ["site"], "label": "site_firewall_ldap_sources (ldap_firewall_sources)"}


def _extra(**changes):
    return {"site_firewall_extra_rules": [dict(GOOD["site_firewall_extra_rules"][0], **changes)]}


# Each kind of mistake: (the case's host variables, what its failure says).
BAD = [
    # The site's networks.
    ({"site_firewall_admin_networks": ["campus"]}, ["site_firewall_admin_networks[0] 'campus'",
                                                   "neither an IP address nor a network"]),
    ({"site_firewall_admin_networks": ["192.0.2.5/24"]}, ["site_firewall_admin_networks[0]", "host bits",
                                                         "192.0.2.0/24"]),
    ({"site_firewall_client_networks": ["*"]}, ["site_firewall_client_networks[0] '*'"]),
    ({"site_firewall_admin_networks": "192.0.2.0/28"}, ["site_firewall_admin_networks (base_firewall_admin_networks)",
                                                        "a string, not a list"]),
    ({"site_firewall_enabled": "yes"}, ["site_firewall_enabled (base_firewall_enabled)", "true or false"]),
    # The site's own rules: ports, protocol, sources, shape.
    (_extra(ports=[0]), ["site_firewall_extra_rules[0].ports[0] is 0", "from 1 to 65535"]),
    (_extra(ports=[70000]), ["site_firewall_extra_rules[0].ports[0] is 70000"]),
    (_extra(ports=["9100-9000"]), ["site_firewall_extra_rules[0].ports[0] is '9100-9000'", "first not above last"]),
    (_extra(ports=["http"]), ["site_firewall_extra_rules[0].ports[0] is 'http'"]),
    (_extra(proto="icmp"), ["site_firewall_extra_rules[0].proto is 'icmp'", "tcp, udp or [tcp, udp]"]),
    (_extra(sources=["monitoring.example.org"]), ["site_firewall_extra_rules[0] source 'monitoring.example.org'",
                                                  "neither an IP address"]),
    (_extra(sources=["192.0.2.50/24"]), ["site_firewall_extra_rules[0] source '192.0.2.50/24'", "host bits"]),
    (_extra(sources=["group:monitoring"]), ["source 'group:monitoring' names no group of hosts.yml"]),
    (_extra(sources=["host:prometheus"]), ["source 'host:prometheus' names no host of hosts.yml"]),
    (_extra(sources="192.0.2.50"), ["site_firewall_extra_rules", "sources", "a string, not a list"]),
    (_extra(port=9100), ["site_firewall_extra_rules", "unknown key 'port'", "did you mean ports?"]),
    ({"site_firewall_extra_rules": [{"ports": [9100], "sources": ["site"]}]},
     ["site_firewall_extra_rules", ".name", "is missing"]),
    # A rule a role declared, from a site file value of that role.
    ({"case_role_rules": [dict(LDAP_RULE, sources=["site", "admins"])]},
     ["the ldap role's rule 'LDAP (slapd), StartTLS and LDAPS'",
      "(from site_firewall_ldap_sources (ldap_firewall_sources)) source 'admins'"]),
    ({"case_role_rules": [dict(LDAP_RULE, ports=[389, 65536])]}, ["the ldap role's rule", "ports[1] is 65536"]),
    # A host a rule names without an address the firewall can accept.
    ({"case_role_rules": [dict(LDAP_RULE, sources=["group:spare"])]},
     ["host spare1 (group spare) has no address", "site_address"]),
    # The control machine's own SSH.
    ({"case_ssh_connection": "203.0.113.9 51000 192.0.2.10 22"},
     ["no rule accepts the control machine's own SSH (from 203.0.113.9", "port 22/tcp",
      "Add 203.0.113.9 or its network to site_firewall_admin_networks"]),
    ({"case_ssh_connection": "192.0.2.3 51000 192.0.2.10 2222"},
     ["no rule accepts the control machine's own SSH (from 192.0.2.3", "port 2222/tcp"]),
    ({"case_ssh_connection": "192.0.2.3 51000 192.0.2.10 22", "base_firewall_ssh_port": 2222},
     ["no rule accepts the control machine's own SSH (from 192.0.2.3", "port 22/tcp"]),
    ({"case_ssh_connection": ""}, ["cannot tell where the control machine connects from",
                                   "site_firewall_enabled: false"]),
]
ALL_AT_ONCE = {"site_firewall_admin_networks": ["campus"], "site_firewall_client_networks": ["10.0.0.1/8"],
               "site_firewall_extra_rules": [{"name": "x", "ports": [0], "sources": ["nowhere"]}]}
# Hosts that must pass: the good site file as it is; the control machine's
# SSH accepted by the administration networks (IPv4 and IPv6, the latter as
# a mapped address too) or by a site rule; the firewall off, where its
# networks are not read.
GOOD_HOSTS = {
    "control": {},
    "control_ssh": {"case_ssh_connection": "192.0.2.3 51000 192.0.2.10 22"},
    "control_ssh_v6": {"case_ssh_connection": "2001:db8:1::9 51000 2001:db8:1::10 22"},
    "control_ssh_mapped": {"case_ssh_connection": "::ffff:192.0.2.3 51000 ::ffff:192.0.2.10 22"},
    "control_ssh_by_site_rule": {"case_ssh_connection": "192.0.2.50 51000 192.0.2.10 9100",
                                 "base_firewall_ssh_port": 9100},
    "control_disabled": {"site_firewall_enabled": False, "site_firewall_admin_networks": ["campus"]},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The one run of every case: a host per case, the control hosts, and a host no preflight checked."""
    hosts = case_hosts(BAD)
    hosts.update(GOOD_HOSTS, case_all_at_once=ALL_AT_ONCE)
    hosts = {host: dict({"site_address": "127.0.0.1"}, **variables) for host, variables in hosts.items()}
    return run_cases(tmp_path_factory.mktemp("firewall_preflight"), PLAY,
                     {"cases": hosts, "unchecked": {"unchecked1": {"site_address": "127.0.0.1"}},
                      # A site host with no address the firewall can accept (no site_address, no facts).
                      "spare": {"spare1": {}}},
                     # spare1 has no address for /etc/hosts either: base's own check of it is not this file's.
                     site=dict(GOOD, base_manage_etc_hosts=False), args=["--check"])


def _ruleset(run, host):
    """The rules the preflight worked out for ``host`` (its last set_fact)."""
    facts = [result["ansible_facts"] for result in run.results(host)
             if "__base_firewall_ruleset" in result.get("ansible_facts", {})]
    assert facts, run.output[-3000:]
    return facts[-1]["__base_firewall_ruleset"]


@pytest.mark.parametrize("host", sorted(GOOD_HOSTS))
def test_good_values_pass(run, host):
    assert run.passed(host), run.failures(host) or run.output[-3000:]


def test_the_checked_rules_are_kept_for_the_entry_point(run):
    rules = _ruleset(run, "control")
    assert [(rule["role"], rule["name"], rule["match"]) for rule in rules] == [
        ("base", "SSH from the administration networks", "tcp dport { 22 }"),
        ("site", "Node exporter", "tcp dport { 9100 }")]
    assert rules[0]["ipv4"] == ["192.0.2.0/28"] and rules[0]["ipv6"] == ["2001:db8:1::/64"]
    assert rules[1]["ipv4"] == ["192.0.2.50"]


def test_a_disabled_firewall_keeps_no_rule(run):
    assert _ruleset(run, "control_disabled") == []


@bad_cases(BAD)
def test_bad_values_fail_naming_the_variable(run, changes, names):
    assert_refused(run, bad_case_host(BAD, changes), changes, ["base: "] + names)


def test_every_broken_rule_is_reported_at_once(run):
    assert_refused(run, "case_all_at_once", ALL_AT_ONCE, [
        "site_firewall_admin_networks[0] 'campus'", "site_firewall_client_networks[0] '10.0.0.1/8'",
        "site_firewall_extra_rules[0].ports[0] is 0", "site_firewall_extra_rules[0] source 'nowhere'"])


def test_the_entry_point_refuses_rules_no_preflight_checked(run):
    output = run.failures("unchecked1")
    assert "playbooks/preflight.yml" in output and "site.yml or playbooks/firewall.yml" in output, \
        output or run.output[-3000:]
    # It stopped at its first check: nothing was installed or rendered.
    assert not [result for result in run.results("unchecked1")
                if result["task"].startswith("firewall_on") and not result.get("skipped")]
