"""The test oned's server: a small XML-RPC server that answers like
OpenNebula's oned 7.4.0.

This is NOT OpenNebula.  It is the project's own test double ("test oned"),
written from the reference data in tests/fixtures/opennebula (API.md and the samples
captured from a real oned 7.4.0), so that the collection's client code and
modules can be tested on machines where OpenNebula cannot be installed.

It implements the XML-RPC methods listed in API.md (system, user, host,
cluster, virtual network, datastore) and those of the accounting capture
(group, VM, VM template, VM pool accounting and showback, ACL), with oned's
response envelope, error codes and messages, id numbering, XML shapes and
asynchronous states, plus a test clock (testoned.clock.*, NOT an oned
method).  See docs/test-oned.md for the command line and the known
differences.

Standard library only: it must run with a plain ``python3`` on Debian 12.

    python3 -m stratuslab_test_oned --listen 127.0.0.1:2633 --state /tmp/oned.sqlite

Design, for later extension (VMs, templates, groups...):

* every object kind is a ``Kind`` (name, first id, XML renderer, label used in
  "NAME is already taken by ..." and "Error getting ... [id]." messages);
* objects are plain JSON-able dicts kept in memory and written through to an
  SQLite file (table ``objects``: kind, oid, JSON body; table ``counters``);
* every XML-RPC method is registered with ``@rpc(name, signature)``, where the
  signature lists the parameter types after the session string, so parameter
  faults are produced the same way for every method;
* time-driven transitions (virtual network driver answers, host monitoring)
  are stored as due times in the objects and applied lazily by ``tick()``
  before each call, so they survive restarts.
"""

import datetime
import fnmatch
import hashlib
import heapq
import http.server
import ipaddress
import json
import os
import queue
import random
import re
import secrets
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET

VERSION = "7.4.0"

# --------------------------------------------------------------------------
# oned error codes (Request::ErrorCode)
# --------------------------------------------------------------------------
SUCCESS = 0x0000
AUTHENTICATION = 0x0100
AUTHORIZATION = 0x0200
NO_EXISTS = 0x0400
ACTION = 0x0800
RPC_API = 0x1000
INTERNAL = 0x2000
ALLOCATE = 0x4000
LOCKED = 0x8000

# xmlrpc-c fault codes
FAULT_TYPE = -501
FAULT_PARSE = -503
FAULT_NO_SUCH_METHOD = -506

# Host states
HOST_INIT, HOST_MONITORED, HOST_ERROR, HOST_DISABLED, HOST_OFFLINE = 0, 2, 3, 4, 8
# Virtual network states
VN_STATES = ["INIT", "READY", "LOCK_CREATE", "LOCK_DELETE", "DONE", "ERROR",
             "UPDATE_FAILURE"]
VN_INIT, VN_READY, VN_LOCK_CREATE, VN_LOCK_DELETE = 0, 1, 2, 3
VN_ERROR, VN_UPDATE_FAILURE = 5, 6

# oned.conf knowledge: the stock oned.conf of 7.4.0 (share/etc/oned.conf).
# VN_MAD_CONF: name -> the BRIDGE_TYPEs it allows (the first is the default)
VN_MAD_CONF = {
    "dummy": ["linux"], "802.1Q": ["linux"], "fw": ["linux"],
    "ovswitch": ["openvswitch", "openvswitch_dpdk"], "vxlan": ["linux"],
    "ovswitch_vxlan": ["openvswitch"], "bridge": ["linux"],
    "elastic": ["linux"], "nodeport": ["linux"],
}
VLAN_VN_MADS = ("802.1Q", "vxlan", "ovswitch_vxlan")
# DS_MAD_CONF: name -> (REQUIRED_ATTRS, DATASTORE_CAPACITY_CHECK or None)
DS_MAD_CONF = {
    "ceph": ("DISK_TYPE,BRIDGE_LIST", None), "dev": ("DISK_TYPE", None),
    "iscsi_libvirt": ("DISK_TYPE,ISCSI_HOST", None), "dummy": ("", None),
    "fs": ("", None), "lvm": ("", None), "restic": ("RESTIC_PASSWORD", None),
    "rsync": ("RSYNC_HOST,RSYNC_USER", None),
    "netapp": ("NETAPP_HOST,NETAPP_USER,NETAPP_PASS,NETAPP_AGGREGATES,"
               "NETAPP_SVM,NETAPP_IGROUP,NETAPP_TARGET", None),
    "purefa": ("PUREFA_HOST,PUREFA_API_TOKEN,PUREFA_TARGET", None),
    "virtiofs": ("", "NO"), "interactive": ("", "NO"),
}
# TM_MAD_CONF: name -> its attributes, as Datastore::set_tm_mad reads them
TM_MAD_CONF = {
    "dummy": dict(LN_TARGET="NONE", CLONE_TARGET="SYSTEM", SHARED="YES",
                  DS_MIGRATE="YES", DS_LIVE_MIGRATE="YES",
                  DS_MIGRATE_SNAP="YES"),
    "shared": dict(LN_TARGET="NONE", CLONE_TARGET="SYSTEM", SHARED="YES",
                   TM_MAD_SYSTEM="ssh", LN_TARGET_SSH="SYSTEM",
                   CLONE_TARGET_SSH="SYSTEM", DISK_TYPE_SSH="FILE",
                   ALLOW_ORPHANS="FORMAT", DS_MIGRATE="YES",
                   DS_LIVE_MIGRATE="YES", DS_MIGRATE_SNAP="YES"),
    "lvm": dict(LN_TARGET="NONE", CLONE_TARGET="SELF", SHARED="YES",
                DRIVER="raw", DISK_TYPE="BLOCK", ALLOW_ORPHANS="YES",
                DS_MIGRATE="YES", DS_LIVE_MIGRATE="NO", DS_MIGRATE_SNAP="NO"),
    "fs_lvm": dict(LN_TARGET="SYSTEM", CLONE_TARGET="SYSTEM", SHARED="YES",
                   DRIVER="raw", DISK_TYPE="BLOCK", DS_MIGRATE="YES",
                   DS_LIVE_MIGRATE="NO", DS_MIGRATE_SNAP="NO"),
    "fs_lvm_ssh": dict(LN_TARGET="SYSTEM", CLONE_TARGET="SYSTEM",
                       SHARED="YES", DRIVER="raw", DISK_TYPE="BLOCK",
                       PERSISTENT_SNAPSHOTS="NO", ALLOW_ORPHANS="YES",
                       DS_MIGRATE="YES", DS_LIVE_MIGRATE="YES",
                       DS_MIGRATE_SNAP="NO"),
    "qcow2": dict(LN_TARGET="NONE", CLONE_TARGET="SYSTEM", SHARED="YES",
                  TM_MAD_SYSTEM="ssh", LN_TARGET_SSH="SYSTEM",
                  CLONE_TARGET_SSH="SYSTEM", DISK_TYPE_SSH="FILE",
                  DRIVER="qcow2", ALLOW_ORPHANS="FORMAT", DS_MIGRATE="YES",
                  DS_LIVE_MIGRATE="YES", DS_MIGRATE_SNAP="YES"),
    "ssh": dict(LN_TARGET="SYSTEM", CLONE_TARGET="SYSTEM", SHARED="NO",
                ALLOW_ORPHANS="YES", DS_MIGRATE="YES", DS_LIVE_MIGRATE="YES",
                DS_MIGRATE_SNAP="YES"),
    "local": dict(LN_TARGET="SYSTEM", CLONE_TARGET="SYSTEM", SHARED="NO",
                  ALLOW_ORPHANS="FORMAT", DS_MIGRATE="YES",
                  DS_LIVE_MIGRATE="YES", DS_MIGRATE_SNAP="YES"),
    "ceph": dict(LN_TARGET="NONE", CLONE_TARGET="SELF", SHARED="YES",
                 DRIVER="raw", ALLOW_ORPHANS="mixed", TM_MAD_SYSTEM="ssh",
                 LN_TARGET_SSH="SYSTEM", CLONE_TARGET_SSH="SYSTEM",
                 DISK_TYPE_SSH="FILE", DS_MIGRATE="NO", DS_LIVE_MIGRATE="NO",
                 DS_MIGRATE_SNAP="NO"),
    "iscsi_libvirt": dict(LN_TARGET="NONE", CLONE_TARGET="SELF",
                          SHARED="YES", DRIVER="raw", DS_MIGRATE="NO",
                          DS_LIVE_MIGRATE="NO", DS_MIGRATE_SNAP="NO"),
    "dev": dict(LN_TARGET="NONE", CLONE_TARGET="NONE", SHARED="YES",
                DRIVER="raw", DS_MIGRATE="NO", DS_LIVE_MIGRATE="NO",
                DS_MIGRATE_SNAP="NO"),
    "netapp": dict(LN_TARGET="NONE", CLONE_TARGET="SELF", SHARED="YES",
                   DRIVER="raw", DISK_TYPE="BLOCK", ALLOW_ORPHANS="LINEAR",
                   DS_MIGRATE="NO", DS_LIVE_MIGRATE="NO",
                   DS_MIGRATE_SNAP="NO"),
    "purefa": dict(LN_TARGET="NONE", CLONE_TARGET="SELF", SHARED="YES",
                   DRIVER="raw", DISK_TYPE="BLOCK", ALLOW_ORPHANS="YES",
                   DS_MIGRATE="NO", DS_LIVE_MIGRATE="NO",
                   DS_MIGRATE_SNAP="NO"),
    "virtiofs": dict(LN_TARGET="NONE", CLONE_TARGET="NONE", SHARED="YES",
                     DRIVER="virtiofs", DISK_TYPE="filesystem",
                     DS_MIGRATE="NO", DS_LIVE_MIGRATE="NO",
                     DS_MIGRATE_SNAP="NO"),
}
# Image::DiskType, for a datastore's DISK_TYPE element
DISK_TYPES = {"FILE": 0, "CDROM": 1, "BLOCK": 2, "RBD": 3, "RBD_CDROM": 4,
              "GLUSTER": 5, "GLUSTER_CDROM": 6, "SHEEPDOG": 7,
              "SHEEPDOG_CDROM": 8, "ISCSI": 9, "FILESYSTEM": 10}
DS_TYPES = {"IMAGE_DS": 0, "SYSTEM_DS": 1, "FILE_DS": 2, "BACKUP_DS": 3}


class RpcFault(Exception):
    """An XML-RPC fault raised by the XML-RPC layer (xmlrpc-c in real oned)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class OnedError(Exception):
    """A failure answered with oned's [false, MSG, CODE, RESP_ID, -1] array."""

    def __init__(self, code, message, resp_id=-1):
        super().__init__(message)
        self.code = code
        self.message = message
        self.resp_id = resp_id


# --------------------------------------------------------------------------
# XML-RPC wire format (request parsing and xmlrpc-c style serialisation)
# --------------------------------------------------------------------------

class Param:
    """A decoded XML-RPC value, keeping its wire type ('int', 'i8', ...)."""

    __slots__ = ("type", "value")

    def __init__(self, ptype, value):
        self.type = ptype
        self.value = value

    def __repr__(self):
        return "%s:%r" % (self.type, self.value)


def _decode_value(elem):
    children = list(elem)
    if not children:
        return Param("string", elem.text or "")
    node = children[0]
    tag = node.tag
    text = node.text or ""
    if tag in ("int", "i4"):
        return Param("int", int(text.strip()))
    if tag == "i8":
        return Param("i8", int(text.strip()))
    if tag == "boolean":
        if text.strip() not in ("0", "1"):
            raise ValueError("bad boolean")
        return Param("boolean", text.strip() == "1")
    if tag == "string":
        return Param("string", text)
    if tag == "double":
        return Param("double", float(text.strip()))
    if tag == "nil":
        return Param("nil", None)
    if tag == "array":
        data = node.find("data")
        items = [] if data is None else [
            _decode_value(v) for v in data.findall("value")]
        return Param("array", items)
    if tag == "struct":
        members = {}
        for member in node.findall("member"):
            members[member.findtext("name") or ""] = _decode_value(
                member.find("value"))
        return Param("struct", members)
    if tag == "base64":
        return Param("base64", text)
    if tag == "dateTime.iso8601":
        return Param("datetime", text)
    raise ValueError("unknown value type <%s>" % tag)


def parse_call(body):
    """Return (method_name, [Param]) from a methodCall document."""
    root = ET.fromstring(body)
    if root.tag != "methodCall":
        raise ValueError("root element is not methodCall")
    name = (root.findtext("methodName") or "").strip()
    params = []
    pnode = root.find("params")
    if pnode is not None:
        for p in pnode.findall("param"):
            v = p.find("value")
            if v is None:
                raise ValueError("param without value")
            params.append(_decode_value(v))
    return name, params


def _xml_text(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _encode_value(v):
    if isinstance(v, bool):
        return "<value><boolean>%d</boolean></value>" % int(v)
    if isinstance(v, I8):
        return "<value><i8>%d</i8></value>" % int(v)
    if isinstance(v, int):
        return "<value><i4>%d</i4></value>" % v
    return "<value><string>%s</string></value>" % _xml_text(str(v))


class I8(int):
    """Marks an integer to be sent as <i8> (oned's replication index)."""


CRLF = "\r\n"


def encode_response(values):
    """Serialise a response array the way xmlrpc-c does (CRLF lines)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<methodResponse>",
             "<params>", "<param><value><array><data>"]
    lines.extend(_encode_value(v) for v in values)
    lines.extend(["</data></array></value></param>", "</params>",
                  "</methodResponse>"])
    return (CRLF.join(lines) + CRLF).encode("utf-8")


def encode_fault(code, message):
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<methodResponse>",
             "<fault>", "<value><struct>",
             "<member><name>faultCode</name>",
             "<value><i4>%d</i4></value></member>" % code,
             "<member><name>faultString</name>",
             "<value><string>%s</string></value></member>" % _xml_text(message),
             "</struct></value>", "</fault>", "</methodResponse>"]
    return (CRLF.join(lines) + CRLF).encode("utf-8")


# --------------------------------------------------------------------------
# OpenNebula templates: parsing ("KEY=value" syntax or XML) and rendering
# --------------------------------------------------------------------------
# A template is a list of [KEY, VALUE] where VALUE is a str (single
# attribute) or a list of [SUBKEY, str] (vector attribute).

class TemplateSyntaxError(Exception):
    pass


# oned's template lexer (src/parsers/template_parser.l), rule by rule, in
# flex's way: the longest match wins, then the first rule. INITIAL state:
_LEX_INITIAL = [
    (re.compile(r"[ \t]*#[^\n]*\n"), None),                # comment line
    (re.compile(r"[ \t\n]+"), None),                       # blanks
    (re.compile(r"[A-Za-z0-9_]+"), "VARIABLE"),
    (re.compile(r"[ \t]*=[ \t]*"), "EQUAL"),               # -> VALUE
    (re.compile(r"[ \t]*=[ \t]*\n"), "EQUAL_EMPTY"),
    (re.compile(r"[ \t\n]*,[ \t\n]*"), "COMMA"),
    (re.compile(r"[ \t\n]*\][ \t\n]*"), "CBRACKET"),
]
# VALUE state (after EQUAL; every token goes back to INITIAL)
_LEX_VALUE = [
    (re.compile(r"[ \t]*\[[ \t\n]*"), "OBRACKET"),
    (re.compile(r"[^\n]*\]\]>[^\n]*"), "CCDATA"),
    ("quoted", "STRING"),                                  # "...\"..."
    (re.compile(r"[^=#\t \n,\[\]]+"), "STRING"),
]
# bison's token numbers order the "expecting" lists
_TOKEN_ORDER = ["$end", "EQUAL", "COMMA", "OBRACKET", "CBRACKET",
                "EQUAL_EMPTY", "CCDATA", "STRING", "VARIABLE"]


def _quoted_end(text, i):
    """End of flex's longest match of \"([^\"]|\\\")*\" at i, or None: the
    last quote before the first one that no backslash escapes."""
    if i >= len(text) or text[i] != '"':
        return None
    end = None
    j = i + 1
    while True:
        j = text.find('"', j)
        if j < 0:
            return end
        end = j + 1
        if text[j - 1] != "\\" or j - 1 == i:
            return end
        j += 1


def _lex_template(text):
    """Tokens of OpenNebula template syntax, as oned's flex lexer gives
    them: (kind, value, line, first column, last column), ending with
    $end. Columns count from the start of the text, not of the line
    (YY_USER_ACTION never resets them), and every match moves them,
    skipped blanks and comments included, so $end has the place of the
    last match. A character no rule matches is skipped (flex's default
    rule)."""
    i, n = 0, len(text)
    line, last_col = 1, 1
    value_state = False
    first_col = 1
    while i < n:
        best_len, best_kind = 0, None
        for rule, kind in (_LEX_VALUE if value_state else _LEX_INITIAL):
            if rule == "quoted":
                end = _quoted_end(text, i)
                length = 0 if end is None else end - i
            else:
                match = rule.match(text, i)
                length = match.end() - i if match else 0
            if length > best_len:
                best_len, best_kind = length, kind
        if best_len == 0:                  # flex's default rule: skip one
            best_len, best_kind = 1, None
        lexeme = text[i:i + best_len]
        first_col, last_col = last_col, last_col + best_len
        tok_line = line
        line += lexeme.count("\n")
        i += best_len
        if best_kind is None:
            continue
        if best_kind == "EQUAL":
            value_state = True
        elif value_state:
            value_state = False
        if best_kind == "STRING" and lexeme.startswith('"') and \
                _quoted_end(lexeme, 0) == len(lexeme):
            value = lexeme[1:-1].replace('\\"', '"')       # unescape()
        elif best_kind in ("STRING", "VARIABLE"):
            value = lexeme
        else:
            value = ""
        yield (best_kind, value, tok_line, first_col, last_col)
    yield ("$end", "", line, first_col, last_col)


def parse_template_text(text):
    """oned's template grammar (src/parsers/template_syntax.y) with bison's
    error messages: "syntax error, unexpected X, expecting A or B at line
    L, columns F:L" (the expected tokens in bison's order; where a new
    attribute may start, only $end, bison's default reduction)."""
    tokens = _lex_template(text)
    state = {"tok": next(tokens)}

    def peek():
        return state["tok"][0]

    def take(*expected):
        tok = state["tok"]
        if tok[0] not in expected:
            raise TemplateSyntaxError(
                "syntax error, unexpected %s, expecting %s at line %d, "
                "columns %d:%d" % (tok[0], " or ".join(
                    t for t in _TOKEN_ORDER if t in expected), tok[2],
                    tok[3], tok[4]))
        if tok[0] != "$end":
            state["tok"] = next(tokens)
        return tok

    attrs = []
    while peek() != "$end":
        if peek() != "VARIABLE":
            take("$end")
        key = take("VARIABLE")[1].upper()
        if take("EQUAL", "EQUAL_EMPTY")[0] == "EQUAL_EMPTY":
            attrs.append([key, ""])
            continue
        tok = take("OBRACKET", "CCDATA", "STRING")
        if tok[0] == "STRING":
            attrs.append([key, tok[1]])
            continue
        if tok[0] == "CCDATA":
            # the grammar aborts here (YYABORT), without a message
            raise TemplateSyntaxError("")
        vector = []
        tok = take("CBRACKET", "VARIABLE")
        while tok[0] == "VARIABLE":
            name = tok[1].upper()
            take("EQUAL")
            value = take("STRING")[1]
            # a map's insert: the first value of a repeated key stays
            if all(k != name for k, _ in vector):
                vector.append([name, value])
            if take("COMMA", "CBRACKET")[0] == "CBRACKET":
                break
            tok = take("VARIABLE")
        attrs.append([key, vector])
    return attrs


def _vector_set(vector, key, value):
    for item in vector:
        if item[0] == key:
            item[1] = value
            return
    vector.append([key, value])


def parse_template_xml(text):
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise TemplateSyntaxError("XML Template malformed.") from None
    attrs = []
    for child in root:
        if len(child):
            vector = []
            for sub in child:
                _vector_set(vector, sub.tag, sub.text or "")
            attrs.append([child.tag, vector])
        else:
            attrs.append([child.tag, child.text or ""])
    return attrs


def _trimmed(attrs):
    """Template::trim_attributes: blanks around every value go."""
    blanks = " \t\n\v\f\r"
    return [[k, v.strip(blanks) if isinstance(v, str) else
             [[sk, sv.strip(blanks)] for sk, sv in v]] for k, v in attrs]


def parse_template(text):
    """Parse 'KEY="v"' syntax or an XML template, as oned's parse_str_or_xml
    (XML when the very first character is '<')."""
    if text.startswith("<"):
        return _trimmed(parse_template_xml(text))
    return _trimmed(parse_template_text(text))


def parse_error_message(exc):
    """parse_str_or_xml's message: "Parse error: WHY", or "Parse error."
    when the parser gave no reason."""
    return "Parse error: %s" % exc if str(exc) else "Parse error."


def parse_or_fail(text):
    try:
        return parse_template(text)
    except TemplateSyntaxError as exc:
        raise OnedError(INTERNAL, parse_error_message(exc)) from None


def tget(tpl, key, default=None):
    for k, v in tpl:
        if k == key and isinstance(v, str):
            return v
    return default


def tvectors(tpl, key):
    return [v for k, v in tpl if k == key and isinstance(v, list)]


def tset(tpl, key, value):
    terase(tpl, key)
    tpl.append([key, value])


def terase(tpl, key):
    tpl[:] = [a for a in tpl if a[0] != key]


def tmerge(tpl, new):
    for key in {k for k, _ in new}:
        terase(tpl, key)
    for k, v in new:
        tpl.append([k, v if isinstance(v, str) else [list(x) for x in v]])


def cdata(value):
    return "<![CDATA[%s]]>" % str(value).replace("]]>", "]]]]><![CDATA[>")


def _sorted_attrs(attrs):
    # std::multimap order: by key, insertion order among equal keys
    return sorted(attrs, key=lambda a: a[0])


def template_xml(tpl, tag="TEMPLATE"):
    out = ["<%s>" % tag]
    for key, value in _sorted_attrs(tpl):
        if isinstance(value, str):
            out.append("<%s>%s</%s>" % (key, cdata(value), key))
        else:
            out.append("<%s>" % key)
            for sk, sv in _sorted_attrs(value):
                out.append("<%s>%s</%s>" % (sk, cdata(sv), sk))
            out.append("</%s>" % key)
    out.append("</%s>" % tag)
    return "".join(out)


def ids_xml(tag, ids):
    return "<%s>%s</%s>" % (tag, "".join("<ID>%d</ID>" % i for i in sorted(ids)),
                            tag)


def opt_cdata(tag, value):
    """<TAG/> when empty, <TAG><![CDATA[v]]></TAG> otherwise (oned's VNET)."""
    value = "" if value is None else str(value)
    if value == "":
        return "<%s/>" % tag
    return "<%s>%s</%s>" % (tag, cdata(value), tag)


def perms_xml(bits):
    names = ["OWNER_U", "OWNER_M", "OWNER_A", "GROUP_U", "GROUP_M", "GROUP_A",
             "OTHER_U", "OTHER_M", "OTHER_A"]
    return "<PERMISSIONS>%s</PERMISSIONS>" % "".join(
        "<%s>%d</%s>" % (n, b, n) for n, b in zip(names, bits))


# --------------------------------------------------------------------------
# Persistent store
# --------------------------------------------------------------------------

class Kind:
    """An object kind: pool name, first user id and message labels."""

    def __init__(self, name, first_id, label, noun, pool_tag):
        self.name = name            # key in the store
        self.first_id = first_id    # first id given by allocate
        self.label = label          # "NAME is already taken by <label> 3."
        self.noun = noun            # "Error getting <noun> [3]."
        self.pool_tag = pool_tag    # <HOST_POOL>


KINDS = {
    "user": Kind("user", 2, "USER", "user", "USER_POOL"),
    "group": Kind("group", 100, "GROUP", "group", "GROUP_POOL"),
    "host": Kind("host", 0, "HOST", "host", "HOST_POOL"),
    "cluster": Kind("cluster", 100, "CLUSTER", "cluster", "CLUSTER_POOL"),
    "vnet": Kind("vnet", 0, "NET", "virtual network", "VNET_POOL"),
    "datastore": Kind("datastore", 100, "DATASTORE", "datastore",
                      "DATASTORE_POOL"),
    # images: see the "images" section (not replay-checked, docs/test-oned.md)
    "image": Kind("image", 0, "IMAGE", "image", "IMAGE_POOL"),
    # VMs and VM templates: see "Virtual machines" (samples-accounting)
    "vm": Kind("vm", 0, "VM", "virtual machine", "VM_POOL"),
    "vmtemplate": Kind("vmtemplate", 0, "TEMPLATE",
                       "virtual machine template", "VMTEMPLATE_POOL"),
    "acl": Kind("acl", 0, "ACL", "ACL rule", "ACL_POOL"),
}


class Store:
    """Objects in memory, written through to SQLite at the end of each call."""

    def __init__(self, path):
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS objects (kind TEXT, "
                        "oid INTEGER, body TEXT, PRIMARY KEY (kind, oid))")
        self.db.execute("CREATE TABLE IF NOT EXISTS counters (kind TEXT "
                        "PRIMARY KEY, next_id INTEGER)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY "
                        "KEY, value TEXT)")
        self.db.commit()
        self.objects = {k: {} for k in KINDS}
        self.counters = {}
        for kind, oid, body in self.db.execute(
                "SELECT kind, oid, body FROM objects"):
            self.objects.setdefault(kind, {})[oid] = json.loads(body)
        for kind, next_id in self.db.execute(
                "SELECT kind, next_id FROM counters"):
            self.counters[kind] = next_id
        self.dirty = set()
        self.deleted = set()
        self.counters_dirty = False

    def meta(self, key, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key=?",
                              (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, key, value):
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?,?)",
                        (key, value))
        self.db.commit()

    def get(self, kind, oid):
        return self.objects[kind].get(oid)

    def all(self, kind):
        return [self.objects[kind][i] for i in sorted(self.objects[kind])]

    def find_name(self, kind, name):
        for obj in self.objects[kind].values():
            if obj["name"] == name:
                return obj
        return None

    def new_id(self, kind):
        oid = self.counters.get(kind, KINDS[kind].first_id)
        self.counters[kind] = oid + 1
        self.counters_dirty = True
        return oid

    def put(self, kind, obj):
        self.objects[kind][obj["id"]] = obj
        self.dirty.add((kind, obj["id"]))
        self.deleted.discard((kind, obj["id"]))

    def touch(self, kind, obj):
        self.dirty.add((kind, obj["id"]))

    def remove(self, kind, oid):
        self.objects[kind].pop(oid, None)
        self.dirty.discard((kind, oid))
        self.deleted.add((kind, oid))

    def flush(self):
        if not (self.dirty or self.deleted or self.counters_dirty):
            return
        with self.db:
            for kind, oid in self.dirty:
                obj = self.objects[kind].get(oid)
                if obj is not None:
                    self.db.execute(
                        "INSERT OR REPLACE INTO objects (kind, oid, body) "
                        "VALUES (?,?,?)", (kind, oid, json.dumps(obj)))
            for kind, oid in self.deleted:
                self.db.execute("DELETE FROM objects WHERE kind=? AND oid=?",
                                (kind, oid))
            if self.counters_dirty:
                for kind, next_id in self.counters.items():
                    self.db.execute(
                        "INSERT OR REPLACE INTO counters (kind, next_id) "
                        "VALUES (?,?)", (kind, next_id))
        self.dirty.clear()
        self.deleted.clear()
        self.counters_dirty = False

    def close(self):
        self.flush()
        self.db.close()


# --------------------------------------------------------------------------
# The simulated oned
# --------------------------------------------------------------------------

RPC_METHODS = {}


def rpc(name, signature=""):
    """Register a method.  signature: types after the session, e.g. "i,s,?i".

    Letters: i int, s string, b boolean; a leading '?' marks an optional
    parameter (read only when present, as oned does with paramList.size()).
    """
    spec = []
    for item in filter(None, signature.split(",")):
        spec.append((item.lstrip("?"), item.startswith("?")))

    def deco(fn):
        RPC_METHODS[name] = (fn, spec)
        return fn
    return deco


_TYPE_WORDS = {"i": ("int", "integer"), "s": ("string", "a string"),
               "b": ("boolean", "boolean"), "a": ("array", "an array"),
               "n": (("int", "i8"), "integer")}


def check_param(params, index, letter):
    """Mimic xmlrpc-c's paramList.getInt/getString/getBoolean.

    Letters: i int, s string, b boolean, a array (of Param), and n, an
    integer sent as <int> or <i8> (the test clock's epochs only)."""
    if index >= len(params):
        raise RpcFault(FAULT_TYPE, "Not enough parameters")
    wire, word = _TYPE_WORDS[letter]
    if params[index].type not in ((wire,) if isinstance(wire, str)
                                  else wire):
        raise RpcFault(FAULT_TYPE,
                       "Parameter that is supposed to be %s is not" % word)
    return params[index].value


def now():
    return time.time()


def log_time(t=None):
    """one_util::log_time: ctime(3) without its newline, the stamp of the
    TEMPLATE/ERROR messages ("Sun Dec  6 11:38:29 2026")."""
    return time.asctime(time.localtime(now() if t is None else t))


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ip_to_int(ip):
    return int(ipaddress.IPv4Address(ip))


def int_to_ip(value):
    return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))


def mac_to_int(mac):
    return int(mac.replace(":", ""), 16)


def int_to_mac(value):
    value &= 0xFFFFFFFFFFFF
    raw = "%012x" % value
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))


# ------------------------------------------------------------------ LDAP auth
# What OpenNebula's ldap auth driver does, for tests of a site's LDAP: a user
# oned does not know (or one whose AUTH_DRIVER is ldap) is authenticated by
# an LDAP simple bind as uid=<name>,ou=people,<base DN>, and a user created
# that way gets AUTH_DRIVER "ldap" and its DN as PASSWORD, as the real driver
# leaves it. python-ldap is not in the standard library, so the bind is made
# by OpenLDAP's `ldapwhoami` (package ldap-utils), the password passed in a
# 0600 temporary file (-y), never on its command line.
LDAP_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
LDAP_INVALID_CREDENTIALS = 49


class LdapAuth:
    """Simple binds against one LDAP server through `ldapwhoami`."""

    def __init__(self, uri, base_dn, ca_file=None, timeout=10.0,
                 user_field=None, starttls=None):
        if not re.fullmatch(r"ldaps?://[^\s]+", uri):
            raise ValueError("--ldap-uri must be ldap://HOST[:PORT] or "
                             "ldaps://HOST[:PORT]")
        self.uri = uri
        self.base_dn = base_dn
        self.ca_file = ca_file
        self.timeout = timeout
        # None: the user's DN is uid=NAME,ou=people,BASE (--ldap-uri). A
        # field (ldap_auth.conf's :user_field:): the DN is found as the
        # driver finds it, by a search (FIELD=NAME) under the base.
        self.user_field = user_field
        self.starttls = uri.startswith("ldap://") if starttls is None else starttls

    def _tools_args(self):
        args = ["-x", "-H", self.uri,
                "-o", "nettimeout=%d" % max(1, int(self.timeout))]
        if self.starttls:
            args.append("-ZZ")      # StartTLS, and fail without it
        env = dict(os.environ, LDAPTLS_REQCERT="demand")
        if self.ca_file:
            env["LDAPTLS_CACERT"] = self.ca_file
        return args, env

    def user_dn(self, name):
        if self.user_field is None:
            return "uid=%s,ou=people,%s" % (name, self.base_dn)
        # An anonymous search, as the driver makes without :user: in
        # ldap_auth.conf; exactly one entry must match.
        args, env = self._tools_args()
        try:
            proc = subprocess.run(
                ["ldapsearch"] + args + ["-LLL", "-o", "ldif-wrap=no",
                                         "-b", self.base_dn,
                                         "(%s=%s)" % (self.user_field, name),
                                         "1.1"],
                env=env, capture_output=True, text=True,
                timeout=self.timeout + 5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            LOG.emit("ldap: search for %s could not run: %s" % (name, exc))
            return None
        dns = [line[4:] for line in proc.stdout.splitlines()
               if line.startswith("dn: ")]
        if proc.returncode != 0 or len(dns) != 1:
            LOG.emit("ldap: search (%s=%s) under %s: %d entries (%d) %s" % (
                self.user_field, name, self.base_dn, len(dns),
                proc.returncode, proc.stderr.strip()[:200]))
            return None
        return dns[0]

    def bind(self, name, password):
        """The user's DN when a simple bind with ``password`` succeeds."""
        # An empty password would be an unauthenticated bind, which LDAP
        # servers accept: never a login.
        if not password or not LDAP_NAME_RE.fullmatch(name):
            return None
        dn = self.user_dn(name)
        if dn is None:
            return None
        args, env = self._tools_args()
        cmd = ["ldapwhoami"] + args + ["-D", dn]
        fd, pwfile = tempfile.mkstemp(prefix="test-oned-ldap-")
        try:
            with os.fdopen(fd, "w") as fh:   # mkstemp makes it 0600
                fh.write(password)
            proc = subprocess.run(cmd + ["-y", pwfile], env=env,
                                  capture_output=True, text=True,
                                  timeout=self.timeout + 5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            LOG.emit("ldap: bind as %s could not run: %s" % (dn, exc))
            return None
        finally:
            os.unlink(pwfile)
        if proc.returncode == 0:
            return dn
        if proc.returncode != LDAP_INVALID_CREDENTIALS:
            LOG.emit("ldap: bind as %s failed (%d): %s" % (
                dn, proc.returncode, proc.stderr.strip()[:200]))
        return None


def _conf_scalar(text):
    """A scalar of ldap_auth.conf (YAML written for Ruby): 'quoted',
    "quoted", :symbol, a number, true/false, or a bare word."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.startswith(":"):
        return text[1:]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return {"true": True, "false": False}.get(text, text)


def read_ldap_auth_conf(path):
    """The server OpenNebula's ldap driver would use first, from its
    ldap_auth.conf: {"uri", "starttls", "base", "user_field", "ca_file"}.
    Reads the subset of YAML the driver's file uses (top-level "server N:"
    maps of ":key: value" lines, nested maps such as ":encryption:" with
    ":method:" and ":tls_options:", and an ":order:" list); ValueError names
    the file and what is wrong."""
    servers, order, section, stack = {}, [], None, []
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.rstrip()
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not raw[0].isspace():
                if not line.endswith(":"):
                    raise ValueError("%s:%d: expected a section, got %r" % (path, number, line))
                key = line[:-1].strip()
                section = order if key == ":order" else servers.setdefault(key, {})
                stack = [(0, section)]
                continue
            item = line.strip()
            if section is order and item.startswith("- "):
                order.append(_conf_scalar(item[2:]))
                continue
            match = re.fullmatch(r":(\w+):\s*(.*)", item)
            if section is None or section is order or match is None:
                raise ValueError("%s:%d: cannot read %r" % (path, number, item))
            indent = len(line) - len(line.lstrip())
            while len(stack) > 1 and indent <= stack[-1][0]:
                stack.pop()
            target = stack[-1][1]
            if match.group(2):
                target[match.group(1)] = _conf_scalar(match.group(2))
            else:
                target[match.group(1)] = nested = {}
                stack.append((indent, nested))
    name = order[0] if order else next(iter(servers), None)
    server = servers.get(name)
    if server is None:
        raise ValueError("%s: no server %r to use (:order: %s)" % (path, name, order))
    for key in ("host", "base"):
        if not server.get(key):
            raise ValueError("%s: server %r has no :%s:" % (path, name, key))
    encryption = server.get("encryption", "")
    tls_options = {}
    if isinstance(encryption, dict):
        tls_options = encryption.get("tls_options") or {}
        encryption = encryption.get("method", "")
    if encryption not in ("", "simple_tls", "start_tls") or not isinstance(tls_options, dict):
        raise ValueError("%s: server %r: unknown :encryption: %r" % (path, name, server.get("encryption")))
    scheme = "ldaps" if encryption == "simple_tls" else "ldap"
    port = int(server.get("port", 636 if scheme == "ldaps" else 389))
    return {"uri": "%s://%s:%d" % (scheme, server["host"], port),
            "starttls": encryption == "start_tls", "base": server["base"],
            "user_field": server.get("user_field", "cn"), "ca_file": tls_options.get("ca_file")}


class LdapAuthConf:
    """--ldap-auth-conf: the server and fields of an ldap_auth.conf, read
    again at each login as OpenNebula's driver reads it (a changed file
    needs no restart; a file that no longer reads refuses the login)."""

    def __init__(self, path, ca_file=None):
        self.path = path
        self.ca_file = ca_file
        self.current()      # a file that does not read stops the start

    def current(self):
        conf = read_ldap_auth_conf(self.path)
        return LdapAuth(conf["uri"], conf["base"], conf["ca_file"] or self.ca_file,
                        user_field=conf["user_field"], starttls=conf["starttls"])

    def bind(self, name, password):
        try:
            auth = self.current()
        except (OSError, ValueError) as exc:
            LOG.emit("ldap: %s" % exc)
            return None
        return auth.bind(name, password)


def ldap_login(oned, name, secret):
    """The user ``name`` authenticated through LDAP, created on first login."""
    ldap_auth = getattr(oned, "ldap", None)
    if ldap_auth is None:
        return None
    user = oned.store.find_name("user", name)
    if user is not None and (user["auth_driver"] != "ldap" or
                             not user["enabled"]):
        return None
    dn = ldap_auth.bind(name, secret)
    if dn is None:
        return None
    if user is None:
        # As oned does for a user its auth driver accepted: primary group
        # users (1), AUTH_DRIVER ldap, and the driver's answer (the DN) as
        # the stored password.
        user = {"id": oned.store.new_id("user"), "gid": 1, "groups": [1],
                "name": name, "password": dn, "auth_driver": "ldap",
                "enabled": 1, "tokens": [],
                "template": [["TOKEN_PASSWORD",
                              sha256(secrets.token_hex(32))]]}
        oned.store.put("user", user)
    return user


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


# --------------------------------------------------------------------------
# XML-RPC methods
# --------------------------------------------------------------------------
# Each handler: fn(oned, user, method_name, *params) -> result (int or str).

DEFAULT_PERMS = [1, 1, 0, 0, 0, 0, 0, 0, 0]      # DEFAULT_UMASK 177
_OPS = {"USE": 0, "MANAGE": 1, "ADMIN": 2}


def _is_admin(user):
    return user["gid"] == 0 or 0 in user["groups"]


def _authorized(user, obj, op):
    if _is_admin(user):
        return True
    bit = _OPS[op]
    perms = obj.get("perms", DEFAULT_PERMS)
    if obj["uid"] == user["id"] and perms[bit]:
        return True
    if obj["gid"] in user["groups"] and perms[3 + bit]:
        return True
    return bool(perms[6 + bit])


def _authorize(user, obj, op, label):
    if not _authorized(user, obj, op):
        raise OnedError(AUTHORIZATION, "User [%d] : Not authorized to "
                        "perform %s %s [%d]." % (user["id"], op, label,
                                                 obj["id"]))


def filter_pool(user, objs, flt, start=-1, end=-1, perms=False):
    """oned's pool filter (PoolSQL::PoolFilter) and id range.

    flt: -2 all, -1 mine and my groups', -3 mine, -4 my primary group's,
    N >= 0 user N's; below -4 an error.  perms=True (VMs, VM templates):
    only what the caller may USE, and -1 takes the groups' objects that have
    GROUP_U.  perms=False (the kinds without permissions here): everything
    is visible, and -1 takes the objects of the caller's primary group."""
    if flt < -4:
        raise OnedError(RPC_API, "Incorrect filter_flag")
    out = []
    for obj in objs:
        if perms and not _authorized(user, obj, "USE"):
            continue
        mine = obj["uid"] == user["id"]
        if perms:
            groups = obj["gid"] in user["groups"] and \
                obj.get("perms", DEFAULT_PERMS)[3]
        else:
            groups = obj["gid"] == user["gid"]
        if (flt == -3 and not mine) or (flt == -1 and not (mine or groups)) \
                or (flt == -4 and obj["gid"] != user["gid"]) \
                or (flt >= 0 and obj["uid"] != flt):
            continue
        if (start >= 0 and obj["id"] < start) or \
                (end >= 0 and obj["id"] > end):
            continue
        out.append(obj)
    return out


def named_allocate(o, kind, text, cluster_id, no_name):
    """The first checks of a template allocate into a cluster, in oned's
    order: template syntax, cluster, a taken NAME, then a missing NAME.
    Returns (template, cluster, name)."""
    tpl = parse_or_fail(text)
    cluster = o.cluster_for_allocate(cluster_id)
    name = tget(tpl, "NAME", "")
    dup = o.store.find_name(kind, name) if name else None
    if dup is not None:
        raise OnedError(INTERNAL, "NAME is already taken by %s %d." % (
            KINDS[kind].label, dup["id"]))
    if not name:
        raise OnedError(INTERNAL, no_name)
    return tpl, cluster, name


def define_reads(kind, pool_method, info_method, render, pool_render=None,
                 filtered=False, info_signature="i,?b", use=None):
    """Register the two reads of an object kind: one handler each for all
    kinds.

    info_method(id[, flags]) answers render(oned, object), or NO_EXISTS.
    pool_method (None: not offered) answers the pool in descending id
    order, each object drawn by pool_render (default render): the whole
    pool, or with filtered=True after the (filter, start id, end id)
    parameters of filter_pool.  use: the label in the kind's permission
    errors ("VM") when reading needs USE permission."""
    pool_render = pool_render or render

    def info(o, user, m, oid, *flags):
        obj = o.get(kind, oid)
        if use:
            _authorize(user, obj, "USE", use)
        return render(o, obj)

    def pool(o, user, m, *args):
        objs = o.store.all(kind)
        if filtered:
            objs = filter_pool(user, objs, *args, perms=bool(use))
        return o.pool_xml(kind, lambda obj: pool_render(o, obj), objs)

    rpc(info_method, info_signature)(info)
    if pool_method:
        rpc(pool_method, "i,i,i" if filtered else "")(pool)


@rpc("one.system.version")
def system_version(o, user, m):
    return VERSION


@rpc("one.system.config")
def system_config(o, user, m):
    conf = [
        ["DATASTORE_LOCATION", o.opts.datastore_location],
        ["DEFAULT_CDROM_DEVICE_PREFIX", "hd"],
        ["DEFAULT_DEVICE_PREFIX", "vd"],
        ["MAC_PREFIX", o.opts.mac_prefix],
        ["MONITORING_INTERVAL_HOST", str(int(o.opts.monitor_interval))],
        ["PORT", str(o.opts.port)],
        ["VERSION", VERSION],
    ]
    for name, btypes in sorted(VN_MAD_CONF.items()):
        conf.append(["VN_MAD_CONF", [["BRIDGE_TYPE", ",".join(btypes)],
                                     ["NAME", name]]])
    for name, (required, capacity) in sorted(DS_MAD_CONF.items()):
        attrs = [["NAME", name], ["REQUIRED_ATTRS", required]]
        if capacity is not None:
            attrs.append(["DATASTORE_CAPACITY_CHECK", capacity])
        conf.append(["DS_MAD_CONF", attrs])
    for name, attrs in sorted(TM_MAD_CONF.items()):
        conf.append(["TM_MAD_CONF", [["NAME", name]] + [
            [k, v] for k, v in sorted(attrs.items())]])
    return template_xml(conf, "OPENNEBULA_CONFIGURATION")


# ---------------------------------------------------------------- users
@rpc("one.user.info", "i,?b")
def user_info(o, user, m, oid, decrypt=False):
    if oid == -1:
        oid = user["id"]
    return o.user_xml(o.get("user", oid))


@rpc("one.user.login", "s,s,i,?i")
def user_login(o, user, m, name, token, valid, egid=-1):
    target = o.store.find_name("user", name)
    if target is None:
        raise OnedError(NO_EXISTS, "Error getting user Pool.", -1)
    tokens = target.setdefault("tokens", [])
    if valid == 0:
        if token:
            tokens[:] = [t for t in tokens if t["token"] != token]
        else:
            tokens[:] = []
        o.store.touch("user", target)
        return token
    if not token:
        token = sha256(secrets.token_hex(32))
    expiration = -1 if valid < 0 else int(now()) + valid
    tokens[:] = [t for t in tokens if t["token"] != token]
    tokens.append({"token": token, "expiration": expiration, "egid": egid})
    o.store.touch("user", target)
    return token


# ---------------------------------------------------------------- hosts
define_reads("host", "one.hostpool.info", "one.host.info", Oned.host_xml)


@rpc("one.host.allocate", "s,s,s,i")
def host_allocate(o, user, m, name, im_mad, vm_mad, cluster_id):
    cluster = o.cluster_for_allocate(cluster_id)
    if not name or len(name) > 63:
        raise OnedError(ALLOCATE, "Error allocating a new host. Invalid "
                        "HOSTNAME, HOSTNAME length should be greater than 1, "
                        "but smaller than 64 characters")
    dup = o.store.find_name("host", name)
    if dup is not None:
        raise OnedError(ALLOCATE, "Error allocating a new host. NAME is "
                        "already taken by HOST %d." % dup["id"])
    oid = o.store.new_id("host")
    has_system_ds = any(cluster["id"] in d["clusters"] and d["type"] == 1
                        for d in o.store.all("datastore"))
    o.store.put("host", {
        "id": oid, "name": name, "state": HOST_INIT, "prev_state": HOST_INIT,
        "im_mad": im_mad, "vm_mad": vm_mad, "cluster_id": cluster["id"],
        "share": {},
        "ds_share": ({"DISK_USAGE": 0, "FREE_DISK": 0, "MAX_DISK": 0,
                      "USED_DISK": 0} if has_system_ds else None),
        "template": [["IM_MAD", im_mad], ["RESERVED_CPU", ""],
                     ["RESERVED_MEM", ""], ["VM_MAD", vm_mad]],
        "monitor_due": None})
    o.schedule_monitor(o.store.get("host", oid), now() + o.opts.monitor_interval)
    return oid


@rpc("one.host.delete", "i")
def host_delete(o, user, m, oid):
    o.get("host", oid)
    o.store.remove("host", oid)
    return oid


@rpc("one.host.status", "i,i")
def host_status(o, user, m, oid, status):
    if status not in (0, 1, 2):
        raise OnedError(INTERNAL, "Wrong status code")
    host = o.get("host", oid)
    if status == 0:
        # Host::enable: a disabled host that has been monitored is
        # MONITORED at once, any other one is INIT until its next probe
        share = host.get("share") or {}
        state = HOST_MONITORED if host["state"] == HOST_DISABLED and \
            share.get("TOTAL_CPU", 0) > 0 else HOST_INIT
        host["state"] = host["prev_state"] = state
        o.schedule_monitor(host, now())    # enabling triggers a probe
    elif status == 1:
        host["state"] = host["prev_state"] = HOST_DISABLED
        if host.get("monitor_due") is None:
            o.schedule_monitor(host, now() + o.opts.monitor_interval)
    else:
        # Host::offline: the capacity and the probe's figures are dropped
        host["state"] = host["prev_state"] = HOST_OFFLINE
        share = host.setdefault("share", {})
        for key in ("TOTAL_CPU", "TOTAL_MEM", "MAX_CPU", "MAX_MEM"):
            share[key] = 0
        for key in ("TOTALCPU", "TOTALMEMORY", "FREECPU", "FREEMEMORY",
                    "USEDCPU", "USEDMEMORY"):
            terase(host["template"], key)
        o.schedule_monitor(host, None)
    o.store.touch("host", host)
    return oid


def _post_update_host(o):
    """Host::post_update_template: IM_MAD and VM_MAD given in the template
    become the host's, and the reserved capacity is applied."""
    def post(host):
        tpl = host["template"]
        for key, fld in (("IM_MAD", "im_mad"), ("VM_MAD", "vm_mad")):
            if tget(tpl, key):
                host[fld] = tget(tpl, key)
            tset(tpl, key, host[fld])
        o.apply_reserved(host)
        o.rearm_monitor(host)       # the next probe rewrites what it owns
    return post


@rpc("one.host.update", "i,s,?i")
def host_update(o, user, m, oid, text, utype=0):
    o.update_template("host", oid, text, utype, _post_update_host(o))
    return oid


# ------------------------------------------------------------- clusters
define_reads("cluster", "one.clusterpool.info", "one.cluster.info",
             Oned.cluster_xml)


@rpc("one.cluster.allocate", "s")
def cluster_allocate(o, user, m, name):
    if not name:
        raise OnedError(ALLOCATE, "Error allocating a new cluster. Invalid "
                                  "NAME, it cannot be empty")
    dup = o.store.find_name("cluster", name)
    if dup is not None:
        raise OnedError(ALLOCATE, "Error allocating a new cluster. NAME is "
                        "already taken by CLUSTER %d." % dup["id"])
    oid = o.store.new_id("cluster")
    o.store.put("cluster", {"id": oid, "name": name,
                            "template": [["RESERVED_CPU", ""],
                                         ["RESERVED_MEM", ""]]})
    return oid


@rpc("one.cluster.delete", "i")
def cluster_delete(o, user, m, oid):
    o.get("cluster", oid)
    if oid < 100:
        raise OnedError(ACTION, "Cannot delete cluster. System Clusters "
                                "(ID < 100) cannot be deleted.")
    for kind, what in (("host", "hosts"), ("datastore", "datastores"),
                       ("vnet", "vnets")):
        if kind == "host":
            count = sum(1 for h in o.store.all("host")
                        if h["cluster_id"] == oid)
        else:
            count = sum(1 for x in o.store.all(kind) if oid in x["clusters"])
        if count:
            raise OnedError(ACTION, "Cannot delete cluster. Cluster %d is not "
                            "empty, it contains %d %s." % (oid, count, what))
    o.store.remove("cluster", oid)
    return oid


def _cluster_member(kind, add):
    def handler(o, user, m, cluster_id, obj_id):
        # delhost is oned's addhost into the default cluster (ClusterAPI::
        # DelHost): the cluster named is not even looked up
        if kind != "host" or add:
            o.get("cluster", cluster_id)
        obj = o.get(kind, obj_id)
        if kind == "host":
            target = cluster_id if add else 0
            if obj["cluster_id"] != target:
                obj["cluster_id"] = target
                # Host::update_reserved_capacity: unless the host reserves
                # both CPU and memory itself, MAX_* are computed again, from
                # the current totals (0 for an offline host: a reservation
                # makes them negative, as in oned)
                if not (tget(obj["template"], "RESERVED_CPU") and
                        tget(obj["template"], "RESERVED_MEM")):
                    o.apply_reserved(obj)
        elif add:
            if cluster_id not in obj["clusters"]:
                obj["clusters"] = sorted(obj["clusters"] + [cluster_id])
        else:
            obj["clusters"] = [c for c in obj["clusters"] if c != cluster_id]
        o.store.touch(kind, obj)
        return cluster_id
    return handler


for _kind, _suffix in (("host", "host"), ("vnet", "vnet"),
                       ("datastore", "datastore")):
    rpc("one.cluster.add" + _suffix, "i,i")(_cluster_member(_kind, True))
    rpc("one.cluster.del" + _suffix, "i,i")(_cluster_member(_kind, False))


# ------------------------------------------------------ virtual networks
# in the pool, ARs without MAC_END, IP_END and LEASES, as oned
define_reads("vnet", "one.vnpool.info", "one.vn.info", Oned.vnet_xml,
             pool_render=lambda o, v: o.vnet_xml(v, extended=False),
             filtered=True)


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


@rpc("one.vn.allocate", "s,i")
def vn_allocate(o, user, m, text, cluster_id):
    tpl, cluster, name = named_allocate(
        o, "vnet", text, cluster_id,
        "No NAME in template for Virtual Network.")
    vn_mad = tget(tpl, "VN_MAD", "")
    if not vn_mad:
        raise OnedError(INTERNAL, "No VN_MAD in template for Virtual Network.")
    if vn_mad not in VN_MAD_CONF:
        raise OnedError(INTERNAL, 'VN_MAD named "%s" is not defined in '
                                  'oned.conf' % vn_mad)
    bridge_type = parse_bridge_type(vn_mad, tget(tpl, "BRIDGE_TYPE", ""))
    # the address ranges are read when the driver answers (_vnet_ready):
    # a wrong one does not fail the allocate, it puts the network in ERROR
    pending = tvectors(tpl, "AR")
    oid = o.store.new_id("vnet")
    terase(tpl, "NAME")
    vlan_id = tget(tpl, "VLAN_ID", "")
    vlan_auto = 0
    if not vlan_id and vn_mad in VLAN_VN_MADS and \
            tget(tpl, "AUTOMATIC_VLAN_ID", "YES").upper() != "NO":
        vlan_id = o.free_vlan()
        vlan_auto = 1
    bridge = tget(tpl, "BRIDGE", "")
    if not bridge:
        bridge = ("onebr.%s" % vlan_id) if vn_mad in VLAN_VN_MADS and \
            vlan_id else "onebr%d" % oid
    vn = {
        "id": oid, "uid": user["id"], "gid": user["gid"], "name": name,
        "clusters": [cluster["id"]], "bridge": bridge,
        "bridge_type": bridge_type,
        "state": VN_LOCK_CREATE, "prev_state": VN_INIT, "vn_mad": vn_mad,
        "phydev": tget(tpl, "PHYDEV", ""), "vlan_id": vlan_id,
        "outer_vlan_id": tget(tpl, "OUTER_VLAN_ID", ""),
        "vlan_auto": vlan_auto, "outer_vlan_auto": 0,
        "template": tpl, "ars": [], "pending_ars": pending,
        "due": now() + o.opts.vnet_driver_delay,
    }
    tset(tpl, "BRIDGE", vn["bridge"])
    tset(tpl, "BRIDGE_TYPE", vn["bridge_type"])
    tset(tpl, "PHYDEV", vn["phydev"])
    if tget(tpl, "SECURITY_GROUPS") is None:
        tset(tpl, "SECURITY_GROUPS", "0")
    tset(tpl, "VN_MAD", vn_mad)
    o.store.put("vnet", vn)
    return oid


@rpc("one.vn.update", "i,s,?i")
def vn_update(o, user, m, oid, text, utype=0):
    o.update_template("vnet", oid, text, utype, o.post_update_vnet)
    return oid


def _first_ar(text):
    tpl = parse_or_fail(text)
    vectors = tvectors(tpl, "AR")
    return vectors[0] if vectors else None


@rpc("one.vn.add_ar", "i,s")
def vn_add_ar(o, user, m, oid, text):
    vn = o.get("vnet", oid)
    o.vnet_ready_or_fail(vn, m)
    vector = _first_ar(text)
    if vector is None:
        raise OnedError(INTERNAL, "Wrong AR definition. AR vector attribute "
                                  "is missing.")
    ar = o.build_ar(vector, next_ar_id(vn))
    vn["ars"].append(ar)
    o.store.touch("vnet", vn)
    return oid


# attributes update_ar never takes from the request (IP/MAC/TYPE ignored)
_AR_FIXED = ("AR_ID", "IP", "MAC", "TYPE", "NEXT_INDEX", "SHARED",
             "GLOBAL_PREFIX", "ULA_PREFIX", "PARENT_NETWORK_AR_ID")
_AR_COMPUTED = ("MAC_END", "IP_END", "USED_LEASES", "LEASES", "ALLOCATED",
                "IP6_ULA", "IP6_ULA_END", "IP6_GLOBAL", "IP6_GLOBAL_END")


@rpc("one.vn.update_ar", "i,s")
def vn_update_ar(o, user, m, oid, text):
    vn = o.get("vnet", oid)
    o.vnet_ready_or_fail(vn, m)
    vector = _first_ar(text)
    values = dict(vector or [])
    if not values.get("AR_ID"):
        raise OnedError(INTERNAL, "AR/AR_ID attribute is missing.")
    target = None
    for ar in vn["ars"]:
        if ar["attrs"]["AR_ID"] == values["AR_ID"].strip():
            target = ar
    if target is None:
        raise OnedError(INTERNAL, "Address Range with ID %s was not found." %
                        values["AR_ID"])
    old = target["attrs"]
    new = {k: old[k] for k in _AR_FIXED if k in old}
    new["SIZE"] = old["SIZE"]
    if "SIZE" in values:
        try:
            size = int(values["SIZE"])
        except ValueError:
            size = -1
        if size < 0:
            raise OnedError(INTERNAL, "Wrong SIZE for address range")
        new["SIZE"] = str(size)
    for key, value in values.items():
        if key not in _AR_FIXED and key not in _AR_COMPUTED and key != "SIZE":
            new[key] = value
    target["attrs"] = new
    o.store.touch("vnet", vn)
    return oid


@rpc("one.vn.rm_ar", "i,i,?b")
def vn_rm_ar(o, user, m, oid, ar_id, force=False):
    vn = o.get("vnet", oid)
    o.vnet_ready_or_fail(vn, m)
    kept = [ar for ar in vn["ars"] if ar["attrs"]["AR_ID"] != str(ar_id)]
    if len(kept) == len(vn["ars"]):
        raise OnedError(INTERNAL, "Address Range does not exist")
    vn["ars"] = kept
    o.store.touch("vnet", vn)
    return oid


@rpc("one.vn.delete", "i")
def vn_delete(o, user, m, oid):
    vn = o.get("vnet", oid)
    if vn["state"] != VN_LOCK_DELETE:
        vn["state"] = vn["prev_state"] = VN_LOCK_DELETE
        vn["ars"] = []
        vn.pop("pending_ars", None)
        vn["due"] = now() + o.opts.vnet_driver_delay
        o.store.touch("vnet", vn)
    return oid


# ----------------------------------------------------------- datastores
define_reads("datastore", "one.datastorepool.info", "one.datastore.info",
             Oned.datastore_xml)


def _ds_set_mad(tpl, ds_type, ds_mad):
    """Datastore::set_ds_mad: the DS_MAD_CONF's checks (not for system
    datastores)."""
    if ds_type == DS_TYPES["SYSTEM_DS"]:
        return
    if ds_mad not in DS_MAD_CONF:
        raise OnedError(INTERNAL, 'DS_MAD named "%s" is not defined in '
                                  'oned.conf' % ds_mad)
    required, capacity_check = DS_MAD_CONF[ds_mad]
    if capacity_check is not None:
        tset(tpl, "DATASTORE_CAPACITY_CHECK", capacity_check)
    for attr in filter(None, (a.strip().upper()
                              for a in required.split(","))):
        if not tget(tpl, attr):
            raise OnedError(INTERNAL, 'Datastore template is missing the '
                            '"%s" attribute or it\'s empty.' % attr)


def _yes_no(value, default):
    """A TM_MAD_CONF boolean as oned writes it back."""
    if value is None:
        return default
    return "YES" if value.strip().upper() in ("YES", "TRUE", "1") else "NO"


def _ds_set_tm_mad(tpl, ds_type, tm_mad):
    """Datastore::set_tm_mad: the TM_MAD_CONF's attributes into the
    template."""
    if ds_type == DS_TYPES["BACKUP_DS"]:
        return
    if not tm_mad:
        raise OnedError(INTERNAL, "No TM_MAD in template.")
    conf = TM_MAD_CONF.get(tm_mad)
    if conf is None:
        raise OnedError(INTERNAL, 'TM_MAD named "%s" is not defined in '
                                  'oned.conf' % tm_mad)
    if ds_type == DS_TYPES["SYSTEM_DS"]:
        tset(tpl, "SHARED", _yes_no(conf["SHARED"], "NO"))
        tset(tpl, "DS_MIGRATE", _yes_no(conf.get("DS_MIGRATE"), "YES"))
        tset(tpl, "DS_LIVE_MIGRATE", _yes_no(conf.get("DS_LIVE_MIGRATE"),
                                             "NO"))
        tset(tpl, "DS_MIGRATE_SNAP", _yes_no(conf.get("DS_MIGRATE_SNAP"),
                                             "NO"))
        terase(tpl, "LN_TARGET")
        terase(tpl, "CLONE_TARGET")
    else:
        modes = conf.get("TM_MAD_SYSTEM")
        if modes:
            tset(tpl, "TM_MAD_SYSTEM", modes)
            for mode in filter(None, (x.strip().upper()
                                      for x in modes.split(","))):
                for key in ("LN_TARGET_", "CLONE_TARGET_", "DISK_TYPE_"):
                    value = conf[key + mode]
                    tset(tpl, key + mode, value.upper()
                         if key != "DISK_TYPE_" else value)
        tset(tpl, "LN_TARGET", conf["LN_TARGET"].upper())
        tset(tpl, "CLONE_TARGET", conf["CLONE_TARGET"].upper())
        for key in ("DRIVER", "DISK_TYPE"):
            if conf.get(key):
                tset(tpl, key, conf[key])
        terase(tpl, "SHARED")
    tset(tpl, "ALLOW_ORPHANS", conf.get("ALLOW_ORPHANS", "NO"))
    tset(tpl, "PERSISTENT_SNAPSHOTS",
         _yes_no(conf.get("PERSISTENT_SNAPSHOTS"), "YES"))


def _ds_disk_type(tpl, ds_type, text):
    """Datastore::set_ds_disk_type: the DISK_TYPE element's number, and
    the template's DISK_TYPE (image and system datastores)."""
    name = (text or "FILE").upper()
    disk_type = DISK_TYPES.get(name)
    if ds_type in (DS_TYPES["FILE_DS"], DS_TYPES["BACKUP_DS"]):
        return DISK_TYPES["FILE"]
    if disk_type is None:
        raise OnedError(INTERNAL, "Unknown DISK_TYPE in template.")
    if ds_type == DS_TYPES["IMAGE_DS"] and name in (
            "CDROM", "RBD_CDROM", "SHEEPDOG_CDROM", "GLUSTER_CDROM"):
        raise OnedError(INTERNAL, "Invalid DISK_TYPE for an Image Datastore.")
    if ds_type == DS_TYPES["SYSTEM_DS"] and name not in (
            "FILE", "RBD", "BLOCK", "FILESYSTEM"):
        raise OnedError(INTERNAL, "Invalid DISK_TYPE for a System Datastore.")
    tset(tpl, "DISK_TYPE", name)
    return disk_type


@rpc("one.datastore.allocate", "s,i")
def datastore_allocate(o, user, m, text, cluster_id):
    """DatastorePool::allocate and Datastore::insert, in their order."""
    tpl = parse_or_fail(text)
    cluster = o.cluster_for_allocate(cluster_id)
    name = tget(tpl, "NAME", "")
    if not name:
        raise OnedError(INTERNAL, "Invalid NAME, it cannot be empty")
    dup = o.store.find_name("datastore", name)
    if dup is not None:
        raise OnedError(INTERNAL, "NAME is already taken by DATASTORE %d."
                        % dup["id"])
    terase(tpl, "NAME")
    # an unknown TYPE is an image datastore (Datastore::str_to_type)
    ds_type = DS_TYPES.get(tget(tpl, "TYPE", ""), DS_TYPES["IMAGE_DS"])
    ds_mad = tget(tpl, "DS_MAD", "")
    if ds_type == DS_TYPES["SYSTEM_DS"]:
        if ds_mad:
            raise OnedError(INTERNAL, "SYSTEM datastores cannot have DS_MAD "
                                      "defined.")
        ds_mad = "-"
    elif not ds_mad:
        raise OnedError(INTERNAL, "No DS_MAD in template.")
    _ds_set_mad(tpl, ds_type, ds_mad)
    tm_mad = tget(tpl, "TM_MAD", "")
    _ds_set_tm_mad(tpl, ds_type, tm_mad)
    if ds_type == DS_TYPES["BACKUP_DS"]:
        tm_mad = "-"
    # BASE_PATH is always DATASTORE_LOCATION/<id>: oned drops the one given
    terase(tpl, "BASE_PATH")
    disk_text = tget(tpl, "DISK_TYPE", "")
    terase(tpl, "DISK_TYPE")
    disk_type = _ds_disk_type(tpl, ds_type, disk_text)
    if not tget(tpl, "SAFE_DIRS") and not tget(tpl, "RESTRICTED_DIRS"):
        tset(tpl, "SAFE_DIRS", "/var/tmp")
        tset(tpl, "RESTRICTED_DIRS", "/")
    oid = o.store.new_id("datastore")
    ds = o._new_ds(oid, name, ds_mad, tm_mad, ds_type, tpl, cluster["id"])
    ds["uid"], ds["gid"] = user["id"], user["gid"]
    ds["disk_type"] = disk_type
    o.store.put("datastore", ds)
    return oid


def _post_update_datastore(ds):
    """Datastore::post_update_template (the read-only options of
    datastores with images are not checked: the test oned's datastores
    never list their images)."""
    tpl = ds["template"]
    type_text = tget(tpl, "TYPE", "")
    new_type = DS_TYPES.get(type_text, DS_TYPES["IMAGE_DS"]) if type_text \
        else ds["type"]
    if ds["id"] == 0:
        ds["type"] = DS_TYPES["SYSTEM_DS"]
    elif ds["type"] != DS_TYPES["BACKUP_DS"]:
        ds["type"] = new_type
    tset(tpl, "TYPE", {v: k for k, v in DS_TYPES.items()}[ds["type"]])
    disk_text = tget(tpl, "DISK_TYPE", "")
    terase(tpl, "DISK_TYPE")
    if disk_text:
        ds["disk_type"] = _ds_disk_type(tpl, ds["type"], disk_text)
    new_tm = tget(tpl, "TM_MAD", "")
    if new_tm and ds["type"] != DS_TYPES["BACKUP_DS"]:
        _ds_set_tm_mad(tpl, ds["type"], new_tm)
        ds["tm_mad"] = new_tm
    else:
        tset(tpl, "TM_MAD", ds["tm_mad"])
    new_ds = tget(tpl, "DS_MAD", "")
    if ds["type"] == DS_TYPES["SYSTEM_DS"]:
        ds["ds_mad"] = "-"
        terase(tpl, "DS_MAD")
    elif not new_ds:
        tset(tpl, "DS_MAD", ds["ds_mad"])
    else:
        ds["ds_mad"] = new_ds
    _ds_set_mad(tpl, ds["type"], ds["ds_mad"])


@rpc("one.datastore.update", "i,s,?i")
def datastore_update(o, user, m, oid, text, utype=0):
    o.update_template("datastore", oid, text, utype, _post_update_datastore)
    return oid


@rpc("one.datastore.delete", "i")
def datastore_delete(o, user, m, oid):
    """Any datastore may go, the system ones (ids below 100) too, as long
    as no image is in it."""
    o.get("datastore", oid)
    if any(img["datastore_id"] == oid for img in o.store.all("image")):
        raise OnedError(ACTION, "Cannot delete datastore. Datastore %d is "
                                "not empty." % oid)
    o.store.remove("datastore", oid)
    return oid


# --------------------------------------------------------------------------
# Images (one.imagepool.info, one.image.info/allocate/delete)
#
# No captured oned answer exists for images: the IMAGE document follows
# OpenNebula's documented image.xsd, the messages are modelled on oned's
# other allocate errors, and none of it is replay-checked (docs/test-oned.md).
# The datastore "driver" copies PATH after IMAGE_COPY_DELAY seconds: a local
# file that exists and is allowed by the datastore's RESTRICTED_DIRS and
# SAFE_DIRS makes the image READY; anything else ERROR, with the reason in
# TEMPLATE/ERROR, as the fs driver's cp does.
# --------------------------------------------------------------------------

IMAGE_TYPES = {"OS": 0, "CDROM": 1, "DATABLOCK": 2, "KERNEL": 3, "RAMDISK": 4,
               "CONTEXT": 5}
IMG_READY, IMG_LOCKED, IMG_ERROR = 1, 4, 5
IMAGE_COPY_DELAY = 0.2
_IMAGE_ELEMENT_KEYS = ("NAME", "PATH", "SOURCE", "TYPE", "PERSISTENT", "SIZE")


def image_xml(o, img):
    return ("<IMAGE>%s%s<TYPE>%d</TYPE>"
            "<DISK_TYPE>0</DISK_TYPE><PERSISTENT>%d</PERSISTENT>"
            "<REGTIME>%d</REGTIME><SOURCE>%s</SOURCE><PATH>%s</PATH>"
            "<FORMAT>%s</FORMAT><FS>%s</FS><SIZE>%d</SIZE><STATE>%d</STATE>"
            "<PREV_STATE>%d</PREV_STATE><RUNNING_VMS>0</RUNNING_VMS>"
            "<CLONING_OPS>0</CLONING_OPS><CLONING_ID>-1</CLONING_ID>"
            "<TARGET_SNAPSHOT>-1</TARGET_SNAPSHOT><DATASTORE_ID>%d"
            "</DATASTORE_ID><DATASTORE>%s</DATASTORE><VMS></VMS><CLONES>"
            "</CLONES><APP_CLONES></APP_CLONES>%s<SNAPSHOTS><ALLOW_ORPHANS>"
            "%s</ALLOW_ORPHANS><CURRENT_BASE>%s</CURRENT_BASE><NEXT_SNAPSHOT>"
            "%s</NEXT_SNAPSHOT></SNAPSHOTS><BACKUP_INCREMENTS>"
            "</BACKUP_INCREMENTS><BACKUP_DISK_IDS></BACKUP_DISK_IDS>"
            "</IMAGE>") % (
        o.owned_xml(img), perms_xml([1, 1, 0, 0, 0, 0, 0, 0, 0]), img["type"],
        img["persistent"], img["regtime"], cdata(img["source"]),
        cdata(img["path"]), cdata(img["format"]), cdata(""), img["size"],
        img["state"], img["prev_state"], img["datastore_id"],
        _xml_text(img["datastore"]), template_xml(img["template"]),
        cdata("NO"), cdata(-1), cdata(0))


def _image_copy_error(ds, path):
    """Why the fs driver's cp would refuse path, or None."""
    if re.match(r"^(https?|s3|lxd|docker)://", path):
        return None
    if not path.startswith("/"):
        return "Error copying image in the datastore: Not a valid path: %s" % path

    def dirs(key):
        return [d for d in (tget(ds["template"], key, "") or "").split() if d]

    real = os.path.realpath(path)
    safe = [d for d in dirs("SAFE_DIRS")
            if real == d or real.startswith(d.rstrip("/") + "/")]
    restricted = [d for d in dirs("RESTRICTED_DIRS")
                  if real == d or real.startswith(d.rstrip("/") + "/")]
    if restricted and not safe:
        return ("Error copying image in the datastore: Not allowed to copy "
                "images from %s" % " ".join(dirs("RESTRICTED_DIRS")))
    if not os.path.isfile(real):
        return ("Error copying image in the datastore: Cannot stat %s"
                % path)
    return None


def _image_size_mb(path):
    """Size in MB of the image the driver stores (gzip is decompressed)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            if handle.read(2) == b"\x1f\x8b" and size >= 18:
                handle.seek(-4, os.SEEK_END)
                size = int.from_bytes(handle.read(4), "little")
    except OSError:
        return 0
    return (size + 1048575) // 1048576


def image_tick(o, t):
    for img in list(o.store.objects["image"].values()):
        due = img.get("due")
        if due is None or due > t:
            continue
        img["due"] = None
        ds = o.store.get("datastore", img["datastore_id"])
        error = _image_copy_error(ds, img["path"]) if ds else \
            "Error copying image in the datastore: datastore is gone"
        img["prev_state"] = img["state"]
        if error:
            img["state"] = IMG_ERROR
            tset(img["template"], "ERROR", error)
        else:
            img["state"] = IMG_READY
            if img["path"].startswith("/"):
                img["size"] = _image_size_mb(img["path"])
        o.store.touch("image", img)


define_reads("image", "one.imagepool.info", "one.image.info", image_xml,
             filtered=True)


@rpc("one.image.allocate", "s,i,?b")
def image_allocate(o, user, m, text, ds_id, no_check_capacity=False):
    tpl = parse_or_fail(text)
    ds = o.get("datastore", ds_id)
    if ds["type"] != DS_TYPES["IMAGE_DS"]:
        raise OnedError(INTERNAL, "New images can only be allocated in an "
                                  "IMAGE datastore.")
    name = tget(tpl, "NAME", "")
    if not name:
        raise OnedError(INTERNAL, "No NAME in template.")
    for other in o.store.all("image"):
        if other["name"] == name and other["uid"] == user["id"]:
            raise OnedError(INTERNAL, "NAME is already taken by IMAGE %d." %
                            other["id"])
    type_name = (tget(tpl, "TYPE", "") or "OS").upper()
    if type_name not in IMAGE_TYPES:
        raise OnedError(INTERNAL, "Unknown image type %s." % type_name)
    path = tget(tpl, "PATH", "") or ""
    if not path and type_name != "DATABLOCK" and not tget(tpl, "SOURCE"):
        raise OnedError(INTERNAL, "No PATH nor SOURCE in template.")
    persistent = 1 if (tget(tpl, "PERSISTENT", "") or "").upper() in \
        ("YES", "1") else 0
    for key in _IMAGE_ELEMENT_KEYS:
        terase(tpl, key)
    oid = o.store.new_id("image")
    img = {
        "id": oid, "uid": user["id"], "gid": user["gid"], "name": name,
        "type": IMAGE_TYPES[type_name], "persistent": persistent,
        "regtime": int(now()), "path": path,
        "source": "%s/%s" % (ds["base_path"],
                             hashlib.sha256(("%d:%s:%f" % (oid, name, now()))
                                            .encode()).hexdigest()[:32]),
        "format": "raw", "size": 0, "state": IMG_LOCKED, "prev_state": 0,
        "datastore_id": ds["id"], "datastore": ds["name"], "template": tpl,
        "due": now() + IMAGE_COPY_DELAY,
    }
    o.store.put("image", img)
    return oid


@rpc("one.image.delete", "i,?b")
def image_delete(o, user, m, oid, force=False):
    o.get("image", oid)
    o.store.remove("image", oid)
    return oid


# --------------------------------------------------------------------------
# Users and groups (one.user.allocate/chgrp, one.group.allocate/info)
# --------------------------------------------------------------------------

@rpc("one.user.allocate", "s,s,s,?a")
def user_allocate(o, user, m, name, password, driver, group_ids=None):
    o.require_admin(user, "Not authorized to perform CREATE USER.")
    dup = o.store.find_name("user", name)
    if dup is not None:
        raise OnedError(INTERNAL, "NAME is already taken by USER %d." %
                        dup["id"])
    if not name or not LDAP_NAME_RE.fullmatch(name):
        raise OnedError(INTERNAL, "Invalid NAME, it cannot be empty or "
                                  "contain spaces")
    groups = [check_param(group_ids, i, "i")
              for i in range(len(group_ids or []))]
    for gid in groups:
        o.get("group", gid)
    gid = groups[0] if groups else 1
    driver = driver or "core"
    oid = o.store.new_id("user")
    o.store.put("user", {
        "id": oid, "gid": gid, "groups": sorted(set(groups or [1])),
        "name": name,
        "password": sha256(password) if driver == "core" else password,
        "auth_driver": driver, "enabled": 1, "tokens": [],
        "template": [["TOKEN_PASSWORD", sha256(secrets.token_hex(32))]]})
    return oid


@rpc("one.user.chgrp", "i,i")
def user_chgrp(o, user, m, uid, gid):
    o.require_admin(user, "Not authorized to perform MANAGE USER [%d]." % uid)
    target = o.get("user", uid)
    o.get("group", gid)
    old = target["gid"]
    target["groups"] = sorted((set(target["groups"]) - {old}) | {gid})
    target["gid"] = gid
    o.store.touch("user", target)
    return uid


@rpc("one.group.allocate", "s")
def group_allocate(o, user, m, name):
    o.require_admin(user, "Not authorized to perform CREATE GROUP.")
    if not name:
        raise OnedError(INTERNAL, "Invalid NAME, it cannot be empty")
    dup = o.store.find_name("group", name)
    if dup is not None:
        raise OnedError(INTERNAL, "NAME is already taken by GROUP %d." %
                        dup["id"])
    oid = o.store.new_id("group")
    o.store.put("group", {"id": oid, "name": name, "template": []})
    for rule in acl_group_rules(oid):
        acl_add(o, *rule)
    return oid


@rpc("one.group.info", "i,?b")
def group_info(o, user, m, oid, decrypt=False):
    if oid == -1:
        oid = user["gid"]
    g = o.get("group", oid)
    members = [u["id"] for u in o.store.all("user") if oid in u["groups"]]
    quotas = ("<DATASTORE_QUOTA></DATASTORE_QUOTA><NETWORK_QUOTA>"
              "</NETWORK_QUOTA><VM_QUOTA></VM_QUOTA><IMAGE_QUOTA>"
              "</IMAGE_QUOTA>")
    return ("<GROUP><ID>%d</ID><NAME>%s</NAME>%s%s<ADMINS></ADMINS>%s"
            "<VLAN_RULES><ID>%s</ID></VLAN_RULES><DEFAULT_GROUP_QUOTAS>%s"
            "</DEFAULT_GROUP_QUOTAS></GROUP>") % (
        g["id"], _xml_text(g["name"]), template_xml(g["template"]),
        ids_xml("USERS", members), quotas, cdata(g["id"]), quotas)


# --------------------------------------------------------------------------
# Virtual machines, VM templates and accounting
#
# Held to tests/fixtures/opennebula/samples-accounting-7.4.0 (README there): the VM
# and HISTORY documents, who is recorded as the actor of an action, how
# poweroff shows (RETIME set, record still open), and one.vmpool.accounting's
# overlap test, which never clips records.  There is no scheduler and no
# driver delay: one.vm.deploy places a VM and it is RUNNING when the call
# returns; actions complete within the call.  Times come from the test clock
# (testoned.clock.*, below), so hours of VM time can be scripted.
# --------------------------------------------------------------------------

VM_STATES = ["INIT", "PENDING", "HOLD", "ACTIVE", "STOPPED", "SUSPENDED",
             "DONE", "FAILED", "POWEROFF", "UNDEPLOYED", "CLONING",
             "CLONING_FAILURE"]
VM_PENDING, VM_HOLD, VM_ACTIVE, VM_STOPPED, VM_SUSPENDED = 1, 2, 3, 4, 5
VM_DONE, VM_POWEROFF, VM_UNDEPLOYED = 6, 8, 9
LCM_PROLOG, LCM_RUNNING, LCM_BOOT_POWEROFF, LCM_BOOT_SUSPENDED = 1, 3, 20, 21
LCM_NAMES = {0: "LCM_INIT", 1: "PROLOG", 2: "BOOT", 3: "RUNNING"}
# VMActions.h numbers of the actions one.vm.action accepts here
VM_ACTIONS = {
    "undeploy": 5, "undeploy-hard": 6, "hold": 7, "release": 8, "stop": 9,
    "suspend": 10, "resume": 11, "reboot": 15, "reboot-hard": 16,
    "poweroff": 19, "poweroff-hard": 20, "terminate": 27,
    "terminate-hard": 28,
}
# oned.conf VM_RESTRICTED_ATTR (the subset the test oned checks)
VM_RESTRICTED = ("CPU_COST", "MEMORY_COST", "DISK_COST", "RAW", "EMULATOR",
                 "USER_PRIORITY", "DEPLOY_ID", "PCI")
VM_RESTRICTED_VECTOR = {"NIC": ("MAC", "VLAN_ID", "BRIDGE", "INBOUND_AVG_BW",
                                "OUTBOUND_AVG_BW"),
                        "DISK": ("TOTAL_BYTES_SEC", "READ_BYTES_SEC",
                                 "WRITE_BYTES_SEC", "TOTAL_IOPS_SEC")}
# attributes that stay in the VM's TEMPLATE; any other goes to USER_TEMPLATE
VM_TEMPLATE_KEYS = {
    "CPU", "VCPU", "MEMORY", "DISK", "NIC", "NIC_ALIAS", "NIC_DEFAULT", "OS",
    "GRAPHICS", "INPUT", "CONTEXT", "FEATURES", "RAW", "PCI", "CPU_MODEL",
    "CPU_COST", "MEMORY_COST", "DISK_COST", "TEMPLATE_ID", "VMID",
    "SUBMIT_ON_HOLD", "SECURITY_GROUP_RULE", "TM_MAD_SYSTEM", "TOPOLOGY",
    "NUMA_NODE", "MEMORY_MAX", "VCPU_MAX", "MEMORY_RESIZE_MODE",
    "VROUTER_ID", "EMULATOR", "AUTOMATIC_REQUIREMENTS",
    "AUTOMATIC_DS_REQUIREMENTS", "AUTOMATIC_NIC_REQUIREMENTS", "VIDEO",
    "HYPERVISOR", "SPICE_OPTIONS", "IMPORTED", "DEPLOY_ID", "SNAPSHOT",
}
def _restricted_attr(tpl):
    for key, value in tpl:
        if isinstance(value, str) and key in VM_RESTRICTED:
            return key
        if isinstance(value, list):
            if key in VM_RESTRICTED:
                return key
            for sub, _ in value:
                if sub in VM_RESTRICTED_VECTOR.get(key, ()):
                    return "%s/%s" % (key, sub)
    return None


def _positive_number(text, integer=False):
    try:
        value = int(text) if integer else float(text)
    except (TypeError, ValueError):
        return False
    return value > 0


def _vm_state_name(vm):
    if vm["state"] == VM_ACTIVE:
        return LCM_NAMES.get(vm["lcm_state"], str(vm["lcm_state"]))
    return VM_STATES[vm["state"]]


def _nic_lease(o, vn, vmid, nic_id):
    """First free address of the network's ARs: (ar_id, ip or None, mac)."""
    leases = vn.setdefault("leases", {})
    for ar in vn["ars"]:
        attrs = ar["attrs"]
        for index in range(int(attrs["SIZE"])):
            key = "%s:%d" % (attrs["AR_ID"], index)
            if key in leases:
                continue
            leases[key] = vmid
            o.store.touch("vnet", vn)
            mac = int_to_mac(mac_to_int(attrs["MAC"]) + index)
            ip = int_to_ip(ip_to_int(attrs["IP"]) + index) \
                if "IP" in attrs else None
            return attrs["AR_ID"], ip, mac
    raise OnedError(INTERNAL, "Cannot get IP/MAC lease from virtual network "
                              "%d." % vn["id"])


def _release_leases(o, vmid):
    for vn in o.store.all("vnet"):
        leases = vn.get("leases") or {}
        mine = [k for k, v in leases.items() if v == vmid]
        for key in mine:
            del leases[key]
        if mine:
            o.store.touch("vnet", vn)


def _build_vm_template(o, vmid, tpl, hold):
    """The VM's TEMPLATE and USER_TEMPLATE as oned 7.4.0 builds them."""
    system, user_tpl = [], []
    for key, value in tpl:
        if key == "NAME":
            continue
        (system if key in VM_TEMPLATE_KEYS else user_tpl).append(
            [key, value if isinstance(value, str) else
             [list(x) for x in value]])
    clusters = None
    nic_id = 0
    for key, value in system:
        if key != "NIC":
            continue
        attrs = dict(value)
        vn = None
        if attrs.get("NETWORK_ID", "").strip().lstrip("-").isdigit():
            vn = o.store.get("vnet", int(attrs["NETWORK_ID"]))
        elif attrs.get("NETWORK"):
            vn = o.store.find_name("vnet", attrs["NETWORK"])
        if vn is None:
            raise OnedError(INTERNAL, "Cannot get virtual network [%s]." % (
                attrs.get("NETWORK_ID") or attrs.get("NETWORK", "")))
        ar_id, ip, mac = _nic_lease(o, vn, vmid, nic_id)
        fields = [("AR_ID", ar_id), ("BRIDGE", vn["bridge"]),
                  ("BRIDGE_TYPE", vn["bridge_type"]),
                  ("CLUSTER_ID", ",".join(str(c) for c in vn["clusters"])),
                  ("IP", ip), ("MAC", mac), ("NAME", "NIC%d" % nic_id),
                  ("NETWORK", vn["name"]), ("NETWORK_ID", str(vn["id"])),
                  ("NIC_ID", str(nic_id)), ("PHYDEV", vn["phydev"]),
                  ("SECURITY_GROUPS",
                   tget(vn["template"], "SECURITY_GROUPS", "0")),
                  ("TARGET", "one-%d-%d" % (vmid, nic_id)),
                  ("VLAN_ID", vn["vlan_id"]), ("VN_MAD", vn["vn_mad"])]
        for sub, sval in fields:
            if sval not in (None, ""):
                _vector_set(value, sub, sval)
        vc = set(vn["clusters"])
        clusters = vc if clusters is None else clusters & vc
        nic_id += 1
    disk_id = 0
    for key, value in system:
        if key != "DISK":
            continue
        attrs = dict(value)
        prefix = attrs.get("DEV_PREFIX") or "sd"
        _vector_set(value, "DEV_PREFIX", prefix)
        _vector_set(value, "DISK_ID", str(disk_id))
        if not attrs.get("TARGET"):
            _vector_set(value, "TARGET", prefix + "abcdefghijklmnopqrstuvwxyz"[
                disk_id % 26])
        disk_id += 1
    os_vec = tvectors(system, "OS")
    if os_vec:
        os_attrs = os_vec[0]
    else:
        os_attrs = []
        system.append(["OS", os_attrs])
    if not dict(os_attrs).get("MACHINE"):
        _vector_set(os_attrs, "MACHINE", "q35")
    _vector_set(os_attrs, "UUID", str(uuid.UUID(int=o.rand.getrandbits(128),
                                                version=4)))
    if nic_id:
        system.append(["SECURITY_GROUP_RULE", [
            ["PROTOCOL", "ALL"], ["RULE_TYPE", "OUTBOUND"],
            ["SECURITY_GROUP_ID", "0"], ["SECURITY_GROUP_NAME", "default"]]])
        system.append(["SECURITY_GROUP_RULE", [
            ["PROTOCOL", "ALL"], ["RULE_TYPE", "INBOUND"],
            ["SECURITY_GROUP_ID", "0"], ["SECURITY_GROUP_NAME", "default"]]])
    if clusters:
        ids = sorted(clusters)
        tset(system, "AUTOMATIC_DS_REQUIREMENTS", "(%s)" % " | ".join(
            '"CLUSTERS/ID" @> %d' % c for c in ids))
        tset(system, "AUTOMATIC_NIC_REQUIREMENTS", "(%s)" % " | ".join(
            '"CLUSTERS/ID" @> %d' % c for c in ids))
        tset(system, "AUTOMATIC_REQUIREMENTS", "(%s) & !(PIN_POLICY = "
             "PINNED)" % " | ".join("CLUSTER_ID = %d" % c for c in ids))
    else:
        tset(system, "AUTOMATIC_REQUIREMENTS", "!(PIN_POLICY = PINNED)")
    if hold:
        tset(system, "SUBMIT_ON_HOLD", "YES")
    tset(system, "VMID", str(vmid))
    return system, user_tpl


def vm_create(o, user, tpl, hold, name=None, restricted_ok=False):
    """one.vm.allocate's checks and object, owner = the caller."""
    if not restricted_ok and not _is_admin(user):
        bad = _restricted_attr(tpl)
        if bad:
            raise OnedError(AUTHORIZATION, "User [%d] : VM Template includes "
                            "a restricted attribute %s." % (user["id"], bad))
    if not _positive_number(tget(tpl, "CPU")):
        raise OnedError(INTERNAL, "CPU attribute must be a positive float or "
                                  "integer value.")
    if not _positive_number(tget(tpl, "MEMORY"), integer=True):
        raise OnedError(INTERNAL, "MEMORY attribute must be a positive "
                                  "integer value.")
    vcpu = tget(tpl, "VCPU")
    if vcpu is not None and not _positive_number(vcpu, integer=True):
        raise OnedError(INTERNAL, "VCPU attribute must be a positive integer "
                                  "value.")
    oid = o.store.new_id("vm")
    try:
        system, user_tpl = _build_vm_template(o, oid, tpl, hold)
    except OnedError:
        _release_leases(o, oid)     # the NICs leased before the failure
        raise
    state = VM_HOLD if hold else VM_PENDING
    vm = {"id": oid, "uid": user["id"], "gid": user["gid"],
          "name": name or tget(tpl, "NAME") or "one-%d" % oid,
          "perms": list(DEFAULT_PERMS), "state": state, "lcm_state": 0,
          "prev_state": state, "prev_lcm_state": 0, "stime": o.clock(),
          "etime": 0, "deploy_id": "", "template": system,
          "user_template": user_tpl, "history": []}
    o.store.put("vm", vm)
    return oid


def _vm_head(o, vm, state, lcm, prev_state, prev_lcm, empty):
    return ("<VM>%s%s<LAST_POLL>0</LAST_POLL>"
            "<STATE>%d</STATE><LCM_STATE>%d</LCM_STATE><PREV_STATE>%d"
            "</PREV_STATE><PREV_LCM_STATE>%d</PREV_LCM_STATE><RESCHED>0"
            "</RESCHED><STIME>%d</STIME><ETIME>%d</ETIME>%s%s%s%s%s") % (
        o.owned_xml(vm), perms_xml(vm["perms"]), state, lcm, prev_state,
        prev_lcm, vm["stime"], vm["etime"],
        _elem("DEPLOY_ID", vm["deploy_id"], empty),
        _elem("MONITORING", "", empty), _elem("SCHED_ACTIONS", "", empty),
        template_xml(vm["template"]),
        _elem("USER_TEMPLATE", "", empty) if not vm["user_template"] else
        template_xml(vm["user_template"], "USER_TEMPLATE"))


def _elem(tag, text, empty):
    """<TAG>text</TAG>; an empty one as oned (<TAG></TAG>) or as libxml
    re-serialises it inside a history record (<TAG/>)."""
    if text == "" and empty == "short":
        return "<%s/>" % tag
    return "<%s>%s</%s>" % (tag, _xml_text(text), tag)


def history_xml(o, h, with_vm):
    return ("<HISTORY><OID>%d</OID><SEQ>%d</SEQ><HOSTNAME>%s</HOSTNAME>"
            "<HID>%d</HID><CID>%d</CID><STIME>%d</STIME><ETIME>%d</ETIME>"
            "<VM_MAD>%s</VM_MAD><TM_MAD>%s</TM_MAD><DS_ID>%d</DS_ID>"
            "<PLAN_ID>-2</PLAN_ID><ACTION_ID>-1</ACTION_ID><PSTIME>%d"
            "</PSTIME><PETIME>%d</PETIME><RSTIME>%d</RSTIME><RETIME>%d"
            "</RETIME><ESTIME>%d</ESTIME><EETIME>%d</EETIME><ACTION>%d"
            "</ACTION><UID>%d</UID><GID>%d</GID><REQUEST_ID>%d</REQUEST_ID>"
            "%s</HISTORY>") % (
        h["oid"], h["seq"], _xml_text(h["hostname"]), h["hid"], h["cid"],
        h["stime"], h["etime"], cdata(h["vm_mad"]), cdata(h["tm_mad"]),
        h["ds_id"], h["pstime"], h["petime"], h["rstime"], h["retime"],
        h["estime"], h["eetime"], h["action"], h["uid"], h["gid"],
        h["request_id"], h["vm_xml"] if with_vm else "")


def vm_xml(o, vm, last_only=False):
    """The full VM: one.vm.info with every history record,
    one.vmpool.infoextended with the last one only."""
    history = vm["history"][-1:] if last_only else vm["history"]
    records = "".join(history_xml(o, h, False) for h in history)
    return "%s%s<BACKUPS><BACKUP_CONFIG/><BACKUP_IDS></BACKUP_IDS>" \
           "</BACKUPS></VM>" % (
               _vm_head(o, vm, vm["state"], vm["lcm_state"],
                        vm["prev_state"], vm["prev_lcm_state"], "long"),
               "<HISTORY_RECORDS>%s</HISTORY_RECORDS>" % records
               if records else "<HISTORY_RECORDS/>")


def vm_snapshot_xml(o, vm, state, lcm, prev_state, prev_lcm):
    """The VM as a history record keeps it (History::to_xml's <VM>)."""
    return "%s<HISTORY_RECORDS/><BACKUPS><BACKUP_CONFIG/><BACKUP_IDS/>" \
           "</BACKUPS></VM>" % _vm_head(o, vm, state, lcm, prev_state,
                                        prev_lcm, "short")


_SHORT_DISK = ("DISK_ID", "DATASTORE", "DATASTORE_ID", "IMAGE", "IMAGE_ID",
               "SIZE", "TYPE", "CLONE", "CLONE_TARGET", "LN_TARGET",
               "DISK_SNAPSHOT_TOTAL_SIZE")
_SHORT_NIC = ("IP", "MAC", "NETWORK", "NETWORK_ID", "NIC_ID",
              "SECURITY_GROUPS")


def vm_short_xml(o, vm):
    """The VM of one.vmpool.info (VirtualMachine::to_xml_short)."""
    tpl = vm["template"]
    parts = ["<VM>%s<LAST_POLL>0</LAST_POLL>"
             "<STATE>%d</STATE><LCM_STATE>%d</LCM_STATE><RESCHED>0</RESCHED>"
             "<STIME>%d</STIME><ETIME>%d</ETIME><DEPLOY_ID>%s</DEPLOY_ID>"
             "<TEMPLATE><CPU>%s</CPU><MEMORY>%s</MEMORY><VCPU>%s</VCPU>" % (
                 o.owned_xml(vm), vm["state"], vm["lcm_state"],
                 vm["stime"], vm["etime"], _xml_text(vm["deploy_id"]),
                 _xml_text(tget(tpl, "CPU", "")),
                 _xml_text(tget(tpl, "MEMORY", "")),
                 _xml_text(tget(tpl, "VCPU", "")))]
    for key, fields in (("DISK", _SHORT_DISK), ("NIC", _SHORT_NIC)):
        for vec in tvectors(tpl, key):
            attrs = dict(vec)
            parts.append("<%s>%s</%s>" % (key, "".join(
                "<%s>%s</%s>" % (f, cdata(attrs.get(f, "")), f)
                for f in fields), key))
    parts.append("</TEMPLATE><MONITORING/><USER_TEMPLATE/>")
    if vm["history"]:
        h = vm["history"][-1]
        parts.append(
            "<HISTORY_RECORDS><HISTORY><OID>%d</OID><SEQ>%d</SEQ><HOSTNAME>"
            "%s</HOSTNAME><HID>%d</HID><CID>%d</CID><DS_ID>%d</DS_ID><VM_MAD>"
            "%s</VM_MAD><TM_MAD>%s</TM_MAD><ACTION>%s</ACTION></HISTORY>"
            "</HISTORY_RECORDS>" % (
                h["oid"], h["seq"], cdata(h["hostname"]), h["hid"], h["cid"],
                h["ds_id"], cdata(h["vm_mad"]), cdata(h["tm_mad"]),
                cdata(h["action"])))
    else:
        parts.append("<HISTORY_RECORDS/>")
    parts.append("</VM>")
    return "".join(parts)


def _set_state(vm, state, lcm=0):
    vm["state"], vm["lcm_state"] = state, lcm
    vm["prev_state"], vm["prev_lcm_state"] = state, lcm


def _open_record(o, vm, host, ds, t, prolog, snap):
    """Open a history record (deploy, or resume from poweroff/suspend)."""
    cluster = host["cluster_id"]
    rec = {"oid": vm["id"], "seq": len(vm["history"]),
           "hostname": host["name"], "hid": host["id"], "cid": cluster,
           "stime": t, "etime": 0, "vm_mad": host["vm_mad"],
           "tm_mad": ds["tm_mad"], "ds_id": ds["id"],
           "pstime": t if prolog else 0, "petime": t if prolog else 0,
           "rstime": t, "retime": 0, "estime": 0, "eetime": 0, "action": 0,
           "uid": -1, "gid": -1, "request_id": -1,
           "vm_xml": vm_snapshot_xml(o, vm, *snap)}
    vm["history"].append(rec)
    return rec


def _record_action(o, rec, action, actor):
    rec["action"] = action
    rec["uid"], rec["gid"] = actor["id"], actor["gid"]
    rec["request_id"] = o.rand.randint(1000, 9999)


@rpc("one.vm.allocate", "s,?b")
def vm_allocate(o, user, m, text, hold=False):
    return vm_create(o, user, parse_or_fail(text), hold)


# one.vm.info: the full VM, every history record (USE permission)
define_reads("vm", None, "one.vm.info", vm_xml, use="VM")


@rpc("one.vm.deploy", "i,i,?b,?i,?s")
def vm_deploy(o, user, m, oid, hid, enforce=False, ds_id=-1, extra=""):
    host = o.get("host", hid)
    vm = o.get("vm", oid)
    _authorize(user, vm, "ADMIN", "VM")
    if vm["state"] not in (VM_PENDING, VM_HOLD, VM_STOPPED, VM_UNDEPLOYED):
        raise OnedError(ACTION, "Deploy action is not available for state "
                                "%s" % _vm_state_name(vm))
    if ds_id == -1:
        systems = [d for d in o.store.all("datastore")
                   if d["type"] == 1 and host["cluster_id"] in d["clusters"]]
        if not systems:
            raise OnedError(ACTION, "No system datastore in cluster %d." %
                            host["cluster_id"])
        ds = systems[0]
    else:
        ds = o.get("datastore", ds_id)
        if ds["type"] != 1:
            raise OnedError(INTERNAL, "Datastore [%d] is not a system "
                                      "datastore." % ds_id)
    t = o.clock()
    tpl = vm["template"]
    tset(tpl, "TM_MAD_SYSTEM", ds["tm_mad"])
    for disk in tvectors(tpl, "DISK"):
        for key, value in (
                ("ALLOW_ORPHANS", tget(ds["template"], "ALLOW_ORPHANS", "NO")),
                ("CLUSTER_ID", ",".join(str(c) for c in ds["clusters"])),
                ("DATASTORE", ds["name"]), ("DATASTORE_ID", str(ds["id"])),
                ("DISK_TYPE", tget(ds["template"], "DISK_TYPE", "FILE")),
                ("DRIVER", dict(disk).get("FORMAT") or "raw"),
                ("PERSISTENT_SNAPSHOTS",
                 tget(ds["template"], "PERSISTENT_SNAPSHOTS", "YES")),
                ("TM_MAD", ds["tm_mad"])):
            _vector_set(disk, key, value)
    _open_record(o, vm, host, ds, t, True,
                 (VM_ACTIVE, LCM_PROLOG, VM_ACTIVE, 0))
    if not vm["deploy_id"]:
        vm["deploy_id"] = "%s:%s:dummy" % (host["name"], vm["name"]) \
            if host["vm_mad"] == "dummy" else "one-%d" % vm["id"]
    _set_state(vm, VM_ACTIVE, LCM_RUNNING)
    o.store.touch("vm", vm)
    return oid


@rpc("one.vm.action", "s,i")
def vm_action(o, user, m, action, oid):
    code = VM_ACTIONS.get(action)
    if code is None:
        raise OnedError(ACTION, 'Action "%s" is not supported' % action)
    vm = o.get("vm", oid)
    _authorize(user, vm, "MANAGE", "VM")
    state = vm["state"]
    running = state == VM_ACTIVE and vm["lcm_state"] == LCM_RUNNING
    rec = vm["history"][-1] if vm["history"] else None
    t = o.clock()

    def refuse():
        raise OnedError(ACTION, 'Error performing action "%s": This action '
                        'is not available for state %s' % (
                            action, _vm_state_name(vm)))

    owner = {"id": vm["uid"], "gid": vm["gid"]}
    if action in ("poweroff", "poweroff-hard", "suspend", "reboot",
                  "reboot-hard"):
        if not running:
            refuse()
        _record_action(o, rec, code, user)
        if action.startswith("poweroff") or action == "suspend":
            rec["retime"] = t
            _set_state(vm, VM_POWEROFF if action != "suspend"
                       else VM_SUSPENDED)
    elif action in ("stop", "undeploy", "undeploy-hard"):
        if not (running or (action != "stop" and state == VM_POWEROFF)):
            refuse()
        _record_action(o, rec, code, user)
        if not rec["retime"]:
            rec["retime"] = t
        rec["estime"] = rec["eetime"] = rec["etime"] = t
        _set_state(vm, VM_STOPPED if action == "stop" else VM_UNDEPLOYED)
    elif action == "resume":
        if state in (VM_POWEROFF, VM_SUSPENDED):
            rec["etime"] = t
            host = o.store.get("host", rec["hid"]) or {
                "id": rec["hid"], "name": rec["hostname"],
                "cluster_id": rec["cid"], "vm_mad": rec["vm_mad"]}
            ds = {"id": rec["ds_id"], "tm_mad": rec["tm_mad"]}
            boot = LCM_BOOT_POWEROFF if state == VM_POWEROFF \
                else LCM_BOOT_SUSPENDED
            _open_record(o, vm, host, ds, t, False,
                         (VM_ACTIVE, boot, state, 0))
            _set_state(vm, VM_ACTIVE, LCM_RUNNING)
        elif state in (VM_STOPPED, VM_UNDEPLOYED):
            _set_state(vm, VM_PENDING)
        else:
            refuse()
    elif action == "hold":
        if state != VM_PENDING:
            refuse()
        _set_state(vm, VM_HOLD)
    elif action == "release":
        if state != VM_HOLD:
            refuse()
        _set_state(vm, VM_PENDING)
    else:   # terminate, terminate-hard
        if state in (VM_DONE, 0) or (state == VM_ACTIVE and not running):
            refuse()
        if rec is not None and not rec["etime"]:
            # trigger_shutdown records the owner; from POWEROFF (and
            # SUSPENDED) a hard terminate is recorded as a plain one
            _record_action(o, rec, code if running else
                           VM_ACTIONS["terminate"], owner)
            if not rec["retime"]:
                rec["retime"] = t
            rec["estime"] = rec["eetime"] = rec["etime"] = t
        vm["etime"] = t
        _set_state(vm, VM_DONE)
        _release_leases(o, vm["id"])
    o.store.touch("vm", vm)
    return oid


def _vm_state_filter(state):
    if state < -2 or state > 11:
        raise OnedError(RPC_API, "Incorrect state filter %d" % state)
    return lambda vm: state == -2 or (state == -1 and vm["state"] != VM_DONE) \
        or vm["state"] == state


def _vm_pool(o, user, flt, start, end, state, render):
    keep = _vm_state_filter(state)
    objs = [vm for vm in filter_pool(user, o.store.all("vm"), flt, start,
                                     end, perms=True) if keep(vm)]
    return o.pool_xml("vm", lambda vm: render(o, vm), objs)


@rpc("one.vmpool.info", "i,i,i,i,?s")
def vmpool_info(o, user, m, flt, start, end, state, query=""):
    return _vm_pool(o, user, flt, start, end, state, vm_short_xml)


@rpc("one.vmpool.infoextended", "i,i,i,i,?s")
def vmpool_infoextended(o, user, m, flt, start, end, state, query=""):
    return _vm_pool(o, user, flt, start, end, state,
                    lambda o, vm: vm_xml(o, vm, last_only=True))


@rpc("one.vmpool.accounting", "i,i,i")
def vmpool_accounting(o, user, m, flt, start, end):
    out = []
    for vm in filter_pool(user, o.store.all("vm"), flt, perms=True):
        for rec in vm["history"]:
            if start != -1 and not (rec["etime"] > start or
                                    rec["etime"] == 0):
                continue
            if end != -1 and not rec["stime"] < end:
                continue
            out.append(history_xml(o, rec, True))
    return "<HISTORY_RECORDS>%s</HISTORY_RECORDS>" % "".join(out)


# ------------------------------------------------------- VM templates
def vmtemplate_xml(o, t):
    return "<VMTEMPLATE>%s%s<REGTIME>%d</REGTIME>%s</VMTEMPLATE>" % (
        o.owned_xml(t), perms_xml(t["perms"]), t["regtime"],
        template_xml(t["template"]))


@rpc("one.template.allocate", "s")
def template_allocate(o, user, m, text):
    tpl = parse_or_fail(text)
    if not _is_admin(user):
        bad = _restricted_attr(tpl)
        if bad:
            raise OnedError(AUTHORIZATION, "User [%d] : VM Template includes "
                            "a restricted attribute %s." % (user["id"], bad))
    name = tget(tpl, "NAME", "")
    if not name:
        raise OnedError(INTERNAL, "No NAME in template.")
    for other in o.store.all("vmtemplate"):
        if other["name"] == name and other["uid"] == user["id"]:
            raise OnedError(INTERNAL, "NAME is already taken by TEMPLATE "
                                      "%d." % other["id"])
    terase(tpl, "NAME")
    oid = o.store.new_id("vmtemplate")
    o.store.put("vmtemplate", {
        "id": oid, "uid": user["id"], "gid": user["gid"], "name": name,
        "perms": list(DEFAULT_PERMS), "regtime": o.clock(), "template": tpl})
    return oid


define_reads("vmtemplate", None, "one.template.info", vmtemplate_xml,
             info_signature="i,?b,?b", use="TEMPLATE")


@rpc("one.template.chmod", "i,i,i,i,i,i,i,i,i,i")
def template_chmod(o, user, m, oid, *bits):
    t = o.get("vmtemplate", oid)
    _authorize(user, t, "MANAGE", "TEMPLATE")
    t["perms"] = [old if new == -1 else int(bool(new))
                  for old, new in zip(t["perms"], bits)]
    o.store.touch("vmtemplate", t)
    return oid


@rpc("one.template.delete", "i,?b")
def template_delete(o, user, m, oid, recursive=False):
    t = o.get("vmtemplate", oid)
    _authorize(user, t, "MANAGE", "TEMPLATE")
    o.store.remove("vmtemplate", oid)
    return oid


@rpc("one.template.instantiate", "i,s,?b,?s,?b")
def template_instantiate(o, user, m, oid, name, hold=False, extra="",
                         persistent=False):
    t = o.get("vmtemplate", oid)
    _authorize(user, t, "USE", "TEMPLATE")
    tpl = [[k, v if isinstance(v, str) else [list(x) for x in v]]
           for k, v in t["template"]]
    if extra:
        more = parse_or_fail(extra)
        if not _is_admin(user):
            bad = _restricted_attr(more)
            if bad:
                raise OnedError(AUTHORIZATION, "User [%d] : VM Template "
                                "includes a restricted attribute %s." % (
                                    user["id"], bad))
        tmerge(tpl, more)
    tset(tpl, "TEMPLATE_ID", str(oid))
    # the restricted attributes of the template itself are allowed
    return vm_create(o, user, tpl, hold,
                     name or "%s-%d" % (t["name"],
                                        o.store.counters.get("vm", 0)),
                     restricted_ok=True)


# --------------------------------------------------------------------------
# ACL rules (one.acl.addrule/delrule/info): stored and listed as oned lists
# them; the test oned does not enforce them (docs/test-oned.md)
# --------------------------------------------------------------------------

ACL_INDIVIDUAL, ACL_GROUP, ACL_ALL, ACL_CLUSTER = \
    0x100000000, 0x200000000, 0x400000000, 0x800000000
ACL_OBJECTS = [  # PoolObjectSQL::ObjectType bits, in oned's string order
    (0x1000000000, "VM"), (0x2000000000, "HOST"), (0x4000000000, "NET"),
    (0x8000000000, "IMAGE"), (0x10000000000, "USER"),
    (0x20000000000, "TEMPLATE"), (0x40000000000, "GROUP"),
    (0x100000000000, "DATASTORE"), (0x200000000000, "CLUSTER"),
    (0x400000000000, "DOCUMENT"), (0x800000000000, "ZONE"),
    (0x1000000000000, "SECGROUP"), (0x2000000000000, "VDC"),
    (0x4000000000000, "VROUTER"), (0x8000000000000, "MARKETPLACE"),
    (0x10000000000000, "MARKETPLACEAPP"), (0x20000000000000, "VMGROUP"),
    (0x40000000000000, "VNTEMPLATE"), (0x80000000000000, "HOOK"),
    (0x100000000000000, "BACKUPJOB")]
ACL_RIGHTS = [(0x1, "USE"), (0x2, "MANAGE"), (0x4, "ADMIN"), (0x8, "CREATE")]
# oned's bootstrap rules, and the default-VDC rules each new group gets
ACL_BOOTSTRAP = [(0x200000001, 0x121429400000000, 0x8, 0x400000000),
                 (0x400000000, 0x800400000000, 0x1, 0x400000000),
                 (0x400000000, 0x18000400000000, 0x1, 0x400000000)]


def acl_group_rules(gid):
    user = ACL_GROUP | gid
    return [(user, 0x2400000000, 0x2, 0x100000000),      # HOST/* MANAGE #0
            (user, 0x4400000000, 0x1, 0x100000000),      # NET/* USE #0
            (user, 0x100400000000, 0x1, 0x100000000)]    # DATASTORE/* USE #0


def _acl_id_str(value):
    low = value & 0xFFFFFFFF
    if value & ACL_ALL:
        return "*"
    if value & ACL_GROUP:
        return "@%d" % low
    if value & ACL_CLUSTER:
        return "%%%d" % low
    return "#%d" % low


def acl_string(user, resource, rights, zone):
    objects = "+".join(n for bit, n in ACL_OBJECTS if resource & bit)
    return "%s %s/%s %s %s" % (
        _acl_id_str(user), objects, _acl_id_str(resource),
        "+".join(n for bit, n in ACL_RIGHTS if rights & bit),
        _acl_id_str(zone))


def acl_add(o, user, resource, rights, zone):
    for rule in o.store.all("acl"):
        if (rule["user"], rule["resource"], rule["rights"], rule["zone"]) \
                == (user, resource, rights, zone):
            raise OnedError(INTERNAL, "Error adding rule: Rule already "
                                      "exists")
    oid = o.store.new_id("acl")
    o.store.put("acl", {"id": oid, "user": user, "resource": resource,
                        "rights": rights, "zone": zone})
    return oid


def _hex_arg(text, what):
    try:
        return int(text, 16)
    except ValueError:
        raise OnedError(INTERNAL, "Error parsing %s [%s]" % (what, text)) \
            from None


@rpc("one.acl.addrule", "s,s,s,?s")
def acl_addrule(o, user, m, user_hex, resource_hex, rights_hex,
                zone_hex="100000000"):
    o.require_admin(user, "Not authorized to perform MANAGE ACL.")
    values = [_hex_arg(user_hex, "user"), _hex_arg(resource_hex, "resource"),
              _hex_arg(rights_hex, "rights"), _hex_arg(zone_hex, "zone")]
    return acl_add(o, *values)


@rpc("one.acl.delrule", "i")
def acl_delrule(o, user, m, oid):
    o.require_admin(user, "Not authorized to perform MANAGE ACL.")
    if o.store.get("acl", oid) is None:
        raise OnedError(INTERNAL, "Rule %d does not exist" % oid)
    o.store.remove("acl", oid)
    return oid


@rpc("one.acl.info")
def acl_info(o, user, m):
    # a multimap keyed by the USER value: by user, then insertion order
    rules = sorted(o.store.all("acl"), key=lambda r: (r["user"], r["id"]))
    return "<ACL_POOL>%s</ACL_POOL>" % "".join(
        "<ACL><ID>%d</ID><USER>%x</USER><RESOURCE>%x</RESOURCE><RIGHTS>%x"
        "</RIGHTS><ZONE>%x</ZONE><STRING>%s</STRING></ACL>" % (
            r["id"], r["user"], r["resource"], r["rights"], r["zone"],
            _xml_text(acl_string(r["user"], r["resource"], r["rights"],
                                 r["zone"])))
        for r in rules)


# --------------------------------------------------------------------------
# Showback (one.vmpool.calculateshowback, one.vmpool.showback)
# Months are UTC months of the test clock; costs per CPU-hour, per MB-hour
# of MEMORY and per MB-hour of disk, from each record's own VM copy (as
# oned's showback, SHOWBACK_ONLY_RUNNING="no", DEFAULT_COST 0).
# --------------------------------------------------------------------------

def _month_start(year, month):
    return int(datetime.datetime(year, month, 1,
                                 tzinfo=datetime.timezone.utc).timestamp())


def _next_month(year, month):
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _record_capacity(rec):
    snap = ET.fromstring(rec["vm_xml"])

    def num(path):
        try:
            return float(snap.findtext(path) or 0)
        except ValueError:
            return 0.0
    disk = sum(float(d.findtext("SIZE") or 0)
               for d in snap.findall("TEMPLATE/DISK"))
    return {"cpu": num("TEMPLATE/CPU"), "memory": num("TEMPLATE/MEMORY"),
            "disk": disk, "cpu_cost": num("TEMPLATE/CPU_COST"),
            "memory_cost": num("TEMPLATE/MEMORY_COST"),
            "disk_cost": num("TEMPLATE/DISK_COST")}


def _cost_text(value):
    text = "%.2f" % round(value, 2)
    return text.rstrip("0").rstrip(".") if "." in text else text


@rpc("one.vmpool.calculateshowback", "i,i,i,i")
def vmpool_calculateshowback(o, user, m, sm, sy, em, ey):
    o.require_admin(user)
    t = o.clock()
    records = [r for vm in o.store.all("vm") for r in vm["history"]]
    if not records:
        return " "
    if sm == -1 or sy == -1:
        first = datetime.datetime.fromtimestamp(
            min(r["stime"] for r in records), datetime.timezone.utc)
        sy, sm = first.year, first.month
    if em == -1 or ey == -1:
        last = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
        ey, em = last.year, last.month
    year, month = sy, sm
    while (year, month) <= (ey, em):
        a = _month_start(year, month)
        b = _month_start(*_next_month(year, month))
        key = "%04d-%02d" % (year, month)
        for vm in o.store.all("vm"):
            total = {"hours": 0.0, "rhours": 0.0, "cpu": 0.0, "memory": 0.0,
                     "disk": 0.0}
            seen = False
            for r in vm["history"]:
                end = r["etime"] or t
                if not (r["stime"] < b and end > a):
                    continue
                seen = True
                hours = (min(end, b) - max(r["stime"], a)) / 3600.0
                run_end = r["retime"] or (t if r["rstime"] else 0)
                rhours = max(0, min(run_end, b) - max(r["rstime"], a)) \
                    / 3600.0 if r["rstime"] else 0.0
                cap = _record_capacity(r)
                total["hours"] += hours
                total["rhours"] += rhours
                total["cpu"] += cap["cpu_cost"] * cap["cpu"] * hours
                total["memory"] += cap["memory_cost"] * cap["memory"] * hours
                total["disk"] += cap["disk_cost"] * cap["disk"] * hours
            showback = vm.setdefault("showback", {})
            if seen:
                showback[key] = total       # rounded when shown
            else:
                showback.pop(key, None)
            o.store.touch("vm", vm)
        year, month = _next_month(year, month)
    return " "


@rpc("one.vmpool.showback", "i,i,i,i,i")
def vmpool_showback(o, user, m, flt, sm, sy, em, ey):
    lo = (sy, sm) if sm != -1 and sy != -1 else None
    hi = (ey, em) if em != -1 and ey != -1 else None
    out = []
    for vm in sorted(filter_pool(user, o.store.all("vm"), flt, perms=True),
                     key=lambda v: v["id"]):
        for key in sorted(vm.get("showback", {})):
            year, month = (int(x) for x in key.split("-"))
            if (lo and (year, month) < lo) or (hi and (year, month) > hi):
                continue
            s = vm["showback"][key]
            total = s["cpu"] + s["memory"] + s["disk"]
            out.append(
                "<SHOWBACK><VMID>%d</VMID><VMNAME>%s</VMNAME><UID>%d</UID>"
                "<GID>%d</GID><UNAME>%s</UNAME><GNAME>%s</GNAME><YEAR>%d"
                "</YEAR><MONTH>%d</MONTH><CPU_COST>%s</CPU_COST><MEMORY_COST>"
                "%s</MEMORY_COST><DISK_COST>%s</DISK_COST><TOTAL_COST>%s"
                "</TOTAL_COST><HOURS>%s</HOURS><RHOURS>%s</RHOURS></SHOWBACK>"
                % (vm["id"], _xml_text(vm["name"]), vm["uid"], vm["gid"],
                   _xml_text(o.uname(vm["uid"])),
                   _xml_text(o.gname(vm["gid"])), year, month,
                   _cost_text(s["cpu"]), _cost_text(s["memory"]),
                   _cost_text(s["disk"]), _cost_text(total),
                   _cost_text(s["hours"]), _cost_text(s["rhours"])))
    return "<SHOWBACK_RECORDS>%s</SHOWBACK_RECORDS>" % "".join(out)


# --------------------------------------------------------------------------
# The test clock (NOT an oned method: testoned.clock.*)
#
# VM and accounting times (VM STIME/ETIME, history STIME..EETIME, template
# REGTIME) are read from this clock.  Unset, it is the real time.  Once set
# it stands still and moves only by testoned.clock.set/advance, so a test can
# script hours of VM time in seconds.  Kept in the state file.  oneadmin's
# group only.  testoned.clock.set(session, 0) goes back to the real time.
# --------------------------------------------------------------------------

@rpc("testoned.clock.set", "n")
def clock_set(o, user, m, epoch):
    o.require_admin(user)
    if epoch < 0:
        raise OnedError(RPC_API, "The clock can not be set before 1970")
    o.store.set_meta("clock", "" if epoch == 0 else str(epoch))
    return I8(o.clock()) if o.clock() > 2 ** 31 - 1 else o.clock()


@rpc("testoned.clock.advance", "n")
def clock_advance(o, user, m, seconds):
    o.require_admin(user)
    if seconds < 0:
        raise OnedError(RPC_API, "The clock only moves forward")
    o.store.set_meta("clock", str(o.clock() + seconds))
    return I8(o.clock()) if o.clock() > 2 ** 31 - 1 else o.clock()


# --------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------

def _redact(method, params):
    shown = []
    for i, p in enumerate(params):
        if i == 0:
            user = str(p.value).split(":", 1)[0] if p.type == "string" else "?"
            shown.append("%s:***" % user)
        elif method == "one.user.login" and i == 2 and p.value:
            shown.append("'***'")
        else:
            text = repr(p.value)
            shown.append(text if len(text) <= 60 else text[:57] + "...")
    return "(" + ", ".join(shown) + ")"


def dispatch(oned, method, params):
    """Return the response body (bytes) and a short log summary."""
    entry = RPC_METHODS.get(method)
    if entry is None:
        msg = "Method '%s' not defined" % method
        return encode_fault(FAULT_NO_SUCH_METHOD, msg), "fault -506"
    fn, spec = entry
    try:
        session = check_param(params, 0, "s")
        with oned.lock:
            try:
                oned.tick()
                user = oned.authenticate(session)
                if user is None:
                    raise OnedError(AUTHENTICATION, "User couldn't be "
                                    "authenticated, aborting call.")
                args = []
                for index, (letter, optional) in enumerate(spec, start=1):
                    if optional and index >= len(params):
                        break
                    args.append(check_param(params, index, letter))
                result = fn(oned, user, method, *args)
            finally:
                oned.store.flush()
    except RpcFault as fault:
        return encode_fault(fault.code, fault.message), "fault %d" % fault.code
    except OnedError as err:
        body = encode_response([False, "[%s] %s" % (method, err.message),
                                err.code, err.resp_id, I8(-1)])
        return body, "error %d" % err.code
    return encode_response([True, result, 0]), "ok"


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "test-oned/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):   # our own one-line log instead
        pass

    def _plain(self, code, text):
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if code == 405:
            self.send_header("Allow", "POST")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/RPC2":
            self._plain(405, "Method Not Allowed")
        else:
            self._plain(404, "Not Found")

    do_HEAD = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if self.path != "/RPC2":
            self._plain(404, "Not Found")
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype and ctype.lower() != "text/xml":
            self._plain(400, "Content-type header is not text/xml")
            return
        started = time.monotonic()
        method, params = "?", []
        try:
            method, params = parse_call(body)
        except (ET.ParseError, ValueError) as exc:
            out = encode_fault(FAULT_PARSE, "Call XML not a proper XML-RPC "
                               "call.  %s" % exc)
            summary = "fault -503"
        else:
            out, summary = dispatch(self.server.oned, method, params)
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
        LOG.emit("%s test-oned %s %s%s -> %s (%.1f ms)" % (
            datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            self.client_address[0], method, _redact(method, params), summary,
            (time.monotonic() - started) * 1000))


class CallLog:
    """One line per call on stderr, written by a background thread so that a
    slow or never-read stderr pipe can not stall the XML-RPC answers (lines
    are dropped, and counted, when the queue is full)."""

    def __init__(self, stream=None, size=10000):
        self.stream = stream or sys.stderr
        self.queue = queue.Queue(size)
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def emit(self, line):
        try:
            self.queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def _run(self):
        while True:
            line = self.queue.get()
            if line is None:
                return
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def close(self, timeout=2.0):
        if self.dropped:
            self.emit("test-oned: %d log lines dropped" % self.dropped)
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self.thread.join(timeout)


LOG = None


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
