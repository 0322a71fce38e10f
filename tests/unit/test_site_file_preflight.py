"""Every site file variable a role reads is refused, by kind, when its value is of the wrong type or range.

Generated from the roles themselves: for every role playbooks/preflight.yml
runs, every option whose default is a site file variable
(``role_x: "{{ site_x | default(...) }}"`` in defaults/main.yml) gets a bad
value of its kind, read from meta/argument_specs.yml: a string for a list
(``site_ntp_servers: pool.ntp.org``), ``yes`` in quotes for a boolean, a port
above 65535, an id of 0, text for another number, a relative path, a
version OpenNebula has no repository for, a URL with a bad host and port, a
domain with an underscore, a choice the role does not have, a list for
text. A new site variable is covered as soon as a role reads it.

Each role's set_vars.yml and preflight.yml run as playbooks/preflight.yml
runs them, with ansible-playbook on this machine (connection local: the
preflight only reads), in one run per role: one local host per case, its
bad value a host variable over the demo site file (its networks on the
loopback, its package repository's key stood in for), and a control host
with no change, which must pass. Every case host must fail with a message
naming the site file variable and saying what is expected.
"""

import re
from pathlib import Path

import pytest
import yaml

from preflight_testlib import ROOT, preflight_play, run_cases, run_each

PREFLIGHT = yaml.safe_load((ROOT / "playbooks" / "preflight.yml").read_text(encoding="utf-8"))
ROLES = sorted({task["ansible.builtin.include_role"]["name"] for play in PREFLIGHT for task in play["tasks"]
                if task["ansible.builtin.include_role"].get("tasks_from") == "preflight.yml"})
DIRECT = re.compile(r"^\{\{ (site_\w+)( \| default\(.*\))? \}\}$")
HW_KVM = Path("/dev/kvm").exists() and any(Path("/sys/module", m).exists() for m in ("kvm_intel", "kvm_amd"))


def _load(*parts):
    return yaml.safe_load((ROOT.joinpath(*parts)).read_text(encoding="utf-8")) or {}


def bad_value(name, spec):
    """A value of the wrong type or range for an option, and words its refusal must hold."""
    kind = spec["type"]
    if kind == "list":
        return "a-string", ["a string, not a list"]
    if kind == "dict":
        return "a-string", ["a mapping"]
    if kind == "bool":
        return "yes", ["true or false"]
    if kind == "int" and name.endswith("_port"):
        return 70000, ["between 1 and 65535"]
    if kind == "int" and re.search(r"_(uid|gid)$", name):
        return 0, ["between 1 and 65533"]
    if kind == "int":
        return "many", ["is 'many'"]
    if kind == "path":
        return "relative/dir", ["an absolute path"]
    if "choices" in spec:
        return "not-a-choice", ["one of " + ", ".join(map(str, spec["choices"]))]
    if name.endswith("one_version"):
        return "7.5", ["OpenNebula version"]
    if name.endswith("_repo_key"):
        return "keys/one.asc", ["absolute path of the key"]
    if re.search(r"(_url|_uri|_endpoint)$", name):
        return "https://bad_host.example.org:70000/", ["URL"]
    if name.endswith("_domain"):
        return "bad_domain.test", ["DNS domain"]
    if re.search(r"(_address|_listen)$", name):
        return "not-an-address", ["an IP address"]
    return ["a", "list"], ["expected text"]


def cases(role):
    """{case host: (site variable, value, words)} for a role's options read from site variables."""
    specs = _load("roles", role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    found = {}
    for name, default in _load("roles", role, "defaults", "main.yml").items():
        direct = DIRECT.match(default) if isinstance(default, str) else None
        if direct:
            value, words = bad_value(name, specs[name])
            found["case_" + name] = (direct.group(1), value, words + ["%s (%s)" % (direct.group(1), name)])
    return found


CASES = {role: cases(role) for role in ROLES}


def test_every_role_reads_site_variables():
    assert set(ROLES) >= {"base", "bridge", "kvm_node", "frontend", "image_share", "squid", "ldap",
                          "appliance_repo", "accounting"}
    assert all(CASES[role] for role in ROLES), {role: len(CASES[role]) for role in ROLES}


def _run(role, work):
    work.mkdir(parents=True)
    site = _load("inventories", "demo", "group_vars", "all", "site.yml")
    site["site_networks"] = [{"name": "loop", "bridge": "brloop", "interface": "lo", "cidr": "127.0.0.0/8",
                              "range": {"first": "127.0.1.1", "last": "127.0.1.99"}}]
    site["site_kvm_domain_type"] = "kvm" if HW_KVM else "qemu"
    site["site_one_repo_key"] = str(work / "one-repo-key.asc")
    (work / "one-repo-key.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n")
    hosts = {host: {variable: value} for host, (variable, value, _) in CASES[role].items()}
    hosts["control"] = {}
    groups = {
        "cases": hosts,
        # The site's other hosts, which the roles read (the front-end's, the LDAP server's); not in the play.
        "frontend": {"fe": {"site_address": "127.0.0.2"}},
        "ldap": {"svc": {"site_address": "127.0.0.3"}}}
    if role == "monitoring":
        # The role runs on the monitoring host, which its URL names: here every case host is one.
        groups["monitoring"] = hosts
        site["site_monitoring_url"] = "https://{{ inventory_hostname }}.{{ site_domain }}:9443/"
    return run_cases(work, preflight_play(role, hosts="cases"), groups, site=site)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return run_each(_run, tmp_path_factory.mktemp("site_file_preflight"), ROLES, workers=3)


@pytest.mark.parametrize("role", ROLES)
def test_the_control_host_passes(runs, role):
    assert runs[role].passed("control"), runs[role].failures("control")[-3000:] or runs[role].output[-3000:]


@pytest.mark.parametrize("role, case", [pytest.param(role, case, id="%s-%s" % (role, CASES[role][case][0]))
                                        for role in ROLES for case in sorted(CASES[role])])
def test_every_site_variable_of_the_wrong_kind_is_refused_naming_it(runs, role, case):
    variable, value, words = CASES[role][case]
    failures = runs[role].failures(case)
    assert failures, "%s: %s = %r was accepted" % (role, variable, value)
    for word in words + ["expected"]:
        assert word in failures, "%s: %r not in the failure:\n%s" % (variable, word, failures[-3000:])
