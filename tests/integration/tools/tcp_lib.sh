# shellcheck shell=bash
# tests/integration/tools/tcp_lib.sh: helpers for the tcp_*.sh / config_errors.sh scripts.
# Source it after lib.sh:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   . "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
#
#   start_origin NAME MODE [origin.py options]   # sets ORIGIN_PORT, ORIGIN_PID, ORIGIN_REPORT
#   start_ferry CONFIG ADMIN_PORT                 # sets FERRY_PID, FERRY_LOG; waits for /healthz
#   metric ADMIN_PORT 'ferry_x{listener="t1"}'    # prints the value (empty if absent)
#   wait_metric ADMIN_PORT SERIES OP VALUE TIMEOUT_S   # OP: -eq -ge -le …
#   stop_ferry                                    # SIGTERM, want exit 0, no sanitizer report
#   access_field FILE LISTENER FIELD [N]          # FIELD of the Nth line (1-based) of LISTENER
#   client COMMAND ARGS...                        # tools/client.py; result in CLIENT_OUT
#   starve_start PID... / starve_stop             # run PIDs late: nice 19 beside a busy loop
#   speak_first_starved PORT TIMEOUT_S PID...     # 3 x 100 downloads of 16 KiB, PIDs starved
#
# It lives in tools/ because every tests/integration/*.sh but lib.sh is a ctest test.
# VERBOSE=1 prints every client.py result line.

# shellcheck disable=SC2034  # FERRY_*, ORIGIN_*, WAIT_RC, CLIENT_OUT: for the sourcing script
FERRY=$BUILD/core/ferry
PLUGINS=$BUILD/plugins
TOOLS=$SRC_ROOT/tests/integration/tools
[ -x "$FERRY" ] || fail "no ferry binary at $FERRY (build first)"
[ -f "$PLUGINS/ferry_tcp.so" ] || fail "no tcp plugin at $PLUGINS/ferry_tcp.so (build first)"

# Sanitizer reports fail the test however ferry exited; LeakSanitizer's too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
SANITIZER_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer'

# wait_file FILE TIMEOUT_S [PID]: poll until FILE exists and is not empty. Returns 1 at
# the deadline or as soon as PID (when given) has exited.
wait_file() {
    local file=$1 timeout=$2 pid=${3:-0} i
    for ((i = 0; i < timeout * 20; i++)); do
        [ -s "$file" ] && return 0
        if [ "$pid" -gt 0 ] && ! kill -0 "$pid" 2>/dev/null; then
            [ -s "$file" ] && return 0
            return 1
        fi
        sleep 0.05
    done
    [ -s "$file" ]
}

# wait_exit PID TIMEOUT_S: wait for our child PID to exit by itself within the deadline.
# Sets WAIT_RC to its exit status; returns 1 (leaving it running) at the deadline.
wait_exit() {
    local pid=$1 timeout=$2 i
    for ((i = 0; i < timeout * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        return 1
    fi
    WAIT_RC=0
    wait "$pid" 2>/dev/null || WAIT_RC=$?
    return 0
}

# check_sanitizers LOGFILE WHAT: fail if LOGFILE holds an ASan/LSan/UBSan report.
check_sanitizers() {
    local log=$1 what=$2
    if grep -Eq "$SANITIZER_RE" "$log" 2>/dev/null; then
        echo "---- sanitizer report in $what ($log):" >&2
        grep -E -A 30 "$SANITIZER_RE" "$log" | head -n 80 >&2
        fail "$what: sanitizer report in its output (see above)"
    fi
}

# start_origin NAME MODE [ARGS...]: run tools/origin.py; sets ORIGIN_PORT, ORIGIN_PID and
# ORIGIN_REPORT (one JSON line per finished connection).
start_origin() {
    local name=$1 mode=$2 dir
    shift 2
    dir=$(tmpdir)
    ORIGIN_REPORT=$dir/report.jsonl
    start_bg "$name" python3 "$TOOLS/origin.py" "$mode" --port-file "$dir/port" \
        --report "$ORIGIN_REPORT" "$@"
    ORIGIN_PID=$BG_PID
    wait_file "$dir/port" 10 "$ORIGIN_PID" || fail "origin $name ($mode) did not start"
    ORIGIN_PORT=$(cat "$dir/port")
}

# start_ferry CONFIG ADMIN_PORT: start the gateway and wait until its admin answers
# /healthz. Sets FERRY_PID and FERRY_LOG.
start_ferry() {
    local conf=$1 admin=$2 i
    start_bg ferry "$FERRY" gateway -c "$conf"
    FERRY_PID=$BG_PID
    FERRY_LOG=$(bg_log ferry)
    for ((i = 0; i < 15 * 20; i++)); do
        if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$admin/healthz"; then
            return 0
        fi
        kill -0 "$FERRY_PID" 2>/dev/null || fail "ferry exited at startup"
        sleep 0.05
    done
    fail "ferry's admin (127.0.0.1:$admin) did not answer /healthz within 15s"
}

# stop_ferry: SIGTERM (SIGKILL after 10 s); ferry must exit 0 and its log must be free
# of sanitizer reports.
stop_ferry() {
    local rc=0
    stop_pid "$FERRY_PID" 10 || rc=$?
    check_sanitizers "$FERRY_LOG" "ferry"
    [ "$rc" -eq 0 ] || fail "ferry exited with status $rc after SIGTERM (want 0)"
}

# metric ADMIN_PORT SERIES: the value of one series of /metrics (exact name+labels match).
# awk reads to the end: quitting at the match would close the pipe under curl, which
# then fails (exit 23) and, with pipefail, fails the caller when the series comes early.
metric() {
    curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" |
        awk -v s="$2" '$1 == s && !found { print $2; found = 1 } END { if (!found) print "" }'
}

# wait_metric ADMIN_PORT SERIES OP VALUE TIMEOUT_S: poll until `SERIES OP VALUE` holds
# (OP is a test(1) integer operator). Prints nothing; returns 1 at the deadline.
wait_metric() {
    local admin=$1 series=$2 op=$3 want=$4 timeout=$5 i v
    for ((i = 0; i < timeout * 10; i++)); do
        v=$(metric "$admin" "$series")
        if [ -n "$v" ] && test "$v" "$op" "$want"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# need_metric ADMIN_PORT SERIES OP VALUE [TIMEOUT_S]: wait_metric or fail with the value.
need_metric() {
    local admin=$1 series=$2 op=$3 want=$4 timeout=${5:-5}
    wait_metric "$admin" "$series" "$op" "$want" "$timeout" ||
        fail "/metrics: want $series $op $want, got '$(metric "$admin" "$series")'" \
             "(after ${timeout}s)"
}

# access_field FILE LISTENER FIELD [N]: FIELD of the Nth access-log line of LISTENER
# ("" when absent; nothing when there is no Nth line). jq: no interpreter start per poll.
access_field() {
    [ -r "$1" ] || { echo "access log $1: not readable" >&2; return 1; }
    jq -n -R -r --arg l "$2" --arg f "$3" --argjson n "${4:-1}" '
        [inputs | fromjson? | select(type == "object" and .listener == $l)] | .[$n - 1]
        | if . == null then empty else (.[$f] | if . == null then "" else . end) end' "$1"
}

# wait_access FILE LISTENER N TIMEOUT_S: poll until LISTENER has N access-log lines.
wait_access() {
    local file=$1 listener=$2 n=$3 timeout=$4 i
    for ((i = 0; i < timeout * 10; i++)); do
        if [ -s "$file" ] && [ -n "$(access_field "$file" "$listener" listener "$n" 2>/dev/null)" ]; then
            return 0
        fi
        sleep 0.1
    done
    fail "access log $file: want $n line(s) for listener $listener within ${timeout}s;" \
         "it has: $(tail -n 5 "$file" 2>/dev/null)"
}

# client ARGS...: run tools/client.py in this shell (not in $(…), so a failure ends the
# script); its JSON result line goes to CLIENT_OUT. On failure: fail with its output.
client() {
    local rc=0
    python3 "$TOOLS/client.py" "$@" >"$IT_ROOT/client.out" 2>&1 || rc=$?
    CLIENT_OUT=$(cat "$IT_ROOT/client.out")
    [ "$rc" -eq 0 ] || fail "client.py $1 failed: $CLIENT_OUT"
    [ -z "${VERBOSE:-}" ] || echo "client.py $1: $CLIENT_OUT" >&2
}

# json_get JSON KEY: one top-level field of a JSON object ("" when absent or null).
json_get() {
    jq -r -c --arg k "$2" '.[$k] | if . == null then "" else . end' <<<"$1" 2>/dev/null || true
}

# starve_start PID...: pin every thread of each PID to CPU 0 at nice 19 and start a busy
# loop on that CPU (HOG_PID), so those processes run late and what their peers send
# piles up between their wake-ups: the races a fast machine hides show. Returns 1 and
# does nothing without taskset or a second CPU (the test's clients use the other one).
starve_start() {
    local pid t tid
    command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] || return 1
    STARVED=()
    for pid in "$@"; do
        for t in /proc/"$pid"/task/*; do
            tid=${t##*/}
            # tid:cpu-list:nice, so starve_stop can give each thread back what it had.
            STARVED+=("$tid:$(taskset -pc "$tid" | sed 's/.*: //'):$(ps -o ni= -p "$tid" | tr -d ' ')")
            taskset -pc 0 "$tid" >/dev/null
            renice -n 19 -p "$tid" >/dev/null
        done
    done
    start_bg hog taskset -c 0 sh -c 'while :; do :; done'
    HOG_PID=$BG_PID
}

# starve_stop: stop the busy loop and give the starved threads back their CPUs and nice
# value: left at nice 19 on one CPU, a process on a loaded machine (tests/soak.sh's hog
# beside it) needs many seconds for what follows, its exit (and LeakSanitizer) included.
starve_stop() {
    local s tid rest
    kill "$HOG_PID" 2>/dev/null || true
    wait "$HOG_PID" 2>/dev/null || true
    for s in ${STARVED[@]+"${STARVED[@]}"}; do
        tid=${s%%:*} rest=${s#*:}
        taskset -pc "${rest%%:*}" "$tid" >/dev/null 2>&1 || true
        renice -n "${rest#*:}" -p "$tid" >/dev/null 2>&1 || true
    done
    STARVED=()
}

# speak_first_starved PORT TIMEOUT_S PID...: 3 x 100 connections at once to PORT, which
# leads to a `source` origin sending 16 KiB (seed 13) and closing at once, while PIDs are
# starved (starve_start); every download must be whole and end within TIMEOUT_S. Skips
# (with a message) where starve_start cannot run.
speak_first_starved() {
    local port=$1 timeout=$2 rc=0
    shift 2
    if ! starve_start "$@"; then
        echo "skip: the speak-first case needs taskset and 2 CPUs"
        return 0
    fi
    python3 "$TOOLS/client.py" download-many --port "$port" --n 100 --rounds 3 \
        --bytes $((16 << 10)) --seed 13 --timeout "$timeout" >"$IT_ROOT/many.out" 2>&1 || rc=$?
    starve_stop
    [ "$rc" -eq 0 ] || fail "speak-first origin on port $port: $(cat "$IT_ROOT/many.out")"
}
