"""The monitoring role refuses a bad monitoring section before any change, naming the variable.

The role's set_vars and its two preflights (the monitoring host's,
tasks/preflight.yml, and every host's exporters', tasks/preflight_exporters.yml)
run with ansible-playbook on this machine (connection local: preflight only
reads), one local host per case: the values of a good site file as the
inventory's group vars, the case's mistake as its host vars. Each case's
host must fail with a message naming the site file variable to fix; the
control host, with no change, must pass. The exporters' rules are on the
whole inventory (one monitoring host), so each inventory is a run of its own.
"""

import pytest

from preflight_testlib import assert_refused, bad_case_host, bad_cases, case_hosts, preflight_play, run_cases

# The site's LDAP host (its site CA signs the web views' certificate): a host
# of the inventory the role reads, not in the play.
OTHERS = {"ldap": {"svc": {}}}

GOOD = {
    "site_domain": "example.org",
    "site_ldap_uri": "ldaps://svc.example.org",
    "site_ldap_base_dn": "dc=example,dc=org",
    "site_ldap_groups": [{"name": "operators", "members": ["jdoe"]}],
    # Each case host is a monitoring host, and the URL names it.
    "site_monitoring_url": "https://{{ inventory_hostname }}.example.org:9443/",
    "site_monitoring_alert_receiver_url": "https://alerts.example.org/hooks/stratuslab",
    "site_monitoring_ldap_group": "",
    "site_monitoring_tls_cert": "",
    "site_monitoring_tls_key": "",
    "site_accounting_collect_interval": 300,
}

BAD = [
    ({"site_monitoring_alert_receiver_url": "alerts.example.org"},
     ["site_monitoring_alert_receiver_url", "alerts.example.org"]),
    ({"site_monitoring_alert_receiver_url": "ftp://alerts.example.org/in"},
     ["site_monitoring_alert_receiver_url", "is not a URL Alertmanager can post alerts to"]),
    ({"site_monitoring_alert_receiver_url": ""},
     ["site_monitoring_alert_receiver_url", "is not a URL Alertmanager can post alerts to"]),
    ({"site_monitoring_alert_receiver_url": "https://alerts.example.org:99999/"},
     ["site_monitoring_alert_receiver_url", "65535"]),
    ({"site_monitoring_url": "http://{{ inventory_hostname }}.example.org/"},
     ["site_monitoring_url", "must be https://HOST[:PORT]/"]),
    ({"site_monitoring_url": "https://{{ inventory_hostname }}.example.org:9443/prometheus"},
     ["site_monitoring_url", "must be https://HOST[:PORT]/"]),
    ({"site_monitoring_url": "https://elsewhere.example.org:9443/"},
     ["site_monitoring_url", "names the host elsewhere.example.org", "not the monitoring host"]),
    ({"site_monitoring_ldap_group": "nobody-group"}, ["site_monitoring_ldap_group", "site_ldap_groups"]),
    ({"site_monitoring_tls_cert": "/nonexistent/monitoring.crt"}, ["site_monitoring_tls_key", "or neither"]),
    ({"monitoring_datastore_full_percent": 100}, ["monitoring_datastore_full_percent", "from 1 to 99"]),
    ({"monitoring_alert_after_seconds": 20}, ["monitoring_alert_after_seconds", "at least twice"]),
    ({"monitoring_scrape_interval": "often"}, ["monitoring_scrape_interval", "is 'often'", "a whole number"]),
    ({"monitoring_alertmanager_port": 9090}, ["monitoring_alertmanager_port", "different ports"]),
    ({"site_monitoring_url": ["https://x.example.org/"]}, ["site_monitoring_url (monitoring_url) is a list"]),
]
ALL_AT_ONCE = {"site_monitoring_alert_receiver_url": "nope", "monitoring_datastore_full_percent": 0}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Every case of the monitoring host's preflight in one run, plus a host outside group monitoring."""
    hosts = case_hosts(BAD)
    hosts.update(control={}, case_all_at_once=ALL_AT_ONCE)
    groups = dict(OTHERS, cases=dict(hosts, case_outside={}), monitoring=dict(hosts))
    return run_cases(tmp_path_factory.mktemp("monitoring_preflight"), preflight_play("monitoring", hosts="cases"),
                     groups, site=GOOD)


def test_good_values_pass(run):
    assert run.passed("control"), run.failures("control") or run.output[-3000:]


@bad_cases(BAD)
def test_bad_values_fail_naming_the_variable(run, changes, names):
    assert_refused(run, bad_case_host(BAD, changes), changes, ["monitoring"] + names)


def test_a_host_outside_group_monitoring_is_refused(run):
    assert_refused(run, "case_outside", {}, ["case_outside", "is not in the group monitoring of hosts.yml"])


def test_every_broken_rule_is_reported_at_once(run):
    assert_refused(run, "case_all_at_once", ALL_AT_ONCE, [
        "site_monitoring_alert_receiver_url (monitoring_alert_receiver_url=nope)",
        "monitoring_datastore_full_percent (0) must be from 1 to 99"])


EXPORTERS_PLAY = """\
- name: Run the monitoring role's checks of the exporters
  hosts: cases
  gather_facts: false
  tasks:
    - name: Load the monitoring role's OS data
      ansible.builtin.include_role:
        name: monitoring
        tasks_from: set_vars.yml
    - name: Run the exporters' preflight
      ansible.builtin.include_role:
        name: monitoring
        tasks_from: preflight_exporters.yml
"""

EXPORTERS = [{"name": "node", "groups": ["all"], "port": 9100}, {"name": "squid", "groups": ["cache"], "port": 9301}]


def _exporters_run(tmp_path_factory, label, monitoring, cases, others=None):
    groups = dict(others or {}, cases=cases, monitoring=monitoring)
    return run_cases(tmp_path_factory.mktemp("monitoring_exporters_" + label), EXPORTERS_PLAY, groups, site=GOOD)


@pytest.fixture(scope="module")
def exporters_run(tmp_path_factory):
    """One inventory with one monitoring host: per-host exporter mistakes, and the rules a good host declares."""
    cases = {
        "control": {"monitoring_exporters": EXPORTERS},
        "case_unknown": {"monitoring_exporters": EXPORTERS + [{"name": "mysql", "groups": ["all"], "port": 9104}]},
        "case_same_port": {"monitoring_exporters": EXPORTERS + [{"name": "apache", "groups": ["all"], "port": 9100}]},
        "case_no_groups": {"monitoring_exporters": [{"name": "node", "port": 9100}]},
        "case_groups_text": {"monitoring_exporters": [{"name": "node", "groups": "all", "port": 9100}]},
    }
    return _exporters_run(tmp_path_factory, "one", {"mon": {}}, cases, others={"cache": {"control": {}}})


def test_exporters_good_values_pass_and_open_the_ports_to_the_monitoring_host(exporters_run):
    assert exporters_run.passed("control"), exporters_run.failures("control") or exporters_run.output[-3000:]
    facts = [r for r in exporters_run.results("control") if "__monitoring_preflight_firewall" in r.get("ansible_facts", {})]
    rules = facts[-1]["ansible_facts"]["__monitoring_preflight_firewall"]
    assert rules == [{"name": "Prometheus exporters", "role": "monitoring", "proto": "tcp", "ports": ["9100", "9301"],
                      "sources": ["group:monitoring"], "label": "monitoring_exporters, hosts.yml group monitoring"}]


@pytest.mark.parametrize("host, texts", [
    ("case_unknown", ["monitoring_exporters", "mysql", "does not know"]),
    ("case_same_port", ["monitoring_exporters", "share a port"]),
    ("case_no_groups", ["monitoring_exporters", "groups"]),
    ("case_groups_text", ["monitoring_exporters", "groups"]),
])
def test_exporters_bad_values_fail_naming_the_variable(exporters_run, host, texts):
    assert_refused(exporters_run, host, host, texts)


@pytest.mark.parametrize("label, monitoring", [("none", {}), ("two", {"mon1": {}, "mon2": {}})])
def test_the_inventory_must_hold_one_monitoring_host(tmp_path_factory, label, monitoring):
    run = _exporters_run(tmp_path_factory, label, monitoring, {"case_host": {}})
    assert_refused(run, "case_host", monitoring, ["group monitoring of hosts.yml must hold exactly one host"])
