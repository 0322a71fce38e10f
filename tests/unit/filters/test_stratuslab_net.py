"""Unit tests of filter_plugins/stratuslab_net.py (run: .venv/bin/pytest tests/unit/filters -q)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import netaddr
import pytest
from ansible.errors import AnsibleFilterError

from filter_testlib import REPO, load_plugin

net = load_plugin("stratuslab_net")


def fails(func, *args, names=(), **kwargs):
    """Call func expecting AnsibleFilterError; check the message names every string in names."""
    with pytest.raises(AnsibleFilterError) as caught:
        func(*args, **kwargs)
    message = str(caught.value)
    assert message.startswith(func.__name__ + ":"), message
    for text in names:
        assert text in message, f"{text!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------
# sl_address_range: good cases
# --------------------------------------------------------------------------

NET = "10.0.0.0/24"


def ar(ip, size):
    return {"type": "IP4", "ip": ip, "size": size}


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, ar("10.0.0.1", 254)),
        ({"gateway": "10.0.0.1"}, ar("10.0.0.2", 253)),
        ({"gateway": "10.0.0.254"}, ar("10.0.0.1", 253)),
        ({"gateway": "10.0.0.200"}, ar("10.0.0.1", 199)),
        ({"gateway": "10.0.0.50"}, ar("10.0.0.51", 204)),
        ({"size": 10}, ar("10.0.0.1", 10)),
        ({"size": "10"}, ar("10.0.0.1", 10)),
        ({"size": 10, "gateway": "10.0.0.1"}, ar("10.0.0.2", 10)),
        ({"size": 253, "gateway": "10.0.0.1"}, ar("10.0.0.2", 253)),
        ({"first": "10.0.0.100"}, ar("10.0.0.100", 155)),
        ({"first": "10.0.0.100", "gateway": "10.0.0.1"}, ar("10.0.0.100", 155)),
        ({"first": "10.0.0.100", "gateway": "10.0.0.200"}, ar("10.0.0.100", 100)),
        ({"last": "10.0.0.100"}, ar("10.0.0.1", 100)),
        ({"last": "10.0.0.100", "gateway": "10.0.0.1"}, ar("10.0.0.2", 99)),
        ({"last": "10.0.0.100", "gateway": "10.0.0.50"}, ar("10.0.0.51", 50)),
        ({"first": "10.0.0.10", "last": "10.0.0.19"}, ar("10.0.0.10", 10)),
        ({"first": "10.0.0.10", "size": 10}, ar("10.0.0.10", 10)),
        ({"last": "10.0.0.19", "size": 10}, ar("10.0.0.10", 10)),
        ({"first": "10.0.0.10", "last": "10.0.0.19", "size": 10}, ar("10.0.0.10", 10)),
        ({"first": "10.0.0.10", "last": "10.0.0.19", "gateway": "10.0.0.1"}, ar("10.0.0.10", 10)),
        ({"first": "10.0.0.10", "last": "10.0.0.19", "gateway": "10.0.0.20"}, ar("10.0.0.10", 10)),
        ({"first": "10.0.0.254", "last": "10.0.0.254"}, ar("10.0.0.254", 1)),
    ],
)
def test_address_range(kwargs, expected):
    assert net.sl_address_range(NET, **kwargs) == expected


@pytest.mark.parametrize(
    "cidr, gateway, expected",
    [
        ("192.168.4.0/30", None, ar("192.168.4.1", 2)),
        ("192.168.4.0/30", "192.168.4.1", ar("192.168.4.2", 1)),
        ("192.168.4.0/30", "192.168.4.2", ar("192.168.4.1", 1)),
        ("172.16.0.0/12", "172.16.0.1", ar("172.16.0.2", 2**20 - 3)),
        ("10.1.2.0/23", "10.1.3.254", ar("10.1.2.1", 509)),
    ],
)
def test_address_range_other_networks(cidr, gateway, expected):
    assert net.sl_address_range(cidr, gateway=gateway) == expected


@pytest.mark.parametrize("prefix_length", [24, 25, 26, 27, 28, 29, 30])
def test_address_range_never_holds_network_broadcast_or_gateway(prefix_length):
    network = netaddr.IPNetwork(f"10.9.8.0/{prefix_length}")
    for gateway in list(network.iter_hosts()):
        result = net.sl_address_range(str(network), gateway=str(gateway))
        first = int(netaddr.IPAddress(result["ip"]))
        last = first + result["size"] - 1
        assert network.first < first <= last < network.last
        assert not first <= int(gateway) <= last


def test_address_range_has_only_opennebula_keys():
    assert set(net.sl_address_range(NET, gateway="10.0.0.1")) == {"type", "ip", "size"}


# --------------------------------------------------------------------------
# sl_address_range: errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cidr, problem",
    [
        ("10.0.0.0", "CIDR notation"),
        ("10.0.0.0/33", "CIDR notation"),
        ("10.0.0.0/", "CIDR notation"),
        ("10.0.0.0/+8", "CIDR notation"),
        ("10.0.0/24", "CIDR notation"),
        ("banana", "CIDR notation"),
        ("fd00::/64", "CIDR notation"),
        (24, "CIDR notation"),
        (None, "CIDR notation"),
        ("10.0.0.5/24", "host bits set (the network would be 10.0.0.0/24)"),
        ("10.0.0.0/31", "no usable host addresses"),
        ("10.0.0.1/32", "no usable host addresses"),
    ],
)
def test_address_range_bad_cidr(cidr, problem):
    fails(net.sl_address_range, cidr, names=[f"cidr {cidr!r}" if isinstance(cidr, str) else repr(cidr), problem])


def test_address_range_label_prefixes_the_field():
    fails(net.sl_address_range, "10.0.0.0/33", label="networks.public", names=["networks.public.cidr '10.0.0.0/33'"])
    fails(
        net.sl_address_range,
        NET,
        first="10.0.1.1",
        label="networks.public",
        names=["networks.public.first '10.0.1.1'", "outside network 10.0.0.0/24"],
    )


@pytest.mark.parametrize("field", ["first", "last", "gateway"])
@pytest.mark.parametrize(
    "value, problem",
    [
        ("10.0.1.1", "is outside network 10.0.0.0/24"),
        ("9.255.255.255", "is outside network 10.0.0.0/24"),
        ("10.0.0.0", "is the network address of 10.0.0.0/24"),
        ("10.0.0.255", "is the broadcast address of 10.0.0.0/24"),
        ("10.0.0.256", "is not an IPv4 address"),
        ("10.0.0", "is not an IPv4 address"),
        ("", "is not an IPv4 address"),
        (" 10.0.0.1", "is not an IPv4 address"),
        (167772161, "is not an IPv4 address"),
        ("fe80::1", "is not an IPv4 address"),
    ],
)
def test_address_range_bad_addresses(field, value, problem):
    shown = repr(value)
    fails(net.sl_address_range, NET, **{field: value}, names=[f"{field} {shown}", problem])


@pytest.mark.parametrize("field", ["first", "last"])
def test_address_range_bound_is_the_gateway(field):
    fails(
        net.sl_address_range,
        NET,
        gateway="10.0.0.1",
        **{field: "10.0.0.1"},
        names=[f"{field} '10.0.0.1'", "is the gateway"],
    )


def test_address_range_first_after_last():
    fails(
        net.sl_address_range,
        NET,
        first="10.0.0.20",
        last="10.0.0.10",
        names=["first '10.0.0.20'", "comes after last '10.0.0.10'"],
    )


def test_address_range_size_disagrees_with_bounds():
    fails(
        net.sl_address_range,
        NET,
        first="10.0.0.10",
        last="10.0.0.19",
        size=11,
        names=["size 11", "does not match first..last (10 addresses)"],
    )


@pytest.mark.parametrize("size", ["ten", "1.5", 1.5, 0, -1, "0", "-3", True, [10], ""])
def test_address_range_size_not_a_positive_whole_number(size):
    fails(net.sl_address_range, NET, size=size, names=[f"size {size!r}"])


@pytest.mark.parametrize(
    "kwargs, names",
    [
        ({"size": 255}, ["size 255", "largest gateway-free span (10.0.0.1-10.0.0.254, 254 addresses)"]),
        ({"size": 254, "gateway": "10.0.0.1"}, ["size 254", "(10.0.0.2-10.0.0.254, 253 addresses)"]),
        ({"size": 200, "gateway": "10.0.0.100"}, ["size 200", "(10.0.0.101-10.0.0.254, 154 addresses)"]),
        ({"size": "300", "first": "10.0.0.10"}, ["size '300'", "usable addresses of 10.0.0.0/24"]),
        ({"size": 20, "last": "10.0.0.10"}, ["size 20", "usable addresses of 10.0.0.0/24 (10.0.0.1-10.0.0.254"]),
    ],
)
def test_address_range_size_does_not_fit(kwargs, names):
    fails(net.sl_address_range, NET, **kwargs, names=names)


@pytest.mark.parametrize(
    "kwargs, span",
    [
        ({"first": "10.0.0.1", "last": "10.0.0.20"}, "10.0.0.1-10.0.0.20"),
        ({"first": "10.0.0.1", "size": 20}, "10.0.0.1-10.0.0.20"),
        ({"last": "10.0.0.20", "size": 20}, "10.0.0.1-10.0.0.20"),
    ],
)
def test_address_range_refuses_explicit_range_holding_the_gateway(kwargs, span):
    fails(
        net.sl_address_range,
        NET,
        gateway="10.0.0.5",
        **kwargs,
        names=["gateway '10.0.0.5'", f"lies inside the range {span}"],
    )


# --------------------------------------------------------------------------
# MAC prefix and sl_ip_to_mac
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip, prefix, mac",
    [
        ("10.0.0.10", "02:00", "02:00:0a:00:00:0a"),
        ("192.168.1.255", "02:00", "02:00:c0:a8:01:ff"),
        ("0.0.0.0", "02:00", "02:00:00:00:00:00"),
        ("255.255.255.255", "0A:BC", "0a:bc:ff:ff:ff:ff"),
        ("172.16.5.4", "00:16", "00:16:ac:10:05:04"),
    ],
)
def test_ip_to_mac(ip, prefix, mac):
    assert net.sl_ip_to_mac(ip, prefix) == mac


def test_ip_to_mac_default_prefix_is_opennebulas():
    assert net.sl_ip_to_mac("10.0.0.10") == "02:00:0a:00:00:0a"


@pytest.mark.parametrize("ip", ["10.0.0.256", "10.1", "::1", "", None, 167772170, "node1"])
def test_ip_to_mac_bad_ip(ip):
    fails(net.sl_ip_to_mac, ip, label="hosts.node1", names=[f"hosts.node1.ip {ip!r}", "not an IPv4 address"])


@pytest.mark.parametrize("prefix", ["02:00:00", "0200", "2:00", "02-00", "zz:00", " 02:00", "02:00\n", 2, None])
def test_ip_to_mac_bad_prefix(prefix):
    fails(net.sl_ip_to_mac, "10.0.0.1", prefix, names=[f"prefix {prefix!r}", "two hex octets"])


@pytest.mark.parametrize("prefix", ["02:00", "00:00", "0a:0b", "AA:FF", "fe:ed"])
def test_mac_prefix_valid(prefix):
    assert net.sl_mac_prefix_valid(prefix) is True


@pytest.mark.parametrize("prefix", ["02:00", "06:ff", "0A:00", "fe:00"])
def test_mac_prefix_valid_locally_administered(prefix):
    assert net.sl_mac_prefix_valid(prefix, require_local=True) is True


@pytest.mark.parametrize("prefix", ["01:00", "03:00", "ff:ff", "0B:00"])
def test_mac_prefix_multicast(prefix):
    fails(net.sl_mac_prefix_valid, prefix, names=[f"mac_prefix {prefix!r}", "multicast"])
    fails(net.sl_ip_to_mac, "10.0.0.1", prefix, names=[f"prefix {prefix!r}", "multicast"])


@pytest.mark.parametrize("prefix", ["00:00", "04:00", "fc:00"])
def test_mac_prefix_not_locally_administered(prefix):
    fails(
        net.sl_mac_prefix_valid,
        prefix,
        require_local=True,
        label="site.mac_prefix",
        names=[f"site.mac_prefix {prefix!r}", "not locally administered"],
    )


@pytest.mark.parametrize("prefix", ["02:0", "02:000", "g2:00", "", ["02", "00"]])
def test_mac_prefix_malformed(prefix):
    fails(net.sl_mac_prefix_valid, prefix, names=[f"mac_prefix {prefix!r}", "two hex octets"])


@pytest.mark.parametrize("flag", ["yes", "false", 1, None])
def test_mac_prefix_require_local_must_be_boolean(flag):
    fails(net.sl_mac_prefix_valid, "02:00", require_local=flag, names=[f"require_local {flag!r}", "not a boolean"])


# --------------------------------------------------------------------------
# Overlaps and fit
# --------------------------------------------------------------------------

DISJOINT = [
    {"name": "public", "ip": "10.0.0.2", "size": 100},
    {"name": "private", "first": "10.0.0.102", "last": "10.0.0.200"},
    {"name": "storage", "cidr": "10.0.1.0/24"},
]


def test_disjoint_ranges():
    assert net.sl_overlapping_ranges(DISJOINT) == []
    assert net.sl_ranges_disjoint(DISJOINT) is True


def test_adjacent_ranges_do_not_overlap():
    ranges = [
        {"name": "a", "first": "10.0.0.1", "last": "10.0.0.10"},
        {"name": "b", "ip": "10.0.0.11", "size": 10},
        {"name": "c", "ip": "10.0.0.21", "size": "1"},
    ]
    assert net.sl_overlapping_ranges(ranges) == []


def test_empty_and_single_range_lists():
    assert net.sl_overlapping_ranges([]) == []
    assert net.sl_ranges_disjoint([DISJOINT[0]]) is True


def test_output_of_address_range_can_be_checked_for_overlap():
    public = dict(net.sl_address_range(NET, gateway="10.0.0.1"), name="public")
    extra = dict(net.sl_address_range(NET, first="10.0.0.250", last="10.0.0.254"), name="extra")
    assert net.sl_overlapping_ranges([public, extra]) == [["public", "extra"]]


OVERLAPPING = [
    {"name": "public", "ip": "10.0.0.2", "size": 100},
    {"name": "private", "first": "10.0.0.101", "last": "10.0.0.200"},
    {"name": "site", "cidr": "10.0.0.0/24"},
    {"name": "storage", "cidr": "10.0.1.0/24"},
]


def test_overlapping_pairs_are_listed():
    assert net.sl_overlapping_ranges(OVERLAPPING) == [
        ["public", "private"],
        ["public", "site"],
        ["private", "site"],
    ]


def test_overlapping_accepts_any_iterable():
    assert net.sl_overlapping_ranges(iter(OVERLAPPING[:2])) == [["public", "private"]]


def test_ranges_disjoint_names_both_ranges():
    fails(
        net.sl_ranges_disjoint,
        OVERLAPPING[:2],
        label="site.networks",
        names=[
            "site.networks:",
            "'public' (10.0.0.2-10.0.0.101) and 'private' (10.0.0.101-10.0.0.200)",
        ],
    )


def test_ranges_disjoint_names_every_pair():
    fails(net.sl_ranges_disjoint, OVERLAPPING, names=["'public'", "'private'", "'site'", "'private' (10.0.0.101"])


@pytest.mark.parametrize("func", [net.sl_overlapping_ranges, net.sl_ranges_disjoint])
@pytest.mark.parametrize(
    "ranges, names",
    [
        ("10.0.0.0/24", ["ranges '10.0.0.0/24'", "not a list"]),
        ({"name": "a", "cidr": NET}, ["ranges {'name': 'a'", "not a list"]),
        (None, ["ranges None", "not a list"]),
        (["10.0.0.0/24"], ["ranges[0] '10.0.0.0/24'", "has no name"]),
        ([{"cidr": NET}], ["ranges[0] {'cidr': '10.0.0.0/24'}", "has no name"]),
        ([{"name": "", "cidr": NET}], ["ranges[0]", "has no name"]),
        ([{"name": 7, "cidr": NET}], ["ranges[0] {'name': 7", "has no name"]),
        (
            [{"name": "a", "ip": "10.0.0.1"}],
            ["ranges[a] {'name': 'a', 'ip': '10.0.0.1'}", "ip+size, first+last or cidr"],
        ),
        ([{"name": "a", "ip": "10.0.0.x", "size": 3}], ["ranges[a].ip '10.0.0.x'", "not an IPv4 address"]),
        ([{"name": "a", "ip": "10.0.0.1", "size": 0}], ["ranges[a].size 0", "at least 1"]),
        ([{"name": "a", "ip": "255.255.255.250", "size": 7}], ["ranges[a].size 7", "runs past 255.255.255.255"]),
        ([{"name": "a", "first": "10.0.0.9", "last": "10.0.0.1"}], ["ranges[a].first '10.0.0.9'", "after last"]),
        ([{"name": "a", "first": "10.0.0.1", "last": "x"}], ["ranges[a].last 'x'", "not an IPv4 address"]),
        ([{"name": "a", "cidr": "10.0.0.1/24"}], ["ranges[a].cidr '10.0.0.1/24'", "host bits"]),
    ],
)
def test_range_list_errors(func, ranges, names):
    fails(func, ranges, names=names)


@pytest.mark.parametrize(
    "address_range",
    [
        {"ip": "10.0.0.1", "size": 254},
        {"name": "public", "ip": "10.0.0.2", "size": 253},
        {"first": "10.0.0.10", "last": "10.0.0.20"},
        {"first": "10.0.0.254", "last": "10.0.0.254"},
    ],
)
def test_range_fits(address_range):
    assert net.sl_range_fits(address_range, NET) is True


@pytest.mark.parametrize(
    "address_range, span",
    [
        ({"ip": "10.0.0.0", "size": 10}, "10.0.0.0-10.0.0.9"),
        ({"ip": "10.0.0.1", "size": 255}, "10.0.0.1-10.0.0.255"),
        ({"first": "10.0.1.1", "last": "10.0.1.9"}, "10.0.1.1-10.0.1.9"),
        ({"first": "9.255.255.250", "last": "10.0.0.9"}, "9.255.255.250-10.0.0.9"),
        ({"cidr": "10.0.0.0/25"}, "10.0.0.0-10.0.0.127"),
    ],
)
def test_range_does_not_fit(address_range, span):
    message = fails(
        net.sl_range_fits,
        address_range,
        NET,
        label="networks.public",
        names=["networks.public.range", f"spans {span}", "usable addresses 10.0.0.1-10.0.0.254 of 10.0.0.0/24"],
    )
    assert repr(address_range) in message


@pytest.mark.parametrize(
    "address_range, cidr, names",
    [
        ({"ip": "10.0.0.1", "size": 1}, "10.0.0.0/33", ["cidr '10.0.0.0/33'"]),
        ({"ip": "10.0.0.1", "size": 1}, "10.0.0.0/31", ["cidr '10.0.0.0/31'", "no usable host"]),
        ("10.0.0.1-10.0.0.9", NET, ["range '10.0.0.1-10.0.0.9'", "is not a range"]),
        ({"ip": "10.0.0.1", "size": "many"}, NET, ["range.size 'many'", "not a whole number"]),
    ],
)
def test_range_fits_bad_input(address_range, cidr, names):
    fails(net.sl_range_fits, address_range, cidr, names=names)


# --------------------------------------------------------------------------
# Bridges, host lists, duplicates
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bridge", ["br0", "br-public", "vmbr0.100", "b", "x" * 15, "br_storage", "ééééééé"])
def test_bridge_name_valid(bridge):
    assert net.sl_bridge_name_valid(bridge) is True


@pytest.mark.parametrize(
    "bridge, problem",
    [
        ("", "not a non-empty string"),
        (None, "not a non-empty string"),
        (0, "not a non-empty string"),
        ("x" * 16, "16 bytes long"),
        ("br-public-network", "17 bytes long"),
        ("éééééééé", "16 bytes long"),
        (".", "reserved"),
        ("..", "reserved"),
        ("br/0", "'/'"),
        ("br 0", "' '"),
        ("br\t0", "'\\t'"),
        ("br0\n", "'\\n'"),
        ("br:0", "':'"),
        ("br\x000", "'\\x00'"),
    ],
)
def test_bridge_name_invalid(bridge, problem):
    fails(net.sl_bridge_name_valid, bridge, names=[f"bridge {bridge!r}", problem])


def test_bridge_name_label_replaces_the_field():
    fails(net.sl_bridge_name_valid, "br 0", label="networks.public.bridge", names=["networks.public.bridge 'br 0'"])


NODES = ["10.0.0.11", "10.0.0.12", "10.0.1.13", "192.168.0.14"]


def test_hosts_outside():
    assert net.sl_hosts_outside(NODES, NET) == ["10.0.1.13", "192.168.0.14"]
    assert net.sl_hosts_outside(NODES, "10.0.0.0/16") == ["192.168.0.14"]
    assert net.sl_hosts_outside(NODES, "0.0.0.0/0") == []
    assert net.sl_hosts_outside([], NET) == []


def test_hosts_outside_counts_network_and_broadcast_as_inside():
    assert net.sl_hosts_outside(["10.0.0.0", "10.0.0.255"], NET) == []


def test_hosts_outside_accepts_tuples_and_generators():
    assert net.sl_hosts_outside(tuple(NODES), NET) == ["10.0.1.13", "192.168.0.14"]
    assert net.sl_hosts_outside((ip for ip in NODES), NET) == ["10.0.1.13", "192.168.0.14"]


@pytest.mark.parametrize(
    "addresses, cidr, names",
    [
        (["10.0.0.1", "node2"], NET, ["nfs.addresses[1] 'node2'", "not an IPv4 address"]),
        (["10.0.0.1", None], NET, ["nfs.addresses[1] None", "not an IPv4 address"]),
        ("10.0.0.1", NET, ["nfs.addresses '10.0.0.1'", "not a list"]),
        (NODES, "10.0.0.0", ["nfs.cidr '10.0.0.0'", "CIDR notation"]),
        (NODES, "10.0.0.7/24", ["nfs.cidr '10.0.0.7/24'", "host bits"]),
    ],
)
def test_hosts_outside_errors(addresses, cidr, names):
    fails(net.sl_hosts_outside, addresses, cidr, label="nfs", names=names)


@pytest.mark.parametrize(
    "items, expected",
    [
        ([], []),
        (["br0", "br1"], []),
        (["a", "b", "a", "c", "b", "a"], ["a", "b"]),
        (["b", "a", "a", "b"], ["a", "b"]),
        ([1, 2, 1], [1]),
        ([{"n": 1}, {"n": 2}, {"n": 1}], [{"n": 1}]),
        ((x for x in "abca"), ["a"]),
    ],
)
def test_duplicates(items, expected):
    assert net.sl_duplicates(items) == expected


@pytest.mark.parametrize("items", ["aab", {"a": 1}, None, 5])
def test_duplicates_refuses_non_lists(items):
    fails(net.sl_duplicates, items, label="bridges", names=[f"bridges {items!r}", "not a list"])


# --------------------------------------------------------------------------
# sl_network_errors: every mistake in the site's networks, by kind
# --------------------------------------------------------------------------

PUBLIC = {"name": "public", "bridge": "brpublic", "interface": "eth0", "cidr": "10.89.7.0/24",
          "gateway": "10.89.7.1", "range": {"first": "10.89.7.100", "last": "10.89.7.199"}}
PRIVATE = {"name": "private", "bridge": "brprivate", "interface": "eth1", "cidr": "10.89.8.0/24",
           "leases": ["10.89.8.100", "10.89.8.101"]}
HOSTVARS = {"one": {"site_address": "10.89.7.10"},
            "node1": {"site_address": "10.89.7.21", "site_network_addresses": {"private": "10.89.8.21"}},
            "node2": {"site_address": "10.89.7.22", "site_network_addresses": {"private": "dhcp"}}}


def network_errors(networks, hostvars=None, nodes=(), **kwargs):
    hostvars = HOSTVARS if hostvars is None else hostvars
    return net.sl_network_errors(networks, hostvars, sorted(hostvars), nodes, **kwargs)


def test_good_networks_pass():
    assert network_errors([PUBLIC, PRIVATE], mac_prefix="02:00") == []


def test_the_shipped_site_files_networks_pass_with_their_hosts():
    import yaml

    for site in sorted((REPO / "inventories").iterdir()):
        site_file = yaml.safe_load((site / "group_vars" / "all" / "site.yml").read_text(encoding="utf-8"))
        hosts = {}

        def walk(node):
            for host, hvars in ((node or {}).get("hosts") or {}).items():
                hosts.setdefault(host, {}).update(hvars or {})
            for child in ((node or {}).get("children") or {}).values():
                walk(child)
        walk(yaml.safe_load((site / "hosts.yml").read_text(encoding="utf-8"))["all"])
        assert network_errors(site_file["site_networks"], hosts, mac_prefix=site_file["site_mac_prefix"]) == [], site


@pytest.mark.parametrize("broken, words", [
    (dict(PUBLIC, bridge=None), ["site_networks[public] needs a name, a bridge, a cidr and either a range or leases"]),
    ({k: v for k, v in PUBLIC.items() if k != "range"}, ["site_networks[public] needs", "range or leases"]),
    ("public", ["site_networks[0] needs"]),
    (dict(PUBLIC, bridge="brpublic-network"), ["site_networks[public].bridge 'brpublic-network'", "at most 15"]),
    (dict(PUBLIC, bridge="br public"), ["site_networks[public].bridge", "whitespace"]),
    (dict(PUBLIC, cidr="10.89.7.5/24"), ["site_networks[public].cidr '10.89.7.5/24'", "host bits"]),
    (dict(PUBLIC, cidr="10.89.7.0"), ["site_networks[public].cidr", "CIDR"]),
    (dict(PUBLIC, range={"first": "10.89.9.100", "last": "10.89.9.199"}),
     ["site_networks[public].range.first", "outside"]),
    (dict(PUBLIC, range={"first": "10.89.7.199", "last": "10.89.7.100"}),
     ["site_networks[public].range.first", "comes after"]),
    (dict(PUBLIC, range={"first": "10.89.7.1", "last": "10.89.7.9"}), ["site_networks[public].range.first", "gateway"]),
    (dict(PUBLIC, range={"size": 1000}), ["site_networks[public].range.size 1000", "does not fit"]),
    (dict(PUBLIC, range="10.89.7.100-199"), ["site_networks[public].range", "not a mapping"]),
    (dict(PUBLIC, gateway="10.89.9.1"), ["site_networks[public].gateway '10.89.9.1' is outside"]),
    (dict(PUBLIC, gateway="10.89.7.255"), ["site_networks[public].gateway '10.89.7.255' is the broadcast"]),
    (dict(PRIVATE, leases=["10.89.8.100", "10.89.9.7"]), ["site_networks[private].leases[1] '10.89.9.7' is outside"]),
    (dict(PRIVATE, leases=["10.89.8.255"]), ["site_networks[private].leases[0]", "broadcast"]),
    (dict(PRIVATE, leases=["10.89.8.1"], gateway="10.89.8.1"),
     ["site_networks[private].leases[0] '10.89.8.1' is the gateway"]),
    (dict(PRIVATE, leases="10.89.8.100"), ["site_networks[private].leases '10.89.8.100' is not a list"]),
])
def test_every_bad_network_is_refused_naming_the_field(broken, words):
    networks = [broken] if not isinstance(broken, dict) or broken.get("name") != "public" else [broken, PRIVATE]
    if isinstance(broken, dict) and broken.get("name") == "private":
        networks = [PUBLIC, broken]
    found = network_errors(networks)
    assert len(found) == 1, found
    for word in words:
        assert word in found[0], found[0]
    assert found[0].endswith(".")


def test_a_name_used_twice_is_refused():
    found = network_errors([PUBLIC, dict(PRIVATE, name="public")])
    assert found == ["site_networks names the networks ['public'] more than once."]


@pytest.mark.parametrize("other, shared", [
    (dict(PRIVATE, cidr="10.89.7.0/24", leases=["10.89.7.150"]), "site_networks[private].leases 10.89.7.150"),
    (dict(PRIVATE, cidr="10.89.7.0/24", leases=None, range={"first": "10.89.7.190", "last": "10.89.7.210"}),
     "site_networks[private].range (10.89.7.190-10.89.7.210)"),
])
def test_ranges_and_leases_that_share_addresses_are_refused(other, shared):
    other = {k: v for k, v in other.items() if v is not None}
    found = network_errors([PUBLIC, other])
    assert len(found) == 1 and "site_networks[public].range (10.89.7.100-10.89.7.199) and " + shared in found[0], found
    assert "share addresses" in found[0]


@pytest.mark.parametrize("host, variable, address", [
    ("node1", "site_address", "10.89.7.150"),
    ("one", "site_address", "10.89.7.100"),
    ("node1", "site_network_addresses.private", "10.89.8.101"),
    ("node2", "site_network_addresses.public", "10.89.7.199"),
])
def test_a_vm_range_or_lease_holding_a_hosts_address_is_refused(host, variable, address):
    hostvars = {name: {k: (dict(v) if isinstance(v, dict) else v) for k, v in hvars.items()}
                for name, hvars in HOSTVARS.items()}
    if variable == "site_address":
        hostvars[host]["site_address"] = address
    else:
        hostvars[host].setdefault("site_network_addresses", {})[variable.split(".")[1]] = address
    found = network_errors([PUBLIC, PRIVATE], hostvars)
    assert len(found) == 1 and "holds %s, the %s of %s" % (address, variable, host) in found[0], found
    assert "OpenNebula would lease that address to a VM" in found[0]


@pytest.mark.parametrize("prefix, words", [("02-00", ["site_mac_prefix '02-00'", "two hex octets"]),
                                           ("01:00", ["site_mac_prefix '01:00'", "multicast"])])
def test_a_bad_mac_prefix_is_refused(prefix, words):
    found = network_errors([PUBLIC, PRIVATE], mac_prefix=prefix)
    assert len(found) == 1, found
    for word in words:
        assert word in found[0]


@pytest.mark.parametrize("own, missing", [
    ([PUBLIC], "node node9 has no bridge brprivate for site_networks[private]"),
    ([dict(PUBLIC, bridge="br0"), PRIVATE], "node node9 has no bridge brpublic for site_networks[public]"),
    ("public", "node node9 has no bridge brpublic"),
])
def test_a_node_without_every_bridge_is_refused(own, missing):
    hostvars = dict(HOSTVARS, node9={"site_networks": own})
    found = net.sl_network_errors([PUBLIC, PRIVATE], hostvars, ["one"], ["node9"])
    assert len(found) == 1 and missing in found[0] and "host_vars" in found[0], found


def test_every_network_mistake_is_reported_at_once_with_the_prefix():
    found = network_errors([dict(PUBLIC, bridge="brpublic-network"), dict(PRIVATE, leases=["10.89.9.7"])],
                           mac_prefix="01:00", prefix="frontend: ")
    assert len(found) == 3 and all(message.startswith("frontend: ") for message in found), found


@pytest.mark.parametrize("networks, count, words", [
    (["10.1.0.0/16", "192.168.10.0/24"], 0, []),
    (["10.9.0.5/24"], 1, ["item 0 '10.9.0.5/24'", "host bits"]),
    (["10.9.0.0/24", "clients"], 1, ["item 1 'clients'", "CIDR"]),
    (["0.0.0.0/0"], 1, ["item 0 '0.0.0.0/0' is a /0", "open proxy"]),
    (["10.9.0.0"], 1, ["item 0", "CIDR"]),
    ([None, 10], 2, ["item 0 None", "item 1 10"]),
])
def test_cidr_errors(networks, count, words):
    found = net.sl_cidr_errors(networks, label="allowed", prefix="squid: ")
    assert len(found) == count, found
    text = "\n".join(found)
    for word in words:
        assert word in text, text
    assert all(message.startswith("squid: allowed item ") for message in found)


def test_cidr_errors_need_a_list():
    fails(net.sl_cidr_errors, "10.0.0.0/8", label="allowed", names=["allowed '10.0.0.0/8' is not a list"])


# --------------------------------------------------------------------------
# Missing netaddr, FilterModule, loading through Ansible
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "func, args",
    [
        (net.sl_address_range, (NET,)),
        (net.sl_ip_to_mac, ("10.0.0.1",)),
        (net.sl_range_fits, ({"ip": "10.0.0.1", "size": 1}, NET)),
        (net.sl_hosts_outside, (NODES, NET)),
    ],
)
def test_missing_netaddr_says_to_install_it(monkeypatch, func, args):
    monkeypatch.setattr(net, "netaddr", None)
    fails(func, *args, names=["'netaddr' is not installed", "pip install netaddr"])


def test_filter_module_exposes_every_filter():
    filters = net.FilterModule().filters()
    assert sorted(filters) == [
        "sl_address_range",
        "sl_bridge_name_valid",
        "sl_cidr_errors",
        "sl_duplicates",
        "sl_hosts_outside",
        "sl_ip_to_mac",
        "sl_mac_prefix_valid",
        "sl_network_errors",
        "sl_overlapping_ranges",
        "sl_range_fits",
        "sl_ranges_disjoint",
        "sl_vnet_spec",
    ]
    assert all(name == func.__name__ for name, func in filters.items())


def test_vnet_spec_of_a_ranged_and_a_fixed_network():
    ranged = {"name": "public", "bridge": "br0", "cidr": "10.0.0.0/24", "gateway": "10.0.0.1",
              "range": {"first": "10.0.0.100", "size": 50}}
    assert net.sl_vnet_spec(ranged) == {
        "name": "public", "vn_mad": "bridge", "bridge": "br0",
        "template": {"NETWORK_ADDRESS": "10.0.0.0", "NETWORK_MASK": "255.255.255.0",
                     "DESCRIPTION": "StratusLab site network public", "GATEWAY": "10.0.0.1"},
        "address_ranges": [{"type": "IP4", "ip": "10.0.0.100", "size": 50}]}
    fixed = {"name": "lab", "bridge": "br1", "cidr": "192.168.4.0/22", "leases": ["192.168.4.10"]}
    spec = net.sl_vnet_spec(fixed)
    assert spec["template"]["NETWORK_MASK"] == "255.255.252.0" and "GATEWAY" not in spec["template"]
    assert spec["fixed_leases"] == ["192.168.4.10"] and "address_ranges" not in spec


def test_vnet_spec_refuses_a_bad_network_naming_it():
    fails(net.sl_vnet_spec, {"name": "public", "bridge": "br0"}, names=["needs a name, a bridge and a cidr"])
    fails(net.sl_vnet_spec, {"name": "public", "bridge": "br0", "cidr": "10.0.0.0/24",
                             "range": {"first": "10.0.1.5"}}, names=["site_networks[public].first", "10.0.1.5"])


ANSIBLE = Path(sys.executable).parent / "ansible"


def run_ansible(expression):
    """Evaluate a Jinja expression with `ansible localhost -m debug` from the repo root."""
    env = dict(
        os.environ,
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.oneline",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
        ANSIBLE_NOCOLOR="true",
    )
    command = [str(ANSIBLE), "localhost", "-m", "debug", "-a", "msg={{ " + expression + " }}"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def debug_msg(result):
    """The msg of a oneline `debug` result."""
    assert result.returncode == 0, result.stdout + result.stderr
    payload = result.stdout.split("=>", 1)[1].strip()
    return json.loads(payload)["msg"]


needs_ansible = pytest.mark.skipif(not ANSIBLE.exists(), reason=f"{ANSIBLE} not installed")


@needs_ansible
def test_plugin_loads_through_ansible():
    assert debug_msg(run_ansible("'10.0.0.10' | sl_ip_to_mac('02:00')")) == "02:00:0a:00:00:0a"


@needs_ansible
def test_keyword_arguments_and_lazy_lists_through_ansible():
    expression = (
        "{'range': '10.0.0.0/24' | sl_address_range(gateway='10.0.0.1', label='networks.public'),"
        " 'outside': ['10.0.0.3', '10.0.9.3'] | map('string') | sl_hosts_outside('10.0.0.0/24'),"
        " 'bridge': 'br0' | sl_bridge_name_valid}"
    )
    assert debug_msg(run_ansible(expression)) == {
        "range": {"type": "IP4", "ip": "10.0.0.2", "size": 253},
        "outside": ["10.0.9.3"],
        "bridge": True,
    }


@needs_ansible
def test_errors_surface_through_ansible():
    result = run_ansible("'br with space' | sl_bridge_name_valid(label='networks.public.bridge')")
    assert result.returncode != 0
    assert "sl_bridge_name_valid: networks.public.bridge 'br with space'" in result.stdout + result.stderr


def test_loading_the_plugin_does_not_import_netaddr():
    """Ansible loads every filter file in each task's worker: netaddr waits for a filter that needs it."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import stratuslab_net as net; "
        "loaded = 'netaddr' in sys.modules; net.sl_ip_to_mac('10.0.0.1'); "
        "print(loaded, 'netaddr' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(REPO / "filter_plugins")], check=True, capture_output=True, text=True
    ).stdout.split()
    assert out == ["False", "True"]
