"""roles/base/files/stratuslab_module_cache.py: compiled code of Ansible's payloads, kept.

Each case runs a fresh Python, as each Ansible module run on a host is one,
with the finder installed on a cache directory of its own (owned by the
user running the tests, as root's is on a site host). The payloads are zips
laid out as Ansible's are (the package first on sys.path, a new temporary
path each run), and one case runs real Ansible modules through
`ansible localhost` twice.
"""

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HOOK_DIR = ROOT / "roles" / "base" / "files"

# Runs in the child: install the finder, count every compile of a file of the
# payload (zipimport calls the builtin compile too), import, report.
CHILD = textwrap.dedent(
    """
    import builtins, json, sys, traceback
    sys.path.insert(0, sys.argv[1])
    import stratuslab_module_cache
    compiled = []
    real_compile = builtins.compile
    def counting_compile(source, filename, *args, **kwargs):
        if '.zip' in str(filename):
            compiled.append(str(filename))
        return real_compile(source, filename, *args, **kwargs)
    builtins.compile = counting_compile
    installed = stratuslab_module_cache.install(sys.argv[2], owner_uid=int(sys.argv[3]))
    sys.path.insert(0, sys.argv[4])
    import ansible_demo.utils.text as text
    import ansible_demo.modules.hello as hello
    try:
        hello.fail()
    except RuntimeError:
        where = traceback.extract_tb(sys.exc_info()[2])[-1].filename
    import other_pkg
    print(json.dumps({
        "installed": installed,
        "compiled": compiled,
        "greeting": hello.greet("site"),
        "shout": text.shout("x"),
        "file": hello.__file__,
        "code_file": hello.greet.__code__.co_filename,
        "traceback_file": where,
        "package_path": list(__import__("ansible_demo").__path__),
    }))
    """
)


def _payload(directory, greeting="hello"):
    """A zip laid out as Ansible's payload: ansible_demo package, module, utils."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "ansible_demo_payload.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ansible_demo/__init__.py", '"""Top."""\n')
        zf.writestr("ansible_demo/utils/__init__.py", '"""Utils."""\n')
        zf.writestr("ansible_demo/utils/text.py", "def shout(s):\n    return s.upper() + '!'\n")
        zf.writestr("ansible_demo/modules/__init__.py", '"""Modules."""\n')
        zf.writestr(
            "ansible_demo/modules/hello.py",
            "from ansible_demo.utils.text import shout\n\n"
            "def greet(name):\n    return shout('%s ' + name)\n\n"
            "def fail():\n    raise RuntimeError('boom')\n" % greeting,
        )
        zf.writestr("other_pkg/__init__.py", "VALUE = 1\n")
    return path


def _run(cache, payload, owner_uid=None):
    owner_uid = os.geteuid() if owner_uid is None else owner_uid
    proc = subprocess.run(
        [sys.executable, "-S", "-c", CHILD, str(HOOK_DIR), str(cache), str(owner_uid), str(payload)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def cache(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    os.chmod(directory, 0o700)
    return directory


def _entries(cache):
    return sorted(p.name for p in cache.iterdir())


def test_first_run_compiles_and_keeps_each_source(tmp_path, cache):
    out = _run(cache, _payload(tmp_path / "run1"))
    assert out["installed"] is True
    assert out["greeting"] == "HELLO SITE!"
    # Five files named ansible*: each compiled once (zipimport alone compiles twice).
    assert len([f for f in out["compiled"] if "/ansible_demo/" in f]) == 5, out["compiled"]
    assert len(_entries(cache)) == 5
    assert all(oct(os.stat(cache / name).st_mode & 0o777) == "0o600" for name in _entries(cache))


def test_second_run_from_a_new_path_compiles_nothing_and_names_the_new_files(tmp_path, cache):
    _run(cache, _payload(tmp_path / "run1"))
    before = _entries(cache)
    second = tmp_path / "run2"
    out = _run(cache, _payload(second))
    assert _entries(cache) == before
    assert [f for f in out["compiled"] if "/ansible_demo/" in f] == []
    expected = str(second / "ansible_demo_payload.zip") + "/ansible_demo/modules/hello.py"
    assert out["file"] == expected
    assert out["code_file"] == expected
    assert out["traceback_file"] == expected
    assert out["package_path"] == [str(second / "ansible_demo_payload.zip") + "/ansible_demo"]
    assert out["greeting"] == "HELLO SITE!" and out["shout"] == "X!"


def test_changed_source_is_compiled_again_never_served_stale(tmp_path, cache):
    _run(cache, _payload(tmp_path / "run1", greeting="hello"))
    out = _run(cache, _payload(tmp_path / "run2", greeting="goodbye"))
    assert out["greeting"] == "GOODBYE SITE!"
    assert [f.rsplit("/", 1)[-1] for f in out["compiled"] if "/ansible_demo/" in f] == ["hello.py"]
    assert len(_entries(cache)) == 6


def test_names_outside_ansible_are_compiled_each_run_not_kept(tmp_path, cache):
    for run in ("run1", "run2"):
        out = _run(cache, _payload(tmp_path / run))
        assert [f.split(".zip/")[1] for f in out["compiled"] if "other_pkg" in f] == ["other_pkg/__init__.py"]
    assert len(_entries(cache)) == 5


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o755])
def test_a_cache_others_may_use_is_ignored(tmp_path, cache, mode):
    os.chmod(cache, mode)
    out = _run(cache, _payload(tmp_path / "run1"))
    assert out["installed"] is False
    assert out["greeting"] == "HELLO SITE!"
    assert _entries(cache) == []


def test_a_cache_of_another_owner_is_ignored(tmp_path, cache):
    out = _run(cache, _payload(tmp_path / "run1"), owner_uid=os.geteuid() + 1)
    assert out["installed"] is False
    assert _entries(cache) == []


def test_a_missing_cache_directory_is_ignored(tmp_path):
    out = _run(tmp_path / "absent", _payload(tmp_path / "run1"))
    assert out["installed"] is False
    assert out["greeting"] == "HELLO SITE!"


def test_a_corrupt_entry_falls_back_to_compiling(tmp_path, cache):
    _run(cache, _payload(tmp_path / "run1"))
    for name in _entries(cache):
        (cache / name).write_bytes(b"not marshal data")
    out = _run(cache, _payload(tmp_path / "run2"))
    assert out["greeting"] == "HELLO SITE!" and out["shout"] == "X!"
    assert len([f for f in out["compiled"] if "/ansible_demo/" in f]) == 5
    # Rewritten good: the next run compiles nothing.
    out = _run(cache, _payload(tmp_path / "run3"))
    assert [f for f in out["compiled"] if "/ansible_demo/" in f] == []


def test_role_pth_line_is_valid_and_silent_without_the_module(tmp_path):
    tasks = yaml.safe_load((ROOT / "roles" / "base" / "tasks" / "module_cache.yml").read_text(encoding="utf-8"))
    entries = tasks[0]["stratuslab_files"]["entries"]
    pth = next(e["content"] for e in entries if e["path"].endswith(".pth"))
    cache_dir = yaml.safe_load((ROOT / "roles" / "base" / "vars" / "main.yml").read_text())["__base_module_cache_dir"]
    pth = pth.replace("{{ __base_module_cache_dir }}", cache_dir)
    assert "{{" not in pth
    site = tmp_path / "site"
    site.mkdir()
    (site / "stratuslab_module_cache.pth").write_text(pth, encoding="utf-8")
    probe = "import site, sys; site.addsitedir(sys.argv[1]); print('ok')"
    # Without the module next to it: no error, no output on stderr.
    proc = subprocess.run([sys.executable, "-S", "-c", probe, str(site)], capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "ok", "")
    # With it: the line imports it and calls install() on the role's directory.
    (site / "stratuslab_module_cache.py").write_text(
        "calls = []\ndef install(path):\n    calls.append(path)\n", encoding="utf-8")
    probe = ("import site, sys; site.addsitedir(sys.argv[1]); "
             "import stratuslab_module_cache as m; print(m.calls)")
    proc = subprocess.run([sys.executable, "-S", "-c", probe, str(site)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.strip() == repr([cache_dir])


def test_real_ansible_modules_run_the_same_from_the_cache(tmp_path, cache):
    """Two `ansible localhost` runs of real modules: the second compiles nothing of its payloads."""
    site = tmp_path / "pysite"
    site.mkdir()
    log = tmp_path / "compiled.log"
    # sitecustomize stands in for the .pth: installs the finder and logs each
    # compile of a payload file in the module's Python.
    (site / "sitecustomize.py").write_text(textwrap.dedent(
        f"""
        import builtins, sys
        sys.path.insert(0, {str(HOOK_DIR)!r})
        import stratuslab_module_cache
        stratuslab_module_cache.install({str(cache)!r}, owner_uid={os.geteuid()})
        def _log(name):
            with open({str(log)!r}, 'a') as f:
                f.write(str(name) + '\\n')
        _compile = builtins.compile
        def compile(source, filename, *a, **k):
            if '_payload' in str(filename):
                _log(filename)
            return _compile(source, filename, *a, **k)
        builtins.compile = compile
        """), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(site), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    cmds = [
        ["ansible", "localhost", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         "-m", "ansible.builtin.getent", "-a", "database=passwd key=root"],
        ["ansible", "localhost", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         "-m", "ansible.builtin.stat", "-a", f"path={ROOT / 'site.yml'}"],
    ]
    outputs = []
    for attempt in range(2):
        if log.exists():
            log.unlink()
        run_outputs = []
        for cmd in cmds:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            run_outputs.append(proc.stdout)
        compiled = log.read_text().splitlines() if log.exists() else []
        outputs.append((run_outputs, compiled, len(_entries(cache))))
    (first, first_compiled, first_entries), (second, second_compiled, second_entries) = outputs
    assert len(first_compiled) > 40 and first_entries > 40
    assert second_compiled == []
    assert second_entries == first_entries
    assert '"root"' in second[0] or "root:" in second[0]
    assert "exists: true" in second[1] or '"exists": true' in second[1]
