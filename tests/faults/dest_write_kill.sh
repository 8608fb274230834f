#!/usr/bin/env bash
# dest_write_kill.sh: kill -9 of the gateway while the destination API writes a file.
#
#   bash tests/faults/dest_write_kill.sh [BUILD_DIR]     (default: build)
#
# A gateway (workers: 1) with destinations_dir; destination blob's versions carry 4
# properties of 16 KiB derived from the version's number (a 64 KiB file,
# tools/faults.py). conf/README.md promises temporary file, fsync, rename, fsync of the
# directory: after a crash the file is the old one or the new one.
# 1. Anywhere: faults.py put-loop creates blob and updates it as fast as the API
#    answers; once 2 updates are acknowledged, SIGKILL (the next PUT is in flight,
#    wherever the kill lands).
# 2. At chosen steps of one PUT: strace attached to the gateway delivers SIGKILL on
#    entry to rename (the new version written and synced to the temporary file: old)
#    and to the second fsync (the directory's, after the rename: new). Skipped, with a
#    message, where strace is missing or may not attach (ptrace refused).
# After each kill the gateway restarts on the files the kill left: it starts (the file
# loads) and serves blob as exactly the expected version, property for property (in 1:
# the last acknowledged one or the one in flight; never a cut, a mix or an older one),
# and destinations_dir holds blob's file and nothing else a load would read (the
# temporary file is a dot file, which the loader skips). In 2, the temporary file a
# kill left (always, at the rename), made older than a minute, is removed by the
# restart, which logs it. The last gateway exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$SRC_ROOT/tests/integration/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$SRC_ROOT/tests/integration/tools/tunnel_lib.sh"
FAULTS=$SRC_ROOT/tests/faults/tools/faults.py

dir=$(tmpdir)
mkdir "$dir/dests" "$dir/bodies"
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
base=http://127.0.0.1:$admin/destination-configuration/v1

# check_dir WHAT: destinations_dir holds blob.yaml and, besides it, dot files only.
check_dir() {
    local f files
    mapfile -t files < <(cd "$dir/dests" && ls -A)
    echo "$1: destinations_dir: ${files[*]}" >&2
    for f in "${files[@]}"; do
        case $f in
            .*) ;;                              # the writer's temporary file: skipped
            blob.yaml) ;;
            *) fail_later "$1: destinations_dir holds '$f' after the kill" ;;
        esac
    done
    [ -f "$dir/dests/blob.yaml" ] || fail "$1: blob.yaml is gone after the kill"
}

# --- 1. a kill wherever it lands --------------------------------------------------------
start_ferry "$dir/ferry.yaml" "$admin"
acked=$dir/acked
: >"$acked"
python3 "$FAULTS" put-loop "${api[@]}" --first 0 --acked "$acked" >"$dir/loop.out" 2>&1 &
loop_pid=$!
BG_PIDS+=("$loop_pid")  # cleanup stops it if the script fails first
for ((i = 0; i < 600; i++)); do
    [ "$(wc -l <"$acked")" -ge 3 ] && break
    kill -0 "$loop_pid" 2>/dev/null || break
    sleep 0.05
done
[ "$(wc -l <"$acked")" -ge 3 ] || fail "the create and 2 updates were not acknowledged within 30s: $(cat "$dir/loop.out")"
check_sanitizers "$FERRY_LOG" gateway
kill -KILL "$FERRY_PID"
wait "$FERRY_PID" 2>/dev/null || true
wait_exit "$loop_pid" 30 || fail "the PUT loop did not stop after the kill"
[ "$WAIT_RC" -eq 0 ] || fail "the PUT loop failed: $(cat "$dir/loop.out")"
echo "anywhere: killed after $(wc -l <"$acked") acknowledged writes; loop: $(cat "$dir/loop.out")" >&2
check_dir anywhere
start_ferry "$dir/ferry.yaml" "$admin"
rc=0
out=$(python3 "$FAULTS" put-verify "${api[@]}" --acked "$acked" 2>&1) || rc=$?
echo "anywhere: $out" >&2
[ "$rc" -eq 0 ] || fail "anywhere: blob after the kill and a restart: $out"
have=$(jq -r .version <<<"$out")

# --- 2. a kill at each step of the write ----------------------------------------------------
if ! command -v strace >/dev/null; then
    echo "skip: the kills at chosen steps need strace (tests/deps.sh installs it)" >&2
    stop_ferry
    fail_deferred
    echo "dest_write_kill: ok (without strace)"
    exit 0
fi
python3 "$FAULTS" put-body --name blob --url "http://127.0.0.1:9/blob" --first 0 \
    --count $((have + 3)) --out-dir "$dir/bodies"

# traced PID: every thread of PID has a tracer.
traced() {
    local t
    for t in /proc/"$1"/task/*; do
        grep -Eq '^TracerPid:[[:space:]]+[1-9]' "$t/status" 2>/dev/null || return 1
    done
}

# kill_at STEP SYSCALLS WHEN WANT: PUT version have+1 with SIGKILL delivered on entry to
# the WHENth of SYSCALLS; then the restarted gateway must serve WANT (old: version have;
# new: have+1).
kill_at() {
    local step=$1 sys=$2 when=$3 want=$4 v=$((have + 1)) st_pid code rc=0 expect i
    start_bg "strace-$step" strace -f -qq -o /dev/null -p "$FERRY_PID" -e trace="$sys" \
        -e inject="$sys:signal=KILL:when=$when"
    st_pid=$BG_PID
    for ((i = 0; i < 200; i++)); do
        traced "$FERRY_PID" && break
        kill -0 "$st_pid" 2>/dev/null || break
        sleep 0.05
    done
    if ! traced "$FERRY_PID"; then
        echo "skip: strace cannot attach to the gateway: $(cat "$(bg_log "strace-$step")")" >&2
        stop_pid "$st_pid" 5 || true
        return 1
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X PUT \
        -H 'Authorization: Bearer acme-token' -H 'Content-Type: application/json' \
        --data-binary @"$dir/bodies/$v.json" "$base/subaccountDestinations") || true
    [ "$code" = 000 ] || fail "$step: the PUT of version $v was answered $code; want the gateway killed on $sys"
    wait "$FERRY_PID" 2>/dev/null || rc=$?
    [ "$rc" -eq 137 ] || fail "$step: the gateway ended with status $rc, want 137 (SIGKILL on $sys)"
    wait_exit "$st_pid" 10 || fail "$step: strace did not end with the gateway"
    check_dir "$step"
    # The temporary file the kill left (it holds the destination, credentials and all):
    # aged past the sweep's minute, the restart must remove it.
    temps=("$dir"/dests/.blob.yaml.??????)
    [ -e "${temps[0]}" ] || temps=()
    [ "$step" != rename ] || [ "${#temps[@]}" -ge 1 ] ||
        fail "$step: no temporary file left by a kill before the rename"
    [ "${#temps[@]}" -eq 0 ] || touch -d '2 minutes ago' "${temps[@]}"
    start_ferry "$dir/ferry.yaml" "$admin"
    left=("$dir"/dests/.blob.yaml.??????)
    [ ! -e "${left[0]}" ] || fail_later "$step: the restart left ${#left[@]} temporary file(s)"
    [ "${#temps[@]}" -eq 0 ] ||
        [ "$(log_lines "$FERRY_LOG" "removed temporary files of interrupted destination writes" \
            "files=${#temps[@]}")" -ge 1 ] ||
        fail_later "$step: no log line for the $((${#temps[@]})) temporary file(s) removed"
    expect=$have
    [ "$want" = new ] && expect=$v
    curl -sf --max-time 10 -H 'Authorization: Bearer acme-token' \
        "$base/destinations/blob" >"$dir/got.json" || fail "$step: cannot read blob after the restart"
    # Every property of the expected version's body, and no Custom.* property besides.
    got=$(jq -r '.destinationConfiguration["Custom.version"]' "$dir/got.json")
    echo "$step: killed on $sys #$when; blob is version $got (want $want: $expect)" >&2
    jq -e --slurpfile w "$dir/bodies/$expect.json" '
        .destinationConfiguration as $c | $w[0] as $w
        | ($w | to_entries | all(.value == $c[.key]))
          and ([$c | keys[] | select(startswith("Custom."))] | length)
              == ([$w | keys[] | select(startswith("Custom."))] | length)' \
        "$dir/got.json" >/dev/null \
        || fail_later "$step: after a kill on $sys the gateway serves blob as version $got," \
                      "want exactly version $expect ($want)"
    [ "$want" = new ] && have=$v
    return 0
}

# fsync #1 is the temporary file's (written, not yet renamed), #2 the directory's.
if kill_at rename rename,renameat,renameat2 1 old; then
    kill_at fsync-dir fsync 2 new
fi
stop_ferry
fail_deferred
echo "dest_write_kill: ok"
