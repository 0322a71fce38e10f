"""The accounting role installs the service's wheel without pip: versions side by side, one current.

The role's package.yml and prune.yml run with ansible-playbook on this
machine (connection local), into a directory of the test's own instead of
/usr/local/lib/stratuslab-accounting, with wheels built from
products/accounting by tools/products/build-wheel (the real one, and copies
of the source with other versions). The play's own handler, which listens
to the role's "Restart accounting", records each restart the role asks for.

What a site sees: the first run unpacks the version and points `current` at
it, and the service imports from there; a rerun changes nothing and
restarts nothing; --check --diff predicts a new version and changes nothing;
a new version becomes current, the old one previous, and both stay; a wheel
that cannot be unpacked fails the run and leaves the running version
current; the next version removes the one before the previous; a wheel
rebuilt with the same version gets a directory of its own, and a broken one
of the running version leaves the running files whole. (What the
wheel holds, and that it runs unpacked: products/accounting/tests/test_wheel.py.)
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from preflight_testlib import run_playbook

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "accounting"
BUILD = ROOT / "tools" / "products" / "build-wheel"
PRODUCT = ROOT / "products" / "accounting"
SOURCE_VERSION = re.search(r'^__version__ = "([^"]+)"', (PRODUCT / "src" / "stratuslab_accounting" / "__init__.py")
                           .read_text(encoding="utf-8"), re.M).group(1)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the role makes the files root's: run as root")

PLAY = """\
- name: Install the accounting service's wheel as the role does
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {role}/vars/main.yml
  vars:
    role_path: {role}
  tasks:
    - name: Unpack and switch
      ansible.builtin.import_tasks: {role}/tasks/package.yml
    - name: Prune
      ansible.builtin.import_tasks: {role}/tasks/prune.yml
  handlers:
    - name: Record the restart the role asks for
      ansible.builtin.lineinfile:
        path: {restarts}
        line: "restart {{{{ __accounting_package_release }}}}"
        create: true
        mode: "0644"
      listen: Restart accounting
"""


def build(version, out, name=None, extra=""):
    """The service's wheel at ``version`` (the source's, or a copy of the source with another
    version, and ``extra`` appended to the package's __init__.py: the same version rebuilt)."""
    product = PRODUCT
    name = name or version
    if version != SOURCE_VERSION or extra:
        product = out / ("src-" + name)
        shutil.copytree(PRODUCT, product, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        init = product / "src" / "stratuslab_accounting" / "__init__.py"
        init.write_text(init.read_text(encoding="utf-8").replace(SOURCE_VERSION, version) + extra,
                        encoding="utf-8")
    proc = subprocess.run([sys.executable, str(BUILD), str(product), str(out / name)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Path(proc.stdout.strip().splitlines()[-1])


def release(wheel):
    """The directory the role unpacks ``wheel`` into: its version and the start of its sha256."""
    version = wheel.name.split("-")[1]
    return version + "-" + hashlib.sha256(wheel.read_bytes()).hexdigest()[:12]


class Site:
    def __init__(self, tmp):
        self.tmp = tmp
        self.install = tmp / "lib" / "stratuslab-accounting"
        self.restarts = tmp / "restarts"

    def run(self, wheel, *args):
        proc = run_playbook(self.tmp / "play", PLAY.format(role=ROLE, restarts=self.restarts), "localhost,",
                            extra_vars={"accounting_install_dir": str(self.install),
                                        "accounting_package_wheel": str(wheel)},
                            args=list(args))
        recap = re.search(r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                          proc.stdout, re.M)
        assert recap, proc.stdout[-3000:] + proc.stderr[-2000:]
        assert "[WARNING]" not in proc.stdout + proc.stderr, proc.stdout[-3000:] + proc.stderr[-2000:]
        return proc, int(recap.group(2)), int(recap.group(4))

    def link(self, name):
        path = self.install / name
        return os.readlink(path) if path.is_symlink() else None

    def entries(self):
        return sorted(p.name for p in self.install.iterdir())

    def restarted(self):
        text = self.restarts.read_text() if self.restarts.exists() else ""
        self.restarts.unlink(missing_ok=True)
        return text.split("\n")[:-1]

    def imported_version(self, what="__version__"):
        """What `python3 -m stratuslab_accounting` would import, as the units run it (PYTHONPATH=current)."""
        proc = subprocess.run(["/usr/bin/python3", "-c",
                               "import stratuslab_accounting as s; print(s.%s, s.__file__)" % what],
                              env={"PYTHONPATH": str(self.install / "current"), "PYTHONDONTWRITEBYTECODE": "1"},
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        version, path = proc.stdout.split()
        assert path.startswith(str(self.install / "current") + "/"), path
        return version


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    versions = {v: build(v, out) for v in (SOURCE_VERSION, "99.0.1", "99.0.2")}
    # A wheel of another version that unzip cannot read whole: its second half is cut off.
    broken = out / "broken" / "stratuslab_accounting-99.0.3-py3-none-any.whl"
    broken.parent.mkdir()
    data = versions["99.0.2"].read_bytes()
    broken.write_bytes(data[:len(data) // 2])
    versions["broken"] = broken
    # 99.0.2 rebuilt with other content, and a broken wheel of that same version.
    versions["99.0.2 rebuilt"] = build("99.0.2", out, name="rebuilt", extra="REBUILT = 1\n")
    again = out / "broken-again" / "stratuslab_accounting-99.0.2-py3-none-any.whl"
    again.parent.mkdir()
    data = versions["99.0.2 rebuilt"].read_bytes()
    again.write_bytes(data[:len(data) // 2])
    versions["99.0.2 broken"] = again
    return versions


def test_check_mode_on_a_new_host_predicts_and_writes_nothing(wheels, tmp_path):
    site = Site(tmp_path)
    proc, changed, failed = site.run(wheels[SOURCE_VERSION], "--check", "--diff")
    assert failed == 0 and changed > 0, proc.stdout[-3000:]
    assert not site.install.exists() and not site.restarts.exists()


def test_install_rerun_check_update_failure_and_prune(wheels, tmp_path):
    site = Site(tmp_path)
    r = {name: release(wheel) for name, wheel in wheels.items()}
    # What a copy of the service that was not a wheel left in the directory.
    (site.install / "stratuslab_accounting").mkdir(parents=True)
    (site.install / "stratuslab_accounting" / "__init__.py").write_text("")

    proc, changed, failed = site.run(wheels[SOURCE_VERSION], "--diff")
    assert failed == 0 and changed > 0, proc.stdout[-3000:]
    assert site.link("current") == r[SOURCE_VERSION] and site.link("previous") is None
    assert site.entries() == sorted([r[SOURCE_VERSION], "current"])
    assert site.restarted() == ["restart " + r[SOURCE_VERSION]]
    assert site.imported_version() == SOURCE_VERSION
    for path in (site.install / r[SOURCE_VERSION]).rglob("*"):
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (0, 0), path
        assert st.st_mode & 0o7777 == (0o755 if path.is_dir() else 0o644), (path, oct(st.st_mode))

    proc, changed, failed = site.run(wheels[SOURCE_VERSION])
    assert (changed, failed) == (0, 0), proc.stdout[-3000:]
    assert site.restarted() == []

    before = site.entries()
    proc, changed, failed = site.run(wheels["99.0.1"], "--check", "--diff")
    assert failed == 0 and changed > 0, proc.stdout[-3000:]
    assert site.entries() == before and site.link("current") == r[SOURCE_VERSION]

    proc, changed, failed = site.run(wheels["99.0.1"])
    assert failed == 0 and changed > 0, proc.stdout[-3000:]
    assert (site.link("current"), site.link("previous")) == (r["99.0.1"], r[SOURCE_VERSION])
    assert site.restarted() == ["restart " + r["99.0.1"]]
    assert site.imported_version() == "99.0.1"

    proc, changed, failed = site.run(wheels["broken"])
    assert failed == 1, proc.stdout[-3000:]
    assert (site.link("current"), site.link("previous")) == (r["99.0.1"], r[SOURCE_VERSION])
    assert site.imported_version() == "99.0.1"
    assert site.restarted() == []

    proc, changed, failed = site.run(wheels["99.0.2"])
    assert failed == 0 and changed > 0, proc.stdout[-3000:]
    assert (site.link("current"), site.link("previous")) == (r["99.0.2"], r["99.0.1"])
    # The version before the previous one is gone, and so is the directory the broken wheel left.
    assert site.entries() == sorted([r["99.0.1"], r["99.0.2"], "current", "previous"])
    assert site.imported_version() == "99.0.2"

    proc, changed, failed = site.run(wheels["99.0.2"], "--check", "--diff")
    assert (changed, failed) == (0, 0), proc.stdout[-3000:]
    proc, changed, failed = site.run(wheels["99.0.2"])
    assert (changed, failed) == (0, 0), proc.stdout[-3000:]

    assert site.restarted() == ["restart " + r["99.0.2"]]

    # The same version rebuilt: a directory of its own, switched to like a new version.
    proc, changed, failed = site.run(wheels["99.0.2 rebuilt"])
    assert failed == 0 and changed > 0, proc.stdout[-3000:]
    assert r["99.0.2 rebuilt"] != r["99.0.2"]
    assert (site.link("current"), site.link("previous")) == (r["99.0.2 rebuilt"], r["99.0.2"])
    assert site.imported_version("REBUILT") == "1"
    assert site.restarted() == ["restart " + r["99.0.2 rebuilt"]]
    # A broken wheel of the running version touches none of the running files.
    running = {p: p.read_bytes() for p in (site.install / r["99.0.2 rebuilt"]).rglob("*") if p.is_file()}
    proc, changed, failed = site.run(wheels["99.0.2 broken"])
    assert failed == 1, proc.stdout[-3000:]
    assert (site.link("current"), site.link("previous")) == (r["99.0.2 rebuilt"], r["99.0.2"])
    assert {p: p.read_bytes() for p in (site.install / r["99.0.2 rebuilt"]).rglob("*") if p.is_file()} == running
    assert site.imported_version("REBUILT") == "1"
