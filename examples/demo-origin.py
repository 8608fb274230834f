#!/usr/bin/env python3
"""demo-origin.py: the origin server of the quick start (examples/quickstart.sh).

A small HTTP server on loopback only, standard library only:

    python3 examples/demo-origin.py [--port 8000]

GET /        a page saying which client reached it (through ferry: ferry's address), with
             the query and the header fields it received, so the ones ferry added show
             (Authorization's secret masked); plain text, or HTML for a browser
GET /healthz "ok"
Anything else gets 404. Listens on 127.0.0.1, never on another interface.
"""
import argparse
import base64
import html
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

INTRO = (
    "Through ferry's listeners the client above is ferry itself. What ferry added is\n"
    "below: the destination demo-http (conf/destinations/demo-http.yaml) makes it send\n"
    "Authorization (BasicAuthentication), X-Demo (URL.headers.X-Demo) and sap-client=100\n"
    "(URL.queries.sap-client); the app sent none of them.\n"
)

# Headers ferry adds for the demo destinations, marked on the page.
FROM_FERRY = {"authorization", "x-demo", "x-forwarded-for", "x-forwarded-proto",
              "x-forwarded-host"}


def shown_value(name, value):
    """The header's value as the page shows it: an Authorization's secret masked."""
    if name.lower() != "authorization":
        return value
    scheme, _, cred = value.partition(" ")
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(cred, validate=True).decode("utf-8").split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            user = "?"
        return "Basic (user %s, password ***)" % user
    return "%s ***" % scheme


def received(handler):
    """[(name, shown value, added by ferry?)] of the request's header fields."""
    return [(k, shown_value(k, v), k.lower() in FROM_FERRY) for k, v in handler.headers.items()]


def text_page(port, client, method, target, query, headers):
    lines = ["ferry demo origin: you reached 127.0.0.1:%d from %s" % (port, client),
             "", "request:  %s %s" % (method, target), "", INTRO, "query:"]
    lines += ["  %s = %s" % kv for kv in query] or ["  (none)"]
    lines += ["", "headers:"]
    lines += ["  %s: %s%s" % (k, v, "   <- added by ferry" if mark else "")
              for k, v, mark in headers]
    return "\n".join(lines) + "\n"


def html_page(port, client, method, target, query, headers):
    e = html.escape
    rows = "".join("<tr><td>%s</td><td>%s</td><td>%s</td></tr>" %
                   (e(k), e(v), "added by ferry" if mark else "") for k, v, mark in headers)
    qrows = "".join("<tr><td>%s</td><td>%s</td></tr>" % (e(k), e(v)) for k, v in query)
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            "<title>ferry demo origin</title></head>\n<body>\n"
            "<h1>Hello from the ferry demo origin</h1>\n"
            "<p>You reached 127.0.0.1:%d from %s with <code>%s %s</code>.</p>\n"
            "<p>%s</p>\n<h2>Query</h2>\n<table>%s</table>\n"
            "<h2>Headers</h2>\n<table>%s</table>\n</body></html>\n" %
            (port, e(client), e(method), e(target), e(INTRO), qrows or "<tr><td>(none)</td></tr>",
             rows))


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
        path, _, qs = self.path.partition("?")
        if path == "/":
            args = (self.server.server_address[1], "%s:%d" % self.client_address[:2],
                    self.command, self.path, parse_qsl(qs, keep_blank_values=True),
                    received(self))
            # Browsers get HTML; curl and scripts (Accept: */*) get plain text.
            if "text/html" in self.headers.get("Accept", ""):
                self._send(200, "text/html; charset=utf-8", html_page(*args))
            else:
                self._send(200, "text/plain; charset=utf-8", text_page(*args))
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
