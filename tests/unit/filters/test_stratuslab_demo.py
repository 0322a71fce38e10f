"""Unit tests of filter_plugins/stratuslab_demo.py (run: .venv/bin/pytest tests/unit/filters -q)."""

import doctest

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from filter_testlib import REPO, load_plugin

demo = load_plugin("stratuslab_demo")
NETS = [
    {"podman_network": "pub", "site_network": "public", "subnet": "10.89.7.0/24"},
    {"podman_network": "priv", "site_network": "private", "subnet": "10.89.8.0/24"},
    {"podman_network": "stor", "site_network": "storage", "subnet": "10.89.9.0/24"},
]


def test_first_network_only():
    assert demo.sl_demo_attach(NETS, "10.89.7.10") == ["pub:ip=10.89.7.10,interface_name=eth0"]
    assert demo.sl_demo_attach(NETS, "10.89.7.10", {}) == ["pub:ip=10.89.7.10,interface_name=eth0"]
    assert demo.sl_demo_attach(NETS, "10.89.7.10", None) == ["pub:ip=10.89.7.10,interface_name=eth0"]


def test_other_networks_in_demo_networks_order_not_in_mapping_order():
    got = demo.sl_demo_attach(NETS, "10.89.7.21", {"storage": "10.89.9.21", "private": "10.89.8.21"})
    assert got == ["pub:ip=10.89.7.21,interface_name=eth0",
                   "priv:ip=10.89.8.21,interface_name=eth1",
                   "stor:ip=10.89.9.21,interface_name=eth2"]


def test_a_skipped_network_leaves_no_gap_in_interface_names():
    got = demo.sl_demo_attach(NETS, "10.89.7.22", {"storage": "10.89.9.22"})
    assert got == ["pub:ip=10.89.7.22,interface_name=eth0", "stor:ip=10.89.9.22,interface_name=eth1"]


def test_addresses_on_networks_the_demo_does_not_have_are_not_attached():
    got = demo.sl_demo_attach(NETS[:2], "10.89.7.5", {"public": "10.0.0.1", "mgmt": "10.1.0.5"})
    assert got == ["pub:ip=10.89.7.5,interface_name=eth0"]


def test_demo_inventory():
    """The demo inventory's own hosts get the attachments the demo README and scenarios expect."""
    inv = yaml.safe_load((REPO / "inventories" / "demo" / "hosts.yml").read_text())["all"]
    nets = inv["vars"]["demo_networks"]
    node1 = inv["children"]["nodes"]["hosts"]["node1"]
    assert demo.sl_demo_attach(nets, node1["site_address"], node1["site_network_addresses"]) == [
        "stratuslab-demo-public:ip=10.89.7.21,interface_name=eth0",
        "stratuslab-demo-private:ip=10.89.8.21,interface_name=eth1"]
    one = inv["children"]["frontend"]["hosts"]["one"]
    assert demo.sl_demo_attach(nets, one["site_address"]) == [
        "stratuslab-demo-public:ip=10.89.7.10,interface_name=eth0"]


@pytest.mark.parametrize(
    "args, words",
    [
        (([], "10.0.0.1"), "demo_networks [] is not a non-empty list"),
        (("pub", "10.0.0.1"), "demo_networks 'pub' is not a non-empty list"),
        ((["pub"], "10.0.0.1"), "demo_networks[0] 'pub' is not a dict"),
        (([{"podman_network": "pub"}], "10.0.0.1"), "demo_networks[0].site_network is missing"),
        ((NETS, ""), "site_address '' is not an address"),
        ((NETS, None), "site_address None is not an address"),
        ((NETS, "10.0.0.1", ["private"]), "site_network_addresses ['private'] is not a dict"),
    ],
)
def test_bad_input_names_the_field(args, words):
    with pytest.raises(AnsibleFilterError) as err:
        demo.sl_demo_attach(*args)
    assert str(err.value).startswith("sl_demo_attach: ")
    assert words in str(err.value)


def test_filter_module_and_doctests():
    assert demo.FilterModule().filters() == {"sl_demo_attach": demo.sl_demo_attach}
    failed, tried = doctest.testmod(demo)
    assert tried >= 2 and failed == 0
