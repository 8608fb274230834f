#!/usr/bin/env bash
# tests/deps.sh: install the Debian packages ferry needs to build, test and run.
#
#   bash tests/deps.sh            build + test/run tools
#   bash tests/deps.sh --bench    the same, then tests/bench/deps.sh (benchmark peers)
#   bash tests/deps.sh PKG...     the same, plus the packages named
#
# Idempotent: asks dpkg first and touches apt only when something is missing, so a
# second run costs a few dpkg calls. Works as root on a fresh Debian 12 with nothing
# but its apt sources; as another user it uses sudo, and only if it has to install.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Compilers, build tools and the libraries core and plugins link against.
build_pkgs=(cmake gcc libc6-dev make pkg-config
            libevent-dev libssl-dev libyaml-dev libcunit1-dev
            liblua5.4-dev libnghttp2-dev libjansson-dev)
# What the integration tests and examples/quickstart.sh drive or run beside ferry
# (slapd: each ldap test starts its own, etcd-server each store test; the packages' system
# services are never used). package_deb.sh: CPack's dependency list (dpkg-shlibdeps from
# dpkg-dev, file), lintian, systemd-analyze (systemd; never started) and the package's
# own dependency adduser. monitoring.sh: promtool, which Debian ships only in prometheus
# (its server is never started). unit_syscalls.sh and tests/faults/dest_write_kill.sh
# (kills the gateway at chosen system calls): strace.
tool_pkgs=(curl openssl socat python3 python3-socks netcat-openbsd haproxy procps iproute2
           slapd ldap-utils jq yamllint python3-yaml etcd-server etcd-client
           dpkg-dev file lintian systemd adduser prometheus strace)
# kubectl renders deploy/kubernetes (k8s_manifests.sh). Debian's is kubernetes-client;
# a kubectl installed another way is kept (both ship /usr/bin/kubectl).
command -v kubectl >/dev/null 2>&1 || tool_pkgs+=(kubernetes-client)

bench=0
extra=()
for arg in "$@"; do
    case $arg in
        --bench) bench=1 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "deps.sh: unknown option '$arg'" >&2; exit 2 ;;
        *) extra+=("$arg") ;;
    esac
done

# One dpkg-query, no pipe: `dpkg -s | grep -q` under pipefail failed whenever grep quit
# before dpkg had written its long output (SIGPIPE), calling an installed package
# missing, at random and more often on a loaded machine.
is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for pkg in "${build_pkgs[@]}" "${tool_pkgs[@]}" ${extra[@]+"${extra[@]}"}; do
    is_installed "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all packages present"
else
    echo "deps: installing ${missing[*]}"
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "deps: missing ${missing[*]}; run as root (or install sudo)" >&2
            exit 1
        fi
        sudo_cmd=(sudo)
    fi
    # The package lists of a fresh machine are empty: update once, only when needed.
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    still=()
    for pkg in "${missing[@]}"; do
        is_installed "$pkg" || still+=("$pkg")
    done
    if [ ${#still[@]} -ne 0 ]; then
        echo "deps: still missing after apt-get: ${still[*]}" >&2
        exit 1
    fi
fi

if [ "$bench" -eq 1 ]; then
    exec bash "$here/bench/deps.sh"
fi
