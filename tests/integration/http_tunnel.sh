#!/usr/bin/env bash
# http_tunnel.sh: the http plugin routing into connectors' tunnels (ProxyType OnPremise).
#
#   bash tests/integration/http_tunnel.sh [BUILD_DIR]     (default: build)
#
# Connectors of tenant acme: default location maps virtual.host:80 to origin "main"
# (protocol HTTP, paths [ "/api/" ]), echo.internal:7 to an echo origin (TCP) and
# web.tcp:8080 to origin "main" as a TCP system;
# location berlin maps virtual.host:80 to origin "berlin" (HTTP, paths [ "/api/" ]).
# Destinations (all OnPremise): onprem (URL http://virtual.host:80), onprem-api (URL
# http://virtual.host:80/api, BasicAuthentication), onprem-berlin (location berlin).
# Listeners: one transparent listener per destination, and `proxy` (forward, no egress).
# 1. Transparent: /api/echo reaches origin main with Host virtual.host and an
#    x-request-id; /other and /apix are 403 ferry-error access-denied with an
#    x-request-id (the connector refused them: the origin never sees them, the audit log
#    has them denied), /api/../x too (or a 400 from ferry); 50
#    requests on one client connection; an 8 MiB chunked upload and a 20 MiB download
#    through the tunnel (sha256); onprem-api joins the path (/echo -> /api/echo) and adds
#    the Basic Authorization; onprem-berlin reaches origin berlin.
# 2. Forward mode: http://virtual.host/api/echo reaches main, with
#    SAP-Connectivity-SCC-Location_ID: berlin it reaches berlin (the header is not
#    forwarded); /other is 403 access-denied; location paris is 503 no-tunnel; a host
#    no connector exposes is 403 access-denied.
# 3. CONNECT through the tunnel: curl -p to web.tcp:8080 reaches origin main; a raw
#    CONNECT echo.internal:7 echoes; CONNECT to an unexposed host is 403, at location
#    paris 503.
# Every process exits 0 on SIGTERM with no sanitizer report; the audit chains verify.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/http_lib.sh"

dir=$(tmpdir)
make_ca "$dir" ca
make_cert "$dir" gw ca
start_http_origin main --strip-prefix /api
op_main=$HO_PORT main_log=$HO_LOG
start_http_origin berlin --strip-prefix /api
op_berlin=$HO_PORT
start_origin echo-origin echo --prefix "echo:"
ep=$ORIGIN_PORT

gw_admin=$(free_port); tport=$(free_port); cn_admin=$(free_port); cn2_admin=$(free_port)
l_onprem=$(free_port); l_api=$(free_port); l_berlin=$(free_port); lp=$(free_port)
access=$dir/access.log
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $access }
admin: { listen: 127.0.0.1:$gw_admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: onprem, Type: HTTP, URL: "http://virtual.host:80", ProxyType: OnPremise }
  - Name: onprem-api
    Type: HTTP
    URL: http://virtual.host:80/api
    ProxyType: OnPremise
    Authentication: BasicAuthentication
    User: dest-user
    Password: dest-pass
  - Name: onprem-berlin
    Type: HTTP
    URL: http://virtual.host:80
    ProxyType: OnPremise
    CloudConnectorLocationId: berlin
listeners:
  - { name: onprem, plugin: http, listen: "127.0.0.1:$l_onprem", destination: onprem }
  - { name: onprem-api, plugin: http, listen: "127.0.0.1:$l_api", destination: onprem-api }
  - { name: onprem-berlin, plugin: http, listen: "127.0.0.1:$l_berlin", destination: onprem-berlin }
  - { name: proxy, plugin: http, listen: "127.0.0.1:$lp", mode: forward }
YAML
cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
systems:
  - { virtual: virtual.host:80, internal: "127.0.0.1:$op_main", protocol: HTTP, paths: [ "/api/" ] }
  - { virtual: echo.internal:7, internal: "127.0.0.1:$ep", protocol: TCP }
  - { virtual: web.tcp:8080, internal: "127.0.0.1:$op_main", protocol: TCP }
YAML
cat >"$dir/cn-berlin.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn2_admin }
tenant: acme
token: acme-token
location_id: berlin
ca: ca.crt
audit_log: audit-berlin.jsonl
systems:
  - { virtual: virtual.host:80, internal: "127.0.0.1:$op_berlin", protocol: HTTP, paths: [ "/api/" ] }
YAML
out=$("$FERRY" check -c "$dir/gw.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
start_connector connector-berlin "$dir/cn-berlin.yaml" "$cn2_admin"
cn2_pid=$CN_PID cn2_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "the connector did not come up"
wait_readyz "$cn2_admin" 200 10 || fail "the berlin connector did not come up"
need_metric "$gw_admin" 'ferry_tunnels{tenant="acme",location=""}' -eq 2 10
need_metric "$gw_admin" 'ferry_tunnels{tenant="acme",location="berlin"}' -eq 2 10

onprem=http://127.0.0.1:$l_onprem

# --- 1. transparent listeners ----------------------------------------------------------
hreq "transparent /api/echo through the tunnel" "$onprem/api/echo?a=1"
if want_ok; then
    want_eq "origin" "$(ej origin)" main
    want_eq "origin path" "$(ej path)" /api/echo
    want_eq "origin query" "$(ej query)" a=1
    h=$(eh Host)
    [[ "$h" == virtual.host || "$h" == virtual.host:80 ]] ||
        fail_later "Host at the origin: want virtual.host[:80], got '$h'"
    [ -n "$(hdr x-request-id)" ] || fail_later "no x-request-id through the tunnel"
fi
# The connector's refusal: 403 with ferry-error access-denied, relayed with the
# x-request-id every transparent answer has. (Its body is the connector's own text, see
# tunnel_http_paths.sh; whether the gateway adds the x-error-* headers to it is left open.)
connector_denied() {
    want_status 403 || return 0
    want_eq "$HR_WHAT: ferry-error" "$(hdr ferry-error)" access-denied
    [ -n "$(hdr x-request-id)" ] || fail_later "$HR_WHAT: no x-request-id"
}
for p in /other /apix; do
    hreq "transparent $p (outside paths)" "$onprem$p"
    connector_denied
done
# A dot-segment escape: the connector's 403, or ferry may refuse it itself (400).
hreq "transparent /api/../x" --path-as-is "$onprem/api/../x"
if [ "$HR_STATUS" = 400 ]; then
    [ -n "$(hdr ferry-error)" ] || fail_later "$HR_WHAT: 400 without ferry-error"
else
    connector_denied
fi
if grep -q '"target": "/other\|"target": "/apix\|"target": "/x' "$main_log"; then
    fail_later "the origin saw a request the connector should have refused"
fi
[ "$(audit_count "$dir/audit.jsonl" outcome=denied path=/other)" -ge 1 ] ||
    fail_later "no denied audit line for /other: $(tail -n 2 "$dir/audit.jsonl")"
hcl "50 requests on one connection through the tunnel" keepalive --port "$l_onprem" --n 50 \
    --path /api/echo --timeout 20
head -c $((8 << 20)) /dev/urandom >"$dir/mid"
want=$(sha256sum "$dir/mid" | cut -d' ' -f1)
got=$(curl -sS --max-time 30 -T - -H 'Transfer-Encoding: chunked' "$onprem/api/upload" <"$dir/mid" 2>&1) || true
want_eq "8 MiB chunked upload through the tunnel" "$got" "$((8 << 20)) $want"
n=$((20 << 20))
got=$(curl -sS --max-time 30 "$onprem/api/bytes/$n" | sha256sum | cut -d' ' -f1)
want_eq "20 MiB download through the tunnel" "$got" "$(bytes_sha $n)"
hreq "onprem-api: URL path joined, Basic added" "http://127.0.0.1:$l_api/echo"
if want_ok; then
    want_eq "origin path (joined)" "$(ej path)" /api/echo
    want_eq "Authorization at the origin" "$(eh Authorization)" "Basic $(printf 'dest-user:dest-pass' | base64)"
fi
hreq "onprem-berlin reaches the berlin connector" "http://127.0.0.1:$l_berlin/api/echo"
want_ok && want_eq "origin behind berlin" "$(ej origin)" berlin

# --- 2. forward mode into the tunnel -------------------------------------------------------
P=(-x "http://127.0.0.1:$lp")
BEARER=(--proxy-header 'Proxy-Authorization: Bearer acme-token')
hreq "forward to virtual.host" "${P[@]}" "${BEARER[@]}" "http://virtual.host/api/echo"
want_ok && want_eq "origin (default location)" "$(ej origin)" main
hreq "forward to virtual.host at berlin" "${P[@]}" "${BEARER[@]}" \
    -H 'SAP-Connectivity-SCC-Location_ID: berlin' "http://virtual.host/api/echo"
if want_ok; then
    want_eq "origin (berlin)" "$(ej origin)" berlin
    want_eq "location header at the origin" "$(ehn SAP-Connectivity-SCC-Location_ID)" 0
    want_eq "Proxy-Authorization at the origin" "$(ehn Proxy-Authorization)" 0
fi
hreq "forward to virtual.host/other" "${P[@]}" "${BEARER[@]}" "http://virtual.host/other"
want_status 403 && want_eq "$HR_WHAT: ferry-error" "$(hdr ferry-error)" access-denied
hreq "forward, location paris (no connector)" "${P[@]}" "${BEARER[@]}" \
    -H 'SAP-Connectivity-SCC-Location_ID: paris' "http://virtual.host/api/echo"
want_error 503 no-tunnel
hreq "forward to a host no connector exposes" "${P[@]}" "${BEARER[@]}" "http://unknown.host/api/echo"
want_error 403 access-denied

# --- 3. CONNECT through the tunnel ----------------------------------------------------------
# CONNECT carries a byte stream, so it goes to a TCP system (a CONNECT to an HTTP
# system is, like a SOCKS5 stream, a protocol the connector may refuse: not checked).
hreq "CONNECT web.tcp:8080 (curl -p)" -p "${P[@]}" "${BEARER[@]}" "http://web.tcp:8080/api/echo"
want_ok && want_eq "origin through CONNECT" "$(ej origin)" main
hcl "CONNECT to a host no connector exposes: 403" connect --port "$lp" --target unknown.host:80 \
    --header 'Proxy-Authorization: Bearer acme-token' --expect-status 403
hcl "CONNECT at location paris: 503" connect --port "$lp" --target web.tcp:8080 \
    --header 'Proxy-Authorization: Bearer acme-token' \
    --header 'SAP-Connectivity-SCC-Location_ID: paris' --expect-status 503
hcl "CONNECT echo.internal:7 (TCP system)" connect --port "$lp" --target echo.internal:7 \
    --header 'Proxy-Authorization: Bearer acme-token' --echo "through the tunnel" \
    --expect-echo "echo:through the tunnel"
[ "$(audit_count "$dir/audit.jsonl" virtual=echo.internal:7)" -ge 1 ] ||
    fail_later "no audit line for the CONNECT to echo.internal:7"

good_request "a request after everything" "$onprem/api/echo"
stop_proc "$cn2_pid" "$cn2_log" "berlin connector"
stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
"$FERRY" connector --verify-audit "$dir/audit.jsonl" >/dev/null || fail_later "audit chain broken"
"$FERRY" connector --verify-audit "$dir/audit-berlin.jsonl" >/dev/null || fail_later "berlin audit chain broken"
fail_deferred
echo "http_tunnel: ok"
