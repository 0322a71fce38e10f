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

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PKG_PARENT = os.path.join(ROOT, "roles", "accounting", "files")
for _path in (PKG_PARENT, os.path.dirname(__file__)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

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
