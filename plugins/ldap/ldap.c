/*
 * ldap.c: the `ldap` plugin. A listener bound to an LDAP destination: clients speak
 * LDAPv3 to ferry, ferry speaks it to the destination's server (directly, over TLS
 * with ldaps:// or StartTLS, or through the tunnel for OnPremise) and binds there with
 * the destination's credentials, so applications hold none.
 *
 *   OPEN      dial the upstream (client bytes wait in their buffer)
 *   STARTTLS  ldap.startTLS: ExtendedRequest, then the TLS handshake
 *   BIND      ferry's own simple bind with ldap.user / ldap.password
 *   RELAY     message by message both ways: client binds answered by ferry, policies
 *             (on_ldap) consulted, every other request forwarded unchanged; each
 *             request's final response logged and counted
 *
 * Every message is framed (ber.c) before anything is done with it: malformed BER or a
 * message over max_message_bytes ends that client with a Notice of Disconnection
 * (protocolError), as RFC 4511 section 4.4.1 describes, and no one else notices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ferry/dest.h>
#include <ferry/err.h>
#include <ferry/io.h>
#include <ferry/log.h>
#include <ferry/opts.h>
#include <ferry/plugin.h>
#include <ferry/policy.h>

#include "ber.h"

#define PENDING_HIGH  (256u * 1024)
#define TRACK_MAX     32                /* outstanding requests logged per connection */
#define ID_STARTTLS   0x7ffffffeu       /* messageIDs of ferry's own requests: clients */
#define ID_BIND       0x7fffffffu       /* count up from 1 and never get this far */
#define DRIVE_ROUNDS  64

struct ldap_listener {
    size_t   max_message;
    uint32_t upstream_timeout_ms;
    uint32_t bind_timeout_ms;
};

enum phase { PH_OPEN, PH_STARTTLS, PH_TLS, PH_BIND, PH_RELAY, PH_DONE };

struct track {
    uint32_t id;
    int      op;                        /* -1: free */
    uint64_t t0;
    char     dn[96];
};

struct lconn {
    struct ferry_conn       *c;
    struct ldap_listener    *l;
    const struct ferry_dest *dest;
    struct ferry_io         *cio, *uio;
    enum phase               phase;
    bool                     inject;    /* ferry binds; client binds are answered here */
    bool                     starttls;
    struct ferry_io_tls      tls;
    unsigned                 outstanding;
    struct track             track[TRACK_MAX];
    bool                     has_policy;        /* the destination's policy has on_ldap */
    bool                     policy_wait;       /* a verdict for the first message is due */
    bool                     have_verdict;      /* ... and it came (applied next round) */
    struct ferry_policy_verdict verdict;
};

static void l_drive(struct lconn *lc);

/* ---- endings --------------------------------------------------------------------------- */

static void
l_close(struct lconn *lc, const char *outcome)
{
    if (lc->phase == PH_DONE)
        return;
    lc->phase = PH_DONE;
    if (lc->uio != NULL) {
        /* A healthy server connection ends cleanly (its FIN, or END_STREAM through a
         * tunnel: the connector audits "ok", not "reset"). */
        if (ferry_io_error(lc->uio, NULL) == 0 && !ferry_io_eof(lc->uio))
            ferry_io_finish(lc->uio, 2000);
        else
            ferry_io_close(lc->uio);
        lc->uio = NULL;
    }
    ferry_conn_close(lc->c, outcome);
}

/* Notice of Disconnection (RFC 4511 4.4.1): unsolicited, messageID 0, then close. */
static void
l_disconnect(struct lconn *lc, int code, const char *outcome, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
l_disconnect(struct lconn *lc, int code, const char *outcome, const char *fmt, ...)
{
    char    diag[300];
    uint8_t msg[1200];
    size_t  n;
    va_list ap;

    if (lc->phase == PH_DONE)
        return;
    va_start(ap, fmt);
    vsnprintf(diag, sizeof(diag), fmt, ap);
    va_end(ap);
    if ((n = ldap_write_result(msg, sizeof(msg), 0, LDAP_EXT_RESP, code, diag,
                               LDAP_OID_NOTICE)) > 0)
        ferry_io_write(lc->cio, msg, n);
    ferry_log(ferry_conn_log(lc->c), code == LDAP_PROTOCOL_ERROR ? FERRY_INFO : FERRY_WARN,
              "ldap client disconnected", FLOG_INT("result", code), FLOG_STR("reason", diag),
              FLOG_STR("destination", ferry_dest_name(lc->dest)));
    l_close(lc, outcome);
}

/* ---- per-operation records ----------------------------------------------------------- */

static void
l_record(struct lconn *lc, int op, const char *dn, int result, uint64_t t0, const char *outcome)
{
    struct ferry_request_record r = FERRY_REQUEST_RECORD_INIT;

    r.protocol = "ldap";
    r.method = ldap_op_name(op);
    r.path = dn;
    r.dest = lc->dest;
    r.target = lc->uio != NULL ? ferry_io_target(lc->uio) : NULL;
    r.status = result;
    r.total_us = ferry_now_us() - t0;
    r.outcome = outcome;
    ferry_conn_request_done(lc->c, &r);
}

static void
dn_copy(char *out, size_t size, const struct ldap_msg *m)
{
    size_t n = m->dn != NULL ? m->dn_len : 0;

    if (n >= size)
        n = size - 1;
    if (n > 0)
        memcpy(out, m->dn, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)          /* logs are JSON lines: no control bytes */
        if ((unsigned char)out[i] < 0x20)
            out[i] = '?';
}

static void
l_track(struct lconn *lc, const struct ldap_msg *m)
{
    for (int i = 0; i < TRACK_MAX; i++) {
        if (lc->track[i].op < 0) {
            lc->track[i].id = m->id;
            lc->track[i].op = m->op;
            lc->track[i].t0 = ferry_now_us();
            dn_copy(lc->track[i].dn, sizeof(lc->track[i].dn), m);
            break;
        }
    }
    if (lc->outstanding++ == 0)
        ferry_io_timeout(lc->uio, lc->l->upstream_timeout_ms);
}

static void
l_answered(struct lconn *lc, const struct ldap_msg *m)
{
    for (int i = 0; i < TRACK_MAX; i++) {
        if (lc->track[i].op >= 0 && lc->track[i].id == m->id &&
            ldap_response_op(lc->track[i].op) == m->op) {
            l_record(lc, lc->track[i].op, lc->track[i].dn, m->result, lc->track[i].t0, "ok");
            lc->track[i].op = -1;
            break;
        }
    }
    if (lc->outstanding > 0 && --lc->outstanding == 0)
        ferry_io_timeout(lc->uio, 0);
}

/* Answer a request here (bind, denials) with its response operation. */
static void
l_answer(struct lconn *lc, const struct ldap_msg *m, int code, const char *diag)
{
    uint8_t msg[1200];
    int     rop = ldap_response_op(m->op);
    size_t  n;
    char    dn[96];

    if (rop < 0)
        return;
    n = ldap_write_result(msg, sizeof(msg), m->id, rop, code, diag, NULL);
    if (n > 0)
        ferry_io_write(lc->cio, msg, n);
    dn_copy(dn, sizeof(dn), m);
    l_record(lc, m->op, dn, code, ferry_now_us(), code == 0 ? "ok" : "answered-by-ferry");
}

/* ---- the relay, message by message ---------------------------------------------------- */

static void
l_on_verdict(struct ferry_conn *c, const struct ferry_policy_verdict *v, void *arg)
{
    struct lconn *lc = arg;

    (void)c;
    if (lc->phase == PH_DONE)
        return;
    lc->verdict = *v;
    lc->have_verdict = true;
    lc->policy_wait = false;
    l_drive(lc);
}

/* One request from the client. false when the connection ended (phase PH_DONE) or the
 * message waits for a policy verdict (it is not consumed then). */
static bool
l_request(struct lconn *lc, const uint8_t *msg, size_t len)
{
    struct ldap_msg m;
    const char     *why;

    if (ldap_parse(msg, len, &m, &why) != 0) {
        l_disconnect(lc, LDAP_PROTOCOL_ERROR, "protocol-error", "malformed request: %s", why);
        return false;
    }
    if (lc->has_policy && m.op != LDAP_UNBIND_REQ && m.op != LDAP_ABANDON_REQ &&
        ldap_response_op(m.op) >= 0) {
        struct ferry_policy_verdict *v = &lc->verdict;

        if (!lc->have_verdict) {
            char dn[1024];
            int  rc;

            dn_copy(dn, sizeof(dn), &m);
            rc = ferry_policy_ldap(lc->c, lc->dest, ldap_op_name(m.op), dn, v, l_on_verdict, lc);
            if (rc == FERRY_EAGAIN) {
                lc->policy_wait = true;     /* the message stays buffered until then */
                return false;
            }
            if (rc != FERRY_OK)
                v->allowed = true;          /* no such hook after all */
        }
        lc->have_verdict = false;
        if (!v->allowed) {
            l_answer(lc, &m, v->error ? LDAP_OTHER : v->code,
                     v->error ? "policy-error" : v->reason);
            return true;
        }
    }
    switch (m.op) {
    case LDAP_UNBIND_REQ:
        ferry_io_write(lc->uio, msg, len);  /* the server hears the unbind, then the close */
        l_close(lc, "ok");
        return false;
    case LDAP_BIND_REQ:
        if (!lc->inject)
            break;
        /* ferry is bound upstream as the destination's user: the client's own
         * credentials, whatever they are, are neither checked nor forwarded. */
        if (m.sasl)
            l_answer(lc, &m, LDAP_AUTH_METHOD_NOT_SUPP,
                     "ferry binds to the server itself: use a simple bind (any credentials)");
        else
            l_answer(lc, &m, LDAP_SUCCESS, "");
        return true;
    case LDAP_EXT_REQ:
        if (m.oid_len == strlen(LDAP_OID_STARTTLS) &&
            memcmp(m.oid, LDAP_OID_STARTTLS, m.oid_len) == 0) {
            l_answer(lc, &m, LDAP_UNAVAILABLE,
                     "StartTLS to ferry is not offered: ferry speaks TLS to the server");
            return true;
        }
        break;
    default:
        break;
    }
    ferry_io_write(lc->uio, msg, len);
    if (ldap_response_op(m.op) >= 0)
        l_track(lc, &m);
    else if (m.op != LDAP_ABANDON_REQ && m.op >= 0) {
        char dn[96];

        dn_copy(dn, sizeof(dn), &m);
        l_record(lc, m.op, dn, 0, ferry_now_us(), "ok");
    }
    return true;
}

static bool
l_client_to_server(struct lconn *lc)
{
    const uint8_t *data;
    size_t         len, used = 0;
    bool           progress = false;

    if (lc->policy_wait)
        return false;
    len = ferry_io_peek(lc->cio, &data);
    while (used < len && ferry_io_pending(lc->uio) < PENDING_HIGH) {
        size_t      n = 0;
        const char *why = NULL;
        int         rc = ber_frame(data + used, len - used, lc->l->max_message, &n, &why);

        if (rc == 0)
            break;
        if (rc < 0) {
            ferry_io_consume(lc->cio, used);
            l_disconnect(lc, LDAP_PROTOCOL_ERROR, "protocol-error", "%s", why);
            return false;
        }
        if (!l_request(lc, data + used, n)) {
            if (lc->phase != PH_RELAY)
                return false;               /* the connection ended */
            break;                          /* a policy verdict is due for this one */
        }
        used += n;
        progress = true;
    }
    ferry_io_consume(lc->cio, used);
    if (used == 0 && ferry_io_eof(lc->cio)) {
        l_close(lc, "client-closed");
        return false;
    }
    return progress;
}

static bool
l_server_to_client(struct lconn *lc)
{
    const uint8_t *data;
    size_t         len, used = 0;
    bool           progress = false;

    len = ferry_io_peek(lc->uio, &data);
    /* Messages are checked one by one but leave in one write: a search's entries and
     * its SearchResultDone cost the client one syscall, not one each. */
    while (used < len && ferry_io_pending(lc->cio) + used < PENDING_HIGH) {
        size_t          n = 0;
        const char     *why = NULL;
        struct ldap_msg m;
        int             rc = ber_frame(data + used, len - used, lc->l->max_message, &n, &why);

        if (rc == 0)
            break;
        if (rc < 0 || ldap_parse(data + used, n, &m, &why) != 0) {
            ferry_io_write(lc->cio, data, used);
            ferry_io_consume(lc->uio, used);
            l_disconnect(lc, LDAP_UNAVAILABLE, "upstream-protocol-error",
                         "ferry: the server sent a %s message (%s)",
                         rc == -2 ? "too large" : "malformed", why);
            return false;
        }
        if (m.result >= 0)
            l_answered(lc, &m);
        used += n;
        progress = true;
    }
    if (used > 0)
        ferry_io_write(lc->cio, data, used);
    ferry_io_consume(lc->uio, used);
    if (used == 0 && len == 0 && (ferry_io_eof(lc->uio) || ferry_io_error(lc->uio, NULL) != 0)) {
        const char *why = "";

        ferry_io_error(lc->uio, &why);
        l_disconnect(lc, LDAP_UNAVAILABLE, "upstream-closed",
                     "ferry: the server closed the connection%s%s", *why ? ": " : "", why);
        return false;
    }
    return progress;
}

/* ---- ferry's own requests: StartTLS and bind ------------------------------------------- */

/* The response to ferry's own request id, when complete. 1 got it (*result), 0 wait,
 * -1 the connection ended. */
static int
l_own_response(struct lconn *lc, uint32_t id, int op, int *result)
{
    const uint8_t  *data;
    size_t          len = ferry_io_peek(lc->uio, &data), n = 0;
    const char     *why = NULL;
    struct ldap_msg m;
    int             rc;

    if (len == 0) {
        if (ferry_io_eof(lc->uio) || ferry_io_error(lc->uio, NULL) != 0) {
            l_disconnect(lc, LDAP_UNAVAILABLE, "upstream-closed",
                         "ferry: the server closed the connection during %s",
                         op == LDAP_BIND_RESP ? "ferry's bind" : "StartTLS");
            return -1;
        }
        return 0;
    }
    if ((rc = ber_frame(data, len, lc->l->max_message, &n, &why)) == 0)
        return 0;
    if (rc < 0 || ldap_parse(data, n, &m, &why) != 0 || m.id != id || m.op != op) {
        l_disconnect(lc, LDAP_UNAVAILABLE, "upstream-protocol-error",
                     "ferry: unexpected answer from the server to %s",
                     op == LDAP_BIND_RESP ? "ferry's bind" : "StartTLS");
        return -1;
    }
    ferry_io_consume(lc->uio, n);
    *result = m.result;
    return 1;
}

static void
l_send_bind(struct lconn *lc)
{
    uint8_t     msg[2400];
    const char *user = ferry_dest_prop(lc->dest, "ldap.user");
    const char *pass = ferry_dest_prop(lc->dest, "ldap.password");
    size_t      n = ldap_write_bind(msg, sizeof(msg), ID_BIND, user != NULL ? user : "",
                                    pass != NULL ? pass : "");

    if (n == 0) {
        l_disconnect(lc, LDAP_OTHER, "destination-invalid",
                     "ferry: the destination's bind DN or password is too long");
        return;
    }
    ferry_io_write(lc->uio, msg, n);
    explicit_bzero(msg, sizeof(msg));       /* the bind password; memset may be dropped */
    lc->phase = PH_BIND;
    ferry_io_timeout(lc->uio, lc->l->bind_timeout_ms);
}

static void
l_ready(struct lconn *lc)
{
    if (lc->inject) {
        l_send_bind(lc);
    } else {
        lc->phase = PH_RELAY;
        ferry_io_timeout(lc->uio, 0);
    }
}

static void
l_on_starttls(struct ferry_conn *c, struct ferry_io *io, int status, const char *reason,
              void *arg)
{
    struct lconn *lc = arg;

    (void)c;
    if (lc->phase == PH_DONE)
        return;
    if (status != FERRY_OK) {
        lc->uio = NULL;                     /* closed by core */
        l_disconnect(lc, LDAP_UNAVAILABLE, "upstream-tls-failed", "ferry: StartTLS: %s",
                     reason);
        return;
    }
    lc->uio = io;
    l_ready(lc);
    l_drive(lc);
}

/* ---- events ------------------------------------------------------------------------------ */

static void
l_drive(struct lconn *lc)
{
    for (int round = 0; round < DRIVE_ROUNDS && lc->phase != PH_DONE; round++) {
        bool progress = false;
        int  result = 0, rc;

        switch (lc->phase) {
        case PH_STARTTLS:
            if ((rc = l_own_response(lc, ID_STARTTLS, LDAP_EXT_RESP, &result)) <= 0)
                return;
            if (result != LDAP_SUCCESS) {
                l_disconnect(lc, LDAP_UNAVAILABLE, "upstream-starttls-refused",
                             "ferry: the server refused StartTLS (result %d)", result);
                return;
            }
            lc->phase = PH_TLS;
            if (ferry_io_starttls(lc->uio, &lc->tls, l_on_starttls, lc) != FERRY_OK)
                l_disconnect(lc, LDAP_UNAVAILABLE, "upstream-tls-failed",
                             "ferry: cannot start TLS (trust settings)");
            return;
        case PH_BIND:
            if ((rc = l_own_response(lc, ID_BIND, LDAP_BIND_RESP, &result)) <= 0)
                return;
            if (result != LDAP_SUCCESS) {
                l_disconnect(lc, LDAP_UNAVAILABLE, "upstream-bind-failed",
                             "ferry: upstream bind as the destination's user failed: %d",
                             result);
                return;
            }
            lc->phase = PH_RELAY;
            ferry_io_timeout(lc->uio, 0);
            progress = true;
            break;
        case PH_RELAY:
            progress = l_server_to_client(lc);
            if (lc->phase == PH_RELAY)
                progress |= l_client_to_server(lc);
            break;
        default:
            return;
        }
        if (!progress)
            return;
    }
}

static void
l_client_cb(struct ferry_io *io, unsigned ev, void *arg)
{
    struct lconn *lc = arg;

    (void)io;
    if (lc->phase == PH_DONE)
        return;
    if (ev & FERRY_IO_ERROR) {
        l_close(lc, "client-reset");
        return;
    }
    if (lc->phase != PH_RELAY) {
        const uint8_t *d;

        /* Requests wait in the buffer until ferry is bound; a client that leaves
         * meanwhile ends the connection. */
        if (ferry_io_eof(lc->cio) && ferry_io_peek(lc->cio, &d) == 0)
            l_close(lc, "client-closed");
        return;
    }
    l_drive(lc);
}

static void
l_up_cb(struct ferry_io *io, unsigned ev, void *arg)
{
    struct lconn *lc = arg;

    (void)io;
    if (lc->phase == PH_DONE)
        return;
    if (ev & FERRY_IO_TIMEOUT) {
        if (lc->phase == PH_RELAY && lc->outstanding == 0)
            return;
        l_disconnect(lc, LDAP_UNAVAILABLE, "upstream-timeout",
                     "ferry: the server did not answer within %u ms",
                     lc->phase == PH_RELAY ? lc->l->upstream_timeout_ms : lc->l->bind_timeout_ms);
        return;
    }
    l_drive(lc);
}

static void
l_on_open(struct ferry_conn *c, struct ferry_io *io, int status, const char *reason, void *arg)
{
    struct lconn *lc = arg;

    (void)c;
    if (lc->phase == PH_DONE) {
        if (io != NULL)
            ferry_io_close(io);
        return;
    }
    if (status != FERRY_OK) {
        l_disconnect(lc, LDAP_UNAVAILABLE,
                     status == FERRY_ENOTUNNEL ? "no-tunnel" :
                     status == FERRY_EDENIED ? "access-denied" :
                     status == FERRY_EPROTO ? "upstream-tls-failed" : "upstream-unreachable",
                     "ferry: cannot reach the server of destination '%s': %s",
                     ferry_dest_name(lc->dest), reason);
        return;
    }
    lc->uio = io;
    ferry_io_set_cb(io, l_up_cb, lc);
    ferry_io_set_inbuf(io, lc->l->max_message);
    if (lc->starttls) {
        uint8_t msg[64];
        size_t  n = ldap_write_starttls(msg, sizeof(msg), ID_STARTTLS);

        ferry_io_write(io, msg, n);
        lc->phase = PH_STARTTLS;
        ferry_io_timeout(io, lc->l->bind_timeout_ms);
        return;
    }
    l_ready(lc);
    l_drive(lc);
}

static bool
prop_true(const struct ferry_dest *d, const char *key)
{
    const char *v = ferry_dest_prop(d, key);

    return v != NULL && strcasecmp(v, "true") == 0;
}

static void
ldap_on_accept(struct ferry_conn *c, void *state)
{
    struct lconn       *lc = ferry_conn_alloc(c, sizeof(*lc));
    struct ferry_target t = FERRY_TARGET_INIT;
    const char         *auth;
    bool                onprem;

    if (lc == NULL || (lc->cio = ferry_conn_io(c)) == NULL) {
        ferry_conn_close(c, "no-memory");
        return;
    }
    lc->c = c;
    lc->l = state;
    for (int i = 0; i < TRACK_MAX; i++)
        lc->track[i].op = -1;
    ferry_io_set_cb(lc->cio, l_client_cb, lc);
    ferry_io_set_inbuf(lc->cio, lc->l->max_message);
    lc->phase = PH_OPEN;
    if ((lc->dest = ferry_conn_dest(c)) == NULL) {        /* gone in a reload */
        lc->phase = PH_DONE;
        ferry_conn_close(c, "destination-not-found");
        return;
    }
    if (ferry_dest_type(lc->dest) != FERRY_DEST_LDAP) {
        l_disconnect(lc, LDAP_UNAVAILABLE, "destination-invalid",
                     "ferry: destination '%s' is not of Type LDAP", ferry_dest_name(lc->dest));
        return;
    }
    auth = ferry_dest_prop(lc->dest, "ldap.authentication");
    lc->inject = ferry_dest_prop(lc->dest, "ldap.user") != NULL &&
                 (auth == NULL || strcmp(auth, "NoAuthentication") != 0);
    onprem = ferry_dest_proxy_type(lc->dest) == FERRY_PROXY_ONPREMISE;
    /* Trust, TrustAll and the client key store (KeyStoreLocation) as core maps them
     * for every component. OnPremise: the connector's system (LDAP or LDAPS) decides
     * TLS to the server, as SAP's Cloud Connector does; the tunnel is TLS already. */
    lc->tls = (struct ferry_io_tls)FERRY_IO_TLS_INIT;
    ferry_io_tls_from_dest(lc->dest, &lc->tls);
    lc->tls.enable = lc->tls.enable && !onprem;
    lc->starttls = !onprem && prop_true(lc->dest, "ldap.startTLS");
    lc->has_policy = ferry_policy_has(c, lc->dest, "on_ldap");
    lc->phase = PH_OPEN;
    t.dest = lc->dest;
    t.protocol = "ldap";
    if (ferry_io_open(c, &t, lc->tls.enable ? &lc->tls : NULL, 0, l_on_open, lc) != FERRY_OK) {
        l_disconnect(lc, LDAP_UNAVAILABLE, "upstream-unreachable",
                     "ferry: cannot open an upstream");
        return;
    }
    if (lc->starttls)
        lc->tls.enable = true;
}

/* ---- listener ------------------------------------------------------------------------------ */

static int
opt_u(struct ferry_opts *o, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
    int rc = ferry_opts_uint(o, key, min, max, out);

    return rc == FERRY_ENOTFOUND ? FERRY_OK : rc;
}

/* Every option is read even after one failed: each reports its own error, so one
 * `ferry check` shows them all, and none is called unknown for going unread. */
static int
ldap_listener_open(struct ferry_listener *fl, struct ferry_opts *o, void **state)
{
    struct ldap_listener *l = calloc(1, sizeof(*l));
    uint64_t              max = 1048576, up = 60000, bind = 10000;
    int                   bad = 0;

    if (l == NULL)
        return FERRY_ENOMEM;
    if (ferry_listener_destination(fl) == NULL)
        bad += ferry_opts_error(o, NULL, "an ldap listener serves one destination: add "
                                "`destination:` (an LDAP destination)") != FERRY_OK;
    bad += opt_u(o, "max_message_bytes", 1024, 64u * 1024 * 1024, &max) != FERRY_OK;
    bad += opt_u(o, "upstream_timeout_ms", 100, 43200000, &up) != FERRY_OK;
    bad += opt_u(o, "bind_timeout_ms", 100, 600000, &bind) != FERRY_OK;
    if (bad > 0) {
        free(l);
        return FERRY_EINVAL;
    }
    l->max_message = (size_t)max;
    l->upstream_timeout_ms = (uint32_t)up;
    l->bind_timeout_ms = (uint32_t)bind;
    *state = l;
    return FERRY_OK;
}

static void
ldap_listener_close(void *state)
{
    free(state);
}

FERRY_PLUGIN_EXPORT const struct ferry_plugin ferry_plugin = {
    FERRY_PLUGIN_HEADER,
    .name           = "ldap",
    .version        = "0.1.0",
    .listener_open  = ldap_listener_open,
    .on_accept      = ldap_on_accept,
    .listener_close = ldap_listener_close,
};
