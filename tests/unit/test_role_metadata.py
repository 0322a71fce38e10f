"""Every role keeps meta/argument_specs.yml in step with defaults/main.yml.

The argument specs are the roles' documented interface and what Ansible
validates inputs against; a default without a spec (or a spec without a
default) is drift that this test refuses. It also checks the parts every
role must have (README, tasks/main.yml, preflight).
"""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())

# Ansible's argument spec types, and the Python types a default may have.
TYPE_CHECKS = {
    "str": (str,),
    "path": (str,),
    "raw": (object,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def _load(path):
    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream) or {}


def _specs(role):
    return _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


def _defaults(role):
    return _load(role / "defaults" / "main.yml")


def test_there_are_roles():
    assert ROLES, "no role found under roles/"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_specs_mirror_defaults_key_for_key(role):
    specs, defaults = _specs(role), _defaults(role)
    only_defaults = sorted(set(defaults) - set(specs))
    only_specs = sorted(k for k in set(specs) - set(defaults) if not specs[k].get("required"))
    assert not only_defaults, "%s: defaults without an argument spec: %s" % (role.name, only_defaults)
    assert not only_specs, "%s: optional argument specs without a default: %s" % (role.name, only_specs)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_option_is_typed_and_described(role):
    for name, spec in _specs(role).items():
        assert spec.get("type") in TYPE_CHECKS, "%s: %s has no valid type" % (role.name, name)
        assert spec.get("description"), "%s: %s has no description" % (role.name, name)
        if spec["type"] == "list":
            assert spec.get("elements"), "%s: list %s says no elements type" % (role.name, name)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_public_names_carry_the_role_prefix(role):
    for name in _specs(role):
        assert name.startswith(role.name + "_"), "%s: option %s lacks the %s_ prefix" % (role.name, name, role.name)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_literal_defaults_match_their_type(role):
    specs = _specs(role)
    for name, value in _defaults(role).items():
        if isinstance(value, str) and "{{" in value:
            continue  # templated from the site file: checked by Ansible at run time
        spec = specs[name]
        assert isinstance(value, TYPE_CHECKS[spec["type"]]), (
            "%s: default of %s is %r, not of type %s" % (role.name, name, value, spec["type"]))
        if "choices" in spec:
            assert value in spec["choices"], "%s: default of %s is not among its choices" % (role.name, name)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_readme_preflight_and_table_of_contents(role):
    assert (role / "README.md").is_file(), "%s has no README.md" % role.name
    assert (role / "tasks" / "preflight.yml").is_file(), "%s has no tasks/preflight.yml" % role.name
    main = _load(role / "tasks" / "main.yml")
    for task in main:
        includes = {"ansible.builtin.include_tasks", "ansible.builtin.import_tasks"}
        assert includes & set(task), "%s: tasks/main.yml should only include task files, found %r" % (
            role.name, task.get("name"))
