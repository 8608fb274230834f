#!/usr/bin/env bash
# store_etcd.sh: two gateway replicas sharing their destinations through a real etcd
# (Debian's etcd-server, one member on loopback, started and stopped here by PID).
#
#   bash tests/integration/store_etcd.sh [BUILD_DIR]     (default: build)
#
# Replicas A and B: the same ferry.yaml with `store: etcd:` (B with a cache file), a
# shared transparent http listener each, in front of tools/http_origin.py.
# 1. Both start, ready, ferry_store_up 1; each registered itself: ferry_replicas 2.
# 2. A destination created through A's API is used through B (measured; within 1 s, 5 s
#    under sanitizers); `etcdctl put` / `del` are seen by both.
# 3. A create of an existing name is 409; find has an ETag; PUT with a stale If-Match
#    is 412 and with the current one 200; a DELETE with a stale If-Match is 412.
# 4. Bad values: a key whose JSON does not parse, one that fails validation, one over
#    1 MiB: logged with the key, counted (ferry_store_rejected_total), skipped; the last
#    good version of that destination stays in use.
# 5. etcd stopped (SIGSTOP): both replicas go degraded (ferry_store_up 0, /readyz 200
#    "store: degraded"), traffic carries on, API writes are 503 ferry-error
#    store-unavailable; etcd back: up again.
# 6. B cut off (SIGSTOP) while destinations change: after SIGCONT, B has them.
# 7. Compaction while B was stopped (its watch broken by an etcd restart first): B reads
#    the snapshot again (ferry_store_resyncs_total) and ends in the final state: nothing
#    deleted survives.
# 8. etcd down: B restarted serves from its cache (log names its age), degraded and
#    ready; C without a cache is not ready (503 "no snapshot yet") until etcd is back.
# Every ferry exits 0 on SIGTERM with no sanitizer report; no secret in any log.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/http_lib.sh"
# shellcheck source=tests/integration/tools/etcd_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/etcd_lib.sh"

dir=$(tmpdir)
# A command failing under set -e would end the test without a word: say which.
trap 'echo "FAIL: $(basename "$0"): line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR
start_http_origin origin --echo-all
op=$HO_PORT
start_etcd 1
SECRET='pw-that-must-not-be-logged'
# Propagation bound: the issue's 1 s; sanitizer builds run several times slower.
limit_ms=1000
grep -q '^FERRY_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null && limit_ms=5000

# write_gw NAME [cache]: a replica's config; sets <NAME>_admin and <NAME>_http.
write_gw() {
    local name=$1 cache=${2:-} admin http
    admin=$(free_port)
    http=$(free_port)
    eval "${name}_admin=$admin ${name}_http=$http"
    cat >"$dir/$name.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$admin }
tenants:
  - { id: acme, token: acme-token }
  - { id: beta, token: beta-token }
store:
  etcd:
    endpoints: $ETCD_EPS
    prefix: /ferry-it
${cache:+    cache: $cache}
listeners:
  - { name: shared, plugin: http, listen: "127.0.0.1:$http", mode: transparent }
YAML
    out=$("$FERRY" check -c "$dir/$name.yaml" 2>&1) || fail "ferry check rejects $name.yaml: $out"
}

declare -A GW_PID=() GW_LOG=()
# start_gw NAME: start a replica (logs in $(bg_log gw-NAME)); waits for /healthz.
start_gw() {
    local name=$1 admin i
    admin=$(eval echo "\$${name}_admin")
    start_bg "gw-$name" "$FERRY" gateway -c "$dir/$name.yaml"
    GW_PID[$name]=$BG_PID
    GW_LOG[$name]=$(bg_log "gw-$name")
    for ((i = 0; i < 300; i++)); do
        curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$admin/healthz" && return 0
        kill -0 "$BG_PID" 2>/dev/null || fail "replica $name exited at startup"
        sleep 0.05
    done
    fail "replica $name: no /healthz within 15s"
}

stop_gw() {
    local name=$1 rc=0
    stop_pid "${GW_PID[$name]}" 15 || rc=$?
    check_sanitizers "${GW_LOG[$name]}" "replica $name"
    [ "$rc" -eq 0 ] || fail "replica $name exited with $rc after SIGTERM (want 0)"
}

# readyz NAME: "<status> <body on one line>"
readyz() {
    local admin
    admin=$(eval echo "\$${1}_admin")
    curl -s --max-time 5 -w ' %{http_code}' "http://127.0.0.1:$admin/readyz" | tr '\n' ' '
}

# wait_ready NAME TIMEOUT_S
wait_ready() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [[ "$(readyz "$1")" == *" 200" ]] && return 0
        sleep 0.1
    done
    fail "replica $1 not ready after $2 s: $(readyz "$1")"
}

# route NAME DEST: the status replica NAME's transparent listener answers for Host DEST.
route() {
    local http
    http=$(eval echo "\$${1}_http")
    curl -s -o /dev/null --max-time 5 -w '%{http_code}' -H "Host: $2" "http://127.0.0.1:$http/"
}

# wait_route NAME DEST STATUS TIMEOUT_S: poll until route answers STATUS; sets WAITED_MS.
wait_route() {
    local start now i got
    start=$(date +%s%N)
    for ((i = 0; i < $4 * 50; i++)); do
        got=$(route "$1" "$2")
        if [ "$got" = "$3" ]; then
            now=$(date +%s%N)
            WAITED_MS=$(((now - start) / 1000000))
            return 0
        fi
        sleep 0.02
    done
    fail "replica $1: Host $2 still answers $got after $4 s (want $3)"
}

# api NAME TOKEN METHOD PATH [JSON [HEADER]]: one destination API call to replica NAME;
# sets HR_STATUS, HR_BODY, HR_HDRS (http_lib's hreq).
api() {
    local name=$1 tok=$2 method=$3 path=$4 admin
    admin=$(eval echo "\$${name}_admin")
    local args=(-X "$method" -H "Authorization: Bearer $tok")
    [ -z "${5:-}" ] || args+=(-H 'Content-Type: application/json' --data-binary "$5")
    [ -z "${6:-}" ] || args+=(-H "$6")
    hreq "$name $method $path" "${args[@]}" \
        "http://127.0.0.1:$admin/destination-configuration/v1$path"
}

dest_json() {   # dest_json NAME [PATH]
    printf '{"Name":"%s","Type":"HTTP","URL":"http://127.0.0.1:%s%s","Authentication":"BasicAuthentication","User":"u","Password":"%s"}' \
        "$1" "$op" "${2:-}" "$SECRET"
}

write_gw a
write_gw b "$dir/b-cache.json"
write_gw c
ectl put /ferry-it/destinations/acme/seed "$(dest_json seed)" >/dev/null
start_gw a
start_gw b
wait_ready a 15
wait_ready b 15

# --- 1. both up, both registered ---------------------------------------------------------
need_metric "$a_admin" ferry_store_up -eq 1 10
need_metric "$b_admin" ferry_store_up -eq 1 10
need_metric "$a_admin" ferry_replicas -eq 2 10
need_metric "$b_admin" ferry_replicas -eq 2 10
[ "$(ectl get --prefix /ferry-it/replicas/ --keys-only | grep -c .)" = 2 ] ||
    fail "want 2 replica keys in etcd: $(ectl get --prefix /ferry-it/replicas/ --keys-only)"
wait_route a seed 200 5
wait_route b seed 200 5

# --- 2. one replica's change, every replica's truth --------------------------------------
api a acme-token POST /subaccountDestinations "$(dest_json made-on-a)"
want_status 201 || fail "create through A: $HR_STATUS $(body)"
wait_route b made-on-a 200 "$(((limit_ms + 999) / 1000))"
echo "propagation A's API -> B: ${WAITED_MS} ms (limit ${limit_ms} ms)"
[ "$WAITED_MS" -le "$limit_ms" ] || fail_later "B used A's new destination after ${WAITED_MS} ms (> ${limit_ms} ms)"
[ "$(route a made-on-a)" = 200 ] || fail_later "A does not route its own creation at once"
ectl put /ferry-it/destinations/beta/from-etcdctl "$(dest_json from-etcdctl)" >/dev/null
wait_route a from-etcdctl 200 5
wait_route b from-etcdctl 200 5
ectl del /ferry-it/destinations/beta/from-etcdctl >/dev/null
wait_route a from-etcdctl 404 5
wait_route b from-etcdctl 404 5

# --- 3. 409, ETag, If-Match -------------------------------------------------------------
api b acme-token POST /subaccountDestinations "$(dest_json made-on-a)"
want_status 409 || true
api a acme-token GET /destinations/made-on-a
want_ok || true
etag=$(hdr ETag)
[[ "$etag" =~ ^\"[0-9]+\"$ ]] || fail_later "find: ETag '$etag' is not a quoted revision"
mr=$(ectl get /ferry-it/destinations/acme/made-on-a -w json | jq -r '.kvs[0].mod_revision')
[ "$etag" = "\"$mr\"" ] || fail_later "ETag $etag is not the key's mod_revision $mr"
api b acme-token GET /subaccountDestinations
want_ok || true
[ -n "$(hdr ETag)" ] || fail_later "list: no ETag"
api b acme-token PUT /subaccountDestinations "$(dest_json made-on-a /v2)" "If-Match: $etag"
want_ok || fail "update with the current ETag: $HR_STATUS $(body)"
api a acme-token PUT /subaccountDestinations "$(dest_json made-on-a /v3)" "If-Match: $etag"
want_status 412 || true
api a acme-token DELETE /subaccountDestinations/made-on-a "" "If-Match: $etag"
want_status 412 || true
api a beta-token GET /destinations/made-on-a
want_status 404 || true
got=$(ectl get /ferry-it/destinations/acme/made-on-a --print-value-only | jq -r .URL)
[ "$got" = "http://127.0.0.1:$op/v2" ] || fail_later "etcd holds URL $got after a 412 (want /v2)"

# --- 4. bad values ------------------------------------------------------------------------
rej_a=$(metric "$a_admin" ferry_store_rejected_total)
ectl put /ferry-it/destinations/acme/seed '{"Type":"HTTP", not json' >/dev/null
ectl put /ferry-it/destinations/acme/seed '{"Name":"seed","Type":"HTTP"}' >/dev/null
python3 -c 'import json; print(json.dumps({"Name":"seed","Type":"HTTP","URL":"http://127.0.0.1:1","X":"y"*(1<<20)}))' \
    >"$dir/big.json"
ectl put /ferry-it/destinations/acme/seed <"$dir/big.json" >/dev/null
need_metric "$a_admin" ferry_store_rejected_total -ge $((rej_a + 3)) 10
need_metric "$b_admin" ferry_store_rejected_total -ge 3 10
[ "$(route a seed)" = 200 ] || fail_later "A lost seed's last good version"
[ "$(route b seed)" = 200 ] || fail_later "B lost seed's last good version"
grep -q '"key":"/ferry-it/destinations/acme/seed".*"reason":"not JSON' "${GW_LOG[a]}" ||
    fail_later "A's log does not name the key and the reason of the bad value"
grep -q 'missing required property' "${GW_LOG[b]}" ||
    fail_later "B's log does not say why seed's value failed validation"
ectl put /ferry-it/destinations/acme/seed "$(dest_json seed)" >/dev/null

# --- 5. etcd stopped: degraded, traffic carries on, writes 503 -----------------------------
kill -STOP "${ETCD_PID[0]}"
need_metric "$a_admin" ferry_store_up -eq 0 15
need_metric "$b_admin" ferry_store_up -eq 0 15
r=$(readyz a)
[[ "$r" == *"store: degraded"*" 200" ]] || fail_later "A's /readyz while etcd is down: $r"
[ "$(route a seed)" = 200 ] || fail_later "A stopped serving seed while etcd is down"
[ "$(route b made-on-a)" = 200 ] || fail_later "B stopped serving made-on-a while etcd is down"
api a acme-token POST /subaccountDestinations "$(dest_json while-down)"
want_status 503 || true
want_eq "ferry-error of a write while etcd is down" "$(hdr ferry-error)" store-unavailable
kill -CONT "${ETCD_PID[0]}"
need_metric "$a_admin" ferry_store_up -eq 1 15
need_metric "$b_admin" ferry_store_up -eq 1 15
[ "$(route a while-down)" = 404 ] || fail_later "a write refused with 503 was made after all"

# --- 6. B cut off while things change ------------------------------------------------------
kill -STOP "${GW_PID[b]}"
ectl put /ferry-it/destinations/acme/while-b-away "$(dest_json while-b-away)" >/dev/null
ectl del /ferry-it/destinations/acme/made-on-a >/dev/null
kill -CONT "${GW_PID[b]}"
wait_route b while-b-away 200 10
wait_route b made-on-a 404 10

# --- 7. compaction while B was stopped ------------------------------------------------------
resync_b=$(metric "$b_admin" ferry_store_resyncs_total)
kill -STOP "${GW_PID[b]}"
# Break B's watch first (an etcd restart), so that no change reaches B's socket before
# the compaction: B must then ask for a revision that is gone.
etcd_stop 0
etcd_start 0
etcd_wait_healthy
for i in 1 2 3; do
    ectl put /ferry-it/destinations/acme/churn "$(dest_json churn "/$i")" >/dev/null
done
ectl put /ferry-it/destinations/acme/after-compact "$(dest_json after-compact)" >/dev/null
ectl del /ferry-it/destinations/acme/while-b-away >/dev/null
rev=$(ectl endpoint status -w json | jq -r '.[0].Status.header.revision')
ectl compact "$rev" --physical >/dev/null
kill -CONT "${GW_PID[b]}"
wait_route b after-compact 200 15
wait_route b while-b-away 404 5
need_metric "$b_admin" ferry_store_resyncs_total -ge $((resync_b + 1)) 10
grep -q '"msg":"store: reading the snapshot again".*compacted' "${GW_LOG[b]}" ||
    fail_later "B's log has no resync line naming the compaction"
need_metric "$a_admin" ferry_store_up -eq 1 15

# --- 8. the cache, and not ready without one ------------------------------------------------
wait_file "$dir/b-cache.json" 5 || fail "B wrote no cache file"
[ "$(stat -c %a "$dir/b-cache.json")" = 600 ] || fail_later "the cache file is not mode 600"
sleep 1.2   # the cache is written at most once a second: let the last change land in it
etcd_stop 0
stop_gw b
start_gw b
wait_ready b 10
r=$(readyz b)
[[ "$r" == *"store: degraded"*" 200" ]] || fail_later "B from its cache: /readyz $r"
[ "$(route b after-compact)" = 200 ] || fail_later "B from its cache does not serve after-compact"
[ "$(route b while-b-away)" = 404 ] || fail_later "B's cache brought back a deleted destination"
grep -q '"msg":"store: serving from the cache until etcd answers".*"age_s"' "${GW_LOG[b]}" ||
    fail_later "B's log does not say it serves from the cache and how old it is"
start_gw c
r=$(readyz c)
[[ "$r" == *"no snapshot yet"*" 503" ]] || fail_later "C without cache or etcd: /readyz $r (want 503)"
etcd_start 0
etcd_wait_healthy
wait_ready c 15
need_metric "$c_admin" ferry_store_up -eq 1 15
wait_route c after-compact 200 5

# --- the end ---------------------------------------------------------------------------------
for n in a b c; do
    grep -q "$SECRET" "${GW_LOG[$n]}" && fail_later "replica $n logged a password"
done
stop_gw a
stop_gw b
stop_gw c
fail_deferred
echo "PASS: store_etcd.sh"
