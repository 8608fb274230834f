#!/usr/bin/env bash
# unit_syscalls.sh: ferry makes no system call that its units' SystemCallFilter forbids.
#
#   bash tests/integration/unit_syscalls.sh [BUILD_DIR]     (default: build)
#
# deploy/debian/ferry-*.service run ferry with SystemCallFilter=@system-service (and
# SystemCallErrorNumber=EPERM): a call outside that set fails with EPERM under systemd
# and nowhere else, so no other test would notice one. This test runs a gateway (2
# workers pinned with worker_cpu_affinity, tunnel, http and tcp listeners, an access
# log file, a destinations_dir the API writes to) and a connector (audit log) under
# strace -f, drives an HTTP request through the tunnel, a direct TCP connection, a
# destination API write, /metrics, SIGHUP, SIGUSR1 and SIGTERM, and checks every
# system call they made against `systemd-analyze syscall-filter @system-service`,
# groups expanded. Needs strace and ptrace (exit 77 where ptrace is not allowed).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"

FERRY=$BUILD/core/ferry
[ -x "$FERRY" ] || fail "no ferry binary at $FERRY (build first)"
for tool in strace systemd-analyze; do
    command -v "$tool" >/dev/null 2>&1 && continue
    bash "$SRC_ROOT/tests/deps.sh" >&2 || fail "tests/deps.sh failed"
done
command -v strace >/dev/null 2>&1 || fail "strace is missing (tests/deps.sh)"
if ! strace -f -qq -o /dev/null true 2>/dev/null; then
    echo "SKIP: $(basename "$0"): strace cannot trace here (ptrace not permitted)"
    exit 77
fi
grep -qxF 'SystemCallFilter=@system-service' "$SRC_ROOT/deploy/debian/ferry-gateway.service" \
    || fail "the gateway unit's filter is no longer @system-service: update this test"

# The allowed set: the group, its nested @groups expanded.
expand() {
    local x
    systemd-analyze syscall-filter "$1" 2>/dev/null | sed -n '2,$p' | sed 's/^ *//' \
        | grep -v '^#' | while read -r x; do
            [ -n "$x" ] || continue
            case $x in @*) expand "$x" ;; *) echo "$x" ;; esac
        done
}
expand @system-service | sort -u >"$IT_ROOT/allowed"
[ "$(wc -l <"$IT_ROOT/allowed")" -gt 100 ] \
    || fail "systemd-analyze syscall-filter @system-service gave $(wc -l <"$IT_ROOT/allowed") calls"

dir=$(tmpdir)
make_ca "$dir" ca
make_cert "$dir" gateway ca
mkdir -p "$dir/dests"
admin_gw=$(free_port)
admin_c=$(free_port)
tunnel=$(free_port)
http_port=$(free_port)
tcp_port=$(free_port)
origin_port=$(free_port)
start_bg origin python3 -m http.server "$origin_port" --bind 127.0.0.1 --directory "$dir/dests"
wait_port 127.0.0.1 "$origin_port" 10 "$BG_PID" || fail "the origin did not listen"
cat >"$dir/gw.yaml" <<YAML
workers: 2
worker_cpu_affinity: auto
plugins_dir: $BUILD/plugins
log: { level: info, access: $dir/access.jsonl }
admin: { listen: 127.0.0.1:$admin_gw }
tunnel: { listen: 127.0.0.1:$tunnel, cert: gateway.crt, key: gateway.key }
tenants: [ { id: t1, token: tok-1 } ]
destinations_dir: dests
destinations:
  - { Name: web, Type: HTTP, URL: "http://origin.internal:80", ProxyType: OnPremise }
listeners:
  - { name: apps, plugin: http, listen: 127.0.0.1:$http_port, mode: transparent, destination: web }
  - { name: raw, plugin: tcp, listen: 127.0.0.1:$tcp_port, destination: direct }
YAML
cat >"$dir/dests/direct.yaml" <<YAML
Name: direct
Type: TCP
URL: tcp://127.0.0.1:$origin_port
ProxyType: Internet
YAML
cat >"$dir/c.yaml" <<YAML
gateway: 127.0.0.1:$tunnel
admin: { listen: 127.0.0.1:$admin_c }
tenant: t1
token: tok-1
ca: ca.crt
audit_log: audit.jsonl
systems: [ { virtual: origin.internal:80, internal: 127.0.0.1:$origin_port, protocol: HTTP } ]
YAML

start_bg gateway strace -f -qq -o "$dir/gw.strace" "$FERRY" gateway -c "$dir/gw.yaml"
gw_strace=$BG_PID
wait_port 127.0.0.1 "$admin_gw" 30 "$gw_strace" || fail "the gateway did not listen"
start_bg connector strace -f -qq -o "$dir/c.strace" "$FERRY" connector -c "$dir/c.yaml"
c_strace=$BG_PID
deadline=$((SECONDS + 30))
until curl -sf "http://127.0.0.1:$admin_c/readyz" >/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the connector's tunnel did not come up"
    sleep 0.1
done
gw_pid=$(pgrep -P "$gw_strace" -x ferry) || fail "no ferry under the gateway's strace"
c_pid=$(pgrep -P "$c_strace" -x ferry) || fail "no ferry under the connector's strace"

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/")
[ "$code" = 200 ] || fail "through the tunnel: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$tcp_port/")
[ "$code" = 200 ] || fail "through the tcp listener: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer tok-1' \
       -H 'Content-Type: application/json' \
       -d '{"Name":"made","Type":"HTTP","URL":"http://a.example","ProxyType":"Internet"}' \
       "http://127.0.0.1:$admin_gw/destination-configuration/v1/subaccountDestinations")
[ "$code" = 201 ] || fail "destination API create: HTTP $code"
curl -sf "http://127.0.0.1:$admin_gw/metrics" >/dev/null || fail "gateway /metrics"
reloads_ok() {
    curl -sf "http://127.0.0.1:$admin_gw/metrics" \
        | sed -n 's/^ferry_reloads_total{result="ok"} //p'
}
before=$(reloads_ok)                    # the API write above reloads too
kill -HUP "$gw_pid"
kill -HUP "$c_pid"
kill -USR1 "$c_pid"
deadline=$((SECONDS + 20))
until [ "$(reloads_ok)" -gt "$before" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the gateway did not reload on SIGHUP"
    sleep 0.1
done
kill -TERM "$gw_pid" "$c_pid"
wait_exit "$gw_strace" 40 || fail "the gateway did not exit on SIGTERM"
wait_exit "$c_strace" 40 || fail "the connector did not exit on SIGTERM"

cat "$dir/gw.strace" "$dir/c.strace" | grep -oE '^[0-9]+ +[a-z_0-9]+\(' \
    | awk '{ sub(/\(/, "", $2); print $2 }' | sort -u >"$IT_ROOT/used"
[ "$(wc -l <"$IT_ROOT/used")" -gt 20 ] || fail "strace saw only $(wc -l <"$IT_ROOT/used") calls"
outside=$(comm -23 "$IT_ROOT/used" "$IT_ROOT/allowed")
[ -z "$outside" ] || fail "system calls outside @system-service (EPERM under the units): $(echo "$outside" | tr '\n' ' ')"
echo "ok: $(wc -l <"$IT_ROOT/used") distinct system calls of gateway and connector, all in @system-service"
