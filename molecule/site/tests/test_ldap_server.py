"""What a site administrator observes on the LDAP host itself.

The site's LDAP host is the first host of group ldap (site-one, also the
front-end, the accounting host and the repository). Values: the demo site
file (section "Identity (LDAP)"), read as tests/conftest.py reads it.
"""

import stratuslab_testinfra
from conftest import SITE

testinfra_hosts = stratuslab_testinfra.hosts("ldap")

BASE = SITE["site_ldap_base_dn"]
ADMIN_PASSWORD = SITE["site_ldap_admin_password"]
USERS = {user["uid"]: user["password"] for user in SITE["site_ldap_users"]}


def test_slapd_runs_and_starts_at_boot(host):
    slapd = host.service("slapd")
    assert slapd.is_running
    assert slapd.is_enabled


def test_slapd_listens_on_ldap_and_ldaps(host):
    assert host.socket("tcp://0.0.0.0:389").is_listening or host.socket("tcp://:::389").is_listening
    assert host.socket("tcp://0.0.0.0:636").is_listening or host.socket("tcp://:::636").is_listening


def test_no_clear_password_in_any_file(host):
    # The admin's and the users' passwords are stored only as salted hashes:
    # not in slapd's configuration, its database, debconf or the defaults.
    for secret in [ADMIN_PASSWORD] + sorted(USERS.values()):
        cmd = host.run("grep -r -l -F -e %s /etc /var/lib/ldap /var/cache/debconf /root", secret)
        assert cmd.rc == 1, "found %s in: %s" % (secret, cmd.stdout)


def test_configuration_and_database_are_not_readable_by_others(host):
    # slapd.d holds the admin's hash, the database the users' hashes.
    # (The top directories may be listed: their contents are closed.)
    for path in ("/etc/ldap/slapd.d", "/var/lib/ldap"):
        found = host.run("find %s -mindepth 1 -perm /o+rwx", path)
        assert found.rc == 0 and found.stdout.strip() == "", found.stdout


def test_tls_keys_are_private(host):
    server_key = host.file("/etc/ldap/tls/server.key")
    assert server_key.user == "root" and server_key.group == "openldap"
    assert server_key.mode == 0o640
    ca_key = host.file("/etc/ldap/tls/site-ca.key")
    assert ca_key.user == "root" and ca_key.group == "root"
    assert ca_key.mode == 0o600


def test_simple_bind_over_ldapi_is_refused_too(host):
    # Even locally, a password bind needs TLS; root administers through
    # SASL EXTERNAL instead.
    cmd = host.run("ldapwhoami -x -H ldapi:/// -D %s -w %s", "cn=admin," + BASE, ADMIN_PASSWORD)
    assert cmd.rc == 13
    root = host.run("ldapwhoami -Q -Y EXTERNAL -H ldapi:///")
    assert root.rc == 0 and "uidNumber=0" in root.stdout


def test_no_unit_failed(host):
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert failed == ""


def test_the_servers_own_tools_trust_the_site_ca(host):
    # No CA on the command line: ldap.conf's TLS_CACERT, the site CA.
    server = "%s.%s" % (stratuslab_testinfra.names("ldap")[0], SITE["site_domain"])
    cmd = host.run("ldapwhoami -x -H ldaps://%s -D uid=alice,ou=people,%s -w %s", server, BASE, USERS["alice"])
    assert cmd.rc == 0, cmd.stderr
