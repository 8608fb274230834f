# shellcheck shell=bash
# tests/integration/lib.sh: shared helpers for the integration scripts (source it).
#
#   . "$(dirname "$0")/lib.sh"        # sets `trap cleanup EXIT`, BUILD=${1:-build}
#   port=$(free_port)
#   start_bg ferry "$BUILD/core/ferry" gateway -c "$cfg"   # BG_PID, log: $(bg_log ferry)
#   wait_port 127.0.0.1 "$port" 10 "$BG_PID" || fail "ferry did not listen"
#   dir=$(tmpdir)
#
# Rules the scripts follow: every wait has a deadline,
# everything started is stopped by its PID, failures say what was expected and show
# the logs of what ran.

# shellcheck disable=SC2034  # BUILD, SRC_ROOT and BG_PID are for the sourcing script
# The build directory under test; absolute, so scripts may cd.
BUILD=${1:-build}
if [ ! -d "$BUILD" ]; then
    echo "FAIL: $(basename "$0"): no build directory '$BUILD' (usage: $0 [BUILD_DIR])" >&2
    exit 1
fi
BUILD=$(cd "$BUILD" && pwd)
# The repository root, for sources the scripts build or read.
SRC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

IT_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ferry-it.XXXXXX")
BG_PIDS=()
declare -A BG_LOGS=()

# A fresh directory under this run's temporary root (removed by cleanup).
tmpdir() {
    mktemp -d "$IT_ROOT/d.XXXXXX"
}

# A TCP port that was free on 127.0.0.1 a moment ago (the kernel picks it).
free_port() {
    # Never the same port twice in one test: the kernel may hand a just-closed port out
    # again, and two of ferry's listeners on one port would split its connections.
    local p i
    for ((i = 0; i < 20; i++)); do
        p=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')
        grep -qx "$p" "$IT_ROOT/ports.given" 2>/dev/null || break
    done
    echo "$p" >>"$IT_ROOT/ports.given"
    echo "$p"
}

# wait_port HOST PORT TIMEOUT_S [PID]: poll until HOST:PORT accepts a connection.
# Returns 1 at the deadline, or at once if PID (when given) has exited.
wait_port() {
    python3 - "$1" "$2" "$3" "${4:-0}" <<'PY'
import os, socket, sys, time
host, port, timeout, pid = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        pass
    if pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(1)
    time.sleep(0.05)
sys.exit(1)
PY
}

# start_bg NAME CMD...: run CMD in the background, stdout+stderr to $(bg_log NAME).
# Sets BG_PID; cleanup stops it if the script does not.
start_bg() {
    local name=$1
    shift
    BG_LOGS[$name]="$IT_ROOT/$name.log"
    "$@" >"${BG_LOGS[$name]}" 2>&1 </dev/null &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

bg_log() {
    echo "${BG_LOGS[$1]}"
}

# stop_pid PID [TIMEOUT_S]: SIGTERM, wait up to TIMEOUT_S (default 10), then SIGKILL.
# Returns the process's exit status (137 / 143 for signals); PID must be our child.
stop_pid() {
    local pid=$1 timeout=${2:-10} i rc=0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop_pid: $pid still running after ${timeout}s, killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}

# Print the tail of every background log (for a failure report).
show_logs() {
    local name
    for name in "${!BG_LOGS[@]}"; do
        [ -s "${BG_LOGS[$name]}" ] || continue
        echo "---- $name log (last 40 lines): ${BG_LOGS[$name]}" >&2
        tail -n 40 "${BG_LOGS[$name]}" >&2
    done
}

# fail MESSAGE: report, show the logs, exit 1 (cleanup runs from the EXIT trap).
fail() {
    echo "FAIL: $(basename "$0"): $*" >&2
    show_logs
    exit 1
}

# Stop every process start_bg started (by PID) and remove the temporary root.
# Set KEEP_TMP=1 to keep the files of a run for a look afterwards.
cleanup() {
    local pid
    for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        stop_pid "$pid" 5 >/dev/null 2>&1 || true
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $IT_ROOT" >&2
    else
        rm -rf "$IT_ROOT"
    fi
}
trap cleanup EXIT
