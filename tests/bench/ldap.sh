#!/usr/bin/env bash
# tests/bench/ldap.sh: ferry's ldap plugin against HAProxy `mode tcp` and direct, in one
# run. Run by tests/bench/run.sh (mode ldap), or alone:
#
#   BUILD=build bash tests/bench/ldap.sh      (env: LOOKUPS=1000 LDAP_ROUNDS=15)
#
# The server is our own OpenLDAP slapd (tests/integration/tools/ldap_lib.sh: mdb, no TLS,
# no logging) holding the test directory plus LOOKUPS users. One measurement is one
# `ldapsearch -x -f FILTERS '(uid=%s)'` run: LOOKUPS searches (each for one user, by an
# indexed uid), one after the other on ONE connection, the wall time of the whole run
# (process start and bind included, the same for every subject). Subjects:
#   direct     slapd itself; the client binds as the service account (-D/-w)
#   ferry      ferry's ldap listener with ldap.user: the client is anonymous (-x),
#              ferry binds upstream and answers the client's bind itself
#   ferry-pass ferry's ldap listener without ldap.user: the client binds itself
#   haproxy    HAProxy `mode tcp` (nbthread 2): the client binds itself, nothing injects
#   ferry-pin / haproxy-pin  the same as ferry and haproxy with each worker/thread on
#              its own CPU (worker_cpu_affinity: auto, cpu-map): fewer migrations
# Rounds are interleaved (every subject once per round) and the medians reported, with
# ratios to HAProxy and to direct, and the CPU time each subject spent per lookup
# (user+system over all its rounds, so the 10 ms tick does not round it away; direct:
# slapd's). A run takes well under a second, hence the many rounds. The target (issue 7): ferry at least as fast as
# HAProxy `mode tcp`. A subject that fails (ferry without its ldap plugin) is "n/a".
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LOOKUPS=${LOOKUPS:-1000}
LDAP_ROUNDS=${LDAP_ROUNDS:-15}
# shellcheck source=tests/bench/common.sh
. "$ROOT/tests/bench/common.sh"
LDAP_LOGLEVEL=0
# shellcheck source=tests/integration/tools/ldap_lib.sh
. "$ROOT/tests/integration/tools/ldap_lib.sh"
for t in "$SLAPD" "$SLAPADD" ldapsearch haproxy; do
    command -v "$t" >/dev/null || { echo "ldap bench: no $t (bash tests/bench/deps.sh)" >&2; exit 2; }
done

# The directory: the test tree plus LOOKUPS users; the filters: each user once.
python3 - "$LOOKUPS" "$LDAP_PEOPLE" >"$work/users.ldif" <<'PY'
import sys
n, people = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    u = f"user{i:05d}"
    print(f"dn: uid={u},{people}\nobjectClass: inetOrgPerson\ncn: User {i}\nsn: {i}\n"
          f"uid: {u}\nmail: {u}@example.org\nuserPassword: pw-{i}\n")
PY
seq -f 'user%05g' 0 $((LOOKUPS - 1)) | shuf --random-source=<(yes) >"$work/filters"
mkdir -p "$work/slapd"
ldap_slapd_conf "$work/slapd"
ldap_load "$work/slapd" "$work/users.ldif" || { cat "$work/slapd/slapadd.log" >&2; exit 1; }

SLAPD_P=$(port); FERRY_P=$(port); PASS_P=$(port); HAP_P=$(port); ADMIN_P=$(port)
"$SLAPD" -f "$work/slapd/slapd.conf" -d 0 -h "ldap://127.0.0.1:$SLAPD_P/" \
    >"$work/slapd.log" 2>&1 & pids+=($!)
slapd_pid=$!
wait_port "$SLAPD_P"

cat >"$work/haproxy.cfg" <<CFG
global
    maxconn 4096
    nbthread 2
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend fe
    bind 127.0.0.1:$HAP_P
    default_backend be
backend be
    server slapd 127.0.0.1:$SLAPD_P
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 & pids+=($!)
haproxy_pid=$!
# The same with each thread on its own CPU (cpu-map), against ferry's worker_cpu_affinity.
HAPPIN_P=$(port)
sed -e "s/nbthread 2/nbthread 2\n    cpu-map auto:1\/1-2 0-1/" -e "s/127.0.0.1:$HAP_P/127.0.0.1:$HAPPIN_P/" \
    "$work/haproxy.cfg" >"$work/haproxy-pin.cfg"
haproxy -f "$work/haproxy-pin.cfg" -db >"$work/haproxy-pin.log" 2>&1 & pids+=($!)
haproxy_pin_pid=$!

cat >"$work/ferry.yaml" <<YAML
workers: 2
plugins_dir: $BUILD/plugins
log: { level: warn, access: off }
admin: { listen: 127.0.0.1:$ADMIN_P }
destinations:
  - { Name: slapd, Type: LDAP, ldap.url: "ldap://127.0.0.1:$SLAPD_P", ProxyType: Internet,
      ldap.authentication: BasicAuthentication, ldap.user: "$LDAP_SVC_DN", ldap.password: "$LDAP_SVC_PW" }
  - { Name: slapd-pass, Type: LDAP, ldap.url: "ldap://127.0.0.1:$SLAPD_P", ProxyType: Internet }
listeners:
  - { name: bench, plugin: ldap, listen: "127.0.0.1:$FERRY_P", destination: slapd }
  - { name: bench-pass, plugin: ldap, listen: "127.0.0.1:$PASS_P", destination: slapd-pass }
YAML
"$FERRY" gateway -c "$work/ferry.yaml" 2>"$work/ferry.log" & pids+=($!)
ferry_pid=$!
PIN_P=$(port); ADMIN_PIN_P=$(port)
sed -e "s/^workers: 2/workers: 2\nworker_cpu_affinity: auto/" -e "s/127.0.0.1:$FERRY_P/127.0.0.1:$PIN_P/" \
    -e "s/127.0.0.1:$ADMIN_P/127.0.0.1:$ADMIN_PIN_P/" -e "/bench-pass/d" "$work/ferry.yaml" >"$work/ferry-pin.yaml"
"$FERRY" gateway -c "$work/ferry-pin.yaml" 2>"$work/ferry-pin.log" & pids+=($!)
ferry_pin_pid=$!

SUBJECTS=(direct ferry ferry-pass haproxy ferry-pin haproxy-pin)
declare -A PORT=([direct]=$SLAPD_P [ferry]=$FERRY_P [ferry-pass]=$PASS_P [haproxy]=$HAP_P
                 [ferry-pin]=$PIN_P [haproxy-pin]=$HAPPIN_P)
declare -A CPU_PID=([direct]=$slapd_pid [ferry]=$ferry_pid [ferry-pass]=$ferry_pid
                    [haproxy]=$haproxy_pid [ferry-pin]=$ferry_pin_pid [haproxy-pin]=$haproxy_pin_pid)
declare -A LOG=([direct]=slapd.log [ferry]=ferry.log [ferry-pass]=ferry.log [haproxy]=haproxy.log
                [ferry-pin]=ferry-pin.log [haproxy-pin]=haproxy-pin.log)
declare -A NA=()
SVC=(-D "$LDAP_SVC_DN" -w "$LDAP_SVC_PW")
# The client's own bind: none through ferry (anonymous; ferry injects), -D/-w elsewhere.
client_bind() {
    [ "$1" = ferry ] || [ "$1" = ferry-pin ] || printf '%s\n' "${SVC[@]}"
}

cpu_ticks() {
    local total=0 p
    for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
        [ -r "/proc/$p/stat" ] || continue
        total=$(( total + $(awk '{ print $14 + $15 }' "/proc/$p/stat") ))
    done
    echo "$total"
}
TICK_HZ=$(getconf CLK_TCK)

# run_lookups SUBJECT OUT: one ldapsearch run of all the filters; prints its wall time
# in microseconds.
# Fails (status 1) unless every lookup found its one entry.
run_lookups() {
    local s=$1 out=$2 t0 t1 n bind=()
    mapfile -t bind < <(client_bind "$s")
    t0=$(date +%s%N)
    timeout 120 ldapsearch -x -LLL -o nettimeout=10 -H "ldap://127.0.0.1:${PORT[$s]}" \
        ${bind[@]+"${bind[@]}"} -b "$LDAP_PEOPLE" -f "$work/filters" '(uid=%s)' uid >"$out" 2>&1 || return 1
    t1=$(date +%s%N)
    n=$(grep -c '^uid: ' "$out" || true)
    [ "$n" = "$LOOKUPS" ] || return 1
    echo $(( (t1 - t0) / 1000 ))
}

# Every subject must answer all the lookups right before it is measured.
for s in "${SUBJECTS[@]}"; do
    if ! wait_port "${PORT[$s]}" 5 2>/dev/null; then
        why=$(grep -v '^[[:space:]]*$' "$work/${LOG[$s]}" 2>/dev/null | tail -n 1 | cut -c1-160)
        NA[$s]="error: ${why:-port ${PORT[$s]} never opened}"
        continue
    fi
    if ! run_lookups "$s" "$work/check.$s" >/dev/null; then
        NA[$s]="error: $(grep -v '^dn:\|^uid:\|^$' "$work/check.$s" | head -n 1 | cut -c1-160)"
    fi
done
for s in "${!NA[@]}"; do echo "ldap: $s is not measured: ${NA[$s]}" >&2; done

declare -A MSS TICKS NRUNS MS CPU   # MSS, MS: microseconds per run
ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
echo "bench: $LDAP_ROUNDS rounds x $LOOKUPS lookups on one connection, $(nproc) cores, $(uname -r)" >&2
for r in $(seq 1 "$LDAP_ROUNDS"); do
    # Each round starts one subject further on, so no subject always follows the same
    # other one (the previous run's teardown, slapd's state, the scheduler's placement).
    order=()
    for ((i = 0; i < ${#SUBJECTS[@]}; i++)); do
        order+=("${SUBJECTS[$(( (i + r - 1) % ${#SUBJECTS[@]} ))]}")
    done
    for s in "${order[@]}"; do
        [ -z "${NA[$s]:-}" ] || continue
        c0=$(cpu_ticks "${CPU_PID[$s]}")
        if ! us=$(run_lookups "$s" "$work/run.$s"); then
            echo "  round $r $s: FAILED: $(grep -v '^dn:\|^uid:\|^$' "$work/run.$s" | head -n 1)" >&2
            continue
        fi
        c1=$(cpu_ticks "${CPU_PID[$s]}")
        MSS[$s]="${MSS[$s]:-} $us"
        TICKS[$s]=$(( ${TICKS[$s]:-0} + c1 - c0 ))
        NRUNS[$s]=$(( ${NRUNS[$s]:-0} + 1 ))
        echo "  round $r $s: $LOOKUPS lookups in $(ms "$us") ms" >&2
        sleep 0.3
    done
done
for s in "${SUBJECTS[@]}"; do
    [ -n "${MSS[$s]:-}" ] || continue
    # shellcheck disable=SC2086
    MS[$s]=$(median ${MSS[$s]})
    CPU[$s]=$(awk -v d="${TICKS[$s]}" -v hz="$TICK_HZ" -v n=$(( NRUNS[$s] * LOOKUPS )) \
              'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
done

# speed NUM_MS REF_MS: how many times faster than REF (REF / NUM), "-" if unmeasured.
speed() { if [ -n "$1" ] && [ -n "$2" ]; then ratio "$2" "$1"; else echo -; fi; }
name() { case $1 in ferry) echo "ferry (injects)" ;; ferry-pass) echo "ferry (pass-through)" ;;
                    ferry-pin) echo "ferry (injects, pinned)" ;; haproxy-pin) echo "HAProxy (cpu-map)" ;;
                    haproxy) echo "HAProxy mode tcp" ;; *) echo "$1" ;; esac; }
printf '\nLDAP: %s lookups (search by uid, 1 entry each) on one connection\n' "$LOOKUPS"
printf '%-24s %9s %10s %11s %10s %9s %11s\n' subject "ms/run" "lookups/s" "us/lookup" \
    "x HAProxy" "x direct" "CPU us/lkp"
for s in "${SUBJECTS[@]}"; do
    if [ -n "${NA[$s]:-}" ] || [ -z "${MS[$s]:-}" ]; then
        printf '%-24s n/a (%s)\n' "$(name "$s")" "${NA[$s]:-every round failed}"
        continue
    fi
    printf '%-24s %9s %10s %11s %10s %9s %11s\n' "$(name "$s")" "$(ms "${MS[$s]}")" \
        "$(awk -v n="$LOOKUPS" -v u="${MS[$s]}" 'BEGIN { printf "%.0f", (u > 0 ? n * 1e6 / u : 0) }')" \
        "$(awk -v n="$LOOKUPS" -v u="${MS[$s]}" 'BEGIN { printf "%.1f", u / n }')" \
        "$(speed "${MS[$s]}" "${MS[haproxy]:-}")" "$(speed "${MS[$s]}" "${MS[direct]:-}")" "${CPU[$s]}"
done
printf '(medians of %s interleaved rounds, the order rotated each round; a run is one ldapsearch process: start, bind,\n' "$LDAP_ROUNDS"
printf ' %s searches one after the other, unbind. x HAProxy / x direct: speed relative to\n' "$LOOKUPS"
printf ' them, above 1 is faster. The client binds itself (-D/-w) to direct, HAProxy and\n'
printf ' ferry pass-through; through ferry (injects) it is anonymous and ferry binds upstream.\n'
printf ' CPU us/lkp: user+system time of the subject per lookup, all rounds; direct: slapd.)\n'
if [ -n "${MS[ferry]:-}" ] && [ -n "${MS[haproxy]:-}" ]; then
    if [ "${MS[ferry]}" -le "${MS[haproxy]}" ]; then
        verdict="yes"
    else
        verdict="NO"
    fi
    printf 'issue 7, ferry at least as fast as HAProxy mode tcp: %s (%s ms vs %s ms per run)\n' \
        "$verdict" "$(ms "${MS[ferry]}")" "$(ms "${MS[haproxy]}")"
fi
