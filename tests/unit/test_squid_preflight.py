"""The squid role refuses a bad image cache section before any change, naming the variable.

Each case runs the role's set_vars and preflight with ansible-playbook on
localhost (preflight only reads: nothing changes there), with the image cache
values of a site file holding one mistake, and checks that the run fails
with a message naming the site file variable to fix.
"""

import json

import pytest

from preflight_testlib import preflight_play, run_playbook

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


def run_preflight(tmp_path, **changes):
    return run_playbook(tmp_path, preflight_play("squid", hosts="localhost"), "localhost,",
                        extra_vars=dict(GOOD, ansible_connection="local", **changes))


def test_good_values_pass(tmp_path):
    run = run_preflight(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    "changes, names",
    [
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
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else None,
)
def test_bad_values_fail_naming_the_variable(tmp_path, changes, names):
    run = run_preflight(tmp_path, **changes)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "squid" in output
    for name in names:
        assert name in output, "%r not in the failure:\n%s" % (name, output)


def test_every_broken_rule_is_reported_at_once(tmp_path):
    """One run names the bad port and both bad networks: the admin fixes all three before running again."""
    run = run_preflight(tmp_path, site_cache_port=0, site_cache_allowed_networks=["10.9.0.5/24", "0.0.0.0/0"])
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    for text in ["site_cache_port (squid_port) is 0; expected a port number between 1 and 65535",
                 "squid_allowed_networks) item 0 '10.9.0.5/24'", "squid_allowed_networks) item 1 '0.0.0.0/0'"]:
        assert text in output, "%r not in the failure:\n%s" % (text, output)
