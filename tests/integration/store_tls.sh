#!/usr/bin/env bash
# store_tls.sh: the store over https with a client certificate and etcd's own
# authentication (user and password), against a real etcd started here.
#
#   bash tests/integration/store_tls.sh [BUILD_DIR]     (default: build)
#
# etcd serves https only, demands a client certificate (--client-cert-auth) and has
# authentication enabled with a role that may use /ferry-tls/ only; its tokens live 2 s
# (--auth-token-ttl), so ferry must fetch new ones as it goes.
# 1. A gateway with `ca`, `cert`, `key`, `user`, `password: ${env:...}` reads the
#    snapshot, watches, registers itself and serves; a change by etcdctl reaches it, and
#    so does one made after its first tokens expired; a create through its API works.
# 2. A wrong password: not ready (/readyz 503), the log says the authentication failed
#    for that user; no log ever holds a password.
# 3. No client certificate: not ready; the log names a TLS failure.
# Every ferry exits 0 on SIGTERM with no sanitizer report.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/http_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/http_lib.sh"
# shellcheck source=tests/integration/tools/etcd_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/etcd_lib.sh"

dir=$(tmpdir)
trap 'echo "FAIL: $(basename "$0"): line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR
make_ca "$dir" ca
make_cert "$dir" etcd ca
# The client certificate has no CN: etcd refuses gateway (JSON API) requests whose
# certificate has one while its authentication is on, since it could not use the CN.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=ferry test client" \
    -keyout "$dir/client.key" -out "$dir/client.csr" >"$dir/openssl-client.log" 2>&1
printf 'subjectAltName=DNS:ferry-client\nextendedKeyUsage=clientAuth\n' >"$dir/client.ext"
openssl x509 -req -in "$dir/client.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/client.ext" -out "$dir/client.crt" >>"$dir/openssl-client.log" 2>&1 ||
    { cat "$dir/openssl-client.log" >&2; fail "openssl: cannot make the client certificate"; }
start_http_origin origin --echo-all
op=$HO_PORT
PW='etcd-pw-must-not-be-logged'
export FERRY_IT_ETCD_PW=$PW

cport=$(free_port)
pport=$(free_port)
start_bg etcd etcd --name tls --data-dir "$dir/etcd" \
    --listen-client-urls "https://127.0.0.1:$cport" --advertise-client-urls "https://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "tls=http://127.0.0.1:$pport" \
    --cert-file "$dir/etcd.crt" --key-file "$dir/etcd.key" --client-cert-auth \
    --trusted-ca-file "$dir/ca.crt" --auth-token simple --auth-token-ttl 2 --log-level warn
# Root's etcdctl: the client certificate, and the root user once auth is on.
tctl() {
    etcdctl --endpoints "127.0.0.1:$cport" --cacert "$dir/ca.crt" --cert "$dir/client.crt" \
        --key "$dir/client.key" --command-timeout 5s "$@"
}
for ((i = 0; i < 200; i++)); do
    tctl endpoint health >/dev/null 2>&1 && break
    sleep 0.05
done
tctl endpoint health >/dev/null 2>&1 || fail "etcd (https) did not start"
{
    tctl user add root:root-pw
    tctl user add "ferry:$PW"
    tctl role add ferry-role
    tctl role grant-permission ferry-role --prefix=true readwrite /ferry-tls/
    tctl user grant-role ferry ferry-role
    tctl auth enable
} >"$dir/auth.log" 2>&1 || { cat "$dir/auth.log" >&2; fail "cannot set up etcd's authentication"; }
rctl() { tctl --user root:root-pw "$@"; }
rctl put /ferry-tls/destinations/acme/web \
    "{\"Name\":\"web\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\"}" >/dev/null

# write_gw NAME PASSWORD_REF WITH_CERT
write_gw() {
    local name=$1 pw=$2 cert=$3 admin http
    admin=$(free_port)
    http=$(free_port)
    eval "${name}_admin=$admin ${name}_http=$http"
    cat >"$dir/$name.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: off }
admin: { listen: 127.0.0.1:$admin }
tenants: [ { id: acme, token: acme-token } ]
store:
  etcd:
    endpoints: [ "https://127.0.0.1:$cport" ]
    prefix: /ferry-tls
    ca: ca.crt
$([ "$cert" = yes ] && printf '    cert: client.crt\n    key: client.key\n')
    user: ferry
    password: $pw
listeners:
  - { name: shared, plugin: http, listen: "127.0.0.1:$http", mode: transparent }
YAML
}
declare -A GW_PID=() GW_LOG=()
start_gw() {
    local admin
    admin=$(eval echo "\$${1}_admin")
    start_bg "gw-$1" "$FERRY" gateway -c "$dir/$1.yaml"
    GW_PID[$1]=$BG_PID
    GW_LOG[$1]=$(bg_log "gw-$1")
    wait_admin "gateway $1" "$admin" "$BG_PID"
}
readyz() {
    curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(eval echo "\$${1}_admin")/readyz"
}
route() {
    curl -s -o /dev/null --max-time 5 -w '%{http_code}' -H "Host: $2" \
        "http://127.0.0.1:$(eval echo "\$${1}_http")/"
}
wait_route() {   # wait_route NAME DEST STATUS TIMEOUT_S
    local i
    for ((i = 0; i < $4 * 20; i++)); do
        [ "$(route "$1" "$2")" = "$3" ] && return 0
        sleep 0.05
    done
    fail "gateway $1: Host $2 answers $(route "$1" "$2") after $4 s (want $3)"
}

# --- 1. the good one -----------------------------------------------------------------------
write_gw good '${env:FERRY_IT_ETCD_PW}' yes
start_gw good
wait_route good web 200 15
need_metric "$good_admin" ferry_store_up -eq 1 15
need_metric "$good_admin" ferry_replicas -eq 1 10
rctl put /ferry-tls/destinations/acme/second \
    "{\"Name\":\"second\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\"}" >/dev/null
wait_route good second 200 10
sleep 3     # the tokens ferry holds expire (2 s TTL): what follows needs new ones
rctl put /ferry-tls/destinations/acme/third \
    "{\"Name\":\"third\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\"}" >/dev/null
wait_route good third 200 10
code=$(curl -s -o "$dir/w.body" -w '%{http_code}' -X POST -H 'Authorization: Bearer acme-token' \
    -H 'Content-Type: application/json' \
    --data-binary "{\"Name\":\"via-api\",\"Type\":\"HTTP\",\"URL\":\"http://127.0.0.1:$op\"}" \
    "http://127.0.0.1:$good_admin/destination-configuration/v1/subaccountDestinations")
[ "$code" = 201 ] || fail_later "a create through the API over https + auth: $code $(cat "$dir/w.body")"
[ -n "$(rctl get /ferry-tls/destinations/acme/via-api --print-value-only)" ] ||
    fail_later "the API's create is not in etcd"
need_metric "$good_admin" ferry_store_up -eq 1 10

# --- 2. a wrong password ----------------------------------------------------------------------
export FERRY_IT_WRONG_PW=not-the-password
write_gw badpw '${env:FERRY_IT_WRONG_PW}' yes
start_gw badpw
for ((i = 0; i < 100; i++)); do
    grep -q "etcd authentication as 'ferry' failed" "${GW_LOG[badpw]}" && break
    sleep 0.05
done
grep -q "etcd authentication as 'ferry' failed" "${GW_LOG[badpw]}" ||
    fail_later "a wrong password is not named in the log: $(tail -n 3 "${GW_LOG[badpw]}")"
[ "$(readyz badpw)" = 503 ] || fail_later "a gateway that cannot authenticate is ready"

# --- 3. no client certificate -----------------------------------------------------------------
write_gw nocert '${env:FERRY_IT_ETCD_PW}' no
start_gw nocert
for ((i = 0; i < 100; i++)); do
    grep -q '"msg":"store: cannot read the snapshot.*TLS' "${GW_LOG[nocert]}" && break
    grep -q '"msg":"store: cannot read the snapshot.*connection closed' "${GW_LOG[nocert]}" && break
    sleep 0.05
done
grep -Eq '"msg":"store: cannot read the snapshot.*(TLS|connection closed)' "${GW_LOG[nocert]}" ||
    fail_later "no client certificate: the log does not say why: $(tail -n 3 "${GW_LOG[nocert]}")"
[ "$(readyz nocert)" = 503 ] || fail_later "a gateway without a client certificate is ready"

for n in good badpw nocert; do
    grep -q "$PW" "${GW_LOG[$n]}" && fail_later "gateway $n logged etcd's password"
    rc=0
    stop_pid "${GW_PID[$n]}" 15 || rc=$?
    check_sanitizers "${GW_LOG[$n]}" "gateway $n"
    [ "$rc" = 0 ] || fail_later "gateway $n exited with $rc after SIGTERM"
done
fail_deferred
echo "PASS: store_tls.sh"
