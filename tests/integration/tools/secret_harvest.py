#!/usr/bin/env python3
"""secret_harvest.py: the secrets of a test's configurations, looked for in its ferry logs.

    secret_harvest.py IT_ROOT [FERRY_LOG ...]

lib.sh's cleanup runs this at the end of every integration test (FERRY_SECRET_HARVEST=0
turns it off), before the test's temporary root IT_ROOT is removed:

- every *.yaml / *.yml / *.json under IT_ROOT that parses is read for the values of the
  keys that hold secrets (SECRET_KEYS: a tenant's or connector's `token`, the store's
  `password`, a destination's Password, clientSecret, ...KeyStorePassword, ...);
  `${env:NAME}` is resolved from this process's environment (the test's exports) and
  `${file:PATH}` from the file (relative to the configuration's directory); a value
  that cannot be resolved, or is shorter than MIN_LEN, is left out;
- the logs searched are the FERRY_LOG arguments (the output of every process start_bg
  ran from $BUILD/core/ferry) and the access and audit logs the configurations name
  (`access:`, `audit_log:`);
- a secret found as is, in base64 or as hex is reported and the exit status is 1:
  "secret of <file>:<key> (<redacted>) found in <log>:<line>". Never the value.

This is the cheap, automatic half of the secrets sweep: it sees only the secrets the
tests wrote into files and the logs ferry wrote, not the credentials clients send nor
the answers of the admin API (tests/integration/secrets_sweep.sh does those).
"""
import base64
import json
import os
import re
import sys

try:
    import yaml
except ImportError:         # python3-yaml missing: JSON configurations only
    yaml = None

MIN_LEN = 8
SECRET_KEYS = {
    # gateway tenants, connector, store
    "token", "password",
    # destination properties (core/dest/dest-props.c, ferry_dest_prop_is_secret)
    "Password", "clientSecret", "tokenServicePassword", "KeyStorePassword",
    "TrustStorePassword", "ldap.password", "jco.client.passwd", "mail.password",
    "tokenService.KeyStorePassword", "jco.client.tech_user_secret",
}
LOG_KEYS = {"access", "audit_log"}
REF = re.compile(r"^\$\{(env|file):([^}]*)\}$")


def resolve(value, base):
    m = REF.match(value)
    if not m:
        return value if "${" not in value else None
    if m.group(1) == "env":
        return os.environ.get(m.group(2))
    path = m.group(2) if os.path.isabs(m.group(2)) else os.path.join(base, m.group(2))
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\n")
    except (OSError, UnicodeDecodeError):
        return None


def walk(node, found, logs, base):
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, str) and k in SECRET_KEYS:
                found.append((k, v))
            elif isinstance(v, str) and k in LOG_KEYS and v not in ("stdout", "off"):
                logs.add(v if os.path.isabs(v) else os.path.join(base, v))
            else:
                walk(v, found, logs, base)
    elif isinstance(node, list):
        for v in node:
            walk(v, found, logs, base)


def load(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        return [json.loads(text)]
    return list(yaml.safe_load_all(text)) if yaml else []


def main(argv):
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    root, logs = argv[0], set(argv[1:])
    secrets = {}            # value -> "file:key"
    for d, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith((".yaml", ".yml", ".json")):
                continue
            path = os.path.join(d, name)
            try:
                docs = load(path)
            except Exception:           # a broken config a test wrote on purpose
                continue
            found = []
            for doc in docs:
                walk(doc, found, logs, d)
            for key, raw in found:
                value = resolve(raw, d)
                if value and len(value) >= MIN_LEN:
                    secrets.setdefault(value, "%s:%s" % (os.path.relpath(path, root), key))
    leaks = 0
    for log in sorted(logs):
        try:
            with open(log, "rb") as f:
                data = f.read()
        except OSError:
            continue
        for value, where in secrets.items():
            raw = value.encode()
            for form in (raw, base64.b64encode(raw).rstrip(b"="), raw.hex().encode()):
                at = data.find(form)
                if at >= 0:
                    print("secret of %s (%s... %d chars) found in %s:%d"
                          % (where, value[:4], len(value), log, data.count(b"\n", 0, at) + 1))
                    leaks += 1
                    break
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
