"""What users and the site administrator observe of the accounting service.

acct-one is the site's LDAP server, its front-end (the project's test oned,
products/test_oned, with LDAP login: NOT OpenNebula) and its accounting host.
From the test machine, over the network, the tests:

- script VMs in the test oned as two LDAP users in two oned groups, with the
  test oned's clock (testoned.clock.*) so that hours pass in seconds;
- run one collector pass on the host (`collect --once`);
- ask the HTTPS API as those users and as an accounting admin, checking the
  server certificate against the site CA and the host's name.

Expected figures are computed here from the script, independently of the
service: CPU-hours = CPU x allocated hours (STIME..ETIME, poweroff
included), memory GB-hours = MEMORY/1024 x allocated hours.
"""

import base64
import calendar
import datetime
import csv
import hashlib
import http.client
import io
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import urllib.parse
import xmlrpc.client

import pytest
import stratuslab_testinfra

testinfra_hosts = stratuslab_testinfra.hosts("accounting")

NAME = "acct-one.demo.stratuslab.test"
API_PORT = 8443
ONED_PORT = 2633
UNIT = "stratuslab-accounting"
CONFIG = "/etc/stratuslab-accounting/accounting.ini"
# inventories/demo/group_vars/all/site.yml (test values, not secrets).
ONEADMIN = ("oneadmin", "demo-oneadmin-secret")
ALICE = ("alice", "demo-alice-password")
BOB = ("bob", "demo-bob-password")
CAROL = ("carol", "demo-carol-password")  # member of accounting-admins
DB = {"name": "stratuslab_accounting", "user": "stratuslab_accounting", "password": "demo-accounting-db-secret"}
APEL_DIR = "/var/spool/apel/outgoing"
# The service's wheel, unpacked by version; the units run what `current` names.
INSTALL_DIR = "/usr/local/lib/stratuslab-accounting"
CURRENT = INSTALL_DIR + "/current"
PRODUCT = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "products", "accounting")
with open(os.path.join(PRODUCT, "src", "stratuslab_accounting", "__init__.py"), encoding="utf-8") as _init:
    VERSION = re.search(r'^__version__ = "([^"]+)"', _init.read(), re.M).group(1)
# The role unpacks the wheel (`make accounting-wheel`: the role's files/) into
# a directory named by its version and the start of its sha256.
_WHEEL = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "roles", "accounting", "files",
                      "stratuslab_accounting-%s-py3-none-any.whl" % VERSION)
with open(_WHEEL, "rb") as _wheel:
    RELEASE = VERSION + "-" + hashlib.sha256(_wheel.read()).hexdigest()[:12]

# The scripted day starts at 06:00 UTC on a day of its own for every run of
# the tests, later than the previous run's (a rerun of verify must not find
# the VMs of the previous one, and oned's time, like the collector's
# incremental windows, only moves forward).
FIRST_DAY = datetime.date(2026, 10, 1)
HOUR = 3600


def service_cmd(args):
    """The service's command line, run as its user (what the units run)."""
    return ("runuser -u %s -- env PYTHONPATH=%s "
            "python3 -m stratuslab_accounting --config %s %s" % (UNIT, CURRENT, CONFIG, args))


# --- network access from the test machine --------------------------------------


@pytest.fixture(scope="module")
def address(host):
    addr = host.interface("eth0").addresses
    ipv4 = [a for a in addr if ":" not in a]
    assert ipv4, addr
    return ipv4[0]


@pytest.fixture(scope="module")
def tls(host):
    """A client TLS context trusting only the site CA (read from the host)."""
    ca = host.file("/etc/ldap/tls/site-ca.crt").content_string
    ctx = ssl.create_default_context(cadata=ca)
    ctx.check_hostname = True
    return ctx


class _Conn(http.client.HTTPSConnection):
    """HTTPS to an address, with the certificate checked against NAME."""

    def __init__(self, address, ctx):
        super().__init__(NAME, API_PORT, context=ctx, timeout=60)
        self._address = address
        self._ctx = ctx

    def connect(self):
        sock = socket.create_connection((self._address, API_PORT), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=NAME)


@pytest.fixture(scope="module")
def api(address, tls):
    def get(path, params=None, auth=None):
        conn = _Conn(address, tls)
        headers = {}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        conn.request("GET", url, headers=headers)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8")
        conn.close()
        return resp.status, resp.getheader("Content-Type", ""), body
    return get


@pytest.fixture(scope="module")
def oned(address):
    return stratuslab_testinfra.oned_caller(address, ONED_PORT)


# --- the scripted usage ---------------------------------------------------------


def _group(address, name):
    """The id of the oned group ``name``, made when missing (a rerun of verify finds it)."""
    proxy = xmlrpc.client.ServerProxy("http://%s:%d/RPC2" % (address, ONED_PORT))
    answer = proxy.one.group.allocate("%s:%s" % ONEADMIN, name)
    if answer[0] is True:
        return answer[1]
    taken = re.search(r"taken by GROUP (\d+)", answer[1])
    assert taken, answer
    return int(taken.group(1))


def _user_id(oned, auth):
    import xml.etree.ElementTree as ET

    # The first call as an LDAP user makes the test oned create the user.
    return int(ET.fromstring(oned(auth, "one.user.info", -1)).findtext("ID"))


def _vm(oned, auth, name, cpu, memory):
    template = 'NAME="%s"\nCPU="%s"\nVCPU="1"\nMEMORY="%d"\n' % (name, cpu, memory)
    return oned(auth, "one.vm.allocate", template, True)


@pytest.fixture(scope="module")
def usage(host, oned, address):
    """Alice (group physics) and bob (group chemistry) use VMs for a scripted
    day; one collector pass stores it. The day's window and the expected
    figures per user."""
    import xml.etree.ElementTree as ET

    earlier_vms = len(ET.fromstring(oned(ONEADMIN, "one.vmpool.info", -2, -1, -1, -2)).findall("VM"))
    day = FIRST_DAY + datetime.timedelta(days=earlier_vms)
    t0 = calendar.timegm((day.year, day.month, day.day, 6, 0, 0))
    oned(ONEADMIN, "testoned.clock.set", t0)
    try:
        physics, chemistry = _group(address, "physics"), _group(address, "chemistry")
        for auth, gid in ((ALICE, physics), (BOB, chemistry)):
            oned(ONEADMIN, "one.user.chgrp", _user_id(oned, auth), gid)
        hid = oned(ONEADMIN, "one.host.allocate", "acct-host-%d" % os.getpid(), "dummy", "dummy",
                   stratuslab_testinfra.cluster_id(oned, ONEADMIN, "demo"))
        # alice: 1 CPU, 1 GiB; runs 2 h, powered off 1 h, runs 1 h, terminated.
        a = _vm(oned, ALICE, "alice-vm", 1, 1024)
        # bob: 2 CPUs, 2 GiB; runs 3 h, terminated.
        b = _vm(oned, BOB, "bob-vm", 2, 2048)
        for vm in (a, b):
            oned(ONEADMIN, "one.vm.deploy", vm, hid, False, -1)
        oned(ONEADMIN, "testoned.clock.advance", 2 * HOUR)
        oned(ALICE, "one.vm.action", "poweroff-hard", a)
        oned(ONEADMIN, "testoned.clock.advance", 1 * HOUR)
        oned(ALICE, "one.vm.action", "resume", a)
        oned(BOB, "one.vm.action", "terminate-hard", b)
        oned(ONEADMIN, "testoned.clock.advance", 1 * HOUR)
        oned(ALICE, "one.vm.action", "terminate-hard", a)
    finally:
        oned(ONEADMIN, "testoned.clock.set", 0)
    collect = host.run(service_cmd("collect --once"))
    assert collect.rc == 0, collect.stdout + collect.stderr
    window = {"from": day.isoformat(), "to": (day + datetime.timedelta(days=1)).isoformat()}
    return {"window": window, "users": {
        # allocated 4 h (poweroff included), running 3 h
        "alice": {"group": "physics", "vms": 1, "wall_hours": 4.0, "running_hours": 3.0,
                  "cpu_hours": 1 * 4.0, "memory_gb_hours": 1.0 * 4.0},
        "bob": {"group": "chemistry", "vms": 1, "wall_hours": 3.0, "running_hours": 3.0,
                "cpu_hours": 2 * 3.0, "memory_gb_hours": 2.0 * 3.0},
    }}


def _rows(body):
    return {row["user"]: row for row in json.loads(body)["rows"]}


# --- services, files, store ------------------------------------------------------


@pytest.mark.parametrize("unit", ["collector", "api"])
def test_services_run_and_start_at_boot(host, unit):
    service = host.service("%s-%s" % (UNIT, unit))
    assert service.is_running
    assert service.is_enabled


def test_package_is_the_wheel_unpacked_into_its_version_and_current(host):
    """The wheel of products/accounting's version, unpacked (no pip) into its
    own directory (version and sha256), root's and read-only to the service; `current` names it
    and every unit's PYTHONPATH names `current`; nothing in the system Python."""
    version_dir = "%s/%s" % (INSTALL_DIR, RELEASE)
    current = host.file(CURRENT)
    assert current.is_symlink and current.linked_to == version_dir, (current.is_symlink, current.linked_to)
    # A first deploy: no previous version, and nothing else (a copy of the package that was not a wheel is gone).
    listing = host.run("ls -A %s", INSTALL_DIR)
    assert sorted(listing.stdout.split()) == sorted([RELEASE, "current"]), listing.stdout
    assert host.file(version_dir + "/stratuslab_accounting-%s.dist-info/METADATA" % VERSION).is_file
    for path, mode in ((version_dir, 0o755), (version_dir + "/stratuslab_accounting", 0o755),
                       (version_dir + "/stratuslab_accounting/api.py", 0o644)):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", mode), (path, f.user, f.group, oct(f.mode))
    writable = host.run("runuser -u %s -- test -w %s/stratuslab_accounting", UNIT, version_dir)
    assert writable.rc != 0, "the service user may write its own code"
    imported = host.run("runuser -u %s -- env PYTHONPATH=%s python3 -c %s", UNIT, CURRENT,
                        "import stratuslab_accounting as s; print(s.__version__, s.__file__)")
    assert imported.rc == 0, imported.stderr
    assert imported.stdout.split() == [VERSION, CURRENT + "/stratuslab_accounting/__init__.py"], imported.stdout
    for unit in ("migrate", "collector", "api", "apel-export"):
        env = host.run("systemctl show -p Environment %s-%s.service", UNIT, unit).stdout
        assert "PYTHONPATH=" + CURRENT in env.strip().partition("=")[2].split(), (unit, env)
    system = host.run("python3 -c 'import stratuslab_accounting'")
    assert system.rc != 0, "the system Python imports the service without PYTHONPATH"


def test_migrations_ran_before_the_services(host):
    migrate = host.run("systemctl show -p ActiveState,Result,UnitFileState %s-migrate.service", UNIT)
    assert "ActiveState=active" in migrate.stdout and "Result=success" in migrate.stdout, migrate.stdout
    assert "UnitFileState=enabled" in migrate.stdout
    for unit in ("collector", "api", "apel-export"):
        deps = host.run("systemctl show -p Requires,After %s-%s.service", UNIT, unit).stdout
        assert deps.count("%s-migrate.service" % UNIT) == 2, deps


def test_apel_export_is_scheduled(host):
    timer = host.run("systemctl show -p ActiveState,UnitFileState %s-apel-export.timer", UNIT).stdout
    assert "ActiveState=active" in timer and "UnitFileState=enabled" in timer, timer


def test_apel_export_unit_runs_as_its_timer_starts_it(host):
    """The oneshot the timer starts, started the same way: its ExecStart (the
    shell's date arithmetic, systemd's %% escapes, the service user) runs to
    success and reports what it wrote (an unscripted day may have no record)."""
    service = "%s-apel-export.service" % UNIT
    start = host.run("systemctl start %s", service)
    assert start.rc == 0, start.stdout + start.stderr
    show = host.run("systemctl show -p Result,ExecMainStatus,InvocationID %s", service).stdout
    assert "Result=success" in show and "ExecMainStatus=0" in show, show
    invocation = re.search(r"InvocationID=(\w+)", show).group(1)
    said = host.run("journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID=%s", invocation).stdout
    assert re.search(r"^\d+ records( written to %s/\S+|, nothing written)$" % re.escape(APEL_DIR), said, re.M), said


def test_postgresql_role_logs_in_with_its_password_only(host):
    sql = "SELECT max(version) FROM schema_version"
    ok = host.run("PGPASSWORD=%s psql -h 127.0.0.1 -U %s -d %s -tAc %s", DB["password"], DB["user"], DB["name"], sql)
    assert ok.rc == 0, ok.stderr
    assert int(ok.stdout.strip()) >= 1
    wrong = host.run("PGPASSWORD=not-the-password psql -h 127.0.0.1 -U %s -d %s -tAc 'SELECT 1'", DB["user"], DB["name"])
    assert wrong.rc != 0 and "password authentication failed" in wrong.stderr, wrong.stderr
    tables = host.run("PGPASSWORD=%s psql -h 127.0.0.1 -U %s -d %s -tAc %s", DB["password"], DB["user"], DB["name"], "\\dt")
    assert "history" in tables.stdout and "schema_version" in tables.stdout


def test_configuration_and_secrets_are_private(host):
    conf = host.file(CONFIG)
    assert (conf.user, conf.group, conf.mode) == ("root", UNIT, 0o640)
    for path in ("/etc/stratuslab-accounting/one_auth", "/etc/stratuslab-accounting/db_password"):
        secret = host.file(path)
        assert (secret.user, secret.group, secret.mode) == (UNIT, UNIT, 0o600), path
    key = host.file("/etc/stratuslab-accounting/tls/api.key")
    assert (key.user, key.group, key.mode) == ("root", UNIT, 0o640)
    text = conf.content_string
    for secret in (DB["password"], ONEADMIN[1]):
        assert secret not in text
    assert "backend = postgresql" in text
    assert "admin_group = accounting-admins" in text


def test_service_user_cannot_log_in(host):
    user = host.user(UNIT)
    assert user.shell == "/usr/sbin/nologin"
    # A locked password ("!..." or "*"): nobody can log in with one.
    assert user.password.startswith(("!", "*")), user.password


# --- the API over HTTPS, from the test machine -----------------------------------


def test_openapi_document_is_served(api):
    status, ctype, body = api("/v1/openapi.json")
    assert status == 200 and ctype.startswith("application/json")
    doc = json.loads(body)
    assert doc["openapi"].startswith("3.")
    assert "/v1/usage" in doc["paths"]


def test_certificate_is_checked_against_the_site_ca(address):
    # Without the site CA the server is not trusted.
    ctx = ssl.create_default_context(cadata=None)
    conn = _Conn(address, ctx)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/v1/openapi.json")


def test_no_credentials_is_401(api, usage):
    status, _, body = api("/v1/usage", usage["window"])
    assert status == 401, body


def test_wrong_password_is_401(api, usage):
    status, _, body = api("/v1/usage", usage["window"], auth=("alice", "not-alice-password"))
    assert status == 401, body


def test_a_user_sees_their_own_usage(api, usage):
    status, _, body = api("/v1/usage", usage["window"], auth=ALICE)
    assert status == 200, body
    rows = _rows(body)
    assert set(rows) == {"alice"}
    row, want = rows["alice"], usage["users"]["alice"]
    assert row["group"] == want["group"]
    for figure in ("vms", "wall_hours", "running_hours", "cpu_hours", "memory_gb_hours"):
        assert row[figure] == pytest.approx(want[figure], abs=1e-6), (figure, row)


def test_a_user_asking_for_another_is_403(api, usage):
    status, _, body = api("/v1/usage", dict(usage["window"], user="bob"), auth=ALICE)
    assert status == 403, body


def test_an_admin_sees_both_users(api, usage):
    status, _, body = api("/v1/usage", usage["window"], auth=CAROL)
    assert status == 200, body
    rows = _rows(body)
    assert {"alice", "bob"} <= set(rows)
    for user, want in usage["users"].items():
        assert rows[user]["group"] == want["group"]
        for figure in ("vms", "wall_hours", "running_hours", "cpu_hours", "memory_gb_hours"):
            assert rows[user][figure] == pytest.approx(want[figure], abs=1e-6), (user, figure, rows[user])
    status, _, body = api("/v1/usage", dict(usage["window"], user="bob"), auth=CAROL)
    assert status == 200 and set(_rows(body)) == {"bob"}
    status, _, body = api("/v1/usage", dict(usage["window"], group="physics"), auth=CAROL)
    assert status == 200 and set(_rows(body)) == {"alice"}


def test_usage_as_csv(api, usage):
    status, ctype, body = api("/v1/usage", dict(usage["window"], format="csv"), auth=CAROL)
    assert status == 200 and ctype.startswith("text/csv"), (status, ctype)
    rows = {row["user"]: row for row in csv.DictReader(io.StringIO(body))}
    assert float(rows["bob"]["cpu_hours"]) == pytest.approx(usage["users"]["bob"]["cpu_hours"])
    assert float(rows["alice"]["memory_gb_hours"]) == pytest.approx(usage["users"]["alice"]["memory_gb_hours"])


@pytest.mark.parametrize("params", [
    {"from": "2026-13-45", "to": "2026-10-02"},
    {"from": "yesterday", "to": "2026-10-02"},
    {"from": "2026-10-02", "to": "2026-10-01"},
], ids=["bad-month", "not-a-date", "from-after-to"])
def test_malformed_dates_are_400(api, usage, params):
    status, _, body = api("/v1/usage", params, auth=CAROL)
    assert status == 400, body
    assert json.loads(body)["error"]


def test_unknown_user_is_400(api, usage):
    status, _, body = api("/v1/usage", dict(usage["window"], user="nobody"), auth=CAROL)
    assert status == 400, body
    assert "nobody" in json.loads(body)["error"]


def test_apel_export_writes_a_record_file(host, usage):
    out = "/var/tmp/apel-test-%d" % os.getpid()
    host.run("install -d -o %s -g %s -m 0755 %s", UNIT, UNIT, out)
    export = host.run(service_cmd("apel-export --from %s --to %s --out %s"
                                  % (usage["window"]["from"], usage["window"]["to"], out)))
    assert export.rc == 0, export.stdout + export.stderr
    files = host.run("find %s -type f", out).stdout.split()
    assert files, "apel-export wrote nothing in %s" % out
    text = "".join(host.file(f).content_string for f in files)
    assert text.startswith("APEL-cloud-message: v0.4"), text[:200]
    assert "SiteName: DEMO-STRATUSLAB" in text
    assert "LocalUserId: alice" in text and "LocalGroupId: physics" in text
    assert "LocalUserId: bob" in text and "LocalGroupId: chemistry" in text
    host.run("rm -rf %s", out)


def test_api_survives_a_schemathesis_fuzz(address, usage, tmp_path):
    """The API fuzzed from its own OpenAPI document (products/accounting/tests/fuzz_api.py,
    bounded): no server error, every answer as documented. The test machine
    reaches the API by address, which the certificate does not name, so the
    fuzz skips TLS checks: test_certificate_is_checked_against_the_site_ca and
    the API fixture check the certificate by name against the site CA."""
    fuzz = os.path.join(PRODUCT, "tests", "fuzz_api.py")
    password = tmp_path / "password"
    password.write_text(CAROL[1] + "\n")
    password.chmod(0o600)
    proc = subprocess.run(
        [sys.executable, fuzz, "--url", "https://%s:%d" % (address, API_PORT), "--user", CAROL[0],
         "--password-file", str(password), "--insecure", "--max-examples", "25", "--seed", "1"],
        capture_output=True, text=True, timeout=600, cwd=str(tmp_path))  # its cache stays out of the tree
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_no_accounting_unit_failed(host):
    failed = host.run("systemctl --failed --no-legend --plain").stdout.split("\n")
    ours = [line for line in failed if line.startswith((UNIT, "postgresql", "test-oned"))]
    assert ours == [], ours
