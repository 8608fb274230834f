#!/usr/bin/env bash
# store_cli.sh: `ferry store import|export` against a real single-member etcd.
#
#   bash tests/integration/store_cli.sh [BUILD_DIR]     (default: build)
#
# Exits 77 (skipped) only while `ferry check` does not accept a `store:` section yet.
# Tenants acme and beta; SOURCE is a directory of 3 destinations: billing (acme, HTTP,
# BasicAuthentication, Password a ${env:} secret), erp-tcp (beta, TCP OnPremise with a
# location), corp-ad (acme, LDAP).
# 1. --dry-run lists the 3 keys and writes nothing; a gateway config as SOURCE (inline
#    destinations: and destinations_dir) is read too.
# 2. import: exit 0, `imported 3 destinations into http://127.0.0.1:P/ferry-it`; etcd
#    holds exactly 3 keys <prefix>/destinations/<tenant>/<Name> whose values are the
#    JSON objects of the properties (strings, tenant left out, the secret expanded,
#    TrustStoreLocation ../tls/ca.pem and policy ../policies/ro.lua of src/ now
#    relative to the configuration's directory, where the gateway resolves etcd's
#    paths: tls/ca.pem, policies/ro.lua).
#    A gateway on that etcd serves the 3 (destination API) and rejects none.
# 3. export to a new DIR: one <Name>.yaml each, mode 600; `ferry check` of a config with
#    destinations_dir: DIR and the same tenants passes; the files' properties are the
#    originals (secret expanded, the paths relative to DIR) plus tenant.
# 4. import(export(x)) leaves every value in etcd unchanged. 520 more destinations go
#    in (6 transactions) and come out (2 range pages) whole.
# 5. An invalid destination in SOURCE: exit 2, file:line:col on stderr, nothing written;
#    the same for a Name that etcd has for another tenant;
#    a config without store: exit 2 naming it; an unknown subcommand exit 2 with usage.
# 6. export --k8s-services: YAML documents (python3-yaml) with one Service per HTTP
#    destination: name, namespace, port 80 -> the transparent listener's port (the
#    forward listener before it is passed over), the default selector, the annotation;
#    --target-port/--selector change them; a Name that is not a DNS label gets a
#    lowercased Service and a note to send X-Destination-Name; two names that map to
#    one Service: exit 1 naming both keys, nothing printed.
# 7. A value in etcd that is not a JSON object of strings (or of the whole numbers and
#    booleans the gateway reads as text), and a second tenant's destination of a Name
#    already written: export reports the key, skips it, writes the rest, exit 1. A
#    tenant FILE does not have: written, with a warning.
# 8. etcd frozen (SIGSTOP): export exits 1 with `etcd unreachable:` within the 30 s
#    deadline; etcd stopped: import and export exit 1 with `etcd unreachable:` at once,
#    a dry run still works.
# The secret never appears in any output of ferry; no sanitizer report either.
# shellcheck disable=SC2016  # '${env:…}' is config text for ferry, not for the shell
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FERRY=$BUILD/core/ferry
PLUGINS=$BUILD/plugins
[ -x "$FERRY" ] || fail "no ferry binary at $FERRY (build first)"
for tool in python3 curl openssl; do
    command -v "$tool" >/dev/null || fail "$tool is missing (bash tests/deps.sh installs it)"
done
python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is missing (bash tests/deps.sh)"

# Sanitizer reports (an ASan build) fail the test however ferry exited.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
SANITIZER_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:'

export FERRY_IT_STORE_PW='st0re-Secret:pw-7731'
dir=$(tmpdir)
P=$(free_port)              # etcd's client port: a free one until etcd runs (below)
apps=$(free_port)
fwd=$(free_port)
admin=$(free_port)
OUT=$dir/out.log            # every output of ferry, for the secret check at the end
: >"$OUT"

tenants='tenants:
  - { id: acme, token: acme-token }
  - { id: beta, token: beta-token }'
# The gateway configuration of every command: etcd at port $P.
write_gw() {
    cat >"$dir/gw.yaml" <<YAML
plugins_dir: $PLUGINS
admin: { listen: 127.0.0.1:$admin }
$tenants
store:
  etcd:
    endpoints: [ "http://127.0.0.1:$P" ]
    prefix: /ferry-it
listeners:
  - { name: proxy, plugin: http, listen: 127.0.0.1:$fwd, mode: forward }
  - { name: apps, plugin: http, listen: 127.0.0.1:$apps, mode: transparent }
YAML
}
write_gw

# Before the store section is parsed, nothing here can run.
if ! "$FERRY" check -c "$dir/gw.yaml" >"$dir/check.out" 2>&1; then
    if grep -q "unknown key 'store'" "$dir/check.out"; then
        echo "SKIP: $(basename "$0"): ferry check does not accept store: yet"
        exit 77
    fi
    cat "$dir/check.out" >&2
    fail "ferry check refuses the store configuration"
fi

mkdir "$dir/src" "$dir/tls" "$dir/policies"
cp "$SRC_ROOT/examples/policies/ldap-read-only.lua" "$dir/policies/ro.lua"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=store-it-ca -days 2 \
    -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" >/dev/null 2>&1 || fail "openssl req"
cat >"$dir/src/billing.yaml" <<'YAML'
Name: billing
Type: HTTP
URL: https://billing.example.com/api
ProxyType: Internet
Authentication: BasicAuthentication
User: ferry
Password: ${env:FERRY_IT_STORE_PW}
URL.headers.X-Client: ferry
TrustStoreLocation: ../tls/ca.pem
tenant: acme
YAML
cat >"$dir/src/erp-tcp.yaml" <<'YAML'
Name: erp-tcp
Type: TCP
Address: tcp://erp.internal:3300
ProxyType: OnPremise
CloudConnectorLocationId: berlin
tenant: beta
YAML
cat >"$dir/src/corp-ad.yaml" <<'YAML'
Name: corp-ad
Type: LDAP
ldap.url: ldap://ad.internal:389
ProxyType: Internet
policy: ../policies/ro.lua
Description: "the directory: say \"hi\""
tenant: acme
YAML

# The properties as etcd must hold them: tenant out, the secret expanded.
cat >"$dir/want.json" <<JSON
{
 "/ferry-it/destinations/acme/billing": {"Name": "billing", "Type": "HTTP",
   "URL": "https://billing.example.com/api", "ProxyType": "Internet",
   "Authentication": "BasicAuthentication", "User": "ferry",
   "Password": "$FERRY_IT_STORE_PW", "URL.headers.X-Client": "ferry",
   "TrustStoreLocation": "tls/ca.pem"},
 "/ferry-it/destinations/beta/erp-tcp": {"Name": "erp-tcp", "Type": "TCP",
   "Address": "tcp://erp.internal:3300", "ProxyType": "OnPremise",
   "CloudConnectorLocationId": "berlin"},
 "/ferry-it/destinations/acme/corp-ad": {"Name": "corp-ad", "Type": "LDAP",
   "ldap.url": "ldap://ad.internal:389", "ProxyType": "Internet",
   "policy": "policies/ro.lua",
   "Description": "the directory: say \"hi\""}
}
JSON

ctl() {
    ectl "$@"
}

# The values under the prefix as {key: value text}, from etcdctl's JSON (base64).
etcd_values() {
    ctl get --prefix /ferry-it -w json | python3 -c '
import base64, json, sys
r = json.load(sys.stdin)
print(json.dumps({base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode()
                  for kv in r.get("kvs", [])}, sort_keys=True))'
}

# etcd's current revision: one more per transaction.
revision() {
    ctl endpoint status -w json | python3 -c '
import json, sys
print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])'
}

# ferry_run NAME WANT_RC ARGS...: run ferry, keep stdout/stderr in $dir/NAME.{out,err},
# fail unless it exits WANT_RC.
ferry_run() {
    local name=$1 want=$2 rc=0
    shift 2
    "$FERRY" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || rc=$?
    cat "$dir/$name.out" "$dir/$name.err" >>"$OUT"
    if [ "$rc" != "$want" ]; then
        echo "---- stdout:" >&2; cat "$dir/$name.out" >&2
        echo "---- stderr:" >&2; cat "$dir/$name.err" >&2
        fail "$name: ferry $* exited $rc, want $want"
    fi
}

# shellcheck source=tests/integration/tools/etcd_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/etcd_lib.sh"
start_etcd 1                # waits until it is healthy
P=${ETCD_CLIENT[0]}
ETCD=${ETCD_PID[0]}
write_gw

# ---- 1. dry run --------------------------------------------------------------------------
ferry_run dry 0 store import -c "$dir/gw.yaml" --dry-run "$dir/src"
for k in acme/billing beta/erp-tcp acme/corp-ad; do
    grep -qx "would write /ferry-it/destinations/$k" "$dir/dry.out" ||
        fail "dry run: no line for $k: $(cat "$dir/dry.out")"
done
grep -q "3 destinations would be imported" "$dir/dry.out" || fail "dry run: no summary"
[ "$(etcd_values)" = "{}" ] || fail "dry run wrote to etcd: $(etcd_values)"

# A gateway configuration as SOURCE: its inline destinations and its destinations_dir.
mkdir "$dir/more"
cat >"$dir/more/shop.yaml" <<'YAML'
Name: shop
Type: HTTP
URL: http://shop.internal/
ProxyType: OnPremise
tenant: beta
YAML
cat >"$dir/old-gw.yaml" <<YAML
tenants:
  - { id: acme, token: acme-token }
  - { id: beta, token: beta-token }
destinations_dir: more
destinations:
  - { Name: inline-one, Type: HTTP, URL: "http://a.example/", tenant: acme }
listeners:
  - { name: apps, plugin: http, listen: 127.0.0.1:$apps }
YAML
ferry_run dry-conf 0 store import -c "$dir/gw.yaml" --dry-run "$dir/old-gw.yaml"
{ grep -qx "would write /ferry-it/destinations/acme/inline-one" "$dir/dry-conf.out" &&
    grep -qx "would write /ferry-it/destinations/beta/shop" "$dir/dry-conf.out"; } ||
    fail "dry run of a gateway config: $(cat "$dir/dry-conf.out")"
[ "$(etcd_values)" = "{}" ] || fail "dry run wrote to etcd"

# ---- 2. import ---------------------------------------------------------------------------
ferry_run import 0 store import -c "$dir/gw.yaml" "$dir/src"
grep -qx "imported 3 destinations into http://127.0.0.1:$P/ferry-it" "$dir/import.out" ||
    fail "import: unexpected output: $(cat "$dir/import.out")"
etcd_values >"$dir/after-import.json"
python3 - "$dir/want.json" "$dir/after-import.json" <<'PY' || fail "etcd after import (above)"
import json, sys
want = json.load(open(sys.argv[1]))
got = {k: json.loads(v) for k, v in json.load(open(sys.argv[2])).items()}
if got != want:
    print("want keys", sorted(want), "got", sorted(got), file=sys.stderr)
    for k in want:
        if got.get(k) != want[k]:
            g = got.get(k) or {}
            print("differs:", k, "in", sorted(p for p in set(g) | set(want[k])
                                              if g.get(p) != want[k].get(p)), file=sys.stderr)
    sys.exit(1)
for k, v in got.items():
    assert all(isinstance(x, str) for x in v.values()), k
    assert "tenant" not in v, k
PY

# The gateway reads what import wrote: every destination served, none rejected (the
# relative paths resolve from gw.yaml's directory).
start_bg gateway "$FERRY" gateway -c "$dir/gw.yaml"
GW_PID=$BG_PID
ready=0
for ((i = 0; i < 100; i++)); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz")" = 200 ]; then
        ready=1
        break
    fi
    kill -0 "$GW_PID" 2>/dev/null || fail "the gateway exited"
    sleep 0.1
done
[ "$ready" = 1 ] || fail "the gateway is not ready within 10 s"
for pair in acme:billing acme:corp-ad beta:erp-tcp; do
    code=$(curl -s -o "$dir/find.json" -w '%{http_code}' -H "Authorization: Bearer ${pair%%:*}-token" \
        "http://127.0.0.1:$admin/destination-configuration/v1/destinations/${pair#*:}?\$skipTokenRetrieval=true")
    [ "$code" = 200 ] || fail "the gateway does not serve ${pair#*:}: HTTP $code"
done
# Into a file first: grep -q quitting early would fail curl's side of a pipe (pipefail).
curl -s -o "$dir/metrics.txt" "http://127.0.0.1:$admin/metrics" || fail "no /metrics"
grep -qx 'ferry_store_rejected_total 0' "$dir/metrics.txt" ||
    fail "the gateway rejected values: $(grep ferry_store_ "$dir/metrics.txt")"
stop_pid "$GW_PID" 10 || fail "the gateway did not exit cleanly"

# ---- 3. export ---------------------------------------------------------------------------
ferry_run export 0 store export -c "$dir/gw.yaml" "$dir/exp/new"
grep -qx "exported 3 destinations to $dir/exp/new" "$dir/export.out" ||
    fail "export: unexpected output: $(cat "$dir/export.out")"
for n in billing erp-tcp corp-ad; do
    f=$dir/exp/new/$n.yaml
    [ -f "$f" ] || fail "export: no $f"
    [ "$(stat -c %a "$f")" = 600 ] || fail "export: $f has mode $(stat -c %a "$f"), want 600"
done
[ "$(find "$dir/exp/new" -type f | wc -l)" = 3 ] || fail "export: not exactly 3 files"
cat >"$dir/files-gw.yaml" <<YAML
plugins_dir: $PLUGINS
admin: { listen: 127.0.0.1:$admin }
$tenants
destinations_dir: exp/new
listeners:
  - { name: apps, plugin: http, listen: 127.0.0.1:$apps }
YAML
ferry_run check-exported 0 check -c "$dir/files-gw.yaml"
grep -q "3 destinations" "$dir/check-exported.out" || fail "check: $(cat "$dir/check-exported.out")"
python3 - "$dir/want.json" "$dir/exp/new" <<'PY' || fail "exported files differ (above)"
import json, os, sys, yaml
want = json.load(open(sys.argv[1]))
for key, props in want.items():
    _, _, _, tenant, name = key.split("/")
    got = yaml.safe_load(open(os.path.join(sys.argv[2], name + ".yaml")))
    # Paths relative to the file's directory now.
    if "TrustStoreLocation" in props:
        props = dict(props, TrustStoreLocation="../../tls/ca.pem")
    if "policy" in props:
        props = dict(props, policy="../../policies/ro.lua")
    if got != dict(props, tenant=tenant):
        print("differs:", name, sorted(got), file=sys.stderr)
        sys.exit(1)
PY

# ---- 4. round trip -----------------------------------------------------------------------
ferry_run reimport 0 store import -c "$dir/gw.yaml" "$dir/exp/new"
[ "$(etcd_values)" = "$(cat "$dir/after-import.json")" ] ||
    fail "import(export(x)) changed etcd: $(etcd_values)"

# Many: 520 destinations are 6 transactions (at most 100 keys each) on the way in and
# 2 range pages (500 keys each) on the way out.
mkdir "$dir/bulk"
for ((i = 0; i < 520; i++)); do
    printf 'Name: bulk-%03d\nType: HTTP\nURL: http://bulk%d.example/\ntenant: acme\n' "$i" "$i" \
        >"$dir/bulk/bulk-$(printf %03d "$i").yaml"
done
rev_before=$(revision)
ferry_run bulk 0 store import -c "$dir/gw.yaml" "$dir/bulk"
[ $(($(revision) - rev_before)) = 6 ] ||
    fail "bulk import: $(($(revision) - rev_before)) revisions, want 6 transactions"
grep -qx "imported 520 destinations into http://127.0.0.1:$P/ferry-it" "$dir/bulk.out" ||
    fail "bulk import: $(cat "$dir/bulk.out")"
ferry_run bulk-export 0 store export -c "$dir/gw.yaml" "$dir/exp/bulk"
grep -qx "exported 523 destinations to $dir/exp/bulk" "$dir/bulk-export.out" ||
    fail "bulk export: $(cat "$dir/bulk-export.out")"
[ "$(find "$dir/exp/bulk" -name 'bulk-*.yaml' | wc -l)" = 520 ] || fail "bulk export: files missing"
ctl del --prefix /ferry-it/destinations/acme/bulk- >/dev/null
[ "$(etcd_values)" = "$(cat "$dir/after-import.json")" ] || fail "bulk keys left behind"

# ---- 5. refusals -------------------------------------------------------------------------
mkdir "$dir/bad"
cp "$dir/more/shop.yaml" "$dir/bad/shop.yaml"
cat >"$dir/bad/broken.yaml" <<'YAML'
Name: broken
URL: http://x.example/
tenant: nobody
YAML
ferry_run bad 2 store import -c "$dir/gw.yaml" "$dir/bad"
grep -Eq "^$dir/bad/broken\.yaml:[0-9]+:[0-9]+: .*Type" "$dir/bad.err" ||
    fail "invalid SOURCE: no file:line:col error about Type: $(cat "$dir/bad.err")"
grep -Eq "^$dir/bad/broken\.yaml:3:[0-9]+: .*unknown tenant 'nobody'" "$dir/bad.err" ||
    fail "invalid SOURCE: no error at the tenant (line 3): $(cat "$dir/bad.err")"
[ "$(etcd_values)" = "$(cat "$dir/after-import.json")" ] || fail "an invalid SOURCE wrote to etcd"

# A Name etcd has for another tenant: the gateway would keep only one of the two.
ctl put /ferry-it/destinations/beta/billing '{"Name":"billing","Type":"HTTP","URL":"http://b/"}' >/dev/null
etcd_values >"$dir/with-clash.json"
ferry_run clash 2 store import -c "$dir/gw.yaml" "$dir/src"
grep -q "^$dir/src/billing.yaml:1:1: destination 'billing' (tenant acme): etcd has it for tenant beta" \
    "$dir/clash.err" || fail "a clash with etcd: $(cat "$dir/clash.err")"
[ "$(etcd_values)" = "$(cat "$dir/with-clash.json")" ] || fail "a clash with etcd wrote to etcd"
ctl del /ferry-it/destinations/beta/billing >/dev/null
ctl del /ferry-it/destinations/gamma/ghost >/dev/null

grep -v '^store:\|^  etcd:\|^    endpoints:\|^    prefix:' "$dir/gw.yaml" >"$dir/nostore.yaml"
ferry_run nostore 2 store import -c "$dir/nostore.yaml" "$dir/src"
grep -qx "$dir/nostore.yaml: store import needs a store: section" "$dir/nostore.err" ||
    fail "no store: section: $(cat "$dir/nostore.err")"
ferry_run badsub 2 store frobnicate -c "$dir/gw.yaml"
{ grep -q "unknown subcommand 'frobnicate'" "$dir/badsub.err" && grep -q usage "$dir/badsub.err"; } ||
    fail "unknown subcommand: $(cat "$dir/badsub.err")"
ferry_run help 0 --help
{ grep -q "ferry store import" "$dir/help.out" && grep -q "ferry store export" "$dir/help.out"; } ||
    fail "ferry --help does not list the store commands"

# ---- 6. Kubernetes Services --------------------------------------------------------------
ferry_run k8s 0 store export -c "$dir/gw.yaml" --k8s-services --namespace apps
python3 - "$dir/k8s.out" "$apps" <<'PY' || fail "k8s services (above): $(cat "$dir/k8s.out")"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
assert len(docs) == 1, "want one Service (billing is the only HTTP destination): %d" % len(docs)
s = docs[0]
assert s["apiVersion"] == "v1" and s["kind"] == "Service", s
assert s["metadata"]["name"] == "billing", s["metadata"]
assert s["metadata"]["namespace"] == "apps", s["metadata"]
assert s["metadata"]["annotations"]["ferry.io/destination"] == "billing", s["metadata"]
assert s["spec"]["selector"] == {"app.kubernetes.io/name": "ferry",
                                 "app.kubernetes.io/component": "gateway"}, s["spec"]
assert s["metadata"]["labels"]["app.kubernetes.io/component"] == "destination", s["metadata"]
assert s["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 80,
                               "targetPort": int(sys.argv[2])}], s["spec"]["ports"]
PY
grep -q "beta/erp-tcp: not Type HTTP" "$dir/k8s.err" || fail "k8s: no note on erp-tcp"

ctl put /ferry-it/destinations/beta/Shop_API \
    '{"Name":"Shop_API","Type":"HTTP","URL":"http://shop.internal/","ProxyType":"OnPremise"}' >/dev/null
ferry_run k8s2 0 store export -c "$dir/gw.yaml" --k8s-services --target-port 9999 \
    --selector app=gw --port 8080
python3 - "$dir/k8s2.out" <<'PY' || fail "k8s services with options (above): $(cat "$dir/k8s2.out")"
import sys, yaml
docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
assert sorted(docs) == ["billing", "shop-api"], sorted(docs)
s = docs["shop-api"]
assert s["metadata"]["annotations"]["ferry.io/destination"] == "Shop_API"
assert "namespace" not in s["metadata"]
assert s["spec"]["selector"] == {"app": "gw"}, s["spec"]
assert s["spec"]["ports"][0]["port"] == 8080 and s["spec"]["ports"][0]["targetPort"] == 9999
PY
grep -q "X-Destination-Name: Shop_API" "$dir/k8s2.err" ||
    fail "k8s: no note that Shop_API needs X-Destination-Name: $(cat "$dir/k8s2.err")"
ctl put /ferry-it/destinations/acme/shop-api \
    '{"Name":"shop-api","Type":"HTTP","URL":"http://shop2.internal/"}' >/dev/null
ferry_run k8s-clash 1 store export -c "$dir/gw.yaml" --k8s-services
grep -q "/ferry-it/destinations/acme/shop-api and /ferry-it/destinations/beta/Shop_API" \
    "$dir/k8s-clash.err" || fail "k8s clash: $(cat "$dir/k8s-clash.err")"
[ ! -s "$dir/k8s-clash.out" ] || fail "k8s clash: something was printed"
ctl del /ferry-it/destinations/acme/shop-api >/dev/null
ctl del /ferry-it/destinations/beta/Shop_API >/dev/null

# ---- 7. a value that is not a destination ------------------------------------------------
ctl put /ferry-it/destinations/acme/junk 'not json' >/dev/null
ctl put /ferry-it/destinations/acme/nums '{"Name":"nums","Type":"HTTP","Port":[8080]}' >/dev/null
ctl put /ferry-it/destinations/beta/billing '{"Name":"billing","Type":"HTTP","URL":"http://b/"}' >/dev/null
ctl put /ferry-it/destinations/gamma/ghost '{"Name":"ghost","Type":"HTTP","URL":"http://g/"}' >/dev/null
ferry_run export-bad 1 store export -c "$dir/gw.yaml" "$dir/exp/bad"
grep -q "^/ferry-it/destinations/acme/junk: the value is not JSON.*skipped" "$dir/export-bad.err" ||
    fail "export of a value that is not JSON: $(cat "$dir/export-bad.err")"
grep -q "^/ferry-it/destinations/acme/nums: property 'Port' is not a string; skipped" \
    "$dir/export-bad.err" || fail "export of a list value: $(cat "$dir/export-bad.err")"
grep -q "^/ferry-it/destinations/beta/billing: another tenant has a destination 'billing'" \
    "$dir/export-bad.err" || fail "export of a second billing: $(cat "$dir/export-bad.err")"
grep -q "URL: \"https://billing.example.com/api\"" "$dir/exp/bad/billing.yaml" ||
    fail "export: the second billing (beta) replaced the first (acme)"
grep -q "^/ferry-it/destinations/gamma/ghost: warning: tenant 'gamma' is not one of" \
    "$dir/export-bad.err" || fail "export of an unknown tenant's: $(cat "$dir/export-bad.err")"
[ -f "$dir/exp/bad/ghost.yaml" ] || fail "export: an unknown tenant's destination not written"
grep -qx "exported 4 destinations to $dir/exp/bad" "$dir/export-bad.out" ||
    fail "export of bad values: $(cat "$dir/export-bad.out")"
{ [ ! -e "$dir/exp/bad/junk.yaml" ] && [ ! -e "$dir/exp/bad/nums.yaml" ]; } ||
    fail "export wrote a skipped destination"
ctl del /ferry-it/destinations/acme/junk >/dev/null
ctl del /ferry-it/destinations/acme/nums >/dev/null
ctl del /ferry-it/destinations/beta/billing >/dev/null
ctl del /ferry-it/destinations/gamma/ghost >/dev/null

# ---- 8. etcd down ------------------------------------------------------------------------
# Frozen: connections are accepted by the kernel, nothing answers; the deadline ends it.
kill -STOP "$ETCD"
start=$SECONDS
ferry_run frozen 1 store export -c "$dir/gw.yaml" "$dir/exp/frozen"
kill -CONT "$ETCD"
grep -q "^etcd unreachable: " "$dir/frozen.err" || fail "etcd frozen: $(cat "$dir/frozen.err")"
[ $((SECONDS - start)) -le 35 ] || fail "etcd frozen: took $((SECONDS - start)) s, want <= 30"
echo "etcd frozen: gave up after $((SECONDS - start)) s: $(head -1 "$dir/frozen.err")"

stop_pid "$ETCD" 10 || true
start=$SECONDS
ferry_run down 1 store import -c "$dir/gw.yaml" "$dir/src"
grep -q "^etcd unreachable: " "$dir/down.err" || fail "etcd down: $(cat "$dir/down.err")"
ferry_run down-export 1 store export -c "$dir/gw.yaml" "$dir/exp/down"
grep -q "^etcd unreachable: " "$dir/down-export.err" ||
    fail "etcd down (export): $(cat "$dir/down-export.err")"
[ $((SECONDS - start)) -le 70 ] || fail "etcd down: took $((SECONDS - start)) s"
# A dry run reads SOURCE only: it works without etcd.
ferry_run down-dry 0 store import -c "$dir/gw.yaml" --dry-run "$dir/src"

if grep -Eq "$SANITIZER_RE" "$OUT" "$(bg_log gateway)"; then
    grep -E -A20 "$SANITIZER_RE" "$OUT" "$(bg_log gateway)" >&2 || true
    fail "a sanitizer report in ferry's output (above)"
fi
if grep -qF "$FERRY_IT_STORE_PW" "$OUT" "$(bg_log gateway)"; then
    fail "the secret appears in ferry's output"
fi
echo "PASS: $(basename "$0")"
