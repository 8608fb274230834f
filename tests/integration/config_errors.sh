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
# 9b. Key stores: a Java KeyStore at KeyStoreLocation is refused at the property with
#    the exact `keytool -importkeystore -srckeystore X.jks -destkeystore X.p12
#    -deststoretype PKCS12` line; a PKCS#12 whose KeyStorePassword (from
#    ${env:FERRY_TEST_SECRET}) is wrong names the file and "wrong password", never the
#    password; the right password passes.
# 10. All errors in one run (every phase): one file with an error in each phase — a
#    top-level key (`workrs: 2`, line 1), a listener key (`destinaton`, line 4), two bad
#    plugin options, cross-checks (unknown tenant, duplicate listener name, unknown
#    destination), a tenant, an inline destination, a destinations_dir file and a
#    policy's Lua syntax — is reported whole by one `ferry check`: exactly these lines,
#    the main file in line order, then the other files in the order read, exit 2.
#    `ferry gateway` prints the same at start, and a SIGHUP to a running gateway logs
#    the same lines (and it keeps serving).
# 11. Past 20 errors: the first 20 in file order (plugin options on line 4, found last,
#    among them), then `ferry: 20 errors shown, N more not shown`.
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

# --- 6a. the issue's own example: one mistake, one error ---------------------------
# `workrs: 2` at line 1 and a tcp listener's `destinaton:` at line 4: exactly two lines,
# the tcp plugin does not also say it "needs `destination:`".
d6a=$(tmpdir)
cat >"$d6a/ferry.yaml" <<YAML
workrs: 2
plugins_dir: $PLUGINS
listeners:
  - { name: t1, plugin: tcp, listen: "127.0.0.1:$lport", destinaton: origin }
destinations:
  - { Name: origin, Type: TCP, Address: "tcp://127.0.0.1:$lport", ProxyType: Internet }
YAML
run_ferry out check "$d6a/ferry.yaml"
[ "$RC" -eq 2 ] || fail "workrs + destinaton: exit $RC, want 2; output: $out"
want_both="$d6a/ferry.yaml:1:1: unknown key 'workrs' (did you mean 'workers'?)
$d6a/ferry.yaml:4:$(($(sed -n 4p "$d6a/ferry.yaml" | grep -bo destinaton | cut -d: -f1) + 1)): listeners[0]: unknown key 'destinaton' (did you mean 'destination'?)"
[ "$out" = "$want_both" ] || fail "workrs + destinaton: want exactly:"$'\n'"$want_both"$'\n'"got:"$'\n'"$out"

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

# --- 9b. key stores: Java KeyStore, wrong PKCS#12 password ----------------------------
# A JKS file's header (magic FEEDFEED, version 2, no entries) is all ferry looks at.
printf '\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x00' >"$dir/client.jks"
f=$(conf jks "$lst" "" \
    '{ Name: origin, Type: HTTP, URL: "https://127.0.0.1:1", Authentication: ClientCertificateAuthentication, KeyStoreLocation: client.jks }')
want_error "$f" "$(pos "$f" KeyStoreLocation)" "destination 'origin'" "is a Java KeyStore" \
    "\`keytool -importkeystore -srckeystore $dir/client.jks -destkeystore $dir/client.p12 -deststoretype PKCS12\`"
if ! { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
             -subj /CN=ks -keyout "$dir/ks.key" -out "$dir/ks.crt" &&
         openssl pkcs12 -export -in "$dir/ks.crt" -inkey "$dir/ks.key" -out "$dir/client.p12" \
             -passout pass:the-right-one; } >"$dir/openssl-ks.log" 2>&1; then
    fail "openssl: cannot make client.p12: $(cat "$dir/openssl-ks.log")"
fi
f=$(conf p12-wrong "$lst" "" \
    '{ Name: origin, Type: HTTP, URL: "https://127.0.0.1:1", Authentication: ClientCertificateAuthentication, KeyStoreLocation: client.p12, KeyStorePassword: "${env:FERRY_TEST_SECRET}" }')
want_error "$f" "$(pos "$f" KeyStoreLocation)" "destination 'origin'" "$dir/client.p12" "wrong password"
f=$(conf p12-right "$lst" "" \
    '{ Name: origin, Type: HTTP, URL: "https://127.0.0.1:1", Authentication: ClientCertificateAuthentication, KeyStoreLocation: client.p12, KeyStorePassword: the-right-one }')
run_ferry out check "$f"
[ "$RC" -eq 0 ] || fail "a PKCS#12 key store with its right password: exit $RC, want 0; output: $out"

# --- 10. all errors in one run (every phase) ------------------------------------------
# The listeners come first, so the phases that find their errors last (listeners after
# tenants and destinations, plugin options after everything) report lines above theirs.
every=$(tmpdir)
mkdir "$every/dests"
printf 'return {\n  on_connect = function(conn, dest)\n    if then\n  end,\n}\n' >"$every/bad.lua"
printf 'Name: erp\nType: TCP\nAddress: "tcp://10.0.0.1:3300"\nProxyType: OnPrem\n' \
    >"$every/dests/erp.yaml"
p1=$(free_port)
p2=$(free_port)
p3=$(free_port)
p4=$(free_port)
f=$every/ferry.yaml
cat >"$f" <<YAML
workrs: 2
plugins_dir: $PLUGINS
listeners:
  - { name: web, plugin: http, listen: "127.0.0.1:$p1", destinaton: origin }
  - { name: fwd, plugin: http, listen: "127.0.0.1:$p2", mode: forwrd, max_headers: 3 }
  - { name: s5, plugin: socks5, listen: "127.0.0.1:$p3", tenant: acne }
  - { name: web, plugin: tcp, listen: "127.0.0.1:$p4", destination: orign }
admin: { listen: 127.0.0.1:$admin }
tenants:
  - { id: acme, token: t0k }
  - { id: acme, token: t1k }
destinations_dir: dests
destinations:
  - { Name: origin, Type: TCP, Address: "tcp://127.0.0.1:1", ProxyType: Internet, policy: bad.lua }
  - { Name: broken, Type: TCP, ProxyType: Internet }
YAML
want_all=$(cat <<WANT
$f:1:1: unknown key 'workrs' (did you mean 'workers'?)
$f:$(pos "$f" destinaton): listeners[0]: unknown key 'destinaton' (did you mean 'destination'?)
$f:$(pos "$f" "mode: forwrd"): listeners[1] (fwd): mode: want 'transparent' (call http://<destination>/) or 'forward' (a proxy for tenants), not 'forwrd'
$f:$(pos "$f" max_headers): listeners[1] (fwd): max_headers: want a whole number from 8 to 256, not '3'
$f:$(pos "$f" acne): listeners[2]: unknown tenant 'acne'
$f:7:13: listeners[3]: duplicate listener name 'web' (first at line 4)
$f:$(pos "$f" orign): listeners[3]: unknown destination 'orign' (did you mean 'origin'?)
$f:11:11: tenants[1]: tenant 'acme' is defined twice (first at line 10)
$f:15:5: destination 'broken': missing required property 'Address' (tcp://host:port)
$every/dests/erp.yaml:4:1: destination 'erp': ProxyType: unknown value 'OnPrem'
$every/bad.lua:3:8: unexpected symbol near 'then' (policy of destination 'origin')
WANT
)
# want_lines WHAT GOT: GOT must be exactly want_all, line for line.
want_lines() {
    [ "$2" = "$want_all" ] && return 0
    fail "$1: want exactly, in this order:"$'\n'"$want_all"$'\n'"got:"$'\n'"$2"$'\n'"diff:" \
         "$(diff <(printf '%s\n' "$want_all") <(printf '%s\n' "$2"))"
}
run_ferry out check "$f"
[ "$RC" -eq 2 ] || fail "ferry check -c (every phase): exit $RC, want 2; output: $out"
want_lines "ferry check -c (every phase)" "$out"
run_ferry out gateway "$f"
[ "$RC" -eq 2 ] || fail "ferry gateway -c (every phase): exit $RC, want 2; output: $out"
want_lines "ferry gateway -c (every phase) at start" "$out"

# SIGHUP: a running gateway (origin without a policy, so none to fall back on) is given
# the file; its log gets the same lines and it keeps serving the running configuration.
cp "$good" "$every/running.yaml"
start_ferry "$every/running.yaml" "$admin"
cp "$f" "$every/running.yaml"
kill -HUP "$FERRY_PID"
wait_metric "$admin" 'ferry_reloads_total{result="failed"}' -eq 1 10 ||
    fail "SIGHUP with the every-phase file: no failed reload counted"
want_lines "SIGHUP (every phase), the gateway's log" \
    "$(grep -v '^{' "$FERRY_LOG" | sed "s|^$every/running.yaml:|$f:|")"
grep -q '"msg":"reload failed: configuration has errors; keeping the running one"' \
    "$FERRY_LOG" || fail "SIGHUP (every phase): no 'keeping the running one' line"
wait_port 127.0.0.1 "$lport" 5 "$FERRY_PID" || fail "the running listener is gone after SIGHUP"
stop_ferry

# --- 10b. each plugin reports every bad option, none called unknown for going unread ---
f=$every/options.yaml
cat >"$f" <<YAML
plugins_dir: $PLUGINS
admin: { listen: 127.0.0.1:$admin }
listeners:
  - { name: s, plugin: socks5, listen: "127.0.0.1:$p1", auth: bogus, handshake_timeout_ms: 1, egress: [ "x", "y:0" ] }
  - { name: l, plugin: ldap, listen: "127.0.0.1:$p2", max_message_bytes: 1, upstream_timeout_ms: 1, bind_timeout_ms: 1 }
YAML
run_ferry out check "$f"
[ "$RC" -eq 2 ] || fail "ferry check -c options.yaml: exit $RC, want 2; output: $out"
want_opts=$(cat <<WANT
$f:$(pos "$f" "auth:"): listeners[0] (s): auth: want 'tenant' (user/password or 0x80) or 'none'
$f:$(pos "$f" handshake_timeout_ms): listeners[0] (s): handshake_timeout_ms: want a whole number from 100 to 600000, not '1'
$f:$(pos "$f" egress): listeners[0] (s): egress: 'x': want host:port, host being a name, an address, '*' or '*.suffix', port a number or '*'
$f:$(pos "$f" egress): listeners[0] (s): egress: 'y:0': want host:port, host being a name, an address, '*' or '*.suffix', port a number or '*'
$f:5:5: listeners[1] (l): an ldap listener serves one destination: add \`destination:\` (an LDAP destination)
$f:$(pos "$f" max_message_bytes): listeners[1] (l): max_message_bytes: want a whole number from 1024 to 67108864, not '1'
$f:$(pos "$f" upstream_timeout_ms): listeners[1] (l): upstream_timeout_ms: want a whole number from 100 to 43200000, not '1'
$f:$(pos "$f" bind_timeout_ms): listeners[1] (l): bind_timeout_ms: want a whole number from 100 to 600000, not '1'
WANT
)
[ "$out" = "$want_opts" ] || fail "options.yaml: want exactly:"$'\n'"$want_opts"$'\n'"got:"$'\n'"$out"

# --- 11. past 20 errors: the first 20 in file order -------------------------------------
f=$every/many.yaml
{
    printf 'plugins_dir: %s\nadmin: { listen: 127.0.0.1:%s }\nlisteners:\n' "$PLUGINS" "$admin"
    printf '  - { name: h, plugin: http, listen: "127.0.0.1:%s", max_headers: 1,' "$p1"
    printf ' max_uri_bytes: 1, request_timeout_ms: 1, forwarded_headers: maybe }\n'
    for i in $(seq 5 26); do
        printf 'unknown_%s: 1\n' "$i"
    done
} >"$f"
run_ferry out check "$f"
[ "$RC" -eq 2 ] || fail "ferry check -c many.yaml: exit $RC, want 2; output: $out"
mapfile -t lines <<<"$out"
[ "${#lines[@]}" -eq 21 ] ||
    fail "many.yaml: want 20 errors and a summary, got ${#lines[@]} lines: $out"
for i in 0 1 2 3; do
    [[ ${lines[$i]} == "$f:4:"* ]] ||
        fail "many.yaml: line $((i + 1)) should be a plugin option of line 4: $out"
done
[ "${lines[4]}" = "$f:5:1: unknown key 'unknown_5'" ] || fail "many.yaml: line 5: ${lines[4]}"
[ "${lines[19]}" = "$f:20:1: unknown key 'unknown_20'" ] || fail "many.yaml: line 20: ${lines[19]}"
[ "${lines[20]}" = "ferry: 20 errors shown, 6 more not shown" ] ||
    fail "many.yaml: want 'ferry: 20 errors shown, 6 more not shown' last, got '${lines[20]}'"

echo "ok: every bad config refused with exit 2 at file:line:col; good config ok; no secret" \
     "printed; every phase reported in one run, in file order, at most 20"
