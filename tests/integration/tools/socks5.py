#!/usr/bin/env python3
"""socks5.py: SOCKS5 clients (and an IPv6 origin) for the socks5_*.sh integration tests.

    socks5.py COMMAND --port PORT [options]

Every client command connects to 127.0.0.1:PORT (a ferry socks5 listener), bounds every
wait with --timeout, prints one JSON line describing what happened and exits 0 when it
is what was expected, 1 (reason on stderr, prefixed "socks5.py:") when not.

Commands:
  handshake   one connection, step by step: greeting (--methods), then RFC 1929
              (--user/--password) or SAP 0x80 (--token, --location base64-encoded unless
              --location-raw), then the request (--cmd, --atyp, --host, --dport), each
              reply compared byte for byte (--expect-method, --expect-auth,
              --expect-reply). After a refusal the server must close (EOF or RST) with
              no more data. After 05 00: --echo TEXT (expects --expect-echo, default
              TEXT) or --http PATH (expects status 200 and --expect-body in the body).
  raw         send --send HEX chunks (--then-bytes N zero bytes, --trickle S between
              chunks), then read until the server closes: expects the close within
              --timeout, at least --min-elapsed seconds after the last byte sent, and
              exactly --expect HEX as data when given.
  hold        a good connection that echoes, creates --ready-file, waits for
              --go-file (deadline --timeout), then echoes again on the same connection.
  many        --n concurrent connections (asyncio, raw sockets), each: greeting, user/
              password, CONNECT --host:--dport (--atyp), all held until every one is
              through the handshake, then each echoes a distinct --size-byte payload.
  pysocks     PySocks (socks.socksocket) to --host:--dport with --user/--password,
              rdns=--rdns: --http PATH (status 200, --expect-body) or --echo TEXT.
  origin6     an echo origin on [::1]:0, the port written to --port-file (atomically);
              exits 3 at once if IPv6 loopback is unavailable.
  blackhole   a 127.0.0.1 port whose connects hang (listen backlog 0, filled by
              connections nobody accepts): the port goes to --port-file once a probe
              connect has been seen to hang for 1 s; exits 3 if the probe connects.
"""
import argparse
import asyncio
import base64
import json
import os
import socket
import struct
import sys
import time

OK_REPLY = "05000001000000000000"


def out(**rec):
    print(json.dumps(rec), flush=True)


def die(msg, **rec):
    out(**{**rec, "ok": False, "error": msg})
    print(f"socks5.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def connect(a):
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    s.settimeout(a.timeout)
    return s


def recv_exact(s, n):
    """n bytes, or fewer if the peer closed (b"" on EOF; raises on RST/timeout)."""
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            break
        buf += b
    return bytes(buf)


def wait_close(s, deadline):
    """Read until EOF/RST or the deadline: (result, data) with result eof/reset/timeout."""
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", bytes(data)
        s.settimeout(left)
        try:
            b = s.recv(65536)
        except socket.timeout:
            return "timeout", bytes(data)
        except (ConnectionResetError, BrokenPipeError):
            return "reset", bytes(data)
        if not b:
            return "eof", bytes(data)
        data += b


def address(atyp, host, port):
    """The ATYP + DST.ADDR + DST.PORT part of a request."""
    if atyp == "ipv4":
        return b"\x01" + socket.inet_pton(socket.AF_INET, host) + struct.pack(">H", port)
    if atyp == "ipv6":
        return b"\x04" + socket.inet_pton(socket.AF_INET6, host) + struct.pack(">H", port)
    if atyp == "domain":
        h = host.encode()
        return b"\x03" + bytes([len(h)]) + h + struct.pack(">H", port)
    # A raw ATYP number (e.g. 5): four address bytes follow, then the port.
    return bytes([int(atyp, 0)]) + b"\x7f\x00\x00\x01" + struct.pack(">H", port)


def sap_auth(token, location, raw):
    t = token.encode()
    loc = location.encode() if raw else base64.b64encode(location.encode())
    return b"\x01" + struct.pack(">I", len(t)) + t + bytes([len(loc)]) + loc


def userpass_auth(user, password):
    u, p = user.encode(), password.encode()
    return b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p


def http_get(s, host, path, timeout):
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    res, data = wait_close(s, time.monotonic() + timeout)
    if res == "timeout":
        raise OSError(f"HTTP response not finished within {timeout}s (got {len(data)} bytes)")
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    return status, body.decode(errors="replace")


def echo(s, text, expect):
    s.sendall(text.encode())
    got = recv_exact(s, len(expect.encode()))
    return got.decode(errors="replace")


def cmd_handshake(a):
    rec = {"ok": True}
    s = connect(a)
    deadline = lambda: time.monotonic() + a.timeout  # noqa: E731

    def refused_close(step):
        res, extra = wait_close(s, deadline())
        rec["close"] = res
        if res == "timeout":
            die(f"after {step}: want the server to close the connection within "
                f"{a.timeout}s, it stayed open", **rec)
        if extra:
            die(f"after {step}: want no more data before the close, got {extra.hex()}", **rec)
        out(**rec)
        sys.exit(0)

    methods = bytes.fromhex(a.methods)
    s.sendall(b"\x05" + bytes([len(methods)]) + methods)
    try:
        m = recv_exact(s, 2)
    except OSError as e:
        die(f"greeting: no method selection ({e})", **rec)
    rec["method"] = m.hex()
    want = a.expect_method
    if want is None:
        want = "0502" if a.user is not None else "0580" if a.token is not None else "0500"
    if m.hex() != want:
        die(f"greeting (methods {a.methods}): want {want}, got {m.hex() or 'EOF'}", **rec)
    if m[1] == 0xFF:
        refused_close("05 FF")
    if m[1] in (0x02, 0x80):
        if m[1] == 0x02:
            s.sendall(userpass_auth(a.user or "", a.password or ""))
        else:
            s.sendall(sap_auth(a.token or "", a.location or "", a.location_raw))
        try:
            r = recv_exact(s, 2)
        except OSError as e:
            die(f"sub-negotiation: no status ({e})", **rec)
        rec["auth"] = r.hex()
        if r.hex() != a.expect_auth:
            die(f"sub-negotiation: want {a.expect_auth}, got {r.hex() or 'EOF'}", **rec)
        if r[1] != 0:
            refused_close(f"sub-negotiation status {r.hex()}")
    s.sendall(b"\x05" + bytes([a.cmd]) + b"\x00" + address(a.atyp, a.host, a.dport))
    try:
        r = recv_exact(s, 10)
    except OSError as e:
        die(f"request: no reply ({e})", **rec)
    rec["reply"] = r.hex()
    if r.hex() != a.expect_reply:
        die(f"request (cmd {a.cmd} {a.atyp} {a.host}:{a.dport}): want reply "
            f"{a.expect_reply}, got {r.hex() or 'EOF'}", **rec)
    if r[1] != 0:
        refused_close(f"reply {r.hex()}")
    if a.echo is not None:
        want = a.expect_echo if a.expect_echo is not None else a.echo
        got = echo(s, a.echo, want)
        rec["echo"] = got
        if got != want:
            die(f"echo through the proxy: want {want!r}, got {got!r}", **rec)
    if a.http is not None:
        status, body = http_get(s, a.http_host or f"{a.host}:{a.dport}", a.http, a.timeout)
        rec.update(status=status, body=body[:200])
        if " 200 " not in status + " " or a.expect_body not in body:
            die(f"HTTP GET {a.http}: want 200 with {a.expect_body!r} in the body, got "
                f"{status!r} {body[:200]!r}", **rec)
    s.close()
    out(**rec)


def cmd_raw(a):
    s = connect(a)
    chunks = [bytes.fromhex(h) for h in a.send]
    if a.then_bytes:
        chunks.append(b"\x00" * a.then_bytes)
    t_first = None
    closed = None
    data = b""
    for i, c in enumerate(chunks):
        if i > 0 and a.trickle:
            # Between trickled bytes, notice the server closing.
            res, d = wait_close(s, time.monotonic() + a.trickle)
            data += d
            if res != "timeout":
                closed = res
                break
        try:
            s.sendall(c)
        except (BrokenPipeError, ConnectionResetError):
            # The server may close while a large claim is still being sent.
            closed = "reset-while-sending"
            break
        if t_first is None:
            t_first = time.monotonic()
    t_last = time.monotonic()
    if closed is None:
        closed, d = wait_close(s, t_last + a.timeout)
        data += d
    # Trickled: time since the first byte (the handshake deadline counts from accept).
    elapsed = round(time.monotonic() - (t_first if a.trickle and t_first else t_last), 3)
    rec = {"ok": True, "close": closed, "data": data.hex(), "elapsed": elapsed}
    if closed == "timeout":
        die(f"want the server to close within {a.timeout}s, it stayed open", **rec)
    if closed == "reset-while-sending" and a.expect:
        die(f"the connection was reset while sending, before the expected {a.expect} "
            f"could be read", **rec)
    if a.expect is not None and closed != "reset-while-sending" and data.hex() != a.expect:
        die(f"want exactly {a.expect or '(nothing)'} before the close, got "
            f"{data.hex() or '(nothing)'}", **rec)
    if elapsed < a.min_elapsed:
        die(f"closed after {elapsed}s, want at least {a.min_elapsed}s (the handshake "
            f"timeout, not at once)", **rec)
    if elapsed > a.timeout:
        die(f"closed after {elapsed}s, want within {a.timeout}s", **rec)
    out(**rec)


def good_connection(a):
    s = connect(a)
    s.sendall(b"\x05\x01\x02")
    if recv_exact(s, 2) != b"\x05\x02":
        die("hold: greeting not answered with 05 02")
    s.sendall(userpass_auth(a.user, a.password))
    if recv_exact(s, 2) != b"\x01\x00":
        die("hold: authentication failed")
    s.sendall(b"\x05\x01\x00" + address(a.atyp, a.host, a.dport))
    r = recv_exact(s, 10)
    if r.hex() != OK_REPLY:
        die(f"hold: CONNECT reply {r.hex()}, want {OK_REPLY}")
    return s


def cmd_hold(a):
    s = good_connection(a)
    got = echo(s, "first", "first")
    if got != "first":
        die(f"hold: first echo {got!r}")
    with open(a.ready_file, "w") as f:
        f.write("ready\n")
    deadline = time.monotonic() + a.timeout
    while not os.path.exists(a.go_file):
        if time.monotonic() > deadline:
            die(f"hold: {a.go_file} did not appear within {a.timeout}s")
        time.sleep(0.05)
    try:
        got = echo(s, "second", "second")
    except OSError as e:
        die(f"hold: the held connection broke: {e}")
    if got != "second":
        die(f"hold: second echo on the held connection: want 'second', got {got!r}")
    s.close()
    out(ok=True, echoes=2)


async def one_async(a, i, stats):
    payload = (f"conn-{i:05d}-".encode() * (a.size // 11 + 1))[:a.size]
    r, w = await asyncio.open_connection("127.0.0.1", a.port)
    try:
        w.write(b"\x05\x01\x02")
        if await r.readexactly(2) != b"\x05\x02":
            raise ValueError("greeting")
        w.write(userpass_auth(a.user, a.password))
        if await r.readexactly(2) != b"\x01\x00":
            raise ValueError("auth")
        w.write(b"\x05\x01\x00" + address(a.atyp, a.host, a.dport))
        rep = await r.readexactly(10)
        if rep.hex() != OK_REPLY:
            raise ValueError(f"reply {rep.hex()}")
        stats["open"] += 1
        if stats["open"] == a.n:
            stats["all_open"].set()
        # Hold until every connection is through the handshake: they are concurrent.
        await stats["all_open"].wait()
        w.write(payload)
        await w.drain()
        got = await r.readexactly(len(payload))
        if got != payload:
            raise ValueError("payload mismatch")
        w.write_eof()
        rest = await r.read()
        if rest:
            raise ValueError(f"{len(rest)} unexpected bytes after the echo")
        stats["ok"] += 1
    finally:
        w.close()


async def many_main(a):
    stats = {"open": 0, "ok": 0, "all_open": asyncio.Event()}
    tasks = [asyncio.create_task(one_async(a, i, stats)) for i in range(a.n)]
    done, pending = await asyncio.wait(tasks, timeout=a.timeout)
    for t in pending:
        t.cancel()
    errors = {}
    for t in done:
        e = t.exception()
        if e is not None:
            k = f"{type(e).__name__}: {e}"[:120]
            errors[k] = errors.get(k, 0) + 1
    return stats, len(pending), errors


def cmd_many(a):
    t0 = time.monotonic()
    stats, pending, errors = asyncio.run(many_main(a))
    rec = {"ok": True, "n": a.n, "handshakes": stats["open"], "intact": stats["ok"],
           "unfinished": pending, "errors": errors,
           "seconds": round(time.monotonic() - t0, 2)}
    if stats["ok"] != a.n:
        die(f"{stats['ok']} of {a.n} concurrent connections intact ({stats['open']} got "
            f"through the handshake, {pending} unfinished after {a.timeout}s; errors: "
            f"{errors})", **rec)
    out(**rec)


def cmd_pysocks(a):
    import socks  # PySocks (Debian python3-socks)

    s = socks.socksocket()
    s.set_proxy(socks.SOCKS5, "127.0.0.1", a.port, rdns=a.rdns, username=a.user,
                password=a.password)
    s.settimeout(a.timeout)
    rec = {"ok": True, "rdns": a.rdns}
    try:
        s.connect((a.host, a.dport))
    except socks.ProxyError as e:
        die(f"PySocks connect to {a.host}:{a.dport}: {e}", **rec)
    if a.http is not None:
        s.sendall(f"GET {a.http} HTTP/1.0\r\nHost: {a.host}\r\n\r\n".encode())
        data = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        body = body.decode(errors="replace")
        rec.update(status=status, body=body[:200])
        if " 200 " not in status + " " or a.expect_body not in body:
            die(f"PySocks HTTP GET {a.http}: want 200 with {a.expect_body!r}, got "
                f"{status!r} {body[:200]!r}", **rec)
    if a.echo is not None:
        want = a.expect_echo if a.expect_echo is not None else a.echo
        got = echo(s, a.echo, want)
        rec["echo"] = got
        if got != want:
            die(f"PySocks echo: want {want!r}, got {got!r}", **rec)
    s.close()
    out(**rec)


def cmd_origin6(a):
    import threading

    try:
        ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("::1", 0))
        ls.listen(128)
    except OSError as e:
        print(f"origin6: IPv6 loopback unavailable: {e}", flush=True)
        sys.exit(3)

    def handle(c):
        try:
            c.sendall(a.prefix.encode())
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
        except OSError:
            pass
        finally:
            c.close()

    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{ls.getsockname()[1]}\n")
    os.rename(tmp, a.port_file)
    print(f"origin6 echo listening on [::1]:{ls.getsockname()[1]}", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def cmd_blackhole(a):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fill = []
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fill.append(c)
    probe = socket.socket()
    probe.settimeout(1.0)
    try:
        probe.connect(("127.0.0.1", port))
        print("blackhole: a connect to the full backlog succeeded; cannot make a hanging port",
              flush=True)
        sys.exit(3)
    except socket.timeout:
        pass
    probe.close()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, a.port_file)
    print(f"blackhole on 127.0.0.1:{port}", flush=True)
    while True:
        time.sleep(3600)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["handshake", "raw", "hold", "many", "pysocks", "origin6",
                                         "blackhole"])
    p.add_argument("--port", type=int)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--methods", default="02")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--token")
    p.add_argument("--location", default="")
    p.add_argument("--location-raw", action="store_true")
    p.add_argument("--cmd", type=int, default=1)
    p.add_argument("--atyp", default="ipv4")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--dport", type=int, default=80)
    p.add_argument("--expect-method")
    p.add_argument("--expect-auth", default="0100")
    p.add_argument("--expect-reply", default=OK_REPLY)
    p.add_argument("--echo")
    p.add_argument("--expect-echo")
    p.add_argument("--http")
    p.add_argument("--http-host")
    p.add_argument("--expect-body", default="")
    p.add_argument("--send", action="append", default=[])
    p.add_argument("--then-bytes", type=int, default=0)
    p.add_argument("--trickle", type=float, default=0.0)
    p.add_argument("--expect")
    p.add_argument("--min-elapsed", type=float, default=0.0)
    p.add_argument("--ready-file")
    p.add_argument("--go-file")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--rdns", type=int, default=1)
    p.add_argument("--port-file")
    p.add_argument("--prefix", default="v6:")
    a = p.parse_args()
    a.rdns = bool(a.rdns)
    if a.command not in ("origin6", "blackhole") and a.port is None:
        p.error("--port is required")
    try:
        {"handshake": cmd_handshake, "raw": cmd_raw, "hold": cmd_hold, "many": cmd_many,
         "pysocks": cmd_pysocks, "origin6": cmd_origin6,
         "blackhole": cmd_blackhole}[a.command](a)
    except (OSError, EOFError, asyncio.IncompleteReadError) as e:
        die(f"{a.command}: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
