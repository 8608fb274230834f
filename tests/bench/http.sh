#!/usr/bin/env bash
# tests/bench/http.sh: ferry's http plugin (transparent mode) against nginx proxy_pass and
# HAProxy `mode http`, and direct, in one run. Run by tests/bench/run.sh, or alone:
#
#   BUILD=build bash tests/bench/http.sh        (env: SECS=3 ROUNDS=3 CONNS_1K=50 CONNS_1M=8)
#   BASELINE=OTHER_BUILD_DIR adds `base`: the same ferry from another build (before/after)
#
# The origin is an nginx serving two static files, 1 KiB and 1 MiB (Content-Length
# framed). Every proxy keeps connections alive on both sides and runs 2 workers/threads
# (this VM has 2 cores), without access logs. The client is `ferry-loadgen http`: N
# keep-alive connections, one request in flight on each; req/s and p99 latency (request
# sent -> last body byte). A subject that fails (ferry before its http plugin exists)
# is reported "n/a" with the reason; the others are still measured.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONNS_1K=${CONNS_1K:-50}
CONNS_1M=${CONNS_1M:-8}
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"

ORIGIN=$(port); FERRY_P=$(port); ADMIN_P=$(port); NGINX_P=$(port); HAP_P=$(port)
mkdir -p "$work/www"
head -c 1024 /dev/urandom >"$work/www/1k"
head -c $((1024 * 1024)) /dev/urandom >"$work/www/1m"

# The origin: one worker, so that the origin costs the same whoever is in front of it.
nginx_conf origin 1 "    server {
        listen 127.0.0.1:$ORIGIN;
        sendfile on;
        tcp_nopush on;
        root $work/www;
        default_type application/octet-stream;
    }"
# nginx as the proxy: a keep-alive upstream pool. Responses stream through its memory
# buffers (never a temp file: proxy_max_temp_file_size 0).
nginx_conf proxy 2 "    upstream origin {
        server 127.0.0.1:$ORIGIN;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX_P;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_max_temp_file_size 0;
        }
    }"
nginx -p "$work/origin" -e "$work/origin/error.log" -c "$work/origin/nginx.conf" & pids+=($!)
origin_pid=$!
wait_port "$ORIGIN"
nginx -p "$work/proxy" -e "$work/proxy/error.log" -c "$work/proxy/nginx.conf" & pids+=($!)
nginx_pid=$!

cat >"$work/haproxy.cfg" <<CFG
global
    maxconn 4096
    nbthread 2
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend fe
    bind 127.0.0.1:$HAP_P
    default_backend be
backend be
    server origin 127.0.0.1:$ORIGIN
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 & pids+=($!)
haproxy_pid=$!

cat >"$work/ferry.yaml" <<YAML
workers: 2
plugins_dir: $BUILD/plugins
log: { level: warn, access: off }
admin: { listen: 127.0.0.1:$ADMIN_P }
destinations:
  - { Name: bench-origin, Type: HTTP, URL: "http://127.0.0.1:$ORIGIN", ProxyType: Internet,
      Authentication: NoAuthentication }
listeners:
  - { name: bench, plugin: http, listen: "127.0.0.1:$FERRY_P", mode: transparent,
      destination: bench-origin, max_connections: 100000 }
YAML
"$FERRY" gateway -c "$work/ferry.yaml" 2>"$work/ferry.log" & pids+=($!)
ferry_pid=$!

# Whose CPU time (cpu_ticks, common.sh) is each subject's cost.
declare -A CPU_PID=([direct]=$origin_pid [ferry]=$ferry_pid [nginx]=$nginx_pid
                    [haproxy]=$haproxy_pid)

SUBJECTS=(direct ferry nginx haproxy)
declare -A PORT=([direct]=$ORIGIN [ferry]=$FERRY_P [nginx]=$NGINX_P [haproxy]=$HAP_P)
declare -A LOG=([direct]=origin/error.log [ferry]=ferry.log [nginx]=proxy/error.log
                [haproxy]=haproxy.log)

# BASELINE=OTHER_BUILD_DIR: the same ferry configuration from another build, as `base`.
if [ -n "${BASELINE:-}" ]; then
    BASE_P=$(port) BASE_ADMIN=$(port)
    sed -e "s#$BUILD/plugins#$BASELINE/plugins#" -e "s#:$ADMIN_P#:$BASE_ADMIN#" \
        -e "s#:$FERRY_P#:$BASE_P#" "$work/ferry.yaml" >"$work/base.yaml"
    "$BASELINE/core/ferry" gateway -c "$work/base.yaml" 2>"$work/base.log" & pids+=($!)
    CPU_PID[base]=$!
    PORT[base]=$BASE_P
    LOG[base]=base.log
    SUBJECTS+=(base)
    echo "bench: base = $BASELINE/core/ferry" >&2
fi
declare -A NA=()   # subject -> why it is not measured

# Every subject must serve both files byte for byte before it is measured.
for s in "${SUBJECTS[@]}"; do
    if ! wait_port "${PORT[$s]}" 5 2>/dev/null; then
        why=$(grep -v '^[[:space:]]*$' "$work/${LOG[$s]}" 2>/dev/null | tail -n 1 | cut -c1-160)
        why=${why#"$work/"}
        NA[$s]="error: ${why:-port ${PORT[$s]} never opened}"
        continue
    fi
    for f in 1k 1m; do
        if ! got=$(curl -sS --max-time 5 -o "$work/got.$f" -w '%{http_code}' \
                   "http://127.0.0.1:${PORT[$s]}/$f" 2>&1) || [ "$got" != 200 ]; then
            NA[$s]="error: GET /$f: ${got:-no answer}"
        elif ! cmp -s "$work/got.$f" "$work/www/$f"; then
            NA[$s]="error: GET /$f: body differs from the file"
        fi
    done
done
for s in "${!NA[@]}"; do echo "http: $s is not measured: ${NA[$s]}" >&2; done

# ROUNDS interleaved rounds; fills RPS[s.size] and P99[s.size] with the medians.
declare -A RPS P99 RPSS P99S ERRS CPUS CPU
echo "bench: $ROUNDS rounds x $SECS s per run, $(nproc) cores, $(uname -r)" >&2
for r in $(seq 1 "$ROUNDS"); do
    for s in "${SUBJECTS[@]}"; do
        [ -z "${NA[$s]:-}" ] || continue
        for size in 1k 1m; do
            conns=$CONNS_1K
            [ "$size" = 1k ] || conns=$CONNS_1M
            t0=$(cpu_ticks "${CPU_PID[$s]}")
            if ! read -r q p50 p99 errs reconn < <("$LOADGEN" http 127.0.0.1 "${PORT[$s]}" "$SECS" \
                    "$conns" "/$size" 2>>"$work/loadgen.err") || [ -z "${p99:-}" ]; then
                q=0 p50=0 p99=0 errs=1 reconn=0
            fi
            t1=$(cpu_ticks "${CPU_PID[$s]}")
            # microseconds of CPU per request (the run's requests: q over SECS)
            us=$(awk -v d=$(( t1 - t0 )) -v hz="$TICK_HZ" -v q="$q" -v s="$SECS" \
                 'BEGIN { if (q > 0) printf "%.1f", d * 1e6 / hz / (q * s); else print 0 }')
            CPUS[$s.$size]="${CPUS[$s.$size]:-} $us"
            RPSS[$s.$size]="${RPSS[$s.$size]:-} $q"
            P99S[$s.$size]="${P99S[$s.$size]:-} $p99"
            ERRS[$s.$size]=$(( ${ERRS[$s.$size]:-0} + errs ))
            echo "  round $r $s /$size x$conns: $q req/s, p50 $p50 ms, p99 $p99 ms," \
                 "$us us CPU/req ($errs errors, $reconn reconnects)" >&2
            sleep 0.5
        done
    done
done
for s in "${SUBJECTS[@]}"; do
    [ -z "${NA[$s]:-}" ] || continue
    for size in 1k 1m; do
        # shellcheck disable=SC2086
        RPS[$s.$size]=$(median ${RPSS[$s.$size]})
        # shellcheck disable=SC2086
        P99[$s.$size]=$(median ${P99S[$s.$size]})
        # shellcheck disable=SC2086
        CPU[$s.$size]=$(printf '%s\n' ${CPUS[$s.$size]} | sort -g | awk '{ v[NR] = $1 }
            END { print v[int((NR + 1) / 2)] }')
    done
done

# cell NUM REF: NUM / REF, or "-" when either side was not measured.
cell() { if [ -n "$1" ] && [ -n "$2" ]; then ratio "$1" "$2"; else echo -; fi; }
name() { case $1 in ferry) echo "ferry transparent" ;; base) echo "ferry (BASELINE)" ;;
                    nginx) echo "nginx proxy_pass" ;;
                    haproxy) echo HAProxy ;; *) echo "$1" ;; esac; }
for size in 1k 1m; do
    conns=$CONNS_1K
    [ "$size" = 1k ] || conns=$CONNS_1M
    label="1 KiB"
    [ "$size" = 1k ] || label="1 MiB"
    printf '\nGET %s, %s keep-alive connections\n' "$label" "$conns"
    printf '%-18s %9s %8s %10s %9s %9s %11s\n' subject "req/s" "x nginx" "x HAProxy" "x direct" \
        "p99 ms" "CPU us/req"
    for s in "${SUBJECTS[@]}"; do
        if [ -n "${NA[$s]:-}" ]; then
            printf '%-18s n/a (%s)\n' "$(name "$s")" "${NA[$s]}"
            continue
        fi
        q=${RPS[$s.$size]}
        failed=
        [ "${ERRS[$s.$size]}" = 0 ] || failed="  (${ERRS[$s.$size]} failed requests)"
        printf '%-18s %9s %8s %10s %9s %9s %11s%s\n' "$(name "$s")" "$q" \
            "$(cell "$q" "${RPS[nginx.$size]:-}")" "$(cell "$q" "${RPS[haproxy.$size]:-}")" \
            "$(cell "$q" "${RPS[direct.$size]:-}")" "${P99[$s.$size]}" "${CPU[$s.$size]}" "$failed"
    done
done
printf '(req/s and p99: medians of %s rounds; one request in flight per connection.\n' "$ROUNDS"
printf ' CPU us/req: user+system time of the subject (direct: the origin) per request)\n'
if [ -s "$work/loadgen.err" ]; then
    printf 'failed requests, first reasons:\n'
    sort "$work/loadgen.err" | uniq -c | sort -rn | head -n 5
fi
