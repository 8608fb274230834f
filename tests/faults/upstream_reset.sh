#!/usr/bin/env bash
# upstream_reset.sh: an upstream that resets (RST) in the middle of a response body.
#
#   bash tests/faults/upstream_reset.sh [BUILD_DIR]     (default: build)
#
# tools/faults.py reset-origin answers with a head and 64 KiB of a 1 MiB body, waits
# until the client has read 16 KiB of that body, then resets. The client must be told
# its response is cut — a reset, fewer bytes than Content-Length, no last chunk — and
# never see what looks like a whole response:
#   http (transparent listener): Content-Length, chunked, and a body delimited by the
#   close (the case where only a reset can tell the client); through the tunnel too
#   (connector -> origin reset, the stream reset on to the gateway);
#   tcp listener (raw bytes): a reset.
# Control: the origin sending a whole close-delimited body and a clean FIN is seen as
# clean (the client's verdict is not "signalled" for everything). Afterwards the
# gateway serves a new request, and both processes exit 0 on SIGTERM with no sanitizer
# report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$SRC_ROOT/tests/integration/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$SRC_ROOT/tests/integration/tools/tunnel_lib.sh"
FAULTS=$SRC_ROOT/tests/faults/tools/faults.py

dir=$(tmpdir)
mkdir "$dir/trig"
make_ca "$dir" ca
make_cert "$dir" gw ca
start_bg origin python3 "$FAULTS" reset-origin --port-file "$dir/oport" --trigger-dir "$dir/trig"
wait_file "$dir/oport" 10 "$BG_PID" || fail "reset origin did not start"
op=$(cat "$dir/oport")

admin=$(free_port)
cn_admin=$(free_port)
tport=$(free_port)
l_http=$(free_port)
l_onprem=$(free_port)
l_tcp=$(free_port)
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: web, Type: HTTP, URL: "http://127.0.0.1:$op", ProxyType: Internet }
  - { Name: onprem, Type: HTTP, URL: "http://web.internal:80", ProxyType: OnPremise }
  - { Name: raw, Type: TCP, Address: "tcp://127.0.0.1:$op", ProxyType: Internet }
listeners:
  - { name: http, plugin: http, listen: "127.0.0.1:$l_http", destination: web }
  - { name: onprem, plugin: http, listen: "127.0.0.1:$l_onprem", destination: onprem }
  - { name: raw, plugin: tcp, listen: "127.0.0.1:$l_tcp", destination: raw }
YAML
cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
systems:
  - { virtual: web.internal:80, internal: 127.0.0.1:$op, protocol: HTTP }
YAML
start_gateway gateway "$dir/gw.yaml" "$admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "connector /readyz is $(readyz "$cn_admin") after 10s, want 200"

# cases CASE...: one truncation client for every PORT:FRAMING:ID:WANT; each verdict
# must be its WANT (a line per case on stderr).
cases() {
    local rc=0
    python3 "$FAULTS" truncation --trigger-dir "$dir/trig" --timeout 10 \
        "${@/#/--case=}" >"$dir/cases.out" 2>&1 || rc=$?
    cat "$dir/cases.out" >&2
    [ "$rc" -eq 0 ] || fail_later "a response cut by the upstream's reset ended otherwise" \
        "than wanted: $(grep -v '"pass": true' "$dir/cases.out" | head -n 3)"
}

cases "$l_http:clean-eof:http-control:clean" \
    "$l_http:cl:http-cl:signalled" \
    "$l_http:chunked:http-chunked:signalled" \
    "$l_http:eof:http-eof:signalled" \
    "$l_onprem:cl:onprem-cl:signalled" \
    "$l_onprem:eof:onprem-eof:signalled" \
    "$l_tcp:raw:tcp-raw:signalled"
# The gateway lives on and serves whole responses again, direct and through the tunnel.
kill -0 "$gw_pid" 2>/dev/null || fail "the gateway died"
cases "$l_http:clean-eof:http-after:clean" "$l_onprem:clean-eof:onprem-after:clean"
n=$(log_lines "$gw_log" "request failed" error=upstream-truncated)
[ "$n" -eq 5 ] || fail_later "gateway log: $n \"request failed\" lines with upstream-truncated, want 5"

stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
fail_deferred
echo "upstream_reset: ok"
