"""What a site user and a site service observe from another host.

Everything here runs on the first node, a site host that is not the LDAP
server, against the site's LDAP server (the first host of group ldap)
over the site network, through the site firewall, with the site CA. The
node is a client of the site's LDAP once tests/publisher.yml (the fixture
``publisher`` of tests/conftest.py, which tests/test_appliances.py uses
too) has given it the ldap role's entry point ``client``: ldap-utils, the
site CA made on the LDAP host in the system trust store, and
/etc/ldap/ldap.conf. site.yml itself gives a KVM node no LDAP client.
Values: the demo site file (section "Identity (LDAP)").
"""

import pytest
import stratuslab_testinfra
from conftest import SITE

CLIENT = stratuslab_testinfra.names("nodes")[0]
testinfra_hosts = stratuslab_testinfra.hosts(CLIENT)
pytestmark = pytest.mark.usefixtures("publisher")

LDAP_HOST = stratuslab_testinfra.names("ldap")[0]
SERVER = "%s.%s" % (LDAP_HOST, SITE["site_domain"])
LDAPS = "ldaps://%s" % SERVER
LDAP = "ldap://%s" % SERVER
BASE = SITE["site_ldap_base_dn"]
PEOPLE = "ou=people," + BASE
GROUPS = "ou=groups," + BASE
# Test values of the demo site file (not secrets).
PASSWORDS = {user["uid"]: user["password"] for user in SITE["site_ldap_users"]}
ADMIN_PASSWORD = SITE["site_ldap_admin_password"]
# roles/ldap: ldap_client_ca_file, and the CA the role makes on the LDAP host.
CLIENT_CA = "/usr/local/share/ca-certificates/stratuslab-ldap-ca.crt"
SITE_CA = "/etc/ldap/tls/site-ca.crt"


def dn(uid):
    return "uid=%s,%s" % (uid, PEOPLE)


def whoami(host, uri, bind_dn, password, starttls=False):
    """ldapwhoami with a simple bind; -ZZ: StartTLS, and fail without it."""
    command = "ldapwhoami -x -ZZ -H %s -D %s -w %s" if starttls else "ldapwhoami -x -H %s -D %s -w %s"
    return host.run(command, uri, bind_dn, password)


def test_the_client_is_not_the_ldap_server(host):
    # What the tests below prove holds over the network only if so.
    assert CLIENT != LDAP_HOST
    assert not host.exists("slapd")


@pytest.mark.parametrize("uid", sorted(PASSWORDS))
def test_a_site_user_binds_over_ldaps(host, uid):
    cmd = whoami(host, LDAPS, dn(uid), PASSWORDS[uid])
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "dn:" + dn(uid)


def test_a_site_user_binds_with_starttls(host):
    cmd = whoami(host, LDAP, dn("alice"), PASSWORDS["alice"], starttls=True)
    assert cmd.rc == 0, cmd.stderr


def test_a_plain_text_bind_is_refused(host):
    # No TLS: slapd answers "confidentiality required" (13) before it even
    # looks at the password.
    cmd = whoami(host, LDAP, dn("alice"), PASSWORDS["alice"])
    assert cmd.rc == 13, cmd.stdout + cmd.stderr
    assert "onfidentiality required" in cmd.stderr


def test_a_wrong_password_is_refused(host):
    cmd = whoami(host, LDAPS, dn("alice"), "not-alice-password")
    assert cmd.rc == 49, cmd.stdout + cmd.stderr    # invalidCredentials


def test_the_directory_admin_binds_over_tls(host):
    cmd = whoami(host, LDAPS, "cn=admin," + BASE, ADMIN_PASSWORD)
    assert cmd.rc == 0, cmd.stderr


def test_the_server_certificate_is_checked(host):
    # Without the site CA (an empty CA file) the server is not trusted.
    cmd = host.run("LDAPTLS_CACERT=/dev/null LDAPTLS_REQCERT=demand ldapwhoami -x -H %s -D %s -w %s",
                   LDAPS, dn("alice"), PASSWORDS["alice"])
    assert cmd.rc != 0


def _search(host, base, flt, *attrs, who="bob"):
    cmd = host.run("ldapsearch -LLL -o ldif-wrap=no -x -H %s -D %s -w %s -b %s %s " + " ".join(["%s"] * len(attrs)),
                   LDAPS, dn(who), PASSWORDS[who], base, flt, *attrs)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout


def test_users_are_searchable(host):
    out = _search(host, PEOPLE, "(objectClass=inetOrgPerson)", "uid", "mail", "cn")
    for uid in PASSWORDS:
        assert "uid: %s" % uid in out
        assert "mail: %s@%s" % (uid, SITE["site_domain"]) in out
    assert "cn: Alice Martin" in out


def test_passwords_are_hashed_and_hidden_from_other_users(host):
    # bob cannot read alice's password, not even its hash.
    assert "userPassword" not in _search(host, dn("alice"), "(objectClass=*)", "userPassword")


def test_groups_and_members(host):
    writers = _search(host, "cn=appliance-writers," + GROUPS, "(objectClass=groupOfNames)", "member")
    assert "member: %s" % dn("alice") in writers
    assert "member: %s" % dn("bob") in writers
    assert dn("carol") not in writers
    admins = _search(host, GROUPS, "(cn=accounting-admins)", "member")
    assert "member: %s" % dn("carol") in admins


def test_membership_query_like_apache(host):
    # What mod_authnz_ldap's "Require ldap-group" asks: is this DN a member?
    out = _search(host, "cn=appliance-writers," + GROUPS, "(member=%s)" % dn("carol"), "cn")
    assert out.strip() == ""


def test_ldap_conf_points_at_the_site(host):
    conf = host.file("/etc/ldap/ldap.conf")
    assert conf.contains("^URI %s$" % LDAPS)
    assert conf.contains("^BASE %s$" % BASE)
    assert conf.contains("^TLS_CACERT %s$" % CLIENT_CA)
    assert conf.contains("^TLS_REQCERT demand$")


def test_the_client_holds_the_site_ca_of_the_ldap_host(host):
    ldap_host = host.get_host(stratuslab_testinfra.hosts(LDAP_HOST)[0])
    ca = ldap_host.file(SITE_CA).content_string
    assert "BEGIN CERTIFICATE" in ca
    assert host.file(CLIENT_CA).content_string == ca
    # update-ca-certificates put it in the system store too (curl, Python).
    assert ca.strip() in host.file("/etc/ssl/certs/ca-certificates.crt").content_string
