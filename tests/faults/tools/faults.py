#!/usr/bin/env python3
"""faults.py: clients and servers for the fault suite (tests/faults/*.sh; stdlib only).

    faults.py downloads --ports P1,P2.. --n N --bytes B --seed S [--ready-file F]
                        [--timeout T]
        N connections at once to each 127.0.0.1:Pg (group g), each reading to its end
        what a `slow` origin (tests/integration/tools/origin.py, --hold-file) sends: B
        bytes of random.Random(S).randbytes(B). Once every connection has received at
        least 40 % of B, --ready-file is written (the origin is then holding the second
        half); once every connection of group g has ended, F.done<g> (holding the
        time.time() of that moment). Prints one JSON line; per group: counts per end
        ("ok": all B bytes and equal to the payload; "short": a clean EOF before B;
        "reset"; "mismatch": B bytes that differ; "timeout"), bytes and ended_at. Exit 0:
        the test judges the counts.

    faults.py reset-origin --port-file F --trigger-dir D
        An origin that answers, then resets (RST: SO_LINGER 0) once the client has read
        part of the body. A first line "GET /<framing>/<id> ..." (an HTTP request) picks
        the framing of the response: cl (Content-Length), chunked, eof (delimited by the
        close); "RAW <id>\\n" (tcp) gets raw bytes. After a head and BODY_FIRST bytes the
        origin waits (up to 60 s) for D/<id>, then resets. framing "clean-eof" sends the
        whole body and closes cleanly instead (the client's control case).

    faults.py truncation --trigger-dir D --case PORT:FRAMING:ID:WANT [--case ...]
        The client of reset-origin, one case after another: sends the request, reads the
        head and at least 16 KiB of body, creates D/<id>, reads on until the end. Prints
        one JSON line per case {"id", "status", "body", "end": "reset"|"eof"|"timeout",
        "verdict", "want", "pass"}; the verdict is "signalled" when the end cannot be
        taken for a whole response (a reset, fewer bytes than Content-Length, no last
        chunk), else "clean" (or "timeout"). Exit 1 unless every verdict is its WANT.

    faults.py put-loop --admin P --token T --name N --url U --acked FILE [--count K]
        PUT /destination-configuration/v1/subaccountDestinations versions FIRST.. of
        destination N (version 0 is a POST: the create) (each with Custom.version and BLOBS properties of BLOB_BYTES
        derived from the version), one after another; after each 200 the version is
        appended to FILE (flushed). Stops at the first failure (the gateway killed).

    faults.py put-verify --admin P --token T --name N --acked FILE
        GET the destination; its Custom.version must be the last acknowledged version or
        the one after it (in flight at the kill), and every blob must be exactly that
        version's. Exit 0 and a JSON line, or exit 1 with what differs.

    faults.py token-hang --port L --ports L2,L3 --service-port S [--n N] [--timeout T]
        N GETs at once to listener L (a destination whose token service on port S is
        stopped); once ferry's token request sits in S's accept queue, N GETs one after
        another to each of L2, L3.. (destinations that do not need S). Prints one JSON
        line: the hung requests' distinct answers ("status ferry-error") and their
        fastest and slowest time, the others' answers and slowest time, and whether the
        others were all answered before the first hung request was.

    faults.py put-body --name N --url U --first V --count K --out-dir D
        The bodies put-loop would send for versions V..V+K-1, as D/<version>.json.

    faults.py slowloris --port P --n N --ready-file F [--interval S] [--timeout T]
        N connections that send a request head one byte every --interval seconds and
        never finish it. --ready-file is written once all N are open and have sent their
        first bytes. Ends when every connection was closed by the peer or at --timeout;
        prints {"opened", "closed_by_peer", "answered_408", "still_open", "secs"}.
"""
import argparse
import asyncio
import hashlib
import http.client
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request

CHUNK = 256 * 1024
BODY_FIRST = 64 * 1024          # reset-origin: body bytes sent before it waits
BODY_TOTAL = 1024 * 1024        # reset-origin: the body the head announces
BLOBS = 4                       # put-loop: properties per version
BLOB_BYTES = 16 * 1024          # put-loop: bytes per property


# ---- downloads -------------------------------------------------------------------------

async def one_download(a, port, want, halfway, results, key):
    got = bytearray()
    end = "timeout"
    w = None
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        counted = False
        while True:
            b = await r.read(CHUNK)
            if not b:
                end = "eof"
                break
            got += b
            if not counted and len(got) >= len(want) * 2 // 5:     # the origin holds at ~1/2
                counted = True
                halfway.add(key)
    except ConnectionResetError:
        end = "reset"
    except OSError as e:
        end = f"error {type(e).__name__}: {e}"
    finally:
        if w is not None:
            w.close()
    if end == "eof" and len(got) == len(want):
        ok = hashlib.sha256(got).digest() == hashlib.sha256(want).digest()
        results[key] = ("ok" if ok else "mismatch", len(got))
    elif end == "eof":
        results[key] = ("short", len(got))
    else:
        results[key] = (end if end in ("reset", "timeout") else "error", len(got))
        if results[key][0] == "error":
            results.setdefault("errors", []).append(f"connection {key}: {end}")


def write_flag(path):
    with open(path + ".tmp", "w") as f:
        f.write("%.3f\n" % time.time())
    os.rename(path + ".tmp", path)


async def downloads_main(a):
    want = random.Random(a.seed).randbytes(a.bytes)
    ports = [int(p) for p in a.ports.split(",")]
    halfway, results = set(), {}
    deadline = time.monotonic() + a.timeout
    groups = [[asyncio.create_task(one_download(a, port, want, halfway, results, (g, i)))
               for i in range(a.n)] for g, port in enumerate(ports)]
    tasks = [t for g in groups for t in g]
    ready, done, ended_at = False, set(), {}
    while time.monotonic() < deadline and not all(t.done() for t in tasks):
        if not ready and len(halfway) == len(tasks) and a.ready_file:
            write_flag(a.ready_file)
            ready = True
        for g, group in enumerate(groups):
            if g not in done and all(t.done() for t in group):
                done.add(g)
                ended_at[g] = time.time()
                if a.ready_file:
                    write_flag(f"{a.ready_file}.done{g}")
        await asyncio.sleep(0.02)
    for g, group in enumerate(groups):
        if g not in ended_at and all(t.done() for t in group):
            ended_at[g] = time.time()
    for t in tasks:
        if not t.done():
            t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    errors = results.pop("errors", [])
    out = []
    for g, port in enumerate(ports):
        counts, nbytes = {}, 0
        for i in range(a.n):
            k, got = results.get((g, i), ("timeout", 0))
            counts[k] = counts.get(k, 0) + 1
            nbytes += got
        out.append({"port": port, "ends": counts, "bytes": nbytes,
                    "ended_at": ended_at.get(g)})
    return {"n": a.n, "halfway": len(halfway), "ready": ready, "groups": out,
            "errors": errors[:5]}


def cmd_downloads(a):
    t0 = time.monotonic()
    rec = asyncio.run(downloads_main(a))
    rec["secs"] = round(time.monotonic() - t0, 3)
    print(json.dumps(rec), flush=True)


# ---- reset-origin ----------------------------------------------------------------------

def reset_now(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def read_line(conn):
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < 4096:
        b = conn.recv(1)
        if not b:
            break
        buf += b
    return buf.decode("latin-1")


def origin_handle(a, conn):
    try:
        line = read_line(conn).split()
        if len(line) >= 2 and line[0] == "RAW":
            framing, ident = "raw", line[1]
        elif len(line) >= 2 and line[1].count("/") == 2:
            _, framing, ident = line[1].split("/")
            while read_line(conn) not in ("\r\n", "\n", ""):
                pass
        else:
            conn.close()
            return
        body = random.Random(ident).randbytes(BODY_TOTAL)
        head = b""
        if framing == "cl":
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BODY_TOTAL
        elif framing == "chunked":
            head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        elif framing in ("eof", "clean-eof"):
            head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
        if framing == "clean-eof":
            conn.sendall(head + body)
            conn.close()
            return
        first = body[:BODY_FIRST]
        if framing == "chunked":
            first = b"%x\r\n" % len(first) + first + b"\r\n"
        conn.sendall(head + first)
        trigger = os.path.join(a.trigger_dir, ident)
        end = time.monotonic() + 60
        while not os.path.exists(trigger) and time.monotonic() < end:
            time.sleep(0.01)
        reset_now(conn)
    except OSError:
        conn.close()


def cmd_reset_origin(a):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(f"{ls.getsockname()[1]}\n")
    os.rename(a.port_file + ".tmp", a.port_file)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=origin_handle, args=(a, conn), daemon=True).start()


# ---- truncation ------------------------------------------------------------------------

def chunked_complete(body):
    """Whether body is a whole chunked message (ends with its last chunk)."""
    i = 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            return False
        size = int(body[i:j].split(b";")[0], 16)
        if size == 0:
            return body.find(b"\r\n", j + 2) >= 0
        i = j + 2 + size + 2
        if i > len(body):
            return False


def truncation_case(a, port, framing, ident):
    s = socket.create_connection(("127.0.0.1", port), timeout=a.timeout)
    if framing == "raw":
        s.sendall(f"RAW {ident}\n".encode())
    else:
        s.sendall(f"GET /{framing}/{ident} HTTP/1.1\r\nHost: origin\r\n\r\n".encode())
    data = bytearray()
    head_len = 0 if framing == "raw" else None
    triggered = False
    end = "timeout"
    t0 = time.monotonic()
    deadline = t0 + a.timeout
    try:
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            b = s.recv(CHUNK)
            if not b:
                end = "eof"
                break
            data += b
            if head_len is None and b"\r\n\r\n" in data:
                head_len = data.index(b"\r\n\r\n") + 4
            if not triggered and head_len is not None and len(data) - head_len >= 16384:
                open(os.path.join(a.trigger_dir, ident), "w").close()
                triggered = True
    except ConnectionResetError:
        end = "reset"
    except socket.timeout:
        end = "timeout"
    finally:
        s.close()
    head = bytes(data[:head_len or 0]).decode("latin-1")
    body = bytes(data[head_len or 0:]) if head_len is not None else b""
    status = head.split(" ")[1] if head.startswith("HTTP/") else ""
    fields = {ln.split(":", 1)[0].strip().lower(): ln.split(":", 1)[1].strip()
              for ln in head.split("\r\n")[1:] if ":" in ln}
    if end == "timeout":
        verdict = "timeout"
    elif end == "reset":
        verdict = "signalled"
    elif "content-length" in fields:
        verdict = "clean" if len(body) >= int(fields["content-length"]) else "signalled"
    elif fields.get("transfer-encoding", "").lower() == "chunked":
        verdict = "clean" if chunked_complete(body) else "signalled"
    else:
        verdict = "clean"       # delimited by the close: a FIN looks like a whole body
    return {"id": ident, "status": status, "triggered": triggered, "body": len(body),
            "end": end, "verdict": verdict, "secs": round(time.monotonic() - t0, 3),
            "head": head.split("\r\n")[:4]}


def cmd_truncation(a):
    """Each --case PORT:FRAMING:ID:WANT in turn; exit 1 if any verdict is not WANT (or
    the head and 16 KiB of body never came)."""
    bad = 0
    for case in a.case:
        port, framing, ident, want = case.split(":")
        rec = truncation_case(a, int(port), framing, ident)
        rec["want"] = want
        rec["pass"] = (rec["verdict"] == want and rec["triggered"] and
                       (framing == "raw" or rec["status"] == "200"))
        bad += not rec["pass"]
        print(json.dumps(rec), flush=True)
    sys.exit(1 if bad else 0)


# ---- put-loop / put-verify -------------------------------------------------------------

def blob(version, i):
    h = hashlib.sha256(f"{version}/{i}".encode()).hexdigest()
    return (h * (BLOB_BYTES // len(h) + 1))[:BLOB_BYTES]


def dest_body(name, url, version):
    d = {"Name": name, "Type": "HTTP", "URL": url, "ProxyType": "Internet",
         "Custom.version": str(version)}
    for i in range(BLOBS):
        d[f"Custom.blob{i}"] = blob(version, i)
    return d


def api(a, method, path, body=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{a.admin}/destination-configuration/v1{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {a.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=a.timeout) as r:
        return r.status, r.read()


def cmd_put_loop(a):
    with open(a.acked, "a") as out:
        for v in range(a.first, a.first + a.count):
            try:
                status, _ = api(a, "POST" if v == 0 else "PUT", "/subaccountDestinations",
                                dest_body(a.name, a.url, v))
                status = 200 if status == 201 else status
            except (OSError, urllib.error.URLError) as e:
                print(json.dumps({"stopped_at": v, "error": str(e)}), flush=True)
                return
            if status != 200:
                print(json.dumps({"stopped_at": v, "status": status}), flush=True)
                sys.exit(1)
            out.write(f"{v}\n")
            out.flush()
    print(json.dumps({"done": a.count}), flush=True)


def cmd_put_body(a):
    """Write the PUT bodies of versions FIRST.. as D/<version>.json (for curl)."""
    for v in range(a.first, a.first + a.count):
        with open(os.path.join(a.out_dir, f"{v}.json"), "w") as f:
            json.dump(dest_body(a.name, a.url, v), f)


def cmd_put_verify(a):
    lines = open(a.acked).read().split()
    last = int(lines[-1]) if lines else 0
    status, raw = api(a, "GET", f"/destinations/{a.name}")
    conf = json.loads(raw)["destinationConfiguration"]
    v = int(conf.get("Custom.version", "-1"))
    problems = []
    if v not in (last, last + 1):
        problems.append(f"version {v}, want {last} (acknowledged) or {last + 1} (in flight)")
    want = dest_body(a.name, a.url, v)
    for k, val in want.items():
        if conf.get(k) != val:
            problems.append(f"{k}: {len(conf.get(k) or '')} bytes, not version {v}'s")
    extra = sorted(k for k in conf if k.startswith("Custom.") and k not in want)
    if extra:
        problems.append(f"properties no version has: {extra}")
    print(json.dumps({"acked": last, "version": v, "problems": problems[:5]}), flush=True)
    sys.exit(1 if problems else 0)


# ---- token-hang ------------------------------------------------------------------------

def accept_queue(port):
    """Connections waiting in the accept queue of the listener on 127.0.0.1:port (for a
    LISTEN socket /proc/net/tcp's rx_queue is that count), or -1 without such a socket."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                return int(fields[4].split(":")[1], 16)
    return -1


def timed_get(port, timeout):
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", "/echo")
        r = c.getresponse()
        r.read()
        rec = {"status": r.status, "error": r.getheader("ferry-error") or ""}
        c.close()
    except OSError as e:
        rec = {"status": 0, "error": f"{type(e).__name__}: {e}"}
    rec["secs"] = round(time.monotonic() - t0, 3)
    rec["end"] = time.monotonic()
    return rec


def cmd_token_hang(a):
    hung, others = [], []
    lock = threading.Lock()

    def one():
        rec = timed_get(a.port, a.timeout)
        with lock:
            hung.append(rec)

    threads = [threading.Thread(target=one) for _ in range(a.n)]
    for t in threads:
        t.start()
    # The gateway's token request is in the hung service's accept queue: the requests
    # above wait on it now.
    deadline = time.monotonic() + a.timeout
    while accept_queue(a.service_port) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    queued = accept_queue(a.service_port)
    for port in [int(p) for p in a.ports.split(",")]:
        for _ in range(a.n):
            others.append(dict(timed_get(port, a.timeout), port=port))
    with lock:
        overlapped = len(hung) == 0
    for t in threads:
        t.join()
    first_hung_end = min(r["end"] for r in hung)
    last_other_end = max(r["end"] for r in others)
    print(json.dumps({
        "queued": queued,
        "hung": {"answers": sorted({f"{r['status']} {r['error']}" for r in hung}),
                 "min_secs": min(r["secs"] for r in hung),
                 "max_secs": max(r["secs"] for r in hung)},
        "others": {"answers": list(dict.fromkeys(f"{r['port']} {r['status']}" for r in others)),
                   "max_secs": max(r["secs"] for r in others)},
        "others_done_first": overlapped and last_other_end < first_hung_end}), flush=True)


# ---- slowloris -------------------------------------------------------------------------

async def one_loris(a, opened, closed, answers):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", a.port)
    except OSError:
        return
    head = b"GET / HTTP/1.1\r\nHost: loris\r\n" + b"X-Slow: " + b"a" * 4000
    try:
        w.write(head[:16])
        await w.drain()
        opened.append(1)
        for i in range(16, len(head)):
            try:
                b = await asyncio.wait_for(r.read(4096), timeout=a.interval)
            except asyncio.TimeoutError:
                w.write(head[i:i + 1])
                await w.drain()
                continue
            if b:
                answers.append(b)
            closed.append(1)
            return
    except OSError:
        closed.append(1)
    finally:
        w.close()


async def loris_main(a):
    opened, closed, answers = [], [], []
    tasks = []
    for _ in range(a.n):
        tasks.append(asyncio.create_task(one_loris(a, opened, closed, answers)))
        if len(tasks) % 200 == 0:
            await asyncio.sleep(0)          # let the connects go out in batches
    deadline = time.monotonic() + a.timeout
    ready = False
    while time.monotonic() < deadline and not all(t.done() for t in tasks):
        if not ready and len(opened) == a.n:
            with open(a.ready_file + ".tmp", "w") as f:
                f.write("ready\n")
            os.rename(a.ready_file + ".tmp", a.ready_file)
            ready = True
        await asyncio.sleep(0.05)
    still = sum(1 for t in tasks if not t.done())
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"opened": len(opened), "ready": ready, "closed_by_peer": len(closed),
            "answered_408": sum(1 for b in answers if b.startswith(b"HTTP/1.1 408")),
            "still_open": still}


def cmd_slowloris(a):
    t0 = time.monotonic()
    rec = asyncio.run(loris_main(a))
    rec["secs"] = round(time.monotonic() - t0, 3)
    print(json.dumps(rec), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["downloads", "reset-origin", "truncation",
                                       "put-loop", "put-verify", "slowloris",
                                       "token-hang", "put-body"])
    p.add_argument("--port", type=int)
    p.add_argument("--ports")
    p.add_argument("--service-port", type=int)
    p.add_argument("--port-file")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--bytes", type=int, default=256 * 1024)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ready-file")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--trigger-dir")
    p.add_argument("--case", action="append", default=[])
    p.add_argument("--admin", type=int)
    p.add_argument("--token")
    p.add_argument("--name")
    p.add_argument("--url")
    p.add_argument("--acked")
    p.add_argument("--out-dir")
    p.add_argument("--first", type=int, default=1)
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--interval", type=float, default=1.0)
    a = p.parse_args()
    {"downloads": cmd_downloads, "reset-origin": cmd_reset_origin,
     "truncation": cmd_truncation, "put-loop": cmd_put_loop, "put-verify": cmd_put_verify,
     "slowloris": cmd_slowloris, "token-hang": cmd_token_hang,
     "put-body": cmd_put_body}[a.command](a)


if __name__ == "__main__":
    main()
