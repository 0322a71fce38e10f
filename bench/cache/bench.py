#!/usr/bin/env python3
"""bench/cache: three nodes pull the same 1 GiB appliance through the site image cache.

Builds its own small site out of the project's test-host containers, on a
podman network of its own (nothing leaves the machine):

    bc-origin  10.89.72.20  the appliance's origin (bench/cache/origin.py, counts bytes sent)
    bc-cache   10.89.72.10  the squid role, deployed with ansible-playbook
    bc-node1..3 .31-.33     the nodes, pulling with curl through the cache

then measures, in one run:

1. cold: the three nodes pull the appliance at the same time through the
   empty cache; x = bytes the origin sent / appliance size (goal 1.0);
2. warm: each node pulls it again, one after the other (cache hits), the
   cache's copy evicted from the page cache before each pull, so the hit
   is read from disk; the hit throughput is the median of the three (curl's
   own timing, inside the node);
3. disk: `cat` of the cached copy of the appliance (Squid's swap file) to
   /dev/null on the cache host, three times, the file evicted from the
   page cache before each (posix_fadvise DONTNEED, checked with fincore):
   the throughput of the disk; y = hit throughput / cat throughput (goal
   >= 0.5). The same cat with the file in the page cache (memory speed) is
   printed too, as a note.

With --squid-build PREFIX (an experiment, bench/README.md), the cache serves
with a Squid built under PREFIX on this machine (bench/cache/build-squid)
instead of Debian's, after the role's deploy.

Last line:  cache: origin_bytes_ratio=<x> hit_throughput_vs_disk=<y>
Everything is removed at the end unless --keep.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
IMAGE = "localhost/stratuslab-host:bookworm"
NETWORK, SUBNET = "stratuslab-bench-cache", "10.89.72.0/24"
CACHE, CACHE_IP = "bc-cache", "10.89.72.10"
ORIGIN, ORIGIN_IP = "bc-origin", "10.89.72.20"
NODES = [("bc-node1", "10.89.72.31"), ("bc-node2", "10.89.72.32"), ("bc-node3", "10.89.72.33")]
PORT, ORIGIN_PORT = 3128, 8080
APPLIANCE = "/appliances/ttylinux-bench.img"
ORIGIN_LOG = "/var/log/bench-origin.log"

PLAY = """\
- name: Run the benchmark's image cache
  hosts: cache
  gather_facts: true
  roles:
    - role: squid
"""


def run(argv, check=True, **kwargs):
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kwargs)


def in_container(name, script, check=True):
    return run(["podman", "exec", name, "bash", "-c", script], check=check).stdout


def note(text):
    print("note: " + text, flush=True)


def create_site():
    if run(["podman", "network", "exists", NETWORK], check=False).returncode != 0:
        run(["podman", "network", "create", "--subnet", SUBNET, NETWORK])
    for name, address in [(CACHE, CACHE_IP), (ORIGIN, ORIGIN_IP)] + NODES:
        run(["podman", "rm", "-f", name], check=False)
        run(["podman", "run", "-d", "--name", name, "--hostname", name, "--privileged", "--systemd=always",
             "--no-hosts", "--network", f"{NETWORK}:ip={address}", "--label", "owner=bench-cache", IMAGE, "/sbin/init"])
    for name in [CACHE, ORIGIN] + [node for node, _ in NODES]:
        state = run(["podman", "exec", name, "systemctl", "is-system-running", "--wait"], check=False, timeout=300)
        if state.stdout.strip() not in ("running", "degraded"):
            raise RuntimeError(f"{name} did not boot: {state.stdout}{state.stderr}")


def destroy_site():
    for name in [CACHE, ORIGIN] + [node for node, _ in NODES]:
        run(["podman", "rm", "-f", "-t", "2", name], check=False)
    run(["podman", "network", "rm", NETWORK], check=False)


def deploy_cache(workdir, size_mb, extra_vars=()):
    """The squid role on bc-cache, exactly as playbooks/cache.yml runs it."""
    cache_gb = max(4, 2 * size_mb // 1024 + 2)
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "containers.podman.podman",
                "ansible_python_interpreter": "/usr/bin/python3",
                "site_networks": [{"name": "bench", "cidr": SUBNET}],
                "site_cache_size": f"{cache_gb}G",
                "site_cache_max_object_size": f"{cache_gb // 2}G",
                "site_cache_port": PORT,
                "site_cache_allowed_networks": [],
            },
            "children": {"cache": {"hosts": {CACHE: {}}}},
        }
    }
    (workdir / "inventory.json").write_text(json.dumps(inventory))
    (workdir / "cache.yml").write_text(PLAY)
    ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
    start = time.monotonic()
    extra = [arg for value in extra_vars for arg in ("-e", value)]
    result = run([str(ansible_playbook), "-i", str(workdir / "inventory.json"), str(workdir / "cache.yml"), *extra],
                 check=False, cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")})
    (workdir / "deploy.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError("deploying the squid role failed; see " + str(workdir / "deploy.log") + "\n" + result.stdout[-3000:])
    return time.monotonic() - start


def swap_in_squid_build(prefix):
    """Experiment: serve from a local Squid build (installed under prefix) instead of Debian's.

    The squid role deploys and initialises the cache as usual; then Debian's
    squid.service is stopped and the build runs the role's own squid.conf
    (through `include`) as a transient unit, with the two settings Debian
    compiles in (the proxy user, the pid file). Not something the role does:
    it answers "what would a Squid built differently give here".
    """
    run(["podman", "exec", CACHE, "mkdir", "-p", str(Path(prefix).parent)])
    run(["podman", "cp", prefix, f"{CACHE}:{prefix}"])
    conf = ("include /etc/squid/squid.conf\n"
            "cache_effective_user proxy\n"
            "pid_filename /run/squid-build.pid\n")
    in_container(CACHE, f"systemctl stop squid && printf '{conf}' > /etc/squid/build.conf && "
                        f"systemd-run --unit=squid-build {prefix}/sbin/squid -N -f /etc/squid/build.conf")
    for _ in range(60):
        if in_container(CACHE, f"{prefix}/sbin/squid -f /etc/squid/build.conf -k check 2>/dev/null && echo up",
                        check=False).strip() == "up":
            return in_container(CACHE, f"{prefix}/sbin/squid -v | head -1").strip()
        time.sleep(0.5)
    raise RuntimeError(f"the Squid build under {prefix} did not start: "
                       + in_container(CACHE, "journalctl -u squid-build --no-pager | tail -20", check=False))


def start_origin(size_mb):
    run(["podman", "cp", str(HERE / "origin.py"), f"{ORIGIN}:/usr/local/bin/bench-origin.py"])
    in_container(ORIGIN, f"mkdir -p /srv{Path(APPLIANCE).parent} && "
                         f"dd if=/dev/urandom of=/srv{APPLIANCE} bs=1M count={size_mb} status=none && "
                         f"systemd-run --unit=bench-origin /usr/bin/python3 /usr/local/bin/bench-origin.py "
                         f"--root /srv --port {ORIGIN_PORT} --log {ORIGIN_LOG} >/dev/null 2>&1")
    for _ in range(60):
        if in_container(ORIGIN, f"curl -sf -o /dev/null -I http://127.0.0.1:{ORIGIN_PORT}{APPLIANCE} && echo up",
                        check=False).strip() == "up":
            in_container(ORIGIN, f": > {ORIGIN_LOG}")  # the readiness probe is not part of the figures
            return
        time.sleep(0.5)
    raise RuntimeError("the origin web server did not answer")


def pull_command(node):
    url = f"http://{ORIGIN_IP}:{ORIGIN_PORT}{APPLIANCE}"
    script = (f"curl -sS -o /dev/null -D /tmp/headers -w '%{{http_code}} %{{size_download}} %{{time_total}}' "
              f"-x http://{CACHE_IP}:{PORT} {url}; echo \" $(grep -i '^X-Cache:' /tmp/headers | awk '{{print $2}}')\"")
    return ["podman", "exec", node, "bash", "-c", script]


def parse_pull(node, text):
    status, size, seconds, x_cache = (text.split() + ["-"])[:4]
    return {"node": node, "status": int(status), "bytes": int(size), "seconds": float(seconds), "x_cache": x_cache}


def pull_together(nodes):
    procs = [(node, subprocess.Popen(pull_command(node), stdout=subprocess.PIPE, text=True)) for node in nodes]
    return [parse_pull(node, proc.communicate()[0]) for node, proc in procs]


def origin_bytes():
    sent = 0
    for line in in_container(ORIGIN, f"cat {ORIGIN_LOG}").splitlines():
        path, _status, count = line.split("\t")
        if path.split("?")[0] == APPLIANCE:
            sent += int(count)
    return sent


def swap_file(size):
    """Path of Squid's swap file of the appliance on the cache host (the largest file there)."""
    found = in_container(CACHE, f"find /var/spool/squid -type f -size +{size - 1}c -printf '%s %p\\n' | sort -n | tail -1").split()
    if not found:
        raise RuntimeError("no swap file of the appliance's size in the cache directory")
    return found[1]


EVICT = ("import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
         "os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)")


def evict(path):
    """Drop the file's pages from the page cache (clean pages only: no writes pending)."""
    in_container(CACHE, f"sync {path}; python3 -c '{EVICT}' {path}")
    resident = in_container(CACHE, f"fincore --bytes --noheadings --output RES {path}").strip()
    if int(resident or 0) > 64 * 2**20:
        raise RuntimeError(f"{path}: {resident} bytes still in the page cache after eviction")


def cat_seconds(path, cold):
    """Seconds of `cat <Squid's swap file> >/dev/null` on the cache host, from disk when cold."""
    if cold:
        evict(path)
    nanoseconds = in_container(CACHE, f"s=$(date +%s%N); cat {path} >/dev/null; e=$(date +%s%N); echo $((e - s))")
    return int(nanoseconds) / 1e9


def mib_s(size, seconds):
    return size / seconds / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="appliance size in MiB (default 1024 = 1 GiB)")
    parser.add_argument("--keep", action="store_true", help="keep the containers and the work directory")
    parser.add_argument("-e", "--extra-vars", action="append", default=[],
                        help="passed to ansible-playbook -e when deploying the cache (to try other settings)")
    parser.add_argument("--squid-build", metavar="PREFIX",
                        help="experiment: after the role's deploy, serve with the Squid installed under PREFIX on "
                             "this machine (e.g. a build with another HTTP_REQBUF_SZ) instead of Debian's")
    args = parser.parse_args()
    size = args.size_mb * 2**20
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cache."))
    print(f"bench/cache: 1 cache + 1 origin + {len(NODES)} nodes on podman network {NETWORK} ({SUBNET}); "
          f"appliance {args.size_mb} MiB; work directory {workdir}", flush=True)
    try:
        create_site()
        note(f"containers up in {time.monotonic() - started:.0f} s")
        deploy_s = deploy_cache(workdir, args.size_mb, args.extra_vars)
        note(f"squid role deployed with ansible-playbook in {deploy_s:.0f} s")
        if args.squid_build:
            note(f"EXPERIMENT: serving with {swap_in_squid_build(args.squid_build)} from {args.squid_build}, "
                 f"not Debian's squid")
        start_origin(args.size_mb)

        nodes = [node for node, _ in NODES]
        cold = pull_together(nodes)
        cold_sent = origin_bytes()
        time.sleep(2)  # let Squid finish writing the object to disk
        path = swap_file(size)
        warm = []
        for node in nodes:
            evict(path)
            warm.append(pull_together([node])[0])
        sent = origin_bytes()
        cats = [cat_seconds(path, cold=True) for _ in range(3)]
        hot_cats = [cat_seconds(path, cold=False) for _ in range(3)]
        cat_s = statistics.median(cats)
        hot_s = statistics.median(hot_cats)

        print(f"{'phase':<6} {'node':<9} {'status':>6} {'MiB':>7} {'s':>7} {'MiB/s':>8}  X-Cache")
        for phase, pulls in (("cold", cold), ("warm", warm)):
            for pull in pulls:
                print(f"{phase:<6} {pull['node']:<9} {pull['status']:>6} {pull['bytes'] / 2**20:>7.0f} "
                      f"{pull['seconds']:>7.2f} {mib_s(pull['bytes'], pull['seconds']):>8.0f}  {pull['x_cache']}")
        for seconds in cats:
            print(f"{'disk':<6} {CACHE:<9} {'cat':>6} {args.size_mb:>7} {seconds:>7.2f} {mib_s(size, seconds):>8.0f}  {path} (evicted first)")
        for seconds in hot_cats:
            print(f"{'memory':<6} {CACHE:<9} {'cat':>6} {args.size_mb:>7} {seconds:>7.2f} {mib_s(size, seconds):>8.0f}  {path} (page cache)")

        problems = [p for p in cold + warm if p["status"] != 200 or p["bytes"] != size]
        problems += [p for p in warm if p["x_cache"].upper() != "HIT"]
        for pull in problems:
            note(f"UNEXPECTED pull: {pull}")
        hit_s = statistics.median(p["seconds"] for p in warm)
        x = sent / size
        y = mib_s(size, hit_s) / mib_s(size, cat_s)
        note(f"x = {sent} bytes sent by the origin over the whole run ({cold_sent} during the cold pulls by "
             f"{len(nodes)} nodes at once) / {size} bytes of appliance")
        note(f"y = median warm pull {mib_s(size, hit_s):.0f} MiB/s (curl through Squid, from a node, Squid's copy "
             f"evicted from the page cache first) / median cat {mib_s(size, cat_s):.0f} MiB/s (Squid's swap file "
             f"to /dev/null on the cache host, evicted first: the disk)")
        note(f"against the page cache instead (cat of the file in memory, {mib_s(size, hot_s):.0f} MiB/s): "
             f"{mib_s(size, hit_s) / mib_s(size, hot_s):.2f}")
        note(f"total {time.monotonic() - started:.0f} s")
        print(f"cache: origin_bytes_ratio={x:.3f} hit_throughput_vs_disk={y:.2f}", flush=True)
        return 1 if problems else 0
    finally:
        for name, log in ((CACHE, "/var/log/squid/access.log"), (ORIGIN, ORIGIN_LOG)):
            saved = run(["podman", "exec", name, "cat", log], check=False).stdout
            (workdir / f"{name}.log").write_text(saved)
        if args.keep:
            note(f"kept: containers {CACHE}, {ORIGIN}, bc-node1..3, network {NETWORK}, work directory {workdir}")
        else:
            destroy_site()


if __name__ == "__main__":
    sys.exit(main())
