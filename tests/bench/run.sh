#!/usr/bin/env bash
# tests/bench/run.sh: ferry side by side with its peers, in one run, on loopback.
#
#   bash tests/bench/run.sh [BUILD_DIR] [tcp|tunnel|socks5|http|policy|ldap|store|pp|limits|dapi|all]
#                                                     (env: SECS=3 ROUNDS=3 IDLE_CONNS)
#   BASELINE=OTHER_BUILD_DIR bash tests/bench/run.sh build tcp|http
#                                      adds `base`: ferry from OTHER_BUILD_DIR (e.g. a build
#                                      of an older commit), interleaved with the others, so
#                                      a change is measured before/after in one run
#
# tcp:    direct, ferry's tcp plugin, HAProxy `mode tcp` (defaults, nbthread 2), socat.
# tunnel: ferry's tunnel (gateway + connector), the stunnel pair, ssh -R (tunnel.sh).
# socks5: ferry's socks5 plugin, microsocks, Dante (socks5.sh); conn/s also per core.
# http:   ferry's http plugin (transparent), nginx proxy_pass, HAProxy `mode http` (http.sh):
#         keep-alive req/s and p99 latency for 1 KiB and 1 MiB responses.
# policy: ferry's http plugin without and with a Lua policy rewriting three header fields,
#         nginx proxy_pass without and with the same rewrite in rewrite_by_lua (policy.sh).
# store:  ferry with store: etcd: req/s against files, propagation, 10,000 destinations,
#         recovery (store.sh).
# dapi:   the destination API's find of a BasicAuthentication destination among 1,000:
#         find/s and p99 (BASELINE=OTHER_BUILD_DIR: before/after in one run; dapi.sh).
# pp:     one OnPremise HTTP destination through the tunnel with BasicAuthentication and
#         with PrincipalPropagation (50 users' JWTs round-robin; certificates at the
#         connector): req/s ratio, verifications and issues from /metrics, µs per
#         verification and issue (pp.sh).
# limits: http req/s with `allow` + `rate` on against off; 10,000 slowloris connections:
#         gateway RSS growth and req/s beside them (limits.sh).
# ldap:   ferry's ldap plugin (bind injected, and pass-through), HAProxy `mode tcp`, direct
#         slapd (ldap.sh): 1,000 lookups on one connection, ms per run and CPU per lookup.
# Figures: bulk throughput of one stream (MiB/s), new connections per second
# (connect + 5-byte request + 5-byte reply + close, 50 concurrent loops), and user-space
# memory per idle connection (RSS growth). Ratios against the reference peer and
# against direct. Timing belongs here, never in unit tests.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
SECTION=${2:-all}
if [ "$SECTION" = tunnel ] || [ "$SECTION" = socks5 ] || [ "$SECTION" = http ] ||
   [ "$SECTION" = policy ] || [ "$SECTION" = ldap ] || [ "$SECTION" = store ] ||
   [ "$SECTION" = pp ] || [ "$SECTION" = limits ] || [ "$SECTION" = dapi ]; then
    exec env BUILD="$BUILD" bash "$ROOT/tests/bench/$SECTION.sh"
fi
# 9,900, not 10,000: this sandbox's hard RLIMIT_NOFILE is 20,000 and cannot be raised,
# and a relay holds 2 fds per connection.
IDLE_CONNS=${IDLE_CONNS:-9900}
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"

ORIGIN=$(port); FERRY_P=$(port); HAP_P=$(port); SOCAT_P=$(port); ADMIN_P=$(port)
"$LOADGEN" serve "$ORIGIN" & pids+=($!)
wait_port "$ORIGIN"

cat >"$work/ferry.yaml" <<YAML
workers: auto
plugins_dir: $BUILD/plugins
log: { level: warn, access: off }
admin: { listen: 127.0.0.1:$ADMIN_P }
destinations:
  - { Name: origin, Type: TCP, Address: "tcp://127.0.0.1:$ORIGIN", ProxyType: Internet }
listeners:
  - { name: bench, plugin: tcp, listen: "127.0.0.1:$FERRY_P", destination: origin, max_connections: 100000 }
YAML
"$FERRY" gateway -c "$work/ferry.yaml" 2>"$work/ferry.log" & FERRY_PID=$!; pids+=($FERRY_PID)

cat >"$work/haproxy.cfg" <<CFG
global
    maxconn 9950
    nbthread 2
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend fe
    bind 127.0.0.1:$HAP_P
    default_backend be
backend be
    server origin 127.0.0.1:$ORIGIN
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 & pids+=($!)
socat -lf /dev/null "TCP-LISTEN:$SOCAT_P,bind=127.0.0.1,reuseaddr,fork,backlog=4096" "TCP:127.0.0.1:$ORIGIN" & pids+=($!)
for p in "$FERRY_P" "$HAP_P" "$SOCAT_P"; do wait_port "$p"; done

declare -A PORT=([direct]=$ORIGIN [ferry]=$FERRY_P [haproxy]=$HAP_P [socat]=$SOCAT_P)
subjects=(direct ferry haproxy socat)
if [ -n "${BASELINE:-}" ]; then
    BASE_P=$(port) BASE_ADMIN=$(port)
    sed -e "s#$BUILD/plugins#$BASELINE/plugins#" -e "s#:$ADMIN_P#:$BASE_ADMIN#" \
        -e "s#:$FERRY_P#:$BASE_P#" "$work/ferry.yaml" >"$work/base.yaml"
    "$BASELINE/core/ferry" gateway -c "$work/base.yaml" 2>"$work/base.log" & pids+=($!)
    wait_port "$BASE_P"
    PORT[base]=$BASE_P
    subjects+=(base)
    echo "bench: base = $BASELINE/core/ferry ($("$BASELINE/core/ferry" --version 2>&1 | head -n 1))" >&2
fi
measure "${subjects[@]}"
table haproxy "${subjects[@]}"

HAP_PID=$(pgrep -n -f "haproxy -f $work/haproxy.cfg")
echo
idle_cost ferry "$FERRY_PID" "$FERRY_P" "$IDLE_CONNS"
idle_cost haproxy "$HAP_PID" "$HAP_P" "$IDLE_CONNS"

if [ "$SECTION" = all ]; then
    cleanup
    trap - EXIT
    echo
    env BUILD="$BUILD" bash "$ROOT/tests/bench/tunnel.sh"
    echo
    env BUILD="$BUILD" bash "$ROOT/tests/bench/socks5.sh"
    echo
    env BUILD="$BUILD" bash "$ROOT/tests/bench/http.sh"
    echo
    env BUILD="$BUILD" bash "$ROOT/tests/bench/policy.sh"
    echo
    exec env BUILD="$BUILD" bash "$ROOT/tests/bench/ldap.sh"
fi
