#!/usr/bin/env bash
# run.sh: the principal propagation example, whole, on loopback (README.md).
#
#   bash examples/principal-propagation/run.sh        (after a build: build/core/ferry)
#
# Makes every certificate and key in work/ (a CA for the tunnel and the backend, the
# principal propagation CA, an identity provider's key and its JWKS), starts nginx (the
# backend, client certificates required), the gateway and the connector, then calls the
# destination as alice and as bob with tokens of the identity provider, and once without
# a token. The backend answers with the user it read from the certificate. Everything
# stops on exit; EXAMPLE_KEEP=1 leaves it running until Ctrl-C.
set -euo pipefail

cd "$(dirname "$0")"
FERRY=${FERRY:-../../build/core/ferry}
MINT="python3 ../../tests/integration/tools/jwt_mint.py"
[ -x "$FERRY" ] || { echo "build ferry first: $FERRY is missing" >&2; exit 2; }

rm -rf work
mkdir -p work/nginx
pids=()
stop() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop EXIT

# 1. A CA for the tunnel and the backend's server certificate; the gateway's and the
#    backend's certificates for 127.0.0.1.
cert() {   # cert NAME: NAME.key + NAME.crt for 127.0.0.1, signed by work/ca
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "work/$1.key" -out "work/$1.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >work/san.cnf
    openssl x509 -req -in "work/$1.csr" -CA work/ca.crt -CAkey work/ca.key -CAcreateserial \
        -days 2 -extfile work/san.cnf -out "work/$1.crt" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=example CA" -keyout work/ca.key -out work/ca.crt 2>/dev/null
cert gateway
cert backend

# 2. The principal propagation CA: the connector signs user certificates with it, the
#    backend trusts it for client certificates (and nothing else).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=Acme principal propagation CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout work/pp-ca.key -out work/pp-ca.crt 2>/dev/null

# 3. The identity provider: its signing key and the JWKS the gateway checks tokens with.
#    A real deployment points `jwks:` or `jwks_url:` at the provider's published keys.
$MINT keygen rs256 work/idp.key
$MINT jwks idp-2026=work/idp.key >work/idp-jwks.json
token() {   # token USER: a 10-minute token of the identity provider for USER
    $MINT token work/idp.key idp-2026 "{\"iss\":\"https://idp.acme.example\",\"aud\":\"ferry\",
        \"user_name\":\"$1\",\"email\":\"$1@acme.example\",\"exp\":\"@+600\"}"
}

export ACME_TOKEN
ACME_TOKEN=$(openssl rand -hex 16)
nginx -p "$PWD/work/nginx/" -e "$PWD/work/nginx/error.log" -c "$PWD/nginx.conf" \
    2>work/nginx.log & pids+=($!)
"$FERRY" gateway -c gateway.yaml >work/access.log 2>work/gateway.log & pids+=($!)
for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:19901/readyz >/dev/null && break
    sleep 0.1
done
"$FERRY" connector -c connector.yaml 2>work/connector.log & pids+=($!)
for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:19902/readyz >/dev/null && break
    sleep 0.1
done
curl -sf http://127.0.0.1:19902/readyz >/dev/null ||
    { echo "the connector did not come up:" >&2; tail work/gateway.log work/connector.log >&2; exit 1; }

echo "== as alice:"
curl -sS -H "Authorization: Bearer $(token alice)" http://127.0.0.1:13300/
echo "== as bob:"
curl -sS -H "Authorization: Bearer $(token bob)" http://127.0.0.1:13300/
echo "== without a token:"
curl -sS -i http://127.0.0.1:13300/ | grep -i -E '^HTTP|^ferry-error'
echo "== the connector's audit log (one line per stream, with the user's subject):"
cat work/audit.jsonl
if [ -n "${EXAMPLE_KEEP:-}" ]; then
    echo "running; Ctrl-C stops everything"
    wait
fi
