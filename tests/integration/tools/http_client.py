#!/usr/bin/env python3
"""http_client.py: raw HTTP/1.1 clients for the http plugin's integration tests (stdlib).

    http_client.py COMMAND --port PORT [options]

Every command connects to 127.0.0.1:PORT, bounds every wait with --timeout, prints one
JSON line describing what happened and exits 0 when it matched the expectations, 1
(with "http_client.py: <reason>" on stderr) when not.

Commands:
  raw       Run the steps given, in order:
              --send TEXT        send TEXT: Python escapes (\\r \\n \\x00) are decoded, and
                                 {N*PART} is PART repeated N times with %i replaced by
                                 0..N-1 (e.g. '{150*X-H%i: v\\r\\n}', '/{9000*a}')
              --send-bytes N     send N bytes of 'b'
              --sleep S          wait S seconds
              --wait-file F      wait (up to --timeout) until file F exists
              --interim CODE     read one interim (1xx) response head; want CODE
              --response         read one response (head, then the body as framed)
            Then the expectations, about the last response:
              --expect-status S  its status (S may be "400|431")
              --expect-error R   its ferry-error header (R may be "a|b"; "-" = absent,
                                 "*" = any value)
              --expect-body TEXT its body (first 300 bytes) contains TEXT
              --expect-close     after it the server closes (EOF or reset) within
                                 --close-timeout with no more bytes
              --expect-silent-close  no response at all: the server closes within
                                 --timeout sending nothing (after the steps)
              --min-elapsed S / --max-elapsed S: seconds from the last send to the
                                 response head (or to the silent close)
              --max-total S      seconds from the connect to the last response head
              --stop-on-answer   skip the remaining --send/--sleep steps once the
                                 server has sent something (or closed): for trickles
            Output: {"responses": [{status, reason, headers, body_len, body}], "closed",
            "elapsed", "total"}.
  keepalive --n N requests (--method, --path, --header H ...) on one connection, each
            response read in full; want --expect-status on every one and no close.
            Output: {"requests", "statuses": {code: count}, "elapsed"}.
  ws        --path /ws: send an Upgrade: websocket request, want 101, then send
            --rounds payloads (the last of --big bytes) and want each echoed back.
  connect   CONNECT --target host:port (with --header H ...), want 200, then send
            --echo TEXT and want it back (an echo origin behind the target).
"""
import argparse
import base64
import json
import os
import re
import select
import socket
import sys
import time

MAX_HEAD = 256 * 1024


class Fail(Exception):
    pass


def expand(text):
    def rep(m):
        n, part = int(m.group(1)), m.group(2)
        return "".join(part.replace("%i", str(i)) for i in range(n))
    text = re.sub(r"\{(\d+)\*([^{}]*)\}", rep, text)
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


class Conn:
    def __init__(self, port, timeout, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def fill(self):
        """Read more bytes into buf; False at EOF."""
        try:
            b = self.sock.recv(256 * 1024)
        except ConnectionResetError:
            b = b""
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def take(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise Fail(f"EOF after {len(self.buf)} of {n} body bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD:
                raise Fail("line too long")
            if not self.fill():
                raise Fail("EOF inside a line")
        ln, _, self.buf = self.buf.partition(b"\r\n")
        return ln

    def head(self):
        """Read one response head: (status, reason, [(name, value)]); None at clean EOF."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD:
                raise Fail("response head too long")
            if not self.fill():
                if not self.buf:
                    return None
                raise Fail(f"EOF inside a response head: {self.buf[:200]!r}")
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise Fail(f"bad status line {lines[0]!r}")
        hdrs = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs.append((k.strip(), v.strip()))
        return int(m.group(1)), m.group(2) or "", hdrs

    def body(self, status, hdrs, method="GET"):
        get = {k.lower(): v for k, v in hdrs}
        if method == "HEAD" or status < 200 or status in (204, 304):
            return b""
        if "chunked" in get.get("transfer-encoding", "").lower():
            out = b""
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line() != b"":
                        pass
                    return out
                out += self.take(size)
                if self.take(2) != b"\r\n":
                    raise Fail("no CRLF after a chunk")
        if "content-length" in get:
            return self.take(int(get["content-length"]))
        while self.fill():                 # delimited by the close
            pass
        out, self.buf = self.buf, b""
        return out

    def wait_close(self, timeout):
        """True if the server closes (EOF/reset) within timeout with no more bytes; the
        bytes that came instead otherwise (b"" on a timeout)."""
        if self.buf:
            return self.buf
        self.sock.settimeout(timeout)
        try:
            b = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return b""
        finally:
            self.sock.settimeout(self.timeout)
        return True if not b else b


def hmap(hdrs):
    out = {}
    for k, v in hdrs:
        out.setdefault(k.lower(), v)
    return out


def alt_match(want, got):
    alts = want.split("|")
    if "*" in alts and got is not None:
        return True
    if got is None:
        return "-" in alts
    return got in alts


class StepAction(argparse.Action):
    def __call__(self, parser, ns, values, option_string=None):
        steps = getattr(ns, "steps", None) or []
        steps.append((self.dest, values))
        ns.steps = steps


def cmd_raw(a):
    c = Conn(a.port, a.timeout)
    res = {"responses": [], "closed": None, "elapsed": None}
    t_send = t0 = time.monotonic()
    method = "GET"
    answered = False
    try:
        for kind, val in a.steps or []:
            if a.stop_on_answer and kind in ("send", "send_bytes", "sleep") and not answered:
                answered = bool(c.buf) or bool(select.select([c.sock], [], [], 0)[0])
            if answered and kind in ("send", "send_bytes", "sleep"):
                continue
            if kind == "send":
                data = expand(val)
                m = re.match(rb"\s*([A-Z]+) ", data)
                if m:
                    method = m.group(1).decode()
                try:
                    c.send(data)
                except (BrokenPipeError, ConnectionResetError) as e:
                    res["send_error"] = str(e)
                    answered = True      # nothing more can be sent: go read
                t_send = time.monotonic()
            elif kind == "send_bytes":
                try:
                    c.send(b"b" * int(val))
                except (BrokenPipeError, ConnectionResetError) as e:
                    res["send_error"] = str(e)
                    answered = True      # nothing more can be sent: go read
                t_send = time.monotonic()
            elif kind == "sleep":
                time.sleep(float(val))
            elif kind == "wait_file":
                deadline = time.monotonic() + a.timeout
                while not os.path.exists(val):
                    if time.monotonic() > deadline:
                        raise Fail(f"{val} did not appear within {a.timeout}s")
                    time.sleep(0.05)
            elif kind == "interim":
                h = c.head()
                if h is None:
                    raise Fail(f"want an interim {val}, got EOF")
                if h[0] != int(val):
                    raise Fail(f"want an interim {val}, got {h[0]} {h[1]}")
                res["responses"].append({"status": h[0], "reason": h[1], "headers": h[2]})
            elif kind == "response":
                h = c.head()
                res["elapsed"] = round(time.monotonic() - t_send, 3)
                res["total"] = round(time.monotonic() - t0, 3)
                if h is None:
                    raise Fail("want a response, got EOF with nothing")
                body = c.body(h[0], h[2], method)
                res["responses"].append({"status": h[0], "reason": h[1], "headers": h[2],
                                         "body_len": len(body),
                                         "body": body[:300].decode("latin-1")})
        if a.expect_silent_close:
            r = c.wait_close(a.timeout)
            res["elapsed"] = round(time.monotonic() - t_send, 3)
            if r is True:
                res["closed"] = True
            elif r:
                raise Fail(f"want a close with no bytes, got {r[:200]!r}")
            else:
                raise Fail(f"want a close with no bytes within {a.timeout}s; still open")
        elif a.expect_close:
            r = c.wait_close(a.close_timeout)
            res["closed"] = r is True
            if r is not True:
                raise Fail("want the connection closed after the response, got "
                           + (f"more bytes {r[:200]!r}" if r else
                              f"no close within {a.close_timeout}s"))
        last = res["responses"][-1] if res["responses"] else None
        if a.expect_status:
            if last is None:
                raise Fail("no response read (give --response)")
            if not alt_match(a.expect_status, str(last["status"])):
                raise Fail(f"want status {a.expect_status}, got {last['status']} "
                           f"{last['reason']} (ferry-error: "
                           f"{hmap(last['headers']).get('ferry-error')})")
        if a.expect_error:
            if last is None:
                raise Fail("no response read (give --response)")
            got = hmap(last["headers"]).get("ferry-error")
            if not alt_match(a.expect_error, got):
                raise Fail(f"want ferry-error {a.expect_error}, got {got} "
                           f"(status {last['status']})")
        if a.expect_body is not None:
            if last is None or a.expect_body not in last["body"]:
                raise Fail(f"want {a.expect_body!r} in the body, got "
                           f"{last and last['body'][:200]!r}")
        if a.max_total is not None and (res.get("total") is None or res["total"] > a.max_total):
            raise Fail(f"last response after {res.get('total')}s from the connect, "
                       f"want <= {a.max_total}s")
        if a.min_elapsed is not None and (res["elapsed"] or 0) < a.min_elapsed:
            raise Fail(f"answered after {res['elapsed']}s, want >= {a.min_elapsed}s")
        if a.max_elapsed is not None and (res["elapsed"] is None or res["elapsed"] > a.max_elapsed):
            raise Fail(f"answered after {res['elapsed']}s, want <= {a.max_elapsed}s")
    except (Fail, OSError) as e:
        print(json.dumps(res))
        if isinstance(e, socket.timeout):
            e = f"timed out after {a.timeout}s"
        sys.exit(f"http_client.py: raw: {e}")
    print(json.dumps(res))


def request_bytes(a, method, path, extra=()):
    lines = [f"{method} {path} HTTP/1.1"]
    names = {h.split(":", 1)[0].strip().lower() for h in a.header}
    if "host" not in names:
        lines.append(f"Host: 127.0.0.1:{a.port}")
    lines += a.header
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def cmd_keepalive(a):
    c = Conn(a.port, a.timeout)
    statuses = {}
    t0 = time.monotonic()
    req = request_bytes(a, a.method, a.path)
    try:
        for i in range(a.n):
            c.send(req)
            h = c.head()
            if h is None:
                raise Fail(f"request {i + 1}: the connection closed")
            c.body(h[0], h[2], a.method)
            statuses[h[0]] = statuses.get(h[0], 0) + 1
            if h[0] != a.expect_status:
                raise Fail(f"request {i + 1}: status {h[0]}, want {a.expect_status} "
                           f"(ferry-error: {hmap(h[2]).get('ferry-error')})")
            if hmap(h[2]).get("connection", "").lower() == "close":
                raise Fail(f"request {i + 1}: the response says Connection: close")
    except (Fail, OSError) as e:
        print(json.dumps({"requests": a.n, "statuses": statuses}))
        sys.exit(f"http_client.py: keepalive: {e}")
    print(json.dumps({"requests": a.n, "statuses": statuses,
                      "elapsed": round(time.monotonic() - t0, 3)}))


def cmd_ws(a):
    c = Conn(a.port, a.timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    res = {}
    try:
        c.send(request_bytes(a, "GET", a.path, ["Upgrade: websocket", "Connection: Upgrade",
                                                 f"Sec-WebSocket-Key: {key}",
                                                 "Sec-WebSocket-Version: 13"]))
        h = c.head()
        if h is None or h[0] != 101:
            raise Fail(f"want 101, got {h and (h[0], h[1], hmap(h[2]).get('ferry-error'))}")
        res["status"] = 101
        res["upgrade"] = hmap(h[2]).get("upgrade")
        sizes = [5] * (a.rounds - 1) + [a.big]
        for i, n in enumerate(sizes):
            payload = (f"ws-{i}-".encode() * (n // 5 + 2))[:n]
            c.send(payload)
            got = c.take(len(payload))
            if got != payload:
                raise Fail(f"round {i}: {n} bytes sent, different bytes came back")
        res["rounds"] = len(sizes)
        c.sock.shutdown(socket.SHUT_WR)
        r = c.wait_close(a.timeout)
        res["closed_after_eof"] = r is True
    except (Fail, OSError) as e:
        print(json.dumps(res))
        sys.exit(f"http_client.py: ws: {e}")
    print(json.dumps(res))


def cmd_connect(a):
    c = Conn(a.port, a.timeout)
    res = {}
    try:
        if not any(h.lower().startswith("host:") for h in a.header):
            a.header.insert(0, f"Host: {a.target}")
        c.send(request_bytes(a, "CONNECT", a.target))
        h = c.head()
        if h is None:
            raise Fail("CONNECT: EOF instead of a response")
        res["status"] = h[0]
        res["ferry_error"] = hmap(h[2]).get("ferry-error")
        if h[0] != a.expect_status:
            raise Fail(f"CONNECT: want {a.expect_status}, got {h[0]} {h[1]} "
                       f"(ferry-error: {res['ferry_error']})")
        if h[0] == 200 and a.echo:
            payload = a.echo.encode()
            c.send(payload)
            want = (a.expect_echo or a.echo).encode()
            got = c.take(len(want))
            if got != want:
                raise Fail(f"echo: sent {payload!r}, got {got!r}")
            res["echo"] = got.decode()
    except (Fail, OSError) as e:
        print(json.dumps(res))
        sys.exit(f"http_client.py: connect: {e}")
    print(json.dumps(res))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--timeout", type=float, default=10.0)
        sp.add_argument("--header", action="append", default=[])

    r = sub.add_parser("raw")
    common(r)
    r.add_argument("--send", action=StepAction)
    r.add_argument("--send-bytes", action=StepAction)
    r.add_argument("--sleep", action=StepAction)
    r.add_argument("--wait-file", action=StepAction)
    r.add_argument("--interim", action=StepAction)
    r.add_argument("--response", action=StepAction, nargs=0)
    r.add_argument("--expect-status")
    r.add_argument("--expect-error")
    r.add_argument("--expect-close", action="store_true")
    r.add_argument("--expect-silent-close", action="store_true")
    r.add_argument("--close-timeout", type=float, default=3.0)
    r.add_argument("--expect-body")
    r.add_argument("--max-total", type=float)
    r.add_argument("--stop-on-answer", action="store_true")
    r.add_argument("--min-elapsed", type=float)
    r.add_argument("--max-elapsed", type=float)

    k = sub.add_parser("keepalive")
    common(k)
    k.add_argument("--n", type=int, default=100)
    k.add_argument("--method", default="GET")
    k.add_argument("--path", default="/echo")
    k.add_argument("--expect-status", type=int, default=200)

    w = sub.add_parser("ws")
    common(w)
    w.add_argument("--path", default="/ws")
    w.add_argument("--rounds", type=int, default=3)
    w.add_argument("--big", type=int, default=1 << 20)

    c = sub.add_parser("connect")
    common(c)
    c.add_argument("--target", required=True)
    c.add_argument("--echo")
    c.add_argument("--expect-echo")
    c.add_argument("--expect-status", type=int, default=200)

    a = p.parse_args()
    {"raw": cmd_raw, "keepalive": cmd_keepalive, "ws": cmd_ws, "connect": cmd_connect}[a.cmd](a)


if __name__ == "__main__":
    main()
