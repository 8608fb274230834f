/*
 * gateway.c: the gateway side of the tunnel: registration of connectors on the main
 * thread, then per-worker registries of live tunnels and stream opening.
 *
 * Owns pending registrations (socket + SSL until handed off) and, on each worker,
 * the gw_tunnel records. The tunnel connection itself is session.c's; what a stream
 * carries is the owner's business (a connection or an upstream stream, worker/). A
 * worker is reached only through its struct gw_worker: its post and its hooks.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include <ferry/log.h>

#include "conf/conf.h"
#include "stats/stats.h"
#include "tls/tls.h"
#include "tunnel/gateway.h"
#include "tunnel/session.h"
#include "util/addr.h"

#define HELLO_MAX_BYTES      65536
#define REGISTER_TIMEOUT_MS  10000
#define MAX_PENDING          256      /* registrations in progress at once */
#define MAX_SYSTEMS          4096

struct gw_handoff {
    struct gw_worker  *gw;             /* where it goes */
    int                fd;
    SSL               *ssl;
    char              *tenant, *location, *connector, *version, *peer;
    char             **systems;        /* virtual "host:port" names, lower case */
    size_t             nsystems;
    unsigned           slot;
    struct stats_slot *stats;
    uint32_t           keepalive_ms, dead_peer_timeout_ms;
};

struct gw_tunnel {
    struct gw_tunnel  *prev, *next;
    struct gw_worker  *gw;
    struct tunnel     *t;
    struct gw_handoff *info;           /* owns: fd and ssl moved to the tunnel */
};

enum pend_state { PEND_HANDSHAKE, PEND_HELLO, PEND_REPLY };

struct pending {
    struct pending     *prev, *next;
    struct gw_listener *g;
    int                 fd;
    SSL                *ssl;
    enum pend_state     st;
    struct event        ev, timer;
    uint8_t            *buf;           /* HELLO_MAX_BYTES + 4 */
    size_t              have;
    char                reply[512];
    size_t              reply_len, reply_off;
    struct gw_handoff  *h;             /* set when accepted, handed off after the reply */
    char                peer[64];
};

struct gw_listener {
    struct event_base       *base;
    const struct ferry_conf *conf;     /* borrowed: the current generation's */
    SSL_CTX                 *ctx;
    int                      fd;
    struct event             ev;
    struct gw_slots          slots;
    struct pending          *pending;
    unsigned                 npending;
    bool                     draining;
};

/* ---- handoffs ------------------------------------------------------------------------ */

static void
handoff_free(struct gw_handoff *h)
{
    if (h == NULL)
        return;
    if (h->ssl != NULL)
        SSL_free(h->ssl);
    if (h->fd >= 0)
        close(h->fd);
    for (size_t i = 0; i < h->nsystems; i++)
        free(h->systems[i]);
    free(h->systems);
    free(h->tenant);
    free(h->location);
    free(h->connector);
    free(h->version);
    free(h->peer);
    free(h);
}

static void gw_worker_adopt(struct gw_worker *gw, struct gw_handoff *h);

/* On the chosen worker (or, when it stopped first, on the stopping thread). */
static void
handoff_run(void *arg, bool run)
{
    struct gw_handoff *h = arg;

    if (run)
        gw_worker_adopt(h->gw, h);
    else
        handoff_free(h);
}

/* ---- registration (main thread) ------------------------------------------------------ */

static void
pending_free(struct pending *p)
{
    struct gw_listener *g = p->g;

    event_del(&p->ev);
    event_del(&p->timer);
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        g->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    g->npending--;
    if (p->ssl != NULL)
        SSL_free(p->ssl);
    if (p->fd >= 0)
        close(p->fd);
    handoff_free(p->h);
    free(p->buf);
    free(p);
}

static void
reply_set(struct pending *p, bool ok, const char *error, unsigned slots)
{
    json_t *o = json_object();
    char   *text;
    size_t  n;

    json_object_set_new(o, "ok", json_boolean(ok));
    if (ok)
        json_object_set_new(o, "slots", json_integer(slots));
    else
        json_object_set_new(o, "error", json_string(error));
    json_object_set_new(o, "version", json_string(FERRY_VERSION));
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    n = text != NULL ? strlen(text) : 0;
    if (n > sizeof(p->reply) - 4)
        n = sizeof(p->reply) - 4;
    p->reply[0] = (char)(n >> 24);
    p->reply[1] = (char)(n >> 16);
    p->reply[2] = (char)(n >> 8);
    p->reply[3] = (char)n;
    if (n > 0)
        memcpy(p->reply + 4, text, n);
    free(text);
    p->reply_len = n + 4;
    p->reply_off = 0;
    p->st = PEND_REPLY;
}

static char *
json_str_dup(json_t *o, const char *key, size_t max)
{
    json_t     *v = json_object_get(o, key);
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;

    if (s == NULL || strlen(s) > max)
        return NULL;
    return strdup(s);
}

/* Check a registration. NULL and *why set if refused. */
static struct gw_handoff *
hello_check(struct pending *p, const uint8_t *data, size_t len, const char **why)
{
    const struct ferry_conf        *conf = p->g->conf;
    const struct ferry_conf_tenant *tenant;
    struct gw_handoff              *h;
    json_error_t                    jerr;
    json_t                         *o, *sys, *tok, *slot;
    const char                     *token;

    if ((o = json_loadb((const char *)data, len, 0, &jerr)) == NULL || !json_is_object(o)) {
        json_decref(o);
        *why = "registration is not a JSON object";
        return NULL;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        json_decref(o);
        *why = "out of memory";
        return NULL;
    }
    h->fd = -1;
    h->tenant = json_str_dup(o, "tenant", 200);
    h->location = json_str_dup(o, "location", 200);
    h->connector = json_str_dup(o, "connector", 64);
    h->version = json_str_dup(o, "version", 32);
    h->peer = strdup(p->peer);
    tok = json_object_get(o, "token");
    token = json_is_string(tok) ? json_string_value(tok) : NULL;
    slot = json_object_get(o, "slot");
    sys = json_object_get(o, "systems");
    if (h->tenant == NULL || h->location == NULL || h->connector == NULL || token == NULL ||
        !json_is_integer(slot) || !json_is_array(sys) || h->peer == NULL) {
        *why = "registration misses tenant, token, location, connector, slot or systems";
        goto bad;
    }
    tenant = ferry_conf_tenant(conf, h->tenant);
    /* Constant-time: a token comparison must not leak how much of it matched. */
    if (tenant == NULL || strlen(tenant->token) != strlen(token) ||
        CRYPTO_memcmp(tenant->token, token, strlen(token)) != 0) {
        *why = tenant == NULL ? "unknown tenant" : "bad token for tenant";
        goto bad;
    }
    if (json_integer_value(slot) < 0 || json_integer_value(slot) >= (json_int_t)p->g->slots.n) {
        *why = "slot out of range";
        goto bad;
    }
    h->slot = (unsigned)json_integer_value(slot);
    h->nsystems = json_array_size(sys);
    if (h->nsystems > MAX_SYSTEMS) {
        *why = "too many systems";
        goto bad;
    }
    if ((h->systems = calloc(h->nsystems + 1, sizeof(char *))) == NULL) {
        *why = "out of memory";
        goto bad;
    }
    for (size_t i = 0; i < h->nsystems; i++) {
        json_t *v = json_array_get(sys, i);

        if (!json_is_string(v) || strlen(json_string_value(v)) > 300 ||
            (h->systems[i] = strdup(json_string_value(v))) == NULL) {
            *why = "systems must be \"host:port\" strings";
            goto bad;
        }
    }
    json_decref(o);
    return h;
bad:
    json_decref(o);
    if (h->nsystems > 0 && h->systems == NULL)
        h->nsystems = 0;
    handoff_free(h);
    return NULL;
}

static void
pending_handoff(struct pending *p)
{
    struct gw_listener *g = p->g;
    struct gw_handoff  *h = p->h;

    h->gw = g->slots.at(g->slots.ctx, h->slot);
    h->stats = ferry_stats_tunnel_slot(h->tenant, h->location);
    h->fd = p->fd;
    h->ssl = p->ssl;
    h->keepalive_ms = g->conf->tunnel.keepalive_ms;
    h->dead_peer_timeout_ms = g->conf->tunnel.dead_peer_timeout_ms;
    p->fd = -1;
    p->ssl = NULL;
    p->h = NULL;
    event_del(&p->ev);          /* the worker registers the fd with its own base */
    ferry_log(NULL, FERRY_INFO, "connector registered", FLOG_STR("tenant", h->tenant),
              FLOG_STR("location", h->location), FLOG_STR("connector", h->connector),
              FLOG_INT("slot", h->slot), FLOG_STR("version", h->version),
              FLOG_INT("systems", (long long)h->nsystems), FLOG_STR("peer", h->peer));
    if (ferry_post_run(&h->gw->post, handoff_run, h) != FERRY_OK) {
        ferry_log(NULL, FERRY_ERROR, "cannot hand the tunnel to its worker: out of memory",
                  FLOG_STR("tenant", h->tenant), FLOG_INT("slot", h->slot));
        handoff_free(h);
    }
    pending_free(p);
}

static void pending_step(struct pending *p);

static void
on_pending_event(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;

    (void)fd;
    if (what & EV_TIMEOUT) {
        ferry_log(NULL, FERRY_WARN, "connector registration timed out", FLOG_STR("peer", p->peer));
        pending_free(p);
        return;
    }
    pending_step(p);
}

static void
pending_refuse(struct pending *p, const char *why, const char *tenant)
{
    ferry_log(NULL, FERRY_WARN, "connector rejected", FLOG_STR("tenant", tenant),
              FLOG_STR("reason", why), FLOG_STR("peer", p->peer));
    reply_set(p, false, why, 0);
}

static void
pending_step(struct pending *p)
{
    char msg[256];
    int  r;

    for (;;) {
        ERR_clear_error();
        if (p->st == PEND_HANDSHAKE) {
            if ((r = SSL_accept(p->ssl)) == 1) {
                p->st = PEND_HELLO;
                continue;
            }
        } else if (p->st == PEND_HELLO) {
            size_t got = 0, need;

            need = p->have < 4 ? 4 : 4 + (((size_t)p->buf[0] << 24) | ((size_t)p->buf[1] << 16) |
                                          ((size_t)p->buf[2] << 8) | p->buf[3]);
            if (p->have >= 4 && need - 4 > HELLO_MAX_BYTES) {
                pending_refuse(p, "registration too large", NULL);
                continue;
            }
            if (p->have == need && p->have >= 4) {
                const char *why = NULL;
                char        tenant[201] = "";

                p->h = hello_check(p, p->buf + 4, p->have - 4, &why);
                if (p->h == NULL) {
                    json_t *o = json_loadb((const char *)p->buf + 4, p->have - 4, 0, NULL);
                    json_t *t = json_is_object(o) ? json_object_get(o, "tenant") : NULL;

                    if (json_is_string(t))
                        snprintf(tenant, sizeof(tenant), "%s", json_string_value(t));
                    json_decref(o);
                    pending_refuse(p, why, tenant[0] ? tenant : NULL);
                } else if (p->g->draining) {
                    handoff_free(p->h);
                    p->h = NULL;
                    pending_refuse(p, "gateway is draining", NULL);
                } else {
                    reply_set(p, true, NULL, p->g->slots.n);
                }
                continue;
            }
            if ((r = SSL_read_ex(p->ssl, p->buf + p->have, need - p->have, &got)) == 1) {
                p->have += got;
                continue;
            }
        } else {
            size_t put = 0;

            if (p->reply_off == p->reply_len) {
                if (p->h != NULL)
                    pending_handoff(p);
                else
                    pending_free(p);
                return;
            }
            if ((r = SSL_write_ex(p->ssl, p->reply + p->reply_off, p->reply_len - p->reply_off,
                                  &put)) == 1) {
                p->reply_off += put;
                continue;
            }
        }
        switch (SSL_get_error(p->ssl, r)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            return;             /* the event comes back */
        default:
            /* A peer that closed without sending a byte is a port probe (a load
             * balancer's or a script's TCP check), not a connector that failed. */
            if (BIO_number_read(SSL_get_rbio(p->ssl)) == 0)
                ferry_log(NULL, FERRY_DEBUG, "tunnel port probed (closed before TLS)",
                          FLOG_STR("peer", p->peer));
            else
                ferry_log(NULL, FERRY_WARN, "connector TLS/registration failed",
                          FLOG_STR("peer", p->peer),
                          FLOG_STR("error", tls_error_text(msg, sizeof(msg))));
            pending_free(p);
            return;
        }
    }
}

static void
on_tunnel_accept(evutil_socket_t fd, short what, void *arg)
{
    struct gw_listener     *g = arg;
    struct sockaddr_storage ss;
    socklen_t               len = sizeof(ss);
    struct timeval          tv = { REGISTER_TIMEOUT_MS / 1000, 0 };
    struct pending         *p;
    int                     cfd;

    (void)what;
    while ((cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        len = sizeof(ss);
        if (g->npending >= MAX_PENDING || (p = calloc(1, sizeof(*p))) == NULL) {
            close(cfd);
            continue;
        }
        p->g = g;
        p->fd = cfd;
        ferry_addr_format((struct sockaddr *)&ss, p->peer, sizeof(p->peer));
        if ((p->buf = malloc(HELLO_MAX_BYTES + 4)) == NULL ||
            (p->ssl = SSL_new(g->ctx)) == NULL) {
            free(p->buf);
            free(p);
            close(cfd);
            continue;
        }
        SSL_set_fd(p->ssl, cfd);
        p->next = g->pending;
        if (g->pending != NULL)
            g->pending->prev = p;
        g->pending = p;
        g->npending++;
        event_assign(&p->ev, g->base, cfd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST,
                     on_pending_event, p);
        evtimer_assign(&p->timer, g->base, on_pending_event, p);
        event_add(&p->ev, NULL);
        evtimer_add(&p->timer, &tv);
        pending_step(p);
    }
}

int
gw_listener_start(struct event_base *base, const struct ferry_conf *conf,
                  const struct gw_slots *slots, struct gw_listener **out, struct ferry_err *err)
{
    struct gw_listener     *g;
    struct sockaddr_storage ss;
    socklen_t               len;
    int                     one = 1;

    if (ferry_addr_parse(conf->tunnel.listen, &ss, &len, err) != FERRY_OK)
        return FERRY_EINVAL;
    if ((g = calloc(1, sizeof(*g))) == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    g->base = base;
    g->slots = *slots;
    g->fd = -1;
    if (gw_listener_set_conf(g, conf, err) != FERRY_OK) {
        free(g);
        return FERRY_EINVAL;
    }
    g->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* Inherited by every tunnel socket: WINDOW_UPDATE and PING frames are small and
     * must not wait for Nagle behind a delayed ACK, or every stream stalls. */
    if (g->fd >= 0)
        setsockopt(g->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (g->fd < 0 || setsockopt(g->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(g->fd, (struct sockaddr *)&ss, len) < 0 || listen(g->fd, 256) < 0) {
        ferry_err_set(err, FERRY_EIO, "tunnel: cannot listen on %s: %s", conf->tunnel.listen,
                      strerror(errno));
        gw_listener_stop(g);
        return FERRY_EIO;
    }
    event_assign(&g->ev, base, g->fd, EV_READ | EV_PERSIST, on_tunnel_accept, g);
    event_add(&g->ev, NULL);
    *out = g;
    return FERRY_OK;
}

int
gw_listener_set_conf(struct gw_listener *g, const struct ferry_conf *conf, struct ferry_err *err)
{
    SSL_CTX *ctx;

    if (tls_server_ctx(conf->tunnel.cert, conf->tunnel.key, conf->tunnel.client_ca, &ctx,
                       err) != FERRY_OK)
        return FERRY_EINVAL;
    if (g->ctx != NULL)
        SSL_CTX_free(g->ctx);   /* pending SSLs keep their own reference */
    g->ctx = ctx;
    g->conf = conf;
    return FERRY_OK;
}

void
gw_listener_drain(struct gw_listener *g)
{
    if (g == NULL)
        return;
    g->draining = true;
    if (g->fd >= 0) {
        event_del(&g->ev);
        close(g->fd);
        g->fd = -1;
    }
}

void
gw_listener_stop(struct gw_listener *g)
{
    if (g == NULL)
        return;
    gw_listener_drain(g);
    while (g->pending != NULL)
        pending_free(g->pending);
    if (g->ctx != NULL)
        SSL_CTX_free(g->ctx);
    free(g);
}

/* ---- workers: live tunnels ------------------------------------------------------------ */

static void
gw_on_response(struct tstream *s, int status, const char *error)
{
    struct gw_owner *o = s->owner;

    o->ops->response(o, status, error);
}

static void
gw_on_stream_end(struct tstream *s, enum tstream_end why)
{
    struct gw_owner *o = s->owner;

    o->ops->ended(o, why == TSTREAM_DONE ? "ok" : why == TSTREAM_RESET ? "reset" : "tunnel-lost");
}

static void
gw_on_tunnel_close(struct tunnel *t, const char *reason)
{
    struct gw_tunnel *gt = tunnel_owner(t);
    struct gw_worker *gw = gt->gw;

    ferry_log(NULL, FERRY_INFO, "tunnel down", FLOG_STR("tenant", gt->info->tenant),
              FLOG_STR("location", gt->info->location), FLOG_STR("connector", gt->info->connector),
              FLOG_INT("slot", gt->info->slot), FLOG_STR("reason", reason),
              FLOG_INT("worker", gw->id));
    if (gt->info->stats != NULL)
        atomic_fetch_sub(&gt->info->stats->tunnels, 1);
    if (gt->prev != NULL)
        gt->prev->next = gt->next;
    else
        gw->tunnels = gt->next;
    if (gt->next != NULL)
        gt->next->prev = gt->prev;
    gt->info->fd = -1;          /* the tunnel closed them */
    gt->info->ssl = NULL;
    handoff_free(gt->info);
    free(gt);
    if (gw->draining && gw->tunnels == NULL && gw->idle != NULL)
        gw->idle(gw);
}

static void
gw_on_bytes(struct tstream *s, uint64_t in, uint64_t out)
{
    struct gw_owner *o = s->owner;

    if (o->ops->bytes != NULL)
        o->ops->bytes(o, in, out);
}

/* A connector is leaving: pooled idle streams on its tunnel would hold its drain. */
static void
gw_on_goaway(struct tunnel *t)
{
    struct gw_tunnel *gt = tunnel_owner(t);

    if (gt->gw->goaway != NULL)
        gt->gw->goaway(gt->gw, t);
}

static const struct tunnel_ops gw_ops = {
    .on_goaway       = gw_on_goaway,
    .on_response     = gw_on_response,
    .on_stream_end   = gw_on_stream_end,
    .on_bytes        = gw_on_bytes,
    .on_tunnel_close = gw_on_tunnel_close,
};

static void
gw_worker_adopt(struct gw_worker *gw, struct gw_handoff *h)
{
    struct gw_tunnel    *gt = calloc(1, sizeof(*gt));
    struct tunnel_params p = { h->keepalive_ms, h->dead_peer_timeout_ms };

    if (gt == NULL || gw->draining) {
        free(gt);
        handoff_free(h);
        return;
    }
    gt->gw = gw;
    gt->info = h;
    if ((gt->t = tunnel_new(gw->base, TUNNEL_GATEWAY, h->fd, h->ssl, &gw_ops, &p, gt)) == NULL) {
        ferry_log(NULL, FERRY_ERROR, "cannot start tunnel session", FLOG_STR("tenant", h->tenant));
        free(gt);
        handoff_free(h);
        return;
    }
    /* The session owns fd and ssl now; it may even have closed already. */
    if (h->stats != NULL)
        atomic_fetch_add(&h->stats->tunnels, 1);
    gt->next = gw->tunnels;
    if (gw->tunnels != NULL)
        gw->tunnels->prev = gt;
    gw->tunnels = gt;
    ferry_log(NULL, FERRY_INFO, "tunnel up", FLOG_STR("tenant", h->tenant),
              FLOG_STR("location", h->location), FLOG_STR("connector", h->connector),
              FLOG_INT("slot", h->slot), FLOG_INT("worker", gw->id));
}

void
gw_worker_shutdown(struct gw_worker *gw)
{
    struct gw_tunnel *gt = gw->tunnels, *next;

    for (; gt != NULL; gt = next) {
        next = gt->next;
        tunnel_shutdown(gt->t);     /* may close at once when idle */
    }
}

void
gw_worker_close_all(struct gw_worker *gw)
{
    while (gw->tunnels != NULL)
        tunnel_close(gw->tunnels->t, "gateway stopping");
}

static bool
tunnel_has_system(const struct gw_handoff *h, const char *authority)
{
    for (size_t i = 0; i < h->nsystems; i++)
        if (strcasecmp(h->systems[i], authority) == 0)
            return true;
    return false;
}

int
gw_open_stream(struct gw_worker *gw, struct gw_owner *o, const struct gw_stream_req *r,
               struct tstream **ts, struct stats_slot **tstats)
{
    struct gw_tunnel *best = NULL;
    bool              best_has = false;

    /* Only this tenant's tunnels are ever candidates: isolation is the lookup key. */
    for (struct gw_tunnel *gt = gw->tunnels; gt != NULL; gt = gt->next) {
        bool has;

        if (!tunnel_is_usable(gt->t) || strcmp(gt->info->tenant, r->tenant) != 0 ||
            strcmp(gt->info->location, r->location) != 0)
            continue;
        has = tunnel_has_system(gt->info, r->authority);
        /* Prefer a connector that exposes the name; among those, the least busy. */
        if (best == NULL || (has && !best_has) ||
            (has == best_has && tunnel_streams(gt->t) < tunnel_streams(best->t))) {
            best = gt;
            best_has = has;
        }
    }
    if (best == NULL)
        return FERRY_ENOTUNNEL;
    if (r->must_expose && !best_has)
        return FERRY_ENOTFOUND;
    *ts = tstream_open(best->t, r->authority, r->protocol, o, r->fd, r->readable, r->writable);
    if (*ts == NULL)
        return FERRY_ENOTUNNEL;
    *tstats = best->info->stats;
    if (*tstats != NULL) {
        atomic_fetch_add(&(*tstats)->active, 1);
        stats_add(&(*tstats)->cell[gw->id].conns_total, 1);
    }
    return FERRY_OK;
}

unsigned
gw_worker_streams(struct gw_worker *gw)
{
    unsigned n = 0;

    for (struct gw_tunnel *gt = gw->tunnels; gt != NULL; gt = gt->next)
        n += tunnel_streams(gt->t);
    return n;
}
