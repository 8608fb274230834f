#!/usr/bin/env bash
# secrets_sweep.sh: every secret ferry handles, swept for in everything ferry writes.
#
#   bash tests/integration/secrets_sweep.sh [BUILD_DIR]     (default: build)
#
# One gateway (log level debug, access log), one connector (debug, audit log), a fake
# token service (plain and an mTLS one) and an echo origin. Every secret is a fresh
# random string, registered in $dir/secrets.tsv with the places it may appear by design:
#   tenant tokens     acme (${env:}), beta (${file:}); Proxy-Authorization Bearer and
#                     Basic, SOCKS5 RFC 1929 and 0x80, the destination API, the tunnel
#   user JWTs         alice's (tenant credential and PrincipalPropagation user token),
#                     a bad-signature and an expired one (refused)
#   destination       Password (${env:}), clientSecret (${file:}), OAuth2Password's
#   secrets           Password, tokenService.KeyStorePassword of a .p12 (${env:}), the
#                     KeyStorePassword of a client certificate .p12 (${file:}), a
#                     Password created through the API, another tenant's Password
#   OAuth2 tokens     every access token the token services issued (random prefix)
#   wrong secrets     a wrong Bearer, Basic password, SOCKS5 password and 0x80 token,
#                     API token, clientSecret (token service 401), key store password
#                     (`ferry check` refusing it), a connector's token (registration
#                     refused: the gateway's and that connector's logs)
# Traffic: the transparent listener (Basic, OAuth2 client credentials, password, mTLS,
# a client certificate to an https origin, principal propagation with a good JWT in
# Authorization and in SAP-Connectivity-Authentication, a bad-signature, an expired and
# no JWT, a policy deny and a policy error), the forward proxy (egress and through the
# tunnel, Bearer, Basic, JWT, CONNECT, wrong credentials, no connector for beta),
# SOCKS5 (RFC 1929 with the token and with a JWT, 0x80 with the token and a JWT, wrong
# ones; egress and the tunnel), the destination API (find, list, get, create, update,
# delete; 400, 401, 404 for another tenant), /metrics /healthz /readyz of both
# processes, `ferry check` and `ferry policy test`, a SIGHUP reload; then SIGTERM (the
# drain lines are swept too).
# Places swept (tools/secret_sweep.py): the gateway's and connector's logs (stdout and
# stderr), the access log, the audit log, every admin answer (headers and body), every
# answer a client got from ferry, the output of `ferry check` and `ferry policy test`, and
# what the origin received (it may see a destination's credentials and access tokens, as
# it must, never a tenant token or a user's JWT).
# Exemptions (by design, each named in secrets.tsv's ALLOWED column):
#   api-acme/*  the destination API's answers to acme (find, list, get) hold acme's own
#               destination secrets expanded and authTokens (SAP's contract);
#   api-beta/*  the same for beta's own destination;
#   origin*     the Basic header and access tokens ferry adds are what the origin gets
#               (its answers and its log of what it received).
# Controls: an answer to acme must hold acme's Basic password, the origin must have seen
# an access token: the sweep sees the places it claims to.
# How to add a secret kind: tests/README.md, "Sweeping for secrets".
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/http_lib.sh"
# shellcheck source=tests/integration/tools/socks5_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/socks5_lib.sh"

command -v jq >/dev/null || fail "jq is missing"
dir=$(tmpdir)
ans=$dir/answers                 # every answer ferry gave, one file each, by place
mkdir -p "$ans"/{public,api-acme,api-beta,api-refused,client,origin,cli} "$dir/dests"
rnd() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }

# --- the secrets ------------------------------------------------------------------------
# secret NAME VALUE [ALLOWED]: register a secret for the sweep (see tools/secret_sweep.py).
: >"$dir/secrets.tsv"
secret() {
    printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >>"$dir/secrets.tsv"
}
OWN='api-acme/*'                 # acme's own destination secrets: the API returns them
acme_tok="acmetok-$(rnd)";     secret "tenant token acme (\${env:})" "$acme_tok"
beta_tok="betatok-$(rnd)";     secret "tenant token beta (\${file:})" "$beta_tok"
basic_pw="basicpw-$(rnd)";     secret "Password of basic (\${env:})" "$basic_pw" "$OWN,origin*"
secret "Basic credential of basic (base64 sweep:Password)" \
    "$(printf 'sweep:%s' "$basic_pw" | base64 -w0)" "$OWN,origin*"
cl_secret="clsec-$(rnd)";      secret "clientSecret (\${file:})" "$cl_secret" "$OWN"
user_pw="userpw-$(rnd)";       secret "Password of OAuth2Password pw" "$user_pw" "$OWN"
p12_pw="p12pw-$(rnd)";         secret "tokenService.KeyStorePassword (\${env:})" "$p12_pw" "$OWN"
ks_pw="kspw-$(rnd)";           secret "KeyStorePassword of a client certificate (\${file:})" "$ks_pw" "$OWN"
beta_pw="betapw-$(rnd)";       secret "Password of beta's destination" "$beta_pw" "api-beta/*"
api_pw="apipw-$(rnd)";         secret "Password of a destination created by the API" "$api_pw" "$OWN,origin*"
api_pw2="apipw2-$(rnd)";       secret "Password of that destination, updated" "$api_pw2" "$OWN,origin*"
at_prefix="at$(rnd)"           # the token services' access tokens: registered once issued
w_bearer="wbearer-$(rnd)";     secret "wrong Proxy-Authorization Bearer" "$w_bearer"
w_basic="wbasic-$(rnd)";       secret "wrong Proxy-Authorization Basic password" "$w_basic"
secret "wrong Basic credential (base64 acme:password)" "$(printf 'acme:%s' "$w_basic" | base64 -w0)"
w_s5pw="ws5pw-$(rnd)";         secret "wrong SOCKS5 RFC 1929 password" "$w_s5pw"
w_s5tok="ws5tok-$(rnd)";       secret "wrong SOCKS5 0x80 token" "$w_s5tok"
w_api="wapi-$(rnd)";           secret "wrong destination API token" "$w_api"
w_cs="wclsec-$(rnd)";          secret "wrong clientSecret (token service answers 401)" "$w_cs" "$OWN"
w_p12="wp12pw-$(rnd)";         secret "wrong KeyStorePassword (ferry check)" "$w_p12"
w_cn="wcntok-$(rnd)";          secret "wrong connector token (registration refused)" "$w_cn"
export FERRY_SWEEP_ACME_TOKEN=$acme_tok FERRY_SWEEP_BASIC_PW=$basic_pw FERRY_SWEEP_P12_PW=$p12_pw
printf '%s' "$beta_tok" >"$dir/beta.token"
printf '%s' "$cl_secret" >"$dir/client-secret"
printf '%s' "$ks_pw" >"$dir/ks.pass"

# --- the services around ferry, and the user JWTs --------------------------------------------
# Started first and waited for last: a python start costs seconds on a loaded machine.
start_bg tokens python3 "$TOOLS/token_service.py" --port-file "$dir/tport" \
    --client "ferry-client:$cl_secret" --user "alice:$user_pw" --token-prefix "$at_prefix"
tokens_pid=$BG_PID
start_bg origin python3 "$TOOLS/http_origin.py" --port-file "$dir/oport" --name origin --echo-all
origin_pid=$BG_PID origin_log=$(bg_log origin)
make_ca "$dir" tsca
make_cert "$dir" tsserver tsca "IP:127.0.0.1"
start_bg tokens-mtls python3 "$TOOLS/token_service.py" --port-file "$dir/tmport" \
    --client "ferry-client:$cl_secret" --tls-cert "$dir/tsserver.crt" --tls-key "$dir/tsserver.key" \
    --client-ca "$dir/tsca.crt" --token-prefix "$at_prefix"
tmtls_pid=$BG_PID
make_cert "$dir" tsclient tsca "DNS:client.example"
openssl pkcs12 -export -in "$dir/tsclient.crt" -inkey "$dir/tsclient.key" -out "$dir/tsclient.p12" \
    -passout "pass:$p12_pw" >"$dir/openssl-p12.log" 2>&1 || fail "openssl: cannot export tsclient.p12"
openssl pkcs12 -export -in "$dir/tsclient.crt" -inkey "$dir/tsclient.key" -out "$dir/client.p12" \
    -passout "pass:$ks_pw" >"$dir/openssl-p12.log" 2>&1 || fail "openssl: cannot export client.p12"
# An https origin that wants a client certificate (ClientCertificateAuthentication).
start_bg origin-tls python3 "$TOOLS/http_origin.py" --port-file "$dir/o2port" --name origin-tls \
    --echo-all --cert "$dir/tsserver.crt" --key "$dir/tsserver.key" --client-ca "$dir/tsca.crt"
origin_tls_pid=$BG_PID
make_ca "$dir" ca
make_cert "$dir" gw ca
make_ca "$dir" ppca
# User JWTs, minted by tools/jwt_mint.py in one interpreter: alice's is a tenant
# credential and a PP user token; s5 (no user claims) is short enough for RFC 1929's
# 255-byte password; bad (one signature byte changed) and expired are refused.
ISS=https://idp.sweep.example
python3 "$TOOLS/jwt_mint.py" keygen es256 "$dir/es.pem"
python3 - "$TOOLS" "$dir/es.pem" "$ISS" "$dir/jwks.json" >"$dir/jwts" <<'PY' || fail "jwt_mint failed"
import json, os, sys
sys.path.insert(0, sys.argv[1])
import jwt_mint as m
key, iss = sys.argv[2], sys.argv[3]
with open(sys.argv[4], "w") as f:
    json.dump({"keys": [m.jwk("es1", key)]}, f)
user = {"iss": iss, "aud": "ferry", "sub": "alice", "user_name": "alice", "exp": "@+600"}
print(m.token(key, "es1", json.dumps(user)))
print(m.token(key, "es1", json.dumps({"iss": iss, "aud": "ferry", "exp": "@+600"})))
print(m.token(key, "es1", json.dumps(dict(user, exp="@-600"))))
os.environ["JWT_CORRUPT"] = "1"
print(m.token(key, "es1", json.dumps(user)))
PY
{ read -r alice; read -r s5jwt; read -r expired; read -r bad_sig; } <"$dir/jwts"
secret "user JWT alice" "$alice"
secret "tenant JWT (SOCKS5 password)" "$s5jwt"
secret "expired user JWT" "$expired"
secret "user JWT with a bad signature" "$bad_sig"
[ "${#s5jwt}" -le 255 ] || fail "the SOCKS5 JWT is ${#s5jwt} bytes: over RFC 1929's 255"
wait_file "$dir/oport" 10 "$origin_pid" || fail "the origin did not start"
op=$(cat "$dir/oport")
wait_file "$dir/o2port" 10 "$origin_tls_pid" || fail "the https origin did not start"
op2=$(cat "$dir/o2port")
wait_file "$dir/tport" 10 "$tokens_pid" || fail "token service did not start"
ts=http://127.0.0.1:$(cat "$dir/tport")
wait_file "$dir/tmport" 10 "$tmtls_pid" || fail "mTLS token service did not start"
tms=https://127.0.0.1:$(cat "$dir/tmport")

# --- gateway and connector ------------------------------------------------------------------
gw_admin=$(free_port); tport=$(free_port); cn_admin=$(free_port)
l_apps=$(free_port); l_proxy=$(free_port); l_socks=$(free_port)
access=$dir/access.log audit=$dir/audit.jsonl
cat >"$dir/policy.lua" <<'LUA'
-- X-Sweep: deny → ferry.deny, boom → a runtime error (both error paths log).
return {
  on_request = function(req, dest)
    local v = req.headers["X-Sweep"]
    if v == "deny" then return ferry.deny(403, "the sweep denies") end
    if v == "boom" then error("the sweep breaks this policy") end
  end,
}
LUA
# shellcheck disable=SC2016  # ${env:…} and ${file:…} are config text for ferry
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: debug, access: $access }
admin: { listen: 127.0.0.1:$gw_admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
destinations_dir: dests
tenants:
  - id: acme
    token: "\${env:FERRY_SWEEP_ACME_TOKEN}"
    jwt: { issuer: "$ISS", audience: ferry, jwks: jwks.json }
  - id: beta
    token: "\${file:$dir/beta.token}"
destinations:
  - { Name: basic, Type: HTTP, URL: "http://127.0.0.1:$op/basic", ProxyType: Internet,
      Authentication: BasicAuthentication, User: sweep, Password: "\${env:FERRY_SWEEP_BASIC_PW}",
      tenant: acme, policy: policy.lua }
  - { Name: cc, Type: HTTP, URL: "http://127.0.0.1:$op/cc", ProxyType: Internet,
      Authentication: OAuth2ClientCredentials, tokenServiceURL: "$ts/oauth/token?tag=cc",
      clientId: ferry-client, clientSecret: "\${file:$dir/client-secret}", tenant: acme }
  - { Name: cc-bad, Type: HTTP, URL: "http://127.0.0.1:$op/cc-bad", ProxyType: Internet,
      Authentication: OAuth2ClientCredentials, tokenServiceURL: "$ts/oauth/token?tag=bad",
      clientId: ferry-client, clientSecret: "$w_cs", tenant: acme }
  - { Name: pw, Type: HTTP, URL: "http://127.0.0.1:$op/pw", ProxyType: Internet,
      Authentication: OAuth2Password, tokenServiceURL: "$ts/oauth/token?tag=pw",
      clientId: ferry-client, clientSecret: "\${file:$dir/client-secret}", User: alice,
      Password: "$user_pw", tenant: acme }
  - { Name: mtls, Type: HTTP, URL: "http://127.0.0.1:$op/mtls", ProxyType: Internet,
      Authentication: OAuth2ClientCredentials, tokenServiceURL: "$tms/oauth/token?tag=mtls",
      clientId: ferry-client, clientSecret: "\${file:$dir/client-secret}",
      TrustStoreLocation: tsca.crt, tokenService.KeyStoreLocation: tsclient.p12,
      tokenService.KeyStorePassword: "\${env:FERRY_SWEEP_P12_PW}", tenant: acme }
  - { Name: cert, Type: HTTP, URL: "https://127.0.0.1:$op2/cert", ProxyType: Internet,
      Authentication: ClientCertificateAuthentication, KeyStoreLocation: client.p12,
      KeyStorePassword: "\${file:ks.pass}", TrustStoreLocation: tsca.crt, tenant: acme }
  - { Name: pp, Type: HTTP, URL: "http://virtual.host:80", ProxyType: OnPremise,
      Authentication: PrincipalPropagation, tenant: acme }
  - { Name: beta-basic, Type: HTTP, URL: "http://127.0.0.1:$op/beta", ProxyType: Internet,
      Authentication: BasicAuthentication, User: b, Password: "$beta_pw", tenant: beta }
listeners:
  - { name: apps, plugin: http, listen: "127.0.0.1:$l_apps", mode: transparent }
  - { name: proxy, plugin: http, listen: "127.0.0.1:$l_proxy", mode: forward,
      egress: [ "127.0.0.1:$op" ] }
  - { name: socks, plugin: socks5, listen: "127.0.0.1:$l_socks", auth: tenant,
      egress: [ "127.0.0.1:$op" ] }
YAML
cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
log: { level: debug }
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: "\${env:FERRY_SWEEP_ACME_TOKEN}"
ca: ca.crt
audit_log: $audit
principal_propagation: { ca_cert: ppca.crt, ca_key: ppca.key, subject: "CN=\${name}" }
systems:
  - { virtual: "virtual.host:80", internal: "127.0.0.1:$op", protocol: HTTP,
      principal_propagation: header }
  - { virtual: "virtual.tcp:80", internal: "127.0.0.1:$op", protocol: TCP }
YAML
# A connector whose token is wrong: the gateway refuses its registration.
sed -e "s/\\\${env:FERRY_SWEEP_ACME_TOKEN}/$w_cn/" -e "s/^admin: .*/admin: off/" \
    -e "s|^audit_log: .*|audit_log: $dir/audit-bad.jsonl|" "$dir/cn.yaml" >"$dir/cn-bad.yaml"
# A configuration ferry check refuses: the key store password is wrong.
sed "s/\${env:FERRY_SWEEP_P12_PW}/$w_p12/" "$dir/gw.yaml" >"$dir/bad.yaml"

n=0
# cli PLACE WHAT CMD...: run a ferry command, keep its output (both streams) for the sweep.
cli() {
    local place=$1 what=$2 rc=0
    shift 2
    n=$((n + 1))
    "$@" >"$ans/$place/$n-${what// /_}.txt" 2>&1 || rc=$?
    CLI_RC=$rc
}
cli cli "check" "$FERRY" check -c "$dir/gw.yaml"
[ "$CLI_RC" -eq 0 ] || fail "ferry check rejects the config: $(cat "$ans/cli/$n-check.txt")"
cli cli "check wrong p12 password" "$FERRY" check -c "$dir/bad.yaml"
if [ "$CLI_RC" -ne 2 ] || ! grep -q "wrong password" "$ans/cli/$n-check_wrong_p12_password.txt"; then
    fail "ferry check of a wrong key store password: want exit 2 naming it, got $CLI_RC"
fi
printf '{"method":"GET","path":"/x","headers":{"X-Sweep":"no"},"tenant":"acme"}' >"$dir/req.json"
for d in basic pw; do
    cli cli "policy test $d" "$FERRY" policy test -c "$dir/gw.yaml" "$d" "$dir/req.json"
    if [ "$CLI_RC" -ne 0 ] ||
        ! grep -q '"Authorization", "[A-Za-z ]*\*\*\*"' "$ans/cli/$n-policy_test_$d.txt"; then
        fail "ferry policy test $d: want exit 0 and Authorization as ***, got $CLI_RC"
    fi
done

start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "the connector did not come up"
start_bg connector-bad "$FERRY" connector -c "$dir/cn-bad.yaml"
cnb_pid=$BG_PID cnb_log=$(bg_log connector-bad)
wait_log "$gw_log" '"connector rejected"' 15 "$gw_pid" || fail "no connector rejected for a wrong token"
wait_log "$cnb_log" '"gateway refused registration"' 15 "$cnb_pid" ||
    fail "the connector with a wrong token did not log the refusal"
stop_pid "$cnb_pid" 10 || true
check_sanitizers "$cnb_log" "the connector with a wrong token"
# Connected and closed before TLS: the gateway's debug line for a probe.
(exec 3<>"/dev/tcp/127.0.0.1/$tport") 2>/dev/null || true

# ask PLACE WHAT WANT CURL_ARGS...: one request; the answer (headers and body) is kept
# under answers/PLACE for the sweep; a status other than WANT is a failure.
ask() {
    local place=$1 what=$2 want=$3 f status
    shift 3
    n=$((n + 1))
    f="$ans/$place/$n-${what//[^A-Za-z0-9]/_}.txt"
    # A refused CONNECT has no http_code: its status is http_connect's.
    status=$(curl -sS --max-time 20 -i -o "$f" -w '%{http_code} %{http_connect}' "$@" \
        2>"$f.curl") || true
    [ "${status% *}" = 000 ] && status=${status#* } || status=${status% *}
    [ "$status" = "$want" ] ||
        fail_later "$what: want $want, got ${status:-no answer}: $(head -c 300 "$f" "$f.curl")"
}
A=http://127.0.0.1:$l_apps
P=http://127.0.0.1:$l_proxy
O=http://127.0.0.1:$op

# --- transparent ------------------------------------------------------------------------------
ask origin "basic" 200 -H "Host: basic" "$A/t"
ask client "basic policy deny" 403 -H "Host: basic" -H "X-Sweep: deny" "$A/t"
ask client "basic policy error" 500 -H "Host: basic" -H "X-Sweep: boom" "$A/t"
ask origin "cc" 200 -H "X-Destination-Name: cc" "$A/t"
ask origin "pw" 200 -H "Host: pw" "$A/t"
ask origin "mtls" 200 -H "Host: mtls" "$A/t"
ask origin "cert" 200 -H "Host: cert" "$A/t"
ask client "cc-bad (token service 401)" 502 -H "Host: cc-bad" "$A/t"
ask origin "pp alice" 200 -H "Host: pp" -H "Authorization: Bearer $alice" "$A/pp"
ask origin "pp alice, SAP-Connectivity-Authentication" 200 -H "Host: pp" \
    -H "SAP-Connectivity-Authentication: Bearer $alice" "$A/pp"
ask client "pp bad signature" 401 -H "Host: pp" -H "Authorization: Bearer $bad_sig" "$A/pp"
ask client "pp expired" 401 -H "Host: pp" -H "Authorization: Bearer $expired" "$A/pp"
ask client "pp no token" 401 -H "Host: pp" "$A/pp"

# --- forward proxy ------------------------------------------------------------------------------
ask origin "forward Bearer" 200 -x "$P" --proxy-header "Proxy-Authorization: Bearer $acme_tok" "$O/f1"
ask origin "forward Basic" 200 -x "$P" --proxy-user "acme:$acme_tok" "$O/f2"
ask origin "forward JWT" 200 -x "$P" --proxy-header "Proxy-Authorization: Bearer $alice" "$O/f3"
ask origin "forward tunnel" 200 -x "$P" --proxy-header "Proxy-Authorization: Bearer $acme_tok" \
    "http://virtual.host/f4"
ask origin "forward CONNECT" 200 -p -x "$P" --proxy-header "Proxy-Authorization: Bearer $acme_tok" \
    "$O/f5"
ask client "forward wrong Bearer" 407 -x "$P" --proxy-header "Proxy-Authorization: Bearer $w_bearer" "$O/f6"
ask client "forward wrong Basic" 407 -x "$P" --proxy-user "acme:$w_basic" "$O/f7"
ask client "forward bad JWT" 407 -x "$P" --proxy-header "Proxy-Authorization: Bearer $bad_sig" "$O/f8"
ask client "forward CONNECT wrong Bearer" 407 -p -x "$P" \
    --proxy-header "Proxy-Authorization: Bearer $w_bearer" "$O/f9"
ask client "forward beta to acme's tunnel" 503 -x "$P" \
    --proxy-header "Proxy-Authorization: Bearer $beta_tok" "http://virtual.host/f10"

# --- SOCKS5 ----------------------------------------------------------------------------------
ask origin "socks5 RFC 1929 egress" 200 --socks5-hostname "127.0.0.1:$l_socks" \
    --proxy-user "acme:$acme_tok" "$O/s1"
ask origin "socks5 RFC 1929 tunnel" 200 --socks5-hostname "127.0.0.1:$l_socks" \
    --proxy-user "acme:$acme_tok" "http://virtual.tcp/s2"
s5 "RFC 1929 with a JWT" handshake --port "$l_socks" --user acme --password "$s5jwt" \
    --dport "$op" --http /s3
s5 "0x80 with acme's token" handshake --port "$l_socks" --methods 80 --token "$acme_tok" \
    --host virtual.tcp --atyp domain --dport 80 --http /s4
s5 "0x80 with alice's JWT" handshake --port "$l_socks" --methods 80 --token "$alice" \
    --host virtual.tcp --atyp domain --dport 80 --http /s5
s5 "RFC 1929 wrong password" handshake --port "$l_socks" --user acme --password "$w_s5pw" \
    --expect-auth 0101
s5 "0x80 wrong token" handshake --port "$l_socks" --methods 80 --token "$w_s5tok" --expect-auth 0101

# --- the destination API -------------------------------------------------------------------------
api=http://127.0.0.1:$gw_admin/destination-configuration/v1
acme=(-H "Authorization: Bearer $acme_tok")
for d in basic cc pw mtls cert pp; do
    ask api-acme "find $d" 200 "${acme[@]}" "$api/destinations/$d"
done
ask api-acme "find cc with the JWT" 200 -H "Authorization: Bearer $alice" "$api/destinations/cc"
ask api-acme "list" 200 "${acme[@]}" "$api/subaccountDestinations"
ask api-acme "get basic" 200 "${acme[@]}" "$api/subaccountDestinations/basic"
ask api-acme "create" 201 "${acme[@]}" -H 'Content-Type: application/json' -X POST \
    --data "{\"Name\":\"made\",\"Type\":\"HTTP\",\"URL\":\"$O/made\",\"ProxyType\":\"Internet\",\"Authentication\":\"BasicAuthentication\",\"User\":\"m\",\"Password\":\"$api_pw\"}" \
    "$api/subaccountDestinations"
ask api-acme "create again" 409 "${acme[@]}" -H 'Content-Type: application/json' -X POST \
    --data "{\"Name\":\"made\",\"Type\":\"HTTP\",\"URL\":\"$O/made\",\"ProxyType\":\"Internet\",\"Authentication\":\"BasicAuthentication\",\"User\":\"m\",\"Password\":\"$api_pw\"}" \
    "$api/subaccountDestinations"
ask api-acme "update" 200 "${acme[@]}" -H 'Content-Type: application/json' -X PUT \
    --data "{\"Name\":\"made\",\"Type\":\"HTTP\",\"URL\":\"$O/made\",\"ProxyType\":\"Internet\",\"Authentication\":\"BasicAuthentication\",\"User\":\"m\",\"Password\":\"$api_pw2\"}" \
    "$api/subaccountDestinations"
ask api-acme "update, a bad body" 400 "${acme[@]}" -H 'Content-Type: application/json' -X PUT \
    --data "{\"Name\":\"made\",\"Type\":\"HTTP\",\"ProxyType\":\"Internet\",\"Password\":\"$api_pw2\"}" \
    "$api/subaccountDestinations"
ask origin "made" 200 -H "Host: made" "$A/m"
ask api-beta "beta finds its own" 200 -H "Authorization: Bearer $beta_tok" "$api/destinations/beta-basic"
ask api-beta "beta lists" 200 -H "Authorization: Bearer $beta_tok" "$api/subaccountDestinations"
ask api-refused "beta finds acme's basic" 404 -H "Authorization: Bearer $beta_tok" "$api/destinations/basic"
ask api-refused "beta gets acme's made" 404 -H "Authorization: Bearer $beta_tok" \
    "$api/subaccountDestinations/made"
ask api-refused "find, wrong token" 401 -H "Authorization: Bearer $w_api" "$api/destinations/basic"
ask api-refused "find, bad JWT" 401 -H "Authorization: Bearer $bad_sig" "$api/destinations/basic"
ask api-refused "find, expired JWT" 401 -H "Authorization: Bearer $expired" "$api/destinations/basic"
ask api-refused "find, Basic" 401 -u "acme:$acme_tok" "$api/destinations/basic"
ask api-refused "list, nothing" 401 "$api/subaccountDestinations"
ask api-acme "delete" 200 "${acme[@]}" -X DELETE "$api/subaccountDestinations/made"

# --- SIGHUP, then everything again that reads a secret ---------------------------------------------
# Every API change above is applied (a "reloaded" line) before its answer: count them.
reloads=$(log_lines "$gw_log" reloaded)
kill -HUP "$gw_pid"
for ((i = 0; i < 100; i++)); do
    [ "$(log_lines "$gw_log" reloaded)" -gt "$reloads" ] && break
    sleep 0.1
done
[ "$i" -lt 100 ] || fail "no reload within 10 s of SIGHUP"
ask origin "basic after SIGHUP" 200 -H "Host: basic" "$A/t2"
ask origin "cc after SIGHUP" 200 -H "Host: cc" "$A/t2"
ask origin "cert after SIGHUP" 200 -H "Host: cert" "$A/t2"
ask origin "pp after SIGHUP" 200 -H "Host: pp" -H "Authorization: Bearer $alice" "$A/pp2"
ask origin "forward tunnel after SIGHUP" 200 -x "$P" --proxy-user "acme:$acme_tok" "http://virtual.host/f11"

# --- admin answers -------------------------------------------------------------------------------
for port in "$gw_admin" "$cn_admin"; do
    for path in metrics healthz readyz; do
        ask public "$port $path" 200 "http://127.0.0.1:$port/$path"
    done
done

stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
fail_deferred

# Every access token the token services issued (their /hits), the ones only the API's
# authTokens carried too.
{
    curl -sf --max-time 10 "$ts/hits" &&
    curl -sf --max-time 10 --cacert "$dir/tsca.crt" --cert "$dir/tsclient.crt" \
        --key "$dir/tsclient.key" "$tms/hits"
} >"$dir/hits.json" || fail "cannot read the token services' /hits"
while read -r t; do
    secret "OAuth2 access token ${t#"$at_prefix"-}" "$t" "$OWN,origin*"
done < <(jq -r '.[].issued[]' "$dir/hits.json" | sort -u)
for tag in cc pw mtls; do
    grep -q "$at_prefix-$tag-" "$dir/secrets.tsv" || fail "no access token was issued for $tag"
done
out=$(python3 "$TOOLS/secret_sweep.py" --secrets "$dir/secrets.tsv" \
    --control "Password of basic (\${env:})@api-acme/*" \
    --control "Basic credential of basic (base64 sweep:Password)@origin*" \
    --control "Password of beta's destination@api-beta/*" \
    --control "OAuth2 access token mtls-1@origin*" \
    gateway-log="$gw_log" connector-log="$cn_log" access-log="$access" audit-log="$audit" \
    connector-bad-log="$cnb_log" \
    public="$ans/public" api-acme="$ans/api-acme" api-beta="$ans/api-beta" \
    api-refused="$ans/api-refused" client="$ans/client" cli="$ans/cli" \
    origin="$ans/origin" origin-log="$origin_log" origin-tls-log="$(bg_log origin-tls)") || fail "secrets leaked:"$'\n'"$out"
echo "ok: $out"
