#!/usr/bin/env bash
# pp_connector.sh: principal propagation, the connector's side (DESIGN.md "User
# identity: principal propagation"): the connector turns the user's validated claims
# into a short-lived certificate of its PP CA and hands it to the internal host.
#
#   bash tests/integration/pp_connector.sh [BUILD_DIR]     (default: build)
#
# 1. `ferry check` of connector configs: a system naming a mode without the section, tls
#    on an HTTP system, a bad subject pattern (the column points into the pattern), a
#    PP CA that is no CA (the file named): exit 2 with file:line:col; a good one: 0.
# Then gateway (tenant acme with jwt:) + connector (one worker, PP CA made with the
# openssl CLI, validity 10 min) + an echo origin + nginx (HTTPS, ssl_verify_client on
# with the PP CA, answers $ssl_client_s_dn):
# 2. header mode: the origin sees exactly one SSL_CLIENT_CERT (the client's own, also
#    spelt SSL-Client-Cert, replaced), base64 DER that `openssl verify -CAfile pp-ca.crt`
#    accepts, subject CN=alice, notAfter - notBefore = 600 + 60 s (backdated); never the
#    token. alice again: the same serial; bob: another certificate. Eight new users at
#    once, two streams each, each get their own certificate, signed once per user.
# 3. a stream without a user to a header-mode system: the client's SSL_CLIENT_CERT is
#    stripped, none is added.
# 4. tls mode: nginx sees the user certificate as the TLS client certificate: CN=alice.
# 5. a system with principal_propagation: off: 403 access-denied, audited with the reason.
# 6. /metrics: issued 10 (alice, bob, the eight: one worker), reused >= 1, refused >= 1;
#    audit lines name the subject; --verify-audit passes; no token in the connector's
#    output.
# 7. SIGHUP with another PP CA and subject pattern: a new user's certificate verifies
#    against the new CA and has the new subject; SIGHUP without the section: 403
#    access-denied for the next new user.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/http_lib.sh"

command -v jq >/dev/null || fail "jq is missing"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || fail "nginx is missing (bash tests/deps.sh)"
dir=$(tmpdir)
make_ca "$dir" ca
make_cert "$dir" gw ca
make_cert "$dir" nginx ca "DNS:localhost,IP:127.0.0.1"
# The PP CA as an operator makes it (examples/principal-propagation/README.md): RSA,
# basicConstraints critical CA:TRUE, keyUsage keyCertSign.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ferry test PP CA" \
    -keyout "$dir/pp-ca.key" -out "$dir/pp-ca.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    >"$dir/openssl-pp.log" 2>&1 || fail "openssl: cannot make the PP CA: $(cat "$dir/openssl-pp.log")"

# --- 1. configuration checks ---------------------------------------------------------------------
CN_HEAD="gateway: 127.0.0.1:1
tenant: acme
token: acme-token
ca: ca.crt"
# check_conf NAME WANT_RC WANT_TEXT: `ferry check` of $dir/NAME.yaml (its text on stdin).
check_conf() {
    local name=$1 want_rc=$2 want=$3 out rc=0
    cat >"$dir/$name.yaml"
    out=$("$FERRY" check -c "$dir/$name.yaml" 2>&1) || rc=$?
    [ "$rc" = "$want_rc" ] || fail_later "check $name: exit $rc, want $want_rc: $out"
    grep -qF -- "$want" <<<"$out" || fail_later "check $name: want '$want' in: $out"
}
check_conf no-section 2 "no-section.yaml:9:28: systems[0]: principal_propagation: header needs" <<YAML
$CN_HEAD
systems:
  - virtual: a:80
    internal: 127.0.0.1:1
    protocol: HTTP
    principal_propagation: header
YAML
check_conf tls-on-http 2 "tls-on-http.yaml:12:28: systems[0]: principal_propagation: tls needs protocol HTTPS" <<YAML
$CN_HEAD
principal_propagation:
  ca_cert: pp-ca.crt
  ca_key: pp-ca.key
systems:
  - virtual: a:80
    internal: 127.0.0.1:1
    protocol: HTTP
    principal_propagation: tls
YAML
# Column 12 is the quote: the pattern starts at 13, XX at its 12th character.
check_conf bad-field 2 "bad-field.yaml:8:24: principal_propagation: subject:" <<YAML
$CN_HEAD
principal_propagation:
  ca_cert: pp-ca.crt
  ca_key: pp-ca.key
  subject: "CN=\${name},XX=Acme"
systems: [ { virtual: a:80, internal: 127.0.0.1:1, protocol: HTTP } ]
YAML
check_conf unclosed 2 "unclosed.yaml:8:" <<YAML
$CN_HEAD
principal_propagation:
  ca_cert: pp-ca.crt
  ca_key: pp-ca.key
  subject: CN=\${name
systems: [ { virtual: a:80, internal: 127.0.0.1:1, protocol: HTTP } ]
YAML
check_conf not-a-ca 2 "not-a-ca.yaml:6:12: principal_propagation: $dir/gw.crt: not a CA" <<YAML
$CN_HEAD
principal_propagation:
  ca_cert: gw.crt
  ca_key: gw.key
systems: [ { virtual: a:80, internal: 127.0.0.1:1, protocol: HTTP } ]
YAML
check_conf good 0 "principal propagation" <<YAML
$CN_HEAD
principal_propagation: { ca_cert: pp-ca.crt, ca_key: pp-ca.key, validity_minutes: 10 }
systems: [ { virtual: a:443, internal: 127.0.0.1:1, protocol: HTTPS, principal_propagation: tls } ]
YAML

# --- keys and tokens ---------------------------------------------------------------------------
ISS=https://idp.acme.example
mint() { python3 "$TOOLS/jwt_mint.py" "$@"; }
mint keygen es256 "$dir/es.pem"
mint jwks "es1=$dir/es.pem" >"$dir/jwks.json"
claims() {
    jq -nc --arg iss "$ISS" --arg u "$1" \
        '{iss: $iss, aud: "ferry", sub: $u, user_name: $u, exp: "@+600"}'
}
alice=$(mint token "$dir/es.pem" es1 "$(claims alice)")
bob=$(mint token "$dir/es.pem" es1 "$(claims bob)")

# --- origins -------------------------------------------------------------------------------------
start_http_origin main --echo-all
op=$HO_PORT
np=$(free_port)
mkdir -p "$dir/nginx/tmp"
cat >"$dir/nginx/nginx.conf" <<NGINX
daemon off;
master_process off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $dir/nginx/tmp/body;
    proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$np ssl;
        ssl_certificate $dir/nginx.crt;
        ssl_certificate_key $dir/nginx.key;
        ssl_client_certificate $dir/pp-ca.crt;
        ssl_verify_client on;
        location / {
            default_type text/plain;
            return 200 "dn=\$ssl_client_s_dn\n";
        }
    }
}
NGINX
start_bg nginx "$NGINX" -e "$dir/nginx/error.log" -p "$dir/nginx" -c "$dir/nginx/nginx.conf"
nginx_pid=$BG_PID
wait_port 127.0.0.1 "$np" 10 "$nginx_pid" ||
    fail "nginx did not listen on $np: $(cat "$dir/nginx/error.log" 2>/dev/null)"

# --- gateway and connector -----------------------------------------------------------------------
gw_admin=$(free_port); tport=$(free_port); cn_admin=$(free_port)
l_h=$(free_port); l_t=$(free_port); l_off=$(free_port); l_plain=$(free_port)
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info }
admin: { listen: 127.0.0.1:$gw_admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants:
  - id: acme
    token: acme-token
    jwt: { issuer: "$ISS", audience: ferry, jwks: $dir/jwks.json }
destinations:
  - { Name: pp-header, Type: HTTP, URL: "http://hdr.internal:80", ProxyType: OnPremise,
      Authentication: PrincipalPropagation }
  - { Name: pp-tls, Type: HTTP, URL: "http://tls.internal:443", ProxyType: OnPremise,
      Authentication: PrincipalPropagation }
  - { Name: pp-off, Type: HTTP, URL: "http://off.internal:80", ProxyType: OnPremise,
      Authentication: PrincipalPropagation }
  - { Name: plain, Type: HTTP, URL: "http://hdr.internal:80", ProxyType: OnPremise }
listeners:
  - { name: h, plugin: http, listen: "127.0.0.1:$l_h", destination: pp-header }
  - { name: t, plugin: http, listen: "127.0.0.1:$l_t", destination: pp-tls }
  - { name: off, plugin: http, listen: "127.0.0.1:$l_off", destination: pp-off }
  - { name: plain, plugin: http, listen: "127.0.0.1:$l_plain", destination: plain }
YAML
cat >"$dir/cn.yaml" <<YAML
workers: 1
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
principal_propagation:
  ca_cert: pp-ca.crt
  ca_key: pp-ca.key
  subject: "CN=\${name}"
  validity_minutes: 10
systems:
  - { virtual: "hdr.internal:80", internal: "127.0.0.1:$op", protocol: HTTP }
  - { virtual: "tls.internal:443", internal: "127.0.0.1:$np", protocol: HTTPS,
      tls_ca: ca.crt, tls_server_name: localhost, principal_propagation: tls }
  - { virtual: "off.internal:80", internal: "127.0.0.1:$op", protocol: HTTP,
      principal_propagation: off }
YAML
out=$("$FERRY" check -c "$dir/cn.yaml" 2>&1) || fail "ferry check rejects the connector: $out"
start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "the connector did not come up"
need_metric "$gw_admin" 'ferry_tunnels{tenant="acme",location=""}' -eq 2 10

# --- 2. header mode ------------------------------------------------------------------------------
# user_cert WHAT USER: the one SSL_CLIENT_CERT of the last echo, checked; its serial in
# CERT_SERIAL.
CERT_SERIAL=
user_cert() {
    local what=$1 user=$2 b64 start end
    CERT_SERIAL=
    want_eq "$what: SSL_CLIENT_CERT fields at the origin" "$(ehn SSL_CLIENT_CERT)" 1 || return 0
    want_eq "$what: SSL-Client-Cert fields at the origin" "$(ehn SSL-Client-Cert)" 0
    b64=$(eh SSL_CLIENT_CERT)
    printf '%s' "$b64" | base64 -d >"$dir/user.der" 2>/dev/null &&
        openssl x509 -inform DER -in "$dir/user.der" -out "$dir/user.pem" 2>/dev/null ||
        { fail_later "$what: SSL_CLIENT_CERT is not base64 DER: ${b64:0:60}"; return 0; }
    openssl verify -CAfile "$dir/pp-ca.crt" "$dir/user.pem" >/dev/null 2>&1 ||
        fail_later "$what: openssl verify -CAfile pp-ca.crt refuses the user certificate"
    openssl x509 -in "$dir/user.pem" -noout -subject | grep -q "CN *= *$user\$" ||
        fail_later "$what: not CN=$user: $(openssl x509 -in "$dir/user.pem" -noout -subject)"
    start=$(date -d "$(openssl x509 -in "$dir/user.pem" -noout -startdate | cut -d= -f2)" +%s)
    end=$(date -d "$(openssl x509 -in "$dir/user.pem" -noout -enddate | cut -d= -f2)" +%s)
    want_eq "$what: validity (s)" "$((end - start))" 660
    CERT_SERIAL=$(openssl x509 -in "$dir/user.pem" -noout -serial)
}
no_token() {
    want_eq "$HR_WHAT: Authorization at the origin" "$(ehn Authorization)" 0
    grep -qF "$1" "$HR_BODY" && fail_later "$HR_WHAT: the origin saw the token"
    return 0
}
hreq "alice, with SSL_CLIENT_CERT of her own" -H "Authorization: Bearer $alice" \
    -H 'SSL_CLIENT_CERT: forged' -H 'SSL-Client-Cert: forged-too' "http://127.0.0.1:$l_h/echo"
if want_ok; then
    no_token "$alice"
    user_cert "$HR_WHAT" alice
fi
serial_alice=$CERT_SERIAL
hreq "alice again" -H "Authorization: Bearer $alice" "http://127.0.0.1:$l_h/echo"
if want_ok; then
    user_cert "$HR_WHAT" alice
    want_eq "alice's second certificate (serial)" "$CERT_SERIAL" "$serial_alice"
fi
hreq "bob" -H "Authorization: Bearer $bob" "http://127.0.0.1:$l_h/echo"
if want_ok; then
    no_token "$bob"
    user_cert "$HR_WHAT" bob
    [ "$CERT_SERIAL" != "$serial_alice" ] || fail_later "bob got alice's certificate"
fi

# Eight new users at once, each with two requests (two streams): the certificates are
# signed one after the other on the signer thread while the worker goes on; a user's
# second stream waits for the first's certificate (one signature per user); each
# stream gets its own user's.
many=()
for i in 1 2 3 4 5 6 7 8; do
    mint token "$dir/es.pem" es1 "$(claims "user$i")" >"$dir/many$i.jwt"
done
for i in 1 2 3 4 5 6 7 8; do
    for k in a b; do
        curl -sS --max-time 20 -H "Authorization: Bearer $(cat "$dir/many$i.jwt")" \
            -o "$dir/many$i$k.json" "http://127.0.0.1:$l_h/echo" &
        many+=($!)
    done
done
for p in "${many[@]}"; do
    wait "$p" || fail_later "a request of the eight users failed"
done
for i in 1 2 3 4 5 6 7 8; do
    for k in a b; do
        b64=$(jq -r '(.headers // [])[] | select(.[0] | ascii_downcase == "ssl_client_cert")
                     | .[1]' "$dir/many$i$k.json" 2>/dev/null || true)
        printf '%s' "$b64" | base64 -d 2>/dev/null | openssl x509 -inform DER -noout \
            -subject 2>/dev/null | grep -q "CN *= *user$i\$" ||
            fail_later "user$i$k (eight at once): not a certificate for CN=user$i"
    done
done

# --- 3. no user, header-mode system --------------------------------------------------------------
hreq "no user, a forged SSL_CLIENT_CERT" -H 'SSL_CLIENT_CERT: forged' \
    -H 'ssl-client-cert: forged-too' "http://127.0.0.1:$l_plain/echo"
if want_ok; then
    want_eq "$HR_WHAT: SSL_CLIENT_CERT at the origin" "$(ehn SSL_CLIENT_CERT)" 0
    want_eq "$HR_WHAT: ssl-client-cert at the origin" "$(ehn ssl-client-cert)" 0
fi

# --- 4. tls mode ---------------------------------------------------------------------------------
hreq "alice, tls mode" -H "Authorization: Bearer $alice" "http://127.0.0.1:$l_t/"
want_ok && want_eq "nginx's \$ssl_client_s_dn" "$(cat "$HR_BODY")" "dn=CN=alice"

# --- 5. a system without principal propagation ---------------------------------------------------
hreq "alice to a system with principal_propagation: off" -H "Authorization: Bearer $alice" \
    "http://127.0.0.1:$l_off/echo"
want_status 403 && want_eq "$HR_WHAT: ferry-error" "$(hdr ferry-error)" access-denied
wait_log "$dir/audit.jsonl" '"virtual":"off.internal:80".*"outcome":"denied".*"reason":"principal propagation not configured for this system"' 5 ||
    fail_later "no audit line for the refused PP stream: $(tail -3 "$dir/audit.jsonl")"

# --- 6. metrics, audit, no token -----------------------------------------------------------------
m() { metric "$cn_admin" "$1"; }
want_eq "ferry_pp_certificates_issued_total" "$(m ferry_pp_certificates_issued_total)" 10
# One per user: alice's tls-mode stream is a new one, from the cache (her second
# header-mode request may ride the gateway's pooled stream of her first).
[ "$(m ferry_pp_certificates_reused_total)" -ge 1 ] 2>/dev/null ||
    fail_later "ferry_pp_certificates_reused_total: $(m ferry_pp_certificates_reused_total), want >= 1"
[ "$(m ferry_pp_refused_total)" -ge 1 ] 2>/dev/null ||
    fail_later "ferry_pp_refused_total: $(m ferry_pp_refused_total), want >= 1"

# --- 7. principal_propagation reloaded -----------------------------------------------------------
# Another PP CA and subject, SIGHUP: a user's next certificate comes from the new issuer
# (the cache started empty). Then the section removed: PP streams are refused.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ferry test PP CA 2" \
    -keyout "$dir/pp-ca2.key" -out "$dir/pp-ca2.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    >"$dir/openssl-pp2.log" 2>&1 || fail "openssl: cannot make the second PP CA"
sed -e 's/pp-ca\.crt/pp-ca2.crt/; s/pp-ca\.key/pp-ca2.key/' \
    -e 's/subject: "CN=\${name}"/subject: "CN=${name},O=Reloaded"/' "$dir/cn.yaml" >"$dir/cn2.yaml"
grep -q 'O=Reloaded' "$dir/cn2.yaml" || fail "the test could not write the reloaded file"
cp "$dir/cn2.yaml" "$dir/cn.yaml"
reloaded() {
    local n=$1 i
    for ((i = 0; i < 200; i++)); do
        [ "$(log_lines "$cn_log" "connector reloaded")" -ge "$n" ] && return 0
        sleep 0.05
    done
    return 1
}
kill -HUP "$cn_pid"
reloaded 1 || fail "no \"connector reloaded\" line after SIGHUP"
# carol: a user new to the gateway too, so a new stream (alice's may be pooled at the
# gateway, and a live stream keeps the certificate it began with).
carol=$(mint token "$dir/es.pem" es1 "$(claims carol)")
hreq "carol after the PP CA was reloaded" -H "Authorization: Bearer $carol" \
    "http://127.0.0.1:$l_h/echo"
if want_ok; then
    b64=$(eh SSL_CLIENT_CERT)
    printf '%s' "$b64" | base64 -d 2>/dev/null |
        openssl x509 -inform DER -out "$dir/user2.pem" 2>/dev/null ||
        fail_later "after the reload: SSL_CLIENT_CERT is not base64 DER"
    openssl verify -CAfile "$dir/pp-ca2.crt" "$dir/user2.pem" >/dev/null 2>&1 ||
        fail_later "after the reload: the certificate is not from the new PP CA"
    subj=$(openssl x509 -in "$dir/user2.pem" -noout -subject)
    [[ "$subj" =~ CN\ *=\ *carol ]] && [[ "$subj" =~ O\ *=\ *Reloaded ]] ||
        fail_later "after the reload: not the new subject pattern:" \
            "$(openssl x509 -in "$dir/user2.pem" -noout -subject)"
fi
cat >"$dir/cn.yaml" <<YAML
workers: 1
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
systems:
  - { virtual: "hdr.internal:80", internal: "127.0.0.1:$op", protocol: HTTP }
YAML
kill -HUP "$cn_pid"
reloaded 2 || fail "no second \"connector reloaded\" line: $(grep -i reload "$cn_log" | tail -3)"
dave=$(mint token "$dir/es.pem" es1 "$(claims dave)")
hreq "dave once principal_propagation was removed" -H "Authorization: Bearer $dave" \
    "http://127.0.0.1:$l_h/echo"
want_status 403 && want_eq "$HR_WHAT: ferry-error" "$(hdr ferry-error)" access-denied

stop_proc "$gw_pid" "$gw_log" gateway     # streams end: their audit lines are written
stop_proc "$cn_pid" "$cn_log" connector
for u in alice bob; do
    grep -q "\"user\":\"CN=$u\"" "$dir/audit.jsonl" ||
        fail_later "no audit line names CN=$u: $(tail -3 "$dir/audit.jsonl")"
done
grep -q '"virtual":"tls.internal:443".*"user":"CN=alice"' "$dir/audit.jsonl" ||
    fail_later "the tls-mode stream's audit line does not name CN=alice"
"$FERRY" connector --verify-audit "$dir/audit.jsonl" >/dev/null || fail_later "audit chain broken"
for t in "$alice" "$bob"; do
    sig=${t##*.}
    for f in "$cn_log" "$dir/audit.jsonl"; do
        if grep -qF -- "$sig" "$f"; then
            fail_later "a user token is in $(basename "$f")"
        fi
    done
done
stop_pid "$nginx_pid" 5 >/dev/null || true
fail_deferred
echo "pp_connector: ok"
