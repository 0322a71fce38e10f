"""What a site administrator observes of the image cache, from outside it.

The site client (sq-client, on a site network) downloads a 256 MB image from
the origin (sq-origin, Apache on the WAN network) through the cache
(sq-cache); the outsider (sq-outsider, on the WAN only) tries the same.
Each test downloads its own URL (prepare.yml publishes the image under one
name per test), so each starts from an object the cache has never seen.
Evidence comes from three places: the client's view (status, bytes,
Squid's X-Cache header), Squid's access.log and the origin's access log.
"""

import json
import os
import re
import subprocess
import tempfile
import time

import pytest
import stratuslab_testinfra
import testinfra
import yaml

testinfra_hosts = stratuslab_testinfra.hosts("nodes")

CACHE = testinfra.get_host("podman://sq-cache")
ORIGIN = testinfra.get_host("podman://sq-origin")
OUTSIDER = testinfra.get_host("podman://sq-outsider")

PROXY = "http://sq-cache:3128"  # site_cache_url of the demo site file, in the scenario
CACHE_WAN_PROXY = "http://10.89.71.81:3128"  # the cache's address on the WAN
OUTSIDER_ADDRESS = "10.89.71.83"
ORIGIN_URL = "http://sq-origin/"
IMAGE_SIZE = 256 * 1024 * 1024
ENV_FILE = "/etc/default/stratuslab-image-cache"
SQUID_LOG = "/var/log/squid/access.log"
ORIGIN_LOG = "/var/log/apache2/access.log"


def fetch(host, name, proxy=PROXY, extra=""):
    """Download ORIGIN_URL+name through proxy; answer (status, bytes, X-Cache)."""
    cmd = host.run(
        "curl -sS -o /dev/null -D - -w 'bytes=%%{size_download}\\n' -x %s " + extra + " %s",
        proxy, ORIGIN_URL + name)
    assert cmd.rc == 0, cmd.stderr
    status = int(cmd.stdout.split()[1])
    size = int(re.search(r"^bytes=(\d+)$", cmd.stdout, re.M).group(1))
    x_cache = re.search(r"^X-Cache: (\S+)", cmd.stdout, re.M | re.I)
    return status, size, x_cache.group(1) if x_cache else None


def origin_requests(name):
    """(status, bytes sent) of every GET the origin answered for name.

    Debian's Apache logs %O, the bytes sent including the response headers.
    """
    log = ORIGIN.run("cat %s", ORIGIN_LOG).stdout
    pattern = r'"GET /%s HTTP/[0-9.]+" (\d{3}) (\d+)' % re.escape(name)
    return [(int(status), int(sent)) for status, sent in re.findall(pattern, log)]


def served_once_in_full(answers):
    """The origin answered once, 200, with the whole image (plus headers)."""
    return len(answers) == 1 and answers[0][0] == 200 and IMAGE_SIZE <= answers[0][1] < IMAGE_SIZE + 4096


def squid_lines(name, count, timeout=20):
    """Squid's access.log lines for name, once count of them are logged."""
    deadline = time.time() + timeout
    while True:
        lines = CACHE.run("grep -F ' %s ' %s || true", ORIGIN_URL + name, SQUID_LOG).stdout.splitlines()
        if len(lines) >= count or time.time() > deadline:
            return lines
        time.sleep(0.5)


def squid_codes(name, count, timeout=20):
    """Squid's result codes (TCP_MISS/200...) for name, once count lines are logged."""
    return [line.split()[3] for line in squid_lines(name, count, timeout)]


def wait_for_origin(name, count=1, timeout=60):
    """The origin's answers for name, once count of them are complete (logged)."""
    deadline = time.time() + timeout
    while True:
        answers = origin_requests(name)
        if len(answers) >= count or time.time() > deadline:
            return answers
        time.sleep(0.5)


def test_configuration_parses():
    cmd = CACHE.run("squid -k parse -f /etc/squid/squid.conf")
    assert cmd.rc == 0, cmd.stderr


def test_cache_listens_on_the_site_port():
    assert CACHE.service("squid").is_running
    assert CACHE.service("squid").is_enabled
    assert CACHE.socket("tcp://0.0.0.0:3128").is_listening


def test_second_download_is_a_cache_hit_and_the_origin_served_once(host):
    first = fetch(host, "hit.img")
    second = fetch(host, "hit.img")
    assert first[:2] == (200, IMAGE_SIZE)
    assert second[:2] == (200, IMAGE_SIZE)
    assert first[2].upper() == "MISS"
    assert second[2].upper() == "HIT"
    codes = squid_codes("hit.img", 2)
    assert codes[0] == "TCP_MISS/200", codes
    assert codes[1] in ("TCP_HIT/200", "TCP_MEM_HIT/200"), codes
    answers = origin_requests("hit.img")
    assert served_once_in_full(answers), answers


def assert_fetched_once_then_hit(host, name):
    """The origin served ``name`` once, in full; Squid now answers it from the cache, and the origin saw no more."""
    answers = wait_for_origin(name)
    assert served_once_in_full(answers), answers
    status, size, x_cache = fetch(host, name)
    assert (status, size, x_cache.upper()) == (200, IMAGE_SIZE, "HIT")
    answers = origin_requests(name)
    assert served_once_in_full(answers), answers


def test_interrupted_download_still_fills_the_cache(host):
    # The client reads 1 MB and hangs up (head closes the pipe, curl dies).
    host.run("curl -sS -x %s %s | head -c 1048576 >/dev/null", PROXY, ORIGIN_URL + "abort.img")
    # Squid keeps fetching: the origin sends the whole image, once.
    assert_fetched_once_then_hit(host, "abort.img")


def test_range_request_fetches_and_caches_the_whole_image(host):
    status, size, _ = fetch(host, "range.img", extra="-r 0-1023")
    assert (status, size) == (206, 1024)
    # range_offset_limit none: the origin was asked for the whole image.
    assert_fetched_once_then_hit(host, "range.img")


def test_parallel_downloads_of_a_new_image_reach_the_origin_once(host):
    cmd = host.run(
        "for i in 1 2 3; do curl -sS -o /dev/null -w '%%{http_code} %%{size_download}\\n' -x %s %s & done; wait",
        PROXY, ORIGIN_URL + "collapse.img")
    assert cmd.stdout.split("\n")[:3] == ["200 %d" % IMAGE_SIZE] * 3, cmd.stdout + cmd.stderr
    # collapsed_forwarding: one fetch from the origin served all three.
    answers = wait_for_origin("collapse.img")
    assert served_once_in_full(answers), answers
    # Squid's own account: one request went to the origin (HIER_DIRECT);
    # the others joined it, before its headers (TCP_CF_MISS, collapsed
    # forwarding) or after (TCP_MISS with no server, HIER_NONE).
    lines = squid_lines("collapse.img", 3)
    hierarchy = sorted(line.split()[8].split("/")[0] for line in lines)
    assert hierarchy == ["HIER_DIRECT", "HIER_NONE", "HIER_NONE"], lines


def test_client_environment_file_sends_downloads_through_the_cache(host):
    env = host.file(ENV_FILE)
    assert env.mode == 0o644
    assert env.contains("^http_proxy=%s$" % PROXY)
    cmd = host.run("set -a; . %s; set +a; curl -sS -o /dev/null -D - %s", ENV_FILE, ORIGIN_URL + "client.img")
    assert cmd.rc == 0, cmd.stderr
    assert re.search(r"^X-Cache: MISS from ", cmd.stdout, re.M | re.I), cmd.stdout
    answers = wait_for_origin("client.img")
    assert served_once_in_full(answers), answers


CLIENT_ADDRESS = "10.89.7.82"  # sq-client's site_address
APPLIANCE = "appliances/ttylinux-9.7.img"  # prepare.yml: signed with sl-publish
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", "")


def from_client(name, count, timeout=20):
    """Squid's access.log lines for name requested from sq-client's address."""
    return [line for line in squid_lines(name, count, timeout) if line.split()[2] == CLIENT_ADDRESS]


SHELLS = {
    # su - : a login shell (~/.profile); bash -i: an interactive one (~/.bashrc).
    "login": "su - oneadmin -c \"%s\"",
    "bashrc": "su oneadmin -s /bin/bash -c \"bash -ic '%s'\"",
}


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_oneadmin_shell_downloads_through_the_cache(host, shell):
    # The client entry point makes oneadmin's ~/.profile and ~/.bashrc read
    # the environment file; a plain curl in those shells uses the cache.
    name = "shell-%s.txt" % shell  # prepare.yml: small files on the origin
    cmd = host.run(SHELLS[shell] % ("curl -sS -o /dev/null -w %{http_code} " + ORIGIN_URL + name))
    assert cmd.rc == 0 and cmd.stdout.strip().endswith("200"), (cmd.stdout, cmd.stderr)
    lines = from_client(name, 1)
    assert len(lines) == 1 and lines[0].split()[3] == "TCP_MISS/200", lines


def test_a_listed_service_downloads_through_the_cache(host):
    # site_cache_client_services names a unit (prepare.yml: it fetches a file
    # when it starts, never started before the converge): the client entry
    # point gave it a drop-in and restarted it, and its fetch came through
    # Squid from the node's address.
    dropin = host.file("/etc/systemd/system/stratuslab-test-fetcher.service.d/stratuslab-image-cache.conf")
    assert dropin.contains("^EnvironmentFile=-%s$" % ENV_FILE)
    show = host.run("systemctl show -p ActiveState,Result,EnvironmentFiles stratuslab-test-fetcher").stdout
    assert "ActiveState=active" in show and "Result=success" in show and ENV_FILE in show, show
    lines = from_client("service-fetch.txt", 1)
    assert len(lines) == 1 and lines[0].split()[3].endswith("/200"), lines


def test_appliance_verify_on_a_node_downloads_through_the_cache(host):
    # appliance_verify without a proxy argument, run on the node through
    # ansible-playbook: it reads the environment file, fetches the manifest
    # and the image through the cache, verifies them and places the image.
    signer = ORIGIN.file("/opt/stratuslab-test/signer.crt").content_string
    dest = "/var/tmp/ttylinux-verified.img.gz"
    host.run("rm -f %s", dest)
    play = [{"name": "Verify on the node", "hosts": "sq-client", "gather_facts": False, "tasks": [
        {"name": "Verify", "appliance_verify": {
            "manifest_url": ORIGIN_URL + APPLIANCE + ".manifest.xml", "dest": dest, "trusted_signers": [signer]}}]}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as book:
        yaml.safe_dump(play, book)
    env = dict(os.environ, ANSIBLE_LIBRARY=os.path.join(PROJECT, "library"),
               ANSIBLE_MODULE_UTILS=os.path.join(PROJECT, "module_utils"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], book.name],
                          capture_output=True, text=True, env=env, timeout=300)
    os.unlink(book.name)
    try:
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["sq-client"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible-playbook: %s\n%s" % (proc.stdout[-2000:], proc.stderr[-2000:]))
    assert result.get("changed") is True and not result.get("failed"), result
    assert result["proxy"] == PROXY
    assert host.file(dest).exists
    manifest = from_client(APPLIANCE + ".manifest.xml", 1)
    assert manifest and manifest[-1].split()[3].endswith("/200"), manifest
    image = from_client(APPLIANCE + ".gz", 1)
    assert image and image[-1].split()[3] in ("TCP_MISS/200", "TCP_HIT/200"), image


def test_host_outside_the_site_networks_is_denied():
    # The outsider reaches the cache (same WAN network) and is refused by
    # Squid itself: a 403 from Squid, logged as TCP_DENIED, nothing fetched.
    status, size, _ = fetch(OUTSIDER, "denied.img", proxy=CACHE_WAN_PROXY)
    assert status == 403
    denied = CACHE.run("grep -F ' %s ' %s || true", ORIGIN_URL + "denied.img", SQUID_LOG).stdout
    assert re.search(r" %s TCP_DENIED/403 " % re.escape(OUTSIDER_ADDRESS), denied), denied
    assert origin_requests("denied.img") == []


@pytest.mark.parametrize("setting", [
    "collapsed_forwarding on",
    "range_offset_limit none",
    "quick_abort_min -1 KB",
    "maximum_object_size 2048 MB",
    "cache_dir ufs /var/spool/squid 4096 16 256",
    "http_access deny all",
    r"refresh_pattern -i \.(img|qcow2|raw|iso|vmdk|vdi|ova|gz|bz2|xz|zst)(\?.*)?$ 10080 100% 10080 override-lastmod",
])
def test_configuration_has_the_image_cache_settings(setting):
    # A whole line, compared as a fixed string (the regex line has regex characters).
    assert CACHE.run("grep -Fxq -e %s /etc/squid/squid.conf", setting).rc == 0, setting


def test_no_unit_failed():
    for node in (CACHE, ORIGIN):
        assert node.run("systemctl --failed --no-legend --plain").stdout.strip() == ""
