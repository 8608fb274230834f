#!/usr/bin/env bash
# fd_limit.sh: the gateway out of file descriptors does not spin.
#
#   bash tests/integration/fd_limit.sh [BUILD_DIR]     (default: build)
#
# The gateway runs under `ulimit -n 64` (one worker, a tcp listener to an echo origin).
# A helper opens 150 connections: the kernel completes them into the listen queue, the
# gateway accepts until accept(2) fails with EMFILE. Then one connection to the admin
# listener, which cannot be accepted either.
# 1. Both listeners pause instead of retrying at once: the gateway uses under 30% of a
#    core over a second while both queues are still readable.
# 2. They say so: an "accept: out of file descriptors, pausing the listener" line and an
#    "admin: accept: out of file descriptors, pausing" line (at most one a second each,
#    so a handful, not thousands).
# 3. The helper closes them all: a new connection is served again (bounded poll), and
#    /metrics (reachable again) counts both: ferry_accept_errors_total{listener="echo",
#    reason="emfile"} >= 1 and ferry_admin_accept_errors_total{reason="emfile"} >= 1.
#    While descriptors are out /metrics cannot answer; it is not polled then.
# The gateway exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"

dir=$(tmpdir)
start_origin echo echo
admin=$(free_port)
l_echo=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 1
plugins_dir: $PLUGINS
log: { level: info }
admin: { listen: 127.0.0.1:$admin }
drain_timeout_ms: 2000
tenants: [ { id: acme, token: t0k } ]
destinations:
  - { Name: origin, Type: TCP, Address: "tcp://127.0.0.1:$ORIGIN_PORT", ProxyType: Internet }
listeners:
  - { name: echo, plugin: tcp, listen: "127.0.0.1:$l_echo", destination: origin }
YAML

# The limit applies to ferry only; exec keeps the PID, so stop_pid reaches ferry itself.
start_bg ferry bash -c 'ulimit -n 64 && exec "$@"' _ "$FERRY" gateway -c "$dir/ferry.yaml"
FERRY_PID=$BG_PID
FERRY_LOG=$(bg_log ferry)
wait_port 127.0.0.1 "$admin" 15 "$FERRY_PID" || fail "the gateway's admin did not come up under ulimit -n 64"
client echo hi --expect hi --port "$l_echo" --timeout 10

# hold.py PORT N READY_FILE [PORT2 READY2]: N connections to PORT (each connect
# completes into the listen queue whether or not ferry accepts it), READY_FILE when they
# are open; then, once ferry has said it is out of descriptors (READY2 appears, written
# by the test), one connection to PORT2. Holds them all until SIGTERM.
cat >"$dir/hold.py" <<'PY'
import os, signal, socket, sys, time
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = []
for _ in range(n):
    held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
with open(ready, "w") as f:
    f.write(f"{len(held)}\n")
if len(sys.argv) > 5:
    for _ in range(400):              # the test writes READY2 within 10 s or fails
        if os.path.exists(sys.argv[5]):
            break
        time.sleep(0.05)
    held.append(socket.create_connection(("127.0.0.1", int(sys.argv[4])), timeout=5))
    with open(sys.argv[5] + ".done", "w") as f:
        f.write("1\n")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
PY
start_bg hold python3 "$dir/hold.py" "$l_echo" 150 "$dir/held" "$admin" "$dir/go-admin"
hold_pid=$BG_PID
wait_file "$dir/held" 20 "$hold_pid" || fail "the helper could not open 150 connections"

# --- 2. said ------------------------------------------------------------------------
# wait_log_line TEXT: bounded poll of ferry's log for TEXT (a JSON string, quoted).
wait_log_line() {
    local i
    for ((i = 0; i < 200; i++)); do
        grep -qF "\"$1\"" "$FERRY_LOG" && return 0
        sleep 0.05
    done
    return 1
}
NOFD='accept: out of file descriptors, pausing the listener'
ANOFD='admin: accept: out of file descriptors, pausing'
wait_log_line "$NOFD" || fail "no \"$NOFD\" line 10s after 150 connections"
: >"$dir/go-admin"
wait_file "$dir/go-admin.done" 10 "$hold_pid" || fail "the helper could not connect to admin"
wait_log_line "$ANOFD" || fail "no \"$ANOFD\" line 10s after a connection to admin"

# --- 1. no spinning ------------------------------------------------------------------
# utime + stime (fields 14 and 15 of /proc/PID/stat, after the ")" of the name) in
# clock ticks, over one second of wall time measured by the kernel's own clock.
cpu_ticks() {
    sed 's/^.*) //' "/proc/$FERRY_PID/stat" | awk '{ print $12 + $13 }'
}
hz=$(getconf CLK_TCK)
t0=$(cpu_ticks)
w0=$(date +%s%N)
sleep 1     # the measurement window itself, not a wait for something to happen
t1=$(cpu_ticks)
w1=$(date +%s%N)
used_pct=$(( (t1 - t0) * 100 * 1000000000 / hz / (w1 - w0) ))
[ "$used_pct" -lt 30 ] || fail "the gateway used ${used_pct}% of a core while out of file" \
    "descriptors (a spinning accept loop?)"
n=$(grep -cF "\"$NOFD\"" "$FERRY_LOG")
[ "$n" -le 20 ] || fail "$n \"$NOFD\" lines: want at most about one a second"
na=$(grep -cF "\"$ANOFD\"" "$FERRY_LOG")
[ "$na" -le 20 ] || fail "$na \"$ANOFD\" lines: want at most about one a second"

# --- 3. after the close, served again ------------------------------------------------
stop_pid "$hold_pid" 10 || true
ok=0
for ((i = 0; i < 100; i++)); do
    if python3 "$TOOLS/client.py" echo again --expect again --port "$l_echo" --timeout 2 \
        >/dev/null 2>&1; then
        ok=1
        break
    fi
    sleep 0.1
done
[ "$ok" -eq 1 ] || fail "no connection served within 10s after the 150 were closed"
SERIES='ferry_accept_errors_total{listener="echo",reason="emfile"}'
need_metric "$admin" "$SERIES" -ge 1 10
ASERIES='ferry_admin_accept_errors_total{reason="emfile"}'
need_metric "$admin" "$ASERIES" -ge 1 10
v=$(metric "$admin" "$SERIES")
va=$(metric "$admin" "$ASERIES")
stop_ferry
echo "ok: out of descriptors both listeners pause (${used_pct}% CPU, $n + $na log lines," \
     "$SERIES $v, $ASERIES $va) and serve again once they are free"
