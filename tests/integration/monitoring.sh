#!/usr/bin/env bash
# monitoring.sh: deploy/prometheus and deploy/grafana are valid and speak ferry's metrics.
#
#   bash tests/integration/monitoring.sh [BUILD_DIR]     (default: build)
#
# 1. `promtool check rules` accepts deploy/prometheus/ferry-rules.yaml and `promtool test
#    rules` passes ferry-rules.test.yaml (each alert firing and silent).
# 2. deploy/grafana/ferry.json is a dashboard: JSON, unique panel ids, every panel on
#    the ${datasource} variable and inside the 24-column grid, every query non-empty.
# 3. A live gateway's and connector's /metrics pass `promtool check metrics`, and
#    every ferry_* name the rules, their tests and the dashboard use is a metric ferry
#    exports, and every label they group or filter by is one of that metric's: the
#    names come from a real gateway's and connector's /metrics (with an http request,
#    a tunnel and a stream behind them, so the series that appear only after traffic
#    are there), plus the store's series from the source (no etcd here).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"

FERRY=$BUILD/core/ferry
[ -x "$FERRY" ] || fail "no ferry binary at $FERRY (build first)"
RULES=$SRC_ROOT/deploy/prometheus/ferry-rules.yaml
RULES_TEST=$SRC_ROOT/deploy/prometheus/ferry-rules.test.yaml
DASH=$SRC_ROOT/deploy/grafana/ferry.json

if ! command -v promtool >/dev/null 2>&1; then
    echo "monitoring: no promtool; installing Debian's prometheus through tests/deps.sh" >&2
    bash "$SRC_ROOT/tests/deps.sh" prometheus >&2 || fail "tests/deps.sh prometheus failed"
fi
command -v promtool >/dev/null 2>&1 || fail "promtool is missing (Debian package prometheus)"
command -v jq >/dev/null 2>&1 || fail "jq is missing (tests/deps.sh)"

# --- 1. rules ----------------------------------------------------------------------------
out=$(promtool check rules "$RULES" 2>&1) || fail "promtool check rules: $out"
echo "$out" | tail -n 1
out=$(cd "$(dirname "$RULES_TEST")" && promtool test rules "$(basename "$RULES_TEST")" 2>&1) \
    || fail "promtool test rules: $out"
echo "$out" | tail -n 1
for alert in FerryTunnelDown FerryConnectorAuditErrors FerryHTTP5xxRatio \
             FerryTokenServiceFailures FerryReplicaWithoutStore; do
    grep -q "alert: $alert\$" "$RULES" || fail "$RULES has no alert $alert"
    grep -q "alertname: $alert\$" "$RULES_TEST" || fail "$RULES_TEST does not test $alert"
done

# --- 2. the dashboard ---------------------------------------------------------------------
jq -e . "$DASH" >/dev/null || fail "$DASH is not JSON"
jq -e '[.panels[].id] | length == (unique | length)' "$DASH" >/dev/null \
    || fail "$DASH: panel ids repeat"
bad=$(jq -r '.panels[] | select(.type != "row")
             | select(.datasource.uid != "${datasource}"
                      or (.gridPos.x + .gridPos.w) > 24
                      or ([.targets[]? | select((.expr // "") == "")] | length) > 0
                      or (.targets | length) == 0)
             | .title' "$DASH")
[ -z "$bad" ] || fail "$DASH: panels off the datasource variable, off the grid or without a query: $bad"
jq -r '.panels[].targets[]?.expr' "$DASH" >"$IT_ROOT/dash.exprs"
for want in ferry_tunnels ferry_tunnel_streams_active ferry_http_requests_total \
            ferry_http_request_duration_seconds_bucket ferry_token_fetches_total ferry_store_up; do
    grep -q "$want" "$IT_ROOT/dash.exprs" || fail "$DASH has no panel on $want"
done

# --- 3. names and labels against a real /metrics --------------------------------------
dir=$(tmpdir)
make_ca "$dir" ca
make_cert "$dir" gateway ca
admin_gw=$(free_port)
admin_c=$(free_port)
tunnel=$(free_port)
http_port=$(free_port)
origin_port=$(free_port)
start_bg origin python3 -m http.server "$origin_port" --bind 127.0.0.1 --directory "$dir"
cat >"$dir/gw.yaml" <<YAML
workers: 1
plugins_dir: $BUILD/plugins
log: { level: warn, access: off }
admin: { listen: 127.0.0.1:$admin_gw }
tunnel: { listen: 127.0.0.1:$tunnel, cert: gateway.crt, key: gateway.key }
tenants:
  - { id: t1, token: tok-1 }
destinations:
  - { Name: web, Type: HTTP, URL: "http://origin.internal:80", ProxyType: OnPremise }
listeners:
  - { name: apps, plugin: http, listen: 127.0.0.1:$http_port, mode: transparent, destination: web }
YAML
cat >"$dir/c.yaml" <<YAML
gateway: 127.0.0.1:$tunnel
admin: { listen: 127.0.0.1:$admin_c }
tenant: t1
token: tok-1
location_id: loc1
ca: ca.crt
audit_log: audit.jsonl
systems:
  - { virtual: origin.internal:80, internal: 127.0.0.1:$origin_port, protocol: HTTP }
YAML
wait_port 127.0.0.1 "$origin_port" 10 "$BG_PID" || fail "the origin did not listen"
start_bg gateway "$FERRY" gateway -c "$dir/gw.yaml"
wait_port 127.0.0.1 "$admin_gw" 15 "$BG_PID" || fail "the gateway did not listen"
start_bg connector "$FERRY" connector -c "$dir/c.yaml"
wait_port 127.0.0.1 "$admin_c" 15 "$BG_PID" || fail "the connector did not listen"
deadline=$((SECONDS + 15))
until curl -sf "http://127.0.0.1:$admin_c/readyz" >/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the connector's tunnel did not come up"
    sleep 0.1
done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/") || true
[ "$code" != 000 ] || fail "no answer from the http listener"
curl -sf "http://127.0.0.1:$admin_gw/metrics" >"$IT_ROOT/gw.metrics" || fail "gateway /metrics"
curl -sf "http://127.0.0.1:$admin_c/metrics" >"$IT_ROOT/c.metrics" || fail "connector /metrics"
# The exposition itself passes Prometheus's lint (names, HELP/TYPE, counters' _total).
for m in gw c; do
    out=$(promtool check metrics <"$IT_ROOT/$m.metrics" 2>&1) || fail "promtool check metrics ($m): $out"
done

# name{label,...} of every exported series, histogram suffixes included.
{
    cat "$IT_ROOT/gw.metrics" "$IT_ROOT/c.metrics" | grep -v '^#' \
        | sed -E 's/\{([^}]*)\}.*/ \1/; s/ [0-9.e+-]+$//' \
        | awk '{ n = $1; l = ""; if (NF > 1) { m = split($2, kv, ",");
                 for (i = 1; i <= m; i++) { split(kv[i], p, "="); l = l "," p[1] } }
                 print n " " substr(l, 2) }'
    # The store's series (a replica with store: etcd; no etcd in this test): admin.c.
    grep -oE 'ferry_store_[a-z_]+|ferry_replicas' "$SRC_ROOT/core/admin/admin.c" \
        | sort -u | sed 's/$/ /'
} | sort -u >"$IT_ROOT/exported"
[ -s "$IT_ROOT/exported" ] || fail "no series scraped"
grep -q '^ferry_tunnels tenant,location$' "$IT_ROOT/exported" \
    || fail "no ferry_tunnels{tenant,location} on the gateway: $(grep tunnels "$IT_ROOT/exported")"
grep -q '^ferry_http_request_duration_seconds_bucket ' "$IT_ROOT/exported" \
    || fail "no latency histogram after a request"

# Names used by the rules, their tests and the dashboard (ferry_up etc. included).
grep -ohE '\bferry_[a-z0-9_]+' "$RULES" "$RULES_TEST" "$IT_ROOT/dash.exprs" | sort -u \
    >"$IT_ROOT/used"
unknown=$(awk '{ print $1 }' "$IT_ROOT/exported" | sort -u | comm -13 - "$IT_ROOT/used")
[ -z "$unknown" ] || fail "used but not exported by ferry: $unknown"

# Labels: every `by (...)`/`on (...)` label and every {label=...} matcher of an expression
# must be a label of some metric the expression names (job and instance are Prometheus's;
# le is the histogram's).
labels_of() {   # labels_of METRIC -> its labels, one a line
    awk -v m="$1" '$1 == m && NF > 1 { n = split($2, a, ","); for (i = 1; i <= n; i++) print a[i] }' \
        "$IT_ROOT/exported" | sort -u
}
exprs=$IT_ROOT/exprs
{ cat "$IT_ROOT/dash.exprs"
  # the rules' expr: blocks, one expression per line
  awk '/^ *expr: \|/ { e = ""; inb = 1; next }
       /^ *expr: / { sub(/^ *expr: /, ""); print; next }
       inb && /^ *[a-z_]+:/ { print e; inb = 0 }
       inb { e = e " " $0 }' "$RULES"
} >"$exprs"
while IFS= read -r e; do
    [ -n "$e" ] || continue
    metrics=$(grep -oE '\bferry_[a-z0-9_]+' <<<"$e" | sort -u)
    known=$(for m in $metrics; do labels_of "$m"; done | sort -u)
    for l in $(grep -oE '(by|on) \([a-z_, ]+\)' <<<"$e" | sed -E 's/.*\(//; s/[),]/ /g') \
             $(grep -oE '[{,] *[a-z_]+ *(=~|!=|=)' <<<"$e" | sed -E 's/[{, =~!]//g'); do
        case $l in job|instance|le) continue ;; esac
        grep -qxF "$l" <<<"$known" || fail "label '$l' is on none of $(tr '\n' ' ' <<<"$metrics")in: $e"
    done
done <"$exprs"

echo "ok: rules checked and unit-tested, dashboard valid, $(wc -l <"$IT_ROOT/used") metric names" \
     "and every label used are what ferry exports"
