#!/usr/bin/env python3
"""limits.py: clients for tests/integration/listener_limits.sh (Python 3 stdlib only).

    limits.py COMMAND --host HOST --port PORT [options]

Every wait is bounded by --timeout. Prints one JSON line and exits 0 when what happened
is what was expected, 1 (reason on stderr, prefixed "limits.py:") when not.

Commands:
  refused   connect, send nothing (or --send TEXT), and expect the server to close
            (EOF or RST) without sending a single byte. --after-echo TEXT: an echo
            connection (as `echo`) first, right before it. --count N: N such
            connections, one after the other (elapsed: seconds for all of them).
  echo      send an optional PROXY header (--proxy v1|v2|v2-local, --src IP, --sport N),
            then --send TEXT, and expect TEXT back (an echo origin behind a tcp
            listener); the connection is then closed by us.
  http      the same header, then a GET of --url through a forward proxy, --count
            times back to back (a connection each); expects --expect-status of the
            last and prints every status and the last one's headers.
  socks     SOCKS5 without authentication: greeting, then CONNECT --dhost:--dport,
            --count times back to back; expects the reply codes --expect-reply (hex,
            comma-separated: 00,02); after 00 echoes --send.
"""
import argparse
import ipaddress
import json
import socket
import struct
import sys
import time

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def die(msg, **rec):
    print(json.dumps(dict(ok=False, error=msg, **rec)))
    print("limits.py: " + msg, file=sys.stderr)
    sys.exit(1)


def connect(a):
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    s.connect((a.host, a.port))
    return s


def header(a, dst_port):
    if a.proxy is None:
        return b""
    src = ipaddress.ip_address(a.src)
    dst = ipaddress.ip_address("::1" if src.version == 6 else "127.0.0.1")
    if a.proxy == "v1":
        fam = "TCP6" if src.version == 6 else "TCP4"
        return f"PROXY {fam} {src} {dst} {a.sport} {dst_port}\r\n".encode()
    if a.proxy == "v2-local":
        return V2_SIG + bytes([0x20, 0x00]) + struct.pack(">H", 0)
    body = src.packed + dst.packed + struct.pack(">HH", a.sport, dst_port)
    fam = 0x21 if src.version == 6 else 0x11
    # A TLV (PP2_TYPE_NOOP) after the addresses: it belongs to the header, not the data.
    body += b"\x04\x00\x02xx"
    return V2_SIG + bytes([0x21, fam]) + struct.pack(">H", len(body)) + body


def read_until_close(s, deadline):
    got = b""
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return got, "reset"
        except socket.timeout:
            return got, "timeout"
        if not b:
            return got, "eof"
        got += b
    return got, "timeout"


def cmd_refused(a):
    if a.after_echo:                    # one good connection first, in this process:
        echo_once(a, a.after_echo)      # the next one follows within milliseconds
    t_all = time.monotonic()
    for _ in range(a.count):
        t0 = time.monotonic()
        s = connect(a)
        if a.send:
            try:
                s.sendall(a.send.encode())
            except (BrokenPipeError, ConnectionResetError):
                pass
        got, how = read_until_close(s, t0 + a.timeout)
        s.close()
        rec = dict(bytes=len(got), end=how, seconds=round(time.monotonic() - t0, 3))
        if how == "timeout":
            die("the server did not close", **rec)
        if got:
            die("the server sent bytes before closing: %r" % got[:64], **rec)
    rec["elapsed"] = round(time.monotonic() - t_all, 3)
    print(json.dumps(dict(ok=True, **rec)))


def cmd_echo(a):
    echo_once(a, a.send)
    print(json.dumps(dict(ok=True, echo=a.send)))


def echo_once(a, text):
    s = connect(a)
    want = text.encode()
    s.sendall(header(a, a.port) + want)
    got = b""
    deadline = time.monotonic() + a.timeout
    while len(got) < len(want) and time.monotonic() < deadline:
        try:
            b = s.recv(65536)
        except (socket.timeout, ConnectionResetError) as e:
            die("no echo: %s" % e, got=got.decode(errors="replace"))
        if not b:
            break
        got += b
    if got != want:
        die("echo mismatch", got=got.decode(errors="replace"), want=text)
    s.close()


def http_once(a):
    s = connect(a)
    req = (f"GET {a.url} HTTP/1.1\r\nHost: {a.url.split('/')[2]}\r\n"
           "Connection: close\r\n\r\n").encode()
    s.sendall(header(a, a.port) + req)
    got, how = read_until_close(s, time.monotonic() + a.timeout)
    s.close()
    head = got.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
    if not head or not head[0].startswith("HTTP/1.1 "):
        die("no HTTP response (%s)" % how, got=got[:200].decode(errors="replace"))
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(head[0].split()[1]), hdrs


def cmd_http(a):
    statuses = []
    for _ in range(a.count):            # back to back: a rate test must not wait on us
        status, hdrs = http_once(a)
        statuses.append(status)
    rec = dict(status=status, statuses=statuses, headers=hdrs)
    if a.expect_status and status != a.expect_status:
        die("status %d, want %d" % (status, a.expect_status), **rec)
    print(json.dumps(dict(ok=True, **rec)))


def socks_once(a):
    s = connect(a)
    s.sendall(b"\x05\x01\x00")
    g = s.recv(2)
    if g != b"\x05\x00":
        die("greeting reply %r" % g)
    dst = ipaddress.ip_address(a.dhost)
    s.sendall(b"\x05\x01\x00\x01" + dst.packed + struct.pack(">H", a.dport))
    rep = b""
    while len(rep) < 10:
        b = s.recv(10 - len(rep))
        if not b:
            break
        rep += b
    if len(rep) < 2:
        die("no reply", got=rep.hex())
    code = "%02x" % rep[1]
    if code == "00" and a.send:
        s.sendall(a.send.encode())
        got = s.recv(len(a.send))
        if got.decode() != a.send:
            die("echo mismatch", got=got.decode(errors="replace"))
    s.close()
    return code


def cmd_socks(a):
    replies = [socks_once(a) for _ in range(a.count)]     # back to back, as cmd_http
    want = a.expect_reply.split(",")
    if replies != want:
        die("replies %s, want %s" % (",".join(replies), a.expect_reply), replies=replies)
    print(json.dumps(dict(ok=True, replies=replies)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["refused", "echo", "http", "socks"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--send", default="")
    p.add_argument("--after-echo", default="")
    p.add_argument("--proxy", choices=["v1", "v2", "v2-local"])
    p.add_argument("--src", default="192.0.2.10")
    p.add_argument("--sport", type=int, default=51234)
    p.add_argument("--url")
    p.add_argument("--expect-status", type=int, default=0)
    p.add_argument("--count", type=int, default=1)     # http, socks, refused
    p.add_argument("--dhost", default="127.0.0.1")
    p.add_argument("--dport", type=int, default=0)
    p.add_argument("--expect-reply", default="00")
    a = p.parse_args()
    try:
        {"refused": cmd_refused, "echo": cmd_echo, "http": cmd_http, "socks": cmd_socks}[a.command](a)
    except OSError as e:
        die("%s: %s" % (type(e).__name__, e))


if __name__ == "__main__":
    main()
