#!/usr/bin/env bash
# token_hang.sh: a token service that hangs (accepts, never answers).
#
#   bash tests/faults/token_hang.sh [BUILD_DIR]     (default: build)
#
# Two token services (tests/integration/tools/token_service.py) and an echo origin.
# Destinations: hung (OAuth2ClientCredentials on service 1,
# tokenServiceURL.SocketReadTimeoutInSeconds 3), other (OAuth2ClientCredentials on
# service 2) and plain (NoAuthentication), one transparent listener each. Service 1 is
# stopped with SIGSTOP before hung's first token request: the kernel still accepts
# ferry's connection, nothing ever answers.
# - 20 requests at once to hung: every one gets 502 ferry-error: token-error, none
#   sooner than 2 s (the hang was real) nor later than 10 s (bounded by the 3 s
#   timeout, with room for a loaded machine);
# - while those wait (ferry's token request sits in service 1's accept queue), 20
#   requests each to other and plain are answered 200, each within 2 s, all before the
#   first hung request is answered;
# - SIGCONT: within 15 s (the failure's backoff) hung answers 200 with a token;
# - ferry exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$SRC_ROOT/tests/integration/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$SRC_ROOT/tests/integration/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$SRC_ROOT/tests/integration/tools/http_lib.sh"
FAULTS=$SRC_ROOT/tests/faults/tools/faults.py

dir=$(tmpdir)
for i in 1 2; do
    start_bg "tokens$i" python3 "$TOOLS/token_service.py" --port-file "$dir/tport$i" \
        --client "ferry-client:secret"
    wait_file "$dir/tport$i" 10 "$BG_PID" || fail "token service $i did not start"
done
ts1_pid=${BG_PIDS[0]}
tp1=$(cat "$dir/tport1")
tp2=$(cat "$dir/tport2")
start_http_origin origin --echo-all
op=$HO_PORT

admin=$(free_port)
l_hung=$(free_port)
l_other=$(free_port)
l_plain=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - Name: hung
    Type: HTTP
    URL: http://127.0.0.1:$op/hung
    Authentication: OAuth2ClientCredentials
    tokenServiceURL: "http://127.0.0.1:$tp1/oauth/token?tag=hung"
    tokenServiceURL.SocketReadTimeoutInSeconds: "3"
    clientId: ferry-client
    clientSecret: secret
  - Name: other
    Type: HTTP
    URL: http://127.0.0.1:$op/other
    Authentication: OAuth2ClientCredentials
    tokenServiceURL: "http://127.0.0.1:$tp2/oauth/token?tag=other"
    clientId: ferry-client
    clientSecret: secret
  - { Name: plain, Type: HTTP, URL: "http://127.0.0.1:$op/plain" }
listeners:
  - { name: hung, plugin: http, listen: "127.0.0.1:$l_hung", destination: hung }
  - { name: other, plugin: http, listen: "127.0.0.1:$l_other", destination: other }
  - { name: plain, plugin: http, listen: "127.0.0.1:$l_plain", destination: plain }
YAML
start_ferry "$dir/ferry.yaml" "$admin"
hreq "other: first request (its token)" "http://127.0.0.1:$l_other/echo"
want_ok

kill -STOP "$ts1_pid"
python3 "$FAULTS" token-hang --port "$l_hung" --ports "$l_other,$l_plain" \
    --service-port "$tp1" --n 20 --timeout 30 >"$dir/hang.out" 2>&1 \
    || { kill -CONT "$ts1_pid"; fail "token-hang client: $(cat "$dir/hang.out")"; }
out=$(cat "$dir/hang.out")
echo "token hang: $out" >&2
[ "$(jq -r .queued <<<"$out")" -ge 1 ] \
    || fail_later "ferry's token request never reached the stopped service's accept queue"
want_eq "hung: answers" "$(jq -r '.hung.answers | join(",")' <<<"$out")" "502 token-error"
awk -v lo="$(jq -r .hung.min_secs <<<"$out")" -v hi="$(jq -r .hung.max_secs <<<"$out")" \
    'BEGIN { exit !(lo >= 2 && hi <= 10) }' \
    || fail_later "hung: answered after $(jq -r .hung.min_secs <<<"$out")..$(jq -r .hung.max_secs <<<"$out")s, want 2..10s (timeout 3s)"
want_eq "others: answers" "$(jq -r '.others.answers | join(",")' <<<"$out")" "$l_other 200,$l_plain 200"
awk -v hi="$(jq -r .others.max_secs <<<"$out")" 'BEGIN { exit !(hi <= 2) }' \
    || fail_later "others: the slowest took $(jq -r .others.max_secs <<<"$out")s while the token service hung, want <= 2s"
want_eq "others answered before the hung requests" "$(jq -r .others_done_first <<<"$out")" true

kill -CONT "$ts1_pid"
recovered=0
for ((i = 0; i < 75; i++)); do
    hreq "hung: after SIGCONT" "http://127.0.0.1:$l_hung/echo"
    if [ "$HR_STATUS" = 200 ]; then
        recovered=1
        break
    fi
    sleep 0.2
done
[ "$recovered" = 1 ] || fail_later "hung: still failing 15s after the token service came back ($(hr_seen))"
# The token the service numbered: the request ferry gave up on may be counted first.
if [ "$recovered" = 1 ]; then
    case $(eh Authorization) in
        "Bearer tok-hung-"[1-9]) ;;
        *) fail_later "hung: Authorization at the origin is '$(eh Authorization)', want Bearer tok-hung-N" ;;
    esac
fi

kill -0 "$FERRY_PID" 2>/dev/null || fail "the gateway died"
stop_ferry
fail_deferred
echo "token_hang: ok"
