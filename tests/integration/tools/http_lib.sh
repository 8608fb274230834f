# shellcheck shell=bash
# tests/integration/tools/http_lib.sh: helpers for the http_*.sh scripts. Source it after
# lib.sh, tools/tcp_lib.sh and tools/tunnel_lib.sh (it uses fail_later and log_lines).
#
#   start_http_origin NAME [http_origin.py options]  # sets HO_PORT, HO_PID, HO_LOG
#   bytes_sha N                      # sha256 of what the origin's /bytes/N sends
#   hreq WHAT CURL_ARGS...           # curl -sS; sets HR_STATUS (000: no answer), HR_RC,
#                                    # HR_BODY and HR_HDRS (files), HR_WHAT
#   hdr NAME                         # a header of the last hreq's final response
#   body                             # the last hreq's body
#   want_status WANT                 # fail_later unless HR_STATUS is WANT (returns 1)
#   want_ok                          # want_status 200
#   want_error STATUS REASON [transparent]
#                                    # a ferry-made error: status, ferry-error,
#                                    # text/plain, body "REASON: ...", and with
#                                    # "transparent" the x-error-* headers too
#   want_no_ferry_error              # the response did not come from ferry
#   ej FIELD                         # a top-level field of the echo JSON in HR_BODY
#   eh NAME                          # values of request header NAME the origin saw
#                                    # (echo JSON), one a line; empty if none
#   ehn NAME                         # how many NAME headers the origin saw
#   want_eq WHAT GOT WANT            # fail_later unless GOT = WANT
#   hcl WHAT COMMAND ARGS...         # tools/http_client.py; fail_later on a mismatch;
#                                    # output in HC_OUT, status in HC_RC
#   hmetric ADMIN NAME LABEL...      # sum of /metrics series NAME that carry every
#                                    # LABEL (name="value"), whatever the label order;
#                                    # empty if none
#   wait_hmetric ADMIN NAME OP VALUE TIMEOUT_S LABEL...
#   wait_lines FILE MSG N TIMEOUT_S KEY=VALUE...  # poll until log_lines >= N; returns 1
#                                    # at the deadline
#   good_request WHAT URL [CURL_ARGS...]  # a normal request must answer 200
#
# It lives in tools/ because every tests/integration/*.sh but lib.sh is a ctest test.
# VERBOSE=1 prints every request's status.

# shellcheck disable=SC2034  # HO_*, HR_*, HC_*: for the sourcing script
[ -f "$PLUGINS/ferry_http.so" ] || fail "no http plugin at $PLUGINS/ferry_http.so (build first)"
command -v curl >/dev/null || fail "curl is missing"

start_http_origin() {
    local name=$1 d
    shift
    d=$(tmpdir)
    start_bg "$name" python3 "$TOOLS/http_origin.py" --port-file "$d/port" --name "$name" "$@"
    HO_PID=$BG_PID
    HO_LOG=$(bg_log "$name")
    wait_file "$d/port" 10 "$HO_PID" || fail "http origin $name did not start: $(cat "$HO_LOG")"
    HO_PORT=$(cat "$d/port")
}

bytes_sha() {
    python3 "$TOOLS/http_origin.py" --sha256-of-bytes "$1"
}

HR_HDRS=$IT_ROOT/hr.hdrs
HR_BODY=$IT_ROOT/hr.body
hreq() {
    HR_WHAT=$1
    shift
    HR_RC=0
    : >"$HR_HDRS"
    : >"$HR_BODY"
    HR_STATUS=$(curl -sS --max-time "${HREQ_TIMEOUT:-30}" -D "$HR_HDRS" -o "$HR_BODY" \
        -w '%{http_code}' "$@" 2>"$IT_ROOT/hr.err") || HR_RC=$?
    [ -n "$HR_STATUS" ] || HR_STATUS=000
    [ -z "${VERBOSE:-}" ] || echo "hreq $HR_WHAT: $HR_STATUS (curl $HR_RC)" >&2
}

# The value of header $1 in the last header block of HR_HDRS (the final response: a
# 100 Continue or a CONNECT's 200 come before it).
hdr() {
    awk -v n="$1" '
        { sub(/\r$/, "") }
        /^HTTP\// { v = ""; found = 0; next }
        {
            i = index($0, ":")
            if (i > 0 && !found && tolower(substr($0, 1, i - 1)) == tolower(n)) {
                v = substr($0, i + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
                found = 1
            }
        }
        END { print v }' "$HR_HDRS"
}

body() {
    cat "$HR_BODY"
}

# What the last hreq got, for failure messages.
hr_seen() {
    local b
    b=$(head -c 200 "$HR_BODY" | tr '\r\n' '  ')
    echo "status $HR_STATUS, ferry-error '$(hdr ferry-error)', curl exit $HR_RC" \
         "$(head -c 200 "$IT_ROOT/hr.err" | tr '\n' ' '), body '$b'"
}

want_status() {
    if [ "$HR_STATUS" != "$1" ]; then
        fail_later "$HR_WHAT: want status $1, got $(hr_seen)"
        return 1
    fi
}

want_ok() {
    want_status 200
}

want_eq() {
    [ "$2" = "$3" ] && return 0
    fail_later "$1: want '$3', got '$2'"
    return 1
}

want_error() {
    local status=$1 reason=$2 mode=${3:-} v line
    want_status "$status" || return 1
    v=$(hdr ferry-error)
    [ "$v" = "$reason" ] || { fail_later "$HR_WHAT: want ferry-error '$reason', got '$v'"; return 1; }
    v=$(hdr content-type)
    [[ "$v" == text/plain* ]] || fail_later "$HR_WHAT: want Content-Type text/plain, got '$v'"
    line=$(head -n 1 "$HR_BODY")
    [[ "$line" == "$reason: "?* ]] || fail_later "$HR_WHAT: want the body '$reason: <text>', got '$line'"
    if [ "$(wc -l <"$HR_BODY")" -ne 1 ] || [ "$(tail -c 1 "$HR_BODY" | od -An -tx1 | tr -d ' ')" != 0a ]; then
        fail_later "$HR_WHAT: want a one-line body ending in a newline, got '$(head -c 200 "$HR_BODY")'"
    fi
    [ "$mode" = transparent ] || return 0
    [ -n "$(hdr x-error-message)" ] || fail_later "$HR_WHAT: no x-error-message header"
    v=$(hdr x-error-origin)
    [ "$v" = "Transparent Proxy" ] || fail_later "$HR_WHAT: want x-error-origin 'Transparent Proxy', got '$v'"
    v=$(hdr x-internal-error-code)
    [ "$v" = "$status" ] || fail_later "$HR_WHAT: want x-internal-error-code $status, got '$v'"
    [ -n "$(hdr x-request-id)" ] || fail_later "$HR_WHAT: no x-request-id header"
    v=$(hdr x-proxy-server)
    [ "$v" = ferry ] || fail_later "$HR_WHAT: want x-proxy-server ferry, got '$v'"
    return 0
}

want_no_ferry_error() {
    local v
    v=$(hdr ferry-error)
    [ -z "$v" ] || fail_later "$HR_WHAT: the origin's answer carries ferry-error '$v'"
}

# ej FIELD / eh NAME / ehn NAME: a top-level field of the echo origin's JSON answer, the
# values of request header NAME it received (one per line, case-insensitive), and how
# many it received (-1: no JSON). jq, not a python3 start per field (seconds each on a
# loaded machine).
ej() {
    jq -r -c --arg f "$1" '.[$f] | if . == null then empty else . end' "$HR_BODY" 2>/dev/null || true
}

eh() {
    jq -r --arg n "$1" '(.headers // [])[] | select(.[0] | ascii_downcase == ($n | ascii_downcase)) | .[1]' \
        "$HR_BODY" 2>/dev/null || true
}

ehn() {
    jq -r --arg n "$1" '[(.headers // [])[] | select(.[0] | ascii_downcase == ($n | ascii_downcase))] | length' \
        "$HR_BODY" 2>/dev/null || echo -1
}

hcl() {
    local what=$1 why
    shift
    HC_RC=0
    python3 "$TOOLS/http_client.py" "$@" >"$IT_ROOT/hc.out" 2>"$IT_ROOT/hc.err" || HC_RC=$?
    HC_OUT=$(cat "$IT_ROOT/hc.out")
    [ -z "${VERBOSE:-}" ] || echo "http_client.py $1 ($what): ${HC_OUT:0:300}" >&2
    if [ "$HC_RC" -ne 0 ]; then
        why=$(grep '^http_client.py:' "$IT_ROOT/hc.err" | head -n 3 || true)
        [ -n "$why" ] || why=$(tail -n 5 "$IT_ROOT/hc.err")
        fail_later "$what: $why | got: ${HC_OUT:0:400}"
        return 1
    fi
}

hmetric() {
    local admin=$1 name=$2
    shift 2
    curl -sf --max-time 5 "http://127.0.0.1:$admin/metrics" | python3 -c 'import re, sys
name, labels = sys.argv[1], sys.argv[2:]
total, found = 0.0, False
for line in sys.stdin:
    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
    if not m or m.group(1) != name:
        continue
    have = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\"", m.group(3) or ""))
    if all(l in have for l in labels):
        total += float(m.group(4))
        found = True
if found:
    print(int(total) if total == int(total) else total)' "$name" "$@"
}

wait_hmetric() {
    local admin=$1 name=$2 op=$3 want=$4 timeout=$5 i v
    shift 5
    for ((i = 0; i < timeout * 10; i++)); do
        v=$(hmetric "$admin" "$name" "$@")
        if [ -n "$v" ] && [[ "$v" =~ ^[0-9]+$ ]] && test "$v" "$op" "$want"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

wait_lines() {
    local file=$1 msg=$2 n=$3 timeout=$4 i
    shift 4
    for ((i = 0; i < timeout * 10; i++)); do
        [ "$(log_lines "$file" "$msg" "$@")" -ge "$n" ] && return 0
        sleep 0.1
    done
    return 1
}

good_request() {
    local what=$1
    shift
    hreq "$what" "$@"
    want_ok
}
