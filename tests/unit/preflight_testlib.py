"""What every role's preflight test does: run the role's set_vars.yml and
preflight.yml with ansible-playbook on this machine (connection local:
preflight only reads), as playbooks/preflight.yml runs them, against an
inventory holding one mistake, and read what failed.

    run = run_playbook(tmp_path, preflight_play("squid"), "localhost,", extra_vars=site)
    run.returncode, run.stdout + run.stderr

The project's ansible.cfg, roles and filters are used; output has no colour
and none of Ansible's localhost warnings. With callback="json" the output is
ansible.posix.json's, which failed_results() reads per host.

Many cases in one run (each ansible-playbook run costs seconds of CPU): one
local host per case, its mistake in its host variables, the good values in
the inventory's group all, and a control host with no change, which must
pass:

    run = run_cases(tmp, preflight_play("squid", hosts="cases"),
                    {"cases": {"control": {}, "case_0": {"site_cache_port": 0}}}, site=GOOD)
    run.passed("control"), run.failures("case_0"), run.output

Host variables lose to extra vars (-e) and to a role's vars/ and
include_vars: a case must set none of the role's own variables.
"""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


def preflight_play(role, hosts="all"):
    """The play playbooks/preflight.yml runs for ``role`` on ``hosts``."""
    return """\
- name: Run the {role} role's preflight
  hosts: {hosts}
  gather_facts: false
  tasks:
    - name: Load the {role} role's OS data
      ansible.builtin.include_role:
        name: {role}
        tasks_from: set_vars.yml
    - name: Run the {role} role's preflight
      ansible.builtin.include_role:
        name: {role}
        tasks_from: preflight.yml
""".format(role=role, hosts=hosts)


def run_playbook(work, play, inventory, extra_vars=None, args=(), callback=None, env=None):
    """Run ``play`` (YAML text) from directory ``work``.

    inventory: a dict (written as hosts.yml), a path, or a host list such as
    "localhost,". extra_vars: a dict given with -e @file (the Python running
    the tests is the hosts' interpreter unless it says otherwise). Returns
    the CompletedProcess (text, never raises on a failed run)."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "play.yml").write_text(play, encoding="utf-8")
    if isinstance(inventory, dict):
        (work / "hosts.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
        inventory = str(work / "hosts.yml")
    argv = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(work / "play.yml")] + list(args)
    if extra_vars is not None:
        (work / "vars.json").write_text(
            json.dumps(dict({"ansible_python_interpreter": sys.executable}, **extra_vars)), encoding="utf-8")
        argv += ["-e", "@" + str(work / "vars.json")]
    environment = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_FILTER_PLUGINS=str(ROOT / "filter_plugins"),
                       ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    environment["PATH"] = str(Path(sys.executable).parent) + os.pathsep + environment.get("PATH", "")
    if callback == "json":
        environment["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    elif callback == "preflight_json":  # ansible.posix.json with each failure's error message
        environment.update(ANSIBLE_STDOUT_CALLBACK="preflight_json",
                           ANSIBLE_CALLBACK_PLUGINS=str(Path(__file__).with_name("callback_plugins")))
    environment.update(env or {})
    return subprocess.run(argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300,
                          check=False)


def run_each(run, base, keys, workers=2):
    """``run(key, base / key)`` for each of ``keys``, side by side: {key: result}."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = {key: pool.submit(run, key, base / key) for key in keys}
        return {key: job.result() for key, job in jobs.items()}


def bad_cases(bad):
    """Parametrize a test over ``bad``: [(a case's changes, what its failure says)], each case named by its changes."""
    return pytest.mark.parametrize("changes, names", bad,
                                   ids=lambda value: json.dumps(value) if isinstance(value, dict) else None)


def assert_refused(run, host, changes, texts):
    """The case ``host`` (the site file with ``changes``) failed, and its
    failure says each of ``texts``."""
    output = run.failures(host)
    assert output, "accepted: %r\n%s" % (changes, run.output[-3000:])
    for text in texts:
        assert text in output, "%r not in the failure:\n%s" % (text, output)


def assert_run_refused(result, texts, case=""):
    """``result``, a run's (rc, output), failed, and its output says each of ``texts``."""
    rc, out = result
    assert rc != 0, "%s was accepted:\n%s" % (case, out)
    for text in texts:
        assert text in out, "%s: %r not in the output:\n%s" % (case, text, out)


def failed_results(json_stdout, host=None):
    """The failed task results in an ansible.posix.json report, as JSON
    text, one per line (of ``host`` only when given)."""
    report = json.loads(json_stdout)
    return "\n".join(json.dumps(result) for play in report["plays"] for task in play["tasks"]
                     for name, result in task["hosts"].items()
                     if result.get("failed") and (host is None or name == host))


def case_host(label):
    """A valid inventory host name for a case's label (any text)."""
    return "case_" + re.sub(r"[^A-Za-z0-9]+", "_", str(label)).strip("_").lower()


def case_hosts(bad):
    """The hosts of a table of bad cases [(changes, what the failure says)]:
    {host: its changes}, a host per case named by its place in the table."""
    return {case_host(index): changes for index, (changes, _) in enumerate(bad)}


def bad_case_host(bad, changes):
    """The host case_hosts(bad) gives the case with ``changes``."""
    key = json.dumps(changes, sort_keys=True)
    return case_host(next(index for index, (case, _) in enumerate(bad) if json.dumps(case, sort_keys=True) == key))


class CaseRun:
    """The outcome of one run of many case hosts: the report of the
    preflight_json callback (tests/unit/callback_plugins), ansible.posix.json's
    with the message of each failed task's error (kept by a no_log task).

    returncode, stdout, stderr; output: stdout + stderr, the whole run's text
    (to check that a secret never shows). failed(host): the host's failed
    task results, in order, each with its task's name under "task";
    failures(host): them as text, each the task's name (with its role), the
    message and the whole result; passed(host): the host ran its play to
    its end and nothing failed on it."""

    def __init__(self, proc):
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        self.output = proc.stdout + proc.stderr
        # The report is the last thing printed; -v prints the configuration file's name before it.
        start = re.search(r"^\{$", proc.stdout, re.MULTILINE)
        try:
            self.report = json.loads(proc.stdout[start.start():]) if start else None
        except ValueError:
            self.report = None

    def _plays(self):
        if self.report is None:
            raise AssertionError("ansible-playbook gave no JSON report (rc %s):\n%s\n%s"
                                 % (self.returncode, self.stdout[-3000:], self.stderr[-3000:]))
        return self.report["plays"]

    def results(self, host):
        """Every task result of ``host``, in order, each with its task's name under "task"."""
        return [dict(result, task=task["task"]["name"]) for play in self._plays() for task in play["tasks"]
                for name, result in task["hosts"].items() if name == host]

    def failed(self, host):
        return [result for result in self.results(host) if result.get("failed")]

    def failures(self, host):
        return "\n".join("%s: %s\n%s" % (result["task"], result.get("msg") or result.get("error", ""),
                                          json.dumps(result)) for result in self.failed(host))

    def passed(self, host):
        plays = [play for play in self._plays() if any(host in task["hosts"] for task in play["tasks"])]
        stats = self.report.get("stats", {}).get(host)
        return bool(plays and stats and not stats["failures"] and not stats["unreachable"]
                    and host in plays[-1]["tasks"][-1]["hosts"] and not self.failed(host))


def run_cases(work, play, groups, site=None, args=(), env=None):
    """Run ``play`` once for many cases, on this machine; a CaseRun.

    groups: {group: {host: host variables}}, the inventory's groups (a host
    may be in several: its variables are merged); site: the variables of
    every host (group all). Every host is local (connection local, the
    Python of the tests); the play chooses which hosts it runs on, the
    others are the site's other hosts the roles read."""
    hosts = {host for members in groups.values() for host in members}
    inventory = {"all": {
        "vars": dict(site or {}, ansible_connection="local", ansible_python_interpreter=sys.executable),
        "children": {group: {"hosts": dict(members)} for group, members in groups.items()}}}
    environment = {"ANSIBLE_FORKS": str(max(5, len(hosts)))}
    environment.update(env or {})
    return CaseRun(run_playbook(work, play, inventory, args=args, callback="preflight_json", env=environment))
