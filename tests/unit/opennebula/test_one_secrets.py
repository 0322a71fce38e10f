"""No opennebula_* module returns its password, whatever the failure.

ansible-core collects the values of the no_log options in one pass over the
argument spec; a sub-option list given a string (``vnets: pub``) breaks that
pass, and its argument-spec failure then used to carry ``api_password`` in
``invocation``. Every module is run here with arguments ansible-core refuses,
and with a failure from oned, at -vvv, the results registered and printed;
the password must appear nowhere in the JSON callback's output or on stderr.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from one_testlib import OnedProcess
from one_playbook import ANSIBLE_PLAYBOOK, PYTHON, REPO, run_tasks

SECRET = "Zq9-never-show-me-4417"

# per module: arguments that make ansible-core's argument-spec validation fail
BAD_ARGUMENTS = {
    "opennebula_vnets": [{"vnets": "pub"},
                         {"vnets": [{"name": "a", "address_ranges": "10.0.0.1"}]},
                         {"vnets": [{"name": "a", "address_ranges": [{"ip": "10.0.0.1"}]}]}],
    "opennebula_cluster": [{"name": "a", "exclusive": "perhaps"}],
    "opennebula_hosts": [{"hosts": ["a"], "wait_timeout": "soon"},
                         {"hosts": ["a"], "template": "not a dict"}],
    "opennebula_datastore": [{"name": "a", "type": "bogus"}],
    "opennebula_image": [{"name": "a", "state": "absent", "wait": "maybe"}],
}
# per module: arguments that pass validation and fail at oned (or in the module)
ONED_FAILURES = {
    "opennebula_vnets": {"vnets": [{"name": "a", "clusters": ["nosuch"]}]},
    "opennebula_cluster": {"id": 9999},
    "opennebula_hosts": {"hosts": ["a"], "cluster": "nosuch"},
    "opennebula_datastore": {"id": 9999},
    "opennebula_image": {"name": "a", "datastore": "nosuch", "path": "/nonexistent.qcow2"},
}


@pytest.fixture(scope="module")
def oned(tmp_path_factory):
    """A test oned whose oneadmin password is SECRET."""
    state = tmp_path_factory.mktemp("oned-secret")
    auth = state / "one_auth"
    auth.write_text("oneadmin:%s\n" % SECRET)
    auth.chmod(0o600)
    proc = OnedProcess(state, extra_args=["--auth", str(auth)])
    proc.password = SECRET
    yield proc
    proc.stop()


def _tasks(oned, module, args, index):
    """The module task (password given as api_password, or its alias api_token), registered, then printed."""
    password_key = "api_token" if index % 2 else "api_password"
    register = "__result_%d" % index
    return [{"name": "%s %d" % (module, index), "ignore_errors": True, "register": register,
             module: dict(args, api_url=oned.url, api_username="oneadmin", **{password_key: SECRET})},
            {"name": "show %d" % index, "debug": {"var": register}}]


def _cases():
    for module, bad_list in BAD_ARGUMENTS.items():
        for args in bad_list:
            yield module, args
        yield module, ONED_FAILURES[module]


def _run_verbose(tmp_path, book):
    """ansible-playbook -vvv with the default callback, which prints each result's invocation."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"), ANSIBLE_HOME=str(tmp_path / "ansible-home"))
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    return subprocess.run([str(ANSIBLE_PLAYBOOK), "-vvv", "-i", "localhost,",
                           "-e", "ansible_python_interpreter=%s" % PYTHON, str(book)],
                          cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300)


def test_no_module_returns_the_password(oned, tmp_path):
    tasks, cases = [], list(_cases())
    for index, (module, args) in enumerate(cases):
        tasks.extend(_tasks(oned, module, args, index))
    run = run_tasks(tmp_path, tasks, oned, connection=False)
    results = run.results[0::2]
    assert len(results) == len(cases)
    for (module, args), res in zip(cases, results):
        assert res.get("failed"), (module, args, res)
    leaking = [r["_task"] for r in run.results if SECRET in str(r)]
    assert SECRET not in run.stdout and SECRET not in run.stderr, leaking
    # the registered results, printed by debug, are in the JSON output above; at -vvv too
    assert [r["_task"] for r in run.results[1::2]] == ["show %d" % i for i in range(len(cases))]
    verbose = _run_verbose(tmp_path, tmp_path / "play-0.yml")
    assert "module_args" in verbose.stdout and "show %d" % (len(cases) - 1) in verbose.stdout
    assert SECRET not in verbose.stdout and SECRET not in verbose.stderr
