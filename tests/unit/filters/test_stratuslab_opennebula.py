"""Unit tests of filter_plugins/stratuslab_opennebula.py (run: .venv/bin/pytest tests/unit/filters -q)."""

import pytest

from filter_testlib import load_plugin

one = load_plugin("stratuslab_opennebula")

DEFAULTS = {"BEACON_HOST": 30, "SYSTEM_HOST": 600, "MONITOR_HOST": 120, "STATE_VM": 5,
            "EXEC_VM": 5, "MONITOR_VM": 30, "SYNC_STATE_VM": 180}


def test_opennebula_defaults_pass():
    assert one.sl_monitord_errors(DEFAULTS, 180) == []


@pytest.mark.parametrize(
    "periods, interval, expected",
    [
        ({k: v for k, v in DEFAULTS.items() if k != "STATE_VM"}, 180,
         ["frontend_monitord_probes_period must give exactly", "missing: STATE_VM"]),
        (dict(DEFAULTS, BEACON=30), 180, ["unknown: BEACON"]),
        (dict(DEFAULTS, SYSTEM_HOST=0), 180, ["frontend_monitord_probes_period.SYSTEM_HOST is 0"]),
        (dict(DEFAULTS, EXEC_VM="5"), 180, ["frontend_monitord_probes_period.EXEC_VM is '5'"]),
        (dict(DEFAULTS, MONITOR_VM=True), 180, ["frontend_monitord_probes_period.MONITOR_VM is True"]),
        (DEFAULTS, 30, ["frontend_monitord_interval_host (30 s) must be greater than",
                        "BEACON_HOST (30 s)"]),
        (DEFAULTS, -1, ["frontend_monitord_interval_host is -1"]),
        (DEFAULTS, "180", ["frontend_monitord_interval_host is '180'"]),
        ("BEACON_HOST=30", 180, ["frontend_monitord_probes_period is 'BEACON_HOST=30': a mapping"]),
    ],
)
def test_each_mistake_is_named(periods, interval, expected):
    errors = one.sl_monitord_errors(periods, interval, prefix="frontend: ")
    assert len(errors) == 1, errors
    assert errors[0].startswith("frontend: "), errors
    for part in expected:
        assert part in errors[0], errors


def test_every_mistake_is_reported_at_once():
    errors = one.sl_monitord_errors({"BEACON_HOST": 0, "SYSTEM_HOST": -5}, 0)
    assert len(errors) == 4, errors  # the probes missing, two periods, the interval


def test_the_filter_is_registered():
    assert one.FilterModule().filters()["sl_monitord_errors"] is one.sl_monitord_errors
