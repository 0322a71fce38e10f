"""Unit tests of filter_plugins/stratuslab_site.py (sl_host_entries, sl_values_by_host, sl_missing_packages)."""

import pytest
from ansible.errors import AnsibleFilterError
from filter_testlib import load_plugin

site = load_plugin("stratuslab_site")


def test_entries_use_site_address_and_domain():
    hostvars = {"one": {"site_address": "10.0.0.10"}, "node1.example.org": {"site_address": "10.0.0.21"}}
    assert site.sl_host_entries(["one", "node1.example.org"], hostvars, domain="example.org") == [
        {"host": "one", "address": "10.0.0.10", "names": ["one.example.org", "one"]},
        {"host": "node1.example.org", "address": "10.0.0.21", "names": ["node1.example.org", "node1"]},
    ]


def test_entries_without_domain_keep_the_short_name_only():
    assert site.sl_host_entries(["one"], {"one": {"site_address": "10.0.0.10"}})[0]["names"] == ["one"]


def test_address_falls_back_to_facts_then_ansible_host():
    hostvars = {
        "a": {"ansible_facts": {"default_ipv4": {"address": "192.0.2.1"}}, "ansible_host": "192.0.2.99"},
        "b": {"ansible_host": "192.0.2.2"},
    }
    assert [e["address"] for e in site.sl_host_entries(["a", "b"], hostvars)] == ["192.0.2.1", "192.0.2.2"]


@pytest.mark.parametrize("hosts, hostvars, words", [
    (["ghost"], {}, ["'ghost'", "not in the inventory"]),
    (["one"], {"one": {"site_address": "one.example.org"}}, ["site_address", "'one'", "not an IP"]),
    (["one"], {"one": {"ansible_host": "one.example.org"}}, ["'one'", "site_address"]),
])
def test_entries_refuse_hosts_without_a_usable_address(hosts, hostvars, words):
    with pytest.raises(AnsibleFilterError) as err:
        site.sl_host_entries(hosts, hostvars)
    for word in words:
        assert word in str(err.value)


def test_values_by_host_groups_as_strings():
    hostvars = {"one": {"uid": 9869}, "node1": {"uid": "9869"}, "node2": {"uid": 1000}, "node3": {}}
    assert site.sl_values_by_host(["one", "node1", "node2", "node3"], hostvars, "uid", default="unset") == {
        "9869": ["one", "node1"], "1000": ["node2"], "unset": ["node3"]}


@pytest.mark.parametrize("variable", ["", None, 3])
def test_values_by_host_needs_a_variable_name(variable):
    with pytest.raises(AnsibleFilterError, match="variable name"):
        site.sl_values_by_host(["one"], {"one": {}}, variable)


# package_facts' shape: {"packages": {name: [{"version": ..., ...}, ...]}}
FACTS = {"packages": {"slapd": [{"version": "2.5.13"}], "ldap-utils": [{"version": "2.5.13"}]}}


def test_missing_packages_keeps_the_uninstalled_in_order():
    assert site.sl_missing_packages(["squid", "slapd", "curl", "ldap-utils"], FACTS) == ["squid", "curl"]


def test_nothing_missing_is_an_empty_list():
    assert site.sl_missing_packages(["slapd", "ldap-utils"], FACTS) == []


@pytest.mark.parametrize("facts", [{}, None, {"packages": None}, {"os_family": "Debian"}])
def test_without_package_facts_every_package_is_missing(facts):
    assert site.sl_missing_packages(["slapd", "curl"], facts) == ["slapd", "curl"]


@pytest.mark.parametrize("names", ["slapd", None, {"slapd": 1}])
def test_missing_packages_needs_a_list(names):
    with pytest.raises(AnsibleFilterError, match="list of package names"):
        site.sl_missing_packages(names, FACTS)
