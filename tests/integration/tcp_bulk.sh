#!/usr/bin/env bash
# tcp_bulk.sh: 100 MiB through a tcp listener each way, byte for byte.
#
#   bash tests/integration/tcp_bulk.sh [BUILD_DIR]     (default: build)
#
# 1. Upload: client -> ferry -> `sink` origin; the origin's sha256 of what it received
#    must equal sha256sum of the file sent (100 MiB from /dev/urandom).
# 2. Download: `source` origin sends another 100 MiB file -> ferry -> client; the
#    client's sha256 must equal the file's.
# 3. The access log line of each connection counts exactly those bytes (bytes_in for
#    the upload, bytes_out for the download), outcome "ok"; /metrics byte counters of
#    the listener and the destination are >= 100 MiB each way.
# 4. ferry exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"

SIZE=$((100 * 1024 * 1024))
dir=$(tmpdir)
head -c "$SIZE" /dev/urandom >"$dir/up.bin"
head -c "$SIZE" /dev/urandom >"$dir/down.bin"
up_sha=$(sha256sum "$dir/up.bin" | cut -d' ' -f1)
down_sha=$(sha256sum "$dir/down.bin" | cut -d' ' -f1)

start_origin sink sink
sink_port=$ORIGIN_PORT
start_origin source source --file "$dir/down.bin"
source_port=$ORIGIN_PORT

admin=$(free_port)
lup=$(free_port)
ldown=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$admin }
drain_timeout_ms: 5000
tenants: [ { id: acme, token: t0k } ]
destinations:
  - { Name: sink, Type: TCP, Address: "tcp://127.0.0.1:$sink_port", ProxyType: Internet }
  - { Name: source, Type: TCP, Address: "tcp://127.0.0.1:$source_port", ProxyType: Internet }
listeners:
  - { name: up, plugin: tcp, listen: "127.0.0.1:$lup", destination: sink }
  - { name: down, plugin: tcp, listen: "127.0.0.1:$ldown", destination: source }
YAML
start_ferry "$dir/ferry.yaml" "$admin"

# --- 1. upload -----------------------------------------------------------------------
client upload "$dir/up.bin" --port "$lup" --timeout 45
res=$CLIENT_OUT
reply=$(json_get "$res" reply)
[ "$reply" = "$SIZE $up_sha" ] \
    || fail "upload: the origin received [$reply], want [$SIZE $up_sha]"

# --- 2. download ---------------------------------------------------------------------
client download --port "$ldown" --timeout 45
res=$CLIENT_OUT
got="$(json_get "$res" received) $(json_get "$res" sha256)"
[ "$got" = "$SIZE $down_sha" ] \
    || fail "download: the client received [$got], want [$SIZE $down_sha]"

# --- 3. access log and metrics -------------------------------------------------------
wait_access "$dir/access.log" up 1 5
wait_access "$dir/access.log" down 1 5
v=$(access_field "$dir/access.log" up bytes_in)
[ "$v" = "$SIZE" ] || fail "access log: upload bytes_in=$v, want $SIZE"
v=$(access_field "$dir/access.log" up destination)
[ "$v" = sink ] || fail "access log: upload destination=$v, want sink"
v=$(access_field "$dir/access.log" up outcome)
[ "$v" = ok ] || fail "access log: upload outcome=$v, want ok"
v=$(access_field "$dir/access.log" down bytes_out)
[ "$v" = "$SIZE" ] || fail "access log: download bytes_out=$v, want $SIZE"
v=$(access_field "$dir/access.log" down outcome)
[ "$v" = ok ] || fail "access log: download outcome=$v, want ok"
for f in client target duration_ms; do
    v=$(access_field "$dir/access.log" down "$f")
    [ -n "$v" ] || fail "access log: download line has no $f"
done
v=$(access_field "$dir/access.log" down target)
[ "$v" = "127.0.0.1:$source_port" ] || fail "access log: download target=$v, want 127.0.0.1:$source_port"

need_metric "$admin" 'ferry_listener_bytes_received_total{listener="up"}' -ge "$SIZE"
need_metric "$admin" 'ferry_listener_bytes_sent_total{listener="down"}' -ge "$SIZE"
need_metric "$admin" 'ferry_destination_bytes_received_total{destination="sink"}' -ge "$SIZE"
need_metric "$admin" 'ferry_destination_bytes_sent_total{destination="source"}' -ge "$SIZE"
need_metric "$admin" 'ferry_listener_connections_total{listener="up"}' -eq 1
need_metric "$admin" 'ferry_listener_connections_active{listener="up"}' -eq 0
need_metric "$admin" 'ferry_listener_connections_active{listener="down"}' -eq 0

# --- 4. clean exit -------------------------------------------------------------------
stop_ferry
echo "ok: 100 MiB up and 100 MiB down intact through ferry; access log and metrics count them"
