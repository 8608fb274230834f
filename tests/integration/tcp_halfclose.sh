#!/usr/bin/env bash
# tcp_halfclose.sh: a FIN in one direction is passed on; the other direction goes on.
#
#   bash tests/integration/tcp_halfclose.sh [BUILD_DIR]     (default: build)
#
# 1. Client half-closes first: the client sends 1 MiB and shutdown(SHUT_WR); the origin
#    reads to EOF, then answers "<bytes> <sha256>" of the request plus 2 MiB of seeded
#    data and closes. The client, already half-closed, must receive all of it.
# 2. Origin half-closes first: the origin sends 1 MiB and shutdown(SHUT_WR); the client
#    reads to EOF, then sends 3 MiB and half-closes; the origin must receive all of it
#    (its sha256 in the origin's report) and both sides see EOF.
# 3. An origin that speaks first and closes at once: 3 x 100 connections at once, while
#    ferry runs at nice 19 on the CPU of a busy loop, so the origin's bytes and FIN are
#    often already queued when ferry hears that its connect finished. Each must bring
#    all 16 KiB and the EOF (the connect's wake-up carried the only edge; a relay that
#    ignored it waited forever).
# 4. Both connections are logged with outcome "ok"; ferry exits 0, no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"

dir=$(tmpdir)
start_origin replier reply-after-eof --bytes $((2 << 20)) --seed 11
reply_port=$ORIGIN_PORT
start_origin halfcloser halfclose-first --bytes $((1 << 20)) --seed 12
hc_port=$ORIGIN_PORT
hc_report=$ORIGIN_REPORT
start_origin speaker source --bytes $((16 << 10)) --seed 13
speak_port=$ORIGIN_PORT

admin=$(free_port)
l1=$(free_port)
l2=$(free_port)
l3=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$admin }
drain_timeout_ms: 5000
tenants: [ { id: acme, token: t0k } ]
destinations:
  - { Name: replier, Type: TCP, Address: "tcp://127.0.0.1:$reply_port", ProxyType: Internet }
  - { Name: halfcloser, Type: TCP, Address: "tcp://127.0.0.1:$hc_port", ProxyType: Internet }
  - { Name: speaker, Type: TCP, Address: "tcp://127.0.0.1:$speak_port", ProxyType: Internet }
listeners:
  - { name: client-first, plugin: tcp, listen: "127.0.0.1:$l1", destination: replier }
  - { name: origin-first, plugin: tcp, listen: "127.0.0.1:$l2", destination: halfcloser }
  - { name: speak-first, plugin: tcp, listen: "127.0.0.1:$l3", destination: speaker }
YAML
start_ferry "$dir/ferry.yaml" "$admin"

# --- 1. the client half-closes first -------------------------------------------------
client request-then-halfclose --port "$l1" --bytes $((1 << 20)) --seed 21 \
    --reply-bytes $((2 << 20)) --reply-seed 11 --timeout 15

# --- 2. the origin half-closes first -------------------------------------------------
client keep-sending --port "$l2" --greeting-bytes $((1 << 20)) --greeting-seed 12 \
    --bytes $((3 << 20)) --seed 22 --timeout 15
want_sha=$(json_get "$CLIENT_OUT" sent_sha256)
wait_file "$hc_report" 5 || fail "the half-closing origin reported no connection"
got=$(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); print(r["received"], r["sha256"], r["result"])' "$hc_report")
[ "$got" = "$((3 << 20)) $want_sha ok" ] \
    || fail "after its own half-close the origin received [$got], want [$((3 << 20)) $want_sha ok]"

# --- 3. the origin speaks first and closes, ferry short of CPU --------------------------
speak_first_starved "$l3" 60 "$FERRY_PID"

# --- 4. access log, clean exit -------------------------------------------------------
wait_access "$dir/access.log" client-first 1 5
wait_access "$dir/access.log" origin-first 1 5
for l in client-first origin-first; do
    v=$(access_field "$dir/access.log" "$l" outcome)
    [ "$v" = ok ] || fail "access log: $l outcome=$v, want ok"
done
v=$(access_field "$dir/access.log" origin-first bytes_in)
[ "$v" = $((3 << 20)) ] || fail "access log: origin-first bytes_in=$v, want $((3 << 20))"
v=$(access_field "$dir/access.log" origin-first bytes_out)
[ "$v" = $((1 << 20)) ] || fail "access log: origin-first bytes_out=$v, want $((1 << 20))"
need_metric "$admin" 'ferry_listener_connections_active{listener="client-first"}' -eq 0
need_metric "$admin" 'ferry_listener_connections_active{listener="origin-first"}' -eq 0

stop_ferry
echo "ok: half-close passed on both ways; the other direction delivered every byte"
