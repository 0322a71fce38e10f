"""The store, on SQLite and on PostgreSQL (a throwaway cluster): migrations,
each record stored once, open records updated until they close, and the SQL
usage query equal to the Python rules of records.py."""

import copy

import pytest

from acct_samples import T0, have_samples, payload
from stratuslab_accounting.records import parse_history_records, usage_of
from stratuslab_accounting.store import MIGRATIONS, SQLiteStore
from acct_synth import synthetic_records


def rows(store):
    with store.transaction() as cur:
        cur.execute("SELECT vm_id, seq, etime, retime, action FROM history ORDER BY vm_id, seq")
        return [tuple(r) for r in cur.fetchall()]


def test_migrations_are_versioned_and_idempotent(store):
    assert store.schema_version() == MIGRATIONS[-1][0]
    assert store.migrate() == []          # already applied: nothing
    with store.transaction() as cur:
        cur.execute("SELECT version, description FROM schema_version ORDER BY version")
        assert [r[0] for r in cur.fetchall()] == [m[0] for m in MIGRATIONS]


def test_migrations_at_once_on_a_fresh_sqlite(tmp_path):
    # a race: opening a fresh file could answer "database is locked" at
    # once, without waiting, in about one round in twenty; fifty rounds of
    # six services starting together show it
    import threading
    for round_ in range(50):
        path = str(tmp_path / ("x%d.sqlite" % round_))
        results, errors = [], []
        start = threading.Barrier(6)

        def go():
            start.wait()
            try:
                results.append(SQLiteStore(path).migrate())
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        threads = [threading.Thread(target=go) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, "round %d" % round_
        assert sorted(results, key=len) == [[]] * 5 + [[1]]


@pytest.mark.skipif(not have_samples(), reason="samples missing")
def test_each_record_stored_once_and_open_records_updated(store):
    early = parse_history_records(payload("040_"))      # all open
    mid = parse_history_records(payload("046_"))        # poweroffs: RETIME set
    final = parse_history_records(payload("055_"))
    store.upsert(early, now=T0 + 1)
    store.upsert(early, now=T0 + 2)
    assert store.count() == (4, 4)
    assert all(r[2] == 0 and r[3] == 0 for r in rows(store))
    store.upsert(mid, now=T0 + 30)
    assert [r[3] != 0 for r in rows(store)] == [False, True, False, True]
    store.upsert(final + final, now=T0 + 65)             # duplicates in one batch too
    assert store.count() == (5, 4)
    expected = [(r["vm_id"], r["seq"], r["etime"], r["retime"], r["action"]) for r in final]
    assert rows(store) == expected
    # older answers arriving late change nothing: closed records are final,
    # open ones keep the newest observation
    store.upsert(early, now=T0 + 2)
    store.upsert(mid, now=T0 + 70)
    assert rows(store) == expected


def test_state(store):
    assert store.get_state("hwm") is None
    store.set_state("hwm", 12)
    store.set_state("hwm", 15)
    assert store.get_state("hwm") == "15"


@pytest.mark.skipif(not have_samples(), reason="samples missing")
def test_usage_of_the_final_sample(store):
    final = parse_history_records(payload("055_"))
    store.upsert(final)
    end = T0 + 65
    got, totals = store.usage(T0, end, end)
    assert [(r["user"], r["group"]) for r in got] == [("alice", "acct-a"), ("bob", "acct-b")]
    alice = got[0]
    assert alice["cpu_hours"] == round((51 * 1 + 65 * 0.5) / 3600, 6)
    assert alice["memory_gb_hours"] == round((51 * 1024 + 65 * 512) / 1024 / 3600, 6)
    assert totals["vms"] == 4
    only_bob, _ = store.usage(T0, end, end, user="bob")
    assert only_bob == [got[1]]
    assert store.usage(T0, end, end, group="acct-a")[0] == [alice]
    assert store.usage(T0 - 100, T0, T0)[0] == []        # before any record
    assert store.known("user", "alice") and not store.known("user", "mallory")
    assert store.known("group", "acct-b") and not store.known("group", "acct-z")


@pytest.mark.parametrize("window", [(0, 2 ** 40), (1767225600 + 86400 * 40, 1767225600 + 86400 * 71),
                                    (1767225600 + 86400 * 200, 1767225600 + 86400 * 200 + 3600)])
def test_sql_usage_equals_the_python_rules(store, window):
    recs = synthetic_records(3000, users=7, groups=3, seed=7)
    store.upsert(recs)
    a, b = window
    bo = min(b, 1767225600 + 86400 * 300)   # last collection inside the data
    got, totals = store.usage(a, b, bo)
    keys = sorted({(r["uname"], r["gname"]) for r in recs})
    expected = []
    for user, group in keys:
        fig = usage_of([r for r in recs if (r["uname"], r["gname"]) == (user, group)], a, b, bo)
        if any(v for k, v in fig.items()) or True:
            expected.append(dict(user=user, group=group, **fig))
    got_by = {(r["user"], r["group"]): r for r in got}
    for exp in expected:
        row = got_by.get((exp["user"], exp["group"]))
        if exp["vms"] == 0 and exp["wall_hours"] == 0:
            assert row is None or row["wall_hours"] == 0
            continue
        assert row is not None
        for k in ("vms", "wall_hours", "running_hours", "cpu_hours", "memory_gb_hours", "disk_gb_hours"):
            assert row[k] == pytest.approx(exp[k], abs=2e-6), (exp["user"], k)
    all_fig = usage_of(recs, a, b, bo)
    for k, v in all_fig.items():
        assert totals[k] == pytest.approx(v, abs=2e-6), k


def test_vm_histories_returns_whole_vms(store):
    recs = synthetic_records(500, seed=3)
    store.upsert(recs)
    a, b = 1767225600 + 86400 * 100, 1767225600 + 86400 * 130
    got = store.vm_histories(a, b)
    vms = {r["vm_id"] for r in recs if r["stime"] < b and (r["etime"] == 0 or r["etime"] > a)}
    assert {r["vm_id"] for r in got} == vms
    expected = sorted((r["vm_id"], r["seq"]) for r in recs if r["vm_id"] in vms and r["stime"] < b)
    assert [(r["vm_id"], r["seq"]) for r in got] == expected
    one = copy.deepcopy(got[0])
    assert one == next(r for r in recs if (r["vm_id"], r["seq"]) == (one["vm_id"], one["seq"]))


def test_a_later_migration_applies_on_top_of_existing_data(store, monkeypatch):
    from stratuslab_accounting import store as store_module
    store.upsert(synthetic_records(50, seed=5))
    extra = (MIGRATIONS[-1][0] + 1, "test: an extra column",
             ["ALTER TABLE history ADD COLUMN note TEXT NOT NULL DEFAULT ''"])
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS + [extra])
    assert store.migrate() == [extra[0]]
    assert store.migrate() == []
    assert store.schema_version() == extra[0]
    assert store.count()[0] == 50
    with store.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM history WHERE note = ''")
        assert cur.fetchone()[0] == 50


def test_a_failing_migration_leaves_the_schema_as_it_was(store, monkeypatch):
    from stratuslab_accounting import store as store_module
    from stratuslab_accounting.store import StoreError
    broken = (MIGRATIONS[-1][0] + 1, "test: broken",
              ["CREATE TABLE extra_t (x INTEGER)", "THIS IS NOT SQL"])
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS + [broken])
    with pytest.raises(StoreError):
        store.migrate()
    assert store.schema_version() == MIGRATIONS[-1][0]
    with store.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM schema_version")
        assert cur.fetchone()[0] == len(MIGRATIONS)
    with pytest.raises(StoreError):                     # its first statement was rolled back
        with store.transaction() as cur:
            cur.execute("SELECT COUNT(*) FROM extra_t")
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    assert store.migrate() == []


def test_more_threads_than_connections_wait_for_one(pg_cluster):
    """API requests in more threads than the pool's connections: each waits
    for a free one (psycopg2's own pool refuses at once: 'connection pool
    exhausted', which the API answered with 503)."""
    import threading
    import uuid

    from stratuslab_accounting.store import PostgreSQLStore

    name = "t_" + uuid.uuid4().hex[:12]
    pg_cluster.psql("CREATE DATABASE %s OWNER %s" % (name, pg_cluster.user))
    st = PostgreSQLStore(**dict(pg_cluster.kwargs(), dbname=name, maxconn=2))
    st.migrate()
    errors, barrier = [], threading.Barrier(12)

    def query():
        barrier.wait()
        try:
            with st.connection() as conn:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_sleep(0.05)")
        except Exception as exc:  # noqa: BLE001 - any failure is what the test reports
            errors.append(repr(exc))

    threads = [threading.Thread(target=query) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    st.close()
    assert errors == []
