"""The site firewall, seen from outside: every host answers only whom its rules name.

site.yml keeps an nftables table of the project's own on every host
(roles/base, entry point firewall; roles/base/README.md, "Firewall"). Each
service port is probed with a TCP connection, at the same time, from

- this machine, the control machine: an administration address (the demo
  site file's site_firewall_admin_networks), as the hosts see it;
- a throwaway container on the demo's public network, at an address that
  is no site host's and in no network the site file lets in: outside the
  site;
- the site's own hosts: a node to the front-end, the front-end and another
  node to a node.

A port a rule opens to the prober connects; a port it does not open times
out: the input chain drops (a refused connection, a reset, would mean the
packet reached the port, the firewall absent). The services the scenario
runs are probed where they listen (sshd, oned, monitord, slapd, the
appliance repository's Apache2); for ports whose
service this site does not run (libvirt's migration, a VM's VNC console,
NFS with ssh image sharing, and Squid, whose host this scenario lacks) a
listener is started on the host for the test, so that only the
firewall decides. Then, on every host: the table is loaded, the policy
drops, a restart and a reload of its unit bring it back, and another table
of the host survives both.
"""

import functools
import ipaddress
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import stratuslab_testinfra
import testinfra

testinfra_hosts = stratuslab_testinfra.hosts("all")

FRONTEND = stratuslab_testinfra.names("frontend")[0]
NODES = stratuslab_testinfra.names("nodes")
UNIT = "stratuslab-firewall.service"
TABLE = "inet stratuslab"
# Outside the site: on the demo's public network, neither a site host's
# address nor in any network the site file lets in (checked below).
OUTSIDER = "site-firewall-outsider"
OUTSIDER_ADDRESS = "10.89.7.250"
OUTSIDER_NETWORK = "stratuslab-demo-public"
IMAGE = "localhost/stratuslab-host:bookworm"
TIMEOUT = 3  # seconds: a dropped connection times out, an open one answers at once on this network

# Who each probed port is open to, by the rules the roles declare
# (roles/base/README.md, "Who may reach what"): admin (this machine), node
# (a node, to the front-end), frontend (the front-end, to a node), peer
# (another node, to a node), outsider. Ports marked listener get a test
# listener when nothing listens there.
FRONTEND_PORTS = {
    22: {"open_to": {"admin", "node"}, "what": "sshd"},
    2633: {"open_to": {"admin"}, "what": "oned's XML-RPC API"},
    4124: {"open_to": {"node"}, "what": "monitord (TCP)"},
    2049: {"open_to": set(), "what": "NFS (image sharing is ssh here)", "listener": True},
    389: {"open_to": {"admin", "node"}, "what": "LDAP (slapd: the site's hosts and site_firewall_ldap_sources)"},
    # This machine is in the demo's site_firewall_client_networks too.
    443: {"open_to": {"admin", "node"}, "what": "the appliance repository, HTTPS (the site's hosts and clients)"},
    80: {"open_to": {"admin", "node"}, "what": "the appliance repository, HTTP (the site's hosts and clients)"},
    3128: {"open_to": set(), "what": "Squid (no cache here)", "listener": True},
}
NODE_PORTS = {
    22: {"open_to": {"admin", "frontend", "peer"}, "what": "sshd"},
    49152: {"open_to": {"peer"}, "what": "libvirt live migration", "listener": True},
    5900: {"open_to": {"frontend"}, "what": "a VM's VNC console", "listener": True},
}

# One TCP connection per target, all at once: {"host:port": "open" | "timeout" | "refused" | error}.
PROBE = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor

def probe(target):
    address, port = target.rsplit(":", 1)
    try:
        socket.create_connection((address, int(port)), timeout=float(sys.argv[2])).close()
        return "open"
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as error:
        return "error: %s" % error

targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(max_workers=len(targets) or 1) as pool:
    print(json.dumps(dict(zip(targets, pool.map(probe, targets)))))
"""

# A TCP listener that accepts and closes, for ports whose service the site does not run.
LISTENER = r"""
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(16)
while True:
    server.accept()[0].close()
"""


@functools.lru_cache(maxsize=None)
def _hostvars(name):
    """A host's inventory variables (each read runs ansible-inventory: once per host)."""
    return stratuslab_testinfra.hostvars(name)


def _address(name):
    return _hostvars(name)["site_address"]


@functools.lru_cache(maxsize=None)
def _host(name):
    [spec] = [spec for spec in stratuslab_testinfra.hosts(name)]
    return testinfra.get_host(spec)


def _podman(*args, check=True):
    return subprocess.run(["podman"] + list(args), capture_output=True, text=True, check=check)


def _controller_address(target):
    """This machine's address as ``target`` sees it: the source of its route there."""
    route = subprocess.run(["ip", "-o", "route", "get", target], capture_output=True, text=True, check=True).stdout
    words = route.split()
    return words[words.index("src") + 1]


def _probe_here(targets):
    """Probe ``targets`` from this machine, with the same PROBE the hosts run."""
    return _probe_from(lambda argv: subprocess.run([sys.executable] + argv[1:], capture_output=True, text=True,
                                                   check=True).stdout, targets)


def _probe_from(run, targets):
    """Probe ``targets`` with ``run(argv)``, a command on another machine that prints PROBE's JSON."""
    out = run(["python3", "-c", PROBE, json.dumps(targets), str(TIMEOUT)])
    return json.loads(out)


def _targets(name, ports):
    return ["%s:%d" % (_address(name), port) for port in ports]


@pytest.fixture(scope="module")
def listeners():
    """A test listener on each port marked listener where nothing listens; stopped afterwards."""
    started = []
    for name, ports in ((FRONTEND, FRONTEND_PORTS), (NODES[0], NODE_PORTS)):
        host = _host(name)
        for port, rule in ports.items():
            if not rule.get("listener") or host.socket("tcp://0.0.0.0:%d" % port).is_listening:
                continue
            unit = "firewall-test-listener-%d" % port
            run = host.run("systemd-run --unit=%s --collect python3 -c %s %s", unit, LISTENER, str(port))
            assert run.rc == 0, run.stderr
            started.append((host, unit))
    for name, ports in ((FRONTEND, FRONTEND_PORTS), (NODES[0], NODE_PORTS)):
        host = _host(name)
        for port in ports:
            for _ in range(50):
                if host.socket("tcp://0.0.0.0:%d" % port).is_listening:
                    break
                host.run("sleep 0.1")
            assert host.socket("tcp://0.0.0.0:%d" % port).is_listening, \
                "nothing listens on %s:%d (%s): the probe would prove nothing" % (name, port, ports[port]["what"])
    yield
    for host, unit in started:
        host.run("systemctl stop %s", unit)


@pytest.fixture(scope="module")
def outsider():
    """A container on the demo's public network, outside the site; removed afterwards."""
    site = [_address(name) for name in stratuslab_testinfra.names("all")]
    hvars = _hostvars(FRONTEND)
    allowed = hvars.get("site_firewall_admin_networks", []) + hvars.get("site_firewall_client_networks", [])
    assert OUTSIDER_ADDRESS not in site
    assert not [net for net in allowed if ipaddress.ip_address(OUTSIDER_ADDRESS) in ipaddress.ip_network(net)], \
        "%s is in a network the site file lets in (%s): choose another outsider address" % (OUTSIDER_ADDRESS, allowed)
    _podman("rm", "-f", OUTSIDER, check=False)
    _podman("run", "-d", "--rm", "--name", OUTSIDER, "--network", "%s:ip=%s" % (OUTSIDER_NETWORK, OUTSIDER_ADDRESS),
            "--entrypoint", "sleep", IMAGE, "infinity")
    yield lambda argv: _podman("exec", OUTSIDER, *argv).stdout
    _podman("rm", "-f", OUTSIDER, check=False)


@pytest.fixture(scope="module")
def probes(listeners, outsider):
    """Every probe of this module, from every prober, in one round per prober."""
    frontend_targets = _targets(FRONTEND, FRONTEND_PORTS)
    node_targets = _targets(NODES[0], NODE_PORTS)
    node, peer, frontend = _host(NODES[0]), _host(NODES[-1]), _host(FRONTEND)
    with ThreadPoolExecutor(max_workers=5) as pool:
        jobs = {
            "admin": pool.submit(_probe_here, frontend_targets + node_targets),
            "outsider": pool.submit(_probe_from, outsider, frontend_targets + node_targets),
            "node": pool.submit(_probe_from, lambda argv: node.check_output(" ".join(["%s"] * len(argv)), *argv),
                                frontend_targets),
            "frontend": pool.submit(_probe_from,
                                    lambda argv: frontend.check_output(" ".join(["%s"] * len(argv)), *argv),
                                    node_targets),
            "peer": pool.submit(_probe_from, lambda argv: peer.check_output(" ".join(["%s"] * len(argv)), *argv),
                                node_targets),
        }
        return {prober: job.result() for prober, job in jobs.items()}


def _cases():
    cases = []
    for target, ports, probers in ((FRONTEND, FRONTEND_PORTS, ("admin", "node", "outsider")),
                                   (NODES[0], NODE_PORTS, ("admin", "frontend", "peer", "outsider"))):
        for port, rule in sorted(ports.items()):
            for prober in probers:
                if prober == "peer" and len(NODES) < 2:
                    continue
                cases.append(pytest.param(target, port, prober, prober in rule["open_to"],
                                          id="%s-%d-from-%s" % (target, port, prober)))
    return cases


def test_this_machine_is_an_administration_address():
    hvars = _hostvars(FRONTEND)
    me = ipaddress.ip_address(_controller_address(_address(FRONTEND)))
    admin = [ipaddress.ip_network(net) for net in hvars.get("site_firewall_admin_networks", [])]
    assert [net for net in admin if me in net], "this machine (%s) is in no site_firewall_admin_networks %s" % (
        me, admin)


@pytest.mark.parametrize("target, port, prober, open_to_it", _cases())
def test_a_port_answers_only_whom_its_rule_names(probes, target, port, prober, open_to_it):
    what = (FRONTEND_PORTS if target == FRONTEND else NODE_PORTS)[port]["what"]
    found = probes[prober]["%s:%d" % (_address(target), port)]
    if open_to_it:
        assert found == "open", "%s on %s:%d does not answer the %s (%s)" % (what, target, port, prober, found)
    else:
        assert found == "timeout", (
            "%s on %s:%d %s the %s: %s" % (
                what, target, port, "answered" if found == "open" else "was not dropped for", prober,
                "the site firewall is missing or lets it in" if found in ("open", "refused") else found))


def test_the_table_is_loaded_and_drops_by_default(host):
    listed = host.run("nft list table %s", TABLE)
    assert listed.rc == 0, "no table %s on the host: the site firewall is missing (%s)" % (TABLE, listed.stderr)
    assert "hook input priority filter; policy drop;" in listed.stdout, listed.stdout
    assert "hook output" not in listed.stdout and "hook forward" not in listed.stdout, listed.stdout
    assert host.service(UNIT).is_enabled and host.service(UNIT).is_running


def test_the_table_is_back_after_a_restart_and_a_reload_and_other_tables_stay(host):
    other = "inet firewall_test_other"
    assert host.run("nft add table %s", other).rc == 0
    try:
        for action in ("restart", "reload"):
            run = host.run("systemctl %s %s", action, UNIT)
            assert run.rc == 0, run.stderr
            tables = host.check_output("nft list tables").splitlines()
            assert "table %s" % TABLE in tables, "%s of %s left no table %s: %s" % (action, UNIT, TABLE, tables)
            assert "table %s" % other in tables, "%s of %s removed the host's other table: %s" % (action, UNIT, tables)
        assert host.service(UNIT).is_running
    finally:
        host.run("nft delete table %s", other)
    # This machine still reaches the host over SSH.
    me = _probe_here(["%s:22" % _address(host.backend.get_hostname())])
    assert list(me.values()) == ["open"], me
