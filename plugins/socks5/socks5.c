/*
 * socks5.c: the `socks5` plugin, the SOCKS5 listener of SAP's connectivity proxy.
 *
 * RFC 1928 CONNECT to IPv4, IPv6 and domain targets. Clients authenticate as a tenant:
 * RFC 1929 username/password (user = tenant id, password = the tenant's token) or SAP's
 * method 0x80 (token plus a base64 location id; ../shared/SAP-NOTES.md §4). `auth:
 * none` is allowed only on a listener that names its `tenant:`. Routing is core's
 * (ferry_conn_open): the tenant's connector virtual hosts through the tunnel, other
 * targets only if `egress` allows them. After the reply the relay is core's.
 *
 * Every failure gets its reply before the close: 02 not allowed, 03 no connector for
 * tenant and location, 04 host unreachable, 05 connection refused, 07 command not
 * supported (BIND, UDP ASSOCIATE), 08 address type not supported; 05 FF when no
 * offered method is acceptable; 01 01 for a failed sub-negotiation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/conn.h>
#include <ferry/log.h>
#include <ferry/opts.h>
#include <ferry/plugin.h>
#include <ferry/route.h>

#include "socks5-parse.h"

/* The longest message: the 0x80 sub-negotiation. */
#define HANDSHAKE_MAX_BYTES   (4 + SOCKS5_TOKEN_MAX_BYTES + 1 + 255 + 8)

enum rep {
    REP_OK = 0x00, REP_FAILURE = 0x01, REP_NOT_ALLOWED = 0x02, REP_NET_UNREACH = 0x03,
    REP_HOST_UNREACH = 0x04, REP_REFUSED = 0x05, REP_CMD = 0x07, REP_ATYP = 0x08,
};

struct socks5_listener {
    bool                 auth_none;
    uint32_t             handshake_timeout_ms;
    struct ferry_egress *egress;         /* owns */
};

enum phase { P_GREETING, P_AUTH_USERPASS, P_AUTH_SAP, P_REQUEST, P_OPENING };

struct socks5_session {
    const struct socks5_listener *l;      /* borrowed: listener state outlives us */
    enum phase                    phase;
    char                          location[192];
    char                          host[256];
    uint16_t                      port;
    bool                          over_limit;   /* the tenant is at max_connections: the
                                                   credential was good, the CONNECT gets 02 */
};

/* Every option is read even after one failed: each reports its own error, so one
 * `ferry check` shows them all, and none is called unknown for going unread. */
static int
s5_listener_open(struct ferry_listener *fl, struct ferry_opts *o, void **state)
{
    struct socks5_listener *l = calloc(1, sizeof(*l));
    const char             *auth = NULL;
    uint64_t                ms = 10000;
    int                     bad = 0, rc;

    if (l == NULL)
        return FERRY_ENOMEM;
    rc = ferry_opts_str(o, "auth", &auth);
    if (rc == FERRY_OK && strcmp(auth, "none") == 0)
        l->auth_none = true;
    else if (rc == FERRY_OK && strcmp(auth, "tenant") != 0)
        bad += ferry_opts_error(o, "auth", "want 'tenant' (user/password or 0x80) or "
                                "'none'") != FERRY_OK;
    else if (rc != FERRY_OK && rc != FERRY_ENOTFOUND)
        bad++;
    if (l->auth_none && ferry_listener_tenant(fl) == NULL)
        bad += ferry_opts_error(o, "auth", "auth: none needs the listener's `tenant:` "
                                "(whose connectors and egress the clients may use)") != FERRY_OK;
    if (ferry_listener_destination(fl) != NULL)
        bad += ferry_opts_error(o, NULL, "a socks5 listener routes by the client's target; "
                                "remove `destination:`") != FERRY_OK;
    rc = ferry_opts_uint(o, "handshake_timeout_ms", 100, 600000, &ms);
    bad += rc != FERRY_OK && rc != FERRY_ENOTFOUND;
    l->handshake_timeout_ms = (uint32_t)ms;
    bad += ferry_egress_new(o, "egress", &l->egress) != FERRY_OK;
    if (bad > 0) {
        ferry_egress_free(l->egress);
        free(l);
        return FERRY_EINVAL;
    }
    *state = l;
    return FERRY_OK;
}

static void
s5_listener_close(void *state)
{
    struct socks5_listener *l = state;

    ferry_egress_free(l->egress);
    free(l);
}

/* A reply to the CONNECT request, then (on error) the close. BND is 0.0.0.0:0: the
 * bound address of a tunnel stream would be meaningless to the client. */
static void
s5_reply(struct ferry_conn *c, enum rep rep, const char *outcome)
{
    static const uint8_t tail[] = { 0x00, 0x01, 0, 0, 0, 0, 0, 0 };
    uint8_t              r[10];

    r[0] = 0x05;
    r[1] = (uint8_t)rep;
    memcpy(r + 2, tail, sizeof(tail));
    ferry_conn_write(c, r, sizeof(r));
    if (rep != REP_OK)
        ferry_conn_close(c, outcome);
}

static void
s5_on_open(struct ferry_conn *c, int status, const char *reason, void *arg)
{
    (void)arg;
    switch (status) {
    case FERRY_OK:
        s5_reply(c, REP_OK, NULL);
        ferry_conn_relay(c);
        return;
    case FERRY_EDENIED:
        s5_reply(c, REP_NOT_ALLOWED, "denied");
        return;
    case FERRY_ENOTUNNEL:
        s5_reply(c, REP_NET_UNREACH, "no-tunnel");
        return;
    case FERRY_EUNAVAIL:
        s5_reply(c, REP_REFUSED, "upstream-refused");
        return;
    case FERRY_ENOTFOUND:
    case FERRY_EUNREACH:
    case FERRY_ETIMEDOUT:
        s5_reply(c, REP_HOST_UNREACH, "upstream-unreachable");
        return;
    default:
        (void)reason;
        s5_reply(c, REP_FAILURE, "upstream-error");
        return;
    }
}

/* 05 NMETHODS METHODS… -> the method we choose. */
static int
s5_greeting(struct ferry_conn *c, struct socks5_session *s, const uint8_t *d, size_t n)
{
    uint8_t r[2] = { 0x05, SOCKS5_M_REFUSE };
    int     used = socks5_parse_greeting(d, n, s->l->auth_none, &r[1]);

    if (used < 0) {
        ferry_conn_close(c, "not-socks5");
        return FERRY_EPROTO;
    }
    if (used == 0)
        return 0;
    ferry_conn_write(c, r, sizeof(r));
    if (r[1] == SOCKS5_M_REFUSE) {
        ferry_conn_close(c, "no-acceptable-method");
        return FERRY_EPROTO;
    }
    s->phase = r[1] == SOCKS5_M_NONE ? P_REQUEST
             : r[1] == SOCKS5_M_SAP ? P_AUTH_SAP : P_AUTH_USERPASS;
    return used;
}

static int
s5_auth_result(struct ferry_conn *c, struct socks5_session *s, bool ok, int used)
{
    uint8_t r[2] = { 0x01, ok ? 0x00 : 0x01 };

    ferry_conn_write(c, r, sizeof(r));
    if (!ok) {
        ferry_log(ferry_conn_log(c), FERRY_WARN, "socks5 authentication failed");
        ferry_conn_close(c, "auth-failed");
        return FERRY_EDENIED;
    }
    s->phase = P_REQUEST;
    return used;
}

/* Did the credential check out? Over the tenant's max_connections it did: the
 * sub-negotiation succeeds and the request is answered 02 (not allowed), the reply SAP's
 * proxy gives for a limit, where a failed sub-negotiation would read as a bad token. */
static bool
s5_auth_rc(struct socks5_session *s, int rc)
{
    s->over_limit = rc == FERRY_ELIMIT;
    return rc == FERRY_OK || rc == FERRY_ELIMIT;
}

/* RFC 1929: user = tenant id, password = token. */
static int
s5_userpass(struct ferry_conn *c, struct socks5_session *s, const uint8_t *d, size_t n)
{
    struct socks5_userpass up;
    int                    used = socks5_parse_userpass(d, n, &up);
    bool                   ok;

    if (used < 0)
        return s5_auth_result(c, s, false, 0);
    if (used == 0)
        return 0;
    ok = up.ok && s5_auth_rc(s, ferry_conn_auth_tenant(c, up.user, up.pass));
    explicit_bzero(up.pass, sizeof(up.pass));     /* the tenant's token */
    return s5_auth_result(c, s, ok, used);
}

/* SAP 0x80: the token authenticates the tenant, the location id picks its connector. */
static int
s5_sap(struct ferry_conn *c, struct socks5_session *s, const uint8_t *d, size_t n)
{
    struct socks5_sap sap;
    int               used = socks5_parse_sap(d, n, &sap);
    char             *token;
    bool              ok;

    if (used < 0)
        return s5_auth_result(c, s, false, 0);
    if (used == 0)
        return 0;
    /* The auth hook wants a C string; the token stays in the connection's arena. */
    if ((token = ferry_conn_alloc(c, sap.tlen + 1)) == NULL)
        return s5_auth_result(c, s, false, 0);
    memcpy(token, sap.token, sap.tlen);
    token[sap.tlen] = '\0';
    ok = sap.ok && s5_auth_rc(s, ferry_conn_auth_tenant(c, NULL, token));
    explicit_bzero(token, sap.tlen);      /* memset could be dropped: token is dead after */
    if (ok)
        memcpy(s->location, sap.location, sizeof(s->location));
    else
        s->location[0] = '\0';
    return s5_auth_result(c, s, ok, used);
}

/* 05 CMD 00 ATYP DST.ADDR DST.PORT */
static int
s5_request(struct ferry_conn *c, struct socks5_session *s, const uint8_t *d, size_t n)
{
    struct ferry_target   t = FERRY_TARGET_INIT;
    struct socks5_request req;
    int                   used = socks5_parse_request(d, n, &req);

    if (used > 0 && s->over_limit) {    /* the whole request read: the reply is not lost */
        s5_reply(c, REP_NOT_ALLOWED, "tenant-limit");
        return FERRY_EPROTO;
    }
    if (used < 0) {
        if (req.reply)
            s5_reply(c, (enum rep)req.rep, req.outcome);
        else
            ferry_conn_close(c, req.outcome);
        return FERRY_EPROTO;
    }
    if (used == 0)
        return 0;
    memcpy(s->host, req.host, sizeof(s->host));
    s->port = req.port;
    t.host = s->host;
    t.port = s->port;
    t.location = s->location;
    t.direct_ok = ferry_egress_allows(s->l->egress, s->host, s->port);
    s->phase = P_OPENING;
    ferry_conn_read_stop(c);            /* what follows is payload for the relay */
    if (ferry_conn_open(c, &t, s5_on_open, s) != FERRY_OK) {
        s5_reply(c, REP_FAILURE, "no-memory");
        return FERRY_ENOMEM;
    }
    return used;
}

static int
s5_on_data(struct ferry_conn *c, const uint8_t *d, size_t n, int status, void *arg)
{
    struct socks5_session *s = arg;

    if (n == 0) {
        ferry_conn_close(c, status == FERRY_ETIMEDOUT ? "handshake-timeout" : "client-closed");
        return FERRY_EPROTO;
    }
    switch (s->phase) {
    case P_GREETING:      return s5_greeting(c, s, d, n);
    case P_AUTH_USERPASS: return s5_userpass(c, s, d, n);
    case P_AUTH_SAP:      return s5_sap(c, s, d, n);
    case P_REQUEST:       return s5_request(c, s, d, n);
    default:              return 0;
    }
}

static void
s5_on_accept(struct ferry_conn *c, void *state)
{
    struct socks5_session *s = ferry_conn_alloc(c, sizeof(*s));

    if (s == NULL) {
        ferry_conn_close(c, "no-memory");
        return;
    }
    s->l = state;
    s->phase = P_GREETING;
    if (ferry_conn_read_start(c, HANDSHAKE_MAX_BYTES, s->l->handshake_timeout_ms, s5_on_data,
                              s) != FERRY_OK)
        ferry_conn_close(c, "no-memory");
}

FERRY_PLUGIN_EXPORT const struct ferry_plugin ferry_plugin = {
    FERRY_PLUGIN_HEADER,
    .name           = "socks5",
    .version        = FERRY_VERSION,
    .listener_open  = s5_listener_open,
    .on_accept      = s5_on_accept,
    .listener_close = s5_listener_close,
};
