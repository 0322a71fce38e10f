"""What a site administrator observes on the front-end after the frontend role.

The site runs the real OpenNebula 7.4.0, installed from the signed local
repository of packages built from OpenNebula's source
(tools/opennebula/build-packages), as a real site installs it from
OpenNebula's own repository. The API is asked from the front-end itself,
with Python's xmlrpc.client, and with OpenNebula's CLI as oneadmin.
"""

import ipaddress
import json

import pytest
import stratuslab_testinfra

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

# inventories/demo/group_vars/all/site.yml
PASSWORD = "demo-oneadmin-secret"
CLUSTER = "demo"
MAC_PREFIX = "02:00"
NODES = stratuslab_testinfra.names("nodes")
DATASTORES_DIR = "/var/lib/one/datastores"
TM_MAD = "ssh"  # site_image_sharing: ssh
RANGED = {"name": "public", "bridge": "brpublic", "first": "10.89.7.100", "size": 100}
FIXED = {"name": "private", "bridge": "brprivate", "leases": ["10.89.8.100", "10.89.8.101", "10.89.8.102"]}

# Runs on the front-end: one XML-RPC call, printed as JSON.
CALL = r"""
import json, sys, xmlrpc.client
method, session, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
proxy = xmlrpc.client.ServerProxy("http://127.0.0.1:2633/RPC2")
print(json.dumps(getattr(proxy, method)(session, *params)))
"""


def one_call(host, method, *params, password=PASSWORD):
    cmd = host.run("python3 -c %s %s %s %s", CALL, method, "oneadmin:" + password, json.dumps(params))
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)


def one_xml(host, method, *params):
    import xml.etree.ElementTree as ET

    answer = one_call(host, method, *params)
    assert answer[0] is True, answer
    return ET.fromstring(answer[1])


def mac_of(ip, prefix=MAC_PREFIX):
    return prefix + "".join(":%02x" % octet for octet in ipaddress.IPv4Address(ip).packed)


def test_api_answers_with_the_site_password(host):
    answer = one_call(host, "one.system.version")
    assert answer[0] is True
    assert answer[1] == "7.4.0"


def test_api_refuses_a_wrong_password(host):
    answer = one_call(host, "one.system.version", password="not-the-password")
    assert answer[0] is False
    assert answer[2] == 256  # AUTHENTICATION


def test_api_listens_on_every_address_port_2633(host):
    assert host.socket("tcp://0.0.0.0:2633").is_listening


def test_opennebula_runs_as_oneadmin_started_at_boot(host):
    assert host.service("opennebula").is_running
    assert host.run("systemctl is-enabled opennebula").stdout.splitlines()[0] == "enabled"
    assert "multi-user.target" in host.run("systemctl show -p WantedBy --value opennebula").stdout.split()
    for daemon in ("oned", "onemonitord"):
        assert host.run("pgrep -u oneadmin -x %s", daemon).rc == 0, "%s is not running as oneadmin" % daemon


def test_packages_come_from_the_site_repository_signed(host):
    for package in ("opennebula", "opennebula-tools", "opennebula-common"):
        version = host.run("dpkg-query -W -f '${Version}' %s", package)
        assert version.rc == 0 and version.stdout.startswith("7.4.0"), package
    source = host.file("/etc/apt/sources.list.d/opennebula.sources").content_string
    assert "URIs: file:///srv/stratuslab-one-repo" in source
    assert "Signed-By: /srv/stratuslab-one-repo/stratuslab-test-archive.asc" in source
    assert "Trusted" not in source
    policy = host.check_output("apt-cache policy opennebula")
    assert "file:/srv/stratuslab-one-repo stable/opennebula" in policy


def test_cli_answers_as_oneadmin(host):
    hosts = host.run("runuser -u oneadmin -- onehost list --json")
    assert hosts.rc == 0, hosts.stderr
    names = {h["NAME"] for h in _as_list(json.loads(hosts.stdout)["HOST_POOL"].get("HOST"))}
    assert set(NODES) <= names


def _as_list(value):
    return value if isinstance(value, list) else ([value] if value else [])


def test_one_auth_is_private_to_oneadmin(host):
    auth = host.file("/var/lib/one/.one/one_auth")
    assert auth.user == "oneadmin"
    assert auth.group == "oneadmin"
    assert auth.mode == 0o600
    assert auth.content_string == "oneadmin:%s\n" % PASSWORD


def test_oneadmin_ssh_key_pair_where_kvm_node_reads_it(host):
    private = host.file("/var/lib/one/.ssh/id_ed25519")
    public = host.file("/var/lib/one/.ssh/id_ed25519.pub")
    assert private.user == "oneadmin" and private.mode == 0o600
    assert public.exists and public.content_string.startswith("ssh-ed25519 ")


@pytest.mark.parametrize("line", [
    'MAC_PREFIX = "02:00"',
    'LISTEN_ADDRESS = "0.0.0.0"',
    "PORT = 2633",
    'BACKEND = "sqlite"',
    'DATASTORE_LOCATION = "/var/lib/one/datastores"',
    'ARGUMENTS  = "-t 15 -d dummy,ssh"',
    'NAME         = "ssh"',
])
def test_oned_conf_follows_the_site_file(host, line):
    conf = host.file("/etc/one/oned.conf")
    assert conf.user == "root" and conf.group == "oneadmin" and conf.mode == 0o640
    assert line in conf.content_string


def test_oned_conf_has_no_shared_driver_with_ssh_sharing(host):
    content = host.file("/etc/one/oned.conf").content_string
    assert content.startswith("#")  # ansible_managed
    assert '"shared"' not in content and ",shared" not in content


def test_monitord_conf_monitors_the_nodes_with_the_kvm_probes(host):
    conf = host.file("/etc/one/monitord.conf")
    assert conf.user == "root" and conf.group == "oneadmin" and conf.mode == 0o640
    assert 'ARGUMENTS     = "-r 3 -t 15 -w 90 kvm"' in conf.content_string
    assert host.socket("udp://0.0.0.0:4124").is_listening


def test_vm_mad_takes_the_site_domain_type(host):
    # inventories/demo: site_kvm_domain_type qemu (this machine's /dev/kvm runs no stock guest)
    assert 'TYPE              = "qemu"' in host.file("/etc/one/oned.conf").content_string


def _cluster(host):
    pool = one_xml(host, "one.clusterpool.info")
    clusters = [c for c in pool.findall("CLUSTER") if c.findtext("NAME") == CLUSTER]
    assert len(clusters) == 1, "cluster %s missing" % CLUSTER
    return clusters[0]


def test_cluster_holds_every_node_monitored(host):
    cluster_hosts = {int(e.text) for e in _cluster(host).findall("HOSTS/ID")}
    pool = one_xml(host, "one.hostpool.info")
    by_name = {h.findtext("NAME"): h for h in pool.findall("HOST")}
    for node in NODES:
        assert node in by_name, "%s not registered" % node
        entry = by_name[node]
        assert int(entry.findtext("ID")) in cluster_hosts
        assert entry.findtext("STATE") == "2"  # MONITORED
        assert entry.findtext("IM_MAD") == "kvm" and entry.findtext("VM_MAD") == "kvm"


def test_nodes_report_their_real_cpu_and_memory(host):
    # oned's own monitoring over SSH: the node's probes report what the node has.
    pool = one_xml(host, "one.hostpool.info")
    for node in pool.findall("HOST"):
        if node.findtext("NAME") not in NODES:
            continue
        node_host = host.get_host(stratuslab_testinfra.hosts(node.findtext("NAME"))[0])
        cores = int(node_host.check_output("nproc --all"))
        mem_kb = int(node_host.check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo"))
        assert int(node.findtext("HOST_SHARE/TOTAL_CPU")) == cores * 100
        assert abs(int(node.findtext("HOST_SHARE/TOTAL_MEM")) - mem_kb) <= mem_kb // 10
        assert node.findtext("TEMPLATE/HYPERVISOR") == "kvm"


def _vnet(host, name):
    pool = one_xml(host, "one.vnpool.info", -2, -1, -1)
    ids = [int(v.findtext("ID")) for v in pool.findall("VNET") if v.findtext("NAME") == name]
    assert len(ids) == 1, "virtual network %s: %d found" % (name, len(ids))
    return one_xml(host, "one.vn.info", ids[0])


def test_ranged_network_has_the_site_range_and_macs(host):
    vnet = _vnet(host, RANGED["name"])
    assert vnet.findtext("BRIDGE") == RANGED["bridge"]
    assert vnet.findtext("VN_MAD") == "bridge"
    ars = vnet.findall("AR_POOL/AR")
    assert len(ars) == 1
    assert ars[0].findtext("IP") == RANGED["first"]
    assert int(ars[0].findtext("SIZE")) == RANGED["size"]
    assert ars[0].findtext("MAC").lower() == mac_of(RANGED["first"])
    assert vnet.findtext("TEMPLATE/GATEWAY") == "10.89.7.1"
    assert vnet.findtext("TEMPLATE/NETWORK_MASK") == "255.255.255.0"
    assert int(_cluster(host).findtext("ID")) in {int(e.text) for e in vnet.findall("CLUSTERS/ID")}


def test_fixed_network_has_one_lease_per_address(host):
    vnet = _vnet(host, FIXED["name"])
    assert vnet.findtext("BRIDGE") == FIXED["bridge"]
    ars = sorted(vnet.findall("AR_POOL/AR"), key=lambda ar: ipaddress.IPv4Address(ar.findtext("IP")))
    assert [ar.findtext("IP") for ar in ars] == FIXED["leases"]
    assert all(ar.findtext("SIZE") == "1" for ar in ars)
    assert [ar.findtext("MAC").lower() for ar in ars] == [mac_of(ip) for ip in FIXED["leases"]]


@pytest.mark.parametrize("name,ds_type", [("demo-system", "1"), ("demo-images", "0")])
def test_datastores_use_the_site_transfer_driver(host, name, ds_type):
    pool = one_xml(host, "one.datastorepool.info")
    found = [d for d in pool.findall("DATASTORE") if d.findtext("NAME") == name]
    assert len(found) == 1, "datastore %s missing" % name
    ds = found[0]
    assert ds.findtext("TM_MAD") == TM_MAD
    assert ds.findtext("TYPE") == ds_type
    assert ds.findtext("BASE_PATH").startswith(DATASTORES_DIR + "/")
    assert int(_cluster(host).findtext("ID")) in {int(e.text) for e in ds.findall("CLUSTERS/ID")}


def test_no_unit_failed(host):
    assert host.run("systemctl --failed --no-legend --plain").stdout.strip() == ""
