"""The store: PostgreSQL (default) or SQLite (small sites), one SQL for both.

Every statement is written once with ``%(name)s`` parameters; the SQLite
backend rewrites them to ``:name``.  Types are the common subset (INTEGER,
BIGINT, DOUBLE PRECISION, TEXT), and the usage query uses CASE instead of
GREATEST/LEAST (PostgreSQL) or the two-argument MAX/MIN (SQLite).

Schema changes are numbered migrations, applied at start by ``migrate()``
(the ``schema_version`` table records what was applied; a lock serialises
two services starting together).
"""

import contextlib
import io
import logging
import os
import re
import sqlite3
import threading
import time

from .records import COLUMNS, figures

LOG = logging.getLogger("stratuslab_accounting.store")

# (version, description, statements).  Never edit an applied migration: add one.
MIGRATIONS = [
    (1, "history records, collector state", [
        """CREATE TABLE history (
            vm_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            uid INTEGER NOT NULL,
            gid INTEGER NOT NULL,
            uname TEXT NOT NULL,
            gname TEXT NOT NULL,
            vm_name TEXT NOT NULL,
            vm_uuid TEXT NOT NULL,
            vm_stime BIGINT NOT NULL,
            hostname TEXT NOT NULL,
            hid INTEGER NOT NULL,
            stime BIGINT NOT NULL,
            etime BIGINT NOT NULL,
            pstime BIGINT NOT NULL,
            petime BIGINT NOT NULL,
            rstime BIGINT NOT NULL,
            retime BIGINT NOT NULL,
            estime BIGINT NOT NULL,
            eetime BIGINT NOT NULL,
            action INTEGER NOT NULL,
            actor_uid INTEGER NOT NULL,
            actor_gid INTEGER NOT NULL,
            cpu DOUBLE PRECISION NOT NULL,
            vcpu INTEGER NOT NULL,
            memory_mb BIGINT NOT NULL,
            disk_mb BIGINT NOT NULL,
            collected_at BIGINT NOT NULL,
            PRIMARY KEY (vm_id, seq))""",
        # per-user / per-group windows: (etime = 0 OR etime > from) is two
        # ranges of these indexes; recent windows (the usual ones) read only
        # recent records.  Queries over all users scan the table.
        "CREATE INDEX history_uname_etime ON history (uname, etime)",
        "CREATE INDEX history_gname_etime ON history (gname, etime)",
        """CREATE TABLE collector_state (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL)""",
    ]),
]

_UPDATABLE = [c for c in COLUMNS if c not in ("vm_id", "seq")] + ["collected_at"]
_ALL_COLUMNS = list(COLUMNS) + ["collected_at"]

UPSERT_TAIL = (" ON CONFLICT (vm_id, seq) DO UPDATE SET "
               + ", ".join("%s = excluded.%s" % (c, c) for c in _UPDATABLE)
               # a closed record never changes again (overlap re-reads write
               # nothing); an open one takes the newer observation only
               + " WHERE history.etime = 0 AND excluded.collected_at >= history.collected_at")

# The usage rules of records.clipped_spans, in SQL.  %(a)s..%(b)s is the
# window, %(bo)s (<= %(b)s) the end of open spans.
_SPANS = """
    SELECT vm_id, uname, gname, cpu, memory_mb, disk_mb,
      CASE WHEN we > ws THEN we - ws ELSE 0 END AS alloc_s,
      CASE WHEN re > rs THEN re - rs ELSE 0 END AS run_s
    FROM (
      SELECT vm_id, uname, gname, cpu, memory_mb, disk_mb,
        CASE WHEN stime > %(a)s THEN stime ELSE %(a)s END AS ws,
        CASE WHEN etime = 0 THEN %(bo)s
             WHEN etime > %(b)s THEN %(b)s ELSE etime END AS we,
        CASE WHEN rstime > %(a)s THEN rstime ELSE %(a)s END AS rs,
        CASE WHEN rstime = 0 THEN 0
             WHEN retime > 0 THEN (CASE WHEN retime > %(b)s THEN %(b)s ELSE retime END)
             WHEN etime > 0 THEN (CASE WHEN etime > %(b)s THEN %(b)s ELSE etime END)
             ELSE %(bo)s END AS re
      FROM history
      WHERE stime < %(b)s AND (etime = 0 OR etime > %(a)s) {filters}
    ) AS clipped
"""

_AGGREGATES = """
    COUNT(DISTINCT CASE WHEN alloc_s > 0 THEN vm_id END) AS vms,
    SUM(alloc_s) AS alloc_s, SUM(run_s) AS run_s,
    SUM(alloc_s * cpu) AS cpu_s, SUM(alloc_s * memory_mb) AS mem_mbs,
    SUM(alloc_s * disk_mb) AS disk_mbs
"""


class StoreError(Exception):
    """The database is unreachable or refused a statement."""


class Store:
    """Backend-independent part; subclasses provide connections."""

    dialect = None
    _param = re.compile(r"%\((\w+)\)s")

    def sql(self, text):
        return text

    @contextlib.contextmanager
    def connection(self):
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self):
        with self.connection() as conn:
            cur = conn.cursor()
            try:
                yield cur
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                cur.close()

    def _lock_migrations(self, cur):
        pass

    @contextlib.contextmanager
    def reading(self):
        """A cursor for one read-only statement (no transaction round trips)."""
        with self.transaction() as cur:
            yield cur

    # ---------------------------------------------------------------- schema
    def migrate(self):
        """Apply the pending migrations; return the list of versions applied."""
        applied = []
        with self.transaction() as cur:
            self._lock_migrations(cur)
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                        "applied_at BIGINT NOT NULL)")
            cur.execute("SELECT version FROM schema_version")
            done = {row[0] for row in cur.fetchall()}
            for version, description, statements in MIGRATIONS:
                if version in done:
                    continue
                for statement in statements:
                    cur.execute(statement)
                cur.execute(self.sql("INSERT INTO schema_version (version, description, applied_at) "
                                     "VALUES (%(v)s, %(d)s, %(t)s)"),
                            {"v": version, "d": description, "t": int(time.time())})
                applied.append(version)
        for version in applied:
            LOG.info("schema migration %d applied", version)
        return applied

    def schema_version(self):
        with self.reading() as cur:
            cur.execute("SELECT MAX(version) FROM schema_version")
            return cur.fetchone()[0] or 0

    # ---------------------------------------------------------------- writes
    @staticmethod
    def _dedupe(records):
        latest = {}
        for rec in records:
            latest[(rec["vm_id"], rec["seq"])] = rec
        return list(latest.values())

    def upsert(self, records, now=None):
        """Insert new records, update open ones; return the number sent."""
        records = self._dedupe(records)
        if not records:
            return 0
        stamp = int(now if now is not None else time.time())
        self._upsert(records, stamp)
        return len(records)

    def _upsert(self, records, stamp):
        raise NotImplementedError

    def set_state(self, name, value):
        with self.transaction() as cur:
            cur.execute(self.sql("INSERT INTO collector_state (name, value) VALUES (%(n)s, %(v)s) "
                                 "ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
                        {"n": name, "v": str(value)})

    def get_state(self, name, default=None):
        with self.reading() as cur:
            cur.execute(self.sql("SELECT value FROM collector_state WHERE name = %(n)s"), {"n": name})
            row = cur.fetchone()
        return row[0] if row else default

    # ---------------------------------------------------------------- reads
    def count(self):
        with self.reading() as cur:
            cur.execute("SELECT COUNT(*), COUNT(DISTINCT vm_id) FROM history")
            rows, vms = cur.fetchone()
        return rows, vms

    def ping(self):
        with self.transaction() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def known(self, kind, name):
        column = {"user": "uname", "group": "gname"}[kind]
        with self.reading() as cur:
            cur.execute(self.sql("SELECT 1 FROM history WHERE %s = %%(n)s LIMIT 1" % column),
                        {"n": name})
            return cur.fetchone() is not None

    def usage_query(self, start, end, open_end, user=None, group=None):
        """(SQL in this backend's dialect, parameters) of usage()."""
        open_end = max(start, min(open_end, end))
        params = {"a": int(start), "b": int(end), "bo": int(open_end)}
        filters = ""
        if user is not None:
            filters += " AND uname = %(user)s"
            params["user"] = user
        if group is not None:
            filters += " AND gname = %(group)s"
            params["group"] = group
        spans = _SPANS.format(filters=filters)
        # one statement, one round trip: the rows per (user, group), then the totals row
        query = ("WITH s AS (" + spans + ") "
                 "SELECT 0 AS total, uname, gname, " + _AGGREGATES + " FROM s GROUP BY uname, gname "
                 "UNION ALL SELECT 1 AS total, NULL, NULL, " + _AGGREGATES + " FROM s "
                 "ORDER BY total, uname, gname")
        return self.sql(query), params

    def usage(self, start, end, open_end, user=None, group=None):
        """Usage per (user, group) in [start, end) and the totals.

        ``open_end`` ends the open records (clamped to [start, end]).
        Returns (rows, totals); rows are dicts with user, group and the
        figures of records.figures(), sorted by user then group.
        """
        query, params = self.usage_query(start, end, open_end, user, group)
        with self.reading() as cur:
            cur.execute(query, params)
            result = cur.fetchall()
        rows, totals = [], figures(0, 0, 0, 0, 0, 0)
        for total, uname, gname, *nums in result:
            if total:
                totals = figures(*nums)
            else:
                row = {"user": uname, "group": gname}
                row.update(figures(*nums))
                rows.append(row)
        return rows, totals

    def vm_histories(self, start, end):
        """All records, up to ``end``, of the VMs with a record overlapping [start, end)."""
        cols = ", ".join(COLUMNS)
        query = ("SELECT " + cols + " FROM history WHERE stime < %(b)s AND vm_id IN ("
                 "SELECT vm_id FROM history WHERE stime < %(b)s AND (etime = 0 OR etime > %(a)s)) "
                 "ORDER BY vm_id, seq")
        with self.reading() as cur:
            cur.execute(self.sql(query), {"a": int(start), "b": int(end)})
            return [dict(zip(COLUMNS, row)) for row in cur.fetchall()]

    def close(self):
        pass


class SQLiteStore(Store):
    """SQLite: one file, WAL journal so the API reads while the collector writes."""

    dialect = "sqlite"

    BUSY_WAIT = 30      # seconds a connection waits for another's lock

    def __init__(self, path):
        self.path = path

    def _wal(self, conn):
        """Switch the file to WAL (it stays so). Switching needs the file
        to itself, and SQLite answers "database is locked" at once, without
        waiting, while another connection opens a fresh file: retry until
        BUSY_WAIT."""
        deadline = time.monotonic() + self.BUSY_WAIT
        pause = 0.01
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    conn.close()
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def sql(self, text):
        return self._param.sub(r":\1", text)

    @contextlib.contextmanager
    def connection(self):
        try:
            conn = sqlite3.connect(self.path, timeout=self.BUSY_WAIT)
            self._wal(conn)
        except sqlite3.Error as exc:
            raise StoreError("sqlite %s: %s" % (self.path, exc)) from None
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreError("sqlite: %s" % exc) from None
        finally:
            conn.close()

    def _lock_migrations(self, cur):
        cur.execute("BEGIN IMMEDIATE")

    def _upsert(self, records, stamp):
        placeholders = ", ".join("?" for _ in _ALL_COLUMNS)
        query = ("INSERT INTO history (" + ", ".join(_ALL_COLUMNS) + ") VALUES ("
                 + placeholders + ")" + UPSERT_TAIL)
        rows = [tuple(rec[c] for c in COLUMNS) + (stamp,) for rec in records]
        with self.transaction() as cur:
            cur.executemany(query, rows)


class PostgreSQLStore(Store):
    """PostgreSQL through psycopg2: a small thread-safe connection pool;
    bulk writes go through COPY into a temporary table, then one
    INSERT ... SELECT ... ON CONFLICT."""

    dialect = "postgresql"
    POOL_WAIT = 30      # seconds a thread waits for a free connection

    def __init__(self, host, port, dbname, user, password, maxconn=8):
        import psycopg2  # Debian: python3-psycopg2
        import psycopg2.pool
        self._psycopg2 = psycopg2
        self._kwargs = {"host": host, "port": int(port), "dbname": dbname, "user": user,
                        "password": password, "connect_timeout": 10,
                        "application_name": "stratuslab-accounting"}
        self._maxconn = maxconn
        self._pool = None
        self._pool_lock = threading.Lock()
        # psycopg2's pool fails at once ("connection pool exhausted") when
        # maxconn connections are in use: more threads (API requests) wait
        # here for one instead, up to POOL_WAIT seconds
        self._slots = threading.BoundedSemaphore(maxconn)

    def _get_pool(self):
        with self._pool_lock:
            if self._pool is None:
                try:
                    self._pool = self._psycopg2.pool.ThreadedConnectionPool(0, self._maxconn, **self._kwargs)
                except self._psycopg2.Error as exc:
                    # the message names host/db, never the password
                    raise StoreError("postgresql %s:%s/%s: %s" % (
                        self._kwargs["host"], self._kwargs["port"], self._kwargs["dbname"],
                        str(exc).strip())) from None
            return self._pool

    @contextlib.contextmanager
    def connection(self):
        pool = self._get_pool()
        if not self._slots.acquire(timeout=self.POOL_WAIT):
            raise StoreError("postgresql: no free connection in %g s (%d in use)"
                             % (self.POOL_WAIT, self._maxconn))
        try:
            try:
                conn = pool.getconn()
            except self._psycopg2.Error as exc:
                raise StoreError("postgresql: %s" % str(exc).strip()) from None
            broken = False
            try:
                yield conn
            except (self._psycopg2.OperationalError, self._psycopg2.InterfaceError) as exc:
                broken = True
                raise StoreError("postgresql: %s" % str(exc).strip()) from None
            except self._psycopg2.Error as exc:
                raise StoreError("postgresql: %s" % str(exc).strip()) from None
            finally:
                pool.putconn(conn, close=broken or conn.closed != 0)
        finally:
            self._slots.release()

    def _lock_migrations(self, cur):
        cur.execute("SELECT pg_advisory_xact_lock(727274)")

    @contextlib.contextmanager
    def reading(self):
        # autocommit: no BEGIN/COMMIT round trips around a single SELECT
        with self.connection() as conn:
            conn.autocommit = True
            cur = conn.cursor()
            try:
                yield cur
            finally:
                cur.close()
                conn.autocommit = False

    def _upsert(self, records, stamp):
        buf = io.StringIO()
        for rec in records:
            buf.write("\t".join(_copy_value(rec[c]) for c in COLUMNS))
            buf.write("\t%d\n" % stamp)
        buf.seek(0)
        cols = ", ".join(_ALL_COLUMNS)
        with self.transaction() as cur:
            # the records can be read from oned again: a crash may lose the
            # last commits, but in order (the high-water mark is written
            # after the records), so the next pass re-reads them
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS history_in "
                        "(LIKE history INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            cur.copy_expert("COPY history_in (" + cols + ") FROM STDIN", buf)
            cur.execute("INSERT INTO history (" + cols + ") SELECT " + cols
                        + " FROM history_in" + UPSERT_TAIL)

    def close(self):
        with self._pool_lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None


def _copy_value(value):
    if isinstance(value, str):
        return (value.replace("\\", "\\\\").replace("\t", "\\t")
                .replace("\n", "\\n").replace("\r", "\\r"))
    return repr(value) if isinstance(value, float) else str(value)


def open_store(config):
    """The store named by [store] of a Config."""
    from .config import read_secret
    backend = config.get("store", "backend")
    if backend == "sqlite":
        path = config.require("store", "path")
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            raise StoreError("sqlite: directory %s does not exist" % directory)
        return SQLiteStore(path)
    password = read_secret(config.require("store", "password_file"), "[store] password_file")
    return PostgreSQLStore(config.get("store", "host"), config.getint("store", "port"),
                           config.require("store", "dbname"), config.require("store", "user"),
                           password)
