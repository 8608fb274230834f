/*
 * connector.c: the connector process: workers, links to gateways, access control,
 * streams to internal hosts, audit records.
 *
 * A link is one tunnel slot to one gateway: dial, TLS (the gateway's certificate is
 * checked against `ca` and the dialed name), registration, then an HTTP/2 server
 * session (session.c). A lost link comes back with jittered exponential backoff.
 * Slot 0 learns the gateway's slot count; slot s lives on worker s % workers.
 *
 * Access control is a lookup, deny by default: the stream's virtual host:port must
 * be a configured system whose protocol fits what the gateway asks for. The internal
 * address is used here and written only to the connector's own audit log.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <ferry/http.h>
#include <ferry/log.h>

#include "admin/admin.h"
#include "admin/stats.h"
#include "conf/connector-conf.h"
#include "log/log.h"
#include "route/dial.h"
#include "tunnel/audit.h"
#include "tunnel/connector.h"
#include "tunnel/session.h"
#include "tunnel/tls.h"

#define MAX_CWORKERS       64
#define MAX_GATEWAYS       16
#define MAX_SLOTS          64
#define BACKOFF_FIRST_MS   250
#define REGISTER_TIMEOUT_MS 10000
#define REPLY_MAX_BYTES    4096

struct connector;

struct cworker {
    unsigned           id;
    pthread_t          thread;
    struct connector  *cn;
    struct event_base *base;
    struct evdns_base *dns;
    int                cmd_fd;
    struct event       cmd_ev;
    struct link       *links;
    unsigned           nstreams;
    bool               draining;
};

struct connector {
    struct ferry_connector_conf *conf;
    SSL_CTX                     *ctx;
    struct ferry_audit          *audit;      /* NULL: no audit_log */
    struct cworker               ws[MAX_CWORKERS];
    unsigned                     nworkers;
    atomic_int                   live;       /* tunnels up, for /readyz */
    atomic_uint                  slots[MAX_GATEWAYS];
    char                         id[33];
    char                        *systems_json;  /* virtual names only, for the hello */
    SSL_CTX                    **sys_ctx;       /* per system: TLS to the internal host */
    struct stats_slot           *stats;
    atomic_bool                  draining;
    atomic_bool                  stopping;
};

enum link_state { L_WAIT, L_DIAL, L_TLS, L_HELLO_OUT, L_HELLO_IN, L_UP, L_STOPPED };

struct link {
    struct link     *next;
    struct cworker  *w;
    unsigned         gw, slot;
    enum link_state  st;
    struct event     ev, timer;
    bool             ev_added;
    int              fd;
    SSL             *ssl;
    struct dial     *dial;
    struct tunnel   *t;
    uint32_t         backoff_ms;
    uint8_t         *buf;
    size_t           len, off;
    bool             warned;      /* a refusal is logged once per outage, then debug */
};

/* HTTP systems with `paths`: the connector reads each request head the gateway sends
 * and lets it through only if its path is allowed (SAP's "path and all sub-paths"). */
#define HF_HEAD_MAX (16 * 1024)

enum hf_state { HF_HEAD, HF_BODY_LENGTH, HF_BODY_CHUNKED, HF_PASS, HF_DENIED };

struct http_filter {
    enum hf_state             st;
    char                     *head;       /* owns: HF_HEAD_MAX, the head being read */
    size_t                    head_len;
    uint64_t                  remaining;  /* HF_BODY_LENGTH */
    struct ferry_http_chunked chunked;    /* HF_BODY_CHUNKED */
    struct ferry_http_req     req;
};

struct cstream {
    struct http_filter             *hf;        /* owns; NULL unless the system has paths */
    struct tstream                 *s;
    struct link                    *l;
    const struct ferry_conf_system *sys;
    struct dial                    *dial;
    struct event                    ev;
    bool                            ev_added;
    SSL                            *ssl;        /* owns during the TLS handshake */
    struct timeval                  started;
    char                            vtarget[300];
};

static void link_start(evutil_socket_t fd, short what, void *arg);
static void link_step(struct link *l);

/* ---- audit and helpers ---------------------------------------------------------------- */

static void
audit(struct connector *cn, const char *vtarget, const struct ferry_conf_system *sys,
      const char *outcome, const char *reason, uint64_t in, uint64_t out,
      const struct timeval *started, const char *asked)
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
    r.bytes_in = in;
    r.bytes_out = out;
    if (started != NULL) {
        gettimeofday(&now, NULL);
        timersub(&now, started, &d);
        r.duration_ms = (uint64_t)d.tv_sec * 1000 + (uint64_t)d.tv_usec / 1000;
    }
    ferry_audit_write(cn->audit, &r);
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
    if (cs->ssl != NULL)
        SSL_free(cs->ssl);
    if (cs->dial != NULL)
        dial_abort(&cs->dial);
    if (cs->ev_added)
        event_del(&cs->ev);
    cs->l->w->nstreams--;
    atomic_fetch_sub(&cs->l->w->cn->stats->active, 1);
    free(cs);
}

static void cs_tls_step(struct cstream *cs, short what);

static void
on_cs_event(evutil_socket_t fd, short what, void *arg)
{
    struct cstream *cs = arg;

    (void)fd;
    if (cs->dial != NULL) {
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
        ferry_audit_write(cn->audit, &r);
    }
    stats_add(&cn->stats->cell[cs->l->w->id].conns_rejected, 1);
    ferry_log(NULL, FERRY_WARN, "request denied", FLOG_STR("virtual", cs->vtarget),
              FLOG_STR("reason", why));
    cs->hf->st = HF_DENIED;
    tstream_reply(cs->s, resp, (size_t)n);
    return 0;
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
    if (tstream_sock_write(cs->s, hf->head, used) < 0)
        return -1;
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

/* HTTP/HTTPS systems with `paths` get the request filter; every other stream is a
 * plain relay. Without memory for it the stream fails rather than go unchecked. */
static bool
cs_attach_filter(struct cstream *cs)
{
    if (cs->sys->paths == NULL ||
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
          "tls-failed", reason, 0, 0, &cs->started, NULL);
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
              reason, 0, 0, &cs->started, NULL);
        stats_add(&cn->stats->cell[wid].conns_failed, 1);
        ferry_log(NULL, FERRY_WARN, "internal host not reachable", FLOG_STR("virtual", cs->vtarget),
                  FLOG_STR("error", reason));
        s->owner = NULL;
        cs_free(cs);
        tstream_respond(s, status == FERRY_ETIMEDOUT ? 504 : 502, err);
        return;
    }
    s->own_fd = fd;
    /* The event was added while connecting: later bytes come as an edge. */
    s->own_readable = false;
    s->own_writable = true;
    if (cs->sys->tls) {
        /* TCPS, HTTPS, LDAPS, RFCS: the connector speaks TLS to the internal host; the
         * connect timeout keeps running until the handshake is done. */
        const char *name = cs->sys->tls_server_name != NULL ? cs->sys->tls_server_name
                                                            : cs->sys->internal_host;

        cs->ssl = tls_client_ssl(cn->sys_ctx[cs->sys - cn->conf->systems], fd, name);
        if (cs->ssl == NULL) {
            cs_fail(cs, 502, "no-memory", "out of memory");
            return;
        }
        if (!cs->sys->tls_verify)
            SSL_set_verify(cs->ssl, SSL_VERIFY_NONE, NULL);
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

    if (what & EV_TIMEOUT) {
        cs_fail(cs, 504, "upstream-timeout", "TLS handshake with the internal host timed out");
        return;
    }
    ERR_clear_error();
    if ((r = SSL_connect(cs->ssl)) == 1) {
        s->ssl = cs->ssl;               /* the stream owns it now */
        cs->ssl = NULL;
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
        return;                         /* the next edge brings us back */
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

static void
cn_on_request(struct tunnel *t, struct tstream *s, const char *authority, const char *protocol)
{
    struct link                    *l = tunnel_owner(t);
    struct cworker                 *w = l->w;
    struct connector               *cn = w->cn;
    const struct ferry_conf_system *sys;
    struct cstream                 *cs;
    char                            host[260];
    uint16_t                        port = 0;

    stats_add(&cn->stats->cell[w->id].conns_total, 1);
    sys = split_authority(authority, host, sizeof(host), &port)
        ? ferry_connector_find_system(cn->conf, host, port) : NULL;
    if (sys == NULL || !proto_fits(protocol, sys->protocol)) {
        const char *why = sys == NULL ? "no system for this virtual host" : "protocol not allowed";

        /* Deny by default; the gateway turns 403 into the client protocol's refusal. */
        audit(cn, authority, NULL, "denied", why, 0, 0, NULL, protocol);
        stats_add(&cn->stats->cell[w->id].conns_rejected, 1);
        ferry_log(NULL, FERRY_WARN, "access denied", FLOG_STR("virtual", authority),
                  FLOG_STR("protocol", protocol), FLOG_STR("reason", why));
        tstream_respond(s, 403, "access-denied");
        return;
    }
    if ((cs = calloc(1, sizeof(*cs))) == NULL) {
        tstream_respond(s, 502, "no-memory");
        return;
    }
    cs->s = s;
    cs->l = l;
    cs->sys = sys;
    snprintf(cs->vtarget, sizeof(cs->vtarget), "%s", authority);
    gettimeofday(&cs->started, NULL);
    s->owner = cs;
    w->nstreams++;
    atomic_fetch_add(&cn->stats->active, 1);
    if (dial_begin(&cs->dial, w->base, w->dns, &cs_dial_ops, cs, sys->internal_host,
                   sys->internal_port, cn->conf->connect_timeout_ms) != FERRY_OK) {
        s->owner = NULL;
        cs_free(cs);
        tstream_respond(s, 502, "no-memory");
    }
}

static void
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
          "tunnel-lost", NULL, s->bytes_out, s->bytes_in, &cs->started, NULL);
    cs_free(cs);
}

/* ---- links to gateways ------------------------------------------------------------------ */

static void
link_close_transport(struct link *l)
{
    if (l->dial != NULL)
        dial_abort(&l->dial);
    if (l->ev_added) {
        event_del(&l->ev);
        l->ev_added = false;
    }
    if (l->ssl != NULL) {
        SSL_free(l->ssl);
        l->ssl = NULL;
    }
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    free(l->buf);
    l->buf = NULL;
}

/* Jittered exponential backoff: a fleet of connectors does not reconnect in step. */
static void
link_retry(struct link *l, const char *why)
{
    struct connector *cn = l->w->cn;
    uint32_t          cap = cn->conf->reconnect_max_ms;
    uint32_t          delay;
    uint32_t          r = 0;
    struct timeval    tv;

    link_close_transport(l);
    if (atomic_load(&cn->draining) || l->st == L_STOPPED) {
        l->st = L_STOPPED;
        return;
    }
    l->backoff_ms = l->backoff_ms == 0 ? BACKOFF_FIRST_MS : l->backoff_ms * 2;
    if (l->backoff_ms > cap)
        l->backoff_ms = cap;
    RAND_bytes((unsigned char *)&r, sizeof(r));
    delay = l->backoff_ms / 2 + (l->backoff_ms > 1 ? r % (l->backoff_ms / 2) : 0);
    ferry_log(NULL, l->warned ? FERRY_DEBUG : FERRY_WARN, "gateway link down, retrying",
              FLOG_STR("gateway", cn->conf->gateways[l->gw].text), FLOG_INT("slot", l->slot),
              FLOG_STR("reason", why), FLOG_INT("retry_ms", delay));
    l->warned = true;
    l->st = L_WAIT;
    tv.tv_sec = delay / 1000;
    tv.tv_usec = (delay % 1000) * 1000;
    evtimer_add(&l->timer, &tv);
}

static void
on_link_event(evutil_socket_t fd, short what, void *arg)
{
    struct link *l = arg;

    (void)fd;
    if (l->dial != NULL) {
        dial_event(&l->dial, what);
        return;
    }
    if (what & EV_TIMEOUT) {
        link_retry(l, "registration timed out");
        return;
    }
    link_step(l);
}

static void
link_watch(void *owner, int fd, uint32_t timeout_ms)
{
    struct link   *l = owner;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

    if (l->ev_added)
        event_del(&l->ev);
    event_assign(&l->ev, l->w->base, fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST, on_link_event, l);
    l->ev_added = event_add(&l->ev, &tv) == 0;
}

static void
link_unwatch(void *owner)
{
    struct link *l = owner;

    if (l->ev_added) {
        event_del(&l->ev);
        l->ev_added = false;
    }
}

static char *
hello_json(struct link *l)
{
    struct connector *cn = l->w->cn;
    json_t           *o = json_object();
    json_error_t      jerr;
    char             *text;

    json_object_set_new(o, "tenant", json_string(cn->conf->tenant));
    json_object_set_new(o, "token", json_string(cn->conf->token));
    json_object_set_new(o, "location", json_string(cn->conf->location_id));
    json_object_set_new(o, "version", json_string(FERRY_VERSION));
    json_object_set_new(o, "connector", json_string(cn->id));
    json_object_set_new(o, "slot", json_integer(l->slot));
    json_object_set_new(o, "systems", json_loads(cn->systems_json, 0, &jerr));
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void
link_dial_done(void *owner, int fd, int status, const char *reason)
{
    struct link      *l = owner;
    struct connector *cn = l->w->cn;
    char             *text;
    size_t            n;

    (void)status;
    if (fd < 0) {
        link_retry(l, reason);
        return;
    }
    l->fd = fd;
    if ((l->ssl = tls_client_ssl(cn->ctx, fd, cn->conf->gateways[l->gw].host)) == NULL ||
        (text = hello_json(l)) == NULL) {
        link_retry(l, "out of memory");
        return;
    }
    n = strlen(text);
    if ((l->buf = malloc(n + 4 > REPLY_MAX_BYTES + 4 ? n + 4 : REPLY_MAX_BYTES + 4)) == NULL) {
        OPENSSL_cleanse(text, n);
        free(text);
        link_retry(l, "out of memory");
        return;
    }
    l->buf[0] = (uint8_t)(n >> 24);
    l->buf[1] = (uint8_t)(n >> 16);
    l->buf[2] = (uint8_t)(n >> 8);
    l->buf[3] = (uint8_t)n;
    memcpy(l->buf + 4, text, n);
    OPENSSL_cleanse(text, n);           /* it holds the token */
    free(text);
    l->len = n + 4;
    l->off = 0;
    l->st = L_TLS;
    link_watch(l, fd, REGISTER_TIMEOUT_MS);
    link_step(l);
}

static const struct dial_ops link_dial_ops = {
    .watch = link_watch, .unwatch = link_unwatch, .done = link_dial_done,
};

static void cn_on_tunnel_close(struct tunnel *t, const char *reason);

/* From the gateway's point of view, like its metrics: in = towards the internal host. */
static void
cn_on_bytes(struct tstream *s, uint64_t in, uint64_t out)
{
    struct cstream    *cs = s->owner;
    struct stats_cell *cell = &cs->l->w->cn->stats->cell[cs->l->w->id];

    if (out != 0)
        stats_add(&cell->bytes_in, out);
    if (in != 0)
        stats_add(&cell->bytes_out, in);
}

static const struct tunnel_ops cn_ops = {
    .on_request      = cn_on_request,
    .on_stream_end   = cn_on_stream_end,
    .on_bytes        = cn_on_bytes,
    .on_tunnel_close = cn_on_tunnel_close,
};

static void wake_all(struct connector *cn);

static void
link_registered(struct link *l, json_t *reply)
{
    struct connector    *cn = l->w->cn;
    struct tunnel_params p = { cn->conf->keepalive_ms, cn->conf->dead_peer_timeout_ms };
    json_t              *slots = json_object_get(reply, "slots");
    unsigned             n = json_is_integer(slots) ? (unsigned)json_integer_value(slots) : 1;

    if (n < 1)
        n = 1;
    if (n > MAX_SLOTS)
        n = MAX_SLOTS;
    if (atomic_exchange(&cn->slots[l->gw], n) != n)
        wake_all(cn);                   /* workers create the links for new slots */
    link_unwatch(l);
    free(l->buf);
    l->buf = NULL;
    l->t = tunnel_new(l->w->base, TUNNEL_CONNECTOR, l->fd, l->ssl, &cn_ops, &p, l);
    l->fd = -1;                         /* the tunnel owns them now (even on failure) */
    l->ssl = NULL;
    if (l->t == NULL) {
        link_retry(l, "cannot start the HTTP/2 session");
        return;
    }
    l->st = L_UP;
    l->backoff_ms = 0;
    l->warned = false;
    atomic_fetch_add(&cn->live, 1);
    atomic_fetch_add(&cn->stats->tunnels, 1);
    ferry_log(NULL, FERRY_INFO, "tunnel up", FLOG_STR("gateway", cn->conf->gateways[l->gw].text),
              FLOG_INT("slot", l->slot), FLOG_STR("tenant", cn->conf->tenant),
              FLOG_STR("location", cn->conf->location_id));
}

static void
cn_on_tunnel_close(struct tunnel *t, const char *reason)
{
    struct link      *l = tunnel_owner(t);
    struct connector *cn = l->w->cn;

    l->t = NULL;
    atomic_fetch_sub(&cn->live, 1);
    atomic_fetch_sub(&cn->stats->tunnels, 1);
    ferry_log(NULL, FERRY_INFO, "tunnel down", FLOG_STR("gateway", cn->conf->gateways[l->gw].text),
              FLOG_INT("slot", l->slot), FLOG_STR("reason", reason));
    if (atomic_load(&cn->draining)) {
        l->st = L_STOPPED;
        if (l->w->nstreams == 0)
            event_base_loopexit(l->w->base, NULL);
        return;
    }
    l->backoff_ms = 0;                  /* first retry soon: the gateway may be restarting */
    l->warned = false;
    link_retry(l, reason);
}

static void
link_step(struct link *l)
{
    struct connector *cn = l->w->cn;
    char              msg[256];
    int               r = 1;

    for (;;) {
        size_t n = 0;

        ERR_clear_error();
        if (l->st == L_TLS) {
            if ((r = SSL_connect(l->ssl)) == 1) {
                l->st = L_HELLO_OUT;
                continue;
            }
        } else if (l->st == L_HELLO_OUT) {
            if (l->off == l->len) {
                OPENSSL_cleanse(l->buf, l->len);
                l->st = L_HELLO_IN;
                l->off = 0;
                l->len = 4;
                continue;
            }
            if ((r = SSL_write_ex(l->ssl, l->buf + l->off, l->len - l->off, &n)) == 1) {
                l->off += n;
                continue;
            }
        } else if (l->st == L_HELLO_IN) {
            if (l->off == l->len && l->len == 4) {
                size_t want = ((size_t)l->buf[0] << 24) | ((size_t)l->buf[1] << 16) |
                              ((size_t)l->buf[2] << 8) | l->buf[3];

                if (want == 0 || want > REPLY_MAX_BYTES) {
                    link_retry(l, "bad registration reply");
                    return;
                }
                l->len = 4 + want;
                continue;
            }
            if (l->off == l->len) {
                json_t *o = json_loadb((const char *)l->buf + 4, l->len - 4, 0, NULL);
                json_t *ok = json_object_get(o, "ok");
                json_t *err = json_object_get(o, "error");

                if (json_is_true(ok)) {
                    link_registered(l, o);
                } else {
                    const char *why = json_is_string(err) ? json_string_value(err) : "refused";

                    ferry_log(NULL, FERRY_ERROR, "gateway refused registration",
                              FLOG_STR("gateway", cn->conf->gateways[l->gw].text),
                              FLOG_INT("slot", l->slot), FLOG_STR("tenant", cn->conf->tenant),
                              FLOG_STR("reason", why));
                    l->warned = true;
                    if (strcmp(why, "slot out of range") == 0) {
                        link_close_transport(l);
                        l->st = L_STOPPED;      /* the gateway has fewer workers now */
                    } else {
                        link_retry(l, why);
                    }
                }
                json_decref(o);
                return;
            }
            if ((r = SSL_read_ex(l->ssl, l->buf + l->off, l->len - l->off, &n)) == 1) {
                l->off += n;
                continue;
            }
        } else {
            return;
        }
        switch (SSL_get_error(l->ssl, r)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            return;
        default: {
            long vr = SSL_get_verify_result(l->ssl);

            if (vr != X509_V_OK)
                snprintf(msg, sizeof(msg), "gateway certificate not trusted: %s",
                         X509_verify_cert_error_string(vr));
            else
                tls_error_text(msg, sizeof(msg));
            l->warned = false;          /* always say why TLS failed */
            link_retry(l, msg);
            return;
        }
        }
    }
}

static void
link_start(evutil_socket_t fd, short what, void *arg)
{
    struct link              *l = arg;
    struct connector         *cn = l->w->cn;
    struct ferry_conf_gateway_addr *g = &cn->conf->gateways[l->gw];

    (void)fd;
    (void)what;
    if (atomic_load(&cn->draining))
        return;
    l->st = L_DIAL;
    if (dial_begin(&l->dial, l->w->base, l->w->dns, &link_dial_ops, l, g->host, g->port,
                   5000) != FERRY_OK)
        link_retry(l, "out of memory");
}

static void
worker_sync_links(struct cworker *w)
{
    struct connector *cn = w->cn;

    for (unsigned g = 0; g < cn->conf->ngateways; g++) {
        unsigned n = atomic_load(&cn->slots[g]);

        for (unsigned s = 0; s < n; s++) {
            struct link   *l;
            struct timeval now = { 0, 0 };

            if (s % cn->nworkers != w->id)
                continue;
            for (l = w->links; l != NULL; l = l->next)
                if (l->gw == g && l->slot == s)
                    break;
            if (l != NULL) {
                if (l->st == L_STOPPED && !atomic_load(&cn->draining)) {
                    l->st = L_WAIT;     /* the gateway grew again */
                    evtimer_add(&l->timer, &now);
                }
                continue;
            }
            if ((l = calloc(1, sizeof(*l))) == NULL)
                continue;
            l->w = w;
            l->gw = g;
            l->slot = s;
            l->fd = -1;
            l->st = L_WAIT;
            evtimer_assign(&l->timer, w->base, link_start, l);
            l->next = w->links;
            w->links = l;
            evtimer_add(&l->timer, &now);
        }
    }
}

/* ---- workers ------------------------------------------------------------------------------ */

static void
cworker_wake(struct cworker *w)
{
    uint64_t one = 1;

    if (write(w->cmd_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        ferry_log(NULL, FERRY_ERROR, "cannot wake worker", FLOG_INT("worker", w->id));
}

static void
wake_all(struct connector *cn)
{
    for (unsigned i = 0; i < cn->nworkers; i++)
        cworker_wake(&cn->ws[i]);
}

static void
on_cworker_cmd(evutil_socket_t fd, short what, void *arg)
{
    struct cworker   *w = arg;
    struct connector *cn = w->cn;
    uint64_t          junk;

    (void)what;
    if (read(fd, &junk, sizeof(junk)) < 0 && errno != EAGAIN)
        return;
    if (atomic_load(&cn->stopping)) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    if (atomic_load(&cn->draining) && !w->draining) {
        w->draining = true;
        for (struct link *l = w->links; l != NULL; l = l->next) {
            evtimer_del(&l->timer);
            if (l->t != NULL)
                tunnel_shutdown(l->t);      /* GOAWAY: no new streams, finish the rest */
            else {
                link_close_transport(l);
                l->st = L_STOPPED;
            }
        }
        if (w->nstreams == 0)
            event_base_loopexit(w->base, NULL);
        return;
    }
    worker_sync_links(w);
}

static void *
cworker_main(void *arg)
{
    struct cworker *w = arg;

    event_base_dispatch(w->base);
    /* Stopping: close what is left. */
    for (struct link *l = w->links; l != NULL; l = l->next) {
        evtimer_del(&l->timer);
        l->st = L_STOPPED;
        if (l->t != NULL)
            tunnel_close(l->t, "connector stopping");
        link_close_transport(l);
    }
    return NULL;
}

static int
cworker_init(struct cworker *w, unsigned id, struct connector *cn)
{
    struct event_config *cfg = event_config_new();

    w->id = id;
    w->cn = cn;
    w->cmd_fd = -1;
    if (cfg == NULL)
        return FERRY_ENOMEM;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (w->base == NULL || (w->cmd_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return FERRY_ENOMEM;
    if ((w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL &&
        (w->dns = evdns_base_new(w->base, 0)) == NULL)
        return FERRY_ENOMEM;
    evdns_base_load_hosts(w->dns, NULL);
    event_assign(&w->cmd_ev, w->base, w->cmd_fd, EV_READ | EV_PERSIST, on_cworker_cmd, w);
    event_add(&w->cmd_ev, NULL);
    worker_sync_links(w);
    return FERRY_OK;
}

static void
cworker_fini(struct cworker *w)
{
    while (w->links != NULL) {
        struct link *l = w->links;

        w->links = l->next;
        evtimer_del(&l->timer);
        link_close_transport(l);
        free(l);
    }
    if (w->dns != NULL)
        evdns_base_free(w->dns, 1);
    if (w->base != NULL) {
        event_del(&w->cmd_ev);
        event_base_free(w->base);
    }
    if (w->cmd_fd >= 0)
        close(w->cmd_fd);
}

/* ---- the process ------------------------------------------------------------------------ */

struct cmain {
    struct connector         *cn;
    struct ferry_admin_state *st;
    struct event_base        *base;
    struct event             *deadline, *poll;
};

static void
on_drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct cmain *m = arg;
    int           busy = 0;

    (void)fd;
    /* Workers leave their loops when idle; the last one ends the main loop. */
    for (unsigned i = 0; i < m->cn->nworkers; i++)
        busy += __atomic_load_n(&m->cn->ws[i].nstreams, __ATOMIC_RELAXED) > 0;
    if (busy == 0)
        event_base_loopexit(m->base, NULL);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct cmain *m = arg;

    (void)fd;
    (void)what;
    ferry_log(NULL, FERRY_WARN, "drain timeout: closing remaining streams");
    event_base_loopexit(m->base, NULL);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct cmain  *m = arg;
    struct timeval poll = { 0, 100000 };
    struct timeval dl;
    uint32_t       ms = m->cn->conf->drain_timeout_ms;

    (void)what;
    if (atomic_load(&m->cn->draining)) {
        event_base_loopexit(m->base, NULL);
        return;
    }
    ferry_log(NULL, FERRY_INFO, "connector draining", FLOG_STR("signal", sig == SIGINT ? "INT" : "TERM"));
    m->st->ready = false;               /* /readyz: 503 from now on */
    atomic_store(&m->cn->draining, true);
    wake_all(m->cn);
    dl.tv_sec = ms / 1000;
    dl.tv_usec = (ms % 1000) * 1000;
    m->poll = event_new(m->base, -1, EV_PERSIST, on_drain_check, m);
    m->deadline = evtimer_new(m->base, on_deadline, m);
    event_add(m->poll, &poll);
    evtimer_add(m->deadline, &dl);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    /* Swapping the systems table under running workers is not built yet; saying so
     * beats dying on the default action of SIGHUP. */
    ferry_log(NULL, FERRY_WARN, "SIGHUP: the connector does not reload its configuration "
              "yet; restart it (SIGTERM drains) to apply changes");
}

static char *
systems_json(const struct ferry_connector_conf *conf)
{
    json_t *a = json_array();
    char   *text, name[300];

    for (size_t i = 0; i < conf->nsystems; i++) {
        const struct ferry_conf_system *s = &conf->systems[i];

        /* Virtual names only: the internal address never leaves the connector. */
        snprintf(name, sizeof(name), strchr(s->virtual_host, ':') ? "[%s]:%u" : "%s:%u",
                 s->virtual_host, s->virtual_port);
        json_array_append_new(a, json_string(name));
    }
    text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

int
ferry_connector_main(const char *conf_path)
{
    static struct connector   cn;      /* one per process; workers keep pointers into it */
    struct ferry_errlist      errs = { 0 };
    struct ferry_err          err = { 0 };
    struct ferry_admin       *admin = NULL;
    struct ferry_admin_state  st = { 0 };
    struct cmain              m = { 0 };
    struct event             *sig_term = NULL, *sig_int = NULL, *sig_hup = NULL;
    unsigned char             rnd[16];
    long                      ncpu;
    int                       rc = 1;

    if (ferry_connector_conf_load_file(conf_path, &cn.conf, &errs) != FERRY_OK) {
        ferry_errlist_print(&errs, stderr, false);
        return 2;
    }
    ferry_errlist_print(&cn.conf->warnings, stderr, true);
    ferry_log_set_level(cn.conf->log_level);
    signal(SIGPIPE, SIG_IGN);
    if (tls_client_ctx(cn.conf->ca, cn.conf->cert, cn.conf->key, &cn.ctx, &err) != FERRY_OK) {
        fprintf(stderr, "%s: %s\n", conf_path, err.msg);
        ferry_connector_conf_free(cn.conf);
        return 2;
    }
    if (cn.conf->audit_log != NULL &&
        ferry_audit_open(cn.conf->audit_log, &cn.audit, &err) != FERRY_OK) {
        fprintf(stderr, "%s: audit_log: %s\n", conf_path, err.msg);
        goto out;
    }
    RAND_bytes(rnd, sizeof(rnd));
    for (int i = 0; i < 16; i++)
        snprintf(cn.id + 2 * i, 3, "%02x", rnd[i]);
    cn.systems_json = systems_json(cn.conf);
    if ((cn.sys_ctx = calloc(cn.conf->nsystems + 1, sizeof(SSL_CTX *))) == NULL)
        goto out;
    for (size_t i = 0; i < cn.conf->nsystems; i++) {
        if (cn.conf->systems[i].tls &&
            tls_backend_ctx(cn.conf->systems[i].tls_ca, &cn.sys_ctx[i], &err) != FERRY_OK) {
            fprintf(stderr, "%s: systems[%zu]: %s\n", conf_path, i, err.msg);
            goto out;
        }
    }
    cn.stats = ferry_stats_tunnel_slot(cn.conf->tenant, cn.conf->location_id);
    for (size_t g = 0; g < cn.conf->ngateways && g < MAX_GATEWAYS; g++)
        atomic_store(&cn.slots[g], 1);      /* slot 0 first; it learns the rest */
    ncpu = cn.conf->workers != 0 ? (long)cn.conf->workers : sysconf(_SC_NPROCESSORS_ONLN);
    cn.nworkers = ncpu < 1 ? 1 : ncpu > MAX_CWORKERS ? MAX_CWORKERS : (unsigned)ncpu;
    if ((m.base = event_base_new()) == NULL || cn.systems_json == NULL || cn.stats == NULL)
        goto out;
    m.cn = &cn;
    m.st = &st;
    st.role = "connector";
    st.ready = true;
    st.live = &cn.live;
    st.nworkers = cn.nworkers;
    if (cn.conf->admin_listen != NULL &&
        ferry_admin_start(m.base, cn.conf->admin_listen, &st, &admin, &err) != FERRY_OK) {
        ferry_log(NULL, FERRY_ERROR, "cannot start admin listener", FLOG_STR("error", err.msg));
        goto out;
    }
    for (unsigned i = 0; i < cn.nworkers; i++)
        if (cworker_init(&cn.ws[i], i, &cn) != FERRY_OK)
            goto out;
    sig_term = evsignal_new(m.base, SIGTERM, on_signal, &m);
    sig_int = evsignal_new(m.base, SIGINT, on_signal, &m);
    sig_hup = evsignal_new(m.base, SIGHUP, on_hup, &m);
    event_add(sig_term, NULL);
    event_add(sig_int, NULL);
    event_add(sig_hup, NULL);
    for (unsigned i = 0; i < cn.nworkers; i++)
        pthread_create(&cn.ws[i].thread, NULL, cworker_main, &cn.ws[i]);
    ferry_log(NULL, FERRY_INFO, "ferry connector started", FLOG_STR("version", FERRY_VERSION),
              FLOG_STR("config", conf_path), FLOG_STR("tenant", cn.conf->tenant),
              FLOG_STR("location", cn.conf->location_id), FLOG_INT("workers", cn.nworkers),
              FLOG_INT("gateways", (long long)cn.conf->ngateways),
              FLOG_INT("systems", (long long)cn.conf->nsystems), FLOG_STR("id", cn.id));
    event_base_dispatch(m.base);
    atomic_store(&cn.stopping, true);
    wake_all(&cn);
    for (unsigned i = 0; i < cn.nworkers; i++)
        pthread_join(cn.ws[i].thread, NULL);
    ferry_log(NULL, FERRY_INFO, "ferry connector stopped");
    rc = 0;
out:
    for (unsigned i = 0; i < cn.nworkers; i++)
        cworker_fini(&cn.ws[i]);
    if (sig_term != NULL)
        event_free(sig_term);
    if (sig_int != NULL)
        event_free(sig_int);
    if (sig_hup != NULL)
        event_free(sig_hup);
    if (m.poll != NULL)
        event_free(m.poll);
    if (m.deadline != NULL)
        event_free(m.deadline);
    ferry_admin_stop(admin);
    if (m.base != NULL)
        event_base_free(m.base);
    if (cn.audit != NULL)
        ferry_audit_close(cn.audit);
    free(cn.systems_json);
    for (size_t i = 0; cn.sys_ctx != NULL && i < cn.conf->nsystems; i++)
        SSL_CTX_free(cn.sys_ctx[i]);
    free(cn.sys_ctx);
    SSL_CTX_free(cn.ctx);
    ferry_stats_free_all();
    ferry_connector_conf_free(cn.conf);
    return rc;
}

int
ferry_connector_check(const char *conf_path)
{
    struct ferry_errlist         errs = { 0 };
    struct ferry_connector_conf *conf = NULL;
    struct ferry_err             err = { 0 };
    SSL_CTX                     *ctx = NULL;

    if (ferry_connector_conf_load_file(conf_path, &conf, &errs) != FERRY_OK) {
        ferry_errlist_print(&errs, stderr, false);
        return 2;
    }
    ferry_errlist_print(&conf->warnings, stderr, true);
    if (tls_client_ctx(conf->ca, conf->cert, conf->key, &ctx, &err) != FERRY_OK) {
        fprintf(stderr, "%s: %s\n", conf_path, err.msg);
        ferry_connector_conf_free(conf);
        return 2;
    }
    SSL_CTX_free(ctx);
    printf("%s: ok (connector: %zu gateways, %zu systems, tenant %s)\n", conf_path,
           conf->ngateways, conf->nsystems, conf->tenant);
    ferry_connector_conf_free(conf);
    return 0;
}

int
ferry_connector_verify_audit(const char *path)
{
    struct ferry_err err = { 0 };
    uint64_t         n = 0;
    int              rc = ferry_audit_verify(path, &n, &err);

    if (rc == FERRY_OK) {
        printf("%s: chain intact, %llu records\n", path, (unsigned long long)n);
        return 0;
    }
    fprintf(stderr, "%s: %s\n", path, err.msg);
    return rc == FERRY_EIO ? 2 : 1;
}
