#!/usr/bin/env bash
# ldap_basic.sh: the ldap plugin against a real OpenLDAP slapd (Internet destinations).
#
#   bash tests/integration/ldap_basic.sh [BUILD_DIR]     (default: build)
#
# Our own slapd (tools/ldap_lib.sh: dc=example,dc=org, anonymous may only bind, the
# service account cn=ferry reads everything and writes ou=people), with ldap:// and
# ldaps:// (a test CA). Gateway A, one listener per destination:
# 1. Bind injection (destination `main`: ldap.user/ldap.password): an anonymous
#    ldapsearch finds the 4 users (slapd saw ferry's BIND as cn=ferry, and anonymous
#    alone gets nothing, checked directly); `-D uid=someone -w wrong` works too and
#    slapd never sees that DN (ferry answered the bind); a SASL bind gets
#    authMethodNotSupported (7); whoami says cn=ferry; a client StartTLS gets
#    unavailable (52) and the connection goes on; an unbind closes the connection;
#    ldapmodify (anonymous, no policy) changes alice's mail.
# 2. Without ldap.user binds pass through: anonymous gets insufficientAccess (50) from
#    slapd, the service account's own bind finds the users, a wrong password is 49.
# 3. TLS upstream: ldaps:// with TrustStoreLocation (by IP and by name localhost) and
#    ldap:// with ldap.startTLS (slapd logs the StartTLS and the TLS session) work;
#    ldaps:// with another CA or none, and StartTLS with another CA: the client is
#    closed (Notice of Disconnection or a plain close) and gets no entry.
# 4. Framing: a 4 GiB length, a SET outer tag, an indefinite length, 5 length octets,
#    a messageID that is no INTEGER, a protocolOp that is no [APPLICATION n], an inner
#    TLV overrunning its message and a 2 MiB message (max_message_bytes 1 MiB): each
#    client gets a Notice of Disconnection (messageID 0, OID 1.3.6.1.4.1.1466.20036,
#    protocolError 2, a diagnosticMessage) and the close, while an ldapsearch feeding
#    filters on another connection and a held session go on unharmed, and ferry serves
#    new connections after. A listener with max_message_bytes 4096: an entry from
#    slapd over it closes the client (no searchResDone success).
# 5. Upstream trouble: nothing listening -> the client is closed (ldapsearch: "Can't
#    contact LDAP server" or a Notice of Disconnection); a wrong ldap.password -> Notice
#    of Disconnection unavailable (52) naming the failed upstream bind (49); a silent
#    upstream with upstream_timeout_ms 1000 -> Notice unavailable (52) and the close
#    within seconds; a silent upstream with bind_timeout_ms 1000 -> the close.
# 6. The access log has one "request" line per operation (protocol ldap, method
#    search/bind/modify, path = DN, status = result code); /metrics has
#    ferry_ldap_operations_total{listener,destination,result}; the service password
#    appears in no log.
# Gateway B (a policy; kept apart so that a build without `policy:` fails only this):
# 7. Destination with examples/policies/ldap-read-only.lua: ldapmodify gets
#    insufficientAccessRights (50); on one raw connection add/delete/modrdn get
#    AddResponse/DelResponse/ModDNResponse 50, compare, whoami and search are served,
#    and slapd never saw the writes.
# Every ferry exits 0 on SIGTERM with no sanitizer report.
# shellcheck disable=SC2015  # `[ check ] && [ check ] || fail…`: fail… is the else
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/tools/tcp_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tcp_lib.sh"
# shellcheck source=tests/integration/tools/tunnel_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/tunnel_lib.sh"
# shellcheck source=tests/integration/tools/ldap_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools/ldap_lib.sh"

[ -f "$PLUGINS/ferry_ldap.so" ] || fail "no ldap plugin at $PLUGINS/ferry_ldap.so (build first)"

dir=$(tmpdir)
ldap_certs "$dir"
start_slapd slapd "$dir"
sp=$SLAPD_PORT sps=$SLAPDS_PORT slapd_log=$SLAPD_LOG
start_origin silent sink                 # accepts, reads, never answers
silent_port=$ORIGIN_PORT
dead_port=$(free_port)                   # nothing listens there
NOD=1.3.6.1.4.1.1466.20036
ALL_UIDS="alice bob carol dave"
DIRECT=ldap://127.0.0.1:$sp
SVC=(-D "$LDAP_SVC_DN" -w "$LDAP_SVC_PW")

# The directory's rules hold: anonymous reads nothing, the service account everything.
lsearch "$DIRECT" -b "$LDAP_BASE" '(uid=*)' uid
[ -z "$(uids "$LS_OUT")" ] || fail "slapd lets anonymous read (rc $LS_RC): $LS_OUT"
lsearch "$DIRECT" "${SVC[@]}" -b "$LDAP_BASE" '(uid=*)' uid
[ "$LS_RC" = 0 ] && [ "$(uids "$LS_OUT")" = "$ALL_UIDS" ] ||
    fail "slapd: the service account cannot read the users (rc $LS_RC): $LS_OUT"

admin=$(free_port)
declare -A L
for n in inj plain ldaps ldaps-host ldaps-otherca ldaps-nostore starttls starttls-otherca \
         down badsvc silent silentbind small; do
    L[$n]=$(free_port)
done
access=$dir/access.log
export FERRY_TEST_LDAP_PW=$LDAP_SVC_PW
cat >"$dir/gw.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $access }
admin: { listen: 127.0.0.1:$admin }
destinations:
  - Name: main
    Type: LDAP
    ldap.url: "ldap://127.0.0.1:$sp"
    ldap.proxyType: Internet
    ldap.authentication: BasicAuthentication
    ldap.user: "$LDAP_SVC_DN"
    ldap.password: "$LDAP_SVC_PW"
  - { Name: plain, Type: LDAP, ldap.url: "ldap://127.0.0.1:$sp", ProxyType: Internet }
  - Name: ldaps
    Type: LDAP
    ldap.url: "ldaps://127.0.0.1:$sps"
    ldap.authentication: BasicAuthentication
    ldap.user: "$LDAP_SVC_DN"
    ldap.password: "\${env:FERRY_TEST_LDAP_PW}"
    TrustStoreLocation: ldapca.crt
  - { Name: ldaps-host, Type: LDAP, ldap.url: "ldaps://localhost:$sps", ldap.user: "$LDAP_SVC_DN",
      ldap.password: "$LDAP_SVC_PW", TrustStoreLocation: ldapca.crt }
  - { Name: ldaps-otherca, Type: LDAP, ldap.url: "ldaps://127.0.0.1:$sps", ldap.user: "$LDAP_SVC_DN",
      ldap.password: "$LDAP_SVC_PW", TrustStoreLocation: ldapca2.crt }
  - { Name: ldaps-nostore, Type: LDAP, ldap.url: "ldaps://127.0.0.1:$sps", ldap.user: "$LDAP_SVC_DN",
      ldap.password: "$LDAP_SVC_PW" }
  - { Name: starttls, Type: LDAP, ldap.url: "ldap://localhost:$sp", ldap.startTLS: "true",
      ldap.user: "$LDAP_SVC_DN", ldap.password: "$LDAP_SVC_PW", TrustStoreLocation: ldapca.crt }
  - { Name: starttls-otherca, Type: LDAP, ldap.url: "ldap://127.0.0.1:$sp", ldap.startTLS: "true",
      ldap.user: "$LDAP_SVC_DN", ldap.password: "$LDAP_SVC_PW", TrustStoreLocation: ldapca2.crt }
  - { Name: down, Type: LDAP, ldap.url: "ldap://127.0.0.1:$dead_port", ldap.user: "$LDAP_SVC_DN",
      ldap.password: "$LDAP_SVC_PW" }
  - { Name: badsvc, Type: LDAP, ldap.url: "ldap://127.0.0.1:$sp", ldap.user: "$LDAP_SVC_DN",
      ldap.password: not-the-password }
  - { Name: silent, Type: LDAP, ldap.url: "ldap://127.0.0.1:$silent_port" }
  - { Name: silentbind, Type: LDAP, ldap.url: "ldap://127.0.0.1:$silent_port", ldap.user: "$LDAP_SVC_DN",
      ldap.password: "$LDAP_SVC_PW" }
listeners:
  - { name: inj, plugin: ldap, listen: "127.0.0.1:${L[inj]}", destination: main }
  - { name: plain, plugin: ldap, listen: "127.0.0.1:${L[plain]}", destination: plain }
  - { name: ldaps, plugin: ldap, listen: "127.0.0.1:${L[ldaps]}", destination: ldaps }
  - { name: ldaps-host, plugin: ldap, listen: "127.0.0.1:${L[ldaps-host]}", destination: ldaps-host }
  - { name: ldaps-otherca, plugin: ldap, listen: "127.0.0.1:${L[ldaps-otherca]}", destination: ldaps-otherca }
  - { name: ldaps-nostore, plugin: ldap, listen: "127.0.0.1:${L[ldaps-nostore]}", destination: ldaps-nostore }
  - { name: starttls, plugin: ldap, listen: "127.0.0.1:${L[starttls]}", destination: starttls }
  - { name: starttls-otherca, plugin: ldap, listen: "127.0.0.1:${L[starttls-otherca]}", destination: starttls-otherca }
  - { name: down, plugin: ldap, listen: "127.0.0.1:${L[down]}", destination: down }
  - { name: badsvc, plugin: ldap, listen: "127.0.0.1:${L[badsvc]}", destination: badsvc }
  - { name: silent, plugin: ldap, listen: "127.0.0.1:${L[silent]}", destination: silent,
      upstream_timeout_ms: 1000 }
  - { name: silentbind, plugin: ldap, listen: "127.0.0.1:${L[silentbind]}", destination: silentbind,
      bind_timeout_ms: 1000 }
  - { name: small, plugin: ldap, listen: "127.0.0.1:${L[small]}", destination: main,
      max_message_bytes: 4096 }
YAML
out=$("$FERRY" check -c "$dir/gw.yaml" 2>&1) || fail "ferry check rejects the config: $out"
start_gateway gateway "$dir/gw.yaml" "$admin"
gw_pid=$GW_PID gw_log=$GW_LOG
url() { echo "ldap://127.0.0.1:${L[$1]}"; }

# slapd_count REGEX: lines of slapd's log matching REGEX.
slapd_count() {
    grep -Ec -- "$1" "$slapd_log" || true
}

# --- 1. bind injection ------------------------------------------------------------------
lsearch "$(url inj)" -b "$LDAP_BASE" '(uid=*)' uid mail
[ "$LS_RC" = 0 ] && [ "$(uids "$LS_OUT")" = "$ALL_UIDS" ] ||
    fail "anonymous ldapsearch through ferry (bind injected): want rc 0 and uids '$ALL_UIDS'," \
         "got rc $LS_RC: $LS_OUT"
grep -q '^mail: alice@example.org' <<<"$LS_OUT" || fail_later "no mail attribute for alice: $LS_OUT"
[ "$(slapd_count "BIND dn=\"$LDAP_SVC_DN\" method=128")" -ge 1 ] ||
    fail "slapd never saw ferry's simple bind as $LDAP_SVC_DN"
lsearch "$(url inj)" -D uid=someone -w wrong -b "$LDAP_BASE" '(uid=bob)' uid
[ "$LS_RC" = 0 ] && [ "$(uids "$LS_OUT")" = bob ] ||
    fail_later "ldapsearch -D uid=someone -w wrong through ferry: want rc 0 and bob" \
               "(ferry answers binds itself), got rc $LS_RC: $LS_OUT"
[ "$(slapd_count 'BIND dn="uid=someone')" = 0 ] ||
    fail_later "slapd saw the client's bind as uid=someone: ferry forwarded a client bind"
ldap_py --port "${L[inj]}" "sasl=EXTERNAL" "search=$LDAP_BASE:(uid=carol)"
[ "$(lp_get results.0.op)" = bindResponse ] && [ "$(lp_get results.0.rc)" = 7 ] ||
    fail_later "SASL bind through ferry: want bindResponse authMethodNotSupported (7): $LP_OUT"
[ "$(lp_get results.1.rc)" = 0 ] && [ "$(lp_get results.1.entries)" = 1 ] ||
    fail_later "a search after the refused SASL bind, same connection: want 1 entry: $LP_OUT"
ldap_py --port "${L[inj]}" whoami
[ "$(lp_get results.0.rc)" = 0 ] && [ "$(lp_get results.0.value)" = "dn:$LDAP_SVC_DN" ] ||
    fail_later "whoami through ferry: want rc 0 and dn:$LDAP_SVC_DN: $LP_OUT"
ldap_py --port "${L[inj]}" bind starttls "search=$LDAP_BASE:(uid=alice)"
[ "$(lp_get results.1.op)" = extendedResp ] && [ "$(lp_get results.1.rc)" = 52 ] ||
    fail_later "client StartTLS: want ExtendedResponse unavailable (52): $LP_OUT"
[ "$(lp_get results.2.rc)" = 0 ] && [ "$(lp_get results.2.entries)" = 1 ] ||
    fail_later "a search after the refused StartTLS, same connection: want 1 entry: $LP_OUT"
ldap_py --port "${L[inj]}" --timeout 5 bind "search=$LDAP_BASE:(uid=dave)" unbind
[ "$(lp_get results.1.entries)" = 1 ] && [ "$(lp_get closed)" = eof ] ||
    fail_later "bind, search, unbind: want 1 entry and then the close (eof): $LP_OUT"
cat >"$dir/mod-alice.ldif" <<LDIF
dn: uid=alice,$LDAP_PEOPLE
changetype: modify
replace: mail
mail: alice.new@example.org
LDIF
lmodify "$(url inj)" "$dir/mod-alice.ldif"
[ "$LM_RC" = 0 ] || fail_later "ldapmodify through ferry (no policy): want rc 0, got $LM_RC: $LM_OUT"
lsearch "$DIRECT" "${SVC[@]}" -b "$LDAP_PEOPLE" '(uid=alice)' mail
grep -q '^mail: alice.new@example.org' <<<"$LS_OUT" ||
    fail_later "after ldapmodify through ferry slapd has: $LS_OUT"

# --- 2. no ldap.user: binds pass through --------------------------------------------------
lsearch "$(url plain)" -b "$LDAP_BASE" '(uid=*)' uid
[ -z "$(uids "$LS_OUT")" ] ||
    fail_later "anonymous through a destination without ldap.user got entries: $LS_OUT"
[ "$LS_RC" = 50 ] || fail_later "anonymous through the pass-through destination: want slapd's 50, got $LS_RC: $LS_OUT"
lsearch "$(url plain)" "${SVC[@]}" -b "$LDAP_BASE" '(uid=*)' uid
[ "$LS_RC" = 0 ] && [ "$(uids "$LS_OUT")" = "$ALL_UIDS" ] ||
    fail_later "the client's own bind through the pass-through destination: rc $LS_RC: $LS_OUT"
lsearch "$(url plain)" -D "$LDAP_SVC_DN" -w wrong -b "$LDAP_BASE" '(uid=*)' uid
[ "$LS_RC" = 49 ] || fail_later "wrong password, pass-through: want slapd's 49, got $LS_RC: $LS_OUT"

# --- 3. TLS to the server -------------------------------------------------------------------
for n in ldaps ldaps-host starttls; do
    lsearch "$(url "$n")" -b "$LDAP_BASE" '(uid=*)' uid
    [ "$LS_RC" = 0 ] && [ "$(uids "$LS_OUT")" = "$ALL_UIDS" ] ||
        fail_later "destination $n: want rc 0 and uids '$ALL_UIDS', got rc $LS_RC: $LS_OUT"
done
[ "$(slapd_count 'EXT oid=1.3.6.1.4.1.1466.20037')" -ge 1 ] ||
    fail_later "slapd logged no StartTLS request (ldap.startTLS: true)"
[ "$(slapd_count 'TLS established')" -ge 3 ] ||
    fail_later "slapd logged $(slapd_count 'TLS established') TLS sessions, want >= 3 (ldaps, ldaps-host, starttls)"
for n in ldaps-otherca ldaps-nostore starttls-otherca; do
    lsearch "$(url "$n")" -b "$LDAP_BASE" '(uid=*)' uid
    if [ "$LS_RC" = 0 ] || [ -n "$(uids "$LS_OUT")" ]; then
        fail_later "destination $n (certificate not trusted): want a failure, got rc $LS_RC: $LS_OUT"
    fi
    ldap_py --port "${L[$n]}" --timeout 5 close
    case "$(lp_get closed)" in
        eof | reset) ;;
        *) fail_later "destination $n (certificate not trusted): want the client closed: $LP_OUT" ;;
    esac
done

# --- 4. framing ---------------------------------------------------------------------------
# An ldapsearch on one connection, fed filters through a FIFO while the malformed
# clients come and go, and a held raw session. The FIFO's writer is this shell's fd 7:
# what runs in the background closes it, or the ldapsearch would never see its end.
mkfifo "$dir/filters"
exec 7<>"$dir/filters"
start_bg bg-search bash -c 'exec 7>&-; exec "$@"' _ timeout 120 ldapsearch -x -LLL \
    -o nettimeout=10 -H "$(url inj)" -b "$LDAP_BASE" -f "$dir/filters" '(uid=%s)' uid
bg_pid=$BG_PID bg_out=$(bg_log bg-search)
echo alice >&7
wait_log "$bg_out" '^uid: alice' 10 "$bg_pid" || fail "the background ldapsearch found no alice: $(cat "$bg_out")"
# Its wait for held.go is bounded by the test's own deadline (ctest: 300 s), not by a
# guess at how long the malformed clients take on a loaded machine.
start_bg held bash -c 'exec 7>&-; exec "$@"' _ python3 "$LDAP_TOOLS/ldap_client.py" --port "${L[inj]}" --timeout 250 bind \
    "search=$LDAP_BASE:(uid=bob)" "touch=$dir/held.ready" "wait=$dir/held.go" \
    "search=$LDAP_BASE:(uid=carol)"
held_pid=$BG_PID
wait_file "$dir/held.ready" 10 "$held_pid" || fail "the held session did not start: $(cat "$(bg_log held)")"
declare -A BAD=(
    [length-4GiB]=3084ffffffff
    [outer-tag-SET]=31050201014200
    [indefinite-length]=30800201014200000000
    [five-length-octets]=308500000000050201014200
    [messageID-not-INTEGER]=30050401014200
    [protocolOp-not-APPLICATION]=30050201010400
    [inner-TLV-overrun]=30070201016310040000
)
nbad=0
for what in "${!BAD[@]}" 2MiB-message; do
    if [ "$what" = 2MiB-message ]; then
        ldap_py --port "${L[inj]}" --timeout 10 big=2097152 close
    else
        ldap_py --port "${L[inj]}" --timeout 10 "raw=${BAD[$what]}" close
    fi
    nbad=$((nbad + 1))
    echo bob >&7
    case "$(lp_get closed)" in
        eof | reset) ;;
        *) fail_later "malformed ($what): want the close, got: $LP_OUT"; continue ;;
    esac
    if [ "$(lp_get notice.id)" != 0 ] || [ "$(lp_get notice.op)" != extendedResp ] ||
       [ "$(lp_get notice.oid)" != "$NOD" ] || [ "$(lp_get notice.rc)" != 2 ] ||
       [ -z "$(lp_get notice.diag)" ]; then
        fail_later "malformed ($what): want a Notice of Disconnection (id 0, OID $NOD," \
                   "protocolError 2, a diagnosticMessage) before the close, got: $LP_OUT"
    fi
done
echo carol >&7
exec 7>&-
wait_exit "$bg_pid" 30 || fail "the background ldapsearch did not finish after its FIFO closed"
[ "$WAIT_RC" = 0 ] || fail_later "the background ldapsearch (next to the malformed clients) exited $WAIT_RC: $(tail -n 5 "$bg_out")"
n=$(grep -c '^uid: ' "$bg_out" || true)
[ "$n" = $((nbad + 2)) ] ||
    fail_later "the background ldapsearch got $n entries over its one connection, want $((nbad + 2))"
touch "$dir/held.go"
wait_exit "$held_pid" 20 || fail "the held session did not finish"
LP_OUT=$(cat "$(bg_log held)")
[ "$(lp_get results.1.entries)" = 1 ] && [ "$(lp_get results.2.entries)" = 1 ] &&
    [ "$(lp_get results.2.rc)" = 0 ] ||
    fail_later "the held session across the malformed clients: want 1 entry before and after: $LP_OUT"
lsearch "$(url inj)" -b "$LDAP_BASE" '(uid=*)' uid
[ "$(uids "$LS_OUT")" = "$ALL_UIDS" ] || fail "ferry does not serve after the malformed clients: rc $LS_RC: $LS_OUT"
# An entry over max_message_bytes (4096) from the server.
printf 'dn: uid=carol,%s\nchangetype: modify\nreplace: description\ndescription: %s\n' \
    "$LDAP_PEOPLE" "$(head -c 8192 /dev/zero | tr '\0' x)" >"$dir/big-carol.ldif"
lmodify "$DIRECT" "$dir/big-carol.ldif" "${SVC[@]}"
[ "$LM_RC" = 0 ] || fail "setting an 8 KiB description on carol (direct): $LM_OUT"
ldap_py --port "${L[small]}" bind "search=$LDAP_BASE:(uid=alice)"
[ "$(lp_get results.1.entries)" = 1 ] || fail_later "listener small: a small entry: $LP_OUT"
ldap_py --port "${L[small]}" --timeout 10 bind "search=$LDAP_BASE:(uid=carol)" close
if [ "$(lp_get results.1.op)" = searchResDone ] && [ "$(lp_get results.1.rc)" = 0 ]; then
    fail_later "listener small (max_message_bytes 4096): an 8 KiB entry came through: $LP_OUT"
fi
case "$(lp_get closed)" in
    eof | reset) ;;
    *) fail_later "listener small: an entry over max_message_bytes: want the close: $LP_OUT" ;;
esac

# --- 5. upstream trouble ------------------------------------------------------------------
lsearch "$(url down)" -b "$LDAP_BASE" '(uid=*)' uid
if [ "$LS_RC" = 0 ] || ! grep -Eqi "can't contact|unavailable|\(52\)" <<<"$LS_OUT"; then
    fail_later "upstream down: want ldapsearch to fail with Can't contact LDAP server or a" \
               "Notice of Disconnection, got rc $LS_RC: $LS_OUT"
fi
ldap_py --port "${L[down]}" --timeout 10 close
case "$(lp_get closed)" in
    eof | reset) ;;
    *) fail_later "upstream down: want the client closed: $LP_OUT" ;;
esac
ldap_py --port "${L[badsvc]}" --timeout 10 close
[ "$(lp_get notice.oid)" = "$NOD" ] && [ "$(lp_get notice.rc)" = 52 ] &&
    [ "$(lp_get notice.id)" = 0 ] ||
    fail_later "upstream bind refused (wrong ldap.password): want a Notice of Disconnection" \
               "unavailable (52): $LP_OUT"
grep -q "upstream bind as the destination's user failed: 49" <<<"$(lp_get notice.diag)" ||
    fail_later "upstream bind refused: want the diagnosticMessage to name the failed bind (49): $LP_OUT"
case "$(lp_get closed)" in eof | reset) ;; *) fail_later "upstream bind refused: no close: $LP_OUT" ;; esac
t0=$(date +%s%N)
ldap_py --port "${L[silent]}" --timeout 10 bind
t1=$(date +%s%N)
[ "$(lp_get notice.rc)" = 52 ] && [ "$(lp_get notice.oid)" = "$NOD" ] ||
    fail_later "silent upstream (upstream_timeout_ms 1000): want a Notice of Disconnection" \
               "unavailable (52): $LP_OUT"
case "$(lp_get closed)" in
    eof | reset) ;;
    *) fail_later "silent upstream (upstream_timeout_ms 1000): no close: $LP_OUT" ;;
esac
ms=$(((t1 - t0) / 1000000))
[ "$ms" -ge 800 ] && [ "$ms" -le 6000 ] ||
    fail_later "silent upstream: the close came after ${ms} ms (upstream_timeout_ms 1000)"
ldap_py --port "${L[silentbind]}" --timeout 10 close
case "$(lp_get closed)" in
    eof | reset) ;;
    *) fail_later "silent upstream during ferry's bind (bind_timeout_ms 1000): no close: $LP_OUT" ;;
esac
[ "$(lp_get notice.rc)" = 52 ] ||
    fail_later "silent upstream during ferry's bind: want a Notice of Disconnection unavailable (52): $LP_OUT"

# --- 6. access log and metrics ------------------------------------------------------------
for spec in "method=search status=0 path=$LDAP_BASE" "method=bind status=0" \
            "method=modify status=0 path=uid=alice,$LDAP_PEOPLE" "method=bind status=7"; do
    # shellcheck disable=SC2086  # spec is KEY=VALUE words
    n=$(log_lines "$access" request protocol=ldap listener=inj destination=main $spec)
    [ "$n" -ge 1 ] || fail_later "access log: no request line with listener inj, $spec:" \
        "$(grep '"protocol":"ldap"' "$access" | head -n 5)"
done
n=$(log_lines "$access" request protocol=ldap listener=inj)
[ "$n" -ge 20 ] || fail_later "access log: $n request lines for listener inj, want >= 20 (one per operation)"
python3 - "$access" <<'PY' || fail_later "access log: ldap request lines without total_ms"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("msg") == "request" and r.get("protocol") == "ldap" and "total_ms" not in r:
        sys.exit(1)
PY
ok='ferry_ldap_operations_total{listener="inj",destination="main",result="success"}'
bad='ferry_ldap_operations_total{listener="inj",destination="main",result="failure"}'
wait_metric "$admin" "$ok" -ge 20 5 || fail_later "/metrics: want $ok >= 20, got '$(metric "$admin" "$ok")'"
wait_metric "$admin" "$bad" -ge 1 5 || fail_later "/metrics: want $bad >= 1 (the SASL bind), got '$(metric "$admin" "$bad")'"
for f in "$gw_log" "$access"; do
    if grep -n -- "$LDAP_SVC_PW" "$f" >&2; then fail_later "the service password is in $f (lines above)"; fi
done
stop_proc "$gw_pid" "$gw_log" gateway

# --- 7. policy (gateway B) ----------------------------------------------------------------
policy=$SRC_ROOT/examples/policies/ldap-read-only.lua
admin_b=$(free_port) l_ro=$(free_port)
cat >"$dir/gw-b.yaml" <<YAML
workers: 2
plugins_dir: $PLUGINS
log: { level: info, access: $dir/access-b.log }
admin: { listen: 127.0.0.1:$admin_b }
destinations:
  - Name: ro
    Type: LDAP
    ldap.url: "ldap://127.0.0.1:$sp"
    ldap.user: "$LDAP_SVC_DN"
    ldap.password: "$LDAP_SVC_PW"
    policy: "$policy"
listeners:
  - { name: ro, plugin: ldap, listen: "127.0.0.1:$l_ro", destination: ro }
YAML
policy_ok=1
if [ ! -f "$policy" ]; then
    fail_later "no $policy (the read-only LDAP example policy): the policy checks are skipped"
    policy_ok=0
elif ! out=$("$FERRY" check -c "$dir/gw-b.yaml" 2>&1); then
    fail_later "ferry check rejects a destination with policy: $policy: $out"
    policy_ok=0
fi
if [ "$policy_ok" = 1 ]; then
    start_gateway gateway-b "$dir/gw-b.yaml" "$admin_b"
    gwb_pid=$GW_PID gwb_log=$GW_LOG
    mods_before=$(slapd_count 'MOD dn="uid=bob')
    cat >"$dir/mod-bob.ldif" <<LDIF
dn: uid=bob,$LDAP_PEOPLE
changetype: modify
replace: mail
mail: evil@example.org
LDIF
    lmodify "ldap://127.0.0.1:$l_ro" "$dir/mod-bob.ldif"
    [ "$LM_RC" = 50 ] || fail_later "ldapmodify through the read-only policy: want 50" \
        "(insufficientAccessRights), got $LM_RC: $LM_OUT"
    P=$LDAP_PEOPLE
    ldap_py --port "$l_ro" bind "search=$LDAP_BASE:(uid=bob)" "modify=uid=bob,$P:mail:evil@example.org" \
        "add=cn=intruder,$P:intruder" "delete=uid=dave,$P" "modrdn=uid=dave,$P:uid=dave2" \
        "compare=uid=bob,$P:uid:bob" whoami "search=$LDAP_BASE:(uid=dave)"
    i=0
    for want in "bindResponse 0" "searchResDone 0" "modifyResponse 50" "addResponse 50" \
                "delResponse 50" "modDNResponse 50" "compareResponse 6" "extendedResp 0" \
                "searchResDone 0"; do
        got="$(lp_get "results.$i.op") $(lp_get "results.$i.rc")"
        [ "$got" = "$want" ] || fail_later "read-only policy, step $i ($(lp_get "results.$i.step")):" \
            "want $want, got '$got'"
        case "$want" in
            *" 50") [ -n "$(lp_get "results.$i.diag")" ] ||
                        fail_later "read-only policy, step $i: no diagnosticMessage (the reason)" ;;
        esac
        i=$((i + 1))
    done
    [ "$(lp_get results.1.entries)" = 1 ] && [ "$(lp_get results.8.entries)" = 1 ] ||
        fail_later "read-only policy: the searches around the denied writes: $LP_OUT"
    [ "$(slapd_count 'MOD dn="uid=bob')" = "$mods_before" ] ||
        fail_later "read-only policy: slapd saw a modify of bob"
    [ "$(slapd_count 'DEL dn="uid=dave|ADD dn="cn=intruder|MODRDN dn="uid=dave')" = 0 ] ||
        fail_later "read-only policy: slapd saw a denied add/delete/modrdn"
    lsearch "$DIRECT" "${SVC[@]}" -b "$LDAP_PEOPLE" '(uid=bob)' mail
    grep -q '^mail: bob@example.org' <<<"$LS_OUT" || fail_later "bob's mail changed: $LS_OUT"
    [ "$(log_lines "$dir/access-b.log" request protocol=ldap listener=ro method=modify status=50)" -ge 2 ] ||
        fail_later "access log B: want 2 modify lines with status 50"
    bad_ro='ferry_ldap_operations_total{listener="ro",destination="ro",result="failure"}'
    wait_metric "$admin_b" "$bad_ro" -ge 5 5 ||
        fail_later "/metrics B: want $bad_ro >= 5, got '$(metric "$admin_b" "$bad_ro")'"
    stop_proc "$gwb_pid" "$gwb_log" gateway-b
fi

stop_slapd "$SLAPD_PID"
fail_deferred
echo "ldap_basic: ok"
