#!/usr/bin/env bash
# tcp_errors.sh: what a tcp client sees when the upstream cannot be had, and the limits.
#
#   bash tests/integration/tcp_errors.sh [BUILD_DIR]     (default: build)
#
# 1. Destination on a closed port: the client's connection ends within 2 s with no
#    data; access log outcome is not "ok"; connections_failed_total becomes 1
#    (listener and destination).
# 2. Destination host `nonexistent.invalid`: the same, within the connect timeout.
# 3. max_connections: 2 with 2 idle relayed connections held: a 3rd is accepted and
#    closed at once (EOF/RST, no data); connections_rejected_total = 1; the 2 held
#    ones still echo.
# 4. idle_timeout_ms: 500: a relayed connection left idle is closed by ferry within 2 s
#    (not before ~0.5 s); access log outcome "idle-timeout".
# 5. ferry exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"

CONNECT_TIMEOUT_MS=3000
dir=$(tmpdir)
start_origin echo echo
closed=$(free_port)          # nothing listens here
admin=$(free_port)
l_refused=$(free_port)
l_dns=$(free_port)
l_max=$(free_port)
l_idle=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$admin }
drain_timeout_ms: 5000
tenants: [ { id: acme, token: t0k } ]
destinations:
  - { Name: closed, Type: TCP, Address: "tcp://127.0.0.1:$closed", ProxyType: Internet }
  - { Name: nxdomain, Type: TCP, Address: "tcp://nonexistent.invalid:80", ProxyType: Internet }
  - { Name: origin, Type: TCP, Address: "tcp://127.0.0.1:$ORIGIN_PORT", ProxyType: Internet }
listeners:
  - { name: refused, plugin: tcp, listen: "127.0.0.1:$l_refused", destination: closed }
  - { name: dns, plugin: tcp, listen: "127.0.0.1:$l_dns", destination: nxdomain,
      connect_timeout_ms: $CONNECT_TIMEOUT_MS }
  - { name: max2, plugin: tcp, listen: "127.0.0.1:$l_max", destination: origin, max_connections: 2 }
  - { name: idle, plugin: tcp, listen: "127.0.0.1:$l_idle", destination: origin, idle_timeout_ms: 500 }
YAML
start_ferry "$dir/ferry.yaml" "$admin"

# expect_closed LISTENER PORT TIMEOUT_S: the connection must end (EOF/RST) in time.
expect_closed() {
    local name=$1 port=$2 timeout=$3 res kind
    client expect-close --port "$port" --timeout "$timeout"
    res=$CLIENT_OUT
    kind=$(json_get "$res" result)
    case $kind in
        eof|reset) ;;
        *) fail "$name: want the accepted connection closed within ${timeout}s, got $res" ;;
    esac
}

# --- 1. connection refused upstream --------------------------------------------------
expect_closed refused "$l_refused" 2
wait_access "$dir/access.log" refused 1 5
v=$(access_field "$dir/access.log" refused outcome)
if [ -z "$v" ] || [ "$v" = ok ]; then
    fail "access log: refused upstream outcome='$v', want an error outcome"
fi
v=$(access_field "$dir/access.log" refused bytes_out)
[ "$v" = 0 ] || fail "access log: refused upstream bytes_out=$v, want 0"
need_metric "$admin" 'ferry_listener_connections_failed_total{listener="refused"}' -eq 1
need_metric "$admin" 'ferry_destination_connections_failed_total{destination="closed"}' -eq 1
need_metric "$admin" 'ferry_listener_connections_active{listener="refused"}' -eq 0

# --- 2. a name that does not resolve -------------------------------------------------
expect_closed dns "$l_dns" $((CONNECT_TIMEOUT_MS / 1000 + 1))
wait_access "$dir/access.log" dns 1 5
v=$(access_field "$dir/access.log" dns outcome)
if [ -z "$v" ] || [ "$v" = ok ]; then
    fail "access log: unresolvable host outcome='$v', want an error outcome"
fi
need_metric "$admin" 'ferry_listener_connections_failed_total{listener="dns"}' -eq 1
need_metric "$admin" 'ferry_destination_connections_failed_total{destination="nxdomain"}' -eq 1

# --- 3. max_connections --------------------------------------------------------------
client hold-then-extra --port "$l_max" --hold 2 --timeout 2
need_metric "$admin" 'ferry_listener_connections_rejected_total{listener="max2"}' -eq 1
need_metric "$admin" 'ferry_listener_connections_active{listener="max2"}' -eq 0
# With the held ones gone, the listener serves again.
client echo again --port "$l_max" --timeout 5

# --- 4. idle timeout -----------------------------------------------------------------
client idle --port "$l_idle" --timeout 2.5
res=$CLIENT_OUT
secs=$(json_get "$res" secs)
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 0.4 else 1)' "$secs" \
    || fail "idle_timeout_ms 500: closed after ${secs}s, sooner than the timeout"
wait_access "$dir/access.log" idle 1 5
v=$(access_field "$dir/access.log" idle outcome)
[ "$v" = idle-timeout ] || fail "access log: idle connection outcome='$v', want idle-timeout"

stop_ferry
echo "ok: refused and unresolvable upstreams close the client promptly and count as" \
     "failed; max_connections rejects at once; idle connections time out"
