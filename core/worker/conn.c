/*
 * conn.c: the life of a client connection, from accept to free.
 *
 * Owns the connection struct, both sockets' events, its timers and its arena, and
 * implements the lifecycle half of ferry/conn.h (accessors, close, on_free). A plugin
 * callback may close the connection; the free then waits until the callback has
 * returned (in_callback / close_pending, conn_enter / conn_leave), never inside it.
 *
 * Leaves to others: where a target goes (conn-route.c, on route/'s decision), the two
 * ways bytes move once a plugin has a client — handing both sockets to the relay after
 * a handshake (conn-handoff.c, relay/) or message-level streams (io.c, io-open.c) —,
 * what goes into the logs (conn-log.c), and policies (conn-policy.c).
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include <ferry/conn.h>
#include <ferry/io.h>
#include <ferry/metrics.h>
#include <ferry/route.h>

#include "dest/dest-int.h"
#include "route/dial.h"
#include "tunnel/gateway.h"
#include "tunnel/session.h"
#include "util/addr.h"
#include "worker/conn-int.h"
#include "worker/io-int.h"

#define CLOSE_FLUSH_MS        5000          /* time to deliver a final error reply */

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

/* Count c against tenant t (of c's generation): FERRY_ELIMIT when t is at its
 * max_connections. The count is one atomic per tenant shared by every worker and
 * generation (a stats slot lives until exit), released when c is freed; a connection
 * that authenticates again as another tenant moves its count. */
static struct stats_slot *
tenant_slot(const struct gen *g, const struct ferry_conf_tenant *t)
{
    for (size_t i = 0; i < g->conf->ntenants; i++)
        if (&g->conf->tenants[i] == t)
            return g->tenant_stats[i];
    return NULL;
}

/* One more open connection on s (tenant t), unless that is past t's bound. */
static bool
tenant_slot_take(struct stats_slot *s, const struct ferry_conf_tenant *t, unsigned wid)
{
    if (atomic_fetch_add(&s->active, 1) >= (int)t->max_connections && t->max_connections != 0) {
        atomic_fetch_sub(&s->active, 1);
        stats_add(&s->cell[wid].conns_rejected, 1);
        return false;
    }
    return true;
}

static int
conn_tenant_claim(struct ferry_conn *c, const struct ferry_conf_tenant *t)
{
    struct stats_slot *s = tenant_slot(c->wg->g, t);

    if (s == NULL || s == c->tenstats)      /* not counted (no memory), or already */
        return FERRY_OK;
    if (!tenant_slot_take(s, t, c->w->id)) {
        ferry_log(&c->logctx, FERRY_WARN, "tenant connection limit reached",
                  FLOG_STR("tenant", t->id), FLOG_INT("max_connections", t->max_connections));
        return FERRY_ELIMIT;
    }
    if (c->tenstats != NULL)
        atomic_fetch_sub(&c->tenstats->active, 1);
    c->tenstats = s;
    return FERRY_OK;
}

FERRY_API int
ferry_conn_auth_tenant(struct ferry_conn *c, const char *tenant_id, const char *token)
{
    const struct ferry_conf_tenant *t;

    /* A static token first (constant time); else a JWT of a tenant with jwt:. */
    if ((t = ferry_conf_tenant_by_token(c->wg->g->conf, tenant_id, token)) == NULL &&
        conn_auth_tenant_jwt(c, tenant_id, token, &t) != FERRY_OK)
        return FERRY_EDENIED;
    if (conn_tenant_claim(c, t) != FERRY_OK)
        return FERRY_ELIMIT;
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

char *
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

void
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

void
conn_arm_timer(struct ferry_conn *c, uint32_t ms)
{
    struct timeval tv;

    evtimer_add(&c->timer, conn_common_tv(c, ms, &tv));
}

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
    if (c->state == CONN_PROXY) {
        conn_proxy_timeout(c);
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
    if (c->state == CONN_PROXY) {
        conn_proxy_io(c);
        return;
    }
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
        conn_handshake_io(c, what);
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
    const struct ferry_conf_tenant *t = NULL;
    struct stats_slot     *ts = NULL;

    stats_add(&cell->conns_total, 1);
    /* Before anything is read or allocated: a client from elsewhere costs one accept. */
    if (!conn_allowed(wl, sa)) {
        close(fd);
        return;
    }
    if (atomic_fetch_add(&l->stats->active, 1) >= (int)l->lc->max_connections) {
        /* Accept-and-close, never queue: the client learns at once (DESIGN.md). */
        atomic_fetch_sub(&l->stats->active, 1);
        stats_add(&cell->conns_rejected, 1);
        close(fd);
        return;
    }
    /* A listener bound to a tenant counts every connection against it; over the
     * tenant's bound it is refused like one over the listener's (no protocol spoken
     * yet to say more). */
    if (l->lc->tenant != NULL &&
        (t = ferry_conf_tenant(wl->wg->g->conf, l->lc->tenant)) != NULL &&
        (ts = tenant_slot(wl->wg->g, t)) != NULL && !tenant_slot_take(ts, t, w->id)) {
        atomic_fetch_sub(&l->stats->active, 1);
        stats_add(&cell->conns_rejected, 1);
        close(fd);
        return;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        atomic_fetch_sub(&l->stats->active, 1);
        if (ts != NULL)
            atomic_fetch_sub(&ts->active, 1);
        close(fd);
        return;
    }
    c->tenstats = ts;
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

    if (l->lc->proxy_protocol != 0)
        conn_proxy_start(c);            /* the plugin gets c once the header names the client */
    else
        conn_start_plugin(c);
}

void
conn_start_plugin(struct ferry_conn *c)
{
    struct ferry_listener *l = c->l;

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

/* The one slot of ABI 1.2, kept for plugins built against it: replaced by a later
 * call, run after the cleanup list. */
FERRY_API void
ferry_conn_on_free(struct ferry_conn *c, void (*fn)(void *arg), void *arg)
{
    c->on_free = fn;
    c->on_free_arg = arg;
}

FERRY_API int
ferry_conn_on_cleanup(struct ferry_conn *c, void (*fn)(void *arg), void *arg)
{
    struct conn_cleanup *cl;

    if (fn == NULL || c->close_pending)
        return FERRY_EINVAL;
    if (c->ncleanups >= CONN_CLEANUPS_MAX)
        return FERRY_ELIMIT;
    if ((cl = ferry_conn_alloc(c, sizeof(*cl))) == NULL)
        return FERRY_ENOMEM;
    cl->fn = fn;
    cl->arg = arg;
    cl->next = c->cleanups;
    c->cleanups = cl;
    c->ncleanups++;
    return FERRY_OK;
}

FERRY_API void
ferry_counter_add(struct ferry_counter *ctr, struct ferry_conn *c, uint64_t n)
{
    if (ctr != NULL && c != NULL && c->w->id < FERRY_MAX_WORKERS)
        stats_add(&ctr->cell[c->w->id].v, n);
}

void
conn_free(struct ferry_conn *c)
{
    struct worker *w = c->w;

    conn_write_access(c);
    policy_conn_gone(c);        /* before the cleanups: the hook's objects are the plugin's */
    conn_timers_off(c);
    /* Before the arena goes (it may live there); newest first, so what was set up
     * later, on top of earlier things, is taken down before them. */
    while (c->cleanups != NULL) {
        struct conn_cleanup *cl = c->cleanups;

        c->cleanups = cl->next;
        cl->fn(cl->arg);
    }
    if (c->on_free != NULL)
        c->on_free(c->on_free_arg);
    if (c->dstats != NULL)
        atomic_fetch_sub(&c->dstats->active, 1);
    if (c->tenstats != NULL)
        atomic_fetch_sub(&c->tenstats->active, 1);
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
    conn_timers_off(c);
    io_conn_finish(c);
    if (c->cev_added)
        event_del(&c->cev);
    conn_unwatch_upstream(c);
    event_del(&c->timer);
    relay_release(c);
    if (c->cfd >= 0 && c->outcome != NULL &&
        ((c->state == CONN_RELAY &&
          (strcmp(c->outcome, "reset") == 0 || strcmp(c->outcome, "tunnel-lost") == 0)) ||
         strcmp(c->outcome, "upstream-truncated") == 0)) {
        /* The far side was cut, not closed: a reset tells the client its data is
         * truncated, where a FIN would look like a complete transfer. A message
         * protocol says "upstream-truncated" once its response is under way (http: a
         * body delimited by the close has no other way to tell the client). */
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

FERRY_API void
ferry_conn_close(struct ferry_conn *c, const char *outcome)
{
    struct timeval tv = { CLOSE_FLUSH_MS / 1000, 0 };

    if (c->close_pending || c->state == CONN_CLOSING)
        return;
    conn_timers_off(c);
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

