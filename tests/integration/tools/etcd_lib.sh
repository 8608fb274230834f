# shellcheck shell=bash
# tests/integration/tools/etcd_lib.sh: real etcd members (Debian's etcd-server) for the
# store tests. Source it after lib.sh.
#
#   start_etcd N              # an N-member cluster on loopback, each with its own data dir
#                             # under this run's temp root; waits until every member is
#                             # healthy. Sets ETCD_EPS (JSON list for ferry.yaml),
#                             # ETCD_CTL_EPS (host:port,... for etcdctl), ETCD_PID[i],
#                             # ETCD_CLIENT[i], ETCD_NAME[i]
#   etcd_stop I / etcd_start I   # stop member I (by PID) / start it again, same data dir
#   ectl ARGS...              # etcdctl v3 against every member
#   etcd_leader               # the index of the current leader
#
# Every member binds 127.0.0.1 only; cleanup stops them by PID like every start_bg.

# shellcheck disable=SC2034  # ETCD_*: for the sourcing script
command -v etcd >/dev/null || fail "etcd is missing: apt-get install etcd-server"
command -v etcdctl >/dev/null || fail "etcdctl is missing: apt-get install etcd-client"
export ETCDCTL_API=3

ETCD_N=0
declare -a ETCD_PID=() ETCD_CLIENT=() ETCD_PEER=() ETCD_NAME=() ETCD_DIR=()
ETCD_CLUSTER=""

start_etcd() {
    local n=$1 i
    ETCD_N=$n
    ETCD_CLUSTER=""
    for ((i = 0; i < n; i++)); do
        ETCD_NAME[i]=m$i
        ETCD_CLIENT[i]=$(free_port)
        ETCD_PEER[i]=$(free_port)
        ETCD_DIR[i]=$(tmpdir)
        ETCD_CLUSTER+="${ETCD_CLUSTER:+,}m$i=http://127.0.0.1:${ETCD_PEER[i]}"
    done
    local sep=""
    ETCD_EPS="["
    ETCD_CTL_EPS=""
    for ((i = 0; i < n; i++)); do
        ETCD_EPS+="$sep\"http://127.0.0.1:${ETCD_CLIENT[i]}\""
        sep=", "
        ETCD_CTL_EPS+="${ETCD_CTL_EPS:+,}127.0.0.1:${ETCD_CLIENT[i]}"
    done
    ETCD_EPS+="]"
    for ((i = 0; i < n; i++)); do
        etcd_start "$i" new
    done
    etcd_wait_healthy
}

# etcd_start I [new]: run member I (a new cluster the first time, its data dir after).
etcd_start() {
    local i=$1 state=existing
    [ "${2:-}" = new ] && state=new
    start_bg "etcd$i" etcd --name "${ETCD_NAME[i]}" --data-dir "${ETCD_DIR[i]}/data" \
        --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT[i]}" \
        --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT[i]}" \
        --listen-peer-urls "http://127.0.0.1:${ETCD_PEER[i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER[i]}" \
        --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state "$state" \
        --initial-cluster-token "ferry-it-$$" --heartbeat-interval 50 --election-timeout 500 \
        --log-level warn
    ETCD_PID[i]=$BG_PID
}

etcd_stop() {
    stop_pid "${ETCD_PID[$1]}" 10 >/dev/null 2>&1 || true
}

ectl() {
    etcdctl --endpoints "$ETCD_CTL_EPS" --command-timeout 5s "$@"
}

# etcd_wait_healthy [TIMEOUT_S]: every running member answers `endpoint health`.
etcd_wait_healthy() {
    local timeout=${1:-30} end=$((SECONDS + ${1:-30}))
    while [ "$SECONDS" -lt "$end" ]; do
        if ectl endpoint health >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    ectl endpoint health >&2 || true
    fail "etcd did not become healthy within ${timeout}s"
}

# (`-w fields`: member ids are 64-bit, more than jq's doubles hold exactly.)
etcd_leader() {
    local i st me leader
    for ((i = 0; i < ETCD_N; i++)); do
        st=$(etcdctl --endpoints "127.0.0.1:${ETCD_CLIENT[i]}" --command-timeout 2s \
             endpoint status -w fields 2>/dev/null) || continue
        me=$(awk -F' : ' '$1 == "\"MemberID\"" { print $2; exit }' <<<"$st")
        leader=$(awk -F' : ' '$1 == "\"Leader\"" { print $2; exit }' <<<"$st")
        if [ -n "$me" ] && [ "$me" = "$leader" ]; then
            echo "$i"
            return 0
        fi
    done
    return 1
}
