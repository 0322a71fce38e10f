"""library/stratuslab_package_facts.py through ansible-playbook on localhost.

Against this machine's own dpkg database (compared with ansible.builtin.package_facts, which
the roles used before), and against stand-in dpkg-query and rpm commands that print chosen
lines, so the status rules and the RPM parsing are checked too (the machine has no rpm).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys

import pytest
import yaml

from module_testlib import REPO, run

TOOL = r'''#!PYTHON
import os, sys
with open(os.environ["FAKE_PKG_LOG"], "a") as log:
    log.write(" ".join(sys.argv) + "\n")
sys.stdout.write(open(os.environ["FAKE_PKG_OUT"]).read())
sys.stderr.write(os.environ.get("FAKE_PKG_ERR", ""))
sys.exit(int(os.environ.get("FAKE_PKG_RC", "0")))
'''


@pytest.fixture()
def stand_in(tmp_path):
    """Make a stand-in for `name` that prints `output`; returns (env, calls())."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    out, log = tmp_path / "out.txt", tmp_path / "calls.log"
    log.write_text("")

    def make(name, output, rc=0, err=""):
        tool = bindir / name
        tool.write_text(TOOL.replace("PYTHON", sys.executable, 1))
        tool.chmod(0o755)
        out.write_text(output)
        env = {"PATH": f"{bindir}:/usr/bin:/bin", "FAKE_PKG_OUT": str(out), "FAKE_PKG_LOG": str(log),
               "FAKE_PKG_RC": str(rc), "FAKE_PKG_ERR": err}
        return env, lambda: log.read_text().splitlines()

    return make


def facts_task(**args):
    return {"name": "facts", "stratuslab_package_facts": args or None}


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="needs a Debian machine")
def test_same_packages_and_versions_as_package_facts(tmp_path):
    ours, theirs = run(tmp_path, [facts_task(), {"name": "builtin", "ansible.builtin.package_facts": {"manager": "apt"}}])
    assert not ours.get("failed"), ours.get("msg")
    assert not theirs.get("failed"), theirs.get("msg")
    assert ours["manager"] == "dpkg" and ours["changed"] is False
    mine, builtin = ours["ansible_facts"]["packages"], theirs["ansible_facts"]["packages"]
    assert len(builtin) > 50
    assert set(mine) == set(builtin)
    for name, instances in builtin.items():
        assert sorted((i["version"], i["arch"]) for i in mine[name]) == \
            sorted((i["version"], i["arch"]) for i in instances), name


def test_only_installed_packages_count(tmp_path, stand_in):
    env, calls = stand_in("dpkg-query", "".join(f"{status}\t{name}\t{version}\tamd64\n" for status, name, version in [
        ("ii ", "squid", "5.7-2+deb12u5"),
        ("iW ", "man-db", "2.11.2-2"),          # triggers awaited: installed
        ("it ", "libc-bin", "2.36-9"),          # triggers pending: installed
        ("rc ", "apache2", "2.4.62-1"),         # removed, configuration files kept
        ("un ", "slapd", ""),                   # known, never installed
        ("iU ", "postgresql", "15+248"),        # unpacked, not configured
        ("iF ", "qemu-utils", "1:7.2"),         # half-configured
        ("ii ", "libfoo1", "1.0-1"),
    ]) + "ii \tlibfoo1\t1.0-1\ti386\n")
    (result,) = run(tmp_path, [facts_task()], env=env)
    packages = result["ansible_facts"]["packages"]
    assert sorted(packages) == ["libc-bin", "libfoo1", "man-db", "squid"]
    assert packages["squid"] == [{"name": "squid", "version": "5.7-2+deb12u5", "arch": "amd64", "source": "dpkg"}]
    assert [i["arch"] for i in packages["libfoo1"]] == ["amd64", "i386"]
    (call,) = calls()
    assert call.split()[1:3] == ["-W", "-f"]


def test_check_mode_reads_too(tmp_path, stand_in):
    env, calls = stand_in("dpkg-query", "ii \tsquid\t5.7\tamd64\n")
    (result,) = run(tmp_path, [facts_task()], check=True, env=env)
    assert result["changed"] is False
    assert list(result["ansible_facts"]["packages"]) == ["squid"]
    assert len(calls()) == 1


def test_the_facts_are_what_the_roles_filter_reads(tmp_path, stand_in):
    env, _ = stand_in("dpkg-query", "ii \tsquid\t5.7\tamd64\nrc \tapache2\t2.4\tamd64\n")
    results = run(tmp_path, [
        facts_task(),
        {"name": "missing", "ansible.builtin.debug": {
            "msg": "{{ ['squid', 'apache2', 'curl'] | sl_missing_packages(ansible_facts) }}"}},
    ], env=env)
    assert results[1]["msg"] == ["apache2", "curl"]


def test_rpm_database(tmp_path, stand_in):
    env, calls = stand_in("rpm", "squid\t7:5.5-6.el9\tx86_64\nkernel\t5.14.0-1\tx86_64\nkernel\t5.14.0-2\tx86_64\n")
    (result,) = run(tmp_path, [facts_task(manager="rpm")], env=env)
    assert result["manager"] == "rpm"
    packages = result["ansible_facts"]["packages"]
    assert packages["squid"] == [{"name": "squid", "version": "7:5.5-6.el9", "arch": "x86_64", "source": "rpm"}]
    assert [i["version"] for i in packages["kernel"]] == ["5.14.0-1", "5.14.0-2"]
    assert calls()[0].split()[1:3] == ["-qa", "--qf"]


@pytest.mark.skipif(shutil.which("rpm") is not None, reason="needs a machine without rpm")
def test_a_missing_database_tool_is_named(tmp_path):
    (result,) = run(tmp_path, [facts_task(manager="rpm")])
    assert result["failed"] and "manager=rpm: no rpm on this host's PATH" in result["msg"]


def test_a_failing_query_fails_with_its_error(tmp_path, stand_in):
    env, _ = stand_in("dpkg-query", "", rc=2, err="dpkg-query: error: cannot access archive\n")
    (result,) = run(tmp_path, [facts_task(manager="dpkg")], env=env)
    assert result["failed"] and "rc 2" in result["msg"] and "cannot access archive" in result["msg"]


def test_unreadable_output_fails_naming_the_line(tmp_path, stand_in):
    env, _ = stand_in("dpkg-query", "ii  squid 5.7\n")
    (result,) = run(tmp_path, [facts_task()], env=env)
    assert result["failed"] and "unexpected dpkg-query line: 'ii  squid 5.7'" in result["msg"]


def test_documentation_matches_the_argument_spec():
    spec = importlib.util.spec_from_file_location("stratuslab_package_facts",
                                                  REPO / "library" / "stratuslab_package_facts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert set(documented) == set(module.ARGUMENT_SPEC)
    for name, option in module.ARGUMENT_SPEC.items():
        assert documented[name]["type"] == option["type"], name
        assert documented[name].get("choices") == option.get("choices"), name
        assert documented[name].get("default") == option.get("default"), name
    yaml.safe_load(module.EXAMPLES)
    yaml.safe_load(module.RETURN)
