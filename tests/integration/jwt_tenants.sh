#!/usr/bin/env bash
# jwt_tenants.sh: tenants authenticated by JWT (`tenants[].jwt:`) wherever a static
# token works.
#
#   bash tests/integration/jwt_tenants.sh [BUILD_DIR]     (default: build)
#
# Keys and tokens are minted by the test (tools/jwt_mint.py). Tenant acme: a static token
# and jwt: with a jwks file holding an RS256 key (r1) and an ES256 key (e1). Tenant beta:
# jwt: only, its keys from a jwks_url served by python3 -m http.server on 127.0.0.1.
# One worker, so "one signature check per token" is exact.
# 1. ferry check: a jwks file that is not JSON is exit 2 with conf:line:col naming the
#    tenant and file:line:col inside it.
# 2. The forward proxy: Proxy-Authorization: Bearer <RS256 JWT> and <ES256 JWT> on plain
#    requests and CONNECT (curl -p); Basic acme:<JWT>.
# 3. SOCKS5: SAP's 0x80 with a JWT; RFC 1929 with user acme and an ES256 JWT as password.
# 4. The destination API: Authorization: Bearer <JWT> finds acme's destination.
# 5. One ES256 token used 5 times: ferry_jwt_verifications_total +1, cache hits +4.
# 6. jwks_url: beta's token is accepted once the first fetch has landed; the server then
#    serves a new kid: a token with it is accepted after the refetch an unknown kid asks
#    for (polled, bounded). Tenant gamma's URL answers HTML: a warning with the URL, not
#    the body. SIGHUP keeps beta's fetched keys (same URL): no fetch, the new kid works.
# 7. Refusals: expired, wrong audience, wrong issuer, corrupt signature, unknown kid,
#    alg none (bad-algorithm, with an empty signature or bytes in its place) and HS256 are
#    407 / SOCKS5 auth failure / 401, each reason in the log and in
#    ferry_jwt_refused_total.
# 8. A connector of beta (no static token) is rejected: bad token for tenant.
# 9. No token appears in the gateway's log, the access log or /metrics.
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

MINT=$TOOLS/jwt_mint.py
dir=$(tmpdir)
mkdir "$dir/www"
for k in rs:rs256 es:es256 b1:es256 b2:es256 stranger:es256; do
    python3 "$MINT" keygen "${k#*:}" "$dir/${k%%:*}.pem"
done
python3 "$MINT" jwks "r1=$dir/rs.pem" "e1=$dir/es.pem" >"$dir/acme-jwks.json"
python3 "$MINT" jwks "b1=$dir/b1.pem" >"$dir/www/beta.json"
echo '<html>no-key-set-here</html>' >"$dir/www/gamma.html"

ISS=https://idp.acme
# mint KEY KID [CLAIMS-JSON]: a token of acme's issuer, valid 10 minutes by default.
mint() {
    local claims=${3:-}
    [ -n "$claims" ] || claims="{\"iss\":\"$ISS\",\"aud\":\"ferry\",\"sub\":\"u\",\"exp\":\"@+600\"}"
    python3 "$MINT" token "$dir/$1.pem" "$2" "$claims"
}
ALL_TOKENS=()
keep() { ALL_TOKENS+=("$1"); }

start_http_origin origin
op=$HO_PORT
start_origin echo-origin echo
ep=$ORIGIN_PORT
http_origin jwks "$dir/www"
wp=$HTTP_PORT

# --- 1. ferry check on a jwks file that is not JSON --------------------------------------
printf '{"keys": [\n  nonsense ]}\n' >"$dir/garbage.json"
cat >"$dir/bad.yaml" <<YAML
plugins_dir: $PLUGINS
admin: off
tenants:
  - id: acme
    jwt: { issuer: i, audience: a, jwks: garbage.json }
listeners: []
YAML
rc=0
out=$("$FERRY" check -c "$dir/bad.yaml" 2>&1) || rc=$?
want_eq "ferry check on a garbage jwks: exit status" "$rc" 2
[[ "$out" =~ bad\.yaml:5:42:\ tenants\[0\]\ \(acme\):\ jwt\.jwks:\ .*garbage\.json:2:[0-9]+:\ JWKS\ is\ not\ JSON ]] ||
    fail_later "ferry check on a garbage jwks: want bad.yaml:5:42: tenants[0] (acme): jwt.jwks: .../garbage.json:2:N: JWKS is not JSON..., got: $out"

# --- the gateway -----------------------------------------------------------------------
admin=$(free_port); lp=$(free_port); ls=$(free_port); tport=$(free_port); cn_admin=$(free_port)
access=$dir/access.log
make_ca "$dir" ca
make_cert "$dir" gw ca
cat >"$dir/gw.yaml" <<YAML
workers: 1
plugins_dir: $PLUGINS
log: { level: info, access: $access }
admin: { listen: 127.0.0.1:$admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants:
  - id: acme
    token: acme-token
    jwt: { issuer: "$ISS", audience: ferry, jwks: acme-jwks.json, leeway_s: 5 }
  - id: beta
    jwt: { issuer: "$ISS", audience: ferry, jwks_url: "http://127.0.0.1:$wp/beta.json" }
  - id: gamma
    jwt: { issuer: "$ISS", audience: ferry, jwks_url: "http://127.0.0.1:$wp/gamma.html" }
destinations:
  - { Name: inline-acme, Type: HTTP, URL: "http://127.0.0.1:$op", tenant: acme }
listeners:
  - name: proxy
    plugin: http
    listen: 127.0.0.1:$lp
    mode: forward
    egress: [ "127.0.0.1:$op" ]
  - name: socks
    plugin: socks5
    listen: 127.0.0.1:$ls
    auth: tenant
    egress: [ "127.0.0.1:$ep" ]
YAML
out=$("$FERRY" check -c "$dir/gw.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_gateway gateway "$dir/gw.yaml" "$admin"
gw_pid=$GW_PID gw_log=$GW_LOG
P=(-x "http://127.0.0.1:$lp")
target=http://127.0.0.1:$op

# proxy_as WHAT TOKEN WANT [CURL_ARGS...]: a plain request through the forward proxy.
proxy_as() {
    local what=$1 tok=$2 want=$3
    shift 3
    hreq "$what" "${P[@]}" --proxy-header "Proxy-Authorization: Bearer $tok" "$@" "$target/echo"
    want_status "$want" || return 0
    [ "$want" != 407 ] || want_error 407 proxy-auth-required
}

# --- 2. forward proxy ------------------------------------------------------------------
rs_tok=$(mint rs r1); keep "$rs_tok"
es_tok=$(mint es e1); keep "$es_tok"
proxy_as "Bearer RS256 JWT" "$rs_tok" 200
want_eq "Proxy-Authorization at the origin" "$(ehn Proxy-Authorization)" 0
proxy_as "Bearer ES256 JWT" "$es_tok" 200
hreq "CONNECT with a Bearer RS256 JWT" -p "${P[@]}" \
    --proxy-header "Proxy-Authorization: Bearer $rs_tok" "$target/echo"
want_ok
hreq "Basic acme:<ES256 JWT>" "${P[@]}" --proxy-user "acme:$es_tok" "$target/echo"
want_ok
proxy_as "the static token still works" acme-token 200

# --- 3. SOCKS5 -------------------------------------------------------------------------
s5 "0x80 with an RS256 JWT" handshake --port "$ls" --methods 80 --token "$rs_tok" \
    --location "" --dport "$ep" --echo "sap-jwt"
[ "${#es_tok}" -le 255 ] || fail "the ES256 token is ${#es_tok} bytes: over RFC 1929's 255"
s5 "RFC 1929, acme + ES256 JWT" handshake --port "$ls" --user acme --password "$es_tok" \
    --dport "$ep" --echo "rfc1929-jwt"

# --- 4. the destination API ------------------------------------------------------------
API=http://127.0.0.1:$admin/destination-configuration/v1
hreq "destination API with a Bearer JWT" -H "Authorization: Bearer $es_tok" \
    "$API/destinations/inline-acme"
want_ok && want_eq "destination found" "$(jq -r '.destinationConfiguration.Name' "$HR_BODY")" \
    inline-acme

# --- 5. one verification per token and worker ------------------------------------------
five=$(mint es e1 "{\"iss\":\"$ISS\",\"aud\":\"ferry\",\"sub\":\"five\",\"exp\":\"@+600\"}")
keep "$five"
v0=$(hmetric "$admin" ferry_jwt_verifications_total)
h0=$(hmetric "$admin" ferry_jwt_cache_hits_total)
for i in 1 2 3 4 5; do
    proxy_as "token used 5 times ($i)" "$five" 200
done
want_eq "signature checks for a token used 5 times" \
    "$(( $(hmetric "$admin" ferry_jwt_verifications_total) - v0 ))" 1
want_eq "cache hits for a token used 5 times" \
    "$(( $(hmetric "$admin" ferry_jwt_cache_hits_total) - h0 ))" 4

# --- 6. jwks_url: first fetch, then rotation -------------------------------------------
wait_lines "$gw_log" "jwt: tenant keys loaded" 1 10 tenant=beta keys=1 ||
    fail_later "beta's keys were not fetched from the jwks_url"
b1_tok=$(mint b1 b1); keep "$b1_tok"
proxy_as "beta's token (jwks_url)" "$b1_tok" 200
b2_tok=$(mint b2 b2); keep "$b2_tok"
python3 "$MINT" jwks "b1=$dir/b1.pem" "b2=$dir/b2.pem" >"$dir/www/beta.json.new"
mv "$dir/www/beta.json.new" "$dir/www/beta.json"
ok=0
for ((i = 0; i < 50; i++)); do
    hreq "beta's rotated kid" "${P[@]}" --proxy-header "Proxy-Authorization: Bearer $b2_tok" \
        "$target/echo"
    [ "$HR_STATUS" = 200 ] && { ok=1; break; }
    sleep 0.2
done
[ "$ok" = 1 ] || fail_later "a token with the rotated kid b2 is still refused after 10 s"
wait_lines "$gw_log" "jwt: tenant keys loaded" 1 5 tenant=beta keys=2 ||
    fail_later "the refetch of beta's keys is not logged with keys=2"
# gamma's URL answers HTML: logged with the URL and the reason, never the body; its
# tokens stay refused.
wait_lines "$gw_log" "jwks: refetch failed, keeping the last good keys" 1 10 \
    "url=http://127.0.0.1:$wp/gamma.html" || fail_later "gamma's garbage JWKS answer is not logged"
! grep -q no-key-set-here "$gw_log" || fail_later "the body of a garbage JWKS answer is in the log"
# A reload keeps beta's fetched keys (same URL): the rotated kid works at once, and
# beta's keys are not fetched again.
kill -HUP "$gw_pid"
wait_lines "$gw_log" reloaded 1 10 || fail "the gateway did not reload"
proxy_as "the rotated kid right after a reload" "$b2_tok" 200
want_eq "fetches of beta's keys at start (none on reload)" \
    "$(log_lines "$gw_log" "jwt: fetching tenant keys; its tokens are refused until they land" \
        tenant=beta)" 1

# --- 7. refusals -----------------------------------------------------------------------
# REASON TOKEN pairs; alg none is bad-algorithm with its empty signature and with bytes
# in the signature's place, as HS256 is.
none=$(JWT_ALG=none mint es e1)
refusals=(
    expired "$(mint es e1 "{\"iss\":\"$ISS\",\"aud\":\"ferry\",\"exp\":\"@-60\"}")"
    wrong-audience "$(mint es e1 "{\"iss\":\"$ISS\",\"aud\":\"other\",\"exp\":\"@+600\"}")"
    wrong-issuer "$(mint rs r1 "{\"iss\":\"https://evil\",\"aud\":\"ferry\",\"exp\":\"@+600\"}")"
    bad-signature "$(JWT_CORRUPT=1 mint es e1)"
    unknown-key "$(mint stranger s1)"
    bad-algorithm "$none"
    bad-algorithm "${none}AAAA"
    bad-algorithm "$(JWT_ALG=HS256 mint es e1)"
)
# refused_counts: "reason count" lines of ferry_jwt_refused_total, and of the log's
# "tenant JWT refused" lines (one /metrics fetch and one jq run, not one per reason).
refused_counts() {
    curl -sf --max-time 5 "http://127.0.0.1:$admin/metrics" |
        sed -n 's/^ferry_jwt_refused_total{reason="\([a-z-]*\)"} \([0-9]*\)$/metric \1 \2/p'
    jq -R -r 'fromjson? | select(.msg == "tenant JWT refused") | "log " + .reason' "$gw_log" |
        sort | uniq -c | awk '{ print $2, $3, $1 }'
}
declare -A want_more=()
for ((k = 0; k < ${#refusals[@]}; k += 2)); do
    why=${refusals[k]}
    want_more["metric $why"]=$(( ${want_more["metric $why"]:-0} + 3 ))  # proxy, socks5, API
    want_more["log $why"]=$(( ${want_more["log $why"]:-0} + 2 ))        # proxy, socks5
done
declare -A before=()
while read -r kind why n; do before["$kind $why"]=$n; done < <(refused_counts)
for ((k = 0; k < ${#refusals[@]}; k += 2)); do
    why=${refusals[k]} tok=${refusals[k + 1]}
    keep "$tok"
    proxy_as "refused: $why" "$tok" 407
    s5 "0x80 refused: $why" handshake --port "$ls" --methods 80 --token "$tok" --expect-auth 0101
    hreq "destination API refused: $why" -H "Authorization: Bearer $tok" \
        "$API/destinations/inline-acme"
    want_status 401
done
declare -A after=()
while read -r kind why n; do after["$kind $why"]=$n; done < <(refused_counts)
for key in "${!want_more[@]}"; do
    want_eq "refusals counted as '$key' (metric: proxy, socks5, API; log: proxy, socks5)" \
        "$(( ${after[$key]:-0} - ${before[$key]:-0} ))" "${want_more[$key]}"
done

# Only the named tenant's keys: acme's token as beta's password is refused. (After the
# rotation: it is an unknown kid to beta, and asks for a refetch of beta's keys.)
s5 "RFC 1929, another tenant's name + acme's JWT" handshake --port "$ls" --user beta \
    --password "$es_tok" --expect-auth 0101

# --- 8. a connector of a tenant without a static token -------------------------------
# beta has jwt: only: its connectors cannot register (and the gateway stays up).
cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: beta
token: any-token
ca: ca.crt
audit_log: audit.jsonl
systems: []
YAML
start_bg connector "$FERRY" connector -c "$dir/cn.yaml"
cn_pid=$BG_PID
wait_lines "$gw_log" "connector rejected" 1 10 tenant=beta "reason=bad token for tenant" ||
    fail_later "a connector of the token-less tenant beta is not rejected with 'bad token'"
kill -0 "$gw_pid" 2>/dev/null || fail "the gateway died on a connector of a token-less tenant"
stop_pid "$cn_pid" 10 || true

# --- 9. tokens never logged ------------------------------------------------------------
curl -sf --max-time 5 "http://127.0.0.1:$admin/metrics" >"$dir/metrics.txt"
for tok in "${ALL_TOKENS[@]}"; do
    sig=${tok##*.}
    for f in "$gw_log" "$access" "$dir/metrics.txt"; do
        if [ -n "$sig" ] && grep -qF -- "$sig" "$f"; then
            fail_later "a token's signature appears in $(basename "$f")"
        fi
        if grep -qF -- "${tok%.*}" "$f"; then
            fail_later "a token's header.payload appears in $(basename "$f")"
        fi
    done
done

stop_proc "$gw_pid" "$gw_log" gateway
fail_deferred
echo "PASS: jwt_tenants"
