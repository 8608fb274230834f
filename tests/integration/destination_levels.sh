#!/usr/bin/env bash
# destination_levels.sh: the destination API's two levels (SAP's instanceDestinations and
# subaccountDestinations), v2's name@level, the list options and SAP's error shape; on
# destinations_dir files, then on etcd (`store:`).
#
#   bash tests/integration/destination_levels.sh [BUILD_DIR]     (default: build)
#
# Tenants acme and beta. acme has `twin` at both levels (files twin.yaml and
# twin@instance.yaml, `level: instance`), `basic` (subaccount, BasicAuthentication) and
# `tcp-one` (subaccount, TCP); beta has `beta-sub`. A shared transparent listener in
# front of tools/http_origin.py.
# 1. Find: instance level first (owner.InstanceId = the tenant, else null); v2
#    name@subaccount / name@instance without fallback (404), unknown or provider levels
#    400; the transparent listener routes Host: twin to the instance level.
# 2. Lists per level (beta's instance list is []), GET|DELETE {level}Destinations/{name}
#    at that level only; `level` is never shown as a property.
# 3. Options: $filter (eq, ne, and, or; Name and Type), $select=Name, $page/$pageSize
#    with Page-Count, $entityCount, bad options 400 naming the option; $skipCredentials
#    leaves out Password and authTokens.
# 4. Instance CRUD: create 201 (file <Name>@instance.yaml), 409 again, arrays for POST and
#    PUT ({"Count": 2}), {"Count": 0} for an update or delete of a missing name (404 is
#    for finds; an array counts the existing ones), 409 for another tenant's name, 400
#    naming the property, 401 without a token; delete {"Count": 1}.
# 5. A restart keeps the levels. 6. Through etcd: keys <Name>@instance (values without
#    tenant and level), find order, v2, ETag, routing, create/update/delete, 409s;
#    `ferry store export` writes <Name>@instance.yaml (level: instance), import reads it.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/http_lib.sh"
# shellcheck source=tests/integration/tools/etcd_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/etcd_lib.sh"

trap 'echo "FAIL: $(basename "$0"): line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR
dir=$(tmpdir)
dests=$dir/dests
mkdir "$dests"
start_http_origin origin --echo-all
op=$HO_PORT
admin=$(free_port)
l_shared=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 1
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$admin }
tenants:
  - { id: acme, token: acme-token }
  - { id: beta, token: beta-token }
destinations_dir: dests
listeners:
  - { name: shared, plugin: http, listen: "127.0.0.1:$l_shared", mode: transparent }
YAML
cat >"$dests/twin.yaml" <<YAML
{ Name: twin, Type: HTTP, URL: "http://127.0.0.1:$op/sub", tenant: acme }
YAML
cat >"$dests/twin@instance.yaml" <<YAML
{ Name: twin, Type: HTTP, URL: "http://127.0.0.1:$op/inst", tenant: acme, level: instance }
YAML
cat >"$dests/basic.yaml" <<YAML
{ Name: basic, Type: HTTP, URL: "http://127.0.0.1:$op", tenant: acme,
  Authentication: BasicAuthentication, User: u, Password: basic-pw-4411 }
YAML
cat >"$dests/tcp-one.yaml" <<YAML
{ Name: tcp-one, Type: TCP, Address: "tcp://127.0.0.1:$op", tenant: acme }
YAML
cat >"$dests/beta-sub.yaml" <<YAML
{ Name: beta-sub, Type: HTTP, URL: "http://127.0.0.1:$op", tenant: beta }
YAML
out=$("$FERRY" check -c "$dir/ferry.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_ferry "$dir/ferry.yaml" "$admin"
BASE=http://127.0.0.1:$admin/destination-configuration
shared=http://127.0.0.1:$l_shared

# api WHAT TOKEN METHOD PATH [JSON]: PATH under $BASE (starts with /v1 or /v2).
api() {
    local what=$1 tok=$2 method=$3 path=$4
    local args=(-X "$method")
    shift 4
    [ -z "$tok" ] || args+=(-H "Authorization: Bearer $tok")
    [ $# -eq 0 ] || args+=(-H 'Content-Type: application/json' --data-binary "$1")
    hreq "$what" "${args[@]}" "$BASE$path"
}

jget() {     # one jq per field: each process start costs on a loaded machine
    jq -r -c -S "$1" "$HR_BODY" 2>/dev/null || echo "<no json>"
}

want_api_error() {      # want_api_error STATUS [TEXT]: SAP's {"ErrorMessage": "..."} only
    local got
    want_status "$1" || return 1
    got=$(jget 'if keys == ["ErrorMessage"] then .ErrorMessage else "<not SAP: \(.)>" end')
    [[ "$got" != "<"* ]] || fail_later "$HR_WHAT: error body $got"
    [ -z "${2:-}" ] || [[ "$got" == *"$2"* ]] || fail_later "$HR_WHAT: ErrorMessage '$got' lacks '$2'"
}

# levels_suite: sections 1 and 2 against the running gateway.
levels_suite() {
    # --- 1. find ---------------------------------------------------------------------
    api "find twin" acme-token GET /v1/destinations/twin
    want_ok && want_eq "twin: instance level first" \
        "$(jget '[.owner.SubaccountId, .owner.InstanceId, .destinationConfiguration.URL]')" \
        "[\"acme\",\"acme\",\"http://127.0.0.1:$op/inst\"]"
    want_eq "twin: level is not a property" "$(jget '.destinationConfiguration | has("level")')" false
    api "find basic" acme-token GET /v1/destinations/basic
    want_ok && want_eq "basic: subaccount level" "$(jget .owner)" '{"InstanceId":null,"SubaccountId":"acme"}'
    api "v2 twin@subaccount" acme-token GET /v2/destinations/twin@subaccount
    want_ok && want_eq "v2 twin@subaccount" "$(jget '[.owner.InstanceId, .destinationConfiguration.URL]')" \
        "[null,\"http://127.0.0.1:$op/sub\"]"
    api "v2 twin%40instance" acme-token GET /v2/destinations/twin%40instance
    want_ok && want_eq "v2 twin@instance" "$(jget '[.owner.InstanceId, .destinationConfiguration.URL]')" \
        "[\"acme\",\"http://127.0.0.1:$op/inst\"]"
    api "v2 basic@instance (no fallback)" acme-token GET /v2/destinations/basic@instance
    want_api_error 404 "Configuration with the specified name was not found"
    api "v2 basic@provider_subaccount" acme-token GET /v2/destinations/basic@provider_subaccount
    want_api_error 400 "provider"
    api "v2 basic@nowhere" acme-token GET /v2/destinations/basic@nowhere
    want_api_error 400 "unknown level"
    api "v2 twin@instance for beta" beta-token GET /v2/destinations/twin@instance
    want_api_error 404
    api "v2 list path" acme-token GET /v2/instanceDestinations
    want_api_error 404
    api "v3" acme-token GET /v3/destinations/twin
    want_api_error 404 "unknown path"
    api "v2 level not UTF-8" acme-token GET /v2/destinations/basic@%C3%28x
    want_api_error 400 "unknown level"
    hreq "transparent Host: twin" -H 'Host: twin' "$shared/x"
    want_ok && want_eq "Host: twin goes to the instance level" "$(ej path)" /inst/x

    # --- 2. lists and single reads per level -------------------------------------------
    api "beta's instance list" beta-token GET /v1/instanceDestinations
    want_ok && want_eq "beta's instance list" "$(jget .)" '[]'
    api "acme's instance list" acme-token GET /v1/instanceDestinations
    want_ok && want_eq "acme's instance list" "$(jget '[.[] | [.Name, .URL, has("level")]]')" \
        "[[\"twin\",\"http://127.0.0.1:$op/inst\",false]]"
    api "acme's subaccount list" acme-token GET /v1/subaccountDestinations
    want_ok && want_eq "acme's subaccount list" "$(jget '[.[].Name]')" '["basic","tcp-one","twin"]'
    api "get instanceDestinations/twin" acme-token GET /v1/instanceDestinations/twin
    want_ok && want_eq "instanceDestinations/twin URL" "$(jget .URL)" "http://127.0.0.1:$op/inst"
    api "get instanceDestinations/basic" acme-token GET /v1/instanceDestinations/basic
    want_api_error 404

}

# options_suite: section 3 (the same code serves files and etcd: run once).
options_suite() {
    # --- 3. options --------------------------------------------------------------------
    api "filter Name eq" acme-token GET "/v1/subaccountDestinations?%24filter=Name%20eq%20'twin'"
    want_ok && want_eq "\$filter Name eq 'twin'" "$(jget '[.[].Name]')" '["twin"]'
    api "filter Type eq or" acme-token GET \
        "/v1/subaccountDestinations?\$filter=Type%20eq%20'TCP'%20or%20Name%20eq%20'basic'"
    want_ok && want_eq "\$filter Type eq 'TCP' or Name eq 'basic'" "$(jget '[.[].Name]')" '["basic","tcp-one"]'
    api "filter and ne" acme-token GET \
        "/v1/subaccountDestinations?\$filter=Type%20eq%20'HTTP'%20and%20Name%20ne%20'twin'"
    want_ok && want_eq "\$filter Type eq 'HTTP' and Name ne 'twin'" "$(jget '[.[].Name]')" '["basic"]'
    api "filter nothing matches" acme-token GET "/v1/instanceDestinations?\$filter=Type%20eq%20'TCP'"
    want_ok && want_eq "\$filter with no match" "$(jget .)" '[]'
    api "filter bad operator" acme-token GET "/v1/subaccountDestinations?\$filter=Name%20gt%20'a'"
    want_api_error 400 "\$filter"
    api "filter unclosed quote" acme-token GET "/v1/subaccountDestinations?\$filter=Name%20eq%20'a"
    want_api_error 400 "\$filter"
    api "select Name" acme-token GET "/v1/subaccountDestinations?\$select=Name"
    want_ok && want_eq "\$select=Name" "$(jget .)" '[{"Name":"basic"},{"Name":"tcp-one"},{"Name":"twin"}]'
    api "page 1 of 2" acme-token GET "/v1/subaccountDestinations?\$select=Name&\$page=1&\$pageSize=2"
    want_ok && want_eq "page 1" "$(jget '[.[].Name]') $(hdr Page-Count)" '["basic","tcp-one"] 2'
    api "page 2 of 2" acme-token GET "/v1/subaccountDestinations?\$page=2&\$pageSize=2&\$entityCount=true"
    want_ok && want_eq "page 2" "$(jget '[.[].Name]') $(hdr Page-Count) $(hdr Entity-Count)" '["twin"] 2 3'
    api "page 3 of 2" acme-token GET "/v1/subaccountDestinations?\$page=3&\$pageSize=2"
    want_ok && want_eq "page past the end" "$(jget .) $(hdr Page-Count)" '[] 2'
    api "bad pageSize" acme-token GET "/v1/subaccountDestinations?\$pageSize=0"
    want_api_error 400 "\$pageSize"
    api "bad page" acme-token GET "/v1/subaccountDestinations?\$page=x"
    want_api_error 400 "\$page"
    api "find basic, \$skipCredentials" acme-token GET "/v1/destinations/basic?\$skipCredentials=true"
    want_ok && want_eq "\$skipCredentials" \
        "$(jget '[has("authTokens"), (.destinationConfiguration | has("Password")), .destinationConfiguration.User]')" \
        '[false,false,"u"]'
    api "find basic with credentials" acme-token GET /v1/destinations/basic
    want_ok && want_eq "authTokens and Password without \$skipCredentials" \
        "$(jget '[.authTokens[0].type, .destinationConfiguration.Password]')" '["Basic","basic-pw-4411"]'

}

# crud_suite: section 4.
crud_suite() {
    # --- 4. instance CRUD --------------------------------------------------------------
    local one="{\"Name\":\"inst-new\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/n1\"}"
    api "create without a token" "" POST /v1/instanceDestinations "$one"
    want_api_error 401
    api "create inst-new" acme-token POST /v1/instanceDestinations "$one"
    want_status 201 && want_eq "create's answer" "$(jget .)" '{"Count":1}'
    if [ "$FILES" = 1 ]; then
        [ -f "$dests/inst-new@instance.yaml" ] || fail_later "no $dests/inst-new@instance.yaml: $(ls "$dests")"
        grep -q '^level: "instance"$' "$dests/inst-new@instance.yaml" 2>/dev/null ||
            fail_later "inst-new@instance.yaml has no level line"
    fi
    api "find inst-new" acme-token GET /v1/destinations/inst-new
    want_ok && want_eq "inst-new's owner" "$(jget .owner.InstanceId)" acme
    api "subaccount get of inst-new" acme-token GET /v1/subaccountDestinations/inst-new
    want_api_error 404
    api "create inst-new again" acme-token POST /v1/instanceDestinations "$one"
    want_api_error 409 "exists"
    api "beta takes acme's name at the instance level" beta-token POST /v1/instanceDestinations \
        "{\"Name\":\"basic\",\"Type\":\"HTTP\",\"URL\":\"http://h\"}"
    want_api_error 409
    api "create without Type" acme-token POST /v1/instanceDestinations '{"Name":"bad","URL":"http://h"}'
    want_api_error 400 "'Type'"
    api "create with a level of the other path" acme-token POST /v1/instanceDestinations \
        '{"Name":"bad","Type":"HTTP","URL":"http://h","level":"subaccount"}'
    want_api_error 400 "level"
    api "create a bad body" acme-token POST /v1/instanceDestinations '[{"Name":'
    want_api_error 400 "JSON"
    api "create two" acme-token POST /v1/instanceDestinations \
        "[{\"Name\":\"inst-a\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/a\"},{\"Name\":\"inst-b\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/b\"}]"
    want_status 201 && want_eq "array create's answer" "$(jget .)" '{"Count":2}'
    api "update two" acme-token PUT /v1/instanceDestinations \
        "[{\"Name\":\"inst-a\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/a2\"},{\"Name\":\"inst-b\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/b2\"}]"
    want_ok && want_eq "array update's answer" "$(jget .)" '{"Count":2}'
    api "inst-a after the update" acme-token GET /v1/instanceDestinations/inst-a
    want_ok && want_eq "inst-a's URL" "$(jget .URL)" "http://127.0.0.1:$op/a2"
    hreq "transparent Host: inst-b" -H 'Host: inst-b' "$shared/y"
    want_ok && want_eq "Host: inst-b" "$(ej path)" /b2/y
    api "update a missing name" acme-token PUT /v1/instanceDestinations '{"Name":"nope","Type":"HTTP","URL":"http://h"}'
    want_ok && want_eq "update of a missing name" "$(jget .)" '{"Count":0}'
    api "subaccount update of an instance name, and one more" acme-token PUT /v1/subaccountDestinations \
        "[{\"Name\":\"inst-a\",\"Type\":\"HTTP\",\"URL\":\"http://h\"},{\"Name\":\"tcp-one\",\"Type\":\"TCP\",\"Address\":\"tcp://127.0.0.1:$op\",\"Description\":\"d2\"}]"
    want_ok && want_eq "only the existing one is counted" "$(jget .)" '{"Count":1}'
    api "inst-a unchanged" acme-token GET /v1/instanceDestinations/inst-a
    want_ok && want_eq "inst-a unchanged by the subaccount update" "$(jget .URL)" "http://127.0.0.1:$op/a2"
    api "subaccount twin of inst-a" acme-token POST /v1/subaccountDestinations \
        "{\"Name\":\"inst-a\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/sa\"}"
    want_status 201
    api "delete instance inst-a" acme-token DELETE /v1/instanceDestinations/inst-a
    want_ok && want_eq "delete's answer" "$(jget .)" '{"Count":1}'
    api "find inst-a: the subaccount one now" acme-token GET /v1/destinations/inst-a
    want_ok && want_eq "inst-a after the delete" "$(jget '[.owner.InstanceId, .destinationConfiguration.URL]')" \
        "[null,\"http://127.0.0.1:$op/sa\"]"
    api "delete instance inst-a again" acme-token DELETE /v1/instanceDestinations/inst-a
    want_ok && want_eq "delete of a missing name" "$(jget .)" '{"Count":0}'
    api "PATCH" acme-token PATCH /v1/instanceDestinations '{}'
    want_api_error 405
}

FILES=1
levels_suite
options_suite
crud_suite

# --- 5. a restart keeps the levels ------------------------------------------------------
stop_ferry
start_ferry "$dir/ferry.yaml" "$admin"
api "instance list after a restart" acme-token GET "/v1/instanceDestinations?\$select=Name"
want_ok && want_eq "instance names after a restart" "$(jget '[.[].Name]')" '["inst-b","inst-new","twin"]'
api "subaccount list after a restart" acme-token GET "/v1/subaccountDestinations?\$select=Name"
want_ok && want_eq "subaccount names after a restart" "$(jget '[.[].Name]')" '["basic","inst-a","tcp-one","twin"]'
stop_ferry
! grep -qF basic-pw-4411 "$FERRY_LOG" || fail_later "the gateway's log holds a password"

# --- 6. the same through etcd -----------------------------------------------------------
start_etcd 1
admin=$(free_port)
l_shared=$(free_port)
cat >"$dir/store.yaml" <<YAML
workers: 1
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$admin }
tenants:
  - { id: acme, token: acme-token }
  - { id: beta, token: beta-token }
store:
  etcd:
    endpoints: $ETCD_EPS
    prefix: /lv
listeners:
  - { name: shared, plugin: http, listen: "127.0.0.1:$l_shared", mode: transparent }
YAML
ectl put /lv/destinations/acme/twin "{\"Name\":\"twin\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/sub\"}" >/dev/null
ectl put /lv/destinations/acme/twin@instance "{\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/inst\"}" >/dev/null
ectl put /lv/destinations/acme/basic "{\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\",\"Authentication\":\"BasicAuthentication\",\"User\":\"u\",\"Password\":\"basic-pw-4411\"}" >/dev/null
ectl put /lv/destinations/acme/tcp-one "{\"Type\":\"TCP\",\"Address\":\"tcp://127.0.0.1:$op\"}" >/dev/null
ectl put /lv/destinations/beta/beta-sub "{\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\"}" >/dev/null
start_ferry "$dir/store.yaml" "$admin"
BASE=http://127.0.0.1:$admin/destination-configuration
shared=http://127.0.0.1:$l_shared
for ((i = 0; i < 100; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz")" = 200 ] && break
    sleep 0.1
done
# What differs with a store: keys, values, ETag, writes through etcd (the options and
# the refusals before a write are the same code as above).
api "etcd: find twin" acme-token GET /v1/destinations/twin
want_ok && want_eq "etcd: twin at the instance level" \
    "$(jget '[.owner.InstanceId, .destinationConfiguration.URL, (.destinationConfiguration | has("level"))]')" \
    "[\"acme\",\"http://127.0.0.1:$op/inst\",false]"
want_eq "etcd: twin's ETag is the instance key's revision" "$(hdr ETag)" \
    "\"$(ectl get -w json /lv/destinations/acme/twin@instance | jq -r '.kvs[0].mod_revision')\""
api "etcd: v2 twin@subaccount" acme-token GET /v2/destinations/twin@subaccount
want_ok && want_eq "etcd: v2 twin@subaccount" "$(jget .destinationConfiguration.URL)" "http://127.0.0.1:$op/sub"
hreq "etcd: transparent Host: twin" -H 'Host: twin' "$shared/x"
want_ok && want_eq "etcd: Host: twin goes to the instance level" "$(ej path)" /inst/x
api "etcd: beta's instance list" beta-token GET /v1/instanceDestinations
want_ok && want_eq "etcd: beta's instance list" "$(jget .)" '[]'
api "etcd: create two" acme-token POST /v1/instanceDestinations \
    "[{\"Name\":\"inst-a\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/a\"},{\"Name\":\"basic\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/bi\"}]"
want_status 201 && want_eq "etcd: array create's answer" "$(jget .)" '{"Count":2}'
api "etcd: create inst-a again" acme-token POST /v1/instanceDestinations \
    "{\"Name\":\"inst-a\",\"Type\":\"HTTP\",\"URL\":\"http://h\"}"
want_api_error 409
api "etcd: beta takes basic at the instance level" beta-token POST /v1/instanceDestinations \
    '{"Name":"basic","Type":"HTTP","URL":"http://h"}'
want_api_error 409
api "etcd: update inst-a" acme-token PUT /v1/instanceDestinations \
    "{\"Name\":\"inst-a\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op/a2\"}"
want_ok && want_eq "etcd: update's answer" "$(jget .)" '{"Count":1}'
hreq "etcd: transparent Host: inst-a" -H 'Host: inst-a' "$shared/y"
want_ok && want_eq "etcd: Host: inst-a after the update" "$(ej path)" /a2/y
api "etcd: find basic: the instance one now" acme-token GET "/v1/destinations/basic"
want_ok && want_eq "etcd: basic at the instance level" "$(jget '[.owner.InstanceId, has("authTokens")]')" '["acme",false]'
api "etcd: delete instance basic" acme-token DELETE /v1/instanceDestinations/basic
want_ok && want_eq "etcd: delete's answer" "$(jget .)" '{"Count":1}'
api "etcd: delete instance basic again" acme-token DELETE /v1/instanceDestinations/basic
want_ok && want_eq "etcd: delete of a missing name" "$(jget .)" '{"Count":0}'
api "etcd: find basic: the subaccount one again" acme-token GET "/v2/destinations/basic@subaccount"
want_ok && want_eq "etcd: basic at the subaccount level" "$(jget '.authTokens[0].type')" Basic
keys=$(ectl get --prefix /lv/destinations/acme/ --keys-only | grep . | LC_ALL=C sort | tr '\n' ' ')
want_eq "etcd keys" "$keys" \
    "/lv/destinations/acme/basic /lv/destinations/acme/inst-a@instance /lv/destinations/acme/tcp-one /lv/destinations/acme/twin /lv/destinations/acme/twin@instance "
want_eq "an instance value holds neither tenant nor level" \
    "$(ectl get --print-value-only /lv/destinations/acme/inst-a@instance | jq -c -S '[has("tenant"), has("level"), .URL]')" \
    "[false,false,\"http://127.0.0.1:$op/a2\"]"
# ferry store export writes <Name>@instance.yaml with level: instance; import reads it
# back to the same key.
"$FERRY" store export -c "$dir/store.yaml" "$dir/exported" >/dev/null 2>"$dir/export.err" ||
    fail_later "store export failed: $(cat "$dir/export.err")"
want_eq "exported files" "$(find "$dir/exported" -maxdepth 1 -type f -printf "%f\n" | LC_ALL=C sort | tr '\n' ' ')" \
    "basic.yaml beta-sub.yaml inst-a@instance.yaml tcp-one.yaml twin.yaml twin@instance.yaml "
grep -q '^level: "instance"$' "$dir/exported/twin@instance.yaml" ||
    fail_later "twin@instance.yaml has no level line: $(cat "$dir/exported/twin@instance.yaml")"
ectl del /lv/destinations/acme/twin@instance >/dev/null
mkdir "$dir/reimport"
cp "$dir/exported/twin@instance.yaml" "$dir/reimport/"
"$FERRY" store import -c "$dir/store.yaml" "$dir/reimport" >/dev/null 2>"$dir/import.err" ||
    fail_later "store import failed: $(cat "$dir/import.err")"
want_eq "imported instance value" \
    "$(ectl get --print-value-only /lv/destinations/acme/twin@instance | jq -c -S '[has("level"), .URL]')" \
    "[false,\"http://127.0.0.1:$op/inst\"]"
stop_ferry
! grep -qF basic-pw-4411 "$FERRY_LOG" || fail_later "the gateway's log holds a password (etcd)"

fail_deferred
echo "destination_levels: ok"
