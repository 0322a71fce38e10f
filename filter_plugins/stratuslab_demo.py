# -*- coding: utf-8 -*-
"""Jinja filter of the demo site (tools/demo/up.yml): a container's networks.

The demo inventory (inventories/demo/hosts.yml) lists ``demo_networks``, the
podman network behind each site network, in interface order. Every container
is on the first one (eth0) at its ``site_address``; it is on each of the
others when its ``site_network_addresses`` gives it an address there, and
these get eth1, eth2... in the order of ``demo_networks`` (a host that skips a
network does not leave a gap in the numbering). Addresses on site networks
that have no podman network in the demo are not attached.

``sl_demo_attach`` turns that into the ``network`` list of
containers.podman.podman_container: ``<podman network>:ip=<address>,interface_name=eth<N>``.
The interface names are pinned because podman 4.3 otherwise names a
container's interfaces in no fixed order.

Bad input raises ``AnsibleFilterError`` whose message starts with the filter
name, then names the field and the value that is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

_NAME = "sl_demo_attach"


def _fail(problem):
    raise AnsibleFilterError(f"{_NAME}: {problem}")


def _network(net, index):
    if not isinstance(net, Mapping):
        _fail(f"demo_networks[{index}] {net!r} is not a dict with podman_network and site_network")
    for key in ("podman_network", "site_network"):
        if not isinstance(net.get(key), str) or not net.get(key):
            _fail(f"demo_networks[{index}].{key} is missing or not a string (got {net.get(key)!r})")
    return net["podman_network"], net["site_network"]


def _attach(podman_network, address, eth):
    return f"{podman_network}:ip={address},interface_name=eth{eth}"


def sl_demo_attach(demo_networks, site_address, site_network_addresses=None):
    """The podman ``network`` list of one demo container.

    ``demo_networks``: list of dicts with ``podman_network`` and ``site_network``,
    the first being the network of ``site_address``; ``site_network_addresses``:
    the host's address per site network name (may be omitted or empty).

    >>> nets = [{'podman_network': 'pub', 'site_network': 'public'},
    ...         {'podman_network': 'priv', 'site_network': 'private'}]
    >>> sl_demo_attach(nets, '10.89.7.21', {'private': '10.89.8.21'})
    ['pub:ip=10.89.7.21,interface_name=eth0', 'priv:ip=10.89.8.21,interface_name=eth1']
    >>> sl_demo_attach(nets, '10.89.7.10')
    ['pub:ip=10.89.7.10,interface_name=eth0']
    """
    if isinstance(demo_networks, (str, bytes)) or not isinstance(demo_networks, Sequence) or not demo_networks:
        _fail(f"demo_networks {demo_networks!r} is not a non-empty list")
    if not isinstance(site_address, str) or not site_address:
        _fail(f"site_address {site_address!r} is not an address")
    addresses = site_network_addresses or {}
    if not isinstance(addresses, Mapping):
        _fail(f"site_network_addresses {addresses!r} is not a dict of site network name to address")
    networks = [_network(net, index) for index, net in enumerate(demo_networks)]
    attach = [_attach(networks[0][0], site_address, 0)]
    for podman_network, site_network in networks[1:]:
        if site_network in addresses:
            attach.append(_attach(podman_network, addresses[site_network], len(attach)))
    return attach


class FilterModule:
    """StratusLab demo filters."""

    def filters(self):
        return {
            _NAME: sl_demo_attach,
        }
