"""Fixtures of the OpenNebula API layer tests; the code is in one_testlib.py
(imported by name there, since other test directories have a conftest.py too)."""

from one_testlib import fixtures_dir, logic, one, real_oned, test_oned  # noqa: F401  (pytest fixtures)
