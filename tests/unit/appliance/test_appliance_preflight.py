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
    ({"site_repository_url": "https://repo.demo.stratuslab.test:70000/"}, "site_repository_url"),
    ({"site_repository_tls_cert": "/nonexistent/repo.crt", "site_repository_tls_key": "/nonexistent/repo.key"},
     "site_repository_tls_cert"),
    ({"site_repository_trusted_signers": ["/nonexistent/signers.pem"]}, "site_repository_trusted_signers"),
    ({"site_repository_trusted_signers": ["/etc/hostname"]}, "site_repository_trusted_signers"),
    ({"site_repository_trusted_signers": "/etc/ssl/signers.pem"}, "site_repository_trusted_signers"),
])
def test_refusals_name_the_variable(tmp_path, overrides, variable):
    failed, output = preflight(tmp_path, **overrides)
    assert failed, output[-3000:]
    assert variable in failed[0]["msg"], failed[0]["msg"]


def test_every_broken_rule_is_reported_at_once(tmp_path):
    """One run names all three mistakes, each on a line of its own."""
    failed, output = preflight(tmp_path, site_repository_writers_group="uploaders",
                               site_repository_url="http://repo.demo.stratuslab.test/",
                               site_repository_tls_cert="/etc/ssl/repo.crt")
    assert len(failed) == 1, output[-3000:]
    lines = failed[0]["msg"].splitlines()
    # The three rules, then the certificate that does not exist on the control machine.
    assert len(lines) == 4, failed[0]["msg"]
    for line, variable in zip(lines, ["site_repository_url", "site_repository_writers_group",
                                      "site_repository_tls_key", "site_repository_tls_cert"]):
        assert line.startswith("appliance_repo: ") and variable in line, failed[0]["msg"]


@pytest.mark.parametrize("overrides", [
    {"site_ldap_tls_ca": "/etc/ssl/site-ca.pem"},  # the site's own CA: its key is not on the LDAP host
    {"site_ldap_deploy": False},  # the site's own LDAP server: no CA made by the ldap role
])
def test_no_site_ca_to_sign_with_needs_a_given_certificate(tmp_path, overrides):
    variables = dict(GOOD)
    del variables["appliance_repo_tls_ca_host"]  # the role's default decides
    variables.update(overrides)
    tasks = [{"name": name, "vars": variables,
              "ansible.builtin.include_role": {"name": "appliance_repo", "tasks_from": name + ".yml"}}
             for name in ("set_vars", "preflight")]
    # localhost is the first host of group ldap, as the LDAP host is on a site.
    results, output = run_tasks(tmp_path, tasks, inventory="[ldap]\nlocalhost\n")
    failed = [r for r in results if r.get("failed")]
    assert failed and "site_repository_tls_cert" in failed[0]["msg"], output[-3000:]


def test_ldap_role_ca_is_used_by_default(tmp_path):
    variables = dict(GOOD)
    del variables["appliance_repo_tls_ca_host"]
    tasks = [{"name": name, "vars": variables,
              "ansible.builtin.include_role": {"name": "appliance_repo", "tasks_from": name + ".yml"}}
             for name in ("set_vars", "preflight")]
    results, output = run_tasks(tmp_path, tasks, inventory="[ldap]\nlocalhost\n")
    assert not [r for r in results if r.get("failed")], output[-3000:]


def test_writers_group_message_lists_the_site_groups(tmp_path):
    failed, _ = preflight(tmp_path, site_repository_writers_group="uploaders")
    assert "appliance-writers, accounting-admins" in failed[0]["msg"]
