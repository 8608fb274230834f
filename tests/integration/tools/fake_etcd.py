#!/usr/bin/env python3
"""fake_etcd.py: just enough of etcd's v3 JSON gateway for ferry's store, and the ways a
broken etcd (or something in front of it) can answer, on demand (stdlib only).

    fake_etcd.py --port-file FILE [--port N] [--put KEY=VALUE ...]

Binds 127.0.0.1 (port 0 unless --port), writes the port to --port-file atomically once
it accepts. One thread per connection, HTTP/1.1. Every request is logged to stdout as
one JSON line {"path", "mode", ...}; so is every control call.

The etcd part (keys and values base64, revisions int64 written as JSON strings, like
etcd's grpc-gateway):
  /v3/kv/range          key, range_end ("\\0": everything from key) -> header.revision,
                        kvs [{key, value, create_revision, mod_revision, version, lease}],
                        count
  /v3/kv/put            key, value, lease -> header.revision
  /v3/kv/deleterange    key, range_end -> header.revision, deleted
  /v3/kv/txn            compare (CREATE/MOD/VERSION/VALUE; EQUAL/GREATER/LESS/NOT_EQUAL),
                        success/failure of request_put/request_delete_range/request_range
  /v3/lease/grant       TTL -> {ID, TTL}; keepalive {ID} -> {result: {ID, TTL}};
                        revoke {ID} deletes the lease's keys (leases never expire here)
  /v3/auth/authenticate -> {token} (nothing is checked)
  /v3/watch             one create_request (key, range_end, start_revision): 200 chunked,
                        {"result": {header, created: true}} then one message per change
                        ({"result": {header, events: [{kv}|{type: "DELETE", kv}]}}),
                        history replayed from start_revision; a start_revision at or
                        below the control's "compact" is cancelled with
                        compact_revision, as etcd does. Each message is one chunk
                        ending in "\\n".

Control (the test switches behaviour without a restart): POST /_control with a JSON
object, answered {"mode", "revision"}:
  {"mode": M}          the behaviour below (and "good" to end a misbehaviour)
  {"once": true}       with a watch mode: back to "good" once one watch misbehaved
  {"key": K}           with a range_value_* mode: the key whose value is spoiled
  {"compact": R}       revisions up to R are compacted: a watch from there is cancelled
  {"kick": "compact"}  every open watch gets a cancel with compact_revision (a resync)
  {"kick": "close"}    every open watch ends cleanly (the terminating chunk)
  {"put": [K, V]}      a change, as etcdctl put would make it (K, V plain text)
  {"del": K}           etcdctl del
GET /_control answers the same object; GET /_state the keys and values as plain text.

Modes. Watch (an open watch acts on the switch; a new one after its "created"):
  watch_not_json       a line that is not JSON
  watch_no_result      a line that is JSON but has no "result" (nor "error")
  watch_truncated      a chunk that announces 4096 bytes, half a message, the close
  watch_huge           70 MiB without a newline, in 1 MiB chunks, as fast as it goes
  watch_huge_chunk     the same 70 MiB as one chunk
                       ({"bytes": N} with either: N bytes instead of 70 MiB)
  watch_hang           open watches end cleanly; new ones get no answer at all until
                       the mode changes (then the connection is closed)
Range (/v3/kv/range only):
  range_not_json       200 with a body that is not JSON
  range_array          200 with a JSON array
  range_kvs_not_list   200 with "kvs" an object
  range_500            500 {"error": "etcdserver: no leader", "code": 14}
  range_value_not_b64  the value of "key" is not base64
  range_value_huge     the value of "key" is 1 MiB + 1 byte (base64)
Watch events (a good stream otherwise):
  watch_value_not_b64  in events, the value of "key" is not base64
  watch_value_huge     in events, the value of "key" is 1 MiB + 1 byte (base64)
Unary calls:
  hang_unary           every /v3/kv/* and /v3/lease/* call gets no answer until the mode
                       changes (then the connection is closed); watches work
"""
import argparse
import base64
import http.server
import json
import os
import socket
import sys
import threading
import time

LOCK = threading.Condition()
LOG_LOCK = threading.Lock()
MAX_WAIT_S = 300            # no connection is held longer than this, whatever the mode
HUGE_BYTES = 70 * 1024 * 1024
MODES = {
    "good", "watch_not_json", "watch_no_result", "watch_truncated", "watch_huge",
    "watch_huge_chunk", "watch_hang", "range_not_json", "range_array",
    "range_kvs_not_list", "range_500", "range_value_not_b64", "range_value_huge",
    "watch_value_not_b64", "watch_value_huge", "hang_unary",
}


class State:
    """The keys, their history, the leases and the behaviour; guarded by LOCK."""

    def __init__(self):
        self.kv = {}            # key bytes -> dict(value, create, mod, version, lease)
        self.rev = 1
        self.history = []       # (rev, "PUT"|"DELETE", key, kv dict)
        self.compacted = 0
        self.leases = {}        # id -> ttl
        self.next_lease = 7
        self.mode = "good"
        self.spoil_key = b""
        self.once = False
        self.huge = HUGE_BYTES
        self.epoch = 0          # bumped by every control call: open handlers look again
        self.kick = None        # (epoch, "compact" | "close")
        self.stopping = False

    def put(self, key, value, lease=0):
        self.rev += 1
        old = self.kv.get(key)
        kv = {"value": value, "create": old["create"] if old else self.rev, "mod": self.rev,
              "version": old["version"] + 1 if old else 1, "lease": lease}
        self.kv[key] = kv
        self.history.append((self.rev, "PUT", key, dict(kv)))

    def delete(self, keys):
        if not keys:
            return 0
        self.rev += 1
        for k in keys:
            old = self.kv.pop(k)
            self.history.append((self.rev, "DELETE", k, dict(old, mod=self.rev)))
        return len(keys)

    def changed(self):
        self.epoch += 1
        LOCK.notify_all()


S = State()


def b64(b):
    return base64.b64encode(b).decode()


# What the value_* modes put in place of the chosen key's value.
SPOILED = {"range_value_not_b64": "!!not*base64!!", "watch_value_not_b64": "!!not*base64!!",
           "range_value_huge": b64(b"{" + b" " * (1 << 20)),
           "watch_value_huge": b64(b"{" + b" " * (1 << 20))}


def unb64(s):
    return base64.b64decode(s or "")


def in_range(key, start, end):
    if end == b"":
        return key == start
    if end == b"\0":
        return key >= start
    return start <= key < end


def kv_json(key, kv):
    return {"key": b64(key), "value": b64(kv["value"]),
            "create_revision": str(kv["create"]), "mod_revision": str(kv["mod"]),
            "version": str(kv["version"]), "lease": str(kv["lease"])}


def header():
    return {"cluster_id": "1", "member_id": "1", "revision": str(S.rev), "raft_term": "2"}


def log(**fields):
    with LOG_LOCK:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def range_of(req):
    start = unb64(req.get("key"))
    end = unb64(req.get("range_end"))
    return sorted(k for k in S.kv if in_range(k, start, end))


def do_range(req, spoil=None):
    keys = range_of(req)
    kvs = []
    for k in keys:
        j = kv_json(k, S.kv[k])
        if spoil is not None and k == S.spoil_key:
            j["value"] = spoil
        kvs.append(j)
    out = {"header": header(), "count": str(len(keys))}
    if kvs:                     # etcd omits empty lists
        out["kvs"] = kvs
    return out


def do_put(req):
    S.put(unb64(req.get("key")), unb64(req.get("value")), int(req.get("lease", 0) or 0))
    return {"header": header()}


def do_delete(req):
    n = S.delete(range_of(req))
    return {"header": header(), "deleted": str(n)}


def compare_holds(c):
    kv = S.kv.get(unb64(c.get("key")))
    target = c.get("target", "VERSION")
    field = {"CREATE": "create_revision", "MOD": "mod_revision", "VERSION": "version",
             "VALUE": "value"}[target]
    if target == "VALUE":
        have, want = (kv["value"] if kv else b""), unb64(c.get(field))
    else:
        attr = {"CREATE": "create", "MOD": "mod", "VERSION": "version"}[target]
        have, want = (kv[attr] if kv else 0), int(c.get(field, 0) or 0)
    res = c.get("result", "EQUAL")
    return {"EQUAL": have == want, "GREATER": have > want, "LESS": have < want,
            "NOT_EQUAL": have != want}[res]


def do_txn(req):
    ok = all(compare_holds(c) for c in req.get("compare", []))
    ops = req.get("success" if ok else "failure", [])
    resps = []
    # All of one transaction is one revision in etcd; close enough here: the puts and
    # deletes each take one, and the header carries the last.
    for op in ops:
        if "request_put" in op:
            do_put(op["request_put"])
            resps.append({"response_put": {"header": header()}})
        elif "request_delete_range" in op:
            resps.append({"response_delete_range": do_delete(op["request_delete_range"])})
        elif "request_range" in op:
            resps.append({"response_range": do_range(op["request_range"])})
    LOCK.notify_all()
    return {"header": header(), "succeeded": ok, "responses": resps}


def do_grant(req):
    lid = S.next_lease
    S.next_lease += 1
    ttl = int(req.get("TTL", 10) or 10)
    S.leases[lid] = ttl
    return {"header": header(), "ID": str(lid), "TTL": str(ttl)}


def do_keepalive(req):
    lid = int(req.get("ID", 0) or 0)
    ttl = S.leases.get(lid, 0)
    res = {"header": header(), "ID": str(lid)}
    if ttl:
        res["TTL"] = str(ttl)
    return {"result": res}


def do_revoke(req):
    lid = int(req.get("ID", 0) or 0)
    S.leases.pop(lid, None)
    S.delete([k for k, v in S.kv.items() if v["lease"] == lid])
    LOCK.notify_all()
    return {"header": header()}


UNARY = {
    "/v3/kv/range": do_range, "/v3/kv/put": do_put, "/v3/kv/deleterange": do_delete,
    "/v3/kv/txn": do_txn, "/v3/lease/grant": do_grant,
    "/v3/lease/keepalive": do_keepalive, "/v3/lease/revoke": do_revoke,
    "/v3/auth/authenticate": lambda req: {"header": header(), "token": "fake.token"},
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):     # stdout carries our JSON lines only
        pass

    def read_body(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, status, obj, raw=None):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def hang(self, mode):
        """No answer until the mode changes, then the connection closed without one."""
        end = time.monotonic() + MAX_WAIT_S
        with LOCK:
            while S.mode == mode and not S.stopping and time.monotonic() < end:
                LOCK.wait(0.5)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self):
        if self.path == "/_control":
            with LOCK:
                out = {"mode": S.mode, "revision": str(S.rev)}
            self.send_json(200, out)
        elif self.path == "/_state":
            with LOCK:
                text = "".join("%s=%s\n" % (k.decode(errors="replace"),
                                            v["value"].decode(errors="replace"))
                               for k, v in sorted(S.kv.items()))
            self.send_json(200, None, raw=text.encode())
        else:
            self.send_json(404, {"error": "not found", "code": 5})

    def do_POST(self):
        raw = self.read_body()
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            self.send_json(400, {"error": "bad json", "code": 3})
            return
        with LOCK:
            mode = S.mode
        log(path=self.path, mode=mode)
        if self.path == "/_control":
            self.control(req)
        elif self.path == "/v3/watch":
            self.watch(req.get("create_request") or {})
        elif self.path in UNARY:
            self.unary(req, mode)
        else:
            self.send_json(404, {"error": "unknown path", "code": 12})

    def control(self, req):
        if "mode" in req and req["mode"] not in MODES:
            self.send_json(400, {"error": "unknown mode %r" % req["mode"]})
            return
        with LOCK:
            if "mode" in req:
                S.mode = req["mode"]
                S.once = bool(req.get("once"))
            if "bytes" in req:
                S.huge = int(req["bytes"])
            if "key" in req:
                S.spoil_key = req["key"].encode()
            if "put" in req:
                S.put(req["put"][0].encode(), req["put"][1].encode())
            if "del" in req:
                k = req["del"].encode()
                S.delete([k] if k in S.kv else [])
            if "compact" in req:
                S.compacted = int(req["compact"])
            if "kick" in req:
                S.kick = (S.epoch + 1, req["kick"])
            S.changed()
            out = {"mode": S.mode, "revision": str(S.rev)}
        log(path="/_control", set=req, revision=out["revision"])
        self.send_json(200, out)

    def unary(self, req, mode):
        if mode == "hang_unary":
            self.hang(mode)
            return
        if self.path == "/v3/kv/range" and mode.startswith("range_"):
            if mode == "range_not_json":
                self.send_json(200, None, raw=b"<html>this is not etcd</html>\n")
            elif mode == "range_array":
                self.send_json(200, [1, 2, 3])
            elif mode == "range_kvs_not_list":
                with LOCK:
                    out = {"header": header(), "kvs": {"a": 1}, "count": "1"}
                self.send_json(200, out)
            elif mode == "range_500":
                self.send_json(500, {"error": "etcdserver: no leader", "code": 14,
                                     "message": "etcdserver: no leader"})
            elif mode in SPOILED:
                with LOCK:
                    out = do_range(req, spoil=SPOILED[mode])
                self.send_json(200, out)
            return
        with LOCK:
            out = UNARY[self.path](req)
            LOCK.notify_all()       # open watches: a change to send
        self.send_json(200, out)

    # ---- watch ----

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def message(self, obj):
        self.chunk(json.dumps({"result": obj}).encode() + b"\n")

    def watch(self, cr):
        start = unb64(cr.get("key"))
        end = unb64(cr.get("range_end"))
        from_rev = int(cr.get("start_revision", 0) or 0)
        with LOCK:
            mode = S.mode
            epoch = S.epoch
        if mode == "watch_hang":
            self.hang(mode)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        try:
            self.watch_loop(start, end, from_rev, epoch)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError) as e:
            log(path="/v3/watch", ended=type(e).__name__)

    def watch_loop(self, start, end, from_rev, epoch):
        # Messages are made under LOCK and sent outside it: a client that stops
        # reading blocks its own handler only.
        with LOCK:
            created = {"header": header(), "watch_id": "0", "created": True}
            cancel = {"header": header(), "watch_id": "0", "canceled": True,
                      "compact_revision": str(S.compacted),
                      "cancel_reason": "mvcc: required revision has been compacted"}
            compacted = from_rev and from_rev <= S.compacted
            sent = from_rev - 1 if from_rev else S.rev
            mode = S.mode
        self.message(created)
        if compacted:
            self.message(cancel)
            self.chunk(b"")
            return
        if self.misbehave(mode):
            return
        deadline = time.monotonic() + MAX_WAIT_S
        while time.monotonic() < deadline:
            out = []
            with LOCK:
                if S.epoch == epoch and S.rev <= sent and not S.stopping:
                    LOCK.wait(0.5)
                if S.stopping:
                    return
                kick = S.kick[1] if S.kick and S.kick[0] > epoch else None
                mode, epoch = S.mode, S.epoch
                for rev, kind, key, kv in S.history:
                    if rev <= sent or not in_range(key, start, end):
                        continue
                    ev = {"kv": kv_json(key, kv)}
                    if mode.startswith("watch_value_") and key == S.spoil_key:
                        ev["kv"]["value"] = SPOILED[mode]
                    if kind == "DELETE":
                        ev = {"type": "DELETE", "kv": {"key": b64(key),
                                                       "mod_revision": str(rev)}}
                    out.append({"header": {"revision": str(rev)}, "watch_id": "0",
                                "events": [ev]})
                sent = S.rev
                cancel = {"header": header(), "watch_id": "0", "canceled": True,
                          "compact_revision": str(S.rev),
                          "cancel_reason": "mvcc: required revision has been compacted"}
            for m in out:
                self.message(m)
            if kick == "compact":
                self.message(cancel)
                self.chunk(b"")
                return
            if kick == "close" or mode == "watch_hang":
                self.chunk(b"")
                return
            if self.misbehave(mode):
                return

    def misbehave(self, mode):
        """Do what a watch mode says; True when this stream is over."""
        if mode in ("watch_not_json", "watch_no_result", "watch_truncated", "watch_huge",
                    "watch_huge_chunk"):
            with LOCK:
                if S.mode != mode:
                    return False            # "once": another watch did it already
                if S.once:
                    S.mode = "good"
                    S.changed()
            log(path="/v3/watch", misbehaves=mode)
        if mode == "watch_not_json":
            self.chunk(b"this is not JSON {\n")
        elif mode == "watch_no_result":
            with LOCK:
                line = json.dumps({"header": header(), "events": []}).encode() + b"\n"
            self.chunk(line)
        elif mode == "watch_truncated":
            with LOCK:
                half = json.dumps({"result": {"header": header(), "events": []}}).encode()
            self.wfile.write(b"%x\r\n%s" % (4096, half[:len(half) // 2]))
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        elif mode == "watch_huge":
            block = b"x" * (1 << 20)
            self.chunk(b'{"result":"')
            for _ in range(S.huge // len(block)):
                self.chunk(block)
        elif mode == "watch_huge_chunk":
            block = b"x" * (1 << 20)
            self.wfile.write(b"%x\r\n" % (S.huge // len(block) * len(block)))
            for _ in range(S.huge // len(block)):
                self.wfile.write(block)
            self.wfile.write(b"\r\n")
            self.wfile.flush()
        else:
            return False
        # Wait for the client to hang up (it should: its stream is broken), bounded.
        self.connection.settimeout(30)
        try:
            while self.connection.recv(4096):
                pass
        except OSError:
            pass
        return True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--put", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    for item in a.put:
        k, _, v = item.partition("=")
        S.put(k.encode(), v.encode())
    srv = Server(("127.0.0.1", a.port), Handler)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    log(listening=srv.server_address[1])
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        with LOCK:
            S.stopping = True
            LOCK.notify_all()
        srv.server_close()


if __name__ == "__main__":
    main()
