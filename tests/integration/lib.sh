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
FERRY_LOGS=()            # the logs of the ferry processes start_bg ran (cleanup sweeps them)

# A fresh directory under this run's temporary root (removed by cleanup).
tmpdir() {
    mktemp -d "$IT_ROOT/d.XXXXXX"
}

# Ports handed out to the tests running on this machine (ctest -j, several checkouts):
# one line "PORT PID" each, edited under a lock; lines of exited tests are dropped.
FERRY_PORTS_DB=${TMPDIR:-/tmp}/ferry-it-ports

# free_port: a TCP port for a server of this test. Taken below the kernel's ephemeral
# range (32768-60999 by default), so no client connection of any test gets it as its
# source port; not bound on this machine now (ss); never handed to another running test
# (FERRY_PORTS_DB) nor twice to this one: two of ferry's listeners on one port would
# split its connections. Plain bash: no interpreter start per port.
free_port() {
    local p i lk live port pid
    exec {lk}>>"$FERRY_PORTS_DB.lock"
    flock -w 30 "$lk" || { echo "free_port: $FERRY_PORTS_DB.lock stays locked" >&2; return 1; }
    live=""
    if [ -s "$FERRY_PORTS_DB" ]; then
        while read -r port pid; do
            kill -0 "$pid" 2>/dev/null && live+="$port $pid"$'\n'
        done <"$FERRY_PORTS_DB"
    fi
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12700))
        [[ $'\n'"$live" == *$'\n'"$p "* ]] && continue
        ss -Htan "( sport = :$p )" 2>/dev/null | grep -q . && continue
        break
    done
    printf '%s%s %s\n' "$live" "$p" "$$" >"$FERRY_PORTS_DB.new"
    mv -f "$FERRY_PORTS_DB.new" "$FERRY_PORTS_DB"
    exec {lk}>&-
    echo "$p"
}

# free_ports_release: forget this test's ports (cleanup calls it).
free_ports_release() {
    local lk port pid
    [ -s "$FERRY_PORTS_DB" ] || return 0
    exec {lk}>>"$FERRY_PORTS_DB.lock"
    flock -w 30 "$lk" || return 0
    while read -r port pid; do
        [ "$pid" = "$$" ] || echo "$port $pid"
    done <"$FERRY_PORTS_DB" >"$FERRY_PORTS_DB.new"
    mv -f "$FERRY_PORTS_DB.new" "$FERRY_PORTS_DB"
    exec {lk}>&-
}

# wait_port HOST PORT TIMEOUT_S [PID]: poll until HOST:PORT accepts a connection.
# Returns 1 at the deadline, or at once if PID (when given) has exited.
wait_port() {
    local host=$1 port=$2 timeout=$3 pid=${4:-0} end
    end=$((SECONDS + ${timeout%.*} + 1))
    while [ "$SECONDS" -lt "$end" ]; do
        # A connect on loopback is answered at once (accepted or refused).
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        if [ "$pid" -gt 0 ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# start_bg NAME CMD...: run CMD in the background, stdout+stderr to $(bg_log NAME).
# Sets BG_PID; cleanup stops it if the script does not.
start_bg() {
    local name=$1 a
    shift
    BG_LOGS[$name]="$IT_ROOT/$name.log"
    for a in "$@"; do
        [[ $a == */core/ferry ]] && FERRY_LOGS+=("${BG_LOGS[$name]}") && break
    done
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
# Before that, tools/secret_harvest.py looks for every secret of the configurations the
# test wrote under its root in the logs of the ferry processes it ran (and the access
# and audit logs those configurations name): one found fails the test, whatever it
# asserted. FERRY_SECRET_HARVEST=0 turns this off.
cleanup() {
    local rc=$? pid
    free_ports_release
    for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        stop_pid "$pid" 5 >/dev/null 2>&1 || true
    done
    if [ "${FERRY_SECRET_HARVEST:-1}" = 1 ] && [ "${#FERRY_LOGS[@]}" -gt 0 ] &&
        ! python3 "$SRC_ROOT/tests/integration/tools/secret_harvest.py" "$IT_ROOT" \
            "${FERRY_LOGS[@]}" >&2; then
        echo "FAIL: $(basename "$0"): a secret of its configuration is in a ferry log" \
             "(above; tests/README.md, \"Sweeping for secrets\")" >&2
        [ "$rc" -ne 0 ] || rc=1
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $IT_ROOT" >&2
    else
        rm -rf "$IT_ROOT"
    fi
    exit "$rc"
}
trap cleanup EXIT
