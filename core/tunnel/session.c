/*
 * session.c: a tunnel connection (TLS 1.3 + HTTP/2) and the streams on it; both roles.
 *
 * Owns the socket, the SSL object, the nghttp2 session and every stream object. Does
 * not decide where streams go (gateway.c, connector.c do) and never blocks: TLS runs
 * on a non-blocking socket with an edge-triggered event, readiness remembered in
 * t->readable / t->writable (set by events, cleared by EAGAIN).
 *
 * Send path: nghttp2_session_mem_send() serialises frames; SSL_write() encrypts them
 * straight from nghttp2's buffer into a BIO pair; only what the pair refuses is
 * copied aside (wbuf). Records leave the pair in sends of SEND_BATCH_BYTES (or less
 * when nghttp2 has nothing more to say). DATA frames carry up to FRAME_MAX_BYTES (both
 * sides announce it in SETTINGS_MAX_FRAME_SIZE): one recv() from the socket end,
 * straight into nghttp2's frame buffer, and one SSL_write of several records per
 * frame. Receive path: one recv() of up to RECV_PAIR_BYTES into the pair (its other
 * direction), SSL_read() of its records into one buffer per tunnel, fed to
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

#define STREAM_WINDOW    (2 * 1024 * 1024)   /* per stream: bounds its buffered bytes */
#define CONN_WINDOW      (256 * 1024 * 1024) /* the connection: never the bottleneck */
#define IO_ROUNDS        4                   /* batches per wake-up */
#define PEND_MAX         64                  /* DATA chunks held for one writev */
#ifndef FERRY_TUNNEL_SMALL_BUFFERS
#define FRAME_MAX_BYTES  (128 * 1024)        /* DATA payload per frame: SETTINGS_MAX_FRAME_SIZE */
#define READ_BYTES       (256 * 1024)        /* plaintext decrypted per batch */
#define SEND_BATCH_BYTES (128 * 1024)        /* gathered before a send(), unless idle */
#define RECV_PAIR_BYTES  (256 * 1024)        /* ciphertext per recv(), for SSL_read */
#else
/* tunnel_fuzz only: its inputs are 8 KiB at most, and buffers under ASan's 128 KiB
 * large-allocation threshold are not mmapped and unmapped for every input. 16384 is
 * HTTP/2's smallest SETTINGS_MAX_FRAME_SIZE; READ_BYTES must exceed a record (16640). */
#define FRAME_MAX_BYTES  16384
#define READ_BYTES       (32 * 1024)
#define SEND_BATCH_BYTES (16 * 1024)
#define RECV_PAIR_BYTES  (32 * 1024)
#endif
/* Ciphertext waiting for the socket: a batch short of full, plus one whole frame (its
 * records' headers and tags included), so SSL_write never takes only part of a frame. */
#define PAIR_BYTES       (SEND_BATCH_BYTES + FRAME_MAX_BYTES + 16384)
#define MAX_STREAMS      65536

struct hdrs {                     /* headers of one request/response, until delivered */
    char   authority[300];
    char   protocol[24];
    char   error[64];
    char   path[64];
    char  *notice;                /* owns: the ferry-notice value, NOTICE_MAX_BYTES + 1 */
    size_t notice_len;
    bool   notice_big;
    char  *user;                  /* owns: the ferry-user value (connector), NUL-ended */
    bool   user_big;              /* one came, over USER_MAX_BYTES */
    int    status;
    bool   is_connect;
};

struct tunnel {
    enum tunnel_role         role;
    struct event_base       *base;
    int                      fd;
    SSL                     *ssl;
    struct event             ev, timer;
    bool                     readable, writable;
    bool                     goaway;         /* sent or received: no new streams */
    bool                     goaway_seen;    /* received (on_goaway told) */
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
    struct pend {                            /* DATA chunks in rbuf, not yet written */
        struct tstream *s;
        const uint8_t  *data;
        size_t          len;
    }                        pend[PEND_MAX];
    unsigned                 npend;
    BIO                     *net;            /* our half of the write BIO pair */
    BIO                     *plain;          /* owns: the pair's other half, no TLS only */
    const char              *reason;
};

static void tunnel_io(struct tunnel *t);
static void stream_pump(struct tstream *s);
static void sock_shut_wr(struct tstream *s);

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
        for (unsigned i = 0; i < t->npend; i++)
            if (t->pend[i].s == s)
                t->pend[i].s = NULL;
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
    if (s->ssl != NULL)
        SSL_free(s->ssl);
    if (s->own_fd >= 0)
        close(s->own_fd);
    if (s->hdrs != NULL) {
        free(s->hdrs->notice);
        free(s->hdrs->user);
    }
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
    if (s->h2_eof && !s->shut_wr && s->relaying)
        sock_shut_wr(s);
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
    if (n > 0 && s->owner != NULL && s->t != NULL && s->t->ops->on_bytes != NULL)
        s->t->ops->on_bytes(s, 0, n);
}

/* The socket end's write side is done: pass the FIN on (after close_notify on TLS). */
static void
sock_shut_wr(struct tstream *s)
{
    if (s->ssl != NULL) {
        ERR_clear_error();
        (void)SSL_shutdown(s->ssl);     /* best effort: the FIN follows either way */
    }
    shutdown(*s->fd, SHUT_WR);
    s->shut_wr = true;
}

/* TLS socket end: write from `out`, 16 KiB at a time (one record). */
static int
stream_flush_out_tls(struct tstream *s)
{
    while (s->out != NULL && evbuffer_get_length(s->out) > 0 && *s->writable) {
        size_t         len = evbuffer_get_length(s->out), w = 0;
        unsigned char *p;
        int            r;

        if (len > 16384)
            len = 16384;
        if (len < s->tls_last)
            len = s->tls_last;
        p = evbuffer_pullup(s->out, (ssize_t)len);
        ERR_clear_error();
        if ((r = SSL_write_ex(s->ssl, p, len, &w)) == 1) {
            s->tls_last = 0;
            evbuffer_drain(s->out, w);
            stream_consume(s, w);
            continue;
        }
        switch (SSL_get_error(s->ssl, r)) {
        case SSL_ERROR_WANT_WRITE:
        case SSL_ERROR_WANT_READ:
            *s->writable = false;
            s->tls_last = len;
            return 0;
        default:
            return -1;
        }
    }
    return 0;
}

/* Write `out` to the socket. 0 ok (maybe blocked), -1 socket error. */
static int
stream_flush_out(struct tstream *s)
{
    if (s->ssl != NULL && stream_flush_out_tls(s) < 0)
        return -1;
    while (s->ssl == NULL && s->out != NULL && evbuffer_get_length(s->out) > 0 &&
           *s->writable) {
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
    if (s->out == NULL && s->h2_eof && !s->shut_wr)
        sock_shut_wr(s);                /* the peer's FIN, passed on */
    return 0;
}

/* The socket has bytes (or EOF) for a stream waiting on them: let nghttp2 ask again. */
static void
stream_resume(struct tstream *s)
{
    if (s->deferred && (*s->readable || (s->in != NULL && evbuffer_get_length(s->in) > 0)) &&
        s->t != NULL && !s->h2_closed) {
        s->deferred = false;
        nghttp2_session_resume_data(s->t->h2, s->id);
    }
}

static void
stream_pump(struct tstream *s)
{
    if (!s->relaying || s->ended)
        return;
    if (stream_flush_out(s) < 0) {
        stream_end(s, TSTREAM_RESET);
        return;
    }
    stream_resume(s);
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
    }
    s->relaying = true;
    tstream_on_socket(s);
}

int
tstream_sock_write(struct tstream *s, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (s->out == NULL && (s->out = evbuffer_new()) == NULL)
        return -1;
    if (evbuffer_add(s->out, data, len) != 0)
        return -1;
    return stream_flush_out(s);
}

void
tstream_drop(struct tstream *s, size_t len)
{
    if (len > 0 && s->t != NULL && !s->h2_closed)
        nghttp2_session_consume(s->t->h2, s->id, len);
}

void
tstream_reply(struct tstream *s, const void *data, size_t len)
{
    /* Goes out through the data provider before END_STREAM; bytes still waiting for
     * the socket are dropped, and the socket is neither read nor written again. */
    if (s->in == NULL)
        s->in = evbuffer_new();
    if (s->in != NULL)
        evbuffer_add(s->in, data, len);
    if (s->out != NULL) {
        size_t pending = evbuffer_get_length(s->out);

        evbuffer_free(s->out);
        s->out = NULL;
        tstream_drop(s, pending > s->out_raw ? pending - s->out_raw : 0);
        s->out_raw = 0;
    }
    s->sock_eof = true;
    if (!s->shut_wr && *s->fd >= 0)
        sock_shut_wr(s);
    stream_resume(s);
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

/* nghttp2 wants payload for a DATA frame. Bytes queued in `in` (left over from a
 * plugin's handshake) go first; then the socket is read straight into nghttp2's frame
 * buffer: one copy from the kernel, and no read at all while the peer's window is
 * closed, which is the backpressure towards the socket's sender. */
static ssize_t
on_data_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
             nghttp2_data_source *src, void *ud)
{
    struct tstream *s = src->ptr;
    size_t          have, n;
    ssize_t         r;

    (void)h2;
    (void)id;
    (void)ud;
    if (s == NULL || s->ended)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    have = s->in != NULL ? evbuffer_get_length(s->in) : 0;
    if (have > 0) {
        n = len < have ? len : have;
        evbuffer_remove(s->in, buf, n);
        s->bytes_in += n;
        if (s->owner != NULL && s->t->ops->on_bytes != NULL)
            s->t->ops->on_bytes(s, n, 0);
        if (have == n) {
            evbuffer_free(s->in);
            s->in = NULL;
        }
        return (ssize_t)n;
    }
    if (s->relaying && !s->sock_eof && *s->readable && s->ssl != NULL) {
        size_t got = 0;
        int    rc;

        ERR_clear_error();
        if ((rc = SSL_read_ex(s->ssl, buf, len, &got)) == 1) {
            s->bytes_in += got;
            if (s->owner != NULL && s->t->ops->on_bytes != NULL)
                s->t->ops->on_bytes(s, got, 0);
            return (ssize_t)got;
        }
        switch (SSL_get_error(s->ssl, rc)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            *s->readable = false;
            break;
        case SSL_ERROR_ZERO_RETURN:
            s->sock_eof = true;
            break;
        default:
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    } else if (s->relaying && !s->sock_eof && *s->readable) {
        do {
            r = recv(*s->fd, buf, len, 0);
        } while (r < 0 && errno == EINTR);
        if (r > 0) {
            s->bytes_in += (uint64_t)r;
            if (s->owner != NULL && s->t->ops->on_bytes != NULL)
                s->t->ops->on_bytes(s, (uint64_t)r, 0);
            return r;
        }
        if (r == 0) {
            s->sock_eof = true;
        } else if (errno == EAGAIN) {
            *s->readable = false;
        } else {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* RST; the close ends it */
        }
    }
    if (s->sock_eof && s->relaying) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
}

/* How much payload the next DATA frame may carry: the peer's SETTINGS_MAX_FRAME_SIZE
 * (both sides are ferry: FRAME_MAX_BYTES; 16 KiB for an older peer), within the
 * windows nghttp2 enforces after us. One large frame is one socket read on the way in
 * and one SSL_write of several records on the way out, instead of one of each per
 * 16 KiB. */
static ssize_t
on_data_length(nghttp2_session *h2, uint8_t type, int32_t id, int32_t conn_window,
               int32_t stream_window, uint32_t peer_max_frame, void *ud)
{
    (void)h2;
    (void)type;
    (void)id;
    (void)conn_window;
    (void)stream_window;
    (void)ud;
    return peer_max_frame < FRAME_MAX_BYTES ? (ssize_t)peer_max_frame : FRAME_MAX_BYTES;
}

/* Write the DATA chunks of one batch: one writev per stream, in arrival order; what
 * a socket does not take goes to its `out` buffer (after anything already there). */
static void
tunnel_flush_pend(struct tunnel *t)
{
    for (unsigned i = 0; i < t->npend; i++) {
        struct tstream *s = t->pend[i].s;
        struct iovec    iov[PEND_MAX];
        unsigned        n = 0;
        ssize_t         w = 0;
        bool            failed = false;

        if (s == NULL)
            continue;
        for (unsigned j = i; j < t->npend; j++) {
            if (t->pend[j].s != s)
                continue;
            iov[n].iov_base = (void *)t->pend[j].data;
            iov[n].iov_len = t->pend[j].len;
            n++;
            t->pend[j].s = NULL;
        }
        if (s->relaying && *s->writable && (s->out == NULL || evbuffer_get_length(s->out) == 0)) {
            do {
                w = writev(*s->fd, iov, (int)n);
            } while (w < 0 && errno == EINTR);
            if (w < 0 && errno != EAGAIN)
                failed = true;
            if (w < 0)
                w = 0;
        }
        if (failed) {
            stream_end(s, TSTREAM_RESET);
            continue;
        }
        stream_consume(s, (size_t)w);
        for (unsigned k = 0; k < n; k++) {
            size_t skip = (size_t)w < iov[k].iov_len ? (size_t)w : iov[k].iov_len;

            w -= (ssize_t)skip;
            if (skip == iov[k].iov_len)
                continue;
            *s->writable = false;
            if (s->out == NULL && (s->out = evbuffer_new()) == NULL) {
                stream_end(s, TSTREAM_RESET);
                break;
            }
            evbuffer_add(s->out, (const uint8_t *)iov[k].iov_base + skip, iov[k].iov_len - skip);
        }
    }
    t->npend = 0;
}

static int
on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
              void *ud)
{
    struct tunnel  *t = ud;
    struct tstream *s = nghttp2_session_get_stream_user_data(h2, id);

    (void)flags;
    if (s == NULL || s->ended) {
        nghttp2_session_consume(h2, id, len);   /* nobody wants it: keep the window open */
        return 0;
    }
    if (s->filter != NULL && s->relaying) {
        if (s->filter(s, data, len, s->filter_arg) < 0)
            stream_end(s, TSTREAM_RESET);
        return 0;
    }
    if (s->relaying && s->ssl == NULL && (s->out == NULL || evbuffer_get_length(s->out) == 0)) {
        /* Batched: data points into rbuf, valid until the batch is written. */
        if (t->npend == PEND_MAX)
            tunnel_flush_pend(t);
        if (!s->ended) {
            t->pend[t->npend++] = (struct pend){ s, data, len };
            return 0;
        }
        return 0;
    }
    if (s->out == NULL && (s->out = evbuffer_new()) == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    evbuffer_add(s->out, data, len);
    if (s->ssl != NULL && s->relaying && stream_flush_out(s) < 0)
        stream_end(s, TSTREAM_RESET);
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
    if (s->hdrs != NULL) {
        free(s->hdrs->notice);
        free(s->hdrs->user);
    }
    free(s->hdrs);
    s->hdrs = NULL;
}

/* A notice's value, kept up to NOTICE_MAX_BYTES: past that the notice is refused,
 * not the tunnel. Only a connector reads notices (the gateway never receives one). */
static int
notice_keep(struct tunnel *t, struct hdrs *h, const uint8_t *v, size_t len)
{
    if (t->role != TUNNEL_CONNECTOR || h->notice != NULL || h->notice_big)
        return 0;
    if (len > NOTICE_MAX_BYTES) {
        h->notice_big = true;
        return 0;
    }
    if ((h->notice = malloc(len + 1)) == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;    /* resets this stream only */
    memcpy(h->notice, v, len);
    h->notice[len] = '\0';
    h->notice_len = len;
    return 0;
}

/* A CONNECT's user claims (connector only; the first value counts). */
static int
user_keep(struct tunnel *t, struct hdrs *h, const uint8_t *v, size_t len)
{
    if (t->role != TUNNEL_CONNECTOR || h->user != NULL || h->user_big)
        return 0;
    if (len > USER_MAX_BYTES) {
        h->user_big = true;
        return 0;
    }
    if ((h->user = malloc(len + 1)) == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;    /* resets this stream only */
    memcpy(h->user, v, len);
    h->user[len] = '\0';
    return 0;
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
    else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
        copy_val(h->path, sizeof(h->path), value, valuelen);
    else if (namelen == 12 && memcmp(name, "ferry-notice", 12) == 0)
        return notice_keep(ud, h, value, valuelen);
    else if (namelen == 10 && memcmp(name, "ferry-user", 10) == 0)
        return user_keep(ud, h, value, valuelen);
    return 0;
}

/* Connector: a request that is not a CONNECT. A notice when the owner knows its path;
 * anything else is refused as before notices existed. */
static void
on_notice_request(struct tunnel *t, struct tstream *s, struct hdrs *h)
{
    const char *error = "method-not-allowed";
    int         status = 405;

    if (h->path[0] == '/' && t->ops->on_notice != NULL) {
        error = NULL;
        status = t->ops->on_notice(t, h->path, h->notice != NULL ? h->notice : "",
                                   h->notice_len, h->notice_big, &error);
    }
    tstream_respond(s, status, status == 204 ? NULL : error);
}

static int
on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct tunnel  *t = ud;
    struct tstream *s;
    struct hdrs    *h, copy;

    switch (f->hd.type) {
    case NGHTTP2_GOAWAY:
        if (!t->goaway_seen && t->ops->on_goaway != NULL)
            t->ops->on_goaway(t);
        t->goaway_seen = true;
        t->goaway = true;
        break;
    case NGHTTP2_HEADERS:
        s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
        if (s == NULL || (h = hdrs_of(s)) == NULL)
            break;
        if (t->role == TUNNEL_CONNECTOR && f->headers.cat == NGHTTP2_HCAT_REQUEST &&
            !h->is_connect) {
            on_notice_request(t, s, h);
            hdrs_done(s);
            break;
        }
        copy = *h;
        copy.notice = NULL;             /* hdrs_done frees it */
        copy.user = h->user;            /* kept for on_request, freed below */
        h->user = NULL;
        hdrs_done(s);
        if (t->role == TUNNEL_CONNECTOR && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            if (copy.authority[0] == '\0') {
                free(copy.user);
                tstream_respond(s, 405, "method-not-allowed");
                break;
            }
            t->ops->on_request(t, s, copy.authority, copy.protocol, copy.user,
                               copy.user_big);
            free(copy.user);
        } else if (t->role == TUNNEL_GATEWAY && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
            if (s->owner != NULL && t->ops->on_response != NULL)
                t->ops->on_response(s, copy.status, copy.error[0] ? copy.error : NULL);
            else if (s->notice && t->ops->on_notice_reply != NULL)
                t->ops->on_notice_reply(t, copy.status, copy.error[0] ? copy.error : NULL);
        }
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            s->h2_eof = true;
        break;
    case NGHTTP2_DATA:
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            tunnel_flush_pend(t);       /* the stream's last bytes go before its FIN */
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
    struct tstream *s;

    tunnel_flush_pend(ud);
    if ((s = nghttp2_session_get_stream_user_data(h2, id)) == NULL)
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
    SSL_free(t->ssl);                   /* frees the pair's inner half with it */
    BIO_free(t->plain);
    close(t->fd);
    BIO_free(t->net);
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

/* The tunnel's plaintext in and out: SSL over the pair's inner half, or, for a tunnel
 * made without TLS (tests/fuzz/tunnel_fuzz.c: thousands of inputs a second instead of a
 * handshake each), the inner half itself. Both return as SSL_*_ex and put what
 * SSL_get_error would say in *err; a pair's EOF (its peer shut) is ZERO_RETURN. */
static int
tun_write(struct tunnel *t, const void *p, size_t len, size_t *w, int *err)
{
    int r;

    if (t->ssl != NULL) {
        ERR_clear_error();
        if ((r = SSL_write_ex(t->ssl, p, len, w)) != 1)
            *err = SSL_get_error(t->ssl, r);
        return r;
    }
    if ((r = BIO_write_ex(t->plain, p, len, w)) != 1)
        *err = BIO_should_retry(t->plain) ? SSL_ERROR_WANT_WRITE : SSL_ERROR_SYSCALL;
    return r;
}

static int
tun_read(struct tunnel *t, void *p, size_t len, size_t *got, int *err)
{
    int r;

    if (t->ssl != NULL) {
        ERR_clear_error();
        if ((r = SSL_read_ex(t->ssl, p, len, got)) != 1)
            *err = SSL_get_error(t->ssl, r);
        return r;
    }
    if ((r = BIO_read_ex(t->plain, p, len, got)) != 1)
        *err = BIO_should_retry(t->plain) ? SSL_ERROR_WANT_READ : SSL_ERROR_ZERO_RETURN;
    return r;
}

/* Move ciphertext from the BIO pair to the socket. 0 ok, -1 the socket failed. */
static int
tunnel_send_net(struct tunnel *t)
{
    while (t->writable) {
        char   *p = NULL;
        int     n = BIO_nread0(t->net, &p);
        ssize_t w;

        if (n <= 0)
            return 0;
        w = send(t->fd, p, (size_t)n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            t->writable = false;
            return 0;
        }
        BIO_nread(t->net, NULL, (int)w);
    }
    return 0;
}

/* Encrypt and send what nghttp2 has. SSL writes records into a BIO pair, not the
 * socket, so many records leave in one send(). 0 ok, -1 the connection failed. */
static int
tunnel_flush(struct tunnel *t)
{
    for (;;) {
        const uint8_t *p;
        size_t         len, w = 0;
        ssize_t        n;
        int            r, err = SSL_ERROR_SSL;
        bool           from_wbuf = evbuffer_get_length(t->wbuf) > 0;

        /* Records gather in the pair and leave in few large sends: one send() per
         * record costs more than the copy into the pair. Whatever is left goes as
         * soon as nghttp2 has nothing more. */
        if (BIO_ctrl_pending(t->net) >= SEND_BATCH_BYTES && tunnel_send_net(t) < 0)
            return -1;
        if (!t->writable && BIO_ctrl_pending(t->net) > 0)
            return 0;                   /* the socket is full: EV_WRITE brings us back */
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
                return tunnel_send_net(t);
            len = (size_t)n;
        }
        r = tun_write(t, p, len, &w, &err);
        if (r == 1) {
            t->last_write = 0;
            if (from_wbuf)
                evbuffer_drain(t->wbuf, w);
            else if (w < len)
                evbuffer_add(t->wbuf, p + w, len - w);
            continue;
        }
        switch (err) {
        case SSL_ERROR_WANT_WRITE:
        case SSL_ERROR_WANT_READ:
            /* The pair is full: nghttp2's buffer is not ours, keep a copy. */
            if (!from_wbuf)
                evbuffer_add(t->wbuf, p, len);
            t->last_write = len;
            if (BIO_ctrl_pending(t->net) == 0)
                return -1;              /* full with nothing to send: cannot happen */
            continue;
        default:
            return -1;
        }
    }
}

/* Move ciphertext from the socket into the receive pair, where SSL_read takes it a
 * record at a time: one large recv() for many records. (OpenSSL's own read-ahead
 * would save the copy into the pair, but it moves every unread byte of its buffer to
 * the front before each record: the copies grow with the square of the batch.)
 * 1: bytes arrived; 0: none for now (readable cleared); -1: the socket failed. At
 * EOF the pair is shut, so SSL_read reports it after the records before it. */
static int
tunnel_recv_net(struct tunnel *t)
{
    char   *p = NULL;
    int     room;
    ssize_t r;

    if (!t->readable || (room = BIO_nwrite0(t->net, &p)) <= 0)
        return 0;
    do {
        r = recv(t->fd, p, (size_t)room, 0);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        BIO_nwrite(t->net, NULL, (int)r);
        return 1;
    }
    if (r == 0) {
        BIO_shutdown_wr(t->net);
        return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        t->readable = false;
        return 0;
    }
    t->reason = "tunnel connection lost";
    return -1;
}

/* Decrypt what arrived and feed nghttp2. 0 ok, -1 the connection is over. */
static int
tunnel_read(struct tunnel *t, bool *again)
{
    for (int round = 0; round < IO_ROUNDS; round++) {
        size_t  fill = 0;
        ssize_t used;
        int     rc = 0;

        /* Decrypt several records into one buffer, then parse them at once: their
         * DATA chunks for a socket leave in one writev. */
        while (fill + 16384 + 256 <= READ_BYTES) {
            size_t got = 0;
            int    r, err = SSL_ERROR_SSL;

            if ((r = tun_read(t, t->rbuf + fill, READ_BYTES - fill, &got, &err)) == 1) {
                fill += got;
                continue;
            }
            switch (err) {
            case SSL_ERROR_WANT_READ:
                if ((r = tunnel_recv_net(t)) > 0)
                    continue;           /* more records in the pair */
                if (r < 0)
                    rc = -1;
                break;
            case SSL_ERROR_WANT_WRITE:
                *again = true;          /* after the flush drained the pair */
                break;
            case SSL_ERROR_ZERO_RETURN:
                t->reason = "peer closed the tunnel";
                rc = -1;
                break;
            default:
                t->reason = "tunnel connection lost";
                rc = -1;
                break;
            }
            break;
        }
        if (fill > 0) {
            event_base_gettimeofday_cached(t->base, &t->last_recv);
            used = nghttp2_session_mem_recv(t->h2, t->rbuf, fill);
            tunnel_flush_pend(t);
            if (used < 0) {
                t->reason = "HTTP/2 protocol error on the tunnel";
                return -1;
            }
        }
        if (rc < 0)
            return -1;
        if (!t->readable || *again)
            return 0;
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
        evbuffer_get_length(t->wbuf) == 0 && BIO_ctrl_pending(t->net) == 0) {
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
    nghttp2_settings_entry     iv[4];
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
    {
        BIO *inner = NULL;

        /* Both directions go through a BIO pair: records leave in few large sends
         * and arrive in few large recvs. The socket BIO of the handshake goes. */
        if (BIO_new_bio_pair(&inner, PAIR_BYTES, &t->net, RECV_PAIR_BYTES) != 1)
            goto fail;
        if (ssl == NULL) {
            t->plain = inner;           /* no TLS: frames go through the pair as they are */
        } else {
            SSL_set_bio(ssl, inner, inner);
            /* A whole frame per SSL_write: in partial-write mode OpenSSL returns after
             * each record, and the rest of a large frame would be copied aside. The
             * pair always has room for a frame (PAIR_BYTES), so a write rarely waits. */
            SSL_clear_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
        }
    }
    if ((t->wbuf = evbuffer_new()) == NULL || (t->rbuf = malloc(READ_BYTES)) == NULL ||
        nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, on_data_length);
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
    iv[2].settings_id = NGHTTP2_SETTINGS_MAX_FRAME_SIZE;
    iv[2].value = FRAME_MAX_BYTES;
    iv[3].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
    iv[3].value = 0;
    if (nghttp2_submit_settings(t->h2, NGHTTP2_FLAG_NONE, iv, role == TUNNEL_GATEWAY ? 4 : 3) != 0 ||
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
        BIO_free(t->plain);
        BIO_free(t->net);
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

int
tunnel_notify(struct tunnel *t, const char *path, const char *value, size_t len)
{
    struct tstream *s;
    /* NO_INDEX: a one-off value of kilobytes would only evict useful HPACK entries. */
    nghttp2_nv      nva[5] = {
        { (uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)":scheme", (uint8_t *)"https", 7, 5, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)":authority", (uint8_t *)"ferry", 10, 5, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"ferry-notice", (uint8_t *)value, 12, len, NGHTTP2_NV_FLAG_NO_INDEX },
    };

    if (t->role != TUNNEL_GATEWAY || len > NOTICE_MAX_BYTES || !tunnel_is_usable(t) ||
        (s = stream_new(t)) == NULL)
        return -1;
    s->notice = true;
    /* No data provider: the HEADERS frame carries END_STREAM, so a connector that
     * refuses the request (405) leaves nothing behind on either side. */
    s->id = nghttp2_submit_request(t->h2, NULL, nva, 5, NULL, s);
    if (s->id < 0) {
        s->ended = true;
        s->id = 0;
        stream_free(s);
        return -1;
    }
    tunnel_io(t);
    return 0;
}

struct tstream *
tstream_open(struct tunnel *t, const char *authority, const char *protocol, const char *user,
             void *owner, int *fd, bool *readable, bool *writable)
{
    struct tstream      *s;
    nghttp2_data_provider prd;
    nghttp2_nv           nva[4] = {
        { (uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority),
          NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"ferry-protocol", (uint8_t *)protocol, 14, strlen(protocol),
          NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"ferry-user", (uint8_t *)user, 10, user != NULL ? strlen(user) : 0,
          NGHTTP2_NV_FLAG_NONE },
    };
    size_t               nnv = user != NULL ? 4 : 3;

    if (user != NULL && (strlen(user) > USER_MAX_BYTES || strpbrk(user, "\r\n") != NULL))
        return NULL;
    if (!tunnel_is_usable(t) || (s = stream_new(t)) == NULL)
        return NULL;
    s->owner = owner;
    s->fd = fd;
    s->readable = readable;
    s->writable = writable;
    prd.source.ptr = s;
    prd.read_callback = on_data_read;
    s->id = nghttp2_submit_request(t->h2, NULL, nva, nnv, &prd, s);
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
