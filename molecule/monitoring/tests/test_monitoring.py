"""What the site's administrators observe of the monitoring host, from outside.

mon-one is the site's LDAP server, its front-end (the project's test oned,
NOT OpenNebula) and its monitoring host; mon-node is a KVM node as the
exporters see it (Debian's libvirt daemon, which prepare.yml installs in
place of the kvm_node role), the site's image cache (Squid) and the seat of
the test's browser (Debian's Chromium, headless). From this
machine, over the network, through the web views' Apache2 proxy with the
certificate checked against the site CA and the host's name:

- anonymous and a wrong password are refused (401), an LDAP user is let in;
- Prometheus's API lists every target the inventory's groups call for
  (monitoring_exporters), each up, and no other;
- the exporters answer the monitoring host only (the site firewall);
- stopping mon-node's node exporter and the front-end's oned fires NodeDown
  and OnedDown within the rules' time, in Prometheus and in Alertmanager,
  and both resolve once the services are back;
- stopping mon-node's libvirt (the daemon and its sockets) fires
  LibvirtDown, while its exporter still answers, and it resolves once
  libvirt is back;
- Chromium opens the Prometheus targets page with an LDAP user's login; its
  DOM names the site's hosts, and its screenshot is kept as the scenario's
  artefact.
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import stratuslab_testinfra
import yaml

testinfra_hosts = stratuslab_testinfra.hosts("monitoring")

NAME = "mon-one.demo.stratuslab.test"
ADDRESS = "10.89.7.91"
NODE = "mon-node"
NODE_ADDRESS = "10.89.7.92"
PORT = 9443
BASE = "https://%s:%d" % (NAME, PORT)
# inventories/demo/group_vars/all/site.yml (test values, not secrets).
ALICE = ("alice", "demo-alice-password")
# molecule/monitoring/host_vars/mon-one.yml: alerts fire after 15 s of a
# condition, scraped every 5 s; the OpenNebula reader runs every 5 s.
ALERT_AFTER = 15
SCRAPE = 5
# The longest a condition takes to fire: the scrape that sees it, the
# evaluation that starts its 'for', the 'for' itself and one more evaluation,
# with a margin for the loaded test machine.
FIRE_WITHIN = ALERT_AFTER + 4 * SCRAPE + 30
RESOLVE_WITHIN = 4 * SCRAPE + 30
# libvirtd is socket-activated: stopped alone, the exporter's next connection
# to one of its sockets starts it again.
LIBVIRT_UNITS = ["libvirtd.service", "libvirtd.socket", "libvirtd-ro.socket", "libvirtd-admin.socket"]
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
# Kept past the scenario's destroy (which removes molecule's ephemeral
# directory), beside the scenario logs of tools/molecule-lanes.
ARTEFACTS = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", tempfile.gettempdir()), ".molecule-logs")


def podman(*argv, check=True):
    return subprocess.run(["podman"] + list(argv), capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory):
    """The site CA, as the LDAP host made it (read over podman, not the network)."""
    path = tmp_path_factory.mktemp("ca") / "site-ca.crt"
    path.write_text(podman("exec", "mon-one", "cat", "/etc/ldap/tls/site-ca.crt").stdout)
    return str(path)


def fetch(ca_file, path, auth=None):
    """(status, body) of GET BASE+path from this machine, the certificate checked for NAME."""
    argv = ["curl", "-sS", "--max-time", "20", "--cacert", ca_file, "--resolve", "%s:%d:%s" % (NAME, PORT, ADDRESS),
            "-o", "-", "-w", "\n%{http_code}", BASE + path]
    if auth:
        argv[1:1] = ["-u", "%s:%s" % auth]
    run = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    body, _, code = run.stdout.rpartition("\n")
    return int(code), body


def api(ca_file, path):
    status, body = fetch(ca_file, path, ALICE)
    assert status == 200, (path, status, body[:500])
    return json.loads(body)


def firing(ca_file):
    """{(alertname, instance): state} of Prometheus's alerts."""
    alerts = api(ca_file, "/api/v1/alerts")["data"]["alerts"]
    return {(a["labels"]["alertname"], a["labels"].get("instance")): a["state"] for a in alerts}


def wait_for(what, check, timeout, step=2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %d s" % (what, timeout))
        time.sleep(step)


def query(ca_file, expr):
    """The result vector of a Prometheus instant query."""
    return api(ca_file, "/api/v1/query?query=" + urllib.parse.quote(expr))["data"]["result"]


def expected_targets():
    """{(job, instance)} that the inventory calls for: every exporter of
    monitoring_exporters (the site's value, else the role's default) on the
    hosts of its groups, the accounting API on the accounting hosts, and
    Prometheus itself on the monitoring host. Read from the inventory and the
    role's defaults, not from what Prometheus was given."""
    exporters = stratuslab_testinfra.hostvars("mon-one").get("monitoring_exporters")
    if exporters is None:
        with open(os.path.join(PROJECT, "roles", "monitoring", "defaults", "main.yml"), encoding="utf-8") as defaults:
            exporters = yaml.safe_load(defaults)["monitoring_exporters"]
    expected = {("prometheus", host) for host in stratuslab_testinfra.names("monitoring")}
    expected |= {("accounting", host) for host in stratuslab_testinfra.names("accounting")}
    for exporter in exporters:
        for group in exporter["groups"]:
            expected |= {(exporter["name"], host) for host in stratuslab_testinfra.names(group)}
    return expected


def assert_fires_and_resolves(ca_file, wanted, stop, start, while_down=None):
    """Run the podman commands ``stop``, wait until every (alertname,
    instance) of ``wanted`` fires in Prometheus, not before the rules' time,
    and Alertmanager has it; call ``while_down()`` (checks of the cause)
    then; run ``start`` (also on failure) and wait until all are resolved."""
    assert not {k for k, v in firing(ca_file).items() if v == "firing"}, "alerts firing before the test"
    names = " and ".join(sorted(name for name, _ in wanted))
    started = time.monotonic()
    try:
        for argv in stop:
            podman("exec", *argv)
        wait_for("%s firing" % names, lambda: all(firing(ca_file).get(key) == "firing" for key in wanted),
                 FIRE_WITHIN)
        fired = time.monotonic() - started
        received = api(ca_file, "/alertmanager/api/v2/alerts")
        received = {(a["labels"]["alertname"], a["labels"].get("instance")) for a in received}
        assert wanted <= received, received
        assert fired >= ALERT_AFTER, "fired after %.0f s, before the rules' %d s" % (fired, ALERT_AFTER)
        if while_down is not None:
            while_down()
    finally:
        for argv in start:
            podman("exec", *argv, check=False)
    wait_for("%s resolved" % names, lambda: not (wanted & set(firing(ca_file))), RESOLVE_WITHIN)


@pytest.mark.parametrize("path", ["/", "/graph", "/api/v1/targets", "/alertmanager/", "/alertmanager/api/v2/alerts"])
def test_anonymous_is_refused(ca_file, path):
    status, _ = fetch(ca_file, path)
    assert status == 401


def test_a_wrong_password_is_refused(ca_file):
    status, _ = fetch(ca_file, "/api/v1/targets", (ALICE[0], "not-her-password"))
    assert status == 401


# Debian's Prometheus serves its classic web pages (/classic/...), and
# sends / there.
@pytest.mark.parametrize("path", ["/classic/graph", "/classic/targets", "/api/v1/status/buildinfo",
                                  "/alertmanager/api/v2/status"])
def test_an_ldap_user_is_let_in(ca_file, path):
    status, _ = fetch(ca_file, path, ALICE)
    assert status == 200


def test_the_front_page_leads_to_prometheus_on_the_same_address(ca_file):
    run = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", ca_file, "-u", "%s:%s" % ALICE,
                          "--resolve", "%s:%d:%s" % (NAME, PORT, ADDRESS), "-o", "/dev/null",
                          "-w", "%{http_code} %{redirect_url}", BASE + "/"],
                         capture_output=True, text=True, check=True, timeout=60)
    code, _, location = run.stdout.partition(" ")
    # curl writes the followed URL with the -u credentials in it: compare the rest.
    target = urllib.parse.urlsplit(location)
    assert code in ("301", "302"), code
    assert (target.scheme, target.hostname, target.port) == ("https", NAME, PORT), target.netloc.rpartition("@")[2]
    assert target.path.startswith("/classic/"), target.path


def test_prometheus_and_alertmanager_listen_on_the_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:9090").is_listening
    assert host.socket("tcp://127.0.0.1:9093").is_listening
    for port in (9090, 9093):
        assert not host.socket("tcp://0.0.0.0:%d" % port).is_listening
        with pytest.raises(OSError):
            socket.create_connection((ADDRESS, port), timeout=3).close()


def test_every_target_of_the_inventory_is_up(ca_file):
    expected = expected_targets()
    # The scenario's point: mon-node is a KVM node, whose libvirt exporter
    # runs, and the image cache, whose Squid exporter runs.
    assert {("node", NODE), ("libvirt", NODE), ("squid", NODE)} <= expected, expected

    def targets():
        active = api(ca_file, "/api/v1/targets")["data"]["activeTargets"]
        found = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in active}
        return found if set(found) == expected and set(found.values()) == {"up"} else None
    wait_for("every target up", targets, 60)


# A metric of each exporter (the Squid exporter serves Squid's counters only
# once it has read them from Squid's cache manager).
@pytest.mark.parametrize("port, metric", [(9100, "node_boot_time_seconds"), (9177, "libvirt_up"),
                                          (9301, "squid_client_http_requests_total")])
def test_the_exporters_answer_the_monitoring_host_only(host, port, metric):
    with pytest.raises(OSError):
        socket.create_connection((NODE_ADDRESS, port), timeout=3).close()
    metrics = host.run("curl -sS --max-time 10 http://%s:%d/metrics" % (NODE_ADDRESS, port))
    assert metrics.rc == 0 and metric in metrics.stdout


def test_opennebula_state_is_scraped(ca_file):
    up = wait_for("opennebula_oned_up", lambda: query(ca_file, "opennebula_oned_up"), 30)
    assert up[0]["value"][1] == "1" and up[0]["metric"]["instance"] == "mon-one"
    assert query(ca_file, "opennebula_datastore_total_bytes"), "no datastore of the test oned"


def test_alerts_fire_and_resolve(ca_file):
    """NodeDown (mon-node's node exporter stopped) and OnedDown (the test oned stopped)."""
    assert_fires_and_resolves(
        ca_file, {("NodeDown", NODE), ("OnedDown", "mon-one")},
        stop=[(NODE, "systemctl", "stop", "prometheus-node-exporter"), ("mon-one", "systemctl", "stop", "test-oned")],
        start=[(NODE, "systemctl", "start", "prometheus-node-exporter"), ("mon-one", "systemctl", "start", "test-oned")])


def test_libvirt_down_fires_and_resolves(ca_file):
    """LibvirtDown: mon-node's libvirtd and its sockets stopped, its exporter still up."""
    node = 'instance="%s"' % NODE

    def libvirt_up():
        result = query(ca_file, "libvirt_up{%s}" % node)
        return result and result[0]["value"][1]
    # Read-only socket, no polkit: the exporter reads libvirt before the test.
    wait_for("libvirt_up of %s is 1" % NODE, lambda: libvirt_up() == "1", 30)

    def cause():
        assert podman("exec", NODE, "systemctl", "is-active", "libvirtd.service", check=False).stdout.strip() \
            != "active", "libvirtd runs again (a socket left running starts it)"
        assert libvirt_up() == "0"
        up = query(ca_file, 'up{job="libvirt",%s}' % node)
        assert up and up[0]["value"][1] == "1", "the libvirt exporter itself stopped answering: %s" % up
    assert_fires_and_resolves(
        ca_file, {("LibvirtDown", NODE)},
        stop=[(NODE, "systemctl", "stop", *LIBVIRT_UNITS)],
        start=[(NODE, "systemctl", "start", *LIBVIRT_UNITS)], while_down=cause)
    assert libvirt_up() == "1"


def test_chromium_shows_the_site_hosts_with_an_ldap_login():
    """Debian's Chromium on mon-node, headless, logs in as alice (the URL's
    user part, which Chromium answers the Basic challenge with) and renders
    Prometheus's (classic) targets page. The certificate is not what this test checks
    (curl does, above): Chromium has its own trust store."""
    url = "https://%s:%s@%s:%d/classic/targets" % (ALICE[0], ALICE[1], NAME, PORT)
    common = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
              "--host-resolver-rules=MAP %s %s" % (NAME, ADDRESS), "--window-size=1280,900",
              "--virtual-time-budget=15000"]
    dom = podman("exec", NODE, *common, "--dump-dom", url).stdout
    for name in ("mon-one", NODE):
        assert name in dom, "%s not on the targets page:\n%s" % (name, dom[:2000])
    podman("exec", NODE, *common, "--screenshot=/tmp/prometheus-targets.png", url)
    os.makedirs(ARTEFACTS, exist_ok=True)
    saved = os.path.join(ARTEFACTS, "monitoring-prometheus-targets.png")
    podman("cp", "%s:/tmp/prometheus-targets.png" % NODE, saved)
    with open(saved, "rb") as image:
        data = image.read()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10000, "%s: %d bytes" % (saved, len(data))
    print("screenshot: %s (%d bytes)" % (saved, len(data)))
