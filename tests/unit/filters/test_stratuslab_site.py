"""Unit tests of filter_plugins/stratuslab_site.py (sl_host_entries, sl_values_by_host, sl_missing_packages,
sl_inventory_errors)."""

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from filter_testlib import REPO, load_plugin

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


# --------------------------------------------------------------------------
# sl_inventory_errors, by kind of mistake; the rules are the base role's
# (roles/base/vars/main.yml), as playbooks/preflight.yml passes them.
# --------------------------------------------------------------------------

BASE_VARS = yaml.safe_load((REPO / "roles" / "base" / "vars" / "main.yml").read_text(encoding="utf-8"))
RULES = BASE_VARS["__base_site_groups"]
EXCLUSIVE = BASE_VARS["__base_exclusive_groups"]


def inventory(**groups):
    """groups (name -> [hosts]) as the inventory gives them, with 'all', each host at its own address."""
    groups = {name: list(hosts) for name, hosts in groups.items()}
    every = []
    for hosts in groups.values():
        every += [host for host in hosts if host not in every]
    groups["all"] = every
    hostvars = {host: {"site_address": "192.0.2.%d" % (index + 1)} for index, host in enumerate(every)}
    return groups, hostvars


def good_groups():
    """One host per group of the site, at least what each rule asks."""
    return {group: ["%s%d" % (group, n) for n in range(max(rule.get("min", 0), 1))] for group, rule in RULES.items()}


def errors(groups, hostvars):
    return site.sl_inventory_errors(groups, hostvars, RULES, EXCLUSIVE)


def test_a_site_with_every_group_passes():
    assert errors(*inventory(**good_groups())) == []


def test_the_shipped_inventories_pass():
    for path in sorted((REPO / "inventories").glob("*/hosts.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))["all"]
        groups, hostvars = {}, {}

        def walk(name, node):
            node = node or {}
            for host, hvars in (node.get("hosts") or {}).items():
                groups.setdefault(name, []).append(host)
                hostvars.setdefault(host, {}).update(hvars or {})
            for child, sub in (node.get("children") or {}).items():
                walk(child, sub)
                groups.setdefault(name, [])
                groups[name] += [h for h in groups[child] if h not in groups[name]]
        walk("all", data)
        assert errors(groups, hostvars) == [], path


@pytest.mark.parametrize("group", sorted(g for g, rule in RULES.items() if rule.get("min")))
def test_every_group_a_site_needs_may_not_be_empty(group):
    found = errors(*inventory(**dict(good_groups(), **{group: []})))
    assert found == [m for m in found if "no host in group '%s'" % group in m] and len(found) == 1, found
    assert "hosts.yml" in found[0] and RULES[group]["holds"] in found[0]


@pytest.mark.parametrize("group", sorted(g for g, rule in RULES.items() if rule.get("max")))
def test_every_group_of_one_host_refuses_a_second(group):
    hosts = ["%s%d" % (group, n) for n in range(RULES[group]["max"] + 1)]
    found = errors(*inventory(**dict(good_groups(), **{group: hosts})))
    assert len(found) == 1 and "group '%s'" % group in found[0], found
    assert "expected at most %d" % RULES[group]["max"] in found[0] and ", ".join(hosts) in found[0]


def test_an_empty_inventory_names_every_group_it_lacks():
    found = errors({"all": [], "ungrouped": []}, {})
    assert len(found) == len([g for g, rule in RULES.items() if rule.get("min")]), found


@pytest.mark.parametrize("together", [pytest.param(pair, id="+".join(pair)) for pair in EXCLUSIVE])
def test_every_host_in_two_exclusive_groups_is_refused(together):
    groups = good_groups()
    shared = groups[together[0]][0]
    for group in together[1:]:
        groups[group] = groups[group] + [shared]
    found = errors(*inventory(**groups))
    assert len(found) == 1 and "host %s is in groups %s" % (shared, " and ".join(together)) in found[0], found


def _typos(group):
    """Ways a group name is mistyped: a letter dropped, one added, two swapped, a plural."""
    return sorted({group[:-1], group + "s", group[1] + group[0] + group[2:], group[:2] + group[3:]} - set(RULES))


@pytest.mark.parametrize("group, typo", [(g, t) for g in sorted(RULES) for t in _typos(g)])
def test_a_mistyped_group_is_named_with_the_group_meant(group, typo):
    groups = good_groups()
    groups[typo] = groups.pop(group)
    found = [m for m in errors(*inventory(**groups)) if "did you mean" in m]
    assert found == ["group '%s' of hosts.yml is no group of the site; did you mean '%s'? The site's groups are %s."
                     % (typo, group, ", ".join(RULES))], found


@pytest.mark.parametrize("other", ["services", "spare", "clients", "directory", "outsiders", "origin", "monitoring"])
def test_groups_of_the_sites_own_are_left_alone(other):
    assert errors(*inventory(**dict(good_groups(), **{other: ["frontend0"]}))) == []


@pytest.mark.parametrize("name, words", [
    ("node_1", ["'node_1'", "no '_'"]),
    ("node1." + "x" * 64 + ".org", ["64 characters", "at most 63"]),
    ("n" * 250 + ".org", ["254 characters", "at most 253"]),
    ("-node1", ["'-node1'", "start or end with '-'"]),
    ("node1-.example.org", ["'node1-'"]),
    ("node1..example.org", ["''"]),
    ("node 1", ["'node 1'"]),
    ("192.0.2.21", ["IP address", "site_address"]),
])
def test_every_host_name_that_is_no_host_name_is_refused(name, words):
    groups = good_groups()
    groups["nodes"] = groups["nodes"] + [name]
    found = [m for m in errors(*inventory(**groups)) if name[:20] in m]
    assert len(found) == 1 and "of hosts.yml" in found[0] and "Rename it" in found[0], found
    for word in words:
        assert word in found[0], found[0]


@pytest.mark.parametrize("value", ["one.example.org", "10.0.0.300", 10, ["10.0.0.1"]])
def test_every_site_address_is_an_ip_address(value):
    groups, hostvars = inventory(**good_groups())
    hostvars["nodes0"]["site_address"] = value
    found = errors(groups, hostvars)
    assert len(found) == 1 and found[0].startswith("site_address of host nodes0 (hosts.yml) is "), found
    assert "IP address" in found[0]


@pytest.mark.parametrize("value, words", [
    ("10.1.0.1", []),
    ({"private": "dhcp"}, []),
    ({"private": "10.1.0.300"}, ["site_network_addresses.private of host nodes0", "or dhcp"]),
    ({"private": "node1.example.org"}, ["site_network_addresses.private of host nodes0"]),
    (["10.1.0.1"], ["site_network_addresses of host nodes0", "a mapping"]),
])
def test_every_network_address_is_an_ip_address_or_dhcp(value, words):
    groups, hostvars = inventory(**good_groups())
    hostvars["nodes0"]["site_network_addresses"] = value
    found = errors(groups, hostvars)
    if not words and isinstance(value, dict):
        assert found == []
        return
    if not words:
        words = ["site_network_addresses of host nodes0"]
    assert len(found) == 1, found
    for word in words:
        assert word in found[0], found[0]


@pytest.mark.parametrize("first, second", [
    ("site_address", "site_address"),
    ("site_address", "site_network_addresses.private"),
    ("site_network_addresses.private", "site_network_addresses.private"),
    ("site_network_addresses.public", "site_network_addresses.private"),
])
def test_every_address_given_to_two_hosts_is_refused(first, second):
    groups, hostvars = inventory(**good_groups())
    for host, variable in (("nodes0", first), ("frontend0", second)):
        if variable == "site_address":
            hostvars[host]["site_address"] = "10.9.9.9"
        else:
            hostvars[host].setdefault("site_network_addresses", {})[variable.split(".")[1]] = "10.9.9.9"
    found = errors(groups, hostvars)
    assert len(found) == 1 and "the address 10.9.9.9 is given to more than one host" in found[0], found
    assert "%s of nodes0" % first in found[0] and "%s of frontend0" % second in found[0], found[0]


def test_one_host_may_state_one_address_twice():
    groups, hostvars = inventory(**good_groups())
    hostvars["nodes0"]["site_network_addresses"] = {"public": hostvars["nodes0"]["site_address"]}
    assert errors(groups, hostvars) == []


def test_every_inventory_mistake_is_reported_at_once():
    groups = good_groups()
    groups["frontend"] = ["fe_1", "fe2"]
    groups["node"] = groups.pop("nodes")
    found = errors(*inventory(**groups))
    assert len(found) == 4, found  # no node, two front-ends, 'node' meant 'nodes', fe_1's name


def test_inventory_errors_need_groups_and_rules():
    with pytest.raises(AnsibleFilterError):
        site.sl_inventory_errors(["fe"], {}, RULES)
