#!/usr/bin/env bash
# tests/bench/tunnel.sh: ferry's reverse tunnel against the peers that do the same job:
# the stunnel pair (TLS, one connection per proxied connection) and ssh -R (one SSH
# connection, channels multiplexed), and direct. Run by tests/bench/run.sh, or alone:
#
#   BUILD=build bash tests/bench/tunnel.sh        (env: SECS=3 ROUNDS=3 IDLE_STREAMS)
#
# The client always dials the "gateway side" (ferry's tcp listener for an OnPremise
# destination, stunnel's client end, sshd's -R port); the "on-premise side" (ferry
# connector, stunnel's server end, the ssh client) dials the origin. All on loopback.
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
FERRY_P=$FT_PORT

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
stunnel4 "$work/st-server.conf" >"$work/sts.log" 2>&1 & pids+=($!)
stunnel4 "$work/st-client.conf" >"$work/stc.log" 2>&1 & pids+=($!)

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
"$(command -v sshd)" -D -e -f "$work/sshd_config" 2>"$work/sshd.log" & pids+=($!)
wait_port "$SSH_P"
ssh -N -q -i "$work/user_key" -p "$SSH_P" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ExitOnForwardFailure=yes -R "127.0.0.1:$SSHR_P:127.0.0.1:$ORIGIN" root@127.0.0.1 \
    2>"$work/ssh.log" & pids+=($!)
for p in "$FERRY_P" "$STC_P" "$SSHR_P"; do wait_port "$p"; done

declare -A PORT=([direct]=$ORIGIN [ferry]=$FERRY_P [stunnel]=$STC_P [ssh]=$SSHR_P)
measure direct ferry stunnel ssh
table stunnel direct ferry stunnel ssh
printf '(ferry: new streams/s over existing tunnels; stunnel: new TLS connections/s; ssh: new channels/s)\n'

# Idle streams on ONE tunnel: a gateway and a connector with one worker each.
kill "$GW_PID" "$CN_PID"
wait "$GW_PID" "$CN_PID" 2>/dev/null || true
start_ferry idle 1
echo
idle_cost "ferry gateway (streams on one tunnel)" "$GW_PID" "$FT_PORT" "$IDLE_STREAMS"
