#!/usr/bin/env bash
# tests/bench/dapi.sh: the destination API's find, GET /destination-configuration/v1/
# destinations/{name}, of a BasicAuthentication destination (authTokens built per call)
# among 1,000 destinations of the tenant, on loopback.
#
#   BUILD=build bash tests/bench/dapi.sh     (env: SECS=3 ROUNDS=3 BASELINE=OTHER_BUILD_DIR)
#   or: bash tests/bench/run.sh build dapi
#
# find/s (50 keep-alive connections, ferry-loadgen http with the tenant's token) and p99,
# medians of interleaved rounds; with BASELINE, ferry of that build (an older commit)
# runs the same, so a change is measured before/after in one run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"

mkdir -p "$work/dests"
for i in $(seq 1 1000); do
    printf 'Name: d%04d\nType: HTTP\nURL: http://127.0.0.1:1/\n' "$i" >"$work/dests/d$i.yaml"
done
cat >"$work/dests/basic.yaml" <<'YAML'
Name: basic
Type: HTTP
URL: http://127.0.0.1:1/api
Authentication: BasicAuthentication
User: bench-user
Password: bench-password
YAML
echo "Authorization: Bearer bench-token" >"$work/headers"

declare -A ADMIN BIN
subjects=(ferry)
BIN[ferry]=$FERRY
if [ -n "${BASELINE:-}" ]; then
    subjects+=(base)
    BIN[base]=$(cd "$BASELINE" && pwd)/core/ferry
fi
for s in "${subjects[@]}"; do
    ADMIN[$s]=$(port)
    cat >"$work/$s.yaml" <<YAML
workers: 1
log: { level: warn, access: off }
admin: { listen: 127.0.0.1:${ADMIN[$s]} }
tenants: [ { id: acme, token: bench-token } ]
destinations_dir: dests
YAML
    "${BIN[$s]}" gateway -c "$work/$s.yaml" >"$work/$s.log" 2>&1 & pids+=($!)
    wait_port "${ADMIN[$s]}"
done

declare -A RUNS P99S
echo "bench: $ROUNDS rounds x $SECS s, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)" >&2
for r in $(seq 1 "$ROUNDS"); do
    for s in "${subjects[@]}"; do
        read -r rps _ p99 errs _ < <(LOADGEN_HEADERS=$work/headers "$LOADGEN" http 127.0.0.1 \
            "${ADMIN[$s]}" "$SECS" 50 /destination-configuration/v1/destinations/basic)
        [ "$errs" = 0 ] || echo "$s: $errs errors" >&2
        RUNS[$s]="${RUNS[$s]:-} $rps"
        P99S[$s]="${P99S[$s]:-} $p99"
        sleep 1
    done
done
printf '%-6s %12s %10s   %s\n' subject "find/s" "p99 ms" "runs"
for s in "${subjects[@]}"; do
    # shellcheck disable=SC2086
    printf '%-6s %12s %10s   %s\n' "$s" "$(median_g ${RUNS[$s]})" "$(median_g ${P99S[$s]})" "${RUNS[$s]}"
done
