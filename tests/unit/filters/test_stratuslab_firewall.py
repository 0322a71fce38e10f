"""Unit tests of filter_plugins/stratuslab_firewall.py (sl_firewall_rules, sl_firewall_errors)."""

import pytest
from ansible.errors import AnsibleFilterError
from filter_testlib import load_plugin

firewall = load_plugin("stratuslab_firewall")

HOSTVARS = {
    "one": {"site_address": "192.0.2.10"},
    "node1": {"site_address": "192.0.2.21", "site_network_addresses": {"private": "198.51.100.21"}},
    "node2": {"site_address": "192.0.2.22", "site_network_addresses": {"private": "dhcp"}},
    "svc": {"ansible_facts": {"default_ipv4": {"address": "192.0.2.5"}}},
    "v6": {"site_address": "2001:db8::7"},
}
GROUPS = {"all": ["one", "node1", "node2", "svc", "v6"], "ungrouped": [], "frontend": ["one"],
          "nodes": ["node1", "node2"], "ldap": ["svc"], "accounting": []}
LABELS = {"admin": "site_firewall_admin_networks", "clients": "site_firewall_client_networks",
          "extra": "site_firewall_extra_rules"}


def _firewall(rules=(), extra=(), admin=("203.0.113.0/28",), clients=()):
    """The filters' input; a string stays a string (a mistake the filters must name)."""
    def listed(value):
        return value if isinstance(value, str) else list(value)
    return {"rules": listed(rules), "extra": listed(extra),
            "networks": {"admin": listed(admin), "clients": listed(clients)}, "labels": LABELS}


def _rule(**changes):
    rule = {"name": "SSH", "role": "base", "proto": "tcp", "ports": [22], "sources": ["admin"],
            "label": "site_firewall_admin_networks"}
    rule.update(changes)
    return rule


def test_a_rule_names_its_protocol_ports_and_sources():
    [rule] = firewall.sl_firewall_rules(_firewall([_rule()]), HOSTVARS, GROUPS)
    assert rule["match"] == "tcp dport { 22 }"
    assert rule["ipv4"] == ["203.0.113.0/28"] and rule["ipv6"] == []
    assert rule["sources"] == ["admin (site_firewall_admin_networks)"]
    assert rule["comment"] == "base: SSH"


def test_groups_and_hosts_become_every_address_the_hosts_state():
    [rule] = firewall.sl_firewall_rules(_firewall([_rule(sources=["group:nodes", "host:one"])]), HOSTVARS, GROUPS)
    # node2's private address is dhcp: not known, left out; single addresses without /32.
    assert rule["ipv4"] == ["192.0.2.10", "192.0.2.21", "192.0.2.22", "198.51.100.21"]
    assert rule["sources"] == ["group nodes (node1, node2)", "host one"]


def test_a_host_without_site_address_falls_back_to_its_facts():
    [rule] = firewall.sl_firewall_rules(_firewall([_rule(sources=["group:ldap"])]), HOSTVARS, GROUPS)
    assert rule["ipv4"] == ["192.0.2.5"]


def test_site_is_every_host_and_ipv6_goes_apart():
    [rule] = firewall.sl_firewall_rules(_firewall([_rule(sources=["site"])]), HOSTVARS, GROUPS)
    assert "192.0.2.5" in rule["ipv4"] and rule["ipv6"] == ["2001:db8::7"]


def test_addresses_a_network_holds_are_left_out_and_the_order_is_stable():
    sources = ["192.0.2.0/24", "192.0.2.9", "10.0.0.1", "192.0.2.0/24", "2001:db8::/64", "2001:db8::1"]
    [rule] = firewall.sl_firewall_rules(_firewall([_rule(sources=sources)]), HOSTVARS, GROUPS)
    assert rule["ipv4"] == ["10.0.0.1", "192.0.2.0/24"]
    assert rule["ipv6"] == ["2001:db8::/64"]
    [again] = firewall.sl_firewall_rules(_firewall([_rule(sources=list(reversed(sources)))]), HOSTVARS, GROUPS)
    assert (again["ipv4"], again["ipv6"]) == (rule["ipv4"], rule["ipv6"])


def test_ports_merge_and_two_protocols_use_one_match():
    rule = _rule(proto=["udp", "tcp"], ports=["5900-5910", 5905, "5911", 22, " 80 "])
    [found] = firewall.sl_firewall_rules(_firewall([rule]), HOSTVARS, GROUPS)
    assert found["ports"] == ["22", "80", "5900-5911"]
    assert found["match"] == "meta l4proto { tcp, udp } th dport { 22, 80, 5900-5911 }"


def test_a_group_the_site_does_not_have_gives_no_address_to_a_role_rule():
    [rule] = firewall.sl_firewall_rules(_firewall([_rule(sources=["group:cache", "group:accounting"])]),
                                        HOSTVARS, GROUPS)
    assert rule["ipv4"] == [] and rule["ipv6"] == []


def test_the_comment_is_plain_text_nftables_accepts():
    [rule] = firewall.sl_firewall_rules(_firewall([_rule(name='a "quoted" name; ' + "x" * 200)]), HOSTVARS, GROUPS)
    assert '"' not in rule["comment"] and ";" in rule["comment"] and len(rule["comment"]) <= 120


@pytest.mark.parametrize("firewall_input, words", [
    (_firewall(admin=["192.0.2.5/24"]), ["site_firewall_admin_networks[0] '192.0.2.5/24'", "host bits",
                                         "192.0.2.0/24"]),
    (_firewall(clients=["campus"]), ["site_firewall_client_networks[0] 'campus'", "neither an IP address"]),
    (_firewall(admin="203.0.113.0/28"), ["site_firewall_admin_networks is '203.0.113.0/28'", "a list"]),
    (_firewall([_rule(ports=[0])]), ["the base role's rule 'SSH'", "ports[0] is 0", "1 to 65535"]),
    (_firewall([_rule(ports=[65536])]), ["ports[0] is 65536"]),
    (_firewall([_rule(ports=["200-100"])]), ["ports[0] is '200-100'", "first not above last"]),
    (_firewall([_rule(ports=["ssh"])]), ["ports[0] is 'ssh'"]),
    (_firewall([_rule(ports=[True])]), ["ports[0] is True"]),
    (_firewall([_rule(ports=22)]), ["ports is 22", "a list"]),
    (_firewall([_rule(ports=[])]), ["ports is []"]),
    (_firewall([_rule(proto="icmp")]), ["proto is 'icmp'", "tcp, udp or [tcp, udp]"]),
    (_firewall([_rule(sources="admin")]), ["sources is 'admin'", "a list"]),
    (_firewall([_rule(sources=["admins"], label="site_firewall_ldap_sources (ldap_firewall_sources)")]),
     ["(from site_firewall_ldap_sources (ldap_firewall_sources)) source 'admins'", "group:NAME"]),
    (_firewall([_rule(sources=["host:ghost"])]), ["source 'host:ghost' names no host of hosts.yml"]),
    (_firewall([_rule(sources=[10])]), ["source 10 is not text"]),
    (_firewall([_rule(name="")]), ["name is ''"]),
    (_firewall([_rule(port=22)]), ["unknown keys port"]),
    (_firewall(extra=[_rule(sources=["group:node"])]),
     ["site_firewall_extra_rules[0] source 'group:node' names no group", "its groups are accounting, frontend, ldap"]),
    (_firewall(extra=[{"name": "web", "ports": ["70000"], "sources": ["site"]}]),
     ["site_firewall_extra_rules[0].ports[0] is '70000'"]),
    (_firewall(extra="web"), ["site_firewall_extra_rules is 'web'"]),
    (_firewall([_rule(sources=["group:nodes"])]), []),
])
def test_every_mistake_is_named(firewall_input, words):
    errors = firewall.sl_firewall_errors(firewall_input, HOSTVARS, GROUPS, prefix="base: ")
    if not words:
        assert errors == []
        return
    assert errors and all(error.startswith("base: ") and error.endswith(".") for error in errors), errors
    text = "\n".join(errors)
    for word in words:
        assert word in text, "%r not in %s" % (word, text)
    with pytest.raises(AnsibleFilterError, match="sl_firewall_rules: "):
        firewall.sl_firewall_rules(firewall_input, HOSTVARS, GROUPS)


def test_every_mistake_of_one_host_is_reported_at_once():
    errors = firewall.sl_firewall_errors(_firewall([_rule(ports=[0], sources=["x"])], admin=["y"]), HOSTVARS, GROUPS)
    assert len(errors) == 3, errors


def test_a_host_a_source_names_without_an_address_is_refused():
    hostvars = dict(HOSTVARS, lost={})
    groups = dict(GROUPS, all=GROUPS["all"] + ["lost"], spare=["lost"])
    errors = firewall.sl_firewall_errors(_firewall([_rule(sources=["group:spare"])]), hostvars, groups)
    assert errors and "host lost (group spare) has no address" in errors[0] and "site_address" in errors[0]


@pytest.mark.parametrize("controller", [
    "203.0.113.5 50022 192.0.2.10 22",
    "::ffff:203.0.113.5 50022 ::ffff:192.0.2.10 22",
    "fe80::1%eth0 50022 fe80::2%eth0 22",
])
def test_the_control_machine_keeps_its_ssh(controller):
    rules = _firewall([_rule()], admin=["203.0.113.0/28", "fe80::/64"])
    assert firewall.sl_firewall_errors(rules, HOSTVARS, GROUPS, controller=controller, host="one") == []


def test_any_rule_that_accepts_the_control_machine_will_do():
    rules = _firewall([_rule()], extra=[{"name": "bastion", "ports": ["20-30"], "sources": ["198.51.100.7"]}])
    assert firewall.sl_firewall_errors(rules, HOSTVARS, GROUPS, controller="198.51.100.7 1 192.0.2.10 22") == []


@pytest.mark.parametrize("controller, words", [
    ("198.51.100.7 50022 192.0.2.10 22", ["on one, no rule accepts the control machine's own SSH",
                                          "from 198.51.100.7", "port 22/tcp",
                                          "Add 198.51.100.7 or its network to site_firewall_admin_networks"]),
    # sshd on another port than the rules open: its real port, from the session.
    ("203.0.113.5 50022 192.0.2.10 2222", ["from 203.0.113.5", "port 2222/tcp"]),
    ("", ["cannot tell where the control machine connects from", "SSH_CONNECTION is ''",
          "site_firewall_enabled: false"]),
    ("garbage", ["SSH_CONNECTION is 'garbage'"]),
])
def test_a_rule_set_that_cuts_the_control_machine_is_refused(controller, words):
    errors = firewall.sl_firewall_errors(_firewall([_rule()]), HOSTVARS, GROUPS, controller=controller, host="one",
                                         prefix="base: ")
    assert len(errors) == 1, errors
    for word in words:
        assert word in errors[0], "%r not in %s" % (word, errors[0])


def test_without_an_ssh_session_the_control_machine_is_not_checked():
    assert firewall.sl_firewall_errors(_firewall([_rule()], admin=[]), HOSTVARS, GROUPS, controller=None) == []


def test_udp_only_rules_do_not_keep_ssh():
    rules = _firewall([_rule(proto="udp")])
    errors = firewall.sl_firewall_errors(rules, HOSTVARS, GROUPS, controller="203.0.113.5 1 192.0.2.10 22")
    assert errors and "no rule accepts" in errors[0]


def test_the_input_must_be_a_mapping():
    with pytest.raises(AnsibleFilterError, match="expected a mapping"):
        firewall.sl_firewall_rules(["not", "a", "mapping"], HOSTVARS, GROUPS)


def test_the_filters_are_registered():
    assert set(firewall.FilterModule().filters()) == {"sl_firewall_errors", "sl_firewall_rules"}
