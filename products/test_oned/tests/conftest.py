"""pytest fixtures for the test oned's own tests (helpers: oned_support)."""

import pytest

from oned_support import OnedProcess


@pytest.fixture
def oned_factory(tmp_path):
    """Start test oned processes; all are stopped at the end of the test."""
    started = []

    def make(extra=(), state=None, port=None):
        server = OnedProcess(state or tmp_path / "oned.sqlite", extra, port)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def oned(oned_factory):
    """A fresh test oned started with exactly the documented command line."""
    return oned_factory()

