#!/usr/bin/env python3
"""memscan.py PID STRING...: how often each STRING occurs in the memory of process PID.

Reads every readable mapping from /proc/PID/maps through /proc/PID/mem (root, or the
same user with ptrace allowed) and prints one JSON object {STRING: count}. Mappings
larger than 1 GiB are skipped (a sanitizer's shadow memory is terabytes of zero pages)
and named in "skipped"; [vvar] and [vsyscall] cannot be read and are left out too.
Exit status 0 when the scan ran, 2 when the process could not be read at all.
"""
import json
import re
import sys

MAX_REGION = 1 << 30
CHUNK = 16 << 20


def main():
    if len(sys.argv) < 3:
        print("usage: memscan.py PID STRING...", file=sys.stderr)
        return 2
    pid = int(sys.argv[1])
    needles = [s.encode() for s in sys.argv[2:]]
    longest = max(len(n) for n in needles)
    counts = {n: 0 for n in needles}
    skipped, scanned = [], 0
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
    except OSError as e:
        print(f"memscan.py: cannot read process {pid}: {e}", file=sys.stderr)
        return 2
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
        if m is None or m.group(3)[0] != "r":
            continue
        if "[vvar" in line or "[vsyscall]" in line:
            continue
        lo, hi = int(m.group(1), 16), int(m.group(2), 16)
        if hi - lo > MAX_REGION:
            skipped.append(line)
            continue
        tail = b""
        for off in range(lo, hi, CHUNK):
            try:
                mem.seek(off)
                data = mem.read(min(CHUNK, hi - off))
            except OSError:
                break
            scanned += len(data)
            buf = tail + data
            for n in needles:
                # Counted where the match ends in this chunk's part: one across a chunk
                # boundary is found once, through the carried tail.
                start = 0
                while True:
                    i = buf.find(n, start)
                    if i < 0:
                        break
                    if i + len(n) > len(tail):
                        counts[n] += 1
                    start = i + 1
            tail = buf[-(longest - 1):] if longest > 1 else b""
    print(json.dumps({"counts": {k.decode(): v for k, v in counts.items()},
                      "scanned": scanned, "skipped": skipped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
