"""What a site administrator observes on the KVM nodes after playbooks/nodes.yml."""

import json

import pytest
import stratuslab_testinfra

testinfra_hosts = stratuslab_testinfra.hosts("nodes")

# molecule/nodes/host_vars and the demo site file's site_networks.
PRIVATE = {"nd-node1": "10.89.8.62", "nd-node2": "10.89.8.63"}
PUBLIC = {"nd-node1": "10.89.7.62", "nd-node2": "10.89.7.63"}
BRIDGES = {"brpublic": ("eth0", PUBLIC), "brprivate": ("eth1", PRIVATE)}
LIBVIRT_TCP_PORTS = (16509, 16514)


def _links(host):
    return {link["ifname"]: link for link in json.loads(host.check_output("ip -json address show"))}


def _name(host):
    return host.check_output("hostname")


@pytest.mark.parametrize("bridge", sorted(BRIDGES))
def test_bridge_is_up_with_the_address_and_the_nic_enslaved(host, bridge):
    nic, addresses = BRIDGES[bridge]
    links = _links(host)
    assert bridge in links, "no bridge %s" % bridge
    assert "UP" in links[bridge]["flags"]
    ipv4 = [a["local"] for a in links[bridge]["addr_info"] if a["family"] == "inet"]
    assert ipv4 == [addresses[_name(host)]]
    assert links[nic].get("master") == bridge
    assert not [a for a in links[nic]["addr_info"] if a["family"] == "inet"], "%s kept an address" % nic
    # The bridge keeps the NIC's MAC: a DHCP server sees the same client.
    assert links[bridge]["address"] == links[nic]["address"]


def test_bridges_survive_in_the_network_stack(host):
    assert host.service("systemd-networkd").is_enabled
    for bridge, (nic, _) in BRIDGES.items():
        state = host.check_output("networkctl list --no-legend --no-pager %s", bridge)
        assert "configured" in state, state
        assert host.file("/etc/systemd/network/05-stratuslab-%s.network" % nic).contains("^Bridge=%s$" % bridge)


def test_default_route_moved_onto_the_public_bridge(host):
    routes = json.loads(host.check_output("ip -json -4 route show default"))
    assert any(r["dev"] == "brpublic" and r["gateway"] == "10.89.7.1" for r in routes), routes
    assert not any(r["dev"] in ("eth0", "eth1") for r in routes), routes


@pytest.mark.parametrize("peer", sorted(PRIVATE))
def test_nodes_reach_each_other_over_the_private_bridge(host, peer):
    ping = host.run("ping -c2 -W2 -I brprivate %s", PRIVATE[peer])
    assert ping.rc == 0, ping.stdout + ping.stderr


def test_libvirt_listens_only_on_its_unix_socket(host):
    listening = host.check_output("ss -Htlnp")
    for port in LIBVIRT_TCP_PORTS:
        assert ":%d " % port not in listening, listening
    for unit in ("libvirtd-tcp.socket", "libvirtd-tls.socket"):
        assert host.run("systemctl is-enabled %s", unit).stdout.strip() == "masked"
    sock = host.file("/run/libvirt/libvirt-sock")
    assert sock.is_socket
    assert sock.group == "oneadmin"
    assert sock.mode == 0o660


def test_oneadmin_uses_libvirt_and_kvm_is_offered(host):
    caps = host.run("runuser -u oneadmin -- virsh -c qemu:///system capabilities")
    assert caps.rc == 0, caps.stderr
    assert "<domain type='kvm'" in caps.stdout


DOMAIN = """<domain type='kvm'>
  <name>nd-probe</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>
"""


def test_a_kvm_domain_starts_as_oneadmin(host):
    # /dev/kvm here is PVM, which cannot boot a stock guest: a domain with no
    # disk proves qemu starts with KVM acceleration under libvirt.
    virsh = "runuser -u oneadmin -- virsh -c qemu:///system "
    host.run("printf %s > /tmp/nd-probe.xml", DOMAIN)
    try:
        defined = host.run(virsh + "define /tmp/nd-probe.xml")
        assert defined.rc == 0, defined.stderr
        started = host.run(virsh + "start nd-probe")
        assert started.rc == 0, started.stderr
        assert host.check_output(virsh + "domstate nd-probe") == "running"
        assert host.run("pgrep -u oneadmin -f 'accel kvm|accel=kvm'").rc == 0
    finally:
        host.run(virsh + "destroy nd-probe")
        host.run(virsh + "undefine nd-probe")
    assert host.run(virsh + "dominfo nd-probe").rc != 0


def test_opennebula_directories_belong_to_oneadmin(host):
    for path in ("/var/lib/one", "/var/lib/one/datastores"):
        d = host.file(path)
        assert d.is_directory and d.user == "oneadmin" and d.group == "oneadmin"


def test_frontend_oneadmin_reaches_the_node_without_a_prompt(host):
    # Run from the front-end container: oneadmin there, by the node's name.
    frontend = host.get_host("podman://nd-one")
    for target in (_name(host), "%s.demo.stratuslab.test" % _name(host)):
        ssh = frontend.run("runuser -u oneadmin -- ssh -o BatchMode=yes %s true", target)
        assert ssh.rc == 0, ssh.stderr


def test_node_knows_the_frontend_host_key(host):
    known = host.file("/var/lib/one/.ssh/known_hosts")
    assert known.user == "oneadmin"
    assert known.contains("^nd-one ssh-ed25519 ")


def test_no_unit_failed(host):
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert failed == ""
