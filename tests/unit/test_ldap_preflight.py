"""The ldap role refuses bad site files before any change, naming the variable.

The role's set_vars and preflight run with ansible-playbook on this machine
(connection local: nothing is changed there, preflight only reads), verbose
(-v: no password may appear even then), in two runs side by side: one
local host per case, the demo's LDAP section as the inventory's group vars
and the case's mistake as its host vars. In the first run the case hosts
are the LDAP server (group ldap); in the second, clients of a site with no
host in group ldap. Each case's host must fail naming the variable to fix;
the control host, with no change, must pass. A second group of tests
reads roles/ldap/tasks/*.yml: every task that touches a password must have
no_log: true.
"""

import copy
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from preflight_testlib import ROOT, case_host, preflight_play, run_cases

ROLE = ROOT / "roles" / "ldap"
PLAY = preflight_play("ldap", hosts="all")

GOOD = {
    "site_name": "unit",
    "site_domain": "unit.test",
    "site_ldap_deploy": True,
    "site_ldap_uri": "ldaps://ldap.unit.test",
    "site_ldap_base_dn": "dc=unit,dc=test",
    "site_ldap_admin_password": "unit-admin-password",
    "site_ldap_users": [
        {"uid": "alice", "cn": "Alice A", "mail": "alice@unit.test", "password": "pw-alice-1"},
        {"uid": "bob", "cn": "Bob B", "password": "pw-bob-1"},
    ],
    "site_ldap_groups": [{"name": "writers", "members": ["alice", "bob"]}],
    "site_ldap_tls_cert": "",
    "site_ldap_tls_key": "",
    "site_ldap_tls_ca": "",
}


def with_changes(**changes):
    site = copy.deepcopy(GOOD)
    site.update(changes)
    return site


def _users_with_duplicate():
    users = copy.deepcopy(GOOD["site_ldap_users"])
    users.append({"uid": "alice", "cn": "Alice Again", "password": "pw-alice-2"})
    return users


BAD = [
    pytest.param(with_changes(site_ldap_uri="http://ldap.unit.test"), ["site_ldap_uri"], id="uri-scheme"),
    pytest.param(with_changes(site_ldap_uri="ldaps://ldap.unit.test ldaps://b"), ["site_ldap_uri"], id="uri-two"),
    pytest.param(with_changes(site_ldap_base_dn="dc=unit,,dc=test"), ["site_ldap_base_dn"], id="dn-empty-rdn"),
    pytest.param(with_changes(site_ldap_base_dn="unit.test"), ["site_ldap_base_dn"], id="dn-domain"),
    pytest.param(with_changes(site_ldap_base_dn="o=Unit,c=FR"), ["site_ldap_base_dn", "dc="], id="dn-not-dc"),
    pytest.param(with_changes(site_ldap_groups=[{"name": "writers", "members": ["alice", "mallory"]}]),
                 ["site_ldap_groups", "mallory"], id="member-unknown"),
    pytest.param(with_changes(site_ldap_groups=[{"name": "writers", "members": []}]),
                 ["site_ldap_groups", "no member"], id="group-empty"),
    pytest.param(with_changes(site_ldap_users=_users_with_duplicate()), ["site_ldap_users", "alice"], id="uid-duplicate"),
    pytest.param(with_changes(site_ldap_tls_cert="/nonexistent/server.crt", site_ldap_tls_key="/nonexistent/server.key",
                              site_ldap_tls_ca="/nonexistent/ca.crt"), ["site_ldap_tls_cert"], id="tls-missing"),
    pytest.param(with_changes(site_ldap_tls_cert="/etc/hostname"), ["site_ldap_tls_key"], id="tls-partial"),
    pytest.param(with_changes(site_ldap_tls_cert="/etc/hostname", site_ldap_tls_key="/etc/hostname",
                              site_ldap_tls_ca="/etc/hostname"),
                 ["site_ldap_tls_cert", "holds no PEM certificate", "site_ldap_tls_key", "no PEM private key"],
                 id="tls-not-pem"),
    pytest.param(with_changes(site_ldap_users="alice"), ["site_ldap_users", "a string, not a list"],
                 id="users-a-string"),
    pytest.param(with_changes(site_ldap_users=[{"uid": "alice", "cn": "Alice A", "mial": "alice@unit.test",
                                                "password": "pw-alice-1"}]),
                 ["site_ldap_users[alice]", "unknown key 'mial'", "did you mean mail?"], id="user-key-mistyped"),
    pytest.param(with_changes(site_ldap_uri="ldaps://ldap.unit.test:70000"), ["site_ldap_uri", "65535"],
                 id="uri-port"),
    pytest.param(with_changes(site_ldap_deploy="yes"), ["site_ldap_deploy", "true or false"], id="deploy-a-string"),
    pytest.param(with_changes(site_ldap_admin_password="short"), ["site_ldap_admin_password"], id="admin-password"),
]


# The host of each case, named after its id.
HOSTS = {case.id: case_host(case.id) for case in BAD}
ALL_AT_ONCE = with_changes(site_ldap_uri="http://ldap.example.org", site_ldap_base_dn="not a dn")
ALL_AT_ONCE["site_ldap_groups"] = copy.deepcopy(ALL_AT_ONCE["site_ldap_groups"])
ALL_AT_ONCE["site_ldap_groups"][0]["members"] = ALL_AT_ONCE["site_ldap_groups"][0]["members"] + ["nobody-here"]
# After the preflight, a passing host shows the packages it declares for the base role to install.
SHOW_PACKAGES = PLAY + """\
    - name: Show the declared packages
      ansible.builtin.debug:
        msg: "DECLARED {{ __ldap_preflight_packages | to_json }} CLIENT {{ __ldap_client_packages | to_json }}"
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The two runs, side by side: "server", where the case hosts are the site's LDAP server
    (group ldap; the control host, each case of BAD, every rule at once) and a client of it
    (group frontend); "client", where no host is in group ldap (the hosts are in group frontend)."""
    base = tmp_path_factory.mktemp("ldap_preflight")
    server = {"ldap": dict({HOSTS[case.id]: case.values[0] for case in BAD},
                           control={}, case_all_at_once=ALL_AT_ONCE),
              "frontend": {"case_client": {}}}
    client = {"frontend": {
        "case_no_ldap_host": {},
        "case_existing_ldap": {"site_ldap_deploy": False, "site_ldap_admin_password": "",
                               "site_ldap_base_dn": "o=Unit,c=FR"}}}
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {name: pool.submit(run_cases, base / name, SHOW_PACKAGES, groups, site=GOOD, args=["-v"])
                for name, groups in (("server", server), ("client", client))}
        return {name: job.result() for name, job in jobs.items()}


def test_good_site_passes(runs):
    run = runs["server"]
    assert run.passed("control"), run.failures("control") or run.output[-3000:]
    for user in GOOD["site_ldap_users"]:
        assert user["password"] not in run.output


@pytest.mark.parametrize("site,needles", BAD)
def test_bad_site_fails_naming_the_variable(runs, request, site, needles):
    out = runs["server"].failures(HOSTS[request.node.callspec.id])
    assert out, "accepted:\n%s" % runs["server"].output[-3000:]
    for needle in needles:
        assert needle in out, "%r not in the output:\n%s" % (needle, out)
    for user in site["site_ldap_users"] if isinstance(site["site_ldap_users"], list) else []:
        assert user["password"] not in runs["server"].output


def test_a_deployed_ldap_without_its_host_is_refused(runs):
    # site_ldap_deploy true, but no host in group ldap: nothing would run the
    # server, and the clients (front-end, repository) would have no CA to take.
    out = runs["client"].failures("case_no_ldap_host")
    assert out, runs["client"].output[-3000:]
    assert "site_ldap_deploy" in out and "group ldap" in out, out


def test_an_existing_site_ldap_needs_no_host_of_ours(runs):
    # site_ldap_deploy false: clients are only pointed at the site's server;
    # no admin password, no server host, no CA file (the system trusts it).
    run = runs["client"]
    assert run.passed("case_existing_ldap"), run.failures("case_existing_ldap") or run.output[-3000:]


# --- no_log on every task that touches a password -------------------------

def _tasks(items):
    """Every task of a task list, blocks flattened."""
    for item in items or []:
        for key in ("block", "rescue", "always"):
            if key in item:
                yield from _tasks(item[key])
        if not any(key in item for key in ("block", "rescue", "always")):
            yield item


def tasks_missing_no_log(tasks):
    """Names of tasks whose arguments mention a password but have no no_log: true."""
    missing = []
    for task in _tasks(tasks):
        body = {k: v for k, v in task.items() if k not in ("name", "no_log")}
        if "password" in json.dumps(body, default=str).lower() and task.get("no_log") is not True:
            missing.append(task.get("name", "<unnamed>"))
    return missing


TASK_FILES = sorted((ROLE / "tasks").glob("*.yml")) + [ROLE / "handlers" / "main.yml"]


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: p.name)
def test_every_task_touching_a_password_has_no_log(path):
    with open(path, encoding="utf-8") as stream:
        tasks = yaml.safe_load(stream)
    assert tasks_missing_no_log(tasks) == []


def test_no_log_check_catches_a_task_without_it():
    tasks = [
        {"name": "fine", "community.general.ldap_attrs": {"dn": "x"}},
        {"name": "leaks", "community.general.ldap_attrs": {"attributes": {"userPassword": "{{ ldap_admin_password }}"}}},
        {"name": "in a block", "block": [{"name": "leaks too", "ansible.builtin.debug": {"msg": "{{ item.password }}"}}]},
        {"name": "guarded", "no_log": True, "ansible.builtin.debug": {"msg": "{{ ldap_admin_password }}"}},
    ]
    assert tasks_missing_no_log(tasks) == ["leaks", "leaks too"]


def test_every_broken_rule_is_reported_at_once(runs):
    """One run names the bad URI, the bad base DN and a group member who is not a user."""
    out = runs["server"].failures("case_all_at_once")
    assert out, runs["server"].output[-3000:]
    for text in ["site_ldap_uri (ldap_uri=http://ldap.example.org) must be one URI",
                 "site_ldap_base_dn (ldap_base_dn=not a dn) is not a valid LDAP DN",
                 "has members nobody-here that are not users of site_ldap_users"]:
        assert text in out, "%r not in the failure:\n%s" % (text, out[-3000:])


@pytest.mark.parametrize("ldap_group", [True, False], ids=["ldap-server", "ldap-client"])
def test_preflight_declares_the_packages_base_installs_early(runs, ldap_group):
    """site.yml's base step installs what the preflight declares: the client
    tools everywhere, the server's packages on the LDAP host, never slapd
    (its debconf answers come first, in the role's own install step)."""
    # The LDAP server: the control host, in group ldap. A client: a host of
    # group frontend, the LDAP server another host of the inventory.
    run, host = runs["server"], "control" if ldap_group else "case_client"
    assert run.passed(host), run.failures(host) or run.output[-3000:]
    msg = [result["msg"] for result in run.results(host) if str(result.get("msg", "")).startswith("DECLARED ")][0]
    declared, client = (json.loads(part) for part in msg[len("DECLARED "):].split(" CLIENT "))
    assert set(client) <= set(declared) and client, msg
    assert "slapd" not in declared, msg
    assert ("python3-ldap" in declared) == ldap_group, msg
