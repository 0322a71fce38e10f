"""A deliberately small in-memory oned stand-in for the client tests.

It speaks XML-RPC over HTTP with oned's envelope and the XML shapes of
samples-7.4.0 closely enough for the client and module logic; the module
tests use the project's real test oned (tools/test_oned.py) instead.
Also usable from the command line: python3 fake_oned.py PORT
"""

from __future__ import annotations

import sys
import threading
from xml.sax.saxutils import escape
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

SESSION = "oneadmin:opennebula"


def cdata(value):
    return "<![CDATA[%s]]>" % value


def tmpl_xml(attrs):
    out = []
    for key, value in sorted(attrs.items()):
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, dict):
                out.append("<%s>%s</%s>" % (key, tmpl_xml(item), key))
            else:
                out.append("<%s>%s</%s>" % (key, cdata(item), key))
    return "".join(out)


def ids_xml(tag, ids):
    return "<%s>%s</%s>" % (tag, "".join("<ID>%d</ID>" % i for i in sorted(ids)), tag)


def parse_tmpl(text):
    import os
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "module_utils"))
    from stratuslab_one import parse_template
    return parse_template(text)


class Fake:
    def __init__(self, monitor_after=1):
        self.lock = threading.Lock()
        self.hosts, self.clusters, self.vnets, self.ds = {}, {}, {}, {}
        self.clusters[0] = dict(name="default", hosts=set(), ds={0, 1, 2}, vnets=set())
        for i, (name, typ) in enumerate((("system", 1), ("default", 0), ("files", 2))):
            self.ds[i] = dict(name=name, type=typ, ds_mad="-" if typ == 1 else "fs", tm_mad="local",
                              base_path="/var/lib/one/datastores/%d" % i, tmpl={}, clusters={0})
        self.next = dict(host=0, cluster=100, vnet=0, ds=100)
        self.monitor_after = monitor_after
        self.polls = {}
        self.locked_once = set()
        self.fail_next = []

    # helpers
    def ok(self, value):
        return [True, value, 0]

    def err(self, method, msg, code, rid=-1):
        return [False, "[%s] %s" % (method, msg), code, rid, -1]

    def dispatch(self, method, params):
        with self.lock:
            if not params or params[0] != SESSION:
                return self.err(method, "User couldn't be authenticated, aborting call.", 256)
            if self.fail_next:
                return self.fail_next.pop(0)
            name = "m_" + method.replace("one.", "").replace(".", "_")
            func = getattr(self, name, None)
            if func is None:
                import xmlrpc.client
                raise xmlrpc.client.Fault(-506, "Method '%s' not defined" % method)
            return func(method, *params[1:])

    # hosts
    def host_xml(self, hid):
        h = self.hosts[hid]
        tmpl = dict(h["tmpl"], IM_MAD=h["im"], VM_MAD=h["vm"])
        return ("<HOST><ID>%d</ID><NAME>%s</NAME><STATE>%d</STATE><PREV_STATE>%d</PREV_STATE>"
                "<IM_MAD>%s</IM_MAD><VM_MAD>%s</VM_MAD><CLUSTER_ID>%d</CLUSTER_ID><CLUSTER>%s</CLUSTER>"
                "<HOST_SHARE><RUNNING_VMS>0</RUNNING_VMS><DATASTORES/></HOST_SHARE><VMS></VMS>"
                "<TEMPLATE>%s</TEMPLATE><MONITORING/></HOST>"
                % (hid, escape(h["name"]), h["state"], h["state"], cdata(h["im"]), cdata(h["vm"]),
                   h["cluster"], self.clusters[h["cluster"]]["name"], tmpl_xml(tmpl)))

    def m_hostpool_info(self, m):
        for hid, h in self.hosts.items():
            if h["state"] == 0:
                self.polls[hid] = self.polls.get(hid, 0) + 1
                if self.polls[hid] > self.monitor_after:
                    h["state"] = 3 if h["name"].startswith("bad") else 2
                    if h["state"] == 3:
                        h["tmpl"]["ERROR"] = "Error monitoring Host %s (%d): " % (h["name"], hid)
        return self.ok("<HOST_POOL>%s</HOST_POOL>" % "".join(
            self.host_xml(i) for i in sorted(self.hosts, reverse=True)))

    def m_host_info(self, m, hid, *rest):
        if hid not in self.hosts:
            return self.err(m, "Error getting host [%d]." % hid, 1024, hid)
        return self.ok(self.host_xml(hid))

    def m_host_allocate(self, m, name, im, vm, cid):
        if any(h["name"] == name for h in self.hosts.values()):
            other = [i for i, h in self.hosts.items() if h["name"] == name][0]
            return self.err(m, "Error allocating a new host. NAME is already taken by HOST %d." % other, 16384)
        cid = 0 if cid == -1 else cid
        if cid not in self.clusters:
            return self.err(m, "Error getting cluster [%d]." % cid, 1024, cid)
        hid = self.next["host"]
        self.next["host"] += 1
        self.hosts[hid] = dict(name=name, im=im, vm=vm, cluster=cid, state=0, tmpl={})
        self.clusters[cid]["hosts"].add(hid)
        return self.ok(hid)

    def m_host_delete(self, m, hid):
        if hid not in self.hosts:
            return self.err(m, "Error getting host [%d]." % hid, 1024, hid)
        self.clusters[self.hosts[hid]["cluster"]]["hosts"].discard(hid)
        del self.hosts[hid]
        return self.ok(hid)

    def m_host_status(self, m, hid, status):
        if hid not in self.hosts:
            return self.err(m, "Error getting host [%d]." % hid, 1024, hid)
        if status not in (0, 1, 2):
            return self.err(m, "Wrong status code", 8192)
        self.hosts[hid]["state"] = {0: 0, 1: 4, 2: 8}[status]
        self.polls[hid] = 0
        return self.ok(hid)

    def m_host_update(self, m, hid, text, mode=0):
        if hid not in self.hosts:
            return self.err(m, "Error getting host [%d]." % hid, 1024, hid)
        new = parse_tmpl(text)
        if mode == 1:
            self.hosts[hid]["tmpl"].update(new)
        else:
            self.hosts[hid]["tmpl"] = new
        return self.ok(hid)

    # clusters
    def cluster_xml(self, cid):
        c = self.clusters[cid]
        return ("<CLUSTER><ID>%d</ID><NAME>%s</NAME>%s%s%s<TEMPLATE><RESERVED_CPU>%s</RESERVED_CPU>"
                "</TEMPLATE></CLUSTER>" % (cid, escape(c["name"]), ids_xml("HOSTS", c["hosts"]),
                                            ids_xml("DATASTORES", c["ds"]), ids_xml("VNETS", c["vnets"]),
                                            cdata("")))

    def m_clusterpool_info(self, m):
        return self.ok("<CLUSTER_POOL>%s</CLUSTER_POOL>" % "".join(
            self.cluster_xml(i) for i in sorted(self.clusters, reverse=True)))

    def m_cluster_info(self, m, cid, *rest):
        if cid not in self.clusters:
            return self.err(m, "Error getting cluster [%d]." % cid, 1024, cid)
        return self.ok(self.cluster_xml(cid))

    def m_cluster_allocate(self, m, name):
        for cid, c in self.clusters.items():
            if c["name"] == name:
                return self.err(m, "Error allocating a new cluster. NAME is already taken by CLUSTER %d." % cid,
                                16384)
        cid = self.next["cluster"]
        self.next["cluster"] += 1
        self.clusters[cid] = dict(name=name, hosts=set(), ds=set(), vnets=set())
        return self.ok(cid)

    def m_cluster_delete(self, m, cid):
        if cid not in self.clusters:
            return self.err(m, "Error getting cluster [%d]." % cid, 1024, cid)
        if cid < 100:
            return self.err(m, "Cannot delete cluster. System Clusters (ID < 100) cannot be deleted.", 2048)
        c = self.clusters[cid]
        if c["hosts"] or c["ds"] or c["vnets"]:
            return self.err(m, "Cannot delete cluster. Cluster %d is not empty." % cid, 2048)
        del self.clusters[cid]
        return self.ok(cid)

    def _member(self, m, cid, oid, kind, add):
        if cid not in self.clusters:
            return self.err(m, "Error getting cluster [%d]." % cid, 1024, cid)
        store = {"host": self.hosts, "vnet": self.vnets, "datastore": self.ds}[kind]
        if oid not in store:
            return self.err(m, "Error getting %s [%d]." % (kind, oid), 1024, oid)
        key = {"host": "hosts", "vnet": "vnets", "datastore": "ds"}[kind]
        if kind == "host":
            old = store[oid]["cluster"]
            self.clusters[old]["hosts"].discard(oid)
            new = cid if add else 0
            store[oid]["cluster"] = new
            self.clusters[new]["hosts"].add(oid)
        elif add:
            self.clusters[cid][key].add(oid)
            store[oid]["clusters"].add(cid)
        else:
            self.clusters[cid][key].discard(oid)
            store[oid]["clusters"].discard(cid)
        return self.ok(cid)

    def m_cluster_addhost(self, m, c, o):
        return self._member(m, c, o, "host", True)

    def m_cluster_delhost(self, m, c, o):
        return self._member(m, c, o, "host", False)

    def m_cluster_addvnet(self, m, c, o):
        return self._member(m, c, o, "vnet", True)

    def m_cluster_delvnet(self, m, c, o):
        return self._member(m, c, o, "vnet", False)

    def m_cluster_adddatastore(self, m, c, o):
        return self._member(m, c, o, "datastore", True)

    def m_cluster_deldatastore(self, m, c, o):
        return self._member(m, c, o, "datastore", False)

    # vnets
    def ar_xml(self, ar):
        fields = "".join("<%s>%s</%s>" % (k, cdata(v), k) for k, v in sorted(ar["attrs"].items()))
        return ("<AR><AR_ID>%s</AR_ID>%s<IP>%s</IP><MAC>%s</MAC><SIZE>%s</SIZE><TYPE>%s</TYPE>"
                "<USED_LEASES>%d</USED_LEASES><LEASES/></AR>"
                % (cdata(ar["id"]), fields, cdata(ar.get("ip", "")), cdata(ar.get("mac", "")),
                   cdata(ar["size"]), cdata(ar["type"]), ar.get("used", 0)))

    def vnet_xml(self, vid):
        v = self.vnets[vid]
        t = v["tmpl"]
        if v["state"] == 2:
            v["state"] = 1
            return self.vnet_xml_raw(vid, 2)
        return self.vnet_xml_raw(vid, v["state"])

    def vnet_xml_raw(self, vid, state):
        v = self.vnets[vid]
        t = v["tmpl"]
        return ("<VNET><ID>%d</ID><UNAME>oneadmin</UNAME><NAME>%s</NAME>%s<BRIDGE>%s</BRIDGE>"
                "<STATE>%s</STATE><VN_MAD>%s</VN_MAD><PHYDEV>%s</PHYDEV><VLAN_ID>%s</VLAN_ID>"
                "<PARENT_NETWORK_ID/><TEMPLATE>%s</TEMPLATE><AR_POOL>%s</AR_POOL></VNET>"
                % (vid, escape(v["name"]), ids_xml("CLUSTERS", v["clusters"]), cdata(t.get("BRIDGE", "")),
                   cdata(state), cdata(t.get("VN_MAD", "")), cdata(t.get("PHYDEV", "")),
                   cdata(t.get("VLAN_ID", "")), tmpl_xml(t),
                   "".join(self.ar_xml(a) for a in sorted(v["ars"].values(), key=lambda a: a["id"]))))

    def m_vnpool_info(self, m, flt, start, end):
        return self.ok("<VNET_POOL>%s</VNET_POOL>" % "".join(
            self.vnet_xml(i) for i in sorted(self.vnets, reverse=True)))

    def m_vn_info(self, m, vid, *rest):
        if vid not in self.vnets:
            return self.err(m, "Error getting virtual network [%d]." % vid, 1024, vid)
        return self.ok(self.vnet_xml(vid))

    def _new_ar(self, v, ar):
        ar = dict(ar)
        new = dict(id=v["next_ar"], type=ar.pop("TYPE", "IP4"), ip=ar.pop("IP", ""), mac=ar.pop("MAC", ""),
                   size=ar.pop("SIZE", None), attrs=ar)
        if new["size"] is None:
            return False
        v["ars"][new["id"]] = new
        v["next_ar"] += 1
        return True

    def m_vn_allocate(self, m, text, cid):
        t = parse_tmpl(text)
        if "VN_MAD" not in t:
            return self.err(m, "No VN_MAD in template for Virtual Network.", 8192)
        for vid, v in self.vnets.items():
            if v["name"] == t["NAME"]:
                return self.err(m, "NAME is already taken by NET %d." % vid, 8192)
        cid = 0 if cid == -1 else cid
        vid = self.next["vnet"]
        self.next["vnet"] += 1
        ars = t.pop("AR", [])
        name = t.pop("NAME")
        t.setdefault("BRIDGE", "onebr%d" % vid)
        v = dict(name=name, tmpl=t, state=2, clusters={cid}, ars={}, next_ar=0)
        for ar in ars if isinstance(ars, list) else [ars]:
            self._new_ar(v, ar)
        self.vnets[vid] = v
        self.clusters[cid]["vnets"].add(vid)
        return self.ok(vid)

    def m_vn_update(self, m, vid, text, mode=0):
        if mode not in (0, 1):
            return self.err(m, "Wrong update type", 4096)
        new = parse_tmpl(text)
        if mode == 1:
            self.vnets[vid]["tmpl"].update(new)
        else:
            self.vnets[vid]["tmpl"] = new
        return self.ok(vid)

    def m_vn_add_ar(self, m, vid, text):
        v = self.vnets[vid]
        if v["state"] != 1:
            return self.err(m, "Could not execute one.vn.add_arVirtual Network is in wrong state", 2048)
        ar = parse_tmpl(text)["AR"]
        if not self._new_ar(v, ar[0] if isinstance(ar, list) else ar):
            return self.err(m, "Wrong SIZE for address range", 8192)
        return self.ok(vid)

    def m_vn_update_ar(self, m, vid, text):
        ar = parse_tmpl(text)["AR"]
        v = self.vnets[vid]
        if "AR_ID" not in ar:
            return self.err(m, "AR/AR_ID attribute is missing.", 8192)
        cur = v["ars"].get(int(ar["AR_ID"]))
        if cur is None:
            return self.err(m, "Address Range with ID %s was not found." % ar["AR_ID"], 8192)
        if "SIZE" in ar:
            cur["size"] = ar["SIZE"]
        cur["attrs"] = {k: val for k, val in ar.items() if k not in ("AR_ID", "SIZE", "IP", "MAC", "TYPE")}
        return self.ok(vid)

    def m_vn_rm_ar(self, m, vid, ar_id, force=False):
        v = self.vnets[vid]
        if ar_id not in v["ars"]:
            return self.err(m, "Address Range does not exist", 8192)
        if v["ars"][ar_id].get("used") and not force:
            return self.err(m, "Address Range has leases in use", 8192)
        del v["ars"][ar_id]
        return self.ok(vid)

    def m_vn_delete(self, m, vid):
        v = self.vnets.pop(vid)
        for cid in v["clusters"]:
            self.clusters[cid]["vnets"].discard(vid)
        return self.ok(vid)

    # datastores
    def ds_xml(self, did):
        d = self.ds[did]
        return ("<DATASTORE><ID>%d</ID><NAME>%s</NAME><DS_MAD>%s</DS_MAD><TM_MAD>%s</TM_MAD>"
                "<BASE_PATH>%s</BASE_PATH><TYPE>%d</TYPE><STATE>0</STATE>%s<TEMPLATE>%s</TEMPLATE></DATASTORE>"
                % (did, escape(d["name"]), cdata(d["ds_mad"]), cdata(d["tm_mad"]), cdata(d["base_path"]),
                   d["type"], ids_xml("CLUSTERS", d["clusters"]), tmpl_xml(d["tmpl"])))

    def m_datastorepool_info(self, m):
        return self.ok("<DATASTORE_POOL>%s</DATASTORE_POOL>" % "".join(
            self.ds_xml(i) for i in sorted(self.ds, reverse=True)))

    def m_datastore_info(self, m, did, *rest):
        if did not in self.ds:
            return self.err(m, "Error getting datastore [%d]." % did, 1024, did)
        return self.ok(self.ds_xml(did))

    def m_datastore_allocate(self, m, text, cid):
        t = parse_tmpl(text)
        for did, d in self.ds.items():
            if d["name"] == t["NAME"]:
                return self.err(m, "NAME is already taken by DATASTORE %d." % did, 8192)
        typ = {"IMAGE_DS": 0, "SYSTEM_DS": 1, "FILE_DS": 2}[t.get("TYPE", "IMAGE_DS")]
        if typ != 1 and "DS_MAD" not in t:
            return self.err(m, "No DS_MAD in template.", 8192)
        if "TM_MAD" not in t:
            return self.err(m, "No TM_MAD in template.", 8192)
        cid = 0 if cid == -1 else cid
        did = self.next["ds"]
        self.next["ds"] += 1
        name = t.pop("NAME")
        self.ds[did] = dict(name=name, type=typ, ds_mad=t.get("DS_MAD", "-"), tm_mad=t["TM_MAD"],
                            base_path=t.get("BASE_PATH", "/var/lib/one/datastores") + "/%d" % did,
                            tmpl=t, clusters={cid})
        self.clusters[cid]["ds"].add(did)
        return self.ok(did)

    def m_datastore_update(self, m, did, text, mode=0):
        d = self.ds[did]
        new = parse_tmpl(text)
        d["tmpl"].update(new) if mode == 1 else d.__setitem__("tmpl", new)
        d["tm_mad"] = d["tmpl"].get("TM_MAD", d["tm_mad"])
        d["ds_mad"] = d["tmpl"].get("DS_MAD", d["ds_mad"])
        return self.ok(did)

    def m_datastore_delete(self, m, did):
        d = self.ds.pop(did)
        for cid in d["clusters"]:
            self.clusters[cid]["ds"].discard(did)
        return self.ok(did)

    def m_system_version(self, m):
        return self.ok("7.4.0")


class _Quiet(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/RPC2",)

    def log_message(self, *args):
        pass


def serve(port=0):
    """Start a fake oned in a thread; returns (server, fake, url)."""
    fake = Fake()
    server = SimpleXMLRPCServer(("127.0.0.1", port), requestHandler=_Quiet, logRequests=False,
                                allow_none=True)
    server.register_instance(type("D", (), {"_dispatch": lambda self, m, p: fake.dispatch(m, p)})())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, fake, "http://127.0.0.1:%d/RPC2" % server.server_address[1]


if __name__ == "__main__":
    srv, _, url = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(url, flush=True)
    threading.Event().wait()
