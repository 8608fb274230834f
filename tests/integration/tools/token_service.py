#!/usr/bin/env python3
"""token_service.py: a fake OAuth2 token service for the integration tests (stdlib only).

    token_service.py --port-file FILE --client ID:SECRET [--user NAME:PASSWORD]
                     [--tls-cert CRT --tls-key KEY [--client-ca CA]] [--token-prefix P]

Binds 127.0.0.1:0, writes the port to --port-file atomically once it accepts. With
--tls-cert/--tls-key it speaks HTTPS; with --client-ca too, a client certificate from CA
is required (mTLS: ssl.CERT_REQUIRED; a client without one fails the handshake), and
the CN of each token request's certificate is recorded under "peer".

  POST /oauth/token?tag=T[&expires=S]   RFC 6749 token endpoint: grant_type
        client_credentials or password (username/password must match --user); client
        credentials from HTTP Basic (form-urlencoded id:secret) or client_id/client_secret
        in the body. Answers {"access_token": "P-T-N", "token_type": "bearer",
        "expires_in": S (default 3600)} (P: --token-prefix, default tok); 401 for bad
        credentials, 400 for a bad grant.
        Every request to it counts as a hit of tag T (also the failed ones).
  GET  /hits            JSON {tag: {"hits": n, "grants": [...], "auth": [...],
                        "issued": [tokens], "scope": [...], "peer": [client CNs]}}
  POST /mode?tag=T&fail=0|1&delay_ms=N    tag T answers 503 (fail=1), or waits N ms
"""
import argparse
import base64
import json
import os
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {}          # tag -> {"hits", "grants", "auth", "issued", "scope"}
MODE = {}           # tag -> {"fail": bool, "delay_ms": int}
ARGS = None


def tag_state(tag):
    return STATE.setdefault(tag, {"hits": 0, "grants": [], "auth": [], "issued": [],
                                  "scope": [], "peer": []})


def peer_cn(sock):
    """The CN of the client certificate on sock ("" without TLS or a certificate)."""
    cert = sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""


class TLSServer(ThreadingHTTPServer):
    """HTTPS: the handshake runs in the request's own thread (with a deadline), so a
    client that never finishes it holds up nobody else."""
    ssl_ctx = None

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return              # no certificate, a wrong one, or gone: nothing to serve
        self.RequestHandlerClass(conn, client_address, self)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/hits":
            with LOCK:
                self.answer(200, STATE)
        else:
            self.answer(404, {"error": "not_found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode() if n else ""
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/mode":
            with LOCK:
                m = MODE.setdefault(q.get("tag", ""), {"fail": False, "delay_ms": 0})
                if "fail" in q:
                    m["fail"] = q["fail"] == "1"
                if "delay_ms" in q:
                    m["delay_ms"] = int(q["delay_ms"])
            self.answer(200, {"ok": True})
            return
        if url.path != "/oauth/token":
            self.answer(404, {"error": "not_found"})
            return
        tag = q.get("tag", "")
        form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
        with LOCK:
            st = tag_state(tag)
            st["hits"] += 1
            st["grants"].append(form.get("grant_type", ""))
            st["peer"].append(peer_cn(self.connection))
            mode = dict(MODE.get(tag, {"fail": False, "delay_ms": 0}))
        if mode["delay_ms"]:
            time.sleep(mode["delay_ms"] / 1000)
        if mode["fail"]:
            self.answer(503, {"error": "temporarily_unavailable"})
            return
        cid, secret, how = None, None, "none"
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            dec = base64.b64decode(auth[6:]).decode()
            cid, _, secret = dec.partition(":")
            cid, secret = urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(secret)
            how = "basic"
        elif "client_id" in form:
            cid, secret, how = form.get("client_id"), form.get("client_secret"), "body"
        with LOCK:
            st["auth"].append(how)
            st["scope"].append(form.get("scope", ""))
        want_id, _, want_secret = ARGS.client.partition(":")
        if cid != want_id or secret != want_secret:
            self.answer(401, {"error": "invalid_client"})
            return
        grant = form.get("grant_type")
        if grant == "password":
            user, _, pw = (ARGS.user or ":").partition(":")
            if form.get("username") != user or form.get("password") != pw:
                self.answer(400, {"error": "invalid_grant"})
                return
        elif grant != "client_credentials":
            self.answer(400, {"error": "unsupported_grant_type"})
            return
        with LOCK:
            tok = "%s-%s-%d" % (ARGS.token_prefix, tag, len(st["issued"]) + 1)
            st["issued"].append(tok)
        self.answer(200, {"access_token": tok, "token_type": "bearer",
                          "expires_in": int(q.get("expires", "3600"))})


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--client", required=True)
    p.add_argument("--user")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--client-ca")
    # secrets_sweep.sh wants tokens no log could hold by chance: a random prefix.
    p.add_argument("--token-prefix", default="tok")
    ARGS = p.parse_args()
    if ARGS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        if ARGS.client_ca:
            ctx.load_verify_locations(ARGS.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        TLSServer.ssl_ctx = ctx
        srv = TLSServer(("127.0.0.1", 0), Handler)
    else:
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, ARGS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
