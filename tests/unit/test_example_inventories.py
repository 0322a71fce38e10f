"""The inventories a site adopts (inventories/example, inventories/demo) keep working as the code moves.

A site starts by copying inventories/example; the demo is the same site in
local containers. Neither is run against real hosts by ``make test``, so each
could rot unnoticed: a playbook that no longer parses with it, a group or
host name the inventory rules now refuse, a site file value a role's
argument specs no longer accept, a pointer to a page that is gone. For every
inventory under inventories/, on this machine and with no host reached:

(a) ``ansible-playbook --syntax-check`` of site.yml and every playbooks/*.yml
    with that inventory;
(b) the inventory-only preflight: the first play of playbooks/preflight.yml,
    read from that file as it is (roles/base/tasks/preflight_inventory.yml,
    the filter sl_inventory_errors), on the control machine;
(c) every role's checks of its inputs that need no host facts, on the hosts
    each role runs on (as playbooks/preflight.yml and validate.yml place
    them): the strict type check (sl_input_errors, part=types), Ansible's
    validate_argument_spec, and the range/format check (part=values), each
    with the role's defaults and the site file exactly as shipped;
(d) every docs/*.md an inventory file points at exists.

What only a real site has is stood in for, and nothing else: the example's
secrets live in an ansible-vault file it does not ship, so every vault_*
value an inventory names gets a stand-in. No file needs one: these checks
read no file the site file names (the example names no certificate or key:
its TLS values are empty, so the roles make a site CA; the validation's test
image and the demo's repository key are read by the whole preflight only).
The whole preflight, with the hosts' facts stood in for, is
test_inventory_preflight.py's; this file checks the inventories' own values,
untouched by any stand-in.

The checks are shown to fail: the last tests run the same checks on copies
of the example with one mistake each (tmp_path; the real files are never
changed), and expect each check to refuse its mistake.
"""

import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from preflight_testlib import ROOT, run_playbook

INVENTORIES = ROOT / "inventories"
SITES = sorted(path.name for path in INVENTORIES.iterdir() if (path / "hosts.yml").is_file())
PLAYBOOKS = ["site.yml"] + sorted("playbooks/" + path.name for path in (ROOT / "playbooks").glob("*.yml"))
PREFLIGHT = yaml.safe_load((ROOT / "playbooks" / "preflight.yml").read_text(encoding="utf-8"))
VALIDATE = yaml.safe_load((ROOT / "playbooks" / "validate.yml").read_text(encoding="utf-8"))
# The first play of playbooks/preflight.yml: the inventory's own rules, before any host.
INVENTORY_PLAY = PREFLIGHT[0]
# (role, hosts) as the site's playbooks place each role's checks.
ROLE_HOSTS = [(task["ansible.builtin.include_role"]["name"], play["hosts"]) for play in PREFLIGHT
              for task in play["tasks"] if task["ansible.builtin.include_role"].get("tasks_from") == "preflight.yml"]
ROLE_HOSTS += [(role["role"], play["hosts"]) for play in VALIDATE for role in play.get("roles", [])]
INPUTS_PLAY = "Inputs of the {role} role, as the site file gives them"
VAULT_NAME = re.compile(r"\bvault_[a-z0-9_]+\b")
DOC_POINTER = re.compile(r"\bdocs/[A-Za-z0-9_./-]+\.md\b")


def _inputs_play(role, hosts):
    """A play that runs ``role``'s input checks, those that need no host facts, on ``hosts``.

    The tasks are the input checks of every role's tasks/preflight.yml
    (the validate role's runs validate_argument_spec only; the stricter
    sl_input_errors is applied to it too), without set_vars.yml, which
    gathers the host's facts: the role's defaults are loaded from its
    defaults/main.yml (vars_files, above the inventory's variables: a
    host_vars value of a role option would be hidden, and the shipped
    inventories set none), its options from meta/argument_specs.yml.
    ignore_errors: every role reports, not only the first that fails."""
    specs = ROOT / "roles" / role / "meta" / "argument_specs.yml"
    defaults = ROOT / "roles" / role / "defaults" / "main.yml"
    check = "{{{{ vars | sl_input_errors(__inputs_spec, __inputs_defaults, '{role}', part='{part}') }}}}"
    return {
        "name": INPUTS_PLAY.format(role=role),
        "hosts": hosts,
        "gather_facts": False,
        "vars_files": [str(defaults)],
        "vars": {"__inputs_spec": "{{ (lookup('ansible.builtin.file', '%s') | from_yaml).argument_specs.main.options }}"
                 % specs,
                 "__inputs_defaults": "{{ lookup('ansible.builtin.file', '%s') | from_yaml }}" % defaults},
        "tasks": [
            {"name": "Check the type of every input",
             "ansible.builtin.assert": {"that": "__inputs_errors | length == 0",
                                        "fail_msg": "{{ __inputs_errors | join('\n') }}", "quiet": True},
             "vars": {"__inputs_errors": check.format(role=role, part="types")},
             "ignore_errors": True},
            {"name": "Check the inputs against meta/argument_specs.yml",
             "ansible.builtin.validate_argument_spec": {"argument_spec": "{{ __inputs_spec }}"},
             "ignore_errors": True},
            {"name": "Check the range and format of every input",
             "ansible.builtin.assert": {"that": "__inputs_errors | length == 0",
                                        "fail_msg": "{{ __inputs_errors | join('\n') }}", "quiet": True},
             "vars": {"__inputs_errors": check.format(role=role, part="values")},
             "ignore_errors": True},
        ],
    }


PLAYBOOK = yaml.safe_dump([INVENTORY_PLAY] + [_inputs_play(role, hosts) for role, hosts in ROLE_HOSTS],
                          sort_keys=False, width=200)


def _vault_stand_ins(inventory):
    """Stand-ins for the secrets a shipped inventory names: the example keeps them in an
    ansible-vault file (group_vars/all/vault.yml) that a site writes and the
    repository does not ship. At least 8 characters, as the ldap role wants."""
    names = set()
    for path in inventory.rglob("*.yml"):
        names.update(VAULT_NAME.findall(path.read_text(encoding="utf-8")))
    return {name: "stand-in-" + name for name in sorted(names)}


def syntax_check(inventory, work):
    """(a): --syntax-check of site.yml and every playbooks/*.yml with ``inventory``, in one
    run: run_playbook's play imports each of them."""
    imports = "".join("- name: Import %s\n  ansible.builtin.import_playbook: %s\n" % (name, ROOT / name)
                      for name in PLAYBOOKS)
    return run_playbook(work, imports, inventory, args=["--syntax-check"])


def checks(inventory, work, without=()):
    """(b) and (c) in one ansible-playbook run on ``inventory``, reaching no host
    (the vault's stand-ins but those named in ``without``)."""
    extra = {name: value for name, value in _vault_stand_ins(inventory).items() if name not in without}
    extra["ansible_connection"] = "local"
    return run_playbook(work, PLAYBOOK, inventory, extra_vars=extra, callback="json")


def doc_pointers(inventory):
    """Every docs/*.md an inventory's files name that does not exist: [(file, page)]."""
    missing = []
    for path in sorted(inventory.rglob("*")):
        if path.is_file():
            for page in DOC_POINTER.findall(path.read_text(encoding="utf-8")):
                if not (ROOT / page).is_file():
                    missing.append((str(path.relative_to(inventory)), page))
    return missing


def _plays(proc):
    """{play name: {host: [failed results]}} of a checks() run (ansible.posix.json)."""
    try:
        report = json.loads(proc.stdout)
    except ValueError:  # no play ran: the inventory or a file of its variables does not load
        message = "ansible-playbook ran no play (rc %d):\n%s" % (proc.returncode, proc.stderr[-3000:])
        raise AssertionError(message) from None
    found = {}
    for play in report["plays"]:
        hosts = found.setdefault(play["play"]["name"], {})
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                hosts.setdefault(host, [])
                if result.get("failed"):
                    hosts[host].append(result.get("msg") or json.dumps(result))
    return found


# --------------------------------------------------------------------------
# The shipped inventories, and copies of the example with one mistake each
# --------------------------------------------------------------------------


def _broken_example(work, edits):
    """A copy of inventories/example under ``work``, with ``edits``: [(file, old, new)]."""
    copy = work / "example"
    shutil.copytree(INVENTORIES / "example", copy)
    for name, old, new in edits:
        path = copy / name
        text = path.read_text(encoding="utf-8")
        assert old in text, "%s no longer holds %r: update this test's mistake" % (name, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return copy


SITE = "group_vars/all/site.yml"
# One kind of mistake each, for the check that must refuse it.
BROKEN = {
    # A tab where YAML wants spaces: the inventory does not parse, so no playbook runs with it.
    "syntax": [("hosts.yml", "    nodes:\n      hosts:\n", "    nodes:\n\thosts:\n")],
    # A host name with an underscore (refused by sl_inventory_errors).
    "inventory": [("hosts.yml", "node02.example.org:", "node_02.example.org:")],
    # A port out of range (squid's values), a list given as one string
    # (base's types), and (WITHOUT, below) a secret the vault does not hold.
    "inputs": [(SITE, "site_cache_port: 3128", "site_cache_port: 70000"),
               (SITE, "site_ntp_servers:\n  - 0.debian.pool.ntp.org\n  - 1.debian.pool.ntp.org\n",
                "site_ntp_servers: 0.debian.pool.ntp.org\n")],
    # The site file points at a page that does not exist.
    "pointer": [(SITE, "docs/quattor.md", "docs/no-such-page.md")],
}
# Vault values left without a stand-in, by mistake.
WITHOUT = {"inputs": ("vault_ldap_admin_password",)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run of this file, side by side: {(kind, site): CompletedProcess}."""
    base = tmp_path_factory.mktemp("inventories")
    jobs = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for site in SITES:
            jobs["syntax", site] = pool.submit(syntax_check, INVENTORIES / site, base / ("syntax-" + site))
            jobs["checks", site] = pool.submit(checks, INVENTORIES / site, base / ("checks-" + site))
        for kind in ("syntax", "inventory", "inputs"):
            copy = _broken_example(base / ("broken-" + kind), BROKEN[kind])
            work = base / ("broken-" + kind) / "run"
            if kind == "syntax":
                jobs[kind, "broken"] = pool.submit(syntax_check, copy, work)
            else:
                jobs[kind, "broken"] = pool.submit(checks, copy, work, without=WITHOUT.get(kind, ()))
        return {key: job.result() for key, job in jobs.items()}


def test_the_shipped_inventories_are_found():
    assert {"demo", "example"} <= set(SITES)
    assert [task["ansible.builtin.include_role"].get("tasks_from") for task in INVENTORY_PLAY["tasks"]] \
        == ["preflight_inventory.yml"], "the first play of playbooks/preflight.yml is no longer the inventory's"
    assert {role for role, _ in ROLE_HOSTS} >= {"base", "ldap", "frontend", "bridge", "kvm_node", "image_share",
                                                 "squid", "appliance_repo", "accounting", "validate"}


@pytest.mark.parametrize("site", SITES)
def test_every_playbook_passes_the_syntax_check_with_the_inventory(runs, site):
    proc = runs["syntax", site]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "playbook: " in proc.stdout, proc.stdout[-3000:]


@pytest.mark.parametrize("site", SITES)
def test_the_inventory_passes_the_inventory_preflight(runs, site):
    plays = _plays(runs["checks", site])
    assert INVENTORY_PLAY["name"] in plays, runs["checks", site].stderr[-3000:]
    hosts = plays[INVENTORY_PLAY["name"]]
    assert hosts, "the inventory preflight ran on no host"
    failures = [message for messages in hosts.values() for message in messages]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("site, role", [(site, role) for site in SITES for role, _ in ROLE_HOSTS])
def test_the_site_file_passes_every_role_input_check(runs, site, role):
    plays = _plays(runs["checks", site])
    name = INPUTS_PLAY.format(role=role)
    assert name in plays, ("the %s role's checks did not run: the run stopped before them (the inventory preflight"
                           " refused %s?)" % (role, site))
    assert plays[name], "the %s role's checks ran on no host (%s)" % (role, dict(ROLE_HOSTS)[role])
    failures = ["%s: %s" % (host, message) for host, messages in sorted(plays[name].items()) for message in messages]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("site", SITES)
def test_every_page_the_inventory_points_at_exists(site):
    assert doc_pointers(INVENTORIES / site) == []


def test_the_example_points_adopters_from_quattor_at_their_page():
    text = (INVENTORIES / "example" / SITE).read_text(encoding="utf-8")
    assert "docs/quattor.md" in text
    assert (ROOT / "docs" / "quattor.md").is_file()


# --------------------------------------------------------------------------
# Each check refuses a mistake (copies of the example in tmp_path)
# --------------------------------------------------------------------------


def test_the_syntax_check_refuses_an_inventory_that_does_not_parse(runs):
    proc = runs["syntax", "broken"]
    assert proc.returncode != 0
    assert "hosts.yml" in proc.stderr and "parse" in proc.stderr.lower(), proc.stderr[-3000:]


def test_the_inventory_preflight_refuses_a_bad_host_name(runs):
    proc = runs["inventory", "broken"]
    assert proc.returncode != 0
    plays = _plays(proc)
    failures = "\n".join(message for messages in plays[INVENTORY_PLAY["name"]].values() for message in messages)
    assert "host 'node_02.example.org'" in failures and "no '_'" in failures, failures
    assert list(plays) == [INVENTORY_PLAY["name"]], "the run went on after the inventory check"


def test_the_input_checks_refuse_a_bad_value_naming_the_site_variable(runs):
    plays = _plays(runs["inputs", "broken"])

    def failures(role):
        return "\n".join(sum(plays[INPUTS_PLAY.format(role=role)].values(), []))
    squid = failures("squid")
    assert "site_cache_port (squid_port) is 70000" in squid and "between 1 and 65535" in squid, squid
    base = failures("base")
    assert "site_ntp_servers (base_ntp_servers)" in base and "not a list" in base, base
    # A secret the vault does not hold: the site file cannot be worked out.
    # (A role option whose default ends in default('') reads such a value as
    # '': the whole preflight's rules refuse an empty password there.)
    ldap = failures("ldap")
    assert "site_ldap_admin_password (ldap_admin_password) cannot be worked out" in ldap, ldap
    assert "'vault_ldap_admin_password' is undefined" in ldap, ldap
    # The other roles still pass: each failure is its mistake's own.
    assert [role for role, _ in ROLE_HOSTS if failures(role)] == ["base", "ldap", "squid"]


def test_the_pointer_check_refuses_a_missing_page(tmp_path):
    copy = _broken_example(tmp_path, BROKEN["pointer"])
    assert doc_pointers(copy) == [(SITE, "docs/no-such-page.md")]
