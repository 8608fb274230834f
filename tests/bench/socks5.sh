#!/usr/bin/env bash
# tests/bench/socks5.sh: ferry's socks5 plugin against microsocks and Dante, and direct.
# Run by tests/bench/run.sh, or alone:
#
#   BUILD=build bash tests/bench/socks5.sh          (env: SECS=3 ROUNDS=3)
#
# Every proxy runs without authentication (method 00) on loopback and CONNECTs to the
# same origin; the SOCKS5 handshake is part of each connection in the rate test.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"

ORIGIN=$(port); FERRY_P=$(port); ADMIN_P=$(port); MS_P=$(port); DANTE_P=$(port)
"$LOADGEN" serve "$ORIGIN" & pids+=($!)
origin_pid=$!
wait_port "$ORIGIN"

cat >"$work/ferry.yaml" <<YAML
workers: auto
plugins_dir: $BUILD/plugins
log: { level: warn, access: off }
admin: { listen: 127.0.0.1:$ADMIN_P }
tenants: [ { id: bench, token: bench-token } ]
listeners:
  - { name: socks, plugin: socks5, listen: "127.0.0.1:$FERRY_P", auth: none, tenant: bench,
      egress: [ "127.0.0.1:*" ], max_connections: 100000 }
YAML
"$FERRY" gateway -c "$work/ferry.yaml" 2>"$work/ferry.log" & pids+=($!)
ferry_pid=$!
microsocks -i 127.0.0.1 -p "$MS_P" >"$work/microsocks.log" 2>&1 & pids+=($!)
microsocks_pid=$!
cat >"$work/danted.conf" <<CFG
logoutput: $work/danted.log
internal: 127.0.0.1 port = $DANTE_P
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }
CFG
danted -f "$work/danted.conf" -p "$work/danted.pid" >"$work/danted.out" 2>&1 & pids+=($!)
dante_pid=$!
for p in "$FERRY_P" "$MS_P" "$DANTE_P"; do wait_port "$p"; done

declare -A PORT=([direct]=$ORIGIN [ferry]=$ORIGIN [microsocks]=$ORIGIN [dante]=$ORIGIN)
declare -A SOCKS=([ferry]=$FERRY_P [microsocks]=$MS_P [dante]=$DANTE_P)
# CPU per connection: the proxy's own (Dante: its processes); direct: the origin's.
declare -A CPU_PID=([direct]=$origin_pid [ferry]=$ferry_pid [microsocks]=$microsocks_pid
                    [dante]=$dante_pid)
measure direct ferry microsocks dante
table microsocks direct ferry microsocks dante
printf '(conn/s: connect + SOCKS5 greeting + CONNECT + 5-byte request and reply + close;\n'
printf ' CPU us/conn: user+system time of the proxy, children included, in the conn/s runs)\n'
