#!/usr/bin/env bash
# tunnel_bulk.sh: bulk data and many concurrent streams through the reverse tunnel.
#
#   bash tests/integration/tunnel_bulk.sh [BUILD_DIR]     (default: build)
#
# A gateway (tunnel on TLS with a test CA) and one connector of tenant acme; the tcp
# listeners' destinations are OnPremise virtual hosts the connector maps to origins on
# loopback.
# 0. Two tunnels (one per gateway worker); the connector's "tunnel up" lines name the
#    TLS suite (TLS_AES_128_GCM_SHA256, ferry's first choice).
# 1. Upload: 100 MiB client -> gateway -> tunnel -> connector -> `sink` origin; the
#    origin's sha256 must equal the file's.
# 2. Download: 100 MiB `source` origin -> connector -> tunnel -> gateway -> client; the
#    client's sha256 must equal the file's.
# 3. 500 connections at once through the tunnel, each echoing its own 16-64 KiB payload;
#    while all are open the gateway shows ferry_tunnel_streams_active 500; afterwards
#    every payload came back intact, streams_total >= 502, streams_active 0, byte
#    counters >= 100 MiB each way.
# 4. Speak-first: 3 x 100 connections at once to a `source` origin that sends 16 KiB and
#    closes at once, with the gateway and the connector starved of CPU (nice 19 beside a
#    busy loop); every download must be whole and end (the connect's wake-up can carry
#    the origin's only edge).
# 5. The connector's audit log has >= 502 "ok" lines and `--verify-audit` passes; both
#    processes exit 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"

SIZE=$((100 * 1024 * 1024))
NSTREAMS=500
dir=$(tmpdir)
head -c "$SIZE" /dev/urandom >"$dir/up.bin"
head -c "$SIZE" /dev/urandom >"$dir/down.bin"
up_sha=$(sha256sum "$dir/up.bin" | cut -d' ' -f1)
down_sha=$(sha256sum "$dir/down.bin" | cut -d' ' -f1)
make_ca "$dir" ca
make_cert "$dir" gw ca

start_origin sink sink
sink_port=$ORIGIN_PORT
start_origin source source --file "$dir/down.bin"
source_port=$ORIGIN_PORT
start_origin echo echo
echo_port=$ORIGIN_PORT
start_origin speaker source --bytes $((16 << 10)) --seed 13
speak_port=$ORIGIN_PORT

gw_admin=$(free_port)
cn_admin=$(free_port)
tport=$(free_port)
lup=$(free_port)
ldown=$(free_port)
lecho=$(free_port)
lspeak=$(free_port)
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$gw_admin }
drain_timeout_ms: 5000
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: sink, Type: TCP, Address: "tcp://sink.internal:3300", ProxyType: OnPremise, tenant: acme }
  - { Name: source, Type: TCP, Address: "tcp://source.internal:3301", ProxyType: OnPremise, tenant: acme }
  - { Name: echo, Type: TCP, Address: "tcp://echo.internal:3302", ProxyType: OnPremise, tenant: acme }
  - { Name: speaker, Type: TCP, Address: "tcp://speaker.internal:3303", ProxyType: OnPremise, tenant: acme }
listeners:
  - { name: up, plugin: tcp, listen: "127.0.0.1:$lup", destination: sink }
  - { name: down, plugin: tcp, listen: "127.0.0.1:$ldown", destination: source }
  - { name: echo, plugin: tcp, listen: "127.0.0.1:$lecho", destination: echo }
  - { name: speak, plugin: tcp, listen: "127.0.0.1:$lspeak", destination: speaker }
YAML
cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
systems:
  - { virtual: sink.internal:3300, internal: 127.0.0.1:$sink_port, protocol: TCP }
  - { virtual: source.internal:3301, internal: 127.0.0.1:$source_port, protocol: TCP }
  - { virtual: echo.internal:3302, internal: 127.0.0.1:$echo_port, protocol: TCP }
  - { virtual: speaker.internal:3303, internal: 127.0.0.1:$speak_port, protocol: TCP }
YAML
start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "connector /readyz is $(readyz "$cn_admin") after 10s, want 200"
T='{tenant="acme",location=""}'
# One tunnel per gateway worker, each logged by the connector with its TLS suite:
# ferry's own preference, AES-128-GCM first.
need_metric "$gw_admin" "ferry_tunnels$T" -eq 2 10
n=$(log_lines "$cn_log" "tunnel up" cipher=TLS_AES_128_GCM_SHA256)
[ "$n" -eq 2 ] || fail "connector log: $n \"tunnel up\" lines with cipher TLS_AES_128_GCM_SHA256, want 2"

# --- 1. upload -----------------------------------------------------------------------
client upload "$dir/up.bin" --port "$lup" --timeout 45
reply=$(json_get "$CLIENT_OUT" reply)
[ "$reply" = "$SIZE $up_sha" ] \
    || fail "upload through the tunnel: the origin received [$reply], want [$SIZE $up_sha]"

# --- 2. download ---------------------------------------------------------------------
client download --port "$ldown" --timeout 45
got="$(json_get "$CLIENT_OUT" received) $(json_get "$CLIENT_OUT" sha256)"
[ "$got" = "$SIZE $down_sha" ] \
    || fail "download through the tunnel: the client received [$got], want [$SIZE $down_sha]"

# --- 3. 500 concurrent streams -------------------------------------------------------
ulimit -n 4096 2>/dev/null || true
rm -f "$dir/ready" "$dir/go"
python3 "$TOOLS/streams.py" --port "$lecho" --n "$NSTREAMS" --timeout 40 \
    --ready-file "$dir/ready" --go-file "$dir/go" >"$dir/streams.out" 2>&1 &
streams_pid=$!
if ! wait_file "$dir/ready" 20 "$streams_pid"; then
    cat "$dir/streams.out" >&2 || true
    fail "streams.py did not get $NSTREAMS connections open at once within 20s"
fi
# Every client connection is a stream through the tunnel now.
active_ok=1
wait_metric "$gw_admin" "ferry_tunnel_streams_active$T" -eq "$NSTREAMS" 15 || active_ok=0
active_seen=$(metric "$gw_admin" "ferry_tunnel_streams_active$T")
touch "$dir/go"
streams_rc=0
wait "$streams_pid" || streams_rc=$?
cat "$dir/streams.out" >&2
[ "$streams_rc" -eq 0 ] || fail "$NSTREAMS concurrent streams: not all intact (see streams.py above)"
[ "$active_ok" = 1 ] \
    || fail "with $NSTREAMS connections open: ferry_tunnel_streams_active$T = '$active_seen', want $NSTREAMS"

need_metric "$gw_admin" "ferry_tunnel_streams_total$T" -ge $((NSTREAMS + 2))
need_metric "$gw_admin" "ferry_tunnel_streams_active$T" -eq 0 10
need_metric "$gw_admin" "ferry_tunnel_refusals_total$T" -eq 0
need_metric "$gw_admin" "ferry_tunnel_streams_failed_total$T" -eq 0
need_metric "$gw_admin" "ferry_tunnel_bytes_received_total$T" -ge "$SIZE"
need_metric "$gw_admin" "ferry_tunnel_bytes_sent_total$T" -ge "$SIZE"
need_metric "$cn_admin" "ferry_connector_tunnels_up" -eq 2
need_metric "$cn_admin" "ferry_tunnel_streams_total$T" -ge $((NSTREAMS + 2))
need_metric "$cn_admin" "ferry_tunnel_streams_active$T" -eq 0 10

# --- 4. speak-first origin, gateway and connector short of CPU -------------------------
speak_first_starved "$lspeak" 60 "$gw_pid" "$cn_pid"

# --- 5. audit log --------------------------------------------------------------------
audit=$dir/audit.jsonl
for ((i = 0; i < 100; i++)); do
    [ "$(audit_count "$audit" outcome=ok)" -ge $((NSTREAMS + 2)) ] && break
    sleep 0.1
done
n_ok=$(audit_count "$audit" outcome=ok)
[ "$n_ok" -ge $((NSTREAMS + 2)) ] \
    || fail "audit log: $n_ok lines with outcome ok, want >= $((NSTREAMS + 2))"
n_echo=$(audit_count "$audit" outcome=ok virtual=echo.internal:3302 "internal=127.0.0.1:$echo_port")
[ "$n_echo" -ge "$NSTREAMS" ] \
    || fail "audit log: $n_echo ok lines for echo.internal:3302 -> 127.0.0.1:$echo_port, want >= $NSTREAMS"
n_up=$(audit_count "$audit" outcome=ok virtual=sink.internal:3300 "bytes_in=$SIZE" tenant=acme)
[ "$n_up" -eq 1 ] || fail "audit log: want 1 ok line for the upload with bytes_in=$SIZE, got $n_up"
n_down=$(audit_count "$audit" outcome=ok virtual=source.internal:3301 "bytes_out=$SIZE")
[ "$n_down" -eq 1 ] || fail "audit log: want 1 ok line for the download with bytes_out=$SIZE, got $n_down"

# --- 6. clean exit, then the chain ---------------------------------------------------
stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
out=$("$FERRY" connector --verify-audit "$audit" 2>&1) || fail "--verify-audit $audit failed: $out"
echo "$out" | grep -q "chain intact" || fail "--verify-audit: want 'chain intact', got: $out"
nrec=$(wc -l <"$audit")
echo "$out" | grep -q "$nrec records" || fail "--verify-audit: want '$nrec records', got: $out"
echo "ok: 100 MiB up and down intact through the tunnel; $NSTREAMS concurrent streams intact;" \
     "metrics, audit log ($nrec records) and its chain agree"
