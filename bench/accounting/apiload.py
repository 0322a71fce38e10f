"""Accounting benchmark, API mode (``--api-users U``): U users query the
HTTPS API at the same moment.  See bench/README.md ("accounting").

What runs is what the unit tests start, with their helpers:

* the throwaway PostgreSQL cluster (acct_pgcluster), holding N synthetic
  records (acct_synth) of the U users, and a last collection after them;
* a real slapd over TLS (slapd_testlib, as conftest.py's ``slapd``
  fixture: bound users read, simple binds only over TLS) holding U users
  ``user000`` .. each with its own random password, and an admin group the
  users are not in (each request then binds and searches, as on a site);
* the API server as a site runs it, in its own process:
  ``python3 -m stratuslab_accounting --config INI serve`` (PostgreSQL
  store, LDAP over ldaps:// with the test CA, TLS on 127.0.0.1).

Before the load, the expected answer of every (user, month) the clients
will ask is computed with the store itself (store.usage with the API's open
end), and each is checked against the figures records.usage_of (the
Python rules) gives from the generated records of that user, so "right"
does not rest on the store's SQL alone.  Then U threads wait at a barrier and each, as its own user with its
own password, sends R requests ``GET /v1/usage?from=<month>&to=<next
month>`` (no ``user=``: a user sees their own usage), one new HTTPS
connection each (acct_apiclient's client, CA-checked).  Every answer must be
200 and equal to the expected one; any other status, an exception (timeout,
reset) or a different body is an error, counted and shown.

Last line: ``accounting_api: users=<U> requests=<n> errors=<e> p95_ms=<x>
requests_per_s=<y>``; the exit status is 1 when e > 0.
"""

import calendar
import collections
import json
import os
import pathlib
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from acct_apiclient import Running
from acct_ldap import BASE_DN
from acct_pgcluster import PgCluster, free_port
from acct_synth import synthetic_records
from acct_testlib import PKG_PARENT, listening, wait_for
from bench import cluster_cpu
from slapd_testlib import make_tls, missing_tools, running_slapd, user_ldif
from stratuslab_accounting.collector import STATE_LAST_SUCCESS
from stratuslab_accounting.records import usage_of
from stratuslab_accounting.store import PostgreSQLStore
from stratuslab_accounting.timeutil import iso

ADMIN_GROUP = "accounting-admins"


class Client(Running):
    """acct_apiclient.Running's client half, for a server in another process."""

    def __init__(self, port, ca):  # pylint: disable=super-init-not-called
        self.port, self.ca = port, ca


def months_of(year):
    """[(ISO first day, ISO first day of the next month, start, end)] of the year."""
    out = []
    for m in range(1, 13):
        y2, m2 = (year + 1, 1) if m == 12 else (year, m + 1)
        s, e = calendar.timegm((year, m, 1, 0, 0, 0)), calendar.timegm((y2, m2, 1, 0, 0, 0))
        out.append(("%04d-%02d-01" % (year, m), "%04d-%02d-01" % (y2, m2), s, e))
    return out


def ldap_data(passwords):
    """The directory: the users (conftest.py's layout) and an admin group none of them is in."""
    out = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: acct\no: acct bench\n" % BASE_DN,
           "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n" % BASE_DN,
           "dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n" % BASE_DN]
    out += user_ldif(BASE_DN, passwords)
    out.append("dn: cn=%s,ou=groups,%s\nobjectClass: posixGroup\ncn: %s\ngidNumber: 5000\n"
               "memberUid: someone-else\n" % (ADMIN_GROUP, BASE_DN, ADMIN_GROUP))
    return "\n".join(out)


def proc_cpu(pid):
    """CPU seconds (user + system) used so far by one process."""
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_pid(fragment):
    """The pid of the process whose command line holds fragment."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    if fragment.encode() in fh.read():
                        return int(pid)
            except OSError:
                pass
    return None


def machine_busy():
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / tick, sum(v[:8]) / tick


def differences(got, want, path="", limit=3):
    """Where two decoded JSON answers differ: ["rows[0].vms: 3 != 4", ...]."""
    if isinstance(got, dict) and isinstance(want, dict):
        out = []
        for k in sorted(set(got) | set(want)):
            p = "%s.%s" % (path, k) if path else k
            out += (["%s: missing" % p] if k not in got else ["%s: unexpected" % p] if k not in want
                    else differences(got[k], want[k], p, limit))
        return out[:limit]
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return ["%s: %d items != %d" % (path, len(got), len(want))]
        out = []
        for i, (g, w) in enumerate(zip(got, want)):
            out += differences(g, w, "%s[%d]" % (path, i), limit)
        return out[:limit]
    return [] if got == want else ["%s: %r != %r" % (path, got, want)]


FIGURES = ("vms", "wall_hours", "running_hours", "cpu_hours", "memory_gb_hours", "disk_gb_hours")


def rules_mismatches(answer, user_records, start, end, open_end, tolerance=2e-6):
    """Where one expected answer (the store's) differs from records.usage_of over
    the user's generated records: [] when they agree.  The store sums in SQL
    and rounds to 6 decimals, the rules in Python: figures agree within
    tolerance (as in test_store.py)."""
    out = []
    by_group = collections.defaultdict(list)
    for rec in user_records:
        by_group[rec["gname"]].append(rec)
    rows = {row["group"]: row for row in answer["rows"]}
    for row in answer["rows"]:
        if row["user"] != answer["user"] or row["group"] not in by_group:
            out.append("row of %s/%s, who has no records here" % (row["user"], row["group"]))
    for group, recs in sorted(by_group.items()):
        want, row = usage_of(recs, start, end, open_end), rows.get(group)
        if row is None:
            if want["vms"] or want["wall_hours"]:
                out.append("group %s: no row, the rules give %s" % (group, want))
            continue
        out += ["group %s %s: %r != %r" % (group, k, row[k], want[k]) for k in FIGURES
                if abs(row[k] - want[k]) > tolerance]
    want = usage_of(user_records, start, end, open_end)
    out += ["totals %s: %r != %r" % (k, answer["totals"][k], want[k]) for k in FIGURES
            if abs(answer["totals"][k] - want[k]) > tolerance]
    return out


def percentile(sorted_values, q):
    return sorted_values[int(round(q * (len(sorted_values) - 1)))]


def server_config(tmp, port, tls, slapd, cluster):
    pw = tmp / "db_password"
    pw.write_text(cluster.password + "\n")
    os.chmod(pw, 0o600)
    ini = tmp / "accounting.ini"
    ini.write_text("\n".join([
        "[store]", "backend = postgresql", "host = 127.0.0.1", "port = %d" % cluster.port,
        "dbname = %s" % cluster.dbname, "user = %s" % cluster.user, "password_file = %s" % pw,
        "[api]", "listen = 127.0.0.1", "port = %d" % port, "tls_cert = " + tls["cert"],
        "tls_key = " + tls["key"], "ldap_uri = " + slapd["ldaps"], "ldap_ca_file = " + slapd["ca"],
        "ldap_user_dn = uid={user},ou=people,%s" % BASE_DN,
        "ldap_group_base = ou=groups,%s" % BASE_DN, "admin_group = " + ADMIN_GROUP]) + "\n")
    return ini


def start_server(ini, log_path):
    env = dict(os.environ, PYTHONPATH=PKG_PARENT)
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "stratuslab_accounting", "--config", str(ini), "serve"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def stop_server(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def server_log_summary(log_path):
    """{level: count} and the distinct WARNING/ERROR messages with their counts."""
    levels, problems = collections.Counter(), collections.Counter()
    with open(log_path, errors="replace") as fh:
        for line in fh:
            parts = line.split(" ", 4)       # date time logger LEVEL message
            if len(parts) == 5 and parts[3] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
                levels[parts[3]] += 1
                if parts[3] in ("WARNING", "ERROR", "CRITICAL"):
                    problems["%s %s: %s" % (parts[3], parts[2], parts[4].strip())] += 1
            elif line.strip():
                levels["other"] += 1
                if line.startswith("Traceback") or "Error" in line:
                    problems["other: %s" % line.strip()[:200]] += 1
    return levels, problems


def run(a, year_start):
    """The API mode of bench.py; a: its parsed options."""
    users_n, per_user = a.api_users, a.api_requests
    reason = missing_tools()
    if reason:
        print("cannot run: %s" % reason, file=sys.stderr)
        return 2
    rng = random.Random(a.seed)
    users = ["user%03d" % i for i in range(users_n)]
    passwords = {u: secrets.token_urlsafe(12) for u in users}
    months = months_of(time.gmtime(year_start).tm_year)
    plan = {u: [rng.choice(months) for _ in range(per_user)] for u in users}
    now = year_start + 400 * 86400                    # the last collection, after every month asked

    print("generating %d records (%d users, %d groups, one year)..." % (a.records, users_n, a.groups),
          flush=True)
    records = synthetic_records(a.records, users=users_n, groups=a.groups, start=year_start,
                                span_days=365, seed=a.seed)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="acct-apiload-"))
    os.chmod(tmp, 0o755)
    cluster = PgCluster(fsync=True)
    server = None
    try:
        (tmp / "tls").mkdir()
        tls = make_tls(tmp / "tls", "acct bench CA")
        cluster.start()
        store = PostgreSQLStore(**cluster.kwargs())
        store.migrate()
        t0 = time.perf_counter()
        for i in range(0, len(records), a.batch):
            store.upsert(records[i:i + a.batch], now=now)
        store.set_state(STATE_LAST_SUCCESS, now)
        with store.transaction() as cur:
            cur.execute("ANALYZE history")
        print("PostgreSQL: %d records stored in %.1f s; last collection %s"
              % (store.count()[0], time.perf_counter() - t0, iso(now)), flush=True)

        # the answers the API must give, from the store itself (api.Handler.usage's open end)
        t0 = time.perf_counter()
        last = int(store.get_state(STATE_LAST_SUCCESS))
        expected = {}
        for u in users:
            for frm, to, s, e in plan[u]:
                if (u, frm) not in expected:
                    rows, totals = store.usage(s, e, min(e, last), user=u)
                    answer = {"from": iso(s), "to": iso(e), "as_of": iso(last), "user": u, "group": None,
                              "rows": rows, "totals": totals}
                    expected[(u, frm)] = json.loads(json.dumps(answer))   # as a client decodes it
        store.close()
        print("expected answers: %d (user, month) pairs from the store in %.1f s (%d with usage)"
              % (len(expected), time.perf_counter() - t0, sum(1 for v in expected.values() if v["rows"])),
              flush=True)
        t0 = time.perf_counter()
        records_of = collections.defaultdict(list)
        for rec in records:
            records_of[rec["uname"]].append(rec)
        windows = {(u, frm): (s, e) for u in users for frm, _to, s, e in plan[u]}
        wrong = {}
        for (u, frm), answer in sorted(expected.items()):
            s, e = windows[(u, frm)]
            found = rules_mismatches(answer, records_of[u], s, e, min(e, last))
            if found:
                wrong[(u, frm)] = found
        if wrong:
            print("the store's answers differ from the Python rules over the generated records for %d of %d "
                  "(user, month) pairs, so they cannot be the reference:" % (len(wrong), len(expected)),
                  file=sys.stderr)
            for (u, frm), found in list(wrong.items())[:5]:
                print("  %s %s: %s" % (u, frm, "; ".join(found[:3])), file=sys.stderr)
            return 1
        print("expected answers: all equal to the Python rules (records.usage_of) over each user's generated "
              "records, per group and in total, checked in %.1f s" % (time.perf_counter() - t0), flush=True)

        with running_slapd(tmp / "slapd", tls, BASE_DN, ldap_data(passwords),
                           schemas=("core", "cosine", "nis", "inetorgperson"),
                           read="by users read by * none") as slapd:
            slapd_pid = find_pid(str(tmp / "slapd" / "slapd.d"))
            port = free_port()
            ini = server_config(tmp, port, tls, slapd, cluster)
            server = start_server(ini, tmp / "server.log")
            if not wait_for(lambda: listening(port) or server.poll() is not None, timeout=60) \
                    or server.poll() is not None:
                print("the API server did not start:\n%s" % (tmp / "server.log").read_text()[-3000:],
                      file=sys.stderr)
                return 2
            client = Client(port, tls["ca"])
            print("slapd (ldaps) with %d users; API server pid %d on https://127.0.0.1:%d "
                  "(python3 -m stratuslab_accounting serve)" % (users_n, server.pid, port), flush=True)
            # warm-up: one answer, checked like the others
            frm, to, _, _ = plan[users[0]][0]
            status, _, body = client.request("/v1/usage?from=%s&to=%s" % (frm, to), users[0],
                                             passwords[users[0]])
            if status != 200 or body != expected[(users[0], frm)]:
                print("warm-up request failed: %s %s" % (status, str(body)[:500]), file=sys.stderr)
                return 1

            results = [[] for _ in users]     # per user: (ms, kind or None, detail)
            barrier = threading.Barrier(users_n + 1)

            def user_thread(i):
                u, mine = users[i], results[i]
                barrier.wait()
                for frm, to, _, _ in plan[u]:
                    path = "/v1/usage?" + urllib.parse.urlencode({"from": frm, "to": to})
                    t = time.perf_counter()
                    try:
                        status, _, body = client.request(path, u, passwords[u])
                    except Exception as exc:  # timeouts, resets: an error like any other
                        mine.append(((time.perf_counter() - t) * 1000, "exception %s" % type(exc).__name__,
                                     "%s %s: %s" % (u, frm, exc)))
                        continue
                    ms = (time.perf_counter() - t) * 1000
                    want = expected[(u, frm)]
                    if status != 200:
                        err = body.get("error") if isinstance(body, dict) else str(body)[:100]
                        mine.append((ms, "HTTP %d %s" % (status, err), "%s %s" % (u, frm)))
                    elif body != want:
                        who = body.get("user") if isinstance(body, dict) else None
                        kind = "200, another user's answer" if who != u else "200, wrong answer"
                        mine.append((ms, kind, "%s %s: %s (got != expected)"
                                     % (u, frm, "; ".join(differences(body, want)) or str(body)[:300])))
                    else:
                        mine.append((ms, None, None))

            threads = [threading.Thread(target=user_thread, args=(i,), daemon=True) for i in range(users_n)]
            for th in threads:
                th.start()
            load_before = os.getloadavg()
            cpu0 = (proc_cpu(server.pid), proc_cpu(slapd_pid) if slapd_pid else 0.0,
                    cluster_cpu(cluster, reaped=True), time.process_time(), machine_busy())
            barrier.wait()
            t0 = time.perf_counter()
            for th in threads:
                th.join()
            wall = time.perf_counter() - t0
            cpu1 = (proc_cpu(server.pid), proc_cpu(slapd_pid) if slapd_pid else 0.0,
                    cluster_cpu(cluster, reaped=True), time.process_time(), machine_busy())
            load_after = os.getloadavg()
            server_rc = stop_server(server)
        levels, problems = server_log_summary(tmp / "server.log")
    finally:
        if server is not None:
            stop_server(server)
        cluster.stop()
        if a.keep:
            print("note: work directory kept: %s (server.log, slapd/slapd.log)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    flat = [r for mine in results for r in mine]
    lat = sorted(r[0] for r in flat) or [0.0]
    kinds = collections.Counter(r[1] for r in flat if r[1])
    examples = [r[2] for r in flat if r[1]][:5]
    n, errors = len(flat), sum(kinds.values())
    lost = users_n * per_user - n
    errors += lost
    p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
    server_cpu, slapd_cpu, pg_cpu, client_cpu = (cpu1[i] - cpu0[i] for i in range(4))
    busy, total = cpu1[4][0] - cpu0[4][0], cpu1[4][1] - cpu0[4][1]
    rate = n / wall

    print("load: %d users at a barrier, %d requests each (GET /v1/usage for one random month of %d, "
          "a new HTTPS connection each)" % (users_n, per_user, time.gmtime(year_start).tm_year))
    print("latency (client side, TLS handshake and LDAP bind included): p50 %.1f ms, p95 %.1f ms, "
          "max %.1f ms" % (p50, p95, lat[-1]))
    print("throughput: %d requests in %.2f s = %.1f requests/s" % (n, wall, rate))
    print("answers: %d 200 and equal to the store's, %d errors" % (n - sum(kinds.values()), errors))
    for kind, count in kinds.most_common():
        print("  error: %d x %s" % (count, kind))
    if lost:
        print("  error: %d requests never made (a client thread died)" % lost)
    for ex in examples:
        print("  example: %s" % ex)
    print("CPU during the load: API server %.2f s (%.1f ms per request), slapd %.2f s, PostgreSQL %.2f s, "
          "clients %.2f s; the machine %.1f of %.1f CPU-s busy"
          % (server_cpu, server_cpu * 1000 / max(n, 1), slapd_cpu, pg_cpu, client_cpu, busy, total))
    print("server log: %s" % ", ".join("%d %s" % (c, lv) for lv, c in sorted(levels.items())))
    for msg, count in problems.most_common(10):
        print("  %d x %s" % (count, msg))
    if server_rc != 0:
        print("note: the API server exited %s on SIGTERM" % server_rc)
    print("load average (1 min): %.1f before the load, %.1f after, on %d CPUs"
          % (load_before[0], load_after[0], os.cpu_count()))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"users": users_n, "requests_per_user": per_user, "records": a.records, "requests": n,
                       "errors": errors, "error_kinds": dict(kinds), "p50_ms": p50, "p95_ms": p95,
                       "max_ms": lat[-1], "wall_s": wall, "requests_per_s": rate, "server_cpu_s": server_cpu,
                       "slapd_cpu_s": slapd_cpu, "postgresql_cpu_s": pg_cpu, "client_cpu_s": client_cpu,
                       "machine_busy_cpu_s": busy, "loadavg_1m": [load_before[0], load_after[0]],
                       "server_log_levels": dict(levels), "server_log_problems": dict(problems)},
                      fh, indent=1)
    print("accounting_api: users=%d requests=%d errors=%d p95_ms=%.1f requests_per_s=%.1f"
          % (users_n, n, errors, p95, rate))
    return 1 if errors else 0
