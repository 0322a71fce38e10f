"""bench/accounting/run in a small size: it runs, stops its cluster, and
its last line has the documented shape with plausible figures; the same for
its API mode (--api-users), whose every answer must be right."""

import json
import os
import re
import subprocess

import pytest

from acct_testlib import ROOT
from acct_pgcluster import pg_bindir
from slapd_testlib import missing_tools

pytestmark = pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries missing")
RUN = os.path.join(ROOT, "bench", "accounting", "run")


def running_clusters():
    return {d for d in os.listdir("/tmp") if d.startswith("acct-pg-")
            and os.path.exists(os.path.join("/tmp", d, "data", "postmaster.pid"))}


def test_bench_small_run(tmp_path):
    before = running_clusters()
    out = tmp_path / "b.json"
    proc = subprocess.run([RUN, "--records", "3000",
                           "--queries", "20", "--batch", "1000", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"accounting: ingest_records_per_s=(\d+) query_p95_ms=([\d.]+)", last)
    assert m, last
    data = json.loads(out.read_text())
    assert data["records"] == 3000 and int(m.group(1)) == round(data["ingest_records_per_s"])
    assert 0 < data["query_p50_ms"] <= data["query_p95_ms"] <= data["query_max_ms"]
    assert "rows unchanged (3000)" in proc.stdout
    # its throwaway cluster is gone (others' may run: the tests' own)
    assert running_clusters() <= before


def test_bench_api_mode_small_run(tmp_path):
    """5 users at once, 3 requests each, through slapd and the API server's
    own process: every answer 200 and equal to the store's, the store's
    equal to the Python rules over the generated records."""
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    before = running_clusters()
    work_dirs = {d for d in os.listdir("/tmp") if d.startswith("acct-apiload-")}
    out = tmp_path / "api.json"
    proc = subprocess.run([RUN, "--api-users", "5", "--api-requests", "3", "--records", "2000",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"accounting_api: users=5 requests=15 errors=(\d+) p95_ms=([\d.]+) "
                     r"requests_per_s=([\d.]+)", last)
    assert m, last
    assert m.group(1) == "0" and float(m.group(2)) > 0 and float(m.group(3)) > 0
    data = json.loads(out.read_text())
    assert data["errors"] == 0 and data["requests"] == 15 and data["server_cpu_s"] > 0
    assert "answers: 15 200 and equal to the store's, 0 errors" in proc.stdout
    # the store's answers were the reference only after matching the Python rules
    assert "expected answers: all equal to the Python rules" in proc.stdout
    # its cluster, slapd, server and work directory are gone
    assert running_clusters() <= before
    assert {d for d in os.listdir("/tmp") if d.startswith("acct-apiload-")} <= work_dirs
