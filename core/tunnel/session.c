/*
 * session.c: a tunnel connection (TLS 1.3 + HTTP/2) and the streams on it; both roles.
 *
 * Owns the socket, the SSL object, the nghttp2 session and every stream object. Does
 * not decide where streams go (gateway.c, connector.c do) and never blocks: TLS runs
 * on a non-blocking socket with an edge-triggered event, readiness remembered in
 * t->readable / t->writable (set by events, cleared by WANT_READ / WANT_WRITE).
 *
 * Send path: nghttp2_session_mem_send() serialises frames; SSL_write() encrypts them
 * straight from nghttp2's buffer; only what the socket refuses is copied aside
 * (wbuf). DATA payloads are capped so that a frame and its header fill exactly one
 * TLS record. Receive path: SSL_read() into one buffer per tunnel, fed to
 * nghttp2_session_mem_recv(); each DATA chunk goes to its socket at once when it can,
 * else into the stream's `out` buffer, and the window is only reopened
 * (nghttp2_session_consume) for bytes that reached the socket: that is the
 * backpressure that keeps one slow client from growing memory or stalling others.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/err.h>

#include "tunnel/session.h"

#define STREAM_WINDOW    (1024 * 1024)       /* per stream: bounds its buffered bytes */
#define CONN_WINDOW      (256 * 1024 * 1024) /* the connection: never the bottleneck */
#define STREAM_IN_HIGH   (256 * 1024)        /* socket bytes waiting to be framed */
#define FRAME_PAYLOAD    (16384 - 9)         /* 9-byte header + payload = one TLS record */
#define READ_BYTES       (64 * 1024)
#define IO_ROUNDS        16                  /* TLS reads per wake-up */
#define WBUF_HIGH        (1024 * 1024)       /* stop serialising when this much waits */
#define MAX_STREAMS      65536

struct hdrs {                     /* headers of one request/response, until delivered */
    char authority[300];
    char protocol[24];
    char error[64];
    int  status;
    bool is_connect;
};

struct tunnel {
    enum tunnel_role         role;
    struct event_base       *base;
    int                      fd;
    SSL                     *ssl;
    struct event             ev, timer;
    bool                     readable, writable;
    bool                     goaway;         /* sent or received: no new streams */
    bool                     dead;           /* close requested */
    int                      busy;           /* inside tunnel_io: defer the free */
    nghttp2_session         *h2;
    const struct tunnel_ops *ops;
    struct tunnel_params     p;
    void                    *owner;
    struct evbuffer         *wbuf;           /* plaintext SSL_write has not taken yet */
    size_t                   last_write;     /* OpenSSL: a retry may not be shorter */
    struct tstream          *streams;
    unsigned                 nstreams;
    struct tstream          *wake;           /* streams whose socket read may resume */
    struct timeval           last_recv;
    uint8_t                 *rbuf;           /* READ_BYTES, while the tunnel lives */
    const char              *reason;
};

static void tunnel_io(struct tunnel *t);
static void stream_pump(struct tstream *s);

/* ---- streams ------------------------------------------------------------------------ */

static struct tstream *
stream_new(struct tunnel *t)
{
    struct tstream *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->t = t;
    s->own_fd = -1;
    s->fd = &s->own_fd;
    s->readable = &s->own_readable;
    s->writable = &s->own_writable;
    s->next = t->streams;
    if (t->streams != NULL)
        t->streams->prev = s;
    t->streams = s;
    t->nstreams++;
    return s;
}

static void
stream_free(struct tstream *s)
{
    struct tunnel *t = s->t;

    if (t != NULL) {
        if (s->prev != NULL)
            s->prev->next = s->next;
        else
            t->streams = s->next;
        if (s->next != NULL)
            s->next->prev = s->prev;
        t->nstreams--;
        if (s->id > 0 && t->h2 != NULL)
            nghttp2_session_set_stream_user_data(t->h2, s->id, NULL);
    }
    if (s->in != NULL)
        evbuffer_free(s->in);
    if (s->out != NULL)
        evbuffer_free(s->out);
    if (s->own_fd >= 0)
        close(s->own_fd);
    free(s->hdrs);
    free(s);
}

/* Tell the owner once; free now if nghttp2 is done with the stream, else at close. */
static void
stream_end(struct tstream *s, enum tstream_end why)
{
    struct tunnel *t = s->t;

    if (!s->ended) {
        s->ended = true;
        s->relaying = false;
        if (s->owner != NULL && t != NULL && t->ops->on_stream_end != NULL)
            t->ops->on_stream_end(s, why);
        s->owner = NULL;
    }
    if (s->h2_closed || t == NULL || t->h2 == NULL) {
        stream_free(s);
        return;
    }
    if (why != TSTREAM_DONE)
        nghttp2_submit_rst_stream(t->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
}

static void
stream_check_done(struct tstream *s)
{
    if (s->ended || !s->h2_closed)
        return;
    if (s->out != NULL && evbuffer_get_length(s->out) > 0)
        return;
    if (s->h2_eof && !s->shut_wr && s->relaying) {
        shutdown(*s->fd, SHUT_WR);
        s->shut_wr = true;
    }
    stream_end(s, TSTREAM_DONE);
}

static void
stream_consume(struct tstream *s, size_t n)
{
    size_t raw = n < s->out_raw ? n : s->out_raw;

    s->out_raw -= raw;
    n -= raw;
    if (n > 0 && s->t != NULL && !s->h2_closed)
        nghttp2_session_consume(s->t->h2, s->id, n);
    s->bytes_out += n;
}

/* Write `out` to the socket. 0 ok (maybe blocked), -1 socket error. */
static int
stream_flush_out(struct tstream *s)
{
    while (s->out != NULL && evbuffer_get_length(s->out) > 0 && *s->writable) {
        struct evbuffer_iovec v[16];
        struct iovec          iov[16];
        int                   n = evbuffer_peek(s->out, -1, NULL, v, 16);
        ssize_t               w;

        for (int i = 0; i < n; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        w = writev(*s->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            *s->writable = false;
            break;
        }
        evbuffer_drain(s->out, (size_t)w);
        stream_consume(s, (size_t)w);
    }
    if (s->out != NULL && evbuffer_get_length(s->out) == 0) {
        evbuffer_free(s->out);          /* idle streams keep no buffer */
        s->out = NULL;
    }
    if (s->out == NULL && s->h2_eof && !s->shut_wr) {
        shutdown(*s->fd, SHUT_WR);      /* the peer's FIN, passed on */
        s->shut_wr = true;
    }
    return 0;
}

/* Read the socket into `in` up to STREAM_IN_HIGH. 0 ok, -1 socket error. */
static int
stream_read_in(struct tstream *s)
{
    bool got = false;

    while (*s->readable && !s->sock_eof) {
        struct evbuffer_iovec v[2];
        size_t                have;
        int                   nv;
        ssize_t               n;

        if (s->in == NULL && (s->in = evbuffer_new()) == NULL)
            return -1;
        have = evbuffer_get_length(s->in);
        if (have >= STREAM_IN_HIGH)
            break;                      /* the peer's window is full: wait */
        nv = evbuffer_reserve_space(s->in, READ_BYTES, v, 2);
        if (nv <= 0)
            return -1;
        {
            struct iovec iov[2];

            for (int i = 0; i < nv; i++) {
                iov[i].iov_base = v[i].iov_base;
                iov[i].iov_len = v[i].iov_len;
            }
            n = readv(*s->fd, iov, nv);
        }
        if (n < 0) {
            evbuffer_commit_space(s->in, v, 0);
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            *s->readable = false;
            break;
        }
        if (n == 0) {
            evbuffer_commit_space(s->in, v, 0);
            s->sock_eof = true;
            got = true;
            break;
        }
        for (int i = 0; i < nv; i++) {
            size_t take = (size_t)n < v[i].iov_len ? (size_t)n : v[i].iov_len;

            v[i].iov_len = take;
            n -= (ssize_t)take;
        }
        evbuffer_commit_space(s->in, v, nv);
        got = true;
    }
    if (got && s->deferred && s->t != NULL && !s->h2_closed) {
        s->deferred = false;
        nghttp2_session_resume_data(s->t->h2, s->id);
    }
    return 0;
}

static void
stream_pump(struct tstream *s)
{
    if (!s->relaying || s->ended)
        return;
    if (stream_flush_out(s) < 0 || stream_read_in(s) < 0) {
        stream_end(s, TSTREAM_RESET);
        return;
    }
    stream_check_done(s);
}

void
tstream_on_socket(struct tstream *s)
{
    struct tunnel *t = s->t;

    if (t == NULL)
        return;
    t->busy++;
    stream_pump(s);
    t->busy--;
    tunnel_io(t);
}

void
tstream_start(struct tstream *s, const void *to_sock, size_t to_sock_len, const void *to_peer,
              size_t to_peer_len)
{
    if (to_sock_len > 0) {
        if (s->out == NULL)
            s->out = evbuffer_new();
        /* Goes first: a reply the plugin queued before the tunnel's bytes. */
        if (s->out != NULL && evbuffer_prepend(s->out, to_sock, to_sock_len) == 0)
            s->out_raw += to_sock_len;
    }
    if (to_peer_len > 0) {
        if (s->in == NULL)
            s->in = evbuffer_new();
        if (s->in != NULL)
            evbuffer_add(s->in, to_peer, to_peer_len);
        if (s->deferred && s->t != NULL && !s->h2_closed) {
            s->deferred = false;
            nghttp2_session_resume_data(s->t->h2, s->id);
        }
    }
    s->relaying = true;
    tstream_on_socket(s);
}

void
tstream_release(struct tstream *s)
{
    struct tunnel *t = s->t;

    s->owner = NULL;
    s->relaying = false;
    if (!s->ended) {
        s->ended = true;
        if (s->h2_closed || t == NULL || t->h2 == NULL) {
            stream_free(s);
            return;
        }
        nghttp2_submit_rst_stream(t->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        tunnel_io(t);
    } else if (s->h2_closed || t == NULL) {
        stream_free(s);
    }
}

/* ---- nghttp2 callbacks ---------------------------------------------------------------- */

static ssize_t
on_data_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
             nghttp2_data_source *src, void *ud)
{
    struct tstream *s = src->ptr;
    size_t          have, n;

    (void)h2;
    (void)id;
    (void)ud;
    if (s == NULL || s->ended)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    have = s->in != NULL ? evbuffer_get_length(s->in) : 0;
    if (have == 0) {
        if (s->sock_eof && s->relaying) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    n = len < FRAME_PAYLOAD ? len : FRAME_PAYLOAD;
    if (n > have)
        n = have;
    evbuffer_remove(s->in, buf, n);
    s->bytes_in += n;
    if (have - n == 0) {
        evbuffer_free(s->in);
        s->in = NULL;
        if (s->sock_eof)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    /* Room again below the mark: the socket may have more, and with edge triggering
     * no new event will say so. A socket error here shows again on the next pump. */
    if (have >= STREAM_IN_HIGH && have - n < STREAM_IN_HIGH && s->relaying)
        (void)stream_read_in(s);
    return (ssize_t)n;
}

static int
on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
              void *ud)
{
    struct tstream *s = nghttp2_session_get_stream_user_data(h2, id);

    (void)flags;
    (void)ud;
    if (s == NULL || s->ended) {
        nghttp2_session_consume(h2, id, len);   /* nobody wants it: keep the window open */
        return 0;
    }
    if (s->relaying && (s->out == NULL || evbuffer_get_length(s->out) == 0) && *s->writable) {
        ssize_t w = send(*s->fd, data, len, MSG_NOSIGNAL);

        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            stream_end(s, TSTREAM_RESET);
            return 0;
        }
        if (w < 0)
            w = 0;
        if ((size_t)w < len)
            *s->writable = false;
        stream_consume(s, (size_t)w);
        data += w;
        len -= (size_t)w;
    }
    if (len > 0) {
        if (s->out == NULL && (s->out = evbuffer_new()) == NULL)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        evbuffer_add(s->out, data, len);
    }
    return 0;
}

static int
on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct tunnel  *t = ud;
    struct tstream *s;
    struct hdrs    *h;

    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (t->role == TUNNEL_CONNECTOR && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (t->goaway || (s = stream_new(t)) == NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        s->id = f->hd.stream_id;
        s->owner = NULL;
        nghttp2_session_set_stream_user_data(h2, s->id, s);
    }
    s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (s == NULL)
        return 0;
    /* Scratch space for this header block only: an idle stream keeps none. */
    if (s->hdrs == NULL && (h = calloc(1, sizeof(*h))) == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (s->hdrs == NULL)
        s->hdrs = h;
    return 0;
}

static struct hdrs *
hdrs_of(struct tstream *s)
{
    return s->hdrs;
}

static void
hdrs_done(struct tstream *s)
{
    free(s->hdrs);
    s->hdrs = NULL;
}

static void
copy_val(char *dst, size_t size, const uint8_t *v, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int
on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
          const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    struct tstream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    struct hdrs    *h;

    (void)flags;
    (void)ud;
    if (s == NULL || (h = hdrs_of(s)) == NULL)
        return 0;
    if (namelen == 7 && memcmp(name, ":method", 7) == 0)
        h->is_connect = valuelen == 7 && memcmp(value, "CONNECT", 7) == 0;
    else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
        copy_val(h->authority, sizeof(h->authority), value, valuelen);
    else if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        h->status = valuelen == 3 ? atoi((const char *)value) : 0;
    else if (namelen == 14 && memcmp(name, "ferry-protocol", 14) == 0)
        copy_val(h->protocol, sizeof(h->protocol), value, valuelen);
    else if (namelen == 11 && memcmp(name, "ferry-error", 11) == 0)
        copy_val(h->error, sizeof(h->error), value, valuelen);
    return 0;
}

static int
on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct tunnel  *t = ud;
    struct tstream *s;
    struct hdrs    *h, copy;

    switch (f->hd.type) {
    case NGHTTP2_GOAWAY:
        t->goaway = true;
        break;
    case NGHTTP2_HEADERS:
        s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
        if (s == NULL || (h = hdrs_of(s)) == NULL)
            break;
        copy = *h;
        hdrs_done(s);
        if (t->role == TUNNEL_CONNECTOR && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            if (!copy.is_connect || copy.authority[0] == '\0') {
                tstream_respond(s, 405, "method-not-allowed");
                break;
            }
            t->ops->on_request(t, s, copy.authority, copy.protocol);
        } else if (t->role == TUNNEL_GATEWAY && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
            if (s->owner != NULL && t->ops->on_response != NULL)
                t->ops->on_response(s, copy.status, copy.error[0] ? copy.error : NULL);
        }
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            s->h2_eof = true;
        break;
    case NGHTTP2_DATA:
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
            if (s != NULL) {
                s->h2_eof = true;
                if (s->relaying)
                    stream_flush_out(s);
            }
        }
        break;
    default:
        break;
    }
    return 0;
}

static int
on_stream_close(nghttp2_session *h2, int32_t id, uint32_t code, void *ud)
{
    struct tstream *s = nghttp2_session_get_stream_user_data(h2, id);

    (void)ud;
    if (s == NULL)
        return 0;
    hdrs_done(s);
    s->h2_closed = true;
    if (s->ended) {                     /* the owner already left */
        stream_free(s);
        return 0;
    }
    if (code != NGHTTP2_NO_ERROR) {
        stream_end(s, TSTREAM_RESET);
        return 0;
    }
    if (s->relaying)
        stream_flush_out(s);
    stream_check_done(s);
    return 0;
}

/* ---- the tunnel connection ------------------------------------------------------------ */

static void
tunnel_destroy(struct tunnel *t)
{
    const char *reason = t->reason != NULL ? t->reason : "closed";

    while (t->streams != NULL) {
        struct tstream *s = t->streams;

        /* Owners learn first; then nothing refers to the session any more. */
        if (!s->ended) {
            s->ended = true;
            s->relaying = false;
            if (s->owner != NULL && t->ops->on_stream_end != NULL)
                t->ops->on_stream_end(s, TSTREAM_TUNNEL_LOST);
            s->owner = NULL;
        }
        stream_free(s);
    }
    event_del(&t->ev);
    event_del(&t->timer);
    if (t->h2 != NULL)
        nghttp2_session_del(t->h2);
    t->h2 = NULL;
    if (t->ops->on_tunnel_close != NULL)
        t->ops->on_tunnel_close(t, reason);
    SSL_free(t->ssl);
    close(t->fd);
    if (t->wbuf != NULL)
        evbuffer_free(t->wbuf);
    free(t->rbuf);
    free(t);
}

void
tunnel_close(struct tunnel *t, const char *reason)
{
    if (!t->dead) {
        t->dead = true;
        t->reason = reason;
    }
    if (t->busy == 0)
        tunnel_destroy(t);
}

/* Encrypt and send what nghttp2 has. 0 ok, -1 the connection failed. */
static int
tunnel_flush(struct tunnel *t)
{
    for (;;) {
        const uint8_t *p;
        size_t         len, w = 0;
        ssize_t        n;
        int            r;
        bool           from_wbuf = evbuffer_get_length(t->wbuf) > 0;

        if (!t->writable)
            return 0;
        if (from_wbuf) {
            len = evbuffer_get_length(t->wbuf);
            if (len > 65536)
                len = 65536;
            if (len < t->last_write)
                len = t->last_write;
            p = evbuffer_pullup(t->wbuf, (ssize_t)len);
        } else {
            if ((n = nghttp2_session_mem_send(t->h2, &p)) < 0)
                return -1;
            if (n == 0)
                return 0;
            len = (size_t)n;
        }
        ERR_clear_error();
        r = SSL_write_ex(t->ssl, p, len, &w);
        if (r == 1) {
            t->last_write = 0;
            if (from_wbuf)
                evbuffer_drain(t->wbuf, w);
            else if (w < len)
                evbuffer_add(t->wbuf, p + w, len - w);
            continue;
        }
        switch (SSL_get_error(t->ssl, r)) {
        case SSL_ERROR_WANT_WRITE:
        case SSL_ERROR_WANT_READ:
            t->writable = false;
            if (!from_wbuf)
                evbuffer_add(t->wbuf, p, len);     /* nghttp2's buffer is not ours */
            t->last_write = len;
            return 0;
        default:
            return -1;
        }
    }
}

/* Decrypt what arrived and feed nghttp2. 0 ok, -1 the connection is over. */
static int
tunnel_read(struct tunnel *t, bool *again)
{
    for (int round = 0; round < IO_ROUNDS; round++) {
        size_t  got = 0;
        int     r;
        ssize_t used;

        ERR_clear_error();
        r = SSL_read_ex(t->ssl, t->rbuf, READ_BYTES, &got);
        if (r != 1) {
            switch (SSL_get_error(t->ssl, r)) {
            case SSL_ERROR_WANT_READ:
            case SSL_ERROR_WANT_WRITE:
                t->readable = false;
                return 0;
            case SSL_ERROR_ZERO_RETURN:
                t->reason = "peer closed the tunnel";
                return -1;
            default:
                t->reason = "tunnel connection lost";
                return -1;
            }
        }
        event_base_gettimeofday_cached(t->base, &t->last_recv);
        used = nghttp2_session_mem_recv(t->h2, t->rbuf, got);
        if (used < 0) {
            t->reason = "HTTP/2 protocol error on the tunnel";
            return -1;
        }
    }
    *again = true;
    return 0;
}

static void
tunnel_io(struct tunnel *t)
{
    bool again = false;

    if (t->busy > 0 || t->dead) {
        if (t->dead && t->busy == 0)
            tunnel_destroy(t);
        return;
    }
    t->busy++;
    if (t->readable && tunnel_read(t, &again) < 0)
        t->dead = true;
    if (!t->dead && tunnel_flush(t) < 0) {
        t->dead = true;
        if (t->reason == NULL)
            t->reason = "tunnel write failed";
    }
    if (!t->dead && t->goaway && t->nstreams == 0 && !nghttp2_session_want_write(t->h2) &&
        evbuffer_get_length(t->wbuf) == 0) {
        t->dead = true;
        t->reason = "drained after GOAWAY";
    }
    if (!t->dead && !nghttp2_session_want_read(t->h2) && !nghttp2_session_want_write(t->h2)) {
        t->dead = true;
        t->reason = "HTTP/2 session finished";
    }
    t->busy--;
    if (t->dead) {
        tunnel_destroy(t);
        return;
    }
    if (again)
        event_active(&t->ev, EV_READ, 1);
}

static void
on_tunnel_event(evutil_socket_t fd, short what, void *arg)
{
    struct tunnel *t = arg;

    (void)fd;
    if (what & EV_READ)
        t->readable = true;
    if (what & EV_WRITE)
        t->writable = true;
    tunnel_io(t);
}

static void
on_tunnel_timer(evutil_socket_t fd, short what, void *arg)
{
    struct tunnel *t = arg;
    struct timeval now, idle;

    (void)fd;
    (void)what;
    event_base_gettimeofday_cached(t->base, &now);
    timersub(&now, &t->last_recv, &idle);
    if ((uint64_t)idle.tv_sec * 1000 + (uint64_t)idle.tv_usec / 1000 >= t->p.dead_peer_timeout_ms) {
        tunnel_close(t, "peer silent past dead_peer_timeout_ms");
        return;
    }
    nghttp2_submit_ping(t->h2, NGHTTP2_FLAG_NONE, NULL);
    tunnel_io(t);
}

struct tunnel *
tunnel_new(struct event_base *base, enum tunnel_role role, int fd, SSL *ssl,
           const struct tunnel_ops *ops, const struct tunnel_params *p, void *owner)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option            *opt = NULL;
    struct tunnel             *t = calloc(1, sizeof(*t));
    nghttp2_settings_entry     iv[3];
    struct timeval             tick;
    int                        rc;

    if (t == NULL)
        goto fail;
    t->role = role;
    t->base = base;
    t->fd = fd;
    t->ssl = ssl;
    t->ops = ops;
    t->p = *p;
    t->owner = owner;
    t->readable = t->writable = true;
    if ((t->wbuf = evbuffer_new()) == NULL || (t->rbuf = malloc(READ_BYTES)) == NULL ||
        nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    /* Windows reopen only when bytes reach their socket: that is the backpressure. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, MAX_STREAMS);
    rc = role == TUNNEL_GATEWAY ? nghttp2_session_client_new2(&t->h2, cbs, t, opt)
                                : nghttp2_session_server_new2(&t->h2, cbs, t, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    cbs = NULL;
    opt = NULL;
    if (rc != 0)
        goto fail;
    iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[0].value = MAX_STREAMS;
    iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
    iv[1].value = STREAM_WINDOW;
    iv[2].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
    iv[2].value = 0;
    if (nghttp2_submit_settings(t->h2, NGHTTP2_FLAG_NONE, iv, role == TUNNEL_GATEWAY ? 3 : 2) != 0 ||
        nghttp2_session_set_local_window_size(t->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
        goto fail;
    event_base_gettimeofday_cached(base, &t->last_recv);
    event_assign(&t->ev, base, fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST, on_tunnel_event, t);
    event_assign(&t->timer, base, -1, EV_PERSIST, on_tunnel_timer, t);
    tick.tv_sec = t->p.keepalive_ms / 1000;
    tick.tv_usec = (t->p.keepalive_ms % 1000) * 1000;
    if (event_add(&t->ev, NULL) != 0 || event_add(&t->timer, &tick) != 0)
        goto fail;
    tunnel_io(t);
    return t;
fail:
    if (cbs != NULL)
        nghttp2_session_callbacks_del(cbs);
    if (opt != NULL)
        nghttp2_option_del(opt);
    if (t != NULL) {
        event_del(&t->ev);
        event_del(&t->timer);
        if (t->h2 != NULL)
            nghttp2_session_del(t->h2);
        if (t->wbuf != NULL)
            evbuffer_free(t->wbuf);
        free(t->rbuf);
        free(t);
    }
    return NULL;
}

void *
tunnel_owner(const struct tunnel *t)
{
    return t->owner;
}

unsigned
tunnel_streams(const struct tunnel *t)
{
    return t->nstreams;
}

bool
tunnel_is_usable(const struct tunnel *t)
{
    return !t->dead && !t->goaway;
}

void
tunnel_shutdown(struct tunnel *t)
{
    if (t->dead || t->goaway)
        return;
    t->goaway = true;
    if (t->role == TUNNEL_CONNECTOR)
        nghttp2_submit_shutdown_notice(t->h2);
    nghttp2_submit_goaway(t->h2, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(t->h2), NGHTTP2_NO_ERROR,
                          NULL, 0);
    tunnel_io(t);
}

struct tstream *
tstream_open(struct tunnel *t, const char *authority, const char *protocol, void *owner, int *fd,
             bool *readable, bool *writable)
{
    struct tstream      *s;
    nghttp2_data_provider prd;
    nghttp2_nv           nva[3] = {
        { (uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority),
          NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"ferry-protocol", (uint8_t *)protocol, 14, strlen(protocol),
          NGHTTP2_NV_FLAG_NONE },
    };

    if (!tunnel_is_usable(t) || (s = stream_new(t)) == NULL)
        return NULL;
    s->owner = owner;
    s->fd = fd;
    s->readable = readable;
    s->writable = writable;
    prd.source.ptr = s;
    prd.read_callback = on_data_read;
    s->id = nghttp2_submit_request(t->h2, NULL, nva, 3, &prd, s);
    if (s->id < 0) {
        s->owner = NULL;
        s->ended = true;
        s->id = 0;
        stream_free(s);
        return NULL;
    }
    tunnel_io(t);
    return s;
}

int
tstream_respond(struct tstream *s, int status, const char *error)
{
    struct tunnel        *t = s->t;
    char                  code[4];
    nghttp2_data_provider prd;
    nghttp2_nv            nva[2];
    size_t                n = 1;
    int                   rc;

    if (t == NULL || s->h2_closed)
        return -1;
    snprintf(code, sizeof(code), "%03d", status);
    nva[0] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE };
    if (error != NULL)
        nva[n++] = (nghttp2_nv){ (uint8_t *)"ferry-error", (uint8_t *)error, 11, strlen(error),
                                 NGHTTP2_NV_FLAG_NONE };
    prd.source.ptr = s;
    prd.read_callback = on_data_read;
    rc = nghttp2_submit_response(t->h2, s->id, nva, n, status == 200 ? &prd : NULL);
    if (status != 200)
        s->owner = NULL;                /* refused: nothing more to do but close */
    tunnel_io(t);
    return rc == 0 ? 0 : -1;
}
