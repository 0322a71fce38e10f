"""The wheel the accounting role installs: built from this folder by
tools/products/build-wheel (as `make accounting-wheel` builds it), it holds
the package and its metadata and nothing else, the same source gives the
same bytes, and the service runs from the wheel unpacked onto PYTHONPATH,
as the role's units run it (no pip, no install step)."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from acct_testlib import ROOT

PRODUCT = Path(ROOT) / "products" / "accounting"
PACKAGE = PRODUCT / "src" / "stratuslab_accounting"
VERSION = re.search(r'^__version__ = "([^"]+)"', (PACKAGE / "__init__.py").read_text(encoding="utf-8"), re.M).group(1)


def build(out):
    proc = subprocess.run([sys.executable, str(Path(ROOT) / "tools" / "products" / "build-wheel"), str(PRODUCT), str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build(tmp_path_factory.mktemp("wheel"))


def test_name_and_version_come_from_the_package(wheel):
    assert wheel.name == "stratuslab_accounting-%s-py3-none-any.whl" % VERSION
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read("stratuslab_accounting-%s.dist-info/METADATA" % VERSION).decode()
    assert "\nName: stratuslab-accounting\n" in metadata and "\nVersion: %s\n" % VERSION in metadata
    assert "\nRequires-Python: >=3.11\n" in metadata and "Requires-Dist" not in metadata


def test_wheel_holds_the_package_and_its_metadata_only(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    code = sorted(n for n in names if not n.startswith("stratuslab_accounting-%s.dist-info/" % VERSION))
    assert code == sorted("stratuslab_accounting/" + p.name for p in PACKAGE.glob("*.py"))
    assert sorted(set(names) - set(code)) == ["stratuslab_accounting-%s.dist-info/%s" % (VERSION, f)
                                              for f in ("METADATA", "RECORD", "WHEEL")]


def test_same_source_builds_the_same_bytes(wheel, tmp_path):
    """A rebuild (another clone, another day) unpacks to the same files: a host's rerun changes nothing."""
    assert build(tmp_path).read_bytes() == wheel.read_bytes()


def test_service_runs_from_the_unpacked_wheel(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path / "unpacked")
    env = {"PYTHONPATH": str(tmp_path / "unpacked"), "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(["/usr/bin/python3", "-m", "stratuslab_accounting", "--help"], cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "collect" in proc.stdout and "serve" in proc.stdout and "apel-export" in proc.stdout
    # The unpacked metadata names the version the package says.
    proc = subprocess.run(["/usr/bin/python3", "-c", "import importlib.metadata as m, stratuslab_accounting as s;"
                           " print(m.version('stratuslab-accounting'), s.__version__, s.__file__)"],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    version, declared, path = proc.stdout.split()
    assert version == declared == VERSION and path.startswith(str(tmp_path / "unpacked")), proc.stdout
