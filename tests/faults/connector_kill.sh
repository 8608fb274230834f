#!/usr/bin/env bash
# connector_kill.sh: kill -9 of one connector while 100 streams are in flight.
#
#   bash tests/faults/connector_kill.sh [BUILD_DIR]     (default: build)
#
# One gateway, connectors A (location a) and B (location b) of tenant acme, both mapping
# their virtual host to one `slow` origin (tests/integration/tools/origin.py) that sends
# half of a 256 KiB payload and then holds the rest until a file appears. 50 downloads
# through each connector (100 streams at once); once every one has half its payload,
# A is killed with SIGKILL. Then:
# - A's 50 clients are told: each ends (reset or short, never a whole payload) within
#   5 s of the kill, with the rest of the payload still held by the origin;
# - the origin is let go: B's 50 downloads complete, every one all 256 KiB with the
#   payload's sha256 (0 bytes lost);
# - the gateway lives, counts A's tunnels gone and B's 2 up, no stream left active;
#   B serves a new download; gateway and B exit 0 on SIGTERM, no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$SRC_ROOT/tests/integration/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$SRC_ROOT/tests/integration/tools/tunnel_lib.sh"
FAULTS=$SRC_ROOT/tests/faults/tools/faults.py

N=50                        # streams per connector
BYTES=$((256 * 1024))
SEED=11
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
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
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

check_sanitizers "$a_log" connector-a
kill -KILL "$a_pid"
t_kill=$(date +%s.%N)
wait "$a_pid" 2>/dev/null || true
# A's clients end by themselves: the rest of their payload is still held by the origin.
wait_file "$dir/ready.done0" 10 "$dl_pid" \
    || fail "A's clients were not all ended 10s after its connector was killed"
touch "$dir/hold"
wait_exit "$dl_pid" 40 || fail "B's downloads did not finish within 40s of the origin's release"
out=$(cat "$dir/downloads.out")
echo "downloads: $out" >&2
ended=$(jq -r '.groups[0].ended_at' <<<"$out")
secs=$(awk -v a="$ended" -v b="$t_kill" 'BEGIN { printf "%.2f", a - b }')
echo "A's $N clients all ended ${secs}s after the kill" >&2
awk -v s="$secs" 'BEGIN { exit !(s <= 5) }' \
    || fail_later "A's clients ended ${secs}s after the kill, want <= 5s"
a_ends=$(jq -c '.groups[0].ends' <<<"$out")
b_ends=$(jq -c '.groups[1].ends' <<<"$out")
[ "$(jq -r '(.ok // 0) + (.timeout // 0) + (.mismatch // 0) + (.error // 0)' <<<"$a_ends")" = 0 ] \
    || fail_later "A's clients: want every one cut (reset or short), got $a_ends"
[ "$b_ends" = "{\"ok\":$N}" ] \
    || fail_later "B's clients: want all $N whole with the payload's sha256, got $b_ends"
[ "$(jq -r '.groups[1].bytes' <<<"$out")" = $((N * BYTES)) ] \
    || fail_later "B's clients received $(jq -r '.groups[1].bytes' <<<"$out") bytes, want $((N * BYTES))"

kill -0 "$gw_pid" 2>/dev/null || fail "the gateway died with connector A"
need_metric "$gw_admin" "ferry_tunnels$TA" -eq 0 5
need_metric "$gw_admin" "ferry_tunnels$TB" -eq 2
need_metric "$gw_admin" "ferry_tunnel_streams_active$TA" -eq 0 5
need_metric "$gw_admin" "ferry_tunnel_streams_active$TB" -eq 0 5
wait_metric "$gw_admin" "ferry_tunnel_streams_failed_total$TB" -eq 0 1 \
    || fail_later "B counted failed streams: $(metric "$gw_admin" "ferry_tunnel_streams_failed_total$TB")"
client download --port "$l_b" --timeout 20
got="$(json_get "$CLIENT_OUT" received) $(json_get "$CLIENT_OUT" sha256)"
want="$BYTES $(python3 -c 'import hashlib, random, sys
print(hashlib.sha256(random.Random(int(sys.argv[2])).randbytes(int(sys.argv[1]))).hexdigest())' \
    "$BYTES" "$SEED")"
[ "$got" = "$want" ] || fail_later "a new download through B after the kill: got [$got], want [$want]"

stop_proc "$b_pid" "$b_log" connector-b
stop_proc "$gw_pid" "$gw_log" gateway
fail_deferred
echo "connector_kill: ok"
