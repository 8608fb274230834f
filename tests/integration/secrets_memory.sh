#!/usr/bin/env bash
# secrets_memory.sh: a credential ferry refused is not left in its memory.
#
#   bash tests/integration/secrets_memory.sh [BUILD_DIR]     (default: build)
#
# One gateway with tenant acme, a socks5 listener (auth tenant) and an http forward
# listener (auth tenant). Wrong credentials, each a unique random string, are sent the
# ways clients send them:
#   socks5 RFC 1929 password; socks5 SAP 0x80 token;
#   http Proxy-Authorization: Basic (user:password, base64) and Bearer;
# each is refused (01 01; 407). Once every refusal is in the access log (the connection
# is gone), tools/memscan.py reads the process's memory through /proc/PID/mem: none of
# the wrong secrets (nor the Basic header's base64) may be found. As controls, the
# scan must find acme's own token, which ferry holds by design, and the path of a
# request head still arriving on a held connection (unconsumed input).
# Without the wiping in ferry (core's handshake and client input buffers; the plugins'
# explicit_bzero), the bytes stay in freed or pooled buffers and are found.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/socks5_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/socks5_lib.sh"

[ -r /proc/self/mem ] || { echo "SKIP: /proc/PID/mem is not readable here" >&2; exit 0; }

dir=$(tmpdir)
rnd() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
token="acme-$(rnd)"
s5_pass="s5pass-$(rnd)"
s5_token="s5tok-$(rnd)"
basic_pass="basicpw-$(rnd)"
bearer="bearer-$(rnd)"
basic_b64=$(printf 'acme:%s' "$basic_pass" | base64 -w0)
marker="plainpath-$(rnd)"

mkdir "$dir/www"
echo ok >"$dir/www/index.txt"
http_origin origin "$dir/www"
op=$HTTP_PORT
admin=$(free_port)
ls_socks=$(free_port)
ls_http=$(free_port)
access=$dir/access.log
cat >"$dir/ferry.yaml" <<YAML
workers: 1
plugins_dir: $PLUGINS
log: { level: debug, access: $access }
admin: { listen: 127.0.0.1:$admin }
drain_timeout_ms: 3000
tenants: [ { id: acme, token: $token } ]
listeners:
  - name: socks
    plugin: socks5
    listen: 127.0.0.1:$ls_socks
    auth: tenant
    egress: [ "127.0.0.1:$op" ]
  - name: proxy
    plugin: http
    listen: 127.0.0.1:$ls_http
    mode: forward
    egress: [ "127.0.0.1:$op" ]
YAML
start_ferry "$dir/ferry.yaml" "$admin"

# scan WHAT NEEDLE...: scan ferry's memory for the needles (output in SCAN).
scan() {
    SCAN=$(python3 "$TOOLS/memscan.py" "$FERRY_PID" "$@") || fail "memscan.py: $SCAN"
}
count() { jq -r --arg k "$1" '.counts[$k]' <<<"$SCAN"; }
# gone LISTENER N WHAT SECRET...: once the listener's Nth access line is written (the
# refused connection is over), none of the secrets may be in ferry's memory. Checked
# after each refusal: a later connection would reuse, and so overwrite, the buffers.
gone() {
    local listener=$1 n=$2 what=$3 s
    shift 3
    wait_access "$access" "$listener" "$n" 30
    scan "$@"
    for s in "$@"; do
        [ "$(count "$s")" -eq 0 ] ||
            fail_later "the refused $what is still in ferry's memory ($(count "$s") times)"
    done
}

s5_must "RFC 1929, wrong password" handshake --port "$ls_socks" --user acme \
    --password "$s5_pass" --expect-auth 0101
gone socks 1 "socks5 RFC 1929 password" "$s5_pass"
s5_must "0x80, wrong token" handshake --port "$ls_socks" --methods 80 --token "$s5_token" \
    --expect-auth 0101
gone socks 2 "socks5 0x80 token" "$s5_token"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -x "http://127.0.0.1:$ls_http" \
    --proxy-user "acme:$basic_pass" "http://127.0.0.1:$op/index.txt") || true
[ "$code" = 407 ] || fail "http Basic with a wrong password: want 407, got $code"
gone proxy 1 "http Basic password (or its base64)" "$basic_pass" "$basic_b64"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -x "http://127.0.0.1:$ls_http" \
    --proxy-header "Proxy-Authorization: Bearer $bearer" "http://127.0.0.1:$op/index.txt") || true
[ "$code" = 407 ] || fail "http Bearer with a wrong token: want 407, got $code"
gone proxy 2 "http Bearer token" "$bearer"

# The controls: acme's token (ferry holds it by design) and a request head that has
# not ended yet, held open, unconsumed in ferry's input buffer, must be found (scanned
# until it is: the read happens when ferry gets to it).
exec 7<>"/dev/tcp/127.0.0.1/$ls_http"
printf 'GET http://127.0.0.1:%s/%s HTTP/1.1\r\n' "$op" "$marker" >&7
for ((i = 0; i < 200; i++)); do
    scan "$token" "$marker"
    [ "$(count "$marker")" -eq 0 ] || break
    sleep 0.1
done
exec 7>&-
scanned=$(jq -r .scanned <<<"$SCAN")
[ "$(count "$token")" -ge 1 ] || fail "control: acme's token is not found in ferry's memory" \
    "($scanned bytes scanned): the scan does not see the heap"
[ "$(count "$marker")" -ge 1 ] || fail "control: a held request head is not found in ferry's" \
    "memory ($scanned bytes scanned): the scan does not see where requests are read"
grep -qF -e "$s5_pass" -e "$s5_token" -e "$basic_pass" -e "$bearer" "$FERRY_LOG" "$access" &&
    fail_later "a refused secret is in ferry's log"
stop_ferry
fail_deferred
echo "ok: refused socks5 (RFC 1929, 0x80) and http (Basic, Bearer) credentials are not in" \
     "ferry's memory ($scanned bytes scanned; controls found)"
