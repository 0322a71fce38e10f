#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: opennebula_host
short_description: Register one OpenNebula host (hypervisor node) and manage its status
description:
  - Registers a host in OpenNebula, sets its cluster, its status (enabled, disabled, offline) and merges
    attributes into its template; or deletes it.
  - For many hosts at once use M(opennebula_hosts), which reads the host pool once for the whole list.
  - OpenNebula cannot change the drivers of a registered host; a different O(im_mad) or O(vmm_mad)
    gives a warning, not a change.
version_added: "1.0.0"
author: StratusLab site deployer team
options:
  name:
    description: Host name as OpenNebula knows it (usually the node's FQDN).
    type: str
    required: true
  state:
    description:
      - V(present) registers the host if needed and leaves its status alone.
      - V(enabled), V(disabled) and V(offline) also set the status (a new host starts enabled).
      - V(absent) deletes the host. A host with VMs is emptied first with O(drain=live), and refused otherwise.
    type: str
    choices: [present, absent, enabled, disabled, offline]
    default: present
  im_mad:
    description: Information (monitoring) driver used when the host is created.
    type: str
    default: kvm
  vmm_mad:
    description: Virtualization driver used when the host is created.
    type: str
    default: kvm
    aliases: [vm_mad]
  cluster:
    description:
      - Cluster (name or ID; V(0) is the C(default) cluster) the host must be in.
      - Omit to leave the cluster alone (a new host goes to the C(default) cluster).
    type: str
  template:
    description:
      - Attributes merged into the host template (other attributes are kept).
        Only attributes whose value differs are sent.
    type: dict
  wait:
    description:
      - After creating or re-enabling the host, wait until OpenNebula has monitored it (state MONITORED).
        Fails at once if the host goes to ERROR, with OpenNebula's error message.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for O(wait), and for the VMs of O(drain) to arrive on their new hosts.
    type: int
    default: 300
extends_documentation_fragment:
  - stratuslab_one
  - stratuslab_one.host
"""

EXAMPLES = r"""
- name: Register a KVM node in the site cluster and wait for its first monitoring
  opennebula_host:
    name: node01.example.org
    cluster: stratuslab
    template:
      LABELS: "kvm,rack1"
    wait: true

- name: Take a node out of scheduling for maintenance
  opennebula_host:
    name: node01.example.org
    state: disabled

- name: Remove a node
  opennebula_host:
    name: node01.example.org
    state: absent

- name: Retire a node, live-migrating its VMs to the other enabled nodes of its cluster first
  opennebula_host:
    name: node01.example.org
    state: absent
    drain: live
    wait_timeout: 1800
"""

RETURN = r"""
host:
  description: The host after the change (predicted in check mode); empty when absent.
  returned: always
  type: dict
  contains:
    id:
      description: Host ID.
      type: int
    name:
      description: Host name.
      type: str
    state:
      description: OpenNebula host state name (INIT, MONITORED, ERROR, DISABLED, OFFLINE).
      type: str
    im_mad:
      description: Information driver.
      type: str
    vm_mad:
      description: Virtualization driver.
      type: str
    cluster_id:
      description: ID of the host's cluster.
      type: int
    cluster:
      description: Name of the host's cluster.
      type: str
    template:
      description: The host template attributes.
      type: dict
  sample: {"id": 3, "name": "node01.example.org", "state": "MONITORED", "im_mad": "kvm", "vm_mad": "kvm",
           "cluster_id": 100, "cluster": "stratuslab", "template": {"LABELS": "kvm,rack1"}}
vms:
  description: With O(drain=live), the VMs moved (or to move, in check mode) off the host before its deletion.
  returned: always
  type: list
  elements: dict
  sample: [{"id": 7, "name": "web", "state": "RUNNING", "to": "node02.example.org", "to_id": 4, "live": true}]
actions:
  description: The writes done (or planned in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["allocate (im_mad=kvm, vmm_mad=kvm, cluster=100)"]
api_calls:
  description: Number of XML-RPC requests sent to oned.
  returned: always
  type: int
  sample: 3
one_error:
  description: OpenNebula's error (message, numeric code, code name, method, object id) when the module fails.
  returned: failure
  type: dict
  sample: {"msg": "[one.host.allocate] Error getting cluster [9999].", "code": 1024, "code_name": "NO_EXISTS",
           "method": "one.host.allocate", "resp_id": 9999}
"""

from ansible.module_utils.stratuslab_one.host import host_options, host_run
from ansible.module_utils.stratuslab_one.module import run_one_module


def main():
    run_one_module(host_run, dict(
        name=dict(type="str", required=True),
        **host_options(wait=False, wait_timeout=300),
    ))


if __name__ == "__main__":
    main()
