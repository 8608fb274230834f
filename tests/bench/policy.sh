#!/usr/bin/env bash
# tests/bench/policy.sh: what a Lua policy costs per request, in one run: ferry's http
# plugin without a policy and with a three-header rewrite, and the same rewrite done by
# OpenResty-style nginx (proxy_pass + rewrite_by_lua, Debian's libnginx-mod-http-lua)
# next to plain nginx proxy_pass. Run by tests/bench/run.sh (`policy`), or alone:
#
#   BUILD=build bash tests/bench/policy.sh        (env: SECS=3 ROUNDS=3 CONNS=50)
#
# The rewrite, on every request: X-Tenant and X-Api-Key set, User-Agent removed
# (ferry: examples-style on_request; nginx: ngx.req.set_header / clear_header). The
# origin is an nginx serving a 1 KiB file and, at /headers, the three fields as it
# received them, which every subject must get right before it is measured. One ferry
# process serves both ferry subjects (two listeners), so its CPU time per request
# compares them directly. Client: `ferry-loadgen http`, CONNS keep-alive connections,
# one request in flight on each; medians of ROUNDS interleaved rounds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONNS=${CONNS:-50}
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"

LUA_MODS=/usr/share/nginx/modules
ORIGIN=$(port); FERRY_P=$(port); FERRY_L=$(port); ADMIN_P=$(port); NGINX_P=$(port)
NGINX_L=$(port)
mkdir -p "$work/www"
head -c 1024 /dev/urandom >"$work/www/1k"

nginx_conf origin 1 "    server {
        listen 127.0.0.1:$ORIGIN;
        root $work/www;
        default_type application/octet-stream;
        location = /headers {
            return 200 \"\$http_x_tenant|\$http_x_api_key|\$http_user_agent\";
        }
    }"
proxy_block() {    # proxy_block PORT [LOCATION-LINES]
    echo "    upstream origin {
        server 127.0.0.1:$ORIGIN;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$1;
        location / {
${2:-}
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_max_temp_file_size 0;
        }
    }"
}
nginx_conf proxy 2 "$(proxy_block "$NGINX_P")"
nginx_conf lua 2 "$(proxy_block "$NGINX_L" '            rewrite_by_lua_block {
                ngx.req.set_header("X-Tenant", "acme")
                ngx.req.set_header("X-Api-Key", "k-12345")
                ngx.req.clear_header("User-Agent")
            }')" "load_module $LUA_MODS/ndk_http_module.so;
load_module $LUA_MODS/ngx_http_lua_module.so;"
nginx -p "$work/origin" -e "$work/origin/error.log" -c "$work/origin/nginx.conf" & pids+=($!)
origin_pid=$!
wait_port "$ORIGIN"
nginx -p "$work/proxy" -e "$work/proxy/error.log" -c "$work/proxy/nginx.conf" & pids+=($!)
nginx_pid=$!
nginx_lua_pid=
if [ -f "$LUA_MODS/ngx_http_lua_module.so" ]; then
    nginx -p "$work/lua" -e "$work/lua/error.log" -c "$work/lua/nginx.conf" & pids+=($!)
    nginx_lua_pid=$!
fi

cat >"$work/rewrite.lua" <<'LUA'
return {
  on_request = function(req, dest)
    req.headers["X-Tenant"] = req.tenant
    req.headers["X-Api-Key"] = dest.apiKey
    req.headers["User-Agent"] = nil
  end,
}
LUA
cat >"$work/ferry.yaml" <<YAML
workers: 2
plugins_dir: $BUILD/plugins
log: { level: warn, access: off }
admin: { listen: 127.0.0.1:$ADMIN_P }
tenants: [ { id: acme, token: bench-token } ]
destinations:
  - { Name: plain, Type: HTTP, URL: "http://127.0.0.1:$ORIGIN", ProxyType: Internet }
  - { Name: policy, Type: HTTP, URL: "http://127.0.0.1:$ORIGIN", ProxyType: Internet,
      apiKey: k-12345, policy: $work/rewrite.lua }
listeners:
  - { name: plain, plugin: http, listen: "127.0.0.1:$FERRY_P", mode: transparent,
      destination: plain, max_connections: 100000 }
  - { name: policy, plugin: http, listen: "127.0.0.1:$FERRY_L", mode: transparent,
      destination: policy, max_connections: 100000 }
YAML
"$FERRY" gateway -c "$work/ferry.yaml" 2>"$work/ferry.log" & pids+=($!)
ferry_pid=$!

SUBJECTS=(ferry ferry-policy nginx nginx-lua)
declare -A PORT=([ferry]=$FERRY_P [ferry-policy]=$FERRY_L [nginx]=$NGINX_P [nginx-lua]=$NGINX_L)
declare -A CPU_PID=([ferry]=$ferry_pid [ferry-policy]=$ferry_pid [nginx]=$nginx_pid
                    [nginx-lua]=$nginx_lua_pid)
declare -A LOG=([ferry]=ferry.log [ferry-policy]=ferry.log [nginx]=proxy/error.log
                [nginx-lua]=lua/error.log)
declare -A WANT=([ferry]="||ferry-loadgen" [ferry-policy]="acme|k-12345|"
                 [nginx]="||ferry-loadgen" [nginx-lua]="acme|k-12345|")
declare -A NA=()

for s in "${SUBJECTS[@]}"; do
    if [ "$s" = nginx-lua ] && [ -z "$nginx_lua_pid" ]; then
        NA[$s]="no $LUA_MODS/ngx_http_lua_module.so (apt-get install libnginx-mod-http-lua)"
        continue
    fi
    if ! wait_port "${PORT[$s]}" 5 2>/dev/null; then
        why=$(grep -v '^[[:space:]]*$' "$work/${LOG[$s]}" 2>/dev/null | tail -n 1 | cut -c1-160)
        NA[$s]="error: ${why:-port ${PORT[$s]} never opened}"
        continue
    fi
    got=$(curl -sS --max-time 5 -A ferry-loadgen "http://127.0.0.1:${PORT[$s]}/headers" 2>&1) ||
        true
    if [ "$got" != "${WANT[$s]}" ]; then
        NA[$s]="error: /headers: want '${WANT[$s]}', got '${got:0:120}'"
    elif ! curl -sS --max-time 5 -o "$work/got" "http://127.0.0.1:${PORT[$s]}/1k" ||
         ! cmp -s "$work/got" "$work/www/1k"; then
        NA[$s]="error: GET /1k: body differs from the file"
    fi
done
for s in "${!NA[@]}"; do echo "policy: $s is not measured: ${NA[$s]}" >&2; done

declare -A RPSS P99S CPUS ERRS RPS P99 CPU
echo "bench: $ROUNDS rounds x $SECS s per run, $(nproc) cores, $(uname -r)" >&2
for r in $(seq 1 "$ROUNDS"); do
    for s in "${SUBJECTS[@]}"; do
        [ -z "${NA[$s]:-}" ] || continue
        t0=$(cpu_ticks "${CPU_PID[$s]}")
        if ! read -r q p50 p99 errs reconn < <("$LOADGEN" http 127.0.0.1 "${PORT[$s]}" "$SECS" \
                "$CONNS" /1k 2>>"$work/loadgen.err") || [ -z "${p99:-}" ]; then
            q=0 p50=0 p99=0 errs=1 reconn=0
        fi
        t1=$(cpu_ticks "${CPU_PID[$s]}")
        us=$(awk -v d=$(( t1 - t0 )) -v hz="$TICK_HZ" -v q="$q" -v s="$SECS" \
             'BEGIN { if (q > 0) printf "%.1f", d * 1e6 / hz / (q * s); else print 0 }')
        RPSS[$s]="${RPSS[$s]:-} $q"
        P99S[$s]="${P99S[$s]:-} $p99"
        CPUS[$s]="${CPUS[$s]:-} $us"
        ERRS[$s]=$(( ${ERRS[$s]:-0} + errs ))
        echo "  round $r $s: $q req/s, p50 $p50 ms, p99 $p99 ms, $us us CPU/req" \
             "($errs errors, $reconn reconnects)" >&2
        sleep 0.5
    done
done
for s in "${SUBJECTS[@]}"; do
    [ -z "${NA[$s]:-}" ] || continue
    # shellcheck disable=SC2086
    RPS[$s]=$(median ${RPSS[$s]})
    # shellcheck disable=SC2086
    P99[$s]=$(median ${P99S[$s]})
    # shellcheck disable=SC2086
    CPU[$s]=$(printf '%s\n' ${CPUS[$s]} | sort -g | awk '{ v[NR] = $1 }
        END { print v[int((NR + 1) / 2)] }')
done

cell() { if [ -n "$1" ] && [ -n "$2" ]; then ratio "$1" "$2"; else echo -; fi; }
name() { case $1 in ferry) echo "ferry" ;; ferry-policy) echo "ferry + Lua policy" ;;
                    nginx) echo "nginx proxy_pass" ;; nginx-lua) echo "nginx + rewrite_by_lua" ;;
         esac; }
base() { case $1 in ferry-policy) echo ferry ;; nginx-lua) echo nginx ;; *) echo "$1" ;; esac; }
printf '\nGET 1 KiB, %s keep-alive connections; the rewrite: 2 fields set, 1 removed\n' "$CONNS"
printf '%-24s %9s %13s %12s %8s %11s\n' subject "req/s" "x no-policy" "x nginx+lua" "p99 ms" \
    "CPU us/req"
for s in "${SUBJECTS[@]}"; do
    if [ -n "${NA[$s]:-}" ]; then
        printf '%-24s n/a (%s)\n' "$(name "$s")" "${NA[$s]}"
        continue
    fi
    b=$(base "$s")
    failed=
    [ "${ERRS[$s]}" = 0 ] || failed="  (${ERRS[$s]} failed requests)"
    printf '%-24s %9s %13s %12s %8s %11s%s\n' "$(name "$s")" "${RPS[$s]}" \
        "$(cell "${RPS[$s]}" "${RPS[$b]:-}")" "$(cell "${RPS[$s]}" "${RPS[nginx-lua]:-}")" \
        "${P99[$s]}" "${CPU[$s]}" "$failed"
done
printf '(x no-policy: against the same proxy without the rewrite. req/s and p99: medians of\n'
printf ' %s rounds. CPU us/req: user+system time of the proxy process per request)\n' "$ROUNDS"
if [ -n "${CPU[ferry]:-}" ] && [ -n "${CPU[ferry-policy]:-}" ]; then
    awk -v a="${CPU[ferry-policy]}" -v b="${CPU[ferry]}" \
        'BEGIN { printf "the policy costs ferry %.1f us of CPU per request\n", a - b }'
fi
if [ -s "$work/loadgen.err" ]; then
    printf 'failed requests, first reasons:\n'
    sort "$work/loadgen.err" | uniq -c | sort -rn | head -n 5
fi
