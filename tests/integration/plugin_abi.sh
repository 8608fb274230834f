#!/usr/bin/env bash
# plugin_abi.sh: plugin ABI 1.3 grows safely (issue 12 item 6).
#
#   bash tests/integration/plugin_abi.sh [BUILD_DIR]     (default: build)
#
# 1. Plugins built against the 1.1 headers (tests/fixtures/abi-1.1, as they were) load
#    and carry traffic: examples/plugin-hello greets; tests/fixtures/plugins/relay11.c
#    relays to an OnPremise TCP destination through a connector. relay11's 1.1
#    ferry_target is followed in memory by a pointer to "http": a core that read
#    `protocol` (1.2) past its end would ask the connector for an HTTP stream to a TCP
#    system and be refused; it must default to the destination's TCP.
#    tests/fixtures/plugins/http11.c parses HTTP with the structs 1.1 had plugins
#    allocate (ferry_http_req_init, ferry_http_parse_request, ferry_http_chunked_*),
#    which 1.3 keeps exported with that layout: curl's GET and chunked POST answered.
# 2. A plugin declaring the next ABI minor that calls a function this ferry lacks
#    (tests/fixtures/plugins/future.c) is refused by `ferry check` and by `ferry
#    gateway` with exit 2 and "built for ferry plugin ABI 1.N+1, this ferry provides 1.N",
#    not the dynamic linker's "undefined symbol".
# 3. A 1.3 plugin (tests/fixtures/plugins/abitest.c): its timer answers, a cancelled
#    timer and one pending at close never fire, its cleanups run 3, 2, 1 and then the old
#    on_free slot, and its counter shows in /metrics with a plugin label after traffic.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"

FIX=$SRC_ROOT/tests/fixtures
dir=$(tmpdir)
plugdir=$dir/plugins
mkdir "$plugdir"

# build NAME SOURCE INCLUDE_DIR: a plugin the way an author builds one, against INCLUDE_DIR.
build() {
    cc -std=c11 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -I"$3" \
        -o "$plugdir/ferry_$1.so" "$2" 2>"$dir/cc-$1.log" \
        || { cat "$dir/cc-$1.log" >&2; fail "building $1 from $2 against $3 failed"; }
}
build hello "$SRC_ROOT/examples/plugin-hello/hello.c" "$FIX/abi-1.1"
build relay11 "$FIX/plugins/relay11.c" "$FIX/abi-1.1"
build http11 "$FIX/plugins/http11.c" "$FIX/abi-1.1"
build abitest "$FIX/plugins/abitest.c" "$SRC_ROOT/core/include"
grep -q 'FERRY_PLUGIN_ABI_MINOR 1 ' "$FIX/abi-1.1/ferry/plugin.h" \
    || fail "the fixture headers are not ABI 1.1"

# --- 1 and 3: one gateway, one connector ------------------------------------------
make_ca "$dir" ca
make_cert "$dir" gw ca
start_origin echo echo
echo_port=$ORIGIN_PORT
gw_admin=$(free_port)
cn_admin=$(free_port)
tport=$(free_port)
lhello=$(free_port)
lrelay=$(free_port)
labi=$(free_port)
lh11=$(free_port)
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $plugdir
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$gw_admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: echo, Type: TCP, Address: "tcp://echo.internal:3302", ProxyType: OnPremise, tenant: acme }
listeners:
  - { name: hello, plugin: hello, listen: "127.0.0.1:$lhello", greeting: "hi from 1.1\n" }
  - { name: relay, plugin: relay11, listen: "127.0.0.1:$lrelay", destination: echo }
  - { name: abi, plugin: abitest, listen: "127.0.0.1:$labi" }
  - { name: h11, plugin: http11, listen: "127.0.0.1:$lh11" }
YAML
cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
systems:
  - { virtual: echo.internal:3302, internal: 127.0.0.1:$echo_port, protocol: TCP }
YAML
out=$("$FERRY" check -c "$dir/gw.yaml" 2>&1) || fail "ferry check refused the 1.1/1.3 plugins: $out"
start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "connector /readyz is $(readyz "$cn_admin"), want 200"
need_metric "$gw_admin" 'ferry_tunnels{tenant="acme",location=""}' -eq 2 10

# 1a. hello, built against 1.1, greets.
got=$(timeout 10 socat -u "TCP:127.0.0.1:$lhello" - || true)
[ "$got" = "hi from 1.1" ] || fail "hello (ABI 1.1): got [$got], want [hi from 1.1]"

# 1b. relay11, built against 1.1, relays through the tunnel: protocol defaults to TCP.
for i in 1 2 3; do
    got=$(printf 'ping %s\n' "$i" | timeout 10 socat -t 5 - "TCP:127.0.0.1:$lrelay" || true)
    [ "$got" = "ping $i" ] || fail "relay11 (ABI 1.1) through the tunnel: got [$got], want" \
        "[ping $i]; connector: $(grep -E 'denied|protocol' "$cn_log" | tail -n 3)"
done
[ "$(audit_count "$dir/audit.jsonl" outcome=ok protocol=TCP)" -ge 3 ] \
    || fail "connector audit: want 3 TCP streams with outcome ok: $(tail -n 3 "$dir/audit.jsonl")"

# 1c. http11, built against 1.1, parses with the parser structs it allocates itself.
got=$(curl -s --max-time 10 "http://127.0.0.1:$lh11/some/path?q=1" || true)
[ "$got" = "GET /some/path " ] || fail "http11 (ABI 1.1 parser): got [$got], want [GET /some/path ]"
got=$(curl -s --max-time 10 -H 'Transfer-Encoding: chunked' --data-binary 'hello chunks' \
      "http://127.0.0.1:$lh11/up" || true)
[ "$got" = "POST /up hello chunks" ] \
    || fail "http11 (ABI 1.1 chunked decoder): got [$got], want [POST /up hello chunks]"

# 3. abitest: timers, cleanups, counter.
got=$(printf 'tick\n' | timeout 10 socat -t 5 - "TCP:127.0.0.1:$labi" || true)
[ "$got" = "tick" ] || fail "abitest: the timer did not answer: got [$got], want [tick]"
wait_log "$gw_log" '"msg":"abitest: cleanup".*"n":0' 5 "$gw_pid" \
    || fail "abitest: the connection's cleanups did not run"
order=$(grep -o '"msg":"abitest: cleanup".*"n":[0-9]*' "$gw_log" | grep -o '"n":[0-9]*$' \
        | tr -d '"n:' | tr '\n' ' ')
[ "$order" = "3 2 1 0 " ] || fail "abitest: cleanups ran in order [$order], want [3 2 1 0 ]"
for i in 2 3 4 5; do
    got=$(printf 'tick\n' | timeout 10 socat -t 5 - "TCP:127.0.0.1:$labi" || true)
    [ "$got" = "tick" ] || fail "abitest: tick $i: got [$got]"
done
need_metric "$gw_admin" 'ferry_plugin_ticks_total{plugin="abitest"}' -eq 5 5
metrics=$(curl -s --max-time 2 "http://127.0.0.1:$gw_admin/metrics")
grep -q '^# TYPE ferry_plugin_ticks_total counter$' <<<"$metrics" \
    || fail "/metrics: no '# TYPE ferry_plugin_ticks_total counter'"
# `late` (10 s) was pending at every close; `never` was cancelled. Give a stray one the
# time `never` would have needed, then none may have fired.
wait_log "$gw_log" '"msg":"abitest: timer fired"' 1 "$gw_pid" \
    && fail "abitest: a cancelled timer fired: $(grep 'timer fired' "$gw_log" | head -n 2)"

stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway

# --- 2. a plugin for the next ABI minor ------------------------------------------------
minor=$(awk '$2 == "FERRY_PLUGIN_ABI_MINOR" { print $3 }' "$SRC_ROOT/core/include/ferry/plugin.h")
build future "$FIX/plugins/future.c" "$SRC_ROOT/core/include"
bad=$(free_port)
cat >"$dir/future.yaml" <<YAML
plugins_dir: $plugdir
admin: { listen: 127.0.0.1:$(free_port) }
tenants: [ { id: acme, token: acme-token } ]
listeners:
  - { name: future, plugin: future, listen: "127.0.0.1:$bad" }
YAML
want="plugin $plugdir/ferry_future.so: built for ferry plugin ABI 1.$((minor + 1)), this ferry provides 1.$minor"
for cmd in check gateway; do
    rc=0
    out=$(timeout 20 "$FERRY" "$cmd" -c "$dir/future.yaml" 2>&1) || rc=$?
    [ "$rc" -eq 2 ] || fail "ferry $cmd with an ABI 1.$((minor + 1)) plugin: exit $rc (want 2): $out"
    grep -qF "$want" <<<"$out" || fail "ferry $cmd: want [$want] in: $out"
    grep -q "undefined symbol" <<<"$out" && fail "ferry $cmd: the dynamic linker spoke first: $out"
done

echo "ok: 1.1 plugins load and carry traffic (hello, relay11 through a tunnel, http11);" \
     "ABI 1.$((minor + 1)) refused with both versions; 1.3 timers, cleanup order and counters work"
