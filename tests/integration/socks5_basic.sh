#!/usr/bin/env bash
# socks5_basic.sh: the socks5 listener without a tunnel: clients, authentication, the
# reply codes of direct routing, bad input, load, IPv6.
#
#   bash tests/integration/socks5_basic.sh [BUILD_DIR]     (default: build)
#
# One gateway (tenants acme and other, no connector anywhere), listener `socks` (auth
# tenant, egress: an HTTP origin, an echo origin, a closed port, nonexistent.invalid:80,
# [::1]:<v6 origin>; handshake_timeout_ms 2000) and listener `open` (auth none, tenant
# acme, egress: the HTTP origin).
# 1. curl --socks5-hostname and --socks5 with --proxy-user acme:acme-token, and PySocks
#    (rdns on and off), reach the HTTP origin; PySocks echoes through the echo origin;
#    the access log has tenant, target and outcome ok.
# 2. SAP 0x80: token + base64 location "" reaches an egress target; token + a location
#    with no connector (base64 and raw) authenticates (01 00) and gets 03 for a target
#    egress refuses; a bad 0x80 token gets 01 01 and the close.
# 3. Wrong password / unknown tenant: 01 01 and the close; only 0x00 offered on an auth
#    tenant listener: 05 FF and the close; the auth none listener takes 0x00 (curl and
#    raw) and refuses 0x02-only with 05 FF.
# 4. Replies (exact bytes): 03 (acme has no connector, egress refuses), 02 (port 0),
#    04 (nonexistent.invalid:80, allowed by egress), 05 (allowed closed port), 07 (BIND,
#    UDP ASSOCIATE), 08 (ATYP 5); each followed by the close. 04 also for an allowed
#    port whose connect hangs past handshake_timeout_ms (the default 5 s connect
#    timeout decides, not the handshake deadline).
# 5. Bad greetings (version 4, NMETHODS 0, garbage, a 70 KiB 0x80 token claim, bad
#    sub-negotiation version, truncated then silent, trickled) are closed (the silent
#    and trickled ones by the 2 s handshake timeout, not later than a loaded machine's
#    20 s, nor after 30 s of trickling); a good connection
#    works after each, and one opened before them all still echoes afterwards.
# 6. 500 concurrent SOCKS5 connections each echo a distinct payload; then
#    ferry_listener_connections_active{listener="socks"} is back to 0.
# 7. ATYP 4 (::1) reaches an origin on [::1] allowed by egress "[::1]:PORT" (skipped
#    with a message when IPv6 loopback is unavailable).
# ferry exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/socks5_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/socks5_lib.sh"

dir=$(tmpdir)
mkdir "$dir/www"
echo "hello from the socks5 origin" >"$dir/www/index.txt"
http_origin http-origin "$dir/www"
hp=$HTTP_PORT
start_origin echo-origin echo
ep=$ORIGIN_PORT
closed=$(free_port)           # nothing listens there
# A port whose connects hang (for "04 on a connect timeout"), if the host can make one.
bh=""
start_bg blackhole "$S5_PY" "$TOOLS/socks5.py" blackhole --port-file "$dir/bhport"
if wait_file "$dir/bhport" 10 "$BG_PID"; then
    bh=$(cat "$dir/bhport")
else
    echo "note: no hanging port ($(cat "$(bg_log blackhole)")); the connect-timeout check is skipped" >&2
fi
bh_egress=""
[ -z "$bh" ] || bh_egress=", \"127.0.0.1:$bh\""
denied=$(free_port)           # not in egress

# IPv6 loopback origin, if the host has one.
v6=""
start_bg origin6 "$S5_PY" "$TOOLS/socks5.py" origin6 --port-file "$dir/v6port" --prefix "v6:"
v6_pid=$BG_PID
if wait_file "$dir/v6port" 10 "$v6_pid"; then
    v6=$(cat "$dir/v6port")
else
    echo "note: IPv6 loopback unavailable ($(cat "$(bg_log origin6)")); the ::1 check is skipped" >&2
fi

v6_egress=""
[ -z "$v6" ] || v6_egress=", \"[::1]:$v6\""
admin=$(free_port)
ls_socks=$(free_port)
ls_open=$(free_port)
access=$dir/access.log
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: debug, access: $access }
admin: { listen: 127.0.0.1:$admin }
drain_timeout_ms: 3000
tenants: [ { id: acme, token: acme-token }, { id: other, token: other-token } ]
listeners:
  - name: socks
    plugin: socks5
    listen: 127.0.0.1:$ls_socks
    auth: tenant
    egress: [ "127.0.0.1:$hp", "127.0.0.1:$ep", "127.0.0.1:$closed", "nonexistent.invalid:80"$v6_egress$bh_egress ]
    handshake_timeout_ms: 2000
  - name: open
    plugin: socks5
    listen: 127.0.0.1:$ls_open
    auth: none
    tenant: acme
    egress: [ "127.0.0.1:$hp" ]
YAML
out=$("$FERRY" check -c "$dir/ferry.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_ferry "$dir/ferry.yaml" "$admin"
UP=(--user acme --password acme-token)
# hx TEXT: TEXT as hex.
hx() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# --- 1. real clients -------------------------------------------------------------------
curl_socks "curl --socks5-hostname" "hello from the socks5 origin" \
    --socks5-hostname "127.0.0.1:$ls_socks" --proxy-user acme:acme-token "http://127.0.0.1:$hp/index.txt"
curl_socks "curl --socks5" "hello from the socks5 origin" \
    --socks5 "127.0.0.1:$ls_socks" --proxy-user acme:acme-token "http://127.0.0.1:$hp/index.txt"
curl_socks "curl -x socks5h://acme:acme-token@" "hello from the socks5 origin" \
    -x "socks5h://acme:acme-token@127.0.0.1:$ls_socks" "http://127.0.0.1:$hp/index.txt"
s5 "PySocks rdns" pysocks --port "$ls_socks" "${UP[@]}" --rdns 1 --host 127.0.0.1 \
    --dport "$hp" --http /index.txt --expect-body "hello from the socks5 origin"
s5 "PySocks local resolution" pysocks --port "$ls_socks" "${UP[@]}" --rdns 0 --host 127.0.0.1 \
    --dport "$hp" --http /index.txt --expect-body "hello from the socks5 origin"
s5 "PySocks echo" pysocks --port "$ls_socks" "${UP[@]}" --host 127.0.0.1 --dport "$ep" \
    --echo "pysocks-echo"
s5 "raw user/password, domain ATYP" handshake --port "$ls_socks" "${UP[@]}" --atyp domain \
    --host 127.0.0.1 --dport "$ep" --echo "domain-atyp"
wait_access "$access" socks 6 5
n=$(access_count "$access" listener=socks tenant=acme "target=127.0.0.1:$hp" outcome=ok)
[ "$n" -ge 5 ] || fail_later "access log: want >= 5 lines with tenant acme, target 127.0.0.1:$hp," \
    "outcome ok; got $n: $(tail -n 3 "$access")"

# --- 2. SAP 0x80 -----------------------------------------------------------------------
s5 "0x80, default location, egress target" handshake --port "$ls_socks" --methods 80 \
    --token acme-token --location "" --dport "$ep" --echo "sap-default"
s5 "0x80 offered with 0x02: 0x80 preferred" handshake --port "$ls_socks" --methods 0280 \
    --token acme-token --expect-method 0580 --dport "$ep" --echo "sap-preferred"
s5 "0x80, base64 location without a connector" handshake --port "$ls_socks" --methods 80 \
    --token acme-token --location nowhere --dport "$denied" --expect-reply "$(reply 03)"
s5 "0x80, raw location without a connector" handshake --port "$ls_socks" --methods 80 \
    --token acme-token --location nowhere --location-raw --dport "$denied" --expect-reply "$(reply 03)"
s5 "0x80, location set, egress target still direct" handshake --port "$ls_socks" --methods 80 \
    --token acme-token --location nowhere --dport "$ep" --echo "sap-direct"
s5 "0x80, wrong token" handshake --port "$ls_socks" --methods 80 --token nope --expect-auth 0101
s5 "0x80, other tenant's token" handshake --port "$ls_socks" --methods 80 --token other-token \
    --location "" --dport "$denied" --expect-reply "$(reply 03)"

# --- 3. authentication failures, auth none ---------------------------------------------
s5 "wrong password" handshake --port "$ls_socks" --user acme --password wrong --expect-auth 0101
s5 "unknown tenant" handshake --port "$ls_socks" --user nobody --password acme-token --expect-auth 0101
s5 "other tenant's token as acme" handshake --port "$ls_socks" --user acme --password other-token \
    --expect-auth 0101
s5 "empty user" handshake --port "$ls_socks" --user "" --password acme-token --expect-auth 0101
s5 "only 0x00 offered on auth tenant" handshake --port "$ls_socks" --methods 00 --expect-method 05ff
s5 "only 0x01 (GSSAPI) offered" handshake --port "$ls_socks" --methods 01 --expect-method 05ff
curl_socks "curl --socks5 to the auth none listener" "hello from the socks5 origin" \
    --socks5-hostname "127.0.0.1:$ls_open" "http://127.0.0.1:$hp/index.txt"
s5 "auth none, raw 0x00" handshake --port "$ls_open" --methods 00 --dport "$hp" \
    --http /index.txt --expect-body "hello from the socks5 origin"
s5 "auth none: tenant acme's egress only" handshake --port "$ls_open" --methods 00 --dport "$ep" \
    --expect-reply "$(reply 03)"
s5 "auth none, only 0x02 offered" handshake --port "$ls_open" --methods 02 --expect-method 05ff

# --- 4. reply codes --------------------------------------------------------------------
s5 "03: no connector for acme, egress refuses" handshake --port "$ls_socks" "${UP[@]}" \
    --dport "$denied" --expect-reply "$(reply 03)"
s5 "03: domain target not allowed, no connector" handshake --port "$ls_socks" "${UP[@]}" \
    --atyp domain --host not-allowed.example --dport 80 --expect-reply "$(reply 03)"
s5 "02: port 0" handshake --port "$ls_socks" "${UP[@]}" --dport 0 --expect-reply "$(reply 02)"
s5 "04: nonexistent.invalid (allowed by egress)" handshake --port "$ls_socks" "${UP[@]}" \
    --atyp domain --host nonexistent.invalid --dport 80 --expect-reply "$(reply 04)"
s5 "05: allowed closed port" handshake --port "$ls_socks" "${UP[@]}" --dport "$closed" \
    --expect-reply "$(reply 05)"
s5 "05: allowed closed port by name" handshake --port "$ls_socks" "${UP[@]}" --atyp domain \
    --host 127.0.0.1 --dport "$closed" --expect-reply "$(reply 05)"
if [ -n "$bh" ]; then
    # handshake_timeout_ms (2000) is shorter than the connect timeout (default 5000): the
    # handshake is over when the request is in, so the dial's own timeout decides: 04.
    s5 "04: connect timeout (allowed port that never answers)" handshake --port "$ls_socks" \
        "${UP[@]}" --dport "$bh" --timeout 8 --expect-reply "$(reply 04)"
else
    echo "SKIP: 04 on a connect timeout: no hanging port on this host" >&2
fi
s5 "07: BIND" handshake --port "$ls_socks" "${UP[@]}" --cmd 2 --dport "$ep" \
    --expect-reply "$(reply 07)"
s5 "07: UDP ASSOCIATE" handshake --port "$ls_socks" "${UP[@]}" --cmd 3 --dport "$ep" \
    --expect-reply "$(reply 07)"
s5 "08: ATYP 5" handshake --port "$ls_socks" "${UP[@]}" --atyp 5 --dport "$ep" \
    --expect-reply "$(reply 08)"
n=$(access_count "$access" listener=socks tenant=acme "target=127.0.0.1:$closed")
[ "$n" -ge 2 ] || fail_later "access log: want the refused 127.0.0.1:$closed connections (tenant" \
    "acme) logged, got $n line(s)"
n=$(access_count "$access" listener=socks tenant=acme "target=127.0.0.1:$closed" outcome=ok)
[ "$n" -eq 0 ] || fail_later "access log: a refused connection to 127.0.0.1:$closed has outcome ok"
n=$(access_count "$access" listener=socks tenant=acme "target=nonexistent.invalid:80")
[ "$n" -ge 1 ] || fail_later "access log: no line with target nonexistent.invalid:80"

# --- 5. malformed input ----------------------------------------------------------------
hold_ready=$dir/hold.ready
hold_go=$dir/hold.go
start_bg hold "$S5_PY" "$TOOLS/socks5.py" hold --port "$ls_socks" "${UP[@]}" --dport "$ep" \
    --ready-file "$hold_ready" --go-file "$hold_go" --timeout 250
hold_pid=$BG_PID
wait_file "$hold_ready" 10 "$hold_pid" || fail "held connection: not ready: $(cat "$(bg_log hold)")"

good() {
    s5 "good connection after $1" handshake --port "$ls_socks" "${UP[@]}" --dport "$ep" --echo "after"
}
s5 "version 4 greeting" raw --port "$ls_socks" --send 040100507f00000100 --expect ""
good "version 4"
s5 "NMETHODS 0" raw --port "$ls_socks" --send 0500 --expect ""
good "NMETHODS 0"
s5 "garbage" raw --port "$ls_socks" --send "$(printf 'de%.0s' {1..64})ad" --expect ""
good "garbage"
s5 "HTTP request to the socks port" raw --port "$ls_socks" \
    --send "$(hx "$(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')")" --expect ""
good "an HTTP request"
s5 "70 KiB 0x80 token claim" raw --port "$ls_socks" --send 050180 --send 0100011800 --expect 05800101
good "a 70 KiB token claim"
s5 "70 KiB 0x80 token claim, then the bytes" raw --port "$ls_socks" --send 050180 \
    --send 0100011800 --then-bytes 71680
good "a 70 KiB token sent"
s5 "4 GiB 0x80 token claim" raw --port "$ls_socks" --send 050180 --send 01ffffffff --expect 05800101
good "a 4 GiB token claim"
s5 "zero-length 0x80 token" raw --port "$ls_socks" --send 050180 --send 010000000000 --expect 05800101
good "a zero-length token"
s5 "sub-negotiation version 5" raw --port "$ls_socks" --send 050102 --send "0504$(hx acme)" --expect 05020101
good "a bad sub-negotiation version"
s5 "request version 4" raw --port "$ls_socks" --send 050102 \
    --send "0104$(hx acme)0a$(hx acme-token)" \
    --send 040100017f0000010050 --expect 05020100
good "a request with version 4"
s5 "truncated greeting, then silence" raw --port "$ls_socks" --send 0502 --timeout 3.5 \
    --min-elapsed 1.5 --expect ""
good "a truncated greeting"
s5 "truncated user/password, then silence" raw --port "$ls_socks" --send 050102 --send 0104ac \
    --timeout 20 --min-elapsed 1.5 --expect 0502
good "a truncated sub-negotiation"
s5 "truncated 0x80 token (claims 60000), then silence" raw --port "$ls_socks" --send 050180 \
    --send 010000ea60 --then-bytes 1000 --timeout 20 --min-elapsed 1.0 --expect 0580
good "a truncated 0x80 token"
trickle=()
# 100 bytes at 0.3 s: 30 s of trickling. A deadline renewed per byte would keep the
# connection open past the client's 25 s; the 2 s handshake timeout ends it long before.
for ((i = 0; i < 100; i++)); do trickle+=(--send 01); done
s5 "greeting of 255 methods trickled one byte per 0.3 s" raw --port "$ls_socks" --send 05 \
    --send ff "${trickle[@]}" --trickle 0.3 --timeout 25 --min-elapsed 1.5 --expect ""
good "a trickled greeting"
touch "$hold_go"
if wait_exit "$hold_pid" 10; then
    [ "$WAIT_RC" -eq 0 ] || fail_later "the connection opened before the bad ones broke:" \
        "$(cat "$(bg_log hold)")"
else
    fail_later "the held connection did not finish within 10 s of its go signal"
fi
kill -0 "$FERRY_PID" 2>/dev/null || fail "ferry died during the malformed-input checks"

# --- 6. 500 concurrent connections ----------------------------------------------------
s5 "500 concurrent" many --port "$ls_socks" "${UP[@]}" --dport "$ep" --n 500 --size 2048 --timeout 40
echo "500 concurrent: $S5_OUT" >&2
wait_metric "$admin" 'ferry_listener_connections_active{listener="socks"}' -eq 0 10 ||
    fail_later "/metrics: ferry_listener_connections_active{listener=\"socks\"} is" \
        "$(metric "$admin" 'ferry_listener_connections_active{listener="socks"}') 10 s after" \
        "the 500 connections ended, want 0"
good "500 concurrent connections"

# --- 7. IPv6 target --------------------------------------------------------------------
if [ -n "$v6" ]; then
    s5 "ATYP 4 ::1 (egress [::1]:$v6)" handshake --port "$ls_socks" "${UP[@]}" --atyp ipv6 \
        --host ::1 --dport "$v6" --echo "six" --expect-echo "v6:six"
    s5 "PySocks to ::1 (egress [::1]:$v6)" pysocks --port "$ls_socks" "${UP[@]}" --host ::1 \
        --dport "$v6" --echo "six" --expect-echo "v6:six"
else
    echo "SKIP: IPv6 target: no IPv6 loopback on this host" >&2
fi

stop_ferry
fail_deferred
echo "ok: curl, PySocks and raw SOCKS5 clients; user/password and 0x80; replies 02 03 04" \
     "05 07 08 and 05 FF; bad greetings closed, the server unharmed; 500 concurrent;" \
     "IPv6 ${v6:+checked}${v6:-skipped}"
