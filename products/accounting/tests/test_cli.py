"""The command line as the systemd units run it: configuration errors name
the key, migrate on PostgreSQL with a password file, serve over HTTPS with
LDAP and stop cleanly on SIGTERM."""

import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.request

import pytest

from acct_testlib import PKG_PARENT, free_port, wait_for, listening

ENV = dict(os.environ, PYTHONPATH=PKG_PARENT)


def cli(ini, *args, **kw):
    return subprocess.run([sys.executable, "-m", "stratuslab_accounting", "--config", str(ini)] + list(args),
                          capture_output=True, text=True, env=ENV, timeout=60, **kw)


@pytest.mark.parametrize("content,fragment", [
    ("[store]\nbackend = mysql\n", "[store] backend"),
    ("[collector]\ninterval = soon\n", "[collector] interval: 'soon' is not an integer"),
    ("[collector]\ninterval = 0\n", "[collector] interval: 0 is below 1"),
    ("[oned]\ntimeout = quick\n", "[oned] timeout: 'quick' is not a number"),
    ("[oned]\ntimeout = 0.01\n", "[oned] timeout: 0.01 is below 0.1"),
    ("[api]\nldap_user_dn = uid=x,dc=org\n", "{user}"),
    ("[api]\nldap_uri = http://ldap\n", "[api] ldap_uri"),
    ("not an ini", "no section headers"),
])
def test_configuration_errors_name_the_key(tmp_path, content, fragment):
    ini = tmp_path / "bad.ini"
    ini.write_text(content)
    proc = cli(ini, "migrate")
    assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr


def test_collect_needs_the_auth_file(tmp_path):
    ini = tmp_path / "a.ini"
    ini.write_text("[store]\nbackend = sqlite\npath = %s\n[oned]\nauth_file = %s\n"
                   % (tmp_path / "s.sqlite", tmp_path / "missing"))
    proc = cli(ini, "collect", "--once")
    assert proc.returncode == 2 and "[oned] auth_file" in proc.stderr


def test_migrate_on_postgresql_with_a_password_file(pg_cluster, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(pg_cluster.password + "\n")
    ini = tmp_path / "pg.ini"
    db = "cli_" + str(os.getpid())
    pg_cluster.psql("CREATE DATABASE %s OWNER %s" % (db, pg_cluster.user))
    ini.write_text("[store]\nbackend = postgresql\nhost = 127.0.0.1\nport = %d\ndbname = %s\nuser = %s\n"
                   "password_file = %s\n" % (pg_cluster.port, db, pg_cluster.user, pw))
    first, second = cli(ini, "migrate"), cli(ini, "migrate")
    assert first.returncode == 0 and "applied now: [1]" in first.stdout, first.stderr
    assert second.returncode == 0 and "applied now: none" in second.stdout
    pw.write_text("wrong\n")
    bad = cli(ini, "migrate")
    assert bad.returncode == 1 and "password authentication failed" in bad.stderr
    assert pg_cluster.password not in bad.stderr + first.stderr


def test_serve_over_https_and_stop_on_sigterm(tmp_path, slapd, tls):
    port = free_port()
    ini = tmp_path / "api.ini"
    ini.write_text("\n".join([
        "[store]", "backend = sqlite", "path = %s" % (tmp_path / "s.sqlite"),
        "[api]", "listen = 127.0.0.1", "port = %d" % port, "tls_cert = " + tls["cert"],
        "tls_key = " + tls["key"], "ldap_uri = " + slapd["ldaps"], "ldap_ca_file = " + slapd["ca"],
        "ldap_user_dn = " + slapd["user_dn"], "ldap_group_base = " + slapd["group_base"],
        "admin_group = accounting-admins"]) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "stratuslab_accounting", "--config", str(ini), "serve"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: listening(port), timeout=20)
        ctx = ssl.create_default_context(cafile=tls["ca"])
        with urllib.request.urlopen("https://127.0.0.1:%d/healthz" % port, context=ctx, timeout=10) as resp:
            assert json.load(resp)["status"] == "ok"
        req = urllib.request.Request("https://127.0.0.1:%d/v1/usage" % port)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, context=ctx, timeout=10)
        assert err.value.code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, errs = proc.communicate(timeout=20)
    assert proc.returncode == 0, errs
    assert "API listening on https://127.0.0.1:%d" % port in errs
