#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: opennebula_vnet
short_description: Manage bridge-based OpenNebula virtual networks and their address ranges
description:
  - Creates, updates or deletes an OpenNebula virtual network using the C(bridge) driver (plain Linux bridge)
    or the C(802.1Q) driver (VLAN on a physical device), and manages its address ranges and clusters.
  - A StratusLab "ranged" network is an address range with a start address and a size; a "fixed" network is a
    list of single addresses, given with O(fixed_leases).
  - Address ranges are matched to the existing ones by a key kept in the range as the C(SL_AR_KEY) attribute
    (the O(address_ranges[].key) option, by default C(TYPE:start address)); ranges created by other tools are
    adopted when type and start address match. Size and custom attributes are changed in place.
    OpenNebula ignores IP, MAC and TYPE changes of an existing range, so a new start address means adding the
    range at the new start and then removing the old one, which is refused while the range has leases in use
    unless O(force=true). New ranges are added before any range is removed (OpenNebula accepts overlapping
    ranges), so a range OpenNebula refuses leaves the network with its ranges as they were.
  - A network OpenNebula left in state ERROR (its creation failed, for example on an address range it refused)
    cannot be changed; it is deleted and created again from the options, unless it has leases in use.
  - A failure after some writes succeeded reports C(changed=true).
  - When O(address_ranges) or O(fixed_leases) is given, the listed ranges are the complete set, and ranges not listed
    are removed (with the same lease protection).
  - The template is updated (merged) only when an attribute really differs.
  - After creation the module waits until the network leaves LOCK_CREATE and is READY. Deletion is asynchronous
    in OpenNebula, see O(wait).
version_added: "1.0.0"
author: StratusLab site deployer team
options:
  vn_mad:
    description:
      - Network driver. V(bridge) for a Linux bridge, V(802.1Q) for a VLAN on O(phydev).
      - Defaults to V(bridge) when the network is created; omit to leave an existing network's driver alone.
    type: str
    choices: [bridge, 802.1Q]
  bridge:
    description: Name of the Linux bridge on the nodes. OpenNebula picks C(onebr<ID>) when not set.
    type: str
  phydev:
    description: Physical device the 802.1Q VLAN interfaces are created on. Required with O(vn_mad=802.1Q).
    type: str
  vlan_id:
    description: VLAN ID for O(vn_mad=802.1Q). OpenNebula picks one when not set.
    type: str
  template:
    description:
      - Other template attributes, merged into the network template (for example C(NETWORK_ADDRESS),
        C(NETWORK_MASK), C(GATEWAY), C(DNS), C(DESCRIPTION)). Keys are upper-cased.
      - Address ranges go in O(address_ranges), not here.
    type: dict
  address_ranges:
    description: The address ranges of the network (the complete set, see the description).
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
        Can be combined with O(address_ranges).
    type: list
    elements: str
  clusters:
    description:
      - Clusters (names or IDs) the network must be in, exactly. The first one is used at creation.
        Omit to leave membership alone (a new network goes to the C(default) cluster).
    type: list
    elements: str
  force:
    description: Remove or move address ranges even when they have leases in use.
    type: bool
    default: false
  wait:
    description: With O(state=absent), wait until OpenNebula has really deleted the network.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for READY after creation, or for the deletion.
    type: int
    default: 120
extends_documentation_fragment:
  - stratuslab_one
  - stratuslab_one.by_name_or_id
"""

EXAMPLES = r"""
- name: Ranged public network on bridge br0
  opennebula_vnet:
    name: public
    vn_mad: bridge
    bridge: br0
    template:
      NETWORK_ADDRESS: 192.0.2.0
      NETWORK_MASK: 255.255.255.0
      GATEWAY: 192.0.2.1
      DNS: 192.0.2.53
    address_ranges:
      - key: public-pool
        ip: 192.0.2.100
        size: 100
    clusters: [stratuslab]

- name: Fixed private network on VLAN 42 of eth1
  opennebula_vnet:
    name: private
    vn_mad: 802.1Q
    phydev: eth1
    vlan_id: "42"
    bridge: br42
    fixed_leases: [10.1.0.10, 10.1.0.11, 10.1.0.12]

- name: Delete a network
  opennebula_vnet:
    name: old-net
    state: absent
"""

RETURN = r"""
vnet:
  description:
    - The virtual network after the change; empty when absent.
    - In check mode, the predicted network in the same form as C(diff.after) (address ranges by key).
  returned: always
  type: dict
  contains:
    id:
      description: Network ID.
      type: int
    name:
      description: Network name.
      type: str
    state:
      description: OpenNebula network state name (READY, LOCK_CREATE, ...).
      type: str
    clusters:
      description: IDs of the clusters holding the network.
      type: list
      elements: int
    bridge:
      description: Bridge name.
      type: str
    vn_mad:
      description: Network driver.
      type: str
    phydev:
      description: Physical device.
      type: str
    vlan_id:
      description: VLAN ID.
      type: str
    address_ranges:
      description: Address ranges (ar_id, type, size, ip, mac, ip_end, mac_end, used_leases, attributes).
      type: list
      elements: dict
  sample: {"id": 0, "name": "public", "state": "READY", "clusters": [100], "bridge": "br0", "vn_mad": "bridge",
           "phydev": "", "vlan_id": "", "address_ranges": [{"ar_id": 0, "type": "IP4", "ip": "192.0.2.100",
           "size": 100, "used_leases": 0, "attributes": {"SL_AR_KEY": "public-pool"}}]}
actions:
  description: The writes done (or planned in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["update template DNS", "update address range 0 (public-pool)"]
api_calls:
  description: Number of XML-RPC requests sent to oned.
  returned: always
  type: int
  sample: 2
one_error:
  description: OpenNebula's error (message, numeric code, code name, method, object id) when the module fails.
  returned: failure
  type: dict
  sample: {"msg": "[one.vn.allocate] VN_MAD named \"nosuch\" is not defined in oned.conf", "code": 8192,
           "code_name": "INTERNAL", "method": "one.vn.allocate", "resp_id": -1}
"""

from ansible.module_utils.stratuslab_one.module import run_one_module
from ansible.module_utils.stratuslab_one.vnet import vnet_options, vnet_run


def main():
    run_one_module(vnet_run, dict(
        vnet_options(),
        force=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=120),
    ), by_name_or_id=True, required_if=[("vn_mad", "802.1Q", ("phydev",))])


if __name__ == "__main__":
    main()
