"""A node that goes down is seen by the real OpenNebula, and comes back.

The front-end and the last node of group nodes are cut off from each other
as a powered-off node is: on each side a route ``unreachable`` to the other's
address, so oneadmin's SSH from the front-end fails at once with "No route
to host" and the node's monitoring messages no longer reach monitord. Then:

- oned puts the node in ERROR, by its own monitoring (no call of ours);
- the other nodes stay MONITORED;
- when the routes go, oned monitors the node again by itself and it is
  MONITORED, with its capacity, and no task of ours runs in between.

The routes are removed whatever happens, and the module waits for the node
to be MONITORED again so the validation that follows finds every node up.

Why routes and not ``podman stop``: a test container that starts again gets
its addresses from podman on eth0 before systemd-networkd moves them onto the
bridge, so it would come back with the same address on two interfaces, which
no real node does. ``podman pause`` freezes the node's processes but not its
kernel: TCP connections are accepted and then hang, and OpenNebula's stock
SSH settings for oneadmin have no ConnectTimeout, so the host stays
MONITORED. A real node that powers off answers neither.
"""

import json
import time

import pytest
import stratuslab_testinfra

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

FRONTEND = stratuslab_testinfra.names("frontend")[0]
NODES = stratuslab_testinfra.names("nodes")
DOWN = NODES[-1]
MONITORED, ERROR = "2", "3"
# monitord monitors a node again over SSH when nothing came from it for
# MONITORING_INTERVAL_HOST, and the node is MONITORED again with its next
# SYSTEM_HOST report: host_vars/site-one.yml shortens both to 60 s
# (OpenNebula's defaults: 180 s and 600 s). Each step fits in this bound.
TIMEOUT = 300


def _states(host):
    out = host.run("runuser -u oneadmin -- onehost list --json")
    assert out.rc == 0, out.stderr
    pool = json.loads(out.stdout)["HOST_POOL"].get("HOST") or []
    pool = pool if isinstance(pool, list) else [pool]
    return {h["NAME"]: h for h in pool}


def _wait(host, name, state, timeout=TIMEOUT):
    started = time.monotonic()
    while True:
        found = _states(host).get(name, {})
        if found.get("STATE") == state:
            return time.monotonic() - started, found
        if time.monotonic() - started > timeout:
            pytest.fail("%s still in state %s after %d s (waiting for %s): %s"
                        % (name, found.get("STATE"), timeout, state, found.get("TEMPLATE", {}).get("ERROR", "")))
        time.sleep(5)


def _address(name):
    return stratuslab_testinfra.hostvars(name)["site_address"]


@pytest.fixture(scope="module")
def outage(host, request):
    node = host.get_host(stratuslab_testinfra.hosts(DOWN)[0])
    before = _states(host)
    assert all(before[n]["STATE"] == MONITORED for n in NODES), {n: before[n]["STATE"] for n in NODES}
    cut = [(host, _address(DOWN)), (node, _address(FRONTEND))]

    def restore():
        for side, address in cut:
            side.run("ip route del unreachable %s/32", address)
    request.addfinalizer(restore)

    for side, address in cut:
        out = side.run("ip route add unreachable %s/32", address)
        assert out.rc == 0, out.stderr
    down_s, down = _wait(host, DOWN, ERROR)
    others = {n: _states(host)[n]["STATE"] for n in NODES if n != DOWN}
    restore()
    back_s, back = _wait(host, DOWN, MONITORED)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("node down: %s in ERROR %.0f s after it was cut off, MONITORED again %.0f s after it"
                            " came back" % (DOWN, down_s, back_s))
    return {"down": down, "others": others, "back": back}


def test_oned_puts_the_unreachable_node_in_error(outage):
    assert outage["down"]["STATE"] == ERROR
    error = outage["down"].get("TEMPLATE", {}).get("ERROR", "")
    assert "Error monitoring Host %s" % DOWN in error, error


def test_the_other_nodes_stay_monitored(outage):
    assert outage["others"] and set(outage["others"].values()) == {MONITORED}, outage["others"]


def test_the_node_is_monitored_again_with_its_capacity(outage):
    share = outage["back"]["HOST_SHARE"]
    assert outage["back"]["STATE"] == MONITORED
    assert int(share["TOTAL_CPU"]) > 0 and int(share["TOTAL_MEM"]) > 0, share
