#!/usr/bin/env bash
# fd_limit.sh: the gateway out of file descriptors does not spin.
#
#   bash tests/integration/fd_limit.sh [BUILD_DIR]     (default: build)
#
# The gateway runs under `ulimit -n 64` (one worker, a tcp listener to an echo origin).
# A helper opens 150 connections: the kernel completes them into the listen queue, the
# gateway accepts until accept(2) fails with EMFILE.
# 1. The listener pauses instead of retrying at once: the gateway uses under 30% of a
#    core over a second while the queue is still full and readable.
# 2. It says so: an "accept: out of file descriptors, pausing the listener" line (at most
#    one a second, so a handful, not thousands) and
#    ferry_accept_errors_total{listener="echo",reason="emfile"} >= 1.
# 3. The helper closes them all: a new connection is served again (bounded poll).
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

# hold.py PORT N READY_FILE: N connections to PORT (each connect completes into the
# listen queue whether or not ferry accepts it), READY_FILE when they are open; holds
# them until SIGTERM.
cat >"$dir/hold.py" <<'PY'
import signal, socket, sys, time
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = []
for _ in range(n):
    held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
with open(ready, "w") as f:
    f.write(f"{len(held)}\n")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
PY
start_bg hold python3 "$dir/hold.py" "$l_echo" 150 "$dir/held"
hold_pid=$BG_PID
wait_file "$dir/held" 20 "$hold_pid" || fail "the helper could not open 150 connections"

# --- 2. said and counted -------------------------------------------------------------
wait_log_line() {
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q '"accept: out of file descriptors, pausing the listener"' "$FERRY_LOG" &&
            return 0
        sleep 0.05
    done
    return 1
}
wait_log_line || fail "no \"accept: out of file descriptors\" line 10s after 150 connections"
# /metrics needs a descriptor too: poll it, it may be refused while the limit is hit.
SERIES='ferry_accept_errors_total{listener="echo",reason="emfile"}'
v=""
for ((i = 0; i < 200; i++)); do
    v=$(metric "$admin" "$SERIES" 2>/dev/null || true)
    [ -n "$v" ] && [ "$v" -ge 1 ] && break
    sleep 0.05
done
[ -n "$v" ] && [ "$v" -ge 1 ] || fail "$SERIES is '$v', want >= 1"

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
n=$(grep -c '"accept: out of file descriptors, pausing the listener"' "$FERRY_LOG")
[ "$n" -le 20 ] || fail "$n \"out of file descriptors\" lines: want at most about one a second"

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
stop_ferry
echo "ok: out of descriptors the listener pauses (${used_pct}% CPU, $n log lines, $SERIES $v)" \
     "and serves again once they are free"
