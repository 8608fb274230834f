#!/usr/bin/env bash
# tunnel_tls_backend.sh: the connector speaks TLS to TCPS internal hosts.
#
#   bash tests/integration/tunnel_tls_backend.sh [BUILD_DIR]     (default: build)
#
# A TLS echo server (certificate from a test CA) stands behind the connector as a TCPS
# system. Through a plain tcp listener of the gateway:
# 1. 4 MiB echo with matching sha256 (the client speaks plain TCP; the connector does
#    TLS to the internal host, checking its certificate against tls_ca);
# 2. a system whose tls_ca is another CA: the client is closed with no data and the
#    connector audits "tls-failed" with the verification error;
# 3. the same with tls_verify: false works (and `ferry check` warns about it);
# 4. tls_* keys on a plain TCP system are a config error at file:line:col.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"

dir=$(tmpdir)
make_ca "$dir" ca
make_ca "$dir" other
make_cert "$dir" gw ca
make_cert "$dir" backend ca

start_bg tls-echo python3 "$TOOLS/tls_echo.py" --cert "$dir/backend.crt" --key "$dir/backend.key" \
    --port-file "$dir/tls.port"
wait_file "$dir/tls.port" 10 "$BG_PID" || fail "the TLS echo server did not start"
tls_port=$(cat "$dir/tls.port")

gw_admin=$(free_port); tport=$(free_port)
l_ok=$(free_port); l_bad=$(free_port); l_nover=$(free_port)
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$gw_admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: ok, Type: TCP, Address: "tcp://secure.internal:443", ProxyType: OnPremise }
  - { Name: bad, Type: TCP, Address: "tcp://badca.internal:443", ProxyType: OnPremise }
  - { Name: nover, Type: TCP, Address: "tcp://noverify.internal:443", ProxyType: OnPremise }
listeners:
  - { name: ok, plugin: tcp, listen: "127.0.0.1:$l_ok", destination: ok }
  - { name: bad, plugin: tcp, listen: "127.0.0.1:$l_bad", destination: bad }
  - { name: nover, plugin: tcp, listen: "127.0.0.1:$l_nover", destination: nover }
YAML
cn_admin=$(free_port)
cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
systems:
  - { virtual: secure.internal:443, internal: 127.0.0.1:$tls_port, protocol: TCPS, tls_ca: ca.crt }
  - { virtual: badca.internal:443, internal: 127.0.0.1:$tls_port, protocol: TCPS, tls_ca: other.crt }
  - { virtual: noverify.internal:443, internal: 127.0.0.1:$tls_port, protocol: TCPS, tls_verify: "false" }
YAML
out=$("$FERRY" check -c "$dir/cn.yaml" 2>&1) || fail "ferry check refused a good connector config: $out"
grep -q "tls_verify: false" <<<"$out" || fail "no warning for tls_verify: false: $out"

start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "the connector did not come up"
need_metric "$gw_admin" 'ferry_tunnels{tenant="acme",location=""}' -eq 2 10

# --- 1. plain client, TLS behind the connector --------------------------------------------
python3 - "$l_ok" >"$dir/echo.out" 2>&1 <<'PY' || fail "TCPS echo: $(cat "$dir/echo.out")"
import hashlib, os, socket, sys, threading
data = os.urandom(4 << 20)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
t.start()
h, n = hashlib.sha256(), 0
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
t.join()
if n != len(data) or h.digest() != hashlib.sha256(data).digest():
    sys.exit(f"got {n} bytes, sha256 {'matches' if h.digest() == hashlib.sha256(data).digest() else 'differs'}")
print("ok")
PY
[ "$(audit_count "$dir/audit.jsonl" virtual=secure.internal:443 outcome=ok protocol=TCPS)" -ge 1 ] \
    || fail "no ok audit line for the TCPS stream"

# --- 2. an internal certificate from another CA --------------------------------------------
got=$(python3 -c 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=5); s.sendall(b"x")
try:
    print(len(s.recv(100)))
except OSError as e:
    print("reset")' "$l_bad")
[ "$got" = 0 ] || [ "$got" = reset ] || fail "a backend with an untrusted certificate sent $got bytes"
wait_log "$dir/audit.jsonl" '"virtual":"badca.internal:443".*"outcome":"tls-failed"' 5 \
    || fail "no tls-failed audit line: $(tail -3 "$dir/audit.jsonl")"
grep -q 'certificate not trusted' "$dir/audit.jsonl" || fail "the audit line does not say why"

# --- 3. tls_verify: false -----------------------------------------------------------------
client echo "no-verify" --port "$l_nover" --timeout 10

# --- 4. tls_* on a plain system is an error ------------------------------------------------
cat >"$dir/badcn.yaml" <<YAML
gateway: 127.0.0.1:$tport
tenant: acme
token: acme-token
ca: ca.crt
systems:
  - { virtual: plain.internal:80, internal: 127.0.0.1:1, protocol: TCP, tls_ca: ca.crt }
YAML
if out=$("$FERRY" check -c "$dir/badcn.yaml" 2>&1); then
    fail "tls_ca on a TCP system was accepted"
fi
grep -q "badcn.yaml:6:.*tls_\* keys need a TLS protocol" <<<"$out" || fail "unexpected error: $out"

stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
grep -qE "127[.]0[.]0[.]1:$tls_port([^0-9]|$)" "$gw_log" "$dir/access.log" && fail "the internal address appeared in a gateway log"
"$FERRY" connector --verify-audit "$dir/audit.jsonl" >/dev/null || fail "audit chain broken"
echo "tunnel_tls_backend: ok"
