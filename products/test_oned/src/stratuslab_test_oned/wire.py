"""The XML-RPC wire format (request parsing and xmlrpc-c style
serialisation), the HTTP handler and server, and the per-call log."""

import datetime
import http.server
import queue
import socketserver
import sys
import threading
import time
import xml.etree.ElementTree as ET

from .errors import FAULT_PARSE


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
            out, summary = self.server.dispatch(self.server.oned, method, params)
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


# The per-call log (a CallLog), set by cli.main.
LOG = None


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """The HTTP server; cli.main sets its ``oned`` (the Oned) and
    ``dispatch`` (rpc.dispatch), which Handler calls."""

    daemon_threads = True
    allow_reuse_address = True
