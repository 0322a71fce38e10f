"""Faults during a run, against the real oned 7.4.0 (issue: reliability).

* oned stopped while the front-end's API tasks run: the tasks wait for it
  (api_retry_timeout) and go on when it is back; when it stays down they
  fail within the bound, naming oned and its endpoint, and change nothing.
* ansible-playbook stopped half-way (SIGINT to it alone, as Ctrl-C; SIGKILL
  to it and every process below it, as a crash of the control machine; at
  random points) while it registers a cluster, networks and hosts: a rerun
  completes and reports what it still had to do, the next rerun changes
  nothing, and OpenNebula holds each object once.

The real oned is the tree `make one-packages` builds (one_testlib.RealOned).
"""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from one_testlib import needs_real_oned
from one_playbook import one_host, one_vnet, playbook_command, run_tasks, stop_half_way, task as T

pytestmark = needs_real_oned




def test_api_tasks_wait_for_oned_to_come_back(real_oned, tmp_path):
    """oned is down when the task starts and back 8 s later: the task waits and succeeds."""
    real_oned.stop()
    restarted = threading.Timer(8, real_oned.start)
    restarted.start()
    try:
        begin = time.monotonic()
        run = run_tasks(tmp_path, [T("opennebula_cluster", name="fault-wait", api_retry_timeout=120),
                                   T("opennebula_cluster", "again", name="fault-wait")], real_oned)
        took = time.monotonic() - begin
    finally:
        restarted.join()
    assert run.rc == 0, run.stdout[-3000:]
    assert run[0]["changed"] and run[0]["api_calls"] > 2, run[0]   # refused calls, then the real ones
    assert took >= 8
    assert not run[1]["changed"]
    assert real_oned.client().clusterpool().get("fault-wait") is not None


def test_api_tasks_fail_naming_oned_when_it_stays_down(real_oned, tmp_path):
    real_oned.stop()
    try:
        begin = time.monotonic()
        run = run_tasks(tmp_path, [T("opennebula_cluster", name="fault-down", api_retry_timeout=6, ignore=True),
                                   T("opennebula_hosts", hosts=["fault-down-1"], im_mad="dummy", vmm_mad="dummy",
                                     api_retry_timeout=6, ignore=True)], real_oned)
        took = time.monotonic() - begin
    finally:
        real_oned.start()
    for res in run.results:
        assert res["failed"] and res["changed"] is False, res
        assert "oned does not answer at %s" % real_oned.url in res["msg"], res["msg"]
        assert "systemctl status opennebula" in res["msg"]
    # two tasks, each 6 s of retries (plus Ansible's own start-up per task,
    # seconds on a loaded machine): they give up, they do not wait for ever
    assert 12 <= took < 120, took
    client = real_oned.client()
    assert client.clusterpool().get("fault-down") is None
    assert client.hostpool().get("fault-down-1") is None


# --------------------------------------------------------------------------
# a run stopped half-way
# --------------------------------------------------------------------------

NETS = ["fault-net-%d" % i for i in range(2)]
HOSTS = ["fault-node-%02d" % i for i in range(4)]
SINGLE, BATCH = HOSTS[:2], HOSTS[2:]   # registered one task each; in one batch task


def site_tasks():
    """What a front-end registers, one object after another (a one-element
    list per task: the more tasks, the more points to stop at), then hosts as
    a batch. Each task's title is the object it makes ("hosts ..." for the batch)."""
    tasks = [T("opennebula_cluster", "fault-site", name="fault-site")]
    for index, name in enumerate(NETS):
        tasks.append(one_vnet(name, name=name, bridge="brf%d" % index, clusters=["fault-site"],
                              address_ranges=[{"key": "pool", "ip": "10.70.%d.10" % index, "size": 20}],
                              wait_timeout=120))
    for name in SINGLE:
        tasks.append(one_host(name, im_mad="dummy", vmm_mad="dummy", cluster="fault-site", wait=False))
    tasks.append(T("opennebula_hosts", "hosts " + " ".join(BATCH), hosts=BATCH, im_mad="dummy",
                   vmm_mad="dummy", cluster="fault-site", wait=False))
    return tasks


def missing_objects(client):
    """The titles of site_tasks() whose objects OpenNebula lacks (or holds outside the cluster)."""
    cluster = client.clusterpool().get("fault-site")
    if cluster is None:
        return ["fault-site"] + NETS + SINGLE + ["hosts " + " ".join(BATCH)]
    vnets, hosts = client.vnpool(), client.hostpool()
    missing = [name for name in NETS if vnets.get(name) is None or vnets.get(name).id not in cluster.vnets]
    missing += [name for name in SINGLE if hosts.get(name) is None or hosts.get(name).id not in cluster.hosts]
    if any(hosts.get(name) is None or hosts.get(name).id not in cluster.hosts for name in BATCH):
        missing.append("hosts " + " ".join(BATCH))
    return missing


def describe(client):
    cluster = client.clusterpool().get("fault-site")
    hosts = {h.name: (h.id, h.cluster_id, h.state_name) for h in client.hostpool() if h.name.startswith("fault")}
    return {"cluster": cluster and (cluster.id, cluster.hosts, cluster.vnets), "hosts": hosts}


def settled_missing_objects(client, timeout=30):
    """missing_objects() once two reads a second apart agree."""
    deadline = time.monotonic() + timeout
    last = missing_objects(client)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = missing_objects(client)
        if now == last:
            return now
        last = now
    raise AssertionError("oned's objects kept changing for %d s after the run was stopped" % timeout)


def test_a_run_stopped_half_way_is_completed_by_a_rerun(real_oned, tmp_path):
    client = real_oned.client()
    # how long a whole run takes here, on an empty oned, to pick the stop points inside it
    begin = time.monotonic()
    full = run_tasks(tmp_path, site_tasks(), real_oned)
    length = time.monotonic() - begin
    assert full.rc == 0, full.stdout[-3000:]
    cleanup = ([T("opennebula_hosts", hosts=HOSTS, state="absent")]
               + [one_vnet(name=name, state="absent") for name in NETS]
               + [T("opennebula_cluster", name="fault-site", state="absent")])
    rng = random.Random()
    stopped = []
    for sig in (signal.SIGINT, signal.SIGKILL):
        assert run_tasks(tmp_path, cleanup, real_oned).rc == 0
        at = rng.uniform(0.2, 0.9) * length
        if not stop_half_way(*playbook_command(tmp_path, site_tasks(), real_oned), sig, at):
            continue
        stopped.append((sig.name, round(at, 1)))
        # a request the stopped run had sent is still carried out by oned: read once it has settled
        missing = settled_missing_objects(client)
        rerun = run_tasks(tmp_path, site_tasks(), real_oned)
        assert rerun.rc == 0, (sig.name, at, rerun.stdout[-3000:])
        done = [res["_task"] for res in rerun.results if res.get("changed")]
        # the rerun makes what the stopped run had not, and says so (what was made stays)
        assert set(missing) <= set(done), (sig.name, at, missing, done, describe(client),
                                           [r for r in rerun.results if r["_task"].startswith("hosts")])
        again = run_tasks(tmp_path, site_tasks(), real_oned)
        assert again.rc == 0 and not any(res.get("changed") for res in again.results), again.stdout[-3000:]
        names = [h.name for h in client.hostpool()]
        assert sorted(n for n in names if n.startswith("fault-node")) == HOSTS
        vnets = [v.name for v in client.vnpool()]
        assert sorted(n for n in vnets if n.startswith("fault-net")) == NETS
        assert [c.name for c in client.clusterpool()].count("fault-site") == 1
        cluster = client.clusterpool().get("fault-site")
        assert sorted(client.hostpool().get(name).id for name in HOSTS) == sorted(cluster.hosts)
    assert stopped, "no run was stopped half-way (each finished before its signal)"
