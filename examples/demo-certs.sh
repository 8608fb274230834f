#!/usr/bin/env bash
# examples/demo-certs.sh DIR: the quick start's demo certificates, made once in DIR
# (kept while they verify): a CA (ca.crt, ca.key), a gateway certificate for 127.0.0.1
# and localhost (gateway.crt, gateway.key) and a connector client certificate
# (connector.crt, connector.key). Keys are EC P-256, readable by their owner only.
# Used by examples/quickstart.sh and tests/integration/quickstart.sh.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: demo-certs.sh DIR" >&2; exit 2; }
tls=$1
say() { printf '\n==> %s\n' "$*"; }

mkdir -p "$tls"
chmod 700 "$tls"

# new_key FILE: an EC P-256 private key, readable by its owner only.
new_key() {
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1")
}

# new_leaf NAME SUBJECT EXTENSIONS: NAME.key + NAME.crt signed by the demo CA.
new_leaf() {
    local name=$1 subject=$2 ext=$3
    new_key "$tls/$name.key"
    openssl req -new -key "$tls/$name.key" -subj "$subject" -out "$tls/$name.csr"
    openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 825 -sha256 -out "$tls/$name.crt" \
        -extfile <(printf '%s\n' "$ext" \
                   "subjectKeyIdentifier = hash" \
                   "authorityKeyIdentifier = keyid,issuer") 2>/dev/null
    rm -f "$tls/$name.csr"
}

if [ ! -f "$tls/ca.crt" ] || [ ! -f "$tls/ca.key" ]; then
    say "creating a demo CA in $tls/ (first run)"
    new_key "$tls/ca.key"
    openssl req -new -x509 -key "$tls/ca.key" -days 3650 -sha256 -out "$tls/ca.crt" \
        -config <(printf '%s\n' "[req]" "distinguished_name = dn" "x509_extensions = v3" \
                  "prompt = no" "[dn]" "CN = ferry demo CA" "[v3]" \
                  "basicConstraints = critical, CA:TRUE" \
                  "keyUsage = critical, keyCertSign, cRLSign" \
                  "subjectKeyIdentifier = hash")
    rm -f "$tls/gateway.crt" "$tls/connector.crt"      # a new CA invalidates the leaves
fi
if [ ! -f "$tls/gateway.crt" ] || [ ! -f "$tls/gateway.key" ]; then
    say "creating the gateway certificate (127.0.0.1, localhost)"
    new_leaf gateway "/CN=ferry demo gateway" "$(printf '%s\n' \
        "basicConstraints = critical, CA:FALSE" \
        "keyUsage = critical, digitalSignature" \
        "extendedKeyUsage = serverAuth" \
        "subjectAltName = IP:127.0.0.1, DNS:localhost")"
fi
if [ ! -f "$tls/connector.crt" ] || [ ! -f "$tls/connector.key" ]; then
    say "creating the connector client certificate"
    new_leaf connector "/CN=ferry demo connector/O=demo" "$(printf '%s\n' \
        "basicConstraints = critical, CA:FALSE" \
        "keyUsage = critical, digitalSignature" \
        "extendedKeyUsage = clientAuth")"
fi
openssl verify -CAfile "$tls/ca.crt" "$tls/gateway.crt" "$tls/connector.crt" >/dev/null \
    || { echo "quickstart: $tls/ does not verify; remove it and run again" >&2; exit 1; }
