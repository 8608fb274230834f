#!/usr/bin/env bash
# http_slow_clients.sh: request heads that arrive slowly cost little and still work.
#
#   bash tests/integration/http_slow_clients.sh [BUILD_DIR]     (default: build)
#
# The http plugin keeps a partial head in a small buffer and only searches it for its
# end; the parser, chunked decoders and plan are allocated once a whole head is in.
# One origin (every path echoes), one transparent listener (request_timeout_ms 20000).
# 1. A head sent one byte at a time (its final CRLF CRLF split over sends, so the
#    search resumes across reads) is answered 200 with its path.
# 2. A head ending in bare LFs ("\n\n") is parsed, and refused 400 bare-lf, at once.
# 3. Bytes no head can hold (a TLS ClientHello) are refused 400 at once, not at the
#    20 s head timeout.
# 4. 2,000 clients each holding a partial head: all counted active, a normal request is
#    served beside them, and (normal build; ASan's allocator has its own overheads) the
#    gateway's RSS grows by under 6 KiB per slow client (the parser alone was 9 KiB).
#    Once they close, the active count falls back to 0.
# ferry exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/http_lib.sh"

N=2000
dir=$(tmpdir)
start_http_origin origin --echo-all
op=$HO_PORT
admin=$(free_port); lm=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info }
admin: { listen: 127.0.0.1:$admin }
destinations:
  - { Name: plain, Type: HTTP, URL: "http://127.0.0.1:$op", ProxyType: Internet }
listeners:
  - { name: main, plugin: http, listen: "127.0.0.1:$lm", destination: plain,
      request_timeout_ms: 20000, max_connections: 10000 }
YAML
start_ferry "$dir/ferry.yaml" "$admin"
good_request "a first request" "http://127.0.0.1:$lm/warm"

# --- 1. one byte at a time ---------------------------------------------------------------
head='GET /trickle HTTP/1.1\r\nHost: a\r\n\r\n'
args=()
while [ -n "$head" ]; do
    case $head in
    '\r'* | '\n'*) args+=(--send "${head:0:2}"); head=${head:2} ;;
    *) args+=(--send "${head:0:1}"); head=${head:1} ;;
    esac
    args+=(--sleep 0.01)    # apart, so that they come in separate reads (most of them)
done
hcl "a head one byte at a time" raw --port "$lm" "${args[@]}" --response \
    --expect-status 200 --expect-body /trickle || true

# --- 2. bare LFs ---------------------------------------------------------------------------
hcl "a head ending in bare LFs" raw --port "$lm" --send 'GET /lf HTTP/1.1\nHost: a\n\n' \
    --response --expect-status 400 --expect-error bare-lf --max-elapsed 5 || true

# --- 3. binary ----------------------------------------------------------------------------
hcl "a TLS ClientHello on the plain port" raw --port "$lm" \
    --send '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03' --response --expect-status 400 \
    --max-elapsed 5 || true

# --- 4. many slow clients ----------------------------------------------------------------
sanitized=0
grep -q '^FERRY_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null && sanitized=1
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$FERRY_PID/status"; }
# Both workers have served, so their buffers and arenas exist before the baseline.
for i in 1 2 3 4; do good_request "warm-up $i" "http://127.0.0.1:$lm/warm-$i"; done
rss0=$(rss_kib)

# slow.py PORT N READY: N connections, each sends a partial head; READY once all are
# sent; holds them until SIGTERM.
cat >"$dir/slow.py" <<'PY'
import signal, socket, sys
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /slow-%d HTTP/1.1\r\nHost: a\r\nX-Slow: " % i)
    held.append(s)
with open(ready, "w") as f:
    f.write(f"{len(held)}\n")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
PY
start_bg slow python3 "$dir/slow.py" "$lm" "$N" "$dir/slow.ready"
slow_pid=$BG_PID
wait_file "$dir/slow.ready" 60 "$slow_pid" || fail "the helper could not open $N connections"
wait_hmetric "$admin" ferry_listener_connections_active -ge "$N" 30 'listener="main"' ||
    fail "want $N active connections, have '$(hmetric "$admin" ferry_listener_connections_active \
        'listener="main"')'"
rss1=$(rss_kib)
good_request "a request beside $N slow clients" "http://127.0.0.1:$lm/beside"
per=$(( (rss1 - rss0) * 1024 / N ))
if [ "$sanitized" -eq 0 ]; then
    [ "$per" -lt 6144 ] || fail "RSS grew by $(( (rss1 - rss0) / 1024 )) MiB with $N slow" \
        "clients: $per bytes each, want under 6144"
fi
stop_pid "$slow_pid" 10 || true
wait_hmetric "$admin" ferry_listener_connections_active -eq 0 30 'listener="main"' ||
    fail "the slow clients closed, but $(hmetric "$admin" ferry_listener_connections_active \
        'listener="main"') connections are still active"
stop_ferry
fail_deferred
echo "ok: trickled, bare-LF and binary heads answered at once; $N slow clients:" \
     "+$(( (rss1 - rss0) / 1024 )) MiB RSS, $per bytes each (sanitized build: $sanitized)"
