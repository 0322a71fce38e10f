#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: opennebula_vnets
short_description: Manage many OpenNebula virtual networks and their address ranges in one call
description:
  - Batch form of M(opennebula_vnet), with the same planning for each network (drivers, template merge, keyed
    address ranges, lease protection, clusters); see M(opennebula_vnet) for the details.
  - Reads the virtual network pool once (and the cluster pool once when a network names clusters), compares
    every listed network with it, and sends only the writes needed. Networks already as wanted cost one
    XML-RPC call in total, whatever their number.
  - Networks OpenNebula left in state ERROR are deleted first (and waited for together), to be created again,
    as M(opennebula_vnet) does. New networks are allocated, then waited for together until READY, reading the
    virtual network pool once per poll; then they get their remaining writes (the other clusters).
  - A failing network does not stop the others; the module fails at the end and RV(errors) tells which networks
    failed and OpenNebula's message for each.
version_added: "1.0.0"
author: StratusLab site deployer team
options:
  vnets:
    description:
      - The virtual networks, each a dict with the options of M(opennebula_vnet) for one network (by name).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the virtual network.
        type: str
        required: true
      state:
        description:
          - V(present) creates or updates the network, V(absent) deletes it. Defaults to the module's O(state).
        type: str
        choices: [present, absent]
      vn_mad:
        description:
          - Network driver, V(bridge) or V(802.1Q) (needs O(vnets[].phydev)).
          - Defaults to V(bridge) when the network is created; omit to leave an existing network's driver alone.
        type: str
        choices: [bridge, 802.1Q]
      bridge:
        description: Name of the Linux bridge on the nodes. OpenNebula picks C(onebr<ID>) when not set.
        type: str
      phydev:
        description: Physical device of the 802.1Q VLAN interfaces. Required with O(vnets[].vn_mad=802.1Q).
        type: str
      vlan_id:
        description: VLAN ID for 802.1Q. OpenNebula picks one when not set.
        type: str
      template:
        description: Other template attributes, merged into the network template. Keys are upper-cased.
        type: dict
      address_ranges:
        description: The address ranges of the network, the complete set (as in M(opennebula_vnet)).
        type: list
        elements: dict
        suboptions:
          key:
            description: Stable identifier of the range, stored as C(SL_AR_KEY). Defaults to C(TYPE:IP) or C(TYPE:MAC).
            type: str
          type:
            description: Address range type.
            type: str
            choices: [IP4, IP6, IP4_6, ETHER]
            default: IP4
          ip:
            description: First IPv4 address (IP4 and IP4_6).
            type: str
          mac:
            description: First MAC address.
            type: str
          size:
            description: Number of addresses.
            type: int
            required: true
          attributes:
            description: Custom attributes of the range.
            type: dict
      fixed_leases:
        description: IPv4 addresses of a fixed network; each becomes an IP4 range of size 1 keyed C(IP4:<address>).
        type: list
        elements: str
      clusters:
        description:
          - Clusters (names or IDs, V(0) is valid) the network must be in, exactly. The first one is used at
            creation. Defaults to the module's O(clusters).
        type: list
        elements: str
      force:
        description: Remove or move address ranges with leases in use. Defaults to the module's O(force).
        type: bool
  state:
    description: Default state of the listed networks.
    type: str
    choices: [present, absent]
    default: present
  clusters:
    description: Default clusters of the listed networks. Omit to leave membership alone.
    type: list
    elements: str
  force:
    description: Default of O(vnets[].force).
    type: bool
    default: false
  wait:
    description:
      - With V(state=absent) networks, wait until OpenNebula has really deleted them (one pool read per poll).
      - New networks are always waited for until READY, since OpenNebula refuses address range and cluster
        changes before.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for all the networks together.
    type: int
    default: 120
  poll_interval:
    description: Longest pause in seconds between two virtual network pool reads while waiting.
    type: float
    default: 1.0
extends_documentation_fragment:
  - stratuslab_one
"""

EXAMPLES = r"""
- name: The site's networks in one call
  opennebula_vnets:
    clusters: [stratuslab]
    vnets:
      - name: public
        vn_mad: bridge
        bridge: br0
        template:
          NETWORK_ADDRESS: 192.0.2.0
          NETWORK_MASK: 255.255.255.0
          GATEWAY: 192.0.2.1
        address_ranges:
          - key: public-pool
            ip: 192.0.2.100
            size: 100
      - name: private
        vn_mad: 802.1Q
        phydev: eth1
        vlan_id: "42"
        fixed_leases: [10.1.0.10, 10.1.0.11]
      - name: old-net
        state: absent
    api_url: "http://{{ frontend }}:2633/RPC2"
    api_password: "{{ oneadmin_password }}"
  run_once: true

- name: Networks from a list of dicts
  opennebula_vnets:
    vnets: "{{ site_networks | map('combine', {'vn_mad': 'bridge'}) | list }}"
"""

RETURN = r"""
vnets:
  description:
    - What changed, per network name; networks that needed no change are not listed (see RV(summary)).
    - C(id) is the network ID (null in check mode for a new network), C(actions) the writes done or planned,
      C(state) the network state (READY once a new network was waited for), C(error) OpenNebula's message when
      a write failed.
  returned: always
  type: dict
  sample: {"public": {"id": 0, "actions": ["allocate vnet public", "add vnet to cluster 100"], "state": "READY"}}
networks:
  description:
    - Every listed network wanted V(present) that is READY, as this run last read it, per name (id, name, clusters,
      template, address ranges by key with the MAC OpenNebula gave their first address), as M(opennebula_vnet)
      shows it. No read is added for it - an existing network is shown as the first pool read found it, a new one
      as the wait found it READY - so a range added to an existing network shows from the next run on.
    - In check mode, the networks that exist. Networks that failed are not listed.
  returned: always
  type: dict
  sample: {"public": {"id": 0, "name": "public", "clusters": [100], "template": {"VN_MAD": "bridge",
           "BRIDGE": "br0"}, "address_ranges": [{"key": "IP4:192.0.2.100", "type": "IP4", "ip": "192.0.2.100",
           "mac": "02:00:c0:00:02:64", "size": 100, "used_leases": 0}]}}
summary:
  description: Counts of networks created, updated, deleted, unchanged and failed.
  returned: always
  type: dict
  sample: {"created": 2, "updated": 0, "deleted": 0, "unchanged": 48, "failed": 0}
diff:
  description:
    - Per changed network name, C(before) and C(after) (id, name, clusters, template, address ranges by key),
      as M(opennebula_vnet) shows them. Only in diff mode (C(--diff)).
  returned: in diff mode
  type: dict
  sample: {"before": {"public": {}}, "after": {"public": {"id": 0, "name": "public", "clusters": [100],
           "template": {"VN_MAD": "bridge", "BRIDGE": "br0"}, "address_ranges": [{"key": "public-pool",
           "type": "IP4", "ip": "192.0.2.100", "mac": "", "size": 100, "used_leases": 0}]}}}
errors:
  description: OpenNebula's message per failed network name (key C(_wait) for a deletion wait that timed out).
  returned: when some network failed
  type: dict
  sample: {"public": "[one.vn.add_ar] Error adding address range. Wrong SIZE for address range"}
api_calls:
  description: Number of XML-RPC requests sent to oned.
  returned: always
  type: int
  sample: 1
one_error:
  description: OpenNebula's error when the module fails before any per-network work (unreachable oned, bad
    credentials, an unknown cluster).
  returned: failure
  type: dict
  sample: {"msg": "[one.vnpool.info] User couldn't be authenticated, aborting call.", "code": 256,
           "code_name": "AUTHENTICATION", "method": "one.vnpool.info", "resp_id": -1}
"""

from ansible.module_utils.stratuslab_one.module import run_one_module
from ansible.module_utils.stratuslab_one.vnet import vnet_options
from ansible.module_utils.stratuslab_one.vnets import vnets_run


def main():
    run_one_module(vnets_run, dict(
        vnets=dict(type="list", elements="dict", required=True, options=dict(
            vnet_options(),
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"]),
            force=dict(type="bool"),
        )),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        clusters=dict(type="list", elements="str"),
        force=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=120),
        poll_interval=dict(type="float", default=1.0),
    ), pass_diff_mode=True)


if __name__ == "__main__":
    main()
