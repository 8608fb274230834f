#!/usr/bin/env bash
# tests/bench/deps.sh: the peers ferry is benchmarked against, on top of tests/deps.sh.
# Run by `bash tests/deps.sh --bench`, or directly. Not needed to build or test.
#
# Add a peer here when a benchmark starts using it; today: haproxy, socat (tcp), stunnel4
# and ssh (tunnel), microsocks and dante-server (socks5), nginx (http: origin and proxy),
# slapd and ldap-utils (ldap: the server and the client; HAProxy is the peer),
# libnginx-mod-http-lua (policy: OpenResty-style rewrite_by_lua).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

bench_pkgs=(haproxy socat stunnel4 openssh-server openssh-client curl microsocks dante-server nginx
            slapd ldap-utils libnginx-mod-http-lua)

exec bash "$here/../deps.sh" "${bench_pkgs[@]}"
