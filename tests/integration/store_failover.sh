#!/usr/bin/env bash
# store_failover.sh: a gateway on a three-member etcd cluster loses the leader.
#
#   bash tests/integration/store_failover.sh [BUILD_DIR]     (default: build)
#
# 1. Three etcd members on loopback; a gateway with all three endpoints serves a
#    destination from etcd.
# 2. The leader is stopped (SIGTERM, by PID). Meanwhile a client keeps requesting the
#    destination through the gateway: every request answers 200 (lookups never touch
#    etcd). Destination API writes answer 201 again once a new leader is elected (the
#    client retries 503s; the time to the first 201 is printed); `etcdctl put` through
#    the survivors reaches the gateway; ferry_store_up is 1 again.
# 3. The old leader comes back and catches up; the gateway exits 0 on SIGTERM with no
#    sanitizer report.
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
start_etcd 3
admin=$(free_port)
http=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$admin }
tenants:
  - { id: acme, token: acme-token }
store:
  etcd:
    endpoints: $ETCD_EPS
    prefix: /ferry-fo
listeners:
  - { name: shared, plugin: http, listen: "127.0.0.1:$http", mode: transparent }
YAML
ectl put /ferry-fo/destinations/acme/web "{\"Name\":\"web\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\"}" >/dev/null
start_ferry "$dir/ferry.yaml" "$admin"
need_metric "$admin" ferry_store_up -eq 1 15
API=http://127.0.0.1:$admin/destination-configuration/v1

route() {
    curl -s -o /dev/null --max-time 5 -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$http/"
}
for ((i = 0; i < 100; i++)); do
    [ "$(route web)" = 200 ] && break
    sleep 0.05
done
[ "$(route web)" = 200 ] || fail "the gateway does not serve web from etcd"

# A reader that never stops while the leader goes: one request after another, each
# answer's status on a line, until the stop file appears (bounded at 60 s).
reads=$dir/reads
(
    end=$((SECONDS + 60))
    while [ ! -e "$dir/stop-reads" ] && [ "$SECONDS" -lt "$end" ]; do
        route web >>"$reads"
        echo >>"$reads"
    done
) &
reader=$!

leader=$(etcd_leader) || fail "no etcd leader"
echo "stopping etcd leader m$leader"
t0=$(date +%s%N)
etcd_stop "$leader"

# Writes resume after the election (503 store-unavailable until then).
code=000
for ((i = 0; i < 300; i++)); do
    code=$(curl -s -o "$dir/w.body" --max-time 10 -w '%{http_code}' -X POST \
        -H 'Authorization: Bearer acme-token' -H 'Content-Type: application/json' \
        --data-binary "{\"Name\":\"after-failover\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\"}" \
        "$API/subaccountDestinations")
    [ "$code" = 201 ] && break
    [ "$code" = 503 ] || [ "$code" = 500 ] ||
        fail "a write during the election answered $code: $(cat "$dir/w.body")"
    sleep 0.1
done
[ "$code" = 201 ] || fail "writes did not resume within 30 s of the leader stopping"
t1=$(date +%s%N)
echo "first write accepted $(((t1 - t0) / 1000000)) ms after the leader stopped"
[ "$(route after-failover)" = 200 ] || fail_later "the write's destination is not served"
others=""
for ((i = 0; i < ETCD_N; i++)); do
    [ "$i" = "$leader" ] || others+="${others:+,}127.0.0.1:${ETCD_CLIENT[i]}"
done
etcdctl --endpoints "$others" put /ferry-fo/destinations/acme/via-survivors \
    "{\"Name\":\"via-survivors\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\"}" >/dev/null
for ((i = 0; i < 200; i++)); do
    [ "$(route via-survivors)" = 200 ] && break
    sleep 0.05
done
[ "$(route via-survivors)" = 200 ] || fail_later "a put through the survivors did not reach the gateway"
need_metric "$admin" ferry_store_up -eq 1 15

touch "$dir/stop-reads"
wait "$reader" || true
total=$(grep -c . "$reads" || true)
bad=$(grep -vc '^200$' "$reads" || true)
echo "reads during the failover: $total, not 200: $bad"
[ "$total" -gt 0 ] || fail "the reader made no request"
[ "$bad" = 0 ] || fail_later "$bad of $total reads failed while the leader changed: $(grep -v '^200$' "$reads" | sort | uniq -c | tr '\n' ' ')"

# The old leader comes back and catches up.
etcd_start "$leader"
etcd_wait_healthy
got=$(etcdctl --endpoints "127.0.0.1:${ETCD_CLIENT[leader]}" get /ferry-fo/destinations/acme/via-survivors --print-value-only --consistency=s 2>/dev/null || true)
for ((i = 0; i < 100 && -z "$got"; i++)); do
    sleep 0.1
    got=$(etcdctl --endpoints "127.0.0.1:${ETCD_CLIENT[leader]}" get /ferry-fo/destinations/acme/via-survivors --print-value-only --consistency=s 2>/dev/null || true)
done
[ -n "$got" ] || fail_later "the old leader did not catch up"
stop_ferry
fail_deferred
echo "PASS: store_failover.sh"
