"""Shared constants and helpers of the accounting tests.

Imported by name (``from acct_testlib import ...``), never through
``conftest``: several test directories have a conftest.py, and which one a
``from conftest import`` finds depends on the order pytest loaded them (it
broke when tests/unit/opennebula's was loaded last).
"""

import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The repository (products/accounting/tests is three levels down).
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
# The package's source (src layout): the tests import it from there, and
# run `python3 -m stratuslab_accounting` with it on PYTHONPATH, as the
# units run it from the unpacked wheel.
PKG_PARENT = os.path.abspath(os.path.join(HERE, "..", "src"))
for _path in (PKG_PARENT, HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)
# The project's shared test helpers (slapd_testlib: a real slapd with TLS).
UNIT_TESTS = os.path.join(ROOT, "tests", "unit")
if UNIT_TESTS not in sys.path:
    sys.path.append(UNIT_TESTS)

from acct_pgcluster import free_port  # noqa: E402,F401  (re-exported)


def wait_for(pred, timeout=20.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def listening(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
