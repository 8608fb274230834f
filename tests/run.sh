#!/usr/bin/env bash
# tests/run.sh: THE test command of ferry (CI runs it through .ci/run).
#
#   bash tests/run.sh                  deps, then build/ and build-asan/, ctest in each
#   bash tests/run.sh --quick          skip the ASan+UBSan build
#   bash tests/run.sh -- -R plugin     arguments after -- go to ctest
#
# 1. tests/deps.sh installs what is missing (Debian packages).
# 2. build/       : the normal build (RelWithDebInfo, -DFERRY_WERROR=ON), ctest -j2.
# 3. build-asan/  : -DFERRY_SANITIZE=ON (ASan+UBSan, Debug, -Werror), ctest -j2.
# Ends with a summary and the line `total: N passed, N failed`; exits non-zero if a
# configure, a build or a test failed. A failed step does not stop the other build,
# so one run shows everything that is wrong.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

quick=0
ctest_args=()
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1 ;;
        --) shift; ctest_args=("$@"); break ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

jobs=$(nproc 2>/dev/null || echo 2)
started=$(date +%s)
summary=()
total_passed=0
total_failed=0

bash tests/deps.sh

# run_build LABEL DIR [cmake -D options...]: configure, build and test one build tree;
# adds a summary line and the counts. Never exits: the caller reads the counts.
run_build() {
    local label=$1 dir=$2
    shift 2
    local t0 log line rc passed failed total
    t0=$(date +%s)
    log="$dir/ctest.log"

    echo "==> $label: configure $dir/"
    if ! cmake -S . -B "$dir" "$@"; then
        summary+=("$(printf '%-26s configure FAILED' "$label ($dir/)")")
        total_failed=$((total_failed + 1))
        return 0
    fi
    echo "==> $label: build ($jobs jobs)"
    if ! cmake --build "$dir" -j "$jobs"; then
        summary+=("$(printf '%-26s build FAILED' "$label ($dir/)")")
        total_failed=$((total_failed + 1))
        return 0
    fi
    echo "==> $label: ctest"
    set +e
    ctest --test-dir "$dir" --output-on-failure -j2 ${ctest_args[@]+"${ctest_args[@]}"} 2>&1 \
        | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    # ctest's closing line: "95% tests passed, 1 tests failed out of 20"
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" \
           | tail -n 1 || true)
    if [ -n "$line" ]; then
        failed=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
        total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
        passed=$((total - failed))
    else
        passed=0
        failed=0
    fi
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1                                  # ctest itself failed (no closing line)
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    summary+=("$(printf '%-26s %d passed, %d failed  (%ds)' "$label ($dir/)" \
                 "$passed" "$failed" $(( $(date +%s) - t0 )))")
    if [ "$failed" -ne 0 ]; then
        # Only the list under "FAILED": ctest lists skipped tests ("did not run") alike.
        summary+=("$(awk '/^The following tests FAILED:/ { on = 1; next }
                          /^The following tests/ { on = 0 }
                          on && /^[[:space:]]+[0-9]+ - / { sub(/^ */, "    failed: "); print }' \
                      "$log")")
    fi
    return 0
}

run_build "build" build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_WERROR=ON

if [ "$quick" -eq 0 ]; then
    # Sanitizer reports end the test that caused them (a failing exit code for ctest).
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    run_build "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON \
        -DFERRY_WERROR=ON
else
    summary+=("$(printf '%-26s skipped (--quick)' "asan+ubsan (build-asan/)")")
fi

echo
echo "== summary ($(( $(date +%s) - started )) s)"
printf '%s\n' "${summary[@]}" | sed '/^$/d'
echo "total: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
