"""Clusters (one.cluster.*, one.clusterpool.info)."""

from ..core import Oned
from ..errors import ACTION, ALLOCATE, OnedError
from ..rpc import define_reads, refuse_taken_name, rpc
from ..template import tget


# ------------------------------------------------------------- clusters
define_reads("cluster", "one.clusterpool.info", "one.cluster.info",
             Oned.cluster_xml)


@rpc("one.cluster.allocate", "s")
def cluster_allocate(o, user, m, name):
    if not name:
        raise OnedError(ALLOCATE, "Error allocating a new cluster. Invalid "
                                  "NAME, it cannot be empty")
    refuse_taken_name(o, "cluster", name, ALLOCATE, "Error allocating a new cluster. ")
    oid = o.store.new_id("cluster")
    o.store.put("cluster", {"id": oid, "name": name,
                            "template": [["RESERVED_CPU", ""],
                                         ["RESERVED_MEM", ""]]})
    return oid


@rpc("one.cluster.delete", "i")
def cluster_delete(o, user, m, oid):
    o.get("cluster", oid)
    if oid < 100:
        raise OnedError(ACTION, "Cannot delete cluster. System Clusters "
                                "(ID < 100) cannot be deleted.")
    for kind, what in (("host", "hosts"), ("datastore", "datastores"),
                       ("vnet", "vnets")):
        if kind == "host":
            count = sum(1 for h in o.store.all("host")
                        if h["cluster_id"] == oid)
        else:
            count = sum(1 for x in o.store.all(kind) if oid in x["clusters"])
        if count:
            raise OnedError(ACTION, "Cannot delete cluster. Cluster %d is not "
                            "empty, it contains %d %s." % (oid, count, what))
    o.store.remove("cluster", oid)
    return oid


def _cluster_member(kind, add):
    def handler(o, user, m, cluster_id, obj_id):
        # delhost is oned's addhost into the default cluster (ClusterAPI::
        # DelHost): the cluster named is not even looked up
        if kind != "host" or add:
            o.get("cluster", cluster_id)
        obj = o.get(kind, obj_id)
        if kind == "host":
            target = cluster_id if add else 0
            if obj["cluster_id"] != target:
                obj["cluster_id"] = target
                # Host::update_reserved_capacity: unless the host reserves
                # both CPU and memory itself, MAX_* are computed again, from
                # the current totals (0 for an offline host: a reservation
                # makes them negative, as in oned)
                if not (tget(obj["template"], "RESERVED_CPU") and
                        tget(obj["template"], "RESERVED_MEM")):
                    o.apply_reserved(obj)
        elif add:
            if cluster_id not in obj["clusters"]:
                obj["clusters"] = sorted(obj["clusters"] + [cluster_id])
        else:
            obj["clusters"] = [c for c in obj["clusters"] if c != cluster_id]
        o.store.touch(kind, obj)
        return cluster_id
    return handler


for _kind, _suffix in (("host", "host"), ("vnet", "vnet"),
                       ("datastore", "datastore")):
    rpc("one.cluster.add" + _suffix, "i,i")(_cluster_member(_kind, True))
    rpc("one.cluster.del" + _suffix, "i,i")(_cluster_member(_kind, False))
