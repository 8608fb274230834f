#!/usr/bin/env python3
"""ldap_client.py: a raw LDAPv3 client for ferry's ldap tests (Python 3 stdlib only).

    ldap_client.py --port PORT [--timeout S] STEP...

Connects to 127.0.0.1:PORT and runs the STEPs in order on that one connection; each
request step waits for its response(s). It prints one JSON line and exits 0 whatever
the server answered (the test reads the fields); 2 on a usage error.

Steps:
  bind                    anonymous simple bind
  bind=DN:PASSWORD        simple bind
  sasl=MECH               SASL bind with that mechanism, no credentials
  search=BASE:FILTER      subtree search; FILTER is (attr=value), (attr=*) or (&(..)(..))
  modify=DN:ATTR:VALUE    replace ATTR with VALUE
  add=DN:CN               add an organizationalRole DN with cn CN
  delete=DN               delete
  modrdn=DN:NEWRDN        modify DN (deleteoldrdn)
  compare=DN:ATTR:VALUE   compare (compareTrue 6 / compareFalse 5)
  whoami                  extended request 1.3.6.1.4.1.4203.1.11.3
  starttls                extended request 1.3.6.1.4.1.1466.20037 (no TLS follows)
  abandon=ID              abandon request (no response)
  unbind                  unbind request, then wait for the close
  raw=HEX                 send these bytes as they are (no response awaited)
  big=N                   send a well-formed search request of about N bytes (its filter
                          value fills it), from a thread, ignoring a reset while sending
  close                   wait for the server to close the connection (EOF / reset),
                          collecting what it sent before (a Notice of Disconnection)
  wait=FILE               wait until FILE exists (bounded by --timeout)
  touch=FILE              create FILE (with one line: not empty)
  sleep=SECONDS

Output: {"results": [{"step", "op", "id", "rc", "diag", "oid", "value", "entries",
"dns"}...],
"notice": {"id", "op", "rc", "diag", "oid"} or null (an unsolicited message with
messageID 0), "closed": null | "eof" | "reset" | "timeout", "error": text or null}.
When the connection ends (or a wait times out) the remaining steps are skipped.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time

OPS = {
    0x61: "bindResponse", 0x64: "searchResEntry", 0x65: "searchResDone",
    0x73: "searchResRef", 0x67: "modifyResponse", 0x69: "addResponse",
    0x6B: "delResponse", 0x6D: "modDNResponse", 0x6F: "compareResponse",
    0x78: "extendedResp", 0x79: "intermediateResponse",
}
OID_STARTTLS = "1.3.6.1.4.1.1466.20037"
OID_WHOAMI = "1.3.6.1.4.1.4203.1.11.3"


# --- BER encoding -----------------------------------------------------------------------
def enc_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + enc_len(len(content)) + content


def octets(s, tag=0x04):
    return tlv(tag, s.encode() if isinstance(s, str) else s)


def integer(n, tag=0x02):
    length = max(1, (n.bit_length() + 8) // 8)
    return tlv(tag, n.to_bytes(length, "big", signed=True))


def enum(n):
    return integer(n, 0x0A)


def seq(*parts, tag=0x30):
    return tlv(tag, b"".join(parts))


def message(mid, op):
    return seq(integer(mid), op)


def parse_filter(f):
    """(a=v), (a=*), (&(..)(..)) -> BER Filter."""
    if not (f.startswith("(") and f.endswith(")")):
        raise ValueError(f"filter {f!r}: want (attr=value)")
    inner = f[1:-1]
    if inner.startswith("&"):
        parts, depth, start = [], 0, None
        for i, ch in enumerate(inner[1:], 1):
            if ch == "(":
                if depth == 0:
                    start = i
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    parts.append(parse_filter(inner[start:i + 1]))
        return seq(*parts, tag=0xA0)
    attr, _, value = inner.partition("=")
    if value == "*":
        return octets(attr, 0x87)
    return seq(octets(attr), octets(value), tag=0xA3)


def search_req(base, filt, attrs=()):
    return seq(octets(base), enum(2), enum(0), integer(0), integer(0), tlv(0x01, b"\x00"),
               filt, seq(*[octets(a) for a in attrs]), tag=0x63)


# --- BER decoding -----------------------------------------------------------------------
def read_tlv(buf, pos):
    """(tag, content, next_pos) of the TLV at pos; raises IndexError when incomplete."""
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if pos + k > len(buf):
            raise IndexError
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    if pos + n > len(buf):
        raise IndexError
    return tag, buf[pos:pos + n], pos + n


def children(content):
    out, pos = [], 0
    while pos < len(content):
        tag, c, pos = read_tlv(content, pos)
        out.append((tag, c))
    return out


def decode_message(body):
    """An LDAPMessage's content -> dict(id, op, rc, diag, oid, dn)."""
    kids = children(body)
    mid = int.from_bytes(kids[0][1], "big", signed=True)
    tag, content = kids[1]
    rec = {"id": mid, "op": OPS.get(tag, f"0x{tag:02x}"), "tag": tag}
    if tag == 0x64:                                  # SearchResultEntry
        rec["dn"] = children(content)[0][1].decode(errors="replace")
    elif tag in OPS and tag not in (0x73, 0x79):     # an LDAPResult
        parts = children(content)
        rec["rc"] = int.from_bytes(parts[0][1], "big")
        rec["matched"] = parts[1][1].decode(errors="replace")
        rec["diag"] = parts[2][1].decode(errors="replace")
        for t, c in parts[3:]:
            if t == 0x8A:
                rec["oid"] = c.decode(errors="replace")
            elif t == 0x8B:
                rec["value"] = c.decode(errors="replace")
    return rec


class Conn:
    def __init__(self, port, timeout):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.settimeout(timeout)
        self.timeout = timeout
        self.buf = b""
        self.closed = None
        self.notice = None
        self.mid = 0

    def send(self, data):
        self.s.sendall(data)

    def next_id(self):
        self.mid += 1
        return self.mid

    def recv_message(self):
        """The next LDAPMessage as a dict, or None when the connection ended (closed set).
        Unsolicited messages (messageID 0) are kept in self.notice and skipped."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                tag, body, end = read_tlv(self.buf, 0)
                self.buf = self.buf[end:]
                rec = decode_message(body)
                if rec["id"] == 0:
                    self.notice = rec
                    continue
                return rec
            except IndexError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                self.closed = "timeout"
                return None
            self.s.settimeout(left)
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                self.closed = "timeout"
                return None
            except ConnectionResetError:
                self.closed = "reset"
                return None
            if not data:
                self.closed = "eof"
                return None
            self.buf += data

    def wait_close(self):
        while self.closed is None:
            rec = self.recv_message()
            if rec is not None:
                self.notice = self.notice or {"unexpected": rec}


def result_of(conn, step, done_tags):
    """Read responses until one whose tag is in done_tags: the step's result record."""
    entries, dns = 0, []
    while True:
        rec = conn.recv_message()
        if rec is None:
            return {"step": step, "op": None, "entries": entries, "dns": dns}
        if rec["tag"] == 0x64:
            entries += 1
            dns.append(rec["dn"])
            continue
        if rec["tag"] == 0x73:
            continue
        if rec["tag"] in done_tags:
            rec.pop("tag")
            rec.update(step=step, entries=entries, dns=dns)
            return rec
        # Some other response: record it as the step's (a mismatch the test will see).
        rec.pop("tag")
        rec.update(step=step, entries=entries, dns=dns, mismatch=True)
        return rec


def run(a):
    out = {"results": [], "notice": None, "closed": None, "error": None}
    try:
        conn = Conn(a.port, a.timeout)
    except OSError as e:
        out["error"] = f"connect: {e}"
        out["closed"] = "refused"
        return out
    for step in a.steps:
        name, _, arg = step.partition("=")
        try:
            if name == "bind":
                dn, _, pw = arg.partition(":") if arg else ("", "", "")
                mid = conn.next_id()
                conn.send(message(mid, seq(integer(3), octets(dn), octets(pw, 0x80), tag=0x60)))
                out["results"].append(result_of(conn, step, {0x61}))
            elif name == "sasl":
                mid = conn.next_id()
                conn.send(message(mid, seq(integer(3), octets(""), seq(octets(arg), tag=0xA3),
                                           tag=0x60)))
                out["results"].append(result_of(conn, step, {0x61}))
            elif name == "search":
                base, _, filt = arg.partition(":")
                mid = conn.next_id()
                conn.send(message(mid, search_req(base, parse_filter(filt or "(objectClass=*)"))))
                out["results"].append(result_of(conn, step, {0x65}))
            elif name == "modify":
                dn, attr, value = arg.split(":", 2)
                change = seq(enum(2), seq(octets(attr), seq(octets(value), tag=0x31)))
                conn.send(message(conn.next_id(), seq(octets(dn), seq(change), tag=0x66)))
                out["results"].append(result_of(conn, step, {0x67}))
            elif name == "add":
                dn, _, cn = arg.partition(":")
                attrs = seq(seq(octets("objectClass"), seq(octets("organizationalRole"), tag=0x31)),
                            seq(octets("cn"), seq(octets(cn), tag=0x31)))
                conn.send(message(conn.next_id(), seq(octets(dn), attrs, tag=0x68)))
                out["results"].append(result_of(conn, step, {0x69}))
            elif name == "delete":
                conn.send(message(conn.next_id(), octets(arg, 0x4A)))
                out["results"].append(result_of(conn, step, {0x6B}))
            elif name == "modrdn":
                dn, _, rdn = arg.partition(":")
                conn.send(message(conn.next_id(), seq(octets(dn), octets(rdn), tlv(0x01, b"\xff"),
                                                      tag=0x6C)))
                out["results"].append(result_of(conn, step, {0x6D}))
            elif name == "compare":
                dn, attr, value = arg.split(":", 2)
                conn.send(message(conn.next_id(), seq(octets(dn), seq(octets(attr), octets(value)),
                                                      tag=0x6E)))
                out["results"].append(result_of(conn, step, {0x6F}))
            elif name in ("whoami", "starttls"):
                oid = OID_WHOAMI if name == "whoami" else OID_STARTTLS
                conn.send(message(conn.next_id(), seq(octets(oid, 0x80), tag=0x77)))
                out["results"].append(result_of(conn, step, {0x78}))
            elif name == "abandon":
                conn.send(message(conn.next_id(), integer(int(arg), 0x50)))
            elif name == "unbind":
                conn.send(message(conn.next_id(), tlv(0x42, b"")))
                conn.wait_close()
            elif name == "raw":
                conn.send(bytes.fromhex(arg))
            elif name == "big":
                n = int(arg)
                filt = seq(octets("cn"), octets(b"x" * n), tag=0xA3)
                data = message(conn.next_id(), search_req(LDAP_BASE, filt))

                def pump():
                    try:
                        conn.s.sendall(data)
                    except OSError:
                        pass
                t = threading.Thread(target=pump, daemon=True)
                t.start()
            elif name == "close":
                conn.wait_close()
            elif name == "wait":
                deadline = time.monotonic() + a.timeout
                while not os.path.exists(arg) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if not os.path.exists(arg):
                    out["error"] = f"{arg} did not appear within {a.timeout}s"
                    break
            elif name == "touch":
                with open(arg, "w") as f:
                    f.write("ready\n")
            elif name == "sleep":
                time.sleep(float(arg))
            else:
                print(f"ldap_client.py: unknown step {step!r}", file=sys.stderr)
                sys.exit(2)
        except (BrokenPipeError, ConnectionResetError):
            conn.closed = conn.closed or "reset"
        if conn.closed is not None:
            break
    out["closed"] = conn.closed
    if conn.notice is not None:
        n = dict(conn.notice)
        n.pop("tag", None)
        out["notice"] = n
    return out


LDAP_BASE = "dc=example,dc=org"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("steps", nargs="+")
    a = p.parse_args()
    print(json.dumps(run(a)), flush=True)


if __name__ == "__main__":
    main()
