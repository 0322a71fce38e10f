"""Fault: a node goes down in the middle of a run.

Throwaway containers (systemd as PID 1, the project's host image) stand for
a front-end and three nodes of the demo site file (inventories/demo
group_vars), reached with the podman connection. playbooks/base.yml (the
base role, as site.yml's first play runs it) is applied to all of them; one
node is stopped at a seeded random point of the run. The run fails on that
node only, the others converge; once the node is started again, a rerun
converges it and a further rerun changes nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import uuid

import pytest
import yaml

from faultlib import podman, seeded
from one_playbook import ANSIBLE_PLAYBOOK, REPO

IMAGE = "localhost/stratuslab-host:bookworm"
PREFIX = "flt-nd-%s" % uuid.uuid4().hex[:6]
NAMES = {"one": PREFIX + "-one", "node1": PREFIX + "-node1", "node2": PREFIX + "-node2",
         "node3": PREFIX + "-node3"}
ADDRESSES = {"one": "10.89.7.10", "node1": "10.89.7.21", "node2": "10.89.7.22", "node3": "10.89.7.23"}
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@pytest.fixture
def site(tmp_path):
    try:
        for name in NAMES.values():
            podman("run", "-d", "--name", name, "--privileged", "--systemd", "always", "--no-hosts", IMAGE,
                   "/sbin/init")
        inventory = {"all": {"vars": {"ansible_connection": "containers.podman.podman",
                                      "ansible_python_interpreter": "/usr/bin/python3"},
                             "children": {
                                 "frontend": {"hosts": {"one": None}},
                                 "nodes": {"hosts": {h: None for h in ("node1", "node2", "node3")}}}}}
        host_vars = tmp_path / "inventory" / "host_vars"
        host_vars.mkdir(parents=True)
        for host, name in NAMES.items():
            (host_vars / ("%s.yml" % host)).write_text(yaml.safe_dump(
                {"ansible_host": name, "site_address": ADDRESSES[host]}))
        (tmp_path / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))
        os.symlink(REPO / "inventories" / "demo" / "group_vars", tmp_path / "inventory" / "group_vars")
        for name in NAMES.values():    # systemd up
            for _ in range(60):
                state = podman("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    break
                time.sleep(1)
        yield tmp_path / "inventory"
    finally:
        for name in NAMES.values():
            podman("rm", "-f", "-t", "0", name, check=False)


def converge(inventory, tmp_path, during=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_INJECT_FACT_VARS="false",
               ANSIBLE_HOST_PATTERN_MISMATCH="ignore",
               CONTAINERS_CONF=str(REPO / "tools" / "container" / "containers.conf"))
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(REPO / "playbooks" / "base.yml")]
    begin = time.monotonic()
    thread = None
    if during:
        thread = threading.Thread(target=during, args=(lambda: time.monotonic() - begin,))
        thread.start()
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=1800)
    if thread:
        thread.join()
    recap = {m.group(1): dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups()[1:])))
             for m in RECAP.finditer(proc.stdout)}
    return proc, recap, time.monotonic() - begin


def undo():
    """Undo part of the base role's work on every host (its user, /etc/hosts)."""
    for name in NAMES.values():
        podman("exec", name, "sh", "-c", "userdel -r oneadmin; groupdel oneadmin; sed -i '/10.89.7/d' /etc/hosts; true")


def test_a_node_down_mid_run_fails_alone_and_a_rerun_converges_it(site, tmp_path):
    rng, seed = seeded("node down mid-run")
    # a first run installs the packages; what a run then does is measured on
    # hosts where part of the role's work is undone, as before the faulty run
    proc, recap, length = converge(site, tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:]
    print("a first run: %.1f s, %s" % (length, recap))
    undo()
    proc, recap, length = converge(site, tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:]
    print("a run with work to do: %.1f s, %s" % (length, recap))
    undo()
    victim = rng.choice(["node1", "node2", "node3"])
    at = rng.uniform(0.15, 0.7) * length
    print("seed %d: stop %s at %.1f s" % (seed, victim, at))

    def fault(elapsed):
        while elapsed() < at:
            time.sleep(0.1)
        podman("stop", "-t", "0", NAMES[victim])

    proc, recap, took = converge(site, tmp_path, fault)
    where = "seed %d: %s stopped at %.1f s" % (seed, victim, at)
    print("%s: %s" % (where, recap))
    assert proc.returncode != 0, (where, proc.stdout[-3000:])
    bad = {h for h, r in recap.items() if r["failed"] or r["unreachable"]}
    assert bad == {victim}, (where, recap, proc.stdout[-3000:])
    podman("start", NAMES[victim])
    time.sleep(5)
    proc, recap, took = converge(site, tmp_path)
    print("rerun after %s is back: %s (%.1f s)" % (victim, recap, took))
    assert proc.returncode == 0, (where, proc.stdout[-3000:])
    assert recap[victim]["changed"] > 0, (where, recap)
    proc, recap, took = converge(site, tmp_path)
    print("next rerun: %s (%.1f s)" % (recap, took))
    assert proc.returncode == 0 and all(r["changed"] == 0 for r in recap.values()), (where, recap, proc.stdout[-3000:])
