#!/usr/bin/env bash
# tunnel_http_paths.sh: the connector enforces `paths` of HTTP systems per request.
#
#   bash tests/integration/tunnel_http_paths.sh [BUILD_DIR]     (default: build)
#
# An HTTP origin (python3 -m http.server) behind the connector as an HTTP system with
# paths [ "/api/", "/health" ], reached by curl through a tcp listener bound to an
# OnPremise HTTP destination:
# 1. /api/x and /health answer 200 from the origin;
# 2. /admin, /apix and /api/../secret answer 403 from the connector with
#    ferry-error: access-denied, the origin never sees them, each is audited (denied,
#    with the path);
# 3. keep-alive: /api/x then /admin on one connection: 200, then 403 and the close;
# 4. a 4 MiB POST body (Content-Length) and a chunked upload pass through the filter;
# 5. a malformed request head gets 400 from the connector.
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
mkdir -p "$dir/www/api"
echo "api ok" >"$dir/www/api/x"
echo "healthy" >"$dir/www/health"
echo "secret" >"$dir/www/secret"
op=$(free_port)
# HTTP/1.1 with keep-alive (the module's CLI speaks 1.0 and closes after each response);
# POST answers with the sha256 of the body it read (Content-Length or chunked).
cat >"$dir/origin.py" <<'PY'
import functools, hashlib, http.server, sys

class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        h = hashlib.sha256()
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                h.update(self.rfile.read(size))
                self.rfile.readline()
        else:
            n = int(self.headers.get("Content-Length", "0"))
            while n > 0:
                b = self.rfile.read(min(n, 1 << 20))
                h.update(b)
                n -= len(b)
        body = h.hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])),
                                functools.partial(H, directory=sys.argv[2])).serve_forever()
PY
start_bg origin python3 "$dir/origin.py" "$op" "$dir/www"
origin_log=$(bg_log origin)
wait_port 127.0.0.1 "$op" 10 "$BG_PID" || fail "the HTTP origin did not start"

gw_admin=$(free_port); tport=$(free_port); lport=$(free_port); cn_admin=$(free_port)
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$gw_admin }
tunnel: { listen: 127.0.0.1:$tport, cert: gw.crt, key: gw.key }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: shop, Type: HTTP, URL: "http://shop.internal:80", ProxyType: OnPremise }
listeners:
  - { name: shop, plugin: tcp, listen: "127.0.0.1:$lport", destination: shop }
YAML
cat >"$dir/cn.yaml" <<YAML
gateway: 127.0.0.1:$tport
admin: { listen: 127.0.0.1:$cn_admin }
tenant: acme
token: acme-token
ca: ca.crt
audit_log: audit.jsonl
systems:
  - { virtual: shop.internal:80, internal: 127.0.0.1:$op, protocol: HTTP, paths: [ "/api/", "/health" ] }
YAML
start_gateway gateway "$dir/gw.yaml" "$gw_admin"
gw_pid=$GW_PID gw_log=$GW_LOG
start_connector connector "$dir/cn.yaml" "$cn_admin"
cn_pid=$CN_PID cn_log=$CN_LOG
wait_readyz "$cn_admin" 200 10 || fail "the connector did not come up"
need_metric "$gw_admin" 'ferry_tunnels{tenant="acme",location=""}' -eq 2 10
base="http://127.0.0.1:$lport"

# --- 1. allowed ------------------------------------------------------------------------
[ "$(curl -s --max-time 10 "$base/api/x")" = "api ok" ] || fail "/api/x did not reach the origin"
[ "$(curl -s --max-time 10 "$base/health")" = "healthy" ] || fail "/health did not reach the origin"

# --- 2. refused by the connector -------------------------------------------------------------
for p in /admin /apix /secret "/api/../secret" "/api/%2e%2e/secret"; do
    hdr=$(curl -s --max-time 10 --path-as-is -D - -o "$dir/body" "$base$p") || fail "curl $p failed"
    grep -q '^HTTP/1.1 403' <<<"$hdr" || fail "$p: want 403, got: $(head -1 <<<"$hdr")"
    grep -qi '^ferry-error: access-denied' <<<"$hdr" || fail "$p: no ferry-error header"
    grep -q 'Access denied to system shop.internal:80' "$dir/body" || fail "$p: body: $(cat "$dir/body")"
done
grep -q '"GET /secret\|"GET /admin\|"GET /apix' "$origin_log" && fail "the origin saw a refused request"
[ "$(audit_count "$dir/audit.jsonl" outcome=denied path=/admin)" -ge 1 ] || fail "no audit line for /admin"

# --- 3. keep-alive: allowed then refused on one connection -----------------------------------
out=$(curl -s --max-time 10 -w '%{http_code} %{num_connects}\n' -o /dev/null "$base/api/x" -o /dev/null "$base/admin")
[ "$out" = "$(printf '200 1\n403 0')" ] || fail "keep-alive: want 200 then 403 on one connection, got: $out"

# --- 4. bodies pass through ------------------------------------------------------------------
head -c $((4 * 1024 * 1024)) /dev/urandom >"$dir/big"
want=$(sha256sum "$dir/big" | cut -d' ' -f1)
got=$(curl -s --max-time 20 --data-binary @"$dir/big" "$base/api/x")
[ "$got" = "$want" ] || fail "POST with a 4 MiB body: the origin read '$got', want $want"
got=$(curl -s --max-time 20 -H 'Transfer-Encoding: chunked' --data-binary @"$dir/big" "$base/api/x")
[ "$got" = "$want" ] || fail "chunked POST: the origin read '$got', want $want"
# Requests after a body are parsed again: the next one on the same connection is refused.
out=$(curl -s --max-time 20 -o /dev/null -w '%{http_code}\n' --data-binary @"$dir/big" \
      "$base/api/x" --next -s -o /dev/null -w '%{http_code} %{num_connects}\n' "$base/admin")
[ "$(tail -1 <<<"$out")" = "403 0" ] || fail "a request after a body (same connection) was not checked: $out"

# --- 5. a malformed head -----------------------------------------------------------------------
resp=$(python3 -c 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=10)
s.sendall(b"GET /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
print(s.recv(200).split(b"\r\n")[0].decode())' "$lport")
[ "$resp" = "HTTP/1.1 400 Bad Request" ] || fail "duplicate Content-Length: want 400, got '$resp'"

stop_proc "$cn_pid" "$cn_log" connector
stop_proc "$gw_pid" "$gw_log" gateway
"$FERRY" connector --verify-audit "$dir/audit.jsonl" >/dev/null || fail "audit chain broken"
echo "tunnel_http_paths: ok"
