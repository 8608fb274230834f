#!/usr/bin/env bash
# tcp_concurrent.sh: 200 connections open at once, each echoing its own 64 KiB.
#
#   bash tests/integration/tcp_concurrent.sh [BUILD_DIR]     (default: build)
#
# 1. One Python process (asyncio) opens 200 connections to a tcp listener in front of
#    an echo origin; with all 200 open, /metrics must show 200 active (listener and
#    destination); then each sends a distinct 64 KiB payload (seeded per connection)
#    and half-closes; every echo must come back intact.
# 2. /metrics: connections_total >= 200 (listener and destination), active back to 0
#    (polled with a deadline), nothing failed or rejected; 200 access-log lines "ok".
# 3. worker_cpu_affinity: auto: with 2 CPUs, one worker thread may run only on CPU 0
#    and the other only on CPU 1 (the connections above ran on pinned workers).
# 4. ferry exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"

N=200
need_fds=$((N * 2 + 64))
[ "$(ulimit -n)" -ge "$need_fds" ] || ulimit -n "$need_fds" 2>/dev/null \
    || fail "need $need_fds file descriptors, ulimit -n is $(ulimit -n)"

dir=$(tmpdir)
start_origin echo echo
admin=$(free_port)
lport=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 2
worker_cpu_affinity: auto
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$admin }
drain_timeout_ms: 5000
tenants: [ { id: acme, token: t0k } ]
destinations:
  - { Name: origin, Type: TCP, Address: "tcp://127.0.0.1:$ORIGIN_PORT", ProxyType: Internet }
listeners:
  - { name: t1, plugin: tcp, listen: "127.0.0.1:$lport", destination: origin, max_connections: 10000 }
YAML
start_ferry "$dir/ferry.yaml" "$admin"

# --- 1. 200 at once ------------------------------------------------------------------
start_bg clients python3 "$TOOLS/client.py" concurrent --port "$lport" --n "$N" \
    --size 65536 --timeout 30 --ready-file "$dir/all-open" --go-file "$dir/go"
clients_pid=$BG_PID
wait_file "$dir/all-open" 20 "$clients_pid" \
    || fail "the $N client connections were not all open within 20s: $(cat "$(bg_log clients)")"
# Every one is relayed at once: ferry counts them all active on listener and destination.
need_metric "$admin" 'ferry_listener_connections_active{listener="t1"}' -eq "$N" 10
need_metric "$admin" 'ferry_destination_connections_active{destination="origin"}' -eq "$N" 10
touch "$dir/go"
wait_exit "$clients_pid" 40 || fail "the $N echo clients did not finish within 40s"
[ "$WAIT_RC" -eq 0 ] || fail "echo through $N concurrent connections: $(cat "$(bg_log clients)")"

# --- 2. counters and access log ------------------------------------------------------
need_metric "$admin" 'ferry_listener_connections_total{listener="t1"}' -ge "$N"
need_metric "$admin" 'ferry_destination_connections_total{destination="origin"}' -ge "$N"
need_metric "$admin" 'ferry_listener_connections_active{listener="t1"}' -eq 0 10
need_metric "$admin" 'ferry_destination_connections_active{destination="origin"}' -eq 0 10
need_metric "$admin" 'ferry_listener_connections_rejected_total{listener="t1"}' -eq 0
need_metric "$admin" 'ferry_listener_connections_failed_total{listener="t1"}' -eq 0
need_metric "$admin" 'ferry_listener_bytes_received_total{listener="t1"}' -ge $((N * 65536))
need_metric "$admin" 'ferry_listener_bytes_sent_total{listener="t1"}' -ge $((N * 65536))
wait_access "$dir/access.log" t1 "$N" 10
bad=$(python3 -c 'import json,sys
ls=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(sum(1 for l in ls if l.get("listener")=="t1" and (l.get("outcome")!="ok" or l.get("bytes_in")!=65536 or l.get("bytes_out")!=65536)))' "$dir/access.log")
[ "$bad" -eq 0 ] || fail "access log: $bad of $N lines are not outcome ok with 65536 bytes each way"

# --- 3. pinned workers ---------------------------------------------------------------
if [ "$(nproc)" -ge 2 ]; then
    pinned=$(for t in /proc/"$FERRY_PID"/task/*; do
                 awk '/^Cpus_allowed_list:/ { print $2 }' "$t/status"
             done | grep -Ex '[0-9]+' | sort -n | tr '\n' ' ')
    [ "$pinned" = "0 1 " ] \
        || fail "worker_cpu_affinity: auto: threads pinned to single CPUs [$pinned], want [0 1 ]"
fi

stop_ferry
echo "ok: $N concurrent connections echoed 64 KiB each intact; counters back to 0 active"
