/*
 * session_test.c: the tunnel session (core/tunnel/session.c), both roles in one event
 * loop: a gateway tunnel and a connector tunnel over TLS 1.3 on loopback, each stream
 * joined to a socketpair whose far end the test drives as client or origin. Proves
 * that bytes cross whole and in order both ways in DATA frames larger than 16 KiB,
 * and that a client that stops reading holds back only its own stream while what the
 * gateway buffers for it stays within one stream window.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cu.h"
#include "tunnel/session.h"

#define WINDOW_BYTES  (2u << 20)     /* session.h: a stream buffers at most one window */
#define CHUNK_BYTES   (64u << 10)    /* the test's client and origin write this at a time */
#define MAX_PIPES     2

/* One proxied connection: a client socket on the gateway side, an origin socket on the
 * connector side, and the tunnel stream between them. The test plays the client (at
 * client_fd) and the origin (at origin_fd) and checks every byte: byte i of each
 * direction is i % 251. */
struct pipe {
    struct tstream *gs;               /* borrowed: the gateway's end, until g_ended */
    struct tstream *cs;               /* borrowed: the connector's end, until c_ended */
    int             gfd;              /* owns: the gateway's socket for this client */
    bool            g_readable, g_writable;
    struct event    gev, cev;         /* the gateway's and the connector's socket events */
    int             client_fd;        /* owns: the test's client end */
    int             origin_fd;        /* owns: the test's origin end */
    int             cfd_for_stream;   /* handed to the connector's stream (it closes it) */
    struct event    client_ev, origin_ev;
    uint64_t        down_bytes;       /* origin -> client, to send; 0: none */
    uint64_t        up_bytes;         /* client -> origin, to send; 0: none */
    uint64_t        down_sent, down_got, up_sent, up_got;
    bool            client_reads;     /* false: a stalled client */
    bool            bad;              /* a byte arrived wrong */
    bool            down_eof, up_eof; /* the far end saw EOF */
    bool            g_ended, c_ended;
    bool            cev_added;
    enum tstream_end g_why, c_why;
};

static struct event_base *base;
static struct tunnel     *gw_t, *cn_t;
static struct pipe        pipes[MAX_PIPES];
static struct pipe       *next_request;   /* the pipe the next CONNECT belongs to */
static size_t             gw_max_read, cn_max_read;   /* largest socket read per frame */
static bool               (*until)(void);

static void
set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void
fill_pattern(uint8_t *buf, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((off + i) % 251);
}

static bool
check_pattern(const uint8_t *buf, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != (uint8_t)((off + i) % 251))
            return false;
    return true;
}

/* ---- TLS: a throwaway self-signed key and two contexts like the tunnel's ----------- */

static SSL_CTX *
new_ctx(bool server)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    /* The modes the tunnel's contexts use (tunnel/tls.c): the session must cope. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    if (server) {
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509     *crt = X509_new();

        X509_set_version(crt, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(crt), 1);
        X509_gmtime_adj(X509_getm_notBefore(crt), 0);
        X509_gmtime_adj(X509_getm_notAfter(crt), 3600);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(crt), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"session-test", -1, -1, 0);
        X509_set_issuer_name(crt, X509_get_subject_name(crt));
        X509_set_pubkey(crt, key);
        X509_sign(crt, key, EVP_sha256());
        CU_ASSERT_EQUAL(SSL_CTX_use_certificate(ctx, crt), 1);
        CU_ASSERT_EQUAL(SSL_CTX_use_PrivateKey(ctx, key), 1);
        X509_free(crt);
        EVP_PKEY_free(key);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);   /* the key is made up here */
    }
    return ctx;
}

/* A connected loopback TCP pair, non-blocking, handshaken: gfd and gssl are the TLS
 * server (the gateway), cfd and cssl the client (the connector dials out). */
static void
tls_pair(int *gfd, SSL **gssl, int *cfd, SSL **cssl)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t          len = sizeof(sa);
    SSL_CTX           *sctx = new_ctx(true), *cctx = new_ctx(false);
    int                lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    bool               sdone = false, cdone = false;

    CU_ASSERT_FATAL(lfd >= 0);
    CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 1) == 0);
    CU_ASSERT_FATAL(getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
    *cfd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(connect(*cfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    *gfd = accept(lfd, NULL, NULL);
    CU_ASSERT_FATAL(*gfd >= 0);
    close(lfd);
    set_nonblock(*gfd);
    set_nonblock(*cfd);
    setsockopt(*gfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(*cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *gssl = SSL_new(sctx);
    *cssl = SSL_new(cctx);
    SSL_set_fd(*gssl, *gfd);
    SSL_set_fd(*cssl, *cfd);
    SSL_set_accept_state(*gssl);
    SSL_set_connect_state(*cssl);
    for (int i = 0; i < 1000 && !(sdone && cdone); i++) {
        struct pollfd pfd[2] = { { *gfd, POLLIN, 0 }, { *cfd, POLLIN, 0 } };

        if (!cdone)
            cdone = SSL_do_handshake(*cssl) == 1;
        if (!sdone)
            sdone = SSL_do_handshake(*gssl) == 1;
        if (!(sdone && cdone))
            poll(pfd, 2, 10);
    }
    CU_ASSERT_FATAL(sdone && cdone);
    SSL_CTX_free(sctx);                 /* the SSL objects keep their references */
    SSL_CTX_free(cctx);
}

/* ---- the test's client and origin ----------------------------------------------------- */

static void pipe_check_done(void);

/* Write the next bytes of one direction; shut the write side when all are out. */
static void
drive_send(int fd, uint64_t total, uint64_t *sent)
{
    static uint8_t buf[CHUNK_BYTES];

    while (*sent < total) {
        size_t  n = total - *sent < CHUNK_BYTES ? (size_t)(total - *sent) : CHUNK_BYTES;
        ssize_t w;

        fill_pattern(buf, *sent, n);
        if ((w = send(fd, buf, n, MSG_NOSIGNAL)) <= 0)
            return;                     /* EAGAIN: the next edge brings us back */
        *sent += (uint64_t)w;
        if (*sent == total)
            shutdown(fd, SHUT_WR);
    }
}

/* Read and check what arrived; note EOF. */
static void
drive_recv(struct pipe *p, int fd, uint64_t *got, bool *eof)
{
    static uint8_t buf[CHUNK_BYTES];
    ssize_t        r;

    while ((r = recv(fd, buf, sizeof(buf), 0)) > 0) {
        if (!check_pattern(buf, *got, (size_t)r))
            p->bad = true;
        *got += (uint64_t)r;
    }
    if (r == 0)
        *eof = true;
}

static void
on_client(evutil_socket_t fd, short what, void *arg)
{
    struct pipe *p = arg;

    (void)fd;
    if ((what & EV_WRITE) && p->up_bytes > 0)
        drive_send(p->client_fd, p->up_bytes, &p->up_sent);
    if ((what & EV_READ) && p->client_reads)
        drive_recv(p, p->client_fd, &p->down_got, &p->down_eof);
    pipe_check_done();
}

static void
on_origin(evutil_socket_t fd, short what, void *arg)
{
    struct pipe *p = arg;

    (void)fd;
    if (what & EV_WRITE)
        drive_send(p->origin_fd, p->down_bytes, &p->down_sent);
    if (what & EV_READ)
        drive_recv(p, p->origin_fd, &p->up_got, &p->up_eof);
    pipe_check_done();
}

/* ---- the two tunnels' owners ----------------------------------------------------------- */

static void
on_gw_sock(evutil_socket_t fd, short what, void *arg)
{
    struct pipe *p = arg;

    (void)fd;
    if (what & EV_READ)
        p->g_readable = true;
    if (what & EV_WRITE)
        p->g_writable = true;
    tstream_on_socket(p->gs);
}

static void
on_cn_sock(evutil_socket_t fd, short what, void *arg)
{
    struct pipe *p = arg;

    (void)fd;
    if (what & EV_READ)
        p->cs->own_readable = true;
    if (what & EV_WRITE)
        p->cs->own_writable = true;
    tstream_on_socket(p->cs);
}

static void
gw_on_response(struct tstream *s, int status, const char *error)
{
    struct pipe *p = s->owner;

    (void)error;
    CU_ASSERT_EQUAL(status, 200);
    if (p != NULL && status == 200)
        tstream_start(s, NULL, 0, NULL, 0);
}

static void
gw_on_bytes(struct tstream *s, uint64_t in, uint64_t out)
{
    (void)s;
    (void)out;
    if (in > gw_max_read)
        gw_max_read = in;
}

static void
gw_on_stream_end(struct tstream *s, enum tstream_end why)
{
    struct pipe *p = s->owner;

    p->g_ended = true;
    p->g_why = why;
    p->gs = NULL;
    event_del(&p->gev);
    pipe_check_done();
}

static void
cn_on_request(struct tunnel *t, struct tstream *s, const char *authority, const char *protocol,
              const char *user, bool user_big)
{
    struct pipe *p = next_request;

    (void)t;
    CU_ASSERT_STRING_EQUAL(authority, "origin.internal:9");
    CU_ASSERT_STRING_EQUAL(protocol, "tcp");
    /* The user's claims travel with the CONNECT (principal propagation). */
    CU_ASSERT_PTR_NOT_NULL_FATAL(user);
    CU_ASSERT_STRING_EQUAL(user, "{\"sub\":\"u1\"}");
    CU_ASSERT_FALSE(user_big);
    next_request = NULL;
    if (p == NULL) {
        tstream_respond(s, 403, "access-denied");
        return;
    }
    p->cs = s;
    s->owner = p;
    s->own_fd = p->cfd_for_stream;      /* the stream closes it when it is freed */
    s->own_writable = true;
    event_assign(&p->cev, base, s->own_fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST, on_cn_sock, p);
    p->cev_added = event_add(&p->cev, NULL) == 0;
    tstream_respond(s, 200, NULL);
    tstream_start(s, NULL, 0, NULL, 0);
}

static void
cn_on_bytes(struct tstream *s, uint64_t in, uint64_t out)
{
    (void)s;
    (void)out;
    if (in > cn_max_read)
        cn_max_read = in;
}

static void
cn_on_stream_end(struct tstream *s, enum tstream_end why)
{
    struct pipe *p = s->owner;

    p->c_ended = true;
    p->c_why = why;
    p->cs = NULL;
    event_del(&p->cev);
    p->cev_added = false;
    pipe_check_done();
}

static void
on_tunnel_close(struct tunnel *t, const char *reason)
{
    (void)reason;
    if (t == gw_t)
        gw_t = NULL;
    if (t == cn_t)
        cn_t = NULL;
}

/* Notices: what the connector heard, what the gateway was answered. */
static char   notice_path[64], notice_value[64];
static size_t notice_len;
static bool   notice_big;
static int    notice_status;
static char   notice_error[64];

static int
cn_on_notice(struct tunnel *t, const char *path, const char *value, size_t len, bool too_big,
             const char **error)
{
    (void)t;
    snprintf(notice_path, sizeof(notice_path), "%s", path);
    snprintf(notice_value, sizeof(notice_value), "%s", value);
    notice_len = len;
    notice_big = too_big;
    if (strcmp(path, "/.ferry/test") != 0) {
        *error = "unknown-notice";
        return 404;
    }
    return 204;
}

static void
gw_on_notice_reply(struct tunnel *t, int status, const char *error)
{
    (void)t;
    notice_status = status;
    snprintf(notice_error, sizeof(notice_error), "%s", error != NULL ? error : "");
    pipe_check_done();
}

static const struct tunnel_ops gw_ops = {
    .on_response = gw_on_response, .on_stream_end = gw_on_stream_end,
    .on_bytes = gw_on_bytes, .on_tunnel_close = on_tunnel_close,
    .on_notice_reply = gw_on_notice_reply,
};
/* Not const: a test takes on_notice away to play a connector from before notices. */
static struct tunnel_ops cn_ops = {
    .on_request = cn_on_request, .on_stream_end = cn_on_stream_end,
    .on_bytes = cn_on_bytes, .on_tunnel_close = on_tunnel_close,
    .on_notice = cn_on_notice,
};

/* ---- set-up and the loop --------------------------------------------------------------- */

static void
tunnels_up(void)
{
    struct tunnel_params p = { .keepalive_ms = 1000, .dead_peer_timeout_ms = 30000 };
    int                  gfd, cfd;
    SSL                 *gssl, *cssl;

    base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    tls_pair(&gfd, &gssl, &cfd, &cssl);
    gw_t = tunnel_new(base, TUNNEL_GATEWAY, gfd, gssl, &gw_ops, &p, NULL);
    cn_t = tunnel_new(base, TUNNEL_CONNECTOR, cfd, cssl, &cn_ops, &p, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gw_t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cn_t);
    gw_max_read = cn_max_read = 0;
    memset(pipes, 0, sizeof(pipes));
}

/* Open pipe i through the tunnel: down_bytes origin -> client, up_bytes back. */
static struct pipe *
pipe_open(unsigned i, uint64_t down_bytes, uint64_t up_bytes, bool client_reads)
{
    struct pipe *p = &pipes[i];
    int          g[2], c[2];

    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, g) == 0);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, c) == 0);
    for (int k = 0; k < 2; k++) {
        set_nonblock(g[k]);
        set_nonblock(c[k]);
    }
    p->gfd = g[0];
    p->client_fd = g[1];
    p->cfd_for_stream = c[0];
    p->origin_fd = c[1];
    p->down_bytes = down_bytes;
    p->up_bytes = up_bytes;
    p->client_reads = client_reads;
    p->g_writable = true;
    if (up_bytes == 0)
        shutdown(p->client_fd, SHUT_WR);    /* a download only: the client's FIN now */
    if (down_bytes == 0)
        shutdown(p->origin_fd, SHUT_WR);
    next_request = p;
    p->gs = tstream_open(gw_t, "origin.internal:9", "tcp", "{\"sub\":\"u1\"}", p, &p->gfd, &p->g_readable,
                         &p->g_writable);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->gs);
    event_assign(&p->gev, base, p->gfd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST, on_gw_sock, p);
    event_assign(&p->client_ev, base, p->client_fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST,
                 on_client, p);
    event_assign(&p->origin_ev, base, p->origin_fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST,
                 on_origin, p);
    event_add(&p->gev, NULL);
    event_add(&p->client_ev, NULL);
    event_add(&p->origin_ev, NULL);
    return p;
}

static void
pipe_check_done(void)
{
    if (until != NULL && until())
        event_base_loopbreak(base);
}

/* Run the loop until `done` holds (true) or `secs` pass (false). */
static bool
run_until(bool (*done)(void), int secs)
{
    struct timeval tv = { secs, 0 };

    until = done;
    if (done())
        return true;
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    until = NULL;
    return done();
}

static void
pipe_close(struct pipe *p)
{
    if (p->gs != NULL)
        tstream_release(p->gs);         /* the tunnel frees it; no on_stream_end follows */
    p->gs = NULL;
    event_del(&p->gev);
    event_del(&p->client_ev);
    event_del(&p->origin_ev);
    close(p->gfd);
    close(p->client_fd);
    close(p->origin_fd);
    if (p->cs == NULL && !p->c_ended)
        close(p->cfd_for_stream);       /* never reached the connector */
}

static void
tunnels_down(void)
{
    for (unsigned i = 0; i < MAX_PIPES; i++)
        if (pipes[i].client_fd > 0)
            pipe_close(&pipes[i]);
    if (gw_t != NULL)
        tunnel_close(gw_t, "test over");
    if (cn_t != NULL)
        tunnel_close(cn_t, "test over");
    for (unsigned i = 0; i < MAX_PIPES; i++)
        if (pipes[i].cev_added)
            event_del(&pipes[i].cev);
    event_base_free(base);
    base = NULL;
}

/* ---- tests ----------------------------------------------------------------------------- */

static bool
pipe0_done(void)
{
    struct pipe *p = &pipes[0];

    return p->bad || (p->down_eof && p->up_eof && p->g_ended && p->c_ended);
}

static void
test_bulk_both_ways_whole_in_order_in_frames_over_16k(void)
{
    struct pipe *p;

    tunnels_up();
    p = pipe_open(0, 24u << 20, 24u << 20, true);
    CU_ASSERT_TRUE(run_until(pipe0_done, 60));
    CU_ASSERT_FALSE(p->bad);
    CU_ASSERT_EQUAL(p->down_got, 24u << 20);
    CU_ASSERT_EQUAL(p->up_got, 24u << 20);
    CU_ASSERT_TRUE(p->down_eof && p->up_eof);
    CU_ASSERT_EQUAL(p->g_why, TSTREAM_DONE);
    CU_ASSERT_EQUAL(p->c_why, TSTREAM_DONE);
    /* Each socket read fills one DATA frame: reads past 16 KiB mean both sides took
     * the peer's larger SETTINGS_MAX_FRAME_SIZE. */
    CU_ASSERT(cn_max_read > 16384);
    CU_ASSERT(gw_max_read > 16384);
    tunnels_down();
}

static bool
fast_done(void)
{
    struct pipe *f = &pipes[1];

    return f->bad || (f->down_eof && f->g_ended && f->c_ended);
}

static bool
stalled_done(void)
{
    struct pipe *s = &pipes[0];

    return s->bad || (s->down_eof && s->g_ended && s->c_ended);
}

static bool
never(void)
{
    return false;
}

static void
test_stalled_client_holds_back_only_its_stream_within_one_window(void)
{
    struct pipe *stalled, *fast;
    uint64_t     sent_before;

    tunnels_up();
    stalled = pipe_open(0, 64u << 20, 0, false);
    run_until(never, 1);                /* its window and the buffers on the way fill up */
    fast = pipe_open(1, 32u << 20, 0, true);
    CU_ASSERT_TRUE(run_until(fast_done, 60));
    CU_ASSERT_FALSE(fast->bad);
    CU_ASSERT_EQUAL(fast->down_got, 32u << 20);
    CU_ASSERT_EQUAL(fast->g_why, TSTREAM_DONE);

    /* The stalled stream: its origin is held back, and what the gateway holds for the
     * client is at most one window, however large the frames. */
    sent_before = stalled->down_sent;
    run_until(never, 1);
    CU_ASSERT_EQUAL(stalled->down_sent, sent_before);
    CU_ASSERT(stalled->down_sent < (16u << 20));
    CU_ASSERT_PTR_NOT_NULL_FATAL(stalled->gs);
    CU_ASSERT(stalled->gs->out == NULL || evbuffer_get_length(stalled->gs->out) <= WINDOW_BYTES);

    /* The client reads again: every byte arrives, in order. */
    stalled->client_reads = true;
    on_client(stalled->client_fd, EV_READ, stalled);
    CU_ASSERT_TRUE(run_until(stalled_done, 60));
    CU_ASSERT_FALSE(stalled->bad);
    CU_ASSERT_EQUAL(stalled->down_got, 64u << 20);
    CU_ASSERT_EQUAL(stalled->g_why, TSTREAM_DONE);
    tunnels_down();
}

static bool
notice_answered(void)
{
    return notice_status != 0;
}

static bool
notice_streams_gone(void)
{
    return gw_t != NULL && cn_t != NULL && tunnel_streams(gw_t) == 0 &&
           tunnel_streams(cn_t) == 0;
}

static void
notice_send(const char *path, const char *value, size_t len)
{
    notice_status = 0;
    notice_path[0] = notice_value[0] = notice_error[0] = '\0';
    CU_ASSERT_EQUAL_FATAL(tunnel_notify(gw_t, path, value, len), 0);
    CU_ASSERT_FATAL(run_until(notice_answered, 5));
    CU_ASSERT(run_until(notice_streams_gone, 5));   /* nothing left behind, either side */
}

static void
test_notice_reaches_the_connector_and_is_answered(void)
{
    char *big = malloc(NOTICE_MAX_BYTES + 2);

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    tunnels_up();
    notice_send("/.ferry/test", "{\"replicas\":[]}", 15);
    CU_ASSERT_EQUAL(notice_status, 204);
    CU_ASSERT_STRING_EQUAL(notice_path, "/.ferry/test");
    CU_ASSERT_STRING_EQUAL(notice_value, "{\"replicas\":[]}");
    CU_ASSERT_EQUAL(notice_len, 15);
    CU_ASSERT(!notice_big);

    notice_send("/.ferry/other", "x", 1);
    CU_ASSERT_EQUAL(notice_status, 404);
    CU_ASSERT_STRING_EQUAL(notice_error, "unknown-notice");

    /* The sender's bound is the receiver's: one byte more is not sent at all. */
    memset(big, 'a', NOTICE_MAX_BYTES + 1);
    CU_ASSERT_EQUAL(tunnel_notify(gw_t, "/.ferry/test", big, NOTICE_MAX_BYTES + 1), -1);
    notice_send("/.ferry/test", big, NOTICE_MAX_BYTES);
    CU_ASSERT_EQUAL(notice_status, 204);
    CU_ASSERT_EQUAL(notice_len, NOTICE_MAX_BYTES);

    /* A connector without the hook (as before notices) refuses; the tunnel lives on. */
    cn_ops.on_notice = NULL;
    notice_send("/.ferry/test", "x", 1);
    cn_ops.on_notice = cn_on_notice;
    CU_ASSERT_EQUAL(notice_status, 405);
    CU_ASSERT_PTR_NOT_NULL(gw_t);
    CU_ASSERT(gw_t != NULL && tunnel_is_usable(gw_t));

    /* And a stream opened after all that still works. */
    pipe_open(0, 100000, 100000, true);
    CU_ASSERT(run_until(pipe0_done, 10));
    CU_ASSERT(!pipes[0].bad);
    tunnels_down();
    free(big);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "bulk both ways: whole, in order, frames over 16 KiB",
          test_bulk_both_ways_whole_in_order_in_frames_over_16k },
        { "a stalled client holds back only its stream, within one window",
          test_stalled_client_holds_back_only_its_stream_within_one_window },
        { "a notice reaches the connector and is answered",
          test_notice_reaches_the_connector_and_is_answered },
        { NULL, NULL },
    };

    return cu_run("tunnel session", tests);
}
