"""Fault: the cache host's disk is full.

On the scenario's cache host (sq-cache), beside the Squid the role runs, a
second Squid runs with the role's own squid.conf (roles/squid/templates/
squid.conf.j2, rendered on the host by ansible-playbook with the role's
variables) whose cache directory is a small tmpfs of its own (DISK_MB), and
whose site_cache_size is the largest the role's preflight accepts for that
disk (its rule, sl_cache_errors, on the tmpfs as the host reports it).
The origin is the scenario's Apache (sq-origin), whose access log counts the
requests; prepare.yml publishes a 4 MB image there under more names than
the disk holds (IMAGES, ``full-NN.img``) and one more (``full-hot.img``).

The test fills the cache disk with distinct images, then asks for one image
many times: every request gets an answer (the whole image, or an HTTP error)
within a bound, never a hang; Squid keeps running and answering; and the
origin gets at most two requests for that image.

Everything is scaled down so that it takes seconds: a 24 MB disk, 4 MB
images, a largest object of 8 MB, the preflight's smallest-image rule
(512M in the role) taken at 1M. The second Squid has its own port (3129,
asked from the cache host itself: the role's http_access lets localhost
in), service name (``-n``), pid file and log directory, so the scenario's
Squid, its logs and its cache are not touched; the tmpfs, the second Squid
and its files are removed at the end, also on failure.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import stratuslab_testinfra
import testinfra
import yaml

testinfra_hosts = stratuslab_testinfra.hosts("cache")

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
ORIGIN = testinfra.get_host("podman://sq-origin")
ORIGIN_URL = "http://sq-origin/"
ORIGIN_LOG = "/var/log/apache2/access.log"
CACHE_NAME = stratuslab_testinfra.names("cache")[0]

DISK_MB = 24          # the tmpfs of the second Squid's cache_dir
OBJECT_MB = 4         # each image (prepare.yml: full-image-4m.bin)
MAX_OBJECT = "8M"     # its maximum_object_size
IMAGES = 12           # 48 MB of images for 24 MB of disk
CLIENT_REQUESTS = 20  # requests for the same image once the disk is full
HOT = "full-hot.img"
PORT = 3129
SERVICE = "sqfull"
WORK = "/var/tmp/stratuslab-full-cache"   # squid.conf and logs
CACHE_DIR = "/var/spool/squid-full"       # the tmpfs
PID_FILE = "/run/squid-full.pid"
PROXY = "http://127.0.0.1:%d" % PORT
SQUID = "squid -n %s -f %s/squid.conf" % (SERVICE, WORK)


def largest_accepted_cache_mb(host):
    """The largest site_cache_size (whole MB) the squid role's preflight accepts
    for the tmpfs: its own rule (sl_cache_errors) on the mount's size, as the
    setup module reports it, before the cache directory holds anything."""
    spec = importlib.util.spec_from_file_location("sl_size", ROOT / "filter_plugins" / "stratuslab_size.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = host.check_output("stat -f -c '%%b %%a %%S' %s", CACHE_DIR).split()
    total, free = int(out[0]) * int(out[2]), int(out[1]) * int(out[2])
    mounts = [{"mount": CACHE_DIR, "size_total": total, "size_available": free}]
    accepted = [mb for mb in range(1, 4 * DISK_MB)
                if not module.sl_cache_errors("%dM" % mb, MAX_OBJECT, smallest_image="1M", mounts=mounts,
                                              cache_dir=CACHE_DIR, cache_dir_exists=False)]
    assert accepted, "the preflight accepts no cache on a %d MB disk" % DISK_MB
    return max(accepted)


def render_squid_conf(cache_size):
    """The role's template rendered on the cache host (ansible-playbook on the
    scenario's inventory) with the role's variables, this cache's size, port,
    directory and log directory; then this Squid's own pid file."""
    play = [{"name": "Render the role's squid.conf for the full-disk Squid", "hosts": CACHE_NAME,
             "gather_facts": False,
             "vars_files": [str(ROOT / "roles" / "squid" / "defaults" / "main.yml"),
                            str(ROOT / "roles" / "squid" / "vars" / "main.yml"),
                            str(ROOT / "roles" / "squid" / "vars" / "Debian.yml")],
             "tasks": [{"name": "Render squid.conf",
                        "ansible.builtin.template": {"src": str(ROOT / "roles/squid/templates/squid.conf.j2"),
                                                     "dest": WORK + "/squid.conf", "mode": "0644"},
                        # task vars: above the role files' and the site file's
                        "vars": {"site_cache_size": cache_size, "site_cache_max_object_size": MAX_OBJECT,
                                 "squid_cache_dir": CACHE_DIR, "squid_port": PORT,
                                 "__squid_log_dir": WORK + "/log"}},
                       {"name": "Give it a pid file of its own",
                        "ansible.builtin.lineinfile": {"path": WORK + "/squid.conf",
                                                       "line": "pid_filename %s" % PID_FILE}}]}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as book:
        yaml.safe_dump(play, book)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FILTER_PLUGINS=str(ROOT / "filter_plugins"))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    try:
        proc = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], book.name],
                              cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    finally:
        os.unlink(book.name)
    try:
        stats = json.loads(proc.stdout)["stats"][CACHE_NAME]
    except (ValueError, KeyError):
        raise AssertionError("ansible-playbook: %s\n%s" % (proc.stdout[-2000:], proc.stderr[-2000:]))
    assert proc.returncode == 0 and not stats["failures"], proc.stdout[-3000:]


def fetch(host, name, timeout=60):
    """(HTTP status, bytes received, seconds, curl's rc) of a GET of the
    origin's ``name`` through the second Squid, from the cache host."""
    begin = time.monotonic()
    # testinfra shell-quotes every argument: each one a string
    cmd = host.run("curl -s -o /dev/null -w '%%{http_code} %%{size_download}' -m %s -x %s %s",
                   str(timeout), PROXY, ORIGIN_URL + name)
    status, size = (cmd.stdout.split() + ["0", "0"])[:2]
    return int(status), int(size), time.monotonic() - begin, cmd.rc


def origin_requests(name):
    """How many GETs of ``name`` the origin answered."""
    return ORIGIN.run("grep -c '\"GET /%s ' %s || true", name, ORIGIN_LOG).stdout.strip() or "0"


def squid_alive(host):
    return host.run("test -s %s && kill -0 $(cat %s)", PID_FILE, PID_FILE).rc == 0


@pytest.fixture(scope="module")
def full_disk(host, request):
    """The second Squid on its tmpfs, started; stopped and removed at the end."""
    def remove():
        host.run(SQUID + " -k shutdown; sleep 3; pkill -KILL -f '[-]n %s'; umount %s; rm -rf %s %s %s",
                 SERVICE, CACHE_DIR, CACHE_DIR, WORK, PID_FILE)
    request.addfinalizer(remove)
    started = time.monotonic()
    made = host.run("install -d -o proxy -g proxy -m 0750 %s %s/log && install -d -m 0750 %s && "
                    "mount -t tmpfs -o size=%sm,mode=0750 stratuslab-full-cache %s && chown proxy:proxy %s",
                    WORK, WORK, CACHE_DIR, str(DISK_MB), CACHE_DIR, CACHE_DIR)
    assert made.rc == 0, made.stderr
    cache_mb = largest_accepted_cache_mb(host)
    render_squid_conf("%dM" % cache_mb)
    run = host.run("{0} -k parse && {0} --foreground -z && {0}".format(SQUID))
    assert run.rc == 0, run.stdout + run.stderr
    for _ in range(60):
        if host.run("curl -s -o /dev/null -m 5 %s/", PROXY).rc == 0:
            break
        time.sleep(1)
    else:
        raise AssertionError("the second Squid did not start: %s" % host.run("tail -20 %s/log/cache.log", WORK).stdout)
    stratuslab_testinfra.say(request, "cache disk full: a %d MB disk, the preflight accepts site_cache_size up to "
                             "%dM; Squid up in %.0f s" % (DISK_MB, cache_mb, time.monotonic() - started))
    return {"cache_mb": cache_mb}


@pytest.fixture(scope="module")
def filled(host, full_disk, request):
    """More images than the disk holds, then one image CLIENT_REQUESTS times."""
    started = time.monotonic()
    first = [(name,) + fetch(host, name) for name in ["full-%02d.img" % i for i in range(IMAGES)]]
    df = host.check_output("df -m %s", CACHE_DIR).splitlines()[1]
    hot = [fetch(host, HOT) for _ in range(CLIENT_REQUESTS)]
    after = fetch(host, "full-00.img")   # an image evicted long ago: Squid still fetches and serves
    stratuslab_testinfra.say(request, "cache disk full: %d images then %d requests of one in %.0f s; disk after the "
                             "images: %s; origin requests for that image: %s"
                             % (IMAGES, CLIENT_REQUESTS, time.monotonic() - started, df, origin_requests(HOT)))
    return {"first": first, "df": df, "hot": hot, "after": after}


def test_every_image_is_served_whole_while_the_disk_fills(filled):
    size = OBJECT_MB * 1024 * 1024
    bad = [f for f in filled["first"] if f[1:3] != (200, size)]
    assert not bad, "fetches that failed (name, status, bytes, seconds, curl rc): %s" % bad


def test_the_cache_filled_its_disk(filled, full_disk):
    used = int(filled["df"].split()[2])
    assert used >= full_disk["cache_mb"] * 0.6, "the cache did not fill: %s" % filled["df"]


def test_no_request_hangs_and_each_is_served_or_refused(filled):
    size = OBJECT_MB * 1024 * 1024
    for status, got, took, rc in filled["hot"]:
        assert rc != 28, "a request hung (curl's timeout): %s" % filled["hot"]
        assert (status == 200 and got == size) or status >= 500, filled["hot"]
    assert [a for a in filled["hot"] if a[0] == 200], "Squid served nothing once its disk was full: %s" % filled["hot"]


def test_squid_keeps_running_and_answering(host, filled):
    assert squid_alive(host), host.run("tail -30 %s/log/cache.log", WORK).stdout
    status, got, _, rc = filled["after"]
    assert (rc, status, got) == (0, 200, OBJECT_MB * 1024 * 1024), filled["after"]


def test_the_origin_is_not_hammered(filled):
    # With its disk full Squid evicts to store each new object, and a store
    # that loses that race leaves the object uncached: the next request goes
    # to the origin again. Measured: 1 to 3 origin requests for the 20, by
    # load. Hammered would be one per client request; a quarter is the bound.
    to_origin = int(origin_requests(HOT))
    assert 1 <= to_origin <= CLIENT_REQUESTS // 4, (
        "the origin got %d requests for %d client requests of one image" % (to_origin, CLIENT_REQUESTS))
