/*
 * cstream.c: the connector's streams: one per CONNECT the gateway opens on a tunnel.
 *
 * Access control is a lookup, deny by default: the stream's virtual host:port must be
 * a configured system whose protocol fits what the gateway asks for. Then the internal
 * host is dialed (TLS for TCPS/HTTPS/LDAPS/RFCS systems), HTTP systems with `paths` get
 * a per-request filter, and every stream end and refusal is written to the audit log.
 * The internal address is used here and written only to the connector's own audit log.
 *
 * A stream with a user (principal propagation) first gets the user's certificate (this
 * worker's cache, or the signer thread: cpp.c); then, per the system's mode, the
 * certificate goes into each request head as SSL_CLIENT_CERT (header) or is the TLS
 * client certificate to the internal host (tls).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include <ferry/log.h>

#include "route/dial.h"
#include "tls/tls.h"
#include "tunnel/connector-int.h"

/* ---- audit and helpers ---------------------------------------------------------------- */

static void
audit(struct connector *cn, const char *vtarget, const struct ferry_conf_system *sys,
      const char *outcome, const char *reason, uint64_t in, uint64_t out,
      const struct timeval *started, const char *asked, const char *user)
{
    struct ferry_audit_rec r = { 0 };
    char                   itarget[300];
    struct timeval         now, d;

    if (cn->audit == NULL)
        return;
    r.tenant = cn->conf->tenant;
    r.location = cn->conf->location_id;
    r.virtual_target = vtarget;
    if (sys != NULL) {
        snprintf(itarget, sizeof(itarget), strchr(sys->internal_host, ':') ? "[%s]:%u" : "%s:%u",
                 sys->internal_host, sys->internal_port);
        r.internal_target = itarget;
        r.protocol = ferry_sys_proto_name(sys->protocol);
    } else {
        r.protocol = asked;             /* what the gateway asked for */
    }
    r.outcome = outcome;
    r.reason = reason;
    r.user = user;
    r.bytes_in = in;
    r.bytes_out = out;
    if (started != NULL) {
        gettimeofday(&now, NULL);
        timersub(&now, started, &d);
        r.duration_ms = (uint64_t)d.tv_sec * 1000 + (uint64_t)d.tv_usec / 1000;
    }
    ferry_audit_write(cn->audit, &r);
}

/* The subject DN a stream's audit lines name, or NULL without a user. */
static const char *
cs_user(const struct cstream *cs)
{
    return cs->uc != NULL ? ferry_tls_usercert_subject(cs->uc) : NULL;
}

/* Is a system of protocol p allowed for what the gateway asks (its destination Type)? */
static bool
proto_fits(const char *asked, enum ferry_sys_proto p)
{
    if (strcmp(asked, "http") == 0)
        return p == FERRY_SYS_HTTP || p == FERRY_SYS_HTTPS;
    if (strcmp(asked, "ldap") == 0)
        return p == FERRY_SYS_LDAP || p == FERRY_SYS_LDAPS || p == FERRY_SYS_TCP;
    if (strcmp(asked, "rfc") == 0)
        return p == FERRY_SYS_RFC || p == FERRY_SYS_RFCS || p == FERRY_SYS_TCP;
    /* tcp, mail and anything a newer gateway sends: byte streams only. */
    return p == FERRY_SYS_TCP || p == FERRY_SYS_TCPS;
}

/* "host:port" or "[v6]:port" -> host (brackets removed), port. */
static bool
split_authority(const char *a, char *host, size_t size, uint16_t *port)
{
    const char *colon;
    size_t      n;
    long        p;
    char       *end;

    if (a[0] == '[') {
        const char *close = strchr(a, ']');

        if (close == NULL || close[1] != ':')
            return false;
        n = (size_t)(close - a - 1);
        if (n >= size)
            return false;
        memcpy(host, a + 1, n);
        colon = close + 1;
    } else {
        if ((colon = strrchr(a, ':')) == NULL)
            return false;
        n = (size_t)(colon - a);
        if (n == 0 || n >= size)
            return false;
        memcpy(host, a, n);
    }
    host[n] = '\0';
    p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535)
        return false;
    *port = (uint16_t)p;
    return true;
}

/* ---- streams to internal hosts --------------------------------------------------------- */

static void
cs_free(struct cstream *cs)
{
    if (cs->hf != NULL) {
        free(cs->hf->head);
        free(cs->hf);
        if (cs->s != NULL)
            cs->s->filter = NULL;
    }
    if (cs->job != NULL)
        cpp_unwait(cs);                 /* the signer's answer finds no stream: dropped */
    ferry_tls_usercert_unref(cs->uc);
    if (cs->ssl != NULL)
        SSL_free(cs->ssl);
    if (cs->dial != NULL)
        dial_abort(&cs->dial);
    if (cs->ev_added)
        event_del(&cs->ev);
    cs->l->w->nstreams--;
    atomic_fetch_sub(&cs->l->w->cn->stats->active, 1);
    cgen_unref(cs->gen);                /* may free the systems of an older reload */
    free(cs);
}

static void cs_tls_step(struct cstream *cs, short what);

static void
on_cs_event(evutil_socket_t fd, short what, void *arg)
{
    struct cstream *cs = arg;

    (void)fd;
    if (cs->dial != NULL) {
        /* A speak-first host's bytes can come with the connect's edge, and no second
         * edge comes for them: keep what this wake-up saw. */
        what = dial_readiness(cs->dial, what);
        cs->s->own_readable = (what & EV_READ) != 0;
        dial_event(&cs->dial, what);
        return;
    }
    if (cs->ssl != NULL) {
        cs_tls_step(cs, what);
        return;
    }
    if (what & EV_READ)
        cs->s->own_readable = true;
    if (what & EV_WRITE)
        cs->s->own_writable = true;
    tstream_on_socket(cs->s);
}

static void
cs_watch(void *owner, int fd, uint32_t timeout_ms)
{
    struct cstream *cs = owner;
    struct timeval  tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

    if (cs->ev_added)
        event_del(&cs->ev);
    cs->s->own_readable = false;        /* a new socket: an earlier attempt's flag goes */
    event_assign(&cs->ev, cs->l->w->base, fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST,
                 on_cs_event, cs);
    cs->ev_added = event_add(&cs->ev, &tv) == 0;
}

static void
cs_unwatch(void *owner)
{
    struct cstream *cs = owner;

    if (cs->ev_added) {
        event_del(&cs->ev);
        cs->ev_added = false;
    }
}

/* Refuse one request: an HTTP answer the client can act on, audited, then the end. */
static int
hf_refuse(struct cstream *cs, int status, const char *error, const char *why, const char *path)
{
    struct connector      *cn = cs->l->w->cn;
    struct ferry_audit_rec r = { 0 };
    char                   body[400], resp[700];
    int                    n;

    snprintf(body, sizeof(body), "%s to system %s\n",
             status == 403 ? "Access denied" : "Bad request", cs->vtarget);
    n = snprintf(resp, sizeof(resp), "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                 "ferry-error: %s\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                 status, status == 403 ? "Forbidden" : "Bad Request", error, strlen(body), body);
    if (cn->audit != NULL) {
        r.tenant = cn->conf->tenant;
        r.location = cn->conf->location_id;
        r.virtual_target = cs->vtarget;
        r.protocol = ferry_sys_proto_name(cs->sys->protocol);
        r.outcome = "denied";
        r.reason = why;
        r.path = path;
        r.user = cs_user(cs);
        ferry_audit_write(cn->audit, &r);
    }
    stats_add(&cn->stats->cell[cs->l->w->id].conns_rejected, 1);
    ferry_log(NULL, FERRY_WARN, "request denied", FLOG_STR("virtual", cs->vtarget),
              FLOG_STR("reason", why));
    cs->hf->st = HF_DENIED;
    tstream_reply(cs->s, resp, (size_t)n);
    return 0;
}

/* Is this header line an SSL_CLIENT_CERT field? Any case, and '-' for '_': CGI-style
 * backends (Apache, ICM) map SSL-Client-Cert to the same variable as SSL_CLIENT_CERT. */
static bool
is_client_cert_field(const char *line, size_t len)
{
    static const char name[] = "ssl_client_cert";
    const size_t      n = sizeof(name) - 1;

    if (len <= n || line[n] != ':')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = line[i] >= 'A' && line[i] <= 'Z' ? (char)(line[i] - 'A' + 'a') : line[i];

        if ((c == '-' ? '_' : c) != name[i])
            return false;
    }
    return true;
}

size_t
cn_pp_head_rewrite(const char *head, size_t len, const char *b64, char *out, size_t cap)
{
    const char *end = head + len, *p = head;
    size_t      n = 0;
    bool        first = true;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t      ll = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        bool        blank = !first && (ll == 1 || (ll == 2 && p[0] == '\r'));

        if (blank && b64 != NULL)
            n += (size_t)snprintf(out + n, cap - n, "SSL_CLIENT_CERT: %s\r\n", b64);
        if (first || blank || !is_client_cert_field(p, ll)) {
            memcpy(out + n, p, ll);
            n += ll;
        }
        first = false;
        p += ll;
    }
    return n;
}

/* Principal propagation, header mode: forward the head of `used` bytes without any
 * SSL_CLIENT_CERT the client sent and with the connector's (the stream's user's
 * certificate; none on a stream without a user), so the backend sees exactly one. */
static int
hf_forward_pp_head(struct cstream *cs, size_t used)
{
    const char *b64 = cs->uc != NULL ? ferry_tls_usercert_base64(cs->uc) : NULL;
    size_t      cap = used + (b64 != NULL ? strlen(b64) + CN_PP_HEAD_EXTRA : 0), n;
    char       *out;
    int         rc;

    if ((out = malloc(cap)) == NULL)
        return -1;
    n = cn_pp_head_rewrite(cs->hf->head, used, b64, out, cap);
    rc = tstream_sock_write(cs->s, out, n);
    free(out);
    return rc;
}

/* A complete head of `used` bytes is in hf->head: decide, forward, set the body state. */
static int
hf_head_done(struct cstream *cs, size_t used)
{
    struct http_filter *hf = cs->hf;
    char                path[HF_HEAD_MAX + 1];

    if (hf->req.form != FERRY_HTTP_FORM_ORIGIN && hf->req.form != FERRY_HTTP_FORM_ABSOLUTE)
        return hf_refuse(cs, 403, "access-denied", "request-target form not allowed", NULL);
    memcpy(path, hf->req.path.ptr, hf->req.path.len);
    path[hf->req.path.len] = '\0';
    if (path[0] == '\0') {
        path[0] = '/';
        path[1] = '\0';
    }
    if (!ferry_connector_path_allowed(cs->sys, path))
        return hf_refuse(cs, 403, "access-denied", "path not allowed", path);
    if (cs->sys->pp == FERRY_PP_HEADER) {
        if (hf_forward_pp_head(cs, used) < 0)
            return -1;
    } else if (tstream_sock_write(cs->s, hf->head, used) < 0) {
        return -1;
    }
    switch (hf->req.body) {
    case FERRY_HTTP_BODY_LENGTH:
        hf->remaining = hf->req.content_length;
        hf->st = hf->remaining > 0 ? HF_BODY_LENGTH : HF_HEAD;
        break;
    case FERRY_HTTP_BODY_CHUNKED:
        ferry_http_chunked_init(&hf->chunked);
        hf->st = HF_BODY_CHUNKED;
        break;
    default:
        hf->st = HF_HEAD;
        break;
    }
    /* After an Upgrade (WebSocket) the bytes are no longer HTTP requests. */
    if (hf->req.upgrade)
        hf->st = HF_PASS;
    return 0;
}

static int
hf_feed(struct tstream *s, const uint8_t *data, size_t len, void *arg)
{
    struct cstream     *cs = arg;
    struct http_filter *hf = cs->hf;

    (void)s;
    while (len > 0) {
        size_t      take, used;
        const char *d;
        size_t      dl;
        int         rc;

        switch (hf->st) {
        case HF_DENIED:
            tstream_drop(cs->s, len);
            return 0;
        case HF_PASS:
            return tstream_sock_write(cs->s, data, len);
        case HF_BODY_LENGTH:
            take = len < hf->remaining ? len : (size_t)hf->remaining;
            if (tstream_sock_write(cs->s, data, take) < 0)
                return -1;
            hf->remaining -= take;
            if (hf->remaining == 0)
                hf->st = HF_HEAD;
            data += take;
            len -= take;
            break;
        case HF_BODY_CHUNKED:
            rc = ferry_http_chunked_feed(&hf->chunked, (const char *)data, len, &used, &d, &dl);
            if (rc < 0)
                return hf_refuse(cs, 400, "bad-request", "malformed chunked body", NULL);
            if (tstream_sock_write(cs->s, data, used) < 0)
                return -1;
            if (rc == FERRY_HTTP_CHUNK_END)
                hf->st = HF_HEAD;
            data += used;
            len -= used;
            break;
        case HF_HEAD:
            take = HF_HEAD_MAX - hf->head_len;
            if (take > len)
                take = len;
            memcpy(hf->head + hf->head_len, data, take);
            hf->head_len += take;
            data += take;
            len -= take;
            rc = ferry_http_parse_request(hf->head, hf->head_len, NULL, &hf->req);
            if (rc == 0 && hf->head_len < HF_HEAD_MAX)
                break;                  /* need more */
            if (rc <= 0)
                return hf_refuse(cs, 400, "bad-request", hf->req.reason != NULL ?
                                 hf->req.reason : "request head too large", NULL);
            used = (size_t)rc;
            {
                /* Bytes after the head belong to its body or the next request. */
                size_t rest = hf->head_len - used;
                char  *extra = rest > 0 ? malloc(rest) : NULL;

                if (rest > 0 && extra == NULL)
                    return -1;
                if (rest > 0)
                    memcpy(extra, hf->head + used, rest);
                rc = hf_head_done(cs, used);
                hf->head_len = 0;
                ferry_http_req_init(&hf->req, NULL, 0);
                if (rc == 0 && rest > 0 && hf->st != HF_DENIED)
                    rc = hf_feed(s, (const uint8_t *)extra, rest, arg);
                else if (rest > 0)
                    tstream_drop(cs->s, rest);
                free(extra);
                if (rc < 0)
                    return -1;
            }
            break;
        }
    }
    return 0;
}

/* HTTP/HTTPS systems with `paths` or principal propagation in header mode (with a user
 * or not: a client's own SSL_CLIENT_CERT never passes) get the request filter; every
 * other stream is a plain relay. Without memory for it the stream fails rather than
 * go unchecked. */
static bool
cs_attach_filter(struct cstream *cs)
{
    if ((cs->sys->paths == NULL && cs->sys->pp != FERRY_PP_HEADER) ||
        (cs->sys->protocol != FERRY_SYS_HTTP && cs->sys->protocol != FERRY_SYS_HTTPS))
        return true;
    if ((cs->hf = calloc(1, sizeof(*cs->hf))) == NULL ||
        (cs->hf->head = malloc(HF_HEAD_MAX)) == NULL) {
        free(cs->hf);
        cs->hf = NULL;
        return false;
    }
    ferry_http_req_init(&cs->hf->req, NULL, 0);
    cs->s->filter = hf_feed;
    cs->s->filter_arg = cs;
    return true;
}

/* The internal side failed after the dial (TLS): audit, answer, forget the stream. */
static void
cs_fail(struct cstream *cs, int status, const char *error, const char *reason)
{
    struct connector *cn = cs->l->w->cn;
    struct tstream   *s = cs->s;

    audit(cn, cs->vtarget, cs->sys, strcmp(error, "upstream-timeout") == 0 ? "timeout" :
          "tls-failed", reason, 0, 0, &cs->started, NULL, cs_user(cs));
    stats_add(&cn->stats->cell[cs->l->w->id].conns_failed, 1);
    ferry_log(NULL, FERRY_WARN, "internal host TLS failed", FLOG_STR("virtual", cs->vtarget),
              FLOG_STR("error", reason));
    s->owner = NULL;
    cs_free(cs);
    tstream_respond(s, status, error);
}

static void
cs_dial_done(void *owner, int fd, int status, const char *reason)
{
    struct cstream   *cs = owner;
    struct connector *cn = cs->l->w->cn;
    struct tstream   *s = cs->s;
    unsigned          wid = cs->l->w->id;

    if (fd < 0) {
        const char *err = status == FERRY_ETIMEDOUT ? "upstream-timeout" :
                          status == FERRY_ENOTFOUND ? "name-not-found" :
                          status == FERRY_EUNAVAIL ? "connection-refused" : "upstream-unreachable";

        audit(cn, cs->vtarget, cs->sys, status == FERRY_ETIMEDOUT ? "timeout" :
              status == FERRY_EUNAVAIL ? "refused" : "unreachable",
              reason, 0, 0, &cs->started, NULL, cs_user(cs));
        stats_add(&cn->stats->cell[wid].conns_failed, 1);
        ferry_log(NULL, FERRY_WARN, "internal host not reachable", FLOG_STR("virtual", cs->vtarget),
                  FLOG_STR("error", reason));
        s->owner = NULL;
        cs_free(cs);
        tstream_respond(s, status == FERRY_ETIMEDOUT ? 504 : 502, err);
        return;
    }
    s->own_fd = fd;
    /* own_readable is what the connect's wake-up saw (on_cs_event). */
    s->own_writable = true;
    if (cs->sys->tls) {
        /* TCPS, HTTPS, LDAPS, RFCS: the connector speaks TLS to the internal host; the
         * connect timeout keeps running until the handshake is done. */
        const char *name = cs->sys->tls_server_name != NULL ? cs->sys->tls_server_name
                                                            : cs->sys->internal_host;

        cs->ssl = tls_client_ssl(cs->gen->sys_ctx[cs->sys - cs->gen->conf->systems], fd, name);
        if (cs->ssl == NULL) {
            cs_fail(cs, 502, "no-memory", "out of memory");
            return;
        }
        if (!cs->sys->tls_verify)
            SSL_set_verify(cs->ssl, SSL_VERIFY_NONE, NULL);
        /* Principal propagation, tls mode: the user's certificate is this connection's
         * client certificate (the backend trusts the PP CA; no chain is sent). Every
         * connection is a full handshake (no client session is kept or resumed), so
         * none carries an earlier user's identity. */
        if (cs->uc != NULL && cs->sys->pp == FERRY_PP_TLS &&
            (SSL_use_certificate(cs->ssl, ferry_tls_usercert_x509(cs->uc)) != 1 ||
             SSL_use_PrivateKey(cs->ssl, ferry_tls_issuer_key(cs->gen->pp)) != 1)) {
            cs_fail(cs, 502, "tls-failed", "cannot use the user certificate");
            return;
        }
        cs_tls_step(cs, 0);
        return;
    }
    event_remove_timer(&cs->ev);
    if (!cs_attach_filter(cs)) {
        cs_fail(cs, 502, "no-memory", "out of memory for the HTTP path filter");
        return;
    }
    tstream_respond(s, 200, NULL);
    tstream_start(s, NULL, 0, NULL, 0);
}

static void
cs_tls_step(struct cstream *cs, short what)
{
    struct tstream *s = cs->s;
    char            msg[256];
    int             r;
    long            vr;

    /* On the deadline, one more step first: a late wake-up (a starved process) can
     * bring the deadline with the bytes that end the handshake. */
    ERR_clear_error();
    if ((r = SSL_connect(cs->ssl)) == 1) {
        s->ssl = cs->ssl;               /* the stream owns it now */
        cs->ssl = NULL;
        /* The handshake's last read may have taken application bytes too (a server
         * that speaks first): they sit in OpenSSL, where no edge announces them. */
        s->own_readable = true;
        event_remove_timer(&cs->ev);
        if (!cs_attach_filter(cs)) {
            cs_fail(cs, 502, "no-memory", "out of memory for the HTTP path filter");
            return;
        }
        tstream_respond(s, 200, NULL);
        tstream_start(s, NULL, 0, NULL, 0);
        return;
    }
    switch (SSL_get_error(cs->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        if (what & EV_TIMEOUT)
            cs_fail(cs, 504, "upstream-timeout",
                    "TLS handshake with the internal host timed out");
        return;                         /* else the next edge brings us back */
    default:
        vr = SSL_get_verify_result(cs->ssl);
        if (vr != X509_V_OK)
            snprintf(msg, sizeof(msg), "internal host certificate not trusted: %s",
                     X509_verify_cert_error_string(vr));
        else
            tls_error_text(msg, sizeof(msg));
        cs_fail(cs, 502, "tls-failed", msg);
        return;
    }
}

static const struct dial_ops cs_dial_ops = {
    .watch = cs_watch, .unwatch = cs_unwatch, .done = cs_dial_done,
};

/* Refuse a stream before it has a cstream: audited, counted, 403. */
static void
refuse(struct cworker *w, struct tstream *s, const char *authority,
       const struct ferry_conf_system *sys, const char *protocol, const char *why,
       const char *user, bool pp)
{
    struct connector *cn = w->cn;

    /* Deny by default; the gateway turns 403 into the client protocol's refusal. */
    audit(cn, authority, sys, "denied", why, 0, 0, NULL, sys == NULL ? protocol : NULL, user);
    stats_add(&cn->stats->cell[w->id].conns_rejected, 1);
    if (pp)
        atomic_fetch_add_explicit(&cn->pp_refused, 1, memory_order_relaxed);
    ferry_log(NULL, FERRY_WARN, "access denied", FLOG_STR("virtual", authority),
              FLOG_STR("protocol", protocol), FLOG_STR("reason", why));
    tstream_respond(s, 403, "access-denied");
}

/* Dial the internal host (with the user's certificate in hand, if there is a user). */
static void
cs_dial(struct cstream *cs)
{
    struct cworker *w = cs->l->w;
    struct tstream *s = cs->s;

    if (dial_begin(&cs->dial, w->base, w->dns, &cs_dial_ops, cs, cs->sys->internal_host,
                   cs->sys->internal_port, cs->gen->conf->connect_timeout_ms) != FERRY_OK) {
        s->owner = NULL;
        cs_free(cs);
        tstream_respond(s, 502, "no-memory");
    }
}

void
cs_pp_done(struct cstream *cs, struct pp_job *job)
{
    struct connector *cn = cs->l->w->cn;
    struct tstream   *s = cs->s;

    if (job->rc == FERRY_OK) {
        cs->uc = job->uc;               /* one reference per waiting stream */
        ferry_tls_usercert_ref(cs->uc);
        cs_dial(cs);
        return;
    }
    /* EDENIED: the claims make no subject (the reason names the field, not a value);
     * else the CA or OpenSSL failed. */
    audit(cn, cs->vtarget, cs->sys, "denied", job->reason, 0, 0, &cs->started, NULL, NULL);
    stats_add(&cn->stats->cell[cs->l->w->id].conns_rejected, 1);
    atomic_fetch_add_explicit(&cn->pp_refused, 1, memory_order_relaxed);
    ferry_log(NULL, job->rc == FERRY_EDENIED ? FERRY_WARN : FERRY_ERROR,
              "user certificate refused", FLOG_STR("virtual", cs->vtarget),
              FLOG_STR("reason", job->reason));
    s->owner = NULL;
    cs_free(cs);
    if (job->rc == FERRY_EDENIED)
        tstream_respond(s, 403, "access-denied");
    else
        tstream_respond(s, 502, "user-certificate-failed");
}

/* A stream with a user: its certificate from the cache (*uc), or a job for the signer
 * (*claims kept for it, *uc NULL). NULL, or why the stream is refused; dn gets the
 * subject when the claims make one (for the audit line). */
static const char *
pp_prepare(struct cworker *w, const struct ferry_conf_system *sys, const char *user,
           bool user_big, char *dn, size_t dn_size, json_t **claims,
           struct ferry_tls_usercert **uc, char *why, size_t why_size)
{
    struct connector *cn = w->cn;
    struct ferry_err  err = { 0 };
    int               rc;

    *claims = NULL;
    *uc = NULL;
    dn[0] = '\0';
    if (user_big)
        return "user claims over the size limit";
    if (w->gen->pp == NULL || w->pp_cache == NULL || sys->pp == FERRY_PP_OFF)
        return "principal propagation not configured for this system";
    if ((*claims = json_loads(user, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
        !json_is_object(*claims)) {
        json_decref(*claims);
        *claims = NULL;
        return "user claims are not a JSON object";
    }
    rc = ferry_tls_usercache_find(w->pp_cache, *claims, time(NULL), dn, dn_size, uc, &err);
    if (rc == FERRY_OK) {
        atomic_fetch_add_explicit(&cn->pp_reused, 1, memory_order_relaxed);
        json_decref(*claims);
        *claims = NULL;
        return NULL;
    }
    if (rc == FERRY_ENOTFOUND)
        return NULL;
    json_decref(*claims);
    *claims = NULL;
    dn[0] = '\0';
    snprintf(why, why_size, "%.280s", rc == FERRY_EDENIED ? err.msg : "no user subject");
    return why;
}

void
cn_on_request(struct tunnel *t, struct tstream *s, const char *authority, const char *protocol,
              const char *user, bool user_big)
{
    struct link                    *l = tunnel_owner(t);
    struct cworker                 *w = l->w;
    struct connector               *cn = w->cn;
    const struct ferry_conf_system *sys;
    struct cstream                 *cs;
    struct ferry_tls_usercert      *uc = NULL;
    json_t                         *claims = NULL;
    char                            host[260], dn[FERRY_TLS_DN_MAX_BYTES], why[300];
    uint16_t                        port = 0;
    int                             rc;

    stats_add(&cn->stats->cell[w->id].conns_total, 1);
    /* audit_fail: closed: a stream that could not be audited is not opened. The retry
     * writes what is pending first, so the first stream after a fix goes through. */
    if (cn->audit != NULL && !w->gen->conf->audit_fail_open &&
        ferry_audit_retry(cn->audit) != FERRY_OK) {
        stats_add(&cn->stats->cell[w->id].conns_rejected, 1);
        ferry_log(NULL, FERRY_WARN, "access denied", FLOG_STR("virtual", authority),
                  FLOG_STR("protocol", protocol), FLOG_STR("reason", "audit-unavailable"));
        tstream_respond(s, 403, "access-denied");
        return;
    }
    sys = split_authority(authority, host, sizeof(host), &port)
        ? ferry_connector_find_system(w->gen->conf, host, port) : NULL;
    if (sys == NULL || !proto_fits(protocol, sys->protocol)) {
        refuse(w, s, authority, NULL, protocol, sys == NULL ? "no system for this virtual host" :
               "protocol not allowed", NULL, user != NULL || user_big);
        return;
    }
    if (user != NULL || user_big) {
        const char *no = pp_prepare(w, sys, user, user_big, dn, sizeof(dn), &claims, &uc,
                                    why, sizeof(why));

        if (no != NULL) {
            refuse(w, s, authority, sys, protocol, no, dn[0] != '\0' ? dn : NULL, true);
            return;
        }
    }
    if ((cs = calloc(1, sizeof(*cs))) == NULL) {
        json_decref(claims);
        ferry_tls_usercert_unref(uc);
        tstream_respond(s, 502, "no-memory");
        return;
    }
    cs->gen = cgen_ref(w->gen);         /* sys is in it: this stream keeps its rules */
    cs->s = s;
    cs->l = l;
    cs->sys = sys;
    cs->uc = uc;
    snprintf(cs->vtarget, sizeof(cs->vtarget), "%s", authority);
    gettimeofday(&cs->started, NULL);
    s->owner = cs;
    w->nstreams++;
    atomic_fetch_add(&cn->stats->active, 1);
    if (claims == NULL) {
        cs_dial(cs);
        return;
    }
    /* A new user (or a certificate near its end): signed off this loop; the stream
     * waits, the others go on. */
    if ((rc = cpp_wait(w, cs, dn, claims)) != FERRY_OK) {
        audit(cn, cs->vtarget, sys, "denied", rc == FERRY_ELIMIT ?
              "user certificate signer busy" : "out of memory", 0, 0, &cs->started, NULL, dn);
        atomic_fetch_add_explicit(&cn->pp_refused, 1, memory_order_relaxed);
        s->owner = NULL;
        cs_free(cs);
        tstream_respond(s, rc == FERRY_ELIMIT ? 503 : 502,
                        rc == FERRY_ELIMIT ? "overloaded" : "no-memory");
    }
}

void
cn_on_stream_end(struct tstream *s, enum tstream_end why)
{
    struct cstream   *cs = s->owner;
    struct connector *cn = cs->l->w->cn;
    unsigned          wid = cs->l->w->id;

    if (why != TSTREAM_DONE)
        stats_add(&cn->stats->cell[wid].conns_failed, 1);
    /* bytes_in here = read from the internal host; the record is from the gateway's
     * point of view (in = towards the internal host). */
    audit(cn, cs->vtarget, cs->sys, why == TSTREAM_DONE ? "ok" : why == TSTREAM_RESET ? "reset" :
          "tunnel-lost", NULL, s->bytes_out, s->bytes_in, &cs->started, NULL, cs_user(cs));
    cs_free(cs);
}

/* From the gateway's point of view, like its metrics: in = towards the internal host. */
void
cn_on_bytes(struct tstream *s, uint64_t in, uint64_t out)
{
    struct cstream    *cs = s->owner;
    struct stats_cell *cell = &cs->l->w->cn->stats->cell[cs->l->w->id];

    if (out != 0)
        stats_add(&cell->bytes_in, out);
    if (in != 0)
        stats_add(&cell->bytes_out, in);
}
