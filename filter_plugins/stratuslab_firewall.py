# -*- coding: utf-8 -*-
"""Filters that turn the ports each role declares into one host's firewall.

Each role's preflight declares, as data, the ports its service needs on the
host and who may reach them (a rule); the base role's entry point
``firewall`` renders every rule of the host into one nftables table. These
filters are the only place where a rule's sources become addresses:

* ``sl_firewall_errors`` returns every mistake of a host's rules, one
  message each naming the site file's variable to fix (``[]`` when there is
  none), for one preflight assert; it also refuses a rule set under which
  the control machine could no longer reach the host over SSH;
* ``sl_firewall_rules`` returns the rules as the nftables template renders
  them (addresses collapsed, ports merged, sorted: the same input always
  gives the same file), and raises ``AnsibleFilterError`` on a mistake.

Both read one mapping, ``firewall``:

``rules``
    the rules the roles declared, in order: ``{name, role, proto, ports,
    sources, label}``. ``name`` says what the rule is for; ``proto`` is
    ``tcp``, ``udp`` or a list of both (default ``tcp``); ``ports`` a list of
    port numbers and ``"first-last"`` ranges; ``sources`` a list of

    - ``admin``, ``clients``: the site's networks of that name (``networks``);
    - ``site``: every host of the inventory;
    - ``group:NAME``: the hosts of an inventory group (none when the group
      does not exist: a role may name a group a site does not have);
    - ``host:NAME``: one inventory host;
    - an IPv4 or IPv6 address, or a network in CIDR form without host bits.

    A host's addresses are its ``site_address`` and every
    ``site_network_addresses`` item (``dhcp`` aside), else the address of
    its default route from gathered facts, else ``ansible_host`` when that
    is an IP. ``label`` names, for messages, the site file variables the
    rule's ports and address sources come from.
``extra``
    the site's own rules (``site_firewall_extra_rules``), of the same form
    without ``role`` and ``label``; a group they name must exist.
``networks``
    ``{admin: [...], clients: [...]}``: addresses and CIDRs.
``labels``
    ``{admin: ..., clients: ..., extra: ...}``: how messages name those
    site file variables.

Pure functions behind a thin FilterModule; the standard library's
``ipaddress`` only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from ansible.errors import AnsibleError, AnsibleFilterError

try:  # Jinja's errors while a host variable is templated (an undefined variable, mostly).
    from jinja2.exceptions import TemplateError
except ImportError:  # pragma: no cover - Ansible always has Jinja2
    TemplateError = AnsibleError

PROTOCOLS = ("tcp", "udp")
NETWORK_KEYWORDS = ("admin", "clients")
_RANGE = re.compile(r"\s*([0-9]+)\s*-\s*([0-9]+)\s*")
_DIGITS = re.compile(r"\s*[0-9]+\s*")
# nftables keeps a rule's comment to 128 bytes.
_COMMENT_MAX = 120
_SOURCE_FORMS = ("admin, clients, site, group:NAME, host:NAME, an IP address, or a network in CIDR form "
                 "such as 192.0.2.0/24")


def _shown(value):
    if isinstance(value, str):
        return repr(str(value))
    return repr(value)


def _is_list(value):
    return isinstance(value, (list, tuple))


# --------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------


def _network(value):
    """An ip_network for an address or a CIDR, or a reason (str) why it is neither."""
    if not isinstance(value, str) or not value.strip():
        return "is not text"
    text = value.strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return "is neither an IP address nor a network in CIDR form"
    return "has host bits set: the network is %s" % loose


def _host_variable(hvars, name):
    try:
        return hvars.get(name)
    except (TemplateError, AnsibleError):
        return None


def _host_addresses(host, hostvars):
    """Every address a host states, as ip_networks; [] when none is known."""
    if host not in hostvars:
        return []
    hvars = hostvars[host]
    found = []
    stated = [_host_variable(hvars, "site_address")]
    per_network = _host_variable(hvars, "site_network_addresses")
    if isinstance(per_network, Mapping):
        stated += [per_network[key] for key in sorted(per_network)]
    for value in stated:
        if isinstance(value, str) and value != "dhcp":
            try:
                found.append(ipaddress.ip_network(value.strip()))
            except ValueError:
                continue  # the inventory preflight reports it
    if found:
        return found
    facts = _host_variable(hvars, "ansible_facts") or {}
    for key in ("default_ipv4", "default_ipv6"):
        address = (facts.get(key) or {}).get("address") if isinstance(facts, Mapping) else None
        if address:
            found.append(ipaddress.ip_network(address))
    if found:
        return found
    ansible_host = _host_variable(hvars, "ansible_host")
    try:
        return [ipaddress.ip_network(str(ansible_host).strip())] if ansible_host else []
    except ValueError:
        return []


# --------------------------------------------------------------------------
# One rule
# --------------------------------------------------------------------------


def _ports(value, where, errors):
    """[(first, last)] merged and sorted; appends a message per bad item."""
    if not _is_list(value) or not value:
        errors.append("%s.ports is %s; expected a list of port numbers (1 to 65535) and 'first-last' ranges"
                      % (where, _shown(value)))
        return []
    spans = []
    for index, item in enumerate(value):
        first = last = None
        if isinstance(item, int) and not isinstance(item, bool):
            first = last = item
        elif isinstance(item, str) and _DIGITS.fullmatch(item):
            first = last = int(item)
        elif isinstance(item, str) and _RANGE.fullmatch(item):
            first, last = (int(part) for part in _RANGE.fullmatch(item).groups())
        if first is None or not (1 <= first <= last <= 65535):
            errors.append("%s.ports[%d] is %s; expected a port number from 1 to 65535, or a range "
                          "'first-last' of them (first not above last)" % (where, index, _shown(item)))
            continue
        spans.append((first, last))
    merged = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _protocols(value, where, errors):
    protocols = [value] if isinstance(value, str) else value
    if not _is_list(protocols) or not protocols or any(item not in PROTOCOLS for item in protocols):
        errors.append("%s.proto is %s; expected tcp, udp or [tcp, udp]" % (where, _shown(value)))
        return []
    return [name for name in PROTOCOLS if name in protocols]


class _Resolver:
    """Sources to addresses, for one host's rules; every mistake appended to ``errors``."""

    def __init__(self, firewall, hostvars, groups, errors):
        self.hostvars = hostvars
        self.groups = groups
        self.errors = errors
        self.networks = {}
        labels = firewall.get("labels") or {}
        for keyword in NETWORK_KEYWORDS:
            label = labels.get(keyword) or keyword
            items = (firewall.get("networks") or {}).get(keyword) or []
            self.networks[keyword] = (label, self._named_networks(items, label))

    def _named_networks(self, items, label):
        if not _is_list(items):
            self.errors.append("%s is %s; expected a list of IP addresses and networks in CIDR form"
                               % (label, _shown(items)))
            return []
        found = []
        for index, item in enumerate(items):
            network = _network(item)
            if isinstance(network, str):
                self.errors.append("%s[%d] %s %s; expected an IP address or a network in CIDR form such as "
                                   "192.0.2.0/24" % (label, index, _shown(item), network))
            else:
                found.append(network)
        return found

    def hosts(self, hosts, why):
        """Addresses of inventory hosts, and a description of where they come from."""
        found = []
        for host in hosts:
            addresses = _host_addresses(host, self.hostvars)
            if not addresses:
                self.errors.append("host %s (%s) has no address the firewall can accept: give it a site_address "
                                   "in hosts.yml" % (host, why))
            found += addresses
        return found

    def source(self, item, where, strict):
        """(addresses, description) of one source; appends a message when it is no source."""
        if not isinstance(item, str):
            self.errors.append("%s source %s is not text; expected %s" % (where, _shown(item), _SOURCE_FORMS))
            return [], None
        text = item.strip()
        if text in self.networks:
            label, networks = self.networks[text]
            return networks, "%s (%s)" % (text, label)
        if text == "site":
            hosts = list(self.groups.get("all") or [])
            return self.hosts(hosts, "a site host"), "every site host"
        kind, _, name = text.partition(":")
        if kind == "group" and name:
            if name not in self.groups:
                if strict:
                    known = sorted(group for group in self.groups if group not in ("all", "ungrouped"))
                    self.errors.append("%s source %s names no group of hosts.yml; its groups are %s"
                                       % (where, _shown(item), ", ".join(known) or "none"))
                return [], None
            hosts = list(self.groups.get(name) or [])
            return self.hosts(hosts, "group %s" % name), "group %s (%s)" % (name, ", ".join(hosts) or "no host")
        if kind == "host" and name:
            if name not in (self.groups.get("all") or []):
                self.errors.append("%s source %s names no host of hosts.yml" % (where, _shown(item)))
                return [], None
            return self.hosts([name], "named by %s" % where), "host %s" % name
        network = _network(text)
        if isinstance(network, str):
            self.errors.append("%s source %s %s; expected %s" % (where, _shown(item), network, _SOURCE_FORMS))
            return [], None
        return [network], str(network)


def _match(protocols, ports):
    """The nftables match of a rule's protocols and ports: 'tcp dport { 22 }'."""
    listed = ", ".join(str(first) if first == last else "%d-%d" % (first, last) for first, last in ports)
    if len(protocols) == 1:
        return "%s dport { %s }" % (protocols[0], listed)
    return "meta l4proto { %s } th dport { %s }" % (", ".join(protocols), listed)


def _minimal(networks):
    """The networks without duplicates and without those another one holds, sorted."""
    kept = []
    for network in sorted(set(networks), key=lambda net: (net.prefixlen, net.network_address)):
        if not any(network.subnet_of(other) for other in kept):
            kept.append(network)
    return sorted(kept, key=lambda net: (net.network_address, net.prefixlen))


def _text(network):
    """A network as nftables reads it: a single address without its /32 or /128."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _comment(text):
    cleaned = re.sub(r"[^A-Za-z0-9 ,.:;/()_+=@'-]", " ", str(text)).strip()
    return cleaned[:_COMMENT_MAX]


def _resolve_rule(rule, where, resolver, strict):
    """One rule as the template renders it, or None after appending its mistakes."""
    errors = resolver.errors
    before = len(errors)
    if not isinstance(rule, Mapping):
        errors.append("%s is %s; expected a mapping with name, proto, ports and sources" % (where, _shown(rule)))
        return None
    known = {"name", "role", "proto", "ports", "sources", "label"}
    unknown = sorted(str(key) for key in rule if key not in known)
    if unknown:
        errors.append("%s has the unknown keys %s; expected only name, proto, ports and sources"
                      % (where, ", ".join(unknown)))
    name = rule.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append("%s.name is %s; expected text saying what the rule is for" % (where, _shown(name)))
    protocols = _protocols(rule.get("proto", "tcp"), where, errors)
    ports = _ports(rule.get("ports"), where, errors)
    sources = rule.get("sources")
    if not _is_list(sources):
        errors.append("%s.sources is %s; expected a list, each item %s" % (where, _shown(sources), _SOURCE_FORMS))
        sources = []
    addresses, described = [], []
    for item in sources:
        found, description = resolver.source(item, where, strict)
        addresses += found
        if description and description not in described:
            described.append(description)
    if len(errors) > before:
        return None
    v4 = _minimal(a for a in addresses if a.version == 4)
    v6 = _minimal(a for a in addresses if a.version == 6)
    role = rule.get("role") or "site"
    return {
        "name": name.strip(),
        "role": role,
        "protocols": protocols,
        "ports": ["%d" % first if first == last else "%d-%d" % (first, last) for first, last in ports],
        "spans": [[first, last] for first, last in ports],
        "match": _match(protocols, ports),
        "ipv4": [_text(net) for net in v4],
        "ipv6": [_text(net) for net in v6],
        "sources": described,
        "comment": _comment("%s: %s" % (role, name.strip())),
    }


def _where(rule, index, labels, extra):
    """How a message names a rule: its site file variable, or the role that declared it."""
    if extra:
        return "%s[%d]" % (labels.get("extra") or "site_firewall_extra_rules", index)
    if isinstance(rule, Mapping):
        name = rule.get("name") if isinstance(rule.get("name"), str) else index
        role = rule.get("role") or "a role"
        label = rule.get("label")
        return "the %s role's rule %s%s" % (role, _shown(name), " (from %s)" % label if label else "")
    return "declared rule %d" % index


def _resolve(firewall, hostvars, groups, errors):
    if not isinstance(firewall, Mapping):
        raise AnsibleFilterError("sl_firewall: expected a mapping of rules, extra, networks and labels, got %s"
                                 % _shown(firewall))
    hostvars = hostvars if hostvars is not None else {}
    groups = groups if isinstance(groups, Mapping) else {}
    resolver = _Resolver(firewall, hostvars, groups, errors)
    labels = firewall.get("labels") or {}
    resolved = []
    for extra, key in ((False, "rules"), (True, "extra")):
        rules = firewall.get(key) or []
        if not _is_list(rules):
            where = labels.get("extra") if extra else "the rules the roles declared"
            errors.append("%s is %s; expected a list of rules (name, proto, ports, sources)"
                          % (where or key, _shown(rules)))
            continue
        for index, rule in enumerate(rules):
            found = _resolve_rule(rule, _where(rule, index, labels, extra), resolver, strict=extra)
            if found is not None:
                resolved.append(found)
    return resolved


# --------------------------------------------------------------------------
# The control machine's own SSH
# --------------------------------------------------------------------------


def _controller(value):
    """(address, port) from an SSH_CONNECTION value ('client port server port'), or None."""
    if not isinstance(value, str):
        return None
    parts = value.split()
    if len(parts) != 4 or not parts[3].isdigit():
        return None
    try:
        address = ipaddress.ip_address(parts[0].split("%", 1)[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address, int(parts[3])


def _reaches(rules, address, port):
    for rule in rules:
        if "tcp" not in rule["protocols"] or not any(first <= port <= last for first, last in rule["spans"]):
            continue
        if any(address in ipaddress.ip_network(net) for net in rule["ipv4"] + rule["ipv6"]):
            return True
    return False


# --------------------------------------------------------------------------
# The filters
# --------------------------------------------------------------------------


def sl_firewall_errors(firewall, hostvars, groups, controller=None, host=None, prefix=""):
    """Every mistake of one host's firewall, one message each; ``[]`` when there is none.

    ``firewall``: see the module's docstring; ``hostvars``, ``groups``: the
    inventory's. ``controller``: the host's ``SSH_CONNECTION`` as Ansible's
    own session sees it (``'client-address client-port server-address
    server-port'``), or ``None`` when Ansible does not reach the host over
    SSH; with it, a rule set that accepts no TCP connection from that
    address to that port is refused (the run would cut itself off). A value
    that is given but cannot be read is refused too. ``host`` names the
    host in that message; ``prefix`` starts every message (the role's name).
    """
    errors = []
    resolved = _resolve(firewall, hostvars, groups, errors)
    labels = firewall.get("labels") or {}
    if controller is not None and not errors:
        found = _controller(controller)
        where = "on %s, " % host if host else ""
        if found is None:
            errors.append("%scannot tell where the control machine connects from: SSH_CONNECTION is %s; expected "
                          "'client-address client-port server-address server-port' (set site_firewall_enabled: "
                          "false if this host's SSH server does not give it)" % (where, _shown(controller)))
        elif not _reaches(resolved, *found):
            address, port = found
            errors.append("%sno rule accepts the control machine's own SSH (from %s, as the host sees it, to port "
                          "%d/tcp): this run would cut itself off. Add %s or its network to %s"
                          % (where, address, port, address, labels.get("admin") or "the admin networks"))
    return ["%s%s." % (prefix, error) for error in errors]


def sl_firewall_rules(firewall, hostvars, groups):
    """The host's rules as the nftables template renders them, in order.

    Each: ``{name, role, protocols, ports, spans, match, ipv4, ipv6,
    sources, comment}``; ``match`` is the rule's nftables match of protocol
    and ports, ``ipv4``/``ipv6`` its source networks (collapsed, sorted;
    both empty when no source has an address), ``sources`` where they come
    from, for the file's comments. Raises ``AnsibleFilterError`` with
    every mistake ``sl_firewall_errors`` would report.
    """
    errors = []
    resolved = _resolve(firewall, hostvars, groups, errors)
    if errors:
        raise AnsibleFilterError("sl_firewall_rules: " + "; ".join(errors))
    return resolved


class FilterModule:
    """StratusLab firewall filters."""

    def filters(self):
        return {
            "sl_firewall_errors": sl_firewall_errors,
            "sl_firewall_rules": sl_firewall_rules,
        }
