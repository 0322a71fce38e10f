# -*- coding: utf-8 -*-
"""Jinja filters that turn a StratusLab site file's networks into OpenNebula terms.

Every filter is a plain function; ``FilterModule`` at the end only maps names to
them. The rules shared by all filters:

* Bad input raises ``AnsibleFilterError``. The message starts with the filter name,
  then the field, then the offending value, then what is wrong with it. A filter
  never answers a bad value with a silent ``False``: validators return ``True`` or
  raise.
* ``label`` (optional, every filter) tells the filter where the value came from in
  the site file so that the message can point there. Filters with one input use the
  label *as* that input's field name (``label='networks.public.bridge'``); filters
  with several inputs put it in front of the argument name
  (``label='networks.public'`` gives ``networks.public.first``).
* IPv4 only: OpenNebula address ranges handled here are of type ``IP4``. Addresses
  must be strings in strict dotted-quad form ('10.0.0.1', not '10.1' or 167772161).
* A CIDR must have an explicit prefix length and no host bits set ('10.0.0.0/24',
  not '10.0.0.5/24'): a host part in a network field is almost always a typo.

The full reference with examples is docs/filters.md.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterable, Mapping

from ansible.errors import AnsibleFilterError


class _NetaddrOnFirstUse:
    """Stands for the netaddr module until a filter first needs it.

    Ansible loads every filter plugin file in each worker process that
    renders a template with any filter, and a worker lives for one task on
    one host: importing netaddr (40-65 ms) at the top of this file cost that
    in nearly every task of a site run, most of which never call one of
    these filters (profiled with py-spy: 6 % of the controller's CPU in a
    rerun of site.yml). The first attribute read imports it and replaces
    this stand-in.
    """

    def __getattr__(self, attribute):
        module = _import_netaddr()
        if module is None:
            _require_netaddr("stratuslab_net")
        return getattr(module, attribute)


def _import_netaddr():
    """Import netaddr into this module's globals; None when it is not installed."""
    global netaddr  # pylint: disable=global-statement
    try:
        import netaddr as module  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover - the tests simulate this by patching
        module = None
    netaddr = module
    return module


netaddr = _NetaddrOnFirstUse()

DEFAULT_MAC_PREFIX = "02:00"
# Linux IFNAMSIZ counts the terminating NUL: names have at most 15 bytes.
IFNAMSIZ = 16
_MAX_IPV4 = 2**32 - 1
_PREFIX_LENGTH = re.compile(r"[0-9]{1,2}")
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_MAC_PREFIX = re.compile(r"[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}")


# --------------------------------------------------------------------------
# Error reporting
# --------------------------------------------------------------------------


def _show(value):
    """Render a value for an error message: strings quoted, anything else by repr."""
    if isinstance(value, str):
        return repr(str(value))
    return repr(value)


def _field(label, name):
    """Field name for a filter with several inputs: ``label.name``, or ``name``."""
    return f"{label}.{name}" if label else name


def _fail(filter_name, field, value, problem):
    """Raise the error every filter uses: filter, field, offending value, problem."""
    raise AnsibleFilterError(f"{filter_name}: {field} {_show(value)} {problem}")


def _require_netaddr(filter_name):
    """Refuse to run, with install instructions, when netaddr is missing."""
    if isinstance(netaddr, _NetaddrOnFirstUse):
        _import_netaddr()
    if netaddr is None:
        raise AnsibleFilterError(
            f"{filter_name}: the Python library 'netaddr' is not installed on the "
            f"Ansible controller; install it into the Python that runs Ansible, "
            f"e.g. '{sys.executable} -m pip install netaddr' (or 'make venv')"
        )


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------


def _parse_ipv4(value):
    """The integer value of a strict dotted-quad IPv4 string, or None."""
    if not isinstance(value, str):
        return None
    try:
        return int(netaddr.IPAddress(str(value), 4))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


def _dotted(number):
    """Dotted-quad text of an integer IPv4 address."""
    return str(netaddr.IPAddress(number, 4))


def _span_text(first, last):
    """'first-last' in dotted-quad form."""
    return f"{_dotted(first)}-{_dotted(last)}"


def _ipv4(value, filter_name, field):
    """The integer value of an IPv4 address; raises naming the value otherwise."""
    number = _parse_ipv4(value)
    if number is None:
        _fail(filter_name, field, value, "is not an IPv4 address (such as '10.0.0.1')")
    return number


def _network(value, filter_name, field):
    """A netaddr.IPNetwork from 'a.b.c.d/len' with no host bits; raises otherwise."""
    address, slash, length = value.partition("/") if isinstance(value, str) else ("", "", "")
    number = _parse_ipv4(address)
    if not slash or number is None or not _PREFIX_LENGTH.fullmatch(length) or int(length) > 32:
        _fail(filter_name, field, value, "is not an IPv4 network in CIDR notation (such as '10.0.0.0/24')")
    network = netaddr.IPNetwork(f"{_dotted(number)}/{int(length)}")
    if number != network.first:
        _fail(filter_name, field, value, f"has host bits set (the network would be {network.cidr})")
    return network


def _usable(network, value, filter_name, field):
    """(first, last) usable host of a network: without network and broadcast address."""
    if network.size < 4:
        _fail(
            filter_name,
            field,
            value,
            "has no usable host addresses once its network and broadcast addresses are left out (use /30 or shorter)",
        )
    return network.first + 1, network.last - 1


def _size(value, filter_name, field):
    """A positive whole number given as int or digit string; raises otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        number = int(value)
    else:
        _fail(filter_name, field, value, "is not a whole number")
    if number < 1:
        _fail(filter_name, field, value, "must be at least 1")
    return number


def _flag(value, filter_name, field):
    """A real boolean; a string such as 'false' would silently be true."""
    if not isinstance(value, bool):
        _fail(filter_name, field, value, "is not a boolean (true or false)")
    return value


def _as_list(value, filter_name, field):
    """A list from any iterable except strings and mappings; raises otherwise."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        _fail(filter_name, field, value, "is not a list")
    return list(value)


# --------------------------------------------------------------------------
# sl_address_range
# --------------------------------------------------------------------------


def _host_in(value, network, filter_name, field):
    """An optional host address inside the network, not its network/broadcast address."""
    if value is None:
        return None
    number = _ipv4(value, filter_name, field)
    if not network.first <= number <= network.last:
        _fail(filter_name, field, value, f"is outside network {network.cidr}")
    if number in (network.first, network.last):
        kind = "network" if number == network.first else "broadcast"
        _fail(filter_name, field, value, f"is the {kind} address of {network.cidr}")
    return number


def _free_blocks(low, high, gateway):
    """Gateway-free blocks of [low, high]: the whole span, or the non-empty sides of the gateway."""
    if gateway is None:
        return [(low, high)]
    sides = [(low, gateway - 1), (gateway + 1, high)]
    return [(start, end) for start, end in sides if start <= end]


def _largest_block(blocks):
    """The block with the most addresses (the upper one on a tie)."""
    return max(reversed(blocks), key=lambda block: block[1] - block[0])


def _block_of(number, blocks):
    """The gateway-free block that contains an address (callers exclude the gateway)."""
    return next(block for block in blocks if block[0] <= number <= block[1])


def _resolve(first, last, size, blocks):
    """Fill in missing bounds; see sl_address_range for the rules."""
    if first is None and last is None:
        start, end = _largest_block(blocks)
        return start, end if size is None else start + size - 1
    if first is not None and last is not None:
        return first, last
    if size is not None:
        return (first, first + size - 1) if first is not None else (last - size + 1, last)
    if first is not None:
        return first, _block_of(first, blocks)[1]
    return _block_of(last, blocks)[0], last


def _check_bounds(args, first, last, size, gateway, filter_name, label):
    """Explicit bounds: not the gateway, in order, and matching an explicit size."""
    for key, number in (("first", first), ("last", last)):
        if number is not None and number == gateway:
            _fail(filter_name, _field(label, key), args[key], "is the gateway; the range must leave the gateway out")
    if first is not None and last is not None and first > last:
        _fail(filter_name, _field(label, "first"), args["first"], f"comes after last {_show(args['last'])}")
    if None not in (first, last, size) and last - first + 1 != size:
        count = last - first + 1
        _fail(filter_name, _field(label, "size"), args["size"], f"does not match first..last ({count} addresses)")


def _check_fit(args, span, limits, filter_name, label):
    """Only a size can push a resolved span out of its limits (checked bounds cannot).

    ``limits`` is (low, high, description of that span).
    """
    if span[0] < limits[0] or span[1] > limits[1]:
        count = limits[1] - limits[0] + 1
        where = f"{limits[2]} ({_span_text(*limits[:2])}, {count} addresses)"
        _fail(filter_name, _field(label, "size"), args["size"], f"does not fit in {where}")


def _check_gateway(args, span, gateway, filter_name, label):
    """An explicit range is never trimmed: refuse it when it holds the gateway."""
    if gateway is not None and span[0] <= gateway <= span[1]:
        where = _span_text(*span)
        problem = f"lies inside the range {where}; choose first/last/size that leave it out"
        _fail(filter_name, _field(label, "gateway"), args["gateway"], problem)


def sl_address_range(cidr, first=None, last=None, size=None, gateway=None, label=None):
    """An OpenNebula IPv4 address range: ``{'type': 'IP4', 'ip': first, 'size': n}``.

    The range never holds the network address, the broadcast address or the gateway.

    * Nothing but ``cidr`` (and ``gateway``): every usable host; when the gateway lies
      inside, the larger of the two gateway-free sides (they never tie: a network has
      an even number of usable hosts, an odd number once the gateway is out).
    * ``size`` alone: that many addresses from the start of that same default span;
      refused when it does not fit there.
    * ``first`` or ``last`` alone: extends to the edge of the gateway-free block that
      holds the given bound, so the gateway is never crossed.
    * An explicit range (``first`` and ``last``, or one of them with ``size``) is never
      trimmed: refused when it holds the gateway, leaves the network, or disagrees
      with ``size``.
    """
    name = "sl_address_range"
    _require_netaddr(name)
    args = {"first": first, "last": last, "size": size, "gateway": gateway}
    network = _network(cidr, name, _field(label, "cidr"))
    low, high = _usable(network, cidr, name, _field(label, "cidr"))
    numbers = [_host_in(args[key], network, name, _field(label, key)) for key in ("first", "last")]
    count = None if size is None else _size(size, name, _field(label, "size"))
    gate = _host_in(gateway, network, name, _field(label, "gateway"))
    _check_bounds(args, *numbers, count, gate, name, label)
    blocks = _free_blocks(low, high, gate)
    span = _resolve(*numbers, count, blocks)
    if numbers == [None, None]:
        limits = (*_largest_block(blocks), "the largest gateway-free span")
    else:
        limits = (low, high, f"the usable addresses of {network.cidr}")
    _check_fit(args, span, limits, name, label)
    _check_gateway(args, span, gate, name, label)
    return {"type": "IP4", "ip": _dotted(span[0]), "size": span[1] - span[0] + 1}


# --------------------------------------------------------------------------
# MAC addresses
# --------------------------------------------------------------------------


def _mac_prefix(prefix, require_local, filter_name, field):
    """The lower-cased prefix after validation; raises naming the prefix."""
    if not isinstance(prefix, str) or not _MAC_PREFIX.fullmatch(prefix):
        _fail(filter_name, field, prefix, "is not a MAC prefix of two hex octets joined by a colon (such as '02:00')")
    octet = int(prefix[:2], 16)
    if octet & 0x01:
        _fail(filter_name, field, prefix, f"has a multicast first octet (0x{octet:02x} has its low bit set)")
    if require_local and not octet & 0x02:
        _fail(
            filter_name,
            field,
            prefix,
            f"is not locally administered (0x{octet:02x} lacks bit 0x02; e.g. '02:00' has it)",
        )
    return str(prefix).lower()


def sl_mac_prefix_valid(prefix, require_local=False, label=None):
    """True for a usable OpenNebula MAC prefix; raises naming the prefix otherwise.

    Exactly two hex octets joined by a colon, first octet unicast (low bit clear).
    The locally-administered bit (0x02, set in OpenNebula's default '02:00') is not
    required, as OpenNebula does not require it; pass ``require_local=true`` to
    enforce it for a new site.
    """
    name = "sl_mac_prefix_valid"
    field = label or "mac_prefix"
    _mac_prefix(prefix, _flag(require_local, name, "require_local"), name, field)
    return True


def sl_ip_to_mac(ip, prefix=DEFAULT_MAC_PREFIX, label=None):
    """The MAC OpenNebula gives an IPv4 lease: prefix + the four address bytes in hex.

    ``'10.0.0.10' | sl_ip_to_mac('02:00')`` is ``'02:00:0a:00:00:0a'``.
    """
    name = "sl_ip_to_mac"
    _require_netaddr(name)
    head = _mac_prefix(prefix, False, name, _field(label, "prefix"))
    number = _ipv4(ip, name, _field(label, "ip"))
    return head + "".join(f":{byte:02x}" for byte in number.to_bytes(4, "big"))


# --------------------------------------------------------------------------
# Ranges: overlap and fit
# --------------------------------------------------------------------------


def _item_field(base, index, item):
    """'ranges[public]' when the item has a string name, else 'ranges[2]'."""
    name = item.get("name") if isinstance(item, Mapping) else None
    return f"{base}[{name}]" if isinstance(name, str) and name else f"{base}[{index}]"


def _ip_size_span(item, filter_name, field):
    """(first, last) of an {ip, size} range."""
    start = _ipv4(item["ip"], filter_name, f"{field}.ip")
    end = start + _size(item["size"], filter_name, f"{field}.size") - 1
    if end > _MAX_IPV4:
        _fail(filter_name, f"{field}.size", item["size"], "runs past 255.255.255.255")
    return start, end


def _first_last_span(item, filter_name, field):
    """(first, last) of a {first, last} range."""
    start = _ipv4(item["first"], filter_name, f"{field}.first")
    end = _ipv4(item["last"], filter_name, f"{field}.last")
    if start > end:
        _fail(filter_name, f"{field}.first", item["first"], f"comes after last {_show(item['last'])}")
    return start, end


def _range_span(item, filter_name, field):
    """(first, last) of a range given as {ip, size}, {first, last} or {cidr}."""
    if isinstance(item, Mapping) and "ip" in item and "size" in item:
        return _ip_size_span(item, filter_name, field)
    if isinstance(item, Mapping) and "first" in item and "last" in item:
        return _first_last_span(item, filter_name, field)
    if isinstance(item, Mapping) and "cidr" in item:
        network = _network(item["cidr"], filter_name, f"{field}.cidr")
        return network.first, network.last
    _fail(filter_name, field, item, "is not a range: give ip+size, first+last or cidr")


def _named_spans(ranges, filter_name, label):
    """[(name, first, last)] for a list of named ranges; raises on an unnamed one."""
    base = label or "ranges"
    spans = []
    for index, item in enumerate(_as_list(ranges, filter_name, base)):
        field = _item_field(base, index, item)
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            _fail(filter_name, field, item, "has no name (every range needs a non-empty 'name')")
        spans.append((str(name), *_range_span(item, filter_name, field)))
    return spans


def _overlapping(spans):
    """Pairs of spans that share at least one address, in input order."""
    pairs = itertools.combinations(spans, 2)
    return [(one, two) for one, two in pairs if one[1] <= two[2] and two[1] <= one[2]]


def sl_overlapping_ranges(ranges, label=None):
    """The ``[name, name]`` pairs of ranges that share addresses; ``[]`` when none do.

    Each range is a mapping with ``name`` and either ``ip`` + ``size`` (the output of
    sl_address_range), ``first`` + ``last``, or ``cidr`` (a whole network). Does not
    raise on overlap, only on malformed input; for preflight ``assert`` tasks.
    """
    spans = _named_spans(ranges, "sl_overlapping_ranges", label)
    return [[one[0], two[0]] for one, two in _overlapping(spans)]


def sl_ranges_disjoint(ranges, label=None):
    """True when no two ranges share an address; raises naming each overlapping pair.

    Takes the same list as sl_overlapping_ranges.
    """
    name = "sl_ranges_disjoint"
    pairs = _overlapping(_named_spans(ranges, name, label))
    if pairs:
        text = "; ".join(
            f"{_show(one[0])} ({_span_text(*one[1:])}) and {_show(two[0])} ({_span_text(*two[1:])})"
            for one, two in pairs
        )
        raise AnsibleFilterError(f"{name}: {label or 'ranges'}: overlapping ranges: {text}")
    return True


def sl_range_fits(address_range, cidr, label=None):
    """True when a range lies within the usable hosts of a network; raises otherwise.

    ``address_range`` takes the forms sl_overlapping_ranges accepts (``name`` is
    optional here). Usable means neither the network nor the broadcast address.
    """
    name = "sl_range_fits"
    _require_netaddr(name)
    field = _field(label, "range")
    network = _network(cidr, name, _field(label, "cidr"))
    low, high = _usable(network, cidr, name, _field(label, "cidr"))
    start, end = _range_span(address_range, name, field)
    if start < low or end > high:
        problem = (
            f"spans {_span_text(start, end)}, not inside the usable addresses {_span_text(low, high)} of {network.cidr}"
        )
        _fail(name, field, address_range, problem)
    return True


# --------------------------------------------------------------------------
# Bridges, host lists, duplicates
# --------------------------------------------------------------------------


def _bridge_problem(bridge):
    """Why a name is not a valid Linux interface name, or None when it is."""
    if not isinstance(bridge, str) or not bridge:
        return "is not a non-empty string"
    if len(bridge.encode("utf-8")) >= IFNAMSIZ:
        return f"is {len(bridge.encode('utf-8'))} bytes long; Linux interface names have at most {IFNAMSIZ - 1}"
    if bridge in (".", ".."):
        return "is reserved: '.' and '..' cannot name an interface"
    bad = sorted({char for char in bridge if char in "/:\0" or char.isspace()})
    if bad:
        return f"contains {', '.join(repr(char) for char in bad)}; interface names cannot hold '/', ':' or whitespace"
    return None


def sl_bridge_name_valid(bridge, label=None):
    """True for a valid Linux bridge (interface) name; raises naming the bridge otherwise.

    The kernel's rules (dev_valid_name): 1 to 15 bytes, not '.' or '..', no '/',
    no ':' and no whitespace.
    """
    problem = _bridge_problem(bridge)
    if problem:
        _fail("sl_bridge_name_valid", label or "bridge", bridge, problem)
    return True


def sl_hosts_outside(addresses, cidr, label=None):
    """The addresses of a list that are not inside the network ``cidr``, in list order.

    ``[]`` means the network holds every address (e.g. an NFS export network and
    the nodes that mount it). Every item must be an IPv4 address, not a host name.
    """
    name = "sl_hosts_outside"
    _require_netaddr(name)
    network = _network(cidr, name, _field(label, "cidr"))
    items = _as_list(addresses, name, _field(label, "addresses"))
    field = _field(label, "addresses")
    numbers = [_ipv4(item, name, f"{field}[{index}]") for index, item in enumerate(items)]
    return [item for item, number in zip(items, numbers) if not network.first <= number <= network.last]


def sl_duplicates(items, label=None):
    """Items that occur more than once, each listed once, in order of first repeat.

    Works for unhashable items (mappings, lists) too; ``[]`` when all are distinct.
    """
    seen, repeated = [], []
    for item in _as_list(items, "sl_duplicates", label or "items"):
        if item in seen and item not in repeated:
            repeated.append(item)
        seen.append(item)
    return repeated


# --------------------------------------------------------------------------
# The site's networks as a whole: every mistake, for one preflight assert
# --------------------------------------------------------------------------


def _message(error):
    """An AnsibleFilterError's text without its leading filter name."""
    text = str(getattr(error, "message", None) or error)
    head, colon, rest = text.partition(": ")
    return rest if colon and head.startswith("sl_") else text


def _host_variable(hostvars, host, variable):
    """A host variable, or None when the host or the variable is missing or cannot be worked out."""
    try:
        return hostvars[host].get(variable) if host in hostvars else None
    except Exception:  # pylint: disable=broad-except - an undefined value: the inventory check reports it
        return None


def _stated_addresses(hostvars, hosts):
    """[(address number, 'site_address of node1')] for every IPv4 address the hosts state."""
    found = []
    for host in hosts or []:
        stated = [("site_address", _host_variable(hostvars, host, "site_address"))]
        per_network = _host_variable(hostvars, host, "site_network_addresses")
        if isinstance(per_network, Mapping):
            stated += [("site_network_addresses.%s" % key, value) for key, value in per_network.items()]
        for variable, value in stated:
            number = _parse_ipv4(value)
            if number is not None:
                found.append((number, "%s of %s" % (variable, host)))
    return found


def _network_spans(net, field, errors):
    """[(what, first, last)] of one network's range and leases; appends to errors what is wrong."""
    name = "sl_network_errors"
    spans = []
    try:
        network = _network(net.get("cidr"), name, field + ".cidr")
    except AnsibleFilterError as error:
        errors.append(_message(error))
        return spans
    gateway = net.get("gateway")
    if gateway is not None:
        try:
            _host_in(gateway, network, name, field + ".gateway")
        except AnsibleFilterError as error:
            errors.append(_message(error))
            return spans
    if "range" in net:
        given = net.get("range") or {}
        if not isinstance(given, Mapping):
            errors.append(f"{field}.range {_show(given)} is not a mapping of first, last and size")
        else:
            try:
                found = sl_address_range(net.get("cidr"), first=given.get("first"), last=given.get("last"),
                                         size=given.get("size"), gateway=gateway, label=field + ".range")
                start = _parse_ipv4(found["ip"])
                spans.append((field + ".range", start, start + found["size"] - 1))
            except AnsibleFilterError as error:
                errors.append(_message(error))
    if "leases" in net:
        leases = net.get("leases")
        if isinstance(leases, (str, bytes, Mapping)) or not isinstance(leases, Iterable):
            errors.append(f"{field}.leases {_show(leases)} is not a list of IPv4 addresses")
            leases = []
        for index, lease in enumerate(leases):
            what = f"{field}.leases[{index}]"
            try:
                number = _host_in(lease, network, name, what)
            except AnsibleFilterError as error:
                errors.append(_message(error))
                continue
            if gateway is not None and lease == gateway:
                errors.append(f"{what} {_show(lease)} is the gateway; a lease must leave the gateway out")
                continue
            spans.append((f"{field}.leases {lease}", number, number))
    return spans


def _node_bridge_errors(networks, hostvars, nodes, label):
    """Nodes whose own site_networks (host_vars) lack a site network or name another bridge for it."""
    missing = []
    for node in nodes or []:
        own = _host_variable(hostvars, node, "site_networks")
        own = own if isinstance(own, (list, tuple)) else []
        for net in networks:
            if not any(isinstance(mine, Mapping) and mine.get("name") == net.get("name")
                       and mine.get("bridge") == net.get("bridge") for mine in own):
                missing.append(f"node {node} has no bridge {net.get('bridge')} for {label}[{net.get('name')}]")
    if not missing:
        return []
    names = [net.get("name") for net in networks]
    return [f"{label} defines {names}, but {'; '.join(missing)}. Every node needs the bridge of every site "
            "network: fix that node's site_networks (host_vars) or the site file"]


def sl_cidr_errors(networks, label="networks", prefix=""):
    """The items of a list of CIDRs that are not IPv4 networks, have host bits set, or are a /0.

    For allow-lists (who may use a service): a /0 lets every address in. One
    message per bad item, naming ``label`` and the item's index; ``[]`` when
    all are good. ``prefix`` starts every message (the role's name).
    """
    _require_netaddr("sl_cidr_errors")
    errors = []
    for index, item in enumerate(_as_list(networks, "sl_cidr_errors", label)):
        field = f"{label} item {index}"
        try:
            network = _network(item, "sl_cidr_errors", field)
        except AnsibleFilterError as error:
            errors.append(_message(error))
            continue
        if network.prefixlen == 0:
            errors.append(f"{field} {_show(item)} is a /0, every address: expected a network of the site "
                          "(such as 10.1.0.0/16), or the service would be open to anyone (an open proxy)")
    return [f"{prefix}{error}." for error in errors]


def sl_network_errors(networks, hostvars=None, hosts=(), nodes=(), label="site_networks", prefix="",
                      mac_prefix=None, mac_label="site_mac_prefix"):
    """Every mistake in the site's networks, one message each; ``[]`` when there is none.

    ``networks``: the site file's networks (name, bridge, cidr, gateway, and a
    range or leases). Refused: an incomplete entry; a name used twice; a bridge
    Linux would refuse; a cidr, range, lease or gateway sl_address_range or the
    network refuses; two ranges or leases that share an address; an address a
    host of ``hosts`` states (its ``site_address`` or ``site_network_addresses``
    in ``hostvars``) inside a range or among the leases, which OpenNebula would
    give a VM; a node of ``nodes`` whose own ``site_networks`` (host_vars)
    lacks a network or names another bridge for it; a ``mac_prefix`` (of the
    leases' MACs, named ``mac_label``) sl_mac_prefix_valid refuses. ``prefix``
    starts every message (the role's name).
    """
    _require_netaddr("sl_network_errors")
    errors = []
    if mac_prefix is not None:
        try:
            _mac_prefix(mac_prefix, False, "sl_network_errors", mac_label)
        except AnsibleFilterError as error:
            errors.append(_message(error))
    nets = _as_list(networks, "sl_network_errors", label)
    complete = []
    for index, net in enumerate(nets):
        field = _item_field(label, index, net)
        if not (isinstance(net, Mapping) and all(isinstance(net.get(key), str) and net.get(key)
                                                 for key in ("name", "bridge", "cidr"))
                and ("range" in net or "leases" in net)):
            errors.append(f"{field} needs a name, a bridge, a cidr and either a range or leases")
            continue
        complete.append(net)
    names = sl_duplicates([net["name"] for net in complete])
    if names:
        errors.append(f"{label} names the networks {names} more than once")
    spans = []
    for index, net in enumerate(complete):
        field = _item_field(label, index, net)
        problem = _bridge_problem(net["bridge"])
        if problem:
            errors.append(f"{field}.bridge {_show(net['bridge'])} {problem}")
        spans += _network_spans(net, field, errors)
    if not [error for error in errors if not error.startswith(mac_label)]:
        for one, two in _overlapping(spans):
            errors.append(f"{one[0]} ({_span_text(*one[1:])}) and {two[0]} ({_span_text(*two[1:])}) share addresses: "
                          "OpenNebula would lease an address twice")
    for number, who in _stated_addresses(hostvars or {}, hosts):
        for what, first, last in spans:
            if first <= number <= last:
                errors.append(f"{what} ({_span_text(first, last)}) holds {_dotted(number)}, the {who}: OpenNebula "
                              "would lease that address to a VM. Move the range or leases off the hosts' addresses")
    if len(complete) == len(nets):
        errors += _node_bridge_errors(complete, hostvars or {}, nodes, label)
    return [f"{prefix}{error}." for error in errors]


def sl_vnet_spec(network, label=None):
    """One site network as an entry of opennebula_vnets: the OpenNebula network the front-end creates.

    ``network``: a site file network (name, bridge, cidr, gateway, and a
    range or leases). The entry: ``name``, ``vn_mad: bridge``, ``bridge``, a
    ``template`` (NETWORK_ADDRESS, NETWORK_MASK, DESCRIPTION, and GATEWAY when
    given), and ``address_ranges`` (one, from ``range`` by sl_address_range)
    and/or ``fixed_leases`` (the ``leases``), each only when the site network
    has it. ``label`` names the network in messages (default
    ``site_networks[<name>]``).
    """
    name = "sl_vnet_spec"
    _require_netaddr(name)
    if not (isinstance(network, Mapping) and all(isinstance(network.get(key), str) and network.get(key)
                                                 for key in ("name", "bridge", "cidr"))):
        _fail(name, label or "network", network, "needs a name, a bridge and a cidr")
    label = label or f"site_networks[{network['name']}]"
    cidr = network["cidr"]
    mask = _network(cidr, name, _field(label, "cidr")).netmask
    template = {"NETWORK_ADDRESS": cidr.split("/")[0], "NETWORK_MASK": str(mask),
                "DESCRIPTION": f"StratusLab site network {network['name']}"}
    if network.get("gateway") is not None:
        template["GATEWAY"] = network["gateway"]
    spec = {"name": network["name"], "vn_mad": "bridge", "bridge": network["bridge"], "template": template}
    if network.get("range") is not None:
        bounds = network["range"] if isinstance(network["range"], Mapping) else {}
        try:
            spec["address_ranges"] = [sl_address_range(cidr, first=bounds.get("first"), last=bounds.get("last"),
                                                        size=bounds.get("size"), gateway=network.get("gateway"),
                                                        label=label)]
        except AnsibleFilterError as error:
            raise AnsibleFilterError(f"{name}: {_message(error)}") from None
    if network.get("leases") is not None:
        spec["fixed_leases"] = network["leases"]
    return spec


class FilterModule:
    """StratusLab network filters; see docs/filters.md."""

    def filters(self):
        return {
            "sl_address_range": sl_address_range,
            "sl_ip_to_mac": sl_ip_to_mac,
            "sl_mac_prefix_valid": sl_mac_prefix_valid,
            "sl_overlapping_ranges": sl_overlapping_ranges,
            "sl_ranges_disjoint": sl_ranges_disjoint,
            "sl_range_fits": sl_range_fits,
            "sl_bridge_name_valid": sl_bridge_name_valid,
            "sl_hosts_outside": sl_hosts_outside,
            "sl_duplicates": sl_duplicates,
            "sl_network_errors": sl_network_errors,
            "sl_cidr_errors": sl_cidr_errors,
            "sl_vnet_spec": sl_vnet_spec,
        }
