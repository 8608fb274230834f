/*
 * conn.c: the life of a client connection, from accept to the access-log line.
 *
 * Owns both sockets, all events and the per-connection arena. Implements the plugin
 * API of ferry/conn.h. Hands routing to route/ (dial_start) and byte moving to
 * relay/. A plugin callback may close the connection; the free then waits until the
 * callback has returned (in_callback / close_pending), never inside it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include <ferry/conn.h>
#include <ferry/io.h>
#include <ferry/route.h>

#include "dest/dest-int.h"
#include "route/dial.h"
#include "tunnel/gateway.h"
#include "tunnel/session.h"
#include "util/addr.h"
#include "worker/conn-int.h"
#include "worker/io-int.h"

#define HANDSHAKE_WRITE_MAX   (64 * 1024)   /* replies a plugin may queue before relay */
#define CLOSE_FLUSH_MS        5000          /* time to deliver a final error reply */
#define HANDSHAKE_FIRST_BYTES 512

static void conn_free(struct ferry_conn *c);
static void on_idle_timer(evutil_socket_t fd, short what, void *arg);

static void
conn_log_fields(const struct ferry_log_ctx *ctx, struct logbuf *b)
{
    const struct ferry_conn *c = (const struct ferry_conn *)ctx;

    logbuf_int(b, "worker", c->w->id);
    logbuf_int(b, "conn", (long long)c->id);
    logbuf_str(b, "listener", c->l->lc->name);
    logbuf_str(b, "client", ferry_conn_peer(c));
}

FERRY_API const char *
ferry_conn_peer(const struct ferry_conn *cc)
{
    struct ferry_conn *c = (struct ferry_conn *)cc;   /* lazily filled cache */

    if (c->peer_text != NULL)
        return c->peer_text;
    if ((c->peer_text = ferry_conn_alloc(c, INET6_ADDRSTRLEN + 10)) == NULL)
        return "?";
    ferry_addr_format((const struct sockaddr *)&c->peer, c->peer_text, INET6_ADDRSTRLEN + 10);
    return c->peer_text;
}

FERRY_API const struct ferry_dest *
ferry_conn_dest(const struct ferry_conn *c)
{
    if (c->l->lc->destination == NULL)
        return NULL;
    return ferry_registry_find(c->wg->g->conf->registry, c->l->lc->destination);
}

FERRY_API const struct ferry_dest *
ferry_conn_lookup_dest(const struct ferry_conn *c, const char *name)
{
    return ferry_registry_find(c->wg->g->conf->registry, name);
}

FERRY_API int
ferry_conn_auth_tenant(struct ferry_conn *c, const char *tenant_id, const char *token)
{
    const struct ferry_conf_tenant *t;

    if ((t = ferry_conf_tenant_by_token(c->wg->g->conf, tenant_id, token)) == NULL)
        return FERRY_EDENIED;
    c->tenant = t->id;
    return FERRY_OK;
}

FERRY_API const char *
ferry_conn_tenant(const struct ferry_conn *c)
{
    return c->tenant != NULL ? c->tenant : c->l->lc->tenant;
}

FERRY_API const struct ferry_log_ctx *
ferry_conn_log(const struct ferry_conn *c)
{
    return &c->logctx;
}

FERRY_API void *
ferry_conn_alloc(struct ferry_conn *c, size_t size)
{
    struct conn_chunk *ch = calloc(1, sizeof(*ch) + size);

    if (ch == NULL)
        return NULL;
    ch->next = c->chunks;
    c->chunks = ch;
    return ch->data;
}

static char *
conn_strdup(struct ferry_conn *c, const char *s)
{
    size_t n = strlen(s) + 1;
    char  *p = ferry_conn_alloc(c, n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

void
conn_touch(struct ferry_conn *c)
{
    event_base_gettimeofday_cached(c->w->base, &c->last_active);
}

static void
conn_arm_idle(struct ferry_conn *c, uint32_t ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    evtimer_add(&c->timer, &tv);
}

/* A full-length arming (idle limit, handshake deadline, connect timeout) uses libevent's
 * common-timeout queue: O(1), since every connection of a listener waits the same
 * duration. A re-arm for a remainder goes to the heap. */
static const struct timeval *
conn_common_tv(struct ferry_conn *c, uint32_t ms, struct timeval *tv)
{
    const struct timeval *common = worker_common_timeout(c->w, ms);

    if (common != NULL)
        return common;
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
    return tv;
}

static void
conn_arm_timer(struct ferry_conn *c, uint32_t ms)
{
    struct timeval tv;

    evtimer_add(&c->timer, conn_common_tv(c, ms, &tv));
}

static void conn_deliver_open(struct ferry_conn *c, int status, const char *reason);

static void
on_idle_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_conn *c = arg;
    struct timeval     now, idle;
    uint32_t           limit = c->l->lc->idle_timeout_ms;
    uint64_t           idle_ms;

    (void)fd;
    (void)what;
    if (c->open_deferred) {
        c->open_deferred = false;
        conn_arm_idle(c, limit);
        conn_deliver_open(c, c->open_status, c->outcome != NULL ? c->outcome : "failed");
        return;
    }
    if (c->state == CONN_CLOSING) {
        conn_finish(c, c->outcome != NULL ? c->outcome : "closed");
        return;
    }
    event_base_gettimeofday_cached(c->w->base, &now);
    if (c->state == CONN_PLUGIN && c->hs_deadline_set) {
        struct timeval left;

        if (!timercmp(&now, &c->hs_deadline, <)) {
            conn_finish(c, "handshake-timeout");
            return;
        }
        timersub(&c->hs_deadline, &now, &left);
        evtimer_add(&c->timer, &left);
        return;
    }
    timersub(&now, &c->last_active, &idle);
    idle_ms = (uint64_t)idle.tv_sec * 1000 + (uint64_t)idle.tv_usec / 1000;
    if (idle_ms + 5 >= limit) {
        conn_finish(c, c->state == CONN_PLUGIN ? "handshake-timeout" : "idle-timeout");
        return;
    }
    conn_arm_idle(c, limit - (uint32_t)idle_ms);
}

static void on_handshake_io(struct ferry_conn *c, short what);

static void
on_client_event(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_conn *c = arg;

    (void)fd;
    if (what & EV_READ)
        c->c_readable = true;
    if (what & EV_WRITE)
        c->c_writable = true;
    if (what & EV_CLOSED)
        c->c_hup = c->c_readable = true;
    if (c->cio != NULL) {
        if (c->state != CONN_CLOSING) {
            io_client_event(c->cio, what);
        } else if (io_client_flush(c)) {
            c->in_callback = true;
            conn_finish(c, c->outcome);
            c->in_callback = false;
            if (c->close_pending)
                conn_free(c);
        }
        return;
    }
    if (c->state == CONN_RELAY && c->ts != NULL)
        tstream_on_socket(c->ts);
    else if (c->state == CONN_RELAY)
        relay_on_event(c);
    else
        on_handshake_io(c, what);
}

static void
on_upstream_event(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_conn *c = arg;

    (void)fd;
    if (c->dial != NULL) {
        /* The connect's edge can carry the origin's first bytes and even its FIN (an
         * origin that speaks first and fast): edge-triggered, no second edge comes for
         * them, so what this wake-up saw is kept for the relay. */
        what = dial_readiness(c->dial, what);
        c->u_readable = (what & (EV_READ | EV_CLOSED)) != 0;
        c->u_hup = (what & EV_CLOSED) != 0;
        dial_event(&c->dial, what);
        return;
    }
    if (what & EV_READ)
        c->u_readable = true;
    if (what & EV_WRITE)
        c->u_writable = true;
    if (what & EV_CLOSED)
        c->u_hup = c->u_readable = true;
    if (c->state == CONN_RELAY)
        relay_on_event(c);
}

void
conn_watch_client(struct ferry_conn *c)
{
    if (!c->cev_added && event_add(&c->cev, NULL) == 0)
        c->cev_added = true;
}

void
conn_watch_upstream(struct ferry_conn *c, int fd, uint32_t timeout_ms)
{
    struct timeval tv;

    conn_unwatch_upstream(c);
    c->u_readable = c->u_hup = false;   /* a new socket: an earlier attempt's flags go */
    event_assign(&c->uev, c->w->base, fd, EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST,
                 on_upstream_event, c);
    if (event_add(&c->uev, timeout_ms != 0 ? conn_common_tv(c, timeout_ms, &tv) : NULL) == 0)
        c->uev_added = true;
}

void
conn_unwatch_upstream(struct ferry_conn *c)
{
    if (c->uev_added) {
        event_del(&c->uev);
        c->uev_added = false;
    }
}

void
ferry_conn_accepted(struct wlistener *wl, int fd, const struct sockaddr *sa, socklen_t len)
{
    struct worker         *w = wl->wg->w;
    struct ferry_listener *l = wl->l;
    struct ferry_conn     *c;
    struct stats_cell     *cell = &l->stats->cell[w->id];

    stats_add(&cell->conns_total, 1);
    if (atomic_fetch_add(&l->stats->active, 1) >= (int)l->lc->max_connections) {
        /* Accept-and-close, never queue: the client learns at once (DESIGN.md). */
        atomic_fetch_sub(&l->stats->active, 1);
        stats_add(&cell->conns_rejected, 1);
        close(fd);
        return;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        atomic_fetch_sub(&l->stats->active, 1);
        close(fd);
        return;
    }
    c->logctx.fields = conn_log_fields;
    c->w = w;
    c->wg = wl->wg;
    c->wg->refs++;
    c->l = l;
    c->id = ++w->next_conn_id;
    c->cfd = fd;
    c->ufd = -1;
    c->state = CONN_PLUGIN;
    memcpy(&c->peer, sa, len < sizeof(c->peer) ? len : sizeof(c->peer));
    c->peer_len = len;
    relay_dir_init(&c->up);
    relay_dir_init(&c->down);
    event_base_gettimeofday_cached(w->base, &c->started);
    c->last_active = c->started;
    evtimer_assign(&c->timer, w->base, on_idle_timer, c);
    /* EV_CLOSED (EPOLLRDHUP) tells a FIN apart from data, so a short read can be
     * trusted to have drained the socket (see relay.c). */
    event_assign(&c->cev, w->base, fd, EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST,
                 on_client_event, c);
    /* Edge-triggered: adding the event reports bytes that are already there, so
     * "not readable" until an event says otherwise costs nothing and saves a recv()
     * that would only say EAGAIN. A new socket can take writes. */
    c->c_readable = false;
    c->c_writable = true;
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;

    c->in_callback = true;
    l->plugin->on_accept(c, l->pstate);
    c->in_callback = false;
    if (c->close_pending) {
        conn_free(c);
        return;
    }
    /* Armed once: a plugin that reads a handshake has armed its deadline already. */
    if (!evtimer_pending(&c->timer, NULL))
        conn_arm_timer(c, l->lc->idle_timeout_ms);
}

static void
conn_write_access(struct ferry_conn *c)
{
    struct logbuf  b;
    struct timeval now, dur;

    if (!ferry_log_access_enabled())
        return;
    /* The same (cached) clock as `started`: mixing clocks gave negative durations. */
    event_base_gettimeofday_cached(c->w->base, &now);
    timersub(&now, &c->started, &dur);
    ferry_log_access_begin(&b);
    logbuf_str(&b, "listener", c->l->lc->name);
    logbuf_str(&b, "plugin", c->l->plugin->name);
    logbuf_str(&b, "destination", c->dest != NULL ? ferry_dest_name(c->dest) : NULL);
    logbuf_str(&b, "client", ferry_conn_peer(c));
    if (ferry_conn_tenant(c) != NULL)
        logbuf_str(&b, "tenant", ferry_conn_tenant(c));
    logbuf_str(&b, "target", c->target);
    if (c->cio != NULL) {
        uint64_t in, out;

        io_bytes(c->cio, &in, &out);
        logbuf_int(&b, "bytes_in", (long long)in);
        logbuf_int(&b, "bytes_out", (long long)out);
    } else {
        logbuf_int(&b, "bytes_in", (long long)c->up.bytes);
        logbuf_int(&b, "bytes_out", (long long)c->down.bytes);
    }
    logbuf_int(&b, "duration_ms", (long long)dur.tv_sec * 1000 + dur.tv_usec / 1000);
    logbuf_str(&b, "outcome", c->outcome != NULL ? c->outcome : "ok");
    logbuf_int(&b, "worker", c->w->id);
    logbuf_int(&b, "conn", (long long)c->id);
    ferry_log_access_end(&b);
}

FERRY_API void
ferry_conn_on_free(struct ferry_conn *c, void (*fn)(void *arg), void *arg)
{
    c->on_free = fn;
    c->on_free_arg = arg;
}

FERRY_API void
ferry_conn_request_done(struct ferry_conn *c, const struct ferry_request_record *r)
{
    struct logbuf b;

    struct stats_slot *ds = r->dest != NULL ? conn_dest_stats(c, r->dest) : NULL;

    stats_request(c->l->stats, c->w->id, r->total_us);
    /* The (listener, destination) pair: looked up when the destination changes. */
    if (c->req_pair == NULL || c->req_pair->dest != ds)
        c->req_pair = stats_pair_get(c->l->stats, ds);
    if (c->req_pair != NULL && c->w->id < FERRY_MAX_WORKERS) {
        if (r->protocol != NULL && strcmp(r->protocol, "ldap") == 0)
            stats_add(&c->req_pair->cell[c->w->id].ldap[r->status == 0 ? 0 : 1], 1);
        else if (r->status >= 100 && r->status <= 599)
            stats_add(&c->req_pair->cell[c->w->id].cls[r->status / 100 - 1], 1);
    }
    if (!ferry_log_access_enabled())
        return;
    ferry_log_access_begin(&b);
    logbuf_str(&b, "msg", "request");
    logbuf_str(&b, "protocol", r->protocol != NULL ? r->protocol : "http");
    logbuf_str(&b, "listener", c->l->lc->name);
    logbuf_str(&b, "client", ferry_conn_peer(c));
    if (ferry_conn_tenant(c) != NULL)
        logbuf_str(&b, "tenant", ferry_conn_tenant(c));
    logbuf_str(&b, "method", r->method);
    logbuf_str(&b, "path", r->path);
    logbuf_str(&b, "destination", r->dest != NULL ? ferry_dest_name(r->dest) : NULL);
    logbuf_str(&b, "target", r->target);
    logbuf_int(&b, "status", r->status);
    logbuf_int(&b, "bytes_in", (long long)r->bytes_in);
    logbuf_int(&b, "bytes_out", (long long)r->bytes_out);
    logbuf_int(&b, "upstream_ms", (long long)(r->upstream_us / 1000));
    logbuf_int(&b, "total_ms", (long long)(r->total_us / 1000));
    if (r->request_id != NULL)
        logbuf_str(&b, "request_id", r->request_id);
    logbuf_str(&b, "outcome", r->outcome != NULL ? r->outcome : "ok");
    logbuf_int(&b, "worker", c->w->id);
    logbuf_int(&b, "conn", (long long)c->id);
    ferry_log_access_end(&b);
}

static void
conn_free(struct ferry_conn *c)
{
    struct worker *w = c->w;

    conn_write_access(c);
    policy_conn_gone(c);                /* before on_free: the hook's objects are the plugin's */
    if (c->on_free != NULL)             /* before the arena goes: it may live there */
        c->on_free(c->on_free_arg);
    if (c->dstats != NULL)
        atomic_fetch_sub(&c->dstats->active, 1);
    atomic_fetch_sub(&c->l->stats->active, 1);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    while (c->chunks != NULL) {
        struct conn_chunk *next = c->chunks->next;

        free(c->chunks);
        c->chunks = next;
    }
    io_conn_free(c);
    wgen_unref(c->wg);
    free(c);
    if (w->draining && w->nconns == 0)
        event_base_loopexit(w->base, NULL);
}

/* A tunnel stream's totals become the connection's, for the access log (the metrics
 * were kept live by conn_stream_bytes). */
static void
conn_stream_account(struct ferry_conn *c, const struct tstream *ts)
{
    /* Added: the handshake's own reply bytes are already counted there. */
    c->up.bytes += ts->bytes_in;
    c->down.bytes += ts->bytes_out;
}

/* Live byte counters for a tunnel stream: listener, destination and tunnel. */
static void
conn_stream_bytes(struct gw_owner *o, uint64_t in, uint64_t out)
{
    struct ferry_conn *c = container_of(o, struct ferry_conn, gwo);

    struct stats_cell *cells[3] = {
        &c->l->stats->cell[c->w->id],
        c->dstats != NULL ? &c->dstats->cell[c->w->id] : NULL,
        c->tstats != NULL ? &c->tstats->cell[c->w->id] : NULL,
    };

    for (int i = 0; i < 3; i++) {
        if (cells[i] == NULL)
            continue;
        if (in != 0)
            stats_add(&cells[i]->bytes_in, in);
        if (out != 0)
            stats_add(&cells[i]->bytes_out, out);
    }
}

/* Close both ends now. Safe from any callback; the memory goes once no plugin
 * callback is on the stack. */
void
conn_finish(struct ferry_conn *c, const char *outcome)
{
    if (c->close_pending)
        return;
    if (c->outcome == NULL || c->state != CONN_CLOSING)
        c->outcome = outcome;
    dial_abort(&c->dial);
    if (c->ts != NULL) {
        struct tstream *ts = c->ts;

        c->ts = NULL;
        conn_stream_account(c, ts);
        tstream_release(ts);
    }
    if (c->tstats != NULL) {
        atomic_fetch_sub(&c->tstats->active, 1);
        c->tstats = NULL;
    }
    io_conn_finish(c);
    if (c->cev_added)
        event_del(&c->cev);
    conn_unwatch_upstream(c);
    event_del(&c->timer);
    relay_release(c);
    if (c->cfd >= 0 && c->state == CONN_RELAY && c->outcome != NULL &&
        (strcmp(c->outcome, "reset") == 0 || strcmp(c->outcome, "tunnel-lost") == 0)) {
        /* The far side was cut, not closed: a reset tells the client its data is
         * truncated, where a FIN would look like a complete transfer. */
        struct linger lg = { 1, 0 };

        setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->ufd >= 0)
        close(c->ufd);
    c->cfd = c->ufd = -1;
    c->close_pending = true;
    if (!c->in_callback)
        conn_free(c);
}

void
ferry_conn_close_all(struct worker *w)
{
    while (w->conns != NULL)
        conn_finish(w->conns, "shutdown");
}

/* ---- upstream open ---------------------------------------------------------------- */

static void
conn_deliver_open(struct ferry_conn *c, int status, const char *reason)
{
    ferry_open_cb cb = c->open_cb;

    c->open_cb = NULL;
    if (status != FERRY_OK) {
        stats_add(&c->l->stats->cell[c->w->id].conns_failed, 1);
        if (c->dstats != NULL)
            stats_add(&c->dstats->cell[c->w->id].conns_failed, 1);
        ferry_log(&c->logctx, FERRY_WARN, "upstream open failed",
                  FLOG_STR("target", c->target), FLOG_STR("error", reason));
    }
    if (cb == NULL)
        return;
    c->in_callback = true;
    cb(c, status, reason, c->open_arg);
    c->in_callback = false;
    if (c->close_pending)
        conn_free(c);
}

void
conn_upstream_ready(struct ferry_conn *c, int fd)
{
    c->ufd = fd;
    event_remove_timer(&c->uev);        /* the connect timeout is over */
    /* u_readable and u_hup are what the connect's wake-up saw (on_upstream_event). */
    c->u_writable = true;
    conn_deliver_open(c, FERRY_OK, "connected");
}

void
conn_upstream_failed(struct ferry_conn *c, int status, const char *reason)
{
    conn_deliver_open(c, status, reason);
}

static void
conn_dial_watch(void *owner, int fd, uint32_t timeout_ms)
{
    conn_watch_upstream(owner, fd, timeout_ms);
}

static void
conn_dial_unwatch(void *owner)
{
    conn_unwatch_upstream(owner);
}

static void
conn_dial_done(void *owner, int fd, int status, const char *reason)
{
    if (fd >= 0)
        conn_upstream_ready(owner, fd);
    else
        conn_upstream_failed(owner, status, reason);
}

static const struct dial_ops conn_dial_ops = {
    .watch = conn_dial_watch, .unwatch = conn_dial_unwatch, .done = conn_dial_done,
};

/* What the connector will check the stream against (its systems' protocol). */
static const char *
dest_protocol(const struct ferry_dest *d)
{
    switch (ferry_dest_type(d)) {
    case FERRY_DEST_HTTP: return "http";
    case FERRY_DEST_LDAP: return "ldap";
    case FERRY_DEST_RFC:  return "rfc";
    case FERRY_DEST_MAIL: return "mail";
    default:              return "tcp";
    }
}

static void
conn_stream_response(struct gw_owner *o, int status, const char *error)
{
    struct ferry_conn *c = o != NULL ? container_of(o, struct ferry_conn, gwo) : NULL;

    if (c == NULL || c->open_cb == NULL)
        return;
    if (status == 200) {
        conn_deliver_open(c, FERRY_OK, "connected");
        return;
    }
    if (status == 403 && c->tstats != NULL)
        stats_add(&c->tstats->cell[c->w->id].conns_rejected, 1);
    else if (c->tstats != NULL)
        stats_add(&c->tstats->cell[c->w->id].conns_failed, 1);
    conn_deliver_open(c, status == 403 ? FERRY_EDENIED :
                         status == 504 ? FERRY_ETIMEDOUT :
                         error != NULL && strcmp(error, "connection-refused") == 0 ? FERRY_EUNAVAIL :
                         FERRY_EUNREACH,
                      error != NULL ? error : "refused by the connector");
}

static void
conn_stream_ended(struct gw_owner *o, const char *outcome)
{
    struct ferry_conn *c = container_of(o, struct ferry_conn, gwo);
    struct tstream    *ts = c->ts;

    /* The stream is gone: forget it first, never release it. */
    c->ts = NULL;
    if (ts != NULL)
        conn_stream_account(c, ts);
    if (c->tstats != NULL && (c->open_cb != NULL || strcmp(outcome, "ok") != 0))
        stats_add(&c->tstats->cell[c->w->id].conns_failed, 1);
    if (c->open_cb != NULL) {
        conn_deliver_open(c, FERRY_EUNAVAIL, "tunnel lost");
        return;
    }
    conn_finish(c, outcome);
}

static const struct gw_owner_ops conn_gw_ops = {
    .response = conn_stream_response, .ended = conn_stream_ended, .bytes = conn_stream_bytes,
};

/* Report a failure found before anything asynchronous started: through the loop, so
 * the plugin's callback never runs inside ferry_conn_open(). */
static int
conn_fail_later(struct ferry_conn *c, int status, const char *reason)
{
    static const struct timeval now = { 0, 0 };

    c->open_status = status;
    c->outcome = reason;
    c->open_deferred = true;
    evtimer_add(&c->timer, &now);
    return FERRY_OK;
}

void
conn_set_target(struct ferry_conn *c, const char *authority)
{
    if (c->target == NULL && (ferry_log_enabled(FERRY_DEBUG) || ferry_log_access_enabled()))
        c->target = conn_strdup(c, authority);
}

void
conn_enter(struct ferry_conn *c, bool *outer)
{
    *outer = c->in_callback;
    c->in_callback = true;
}

void
conn_leave(struct ferry_conn *c, bool outer)
{
    if (outer)
        return;
    c->in_callback = false;
    if (c->close_pending)
        conn_free(c);
}

/* Account c to destination d (its /metrics slot) once. */
static void
conn_set_dest(struct ferry_conn *c, const struct ferry_dest *d)
{
    const struct ferry_registry *reg = c->wg->g->conf->registry;
    size_t                       i = (size_t)(d - reg->dests);

    c->dest = d;
    if (c->dstats != NULL)
        return;
    /* A destination from this generation's snapshot has a slot (gen.c). */
    if (i < reg->n && c->wg->g->dest_stats != NULL &&
        (c->dstats = c->wg->g->dest_stats[i]) != NULL) {
        atomic_fetch_add(&c->dstats->active, 1);
        stats_add(&c->dstats->cell[c->w->id].conns_total, 1);
    }
}

struct stats_slot *
conn_dest_stats(const struct ferry_conn *c, const struct ferry_dest *d)
{
    const struct ferry_registry *reg = c->wg->g->conf->registry;
    size_t                       i = (size_t)(d - reg->dests);

    return d != NULL && i < reg->n && c->wg->g->dest_stats != NULL ? c->wg->g->dest_stats[i]
                                                                   : NULL;
}

/* Append len bytes of s at buf[n] within size (truncating like snprintf); the new n. */
static size_t
put_text(char *buf, size_t size, size_t n, const char *s, size_t len)
{
    if (n + len >= size)
        len = size - 1 - n;
    memcpy(buf + n, s, len);
    return n + len;
}

/* "host:port" or "[v6]:port" (size > 0), without printf: its machinery cost more than the
 * rest of the routing. */
static void
format_authority(char *buf, size_t size, const char *host, uint16_t port)
{
    char   digits[5], *p = digits + sizeof(digits);
    size_t hl = strlen(host), n = 0;
    bool   v6 = memchr(host, ':', hl) != NULL;

    do {
        *--p = (char)('0' + port % 10);
        port /= 10;
    } while (port != 0);
    n = put_text(buf, size, n, "[", v6 ? 1 : 0);
    n = put_text(buf, size, n, host, hl);
    n = put_text(buf, size, n, v6 ? "]:" : ":", v6 ? 2 : 1);
    n = put_text(buf, size, n, p, (size_t)(digits + sizeof(digits) - p));
    buf[n] = '\0';
}

int
conn_route(struct ferry_conn *c, const struct ferry_target *t, struct conn_route *r)
{
    const char *host;
    uint16_t    port;

    r->timeout_ms = c->l->lc->connect_timeout_ms;
    r->reason = NULL;
    if (t->dest != NULL) {
        conn_set_dest(c, t->dest);
        host = ferry_dest_host(t->dest);
        port = ferry_dest_port(t->dest);
        if (t->dest->connect_timeout_ms != 0)
            r->timeout_ms = t->dest->connect_timeout_ms;
    } else {
        host = t->host;
        port = t->port;
    }
    if (host == NULL || port == 0) {
        r->reason = "no target host/port";
        return FERRY_EINVAL;
    }
    r->host = host;
    r->port = port;
    format_authority(r->authority, sizeof(r->authority), host, port);
    r->req.authority = r->authority;
    if (t->dest != NULL && ferry_dest_proxy_type(t->dest) == FERRY_PROXY_ONPREMISE) {
        r->req.tenant = t->tenant != NULL ? t->tenant : ferry_dest_tenant(t->dest);
        r->req.location = t->location != NULL ? t->location : ferry_dest_location(t->dest);
        r->req.protocol = t->protocol != NULL ? t->protocol : dest_protocol(t->dest);
        r->req.must_expose = false;
        return CONN_ROUTE_TUNNEL;
    }
    if (t->dest == NULL) {
        r->req.tenant = t->tenant != NULL ? t->tenant : ferry_conn_tenant(c);
        r->req.location = t->location != NULL ? t->location : "";
        r->req.protocol = t->protocol != NULL ? t->protocol : "tcp";
        r->req.must_expose = true;
        /* DESIGN.md's order: the tenant's virtual host, then egress, then why not. */
        if (r->req.tenant != NULL)
            return t->direct_ok ? CONN_ROUTE_TUNNEL_OR_DIRECT : CONN_ROUTE_TUNNEL;
        if (!t->direct_ok) {
            r->reason = "target not allowed";
            return FERRY_EDENIED;
        }
    }
    return CONN_ROUTE_DIRECT;
}

/* Why gw_open_stream() said no, for a route that has no direct fallback. */
int
conn_route_refused(struct ferry_conn *c, struct conn_route *r, int rc)
{
    if (rc == FERRY_ENOTUNNEL) {
        ferry_log(&c->logctx, FERRY_WARN, "no tunnel for tenant/location",
                  FLOG_STR("target", r->authority), FLOG_STR("tenant", r->req.tenant),
                  FLOG_STR("location", r->req.location));
        r->reason = r->req.must_expose ? "no connector for tenant/location"
                                       : "no tunnel for tenant/location";
        return FERRY_ENOTUNNEL;
    }
    r->reason = "target not allowed";
    return FERRY_EDENIED;
}

FERRY_API int
ferry_conn_open(struct ferry_conn *c, const struct ferry_target *t, ferry_open_cb cb, void *arg)
{
    struct conn_route r;
    int               kind;

    if (c->state != CONN_PLUGIN || c->open_cb != NULL || c->ufd >= 0 || cb == NULL)
        return FERRY_EINVAL;
    c->open_cb = cb;
    c->open_arg = arg;
    if (c->hs_deadline_set) {
        /* The handshake is over: from here the connect timeout decides, and the plugin
         * still gets to send its error reply when it expires. The timer stays at the
         * handshake deadline when that comes before the idle limit: on_idle_timer then
         * re-arms for the rest, and the many connections that end sooner never pay for
         * a second arming. */
        struct timeval left;

        c->hs_deadline_set = false;
        conn_touch(c);
        timersub(&c->hs_deadline, &c->last_active, &left);
        if ((uint64_t)left.tv_sec * 1000 + (uint64_t)left.tv_usec / 1000 >
            c->l->lc->idle_timeout_ms)
            conn_arm_idle(c, c->l->lc->idle_timeout_ms);
    }
    kind = conn_route(c, t, &r);
    if (kind < 0)
        return conn_fail_later(c, kind, r.reason);
    if (ferry_log_enabled(FERRY_DEBUG) || ferry_log_access_enabled())
        c->target = conn_strdup(c, r.authority);
    if (kind == CONN_ROUTE_TUNNEL || kind == CONN_ROUTE_TUNNEL_OR_DIRECT) {
        int rc;

        r.req.fd = &c->cfd;
        r.req.readable = &c->c_readable;
        r.req.writable = &c->c_writable;
        c->gwo.ops = &conn_gw_ops;
        rc = gw_open_stream(&c->w->gw, &c->gwo, &r.req, &c->ts, &c->tstats);
        if (rc == FERRY_OK)
            return FERRY_OK;
        if (kind == CONN_ROUTE_TUNNEL)
            return conn_fail_later(c, conn_route_refused(c, &r, rc), r.reason);
    }
    c->in_callback = true;          /* a synchronous dial failure must not free c here */
    if (dial_begin(&c->dial, c->w->base, c->w->dns, &conn_dial_ops, c, r.host, r.port,
                   r.timeout_ms) != FERRY_OK) {
        c->in_callback = false;
        c->open_cb = NULL;
        return FERRY_ENOMEM;
    }
    c->in_callback = false;
    return FERRY_OK;
}

/* ---- handshake I/O (before the relay) --------------------------------------------- */

/* Read until EAGAIN (the event is edge-triggered) and offer the bytes to the plugin.
 * Bytes it does not consume stay in up.buf and go upstream when the relay starts. */
static void
handshake_read(struct ferry_conn *c)
{
    struct relay_dir *d = &c->up;
    ssize_t           n;
    int               used;

    while (c->data_cb != NULL && c->c_readable && !c->close_pending) {
        size_t room;

        if (d->buf == NULL || d->buf_len == d->buf_cap) {
            /* Start small and grow to read_max: most handshakes are a few dozen bytes,
             * and a connection should not touch 64 KiB to read them. */
            size_t cap = d->buf == NULL ? HANDSHAKE_FIRST_BYTES : d->buf_cap * 4;
            char  *nb;

            if (d->buf != NULL && d->buf_cap >= c->read_max) {
                conn_finish(c, "handshake-too-large");
                return;
            }
            if (cap > c->read_max)
                cap = c->read_max;
            if ((nb = realloc(d->buf, cap)) == NULL) {
                conn_finish(c, "no-memory");
                return;
            }
            if (d->buf == NULL)
                d->buf_off = d->buf_len = 0;
            d->buf = nb;
            d->buf_cap = cap;
        }
        room = d->buf_cap - d->buf_len;
        n = recv(c->cfd, d->buf + d->buf_len, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            c->c_readable = false;
            return;
        }
        /* Edge-triggered: a short read drained the socket; new bytes bring a new edge,
         * so the EAGAIN round trip can be skipped. */
        if (n > 0 && (size_t)n < room && !c->c_hup)
            c->c_readable = false;
        conn_touch(c);
        if (n <= 0) {
            ferry_data_cb cb = c->data_cb;

            c->data_cb = NULL;
            cb(c, NULL, 0, n == 0 ? FERRY_EPROTO : FERRY_EIO, c->data_arg);
            if (!c->close_pending && c->state == CONN_PLUGIN && c->open_cb == NULL &&
                c->ufd < 0)
                conn_finish(c, "client-closed");
            return;
        }
        d->buf_len += (size_t)n;
        while (d->buf_len > 0 && c->data_cb != NULL && !c->close_pending) {
            used = c->data_cb(c, (const uint8_t *)d->buf, d->buf_len, FERRY_OK, c->data_arg);
            if (used < 0) {
                if (!c->close_pending)
                    conn_finish(c, "protocol-error");
                return;
            }
            if (used == 0)
                break;
            if ((size_t)used > d->buf_len)
                used = (int)d->buf_len;
            memmove(d->buf, d->buf + used, d->buf_len - (size_t)used);
            d->buf_len -= (size_t)used;
        }
    }
}

/* Write queued reply bytes; 1 when all are out, 0 when the socket is full, -1 error. */
static int
handshake_flush(struct ferry_conn *c)
{
    struct relay_dir *d = &c->down;
    ssize_t           n;

    while (d->buf_off < d->buf_len) {
        if (!c->c_writable)
            return 0;
        n = send(c->cfd, d->buf + d->buf_off, d->buf_len - d->buf_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            c->c_writable = false;
            return 0;
        }
        if (n <= 0)
            return -1;
        d->buf_off += (size_t)n;
        d->bytes += (size_t)n;
    }
    free(d->buf);
    d->buf = NULL;
    d->buf_off = d->buf_len = d->buf_cap = 0;
    return 1;
}

static void
on_handshake_io(struct ferry_conn *c, short what)
{
    int fl;

    c->in_callback = true;
    if ((fl = handshake_flush(c)) < 0) {
        conn_finish(c, c->state == CONN_CLOSING ? c->outcome : "reset");
    } else if (c->state == CONN_CLOSING) {
        if (fl == 1)
            conn_finish(c, c->outcome);
    } else if (what & EV_READ) {
        handshake_read(c);
    }
    c->in_callback = false;
    if (c->close_pending)
        conn_free(c);
}

FERRY_API int
ferry_conn_read_start(struct ferry_conn *c, size_t max_bytes, uint32_t timeout_ms,
                      ferry_data_cb cb, void *arg)
{
    if (c->state != CONN_PLUGIN || cb == NULL || max_bytes == 0)
        return FERRY_EINVAL;
    c->data_cb = cb;
    c->data_arg = arg;
    c->read_max = max_bytes;
    conn_watch_client(c);
    if (timeout_ms != 0) {
        /* A deadline for the whole handshake, not per byte: a client trickling one
         * byte at a time must not hold the slot forever. */
        struct timeval now, tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

        event_base_gettimeofday_cached(c->w->base, &now);
        timeradd(&now, &tv, &c->hs_deadline);
        c->hs_deadline_set = true;
        conn_arm_timer(c, timeout_ms);
    }
    /* An edge seen before anyone read (EV_READ while no data_cb) left c_readable set:
     * read then, from the loop, never inside this call. */
    if (c->c_readable)
        event_active(&c->cev, EV_READ, 1);
    return FERRY_OK;
}

FERRY_API void
ferry_conn_read_stop(struct ferry_conn *c)
{
    c->data_cb = NULL;
}

FERRY_API int
ferry_conn_write(struct ferry_conn *c, const void *data, size_t len)
{
    struct relay_dir *d = &c->down;

    if (c->state != CONN_PLUGIN)
        return FERRY_EINVAL;
    if (d->buf_len + len > HANDSHAKE_WRITE_MAX)
        return FERRY_ELIMIT;
    conn_watch_client(c);
    if (d->buf_off == d->buf_len && c->c_writable) {
        /* Nothing queued: straight to the socket. A reply of a few bytes then never
         * touches the heap; only what the socket does not take is queued. */
        ssize_t n;

        do {
            n = send(c->cfd, data, len, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
            c->c_writable = false;
        if (n > 0) {
            d->bytes += (size_t)n;
            data = (const char *)data + n;
            len -= (size_t)n;
            if (len == 0)
                return FERRY_OK;
        }
        /* Other errors: queue the bytes; the next flush reports the error. */
    }
    if (d->buf_len + len > d->buf_cap) {
        size_t cap = d->buf_len + len < 512 ? 512 : d->buf_len + len;
        char  *nb = realloc(d->buf, cap);

        if (nb == NULL)
            return FERRY_ENOMEM;
        d->buf = nb;
        d->buf_cap = cap;
    }
    memcpy(d->buf + d->buf_len, data, len);
    d->buf_len += len;
    /* What does not fit goes out on the next EV_WRITE edge (or first thing when the
     * relay starts). An error shows up on that path too. */
    (void)handshake_flush(c);
    return FERRY_OK;
}

FERRY_API void
ferry_conn_relay(struct ferry_conn *c)
{
    if (c->state != CONN_PLUGIN || (c->ufd < 0 && c->ts == NULL)) {
        conn_finish(c, "relay-without-upstream");
        return;
    }
    c->data_cb = NULL;
    if (c->hs_deadline_set) {
        c->hs_deadline_set = false;
        conn_arm_idle(c, c->l->lc->idle_timeout_ms);
    }
    conn_touch(c);
    relay_start(c);
}

FERRY_API void
ferry_conn_close(struct ferry_conn *c, const char *outcome)
{
    struct timeval tv = { CLOSE_FLUSH_MS / 1000, 0 };

    if (c->close_pending || c->state == CONN_CLOSING)
        return;
    c->outcome = outcome != NULL ? outcome : "closed";
    if (c->cio != NULL) {
        while (c->ios != NULL)
            ferry_io_close(c->ios);
        if (io_client_flush(c)) {
            conn_finish(c, c->outcome);
            return;
        }
        c->state = CONN_CLOSING;
        evtimer_add(&c->timer, &tv);
        return;
    }
    if (c->down.buf_len == c->down.buf_off) {
        conn_finish(c, c->outcome);
        return;
    }
    /* Deliver the queued reply first; a bounded wait, then close regardless. */
    c->state = CONN_CLOSING;
    c->data_cb = NULL;
    dial_abort(&c->dial);
    conn_watch_client(c);
    evtimer_add(&c->timer, &tv);
}
