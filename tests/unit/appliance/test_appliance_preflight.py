"""roles/appliance_repo preflight: each refusal names the site file variable to fix.

Runs the role's set_vars.yml and preflight.yml with ansible-playbook on this
machine (connection local: they change nothing), once for every case: one
local host per case, its variables the demo site's values with one broken
(host variables), and a control host with the demo's values, which must pass.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from preflight_testlib import case_host, preflight_play, run_cases  # noqa: E402

GOOD = {
    "site_repository_url": "https://repo.demo.stratuslab.test/",
    "site_repository_writers_group": "appliance-writers",
    "site_ldap_uri": "ldaps://repo.demo.stratuslab.test",
    "site_ldap_base_dn": "dc=demo,dc=stratuslab,dc=test",
    "site_ldap_groups": [{"name": "appliance-writers", "members": ["alice"]},
                         {"name": "accounting-admins", "members": ["carol"]}],
    "appliance_repo_tls_ca_host": "ldap-host",
}


BAD = [
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
    # Client certificates (site_x509_auth). /etc/ssl/certs holds <hash>.0 links: a CA directory.
    ({"site_x509_auth": True, "site_x509_ca_dir": "/nonexistent/certificates"},
     "site_x509_ca_dir (appliance_repo_x509_ca_dir) /nonexistent/certificates"),
    ({"site_x509_auth": True, "site_x509_cas": [{"cert": "/etc/hostname"}]},
     "site_x509_cas (appliance_repo_x509_cas)[0].cert"),
    ({"site_x509_auth": True, "site_x509_ca_dir": "/etc/ssl/certs",
      "site_x509_users": [{"name": "", "dn": "/O=Grid/CN=Alice"}]}, "maps to no user"),
    ({"site_x509_auth": True, "site_x509_ca_dir": "/etc/ssl/certs",
      "site_x509_users": [{"name": "alice", "dn": "/O=Grid/CN=Alice O'Grid"}]}, "holds a quote or a backslash"),
]
ALL_AT_ONCE = {"site_repository_writers_group": "uploaders", "site_repository_url": "http://repo.demo.stratuslab.test/",
               "site_repository_tls_cert": "/etc/ssl/repo.crt"}
# With no appliance_repo_tls_ca_host, the role's default decides (the first host of group ldap).
NO_SITE_CA = [
    {"site_ldap_tls_ca": "/etc/ssl/site-ca.pem"},  # the site's own CA: its key is not on the LDAP host
    {"site_ldap_deploy": False},  # the site's own LDAP server: no CA made by the ldap role
]


def _key(overrides):
    return json.dumps(overrides, sort_keys=True)


# The host of each case (the case's variables, in full, are its host variables).
HOSTS = {_key(overrides): case_host(i) for i, (overrides, _) in enumerate(BAD)}
NO_CA_HOSTS = {_key(overrides): case_host("no_ca_%d" % i) for i, overrides in enumerate(NO_SITE_CA)}


def _variables(overrides, ca_host=True):
    variables = dict(GOOD)
    if not ca_host:
        del variables["appliance_repo_tls_ca_host"]  # the role's default decides
    variables.update(overrides)
    return variables


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The one run of every case. A site's LDAP host is in group ldap (as on a
    site; outside the play): the role's default CA host."""
    cases = {HOSTS[_key(overrides)]: _variables(overrides) for overrides, _ in BAD}
    cases.update({NO_CA_HOSTS[_key(overrides)]: _variables(overrides, ca_host=False) for overrides in NO_SITE_CA})
    cases.update(control=_variables({}), case_all_at_once=_variables(ALL_AT_ONCE),
                 case_ldap_ca=_variables({}, ca_host=False))
    return run_cases(tmp_path_factory.mktemp("appliance_preflight"), preflight_play("appliance_repo", hosts="cases"),
                     {"cases": cases, "ldap": {"ldap-host": {}}})


def test_demo_values_pass(run):
    assert run.passed("control"), run.failures("control") or run.output[-3000:]


@pytest.mark.parametrize("overrides,variable", BAD)
def test_refusals_name_the_variable(run, overrides, variable):
    failed = run.failed(HOSTS[_key(overrides)])
    assert failed, run.output[-3000:]
    assert variable in failed[0]["msg"], failed[0]["msg"]


def test_every_broken_rule_is_reported_at_once(run):
    """One run names all three mistakes, each on a line of its own."""
    failed = run.failed("case_all_at_once")
    assert len(failed) == 1, run.output[-3000:]
    lines = failed[0]["msg"].splitlines()
    # The three rules, then the certificate that does not exist on the control machine.
    assert len(lines) == 4, failed[0]["msg"]
    for line, variable in zip(lines, ["site_repository_url", "site_repository_writers_group",
                                      "site_repository_tls_key", "site_repository_tls_cert"]):
        assert line.startswith("appliance_repo: ") and variable in line, failed[0]["msg"]


@pytest.mark.parametrize("overrides", NO_SITE_CA)
def test_no_site_ca_to_sign_with_needs_a_given_certificate(run, overrides):
    failed = run.failed(NO_CA_HOSTS[_key(overrides)])
    assert failed and "site_repository_tls_cert" in failed[0]["msg"], run.output[-3000:]


def test_ldap_role_ca_is_used_by_default(run):
    assert run.passed("case_ldap_ca"), run.failures("case_ldap_ca") or run.output[-3000:]


def test_writers_group_message_lists_the_site_groups(run):
    failed = run.failed(HOSTS[_key({"site_repository_writers_group": "uploaders"})])
    assert "appliance-writers, accounting-admins" in failed[0]["msg"]
