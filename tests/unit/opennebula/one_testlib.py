"""Shared helpers and fixtures of the OpenNebula API layer tests (imported by conftest.py).

* ``fixtures_dir``: the OpenNebula reference data kept in the repository,
  tests/fixtures/opennebula (captured oned 7.4.0 answers, XSDs; its README).
* ``one``: the client layer of the project's module_utils/stratuslab_one/
  package (errors, template, model, transport, module base), importable
  without an installed collection; ``logic`` the same for its reconcilers.
* ``test_oned``: the test oned (``python3 -m stratuslab_test_oned`` from
  products/test_oned/src, started through its tests' oned_support) on a free port with a temporary
  state file, stopped after the test module.
* ``RealOned``: the real oned 7.4.0 from the tree `make one-packages` builds
  (REAL_TREE), run by tools/opennebula/run-oned-tree in a directory of its
  own; ``needs_real_oned`` skips a test module where the tree is absent;
  ``real_oned`` one for a test module, ``running_real_oned`` one for a
  fixture that sets it up further.
* ``main_kwargs``: what a module of library/ gives its AnsibleModule.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# The test oned's command line and environment (its tests' support module).
sys.path.insert(0, str(REPO / "products" / "test_oned" / "tests"))
from oned_support import oned_argv, oned_env  # noqa: E402


FIXTURES = REPO / "tests" / "fixtures" / "opennebula"
SAMPLES = FIXTURES / "samples-7.4.0"


# The modules import their helpers as ansible.module_utils.<name>: the
# repository's module_utils/ serves those names (as ansible.cfg's module_utils
# path does for Ansible).
import ansible.module_utils  # noqa: E402  (the venv's ansible-core)

if str(REPO / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(REPO / "module_utils"))


def _layer(*names):
    """The public names of the package's modules, in one namespace (later modules win)."""
    merged = {}
    for name in names:
        mod = importlib.import_module("ansible.module_utils.stratuslab_one." + name)
        merged.update((k, v) for k, v in vars(mod).items() if not k.startswith("__"))
    return types.SimpleNamespace(**merged)


# ``one``: the client layer; ``logic``: the reconcilers; BASE the module base
# (run_one_module looks OneModule up there).
ONE = _layer("errors", "template", "model", "transport", "module")
LOGIC = _layer("module", "cluster", "host", "vnet", "vnets", "datastore", "image")
BASE = importlib.import_module("ansible.module_utils.stratuslab_one.module")


@pytest.fixture(scope="session")
def fixtures_dir():
    assert SAMPLES.is_dir(), "%s is missing: it is part of the repository" % SAMPLES
    return FIXTURES


@pytest.fixture
def one():
    return ONE


@pytest.fixture
def logic():
    return LOGIC


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port, proc, log, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("test oned exited with %s: %s" % (proc.returncode, log.read_text()[-2000:]))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("test oned did not listen on %d" % port)


class OnedProcess:
    def __init__(self, tmp_path, extra_args=()):
        self.port = free_port()
        self.state = tmp_path / "oned-state.json"
        self.url = "http://127.0.0.1:%d/RPC2" % self.port
        self.username, self.password = "oneadmin", "opennebula"
        cmd = oned_argv("--listen", "127.0.0.1:%d" % self.port, "--state", self.state, *extra_args,
                        python=str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable))
        # oned's per-call log goes to a file: an unread pipe would fill up and stall the server
        self.log = tmp_path / "oned.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=oned_env(), stdout=log, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, self.log)

    def client(self, **kwargs):
        return ONE.OneClient(url=self.url, username=self.username, password=self.password, **kwargs)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def test_oned(tmp_path_factory):
    oned = OnedProcess(tmp_path_factory.mktemp("oned"))
    yield oned
    oned.stop()


REAL_TREE = Path(os.environ.get("STRATUSLAB_ONE_TREE", "/var/cache/stratuslab-test/opennebula/current/tree"))
RUN_ONED_TREE = REPO / "tools" / "opennebula" / "run-oned-tree"
needs_real_oned = pytest.mark.skipif(
    not (REAL_TREE / "bin" / "oned").is_file(),
    reason="no OpenNebula 7.4.0 tree at %s: run `make one-packages` to build the real oned these tests use"
    % REAL_TREE)


class FakeClock:
    """time.monotonic for a client whose sleeps are recorded: each sleep advances it."""

    def __init__(self, now=0.0):
        self.now = now
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def pool_answer(kind, states, error_state=None, error=""):
    """oned's answer to one.<kind>pool.info (kind host or vnet): object i named
    n<i> (hosts) or v<i> (vnets) in state states[i], with ``error`` as its
    TEMPLATE/ERROR when in error_state; listed by descending id, as oned does."""
    tag, prefix = {"host": ("HOST", "n"), "vnet": ("VNET", "v")}[kind]
    items = "".join("<%s><ID>%d</ID><NAME>%s%d</NAME><STATE>%d</STATE><TEMPLATE>%s</TEMPLATE></%s>" % (
        tag, i, prefix, i, s, "<ERROR><![CDATA[%s]]></ERROR>" % error if s == error_state else "", tag)
        for i, s in sorted(states.items(), reverse=True))
    return [True, "<%s_POOL>%s</%s_POOL>" % (tag, items, tag), 0]


def ranges(client, name):
    """The address ranges of vnet ``name``: (first IP, size, the module's key)."""
    return [(a.ip, a.size, a.attributes.get(LOGIC.AR_KEY_ATTR)) for a in client.vnpool().get(name).ars]


# A block of free ports for run-oned-tree (PORT to PORT+3).
sys.path.insert(0, str(REPO / "tools"))
from free_ports import free_port_block  # noqa: E402


class RealOned:
    """A real oned in ``directory``: start() (again after stop(): the database is kept), stop()."""

    username = "oneadmin"

    def __init__(self, directory):
        self.directory = Path(directory)
        self.password = "real-" + secrets.token_hex(8)
        self.port = None
        self.url = None

    def start(self, attempts=3):
        error = ""
        for _ in range(attempts):
            port = self.port or free_port_block()
            proc = subprocess.run([str(RUN_ONED_TREE), "start", str(REAL_TREE), str(self.directory), str(port),
                                   self.password], capture_output=True, text=True, timeout=180)
            if proc.returncode == 0:
                self.port, self.url = port, "http://127.0.0.1:%d/RPC2" % port
                return self
            error = proc.stderr[-3000:]
        raise RuntimeError("run-oned-tree could not start the real oned: %s" % error)

    def stop(self):
        subprocess.run([str(RUN_ONED_TREE), "stop", str(self.directory)], capture_output=True, timeout=60)

    def client(self, **kwargs):
        return ONE.OneClient(url=self.url, username=self.username, password=self.password, **kwargs)


class _MainCaptured(Exception):
    pass


def main_kwargs(name, patch):
    """(library/<name>.py loaded as a module, the keyword arguments its main()
    gives the AnsibleModule class). ``patch(module, fake)`` puts ``fake``
    where main() looks that class up; main() stops there."""
    spec = importlib.util.spec_from_file_location("library_" + name, REPO / "library" / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    captured = {}

    def fake(**kwargs):
        captured.update(kwargs)
        raise _MainCaptured()

    patch(mod, fake)
    try:
        mod.main()
    except _MainCaptured:
        return mod, captured
    raise AssertionError("main() of library/%s.py ended without building its module" % name)


@contextlib.contextmanager
def running_real_oned(tmp_path_factory):
    """A real oned in a new directory of ``tmp_path_factory``, stopped (and
    everything its drivers started) on leaving; the test fails where it cannot start."""
    oned = RealOned(tmp_path_factory.mktemp("real-oned"))
    try:
        oned.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield oned
    finally:
        oned.stop()


@pytest.fixture(scope="module")
def real_oned(tmp_path_factory):
    """A real oned of the test module's own, stopped after it."""
    with running_real_oned(tmp_path_factory) as oned:
        yield oned
