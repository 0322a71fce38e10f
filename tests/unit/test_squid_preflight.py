"""The squid role refuses a bad image cache section before any change, naming the variable.

The role's set_vars and preflight run with ansible-playbook on this machine
(connection local: preflight only reads, nothing changes there), in one run
for every case: one local host per case, the image cache values of a good
site file as the inventory's group vars and the case's mistake as its host
vars. Each case's host must fail with a message naming the site file
variable to fix; the control host, with no change, must pass.
"""

import pytest

from preflight_testlib import assert_refused, bad_case_host, bad_cases, case_hosts, preflight_play, run_cases

GOOD = {
    "site_networks": [
        {"name": "public", "cidr": "10.1.0.0/24"},
        {"name": "private", "cidr": "10.2.0.0/24"},
    ],
    "site_cache_size": "20G",
    "site_cache_max_object_size": "8G",
    "site_cache_port": 3128,
    "site_cache_allowed_networks": ["192.168.10.0/24"],
}


BAD = [
        ({"site_cache_size": "0G"}, ["site_cache_size", "not a positive size"]),
        ({"site_cache_size": "-20G"}, ["site_cache_size", "not a positive size"]),
        ({"site_cache_size": "lots"}, ["site_cache_size", "is not a size"]),
        ({"site_cache_size": "20"}, ["site_cache_size", "is not a size"]),
        ({"site_cache_max_object_size": "0M"}, ["site_cache_max_object_size", "not a positive size"]),
        ({"site_cache_max_object_size": "30G"}, ["site_cache_max_object_size", "bigger than site_cache_size"]),
        ({"site_cache_port": 0}, ["site_cache_port", "between 1 and 65535"]),
        ({"site_cache_port": 70000}, ["site_cache_port", "between 1 and 65535"]),
        ({"site_cache_port": "3128x"}, ["site_cache_port", "is '3128x'", "a port number"]),
        ({"site_cache_size": "2000T"}, ["site_cache_size", "larger than", "file system"]),
        ({"site_cache_max_object_size": "4M"}, ["site_cache_max_object_size", "smaller than 512M"]),
        ({"site_cache_size": ["20G"]}, ["site_cache_size", "expected text"]),
        ({"site_cache_allowed_networks": "10.9.0.0/16"}, ["site_cache_allowed_networks", "a string, not a list"]),
        ({"site_cache_allowed_networks": ["10.9.0.5/24"]}, ["site_cache_allowed_networks", "item 0"]),
        ({"site_cache_allowed_networks": ["10.9.0.0/24", "cache-clients"]}, ["site_cache_allowed_networks", "item 1"]),
        ({"site_cache_allowed_networks": ["0.0.0.0/0"]}, ["site_cache_allowed_networks", "open proxy"]),
        ({"site_cache_allowed_networks": ["10.9.0.0"]}, ["site_cache_allowed_networks", "CIDR"]),
        ({"site_networks": [{"name": "public", "cidr": "10.1.0.1/24"}]}, ["site_networks", "cidr"]),
        ({"site_networks": [], "site_cache_allowed_networks": []}, ["no network", "site_cache_allowed_networks"]),
]
ALL_AT_ONCE = {"site_cache_port": 0, "site_cache_allowed_networks": ["10.9.0.5/24", "0.0.0.0/0"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The one run of every case: a host per case, and the control host."""
    hosts = case_hosts(BAD)
    hosts.update(control={}, case_all_at_once=ALL_AT_ONCE)
    return run_cases(tmp_path_factory.mktemp("squid_preflight"), preflight_play("squid", hosts="cases"),
                     {"cases": hosts}, site=GOOD)


def test_good_values_pass(run):
    assert run.passed("control"), run.failures("control") or run.output[-3000:]


@bad_cases(BAD)
def test_bad_values_fail_naming_the_variable(run, changes, names):
    assert_refused(run, bad_case_host(BAD, changes), changes, ["squid"] + names)


def test_every_broken_rule_is_reported_at_once(run):
    """One run names the bad port and both bad networks: the admin fixes all three before running again."""
    assert_refused(run, "case_all_at_once", ALL_AT_ONCE, [
        "site_cache_port (squid_port) is 0; expected a port number between 1 and 65535",
        "squid_allowed_networks) item 0 '10.9.0.5/24'", "squid_allowed_networks) item 1 '0.0.0.0/0'"])
