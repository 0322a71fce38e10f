#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: opennebula_cluster
short_description: Manage OpenNebula clusters and their hosts, virtual networks and datastores
description:
  - Creates or deletes an OpenNebula cluster and manages which hosts, virtual networks and datastores belong to it.
  - A host belongs to exactly one cluster, so adding it here moves it from its previous cluster.
    Virtual networks and datastores can belong to several clusters.
  - V(0) is the ID of the C(default) cluster. OpenNebula refuses to delete a cluster that still holds objects,
    and clusters with an ID below 100.
  - Every member listed must exist. The module fails, naming the first missing one, before it writes anything,
    so a new cluster is not created.
  - Uses the project's own XML-RPC client; no pyone is needed.
version_added: "1.0.0"
author: StratusLab site deployer team
options:
  hosts:
    description:
      - Hosts (names or IDs) that must be in the cluster. Omit to leave host membership alone.
    type: list
    elements: str
  vnets:
    description:
      - Virtual networks (names or IDs) that must be in the cluster. Omit to leave them alone.
    type: list
    elements: str
  datastores:
    description:
      - Datastores (names or IDs) that must be in the cluster. Omit to leave them alone.
    type: list
    elements: str
  exclusive:
    description:
      - When V(true), members of the kinds listed above that are not listed are removed from the cluster
        (OpenNebula puts a host removed from its cluster back in the C(default) cluster).
    type: bool
    default: false
extends_documentation_fragment:
  - stratuslab_one
  - stratuslab_one.by_name_or_id
"""

EXAMPLES = r"""
- name: Cluster of the site with its nodes, network and datastores
  opennebula_cluster:
    name: stratuslab
    hosts: "{{ groups['nodes'] }}"
    vnets: [public]
    datastores: [system-shared, images-shared]
    api_url: http://frontend:2633/RPC2
    api_username: oneadmin
    api_password: "{{ oneadmin_password }}"

- name: Make the default cluster (id 0) hold only datastore 0
  opennebula_cluster:
    id: 0
    datastores: ["0"]
    exclusive: true

- name: Delete a cluster
  opennebula_cluster:
    name: old-cluster
    state: absent
"""

RETURN = r"""
cluster:
  description: The cluster after the change (predicted in check mode); empty when absent.
  returned: always
  type: dict
  contains:
    id:
      description: Cluster ID (null in check mode for a cluster not created yet).
      type: int
    name:
      description: Cluster name.
      type: str
    hosts:
      description: IDs of the hosts in the cluster.
      type: list
      elements: int
    vnets:
      description: IDs of the virtual networks in the cluster.
      type: list
      elements: int
    datastores:
      description: IDs of the datastores in the cluster.
      type: list
      elements: int
  sample: {"id": 100, "name": "stratuslab", "hosts": [0, 1], "vnets": [0], "datastores": [100, 101]}
actions:
  description: The writes done (or planned in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["allocate cluster stratuslab", "add host 0 to cluster stratuslab"]
api_calls:
  description: Number of XML-RPC requests sent to oned.
  returned: always
  type: int
  sample: 4
one_error:
  description: OpenNebula's error (message, numeric code, code name, method, object id) when the module fails.
  returned: failure
  type: dict
  sample: {"msg": "[one.cluster.delete] Cannot delete cluster. Cluster 100 is not empty, it contains 1 vnets.",
           "code": 2048, "code_name": "ACTION", "method": "one.cluster.delete", "resp_id": -1}
"""

from ansible.module_utils.stratuslab_one.cluster import cluster_run
from ansible.module_utils.stratuslab_one.module import run_one_module


def main():
    run_one_module(cluster_run, dict(
        hosts=dict(type="list", elements="str"),
        vnets=dict(type="list", elements="str"),
        datastores=dict(type="list", elements="str"),
        exclusive=dict(type="bool", default=False),
    ), by_name_or_id=True)


if __name__ == "__main__":
    main()
