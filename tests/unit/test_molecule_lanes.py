"""tools/molecule-lanes: the digest of a failed scenario's log it prints last.

CI keeps only the end of `make test`'s output; the digest is what says there
why a scenario failed. Checked on a log shaped like molecule's.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_LOADER = importlib.machinery.SourceFileLoader("molecule_lanes", str(REPO / "tools" / "molecule-lanes"))
lanes = importlib.util.module_from_spec(importlib.util.spec_from_loader("molecule_lanes", _LOADER))
_LOADER.exec_module(lanes)

LOG = """\
TASK [frontend : service | Run oned] *******************************************
ok: [one-frontend]
fatal: [one-node]: FAILED! => {"changed": false, "msg": "Unable to start service libvirtd"}
PLAY RECAP *********************************************************************
one-frontend               : ok=40   changed=0    unreachable=0    failed=0    skipped=3
one-node                   : ok=12   changed=0    unreachable=0    failed=1    skipped=0
\x1b[31mCRITICAL\x1b[0m Ansible return code was 2, command was: ansible-playbook converge.yml
tests/test_site.py::test_vm_boots PASSED
tests/test_site.py::test_alert FAILED
E   AssertionError: alert OnedDown still firing
=========================== 1 failed, 1 passed in 12.0s ===========================
\x1b[32msite\x1b[0m \u279c \x1b[33mverify\x1b[0m: Executed: Successful
"""


def test_digest_keeps_the_failing_lines_only():
    digest = lanes.failure_digest(LOG.splitlines(keepends=True))
    assert digest == [
        'fatal: [one-node]: FAILED! => {"changed": false, "msg": "Unable to start service libvirtd"}',
        "one-node                   : ok=12   changed=0    unreachable=0    failed=1    skipped=0",
        "\x1b[31mCRITICAL\x1b[0m Ansible return code was 2, command was: ansible-playbook converge.yml",
        "E   AssertionError: alert OnedDown still firing",
        "=========================== 1 failed, 1 passed in 12.0s ===========================",
    ]


def test_digest_of_a_passing_log_is_empty():
    passing = [line for line in LOG.splitlines(keepends=True)
               if "fatal" not in line and "failed=1" not in line and "CRITICAL" not in line
               and not line.startswith(("E ", "===", "tests/test_site.py::test_alert"))]
    assert lanes.failure_digest(passing) == []


def test_digest_keeps_the_last_lines_and_cuts_long_ones():
    lines = ["fatal: [h%d]: FAILED! => %s\n" % (n, "x" * 500) for n in range(10)]
    digest = lanes.failure_digest(lines, limit=3)
    assert digest[0] == "... (7 earlier lines left out)"
    assert [line[:12] for line in digest[1:]] == ["fatal: [h7]:", "fatal: [h8]:", "fatal: [h9]:"]
    assert all(len(line) == 400 for line in digest[1:])


def test_machine_state_names_load_and_memory():
    state = lanes.machine_state()
    assert state.startswith("load "), state
    assert state.endswith(" GiB memory available"), state
