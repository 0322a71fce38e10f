"""Interoperability: community.general's one_host and one_vnet (pyone) run
unchanged against the project's test oned, and see the same objects as the
project's own client.
"""

from __future__ import annotations

import importlib.util

import pytest

from one_testlib import OnedProcess
from one_playbook import run_tasks

pytestmark = pytest.mark.skipif(importlib.util.find_spec("pyone") is None, reason="pyone is not installed")


@pytest.fixture(scope="module")
def oned(tmp_path_factory):
    proc = OnedProcess(tmp_path_factory.mktemp("oned-interop"), extra_args=["--monitor-interval", "0.2"])
    yield proc
    proc.stop()


def cg(module, oned, title=None, **args):
    args.update(api_url=oned.url, api_username=oned.username, api_password=oned.password)
    return {"name": title or module, "community.general." + module: args}


def test_community_general_one_host(oned, tmp_path):
    client = oned.client()
    cluster_id = client.cluster_allocate("cg-cluster")
    # community.general's one_host tests the return value of one.host.status
    # for truth, and that value is the host id: on host id 0 it reports
    # "could not enable host". Take id 0 first so the test shows the rest.
    client.host_allocate("placeholder-id0", "dummy", "dummy")
    run = run_tasks(tmp_path, [
        cg("one_host", oned, name="cg-node", im_mad_name="kvm", vmm_mad_name="kvm", cluster_id=cluster_id,
           labels=["cg"], template={"NOTE": "from community.general"}),
        cg("one_host", oned, "again", name="cg-node", im_mad_name="kvm", vmm_mad_name="kvm", cluster_id=cluster_id,
           labels=["cg"], template={"NOTE": "from community.general"}),
        # one_host's cluster_id defaults to 0: without it the host moves back to "default"
        cg("one_host", oned, "disable", name="cg-node", state="disabled", cluster_id=cluster_id),
        cg("one_host", oned, "enable", name="cg-node", state="enabled", cluster_id=cluster_id),
    ])
    assert run.rc == 0, run.stdout[-4000:]
    assert run[0]["changed"] and not run[1]["changed"]
    assert run[2]["changed"] and run[3]["changed"]
    host = oned.client().hostpool().get("cg-node")
    assert host.cluster_id == cluster_id and host.template["NOTE"] == "from community.general"

    # the project's module agrees it is already there
    run = run_tasks(tmp_path, [{"name": "ours", "opennebula_hosts": {"hosts": ["cg-node"], "cluster": "cg-cluster"}}],
                    oned)
    assert not run[0]["changed"] and run[0]["summary"]["unchanged"] == 1


def test_community_general_one_vnet(oned, tmp_path):
    template = ('VN_MAD = "bridge"\nBRIDGE = "brcg"\nAR = [\n  TYPE = "IP4",\n  IP = 192.0.2.50,\n'
                '  SIZE = "20"\n]\nGATEWAY = 192.0.2.1\n')
    run = run_tasks(tmp_path, [
        cg("one_vnet", oned, name="cg-net", template=template),
        cg("one_vnet", oned, "again", name="cg-net", template=template),
    ])
    assert run.rc == 0, run.stdout[-4000:]
    assert run[0]["changed"]
    vnet = oned.client().vnpool().get("cg-net")
    assert vnet.bridge == "brcg" and vnet.ars[0].ip == "192.0.2.50" and vnet.ars[0].size == 20

    # our module adopts the range created by community.general, then both see the same network
    run = run_tasks(tmp_path, [{"name": "ours", "opennebula_vnets": {"vnets": [
        {"name": "cg-net", "bridge": "brcg", "address_ranges": [{"ip": "192.0.2.50", "size": 20}]}]}}], oned)
    assert run[0]["vnets"]["cg-net"]["id"] == vnet.id and run[0]["networks"]["cg-net"]["id"] == vnet.id
    run = run_tasks(tmp_path, [cg("one_vnet", oned, "delete", name="cg-net", state="absent")])
    assert run[0]["changed"]
