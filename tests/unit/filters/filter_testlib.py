"""Shared helper of the filter tests (imported by name: tests/unit/filters is no package)."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def load_plugin(name):
    """Import filter_plugins/<name>.py under a private name (filter_plugins is no package)."""
    spec = importlib.util.spec_from_file_location(name + "_under_test", REPO / "filter_plugins" / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
