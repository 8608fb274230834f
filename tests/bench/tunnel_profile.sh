#!/usr/bin/env bash
# tests/bench/tunnel_profile.sh: ferry's own per-byte cost on the tunnel's bulk path, in
# figures that do not depend on how busy the machine is. A gateway and a connector with
# WORKERS workers each (1); one stream fetches exactly MIB MiB from the origin (origin ->
# connector -> tunnel -> gateway -> client, the direction of tunnel.sh's bulk figure).
#
#   BUILD=build TOOL=callgrind MIB=256 bash tests/bench/tunnel_profile.sh
#
# TOOL=cpu        (default) CPU ms (user + system) per GiB of each side, from /proc;
#                 the median of REPS (5) fetches, and their median MiB/s
# TOOL=callgrind  instructions per MiB of each side (valgrind, counted over the fetch
#                 only) and the top functions by self cost
# TOOL=strace     syscalls per MiB of each side (strace -c, attached for the fetch)
# TOOL=perf       perf record -g of each side for the fetch, top self-time symbols
# SUITE=TLS_AES_256_GCM_SHA384 (say) holds the connector to that TLS 1.3 suite (the
# tls13_suites.c shim); the default is ferry's own preference, AES-128-GCM first.
# Set KEEP=1 to keep the work directory (profiles, logs) and print its path.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOL=${TOOL:-cpu}
MIB=${MIB:-$([ "$TOOL" = callgrind ] && echo 256 || echo 1024)}
TOP=${TOP:-15}
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"

ORIGIN=$(port)
"$LOADGEN" serve "$ORIGIN" & pids+=($!)
wait_port "$ORIGIN"
# shellcheck source=tests/bench/tunnel_lib.sh
. "$ROOT/tests/bench/tunnel_lib.sh"

wrap() { [ "$TOOL" != callgrind ] || echo "valgrind -q --tool=callgrind --instr-atstart=no --callgrind-out-file=$work/$1.cg"; }
suite=
[ -z "${SUITE:-}" ] ||
    suite="env LD_PRELOAD=$BUILD/tests/bench/libferry-bench-tls13.so BENCH_TLS13_CIPHERSUITES=$SUITE"
start_ferry prof "${WORKERS:-1}" "$(wrap gateway)" "$suite $(wrap connector)"
"$LOADGEN" fetch 127.0.0.1 "$FT_PORT" 16 >/dev/null    # warm: tunnel windows, first stream

per_mib() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):,.0f}')" "$1" "$MIB"; }
side() { [ "$1" = "$GW_PID" ] && echo gateway || echo connector; }
tools=()
stop_tools() {   # the profilers attached to the two sides: SIGINT makes them write out
    local p
    for p in "${tools[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${tools[@]}"; do wait "$p" 2>/dev/null || true; done
}
echo "tunnel profile: $TOOL, $MIB MiB through one stream, $(tunnel_cipher prof), $(nproc) cores," \
     "load $(cut -d' ' -f1-3 /proc/loadavg)"

case $TOOL in
cpu)
    # REPS fetches; each side's median (CPU time per byte moves less with load than
    # MiB/s, but it still moves: batching grows when the peers get less CPU).
    gs=(); cs=(); ms=()
    for _ in $(seq 1 "${REPS:-5}"); do
        g0=$(cpu_ticks "$GW_PID"); c0=$(cpu_ticks "$CN_PID")
        t=$("$LOADGEN" fetch 127.0.0.1 "$FT_PORT" "$MIB")
        g1=$(cpu_ticks "$GW_PID"); c1=$(cpu_ticks "$CN_PID")
        gs+=("$(( (g1 - g0) * 1000 * 1024 / TICK_HZ / MIB ))")
        cs+=("$(( (c1 - c0) * 1000 * 1024 / TICK_HZ / MIB ))")
        ms+=("$(echo "$t" | cut -d' ' -f3)")
        echo "  $t: gateway ${gs[-1]}, connector ${cs[-1]} CPU ms per GiB"
    done
    echo "median CPU ms per GiB: gateway $(median "${gs[@]}"), connector $(median "${cs[@]}")," \
         "both $(( $(median "${gs[@]}") + $(median "${cs[@]}") )); $(median_g "${ms[@]}") MiB/s"
    ;;
callgrind)
    # Counted over the fetch only: not the start, the handshake or the exit.
    for p in "$GW_PID" "$CN_PID"; do callgrind_control -i on "$p" >/dev/null; done
    "$LOADGEN" fetch 127.0.0.1 "$FT_PORT" "$MIB"
    for p in "$GW_PID" "$CN_PID"; do callgrind_control -i off "$p" >/dev/null; done
    for p in "$GW_PID" "$CN_PID"; do callgrind_control -d "$p" >/dev/null; done
    for p in "$GW_PID" "$CN_PID"; do
        n=$(side "$p")
        f=$work/$n.cg.1                 # the first (and only) dump
        ir=$(awk '/^totals:/ { print $2 }' "$f")
        echo
        echo "$n: $(per_mib "$ir") instructions per MiB ($f)"
        callgrind_annotate --inclusive=no --auto=no "$f" 2>/dev/null | grep -E '^ *[0-9,]+ \(' |
            grep -v "PROGRAM TOTALS" | head -n "$TOP" || true
    done
    ;;
strace)
    for p in "$GW_PID" "$CN_PID"; do
        strace -c -f -o "$work/$(side "$p").strace" -p "$p" & tools+=($!)
    done
    sleep 1                             # attached before the first byte
    "$LOADGEN" fetch 127.0.0.1 "$FT_PORT" "$MIB"
    stop_tools
    for n in gateway connector; do
        echo
        echo "$n: syscalls per MiB"
        awk -v m="$MIB" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $4 / m >= 0.05 {
                             printf "  %-16s %9.2f\n", $NF, $4 / m }' "$work/$n.strace"
    done
    ;;
perf)
    for p in "$GW_PID" "$CN_PID"; do
        perf record -q -g -o "$work/$(side "$p").perf" -p "$p" 2>/dev/null & tools+=($!)
    done
    sleep 1
    "$LOADGEN" fetch 127.0.0.1 "$FT_PORT" "$MIB"
    stop_tools
    for n in gateway connector; do
        echo
        echo "$n: self time by object"
        perf report -i "$work/$n.perf" --stdio --no-children --sort dso -g none 2>/dev/null |
            grep -E '^ +[0-9.]+%' | head -n 8 || true
        echo "$n: self time by symbol"
        perf report -i "$work/$n.perf" --stdio --no-children --sort symbol -g none 2>/dev/null |
            grep -E '^ +[0-9.]+%' | head -n "$TOP" || true
    done
    ;;
*)
    echo "TOOL: cpu, callgrind, strace or perf" >&2; exit 2 ;;
esac
[ -z "${KEEP:-}" ] || echo "kept: $work"
