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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
#include "tunnel/replicas.h"
#include "tunnel/session.h"
#include "util/addr.h"

#define HELLO_MAX_BYTES      65536
#define REGISTER_TIMEOUT_MS  10000
#define MAX_PENDING          256      /* registrations in progress at once */
#define MAX_SYSTEMS          4096
/* A reply: the fixed fields, the replica id and a replica list (replicas.h's bound). */
#define REPLY_MAX_BYTES      (REPLICAS_JSON_MAX + 1024)

/* The replica list as workers push it: immutable text, shared by every worker that
 * sends it; the last unref frees it (any thread). */
struct gw_list {
    atomic_int refs;
    size_t     len;
    char       text[];                 /* {"replica":…,"replicas":[…]}, NUL-terminated */
};

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
    bool               follows;        /* the connector announced it follows replica lists */
    struct gw_list    *push;           /* ref: a list newer than the reply, for slot 0 */
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
    char               *reply;          /* owns: 4-byte length + JSON */
    size_t              reply_len, reply_off;
    uint64_t            reply_gen;      /* the list generation the reply carried */
    struct gw_handoff  *h;             /* set when accepted, handed off after the reply */
    char                peer[64];
};

struct gw_listener {
    struct event_base       *base;
    const struct ferry_conf *conf;     /* borrowed: the current generation's */
    SSL_CTX                 *ctx;
    int                      fd;
    struct event             ev;
    /* Out of descriptors: the socket is unwatched for pause_ms (100 doubling to 1000),
     * or the loop would spin on it (as worker.c does for the listeners). */
    struct event             pause;
    uint32_t                 pause_ms;
    uint64_t                 nofd;      /* refusals since the last log line */
    time_t                   nofd_logged;
    struct gw_slots          slots;
    struct pending          *pending;
    unsigned                 npending;
    bool                     draining;
    char                     id[REPLICA_ID_MAX + 1];  /* "" until main sets it */
    json_t                  *replicas;  /* owns: the list's array for replies; NULL: none */
    struct gw_list          *list;      /* ref: the same as text, for pushes */
    uint64_t                 gen;       /* bumped when the list changes */
};

/* A list on its way to one worker. */
struct gw_push {
    struct gw_worker *gw;
    struct gw_list   *l;                /* ref */
};

static void
list_unref(struct gw_list *l)
{
    if (l != NULL && atomic_fetch_sub(&l->refs, 1) == 1)
        free(l);
}

static struct gw_list *
list_ref(struct gw_list *l)
{
    if (l != NULL)
        atomic_fetch_add(&l->refs, 1);
    return l;
}

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
    list_unref(h->push);
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
    free(p->reply);
    free(p);
}

/* The reply names this replica when it has an id and lists the replicas to a
 * connector that follows lists: an older one would refuse a reply over its 4 KiB. */
static void
reply_set(struct pending *p, bool ok, const char *error, unsigned slots)
{
    struct gw_listener *g = p->g;
    json_t             *o = json_object();
    char               *text;
    size_t              n;

    json_object_set_new(o, "ok", json_boolean(ok));
    if (ok)
        json_object_set_new(o, "slots", json_integer(slots));
    else
        json_object_set_new(o, "error", json_string(error));
    json_object_set_new(o, "version", json_string(FERRY_VERSION));
    if (ok && g->id[0] != '\0')
        json_object_set_new(o, "replica", json_string(g->id));
    if (ok && g->replicas != NULL && p->h != NULL && p->h->follows)
        json_object_set(o, "replicas", g->replicas);
    p->reply_gen = g->gen;
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    n = text != NULL ? strlen(text) : 0;
    free(p->reply);
    /* Past the bound (the list's own cap keeps it below) or out of memory: an empty
     * reply, which the connector refuses and redials. */
    if (n > REPLY_MAX_BYTES || (p->reply = malloc(n + 4)) == NULL) {
        free(text);
        text = NULL;
        n = 0;
        p->reply = malloc(4);
    }
    if (p->reply == NULL) {             /* out of memory: close without a word */
        handoff_free(p->h);
        p->h = NULL;
        p->st = PEND_REPLY;
        p->reply_len = p->reply_off = 0;
        return;
    }
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

struct gw_handoff *
gw_hello_check(const struct ferry_conf *conf, unsigned nslots, const char *peer,
               const uint8_t *data, size_t len, const char **why)
{
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
    h->peer = strdup(peer);
    h->follows = json_is_true(json_object_get(o, "replicas"));
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
    /* Constant-time: a token comparison must not leak how much of it matched. A tenant
     * with jwt: only has no static token: its connectors cannot register. */
    if (tenant == NULL || tenant->token == NULL || strlen(tenant->token) != strlen(token) ||
        CRYPTO_memcmp(tenant->token, token, strlen(token)) != 0) {
        *why = tenant == NULL ? "unknown tenant" : "bad token for tenant";
        goto bad;
    }
    if (json_integer_value(slot) < 0 || json_integer_value(slot) >= (json_int_t)nslots) {
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

void
gw_handoff_free(struct gw_handoff *h)
{
    handoff_free(h);
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
    /* The list changed while the reply was on its way: the push went to the tunnels
     * of the time, not to this one. */
    if (h->follows && h->slot == 0 && p->reply_gen != g->gen)
        h->push = list_ref(g->list);
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

                p->h = gw_hello_check(p->g->conf, p->g->slots.n, p->peer, p->buf + 4,
                                      p->have - 4, &why);
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
on_tunnel_pause_end(evutil_socket_t fd, short what, void *arg)
{
    struct gw_listener *g = arg;

    (void)fd;
    (void)what;
    if (g->fd >= 0)
        event_add(&g->ev, NULL);
}

/* accept(2) said EMFILE/ENFILE: the connector waits in the queue; retrying at once would
 * spin. Pause, and log at most once a second with the refusals since. */
static void
tunnel_accept_nofd(struct gw_listener *g, int errnum)
{
    struct timeval tv;
    time_t         now = time(NULL);

    g->nofd++;
    if (now != g->nofd_logged) {
        ferry_log(NULL, FERRY_ERROR, "tunnel: accept: out of file descriptors, pausing",
                  FLOG_STR("error", strerror(errnum)), FLOG_INT("refusals", g->nofd));
        g->nofd_logged = now;
        g->nofd = 0;
    }
    if (g->pause_ms == 0)
        g->pause_ms = 100;
    tv.tv_sec = g->pause_ms / 1000;
    tv.tv_usec = (g->pause_ms % 1000) * 1000;
    event_del(&g->ev);
    evtimer_add(&g->pause, &tv);
    g->pause_ms = g->pause_ms >= 500 ? 1000 : g->pause_ms * 2;
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
        g->pause_ms = 0;                /* descriptors again: the next pause starts short */
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
    if (errno == EMFILE || errno == ENFILE)
        tunnel_accept_nofd(g, errno);
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
    evtimer_assign(&g->pause, base, on_tunnel_pause_end, g);
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
gw_listener_use_conf(struct gw_listener *g, const struct ferry_conf *conf)
{
    if (g != NULL)
        g->conf = conf;
}

void
gw_listener_drain(struct gw_listener *g)
{
    if (g == NULL)
        return;
    g->draining = true;
    if (g->fd >= 0) {
        event_del(&g->ev);
        event_del(&g->pause);
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
    json_decref(g->replicas);
    list_unref(g->list);
    free(g);
}

void
gw_listener_set_id(struct gw_listener *g, const char *id)
{
    if (!replica_id_ok(id)) {
        ferry_log(NULL, FERRY_ERROR, "tunnel: not a usable replica id; replies name none",
                  FLOG_STR("id", id));
        g->id[0] = '\0';
        return;
    }
    snprintf(g->id, sizeof(g->id), "%s", id);
}

static void gw_worker_push(void *arg, bool run);

static void
replica_skipped(void *arg, const struct gw_replica *e, const char *why)
{
    (void)arg;
    ferry_log(NULL, FERRY_WARN, "tunnel: replica left out of the list for connectors",
              FLOG_STR("replica", e->id != NULL ? e->id : ""),
              FLOG_STR("tunnel", e->tunnel != NULL ? e->tunnel : ""), FLOG_STR("reason", why));
}

int
gw_listener_set_replicas(struct gw_listener *g, const struct gw_replica *r, size_t n)
{
    struct replica_list list = { NULL, 0 };
    struct gw_list     *l = NULL;
    json_t             *o = NULL, *arr;
    char               *text = NULL;
    size_t              len = 0;
    int                 rc;

    if (n == 0) {                       /* no store: replies as without replicas */
        json_decref(g->replicas);
        g->replicas = NULL;
        list_unref(g->list);
        g->list = NULL;
        g->gen++;
        return FERRY_OK;
    }
    if (n > REPLICAS_MAX) {
        ferry_log(NULL, FERRY_ERROR, "tunnel: more than 256 replicas; connectors keep the "
                  "previous list", FLOG_INT("replicas", (long long)n));
        return FERRY_ELIMIT;
    }
    if ((rc = replicas_from_store(r, n, g->id, g->conf->tunnel.advertise, &list,
                                  replica_skipped, NULL)) != FERRY_OK ||
        (rc = replicas_json(g->id[0] != '\0' ? g->id : NULL, &list, &text, &len)) != FERRY_OK) {
        if (rc == FERRY_ELIMIT)
            ferry_log(NULL, FERRY_ERROR, "tunnel: the replica list exceeds 32 KiB of JSON; "
                      "connectors keep the previous one", FLOG_INT("replicas", (long long)n));
        goto out;
    }
    if (g->list != NULL && g->list->len == len && memcmp(g->list->text, text, len) == 0)
        goto out;                       /* the same list (a slot count changed): no news */
    rc = FERRY_ENOMEM;
    if ((o = json_loadb(text, len, 0, NULL)) == NULL ||
        (arr = json_object_get(o, "replicas")) == NULL ||
        (l = malloc(sizeof(*l) + len + 1)) == NULL)
        goto out;
    atomic_init(&l->refs, 1);
    l->len = len;
    memcpy(l->text, text, len + 1);
    json_decref(g->replicas);
    g->replicas = json_incref(arr);
    list_unref(g->list);
    g->list = l;
    l = NULL;
    g->gen++;
    ferry_log(NULL, FERRY_INFO, "tunnel: replica list for connectors",
              FLOG_INT("replicas", (long long)list.n));
    /* Every worker gets it; each tells the connectors on its slot-0 tunnels. */
    for (unsigned i = 0; i < g->slots.n; i++) {
        struct gw_push *p = malloc(sizeof(*p));

        if (p != NULL) {
            p->gw = g->slots.at(g->slots.ctx, i);
            p->l = list_ref(g->list);
        }
        if (p == NULL || ferry_post_run(&p->gw->post, gw_worker_push, p) != FERRY_OK) {
            if (p != NULL)
                list_unref(p->l);
            free(p);
            ferry_log(NULL, FERRY_ERROR, "tunnel: cannot hand the replica list to a worker: "
                      "out of memory", FLOG_INT("worker", i));
        }
    }
    rc = FERRY_OK;
out:
    json_decref(o);
    free(text);
    free(l);
    replicas_list_free(&list);
    return rc;
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

/* A connector from before replica lists never gets one (it did not announce that it
 * follows them); a refusal here is a connector that changed its mind: not our error. */
static void
gw_on_notice_reply(struct tunnel *t, int status, const char *error)
{
    struct gw_tunnel *gt = tunnel_owner(t);

    if (status != 204)
        ferry_log(NULL, FERRY_DEBUG, "connector did not take the replica list",
                  FLOG_STR("tenant", gt->info->tenant), FLOG_STR("connector", gt->info->connector),
                  FLOG_INT("status", status), FLOG_STR("error", error != NULL ? error : ""));
}

static void
tunnel_push(struct gw_tunnel *gt, const struct gw_list *l)
{
    if (tunnel_notify(gt->t, REPLICAS_PATH, l->text, l->len) != 0)
        ferry_log(NULL, FERRY_DEBUG, "cannot send the replica list on a tunnel",
                  FLOG_STR("tenant", gt->info->tenant),
                  FLOG_STR("connector", gt->info->connector));
}

/* On each worker: one notice per connector that follows lists, on its slot-0 tunnel
 * (a connector shares what it learns among its links). */
static void
gw_worker_push(void *arg, bool run)
{
    struct gw_push   *p = arg;
    struct gw_tunnel *gt, *next;

    for (gt = run ? p->gw->tunnels : NULL; gt != NULL; gt = next) {
        next = gt->next;                /* a failed write may close gt on the spot */
        if (gt->info->follows && gt->info->slot == 0 && tunnel_is_usable(gt->t))
            tunnel_push(gt, p->l);
    }
    list_unref(p->l);
    free(p);
}

static const struct tunnel_ops gw_ops = {
    .on_notice_reply = gw_on_notice_reply,
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
    if (h->push != NULL && tunnel_is_usable(gt->t)) {
        struct gw_list *l = h->push;

        h->push = NULL;
        tunnel_push(gt, l);             /* may close the tunnel: gt is not used after */
        list_unref(l);
    }
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
    *ts = tstream_open(best->t, r->authority, r->protocol, r->user, o, r->fd, r->readable,
                       r->writable);
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
