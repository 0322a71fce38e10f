"""--oned-conf: the test oned takes the site's values from an oned.conf
written as the frontend role writes it (OpenNebula template syntax), and
options given on the command line win over the file."""

import subprocess
import sys
import xmlrpc.client

import pytest

from oned_support import REPO, SESSION, free_port, oned_argv, oned_env
from stratuslab_test_oned import cli

ONED_CONF = """# oned.conf as the frontend role writes it (the parts the test oned reads)
LOG = [
  SYSTEM      = "file",
  DEBUG_LEVEL = 3
]

LISTEN_ADDRESS = "127.0.0.1"
PORT = %(port)d

DATASTORE_LOCATION = "/srv/one/datastores"
MAC_PREFIX = "02:42"

AUTH_MAD = [
  EXECUTABLE = "one_auth_mad",
  AUTHN      = "%(authn)s"
]
%(default_auth)s
AUTH_MAD_CONF = [
  NAME                  = "core",
  PASSWORD_CHANGE       = "YES"
]
"""
LDAP_AUTH_CONF = "server 1:\n    :host: ldap.example.org\n    :base: 'dc=example,dc=org'\n" \
                 "    :encryption: :simple_tls\n\n:order:\n    - server 1\n"


def write_conf(directory, port=2633, ldap=False, default_auth=True):
    authn = "ssh,x509,ldap,server_cipher,server_x509" if ldap else "ssh,x509,server_cipher,server_x509"
    path = directory / "oned.conf"
    path.write_text(ONED_CONF % {"port": port, "authn": authn,
                                 "default_auth": 'DEFAULT_AUTH = "ldap"\n' if default_auth and ldap else ""})
    if ldap:
        (directory / "auth").mkdir(exist_ok=True)
        (directory / "auth" / "ldap_auth.conf").write_text(LDAP_AUTH_CONF)
    return path


def run(tmp_path, *options):
    return subprocess.run(oned_argv("--state", tmp_path / "s.sqlite", *options, python=sys.executable),
                          env=oned_env(), cwd=str(REPO), capture_output=True, text=True, timeout=30)


def test_a_started_test_oned_listens_and_answers_with_the_conf_values(tmp_path):
    port = free_port()
    conf = write_conf(tmp_path, port=port)
    proc = subprocess.Popen(oned_argv("--oned-conf", conf, "--state", tmp_path / "s.sqlite"),
                            env=oned_env(), cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        banner = proc.stderr.readline().decode()
        assert "answering as oned" in banner and "127.0.0.1:%d," % port in banner, banner
        answer = xmlrpc.client.ServerProxy("http://127.0.0.1:%d/RPC2" % port).one.system.config(SESSION)
        assert answer[0] is True, answer
        assert "<MAC_PREFIX><![CDATA[02:42]]></MAC_PREFIX>" in answer[1]
        assert "<DATASTORE_LOCATION><![CDATA[/srv/one/datastores]]></DATASTORE_LOCATION>" in answer[1]
        assert "<PORT><![CDATA[%d]]></PORT>" % port in answer[1]
    finally:
        proc.terminate()
        proc.wait(15)
        proc.stderr.close()
    assert proc.returncode == 0


def test_without_ldap_in_the_conf_there_is_no_ldap_login(tmp_path):
    opts = cli.parse_args(["--oned-conf", str(write_conf(tmp_path)), "--state", str(tmp_path / "s.sqlite")])
    assert (opts.host, opts.port, opts.mac_prefix) == ("127.0.0.1", 2633, "02:42")
    assert opts.datastore_location == "/srv/one/datastores"
    assert opts.ldap_auth_conf is None and opts.ldap_uri is None


def test_ldap_login_in_the_conf_reads_auth_ldap_auth_conf_beside_it(tmp_path):
    opts = cli.parse_args(["--oned-conf", str(write_conf(tmp_path, ldap=True)),
                           "--state", str(tmp_path / "s.sqlite")])
    assert opts.ldap_auth_conf == str(tmp_path / "auth" / "ldap_auth.conf")


def test_ldap_in_authn_without_default_auth_ldap_is_no_ldap_login(tmp_path):
    opts = cli.parse_args(["--oned-conf", str(write_conf(tmp_path, ldap=True, default_auth=False)),
                           "--state", str(tmp_path / "s.sqlite")])
    assert opts.ldap_auth_conf is None


def test_options_on_the_command_line_win_over_the_conf(tmp_path):
    conf = write_conf(tmp_path, ldap=True)
    other = tmp_path / "other_ldap_auth.conf"
    other.write_text(LDAP_AUTH_CONF)
    opts = cli.parse_args(["--oned-conf", str(conf), "--state", str(tmp_path / "s.sqlite"),
                           "--listen", "127.0.0.2:2700", "--mac-prefix", "02:99",
                           "--datastore-location", "/elsewhere/", "--ldap-auth-conf", str(other)])
    assert (opts.host, opts.port, opts.mac_prefix) == ("127.0.0.2", 2700, "02:99")
    assert opts.datastore_location == "/elsewhere" and opts.ldap_auth_conf == str(other)
    # an explicit --ldap-uri turns the conf's LDAP login (ldap_auth.conf) off
    opts = cli.parse_args(["--oned-conf", str(conf), "--state", str(tmp_path / "s.sqlite"),
                           "--ldap-uri", "ldaps://127.0.0.1", "--ldap-base-dn", "dc=x"])
    assert opts.ldap_uri == "ldaps://127.0.0.1" and opts.ldap_auth_conf is None


def test_without_the_conf_the_defaults_stay(tmp_path):
    opts = cli.parse_args(["--state", str(tmp_path / "s.sqlite")])
    assert (opts.host, opts.port, opts.mac_prefix) == ("127.0.0.1", 2633, "02:00")
    assert opts.datastore_location == "/var/lib/one//datastores".rstrip("/")


@pytest.mark.parametrize("text, says", [
    ('LISTEN_ADDRESS = "0.0.0.0"\nPORT = 2633\nAUTH_MAD = [\n  AUTHN = "ldap"\n', "syntax error"),
    ('PORT = twenty\n', "PORT 'twenty' is not a number"),
])
def test_a_conf_that_does_not_read_stops_the_start_naming_the_file(tmp_path, text, says):
    conf = tmp_path / "oned.conf"
    conf.write_text(text)
    proc = run(tmp_path, "--oned-conf", conf)
    assert proc.returncode == 2, proc.stderr
    assert "--oned-conf: %s" % conf in proc.stderr and says in proc.stderr, proc.stderr


def test_a_missing_conf_or_ldap_auth_conf_stops_the_start_naming_it(tmp_path):
    proc = run(tmp_path, "--oned-conf", tmp_path / "nowhere.conf")
    assert proc.returncode == 2 and str(tmp_path / "nowhere.conf") in proc.stderr, proc.stderr
    conf = write_conf(tmp_path, ldap=True)
    (tmp_path / "auth" / "ldap_auth.conf").unlink()
    proc = run(tmp_path, "--oned-conf", conf)
    assert proc.returncode == 2 and str(tmp_path / "auth" / "ldap_auth.conf") in proc.stderr, proc.stderr
