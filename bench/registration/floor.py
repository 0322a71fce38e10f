#!/usr/bin/env python3
"""Floor of the registration benchmark: the least work any tool has to do.

A plain xmlrpc.client script, standard library only:

* hosts: one ``one.hostpool.info``, then one ``one.host.allocate`` per host
  that is not in the pool yet, then ``one.hostpool.info`` polls until every
  new host is MONITORED (as the batch module waits by default), or ERROR
  (then it fails, as the module does);
* vnets: one ``one.vnpool.info``, one ``one.vn.allocate`` per missing
  network with its address range in the template (as opennebula_vnets
  does), then ``one.vnpool.info`` polls until they are all READY.

The polls follow the modules' schedule: 50 ms after the first read, doubling
up to ``--poll-interval`` (hosts) or ``--vnet-poll-interval`` (vnets), the
modules' defaults.

It prints one JSON object on stdout: the calls it made, by method, and its
own seconds.

    floor.py --url http://127.0.0.1:PORT/RPC2 --spec spec.json --what hosts|vnets|all
             [--im-mad kvm --vmm-mad kvm] [--no-wait]

Its "seconds" are per part (hosts, vnets), and for the hosts also split into
hosts_allocate (the first pool read and the allocations) and hosts_wait.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import xml.etree.ElementTree as ET
import xmlrpc.client

VNET_READY = 1
VNET_FAILED = (5, 6)        # ERROR, UPDATE_FAILURE
HOST_MONITORED = 2
HOST_ERROR = 3


class Floor:
    def __init__(self, url, session):
        self.server = xmlrpc.client.ServerProxy(url)
        self.session = session
        self.calls = collections.Counter()

    def call(self, method, *params):
        self.calls[method] += 1
        answer = getattr(self.server, method)(self.session, *params)
        if not answer[0]:
            raise SystemExit("floor: %s failed: %s" % (method, answer[1]))
        return answer[1]

    def wait(self, method, params, item, wanted_state, ids, interval, timeout=600, failed_states=()):
        """Poll a pool (one read per poll) until every id is in wanted_state or in
        one of failed_states (then fail, as the modules do)."""
        deadline = time.monotonic() + timeout
        delay = min(interval, 0.05)
        settled = (wanted_state,) + tuple(failed_states)
        while ids:
            pool = ET.fromstring(self.call(method, *params))
            states = {int(n.findtext("ID")): int(n.findtext("STATE")) for n in pool.findall(item)}
            if all(states.get(i) in settled for i in ids):
                failed = [i for i in ids if states.get(i) != wanted_state]
                if failed:
                    raise SystemExit("floor: %d %s(s) in a failed state, e.g. %s: %s"
                                     % (len(failed), item, failed[0], states.get(failed[0])))
                return
            if time.monotonic() > deadline:
                raise SystemExit("floor: %s not all in state %d after %ss" % (item, wanted_state, timeout))
            time.sleep(delay)
            delay = min(interval, delay * 2)

    def hosts(self, names, wait=True, interval=2.0, im_mad="kvm", vmm_mad="kvm", timeout=600):
        """Returns the seconds of its two parts: {"allocate": s, "wait": s}
        (the first pool read is in "allocate")."""
        start = time.monotonic()
        pool = ET.fromstring(self.call("one.hostpool.info"))
        known = {node.text for node in pool.findall("HOST/NAME")}
        new = []
        for name in names:
            if name not in known:
                new.append(self.call("one.host.allocate", name, im_mad, vmm_mad, -1))
        allocated = time.monotonic()
        if wait:
            self.wait("one.hostpool.info", (), "HOST", HOST_MONITORED, new, interval, timeout,
                      failed_states=(HOST_ERROR,))
        return {"allocate": allocated - start, "wait": time.monotonic() - allocated}

    def vnets(self, vnets, interval=1.0):
        pool = ET.fromstring(self.call("one.vnpool.info", -2, -1, -1))
        known = {node.text for node in pool.findall("VNET/NAME")}
        created = []
        for vnet in vnets:
            if vnet["name"] in known:
                continue
            template = ('NAME="%s"\nVN_MAD="bridge"\nBRIDGE="%s"\nAR=[TYPE="IP4",IP="%s",SIZE="%d"]\n'
                        % (vnet["name"], vnet["bridge"], vnet["ip"], vnet["size"]))
            created.append(self.call("one.vn.allocate", template, -1))
        self.wait("one.vnpool.info", (-2, -1, -1), "VNET", VNET_READY, created, interval,
                  failed_states=VNET_FAILED)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--session", default="oneadmin:opennebula")
    parser.add_argument("--spec", required=True, help="JSON file with 'hosts' (names) and 'vnets'")
    parser.add_argument("--what", choices=("hosts", "vnets", "all"), required=True,
                        help="all: hosts then vnets in this one process (one start-up, like one playbook)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the hosts to be MONITORED")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="longest pause between host pool polls")
    parser.add_argument("--wait-timeout", type=float, default=600,
                        help="seconds to wait for the hosts to be MONITORED (default 600)")
    parser.add_argument("--im-mad", default="kvm", help="information driver of the new hosts (default kvm)")
    parser.add_argument("--vmm-mad", default="kvm", help="virtualization driver of the new hosts (default kvm)")
    parser.add_argument("--vnet-poll-interval", type=float, default=1.0,
                        help="longest pause between vnet pool polls")
    opts = parser.parse_args(argv)
    with open(opts.spec) as fh:
        spec = json.load(fh)
    floor = Floor(opts.url, opts.session)
    seconds = {}
    if opts.what in ("hosts", "all"):
        start = time.monotonic()
        parts = floor.hosts(spec["hosts"], wait=not opts.no_wait, interval=opts.poll_interval,
                            im_mad=opts.im_mad, vmm_mad=opts.vmm_mad, timeout=opts.wait_timeout)
        seconds["hosts"] = time.monotonic() - start
        seconds.update(("hosts_" + k, v) for k, v in parts.items())
    if opts.what in ("vnets", "all") and spec.get("vnets"):
        start = time.monotonic()
        floor.vnets(spec["vnets"], interval=opts.vnet_poll_interval)
        seconds["vnets"] = time.monotonic() - start
    json.dump({"calls": sum(floor.calls.values()), "by_method": dict(floor.calls), "seconds": seconds},
              sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
