#!/usr/bin/env bash
# tcp_policy.sh: a destination's on_connect hook on the tcp plugin.
#
#   bash tests/integration/tcp_policy.sh [BUILD_DIR]     (default: build)
#
# One echo origin; destination `db` with a policy whose on_connect lets 127.0.0.1 in
# and denies every other client (and checks conn.target and conn.tenant); destination
# `broken` whose on_connect raises. Listeners: `db` (127.0.0.1 and 127.0.0.2 clients),
# `broken`.
# 1. From 127.0.0.1 the connection is relayed (echo); the origin saw it.
# 2. From 127.0.0.2 it is closed with no data; the origin never saw it; access-log
#    outcome "denied" and an info line with the reason.
# 3. A hook that raises: closed, outcome "policy-error", a "policy failed" line with
#    script:line. The same listener keeps serving after it (a denial or an error fails
#    one connection).
# ferry exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"

dir=$(tmpdir)
start_origin echo echo
admin=$(free_port)
l_db=$(free_port)
l_broken=$(free_port)
cat >"$dir/db.lua" <<LUA
return {
  on_connect = function(conn, dest)
    assert(conn.target == "127.0.0.1:$ORIGIN_PORT", "target " .. conn.target)
    assert(conn.tenant == "acme", "tenant " .. tostring(conn.tenant))
    if not conn.client:match("^127%.0%.0%.1:") then
      return ferry.deny(0, "only 127.0.0.1 may reach " .. dest.Name)
    end
  end,
}
LUA
cat >"$dir/broken.lua" <<'LUA'
return {
  on_connect = function(conn, dest)
    if conn.client:match("^127%.0%.0%.3:") then error("no 127.0.0.3") end
  end,
}
LUA
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: t0k } ]
destinations:
  - { Name: db, Type: TCP, Address: "tcp://127.0.0.1:$ORIGIN_PORT", ProxyType: Internet,
      policy: $dir/db.lua }
  - { Name: broken, Type: TCP, Address: "tcp://127.0.0.1:$ORIGIN_PORT", ProxyType: Internet,
      policy: $dir/broken.lua }
listeners:
  - { name: db, plugin: tcp, listen: "127.0.0.1:$l_db", destination: db }
  - { name: broken, plugin: tcp, listen: "127.0.0.1:$l_broken", destination: broken }
YAML
start_ferry "$dir/ferry.yaml" "$admin"

# connect_from SOURCE_IP PORT: send "hi" from SOURCE_IP; prints "echo", "closed" or
# "other: ..." (a bounded wait).
connect_from() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
src, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.settimeout(5)
s.bind((src, 0))
s.connect(("127.0.0.1", port))
try:
    s.sendall(b"hi")
    data = s.recv(100)
    print("echo" if data == b"hi" else "closed" if data == b"" else "other: %r" % data)
except ConnectionResetError:
    print("closed")
except OSError as e:
    print("other: %s" % e)
PY
}

# --- 1. allowed -------------------------------------------------------------------------------
got=$(connect_from 127.0.0.1 "$l_db")
[ "$got" = echo ] || fail "from 127.0.0.1: want the echo, got $got"

# --- 2. denied ----------------------------------------------------------------------------------
before=$(wc -l <"$ORIGIN_REPORT" 2>/dev/null || echo 0)
got=$(connect_from 127.0.0.2 "$l_db")
[ "$got" = closed ] || fail "from 127.0.0.2: want the connection closed without data, got $got"
wait_access "$dir/access.log" db 2 5
[ "$(access_field "$dir/access.log" db outcome 2)" = denied ] ||
    fail "access log of the denied connection: want outcome denied, got" \
         "$(access_field "$dir/access.log" db outcome 2)"
wait_log "$FERRY_LOG" \
    '"msg":"connection denied by policy".*"reason":"only 127.0.0.1 may reach db"' 5 ||
    fail "no 'connection denied by policy' line with the reason"
sleep 0.2       # the origin's report is written when a connection ends: none may come
after=$(wc -l <"$ORIGIN_REPORT" 2>/dev/null || echo 0)
[ "$after" = "$before" ] || fail "the origin saw the denied connection ($before -> $after)"

# --- 3. a hook that raises ----------------------------------------------------------------
got=$(connect_from 127.0.0.3 "$l_broken")
[ "$got" = closed ] || fail "on_connect raising: want the connection closed, got $got"
wait_access "$dir/access.log" broken 1 5
[ "$(access_field "$dir/access.log" broken outcome 1)" = policy-error ] ||
    fail "access log of the failed policy: want outcome policy-error, got" \
         "$(access_field "$dir/access.log" broken outcome 1)"
[ "$(log_lines "$FERRY_LOG" "policy failed" destination=broken hook=on_connect \
     "where=$dir/broken.lua:3" "error~no 127.0.0.3")" = 1 ] ||
    fail "no 'policy failed' line naming broken.lua:3: $(grep 'policy failed' "$FERRY_LOG")"
got=$(connect_from 127.0.0.1 "$l_broken")
[ "$got" = echo ] || fail "the listener after a failed policy: want the echo, got $got"
got=$(connect_from 127.0.0.1 "$l_db")
[ "$got" = echo ] || fail "db after the denial: want the echo, got $got"

stop_ferry
echo "ok: on_connect let 127.0.0.1 through, closed 127.0.0.2 (outcome denied) and a" \
     "raising hook (outcome policy-error), and both listeners kept serving"
