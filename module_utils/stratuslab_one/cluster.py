# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opennebula_cluster reconciler: a cluster and the hosts, vnets and datastores it holds."""

from __future__ import annotations

from ansible.module_utils.stratuslab_one.errors import OneNotFoundError
from ansible.module_utils.stratuslab_one.module import (
    change_result, cluster_membership_changes, delete_result, start_run)


_MEMBER_KINDS = (("hosts", "host"), ("vnets", "vnet"), ("datastores", "datastore"))


def cluster_members_wanted(client, params):
    """{"hosts": [ids], ...} for each member list given; an unknown member fails here, before any write."""
    pools = {"hosts": client.hostpool, "vnets": client.vnpool, "datastores": client.datastorepool}
    return {key: pools[key]().ids(params[key])
            for key, kind in _MEMBER_KINDS if params.get(key) is not None}


def cluster_run(client, params, check_mode):
    changes, cluster, before = start_run(check_mode, client.clusterpool(), params,
                                         lambda found: found.summary() if found else {})
    if params["state"] == "absent":
        return delete_result(changes, cluster, before, "cluster", client.cluster_delete)

    if cluster is None and params.get("name") is None:
        raise OneNotFoundError("cluster %s does not exist (give a name to create it)" % params["id"])
    members = cluster_members_wanted(client, params)
    if cluster is None:
        new_id = changes.do("allocate cluster %s" % params["name"], client.cluster_allocate, params["name"])
        after = dict(id=new_id, name=params["name"], hosts=[], datastores=[], vnets=[])
    else:
        after = cluster.summary()

    for key, kind in _MEMBER_KINDS:
        if key not in members:
            continue
        to_add, to_remove = cluster_membership_changes(after[key], members[key], params["exclusive"])
        for obj_id in to_add:
            changes.do("add %s %s to cluster %s" % (kind, obj_id, after["name"]),
                       client.cluster_add, kind, after["id"], obj_id)
        for obj_id in to_remove:
            changes.do("remove %s %s from cluster %s" % (kind, obj_id, after["name"]),
                       client.cluster_del, kind, after["id"], obj_id)
        after[key] = sorted((set(after[key]) | set(to_add)) - set(to_remove))
    if changes.changed and not check_mode:
        after = client.cluster_info(after["id"]).summary()
    return change_result(changes, before, after, cluster=after)
