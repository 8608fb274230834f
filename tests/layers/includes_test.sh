#!/bin/sh
# includes_test.sh: core/check-layers.sh on fixtures (tests/layers/fixture/core/): an
# upward include and a folder outside the order fail with file:line and the rooms
# named; the same room, the same level (worker and relay) and lower rooms pass.
#
#   sh includes_test.sh CHECK_SCRIPT "folder=level=room ..." FIXTURE_CORE_DIR
set -u

check=$1
rooms=$2
core=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

fail() {
    echo "FAIL: includes_test: $*"
    fails=$((fails + 1))
}

# run NAME FILE...: the checker's output in $tmp/NAME.out, its status in $rc.
run() {
    name=$1
    shift
    sh "$check" "$core" "$rooms" "$tmp/$name.ok" "$@" >"$tmp/$name.out" 2>&1
    rc=$?
}

run upward "$core/conf/upward.c"
[ "$rc" -ne 0 ] || fail "an upward include passed"
[ ! -e "$tmp/upward.ok" ] || fail "an upward include left the stamp"
grep -qx "core/conf/upward.c:3: includes worker/worker.h, a higher room (conf < worker)" \
    "$tmp/upward.out" || fail "upward: want the file:line and both rooms, got: $(cat "$tmp/upward.out")"
grep -q "conf/conf.h" "$tmp/upward.out" && fail "upward: its own room was reported too"

run mystery "$core/mystery/new.c"
[ "$rc" -ne 0 ] || fail "a folder outside the order passed"
grep -q "core/mystery/new.c: folder mystery/ is not a room of FERRY_ROOMS" "$tmp/mystery.out" ||
    fail "mystery: want the folder named, got: $(cat "$tmp/mystery.out")"

run fine "$core/worker/fine.c" "$core/main.c"
[ "$rc" -eq 0 ] || fail "same room, same level and lower rooms were refused: $(cat "$tmp/fine.out")"
[ -e "$tmp/fine.ok" ] || fail "a clean run left no stamp"

[ "$fails" -eq 0 ] || exit 1
echo "includes_test: ok"
