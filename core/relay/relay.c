/*
 * relay.c: moves bytes between a client and its upstream until both directions are
 * done. Owns the relay half of a connection: the two directions, their pipes and
 * buffers. Does not parse protocols, choose destinations (conn-route.c) or write
 * access-log lines (conn-log.c); the handoff to it is conn-handoff.c's.
 *
 * Small exchanges go recv() -> stack buffer -> send(): two cheap syscalls, no pipe.
 * Once a direction reads a full stack buffer it is bulk traffic and switches to
 * splice() socket -> pipe -> socket, so payload never enters user space. Pipes are
 * large (1 MiB, worker.c) because throughput scales with bytes moved per splice, and
 * they come from the worker's pool only while they hold data: an idle connection
 * holds no pipe and no buffer. If splice is refused (EINVAL: an fd that cannot
 * splice) the direction stays on recv/send.
 *
 * Events are edge-triggered (conn.c), so readiness is remembered in the conn's
 * *_readable / *_writable flags: set by an event, cleared by EAGAIN.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "tunnel/session.h"
#include "worker/conn-int.h"

#define COPY_BYTES   (16 * 1024)  /* a full read of this size means bulk: splice */
#define PUMP_ROUNDS  4            /* reads per wake-up, then let other connections run */

void
relay_dir_init(struct relay_dir *d)
{
    memset(d, 0, sizeof(*d));
    d->pipe[0] = d->pipe[1] = -1;
}

static void
dir_release_pipe(struct worker *w, struct relay_dir *d)
{
    if (d->pipe[0] < 0)
        return;
    if (d->in_pipe == 0) {
        worker_pipe_put(w, d->pipe);
    } else {            /* holds bytes we will never deliver: not reusable */
        close(d->pipe[0]);
        close(d->pipe[1]);
    }
    d->pipe[0] = d->pipe[1] = -1;
    d->in_pipe = 0;
}

static void
dir_free_buf(struct relay_dir *d)
{
    free(d->buf);
    d->buf = NULL;
    d->buf_off = d->buf_len = d->buf_cap = 0;
}

void
relay_release(struct ferry_conn *c)
{
    dir_release_pipe(c->w, &c->up);
    dir_release_pipe(c->w, &c->down);
    dir_free_buf(&c->up);
    dir_free_buf(&c->down);
}

static void
dir_account(struct ferry_conn *c, struct relay_dir *d, size_t n)
{
    struct stats_cell *lc = &c->l->stats->cell[c->w->id];
    struct stats_cell *dc = c->dstats != NULL ? &c->dstats->cell[c->w->id] : NULL;

    d->bytes += n;
    if (d == &c->up) {
        stats_add(&lc->bytes_in, n);
        if (dc != NULL)
            stats_add(&dc->bytes_in, n);
    } else {
        stats_add(&lc->bytes_out, n);
        if (dc != NULL)
            stats_add(&dc->bytes_out, n);
    }
}

static bool
dir_has_pending(const struct relay_dir *d)
{
    return d->buf_off < d->buf_len || d->in_pipe > 0;
}

/* Deliver what this direction holds. 1: all delivered; 0: `to` is full; -1: error. */
static int
dir_flush(struct ferry_conn *c, struct relay_dir *d)
{
    ssize_t n;

    while (d->buf_off < d->buf_len) {
        n = send(*d->to, d->buf + d->buf_off, d->buf_len - d->buf_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            *d->to_ready = false;
            return 0;
        }
        d->buf_off += (size_t)n;
        dir_account(c, d, (size_t)n);
    }
    if (d->buf != NULL)
        dir_free_buf(d);
    while (d->in_pipe > 0) {
        n = splice(d->pipe[0], NULL, *d->to, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            *d->to_ready = false;
            return 0;
        }
        d->in_pipe -= (size_t)n;
        dir_account(c, d, (size_t)n);
    }
    dir_release_pipe(c->w, d);
    return 1;
}

/* Keep what send() did not take; the next flush delivers it. */
static int
dir_keep(struct relay_dir *d, const char *data, size_t len)
{
    if ((d->buf = malloc(len)) == NULL)
        return -1;
    memcpy(d->buf, data, len);
    d->buf_cap = d->buf_len = len;
    d->buf_off = 0;
    return 0;
}

/* recv into the stack, send at once. >0 read; 0 end of stream; -EAGAIN; -1 error. */
static ssize_t
dir_copy(struct ferry_conn *c, struct relay_dir *d)
{
    char    stack[COPY_BYTES];
    ssize_t n, sent;
    bool    last;

    do {
        n = recv(*d->from, stack, sizeof(stack), 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n == 0 ? 0 : (errno == EAGAIN ? -EAGAIN : -1);
    if ((size_t)n == sizeof(stack) && !d->no_splice)
        d->splicing = true;     /* bulk: the next reads go through a pipe */
    else if (!*d->from_hup)
        *d->from_ready = false; /* a short read drained it; new bytes bring a new edge */
    /* A short read after the FIN arrived took every byte before it: the end of the
     * stream is next. The recv() that would only say so is skipped, and MSG_MORE holds
     * these bytes for the FIN that shutdown() or close() sends right after: one
     * segment, where a reply and its close were two. */
    last = (size_t)n < sizeof(stack) && *d->from_hup;
    sent = 0;
    if (*d->to_ready) {
        do {
            sent = send(*d->to, stack, (size_t)n, MSG_NOSIGNAL | (last ? MSG_MORE : 0));
        } while (sent < 0 && errno == EINTR);
        if (sent < 0) {
            if (errno != EAGAIN)
                return -1;
            sent = 0;
        }
        if (sent < n)
            *d->to_ready = false;
        dir_account(c, d, (size_t)sent);
    }
    if (sent < n && dir_keep(d, stack + sent, (size_t)(n - sent)) != 0)
        return -1;
    if (last)
        d->eof = true;
    return n;
}

/* splice from the socket into a pipe. Same returns as dir_copy. */
static ssize_t
dir_splice_in(struct ferry_conn *c, struct relay_dir *d)
{
    ssize_t n;

    if (d->pipe[0] < 0 && worker_pipe_get(c->w, d->pipe) != 0) {
        d->splicing = false;    /* out of fds: keep moving bytes the slow way */
        return dir_copy(c, d);
    }
    do {
        n = splice(*d->from, NULL, d->pipe[1], NULL, c->w->pipe_size,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        d->in_pipe += (size_t)n;
        return n;
    }
    if (n == 0)
        return 0;
    if (errno == EAGAIN)
        return -EAGAIN;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    d->splicing = false;        /* this fd cannot splice: recv/send from now on */
    d->no_splice = true;
    dir_release_pipe(c->w, d);
    return dir_copy(c, d);
}

/* Move as much as one turn allows in one direction. 0 ok (waiting for an edge or
 * rescheduled), -1 the connection must close. */
static int
dir_pump(struct ferry_conn *c, struct relay_dir *d, bool *again)
{
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        ssize_t n;

        if (dir_has_pending(d)) {
            int fl;

            if (!*d->to_ready)
                return 0;               /* wait for EV_WRITE on `to` */
            if ((fl = dir_flush(c, d)) <= 0)
                return fl;
        }
        if (d->eof) {
            if (!d->shut) {
                /* Half-close: pass the FIN on; the other direction keeps going. When
                 * the other direction is already done, close() sends the FIN. */
                struct relay_dir *other = d == &c->up ? &c->down : &c->up;

                if (!other->shut)
                    shutdown(*d->to, SHUT_WR);
                d->shut = true;
            }
            return 0;
        }
        if (!*d->from_ready)
            return 0;                   /* wait for EV_READ on `from` */
        n = d->splicing ? dir_splice_in(c, d) : dir_copy(c, d);
        if (n == -EAGAIN) {
            *d->from_ready = false;
            return 0;
        }
        if (n < 0)
            return -1;
        if (n == 0)
            d->eof = true;
    }
    *again = true;                      /* more may be waiting: after the others */
    return 0;
}

void
relay_on_event(struct ferry_conn *c)
{
    bool again = false;

    conn_touch(c);
    if (dir_pump(c, &c->up, &again) < 0 || dir_pump(c, &c->down, &again) < 0) {
        conn_finish(c, "reset");
        return;
    }
    if (c->up.shut && c->down.shut) {
        conn_finish(c, "ok");
        return;
    }
    if (again)      /* edge-triggered: no new edge will come for data already there */
        event_active(&c->cev, EV_READ, 1);
}

/* Upstream is a tunnel stream: session.c moves the bytes. Queued handshake bytes go
 * first in both directions; they are taken off the connection before the stream
 * starts, because starting may already end the connection. */
static void
relay_start_stream(struct ferry_conn *c)
{
    struct tstream *ts = c->ts;
    char           *down = c->down.buf, *up = c->up.buf;
    size_t          doff = c->down.buf_off, dlen = c->down.buf_len;
    size_t          uoff = c->up.buf_off, ulen = c->up.buf_len;

    c->down.buf = c->up.buf = NULL;
    c->down.buf_off = c->down.buf_len = c->down.buf_cap = 0;
    c->up.buf_off = c->up.buf_len = c->up.buf_cap = 0;
    c->state = CONN_RELAY;
    conn_watch_client(c);
    tstream_start(ts, down != NULL ? down + doff : NULL, dlen - doff,
                  up != NULL ? up + uoff : NULL, ulen - uoff);
    free(down);
    free(up);
}

void
relay_start(struct ferry_conn *c)
{
    if (c->ts != NULL) {
        relay_start_stream(c);
        return;
    }
    c->up.from = &c->cfd;
    c->up.to = &c->ufd;
    c->up.from_ready = &c->c_readable;
    c->up.from_hup = &c->c_hup;
    c->down.from_hup = &c->u_hup;
    c->up.to_ready = &c->u_writable;
    c->down.from = &c->ufd;
    c->down.to = &c->cfd;
    c->down.from_ready = &c->u_readable;
    c->down.to_ready = &c->c_writable;
    c->state = CONN_RELAY;
    conn_watch_client(c);
    /* Bytes the plugin read but did not consume (up.buf) and replies it queued
     * (down.buf) go first. An emptied handshake buffer goes now: an idle relay holds
     * none, and dir_keep() expects a direction without one. */
    if (!dir_has_pending(&c->up))
        dir_free_buf(&c->up);
    if (!dir_has_pending(&c->down))
        dir_free_buf(&c->down);
    relay_on_event(c);
}
