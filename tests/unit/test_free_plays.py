"""site.yml's free-strategy plays stay free of run_once.

playbooks/site_hosts.yml and site_services.yml include roles in plays with
strategy free, where Ansible runs a run_once task on every host (with a
warning) and one host cannot rely on another having reached a task. The
roles' preflight files (run_once checks across hosts) run in the linear
playbooks/preflight.yml and are skipped in those plays (except the ldap
role's, which the accounting host and the front-end run there); kvm_node's ssh.yml
runs through the entry point `trust` in the linear playbooks/node_trust.yml;
frontend's nodes.yml through playbooks/frontend_nodes.yml. Every other task
file of a role those plays include must not use run_once.
"""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FREE_PLAYBOOKS = ["playbooks/site_hosts.yml", "playbooks/site_services.yml"]
# Task files of those roles that the free plays never run.
NOT_IN_FREE_PLAYS = {
    ("kvm_node", "ssh.yml"), ("kvm_node", "trust.yml"), ("frontend", "nodes.yml"),
}
# playbooks/preflight.yml checks the ldap role on ldap:repository only; the
# accounting host and the front-end (LDAP login) run its preflight in the
# free plays, through the entry points client and opennebula_client.
PREFLIGHT_IN_FREE_PLAYS = {"ldap"}


def _free_plays():
    for path in FREE_PLAYBOOKS:
        for play in yaml.safe_load((ROOT / path).read_text(encoding="utf-8")):
            yield path, play


def _included_roles():
    roles = set()
    for _, play in _free_plays():
        for task in play["tasks"]:
            roles.add(task["ansible.builtin.include_role"]["name"])
    return sorted(roles)


def _walk(tasks):
    for task in tasks or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _walk(task.get(key))


def test_the_free_plays_are_free():
    plays = list(_free_plays())
    assert plays and all(play.get("strategy") == "free" for _, play in plays)


@pytest.mark.parametrize("role", _included_roles())
def test_no_run_once_outside_preflight(role):
    offenders = []
    for path in sorted((ROOT / "roles" / role / "tasks").glob("*.yml")):
        if (path.name == "preflight.yml" and role not in PREFLIGHT_IN_FREE_PLAYS) \
                or (role, path.name) in NOT_IN_FREE_PLAYS:
            continue
        for task in _walk(yaml.safe_load(path.read_text(encoding="utf-8"))):
            if "run_once" in task:
                offenders.append(f"{path.relative_to(ROOT)}: {task.get('name')}")
    assert not offenders, "run_once in a task the free plays of site.yml run: " + "; ".join(offenders)


def test_preflight_is_skipped_in_the_free_plays():
    # Each role's main (or host) entry skips preflight.yml once playbooks/preflight.yml passed.
    for role in _included_roles():
        for entry in ("main.yml", "host.yml", "client.yml"):
            path = ROOT / "roles" / role / "tasks" / entry
            if not path.exists():
                continue
            for task in yaml.safe_load(path.read_text(encoding="utf-8")):
                if task.get("ansible.builtin.include_tasks") == "preflight.yml":
                    assert "_preflight_passed" in str(task.get("when")), f"{path}: {task.get('name')}"
