"""Fault: the cache host's disk is full.

Squid 5.7 (Debian 12's, as the squid role installs it) runs with the squid
role's squid.conf, rendered from roles/squid/templates/squid.conf.j2, in a
throwaway container whose cache_dir is a small tmpfs, and a cache_dir size
(site_cache_size) as large as the role's preflight accepts for that disk. An origin HTTP server in a second
container counts the requests it gets. The test fills the cache disk with
distinct images, then asks for one image many times: every request gets an
answer (the whole image, or an HTTP error) within a bound, never a hang,
Squid keeps running, and the origin gets a bounded number of requests for it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from faultlib import podman
from one_playbook import ANSIBLE_PLAYBOOK, PYTHON, REPO

IMAGE = "localhost/stratuslab-host:bookworm"
PREFIX = "flt-sq-%s" % uuid.uuid4().hex[:6]
DISK_MB = 24          # the tmpfs of cache_dir
OBJECT_MB = 4         # each image
IMAGES = 12           # 48 MB of images for 24 MB of disk
CLIENT_REQUESTS = 20  # requests for the same image once the disk is full
ORIGIN = r'''
import http.server, os, sys
SIZE = int(sys.argv[1]) * 1024 * 1024
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open("/var/tmp/origin.log", "a") as log:
            log.write(self.path + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(SIZE))
        self.send_header("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
        self.end_headers()
        block = (self.path.encode() * 4096)[:65536]
        left = SIZE
        while left:
            self.wfile.write(block[:min(left, len(block))])
            left -= min(left, len(block))
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
'''


def render_squid_conf(tmp_path, cidr, cache_size):
    """The role's template, rendered with the role's own variable names."""
    conf = tmp_path / "squid.conf"
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars_files": [str(REPO / "roles" / "squid" / "defaults" / "main.yml"),
                            str(REPO / "roles" / "squid" / "vars" / "main.yml"),
                            str(REPO / "roles" / "squid" / "vars" / "Debian.yml")],
             "vars": {"site_cache_size": cache_size, "site_cache_max_object_size": "64M",
                      "site_networks": [{"cidr": cidr}], "inventory_hostname": "flt-cache"},
             "tasks": [{"name": "Render squid.conf",
                        "ansible.builtin.template": {"src": str(REPO / "roles/squid/templates/squid.conf.j2"),
                                                     "dest": str(conf), "mode": "0644"}}]}]
    book = tmp_path / "render.yml"
    book.write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_HOME=str(tmp_path / "ah"))
    proc = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % PYTHON,
                           str(book)], capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return conf


def largest_accepted_cache_mb(site):
    """The largest site_cache_size (whole MB) the squid role's preflight accepts
    for the cache host's tmpfs: its own rule (sl_cache_errors) on the mount's
    size, as the setup module reports it, before the cache directory exists."""
    size = importlib.util.spec_from_file_location("flt_size", REPO / "filter_plugins" / "stratuslab_size.py")
    module = importlib.util.module_from_spec(size)
    size.loader.exec_module(module)
    total, free = map(int, podman("exec", site["cache"], "sh", "-c",
                                  "stat -f -c '%b %a %S' /var/spool/squid | awk '{print $1*$3, $2*$3}'")
                      .stdout.split())
    mounts = [{"mount": "/var/spool/squid", "size_total": total, "size_available": free}]
    accepted = [mb for mb in range(1, 4 * DISK_MB)
                if not module.sl_cache_errors("%dM" % mb, "%dM" % OBJECT_MB, smallest_image="1M", mounts=mounts,
                                              cache_dir="/var/spool/squid", cache_dir_exists=False)]
    assert accepted, "the preflight accepts no cache on a %d MB disk" % DISK_MB
    return max(accepted)


@pytest.fixture(scope="module")
def cache_site(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("squid")
    net = PREFIX + "-net"
    subnet = "10.74.%d.0/24" % (os.getpid() % 200 + 20)
    names = [PREFIX + "-cache", PREFIX + "-origin"]
    try:
        podman("network", "create", "--subnet", subnet, net)
        (tmp_path / "origin.py").write_text(ORIGIN)
        podman("run", "-d", "--name", names[1], "--network", net, "-v", "%s:/origin.py:ro,Z" % (tmp_path / "origin.py"),
               IMAGE, "python3", "/origin.py", str(OBJECT_MB))
        podman("run", "-d", "--name", names[0], "--network", net,
               "--mount", "type=tmpfs,destination=/var/spool/squid,tmpfs-size=%dm" % DISK_MB,
               "-v", "%s:/srv:ro,Z" % tmp_path, IMAGE, "sleep", "infinity")
        podman("exec", names[0], "sh", "-c", "apt-get -qq update && DEBIAN_FRONTEND=noninteractive "
               "apt-get -qq install -y --no-install-recommends squid curl >/dev/null && "
               "(squid -k shutdown || true) && sleep 2 && pkill -KILL squid; rm -rf /var/spool/squid/*; true",
               timeout=1200)
        yield {"cache": names[0], "origin": names[1], "net": net, "subnet": subnet, "tmp": tmp_path}
    finally:
        for name in names:
            podman("rm", "-f", "-t", "0", name, check=False)
        podman("network", "rm", "-f", net, check=False)


def start_squid(site, cache_size):
    conf = render_squid_conf(site["tmp"], site["subnet"], cache_size)
    assert conf.parent == site["tmp"]
    podman("exec", site["cache"], "sh", "-c",
           "install -m 644 /srv/squid.conf /etc/squid/squid.conf && chown proxy:proxy /var/spool/squid && "
           "squid -k parse && squid --foreground -z && squid")
    for _ in range(60):
        if podman("exec", site["cache"], "curl", "-s", "-o", "/dev/null", "http://127.0.0.1:3128/",
                  check=False).returncode == 0:
            return
        time.sleep(1)
    raise AssertionError("Squid did not start: %s" % podman("exec", site["cache"], "tail", "-20",
                                                             "/var/log/squid/cache.log").stdout)


def fetch(site, path, timeout=60):
    """(HTTP status, bytes received, seconds) of a GET through the cache, from the cache host."""
    begin = time.monotonic()
    proc = podman("exec", site["cache"], "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                  "-m", str(timeout), "-x", "http://127.0.0.1:3128", "http://%s:8080%s" % (site["origin"], path),
                  check=False, timeout=timeout + 30)
    took = time.monotonic() - begin
    status, size = (proc.stdout.split() + ["0", "0"])[:2]
    return int(status), int(size), took, proc.returncode


def origin_requests(site, path):
    log = podman("exec", site["origin"], "sh", "-c", "cat /var/tmp/origin.log 2>/dev/null || true").stdout
    return log.split().count(path)


def test_a_cache_the_preflight_accepts_fills_its_disk_and_keeps_serving(cache_site):
    """The largest cache the role's preflight accepts for the disk, and more
    images than the disk holds: Squid replaces old images, never dies of a
    full disk, and one image asked for many times reaches the origin once."""
    site = cache_site
    cache_mb = largest_accepted_cache_mb(site)
    print("disk %d MB: the preflight accepts site_cache_size up to %dM" % (DISK_MB, cache_mb))
    start_squid(site, "%dM" % cache_mb)
    size = OBJECT_MB * 1024 * 1024
    results = []
    for i in range(IMAGES):
        results.append(("/img-%02d.qcow2" % i,) + fetch(site, "/img-%02d.qcow2" % i))
    df = podman("exec", site["cache"], "df", "-m", "/var/spool/squid").stdout
    used = int(df.split("\n")[1].split()[2])
    print("cache disk after %d images: %s" % (IMAGES, df.split("\n")[1]))
    print("first fetches: %s" % [(p, s, n, round(t, 1)) for p, s, n, t, _ in results])
    assert all(r[1] == 200 and r[2] == size for r in results), "a first fetch failed: %s" % results
    assert used >= cache_mb * 0.6, "the cache did not fill: %s" % df
    hot = "/img-hot.qcow2"
    answers = [fetch(site, hot) for _ in range(CLIENT_REQUESTS)]
    print("the same image %d times: %s" % (CLIENT_REQUESTS, [(s, n, round(t, 1)) for s, n, t, _ in answers]))
    for status, got, took, rc in answers:
        assert rc != 28, "a request hung (curl timeout): %s" % answers     # 28: curl's timeout
        assert (status == 200 and got == size) or status >= 500, answers
    served = [a for a in answers if a[0] == 200]
    assert served, "Squid served nothing once its disk was full: %s" % answers
    alive = podman("exec", site["cache"], "pgrep", "-x", "squid", check=False)
    assert alive.returncode == 0, podman("exec", site["cache"], "tail", "-30", "/var/log/squid/cache.log").stdout
    to_origin = origin_requests(site, hot)
    print("origin requests for the image: %d for %d client requests" % (to_origin, CLIENT_REQUESTS))
    cache_log = podman("exec", site["cache"], "sh", "-c", "grep -iE 'space|disk|full|error' "
                       "/var/log/squid/cache.log | tail -20").stdout
    print("cache.log: %s" % cache_log)
    assert to_origin <= 2, "the origin got %d requests for %d client requests of one image" % (
        to_origin, CLIENT_REQUESTS)
