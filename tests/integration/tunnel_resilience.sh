#!/usr/bin/env bash
# tunnel_resilience.sh: the tunnel under connector and gateway failures.
#
#   bash tests/integration/tunnel_resilience.sh [BUILD_DIR]     (default: build)
#
# A gateway and acme's connector(s), the tcp listeners' destinations are OnPremise
# virtual hosts mapped to origins on loopback.
# 1. kill -9 the connector during a slow download: the client's connection ends (EOF or
#    reset, short of the full payload) within 5 s instead of hanging; the gateway keeps
#    running (healthz), logs "tunnel down", counts the stream as failed (metrics and
#    access-log outcome), and closes new clients at once.
# 2. Restart the connector: a new connection works within 5 s.
# 3. A second connector for the same (tenant, location): the gateway has 4 tunnels;
#    kill -9 the first, and right away 20 sequential connections all work (served by the
#    second, which audits them); the gateway is down to 2 tunnels.
# 4. SIGTERM the gateway (exit 0): the connector's /readyz turns 503; start the gateway
#    again on the same ports: within 10 s /readyz is 200 and a connection goes through.
# 5. SIGTERM the connector during a 3 s download: the download completes intact (drain)
#    and the connector exits 0 within its drain time.
# 6. The audit chains verify (the first connector's log spans a kill -9 and a restart);
#    after one character of a middle line is changed with sed, --verify-audit exits 1
#    and names the line. No sanitizer report from any ferry process.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"

dir=$(tmpdir)
make_ca "$dir" ca
make_cert "$dir" gw ca

LONG_BYTES=$((4 * 1024 * 1024))     # over 30 s: still running when the connector dies
SHORT_BYTES=$((8 * 1024 * 1024))    # over 3 s: running when the connector is told to stop
SHORT_SEED=3
start_origin echo echo
op_echo=$ORIGIN_PORT
start_origin slow-long slow --bytes "$LONG_BYTES" --duration 30
op_long=$ORIGIN_PORT
start_origin slow-short slow --bytes "$SHORT_BYTES" --duration 3 --seed "$SHORT_SEED"
op_short=$ORIGIN_PORT
short_sha=$(python3 -c 'import hashlib, random, sys
print(hashlib.sha256(random.Random(int(sys.argv[2])).randbytes(int(sys.argv[1]))).hexdigest())' \
    "$SHORT_BYTES" "$SHORT_SEED")

gw_admin=$(free_port)
tport=$(free_port)
l_echo=$(free_port)
l_long=$(free_port)
l_short=$(free_port)
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$gw_admin }
drain_timeout_ms: 3000
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: echo, Type: TCP, Address: "tcp://echo.internal:7", ProxyType: OnPremise, tenant: acme }
  - { Name: long, Type: TCP, Address: "tcp://long.internal:80", ProxyType: OnPremise, tenant: acme }
  - { Name: short, Type: TCP, Address: "tcp://short.internal:80", ProxyType: OnPremise, tenant: acme }
listeners:
  - { name: echo, plugin: tcp, listen: "127.0.0.1:$l_echo", destination: echo }
  - { name: long, plugin: tcp, listen: "127.0.0.1:$l_long", destination: long }
  - { name: short, plugin: tcp, listen: "127.0.0.1:$l_short", destination: short }
YAML

# write_cn FILE ADMIN_PORT AUDIT: an acme connector (default location) for all three.
write_cn() {
    cat >"$1" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$2 }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: $3
keepalive_ms: 1000
dead_peer_timeout_ms: 3000
reconnect_max_ms: 1000
drain_timeout_ms: 10000
systems:
  - { virtual: echo.internal:7, internal: 127.0.0.1:$op_echo, protocol: TCP }
  - { virtual: long.internal:80, internal: 127.0.0.1:$op_long, protocol: TCP }
  - { virtual: short.internal:80, internal: 127.0.0.1:$op_short, protocol: TCP }
YAML
}

# try_echo TEXT: one echo through the tunnel; returns its client.py status (no fail).
try_echo() {
    python3 "$TOOLS/client.py" echo "$1" --port "$l_echo" --timeout 3 >"$IT_ROOT/try.out" 2>&1
}

# poll_echo TIMEOUT_S WHAT: retry an echo until one works; fail at the deadline.
poll_echo() {
    local timeout=$1 what=$2 t0=$SECONDS
    until try_echo "poll"; do
        [ $((SECONDS - t0)) -lt "$timeout" ] \
            || fail "$what: no echo through the tunnel within ${timeout}s; last: $(cat "$IT_ROOT/try.out")"
        sleep 0.1
    done
}

# kill9 PID: SIGKILL our child and reap it.
kill9() {
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

T='{tenant="acme",location=""}'
start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
cn1_admin=$(free_port)
write_cn "$dir/cn1.yaml" "$cn1_admin" audit1.jsonl
start_connector connector1 "$dir/cn1.yaml" "$cn1_admin"
cn1_pid=$CN_PID
wait_readyz "$cn1_admin" 200 10 || fail "connector1: /readyz is $(readyz "$cn1_admin") after 10s, want 200"
need_metric "$gw_admin" "ferry_tunnels$T" -eq 2 10
client echo hello --port "$l_echo" --timeout 10

# --- 1. kill -9 the connector mid-transfer -------------------------------------------
python3 "$TOOLS/client.py" download --port "$l_long" --timeout 20 \
    --started-file "$dir/long-started" >"$dir/long.out" 2>&1 &
long_pid=$!
wait_file "$dir/long-started" 10 "$long_pid" \
    || fail "slow download through the tunnel did not start: $(cat "$dir/long.out")"
need_metric "$gw_admin" "ferry_tunnel_streams_active$T" -eq 1
check_sanitizers "$(bg_log connector1)" connector1
kill9 "$cn1_pid"
t_kill=$SECONDS
if ! wait_exit "$long_pid" 5; then
    kill "$long_pid" 2>/dev/null || true
    wait "$long_pid" 2>/dev/null || true
    fail "after kill -9 of the connector the client's connection was still open 5s later" \
         "(want EOF or reset)"
fi
out=$(cat "$dir/long.out")
case "$out" in
    *'"ok": true'*)
        got=$(json_get "$(head -n 1 "$dir/long.out")" received)
        [ "$got" -lt "$LONG_BYTES" ] \
            || fail "the slow download completed ($got bytes) although its connector was killed" ;;
    *ConnectionResetError* | *'Connection reset'*) ;;
    *) fail "after kill -9 of the connector: want EOF or reset for the client, got: $out" ;;
esac
echo "kill -9: the client's connection ended $((SECONDS - t_kill))s after the kill ($out)" >&2
kill -0 "$gw_pid" 2>/dev/null || fail "the gateway died when the connector was killed"
curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$gw_admin/healthz" \
    || fail "the gateway's /healthz does not answer after the connector was killed"
wait_log "$gw_log" '"msg":"tunnel down"' 5 || fail "gateway: no \"tunnel down\" line after kill -9"
need_metric "$gw_admin" "ferry_tunnels$T" -eq 0 5
need_metric "$gw_admin" "ferry_tunnel_streams_active$T" -eq 0 5
wait_metric "$gw_admin" "ferry_tunnel_streams_failed_total$T" -ge 1 5 ||
    fail_later "/metrics: ferry_tunnel_streams_failed_total$T is" \
        "'$(metric "$gw_admin" "ferry_tunnel_streams_failed_total$T")' after a stream was lost" \
        "with its connector (kill -9), want >= 1"
wait_access "$dir/access.log" long 1 5
v=$(access_field "$dir/access.log" long outcome)
{ [ -n "$v" ] && [ "$v" != ok ]; } \
    || fail "access log: the download cut by kill -9 has outcome '$v', want a failure (not ok)"
expect_close_out=$(python3 "$TOOLS/client.py" expect-close --port "$l_echo" --timeout 5 2>&1) \
    || fail "with no connector: want the client closed at once, got: $expect_close_out"

# --- 2. restart the connector ----------------------------------------------------------
start_connector connector1-restarted "$dir/cn1.yaml" "$cn1_admin"
cn1_pid=$CN_PID cn1_log=$CN_LOG
poll_echo 5 "connector restarted"
wait_readyz "$cn1_admin" 200 5 || fail "restarted connector: /readyz is $(readyz "$cn1_admin")"

# --- 3. two connectors, kill one -------------------------------------------------------
cn2_admin=$(free_port)
write_cn "$dir/cn2.yaml" "$cn2_admin" audit2.jsonl
start_connector connector2 "$dir/cn2.yaml" "$cn2_admin"
cn2_pid=$CN_PID cn2_log=$CN_LOG
wait_readyz "$cn2_admin" 200 10 || fail "connector2: /readyz is $(readyz "$cn2_admin") after 10s, want 200"
need_metric "$gw_admin" "ferry_tunnels$T" -eq 4 10
audit2=$dir/audit2.jsonl
a2_before=$(audit_count "$audit2" outcome=ok)
check_sanitizers "$cn1_log" connector1-restarted
kill9 "$cn1_pid"
# At once, not after the gateway has noticed: the kernel closed the dead connector's
# sockets, so its tunnels end before (or while) these connections arrive.
for i in $(seq 1 20); do
    try_echo "seq-$i" || fail "with one of two connectors killed: connection $i of 20 failed:" \
        "$(cat "$IT_ROOT/try.out")"
done
need_metric "$gw_admin" "ferry_tunnels$T" -eq 2 5
for ((i = 0; i < 50; i++)); do
    [ "$(audit_count "$audit2" outcome=ok)" -ge $((a2_before + 20)) ] && break
    sleep 0.1
done
[ "$(audit_count "$audit2" outcome=ok)" -eq $((a2_before + 20)) ] \
    || fail "connector2's audit: want $((a2_before + 20)) ok lines, got $(audit_count "$audit2" outcome=ok)"

# --- 4. gateway restart -----------------------------------------------------------------
stop_proc "$gw_pid" "$gw_log" gateway
wait_readyz "$cn2_admin" 503 5 \
    || fail "connector2: /readyz is $(readyz "$cn2_admin") with the gateway stopped, want 503"
need_metric "$cn2_admin" ferry_connector_tunnels_up -eq 0
t_start=$SECONDS
start_gateway gateway-restarted "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
wait_readyz "$cn2_admin" 200 10 \
    || fail "connector2: /readyz is $(readyz "$cn2_admin") 10s after the gateway restarted, want 200"
poll_echo $((10 - (SECONDS - t_start) > 1 ? 10 - (SECONDS - t_start) : 1)) "gateway restarted"
echo "gateway restart: tunnel and a connection back within $((SECONDS - t_start))s" >&2
need_metric "$gw_admin" "ferry_tunnels$T" -eq 2 5

# --- 5. SIGTERM the connector during a transfer: drain ------------------------------
python3 "$TOOLS/client.py" download --port "$l_short" --timeout 20 \
    --started-file "$dir/short-started" >"$dir/short.out" 2>&1 &
short_pid=$!
wait_file "$dir/short-started" 10 "$short_pid" \
    || fail "the 3 s download through the tunnel did not start: $(cat "$dir/short.out")"
kill -TERM "$cn2_pid"
wait_exit "$cn2_pid" 12 \
    || fail "connector2 still running 12s after SIGTERM (drain_timeout_ms 10000)"
cn2_rc=$WAIT_RC
short_rc=0
wait_exit "$short_pid" 10 || fail "the download did not finish after the connector drained"
short_rc=$WAIT_RC
check_sanitizers "$cn2_log" connector2
[ "$cn2_rc" -eq 0 ] || fail "connector2 exited $cn2_rc after SIGTERM, want 0"
[ "$short_rc" -eq 0 ] || fail "the download during the connector's drain failed: $(cat "$dir/short.out")"
got="$(json_get "$(cat "$dir/short.out")" received) $(json_get "$(cat "$dir/short.out")" sha256)"
[ "$got" = "$SHORT_BYTES $short_sha" ] \
    || fail "download during the connector's drain: got [$got], want [$SHORT_BYTES $short_sha]"
[ "$(log_lines "$cn2_log" "connector draining")" -ge 1 ] || fail "connector2: no \"connector draining\" line"
n=$(audit_count "$audit2" outcome=ok virtual=short.internal:80 "bytes_out=$SHORT_BYTES")
[ "$n" -eq 1 ] || fail "connector2's audit: want 1 ok line for the drained download, got $n"
stop_proc "$gw_pid" "$gw_log" gateway-restarted
check_sanitizers "$(bg_log gateway)" gateway

# --- 6. the audit chains ----------------------------------------------------------------
audit1=$dir/audit1.jsonl
for a in "$audit1" "$audit2"; do
    out=$("$FERRY" connector --verify-audit "$a" 2>&1) || fail "--verify-audit $a: $out"
    echo "$out" | grep -q "chain intact, $(wc -l <"$a") records" \
        || fail "--verify-audit $a: want 'chain intact, $(wc -l <"$a") records', got: $out"
done
nlines=$(wc -l <"$audit2")
[ "$nlines" -ge 5 ] || fail "connector2's audit has only $nlines lines"
mid=$((nlines / 2))
cp "$audit2" "$dir/tampered.jsonl"
# One character: the first digit of bytes_in on the middle line.
sed -i "${mid}s/\"bytes_in\":\([0-9]\)/\"bytes_in\":X\1/; ${mid}s/\"bytes_in\":X0/\"bytes_in\":1/; ${mid}s/\"bytes_in\":X\([1-9]\)/\"bytes_in\":0/" \
    "$dir/tampered.jsonl"
diffs=$( (cmp -l "$audit2" "$dir/tampered.jsonl" || true) | wc -l)
[ "$diffs" -eq 1 ] || fail "tampering changed $diffs bytes, want 1"
rc=0
out=$("$FERRY" connector --verify-audit "$dir/tampered.jsonl" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "--verify-audit of a tampered log: exit $rc, want 1 ($out)"
echo "$out" | grep -Eq "(line|:) ?($mid|$((mid + 1)))([^0-9]|\$)" \
    || fail "--verify-audit of a log tampered at line $mid: the message does not name line $mid" \
        "(or $((mid + 1))): $out"
echo "tampered audit: $out" >&2
fail_deferred
echo "ok: kill -9, restart, failover between two connectors, gateway restart and drain all" \
     "behave; audit chains verify and a one-character edit is caught"
