#!/usr/bin/env python3
"""bench/site: the demo site's first converge and rerun against a bare apt-get floor.

Builds the demo site (inventories/demo, renumbered) out of the project's
test-host containers, on two podman networks of its own, so it never
touches `make site`'s stratuslab-demo-* containers or networks:

    stratuslab-bench-site-public   10.89.90.0/24  (the demo's 10.89.7.0/24)
    stratuslab-bench-site-private  10.89.91.0/24  (the demo's 10.89.8.0/24)
    bench-site-<host>      the demo's hosts at the demo's host numbers
    bench-site-apt-<host>  a second fresh set, 10.89.90.101-.10n

then measures, in one run:

1. converge: `ansible-playbook site.yml` on fresh containers (wall);
2. rerun: the same again (wall; changed summed over hosts, from the json
   callback's stats);
3. apt: on a second set of fresh containers from the same image, the
   packages the converge added to each host (dpkg diff before/after, exact
   versions), installed with one bare `apt-get update && apt-get install`
   per host, the hosts in parallel (wall).

Last line:  site: converge_vs_apt=<x> rerun_s=<y> rerun_changed=<n>

With --scale [N,N,...] (default 2,4,6,8,16) it measures a scale curve
instead: the front-end, svc and N KVM nodes (node1..nodeN, more containers
from the same image on the same networks, the front-end on the test oned),
for each N in turn growing the same site (converge, then a timed no-change
rerun: wall, controller CPU, all-machine CPU, changed). Last line:

    site_scale: controller_cpu_s_per_node=<x> rerun_s_at_8_hosts=<y>

x: least-squares slope of the reruns' controller CPU-s against N; y: the
rerun wall at 8 hosts in all (front-end, svc and 6 nodes).
Everything is removed at the end (also on failure or SIGTERM) unless --keep.
"""

import argparse
import copy
import hashlib
import resource
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/stratuslab-host:bookworm"
LABEL = "stratuslab-bench=site"
# The demo's podman networks and their bench counterparts (name, subnet).
NETWORKS = {
    "stratuslab-demo-public": ("stratuslab-bench-site-public", "10.89.90.0/24"),
    "stratuslab-demo-private": ("stratuslab-bench-site-private", "10.89.91.0/24"),
}
RENUMBER = [("10.89.7.", "10.89.90."), ("10.89.8.", "10.89.91.")]
APT_PREFIX = "10.89.90."
APT_FIRST = 101
APT_ENV = ["env", "DEBIAN_FRONTEND=noninteractive"]
# What Ansible's apt module passes to dpkg, so both sides treat conffiles alike.
PACKAGE_ACTIONS = {"apt", "ansible.builtin.apt", "package", "ansible.builtin.package"}
DPKG_OPTS = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]


def run(argv, check=True, **kwargs):
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kwargs)


def note(text):
    print("note: " + text, flush=True)


def progress(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def load():
    return Path("/proc/loadavg").read_text().split()[:3]


TICK = os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds the whole machine (controller and every container) spent
    busy, and could have spent, between start() and stop(), from /proc/stat;
    and the CPU seconds of this process's finished children (ansible-playbook,
    its workers and ssh clients: the controller's share)."""

    @staticmethod
    def _stat():
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        total = sum(fields[:8])       # guest time is already in user
        return total - idle, total

    def __enter__(self):
        self.busy0, self.total0 = self._stat()
        self.children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc):
        busy, total = self._stat()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.busy = (busy - self.busy0) / TICK
        self.capacity = (total - self.total0) / TICK
        self.controller = (children.ru_utime - self.children0.ru_utime
                           + children.ru_stime - self.children0.ru_stime)
        return False

    def text(self, controller=True):
        out = f"machine CPU busy {self.busy:.0f} of {self.capacity:.0f} CPU-s ({100 * self.busy / self.capacity:.0f} %)"
        if controller:
            out += f", ansible-playbook and its children {self.controller:.0f} CPU-s"
        return out


# --- the site ---------------------------------------------------------------

def make_inventory(work, name="inventory", nodes=None):
    """Copy inventories/demo with bench container names, networks and addresses.
    With ``nodes``: the KVM nodes node1..node<nodes> (scaled_hosts) and the
    front-end on the test oned (the scale curve)."""
    src, dst = REPO / "inventories" / "demo", work / name
    shutil.copytree(src, dst)
    for path in dst.rglob("*.yml"):
        text = path.read_text()
        for demo, (bench, subnet) in NETWORKS.items():
            text = text.replace(demo, bench)
        for old, new in RENUMBER:
            text = text.replace(old, new)
        text = text.replace("demo_container: stratuslab-demo-", "demo_container: bench-site-")
        for stale in ("stratuslab-demo", "10.89.7.", "10.89.8."):
            if stale in text:
                raise RuntimeError(f"{path}: '{stale}' left after renumbering the demo inventory")
        path.write_text(text)
    if nodes is not None:
        hosts_yml = dst / "hosts.yml"
        hosts_yml.write_text("---\n# bench/site --scale: the demo's hosts with its nodes repeated\n"
                             + yaml.safe_dump(scaled_hosts(yaml.safe_load(hosts_yml.read_text()), nodes),
                                              default_flow_style=False, sort_keys=False))
        site_yml = dst / "group_vars" / "all" / "site.yml"
        text = site_yml.read_text()
        if text.count(SCALE_ONE_INSTALL[0]) != 1:
            raise RuntimeError(f"{site_yml}: no single '{SCALE_ONE_INSTALL[0]}' line to replace")
        site_yml.write_text(text.replace(*SCALE_ONE_INSTALL))
    inv = json.loads(run(["ansible-inventory", "-i", str(dst), "--list"], cwd=REPO).stdout)
    hosts = []
    for name in sorted(inv["_meta"]["hostvars"]):
        hv = inv["_meta"]["hostvars"][name]
        hosts.append({
            "name": name,
            "container": hv["demo_container"],
            "address": hv["site_address"],
            "extra": hv.get("site_network_addresses", {}),
            "groups": sorted(g for g, v in inv.items() if isinstance(v, dict) and name in v.get("hosts", [])),
        })
    first = inv["_meta"]["hostvars"][hosts[0]["name"]]
    return dst, hosts, first["demo_networks"], first["demo_ssh_key"]


def create_networks(networks):
    for net in networks:
        if run(["podman", "network", "exists", net["podman_network"]], check=False).returncode != 0:
            run(["podman", "network", "create", "--subnet", net["subnet"], "--label", LABEL,
                 net["podman_network"]])


def start_container(name, hostname, attach):
    run(["podman", "rm", "-f", "-t", "2", name], check=False)
    argv = ["podman", "run", "-d", "--name", name, "--hostname", hostname, "--privileged",
            "--systemd=always", "--no-hosts", "--label", LABEL]
    for spec in attach:
        argv += ["--network", spec]
    run(argv + [IMAGE, "/sbin/init"])


def wait_booted(names):
    for name in names:
        state = run(["podman", "exec", name, "systemctl", "is-system-running", "--wait"],
                    check=False, timeout=600)
        if state.stdout.strip() not in ("running", "degraded"):
            raise RuntimeError(f"{name} did not boot: {state.stdout}{state.stderr}")


def authorize_key(names, key):
    """What tools/demo/up.yml does: the demo key (made if missing) authorised for root (sshd runs once booted)."""
    key = Path(key)
    if not key.exists():
        key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stratuslab-demo", "-f", str(key)])
    public = Path(str(key) + ".pub").read_text().strip()
    for name in names:
        run(["podman", "exec", name, "sh", "-c",
             f"umask 077 && mkdir -p /root/.ssh && grep -qxF '{public}' /root/.ssh/authorized_keys 2>/dev/null"
             f" || echo '{public}' >> /root/.ssh/authorized_keys"])


def create_site(hosts, networks, key):
    """The site's containers, attached like tools/demo/up.yml does (eth0 public, eth1 private)."""
    for h in hosts:
        attach = [f"{networks[0]['podman_network']}:ip={h['address']},interface_name=eth0"]
        for index, net in enumerate(networks[1:], start=1):
            if net["site_network"] in h["extra"]:
                attach.append(f"{net['podman_network']}:ip={h['extra'][net['site_network']]},"
                              f"interface_name=eth{index}")
        start_container(h["container"], h["name"], attach)
    wait_booted([h["container"] for h in hosts])
    authorize_key([h["container"] for h in hosts], key)


def installed(container):
    out = run(["podman", "exec", container, "dpkg-query", "-W",
               "-f=${db:Status-Abbrev}\t${binary:Package}\t${Version}\n"]).stdout
    packages = {}
    for line in out.splitlines():
        status, name, version = line.split("\t")
        if status.startswith("ii"):
            packages[name] = version
    return packages


def playbook(inventory, out_json, log):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_JSON_INDENT="0")
    start = time.monotonic()
    with open(out_json, "w") as out, open(log, "w") as err:
        proc = subprocess.run(["ansible-playbook", "-i", str(inventory), "site.yml"],
                              cwd=REPO, env=env, stdout=out, stderr=err, check=False)
    wall = time.monotonic() - start
    try:
        result = json.loads(Path(out_json).read_text())
    except ValueError:
        raise RuntimeError(f"site.yml (rc {proc.returncode}) gave no json; see {log}") from None
    stats = result["stats"]
    bad = {h: s for h, s in stats.items() if s.get("failures") or s.get("unreachable")}
    if proc.returncode != 0 or bad:
        failed = [f"{t['task']['name']} on {h}: {r.get('msg', '')}"[:300]
                  for p in result["plays"] for t in p["tasks"] for h, r in t["hosts"].items()
                  if r.get("failed") or r.get("unreachable")]
        raise RuntimeError(f"site.yml failed (rc {proc.returncode}): " + "; ".join(failed[:5]))
    return wall, result


def iso(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def task_times(result):
    """(seconds, play, task, actions, hosts) per task, from the json callback."""
    rows = []
    for play in result["plays"]:
        for task in play["tasks"]:
            d = task["task"]["duration"]
            if "end" not in d:
                continue
            actions = sorted({r.get("action", "?") for r in task["hosts"].values()})
            ran = sorted(h for h, r in task["hosts"].items() if not r.get("skipped"))
            rows.append((iso(d["end"]) - iso(d["start"]), play["play"]["name"], task["task"]["name"],
                         actions, ran))
    return rows


def busy_seconds(result, actions):
    """Seconds during which at least one task of ``actions`` ran: the union
    of those tasks' intervals. site.yml's free-strategy plays run tasks of
    different hosts at the same time, so a plain sum would count overlaps."""
    spans = sorted((iso(t["task"]["duration"]["start"]), iso(t["task"]["duration"]["end"]))
                   for play in result["plays"] for t in play["tasks"]
                   if "end" in t["task"]["duration"]
                   and {r.get("action") for r in t["hosts"].values() if not r.get("skipped")} & actions)
    total, cur_start, cur_end = 0.0, None, None
    for start, end in spans:
        if cur_end is None or start > cur_end:
            total += (cur_end - cur_start) if cur_end is not None else 0.0
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


# --- the apt floor ----------------------------------------------------------

def apt_floor(pairs):
    """pairs: [(container, {pkg: version})]. One update + install per host, hosts in parallel."""
    times, errors = {}, []

    def one(container, packages):
        try:
            t0 = time.monotonic()
            run(["podman", "exec", container] + APT_ENV + ["apt-get", "update", "-q"])
            t1 = time.monotonic()
            if packages:
                specs = [f"{p}={v}" for p, v in sorted(packages.items())]
                run(["podman", "exec", container] + APT_ENV +
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + DPKG_OPTS + specs)
            times[container] = (t1 - t0, time.monotonic() - t1)
        except subprocess.CalledProcessError as exc:
            errors.append(f"{container}: {' '.join(exc.cmd[:6])}... rc {exc.returncode}: "
                          f"{(exc.stderr or '')[-600:]}")

    threads = [threading.Thread(target=one, args=pair) for pair in pairs]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    if errors:
        raise RuntimeError("apt floor failed: " + " | ".join(errors))
    return wall, times


# --- the scale curve (--scale) ----------------------------------------------

SCALE_DEFAULT = "2,4,6,8,16"
# y of the last line: the rerun wall of a site of this many hosts in all. The
# issue's figures count hosts (the demo, one + svc + 2 nodes, is "4 hosts"),
# so 8 hosts are the front-end, svc and 6 nodes.
SCALE_Y_HOSTS = 8
# The scale curve's front-end runs the test oned: bench/site does not mount
# the demo's local OpenNebula package repository into its containers.
SCALE_ONE_INSTALL = ("site_one_install: packages", "site_one_install: test_oned")
NODES_GROUP = "nodes"


def parse_scale(text):
    """'2,4,8' -> [2, 4, 8]: node counts, sorted, each at least 1."""
    try:
        counts = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--scale wants node counts like {SCALE_DEFAULT}, not {text!r}") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"--scale wants node counts of at least 1, not {text!r}")
    return counts


def lsq_slope(points):
    """Least-squares slope of y against x over [(x, y), ...]; None without two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    return (sum((x - mean_x) * (y - mean_y) for x, y in points)
            / sum((x - mean_x) ** 2 for x, _ in points))


def scale_line(controller_cpu_s_per_node, rerun_s_at_8_hosts):
    """The last line of --scale; a figure that was not measured is n/a."""
    def fmt(value, spec):
        return "n/a" if value is None else format(value, spec)
    return (f"site_scale: controller_cpu_s_per_node={fmt(controller_cpu_s_per_node, '.2f')} "
            f"rerun_s_at_{SCALE_Y_HOSTS}_hosts={fmt(rerun_s_at_8_hosts, '.1f')}")


def _with_last_octet(address, octet):
    return address.rsplit(".", 1)[0] + f".{octet}"


def scaled_hosts(doc, count):
    """A hosts.yml document (the renumbered demo's) with its KVM nodes
    replaced by node1..node<count>, each a copy of the first node: node K at
    the first node's addresses with the last octet moved by K - 1 on every
    network, its container named like the first node's with K."""
    doc = copy.deepcopy(doc)
    nodes = doc["all"]["children"][NODES_GROUP]["hosts"]
    first = sorted(nodes)[0]
    template = nodes[first]
    base = int(template["site_address"].rsplit(".", 1)[1]) - 1
    stem = re.sub(r"\d+$", "", first)
    others = {hv["site_address"] for group in doc["all"]["children"].values()
              for name, hv in (group.get("hosts") or {}).items() if hv and name not in nodes}
    if base + count > 99:
        raise ValueError(f"{count} nodes from .{base + 1} would reach .{base + count}: past .99 "
                         f"(the site networks' VM addresses start at .100)")
    scaled = {}
    for k in range(1, count + 1):
        host = copy.deepcopy(template)
        host["demo_container"] = re.sub(r"\d+$", str(k), template["demo_container"])
        host["site_address"] = _with_last_octet(template["site_address"], base + k)
        host["site_network_addresses"] = {net: _with_last_octet(addr, base + k)
                                          for net, addr in template.get("site_network_addresses", {}).items()}
        if host["site_address"] in others:
            raise ValueError(f"{stem}{k}'s address {host['site_address']} is another host's")
        scaled[f"{stem}{k}"] = host
    nodes.clear()
    nodes.update(scaled)
    return doc


def host_results(tasks):
    """(run, skipped): the host results of ``tasks`` (json callback) that ran and that were skipped."""
    results = [r for t in tasks for r in t["hosts"].values()]
    skipped = sum(1 for r in results if r.get("skipped"))
    return len(results) - skipped, skipped


def task_costs(result):
    """{(play, task): [seconds, host results run]} of one site.yml run (json
    callback). A free-strategy play has one entry per host and task, a linear
    play one per task for all its hosts; seconds are their durations summed."""
    costs = {}
    for play in result["plays"]:
        for task in play["tasks"]:
            d = task["task"]["duration"]
            if "end" not in d:
                continue
            cost = costs.setdefault((play["play"]["name"], task["task"]["name"]), [0.0, 0])
            cost[0] += iso(d["end"]) - iso(d["start"])
            cost[1] += host_results([task])[0]
    return costs


def per_node_task_costs(runs):
    """runs: {nodes: site.yml json result}. Per (play, task): least-squares
    slopes over the node counts of its summed seconds and of its host
    results (a task missing from a run counts 0), most seconds per node first."""
    costs = {n: task_costs(result) for n, result in runs.items()}
    keys = sorted({k for c in costs.values() for k in c})
    rows = []
    for key in keys:
        seconds = lsq_slope([(n, c.get(key, [0.0, 0])[0]) for n, c in costs.items()])
        results = lsq_slope([(n, c.get(key, [0.0, 0])[1]) for n, c in costs.items()])
        if seconds is not None:
            rows.append((seconds, results, key[0], key[1]))
    return sorted(rows, key=lambda r: r[0], reverse=True)


def control_paths(addresses, user="root"):
    """The names Ansible's ssh connection gives its ControlPersist sockets
    (cp/<first 10 hex digits of sha1("<host>-<port>-<user>")>) for these
    hosts, port unset (None, as in the demo's inventory) or 22."""
    return {hashlib.sha1(f"{address}-{port}-{user}".encode()).hexdigest()[:10]
            for address in addresses for port in (None, 22)}


def per_node_play_results(runs):
    """runs: {nodes: site.yml json result}. Per play: least-squares slopes
    over the node counts of its host results run and skipped (each one a
    forked worker on the controller), most run per node first."""
    counts = {}
    for n, result in runs.items():
        for play in result["plays"]:
            name = play["play"]["name"]
            ran, skipped = host_results(play["tasks"])
            cur = counts.setdefault(name, {}).setdefault(n, [0, 0])
            cur[0] += ran
            cur[1] += skipped
    rows = []
    for name, per_n in counts.items():
        ran = lsq_slope([(n, per_n.get(n, [0, 0])[0]) for n in runs])
        skipped = lsq_slope([(n, per_n.get(n, [0, 0])[1]) for n in runs])
        if ran is not None:
            rows.append((ran, skipped, name))
    return sorted(rows, key=lambda r: (r[0], r[1]), reverse=True)


def ssh_masters(names):
    """{(pid, start time): CPU-s} of the ssh ControlPersist masters whose
    socket is one of ``names`` (control_paths). A master forks away from the
    ssh client that starts it, so no process waits for it and its CPU is not
    in this process's RUSAGE_CHILDREN; it renames itself
    "ssh: <socket path> [mux]"."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if len(title) < 3 or title[0] != "ssh:" or title[-1] != "[mux]" or Path(title[1]).name not in names:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # from field 3 (state) on
        found[(int(proc.name), fields[19])] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def scale_report(figures, reruns, failures, json_path=None, stopped=False):
    """Print the curve's table, notes and last line from its points
    (figures["scale"]) and each point's rerun json (reruns: {nodes: result})."""
    print("scale curve: the demo site (front-end on the test oned) with N KVM nodes, grown in turn; "
          "a no-change rerun of site.yml at each N" + (f" (stopped after {figures['scale'][-1]['nodes']} nodes)"
                                                       if stopped and figures["scale"] else ""))
    print(f"{'nodes':>5} {'hosts':>5} {'converge s':>10} {'rerun s':>8} {'controller CPU-s':>16} "
          f"{'(a-p / ssh)':>13} {'machine CPU-s':>13} {'host results':>12} {'changed':>7}  load at rerun")
    for p in figures["scale"]:
        print(f"{p['nodes']:>5} {p['hosts']:>5} {p['converge_s']:>10.1f} {p['rerun_s']:>8.1f} "
              f"{p['controller_cpu_s']:>16.1f} "
              f"{p['ansible_playbook_cpu_s']:>6.1f} /{p['ssh_masters_cpu_s']:>5.1f} "
              f"{p['machine_cpu_s']:>13.1f} {p['host_results']:>12} {p['rerun_changed']:>7}  "
              f"{' '.join(p['load_rerun'])}")
    slope = lsq_slope([(p["nodes"], p["controller_cpu_s"]) for p in figures["scale"]])
    wall_slope = lsq_slope([(p["nodes"], p["rerun_s"]) for p in figures["scale"]])
    machine_slope = lsq_slope([(p["nodes"], p["machine_cpu_s"]) for p in figures["scale"]])
    results_slope = lsq_slope([(p["nodes"], p["host_results"]) for p in figures["scale"]])
    at_y = next((p["rerun_s"] for p in figures["scale"] if p["hosts"] == SCALE_Y_HOSTS), None)
    note("controller CPU-s: ansible-playbook and its children (its workers and ssh clients) from "
         "getrusage(RUSAGE_CHILDREN) around the rerun, plus the ssh ControlPersist masters' CPU over the "
         "rerun from /proc/<pid>/stat (they fork away and are waited for by no one; a master that exits "
         "during the rerun is not counted); machine CPU-s: /proc/stat busy time of all "
         f"{os.cpu_count()} cores, the containers' and any other work on the machine included")
    if slope is not None:
        note(f"per added node (least-squares slopes): rerun wall {wall_slope:.2f} s, controller "
             f"{slope:.2f} CPU-s, machine {machine_slope:.2f} CPU-s, {results_slope:.1f} host results "
             f"(tasks run, not skipped), so {slope / results_slope if results_slope else 0:.3f} "
             "controller CPU-s per host result")
        rows = per_node_task_costs(reruns)
        figures["per_node_tasks"] = rows
        note("the 10 rerun tasks costing most per added node (slope of the task's seconds, summed over its "
             "per-host entries in free-strategy plays; wall seconds, waiting for a core included):")
        for seconds, results, play, name in rows[:10]:
            print(f"    {seconds:6.2f} s/node  {results:5.2f} results/node  {name}  ({play})")
        plays = per_node_play_results(reruns)
        figures["per_node_plays"] = plays
        note("host results per added node by play (run / skipped; each is a worker forked on the controller):")
        for ran, skipped, play in plays:
            if ran or skipped:
                print(f"    {ran:6.1f} / {skipped:5.1f}  {play}")
    note(f"y counts hosts in all: {SCALE_Y_HOSTS} hosts are the front-end, svc and "
         f"{SCALE_Y_HOSTS - 2} nodes" + ("" if at_y is not None else
                                           f" (not measured: add {SCALE_Y_HOSTS - 2} to --scale)"))
    figures.setdefault("load_end", load())
    note(f"load average (1/5/15 min): start {' '.join(figures['load_start'])}, end {' '.join(figures['load_end'])}")
    for failure in failures:
        note(failure)
    figures.update(controller_cpu_s_per_node=slope, rerun_s_at_8_hosts=at_y)
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=1))
    print(scale_line(slope, at_y))


def install_test_oned(inventory, log):
    """The scale runs' front-end runs the test oned (SCALE_ONE_INSTALL): the
    test setup installs it before site.yml, as the molecule scenarios do."""
    with open(log, "w") as out:
        proc = subprocess.run(["ansible-playbook", "-i", str(inventory), "products/test_oned/install.yml"],
                              cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"products/test_oned/install.yml failed (rc {proc.returncode}); see {log}")


def scale_points(args, counts, work, created, reruns, failures, figures, sockets):
    """Grow the site to each node count in turn: its new containers, a
    converge, then the timed rerun; each point appended to figures["scale"]."""
    for count in counts:
        inventory, hosts, networks, key = make_inventory(work, f"inventory-{count}", nodes=count)
        new = [h for h in hosts if h["container"] not in created]
        progress(f"{count} nodes: creating {', '.join(h['container'] for h in new)} (load {' '.join(load())})")
        create_site(new, networks, key)
        created += [h["container"] for h in new]
        install_test_oned(inventory, work / f"install-test-oned-{count}.log")
        load_converge = load()
        with CpuMeter() as converge_cpu:
            converge_s, converge = playbook(inventory, work / f"converge-{count}.json",
                                            work / f"converge-{count}.log")
        progress(f"{count} nodes: converge took {converge_s:.1f} s; rerun")
        load_rerun = load()
        masters0 = ssh_masters(sockets)
        with CpuMeter() as rerun_cpu:
            rerun_s, rerun = playbook(inventory, work / f"rerun-{count}.json", work / f"rerun-{count}.log")
        masters1 = ssh_masters(sockets)
        ssh_cpu = sum(cpu - masters0.get(k, 0.0) for k, cpu in masters1.items())
        changed = sum(s["changed"] for s in rerun["stats"].values())
        if changed:
            failures.append(f"NOT IDEMPOTENT: {count} nodes: the rerun changed {changed}")
        reruns[count] = rerun
        point = {"nodes": count, "hosts": len(hosts), "converge_s": converge_s,
                 "converge_changed": sum(s["changed"] for s in converge["stats"].values()),
                 "converge_cpu": {"busy": converge_cpu.busy, "controller": converge_cpu.controller},
                 "rerun_s": rerun_s, "rerun_changed": changed,
                 "controller_cpu_s": rerun_cpu.controller + ssh_cpu,
                 "ansible_playbook_cpu_s": rerun_cpu.controller, "ssh_masters_cpu_s": ssh_cpu,
                 "machine_cpu_s": rerun_cpu.busy, "machine_capacity_s": rerun_cpu.capacity,
                 "host_results": host_results([t for p in rerun["plays"] for t in p["tasks"]])[0],
                 "load_converge": load_converge, "load_rerun": load_rerun,
                 "rerun_stats": rerun["stats"]}
        figures["scale"].append(point)
        if args.json:  # the points so far, should the curve be stopped before its end
            Path(args.json).write_text(json.dumps(figures, indent=1))
        progress(f"{count} nodes: rerun {rerun_s:.1f} s, controller {point['controller_cpu_s']:.1f} CPU-s, "
                 f"changed {changed}")


def scale_main(args):
    counts = args.scale
    work = Path(tempfile.mkdtemp(prefix="bench-site-scale."))
    _, all_hosts, networks, key = make_inventory(work, "inventory-names", nodes=counts[-1])
    all_names = [h["container"] for h in all_hosts]
    net_names = [n["podman_network"] for n in networks]
    sockets = control_paths(h["address"] for h in all_hosts)  # the ssh masters of the bench's hosts
    cleanup(all_names, [])  # leftovers of an interrupted run
    figures = {"scale": [], "load_start": load(), "y_hosts": SCALE_Y_HOSTS}
    created, reruns, failures = [], {}, []
    ok = False
    try:
        create_networks(networks)
        try:
            scale_points(args, counts, work, created, reruns, failures, figures, sockets)
        except (SystemExit, KeyboardInterrupt):
            if figures["scale"]:
                scale_report(figures, reruns, failures + ["stopped before the end of the curve: the figures are "
                                                          "those of the points measured"], args.json, stopped=True)
            raise
        scale_report(figures, reruns, failures, args.json)
        ok = not failures
    finally:
        if args.keep:
            progress(f"kept containers {' '.join(created)}, networks {' '.join(net_names)}, work directory {work}")
        else:
            cleanup(all_names, net_names)
            if ok:
                shutil.rmtree(work, ignore_errors=True)
            else:
                progress(f"kept the work directory {work} (playbook logs)")
    return 0 if ok else 1


# --- cleanup ----------------------------------------------------------------

def cleanup(containers, networks):
    for name in containers:
        run(["podman", "rm", "-f", "-t", "2", name], check=False)
    for net in networks:
        run(["podman", "network", "rm", net], check=False)


def on_signal(signum, _frame):
    raise SystemExit(f"bench/site: stopped by signal {signum}, cleaning up")


# --- main -------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the containers, networks and work directory")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--scale", nargs="?", const=parse_scale(SCALE_DEFAULT), type=parse_scale,
                        metavar="N,N,...",
                        help=f"measure the scale curve instead: reruns with N KVM nodes (default {SCALE_DEFAULT})")
    args = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if run(["podman", "image", "exists", IMAGE], check=False).returncode != 0:
        run([str(REPO / "tools" / "container" / "build-image")])
    if args.scale:
        return scale_main(args)

    work = Path(tempfile.mkdtemp(prefix="bench-site."))
    inventory, hosts, networks, key = make_inventory(work)
    site_names = [h["container"] for h in hosts]
    apt_names = [f"bench-site-apt-{h['name']}" for h in hosts]
    net_names = [n["podman_network"] for n in networks]
    cleanup(site_names + apt_names, [])  # leftovers of an interrupted run
    figures = {"hosts": {h["name"]: h["groups"] for h in hosts}, "load_start": load()}
    ok = False
    try:
        progress(f"creating the site's containers {', '.join(site_names)} (load {' '.join(load())})")
        create_networks(networks)
        create_site(hosts, networks, key)
        before = {h["name"]: installed(h["container"]) for h in hosts}

        progress("(1) converge: ansible-playbook site.yml on the fresh containers")
        figures["load_converge"] = load()
        with CpuMeter() as converge_cpu:
            converge_s, converge = playbook(inventory, work / "converge.json", work / "converge.log")
        progress(f"converge took {converge_s:.1f} s; (2) rerun")
        figures["load_rerun"] = load()
        with CpuMeter() as rerun_cpu:
            rerun_s, rerun = playbook(inventory, work / "rerun.json", work / "rerun.log")
        rerun_changed = sum(s["changed"] for s in rerun["stats"].values())
        converge_changed = sum(s["changed"] for s in converge["stats"].values())

        after = {h["name"]: installed(h["container"]) for h in hosts}
        added = {n: {p: v for p, v in after[n].items() if before[n].get(p) != v} for n in before}
        removed = {n: sorted(set(before[n]) - set(after[n])) for n in before}
        # The second set starts with nothing running: the site's containers stop.
        for name in site_names:
            run(["podman", "stop", "-t", "5", name], check=False)

        progress(f"(3) apt floor on fresh containers {', '.join(apt_names)}")
        for index, (h, name) in enumerate(zip(hosts, apt_names)):
            start_container(name, h["name"],
                            [f"{networks[0]['podman_network']}:ip={APT_PREFIX}{APT_FIRST + index}"])
        wait_booted(apt_names)
        for h, name in zip(hosts, apt_names):
            if installed(name) != before[h["name"]]:
                raise RuntimeError(f"{name} does not start with the packages {h['container']} started with")
        figures["load_apt"] = load()
        with CpuMeter() as apt_cpu:
            apt_s, apt_times = apt_floor([(name, added[h["name"]]) for h, name in zip(hosts, apt_names)])
        missing = {}
        for h, name in zip(hosts, apt_names):
            now = installed(name)
            want = dict(before[h["name"]], **added[h["name"]])
            diff = sorted(p for p in set(want) | set(now) if want.get(p) != now.get(p))
            if diff:
                missing[h["name"]] = diff
        figures["load_end"] = load()

        # --- report ---------------------------------------------------------
        tasks = task_times(converge)
        apt_tasks = [t for t in tasks if set(t[3]) & PACKAGE_ACTIONS]
        updates = [(t, h) for p in converge["plays"] for t in p["tasks"] for h, r in t["hosts"].items()
                   if r.get("cache_updated") and r.get("action") in PACKAGE_ACTIONS]
        x = converge_s / apt_s
        print(f"demo site, {len(hosts)} hosts: " +
              ", ".join(f"{h['name']} ({','.join(g for g in h['groups'] if g != 'ungrouped')})" for h in hosts))
        print(f"{'step':<40}{'wall s':>9}  detail")
        print(f"{'(1) converge site.yml (fresh)':<40}{converge_s:>9.1f}  changed={converge_changed} "
              f"(sum over hosts); package tasks running during {busy_seconds(converge, PACKAGE_ACTIONS):.1f} s of it "
              f"({sum(t[0] for t in apt_tasks):.1f} s summed over tasks, which overlap)")
        print(f"{'(2) rerun site.yml':<40}{rerun_s:>9.1f}  changed={rerun_changed}")
        print(f"{'(3) apt-get update+install, parallel':<40}{apt_s:>9.1f}  "
              f"{sum(len(a) for a in added.values())} packages in all")
        for h, name in zip(hosts, apt_names):
            upd, ins = apt_times[name]
            print(f"{'    ' + h['name']:<40}{upd + ins:>9.1f}  update {upd:.1f} s, install {ins:.1f} s, "
                  f"{len(added[h['name']])} packages")
        note(f"CPU (all {os.cpu_count()} cores of this machine): converge {converge_cpu.text()}; "
             f"rerun {rerun_cpu.text()}; apt floor {apt_cpu.text(controller=False)}")
        # What no converge can beat here: it installs what the floor installs
        # and runs every task the rerun runs (the rerun is the same tasks
        # finding nothing to change), on the same cores.
        cores = os.cpu_count()
        least_s = (apt_cpu.busy + rerun_cpu.busy) / cores
        x_least = least_s / apt_s
        note(f"x's floor on this machine: (apt floor {apt_cpu.busy:.0f} + rerun {rerun_cpu.busy:.0f} busy CPU-s) "
             f"/ {cores} cores = {least_s:.1f} s at the least for a converge, x >= {x_least:.2f}, with every core "
             f"busy all the time and the changes themselves free")
        note(f"load average (1/5/15 min): start {' '.join(figures['load_start'])}, converge "
             f"{' '.join(figures['load_converge'])}, rerun {' '.join(figures['load_rerun'])}, apt "
             f"{' '.join(figures['load_apt'])}, end {' '.join(figures['load_end'])}")
        note("package index refreshes in the converge (apt cache_updated): "
             + (", ".join(f"{h} in '{t['task']['name']}'" for t, h in updates) or "none"))
        if any(removed.values()):
            note(f"packages the converge removed (not replayed by the floor): {removed}")
        if missing:
            note(f"FLOOR DIFFERS from the converged hosts' package sets: {missing}")
        top = sorted(tasks, key=lambda t: t[0], reverse=True)[:10]
        note("top 10 converge tasks (wall from task start to its last host result, json callback):")
        for secs, play, name, actions, ran in top:
            print(f"    {secs:7.1f} s  {name}  [{','.join(actions)}; {','.join(ran) or 'skipped'}] ({play})")
        figures.update(converge_s=converge_s, rerun_s=rerun_s, apt_s=apt_s, converge_changed=converge_changed,
                       rerun_changed=rerun_changed, apt_times=apt_times, added=added, removed=removed,
                       rerun_stats=rerun["stats"],
                       cpu={step: {"busy": m.busy, "capacity": m.capacity, "controller": m.controller}
                            for step, m in (("converge", converge_cpu), ("rerun", rerun_cpu), ("apt", apt_cpu))}, top_tasks=top, converge_tasks=tasks, converge_vs_apt=x, x_least=x_least, missing=missing)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1))
        print(f"site: converge_vs_apt={x:.2f} rerun_s={rerun_s:.1f} rerun_changed={rerun_changed}")
        ok = not missing
    finally:
        if args.keep:
            progress(f"kept containers {' '.join(site_names + apt_names)}, networks {' '.join(net_names)}, "
                     f"work directory {work}")
        else:
            cleanup(site_names + apt_names, net_names)
            if ok:
                shutil.rmtree(work, ignore_errors=True)
            else:
                progress(f"kept the work directory {work} (playbook logs)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
