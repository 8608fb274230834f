#!/usr/bin/env python3
"""origin.py: test origin servers for ferry's integration tests (Python 3 stdlib only).

    origin.py MODE --port-file FILE [--report FILE] [options]

Binds 127.0.0.1:0 (or --port), listens, then writes the port to --port-file (atomically:
the file appears only once the server accepts), so a test never probes the server with
a connection of its own. Every connection runs in its own thread. --report appends one
JSON line per finished connection: {"mode", "received", "sha256", "sent", "sent_sha256"}.

Modes:
  echo               send back every byte received; close after the client's EOF.
                     --prefix TEXT is sent once first (tells origins apart).
  sink               read to EOF, then reply "<bytes> <sha256>\\n" and close.
  source             send --file (or --bytes of seeded data), then close; reads nothing.
  reply-after-eof    read to EOF, reply "<bytes> <sha256>\\n" + --bytes of seeded data,
                     close (the client half-closed first).
  halfclose-first    send --bytes of seeded data, shutdown(SHUT_WR), read to EOF
                     (reported), close (the origin half-closed first).
  slow               send --bytes of seeded data spread over --duration seconds, close.
                     --hold-file FILE: after the first half, wait (up to 250 s) until FILE
                     exists, then send the rest (a test decides when the transfer ends).
"""
import argparse
import hashlib
import json
import os
import random
import socket
import sys
import threading
import time

CHUNK = 256 * 1024


def seeded(n, seed):
    """n bytes of deterministic, incompressible-looking data (same as client.py)."""
    return random.Random(seed).randbytes(n)


def read_to_eof(sock):
    h = hashlib.sha256()
    n = 0
    while True:
        b = sock.recv(CHUNK)
        if not b:
            return n, h.hexdigest()
        n += len(b)
        h.update(b)


class Server:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.payload = None
        if args.mode in ("source",) and args.file:
            with open(args.file, "rb") as f:
                self.payload = f.read()
        elif args.mode in ("source", "reply-after-eof", "halfclose-first", "slow"):
            self.payload = seeded(args.bytes, args.seed)

    def report(self, **rec):
        rec["mode"] = self.args.mode
        if self.args.report:
            with self.lock, open(self.args.report, "a") as f:
                f.write(json.dumps(rec) + "\n")

    def handle(self, conn):
        a = self.args
        rec = {"received": 0, "sha256": None, "sent": 0, "sent_sha256": None}
        try:
            if a.mode == "echo":
                if a.prefix:
                    conn.sendall(a.prefix.encode())
                h = hashlib.sha256()
                while True:
                    b = conn.recv(CHUNK)
                    if not b:
                        break
                    h.update(b)
                    rec["received"] += len(b)
                    conn.sendall(b)
                    rec["sent"] += len(b)
                rec["sha256"] = h.hexdigest()
            elif a.mode == "sink":
                n, digest = read_to_eof(conn)
                rec.update(received=n, sha256=digest)
                conn.sendall(f"{n} {digest}\n".encode())
            elif a.mode == "source":
                conn.sendall(self.payload)
                rec.update(sent=len(self.payload),
                           sent_sha256=hashlib.sha256(self.payload).hexdigest())
            elif a.mode == "reply-after-eof":
                n, digest = read_to_eof(conn)
                rec.update(received=n, sha256=digest)
                conn.sendall(f"{n} {digest}\n".encode() + self.payload)
                rec.update(sent=len(self.payload),
                           sent_sha256=hashlib.sha256(self.payload).hexdigest())
            elif a.mode == "halfclose-first":
                conn.sendall(self.payload)
                conn.shutdown(socket.SHUT_WR)
                rec.update(sent=len(self.payload),
                           sent_sha256=hashlib.sha256(self.payload).hexdigest())
                n, digest = read_to_eof(conn)
                rec.update(received=n, sha256=digest)
            elif a.mode == "slow":
                steps = 40
                step = max(1, len(self.payload) // steps)
                t0 = time.monotonic()
                for i, off in enumerate(range(0, len(self.payload), step)):
                    if a.hold_file and i == steps // 2:
                        end = time.monotonic() + 250
                        while not os.path.exists(a.hold_file) and time.monotonic() < end:
                            time.sleep(0.02)
                        t0 = time.monotonic() - (i * a.duration / steps)
                    conn.sendall(self.payload[off:off + step])
                    rec["sent"] += len(self.payload[off:off + step])
                    delay = t0 + (i + 1) * a.duration / steps - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                rec["sent_sha256"] = hashlib.sha256(self.payload).hexdigest()
            rec["result"] = "ok"
        except OSError as e:
            rec["result"] = f"error: {e}"
        finally:
            conn.close()
            self.report(**rec)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["echo", "sink", "source", "reply-after-eof",
                                    "halfclose-first", "slow"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--report")
    p.add_argument("--file")
    p.add_argument("--bytes", type=int, default=1 << 20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--prefix", default="")
    p.add_argument("--hold-file")
    args = p.parse_args()

    srv = Server(args)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(1024)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{ls.getsockname()[1]}\n")
    os.rename(tmp, args.port_file)
    print(f"origin {args.mode} listening on 127.0.0.1:{ls.getsockname()[1]}", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=srv.handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
