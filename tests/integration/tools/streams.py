#!/usr/bin/env python3
"""streams.py: many concurrent echo connections, each with its own payload (stdlib only).

    streams.py --port PORT --n N [--min-size B] [--max-size B] [--timeout S]
               [--ready-file F --go-file G]

Opens N connections to 127.0.0.1:PORT at once (an `echo` origin behind ferry). Connection
i sends a payload of a size drawn from [--min-size, --max-size] (seeded by i, so every
payload differs in size and content), half-closes, and must get exactly that payload back
before EOF. No byte moves until all N are open; with --ready-file/--go-file the script
then creates the first and waits for the second (so the test can look at ferry with N
streams open). Prints one JSON line; exits 0 if every connection came back intact, 1 with
the first failures otherwise. Every wait is bounded by --timeout.
"""
import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import time

CHUNK = 256 * 1024


def payload_for(i, lo, hi):
    rnd = random.Random(5000 + i)
    return rnd.randbytes(rnd.randint(lo, hi))


async def one(a, i, start, opened):
    data = payload_for(i, a.min_size, a.max_size)
    r, w = await asyncio.open_connection("127.0.0.1", a.port)
    opened.append(i)
    await start.wait()

    async def send():
        w.write(data)
        await w.drain()
        w.write_eof()

    async def recv():
        got = bytearray()
        while True:
            b = await r.read(CHUNK)
            if not b:
                return bytes(got)
            got += b

    try:
        _, got = await asyncio.gather(send(), recv())
    finally:
        w.close()
    if got != data:
        return (f"connection {i}: sent {len(data)} bytes "
                f"(sha256 {hashlib.sha256(data).hexdigest()[:12]}), got {len(got)} back "
                f"({'content differs' if len(got) == len(data) else 'length differs'})")
    return len(data)


async def run(a):
    start = asyncio.Event()
    opened = []
    deadline = time.monotonic() + a.timeout
    tasks = [asyncio.create_task(one(a, i, start, opened)) for i in range(a.n)]
    while len(opened) < a.n and time.monotonic() < deadline:
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.01)
    peak = len(opened)
    if a.ready_file and peak == a.n:
        with open(a.ready_file, "w") as f:
            f.write("ready\n")
        while a.go_file and not os.path.exists(a.go_file) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    start.set()
    left = max(0.1, deadline - time.monotonic())
    done, pending = await asyncio.wait(tasks, timeout=left)
    for t in pending:
        t.cancel()
    errors, total = [], 0
    for i, t in enumerate(tasks):
        if t in pending:
            errors.append(f"connection {i}: not finished within {a.timeout}s")
        elif t.exception() is not None:
            errors.append(f"connection {i}: {type(t.exception()).__name__}: {t.exception()}")
        elif isinstance(t.result(), str):
            errors.append(t.result())
        else:
            total += t.result()
    return peak, errors, total


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--min-size", type=int, default=16 * 1024)
    p.add_argument("--max-size", type=int, default=64 * 1024)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--ready-file")
    p.add_argument("--go-file")
    a = p.parse_args()
    t0 = time.monotonic()
    peak, errors, total = asyncio.run(run(a))
    rec = {"ok": not errors and peak == a.n, "connections": a.n, "peak_open": peak,
           "bytes_echoed": total, "failed": len(errors), "errors": errors[:5],
           "secs": round(time.monotonic() - t0, 3)}
    print(json.dumps(rec), flush=True)
    if peak < a.n:
        print(f"streams.py: only {peak} of {a.n} connections were open at once",
              file=sys.stderr)
        sys.exit(1)
    if errors:
        print(f"streams.py: {len(errors)} of {a.n} connections failed; first: {errors[0]}",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
