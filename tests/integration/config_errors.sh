#!/usr/bin/env bash
# config_errors.sh: bad configurations are refused with file:line:col and a clear message.
#
#   bash tests/integration/config_errors.sh [BUILD_DIR]     (default: build)
#
# `ferry check -c FILE` must exit 2 and print `FILE:LINE:COL: message` for:
#   1. an unknown listener key (`plugn`) -> "did you mean 'plugin'", at the key itself;
#   2. a listener without the required `plugin` key;
#   3. a listener naming an unknown destination;
#   4. a ${env:FERRY_TEST_UNSET} reference (the message names the reference);
#   5. an unknown plugin name;
#   6. a tcp listener without `destination:`; `worker_cpu_affinity: sometimes`; two
#      listeners on one address.
# 7. A good config exits 0 (and says ok).
# 8. `ferry gateway -c BAD` also exits 2 with the error and does not start.
# 9. FERRY_TEST_SECRET=s3cr3t-value referenced where it causes an error never appears
#    in any output (check or gateway).
# Every run's output is also checked for sanitizer reports.
# shellcheck disable=SC2016  # '${env:…}' is config text for ferry, not for the shell
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"

SECRET=s3cr3t-value
export FERRY_TEST_SECRET=$SECRET
unset FERRY_TEST_UNSET
dir=$(tmpdir)
lport=$(free_port)
admin=$(free_port)

# conf NAME LISTENER_LINE [TENANTS] [DESTINATION]: write $dir/NAME.yaml; the listener
# mapping is line 7 of the file (tests compute columns from the text itself).
conf() {
    local name=$1 listener=$2
    local tenants=${3:-'[ { id: acme, token: t0k } ]'}
    local dest=${4:-"{ Name: origin, Type: TCP, Address: \"tcp://127.0.0.1:1\", ProxyType: Internet }"}
    cat >"$dir/$name.yaml" <<YAML
plugins_dir: $PLUGINS
admin: { listen: 127.0.0.1:$admin }
tenants: $tenants
destinations:
  - $dest
listeners:
  - $listener
YAML
    echo "$dir/$name.yaml"
}

# pos FILE TEXT: "LINE:COL" (1-based) of the first occurrence of TEXT in FILE.
pos() {
    awk -v t="$2" 'i = index($0, t) { print NR ":" i; exit }' "$1"
}

# run_ferry OUTVAR CMD FILE: run `ferry CMD -c FILE`, output (stdout+stderr) into OUTVAR,
# status into RC; sanitizer reports and the secret fail at once.
run_ferry() {
    local cmd=$2 file=$3 o
    RC=0
    o=$(timeout 20 "$FERRY" "$cmd" -c "$file" 2>&1) || RC=$?
    printf '%s\n' "$o" >"$dir/last.out"
    check_sanitizers "$dir/last.out" "ferry $cmd -c $(basename "$file")"
    if grep -qF "$SECRET" <<<"$o"; then
        fail "ferry $cmd -c $file printed the secret value of \${env:FERRY_TEST_SECRET}: $o"
    fi
    printf -v "$1" '%s' "$o"
}

# want_error FILE LINE:COL TEXT...: `ferry check` exits 2 and prints a line
# "FILE:LINE:COL: ..." containing every TEXT. LINE:COL may be "LINE:*" (any column).
want_error() {
    local file=$1 at=$2 out l t ok
    shift 2
    run_ferry out check "$file"
    [ "$RC" -eq 2 ] || fail "ferry check -c $(basename "$file"): exit $RC, want 2; output: $out"
    while IFS= read -r l; do
        # shellcheck disable=SC2027  # $at is unquoted on purpose: it may hold a glob
        [[ $l == "$file:"$at": "* ]] || continue
        ok=1
        for t in "$@"; do
            [[ $l == *"$t"* ]] || ok=0
        done
        [ "$ok" -eq 1 ] && return 0
    done <<<"$out"
    fail "ferry check -c $(basename "$file"): want a line '$file:$at: …' containing" \
         "$(printf '[%s] ' "$@"); got: $out"
}

# --- 1. unknown key, with a suggestion, at the key ------------------------------------
f=$(conf unknown-key "{ name: t1, plugn: tcp, listen: \"127.0.0.1:$lport\", destination: origin }")
want_error "$f" "$(pos "$f" plugn)" "unknown key 'plugn'" "did you mean 'plugin'"

# --- 2. missing required key ----------------------------------------------------------
f=$(conf missing-plugin "{ name: t1, listen: \"127.0.0.1:$lport\", destination: origin }")
want_error "$f" "7:*" "plugin" "missing"

# --- 3. unknown destination -----------------------------------------------------------
f=$(conf unknown-dest "{ name: t1, plugin: tcp, listen: \"127.0.0.1:$lport\", destination: orign }")
want_error "$f" "$(pos "$f" orign)" "unknown destination 'orign'" "did you mean 'origin'"

# --- 4. unset environment variable ----------------------------------------------------
f=$(conf env-unset "{ name: t1, plugin: tcp, listen: \"127.0.0.1:$lport\", destination: origin }" \
    '[ { id: acme, token: "${env:FERRY_TEST_UNSET}" } ]')
want_error "$f" "3:*" '${env:FERRY_TEST_UNSET}'

# --- 5. unknown plugin ----------------------------------------------------------------
f=$(conf unknown-plugin "{ name: t1, plugin: nosuch, listen: \"127.0.0.1:$lport\", destination: origin }")
want_error "$f" "7:*" "nosuch"

# --- 6. tcp listener without a destination ---------------------------------------------
f=$(conf tcp-no-dest "{ name: t1, plugin: tcp, listen: \"127.0.0.1:$lport\" }")
want_error "$f" "7:*" "destination"

# --- 6b. worker_cpu_affinity takes auto or off only -----------------------------------
f=$(conf affinity "{ name: t1, plugin: tcp, listen: \"127.0.0.1:$lport\", destination: origin }")
printf 'worker_cpu_affinity: sometimes\n' >>"$f"
want_error "$f" "$(pos "$f" sometimes)" "worker_cpu_affinity" "want auto or off"

# --- 6c. two listeners on one address -------------------------------------------------
f=$(conf dup-listen "{ name: t1, plugin: tcp, listen: \"127.0.0.1:$lport\", destination: origin }")
printf '  - { name: t2, plugin: tcp, listen: "127.0.0.1:%s", destination: origin }\n' "$lport" >>"$f"
want_error "$f" "8:*" "is already listener 't1'"

# --- 7. a good config -----------------------------------------------------------------
good=$(conf good "{ name: t1, plugin: tcp, listen: \"127.0.0.1:$lport\", destination: origin }" \
    '[ { id: acme, token: "${env:FERRY_TEST_SECRET}" } ]')
run_ferry out check "$good"
[ "$RC" -eq 0 ] || fail "ferry check on a good config: exit $RC, want 0; output: $out"
[[ $out == *ok* ]] || fail "ferry check on a good config says nothing about ok: $out"

# --- 8. the gateway refuses a bad config at start --------------------------------------
f=$dir/unknown-key.yaml
run_ferry out gateway "$f"
[ "$RC" -eq 2 ] || fail "ferry gateway -c $(basename "$f"): exit $RC, want 2; output: $out"
[[ $out == *"$f:$(pos "$f" plugn): "*"did you mean 'plugin'"* ]] \
    || fail "ferry gateway -c $(basename "$f") does not print the file:line:col error: $out"

# --- 9. secrets never printed ---------------------------------------------------------
lst="{ name: t1, plugin: tcp, listen: \"127.0.0.1:$lport\", destination: origin }"
f=$(conf secret-port "$lst" "" \
    '{ Name: origin, Type: TCP, Address: "tcp://127.0.0.1:${env:FERRY_TEST_SECRET}", ProxyType: Internet }')
want_error "$f" "5:*" "origin"
f=$(conf secret-address "$lst" "" \
    '{ Name: origin, Type: TCP, Address: "${env:FERRY_TEST_SECRET}", ProxyType: Internet }')
want_error "$f" "5:*" "origin"
f=$(conf secret-token "$lst" \
    '[ { id: acme, token: "${env:FERRY_TEST_SECRET}" }, { id: beta, token: "${env:FERRY_TEST_SECRET}" } ]' \
    '{ Name: origin, Type: TCP, Address: "tcp://127.0.0.1:1", ProxyType: Internet, tenant: acme }')
want_error "$f" "3:*" "token"
f=$(conf secret-listen "{ name: t1, plugin: tcp, listen: \"\${env:FERRY_TEST_SECRET}\", destination: origin }")
run_ferry out check "$f"
[ "$RC" -eq 2 ] || fail "a listen address from \${env:FERRY_TEST_SECRET} ($SECRET): exit $RC, want 2: $out"
run_ferry out gateway "$dir/secret-port.yaml"
[ "$RC" -eq 2 ] || fail "ferry gateway -c secret-port.yaml: exit $RC, want 2; output: $out"

echo "ok: every bad config refused with exit 2 at file:line:col; good config ok; no secret printed"
