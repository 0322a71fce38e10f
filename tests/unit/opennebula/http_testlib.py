"""A local HTTP server for the tests: the lossy proxy in front of oned
(fault_testlib.py) and the appliance tests' repository and WebDAV servers
(tests/unit/appliance, which take their helpers from this folder)."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


class LocalHTTPServer:
    """``handler`` served on 127.0.0.1 at a free port (``port``) from a daemon
    thread, from start() (or the start of a with block) to close()."""

    def __init__(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
