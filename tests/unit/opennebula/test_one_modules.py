"""The opennebula_* modules run by ansible-playbook against the project's test oned.

Each test checks check mode (change predicted, nothing written), diff,
idempotence (second run changed=false) and OpenNebula's messages on failure.
"""

from __future__ import annotations

import pytest

from one_testlib import OnedProcess, ranges
from one_playbook import one_host, one_vnet, run_tasks, task as T


@pytest.fixture(scope="module")
def oned(tmp_path_factory):
    proc = OnedProcess(tmp_path_factory.mktemp("oned"),
                       extra_args=["--monitor-interval", "0.2", "--unreachable-hosts", "unreachable-*"])
    yield proc
    proc.stop()


# --------------------------------------------------------------------------
# clusters
# --------------------------------------------------------------------------

def test_cluster_lifecycle(oned, tmp_path):
    client = oned.client()
    spec = dict(name="site", datastores=["0", "default"])
    run = run_tasks(tmp_path, [T("opennebula_cluster", **spec)], oned, check=True, diff=True)
    assert run[0]["changed"] and run[0]["actions"][0] == "allocate cluster site"
    assert run[0]["diff"]["before"] == {} and run[0]["diff"]["after"]["datastores"] == [0, 1]
    assert client.clusterpool().get("site") is None, "check mode wrote something"

    run = run_tasks(tmp_path, [T("opennebula_cluster", **spec), T("opennebula_cluster", "again", **spec),
                               T("opennebula_cluster", "default cluster by id 0", id=0, datastores=["2"])], oned)
    assert run.rc == 0
    assert run[0]["changed"] and run[0]["cluster"]["id"] >= 100 and run[0]["cluster"]["datastores"] == [0, 1]
    assert not run[1]["changed"] and run[1]["api_calls"] == 2  # clusterpool + datastorepool
    assert not run[2]["changed"] and run[2]["cluster"]["name"] == "default"
    assert client.clusterpool().get("site").datastores == [0, 1]

    # exclusive membership, then a delete refused by OpenNebula, then absent
    run = run_tasks(tmp_path, [
        T("opennebula_cluster", name="site", datastores=["1"], exclusive=True),
        T("opennebula_cluster", "not empty", name="site", state="absent", ignore=True),
        T("opennebula_cluster", "empty it", name="site", datastores=[], exclusive=True),
        T("opennebula_cluster", "delete", name="site", state="absent"),
        T("opennebula_cluster", "delete again", name="site", state="absent"),
        T("opennebula_cluster", "system cluster", id=0, state="absent", ignore=True),
    ], oned)
    assert run[0]["changed"] and run[0]["cluster"]["datastores"] == [1]
    assert run[1]["failed"] and run[1]["msg"].startswith("[one.cluster.delete] Cannot delete cluster.")
    assert run[1]["one_error"]["code_name"] == "ACTION"
    assert run[3]["changed"] and not run[4]["changed"]
    assert "System Clusters (ID < 100) cannot be deleted" in run[5]["msg"]


# --------------------------------------------------------------------------
# hosts, one in the list
# --------------------------------------------------------------------------

def test_host_lifecycle(oned, tmp_path):
    client = oned.client()
    host = dict(cluster="0", template={"labels": "rack1"}, wait=True, poll_interval=0.2)
    run = run_tasks(tmp_path, [one_host("node-a", **host)], oned, check=True, diff=True)
    assert run[0]["changed"] and run[0]["hosts"]["node-a"]["actions"][0].startswith("allocate")
    assert run[0]["diff"]["after"]["node-a"]["template"] == {"LABELS": "rack1"}
    assert client.hostpool().get("node-a") is None

    run = run_tasks(tmp_path, [one_host("node-a", **host), one_host("node-a", "again", **host),
                               one_host("node-a", "disable", state="disabled"),
                               one_host("node-a", "disable again", state="disabled"),
                               one_host("node-a", "merge", template={"NOTE": "x y"}),
                               one_host("node-a", "offline", state="offline"),
                               one_host("node-a", "enable", state="enabled", wait=True, poll_interval=0.2)],
                    oned, diff=True)
    assert run.rc == 0, run.stdout
    states = [res["hosts"].get("node-a", {}).get("state") for res in run.results]
    assert run[0]["changed"] and states[0] == "MONITORED"
    after = run[0]["diff"]["after"]["node-a"]
    assert after["template"]["LABELS"] == "rack1" and after["cluster_id"] == 0
    assert not run[1]["changed"] and run[1]["api_calls"] == 2 and run[1]["summary"]["unchanged"] == 1
    assert run[2]["changed"] and states[2] == "DISABLED"
    assert not run[3]["changed"]
    assert run[4]["changed"] and run[4]["hosts"]["node-a"]["actions"] == ["merge template NOTE"]
    assert states[5] == "OFFLINE"
    assert run[6]["changed"] and states[6] == "MONITORED"
    node = client.hostpool().get("node-a")
    assert (node.state_name, node.cluster_id) == ("MONITORED", 0)
    # the merge kept the others
    assert (node.template["LABELS"], node.template["NOTE"]) == ("rack1", "x y")

    run = run_tasks(tmp_path, [
        one_host("unreachable-1", "unreachable", wait=True, poll_interval=0.2, ignore=True),
        one_host("node-b", "missing cluster", cluster="nope", ignore=True),
        one_host("node-a", "other driver", im_mad="dummy"),
        one_host("node-a", "delete", state="absent"),
        one_host("node-a", "delete again", state="absent"),
    ], oned)
    assert run[0]["failed"] and "Error monitoring Host unreachable-1" in run[0]["errors"]["unreachable-1"]
    assert "Error monitoring Host unreachable-1" in run[0]["msg"]
    assert run[1]["failed"] and "cluster 'nope' does not exist" in run[1]["errors"]["node-b"]
    assert "cluster 'nope' does not exist" in run[1]["msg"]
    assert not run[2]["changed"] and any("cannot change the drivers" in w for w in run[2]["warnings"])
    assert run[3]["changed"] and not run[4]["changed"]
    assert client.hostpool().get("node-a") is None


# --------------------------------------------------------------------------
# hosts, batch
# --------------------------------------------------------------------------

def test_hosts_batch(oned, tmp_path):
    client = oned.client()
    names = ["batch-%03d" % i for i in range(60)]
    client.cluster_allocate("batch")  # not under test here: saves an ansible-playbook run
    batch = dict(hosts=names[:-1] + [{"name": names[-1], "state": "disabled", "template": {"GPU": "no"}}],
                 cluster="batch", poll_interval=0.2)
    run = run_tasks(tmp_path, [T("opennebula_hosts", **batch)], oned, check=True, diff=True)
    assert run[0]["changed"] and run[0]["summary"]["allocated"] == 60
    assert run[0]["api_calls"] == 2 and len(run[0]["diff"]["after"]) == 60
    assert {n: h["state"] for n, h in run[0]["hosts"].items()} == {n: a["state"] for n, a in
                                                                   run[0]["diff"]["after"].items()}
    assert not [h for h in client.hostpool() if h.name.startswith("batch-")]

    before = client.calls
    run = run_tasks(tmp_path, [T("opennebula_hosts", **batch), T("opennebula_hosts", "again", **batch)], oned)
    assert run.rc == 0, run.stdout
    first, second = run[0], run[1]
    assert first["changed"] and first["summary"]["allocated"] == 60 and first["summary"]["status"] == 1
    states = {n: h["state"] for n, h in first["hosts"].items()}
    # the disabled one is not waited for; every entry tells its final state
    assert states == dict({n: "MONITORED" for n in names[:-1]}, **{names[-1]: "DISABLED"})
    assert "diff" not in first      # only in diff mode
    # 2 pool reads + 60 allocates + 1 status + 1 template merge + a few hostpool polls
    assert first["api_calls"] < 2 + 62 + 20
    assert not second["changed"] and second["api_calls"] == 2 and second["summary"]["unchanged"] == 60
    assert second["hosts"] == {}
    cluster = client.clusterpool().get("batch")
    assert len(cluster.hosts) == 60 and client.calls == before + 1

    # move some, drop some, one failing write does not stop the others
    run = run_tasks(tmp_path, [T("opennebula_hosts", hosts=names[:3], cluster="0", wait=False),
                               T("opennebula_hosts", "delete", hosts=names[3:], state="absent"),
                               T("opennebula_hosts", "bad", ignore=True,
                                 hosts=["ok-1", {"name": "x" * 80}], wait=False)], oned)
    assert run[0]["summary"]["moved"] == 3 and run[1]["summary"]["deleted"] == 57
    assert run[2]["failed"] and "HOSTNAME length" in run[2]["errors"]["x" * 80]
    assert run[2]["hosts"]["ok-1"]["id"] is not None and run[2]["summary"]["allocated"] == 1


def test_hosts_batch_wait_reports_error_hosts(oned, tmp_path):
    run = run_tasks(tmp_path, [T("opennebula_hosts", ignore=True, hosts=["w-1", "unreachable-2"],
                                 poll_interval=0.2, wait_timeout=30)], oned, diff=True)
    res = run[0]
    assert res["failed"] and res["changed"]
    assert "Error monitoring Host unreachable-2" in res["errors"]["unreachable-2"]
    assert res["hosts"]["unreachable-2"]["state"] == "ERROR"
    assert res["diff"]["after"]["unreachable-2"]["state"] == "ERROR"
    assert res["diff"]["after"]["w-1"]["state"] == res["hosts"]["w-1"]["state"] == "MONITORED"


def test_hosts_batch_2000_nodes(tmp_path_factory, tmp_path):
    """2,000 new nodes registered and MONITORED in one call; then checked with two pool reads."""
    oned = OnedProcess(tmp_path_factory.mktemp("oned-2000"), extra_args=["--monitor-interval", "0.5"])
    try:
        oned.client().cluster_allocate("big")
        names = ["node%04d.example.org" % i for i in range(2000)]
        task = T("opennebula_hosts", hosts=names, cluster="big", poll_interval=0.5)
        run = run_tasks(tmp_path, [task, dict(task, name="again")], oned)
    finally:
        oned.stop()
    first, second = run[0], run[1]
    assert first["changed"] and first["summary"]["allocated"] == 2000
    assert {h["state"] for h in first["hosts"].values()} == {"MONITORED"}
    assert first["api_calls"] < 2 + 2000 + 30  # pool reads + allocations + one hostpool read per poll
    assert not second["changed"] and second["summary"]["unchanged"] == 2000
    assert second["api_calls"] == 2


# --------------------------------------------------------------------------
# virtual networks
# --------------------------------------------------------------------------

PUBLIC = dict(name="public", vn_mad="bridge", bridge="br0",
              template={"NETWORK_ADDRESS": "10.0.0.0", "NETWORK_MASK": "255.255.255.0", "GATEWAY": "10.0.0.1"},
              address_ranges=[{"key": "pool", "ip": "10.0.0.100", "size": 50,
                               "attributes": {"GATEWAY": "10.0.0.1"}},
                              {"key": "macs", "type": "ETHER", "size": 4}],
              clusters=["0"])


def test_vnet_bridge_ranged(oned, tmp_path):
    client = oned.client()
    run = run_tasks(tmp_path, [one_vnet(**PUBLIC)], oned, check=True, diff=True)
    assert run[0]["changed"] and run[0]["vnets"]["public"]["actions"] == ["allocate vnet public"]
    assert [a["key"] for a in run[0]["diff"]["after"]["public"]["address_ranges"]] == ["macs", "pool"]
    assert client.vnpool().get("public") is None

    run = run_tasks(tmp_path, [one_vnet(**PUBLIC), one_vnet("again", **PUBLIC)], oned, diff=True)
    assert run.rc == 0, run.stdout
    assert run[0]["changed"] and run[0]["vnets"]["public"]["state"] == "READY"
    assert not run[1]["changed"] and run[1]["api_calls"] == 2  # vnpool + clusterpool
    vnet = client.vnpool().get("public")
    assert vnet.state_name == "READY" and vnet.bridge == "br0"
    assert [(a.type, a.size) for a in vnet.ars] == [("IP4", 50), ("ETHER", 4)]

    grown = dict(PUBLIC, template=dict(PUBLIC["template"], DNS="10.0.0.53"),
                 address_ranges=[dict(PUBLIC["address_ranges"][0], size=60, ip="10.0.0.100")])
    moved = dict(grown, address_ranges=[dict(grown["address_ranges"][0], ip="10.0.1.100")])
    run = run_tasks(tmp_path, [one_vnet("grow", **grown)], oned, diff=True)
    assert run[0]["vnets"]["public"]["actions"] == ["update template DNS", "update address range 0 (pool)",
                                                    "remove address range 1"]
    (ar,) = client.vnpool().get("public").ars
    assert (ar.ip, ar.size, ar.attributes["GATEWAY"]) == ("10.0.0.100", 60, "10.0.0.1")
    run = run_tasks(tmp_path, [one_vnet("move", **moved), one_vnet("move again", **moved)], oned, diff=True)
    assert run[0]["vnets"]["public"]["actions"] == ["add address range pool", "remove address range 0"]
    assert not run[1]["changed"]
    assert run[1]["networks"]["public"]["address_ranges"][0]["ip"] == "10.0.1.100"
    assert ranges(client, "public") == [("10.0.1.100", 60, "pool")]
    assert client.vnpool().get("public").template["DNS"] == "10.0.0.53"


def test_vnet_8021q_fixed_and_absent(oned, tmp_path):
    client = oned.client()
    client.cluster_allocate("net-cluster")  # not under test here: saves an ansible-playbook run
    private = dict(name="private", vn_mad="802.1Q", phydev="eth1", vlan_id="42", bridge="br42",
                   fixed_leases=["10.1.0.10", "10.1.0.11"], clusters=["net-cluster", "0"])
    run = run_tasks(tmp_path, [one_vnet(**private), one_vnet("again", **private),
                               one_vnet("one more lease", **dict(
                                   private, fixed_leases=["10.1.0.10", "10.1.0.11", "10.1.0.12"])),
                               one_vnet("delete", name="private", state="absent"),
                               one_vnet("delete again", name="private", state="absent"),
                               one_vnet("no phydev", ignore=True, name="x", vn_mad="802.1Q")],
                    oned)
    assert run[0]["changed"] and run[0]["vnets"]["private"]["state"] == "READY"
    # as the second task's pool read found the network the first one made
    vnet = run[1]["networks"]["private"]
    template = vnet["template"]
    assert (template["VN_MAD"], template["PHYDEV"], template["VLAN_ID"]) == ("802.1Q", "eth1", "42")
    assert len(vnet["clusters"]) == 2 and [a["size"] for a in vnet["address_ranges"]] == [1, 1]
    assert not run[1]["changed"]
    assert run[2]["vnets"]["private"]["actions"] == ["add address range IP4:10.1.0.12"]
    assert run[3]["changed"] and not run[4]["changed"]
    assert run[5]["failed"] and "phydev" in run[5]["msg"]
    assert client.vnpool().get("private") is None


def test_vnet_adopts_unkeyed_ranges_and_reports_oned_errors(oned, tmp_path):
    client = oned.client()
    vid = client.vn_allocate('NAME="legacy"\nVN_MAD="bridge"\nAR=[TYPE="IP4",IP="10.2.0.1",SIZE="10"]\n')
    client.wait_vnet_ready(vid, timeout=10)
    spec = dict(name="legacy", address_ranges=[{"ip": "10.2.0.1", "size": 10}])
    run = run_tasks(tmp_path, [one_vnet(**spec), one_vnet("again", **spec),
                               one_vnet("template only", name="legacy", template={"NAME2": "x"}),
                               one_vnet("bad ar", ignore=True, name="legacy",
                                        address_ranges=[{"ip": "10.2.0.1", "size": 10},
                                                        {"ip": "10.3.0.300", "size": 1}])],
                    oned)
    # adopted: key attribute added
    assert run[0]["vnets"]["legacy"]["actions"] == ["update address range 0 (IP4:10.2.0.1)"]
    assert not run[1]["changed"]
    assert run[2]["changed"] and run[2]["vnets"]["legacy"]["id"] == vid
    assert run[3]["failed"] and run[3]["errors"]["legacy"].startswith("[one.vn.add_ar]")
    assert client.vnpool().get("legacy").template["NAME2"] == "x"


# --------------------------------------------------------------------------
# datastores
# --------------------------------------------------------------------------

def test_datastores(oned, tmp_path):
    client = oned.client()
    client.cluster_allocate("ds-cluster")  # not under test here: saves an ansible-playbook run
    system = dict(name="system-shared", type="system", tm_mad="shared", clusters=["ds-cluster"])
    images = dict(name="images", type="image", ds_mad="fs", tm_mad="qcow2", base_path="/var/lib/one/datastores",
                  clusters=["ds-cluster", "0"], template={"LIMIT_MB": 1000})
    run = run_tasks(tmp_path, [T("opennebula_datastore", **system), T("opennebula_datastore", **images)],
                    oned, check=True, diff=True)
    assert run[0]["changed"] and run[1]["diff"]["after"]["clusters"] == sorted(run[1]["diff"]["after"]["clusters"])
    assert client.datastorepool().get("images") is None

    run = run_tasks(tmp_path, [T("opennebula_datastore", **system), T("opennebula_datastore", **images),
                               T("opennebula_datastore", "again", **system),
                               T("opennebula_datastore", "again", **images),
                               T("opennebula_datastore", "ssh now", **dict(images, tm_mad="ssh")),
                               T("opennebula_datastore", "type change", ignore=True, **dict(images, type="file")),
                               T("opennebula_datastore", "bad driver", ignore=True, name="bad", ds_mad="nope",
                                 tm_mad="ssh"),
                               T("opennebula_datastore", "bootstrap id 0", id=0, type="system"),
                               T("opennebula_datastore", "delete", name="images", state="absent"),
                               T("opennebula_datastore", "delete again", name="images", state="absent")],
                    oned, diff=True)
    assert run[0]["changed"] and run[0]["datastore"]["type"] == "system"
    assert run[0]["datastore"]["tm_mad"] == "shared"
    img = run[1]["datastore"]
    assert (img["ds_mad"], img["tm_mad"], len(img["clusters"])) == ("fs", "qcow2", 2)
    assert img["base_path"] == "/var/lib/one//datastores/%d" % img["id"] and "BASE_PATH" not in img["template"]
    assert not run[2]["changed"] and not run[3]["changed"]
    assert run[4]["actions"] == ["update template TM_MAD"] and run[4]["datastore"]["tm_mad"] == "ssh"
    assert run[5]["failed"] and "cannot convert" in run[5]["msg"]
    assert run[6]["msg"] == '[one.datastore.allocate] DS_MAD named "nope" is not defined in oned.conf'
    assert not run[7]["changed"] and run[7]["datastore"]["id"] == 0
    assert run[8]["changed"] and not run[9]["changed"]


# --------------------------------------------------------------------------
# connection handling
# --------------------------------------------------------------------------

def test_credentials_from_environment_and_secrets(oned, tmp_path):
    auth = tmp_path / "one_auth"
    auth.write_text("oneadmin:opennebula\n")
    env = {"ONE_XMLRPC": oned.url, "ONE_AUTH": str(auth)}
    run = run_tasks(tmp_path, [T("opennebula_cluster", id=0),
                               T("opennebula_cluster", "bad password", ignore=True, id=0,
                                 api_password="s3cr3t-wrong"),
                               T("opennebula_cluster", "not oned", ignore=True, id=0,
                                 api_url=oned.url.replace("/RPC2", "/nope"))],
                    env=env)
    assert run[0]["cluster"]["name"] == "default"
    assert run[1]["msg"] == "[one.clusterpool.info] User couldn't be authenticated, aborting call."
    assert run[1]["one_error"]["code"] == 256
    assert "HTTP 404" in run[2]["msg"] and run[2]["api_calls"] == 1  # a 404 is not retried
    assert "s3cr3t-wrong" not in run.stdout
