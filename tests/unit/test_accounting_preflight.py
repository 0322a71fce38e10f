"""The accounting role refuses a bad accounting section before any change, naming the variable.

Each case runs the role's set_vars and preflight with ansible-playbook on
localhost (preflight only reads: nothing changes there), with the values of
a site file holding one mistake, and checks that the run fails with a
message naming the site file variable to fix.
"""

import pytest

from preflight_testlib import preflight_play, run_playbook

PLAY = preflight_play("accounting", hosts="accounting")

# localhost is the front-end, the LDAP host (its site CA signs the API's
# certificate) and the accounting host, as in the molecule scenario.
INVENTORY = """\
[frontend]
localhost ansible_connection=local
[ldap]
localhost
[accounting]
localhost
"""

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


def run_preflight(tmp_path, **changes):
    (tmp_path / "hosts").write_text(INVENTORY)
    return run_playbook(tmp_path, PLAY, tmp_path / "hosts", extra_vars=dict(GOOD, **changes))


def test_good_values_pass(tmp_path):
    run = run_preflight(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_sqlite_needs_no_database_password(tmp_path):
    run = run_preflight(tmp_path, site_accounting_store="sqlite", site_accounting_db_password="")
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    "changes, names",
    [
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
    ],
    ids=["store", "port-0", "port-high", "admin-group", "apel-dir", "db-password", "interval",
         "ldap-uri", "tls-half", "tls-missing", "tls-not-pem", "port-not-a-number", "interval-not-a-number",
         "no-ca"],
)
def test_refusals_name_the_variable(tmp_path, changes, names):
    run = run_preflight(tmp_path, **changes)
    assert run.returncode != 0, "preflight accepted %r" % (changes,)
    for name in names:
        assert name in run.stdout, "%r not in the failure:\n%s" % (name, run.stdout[-3000:])


def test_the_database_password_is_never_shown(tmp_path):
    run = run_preflight(tmp_path, site_accounting_db_password="short")
    assert "short" not in run.stdout.replace("site_accounting_db_password", "")


def test_every_broken_rule_is_reported_at_once(tmp_path):
    """One run names the bad port, the unknown admin group and the relative APEL directory."""
    run = run_preflight(tmp_path, site_accounting_api_port=0, site_accounting_admin_group="nobody-here",
                        site_accounting_apel_dir="spool/apel")
    assert run.returncode != 0, run.stdout[-3000:]
    for text in ["site_accounting_api_port (accounting_api_port) is 0; expected a port number between 1 and 65535",
                 "site_accounting_admin_group (nobody-here) is not one of the site's groups",
                 "site_accounting_apel_dir (accounting_apel_dir) is 'spool/apel'; expected an absolute path"]:
        assert text in run.stdout, "%r not in the failure:\n%s" % (text, run.stdout[-3000:])
