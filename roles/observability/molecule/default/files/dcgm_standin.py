"""Stand-in for the DCGM exporter: serves a recorded /metrics output (no GPU in tests)."""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST, PORT, PATH = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        with open(PATH, "rb") as fh:
            body = fh.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
