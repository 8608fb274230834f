#!/usr/bin/env bash
# tunnel_reload.sh: the connector reloads its configuration on SIGHUP.
#
#   bash tests/integration/tunnel_reload.sh [BUILD_DIR]     (default: build)
#
# A gateway (2 workers: the connector keeps 2 tunnels) with OnPremise TCP destinations
# erp (erp.internal:3300) and crm (crm.internal:3300), and acme's connector exposing erp
# only (an echo origin), log level info.
# 1. erp echoes; crm is closed with no data (the connector has no such system).
# 2. A connection to erp stays open across everything below (client.py session).
# 3. The file gains crm (a prefixed echo origin) and SIGHUP: "connector reloaded" with
#    changed virtual names; crm is served within 10 s (the new names reached the
#    gateway through new registrations); the tunnels settle back to 2 on both sides
#    (the replaced ones were retired, not dropped).
# 4. A file with two errors on line 13 and SIGHUP: one "connector reload: configuration
#    error" line per error (line 13, each naming its key), "connector reload failed", and
#    erp and crm still work.
# 5. A changed token (read at start only) and SIGHUP: a warning names `token`, the
#    tunnels stay up on the running token (erp works).
# 6. The file drops erp and sets log level warn: erp is refused (closed, audited
#    "denied"), crm works; info lines stop ("tunnel up" is not logged for the new
#    tunnels, which do come up).
# 7. The connection of step 2 still echoes: no reload touched a live stream.
# Every process exits 0 on SIGTERM with no sanitizer report; the audit chain verifies.
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
make_cert "$dir" cn ca
start_origin origin-erp echo
op_erp=$ORIGIN_PORT
start_origin origin-crm echo --prefix "crm:"
op_crm=$ORIGIN_PORT

gw_admin=$(free_port); tport=$(free_port); l_erp=$(free_port); l_crm=$(free_port)
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info }
admin: { listen: 127.0.0.1:$gw_admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: erp, Type: TCP, Address: "tcp://erp.internal:3300", ProxyType: OnPremise, tenant: acme }
  - { Name: crm, Type: TCP, Address: "tcp://crm.internal:3300", ProxyType: OnPremise, tenant: acme }
listeners:
  - { name: erp, plugin: tcp, listen: "127.0.0.1:$l_erp", destination: erp }
  - { name: crm, plugin: tcp, listen: "127.0.0.1:$l_crm", destination: crm }
YAML
start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG

cn_admin=$(free_port)
# write_cn SYSTEMS [TOKEN] [LEVEL] [EXTRA]: the connector's file.
write_cn() {
    cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: ${2:-acme-token}
ca: ca.crt
audit_log: $dir/audit.log
log: { level: ${3:-info} }
keepalive_ms: 1000
reconnect_max_ms: 1000
systems:
$1
${4:-}
YAML
}
SYS_ERP="  - { virtual: erp.internal:3300, internal: 127.0.0.1:$op_erp, protocol: TCP }"
SYS_CRM="  - { virtual: crm.internal:3300, internal: 127.0.0.1:$op_crm, protocol: TCP }"
write_cn "$SYS_ERP"
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 15 || fail "the connector's tunnels did not come up"
need_metric "$cn_admin" ferry_connector_tunnels_up -eq 2 15
TA='ferry_tunnels{tenant="acme",location=""}'
need_metric "$gw_admin" "$TA" -eq 2 15

# expect_closed PORT WHAT: a client of PORT is closed (EOF/RST) with no data.
expect_closed() {
    local r
    client expect-close --port "$1" --timeout 5
    r=$(json_get "$CLIENT_OUT" result)
    case "$r" in
        eof | reset) ;;
        *) fail "$2: want the client closed with no data (eof/reset), got $r: $CLIENT_OUT" ;;
    esac
}
# served PORT TEXT WANT: poll (10 s) until an echo of TEXT through PORT answers WANT.
served() {
    local i
    for ((i = 0; i < 50; i++)); do
        python3 "$TOOLS/client.py" echo "$2" --expect "$3" --port "$1" --timeout 2 \
            >/dev/null 2>&1 && return 0
        kill -0 "$cn_pid" 2>/dev/null || fail "the connector exited"
        sleep 0.2
    done
    return 1
}
# wait_lines_n MSG N: poll (10 s) until the connector logged N lines of MSG.
wait_lines_n() {
    local msg=$1 n=$2 i
    for ((i = 0; i < 200; i++)); do
        [ "$(log_lines "$cn_log" "$msg")" -ge "$n" ] && return 0
        sleep 0.05
    done
    return 1
}

# wait_gw_lines MSG N [KEY=VALUE...]: poll (10 s) until the gateway logged N such lines.
wait_gw_lines() {
    local msg=$1 n=$2 i
    shift 2
    for ((i = 0; i < 200; i++)); do
        [ "$(log_lines "$gw_log" "$msg" "$@")" -ge "$n" ] && return 0
        sleep 0.05
    done
    return 1
}

# --- 1. -----------------------------------------------------------------------------------
client echo hello --expect "hello" --port "$l_erp" --timeout 10
expect_closed "$l_crm" "crm before the reload"

# --- 2. a live stream ---------------------------------------------------------------------
start_bg session python3 "$TOOLS/client.py" session --port "$l_erp" \
    --ready-file "$dir/session-ready" --go-file "$dir/session-go" --timeout 120
session_pid=$BG_PID
wait_file "$dir/session-ready" 10 "$session_pid" ||
    fail "the long-lived connection did not start: $(cat "$(bg_log session)")"

# --- 3. a system added --------------------------------------------------------------------
write_cn "$SYS_ERP
$SYS_CRM"
kill -HUP "$cn_pid"
wait_lines_n "connector reloaded" 1 || fail "no \"connector reloaded\" line after SIGHUP"
[ "$(log_lines "$cn_log" "connector reloaded" "virtual_names~changed")" -eq 1 ] ||
    fail "the reload did not say the virtual names changed"
served "$l_crm" crm1 "crm:crm1" || fail "crm was not served within 10s of the reload"
client echo erp2 --expect "erp2" --port "$l_erp" --timeout 10
wait_gw_lines "connector registered" 2 systems=2 ||
    fail "the gateway did not see both slots register again with 2 systems"

# --- 4. a broken file ---------------------------------------------------------------------
write_cn "$SYS_ERP
$SYS_CRM
  - { virtual: bad.internal, internal: 127.0.0.1:1, protocol: TCP, colour: blue }"
kill -HUP "$cn_pid"
wait_lines_n "connector reload failed: configuration has errors; keeping the running one" 1 ||
    fail "no \"connector reload failed\" line"
n=$(log_lines "$cn_log" "connector reload: configuration error")
[ "$n" -ge 2 ] || fail "want a line per configuration error (2), got $n"
[ "$(log_lines "$cn_log" "connector reload: configuration error" "line=13" "error~colour")" \
    -ge 1 ] && [ "$(log_lines "$cn_log" "connector reload: configuration error" "line=13" \
    "error~bad.internal")" -ge 1 ] ||
    fail "want both errors at line 13: $(grep 'configuration error' "$cn_log")"
client echo erp3 --expect "erp3" --port "$l_erp" --timeout 10
client echo crm3 --expect "crm:crm3" --port "$l_crm" --timeout 10

# --- 5. a setting read at start only ------------------------------------------------------
write_cn "$SYS_ERP
$SYS_CRM" other-token
kill -HUP "$cn_pid"
wait_lines_n "connector reloaded" 2 || fail "no second \"connector reloaded\" line"
[ "$(log_lines "$cn_log" "" "setting=token")" -ge 1 ] ||
    fail "no warning that token is read at start only"
[ "$(log_lines "$cn_log" "connector reloaded" "virtual_names=unchanged")" -eq 1 ] ||
    fail "the token-only reload should leave the virtual names unchanged"
client echo erp4 --expect "erp4" --port "$l_erp" --timeout 10
v=$(metric "$cn_admin" ferry_connector_tunnels_up)
[ -n "$v" ] && [ "$v" -ge 2 ] || fail "tunnels went down: ferry_connector_tunnels_up '$v'"

# --- 6. a system removed, log level warn --------------------------------------------------
up_before=$(log_lines "$cn_log" "tunnel up")
write_cn "$SYS_CRM" acme-token warn
kill -HUP "$cn_pid"
wait_lines_n "connector reloaded" 3 || fail "no third \"connector reloaded\" line"
denied=0
for ((i = 0; i < 50; i++)); do
    r=$(python3 "$TOOLS/client.py" expect-close --port "$l_erp" --timeout 3 2>/dev/null || true)
    case "$(json_get "$r" result)" in eof | reset) denied=1; break ;; esac
    sleep 0.2
done
[ "$denied" -eq 1 ] || fail "erp was still served after the reload removed it"
[ "$(audit_count "$dir/audit.log" outcome=denied virtual=erp.internal:3300)" -ge 1 ] ||
    fail "the refused erp stream was not audited as denied"
client echo crm5 --expect "crm:crm5" --port "$l_crm" --timeout 10
wait_gw_lines "connector registered" 4 systems=1 ||
    fail "the gateway did not see both slots register again with 1 system"
[ "$(log_lines "$cn_log" "tunnel up")" -eq "$up_before" ] ||
    fail "log level warn, yet \"tunnel up\" (info) lines were written"

# --- 7. the live stream -------------------------------------------------------------------
: >"$dir/session-go"
rc=0
wait "$session_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "the connection opened before the reloads broke: $(cat "$(bg_log session)")"
# Its tunnel was replaced by the first reload and kept for it: now both sides settle at
# the connector's 2 (every replaced tunnel retired, none dropped early, none left over).
need_metric "$cn_admin" ferry_connector_tunnels_up -eq 2 15
need_metric "$gw_admin" "$TA" -eq 2 15

stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
out=$("$FERRY" connector --verify-audit "$dir/audit.log" 2>&1) || fail "audit chain: $out"
echo "ok: the connector reloaded systems (added, removed), refused a broken file, kept" \
     "start-only settings, applied its log level, and a live stream survived"
