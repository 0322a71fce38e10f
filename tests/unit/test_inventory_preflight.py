"""playbooks/preflight.yml refuses a bad inventory before it reaches any host, and passes the shipped ones.

The first play of playbooks/preflight.yml checks the inventory itself on the
control machine (roles/base/tasks/preflight_inventory.yml, the filter
sl_inventory_errors): the groups the site's plays run on, the host names and
the addresses. Each case below runs the real playbooks/preflight.yml with
ansible-playbook on an inventory holding one kind of mistake, and checks that
the run fails in that first play, with a message naming what to fix in
hosts.yml, before any host is reached; an inventory that does not parse stops
ansible-playbook before any play (ansible.cfg's any_unparsed_is_failed).

Then every inventory under inventories/ (the demo and the example a site
copies) runs the whole preflight on this machine, its hosts local stand-ins:
what this machine cannot be (the nodes' interfaces, their hardware
virtualisation, the demo containers' package repository, the cache host's
disk) is given as the roles' host-side variables in a second inventory file,
and the example's vault as stand-in secrets. Everything the site file says
is checked as it is.
"""

import json
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from preflight_testlib import ROOT, failed_results, run_each, run_playbook

PLAYBOOK = """
- name: Run the site's preflight
  ansible.builtin.import_playbook: {root}/playbooks/preflight.yml
""".format(root=ROOT)

INVENTORY_PLAY = "Preflight of the inventory (groups, host names, addresses), on the control machine"
BASE = yaml.safe_load((ROOT / "roles" / "base" / "vars" / "main.yml").read_text(encoding="utf-8"))
RULES = BASE["__base_site_groups"]


def _site(**groups):
    """A YAML inventory: every host at its own address, in the groups given."""
    hosts = {}
    for members in groups.values():
        for host in members:
            hosts.setdefault(host, {"site_address": "192.0.2.%d" % (len(hosts) + 1)})
    return {"all": {"children": {group: {"hosts": {host: dict(hosts[host]) for host in members}}
                                 for group, members in groups.items()}}}


GOOD = {"frontend": ["one"], "nodes": ["node1", "node2"], "ldap": ["svc"], "repository": ["svc"], "cache": ["svc"],
        "accounting": ["one"]}


def _with(**changes):
    return _site(**dict(GOOD, **changes))


def _address(inventory, group, host, **hvars):
    inventory["all"]["children"][group]["hosts"][host].update(hvars)
    return inventory


# Each kind of inventory mistake: (inventory, what the failure says).
BAD = {
    "no front-end": (_with(frontend=[]), ["no host in group 'frontend'", "hosts.yml"]),
    "no node": (_with(nodes=[]), ["no host in group 'nodes'", "the KVM nodes"]),
    "no host at all": ({"all": {"hosts": {}}}, ["no host in group 'frontend'", "no host in group 'nodes'"]),
    "two front-ends": (_with(frontend=["one", "two"]), ["group 'frontend'", "2 hosts", "one, two", "at most 1"]),
    "two LDAP servers": (_with(ldap=["svc", "svc2"]), ["group 'ldap'", "at most 1"]),
    "a front-end that is also a node": (_with(nodes=["node1", "one"]),
                                        ["host one is in groups frontend and nodes", "exclude each other"]),
    "a mistyped group": (_site(**{"frontend": ["one"], "node": ["node1"]}),
                         ["group 'node' of hosts.yml is no group of the site; did you mean 'nodes'?"]),
    "a node name with an underscore": (_with(nodes=["node_1"]), ["host 'node_1'", "no '_'", "Rename it"]),
    "a node name with a label over 63 characters": (_with(nodes=["n" * 64 + ".example.org"]),
                                                    ["64 characters", "at most 63"]),
    "a node named by its address": (_with(nodes=["192.0.2.50"]), ["IP address", "site_address"]),
    "two nodes with the same address": (
        _address(_with(), "nodes", "node2", site_address="192.0.2.2"),
        ["the address 192.0.2.2 is given to more than one host", "site_address of node1", "site_address of node2"]),
    "a node's network address given to another": (
        _address(_address(_with(), "nodes", "node1", site_network_addresses={"private": "198.51.100.7"}),
                 "nodes", "node2", site_network_addresses={"private": "198.51.100.7"}),
        ["the address 198.51.100.7", "site_network_addresses.private of node1"]),
    "a site_address that is a name": (_address(_with(), "nodes", "node1", site_address="node1.example.org"),
                                      ["site_address of host node1 (hosts.yml) is 'node1.example.org'",
                                       "IP address"]),
}

# Inventories no plugin parses: ansible-playbook stops before any play.
UNPARSED = {
    "a tab in hosts.yml": ("hosts.yml", "all:\n  children:\n    frontend:\n      hosts:\n\tone:\n"),
    "a YAML list where a mapping belongs": ("hosts.yml", "all:\n  children:\n    - frontend\n    - nodes\n"),
    "a broken INI section": ("hosts", "[frontend]\none\n[nodes\nnode1\n"),
}


def _run(work, inventory):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    if isinstance(inventory, dict):
        inventory["all"].setdefault("vars", {}).update(local)
    return run_playbook(work, PLAYBOOK, inventory, callback="json")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every inventory case's CompletedProcess, the runs side by side (each takes seconds)."""
    base = tmp_path_factory.mktemp("inventory_preflight")
    jobs = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for index, (case, (inventory, _)) in enumerate(sorted(BAD.items())):
            jobs[case] = pool.submit(_run, base / ("bad%d" % index), json.loads(json.dumps(inventory)))
        for index, (case, (name, text)) in enumerate(sorted(UNPARSED.items())):
            work = base / ("unparsed%d" % index)
            work.mkdir()
            (work / name).write_text(text, encoding="utf-8")
            jobs[case] = pool.submit(_run, work, work / name)
        jobs["good"] = pool.submit(_run, base / "good", _with())
        return {case: job.result() for case, job in jobs.items()}


def _plays(proc):
    return [play["play"]["name"] for play in json.loads(proc.stdout)["plays"]]


def test_a_good_inventory_passes_the_inventory_check(runs):
    proc = runs["good"]
    # The hosts are not this machine's: the roles' checks later fail on them,
    # but the inventory's own check passes, and the run goes on to the roles.
    report = json.loads(proc.stdout)
    first = report["plays"][0]
    assert first["play"]["name"] == INVENTORY_PLAY
    assert not any(result.get("failed") for task in first["tasks"] for result in task["hosts"].values()), proc.stdout
    assert len(report["plays"]) > 1


@pytest.mark.parametrize("case", sorted(BAD))
def test_every_kind_of_inventory_mistake_stops_the_run_before_any_host(runs, case):
    proc = runs[case]
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert _plays(proc) == [INVENTORY_PLAY], "the run went on after the inventory check"
    failed = failed_results(proc.stdout)
    for text in BAD[case][1]:
        assert text in failed, "%s: %r not in %s" % (case, text, failed)


@pytest.mark.parametrize("case", sorted(UNPARSED))
def test_an_inventory_that_does_not_parse_stops_the_run(runs, case):
    proc = runs[case]
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "failed to parse inventory source" in proc.stderr.lower(), proc.stderr[-3000:]
    assert "Run the site's preflight" not in proc.stdout and '"plays"' not in proc.stdout


def test_the_inventory_check_runs_under_a_limit(tmp_path):
    """--limit to one node (adding a node to a site) still checks the whole inventory."""
    proc = run_playbook(tmp_path, PLAYBOOK, _with(frontend=["one", "two"]), callback="json",
                        args=["--limit", "node1", "-e", "ansible_connection=local"])
    assert proc.returncode != 0
    assert "at most 1" in failed_results(proc.stdout), proc.stdout[-3000:]


# --------------------------------------------------------------------------
# The shipped inventories pass the whole preflight
# --------------------------------------------------------------------------

SITES = sorted(path.name for path in (ROOT / "inventories").iterdir() if (path / "hosts.yml").is_file())
LOOP = {"name": "loop", "bridge": "brloop", "interface": "lo", "cidr": "127.0.0.0/8"}
HW_KVM = Path("/dev/kvm").exists() and any(Path("/sys/module", m).exists() for m in ("kvm_intel", "kvm_amd"))
# The example keeps its secrets in ansible-vault (group_vars/all/vault.yml, not shipped).
VAULT = {"vault_oneadmin_password": "stand-in-oneadmin", "vault_ldap_admin_password": "stand-in-ldap-admin",
         "vault_ldap_password_jdoe": "stand-in-jdoe", "vault_accounting_db_password": "stand-in-accounting"}


def _hosts(site):
    """{host: groups} of a shipped inventory's hosts.yml."""
    found = {}

    def walk(group, node):
        for host in ((node or {}).get("hosts") or {}):
            found.setdefault(host, []).append(group)
        for child, sub in ((node or {}).get("children") or {}).items():
            walk(child, sub)
    walk("all", yaml.safe_load((ROOT / "inventories" / site / "hosts.yml").read_text(encoding="utf-8"))["all"])
    return found


def _size(text):
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    return float(text[:-1]) * units[text[-1].upper()]


def _stand_ins(site, work):
    """The second inventory file: what this machine stands in for, host by host."""
    site_file = ROOT / "inventories" / site / "group_vars" / "all" / "site.yml"
    site_file = yaml.safe_load(site_file.read_text(encoding="utf-8"))
    key = work / "one-repo-key.asc"
    key.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n-----END PGP PUBLIC KEY BLOCK-----\n")
    cache_dir = work / "squid-cache"
    cache_dir.mkdir()
    hosts = {}
    for index, host in enumerate(sorted(_hosts(site))):
        hvars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 # The node's links: one bridge on the loopback, its own address there.
                 "bridge_networks": [LOOP], "bridge_network_addresses": {"loop": "127.0.0.%d" % (index + 2)},
                 "bridge_site_address": "",
                 # Its hardware: kvm only where this machine has hardware virtualisation.
                 "kvm_node_domain_type": "kvm" if HW_KVM else "qemu",
                 # The cache's disk: an existing directory of this machine.
                 "squid_cache_dir": str(cache_dir)}
        if str(site_file.get("site_one_repo_key", "")).startswith("/"):
            # The demo's key is in the containers' mount of the local repository.
            hvars.update(frontend_one_repo_key=str(key), kvm_node_one_repo_key=str(key))
        if shutil.disk_usage(cache_dir).total < _size(site_file["site_cache_size"]):
            hvars["squid_cache_size"] = "1G"  # this machine's disk is smaller than the site's cache host's
        hosts[host] = hvars
    return {"all": {"hosts": hosts, "vars": VAULT}}


def _run_site(site, work):
    work.mkdir(parents=True)
    stand_ins = work / "stand-ins.yml"
    stand_ins.write_text(yaml.safe_dump(_stand_ins(site, work)), encoding="utf-8")
    return run_playbook(work, PLAYBOOK, ROOT / "inventories" / site, callback="json",
                        args=["-i", str(stand_ins)])


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    return run_each(_run_site, tmp_path_factory.mktemp("shipped"), SITES)


def test_there_are_shipped_inventories():
    assert {"demo", "example"} <= set(SITES)


@pytest.mark.parametrize("site", SITES)
def test_every_shipped_inventory_passes_the_whole_preflight(shipped, site):
    proc = shipped[site]
    assert proc.returncode == 0, failed_results(proc.stdout)[-4000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    ran = {play["play"]["name"] for play in report["plays"] if play["tasks"]}
    assert len(ran) == len(report["plays"]), "a preflight play had no host: %s" % ran
    assert set(report["stats"]) >= set(_hosts(site))
