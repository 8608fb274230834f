#!/usr/bin/env bash
# ldap_tunnel.sh: the ldap plugin with OnPremise destinations, through a connector.
#
#   bash tests/integration/ldap_tunnel.sh [BUILD_DIR]     (default: build)
#
# Our own slapd (tools/ldap_lib.sh) behind acme's connector, which maps
#   ldap.internal:389  -> slapd's ldap:// port   (protocol LDAP)
#   ldaps.internal:636 -> slapd's ldaps:// port  (protocol LDAPS, tls_ca: the slapd CA)
#   ldap.tcp:389       -> slapd's ldap:// port   (protocol TCP: also fits an LDAP stream)
# OnPremise LDAP destinations with ldap.user (ferry injects its bind, plain LDAP in the
# tunnel) and one listener each:
# 1. onprem (ldap://ldap.internal:389): an anonymous ldapsearch finds the 4 users, whoami
#    is cn=ferry, a client bind with a wrong password is answered by ferry, ldapmodify
#    works, 200 lookups on one connection; the connector audits the streams with
#    protocol LDAP and outcome ok (the clients ended their sessions cleanly).
# 2. onprem-ldaps (ldap://ldaps.internal:636): the same search works, slapd logs a TLS
#    session of the connector, the audit names protocol LDAPS (outcome ok).
# 3. onprem-tcp (ldap.tcp:389 through a TCP system) works.
# 4. ghost (ldap://ghost.internal:389, not mapped): the client is closed with no entry,
#    the connector audits it denied; a location no connector serves (berlin): closed too.
# 5. The internal address never appears in the gateway's logs; the access log has the
#    operations (protocol ldap); every process exits 0 on SIGTERM with no sanitizer
#    report; the audit chain verifies.
# shellcheck disable=SC2015  # `[ check ] && [ check ] || fail…`: fail… is the else
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/ldap_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/ldap_lib.sh"

[ -f "$PLUGINS/ferry_ldap.so" ] || fail "no ldap plugin at $PLUGINS/ferry_ldap.so (build first)"

dir=$(tmpdir)
make_ca "$dir" ca
make_cert "$dir" gw ca
ldap_certs "$dir"
start_slapd slapd "$dir"
sp=$SLAPD_PORT sps=$SLAPDS_PORT slapd_log=$SLAPD_LOG
ALL_UIDS="alice bob carol dave"

gw_admin=$(free_port); tport=$(free_port); cn_admin=$(free_port)
l_onprem=$(free_port); l_ldaps=$(free_port); l_tcp=$(free_port); l_ghost=$(free_port)
l_berlin=$(free_port)
access=$dir/access.log
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $access }
admin: { listen: 127.0.0.1:$gw_admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - Name: onprem
    Type: LDAP
    ldap.url: ldap://ldap.internal:389
    ldap.proxyType: OnPremise
    ldap.authentication: BasicAuthentication
    ldap.user: "$LDAP_SVC_DN"
    ldap.password: "$LDAP_SVC_PW"
  - { Name: onprem-ldaps, Type: LDAP, ldap.url: "ldap://ldaps.internal:636", ProxyType: OnPremise,
      ldap.user: "$LDAP_SVC_DN", ldap.password: "$LDAP_SVC_PW" }
  - { Name: onprem-tcp, Type: LDAP, ldap.url: "ldap://ldap.tcp:389", ProxyType: OnPremise,
      ldap.user: "$LDAP_SVC_DN", ldap.password: "$LDAP_SVC_PW" }
  - { Name: ghost, Type: LDAP, ldap.url: "ldap://ghost.internal:389", ProxyType: OnPremise,
      ldap.user: "$LDAP_SVC_DN", ldap.password: "$LDAP_SVC_PW" }
  - { Name: berlin, Type: LDAP, ldap.url: "ldap://ldap.internal:389", ProxyType: OnPremise,
      CloudConnectorLocationId: berlin, ldap.user: "$LDAP_SVC_DN", ldap.password: "$LDAP_SVC_PW" }
listeners:
  - { name: onprem, plugin: ldap, listen: "127.0.0.1:$l_onprem", destination: onprem }
  - { name: onprem-ldaps, plugin: ldap, listen: "127.0.0.1:$l_ldaps", destination: onprem-ldaps }
  - { name: onprem-tcp, plugin: ldap, listen: "127.0.0.1:$l_tcp", destination: onprem-tcp }
  - { name: ghost, plugin: ldap, listen: "127.0.0.1:$l_ghost", destination: ghost }
  - { name: berlin, plugin: ldap, listen: "127.0.0.1:$l_berlin", destination: berlin }
YAML
cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
systems:
  - { virtual: ldap.internal:389, internal: "127.0.0.1:$sp", protocol: LDAP }
  - { virtual: ldaps.internal:636, internal: "127.0.0.1:$sps", protocol: LDAPS, tls_ca: ldapca.crt }
  - { virtual: ldap.tcp:389, internal: "127.0.0.1:$sp", protocol: TCP }
YAML
out=$("$FERRY" check -c "$dir/gw.yaml" 2>&1) || fail "ferry check rejects the gateway config: $out"
out=$("$FERRY" check -c "$dir/cn.yaml" 2>&1) || fail "ferry check rejects the connector config: $out"
start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
audit=$dir/audit.jsonl
wait_readyz "$cn_admin" 200 10 || fail "the connector did not come up"
need_metric "$gw_admin" 'ferry_tunnels{tenant="acme",location=""}' -eq 2 10
url() { echo "ldap://127.0.0.1:$1"; }

# --- 1. LDAP system -----------------------------------------------------------------------
lsearch "$(url "$l_onprem")" -b "$LDAP_BASE" '(uid=*)' uid
[ "$LS_RC" = 0 ] && [ "$(uids "$LS_OUT")" = "$ALL_UIDS" ] ||
    fail "anonymous ldapsearch through the tunnel (bind injected): want rc 0 and" \
         "'$ALL_UIDS', got rc $LS_RC: $LS_OUT"
ldap_py --port "$l_onprem" bind=uid=someone:wrong whoami "search=$LDAP_PEOPLE:(uid=bob)"
[ "$(lp_get results.0.rc)" = 0 ] || fail_later "a client bind through the tunnel: want ferry's 0: $LP_OUT"
[ "$(lp_get results.1.value)" = "dn:$LDAP_SVC_DN" ] ||
    fail_later "whoami through the tunnel: want dn:$LDAP_SVC_DN: $LP_OUT"
[ "$(lp_get results.2.entries)" = 1 ] || fail_later "search after a client bind, tunnel: $LP_OUT"
cat >"$dir/mod.ldif" <<LDIF
dn: uid=carol,$LDAP_PEOPLE
changetype: modify
replace: mail
mail: carol@onprem.example.org
LDIF
lmodify "$(url "$l_onprem")" "$dir/mod.ldif"
[ "$LM_RC" = 0 ] || fail_later "ldapmodify through the tunnel: want 0, got $LM_RC: $LM_OUT"
lsearch "ldap://127.0.0.1:$sp" -D "$LDAP_SVC_DN" -w "$LDAP_SVC_PW" -b "$LDAP_PEOPLE" '(uid=carol)' mail
grep -q '^mail: carol@onprem.example.org' <<<"$LS_OUT" || fail_later "carol's mail after the modify: $LS_OUT"
for i in $(seq 1 50); do printf 'alice\nbob\ncarol\ndave\n'; done >"$dir/filters"
LS_T0=$(date +%s%N)
lsearch "$(url "$l_onprem")" -b "$LDAP_BASE" -f "$dir/filters" '(uid=%s)' uid
n=$(grep -c '^uid: ' <<<"$LS_OUT" || true)
[ "$LS_RC" = 0 ] && [ "$n" = 200 ] ||
    fail_later "200 lookups on one connection through the tunnel: rc $LS_RC, $n entries"
echo "ldap_tunnel: 200 lookups on one connection in $((($(date +%s%N) - LS_T0) / 1000000)) ms" >&2
wait_log "$audit" '"virtual":"ldap.internal:389"' 5 || fail "audit: no line for ldap.internal:389"
# A session the client ended (unbind, close) is an ok stream, as a TCP one is.
[ "$(audit_count "$audit" virtual=ldap.internal:389 outcome=ok protocol=LDAP)" -ge 1 ] ||
    fail_later "audit: no outcome ok line (protocol LDAP) for ldap.internal:389, though every" \
        "client ended its session cleanly: $(grep ldap.internal "$audit" | head -n 2)"

# --- 2. LDAPS system ----------------------------------------------------------------------
tls_before=$(grep -c 'TLS established' "$slapd_log" || true)
lsearch "$(url "$l_ldaps")" -b "$LDAP_BASE" '(uid=*)' uid
[ "$LS_RC" = 0 ] && [ "$(uids "$LS_OUT")" = "$ALL_UIDS" ] ||
    fail_later "ldapsearch through the LDAPS system: want rc 0 and '$ALL_UIDS', got rc $LS_RC: $LS_OUT"
[ "$(grep -c 'TLS established' "$slapd_log" || true)" -gt "$tls_before" ] ||
    fail_later "slapd logged no TLS session for the LDAPS system"
wait_log "$audit" '"virtual":"ldaps.internal:636"' 5 || fail_later "audit: no line for ldaps.internal:636"
[ "$(audit_count "$audit" virtual=ldaps.internal:636 outcome=ok protocol=LDAPS)" -ge 1 ] ||
    fail_later "audit: no outcome ok line (protocol LDAPS) for ldaps.internal:636:" \
        "$(grep ldaps.internal "$audit" | head -n 2)"

# --- 3. TCP system ------------------------------------------------------------------------
lsearch "$(url "$l_tcp")" -b "$LDAP_BASE" '(uid=*)' uid
[ "$LS_RC" = 0 ] && [ "$(uids "$LS_OUT")" = "$ALL_UIDS" ] ||
    fail_later "ldapsearch through a TCP system: want rc 0 and '$ALL_UIDS', got rc $LS_RC: $LS_OUT"

# --- 4. unmapped virtual host, unserved location -------------------------------------------
for what in ghost berlin; do
    port=$l_ghost
    [ "$what" = ghost ] || port=$l_berlin
    lsearch "$(url "$port")" -b "$LDAP_BASE" '(uid=*)' uid
    if [ "$LS_RC" = 0 ] || [ -n "$(uids "$LS_OUT")" ]; then
        fail_later "$what: want ldapsearch to fail, got rc $LS_RC: $LS_OUT"
    fi
    ldap_py --port "$port" --timeout 10 close
    case "$(lp_get closed)" in
        eof | reset) ;;
        *) fail_later "$what: want the client closed: $LP_OUT" ;;
    esac
done
wait_log "$audit" '"virtual":"ghost.internal:389"' 5 || fail_later "audit: no line for ghost.internal:389"
[ "$(audit_count "$audit" virtual=ghost.internal:389 outcome=denied)" -ge 1 ] ||
    fail_later "audit: ghost.internal:389 not denied: $(grep ghost "$audit" | head -n 2)"
[ "$(audit_count "$audit" virtual=ghost.internal:389 outcome=ok)" = 0 ] ||
    fail_later "audit: an ok line for the unmapped ghost.internal:389"

# --- 5. logs -------------------------------------------------------------------------------
lsearch "$(url "$l_onprem")" -b "$LDAP_BASE" '(uid=alice)' uid
[ "$(uids "$LS_OUT")" = alice ] || fail "a search after everything: rc $LS_RC: $LS_OUT"
[ "$(log_lines "$access" request protocol=ldap listener=onprem method=search status=0)" -ge 200 ] ||
    fail_later "access log: want >= 200 search lines with status 0 for listener onprem, got" \
        "$(log_lines "$access" request protocol=ldap listener=onprem method=search status=0)"
for f in "$gw_log" "$access"; do
    for p in "$sp" "$sps"; do
        if grep -En "127[.]0[.]0[.]1:$p([^0-9]|\$)" "$f" >&2; then
            fail_later "gateway log $f shows the internal address 127.0.0.1:$p (lines above)"
        fi
    done
    if grep -n -- "$LDAP_SVC_PW" "$f" >&2; then fail_later "the service password is in $f (lines above)"; fi
done
stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
"$FERRY" connector --verify-audit "$audit" >/dev/null || fail_later "audit chain broken"
stop_slapd "$SLAPD_PID"
fail_deferred
echo "ldap_tunnel: ok"
