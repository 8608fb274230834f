#!/usr/bin/env bash
# tenant_limit.sh: tenants[].max_connections, across workers and protocols.
#
#   bash tests/integration/tenant_limit.sh [BUILD_DIR]     (default: build)
#
# Gateway (2 workers): tenant acme with max_connections 2, tenant other unbounded; a
# socks5 listener (auth: tenant), a socks5 listener bound to acme (auth: none), an http
# forward listener; egress: an echo origin.
# 1. Two acme SOCKS5 connections are held open (they may land on either worker).
# 2. A third acme SOCKS5 client: the sub-negotiation succeeds (the token is good) and
#    the CONNECT is answered 02 (not allowed), then closed; the gateway logs "tenant
#    connection limit reached" with tenant acme.
# 3. An acme forward-proxy request: 429 with ferry-error: tenant-limit.
# 4. A connection to the listener bound to acme: accepted and closed at once.
# 5. Tenant other is not affected: its SOCKS5 connection echoes.
# 6. /metrics: ferry_tenant_connections_active{tenant="acme"} 2 while held,
#    ferry_tenant_connections_rejected_total{tenant="acme"} >= 3.
# 7. The held connections go: acme connects again (bounded poll), the active count
#    falls back to 0.
# The gateway exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/socks5_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/socks5_lib.sh"

dir=$(tmpdir)
start_origin echo-origin echo
ep=$ORIGIN_PORT
admin=$(free_port)
ls_socks=$(free_port)
ls_bound=$(free_port)
ls_http=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info }
admin: { listen: 127.0.0.1:$admin }
drain_timeout_ms: 2000
tenants:
  - { id: acme, token: acme-token, max_connections: 2 }
  - { id: other, token: other-token }
listeners:
  - { name: socks, plugin: socks5, listen: "127.0.0.1:$ls_socks", auth: tenant, egress: [ "127.0.0.1:$ep" ] }
  - { name: bound, plugin: socks5, listen: "127.0.0.1:$ls_bound", auth: none, tenant: acme, egress: [ "127.0.0.1:$ep" ] }
  - { name: proxy, plugin: http, listen: "127.0.0.1:$ls_http", mode: forward, egress: [ "127.0.0.1:$ep" ] }
YAML
out=$("$FERRY" check -c "$dir/ferry.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_ferry "$dir/ferry.yaml" "$admin"
ACME=(--user acme --password acme-token --host 127.0.0.1 --dport "$ep")
A='{tenant="acme"}'

# --- 1. two held -----------------------------------------------------------------------
hold_pids=()
for i in 1 2; do
    start_bg "hold$i" "$S5_PY" "$TOOLS/socks5.py" hold --port "$ls_socks" "${ACME[@]}" \
        --ready-file "$dir/ready$i" --go-file "$dir/go" --timeout 60
    hold_pids+=("$BG_PID")
    wait_file "$dir/ready$i" 10 "$BG_PID" || fail "held connection $i did not open: $(cat "$(bg_log "hold$i")")"
done
need_metric "$admin" "ferry_tenant_connections_active$A" -eq 2 5

# --- 2. a third acme SOCKS5 connection: 02 ----------------------------------------------
s5_must "acme over max_connections" handshake --port "$ls_socks" "${ACME[@]}" \
    --expect-reply "$(reply 02)"
wait_log_msg() {
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q '"msg":"tenant connection limit reached".*"tenant":"acme"' "$FERRY_LOG" &&
            return 0
        sleep 0.05
    done
    return 1
}
wait_log_msg || fail "no \"tenant connection limit reached\" log line with tenant acme"

# --- 3. http forward: 429 tenant-limit ---------------------------------------------------
code=$(curl -s -o /dev/null -D "$dir/h429" -w '%{http_code}' --max-time 10 \
    -x "http://127.0.0.1:$ls_http" --proxy-header "Proxy-Authorization: Bearer acme-token" \
    "http://127.0.0.1:$ep/" || true)
[ "$code" = 429 ] || fail "forward proxy, acme over its limit: status $code, want 429"
grep -qi '^ferry-error: tenant-limit' "$dir/h429" || fail "429 without ferry-error: tenant-limit: $(cat "$dir/h429")"

# --- 4. the listener bound to acme: accept and close ---------------------------------------
client expect-close --port "$ls_bound" --timeout 5
r=$(json_get "$CLIENT_OUT" result)
case "$r" in
    eof | reset) ;;
    *) fail "bound listener, acme over its limit: want the client closed at once, got $r" ;;
esac

# --- 5. another tenant goes on ------------------------------------------------------------
s5_must "tenant other" handshake --port "$ls_socks" --user other --password other-token \
    --host 127.0.0.1 --dport "$ep" --echo "other-ok"

# --- 6. metrics -----------------------------------------------------------------------------
[ "$(metric "$admin" "ferry_tenant_connections_active$A")" = 2 ] ||
    fail "ferry_tenant_connections_active$A is $(metric "$admin" "ferry_tenant_connections_active$A"), want 2"
need_metric "$admin" "ferry_tenant_connections_rejected_total$A" -ge 3 5

# --- 7. released: acme again ------------------------------------------------------------------
touch "$dir/go"
for p in "${hold_pids[@]}"; do
    wait "$p" || fail "a held connection failed after the others were refused"
done
need_metric "$admin" "ferry_tenant_connections_active$A" -eq 0 5
s5_must "acme after the release" handshake --port "$ls_socks" "${ACME[@]}" --echo "acme-again"
stop_ferry
echo "ok: acme held at 2 connections: SOCKS5 02, http 429 tenant-limit, bound listener" \
     "closed; other unaffected; counted; acme connects again once they close"
