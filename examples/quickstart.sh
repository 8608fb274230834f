#!/usr/bin/env bash
# examples/quickstart.sh: THE start command. Builds ferry and runs the demo: a gateway,
# a connector and a demo origin, all on loopback.
#
#   sudo bash examples/quickstart.sh       (or, as root: bash examples/quickstart.sh)
#
# 1. tests/deps.sh installs the Debian packages that are missing (needs root only then).
# 2. Builds ferry into build/ (RelWithDebInfo).
# 3. Creates run/ (git-ignored) and, on the first run, self-signed certificates in
#    run/tls/ (examples/demo-certs.sh): a CA, a gateway certificate for
#    127.0.0.1/localhost and a connector client certificate (the tunnel uses all three).
# 4. Starts the demo origin (examples/demo-origin.py) on 127.0.0.1:8000.
# 5. Runs `build/core/ferry gateway -c conf/ferry.yaml` and, once its tunnel port is up,
#    `build/core/ferry connector -c conf/connector.yaml`, until Ctrl-C, which sends both
#    SIGTERM (drain and exit); the connector and the demo origin are stopped by PID.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

case ${1:-} in
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "quickstart.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

ferry=build/core/ferry
conf=conf/ferry.yaml
run=run
tls=$run/tls
origin_port=8000

say() { printf '\n==> %s\n' "$*"; }

# --- 1. packages, 2. build ---------------------------------------------------------
say "checking packages (tests/deps.sh)"
bash tests/deps.sh

say "building ferry in build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
[ -x "$ferry" ] || { echo "quickstart: the build did not produce $ferry" >&2; exit 1; }

# --- 3. run/ and certificates ------------------------------------------------------
bash examples/demo-certs.sh "$tls"

# --- 4. the demo origin -------------------------------------------------------------
for port in "$origin_port" 3300 3301 8443 9901 9902 20004; do
    if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
        echo "quickstart: 127.0.0.1:$port is already in use (another quickstart running?)." >&2
        echo "            ss -ltnp 'sport = :$port' shows who has it." >&2
        exit 1
    fi
done

origin_pid=
connector_pid=
# shellcheck disable=SC2317  # called from the EXIT trap
stop_origin() {
    if [ -n "$connector_pid" ] && kill -0 "$connector_pid" 2>/dev/null; then
        kill -TERM "$connector_pid" 2>/dev/null || true
        wait "$connector_pid" 2>/dev/null || true
        echo "quickstart: connector (pid $connector_pid) stopped"
    fi
    if [ -n "$origin_pid" ] && kill -0 "$origin_pid" 2>/dev/null; then
        kill -TERM "$origin_pid" 2>/dev/null || true
        wait "$origin_pid" 2>/dev/null || true
        echo "quickstart: demo origin (pid $origin_pid) stopped"
    fi
}
trap stop_origin EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting the demo origin on 127.0.0.1:$origin_port (log: $run/demo-origin.log)"
python3 examples/demo-origin.py --port "$origin_port" >"$run/demo-origin.log" 2>&1 &
origin_pid=$!
up=0
for _ in $(seq 1 100); do                     # at most 10 s
    if (exec 3<>"/dev/tcp/127.0.0.1/$origin_port") 2>/dev/null; then up=1; break; fi
    kill -0 "$origin_pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" -ne 1 ]; then
    echo "quickstart: the demo origin did not start:" >&2
    cat "$run/demo-origin.log" >&2
    exit 1
fi

# --- 5. the gateway -----------------------------------------------------------------
say "checking $conf"
"$ferry" check -c "$conf"

cat <<TXT

==> starting ferry: $ferry gateway -c $conf   (Ctrl-C to stop)

    Try, from another terminal:
      curl -s http://127.0.0.1:3300/            # tcp listener 'demo': directly to the origin
      curl -s http://127.0.0.1:3301/            # tcp listener 'onprem': through the tunnel
                                                #   and the connector (an on-premise system)
      curl -s http://127.0.0.1:9901/metrics     # gateway metrics (ferry_tunnel_* too)
      curl -s http://127.0.0.1:9902/readyz      # the connector: 200 while a tunnel is up
      curl -s --socks5-hostname 127.0.0.1:20004 --proxy-user demo:demo-token-change-me \\
           http://demo-origin.internal:8000/    # SOCKS5 to the on-premise system
      $ferry connector --verify-audit $run/audit.jsonl
      $ferry check -c $conf
    After editing $conf or conf/destinations/: kill -HUP <ferry pid> reloads it.
    Certificates for the tunnel are in $tls/ (ca.crt, gateway.*, connector.*).

TXT
# ferry runs as our child so a signal to this script (Ctrl-C, or `kill` of its PID)
# reaches it as SIGTERM: drain, then exit. A second Ctrl-C kills it.
ferry_pid=
signals=0
# shellcheck disable=SC2317  # called from the INT/TERM trap
stop_ferry() {
    signals=$((signals + 1))
    [ -n "$ferry_pid" ] || exit 130
    if [ "$signals" -eq 1 ]; then
        echo "quickstart: stopping ferry (pid $ferry_pid): draining; Ctrl-C again to kill" >&2
        kill -TERM "$ferry_pid" 2>/dev/null || true
    else
        kill -KILL "$ferry_pid" 2>/dev/null || true
    fi
}
trap stop_ferry INT TERM
"$ferry" gateway -c "$conf" &
ferry_pid=$!
# The connector dials out to the gateway's tunnel port; it retries on its own, but
# starting it once the gateway is up keeps the first log lines free of retries. Asked
# of the admin listener (/healthz answers once every listener is open), not of the
# tunnel port, where a bare TCP probe is a TLS client that never says hello.
for _ in $(seq 1 100); do                     # at most 10 s
    curl -sf -o /dev/null --max-time 1 http://127.0.0.1:9901/healthz && break
    kill -0 "$ferry_pid" 2>/dev/null || break
    sleep 0.1
done
"$ferry" connector -c conf/connector.yaml 2>"$run/connector.log" &
connector_pid=$!
echo "quickstart: connector started (pid $connector_pid, log: $run/connector.log)"
rc=0
while :; do
    wait "$ferry_pid" && rc=0 || rc=$?
    kill -0 "$ferry_pid" 2>/dev/null || break      # else a trapped signal woke us
done
exit "$rc"
