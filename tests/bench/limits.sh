#!/usr/bin/env bash
# tests/bench/limits.sh: what listener limits and slow clients cost, in one run (issue 15).
# Run by tests/bench/run.sh (`limits`), or alone:
#
#   BUILD=build bash tests/bench/limits.sh     (env: SECS=3 ROUNDS=3 CONNS=50 SLOW=10000)
#
# 1. Limits on: one ferry serves the same origin on two transparent http listeners, one
#    plain and one with `allow` (loopback CIDRs, checked at accept) and `rate` (a bucket
#    per client IP far above the load, so every request takes a token and none is
#    refused). req/s of `ferry-loadgen http` (CONNS keep-alive connections, 1 KiB),
#    interleaved rounds: limited / plain (target >= 0.98).
# 2. Slowloris: SLOW connections that each send an unfinished request head and then one
#    byte every 2 s (`ferry-loadgen slow`; one the gateway closes at its head timeout is
#    dialled again). The gateway's RSS before and with them open (target: growth <= 40
#    MiB), and req/s of the same load beside them against without them (target >= 0.9).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONNS=${CONNS:-50}
SLOW=${SLOW:-10000}
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"

ORIGIN=$(port); PLAIN_P=$(port); LIMIT_P=$(port); ADMIN_P=$(port)
mkdir -p "$work/www"
head -c 1024 /dev/urandom >"$work/www/1k"
nginx_conf origin 1 "    server {
        listen 127.0.0.1:$ORIGIN;
        root $work/www;
        default_type application/octet-stream;
    }"
nginx -p "$work/origin" -e "$work/origin/error.log" -c "$work/origin/nginx.conf" & pids+=($!)
wait_port "$ORIGIN"

cat >"$work/ferry.yaml" <<YAML
workers: 2
plugins_dir: $BUILD/plugins
log: { level: warn, access: off }
admin: { listen: 127.0.0.1:$ADMIN_P }
destinations:
  - { Name: origin, Type: HTTP, URL: "http://127.0.0.1:$ORIGIN", ProxyType: Internet }
listeners:
  - { name: plain, plugin: http, listen: "127.0.0.1:$PLAIN_P", mode: transparent,
      destination: origin, max_connections: 100000 }
  - { name: limited, plugin: http, listen: "127.0.0.1:$LIMIT_P", mode: transparent,
      destination: origin, max_connections: 100000,
      allow: [ "127.0.0.0/8", "::1/128" ],
      rate: { per_client: 1000000, burst: 1000000 } }
YAML
"$FERRY" gateway -c "$work/ferry.yaml" 2>"$work/ferry.log" & pids+=($!)
ferry_pid=$!
wait_port "$PLAIN_P"; wait_port "$LIMIT_P"
for p in "$PLAIN_P" "$LIMIT_P"; do
    curl -sf -o "$work/got" "http://127.0.0.1:$p/1k" && cmp -s "$work/got" "$work/www/1k" ||
        { echo "limits: port $p does not serve the file" >&2; cat "$work/ferry.log" >&2; exit 1; }
done

run_http() {   # run_http PORT: "REQ/S P99" of one loadgen run
    local q p50 p99 errs reconn
    if ! read -r q p50 p99 errs reconn < <("$LOADGEN" http 127.0.0.1 "$1" "$SECS" "$CONNS" /1k \
            2>>"$work/loadgen.err") || [ -z "${p99:-}" ]; then
        q=0 p99=0
    fi
    echo "$q $p99"
}

echo "bench: $ROUNDS rounds x $SECS s per run, $CONNS connections, $(nproc) cores," \
     "$(uname -r)" >&2
# --- 1. limits on against off ----------------------------------------------------------
declare -a PLAIN LIMIT
for r in $(seq 1 "$ROUNDS"); do
    read -r q p99 < <(run_http "$PLAIN_P"); PLAIN+=("$q")
    echo "  round $r plain: $q req/s, p99 $p99 ms" >&2
    sleep 0.5
    read -r q p99 < <(run_http "$LIMIT_P"); LIMIT+=("$q")
    echo "  round $r allow+rate: $q req/s, p99 $p99 ms" >&2
    sleep 0.5
done
plain=$(median "${PLAIN[@]}"); limited=$(median "${LIMIT[@]}")

# --- 2. slowloris ------------------------------------------------------------------------
declare -a BASE WITH
for r in $(seq 1 "$ROUNDS"); do
    read -r q p99 < <(run_http "$PLAIN_P"); BASE+=("$q")
    echo "  round $r without slow clients: $q req/s, p99 $p99 ms" >&2
    sleep 0.5
done
rss0=$(rss_kib "$ferry_pid")
coproc SLOWC { exec "$LOADGEN" slow 127.0.0.1 "$PLAIN_P" "$SLOW" 2 2>"$work/slow.err"; }
slow_pid=$SLOWC_PID
pids+=("$slow_pid")
read -r -t 120 ready n <&"${SLOWC[0]}" || { echo "limits: slowloris never ready" >&2; exit 1; }
[ "$ready" = ready ] || { echo "limits: slowloris said '$ready $n'" >&2; exit 1; }
active=$(curl -sf "http://127.0.0.1:$ADMIN_P/metrics" |
         awk '/^ferry_listener_connections_active\{listener="plain"/ { print $2 }')
rss1=$(rss_kib "$ferry_pid")
for r in $(seq 1 "$ROUNDS"); do
    read -r q p99 < <(run_http "$PLAIN_P"); WITH+=("$q")
    echo "  round $r with $SLOW slow clients: $q req/s, p99 $p99 ms" >&2
    sleep 0.5
done
rss2=$(rss_kib "$ferry_pid")
exec {SLOWC[1]}>&-                      # stdin closed: the slow clients stop
wait "$slow_pid" 2>/dev/null || true
base=$(median "${BASE[@]}"); with=$(median "${WITH[@]}")
growth=$(( ( (rss1 > rss2 ? rss1 : rss2) - rss0 ) / 1024 ))

printf '\nlisteners, 1 KiB responses (medians of %s rounds):\n' "$ROUNDS"
printf '  %-40s %10s\n' subject req/s
printf '  %-40s %10s\n' "plain" "$plain" "allow + rate (no refusals)" "$limited"
printf '  allow + rate / plain: %s (target >= 0.98)\n' "$(ratio "$limited" "$plain")"
printf '  %-40s %10s\n' "without slow clients" "$base" "with $SLOW slow clients" "$with"
printf '  with / without slow clients: %s (target >= 0.9)\n' "$(ratio "$with" "$base")"
printf '  gateway RSS %s MiB before, +%s MiB with %s slow clients (active on the listener: %s;' \
    "$(( rss0 / 1024 ))" "$growth" "$SLOW" "${active:-?}"
printf ' %s; target <= 40 MiB)\n' "$(cat "$work/slow.err" 2>/dev/null | tail -n 1)"
