#!/usr/bin/env python3
"""http_origin.py: an HTTP/1.1 origin for the http plugin's integration tests (stdlib only).

    http_origin.py --port-file FILE [--name NAME] [--strip-prefix /api] [--echo-all]
                   [--cert C --key K [--client-ca CA]] [--idle-timeout S]
    http_origin.py --sha256-of-bytes N      print the sha256 of what /bytes/N sends, exit

Binds 127.0.0.1:0 (or --port), then writes the port to --port-file atomically (the file
appears only once the server accepts). One thread per connection, keep-alive (HTTP/1.1),
optional TLS (--cert/--key; --client-ca makes a client certificate from that CA
mandatory). Each request is logged to stdout as one JSON line
{"origin","conn","method","target","headers"} (for "the origin never saw X" checks).

Every request body is read (Content-Length or chunked) before the answer, so a
connection stays usable whatever the endpoint. Routing uses the path with the first
matching --strip-prefix removed (so a destination URL http://o/api reaches /api/bytes/N
as /bytes/N); the echo reports the path as received.

Endpoints (any method):
  /echo...      200 JSON {origin, conn, request_no, method, target, path, query, version,
                headers: [[name, value], ...] as received, body_len, body_sha256,
                client_cert: "CN=..." or null, sni: name or null}.
                With --echo-all every path not listed below is an echo.
  /bytes/N      N deterministic bytes (blocks of random.Random(i).randbytes(1 MiB));
                ?chunked=1 sends them chunked. Header X-Bytes-Sha256 carries the digest.
  /upload       text "<body_len> <body_sha256>\\n" of the body it read.
  /slow?ms=N    sleeps N ms, then answers "slow N\\n".
  /count        text "<N>\\n": TCP connections accepted so far (pooling checks).
  /status/N     status N with a short body (none for 1xx/204/304).
  /broken       a response head with two Content-Length fields, then the close.
  /ws           with "Upgrade: websocket": 101 (Sec-WebSocket-Accept computed), then
                echoes raw bytes until EOF; without: 426.
  ?close=1      (any endpoint) answer with "Connection: close" and close.
"""
import argparse
import base64
import hashlib
import http.client
import http.server
import json
import os
import random
import socket
import ssl
import sys
import threading
import time
import urllib.parse

BLOCK = 1 << 20
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Let a request with the listener's full header allowance (plus the X-Forwarded-* the
# gateway adds) through: http.client refuses more than 100 fields by default.
http.client._MAXHEADERS = 10000
LOG_LOCK = threading.Lock()


def byte_stream(n):
    """Yield the n deterministic bytes of /bytes/n, in blocks of at most 1 MiB."""
    i = 0
    while n > 0:
        b = random.Random(i).randbytes(BLOCK)
        if n < BLOCK:
            b = b[:n]
        yield b
        n -= len(b)
        i += 1


def sha256_of_bytes(n):
    h = hashlib.sha256()
    for b in byte_stream(n):
        h.update(b)
    return h.hexdigest()


def log(rec):
    with LOG_LOCK:
        sys.stdout.write(json.dumps(rec) + "\n")
        sys.stdout.flush()


def subject_text(cert):
    if not cert:
        return None
    parts = []
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            short = {"commonName": "CN", "organizationName": "O", "countryName": "C",
                     "organizationalUnitName": "OU"}.get(k, k)
            parts.append(f"{short}={v}")
    return ",".join(parts)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ferry-test-origin"

    def setup(self):
        srv = self.server
        with srv.lock:
            srv.conns += 1
            self.conn_no = srv.conns
        self.request_no = 0
        self.sni = None
        self.timeout = srv.args.idle_timeout
        # A head and a body go out as two writes: without this, Nagle holds the second
        # until the peer's delayed ACK (40 ms a request on keep-alive).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if srv.ctx is not None:
            self.request.settimeout(10)
            self.request = srv.ctx.wrap_socket(self.request, server_side=True)
            self.sni = getattr(self.request, "sni_seen", None)
        super().setup()

    def log_message(self, fmt, *args):   # the JSON line per request replaces it
        pass

    # --- helpers ---------------------------------------------------------------------
    def read_body(self):
        """Read the request body; return (length, sha256 hex)."""
        h = hashlib.sha256()
        n = 0
        te = ",".join(self.headers.get_all("Transfer-Encoding") or []).lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(70000)
                if not line.endswith(b"\n"):
                    raise ConnectionError("chunk size line cut")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:               # trailers, up to the empty line
                        t = self.rfile.readline(70000)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                left = size
                while left > 0:
                    b = self.rfile.read(min(left, BLOCK))
                    if not b:
                        raise ConnectionError("chunk cut")
                    h.update(b)
                    n += len(b)
                    left -= len(b)
                if self.rfile.readline(10) not in (b"\r\n", b"\n"):
                    raise ConnectionError("no CRLF after a chunk")
        else:
            left = int(self.headers.get("Content-Length", "0") or "0")
            while left > 0:
                b = self.rfile.read(min(left, BLOCK))
                if not b:
                    raise ConnectionError("body cut")
                h.update(b)
                n += len(b)
                left -= len(b)
        return n, h.hexdigest()

    def answer(self, status, body, ctype="text/plain", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("X-Origin", self.server.args.name)
        for k, v in headers:
            self.send_header(k, v)
        if self.want_close:
            self.send_header("Connection", "close")
            self.close_connection = True
        if status >= 200 and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status >= 200 and status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(body)

    # --- dispatch --------------------------------------------------------------------
    def handle_any(self):
        srv = self.server
        self.request_no += 1
        target = self.path
        if target.startswith(("http://", "https://")):   # absolute-form: route on its path
            u = urllib.parse.urlsplit(target)
            rel = u.path or "/"
            query = u.query
        else:
            rel, _, query = target.partition("?")
        path = rel
        route = rel
        for p in srv.args.strip_prefix:
            if route == p or route.startswith(p.rstrip("/") + "/"):
                route = route[len(p.rstrip("/")):] or "/"
                break
        params = urllib.parse.parse_qs(query)
        self.want_close = params.get("close", ["0"])[0] == "1"
        hdrs = [[k, v] for k, v in self.headers.items()]
        log({"origin": srv.args.name, "conn": self.conn_no, "method": self.command,
             "target": target, "headers": hdrs})

        if route == "/ws" or route.startswith("/ws/"):
            return self.do_ws()
        body_len, body_sha = self.read_body()

        if route.startswith("/bytes/"):
            return self.do_bytes(route, params)
        if route == "/upload":
            return self.answer(200, f"{body_len} {body_sha}\n")
        if route == "/slow":
            ms = int(params.get("ms", ["1000"])[0])
            time.sleep(ms / 1000)
            return self.answer(200, f"slow {ms}\n")
        if route == "/count":
            with srv.lock:
                n = srv.conns
            return self.answer(200, f"{n}\n")
        if route.startswith("/status/"):
            code = int(route.split("/")[2])
            return self.answer(code, f"status {code}\n")
        if route == "/broken":
            self.close_connection = True
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")
            return None
        if route.startswith("/echo") or srv.args.echo_all:
            cert = None
            if isinstance(self.connection, ssl.SSLSocket):
                cert = subject_text(self.connection.getpeercert())
            doc = {"origin": srv.args.name, "conn": self.conn_no, "request_no": self.request_no,
                   "method": self.command, "target": target, "path": path, "query": query,
                   "version": self.request_version, "headers": hdrs, "body_len": body_len,
                   "body_sha256": body_sha, "client_cert": cert, "sni": self.sni}
            return self.answer(200, json.dumps(doc) + "\n", "application/json")
        return self.answer(404, f"no such path {route}\n")

    def do_bytes(self, route, params):
        n = int(route.split("/")[2])
        chunked = params.get("chunked", ["0"])[0] == "1"
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("X-Origin", self.server.args.name)
        self.send_header("X-Bytes-Sha256", sha256_of_bytes(n))
        if self.want_close:
            self.send_header("Connection", "close")
            self.close_connection = True
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        for b in byte_stream(n):
            if not chunked:
                self.wfile.write(b)
                continue
            # Uneven chunk sizes, so chunk and buffer boundaries do not line up.
            off, step = 0, 65521
            while off < len(b):
                part = b[off:off + step]
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                off += len(part)
                step = 65521 if step != 65521 else 4093
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def do_ws(self):
        up = (self.headers.get("Upgrade") or "").lower()
        if up != "websocket":
            self.read_body()
            return self.answer(426, "upgrade to websocket expected\n")
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            try:
                b = self.rfile.read1(65536)
            except OSError:
                break
            if not b:
                break
            self.wfile.write(b)

    def handle_one_request(self):
        # http.server calls do_<METHOD>; route every method to handle_any.
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, ValueError, socket.timeout) as e:
            log({"origin": self.server.args.name, "conn": self.conn_no, "error": str(e)})
            self.close_connection = True

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 128

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        log({"origin": self.args.name, "error": f"{type(e).__name__}: {e}"})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port-file")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--name", default="origin")
    p.add_argument("--strip-prefix", action="append", default=[])
    p.add_argument("--echo-all", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--client-ca")
    p.add_argument("--idle-timeout", type=float, default=120.0,
                   help="close a connection idle this long between requests (s)")
    p.add_argument("--sha256-of-bytes", type=int, metavar="N")
    a = p.parse_args()
    if a.sha256_of_bytes is not None:
        print(sha256_of_bytes(a.sha256_of_bytes))
        return
    if not a.port_file:
        p.error("--port-file is required")

    srv = Server(("127.0.0.1", a.port), Handler)
    srv.args = a
    srv.lock = threading.Lock()
    srv.conns = 0
    srv.ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        if a.client_ca:
            ctx.load_verify_locations(a.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED

        def sni_cb(sock, name, _ctx):
            sock.sni_seen = name
        ctx.sni_callback = sni_cb
        srv.ctx = ctx
    port = srv.server_address[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
