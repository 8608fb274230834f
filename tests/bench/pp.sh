#!/usr/bin/env bash
# tests/bench/pp.sh: what principal propagation costs, in one run: the same OnPremise
# HTTP destination through ferry's tunnel with BasicAuthentication (ferry adds the
# service user) and with PrincipalPropagation (each request carries a user's JWT; the
# gateway validates it, the connector issues that user's certificate and sends it as
# SSL_CLIENT_CERT). Run by tests/bench/run.sh (`pp`), or alone:
#
#   BUILD=build bash tests/bench/pp.sh        (env: SECS=3 ROUNDS=3 CONNS=50 USERS=50)
#
# Load: `ferry-loadgen http`, CONNS keep-alive connections, every request with the next
# of USERS users' tokens (round-robin over all requests: each connection changes user on
# every request), after one warm-up run so that caches are warm (a token's signature is
# verified once per gateway worker, a certificate issued once per connector worker and
# user). Prints req/s, p99 and gateway + connector CPU per request for both, their ratio
# (target >= 0.85), the verifications and issues counted by /metrics against tokens and
# users, and the cost of one RS256 / ES256 verification and one certificate issue
# (ferry-pp-cost, uncached).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONNS=${CONNS:-50}
USERS=${USERS:-50}
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"
MINT="python3 $ROOT/tests/integration/tools/jwt_mint.py"
COST=$BUILD/tests/bench/ferry-pp-cost

ORIGIN=$(port); BASIC_P=$(port); PP_P=$(port); ADMIN_P=$(port); CADMIN_P=$(port); TUN_P=$(port)
mkdir -p "$work/www"
head -c 1024 /dev/urandom >"$work/www/1k"
nginx_conf origin 1 "    server {
        listen 127.0.0.1:$ORIGIN;
        root $work/www;
        default_type application/octet-stream;
        underscores_in_headers on;      # SSL_CLIENT_CERT
        location = /cert { return 200 \"\$http_ssl_client_cert\"; }
    }"
nginx -p "$work/origin" -e "$work/origin/error.log" -c "$work/origin/nginx.conf" & pids+=($!)
wait_port "$ORIGIN"

# The tunnel's CA and certificate; the principal propagation CA; the users' tokens.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$work/ca.key" -out "$work/ca.crt" -subj /CN=bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/gw.key" -out "$work/gw.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$work/san.cnf"
openssl x509 -req -in "$work/gw.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 2 -out "$work/gw.crt" -extfile "$work/san.cnf" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$work/pp-ca.key" -out "$work/pp-ca.crt" -subj "/CN=ferry bench PP CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    2>/dev/null
ISS=https://idp.bench.example
$MINT keygen rs256 "$work/rs.pem"
$MINT keygen es256 "$work/es.pem"
$MINT jwks rs1="$work/rs.pem" es1="$work/es.pem" >"$work/jwks.json"
: >"$work/tokens"
for i in $(seq 1 "$USERS"); do
    printf 'Authorization: Bearer %s\n' "$($MINT token "$work/rs.pem" rs1 \
        "{\"iss\":\"$ISS\",\"aud\":\"ferry\",\"user_name\":\"user$i\",\"exp\":\"@+3600\"}")" \
        >>"$work/tokens"
done
$MINT token "$work/rs.pem" rs1 "{\"iss\":\"$ISS\",\"aud\":\"ferry\",\"sub\":\"c\",\"exp\":\"@+3600\"}" \
    >"$work/rs.tok"
$MINT token "$work/es.pem" es1 "{\"iss\":\"$ISS\",\"aud\":\"ferry\",\"sub\":\"c\",\"exp\":\"@+3600\"}" \
    >"$work/es.tok"

cat >"$work/gw.yaml" <<YAML
workers: 2
plugins_dir: $BUILD/plugins
log: { level: warn, access: off }
admin: { listen: 127.0.0.1:$ADMIN_P }
tunnel: { listen: 127.0.0.1:$TUN_P, cert: gw.crt, key: gw.key }
tenants:
  - id: bench
    token: bench-token
    jwt: { issuer: "$ISS", audience: ferry, jwks: jwks.json }
destinations:
  - { Name: basic, Type: HTTP, URL: "http://erp.internal:80", ProxyType: OnPremise,
      Authentication: BasicAuthentication, User: svc, Password: svc-secret }
  - { Name: pp, Type: HTTP, URL: "http://erp-pp.internal:80", ProxyType: OnPremise,
      Authentication: PrincipalPropagation }
listeners:
  - { name: basic, plugin: http, listen: "127.0.0.1:$BASIC_P", mode: transparent,
      destination: basic, max_connections: 100000 }
  - { name: pp, plugin: http, listen: "127.0.0.1:$PP_P", mode: transparent,
      destination: pp, max_connections: 100000 }
YAML
cat >"$work/cn.yaml" <<YAML
workers: 2
gateway: 127.0.0.1:$TUN_P
admin: { listen: 127.0.0.1:$CADMIN_P }
log: { level: warn }
tenant: bench
token: bench-token
ca: ca.crt
principal_propagation:
  ca_cert: pp-ca.crt
  ca_key: pp-ca.key
  subject: "CN=\${name},O=Bench"
  validity_minutes: 60
systems:
  - { virtual: "erp.internal:80", internal: "127.0.0.1:$ORIGIN", protocol: HTTP }
  - { virtual: "erp-pp.internal:80", internal: "127.0.0.1:$ORIGIN", protocol: HTTP,
      principal_propagation: header }
YAML
"$FERRY" gateway -c "$work/gw.yaml" 2>"$work/gw.log" & pids+=($!)
gw_pid=$!
wait_port "$TUN_P" 30
"$FERRY" connector -c "$work/cn.yaml" 2>"$work/cn.log" & pids+=($!)
cn_pid=$!
for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$CADMIN_P/readyz" >/dev/null && break
    sleep 0.05
done
wait_port "$BASIC_P"; wait_port "$PP_P"

# Both paths must work before they are measured: the file through basic; through pp the
# file, and at /cert a certificate for user1 (the origin echoes SSL_CLIENT_CERT).
tok1=$(head -n 1 "$work/tokens")
for _ in $(seq 1 100); do
    curl -sf -o "$work/got" "http://127.0.0.1:$BASIC_P/1k" && break
    sleep 0.1
done
cmp -s "$work/got" "$work/www/1k" || { echo "pp: basic does not serve the file" >&2; cat "$work/gw.log" >&2; exit 1; }
curl -sf -o "$work/got" -H "$tok1" "http://127.0.0.1:$PP_P/1k" &&
    cmp -s "$work/got" "$work/www/1k" || { echo "pp: pp does not serve the file" >&2; tail "$work/gw.log" "$work/cn.log" >&2; exit 1; }
curl -sf -H "$tok1" "http://127.0.0.1:$PP_P/cert" | base64 -d >"$work/user1.der" 2>/dev/null || true
subj=$(openssl x509 -inform DER -in "$work/user1.der" -noout -subject -nameopt RFC2253 2>/dev/null || true)
case $subj in
    *CN=user1*) ;;
    *) echo "pp: the origin got no certificate for user1 (subject '$subj')" >&2; exit 1 ;;
esac

SUBJECTS=(basic pp)
declare -A PORT=([basic]=$BASIC_P [pp]=$PP_P)
declare -A HDRS=([basic]="" [pp]="$work/tokens")
# Warm-up: every user's token verified and certificate issued on every worker.
for s in "${SUBJECTS[@]}"; do
    LOADGEN_HEADERS=${HDRS[$s]} "$LOADGEN" http 127.0.0.1 "${PORT[$s]}" 2 "$CONNS" /1k \
        >/dev/null 2>>"$work/loadgen.err" || true
done

declare -A RPSS P99S CPUS ERRS RPS P99 CPU
echo "bench: $ROUNDS rounds x $SECS s per run, $CONNS connections, $USERS users," \
     "$(nproc) cores, $(uname -r)" >&2
for r in $(seq 1 "$ROUNDS"); do
    for s in "${SUBJECTS[@]}"; do
        g0=$(cpu_ticks "$gw_pid"); c0=$(cpu_ticks "$cn_pid")
        if ! read -r q p50 p99 errs reconn < <(LOADGEN_HEADERS=${HDRS[$s]} "$LOADGEN" http \
                127.0.0.1 "${PORT[$s]}" "$SECS" "$CONNS" /1k 2>>"$work/loadgen.err") ||
           [ -z "${p99:-}" ]; then
            q=0 p50=0 p99=0 errs=1 reconn=0
        fi
        g1=$(cpu_ticks "$gw_pid"); c1=$(cpu_ticks "$cn_pid")
        us=$(awk -v d=$(( g1 - g0 + c1 - c0 )) -v hz="$TICK_HZ" -v q="$q" -v s="$SECS" \
             'BEGIN { if (q > 0) printf "%.1f", d * 1e6 / hz / (q * s); else print 0 }')
        RPSS[$s]="${RPSS[$s]:-} $q"
        P99S[$s]="${P99S[$s]:-} $p99"
        CPUS[$s]="${CPUS[$s]:-} $us"
        ERRS[$s]=$(( ${ERRS[$s]:-0} + errs ))
        echo "  round $r $s: $q req/s, p50 $p50 ms, p99 $p99 ms, $us us CPU/req" \
             "(gateway + connector; $errs errors, $reconn reconnects)" >&2
        sleep 0.5
    done
done
for s in "${SUBJECTS[@]}"; do
    # shellcheck disable=SC2086
    RPS[$s]=$(median ${RPSS[$s]}); P99[$s]=$(median_g ${P99S[$s]}); CPU[$s]=$(median_g ${CPUS[$s]})
done

metric() {   # metric URL NAME: the sum of NAME's samples (any labels)
    curl -sf "$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }'
}
verif=$(metric "http://127.0.0.1:$ADMIN_P" ferry_jwt_verifications_total)
hits=$(metric "http://127.0.0.1:$ADMIN_P" ferry_jwt_cache_hits_total)
issued=$(metric "http://127.0.0.1:$CADMIN_P" ferry_pp_certificates_issued_total)
reused=$(metric "http://127.0.0.1:$CADMIN_P" ferry_pp_certificates_reused_total)
read -r rs_us es_us issue_us < <("$COST" "$work/jwks.json" "$work/rs.tok" "$work/es.tok" "$ISS" \
                                  ferry "$work/pp-ca.crt" "$work/pp-ca.key" 200)

printf '\nprincipal propagation, 1 KiB responses through the tunnel (medians of %s rounds):\n' "$ROUNDS"
printf '  %-32s %10s %9s %14s %7s\n' subject req/s "p99 ms" "CPU us/req" errors
for s in "${SUBJECTS[@]}"; do
    printf '  %-32s %10s %9s %14s %7s\n' "$s$([ "$s" = pp ] && echo " ($USERS users)")" \
        "${RPS[$s]}" "${P99[$s]}" "${CPU[$s]}" "${ERRS[$s]}"
done
printf '  pp / basic req/s: %s (target >= 0.85)\n' "$(ratio "${RPS[pp]}" "${RPS[basic]}")"
printf '  gateway: %s signature verifications, %s cache hits for %s tokens on 2 workers:' \
    "$verif" "$hits" "$USERS"
printf ' %s per token and worker\n' "$(python3 -c "print(f'{$verif/($USERS*2):.2f}')")"
printf '  connector: %s certificates issued, %s reused for %s users on 2 workers:' \
    "$issued" "$reused" "$USERS"
printf ' %s per user and worker (validity 60 min)\n' "$(python3 -c "print(f'{$issued/($USERS*2):.2f}')")"
printf '  one RS256 verification %s us, one ES256 verification %s us, one certificate issue' \
    "$rs_us" "$es_us"
printf ' %s us (EC P-256 CA; ferry-pp-cost, uncached)\n' "$issue_us"
