#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: opennebula_vnets
short_description: Manage bridge-based OpenNebula virtual networks and their address ranges
description:
  - Creates, updates or deletes OpenNebula virtual networks using the C(bridge) driver (plain Linux bridge)
    or the C(802.1Q) driver (VLAN on a physical device), and manages their address ranges and clusters.
    One network or many, in one call.
  - A StratusLab "ranged" network is an address range with a start address and a size; a "fixed" network is a
    list of single addresses, given with O(vnets[].fixed_leases).
  - Address ranges are matched to the existing ones by a key kept in the range as the C(SL_AR_KEY) attribute
    (the O(vnets[].address_ranges[].key) option, by default C(TYPE:start address)); ranges created by other tools
    are adopted when type and start address match. Size and custom attributes are changed in place.
    OpenNebula ignores IP, MAC and TYPE changes of an existing range, so a new start address means adding the
    range at the new start and then removing the old one, which is refused while the range has leases in use
    unless O(vnets[].force=true). New ranges are added before any range is removed (OpenNebula accepts
    overlapping ranges), so a range OpenNebula refuses leaves the network with its ranges as they were.
  - When O(vnets[].address_ranges) or O(vnets[].fixed_leases) is given, the listed ranges are the complete set,
    and ranges not listed are removed (with the same lease protection).
  - The template is updated (merged) only when an attribute really differs.
  - Reads the virtual network pool once (and the cluster pool once when a network names clusters), compares
    every listed network with it, and sends only the writes needed. Networks already as wanted cost one
    XML-RPC call in total, whatever their number.
  - A network OpenNebula left in state ERROR (its creation failed, for example on an address range it refused)
    cannot be changed; it is deleted first (all such networks are waited for together) and created again from
    the options, unless it has leases in use. New networks are allocated, then waited for together until READY
    (leaving LOCK_CREATE), reading the virtual network pool once per poll; then they get their remaining writes
    (the other clusters). Deletion is asynchronous in OpenNebula, see O(wait).
  - A failing network does not stop the others; the module fails at the end and RV(errors) tells which networks
    failed and OpenNebula's message for each. A failure after some writes succeeded reports C(changed=true).
version_added: "1.0.0"
author: StratusLab site deployer team
options:
  vnets:
    description:
      - The virtual networks, each a dict describing one network (by name) with the options below.
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
          - Network driver. V(bridge) for a Linux bridge, V(802.1Q) for a VLAN on O(vnets[].phydev).
          - Defaults to V(bridge) when the network is created; omit to leave an existing network's driver alone.
        type: str
        choices: [bridge, 802.1Q]
      bridge:
        description: Name of the Linux bridge on the nodes. OpenNebula picks C(onebr<ID>) when not set.
        type: str
      phydev:
        description: Physical device the 802.1Q VLAN interfaces are created on. Required with O(vnets[].vn_mad=802.1Q).
        type: str
      vlan_id:
        description: VLAN ID for O(vnets[].vn_mad=802.1Q). OpenNebula picks one when not set.
        type: str
      template:
        description:
          - Other template attributes, merged into the network template (for example C(NETWORK_ADDRESS),
            C(NETWORK_MASK), C(GATEWAY), C(DNS), C(DESCRIPTION)). Keys are upper-cased.
          - Address ranges go in O(vnets[].address_ranges), not here.
        type: dict
      address_ranges:
        description: The address ranges of the network, the complete set (see the description).
        type: list
        elements: dict
        suboptions:
          key:
            description:
              - Stable identifier of the range, stored in the range as C(SL_AR_KEY). Defaults to C(TYPE:IP) or
                C(TYPE:MAC). Give one to be able to move a range to a new start address, and for ETHER ranges
                without a MAC.
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
            description: First MAC address. OpenNebula derives it from the IP (prefix 02:00) when not set.
            type: str
          size:
            description: Number of addresses.
            type: int
            required: true
          attributes:
            description: Custom attributes of the range (for example C(GATEWAY), C(GLOBAL_PREFIX)).
            type: dict
      fixed_leases:
        description:
          - IPv4 addresses of a fixed network; each becomes an IP4 range of size 1 keyed C(IP4:<address>).
            Can be combined with O(vnets[].address_ranges).
        type: list
        elements: str
      clusters:
        description:
          - Clusters (names or IDs, V(0) is valid) the network must be in, exactly. The first one is used at
            creation. Defaults to the module's O(clusters); when both are omitted, membership is left alone
            (a new network goes to the C(default) cluster).
        type: list
        elements: str
      force:
        description: Remove or move address ranges even when they have leases in use. Defaults to the module's O(force).
        type: bool
  state:
    description: Default state of the listed networks. V(present) creates or updates a network, V(absent) deletes it.
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
      - With V(state=absent) networks, wait until OpenNebula has really deleted them (one pool read per poll);
        deletion is asynchronous in OpenNebula.
      - New networks are always waited for until READY, since OpenNebula refuses address range and cluster
        changes before.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for all the networks together (READY after creation, or their deletion).
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

- name: Delete a network
  opennebula_vnets:
    vnets:
      - name: old-net
    state: absent

- name: Networks from a list of dicts
  opennebula_vnets:
    vnets: "{{ site_networks | map('combine', {'vn_mad': 'bridge'}) | list }}"
"""

RETURN = r"""
vnets:
  description:
    - What changed, per network name; networks that needed no change are not listed (see RV(summary)).
    - C(id) is the network ID (null in check mode for a new network), C(actions) the writes done or planned,
      C(state) the OpenNebula network state name (READY once a new network was waited for, ERROR, LOCK_CREATE,
      V(gone) for a network deleted while the module waited for it), C(error) OpenNebula's message when a write
      failed.
  returned: always
  type: dict
  sample: {"public": {"id": 0, "actions": ["allocate vnet public", "add vnet to cluster 100"], "state": "READY"}}
networks:
  description:
    - Every listed network wanted V(present) that is READY, as this run last read it, per name (id, name, clusters,
      template, address ranges by key with the MAC OpenNebula gave their first address). No read is added
      for it - an existing network is shown as the first pool read found it, a new one as the wait found it
      READY - so a range added to an existing network shows from the next run on.
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
      C(after) is predicted from the plan, as in check mode. Only in diff mode (C(--diff)).
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
