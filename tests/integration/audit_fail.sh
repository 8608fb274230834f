#!/usr/bin/env bash
# audit_fail.sh: a connector whose audit log cannot be written, and its rotation.
#
#   bash tests/integration/audit_fail.sh [BUILD_DIR]     (default: build)
#
# One gateway, acme's connector exposing erp.internal:3300 (an echo origin), audit_log
# audit.jsonl. The log is made unwritable the way logrotate could leave it: renamed,
# and a directory where the file was, then SIGUSR1 (reopen).
# 1. audit_fail: closed (the default): the reopen fails (logged); a new stream is
#    refused (the TCP client is closed with no data), the connector logs "access denied"
#    with reason audit-unavailable, ferry_audit_errors_total >= 1. The directory removed,
#    the next stream works (no signal needed) and is audited in the new file.
# 2. --verify-audit OLD NEW follows the chain across the rotation; NEW alone is not the
#    chain's first (exit 1); the files in the wrong order are a gap (exit 1).
# 3. audit_fail: open (restarted): the same failure (this time SIGHUP) lets streams go
#    on and counts them; once the directory is gone, the next stream's line writes the
#    waiting lines first: the three files are one chain, every stream audited.
# Each process exits 0 on SIGTERM with no sanitizer report.
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

start_origin origin echo --prefix "erp:"
op=$ORIGIN_PORT

gw_admin=$(free_port)
tport=$(free_port)
l_erp=$(free_port)
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
admin: { listen: 127.0.0.1:$gw_admin }
drain_timeout_ms: 3000
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: erp, Type: TCP, Address: "tcp://erp.internal:3300", ProxyType: OnPremise, tenant: acme }
listeners:
  - { name: erp, plugin: tcp, listen: "127.0.0.1:$l_erp", destination: erp }
YAML
start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
TA='{tenant="acme",location=""}'

cn_admin=$(free_port)
# write_cn EXTRA_YAML: acme's connector config (one worker: two tunnels to 2 gateway workers).
write_cn() {
    cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
keepalive_ms: 1000
reconnect_max_ms: 1000
systems:
  - { virtual: erp.internal:3300, internal: 127.0.0.1:$op, protocol: TCP }
$1
YAML
}
audit=$dir/audit.jsonl

# expect_closed WHAT: a client of the erp listener is closed (EOF/RST) with no data.
expect_closed() {
    client expect-close --port "$l_erp" --timeout 5
    local r
    r=$(json_get "$CLIENT_OUT" result)
    case "$r" in
        eof | reset) ;;
        *) fail "$1: want the client closed with no data (eof/reset), got $r: $CLIENT_OUT" ;;
    esac
}

# rotate_into_dir OLD SIGNAL: rename the log to OLD, put a directory in its place, send
# SIGNAL, wait for the connector to say the reopen failed.
rotate_into_dir() {
    local before
    before=$(log_lines "$cn_log" "audit log reopen failed")
    mv "$audit" "$1"
    mkdir "$audit"
    kill "-$2" "$cn_pid"
    for ((i = 0; i < 100; i++)); do
        [ "$(log_lines "$cn_log" "audit log reopen failed")" -gt "$before" ] && return 0
        sleep 0.05
    done
    fail "connector: no \"audit log reopen failed\" line 5s after SIG$2"
}

# --- 1. audit_fail: closed -----------------------------------------------------------
write_cn ""
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "connector: /readyz is $(readyz "$cn_admin"), want 200"
need_metric "$gw_admin" "ferry_tunnels$TA" -ge 1 10
client echo one --expect "erp:one" --port "$l_erp" --timeout 10
wait_log "$audit" '"outcome":"ok"' 5 || fail "audit: no ok line for the first stream"
[ "$(metric "$cn_admin" ferry_audit_errors_total)" = 0 ] \
    || fail "ferry_audit_errors_total is $(metric "$cn_admin" ferry_audit_errors_total) before any failure"

rotate_into_dir "$dir/audit.jsonl.1" USR1
expect_closed "audit log unwritable, audit_fail: closed"
[ "$(log_lines "$cn_log" "access denied" reason=audit-unavailable)" -ge 1 ] \
    || fail "connector: no \"access denied\" line with reason audit-unavailable"
need_metric "$cn_admin" ferry_audit_errors_total -ge 1
rmdir "$audit"
client echo two --expect "erp:two" --port "$l_erp" --timeout 10
wait_log "$audit" '"outcome":"ok"' 5 || fail "audit: no ok line in the new file after the fix"
[ "$(log_lines "$cn_log" "audit log writable again")" -ge 1 ] \
    || fail "connector: no \"audit log writable again\" line"
stop_proc "$cn_pid" "$cn_log" connector

# --- 2. the chain across files -------------------------------------------------------
out=$("$FERRY" connector --verify-audit "$dir/audit.jsonl.1" "$audit" 2>&1) \
    || fail "--verify-audit OLD NEW: $out"
grep -q "chain intact across 2 files" <<<"$out" || fail "--verify-audit OLD NEW said: $out"
rc=0
out=$("$FERRY" connector --verify-audit "$audit" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "--verify-audit NEW alone: exit $rc, want 1 (not the chain's first): $out"
rc=0
out=$("$FERRY" connector --verify-audit "$audit" "$dir/audit.jsonl.1" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "--verify-audit NEW OLD: exit $rc, want 1: $out"

# --- 3. audit_fail: open -------------------------------------------------------------
write_cn "audit_fail: open"
start_connector connector-open "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "connector-open: /readyz is $(readyz "$cn_admin"), want 200"
need_metric "$gw_admin" "ferry_tunnels$TA" -ge 1 10
rotate_into_dir "$dir/audit.jsonl.2" HUP
client echo three --expect "erp:three" --port "$l_erp" --timeout 10
need_metric "$cn_admin" ferry_audit_errors_total -ge 2
rmdir "$audit"
client echo four --expect "erp:four" --port "$l_erp" --timeout 10
# The stream of "three" ended while the log was unwritable: its line waited.
wait_log "$audit" '"bytes_in":5,' 5 || fail "audit: the line that waited is not in the new file"
for ((i = 0; i < 100; i++)); do
    [ "$(audit_count "$audit" outcome=ok)" -ge 2 ] && break
    sleep 0.05
done
[ "$(audit_count "$audit" outcome=ok)" -eq 2 ] \
    || fail "audit: want 2 ok lines (three and four) in the new file, got: $(cat "$audit")"
stop_proc "$cn_pid" "$cn_log" connector-open
out=$("$FERRY" connector --verify-audit "$dir/audit.jsonl.1" "$dir/audit.jsonl.2" "$audit" 2>&1) \
    || fail "--verify-audit across 3 files: $out"
stop_proc "$gw_pid" "$gw_log" gateway
echo "ok: audit_fail closed refuses while the audit log is unwritable and recovers;" \
     "open carries on and writes the waiting lines; the chain runs across rotated files"
