"""What a site user and a site service observe from another host.

Everything here runs on ldap-client (group frontend) against the LDAP
server ldap-server over the network, with the site CA the role installed.
Values: inventories/demo (site file, LDAP section) and host_vars/.
"""

import pytest
import stratuslab_testinfra

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

SERVER = "ldap-server.demo.stratuslab.test"
LDAPS = "ldaps://%s" % SERVER
LDAP = "ldap://%s" % SERVER
BASE = "dc=demo,dc=stratuslab,dc=test"
PEOPLE = "ou=people," + BASE
GROUPS = "ou=groups," + BASE
# Test values of the demo site file (not secrets).
PASSWORDS = {"alice": "demo-alice-password", "bob": "demo-bob-password", "carol": "demo-carol-password"}
ADMIN_PASSWORD = "demo-ldap-admin-secret"


def dn(uid):
    return "uid=%s,%s" % (uid, PEOPLE)


def whoami(host, uri, bind_dn, password, starttls=False):
    """ldapwhoami with a simple bind; -ZZ: StartTLS, and fail without it."""
    command = "ldapwhoami -x -ZZ -H %s -D %s -w %s" if starttls else "ldapwhoami -x -H %s -D %s -w %s"
    return host.run(command, uri, bind_dn, password)


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
        assert "mail: %s@demo.stratuslab.test" % uid in out
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
    assert conf.contains("^TLS_REQCERT demand$")


def test_opennebula_ldap_auth_conf(host):
    conf = host.file("/etc/one/auth/ldap_auth.conf")
    assert conf.user == "root"
    assert conf.group == "oneadmin"
    assert conf.mode == 0o640
    text = conf.content_string
    assert ":host: %s" % SERVER in text
    assert ":port: 636" in text
    assert ":encryption: :simple_tls" in text
    assert ":base: '%s'" % BASE in text
    assert ":user_field: 'uid'" in text
    assert ":group_field: 'member'" in text
    assert ADMIN_PASSWORD not in text
