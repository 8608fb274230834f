#!/usr/bin/env bash
# http_pkcs12.sh: ClientCertificateAuthentication with PKCS#12 key stores (.p12/.pfx, as
# SAP exports client certificates), against nginx requiring a client certificate.
#
#   bash tests/integration/http_pkcs12.sh [BUILD_DIR]     (default: build)
#
# A private CA (openssl) signs the server certificate and three client certificates
# (CN=ferry test client / other / legacy). nginx serves TLS with `ssl_verify_client on`
# and answers "dn=<$ssl_client_s_dn>" (400 when no certificate came). Destinations,
# through one transparent listener by X-Destination-Name:
# 1. p12 (KeyStoreLocation: client.p12, KeyStorePassword literal): 200, nginx saw
#    CN=ferry test client; p12env (other.p12, password `${env:FERRY_TEST_P12_PASS}`):
#    CN=ferry test other, so two key stores never share a TLS context; p12file
#    (client.p12, password `${file:p12.pass}`): CN=ferry test client; legacy (an RC2
#    `-legacy` export, as older tools write them): CN=ferry test legacy; pem (the PEM
#    key store of before): CN=ferry test client; nocert: nginx answers 400.
# 2. late.p12 is replaced (before first use) by an export with another password: the
#    context build fails and the request gets 502 destination-invalid naming the file
#    and "wrong password".
# 2b. client.p12 is replaced by an export of another certificate (same password) and
#    ferry gets SIGHUP: p12's requests now present CN=ferry test other.
# 3. `ferry check` on a config whose key store password is wrong, and on one naming a
#    Java KeyStore (made with keytool when it is installed, else a JKS header): exit 2,
#    `file:line:col:` at KeyStoreLocation, the file name, and for the JKS the exact
#    `keytool -importkeystore -srckeystore X.jks -destkeystore X.p12 -deststoretype PKCS12`
#    line. `ferry gateway` with the wrong password also exits 2.
# No password appears in any output or log (check, gateway, access log).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/http_lib.sh"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || fail "nginx is missing (bash tests/deps.sh)"

PW1=p12-Pass-one-7f3a
PW2=p12-Pass-two-91c4
PW3=p12-Pass-late-0d2e
PW_WRONG=p12-Pass-wrong-5b8e
PWS=("$PW1" "$PW2" "$PW3" "$PW_WRONG")
export FERRY_TEST_P12_PASS=$PW2

dir=$(tmpdir)
make_ca "$dir" ca
make_cert "$dir" server ca "DNS:localhost,IP:127.0.0.1"
make_cert "$dir" client ca "DNS:client.example"
make_cert "$dir" other ca "DNS:other.example"
make_cert "$dir" legacy ca "DNS:legacy.example"
cat "$dir/client.crt" "$dir/client.key" >"$dir/client.pem"

# p12 NAME CERT PASSWORD [openssl options]: DIR/NAME.p12 with CERT's key and the CA.
p12() {
    local name=$1 cert=$2 pass=$3
    shift 3
    openssl pkcs12 -export "$@" -in "$dir/$cert.crt" -inkey "$dir/$cert.key" \
        -certfile "$dir/ca.crt" -name "$cert" -out "$dir/$name.p12" -passout "pass:$pass" \
        >"$dir/openssl-p12-$name.log" 2>&1 ||
        { cat "$dir/openssl-p12-$name.log" >&2; fail "openssl: cannot export $name.p12"; }
}
p12 client client "$PW1"
p12 other other "$PW2"
p12 legacy legacy "$PW1" -legacy
p12 late client "$PW1"
p12 late-other-pw client "$PW3"
printf '%s\n' "$PW1" >"$dir/p12.pass"

# --- nginx: TLS, client certificate required, answers with its subject ------------------------
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
        ssl_certificate $dir/server.crt;
        ssl_certificate_key $dir/server.key;
        ssl_client_certificate $dir/ca.crt;
        ssl_verify_client on;
        location / {
            default_type text/plain;
            return 200 "dn=\$ssl_client_s_dn\n";
        }
    }
}
NGINX
start_bg nginx "$NGINX" -e "$dir/nginx/error.log" -p "$dir/nginx" -c "$dir/nginx/nginx.conf"
NGINX_PID=$BG_PID
wait_port 127.0.0.1 "$np" 10 "$NGINX_PID" ||
    fail "nginx did not listen on $np: $(cat "$dir/nginx/error.log" 2>/dev/null)"
# The origin itself: a client certificate gets its subject back, none gets 400.
got=$(curl -sS --max-time 5 --cacert "$dir/ca.crt" --cert "$dir/client.crt" \
    --key "$dir/client.key" "https://127.0.0.1:$np/") || true
[ "$got" = "dn=CN=ferry test client" ] || fail "nginx with a client certificate answers '$got'"

# --- ferry -------------------------------------------------------------------------------------
admin=$(free_port); ls=$(free_port)
# shellcheck disable=SC2016  # ${env:…} and ${file:…} are config text for ferry
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: debug, access: $dir/access.log }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - Name: p12
    Type: HTTP
    URL: https://127.0.0.1:$np
    Authentication: ClientCertificateAuthentication
    KeyStoreLocation: client.p12
    KeyStorePassword: $PW1
    TrustStoreLocation: ca.crt
  - Name: p12env
    Type: HTTP
    URL: https://127.0.0.1:$np
    Authentication: ClientCertificateAuthentication
    KeyStoreLocation: other.p12
    KeyStorePassword: \${env:FERRY_TEST_P12_PASS}
    TrustStoreLocation: ca.crt
  - Name: p12file
    Type: HTTP
    URL: https://127.0.0.1:$np
    Authentication: ClientCertificateAuthentication
    KeyStoreLocation: client.p12
    KeyStorePassword: \${file:p12.pass}
    TrustStoreLocation: ca.crt
  - Name: legacy
    Type: HTTP
    URL: https://127.0.0.1:$np
    Authentication: ClientCertificateAuthentication
    KeyStoreLocation: legacy.p12
    KeyStorePassword: $PW1
    TrustStoreLocation: ca.crt
  - Name: late
    Type: HTTP
    URL: https://127.0.0.1:$np
    Authentication: ClientCertificateAuthentication
    KeyStoreLocation: late.p12
    KeyStorePassword: $PW1
    TrustStoreLocation: ca.crt
  - Name: pem
    Type: HTTP
    URL: https://127.0.0.1:$np
    Authentication: ClientCertificateAuthentication
    KeyStoreLocation: client.pem
    TrustStoreLocation: ca.crt
  - { Name: nocert, Type: HTTP, URL: "https://127.0.0.1:$np", TrustStoreLocation: ca.crt }
listeners:
  - { name: shared, plugin: http, listen: "127.0.0.1:$ls", mode: transparent }
YAML

# no_password WHAT FILE|-: none of the passwords is in FILE (or stdin).
no_password() {
    local what=$1 file=$2 p
    for p in "${PWS[@]}"; do
        if grep -qF -- "$p" "$file"; then
            fail_later "$what: contains a key store password"
        fi
    done
}

out=$("$FERRY" check -c "$dir/ferry.yaml" 2>&1) || fail "ferry check rejects the config: $out"
printf '%s\n' "$out" >"$dir/check.out"
no_password "ferry check of the good config" "$dir/check.out"
start_ferry "$dir/ferry.yaml" "$admin"
shared=http://127.0.0.1:$ls

# --- 1. client certificates from key stores -------------------------------------------------
for pair in "p12:client" "p12env:other" "p12file:client" "legacy:legacy" "pem:client" \
            "p12:client" "p12env:other"; do
    d=${pair%%:*} cn=${pair#*:}
    hreq "$d" -H "X-Destination-Name: $d" "$shared/"
    want_ok && want_eq "$d: subject nginx saw" "$(body)" "dn=CN=ferry test $cn"
done
hreq "nocert (no key store)" -H 'X-Destination-Name: nocert' "$shared/"
want_status 400

# --- 2. a key store that no longer opens with its password ----------------------------------
cp "$dir/late-other-pw.p12" "$dir/late.p12"
hreq "late (the file now has another password)" -H 'X-Destination-Name: late' "$shared/"
if want_error 502 destination-invalid transparent; then
    b=$(body)
    [[ "$b" == *"late.p12"* && "$b" == *"wrong password"* ]] ||
        fail_later "late: want the file and 'wrong password' in the reason, got '$b'"
fi
good_request "a request after the failure" -H 'X-Destination-Name: p12' "$shared/"

# --- 2b. a key store renewed on disk is used after a SIGHUP ------------------------------------
# client.p12 now holds the `other` certificate (same password), as when an operator
# drops in a renewed certificate; late.p12 gets its password back so the reload loads.
p12 client other "$PW1"
p12 late client "$PW1"
kill -HUP "$FERRY_PID"
for ((i = 0; i < 300; i++)); do
    [ "$(log_lines "$FERRY_LOG" reloaded)" -ge 1 ] && break
    [ "$(log_lines "$FERRY_LOG" "reload failed")" -eq 0 ] || break
    sleep 0.1
done
[ "$(log_lines "$FERRY_LOG" reloaded)" -ge 1 ] ||
    fail "SIGHUP: no 'reloaded' in ferry's log within 30 s: $(tail -n 5 "$FERRY_LOG")"
hreq "p12 after the key store was renewed and SIGHUP" -H 'X-Destination-Name: p12' "$shared/"
want_ok && want_eq "p12 after SIGHUP: subject nginx saw" "$(body)" "dn=CN=ferry test other"
stop_ferry
no_password "ferry's log" "$FERRY_LOG"
no_password "the access log" "$dir/access.log"

# --- 3. refused at load: wrong password, Java KeyStore ---------------------------------------
if command -v keytool >/dev/null; then
    keytool -importkeystore -noprompt -srckeystore "$dir/client.p12" -srcstoretype PKCS12 \
        -srcstorepass "$PW1" -destkeystore "$dir/client.jks" -deststoretype JKS \
        -deststorepass "$PW1" >"$dir/keytool.log" 2>&1 ||
        { cat "$dir/keytool.log" >&2; fail "keytool: cannot make client.jks"; }
else
    # What a JKS file starts with: magic FEEDFEED, version 2, no entries.
    printf '\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x00' >"$dir/client.jks"
fi
cat >"$dir/bad.yaml" <<YAML
plugins_dir: $PLUGINS
admin: { listen: 127.0.0.1:$admin }
destinations:
  - Name: wrongpw
    Type: HTTP
    URL: https://127.0.0.1:$np
    Authentication: ClientCertificateAuthentication
    KeyStoreLocation: client.p12
    KeyStorePassword: $PW_WRONG
  - Name: javaks
    Type: HTTP
    URL: https://127.0.0.1:$np
    Authentication: ClientCertificateAuthentication
    KeyStoreLocation: client.jks
    KeyStorePassword: $PW1
listeners:
  - { name: shared, plugin: http, listen: "127.0.0.1:$ls", mode: transparent }
YAML
rc=0
"$FERRY" check -c "$dir/bad.yaml" >"$dir/bad.out" 2>&1 || rc=$?
check_sanitizers "$dir/bad.out" "ferry check -c bad.yaml"
want_eq "ferry check with a wrong password and a JKS: exit status" "$rc" 2
want="$dir/bad.yaml:8:5: destination 'wrongpw': KeyStoreLocation: $dir/client.p12: wrong password for the PKCS#12 key store (its integrity check fails)"
grep -qxF -- "$want" "$dir/bad.out" || fail_later "ferry check: want the line '$want', got: $(cat "$dir/bad.out")"
want="keytool -importkeystore -srckeystore $dir/client.jks -destkeystore $dir/client.p12 -deststoretype PKCS12"
grep -q "^$dir/bad.yaml:14:5: destination 'javaks': KeyStoreLocation: $dir/client.jks is a Java KeyStore" "$dir/bad.out" ||
    fail_later "ferry check: no JKS error at 14:5: $(cat "$dir/bad.out")"
grep -qF -- "\`$want\`" "$dir/bad.out" || fail_later "ferry check: want the conversion line '$want', got: $(cat "$dir/bad.out")"
no_password "ferry check of the bad config" "$dir/bad.out"
rc=0
timeout 20 "$FERRY" gateway -c "$dir/bad.yaml" >"$dir/bad-gw.out" 2>&1 || rc=$?
want_eq "ferry gateway with a wrong key store password: exit status" "$rc" 2
grep -qF "wrong password" "$dir/bad-gw.out" || fail_later "ferry gateway: no 'wrong password' error: $(cat "$dir/bad-gw.out")"
no_password "ferry gateway with the bad config" "$dir/bad-gw.out"

stop_pid "$NGINX_PID" 10 || true
fail_deferred
echo "http_pkcs12: ok"
