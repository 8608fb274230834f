#!/usr/bin/env bash
# tests/soak.sh: find flaky tests. Runs the whole ctest suite N times in both builds
# while a CPU hog keeps every core busy, and prints the failures per test.
#
#   bash tests/soak.sh N                 N rounds of build/ and build-asan/ (default 20)
#   bash tests/soak.sh N --quick         the normal build only
#   bash tests/soak.sh N -- -R oauth2    arguments after -- go to ctest
#
# The builds are configured and built as tests/run.sh does (deps first). The hog is one
# busy loop per CPU at the same priority as the tests, so every wait a test makes is
# stretched the way a loaded CI machine stretches it: a test that waits on time instead
# of a condition fails here. Logs: soak/<round>-<build>.log under build/.
# Ends with one line per test that failed at least once (failures/runs and its first
# FAIL line) and `soak: R rounds, F failures`; exits 1 if anything failed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

rounds=20
quick=0
ctest_args=()
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    rounds=$1
    shift
fi
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1 ;;
        --) shift; ctest_args=("$@"); break ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "soak.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
[ "$rounds" -ge 1 ] || { echo "soak.sh: N must be at least 1" >&2; exit 2; }

bash tests/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

builds=(build)
declare -A cmake_opts=(
    [build]="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON"
    [build-asan]="-DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON -DFERRY_WERROR=ON"
)
[ "$quick" -eq 1 ] || builds+=(build-asan)
for b in "${builds[@]}"; do
    # shellcheck disable=SC2086  # the options are words
    cmake -S . -B "$b" ${cmake_opts[$b]} >/dev/null
    cmake --build "$b" -j "$jobs" >/dev/null
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

logdir=build/soak
rm -rf "$logdir"
mkdir -p "$logdir"

hogs=()
stop_hogs() {
    local p
    for p in ${hogs[@]+"${hogs[@]}"}; do
        kill "$p" 2>/dev/null || true
    done
    for p in ${hogs[@]+"${hogs[@]}"}; do
        wait "$p" 2>/dev/null || true
    done
    hogs=()
}
trap stop_hogs EXIT
for ((i = 0; i < jobs; i++)); do
    bash -c 'while :; do :; done' &
    hogs+=($!)
done

declare -A fails=() runs=() first=()
started=$(date +%s)
total_fail=0
for ((r = 1; r <= rounds; r++)); do
    for b in "${builds[@]}"; do
        log="$logdir/$r-$b.log"
        set +e
        ctest --test-dir "$b" --output-on-failure -j "$jobs" \
            ${ctest_args[@]+"${ctest_args[@]}"} >"$log" 2>&1
        set -e
        # "12/42 Test #27: integration/oauth2 .....   Passed   11.38 sec"
        while read -r name outcome; do
            # A test that skips itself (exit 77: package_deb in the ASan build) neither
            # passes nor fails: not counted.
            [ "$outcome" != Skipped ] || continue
            runs[$b:$name]=$(( ${runs[$b:$name]:-0} + 1 ))
            if [ "$outcome" != Passed ]; then
                fails[$b:$name]=$(( ${fails[$b:$name]:-0} + 1 ))
                total_fail=$((total_fail + 1))
                if [ -z "${first[$b:$name]:-}" ]; then
                    # The test's own first FAIL line, else ctest's verdict.
                    first[$b:$name]="round $r: $(awk -v t="$name" '
                        $0 ~ "Test +#[0-9]+: " t " " { on = 1; next }
                        on && /FAIL|ERROR|Sanitizer|runtime error/ { print; exit }
                        on && /^ *[0-9]+\/[0-9]+ Test / { exit }' "$log" | cut -c1-200)"
                    [ "${first[$b:$name]}" != "round $r: " ] \
                        || first[$b:$name]="round $r: $outcome (see $log)"
                fi
            fi
        done < <(sed -nE 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) \.+ *\**([A-Za-z]+).*/\1 \2/p' "$log")
        printf 'soak: round %d/%d %-10s %s (%ds so far)\n' "$r" "$rounds" "$b" \
            "$(grep -E '^[0-9]+% tests passed' "$log" || echo 'no ctest summary')" \
            $(( $(date +%s) - started ))
    done
done
stop_hogs

echo
echo "== soak: $rounds rounds of ${builds[*]}, $(( ($(date +%s) - started) / 60 )) min, CPU hog on $jobs cores"
if [ "$total_fail" -eq 0 ]; then
    echo "no test failed"
else
    for k in $(printf '%s\n' "${!fails[@]}" | sort); do
        printf '%-45s %d/%d failed; first: %s\n' "$k" "${fails[$k]}" "${runs[$k]}" "${first[$k]}"
    done
fi
echo "soak: $rounds rounds, $total_fail failures"
[ "$total_fail" -eq 0 ]
