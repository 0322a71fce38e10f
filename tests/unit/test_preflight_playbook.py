"""playbooks/preflight.yml stops the whole run when any host fails a check.

Ansible drops only the failing host from later plays by default, so a
mistake in one node's variables would still let site.yml deploy every other
host. The preflight plays are any_errors_fatal: this runs the real
playbooks/preflight.yml, followed by a marker play standing for site.yml's
deploying plays, with ansible-playbook on this machine (connection local:
preflight only reads) against a front-end and two nodes described by the
demo site file, its networks moved onto the loopback interface (and its
package repository's key, which the demo's containers have, stood in for). With one
node's address outside its network, nothing reaches the marker play; with
good inputs every host does (so the failure is the input's own).
"""

import json
import sys

import pytest
import yaml

from preflight_testlib import ROOT, failed_results, run_playbook

SITE = ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml"

PLAYBOOK = """
- name: Run the site's preflight
  ansible.builtin.import_playbook: {root}/playbooks/preflight.yml

- name: Stand for the plays that change hosts
  hosts: all
  gather_facts: false
  tasks:
    - name: Reached the deploying plays
      ansible.builtin.debug:
        msg: deploying
""".format(root=ROOT)

LOOP = {"name": "loop", "bridge": "brloop", "interface": "lo", "cidr": "127.0.0.0/8",
        "range": {"first": "127.0.1.1", "last": "127.0.1.99"}}


def _inventory(node2_address, work):
    site = yaml.safe_load(SITE.read_text(encoding="utf-8"))
    site["site_networks"] = [LOOP]
    # The demo's package repository key is in its containers' mount: a stand-in here.
    site["site_one_repo_key"] = str(work / "one-repo-key.asc")
    (work / "one-repo-key.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n")
    site.update(ansible_connection="local", ansible_python_interpreter=sys.executable)
    return {
        "all": {
            "vars": site,
            "children": {
                "frontend": {"hosts": {"fe": {"site_address": "127.0.0.1"}}},
                "nodes": {"hosts": {
                    "node1": {"site_address": "127.0.0.2", "site_network_addresses": {"loop": "127.0.0.2"}},
                    "node2": {"site_address": "127.0.0.3", "site_network_addresses": {"loop": node2_address}},
                }},
            },
        }
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for case, address in (("good", "127.0.0.3"), ("bad", "10.9.9.9")):
        work = tmp_path_factory.mktemp(case)
        proc = run_playbook(work, PLAYBOOK, _inventory(address, work), callback="json")
        out[case] = proc
    return out


def _marker_hosts(proc):
    report = json.loads(proc.stdout)
    return sorted(host for play in report["plays"] if play["play"]["name"] == "Stand for the plays that change hosts"
                  for task in play["tasks"] for host in task["hosts"])


def test_good_site_reaches_the_deploying_plays_on_every_host(runs):
    proc = runs["good"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert _marker_hosts(proc) == ["fe", "node1", "node2"]


def test_one_bad_node_stops_every_host(runs):
    proc = runs["bad"]
    assert proc.returncode != 0
    failed = failed_results(proc.stdout, host="node2")
    assert "10.9.9.9" in failed and "site_network_addresses" in failed, proc.stdout[-3000:]
    # fe and node1 passed their checks, yet no host reaches the deploying plays.
    assert _marker_hosts(proc) == []
