#!/usr/bin/env bash
# destination_api.sh: the destination API on the admin listener (SAP's Destination
# service paths under /destination-configuration/v1).
#
#   bash tests/integration/destination_api.sh [BUILD_DIR]     (default: build)
#
# Tenants acme and beta; destinations_dir with billing (acme, BasicAuthentication, the
# password a ${env:} secret), oauth (acme, OAuth2ClientCredentials), beta-only (beta);
# one inline destination of acme in ferry.yaml; a shared transparent http listener in
# front of tools/http_origin.py.
# 1. Authentication: no Authorization, a wrong token, a Basic one: 401 with an
#    ErrorMessage and WWW-Authenticate: Bearer.
# 2. Find: owner, destinationConfiguration (the secret expanded) and Basic authTokens
#    (base64 user:password, http_header); $skipTokenRetrieval=true and NoAuthentication
#    have no authTokens; OAuth2 whose token service (here the echo origin) gives no
#    access_token answers 200 with an error entry (tests/integration/oauth2.sh has the
#    working retrieval).
# 3. Tenant isolation: another tenant's name is 404 for find and get, {"Count":0} for
#    update and delete (SAP's 404 is for finds only);
#    each tenant's list holds its own destinations only.
# 4. Create: 201 {"Count":1}, the file appears in destinations_dir (mode 600), and the
#    shared listener routes Host: <name> to it at once (no restart), on every worker;
#    a second create is 409; values with quotes, ${, $${, backslashes, newlines and
#    non-ASCII come back unchanged; an array creates several.
# 5. Update: the origin sees the new URL.headers.X-Version right after the 200; unknown
#    name {"Count":0}; inline destination 409.
# 6. Refusals: validation errors 400 with the loader's message, bad JSON 400, another
#    tenant in the body 403, a key store path 403; nothing is written.
# 7. A configuration that no longer loads (ferry.yaml broken on disk): 500, the file
#    is rolled back, the running configuration serves on.
# 8. Delete: 200 {"Count":1}, the file is gone, the listener answers 404
#    destination-not-found; again {"Count":0}; an inline destination 409.
# 9. Restart: what the API wrote is still there and routes. One "destination changed"
#    log line per change (tenant, destination, action), never a property value. A
#    gateway without destinations_dir answers changes with 501.
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

dir=$(tmpdir)
dests=$dir/dests
mkdir "$dests"
start_http_origin origin --echo-all
op=$HO_PORT
admin=$(free_port)
l_shared=$(free_port)
export FERRY_IT_BILLING_PW='s3cret:pw-from-env'
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$admin }
tenants:
  - { id: acme, token: acme-token }
  - { id: beta, token: beta-token }
destinations_dir: dests
destinations:
  - { Name: inline-acme, Type: HTTP, URL: "http://127.0.0.1:$op", tenant: acme }
listeners:
  - { name: shared, plugin: http, listen: "127.0.0.1:$l_shared", mode: transparent }
YAML
cat >"$dests/billing.yaml" <<YAML
Name: billing
Type: HTTP
URL: http://127.0.0.1:$op/billing
tenant: acme
Authentication: BasicAuthentication
User: billing-user
Password: \${env:FERRY_IT_BILLING_PW}
YAML
cat >"$dests/oauth.yaml" <<YAML
Name: oauth
Type: HTTP
URL: http://127.0.0.1:$op
tenant: acme
Authentication: OAuth2ClientCredentials
clientId: ferry
clientSecret: client-secret-value
tokenServiceURL: http://127.0.0.1:$op/token
YAML
cat >"$dests/beta-only.yaml" <<YAML
{ Name: beta-only, Type: HTTP, URL: "http://127.0.0.1:$op", tenant: beta }
YAML
out=$("$FERRY" check -c "$dir/ferry.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_ferry "$dir/ferry.yaml" "$admin"
API=http://127.0.0.1:$admin/destination-configuration/v1
shared=http://127.0.0.1:$l_shared

# api WHAT TOKEN METHOD PATH [JSON]: one call of the API (TOKEN "" sends none).
api() {
    local what=$1 tok=$2 method=$3 path=$4
    local args=(-X "$method")
    shift 4
    [ -z "$tok" ] || args+=(-H "Authorization: Bearer $tok")
    [ $# -eq 0 ] || args+=(-H 'Content-Type: application/json' --data-binary "$1")
    hreq "$what" "${args[@]}" "$API$path"
}

# jget FILTER: a jq filter over the last answer's JSON (strings bare, the rest as compact
# JSON with sorted keys; "<no json>" when the body is not JSON). jq, not a python3 per
# field: on a loaded machine each interpreter start costs seconds.
jget() {
    jq -e . "$HR_BODY" >/dev/null 2>&1 || { echo "<no json>"; return 0; }
    jq -r -c -S "$1" "$HR_BODY" 2>&1 || true
}

want_api_error() {      # want_api_error STATUS [TEXT]: status and an ErrorMessage (containing TEXT)
    want_status "$1" || return 1
    local m
    m=$(jget .ErrorMessage)
    [[ "$m" != "<"* && -n "$m" ]] || { fail_later "$HR_WHAT: no ErrorMessage in $(head -c 300 "$HR_BODY")"; return 1; }
    [ -z "${2:-}" ] || [[ "$m" == *"$2"* ]] || fail_later "$HR_WHAT: ErrorMessage '$m' lacks '$2'"
}

# --- 1. authentication ------------------------------------------------------------------
api "find without Authorization" "" GET /destinations/billing
want_api_error 401
want_eq "WWW-Authenticate without a token" "$(hdr WWW-Authenticate)" Bearer
api "find with a wrong token" wrong-token GET /destinations/billing
want_api_error 401
want_eq "WWW-Authenticate with a wrong token" "$(hdr WWW-Authenticate)" Bearer
hreq "find with Basic credentials" -H "Authorization: Basic $(printf 'acme:acme-token' | base64)" \
    "$API/destinations/billing"
want_api_error 401
api "list without Authorization" "" GET /subaccountDestinations
want_api_error 401
api "create without Authorization" "" POST /subaccountDestinations '{"Name":"x","Type":"HTTP","URL":"http://h"}'
want_api_error 401
[ ! -e "$dests/x.yaml" ] || fail_later "an unauthenticated create wrote a file"

# --- 2. find ----------------------------------------------------------------------------
api "find billing" acme-token GET /destinations/billing
if want_ok; then
    want_eq "Content-Type of find" "$(hdr Content-Type)" application/json
    want_eq "owner" "$(jget .owner)" '{"InstanceId":null,"SubaccountId":"acme"}'
    want_eq "destinationConfiguration.Name" "$(jget .destinationConfiguration.Name)" billing
    want_eq "destinationConfiguration.URL" "$(jget .destinationConfiguration.URL)" \
        "http://127.0.0.1:$op/billing"
    want_eq "destinationConfiguration.Password (expanded)" \
        "$(jget .destinationConfiguration.Password)" "$FERRY_IT_BILLING_PW"
    b64=$(printf 'billing-user:%s' "$FERRY_IT_BILLING_PW" | base64 -w0)
    want_eq "authTokens" "$(jget .authTokens)" \
        "[{\"http_header\":{\"key\":\"Authorization\",\"value\":\"Basic $b64\"},\"type\":\"Basic\",\"value\":\"$b64\"}]"
fi
api "find billing, \$skipTokenRetrieval=true" acme-token GET '/destinations/billing?$skipTokenRetrieval=true'
want_ok && want_eq "authTokens with \$skipTokenRetrieval" "$(jget 'has("authTokens")')" false
api "find billing, %24skipTokenRetrieval=true" acme-token GET '/destinations/billing?%24skipTokenRetrieval=true'
want_ok && want_eq "authTokens with %24skipTokenRetrieval" "$(jget 'has("authTokens")')" false
api "find inline-acme (NoAuthentication)" acme-token GET /destinations/inline-acme
want_ok && want_eq "authTokens of NoAuthentication" "$(jget 'has("authTokens")')" false
api "find oauth (OAuth2ClientCredentials)" acme-token GET /destinations/oauth
if want_ok; then
    want_eq "OAuth2 authTokens when the token service gives no token" \
        "$(jget .authTokens)" \
        '[{"error":"token service answer has no access_token","type":"","value":""}]'
    want_eq "OAuth2 destinationConfiguration.clientSecret" \
        "$(jget .destinationConfiguration.clientSecret)" client-secret-value
fi
api "find an unknown name" acme-token GET /destinations/nope
want_api_error 404 "Configuration with the specified name was not found"
api "POST on find" acme-token POST /destinations/billing '{}'
want_api_error 405

# --- 3. tenant isolation ----------------------------------------------------------------
api "acme finds beta's destination" acme-token GET /destinations/beta-only
want_api_error 404 "Configuration with the specified name was not found"
api "beta finds its destination" beta-token GET /destinations/beta-only
want_ok && want_eq "beta's owner" "$(jget .owner.SubaccountId)" beta
api "beta finds acme's billing" beta-token GET /destinations/billing
want_api_error 404
api "acme gets beta's destination" acme-token GET /subaccountDestinations/beta-only
want_api_error 404
api "acme updates beta's destination" acme-token PUT /subaccountDestinations \
    '{"Name":"beta-only","Type":"HTTP","URL":"http://evil"}'
want_ok && want_eq "acme's update of beta's destination" "$(jget .)" '{"Count":0}'
api "acme deletes beta's destination" acme-token DELETE /subaccountDestinations/beta-only
want_ok && want_eq "acme's delete of beta's destination" "$(jget .)" '{"Count":0}'
[ -f "$dests/beta-only.yaml" ] || fail_later "acme's delete removed beta's file"

# --- 3b. list ---------------------------------------------------------------------------
api "acme lists" acme-token GET /subaccountDestinations
want_ok && want_eq "acme's list" "$(jget '[.[].Name]')" '["billing","inline-acme","oauth"]'
api "beta lists" beta-token GET /subaccountDestinations
want_ok && want_eq "beta's list" "$(jget '[.[].Name]')" '["beta-only"]'
api "acme gets billing" acme-token GET /subaccountDestinations/billing
want_ok && want_eq "subaccountDestinations/billing" "$(jget '.User + " " + .Type')" "billing-user HTTP"

# --- 4. create --------------------------------------------------------------------------
svc1="{\"Name\":\"svc\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/v1\",\"ProxyType\":\"Internet\",\"URL.headers.X-Version\":\"1\"}"
api "create svc" acme-token POST /subaccountDestinations "$svc1"
want_status 201 && want_eq "create's Count" "$(jget .Count)" 1
# At once, on fresh connections (spread over both workers): the 201 came after the
# new generation was active everywhere.
for i in 1 2 3 4 5 6 7 8; do
    hreq "shared, Host: svc right after the create ($i)" -H 'Host: svc' "$shared/echo"
    want_ok && want_eq "origin path for svc" "$(ej path) $(eh X-Version)" "/v1/echo 1"
done
if [ -f "$dests/svc.yaml" ]; then
    want_eq "mode of the written file" "$(stat -c %a "$dests/svc.yaml")" 600
    grep -q '^Name: "svc"$' "$dests/svc.yaml" || fail_later "svc.yaml: no 'Name: \"svc\"' line: $(cat "$dests/svc.yaml")"
else
    fail_later "create: no $dests/svc.yaml"
fi
[ -z "$(find "$dests" -name '.*' -type f)" ] || fail_later "temporary files left in $dests: $(ls -a "$dests")"
api "create svc again" acme-token POST /subaccountDestinations "$svc1"
want_api_error 409 "exists"
api "beta creates acme's name" beta-token POST /subaccountDestinations \
    '{"Name":"billing","Type":"HTTP","URL":"http://h"}'
want_api_error 409
odd=$(python3 -c 'print("q \"x\" ${env:HOME} $${y} \\ odd-7731\nline\ttab é ✓ ${file:/etc/passwd}")')
body=$(python3 -c 'import json, sys
print(json.dumps({"Name": "tricky", "Type": "HTTP", "URL": sys.argv[2], "Description": sys.argv[1],
                  "URL.queries.n": 5, "TrustAll": False}))' "$odd" "http://127.0.0.1:$op")
api "create a destination with odd values" acme-token POST /subaccountDestinations "$body"
want_status 201
api "get it back" acme-token GET /subaccountDestinations/tricky
if want_ok; then
    got=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["Description"])' "$HR_BODY")
    want_eq "odd value, round trip" "$got" "$odd"
    want_eq "numbers and booleans become text" "$(jget '[."URL.queries.n", .TrustAll]')" '["5","false"]'
fi
api "create two at once" acme-token POST /subaccountDestinations \
    "[{\"Name\":\"many-1\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\"},{\"Name\":\"many-2\",\"Type\":\"TCP\",\"Address\":\"tcp://127.0.0.1:$op\"}]"
want_status 201 && want_eq "array create's Count" "$(jget .Count)" 2
[ -f "$dests/many-1.yaml" ] && [ -f "$dests/many-2.yaml" ] || fail_later "array create: files missing: $(ls "$dests")"

# --- 5. update --------------------------------------------------------------------------
svc2="{\"Name\":\"svc\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/v2\",\"URL.headers.X-Version\":\"2\"}"
api "update svc" acme-token PUT /subaccountDestinations "$svc2"
want_ok && want_eq "update's Count" "$(jget .Count)" 1
for i in 1 2 3 4 5 6 7 8; do
    hreq "shared, Host: svc right after the update ($i)" -H 'Host: svc' "$shared/echo"
    want_ok && want_eq "the origin after the update" "$(ej path) $(eh X-Version)" "/v2/echo 2"
done
api "update an unknown name" acme-token PUT /subaccountDestinations '{"Name":"nope","Type":"HTTP","URL":"http://h"}'
want_ok && want_eq "update of an unknown name" "$(jget .)" '{"Count":0}'
api "update the inline destination" acme-token PUT /subaccountDestinations \
    "{\"Name\":\"inline-acme\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/x\"}"
want_api_error 409 "configuration file"
api "update two at once" acme-token PUT /subaccountDestinations \
    "[{\"Name\":\"many-1\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/m\"},{\"Name\":\"many-2\",\"Type\":\"TCP\",\"Address\":\"tcp://127.0.0.1:1\"}]"
want_ok && want_eq "array update's Count" "$(jget .Count)" 2
api "get many-1 after the update" acme-token GET /subaccountDestinations/many-1
want_ok && want_eq "many-1's URL" "$(jget .URL)" "http://127.0.0.1:$op/m"

# --- 6. refusals ------------------------------------------------------------------------
before=$(ls -a "$dests" | tr '\n' ' ')
api "create with a bad URL" acme-token POST /subaccountDestinations '{"Name":"bad","Type":"HTTP","URL":"ftp://h"}'
want_api_error 400 "URL: scheme 'ftp' is not allowed here"
api "create without Type" acme-token POST /subaccountDestinations '{"Name":"bad","URL":"http://h"}'
want_api_error 400 "missing required property 'Type'"
api "create with BasicAuthentication and no Password" acme-token POST /subaccountDestinations \
    '{"Name":"bad","Type":"HTTP","URL":"http://h","Authentication":"BasicAuthentication","User":"u"}'
want_api_error 400 "needs property 'Password'"
api "create with a bad body" acme-token POST /subaccountDestinations '{"Name": "bad",'
want_api_error 400 "not valid JSON"
api "create with a null value" acme-token POST /subaccountDestinations '{"Name":"bad","Type":"HTTP","URL":"http://h","X":null}'
want_api_error 400 "want a string"
api "create for another tenant" acme-token POST /subaccountDestinations \
    '{"Name":"bad","Type":"HTTP","URL":"http://h","tenant":"beta"}'
want_api_error 403 "tenant"
api "create naming a key store" acme-token POST /subaccountDestinations \
    '{"Name":"bad","Type":"HTTP","URL":"https://h","Authentication":"ClientCertificateAuthentication","KeyStoreLocation":"/etc/ssl/private/other.pem"}'
want_api_error 403 "KeyStoreLocation"
api "create a hidden name" acme-token POST /subaccountDestinations '{"Name":".hidden","Type":"HTTP","URL":"http://h"}'
want_api_error 400 "must not start with '.'"
api "PATCH" acme-token PATCH /subaccountDestinations '{}'
want_api_error 405
want_eq "files after the refusals" "$(ls -a "$dests" | tr '\n' ' ')" "$before"

# --- 7. a configuration that no longer loads --------------------------------------------
cp "$dir/ferry.yaml" "$dir/ferry.yaml.good"
echo "bogus_key: 1" >>"$dir/ferry.yaml"
api "create while ferry.yaml is broken" acme-token POST /subaccountDestinations \
    "{\"Name\":\"later\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\"}"
want_api_error 500 "nothing changed"
[ ! -e "$dests/later.yaml" ] || fail_later "a refused create left later.yaml behind"
api "update while ferry.yaml is broken" acme-token PUT /subaccountDestinations "$svc1"
want_api_error 500
grep -q 'X-Version: "2"' "$dests/svc.yaml" || fail_later "a refused update was not rolled back: $(cat "$dests/svc.yaml")"
api "delete while ferry.yaml is broken" acme-token DELETE /subaccountDestinations/svc
want_api_error 500
[ -f "$dests/svc.yaml" ] || fail_later "a refused delete was not rolled back"
mv "$dir/ferry.yaml.good" "$dir/ferry.yaml"
hreq "shared, Host: svc after the refused changes" -H 'Host: svc' "$shared/echo"
want_ok && want_eq "svc unchanged by refused changes" "$(eh X-Version)" 2

# --- 8. delete --------------------------------------------------------------------------
api "delete svc" acme-token DELETE /subaccountDestinations/svc
want_ok && want_eq "delete's answer" "$(jget .)" '{"Count":1}'
[ ! -e "$dests/svc.yaml" ] || fail_later "delete left svc.yaml"
hreq "shared, Host: svc after the delete" -H 'Host: svc' "$shared/echo"
want_error 404 destination-not-found transparent
api "delete svc again" acme-token DELETE /subaccountDestinations/svc
want_ok && want_eq "delete svc again" "$(jget .)" '{"Count":0}'
api "delete the inline destination" acme-token DELETE /subaccountDestinations/inline-acme
want_api_error 409 "configuration file"
api "find svc after the delete" acme-token GET /destinations/svc
want_api_error 404

# --- 9. restart, logs, no destinations_dir ----------------------------------------------
stop_ferry
ferry_log1=$FERRY_LOG
want_eq "create log lines" "$(log_lines "$ferry_log1" "destination changed" tenant=acme action=create)" 4
want_eq "update log lines" "$(log_lines "$ferry_log1" "destination changed" tenant=acme action=update)" 3
want_eq "delete log lines" "$(log_lines "$ferry_log1" "destination changed" tenant=acme action=delete destination=svc)" 1
for secret in "$FERRY_IT_BILLING_PW" client-secret-value odd-7731; do
    ! grep -qF -- "$secret" "$ferry_log1" || fail_later "the gateway's log holds a property value ('$secret')"
done
start_ferry "$dir/ferry.yaml" "$admin"
api "tricky after a restart" acme-token GET /subaccountDestinations/tricky
if want_ok; then
    got=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["Description"])' "$HR_BODY")
    want_eq "odd value after a restart" "$got" "$odd"
fi
hreq "shared, Host: many-1 after a restart" -H 'Host: many-1' "$shared/echo"
want_ok && want_eq "many-1 routes after a restart" "$(ej path)" /m/echo
api "acme's list after a restart" acme-token GET /subaccountDestinations
want_ok && want_eq "acme's list after a restart" "$(jget '[.[].Name]')" \
    '["billing","inline-acme","many-1","many-2","oauth","tricky"]'
stop_ferry

admin2=$(free_port)
cat >"$dir/nodir.yaml" <<YAML
workers: 1
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$admin2 }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: only, Type: HTTP, URL: "http://127.0.0.1:$op" }
YAML
start_ferry "$dir/nodir.yaml" "$admin2"
API=http://127.0.0.1:$admin2/destination-configuration/v1
api "create without destinations_dir" acme-token POST /subaccountDestinations '{"Name":"n","Type":"HTTP","URL":"http://h"}'
want_api_error 501 "destinations_dir"
api "find without destinations_dir" acme-token GET /destinations/only
want_ok && want_eq "find without destinations_dir" "$(jget .owner.SubaccountId)" acme
stop_ferry

fail_deferred
echo "destination_api: ok"
