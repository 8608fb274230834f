#!/bin/sh
# run.sh SECONDS [TARGET...]: run ferry's libFuzzer targets, one after the other, each
# for SECONDS, and print one line per target: executions, executions per second,
# coverage (libFuzzer's cov:, edges), crashes found.
#
# Builds the clang fuzz build first if needed (FERRY_FUZZ_BUILD, default build-fuzz;
# CC=clang cmake -DFERRY_FUZZ=ON). Each target starts from a scratch copy of its seeds:
# the repository's corpus is never written; what libFuzzer adds and any crash file stay
# in the scratch directory (kept, and named in the output, when a target crashed or
# FERRY_FUZZ_KEEP=1). One fuzzer at a time, one job each: the machine is shared.
# Without TARGET: every target. Extra libFuzzer flags: FERRY_FUZZ_FLAGS.
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${FERRY_FUZZ_BUILD:-$src/build-fuzz}
all="http_parse_fuzz jwt_fuzz proxy_fuzz socks5_fuzz ldap_fuzz conf_fuzz dest_api_fuzz tunnel_hello_fuzz tunnel_fuzz"

if [ $# -lt 1 ] || ! [ "$1" -gt 0 ] 2>/dev/null; then
    echo "usage: $0 SECONDS [TARGET...]   (targets: $all)" >&2
    exit 2
fi
secs=$1
shift
targets=${*:-$all}

# Seeds and input size per target (the longest seed a target takes whole).
corpus_of() {
    case $1 in
    http_parse_fuzz) echo "$here/corpus" ;;
    *)               echo "$here/corpus/${1%_fuzz}" ;;
    esac
}
max_len_of() {
    case $1 in
    jwt_fuzz)    echo 20000 ;;
    socks5_fuzz) echo 70000 ;;     # a 0x80 token may be 64 KiB
    conf_fuzz)   echo 16384 ;;
    *)           echo 8192 ;;
    esac
}

if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang cmake -S "$src" -B "$build" -DFERRY_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        >/dev/null || exit 1
else
    # Again: a target added since the last configure has no rule until cmake has run.
    cmake -S "$src" -B "$build" >/dev/null || exit 1
fi

pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
}
trap 'cleanup; exit 130' INT TERM
trap cleanup EXIT

printf '%-16s %12s %9s %7s %8s  %s\n' target execs execs/s edges crashes notes
status=0
for t in $targets; do
    bin=
    if cmake --build "$build" -j2 --target "$t" >"$build/run-sh-build.log" 2>&1; then
        bin=$(find "$build/tests" -name "$t" -type f -perm -u+x | head -n 1)
    fi
    if [ -z "$bin" ]; then
        printf '%-16s not built (see %s)\n' "$t" "$build/run-sh-build.log"
        status=1
        continue
    fi
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fuzz-$t.XXXXXX")
    mkdir -p "$scratch/corpus" "$scratch/artifacts"
    find "$(corpus_of "$t")" -maxdepth 1 -type f -exec cp {} "$scratch/corpus/" \;
    # In the scratch directory: a target that resolves relative paths resolves them
    # there, never in the repository.
    (cd "$scratch" && exec "$bin" -max_total_time="$secs" -max_len="$(max_len_of "$t")" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$scratch/artifacts/" ${FERRY_FUZZ_FLAGS:-} corpus \
        >"$scratch/log" 2>&1) &
    pid=$!
    # libFuzzer stops itself at max_total_time; a hang past it is ended here.
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ $waited -lt $((secs + 60)) ]; do
        sleep 1
        waited=$((waited + 1))
    done
    cleanup
    pid=
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$scratch/log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$scratch/log" | tail -n 1)
    edges=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$scratch/log" | tail -n 1)
    crashes=$(find "$scratch/artifacts" -type f | wc -l)
    notes=
    if [ "$crashes" -gt 0 ] || [ "${FERRY_FUZZ_KEEP:-0}" = 1 ]; then
        notes="kept: $scratch"
        [ "$crashes" -gt 0 ] && status=1
    else
        rm -rf "$scratch"
    fi
    printf '%-16s %12s %9s %7s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${edges:-?}" \
        "$crashes" "$notes"
done
exit $status
