#!/usr/bin/env bash
# http_smuggling.sh: the http plugin refuses ambiguous and malformed request heads.
#
#   bash tests/integration/http_smuggling.sh [BUILD_DIR]     (default: build)
#
# One origin (every path echoes), destination `plain`. Listeners (transparent, bound to
# plain): `main` (default limits, request_timeout_ms 1000), `small` (max_header_bytes
# 4096, max_headers 20, max_uri_bytes 1024, keepalive_timeout_ms 600000: the connection
# of section 5 idles through the whole script), `ka` (keepalive_timeout_ms 1000).
# Time bounds below only tell a deadline from the next one that could have ended the
# wait (they are wide: a loaded machine fires timers late, never early).
# 1. Raw requests get the status and ferry-error below, then the close, and a normal
#    request on a fresh connection works after each: CL+TE (both orders) 400
#    smuggling-cl-te; two Content-Length fields, and "5, 5", 400 duplicate-content-length;
#    Content-Length -1, +5, 0x5, "5 5", empty, 20 digits 400 bad-content-length;
#    obs-fold 400 obs-fold; a bare CR in a value 400 bare-cr; a bare LF ending a header
#    line or the request line 400 bare-lf; Transfer-Encoding gzip and "chunked, chunked"
#    400 bad-transfer-encoding; a space before the colon 400 (any reason); a 20000-byte
#    header 431 headers-too-large (or header-too-large); a 9000-byte URI 414 uri-too-long;
#    150 headers 431 too-many-headers. The requests smuggled in the bodies never reach
#    the origin.
# 2. Limits: at the defaults a 15000-byte header, 90 headers and an 8000-byte URI pass;
#    on `small` 5000 bytes of header, 30 headers and a 1500-byte URI are refused (431,
#    431, 414) while 10 headers and a 1000-byte URI pass.
# 3. Framing done right: two pipelined GETs answer in order; a POST with a 5-byte body
#    and a GET pipelined behind it answer 200 and 200.
# 4. Timeouts: a partial head then silence gets 408 request-timeout about 1 s later and
#    the close; a head trickled a byte every 0.3 s gets it too (the deadline is not
#    renewed per byte); on `ka` an idle connection is closed without a byte about 1 s
#    after its answer, while on `small` a second request 2 s later is still served.
# 5. A connection opened before all this still serves a request afterwards.
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
start_http_origin origin --echo-all
op=$HO_PORT origin_log=$HO_LOG
admin=$(free_port); lm=$(free_port); ls=$(free_port); lk=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: plain, Type: HTTP, URL: "http://127.0.0.1:$op", ProxyType: Internet }
listeners:
  - { name: main, plugin: http, listen: "127.0.0.1:$lm", destination: plain, request_timeout_ms: 1000 }
  - name: small
    plugin: http
    listen: "127.0.0.1:$ls"
    destination: plain
    max_header_bytes: 4096
    max_headers: 20
    max_uri_bytes: 1024
    keepalive_timeout_ms: 600000
  - { name: ka, plugin: http, listen: "127.0.0.1:$lk", destination: plain, keepalive_timeout_ms: 1000 }
YAML
out=$("$FERRY" check -c "$dir/ferry.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_ferry "$dir/ferry.yaml" "$admin"

# A connection opened before the bad ones; it asks again once they are done (section 5).
# On `small`: a 600 s keep-alive, so only a broken gateway would end it early; its wait
# for the go file is bounded by the test's own deadline (ctest: 300 s).
start_bg held python3 "$TOOLS/http_client.py" raw --port "$ls" --timeout 250 \
    --send 'GET /held-1 HTTP/1.1\r\nHost: a\r\n\r\n' --response \
    --wait-file "$dir/go" \
    --send 'GET /held-2 HTTP/1.1\r\nHost: a\r\n\r\n' --response --expect-status 200 --expect-body /held-2
held_pid=$BG_PID
wait_log "$origin_log" '"target": "/held-1"' 10 "$held_pid" ||
    fail "the first connection's request did not reach the origin: $(cat "$(bg_log held)")"

H='Host: a\r\n'
# bad WHAT PORT STATUS REASON REQUEST: want STATUS + ferry-error REASON, then the close;
# then a normal request on a fresh connection.
bad() {
    local what=$1 port=$2 status=$3 reason=$4 req=$5
    hcl "$what" raw --port "$port" --send "$req" --response --expect-status "$status" \
        --expect-error "$reason" --expect-close || true
    good_request "a normal request after: $what" "http://127.0.0.1:$port/after"
}

# --- 1. smuggling and bad syntax -----------------------------------------------------------
bad "CL then TE" "$lm" 400 smuggling-cl-te \
    "POST /clte HTTP/1.1\\r\\n${H}Content-Length: 6\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET /smuggled-1 HTTP/1.1\\r\\n${H}\\r\\n"
bad "TE then CL" "$lm" 400 smuggling-cl-te \
    "POST /tecl HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\nContent-Length: 40\\r\\n\\r\\n0\\r\\n\\r\\nGET /smuggled-2 HTTP/1.1\\r\\n${H}\\r\\n"
bad "two Content-Length" "$lm" 400 duplicate-content-length \
    "POST /dup HTTP/1.1\\r\\n${H}Content-Length: 5\\r\\nContent-Length: 5\\r\\n\\r\\nhello"
bad "Content-Length: 5, 5" "$lm" 400 duplicate-content-length \
    "POST /dup2 HTTP/1.1\\r\\n${H}Content-Length: 5, 5\\r\\n\\r\\nhello"
for cl in -1 +5 0x5 "5 5" "" 99999999999999999999; do
    bad "Content-Length '$cl'" "$lm" 400 bad-content-length \
        "POST /badcl HTTP/1.1\\r\\n${H}Content-Length: $cl\\r\\n\\r\\nhello"
done
bad "obs-fold" "$lm" 400 obs-fold "GET /fold HTTP/1.1\\r\\n${H}X-A: a\\r\\n b\\r\\n\\r\\n"
bad "bare CR in a value" "$lm" 400 bare-cr "GET /cr HTTP/1.1\\r\\n${H}X-A: a\\rb\\r\\n\\r\\n"
bad "bare LF ending a header line" "$lm" 400 bare-lf "GET /lf HTTP/1.1\\r\\n${H}X-A: a\\nX-B: b\\r\\n\\r\\n"
bad "bare LF ending the request line" "$lm" 400 bare-lf "GET /lf2 HTTP/1.1\\n${H}\\r\\n"
bad "Transfer-Encoding: gzip" "$lm" 400 bad-transfer-encoding \
    "POST /te HTTP/1.1\\r\\n${H}Transfer-Encoding: gzip\\r\\n\\r\\n"
bad "Transfer-Encoding: chunked, chunked" "$lm" 400 bad-transfer-encoding \
    "POST /te2 HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked, chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
bad "space before the colon" "$lm" 400 '*' "GET /sp HTTP/1.1\\r\\n${H}X-A : b\\r\\n\\r\\n"
bad "a 20000-byte header" "$lm" 431 'headers-too-large|header-too-large' \
    "GET /big HTTP/1.1\\r\\n${H}X-Big: {20000*a}\\r\\n\\r\\n"
bad "a 9000-byte URI" "$lm" 414 uri-too-long "GET /{9000*u} HTTP/1.1\\r\\n${H}\\r\\n"
bad "150 headers" "$lm" 431 too-many-headers "GET /many HTTP/1.1\\r\\n${H}{150*X-H%i: v\\r\\n}\\r\\n"
if grep -q 'smuggled\|"/clte\|"/tecl\|"/dup\|"/badcl\|"/fold\|"/cr"\|"/lf\|"/te"\|"/te2\|"/sp"\|"/big"\|"/many' "$origin_log"; then
    fail_later "the origin saw a refused or smuggled request: $(grep -m2 'smuggled\|clte\|tecl\|dup\|badcl\|fold\|many' "$origin_log")"
fi

# --- 2. limits -------------------------------------------------------------------------------
ok() {
    local what=$1 port=$2 req=$3
    hcl "$what" raw --port "$port" --send "$req" --response --expect-status 200
}
ok "a 15000-byte header (default limit 16384)" "$lm" "GET /h15k HTTP/1.1\\r\\n${H}X-Big: {15000*a}\\r\\n\\r\\n"
ok "90 headers (default limit 100)" "$lm" "GET /h90 HTTP/1.1\\r\\n${H}{89*X-H%i: v\\r\\n}\\r\\n"
ok "an 8000-byte URI (default limit 8192)" "$lm" "GET /{8000*u} HTTP/1.1\\r\\n${H}\\r\\n"
bad "small: 5000 bytes of header" "$ls" 431 'headers-too-large|header-too-large' \
    "GET /s5k HTTP/1.1\\r\\n${H}X-Big: {5000*a}\\r\\n\\r\\n"
bad "small: 30 headers" "$ls" 431 too-many-headers "GET /s30 HTTP/1.1\\r\\n${H}{29*X-H%i: v\\r\\n}\\r\\n"
bad "small: a 1500-byte URI" "$ls" 414 uri-too-long "GET /{1500*u} HTTP/1.1\\r\\n${H}\\r\\n"
ok "small: 10 headers" "$ls" "GET /s10 HTTP/1.1\\r\\n${H}{9*X-H%i: v\\r\\n}\\r\\n"
ok "small: a 1000-byte URI" "$ls" "GET /{1000*u} HTTP/1.1\\r\\n${H}\\r\\n"

# --- 3. framing done right ------------------------------------------------------------------
hcl "two pipelined GETs" raw --port "$lm" \
    --send "GET /first HTTP/1.1\\r\\n${H}\\r\\nGET /second HTTP/1.1\\r\\n${H}\\r\\n" \
    --response --response --expect-status 200 --expect-body '"/second"'
hcl "a POST body and a GET pipelined behind it" raw --port "$lm" \
    --send "POST /body HTTP/1.1\\r\\n${H}Content-Length: 5\\r\\n\\r\\nhelloGET /behind HTTP/1.1\\r\\n${H}\\r\\n" \
    --response --response --expect-status 200 --expect-body '"/behind"'
if ! grep -q '"target": "/body"' "$origin_log"; then
    fail_later "the pipelined POST did not reach the origin"
fi

# --- 4. timeouts ---------------------------------------------------------------------------
hcl "partial head, then silence: 408" raw --port "$lm" --timeout 30 \
    --send "GET /partial HTTP/1.1\\r\\n${H}" --response --expect-status 408 \
    --expect-error request-timeout --min-elapsed 0.8 --max-elapsed 20 --expect-close
good_request "a normal request after the 408" "http://127.0.0.1:$lm/after"
trickle=()
# 100 bytes at 0.3 s each: 30 s of trickling. A deadline renewed per byte would answer
# only after the last byte; the 408 of a 1 s deadline comes long before.
for ((i = 0; i < 5; i++)); do
    for c in G E T ' ' / t r i c k l e ' ' H T T P / 1 . 1; do trickle+=(--send "$c" --sleep 0.3); done
done
hcl "a head trickled a byte every 0.3 s: 408 all the same" raw --port "$lm" --timeout 40 \
    --stop-on-answer "${trickle[@]}" --response --expect-status 408 --expect-error request-timeout \
    --max-total 20
hcl "ka: idle after an answer, closed without a byte" raw --port "$lk" --timeout 40 \
    --send "GET /ka HTTP/1.1\\r\\n${H}\\r\\n" --response --expect-status 200 \
    --expect-silent-close --min-elapsed 0.8 --max-elapsed 30
hcl "small (default keepalive): a second request 2 s later" raw --port "$ls" \
    --send "GET /ka1 HTTP/1.1\\r\\n${H}\\r\\n" --response --sleep 2 \
    --send "GET /ka2 HTTP/1.1\\r\\n${H}\\r\\n" --response --expect-status 200 --expect-body /ka2

# --- 5. the connection from before -------------------------------------------------------------
touch "$dir/go"
if wait_exit "$held_pid" 15; then
    [ "$WAIT_RC" -eq 0 ] || fail_later "the connection opened first broke: $(cat "$(bg_log held)")"
else
    fail_later "the connection opened first did not finish within 15 s of its go signal"
fi
kill -0 "$FERRY_PID" 2>/dev/null || fail "ferry died"

stop_ferry
fail_deferred
echo "http_smuggling: ok"
