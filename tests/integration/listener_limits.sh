#!/usr/bin/env bash
# listener_limits.sh: every listener's allow, proxy_protocol and rate (DESIGN.md "Limits
# and source addresses").
#
#   bash tests/integration/listener_limits.sh [BUILD_DIR]     (default: build)
#
# 1. Config errors (`ferry check`, exit 2, FILE:LINE:COL at the bad value): a bad CIDR
#    (with the network suggested when host bits are set), an empty allow list, a bad
#    proxy_protocol (did you mean), a rate with per_client 0 and a misspelt key, and
#    `alow:` (did you mean 'allow').
# One gateway (2 workers), an echo origin and an HTTP origin:
# 2. allow: listener `allow4` (tcp, dual-stack [::]) admits 127.0.0.0/8 only: a
#    127.0.0.1 client (an IPv4-mapped peer on that socket) echoes; a ::1 client is
#    closed without a byte and ferry_listener_refused_total{reason="not-allowed"}
#    counts it; 30 more are all counted but logged at most once a second per worker.
# 3. proxy_protocol v1 (listener `pp1`, tcp, allow 127.0.0.1 and 192.0.2.0/24): a v1
#    header naming 192.0.2.10:51234 then data: the data echoes and the access log's
#    client is 192.0.2.10:51234; a v1 TCP6 header works too (allow has no IPv6 rule, so
#    it is refused as not-allowed: allow is checked against the header's address); no
#    header: closed without a byte, counted (reason proxy-header).
# 4. proxy_protocol v2 (listener `pp2`, http forward, auth none): a v2 header (with a
#    TLV) naming 203.0.113.5:44444 then a GET: 200 from the origin, the request's
#    access-log client is 203.0.113.5:44444; a LOCAL header keeps the socket's address
#    (127.0.0.1); a v1 header on this v2 listener is closed without a byte.
# 5. rate on http (listener `rl`, per_client 1, burst 3): three GETs pass, the fourth
#    is 429 with ferry-error: rate-limited and Retry-After: 1; polling (bounded) gets a
#    200 again once a token is back; reason rate-limited is counted.
# 6. rate on socks5 (listener `s5`, per_client 1, burst 1): the first CONNECT gets 00
#    and echoes, the next one at once gets 02 (counted when it opens its upstream, as
#    ldap's connections are, through ferry_io_open).
# 7. rate on tcp (listener `rt`, per_client 1, burst 1): the first connection echoes, the
#    next is closed without a byte and counted.
# ferry exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/http_lib.sh"

dir=$(tmpdir)

# lim WHAT COMMAND ARGS...: tools/limits.py; its JSON line in LIM_OUT; failure ends
# the script naming WHAT.
lim() {
    local what=$1 rc=0
    shift
    LIM_OUT=$(python3 "$TOOLS/limits.py" "$@" 2>&1) || rc=$?
    [ "$rc" -eq 0 ] || fail "$what: $LIM_OUT"
}

# refused_total LISTENER REASON: the counter's value now.
refused_series() {
    echo "ferry_listener_refused_total{listener=\"$1\",reason=\"$2\"}"
}

# --- 1. config errors ---------------------------------------------------------------
# pos FILE TEXT: "LINE:COL" (1-based) of the first occurrence of TEXT in FILE.
pos() {
    awk -v t="$2" 'i = index($0, t) { print NR ":" i; exit }' "$1"
}
# want_error FILE TEXT_AT TEXT...: `ferry check` exits 2 with a line FILE:L:C: where L:C
# is where TEXT_AT is, containing every TEXT.
want_error() {
    local file=$1 at out rc=0 l t ok
    at=$(pos "$file" "$2")
    shift 2
    out=$(timeout 20 "$FERRY" check -c "$file" 2>&1) || rc=$?
    [ "$rc" -eq 2 ] || fail "ferry check $(basename "$file"): exit $rc, want 2: $out"
    while IFS= read -r l; do
        [[ $l == "$file:$at: "* ]] || continue
        ok=1
        for t in "$@"; do
            [[ $l == *"$t"* ]] || ok=0
        done
        [ "$ok" -eq 1 ] && return 0
    done <<<"$out"
    fail "ferry check $(basename "$file"): want '$file:$at: …' with $(printf '[%s] ' "$@"); got: $out"
}
bad_conf() {
    cat >"$dir/$1.yaml" <<YAML
plugins_dir: $PLUGINS
admin: off
destinations:
  - { Name: origin, Type: TCP, Address: "tcp://127.0.0.1:1", ProxyType: Internet }
listeners:
  - name: t1
    plugin: tcp
    listen: 127.0.0.1:1
    destination: origin
    $2
YAML
    echo "$dir/$1.yaml"
}
f=$(bad_conf cidr 'allow: [ "127.0.0.0/8", "10.0.0.0/33" ]')
want_error "$f" '"10.0.0.0/33"' "allow[1]" "prefix length must be 0 to 32"
f=$(bad_conf hostbits 'allow: [ "10.1.2.3/8" ]')
want_error "$f" '"10.1.2.3/8"' "host bits" "did you mean '10.0.0.0/8'"
f=$(bad_conf name 'allow: [ gateway.example ]')
want_error "$f" 'gateway.example' "not an address or CIDR"
f=$(bad_conf empty 'allow: []')
want_error "$f" '[]' "admits nobody"
f=$(bad_conf proxy 'proxy_protocol: v3')
want_error "$f" 'v3' "proxy_protocol" "did you mean"
f=$(bad_conf rate0 'rate: { per_client: 0 }')
want_error "$f" '0 }' "per_client" "from 1 to 1000000"
f=$(bad_conf ratekey 'rate: { per_client: 5, brust: 9 }')
want_error "$f" 'brust' "unknown key 'brust'" "did you mean 'burst'"
# A misspelt limit is an unknown key (left to the plugin, which reads no such option)
# with the core key suggested.
f=$(bad_conf alow 'alow: [ "10.0.0.0/8" ]')
want_error "$f" 'alow' "unknown key 'alow'" "did you mean 'allow'"

# --- the gateway ----------------------------------------------------------------------
start_origin echo echo
ep=$ORIGIN_PORT
start_http_origin web
hp=$HO_PORT
admin=$(free_port); la=$(free_port); l1=$(free_port); l2=$(free_port); lr=$(free_port)
ls5=$(free_port); lt=$(free_port)
access=$dir/access.log
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $access }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: echo, Type: TCP, Address: "tcp://127.0.0.1:$ep", ProxyType: Internet }
listeners:
  - name: allow4
    plugin: tcp
    listen: "[::]:$la"
    destination: echo
    allow: [ "127.0.0.0/8" ]
  - name: pp1
    plugin: tcp
    listen: 127.0.0.1:$l1
    destination: echo
    proxy_protocol: v1
    allow: [ "127.0.0.1", "192.0.2.0/24" ]
  - name: pp2
    plugin: http
    listen: 127.0.0.1:$l2
    mode: forward
    auth: none
    tenant: acme
    egress: [ "127.0.0.1:$hp" ]
    proxy_protocol: v2
  - name: rl
    plugin: http
    listen: 127.0.0.1:$lr
    mode: forward
    auth: none
    tenant: acme
    egress: [ "127.0.0.1:$hp" ]
    rate: { per_client: 1, burst: 3 }
  - name: s5
    plugin: socks5
    listen: 127.0.0.1:$ls5
    auth: none
    tenant: acme
    egress: [ "127.0.0.1:$ep" ]
    rate: { per_client: 1, burst: 1 }
  - name: rt
    plugin: tcp
    listen: 127.0.0.1:$lt
    destination: echo
    rate: { per_client: 1, burst: 1 }
YAML
start_ferry "$dir/gw.yaml" "$admin"

# --- 2. allow -------------------------------------------------------------------------
lim "allow4: 127.0.0.1 (mapped) admitted" echo --host 127.0.0.1 --port "$la" --send ping4
if python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.connect(("::1", '"$la"'))' 2>/dev/null; then
    need_metric "$admin" "$(refused_series allow4 not-allowed)" -ge 0
    before=$(metric "$admin" "$(refused_series allow4 not-allowed)")
    lim "allow4: ::1 refused" refused --host ::1 --port "$la" --send "hello"
    need_metric "$admin" "$(refused_series allow4 not-allowed)" -gt "$before"
    grep -q '"reason":"not-allowed"' "$FERRY_LOG" || fail "no 'client refused' log line"
    # A flood is counted whole but logged at most once a second per worker (2).
    before=$(metric "$admin" "$(refused_series allow4 not-allowed)")
    lines=$(grep -c '"msg":"client refused","listener":"allow4"' "$FERRY_LOG" || true)
    lim "allow4: 30 refusals" refused --host ::1 --port "$la" --count 30
    need_metric "$admin" "$(refused_series allow4 not-allowed)" -eq $((before + 30))
    secs=$(jq -r '.elapsed | ceil' <<<"$LIM_OUT")
    lines=$(($(grep -c '"msg":"client refused","listener":"allow4"' "$FERRY_LOG") - lines))
    [ "$lines" -le $((2 * (secs + 1))) ] ||
        fail "allow4: $lines log lines for 30 refusals in ${secs}s: want at most one a second per worker"
else
    echo "listener_limits.sh: no IPv6 loopback here: the ::1 half of 2 is skipped" >&2
fi

# --- 3. proxy_protocol v1 -------------------------------------------------------------
lim "pp1: v1 header" echo --port "$l1" --proxy v1 --src 192.0.2.10 --sport 51234 --send "via-v1"
wait_access "$access" pp1 1 10
got=$(access_field "$access" pp1 client 1)
[ "$got" = "192.0.2.10:51234" ] || fail "pp1: access log client '$got', want 192.0.2.10:51234"
lim "pp1: v1 TCP6 header, outside allow" refused --port "$l1" \
    --send "$(printf 'PROXY TCP6 2001:db8::1 ::1 4000 80\r\nhi')"
need_metric "$admin" "$(refused_series pp1 not-allowed)" -ge 1
lim "pp1: no header" refused --port "$l1" --send "$(printf 'GET / HTTP/1.1\r\n\r\n')"
need_metric "$admin" "$(refused_series pp1 proxy-header)" -ge 1

# --- 4. proxy_protocol v2 on http -----------------------------------------------------
lim "pp2: v2 header" http --port "$l2" --proxy v2 --src 203.0.113.5 --sport 44444 \
    --url "http://127.0.0.1:$hp/echo" --expect-status 200
wait_access "$access" pp2 1 10
got=$(access_field "$access" pp2 client 1)
[ "$got" = "203.0.113.5:44444" ] || fail "pp2: access log client '$got', want 203.0.113.5:44444"
lim "pp2: v2 LOCAL" http --port "$l2" --proxy v2-local --url "http://127.0.0.1:$hp/echo" \
    --expect-status 200
# The origin saw who the client was (X-Forwarded-For): the header's, then the socket's.
grep -q '"X-Forwarded-For", "203.0.113.5"' "$HO_LOG" || fail "pp2: no X-Forwarded-For 203.0.113.5"
grep -q '"X-Forwarded-For", "127.0.0.1"' "$HO_LOG" || fail "pp2: LOCAL: no X-Forwarded-For 127.0.0.1"
lim "pp2: a v1 header on a v2 listener" refused --port "$l2" \
    --send "$(printf 'PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n')"

# --- 5. rate on http ------------------------------------------------------------------
lim "rl: the burst, then over the rate" http --port "$lr" --url "http://127.0.0.1:$hp/echo" \
    --count 4 --expect-status 429
[ "$(jq -c .statuses <<<"$LIM_OUT")" = "[200,200,200,429]" ] ||
    fail "rl: want 200 x 3 (the burst) then 429: $LIM_OUT"
[ "$(jq -r '.headers["ferry-error"]' <<<"$LIM_OUT")" = rate-limited ] ||
    fail "rl: 429 without ferry-error: rate-limited: $LIM_OUT"
[ "$(jq -r '.headers["retry-after"]' <<<"$LIM_OUT")" = 1 ] ||
    fail "rl: 429 without Retry-After: 1: $LIM_OUT"
need_metric "$admin" "$(refused_series rl rate-limited)" -ge 1
# A token comes back within a second (1 a second): poll, bounded, for the 200.
ok=0
for ((i = 0; i < 40; i++)); do
    st=$(python3 "$TOOLS/limits.py" http --port "$lr" --url "http://127.0.0.1:$hp/echo" 2>/dev/null |
         jq -r .status) || true
    if [ "$st" = 200 ]; then
        ok=1
        break
    fi
    sleep 0.1
done
[ "$ok" -eq 1 ] || fail "rl: no 200 again within 4 s after the 429"

# --- 6. rate on socks5 ----------------------------------------------------------------
lim "s5: one connection, then over the rate" socks --port "$ls5" --dport "$ep" --count 2 \
    --expect-reply 00,02 --send s5
need_metric "$admin" "$(refused_series s5 rate-limited)" -ge 1

# --- 7. rate on tcp: no error reply, the close ---------------------------------------
before=$(metric "$admin" "$(refused_series rt rate-limited)")
lim "rt: one connection, then over the rate" refused --port "$lt" --after-echo rt --send x
need_metric "$admin" "$(refused_series rt rate-limited)" -gt "$before"

stop_ferry
echo "listener_limits.sh: ok"
