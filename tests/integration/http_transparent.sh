#!/usr/bin/env bash
# http_transparent.sh: the http plugin's transparent mode against a direct (Internet) origin.
#
#   bash tests/integration/http_transparent.sh [BUILD_DIR]     (default: build)
#
# One origin (tools/http_origin.py, /api stripped for routing), one origin that closes
# idle connections after 0.5 s. Destinations: `api` (URL http://127.0.0.1:O/api,
# BasicAuthentication dest-user/dest-pass, URL.headers.X-Custom, URL.queries.sap-client
# and URL.queries.q "a b&c"), `plain` (the origin, no path), `down` (a closed port),
# `idle` (the idle-closing origin). Listeners: `api` bound to api, `shared` (no
# destination), `down`, `slow` (bound to plain, upstream_timeout_ms 1500), `idle`.
# 1. Bound listener: the origin sees path /api/<request path>, the query plus
#    sap-client=100 and q (percent-encoded), one Authorization (the destination's Basic,
#    not the client's), X-Custom, X-Forwarded-For (appended to the client's),
#    X-Forwarded-Proto http, X-Forwarded-Host = the client's Host, Host = the URL's
#    host:port, no hop-by-hop fields (Keep-Alive, Proxy-Connection, one named in
#    Connection); the answer has an x-request-id, a new one per request; a POST body
#    arrives whole; an origin 404/204 passes through without ferry-error.
# 2. Shared listener: Host: api, Host: api:8080 and X-Destination-Name select; the
#    header wins over Host; two destinations on one client connection; an unknown name
#    (Host or header) is 404 destination-not-found with the x-error-* headers.
# 3. 1000 requests on one client connection (and 100 curl URLs on one connection): all
#    200, the origin accepted only a few new connections (upstream pool); metrics
#    ferry_http_requests_total (class 2xx) and the duration histogram count them; the
#    access log has a "request" line per request.
# 4. Bodies: 50 MiB chunked upload (curl -T -), 8 MiB Content-Length upload, 50 MiB
#    download (Content-Length) and 20 MiB chunked download, all sha256-checked;
#    Expect: 100-continue: curl's upload works and a raw client gets the 100 before it
#    sends the body; a WebSocket upgrade (101) then echoes raw bytes both ways.
# 5. Errors: closed upstream port 502 upstream-unreachable; an origin slower than
#    upstream_timeout_ms 504 upstream-timeout (in 1.5 s, not 4 s); an origin breaking
#    HTTP 502 bad-gateway; an origin closing after its answer and one closing idle
#    pooled connections do not cost the client a failed request.
# ferry exits 0 on SIGTERM with no sanitizer report.
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
start_http_origin origin --strip-prefix /api
op=$HO_PORT
start_http_origin idle-origin --idle-timeout 0.5
op_idle=$HO_PORT
closed=$(free_port)

admin=$(free_port)
l_api=$(free_port); l_shared=$(free_port); l_down=$(free_port); l_slow=$(free_port)
l_idle=$(free_port)
access=$dir/access.log
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $access }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - Name: api
    Type: HTTP
    URL: http://127.0.0.1:$op/api
    ProxyType: Internet
    Authentication: BasicAuthentication
    User: dest-user
    Password: dest-pass
    URL.headers.X-Custom: custom-value
    URL.queries.sap-client: "100"
    URL.queries.q: "a b&c"
  - { Name: plain, Type: HTTP, URL: "http://127.0.0.1:$op", ProxyType: Internet }
  - { Name: down, Type: HTTP, URL: "http://127.0.0.1:$closed", ProxyType: Internet }
  - { Name: idle, Type: HTTP, URL: "http://127.0.0.1:$op_idle", ProxyType: Internet }
listeners:
  - { name: api, plugin: http, listen: "127.0.0.1:$l_api", destination: api }
  - { name: shared, plugin: http, listen: "127.0.0.1:$l_shared", mode: transparent }
  - { name: down, plugin: http, listen: "127.0.0.1:$l_down", destination: down }
  - { name: slow, plugin: http, listen: "127.0.0.1:$l_slow", destination: plain, upstream_timeout_ms: 1500 }
  - { name: idle, plugin: http, listen: "127.0.0.1:$l_idle", destination: idle }
YAML
out=$("$FERRY" check -c "$dir/ferry.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_ferry "$dir/ferry.yaml" "$admin"
api=http://127.0.0.1:$l_api
shared=http://127.0.0.1:$l_shared
dest_auth="Basic $(printf 'dest-user:dest-pass' | base64)"

# --- 1. bound listener: what the origin sees -------------------------------------------
hreq "GET through the api listener" -H 'Authorization: Basic Y2xpZW50OnNlY3JldA==' \
    -H 'X-Forwarded-For: 10.9.8.7' -H 'Connection: X-Hop' -H 'X-Hop: hop-secret' \
    -H 'Keep-Alive: timeout=5' -H 'Proxy-Connection: keep-alive' "$api/echo/x?a=1"
if want_ok; then
    want_eq "origin path" "$(ej path)" /api/echo/x
    q=$(ej query)
    for part in a=1 sap-client=100; do
        [[ "&$q&" == *"&$part&"* ]] || fail_later "origin query '$q': no $part"
    done
    [[ "&$q&" == *"&q=a%20b%26c&"* || "&$q&" == *"&q=a+b%26c&"* ]] ||
        fail_later "origin query '$q': want q=a%20b%26c (URL.queries.q percent-encoded)"
    want_eq "Authorization fields at the origin" "$(ehn Authorization)" 1
    want_eq "Authorization at the origin" "$(eh Authorization)" "$dest_auth"
    want_eq "X-Custom at the origin" "$(eh X-Custom)" custom-value
    xff=$(eh X-Forwarded-For | paste -sd, - | sed 's/, */, /g')
    want_eq "X-Forwarded-For (appended to the client's)" "$xff" "10.9.8.7, 127.0.0.1"
    want_eq "X-Forwarded-Proto" "$(eh X-Forwarded-Proto)" http
    want_eq "X-Forwarded-Host" "$(eh X-Forwarded-Host)" "127.0.0.1:$l_api"
    want_eq "Host at the origin" "$(eh Host)" "127.0.0.1:$op"
    for h in Keep-Alive Proxy-Connection X-Hop; do
        want_eq "hop-by-hop $h at the origin" "$(ehn "$h")" 0
    done
fi
rid1=$(hdr x-request-id)
[ -n "$rid1" ] || fail_later "a successful answer has no x-request-id"
hreq "GET without client credentials" "$api/echo"
if want_ok; then
    want_eq "X-Forwarded-For without a client's" "$(eh X-Forwarded-For)" 127.0.0.1
    want_eq "Authorization without a client's" "$(eh Authorization)" "$dest_auth"
    want_eq "origin query without a client query" \
        "$(ej query | tr '&' '\n' | grep -c '^sap-client=100$')" 1
    rid2=$(hdr x-request-id)
    if [ -z "$rid2" ] || [ "$rid2" = "$rid1" ]; then
        fail_later "x-request-id: want a new one per request, got '$rid1' then '$rid2'"
    fi
fi
hreq "POST with a body" --data-binary 'hello body' "$api/echo"
if want_ok; then
    want_eq "POST body length at the origin" "$(ej body_len)" 10
    want_eq "POST body sha256" "$(ej body_sha256)" "$(printf 'hello body' | sha256sum | cut -d' ' -f1)"
    want_eq "POST method at the origin" "$(ej method)" POST
fi
hreq "the origin's own 404" "$api/status/404"
want_status 404 && want_no_ferry_error
hreq "the origin's own 204" "$api/status/204"
want_status 204 && want_no_ferry_error

# --- 2. shared listener ----------------------------------------------------------------
hreq "shared, Host: api" -H 'Host: api' "$shared/echo"
want_ok && want_eq "Host: api reaches api" "$(ej path) $(eh X-Custom)" "/api/echo custom-value"
hreq "shared, Host: api:8080" -H 'Host: api:8080' "$shared/echo"
want_ok && want_eq "Host: api:8080 reaches api" "$(ej path)" /api/echo
hreq "shared, X-Destination-Name: plain" -H 'X-Destination-Name: plain' "$shared/echo"
want_ok && want_eq "X-Destination-Name: plain" "$(ej path) $(ehn X-Custom)" "/echo 0"
hreq "shared, Host: api + X-Destination-Name: plain" -H 'Host: api' -H 'X-Destination-Name: plain' \
    "$shared/echo"
want_ok && want_eq "X-Destination-Name wins over Host" "$(ej path)" /echo
out=$(curl -s --max-time 10 -H 'Host: api' -o /dev/null -w '%{http_code} %{num_connects}\n' \
      "$shared/echo" --next -s -H 'X-Destination-Name: plain' -o "$dir/second" \
      -w '%{http_code} %{num_connects}\n' "$shared/echo") || true
want_eq "two destinations on one client connection" "$(echo "$out" | tr '\n' ' ')" "200 1 200 0 "
grep -q '"path": "/echo"' "$dir/second" || fail_later "the second request on a connection went to the wrong destination: $(head -c 200 "$dir/second")"
hreq "shared, unknown Host" -H 'Host: nope' "$shared/echo"
want_error 404 destination-not-found transparent
hreq "shared, unknown X-Destination-Name" -H 'X-Destination-Name: nope' "$shared/echo"
want_error 404 destination-not-found transparent

# --- 3. keep-alive and the upstream pool ----------------------------------------------
before=$(curl -s --max-time 5 "http://127.0.0.1:$op/count")
hcl "1000 requests on one connection" keepalive --port "$l_api" --n 1000 --path /echo --timeout 20
urls=()
for ((i = 0; i < 100; i++)); do urls+=(-o /dev/null "$api/echo"); done
connects=$(curl -s --max-time 30 -w '%{num_connects}\n' "${urls[@]}" | awk '{ s += $1 } END { print s }')
want_eq "curl: 100 URLs, client connections opened" "$connects" 1
after=$(curl -s --max-time 5 "http://127.0.0.1:$op/count")
new=$((after - before - 1))      # minus the second /count's own connection
[ "$new" -le 4 ] || fail_later "upstream pool: 1100 requests opened $new new origin connections (want <= 4)"
echo "1100 keep-alive requests: $new new origin connection(s)" >&2
wait_hmetric "$admin" ferry_http_requests_total -ge 1100 5 'listener="api"' 'destination="api"' 'class="2xx"' ||
    fail_later "/metrics: want ferry_http_requests_total{listener=\"api\",destination=\"api\",class=\"2xx\"}" \
        ">= 1100; the 2xx series are: $(curl -s --max-time 5 "http://127.0.0.1:$admin/metrics" |
            grep '^ferry_http_requests_total.*class="2xx"' | tr '\n' ';')"
v=$(hmetric "$admin" ferry_http_request_duration_seconds_bucket 'listener="api"' 'le="+Inf"')
if [ -z "$v" ] || [ "${v%.*}" -lt 1100 ]; then
    fail_later "/metrics: ferry_http_request_duration_seconds_bucket{listener=api,le=+Inf} is '$v', want >= 1100"
fi
wait_lines "$access" request 1100 5 destination=api status=200 ||
    fail_later "access log: want >= 1100 \"request\" lines with destination api, status 200; got" \
        "$(log_lines "$access" request destination=api status=200): $(tail -n 2 "$access")"
missing=$(python3 -c 'import json, sys
for l in open(sys.argv[1]):
    try:
        r = json.loads(l)
    except ValueError:
        continue
    if r.get("msg") == "request" and r.get("destination") == "api":
        print(" ".join(f for f in sys.argv[2:] if f not in r)); break' "$access" \
    method destination status bytes_in bytes_out upstream_ms total_ms outcome)
[ -z "$missing" ] || fail_later "access log: a request line lacks: $missing"

# --- 4. bodies, 100-continue, WebSocket -------------------------------------------------
head -c $((50 << 20)) /dev/urandom >"$dir/big"
want=$(sha256sum "$dir/big" | cut -d' ' -f1)
got=$(curl -sS --max-time 60 -T - -H 'Transfer-Encoding: chunked' "$api/upload" <"$dir/big" 2>&1) || true
want_eq "50 MiB chunked upload (length sha256 at the origin)" "$got" "$((50 << 20)) $want"
head -c $((8 << 20)) "$dir/big" >"$dir/mid"
want8=$(sha256sum "$dir/mid" | cut -d' ' -f1)
got=$(curl -sS --max-time 30 --data-binary @"$dir/mid" -H 'Expect:' "$api/upload" 2>&1) || true
want_eq "8 MiB Content-Length upload" "$got" "$((8 << 20)) $want8"
got=$(curl -sS --max-time 30 --data-binary @"$dir/mid" -H 'Expect: 100-continue' \
      --expect100-timeout 20 "$api/upload" 2>&1) || true
want_eq "8 MiB upload with Expect: 100-continue" "$got" "$((8 << 20)) $want8"
hcl "raw Expect: 100-continue: the 100 comes before the body" raw --port "$l_api" --timeout 5 \
    --send 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n' \
    --interim 100 --send 'hello world' --response --expect-status 200 \
    --expect-body "11 $(printf 'hello world' | sha256sum | cut -d' ' -f1)"
n=$((50 << 20))
got=$(curl -sS --max-time 60 "$api/bytes/$n" | sha256sum | cut -d' ' -f1)
want_eq "50 MiB download sha256" "$got" "$(bytes_sha $n)"
n=$((20 << 20))
got=$(curl -sS --max-time 60 -D "$dir/chunked.hdrs" "$api/bytes/$n?chunked=1" | sha256sum | cut -d' ' -f1)
want_eq "20 MiB chunked download sha256" "$got" "$(bytes_sha $n)"
hcl "WebSocket upgrade, then raw bytes both ways" ws --port "$l_api" --path /ws --rounds 3 --big $((1 << 20))
rm -f "$dir/big" "$dir/mid"

# --- 5. upstream errors and upstream connection reuse ----------------------------------
hreq "upstream port closed" "http://127.0.0.1:$l_down/echo"
want_error 502 upstream-unreachable transparent
t0=$(date +%s%N)
hreq "origin slower than upstream_timeout_ms" "http://127.0.0.1:$l_slow/slow?ms=30000"
ms=$((($(date +%s%N) - t0) / 1000000))
want_error 504 upstream-timeout transparent
# From upstream_timeout_ms (1.5 s) on, and well before the origin's answer (30 s) or the
# default timeout (30 s): a loaded machine fires the timer late, never early.
if [ "$ms" -lt 1300 ] || [ "$ms" -gt 20000 ]; then
    fail_later "504 after ${ms} ms, want upstream_timeout_ms (1500) or a little later"
fi
hreq "origin within upstream_timeout_ms" "http://127.0.0.1:$l_slow/slow?ms=200"
want_ok
hreq "origin breaking HTTP (two Content-Length)" -H 'X-Destination-Name: plain' "$shared/broken"
want_error 502 bad-gateway transparent
out=$(curl -s --max-time 10 -w '%{http_code} ' -o /dev/null "$api/echo?close=1" -o /dev/null "$api/echo" \
      -o /dev/null "$api/echo?close=1" -o /dev/null "$api/echo") || true
want_eq "origin closing after each answer: the client sees no failure" "$out" "200 200 200 200 "
for i in 1 2 3; do
    hreq "idle-closed pooled connection, round $i" "http://127.0.0.1:$l_idle/echo"
    want_ok
    sleep 1.2        # the origin closes its side after 0.5 s idle
done
good_request "a request after everything" "$api/echo"

stop_ferry
fail_deferred
echo "http_transparent: ok"
