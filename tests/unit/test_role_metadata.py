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


def _entry_points(role):
    return [p for p in sorted((role / "tasks").glob("*.yml")) if p.name != "set_vars.yml"]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_os_data_is_loaded_once_per_run(role):
    # The entry points include set_vars.yml only while __<role>_os_supported
    # is undefined: the OS data files must define it, vars/main.yml must not
    # (it would keep set_vars.yml from ever running), and set_vars.yml sets
    # no fact (a value worked out there would be missing where it is skipped).
    # bridge is the exception: its set_vars.yml reads the node's links each time.
    gate = f"__{role.name}_os_supported"
    assert gate not in _load(role / "vars" / "main.yml"), f"{role.name}: vars/main.yml defines {gate}"
    families = [p for p in (role / "vars").glob("*.yml") if p.name != "main.yml" and "_" not in p.stem]
    assert families, f"{role.name} has no vars/<family>.yml"
    for path in families:
        assert role.name == "bridge" or gate in _load(path), f"{path.relative_to(ROOT)} does not define {gate}"
    includes = [(path, task) for path in _entry_points(role) for task in _load(path) or []
                if isinstance(task, dict) and "set_vars.yml" in (task.get("ansible.builtin.include_tasks"),
                                                                  task.get("ansible.builtin.import_tasks"))]
    assert includes, f"{role.name}: no entry point includes set_vars.yml"
    set_vars = _load(role / "tasks" / "set_vars.yml")
    for path, task in includes:
        if role.name == "bridge":
            assert "when" not in task, f"{path.relative_to(ROOT)}: bridge reads its links on every entry"
        else:
            assert "ansible.builtin.include_tasks" in task, f"{path.relative_to(ROOT)}: an import cannot be skipped"

            assert task.get("when") == f"{gate} is not defined", f"{path.relative_to(ROOT)}: {task.get('name')}"
            assert not [t for t in set_vars if "ansible.builtin.set_fact" in t], \
                f"{role.name}: set_vars.yml sets a fact, which a skipped set_vars.yml would leave unset"
