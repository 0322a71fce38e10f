#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: opennebula_hosts
short_description: Register OpenNebula hosts (hypervisor nodes) and manage their status
description:
  - Registers hosts in OpenNebula, sets their cluster, their status (enabled, disabled, offline) and merges
    attributes into their templates; or deletes them. One host or thousands, in one call.
  - Reads the host pool once (and the cluster pool once when a cluster is named), compares every listed host
    with it, and sends only the writes needed (allocate missing hosts, move cluster, change status, merge
    template attributes, delete). A site that is already registered costs two XML-RPC calls whatever its size.
  - Then waits for all the new (or re-enabled) hosts together, reading the host pool once per poll.
  - OpenNebula cannot change the drivers of a registered host; a different im_mad or vmm_mad for a registered
    host gives a warning, not a change.
  - A failing host does not stop the others; the module fails at the end and RV(errors) tells which hosts
    failed and OpenNebula's message for each.
version_added: "1.0.0"
author: StratusLab site deployer team
options:
  hosts:
    description:
      - The hosts. Each entry is a host name, or a dict with C(name) (required) and optionally C(state),
        C(im_mad), C(vmm_mad), C(cluster) and C(template), which override the module-level defaults below
        for that host.
    type: list
    elements: raw
    required: true
  state:
    description:
      - Default state of the listed hosts.
      - V(present) registers the host if needed and leaves its status alone.
      - V(enabled), V(disabled) and V(offline) also set the status (a new host starts enabled).
      - V(absent) deletes the host. A host that has VMs is emptied first with O(drain=live), and refused otherwise.
    type: str
    choices: [present, absent, enabled, disabled, offline]
    default: present
  im_mad:
    description: Default information (monitoring) driver, used when a host is created.
    type: str
    default: kvm
  vmm_mad:
    description: Default virtualization driver, used when a host is created.
    type: str
    default: kvm
    aliases: [vm_mad]
  cluster:
    description:
      - Default cluster (name or ID; V(0) is the C(default) cluster) the hosts must be in.
      - Omit to leave the cluster alone (a new host goes to the C(default) cluster).
    type: str
  template:
    description:
      - Default attributes merged into each host template (other attributes are kept).
        Only attributes whose value differs are sent.
    type: dict
  wait:
    description:
      - Wait until every new or re-enabled host is MONITORED. Hosts going to ERROR fail the module with
        OpenNebula's error message for each of them.
      - All the hosts are waited for together, with one host pool read per poll, so waiting is cheap even for
        thousands of hosts, and registering a site is only complete once its nodes are monitored;
        hence the default V(true). Set V(false) to return as soon as the writes are sent.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for all hosts together, and for each drained host's VMs to arrive on their new hosts.
    type: int
    default: 600
extends_documentation_fragment:
  - stratuslab_one
  - stratuslab_one.host
"""

EXAMPLES = r"""
- name: Register every node of the inventory in the site cluster
  opennebula_hosts:
    hosts: "{{ groups['nodes'] }}"
    cluster: stratuslab
    api_url: "http://{{ frontend }}:2633/RPC2"
    api_password: "{{ oneadmin_password }}"
  run_once: true

- name: Per-host settings
  opennebula_hosts:
    hosts:
      - node01.example.org
      - name: node02.example.org
        state: disabled
      - name: gpu01.example.org
        cluster: gpu
        template:
          LABELS: gpu
    cluster: stratuslab

- name: Take a node out of scheduling for maintenance
  opennebula_hosts:
    hosts: [node01.example.org]
    state: disabled

- name: Retire node03, live-migrating its VMs to the enabled nodes first; list the hosts left out
  opennebula_hosts:
    hosts:
      - name: node03.example.org
        state: absent
      - node01.example.org
      - node02.example.org
    cluster: stratuslab
    drain: live
  register: registration

- name: Name the hosts registered in the cluster that the inventory does not list
  ansible.builtin.debug:
    msg: "{{ registration.unlisted | map(attribute='name') | list }}"
"""

RETURN = r"""
hosts:
  description:
    - What changed, per host name; hosts that needed no change are not listed (see RV(summary)).
    - C(id) is the host ID (null in check mode for a new host), C(actions) the writes done or planned,
      C(state) the final state, an OpenNebula host state name (INIT, MONITORED, ERROR, DISABLED, OFFLINE;
      after waiting, or as predicted in check mode or with O(wait=false)), the
      same as in C(diff.after), V(gone) for a host deleted while the module waited for it; C(error)
      OpenNebula's message when a write failed or the host did not become MONITORED; C(vms), for a host drained
      (O(drain=live)), each VM moved (or to move) with C(id), C(name), C(state), C(to), C(to_id) and C(live).
  returned: always
  type: dict
  sample: {"node01.example.org": {"id": 12, "actions": ["allocate (im_mad=kvm, vmm_mad=kvm, cluster=100)"],
           "state": "MONITORED"}}
summary:
  description: Counts of hosts allocated, deleted, moved to another cluster, with a status change, with a template
    update, unchanged and failed, and of VMs migrated off drained hosts.
  returned: always
  type: dict
  sample: {"allocated": 10, "deleted": 0, "moved": 0, "status": 0, "updated": 0, "migrated": 0, "unchanged": 1990,
           "failed": 0}
unlisted:
  description:
    - The hosts registered in OpenNebula (in O(cluster) when it is given, else in any cluster) that O(hosts) does
      not name, each with its C(name), C(id), C(cluster) and C(vms) (ids). The module never changes them; a
      playbook that takes its inventory for the site's truth reports them.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "node09.example.org", "id": 9, "cluster": "stratuslab", "vms": [12, 15]}]
diff:
  description:
    - Per changed host name, C(before) and C(after) (name, cluster_id, state, im_mad, vm_mad and the managed
      template keys). C(after) holds the final state, as in RV(hosts).
    - A host whose cluster does not list it (oned stopped between the two writes of an allocate or a move)
      has C(listed_by_cluster) false before and true after; its C(cluster_id) is the same in both.
    - Only in diff mode (C(--diff)), since for thousands of hosts it is a large result.
  returned: in diff mode
  type: dict
  sample: {"before": {"node01.example.org": {}}, "after": {"node01.example.org": {"name": "node01.example.org",
           "cluster_id": 100, "state": "MONITORED", "im_mad": "kvm", "vm_mad": "kvm"}}}
errors:
  description: OpenNebula's message per failed host name, once per host, the same as C(error) in RV(hosts).
  returned: when some host failed
  type: dict
  sample: {"node07.example.org": "Error monitoring Host node07.example.org (7): ssh: connection refused"}
api_calls:
  description: Number of XML-RPC requests sent to oned.
  returned: always
  type: int
  sample: 2
one_error:
  description: OpenNebula's error when the module fails before any per-host work (unreachable oned, bad credentials).
  returned: failure
  type: dict
  sample: {"msg": "[one.hostpool.info] User couldn't be authenticated, aborting call.", "code": 256,
           "code_name": "AUTHENTICATION", "method": "one.hostpool.info", "resp_id": -1}
"""

from ansible.module_utils.stratuslab_one.host import host_options, hosts_run
from ansible.module_utils.stratuslab_one.module import run_one_module


def main():
    run_one_module(hosts_run, dict(
        hosts=dict(type="list", elements="raw", required=True),
        **host_options(wait=True, wait_timeout=600),
    ), pass_diff_mode=True)


if __name__ == "__main__":
    main()
