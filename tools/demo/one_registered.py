#!/usr/bin/python3
"""Print what the front-end's OpenNebula API (or the test oned) has registered.

Run on the front-end by tools/demo/summary.yml: reads oneadmin's one_auth
(path in argv[1]) and asks the API at argv[2] for its clusters, hosts,
virtual networks and datastores, one line each. Standard library only; the
password is read from the file and never printed.
"""

import sys
import xml.etree.ElementTree as ET
import xmlrpc.client

HOST_STATES = {0: "INIT", 1: "MONITORING_MONITORED", 2: "MONITORED", 3: "ERROR", 4: "DISABLED",
               5: "MONITORING_ERROR", 6: "MONITORING_INIT", 7: "MONITORING_DISABLED", 8: "OFFLINE"}
VN_STATES = {0: "INIT", 1: "READY", 2: "LOCK_CREATE", 3: "LOCK_DELETE", 4: "DONE", 5: "ERROR", 6: "UPDATE_FAILURE"}


def pool(server, session, method, *args):
    ok, body = getattr(server, method)(session, *args)[:2]
    if not ok:
        raise SystemExit("%s: %s" % (method, body))
    return ET.fromstring(body)


def main():
    auth_file, endpoint = sys.argv[1], sys.argv[2]
    with open(auth_file, encoding="utf-8") as handle:
        session = handle.read().strip()
    server = xmlrpc.client.ServerProxy(endpoint)
    version = server.one.system.version(session)[1]
    print("API %s: one.system.version answers %s" % (endpoint, version))
    for c in pool(server, session, "one.clusterpool.info").findall("CLUSTER"):
        print("cluster   %-4s %s" % (c.findtext("ID"), c.findtext("NAME")))
    for h in pool(server, session, "one.hostpool.info").findall("HOST"):
        print("host      %-4s %-24s %-10s cluster %s" % (
            h.findtext("ID"), h.findtext("NAME"), HOST_STATES.get(int(h.findtext("STATE")), h.findtext("STATE")),
            h.findtext("CLUSTER")))
    for v in pool(server, session, "one.vnpool.info", -2, -1, -1).findall("VNET"):
        ranges = ["%s+%s" % (a.findtext("IP") or a.findtext("MAC"), a.findtext("SIZE"))
                  for a in v.findall("AR_POOL/AR")]
        print("vnet      %-4s %-24s %-10s bridge %s, ranges %s" % (
            v.findtext("ID"), v.findtext("NAME"), VN_STATES.get(int(v.findtext("STATE") or 0), v.findtext("STATE")),
            v.findtext("BRIDGE"), ", ".join(ranges) or "-"))
    for d in pool(server, session, "one.datastorepool.info").findall("DATASTORE"):
        print("datastore %-4s %-24s TM_MAD %s" % (d.findtext("ID"), d.findtext("NAME"), d.findtext("TM_MAD")))


if __name__ == "__main__":
    main()
