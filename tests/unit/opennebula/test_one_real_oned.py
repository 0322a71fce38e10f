"""The opennebula_* modules against a real oned 7.4.0, where what they must do
depends on oned's own rules: which address ranges it refuses and whether it
accepts overlapping ones, the ERROR state a network is left in when its
ranges are refused at creation, and the BASE_PATH it gives a datastore.

The real oned is the tree `make one-packages` builds, started by
tools/opennebula/run-oned-tree in a temporary directory, as
products/test_oned/tests/test_against_real_oned.py starts it. The same cases
against the test oned are in test_one_partial_failures.py; the last test
holds the test oned's address-range messages to the real ones.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from one_testlib import ONE as one, LOGIC as logic, OnedProcess, needs_real_oned, ranges
from one_playbook import one_vnet, run_tasks, task, vnet_left_in_error

pytestmark = needs_real_oned




def T(module, title=None, ignore=False, **args):
    if module == "opennebula_vnets":
        args.setdefault("wait_timeout", 120)   # the real bridge driver, on a loaded machine
    return task(module, title, ignore, **args)


def V(title=None, ignore=False, **args):
    """opennebula_vnets for the one network ``args``."""
    args.setdefault("wait_timeout", 120)   # the real bridge driver, on a loaded machine
    return one_vnet(title, ignore, **args)


def test_real_oned_refused_range_keeps_the_old_one(real_oned, tmp_path):
    client = real_oned.client()
    good = dict(name="real-move", address_ranges=[{"key": "pool", "ip": "10.60.0.10", "size": 10}])
    bad = dict(good, address_ranges=[{"key": "pool", "ip": "10.60.999.10", "size": 10}])
    # an overlapping new start: real oned accepts overlapping ranges, so the new one goes in first
    moved = dict(good, address_ranges=[{"key": "pool", "ip": "10.60.0.15", "size": 10}])
    run = run_tasks(tmp_path, [V(**good), V("refused start address", ignore=True, **bad)], real_oned)
    assert run[0]["changed"] and run[0]["vnets"]["real-move"]["state"] == "READY", run.stdout[-3000:]
    assert ranges(client, "real-move") == [("10.60.0.10", 10, "pool")], "the old range was removed"
    assert run[1]["failed"] and run[1]["changed"] is False
    assert run[1]["errors"] == {"real-move": "[one.vn.add_ar] Wrong or empty IP attribute"}

    run = run_tasks(tmp_path, [V("overlapping move", **moved), V("again", **moved)], real_oned)
    assert run[0]["vnets"]["real-move"]["actions"] == ["add address range pool", "remove address range 0"]
    assert not run[1]["changed"]
    assert ranges(client, "real-move") == [("10.60.0.15", 10, "pool")]


def test_real_oned_vnet_in_error_converges(real_oned, tmp_path):
    client = real_oned.client()
    # the real bridge driver, on a loaded machine
    good, broken = vnet_left_in_error(tmp_path, real_oned, "real-broken", "10.61.0", wait_timeout=120)
    assert broken.ars == []

    run = run_tasks(tmp_path, [V("corrected", **good), V("again", **good)], real_oned)
    assert run.rc == 0, run.stdout[-3000:]
    entry = run[0]["vnets"]["real-broken"]
    assert entry["actions"] == ["delete vnet real-broken (%d) in state ERROR" % broken.id,
                                "allocate vnet real-broken"]
    assert entry["state"] == "READY" and entry["id"] != broken.id and not run[1]["changed"]
    assert ranges(client, "real-broken") == [("10.61.0.10", 8, "pool")]


def test_real_oned_vnets_batch_in_error_converges(real_oned, tmp_path):
    client = real_oned.client()
    bad = [{"name": "real-batch-broken", "address_ranges": [{"ip": "10.62.0.10", "mac": "zz:zz", "size": 4}]}]
    good = [{"name": "real-batch-broken", "address_ranges": [{"ip": "10.62.0.10", "size": 4}]}]
    run = run_tasks(tmp_path, [T("opennebula_vnets", "refused", ignore=True, vnets=bad),
                               T("opennebula_vnets", "corrected", vnets=good),
                               T("opennebula_vnets", "again", vnets=good)], real_oned)
    assert run[0]["failed"] and run[0]["changed"]
    assert "Wrong format for MAC attribute: zz:zz" in run[0]["errors"]["real-batch-broken"]
    assert run[1]["vnets"]["real-batch-broken"]["state"] == "READY", run.stdout[-3000:]
    assert not run[2]["changed"]
    assert client.vnpool().get("real-batch-broken").state_name == "READY"


def test_real_oned_datastore_base_path(real_oned, tmp_path):
    client = real_oned.client()
    location = ET.fromstring(client.call("one.system.config")).findtext("DATASTORE_LOCATION")
    elsewhere = dict(name="real-ds-elsewhere", type="image", ds_mad="fs", tm_mad="qcow2", base_path="/srv/images")
    located = dict(elsewhere, name="real-ds", base_path=location)
    run = run_tasks(tmp_path, [T("opennebula_datastore", ignore=True, **elsewhere),
                               T("opennebula_datastore", **located),
                               T("opennebula_datastore", "again", **located)], real_oned)
    assert run[0]["failed"] and not run[0]["changed"] and "DATASTORE_LOCATION" in run[0]["msg"]
    assert client.datastorepool().get("real-ds-elsewhere") is None
    ds = run[1]["datastore"]
    assert ds["base_path"] == "%s/%d" % (location.rstrip("/"), ds["id"])
    assert "BASE_PATH" not in ds["template"]
    assert not run[2]["changed"] and run[2]["actions"] == []


ADD_AR_CASES = [
    'AR=[TYPE="IP4",IP="10.63.999.1",SIZE="4"]',
    'AR=[TYPE="IP4",IP="",SIZE="4"]',
    'AR=[TYPE="IP4",IP="10.63.0.1",MAC="zz:zz",SIZE="4"]',
    'AR=[TYPE="IP4",IP="10.63.0.1",SIZE="-3"]',
    'AR=[TYPE="IP4",IP="10.63.0.1",SIZE="x"]',
    'AR=[TYPE="IP4",IP="nope",SIZE="x"]',
    'AR=[TYPE="IP4",IP="10.63.0.1",SIZE="0"]',
    'AR=[TYPE="IP4",IP="10.63.0.1",SIZE="4"]',
]


def test_test_oned_checks_address_ranges_like_real_oned(real_oned, tmp_path):
    """add_ar's answers to wrong ranges, from both servers: the modules' messages come from these."""
    test_oned = OnedProcess(tmp_path)
    try:
        answers = {}
        for label, server in (("real oned", real_oned), ("test oned", test_oned)):
            client = server.client()
            vnet_id = client.vn_allocate('NAME="ar-check"\nVN_MAD="bridge"\nBRIDGE="br9"\n')
            client.wait_vnet_ready(vnet_id, timeout=120)
            answers[label] = [_add_ar(client, vnet_id, case) for case in ADD_AR_CASES]
            client.vn_delete(vnet_id)
    finally:
        test_oned.stop()
    assert answers["test oned"] == answers["real oned"]


def _add_ar(client, vnet_id, vector):
    try:
        client.call("one.vn.add_ar", vnet_id, vector)
    except one.OneError as exc:
        return exc.message, exc.code
    return "ok"
