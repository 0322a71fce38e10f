"""The HTTPS API against a real slapd (TLS, both ldaps:// and StartTLS):
authentication, who may see what, and 400s for bad input."""

import pytest

from acct_apiclient import Running
from acct_ldap import USERS
from acct_samples import T0, have_samples, payload
from stratuslab_accounting.auth import AuthFailed, AuthUnavailable, LdapAuthenticator
from stratuslab_accounting.collector import STATE_LAST_SUCCESS
from stratuslab_accounting.records import parse_history_records
from stratuslab_accounting.store import SQLiteStore

pytestmark = pytest.mark.skipif(not have_samples(), reason="samples missing")

FROM, TO = "2026-11-23T20:30:04Z", "2026-11-23T20:31:09Z"      # T0 .. T0+65
WINDOW = "from=%s&to=%s" % (FROM, TO)


def authenticator(slapd, uri_key="ldaps", admin_group="accounting-admins", ca=None):
    return LdapAuthenticator(slapd[uri_key], slapd["user_dn"], ca or slapd["ca"], slapd["group_base"],
                             admin_group, timeout=5)


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    st = SQLiteStore(str(tmp_path_factory.mktemp("api") / "acct.sqlite"))
    st.migrate()
    st.upsert(parse_history_records(payload("055_")), now=T0 + 65)
    st.set_state(STATE_LAST_SUCCESS, T0 + 65)
    return st


@pytest.fixture(scope="module")
def api(sample_store, slapd, tls):
    running = Running(sample_store, authenticator(slapd), tls)
    yield running
    running.stop()


def test_health_and_openapi_need_no_credentials(api):
    status, _, body = api.request("/healthz")
    assert status == 200 and body["status"] == "ok" and body["schema_version"] == 1
    assert body["last_collection"] == "2026-11-23T20:31:09Z"
    status, _, doc = api.request("/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/healthz", "/metrics", "/v1/usage", "/v1/openapi.json"}
    assert doc["paths"]["/v1/usage"]["get"]["security"] == [{"basic": []}]


def test_metrics_need_no_credentials_and_give_the_last_collection(api):
    status, headers, body = api.request("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = body.splitlines()
    assert "stratuslab_accounting_store_up 1" in lines
    # 2026-11-23T20:31:09Z, the sample store's last success (as /healthz says).
    assert "stratuslab_accounting_last_collection_timestamp_seconds 1795465869" in lines


@pytest.mark.parametrize("user,password", [(None, None), ("alice", "wrong"), ("alice", ""),
                                           ("mallory", "x"), ("alice,ou=people", "alice-pw"),
                                           ("*", "x")])
def test_missing_or_wrong_credentials_get_401(api, user, password):
    status, headers, body = api.request("/v1/usage?" + WINDOW, user, password)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic realm=")
    assert "error" in body and (password or "-") not in body["error"]


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + "YWxpY2U=", "Bearer abc", "Basic"])
def test_malformed_authorization_header_gets_401(api, header):
    status, _, _ = api.request("/v1/usage", headers={"Authorization": header})
    assert status == 401


def test_a_user_sees_only_their_own_usage(api):
    status, _, body = api.request("/v1/usage?" + WINDOW, "alice", USERS["alice"])
    assert status == 200
    assert body["user"] == "alice" and [r["user"] for r in body["rows"]] == ["alice"]
    assert body["rows"][0]["cpu_hours"] == round((51 * 1 + 65 * 0.5) / 3600, 6)
    assert body["totals"]["vms"] == 2
    status, _, body = api.request("/v1/usage?user=bob&" + WINDOW, "alice", USERS["alice"])
    assert status == 403 and "own usage" in body["error"]
    # her usage in another group: allowed, and empty
    status, _, body = api.request("/v1/usage?group=acct-b&" + WINDOW, "alice", USERS["alice"])
    assert status == 200 and body["rows"] == [] and body["totals"]["vms"] == 0
    # a user with no VM at all gets zeros, not an error
    status, _, body = api.request("/v1/usage?" + WINDOW, "bob", USERS["bob"])
    assert status == 200 and [r["user"] for r in body["rows"]] == ["bob"]


def test_admin_by_memberuid_sees_everyone(api):
    status, _, body = api.request("/v1/usage?" + WINDOW, "carol", USERS["carol"])
    assert status == 200 and body["user"] is None
    assert [r["user"] for r in body["rows"]] == ["alice", "bob"]
    assert body["totals"]["vms"] == 4
    status, _, body = api.request("/v1/usage?user=bob&" + WINDOW, "carol", USERS["carol"])
    assert status == 200 and [r["user"] for r in body["rows"]] == ["bob"]
    status, _, body = api.request("/v1/usage?user=mallory&" + WINDOW, "carol", USERS["carol"])
    assert status == 400 and "unknown user" in body["error"]
    status, _, body = api.request("/v1/usage?group=nogroup&" + WINDOW, "carol", USERS["carol"])
    assert status == 400 and "unknown group" in body["error"]


def test_admin_by_groupofnames_member_over_starttls(sample_store, slapd, tls):
    running = Running(sample_store, authenticator(slapd, "ldap", "acct-admins-gon"), tls)
    try:
        status, _, body = running.request("/v1/usage?" + WINDOW, "dave", USERS["dave"])
        assert status == 200 and [r["user"] for r in body["rows"]] == ["alice", "bob"]
        # carol is admin through the other group only
        status, _, _ = running.request("/v1/usage?user=bob&" + WINDOW, "carol", USERS["carol"])
        assert status == 403
    finally:
        running.stop()


@pytest.mark.parametrize("query,fragment", [
    ("from=yesterday", "from"),
    ("from=2026-13-01", "from"),
    ("to=2026-11-01T25:00:00Z", "to"),
    ("from=2026-11-02&to=2026-11-01", "before"),
    ("from=2026-11-01&to=2026-11-01", "before"),
    ("user=a%20b", "user"),
    ("user=", "user"),
    ("format=xml", "format"),
    ("limit=5", "unknown parameter"),
    ("from=2026-11-01&from=2026-11-02", "twice"),
    ("user=%ff", "malformed"),
])
def test_bad_parameters_get_400_with_a_message(api, query, fragment):
    status, headers, body = api.request("/v1/usage?" + query, "alice", USERS["alice"])
    assert status == 400, body
    assert headers["Content-Type"] == "application/json"
    assert fragment in body["error"]


def test_csv_format(api):
    status, headers, body = api.request("/v1/usage?format=csv&" + WINDOW, "carol", USERS["carol"])
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    lines = body.strip().splitlines()
    assert lines[0] == "user,group,vms,wall_hours,running_hours,cpu_hours,memory_gb_hours,disk_gb_hours"
    assert [line.split(",")[0] for line in lines[1:]] == ["alice", "bob"]
    assert float(lines[2].split(",")[5]) == round((55 * 2 + 65 * 0.25) / 3600, 6)


def test_other_methods_and_paths(api):
    assert api.request("/v1/usage", "alice", USERS["alice"], method="POST")[0] == 405
    assert api.request("/v1/usage", method="DELETE")[0] == 405
    assert api.request("/v1/usage", method="BREW")[0] == 405
    status, _, body = api.request("/v2/usage")
    assert status == 404 and "error" in body


def test_ldap_unreachable_or_untrusted_is_503_not_200(sample_store, slapd, tls, tmp_path):
    down = LdapAuthenticator("ldaps://127.0.0.1:1", slapd["user_dn"], slapd["ca"], timeout=2)
    running = Running(sample_store, down, tls)
    try:
        status, _, body = running.request("/v1/usage", "alice", USERS["alice"])
        assert status == 503 and "unavailable" in body["error"]
    finally:
        running.stop()
    # a CA that did not sign slapd's certificate: the bind must not happen
    other_ca = tmp_path / "other-ca.pem"
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=other", "-keyout", str(tmp_path / "k"), "-out", str(other_ca)],
                   check=True, capture_output=True)
    with pytest.raises(AuthUnavailable):
        authenticator(slapd, ca=str(other_ca)).authenticate("alice", USERS["alice"])


def test_authenticator_directly(slapd):
    auth = authenticator(slapd)
    assert auth.authenticate("carol", USERS["carol"]).is_admin
    assert not auth.authenticate("alice", USERS["alice"]).is_admin
    with pytest.raises(AuthFailed):
        auth.authenticate("alice", "")            # would be an anonymous bind
    with pytest.raises(AuthFailed):
        auth.authenticate("alice)(uid=*", "x")    # not a user name
    assert auth.dn_for("a+b") == "uid=a\\+b,ou=people,dc=acct,dc=test"


def test_passwords_never_reach_the_log(api, caplog):
    import logging
    caplog.set_level(logging.DEBUG, logger="stratuslab_accounting")
    api.request("/v1/usage?" + WINDOW, "alice", USERS["alice"])
    api.request("/v1/usage?" + WINDOW, "alice", "not-her-password")
    api.request("/v1/usage?user=bob&" + WINDOW, "alice", USERS["alice"])
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "usage by alice" in text
    assert USERS["alice"] not in text and "not-her-password" not in text
    assert "Authorization" not in text and "Basic " not in text
