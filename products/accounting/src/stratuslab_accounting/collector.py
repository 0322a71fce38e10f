"""The collector: one.vmpool.accounting, incrementally, into the store.

Each pass asks oned for every record that may have changed since the last
pass: ``one.vmpool.accounting(-2, hwm - overlap, -1)``.  oned's filter is
``(ETIME > start OR ETIME = 0)``, so the answer holds every record still open
(ETIME 0, whatever its age) and every record closed after ``start``.  The
high-water mark ``hwm`` is the largest ETIME stored so far: a record that
closes after a pass gets an ETIME no earlier than that pass, hence no
earlier than ``hwm``; the overlap (default 600 s) covers clock steps and
records closed in the same second as a pass.  The first pass (no ``hwm``)
reads everything (start -1).

Records are upserted by (VM id, SEQ): new ones are inserted, open ones are
updated until they close, closed ones are never rewritten.  So a restart,
an overlapping window or a repeated pass adds no row and loses nothing.

When oned is unreachable or answers an error, the pass fails, is logged,
and is retried after 1 s, 2 s, 4 s ... up to ``retry_max``; the loop never
exits on such errors.
"""

import logging
import threading
import time

from .oned import OnedError
from .records import RecordError, parse_history_records
from .store import StoreError

LOG = logging.getLogger("stratuslab_accounting.collector")

STATE_HWM = "hwm"
STATE_LAST_SUCCESS = "last_success"
I4_MAX = 2 ** 31 - 1


class CollectError(Exception):
    """One pass failed (oned, parse or store); the loop retries."""


class Collector:
    def __init__(self, client, store, interval=300, overlap=600, retry_max=300, clock=time.time):
        self.client = client
        self.store = store
        self.interval = interval
        self.overlap = overlap
        self.retry_max = retry_max
        self.clock = clock
        self.stop_event = threading.Event()

    def window_start(self):
        raw = self.store.get_state(STATE_HWM)
        if raw is None:
            return -1
        return max(0, int(raw) - self.overlap)

    def collect_once(self):
        """One pass; returns the number of records read.  Raises CollectError."""
        try:
            start = self.window_start()
            started = int(self.clock())
            xml = self.client.accounting(start, -1, -2)
            records = parse_history_records(xml)
            self.store.upsert(records, now=started)
            hwm = max([r["etime"] for r in records] + [int(self.store.get_state(STATE_HWM, 0))])
            self.store.set_state(STATE_HWM, min(hwm, I4_MAX))
            # the time the pass started: open records are counted up to here
            self.store.set_state(STATE_LAST_SUCCESS, started)
        except OnedError as exc:
            raise CollectError("oned: %s" % exc) from None
        except StoreError as exc:
            raise CollectError("store: %s" % exc) from None
        except (RecordError, ValueError, SyntaxError) as exc:
            raise CollectError("unreadable HISTORY_RECORDS: %s" % exc) from None
        open_count = sum(1 for r in records if r["etime"] == 0)
        LOG.info("collected %d records (%d open) from start=%d", len(records), open_count, start)
        return len(records)

    def run(self):
        """Loop until stop_event is set."""
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                self.collect_once()
            except CollectError as exc:
                LOG.warning("pass failed, retrying in %.0f s: %s", delay, exc)
                self.stop_event.wait(delay)
                delay = min(delay * 2, float(self.retry_max))
                continue
            delay = 1.0
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
