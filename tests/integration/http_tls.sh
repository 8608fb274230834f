#!/usr/bin/env bash
# http_tls.sh: the http plugin speaking TLS to https:// destinations.
#
#   bash tests/integration/http_tls.sh [BUILD_DIR]     (default: build)
#
# A private CA (made here with openssl) signs: the server certificate (SAN localhost and
# 127.0.0.1), a certificate for wrong.example only, and a client certificate; another
# CA is trusted by nothing. Origins (tools/http_origin.py over TLS): `tls` (server
# certificate), `mtls` (the same, but a client certificate from the CA is required),
# `wrong` (the wrong.example certificate). Destinations, reached through one shared
# transparent listener by X-Destination-Name (and `ca` also through a bound listener):
# 1. ca (TrustStoreLocation: the CA, relative to the config file) works, sends no client
#    certificate, keeps its upstream connections (30 requests, few new connections), and
#    moves a 20 MiB download and an 8 MiB upload intact; ca-abs (the same, absolute path)
#    works; host (https://localhost:P) works and sends SNI "localhost".
# 2. nostore (no TrustStoreLocation: the system store does not know the CA), otherca (the
#    other CA) and wrongname (trusted CA, but the certificate names wrong.example):
#    502 upstream-tls-failed with the transparent error headers.
# 3. trustall (TrustAll: true) reaches the wrong.example origin; `ferry check` warns
#    about it.
# 4. mtls: ClientCertificateAuthentication with KeyStoreLocation (PEM: certificate and
#    key) gets through, and the origin sees the subject "CN=ferry test client"; without
#    the key store the same origin refuses ferry: 502 (upstream-tls-failed or
#    bad-gateway, depending on when the TLS 1.3 alert is read).
# 5. A forward listener: curl -x to https://127.0.0.1:P (CONNECT, TLS end to end between
#    curl and the origin) works.
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

dir=$(tmpdir)
make_ca "$dir" ca
make_ca "$dir" otherca
make_cert "$dir" server ca "DNS:localhost,IP:127.0.0.1"
make_cert "$dir" wrong ca "DNS:wrong.example"
make_cert "$dir" client ca "DNS:client.example"
cat "$dir/client.crt" "$dir/client.key" >"$dir/client.pem"

start_http_origin tls --cert "$dir/server.crt" --key "$dir/server.key"
tp=$HO_PORT
start_http_origin mtls --cert "$dir/server.crt" --key "$dir/server.key" --client-ca "$dir/ca.crt"
mp=$HO_PORT
start_http_origin wrong --cert "$dir/wrong.crt" --key "$dir/wrong.key"
wp=$HO_PORT

admin=$(free_port); ls=$(free_port); lb=$(free_port); lf=$(free_port)
cat >"$dir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access.log }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: acme-token } ]
destinations:
  - { Name: ca, Type: HTTP, URL: "https://127.0.0.1:$tp", ProxyType: Internet, TrustStoreLocation: ca.crt }
  - { Name: ca-abs, Type: HTTP, URL: "https://127.0.0.1:$tp", ProxyType: Internet, TrustStoreLocation: "$dir/ca.crt" }
  - { Name: host, Type: HTTP, URL: "https://localhost:$tp", ProxyType: Internet, TrustStoreLocation: ca.crt }
  - { Name: nostore, Type: HTTP, URL: "https://127.0.0.1:$tp", ProxyType: Internet }
  - { Name: otherca, Type: HTTP, URL: "https://127.0.0.1:$tp", ProxyType: Internet, TrustStoreLocation: otherca.crt }
  - { Name: wrongname, Type: HTTP, URL: "https://127.0.0.1:$wp", ProxyType: Internet, TrustStoreLocation: ca.crt }
  - { Name: trustall, Type: HTTP, URL: "https://127.0.0.1:$wp", ProxyType: Internet, TrustAll: "true" }
  - Name: mtls
    Type: HTTP
    URL: https://127.0.0.1:$mp
    ProxyType: Internet
    Authentication: ClientCertificateAuthentication
    KeyStoreLocation: client.pem
    TrustStoreLocation: ca.crt
  - { Name: mtls-nocert, Type: HTTP, URL: "https://127.0.0.1:$mp", ProxyType: Internet, TrustStoreLocation: ca.crt }
listeners:
  - { name: shared, plugin: http, listen: "127.0.0.1:$ls", mode: transparent }
  - { name: bound, plugin: http, listen: "127.0.0.1:$lb", destination: ca }
  - { name: fwd, plugin: http, listen: "127.0.0.1:$lf", mode: forward, auth: none, tenant: acme, egress: [ "127.0.0.1:$tp" ] }
YAML
out=$("$FERRY" check -c "$dir/ferry.yaml" 2>&1) || fail "ferry check rejects the config: $out"
grep -q 'TrustAll' <<<"$out" || fail_later "ferry check: no warning about TrustAll: true: $out"
start_ferry "$dir/ferry.yaml" "$admin"
shared=http://127.0.0.1:$ls

# --- 1. verified TLS -------------------------------------------------------------------------
hreq "ca (TrustStoreLocation, relative)" -H 'X-Destination-Name: ca' "$shared/echo"
want_ok && want_eq "client certificate sent to a plain TLS origin" "$(ej client_cert)" ""
hreq "ca-abs (TrustStoreLocation, absolute)" -H 'X-Destination-Name: ca-abs' "$shared/echo"
want_ok
hreq "host (https://localhost)" -H 'X-Destination-Name: host' "$shared/echo"
want_ok && want_eq "SNI sent for https://localhost" "$(ej sni)" localhost
before=$(curl -s --max-time 5 --cacert "$dir/ca.crt" "https://127.0.0.1:$tp/count")
hcl "30 requests on one connection to an https destination" keepalive --port "$lb" --n 30 \
    --path /echo --timeout 20
after=$(curl -s --max-time 5 --cacert "$dir/ca.crt" "https://127.0.0.1:$tp/count")
new=$((after - before - 1))
[ "$new" -le 3 ] || fail_later "TLS upstream pool: 30 requests opened $new new origin connections (want <= 3)"
n=$((20 << 20))
got=$(curl -sS --max-time 30 "http://127.0.0.1:$lb/bytes/$n" | sha256sum | cut -d' ' -f1)
want_eq "20 MiB download over TLS" "$got" "$(bytes_sha $n)"
head -c $((8 << 20)) /dev/urandom >"$dir/mid"
want=$(sha256sum "$dir/mid" | cut -d' ' -f1)
got=$(curl -sS --max-time 30 --data-binary @"$dir/mid" "http://127.0.0.1:$lb/upload" 2>&1) || true
want_eq "8 MiB upload over TLS" "$got" "$((8 << 20)) $want"

# --- 2. verification failures ----------------------------------------------------------------
for d in nostore otherca wrongname; do
    hreq "$d" -H "X-Destination-Name: $d" "$shared/echo"
    want_error 502 upstream-tls-failed transparent
done

# --- 3. TrustAll -------------------------------------------------------------------------------
hreq "trustall to the wrong.example origin" -H 'X-Destination-Name: trustall' "$shared/echo"
want_ok

# --- 4. client certificates -------------------------------------------------------------------
hreq "mtls with KeyStoreLocation" -H 'X-Destination-Name: mtls' "$shared/echo"
want_ok && want_eq "client certificate subject at the origin" "$(ej client_cert)" "CN=ferry test client"
hreq "mtls origin without a key store" -H 'X-Destination-Name: mtls-nocert' "$shared/echo"
if want_status 502; then
    v=$(hdr ferry-error)
    [[ "$v" == upstream-tls-failed || "$v" == bad-gateway ]] ||
        fail_later "$HR_WHAT: want ferry-error upstream-tls-failed or bad-gateway, got '$v'"
fi

# --- 5. https through a forward listener (CONNECT) --------------------------------------------
hreq "forward: https via CONNECT" -x "http://127.0.0.1:$lf" --cacert "$dir/ca.crt" "https://127.0.0.1:$tp/echo"
want_ok

good_request "a request after everything" -H 'X-Destination-Name: ca' "$shared/echo"
stop_ferry
fail_deferred
echo "http_tls: ok"
