"""The base role refuses oneadmin ids that differ between hosts, naming the variables.

Issue 4's bad input "a uid/gid for oneadmin that differs between hosts": the
base role's preflight (run on every site host by playbooks/preflight.yml)
compares site_oneadmin_uid/gid over all hosts of the play. Here two local
hosts (connection local: preflight only reads) run the role's set_vars.yml
and preflight.yml; one case per way the ids can differ, and a good inventory
that passes, so the failures are the inputs' own.
"""

import sys

import pytest

from preflight_testlib import failed_results, preflight_play, run_playbook

PLAYBOOK = preflight_play("base")

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
    proc = run_playbook(tmp_path, PLAYBOOK, inventory, callback="json")
    return proc.returncode, failed_results(proc.stdout)


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
