#!/usr/bin/env python3
"""Registration benchmark: N hosts and V vnets against the test oned.

Variants, each against its own fresh test oned (products/test_oned, not
OpenNebula) on a free 127.0.0.1 port, each with a first run and a no-change
rerun:

  batch      opennebula_hosts (one task, N hosts) + opennebula_vnets (one task, V vnets)
  vnetloop   opennebula_vnets in a loop, one vnet per task (V vnets), for
             comparison with the batch
  single     opennebula_hosts in a loop, one host per task (M = --loop-hosts hosts)
  community  community.general.one_host in a loop (M hosts; needs pyone)
  floor      floor.py: plain xmlrpc.client, one pool read then one allocate per
             host (N) and one hostpool read per poll until they are MONITORED;
             one allocate per vnet (V, address range in the template) and one
             vnpool read per poll until they are READY. The batch modules wait
             the same way, so both sides do the same work.

The batch variant runs its two tasks (hosts, vnets) in one playbook, and the
floor both parts in one process, per phase; their rows are split afterwards
(vnets = the vnets task's duration / own seconds, hosts = the rest).

The modules run the way a site runs them: ansible-playbook on localhost,
connection local, the venv's python as interpreter, the repository's
ansible.cfg. The XML-RPC calls are counted from the test oned's own per-call
log (one line per call), not from the modules' counters: the benchmark sends
a marker call (an unknown method ``bench.mark.<phase>``, answered with fault
-506 and logged) between phases and counts the lines in between. Pool reads
are the ``one.*pool.info`` calls.

The last line is
  registration: batch_vs_community=<x> batch_vs_floor=<y> rerun_s=<z> rerun_pool_reads=<n>
x = community per-host rerun wall / batch per-host rerun wall (hosts only),
y = batch first-run wall / floor first-run wall (N hosts + V vnets each),
z = batch rerun wall (N hosts + V vnets), n = pool reads of that rerun.

``--real`` runs real_oned.py instead: the batch opennebula_hosts and the
floor against the REAL OpenNebula 7.4.0 oned (``make one-packages``); see
its docstring and bench/README.md.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV_BIN = REPO / ".venv" / "bin"
# The test oned: its package's source, run as `python3 -m stratuslab_test_oned`.
TEST_ONED_SRC = REPO / "products" / "test_oned" / "src"
FLOOR = HERE / "floor.py"
USER, PASSWORD = "oneadmin", "opennebula"
SESSION = "%s:%s" % (USER, PASSWORD)

# "<time> test-oned <client> <method>(<params>) -> <outcome> (<ms> ms)"
LOG_CALL = re.compile(r"^\S+ test-oned \S+ ([A-Za-z0-9_.]+)\(")
LOG_MS = re.compile(r"\(([0-9.]+) ms\)$")
MARK = "bench.mark."
VARIANTS = ("batch", "vnetloop", "single", "community", "floor")


def is_pool_read(method):
    return method.startswith("one.") and method.endswith("pool.info")


# --------------------------------------------------------------------------
# test oned
# --------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TestOned:
    """One fresh test oned on a free loopback port, its calls logged to a file."""

    def __init__(self, workdir, monitor_interval, vnet_driver_delay):
        self.workdir = workdir
        self.log_path = workdir / "test-oned.log"
        for _attempt in range(5):
            self.port = free_port()
            self.url = "http://127.0.0.1:%d/RPC2" % self.port
            cmd = [sys.executable, "-m", "stratuslab_test_oned", "--listen", "127.0.0.1:%d" % self.port,
                   "--state", str(workdir / "state.sqlite"),
                   "--monitor-interval", str(monitor_interval),
                   "--vnet-driver-delay", str(vnet_driver_delay)]
            self.log = open(self.log_path, "w")
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                p for p in (str(TEST_ONED_SRC), os.environ.get("PYTHONPATH")) if p))
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=self.log, env=env)
            if self._wait_ready():
                break
            self.log.close()
        else:
            raise RuntimeError("test oned did not start: %s" % self.log_path.read_text()[-2000:])
        self.phases = []

    def _wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False    # e.g. the port was taken meanwhile: try another one
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        return False

    def call(self, method, *params):
        answer = getattr(xmlrpc.client.ServerProxy(self.url), method)(SESSION, *params)
        if not answer[0]:
            raise RuntimeError("%s: %s" % (method, answer[1]))
        return answer[1]

    def mark(self, phase):
        """Log a marker line: calls after it (until the next one) belong to ``phase``."""
        try:
            getattr(xmlrpc.client.ServerProxy(self.url), MARK + phase)(SESSION)
        except xmlrpc.client.Fault:
            pass
        self.phases.append(phase)

    def stop(self):
        """Stop the server (SIGTERM flushes the log); return the calls per phase
        ({phase: Counter of methods}) and the test oned's busy seconds per phase
        (the sum of the per-call times it logs)."""
        self.mark("end")
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        text = self.log_path.read_text()
        if "log lines dropped" in text:
            raise RuntimeError("the test oned dropped log lines; the call counts would be wrong")
        counts, busy, current = {}, {}, None     # busy: phase -> {method: seconds}
        for line in text.splitlines():
            found = LOG_CALL.match(line)
            if not found:
                continue
            method = found.group(1)
            if method.startswith(MARK):
                current = method[len(MARK):]
                counts.setdefault(current, collections.Counter())
                busy.setdefault(current, collections.Counter())
            elif current is not None:
                counts[current][method] += 1
                took = LOG_MS.search(line)
                busy[current][method] += float(took.group(1)) / 1000 if took else 0.0
        missing = [p for p in self.phases if p not in counts]
        if missing:
            raise RuntimeError("marker lines missing from the test oned log: %s" % missing)
        return counts, busy


# --------------------------------------------------------------------------
# ansible-playbook
# --------------------------------------------------------------------------

def _task_seconds(duration):
    """A task's wall seconds from the json callback's ISO start/end times (None if missing)."""
    try:
        start, end = (datetime.datetime.fromisoformat(duration[k].replace("Z", "+00:00")) for k in ("start", "end"))
    except (KeyError, ValueError, AttributeError):
        return None
    return (end - start).total_seconds()


class Playbooks:
    def __init__(self, workdir, wrap=()):
        self.workdir = workdir
        self.wrap = list(wrap)      # a command prefix (real_oned.py's CPU-time wrapper)
        self.count = 0
        self.env = dict(os.environ)
        for var in ("ONE_XMLRPC", "ONE_AUTH", "ONE_URL", "ONE_USERNAME", "ONE_PASSWORD"):
            self.env.pop(var, None)
        self.env.update({
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOME": str(workdir / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": str(workdir / "ansible-remote"),
        })

    def run(self, name, tasks, play_vars):
        """Run one play on localhost; return (wall seconds, list of module results)."""
        self.count += 1
        play = {"name": name, "hosts": "localhost", "connection": "local", "gather_facts": False,
                "vars": play_vars, "tasks": tasks}
        book = self.workdir / ("%02d-%s.yml" % (self.count, name))
        book.write_text(json.dumps([play], indent=1))   # JSON is YAML
        cmd = self.wrap + [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,",
                           "-e", "ansible_python_interpreter=%s" % (VENV_BIN / "python"), str(book)]
        start = time.monotonic()
        proc = subprocess.run(cmd, cwd=str(REPO), env=self.env, capture_output=True, text=True,
                              timeout=3600)
        wall = time.monotonic() - start
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            raise RuntimeError("%s: ansible-playbook output is not JSON (rc %s)\n%s\n%s"
                               % (name, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        results, self.durations = [], []
        for task in data["plays"][0]["tasks"]:
            res = task["hosts"].get("localhost", {})
            results.extend(res["results"] if "results" in res else [res])
            self.durations.append(_task_seconds(task["task"].get("duration", {})))
        failed = [r for r in results if r.get("failed")]
        if proc.returncode != 0 or failed:
            detail = json.dumps(failed[0] if failed else {}, indent=1)[-3000:]
            raise RuntimeError("%s: ansible-playbook failed (rc %s)\n%s\n%s"
                               % (name, proc.returncode, detail, proc.stderr[-2000:]))
        return wall, results


# --------------------------------------------------------------------------
# variants
# --------------------------------------------------------------------------

def host_names(n):
    return ["node%05d.bench.example.org" % i for i in range(n)]


def vnet_specs(v):
    return [{"name": "bench-net-%03d" % i, "bridge": "brbench%d" % i,
             "ip": "10.%d.%d.10" % (i // 256, i % 256), "size": 200} for i in range(v)]


def vnet_module_specs(v):
    """The same vnets as opennebula_vnets entries."""
    return [{"name": s["name"], "vn_mad": "bridge", "bridge": s["bridge"],
             "address_ranges": [{"ip": s["ip"], "size": s["size"]}]} for s in vnet_specs(v)]


class Row:
    """One line of the table: a first run and a rerun of one variant part."""

    def __init__(self, variant, what, n):
        self.variant, self.what, self.n = variant, what, n
        self.wall = {}          # phase ("first" / "rerun") -> seconds
        self.calls = {}         # phase -> Counter of methods (counted from the test oned log)
        self.module_calls = {}  # phase -> sum of the modules' api_calls, when they return it
        self.changed = {}       # phase -> any task/item reported changed
        self.busy = {}          # phase -> seconds the test oned spent answering (from its log)
        self.busy_by_method = {}  # phase -> {method: seconds}
        self.results = {}       # phase -> the module results

    def total(self, phase):
        return sum(self.calls[phase].values())

    def pool_reads(self, phase):
        return sum(c for m, c in self.calls[phase].items() if is_pool_read(m))


def _record(row, phase, wall, results=None):
    row.wall[phase] = wall
    if results is not None:
        row.changed[phase] = any(r.get("changed") for r in results)
        api = [r["api_calls"] for r in results if "api_calls" in r]
        if api:
            row.module_calls[phase] = sum(api)


def _setup(oned):
    # community.general's one_host tests one.host.status's return value (the
    # host id) for truth, so it fails on host id 0. Every variant starts with
    # the same placeholder host taking id 0, before the first marker.
    oned.call("one.host.allocate", "bench-placeholder-id0", "dummy", "dummy", -1)


def connection(oned):
    return {"api_url": oned.url, "api_username": USER, "api_password": PASSWORD}


def run_ansible_variant(name, parts, opts, workdir, durations=None):
    """parts: list of (Row, tasks, play vars); each part is one ansible-playbook run per phase.
    ``durations`` (a dict) receives {phase: [task seconds]} of the last part."""
    vdir = workdir / name
    vdir.mkdir()
    oned = TestOned(vdir, opts.monitor_interval, opts.vnet_driver_delay)
    books = Playbooks(vdir)
    try:
        _setup(oned)
        for phase in ("first", "rerun"):
            for row, tasks_of, play_vars in parts:
                oned.mark("%s.%s" % (row.what, phase))
                wall, results = books.run("%s-%s-%s" % (name, row.what, phase), tasks_of(oned), play_vars)
                _record(row, phase, wall, results)
                row.results[phase] = results
                if durations is not None:
                    durations[phase] = books.durations
    finally:
        counts, busy = oned.stop()
    for row, _tasks, _vars in parts:
        for phase in ("first", "rerun"):
            row.calls[phase] = counts["%s.%s" % (row.what, phase)]
            row.busy[phase] = sum(busy["%s.%s" % (row.what, phase)].values())
            row.busy_by_method[phase] = busy["%s.%s" % (row.what, phase)]
    return [row for row, _t, _v in parts]


def _vnet_method(method):
    return method.startswith("one.vn")        # one.vn.* and one.vnpool.info


def variant_batch(opts, workdir):
    """Hosts and vnets are two tasks of ONE ansible-playbook run per phase, as
    site.yml runs them: one Ansible start-up, like the floor's one process.
    The rows are split afterwards: the vnets row is its task's duration (from
    the json callback), the hosts row the rest of the playbook's wall (so it
    includes the start-up); calls are split by method (one.vn*, the rest)."""
    hosts = Row("batch", "hosts", opts.hosts)
    vnets = Row("batch", "vnets", opts.vnets)
    both = Row("batch", "all", opts.hosts)

    def tasks(oned):
        out = [{"name": "register the hosts (batch)",
                "opennebula_hosts": dict(connection(oned), hosts="{{ bench_hosts }}")}]
        if opts.vnets:
            out.append({"name": "virtual networks (batch)",
                        "opennebula_vnets": dict(connection(oned), vnets="{{ bench_vnet_specs }}")})
        return out

    play_vars = {"bench_hosts": host_names(opts.hosts), "bench_vnet_specs": vnet_module_specs(opts.vnets)}
    durations = {}
    run_ansible_variant("batch", [(both, tasks, play_vars)], opts, workdir, durations=durations)
    rows = [hosts] + ([vnets] if opts.vnets else [])
    for phase in ("first", "rerun"):
        results = both.results[phase]
        vnet_s = durations[phase][1] if opts.vnets else 0.0
        if vnet_s is None:
            raise RuntimeError("the json callback gave no task duration; cannot split the batch rows")
        for row, res, wall in ((hosts, results[:1], both.wall[phase] - vnet_s), (vnets, results[1:], vnet_s)):
            if row not in rows:
                continue
            _record(row, phase, wall, res)
            is_vnet = row is vnets
            row.calls[phase] = collections.Counter(
                {m: c for m, c in both.calls[phase].items() if _vnet_method(m) == is_vnet})
            row.busy[phase] = sum(t for m, t in both.busy_by_method[phase].items() if _vnet_method(m) == is_vnet)
    return rows


def variant_vnetloop(opts, workdir):
    if not opts.vnets:
        return []
    vnets = Row("vnetloop", "vnets", opts.vnets)

    def vnet_tasks(oned):
        return [{"name": "virtual networks one by one",
                 "opennebula_vnets": dict(connection(oned), vnets=[dict(
                     name="{{ item.name }}", vn_mad="bridge", bridge="{{ item.bridge }}",
                     address_ranges=[{"ip": "{{ item.ip }}", "size": "{{ item.size }}"}])]),
                 "loop": "{{ bench_vnets }}", "loop_control": {"label": "{{ item.name }}"}}]

    return run_ansible_variant("vnetloop", [(vnets, vnet_tasks, {"bench_vnets": vnet_specs(opts.vnets)})],
                               opts, workdir)


def _loop_variant(name, module, args, opts, workdir):
    """``module`` in a loop over the M hosts; ``args`` gives it the host (``item``) and its other options."""
    row = Row(name, "hosts", opts.loop_hosts)

    def tasks(oned):
        return [{"name": "register the hosts one by one", module: dict(connection(oned), **args),
                 "loop": "{{ bench_hosts }}"}]

    return run_ansible_variant(name, [(row, tasks, {"bench_hosts": host_names(opts.loop_hosts)})], opts, workdir)


def variant_single(opts, workdir):
    # one task per host, each waiting for MONITORED (opennebula_hosts' default),
    # as community.general's one_host does: compare alike.
    return _loop_variant("single", "opennebula_hosts", {"hosts": ["{{ item }}"]}, opts, workdir)


def variant_community(opts, workdir):
    return _loop_variant("community", "community.general.one_host",
                         {"name": "{{ item }}", "im_mad_name": "kvm", "vmm_mad_name": "kvm"}, opts, workdir)


def variant_floor(opts, workdir):
    """One floor.py process per phase doing the hosts then the vnets, like the
    batch's one playbook; rows split the same way (vnets = their own seconds)."""
    vdir = workdir / "floor"
    vdir.mkdir()
    spec = vdir / "spec.json"
    spec.write_text(json.dumps({"hosts": host_names(opts.hosts), "vnets": vnet_specs(opts.vnets)}))
    rows = [Row("floor", "hosts", opts.hosts)] + ([Row("floor", "vnets", opts.vnets)] if opts.vnets else [])
    oned = TestOned(vdir, opts.monitor_interval, opts.vnet_driver_delay)
    outputs = {}
    try:
        _setup(oned)
        for phase in ("first", "rerun"):
            oned.mark("all.%s" % phase)
            cmd = [sys.executable, str(FLOOR), "--url", oned.url, "--session", SESSION,
                   "--spec", str(spec), "--what", "all"]
            start = time.monotonic()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            wall = time.monotonic() - start
            if proc.returncode != 0:
                raise RuntimeError("floor failed: %s" % proc.stderr[-2000:])
            outputs[phase] = (wall, json.loads(proc.stdout))
    finally:
        counts, busy = oned.stop()
    for phase in ("first", "rerun"):
        wall, out = outputs[phase]
        vnet_s = out["seconds"].get("vnets", 0.0)
        for row in rows:
            is_vnet = row.what == "vnets"
            _record(row, phase, vnet_s if is_vnet else wall - vnet_s)
            row.calls[phase] = collections.Counter(
                {m: c for m, c in counts["all.%s" % phase].items() if _vnet_method(m) == is_vnet})
            row.busy[phase] = sum(t for m, t in busy["all.%s" % phase].items() if _vnet_method(m) == is_vnet)
            row.module_calls[phase] = sum(c for m, c in out["by_method"].items() if _vnet_method(m) == is_vnet)
    return rows


RUNNERS = {"batch": variant_batch, "vnetloop": variant_vnetloop, "single": variant_single,
           "community": variant_community, "floor": variant_floor}


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def _find(rows, variant, what):
    for row in rows:
        if row.variant == variant and row.what == what:
            return row
    return None


def _sum_wall(rows, phase):
    return sum(r.wall[phase] for r in rows) if rows else None


def figures(rows):
    batch_hosts, community = _find(rows, "batch", "hosts"), _find(rows, "community", "hosts")
    batch = [r for r in rows if r.variant == "batch"]
    floor = [r for r in rows if r.variant == "floor"]
    out = {"batch_vs_community": None, "batch_vs_floor": None, "rerun_s": None, "rerun_pool_reads": None}
    if batch_hosts and community:
        out["batch_vs_community"] = ((community.wall["rerun"] / community.n)
                                     / (batch_hosts.wall["rerun"] / batch_hosts.n))
    if batch and floor:
        out["batch_vs_floor"] = _sum_wall(batch, "first") / _sum_wall(floor, "first")
    if batch:
        out["rerun_s"] = _sum_wall(batch, "rerun")
        out["rerun_pool_reads"] = sum(r.pool_reads("rerun") for r in batch)
    return out


def _fmt(value, spec):
    return "n/a" if value is None else spec % value


def last_line(fig):
    return ("registration: batch_vs_community=%s batch_vs_floor=%s rerun_s=%s rerun_pool_reads=%s"
            % (_fmt(fig["batch_vs_community"], "%.0f"), _fmt(fig["batch_vs_floor"], "%.2f"),
               _fmt(fig["rerun_s"], "%.1f"), _fmt(fig["rerun_pool_reads"], "%d")))


LABELS = {("batch", "hosts"): "(a) batch opennebula_hosts",
          ("batch", "vnets"): "(a) batch opennebula_vnets",
          ("vnetloop", "vnets"): "(a') opennebula_vnets loop",
          ("single", "hosts"): "(b) opennebula_hosts loop",
          ("community", "hosts"): "(c) c.g. one_host loop",
          ("floor", "hosts"): "(d) floor hosts",
          ("floor", "vnets"): "(d) floor vnets"}


def report(rows, opts, elapsed):
    print("registration benchmark against the test oned (products/test_oned, the project's test oned, not OpenNebula);"
          " test oned --monitor-interval %gs --vnet-driver-delay %gs; each variant on its own fresh test oned"
          % (opts.monitor_interval, opts.vnet_driver_delay))
    print("calls counted from the test oned's per-call log; pool reads = one.*pool.info;"
          " ansible-playbook on localhost (connection local, %s)" % (VENV_BIN / "python"))
    print()
    head = ("variant", "N", "first s", "first calls", "rerun s", "rerun calls", "rerun pool reads", "per host rerun ms")
    lines = []
    for row in rows:
        per_host = "%.2f" % (1000 * row.wall["rerun"] / row.n) if row.what == "hosts" and row.n else "-"
        lines.append((LABELS[(row.variant, row.what)], str(row.n), "%.2f" % row.wall["first"],
                      str(row.total("first")), "%.2f" % row.wall["rerun"], str(row.total("rerun")),
                      str(row.pool_reads("rerun")), per_host))
    for variant in ("batch", "floor"):
        part = [r for r in rows if r.variant == variant]
        if len(part) > 1:
            lines.append(("    %s total" % variant, "+".join(str(r.n) for r in part),
                          "%.2f" % _sum_wall(part, "first"), str(sum(r.total("first") for r in part)),
                          "%.2f" % _sum_wall(part, "rerun"), str(sum(r.total("rerun") for r in part)),
                          str(sum(r.pool_reads("rerun") for r in part)), "-"))
    print_table(head, lines)
    notes = []
    for row in rows:
        if row.variant != "floor" and row.changed.get("rerun"):
            notes.append("NOT IDEMPOTENT: %s reported changed on the no-change rerun" % LABELS[(row.variant, row.what)])
        if row.variant != "floor" and not row.changed.get("first"):
            notes.append("%s reported no change on the first run" % LABELS[(row.variant, row.what)])
        for phase in ("first", "rerun"):
            own = row.module_calls.get(phase)
            if own is not None and own != row.total(phase):
                notes.append("call count mismatch: %s %s run: the test oned logged %d calls, the module(s) reported %d"
                             % (LABELS[(row.variant, row.what)], phase, row.total(phase), own))
    for row in rows:
        if row.variant == "batch":
            notes.append("%s first-run calls by method: %s" % (
                LABELS[(row.variant, row.what)],
                ", ".join("%s=%d" % kv for kv in sorted(row.calls["first"].items()))))
    notes.append("test oned busy time (sum of its logged per-call times; grows when the machine is loaded),"
                 " first run: " + ", ".join("%s %.2f s" % (LABELS[(r.variant, r.what)], r.busy["first"])
                                            for r in rows if r.variant in ("batch", "floor")))
    notes.append("(a) hosts and vnets are two tasks of one ansible-playbook run per phase (as site.yml runs"
                 " them) and the floor does both in one process per phase: the hosts rows include the start-up,"
                 " the vnets rows are the vnets' own seconds; calls split by method (one.vn* = vnets)")
    notes.append("the other module rows are one ansible-playbook run each (start-up included);"
                 " waits are included on both sides: (a), (b) (wait: true), (c) and the floor wait for"
                 " MONITORED hosts, (a), (a') and the floor for READY vnets, polling a pool with the same"
                 " schedule (50 ms doubling up to the module's poll_interval)")
    fig = figures(rows)
    b, c = _find(rows, "batch", "hosts"), _find(rows, "community", "hosts")
    if b and c:
        notes.append("x = (c) %.1f ms/host (rerun, N=%d) / (a) %.3f ms/host (rerun, N=%d)"
                     % (1000 * c.wall["rerun"] / c.n, c.n, 1000 * b.wall["rerun"] / b.n, b.n))
    batch = [r for r in rows if r.variant == "batch"]
    floor = [r for r in rows if r.variant == "floor"]
    if batch and floor:
        notes.append("y = (a) first run %.2f s / (d) first run %.2f s, N=%d hosts + %d vnets each;"
                     " hosts only: %.2f"
                     % (_sum_wall(batch, "first"), _sum_wall(floor, "first"), opts.hosts, opts.vnets,
                        batch[0].wall["first"] / floor[0].wall["first"]))
    if batch:
        notes.append("z and n = the (a) no-change rerun, N=%d hosts + %d vnets (hosts alone: %.2f s, %d pool reads)"
                     % (opts.hosts, opts.vnets, batch[0].wall["rerun"], batch[0].pool_reads("rerun")))
    return print_end(notes, fig, elapsed)


def to_json(rows, fig, line, opts, elapsed):
    return {"options": {"hosts": opts.hosts, "loop_hosts": opts.loop_hosts, "vnets": opts.vnets,
                        "monitor_interval": opts.monitor_interval,
                        "vnet_driver_delay": opts.vnet_driver_delay},
            "elapsed_s": elapsed, "figures": fig, "last_line": line,
            "rows": [{"variant": r.variant, "what": r.what, "n": r.n, "wall": r.wall,
                      "calls": {p: dict(c) for p, c in r.calls.items()},
                      "pool_reads": {p: r.pool_reads(p) for p in r.calls},
                      "oned_busy": r.busy, "module_calls": r.module_calls, "changed": r.changed}
                     for r in rows]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Registration benchmark against the project's test oned.")
    parser.add_argument("--hosts", type=int, help="N hosts for the batch and the floor (default 2000)")
    parser.add_argument("--loop-hosts", type=int, help="M hosts for the per-host loops (default 50)")
    parser.add_argument("--vnets", type=int, help="V vnets with an address range each (default 50)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a test: N=20, M=3, V=2 (explicit sizes win)")
    parser.add_argument("--variants",
                        help="comma-separated subset of %s (default: all; with --quick all but vnetloop)"
                        % ",".join(VARIANTS))
    parser.add_argument("--monitor-interval", type=float, default=0.2,
                        help="test oned --monitor-interval in seconds (default 0.2)")
    parser.add_argument("--vnet-driver-delay", type=float, default=0.1,
                        help="test oned --vnet-driver-delay in seconds (default 0.1, its own default)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, playbooks)")
    parser.add_argument("--real", action="store_true",
                        help="against the REAL OpenNebula oned instead (real_oned.py; see its --help)")
    opts = parser.parse_args(argv)
    defaults = (20, 3, 2) if opts.quick else (2000, 50, 50)
    for attr, default in zip(("hosts", "loop_hosts", "vnets"), defaults):
        if getattr(opts, attr) is None:
            setattr(opts, attr, default)
    if opts.hosts < 1 or opts.loop_hosts < 1 or opts.vnets < 0:
        parser.error("--hosts and --loop-hosts must be >= 1, --vnets >= 0")
    if opts.variants is None:
        opts.variants = ",".join(v for v in VARIANTS if not (opts.quick and v == "vnetloop"))
    opts.variants = [v.strip() for v in opts.variants.split(",") if v.strip()]
    unknown = set(opts.variants) - set(VARIANTS)
    if unknown:
        parser.error("unknown variants: %s" % ", ".join(sorted(unknown)))
    return opts


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    if "--real" in args:
        # against the real OpenNebula oned: bench/registration/real_oned.py
        import real_oned
        return real_oned.main(args)
    opts = parse_args(argv)
    if not (VENV_BIN / "ansible-playbook").exists():
        raise SystemExit("bench: %s not found (the project venv is needed)" % (VENV_BIN / "ansible-playbook"))
    workdir = Path(tempfile.mkdtemp(prefix="bench-registration-"))
    start = time.monotonic()
    rows = []
    try:
        for variant in VARIANTS:
            if variant in opts.variants:
                print("bench: running %s ..." % variant, file=sys.stderr, flush=True)
                rows.extend(RUNNERS[variant](opts, workdir))
    except RuntimeError as exc:
        print("bench: %s\n(work directory kept: %s)" % (exc, workdir), file=sys.stderr)
        return 1
    elapsed = time.monotonic() - start
    fig, line = report(rows, opts, elapsed)
    return finish(opts, workdir, lambda: to_json(rows, fig, line, opts, elapsed))


def print_end(notes, fig, elapsed, last=None):
    """Print the notes, the total time and the figures' last line (``last``,
    by default last_line); (fig, that line)."""
    for note in notes + ["total benchmark time %.1f s" % elapsed]:
        print("note: " + note)
    line = (last or last_line)(fig)
    print(line)
    return fig, line


def print_table(head, lines):
    """Print ``head`` and ``lines`` (tuples of strings) as a table: the first
    column aligned left, the others right; then an empty line."""
    widths = [max(len(x[i]) for x in [head] + lines) for i in range(len(head))]
    fmt = "  ".join("%-*s" if i == 0 else "%*s" for i in range(len(head)))
    for line in [head] + lines:
        print(fmt % tuple(v for pair in zip(widths, line) for v in pair))
    print()


def finish(opts, workdir, results):
    """Write ``results()`` as JSON when --json asks, then keep (--keep) or remove the work directory."""
    if opts.json:
        Path(opts.json).write_text(json.dumps(results(), indent=1))
    if opts.keep:
        print("bench: work directory kept: %s" % workdir, file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
