# shellcheck shell=bash
# tests/integration/tools/tunnel_lib.sh: helpers for the tunnel_*.sh scripts.
# Source it after lib.sh and tools/tcp_lib.sh:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   . "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
#   . "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
#
#   make_ca DIR NAME                        # DIR/NAME.crt + DIR/NAME.key (a P-256 CA)
#   make_cert DIR NAME CA [SAN]             # DIR/NAME.crt/.key signed by DIR/CA (SAN default
#                                           # IP:127.0.0.1)
#   start_gateway NAME CONFIG ADMIN_PORT    # like start_ferry but named; sets GW_PID, GW_LOG
#   stop_gateway PID LOG                    # SIGTERM, want exit 0, no sanitizer report
#   start_connector NAME CONFIG ADMIN_PORT  # sets CN_PID, CN_LOG; waits for /healthz
#   stop_connector PID LOG [WHAT]           # SIGTERM, want exit 0, no sanitizer report
#   readyz ADMIN_PORT                       # prints the HTTP status of /readyz (000 if none)
#   wait_readyz ADMIN_PORT CODE TIMEOUT_S   # poll until /readyz answers CODE
#   wait_log FILE REGEX TIMEOUT_S [PID]     # poll until a line of FILE matches REGEX
#   log_lines FILE MSG [KEY=VALUE...]       # JSON log lines with "msg" MSG and those fields
#   audit_count FILE [KEY=VALUE...]         # audit lines with those fields
#   fail_later MESSAGE / fail_deferred      # record a failure, go on; fail at the end
#
# It lives in tools/ because every tests/integration/*.sh but lib.sh is a ctest test.

# shellcheck disable=SC2034  # GW_*, CN_*: for the sourcing script

# make_ca DIR NAME: a self-signed P-256 CA, DIR/NAME.crt and DIR/NAME.key.
make_ca() {
    local dir=$1 name=$2
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=ferry test $name" -keyout "$dir/$name.key" -out "$dir/$name.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        >"$dir/openssl-$name.log" 2>&1 || { cat "$dir/openssl-$name.log" >&2; fail "openssl: cannot make CA $name"; }
}

# make_cert DIR NAME CA [SAN]: a P-256 leaf certificate signed by DIR/CA.{crt,key}.
make_cert() {
    local dir=$1 name=$2 ca=$3 san=${4:-IP:127.0.0.1}
    {
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=ferry test $name" -keyout "$dir/$name.key" -out "$dir/$name.csr" &&
        printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' \
            "$san" >"$dir/$name.ext" &&
        openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
            -CAcreateserial -days 2 -extfile "$dir/$name.ext" -out "$dir/$name.crt"
    } >"$dir/openssl-$name.log" 2>&1 || { cat "$dir/openssl-$name.log" >&2; fail "openssl: cannot make cert $name"; }
}

# wait_admin NAME ADMIN_PORT PID: poll /healthz of a ferry process for 15 s.
wait_admin() {
    local name=$1 admin=$2 pid=$3 i
    for ((i = 0; i < 15 * 20; i++)); do
        if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$admin/healthz"; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "$name exited at startup"
        sleep 0.05
    done
    fail "$name's admin (127.0.0.1:$admin) did not answer /healthz within 15s"
}

# start_gateway NAME CONFIG ADMIN_PORT: `ferry gateway`, log in $(bg_log NAME).
start_gateway() {
    start_bg "$1" "$FERRY" gateway -c "$2"
    GW_PID=$BG_PID
    GW_LOG=$(bg_log "$1")
    wait_admin "$1" "$3" "$GW_PID"
}

# start_connector NAME CONFIG ADMIN_PORT: `ferry connector`, log in $(bg_log NAME).
start_connector() {
    start_bg "$1" "$FERRY" connector -c "$2"
    CN_PID=$BG_PID
    CN_LOG=$(bg_log "$1")
    wait_admin "$1" "$3" "$CN_PID"
}

# stop_proc PID LOG WHAT: SIGTERM; want exit 0 and a log free of sanitizer reports.
stop_proc() {
    local pid=$1 log=$2 what=$3 rc=0
    stop_pid "$pid" 10 || rc=$?
    check_sanitizers "$log" "$what"
    [ "$rc" -eq 0 ] || fail "$what exited with status $rc after SIGTERM (want 0)"
}

# readyz ADMIN_PORT: the HTTP status code of /readyz ("000" when nothing answers).
readyz() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/readyz" || true
}

# wait_readyz ADMIN_PORT CODE TIMEOUT_S: poll /readyz until it answers CODE.
wait_readyz() {
    local admin=$1 want=$2 timeout=$3 i
    for ((i = 0; i < timeout * 10; i++)); do
        [ "$(readyz "$admin")" = "$want" ] && return 0
        sleep 0.1
    done
    return 1
}

# wait_log FILE REGEX TIMEOUT_S [PID]: poll until a line of FILE matches the extended
# REGEX; returns 1 at the deadline (or as soon as PID, when given, has exited).
wait_log() {
    local file=$1 re=$2 timeout=$3 pid=${4:-0} i
    for ((i = 0; i < timeout * 20; i++)); do
        grep -Eq -- "$re" "$file" 2>/dev/null && return 0
        if [ "$pid" -gt 0 ] && ! kill -0 "$pid" 2>/dev/null; then
            grep -Eq -- "$re" "$file" 2>/dev/null
            return
        fi
        sleep 0.05
    done
    return 1
}

# log_lines FILE MSG [KEY=VALUE...]: how many JSON lines of FILE have "msg" == MSG and
# each KEY == VALUE (as strings; KEY~TEXT: VALUE contains TEXT, any case). Non-JSON lines
# are skipped. jq: the tests poll this, and a python3 start costs seconds under load.
log_lines() {
    local file=$1 msg=$2
    shift 2
    [ -r "$file" ] || { echo 0; return 0; }
    jq -n -R -r --arg msg "$msg" '
        def cond($r):
            if test("~") and ((test("=") | not) or (index("~") < index("=")))
            then (index("~")) as $i | .[:$i] as $k | .[$i + 1:] as $v
                 | ($r[$k] // "" | tostring | ascii_downcase) | contains($v | ascii_downcase)
            else (index("=")) as $i | .[:$i] as $k | .[$i + 1:] as $v
                 | ($r[$k] // "" | tostring) == $v
            end;
        [inputs | fromjson? | select(type == "object") | select($msg == "" or .msg == $msg)
         | . as $r | select(all($ARGS.positional[]; cond($r)))] | length' "$file" --args "$@"
}

# audit_count FILE [KEY=VALUE...]: audit-log lines with those fields (log_lines rules).
audit_count() {
    local file=$1
    shift
    log_lines "$file" "" "$@"
}

# A mismatch that does not stop the later scenarios from meaning something is recorded
# with fail_later and reported (as one failure) by fail_deferred at the end of the
# script, so one known bug does not hide what the rest of the script would find.
DEFERRED_FAILS=()

# fail_later MESSAGE: record a failure (printed now, reported again at the end).
fail_later() {
    echo "FAIL (reported at the end): $(basename "$0"): $*" >&2
    DEFERRED_FAILS+=("$*")
}

# fail_deferred: fail if fail_later recorded anything.
fail_deferred() {
    local m
    [ "${#DEFERRED_FAILS[@]}" -eq 0 ] && return 0
    for m in "${DEFERRED_FAILS[@]}"; do
        echo "  - $m" >&2
    done
    fail "${#DEFERRED_FAILS[@]} check(s) failed along the way (listed above)"
}
