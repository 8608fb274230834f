/*
 * io.c: byte streams for message-level plugins (ferry/io.h).
 *
 * A stream is a socket plus an input buffer and an output queue. Three kinds share
 * the code: the client's end (the connection's socket and event, conn.c keeps
 * owning them), a direct upstream (a dialed TCP socket, optionally TLS), and a tunnel
 * upstream. A tunnel stream (session.c) joins an HTTP/2 stream to a socket, so the
 * tunnel kind is one end of a socketpair whose other end is that socket: one code
 * path for every kind, at the price of one extra kernel copy on tunnel traffic.
 *
 * Events are edge-triggered, as everywhere in core: readiness lives in the
 * readable/writable flags (set by an event, cleared by EAGAIN). The input buffer is
 * bounded (FERRY_IO_INBUF); a full buffer simply stops reading, and readiness is kept
 * so reading resumes as soon as the plugin consumes. Input buffers come from a small
 * per-worker cache and go back whenever they are empty, so an idle keep-alive
 * connection holds none.
 *
 * This is the message-level I/O model of a connection (the relay handoff is
 * conn-handoff.c's). Opening upstreams (routing, the TLS context, dial, tunnel
 * stream, TLS, StartTLS) is io-open.c; the struct both files work on is in io-priv.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ferry/io.h>

#include "route/dial.h"
#include "stats/stats.h"
#include "tls/cache.h"
#include "tls/tls.h"
#include "tunnel/gateway.h"
#include "tunnel/session.h"
#include "util/addr.h"
#include "worker/conn-int.h"
#include "worker/io-int.h"
#include "worker/io-priv.h"

#define IO_OUT_MAX      (8u * 1024 * 1024)  /* queued output past this is a plugin bug */
#define IO_POOL_MAX     512                 /* idle upstream streams per worker */
#define IO_BUF_CACHE    32                  /* spare input buffers per worker */
#define IO_SMALL_BUF    1024                /* a partial message waits in at most this, */
#define IO_SMALL_MIN    256                 /* ...and at least this much */


/* ---- input buffers ----------------------------------------------------------------- */

static uint8_t *
buf_get(struct worker *w)
{
    if (w->niobufs > 0)
        return w->iobufs[--w->niobufs];
    return malloc(FERRY_IO_INBUF);
}

static void
buf_put(struct worker *w, uint8_t *b, size_t size)
{
    if (b == NULL)
        return;
    if (size == FERRY_IO_INBUF && w->niobufs < IO_BUF_CACHE)
        w->iobufs[w->niobufs++] = b;
    else
        free(b);
}

/* A client's bytes are wiped as they are consumed and when the stream goes: they
 * carry its credentials (Proxy-Authorization, an LDAP bind's password), and a pooled
 * buffer would otherwise keep them until a later read overwrites them. Upstream
 * bytes (responses, the bulk direction) are not: they cost a memset per byte. */
static void
io_in_release(struct ferry_io *io)
{
    if (io->in != NULL && io->client && io->in_len > 0)
        explicit_bzero(io->in + io->in_off, io->in_len);
    buf_put(io->w, io->in, io->in_size);
    io->in = NULL;
    io->in_off = io->in_len = 0;
}

/* After the plugin looked at new input: bytes it left for later (the start of a request
 * head that has not ended: a slow client, a slowloris) move from the 64 KiB buffer to a
 * small one, which grows again (io_fill) only if more comes than it holds. An idle
 * partial message then costs IO_SMALL_MIN..IO_SMALL_BUF, not FERRY_IO_INBUF; a stream
 * that consumes what it reads (the common case, and every bulk transfer) never gets
 * here with bytes. */
static void
io_in_shrink(struct ferry_io *io)
{
    uint8_t *nb;
    size_t   size = IO_SMALL_MIN;

    if (io->in == NULL || io->in_size != FERRY_IO_INBUF || io->in_len == 0 ||
        io->in_len > IO_SMALL_BUF)
        return;
    /* Room for what waits plus a little: a trickle of bytes grows it by doubling. */
    while (size < IO_SMALL_BUF && size < io->in_len + IO_SMALL_MIN / 4)
        size *= 2;
    if ((nb = malloc(size)) == NULL)
        return;
    memcpy(nb, io->in + io->in_off, io->in_len);
    if (io->client)
        explicit_bzero(io->in + io->in_off, io->in_len);
    buf_put(io->w, io->in, io->in_size);
    io->in = nb;
    io->in_size = size;
    io->in_off = 0;
}

void
io_worker_free(struct worker *w)
{
    io_pool_close_all(w);
    while (w->niobufs > 0)
        free(w->iobufs[--w->niobufs]);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static void io_on_timer(evutil_socket_t fd, short what, void *arg);
static void io_on_notify(evutil_socket_t fd, short what, void *arg);
static void io_process(struct ferry_io *io, unsigned ev);
static void io_linger_step(struct ferry_io *io);

void
io_link(struct ferry_io **head, struct ferry_io *io)
{
    io->prev = NULL;
    io->next = *head;
    if (*head != NULL)
        (*head)->prev = io;
    *head = io;
}

static void
io_unlink(struct ferry_io **head, struct ferry_io *io)
{
    if (io->prev != NULL)
        io->prev->next = io->next;
    else if (*head == io)
        *head = io->next;
    if (io->next != NULL)
        io->next->prev = io->prev;
    io->prev = io->next = NULL;
}

struct ferry_io *
io_alloc(struct worker *w)
{
    struct ferry_io *io = calloc(1, sizeof(*io));

    if (io == NULL)
        return NULL;
    io->w = w;
    io->own_fd = -1;
    io->ts_fd = -1;
    io->fd = &io->own_fd;
    io->readable = &io->own_readable;
    io->writable = &io->own_writable;
    io->hup = &io->own_hup;
    io->in_max = FERRY_IO_INBUF;
    evtimer_assign(&io->timer, w->base, io_on_timer, io);
    event_assign(&io->notify, w->base, -1, 0, io_on_notify, io);
    return io;
}

/* Give back everything but the struct: sockets, TLS, tunnel stream, buffers. */
static void
io_release(struct ferry_io *io)
{
    dial_abort(&io->dial);
    if (io->ts != NULL) {
        tstream_release(io->ts);        /* no on_stream_end follows */
        io->ts = NULL;
    }
    if (io->tstats != NULL) {
        atomic_fetch_sub(&io->tstats->active, 1);
        io->tstats = NULL;
    }
    if (io->ts_ev_added) {
        event_del(&io->ts_ev);
        io->ts_ev_added = false;
    }
    if (io->ts_fd >= 0) {
        close(io->ts_fd);
        io->ts_fd = -1;
    }
    if (io->ev_added) {
        event_del(&io->ev);
        io->ev_added = false;
    }
    event_del(&io->timer);
    event_del(&io->notify);
    if (io->ssl != NULL) {
        SSL_free(io->ssl);
        io->ssl = NULL;
    }
    if (!io->client && io->own_fd >= 0) {
        close(io->own_fd);
        io->own_fd = -1;
    }
    io_in_release(io);
    free(io->out);
    io->out = NULL;
    io->out_off = io->out_len = io->out_cap = 0;
    free(io->sni);
    io->sni = NULL;
    free(io->pool_key);
    io->pool_key = NULL;
    ferry_tls_cache_cancel(io->tls_wait);   /* the context, when it comes, is dropped */
    io->tls_wait = NULL;
    free(io->route);
    io->route = NULL;
    SSL_CTX_free(io->tls_ctx);              /* an SSL made from it holds its own ref */
    io->tls_ctx = NULL;
}

static void
io_destroy(struct ferry_io *io)
{
    io_release(io);
    if (io->in_cb)
        io->closed = true;      /* freed when its callback returns */
    else
        free(io);
}

FERRY_API void
ferry_io_close(struct ferry_io *io)
{
    if (io == NULL || io->client || io->closed)
        return;
    if (io->c != NULL)
        io_unlink(&io->c->ios, io);
    io->c = NULL;
    io->cb = NULL;
    io->open_cb = NULL;
    io_destroy(io);
}

void
io_conn_finish(struct ferry_conn *c)
{
    while (c->ios != NULL)
        ferry_io_close(c->ios);
    if (c->cio != NULL) {
        c->cio->cb = NULL;
        io_release(c->cio);
    }
}

void
io_conn_free(struct ferry_conn *c)
{
    free(c->cio);
    c->cio = NULL;
}

/* ---- callbacks --------------------------------------------------------------------- */

static void
io_fail(struct ferry_io *io, int code, const char *reason)
{
    if (io->err == 0) {
        io->err = code;
        snprintf(io->reason_buf, sizeof(io->reason_buf), "%s", reason);
        io->reason = io->reason_buf;
    }
}

/* Run the plugin's callback with c pinned. Returns false when io is gone. */
static bool
io_dispatch(struct ferry_io *io, unsigned ev)
{
    struct ferry_conn *c = io->c;
    bool               outer, alive;

    if (io->cb == NULL || c == NULL || ev == 0)
        return true;
    conn_enter(c, &outer);
    io->in_cb = true;
    io->cb(io, ev, io->cb_arg);
    io->in_cb = false;
    alive = !io->closed;
    if (!alive)
        free(io);
    else if (io->client && c->close_pending)
        alive = false;
    conn_leave(c, outer);
    return alive;
}

/* Deliver from the loop, never from inside a ferry_io_* call of the plugin. */
void
io_later(struct ferry_io *io, unsigned ev)
{
    io->later |= ev;
    event_active(&io->notify, 0, 1);
}

static void
io_on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_io *io = arg;
    unsigned         ev = io->later;

    (void)fd;
    (void)what;
    io->later = 0;
    if (io->starttls) {
        struct timeval tv = { 10, 0 };

        io->starttls = false;
        evtimer_add(&io->timer, &tv);
        io_transport_up(io);
        return;
    }
    if (io->open_cb != NULL && io->dial == NULL && io->ts == NULL && !io->handshaking) {
        /* A failure found before anything asynchronous started. */
        struct ferry_conn *c = io->c;
        ferry_io_open_cb   cb = io->open_cb;
        void              *arg2 = io->open_arg;
        int                status = io->open_status;
        char               why[200];
        bool               outer;

        snprintf(why, sizeof(why), "%s", io->reason != NULL ? io->reason : "failed");
        ferry_io_close(io);
        conn_enter(c, &outer);
        cb(c, NULL, status, why, arg2);
        conn_leave(c, outer);
        return;
    }
    io_process(io, ev);
}

/* ---- reading and writing ----------------------------------------------------------- */

/* Fill the input buffer until EAGAIN, EOF, or full. Returns the READ event bit when
 * there is something new for the plugin. */
static unsigned
io_fill(struct ferry_io *io)
{
    unsigned ev = 0;

    while (!io->paused && *io->readable && !io->eof && io->err == 0 && !io->handshaking) {
        size_t  room;
        ssize_t n;

        if (io->in == NULL) {
            if ((io->in = buf_get(io->w)) == NULL) {
                io_fail(io, FERRY_ENOMEM, "out of memory");
                return FERRY_IO_ERROR;
            }
            io->in_size = FERRY_IO_INBUF;
            io->in_off = io->in_len = 0;
        }
        if (io->in_off + io->in_len == io->in_size) {
            if (io->in_off > 0) {
                memmove(io->in, io->in + io->in_off, io->in_len);
                io->in_off = 0;
            } else if (io->in_size < io->in_max) {
                /* A protocol that needs whole messages asked for more room. */
                size_t   size = io->in_size * 2 < io->in_max ? io->in_size * 2 : io->in_max;
                uint8_t *nb = malloc(size);

                if (nb == NULL) {
                    io_fail(io, FERRY_ENOMEM, "out of memory");
                    return ev | FERRY_IO_ERROR;
                }
                memcpy(nb, io->in, io->in_len);
                buf_put(io->w, io->in, io->in_size);
                io->in = nb;
                io->in_size = size;
            } else {
                break;                              /* full: backpressure */
            }
        }
        room = io->in_size - io->in_off - io->in_len;
        if (io->ssl != NULL) {
            size_t got = 0;
            int    rc = SSL_read_ex(io->ssl, io->in + io->in_off + io->in_len, room, &got);

            if (rc == 1) {
                n = (ssize_t)got;
            } else {
                switch (SSL_get_error(io->ssl, rc)) {
                case SSL_ERROR_WANT_READ:
                    *io->readable = false;
                    return ev;
                case SSL_ERROR_WANT_WRITE:
                    return ev;          /* the write side will bring us back */
                case SSL_ERROR_ZERO_RETURN:
                    n = 0;
                    break;
                default: {
                    char msg[160];

                    io_fail(io, FERRY_EPROTO, tls_error_text(msg, sizeof(msg)));
                    return ev | FERRY_IO_ERROR;
                }
                }
            }
        } else {
            n = recv(*io->fd, io->in + io->in_off + io->in_len, room, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                *io->readable = false;
                return ev;
            }
            if (n < 0) {
                io_fail(io, FERRY_EIO, errno == ECONNRESET ? "connection reset" : strerror(errno));
                return ev | FERRY_IO_ERROR;
            }
            /* Edge-triggered: a short read drained the socket (unless a FIN waits). */
            if (n > 0 && (size_t)n < room && !*io->hup)
                *io->readable = false;
        }
        if (n == 0 && io->ts_cut != NULL) {
            /* The pair's FIN stands for a reset stream or a lost tunnel (io_ts_ended). */
            io_fail(io, FERRY_EIO, strcmp(io->ts_cut, "reset") == 0 ? "tunnel stream reset"
                                                                     : "tunnel lost");
            return ev | FERRY_IO_ERROR;
        }
        if (n == 0) {
            io->eof = true;
            return ev | FERRY_IO_READ;
        }
        io->in_len += (size_t)n;
        io->nread += (size_t)n;
        ev |= FERRY_IO_READ;
        event_base_gettimeofday_cached(io->w->base, &io->last_read);
        if (io->c != NULL && io->client)
            conn_touch(io->c);
    }
    return ev;
}

/* Write from a buffer; returns bytes taken (0 when the socket is full), -1 on error. */
static ssize_t
io_send(struct ferry_io *io, const void *p, size_t len)
{
    if (io->ssl != NULL) {
        size_t done = 0;
        int    rc;

        if (len < io->tls_last)
            len = io->tls_last;     /* never happens: the queue only grows at its end */
        if ((rc = SSL_write_ex(io->ssl, p, len, &done)) == 1) {
            io->tls_last = 0;
            return (ssize_t)done;
        }
        switch (SSL_get_error(io->ssl, rc)) {
        case SSL_ERROR_WANT_WRITE:
        case SSL_ERROR_WANT_READ:
            io->tls_last = len;
            *io->writable = false;
            return 0;
        default: {
            char msg[160];

            io_fail(io, FERRY_EPROTO, tls_error_text(msg, sizeof(msg)));
            return -1;
        }
        }
    }
    for (;;) {
        ssize_t n = send(*io->fd, p, len, MSG_NOSIGNAL);

        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *io->writable = false;
            return 0;
        }
        io_fail(io, FERRY_EIO, errno == EPIPE || errno == ECONNRESET ? "connection reset"
                                                                      : strerror(errno));
        return -1;
    }
}

static void
io_do_shutdown(struct ferry_io *io)
{
    if (io->shut_done || *io->fd < 0)
        return;
    io->shut_done = true;
    if (io->ssl != NULL)
        (void)SSL_shutdown(io->ssl);    /* close_notify; the peer's is not awaited */
    shutdown(*io->fd, SHUT_WR);
}

/* Flush the queue. Returns DRAINED when it emptied, ERROR when the socket died. */
static unsigned
io_flush(struct ferry_io *io)
{
    bool had = io->out_len > io->out_off;

    while (io->out_len > io->out_off && *io->writable && io->err == 0 && !io->handshaking) {
        ssize_t n = io_send(io, io->out + io->out_off, io->out_len - io->out_off);

        if (n < 0)
            return FERRY_IO_ERROR;
        if (n == 0)
            break;
        io->out_off += (size_t)n;
        io->nwritten += (size_t)n;
    }
    if (io->out_off < io->out_len)
        return 0;
    io->out_off = io->out_len = 0;
    if (io->out_cap > 64 * 1024) {      /* a burst is over: do not keep its memory */
        free(io->out);
        io->out = NULL;
        io->out_cap = 0;
    }
    if (io->shut_want)
        io_do_shutdown(io);
    return had ? FERRY_IO_DRAINED : 0;
}

static int
io_queue(struct ferry_io *io, const void *p, size_t len)
{
    if (len == 0)
        return FERRY_OK;
    if (io->out_off > 0 && io->out_off == io->out_len)
        io->out_off = io->out_len = 0;
    if (io->out_len + len > io->out_cap) {
        size_t   cap = io->out_cap == 0 ? 4096 : io->out_cap;
        uint8_t *nb;

        if (io->out_len - io->out_off + len > IO_OUT_MAX) {
            io_fail(io, FERRY_ELIMIT, "output queue over its bound");
            return FERRY_ELIMIT;
        }
        if (io->out_off > 0) {          /* slide the unsent part to the front first */
            memmove(io->out, io->out + io->out_off, io->out_len - io->out_off);
            io->out_len -= io->out_off;
            io->out_off = 0;
        }
        while (cap < io->out_len + len)
            cap *= 2;
        if (cap != io->out_cap) {
            if ((nb = realloc(io->out, cap)) == NULL) {
                io_fail(io, FERRY_ENOMEM, "out of memory");
                return FERRY_ENOMEM;
            }
            io->out = nb;
            io->out_cap = cap;
        }
    }
    memcpy(io->out + io->out_len, p, len);
    io->out_len += len;
    return FERRY_OK;
}

FERRY_API int
ferry_io_writev(struct ferry_io *io, const struct ferry_iov *iov, int n)
{
    int i = 0;
    size_t skip = 0;        /* bytes of iov[i] already sent */

    if (io == NULL || io->closed)
        return FERRY_EINVAL;
    if (io->err != 0)
        return io->err;
    if (io->shut_want)
        return FERRY_EINVAL;
    if (io->out_len == io->out_off && *io->writable && !io->handshaking && io->open_cb == NULL &&
        *io->fd >= 0 && io->ssl == NULL) {
        /* Nothing queued: straight to the socket, copy only what it refuses. */
        {
            struct iovec v[16];
            int          k = 0;
            size_t       total = 0;
            ssize_t      w;

            for (; k < n && k < 16; k++) {
                v[k].iov_base = (void *)iov[k].base;
                v[k].iov_len = iov[k].len;
                total += iov[k].len;
            }
            if (total == 0)
                return FERRY_OK;
            for (;;) {
                struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)k };

                /* One piece: send() spares the kernel the iovec copy-in. */
                w = k == 1 ? send(*io->fd, v[0].iov_base, v[0].iov_len, MSG_NOSIGNAL)
                           : sendmsg(*io->fd, &mh, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                    continue;
                break;
            }
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                io_fail(io, FERRY_EIO, errno == EPIPE || errno == ECONNRESET ? "connection reset"
                                                                              : strerror(errno));
                io_later(io, FERRY_IO_ERROR);
                return io->err;
            }
            if (w < 0) {
                *io->writable = false;
                w = 0;
            } else if ((size_t)w < total) {
                *io->writable = false;
            }
            io->nwritten += (size_t)w;
            for (size_t left = (size_t)w; i < n && left > 0;) {
                if (left >= iov[i].len) {
                    left -= iov[i].len;
                    i++;
                } else {
                    skip = left;
                    left = 0;
                }
            }
        }
    }
    for (; i < n; i++, skip = 0) {
        int rc = io_queue(io, (const uint8_t *)iov[i].base + skip, iov[i].len - skip);

        if (rc != FERRY_OK) {
            io_later(io, FERRY_IO_ERROR);
            return rc;
        }
    }
    if (io->ssl != NULL && *io->writable && !io->handshaking && io->open_cb == NULL) {
        /* TLS writes a record at a time: a partial write does not mean the socket is
         * full (no EV_WRITE edge would come), so keep writing until it says so. */
        if (io_flush(io) & FERRY_IO_ERROR) {
            io_later(io, FERRY_IO_ERROR);
            return io->err;
        }
    }
    if (io->client && io->c != NULL)
        conn_touch(io->c);
    return FERRY_OK;
}

FERRY_API int
ferry_io_write(struct ferry_io *io, const void *data, size_t len)
{
    struct ferry_iov v = { data, len };

    return ferry_io_writev(io, &v, 1);
}

FERRY_API size_t
ferry_io_pending(const struct ferry_io *io)
{
    return io->out_len - io->out_off;
}

FERRY_API void
ferry_io_shutdown(struct ferry_io *io)
{
    io->shut_want = true;
    if (io->out_len == io->out_off && !io->handshaking && io->open_cb == NULL)
        io_do_shutdown(io);
}

FERRY_API size_t
ferry_io_peek(struct ferry_io *io, const uint8_t **data)
{
    *data = io->in != NULL ? io->in + io->in_off : NULL;
    return io->in_len;
}

FERRY_API void
ferry_io_consume(struct ferry_io *io, size_t n)
{
    bool was_full = io->in_off + io->in_len == io->in_size;

    if (n > io->in_len)
        n = io->in_len;
    if (io->client && n > 0)
        explicit_bzero(io->in + io->in_off, n);     /* see io_in_release */
    io->in_off += n;
    io->in_len -= n;
    if (io->in_len == 0) {
        io->in_off = 0;
        buf_put(io->w, io->in, io->in_size);
        io->in = NULL;
    }
    /* Reading stopped on a full buffer with the socket still readable: go on. */
    if (was_full && n > 0 && *io->readable && !io->paused)
        io_later(io, 0);
}

FERRY_API bool
ferry_io_eof(const struct ferry_io *io)
{
    return io->eof;
}

FERRY_API int
ferry_io_error(const struct ferry_io *io, const char **reason)
{
    if (reason != NULL)
        *reason = io->reason != NULL ? io->reason : "";
    return io->err;
}

FERRY_API void
ferry_io_set_inbuf(struct ferry_io *io, size_t max)
{
    io->in_max = max < FERRY_IO_INBUF ? FERRY_IO_INBUF : max;
}

FERRY_API void
ferry_io_pause(struct ferry_io *io, bool paused)
{
    bool was = io->paused;

    io->paused = paused;
    if (was && !paused && *io->readable)
        io_later(io, 0);
}

FERRY_API void
ferry_io_timeout(struct ferry_io *io, uint32_t ms)
{
    struct timeval now, until, tv = { ms / 1000, (ms % 1000) * 1000 };

    /* Lazy: a request sets and clears timeouts several times, so the timer is only
     * moved when the new deadline is earlier than the armed one; when it fires early
     * io_on_timer re-arms it for the rest. */
    io->timeout_ms = ms;
    event_base_gettimeofday_cached(io->w->base, &now);
    io->last_read = now;
    if (ms == 0)
        return;
    timeradd(&now, &tv, &until);
    if (io->timer_armed && evtimer_pending(&io->timer, NULL) && !timercmp(&until, &io->armed_until, <))
        return;
    io->armed_until = until;
    io->timer_armed = true;
    evtimer_add(&io->timer, &tv);
}

FERRY_API void
ferry_io_set_cb(struct ferry_io *io, ferry_io_cb cb, void *arg)
{
    io->cb = cb;
    io->cb_arg = arg;
}

FERRY_API const char *
ferry_io_target(const struct ferry_io *io)
{
    return io->target;
}

FERRY_API bool
ferry_io_tunneled(const struct ferry_io *io)
{
    return io->ts != NULL || io->ts_fd >= 0;
}

/* ---- the event loop side ------------------------------------------------------------- */


/* Drive the TLS handshake; true when it is over (either way). */
bool
io_handshake(struct ferry_io *io)
{
    int rc = SSL_connect(io->ssl);

    if (rc == 1) {
        io->handshaking = false;
        event_del(&io->timer);
        io_open_done(io, FERRY_OK, "connected");
        return true;
    }
    switch (SSL_get_error(io->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        *io->readable = false;
        return false;
    case SSL_ERROR_WANT_WRITE:
        *io->writable = false;
        return false;
    default: {
        char  msg[160];
        long  vr = SSL_get_verify_result(io->ssl);
        char  why[200];

        if (vr != X509_V_OK)
            snprintf(why, sizeof(why), "TLS: certificate verify failed: %s",
                     X509_verify_cert_error_string(vr));
        else
            snprintf(why, sizeof(why), "TLS: %s", tls_error_text(msg, sizeof(msg)));
        io->handshaking = false;
        io_open_done(io, FERRY_EPROTO, why);
        return true;
    }
    }
}

static void
io_process(struct ferry_io *io, unsigned ev)
{
    if (io->closed || io->open_cb != NULL) {
        if (io->handshaking)
            io_handshake(io);
        return;
    }
    if (io->lingering) {
        io_linger_step(io);
        return;
    }
    if (io->c == NULL) {
        /* Pooled: the server closed it or sent something unasked for, or its tunnel is
         * going away. Either way it can no longer carry a request. */
        if (*io->readable || *io->hup || io->stale) {
            io_unlink(&io->w->io_pool, io);
            io->w->io_npool--;
            io_destroy(io);
        }
        return;
    }
    ev |= io_flush(io);
    ev |= io_fill(io);
    if (io->err != 0)
        ev |= FERRY_IO_ERROR;
    if (io->in_len == 0 && io->in != NULL) {
        buf_put(io->w, io->in, io->in_size);
        io->in = NULL;
        io->in_off = 0;
    }
    if (io_dispatch(io, ev))
        io_in_shrink(io);
}

void
io_on_sock(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_io *io = arg;

    (void)fd;
    if (io->dial != NULL) {
        /* The connect's edge can carry the first bytes and a FIN: no second edge comes
         * for them (edge-triggered), so keep what this wake-up saw. */
        what = dial_readiness(io->dial, what);
        io->own_readable = (what & (EV_READ | EV_CLOSED)) != 0;
        io->own_hup = (what & EV_CLOSED) != 0;
        dial_event(&io->dial, what);
        return;
    }
    if (what & EV_READ)
        *io->readable = true;
    if (what & EV_WRITE)
        *io->writable = true;
    if (what & EV_CLOSED)
        *io->hup = *io->readable = true;
    if (what & EV_TIMEOUT) {            /* only armed for the TLS handshake */
        /* A late wake-up (a starved process) can bring the deadline with the bytes
         * that end the handshake: try it once before calling it a timeout. */
        if (io->handshaking && !io_handshake(io)) {
            io->handshaking = false;
            io_open_done(io, FERRY_ETIMEDOUT, "TLS handshake timed out");
        }
        return;
    }
    io_process(io, 0);
}

void
io_client_event(struct ferry_io *io, short what)
{
    (void)what;
    io_process(io, 0);
}

static void
io_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_io *io = arg;
    struct timeval   now, idle;
    uint64_t         ms;

    (void)fd;
    (void)what;
    io->timer_armed = false;
    if (io->lingering) {                /* the peer never finished: enough */
        io_unlink(&io->w->io_linger, io);
        io_destroy(io);
        return;
    }
    if (io->c == NULL) {                /* pooled too long */
        io_unlink(&io->w->io_pool, io);
        io->w->io_npool--;
        io_destroy(io);
        return;
    }
    if (io->handshaking) {
        if (!io_handshake(io)) {        /* its bytes may be waiting: see io_on_sock */
            io->handshaking = false;
            io_open_done(io, FERRY_ETIMEDOUT, "TLS handshake timed out");
        }
        return;
    }
    if (io->timeout_ms == 0)
        return;
    event_base_gettimeofday_cached(io->w->base, &now);
    timersub(&now, &io->last_read, &idle);
    ms = (uint64_t)idle.tv_sec * 1000 + (uint64_t)idle.tv_usec / 1000;
    if (ms + 2 >= io->timeout_ms) {
        io->timeout_ms = 0;             /* once; the plugin re-arms if it wants */
        io_dispatch(io, FERRY_IO_TIMEOUT);
        return;
    }
    ms = io->timeout_ms - ms;
    {
        struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

        timeradd(&now, &tv, &io->armed_until);
        io->timer_armed = true;
        evtimer_add(&io->timer, &tv);
    }
}

/* ---- the client's end ------------------------------------------------------------- */

FERRY_API struct ferry_io *
ferry_conn_io(struct ferry_conn *c)
{
    struct ferry_io *io;

    if (c->cio != NULL)
        return c->cio;
    if (c->state != CONN_PLUGIN || c->ufd >= 0 || c->ts != NULL || c->open_cb != NULL)
        return NULL;
    if ((io = io_alloc(c->w)) == NULL)
        return NULL;
    io->client = true;
    io->c = c;
    io->fd = &c->cfd;
    io->readable = &c->c_readable;
    io->writable = &c->c_writable;
    io->hup = &c->c_hup;
    ferry_addr_format((const struct sockaddr *)&c->peer, io->target, sizeof(io->target));
    /* Bytes the plugin read in handshake mode and did not consume come first. */
    if (c->up.buf != NULL && c->up.buf_len > 0) {
        if ((io->in = buf_get(c->w)) == NULL) {
            free(io);
            return NULL;
        }
        io->in_size = FERRY_IO_INBUF;
        io->in_len = c->up.buf_len < FERRY_IO_INBUF ? c->up.buf_len : FERRY_IO_INBUF;
        memcpy(io->in, c->up.buf, io->in_len);
    }
    if (c->down.buf != NULL && c->down.buf_len > c->down.buf_off)
        (void)io_queue(io, c->down.buf + c->down.buf_off, c->down.buf_len - c->down.buf_off);
    free(c->up.buf);
    free(c->down.buf);
    c->up.buf = c->down.buf = NULL;
    c->up.buf_len = c->up.buf_off = c->up.buf_cap = 0;
    c->down.buf_len = c->down.buf_off = c->down.buf_cap = 0;
    c->data_cb = NULL;
    if (c->hs_deadline_set)
        c->hs_deadline_set = false;
    c->cio = io;
    c->state = CONN_IO;
    conn_watch_client(c);
    if (*io->readable || io->in_len > 0)
        io_later(io, io->in_len > 0 ? FERRY_IO_READ : 0);
    return io;
}

void
io_bytes(const struct ferry_io *io, uint64_t *in, uint64_t *out)
{
    *in = io->nread;
    *out = io->nwritten;
}

/* ferry_conn_close in stream mode: 1 when everything is out (close now), 0 to wait. */
int
io_client_flush(struct ferry_conn *c)
{
    struct ferry_io *io = c->cio;

    if (io == NULL)
        return 1;
    (void)io_flush(io);
    return io->err != 0 || io->out_len == io->out_off ? 1 : 0;
}

/* Lingering: flush, shut, read and drop until the peer's end (or the timer). */
static void
io_linger_step(struct ferry_io *io)
{
    uint8_t scratch[4096];

    (void)io_flush(io);
    if (io->out_len == io->out_off && !io->shut_done && io->err == 0)
        io_do_shutdown(io);
    while (io->err == 0 && !io->eof && *io->readable) {
        ssize_t n;

        if (io->ssl != NULL) {
            size_t got = 0;
            int    rc = SSL_read_ex(io->ssl, scratch, sizeof(scratch), &got);

            if (rc == 1)
                continue;
            rc = SSL_get_error(io->ssl, rc);
            if (rc == SSL_ERROR_WANT_READ) {
                *io->readable = false;
                break;
            }
            if (rc == SSL_ERROR_WANT_WRITE)
                break;
            io->eof = true;
            break;
        }
        n = recv(*io->fd, scratch, sizeof(scratch), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *io->readable = false;
            break;
        }
        if (n <= 0)
            io->eof = true;
    }
    if (io->eof || io->err != 0) {
        io_unlink(&io->w->io_linger, io);
        io_destroy(io);
    }
}

FERRY_API void
ferry_io_finish(struct ferry_io *io, uint32_t linger_ms)
{
    struct timeval tv = { linger_ms / 1000, (linger_ms % 1000) * 1000 };

    if (io == NULL || io->client || io->closed || io->lingering)
        return;
    if (io->err != 0 || io->open_cb != NULL || io->handshaking || linger_ms == 0 ||
        io->w->draining) {
        ferry_io_close(io);
        return;
    }
    if (io->c != NULL)
        io_unlink(&io->c->ios, io);
    io->c = NULL;
    io->cb = NULL;
    io->lingering = true;
    io->paused = false;
    io_in_release(io);
    io_link(&io->w->io_linger, io);
    io->timer_armed = false;
    evtimer_add(&io->timer, &tv);
    io_later(io, 0);                    /* the first step from the loop */
}

/* ---- keep-alive pool ----------------------------------------------------------------- */

FERRY_API bool
ferry_io_pool_put(struct ferry_io *io, const char *key, uint32_t idle_ms)
{
    struct worker  *w = io->w;
    struct timeval  tv = { idle_ms / 1000, (idle_ms % 1000) * 1000 };

    if (io->client || io->closed)
        return false;
    if (io->err != 0 || io->eof || io->in_len > 0 || io->out_len > io->out_off ||
        io->open_cb != NULL || io->shut_want || *io->readable || w->draining ||
        w->io_npool >= IO_POOL_MAX || idle_ms == 0 || (io->pool_key = strdup(key)) == NULL) {
        ferry_io_close(io);
        return false;
    }
    if (io->c != NULL)
        io_unlink(&io->c->ios, io);
    io->c = NULL;
    io->cb = NULL;
    io->timeout_ms = 0;
    io->paused = false;
    io_in_release(io);
    event_del(&io->notify);
    io->later = 0;
    io_link(&w->io_pool, io);
    w->io_npool++;
    io->timer_armed = false;            /* the timer now means "idle too long" */
    evtimer_add(&io->timer, &tv);
    return true;
}

FERRY_API struct ferry_io *
ferry_io_pool_get(struct ferry_conn *c, const char *key)
{
    struct worker   *w = c->w;
    struct ferry_io *io, *next;

    for (io = w->io_pool; io != NULL; io = next) {
        next = io->next;
        if (strcmp(io->pool_key, key) != 0)
            continue;
        io_unlink(&w->io_pool, io);
        w->io_npool--;
        if (*io->readable || *io->hup || io->stale) {   /* closed while we were away */
            io_destroy(io);
            continue;
        }
        event_del(&io->timer);
        io->timer_armed = false;
        free(io->pool_key);
        io->pool_key = NULL;
        io->c = c;
        io_link(&c->ios, io);
        return io;
    }
    return NULL;
}

void
io_pool_drop_tunnel(struct worker *w, struct tunnel *t)
{
    /* Called from inside the tunnel's frame processing: close from the loop. */
    for (struct ferry_io *io = w->io_pool; io != NULL; io = io->next) {
        if (io->ts != NULL && io->ts->t == t) {
            io->stale = true;
            event_active(&io->notify, 0, 1);
        }
    }
}

void
io_pool_drop_idle(struct worker *w)
{
    while (w->io_pool != NULL) {
        struct ferry_io *io = w->io_pool;

        io_unlink(&w->io_pool, io);
        w->io_npool--;
        io_destroy(io);
    }
}

void
io_pool_close_all(struct worker *w)
{
    while (w->io_linger != NULL) {
        struct ferry_io *io = w->io_linger;

        io_unlink(&w->io_linger, io);
        io_destroy(io);
    }
    io_pool_drop_idle(w);
}

/* ---- per-request records ------------------------------------------------------------- */

FERRY_API uint64_t
ferry_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
