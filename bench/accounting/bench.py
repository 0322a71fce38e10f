"""Accounting benchmark: ingest N history records into PostgreSQL, then
query per-user monthly usage.  See bench/README.md ("accounting").

* A throwaway PostgreSQL cluster (Debian's binaries, fsync on: the server's
  defaults) on a free 127.0.0.1 port, password authentication.
* N synthetic records shaped like oned 7.4.0's HISTORY (each with its
  embedded <VM> and TEMPLATE: CPU, VCPU, MEMORY, DISK, NIC, OS/UUID), for
  U users in G groups over one year, about 5 % still open, arriving as
  HISTORY_RECORDS documents of `--batch` records (one collector pass each).
* ingest = store.upsert of the parsed records of each document (COPY into
  a temporary table, one INSERT ... ON CONFLICT per document): records into
  PostgreSQL per second.  Parsing oned's XML (records.parse_history_records)
  is timed separately, and the collector's end-to-end rate (parse + store)
  is printed too.  Then the same documents again (what an overlap re-read
  costs; the row count must not change).
* query = store.usage(month, user=U): the API's query for one user and one
  calendar month; Q random (user, month) pairs after a warm-up; p50/p95.

Last line: ``accounting: ingest_records_per_s=<x> query_p95_ms=<y>``.

``--api-users U`` runs the API mode instead (apiload.py): U users querying
the HTTPS API at once, every answer checked against the store.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
# The service's source (products/accounting/src), its tests' helpers and
# the project's (tests/unit: slapd_testlib).
sys.path.insert(0, os.path.join(REPO, "products", "accounting", "src"))
sys.path.append(os.path.join(REPO, "tests", "unit"))
sys.path.insert(0, os.path.join(REPO, "products", "accounting", "tests"))

from acct_pgcluster import PgCluster  # noqa: E402
from acct_synth import synthetic_records  # noqa: E402
from stratuslab_accounting.records import parse_history_records  # noqa: E402
from stratuslab_accounting.store import PostgreSQLStore  # noqa: E402
from stratuslab_accounting.timeutil import iso  # noqa: E402

YEAR_START = 1767225600          # 2026-01-01T00:00:00Z

HISTORY = (
    "<HISTORY><OID>{vm_id}</OID><SEQ>{seq}</SEQ><HOSTNAME>{hostname}</HOSTNAME><HID>{hid}</HID>"
    "<CID>0</CID><STIME>{stime}</STIME><ETIME>{etime}</ETIME><VM_MAD><![CDATA[kvm]]></VM_MAD>"
    "<TM_MAD><![CDATA[ssh]]></TM_MAD><DS_ID>100</DS_ID><PLAN_ID>-2</PLAN_ID><ACTION_ID>-1</ACTION_ID>"
    "<PSTIME>{pstime}</PSTIME><PETIME>{petime}</PETIME><RSTIME>{rstime}</RSTIME><RETIME>{retime}</RETIME>"
    "<ESTIME>{estime}</ESTIME><EETIME>{eetime}</EETIME><ACTION>{action}</ACTION><UID>{actor_uid}</UID>"
    "<GID>{actor_gid}</GID><REQUEST_ID>{request_id}</REQUEST_ID>"
    "<VM><ID>{vm_id}</ID><UID>{uid}</UID><GID>{gid}</GID><UNAME>{uname}</UNAME><GNAME>{gname}</GNAME>"
    "<NAME>{vm_name}</NAME><PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A>"
    "<GROUP_U>0</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A><OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M>"
    "<OTHER_A>0</OTHER_A></PERMISSIONS><LAST_POLL>0</LAST_POLL><STATE>3</STATE><LCM_STATE>1</LCM_STATE>"
    "<PREV_STATE>3</PREV_STATE><PREV_LCM_STATE>0</PREV_LCM_STATE><RESCHED>0</RESCHED>"
    "<STIME>{vm_stime}</STIME><ETIME>0</ETIME><DEPLOY_ID/><MONITORING/><SCHED_ACTIONS/><TEMPLATE>"
    "<AUTOMATIC_DS_REQUIREMENTS><![CDATA[(\"CLUSTERS/ID\" @> 0)]]></AUTOMATIC_DS_REQUIREMENTS>"
    "<AUTOMATIC_NIC_REQUIREMENTS><![CDATA[(\"CLUSTERS/ID\" @> 0)]]></AUTOMATIC_NIC_REQUIREMENTS>"
    "<AUTOMATIC_REQUIREMENTS><![CDATA[(CLUSTER_ID = 0) & !(PIN_POLICY = PINNED)]]></AUTOMATIC_REQUIREMENTS>"
    "<CPU><![CDATA[{cpu}]]></CPU>"
    "<DISK><ALLOW_ORPHANS><![CDATA[NO]]></ALLOW_ORPHANS><CLUSTER_ID><![CDATA[0]]></CLUSTER_ID>"
    "<DATASTORE><![CDATA[system]]></DATASTORE><DATASTORE_ID><![CDATA[100]]></DATASTORE_ID>"
    "<DEV_PREFIX><![CDATA[sd]]></DEV_PREFIX><DISK_ID><![CDATA[0]]></DISK_ID><DISK_TYPE><![CDATA[FILE]]>"
    "</DISK_TYPE><DRIVER><![CDATA[raw]]></DRIVER><FORMAT><![CDATA[raw]]></FORMAT><SIZE><![CDATA[{disk_mb}]]>"
    "</SIZE><TARGET><![CDATA[sda]]></TARGET><TM_MAD><![CDATA[ssh]]></TM_MAD><TYPE><![CDATA[fs]]></TYPE></DISK>"
    "<MEMORY><![CDATA[{memory_mb}]]></MEMORY>"
    "<NIC><AR_ID><![CDATA[0]]></AR_ID><BRIDGE><![CDATA[br0]]></BRIDGE><BRIDGE_TYPE><![CDATA[linux]]>"
    "</BRIDGE_TYPE><CLUSTER_ID><![CDATA[0]]></CLUSTER_ID><IP><![CDATA[10.10.0.12]]></IP><MAC>"
    "<![CDATA[02:00:0a:0a:00:0c]]></MAC><NAME><![CDATA[NIC0]]></NAME><NETWORK><![CDATA[public]]></NETWORK>"
    "<NETWORK_ID><![CDATA[0]]></NETWORK_ID><NIC_ID><![CDATA[0]]></NIC_ID><SECURITY_GROUPS><![CDATA[0]]>"
    "</SECURITY_GROUPS><TARGET><![CDATA[one-{vm_id}-0]]></TARGET><VN_MAD><![CDATA[bridge]]></VN_MAD></NIC>"
    "<OS><MACHINE><![CDATA[q35]]></MACHINE><UUID><![CDATA[{vm_uuid}]]></UUID></OS>"
    "<TEMPLATE_ID><![CDATA[0]]></TEMPLATE_ID><TM_MAD_SYSTEM><![CDATA[ssh]]></TM_MAD_SYSTEM>"
    "<VCPU><![CDATA[{vcpu}]]></VCPU><VMID><![CDATA[{vm_id}]]></VMID></TEMPLATE><USER_TEMPLATE/>"
    "<HISTORY_RECORDS/><BACKUPS><BACKUP_CONFIG/><BACKUP_IDS/></BACKUPS></VM></HISTORY>")


def documents(records, batch):
    out = []
    for i in range(0, len(records), batch):
        parts = ["<HISTORY_RECORDS>"]
        for r in records[i:i + batch]:
            parts.append(HISTORY.format(request_id=1000 + r["vm_id"], **r))
        parts.append("</HISTORY_RECORDS>")
        out.append("".join(parts))
    return out


def cluster_cpu(cluster, reaped=False):
    """CPU seconds used so far by the cluster's postmaster and its live
    children; with ``reaped``, also by the children the postmaster has reaped
    (backends of closed connections)."""
    with open(os.path.join(cluster.data, "postmaster.pid")) as fh:
        master = int(fh.readline())
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the comm field: [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime
        if int(pid) == master and reaped:
            total += sum(int(x) for x in fields[11:15])
        elif int(pid) == master or int(fields[1]) == master:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def ingest(store, docs, now, cluster=None):
    parse_s = store_s = store_cpu = parse_cpu = 0.0
    n = 0
    for doc in docs:
        t0 = time.perf_counter()
        p0 = time.process_time()
        recs = parse_history_records(doc)
        parse_cpu += time.process_time() - p0
        t1 = time.perf_counter()
        c0 = time.process_time() + (cluster_cpu(cluster) if cluster else 0)
        store.upsert(recs, now=now)
        t2 = time.perf_counter()
        store_cpu += time.process_time() + (cluster_cpu(cluster) if cluster else 0) - c0
        parse_s += t1 - t0
        store_s += t2 - t1
        n += len(recs)
    ingest.parse_cpu = parse_cpu
    return n, parse_s, store_s, store_cpu


def main(argv=None):
    p = argparse.ArgumentParser(description="accounting benchmark")
    p.add_argument("--records", type=int, default=100000)
    p.add_argument("--users", type=int, default=None, help="users in the data (50; with --api-users: U)")
    p.add_argument("--groups", type=int, default=5)
    p.add_argument("--batch", type=int, default=10000, help="records per HISTORY_RECORDS document")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default=None)
    p.add_argument("--api-users", type=int, default=None, metavar="U",
                   help="API mode: U users (in LDAP and in the data) query the HTTPS API at once")
    p.add_argument("--api-requests", type=int, default=10, metavar="R",
                   help="API mode: requests per user (10)")
    p.add_argument("--keep", action="store_true",
                   help="API mode: keep the work directory (server and slapd logs)")
    a = p.parse_args(argv)
    if a.api_users is not None:
        if a.api_users < 1 or a.api_requests < 1:
            p.error("--api-users and --api-requests must be at least 1")
        if a.users not in (None, a.api_users):
            p.error("--users: with --api-users the data has the U users of --api-users")
        import apiload
        return apiload.run(a, YEAR_START)
    if a.users is None:
        a.users = 50

    print("generating %d records (%d users, %d groups, one year)..." % (a.records, a.users, a.groups), flush=True)
    records = synthetic_records(a.records, users=a.users, groups=a.groups, start=YEAR_START,
                                span_days=365, seed=a.seed)
    docs = documents(records, a.batch)
    xml_mb = sum(len(d) for d in docs) / 1e6
    print("%d documents, %.1f MB of XML (%.0f bytes/record)" % (len(docs), xml_mb, xml_mb * 1e6 / a.records))

    cluster = PgCluster(fsync=True)
    try:
        cluster.start()
        store = PostgreSQLStore(**cluster.kwargs())
        store.migrate()
        now = YEAR_START + 400 * 86400
        t0 = time.perf_counter()
        n, parse_s, store_s, store_cpu = ingest(store, docs, now, cluster)
        wall = time.perf_counter() - t0
        rows, vms = store.count()
        assert rows == a.records == n, (rows, n)
        ingest_rate = n / store_s
        parse_cpu = ingest.parse_cpu
        print("parse of oned's XML: %.2f s = %.0f records/s (%.2f CPU-s = %.0f records per CPU-second)"
              % (parse_s, n / parse_s, parse_cpu, n / parse_cpu))
        print("ingest into PostgreSQL: %d records in %.2f s = %.0f records/s" % (n, store_s, ingest_rate))
        print("  CPU used by the ingest (client + all PostgreSQL processes): %.2f s = %.0f records per CPU-second"
              % (store_cpu, n / store_cpu))
        print("collector end to end (parse + store): %.2f s = %.0f records/s" % (wall, n / wall))
        t0 = time.perf_counter()
        n2, parse2, store2, _ = ingest(store, docs, now + 60)
        wall2 = time.perf_counter() - t0
        assert store.count() == (rows, vms)
        print("re-ingest of the same documents (overlap): store %.2f s = %.0f records/s, rows unchanged (%d)"
              % (store2, n2 / store2, rows))
        with store.transaction() as cur:
            cur.execute("ANALYZE history")
        months = []
        for m in range(12):
            y, mo = 2026, m + 1
            start = int(time.mktime((y, mo, 1, 0, 0, 0, 0, 0, 0)) - time.timezone)
            end = int(time.mktime((y + (mo == 12), mo % 12 + 1, 1, 0, 0, 0, 0, 0, 0)) - time.timezone)
            months.append((start, end))
        rng = random.Random(a.seed)
        users = ["user%03d" % i for i in range(a.users)]
        for _ in range(20):                                # warm-up
            s, e = rng.choice(months)
            store.usage(s, e, e, user=rng.choice(users))
        lat = []
        checked = 0
        cpu0 = time.process_time() + cluster_cpu(cluster)
        for _ in range(a.queries):
            s, e = rng.choice(months)
            u = rng.choice(users)
            t0 = time.perf_counter()
            got, totals = store.usage(s, e, min(e, now), user=u)
            lat.append((time.perf_counter() - t0) * 1000)
            checked += len(got)
        query_cpu_ms = (time.process_time() + cluster_cpu(cluster) - cpu0) * 1000 / a.queries
        lat.sort()
        # the same kind of query, timed inside the server (EXPLAIN ANALYZE)
        server = []
        for _ in range(50):
            s, e = rng.choice(months)
            query, params = store.usage_query(s, e, min(e, now), user=rng.choice(users))
            with store.reading() as cur:
                cur.execute("EXPLAIN (ANALYZE, TIMING OFF) " + query, params)
                plan = [r[0] for r in cur.fetchall()]
            server.append(float(plan[-1].split(":")[1].split()[0]))
        server.sort()
        print("query inside PostgreSQL (EXPLAIN ANALYZE execution time): p50 %.1f ms, p95 %.1f ms"
              % (server[25], server[47]))
        # floor: the round trip of a trivial statement on the same connection pool
        floor = []
        for _ in range(100):
            t0 = time.perf_counter()
            with store.reading() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
            floor.append((time.perf_counter() - t0) * 1000)
        floor.sort()
        print("floor (SELECT 1 round trip): p50 %.1f ms, p95 %.1f ms" % (floor[50], floor[95]))
        p50 = statistics.median(lat)
        p95 = lat[int(round(0.95 * (len(lat) - 1)))]
        load = os.getloadavg()[0]
        print("query: %d per-user monthly usage queries (%d rows returned): p50 %.1f ms, p95 %.1f ms, max %.1f ms"
              % (len(lat), checked, p50, p95, lat[-1]))
        print("  CPU per query (client + all PostgreSQL processes, mean): %.1f ms" % query_cpu_ms)
        with store.transaction() as cur:
            cur.execute("EXPLAIN SELECT 1 FROM history WHERE uname = 'user001' AND stime < 1772323200 "
                        "AND (etime = 0 OR etime > 1769904000)")
            plan = " / ".join(r[0].strip() for r in cur.fetchall())
        print("plan of the user filter: %s" % plan)
        store.close()
        result = {"records": n, "ingest_s": wall, "parse_s": parse_s, "store_s": store_s,
                  "ingest_records_per_s": ingest_rate, "ingest_cpu_s": store_cpu, "reingest_records_per_s": n2 / store2,
                  "parse_records_per_s": n / parse_s, "end_to_end_records_per_s": n / wall,
                  "xml_mb": xml_mb, "query_p50_ms": p50, "query_cpu_ms": query_cpu_ms, "select1_p95_ms": floor[95], "server_exec_p95_ms": server[47], "query_p95_ms": p95, "query_max_ms": lat[-1],
                  "queries": len(lat), "users": a.users, "loadavg_1m": load, "first_month": iso(months[0][0])}
    finally:
        cluster.stop()
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=1)
    print("load average (1 min) at the end: %.1f on %d CPUs" % (os.getloadavg()[0], os.cpu_count()))
    print("accounting: ingest_records_per_s=%.0f query_p95_ms=%.1f" % (ingest_rate, p95))
    return 0


if __name__ == "__main__":
    sys.exit(main())
