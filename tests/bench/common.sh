# shellcheck shell=bash
# tests/bench/common.sh: what the benchmark scripts share (source it after setting ROOT).
BUILD=$(cd "${BUILD:-$ROOT/build}" && pwd)
SECS=${SECS:-3}
ROUNDS=${ROUNDS:-3}
LOADGEN=$BUILD/tests/bench/ferry-loadgen
FERRY=$BUILD/core/ferry

bash "$ROOT/tests/bench/deps.sh" >/dev/null
[ -x "$LOADGEN" ] && [ -x "$FERRY" ] || { echo "build first: $LOADGEN / $FERRY missing" >&2; exit 2; }
# Idle relayed connections need fds: take all the hard limit allows.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/ferry-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {   # wait_port PORT [SECONDS]: bounded poll
    local i
    for i in $(seq 1 $(( ${2:-10} * 20 ))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 never opened" >&2; return 1
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
median_g() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max_of() { printf '%s\n' "$@" | sort -g | tail -n 1; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else '-')" "$1" "$2"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# measure SUBJECT...: ROUNDS interleaved rounds of bulk + rate per subject (PORT[s]; a
# subject with SOCKS[s] set goes through the SOCKS5 proxy on that port to PORT[s]);
# fills BULK[s] and RATE[s] with the medians. This 2-core VM is noisy (one run can
# differ from the next by 2x), hence the interleaving and the median. With CPU_PID[s]
# (the process doing s's work), also CPU[s]: its CPU microseconds per connection in the
# rate runs (cpu_ticks), the steadier figure when the cores are shared.
measure() {
    local r s b c errs t0 us
    declare -gA BULK RATE BULKS RATES SOCKS CPU CPUS CPU_PID
    echo "bench: $ROUNDS rounds x $SECS s per run, $(nproc) cores, $(uname -r)" >&2
    for r in $(seq 1 "$ROUNDS"); do
        for s in "$@"; do
            b=$(LOADGEN_SOCKS5=${SOCKS[$s]:-} "$LOADGEN" bulk 127.0.0.1 "${PORT[$s]}" "$SECS")
            sleep 1   # let TIME_WAIT and the peers settle between runs
            [ -z "${CPU_PID[$s]:-}" ] || t0=$(cpu_ticks "${CPU_PID[$s]}")
            read -r c errs < <(LOADGEN_SOCKS5=${SOCKS[$s]:-} "$LOADGEN" rate 127.0.0.1 \
                               "${PORT[$s]}" "$SECS" 50)
            us=
            if [ -n "${CPU_PID[$s]:-}" ]; then
                us=$(us_per_conn "$t0" "${CPU_PID[$s]}" "$c")
                CPUS[$s]="${CPUS[$s]:-} $us"
            fi
            BULKS[$s]="${BULKS[$s]:-} $b"
            RATES[$s]="${RATES[$s]:-} $c"
            echo "  round $r $s: bulk $b MiB/s, $c conn/s${us:+, $us us CPU/conn} ($errs errors)" >&2
            sleep 1
        done
    done
    for s in "$@"; do
        # shellcheck disable=SC2086
        BULK[$s]=$(median ${BULKS[$s]})
        # shellcheck disable=SC2086
        RATE[$s]=$(median ${RATES[$s]})
        # shellcheck disable=SC2086
        [ -z "${CPUS[$s]:-}" ] || CPU[$s]=$(median_g ${CPUS[$s]})
    done
}

# table REF SUBJECT...: the medians with ratios to REF and to direct (and CPU us per
# connection when measure had CPU_PID).
table() {
    local ref=$1 s
    shift
    printf '\n%-9s %11s %9s %9s %10s %9s %9s %12s\n' subject "bulk MiB/s" "x $ref" "x direct" \
        "conn/s" "x $ref" "x direct" "CPU us/conn"
    for s in "$@"; do
        printf '%-9s %11s %9s %9s %10s %9s %9s %12s\n' "$s" "${BULK[$s]}" "$(ratio "${BULK[$s]}" "${BULK[$ref]}")" \
            "$(ratio "${BULK[$s]}" "${BULK[direct]}")" "${RATE[$s]}" "$(ratio "${RATE[$s]}" "${RATE[$ref]}")" \
            "$(ratio "${RATE[$s]}" "${RATE[direct]}")" "${CPU[$s]:--}"
    done
}

# idle_cost NAME PID PORT N: RSS growth of PID while N idle connections through PORT
# are open (each relayed: one byte echoed by the origin).
idle_cost() {
    local before after lg
    sleep 1
    before=$(rss_kib "$2")
    mkfifo "$work/hold.$1"
    "$LOADGEN" idle 127.0.0.1 "$3" "$4" <"$work/hold.$1" >"$work/idle.$1" & lg=$!
    exec 4>"$work/hold.$1"
    for _ in $(seq 1 900); do grep -q ready "$work/idle.$1" 2>/dev/null && break; sleep 0.1; done
    if ! grep -q ready "$work/idle.$1"; then
        echo "idle: $1 did not reach $4 connections" >&2
        exec 4>&-
        return 1
    fi
    sleep 1
    after=$(rss_kib "$2")
    exec 4>&-
    wait "$lg" || true
    python3 -c "import sys; b,a,n=map(int,sys.argv[1:4]); print(f'{sys.argv[4]}: RSS {b} KiB -> {a} KiB with {n} idle connections: {(a-b)*1024/n:.0f} bytes each')" \
        "$before" "$after" "$4" "$1"
}

# nginx_conf NAME WORKERS SERVER-BLOCK [MAIN-LINES]: an nginx prefix in $work/NAME, in the
# foreground, every path it writes kept inside it (MAIN-LINES: e.g. load_module). Workers
# stay root when we are: $work is 0700.
nginx_conf() {
    local dir=$work/$1
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CFG
$([ "$(id -u)" != 0 ] || echo "user root;")
${4:-}
worker_processes $2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
$3
}
CFG
}

# CPU time (clock ticks, user + system, all threads) of a process and its children:
# the subject's own cost per request, which this shared 2-core machine's noise moves far
# less than req/s (the client and the origin compete for the same cores). Children that
# exited and were reaped count through the parent's cutime + cstime (Dante forks).
cpu_ticks() {
    local total p
    [ -r "/proc/$1/stat" ] || { echo 0; return; }
    total=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat")
    for p in $(pgrep -P "$1" 2>/dev/null); do
        [ -r "/proc/$p/stat" ] || continue
        total=$(( total + $(awk '{ print $14 + $15 }' "/proc/$p/stat") ))
    done
    echo "$total"
}
TICK_HZ=$(getconf CLK_TCK)

# us_per_conn T0 PID CONNS_PER_S: PID's CPU microseconds per connection since cpu_ticks
# said T0, over a rate run of SECS at CONNS_PER_S.
us_per_conn() {
    awk -v d=$(( $(cpu_ticks "$2") - $1 )) -v hz="$TICK_HZ" -v c="$3" -v s="$SECS" \
        'BEGIN { printf "%.1f", (c > 0 ? d * 1e6 / hz / (c * s) : 0) }'
}

# pin_tree PID CPUS: PID with all its threads and descendants onto CPUS (taskset list).
pin_tree() {
    local p
    taskset -a -p -c "$2" "$1" >/dev/null 2>&1 || true
    for p in $(pgrep -P "$1" 2>/dev/null); do pin_tree "$p" "$2"; done
}

# measure_core SUBJECT...: per-core capacity, the figure that says what one core of a
# proxy carries. For s's runs the processes in CORE_PIDS[s] (the proxy; for direct the
# origin) run alone on CPU 1 while everything else of the bench (the load generator,
# the origin, the idle peers) shares CPU 0, so the subject's own cost sets the rate
# instead of being diluted by the client's and the origin's on the same two cores.
# ROUNDS interleaved rate runs of SECS; fills CRATE[s] (median conn/s) and CCPU[s]
# (median CPU us per connection of CPU_PID[s]). Needs taskset and 2 CPUs (returns 1).
measure_core() {
    local r s p c errs t0 us all
    declare -gA CRATE CCPU CRATES CCPUS CORE_PIDS
    command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] || return 1
    all="0-$(( $(nproc) - 1 ))"
    echo "bench (per core): $ROUNDS rounds x $SECS s; subject alone on CPU 1, load on CPU 0" >&2
    for r in $(seq 1 "$ROUNDS"); do
        for s in "$@"; do
            for p in "${pids[@]}"; do pin_tree "$p" 0; done
            for p in ${CORE_PIDS[$s]}; do pin_tree "$p" 1; done
            sleep 1
            [ -z "${CPU_PID[$s]:-}" ] || t0=$(cpu_ticks "${CPU_PID[$s]}")
            read -r c errs < <(LOADGEN_SOCKS5=${SOCKS[$s]:-} taskset -c 0 "$LOADGEN" rate \
                               127.0.0.1 "${PORT[$s]}" "$SECS" 50)
            us=
            if [ -n "${CPU_PID[$s]:-}" ]; then
                us=$(us_per_conn "$t0" "${CPU_PID[$s]}" "$c")
                CCPUS[$s]="${CCPUS[$s]:-} $us"
            fi
            CRATES[$s]="${CRATES[$s]:-} $c"
            echo "  round $r $s (1 core): $c conn/s${us:+, $us us CPU/conn} ($errs errors)" >&2
        done
    done
    for p in "${pids[@]}"; do pin_tree "$p" "$all"; done
    for s in "$@"; do
        # shellcheck disable=SC2086
        CRATE[$s]=$(median ${CRATES[$s]})
        # shellcheck disable=SC2086
        [ -z "${CCPUS[$s]:-}" ] || CCPU[$s]=$(median_g ${CCPUS[$s]})
    done
}

# table_core REF SUBJECT...: measure_core's medians with ratios to REF and to direct.
table_core() {
    local ref=$1 s
    shift
    printf '\n%-9s %14s %9s %9s %12s\n' subject "conn/s 1 core" "x $ref" "x direct" "CPU us/conn"
    for s in "$@"; do
        printf '%-9s %14s %9s %9s %12s\n' "$s" "${CRATE[$s]}" "$(ratio "${CRATE[$s]}" "${CRATE[$ref]}")" \
            "$(ratio "${CRATE[$s]}" "${CRATE[direct]}")" "${CCPU[$s]:--}"
    done
}
