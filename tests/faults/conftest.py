"""Fixtures of the fault tests (make faults).

The OpenNebula helpers are the unit tests' own (tests/unit/opennebula:
one_testlib's real oned 7.4.0 from `make one-packages`, one_playbook's
ansible-playbook runner); this directory puts them on the import path.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent / "unit" / "opennebula"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from one_testlib import real_oned  # noqa: E402,F401  (pytest fixture)
