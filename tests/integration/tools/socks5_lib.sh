# shellcheck shell=bash
# tests/integration/tools/socks5_lib.sh: helpers for the socks5_*.sh scripts. Source it
# after lib.sh, tools/tcp_lib.sh and tools/tunnel_lib.sh (it uses fail_later).
#
#   s5 WHAT COMMAND ARGS...      tools/socks5.py COMMAND ARGS; a mismatch is recorded with
#                                fail_later (WHAT names the check) and the script goes on;
#                                the JSON result is in S5_OUT, the exit status in S5_RC
#   s5_must WHAT COMMAND ARGS... the same, but a mismatch fails the script at once
#   reply CODE                   the 10-byte reply 05 CODE 00 01 00000000 0000, as hex
#   http_origin NAME DIR         python3 -m http.server on 127.0.0.1, serving DIR;
#                                sets HTTP_PORT
#   curl_socks WHAT WANT ARGS... curl ARGS (the proxy options and the URL); want exit 0
#                                and WANT in the body (else fail_later)
#   access_count FILE KEY=VALUE...  access-log lines with those fields (log_lines rules)
#
# It lives in tools/ because every tests/integration/*.sh but lib.sh is a ctest test.

# shellcheck disable=SC2034  # S5_OUT, S5_RC, S5_PY, HTTP_PORT: for the sourcing script
[ -f "$PLUGINS/ferry_socks5.so" ] || fail "no socks5 plugin at $PLUGINS/ferry_socks5.so (build first)"
# The interpreter for tools/socks5.py: one that has PySocks (Debian's python3-socks lives
# in /usr/bin/python3's path, which a pyenv/venv python3 first in PATH does not see).
S5_PY=""
for py in python3 /usr/bin/python3; do
    if "$py" -c 'import socks' 2>/dev/null; then
        S5_PY=$py
        break
    fi
done
[ -n "$S5_PY" ] || fail "PySocks is missing: apt-get install python3-socks (the tests use it as a client)"

s5_run() {
    local what=$1
    shift
    S5_RC=0
    "$S5_PY" "$TOOLS/socks5.py" "$@" >"$IT_ROOT/s5.out" 2>"$IT_ROOT/s5.err" || S5_RC=$?
    S5_OUT=$(cat "$IT_ROOT/s5.out")
    [ -z "${VERBOSE:-}" ] || echo "socks5.py $1 ($what): $S5_OUT" >&2
    if [ "$S5_RC" -ne 0 ]; then
        local why
        why=$(grep '^socks5.py:' "$IT_ROOT/s5.err" | head -n 3 || true)
        [ -n "$why" ] || why=$(tail -n 5 "$IT_ROOT/s5.err" || true)
        S5_ERR="$what: $why | result: ${S5_OUT:-none}"
    fi
}

s5() {
    s5_run "$@"
    [ "$S5_RC" -eq 0 ] || fail_later "$S5_ERR"
    return 0
}

s5_must() {
    s5_run "$@"
    [ "$S5_RC" -eq 0 ] || fail "$S5_ERR"
}

reply() {
    printf '05%s000100000000 0000' "$1" | tr -d ' '
}

http_origin() {
    local name=$1 docroot=$2
    HTTP_PORT=$(free_port)
    start_bg "$name" python3 -m http.server --bind 127.0.0.1 --directory "$docroot" "$HTTP_PORT"
    wait_port 127.0.0.1 "$HTTP_PORT" 10 "$BG_PID" || fail "http origin $name did not listen on 127.0.0.1:$HTTP_PORT"
}

curl_socks() {
    local what=$1 want=$2 rc=0 body
    shift 2
    body=$(curl -sS --max-time 10 "$@" 2>"$IT_ROOT/curl.err") || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail_later "$what: curl exit $rc: $(cat "$IT_ROOT/curl.err") (curl $*)"
    elif [[ "$body" != *"$want"* ]]; then
        fail_later "$what: want '$want' in the body, got '${body:0:200}' (curl $*)"
    fi
    return 0
}

access_count() {
    local file=$1
    shift
    log_lines "$file" "" "$@"
}
