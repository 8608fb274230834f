#!/usr/bin/env bash
# tunnel_replicas.sh: one connector, two gateway replicas; and flow control per stream.
#
#   bash tests/integration/tunnel_replicas.sh [BUILD_DIR]     (default: build)
#
# 1. A connector configured with `gateway: [A, B]` keeps tunnels to both (one per
#    gateway worker: 2 + 2); an echo works through each gateway.
# 2. Flow control: through gateway B, a client opens a 64 MiB download and never
#    reads it. Meanwhile a second client echoes 16 MiB through the same tunnel: it must
#    finish (one stalled stream never stalls the others), and gateway B's RSS must not
#    grow by more than 48 MiB (what the stalled stream buffers is bounded by its
#    HTTP/2 window, not by the 64 MiB the origin wants to send).
# 3. Gateway A stops (SIGTERM): the connector keeps its 2 tunnels to B, stays ready, and
#    echoes through B keep working. No sanitizer report from any ferry process.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"

dir=$(tmpdir)
make_ca "$dir" ca
make_cert "$dir" gw ca

start_origin echo echo
op_echo=$ORIGIN_PORT
start_origin source source --bytes $((64 * 1024 * 1024))
op_src=$ORIGIN_PORT

# write_gw NAME: a gateway with a tunnel port and two tcp listeners (echo, source).
write_gw() {
    local name=$1
    eval "${name}_admin=$(free_port) ${name}_tport=$(free_port)"
    eval "${name}_echo=$(free_port) ${name}_src=$(free_port)"
    local admin tport lecho lsrc
    admin=$(eval echo "\$${name}_admin"); tport=$(eval echo "\$${name}_tport")
    lecho=$(eval echo "\$${name}_echo"); lsrc=$(eval echo "\$${name}_src")
    cat >"$dir/$name.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/$name-access.log }
admin: { listen: 127.0.0.1:$admin }
drain_timeout_ms: 3000
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: echo, Type: TCP, Address: "tcp://echo.internal:7", ProxyType: OnPremise }
  - { Name: src, Type: TCP, Address: "tcp://source.internal:80", ProxyType: OnPremise }
listeners:
  - { name: echo, plugin: tcp, listen: "127.0.0.1:$lecho", destination: echo }
  - { name: src, plugin: tcp, listen: "127.0.0.1:$lsrc", destination: src }
YAML
}
write_gw a
write_gw b
# shellcheck disable=SC2154  # set by write_gw through eval
{
cn_admin=$(free_port)
cat >"$dir/cn.yaml" <<YAML
gateway: [ "127.0.0.1:$a_tport", "127.0.0.1:$b_tport" ]
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
keepalive_ms: 1000
dead_peer_timeout_ms: 3000
reconnect_max_ms: 1000
systems:
  - { virtual: echo.internal:7, internal: 127.0.0.1:$op_echo, protocol: TCP }
  - { virtual: source.internal:80, internal: 127.0.0.1:$op_src, protocol: TCP }
YAML

T='{tenant="acme",location=""}'
start_gateway gw-a "$dir/a.yaml" "$a_admin"
a_pid=$GW_PID a_log=$GW_LOG
start_gateway gw-b "$dir/b.yaml" "$b_admin"
b_pid=$GW_PID b_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG

# --- 1. a tunnel to each replica --------------------------------------------------------
need_metric "$a_admin" "ferry_tunnels$T" -eq 2 10
need_metric "$b_admin" "ferry_tunnels$T" -eq 2 10
need_metric "$cn_admin" "ferry_connector_tunnels_up" -eq 4 10
client echo "via-a" --port "$a_echo" --timeout 10
client echo "via-b" --port "$b_echo" --timeout 10

# --- 2. one stalled stream does not stall the others ----------------------------------------
rss_before=$(awk '/^VmRSS/ {print $2}' "/proc/$b_pid/status")
python3 - "$b_src" "$b_echo" "$b_admin" >"$dir/flow.out" 2>&1 <<'PY' || fail "flow control: $(cat "$dir/flow.out")"
import hashlib, os, socket, sys, threading, time, urllib.request
src, echo, admin = (int(x) for x in sys.argv[1:4])

def metric(name):
    body = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0

stalled = socket.create_connection(("127.0.0.1", src), timeout=10)
stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
deadline = time.monotonic() + 10
while metric('ferry_tunnel_bytes_sent_total{tenant="acme",location=""}') < 1 << 20:
    if time.monotonic() > deadline:
        sys.exit("the stalled download never started")
    time.sleep(0.05)
time.sleep(1)    # let its window fill up: from now on the stream is blocked

payload = os.urandom(16 << 20)
want = hashlib.sha256(payload).hexdigest()
s = socket.create_connection(("127.0.0.1", echo), timeout=20)
got = hashlib.sha256()
n = 0
def send():
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t0 = time.monotonic()
t.start()
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    got.update(b)
    n += len(b)
t.join()
secs = time.monotonic() - t0
if n != len(payload) or got.hexdigest() != want:
    sys.exit(f"echo beside a stalled stream: {n} bytes, sha256 mismatch={got.hexdigest() != want}")
if secs > 15:
    sys.exit(f"echo beside a stalled stream took {secs:.1f}s: stalled?")
print(f"ok: 16 MiB echoed in {secs:.2f}s beside a stalled stream")
stalled.close()
PY
rss_after=$(awk '/^VmRSS/ {print $2}' "/proc/$b_pid/status")
grew=$(( (rss_after - rss_before) / 1024 ))
if grep -q '^FERRY_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    # ASan keeps freed memory in quarantine: RSS says nothing about ferry's buffers.
    echo "flow control: $(cat "$dir/flow.out"); RSS bound not checked under ASan (grew ${grew} MiB)"
else
    [ "$grew" -le 48 ] || fail "gateway B grew by ${grew} MiB with a stalled 64 MiB stream (want <= 48)"
    echo "flow control: $(cat "$dir/flow.out"); gateway RSS grew ${grew} MiB"
fi

# --- 3. losing one replica -----------------------------------------------------------------
stop_proc "$a_pid" "$a_log" "gateway A"
need_metric "$cn_admin" "ferry_connector_tunnels_up" -eq 2 10
[ "$(readyz "$cn_admin")" = 200 ] || fail "connector not ready with gateway B still up"
for i in 1 2 3 4 5; do
    client echo "after-a-$i" --port "$b_echo" --timeout 10
done

stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$b_pid" "$b_log" "gateway B"
grep -qE '127[.]0[.]0[.]1:'"$op_echo"'([^0-9]|$)' "$a_log" "$b_log" "$dir/a-access.log" "$dir/b-access.log" \
    && fail "an internal address appeared in a gateway log"
echo "tunnel_replicas: ok"
}
