"""A site with its own PKI, its own LDAP server and its accounting in SQLite.

pki-ldap stands for the LDAP server the site already runs (converge.yml
makes it with the ldap role; the site file says site_ldap_deploy: false).
pki-one runs the test oned (products/test_oned, with LDAP login: NOT
OpenNebula), the appliance repository and accounting. Every TLS service
runs on a host certificate prepare.yml issued on the control machine (a
test root CA -> an intermediate "host CA" -> the host). The tests trust
only that root CA, read from the control machine, never a file the roles
wrote:

- each TLS service (pki-ldap's ldaps, pki-one's repository and accounting
  API) presents its host certificate and the intermediate, so a client
  holding only the root CA checks it by the host's name;
- no site CA was made on either host (the ldap role makes one only when
  the site gives none), no slapd on pki-one, and the given files are
  installed with private modes;
- pki-one's LDAP tools, Apache's LDAP authentication, the test oned's LDAP
  login and the accounting API's LDAP login all reach pki-ldap over TLS
  with the given root CA;
- grid users write to the repository with a client certificate whose DN
  maps to a writer (beside the LDAP password); a non-writer's certificate
  does not write, a revoked or untrusted one fails the handshake;
- a usage record goes through the SQLite store (no PostgreSQL installed);
- `--check --diff` with replaced key files on the hosts reports the key
  files as to be changed and prints no line of any key.
"""

import base64
import calendar
import datetime
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import pytest
import stratuslab_testinfra
import testinfra

testinfra_hosts = stratuslab_testinfra.hosts("accounting")

NAME = "pki-one.demo.stratuslab.test"
LDAP_NAME = "pki-ldap.demo.stratuslab.test"
PKI = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "pki")
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
SCENARIO = os.path.join(PROJECT, "molecule", "own_pki")
BASE_DN = "dc=demo,dc=stratuslab,dc=test"
# inventories/demo/group_vars/all/site.yml (test values, not secrets).
ONEADMIN = ("oneadmin", "demo-oneadmin-secret")
ALICE = ("alice", "demo-alice-password")  # in appliance-writers
CAROL = ("carol", "demo-carol-password")  # outside appliance-writers
UNIT = "stratuslab-accounting"
CONFIG = "/etc/stratuslab-accounting/accounting.ini"
SQLITE = "/var/lib/stratuslab-accounting/accounting.sqlite"
API_PORT = 8443
ONED_PORT = 2633
# The key and certificate files the roles installed from the site's, per host.
KEY_FILES = {
    "pki-ldap": {"/etc/ldap/tls/server.key": ("root", "openldap", 0o640)},
    "pki-one": {"/etc/ssl/stratuslab-appliances/server.key": ("root", "root", 0o600),
                "/etc/stratuslab-accounting/tls/api.key": ("root", UNIT, 0o640)},
}
CERT_FILES = {
    "pki-ldap": ["/etc/ldap/tls/server.crt"],
    "pki-one": ["/etc/ssl/stratuslab-appliances/server.crt", "/etc/stratuslab-accounting/tls/api.crt"],
}
HOUR = 3600


def _pki(name):
    with open(os.path.join(PKI, name)) as f:
        return f.read()


def _der(pem):
    return ssl.PEM_cert_to_DER_cert(pem)


def _ipv4(host):
    ipv4 = [a for a in host.interface("eth0").addresses if ":" not in a]
    assert ipv4
    return ipv4[0]


@pytest.fixture(scope="module")
def ldap_host():
    return testinfra.get_host(stratuslab_testinfra.hosts("directory")[0])


@pytest.fixture(scope="module")
def hosts(host, ldap_host):
    return {"pki-one": host, "pki-ldap": ldap_host}


@pytest.fixture(scope="module")
def address(host):
    return _ipv4(host)


@pytest.fixture(scope="module")
def root_only():
    """A client that trusts the site's root CA and nothing else, and checks names."""
    ctx = ssl.create_default_context(cadata=_pki("ca.pem"))
    ctx.check_hostname = True
    return ctx


def _handshake(address, port, ctx, name):
    with socket.create_connection((address, port), timeout=30) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            return tls.getpeercert(binary_form=True)


SERVICES = [("pki-ldap", 636), ("pki-one", 443), ("pki-one", API_PORT)]
SERVICE_IDS = ["ldaps", "repository", "accounting-api"]


# --- the certificates ----------------------------------------------------------


@pytest.mark.parametrize("server,port", SERVICES, ids=SERVICE_IDS)
def test_service_presents_the_site_host_certificate(hosts, root_only, server, port):
    # Verified with the root CA only: the server sent the intermediate too.
    peer = _handshake(_ipv4(hosts[server]), port, root_only, "%s.demo.stratuslab.test" % server)
    assert peer == _der(_pki("%s-leaf.pem" % server))


@pytest.mark.parametrize("server,port", SERVICES, ids=SERVICE_IDS)
def test_service_is_not_trusted_without_the_site_ca(hosts, server, port):
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(_ipv4(hosts[server]), port, ssl.create_default_context(), "%s.demo.stratuslab.test" % server)


def test_no_site_ca_was_made_and_no_slapd_runs_on_the_site_hosts(hosts):
    for name, h in hosts.items():
        assert not h.file("/etc/ldap/tls/site-ca.key").exists, name
    assert hosts["pki-ldap"].file("/etc/ldap/tls/site-ca.crt").content_string.strip() == _pki("ca.pem").strip()
    trusted = hosts["pki-one"].file("/usr/local/share/ca-certificates/stratuslab-ldap-ca.crt")
    assert trusted.content_string.strip() == _pki("ca.pem").strip()
    # site_ldap_deploy: false: the site's hosts are only pointed at its server.
    assert not hosts["pki-one"].package("slapd").is_installed
    assert "URI ldaps://%s" % LDAP_NAME in hosts["pki-one"].file("/etc/ldap/ldap.conf").content_string


def test_given_files_are_installed_with_private_keys_private(hosts):
    for name, files in KEY_FILES.items():
        key = _pki("%s-key.pem" % name).strip()
        for path, (user, group, mode) in files.items():
            f = hosts[name].file(path)
            assert (f.user, f.group, f.mode) == (user, group, mode), path
            assert f.content_string.strip() == key, path
    for name, paths in CERT_FILES.items():
        for path in paths:
            assert hosts[name].file(path).content_string.strip() == _pki("%s-cert.pem" % name).strip(), path


# --- LDAP over TLS with the given CA --------------------------------------------


@pytest.mark.parametrize("uri,opts", [("ldaps://%s" % LDAP_NAME, "-x"), ("ldap://%s" % LDAP_NAME, "-x -ZZ")],
                         ids=["ldaps", "starttls"])
def test_ldap_tools_bind_over_tls(host, uri, opts):
    """pki-one's LDAP tools reach the site's server, trusting the given root CA."""
    out = host.run("ldapwhoami " + opts + " -H %s -D uid=alice,ou=people,%s -w %s", uri, BASE_DN, ALICE[1])
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "dn:uid=alice,ou=people,%s" % BASE_DN


def test_repository_authenticates_writers_against_ldap(host):
    """Apache's LDAP authentication binds to slapd over TLS, trusting the given CA."""
    base = "https://%s/images/pki-%s/" % (NAME, uuid.uuid4().hex[:8])

    def code(method, url, user=None, data=None):
        return stratuslab_testinfra.http_code(host, method, url, user, data)

    assert code("MKCOL", base, ALICE) == 201
    assert code("PUT", base + "hello.txt", ALICE, "hello") == 201
    assert code("GET", base + "hello.txt") == 200
    assert code("PUT", base + "carol.txt", CAROL, "x") == 403
    assert code("PUT", base + "anon.txt", None, "x") == 401


# --- client certificates for the repository's writes ----------------------------


def _repository(address, cert=None):
    """An https connection to the repository from this machine, with a grid user's certificate (prepare.yml)."""
    ctx = ssl.create_default_context(cadata=_pki("ca.pem"))
    if cert:
        ctx.load_cert_chain(os.path.join(PKI, "%s-user.pem" % cert), os.path.join(PKI, "%s-user-key.pem" % cert))

    class Conn(http.client.HTTPSConnection):
        def connect(self):
            self.sock = ctx.wrap_socket(socket.create_connection((address, 443), 30), server_hostname=NAME)

    return Conn(NAME, 443, context=ctx, timeout=60)


def _status(address, method, path, cert=None, body=None, user=None):
    conn = _repository(address, cert)
    headers = {"Content-Type": "application/octet-stream"}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % user).encode()).decode()
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def test_a_writer_writes_with_her_grid_certificate(address):
    """alice's certificate (no password), from a CA of the site's CA directory, maps to alice, a writer."""
    base = "/images/cert-%s/" % uuid.uuid4().hex[:8]
    assert _status(address, "MKCOL", base, cert="alice") == 201
    assert _status(address, "PUT", base + "hello.txt", cert="alice", body=b"by certificate") == 201
    assert _status(address, "GET", base + "hello.txt") == 200
    assert _status(address, "DELETE", base + "hello.txt", cert="alice") == 204


def test_a_certificate_of_a_user_outside_the_writers_group_does_not_write(address):
    # carol's certificate is valid and maps to carol, who is no writer: asked for a writer's credentials.
    assert _status(address, "PUT", "/images/carol-cert.txt", cert="carol", body=b"x") == 401
    # Reads need no certificate, and take one.
    assert _status(address, "GET", "/", cert="carol") == 200


def test_the_password_still_writes_beside_the_certificates(address):
    path = "/images/pw-%s.txt" % uuid.uuid4().hex[:8]
    assert _status(address, "PUT", path, user=ALICE, body=b"by password") == 201
    assert _status(address, "PUT", path + ".c", user=CAROL, body=b"x") == 403
    assert _status(address, "DELETE", path, user=ALICE) == 204


@pytest.mark.parametrize("cert", ["alice-revoked", "alice-rogue"], ids=["revoked-in-the-crl", "untrusted-ca"])
def test_a_revoked_or_untrusted_certificate_is_refused(address, cert):
    """alice's name on a certificate the CRL revokes, or that no trusted CA issued: the handshake fails."""
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        _status(address, "PUT", "/images/%s.txt" % cert, cert=cert, body=b"x")


def test_the_ca_directory_has_the_igtf_layout(host):
    listing = host.run("ls /etc/grid-security/certificates")
    names = listing.stdout.split()
    assert len([n for n in names if re.fullmatch(r"[0-9a-f]{8}\.0", n)]) == 2, names
    assert len([n for n in names if re.fullmatch(r"[0-9a-f]{8}\.r0", n)]) == 1, names
    assert host.service("fetch-crl.timer").is_enabled


# --- accounting in SQLite ---------------------------------------------------------


@pytest.fixture(scope="module")
def oned(address):
    return stratuslab_testinfra.oned_caller(address, ONED_PORT)


@pytest.fixture(scope="module")
def usage(host, oned):
    """alice (an LDAP user, created by the test oned at her first call) runs a
    2-CPU, 2 GiB VM for 3 hours of the test oned's clock on a day of its own;
    one collector pass stores it."""
    earlier = len(ET.fromstring(oned(ONEADMIN, "one.vmpool.info", -2, -1, -1, -2)).findall("VM"))
    day = datetime.date(2026, 10, 1) + datetime.timedelta(days=earlier)
    oned(ONEADMIN, "testoned.clock.set", calendar.timegm((day.year, day.month, day.day, 6, 0, 0)))
    try:
        hid = oned(ONEADMIN, "one.host.allocate", "pki-host-%d" % os.getpid(), "dummy", "dummy",
                    stratuslab_testinfra.cluster_id(oned, ONEADMIN, "demo"))
        vm = oned(ALICE, "one.vm.allocate", 'NAME="pki-vm"\nCPU="2"\nVCPU="2"\nMEMORY="2048"\n', True)
        oned(ONEADMIN, "one.vm.deploy", vm, hid, False, -1)
        oned(ONEADMIN, "testoned.clock.advance", 3 * HOUR)
        oned(ALICE, "one.vm.action", "terminate-hard", vm)
    finally:
        oned(ONEADMIN, "testoned.clock.set", 0)
    # The units' PYTHONPATH: the version of the service's wheel that `current` names.
    collect = host.run("runuser -u %s -- env PYTHONPATH=/usr/local/lib/stratuslab-accounting/current "
                       "python3 -m stratuslab_accounting --config %s collect --once" % (UNIT, CONFIG))
    assert collect.rc == 0, collect.stdout + collect.stderr
    return {"from": day.isoformat(), "to": (day + datetime.timedelta(days=1)).isoformat()}


def test_store_is_one_private_sqlite_file_and_no_postgresql(host):
    assert "backend = sqlite" in host.file(CONFIG).content_string
    store = host.file(SQLITE)
    assert (store.user, store.group) == (UNIT, UNIT) and store.mode & 0o007 == 0, (store.user, store.mode)
    assert not host.file("/etc/stratuslab-accounting/db_password").exists
    assert not host.package("postgresql").is_installed


def test_usage_goes_through_sqlite_and_the_api(host, address, root_only, usage):
    rows = host.run("runuser -u %s -- python3 -c %s", UNIT,
                    "import sqlite3; print(sqlite3.connect('file:%s?mode=ro', uri=True)"
                    ".execute('SELECT count(*) FROM history').fetchone()[0])" % SQLITE)
    assert rows.rc == 0 and int(rows.stdout) >= 1, rows.stdout + rows.stderr

    class Conn(http.client.HTTPSConnection):
        def connect(self):
            self.sock = root_only.wrap_socket(socket.create_connection((address, API_PORT), 30),
                                              server_hostname=NAME)

    conn = Conn(NAME, API_PORT, context=root_only, timeout=60)
    auth = base64.b64encode(("%s:%s" % ALICE).encode()).decode()
    conn.request("GET", "/v1/usage?" + urllib.parse.urlencode(usage), headers={"Authorization": "Basic " + auth})
    resp = conn.getresponse()
    body = resp.read().decode()
    assert resp.status == 200, body
    row = {r["user"]: r for r in json.loads(body)["rows"]}["alice"]
    assert row["vms"] == 1
    assert row["cpu_hours"] == pytest.approx(2 * 3.0)
    assert row["memory_gb_hours"] == pytest.approx(2.0 * 3.0)


# --- no key in --check --diff ---------------------------------------------------------


def test_check_diff_names_a_replaced_key_but_never_prints_it(hosts):
    """A site that renews its host keys: with old keys on the hosts, --check
    --diff says the key files would change, and prints no line of any key."""
    old = "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % base64.b64encode(
        hashlib.sha512(b"stand-in for the key being replaced").digest() * 4).decode()
    for name, files in KEY_FILES.items():
        for path in files:
            assert hosts[name].run("cp -p %s %s.verify-backup", path, path).rc == 0
            hosts[name].run("printf '%%s' '%s' > %s", old, path)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOG_PATH="/dev/null")
    try:
        proc = subprocess.run(
            ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--check", "--diff",
             os.path.join(SCENARIO, "converge.yml")],
            capture_output=True, text=True, env=env, timeout=900, cwd=PROJECT)
    finally:
        for name, files in KEY_FILES.items():
            for path in files:
                hosts[name].run("mv %s.verify-backup %s", path, path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    for name, files in KEY_FILES.items():
        for path in files:
            assert re.search(r"changed: \[%s\] => \(item=%s\)" % (name, re.escape(path)), out), (path, out[-3000:])
    body_lines = [line for key in [old] + [_pki("%s-key.pem" % name) for name in KEY_FILES]
                  for line in key.splitlines() if line and not line.startswith("-----")]
    leaked = [line for line in body_lines if line in out]
    assert leaked == [], "key lines in the --check --diff output: %d" % len(leaked)
