#!/usr/bin/env bash
# tunnel_stall.sh: a tunnel that stops answering (no ACKs, no frames) without closing.
#
#   bash tests/faults/tunnel_stall.sh [BUILD_DIR]     (default: build)
#
# No `tc`: connector A is stopped with SIGSTOP, so its TCP connections stay open (the
# kernel still acknowledges segments) but no HTTP/2 frame, PING answer included, comes
# back. The gateway has keepalive_ms 300 and dead_peer_timeout_ms 1500. Connectors A
# (location a) and B (location b) each carry 20 downloads from a `slow` origin that
# holds the second half of every payload until a file appears. Once every download has
# its first part, A is stopped. Then:
# - dead-peer detection ends A's tunnels: each of A's clients is reset (or cut short)
#   between 1 s and 6 s after the stop (dead_peer_timeout_ms after the last frame, give
#   or take a keepalive and a loaded machine), and the gateway logs "tunnel down" with
#   the reason "peer silent past dead_peer_timeout_ms" for both of A's tunnels;
# - the origin is let go: B's 20 downloads are whole (sha256), B never noticed;
# - SIGCONT: A finds its tunnels gone, dials again (2 tunnels within 15 s) and serves a
#   whole download; every process exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$SRC_ROOT/tests/integration/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$SRC_ROOT/tests/integration/tools/tunnel_lib.sh"
FAULTS=$SRC_ROOT/tests/faults/tools/faults.py

N=20                        # streams per connector
BYTES=$((256 * 1024))
SEED=12
ulimit -n 4096 2>/dev/null || true
dir=$(tmpdir)
make_ca "$dir" ca
make_cert "$dir" gw ca
start_origin slow slow --bytes "$BYTES" --seed "$SEED" --duration 0.5 --hold-file "$dir/hold"
op=$ORIGIN_PORT

gw_admin=$(free_port)
a_admin=$(free_port)
b_admin=$(free_port)
tport=$(free_port)
l_a=$(free_port)
l_b=$(free_port)
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$gw_admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key, keepalive_ms: 300, dead_peer_timeout_ms: 1500 }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: at-a, Type: TCP, Address: "tcp://data.internal:80", ProxyType: OnPremise, CloudConnectorLocationId: a }
  - { Name: at-b, Type: TCP, Address: "tcp://data.internal:80", ProxyType: OnPremise, CloudConnectorLocationId: b }
listeners:
  - { name: a, plugin: tcp, listen: "127.0.0.1:$l_a", destination: at-a }
  - { name: b, plugin: tcp, listen: "127.0.0.1:$l_b", destination: at-b }
YAML
for c in a b; do
    admin_var=${c}_admin
    cat >"$dir/cn-$c.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:${!admin_var} }
tenant: acme
token: acme-token
location_id: $c
ca: ca.crt
audit_log: audit-$c.jsonl
systems:
  - { virtual: data.internal:80, internal: 127.0.0.1:$op, protocol: TCP }
YAML
done

start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector-a "$dir/cn-a.yaml" "$a_admin"
a_pid=$CN_PID a_log=$CN_LOG
start_connector connector-b "$dir/cn-b.yaml" "$b_admin"
b_pid=$CN_PID b_log=$CN_LOG
TA='{tenant="acme",location="a"}'
TB='{tenant="acme",location="b"}'
need_metric "$gw_admin" "ferry_tunnels$TA" -eq 2 10
need_metric "$gw_admin" "ferry_tunnels$TB" -eq 2 10

python3 "$FAULTS" downloads --ports "$l_a,$l_b" --n "$N" --bytes "$BYTES" --seed "$SEED" \
    --ready-file "$dir/ready" --timeout 60 >"$dir/downloads.out" 2>&1 &
dl_pid=$!
BG_PIDS+=("$dl_pid")  # cleanup stops it if the script fails first
wait_file "$dir/ready" 30 "$dl_pid" \
    || fail "the $((2 * N)) downloads did not all get half their payload within 30s: $(cat "$dir/downloads.out")"
need_metric "$gw_admin" "ferry_tunnel_streams_active$TA" -eq "$N"
need_metric "$gw_admin" "ferry_tunnel_streams_active$TB" -eq "$N"

kill -STOP "$a_pid"
t_stop=$(date +%s.%N)
wait_file "$dir/ready.done0" 15 "$dl_pid" \
    || fail "A's clients were not all ended 15s after its connector was stopped"
touch "$dir/hold"
wait_exit "$dl_pid" 40 || fail "B's downloads did not finish within 40s of the origin's release"
out=$(cat "$dir/downloads.out")
echo "downloads: $out" >&2
ended=$(jq -r '.groups[0].ended_at' <<<"$out")
secs=$(awk -v a="$ended" -v b="$t_stop" 'BEGIN { printf "%.2f", a - b }')
echo "A's $N clients all ended ${secs}s after SIGSTOP (dead_peer_timeout_ms 1500)" >&2
awk -v s="$secs" 'BEGIN { exit !(s >= 1 && s <= 6) }' \
    || fail_later "A's clients ended ${secs}s after the stall began, want 1..6s (dead_peer_timeout_ms 1500)"
a_ends=$(jq -c '.groups[0].ends' <<<"$out")
b_ends=$(jq -c '.groups[1].ends' <<<"$out")
[ "$(jq -r '(.ok // 0) + (.timeout // 0) + (.mismatch // 0) + (.error // 0)' <<<"$a_ends")" = 0 ] \
    || fail_later "A's clients: want every one cut (reset or short), got $a_ends"
[ "$b_ends" = "{\"ok\":$N}" ] \
    || fail_later "B's clients: want all $N whole with the payload's sha256, got $b_ends"
n=$(log_lines "$gw_log" "tunnel down" location=a "reason=peer silent past dead_peer_timeout_ms")
[ "$n" -eq 2 ] || fail_later "gateway log: $n \"tunnel down\" lines for location a with the dead-peer reason, want 2"
n=$(log_lines "$gw_log" "tunnel down" location=b)
[ "$n" -eq 0 ] || fail_later "gateway log: B lost $n tunnel(s) during A's stall"

kill -0 "$gw_pid" 2>/dev/null || fail "the gateway died"
need_metric "$gw_admin" "ferry_tunnels$TA" -eq 0 5
need_metric "$gw_admin" "ferry_tunnel_streams_active$TA" -eq 0 5
need_metric "$gw_admin" "ferry_tunnel_streams_active$TB" -eq 0 5

# --- A wakes up: its tunnels are gone, it dials again --------------------------------------
kill -CONT "$a_pid"
need_metric "$gw_admin" "ferry_tunnels$TA" -eq 2 15
want="$BYTES $(python3 -c 'import hashlib, random, sys
print(hashlib.sha256(random.Random(int(sys.argv[2])).randbytes(int(sys.argv[1]))).hexdigest())' \
    "$BYTES" "$SEED")"
client download --port "$l_a" --timeout 20
got="$(json_get "$CLIENT_OUT" received) $(json_get "$CLIENT_OUT" sha256)"
[ "$got" = "$want" ] || fail_later "a download through A after SIGCONT: got [$got], want [$want]"

stop_proc "$a_pid" "$a_log" connector-a
stop_proc "$b_pid" "$b_log" connector-b
stop_proc "$gw_pid" "$gw_log" gateway
fail_deferred
echo "tunnel_stall: ok"
