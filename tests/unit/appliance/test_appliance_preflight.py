"""roles/appliance_repo preflight: each refusal names the site file variable to fix.

Runs the role's set_vars.yml and preflight.yml on localhost (they change
nothing) with the demo site's values, one broken at a time.
"""

from __future__ import annotations

import pytest

from appliance_testlib import run_tasks

GOOD = {
    "site_repository_url": "https://repo.demo.stratuslab.test/",
    "site_repository_writers_group": "appliance-writers",
    "site_ldap_uri": "ldaps://repo.demo.stratuslab.test",
    "site_ldap_base_dn": "dc=demo,dc=stratuslab,dc=test",
    "site_ldap_groups": [{"name": "appliance-writers", "members": ["alice"]},
                         {"name": "accounting-admins", "members": ["carol"]}],
    "appliance_repo_tls_ca_host": "ldap-host",
}


def preflight(tmp_path, **overrides):
    variables = dict(GOOD)
    variables.update(overrides)
    tasks = [
        {"name": "set_vars", "ansible.builtin.include_role": {"name": "appliance_repo",
                                                               "tasks_from": "set_vars.yml"}},
        {"name": "preflight", "ansible.builtin.include_role": {"name": "appliance_repo",
                                                                "tasks_from": "preflight.yml"}},
    ]
    for task in tasks:
        task["vars"] = variables
    results, output = run_tasks(tmp_path, tasks)
    failed = [r for r in results if r.get("failed")]
    return failed, output


def test_demo_values_pass(tmp_path):
    failed, output = preflight(tmp_path)
    assert failed == [], output[-3000:]


@pytest.mark.parametrize("overrides,variable", [
    ({"site_repository_writers_group": "uploaders"}, "site_repository_writers_group"),
    ({"site_repository_url": "ftp://repo.demo.stratuslab.test/"}, "site_repository_url"),
    ({"site_repository_url": "https://repo.demo.stratuslab.test/appliances/"}, "site_repository_url"),
    ({"site_repository_url": "http://repo.demo.stratuslab.test/"}, "site_repository_url"),
    ({"site_repository_url": "https://repo.demo.stratuslab.test:80/"}, "appliance_repo_http_port"),
    ({"site_repository_tls_cert": "/etc/ssl/repo.crt"}, "site_repository_tls_key"),
    ({"appliance_repo_tls_ca_host": ""}, "site_repository_tls_cert"),
])
def test_refusals_name_the_variable(tmp_path, overrides, variable):
    failed, output = preflight(tmp_path, **overrides)
    assert failed, output[-3000:]
    assert variable in failed[0]["msg"], failed[0]["msg"]


def test_writers_group_message_lists_the_site_groups(tmp_path):
    failed, _ = preflight(tmp_path, site_repository_writers_group="uploaders")
    assert "appliance-writers, accounting-admins" in failed[0]["msg"]
