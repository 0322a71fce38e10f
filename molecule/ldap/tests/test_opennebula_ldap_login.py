"""A site LDAP user logs in to OpenNebula's API on the front-end.

The front-end (ldap-client, group frontend) ran the real site.yml: the
frontend role enabled LDAP login (ldap_auth.conf from the ldap role's
opennebula_client entry point, AUTH_MAD with ldap and DEFAULT_AUTH "ldap" in
oned.conf) and runs the project's test oned (site_one_install: test_oned;
tools/test_oned.py, NOT OpenNebula), which authenticates a user it does not
know by an LDAP simple bind, as OpenNebula's ldap driver does.

The calls are made from OUTSIDE the front-end: from the LDAP host, over the
network, to the front-end's API port, with Python's xmlrpc.client as
OpenNebula's CLI would. Values: inventories/demo (site file) and host_vars/.
"""

import json
import xml.etree.ElementTree as ET

import pytest
import stratuslab_testinfra
import yaml

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

FRONTEND = stratuslab_testinfra.names("frontend")[0]
API = "http://%s.demo.stratuslab.test:2633/RPC2" % FRONTEND
BASE = "dc=demo,dc=stratuslab,dc=test"
# Test values of the demo site file (not secrets).
PASSWORDS = {"alice": "demo-alice-password", "bob": "demo-bob-password", "carol": "demo-carol-password"}
ONEADMIN = "oneadmin:demo-oneadmin-secret"
AUTHENTICATION = 256  # oned's error code for a refused session

CALL = r"""
import json, sys, xmlrpc.client
url, method, session, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
print(json.dumps(getattr(xmlrpc.client.ServerProxy(url), method)(session, *params)))
"""


@pytest.fixture(scope="module")
def outside(host):
    """The LDAP host: another machine on the site's network."""
    return host.get_host(stratuslab_testinfra.hosts("ldap")[0])


def api(outside, session, method, *params):
    cmd = outside.run("python3 -c %s %s %s %s %s", CALL, API, method, session, json.dumps(params))
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)


# The test oned has no one.userpool.info: oneadmin reads the users one id at
# a time (ids are given in order from 0; 64 is far above this scenario's).
USERS = r"""
import json, sys, xmlrpc.client
proxy = xmlrpc.client.ServerProxy(sys.argv[1])
print(json.dumps([a[1] for a in (proxy.one.user.info(sys.argv[2], i) for i in range(64)) if a[0]]))
"""


def user_pool(outside):
    cmd = outside.run("python3 -c %s %s %s", USERS, API, ONEADMIN)
    assert cmd.rc == 0, cmd.stderr
    users = [ET.fromstring(text) for text in json.loads(cmd.stdout)]
    assert users and users[0].findtext("NAME") == "oneadmin"
    names = [u.findtext("NAME") for u in users]
    assert len(names) == len(set(names)), names
    return {u.findtext("NAME"): u for u in users}


@pytest.mark.parametrize("uid", ["alice", "bob"])
def test_a_site_ldap_user_calls_the_api_with_the_ldap_password(outside, uid):
    session = "%s:%s" % (uid, PASSWORDS[uid])
    answer = api(outside, session, "one.user.info", -1)
    assert answer[0] is True, answer
    me = ET.fromstring(answer[1])
    assert me.findtext("NAME") == uid
    assert me.findtext("AUTH_DRIVER") == "ldap"
    # The driver's answer (the user's DN) is what oned stores, not the password.
    assert me.findtext("PASSWORD") == "uid=%s,ou=people,%s" % (uid, BASE)
    assert PASSWORDS[uid] not in answer[1]
    # A pool read of the user's own objects works as well (-3: mine).
    pool = api(outside, session, "one.imagepool.info", -3, -1, -1)
    assert pool[0] is True, pool
    assert ET.fromstring(pool[1]).tag == "IMAGE_POOL"


def test_the_ldap_user_is_created_once_and_reused(outside):
    first = api(outside, "alice:%s" % PASSWORDS["alice"], "one.user.info", -1)
    again = api(outside, "alice:%s" % PASSWORDS["alice"], "one.user.info", -1)
    assert first[0] is True and again[0] is True
    assert ET.fromstring(first[1]).findtext("ID") == ET.fromstring(again[1]).findtext("ID")
    users = user_pool(outside)  # each name once
    assert users["alice"].findtext("GID") == "1"  # users
    assert users["alice"].findtext("AUTH_DRIVER") == "ldap"


def test_a_wrong_ldap_password_is_refused_and_creates_nobody(outside):
    answer = api(outside, "carol:not-carol-password", "one.user.info", -1)
    assert answer[0] is False, answer
    assert answer[2] == AUTHENTICATION
    assert "carol" not in user_pool(outside)


def test_a_name_unknown_to_ldap_is_refused(outside):
    answer = api(outside, "mallory:demo-alice-password", "one.user.info", -1)
    assert answer[0] is False and answer[2] == AUTHENTICATION
    assert "mallory" not in user_pool(outside)


def test_oneadmin_still_logs_in_with_its_own_password(outside):
    answer = api(outside, ONEADMIN, "one.user.info", -1)
    assert answer[0] is True, answer
    me = ET.fromstring(answer[1])
    assert me.findtext("NAME") == "oneadmin" and me.findtext("AUTH_DRIVER") == "core"
    # oneadmin is a core user: its password is never tried against LDAP.
    refused = api(outside, "oneadmin:%s" % PASSWORDS["alice"], "one.user.info", -1)
    assert refused[0] is False and refused[2] == AUTHENTICATION


def test_oned_conf_enables_the_ldap_driver(host):
    conf = host.file("/etc/one/oned.conf").content_string
    assert 'AUTHN      = "ssh,x509,ldap,server_cipher,server_x509"' in conf
    assert '\nDEFAULT_AUTH = "ldap"\n' in conf
    assert 'NAME                       = "ldap"' in conf  # its AUTH_MAD_CONF


def test_the_test_oned_reads_the_rendered_ldap_auth_conf(host):
    """The test oned authenticates with the very ldap_auth.conf OpenNebula's
    driver would read (--ldap-auth-conf, read at each login), so the logins
    above prove the rendered file: its server, base and user field."""
    conf = yaml.safe_load(host.file("/etc/one/auth/ldap_auth.conf").content_string)
    server = conf[conf[":order"][0]]
    assert server[":encryption"] in (":simple_tls", ":start_tls")
    assert server[":user_field"] == "uid"
    pid = host.check_output("systemctl show -p MainPID --value test-oned")
    argv = host.check_output("tr '\\0' '\\n' < /proc/%s/cmdline", pid).splitlines()
    assert argv[argv.index("--ldap-auth-conf") + 1] == "/etc/one/auth/ldap_auth.conf"
    assert "--ldap-uri" not in argv
    # ldapwhoami, which the test oned runs, trusts the CA of ldap.conf.
    ldap_conf = host.file("/etc/ldap/ldap.conf").content_string
    assert "TLS_CACERT /usr/local/share/ca-certificates/stratuslab-ldap-ca.crt" in ldap_conf
