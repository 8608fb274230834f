#!/usr/bin/env bash
# ldap_pkcs12.sh: the ldap plugin presenting a client certificate from KeyStoreLocation
# (a PKCS#12 key store) to a slapd that demands one.
#
#   bash tests/integration/ldap_pkcs12.sh [BUILD_DIR]     (default: build)
#
# Our own slapd (tools/ldap_lib.sh) with `TLSVerifyClient demand`: every TLS client,
# ldaps:// or StartTLS, must show a certificate from the test CA (checked directly with
# ldapsearch and LDAPTLS_CERT/KEY, and refused without). ferry destinations, one
# listener each, bind injected (ldap.user):
# 1. ldaps (ldaps://, KeyStoreLocation: ldapclient.p12, KeyStorePassword
#    `${env:FERRY_TEST_P12_PASS}`) and starttls (ldap:// + ldap.startTLS, the same key
#    store, password `${file:p12.pass}`): an anonymous ldapsearch through ferry finds
#    the 4 users; slapd logged the TLS sessions.
# 2. ldaps-nocert and starttls-nocert (no key store): slapd refuses the handshake, the
#    client gets no entry and is closed.
# 3. A wrong KeyStorePassword on an LDAP destination: `ferry check` exits 2 naming the
#    file at KeyStoreLocation's line, without the password.
# ferry exits 0 on SIGTERM with no sanitizer report; no password in its log.
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

PW=ldap-p12-Pass-3e9d
PW_WRONG=ldap-p12-Wrong-77a1
export FERRY_TEST_P12_PASS=$PW

dir=$(tmpdir)
ldap_certs "$dir"
make_cert "$dir" ldapclient ldapca "DNS:client.example"
openssl pkcs12 -export -in "$dir/ldapclient.crt" -inkey "$dir/ldapclient.key" \
    -certfile "$dir/ldapca.crt" -out "$dir/ldapclient.p12" -passout "pass:$PW" \
    >"$dir/openssl-p12.log" 2>&1 || { cat "$dir/openssl-p12.log" >&2; fail "openssl: cannot export ldapclient.p12"; }
printf '%s\n' "$PW" >"$dir/p12.pass"
LDAP_TLS_VERIFY_CLIENT=demand start_slapd slapd "$dir"
sp=$SLAPD_PORT sps=$SLAPDS_PORT slapd_log=$SLAPD_LOG
ALL_UIDS="alice bob carol dave"
SVC=(-D "$LDAP_SVC_DN" -w "$LDAP_SVC_PW")

# slapd demands a client certificate: with one the service account reads, without none.
LDAPTLS_CERT=$dir/ldapclient.crt LDAPTLS_KEY=$dir/ldapclient.key LS_TLS_CA=$dir/ldapca.crt \
    lsearch "ldaps://127.0.0.1:$sps" "${SVC[@]}" -b "$LDAP_BASE" '(uid=*)' uid
[ "$LS_RC" = 0 ] && [ "$(uids "$LS_OUT")" = "$ALL_UIDS" ] ||
    fail "slapd refuses a client with a certificate (rc $LS_RC): $LS_OUT"
LS_TLS_CA=$dir/ldapca.crt lsearch "ldaps://127.0.0.1:$sps" "${SVC[@]}" -b "$LDAP_BASE" '(uid=*)' uid
[ "$LS_RC" != 0 ] && [ -z "$(uids "$LS_OUT")" ] ||
    fail "slapd serves an ldaps client without a certificate (rc $LS_RC): $LS_OUT"

admin=$(free_port)
declare -A L
for n in ldaps starttls ldaps-nocert starttls-nocert; do
    L[$n]=$(free_port)
done
# shellcheck disable=SC2016  # ${env:…} and ${file:…} are config text for ferry
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: debug, access: $dir/access.log }
admin: { listen: 127.0.0.1:$admin }
destinations:
  - Name: ldaps
    Type: LDAP
    ldap.url: "ldaps://127.0.0.1:$sps"
    ldap.user: "$LDAP_SVC_DN"
    ldap.password: "$LDAP_SVC_PW"
    TrustStoreLocation: ldapca.crt
    KeyStoreLocation: ldapclient.p12
    KeyStorePassword: "\${env:FERRY_TEST_P12_PASS}"
  - Name: starttls
    Type: LDAP
    ldap.url: "ldap://localhost:$sp"
    ldap.startTLS: "true"
    ldap.user: "$LDAP_SVC_DN"
    ldap.password: "$LDAP_SVC_PW"
    TrustStoreLocation: ldapca.crt
    KeyStoreLocation: ldapclient.p12
    KeyStorePassword: "\${file:p12.pass}"
  - { Name: ldaps-nocert, Type: LDAP, ldap.url: "ldaps://127.0.0.1:$sps", ldap.user: "$LDAP_SVC_DN",
      ldap.password: "$LDAP_SVC_PW", TrustStoreLocation: ldapca.crt }
  - { Name: starttls-nocert, Type: LDAP, ldap.url: "ldap://127.0.0.1:$sp", ldap.startTLS: "true",
      ldap.user: "$LDAP_SVC_DN", ldap.password: "$LDAP_SVC_PW", TrustStoreLocation: ldapca.crt }
listeners:
  - { name: ldaps, plugin: ldap, listen: "127.0.0.1:${L[ldaps]}", destination: ldaps }
  - { name: starttls, plugin: ldap, listen: "127.0.0.1:${L[starttls]}", destination: starttls }
  - { name: ldaps-nocert, plugin: ldap, listen: "127.0.0.1:${L[ldaps-nocert]}", destination: ldaps-nocert }
  - { name: starttls-nocert, plugin: ldap, listen: "127.0.0.1:${L[starttls-nocert]}", destination: starttls-nocert }
YAML
start_ferry "$dir/gw.yaml" "$admin"
url() { echo "ldap://127.0.0.1:${L[$1]}"; }
slapd_count() { grep -c -- "$1" "$slapd_log" || true; }

# --- 1. the key store's certificate opens slapd's TLS ---------------------------------------
tls_before=$(slapd_count 'TLS established')
for n in ldaps starttls; do
    lsearch "$(url "$n")" -b "$LDAP_BASE" '(uid=*)' uid
    [ "$LS_RC" = 0 ] && [ "$(uids "$LS_OUT")" = "$ALL_UIDS" ] ||
        fail_later "destination $n (PKCS#12 key store): want rc 0 and uids '$ALL_UIDS', got rc $LS_RC: $LS_OUT"
done
[ "$(slapd_count 'EXT oid=1.3.6.1.4.1.1466.20037')" -ge 1 ] ||
    fail_later "slapd logged no StartTLS request (ldap.startTLS: true)"
[ "$(slapd_count 'TLS established')" -ge $((tls_before + 2)) ] ||
    fail_later "slapd logged $(($(slapd_count 'TLS established') - tls_before)) TLS sessions through ferry, want >= 2"

# --- 2. no key store: slapd refuses ---------------------------------------------------------
for n in ldaps-nocert starttls-nocert; do
    lsearch "$(url "$n")" -b "$LDAP_BASE" '(uid=*)' uid
    if [ "$LS_RC" = 0 ] || [ -n "$(uids "$LS_OUT")" ]; then
        fail_later "destination $n (no client certificate): want a failure, got rc $LS_RC: $LS_OUT"
    fi
    ldap_py --port "${L[$n]}" --timeout 5 close
    case "$(lp_get closed)" in
        eof | reset) ;;
        *) fail_later "destination $n (no client certificate): want the client closed: $LP_OUT" ;;
    esac
done
stop_ferry
! grep -qF -- "$PW" "$FERRY_LOG" "$dir/access.log" || fail_later "the key store password is in ferry's logs"

# --- 3. a wrong password is a configuration error -------------------------------------------
sed "s|\\\${env:FERRY_TEST_P12_PASS}|$PW_WRONG|" "$dir/gw.yaml" >"$dir/bad.yaml"
line=$(grep -n 'KeyStoreLocation: ldapclient.p12' "$dir/bad.yaml" | head -n 1 | cut -d: -f1)
rc=0
"$FERRY" check -c "$dir/bad.yaml" >"$dir/bad.out" 2>&1 || rc=$?
check_sanitizers "$dir/bad.out" "ferry check -c bad.yaml"
[ "$rc" = 2 ] || fail_later "ferry check with a wrong LDAP key store password: want exit 2, got $rc: $(cat "$dir/bad.out")"
grep -qF "$dir/bad.yaml:$line:5: destination 'ldaps': KeyStoreLocation: $dir/ldapclient.p12: wrong password" "$dir/bad.out" ||
    fail_later "ferry check: want the wrong password at $line:5: $(cat "$dir/bad.out")"
! grep -qF -- "$PW_WRONG" "$dir/bad.out" || fail_later "ferry check printed the wrong password"

stop_slapd "$SLAPD_PID"
fail_deferred
echo "ldap_pkcs12: ok"
