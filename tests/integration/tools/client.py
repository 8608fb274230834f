#!/usr/bin/env python3
"""client.py: test clients for ferry's integration tests (Python 3 stdlib only).

    client.py COMMAND --port PORT [options]

Every command connects to 127.0.0.1:PORT (a ferry listener), bounds every wait with
--timeout, prints one line of JSON describing what happened, and exits 0 when what
came back is what was expected, 1 (with a reason on stderr) when not.

Commands:
  upload FILE            send FILE, shutdown(SHUT_WR), print the origin's reply line
                         (a `sink` origin answers "<bytes> <sha256>").
  download               read to EOF; print bytes and sha256 (--started-file is created
                         when the first byte arrives).
  echo TEXT              send TEXT, expect --expect (default TEXT) back, close.
  request-then-halfclose send --bytes of seeded data, shutdown(SHUT_WR), then expect
                         "<bytes> <sha256>\\n" + --reply-bytes of seeded data and EOF.
  keep-sending           expect --greeting-bytes of seeded data and EOF (the origin
                         half-closed), then send --bytes more and shutdown(SHUT_WR);
                         expect EOF after the origin read everything.
  concurrent             --n connections at once, each echoing a distinct --size payload.
                         With --ready-file/--go-file: once all are open, create the
                         first and wait for the second before any byte moves.
  download-many          --n connections at once, --rounds times; each expects --bytes of
                         seeded data (--seed) and EOF within --timeout (an origin that
                         speaks first and closes).
  expect-close           connect and expect the connection to end within --timeout
                         without data: prints refused / eof / reset, or timeout / data.
  hold-then-extra        open --hold connections (each proven relayed by an echo), then
                         one more that must be closed at once (EOF/RST) with no data.
  idle                   echo once, then stay silent; expect EOF within --timeout.
  session                echo once, create --ready-file, wait for --go-file, echo again.
"""
import argparse
import asyncio
import hashlib
import json
import os
import random
import socket
import sys
import time

CHUNK = 256 * 1024


def seeded(n, seed):
    return random.Random(seed).randbytes(n)


def out(**rec):
    print(json.dumps(rec), flush=True)


def die(msg, **rec):
    out(ok=False, error=msg, **rec)
    print(f"client.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def connect(a):
    s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    s.settimeout(a.timeout)
    return s


def read_to_eof(s, started_file=None):
    h = hashlib.sha256()
    n = 0
    while True:
        b = s.recv(CHUNK)
        if not b:
            return n, h.hexdigest()
        if n == 0 and started_file:
            with open(started_file, "w") as f:
                f.write("started\n")
        n += len(b)
        h.update(b)


def read_all(s):
    buf = bytearray()
    while True:
        b = s.recv(CHUNK)
        if not b:
            return bytes(buf)
        buf += b


def cmd_upload(a):
    with open(a.file, "rb") as f:
        data = f.read()
    s = connect(a)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reply = read_all(s).decode(errors="replace").strip()
    s.close()
    out(ok=True, sent=len(data), reply=reply)


def cmd_download(a):
    s = connect(a)
    n, digest = read_to_eof(s, a.started_file)
    s.close()
    out(ok=True, received=n, sha256=digest)


def cmd_echo(a):
    want = (a.expect if a.expect is not None else a.text).encode()
    s = connect(a)
    s.sendall(a.text.encode())
    got = b""
    try:
        while len(got) < len(want):
            b = s.recv(CHUNK)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    s.close()
    if got != want:
        die(f"echo: sent {a.text!r}, want {want!r} back, got {got!r}")
    out(ok=True, got=got.decode(errors="replace"))


def cmd_request_then_halfclose(a):
    req = seeded(a.bytes, a.seed)
    s = connect(a)
    s.sendall(req)
    s.shutdown(socket.SHUT_WR)
    t0 = time.monotonic()
    try:
        reply = read_all(s)
    except socket.timeout:
        die(f"no EOF within {a.timeout}s after half-closing (reply so far incomplete)")
    s.close()
    nl = reply.find(b"\n")
    head, body = (reply[:nl].decode(errors="replace"), reply[nl + 1:]) if nl >= 0 else ("", reply)
    want_head = f"{len(req)} {hashlib.sha256(req).hexdigest()}"
    want_body = seeded(a.reply_bytes, a.reply_seed)
    if head != want_head:
        die(f"origin saw [{head}] of the request, want [{want_head}]")
    if body != want_body:
        die(f"reply body after our half-close: {len(body)} bytes sha256 "
            f"{hashlib.sha256(body).hexdigest()}, want {len(want_body)} bytes sha256 "
            f"{hashlib.sha256(want_body).hexdigest()}")
    out(ok=True, sent=len(req), reply_bytes=len(body), secs=round(time.monotonic() - t0, 3))


def cmd_keep_sending(a):
    want = seeded(a.greeting_bytes, a.greeting_seed)
    s = connect(a)
    try:
        greeting = read_all(s)
    except socket.timeout:
        die(f"no EOF from the origin's half-close within {a.timeout}s")
    if greeting != want:
        die(f"greeting before the origin's half-close: {len(greeting)} bytes, want "
            f"{len(want)} bytes (content {'differs' if len(greeting) == len(want) else '?'})")
    data = seeded(a.bytes, a.seed)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        die(f"sending after the origin half-closed failed: {e}")
    try:
        rest = read_all(s)
    except socket.timeout:
        die(f"no EOF within {a.timeout}s after our own half-close")
    except OSError as e:
        die(f"after our half-close: {e}")
    s.close()
    if rest:
        die(f"got {len(rest)} unexpected bytes after the origin's EOF")
    out(ok=True, greeting=len(greeting), sent=len(data),
        sent_sha256=hashlib.sha256(data).hexdigest())


async def one_echo(a, i, start, conns_open):
    payload = seeded(a.size, 1000 + i)
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", a.port), a.timeout)
    conns_open.append(i)
    await start.wait()             # every connection is open before any byte moves

    async def send():
        w.write(payload)
        await w.drain()
        w.write_eof()

    async def recv():
        got = bytearray()
        while True:
            b = await r.read(CHUNK)
            if not b:
                return bytes(got)
            got += b

    _, got = await asyncio.wait_for(asyncio.gather(send(), recv()), a.timeout)
    w.close()
    if got != payload:
        return f"connection {i}: sent {len(payload)} bytes, got {len(got)} back " \
               f"({'content differs' if len(got) == len(payload) else 'length differs'})"
    return None


async def concurrent_main(a):
    start = asyncio.Event()
    conns_open = []
    tasks = [asyncio.create_task(one_echo(a, i, start, conns_open)) for i in range(a.n)]
    deadline = time.monotonic() + a.timeout
    while len(conns_open) < a.n and time.monotonic() < deadline:
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.01)
    peak = len(conns_open)
    if a.ready_file and peak == a.n:
        # Let the test look at ferry with every connection open, then go on.
        with open(a.ready_file, "w") as f:
            f.write("ready\n")
        while a.go_file and not os.path.exists(a.go_file):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    start.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [repr(r) if isinstance(r, BaseException) else r for r in results]
    errors = [e for e in errors if e]
    return peak, errors


def cmd_concurrent(a):
    peak, errors = asyncio.run(concurrent_main(a))
    if peak < a.n:
        die(f"only {peak} of {a.n} connections were open at once", errors=errors[:5])
    if errors:
        die(f"{len(errors)} of {a.n} connections failed; first: {errors[0]}",
            errors=errors[:5])
    out(ok=True, connections=a.n, bytes_each=a.size, peak_open=peak)


async def one_download(a, want):
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", a.port), a.timeout)
    got = bytearray()
    try:
        while True:
            b = await asyncio.wait_for(r.read(CHUNK), a.timeout)
            if not b:
                break
            got += b
    except asyncio.TimeoutError:
        return f"no EOF within {a.timeout} s after {len(got)} of {len(want)} bytes"
    finally:
        w.close()
    if got != want:
        return f"got {len(got)} bytes, want {len(want)} ({'content differs' if len(got) == len(want) else 'length differs'})"
    return None


def cmd_download_many(a):
    want = seeded(a.bytes, a.seed)

    async def run():
        errors = []
        for _ in range(a.rounds):
            res = await asyncio.gather(*[one_download(a, want) for _ in range(a.n)],
                                       return_exceptions=True)
            errors += [repr(r) if isinstance(r, BaseException) else r for r in res if r]
        return errors

    errors = asyncio.run(run())
    if errors:
        die(f"{len(errors)} of {a.n * a.rounds} downloads failed; first: {errors[0]}",
            errors=errors[:5])
    out(ok=True, downloads=a.n * a.rounds, bytes_each=a.bytes)


def wait_close(s, timeout):
    """('eof'|'reset'|'timeout'|'data', bytes, seconds) for a connected socket."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    try:
        b = s.recv(CHUNK)
        kind = "data" if b else "eof"
        n = len(b)
    except socket.timeout:
        kind, n = "timeout", 0
    except ConnectionResetError:
        kind, n = "reset", 0
    return kind, n, round(time.monotonic() - t0, 3)


def cmd_expect_close(a):
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    except ConnectionRefusedError:
        out(ok=True, result="refused", secs=round(time.monotonic() - t0, 3))
        return
    except OSError as e:
        out(ok=True, result="connect-error", error=str(e))
        return
    kind, n, secs = wait_close(s, a.timeout)
    s.close()
    if kind in ("timeout", "data"):
        die(f"connection still open after {secs}s ({kind}, {n} bytes): want it closed "
            f"within {a.timeout}s", result=kind, bytes=n, secs=secs)
    out(ok=True, result=kind, secs=secs)


def echo_on(s, text):
    s.sendall(text)
    got = b""
    while len(got) < len(text):
        b = s.recv(CHUNK)
        if not b:
            break
        got += b
    return got == text


def cmd_hold_then_extra(a):
    held = []
    for i in range(a.hold):
        s = connect(a)
        if not echo_on(s, f"hold-{i}\n".encode()):
            die(f"held connection {i} did not echo (not relayed?)")
        held.append(s)
    try:
        extra = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    except ConnectionRefusedError:
        die("connection beyond max_connections was refused: want accept-and-close")
    kind, n, secs = wait_close(extra, a.timeout)
    extra.close()
    alive = [echo_on(s, b"still\n") for s in held]
    for s in held:
        s.close()
    if kind not in ("eof", "reset"):
        die(f"connection beyond max_connections: {kind} ({n} bytes) after {secs}s, want "
            f"EOF/RST at once", result=kind, secs=secs)
    if not all(alive):
        die("a held connection stopped working after the extra one was rejected")
    out(ok=True, held=a.hold, extra=kind, secs=secs)


def cmd_idle(a):
    s = connect(a)
    if not echo_on(s, b"ping\n"):
        die("idle: the first echo failed")
    kind, n, secs = wait_close(s, a.timeout)
    s.close()
    if kind not in ("eof", "reset"):
        die(f"idle connection: {kind} ({n} bytes) after {secs}s, want closed by ferry "
            f"within {a.timeout}s", result=kind, secs=secs)
    out(ok=True, result=kind, secs=secs)


def cmd_session(a):
    s = connect(a)
    want = a.prefix.encode()
    if not echo_on(s, want + b"before\n"):
        die("session: the echo before the reload failed")
    with open(a.ready_file, "w") as f:
        f.write("ready\n")
    deadline = time.monotonic() + a.timeout
    while not os.path.exists(a.go_file):
        if time.monotonic() > deadline:
            die(f"session: {a.go_file} did not appear within {a.timeout}s")
        time.sleep(0.05)
    try:
        ok = echo_on(s, b"after\n")
    except OSError as e:
        die(f"session: the connection opened before the reload broke: {e}")
    if not ok:
        die("session: the echo after the reload failed (connection closed?)")
    s.close()
    out(ok=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command")
    p.add_argument("arg", nargs="?")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--expect")
    p.add_argument("--bytes", type=int, default=1 << 20)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--reply-bytes", type=int, default=1 << 20)
    p.add_argument("--reply-seed", type=int, default=1)
    p.add_argument("--greeting-bytes", type=int, default=1 << 20)
    p.add_argument("--greeting-seed", type=int, default=1)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--size", type=int, default=64 * 1024)
    p.add_argument("--hold", type=int, default=2)
    p.add_argument("--started-file")
    p.add_argument("--ready-file")
    p.add_argument("--go-file")
    p.add_argument("--prefix", default="")
    a = p.parse_args()
    cmds = {
        "upload": lambda: (setattr(a, "file", a.arg), cmd_upload(a)),
        "download": lambda: cmd_download(a),
        "echo": lambda: (setattr(a, "text", a.arg or ""), cmd_echo(a)),
        "request-then-halfclose": lambda: cmd_request_then_halfclose(a),
        "keep-sending": lambda: cmd_keep_sending(a),
        "concurrent": lambda: cmd_concurrent(a),
        "download-many": lambda: cmd_download_many(a),
        "expect-close": lambda: cmd_expect_close(a),
        "hold-then-extra": lambda: cmd_hold_then_extra(a),
        "idle": lambda: cmd_idle(a),
        "session": lambda: cmd_session(a),
    }
    if a.command not in cmds:
        p.error(f"unknown command {a.command}")
    try:
        cmds[a.command]()
    except (OSError, asyncio.TimeoutError) as e:
        die(f"{a.command}: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
