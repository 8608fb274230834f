#!/usr/bin/env bash
# oauth2.sh: OAuth2 destinations end to end: ferry fetches, caches and refreshes tokens
# (lua/ferry/auth/*.lua on ferry.tokens.get and ferry.http.request) so apps never see a
# secret.
#
#   bash tests/integration/oauth2.sh [BUILD_DIR]     (default: build)
#
# A fake token service (tools/token_service.py, counting hits per tag) and an echo
# origin. Destinations (tokenServiceURL ...?tag=<dest>&expires=<s>):
#   cc    OAuth2ClientCredentials, credentials in the body (SAP's default), scope
#   short OAuth2ClientCredentials, addClientCredentialsInBody false (HTTP Basic), 8 s tokens
#   pw    OAuth2Password
#   down  OAuth2ClientCredentials whose token service is told to fail
# workers: 2, one transparent listener per destination.
# 1. 100 concurrent first requests on cc: all 200, exactly 1 token request, every
#    request reached the origin with Authorization: Bearer <that token>.
# 2. short: 8 s tokens are refreshed ahead of expiry (a second token request within
#    ~10 s of requests every 0.3 s, none failing); the client id/secret went as Basic.
# 3. pw: the password grant with the destination's User/Password; Bearer at the origin.
# 4. down: 502 token-error with the x-error-* set, quickly; again at once without a new
#    token request (negative cache); 200 once the service is back.
# 4b. slow (a token service taking 1.5 s): a client that goes away while its request
#    waits makes ferry cancel the wait and the fetch (the sanitizer build checks nothing
#    leaks or is used after free); a later request gets a token.
# 5. The destination API (admin, tenant token) answers cc's authTokens with the token
#    the origin saw, without a new token request; http_header is Bearer <token>.
# 6. Neither a token nor a secret (nor a key store password) in ferry's log.
# 7. mTLS to the token service (a second one, HTTPS, client certificate required from a
#    test CA): mtls (tokenService.KeyStoreLocation: a .p12, tokenService.KeyStorePassword
#    `${env:…}`, TrustStoreLocation: the CA) gets a token, the origin sees Bearer
#    tok-mtls-1 and the token service saw the key store's certificate (CN); mtls-nocert
#    (no key store) gets 502 token-error and the service never got a token request.
# ferry exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/http_lib.sh"

secret='s3cr+et/x y'
dir=$(tmpdir)
start_bg tokens python3 "$TOOLS/token_service.py" --port-file "$dir/tport" \
    --client "ferry-client:$secret" --user "alice:al1ce-pw"
wait_file "$dir/tport" 10 "$BG_PID" || fail "token service did not start"
tp=$(cat "$dir/tport")
ts=http://127.0.0.1:$tp
start_http_origin origin --echo-all
op=$HO_PORT
# The mTLS token service: HTTPS with a test CA, client certificates required.
make_ca "$dir" tsca
make_cert "$dir" tsserver tsca "IP:127.0.0.1"
make_cert "$dir" tsclient tsca "DNS:client.example"
P12_PW="ts-p12-Pass-4c1b"
export FERRY_TEST_TS_P12_PASS=$P12_PW
openssl pkcs12 -export -in "$dir/tsclient.crt" -inkey "$dir/tsclient.key" -out "$dir/tsclient.p12" \
    -passout "pass:$P12_PW" >"$dir/openssl-p12.log" 2>&1 || fail "openssl: cannot export tsclient.p12"
start_bg tokens-mtls python3 "$TOOLS/token_service.py" --port-file "$dir/tmport" \
    --client "ferry-client:$secret" --tls-cert "$dir/tsserver.crt" --tls-key "$dir/tsserver.key" \
    --client-ca "$dir/tsca.crt"
wait_file "$dir/tmport" 10 "$BG_PID" || fail "mTLS token service did not start"
tms=https://127.0.0.1:$(cat "$dir/tmport")

admin=$(free_port)
l_cc=$(free_port); l_short=$(free_port); l_pw=$(free_port); l_down=$(free_port)
l_slow=$(free_port); l_mtls=$(free_port); l_mtls_nocert=$(free_port)
# shellcheck disable=SC2016  # ${env:…} is config text for ferry
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - Name: cc
    Type: HTTP
    URL: http://127.0.0.1:$op/cc
    ProxyType: Internet
    Authentication: OAuth2ClientCredentials
    tokenServiceURL: "$ts/oauth/token?tag=cc"
    clientId: ferry-client
    clientSecret: "$secret"
    scope: "read write"
  - Name: short
    Type: HTTP
    URL: http://127.0.0.1:$op/short
    ProxyType: Internet
    Authentication: OAuth2ClientCredentials
    tokenServiceURL: "$ts/oauth/token"
    tokenServiceURL.queries.tag: short
    tokenServiceURL.queries.expires: "8"
    tokenService.addClientCredentialsInBody: "false"
    clientId: ferry-client
    clientSecret: "$secret"
  - Name: pw
    Type: HTTP
    URL: http://127.0.0.1:$op/pw
    ProxyType: Internet
    Authentication: OAuth2Password
    tokenServiceURL: "$ts/oauth/token?tag=pw"
    clientId: ferry-client
    clientSecret: "$secret"
    User: alice
    Password: al1ce-pw
  - Name: down
    Type: HTTP
    URL: http://127.0.0.1:$op/down
    ProxyType: Internet
    Authentication: OAuth2ClientCredentials
    tokenServiceURL: "$ts/oauth/token?tag=down"
    clientId: ferry-client
    clientSecret: "$secret"
  - Name: slow
    Type: HTTP
    URL: http://127.0.0.1:$op/slow
    ProxyType: Internet
    Authentication: OAuth2ClientCredentials
    tokenServiceURL: "$ts/oauth/token?tag=slow"
    clientId: ferry-client
    clientSecret: "$secret"
  - Name: mtls
    Type: HTTP
    URL: http://127.0.0.1:$op/mtls
    ProxyType: Internet
    Authentication: OAuth2ClientCredentials
    tokenServiceURL: "$tms/oauth/token?tag=mtls"
    clientId: ferry-client
    clientSecret: "$secret"
    TrustStoreLocation: tsca.crt
    tokenService.KeyStoreLocation: tsclient.p12
    tokenService.KeyStorePassword: "\${env:FERRY_TEST_TS_P12_PASS}"
  - Name: mtls-nocert
    Type: HTTP
    URL: http://127.0.0.1:$op/mtls-nocert
    ProxyType: Internet
    Authentication: OAuth2ClientCredentials
    tokenServiceURL: "$tms/oauth/token?tag=mtls-nocert"
    clientId: ferry-client
    clientSecret: "$secret"
    TrustStoreLocation: tsca.crt
listeners:
  - { name: slow, plugin: http, listen: "127.0.0.1:$l_slow", destination: slow }
  - { name: mtls, plugin: http, listen: "127.0.0.1:$l_mtls", destination: mtls }
  - { name: mtls-nocert, plugin: http, listen: "127.0.0.1:$l_mtls_nocert", destination: mtls-nocert }
  - { name: cc, plugin: http, listen: "127.0.0.1:$l_cc", destination: cc }
  - { name: short, plugin: http, listen: "127.0.0.1:$l_short", destination: short }
  - { name: pw, plugin: http, listen: "127.0.0.1:$l_pw", destination: pw }
  - { name: down, plugin: http, listen: "127.0.0.1:$l_down", destination: down }
YAML
out=$("$FERRY" check -c "$dir/ferry.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_ferry "$dir/ferry.yaml" "$admin"

# hits TAG [FIELD]: the token service's count for TAG (or a JSON field of it); with
# HITS_TLS=1, of the mTLS token service.
hits() {
    local base=$ts tls=()
    if [ -n "${HITS_TLS:-}" ]; then
        base=$tms
        tls=(--cacert "$dir/tsca.crt" --cert "$dir/tsclient.crt" --key "$dir/tsclient.key")
    fi
    curl -sf --max-time 5 "${tls[@]}" "$base/hits" | python3 -c 'import json, sys
d = json.load(sys.stdin).get(sys.argv[1], {})
f = sys.argv[2] if len(sys.argv) > 2 else "hits"
v = d.get(f, 0)
print(" ".join(v) if isinstance(v, list) else v)' "$@"
}

# --- 1. 100 concurrent first requests: one token request -------------------------------
python3 - "$l_cc" >"$dir/burst" <<'PY' || fail "burst client failed"
import http.client, json, sys, threading
port, out, lock = int(sys.argv[1]), [], threading.Lock()
go = threading.Barrier(100)
def one():
    go.wait()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/echo")
        r = c.getresponse()
        body = r.read()
        auth = ""
        if r.status == 200:
            auth = ",".join(v for k, v in json.loads(body)["headers"] if k.lower() == "authorization")
        with lock:
            out.append("%d %s" % (r.status, auth))
    except Exception as e:
        with lock:
            out.append("ERR %s" % e)
ts = [threading.Thread(target=one) for _ in range(100)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(out))
PY
want_eq "burst: answers" "$(wc -l <"$dir/burst")" 100
want_eq "burst: distinct answers (status + Authorization at the origin)" \
    "$(sort -u "$dir/burst")" "200 Bearer tok-cc-1"
want_eq "burst: token requests" "$(hits cc)" 1
want_eq "cc: client credentials in the body (SAP's default)" "$(hits cc auth)" body
want_eq "cc: scope" "$(hits cc scope)" "read write"
want_eq "cc: grant" "$(hits cc grants)" client_credentials

# --- 2. short-lived tokens are refreshed ahead of expiry -------------------------------
hreq "short: first request" "http://127.0.0.1:$l_short/echo"
want_ok && want_eq "short: Authorization at the origin" "$(eh Authorization)" "Bearer tok-short-1"
refreshed=0
for ((i = 0; i < 40; i++)); do
    hreq "short: request $i" "http://127.0.0.1:$l_short/echo"
    want_ok || break
    if [ "$(hits short)" -ge 2 ]; then
        refreshed=1
        break
    fi
    sleep 0.3
done
[ "$refreshed" = 1 ] || fail_later "short: no refresh within 12 s of an 8 s token (hits $(hits short))"
hreq "short: after the refresh" "http://127.0.0.1:$l_short/echo"
# A later token than the first: which one depends on how long this machine took since
# (an 8 s token is refreshed every ~2 s), so the test does not pin its number.
if want_ok; then
    got=$(eh Authorization)
    case $got in
        "Bearer tok-short-"[2-9]|"Bearer tok-short-"[1-9][0-9]) ;;
        *) fail_later "short: the new token at the origin: want Bearer tok-short-N (N >= 2), got '$got'" ;;
    esac
fi
want_eq "short: client credentials as HTTP Basic" "$(hits short auth | tr ' ' '\n' | sort -u)" basic

# --- 3. password grant ------------------------------------------------------------------
hreq "pw: request" "http://127.0.0.1:$l_pw/echo"
want_ok && want_eq "pw: Authorization at the origin" "$(eh Authorization)" "Bearer tok-pw-1"
want_eq "pw: grant" "$(hits pw grants)" password

# --- 4. token service down: 502 token-error, negative cache, recovery -------------------
curl -sf -X POST "$ts/mode?tag=down&fail=1" >/dev/null || fail "cannot set the token service mode"
t0=$(date +%s%N)
hreq "down: token service failing" "http://127.0.0.1:$l_down/echo"
ms=$((($(date +%s%N) - t0) / 1000000))
want_error 502 token-error transparent
# "Quickly": an answer, not the token request's 10 s timeout (no tighter bound: timing
# belongs in the benches, and a loaded machine is slow).
[ "$ms" -lt 8000 ] || fail_later "down: the 502 took $ms ms"
# The failure is remembered for a backoff (1 s, doubling): a request inside it fails at
# once without a token request. A request this script sends after the backoff ended (a
# slow machine) may fetch again; then the backoff has doubled and the next try is
# inside it, so the loop ends on the condition, not on time.
n=$(hits down)
cached=0
for ((i = 0; i < 6; i++)); do
    hreq "down: again at once" "http://127.0.0.1:$l_down/echo"
    want_error 502 token-error transparent
    m=$(hits down)
    if [ "$m" = "$n" ]; then
        cached=1
        break
    fi
    n=$m
done
[ "$cached" = 1 ] || fail_later "down: every request went to the token service, none was answered from the negative cache ($n token requests)"
curl -sf -X POST "$ts/mode?tag=down&fail=0" >/dev/null || fail "cannot set the token service mode"
# Up to the backoff reached above (at most 32 s) and then some.
recovered=0
deadline=$(($(date +%s) + 45))
while [ "$(date +%s)" -lt "$deadline" ]; do
    hreq "down: after recovery" "http://127.0.0.1:$l_down/echo"
    if [ "$HR_STATUS" = 200 ]; then
        recovered=1
        break
    fi
    sleep 0.2
done
[ "$recovered" = 1 ] || fail_later "down: still failing 45 s after the service came back ($(hr_seen))"
want_eq "down: Authorization at the origin after recovery" "$(eh Authorization)" "Bearer tok-down-1"

# --- 4b. a client gone while its hook waits ----------------------------------------------
curl -sf -X POST "$ts/mode?tag=slow&delay_ms=1500" >/dev/null || fail "cannot set the token service mode"
# The client sends its request and hangs up once the token service has seen ferry's
# token request (a condition, not a timer: a slow machine only takes longer).
python3 - "$l_slow" "$ts" <<'PY' || fail_later "slow: the abandoned request never reached the token service"
import json, socket, sys, time, urllib.request
port, ts = int(sys.argv[1]), sys.argv[2]
c = socket.create_connection(("127.0.0.1", port), timeout=10)
c.sendall(b"GET /echo HTTP/1.1\r\nHost: slow\r\n\r\n")
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    hits = json.load(urllib.request.urlopen(ts + "/hits", timeout=5)).get("slow", {})
    if hits.get("hits", 0) >= 1:
        c.close()
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
PY
want_eq "slow: token requests" "$(hits slow)" 1
got=0
for ((i = 0; i < 30; i++)); do
    hreq "slow: a later request" "http://127.0.0.1:$l_slow/echo"
    if [ "$HR_STATUS" = 200 ]; then
        got=1
        break
    fi
    sleep 0.3
done
[ "$got" = 1 ] || fail_later "slow: no token after an abandoned fetch ($(hr_seen))"

# --- 5. the destination API hands out the token the origin saw ---------------------------
hreq "destination API: find cc" -H 'Authorization: Bearer acme-token' \
    "http://127.0.0.1:$admin/destination-configuration/v1/destinations/cc"
if want_ok; then
    got=$(python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["authTokens"][0]
print(t.get("type"), t.get("value"), t["http_header"]["key"] + ": " + t["http_header"]["value"],
      "expires" if int(t.get("expires_in", 0)) > 3000 else "expires_in=%s" % t.get("expires_in"),
      "error=%s" % t.get("error"))' "$HR_BODY")
    want_eq "destination API: authTokens[0]" "$got" \
        "Bearer tok-cc-1 Authorization: Bearer tok-cc-1 expires error=None"
fi
want_eq "destination API: no new token request" "$(hits cc)" 1
hreq "destination API: find down (a working token)" -H 'Authorization: Bearer acme-token' \
    "http://127.0.0.1:$admin/destination-configuration/v1/destinations/down"
want_ok && want_eq "destination API: down's token" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["authTokens"][0]["value"])' "$HR_BODY")" \
    tok-down-1

# --- 7. mTLS to the token service ----------------------------------------------------------
hreq "mtls: tokenService.KeyStoreLocation (PKCS#12)" "http://127.0.0.1:$l_mtls/echo"
want_ok && want_eq "mtls: Authorization at the origin" "$(eh Authorization)" "Bearer tok-mtls-1"
want_eq "mtls: the certificate the token service saw" "$(HITS_TLS=1 hits mtls peer)" "ferry test tsclient"
hreq "mtls-nocert: no key store for the mTLS token service" "http://127.0.0.1:$l_mtls_nocert/echo"
want_error 502 token-error transparent
want_eq "mtls-nocert: token requests that got through" "$(HITS_TLS=1 hits mtls-nocert)" 0

# --- 6. secrets and tokens stay out of the log -------------------------------------------
for s in "$secret" tok-cc-1 tok-short-1 al1ce-pw tok-mtls-1 "$P12_PW"; do
    if grep -qF -- "$s" "$FERRY_LOG"; then
        fail_later "ferry's log contains '$s'"
    fi
done

stop_ferry
fail_deferred
echo "oauth2: ok"
