"""A small HTTPS client for the API tests (http.client, CA-checked)."""

import base64
import http.client
import json
import ssl
import threading

from stratuslab_accounting.api import Server, tls_context


class Running:
    """The API server on 127.0.0.1:<free port> in a thread."""

    def __init__(self, store, authenticator, tls, clock=None):
        kw = {"clock": clock} if clock else {}
        self.server = Server(("127.0.0.1", 0), store, authenticator, tls_context(tls["cert"], tls["key"]), **kw)
        self.port = self.server.server_address[1]
        self.ca = tls["ca"]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def request(self, path, user=None, password=None, method="GET", headers=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        hdrs = dict(headers or {})
        if user is not None:
            hdrs["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % (user, password)).encode()).decode()
        try:
            conn.request(method, path, headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
            ctype = resp.getheader("Content-Type", "")
            data = json.loads(body) if ctype.startswith("application/json") and body else body.decode()
            return resp.status, dict(resp.getheaders()), data
        finally:
            conn.close()
