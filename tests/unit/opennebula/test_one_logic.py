"""Unit tests of the planning parts of the reconcilers in module_utils/stratuslab_one/."""

from __future__ import annotations

import pytest

from one_testlib import LOGIC as logic, ONE as one


def ar(ar_id, ip, size, used=0, key=None, ar_type="IP4", **attrs):
    if key:
        attrs[logic.AR_KEY_ATTR] = key
    return one.AddressRange(ar_id=ar_id, type=ar_type, size=size, ip=ip, used_leases=used, attributes=attrs)


def want(**spec):
    params = {"address_ranges": [spec], "fixed_leases": None}
    return logic._desired_ars(params)


def test_unchanged_range_needs_nothing():
    assert logic.plan_ars([ar(0, "10.0.0.1", 10, key="pool")], want(key="pool", ip="10.0.0.1", size=10),
                          force=False) == []


def test_size_and_attributes_are_updated_in_place():
    ops = logic.plan_ars([ar(3, "10.0.0.1", 10, key="pool")],
                         want(key="pool", ip="10.0.0.1", size=20, attributes={"gateway": "10.0.0.254"}), False)
    assert [(op, ar_id) for op, ar_id, _ in ops] == [("update", 3)]
    vector = logic._ar_vector(ops[0][2], ar_id=3)
    # update_ar replaces custom attributes: all of them are resent, with the key
    assert vector == {"AR_ID": 3, "SIZE": 20, "GATEWAY": "10.0.0.254", logic.AR_KEY_ATTR: "pool"}


def test_moved_start_address_is_added_then_removed():
    # oned accepts overlapping ranges: the new one first, so a refused one leaves the old in place
    ops = logic.plan_ars([ar(0, "10.0.0.1", 10, key="pool")], want(key="pool", ip="10.0.1.1", size=10), False)
    assert [(op, ar_id) for op, ar_id, _ in ops] == [("add", None), ("rm", 0)]


def test_moving_a_range_with_leases_is_refused_unless_forced():
    existing = [ar(0, "10.0.0.1", 10, used=2, key="pool")]
    with pytest.raises(one.OneError) as info:
        logic.plan_ars(existing, want(key="pool", ip="10.0.1.1", size=10), False)
    assert "2 lease(s) in use" in info.value.message and "force=true" in info.value.message
    assert [op for op, _, _ in logic.plan_ars(existing, want(key="pool", ip="10.0.1.1", size=10), True)] == \
        ["add", "rm"]


def test_unlisted_range_with_leases_is_protected():
    existing = [ar(0, "10.0.0.1", 10, key="pool"), ar(1, "10.9.0.1", 5, used=1)]
    with pytest.raises(one.OneError) as info:
        logic.plan_ars(existing, want(key="pool", ip="10.0.0.1", size=10), False)
    assert "address range 1" in info.value.message
    existing[1].used_leases = 0
    assert logic.plan_ars(existing, want(key="pool", ip="10.0.0.1", size=10), False) == [("rm", 1, None)]


def test_unkeyed_range_is_adopted_by_type_and_start():
    ops = logic.plan_ars([ar(5, "10.0.0.1", 10)], want(ip="10.0.0.1", size=10), False)
    assert [(op, ar_id) for op, ar_id, _ in ops] == [("update", 5)]  # only to store the key


def test_desired_ranges_validation():
    with pytest.raises(one.OneError):
        want(type="ETHER", size=4)  # no ip/mac: needs a key
    with pytest.raises(one.OneError):
        want(type="IP4", size=4)  # no ip
    with pytest.raises(one.OneError):
        want(ip="10.0.0.1", size=4, attributes={"IP": "x"})
    with pytest.raises(one.OneError):
        logic._desired_ars({"address_ranges": [{"ip": "10.0.0.1", "size": 1}], "fixed_leases": ["10.0.0.1"]})
    fixed = logic._desired_ars({"address_ranges": None, "fixed_leases": ["10.0.0.5"]})
    assert fixed == [dict(key="IP4:10.0.0.5", type="IP4", ip="10.0.0.5", mac="", size=1, attributes={})]


def host(state=one.HOST_MONITORED, cluster_id=0, **template):
    return one.Host(id=0, name="n", state=state, im_mad="kvm", vm_mad="kvm", cluster_id=cluster_id,
                    template=template)


SPEC = dict(name="n", state="present", im_mad="kvm", vmm_mad="kvm", cluster=None, template=None)
CLUSTERS = one.Pool("cluster", [one.Cluster(id=0, name="default"), one.Cluster(id=100, name="site")])


@pytest.mark.parametrize("current,wanted,expected", [
    (one.HOST_MONITORED, "enabled", None), (one.HOST_ERROR, "enabled", None), (one.HOST_INIT, "enabled", None),
    (one.HOST_DISABLED, "enabled", "enabled"), (one.HOST_OFFLINE, "enabled", "enabled"),
    (one.HOST_MONITORED, "disabled", "disabled"), (one.HOST_DISABLED, "disabled", None),
    (one.HOST_DISABLED, "offline", "offline"), (one.HOST_OFFLINE, "offline", None)])
def test_host_status_transitions(current, wanted, expected):
    steps = logic.plan_host(dict(SPEC, state=wanted), host(state=current), CLUSTERS, [])
    assert steps == ([("status", (expected,))] if expected else [])


def test_host_plan_cluster_by_id_zero_and_template_merge():
    warnings = []
    steps = logic.plan_host(dict(SPEC, cluster="0", template={"labels": "a", "note": 1}),
                            host(cluster_id=100, LABELS="a"), CLUSTERS, warnings)
    assert steps == [("cluster", (0,)), ("update", ({"NOTE": "1"},))]
    assert warnings == []
    steps = logic.plan_host(dict(SPEC, state="disabled", cluster="site"), None, CLUSTERS, [])
    assert steps == [("allocate", ("n", "kvm", "kvm", 100)), ("status", ("disabled",))]


def test_batch_specs_validation():
    base = dict(state="present", im_mad="kvm", vmm_mad="kvm", cluster="0", template=None)
    specs = logic.normalize_host_specs(dict(base, hosts=["a", {"name": "b", "state": "offline", "cluster": None}]))
    assert [(s["name"], s["state"], s["cluster"]) for s in specs] == [("a", "present", "0"), ("b", "offline", "0")]
    for bad in (["a", "a"], [{"state": "present"}], [{"name": "a", "colour": "red"}], [{"name": "a", "state": "on"}]):
        with pytest.raises(one.OneError):
            logic.normalize_host_specs(dict(base, hosts=bad))


class StubClient:
    """Just enough of OneClient for hosts_run: the status write fails."""

    calls = 0

    def hostpool(self):
        return one.Pool("host", [])

    def clusterpool(self):
        return CLUSTERS

    def host_allocate(self, name, im_mad, vmm_mad, cluster_id):
        return 7

    def host_status(self, host_id, status):
        raise one.OneInternalError("[one.host.status] Wrong status code", code=one.INTERNAL)


def test_batch_reports_partial_writes_as_changed():
    params = dict(hosts=[{"name": "n", "state": "disabled"}], state="present", im_mad="kvm", vmm_mad="kvm",
                  cluster=None, template=None, wait=True, wait_timeout=1, poll_interval=0.1)
    result = logic.hosts_run(StubClient(), params, check_mode=False)
    entry = result["hosts"]["n"]
    assert entry["id"] == 7 and entry["done"] == 1 and "Wrong status code" in entry["error"]
    assert result["changed"] is True  # the allocation happened
    assert result["failed_msg"].startswith("1 host(s) failed: n: [one.host.status]")
    assert result["summary"]["failed"] == 1
    # what was really done (the allocation), consistently in hosts and diff.after
    assert entry["state"] == result["diff"]["after"]["n"]["state"] == "INIT"
    assert "diff" not in logic.hosts_run(StubClient(), params, check_mode=False, diff_mode=False)


def test_batch_vnet_specs_defaults_and_validation():
    base = dict(state="present", clusters=["0"], force=False)
    specs = logic.normalize_vnet_specs(dict(base, vnets=[{"name": "a"}, {"name": "b", "state": "absent",
                                                                          "clusters": ["site"], "force": True}]))
    assert [(s["name"], s["state"], s["clusters"], s["force"]) for s in specs] == [
        ("a", "present", ["0"], False), ("b", "absent", ["site"], True)]
    for bad in ([{"name": "a"}, {"name": "a"}], [{"state": "present"}], [{"name": "a", "colour": "red"}],
                [{"name": "a", "vn_mad": "802.1Q"}], ["a"]):
        with pytest.raises(one.OneError):
            logic.normalize_vnet_specs(dict(base, vnets=bad))


def test_vnet_steps_shared_by_single_and_batch():
    vnet = one.Vnet(id=0, name="pub", state=one.VNET_READY, clusters=[0], template={"BRIDGE": "br0"},
                    ars=[one.AddressRange(ar_id=0, type="IP4", size=10, ip="10.0.0.1",
                                          attributes={"SL_AR_KEY": "IP4:10.0.0.1"})])
    params = dict(bridge="br0", template={"DNS": "10.0.0.53"}, address_ranges=[{"ip": "10.0.0.1", "size": 20}],
                  clusters=["site", "0"])
    template, ars, cids = logic.vnet_wanted(params, CLUSTERS)
    client = one.OneClient(send=lambda method, params: [True, 0, 0])  # planning sends nothing
    steps = logic.plan_vnet_steps(client, vnet, template, ars, cids, force=False)
    assert [(d, m.__name__) for d, m, _a, _k in steps] == [("update template DNS", "vn_update"),
                                                  ("update address range 0 (IP4:10.0.0.1)", "vn_update_ar"),
                                                  ("add vnet to cluster 100", "cluster_add")]
    alloc, first, view = logic.vnet_allocation("new", template, ars, cids)
    assert first == 100 and alloc["VN_MAD"] == "bridge" and alloc["AR"][0]["SIZE"] == 20
    assert view["clusters"] == [100] and view["address_ranges"][0]["key"] == "IP4:10.0.0.1"
