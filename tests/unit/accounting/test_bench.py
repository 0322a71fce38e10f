"""bench/accounting/run in a small size: it runs, stops its cluster, and
its last line has the documented shape with plausible figures."""

import json
import os
import re
import subprocess

import pytest

from acct_testlib import ROOT
from acct_pgcluster import pg_bindir


@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL binaries missing")
def running_clusters():
    return {d for d in os.listdir("/tmp") if d.startswith("acct-pg-")
            and os.path.exists(os.path.join("/tmp", d, "data", "postmaster.pid"))}


def test_bench_small_run(tmp_path):
    before = running_clusters()
    out = tmp_path / "b.json"
    proc = subprocess.run([os.path.join(ROOT, "bench", "accounting", "run"), "--records", "3000",
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
