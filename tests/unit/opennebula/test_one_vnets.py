"""opennebula_vnets (the batch vnet module) by ansible-playbook against the project's test oned.

The XML-RPC calls are counted from the test oned's own per-call log, not only
from the module's ``api_calls``.
"""

from __future__ import annotations

import re
import time

import pytest

from one_testlib import OnedProcess
from one_playbook import run_tasks, task

CALL = re.compile(r"^\S+ test-oned \S+ ([A-Za-z0-9_.]+)\(", re.M)


@pytest.fixture(scope="module")
def oned(tmp_path_factory):
    proc = OnedProcess(tmp_path_factory.mktemp("oned-vnets"), extra_args=["--vnet-driver-delay", "0.2"])
    yield proc
    proc.stop()


def logged_calls(oned):
    """Methods logged so far by the test oned (its log is written by a background thread)."""
    previous = None
    for _ in range(50):
        calls = CALL.findall(oned.log.read_text())
        if calls == previous:
            return calls
        previous = calls
        time.sleep(0.05)
    return previous


def T(title=None, ignore=False, **args):
    return task("opennebula_vnets", title, ignore, **args)


NETS = [
    {"name": "pub", "vn_mad": "bridge", "bridge": "br0",
     "template": {"NETWORK_ADDRESS": "10.10.0.0", "GATEWAY": "10.10.0.1"},
     "address_ranges": [{"key": "pool", "ip": "10.10.0.100", "size": 50, "attributes": {"GATEWAY": "10.10.0.1"}}],
     "clusters": ["vnets-cluster", "0"]},
    {"name": "priv", "vn_mad": "802.1Q", "phydev": "eth1", "vlan_id": "42", "bridge": "br42",
     "fixed_leases": ["10.11.0.10", "10.11.0.11"]},
    {"name": "plain", "address_ranges": [{"ip": "10.12.0.1", "size": 10}]},
]


def test_vnets_batch_lifecycle(oned, tmp_path):
    client = oned.client()
    client.cluster_allocate("vnets-cluster")   # not under test here
    cid = client.clusterpool().get("vnets-cluster").id

    # check mode: the plan, nothing written; the diff only with --diff
    run = run_tasks(tmp_path, [T(vnets=NETS, poll_interval=0.2)], oned, check=True, diff=True)
    res = run[0]
    assert res["changed"] and res["summary"]["created"] == 3 and res["api_calls"] == 2
    assert res["vnets"]["pub"]["actions"] == ["allocate vnet pub", "add vnet to cluster 0"]
    assert res["vnets"]["pub"]["id"] is None
    assert res["diff"]["before"]["pub"] == {}
    assert res["diff"]["after"]["pub"]["clusters"] == sorted([cid, 0])
    assert [a["key"] for a in res["diff"]["after"]["priv"]["address_ranges"]] == ["IP4:10.11.0.10", "IP4:10.11.0.11"]
    assert len(client.vnpool()) == 0

    # first run creates all three (the first one gets id 0), rerun changes nothing
    mark = len(logged_calls(oned))
    run = run_tasks(tmp_path, [T(vnets=NETS, poll_interval=0.2)], oned)
    assert run.rc == 0, run.stdout[-3000:]
    res = run[0]
    assert res["changed"] and res["summary"] == dict(created=3, updated=0, deleted=0, unchanged=0, failed=0)
    assert "diff" not in res
    assert {n: e["state"] for n, e in res["vnets"].items()} == {"pub": "READY", "priv": "READY", "plain": "READY"}
    assert res["vnets"]["pub"]["id"] == 0
    calls = logged_calls(oned)[mark:]
    assert calls.count("one.vn.allocate") == 3 and calls.count("one.vn.info") == 0
    assert calls.count("one.vnpool.info") < 1 + 20     # the first read + one read per poll, for all three
    assert len(calls) == res["api_calls"]
    pool = client.vnpool()
    pub = pool.get(0)
    assert pub.name == "pub" and pub.clusters == sorted([cid, 0]) and pub.bridge == "br0"
    assert [(a.ip, a.size, a.attributes["SL_AR_KEY"]) for a in pub.ars] == [("10.10.0.100", 50, "pool")]
    priv = pool.get("priv")
    assert (priv.vn_mad, priv.phydev, priv.vlan_id) == ("802.1Q", "eth1", "42") and len(priv.ars) == 2

    mark = len(logged_calls(oned))
    run = run_tasks(tmp_path, [T(vnets=NETS), T("without clusters", vnets=NETS[1:])], oned, diff=True)
    again, plain = run[0], run[1]
    assert not again["changed"] and again["vnets"] == {} and again["summary"]["unchanged"] == 3
    assert again["diff"] == {"before": {}, "after": {}}
    calls = logged_calls(oned)[mark:]
    assert calls == ["one.vnpool.info", "one.clusterpool.info", "one.vnpool.info"], calls
    assert again["api_calls"] == 2 and not plain["changed"] and plain["api_calls"] == 1

    # address range changes: size in place, a new start address is rm + add, a lease added
    changed = [dict(NETS[0], address_ranges=[dict(NETS[0]["address_ranges"][0], size=60)]),
               dict(NETS[1], fixed_leases=["10.11.0.10", "10.11.0.11", "10.11.0.12"]),
               dict(NETS[2], address_ranges=[{"key": "IP4:10.12.0.1", "ip": "10.12.1.1", "size": 10}])]
    run = run_tasks(tmp_path, [T(vnets=changed), T("again", vnets=changed)], oned, diff=True)
    res = run[0]
    assert res["summary"]["updated"] == 3 and res["api_calls"] == 2 + 4
    assert res["vnets"]["pub"]["actions"] == ["update address range 0 (pool)"]
    assert res["vnets"]["priv"]["actions"] == ["add address range IP4:10.11.0.12"]
    assert res["vnets"]["plain"]["actions"] == ["add address range IP4:10.12.0.1", "remove address range 0"]
    assert [a["size"] for a in res["diff"]["after"]["pub"]["address_ranges"]] == [60]
    assert [a["size"] for a in res["diff"]["before"]["pub"]["address_ranges"]] == [50]
    assert not run[1]["changed"] and run[1]["api_calls"] == 2
    pool = client.vnpool()
    assert [a.size for a in pool.get("pub").ars] == [60]
    assert [a.ip for a in pool.get("plain").ars] == ["10.12.1.1"]

    # deletion waits until oned has removed them (one pool read per poll)
    run = run_tasks(tmp_path, [T(vnets=[{"name": "plain"}, {"name": "priv"}, {"name": "never-there"}],
                                 state="absent", poll_interval=0.2),
                               T("again", vnets=[{"name": "plain"}], state="absent")], oned)
    assert run[0]["summary"]["deleted"] == 2 and run[0]["summary"]["unchanged"] == 1
    assert not run[1]["changed"] and run[1]["api_calls"] == 1
    assert sorted(v.name for v in client.vnpool()) == ["pub"]


def test_vnets_batch_failures_from_oned(oned, tmp_path):
    client = oned.client()
    bad_cluster = [{"name": "f-ok", "address_ranges": [{"ip": "10.20.0.1", "size": 5}]},
                   {"name": "f-bad-size", "address_ranges": [{"ip": "10.21.0.1", "size": 5}]}]
    run = run_tasks(tmp_path, [T(vnets=bad_cluster, poll_interval=0.2)], oned)
    assert run.rc == 0 and run[0]["summary"]["created"] == 2
    # an AR that oned refuses: the other network is still changed, the module fails with oned's message
    wrong = [dict(bad_cluster[0], template={"DESCRIPTION": "changed"}),
             dict(bad_cluster[1], address_ranges=[{"ip": "10.21.0.1", "size": 5}, {"ip": "10.22.0.300", "size": 1}]),
             {"name": "f-new-bad-mad", "vn_mad": "802.1Q"}]
    run = run_tasks(tmp_path, [T(ignore=True, vnets=wrong[:2], poll_interval=0.2),
                               T("no phydev", ignore=True, vnets=wrong[2:]),
                               T("unknown cluster", ignore=True, vnets=[dict(wrong[0], clusters=["nosuch"])])], oned)
    res = run[0]
    assert res["failed"] and res["changed"]
    assert res["errors"]["f-bad-size"].startswith("[one.vn.add_ar]")
    assert "f-bad-size" in res["msg"] and "[one.vn.add_ar]" in res["msg"]
    assert res["vnets"]["f-ok"]["actions"] == ["update template DESCRIPTION"]
    assert res["summary"]["failed"] == 1 and res["summary"]["updated"] == 1
    assert client.vnpool().get("f-ok").template["DESCRIPTION"] == "changed"
    assert run[1]["failed"] and "phydev" in run[1]["msg"]
    assert run[2]["failed"] and "nosuch" in run[2]["msg"]


def test_vnets_batch_secrets_not_logged(oned, tmp_path):
    run = run_tasks(tmp_path, [{"name": "wrong password", "ignore_errors": True, "opennebula_vnets": {
        "vnets": [{"name": "x"}], "api_url": oned.url, "api_username": "oneadmin",
        "api_password": "s3cret-Pa55"}}], oned, connection=False)
    res = run[0]
    assert res["failed"] and res["one_error"]["code_name"] == "AUTHENTICATION"
    assert "s3cret-Pa55" not in run.stdout and "s3cret-Pa55" not in run.stderr
