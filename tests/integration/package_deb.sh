#!/usr/bin/env bash
# package_deb.sh: the .deb packages install, work, pass lintian and purge cleanly.
#
#   bash tests/integration/package_deb.sh [BUILD_DIR]     (default: build; as root)
#
# 1. CPack makes ferry_<version>_<arch>.deb and ferry-dev_<version>_<arch>.deb from the
#    built tree (what `cmake --build BUILD --target package` does, without building),
#    into a temporary directory; their file lists and conffiles are as the brief says.
# 2. lintian on both: no E: tag (the W:/I: tags are printed).
# 3. dpkg -i both: `ferry --version` is this build's; `ferry check` passes on
#    /etc/ferry/ferry.yaml and connector.yaml, as root and as user ferry (the service's
#    user must read its files); plugins come from /usr/lib/<triplet>/ferry/plugins (the
#    binary's compiled-in prefix is another); ferry-plugin.pc names that folder.
# 4. `systemd-analyze verify` accepts both units (no systemd as PID 1 is needed: it
#    loads the unit files and checks the binary and man pages they name), and each
#    has the reload, restart, limit and hardening settings the brief asks for.
# 5. postinst configure again (as on an upgrade): the generated token and certificate
#    stay. (Not a second dpkg -i: its man-db trigger costs seconds, and the script is
#    what decides.)
# 6. dpkg --purge: the files, /etc/ferry, /var/lib/ferry, /var/log/ferry, the unit
#    enablement and the ferry user and group are gone.
#
# It installs system-wide, so: root only (exit 77 otherwise); one run at a time on the
# machine (flock on /run/lock/ferry-package-test.lock: two checkouts' suites may run it
# together); skipped with exit 77 for a sanitizer build (its binary needs the ASan
# runtime, and the normal build's run covers the packaging); skipped if a ferry package
# this test did not install is present, so a real installation is never purged.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

skip() {
    echo "SKIP: $(basename "$0"): $*"
    exit 77
}

FERRY=$BUILD/core/ferry
[ -x "$FERRY" ] || fail "no ferry binary at $FERRY (build first)"
if grep -q '^FERRY_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then
    skip "a sanitizer build ($BUILD): its binary needs the ASan runtime; the normal build's run tests the package"
fi
[ "$(id -u)" -eq 0 ] || skip "needs root: it installs the package with dpkg -i"
[ -f "$BUILD/CPackConfig.cmake" ] || fail "no $BUILD/CPackConfig.cmake (configure with this tree's CMakeLists)"

# lintian, systemd-analyze (package systemd), dpkg-shlibdeps and file (CPack's
# dependency list) and adduser (the package's postinst): tests/deps.sh has them all.
for tool in lintian systemd-analyze dpkg-shlibdeps file adduser; do
    command -v "$tool" >/dev/null 2>&1 && continue
    echo "package_deb: no $tool; running tests/deps.sh" >&2
    bash "$SRC_ROOT/tests/deps.sh" >&2 || fail "tests/deps.sh failed"
    break
done
for tool in lintian systemd-analyze dpkg-shlibdeps file adduser; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing after tests/deps.sh"
done

exec {lock}>>/run/lock/ferry-package-test.lock
flock -w 240 "$lock" || fail "another package_deb.sh holds /run/lock/ferry-package-test.lock"

MARK=/var/lib/ferry-package-test.installed
installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ] \
        || dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'half\|unpacked\|config-files'
}
purge_all() {
    dpkg --purge ferry-dev ferry >"$IT_ROOT/purge.log" 2>&1
}
if installed ferry || installed ferry-dev; then
    [ -e "$MARK" ] || skip "a ferry package is installed on this machine and this test did not install it: not touching it"
    echo "package_deb: purging what an interrupted run left installed" >&2
    purge_all || { cat "$IT_ROOT/purge.log" >&2; fail "could not purge the leftover ferry package"; }
fi
# Whatever happens from here, the machine ends without the packages.
trap 'if installed ferry || installed ferry-dev; then purge_all || true; fi; rm -f "$MARK"; cleanup' EXIT

t0=$(date +%s)
version=$("$FERRY" --version | awk '{ print $2 }')
arch=$(dpkg --print-architecture)
triplet=$(gcc -print-multiarch)
debs=$(tmpdir)

# --- 1. build the packages --------------------------------------------------------------
# The tree is built (ctest runs after the build), so CPack's "preinstall" step, `make
# preinstall` (all targets checked, 10-25 s on a shared 2-core machine) is skipped: with
# the Ninja generator named, CPack has no preinstall target to run and goes straight to
# the install scripts, which are the same for every generator.
cpack --config "$BUILD/CPackConfig.cmake" -B "$debs" -D CPACK_CMAKE_GENERATOR=Ninja \
    >"$IT_ROOT/cpack.log" 2>&1 \
    || { cat "$IT_ROOT/cpack.log" >&2; fail "cpack failed"; }
main=$debs/ferry_${version}_${arch}.deb
dev=$debs/ferry-dev_${version}_${arch}.deb
if [ ! -f "$main" ] || [ ! -f "$dev" ]; then
    fail "expected $(basename "$main") and $(basename "$dev"), cpack made: $(cd "$debs" && echo *.deb)"
fi
t_built=$(date +%s)
echo "package_deb: cpack took $((t_built - t0)) s"

# The file lists hold what the brief names, and no header in the main package.
dpkg-deb -c "$main" | awk '{ print $6 }' | sed 's|^\./|/|' >"$IT_ROOT/main.list"
dpkg-deb -c "$dev" | awk '{ print $6 }' | sed 's|^\./|/|' >"$IT_ROOT/dev.list"
printf '%s\n' /usr/bin/ferry /etc/ferry/ferry.yaml /etc/ferry/connector.yaml \
    /usr/lib/systemd/system/ferry-gateway.service /usr/lib/systemd/system/ferry-connector.service \
    /usr/share/man/man8/ferry.8.gz /usr/share/man/man5/ferry.yaml.5.gz \
    /usr/share/ferry/lua/ferry/auth/oauth2.lua \
    /usr/share/doc/ferry/copyright /usr/share/doc/ferry/changelog.gz \
    "/usr/lib/$triplet/ferry/plugins/ferry_"{tcp,http,socks5,ldap}.so >"$IT_ROOT/main.want"
printf '%s\n' /usr/include/ferry/plugin.h "/usr/lib/$triplet/pkgconfig/ferry-plugin.pc" \
    /usr/share/doc/ferry-dev/copyright >"$IT_ROOT/dev.want"
missing=$(grep -vxFf "$IT_ROOT/main.list" "$IT_ROOT/main.want" || true)
[ -z "$missing" ] || fail "$(basename "$main") lacks: $missing"
missing=$(grep -vxFf "$IT_ROOT/dev.list" "$IT_ROOT/dev.want" || true)
[ -z "$missing" ] || fail "$(basename "$dev") lacks: $missing"
! grep -q '^/usr/include/' "$IT_ROOT/main.list" || fail "headers in $(basename "$main")"
conffiles=$(dpkg-deb --info "$main" conffiles)
[ "$conffiles" = $'/etc/ferry/ferry.yaml\n/etc/ferry/connector.yaml' ] \
    || fail "conffiles of $(basename "$main"): '$conffiles'"

# --- 2. lintian (in the background: it only reads the files) ---------------------------
lintian --allow-root --display-info "$main" "$dev" >"$IT_ROOT/lintian.log" 2>&1 &
lintian_pid=$!

# --- 3. install, and the installed ferry works -------------------------------------------
touch "$MARK"
dpkg -i "$main" "$dev" >"$IT_ROOT/install.log" 2>&1 \
    || { cat "$IT_ROOT/install.log" >&2; fail "dpkg -i failed"; }
installed ferry || fail "ferry is not configured after dpkg -i"
[ "$(ferry --version)" = "ferry $version" ] || fail "installed ferry --version: $(ferry --version)"
[ "$(command -v ferry)" = /usr/bin/ferry ] || fail "ferry on PATH is $(command -v ferry)"
out=$(ferry check -c /etc/ferry/ferry.yaml 2>&1) \
    || fail "ferry check -c /etc/ferry/ferry.yaml: $out"
echo "$out"
getent passwd ferry >/dev/null || fail "postinst made no user ferry"
for cfg in ferry.yaml connector.yaml; do
    out=$(runuser -u ferry -- /usr/bin/ferry check -c /etc/ferry/$cfg 2>&1) \
        || fail "as user ferry, ferry check -c /etc/ferry/$cfg: $out"
done
# The plugins check loaded came from the package's folder, found relative to the binary
# (bin/../lib/<triplet>/ferry/plugins): the compiled-in prefix is the build's. Without
# that folder, check fails and names where it looked.
plugdir=/usr/lib/$triplet/ferry/plugins
mv "$plugdir" "$plugdir.off"
out=$(ferry check -c /etc/ferry/ferry.yaml 2>&1) && { mv "$plugdir.off" "$plugdir"; fail "check passed without $plugdir"; }
mv "$plugdir.off" "$plugdir"
[[ $out == *"/usr/bin/../lib/$triplet/ferry/plugins"* ]] \
    || fail "without $plugdir, expected check to name /usr/bin/../lib/$triplet/ferry/plugins: $out"
# The .pc file is relative to itself (${pcfiledir}/../../..): compare resolved paths.
pcdir=$(realpath -m "$(pkg-config --variable=plugindir ferry-plugin)")
[ "$pcdir" = "$plugdir" ] || fail "ferry-plugin.pc plugindir is $pcdir, not $plugdir"
pcinc=$(realpath -m "$(pkg-config --variable=includedir ferry-plugin)")
[ "$pcinc" = /usr/include ] || fail "ferry-plugin.pc includedir is $pcinc"
for d in /var/lib/ferry /var/lib/ferry/destinations /var/log/ferry; do
    [ "$(stat -c %U:%a "$d")" = ferry:750 ] || fail "$d is $(stat -c %U:%a "$d"), not ferry:750"
done
[ "$(stat -c %U:%G:%a /etc/ferry/tokens/default.token)" = root:ferry:640 ] \
    || fail "token file is $(stat -c %U:%G:%a /etc/ferry/tokens/default.token)"
openssl verify -CAfile /etc/ferry/tls/ca.crt /etc/ferry/tls/gateway.crt >/dev/null \
    || fail "the generated gateway certificate does not chain to the generated CA"

# --- 4. the units ---------------------------------------------------------------------
units=(/usr/lib/systemd/system/ferry-gateway.service /usr/lib/systemd/system/ferry-connector.service)
man_opt=()
command -v man >/dev/null 2>&1 || man_opt=(--man=no)   # Documentation=man: needs man-db
out=$(systemd-analyze verify ${man_opt[@]+"${man_opt[@]}"} "${units[@]}" 2>&1) \
    || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
for u in "${units[@]}"; do
    # shellcheck disable=SC2016  # $MAINPID is the unit's, literally
    for want in 'User=ferry' 'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' \
                'LimitNOFILE=65536' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
                'ReadWritePaths=/var/lib/ferry /var/log/ferry' 'PrivateTmp=yes' \
                'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' \
                'SystemCallFilter=@system-service'; do
        grep -qxF "$want" "$u" || fail "$u lacks '$want'"
    done
done
[ -L /etc/systemd/system/multi-user.target.wants/ferry-gateway.service ] \
    || fail "postinst did not enable ferry-gateway.service"
[ ! -e /etc/systemd/system/multi-user.target.wants/ferry-connector.service ] \
    || fail "postinst enabled ferry-connector.service (it needs its site's configuration first)"

# --- 5. postinst again, as on an upgrade: what it generated stays ------------------------
token=$(md5sum </etc/ferry/tokens/default.token)
cert=$(md5sum </etc/ferry/tls/gateway.crt)
/var/lib/dpkg/info/ferry.postinst configure "$version" >"$IT_ROOT/reconfigure.log" 2>&1 \
    || { cat "$IT_ROOT/reconfigure.log" >&2; fail "postinst configure $version failed"; }
[ "$(md5sum </etc/ferry/tokens/default.token)" = "$token" ] || fail "postinst replaced the token"
[ "$(md5sum </etc/ferry/tls/gateway.crt)" = "$cert" ] || fail "postinst replaced the certificate"

# --- 2, continued: lintian's verdict -------------------------------------------------------
echo "package_deb: installed and checked at $(($(date +%s) - t0)) s"
wait "$lintian_pid" || true          # exit 2 for E: tags, 1 for others: the log decides
grep -v '^running with root privileges' "$IT_ROOT/lintian.log" || true
if grep -q '^E: ' "$IT_ROOT/lintian.log"; then
    fail "lintian reports errors (above)"
fi

# --- 6. purge ---------------------------------------------------------------------------
purge_all || { cat "$IT_ROOT/purge.log" >&2; fail "dpkg --purge failed"; }
rm -f "$MARK"
for p in ferry ferry-dev; do
    ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv not-installed \
        || fail "$p still known to dpkg after purge: $(dpkg-query -W -f='${Status}' "$p")"
done
for f in /usr/bin/ferry "/usr/lib/$triplet/ferry" /usr/share/ferry /usr/include/ferry \
         /etc/ferry /var/lib/ferry /var/log/ferry "${units[@]}" \
         /etc/systemd/system/multi-user.target.wants/ferry-gateway.service; do
    if [ -e "$f" ] || [ -L "$f" ]; then fail "$f is still there after purge"; fi
done
! getent passwd ferry >/dev/null || fail "user ferry is still there after purge"
! getent group ferry >/dev/null || fail "group ferry is still there after purge"

t_end=$(date +%s)
echo "ok: $(basename "$main") ($(stat -c %s "$main") bytes) and $(basename "$dev") built" \
     "in $((t_built - t0)) s; installed, checked, lint-free of errors, reconfigured and purged" \
     "($((t_end - t0)) s in all)"
