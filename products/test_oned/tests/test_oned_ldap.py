"""The test oned's LDAP authentication, against a real slapd.

The test starts OpenLDAP's slapd (Debian package slapd, which `make deps`
installs; without it the tests are skipped, naming what is missing) through
tests/unit/slapd_testlib.py, as a subprocess on loopback ports, with its
configuration and database in a temporary directory: TLS with a throw-away
CA, simple binds refused without TLS (olcSecurity simple_bind=128), users under
ou=people,dc=oned,dc=test. The test oned is started with --ldap-uri,
--ldap-base-dn and --ldap-ca, and must behave like oned with the ldap auth
driver: unknown users authenticated by a bind and created with AUTH_DRIVER
ldap on first login.
"""

import os
import re
import subprocess
import sys
import time
import xmlrpc.client

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "unit"))  # slapd_testlib

from slapd_testlib import make_tls, missing_tools, running_slapd, user_ldif, which  # noqa: E402
from oned_support import oned_argv, oned_env  # noqa: E402  (it puts the package on sys.path)
from stratuslab_test_oned import ldap  # noqa: E402

BASE_DN = "dc=oned,dc=test"
USERS = {"alice": "alice-ldap-pw", "bob": "bob-ldap-pw",
         # an LDAP entry named like oned's core admin: must never log in
         "oneadmin": "ldap-oneadmin-pw"}
AUTH_ERROR = 256
NO_EXISTS = 1024
TOOLS = ("slapd", "slapadd", "slappasswd", "ldapwhoami", "openssl")


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    """slapd with alice, bob and an LDAP "oneadmin"; entries readable by all.
    The URIs name 127.0.0.1 (the certificate's address)."""
    reason = missing_tools(TOOLS)
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("slapd")
    tls = make_tls(tmp, "test oned LDAP CA")
    data = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: oned\no: test oned\n" % BASE_DN,
            "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n" % BASE_DN]
    with running_slapd(tmp / "server", tls, BASE_DN, "\n".join(data + user_ldif(BASE_DN, USERS))) as server:
        yield server


@pytest.fixture
def ldap_oned(oned_factory, slapd):
    return oned_factory(["--ldap-uri", slapd["ldaps"], "--ldap-base-dn", BASE_DN, "--ldap-ca", slapd["ca"]])


def _user(server, session, oid=-1):
    answer = server.proxy(session).one.user.info(oid)
    assert answer[0] is True, answer
    return answer[1]


def test_the_server_refuses_a_plain_text_bind(slapd):
    # The premise of the site's LDAP: no password crosses the wire in clear.
    proc = subprocess.run([which("ldapwhoami"), "-x", "-H", slapd["ldap"],
                           "-D", "uid=alice,ou=people," + BASE_DN, "-w", USERS["alice"]],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 13, proc.stdout + proc.stderr   # confidentialityRequired


def test_unknown_user_is_authenticated_by_ldap_and_created_with_driver_ldap(ldap_oned):
    xml = _user(ldap_oned, "alice:" + USERS["alice"])
    assert "<NAME>alice</NAME>" in xml
    assert "<AUTH_DRIVER><![CDATA[ldap]]></AUTH_DRIVER>" in xml
    assert "<PASSWORD><![CDATA[uid=alice,ou=people,%s]]></PASSWORD>" % BASE_DN in xml
    assert "<GID>1</GID><GROUPS><ID>1</ID></GROUPS><GNAME>users</GNAME>" in xml
    assert "<ID>2</ID>" in xml          # first id oned gives to a user
    assert "<TOKEN_PASSWORD>" in xml


def test_second_login_reuses_the_user(ldap_oned):
    first = _user(ldap_oned, "alice:" + USERS["alice"])
    second = _user(ldap_oned, "alice:" + USERS["alice"])
    assert first.split("<GID>")[0] == second.split("<GID>")[0]
    bob = _user(ldap_oned, "bob:" + USERS["bob"])
    assert "<ID>3</ID>" in bob
    # and oneadmin sees both, with the driver that created them
    assert "<AUTH_DRIVER><![CDATA[ldap]]></AUTH_DRIVER>" in _user(ldap_oned, None, 2)


def test_wrong_or_empty_password_is_refused_and_creates_nothing(ldap_oned):
    for session in ("alice:wrong", "alice:", "nobody:whatever", "bad name:x"):
        answer = ldap_oned.proxy(session).one.user.info(-1)
        assert answer[0] is False and answer[2] == AUTH_ERROR, (session, answer)
    missing = ldap_oned.proxy().one.user.info(2)
    assert missing[0] is False and missing[2] == NO_EXISTS


def test_an_ldap_user_keeps_ldap_after_creation(ldap_oned):
    _user(ldap_oned, "alice:" + USERS["alice"])
    answer = ldap_oned.proxy("alice:wrong").one.user.info(-1)
    assert answer[0] is False and answer[2] == AUTH_ERROR


def test_core_users_never_fall_back_to_ldap(ldap_oned):
    # uid=oneadmin exists in LDAP with another password: oned's core
    # oneadmin must still only accept its own.
    answer = ldap_oned.proxy("oneadmin:" + USERS["oneadmin"]).one.user.info(-1)
    assert answer[0] is False and answer[2] == AUTH_ERROR


def test_starttls_uri(oned_factory, slapd):
    server = oned_factory(["--ldap-uri", slapd["ldap"], "--ldap-base-dn", BASE_DN, "--ldap-ca", slapd["ca"]])
    assert "<NAME>bob</NAME>" in _user(server, "bob:" + USERS["bob"])


def test_an_untrusted_server_certificate_is_refused(oned_factory, slapd):
    # Without the site CA the certificate does not check out: no login.
    server = oned_factory(["--ldap-uri", slapd["ldaps"], "--ldap-base-dn", BASE_DN,
                           "--ldap-ca", "/etc/ssl/certs/ca-certificates.crt"])
    answer = server.proxy("alice:" + USERS["alice"]).one.user.info(-1)
    assert answer[0] is False and answer[2] == AUTH_ERROR


def test_without_ldap_options_unknown_users_are_refused(oned):
    answer = oned.proxy("alice:" + USERS["alice"]).one.user.info(-1)
    assert answer[0] is False and answer[2] == AUTH_ERROR


def test_passwords_are_not_logged(ldap_oned):
    _user(ldap_oned, "alice:" + USERS["alice"])
    ldap_oned.proxy("alice:not-this-one").one.user.info(-1)
    time.sleep(0.3)                      # the log is written by a queue
    log = ldap_oned.log()
    assert USERS["alice"] not in log and "not-this-one" not in log


def test_ldap_users_survive_a_restart(oned_factory, slapd, tmp_path):
    argv = ["--ldap-uri", slapd["ldaps"], "--ldap-base-dn", BASE_DN, "--ldap-ca", slapd["ca"]]
    state = tmp_path / "restart.sqlite"
    first = oned_factory(argv, state=state)
    _user(first, "alice:" + USERS["alice"])
    first.stop()
    second = oned_factory(argv, state=state)
    assert "<AUTH_DRIVER><![CDATA[ldap]]></AUTH_DRIVER>" in _user(second, None, 2)
    with pytest.raises(xmlrpc.client.Fault):
        second.proxy().one.user.info("not an int")


def test_ldap_users_own_their_vms_and_records(ldap_oned):
    """A VM made by an LDAP user belongs to that user and the users group
    (1), and its history records bill that user (samples-accounting)."""
    alice = ldap_oned.proxy("alice:" + USERS["alice"])
    admin = ldap_oned.proxy()
    uid = int(re.search(r"<ID>(\d+)</ID>", _user(ldap_oned, "alice:" + USERS["alice"])).group(1))
    host = admin.one.host.allocate("dummy-host", "dummy", "dummy", -1)[1]
    assert admin.one.datastore.allocate('NAME="sys"\nTYPE="SYSTEM_DS"\nTM_MAD="dummy"', -1)[0]
    vm = alice.one.vm.allocate('CPU="1"\nMEMORY="512"', True)
    assert vm[0] is True, vm
    assert admin.testoned.clock.set(1800000000)[0]
    assert admin.one.vm.deploy(vm[1], host, False, -1)[0]
    records = alice.one.vmpool.accounting(-3, -1, -1)[1]
    assert ("<UID>%d</UID><GID>1</GID><UNAME>alice</UNAME><GNAME>users</GNAME>" % uid) in records
    assert "<STIME>1800000000</STIME>" in records
    assert bob_sees_nothing(ldap_oned)


def bob_sees_nothing(server):
    return server.proxy("bob:" + USERS["bob"]).one.vmpool.accounting(-2, -1, -1)[1] == \
        "<HISTORY_RECORDS></HISTORY_RECORDS>"


# ------------------------------------------------- --ldap-auth-conf (ldap_auth.conf)
# The front-end runs the test oned with --ldap-auth-conf on the ldap_auth.conf
# the ldap role renders for OpenNebula's driver: these tests render that very
# template (roles/ldap/templates/ldap_auth.conf.j2), so the file is proven by
# logins, not only read back.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


DRIVER_CA = "/usr/local/share/ca-certificates/stratuslab-ldap-ca.crt"  # roles/ldap: ldap_client_ca_file


def _render_ldap_auth_conf(path, host, port, tls, user_field="uid", ca_file=DRIVER_CA):
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(REPO, "roles", "ldap", "templates")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["comment"] = lambda text: "# " + text
    env.filters["bool"] = bool
    text = env.get_template("ldap_auth.conf.j2").render(
        ansible_managed="Ansible managed", __ldap_uri_host=host, __ldap_uri_port=port, __ldap_uri_tls=tls,
        ldap_base_dn=BASE_DN, ldap_opennebula_user_field=user_field, __ldap_groups_dn="ou=groups," + BASE_DN,
        ldap_opennebula_group_field="member", ldap_client_ca_file=ca_file)
    path.write_text(text)
    return path


def _port(uri):
    return int(uri.rsplit(":", 1)[1])


@pytest.fixture
def conf_oned(oned_factory, slapd, tmp_path):
    conf = _render_ldap_auth_conf(tmp_path / "ldap_auth.conf", "127.0.0.1", _port(slapd["ldaps"]), True,
                                  ca_file=slapd["ca"])
    server = oned_factory(["--ldap-auth-conf", str(conf)])
    server.conf = conf
    return server


def test_an_oned_conf_with_ldap_login_logs_in_through_ldap_auth_conf_beside_it(oned_factory, slapd, tmp_path):
    """--oned-conf: AUTHN lists ldap and DEFAULT_AUTH is ldap, so the test
    oned reads auth/ldap_auth.conf beside the oned.conf, as oned would."""
    (tmp_path / "etc" / "auth").mkdir(parents=True)
    _render_ldap_auth_conf(tmp_path / "etc" / "auth" / "ldap_auth.conf", "127.0.0.1", _port(slapd["ldaps"]), True,
                           ca_file=slapd["ca"])
    oned_conf = tmp_path / "etc" / "oned.conf"
    oned_conf.write_text('AUTH_MAD = [\n  EXECUTABLE = "one_auth_mad",\n'
                         '  AUTHN      = "ssh,x509,ldap,server_cipher,server_x509"\n]\n\nDEFAULT_AUTH = "ldap"\n')
    server = oned_factory(["--oned-conf", str(oned_conf)])
    assert "<AUTH_DRIVER><![CDATA[ldap]]></AUTH_DRIVER>" in _user(server, "alice:" + USERS["alice"])
    bad = server.proxy("bob:not-bobs-password").one.user.info(-1)
    assert bad[0] is False and bad[2] == AUTH_ERROR


def test_the_rendered_ldap_auth_conf_reads_as_the_driver_would(tmp_path):
    conf = _render_ldap_auth_conf(tmp_path / "a.conf", "ldap.example.org", 636, True)
    assert ldap.read_ldap_auth_conf(str(conf)) == {
        "uri": "ldaps://ldap.example.org:636", "starttls": False, "base": BASE_DN, "user_field": "uid",
        "ca_file": DRIVER_CA}
    conf = _render_ldap_auth_conf(tmp_path / "b.conf", "ldap.example.org", 389, False)
    assert ldap.read_ldap_auth_conf(str(conf))["uri"] == "ldap://ldap.example.org:389"
    assert ldap.read_ldap_auth_conf(str(conf))["starttls"] is True


def test_the_first_server_of_order_is_used_and_defaults_are_the_drivers(tmp_path):
    conf = tmp_path / "ldap_auth.conf"
    conf.write_text("# two servers, the second first\nserver 1:\n    :host: one.example.org\n"
                    "    :base: 'dc=one'\n\nsecond:\n    :host: \"two.example.org\"\n    :base: dc=two\n"
                    "    :encryption: :start_tls\n\n:order:\n    - second\n    - server 1\n")
    assert ldap.read_ldap_auth_conf(str(conf)) == {
        "uri": "ldap://two.example.org:389", "starttls": True, "base": "dc=two", "user_field": "cn",
        "ca_file": None}


def test_the_rendered_conf_checks_the_server_against_the_ca_it_names(oned_factory, slapd, tmp_path):
    """The CA of ldap_auth.conf's :tls_options: is the one the server's certificate is checked
    against (as OpenNebula's driver gives it to net-ldap), over a CA given on the command line."""
    conf = _render_ldap_auth_conf(tmp_path / "ldap_auth.conf", "127.0.0.1", _port(slapd["ldaps"]), True,
                                  ca_file="/etc/ssl/certs/ca-certificates.crt")
    server = oned_factory(["--ldap-auth-conf", str(conf), "--ldap-ca", slapd["ca"]])
    answer = server.proxy("alice:" + USERS["alice"]).one.user.info(-1)
    assert answer[0] is False, answer


@pytest.mark.parametrize("text, says", [
    ("server 1:\n    :base: dc=x\n", "has no :host:"),
    ("server 1:\n    :host: h\n    :base: dc=x\n    :encryption: :tls\n", "unknown :encryption:"),
    ("server 1:\n    :host: h\n    :base: dc=x\n:order:\n    - server 2\n", "no server 'server 2'"),
    ("server 1:\n    host: h\n", "cannot read"),
    ("server 1:\n    :host: h\n    :base: dc=x\n    :encryption:\n        :method: :ssl\n", "unknown :encryption:"),
])
def test_an_ldap_auth_conf_that_does_not_read_is_refused_naming_the_file(tmp_path, text, says):
    """The ValueError names the file and what in it does not read."""
    conf = tmp_path / "ldap_auth.conf"
    conf.write_text(text)
    with pytest.raises(ValueError) as err:
        ldap.read_ldap_auth_conf(str(conf))
    assert str(conf) in str(err.value) and says in str(err.value)


def test_a_start_with_an_unreadable_ldap_auth_conf_fails_naming_it(tmp_path):
    conf = tmp_path / "ldap_auth.conf"
    conf.write_text("server 1:\n    :base: dc=x\n")
    proc = subprocess.run(oned_argv("--listen", "127.0.0.1:1", "--state", tmp_path / "s.sqlite",
                                    "--ldap-auth-conf", conf, python=sys.executable),
                          env=oned_env(), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--ldap-auth-conf" in proc.stderr and "has no :host:" in proc.stderr, proc.stderr


def test_the_conf_user_is_found_by_its_field_and_created_with_driver_ldap(conf_oned):
    xml = _user(conf_oned, "alice:" + USERS["alice"])
    assert "<NAME>alice</NAME>" in xml and "<AUTH_DRIVER><![CDATA[ldap]]></AUTH_DRIVER>" in xml
    assert "<PASSWORD><![CDATA[uid=alice,ou=people,%s]]></PASSWORD>" % BASE_DN in xml
    bad = conf_oned.proxy("bob:not-bobs-password").one.user.info(-1)
    assert bad[0] is False and bad[2] == AUTH_ERROR
    unknown = conf_oned.proxy("nobody:whatever").one.user.info(-1)
    assert unknown[0] is False and unknown[2] == AUTH_ERROR


def test_the_conf_is_read_again_at_each_login(conf_oned, slapd):
    # as the driver reads it: a conf naming a port where no LDAP answers
    # refuses the next login without a restart, and the right one admits it
    assert _user(conf_oned, "alice:" + USERS["alice"])
    _render_ldap_auth_conf(conf_oned.conf, "127.0.0.1", 1, True, ca_file=slapd["ca"])
    refused = conf_oned.proxy("alice:" + USERS["alice"]).one.user.info(-1)
    assert refused[0] is False and refused[2] == AUTH_ERROR
    _render_ldap_auth_conf(conf_oned.conf, "127.0.0.1", _port(slapd["ldap"]), False,   # StartTLS this time
                           ca_file=slapd["ca"])
    assert "<NAME>alice</NAME>" in _user(conf_oned, "alice:" + USERS["alice"])
