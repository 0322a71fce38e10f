"""Interoperability: pyone (OpenNebula's own Python bindings, installed in
the venv) works unchanged against the test oned."""

import pytest

from oned_support import wait_for

pyone = pytest.importorskip("pyone")


def test_pyone_hosts_and_vnets(oned):
    one = pyone.OneServer(oned.url, session="oneadmin:opennebula")
    assert one.system.version() == "7.4.0"
    assert len(one.hostpool.info().HOST) == 0
    hid = one.host.allocate("node1.example", "kvm", "kvm", -1)
    assert hid == 0
    pool = one.hostpool.info()
    assert [(h.ID, h.NAME, h.STATE) for h in pool.HOST] == \
        [(0, "node1.example", 0)]
    wait_for(lambda: one.host.info(hid).STATE == 2)
    vid = one.vn.allocate('NAME="public"\nVN_MAD="bridge"\nBRIDGE="br0"', -1)
    assert vid == 0
    wait_for(lambda: one.vn.info(vid).STATE == 1)
    assert one.vn.add_ar(vid, 'AR=[TYPE="IP4",IP="192.168.10.2",SIZE="20"]') \
        == vid
    vnet = one.vn.info(vid)
    ar = vnet.AR_POOL.AR[0]
    assert (ar.IP, ar.MAC, ar.SIZE) == ("192.168.10.2", "02:00:c0:a8:0a:02", 20)
    assert vnet.TEMPLATE["BRIDGE"] == "br0"
    with pytest.raises(pyone.OneNoExistsException):
        one.host.info(42)
    with pytest.raises(pyone.OneAuthenticationException):
        pyone.OneServer(oned.url, session="oneadmin:nope").hostpool.info()
