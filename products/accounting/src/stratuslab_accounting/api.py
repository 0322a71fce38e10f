"""The HTTPS API (standard library http.server + ssl).

Endpoints (the OpenAPI 3 document is served at /v1/openapi.json):

* ``GET /healthz``: unauthenticated; 200 when the store answers, else 503;
* ``GET /metrics``: unauthenticated; Prometheus's text format: whether the
  store answers and when the collector last succeeded (what the site's
  monitoring alerts on when the collector falls behind);
* ``GET /v1/openapi.json``: unauthenticated;
* ``GET /v1/usage?user=&group=&from=&to=&format=json|csv``: HTTP Basic.

Decisions: no or unusable credentials 401 (with WWW-Authenticate); a
non-admin asking for another user 403; malformed or unknown parameters,
from >= to, an unknown user or group (asked by an admin) 400; LDAP or
database unreachable 503.  Every error body is JSON ``{"error": "..."}``.
"""

import base64
import binascii
import csv
import io
import json
import logging
import socket
import ssl
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import __version__
from .auth import NAME_RE, AuthFailed, AuthUnavailable
from .collector import STATE_LAST_SUCCESS
from .records import figures
from .store import StoreError
from .timeutil import ISO_PATTERN, BadTime, iso, month_start, parse_iso

LOG = logging.getLogger("stratuslab_accounting.api")

PARAMS = ("user", "group", "from", "to", "format")
FIGURES = list(figures(0, 0, 0, 0, 0, 0))
CSV_COLUMNS = ["user", "group"] + FIGURES
NAME_PATTERN = NAME_RE.pattern
REALM = "StratusLab accounting"


class BadRequest(Exception):
    pass


def openapi_document():
    fig_props = {k: {"type": "integer" if k == "vms" else "number", "minimum": 0} for k in FIGURES}
    figures_schema = {"type": "object", "required": FIGURES, "properties": fig_props,
                      "additionalProperties": False}
    row = {"type": "object", "required": ["user", "group"] + FIGURES,
           "properties": dict({"user": {"type": "string"}, "group": {"type": "string"}}, **fig_props),
           "additionalProperties": False}
    error = {"description": "error", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "StratusLab accounting", "version": __version__,
                 "description": "Per-user usage of the cloud from OpenNebula's history records. "
                                "Allocated time (STIME..ETIME, poweroff included) is charged; "
                                "running_hours is RSTIME..RETIME. Records are clipped to [from, to)."},
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic",
                                          "description": "site LDAP user name and password"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"],
                          "properties": {"error": {"type": "string"}}},
                "Figures": figures_schema,
                "Row": row,
                "Usage": {"type": "object",
                          "required": ["from", "to", "as_of", "user", "group", "rows", "totals"],
                          "properties": {
                              "from": {"type": "string"}, "to": {"type": "string"},
                              "as_of": {"type": "string", "nullable": True},
                              "user": {"type": "string", "nullable": True},
                              "group": {"type": "string", "nullable": True},
                              "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}},
                              "totals": {"$ref": "#/components/schemas/Figures"}},
                          "additionalProperties": False},
                "Health": {"type": "object", "required": ["status"],
                           "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                                          "schema_version": {"type": "integer"},
                                          "last_collection": {"type": "string", "nullable": True}}},
            },
        },
        "paths": {
            "/healthz": {"get": {
                "operationId": "health", "security": [],
                "responses": {
                    "200": {"description": "the store answers", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Health"}}}},
                    "503": {"description": "the store does not answer", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Health"}}}}}}},
            "/metrics": {"get": {
                "operationId": "metrics", "security": [],
                "responses": {
                    "200": {"description": "Prometheus's text format: stratuslab_accounting_store_up"
                                           " and stratuslab_accounting_last_collection_timestamp_seconds",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/v1/usage": {"get": {
                "operationId": "usage", "security": [{"basic": []}],
                "summary": "usage per user and group in a time window",
                "parameters": [
                    {"name": "user", "in": "query", "required": False,
                     "description": "user name (default: yourself; others: admins only)",
                     "schema": {"type": "string", "pattern": NAME_PATTERN}},
                    {"name": "group", "in": "query", "required": False,
                     "description": "group name", "schema": {"type": "string", "pattern": NAME_PATTERN}},
                    {"name": "from", "in": "query", "required": False,
                     "description": "start (ISO 8601, UTC if no zone; default: first day of this month)",
                     "schema": {"type": "string", "pattern": ISO_PATTERN}},
                    {"name": "to", "in": "query", "required": False,
                     "description": "end, exclusive (ISO 8601; default: now); must be after from",
                     "schema": {"type": "string", "pattern": ISO_PATTERN}},
                    {"name": "format", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"}},
                ],
                "responses": {
                    "200": {"description": "usage", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Usage"}},
                        "text/csv": {"schema": {"type": "string"}}}},
                    "400": error, "401": error, "403": error, "503": error}}},
            "/v1/openapi.json": {"get": {
                "operationId": "openapi", "security": [],
                "responses": {"200": {"description": "this document", "content": {
                    "application/json": {"schema": {"type": "object"}}}}}}},
        },
    }


class Handler(BaseHTTPRequestHandler):
    server_version = "stratuslab-accounting/" + __version__
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30

    # ------------------------------------------------------------- plumbing
    def log_message(self, fmt, *args):  # the request line only; never headers
        LOG.info("%s %s", self.address_string(), fmt % args)

    def _send(self, code, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, code, obj, headers=()):
        self._send(code, json.dumps(obj, sort_keys=True), headers=headers)

    def _error(self, code, message, headers=()):
        self._json(code, {"error": message}, headers)

    def send_error(self, code, message=None, explain=None):
        # malformed requests caught by http.server: JSON, and an unknown
        # method is 405 rather than 501
        if code == 501:
            code, message = 405, "method not allowed"
        self.close_connection = True
        try:
            self._error(code, message or "bad request", headers=(("Connection", "close"),))
        except OSError:
            pass

    # ------------------------------------------------------------- routing
    def do_GET(self):
        try:
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/healthz":
                return self.health()
            if url.path == "/metrics":
                return self.metrics()
            if url.path == "/v1/openapi.json":
                return self._json(200, openapi_document())
            if url.path == "/v1/usage":
                return self.usage(url.query)
            return self._error(404, "no such resource: %s" % url.path)
        except StoreError as exc:
            LOG.error("store: %s", exc)
            return self._error(503, "accounting store unavailable")
        except Exception:  # a bug: log it, but do not leak the trace
            LOG.exception("internal error on %s", self.path)
            return self._error(500, "internal error")

    def do_HEAD(self):
        self._error(405, "method not allowed", headers=(("Allow", "GET"),))

    def _not_allowed(self):
        self._error(405, "method not allowed", headers=(("Allow", "GET"),))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = _not_allowed

    # ------------------------------------------------------------- handlers
    def health(self):
        store = self.server.store
        try:
            version = store.schema_version()
            last = store.get_state(STATE_LAST_SUCCESS)
        except StoreError as exc:
            LOG.error("health: %s", exc)
            return self._json(503, {"status": "unavailable"})
        return self._json(200, {"status": "ok", "schema_version": version,
                                "last_collection": iso(last) if last else None})

    def metrics(self):
        """The store's state and the collector's last success, for Prometheus.

        Always 200 (a scrape that fails would hide the reason): the store
        down is ``stratuslab_accounting_store_up 0``; before any collection
        the timestamp is left out."""
        store = self.server.store
        try:
            last = store.get_state(STATE_LAST_SUCCESS)
            up = 1
        except StoreError as exc:
            LOG.error("metrics: %s", exc)
            last, up = None, 0
        lines = ["# HELP stratuslab_accounting_store_up Whether the accounting store answers.",
                 "# TYPE stratuslab_accounting_store_up gauge",
                 "stratuslab_accounting_store_up %d" % up]
        if last:
            lines += ["# HELP stratuslab_accounting_last_collection_timestamp_seconds"
                      " When the collector last pulled every VM's usage from oned.",
                      "# TYPE stratuslab_accounting_last_collection_timestamp_seconds gauge",
                      "stratuslab_accounting_last_collection_timestamp_seconds %d" % int(last)]
        return self._send(200, "\n".join(lines) + "\n", ctype="text/plain; version=0.0.4; charset=utf-8")

    def authenticate(self):
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value.strip():
            raise AuthFailed("credentials required")
        try:
            raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthFailed("malformed Basic credentials") from None
        user, sep, password = raw.partition(":")
        if not sep:
            raise AuthFailed("malformed Basic credentials")
        return self.server.authenticator.authenticate(user, password)

    def parse_query(self, query):
        if len(query) > 4096:
            raise BadRequest("query string too long")
        try:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False,
                                           errors="strict", max_num_fields=16)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("malformed query string: %s" % exc) from None
        params = {}
        for key, value in pairs:
            if key not in PARAMS:
                raise BadRequest("unknown parameter %r (known: %s)" % (key, ", ".join(PARAMS)))
            if key in params:
                raise BadRequest("parameter %r given twice" % key)
            params[key] = value
        fmt = params.get("format", "json")
        if fmt not in ("json", "csv"):
            raise BadRequest("format: %r is not json or csv" % fmt)
        for key in ("user", "group"):
            if key in params and not NAME_RE.match(params[key]):
                raise BadRequest("%s: %r is not a valid name" % (key, params[key]))
        now = int(self.server.clock())
        try:
            end = parse_iso(params["to"], "to") if "to" in params else now
            start = parse_iso(params["from"], "from") if "from" in params else month_start(min(now, end - 1))
        except BadTime as exc:
            raise BadRequest(str(exc)) from None
        if start >= end:
            raise BadRequest("from (%s) must be before to (%s)" % (iso(start), iso(end)))
        return params.get("user"), params.get("group"), start, end, fmt

    def usage(self, query):
        try:
            ident = self.authenticate()
        except AuthFailed as exc:
            return self._error(401, str(exc), headers=(
                ("WWW-Authenticate", 'Basic realm="%s", charset="UTF-8"' % REALM),))
        except AuthUnavailable as exc:
            return self._error(503, str(exc))
        try:
            user, group, start, end, fmt = self.parse_query(query)
        except BadRequest as exc:
            return self._error(400, str(exc))
        store = self.server.store
        if not ident.is_admin:
            if user is None:
                user = ident.user
            elif user != ident.user:
                return self._error(403, "%s may only see their own usage" % ident.user)
        else:
            if user is not None and not store.known("user", user):
                return self._error(400, "unknown user %r" % user)
            if group is not None and not store.known("group", group):
                return self._error(400, "unknown group %r" % group)
        last = store.get_state(STATE_LAST_SUCCESS)
        open_end = min(end, int(last)) if last is not None else end
        rows, totals = store.usage(start, end, open_end, user=user, group=group)
        LOG.info("usage by %s%s: user=%s group=%s %s..%s", ident.user,
                 " (admin)" if ident.is_admin else "", user, group, iso(start), iso(end))
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(CSV_COLUMNS)
            for row in rows:
                writer.writerow([row[c] for c in CSV_COLUMNS])
            return self._send(200, out.getvalue(), ctype="text/csv; charset=utf-8")
        return self._json(200, {"from": iso(start), "to": iso(end), "as_of": iso(last) if last else None,
                                "user": user, "group": group, "rows": rows, "totals": totals})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, store, authenticator, ssl_context=None, clock=time.time):
        self.store = store
        self.authenticator = authenticator
        self.clock = clock
        self.ssl_context = ssl_context
        super().__init__(address, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            # the handshake happens in the handler's thread, on first read
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        # TLS handshake failures, clients that hang up: not worth a traceback
        LOG.info("connection from %s ended with an error", client_address[0])


def tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


class Server6(Server):
    address_family = socket.AF_INET6


def make_server(config, store, authenticator):
    ctx = tls_context(config.require("api", "tls_cert"), config.require("api", "tls_key"))
    host = config.get("api", "listen")
    cls = Server6 if ":" in host else Server
    return cls((host, config.getint("api", "port")), store, authenticator, ctx)

