#!/usr/bin/env bash
# http_forward.sh: the http plugin's forward-proxy mode (absolute URIs and CONNECT).
#
#   bash tests/integration/http_forward.sh [BUILD_DIR]     (default: build)
#
# One gateway, tenants acme (a connector is up at the default location, so acme's
# refusals are 403) and other (no connector anywhere, so its refusals are 503).
# Listener `proxy` (mode forward, egress: the origin, a closed port and
# nonexistent.invalid:80); listener `open` (forward, auth none, tenant acme, egress:
# the origin). A second origin (`forbidden`) listens on a port egress does not allow.
# 1. curl -x with Proxy-Authorization: Bearer <acme token> reaches the origin; the
#    origin sees the path and query in origin form, Host = the target, and no
#    Proxy-Authorization, SAP-Connectivity-SCC-Location_ID or Proxy-Connection; Basic
#    acme:token, Basic base64(token:) and the other tenant's token work too; two
#    requests share one client connection.
# 2. No credentials, a wrong token, a wrong tenant id in Basic, and a bad scheme: 407
#    proxy-auth-required with Proxy-Authenticate: Bearer realm="ferry" (for CONNECT
#    too).
# 3. Routing: acme to a target egress refuses: 403 access-denied (the origin there never
#    sees a request); acme at a location with no connector (SAP-Connectivity-SCC-
#    Location_ID: nowhere): 503 no-tunnel; tenant other: 503 no-tunnel; an allowed
#    closed port and an allowed name that does not resolve: 502 upstream-unreachable;
#    an https:// absolute URI: 405 https-not-supported.
# 4. CONNECT: curl -p (proxytunnel) to the origin works; CONNECT to a refused target
#    is 403, to a location without a connector 503, to the closed port 502.
# 5. The auth none listener needs no credentials and applies its own egress.
# 6. The access log has request lines with status 407 and 403.
# Every process exits 0 on SIGTERM with no sanitizer report.
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
start_http_origin origin
op=$HO_PORT
start_http_origin forbidden --echo-all
fp=$HO_PORT forbidden_log=$HO_LOG
closed=$(free_port)

gw_admin=$(free_port); tport=$(free_port); lp=$(free_port); lo=$(free_port); cn_admin=$(free_port)
access=$dir/access.log
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $access }
admin: { listen: 127.0.0.1:$gw_admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token }, { id: other, token: other-token } ]
listeners:
  - name: proxy
    plugin: http
    listen: 127.0.0.1:$lp
    mode: forward
    egress: [ "127.0.0.1:$op", "127.0.0.1:$closed", "nonexistent.invalid:80" ]
  - name: open
    plugin: http
    listen: 127.0.0.1:$lo
    mode: forward
    auth: none
    tenant: acme
    egress: [ "127.0.0.1:$op" ]
YAML
# acme's connector at the default location (it exposes one unrelated system).
cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
systems:
  - { virtual: web.internal:80, internal: "127.0.0.1:$op", protocol: HTTP }
YAML
out=$("$FERRY" check -c "$dir/gw.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "the connector did not come up"
need_metric "$gw_admin" 'ferry_tunnels{tenant="acme",location=""}' -eq 2 10

P=(-x "http://127.0.0.1:$lp")
BEARER=(--proxy-header 'Proxy-Authorization: Bearer acme-token')
target=http://127.0.0.1:$op

# --- 1. authenticated requests ---------------------------------------------------------
hreq "Bearer token" "${P[@]}" "${BEARER[@]}" -H 'SAP-Connectivity-SCC-Location_ID: nowhere' \
    "$target/echo/x?a=1"
if want_ok; then
    want_eq "origin path" "$(ej path)" /echo/x
    want_eq "origin query" "$(ej query)" a=1
    want_eq "origin request target (origin form)" "$(ej target)" "/echo/x?a=1"
    want_eq "Host at the origin" "$(eh Host)" "127.0.0.1:$op"
    for h in Proxy-Authorization SAP-Connectivity-SCC-Location_ID Proxy-Connection; do
        want_eq "$h at the origin" "$(ehn "$h")" 0
    done
fi
hreq "Basic acme:acme-token" "${P[@]}" --proxy-user acme:acme-token "$target/echo"
want_ok && want_eq "Proxy-Authorization (Basic) at the origin" "$(ehn Proxy-Authorization)" 0
hreq "Basic base64(token:)" "${P[@]}" \
    --proxy-header "Proxy-Authorization: Basic $(printf 'acme-token:' | base64)" "$target/echo"
want_ok
hreq "tenant other's Bearer token" "${P[@]}" --proxy-header 'Proxy-Authorization: Bearer other-token' \
    "$target/echo"
want_ok
out=$(curl -s --max-time 10 "${P[@]}" "${BEARER[@]}" -w '%{http_code} %{num_connects}\n' \
      -o /dev/null "$target/echo" -o /dev/null "$target/count") || true
want_eq "two requests on one proxy connection" "$(echo "$out" | tr '\n' ' ')" "200 1 200 0 "

# --- 2. 407 --------------------------------------------------------------------------------
check_407() {
    want_error 407 proxy-auth-required || return 0
    [[ "$(hdr proxy-authenticate)" == *'Bearer realm="ferry"'* ]] ||
        fail_later "$HR_WHAT: want Proxy-Authenticate: Bearer realm=\"ferry\", got '$(hdr proxy-authenticate)'"
}
hreq "no credentials" "${P[@]}" "$target/echo"
check_407
hreq "wrong Bearer token" "${P[@]}" --proxy-header 'Proxy-Authorization: Bearer nope' "$target/echo"
check_407
hreq "Basic with the wrong tenant id" "${P[@]}" --proxy-user other:acme-token "$target/echo"
check_407
hreq "Basic with a wrong password" "${P[@]}" --proxy-user acme:nope "$target/echo"
check_407
hreq "unknown scheme" "${P[@]}" --proxy-header 'Proxy-Authorization: Digest x=1' "$target/echo"
check_407
hcl "CONNECT without credentials: 407" connect --port "$lp" --target "127.0.0.1:$op" --expect-status 407

# --- 3. routing refusals and upstream errors ---------------------------------------------
hreq "acme, target egress refuses (connector live)" "${P[@]}" "${BEARER[@]}" "http://127.0.0.1:$fp/echo"
want_error 403 access-denied
hreq "acme, location without a connector" "${P[@]}" "${BEARER[@]}" \
    -H 'SAP-Connectivity-SCC-Location_ID: nowhere' "http://127.0.0.1:$fp/echo"
want_error 503 no-tunnel
hreq "tenant other (no connector), target egress refuses" "${P[@]}" \
    --proxy-header 'Proxy-Authorization: Bearer other-token' "http://127.0.0.1:$fp/echo"
want_error 503 no-tunnel
if grep -q '"method"' "$forbidden_log"; then
    fail_later "the origin behind a refused target saw a request: $(head -n 2 "$forbidden_log")"
fi
hreq "allowed closed port" "${P[@]}" "${BEARER[@]}" "http://127.0.0.1:$closed/echo"
want_error 502 upstream-unreachable
hreq "allowed name that does not resolve" "${P[@]}" "${BEARER[@]}" "http://nonexistent.invalid/echo"
want_error 502 upstream-unreachable
hcl "https:// absolute URI: 405" raw --port "$lp" \
    --send "GET https://127.0.0.1:$op/echo HTTP/1.1\\r\\nHost: 127.0.0.1:$op\\r\\nProxy-Authorization: Bearer acme-token\\r\\n\\r\\n" \
    --response --expect-status 405 --expect-error https-not-supported

# --- 4. CONNECT ----------------------------------------------------------------------------
hreq "CONNECT (curl -p) to the origin" -p "${P[@]}" "${BEARER[@]}" "$target/echo"
want_ok && want_eq "Proxy-Authorization inside the CONNECT tunnel" "$(ehn Proxy-Authorization)" 0
hcl "CONNECT to a refused target: 403" connect --port "$lp" --target "127.0.0.1:$fp" \
    --header 'Proxy-Authorization: Bearer acme-token' --expect-status 403
hcl "CONNECT to a location without a connector: 503" connect --port "$lp" --target "127.0.0.1:$fp" \
    --header 'Proxy-Authorization: Bearer acme-token' \
    --header 'SAP-Connectivity-SCC-Location_ID: nowhere' --expect-status 503
hcl "CONNECT to the allowed closed port: 502" connect --port "$lp" --target "127.0.0.1:$closed" \
    --header 'Proxy-Authorization: Bearer acme-token' --expect-status 502

# --- 5. auth none --------------------------------------------------------------------------
hreq "auth none listener, no credentials" -x "http://127.0.0.1:$lo" "$target/echo"
want_ok
hreq "auth none listener, target egress refuses" -x "http://127.0.0.1:$lo" "http://127.0.0.1:$fp/echo"
want_error 403 access-denied

# --- 6. access log -------------------------------------------------------------------------
wait_lines "$access" request 1 5 status=407 || fail_later "access log: no request line with status 407"
wait_lines "$access" request 1 5 status=403 || fail_later "access log: no request line with status 403"

good_request "a request after everything" "${P[@]}" "${BEARER[@]}" "$target/echo"
stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
fail_deferred
echo "http_forward: ok"
