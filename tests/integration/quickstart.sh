#!/usr/bin/env bash
# quickstart.sh: the quick start's own configuration (conf/), demo origin
# (examples/demo-origin.py) and certificates (examples/demo-certs.sh), as a new user
# runs them, on free ports instead of the fixed ones so it runs beside other tests.
#
#   bash tests/integration/quickstart.sh [BUILD_DIR]     (default: build)
#
# 1. conf/ferry.yaml and conf/connector.yaml pass `ferry check` / start as shipped.
# 2. The demo page through the transparent listener (Host: demo-http) lists what ferry
#    added: Authorization (Basic, user demo, the password masked by the page), X-Demo:
#    added-by-ferry and the query sap-client=100; the app sent none of them.
# 3. The same through the tunnel (X-Destination-Name: demo-http-onprem) and the tcp
#    listeners `demo` and `onprem`.
# 4. A bare TCP probe of the tunnel port (connect, close: what a load balancer or a
#    script does) leaves no warning in the gateway's log; a peer that sends garbage does.
# Both processes exit 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"

top=$(tmpdir)
cp -r "$SRC_ROOT/conf" "$top/conf"
ln -s "$BUILD" "$top/build"                       # plugins_dir: ../build/plugins
bash "$SRC_ROOT/examples/demo-certs.sh" "$top/run/tls" >"$top/certs.log" 2>&1 \
    || fail "demo-certs.sh failed: $(cat "$top/certs.log")"

# The shipped ports, each replaced by a free one in every file of conf/.
declare -A P=()
for port in 8000 3300 3301 8080 8443 9901 9902 20003 20004; do
    P[$port]=$(free_port)
done
for f in "$top"/conf/*.yaml "$top"/conf/destinations/*.yaml; do
    for port in "${!P[@]}"; do
        sed -i "s/127\.0\.0\.1:$port\b/127.0.0.1:${P[$port]}/g" "$f"
    done
done
grep -qF "127.0.0.1:${P[8443]}" "$top/conf/connector.yaml" || fail "the port rewrite missed connector.yaml"

out=$("$FERRY" check -c "$top/conf/ferry.yaml" 2>&1) || fail "ferry check rejects conf/ferry.yaml: $out"

start_bg demo-origin python3 "$SRC_ROOT/examples/demo-origin.py" --port "${P[8000]}"
wait_port 127.0.0.1 "${P[8000]}" 15 "$BG_PID" || fail "the demo origin did not start"
start_gateway gateway "$top/conf/ferry.yaml" "${P[9901]}"
gw_pid=$GW_PID gw_log=$GW_LOG

# --- 4. probes of the tunnel port ----------------------------------------------------
# tunnel_idle: ferry holds no accepted connection on the tunnel port (it has read the
# probe's end and closed its side); a condition, where waiting a while would be a guess.
tunnel_idle() {
    local i
    for ((i = 0; i < 200; i++)); do
        ss -Htn state all "( sport = :${P[8443]} )" 2>/dev/null | grep -v LISTEN | grep -q . \
            || return 0
        sleep 0.05
    done
    return 1
}
(exec 3<>"/dev/tcp/127.0.0.1/${P[8443]}") 2>/dev/null || fail "cannot connect to the tunnel port"
tunnel_idle || fail "ferry did not close the probe's connection within 10 s"
if grep -q '"level":"warn"' "$gw_log"; then
    fail "a bare TCP probe of the tunnel port logged a warning: $(grep '"level":"warn"' "$gw_log")"
fi
printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 socat - "TCP:127.0.0.1:${P[8443]}" >/dev/null 2>&1 || true
wait_log "$gw_log" '"level":"warn".*connector TLS/registration failed' 10 \
    || fail "a peer that sent garbage to the tunnel port left no warning"

start_connector connector "$top/conf/connector.yaml" "${P[9902]}"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "${P[9902]}" 200 15 || fail "the connector's tunnel did not come up: $(tail -n 5 "$cn_log")"

# --- 2. what ferry adds, on the demo page ------------------------------------------
# page TITLE CURL_ARGS…: the body (plain text: curl sends Accept: */*) into PAGE.
page() {
    local what=$1
    shift
    PAGE=$(curl -sS --max-time 10 "$@" 2>&1) || fail "$what: curl failed: $PAGE"
}
want_line() {
    local what=$1 re=$2
    grep -qE "$re" <<<"$PAGE" || fail "$what: no line matching '$re' on the demo page:
$PAGE"
}
page "transparent (demo-http)" -H 'Host: demo-http' "http://127.0.0.1:${P[8080]}/"
want_line "transparent (demo-http)" '^  Authorization: Basic \(user demo, password \*\*\*\)'
want_line "transparent (demo-http)" '^  X-Demo: added-by-ferry'
want_line "transparent (demo-http)" '^  sap-client = 100$'
want_line "transparent (demo-http)" '^request:  GET /\?sap-client=100$'
if grep -q 'demo-password-change-me' <<<"$PAGE"; then
    fail "the demo page shows the destination's password"
fi

page "transparent, through the tunnel (demo-http-onprem)" \
    -H 'X-Destination-Name: demo-http-onprem' "http://127.0.0.1:${P[8080]}/?from=app"
want_line "through the tunnel" '^  from = app$'
want_line "through the tunnel" '^ferry demo origin: you reached'

# --- 3. the tcp listeners --------------------------------------------------------------
page "tcp listener demo" "http://127.0.0.1:${P[3300]}/"
want_line "tcp listener demo" '^ferry demo origin: you reached'
page "tcp listener onprem (tunnel)" "http://127.0.0.1:${P[3301]}/"
want_line "tcp listener onprem (tunnel)" '^ferry demo origin: you reached'

stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
echo "PASS: quickstart.sh"
