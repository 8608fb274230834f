#!/usr/bin/env bash
# plugin_out_of_tree.sh: a plugin author's path, end to end.
#
#   bash tests/integration/plugin_out_of_tree.sh [BUILD_DIR]     (default: build)
#
# 1. `cmake --install` ferry into a temporary prefix (headers + ferry-plugin.pc).
# 2. Build examples/plugin-hello against that prefix, found by pkg-config only.
# 3. Run the gateway with plugins_dir: the example's build dir; two hello listeners
#    (default greeting, and the `greeting:` option) must answer with their line.
#    Its counter (ABI 1.3, ferry/metrics.h) shows every greeting in /metrics with the
#    plugin's label.
# 4. A listener option the plugin never reads is refused by `ferry check` (exit 2).
# 5. A plugin built with abi_major 99 is refused by `ferry check`: exit 2, a message
#    naming the .so file and both ABI versions.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FERRY=$BUILD/core/ferry
[ -x "$FERRY" ] || fail "no ferry binary at $FERRY (build first)"

# --- 1. install into a prefix of our own --------------------------------------------
prefix=$(tmpdir)
cmake --install "$BUILD" --prefix "$prefix" >"$IT_ROOT/install.log" 2>&1 \
    || { cat "$IT_ROOT/install.log" >&2; fail "cmake --install $BUILD failed"; }
pc=$(find "$prefix" -name ferry-plugin.pc -print -quit)
[ -n "$pc" ] || fail "cmake --install did not install ferry-plugin.pc under $prefix"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
incdir=$(pkg-config --variable=includedir ferry-plugin)
[ -f "$incdir/ferry/plugin.h" ] \
    || fail "ferry-plugin.pc ($pc) says includedir=$incdir, but ferry/plugin.h is not" \
            "there: the .pc file must follow --prefix (core/ferry-plugin.pc.in:" \
            "prefix=\${pcfiledir}/<path back from LIBDIR/pkgconfig>," \
            "includedir=\${prefix}/@CMAKE_INSTALL_INCLUDEDIR@)"

# --- 2. build the example the way its README says -----------------------------------
hello_build=$(tmpdir)
{ cmake -S "$SRC_ROOT/examples/plugin-hello" -B "$hello_build" -DCMAKE_BUILD_TYPE=Release \
    && cmake --build "$hello_build"; } >"$IT_ROOT/hello-build.log" 2>&1 \
    || { cat "$IT_ROOT/hello-build.log" >&2; fail "building examples/plugin-hello failed"; }
[ -f "$hello_build/ferry_hello.so" ] || fail "no ferry_hello.so in $hello_build"

# --- 3. the gateway loads it and the greetings arrive -------------------------------
cfgdir=$(tmpdir)
admin_port=$(free_port)
port_default=$(free_port)
port_custom=$(free_port)
cat >"$cfgdir/ferry.yaml" <<YAML
workers: 2
plugins_dir: $hello_build
log: { level: info, access: stdout }
admin: { listen: 127.0.0.1:$admin_port }
tenants:
  - { id: test, token: test-token }
listeners:
  - { name: hello-default, plugin: hello, listen: 127.0.0.1:$port_default }
  - name: hello-custom
    plugin: hello
    listen: 127.0.0.1:$port_custom
    greeting: "custom greeting from the test\n"
YAML

out=$("$FERRY" check -c "$cfgdir/ferry.yaml" 2>&1) \
    || fail "ferry check refused the hello config: $out"

start_bg ferry "$FERRY" gateway -c "$cfgdir/ferry.yaml"
ferry_pid=$BG_PID
wait_port 127.0.0.1 "$port_default" 15 "$ferry_pid" \
    || fail "ferry did not listen on 127.0.0.1:$port_default"
wait_port 127.0.0.1 "$port_custom" 5 "$ferry_pid" \
    || fail "ferry did not listen on 127.0.0.1:$port_custom"

# socat -u: read what the server sends until it closes; timeout bounds a hang.
got=$(timeout 10 socat -u "TCP:127.0.0.1:$port_default" - | od -An -c | tr -s ' ')
want=$(printf 'hello from ferry\n' | od -An -c | tr -s ' ')
[ "$got" = "$want" ] || fail "default greeting: got [$got], want [$want]"

got=$(timeout 10 socat -u "TCP:127.0.0.1:$port_custom" - | od -An -c | tr -s ' ')
want=$(printf 'custom greeting from the test\n' | od -An -c | tr -s ' ')
[ "$got" = "$want" ] || fail "greeting option: got [$got], want [$want]"

# Several clients at once: each gets its own whole line.
clients=()
for i in 1 2 3 4 5 6 7 8; do
    timeout 10 socat -u "TCP:127.0.0.1:$port_default" - >"$cfgdir/client.$i" &
    clients+=("$!")
done
for pid in "${clients[@]}"; do
    wait "$pid" || fail "a concurrent client failed (socat pid $pid)"
done
for i in 1 2 3 4 5 6 7 8; do
    [ "$(cat "$cfgdir/client.$i")" = "hello from ferry" ] \
        || fail "concurrent client $i got [$(cat "$cfgdir/client.$i")]"
done

# Every greeting (the 10 above, and wait_port's probes), counted by the plugin on its
# workers: as many as the access log's "greeted" lines.
got="" want=""
for ((i = 0; i < 50; i++)); do
    n=$(grep -c '"outcome":"greeted"' "$(bg_log ferry)" || true)
    want="ferry_plugin_greetings_total{plugin=\"hello\"} $n"
    got=$(curl -s --max-time 2 "http://127.0.0.1:$admin_port/metrics" \
          | grep '^ferry_plugin_greetings_total' || true)
    [ "$n" -ge 10 ] && [ "$got" = "$want" ] && break
    sleep 0.1
done
[ "$n" -ge 10 ] && [ "$got" = "$want" ] \
    || fail "/metrics: want [$want] (at least 10), got [$got]"

rc=0
stop_pid "$ferry_pid" 30 || rc=$?
[ "$rc" -eq 0 ] || fail "ferry exited with status $rc after SIGTERM (want 0)"

# --- 4. an option the plugin does not read is an error ------------------------------
cat >"$cfgdir/typo.yaml" <<YAML
plugins_dir: $hello_build
admin: { listen: 127.0.0.1:$admin_port }
tenants: [ { id: test, token: test-token } ]
listeners:
  - { name: hello, plugin: hello, listen: 127.0.0.1:$port_default, greting: "hi\n" }
YAML
rc=0
out=$("$FERRY" check -c "$cfgdir/typo.yaml" 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "ferry check on an unknown plugin option: exit $rc (want 2): $out"
grep -q "typo.yaml:[0-9]*:[0-9]*:.*greting" <<<"$out" \
    || fail "unknown option not reported as file:line:col with its name: $out"

# --- 5. a plugin with another ABI major is refused ----------------------------------
bad_dir=$(tmpdir)
cat >"$bad_dir/badabi.c" <<'C'
#include <ferry/plugin.h>

static void
badabi_on_accept(struct ferry_conn *c, void *state)
{
    (void)c;
    (void)state;
}

FERRY_PLUGIN_EXPORT const struct ferry_plugin ferry_plugin = {
    .abi_major   = 99,                      /* what a future, incompatible ferry would set */
    .abi_minor   = 0,
    .struct_size = sizeof(struct ferry_plugin),
    .name        = "badabi",
    .version     = "0.0.1",
    .on_accept   = badabi_on_accept,
};
C
# shellcheck disable=SC2046  # pkg-config prints several flags on purpose
cc -std=c11 -Wall -Wextra -fvisibility=hidden $(pkg-config --cflags --libs ferry-plugin) \
    -o "$bad_dir/ferry_badabi.so" "$bad_dir/badabi.c" 2>"$IT_ROOT/badabi-cc.log" \
    || { cat "$IT_ROOT/badabi-cc.log" >&2; fail "building the ABI-99 plugin failed"; }
cat >"$cfgdir/badabi.yaml" <<YAML
plugins_dir: $bad_dir
admin: { listen: 127.0.0.1:$admin_port }
tenants: [ { id: test, token: test-token } ]
listeners:
  - { name: bad, plugin: badabi, listen: 127.0.0.1:$port_default }
YAML
rc=0
out=$("$FERRY" check -c "$cfgdir/badabi.yaml" 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "ferry check with an ABI-99 plugin: exit $rc (want 2): $out"
grep -q "ferry_badabi.so" <<<"$out" || fail "ABI refusal does not name the file: $out"
grep -q "built for ferry plugin ABI 99.0, this ferry provides 1\.[0-9]*" <<<"$out" \
    || fail "ABI refusal does not name both versions: $out"

echo "ok: out-of-tree plugin built against the installed headers, loaded and served;" \
     "unknown option and ABI 99 refused"
