"""What the site's administrators observe of the monitoring host, from outside.

mon-one is the site's LDAP server, its front-end (the project's test oned,
NOT OpenNebula) and its monitoring host; mon-node is another site host, and
the seat of the test's browser (Debian's Chromium, headless). From this
machine, over the network, through the web views' Apache2 proxy with the
certificate checked against the site CA and the host's name:

- anonymous and a wrong password are refused (401), an LDAP user is let in;
- Prometheus's API lists every target of the inventory, each up;
- the exporters answer the monitoring host only (the site firewall);
- stopping mon-node's node exporter and the front-end's oned fires NodeDown
  and OnedDown within the rules' time, in Prometheus and in Alertmanager,
  and both resolve once the services are back;
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
    expected = {("prometheus", "mon-one"), ("node", "mon-one"), ("node", NODE)}

    def targets():
        active = api(ca_file, "/api/v1/targets")["data"]["activeTargets"]
        found = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in active}
        return found if set(found) == expected and set(found.values()) == {"up"} else None
    wait_for("every target up", targets, 60)


def test_the_exporters_answer_the_monitoring_host_only(host):
    with pytest.raises(OSError):
        socket.create_connection((NODE_ADDRESS, 9100), timeout=3).close()
    metrics = host.run("curl -sS --max-time 10 http://%s:9100/metrics" % NODE_ADDRESS)
    assert metrics.rc == 0 and "node_boot_time_seconds" in metrics.stdout


def test_opennebula_state_is_scraped(ca_file):
    def value(query):
        result = api(ca_file, "/api/v1/query?query=" + urllib.parse.quote(query))["data"]["result"]
        return result
    up = wait_for("opennebula_oned_up", lambda: value("opennebula_oned_up"), 30)
    assert up[0]["value"][1] == "1" and up[0]["metric"]["instance"] == "mon-one"
    assert value("opennebula_datastore_total_bytes"), "no datastore of the test oned"


def test_alerts_fire_and_resolve(ca_file):
    """NodeDown (mon-node's node exporter stopped) and OnedDown (the test oned stopped)."""
    assert not {k for k, v in firing(ca_file).items() if v == "firing"}, "alerts firing before the test"
    wanted = {("NodeDown", NODE), ("OnedDown", "mon-one")}
    started = time.monotonic()
    try:
        podman("exec", NODE, "systemctl", "stop", "prometheus-node-exporter")
        podman("exec", "mon-one", "systemctl", "stop", "test-oned")
        wait_for("NodeDown and OnedDown firing",
                 lambda: all(firing(ca_file).get(key) == "firing" for key in wanted), FIRE_WITHIN)
        fired = time.monotonic() - started
        received = api(ca_file, "/alertmanager/api/v2/alerts")
        names = {(a["labels"]["alertname"], a["labels"].get("instance")) for a in received}
        assert wanted <= names, names
        assert fired >= ALERT_AFTER, "fired after %.0f s, before the rules' %d s" % (fired, ALERT_AFTER)
    finally:
        podman("exec", NODE, "systemctl", "start", "prometheus-node-exporter", check=False)
        podman("exec", "mon-one", "systemctl", "start", "test-oned", check=False)
    wait_for("NodeDown and OnedDown resolved", lambda: not (wanted & set(firing(ca_file))), RESOLVE_WITHIN)


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
