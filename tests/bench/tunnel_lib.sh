# shellcheck shell=bash
# tests/bench/tunnel_lib.sh: a bench CA, a gateway certificate and start_ferry, shared by
# tunnel.sh (the side-by-side) and tunnel_profile.sh (per-byte cost under a profiler).
# Source it after common.sh; needs $work, $ORIGIN (the origin's port) and $FERRY.
# shellcheck disable=SC2154   # work, pids: common.sh

# Certificates: a CA and a gateway certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$work/ca.key" -out "$work/ca.crt" -subj /CN=bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/gw.key" -out "$work/gw.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$work/san.cnf"
openssl x509 -req -in "$work/gw.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 2 -out "$work/gw.crt" -extfile "$work/san.cnf" 2>/dev/null

# tunnel_cipher NAME: the TLS suite start_ferry NAME's tunnels negotiated (the
# connector's "tunnel up" line; its log is at info, which says nothing per stream).
tunnel_cipher() {
    grep -o '"cipher":"[^"]*"' "$work/$1-cn.log" | head -n 1 | cut -d'"' -f4
}

# start_ferry NAME WORKERS [GW_WRAP [CN_WRAP]]: a gateway with a tunnel and a connector
# serving the origin; sets FT_PORT (the gateway's tcp listener), GW_PID, CN_PID. A WRAP
# is a command prefix (a profiler) the process runs under, word-split.
start_ferry() {
    local name=$1 workers=$2 gw_wrap=${3:-} cn_wrap=${4:-}
    local tun admin cadmin
    tun=$(port); admin=$(port); cadmin=$(port)
    FT_PORT=$(port)
    cat >"$work/$name-gw.yaml" <<YAML
workers: $workers
plugins_dir: $BUILD/plugins
log: { level: warn, access: off }
admin: { listen: 127.0.0.1:$admin }
tunnel: { listen: 127.0.0.1:$tun, cert: gw.crt, key: gw.key }
tenants: [ { id: bench, token: bench-token } ]
destinations:
  - { Name: onprem, Type: TCP, Address: "tcp://bench.internal:9", ProxyType: OnPremise }
listeners:
  - { name: onprem, plugin: tcp, listen: "127.0.0.1:$FT_PORT", destination: onprem, max_connections: 100000 }
YAML
    cat >"$work/$name-cn.yaml" <<YAML
workers: $workers
gateway: 127.0.0.1:$tun
admin: { listen: 127.0.0.1:$cadmin }
log: { level: info }
tenant: bench
token: bench-token
ca: ca.crt
systems:
  - { virtual: bench.internal:9, internal: 127.0.0.1:$ORIGIN, protocol: TCP }
YAML
    # shellcheck disable=SC2086
    $gw_wrap "$FERRY" gateway -c "$work/$name-gw.yaml" 2>"$work/$name-gw.log" & GW_PID=$!
    pids+=("$GW_PID")
    wait_port "$tun" 60
    # shellcheck disable=SC2086
    $cn_wrap "$FERRY" connector -c "$work/$name-cn.yaml" 2>"$work/$name-cn.log" & CN_PID=$!
    pids+=("$CN_PID")
    for _ in $(seq 1 1200); do
        curl -sf "http://127.0.0.1:$cadmin/readyz" >/dev/null && return 0
        sleep 0.05
    done
    echo "ferry connector never came up" >&2
    cat "$work/$name-cn.log" >&2
    return 1
}
