#!/usr/bin/env python3
"""bench/cache: N nodes (3 by default) pull the same appliance through the site image cache.

Builds its own small site out of the project's test-host image, on a podman
network of its own (nothing leaves the machine):

    bc-origin    10.89.72.20  the appliance's origin (bench/cache/origin.py, counts bytes sent)
    bc-cache     10.89.72.10  the squid role, deployed with ansible-playbook
    bc-node1..N  .31 onwards  the nodes, pulling with curl through the cache

The origin and the cache run systemd, as a site's hosts do. A node only
runs curl, so each node is a light container of the same image: its own
network namespace and address (a separate client, as a site's nodes are),
running bench/cache/node.sh instead of systemd.

Then it measures, in one run:

1. cold: the N nodes pull the appliance at the same moment through the
   empty cache (node.sh: all released by one FIFO). Every pull must be
   complete (HTTP 200, the appliance's size) and byte-identical (the
   SHA-256 of what the node received equal to the appliance's).
   x = body bytes the origin sent during the cold phase / appliance size
   (goal 1.0: collapsed forwarding makes the N pulls one fetch); the
   origin's and Squid's logs of the appliance's requests are summed up;
2. warm: each node pulls it again, one after the other (cache hits), the
   cache's copy evicted from the page cache before each pull, so the hit
   is read from disk; the hit throughput is the median of them (curl's
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

Last line (one line):
    cache: nodes=<N> lost=<l> origin_bytes_ratio=<x> origin_fetches=<f> cold_median_s=<m> cold_max_s=<s> hit_throughput_vs_disk=<y>
l counts the pulls that failed, came short, differ from the appliance or
(warm) were not hits: the exit status is 1 when l > 0. f = the origin's
GETs of the appliance during the cold phase; m, s = median and slowest
cold pull (curl's time_total in the node).
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
MAX_NODES = 200                          # bc-node<i> at 10.89.72.<30 + i>
PORT, ORIGIN_PORT = 3128, 8080
APPLIANCE = "/appliances/ttylinux-bench.img"
ORIGIN_LOG = "/var/log/bench-origin.log"
URL = f"http://{ORIGIN_IP}:{ORIGIN_PORT}{APPLIANCE}"
PROXY = f"http://{CACHE_IP}:{PORT}"

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


def node_names(count):
    return [f"bc-node{i}" for i in range(1, count + 1)]


def create_site():
    """The origin and the cache: test hosts with systemd, booted."""
    if run(["podman", "network", "exists", NETWORK], check=False).returncode != 0:
        run(["podman", "network", "create", "--subnet", SUBNET, NETWORK])
    for name, address in [(CACHE, CACHE_IP), (ORIGIN, ORIGIN_IP)]:
        run(["podman", "rm", "-f", name], check=False)
        run(["podman", "run", "-d", "--name", name, "--hostname", name, "--privileged", "--systemd=always",
             "--no-hosts", "--network", f"{NETWORK}:ip={address}", "--label", "owner=bench-cache", IMAGE, "/sbin/init"])
    for name in [CACHE, ORIGIN]:
        deadline = time.monotonic() + 60
        while True:
            state = run(["podman", "exec", name, "systemctl", "is-system-running", "--wait"], check=False, timeout=300)
            # systemctl cannot wait before systemd has opened its bus, the first instants after the start
            if "Failed to connect to bus" not in state.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if state.stdout.strip() not in ("running", "degraded"):
            raise RuntimeError(f"{name} did not boot: {state.stdout}{state.stderr}")


def create_nodes(nodes, ctl):
    """The nodes: light containers running node.sh (no systemd), each with its own address.

    ctl, bind-mounted as /ctl into each, holds node.sh, the start FIFO `go`
    and each node's `ready.<node>` and `cold.<node>` files. Returns when
    every node waits at the FIFO.
    """
    (ctl / "node.sh").write_text((HERE / "node.sh").read_text())
    os.mkfifo(ctl / "go")
    for i, name in enumerate(nodes, start=1):
        run(["podman", "rm", "-f", "-t", "0", name], check=False)
        run(["podman", "run", "-d", "--name", name, "--hostname", name, "--no-hosts",
             "--network", f"{NETWORK}:ip=10.89.72.{30 + i}", "--label", "owner=bench-cache",
             "-v", f"{ctl}:/ctl", IMAGE, "/bin/bash", "/ctl/node.sh", name, URL, PROXY])
    deadline = time.monotonic() + 120
    while not all((ctl / f"ready.{name}").exists() for name in nodes):
        if time.monotonic() > deadline:
            missing = [name for name in nodes if not (ctl / f"ready.{name}").exists()]
            raise RuntimeError(f"nodes not ready after 120 s: {' '.join(missing)}")
        time.sleep(0.2)
    time.sleep(1)  # each node goes from its ready file to the FIFO's read in no time; leave it a second


def destroy_site(nodes):
    for name in nodes:
        run(["podman", "rm", "-f", "-t", "0", name], check=False)
    for name in [CACHE, ORIGIN]:
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
    """Make the appliance (random bytes) and serve it; returns its SHA-256."""
    run(["podman", "cp", str(HERE / "origin.py"), f"{ORIGIN}:/usr/local/bin/bench-origin.py"])
    in_container(ORIGIN, f"mkdir -p /srv{Path(APPLIANCE).parent} && "
                         f"dd if=/dev/urandom of=/srv{APPLIANCE} bs=1M count={size_mb} status=none && "
                         f"systemd-run --unit=bench-origin /usr/bin/python3 /usr/local/bin/bench-origin.py "
                         f"--root /srv --port {ORIGIN_PORT} --log {ORIGIN_LOG} >/dev/null 2>&1")
    for _ in range(60):
        if in_container(ORIGIN, f"curl -sf -o /dev/null -I http://127.0.0.1:{ORIGIN_PORT}{APPLIANCE} && echo up",
                        check=False).strip() == "up":
            in_container(ORIGIN, f": > {ORIGIN_LOG}")  # the readiness probe is not part of the figures
            return in_container(ORIGIN, f"sha256sum /srv{APPLIANCE}").split()[0]
        time.sleep(0.5)
    raise RuntimeError("the origin web server did not answer")


def cold_pulls(nodes, ctl, timeout):
    """Release every node at once (one line each into the FIFO), then collect what each got."""
    with open(ctl / "go", "w", encoding="ascii") as fifo:
        fifo.write("go\n" * len(nodes))
        fifo.flush()
        released = time.time()
        time.sleep(1)  # a node still opening the FIFO gets its line or EOF, not a hang
    deadline = time.monotonic() + timeout
    while not all((ctl / f"cold.{name}").exists() for name in nodes) and time.monotonic() < deadline:
        time.sleep(0.5)
    pulls = []
    for name in nodes:
        result, err = ctl / f"cold.{name}", ctl / f"cold.{name}.err"
        if not result.exists():
            pulls.append({"node": name, "rc": None, "status": 0, "bytes": 0, "seconds": float("nan"),
                          "x_cache": "-", "sha256": "-", "start": float("nan"), "end": float("nan"),
                          "error": f"no result in {timeout} s"})
            continue
        rc, status, size, seconds, x_cache, sha256, start, end = result.read_text().split()
        pulls.append({"node": name, "rc": int(rc), "status": int(status), "bytes": int(size),
                      "seconds": float(seconds), "x_cache": x_cache, "sha256": sha256,
                      "start": float(start) - released, "end": float(end) - released,
                      "error": err.read_text().strip() if err.exists() else ""})
    return pulls


def pull_command(node):
    script = (f"curl -sS -o /dev/null -D /tmp/headers -w '%{{http_code}} %{{size_download}} %{{time_total}}' "
              f"-x {PROXY} {URL}; echo \" $(grep -i '^X-Cache:' /tmp/headers | awk '{{print $2}}')\"")
    return ["podman", "exec", node, "bash", "-c", script]


def parse_pull(node, text):
    try:
        status, size, seconds, x_cache = (text.split() + ["-"])[:4]
        return {"node": node, "status": int(status), "bytes": int(size), "seconds": float(seconds),
                "x_cache": x_cache}
    except ValueError:
        return {"node": node, "status": 0, "bytes": 0, "seconds": float("nan"), "x_cache": "-",
                "error": text.strip() or "no output"}


def pull_alone(node):
    """One pull from one node (warm phase), through `podman exec`; nothing is checksummed."""
    return parse_pull(node, run(pull_command(node), check=False).stdout)


def origin_requests():
    """[(status, body bytes sent)] of the origin's GETs of the appliance so far."""
    out = []
    for line in in_container(ORIGIN, f"cat {ORIGIN_LOG}").splitlines():
        path, status, count = line.split("\t")
        if path.split("?")[0] == APPLIANCE:
            out.append((int(status), int(count)))
    return out


def squid_requests(expected, timeout=30):
    """Squid's access.log lines of the appliance: [(client, action/code, bytes, hierarchy/peer)].

    Squid logs a request once it is over, through its log daemon; this
    waits up to timeout seconds for `expected` lines.
    """
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        for line in in_container(CACHE, "cat /var/log/squid/access.log", check=False).splitlines():
            fields = line.split()
            if len(fields) >= 9 and fields[6] == URL:
                lines.append((fields[2], fields[3], int(fields[4]), fields[8]))
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


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


def squid_cpu_s():
    """CPU seconds Squid's processes on the cache host have used so far."""
    out = in_container(CACHE, "for pid in $(pgrep -x squid); do cut -d' ' -f14,15 /proc/$pid/stat; done", check=False)
    return sum(int(v) for v in out.split()) / os.sysconf("SC_CLK_TCK")


def rss_mib(names):
    """Resident memory (MiB, summed VmRSS) of each container's processes with its conmon: {name: MiB}.

    Read on this machine from /proc: conmon's process and every descendant.
    """
    children, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                status = (entry / "status").read_text()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(entry.name))
            rss[int(entry.name)] = next((int(line.split()[1]) for line in status.splitlines()
                                         if line.startswith("VmRSS:")), 0)
    out = {}
    for name in names:
        conmon = run(["podman", "inspect", "--format", "{{.State.ConmonPid}}", name], check=False).stdout.strip()
        todo, kib = [int(conmon)] if conmon.isdigit() else [], 0
        while todo:
            pid = todo.pop()
            kib += rss.get(pid, 0)
            todo += children.get(pid, [])
        out[name] = kib / 1024
    return out


def cold_problems(pull, size, sha256):
    """Why a cold pull is lost ([] when it is complete and byte-identical)."""
    why = []
    if pull["rc"] != 0:
        why.append(f"curl exit {pull['rc']}" if pull["rc"] is not None else pull["error"])
    if pull["status"] != 200:
        why.append(f"HTTP {pull['status']}")
    if pull["bytes"] != size:
        why.append(f"{pull['bytes']} bytes of {size}")
    if pull["sha256"] != sha256:
        why.append("SHA-256 differs from the appliance's")
    return why


def warm_problems(pull, size):
    why = [pull["error"]] if pull.get("error") else []
    if pull["status"] != 200:
        why.append(f"HTTP {pull['status']}")
    if pull["bytes"] != size:
        why.append(f"{pull['bytes']} bytes of {size}")
    if pull["x_cache"].upper() != "HIT":
        why.append(f"X-Cache {pull['x_cache']}, not HIT")
    return why


def counted(items):
    """'2 x A, 1 x B' from a list, most frequent first."""
    counts = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return ", ".join(f"{n} x {item}" for item, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="appliance size in MiB (default 1024 = 1 GiB)")
    parser.add_argument("--nodes", type=int, default=3,
                        help=f"nodes pulling at once in the cold phase, each its own container (default 3, at most {MAX_NODES})")
    parser.add_argument("--keep", action="store_true", help="keep the containers and the work directory")
    parser.add_argument("-e", "--extra-vars", action="append", default=[],
                        help="passed to ansible-playbook -e when deploying the cache (to try other settings)")
    parser.add_argument("--squid-build", metavar="PREFIX",
                        help="experiment: after the role's deploy, serve with the Squid installed under PREFIX on "
                             "this machine (e.g. a build with another HTTP_REQBUF_SZ) instead of Debian's")
    args = parser.parse_args()
    if not 1 <= args.nodes <= MAX_NODES:
        parser.error(f"--nodes: 1 to {MAX_NODES}")
    size = args.size_mb * 2**20
    nodes = node_names(args.nodes)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cache."))
    ctl = workdir / "ctl"
    ctl.mkdir()
    print(f"bench/cache: 1 cache + 1 origin + {len(nodes)} nodes on podman network {NETWORK} ({SUBNET}); "
          f"appliance {args.size_mb} MiB; work directory {workdir}", flush=True)
    try:
        create_site()
        note(f"cache and origin up in {time.monotonic() - started:.0f} s")
        deploy_s = deploy_cache(workdir, args.size_mb, args.extra_vars)
        note(f"squid role deployed with ansible-playbook in {deploy_s:.0f} s")
        if args.squid_build:
            note(f"EXPERIMENT: serving with {swap_in_squid_build(args.squid_build)} from {args.squid_build}, "
                 f"not Debian's squid")
        appliance_sha256 = start_origin(args.size_mb)
        t_nodes = time.monotonic()
        create_nodes(nodes, ctl)
        nodes_up_s = time.monotonic() - t_nodes
        rss = rss_mib(nodes + [ORIGIN])
        note(f"{len(nodes)} node containers (node.sh, no systemd) up and waiting in {nodes_up_s:.0f} s; "
             f"resident memory with conmon: {statistics.median(rss[n] for n in nodes):.1f} MiB a node "
             f"(median), {sum(rss[n] for n in nodes):.0f} MiB in all; the origin host (systemd) "
             f"{rss[ORIGIN]:.0f} MiB")

        cold_timeout = 300 + args.size_mb * len(nodes) // 20
        squid_cpu0 = squid_cpu_s()
        cold = cold_pulls(nodes, ctl, cold_timeout)
        cold_squid_cpu = squid_cpu_s() - squid_cpu0
        cold_origin = origin_requests()
        cold_squid = squid_requests(len(nodes))
        lost = []
        print(f"{'phase':<6} {'node':<10} {'status':>6} {'MiB':>7} {'s':>7} {'MiB/s':>8}  {'X-Cache':<7}  detail")
        for pull in cold:
            why = cold_problems(pull, size, appliance_sha256)
            lost += [(pull, why)] if why else []
            print(f"{'cold':<6} {pull['node']:<10} {pull['status']:>6} {pull['bytes'] / 2**20:>7.0f} "
                  f"{pull['seconds']:>7.2f} {mib_s(pull['bytes'], pull['seconds']) if pull['seconds'] else 0:>8.0f}  "
                  f"{pull['x_cache']:<7}  started {pull['start']:+.3f} s, "
                  + ("; ".join(why) if why else "SHA-256 = the appliance's"), flush=True)
        for pull, why in lost:  # now, in case the warm phase cannot run
            detail = pull.get("error") if pull.get("error") not in why else ""
            note(f"LOST: {pull['node']}: {'; '.join(why)}" + (f" ({detail})" if detail else ""))

        cold_times = [p["seconds"] for p in cold if not cold_problems(p, size, appliance_sha256)]
        cold_median = statistics.median(cold_times) if cold_times else float("nan")
        cold_max = max(cold_times) if cold_times else float("nan")
        cold_sent = sum(count for _status, count in cold_origin)
        starts = [p["start"] for p in cold if p["rc"] is not None]
        fetches = [hier for _client, _action, _bytes, hier in cold_squid if not hier.startswith("HIER_NONE")]
        note(f"cold: {len(nodes) - sum(1 for p in cold if cold_problems(p, size, appliance_sha256))} of {len(nodes)} "
             f"pulls complete and byte-identical (SHA-256 {appliance_sha256[:16]}...); started within "
             f"{(max(starts) - min(starts)) if starts else float('nan'):.3f} s of each other; "
             f"median {cold_median:.2f} s, slowest {cold_max:.2f} s")
        note(f"cold: the origin answered {len(cold_origin)} GET(s) of the appliance ({counted(f'HTTP {s}' for s, _ in cold_origin)}), "
             f"{cold_sent} body bytes = {cold_sent / size:.3f} x the appliance")
        note(f"cold: Squid's access.log, {len(cold_squid)} requests of the appliance: "
             f"{counted(f'{action} {hier}' for _client, action, _bytes, hier in cold_squid)}; "
             f"{len(fetches)} went to the origin")
        cold_wall = max(p["end"] for p in cold if p["rc"] is not None) - min(starts) if starts else float("nan")
        note(f"cold: Squid served {sum(p['bytes'] for p in cold) / 2**20:.0f} MiB in {cold_wall:.1f} s "
             f"({sum(p['bytes'] for p in cold) / 2**20 / max(cold_wall, 1e-3):.0f} MiB/s to all nodes together) "
             f"using {cold_squid_cpu:.1f} CPU-s")

        time.sleep(2)  # let Squid finish writing the object to disk
        warm, cats, hot_cats = [], [], []
        try:
            path = swap_file(size)
        except RuntimeError as exc:
            path = None
            lost.append(({"node": CACHE}, [str(exc)]))
            note(f"LOST: {CACHE}: {exc}; no warm or disk phase")
        if path:
            for node in nodes:
                evict(path)
                warm.append(pull_alone(node))
            cats = [cat_seconds(path, cold=True) for _ in range(3)]
            hot_cats = [cat_seconds(path, cold=False) for _ in range(3)]
        sent = sum(count for _status, count in origin_requests())
        cat_s = statistics.median(cats) if cats else float("nan")
        hot_s = statistics.median(hot_cats) if hot_cats else float("nan")

        for pull in warm:
            why = warm_problems(pull, size)
            lost += [(pull, why)] if why else []
            print(f"{'warm':<6} {pull['node']:<10} {pull['status']:>6} {pull['bytes'] / 2**20:>7.0f} "
                  f"{pull['seconds']:>7.2f} {mib_s(pull['bytes'], pull['seconds']) if pull['seconds'] else 0:>8.0f}  "
                  f"{pull['x_cache']:<7}  " + ("; ".join(why) if why else ""))
            if why:
                note(f"LOST: {pull['node']} (warm): {'; '.join(why)}")
        for seconds in cats:
            print(f"{'disk':<6} {CACHE:<10} {'cat':>6} {args.size_mb:>7} {seconds:>7.2f} {mib_s(size, seconds):>8.0f}  "
                  f"{'':<7}  {path} (evicted first)")
        for seconds in hot_cats:
            print(f"{'memory':<6} {CACHE:<10} {'cat':>6} {args.size_mb:>7} {seconds:>7.2f} {mib_s(size, seconds):>8.0f}  "
                  f"{'':<7}  {path} (page cache)")

        hits = [p for p in warm if not warm_problems(p, size)]
        hit_s = statistics.median(p["seconds"] for p in hits) if hits else float("nan")
        x = cold_sent / size
        y = mib_s(size, hit_s) / mib_s(size, cat_s)
        note(f"x = {cold_sent} bytes sent by the origin during the cold pulls by {len(nodes)} nodes at once / "
             f"{size} bytes of appliance; over the whole run it sent {sent}")
        note(f"y = median warm pull {mib_s(size, hit_s):.0f} MiB/s (curl through Squid, from a node, Squid's copy "
             f"evicted from the page cache first) / median cat {mib_s(size, cat_s):.0f} MiB/s (Squid's swap file "
             f"to /dev/null on the cache host, evicted first: the disk)")
        note(f"against the page cache instead (cat of the file in memory, {mib_s(size, hot_s):.0f} MiB/s): "
             f"{mib_s(size, hit_s) / mib_s(size, hot_s):.2f}")
        note(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end; total {time.monotonic() - started:.0f} s")
        print(f"cache: nodes={len(nodes)} lost={len(lost)} origin_bytes_ratio={x:.3f} origin_fetches={len(cold_origin)} "
              f"cold_median_s={cold_median:.2f} cold_max_s={cold_max:.2f} hit_throughput_vs_disk={y:.2f}", flush=True)
        return 1 if lost else 0
    finally:
        for name, log in ((CACHE, "/var/log/squid/access.log"), (ORIGIN, ORIGIN_LOG)):
            saved = run(["podman", "exec", name, "cat", log], check=False).stdout
            (workdir / f"{name}.log").write_text(saved)
        if args.keep:
            note(f"kept: containers {CACHE}, {ORIGIN}, {nodes[0]}..{nodes[-1]}, network {NETWORK}, "
                 f"work directory {workdir}")
        else:
            destroy_site(nodes)


if __name__ == "__main__":
    sys.exit(main())
