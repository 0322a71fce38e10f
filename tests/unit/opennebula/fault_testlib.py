"""Helpers of the fault tests against the real oned (test_one_fault_*.py):
a seeded random source whose seed FAULT_SEED replays, a lossy proxy in front
of oned. Tasks and a run stopped by a signal are one_playbook's (task,
stop_half_way), which the other OpenNebula tests share."""

from __future__ import annotations

import http.client
import os
import random
import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from http_testlib import LocalHTTPServer


def seeded(name):
    """A random.Random whose seed is printed (pytest shows it on failure, -s
    always); FAULT_SEED=<n> replays a run."""
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1, 10 ** 9))
    print("%s: seed %d (FAULT_SEED=%d replays it)" % (name, seed, seed))
    return random.Random(seed), seed


class LossyProxy(LocalHTTPServer):
    """An HTTP proxy in front of oned that forwards every XML-RPC call and,
    for the first call of ``method``, drops oned's answer and closes the
    connection: oned has carried the call out, the client never hears it (a
    crash of oned, or of the network, between the two)."""

    def __init__(self, upstream, method):
        self.upstream = urlsplit(upstream)
        self.method = method
        self.dropped = 0
        self.calls = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                found = re.search(rb"<methodName>([^<]+)</methodName>", body)
                name = found.group(1).decode() if found else "?"
                proxy.calls.append(name)
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                conn.request("POST", proxy.upstream.path, body, {"Content-Type": "text/xml"})
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                if name == proxy.method and not proxy.dropped:
                    proxy.dropped += 1
                    self.close_connection = True
                    return      # no answer: the client sees the connection closed
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.getheader("Content-Type", "text/xml"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)
        self.url = "http://127.0.0.1:%d/RPC2" % self.port


class Via:
    """The real oned's credentials with another endpoint (the proxy's), for one_playbook."""

    def __init__(self, oned, url):
        self.url, self.username, self.password = url, oned.username, oned.password
