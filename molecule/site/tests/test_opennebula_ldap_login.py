"""A site LDAP user logs in to the real OpenNebula through its own ldap driver.

The front-end (the first host of group frontend) runs OpenNebula 7.4 with
LDAP login: the frontend role includes the ldap role's entry point
opennebula_client (/etc/one/auth/ldap_auth.conf) and turns the driver on in
oned.conf (AUTHN has ldap, DEFAULT_AUTH "ldap", an AUTH_MAD_CONF for ldap).
oned hands a session whose user it does not know to the driver
(remotes/auth/ldap/authenticate), which reads ldap_auth.conf, finds the
user's entry by an anonymous search on :user_field: under :base:, binds as
it with the session's password and answers ``ldap <name> <DN> <group ids>``;
oned then creates the user with that DN as PASSWORD, AUTH_DRIVER ldap and
those groups (no mapped group: :mapping_default:, 1, users).

The calls are made from OUTSIDE the site: from this machine, the control
machine, whose administration address the site firewall lets reach oned's
API port (the nodes may not: tests/test_firewall.py), with Python's
xmlrpc.client as OpenNebula's CLI would. Values: the demo site file.

The other tests see OpenNebula as before this module: the users its logins
created, and its test group, are deleted at its end.
tests/test_backup_restore.py, which compares object ids with its own
backup, runs before it; the validation (tests/test_validate.py) logs in as
alice itself, creating her and deleting her again, or keeping a user who
was there before.
"""

import re
import xml.etree.ElementTree as ET
import xmlrpc.client

import pytest
import stratuslab_testinfra
import yaml
from conftest import SITE

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

FRONTEND = stratuslab_testinfra.names("frontend")[0]
LDAP_HOST = stratuslab_testinfra.names("ldap")[0]
SERVER = "%s.%s" % (LDAP_HOST, SITE["site_domain"])
BASE = SITE["site_ldap_base_dn"]
GROUPS = "ou=groups," + BASE
# Test values of the demo site file (not secrets).
PASSWORDS = {user["uid"]: user["password"] for user in SITE["site_ldap_users"]}
ONEADMIN = "oneadmin:%s" % SITE["site_oneadmin_password"]
AUTHENTICATION = 256  # oned's error code for a refused session
USERS_GROUP = "1"  # OpenNebula's group users: the rendered :mapping_default:
UNKNOWN = "oscar"  # no entry of the site's LDAP (checked)
# OpenNebula's fixed paths on a system-wide install (no ONE_LOCATION): the
# driver reads ETC_LOCATION/auth/ldap_auth.conf and keeps its group mapping
# in VAR_LOCATION/<:mapping_filename:>.
AUTH_CONF = "/etc/one/auth/ldap_auth.conf"
DRIVER = "/var/lib/one/remotes/auth/ldap/authenticate"
MAPPED_GROUP = "sltest-ldap-mapped"


def dn(uid):
    return "uid=%s,ou=people,%s" % (uid, BASE)


@pytest.fixture(scope="module")
def api():
    """call(session, method, *params): oned's whole answer, [ok, value or message, code, ...].

    At the end, deletes the LDAP users that were not in OpenNebula before."""
    address = stratuslab_testinfra.hostvars(FRONTEND)["site_address"]
    url = "http://%s:%d/RPC2" % (address, SITE["site_one_api_port"])

    def call(session, method, *params):
        return getattr(xmlrpc.client.ServerProxy(url), method)(session, *params)

    before = set(user_pool(call))
    yield call
    for name, user in user_pool(call).items():
        if name not in before and user.findtext("AUTH_DRIVER") == "ldap":
            answer = call(ONEADMIN, "one.user.delete", int(user.findtext("ID")))
            assert answer[0] is True, answer


def user_pool(call):
    """{name: USER element} of one.userpool.info as oneadmin; each name once."""
    answer = call(ONEADMIN, "one.userpool.info")
    assert answer[0] is True, answer
    users = ET.fromstring(answer[1]).findall("USER")
    names = [u.findtext("NAME") for u in users]
    assert "oneadmin" in names and len(names) == len(set(names)), names
    return {u.findtext("NAME"): u for u in users}


@pytest.mark.parametrize("uid", ["alice", "bob"])
def test_a_site_ldap_user_calls_the_api_with_the_ldap_password(api, uid):
    session = "%s:%s" % (uid, PASSWORDS[uid])
    answer = api(session, "one.user.info", -1)
    assert answer[0] is True, answer
    me = ET.fromstring(answer[1])
    assert me.findtext("NAME") == uid
    assert me.findtext("AUTH_DRIVER") == "ldap"
    # The driver's answer (the user's DN, URI-escaped: nothing to escape
    # here) is what oned stores, not the password nor a hash of it.
    assert me.findtext("PASSWORD") == dn(uid)
    assert PASSWORDS[uid] not in answer[1]
    # A pool read of the user's own objects works as well (-3: mine).
    pool = api(session, "one.imagepool.info", -3, -1, -1)
    assert pool[0] is True, pool
    assert ET.fromstring(pool[1]).tag == "IMAGE_POOL"


def test_the_ldap_user_is_created_once_and_reused(api):
    first = api("alice:%s" % PASSWORDS["alice"], "one.user.info", -1)
    again = api("alice:%s" % PASSWORDS["alice"], "one.user.info", -1)
    assert first[0] is True and again[0] is True
    assert ET.fromstring(first[1]).findtext("ID") == ET.fromstring(again[1]).findtext("ID")
    alice = user_pool(api)["alice"]  # each name once
    assert alice.findtext("AUTH_DRIVER") == "ldap"
    # No OpenNebula group maps one of alice's LDAP groups: :mapping_default:.
    assert alice.findtext("GID") == USERS_GROUP and alice.findtext("GNAME") == "users"
    assert [e.text for e in alice.findall("GROUPS/ID")] == [USERS_GROUP]


def test_a_wrong_ldap_password_is_refused_and_creates_nobody(api):
    answer = api("carol:not-carol-password", "one.user.info", -1)
    assert answer[0] is False, answer
    assert answer[2] == AUTHENTICATION
    assert "carol" not in user_pool(api)


def test_a_name_unknown_to_ldap_is_refused(api, host):
    ldap = host.get_host(stratuslab_testinfra.hosts(LDAP_HOST)[0])
    entry = ldap.run("ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b %s uid=%s dn", BASE, UNKNOWN)
    assert entry.rc == 0 and entry.stdout.strip() == "", entry.stdout + entry.stderr
    answer = api("%s:%s" % (UNKNOWN, PASSWORDS["alice"]), "one.user.info", -1)
    assert answer[0] is False and answer[2] == AUTHENTICATION, answer
    assert UNKNOWN not in user_pool(api)


def test_oneadmin_still_logs_in_with_its_own_password(api):
    answer = api(ONEADMIN, "one.user.info", -1)
    assert answer[0] is True, answer
    me = ET.fromstring(answer[1])
    assert me.findtext("NAME") == "oneadmin" and me.findtext("AUTH_DRIVER") == "core"
    # oneadmin is a core user: its password is never tried against LDAP.
    refused = api("oneadmin:%s" % PASSWORDS["alice"], "one.user.info", -1)
    assert refused[0] is False and refused[2] == AUTHENTICATION


class NotMapped(Exception):
    """The driver put an LDAP group's member in no OpenNebula group mapped to it."""


def test_an_ldap_group_maps_to_the_opennebula_group_that_names_it(api, host):
    """What a site expects of ldap_auth.conf's :mapping_*: an OpenNebula
    group whose template names an LDAP group's DN (GROUP_DN, the rendered
    :mapping_key:) is the group of that LDAP group's members at their first
    login (the driver answers its id first: oned makes it the primary
    group). carol, in accounting-admins, has not logged in to OpenNebula yet."""
    ldap_group = "cn=accounting-admins," + GROUPS
    conf = yaml.safe_load(host.file(AUTH_CONF).content_string)
    server = conf[conf[":order"][0]]
    assert server[":mapping_key"] == "GROUP_DN" and server[":mapping_generate"] is True, server
    mapping_file = "/var/lib/one/" + server[":mapping_filename"]
    assert "carol" not in user_pool(api)
    created = api(ONEADMIN, "one.group.allocate", MAPPED_GROUP)
    # A verify run stopped before its cleanup left the group: take it again.
    taken = None if created[0] else re.search(r"taken by GROUP (\d+)", created[1])
    assert created[0] is True or taken, created
    group_id = created[1] if created[0] else int(taken.group(1))
    try:
        updated = api(ONEADMIN, "one.group.update", group_id, 'GROUP_DN="%s"' % ldap_group, 1)
        assert updated[0] is True, updated
        # The driver writes the mapping at a login once the file is older
        # than :mapping_timeout:; without the file, at the next login.
        removed = host.run("rm -f %s", mapping_file)
        assert removed.rc == 0, removed.stderr
        answer = api("carol:%s" % PASSWORDS["carol"], "one.user.info", -1)
        assert answer[0] is True, answer
        carol = ET.fromstring(answer[1])
        groups = [e.text for e in carol.findall("GROUPS/ID")]
        if carol.findtext("GID") != str(group_id) or str(group_id) not in groups:
            ldap = host.get_host(stratuslab_testinfra.hosts(LDAP_HOST)[0])
            member_of = ldap.run("ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b %s uid=carol memberOf", BASE)
            raise NotMapped("carol (member of %s) is in group %s, groups %s, not in %s (id %s); the mapping "
                            "file says %r; her entry: %r" % (
                                ldap_group, carol.findtext("GNAME"), groups, MAPPED_GROUP, group_id,
                                host.run("cat %s", mapping_file).stdout, member_of.stdout))
    finally:
        # carol first: a group that holds a user cannot be deleted.
        failed = []
        carol = user_pool(api).get("carol")
        if carol is not None:
            failed += [a for a in [api(ONEADMIN, "one.user.delete", int(carol.findtext("ID")))] if a[0] is not True]
        failed += [a for a in [api(ONEADMIN, "one.group.delete", group_id)] if a[0] is not True]
        # The mapping must not name the deleted group at a later login.
        host.run("rm -f %s", mapping_file)
        assert not failed, failed


def test_oned_conf_enables_the_ldap_driver(host):
    conf = host.file("/etc/one/oned.conf").content_string
    assert 'AUTHN      = "ssh,x509,ldap,server_cipher,server_x509"' in conf
    assert '\nDEFAULT_AUTH = "ldap"\n' in conf
    # Its AUTH_MAD_CONF: the driver's groups are the user's at each login.
    ldap_conf = conf.split('NAME                       = "ldap"', 1)
    assert len(ldap_conf) == 2, "no AUTH_MAD_CONF for ldap in oned.conf"
    block = ldap_conf[1].split("]", 1)[0]
    assert 'DRIVER_MANAGED_GROUPS      = "YES"' in block, block


def test_the_driver_reads_the_rendered_ldap_auth_conf(host):
    """The logins above went through OpenNebula's driver, which reads
    ldap_auth.conf at each login from ETC_LOCATION (/etc/one/ when oned runs
    without ONE_LOCATION): so they prove the rendered file's server, base
    and user field. Here: that the file they prove is the rendered one, and
    what else it tells the driver."""
    oned = host.run("pgrep -u oneadmin -x oned")
    assert oned.rc == 0 and len(oned.stdout.split()) == 1, oned.stdout
    environment = host.check_output("tr '\\0' '\\n' < /proc/%s/environ", oned.stdout.strip()).splitlines()
    assert not [line for line in environment if line.startswith("ONE_LOCATION=")], environment
    # The driver OpenNebula runs (remotes/auth/ldap under /var/lib/one
    # without ONE_LOCATION) reads that file under ETC_LOCATION (/etc/one/).
    assert host.run("grep -q -F %s %s", "ETC_LOCATION+'/auth/ldap_auth.conf'", DRIVER).rc == 0

    rendered = host.file(AUTH_CONF)
    assert rendered.user == "root" and rendered.group == "oneadmin" and rendered.mode == 0o640
    assert rendered.content_string.startswith("#")  # ansible_managed
    assert SITE["site_ldap_admin_password"] not in rendered.content_string
    conf = yaml.safe_load(rendered.content_string)
    assert conf[":order"] == ["server 1"], conf[":order"]
    server = conf["server 1"]
    assert server[":host"] == SERVER and server[":port"] == 636       # site_ldap_uri, ldaps://
    # TLS, with the server's certificate checked against the site CA the
    # ldap role installs on the front-end (without :tls_options:, net-ldap
    # would accept any CA).
    assert server[":encryption"] == {
        ":method": ":simple_tls", ":tls_options": {":ca_file": "/usr/local/share/ca-certificates/stratuslab-ldap-ca.crt"}}
    assert host.file(server[":encryption"][":tls_options"][":ca_file"]).is_file
    assert server[":auth_method"] == ":simple"
    assert server[":base"] == BASE and server[":user_field"] == "uid"
    # An anonymous search finds the user's entry: no bind DN nor password.
    assert ":user" not in server and ":password" not in server
    # Groups: groupOfNames under ou=groups, members by DN; unmapped users in users.
    assert server[":group_base"] == GROUPS and server[":group_field"] == "member"
    assert server[":rfc2307bis"] is False and server[":user_group_field"] == "dn"
    assert server[":mapping_default"] == int(USERS_GROUP)
