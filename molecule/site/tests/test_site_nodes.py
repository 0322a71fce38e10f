"""The core site seen from the KVM nodes, after the whole site.yml.

The front-end's view (API, cluster, vnets, datastores) is checked by
test_frontend.py. Here: what the nodes
add to it, observed from outside the roles: bridges carrying traffic between
nodes, libvirt offering KVM, and the front-end's oneadmin reaching every
node over SSH without a prompt.
"""

import json

import pytest
import stratuslab_testinfra

testinfra_hosts = stratuslab_testinfra.hosts("nodes")

NODES = stratuslab_testinfra.names("nodes")
FRONTEND = stratuslab_testinfra.names("frontend")[0]
DOMAIN = "demo.stratuslab.test"  # inventories/demo: site_domain
BRIDGES = {"public": "brpublic", "private": "brprivate"}  # site_networks
NICS = {"brpublic": "eth0", "brprivate": "eth1"}  # molecule.yml: interface_name
GATEWAY = "10.89.7.1"  # the demo public podman network's gateway


def _me(host):
    return host.check_output("hostname")


def _private_address(name):
    return stratuslab_testinfra.hostvars(name)["site_network_addresses"]["private"]


@pytest.mark.parametrize("bridge", sorted(BRIDGES.values()))
def test_bridge_is_up_with_its_port(host, bridge):
    link = host.run("ip -o link show dev %s", bridge)
    assert link.rc == 0, link.stderr
    assert "state UP" in link.stdout or "LOWER_UP" in link.stdout
    ports = host.check_output("ls /sys/class/net/%s/brif", bridge).split()
    assert ports, "no interface enslaved to %s" % bridge


def test_private_address_is_on_the_private_bridge(host):
    addresses = host.check_output("ip -o -4 addr show dev %s", BRIDGES["private"])
    assert _private_address(_me(host)) + "/" in addresses


def test_nodes_reach_each_other_across_the_private_bridges(host):
    me = _me(host)
    for peer in NODES:
        if peer == me:
            continue
        ping = host.run("ping -c2 -W2 -I %s %s", BRIDGES["private"], _private_address(peer))
        assert ping.rc == 0, ping.stdout + ping.stderr


def test_libvirt_offers_kvm_on_its_socket_only(host):
    caps = host.run("virsh -c qemu:///system capabilities")
    assert caps.rc == 0, caps.stderr
    assert "<domain type='kvm'" in caps.stdout
    assert not host.socket("tcp://0.0.0.0:16509").is_listening
    assert not host.socket("tcp://0.0.0.0:16514").is_listening


def test_libvirt_units_as_the_role_keeps_them(host):
    # kvm_node keeps these six units (tasks/service.yml); read back from systemd.
    for unit in ("libvirtd-tcp.socket", "libvirtd-tls.socket"):
        assert host.run("systemctl is-enabled %s", unit).stdout.strip() == "masked", unit
        assert host.run("systemctl is-active %s", unit).stdout.strip() == "inactive", unit
    for unit in ("libvirtd.socket", "libvirtd-ro.socket", "libvirtd-admin.socket"):
        state = host.run("systemctl show -p UnitFileState,ActiveState,NeedDaemonReload %s", unit).stdout.split()
        assert sorted(state) == ["ActiveState=active", "NeedDaemonReload=no", "UnitFileState=enabled"], unit
    assert host.run("systemctl is-enabled libvirtd.service").stdout.strip() == "enabled"
    # The drop-in's group and mode are on the socket: systemd read the drop-in.
    sock = host.file("/run/libvirt/libvirt-sock")
    assert sock.is_socket and sock.group == "oneadmin" and sock.mode == 0o660


def test_frontend_oneadmin_reaches_the_node_without_a_prompt(host):
    frontend = host.get_host(stratuslab_testinfra.hosts("frontend")[0])
    for target in (_me(host), "%s.%s" % (_me(host), DOMAIN)):
        ssh = frontend.run("runuser -u oneadmin -- ssh -o BatchMode=yes %s true", target)
        assert ssh.rc == 0, ssh.stderr


@pytest.mark.parametrize("bridge", sorted(NICS))
def test_the_nic_lends_the_bridge_its_mac_and_keeps_no_address(host, bridge):
    links = {link["ifname"]: link for link in json.loads(host.check_output("ip -json address show"))}
    nic = NICS[bridge]
    assert links[nic].get("master") == bridge
    assert not [a for a in links[nic]["addr_info"] if a["family"] == "inet"], "%s kept an address" % nic
    # A DHCP server or a switch's port security sees the same MAC as before.
    assert links[bridge]["address"] == links[nic]["address"]


@pytest.mark.parametrize("bridge", sorted(NICS))
def test_networkd_manages_the_bridge(host, bridge):
    assert host.service("systemd-networkd").is_enabled
    state = host.check_output("networkctl list --no-legend --no-pager %s", bridge)
    assert "configured" in state, state


def test_default_route_moved_onto_the_public_bridge(host):
    routes = json.loads(host.check_output("ip -json -4 route show default"))
    assert any(r["dev"] == "brpublic" and r.get("gateway") == GATEWAY for r in routes), routes
    assert not any(r["dev"] in NICS.values() for r in routes), routes


def test_opennebula_directories_belong_to_oneadmin(host):
    for path in ("/var/lib/one", "/var/lib/one/datastores"):
        d = host.file(path)
        assert d.is_directory and d.user == "oneadmin" and d.group == "oneadmin", path


def test_node_knows_the_frontend_host_key(host):
    known = host.file("/var/lib/one/.ssh/known_hosts")
    assert known.user == "oneadmin"
    assert known.contains("^%s[ ,].*ssh-ed25519 " % FRONTEND)


def test_no_unit_failed(host):
    assert host.run("systemctl --failed --no-legend --plain").stdout.strip() == ""
