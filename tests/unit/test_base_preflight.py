"""The base role refuses oneadmin ids that differ between hosts, naming the variables.

Issue 4's bad input "a uid/gid for oneadmin that differs between hosts": the
base role's preflight (run on every site host by playbooks/preflight.yml)
compares site_oneadmin_uid/gid over all hosts of the play. Here two local
hosts (connection local: preflight only reads), a front-end and a node, run
the role's set_vars.yml and preflight.yml; one case per way the ids can
differ, and a good inventory that passes, so the failures are the inputs'
own. Every case is a play of its own (its two hosts, in a group of their
own), all in one ansible-playbook run.
"""

import pytest

from preflight_testlib import preflight_play, run_cases

# An id no account of this machine has, so "refuse to renumber an existing
# oneadmin" cannot be what fails.
UID = 9869


CASES = {
    "uid": {"node1": {"site_oneadmin_uid": UID + 1}},
    "gid": {"node1": {"site_oneadmin_gid": UID + 1}},
    "both-on-the-front-end": {"fe": {"site_oneadmin_uid": UID + 2, "site_oneadmin_gid": UID + 2}},
    "good": {},
}


def _group(case):
    return "case_" + case.replace("-", "_")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run, one play per case: its front-end and its node (<case>_fe,
    <case>_node1), in groups frontend and nodes as on a site. Only the play's
    first host checks the ids: a bad case fails there, its other host runs on."""
    groups = {"frontend": {}, "nodes": {}}
    plays = []
    for case, host_vars in CASES.items():
        group = _group(case)
        hosts = {group + "_" + role: dict({"site_address": "127.0.0.1"}, **host_vars.get(role, {}))
                 for role in ("fe", "node1")}
        groups[group] = hosts
        groups["frontend"][group + "_fe"] = {}
        groups["nodes"][group + "_node1"] = {}
        plays.append(preflight_play("base", hosts=group))
    site = {"site_oneadmin_uid": UID, "site_oneadmin_gid": UID, "site_domain": "test.invalid",
            "site_ntp_servers": ["127.0.0.1"]}
    return run_cases(tmp_path_factory.mktemp("base_preflight"), "".join(plays), groups, site=site)


def _failures(run, case):
    return "\n".join(run.failures(_group(case) + "_" + role) for role in ("fe", "node1")).strip()


def test_the_same_ids_everywhere_pass(run):
    for host in (_group("good") + "_fe", _group("good") + "_node1"):
        assert run.passed(host), run.failures(host) or run.output[-3000:]


@pytest.mark.parametrize("case", [
    pytest.param("uid", id="uid"),
    pytest.param("gid", id="gid"),
    pytest.param("both-on-the-front-end", id="both-on-the-front-end"),
])
def test_ids_that_differ_between_hosts_are_refused(run, case):
    failures = _failures(run, case)
    assert failures, "accepted: %s" % CASES[case]
    assert "site_oneadmin_uid and site_oneadmin_gid must be the same on every host" in failures, failures
    assert "group_vars/all" in failures
