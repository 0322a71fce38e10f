"""bench/registration in quick mode: the last line's format, and the batch
rerun's pool reads do not grow with the number of hosts (N=20 vs N=40); and
the quick real mode (--real, N=20 against the real oned) when the
OpenNebula tree of `make one-packages` is there: its last line, and a
no-change rerun.

The benchmark counts the XML-RPC calls from the test oned's own per-call log,
so this fails if opennebula_hosts (or opennebula_vnets) ever reads a pool per
host, or if the benchmark stops counting.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "registration" / "bench.py"
NUM = r"(\d+(?:\.\d+)?)"
LAST_LINE = re.compile(r"^registration: batch_vs_community=%s batch_vs_floor=%s rerun_s=%s rerun_pool_reads=(\d+)$"
                       % (NUM, NUM, NUM))
ANY_LAST_LINE = re.compile(r"^registration: batch_vs_community=(\S+) batch_vs_floor=(\S+) rerun_s=(\S+) "
                           r"rerun_pool_reads=(\d+)$")

pytestmark = pytest.mark.skipif(not (REPO / ".venv" / "bin" / "ansible-playbook").exists(),
                                reason="project venv missing")


def bench(tmp_path, name, *args):
    out = tmp_path / ("%s.json" % name)
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", str(out)] + list(args),
                          cwd=str(REPO), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.rstrip("\n").splitlines()
    return lines, json.loads(out.read_text())


def row(data, variant, what):
    return next(r for r in data["rows"] if r["variant"] == variant and r["what"] == what)


@pytest.mark.skipif(importlib.util.find_spec("pyone") is None, reason="pyone (community.general one_host) missing")
def test_quick_benchmark_last_line_and_pool_reads_independent_of_n(tmp_path):
    # all four variants, small sizes (about 30 s on an idle machine)
    lines20, data20 = bench(tmp_path, "n20", "--hosts", "20", "--loop-hosts", "1", "--vnets", "1")
    last = LAST_LINE.match(lines20[-1])
    assert last, "bad last line: %r" % lines20[-1]
    assert float(last.group(1)) > 0 and float(last.group(2)) > 0 and float(last.group(3)) > 0
    assert "monitor-interval" in "\n".join(lines20)     # the output says which interval was used
    assert not [line for line in lines20 if "NOT IDEMPOTENT" in line or "mismatch" in line], "\n".join(lines20)

    # the same batch variant with twice the hosts
    lines40, data40 = bench(tmp_path, "n40", "--hosts", "40", "--loop-hosts", "1", "--vnets", "1",
                            "--variants", "batch")
    last40 = ANY_LAST_LINE.match(lines40[-1])
    assert last40, "bad last line: %r" % lines40[-1]

    hosts20, hosts40 = row(data20, "batch", "hosts"), row(data40, "batch", "hosts")
    # the first run did allocate every host (the counts come from the test oned's log)
    assert hosts20["calls"]["first"].get("one.host.allocate") == 20
    assert hosts40["calls"]["first"].get("one.host.allocate") == 40
    # a no-change rerun: pool reads only, as many for 40 hosts as for 20
    assert hosts40["pool_reads"]["rerun"] == hosts20["pool_reads"]["rerun"] <= 2, (hosts20, hosts40)
    assert int(last40.group(4)) == int(last.group(4)), (lines20[-1], lines40[-1])
    assert sum(hosts40["calls"]["rerun"].values()) == hosts40["pool_reads"]["rerun"]


# --------------------------------------------------------------------------
# real mode: the batch module and the floor against the real OpenNebula oned
# --------------------------------------------------------------------------

ONE_TREE = Path(os.environ.get("ONE_PACKAGES_CACHE", "/var/cache/stratuslab-test/opennebula")) / "current" / "tree"
REAL_LAST_LINE = re.compile(r"^registration_real: batch_vs_floor=(\d+\.\d\d) rerun_s=(\d+\.\d)$")


@pytest.mark.skipif(not (ONE_TREE / "bin" / "oned").exists(),
                    reason="no OpenNebula tree at %s: build it with `make one-packages`" % ONE_TREE)
def test_quick_real_oned_last_line_and_idempotent_rerun(tmp_path):
    # N=20 hosts, each side against its own fresh real oned (about a minute);
    # checks the output, not the timing goals
    out = tmp_path / "real.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--real", "--quick", "--tree", str(ONE_TREE),
                           "--json", str(out)],
                          cwd=str(REPO), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.rstrip("\n").splitlines()
    last = REAL_LAST_LINE.match(lines[-1])
    assert last, "bad last line: %r" % lines[-1]
    assert float(last.group(1)) > 0 and float(last.group(2)) > 0
    text = "\n".join(lines)
    assert "REAL OpenNebula 7.4.0" in text
    assert not [line for line in lines if "NOT IDEMPOTENT" in line or "mismatch" in line], text

    data = json.loads(out.read_text())
    assert data["oned_version"] == "7.4.0"
    (rnd,) = data["rounds"]
    batch, floor = rnd["batch"], rnd["floor"]
    # both sides registered the 20 hosts on the first run (counted in oned.log) ...
    assert batch["calls"]["first"].get("one.host.allocate") == 20, batch["calls"]
    assert floor["calls"]["first"].get("one.host.allocate") == 20, floor["calls"]
    assert batch["changed"]["first"] is True
    # ... and the batch's rerun changed nothing: one pool read, no write
    assert batch["changed"]["rerun"] is False, batch
    assert batch["summary"]["rerun"]["unchanged"] == 20, batch["summary"]
    assert batch["calls"]["rerun"] == {"one.hostpool.info": 1}, batch["calls"]
