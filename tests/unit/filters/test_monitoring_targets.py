"""Unit tests of roles/monitoring/filter_plugins/monitoring_targets.py (run: .venv/bin/pytest tests/unit/filters -q)."""

import importlib.util

import pytest
from ansible.errors import AnsibleFilterError

from filter_testlib import REPO

_SPEC = importlib.util.spec_from_file_location(
    "monitoring_targets_under_test", REPO / "roles" / "monitoring" / "filter_plugins" / "monitoring_targets.py")
targets = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(targets)

EXPORTERS = [
    {"name": "node", "groups": ["all"], "port": 9100},
    {"name": "libvirt", "groups": ["nodes"], "port": 9177},
    {"name": "apache", "groups": ["repository"], "port": 9117},
    {"name": "postgres", "groups": ["accounting"], "port": 9187},
    {"name": "squid", "groups": ["cache"], "port": 9301},
]
GROUPS = {"all": ["one", "node1", "node2", "svc"], "frontend": ["one"], "nodes": ["node1", "node2"],
          "repository": ["svc"], "cache": ["svc"], "accounting": ["one"], "monitoring": ["svc"]}
HOSTVARS = {"one": {"site_address": "10.0.0.10"}, "node1": {"site_address": "10.0.0.21"},
            "node2": {"site_address": "10.0.0.22", "site_node_state": "retired"}, "svc": {}}


def test_a_host_runs_the_exporters_of_its_groups():
    assert [e["name"] for e in targets.monitoring_host_exporters(EXPORTERS, ["nodes"])] == ["node", "libvirt"]
    assert [e["name"] for e in targets.monitoring_host_exporters(EXPORTERS, ["repository", "cache"])] == [
        "node", "apache", "squid"]
    assert [e["name"] for e in targets.monitoring_host_exporters(EXPORTERS, ["accounting"], skip=["postgres"])] == [
        "node"]


def test_scrape_jobs_list_each_exporters_hosts_by_address_without_retired_nodes():
    jobs = targets.monitoring_scrape_jobs(EXPORTERS, GROUPS, HOSTVARS)
    assert jobs == [
        {"job": "node", "port": 9100, "targets": [{"host": "one", "address": "10.0.0.10"},
                                                  {"host": "node1", "address": "10.0.0.21"},
                                                  {"host": "svc", "address": "svc"}]},
        {"job": "libvirt", "port": 9177, "targets": [{"host": "node1", "address": "10.0.0.21"}]},
        {"job": "apache", "port": 9117, "targets": [{"host": "svc", "address": "svc"}]},
        {"job": "postgres", "port": 9187, "targets": [{"host": "one", "address": "10.0.0.10"}]},
        {"job": "squid", "port": 9301, "targets": [{"host": "svc", "address": "svc"}]},
    ]


def test_an_exporter_whose_groups_hold_no_host_has_no_job():
    jobs = targets.monitoring_scrape_jobs(EXPORTERS, {"all": ["one"]}, {"one": {}}, skip=["postgres"])
    assert [job["job"] for job in jobs] == ["node"]


@pytest.mark.parametrize("bad", ["node", [{"name": "node", "port": 9100}], [{"name": "node", "groups": "all", "port": 1}]])
def test_malformed_exporters_raise_naming_the_value(bad):
    with pytest.raises(AnsibleFilterError, match="monitoring_exporters"):
        targets.monitoring_host_exporters(bad, ["all"])
