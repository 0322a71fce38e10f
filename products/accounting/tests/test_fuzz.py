"""schemathesis against the running API (SQLite store with the reference
samples, a real slapd): positive and negative requests generated from the
API's own OpenAPI document find no server error and no undocumented answer."""

import os
import subprocess

import pytest

from acct_apiclient import Running
from acct_ldap import USERS
from fuzz_api import command
from acct_samples import T0, have_samples, payload
from stratuslab_accounting.auth import LdapAuthenticator
from stratuslab_accounting.collector import STATE_LAST_SUCCESS
from stratuslab_accounting.records import parse_history_records
from stratuslab_accounting.store import SQLiteStore

pytestmark = pytest.mark.skipif(not have_samples(), reason="samples missing")


@pytest.fixture(scope="module")
def api(tmp_path_factory, slapd, tls):
    st = SQLiteStore(str(tmp_path_factory.mktemp("fuzz") / "acct.sqlite"))
    st.migrate()
    st.upsert(parse_history_records(payload("055_")), now=T0 + 65)
    st.set_state(STATE_LAST_SUCCESS, T0 + 65)
    auth = LdapAuthenticator(slapd["ldaps"], slapd["user_dn"], slapd["ca"], slapd["group_base"],
                             "accounting-admins", timeout=5)
    running = Running(st, auth, tls)
    yield running
    running.stop()


@pytest.mark.parametrize("user", ["carol", "alice"])   # an admin, a user
def test_schemathesis_finds_no_server_error(api, tls, user, tmp_path):
    cmd = command("https://127.0.0.1:%d" % api.port, user, USERS[user], tls["ca"], max_examples=25,
                  report_dir=str(tmp_path))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    print(out[-1500:])
    assert "No issues found" in out, out[-2000:]


def test_fuzz_script_serve_mode(slapd, tls, tmp_path):
    """The script as the role's scenario may call it: it starts its own API."""
    import sys
    from acct_samples import SAMPLES
    here = os.path.dirname(os.path.abspath(__file__))
    pw = tmp_path / "pw"
    pw.write_text(USERS["carol"] + "\n")
    proc = subprocess.run(
        [sys.executable, os.path.join(here, "fuzz_api.py"), "--serve", "--tls-cert", tls["cert"],
         "--tls-key", tls["key"], "--ca", tls["ca"], "--ldap-uri", slapd["ldaps"], "--ldap-ca", slapd["ca"],
         "--ldap-user-dn", slapd["user_dn"], "--ldap-group-base", slapd["group_base"],
         "--admin-group", "accounting-admins", "--samples", SAMPLES, "--user", "carol",
         "--password-file", str(pw), "--max-examples", "10"],
        capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "No issues found" in out
