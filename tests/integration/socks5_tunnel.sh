#!/usr/bin/env bash
# socks5_tunnel.sh: the socks5 listener routing into connectors' tunnels.
#
#   bash tests/integration/socks5_tunnel.sh [BUILD_DIR]     (default: build)
#
# One gateway (tenants acme and other), listener `socks` (auth tenant, egress: only an
# echo origin; handshake_timeout_ms 2000) and listener `open` (auth none, tenant acme,
# no egress). Connectors:
#   acme, default location: web.internal:80 -> HTTP origin "default",
#     echo.internal:7 -> echo origin, closed.internal:80 -> a closed port,
#     gone.internal:80 -> nonexistent.invalid:80, shop.internal:80 -> HTTP origin but
#     protocol HTTP (a SOCKS5 byte stream does not fit it);
#   acme, location berlin: web.internal:80 -> HTTP origin "berlin";
#   other, default location: other.internal:80 -> HTTP origin "default".
# 1. curl --socks5-hostname (and socks5h:// with credentials) to http://web.internal:80/,
#    PySocks with rdns, a raw client and the auth none listener get the default origin
#    through the tunnel; the access log says tenant acme, target web.internal:80,
#    outcome ok; the connector audits the streams; egress targets still go direct.
# 2. SAP 0x80: base64 "berlin" and raw "berlin" reach the berlin origin (audited by the
#    berlin connector with location berlin), no location reaches the default one,
#    base64 "paris" gets 03.
# 3. Replies (exact bytes): 02 for a target egress refuses while acme's connector is
#    live, an unmapped virtual host, tenant other asking for acme's virtual host (and
#    acme for other's), a system whose protocol does not fit (the connector refuses and
#    audits "denied"); 03 for tenant other at location berlin; 05 for a mapped system
#    whose internal port is closed; 04 for a mapped system whose internal name does not
#    resolve, and for one whose internal connect hangs (past the gateway's 2 s
#    handshake_timeout_ms: the connector's connect timeout decides). Each is followed
#    by the close; other's own virtual host works.
# 4. 200 concurrent SOCKS5 connections through the tunnel each echo a distinct payload;
#    ferry_listener_connections_active{listener="socks"} is back to 0 afterwards.
# Every process exits 0 on SIGTERM with no sanitizer report; the audit chains verify.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/socks5_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/socks5_lib.sh"

dir=$(tmpdir)
make_ca "$dir" ca
make_cert "$dir" gw ca

mkdir "$dir/www-default" "$dir/www-berlin"
echo "web.internal default location" >"$dir/www-default/index.txt"
echo "web.internal berlin location" >"$dir/www-berlin/index.txt"
http_origin http-default "$dir/www-default"
hp_default=$HTTP_PORT
http_origin http-berlin "$dir/www-berlin"
hp_berlin=$HTTP_PORT
start_origin echo-origin echo
ep=$ORIGIN_PORT
closed=$(free_port)           # nothing listens there
# A port whose connects hang (for "04 on a connect timeout"), if the host can make one.
bh=""
start_bg blackhole "$S5_PY" "$TOOLS/socks5.py" blackhole --port-file "$dir/bhport"
if wait_file "$dir/bhport" 10 "$BG_PID"; then
    bh=$(cat "$dir/bhport")
else
    echo "note: no hanging port ($(cat "$(bg_log blackhole)")); the connect-timeout check is skipped" >&2
fi

admin=$(free_port)
tport=$(free_port)
ls_socks=$(free_port)
ls_open=$(free_port)
access=$dir/access.log
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: debug, access: $access }
admin: { listen: 127.0.0.1:$admin }
drain_timeout_ms: 3000
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token }, { id: other, token: other-token } ]
listeners:
  - name: socks
    plugin: socks5
    listen: 127.0.0.1:$ls_socks
    egress: [ "127.0.0.1:$ep" ]
    handshake_timeout_ms: 2000
  - { name: open, plugin: socks5, listen: "127.0.0.1:$ls_open", auth: none, tenant: acme }
YAML
out=$("$FERRY" check -c "$dir/gw.yaml" 2>&1) || fail "ferry check rejects the gateway config: $out"
start_gateway gateway "$dir/gw.yaml" "$admin"
gw_pid=$GW_PID gw_log=$GW_LOG

# write_cn FILE ADMIN TENANT TOKEN AUDIT LOCATION SYSTEMS_YAML
write_cn() {
    cat >"$1" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$2 }
tenant: $3
token: $4
audit_log: $5
location_id: "$6"
ca: ca.crt
keepalive_ms: 1000
reconnect_max_ms: 1000
systems:
$7
YAML
}
cn_admin=$(free_port)
write_cn "$dir/cn.yaml" "$cn_admin" acme acme-token audit.jsonl "" "$(cat <<YAML
  - { virtual: web.internal:80, internal: 127.0.0.1:$hp_default, protocol: TCP }
  - { virtual: echo.internal:7, internal: 127.0.0.1:$ep, protocol: TCP }
  - { virtual: closed.internal:80, internal: 127.0.0.1:$closed, protocol: TCP }
  - { virtual: gone.internal:80, internal: nonexistent.invalid:80, protocol: TCP }
  - { virtual: shop.internal:80, internal: 127.0.0.1:$hp_default, protocol: HTTP }
  - { virtual: slow.internal:80, internal: 127.0.0.1:${bh:-$closed}, protocol: TCP }
YAML
)"
cnb_admin=$(free_port)
write_cn "$dir/cn-berlin.yaml" "$cnb_admin" acme acme-token audit-berlin.jsonl berlin \
    "  - { virtual: web.internal:80, internal: 127.0.0.1:$hp_berlin, protocol: TCP }"
cno_admin=$(free_port)
write_cn "$dir/cn-other.yaml" "$cno_admin" other other-token audit-other.jsonl "" \
    "  - { virtual: other.internal:80, internal: 127.0.0.1:$hp_default, protocol: TCP }"
for f in cn cn-berlin cn-other; do
    out=$("$FERRY" check -c "$dir/$f.yaml" 2>&1) || fail "ferry check rejects $f.yaml: $out"
done
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
start_connector connector-berlin "$dir/cn-berlin.yaml" "$cnb_admin"
cnb_pid=$CN_PID cnb_log=$CN_LOG
start_connector connector-other "$dir/cn-other.yaml" "$cno_admin"
cno_pid=$CN_PID cno_log=$CN_LOG
for a in "$cn_admin" "$cnb_admin" "$cno_admin"; do
    wait_readyz "$a" 200 10 || fail "connector (admin $a): /readyz is $(readyz "$a") after 10s, want 200"
done
need_metric "$admin" 'ferry_tunnels{tenant="acme",location=""}' -eq 2 10
need_metric "$admin" 'ferry_tunnels{tenant="acme",location="berlin"}' -eq 2 10
need_metric "$admin" 'ferry_tunnels{tenant="other",location=""}' -eq 2 10
audit=$dir/audit.jsonl
audit_b=$dir/audit-berlin.jsonl
audit_o=$dir/audit-other.jsonl
UP=(--user acme --password acme-token)
DEFAULT_BODY="web.internal default location"
BERLIN_BODY="web.internal berlin location"

# --- 1. through the tunnel with real clients ------------------------------------------
curl_socks "curl --socks5-hostname to web.internal" "$DEFAULT_BODY" \
    --socks5-hostname "127.0.0.1:$ls_socks" --proxy-user acme:acme-token "http://web.internal:80/index.txt"
curl_socks "curl -x socks5h://acme:acme-token@ to web.internal" "$DEFAULT_BODY" \
    -x "socks5h://acme:acme-token@127.0.0.1:$ls_socks" "http://web.internal/index.txt"
s5 "PySocks rdns to web.internal" pysocks --port "$ls_socks" "${UP[@]}" --rdns 1 \
    --host web.internal --dport 80 --http /index.txt --expect-body "$DEFAULT_BODY"
s5 "raw client to web.internal" handshake --port "$ls_socks" "${UP[@]}" --atyp domain \
    --host web.internal --dport 80 --http /index.txt --expect-body "$DEFAULT_BODY"
s5 "raw client to WEB.INTERNAL (names are case-insensitive)" handshake --port "$ls_socks" \
    "${UP[@]}" --atyp domain --host WEB.INTERNAL --dport 80 --http /index.txt \
    --expect-body "$DEFAULT_BODY"
s5 "echo through the tunnel" handshake --port "$ls_socks" "${UP[@]}" --atyp domain \
    --host echo.internal --dport 7 --echo "through the tunnel"
curl_socks "curl to the auth none listener, tunnel" "$DEFAULT_BODY" \
    --socks5-hostname "127.0.0.1:$ls_open" "http://web.internal:80/index.txt"
s5 "egress target still direct" handshake --port "$ls_socks" "${UP[@]}" --dport "$ep" \
    --echo "direct"
wait_access "$access" socks 7 5
n=$(access_count "$access" listener=socks tenant=acme target=web.internal:80 outcome=ok)
[ "$n" -ge 4 ] || fail_later "access log: want >= 4 lines with tenant acme, target web.internal:80," \
    "outcome ok; got $n: $(grep web.internal "$access" | tail -n 3)"
wait_log "$audit" '"virtual":"web.internal:80"' 5 || fail_later "audit: no line for web.internal:80"
n=$(audit_count "$audit" virtual=web.internal:80 outcome=ok)
[ "$n" -ge 4 ] || fail_later "audit: want >= 4 ok lines for web.internal:80, got $n"

# --- 2. SAP 0x80 locations ------------------------------------------------------------
s5 "0x80 base64 berlin" handshake --port "$ls_socks" --methods 80 --token acme-token \
    --location berlin --atyp domain --host web.internal --dport 80 --http /index.txt \
    --expect-body "$BERLIN_BODY"
s5 "0x80 raw berlin" handshake --port "$ls_socks" --methods 80 --token acme-token \
    --location berlin --location-raw --atyp domain --host web.internal --dport 80 \
    --http /index.txt --expect-body "$BERLIN_BODY"
s5 "0x80 default location" handshake --port "$ls_socks" --methods 80 --token acme-token \
    --location "" --atyp domain --host web.internal --dport 80 --http /index.txt \
    --expect-body "$DEFAULT_BODY"
s5 "0x80 base64 paris (no connector there)" handshake --port "$ls_socks" --methods 80 \
    --token acme-token --location paris --atyp domain --host web.internal --dport 80 \
    --expect-reply "$(reply 03)"
s5 "0x80 raw paris (no connector there)" handshake --port "$ls_socks" --methods 80 \
    --token acme-token --location paris --location-raw --atyp domain --host web.internal \
    --dport 80 --expect-reply "$(reply 03)"
for ((i = 0; i < 50; i++)); do
    [ "$(audit_count "$audit_b" outcome=ok)" -ge 2 ] && break
    sleep 0.1
done
n=$(audit_count "$audit_b" virtual=web.internal:80 outcome=ok location=berlin)
[ "$n" -eq 2 ] || fail_later "berlin audit: want 2 ok lines with location berlin, got $n"
n=$(audit_count "$audit" location=berlin)
[ "$n" -eq 0 ] || fail_later "default connector's audit: $n line(s) with location berlin"

# --- 3. reply codes -------------------------------------------------------------------
s5 "02: egress refuses, acme's connector is live" handshake --port "$ls_socks" "${UP[@]}" \
    --dport "$closed" --expect-reply "$(reply 02)"
s5 "02: egress refuses a name" handshake --port "$ls_socks" "${UP[@]}" --atyp domain \
    --host www.example.com --dport 443 --expect-reply "$(reply 02)"
s5 "02: unmapped virtual host" handshake --port "$ls_socks" "${UP[@]}" --atyp domain \
    --host ghost.internal --dport 80 --expect-reply "$(reply 02)"
s5 "02: mapped host, unmapped port" handshake --port "$ls_socks" "${UP[@]}" --atyp domain \
    --host web.internal --dport 81 --expect-reply "$(reply 02)"
s5 "02: tenant other asks for acme's web.internal" handshake --port "$ls_socks" \
    --user other --password other-token --atyp domain --host web.internal --dport 80 \
    --expect-reply "$(reply 02)"
s5 "02: acme asks for other's other.internal" handshake --port "$ls_socks" "${UP[@]}" \
    --atyp domain --host other.internal --dport 80 --expect-reply "$(reply 02)"
s5 "tenant other's own virtual host" handshake --port "$ls_socks" --user other \
    --password other-token --atyp domain --host other.internal --dport 80 --http /index.txt \
    --expect-body "$DEFAULT_BODY"
s5 "02: protocol HTTP system (connector refuses)" handshake --port "$ls_socks" "${UP[@]}" \
    --atyp domain --host shop.internal --dport 80 --expect-reply "$(reply 02)"
s5 "03: tenant other at location berlin" handshake --port "$ls_socks" --methods 80 \
    --token other-token --location berlin --atyp domain --host web.internal --dport 80 \
    --expect-reply "$(reply 03)"
s5 "05: internal port closed behind the connector" handshake --port "$ls_socks" "${UP[@]}" \
    --atyp domain --host closed.internal --dport 80 --expect-reply "$(reply 05)"
s5 "04: internal name does not resolve behind the connector" handshake --port "$ls_socks" \
    "${UP[@]}" --atyp domain --host gone.internal --dport 80 --expect-reply "$(reply 04)"
if [ -n "$bh" ]; then
    # The connector's connect timeout (default 5 s) is longer than the gateway's
    # handshake_timeout_ms (2 s); the handshake is over once the request is in: 04.
    s5 "04: internal connect times out behind the connector" handshake --port "$ls_socks" \
        "${UP[@]}" --atyp domain --host slow.internal --dport 80 --timeout 9 \
        --expect-reply "$(reply 04)"
else
    echo "SKIP: 04 on a connect timeout behind the connector: no hanging port" >&2
fi
s5 "07: BIND to a virtual host" handshake --port "$ls_socks" "${UP[@]}" --cmd 2 --atyp domain \
    --host web.internal --dport 80 --expect-reply "$(reply 07)"
wait_log "$audit" '"virtual":"shop.internal:80"' 5 || fail_later "audit: no line for shop.internal:80"
n=$(audit_count "$audit" virtual=shop.internal:80 outcome=denied)
[ "$n" -eq 1 ] || fail_later "audit: want 1 denied line for shop.internal:80 (protocol), got $n"
n=$(audit_count "$audit_o" virtual=web.internal:80)
[ "$n" -eq 0 ] || fail_later "tenant other's connector saw acme's web.internal:80 ($n audit lines)"
n=$(audit_count "$audit" virtual=other.internal:80)
[ "$n" -eq 0 ] || fail_later "acme's connector saw other's other.internal:80 ($n audit lines)"
for t in ghost.internal:80 closed.internal:80 gone.internal:80 shop.internal:80; do
    n=$(access_count "$access" listener=socks tenant=acme "target=$t")
    [ "$n" -ge 1 ] || fail_later "access log: no line for tenant acme, target $t"
    n=$(access_count "$access" listener=socks "target=$t" outcome=ok)
    [ "$n" -eq 0 ] || fail_later "access log: refused target $t has outcome ok"
done
n=$(access_count "$access" listener=socks tenant=other target=web.internal:80)
[ "$n" -ge 1 ] || fail_later "access log: no line for tenant other, target web.internal:80"

# --- 4. many streams at once ----------------------------------------------------------
s5 "200 concurrent through the tunnel" many --port "$ls_socks" "${UP[@]}" --atyp domain \
    --host echo.internal --dport 7 --n 200 --size 4096 --timeout 30
echo "200 concurrent through the tunnel: $S5_OUT" >&2
wait_metric "$admin" 'ferry_listener_connections_active{listener="socks"}' -eq 0 10 ||
    fail_later "/metrics: ferry_listener_connections_active{listener=\"socks\"} is" \
        "$(metric "$admin" 'ferry_listener_connections_active{listener="socks"}') 10 s after" \
        "the connections ended, want 0"
s5 "good connection after the load" handshake --port "$ls_socks" "${UP[@]}" --atyp domain \
    --host web.internal --dport 80 --http /index.txt --expect-body "$DEFAULT_BODY"

stop_proc "$cno_pid" "$cno_log" connector-other
stop_proc "$cnb_pid" "$cnb_log" connector-berlin
stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
for a in "$audit" "$audit_b" "$audit_o"; do
    out=$("$FERRY" connector --verify-audit "$a" 2>&1) || fail_later "--verify-audit $a failed: $out"
done
fail_deferred
echo "ok: curl, PySocks and raw clients through the tunnel; 0x80 locations; replies 02 03" \
     "04 05 07 behind the connector; tenants isolated; 200 concurrent streams"
