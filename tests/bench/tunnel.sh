#!/usr/bin/env bash
# tests/bench/tunnel.sh: ferry's reverse tunnel against the peers that do the same job:
# the stunnel pair (TLS, one connection per proxied connection) and ssh -R (one SSH
# connection, channels multiplexed), and direct. Run by tests/bench/run.sh, or alone:
#
#   BUILD=build bash tests/bench/tunnel.sh        (env: SECS=3 ROUNDS=3 IDLE_STREAMS GIB_MIB)
#
# The client always dials the "gateway side" (ferry's tcp listener for an OnPremise
# destination, stunnel's client end, sshd's -R port); the "on-premise side" (ferry
# connector, stunnel's server end, the ssh client) dials the origin. All on loopback.
#
# Ciphers: ssh is forced to aes256-gcm@openssh.com and the stunnel pair to
# TLS_AES_256_GCM_SHA384; ferry runs twice, with its default suite (AES-128-GCM first)
# and, as `ferry-256`, with its connector held to TLS_AES_256_GCM_SHA384 (an LD_PRELOAD
# shim, tls13_suites.c), the like-for-like comparison. The table prints the suite each
# ferry tunnel negotiated (from the connector's "tunnel up" line). CPU ms/GiB is what
# both ends of a subject (ferry: gateway + connector; stunnel: both processes; ssh:
# sshd with its session process + the ssh client) spend per GiB of a fixed transfer of
# GIB_MIB MiB (default 1024), median of ROUNDS: the figure a loaded machine moves least.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IDLE_STREAMS=${IDLE_STREAMS:-10000}
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"

ORIGIN=$(port)
"$LOADGEN" serve "$ORIGIN" & pids+=($!)
wait_port "$ORIGIN"

# shellcheck source=tests/bench/tunnel_lib.sh
. "$ROOT/tests/bench/tunnel_lib.sh"
start_ferry bulk auto
FERRY_P=$FT_PORT; FERRY_PIDS="$GW_PID $CN_PID"
start_ferry bulk256 auto "" \
    "env LD_PRELOAD=$BUILD/tests/bench/libferry-bench-tls13.so BENCH_TLS13_CIPHERSUITES=TLS_AES_256_GCM_SHA384"
FERRY256_P=$FT_PORT; FERRY256_PIDS="$GW_PID $CN_PID"

# The stunnel pair: plain -> TLS (client end) -> TLS (server end) -> origin.
STS_P=$(port); STC_P=$(port)
cat >"$work/st-server.conf" <<CFG
foreground = yes
pid =
[srv]
accept = 127.0.0.1:$STS_P
connect = 127.0.0.1:$ORIGIN
cert = $work/gw.crt
key = $work/gw.key
CFG
cat >"$work/st-client.conf" <<CFG
foreground = yes
pid =
[cli]
client = yes
accept = 127.0.0.1:$STC_P
connect = 127.0.0.1:$STS_P
CAfile = $work/ca.crt
verifyChain = yes
CFG
for end in server client; do
    printf 'ciphersuites = TLS_AES_256_GCM_SHA384\n' >>"$work/st-$end.conf"
done
stunnel4 "$work/st-server.conf" >"$work/sts.log" 2>&1 & STS_PID=$!; pids+=($!)
stunnel4 "$work/st-client.conf" >"$work/stc.log" 2>&1 & STC_PID=$!; pids+=($!)

# ssh -R: the on-premise side runs the ssh client; sshd's forwarded port is the entry.
SSH_P=$(port); SSHR_P=$(port)
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/user_key"
cp "$work/user_key.pub" "$work/authorized_keys"
cat >"$work/sshd_config" <<CFG
Port $SSH_P
ListenAddress 127.0.0.1
HostKey $work/host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
AllowTcpForwarding yes
LogLevel ERROR
CFG
"$(command -v sshd)" -D -e -f "$work/sshd_config" 2>"$work/sshd.log" & SSHD_PID=$!; pids+=($!)
wait_port "$SSH_P"
ssh -N -q -c aes256-gcm@openssh.com -i "$work/user_key" -p "$SSH_P" -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o ExitOnForwardFailure=yes \
    -R "127.0.0.1:$SSHR_P:127.0.0.1:$ORIGIN" root@127.0.0.1 2>"$work/ssh.log" & SSH_PID=$!
pids+=($!)
for p in "$FERRY_P" "$FERRY256_P" "$STC_P" "$SSHR_P"; do wait_port "$p"; done

SUBJECTS=(direct ferry ferry-256 stunnel ssh)
declare -A PORT=([direct]=$ORIGIN [ferry]=$FERRY_P [ferry-256]=$FERRY256_P [stunnel]=$STC_P
                 [ssh]=$SSHR_P)
declare -A CIPHER=([direct]=- [ferry]=$(tunnel_cipher bulk) [ferry-256]=$(tunnel_cipher bulk256)
                   [stunnel]=TLS_AES_256_GCM_SHA384 [ssh]=aes256-gcm@openssh.com)
declare -A TREE=([ferry]="$FERRY_PIDS" [ferry-256]="$FERRY256_PIDS" [stunnel]="$STS_PID $STC_PID"
                 [ssh]="$SSHD_PID $SSH_PID")
measure "${SUBJECTS[@]}"

# tree_ticks PID...: CPU ticks of the processes and all their descendants.
tree_ticks() {
    local p total=0
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        total=$(( total + $(awk '{ print $14 + $15 }' "/proc/$p/stat") ))
        # shellcheck disable=SC2046
        total=$(( total + $(tree_ticks $(pgrep -P "$p" 2>/dev/null)) ))
    done
    echo "$total"
}
GIB_MIB=${GIB_MIB:-1024}
declare -A CPUG
echo "bench: CPU per GiB, $ROUNDS fixed transfers of $GIB_MIB MiB per subject" >&2
for s in "${SUBJECTS[@]}"; do
    [ -n "${TREE[$s]:-}" ] || continue
    vals=()
    for _ in $(seq 1 "$ROUNDS"); do
        # shellcheck disable=SC2086
        t0=$(tree_ticks ${TREE[$s]})
        "$LOADGEN" fetch 127.0.0.1 "${PORT[$s]}" "$GIB_MIB" >/dev/null
        # shellcheck disable=SC2086
        t1=$(tree_ticks ${TREE[$s]})
        vals+=("$(( (t1 - t0) * 1000 * 1024 / TICK_HZ / GIB_MIB ))")
        sleep 1
    done
    CPUG[$s]=$(median "${vals[@]}")
    echo "  $s: ${vals[*]} CPU ms per GiB" >&2
done

printf '\n%-9s %-23s %10s %6s %9s %8s %10s %8s %9s\n' subject cipher "bulk MiB/s" "x ssh" \
    "x stunnel" "x direct" "CPU ms/GiB" "conn/s" "x stunnel"
for s in "${SUBJECTS[@]}"; do
    printf '%-9s %-23s %10s %6s %9s %8s %10s %8s %9s\n' "$s" "${CIPHER[$s]}" "${BULK[$s]}" \
        "$(ratio "${BULK[$s]}" "${BULK[ssh]}")" "$(ratio "${BULK[$s]}" "${BULK[stunnel]}")" \
        "$(ratio "${BULK[$s]}" "${BULK[direct]}")" "${CPUG[$s]:--}" "${RATE[$s]}" \
        "$(ratio "${RATE[$s]}" "${RATE[stunnel]}")"
done
printf '(bulk: one stream, median of %s; CPU ms/GiB: both ends of the subject; conn/s: ferry new\n' \
    "$ROUNDS"
printf ' streams over existing tunnels, stunnel new TLS connections, ssh new channels)\n'
printf 'ferry-256 (AES-256-GCM like its peers): %sx ssh -R (goal >= 1.0), %sx stunnel (goal >= 1.5)\n' \
    "$(ratio "${BULK[ferry-256]}" "${BULK[ssh]}")" "$(ratio "${BULK[ferry-256]}" "${BULK[stunnel]}")"

# Idle streams on ONE tunnel: a gateway and a connector with one worker each.
# shellcheck disable=SC2086
kill $FERRY_PIDS $FERRY256_PIDS
# shellcheck disable=SC2086
wait $FERRY_PIDS $FERRY256_PIDS 2>/dev/null || true
start_ferry idle 1
echo
idle_cost "ferry gateway (streams on one tunnel)" "$GW_PID" "$FT_PORT" "$IDLE_STREAMS"
