#!/usr/bin/env bash
# tunnel_access.sh: who may use the reverse tunnel, and for what.
#
#   bash tests/integration/tunnel_access.sh [BUILD_DIR]     (default: build)
#
# Gateway A (tenants acme and other, no client_ca) and acme's connector (default
# location) mapping erp.internal:3300 to an echo origin on loopback:
# 1. A mapped virtual host works (the echo comes from that origin).
# 2. Unmapped virtual host (ghost.internal:3300): the client is closed with no data, the
#    connector logs "access denied" and audits outcome "denied", the gateway counts
#    ferry_tunnel_refusals_total >= 1.
# 3. Tenant isolation: tenant other's destination names acme's virtual host; other has no
#    connector -> the client is closed with no data, the gateway logs "no tunnel for
#    tenant/location" with tenant other, and acme's connector saw no stream (its audit
#    log and stream counter do not move).
# 4. Location: a destination with CloudConnectorLocationId berlin is closed while only the
#    default-location connector runs ("no tunnel", location berlin); with a berlin
#    connector it is served by that one only (the berlin origin answers, the berlin
#    connector audits location berlin), and the default destination stays on the default
#    connector.
# 5. Wrong token / unknown tenant: the connector logs "gateway refused registration", the
#    gateway logs "connector rejected" (reason: bad token / unknown tenant), /readyz 503.
# 6. Connector with a different CA: it logs that the gateway certificate is not trusted,
#    /readyz 503, the gateway registers nothing from it.
# Gateway B (tunnel with client_ca):
# 7. A connector without a client certificate is refused (TLS fails, /readyz 503, the
#    gateway registers nothing); one with a certificate from another CA likewise; one with
#    a certificate from client_ca gets its tunnel and carries a connection.
# 8. The internal address (127.0.0.1:<origin port>) never appears in any gateway log
#    line (stderr and access log) of any of this; every process exits 0 on SIGTERM with
#    no sanitizer report; the audit chains verify.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"

dir=$(tmpdir)
make_ca "$dir" ca
make_ca "$dir" ca2
make_cert "$dir" gw ca
make_cert "$dir" cn ca
make_cert "$dir" cn2 ca2

start_origin origin-main echo --prefix "main:"
op_main=$ORIGIN_PORT
start_origin origin-berlin echo --prefix "berlin:"
op_berlin=$ORIGIN_PORT

# write_cn FILE ADMIN_PORT TPORT TENANT TOKEN AUDIT [EXTRA_YAML]: a connector config
# exposing erp.internal:3300 (-> origin-main, or origin-berlin for location berlin).
write_cn() {
    local file=$1 admin=$2 tport=$3 tenant=$4 token=$5 audit=$6 extra=${7:-} op=$op_main
    case "$extra" in *"location_id: berlin"*) op=$op_berlin ;; esac
    cat >"$file" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$admin }
tenant: $tenant
token: $token
audit_log: $audit
keepalive_ms: 1000
reconnect_max_ms: 1000
systems:
  - { virtual: erp.internal:3300, internal: 127.0.0.1:$op, protocol: TCP }
$extra
YAML
    grep -q '^ca:' "$file" || echo "ca: ca.crt" >>"$file"
}

# expect_closed PORT WHAT: a client of PORT is closed (EOF/RST) with no data.
expect_closed() {
    client expect-close --port "$1" --timeout 5
    local r
    r=$(json_get "$CLIENT_OUT" result)
    case "$r" in
        eof | reset) ;;
        *) fail "$2: want the client closed with no data (eof/reset), got $r: $CLIENT_OUT" ;;
    esac
}

# refused_connector NAME CONFIG ADMIN GWLOG LOG_RE: start a connector that must not get
# a tunnel: its log matches LOG_RE within 10 s, /readyz stays 503, then stop it.
refused_connector() {
    local name=$1 conf=$2 admin=$3 re=$4
    start_connector "$name" "$conf" "$admin"
    wait_log "$CN_LOG" "$re" 10 "$CN_PID" \
        || fail "$name: want a log line matching /$re/ within 10s"
    [ "$(readyz "$admin")" = 503 ] || fail "$name: /readyz is $(readyz "$admin"), want 503"
    [ "$(metric "$admin" ferry_connector_tunnels_up)" = 0 ] \
        || fail "$name: ferry_connector_tunnels_up is $(metric "$admin" ferry_connector_tunnels_up), want 0"
    stop_proc "$CN_PID" "$CN_LOG" "$name"
}

# connector_id LOG: the id a connector announced in its "ferry connector started" line.
connector_id() {
    python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if rec.get("msg") == "ferry connector started":
        print(rec.get("id", ""))
        break
PY
}

# ===================== gateway A =====================================================
gwa_admin=$(free_port)
tport_a=$(free_port)
l_erp=$(free_port)
l_ghost=$(free_port)
l_steal=$(free_port)
l_berlin=$(free_port)
cat >"$dir/gwa.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: debug, access: $dir/access-a.log }
admin: { listen: 127.0.0.1:$gwa_admin }
drain_timeout_ms: 3000
tunnel: { listen: 127.0.0.1:$tport_a, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token }, { id: other, token: other-token } ]
destinations:
  - { Name: erp, Type: TCP, Address: "tcp://erp.internal:3300", ProxyType: OnPremise, tenant: acme }
  - { Name: ghost, Type: TCP, Address: "tcp://ghost.internal:3300", ProxyType: OnPremise, tenant: acme }
  - { Name: steal, Type: TCP, Address: "tcp://erp.internal:3300", ProxyType: OnPremise, tenant: other }
  - { Name: erp-berlin, Type: TCP, Address: "tcp://erp.internal:3300", ProxyType: OnPremise, tenant: acme, CloudConnectorLocationId: berlin }
listeners:
  - { name: erp, plugin: tcp, listen: "127.0.0.1:$l_erp", destination: erp }
  - { name: ghost, plugin: tcp, listen: "127.0.0.1:$l_ghost", destination: ghost }
  - { name: steal, plugin: tcp, listen: "127.0.0.1:$l_steal", destination: steal }
  - { name: berlin, plugin: tcp, listen: "127.0.0.1:$l_berlin", destination: erp-berlin }
YAML
start_gateway gateway-a "$dir/gwa.yaml" "$gwa_admin"
gwa_pid=$GW_PID gwa_log=$GW_LOG
TA='{tenant="acme",location=""}'
TB='{tenant="acme",location="berlin"}'

cn_admin=$(free_port)
write_cn "$dir/cn.yaml" "$cn_admin" "$tport_a" acme acme-token audit.jsonl
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
audit=$dir/audit.jsonl
wait_readyz "$cn_admin" 200 10 || fail "connector: /readyz is $(readyz "$cn_admin") after 10s, want 200"
need_metric "$gwa_admin" "ferry_tunnels$TA" -eq 2 10

# --- 1. mapped virtual host ----------------------------------------------------------
client echo hello --expect "main:hello" --port "$l_erp" --timeout 10
wait_log "$audit" '"outcome":"ok"' 5 || fail "audit: no ok line for the mapped virtual host"

# --- 2. unmapped virtual host --------------------------------------------------------
expect_closed "$l_ghost" "unmapped virtual host ghost.internal:3300"
wait_log "$audit" '"virtual":"ghost.internal:3300"' 5 \
    || fail "audit: no line for the unmapped virtual host ghost.internal:3300"
n=$(audit_count "$audit" virtual=ghost.internal:3300 outcome=denied tenant=acme)
[ "$n" -eq 1 ] || fail "audit: want 1 line for ghost.internal:3300 with outcome denied, got $n:" \
    "$(grep ghost "$audit")"
n=$(audit_count "$audit" virtual=ghost.internal:3300 outcome=ok)
[ "$n" -eq 0 ] || fail "audit: an ok line for the unmapped ghost.internal:3300"
[ "$(log_lines "$cn_log" "access denied" virtual=ghost.internal:3300)" -ge 1 ] \
    || fail "connector: no \"access denied\" log line for ghost.internal:3300"
need_metric "$gwa_admin" "ferry_tunnel_refusals_total$TA" -ge 1
need_metric "$cn_admin" "ferry_tunnel_refusals_total$TA" -ge 1

# --- 3. tenant isolation -------------------------------------------------------------
audit_before=$(wc -l <"$audit")
cn_streams_before=$(metric "$cn_admin" "ferry_tunnel_streams_total$TA")
expect_closed "$l_steal" "tenant other -> acme's virtual host"
wait_log "$gwa_log" '"no tunnel for tenant/location"' 5 \
    || fail "gateway: no \"no tunnel for tenant/location\" line for tenant other"
[ "$(log_lines "$gwa_log" "no tunnel for tenant/location" tenant=other location=)" -ge 1 ] \
    || fail "gateway: the \"no tunnel for tenant/location\" line does not name tenant other," \
        "location \"\": $(grep 'no tunnel' "$gwa_log")"
# Prove the connector would have logged it by then: a later stream of acme gets audited.
client echo again --expect "main:again" --port "$l_erp" --timeout 10
for ((i = 0; i < 50; i++)); do
    [ "$(wc -l <"$audit")" -ge $((audit_before + 1)) ] && break
    sleep 0.1
done
[ "$(wc -l <"$audit")" -eq $((audit_before + 1)) ] \
    || fail "audit: want exactly 1 new line (acme's own echo) after tenant other's attempt," \
        "got $(($(wc -l <"$audit") - audit_before)): $(tail -n 3 "$audit")"
n=$(audit_count "$audit" tenant=other)
[ "$n" -eq 0 ] || fail "audit: acme's connector logged $n stream(s) of tenant other"
need_metric "$cn_admin" "ferry_tunnel_streams_total$TA" -eq $((cn_streams_before + 1))

# --- 4. location ---------------------------------------------------------------------
audit_before=$(wc -l <"$audit")
expect_closed "$l_berlin" "location berlin without a berlin connector"
[ "$(log_lines "$gwa_log" "no tunnel for tenant/location" tenant=acme location=berlin)" -ge 1 ] \
    || fail "gateway: no \"no tunnel for tenant/location\" line with tenant acme, location berlin:" \
        "$(grep 'no tunnel' "$gwa_log")"
cnb_admin=$(free_port)
write_cn "$dir/cn-berlin.yaml" "$cnb_admin" "$tport_a" acme acme-token audit-berlin.jsonl \
    "location_id: berlin"
start_connector connector-berlin "$dir/cn-berlin.yaml" "$cnb_admin"
cnb_pid=$CN_PID cnb_log=$CN_LOG
audit_b=$dir/audit-berlin.jsonl
wait_readyz "$cnb_admin" 200 10 || fail "berlin connector: /readyz is $(readyz "$cnb_admin"), want 200"
need_metric "$gwa_admin" "ferry_tunnels$TB" -eq 2 10
need_metric "$gwa_admin" "ferry_tunnels$TA" -eq 2
for i in 1 2 3 4 5 6; do
    client echo "b$i" --expect "berlin:b$i" --port "$l_berlin" --timeout 10
    client echo "m$i" --expect "main:m$i" --port "$l_erp" --timeout 10
done
for ((i = 0; i < 50; i++)); do
    [ "$(audit_count "$audit_b" outcome=ok)" -ge 6 ] && break
    sleep 0.1
done
n=$(audit_count "$audit_b" outcome=ok location=berlin virtual=erp.internal:3300)
[ "$n" -eq 6 ] || fail "berlin audit: want 6 ok lines with location berlin, got $n"
n=$(audit_count "$audit" location=berlin)
[ "$n" -eq 0 ] || fail "default connector's audit: $n line(s) with location berlin, want 0"
n=$(audit_count "$audit_b" location=)
[ "$n" -eq 0 ] || fail "berlin connector's audit: $n line(s) of the default location, want 0"
need_metric "$gwa_admin" "ferry_tunnel_streams_total$TB" -eq 6

# --- 5. wrong token, unknown tenant --------------------------------------------------
bad_admin=$(free_port)
write_cn "$dir/cn-badtoken.yaml" "$bad_admin" "$tport_a" acme not-the-token audit-bad.jsonl
refused_connector connector-badtoken "$dir/cn-badtoken.yaml" "$bad_admin" \
    '"gateway refused registration"'
wait_log "$gwa_log" '"connector rejected".*"tenant":"acme"' 5 \
    || fail "gateway: no \"connector rejected\" line for tenant acme (wrong token)"
[ "$(log_lines "$gwa_log" "connector rejected" tenant=acme "reason~bad token")" -ge 1 ] \
    || fail "gateway: \"connector rejected\" for the wrong token does not say bad token:" \
        "$(grep 'connector rejected' "$gwa_log")"
[ "$(log_lines "$(bg_log connector-badtoken)" "gateway refused registration" "reason~token")" -ge 1 ] \
    || fail "connector: \"gateway refused registration\" gives no token reason"

write_cn "$dir/cn-nobody.yaml" "$bad_admin" "$tport_a" nobody acme-token audit-nobody.jsonl
refused_connector connector-nobody "$dir/cn-nobody.yaml" "$bad_admin" \
    '"gateway refused registration"'
wait_log "$gwa_log" '"connector rejected".*"tenant":"nobody"' 5 \
    || fail "gateway: no \"connector rejected\" line for tenant nobody"
[ "$(log_lines "$gwa_log" "connector rejected" tenant=nobody "reason~unknown tenant")" -ge 1 ] \
    || fail "gateway: \"connector rejected\" for tenant nobody does not say unknown tenant:" \
        "$(grep 'connector rejected' "$gwa_log")"
v=$(metric "$gwa_admin" 'ferry_tunnels{tenant="nobody",location=""}')
[ -z "$v" ] || [ "$v" = 0 ] || fail "gateway: ferry_tunnels for the unknown tenant nobody = $v"
[ "$(metric "$gwa_admin" "ferry_tunnels$TA")" = 2 ] \
    || fail "gateway: ferry_tunnels$TA = $(metric "$gwa_admin" "ferry_tunnels$TA") after the refusals, want 2"

# --- 6. connector trusting another CA ------------------------------------------------
write_cn "$dir/cn-wrongca.yaml" "$bad_admin" "$tport_a" acme acme-token audit-wrongca.jsonl \
    "ca: ca2.crt"
regs_before=$(log_lines "$gwa_log" "connector registered")
refused_connector connector-wrongca "$dir/cn-wrongca.yaml" "$bad_admin" \
    'gateway certificate not trusted'
wrong_id=$(connector_id "$(bg_log connector-wrongca)")
[ -n "$wrong_id" ] || fail "connector-wrongca: no id in its \"ferry connector started\" line"
[ "$(log_lines "$gwa_log" "connector registered" "connector=$wrong_id")" -eq 0 ] \
    || fail "gateway registered the connector that does not trust its certificate"
[ "$(log_lines "$gwa_log" "connector registered")" -eq "$regs_before" ] \
    || fail "gateway: a connector registered while only the wrong-CA connector was trying"

# The good connectors still work after all that.
client echo still --expect "main:still" --port "$l_erp" --timeout 10

stop_proc "$cnb_pid" "$cnb_log" connector-berlin
stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gwa_pid" "$gwa_log" gateway-a

# ===================== gateway B: client_ca =========================================
gwb_admin=$(free_port)
tport_b=$(free_port)
l_erp_b=$(free_port)
cat >"$dir/gwb.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: debug, access: $dir/access-b.log }
admin: { listen: 127.0.0.1:$gwb_admin }
drain_timeout_ms: 3000
tunnel: { listen: 127.0.0.1:$tport_b, cert: gw.crt, key: gw.key, client_ca: ca.crt }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: erp, Type: TCP, Address: "tcp://erp.internal:3300", ProxyType: OnPremise, tenant: acme }
listeners:
  - { name: erp, plugin: tcp, listen: "127.0.0.1:$l_erp_b", destination: erp }
YAML
start_gateway gateway-b "$dir/gwb.yaml" "$gwb_admin"
gwb_pid=$GW_PID gwb_log=$GW_LOG

# --- 7. client certificates ----------------------------------------------------------
write_cn "$dir/cn-nocert.yaml" "$bad_admin" "$tport_b" acme acme-token audit-nocert.jsonl
refused_connector connector-nocert "$dir/cn-nocert.yaml" "$bad_admin" '"gateway link down, retrying"'
write_cn "$dir/cn-othercert.yaml" "$bad_admin" "$tport_b" acme acme-token audit-othercert.jsonl \
    "$(printf 'cert: cn2.crt\nkey: cn2.key')"
refused_connector connector-othercert "$dir/cn-othercert.yaml" "$bad_admin" '"gateway link down, retrying"'
[ "$(log_lines "$gwb_log" "connector registered")" -eq 0 ] \
    || fail "gateway B (client_ca) registered a connector without a certificate from its CA"
[ "$(log_lines "$gwb_log" "tunnel up")" -eq 0 ] \
    || fail "gateway B (client_ca) brought up a tunnel for a connector without a certificate from its CA"
expect_closed "$l_erp_b" "gateway B with no accepted connector"

cnc_admin=$(free_port)
write_cn "$dir/cn-cert.yaml" "$cnc_admin" "$tport_b" acme acme-token audit-cert.jsonl \
    "$(printf 'cert: cn.crt\nkey: cn.key')"
start_connector connector-cert "$dir/cn-cert.yaml" "$cnc_admin"
cnc_pid=$CN_PID cnc_log=$CN_LOG
wait_readyz "$cnc_admin" 200 10 \
    || fail "connector with a client_ca certificate: /readyz is $(readyz "$cnc_admin"), want 200"
need_metric "$gwb_admin" "ferry_tunnels$TA" -eq 2 10
client echo cert --expect "main:cert" --port "$l_erp_b" --timeout 10
stop_proc "$cnc_pid" "$cnc_log" connector-cert
stop_proc "$gwb_pid" "$gwb_log" gateway-b

# --- 8. the internal address stays on the connector side; audit chains -------------
for f in "$gwa_log" "$dir/access-a.log" "$gwb_log" "$dir/access-b.log"; do
    [ -s "$f" ] || fail "gateway log $f is empty (nothing to check)"
    for p in "$op_main" "$op_berlin"; do
        if grep -En "127[.]0[.]0[.]1:$p([^0-9]|\$)" "$f" >&2; then
            fail "gateway log $f shows the internal address 127.0.0.1:$p (lines above)"
        fi
    done
done
# The connector side does know it (so the grep above would have found it).
grep -q "127.0.0.1:$op_main" "$audit" || fail "audit: the internal address is missing"
for a in "$audit" "$audit_b" "$dir/audit-cert.jsonl"; do
    out=$("$FERRY" connector --verify-audit "$a" 2>&1) || fail "--verify-audit $a failed: $out"
done
# Every access-log duration is a duration, i.e. not negative (no tunnel matter: reported
# at the end so it hides nothing above).
for f in "$dir/access-a.log" "$dir/access-b.log"; do
    neg=$(grep -n '"duration_ms":-' "$f" || true)
    [ -z "$neg" ] || fail_later "gateway access log $f: negative duration_ms:" $'\n'"$neg"
done
fail_deferred
echo "ok: unmapped host denied and audited; tenants and locations isolated; bad token," \
     "unknown tenant, wrong CA and missing client cert refused; internal address never" \
     "in gateway logs"
