"""The image_share role's preflight refuses bad site files, naming the variable.

Each case runs the role's set_vars.yml and preflight.yml (which only read),
as playbooks/preflight.yml does, with ansible-playbook on this machine
(connection local) against an inventory of a front-end and two nodes: the
demo site file as group vars, switched to nfs, plus one bad value. Every case
must fail in the image_share preflight with a message naming the site-file
variable to fix (and the node, where one is at fault). The good inventories
(nfs and the demo's ssh) pass, so the failures are the inputs' own.
"""

import sys

import pytest
import yaml

from preflight_testlib import ROOT, assert_run_refused, preflight_play, run_each, run_playbook

SITE = ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml"

PLAYBOOK = preflight_play("image_share", hosts="frontend:nodes")

NFS = {"site_image_sharing": "nfs", "site_nfs_export_network": "10.89.7.0/24"}
NODES = {"node1": {"site_address": "10.89.7.21"}, "node2": {"site_address": "10.89.7.22"}}


def _inventory(site=None, nodes=None):
    """Demo site file + `site` overrides; front-end `one`, nodes `nodes` (host vars)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    site_vars = yaml.safe_load(SITE.read_text(encoding="utf-8"))
    site_vars.update(NFS if site is None else site)
    site_vars.update(local)
    return {"all": {"vars": site_vars, "children": {
        "frontend": {"hosts": {"one": {"site_address": "10.89.7.10"}}},
        "nodes": {"hosts": NODES if nodes is None else nodes},
    }}}


BAD = {
    "unknown image sharing mode": (
        _inventory(site={"site_image_sharing": "ceph"}),
        ["site_image_sharing", '"ceph"', "nfs, ssh"]),
    "export network '*'": (
        _inventory(site=dict(NFS, site_nfs_export_network="*")),
        ["site_nfs_export_network", '"*"']),
    "export network 0.0.0.0/0": (
        _inventory(site=dict(NFS, site_nfs_export_network="0.0.0.0/0")),
        ["site_nfs_export_network", '"0.0.0.0/0"']),
    "export network a host wildcard": (
        _inventory(site=dict(NFS, site_nfs_export_network="*.demo.stratuslab.test")),
        ["site_nfs_export_network", "CIDR"]),
    "export network malformed": (
        _inventory(site=dict(NFS, site_nfs_export_network="10.89.7.300/24")),
        ["site_nfs_export_network", "10.89.7.300"]),
    "export network missing a node": (
        _inventory(nodes=dict(NODES, node2={"site_address": "10.89.9.22"})),
        ["site_nfs_export_network", "10.89.7.0/24", "does not contain node node2", "10.89.9.22"]),
    "export network too narrow for every node": (
        _inventory(site=dict(NFS, site_nfs_export_network="10.89.7.20/31")),
        ["site_nfs_export_network", "does not contain node node2"]),
    "node without site_address": (
        _inventory(nodes=dict(NODES, node2={})),
        ["site_nfs_export_network", "does not contain node node2", "not set"]),
    "datastores directory not absolute": (
        _inventory(site={"site_image_sharing": "ssh", "site_datastores_dir": "var/lib/one/datastores"}),
        ["site_datastores_dir", "absolute"]),
}

GOOD = {
    "nfs site": _inventory(),
    # The demo site file as it is (ssh): the export network is not checked.
    "demo site (ssh)": _inventory(site={}),
    "ssh with an unused '*' export network": _inventory(
        site={"site_image_sharing": "ssh", "site_nfs_export_network": "*"}),
}
# Every case's inventory.
CASES = dict({case: inventory for case, (inventory, _) in BAD.items()}, **GOOD)


def _run(case, work):
    proc = run_playbook(work, PLAYBOOK, CASES[case])
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case's (rc, output), the playbooks run side by side (each takes seconds)."""
    return run_each(_run, tmp_path_factory.mktemp("image_share_preflight"), sorted(CASES), workers=4)


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_site_passes(runs, case):
    rc, out = runs[case]
    assert rc == 0, out


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_site_file_is_refused_naming_the_variable(runs, case):
    _, out = runs[case]
    assert_run_refused(runs[case], BAD[case][1], case)
    assert "image_share: " in out or "sl_hosts_outside" in out, out


def test_every_sharing_mode_has_the_frontends_transfer_driver():
    """The frontend role registers the datastores with the TM_MAD of the mode
    this role sets up: nfs -> shared (one file system seen by every host),
    ssh -> ssh (images copied). Both roles must accept the same modes."""
    share = yaml.safe_load((ROOT / "roles" / "image_share" / "vars" / "main.yml").read_text(encoding="utf-8"))
    frontend = yaml.safe_load((ROOT / "roles" / "frontend" / "vars" / "main.yml").read_text(encoding="utf-8"))
    assert sorted(share["__image_share_modes"]) == sorted(frontend["__frontend_tm_mads"])
    assert frontend["__frontend_tm_mads"]["nfs"] == "shared"
    assert frontend["__frontend_tm_mads"]["ssh"] == "ssh"
