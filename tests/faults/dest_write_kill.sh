#!/usr/bin/env bash
# dest_write_kill.sh: kill -9 of the gateway while the destination API writes a file.
#
#   bash tests/faults/dest_write_kill.sh [BUILD_DIR]     (default: build)
#
# A gateway with destinations_dir. tools/faults.py put-loop creates destination blob
# (version 0) and then updates it as fast as the API answers, each version with 4
# properties of 16 KiB derived from its number (a 64 KiB file), recording every
# acknowledged version. Three rounds: once the round has 1, 2, 3 acknowledged writes,
# SIGKILL the gateway (the loop's next PUT is then in flight: parsed, written, renamed or
# applied — wherever the kill lands), restart it on the same files and check:
# - it starts (the file loads) and serves blob as exactly one version, byte for byte:
#   the last acknowledged one or the one in flight, never a mix, a cut or an older one
#   (faults.py put-verify); conf/README.md promises temp file, fsync, rename;
# - destinations_dir holds blob's file and nothing else a load would read (a temporary
#   file left by the kill is a dot file, which the loader skips).
# The last gateway exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$SRC_ROOT/tests/integration/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$SRC_ROOT/tests/integration/tools/tunnel_lib.sh"
FAULTS=$SRC_ROOT/tests/faults/tools/faults.py

dir=$(tmpdir)
mkdir "$dir/dests"
admin=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 1
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: acme-token } ]
destinations_dir: dests
YAML
api=(--admin "$admin" --token acme-token --name blob --url "http://127.0.0.1:9/blob")

first=0
start_ferry "$dir/ferry.yaml" "$admin"
for round in 1 2 3; do
    acked=$dir/acked-$round
    : >"$acked"
    python3 "$FAULTS" put-loop "${api[@]}" --first "$first" --acked "$acked" \
        >"$dir/loop-$round.out" 2>&1 &
    loop_pid=$!
    want=$round
    for ((i = 0; i < 600; i++)); do
        [ "$(wc -l <"$acked")" -ge "$want" ] && break
        kill -0 "$loop_pid" 2>/dev/null || break
        sleep 0.05
    done
    [ "$(wc -l <"$acked")" -ge "$want" ] \
        || fail "round $round: $want updates were not acknowledged within 30s: $(cat "$dir/loop-$round.out")"
    check_sanitizers "$FERRY_LOG" "gateway (round $round)"
    kill -KILL "$FERRY_PID"
    wait "$FERRY_PID" 2>/dev/null || true
    wait_exit "$loop_pid" 30 || fail "round $round: the PUT loop did not stop after the kill"
    [ "$WAIT_RC" -eq 0 ] || fail "round $round: the PUT loop failed: $(cat "$dir/loop-$round.out")"
    echo "round $round: killed after $(wc -l <"$acked") acknowledged versions;" \
        "loop: $(cat "$dir/loop-$round.out")" >&2

    # The files on disk as the kill left them, then a gateway started on them (it
    # carries the next round).
    mapfile -t files < <(cd "$dir/dests" && ls -A)
    echo "round $round: destinations_dir: ${files[*]}" >&2
    for f in "${files[@]}"; do
        case $f in
            .*) ;;                              # the writer's temporary file: skipped
            blob.yaml) ;;
            *) fail_later "round $round: destinations_dir holds '$f' after the kill" ;;
        esac
    done
    [ -f "$dir/dests/blob.yaml" ] || fail "round $round: blob.yaml is gone after the kill"
    start_ferry "$dir/ferry.yaml" "$admin"
    rc=0
    out=$(python3 "$FAULTS" put-verify "${api[@]}" --acked "$acked" 2>&1) || rc=$?
    echo "round $round: $out" >&2
    [ "$rc" -eq 0 ] || fail "round $round: blob after the kill and a restart: $out"
    first=$(( $(jq -r .version <<<"$out") + 1 ))
done
stop_ferry
fail_deferred
echo "dest_write_kill: ok"
