#!/usr/bin/env python3
"""demo-origin.py: the origin server of the quick start (examples/quickstart.sh).

A small HTTP server on loopback only, standard library only:

    python3 examples/demo-origin.py [--port 8000]

GET /        a short page saying which client reached it (through ferry: ferry's address)
GET /healthz "ok"
Anything else gets 404. Listens on 127.0.0.1, never on another interface.
"""
import argparse
import html
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>ferry demo origin</title></head>
<body>
<h1>Hello from the ferry demo origin</h1>
<p>You reached 127.0.0.1:{port} from {client} with {method} {path}.</p>
<p>Through ferry's <code>demo</code> listener (127.0.0.1:3300) the client above is ferry
itself: the tcp plugin relays the bytes to the destination <code>demo-origin</code>.</p>
</body></html>
"""


class Handler(BaseHTTPRequestHandler):
    server_version = "ferry-demo-origin/0.1"

    def _send(self, status, ctype, body):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/":
            client = "%s:%d" % self.client_address[:2]
            body = PAGE.format(port=self.server.server_address[1], client=html.escape(client),
                               method=html.escape(self.command), path=html.escape(self.path))
            self._send(200, "text/html; charset=utf-8", body)
        elif path == "/healthz":
            self._send(200, "text/plain; charset=utf-8", "ok\n")
        else:
            self._send(404, "text/plain; charset=utf-8", "not found\n")

    do_HEAD = do_GET

    def log_message(self, fmt, *args):
        sys.stderr.write("demo-origin: %s %s\n" % (self.address_string(), fmt % args))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8000, help="TCP port on 127.0.0.1 (8000)")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # quickstart.sh stops us by PID
    sys.stderr.write("demo-origin: serving http://127.0.0.1:%d/\n" % args.port)
    sys.stderr.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
