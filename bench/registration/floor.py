#!/usr/bin/env python3
"""Floor of the registration benchmark: the least work any tool has to do.

A plain xmlrpc.client script, standard library only:

* hosts: one ``one.hostpool.info``, then one ``one.host.allocate`` per host
  that is not in the pool yet (no wait for MONITORED);
* vnets: one ``one.vnpool.info``, one ``one.vn.allocate`` per missing
  network, ``one.vnpool.info`` polls until they are all READY (oned refuses
  ``add_ar`` in LOCK_CREATE), then one ``one.vn.add_ar`` per new network.

It prints one JSON object on stdout: the calls it made, by method.

    floor.py --url http://127.0.0.1:PORT/RPC2 --spec spec.json --what hosts|vnets
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

    def hosts(self, names):
        pool = ET.fromstring(self.call("one.hostpool.info"))
        known = {node.text for node in pool.findall("HOST/NAME")}
        for name in names:
            if name not in known:
                self.call("one.host.allocate", name, "kvm", "kvm", -1)

    def vnets(self, vnets, poll=0.05, timeout=120):
        pool = ET.fromstring(self.call("one.vnpool.info", -2, -1, -1))
        known = {node.text for node in pool.findall("VNET/NAME")}
        created = {}
        for vnet in vnets:
            if vnet["name"] in known:
                continue
            template = 'NAME="%s"\nVN_MAD="bridge"\nBRIDGE="%s"\n' % (vnet["name"], vnet["bridge"])
            created[self.call("one.vn.allocate", template, -1)] = vnet
        deadline = time.monotonic() + timeout
        while created:
            pool = ET.fromstring(self.call("one.vnpool.info", -2, -1, -1))
            states = {int(n.findtext("ID")): int(n.findtext("STATE")) for n in pool.findall("VNET")}
            if all(states.get(vid) == VNET_READY for vid in created):
                break
            if time.monotonic() > deadline:
                raise SystemExit("floor: vnets not READY after %ss" % timeout)
            time.sleep(poll)
        for vid, vnet in created.items():
            self.call("one.vn.add_ar", vid, 'AR=[TYPE="IP4",IP="%s",SIZE="%d"]' % (vnet["ip"], vnet["size"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--session", default="oneadmin:opennebula")
    parser.add_argument("--spec", required=True, help="JSON file with 'hosts' (names) and 'vnets'")
    parser.add_argument("--what", choices=("hosts", "vnets"), required=True)
    opts = parser.parse_args(argv)
    with open(opts.spec) as fh:
        spec = json.load(fh)
    floor = Floor(opts.url, opts.session)
    if opts.what == "hosts":
        floor.hosts(spec["hosts"])
    else:
        floor.vnets(spec["vnets"])
    json.dump({"calls": sum(floor.calls.values()), "by_method": dict(floor.calls)}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
