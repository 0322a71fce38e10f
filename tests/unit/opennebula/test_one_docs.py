"""Each module's DOCUMENTATION (with the shared doc fragment) matches its argument_spec."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from one_testlib import BASE, REPO, main_kwargs

MODULES = sorted(p.stem for p in (REPO / "library").glob("opennebula_*.py"))
ANSIBLE_DOC = REPO / ".venv" / "bin" / "ansible-doc"


def argument_spec_of(name, monkeypatch):
    """The module file and the keyword arguments its main() gives AnsibleModule (through run_one_module)."""
    def through_run_one_module(mod, fake):
        assert not hasattr(mod, "AnsibleModule"), "%s builds its own AnsibleModule, not through run_one_module" % name
        monkeypatch.setattr(BASE, "OneModule", fake)

    return main_kwargs(name, through_run_one_module)


def _ansible_doc(args, home):
    return subprocess.run([str(ANSIBLE_DOC), "-M", "library"] + args,
                          cwd=str(REPO), capture_output=True, text=True, timeout=180,
                          env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": "/usr/bin:/bin",
                               "HOME": str(home)})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """ansible-doc's own view of every module (doc fragments merged), as JSON."""
    out = _ansible_doc(["--json"] + MODULES, tmp_path_factory.mktemp("home"))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def doc_options(rendered, name):
    doc = rendered[name]["doc"]
    return doc, doc["options"]


def compare(options, spec, where):
    assert set(options) == set(spec), "%s: documented %s, argument_spec %s" % (where, sorted(options), sorted(spec))
    for name, arg in spec.items():
        doc = options[name]
        assert doc.get("type", "str") == arg.get("type", "str"), (where, name)
        assert doc.get("required", False) == arg.get("required", False), (where, name)
        assert doc.get("default") == arg.get("default"), (where, name)
        assert doc.get("choices") == arg.get("choices"), (where, name)
        assert doc.get("aliases", []) == arg.get("aliases", []), (where, name)
        assert doc.get("elements") == arg.get("elements"), (where, name)
        if "options" in arg:
            compare(doc["suboptions"], arg["options"], "%s.%s" % (where, name))


@pytest.mark.parametrize("name", MODULES)
def test_documentation_matches_argument_spec(name, rendered, monkeypatch):
    mod, kwargs = argument_spec_of(name, monkeypatch)
    doc, options = doc_options(rendered, name)
    assert doc["module"] == name
    compare(options, kwargs["argument_spec"], name)
    assert kwargs["supports_check_mode"] is True
    assert doc["attributes"]["check_mode"]["support"] == "full"
    if "id" in options:
        # name or id, never both (id 0 is valid, so presence is what counts)
        assert ("name", "id") in kwargs["required_one_of"] and ("name", "id") in kwargs["mutually_exclusive"]
    assert kwargs["argument_spec"]["api_password"]["no_log"] is True
    yaml.safe_load(mod.EXAMPLES)
    ret = yaml.safe_load(mod.RETURN)
    assert "api_calls" in ret


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_renders_each_module(name, tmp_path):
    out = _ansible_doc([name], tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout.replace("\x1b[1m", "").replace("\x1b[0m", "")
    assert "> MODULE %s" % name in text
    assert "api_password" in text and "RETURN VALUES" in text and "api_calls" in text


@pytest.mark.parametrize("name", ["opennebula_hosts", "opennebula_vnets"])
def test_batch_modules_documented(name, rendered, monkeypatch):
    """The batch modules are covered above (nested suboptions included) and document their diff as diff-mode only."""
    assert name in MODULES
    mod, kwargs = argument_spec_of(name, monkeypatch)
    doc, options = doc_options(rendered, name)
    ret = yaml.safe_load(mod.RETURN)
    assert ret["diff"]["returned"] == "in diff mode"
    assert doc["attributes"]["diff_mode"]["support"] == "full"
    if name == "opennebula_vnets":
        nested = kwargs["argument_spec"]["vnets"]["options"]
        assert "address_ranges" in nested and options["vnets"]["suboptions"]["address_ranges"]["suboptions"]
        assert nested["address_ranges"]["options"]["key"]["no_log"] is False
