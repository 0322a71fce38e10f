"""The base role refuses oneadmin ids that differ between hosts, naming the variables.

Issue 4's bad input "a uid/gid for oneadmin that differs between hosts": the
base role's preflight (run on every site host by playbooks/preflight.yml)
compares site_oneadmin_uid/gid over all hosts of the play. Here two local
hosts (connection local: preflight only reads) run the role's set_vars.yml
and preflight.yml; one case per way the ids can differ, and a good inventory
that passes, so the failures are the inputs' own.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

PLAYBOOK = """\
- name: Preflight of the base role
  hosts: all
  gather_facts: false
  tasks:
    - name: Load the base role's OS data
      ansible.builtin.include_role: {name: base, tasks_from: set_vars.yml}
    - name: Run the base role's preflight
      ansible.builtin.include_role: {name: base, tasks_from: preflight.yml}
"""

# An id no account of this machine has, so "refuse to renumber an existing
# oneadmin" cannot be what fails.
UID = 9869


def _run(tmp_path, host_vars):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "site_address": "127.0.0.1"}
    inventory = {"all": {
        "vars": {"site_oneadmin_uid": UID, "site_oneadmin_gid": UID, "site_domain": "test.invalid",
                 "site_ntp_servers": ["127.0.0.1"]},
        "children": {
            "frontend": {"hosts": {"fe": dict(local, **host_vars.get("fe", {}))}},
            "nodes": {"hosts": {"node1": dict(local, **host_vars.get("node1", {}))}},
        }}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    proc = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads(proc.stdout)
    failures = [json.dumps(result) for play in report["plays"] for task in play["tasks"]
                for result in task["hosts"].values() if result.get("failed")]
    return proc.returncode, "\n".join(failures)


def test_the_same_ids_everywhere_pass(tmp_path):
    rc, failures = _run(tmp_path, {})
    assert rc == 0 and failures == "", failures


@pytest.mark.parametrize("host_vars", [
    pytest.param({"node1": {"site_oneadmin_uid": UID + 1}}, id="uid"),
    pytest.param({"node1": {"site_oneadmin_gid": UID + 1}}, id="gid"),
    pytest.param({"fe": {"site_oneadmin_uid": UID + 2, "site_oneadmin_gid": UID + 2}}, id="both-on-the-front-end"),
])
def test_ids_that_differ_between_hosts_are_refused(tmp_path, host_vars):
    rc, failures = _run(tmp_path, host_vars)
    assert rc != 0, "accepted: %s" % host_vars
    assert "site_oneadmin_uid and site_oneadmin_gid must be the same on every host" in failures, failures
    assert "group_vars/all" in failures
