#!/usr/bin/env python3
"""secret_sweep.py: look for secrets where ferry must never put them (stdlib only).

    secret_sweep.py --secrets FILE [--control NAME@LABEL ...] LABEL=PATH ...

--secrets is a TSV file, one secret a line:

    NAME <TAB> VALUE [<TAB> ALLOWED]

NAME says what it is (it is printed; VALUE never is, only a redacted prefix). ALLOWED
is a comma-separated list of fnmatch patterns of place LABELs where this secret may
appear by design (the destination API's find answer to the owning tenant, say); empty:
nowhere. Each place is LABEL=PATH: a file, or a directory whose files are read
recursively (each labelled LABEL/relative-path, so a pattern like api-owner/* exempts
a directory of answers).

Each secret is looked for in several forms: as is, base64 (standard and URL-safe,
padding stripped), hex, and — so a log that truncates or splits a secret is still
caught — its "signature" part for a JWT (the third dot-separated segment) or, for a
value of 20 characters or more, its first and its last 16 characters. A form shorter than 8
characters is not looked for (it would match by chance).

--control NAME@LABEL: the secret NAME must be found in the place LABEL (fnmatch);
this proves the scan sees what it is given (an API answer really captured, say).

Exit 0: no leak and every control found; 1: a leak (one line per secret and place:
"LEAK: <name> (<redacted>) as <form> in <label>:<line>") or a missing control; 2: usage.
"""
import argparse
import base64
import fnmatch
import os
import sys

MIN_FORM = 8


def redact(value):
    return "%s... (%d chars)" % (value[:4], len(value))


def forms(value):
    """(form name, bytes) to look for."""
    raw = value.encode()
    out = [("as is", raw)]
    b64 = base64.b64encode(raw).rstrip(b"=")
    out.append(("base64", b64))
    url = base64.urlsafe_b64encode(raw).rstrip(b"=")
    if url != b64:
        out.append(("base64url", url))
    out.append(("hex", raw.hex().encode()))
    parts = value.split(".")
    if len(parts) == 3 and all(parts):
        out.append(("its JWT signature", parts[2].encode()))
    elif len(value) >= 20:
        out.append(("its first 16 characters", raw[:16]))
        out.append(("its last 16 characters", raw[-16:]))
    return [(n, b) for n, b in out if len(b) >= MIN_FORM]


def read_secrets(path):
    secrets = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < 2 or not cols[1]:
                sys.exit("secret_sweep.py: %s:%d: want NAME<TAB>VALUE[<TAB>ALLOWED]" % (path, n))
            allowed = [p for p in (cols[2].split(",") if len(cols) > 2 else []) if p]
            secrets.append((cols[0], cols[1], allowed))
    return secrets


def places(specs):
    """(label, path) of every file named by LABEL=PATH arguments."""
    out = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label:
            sys.exit("secret_sweep.py: want LABEL=PATH, got %r" % spec)
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                for name in sorted(files):
                    full = os.path.join(root, name)
                    out.append((label + "/" + os.path.relpath(full, path), full))
        elif os.path.exists(path):
            out.append((label, path))
        else:
            sys.exit("secret_sweep.py: place %s: %s does not exist" % (label, path))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--secrets", required=True)
    p.add_argument("--control", action="append", default=[])
    p.add_argument("place", nargs="+")
    a = p.parse_args()
    secrets = read_secrets(a.secrets)
    files = places(a.place)
    found = {}          # (secret name, label) -> first (form, line)
    for label, path in files:
        with open(path, "rb") as f:
            data = f.read()
        for name, value, _ in secrets:
            for form, needle in forms(value):
                at = data.find(needle)
                if at >= 0 and (name, label) not in found:
                    found[(name, label)] = (form, data.count(b"\n", 0, at) + 1)
    leaks = 0
    for name, value, allowed in secrets:
        for label, _ in files:
            hit = found.get((name, label))
            if hit is None or any(fnmatch.fnmatchcase(label, pat) for pat in allowed):
                continue
            print("LEAK: %s (%s) as %s in %s:%d" % (name, redact(value), hit[0], label, hit[1]))
            leaks += 1
    missing = 0
    for spec in a.control:
        name, _, pat = spec.partition("@")
        if not any(n == name and fnmatch.fnmatchcase(lab, pat) for n, lab in found):
            print("CONTROL MISSING: %s was not found in %s: the sweep does not see it" % (name, pat))
            missing += 1
    print("swept %d secrets (%d forms) over %d files: %d leak(s), %d control(s) missing"
          % (len(secrets), sum(len(forms(v)) for _, v, _ in secrets), len(files), leaks,
             missing))
    return 1 if leaks or missing else 0


if __name__ == "__main__":
    sys.exit(main())
