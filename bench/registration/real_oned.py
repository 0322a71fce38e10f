#!/usr/bin/env python3
"""Registration benchmark, real mode: the batch module and the floor against
the REAL OpenNebula 7.4.0 oned (``bench/registration/run --real``).

The oned is the self-contained tree that ``make one-packages``
(tools/opennebula/build-packages) installs, started by
tools/opennebula/run-oned-tree. Two sides, each against its OWN fresh oned
instance (a new directory: empty database, same configuration), started
and left to settle the same way, so they face the same starting state:

  batch  opennebula_hosts, one task with the N hosts, driven by
         ansible-playbook exactly like the test-oned benchmark's batch
         variant (localhost, connection local, the venv's python, the
         repository's ansible.cfg), im_mad/vmm_mad dummy;
  floor  floor.py --what hosts: plain xmlrpc.client, one hostpool read, one
         one.host.allocate per host (dummy drivers).

By default the two first runs start at the same moment, so that both face
the same machine load (on a shared machine the load drifts by a factor of
several within minutes); then the batch rerun and the floor rerun, one after
the other, alone. --sequential runs one side after the other instead.

Neither side waits for the hosts to be MONITORED (the module with wait:
false, floor.py --no-wait): with the dummy IM, monitord starts one resident
Ruby monitoring client per host, 15 at a time, each start taking at least
10 s, so 2,000 monitored hosts would take over 20 minutes and some 50 GB.
With --wait both wait, with the same poll schedule (50 ms doubling up to
2 s, the module's poll_interval); for small N only. Either way monitord
starts monitoring the new hosts in the background while the runs go on
(the dummy probes call one.vmpool.info every 5 s per client), for both
sides alike; the processes an instance leaves are stopped with it.

The XML-RPC calls are counted from oned's own log: at DEBUG_LEVEL 3 (what
run-oned-tree configures) it logs one "<method> invoked" line per request;
the lines written during each phase (by file offset) are counted, the
sides' methods (one.host.*, one.hostpool.info) apart from the probes'. The
clients' own counts (the floor's counter, the module's api_calls) are
compared with them. The CPU seconds of each side's processes and of each
oned are measured too.

The last line is
  registration_real: batch_vs_floor=<y> rerun_s=<z>
y = batch first-run wall / floor first-run wall, z = batch rerun wall (the
medians over --rounds when there are several).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
import xmlrpc.client
from pathlib import Path

import bench as common   # bench/registration/bench.py: Playbooks, host_names, VENV_BIN

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUN_ONED_TREE = REPO / "tools" / "opennebula" / "run-oned-tree"
# A block of free ports for run-oned-tree (PORT to PORT+3).
sys.path.insert(0, str(REPO / "tools"))
from free_ports import free_port_block  # noqa: E402
FLOOR = HERE / "floor.py"
run_oned_tree = RUN_ONED_TREE   # the copy the instances start from (main())
CACHE = Path(os.environ.get("ONE_PACKAGES_CACHE", "/var/cache/stratuslab-test/opennebula"))
DEFAULT_TREE = CACHE / "current" / "tree"
USER = "oneadmin"
PASSWORD = "bench-registration"
SESSION = "%s:%s" % (USER, PASSWORD)

# "Fri Dec  6 11:30:00 2024 [Z0][ReM][D]: Req:1234 UID:0 IP:127.0.0.1 one.host.allocate invoked , ..."
LOG_INVOKED = re.compile(r"^(.{24}) \[Z\d+\]\[ReM\]\[D\]: Req:\d+ UID:\S+ IP:\S+ (one\.[A-Za-z0-9_.]+) invoked")
LOG_TIME = "%a %b %d %H:%M:%S %Y"


def is_pool_read(method):
    return method.startswith("one.") and method.endswith("pool.info")


def is_ours(method):
    """The methods the two sides call (one.host.*, one.hostpool.info). oned also
    answers the dummy monitoring probes, which call one.vmpool.info (and
    one.vm.info per VM) every few seconds from 127.0.0.1 as oneadmin too: those
    are counted apart as background."""
    return method.startswith("one.host.") or method == "one.hostpool.info"


# The stock dummy IM keeps one pid file per host ID in the host-wide /tmp
# (/tmp/one-monitord-<host id>.pid) and its beacon probe kills every monitoring
# client of that host ID and name but the one in the file, so two instances with
# the same host IDs (the two sides, or another session's test oned) kill each
# other's clients. Each instance therefore gets a private /tmp: run-oned-tree
# starts oned in a mount namespace of its own with a tmpfs on /tmp (oned, its
# drivers and their children inherit it). Its directory is outside /tmp, and
# so are the copy of run-oned-tree it runs (main() puts one in the work
# directory) and its working directory: a checkout under /tmp (git clone .
# /tmp/fresh) is hidden by that mount.
ISOLATE = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
           'mount -t tmpfs -o size=256m bench-registration-tmp /tmp && exec "$0" "$@"']
WORK_BASE = "/var/tmp"


def can_isolate():
    try:
        return subprocess.run(ISOLATE + ["true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class RealOned:
    """One fresh real oned instance (run-oned-tree) in its own directory."""

    def __init__(self, tree, directory, isolate=True):
        self.tree, self.dir, self.isolated = tree, directory, isolate
        self.log_path = directory / "var" / "oned.log"
        last = ""
        start = time.monotonic()
        for _attempt in range(3):
            self.port = free_port_block()
            cmd = [str(run_oned_tree), "start", str(tree), str(directory), str(self.port), PASSWORD]
            proc = subprocess.run((ISOLATE if isolate else []) + cmd, capture_output=True, text=True, timeout=180,
                                  cwd=str(directory.parent))
            if proc.returncode == 0:
                self.pid = int(proc.stdout.split()[-1])
                break
            last = proc.stdout[-1500:] + proc.stderr[-1500:]
            if (directory / "oned.pid").exists():
                subprocess.run([str(RUN_ONED_TREE), "stop", str(directory)], capture_output=True, timeout=120)
            shutil.rmtree(directory, ignore_errors=True)   # start again from an empty database
        else:
            raise RuntimeError("run-oned-tree start failed 3 times:\n%s" % last)
        self.start_s = time.monotonic() - start
        self.url = "http://127.0.0.1:%d/RPC2" % self.port

    def call(self, method, *params):
        answer = getattr(xmlrpc.client.ServerProxy(self.url), method)(SESSION, *params)
        if not answer[0]:
            raise RuntimeError("%s: %s" % (method, answer[1]))
        return answer[1]

    def offset(self):
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def calls_between(self, begin, end):
        """The requests oned logged between two log offsets: (Counter of the sides'
        methods, Counter of the others (background), {method: (first, last) log time
        in epoch seconds, 1 s resolution})."""
        with open(self.log_path, "rb") as log:
            log.seek(begin)
            text = log.read(end - begin).decode("utf-8", "replace")
        counts, background, window = collections.Counter(), collections.Counter(), {}
        for line in text.splitlines():
            found = LOG_INVOKED.match(line)
            if not found:
                continue
            method = found.group(2)
            if not is_ours(method):
                background[method] += 1
                continue
            counts[method] += 1
            try:
                stamp = time.mktime(time.strptime(found.group(1), LOG_TIME))
            except ValueError:
                continue
            first, _last = window.get(method, (stamp, stamp))
            window[method] = (first, stamp)
        return counts, background, window

    def settle(self, seconds):
        """Wait until oned's log has been quiet for ``seconds`` (at most 10 x that):
        the fresh instance's own start-up work (datastore monitoring...) is over."""
        deadline = time.monotonic() + 10 * seconds
        size, quiet_since = self.offset(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now_size = self.offset()
            if now_size != size:
                size, quiet_since = now_size, time.monotonic()
            elif time.monotonic() - quiet_since >= seconds:
                return

    def cpu_seconds(self):
        """CPU seconds (user + system) used so far by the oned process, all its threads."""
        try:
            with open("/proc/%d/stat" % self.pid) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def own_processes(self, marker=""):
        """Pids of the processes running from this instance's directory (its drivers, and
        the dummy monitoring clients monitord starts, one per host, in their own session)."""
        needle = str(self.dir).encode() + b"/"
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as fh:
                    cmdline = fh.read()
            except OSError:
                continue
            if needle in cmdline and marker.encode() in cmdline:
                pids.append(int(entry))
        return pids

    def stop(self):
        """Stop oned, then what it left running: run-oned-tree stops oned and its
        drivers, but the dummy IM's per-host monitoring clients (monitord-client.rb,
        started in their own session) outlive it."""
        subprocess.run([str(RUN_ONED_TREE), "stop", str(self.dir)], capture_output=True, timeout=120)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.own_processes()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            if not pids:
                return
            time.sleep(1)


class Side:
    """One side (batch or floor) of one round: first run and rerun."""

    def __init__(self, name, n):
        self.name, self.n = name, n
        self.wall = {}          # phase -> seconds (the whole ansible-playbook / floor.py process)
        self.own = {}           # phase -> the task's duration (json callback) / floor.py's own seconds
        self.client_cpu = {}    # phase -> CPU seconds of ansible-playbook and the module / of floor.py
        self.oned_cpu = {}      # phase -> CPU seconds of the oned process (its threads; not its drivers)
        self.calls = {}         # phase -> Counter of methods, from oned.log (the sides' methods only)
        self.background = {}    # phase -> Counter of the other methods oned logged meanwhile (monitoring probes)
        self.window = {}        # phase -> {method: (first, last) log time}
        self.client_calls = {}  # phase -> the module's api_calls / the floor's counter
        self.changed = {}       # phase -> the module reported changed (batch only)
        self.parts = {}         # phase -> floor.py's {allocate, wait} seconds
        self.summary = {}       # phase -> the module's summary (batch only)
        self.start_s = None     # seconds run-oned-tree took to start the instance
        self.pool_read_s = None  # median of 3 timed hostpool reads at N hosts, after the phases
        self.version = None     # one.system.version
        self.monitor_clients = {}  # phase -> dummy monitoring clients (monitord-client.rb) running at its end
        self.load = None        # 1-minute load average when the side started its first run

    def total(self, phase):
        return sum(self.calls[phase].values())

    def pool_reads(self, phase):
        return sum(c for m, c in self.calls[phase].items() if is_pool_read(m))

    def allocate_window(self, phase):
        first_last = self.window[phase].get("one.host.allocate")
        return None if first_last is None else first_last[1] - first_last[0]


# Runs a command and writes the CPU seconds (user + system) of it and of the
# descendants it waited for (ansible-playbook's workers and the module; floor.py)
# to the file given first: ``python -S -c CPU_WRAP FILE cmd...``. Per command,
# so it also works when the two sides run at once.
CPU_WRAP = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_pid, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write("%.3f" % (usage.ru_utime + usage.ru_stime))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def cpu_wrap(cpu_file):
    return [sys.executable, "-S", "-c", CPU_WRAP, str(cpu_file)]


def read_cpu(cpu_file):
    try:
        return float(Path(cpu_file).read_text())
    except (OSError, ValueError):
        return None


class SideRun:
    """One side of one round against its own fresh real oned instance."""

    def __init__(self, name, opts, workdir, round_no):
        self.opts = opts
        self.side = Side(name, opts.hosts)
        self.vdir = workdir / ("r%d-%s" % (round_no, name))
        self.vdir.mkdir()
        self.cpu_file = self.vdir / "cpu"
        self.oned = None

    def start(self):
        self.oned = RealOned(self.opts.tree, self.vdir / "one", isolate=self.opts.isolate)
        self.side.start_s = self.oned.start_s
        self.side.version = self.oned.call("one.system.version")

    def settle(self):
        self.oned.settle(self.opts.settle)
        self.side.load = os.getloadavg()[0]

    def phase(self, phase):
        """Run one phase and record what oned logged and the CPU seconds spent meanwhile
        by the side's processes (ansible-playbook and the module, or floor.py) and by
        the oned process itself."""
        side, oned = self.side, self.oned
        begin, oned0 = oned.offset(), oned.cpu_seconds()
        side.wall[phase] = self.run(phase)
        side.client_cpu[phase] = read_cpu(self.cpu_file)
        side.oned_cpu[phase] = oned.cpu_seconds() - oned0
        side.calls[phase], side.background[phase], side.window[phase] = oned.calls_between(begin, oned.offset())
        side.monitor_clients[phase] = len(oned.own_processes("monitord-client.rb"))

    def finish(self):
        """After the phases: time a pool read, stop the instance, remove its directory
        (unless --keep)."""
        self.side.pool_read_s = time_pool_read(self.oned)
        self.stop()
        if not self.opts.keep:
            shutil.rmtree(self.vdir, ignore_errors=True)

    def stop(self):
        """Stop the instance (its directory stays: on a failure, for its logs)."""
        if self.oned is not None:
            self.oned.stop()
            self.oned = None


class BatchRun(SideRun):
    def run(self, phase):
        opts, oned = self.opts, self.oned
        books = common.Playbooks(self.vdir, wrap=cpu_wrap(self.cpu_file))
        books.count = {"first": 0, "rerun": 1}[phase]
        args = {"api_url": oned.url, "api_username": USER, "api_password": PASSWORD,
                "hosts": "{{ bench_hosts }}", "im_mad": "dummy", "vmm_mad": "dummy",
                "wait": opts.wait, "wait_timeout": opts.wait_timeout}
        tasks = [{"name": "register the hosts (batch)", "opennebula_hosts": args}]
        wall, results = books.run("batch-hosts-%s" % phase, tasks, {"bench_hosts": common.host_names(opts.hosts)})
        side = self.side
        side.own[phase] = books.durations[0]
        res = results[0]
        side.changed[phase] = bool(res.get("changed"))
        side.client_calls[phase] = res.get("api_calls")
        side.summary[phase] = res.get("summary")
        return wall


class FloorRun(SideRun):
    def run(self, phase):
        opts, oned = self.opts, self.oned
        spec = self.vdir / "spec.json"
        spec.write_text(json.dumps({"hosts": common.host_names(opts.hosts)}))
        cmd = cpu_wrap(self.cpu_file) + [
            sys.executable, str(FLOOR), "--url", oned.url, "--session", SESSION, "--spec", str(spec),
            "--what", "hosts", "--im-mad", "dummy", "--vmm-mad", "dummy",
            "--wait-timeout", str(opts.wait_timeout)] + ([] if opts.wait else ["--no-wait"])
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=opts.wait_timeout + 3600)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise RuntimeError("floor failed: %s" % proc.stderr[-2000:])
        out = json.loads(proc.stdout)
        side = self.side
        side.own[phase] = out["seconds"]["hosts"]
        side.parts[phase] = {"allocate": out["seconds"].get("hosts_allocate"),
                             "wait": out["seconds"].get("hosts_wait")}
        side.client_calls[phase] = out["calls"]
        return wall


RUNS = {"batch": BatchRun, "floor": FloorRun}


def run_round(opts, workdir, round_no):
    """One round: each side against its own fresh oned. By default both instances
    are started and settled, then both first runs go at the same moment (the same
    machine load for both), then the reruns one after the other. --sequential: one
    side after the other, first run then rerun each; the order alternates between
    rounds."""
    order = ("floor", "batch") if round_no % 2 else ("batch", "floor")
    runs = {name: RUNS[name](name, opts, workdir, round_no) for name in order}
    try:
        if opts.sequential:
            for name in order:
                print("bench: round %d: %s against a fresh real oned ..." % (round_no, name),
                      file=sys.stderr, flush=True)
                run = runs[name]
                run.start()
                run.settle()
                run.phase("first")
                run.phase("rerun")
                run.finish()
        else:
            print("bench: round %d: both first runs at once, each against its own fresh real oned ..." % round_no,
                  file=sys.stderr, flush=True)
            for name in order:
                runs[name].start()
            for name in order:
                runs[name].settle()
            errors = []

            def first(run):
                try:
                    run.phase("first")
                except Exception as exc:   # re-raised below, in the main thread
                    errors.append(exc)
            threads = [threading.Thread(target=first, args=(runs[name],)) for name in order]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
            for name in order:
                runs[name].phase("rerun")
            for name in order:
                runs[name].finish()
    finally:
        for run in runs.values():
            run.stop()
    rnd = {"order": order}
    rnd.update((name, run.side) for name, run in runs.items())
    return rnd


def time_pool_read(oned, reads=3):
    """Median seconds of a one.hostpool.info call and its parse, as a client sees it."""
    times = []
    for _ in range(reads):
        start = time.monotonic()
        ET.fromstring(oned.call("one.hostpool.info"))
        times.append(time.monotonic() - start)
    return statistics.median(times)


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def figures(rounds):
    batch_first = median(r["batch"].wall["first"] for r in rounds)
    floor_first = median(r["floor"].wall["first"] for r in rounds)
    return {"batch_vs_floor": batch_first / floor_first,
            "rerun_s": median(r["batch"].wall["rerun"] for r in rounds),
            "batch_first_s": batch_first, "floor_first_s": floor_first,
            "floor_rerun_s": median(r["floor"].wall["rerun"] for r in rounds)}


def last_line(fig):
    return "registration_real: batch_vs_floor=%.2f rerun_s=%.1f" % (fig["batch_vs_floor"], fig["rerun_s"])


def _s(value, spec="%.2f"):
    return "-" if value is None else spec % value


def report(rounds, opts, elapsed, version):
    print("registration benchmark against the REAL OpenNebula %s oned (%s, via tools/opennebula/run-oned-tree);"
          " im_mad/vmm_mad dummy; each side on its own fresh oned instance, started and settled alike; %s"
          % (version, opts.tree, "one side after the other (--sequential), the order alternating between rounds"
             if opts.sequential else "the two first runs at the same moment, the reruns one after the other"))
    print("each oned with a private /tmp (mount namespace)" if opts.isolate else
          "the instances share the host's /tmp (--no-isolate, or no mount namespace possible): the dummy IM's"
          " monitoring clients of equal host IDs in other instances kill each other")
    print("%s; calls counted from oned.log (one 'invoked' line per request at DEBUG_LEVEL 3; one.host.* and"
          " one.hostpool.info only, the dummy monitoring probes' calls apart); pool reads = one.*pool.info;"
          " ansible-playbook on localhost (connection local, %s)"
          % ("both sides wait for every new host to be MONITORED (--wait), one hostpool read per poll,"
             " 50 ms doubling up to 2 s" if opts.wait else
             "neither side waits for the hosts to be MONITORED (module wait: false, floor --no-wait)",
             common.VENV_BIN / "python"))
    print()
    head = ("side", "round", "N", "first s", "first calls", "rerun s", "rerun calls", "rerun pool reads",
            "per host rerun ms")
    labels = {"batch": "(a) batch opennebula_hosts", "floor": "(d) floor hosts"}
    lines = []
    for i, rnd in enumerate(rounds, 1):
        for name in rnd["order"]:
            side = rnd[name]
            lines.append((labels[name], str(i), str(side.n), "%.2f" % side.wall["first"], str(side.total("first")),
                          "%.2f" % side.wall["rerun"], str(side.total("rerun")), str(side.pool_reads("rerun")),
                          "%.2f" % (1000 * side.wall["rerun"] / side.n)))
    common.print_table(head, lines)
    notes = []
    for i, rnd in enumerate(rounds, 1):
        batch, floor = rnd["batch"], rnd["floor"]
        tag = "round %d: " % i if len(rounds) > 1 else ""
        if batch.changed.get("rerun"):
            notes.append("%sNOT IDEMPOTENT: the batch reported changed on the no-change rerun" % tag)
        if not batch.changed.get("first"):
            notes.append("%sthe batch reported no change on the first run" % tag)
        for side in (batch, floor):
            for phase in ("first", "rerun"):
                own = side.client_calls.get(phase)
                if own is not None and own != side.total(phase):
                    notes.append("%scall count mismatch: %s %s run: oned logged %d calls, the client counted %d"
                                 % (tag, side.name, phase, side.total(phase), own))
        for side in (batch, floor):
            notes.append("%s%s first-run calls by method (oned.log): %s" % (
                tag, side.name, ", ".join("%s=%d" % kv for kv in sorted(side.calls["first"].items()))))
        notes.append("%sone.host.allocate window in oned.log (first to last call, 1 s resolution): batch %s s,"
                     " floor %s s; floor's own split: allocate %s s, wait %s s (%d polls)"
                     % (tag, _s(batch.allocate_window("first"), "%.0f"), _s(floor.allocate_window("first"), "%.0f"),
                        _s(floor.parts["first"]["allocate"]), _s(floor.parts["first"]["wait"]),
                        max(0, floor.pool_reads("first") - 1)))
        notes.append("%sbatch: ansible-playbook wall %.2f s, of which the task %s s (first run; so %s s of"
                     " Ansible around it); rerun %.2f s, task %s s; floor.py wall %.2f s, own %.2f s"
                     % (tag, batch.wall["first"], _s(batch.own["first"]),
                        _s(batch.wall["first"] - batch.own["first"] if batch.own["first"] is not None else None),
                        batch.wall["rerun"], _s(batch.own["rerun"]), floor.wall["first"], floor.own["first"]))
        notes.append("%sCPU seconds of the first run: batch's ansible-playbook + module %s, its oned %s;"
                     " floor.py %s, its oned %s (rerun: %s + %s; %s + %s)"
                     % (tag, _s(batch.client_cpu["first"], "%.1f"), _s(batch.oned_cpu["first"], "%.1f"),
                        _s(floor.client_cpu["first"], "%.1f"), _s(floor.oned_cpu["first"], "%.1f"),
                        _s(batch.client_cpu["rerun"], "%.1f"), _s(batch.oned_cpu["rerun"], "%.1f"),
                        _s(floor.client_cpu["rerun"], "%.1f"), _s(floor.oned_cpu["rerun"], "%.1f")))
        notes.append("%sbackground calls oned answered during the first run (the dummy monitoring probes;"
                     " not counted above): batch %s; floor %s"
                     % (tag, ", ".join("%s=%d" % kv for kv in sorted(batch.background["first"].items())) or "none",
                        ", ".join("%s=%d" % kv for kv in sorted(floor.background["first"].items())) or "none"))
        notes.append("%sbackground: 1-min load average at the start of the first run: batch %.1f, floor %.1f;"
                     " dummy monitoring clients monitord had started by the end of the first run: batch %d,"
                     " floor %d (and by the end of the rerun: %d, %d)"
                     % (tag, batch.load, floor.load, batch.monitor_clients["first"], floor.monitor_clients["first"],
                        batch.monitor_clients["rerun"], floor.monitor_clients["rerun"]))
        notes.append("%sone hostpool read at N=%d (call and parse, median of 3, after the runs): batch's oned"
                     " %.3f s, floor's oned %.3f s; instance start (run-oned-tree) %.1f s / %.1f s"
                     % (tag, opts.hosts, batch.pool_read_s, floor.pool_read_s, batch.start_s, floor.start_s))
    fig = figures(rounds)
    what = "medians over %d rounds" % len(rounds) if len(rounds) > 1 else "one round"
    notes.append("y = batch first run %.2f s / floor first run %.2f s (%s, N=%d); z = batch rerun %.2f s"
                 " (floor rerun %.2f s)" % (fig["batch_first_s"], fig["floor_first_s"], what, opts.hosts,
                                            fig["rerun_s"], fig["floor_rerun_s"]))
    return common.print_end(notes, fig, elapsed, last_line)


def to_json(rounds, fig, line, opts, elapsed, version):
    def side_dict(side):
        return {"side": side.name, "n": side.n, "wall": side.wall, "own": side.own,
                "calls": {p: dict(c) for p, c in side.calls.items()},
                "background_calls": {p: dict(c) for p, c in side.background.items()},
                "pool_reads": {p: side.pool_reads(p) for p in side.calls},
                "client_calls": side.client_calls, "changed": side.changed, "summary": side.summary,
                "floor_parts": side.parts, "allocate_window": {p: side.allocate_window(p) for p in side.calls},
                "instance_start_s": side.start_s, "pool_read_s": side.pool_read_s,
                "load": side.load, "monitor_clients": side.monitor_clients,
                "client_cpu": side.client_cpu, "oned_cpu": side.oned_cpu}
    return {"mode": "real", "oned_version": version,
            "options": {"hosts": opts.hosts, "rounds": opts.rounds, "wait": opts.wait,
                        "sequential": opts.sequential, "isolate": opts.isolate,
                        "settle": opts.settle, "tree": str(opts.tree)},
            "elapsed_s": elapsed, "figures": fig, "last_line": line,
            "rounds": [{"order": r["order"], "batch": side_dict(r["batch"]), "floor": side_dict(r["floor"])}
                       for r in rounds]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="bench/registration/run --real",
        description="Registration benchmark against the real OpenNebula oned: the batch module vs the floor.")
    parser.add_argument("--real", action="store_true", help="(this mode)")
    parser.add_argument("--hosts", type=int, help="N hosts for both sides (default 2000)")
    parser.add_argument("--quick", action="store_true", help="N=20 (an explicit --hosts wins)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the pair R times, alternating which side goes first; the figures are the"
                             " medians (default 1)")
    parser.add_argument("--sequential", action="store_true",
                        help="one side after the other (first run and rerun each), the order alternating between"
                             " rounds (default: the two first runs at the same moment, each against its own oned,"
                             " so that both face the same machine load)")
    parser.add_argument("--no-isolate", action="store_true",
                        help="start the instances without a private /tmp (default: each oned in a mount namespace"
                             " with its own /tmp, because the dummy IM's per-host pid files there are host-wide)")
    parser.add_argument("--wait", action="store_true",
                        help="both sides wait for every new host to be MONITORED (default: neither waits; with"
                             " the dummy IM, monitord starts one resident Ruby client per host, 15 at a time,"
                             " each start taking at least 10 s: about 27 MB and N/15 x 10 s, too much at N=2000)")
    parser.add_argument("--wait-timeout", type=int, default=1800,
                        help="seconds either side waits for MONITORED (default 1800)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="before the first run, wait until oned.log has been quiet this long (default 3 s)")
    parser.add_argument("--tree", type=Path, default=DEFAULT_TREE,
                        help="the OpenNebula tree (default %s)" % DEFAULT_TREE)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (instances, oned.log, playbooks)")
    opts = parser.parse_args(argv)
    if opts.hosts is None:
        opts.hosts = 20 if opts.quick else 2000
    if opts.hosts < 1 or opts.rounds < 1:
        parser.error("--hosts and --rounds must be >= 1")
    return opts


def main(argv=None):
    opts = parse_args(argv)
    if not (opts.tree / "bin" / "oned").exists():
        print("bench: no OpenNebula tree at %s (build it with `make one-packages`)" % opts.tree, file=sys.stderr)
        return 2
    if not (common.VENV_BIN / "ansible-playbook").exists():
        raise SystemExit("bench: %s not found (the project venv is needed)" % (common.VENV_BIN / "ansible-playbook"))
    opts.isolate = not opts.no_isolate and can_isolate()
    if not opts.isolate and not opts.no_isolate:
        print("bench: cannot make a private /tmp (unshare --mount); the instances share the host's /tmp",
              file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="bench-registration-real-", dir=WORK_BASE))
    global run_oned_tree
    run_oned_tree = workdir / RUN_ONED_TREE.name
    shutil.copy2(RUN_ONED_TREE, run_oned_tree)
    start = time.monotonic()
    rounds, version = [], "?"
    try:
        for round_no in range(1, opts.rounds + 1):
            rounds.append(run_round(opts, workdir, round_no))
        version = rounds[0]["batch"].version
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print("bench: %s\n(work directory kept: %s)" % (exc, workdir), file=sys.stderr)
        return 1
    elapsed = time.monotonic() - start
    fig, line = report(rounds, opts, elapsed, version)
    return common.finish(opts, workdir, lambda: to_json(rounds, fig, line, opts, elapsed, version))


if __name__ == "__main__":
    sys.exit(main())
