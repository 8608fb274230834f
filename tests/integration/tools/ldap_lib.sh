# shellcheck shell=bash
# tests/integration/tools/ldap_lib.sh: a private OpenLDAP slapd per test, and LDAP clients.
# Source it after lib.sh, tools/tcp_lib.sh and tools/tunnel_lib.sh (make_ca, make_cert):
#
#   . "$(dirname "${BASH_SOURCE[0]}")/tools/ldap_lib.sh"
#
#   ldap_certs DIR                  # DIR/ldapca.crt (CA) + DIR/slapd.{crt,key} (localhost,
#                                   # 127.0.0.1) + DIR/ldapca2.crt (a CA that signed nothing)
#   start_slapd NAME DIR            # slapd on 127.0.0.1: SLAPD_PORT (ldap://),
#                                   # SLAPDS_PORT (ldaps://), SLAPD_PID, SLAPD_LOG
#   stop_slapd PID                  # SIGTERM, wait (never a system slapd: ours, by PID)
#   lsearch URL [ldapsearch args…]  # ldapsearch -x -LLL with deadlines; LS_RC, LS_OUT
#   lmodify URL LDIF_FILE [args…]   # ldapmodify -x with deadlines; LM_RC, LM_OUT
#   ldap_py ARGS…                   # tools/ldap_client.py; LP_RC, LP_OUT (JSON line)
#
# The directory (tools/ldap_base.ldif): dc=example,dc=org, ou=people with alice, bob,
# carol, dave (cn, uid, mail, userPassword), and the service account
# cn=ferry,dc=example,dc=org / ferry-secret ($LDAP_SVC_DN / $LDAP_SVC_PW).
# Access: anonymous may only bind (auth); the service account reads everything and
# writes ou=people; a user reads its own entry. So an anonymous search that returns
# entries proves that someone (ferry) bound as the service account on that connection.
# slapd runs in the foreground (-d stats: one log line per operation, BIND dn="…"
# included), with a slapd.conf, an mdb database and its pid/args files in the test's
# temporary directory; nothing of the system slapd (config, database, service) is used.
#
# The functions that only write files (ldap_slapd_conf, ldap_load) need nothing else
# sourced: tests/bench/ldap.sh uses them too.
#
# It lives in tools/ because every tests/integration/*.sh but lib.sh is a ctest test.

# shellcheck disable=SC2034  # SLAPD_*, LS_*, LM_*, LP_*: for the sourcing script
LDAP_BASE=dc=example,dc=org
LDAP_PEOPLE=ou=people,dc=example,dc=org
LDAP_SVC_DN=cn=ferry,dc=example,dc=org
LDAP_SVC_PW=ferry-secret
LDAP_ROOT_DN=cn=admin,dc=example,dc=org
LDAP_ROOT_PW=admin-secret
LDAP_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LDAP_LDIF=$LDAP_TOOLS/ldap_base.ldif
SLAPD=${SLAPD:-/usr/sbin/slapd}
SLAPADD=${SLAPADD:-/usr/sbin/slapadd}
# The clients read no /etc/ldap/ldap.conf, ~/.ldaprc or LDAP* variables of the machine
# (LDAPNOINIT would also drop the LDAPTLS_* variables lsearch sets, hence this).
for _v in $(compgen -e | grep '^LDAP[A-Z]' || true); do unset "$_v"; done
unset _v
export LDAPCONF=/dev/null LDAPRC=ferry-test-no-ldaprc

# ldap_slapd_conf DIR [CA CERT KEY]: write DIR/slapd.conf (database in DIR/db); with
# CA/CERT/KEY, slapd serves ldaps:// and StartTLS with that certificate. LDAP_LOGLEVEL,
# when set, becomes its loglevel; LDAP_TLS_VERIFY_CLIENT (e.g. demand), its
# TLSVerifyClient: TLS clients need a certificate from CA.
ldap_slapd_conf() {
    local dir=$1 ca=${2:-} crt=${3:-} key=${4:-} s=/etc/ldap/schema
    mkdir -p "$dir/db"
    {
        printf 'include %s/core.schema\ninclude %s/cosine.schema\n' "$s" "$s"
        printf 'include %s/inetorgperson.schema\ninclude %s/nis.schema\n' "$s" "$s"
        printf 'pidfile %s/slapd.pid\nargsfile %s/slapd.args\n' "$dir" "$dir"
        printf 'modulepath /usr/lib/ldap\nmoduleload back_mdb\n'
        # Idle connections stay up (ferry's pooled-nothing: one upstream per client).
        printf 'idletimeout 0\nsizelimit unlimited\n'
        # LDAP_LOGLEVEL (e.g. 0 for the bench): what slapd logs besides -d's output.
        [ -z "${LDAP_LOGLEVEL:-}" ] || printf 'loglevel %s\n' "$LDAP_LOGLEVEL"
        if [ -n "$ca" ]; then
            printf 'TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n' \
                "$ca" "$crt" "$key"
            [ -z "${LDAP_TLS_VERIFY_CLIENT:-}" ] || printf 'TLSVerifyClient %s\n' "$LDAP_TLS_VERIFY_CLIENT"
        fi
        cat <<CONF
database mdb
suffix "$LDAP_BASE"
rootdn "$LDAP_ROOT_DN"
rootpw $LDAP_ROOT_PW
directory $dir/db
maxsize 67108864
index uid eq
index objectClass eq
# The service account writes ou=people and reads everything; anonymous only binds.
access to attrs=userPassword
    by dn.exact="$LDAP_SVC_DN" write
    by self read
    by anonymous auth
    by * none
access to dn.subtree="$LDAP_PEOPLE"
    by dn.exact="$LDAP_SVC_DN" write
    by self read
    by anonymous auth
    by * none
access to *
    by dn.exact="$LDAP_SVC_DN" read
    by anonymous auth
    by * none
CONF
    } >"$dir/slapd.conf"
}

# ldap_load DIR [LDIF…]: slapadd tools/ldap_base.ldif (and the LDIF files given) into
# DIR's database, offline. Returns slapadd's status (its output in DIR/slapadd.log).
ldap_load() {
    local dir=$1 f
    shift
    "$SLAPADD" -q -f "$dir/slapd.conf" -l "$LDAP_LDIF" >"$dir/slapadd.log" 2>&1 || return 1
    for f in "$@"; do
        "$SLAPADD" -q -f "$dir/slapd.conf" -l "$f" >>"$dir/slapadd.log" 2>&1 || return 1
    done
}

# ldap_certs DIR: DIR/ldapca.{crt,key}, DIR/slapd.{crt,key} for DNS:localhost and
# IP:127.0.0.1 signed by it, and DIR/ldapca2.crt, a CA that signed nothing here.
ldap_certs() {
    make_ca "$1" ldapca
    make_ca "$1" ldapca2
    make_cert "$1" slapd ldapca "DNS:localhost,IP:127.0.0.1"
}

# start_slapd NAME DIR [LDIF…]: our own slapd, config and database in DIR/NAME, TLS
# with DIR/slapd.{crt,key} (ldap_certs DIR first). Listens on ldap://127.0.0.1:SLAPD_PORT
# and ldaps://127.0.0.1:SLAPDS_PORT; sets SLAPD_PID and SLAPD_LOG (-d stats output).
start_slapd() {
    local name=$1 dir=$2 sd
    shift 2
    command -v "$SLAPD" >/dev/null || fail "no slapd ($SLAPD): bash tests/deps.sh installs it"
    command -v ldapsearch >/dev/null || fail "no ldapsearch: bash tests/deps.sh installs ldap-utils"
    sd=$dir/$name
    mkdir -p "$sd"
    ldap_slapd_conf "$sd" "$dir/ldapca.crt" "$dir/slapd.crt" "$dir/slapd.key"
    ldap_load "$sd" "$@" || fail "slapadd into $sd failed: $(cat "$sd/slapadd.log")"
    SLAPD_PORT=$(free_port)
    SLAPDS_PORT=$(free_port)
    # -d: stay in the foreground (start_bg holds the PID; no fork, no system service).
    start_bg "$name" "$SLAPD" -f "$sd/slapd.conf" -d stats \
        -h "ldap://127.0.0.1:$SLAPD_PORT/ ldaps://127.0.0.1:$SLAPDS_PORT/"
    SLAPD_PID=$BG_PID
    SLAPD_LOG=$(bg_log "$name")
    wait_port 127.0.0.1 "$SLAPD_PORT" 15 "$SLAPD_PID" || fail "slapd $name did not listen on $SLAPD_PORT"
    wait_port 127.0.0.1 "$SLAPDS_PORT" 5 "$SLAPD_PID" || fail "slapd $name did not listen on $SLAPDS_PORT"
}

# stop_slapd PID: stop our slapd (by its PID, a child of this shell).
stop_slapd() {
    stop_pid "$1" 10 || true
}

# lsearch URL [ARGS…]: ldapsearch -x -LLL -H URL ARGS, every wait bounded (network 5 s,
# server time limit 10 s, the whole command 20 s). LS_RC = its exit status (the LDAP
# result code, 255 when it could not talk to the server), LS_OUT = stdout + stderr.
# Set LS_TLS_CA=FILE for ldaps:// / -ZZ clients (LDAPTLS_CACERT).
lsearch() {
    local url=$1
    shift
    LS_RC=0
    LS_OUT=$(LDAPTLS_CACERT=${LS_TLS_CA:-} LDAPTLS_REQCERT=${LS_TLS_CA:+demand} \
        timeout 20 ldapsearch -x -LLL -o nettimeout=5 -l 10 -H "$url" "$@" 2>&1) || LS_RC=$?
    [ -z "${VERBOSE:-}" ] || echo "ldapsearch $url $*: rc=$LS_RC: $LS_OUT" >&2
    return 0
}

# lmodify URL LDIF_FILE [ARGS…]: ldapmodify -x -H URL -f LDIF_FILE ARGS (bounded like
# lsearch). LM_RC = its exit status (the LDAP result code), LM_OUT = its output.
lmodify() {
    local url=$1 ldif=$2
    shift 2
    LM_RC=0
    LM_OUT=$(timeout 20 ldapmodify -x -o nettimeout=5 -H "$url" -f "$ldif" "$@" 2>&1) || LM_RC=$?
    [ -z "${VERBOSE:-}" ] || echo "ldapmodify $url $ldif $*: rc=$LM_RC: $LM_OUT" >&2
    return 0
}

# uids TEXT: the uid values of an ldapsearch -LLL output, sorted, space-separated.
uids() {
    sed -n 's/^uid: //p' <<<"$1" | sort | tr '\n' ' ' | sed 's/ $//'
}

# ldap_py ARGS…: run tools/ldap_client.py (raw BER over a socket); LP_RC, LP_OUT.
ldap_py() {
    LP_RC=0
    LP_OUT=$(python3 "$LDAP_TOOLS/ldap_client.py" "$@" 2>&1) || LP_RC=$?
    [ -z "${VERBOSE:-}" ] || echo "ldap_client.py $*: rc=$LP_RC: $LP_OUT" >&2
    return 0
}

# lp_get PATH: a field of ldap_client.py's JSON result line (the last JSON line of LP_OUT),
# by a dotted path: closed, notice.rc, results.0.rc, results.1.entries … ("" if absent).
# jq, not a python3 per field: the tests read dozens of fields, and on a loaded machine
# each interpreter start costs seconds.
lp_get() {
    local line
    line=$(grep '^{' <<<"$LP_OUT" | tail -n 1 || true)
    [ -n "$line" ] || { echo ""; return 0; }
    jq -r --arg p "$1" '
        ($p | split(".") | map(if test("^[0-9]+$") then tonumber else . end)) as $k
        | (try getpath($k) catch null) | if . == null then "" else . end' <<<"$line" 2>/dev/null \
        || echo ""
}
