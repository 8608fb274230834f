#!/usr/bin/env bash
# run.sh: README.md's steps, all at once, on loopback (after a build: build/core/ferry).
#
#   bash examples/principal-propagation/run.sh
#
# Makes tls/ (the tunnel's CA and the gateway's certificate, nginx's certificate, the PP
# CA, an IdP key with its JWKS) and run/, starts nginx, the gateway and the connector,
# calls the destination as alice and as bob with the IdP's tokens and once without a
# token, prints the audit lines and verifies their chain, then stops everything.
# Needs ports 3310, 8443, 9901, 9902 and 44300 free. EXAMPLE_KEEP=1 keeps it running.
set -euo pipefail

cd "$(dirname "$0")"
FERRY=${FERRY:-../../build/core/ferry}
MINT="python3 ../../tests/integration/tools/jwt_mint.py"
[ -x "$FERRY" ] || { echo "build ferry first: $FERRY is missing" >&2; exit 2; }

rm -rf tls run
mkdir -p tls run
pids=()
stop() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop EXIT

bash ../demo-certs.sh tls >/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout tls/nginx.key -out tls/nginx.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >tls/nginx.ext
openssl x509 -req -in tls/nginx.csr -CA tls/ca.crt -CAkey tls/ca.key -CAcreateserial \
    -days 365 -extfile tls/nginx.ext -out tls/nginx.crt 2>/dev/null
openssl req -x509 -newkey rsa:3072 -nodes -days 730 -subj "/CN=Acme PP CA/O=Acme" \
    -keyout tls/pp-ca.key -out tls/pp-ca.crt \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
chmod 600 tls/pp-ca.key
$MINT keygen es256 tls/idp.pem
$MINT jwks "k1=tls/idp.pem" >tls/jwks.json
token() {   # token USER: a 10-minute token of the IdP for USER
    $MINT token tls/idp.pem k1 "{\"iss\":\"https://idp.acme.example\",\"aud\":\"ferry\",
        \"sub\":\"$1\",\"user_name\":\"$1\",\"exp\":\"@+600\"}"
}

export ACME_TOKEN
ACME_TOKEN=$(openssl rand -hex 24)
"$FERRY" check -c gateway.yaml >/dev/null
nginx -p "$PWD/run" -c "$PWD/nginx.conf" -e "$PWD/run/error.log" & pids+=($!)
"$FERRY" gateway -c gateway.yaml >run/access.log 2>run/gateway.log & pids+=($!)
gw_pid=$!
for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:9901/readyz >/dev/null && break
    sleep 0.1
done
"$FERRY" connector -c connector.yaml 2>run/connector.log & pids+=($!)
for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:9902/readyz >/dev/null && break
    sleep 0.1
done
curl -sf http://127.0.0.1:9902/readyz >/dev/null ||
    { echo "the connector did not come up:" >&2; tail run/gateway.log run/connector.log >&2; exit 1; }

echo "== as alice:"
curl -sS -H "Authorization: Bearer $(token alice)" http://127.0.0.1:3310/
echo "== as bob:"
curl -sS -H "Authorization: Bearer $(token bob)" http://127.0.0.1:3310/
echo "== without a token:"
curl -sS -i http://127.0.0.1:3310/ | grep -i -E '^HTTP|^ferry-error'
if [ -n "${EXAMPLE_KEEP:-}" ]; then
    echo "running; Ctrl-C stops everything"
    wait
fi
# A stream's audit line is written when it ends: stop the gateway (it drains), so the
# connector's pooled streams end too.
kill "$gw_pid"
wait "$gw_pid" 2>/dev/null || true
echo "== the audit log (each stream names the user's subject):"
for _ in $(seq 1 50); do
    [ "$(grep -c '"user"' run/audit.jsonl 2>/dev/null)" -ge 2 ] && break
    sleep 0.1
done
grep '"user"' run/audit.jsonl || true
"$FERRY" connector --verify-audit run/audit.jsonl
