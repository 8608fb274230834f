/*
 * conn-handoff.c: the relay-handoff I/O model of ferry/conn.h. A plugin reads the
 * client's handshake (ferry_conn_read_start), writes its replies (ferry_conn_write),
 * opens one upstream (ferry_conn_open: a dial or a tunnel stream, as conn-route.c
 * plans it) and hands both ends to the relay (ferry_conn_relay); from then on it sees
 * no bytes. The message-level model (ferry/io.h streams) is io.c and io-open.c.
 *
 * Owns the handshake buffers and the upstream open in flight. Leaves the sockets'
 * events and the connection's end to conn.c, byte moving to relay/ (relay.c) or to
 * the tunnel stream (tunnel/session.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/event.h>

#include <ferry/conn.h>

#include "route/dial.h"
#include "tunnel/gateway.h"
#include "tunnel/session.h"
#include "util/abi.h"
#include "worker/conn-int.h"

#define HANDSHAKE_WRITE_MAX   (64 * 1024)   /* replies a plugin may queue before relay */
#define HANDSHAKE_FIRST_BYTES 512

/* A tunnel stream's totals become the connection's, for the access log (the metrics
 * were kept live by conn_stream_bytes). */
void
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

void
conn_deliver_open(struct ferry_conn *c, int status, const char *reason)
{
    ferry_open_cb cb = c->open_cb;

    c->open_cb = NULL;
    if (status != FERRY_OK && !c->rate_refused) {   /* a refused client is counted apart */
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

FERRY_API int
ferry_conn_open(struct ferry_conn *c, const struct ferry_target *pt, ferry_open_cb cb, void *arg)
{
    struct conn_route   r;
    struct ferry_target tt;
    const struct ferry_target *t = &tt;
    int                 kind;

    if (c->state != CONN_PLUGIN || c->open_cb != NULL || c->ufd >= 0 || cb == NULL || pt == NULL)
        return FERRY_EINVAL;
    /* A 1.1 plugin's target ends before protocol: read only what it has. */
    ABI_COPY(&tt, pt, conn_abi_minor(c), ABI_TARGET_SIZES);
    c->open_cb = cb;
    c->open_arg = arg;
    /* rate: counts new connections here, once, when the plugin knows what it wants:
     * its refusal then is the plugin's usual one (SOCKS5 02, LDAP's error, a close). */
    if (!c->rate_taken) {
        c->rate_taken = true;
        if (conn_rate_take(c, NULL) != FERRY_OK) {
            c->rate_refused = true;
            return conn_fail_later(c, FERRY_EDENIED, "rate-limited");
        }
    }
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
        return conn_fail_later(c, kind, r.p.reason);
    if (ferry_log_enabled(FERRY_DEBUG) || ferry_log_access_enabled())
        c->target = conn_strdup(c, r.p.authority);
    if (kind == ROUTE_TUNNEL || kind == ROUTE_TUNNEL_OR_DIRECT) {
        int rc;

        r.req.fd = &c->cfd;
        r.req.readable = &c->c_readable;
        r.req.writable = &c->c_writable;
        c->gwo.ops = &conn_gw_ops;
        rc = gw_open_stream(&c->w->gw, &c->gwo, &r.req, &c->ts, &c->tstats);
        if (rc == FERRY_OK)
            return FERRY_OK;
        if (kind == ROUTE_TUNNEL)
            return conn_fail_later(c, conn_route_refused(c, &r, rc), r.p.reason);
    }
    c->in_callback = true;          /* a synchronous dial failure must not free c here */
    if (dial_begin(&c->dial, c->w->base, c->w->dns, &conn_dial_ops, c, r.p.host, r.p.port,
                   r.p.timeout_ms) != FERRY_OK) {
        c->in_callback = false;
        c->open_cb = NULL;
        return FERRY_ENOMEM;
    }
    c->in_callback = false;
    return FERRY_OK;
}

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
            /* Not realloc: a moved block would be freed with the handshake's bytes
             * (credentials, often) still in it. */
            if ((nb = malloc(cap)) == NULL) {
                conn_finish(c, "no-memory");
                return;
            }
            if (d->buf == NULL) {
                d->buf_off = d->buf_len = 0;
            } else {
                memcpy(nb, d->buf, d->buf_len);
                explicit_bzero(d->buf, d->buf_cap);
                free(d->buf);
            }
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
            /* No buffer left: the plugin ended the connection (or took it to stream
             * mode) from the callback, and its bytes went with it. */
            if (used == 0 || d->buf == NULL)
                break;
            if ((size_t)used > d->buf_len)
                used = (int)d->buf_len;
            memmove(d->buf, d->buf + used, d->buf_len - (size_t)used);
            d->buf_len -= (size_t)used;
            /* Consumed bytes are the plugin's to keep: a SOCKS5 password or token, a
             * proxy's credentials. The tail the move left behind is wiped. */
            explicit_bzero(d->buf + d->buf_len, (size_t)used);
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

void
conn_handshake_io(struct ferry_conn *c, short what)
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
    conn_timers_off(c);                 /* c is core's now */
    if (c->hs_deadline_set) {
        c->hs_deadline_set = false;
        conn_arm_idle(c, c->l->lc->idle_timeout_ms);
    }
    conn_touch(c);
    relay_start(c);
}
