"""Each module's DOCUMENTATION (with the shared doc fragment) matches its argument_spec."""

from __future__ import annotations

import importlib.util
import subprocess

import pytest
import yaml

from one_testlib import REPO

MODULES = sorted(p.stem for p in (REPO / "library").glob("opennebula_*.py"))
FRAGMENT = REPO / "module_utils" / "doc_fragments" / "stratuslab_one.py"


class _Captured(Exception):
    pass


def argument_spec_of(name):
    spec = importlib.util.spec_from_file_location("doc_" + name, REPO / "library" / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    captured = {}

    def fake_module(**kwargs):
        captured.update(kwargs)
        raise _Captured()

    mod.AnsibleModule = fake_module
    with pytest.raises(_Captured):
        mod.main()
    return mod, captured


def doc_options(mod):
    doc = yaml.safe_load(mod.DOCUMENTATION)
    frag_spec = importlib.util.spec_from_file_location("frag", FRAGMENT)
    frag = importlib.util.module_from_spec(frag_spec)
    frag_spec.loader.exec_module(frag)
    options = dict(yaml.safe_load(frag.ModuleDocFragment.DOCUMENTATION)["options"])
    options.update(doc["options"])
    assert doc["extends_documentation_fragment"] == ["stratuslab_one"]
    return doc, options


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
def test_documentation_matches_argument_spec(name):
    mod, kwargs = argument_spec_of(name)
    doc, options = doc_options(mod)
    assert doc["module"] == name
    compare(options, kwargs["argument_spec"], name)
    assert kwargs["supports_check_mode"] is True
    assert kwargs["argument_spec"]["api_password"]["no_log"] is True
    yaml.safe_load(mod.EXAMPLES)
    ret = yaml.safe_load(mod.RETURN)
    assert "api_calls" in ret


def test_ansible_doc_renders_every_module(tmp_path):
    out = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-doc"), "-M", "library"] + MODULES,
                         cwd=str(REPO), capture_output=True, text=True, timeout=120,
                         env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": "/usr/bin:/bin",
                              "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    for name in MODULES:
        assert "> MODULE %s" % name in out.stdout.replace("\x1b[1m", "").replace("\x1b[0m", "")
    assert "api_password" in out.stdout


@pytest.mark.parametrize("name", ["opennebula_hosts", "opennebula_vnets"])
def test_batch_modules_documented(name):
    """The batch modules are covered above (nested suboptions included) and document their diff as diff-mode only."""
    assert name in MODULES
    mod, kwargs = argument_spec_of(name)
    doc, options = doc_options(mod)
    ret = yaml.safe_load(mod.RETURN)
    assert ret["diff"]["returned"] == "in diff mode"
    assert doc["attributes"]["diff_mode"]["support"] == "full"
    if name == "opennebula_vnets":
        nested = kwargs["argument_spec"]["vnets"]["options"]
        assert "address_ranges" in nested and options["vnets"]["suboptions"]["address_ranges"]["suboptions"]
        assert nested["address_ranges"]["options"]["key"]["no_log"] is False
