"""The simulated oned: the Oned class (state, bootstrap, time-driven
transitions, authentication, the XML renderers of hosts, clusters,
datastores, users and virtual networks) and the virtual network helpers
it shares with objects.vnets."""

import fnmatch
import heapq
import json
import random
import re
import secrets
import threading

from .constants import (
    HOST_ERROR, HOST_INIT, HOST_MONITORED, HOST_OFFLINE, VN_ERROR, VN_LOCK_CREATE,
    VN_LOCK_DELETE, VN_MAD_CONF, VN_READY, VN_STATES, VN_UPDATE_FAILURE)
from .errors import ACTION, AUTHORIZATION, INTERNAL, NO_EXISTS, RPC_API, OnedError
from .ldap import LdapAuth, LdapAuthConf, ldap_login
from .objects.acl import ACL_BOOTSTRAP, acl_add, acl_group_rules
from .objects.images import image_tick
from .store import KINDS
from .template import (
    TemplateSyntaxError, cdata, ids_xml, opt_cdata, parse_error_message, parse_template,
    perms_xml, template_xml, terase, tget, tmerge, tset)
from .util import int_to_ip, int_to_mac, ip_to_int, log_time, mac_to_int, now, sha256
from .wire import _xml_text


class Oned:
    """State and semantics of the test oned."""

    def __init__(self, store, options):
        self.store = store
        self.opts = options
        self.lock = threading.RLock()
        prefix = options.mac_prefix.lower()
        if not re.fullmatch(r"[0-9a-f]{2}:[0-9a-f]{2}", prefix):
            raise ValueError("--mac-prefix must look like 02:00")
        self.mac_prefix = int(prefix.replace(":", ""), 16)
        self.rand = random.Random()
        # (due, host id) of the probes to run; see schedule_monitor()
        self.monitor_heap = [(h["monitor_due"], h["id"])
                             for h in store.objects["host"].values()
                             if h.get("monitor_due") is not None]
        heapq.heapify(self.monitor_heap)
        self.ldap = None
        if getattr(options, "ldap_auth_conf", None):
            self.ldap = LdapAuthConf(options.ldap_auth_conf,
                                     getattr(options, "ldap_ca", None))
        elif getattr(options, "ldap_uri", None):
            self.ldap = LdapAuth(options.ldap_uri, options.ldap_base_dn,
                                 getattr(options, "ldap_ca", None))
        with self.lock:
            self.bootstrap()
            self.store.flush()

    # ---------------------------------------------------------- bootstrap
    def bootstrap(self):
        st = self.store
        user, password = self.opts.admin
        admin = st.get("user", 0)
        if admin is None:
            st.put("group", {"id": 0, "name": "oneadmin", "template": []})
            st.put("group", {"id": 1, "name": "users", "template": []})
            st.put("user", {
                "id": 0, "gid": 0, "groups": [0], "name": user,
                "password": sha256(password), "auth_driver": "core",
                "enabled": 1, "tokens": [],
                "template": [["TOKEN_PASSWORD",
                              sha256(secrets.token_hex(32))]]})
            st.put("user", {
                "id": 1, "gid": 0, "groups": [0], "name": "serveradmin",
                "password": sha256(secrets.token_hex(32)),
                "auth_driver": "server_cipher", "enabled": 1, "tokens": [],
                "template": [["TOKEN_PASSWORD",
                              sha256(secrets.token_hex(32))]]})
            st.put("cluster", {"id": 0, "name": "default",
                               "template": [["RESERVED_CPU", ""],
                                            ["RESERVED_MEM", ""]]})
            common = [["ALLOW_ORPHANS", "FORMAT"],
                      ["PERSISTENT_SNAPSHOTS", "YES"],
                      ["RESTRICTED_DIRS", "/"], ["SAFE_DIRS", "/var/tmp"],
                      ["TM_MAD", "local"]]
            st.put("datastore", self._new_ds(0, "system", "-", "local", 1, [
                ["DISK_TYPE", "FILE"], ["DS_LIVE_MIGRATE", "YES"],
                ["DS_MIGRATE", "YES"], ["DS_MIGRATE_SNAP", "YES"],
                ["SHARED", "NO"], ["TYPE", "SYSTEM_DS"]] + common))
            st.put("datastore", self._new_ds(1, "default", "fs", "local", 0, [
                ["CLONE_TARGET", "SYSTEM"], ["DISK_TYPE", "FILE"],
                ["DS_MAD", "fs"], ["LN_TARGET", "SYSTEM"],
                ["TYPE", "IMAGE_DS"]] + common))
            st.put("datastore", self._new_ds(2, "files", "fs", "local", 2, [
                ["CLONE_TARGET", "SYSTEM"], ["DS_MAD", "fs"],
                ["LN_TARGET", "SYSTEM"], ["TYPE", "FILE_DS"]] + common))
        if "acl" not in st.counters:
            # oned's bootstrap ACL rules, and group users' default-VDC rules
            for rule in ACL_BOOTSTRAP + acl_group_rules(1):
                acl_add(self, *rule)
        if admin is not None:
            # the --auth file (or the default) is authoritative at each start
            if admin["name"] != user or admin["password"] != sha256(password):
                admin["name"] = user
                admin["password"] = sha256(password)
                st.touch("user", admin)

    def _new_ds(self, oid, name, ds_mad, tm_mad, ds_type, template,
                cluster_id=0):
        return {"id": oid, "uid": 0, "gid": 0, "name": name,
                "ds_mad": ds_mad, "tm_mad": tm_mad,
                "base_path": "%s/%d" % (self.opts.datastore_location, oid),
                "type": ds_type, "disk_type": 0, "state": 0,
                "clusters": [cluster_id], "template": template}

    # -------------------------------------------------------------- ticks
    def tick(self):
        """Apply the driver answers and monitoring results that are due."""
        t = now()
        st = self.store
        for vn in list(st.objects["vnet"].values()):
            due = vn.get("due")
            if due is None or due > t:
                continue
            if vn["state"] == VN_LOCK_CREATE:
                self._vnet_ready(vn)
            elif vn["state"] == VN_LOCK_DELETE:
                st.remove("vnet", vn["id"])
        image_tick(self, t)
        # only the hosts whose probe is due: O(changed hosts), not O(pool)
        heap = self.monitor_heap
        while heap and heap[0][0] <= t:
            due, oid = heapq.heappop(heap)
            host = st.objects["host"].get(oid)
            if host is not None and host.get("monitor_due") == due:
                self._monitor(host, t)

    def schedule_monitor(self, host, due):
        """Set the host's next probe time (None: never) and queue it."""
        host["monitor_due"] = due
        if due is not None:
            heapq.heappush(self.monitor_heap, (due, host["id"]))

    def rearm_monitor(self, host):
        """Queue the next periodic probe of a steady host (see _monitor)."""
        due = host.get("monitor_due")
        if due is None:
            return
        t, step = now(), self.opts.monitor_interval
        if due < t and step > 0:
            due += step * (int((t - due) / step) + 1)
        self.schedule_monitor(host, due)

    def _vnet_ready(self, vn):
        """The vnm/IPAM driver's answer to the create (IPAMManager::
        _vnet_create): the template's ARs enter AR_POOL now, one by one. An
        AR that does not build is left out (and its id not used) and puts
        the network in ERROR, with the last error in TEMPLATE/ERROR."""
        vn["due"] = None
        tpl = vn["template"]
        terase(tpl, "AR")
        terase(tpl, "ERROR")
        if tget(tpl, "VLAN_ID") is None:
            tset(tpl, "VLAN_ID", vn["vlan_id"])
        if tget(tpl, "OUTER_VLAN_ID") is None:
            tset(tpl, "OUTER_VLAN_ID", vn["outer_vlan_id"])
        error = None
        for pending in vn.pop("pending_ars", []):
            if isinstance(pending, dict):      # a state file of an older
                vn["ars"].append(pending)      # test oned: built already
                continue
            try:
                vn["ars"].append(self.build_ar(pending, next_ar_id(vn)))
            except OnedError as exc:
                error = exc.message
        vn.pop("next_ar_id", None)             # older state files
        if error is None:
            vn["state"] = vn["prev_state"] = VN_READY
        else:
            vn["state"] = vn["prev_state"] = VN_ERROR
            tset(tpl, "ERROR", "%s : %s" % (log_time(), error))
        self.store.touch("vnet", vn)

    def _reachable(self, host):
        if host["im_mad"] == "dummy":
            return True
        for pattern in self.opts.unreachable_hosts:
            if fnmatch.fnmatchcase(host["name"], pattern):
                return False
        return True

    def _monitor(self, host, t):
        """One simulated run of the information (IM) driver probe.

        A probe that succeeded leaves the host steady: probing it again
        would change nothing, so the next one is only queued (rearm_monitor)
        when something changes the host (status, template update).  The
        stored monitor_due keeps the periodic time all the same.
        """
        host["monitor_due"] = t + self.opts.monitor_interval
        if host["state"] == HOST_OFFLINE:
            host["monitor_due"] = None
            self.store.touch("host", host)
            return
        tpl = host["template"]
        if self._reachable(host):
            share = host.setdefault("share", {})
            share.update({"TOTAL_MEM": 16777216, "TOTAL_CPU": 800})
            host["ds_share"] = {"DISK_USAGE": 0, "FREE_DISK": 20480,
                                "MAX_DISK": 20480, "USED_DISK": 9720}
            terase(tpl, "ERROR")
            dummy = host["im_mad"] == "dummy"
            # the dummy IM driver's figures (im_mad/remotes/dummy-probes.d)
            for key, value in (
                    ("ARCH", "x86_64"), ("CPUSPEED", "3200"),
                    ("HOSTNAME", host["name"]),
                    ("HYPERVISOR", "dummy" if dummy else "kvm"),
                    ("MODELNAME", "Dummy(R) Core @ 3.2GHz" if dummy
                     else "test oned simulated CPU @ 3.2GHz"),
                    ("TOTALCPU", "800"), ("TOTALMEMORY", "16777216")):
                tset(tpl, key, value)
            self.apply_reserved(host)
            new_state = HOST_MONITORED
        else:
            # the ERROR text carries the probe time: keep probing
            self.schedule_monitor(host, host["monitor_due"])
            if host.get("ds_share") is None:
                host["ds_share"] = {"DISK_USAGE": 0, "FREE_DISK": 0,
                                    "MAX_DISK": 0, "USED_DISK": 0}
            stamp = log_time(t)
            tset(tpl, "ERROR", "%s : Error monitoring Host %s (%d): " % (
                stamp, host["name"], host["id"]))
            new_state = HOST_ERROR
        if host["state"] in (HOST_INIT, HOST_MONITORED, HOST_ERROR):
            host["state"] = new_state
            host["prev_state"] = new_state
        self.store.touch("host", host)

    def apply_reserved(self, host):
        """HostShare's MAX_CPU and MAX_MEM: the totals less the host's
        RESERVED_CPU and RESERVED_MEM (or its cluster's), each an amount
        or a percentage ("10%"); a value that does not read reserves
        nothing (set_reserved_metric)."""
        share = host.setdefault("share", {})
        cluster = self.store.get("cluster", host["cluster_id"])
        for kind in ("CPU", "MEM"):
            total = share.get("TOTAL_" + kind, 0)
            reserved = (tget(host["template"], "RESERVED_" + kind) or
                        (tget(cluster["template"], "RESERVED_" + kind)
                         if cluster else "") or "").strip()
            value = total
            if reserved:
                percent = reserved.endswith("%")
                number = reserved[:-1] if percent else reserved
                if re.fullmatch(r"[+-]?\d+", number):
                    value = int(total * (1 - int(number) / 100.0)) \
                        if percent else total - int(number)
            share["MAX_" + kind] = value

    # ------------------------------------------------------- auth helpers
    def authenticate(self, session):
        if ":" not in session:
            return None
        name, secret = session.split(":", 1)
        for user in self.store.all("user"):
            if user["name"] != name or not user["enabled"]:
                continue
            if user["auth_driver"] == "core" and secret and \
                    sha256(secret) == user["password"]:
                return user
            t = now()
            for tok in user.get("tokens", []):
                if tok["token"] == secret and (
                        tok["expiration"] < 0 or tok["expiration"] > t):
                    return user
        return ldap_login(self, name, secret)

    # ----------------------------------------------------- clock, admin
    def clock(self):
        """Epoch for VM and accounting times: the test clock if it was set
        (testoned.clock.*), the real time otherwise."""
        value = self.store.meta("clock")
        return int(value) if value else int(now())

    def require_admin(self, user, what="Action reserved for group 0 only."):
        if not (user["gid"] == 0 or 0 in user["groups"]):
            raise OnedError(AUTHORIZATION, "User [%d] : %s" % (user["id"],
                                                               what))

    # --------------------------------------------------------------- lookups
    def get(self, kind, oid):
        obj = self.store.get(kind, oid)
        if obj is None:
            noun = KINDS[kind].noun
            if oid == -1:
                raise OnedError(NO_EXISTS, "Error getting %s Pool." % noun, -1)
            raise OnedError(NO_EXISTS, "Error getting %s [%d]." % (noun, oid),
                            oid)
        return obj

    def cluster_for_allocate(self, cluster_id):
        if cluster_id == -1:
            cluster_id = 0
        return self.get("cluster", cluster_id)

    def uname(self, uid):
        user = self.store.get("user", uid)
        return user["name"] if user else ""

    def gname(self, gid):
        group = self.store.get("group", gid)
        return group["name"] if group else ""

    def owned_xml(self, obj):
        """ID, UID, GID, UNAME, GNAME and NAME: how every owned object's
        document starts."""
        return ("<ID>%d</ID><UID>%d</UID><GID>%d</GID><UNAME>%s</UNAME>"
                "<GNAME>%s</GNAME><NAME>%s</NAME>") % (
            obj["id"], obj["uid"], obj["gid"],
            _xml_text(self.uname(obj["uid"])),
            _xml_text(self.gname(obj["gid"])), _xml_text(obj["name"]))

    # ------------------------------------------------------------ renderers
    def user_xml(self, u):
        tokens = "".join(
            "<LOGIN_TOKEN><TOKEN>%s</TOKEN><EXPIRATION_TIME>%d"
            "</EXPIRATION_TIME><EGID>%d</EGID></LOGIN_TOKEN>" % (
                _xml_text(t["token"]), t["expiration"], t["egid"])
            for t in u.get("tokens", []))
        quotas = ("<DATASTORE_QUOTA></DATASTORE_QUOTA><NETWORK_QUOTA>"
                  "</NETWORK_QUOTA><VM_QUOTA></VM_QUOTA><IMAGE_QUOTA>"
                  "</IMAGE_QUOTA>")
        return ("<USER><ID>%d</ID><GID>%d</GID>%s<GNAME>%s</GNAME>"
                "<NAME>%s</NAME><PASSWORD>%s</PASSWORD><AUTH_DRIVER>%s"
                "</AUTH_DRIVER><ENABLED>%d</ENABLED>%s%s%s"
                "<DEFAULT_USER_QUOTAS>%s</DEFAULT_USER_QUOTAS></USER>") % (
            u["id"], u["gid"], ids_xml("GROUPS", u["groups"]),
            _xml_text(self.gname(u["gid"])), _xml_text(u["name"]),
            cdata(u["password"]), cdata(u["auth_driver"]), u["enabled"],
            tokens, template_xml(u["template"]), quotas, quotas)

    def host_xml(self, h):
        share = h.get("share") or {}
        cluster = self.store.get("cluster", h["cluster_id"])
        parts = ["<HOST><ID>%d</ID><NAME>%s</NAME><STATE>%d</STATE>"
                 "<PREV_STATE>%d</PREV_STATE><IM_MAD>%s</IM_MAD>"
                 "<VM_MAD>%s</VM_MAD><CLUSTER_ID>%d</CLUSTER_ID>"
                 "<CLUSTER>%s</CLUSTER><HOST_SHARE>" % (
                     h["id"], _xml_text(h["name"]), h["state"],
                     h["prev_state"], cdata(h["im_mad"]), cdata(h["vm_mad"]),
                     h["cluster_id"],
                     _xml_text(cluster["name"] if cluster else ""))]
        for key in ("MEM_USAGE", "CPU_USAGE", "TOTAL_MEM", "TOTAL_CPU",
                    "MAX_MEM", "MAX_CPU", "RUNNING_VMS"):
            parts.append("<%s>%d</%s>" % (key, share.get(key, 0), key))
        parts.append("<VMS_THREAD>1</VMS_THREAD>")
        ds = h.get("ds_share")
        if ds is None:
            # never monitored: oned answers an empty element (violates XSD)
            parts.append("<DATASTORES></DATASTORES>")
        else:
            parts.append("<DATASTORES>%s</DATASTORES>" % "".join(
                "<%s>%s</%s>" % (k, cdata(ds[k]), k) for k in
                ("DISK_USAGE", "FREE_DISK", "MAX_DISK", "USED_DISK")))
        parts.append("<PCI_DEVICES></PCI_DEVICES><NUMA_NODES></NUMA_NODES>"
                     "</HOST_SHARE><VMS></VMS>")
        parts.append(template_xml(h["template"]))
        parts.append("<MONITORING/></HOST>")
        return "".join(parts)

    def cluster_xml(self, c):
        cid = c["id"]
        hosts = [h["id"] for h in self.store.all("host")
                 if h["cluster_id"] == cid]
        dss = [d["id"] for d in self.store.all("datastore")
               if cid in d["clusters"]]
        vnets = [v["id"] for v in self.store.all("vnet")
                 if cid in v["clusters"]]
        return "<CLUSTER><ID>%d</ID><NAME>%s</NAME>%s%s%s%s</CLUSTER>" % (
            cid, _xml_text(c["name"]), ids_xml("HOSTS", hosts),
            ids_xml("DATASTORES", dss), ids_xml("VNETS", vnets),
            template_xml(c["template"]))

    def datastore_xml(self, d):
        return ("<DATASTORE>%s%s"
                "<DS_MAD>%s</DS_MAD><TM_MAD>%s</TM_MAD><BASE_PATH>%s"
                "</BASE_PATH><TYPE>%d</TYPE><DISK_TYPE>%d</DISK_TYPE>"
                "<STATE>%d</STATE>%s<TOTAL_MB>0</TOTAL_MB><FREE_MB>0"
                "</FREE_MB><USED_MB>0</USED_MB><IMAGES></IMAGES>%s"
                "</DATASTORE>") % (
            self.owned_xml(d),
            perms_xml([1, 1, 0, 1, 0, 0, 0, 0, 0]), cdata(d["ds_mad"]),
            cdata(d["tm_mad"]), cdata(d["base_path"]), d["type"],
            d["disk_type"], d["state"], ids_xml("CLUSTERS", d["clusters"]),
            template_xml(d["template"]))

    def ar_xml(self, ar, extended=True):
        out = ["<AR>"]
        for key, value in sorted(ar["attrs"].items()):
            out.append("<%s>%s</%s>" % (key, cdata(value), key))
        if extended:
            size = int(ar["attrs"]["SIZE"])
            mac = mac_to_int(ar["attrs"]["MAC"])
            out.append("<MAC_END>%s</MAC_END>" % cdata(
                int_to_mac(mac + size - 1)))
            if "IP" in ar["attrs"]:
                out.append("<IP_END>%s</IP_END>" % cdata(int_to_ip(
                    ip_to_int(ar["attrs"]["IP"]) + size - 1)))
            out.append("<USED_LEASES>0</USED_LEASES><LEASES/>")
        out.append("</AR>")
        return "".join(out)

    def vnet_xml(self, v, extended=True):
        parts = ["<VNET>%s%s%s" % (
                     self.owned_xml(v),
                     perms_xml([1, 1, 0, 0, 0, 0, 0, 0, 0]),
                     ids_xml("CLUSTERS", v["clusters"]))]
        parts.append(opt_cdata("BRIDGE", v["bridge"]))
        parts.append(opt_cdata("BRIDGE_TYPE", v["bridge_type"]))
        parts.append(opt_cdata("STATE", v["state"]))
        parts.append(opt_cdata("PREV_STATE", v["prev_state"]))
        parts.append(opt_cdata("PARENT_NETWORK_ID", ""))
        parts.append(opt_cdata("TEMPLATE_ID", ""))
        parts.append(opt_cdata("VN_MAD", v["vn_mad"]))
        parts.append(opt_cdata("PHYDEV", v["phydev"]))
        parts.append(opt_cdata("VLAN_ID", v["vlan_id"]))
        parts.append(opt_cdata("OUTER_VLAN_ID", v["outer_vlan_id"]))
        parts.append("<VLAN_ID_AUTOMATIC>%d</VLAN_ID_AUTOMATIC>"
                     "<OUTER_VLAN_ID_AUTOMATIC>%d</OUTER_VLAN_ID_AUTOMATIC>"
                     "<USED_LEASES>0</USED_LEASES><VROUTERS></VROUTERS>"
                     "<UPDATED_VMS></UPDATED_VMS><OUTDATED_VMS></OUTDATED_VMS>"
                     "<UPDATING_VMS></UPDATING_VMS><ERROR_VMS></ERROR_VMS>" % (
                         v["vlan_auto"], v["outer_vlan_auto"]))
        parts.append(template_xml(v["template"]))
        parts.append("<AR_POOL>%s</AR_POOL></VNET>" % "".join(
            self.ar_xml(ar, extended) for ar in v["ars"]))
        return "".join(parts)

    def pool_xml(self, kind, render, objs=None):
        objs = self.store.all(kind) if objs is None else objs
        objs = sorted(objs, key=lambda o: o["id"], reverse=True)   # DESC
        tag = KINDS[kind].pool_tag
        return "<%s>%s</%s>" % (tag, "".join(render(o) for o in objs), tag)

    # ---------------------------------------------------------- AR helpers
    def build_ar(self, vector, ar_id):
        attrs = {k: v for k, v in vector}
        for key in ("AR_ID", "MAC_END", "IP_END", "USED_LEASES", "LEASES",
                    "NEXT_INDEX", "ALLOCATED"):
            attrs.pop(key, None)
        ar_type = attrs.get("TYPE", "").upper()
        if ar_type not in ("IP4", "IP6", "IP6_STATIC", "IP4_6",
                           "IP4_6_STATIC", "ETHER"):
            raise OnedError(INTERNAL, "Unknown or missing address range TYPE.")
        attrs["TYPE"] = ar_type
        # AddressRange::from_attr checks the IP, then the MAC, then the SIZE
        ip_int = None
        if ar_type in ("IP4", "IP4_6", "IP4_6_STATIC"):
            try:
                ip_int = ip_to_int(attrs.get("IP", ""))
            except ValueError:
                raise OnedError(INTERNAL,
                                "Wrong or empty IP attribute") from None
            attrs["IP"] = int_to_ip(ip_int)
        if attrs.get("MAC"):
            if not re.fullmatch(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}",
                                attrs["MAC"]):
                raise OnedError(INTERNAL, "Wrong format for MAC attribute: "
                                          "%s" % attrs["MAC"])
            attrs["MAC"] = attrs["MAC"].lower()
        elif ip_int is not None:
            attrs["MAC"] = int_to_mac((self.mac_prefix << 32) | ip_int)
        else:
            attrs["MAC"] = int_to_mac((self.mac_prefix << 32) |
                                      self.rand.getrandbits(32))
        try:
            size = int(attrs.get("SIZE", ""))
        except ValueError:
            size = -1
        if size < 0:      # an unsigned number: SIZE="0" is accepted
            raise OnedError(INTERNAL, "Wrong SIZE for address range")
        attrs["SIZE"] = str(size)
        attrs["AR_ID"] = str(ar_id)
        attrs["NEXT_INDEX"] = "0"
        attrs.setdefault("SHARED", "NO")
        return {"attrs": attrs}

    def vnet_ready_or_fail(self, vn, method):
        if vn["state"] not in (VN_READY, VN_UPDATE_FAILURE):
            raise OnedError(ACTION, "Could not execute %sVirtual Network is "
                                    "in wrong state: %s" % (
                                        method, VN_STATES[vn["state"]]))

    def free_vlan(self):
        used = {v["vlan_id"] for v in self.store.all("vnet")}
        vlan = 2
        while str(vlan) in used or vlan in (4095,):
            vlan += 1
        return str(vlan)

    def post_update_vnet(self, vn):
        """VirtualNetwork::post_update_template."""
        tpl = vn["template"]
        terase(tpl, "TEMPLATE_ID")
        vn_mad = tget(tpl, "VN_MAD", "")
        terase(tpl, "VN_MAD")
        if not vn_mad:
            raise OnedError(INTERNAL, "No VN_MAD in template for Virtual "
                                      "Network.")
        if vn_mad not in VN_MAD_CONF:
            raise OnedError(INTERNAL, 'VN_MAD named "%s" is not defined in '
                                      'oned.conf' % vn_mad)
        br_type = tget(tpl, "BRIDGE_TYPE", "")
        terase(tpl, "BRIDGE_TYPE")
        if vn_mad != vn["vn_mad"] and br_type == vn["bridge_type"]:
            br_type = ""
        vn["bridge_type"] = parse_bridge_type(vn_mad, br_type)
        vn["vn_mad"] = vn_mad
        tset(tpl, "VN_MAD", vn_mad)
        tset(tpl, "BRIDGE_TYPE", vn["bridge_type"])
        # PHYDEV, and VLAN_ID and OUTER_VLAN_ID unless automatic, are what
        # the new template says (nothing when it does not say)
        vn["phydev"] = tget(tpl, "PHYDEV", "")
        tset(tpl, "PHYDEV", vn["phydev"])
        terase(tpl, "AUTOMATIC_VLAN_ID")
        terase(tpl, "AUTOMATIC_OUTER_VLAN_ID")
        for key, fld, auto in (("VLAN_ID", "vlan_id", "vlan_auto"),
                               ("OUTER_VLAN_ID", "outer_vlan_id",
                                "outer_vlan_auto")):
            if vn[auto]:
                terase(tpl, key)
            else:
                vn[fld] = tget(tpl, key, "")
                tset(tpl, key, vn[fld])
        if tget(tpl, "BRIDGE"):
            vn["bridge"] = tget(tpl, "BRIDGE")
        tset(tpl, "BRIDGE", vn["bridge"])

    def update_template(self, kind, oid, text, utype, post=None):
        """SharedAPI::update: the object, the update type, then the new
        template (replacing the old one, utype 0, or merged into it, 1)
        and the kind's post-update processing, post(obj). A template that
        does not parse, or that post refuses, leaves the old one in place:
        "Cannot update template. <why>" (INTERNAL)."""
        obj = self.get(kind, oid)
        if utype not in (0, 1):
            raise OnedError(RPC_API, "Wrong update type")
        try:
            new = parse_template(text)
        except TemplateSyntaxError as exc:
            raise OnedError(INTERNAL, "Cannot update template. %s"
                            % parse_error_message(exc)) from None
        saved = json.loads(json.dumps(obj))
        if utype == 0:
            obj["template"] = [[k, v if isinstance(v, str) else
                                [list(x) for x in v]] for k, v in new]
        else:
            tmerge(obj["template"], new)
        if post is not None:
            try:
                post(obj)
            except OnedError as exc:
                obj.clear()
                obj.update(saved)
                raise OnedError(INTERNAL, "Cannot update template. %s"
                                % exc.message) from None
        self.store.touch(kind, obj)
        return obj


def next_ar_id(vn):
    """The id oned gives a new address range: AddressRangePool's next_ar,
    which oned rebuilds from the stored ARs each time it reads the network
    (the highest AR_ID + 1, or 0), so an id freed by rm_ar at the top is
    given again."""
    return max((int(ar["attrs"]["AR_ID"]) for ar in vn["ars"]), default=-1) + 1


def parse_bridge_type(vn_mad, wanted):
    """VirtualNetwork::parse_bridge_type: the VN_MAD_CONF's first
    BRIDGE_TYPE, or the one asked for if the driver allows it."""
    allowed = VN_MAD_CONF[vn_mad]
    wanted = wanted.strip()
    if not wanted:
        return allowed[0]
    if wanted not in allowed:
        raise OnedError(INTERNAL, 'Attribute BRIDGE_TYPE has wrong value "%s" '
                        'for VN_MAD_CONF %s in oned.conf' % (wanted, vn_mad))
    return wanted
