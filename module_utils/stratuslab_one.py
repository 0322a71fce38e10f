# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenNebula XML-RPC client shared by the project's opennebula_* modules.

Standard library only (xmlrpc.client, ElementTree, dataclasses), so nothing has
to be installed on the host that runs the modules.  See
docs/opennebula-api-layer.md for the design notes.

Layers, bottom up:

* ``OneClient.call``: one XML-RPC method, the ``[ok, result, code, ...]``
  envelope turned into a value or a ``OneError`` subclass, retries with
  exponential backoff on connection errors and LOCKED answers, and call
  counters (``client.calls``, ``client.calls_by_method``, and
  ``client.writes``: the calls oned accepted that may have changed something).
* typed wrappers (``host_allocate``, ``vn_add_ar`` ...) and pool readers that
  return dataclasses (``Host``, ``Cluster``, ``Vnet``/``AddressRange``,
  ``Datastore``), whatever the pool order.
* polling helpers: ``wait_vnet_ready`` and ``wait_hosts`` (one hostpool read
  per poll, whatever the number of hosts waited for).
* OpenNebula template syntax: ``render_template`` and ``parse_template``.
* ``OneModuleHelper`` and ``connection_argument_spec`` for the modules.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
import time
import xml.etree.ElementTree as ET
import xml.parsers.expat
import xmlrpc.client
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

DEFAULT_URL = "http://localhost:2633/RPC2"
DEFAULT_AUTH_FILE = "~/.one/one_auth"

# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

# Request::ErrorCode in OpenNebula's include/Request.h
SUCCESS = 0x0000
AUTHENTICATION = 0x0100
AUTHORIZATION = 0x0200
NO_EXISTS = 0x0400
ACTION = 0x0800
RPC_API = 0x1000
INTERNAL = 0x2000
ALLOCATE = 0x4000
LOCKED = 0x8000
REPLICATION = 0x10000

ERROR_NAMES = {
    AUTHENTICATION: "AUTHENTICATION",
    AUTHORIZATION: "AUTHORIZATION",
    NO_EXISTS: "NO_EXISTS",
    ACTION: "ACTION",
    RPC_API: "RPC_API",
    INTERNAL: "INTERNAL",
    ALLOCATE: "ALLOCATE",
    LOCKED: "LOCKED",
    REPLICATION: "REPLICATION",
}


class OneError(Exception):
    """Base class of every error raised by this module.

    ``message`` is OpenNebula's own text (``[one.host.info] Error getting
    host [99999].``), ``code`` its numeric error code (None for transport
    errors), ``method`` the XML-RPC method and ``resp_id`` the object id
    oned reports (NO_EXISTS) or -1.
    """

    def __init__(self, message, code=None, method=None, resp_id=-1):
        super().__init__(message)
        self.message = message
        self.code = code
        self.method = method
        self.resp_id = resp_id

    @property
    def code_name(self):
        return ERROR_NAMES.get(self.code, str(self.code) if self.code is not None else None)

    def to_dict(self):
        return {"msg": self.message, "code": self.code, "code_name": self.code_name,
                "method": self.method, "resp_id": self.resp_id}


class OneAuthenticationError(OneError):
    """AUTHENTICATION (0x100): wrong user, password or session string."""


class OneAuthorizationError(OneError):
    """AUTHORIZATION (0x200): the user may not do this."""


class OneNotFoundError(OneError):
    """NO_EXISTS (0x400): the object does not exist."""


class OneActionError(OneError):
    """ACTION (0x800): the action is refused (wrong state, not empty...)."""


class OneApiError(OneError):
    """RPC_API (0x1000): wrong parameter value (bad filter, update type...)."""


class OneInternalError(OneError):
    """INTERNAL (0x2000): template errors, duplicate vnet/datastore names..."""


class OneAllocateError(OneError):
    """ALLOCATE (0x4000): allocation refused (duplicate host/cluster name...)."""


class OneLockedError(OneError):
    """LOCKED (0x8000): the object is locked; retried by the client."""


class OneReplicationError(OneError):
    """REPLICATION (0x10000): HA replication problem."""


class OneFaultError(OneError):
    """An XML-RPC fault from xmlrpc-c (wrong parameter type, unknown method)."""


class OneConnectionError(OneError):
    """The endpoint could not be reached, or answered something not XML-RPC."""


class OneTimeoutError(OneError):
    """A polling helper gave up waiting; ``pending`` holds what was left."""

    def __init__(self, message, pending=None, **kwargs):
        super().__init__(message, **kwargs)
        self.pending = pending or {}


class OneConfigError(OneError):
    """Missing or unreadable endpoint/credentials."""


ERROR_CLASSES = {
    AUTHENTICATION: OneAuthenticationError,
    AUTHORIZATION: OneAuthorizationError,
    NO_EXISTS: OneNotFoundError,
    ACTION: OneActionError,
    RPC_API: OneApiError,
    INTERNAL: OneInternalError,
    ALLOCATE: OneAllocateError,
    LOCKED: OneLockedError,
    REPLICATION: OneReplicationError,
}


def error_from_response(method, response):
    """Build the exception for a failure envelope ``[False, msg, code, id, idx]``."""
    message = str(response[1]) if len(response) > 1 else "unknown error"
    code = response[2] if len(response) > 2 and isinstance(response[2], int) else None
    resp_id = response[3] if len(response) > 3 and isinstance(response[3], int) else -1
    cls = ERROR_CLASSES.get(code, OneError)
    return cls(message, code=code, method=method, resp_id=resp_id)


# --------------------------------------------------------------------------
# Endpoint and credentials
# --------------------------------------------------------------------------

def read_auth_file(path):
    """Return (user, password) from a one_auth file (``user:password``)."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            line = handle.readline().strip()
    except OSError as exc:
        raise OneConfigError("Cannot read OpenNebula auth file %s: %s" % (path, exc.strerror))
    if ":" not in line:
        raise OneConfigError("OpenNebula auth file %s must hold 'user:password'" % path)
    user, password = line.split(":", 1)
    return user, password


def resolve_connection(api_url=None, api_username=None, api_password=None, environ=None):
    """Resolve endpoint and credentials the way OpenNebula's CLI does.

    Module parameters win; then ``ONE_XMLRPC`` for the endpoint and the file
    named by ``ONE_AUTH`` (else ``~/.one/one_auth``) for ``user:password``.
    Returns (url, username, password).
    """
    env = os.environ if environ is None else environ
    url = api_url or env.get("ONE_XMLRPC") or DEFAULT_URL
    user, password = api_username, api_password
    if not user or password is None:
        auth_file = env.get("ONE_AUTH") or DEFAULT_AUTH_FILE
        file_user, file_password = read_auth_file(auth_file)
        if not user:
            user = file_user
            if password is None:
                password = file_password
        elif password is None:
            if user != file_user:
                raise OneConfigError("api_password not given and auth file %s is for user %s, not %s"
                                     % (auth_file, file_user, user))
            password = file_password
    return url, user, password


# --------------------------------------------------------------------------
# Transport
# --------------------------------------------------------------------------

class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout):
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class _TimeoutSafeTransport(xmlrpc.client.SafeTransport):
    def __init__(self, timeout, context):
        super().__init__(context=context)
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


def make_proxy(url, timeout=30, validate_certs=True, ca_path=None):
    """An xmlrpc.client.ServerProxy with a timeout and the TLS policy."""
    if url.lower().startswith("https://"):
        if validate_certs:
            context = ssl.create_default_context(cafile=ca_path)
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        transport = _TimeoutSafeTransport(timeout, context)
    else:
        transport = _TimeoutTransport(timeout)
    # allow_none: never needed by oned, but harmless; use_builtin_types keeps str
    return xmlrpc.client.ServerProxy(url, transport=transport, allow_none=False)


# Errors that mean the request never reached oned: safe to resend anything.
_NOT_SENT_ERRORS = (ConnectionRefusedError, socket.gaierror)
# Errors during the exchange: the request may have been executed; only
# read-only methods are resent.
_EXCHANGE_ERRORS = (OSError, http.client.HTTPException)

_READ_ONLY = re.compile(r"\.(info|version|config)$|pool\.info$")


# --------------------------------------------------------------------------
# Typed objects
# --------------------------------------------------------------------------

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


def _parse_root(xml_text, expected):
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise OneError("Cannot parse OpenNebula answer as XML (%s)" % exc)
    if root.tag != expected:
        raise OneError("Expected <%s> from OpenNebula, got <%s>" % (expected, root.tag))
    return root


@dataclass
class Host:
    id: int
    name: str
    state: int
    prev_state: Optional[int] = None
    im_mad: str = ""
    vm_mad: str = ""
    cluster_id: int = -1
    cluster: str = ""
    running_vms: int = 0
    vms: List[int] = field(default_factory=list)
    template: Dict[str, Any] = field(default_factory=dict)

    @property
    def state_name(self):
        return HOST_STATES.get(self.state, str(self.state))

    @property
    def error(self):
        value = self.template.get("ERROR", "")
        return value if isinstance(value, str) else str(value)

    @classmethod
    def from_element(cls, elem):
        share = elem.find("HOST_SHARE")
        return cls(
            id=_int(elem, "ID"), name=_text(elem, "NAME"), state=_int(elem, "STATE", -1),
            prev_state=_int(elem, "PREV_STATE"), im_mad=_text(elem, "IM_MAD"),
            vm_mad=_text(elem, "VM_MAD"), cluster_id=_int(elem, "CLUSTER_ID", -1),
            cluster=_text(elem, "CLUSTER"), running_vms=_int(share, "RUNNING_VMS", 0),
            vms=_ids(elem, "VMS"), template=_template(elem))

    def summary(self):
        return {"id": self.id, "name": self.name, "state": self.state_name,
                "im_mad": self.im_mad, "vm_mad": self.vm_mad,
                "cluster_id": self.cluster_id, "cluster": self.cluster}


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
class Vnet:
    id: int
    name: str
    state: int
    prev_state: Optional[int] = None
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

    @property
    def state_name(self):
        return VNET_STATES.get(self.state, str(self.state))

    @classmethod
    def from_element(cls, elem):
        ar_pool = elem.find("AR_POOL")
        ars = [AddressRange.from_element(a) for a in ar_pool.findall("AR")] if ar_pool is not None else []
        ars.sort(key=lambda a: a.ar_id)
        return cls(
            id=_int(elem, "ID"), name=_text(elem, "NAME"), state=_int(elem, "STATE", -1),
            prev_state=_int(elem, "PREV_STATE"), uname=_text(elem, "UNAME"), gname=_text(elem, "GNAME"),
            clusters=_ids(elem, "CLUSTERS"), bridge=_text(elem, "BRIDGE"),
            bridge_type=_text(elem, "BRIDGE_TYPE"), vn_mad=_text(elem, "VN_MAD"),
            phydev=_text(elem, "PHYDEV"), vlan_id=_text(elem, "VLAN_ID"),
            used_leases=_int(elem, "USED_LEASES", 0), locked=elem.find("LOCK") is not None,
            template=_template(elem), ars=ars)

    def summary(self):
        return {"id": self.id, "name": self.name, "state": self.state_name,
                "clusters": self.clusters, "bridge": self.bridge, "vn_mad": self.vn_mad,
                "phydev": self.phydev, "vlan_id": self.vlan_id,
                "address_ranges": [asdict(a) for a in self.ars]}


@dataclass
class Datastore:
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

    @property
    def type_name(self):
        return DATASTORE_TYPES.get(self.type, str(self.type))

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


_POOLS = {Host: ("HOST_POOL", "HOST"), Cluster: ("CLUSTER_POOL", "CLUSTER"),
          Vnet: ("VNET_POOL", "VNET"), Datastore: ("DATASTORE_POOL", "DATASTORE")}


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
        matches = self.by_name.get(str(ref), [])
        if len(matches) > 1:
            raise OneError("%d %ss are named %r (ids %s); use the id"
                           % (len(matches), self.kind, ref, ", ".join(str(m.id) for m in matches)))
        return matches[0] if matches else None

    def named(self, name):
        """Find by name only (a host called "1234" is not host id 1234); None if absent."""
        matches = self.by_name.get(str(name), [])
        if len(matches) > 1:
            raise OneError("%d %ss are named %r (ids %s); use the id"
                           % (len(matches), self.kind, name, ", ".join(str(m.id) for m in matches)))
        return matches[0] if matches else None

    def require(self, ref):
        obj = self.get(ref)
        if obj is None:
            raise OneNotFoundError("%s %r does not exist" % (self.kind, ref), code=NO_EXISTS)
        return obj


# --------------------------------------------------------------------------
# OpenNebula template syntax
# --------------------------------------------------------------------------

_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-.]*$")


def quote_value(value):
    """Quote a scalar for OpenNebula's template syntax.

    oned's lexer knows a single escape, ``\\"`` for a double quote; every
    other backslash is literal.  So only quotes are escaped, and a value
    ending with a backslash cannot be written (it would escape the closing
    quote) and is refused.
    """
    if isinstance(value, bool):
        value = "YES" if value else "NO"
    text = str(value)
    if text.endswith("\\"):
        raise OneError("OpenNebula template values cannot end with a backslash: %r" % text)
    return '"' + text.replace('"', '\\"') + '"'


def _check_key(key):
    key = str(key)
    if not _KEY_RE.match(key):
        raise OneError("Invalid OpenNebula template attribute name %r" % key)
    return key.upper()


def render_vector(key, attrs):
    """``KEY=[A="1",B="2"]`` (one line)."""
    inner = ",".join("%s=%s" % (_check_key(k), quote_value(v)) for k, v in attrs.items()
                     if v is not None)
    return "%s=[%s]" % (_check_key(key), inner)


def render_template(attrs):
    """Render a dict as OpenNebula template text.

    Scalars become ``KEY="value"``, dicts become vector attributes
    ``KEY=[SUB="v",...]``, lists repeat the attribute (so a list of dicts
    gives several ``AR=[...]``).  None values are skipped, keys upper-cased.
    """
    lines = []
    for key, value in attrs.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, dict):
                lines.append(render_vector(key, item))
            else:
                lines.append("%s=%s" % (_check_key(key), quote_value(item)))
    return "\n".join(lines) + ("\n" if lines else "")


class _TemplateParser:
    def __init__(self, text):
        self.text = text
        self.pos = 0

    def error(self, msg):
        line = self.text.count("\n", 0, self.pos) + 1
        raise OneError("Template parse error at line %d: %s" % (line, msg))

    def skip(self, newlines=True):
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            else:
                break

    def key(self):
        match = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-.]*").match(self.text, self.pos)
        if not match:
            self.error("attribute name expected")
        self.pos = match.end()
        return match.group(0).upper()

    def expect(self, char):
        self.skip()
        if not self.text.startswith(char, self.pos):
            self.error("%r expected" % char)
        self.pos += 1

    def scalar(self, in_vector):
        self.skip(newlines=False)
        if self.text.startswith('"', self.pos):
            self.pos += 1
            out = []
            while True:
                if self.pos >= len(self.text):
                    self.error("unterminated string")
                char = self.text[self.pos]
                if char == "\\" and self.pos + 1 < len(self.text) and self.text[self.pos + 1] == '"':
                    out.append(self.text[self.pos + 1])
                    self.pos += 2
                elif char == '"':
                    self.pos += 1
                    return "".join(out)
                else:
                    out.append(char)
                    self.pos += 1
        stop = ",]\n" if in_vector else "\n"
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stop and self.text[self.pos] != "#":
            self.pos += 1
        return self.text[start:self.pos].strip()

    def parse(self):
        result = {}
        while True:
            self.skip()
            if self.pos >= len(self.text):
                return result
            key = self.key()
            self.expect("=")
            self.skip(newlines=False)
            if self.text.startswith("[", self.pos):
                self.pos += 1
                value = {}
                while True:
                    self.skip()
                    if self.text.startswith("]", self.pos):
                        self.pos += 1
                        break
                    sub = self.key()
                    self.expect("=")
                    value[sub] = self.scalar(in_vector=True)
                    self.skip()
                    if self.text.startswith(",", self.pos):
                        self.pos += 1
                    elif not self.text.startswith("]", self.pos):
                        self.error("',' or ']' expected")
            else:
                value = self.scalar(in_vector=False)
            if key in result:
                if not isinstance(result[key], list):
                    result[key] = [result[key]]
                result[key].append(value)
            else:
                result[key] = value


def parse_template(text):
    """Parse OpenNebula template text into the structure render_template takes."""
    return _TemplateParser(text or "").parse()


def normalize_attrs(attrs):
    """Upper-case keys and stringify values, to compare with what oned returns."""
    if attrs is None:
        return {}
    out = {}
    for key, value in attrs.items():
        if value is None:
            continue
        out[str(key).upper()] = _normalize_value(value)
    return out


def _normalize_value(value):
    if isinstance(value, dict):
        return normalize_attrs(value)
    if isinstance(value, list):
        return [_normalize_value(v) for v in value]
    if isinstance(value, bool):
        return "YES" if value else "NO"
    return str(value)


def attrs_differ(desired, current):
    """Keys of desired (normalized) whose value differs in current."""
    desired = normalize_attrs(desired)
    return sorted(k for k, v in desired.items() if current.get(k) != v)


# --------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------

class OneClient:
    """OpenNebula XML-RPC client.

    ``send`` may be given to replace the network (tests): a callable
    ``send(method, params_tuple)`` returning the raw XML-RPC result or raising
    what xmlrpc.client would raise.
    """

    def __init__(self, url=DEFAULT_URL, username="oneadmin", password="", validate_certs=True,
                 timeout=30, retries=4, backoff=0.5, max_backoff=8.0, ca_path=None,
                 send=None, sleep=time.sleep, clock=time.monotonic, down_timeout=0):
        self.url = url
        self.username = username
        self._session = "%s:%s" % (username, password)
        self.timeout = timeout
        self.retries = max(0, int(retries))
        # While oned refuses connections (stopped, restarting), a request is
        # retried for at least this many seconds from the first refusal, on
        # top of ``retries``: a restart of oned in the middle of a run is
        # waited for, within a bound.
        self.down_timeout = max(0, down_timeout or 0)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._clock = clock
        self.calls = 0
        self.calls_by_method = Counter()
        self.writes = 0
        self.retried = 0
        if send is None:
            proxy = make_proxy(url, timeout=timeout, validate_certs=validate_certs, ca_path=ca_path)

            def send(method, params):
                return getattr(proxy, method)(*params)
        self._send = send

    # -- low level ------------------------------------------------------
    def _delay(self, attempt):
        return min(self.max_backoff, self.backoff * (2 ** attempt))

    def call(self, method, *params):
        """Call ``method`` (session prepended) and return the envelope's result.

        Raises the OneError subclass matching oned's error code.  Connection
        errors before the request reached oned, and LOCKED answers, are
        retried ``retries`` times with exponential backoff; errors in the
        middle of an exchange are retried only for read-only methods.
        """
        read_only = bool(_READ_ONLY.search(method))
        attempt = 0
        refused_since = None
        while True:
            self.calls += 1
            self.calls_by_method[method] += 1
            try:
                response = self._send(method, (self._session,) + tuple(params))
            except xmlrpc.client.Fault as exc:
                raise OneFaultError("[%s] XML-RPC fault %s: %s" % (method, exc.faultCode, exc.faultString),
                                    code=exc.faultCode, method=method)
            except xmlrpc.client.ProtocolError as exc:
                retryable = exc.errcode >= 500 and read_only
                if retryable and attempt < self.retries:
                    self._retry_wait(attempt)
                    attempt += 1
                    continue
                raise OneConnectionError("[%s] HTTP %s %s from %s" % (method, exc.errcode, exc.errmsg, self.url),
                                         method=method)
            except (xmlrpc.client.ResponseError, xml.parsers.expat.ExpatError) as exc:
                raise OneConnectionError("[%s] unreadable XML-RPC answer from %s: %s" % (method, self.url, exc),
                                         method=method)
            except _EXCHANGE_ERRORS as exc:
                retryable = read_only or isinstance(exc, _NOT_SENT_ERRORS)
                refused = isinstance(exc, ConnectionRefusedError)
                if refused and refused_since is None:
                    refused_since = self._clock()
                down_for = self._clock() - refused_since if refused else 0
                if retryable and (attempt < self.retries or (refused and down_for < self.down_timeout)):
                    self._retry_wait(attempt, left=self.down_timeout - down_for if refused else None)
                    attempt += 1
                    continue
                if refused:
                    raise OneConnectionError(
                        "[%s] OpenNebula's oned does not answer at %s (%s), retried %d time(s) over %.0f s:"
                        " is oned running on the front-end (systemctl status opennebula)?"
                        % (method, self.url, exc, attempt, down_for), method=method)
                raise OneConnectionError("[%s] cannot talk to OpenNebula at %s: %s" % (method, self.url, exc),
                                         method=method)
            if not isinstance(response, (list, tuple)) or not response:
                raise OneError("[%s] unexpected answer %r" % (method, response), method=method)
            if response[0]:
                if not read_only:
                    self.writes += 1
                return response[1] if len(response) > 1 else None
            error = error_from_response(method, response)
            if isinstance(error, OneLockedError) and attempt < self.retries:
                self._retry_wait(attempt)
                attempt += 1
                continue
            raise error

    def _retry_wait(self, attempt, left=None):
        self.retried += 1
        delay = self._delay(attempt)
        if left is not None and left > 0 and attempt >= self.retries:
            delay = min(delay, left)
        self._sleep(delay)

    # -- system ---------------------------------------------------------
    def version(self):
        return self.call("one.system.version")

    # -- pools ----------------------------------------------------------
    def hostpool(self):
        return Pool("host", parse_pool(Host, self.call("one.hostpool.info")))

    def clusterpool(self):
        return Pool("cluster", parse_pool(Cluster, self.call("one.clusterpool.info")))

    def vnpool(self):
        return Pool("vnet", parse_pool(Vnet, self.call("one.vnpool.info", -2, -1, -1)))

    def datastorepool(self):
        return Pool("datastore", parse_pool(Datastore, self.call("one.datastorepool.info")))

    # -- hosts ----------------------------------------------------------
    def host_info(self, host_id):
        return parse_object(Host, self.call("one.host.info", int(host_id)))

    def host_allocate(self, name, im_mad, vmm_mad, cluster_id=-1):
        return self.call("one.host.allocate", name, im_mad, vmm_mad, int(cluster_id))

    def host_delete(self, host_id):
        return self.call("one.host.delete", int(host_id))

    def host_status(self, host_id, status):
        code = HOST_STATUS[status] if isinstance(status, str) else int(status)
        return self.call("one.host.status", int(host_id), code)

    def host_update(self, host_id, template, merge=True):
        text = template if isinstance(template, str) else render_template(template)
        return self.call("one.host.update", int(host_id), text, 1 if merge else 0)

    # -- clusters -------------------------------------------------------
    def cluster_info(self, cluster_id):
        return parse_object(Cluster, self.call("one.cluster.info", int(cluster_id)))

    def cluster_allocate(self, name):
        return self.call("one.cluster.allocate", name)

    def cluster_delete(self, cluster_id):
        return self.call("one.cluster.delete", int(cluster_id))

    def cluster_add(self, kind, cluster_id, obj_id):
        """kind: host, vnet or datastore. Returns the cluster id."""
        return self.call("one.cluster.add%s" % kind, int(cluster_id), int(obj_id))

    def cluster_del(self, kind, cluster_id, obj_id):
        return self.call("one.cluster.del%s" % kind, int(cluster_id), int(obj_id))

    # -- virtual networks -----------------------------------------------
    def vn_info(self, vnet_id):
        return parse_object(Vnet, self.call("one.vn.info", int(vnet_id)))

    def vn_allocate(self, template, cluster_id=-1):
        text = template if isinstance(template, str) else render_template(template)
        return self.call("one.vn.allocate", text, int(cluster_id))

    def vn_update(self, vnet_id, template, merge=False):
        text = template if isinstance(template, str) else render_template(template)
        return self.call("one.vn.update", int(vnet_id), text, 1 if merge else 0)

    def vn_add_ar(self, vnet_id, ar):
        return self.call("one.vn.add_ar", int(vnet_id), render_vector("AR", ar))

    def vn_update_ar(self, vnet_id, ar):
        """``ar`` must hold AR_ID. oned ignores IP, MAC and TYPE here."""
        return self.call("one.vn.update_ar", int(vnet_id), render_vector("AR", ar))

    def vn_rm_ar(self, vnet_id, ar_id, force=False):
        return self.call("one.vn.rm_ar", int(vnet_id), int(ar_id), bool(force))

    def vn_delete(self, vnet_id):
        return self.call("one.vn.delete", int(vnet_id))

    # -- datastores -----------------------------------------------------
    def datastore_info(self, ds_id):
        return parse_object(Datastore, self.call("one.datastore.info", int(ds_id)))

    def datastore_allocate(self, template, cluster_id=-1):
        text = template if isinstance(template, str) else render_template(template)
        return self.call("one.datastore.allocate", text, int(cluster_id))

    def datastore_update(self, ds_id, template, merge=True):
        text = template if isinstance(template, str) else render_template(template)
        return self.call("one.datastore.update", int(ds_id), text, 1 if merge else 0)

    def datastore_delete(self, ds_id):
        return self.call("one.datastore.delete", int(ds_id))

    def datastore_location(self):
        """oned.conf's DATASTORE_LOCATION: oned puts every datastore in <location>/<id>."""
        root = _parse_root(self.call("one.system.config"), "OPENNEBULA_CONFIGURATION")
        return _text(root, "DATASTORE_LOCATION")

    # -- polling --------------------------------------------------------
    def _poll(self, check, timeout, interval, describe):
        """Call check() until it returns a non-None value, or time out."""
        deadline = self._clock() + timeout
        delay = min(interval, 0.05)  # first re-check early: oned is often quick
        while True:
            value = check()
            if value is not None:
                return value
            now = self._clock()
            if now >= deadline:
                pending = describe()
                raise OneTimeoutError("Timed out after %ss waiting for %s" % (timeout, pending["what"]),
                                      pending=pending)
            self._sleep(min(delay, max(0.0, deadline - now)))
            delay = min(interval, delay * 2)

    def wait_vnet_ready(self, vnet_id, timeout=60, interval=1.0):
        """Wait for a vnet to leave LOCK_CREATE; return it READY or raise.

        ERROR/UPDATE_FAILURE raise OneActionError at once.
        """
        last = {}

        def check():
            vnet = self.vn_info(vnet_id)
            last["vnet"] = vnet
            if vnet.state == VNET_READY:
                return vnet
            if vnet.state in (VNET_ERROR, VNET_UPDATE_FAILURE):
                raise OneActionError("Virtual network %s (%s) is in state %s: %s"
                                     % (vnet.id, vnet.name, vnet.state_name,
                                        vnet.template.get("ERROR", "no error message")),
                                     code=ACTION, method="one.vn.info", resp_id=vnet.id)
            return None

        def describe():
            vnet = last.get("vnet")
            return {"what": "virtual network %s to be READY (state %s)"
                    % (vnet_id, vnet.state_name if vnet else "unknown"), "vnet": vnet_id}

        return self._poll(check, timeout, interval, describe)

    def wait_vnets_ready(self, vnet_ids, timeout=60, interval=1.0):
        """Wait for many vnets to leave LOCK_CREATE, one vnpool read per poll.

        Returns {id: Vnet} when all are READY.  When some end in ERROR or
        UPDATE_FAILURE it waits for the others to settle too, then raises
        OneActionError listing them; a vnet that disappears counts as failed.
        OneTimeoutError when time runs out.  Both carry ``vnets``, the last
        {id: Vnet or None} read.
        """
        wanted = set(int(v) for v in vnet_ids)
        state = {"vnets": {}}
        if not wanted:
            return {}
        failing = (VNET_ERROR, VNET_UPDATE_FAILURE)

        def check():
            pool = self.vnpool()
            found = {i: pool.by_id.get(i) for i in wanted}
            state["vnets"] = found
            if any(v is not None and v.state not in (VNET_READY,) + failing for v in found.values()):
                return None
            failed = sorted(i for i, v in found.items() if v is None or v.state in failing)
            if failed:
                exc = OneActionError("%d virtual network(s) not READY: %s" % (len(failed), "; ".join(
                    "%s: gone" % i if found[i] is None else "%s (%s) in state %s: %s" % (
                        found[i].name, i, found[i].state_name, found[i].template.get("ERROR", "no error message"))
                    for i in failed[:20])), code=ACTION, method="one.vnpool.info")
                exc.vnets = found
                raise exc
            return found

        def describe():
            pending = {i: v.state_name for i, v in state["vnets"].items()
                       if v is not None and v.state != VNET_READY}
            return {"what": "%d virtual network(s) to be READY" % len(pending), "vnets": pending}

        try:
            return self._poll(check, timeout, interval, describe)
        except OneTimeoutError as exc:
            exc.vnets = state["vnets"]
            raise

    def wait_vnets_gone(self, vnet_ids, timeout=60, interval=1.0):
        """Wait after one.vn.delete until none of the vnets is listed, one vnpool read per poll."""
        wanted = set(int(v) for v in vnet_ids)
        state = {"left": sorted(wanted)}
        if not wanted:
            return True

        def check():
            pool = self.vnpool()
            state["left"] = sorted(i for i in wanted if i in pool.by_id)
            return None if state["left"] else True

        return self._poll(check, timeout, interval, lambda: {
            "what": "virtual network(s) %s to be deleted" % ", ".join(str(i) for i in state["left"]),
            "vnets": state["left"]})

    def wait_vnet_gone(self, vnet_id, timeout=60, interval=1.0):
        """Wait until one.vn.info answers NO_EXISTS after a delete."""
        def check():
            try:
                self.vn_info(vnet_id)
            except OneNotFoundError:
                return True
            return None
        return self._poll(check, timeout, interval,
                          lambda: {"what": "virtual network %s to be deleted" % vnet_id})

    def wait_hosts(self, host_ids, timeout=300, interval=2.0, ok_states=(HOST_MONITORED,),
                   fail_states=(HOST_ERROR,)):
        """Wait for many hosts together, reading the host pool once per poll.

        Waits until every host is in ok_states or fail_states, or gone.
        Returns {id: Host} when all are in ok_states; raises OneActionError
        when some ended in fail_states or disappeared (message lists them
        with oned's TEMPLATE/ERROR text) and OneTimeoutError when time runs
        out (its ``pending`` = {"hosts": {id: state name}}).  Both
        exceptions carry ``hosts``, the last {id: Host or None} read (None:
        the host is gone), so callers need no extra read.
        """
        wanted = set(int(h) for h in host_ids)
        state = {"hosts": {}}
        if not wanted:
            return {}
        settled = set(ok_states) | set(fail_states)

        def check():
            pool = self.hostpool()
            found = {i: pool.by_id.get(i) for i in wanted}
            state["hosts"] = found
            if any(h is not None and h.state not in settled for h in found.values()):
                return None
            failed = sorted(i for i, h in found.items() if h is None or h.state in fail_states)
            if failed:
                exc = OneActionError("%d host(s) in state %s or gone: %s" % (
                    len(failed), "/".join(HOST_STATES[s] for s in fail_states),
                    "; ".join(_failed_host(i, found[i]) for i in failed[:20])),
                    code=ACTION, method="one.hostpool.info")
                exc.hosts = found
                raise exc
            return found

        def describe():
            pending = {h.id: h.state_name for h in state["hosts"].values()
                       if h is not None and h.state not in settled}
            return {"what": "%d host(s) to be %s" % (len(pending), "/".join(
                HOST_STATES[s] for s in ok_states)), "hosts": pending}

        try:
            return self._poll(check, timeout, interval, describe)
        except OneTimeoutError as exc:
            exc.hosts = state["hosts"]
            raise


def _failed_host(host_id, host):
    if host is None:
        return "host %s disappeared" % host_id
    return "%s (%s): %s" % (host.name, host.id, host.error or host.state_name)


# --------------------------------------------------------------------------
# Module glue
# --------------------------------------------------------------------------

def connection_argument_spec():
    """The shared options, documented in doc_fragments/stratuslab_one.py."""
    return dict(
        api_url=dict(type="str", aliases=["api_endpoint"]),
        api_username=dict(type="str"),
        api_password=dict(type="str", no_log=True, aliases=["api_token"]),
        validate_certs=dict(type="bool", default=True),
        api_timeout=dict(type="int", default=30),
        api_retry_timeout=dict(type="int", default=60),
    )


def client_from_params(params, **kwargs):
    url, user, password = resolve_connection(params.get("api_url"), params.get("api_username"),
                                             params.get("api_password"))
    return OneClient(url=url, username=user, password=password,
                     validate_certs=params.get("validate_certs", True),
                     timeout=params.get("api_timeout") or 30,
                     down_timeout=params.get("api_retry_timeout", 60), **kwargs)


def resolve_ref(pool, ref, kind):
    """Resolve a name or id (id 0 is valid) against a Pool; fail if absent."""
    obj = pool.get(ref)
    if obj is None:
        raise OneNotFoundError("%s %r does not exist" % (kind, ref), code=NO_EXISTS)
    return obj


def run_module(module, body):
    """Run ``body(client, module) -> result dict`` and exit/fail the module.

    OpenNebula's own message becomes ``msg``; its code, code name and method
    are returned as ``one_error``.  The XML-RPC call count is always returned
    as ``api_calls``.  A failure after writes oned accepted says
    ``changed=true``: the object is no longer as it was.
    """
    client = None
    try:
        client = client_from_params(module.params)
        result = body(client, module)
    except OneError as exc:
        extra = {"one_error": exc.to_dict(), "changed": bool(client and client.writes)}
        if isinstance(exc, OneTimeoutError):
            extra["pending"] = exc.pending
        if client is not None:
            extra["api_calls"] = client.calls
        module.fail_json(msg=exc.message, **extra)
        return
    result["api_calls"] = client.calls
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    failed_msg = result.pop("failed_msg", None)
    if failed_msg:
        module.fail_json(msg=failed_msg, **result)
    module.exit_json(**result)


def cluster_membership_changes(current_ids, wanted_ids, exclusive):
    """(to_add, to_remove) sorted id lists."""
    current, wanted = set(current_ids), set(wanted_ids)
    to_add = sorted(wanted - current)
    to_remove = sorted(current - wanted) if exclusive else []
    return to_add, to_remove


def ids_of(pool, refs, kind):
    return [resolve_ref(pool, r, kind).id for r in refs or []]
