"""Scale-out: a third node joins the converged site with one --limit'ed rerun.

site-node3 was converged as a spare site host (group spare: base role only);
test_retire.py, which runs before this module, made it a node and retired
it, so it comes here unregistered and out of oneadmin's trust, with the KVM
node's packages already installed.
This module adds it to group nodes with a second inventory file, exactly as
a site administrator adds a node to hosts.yml, and reruns the real site.yml
limited to the front-end and the new node:

    ansible-playbook -i <molecule inventory> -i <nodes: site-node3> \
        --limit frontend:site-node3 site.yml

Then it proves, through the OpenNebula API and the run's own JSON report
(ansible.posix.json callback, the data of the PLAY RECAP):

- site-node3 is registered in the site cluster and MONITORED;
- every host registered before keeps its id and its state;
- on the front-end exactly these tasks changed: its firewall's rules, which
  now let site-node3 in as a node (monitord, oneadmin's SSH), and their
  reload, before anything reaches the new node; then the frontend role's
  node registration (opennebula_hosts, which allocated site-node3). The
  kvm_node role also writes site-node3's host keys into oneadmin's
  known_hosts on the front-end; that task is delegated, so the recap counts
  it under site-node3, and it is the only delegated change (checked by name
  below). Everything else the front-end ran (base, frontend main entry
  point) reports ok.

If site-node3 was already registered (verify run a second time), the rerun
must change nothing on the front-end at all (its firewall already names
site-node3, unless a converge in between took it out of group nodes).
"""

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import stratuslab_testinfra
import yaml

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
FRONTEND = stratuslab_testinfra.names("frontend")[0]
NEW = "site-node3"
CLUSTER = "demo"  # inventories/demo: site_one_cluster
PASSWORD = "demo-oneadmin-secret"  # inventories/demo: test value, not a secret
MONITORED = "2"
REGISTRATION = "nodes | Register every node in the site cluster and wait until all are MONITORED"
KNOWN_HOSTS_ON_FRONTEND = "ssh | Make every node's host keys known to oneadmin on the front-end"
FIREWALL_RULES = "firewall_on | Render the host's rules (one table, replaced in one transaction)"
FIREWALL_RELOAD = "Reload site firewall"
FIREWALL_FILE = "/etc/stratuslab/firewall.nft"

CALL = r"""
import json, sys, xmlrpc.client
print(json.dumps(getattr(xmlrpc.client.ServerProxy("http://127.0.0.1:2633/RPC2"), sys.argv[1])(sys.argv[2])))
"""


def _pool(host, method):
    cmd = host.run("python3 -c %s %s %s", CALL, method, "oneadmin:" + PASSWORD)
    assert cmd.rc == 0, cmd.stderr
    answer = json.loads(cmd.stdout)
    assert answer[0] is True, answer
    return ET.fromstring(answer[1])


def _hosts(host):
    """{name: (id, state)} of every host OpenNebula knows."""
    return {h.findtext("NAME"): (h.findtext("ID"), h.findtext("STATE"))
            for h in _pool(host, "one.hostpool.info").findall("HOST")}


def _changed(report, host):
    """Names of the tasks that changed on ``host``, in order."""
    return [task["task"]["name"] for play in report["plays"] for task in play["tasks"]
            if task["hosts"].get(host, {}).get("changed")]


@pytest.fixture(scope="module")
def scale_out(host, tmp_path_factory, request):
    before = _hosts(host)
    # Whether the front-end's firewall lets site-node3 in as a node already
    # (its monitord rule names it), or the site has no firewall to change.
    rules = host.file(FIREWALL_FILE)
    node3 = re.compile(r"[{ ]%s[ ,]" % re.escape(stratuslab_testinfra.hostvars(NEW)["site_address"]))
    let_in_before = not rules.exists or any(node3.search(line) for line in rules.content_string.splitlines()
                                            if "monitor daemon" in line and " accept " in line)
    work = tmp_path_factory.mktemp("scale_out")
    extra = work / "add-node3.yml"
    extra.write_text(yaml.safe_dump({"all": {"children": {"nodes": {"hosts": {NEW: None}}}}}))
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_INJECT_FACT_VARS="false",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    cmd = ["ansible-playbook", "-i", str(inventory), "-i", str(extra),
           "--limit", "frontend:%s" % NEW, str(ROOT / "site.yml")]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("site.yml rerun (rc %d) printed no JSON report:\n%s\n%s"
                    % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("scale-out: site.yml --limit frontend:%s took %.0f s; recap %s"
                            % (NEW, seconds, json.dumps(report["stats"], sort_keys=True)))
    return {"rc": proc.returncode, "stderr": proc.stderr, "report": report,
            "before": before, "after": _hosts(host), "seconds": seconds, "let_in_before": let_in_before}


def test_the_rerun_succeeds_on_both_hosts(scale_out):
    stats = scale_out["report"]["stats"]
    assert scale_out["rc"] == 0, scale_out["stderr"][-4000:]
    assert sorted(stats) == sorted([FRONTEND, NEW]), "the limit reached %s" % sorted(stats)
    for name in (FRONTEND, NEW):
        assert stats[name]["failures"] == 0 and stats[name]["unreachable"] == 0, stats


def test_the_new_node_is_registered_in_the_site_cluster_and_monitored(host, scale_out):
    assert NEW in scale_out["after"], "%s not registered: %s" % (NEW, sorted(scale_out["after"]))
    new_id, state = scale_out["after"][NEW]
    assert state == MONITORED
    clusters = [c for c in _pool(host, "one.clusterpool.info").findall("CLUSTER") if c.findtext("NAME") == CLUSTER]
    assert len(clusters) == 1
    assert new_id in [e.text for e in clusters[0].findall("HOSTS/ID")]


def test_the_hosts_registered_before_keep_their_ids_and_states(scale_out):
    before, after = scale_out["before"], scale_out["after"]
    assert len(before) >= 2, "the converge registered %s" % sorted(before)
    assert {name: after.get(name) for name in before} == before
    assert set(after) - set(before) <= {NEW}


def test_the_front_end_changes_only_by_the_registration(scale_out):
    report = scale_out["report"]
    frontend_changes = _changed(report, FRONTEND)
    newly_added = NEW not in scale_out["before"]
    expected = (([] if scale_out["let_in_before"] else [FIREWALL_RULES, FIREWALL_RELOAD])
                + ([REGISTRATION] if newly_added else []))
    assert [name.split(" : ", 1)[-1] for name in frontend_changes] == expected, frontend_changes
    assert report["stats"][FRONTEND]["changed"] == len(expected)
    # The one change made on the front-end by a task of the new node's play.
    on_frontend = [name for name in _changed(report, NEW) if name.endswith("on the front-end")]
    assert [name.split(" : ", 1)[-1] for name in on_frontend] == ([KNOWN_HOSTS_ON_FRONTEND] if newly_added else [])


def test_the_front_ends_oneadmin_reaches_the_new_node(host, scale_out):
    assert scale_out["rc"] == 0
    ssh = host.run("runuser -u oneadmin -- ssh -o BatchMode=yes %s.demo.stratuslab.test true", NEW)
    assert ssh.rc == 0, ssh.stderr


def test_the_new_node_bridges_its_private_network(host, scale_out):
    assert scale_out["rc"] == 0
    node = host.get_host(stratuslab_testinfra.hosts(NEW)[0])
    peer = stratuslab_testinfra.hostvars(stratuslab_testinfra.names("nodes")[0])["site_network_addresses"]["private"]
    ping = node.run("ping -c2 -W2 -I brprivate %s", peer)
    assert ping.rc == 0, ping.stdout + ping.stderr
