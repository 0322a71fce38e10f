"""library/stratuslab_files.py through ansible-playbook on localhost (the module as roles call it)."""

from __future__ import annotations

import os

import pytest
import yaml

from module_testlib import REPO, run


def files_task(entries):
    return {"name": "files", "stratuslab_files": {"entries": entries}}


def tree(tmp_path, text="a = 1\n", mode="0640"):
    return [
        {"path": str(tmp_path / "etc"), "state": "directory", "mode": "0755"},
        {"path": str(tmp_path / "etc" / "one.conf"), "content": text, "mode": mode},
        {"path": str(tmp_path / "etc" / "two.conf"), "content": "b = 2\n", "mode": "0600"},
    ]


def mode_of(path):
    return f"{path.stat().st_mode & 0o7777:04o}"


def test_creates_then_changes_nothing(tmp_path):
    (first,) = run(tmp_path, [files_task(tree(tmp_path))])
    assert first["changed"] is True, first
    assert first["changed_paths"] == [str(tmp_path / "etc"), str(tmp_path / "etc/one.conf"),
                                      str(tmp_path / "etc/two.conf")]
    assert (tmp_path / "etc/one.conf").read_text() == "a = 1\n"
    assert [mode_of(tmp_path / p) for p in ("etc", "etc/one.conf", "etc/two.conf")] == ["0755", "0640", "0600"]
    before = (tmp_path / "etc/one.conf").stat().st_mtime_ns

    (second,) = run(tmp_path, [files_task(tree(tmp_path))])
    assert second["changed"] is False, second
    # A verbose run shows each file's length, not its text.
    assert [e["content"] for e in second["invocation"]["module_args"]["entries"]] == \
        [None, "(6 characters)", "(6 characters)"]
    assert second["changed_paths"] == []
    assert (tmp_path / "etc/one.conf").stat().st_mtime_ns == before
    assert sorted(os.listdir(tmp_path / "etc")) == ["one.conf", "two.conf"]  # no temporary file left


def test_only_what_differs_changes_and_the_diff_says_what(tmp_path):
    run(tmp_path, [files_task(tree(tmp_path))])
    os.chmod(tmp_path / "etc/two.conf", 0o644)
    (result,) = run(tmp_path, [files_task(tree(tmp_path, text="a = 3\n"))], diff=True)
    assert result["changed_paths"] == [str(tmp_path / "etc/one.conf"), str(tmp_path / "etc/two.conf")]
    one, two = result["diff"]
    assert (one["before"], one["after"]) == ("a = 1\n", "a = 3\n")
    assert (two["before"], two["after"]) == ("mode=0644\n", "mode=0600\n")
    assert (tmp_path / "etc/one.conf").read_text() == "a = 3\n"
    assert mode_of(tmp_path / "etc/two.conf") == "0600"


def test_check_mode_reports_and_writes_nothing(tmp_path):
    (result,) = run(tmp_path, [files_task(tree(tmp_path))], check=True, diff=True)
    assert result["changed"] is True, result
    assert len(result["changed_paths"]) == 3  # files in a directory still to be made are new, not an error
    assert not (tmp_path / "etc").exists()
    run(tmp_path, [files_task(tree(tmp_path))])
    (again,) = run(tmp_path, [files_task(tree(tmp_path, text="a = 9\n"))], check=True)
    assert again["changed_paths"] == [str(tmp_path / "etc/one.conf")]
    assert (tmp_path / "etc/one.conf").read_text() == "a = 1\n"


def test_validate_refuses_and_keeps_the_old_file(tmp_path):
    run(tmp_path, [files_task(tree(tmp_path))])
    entries = tree(tmp_path, text="broken\n")
    entries[1]["validate"] = "grep -q '^a = ' %s"
    (refused,) = run(tmp_path, [files_task(entries)])
    assert refused.get("failed") is True
    assert "failed validation" in refused["msg"] and "one.conf" in refused["msg"]
    assert (tmp_path / "etc/one.conf").read_text() == "a = 1\n"
    assert sorted(os.listdir(tmp_path / "etc")) == ["one.conf", "two.conf"]
    entries = tree(tmp_path, text="a = 2\n")
    entries[1]["validate"] = "grep -q '^a = ' %s"
    (accepted,) = run(tmp_path, [files_task(entries)])
    assert accepted["changed_paths"] == [str(tmp_path / "etc/one.conf")]


@pytest.mark.parametrize("entry, message", [
    ({"owner": "no-such-user-here"}, "owner 'no-such-user-here' does not exist"),
    ({"group": "no-such-group-here"}, "group 'no-such-group-here' does not exist"),
    ({"mode": "rw-r--r--"}, "is not an octal mode"),
    ({"content": None}, "a file entry needs content"),
])
def test_bad_entries_name_the_path(tmp_path, entry, message):
    target = {"path": str(tmp_path / "x.conf"), "content": "x\n", "mode": "0644"}
    target.update(entry)
    if target["content"] is None:
        del target["content"]
    (result,) = run(tmp_path, [files_task([target])])
    assert result.get("failed") is True
    assert str(tmp_path / "x.conf") in result["msg"] and message in result["msg"], result["msg"]
    assert not (tmp_path / "x.conf").exists()


def test_check_mode_takes_a_missing_owner_for_a_change(tmp_path):
    """In --check an earlier task would have made the account: report a change instead of failing."""
    run(tmp_path, [files_task(tree(tmp_path))])
    entries = tree(tmp_path)
    entries[1]["owner"] = "no-such-user-here"
    (result,) = run(tmp_path, [files_task(entries)], check=True)
    assert result.get("failed") is not True, result
    assert result["changed_paths"] == [str(tmp_path / "etc/one.conf")]
    (real,) = run(tmp_path, [files_task(entries)])
    assert real.get("failed") is True and "owner 'no-such-user-here' does not exist" in real["msg"]


def test_missing_parents_of_a_directory_are_made(tmp_path):
    deep = tmp_path / "spool" / "apel" / "outgoing"
    (result,) = run(tmp_path, [files_task([{"path": str(deep), "state": "directory", "mode": "0700"}])])
    assert result["changed_paths"] == [str(deep)]
    assert (mode_of(tmp_path / "spool"), mode_of(deep)) == ("0755", "0700")


def test_a_directory_is_not_replaced_by_a_file(tmp_path):
    (tmp_path / "x.conf").mkdir()
    (result,) = run(tmp_path, [files_task([{"path": str(tmp_path / "x.conf"), "content": "x\n", "mode": "0644"}])])
    assert result.get("failed") is True and "is not a regular file" in result["msg"]


def test_lookup_template_gives_the_template_modules_bytes(tmp_path):
    """Roles moved from template tasks to lookup('template') + this module: the bytes must not change
    (a converged site would otherwise report changes and restart services)."""
    (tmp_path / "t.j2").write_text("# {{ 'x' }}\n{% for i in [1, 2] %}\nline {{ i }}\n{% endfor %}\nlast\n\n")
    src = str(tmp_path / "t.j2")
    run(tmp_path, [
        {"name": "template", "ansible.builtin.template": {"src": src, "dest": str(tmp_path / "by-template")}},
        files_task([{"path": str(tmp_path / "by-module"), "mode": "0644",
                     "content": "{{ lookup('ansible.builtin.template', '%s') }}" % src}]),
    ])
    assert (tmp_path / "by-module").read_bytes() == (tmp_path / "by-template").read_bytes()
    assert (tmp_path / "by-module").read_bytes().endswith(b"last\n\n")


def test_arguments_that_fail_validation_get_ansibles_message(tmp_path):
    (result,) = run(tmp_path, [{"name": "files", "stratuslab_files": {"entries": [{"path": "/tmp/x"}]}}])
    assert result.get("failed") is True
    assert "missing required arguments: mode" in result["msg"], result["msg"]


def test_documentation_matches_the_argument_spec():
    import importlib.util
    spec = importlib.util.spec_from_file_location("stratuslab_files", REPO / "library" / "stratuslab_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]["entries"]
    code = module.ARGUMENT_SPEC["entries"]
    assert (documented["type"], documented["elements"], documented["required"]) == ("list", "dict", True)
    assert sorted(documented["suboptions"]) == sorted(code["options"])
    for name, option in code["options"].items():
        doc = documented["suboptions"][name]
        assert doc["type"] == option["type"], name
        assert doc.get("default") == option.get("default"), name
        assert doc.get("required", False) == option.get("required", False), name
        assert doc.get("choices") == option.get("choices"), name
