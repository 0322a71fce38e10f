"""The accounting role refuses a bad accounting section before any change, naming the variable.

The role's set_vars and preflight run with ansible-playbook on this machine
(connection local: preflight only reads, nothing changes there), in one run
for every case: one local host per case in group accounting, the values of
a good site file as the inventory's group vars and the case's mistake as
its host vars. Each case's host must fail with a message naming the site
file variable to fix; the control host, with no change, must pass.
"""

import pytest

from preflight_testlib import case_host, preflight_play, run_cases

PLAY = preflight_play("accounting", hosts="accounting")

# The site's front-end (accounting_oned_endpoint names it) and LDAP host
# (its site CA signs the API's certificate), as in the molecule scenario;
# hosts of the inventory the role reads, not in the play.
OTHERS = {"frontend": {"fe": {}}, "ldap": {"svc": {}}}

GOOD = {
    "site_domain": "example.org",
    "site_one_api_port": 2633,
    "site_oneadmin_password": "oneadmin-secret",
    "site_ldap_uri": "ldaps://ldap.example.org",
    "site_ldap_base_dn": "dc=example,dc=org",
    "site_ldap_groups": [{"name": "accounting-admins", "members": ["jdoe"]},
                         {"name": "appliance-writers", "members": ["jdoe"]}],
    "site_accounting_store": "postgresql",
    "site_accounting_db_password": "accounting-db-secret",
    "site_accounting_collect_interval": 300,
    "site_accounting_api_port": 8443,
    "site_accounting_admin_group": "accounting-admins",
    "site_accounting_apel_site": "EXAMPLE-SITE",
    "site_accounting_apel_cloud_compute_service": "one.example.org",
    "site_accounting_apel_dir": "/var/spool/apel/outgoing",
    "site_accounting_tls_cert": "",
    "site_accounting_tls_key": "",
}

# Good variations, which must pass.
GOOD_CASES = {"control": {},
              "case_sqlite": {"site_accounting_store": "sqlite", "site_accounting_db_password": ""}}
# A database password too short (7 characters), found nowhere else in the
# run's output (whose JSON report holds the hosts' facts: "short" is in them).
PASSWORD = "short-7"
ALL_AT_ONCE = {"site_accounting_api_port": 0, "site_accounting_admin_group": "nobody-here",
               "site_accounting_apel_dir": "spool/apel"}
BAD = [
    ({"site_accounting_store": "mysql"}, ["site_accounting_store", "postgresql, sqlite"]),
    ({"site_accounting_api_port": 0}, ["site_accounting_api_port", "between 1 and 65535"]),
    ({"site_accounting_api_port": 70000}, ["site_accounting_api_port", "between 1 and 65535"]),
    ({"site_accounting_admin_group": "admins"}, ["site_accounting_admin_group", "site_ldap_groups"]),
    ({"site_accounting_apel_dir": "spool/apel"}, ["site_accounting_apel_dir", "absolute"]),
    ({"site_accounting_db_password": "short"}, ["site_accounting_db_password", "8 characters"]),
    ({"site_accounting_collect_interval": 0}, ["site_accounting_collect_interval", "at least 1"]),
    ({"site_ldap_uri": "ldap.example.org"}, ["site_ldap_uri", "ldaps://"]),
    ({"site_accounting_tls_cert": "/nonexistent/api.crt"},
     ["site_accounting_tls_cert", "site_accounting_tls_key", "both"]),
    ({"site_accounting_tls_cert": "/nonexistent/api.crt", "site_accounting_tls_key": "/nonexistent/api.key"},
     ["site_accounting_tls_cert", "'/nonexistent/api.crt' does not exist on the control machine",
      "site_accounting_tls_key"]),
    ({"site_accounting_tls_cert": "/etc/hostname", "site_accounting_tls_key": "/etc/hostname"},
     ["site_accounting_tls_cert", "holds no PEM certificate", "site_accounting_tls_key", "no PEM private key"]),
    ({"site_accounting_api_port": "https"}, ["site_accounting_api_port", "is 'https'", "a port number"]),
    ({"site_accounting_collect_interval": "5m"}, ["site_accounting_collect_interval", "is '5m'", "whole number"]),
    ({"site_ldap_tls_ca": "/etc/ssl/site-ca.pem"}, ["site_accounting_tls_cert", "no host holds a site CA"]),
    # The service's wheel (the good hosts use the one `make accounting-wheel` put in the role's files/).
    ({"accounting_package_wheel": "stratuslab_accounting-1.0.0-py3-none-any.whl"},
     ["accounting_package_wheel", "must be an absolute path on the control machine"]),
    ({"accounting_package_wheel": "/etc/hostname"},
     ["accounting_package_wheel", "its name must be stratuslab_accounting-<version>-py3-none-any.whl"]),
    ({"accounting_package_wheel": "/nonexistent/stratuslab_accounting-1.0.0-py3-none-any.whl"},
     ["accounting_package_wheel", "is not a file on the control machine"]),
]
IDS = ["store", "port-0", "port-high", "admin-group", "apel-dir", "db-password", "interval",
       "ldap-uri", "tls-half", "tls-missing", "tls-not-pem", "port-not-a-number", "interval-not-a-number",
       "no-ca", "wheel-relative", "wheel-not-a-wheel", "wheel-missing"]
# The host of each case, named after its id.
HOSTS = dict(zip(IDS, map(case_host, IDS)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The one run of every case: a host per case, and the good hosts."""
    cases = dict(GOOD_CASES, case_all_at_once=ALL_AT_ONCE, case_password={"site_accounting_db_password": PASSWORD})
    cases.update({HOSTS[case]: changes for case, (changes, _) in zip(IDS, BAD)})
    return run_cases(tmp_path_factory.mktemp("accounting_preflight"), PLAY, dict(OTHERS, accounting=cases),
                     site=GOOD)


def test_good_values_pass(run):
    assert run.passed("control"), run.failures("control") or run.output[-3000:]


def test_sqlite_needs_no_database_password(run):
    assert run.passed("case_sqlite"), run.failures("case_sqlite") or run.output[-3000:]


@pytest.mark.parametrize("changes, names", BAD, ids=IDS)
def test_refusals_name_the_variable(run, request, changes, names):
    failures = run.failures(HOSTS[request.node.callspec.id])
    assert failures, "preflight accepted %r" % (changes,)
    for name in names:
        assert name in failures, "%r not in the failure:\n%s" % (name, failures[-3000:])


def test_the_database_password_is_never_shown(run):
    # The password task (no_log) refuses it: the password was read, and the whole run does not show it.
    assert "site_accounting_db_password" in run.failures("case_password")
    assert PASSWORD not in run.output


def test_every_broken_rule_is_reported_at_once(run):
    """One run names the bad port, the unknown admin group and the relative APEL directory."""
    failures = run.failures("case_all_at_once")
    assert failures, "preflight accepted %r" % (ALL_AT_ONCE,)
    for text in ["site_accounting_api_port (accounting_api_port) is 0; expected a port number between 1 and 65535",
                 "site_accounting_admin_group (nobody-here) is not one of the site's groups",
                 "site_accounting_apel_dir (accounting_apel_dir) is 'spool/apel'; expected an absolute path"]:
        assert text in failures, "%r not in the failure:\n%s" % (text, failures[-3000:])
