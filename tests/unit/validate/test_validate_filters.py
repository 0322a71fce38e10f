"""Unit tests of roles/validate/filter_plugins/validate_vm.py."""

import importlib.util
import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location(
    "validate_vm_under_test", ROOT / "roles" / "validate" / "filter_plugins" / "validate_vm.py")
vv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vv)

NETWORKS = [
    {"name": "public", "cidr": "10.89.7.0/24"},
    {"name": "private", "cidr": "10.89.8.0/24"},
]
HOSTVARS = {
    "one": {"site_address": "10.89.7.10"},
    "node1": {"site_address": "10.89.7.21", "site_network_addresses": {"private": "10.89.8.21"}},
}


def _vm(state="3", lcm="3", history=True, nics=1):
    nic = [{"NIC_ID": str(i), "IP": "10.89.7.%d" % (100 + i), "MAC": "02:00:0a:59:07:%02x" % (100 + i),
            "NETWORK": "public"} for i in range(nics)]
    doc = {"ID": "7", "NAME": "stratuslab-validate-public-1", "STATE": state, "LCM_STATE": lcm,
           "STIME": "1000", "DEPLOY_ID": "one-7", "TEMPLATE": {"NIC": nic[0] if nics == 1 else nic},
           "USER_TEMPLATE": {}}
    if history:
        first = {"SEQ": "0", "HOSTNAME": "node2", "CID": "100", "DS_ID": "0", "RSTIME": "1010"}
        last = {"SEQ": "1", "HOSTNAME": "node1", "CID": "100", "DS_ID": "101", "RSTIME": "1042"}
        doc["HISTORY_RECORDS"] = {"HISTORY": [first, last]}
    return doc


def test_vm_facts_reads_the_last_history_record_and_the_first_nic():
    facts = vv.vm_facts(_vm(nics=2))
    assert facts["running"] is True
    assert (facts["host"], facts["cluster_id"], facts["system_ds"]) == ("node1", "100", "101")
    assert (facts["ip"], facts["network"]) == ("10.89.7.100", "public")
    assert facts["running_after_s"] == 42


def test_vm_facts_single_history_record_is_an_object():
    doc = _vm()
    doc["HISTORY_RECORDS"] = {"HISTORY": doc["HISTORY_RECORDS"]["HISTORY"][0]}
    assert vv.vm_facts(doc)["host"] == "node2"


def test_vm_facts_pending_vm_has_no_host_and_no_running_time():
    facts = vv.vm_facts(_vm(state="1", lcm="0", history=False))
    assert facts["running"] is False
    assert facts["host"] == "" and facts["running_after_s"] is None


@pytest.mark.parametrize("state,lcm", [("3", "36"), ("8", "0"), ("3", "2")])
def test_vm_facts_not_running(state, lcm):
    assert vv.vm_facts(_vm(state=state, lcm=lcm))["running"] is False


def test_vm_facts_refuses_what_is_not_a_vm():
    with pytest.raises(AnsibleFilterError, match="sl_validate_vm_facts"):
        vv.vm_facts({"NAME": "x"})


def test_pinger_is_the_front_end_on_its_network_else_the_node():
    public = vv.vm_facts(_vm())
    assert vv.pinger(public, "one", NETWORKS, HOSTVARS) == "one"
    private = dict(public, network="private")
    assert vv.pinger(private, "one", NETWORKS, HOSTVARS) == "node1"


def test_pinger_names_an_unknown_network():
    with pytest.raises(AnsibleFilterError, match="'storage'"):
        vv.pinger(dict(vv.vm_facts(_vm()), network="storage"), "one", NETWORKS, HOSTVARS)


def test_ping_report_times_the_first_answer_from_the_vm_creation():
    facts = vv.vm_facts(_vm())
    line = vv.ping_report([facts], [{"end": "1970-01-01 00:17:40.500000"}], "one", NETWORKS, HOSTVARS)
    assert line == "VM 7 10.89.7.100 answered one 60 s after creation"


@pytest.mark.parametrize("pool,expected", [
    ({"VM_POOL": {}}, []),
    ({"VM_POOL": {"VM": {"ID": "3", "NAME": "stratuslab-validate-public-1"}}}, ["3"]),
    ({"VM_POOL": {"VM": [{"ID": "3", "NAME": "stratuslab-validate-a"}, {"ID": "4", "NAME": "site-vm"},
                         {"ID": "0", "NAME": "stratuslab-validate-b"}]}}, ["3", "0"]),
])
def test_pool_ids_keeps_only_the_validations_objects(pool, expected):
    assert vv.pool_ids(pool, "VM_POOL", "VM", "stratuslab-validate-") == expected


def test_report_lists_checks_that_never_ran():
    results = [{"check": "Register the test image in demo-images", "status": "PASS", "seconds": 1.5, "detail": "image 0"},
               {"check": "Start a VM on every site network", "status": "FAIL", "seconds": 3, "detail": "boom"}]
    lines = vv.report(results, ["Register the test image", "Start a VM", "answers ping"])
    assert lines[0] == "PASS        1.5 s  Register the test image in demo-images: image 0"
    assert lines[1].startswith("FAIL") and lines[1].endswith(": boom")
    assert lines[2].startswith("NOT RUN") and lines[2].endswith("answers ping")


def test_report_gives_the_reason_of_a_skipped_check():
    lines = vv.report([], ["LDAP login"], [["LDAP login", "no LDAP on this site"]])
    assert lines == ["SKIP              LDAP login: no LDAP on this site"]


def test_vm_ref_names_the_vm():
    assert vv.vm_ref(["12", "public", "stratuslab-validate-public-1"]) == {
        "id": "12", "network": "public", "name": "stratuslab-validate-public-1"}
    with pytest.raises(AnsibleFilterError, match="sl_validate_vm"):
        vv.vm_ref(["12", "public"])


def test_with_pinger_adds_who_pings_each_vm():
    public = vv.vm_facts(_vm())
    private = dict(public, id="8", network="private")
    assert [vm["pinger"] for vm in vv.with_pinger([public, private], "one", NETWORKS, HOSTVARS)] == ["one", "node1"]


def _ping_failure(vm, attempts=30):
    return {"failed": True, "rc": 1, "attempts": attempts, "msg": "non-zero return code", "stderr": "",
            "stdout": "PING %s\n\n--- ping statistics ---\n1 packets transmitted, 0 received, 100%% packet loss"
                      % vm["ip"], "ansible_loop_var": "__validate_vm", "__validate_vm": vm}


def test_failure_names_each_vm_that_did_not_answer_ping_and_the_address_tried():
    vms = vv.with_pinger([vv.vm_facts(_vm()), dict(vv.vm_facts(_vm()), id="8", network="private",
                                                   name="stratuslab-validate-private-1", ip="10.89.8.100")],
                         "one", NETWORKS, HOSTVARS)
    ok = {"failed": False, "rc": 0, "ansible_loop_var": "__validate_vm", "__validate_vm": vms[0]}
    detail = vv.failure({"failed": True, "msg": "One or more items failed", "results": [ok, _ping_failure(vms[1])]})
    assert detail == ("VM 8 (stratuslab-validate-private-1) at 10.89.8.100 pinged from node1: exit code 1, "
                      "1 packets transmitted, 0 received, 100% packet loss, gave up after 30 attempts")


def test_failure_of_a_wait_reads_the_vm_from_the_last_answer():
    show = {"VM": dict(_vm(state="3", lcm="2"), NAME="stratuslab-validate-public-1")}
    item = {"failed": True, "rc": 0, "attempts": 100, "stdout": json.dumps(show),
            "ansible_loop_var": "__validate_vm", "__validate_vm": {"id": "7", "network": "public", "name": ""}}
    assert vv.failure({"failed": True, "results": [item]}) == (
        "VM 7 (stratuslab-validate-public-1) at 10.89.7.100 on node1 in state 3/2: gave up after 100 attempts")


def test_failure_of_a_single_task_is_its_message():
    assert vv.failure({"failed": True, "msg": "validate: VM 7 (x)'s disk on node1 is missing."}) \
        == "validate: VM 7 (x)'s disk on node1 is missing."
    assert vv.failure({"failed": True, "rc": 2, "stderr": "onevm: command not found\n"}) \
        == "exit code 2, onevm: command not found"


def test_appliance_names_are_the_image_names_the_appliances_entry_point_registers():
    appliances = [
        {"manifest": "images/base/ttylinux/ttylinux-9.7.img.manifest.xml"},
        {"manifest": "https://repo.example.org/images/base/tty/tty-2.0.img.manifest.xml", "name": "tty-stable"},
        {"manifest": "/images/os/deb/deb-12.manifest.xml", "name": ""},
    ]
    assert vv.appliance_names(appliances) == ["ttylinux-9.7", "tty-stable", "deb-12"]
    assert vv.appliance_names([]) == []


@pytest.mark.parametrize("bad", [
    "images/base/t/t-1.img.manifest.xml", [{"name": "t"}], [{"manifest": "images/base/t/t-1.img.gz"}], ["t-1"]])
def test_appliance_names_refuse_what_is_not_site_appliances(bad):
    with pytest.raises(AnsibleFilterError, match="sl_validate_appliance_names"):
        vv.appliance_names(bad)
