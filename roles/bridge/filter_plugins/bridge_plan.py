"""The bridge role's plan: what each site network's bridge looks like on one node.

A pure function behind a thin FilterModule, so the role's templates carry no
logic. It reads the node's live state (``ip -j address show`` and
``ip -j -4 route show``, probed by tasks/set_vars.yml) and the site file, and
says, per site network, which bridge enslaves which interface with which MAC,
which addresses the bridge carries (or DHCP), and which gateway routes move
from the interface onto the bridge.

Moving an address onto a bridge must not lose the node (one-deploy issue
134): the bridge takes the interface's MAC (a DHCP server then sees the same
client), DHCP stays DHCP, and every route through the interface is kept.
"""

import ipaddress

from ansible.errors import AnsibleFilterError

# Routes the kernel or a DHCP/RA client installs by itself: never copied.
_AUTOMATIC_PROTOCOLS = ("kernel", "dhcp", "ra", "redirect")


def _network(cidr, label):
    try:
        return ipaddress.IPv4Network(str(cidr), strict=True)
    except ValueError as exc:
        raise AnsibleFilterError("bridge_plan: %s %r is not an IPv4 network: %s" % (label, cidr, exc))


def _link(links, name):
    for link in links:
        if link.get("ifname") == name:
            return link
    return None


def _ipv4(link):
    if not link:
        return []
    return [a for a in link.get("addr_info", []) if a.get("family") == "inet"]


def _in(address, network):
    try:
        return ipaddress.IPv4Address(str(address)) in network
    except ValueError:
        return False


def _routes(routes, devices):
    kept = []
    for route in routes:
        if route.get("dev") not in devices or not route.get("gateway"):
            continue
        if route.get("protocol") in _AUTOMATIC_PROTOCOLS:
            continue
        dst = route.get("dst", "default")
        kept.append({
            "destination": "0.0.0.0/0" if dst == "default" else dst,
            "gateway": route["gateway"],
            "metric": int(route.get("metric", 0)),
        })
    unique = {(r["destination"], r["gateway"], r["metric"]): r for r in kept}
    return [unique[k] for k in sorted(unique)]


def bridge_plan(networks, links, routes, addresses=None, site_address=None):
    """One entry per site network, in site-file order.

    Each entry: ``name``, ``bridge``, ``interface``, ``mac`` (the interface's,
    '' when it does not exist), ``method`` (``static``, ``dhcp`` or ``none``),
    ``addresses`` (``ip/prefix`` strings, static only), ``routes``
    (``destination``, ``gateway``, ``metric``), ``source`` (where the address
    came from, for messages) and ``exists`` (the interface is present).

    The address of the node on a network is, in order: its
    ``site_network_addresses.<name>`` (``dhcp`` keeps DHCP); else, for the
    network that holds ``site_address``, what the interface (or the bridge,
    once converged) carries now, DHCP when the kernel marks it dynamic; else
    none (a bridge for virtual machines only).
    """
    if not isinstance(networks, list):
        raise AnsibleFilterError("bridge_plan: site_networks must be a list, got %r" % (networks,))
    addresses = addresses or {}
    if not isinstance(addresses, dict):
        raise AnsibleFilterError(
            "bridge_plan: site_network_addresses must be a mapping of network name to address, got %r"
            % (addresses,))
    links = links or []
    routes = routes or []
    plan = []
    for net in networks:
        for key in ("name", "bridge", "interface", "cidr"):
            if not net.get(key):
                raise AnsibleFilterError("bridge_plan: a site_networks entry has no %s: %r" % (key, net))
        name, bridge, interface = net["name"], net["bridge"], net["interface"]
        network = _network(net["cidr"], "site_networks[%s].cidr" % name)
        nic = _link(links, interface)
        # Once converged the bridge holds the address; before, the interface.
        current = _ipv4(_link(links, bridge)) or _ipv4(nic)
        entry = {
            "name": name,
            "bridge": bridge,
            "interface": interface,
            "exists": nic is not None,
            "mac": (nic or {}).get("address", ""),
            "method": "none",
            "addresses": [],
            "routes": [],
            "source": "",
        }
        explicit = addresses.get(name)
        if explicit is not None and str(explicit).lower() == "dhcp":
            entry.update(method="dhcp", source="site_network_addresses.%s" % name)
        elif explicit is not None:
            entry.update(method="static", addresses=["%s/%d" % (explicit, network.prefixlen)],
                         source="site_network_addresses.%s" % name)
        elif site_address and _in(site_address, network):
            if any(a.get("dynamic") for a in current):
                entry.update(method="dhcp", source="the DHCP lease it holds")
            elif current:
                entry.update(method="static",
                             addresses=sorted("%s/%d" % (a["local"], a["prefixlen"]) for a in current),
                             source="its current address")
            else:
                entry.update(method="static", addresses=["%s/%d" % (site_address, network.prefixlen)],
                             source="site_address")
        if entry["method"] == "static":
            entry["routes"] = _routes(routes, (interface, bridge))
        plan.append(entry)
    return plan


class FilterModule(object):
    """Filters of the bridge role."""

    def filters(self):
        return {"bridge_plan": bridge_plan}
