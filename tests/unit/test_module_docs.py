"""Every module in library/ renders with ``ansible-doc -M library <module>``.

ansible-doc reads DOCUMENTATION, EXAMPLES and RETURN as YAML and merges the
doc fragments (ansible.cfg's doc_fragment_plugins); a description line that
YAML reads as a mapping ("- Word: more words") or any other malformed doc
makes it fail for that module only, which no other test notices. The
OpenNebula modules' documentation is also compared with their argument_spec
in tests/unit/opennebula/test_one_docs.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DOC = Path(sys.executable).with_name("ansible-doc")
MODULES = sorted(p.stem for p in (REPO / "library").glob("*.py") if not p.name.startswith("_"))


def test_every_module_is_checked():
    # the glob found the library (the modules the roles use are among them)
    assert {"appliance_verify", "opennebula_cluster", "opennebula_datastore", "opennebula_hosts", "opennebula_image",
            "opennebula_user", "opennebula_vnets"} <= set(MODULES), MODULES


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_renders_module(name, tmp_path):
    out = subprocess.run([str(ANSIBLE_DOC), "-M", "library", name], cwd=str(REPO),
                         capture_output=True, text=True, timeout=180, check=False,
                         env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                              "HOME": str(tmp_path), "LANG": os.environ.get("LANG", "C.UTF-8"),
                              "PATH": str(ANSIBLE_DOC.parent) + os.pathsep + "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), "ansible-doc printed nothing for %s: %s" % (name, out.stderr)
    text = out.stdout.replace("\x1b[1m", "").replace("\x1b[0m", "")
    assert "> MODULE %s" % name in text
    assert "[ERROR]" not in out.stderr and "[WARNING]" not in out.stderr, out.stderr
