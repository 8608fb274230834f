#!/usr/bin/env bash
# tests/bench/store.sh: ferry with `store: etcd:` (issue 13's figures), in one run, on
# loopback, against a real single-member etcd (Debian's etcd-server).
#
#   BUILD=build bash tests/bench/store.sh   (env: SECS=3 ROUNDS=3 WRITES=200 DESTS=10000)
#   or: bash tests/bench/run.sh build store
#
# 1. HTTP transparent req/s (1 KiB, 50 keep-alive connections, ferry-loadgen http) of
#    one gateway whose destination is in a file and one whose destination is in etcd,
#    interleaved rounds, medians: lookups stay in memory, so the ratio should be ~1.
# 2. Change propagation: WRITES creates through replica A's destination API; for each,
#    the time from sending the write until replica B routes the new name (B's
#    transparent listener polled every 2 ms). p50 / p99 / max.
# 3. Load of DESTS destinations from etcd: a gateway started on a prefix holding them,
#    the time from exec to the last destination routed; RSS per destination (RSS with
#    DESTS minus RSS with an empty prefix, over DESTS).
# 4. Recovery: etcd stopped until the gateway reports ferry_store_up 0, then started;
#    the time from etcd answering again to ferry_store_up 1, and to a change made then
#    being routed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WRITES=${WRITES:-200}
DESTS=${DESTS:-10000}
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"
command -v etcd >/dev/null || { echo "store bench: apt-get install etcd-server etcd-client" >&2; exit 2; }
export ETCDCTL_API=3

ORIGIN=$(port); EC=$(port); EP=$(port)
mkdir -p "$work/www"
head -c 1024 /dev/urandom >"$work/www/1k"
nginx_conf origin 1 "    server {
        listen 127.0.0.1:$ORIGIN;
        root $work/www;
        default_type application/octet-stream;
    }"
nginx -p "$work/origin" -e "$work/origin/error.log" -c "$work/origin/nginx.conf" & pids+=($!)
wait_port "$ORIGIN"

etcd_run() {
    etcd --name b --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$EC" \
        --advertise-client-urls "http://127.0.0.1:$EC" --listen-peer-urls "http://127.0.0.1:$EP" \
        --initial-advertise-peer-urls "http://127.0.0.1:$EP" \
        --initial-cluster "b=http://127.0.0.1:$EP" --log-level error \
        --quota-backend-bytes 8589934592 >>"$work/etcd.log" 2>&1 &
    ETCD_PID=$!
    pids+=($ETCD_PID)
    local i
    for ((i = 0; i < 200; i++)); do
        etcdctl --endpoints "127.0.0.1:$EC" endpoint health >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "etcd did not start" >&2
    exit 1
}
etcd_run
ectl() { etcdctl --endpoints "127.0.0.1:$EC" "$@"; }

DEST_JSON="{\"Name\":\"bench-origin\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$ORIGIN\",\"ProxyType\":\"Internet\",\"Authentication\":\"NoAuthentication\"}"
ectl put /bench/destinations/t/bench-origin "$DEST_JSON" >/dev/null

# gw NAME PREFIX|files: write NAME.yaml and start it; sets GW_PORT[NAME], GW_ADMIN[NAME],
# GW_PID[NAME].
declare -A GW_PORT GW_ADMIN GW_PID
gw_conf() {
    local name=$1 prefix=$2 bound=${3:-} p a
    p=$(port); a=$(port)
    GW_PORT[$name]=$p
    GW_ADMIN[$name]=$a
    {
        echo "workers: 2"
        echo "plugins_dir: $BUILD/plugins"
        echo "log: { level: warn, access: off }"
        echo "admin: { listen: 127.0.0.1:$a }"
        echo "tenants: [ { id: t, token: t-token } ]"
        if [ "$prefix" = files ]; then
            echo "destinations:"
            echo "  - { Name: bench-origin, Type: HTTP, URL: \"http://127.0.0.1:$ORIGIN\", ProxyType: Internet, Authentication: NoAuthentication }"
        else
            echo "store: { etcd: { endpoints: [ \"http://127.0.0.1:$EC\" ], prefix: $prefix } }"
        fi
        echo "listeners:"
        echo "  - { name: bench, plugin: http, listen: \"127.0.0.1:$p\", mode: transparent,"
        echo "      ${bound:+destination: $bound, }max_connections: 100000 }"
    } >"$work/$name.yaml"
}
gw_start() {
    "$FERRY" gateway -c "$work/$1.yaml" 2>"$work/$1.log" &
    GW_PID[$1]=$!
    pids+=($!)
}
ready() {   # ready NAME SECONDS: /readyz 200
    local i
    for ((i = 0; i < $2 * 100; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${GW_ADMIN[$1]}/readyz")" = 200 ] &&
            return 0
        sleep 0.01
    done
    echo "gateway $1 not ready: $(tail -n 3 "$work/$1.log")" >&2
    exit 1
}
metric() {
    curl -sf "http://127.0.0.1:${GW_ADMIN[$1]}/metrics" | awk -v s="$2" '$1 == s { v = $2 } END { print v }'
}

# --- 1. req/s: files vs etcd ---------------------------------------------------------------
gw_conf files files bench-origin
gw_conf etcd /bench bench-origin
gw_start files
gw_start etcd
ready files 10
ready etcd 10
for s in files etcd; do
    got=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: bench-origin' "http://127.0.0.1:${GW_PORT[$s]}/1k")
    [ "$got" = 200 ] || { echo "gateway $s: GET /1k answered $got" >&2; exit 1; }
done
declare -A RPSS CPUS
echo "bench: $ROUNDS rounds x $SECS s per run, $(nproc) cores, $(uname -r)" >&2
for r in $(seq 1 "$ROUNDS"); do
    for s in files etcd; do
        t0=$(cpu_ticks "${GW_PID[$s]}")
        read -r q p50 p99 errs _ < <("$LOADGEN" http 127.0.0.1 \
            "${GW_PORT[$s]}" "$SECS" 50 /1k 2>>"$work/loadgen.err")
        t1=$(cpu_ticks "${GW_PID[$s]}")
        us=$(awk -v d=$((t1 - t0)) -v hz="$TICK_HZ" -v q="$q" -v s="$SECS" \
             'BEGIN { if (q > 0) printf "%.1f", d * 1e6 / hz / (q * s); else print 0 }')
        RPSS[$s]="${RPSS[$s]:-} $q"
        CPUS[$s]="${CPUS[$s]:-} $us"
        echo "  round $r $s: $q req/s, p99 $p99 ms, $us us CPU/req ($errs errors)" >&2
        sleep 0.5
    done
done
# shellcheck disable=SC2086
rps_f=$(median ${RPSS[files]}); rps_e=$(median ${RPSS[etcd]})
# shellcheck disable=SC2086
cpu_f=$(median_g ${CPUS[files]}); cpu_e=$(median_g ${CPUS[etcd]})
kill "${GW_PID[files]}" "${GW_PID[etcd]}" 2>/dev/null || true
wait "${GW_PID[files]}" "${GW_PID[etcd]}" 2>/dev/null || true

# --- 2. propagation: WRITES through A, routed by B -------------------------------------------
gw_conf a /bench
gw_conf b /bench
gw_start a
gw_start b
ready a 10
ready b 10
python3 - "$WRITES" "${GW_ADMIN[a]}" "${GW_PORT[b]}" "$ORIGIN" >"$work/prop.txt" <<'PY'
import http.client, json, sys, time
n, admin, bport, origin = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
api = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
b = http.client.HTTPConnection("127.0.0.1", bport, timeout=10)
lat = []
for i in range(n):
    name = "p-%d" % i
    body = json.dumps({"Name": name, "Type": "HTTP", "URL": "http://127.0.0.1:%s" % origin})
    t0 = time.monotonic()
    api.request("POST", "/destination-configuration/v1/subaccountDestinations", body,
                {"Authorization": "Bearer t-token", "Content-Type": "application/json"})
    r = api.getresponse(); r.read()
    if r.status != 201:
        sys.exit("write %d: %d" % (i, r.status))
    for _ in range(5000):                       # bounded: 10 s at 2 ms
        b.request("GET", "/1k", headers={"Host": name})
        rb = b.getresponse(); rb.read()
        if rb.status == 200:
            break
        time.sleep(0.002)
    else:
        sys.exit("B never routed %s" % name)
    lat.append((time.monotonic() - t0) * 1000)
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print("%.1f %.1f %.1f" % (pick(0.50), pick(0.99), lat[-1]))
PY
read -r prop_p50 prop_p99 prop_max <"$work/prop.txt"

# --- 4. recovery after etcd comes back (before 3: the big prefix slows etcd's restart) ----
kill -STOP "$ETCD_PID"
for ((i = 0; i < 300; i++)); do
    [ "$(metric a ferry_store_up)" = 0 ] && break
    sleep 0.05
done
[ "$(metric a ferry_store_up)" = 0 ] || { echo "A never noticed etcd stopping" >&2; exit 1; }
kill -CONT "$ETCD_PID"
t0=$(date +%s%N)
for ((i = 0; i < 2000; i++)); do
    [ "$(metric a ferry_store_up)" = 1 ] && break
    sleep 0.005
done
t1=$(date +%s%N)
ectl put /bench/destinations/t/after-recovery "$(sed 's/"bench-origin"/"after-recovery"/' <<<"$DEST_JSON")" >/dev/null
for ((i = 0; i < 2000; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: after-recovery' "http://127.0.0.1:${GW_PORT[a]}/1k")" = 200 ] && break
    sleep 0.005
done
t2=$(date +%s%N)
rec_up=$(((t1 - t0) / 1000000)); rec_route=$(((t2 - t0) / 1000000))
kill "${GW_PID[a]}" "${GW_PID[b]}" 2>/dev/null || true
wait "${GW_PID[a]}" "${GW_PID[b]}" 2>/dev/null || true

# --- 3. DESTS destinations from etcd ---------------------------------------------------------
python3 - "$EC" "$DESTS" "$ORIGIN" <<'PY'
import base64, http.client, json, sys
port, n, origin = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
b64 = lambda s: base64.b64encode(s.encode()).decode()
for start in range(0, n, 100):
    ops = []
    for i in range(start, min(n, start + 100)):
        name = "d-%05d" % i
        v = json.dumps({"Name": name, "Type": "HTTP", "URL": "http://127.0.0.1:%s" % origin,
                        "Authentication": "BasicAuthentication", "User": "user-%d" % i,
                        "Password": "secret-%d" % i, "URL.headers.X-Tenant": "t"})
        ops.append({"request_put": {"key": b64("/big/destinations/t/" + name), "value": b64(v)}})
    c.request("POST", "/v3/kv/txn", json.dumps({"success": ops}))
    r = c.getresponse(); body = r.read()
    if r.status != 200:
        sys.exit("txn: %d %s" % (r.status, body[:200]))
PY
gw_conf empty /empty
gw_start empty
ready empty 10
sleep 0.5
rss0=$(rss_kib "${GW_PID[empty]}")
gw_conf big /big
t0=$(date +%s%N)
gw_start big
last=$(printf 'd-%05d' $((DESTS - 1)))
for ((i = 0; i < 3000; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $last" "http://127.0.0.1:${GW_PORT[big]}/1k" 2>/dev/null)" = 200 ] && break
    sleep 0.005
done
t1=$(date +%s%N)
load_ms=$(((t1 - t0) / 1000000))
sleep 0.5
rss1=$(rss_kib "${GW_PID[big]}")
per_dest=$(awk -v a="$rss0" -v b="$rss1" -v n="$DESTS" 'BEGIN { printf "%.2f", (b - a) / n }')

printf '\nstore: etcd (1 member, loopback) vs files, %s cores\n' "$(nproc)"
printf '%-46s %s\n' "HTTP transparent 1 KiB x50, files" "$rps_f req/s ($cpu_f us CPU/req)"
printf '%-46s %s\n' "HTTP transparent 1 KiB x50, store: etcd" "$rps_e req/s ($cpu_e us CPU/req)"
printf '%-46s %s\n' "  etcd / files" "$(ratio "$rps_e" "$rps_f") x  (target >= 0.98)"
printf '%-46s %s\n' "propagation A's API -> B routes, $WRITES writes" \
    "p50 $prop_p50 ms, p99 $prop_p99 ms, max $prop_max ms  (target p99 <= 1000)"
printf '%-46s %s\n' "load of $DESTS destinations (exec -> last routed)" "$load_ms ms  (target <= 2000)"
printf '%-46s %s\n' "RSS per destination" "$per_dest KiB ($rss0 KiB empty, $rss1 KiB with $DESTS)"
printf '%-46s %s\n' "recovery: etcd back -> ferry_store_up 1" "$rec_up ms"
printf '%-46s %s\n' "recovery: etcd back -> a new change routed" "$rec_route ms"
