#!/usr/bin/env bash
# http_policy.sh: Lua policies on the http plugin (transparent mode), a real origin, curl.
#
#   bash tests/integration/http_policy.sh [BUILD_DIR]     (default: build)
#
# One origin (tools/http_origin.py --echo-all); one shared transparent listener, the
# destination chosen with X-Destination-Name. Destinations run the examples of
# examples/policies/ as they are, plus two test scripts (faulty.lua, reload.lua).
# 1. header-rewrite.lua: the origin sees Accept-Version from X-Api-Version, no
#    User-Agent, no Cookie, X-Gateway: ferry; the client sees no Server field (a
#    destination without policy passes it on).
# 2. path-deny.lua: /admin, /admin/x, /internal/y are 403 and DELETE outside /sandbox/
#    405, each with ferry-error policy-denied and the script's reason; the origin never
#    sees them; /public and DELETE /sandbox/x reach it.
# 3. tenant-header.lua: the origin sees X-Tenant acme (the client's X-Tenant replaced)
#    and X-Destination. 4. client-ip.lua: from 127.0.0.1 a POST passes; from 127.0.0.2
#    a GET passes and a POST is 403 "read-only for 127.0.0.2". 5. api-key.lua: the
#    origin sees the destination's key (from ${env:}), once; the client's is dropped;
#    the key is in no log line.
# 6. faulty.lua: a runtime error, an endless loop and a memory bomb each fail their
#    request (500 policy-error) with a log line naming destination, script:line and
#    the message, while 300 requests on the same destination keep flowing (all 200).
# 7. SIGHUP with a syntax error in reload.lua: the reload applies (a new destination
#    answers), the destination keeps the old script (logged with file:line:col);
#    fixed, the next SIGHUP takes the new one.
# 8. `ferry check` on a config whose script does not compile: exit 2 and
#    file:line:col: message.
# 9. `ferry policy test`: the rewrite on a YAML request (secrets as ***), a denial from
#    a JSON one (exit 1), the API key hidden, a failing script (exit 2, logged), a
#    misspelt request key (exit 2, file:line:col).
# 10. `ferry policy test` shows the request as it leaves ferry: on a BasicAuthentication
#    destination with a path in its URL, URL.headers.X-Demo and URL.queries.sap-client
#    "a b&c": the joined path, the encoded query, X-Demo, "Authorization": "***" (the
#    client's dropped, the password nowhere) after what the policy set; the real plugin
#    sends exactly that request to the origin (Authorization: Basic user:password).
#    --response FILE runs on_response (Server removed, X-Resp set), as the plugin does
#    for the client; a missing file is exit 2. An OAuth2 destination fetches nothing and
#    shows "Bearer ***" with a note.
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

ex=$SRC_ROOT/examples/policies
dir=$(tmpdir)
mkdir -p "$dir/policies"
start_http_origin origin --echo-all
op=$HO_PORT
admin=$(free_port)
lp=$(free_port)
export FERRY_IT_API_KEY=k-secret-4711
export FERRY_IT_BASIC_PW=pw-secret-0815

cat >"$dir/policies/faulty.lua" <<'LUA'
-- Fails on purpose, by path; every other request passes with a mark.
return {
  on_request = function(req, dest)
    local t = nil
    if req.path == "/boom" then return t.field end
    if req.path == "/loop" then while true do end end
    if req.path == "/bomb" then t = string.rep("x", 1 << 30) end
    req.headers["X-Faulty"] = "passed"
  end,
}
LUA
cat >"$dir/policies/sap.lua" <<'LUA'
-- Marks the request and rewrites the response, for the policy test and the data path.
return {
  on_request = function(req, dest)
    req.headers["X-Policy"] = "set"
  end,
  on_response = function(res, dest)
    res.headers["Server"] = nil
    res.headers["X-Resp"] = "ferry"
  end,
}
LUA
write_reload() {
    printf 'return { on_request = function(req) req.headers["X-Version"] = "%s" end }\n' \
        "$1" >"$dir/policies/reload.lua"
}
write_reload 1

# write_conf [EXTRA_DESTINATION_LINE]
write_conf() {
    cat >"$dir/ferry.yaml.tmp" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: plain, Type: HTTP, URL: "http://127.0.0.1:$op", ProxyType: Internet }
  - { Name: rewrite, Type: HTTP, URL: "http://127.0.0.1:$op", policy: $ex/header-rewrite.lua }
  - { Name: deny, Type: HTTP, URL: "http://127.0.0.1:$op", policy: $ex/path-deny.lua }
  - { Name: tenant, Type: HTTP, URL: "http://127.0.0.1:$op", policy: $ex/tenant-header.lua }
  - { Name: clientip, Type: HTTP, URL: "http://127.0.0.1:$op", policy: $ex/client-ip.lua }
  - Name: apikey
    Type: HTTP
    URL: http://127.0.0.1:$op
    apiKey: \${env:FERRY_IT_API_KEY}
    policy: $ex/api-key.lua
  - { Name: faulty, Type: HTTP, URL: "http://127.0.0.1:$op", policy: $dir/policies/faulty.lua }
  - { Name: reload, Type: HTTP, URL: "http://127.0.0.1:$op", policy: $dir/policies/reload.lua }
  - Name: sapbasic
    Type: HTTP
    URL: http://127.0.0.1:$op/sap/opu/
    Authentication: BasicAuthentication
    User: demo-user
    Password: \${env:FERRY_IT_BASIC_PW}
    URL.headers.X-Demo: demo-value
    URL.queries.sap-client: "a b&c"
    policy: $dir/policies/sap.lua
  - Name: oauth
    Type: HTTP
    URL: http://127.0.0.1:$op/v1
    Authentication: OAuth2ClientCredentials
    tokenServiceURL: http://127.0.0.1:1/token
    clientId: ferry
    clientSecret: cs-secret-4242
${1:-}
listeners:
  - { name: shared, plugin: http, listen: "127.0.0.1:$lp", mode: transparent }
YAML
    mv "$dir/ferry.yaml.tmp" "$dir/ferry.yaml"
}
write_conf
out=$("$FERRY" check -c "$dir/ferry.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_ferry "$dir/ferry.yaml" "$admin"
base=http://127.0.0.1:$lp
to() { echo "X-Destination-Name: $1"; }
origin_saw() { grep -c "\"target\": \"$1\"" "$HO_LOG" || true; }

# --- 1. header-rewrite.lua ------------------------------------------------------------------
hreq "header rewrite" -H "$(to rewrite)" -H 'X-Api-Version: 2' -H 'User-Agent: old-app/1' \
    -H 'Cookie: session=abc' "$base/echo"
if want_ok; then
    want_eq "Accept-Version at the origin" "$(eh Accept-Version)" 2 || true
    want_eq "X-Api-Version at the origin" "$(ehn X-Api-Version)" 0 || true
    want_eq "User-Agent at the origin" "$(ehn User-Agent)" 0 || true
    want_eq "Cookie at the origin" "$(ehn Cookie)" 0 || true
    want_eq "X-Gateway at the origin" "$(eh X-Gateway)" ferry || true
    want_eq "Server at the client (removed by on_response)" "$(hdr Server)" "" || true
fi
hreq "no policy" -H "$(to plain)" -H 'User-Agent: old-app/1' "$base/echo"
want_ok && want_eq "User-Agent without a policy" "$(eh User-Agent)" old-app/1
[ -n "$(hdr Server)" ] || fail_later "the origin's Server field should pass without a policy"

# --- 2. path-deny.lua ------------------------------------------------------------------------
for p in /admin /admin/users /internal/metrics; do
    hreq "deny $p" -H "$(to deny)" "$base$p"
    want_error 403 policy-denied transparent &&
        want_eq "deny $p: body" "$(body)" "policy-denied: $p is closed" || true
    want_eq "deny $p: the origin never saw it" "$(origin_saw "$p")" 0 || true
done
hreq "DELETE outside /sandbox/" -X DELETE -H "$(to deny)" "$base/orders/1"
want_error 405 policy-denied transparent &&
    want_eq "DELETE reason" "$(hdr x-error-message)" \
        "DELETE is only allowed under /sandbox/" || true
hreq "allowed path" -H "$(to deny)" "$base/public"
want_ok && want_eq "allowed path at the origin" "$(ej path)" /public
hreq "DELETE under /sandbox/" -X DELETE -H "$(to deny)" "$base/sandbox/x"
want_ok && want_eq "DELETE under /sandbox/ at the origin" "$(ej method)" DELETE

# --- 3. tenant-header.lua, 4. client-ip.lua, 5. api-key.lua -------------------------------
hreq "tenant header" -H "$(to tenant)" -H 'X-Tenant: evil' "$base/echo"
if want_ok; then
    want_eq "X-Tenant at the origin" "$(eh X-Tenant)" acme || true
    want_eq "X-Destination at the origin" "$(eh X-Destination)" tenant || true
fi
hreq "client 127.0.0.1 POST" -H "$(to clientip)" --data-binary x "$base/echo"
want_ok || true
hreq "client 127.0.0.2 GET" --interface 127.0.0.2 -H "$(to clientip)" "$base/echo"
want_ok || true
hreq "client 127.0.0.2 POST" --interface 127.0.0.2 -H "$(to clientip)" --data-binary x \
    "$base/echo"
want_error 403 policy-denied transparent &&
    want_eq "127.0.0.2 POST reason" "$(hdr x-error-message)" "read-only for 127.0.0.2" || true
hreq "api key" -H "$(to apikey)" -H 'X-Api-Key: client-fake' "$base/echo"
if want_ok; then
    want_eq "X-Api-Key fields at the origin" "$(ehn X-Api-Key)" 1 || true
    want_eq "X-Api-Key at the origin" "$(eh X-Api-Key)" "$FERRY_IT_API_KEY" || true
fi

# --- 6. failures fail one request each, the rest keeps flowing ------------------------------
hreq "runtime error" -H "$(to faulty)" "$base/boom"
want_error 500 policy-error transparent || true
wait_lines "$FERRY_LOG" "policy failed" 1 5 destination=faulty hook=on_request \
    "where=$dir/policies/faulty.lua:5" "error~attempt to index a nil value (local 't')" ||
    fail_later "no 'policy failed' line with destination, faulty.lua:5 and the message:" \
               "$(grep 'policy failed' "$FERRY_LOG" | tail -n 3)"
urls=()
for ((i = 0; i < 300; i++)); do urls+=(-o /dev/null "$base/ok/$i"); done
start_bg flow curl -s --max-time 60 -H "$(to faulty)" -w '%{http_code}\n' "${urls[@]}"
flow_pid=$BG_PID
for ((i = 0; i < 5; i++)); do
    hreq "endless loop $i" -H "$(to faulty)" "$base/loop"
    want_error 500 policy-error transparent || true
    hreq "memory bomb $i" -H "$(to faulty)" "$base/bomb"
    want_error 500 policy-error transparent || true
done
wait_exit "$flow_pid" 60 || fail "300 requests beside the failing ones did not finish in 60 s"
codes=$(sort "$(bg_log flow)" | uniq -c | tr -s ' ' | sed 's/^ //')
want_eq "300 requests beside the failing ones" "$codes" "300 200" || true
want_eq "the passing requests carried the mark" \
    "$(grep -c '"X-Faulty", "passed"' "$HO_LOG" || true)" 300 || true
n=$(log_lines "$FERRY_LOG" "policy failed" destination=faulty \
    "error~instruction budget exceeded" "where=$dir/policies/faulty.lua:6")
want_eq "log lines for the loops (faulty.lua:6)" "$n" 5 || true
n=$(log_lines "$FERRY_LOG" "policy failed" destination=faulty "error~memory cap exceeded" \
    "where=$dir/policies/faulty.lua:7")
want_eq "log lines for the memory bombs (faulty.lua:7)" "$n" 5 || true
if grep -q "$FERRY_IT_API_KEY" "$FERRY_LOG"; then
    fail_later "the API key appears in ferry's log"
fi

# --- 7. SIGHUP with a broken script keeps the old one ----------------------------------------
hreq "reload.lua v1" -H "$(to reload)" "$base/echo"
want_ok && want_eq "X-Version before the reload" "$(eh X-Version)" 1
printf 'return { on_request = function(req)\n  local = "2"\nend }\n' >"$dir/policies/reload.lua"
write_conf "  - { Name: added, Type: HTTP, URL: \"http://127.0.0.1:$op\" }"
kill -HUP "$FERRY_PID"
wait_lines "$FERRY_LOG" "policy did not load; keeping the previous one" 1 10 \
    destination=reload "error~$dir/policies/reload.lua:2:9: <name> expected near '='" ||
    fail_later "no 'keeping the previous one' line with reload.lua:2:9 after SIGHUP:" \
               "$(grep -i 'policy\|reload' "$FERRY_LOG" | tail -n 3)"
need_metric "$admin" 'ferry_reloads_total{result="ok"}' -eq 1 10
hreq "a destination added by the same reload" -H "$(to added)" "$base/echo"
want_ok || true
hreq "reload.lua after the broken reload" -H "$(to reload)" "$base/echo"
want_ok && want_eq "X-Version after the broken reload (the old script)" "$(eh X-Version)" 1
write_reload 2
kill -HUP "$FERRY_PID"
need_metric "$admin" 'ferry_reloads_total{result="ok"}' -eq 2 10
hreq "reload.lua after the fixed reload" -H "$(to reload)" "$base/echo"
want_ok && want_eq "X-Version after the fixed reload" "$(eh X-Version)" 2

# --- 8. ferry check reports a script that does not compile -----------------------------------
printf 'return {\n  on_request = function(req)\n    local x = 1 +* 2\n  end,\n}\n' \
    >"$dir/policies/broken.lua"
sed "s|policies/reload.lua|policies/broken.lua|" "$dir/ferry.yaml" >"$dir/check.yaml"
rc=0
out=$("$FERRY" check -c "$dir/check.yaml" 2>&1) || rc=$?
want_eq "ferry check exit status on a broken script" "$rc" 2 || true
[[ "$out" == *"$dir/policies/broken.lua:3:18: unexpected symbol near '*'"* ]] ||
    fail_later "ferry check: want $dir/policies/broken.lua:3:18: unexpected symbol" \
               "near '*', got: $out"

# --- 9. ferry policy test: a policy against a sample request, offline --------------------
cat >"$dir/req.yaml" <<'YAML'
method: GET
path: /orders/1
query: "?a=1"
headers:
  User-Agent: old-app/1
  X-Api-Version: "3"
  Authorization: Bearer abc
YAML
ptest() {
    PT_RC=0
    PT_OUT=$("$FERRY" policy test -c "$dir/ferry.yaml" "$@" 2>"$dir/ptest.err") || PT_RC=$?
}
pt_field() {
    python3 -c 'import json, sys
d = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    d = d.get(k) if isinstance(d, dict) else None
print(json.dumps(d) if isinstance(d, (list, dict)) else d)' "$PT_OUT" "$1"
}
ptest rewrite "$dir/req.yaml"
want_eq "policy test rewrite: exit status" "$PT_RC" 0 || true
want_eq "policy test rewrite: headers" "$(pt_field request.headers)" \
    '[["Authorization", "***"], ["Accept-Version", "3"], ["X-Gateway", "ferry"]]' || true
want_eq "policy test rewrite: query" "$(pt_field request.query)" "a=1" || true
printf '{"method": "DELETE", "path": "/orders/1"}\n' >"$dir/req.json"
ptest deny "$dir/req.json"
want_eq "policy test deny: exit status" "$PT_RC" 1 || true
want_eq "policy test deny: outcome" "$(pt_field allowed) $(pt_field status) $(pt_field reason)" \
    "False 405 DELETE is only allowed under /sandbox/" || true
ptest apikey "$dir/req.json"
want_eq "policy test apikey: exit status" "$PT_RC" 0 || true
[[ "$PT_OUT" == *'["X-Api-Key", "***"]'* && "$PT_OUT" != *"$FERRY_IT_API_KEY"* ]] ||
    fail_later "policy test apikey: want X-Api-Key shown as ***, got $PT_OUT"
printf '{"path": "/boom"}\n' >"$dir/boom.json"
ptest faulty "$dir/boom.json"
want_eq "policy test faulty: exit status" "$PT_RC" 2 || true
grep -q '"msg":"policy failed".*faulty.lua:5' "$dir/ptest.err" ||
    fail_later "policy test faulty: no 'policy failed' line naming faulty.lua:5 on stderr"
printf '{"pth": "/x"}\n' >"$dir/bad.json"
ptest deny "$dir/bad.json"
want_eq "policy test with a misspelt key: exit status" "$PT_RC" 2 || true
grep -q "^$dir/bad.json:1:2: unknown key" "$dir/ptest.err" ||
    fail_later "policy test: want $dir/bad.json:1:2: unknown key, got $(cat "$dir/ptest.err")"

# --- 10. ferry policy test shows the request as it leaves ferry, and the plugin agrees ----
cat >"$dir/sap.yaml" <<'YAML'
method: GET
path: /orders/1
query: a=1
headers:
  - [User-Agent, old-app/1]
  - [Authorization, Bearer abc]
  - [X-Demo, client-value]
YAML
printf 'HTTP/1.1 200 OK\nServer: origin/1\nX-Keep: 1\nContent-Length: 2\n\nok' >"$dir/resp.txt"
ptest sapbasic "$dir/sap.yaml" --response "$dir/resp.txt"
want_eq "policy test sapbasic: exit status" "$PT_RC" 0 || true
want_eq "policy test sapbasic: joined path" "$(pt_field request.path)" /sap/opu/orders/1 || true
want_eq "policy test sapbasic: query with URL.queries encoded" "$(pt_field request.query)" \
    "a=1&sap-client=a%20b%26c" || true
want_eq "policy test sapbasic: headers (policy's, then the destination's)" \
    "$(pt_field request.headers)" \
    '[["User-Agent", "old-app/1"], ["X-Demo", "client-value"], ["X-Policy", "set"], ["X-Demo", "demo-value"], ["Authorization", "***"]]' ||
    true
want_eq "policy test sapbasic: url" "$(pt_field request.url)" \
    "http://127.0.0.1:$op/sap/opu/orders/1?a=1&sap-client=a%20b%26c" || true
want_eq "policy test sapbasic: response (on_response ran)" "$(pt_field response)" \
    '{"status": 200, "headers": [["X-Keep", "1"], ["Content-Length", "2"], ["X-Resp", "ferry"]]}' ||
    true
basic_b64=$(printf 'demo-user:%s' "$FERRY_IT_BASIC_PW" | base64)
for secret in "$FERRY_IT_BASIC_PW" "$basic_b64" abc; do
    [[ "$PT_OUT" != *"$secret"* ]] || fail_later "policy test sapbasic: '$secret' in the output"
done
# The same request through the plugin: the origin must see what the test printed.
hreq "sapbasic through the plugin" -H "$(to sapbasic)" -H 'Accept:' -H 'User-Agent: old-app/1' \
    -H 'Authorization: Bearer abc' -H 'X-Demo: client-value' "$base/orders/1?a=1"
if want_ok; then
    want_eq "sapbasic: the origin's target is the test's path?query" "$(ej target)" \
        "$(pt_field request.path)?$(pt_field request.query)" || true
    # ferry's own per-connection fields aside, the origin's fields are the test's, with
    # the real credentials where the test shows ***.
    seen=$(jq -c --arg basic "Basic $basic_b64" '[.headers[]
        | select(.[0] | ascii_downcase | IN("host", "x-forwarded-for", "x-forwarded-proto",
                                            "x-forwarded-host", "x-request-id") | not)
        | if .[1] == $basic then [.[0], "***"] else . end]' "$HR_BODY")
    want_eq "sapbasic: the origin's fields are the test's" "$seen" \
        "$(pt_field request.headers | jq -c .)" || true
    want_eq "sapbasic: Server at the client (removed by on_response)" "$(hdr Server)" "" || true
    want_eq "sapbasic: X-Resp at the client" "$(hdr X-Resp)" ferry || true
fi
ptest sapbasic "$dir/sap.yaml" --response "$dir/no-such-response.txt"
want_eq "policy test --response on a missing file: exit status" "$PT_RC" 2 || true
grep -q "^$dir/no-such-response.txt: No such file or directory" "$dir/ptest.err" ||
    fail_later "policy test --response: want '<file>: No such file or directory'," \
               "got $(cat "$dir/ptest.err")"
[ -z "$PT_OUT" ] || fail_later "policy test --response on a missing file printed $PT_OUT"
ptest oauth "$dir/sap.yaml"
want_eq "policy test oauth: exit status" "$PT_RC" 0 || true
want_eq "policy test oauth: headers" "$(pt_field request.headers)" \
    '[["User-Agent", "old-app/1"], ["X-Demo", "client-value"], ["Authorization", "Bearer ***"]]' ||
    true
[[ "$(pt_field notes)" == *"no token was fetched"* ]] ||
    fail_later "policy test oauth: want a note that no token was fetched, got $PT_OUT"
[[ "$PT_OUT" != *cs-secret-4242* ]] || fail_later "policy test oauth: clientSecret in the output"

stop_ferry
fail_deferred
echo "ok: example policies (rewrite, deny, tenant, client IP, API key) seen by a real origin;" \
     "errors, loops and memory bombs failed one request each while 300 others passed;" \
     "a broken script kept the old one across SIGHUP; ferry check gave file:line:col;" \
     "ferry policy test ran them offline and showed the request the plugin sends"
