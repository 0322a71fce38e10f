# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What oned answers, parsed: hosts, clusters, virtual networks, datastores and images as dataclasses.

Pool documents come back sorted by ascending id (oned lists them descending);
``Pool`` indexes one pool by id and by name (id 0 is a valid id).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional

from ansible.module_utils.stratuslab_one.errors import NO_EXISTS, OneError, OneNotFoundError

HOST_STATES = {0: "INIT", 1: "MONITORING_MONITORED", 2: "MONITORED", 3: "ERROR", 4: "DISABLED",
               5: "MONITORING_ERROR", 6: "MONITORING_INIT", 7: "MONITORING_DISABLED", 8: "OFFLINE"}
HOST_INIT, HOST_MONITORED, HOST_ERROR, HOST_DISABLED, HOST_OFFLINE = 0, 2, 3, 4, 8
# one.host.status codes
HOST_STATUS = {"enabled": 0, "disabled": 1, "offline": 2}

VNET_STATES = {0: "INIT", 1: "READY", 2: "LOCK_CREATE", 3: "LOCK_DELETE", 4: "DONE", 5: "ERROR",
               6: "UPDATE_FAILURE"}
VNET_READY, VNET_LOCK_CREATE, VNET_LOCK_DELETE, VNET_ERROR, VNET_UPDATE_FAILURE = 1, 2, 3, 5, 6

DATASTORE_TYPES = {0: "IMAGE", 1: "SYSTEM", 2: "FILE"}
DATASTORE_TYPE_TEMPLATE = {"image": "IMAGE_DS", "system": "SYSTEM_DS", "file": "FILE_DS"}


def _text(elem, tag, default=""):
    if elem is None:
        return default
    child = elem.find(tag)
    if child is None:
        return default
    return child.text if child.text is not None else ""


def _int(elem, tag, default=None):
    value = _text(elem, tag, None)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value.strip())
    except ValueError:
        return default


def _ids(elem, tag):
    container = elem.find(tag) if elem is not None else None
    if container is None:
        return []
    return sorted(int(c.text) for c in container.findall("ID") if c.text and c.text.strip())


def element_to_value(elem):
    """A template element: leaf -> str, element with children -> dict."""
    children = list(elem)
    if not children:
        return elem.text if elem.text is not None else ""
    return elements_to_dict(children)


def elements_to_dict(children):
    """Child elements -> dict; repeated tags become lists."""
    result = {}
    for child in children:
        value = element_to_value(child)
        if child.tag in result:
            if not isinstance(result[child.tag], list):
                result[child.tag] = [result[child.tag]]
            result[child.tag].append(value)
        else:
            result[child.tag] = value
    return result


def _template(elem):
    tmpl = elem.find("TEMPLATE") if elem is not None else None
    return elements_to_dict(list(tmpl)) if tmpl is not None else {}


class _Named:
    """``state_name`` and ``type_name``: the names of the object's numeric
    ``state`` and ``type`` in its class's STATE_NAMES and TYPE_NAMES."""

    STATE_NAMES: ClassVar[Dict[int, str]] = {}
    TYPE_NAMES: ClassVar[Dict[int, str]] = {}

    @property
    def state_name(self):
        return self.STATE_NAMES.get(self.state, str(self.state))

    @property
    def type_name(self):
        return self.TYPE_NAMES.get(self.type, str(self.type))


def _parse_root(xml_text, expected):
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise OneError("Cannot parse OpenNebula answer as XML (%s)" % exc)
    if root.tag != expected:
        raise OneError("Expected <%s> from OpenNebula, got <%s>" % (expected, root.tag))
    return root


@dataclass
class _Stateful(_Named):
    """An object oned gives with its state and the state before it
    (PREV_STATE): a host or a virtual network."""

    id: int
    name: str
    state: int
    prev_state: Optional[int] = None

    @staticmethod
    def _state_fields(elem):
        """The fields above, as the object's element gives them."""
        return dict(id=_int(elem, "ID"), name=_text(elem, "NAME"), state=_int(elem, "STATE", -1),
                    prev_state=_int(elem, "PREV_STATE"))


@dataclass
class Host(_Stateful):
    STATE_NAMES: ClassVar[Dict[int, str]] = HOST_STATES

    im_mad: str = ""
    vm_mad: str = ""
    cluster_id: int = -1
    cluster: str = ""
    running_vms: int = 0
    vms: List[int] = field(default_factory=list)
    template: Dict[str, Any] = field(default_factory=dict)
    # HOST_SHARE: what oned has allocated on the host (CPU in percent of one
    # core, memory in KiB) and the most it may allocate there.
    max_cpu: int = 0
    cpu_usage: int = 0
    max_mem: int = 0
    mem_usage: int = 0

    @property
    def error(self):
        value = self.template.get("ERROR", "")
        return value if isinstance(value, str) else str(value)

    @classmethod
    def from_element(cls, elem):
        share = elem.find("HOST_SHARE")
        return cls(
            **cls._state_fields(elem), im_mad=_text(elem, "IM_MAD"), vm_mad=_text(elem, "VM_MAD"),
            cluster_id=_int(elem, "CLUSTER_ID", -1),
            cluster=_text(elem, "CLUSTER"), running_vms=_int(share, "RUNNING_VMS", 0),
            vms=_ids(elem, "VMS"), template=_template(elem),
            max_cpu=_int(share, "MAX_CPU", 0), cpu_usage=_int(share, "CPU_USAGE", 0),
            max_mem=_int(share, "MAX_MEM", 0), mem_usage=_int(share, "MEM_USAGE", 0))


@dataclass
class Cluster:
    id: int
    name: str
    hosts: List[int] = field(default_factory=list)
    datastores: List[int] = field(default_factory=list)
    vnets: List[int] = field(default_factory=list)
    template: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_element(cls, elem):
        return cls(id=_int(elem, "ID"), name=_text(elem, "NAME"), hosts=_ids(elem, "HOSTS"),
                   datastores=_ids(elem, "DATASTORES"), vnets=_ids(elem, "VNETS"),
                   template=_template(elem))

    def summary(self):
        return {"id": self.id, "name": self.name, "hosts": self.hosts,
                "datastores": self.datastores, "vnets": self.vnets}


# AR fields oned computes or owns; everything else in an AR is a user attribute
AR_SYSTEM_FIELDS = frozenset(("AR_ID", "IP", "MAC", "NEXT_INDEX", "SHARED", "SIZE", "TYPE",
                              "MAC_END", "IP_END", "USED_LEASES", "LEASES", "IP6", "IP6_END",
                              "IP6_ULA", "IP6_ULA_END", "IP6_GLOBAL", "IP6_GLOBAL_END",
                              "PARENT_NETWORK_AR_ID", "ALLOCATED"))


@dataclass
class AddressRange:
    ar_id: int
    type: str
    size: int
    ip: str = ""
    mac: str = ""
    ip_end: str = ""
    mac_end: str = ""
    used_leases: int = 0
    attributes: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_element(cls, elem):
        attrs = {}
        for child in elem:
            if child.tag not in AR_SYSTEM_FIELDS:
                attrs[child.tag] = element_to_value(child)
        return cls(ar_id=_int(elem, "AR_ID"), type=_text(elem, "TYPE"), size=_int(elem, "SIZE", 0),
                   ip=_text(elem, "IP"), mac=_text(elem, "MAC"), ip_end=_text(elem, "IP_END"),
                   mac_end=_text(elem, "MAC_END"), used_leases=_int(elem, "USED_LEASES", 0),
                   attributes=attrs)


@dataclass
class Vnet(_Stateful):
    STATE_NAMES: ClassVar[Dict[int, str]] = VNET_STATES

    uname: str = ""
    gname: str = ""
    clusters: List[int] = field(default_factory=list)
    bridge: str = ""
    bridge_type: str = ""
    vn_mad: str = ""
    phydev: str = ""
    vlan_id: str = ""
    used_leases: int = 0
    locked: bool = False
    template: Dict[str, Any] = field(default_factory=dict)
    ars: List[AddressRange] = field(default_factory=list)

    @classmethod
    def from_element(cls, elem):
        ar_pool = elem.find("AR_POOL")
        ars = [AddressRange.from_element(a) for a in ar_pool.findall("AR")] if ar_pool is not None else []
        ars.sort(key=lambda a: a.ar_id)
        return cls(
            **cls._state_fields(elem), uname=_text(elem, "UNAME"), gname=_text(elem, "GNAME"),
            clusters=_ids(elem, "CLUSTERS"), bridge=_text(elem, "BRIDGE"),
            bridge_type=_text(elem, "BRIDGE_TYPE"), vn_mad=_text(elem, "VN_MAD"),
            phydev=_text(elem, "PHYDEV"), vlan_id=_text(elem, "VLAN_ID"),
            used_leases=_int(elem, "USED_LEASES", 0), locked=elem.find("LOCK") is not None,
            template=_template(elem), ars=ars)


@dataclass
class Datastore(_Named):
    TYPE_NAMES: ClassVar[Dict[int, str]] = DATASTORE_TYPES

    id: int
    name: str
    type: int
    ds_mad: str = ""
    tm_mad: str = ""
    base_path: str = ""
    state: int = 0
    clusters: List[int] = field(default_factory=list)
    total_mb: int = 0
    free_mb: int = 0
    used_mb: int = 0
    template: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_element(cls, elem):
        return cls(
            id=_int(elem, "ID"), name=_text(elem, "NAME"), type=_int(elem, "TYPE", 0),
            ds_mad=_text(elem, "DS_MAD"), tm_mad=_text(elem, "TM_MAD"),
            base_path=_text(elem, "BASE_PATH"), state=_int(elem, "STATE", 0),
            clusters=_ids(elem, "CLUSTERS"), total_mb=_int(elem, "TOTAL_MB", 0),
            free_mb=_int(elem, "FREE_MB", 0), used_mb=_int(elem, "USED_MB", 0),
            template=_template(elem))

    def summary(self):
        return {"id": self.id, "name": self.name, "type": self.type_name.lower(),
                "ds_mad": self.ds_mad, "tm_mad": self.tm_mad, "base_path": self.base_path,
                "clusters": self.clusters}


# Images: OpenNebula's IMAGE document (share/doc/xsd/image.xsd in OpenNebula's repository).
IMAGE_STATES = {0: "INIT", 1: "READY", 2: "USED", 3: "DISABLED", 4: "LOCKED", 5: "ERROR", 6: "CLONE",
                7: "DELETE", 8: "USED_PERS", 9: "LOCKED_USED", 10: "LOCKED_USED_PERS"}
IMAGE_READY, IMAGE_ERROR = 1, 5
IMAGE_TYPES = {0: "OS", 1: "CDROM", 2: "DATABLOCK", 3: "KERNEL", 4: "RAMDISK", 5: "CONTEXT"}
DATASTORE_IMAGE = 0


@dataclass
class Image(_Named):
    STATE_NAMES: ClassVar[Dict[int, str]] = IMAGE_STATES
    TYPE_NAMES: ClassVar[Dict[int, str]] = IMAGE_TYPES

    id: int
    name: str
    uid: int = 0
    gid: int = 0
    type: int = 0
    state: int = 0
    persistent: int = 0
    path: str = ""
    source: str = ""
    size_mb: int = 0
    datastore_id: int = -1
    datastore: str = ""
    template: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_element(cls, elem):
        def leaf(tag):
            return _text(elem, tag).strip()

        return cls(
            id=_int(elem, "ID", -1), name=leaf("NAME"), uid=_int(elem, "UID", 0),
            gid=_int(elem, "GID", 0), type=_int(elem, "TYPE", 0), state=_int(elem, "STATE", 0),
            persistent=_int(elem, "PERSISTENT", 0), path=leaf("PATH"), source=leaf("SOURCE"),
            size_mb=_int(elem, "SIZE", 0), datastore_id=_int(elem, "DATASTORE_ID", -1),
            datastore=leaf("DATASTORE"), template=_template(elem))

    def summary(self):
        return {"id": self.id, "name": self.name, "type": self.type_name.lower(), "state": self.state_name,
                "path": self.path, "source": self.source, "size_mb": self.size_mb,
                "datastore_id": self.datastore_id, "datastore": self.datastore, "template": self.template}


# Virtual machines: OpenNebula's VM document (share/doc/xsd/vm.xsd). STATE and
# LCM_STATE (include/VirtualMachine.h); a VM is on a host while its last
# history record is open there: ACTIVE (any LCM state), POWEROFF, SUSPENDED.
VM_STATES = {0: "INIT", 1: "PENDING", 2: "HOLD", 3: "ACTIVE", 4: "STOPPED", 5: "SUSPENDED", 6: "DONE",
             8: "POWEROFF", 9: "UNDEPLOYED", 10: "CLONING", 11: "CLONING_FAILURE"}
VM_ACTIVE, VM_SUSPENDED, VM_POWEROFF = 3, 5, 8
LCM_STATES = {0: "LCM_INIT", 1: "PROLOG", 2: "BOOT", 3: "RUNNING", 4: "MIGRATE", 5: "SAVE_STOP",
              6: "SAVE_SUSPEND", 7: "SAVE_MIGRATE", 8: "PROLOG_MIGRATE", 9: "PROLOG_RESUME",
              10: "EPILOG_STOP", 11: "EPILOG", 12: "SHUTDOWN", 15: "CLEANUP_RESUBMIT", 16: "UNKNOWN",
              17: "HOTPLUG", 18: "SHUTDOWN_POWEROFF", 19: "BOOT_UNKNOWN", 20: "BOOT_POWEROFF",
              21: "BOOT_SUSPENDED", 22: "BOOT_STOPPED", 23: "CLEANUP_DELETE", 24: "HOTPLUG_SNAPSHOT",
              25: "HOTPLUG_NIC", 26: "HOTPLUG_SAVEAS", 27: "HOTPLUG_SAVEAS_POWEROFF",
              28: "HOTPLUG_SAVEAS_SUSPENDED", 29: "SHUTDOWN_UNDEPLOY", 30: "EPILOG_UNDEPLOY",
              31: "PROLOG_UNDEPLOY", 32: "BOOT_UNDEPLOY", 33: "HOTPLUG_PROLOG_POWEROFF",
              34: "HOTPLUG_EPILOG_POWEROFF", 35: "BOOT_MIGRATE", 36: "BOOT_FAILURE",
              37: "BOOT_MIGRATE_FAILURE", 38: "PROLOG_MIGRATE_FAILURE", 39: "PROLOG_FAILURE",
              40: "EPILOG_FAILURE", 41: "EPILOG_STOP_FAILURE", 42: "EPILOG_UNDEPLOY_FAILURE",
              43: "PROLOG_MIGRATE_POWEROFF", 44: "PROLOG_MIGRATE_POWEROFF_FAILURE",
              45: "PROLOG_MIGRATE_SUSPEND", 46: "PROLOG_MIGRATE_SUSPEND_FAILURE",
              47: "BOOT_UNDEPLOY_FAILURE", 48: "BOOT_STOPPED_FAILURE", 49: "PROLOG_RESUME_FAILURE",
              50: "PROLOG_UNDEPLOY_FAILURE", 51: "DISK_SNAPSHOT_POWEROFF",
              52: "DISK_SNAPSHOT_REVERT_POWEROFF", 53: "DISK_SNAPSHOT_DELETE_POWEROFF",
              54: "DISK_SNAPSHOT_SUSPENDED", 55: "DISK_SNAPSHOT_REVERT_SUSPENDED",
              56: "DISK_SNAPSHOT_DELETE_SUSPENDED", 57: "DISK_SNAPSHOT", 58: "DISK_SNAPSHOT_REVERT", 59: "DISK_SNAPSHOT_DELETE",
              60: "PROLOG_MIGRATE_UNKNOWN", 61: "PROLOG_MIGRATE_UNKNOWN_FAILURE", 62: "DISK_RESIZE",
              63: "DISK_RESIZE_POWEROFF", 64: "DISK_RESIZE_UNDEPLOYED", 65: "HOTPLUG_NIC_POWEROFF",
              66: "HOTPLUG_RESIZE", 67: "HOTPLUG_SAVEAS_UNDEPLOYED", 68: "HOTPLUG_SAVEAS_STOPPED",
              69: "BACKUP", 70: "BACKUP_POWEROFF", 71: "RESTORE"}
LCM_RUNNING = 3


def _float(elem, tag, default=0.0):
    value = _text(elem, tag, None)
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default


@dataclass
class Vm:
    """A VM as the VM pool and one.vm.info give it; ``hid`` and the times are its last history record's."""
    id: int
    name: str
    state: int
    lcm_state: int = 0
    uname: str = ""
    cpu: float = 0.0
    memory_mb: int = 0
    hid: int = -1
    hostname: str = ""
    seq: int = -1
    # The last history record's running start time and prolog end time
    # (one.vm.info only; 0 in the pool's short records and until they happen).
    rstime: int = 0
    petime: int = 0

    @property
    def state_name(self):
        if self.state == VM_ACTIVE:
            return LCM_STATES.get(self.lcm_state, str(self.lcm_state))
        return VM_STATES.get(self.state, str(self.state))

    @classmethod
    def from_element(cls, elem):
        records = elem.findall("HISTORY_RECORDS/HISTORY")
        last = records[-1] if records else None
        tmpl = elem.find("TEMPLATE")
        return cls(
            id=_int(elem, "ID", -1), name=_text(elem, "NAME").strip(), state=_int(elem, "STATE", -1),
            lcm_state=_int(elem, "LCM_STATE", 0), uname=_text(elem, "UNAME").strip(),
            cpu=_float(tmpl, "CPU"), memory_mb=_int(tmpl, "MEMORY", 0) if tmpl is not None else 0,
            hid=_int(last, "HID", -1) if last is not None else -1,
            hostname=_text(last, "HOSTNAME").strip() if last is not None else "",
            seq=_int(last, "SEQ", -1) if last is not None else -1,
            rstime=_int(last, "RSTIME", 0) if last is not None else 0,
            petime=_int(last, "PETIME", 0) if last is not None else 0)

    def summary(self):
        return {"id": self.id, "name": self.name, "state": self.state_name, "host_id": self.hid,
                "host": self.hostname}


@dataclass
class User:
    """A user of one.userpool.info: its auth driver and password (a DN list for the x509 driver)."""

    id: int
    name: str
    gid: int
    gname: str
    auth_driver: str
    password: str
    enabled: bool

    @classmethod
    def from_element(cls, elem):
        return cls(id=_int(elem, "ID", -1), name=_text(elem, "NAME").strip(), gid=_int(elem, "GID", -1),
                   gname=_text(elem, "GNAME").strip(), auth_driver=_text(elem, "AUTH_DRIVER").strip(),
                   password=_text(elem, "PASSWORD"), enabled=_text(elem, "ENABLED").strip() == "1")


_POOLS = {Host: ("HOST_POOL", "HOST"), Cluster: ("CLUSTER_POOL", "CLUSTER"),
          Vnet: ("VNET_POOL", "VNET"), Datastore: ("DATASTORE_POOL", "DATASTORE"),
          Image: ("IMAGE_POOL", "IMAGE"), Vm: ("VM_POOL", "VM"),
          User: ("USER_POOL", "USER")}


def parse_pool(cls, xml_text):
    """Parse a pool document into objects sorted by ascending id.

    oned lists pools in DESCENDING id order by default (API_LIST_ORDER), and
    an empty pool is ``<X_POOL></X_POOL>``; neither matters here.
    """
    root_tag, item_tag = _POOLS[cls]
    root = _parse_root(xml_text, root_tag)
    items = [cls.from_element(e) for e in root.findall(item_tag)]
    items.sort(key=lambda o: o.id)
    return items


def parse_object(cls, xml_text):
    return cls.from_element(_parse_root(xml_text, _POOLS[cls][1]))


class Pool:
    """Objects of one pool, indexed by id and by name."""

    def __init__(self, kind, items):
        self.kind = kind
        self.items = list(items)
        self.by_id = {o.id: o for o in self.items}
        self.by_name = {}
        for obj in self.items:
            self.by_name.setdefault(obj.name, []).append(obj)

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)

    def get(self, ref):
        """Find by id (int, or a string of digits) or name; None if absent."""
        if ref is None:
            return None
        if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
            obj = self.by_id.get(int(ref))
            if obj is not None or isinstance(ref, int):
                return obj
        return self.named(ref)

    def named(self, name):
        """Find by name only (a host called "1234" is not host id 1234); None if absent."""
        matches = self.by_name.get(str(name), [])
        if len(matches) > 1:
            raise OneError("%d %ss are named %r (ids %s); use the id"
                           % (len(matches), self.kind, name, ", ".join(str(m.id) for m in matches)))
        return matches[0] if matches else None

    def require(self, ref):
        """Find by id (0 is valid) or name; OneNotFoundError if absent."""
        obj = self.get(ref)
        if obj is None:
            raise OneNotFoundError("%s %r does not exist" % (self.kind, ref), code=NO_EXISTS)
        return obj

    def ids(self, refs):
        """The ids of names or ids; an unknown one fails (before any write)."""
        return [self.require(ref).id for ref in refs or []]


def datastore_location(xml_text):
    """DATASTORE_LOCATION of oned's configuration (one.system.config)."""
    return _text(_parse_root(xml_text, "OPENNEBULA_CONFIGURATION"), "DATASTORE_LOCATION")
