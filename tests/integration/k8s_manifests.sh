#!/usr/bin/env bash
# k8s_manifests.sh: deploy/kubernetes renders, lints, and is what its runbook says.
#
#   bash tests/integration/k8s_manifests.sh [BUILD_DIR]     (default: build)
#
# No cluster is needed: everything is checked on what `kubectl kustomize` renders.
#   1. Every kustomization renders (deploy/kubernetes, base/, overlays/dev, etcd/,
#      connector/), and uses only what kustomize v2.0.3 reads (Debian's kubectl 1.20).
#   2. yamllint -s with deploy/kubernetes/.yamllint passes on the sources and on every
#      rendered output.
#   3. The rendered objects (tools/k8s_manifests.py assert): the gateway Deployment with
#      3 replicas, anti-affinity across nodes, hardened containers, /readyz and /healthz
#      on the admin port, a grace period above ferry.yaml's drain_timeout_ms; POD_IP
#      from the downward API in tunnel.advertise; store.etcd naming the etcd members;
#      the four Services on the right listeners (the tunnel a LoadBalancer); PDB, HPA,
#      NetworkPolicy; placeholder secrets; the etcd StatefulSet (3 members, all in
#      --initial-cluster); the connector Deployment; the dev overlay.
#   4. The connector.yaml of the rendered ConfigMap, with the rendered Secrets written
#      where the pod mounts them (a test CA and certificate for the PEM placeholders),
#      passes `ferry check`; so does the gateway's ferry.yaml without `store:` and
#      `tunnel.advertise`, which this branch's binary does not read yet.
#
# kubectl is required: without one on PATH the script asks tests/deps.sh for Debian's
# kubernetes-client, and fails if that does not work either. KUBECTL=/path/to/kubectl
# renders with another one (an old kubectl 1.20 proves kustomize v2.0.3 compatibility).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"

K8S=$SRC_ROOT/deploy/kubernetes
LINT_CONF=$K8S/.yamllint
PY=$SRC_ROOT/tests/integration/tools/k8s_manifests.py
dir=$(tmpdir)

# --- tools -------------------------------------------------------------------------
KUBECTL=${KUBECTL:-kubectl}
if [ "$KUBECTL" = kubectl ] && ! command -v kubectl >/dev/null 2>&1; then
    echo "k8s_manifests: no kubectl on PATH; installing Debian's kubernetes-client" >&2
    bash "$SRC_ROOT/tests/deps.sh" kubernetes-client >&2 ||
        fail "no kubectl, and tests/deps.sh could not install kubernetes-client"
    command -v kubectl >/dev/null 2>&1 ||
        fail "no kubectl on PATH even after installing kubernetes-client"
fi
command -v "$KUBECTL" >/dev/null 2>&1 || fail "KUBECTL=$KUBECTL is not a command"
command -v yamllint >/dev/null 2>&1 || fail "no yamllint (bash tests/deps.sh installs it)"
python3 -c 'import yaml' 2>/dev/null || fail "python3 cannot import yaml (Debian: python3-yaml)"
command -v openssl >/dev/null 2>&1 || fail "no openssl"
echo "kubectl: $("$KUBECTL" version --client 2>/dev/null | head -n 2 | tr '\n' ' ')"
echo "yamllint: $(yamllint --version)"

# --- 1. render every kustomization -------------------------------------------------
# name:directory; the names are the files tools/k8s_manifests.py reads.
kustomizations=(gateway:. base:base dev:overlays/dev etcd:etcd connector:connector)
mapfile -t kfiles < <(find "$K8S" -name kustomization.yaml | sort)
[ "${#kfiles[@]}" -eq "${#kustomizations[@]}" ] ||
    fail "deploy/kubernetes has ${#kfiles[@]} kustomizations, the test renders" \
         "${#kustomizations[@]}: add the new one to this script: ${kfiles[*]}"
python3 "$PY" compat "${kfiles[@]}" || fail "a kustomization.yaml needs a newer kustomize"
for entry in "${kustomizations[@]}"; do
    name=${entry%%:*}
    sub=${entry#*:}
    # Warnings (newer kubectl calls bases: and patchesStrategicMerge: deprecated) go
    # to stderr and do not count; the exit status does.
    if ! "$KUBECTL" kustomize "$K8S/$sub" >"$dir/$name.yaml" 2>"$dir/$name.err"; then
        fail "kubectl kustomize deploy/kubernetes/$sub failed: $(cat "$dir/$name.err")"
    fi
    [ -s "$dir/$name.yaml" ] || fail "kubectl kustomize deploy/kubernetes/$sub rendered nothing"
    echo "ok: kubectl kustomize deploy/kubernetes/$sub ($(grep -c '^kind:' "$dir/$name.yaml") objects)"
done

# --- 2. yamllint: sources and rendered output --------------------------------------
out=$(yamllint -s -c "$LINT_CONF" "$SRC_ROOT/deploy" 2>&1) ||
    fail "yamllint on deploy/:"$'\n'"$out"
for entry in "${kustomizations[@]}"; do
    name=${entry%%:*}
    out=$(yamllint -s -c "$LINT_CONF" "$dir/$name.yaml" 2>&1) ||
        fail "yamllint on the rendered deploy/kubernetes/${entry#*:}:"$'\n'"$out"
done
echo "ok: yamllint -s on deploy/ and on the ${#kustomizations[@]} rendered outputs"

# --- 3. properties of the rendered objects -----------------------------------------
python3 "$PY" assert "$dir" || fail "the rendered manifests (see above)"

# --- 4. ferry check on the configurations as the pods see them ---------------------
# A CA and one certificate signed by it stand in for the REPLACE-ME PEM files: the
# gateway's tunnel certificate and the connector's client certificate alike.
pki=$dir/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=k8s-test-ca -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>"$pki/log" ||
    fail "openssl: test CA: $(cat "$pki/log")"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=ferry-tunnel \
    -keyout "$pki/tls.key" -out "$pki/tls.csr" 2>"$pki/log" ||
    fail "openssl: request: $(cat "$pki/log")"
printf 'subjectAltName=DNS:ferry-tunnel.example.com\n' >"$pki/ext"
openssl x509 -req -in "$pki/tls.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 2 -extfile "$pki/ext" -out "$pki/tls.crt" 2>"$pki/log" ||
    fail "openssl: certificate: $(cat "$pki/log")"

# run_check WHAT FILE: `ferry check -c FILE` must exit 0 and say ok.
run_check() {
    local what=$1 file=$2 rc=0 o
    o=$(timeout 20 "$FERRY" check -c "$file" 2>&1) || rc=$?
    printf '%s\n' "$o" >"$dir/check.out"
    check_sanitizers "$dir/check.out" "ferry check ($what)"
    [ "$rc" -eq 0 ] || fail "ferry check -c $what: exit $rc:"$'\n'"$o"
    grep -q ': ok' <<<"$o" || fail "ferry check -c $what: no 'ok' in:"$'\n'"$o"
    echo "ok: ferry check, $what: $(tail -n 1 <<<"$o")"
}

croot=$dir/connector-pod
conn=$(python3 "$PY" materialize "$dir/connector.yaml" ferry-connector "$croot" \
       "$pki/ca.crt" "$pki/tls.crt" "$pki/tls.key") ||
    fail "could not write the connector pod's files"
run_check "the rendered connector.yaml" "$conn"

groot=$dir/gateway-pod
gw=$(python3 "$PY" materialize "$dir/gateway.yaml" ferry-gateway "$groot" \
     "$pki/ca.crt" "$pki/tls.crt" "$pki/tls.key") ||
    fail "could not write the gateway pod's files"
# The gateway's ferry.yaml as the pods get it: store: and tunnel.advertise included
# (POD_IP as the downward API would set it).
python3 "$PY" for-check "$gw" "$dir/ferry-check.yaml" "$PLUGINS" --keep-store
POD_IP=10.0.0.7 run_check "the rendered ferry.yaml" "$dir/ferry-check.yaml"

echo "ok: deploy/kubernetes renders with kubectl kustomize, passes yamllint, has the" \
     "properties of its runbook, and its configurations pass ferry check"
