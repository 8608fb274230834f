/*
 * io-open.c: opening upstream streams (ferry/io.h): routing (conn_route), the TLS
 * context if asked for (from the cache; one not built yet is waited for, it is built
 * on the main thread), a direct dial or a tunnel stream behind a socketpair, then the
 * TLS handshake; and StartTLS on a stream that is already open. io.c holds the
 * streams' reading, writing and events; io-priv.h what both share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include <ferry/io.h>

#include "route/dial.h"
#include "stats/stats.h"
#include "tls/cache.h"
#include "tls/tls.h"
#include "tunnel/gateway.h"
#include "tunnel/session.h"
#include "util/abi.h"
#include "worker/conn-int.h"
#include "worker/io-int.h"
#include "worker/io-priv.h"

/* ---- opening an upstream ------------------------------------------------------------ */

void
io_open_done(struct ferry_io *io, int status, const char *reason)
{
    struct ferry_conn *c = io->c;
    ferry_io_open_cb   cb = io->open_cb;
    void              *arg = io->open_arg;
    char               why[200];
    bool               outer;

    io->open_cb = NULL;
    if (c == NULL || cb == NULL)
        return;
    if (status != FERRY_OK) {
        snprintf(why, sizeof(why), "%s", reason);
        ferry_log(&c->logctx, FERRY_WARN, "upstream open failed", FLOG_STR("target", io->target),
                  FLOG_STR("error", why));
        ferry_io_close(io);
        conn_enter(c, &outer);
        cb(c, NULL, status, why, arg);
        conn_leave(c, outer);
        return;
    }
    conn_enter(c, &outer);
    io->in_cb = true;
    cb(c, io, FERRY_OK, reason, arg);
    io->in_cb = false;
    if (io->closed) {
        free(io);
    } else if (!c->close_pending && (*io->readable || io->out_len > 0)) {
        io_later(io, 0);
    }
    conn_leave(c, outer);
}

/* The transport is up: TLS next, if asked for. */
void
io_transport_up(struct ferry_io *io)
{
    if (io->tls_ctx == NULL) {
        io_open_done(io, FERRY_OK, "connected");
        return;
    }
    if ((io->ssl = tls_client_ssl(io->tls_ctx, io->own_fd, io->sni)) == NULL) {
        io_open_done(io, FERRY_ENOMEM, "TLS: out of memory");
        return;
    }
    io->handshaking = true;
    io_handshake(io);
}

static void
io_dial_watch(void *owner, int fd, uint32_t timeout_ms)
{
    struct ferry_io *io = owner;
    struct timeval   tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

    if (io->ev_added)
        event_del(&io->ev);
    io->own_readable = io->own_hup = false;     /* a new socket: earlier flags go */
    event_assign(&io->ev, io->w->base, fd, EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST,
                 io_on_sock, io);
    io->ev_added = event_add(&io->ev, timeout_ms != 0 ? &tv : NULL) == 0;
}

static void
io_dial_unwatch(void *owner)
{
    struct ferry_io *io = owner;

    if (io->ev_added) {
        event_del(&io->ev);
        io->ev_added = false;
    }
}

static void
io_dial_done(void *owner, int fd, int status, const char *reason)
{
    struct ferry_io *io = owner;

    if (fd < 0) {
        io_open_done(io, status, reason);
        return;
    }
    io->own_fd = fd;
    if (io->ev_added) {
        /* The same event keeps watching; its connect timeout now bounds TLS only. */
        event_remove_timer(&io->ev);
    }
    /* own_readable and own_hup are what the connect's wake-up saw (io_on_sock). */
    io->own_writable = true;
    if (io->tls_ctx != NULL) {
        struct timeval tv = { 10, 0 };

        evtimer_add(&io->timer, &tv);
    }
    io_transport_up(io);
}

static const struct dial_ops io_dial_ops = {
    .watch = io_dial_watch, .unwatch = io_dial_unwatch, .done = io_dial_done,
};

static void
io_on_ts_sock(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_io *io = arg;

    (void)fd;
    if (what & EV_READ)
        io->ts_readable = true;
    if (what & EV_WRITE)
        io->ts_writable = true;
    if (io->ts != NULL)
        tstream_on_socket(io->ts);
}

static void
io_ts_response(struct gw_owner *o, int status, const char *error)
{
    struct ferry_io *io = container_of(o, struct ferry_io, gwo);

    if (status == 200) {
        tstream_start(io->ts, NULL, 0, NULL, 0);
        io->ts_ev_added = event_add(&io->ts_ev, NULL) == 0;
        io_dial_watch(io, io->own_fd, 0);
        io->own_readable = false;
        io->own_writable = true;
        io_transport_up(io);
        return;
    }
    if (io->tstats != NULL)
        stats_add(status == 403 ? &io->tstats->cell[io->w->id].conns_rejected
                                : &io->tstats->cell[io->w->id].conns_failed, 1);
    io_open_done(io, status == 403 ? FERRY_EDENIED : status == 504 ? FERRY_ETIMEDOUT :
                     error != NULL && strcmp(error, "connection-refused") == 0 ? FERRY_EUNAVAIL :
                     FERRY_EUNREACH,
                 error != NULL ? error : "refused by the connector");
}

static void
io_ts_ended(struct gw_owner *o, const char *outcome)
{
    struct ferry_io *io = container_of(o, struct ferry_io, gwo);

    if (strcmp(outcome, "ok") != 0)
        io->ts_cut = outcome;   /* a string literal of gateway.c */
    io->ts = NULL;              /* gone: forget, never release */
    if (io->ts_ev_added) {
        event_del(&io->ts_ev);
        io->ts_ev_added = false;
    }
    if (io->ts_fd >= 0) {       /* our end reads EOF once the pair is drained */
        close(io->ts_fd);
        io->ts_fd = -1;
    }
    if (io->tstats != NULL) {
        atomic_fetch_sub(&io->tstats->active, 1);
        io->tstats = NULL;
    }
    if (io->open_cb != NULL && !io->handshaking)
        io_open_done(io, FERRY_EUNAVAIL, "tunnel lost");
}

static void
io_ts_bytes(struct gw_owner *o, uint64_t in, uint64_t out)
{
    struct ferry_io *io = container_of(o, struct ferry_io, gwo);

    if (io->tstats != NULL) {
        stats_add(&io->tstats->cell[io->w->id].bytes_in, in);
        stats_add(&io->tstats->cell[io->w->id].bytes_out, out);
    }
}

static const struct gw_owner_ops io_gw_ops = {
    .response = io_ts_response, .ended = io_ts_ended, .bytes = io_ts_bytes,
};

/* Start a tunnel stream; FERRY_OK or gw_open_stream's refusal. */
static int
io_open_tunnel(struct ferry_io *io, struct conn_route *r)
{
    int sp[2], rc;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) != 0)
        return FERRY_EIO;
    io->own_fd = sp[0];
    io->ts_fd = sp[1];
    io->ts_readable = false;
    io->ts_writable = true;
    event_assign(&io->ts_ev, io->w->base, io->ts_fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST,
                 io_on_ts_sock, io);
    r->req.fd = &io->ts_fd;
    r->req.readable = &io->ts_readable;
    r->req.writable = &io->ts_writable;
    io->gwo.ops = &io_gw_ops;
    rc = gw_open_stream(&io->w->gw, &io->gwo, &r->req, &io->ts, &io->tstats);
    if (rc != FERRY_OK) {
        close(sp[0]);
        close(sp[1]);
        io->own_fd = io->ts_fd = -1;
    }
    return rc;
}

static int
io_fail_later(struct ferry_io *io, int status, const char *reason)
{
    io->open_status = status;
    snprintf(io->reason_buf, sizeof(io->reason_buf), "%s", reason);
    io->reason = io->reason_buf;
    io_later(io, 0);
    return FERRY_OK;
}

/* t is core's whole copy (ABI_COPY): fields newer than the plugin's minor are zero. */
static void
io_tls_settings(const struct ferry_io_tls *t, struct ferry_tls_settings *s)
{
    s->ca_file = t->ca_file;
    s->cert_file = t->cert_file;
    s->key_file = t->key_file;
    s->insecure = t->insecure;
    s->no_system_store = t->no_system_store;
    s->cert_password = t->cert_password;
    s->wildcard_any_depth = t->wildcard_any_depth;
}

/* Dial or open the tunnel stream for a routed open (its TLS context is at hand). */
static int
io_open_routed(struct ferry_io *io, int kind, struct conn_route *r)
{
    struct ferry_conn *c = io->c;

    if (kind == ROUTE_TUNNEL || kind == ROUTE_TUNNEL_OR_DIRECT) {
        int rc = io_open_tunnel(io, r);

        if (rc == FERRY_OK)
            return FERRY_OK;
        if (kind == ROUTE_TUNNEL)
            return io_fail_later(io, conn_route_refused(c, r, rc), r->p.reason);
    }
    if (dial_begin(&io->dial, c->w->base, c->w->dns, &io_dial_ops, io, r->p.host, r->p.port,
                   r->p.timeout_ms) != FERRY_OK)
        return io_fail_later(io, FERRY_ENOMEM, "out of memory");
    return FERRY_OK;
}

/* A copy of r whose strings (the plugin's target may hold them) live with it. The
 * plan's tunnel strings are set for the tunnel kinds only. The user's claims are
 * copied too: the plugin may let its user go before the TLS context is built. */
static struct conn_route *
route_dup(const struct conn_route *r, int kind)
{
    bool               tunnel = kind == ROUTE_TUNNEL || kind == ROUTE_TUNNEL_OR_DIRECT;
    const char        *strs[5] = { r->p.host, tunnel ? r->p.tenant : NULL,
                                   tunnel ? r->p.location : NULL,
                                   tunnel ? r->p.protocol : NULL,
                                   tunnel ? r->req.user : NULL };
    const char       **to[5];
    size_t             len[5], total = 0;
    struct conn_route *d;
    char              *p;

    for (int i = 0; i < 5; i++)
        total += len[i] = strs[i] != NULL ? strlen(strs[i]) + 1 : 0;
    if ((d = malloc(sizeof(*d) + total)) == NULL)
        return NULL;
    *d = *r;
    to[0] = &d->p.host;
    to[1] = &d->p.tenant;
    to[2] = &d->p.location;
    to[3] = &d->p.protocol;
    to[4] = &d->req.user;
    p = (char *)(d + 1);
    for (int i = 0; i < 5; i++) {
        if (strs[i] == NULL)
            continue;
        memcpy(p, strs[i], len[i]);
        *to[i] = p;
        p += len[i];
    }
    if (tunnel) {
        d->req.tenant = d->p.tenant;
        d->req.location = d->p.location;
        d->req.protocol = d->p.protocol;
        d->req.authority = d->p.authority;
    }
    return d;
}

/* The context an open or a StartTLS waited for (on the worker, from the loop). */
static void
io_tls_ready(SSL_CTX *ctx, const char *why, void *arg)
{
    struct ferry_io   *io = arg;
    struct conn_route *r = io->route;
    char               msg[200];

    io->tls_wait = NULL;
    io->route = NULL;
    if (ctx == NULL) {
        snprintf(msg, sizeof(msg), "%.150s", why);
        if (r != NULL)
            io_fail_later(io, FERRY_EINVAL, msg);   /* as a failure found at once */
        else
            io_open_done(io, FERRY_EINVAL, msg);    /* StartTLS: io goes, cb is told */
        free(r);
        return;
    }
    io->tls_ctx = ctx;
    if (r != NULL) {
        io_open_routed(io, io->route_kind, r);
        free(r);
        return;
    }
    io->starttls = true;        /* the handshake starts from the loop */
    io_later(io, 0);
}

/* Ask the cache for t's context: FERRY_OK (io->tls_ctx set), FERRY_EAGAIN (io_tls_ready
 * follows), or a negative code with why. */
static int
io_tls_get(struct ferry_io *io, const struct ferry_io_tls *t, const char **why)
{
    struct ferry_tls_settings s = { 0 };
    SSL_CTX                  *ctx = NULL;
    int                       rc;

    io_tls_settings(t, &s);
    rc = ferry_tls_cache_get(io->w->tls, &s, &io->w->post, io_tls_ready, io, &ctx,
                             &io->tls_wait);
    if (rc == FERRY_OK) {
        SSL_CTX_free(io->tls_ctx);
        io->tls_ctx = ctx;
    }
    *why = rc == FERRY_ELIMIT ? "TLS: too many contexts loading" : "out of memory";
    return rc;
}

FERRY_API int
ferry_io_open(struct ferry_conn *c, const struct ferry_target *pt,
              const struct ferry_io_tls *ptls, uint32_t connect_timeout_ms, ferry_io_open_cb cb,
              void *arg)
{
    struct ferry_io           *io;
    struct conn_route          r;
    struct ferry_target        tt;
    struct ferry_io_tls        tlsbuf;
    const struct ferry_target *t = &tt;
    const struct ferry_io_tls *tls = NULL;
    const char                *why;
    int                        kind, rc;

    if (c == NULL || pt == NULL || cb == NULL || c->close_pending)
        return FERRY_EINVAL;
    /* Only what the plugin's minor has of its structs (util/abi.h). */
    ABI_COPY(&tt, pt, conn_abi_minor(c), ABI_TARGET_SIZES);
    if (ptls != NULL) {
        ABI_COPY(&tlsbuf, ptls, conn_abi_minor(c), ABI_IO_TLS_SIZES);
        tls = &tlsbuf;
    }
    if ((io = io_alloc(c->w)) == NULL)
        return FERRY_ENOMEM;
    io->c = c;
    io->open_cb = cb;
    io->open_arg = arg;
    io_link(&c->ios, io);
    /* rate: a plugin that does not count requests itself (ferry_conn_rate_take, as
     * http does) has its connections counted here, once, as in ferry_conn_open. */
    if (!c->rate_taken) {
        c->rate_taken = true;
        if (conn_rate_take(c, NULL) != FERRY_OK) {
            c->rate_refused = true;
            return io_fail_later(io, FERRY_EDENIED, "rate-limited");
        }
    }
    kind = conn_route(c, t, &r);
    if (kind < 0)
        return io_fail_later(io, kind, r.p.reason);
    snprintf(io->target, sizeof(io->target), "%s", r.p.authority);
    conn_set_target(c, r.p.authority);
    if (connect_timeout_ms != 0)
        r.p.timeout_ms = connect_timeout_ms;
    if (tls != NULL && tls->enable) {
        if ((io->sni = strdup(tls->server_name != NULL ? tls->server_name : r.p.host)) == NULL)
            return io_fail_later(io, FERRY_ENOMEM, "out of memory");
        if ((rc = io_tls_get(io, tls, &why)) == FERRY_EAGAIN) {
            /* Not built yet: the dial waits for it, so a file that does not load fails
             * the open before anything is dialed, as when it was cached. */
            if ((io->route = route_dup(&r, kind)) == NULL) {
                ferry_tls_cache_cancel(io->tls_wait);
                io->tls_wait = NULL;
                return io_fail_later(io, FERRY_ENOMEM, "out of memory");
            }
            io->route_kind = kind;
            return FERRY_OK;
        }
        if (rc != FERRY_OK)
            return io_fail_later(io, rc, why);
    }
    return io_open_routed(io, kind, &r);
}

FERRY_API int
ferry_io_starttls(struct ferry_io *io, const struct ferry_io_tls *ptls, ferry_io_open_cb cb,
                  void *arg)
{
    struct ferry_io_tls        tlsbuf;
    const struct ferry_io_tls *tls = &tlsbuf;
    const char                *why;
    int                        rc;

    if (io == NULL || io->client || io->closed || io->c == NULL || cb == NULL || ptls == NULL ||
        io->ssl != NULL || io->open_cb != NULL || io->in_len > 0 || io->out_len > io->out_off ||
        io->err != 0 || io->eof || io->tls_wait != NULL)
        return FERRY_EINVAL;
    ABI_COPY(&tlsbuf, ptls, conn_abi_minor(io->c), ABI_IO_TLS_SIZES);
    free(io->sni);
    if ((io->sni = strdup(tls->server_name != NULL ? tls->server_name : "")) == NULL)
        return FERRY_ENOMEM;
    if ((rc = io_tls_get(io, tls, &why)) != FERRY_OK && rc != FERRY_EAGAIN)
        return rc;
    io->open_cb = cb;
    io->open_arg = arg;
    if (rc == FERRY_EAGAIN)
        return FERRY_OK;        /* io_tls_ready starts the handshake */
    /* The handshake starts from the loop, so cb never runs inside this call. */
    io->starttls = true;
    io_later(io, 0);
    return FERRY_OK;
}
