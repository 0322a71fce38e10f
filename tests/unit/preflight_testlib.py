"""What every role's preflight test does: run the role's set_vars.yml and
preflight.yml with ansible-playbook on this machine (connection local:
preflight only reads), as playbooks/preflight.yml runs them, against an
inventory holding one mistake, and read what failed.

    run = run_playbook(tmp_path, preflight_play("squid"), "localhost,", extra_vars=site)
    run.returncode, run.stdout + run.stderr

The project's ansible.cfg, roles and filters are used; output has no colour
and none of Ansible's localhost warnings. With callback="json" the output is
ansible.posix.json's, which failed_results() reads per host.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

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
    environment.update(env or {})
    return subprocess.run(argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300,
                          check=False)


def failed_results(json_stdout, host=None):
    """The failed task results in an ansible.posix.json report, as JSON
    text, one per line (of ``host`` only when given)."""
    report = json.loads(json_stdout)
    return "\n".join(json.dumps(result) for play in report["plays"] for task in play["tasks"]
                     for name, result in task["hosts"].items()
                     if result.get("failed") and (host is None or name == host))
