"""The test oned serialises calls: parallel clients get unique ids, and
exactly one of several racing allocations of the same name wins."""

import threading
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor


def test_parallel_allocates_get_unique_ids(oned):
    def worker(i):
        proxy = xmlrpc.client.ServerProxy(oned.url)
        got = []
        for j in range(5):
            got.append(("host", proxy.one.host.allocate(
                "oneadmin:opennebula", "h-%d-%d" % (i, j), "kvm", "kvm", -1)))
            got.append(("vnet", proxy.one.vn.allocate(
                "oneadmin:opennebula",
                'NAME="n-%d-%d"\nVN_MAD="bridge"' % (i, j), -1)))
            got.append(("cluster", proxy.one.cluster.allocate(
                "oneadmin:opennebula", "c-%d-%d" % (i, j))))
        return got

    with ThreadPoolExecutor(16) as pool:
        results = [r for chunk in pool.map(worker, range(16)) for r in chunk]
    assert all(r[1][0] is True for r in results), results
    for kind, first in (("host", 0), ("vnet", 0), ("cluster", 100)):
        ids = sorted(r[1][1] for r in results if r[0] == kind)
        assert ids == list(range(first, first + 80)), kind
    pool_xml = oned.proxy().one.hostpool.info()[1]
    assert pool_xml.count("<HOST>") == 80


def test_racing_same_name_only_one_wins(oned):
    barrier = threading.Barrier(12)

    def worker(_):
        proxy = xmlrpc.client.ServerProxy(oned.url)
        barrier.wait()
        return proxy.one.cluster.allocate("oneadmin:opennebula", "same")

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(worker, range(12)))
    winners = [r for r in results if r[0]]
    assert len(winners) == 1
    losers = [r for r in results if not r[0]]
    assert all(r[1] == "[one.cluster.allocate] Error allocating a new "
               "cluster. NAME is already taken by CLUSTER %d." % winners[0][1]
               for r in losers)
