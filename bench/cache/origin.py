#!/usr/bin/env python3
"""Origin web server of the cache benchmark: serves files, counts the bytes it sends.

Runs inside the benchmark's origin container (stdlib only). Every GET is
logged, once answered, as one tab-separated line in the log file:

    <path>\t<status>\t<body bytes actually sent>

so the benchmark can add up what the origin served, including downloads
cut short. Answers GET and HEAD with Content-Length and Last-Modified; it
ignores Range (like many plain origins) and always sends the whole file.
"""

import argparse
import email.utils
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."
    log_path = "origin.log"
    lock = threading.Lock()

    def _record(self, status, sent):
        with self.lock, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"{self.path}\t{status}\t{sent}\n")

    def _serve(self, body):
        path = os.path.join(self.root, os.path.normpath(self.path.split("?", 1)[0]).lstrip("/"))
        if not os.path.isfile(path):
            self.send_error(404)
            self._record(404, 0)
            return
        stat = os.stat(path)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(stat.st_size))
        self.send_header("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))
        self.end_headers()
        sent = 0
        if body:
            try:
                with open(path, "rb") as stream:
                    while chunk := stream.read(CHUNK):
                        self.wfile.write(chunk)
                        sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
        self._record(200, sent)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._serve(body=True)

    def do_HEAD(self):  # noqa: N802
        self._serve(body=False)

    def log_message(self, format, *args):  # noqa: A002 - our own log replaces stderr's
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    Handler.root, Handler.log_path = args.root, args.log
    ThreadingHTTPServer(("0.0.0.0", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
