/*
 * relay.c: moves bytes between a client and its upstream until both directions are
 * done. Owns the relay half of a connection: the two directions, their pipes and
 * buffers. Does not parse protocols, choose destinations or write access-log lines
 * (conn.c does).
 *
 * Zero copy: each direction splices socket -> pipe -> socket, so payload never enters
 * user space. Pipes are large (1 MiB, see worker.c) because throughput scales with the
 * bytes moved per splice call, and they are taken from the worker's pool only while
 * they hold data, so an idle connection holds no pipe at all. If splice is refused
 * (EINVAL: an fd that cannot splice), that direction falls back to recv/send through
 * a buffer that also exists only while it holds data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "worker/conn-int.h"

#define COPY_BUF_BYTES   (64 * 1024)
#define PUMP_ROUNDS      4     /* fill+flush rounds per wake-up: fairness between conns */

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
    } else {            /* data we will never deliver: the pipe cannot be reused */
        close(d->pipe[0]);
        close(d->pipe[1]);
    }
    d->pipe[0] = d->pipe[1] = -1;
    d->in_pipe = 0;
}

void
relay_release(struct ferry_conn *c)
{
    struct relay_dir *dirs[2] = { &c->up, &c->down };

    for (int i = 0; i < 2; i++) {
        dir_release_pipe(c->w, dirs[i]);
        free(dirs[i]->buf);
        dirs[i]->buf = NULL;
        dirs[i]->buf_off = dirs[i]->buf_len = dirs[i]->buf_cap = 0;
    }
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
            return errno == EAGAIN ? 0 : -1;
        }
        d->buf_off += (size_t)n;
        dir_account(c, d, (size_t)n);
    }
    if (d->buf != NULL) {       /* empty: an idle connection keeps no buffer */
        free(d->buf);
        d->buf = NULL;
        d->buf_off = d->buf_len = d->buf_cap = 0;
    }
    while (d->in_pipe > 0) {
        n = splice(d->pipe[0], NULL, *d->to, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        d->in_pipe -= (size_t)n;
        dir_account(c, d, (size_t)n);
    }
    dir_release_pipe(c->w, d);
    return 1;
}

/* Read more into this direction. >0 bytes; 0 end of stream; -EAGAIN; -1 error. */
static ssize_t
dir_fill(struct ferry_conn *c, struct relay_dir *d)
{
    ssize_t n;

    if (!d->copy) {
        if (d->pipe[0] < 0 && worker_pipe_get(c->w, d->pipe) != 0)
            d->copy = true;     /* out of fds/pipes: still move the bytes */
    }
    if (!d->copy) {
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
        d->copy = true;         /* this fd cannot splice: buffered from now on */
        dir_release_pipe(c->w, d);
    }
    if (d->buf == NULL) {
        if ((d->buf = malloc(COPY_BUF_BYTES)) == NULL)
            return -1;
        d->buf_cap = COPY_BUF_BYTES;
        d->buf_off = d->buf_len = 0;
    }
    do {
        n = recv(*d->from, d->buf + d->buf_len, d->buf_cap - d->buf_len, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        d->buf_len += (size_t)n;
        return n;
    }
    if (n == 0)
        return 0;
    return errno == EAGAIN ? -EAGAIN : -1;
}

static bool
relay_is_done(const struct ferry_conn *c)
{
    return c->up.shut && c->down.shut;
}

/* Move as much as possible in one direction, then wait on the right event. */
static int
dir_pump(struct ferry_conn *c, struct relay_dir *d)
{
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        int     fl = dir_flush(c, d);
        ssize_t n;

        if (fl < 0)
            return -1;
        if (fl == 0) {                  /* `to` is full: stop reading until it drains */
            event_del(d->rd);
            event_add(d->wr, NULL);
            return 0;
        }
        event_del(d->wr);
        if (d->eof) {
            if (!d->shut) {
                /* Half-close: pass the client's FIN on; the other way keeps going. */
                shutdown(*d->to, SHUT_WR);
                d->shut = true;
            }
            event_del(d->rd);
            return 0;
        }
        n = dir_fill(c, d);
        if (n == -EAGAIN) {
            event_add(d->rd, NULL);
            return 0;
        }
        if (n < 0)
            return -1;
        if (n == 0)
            d->eof = true;
    }
    event_add(d->rd, NULL);             /* more may be waiting: come back next loop */
    return 0;
}

static void
on_up(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_conn *c = arg;

    (void)fd;
    (void)what;
    conn_touch(c);
    if (dir_pump(c, &c->up) < 0) {
        conn_finish(c, "reset");
        return;
    }
    if (relay_is_done(c))
        conn_finish(c, "ok");
}

static void
on_down(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_conn *c = arg;

    (void)fd;
    (void)what;
    conn_touch(c);
    if (dir_pump(c, &c->down) < 0) {
        conn_finish(c, "reset");
        return;
    }
    if (relay_is_done(c))
        conn_finish(c, "ok");
}

void
relay_start(struct ferry_conn *c)
{
    struct event_base *base = c->w->base;

    event_del(&c->c_rd);
    event_del(&c->c_wr);
    event_del(&c->u_rd);
    event_del(&c->u_wr);
    event_assign(&c->c_rd, base, c->cfd, EV_READ | EV_PERSIST, on_up, c);
    event_assign(&c->u_wr, base, c->ufd, EV_WRITE | EV_PERSIST, on_up, c);
    event_assign(&c->u_rd, base, c->ufd, EV_READ | EV_PERSIST, on_down, c);
    event_assign(&c->c_wr, base, c->cfd, EV_WRITE | EV_PERSIST, on_down, c);
    c->up.from = &c->cfd;
    c->up.to = &c->ufd;
    c->up.rd = &c->c_rd;
    c->up.wr = &c->u_wr;
    c->down.from = &c->ufd;
    c->down.to = &c->cfd;
    c->down.rd = &c->u_rd;
    c->down.wr = &c->c_wr;
    c->state = CONN_RELAY;
    /* Bytes the plugin read but did not consume, and replies it queued, sit in the
     * directions' buffers: the first pump delivers them before any splice. */
    if (dir_pump(c, &c->up) < 0 || dir_pump(c, &c->down) < 0) {
        conn_finish(c, "reset");
        return;
    }
    if (relay_is_done(c))
        conn_finish(c, "ok");
}
