#!/usr/bin/env bash
# tests/bench/socks5.sh: ferry's socks5 plugin against microsocks and Dante, and direct.
# Run by tests/bench/run.sh, or alone:
#
#   BUILD=build bash tests/bench/socks5.sh          (env: SECS=3 ROUNDS=3)
#
# Every proxy runs without authentication (method 00) on loopback and CONNECTs to the
# same origin; the SOCKS5 handshake is part of each connection in the rate test.
# Two rate figures: on the shared cores (load generator, origin and proxy compete for
# both CPUs) and per core (the proxy alone on CPU 1, everything else on CPU 0), then the
# issue 7 targets: bulk >= 1.2x and conn/s >= 1.5x the better of microsocks and Dante.
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

# The same connections with the subject alone on one core (common.sh measure_core): the
# shared-core rate above also carries the load generator's and the origin's cost, which
# are the same for every proxy and dilute the differences between them.
# ferry as an operator runs it on one core: started on that CPU, `workers: auto` makes
# one worker (the affinity mask counts), where the instance above runs one per core.
FERRY_CP=$(port); ADMIN_CP=$(port)
sed -e "s/127.0.0.1:$FERRY_P/127.0.0.1:$FERRY_CP/" -e "s/127.0.0.1:$ADMIN_P/127.0.0.1:$ADMIN_CP/" \
    "$work/ferry.yaml" >"$work/ferry-core.yaml"
taskset -c 1 "$FERRY" gateway -c "$work/ferry-core.yaml" 2>"$work/ferry-core.log" & pids+=($!)
ferry_core_pid=$!
wait_port "$FERRY_CP"
SOCKS[ferry]=$FERRY_CP
CPU_PID[ferry]=$ferry_core_pid
declare -A CORE_PIDS=([direct]=$origin_pid [ferry]=$ferry_core_pid [microsocks]=$microsocks_pid
                      [dante]=$dante_pid)
if measure_core direct ferry microsocks dante; then
    table_core microsocks direct ferry microsocks dante
    printf '(conn/s 1 core: the subject pinned alone on CPU 1, load generator and origin on\n'
    printf ' CPU 0; direct: the origin alone on CPU 1)\n'
    best=$(max_of "${CRATE[microsocks]}" "${CRATE[dante]}")
    printf 'issue 7, bulk >= 1.2x the better of microsocks and Dante: %s\n' \
        "$(ratio "${BULK[ferry]}" "$(max_of "${BULK[microsocks]}" "${BULK[dante]}")")"
    printf 'issue 7, conn/s >= 1.5x the better of microsocks and Dante: shared cores %s, one core %s\n' \
        "$(ratio "${RATE[ferry]}" "$(max_of "${RATE[microsocks]}" "${RATE[dante]}")")" \
        "$(ratio "${CRATE[ferry]}" "$best")"
fi
