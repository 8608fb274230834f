/*
 * tunnel_fuzz.c: libFuzzer target for the tunnel session (core/tunnel/session.c): the
 * input is what the peer sends inside the tunnel's TLS, HTTP/2 frames as they come,
 * read by a real nghttp2 session with ferry's callbacks, in either role.
 *
 * Byte 0 even: the tunnel under test is the connector's (HTTP/2 server); the harness
 * sends the client preface and then the input: CONNECTs (authority "o..." gets a 200
 * and a socket, up to MAX_SOCKS; others a 403), notices, DATA, resets, whatever. Byte
 * 0 odd: it is the gateway's (HTTP/2 client) with one CONNECT stream open (a socket
 * behind it) and one notice sent; the input is the connector's side of the
 * conversation, its SETTINGS first if it wants the session to stay up.
 *
 * The tunnel is made without TLS (tunnel_new with ssl NULL): the frames go through
 * the same BIO pair, nghttp2 session and callbacks the gateway and the connector run,
 * over a socketpair, without a TLS 1.3 handshake per input (which cost ~270 inputs/s;
 * TLS itself is OpenSSL's to fuzz). The loop is driven a bounded number of rounds,
 * then the harness shuts its side and the tunnel must close and free everything
 * (LeakSanitizer checks the rest).
 *
 * Checks besides the sanitizers: the tunnel closes with a reason once its peer is
 * gone; every stream the harness was told about ends exactly once, before the tunnel
 * is closed; responses and notices carry a status of three digits at most.
 */
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "tunnel/session.h"
#ifdef FERRY_FUZZ_STANDALONE
#include "standalone.h"
#endif

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#define ROUNDS    64        /* loop turns per input before the harness hangs up */
#define MAX_SOCKS 4         /* connector streams given a socket per input */

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct sock {
    struct tstream *s;      /* borrowed until ended */
    int             far;    /* owns: the harness's end */
    int             near;   /* the stream's end (the connector's stream closes it) */
    bool            readable, writable;
    bool            ended;
};

static struct run {
    struct event_base *base;
    struct tunnel     *t;
    bool               closed;
    char               reason[64];      /* why the tunnel closed */
    unsigned           requests, responses, notices, ends;
    struct sock        socks[MAX_SOCKS];
    unsigned           nsocks;
} run;

static void
nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static struct sock *
sock_new(void)
{
    struct sock *k;
    int          sv[2];

    if (run.nsocks == MAX_SOCKS || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return NULL;
    k = &run.socks[run.nsocks++];
    memset(k, 0, sizeof(*k));
    k->near = sv[0];
    k->far = sv[1];
    nonblock(sv[0]);
    nonblock(sv[1]);
    /* Something for the stream to read, then EOF: both directions get exercised. */
    (void)!write(k->far, "hello from the socket\n", 22);
    shutdown(k->far, SHUT_WR);
    k->readable = k->writable = true;
    return k;
}

static void
drain(int fd)
{
    char buf[16384];

    while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
        ;
}

/* ---- the tunnel's hooks ------------------------------------------------------------ */

static void
on_request(struct tunnel *t, struct tstream *s, const char *authority, const char *protocol,
           const char *user, bool user_big)
{
    struct sock *k = authority[0] == 'o' ? sock_new() : NULL;

    (void)t;
    (void)protocol;
    CHECK(user == NULL || strlen(user) <= USER_MAX_BYTES);
    (void)user_big;
    run.requests++;
    if (k == NULL) {
        tstream_respond(s, 403, "access-denied");
        return;
    }
    k->s = s;
    s->owner = k;
    s->own_fd = k->near;                /* the stream closes it when it is freed */
    s->own_readable = s->own_writable = true;
    tstream_respond(s, 200, NULL);
    tstream_start(s, NULL, 0, NULL, 0);
}

static void
on_response(struct tstream *s, int status, const char *error)
{
    (void)error;
    /* Three digits, nghttp2's check; 781 comes through as 781 and, like everything
     * but 200, means the stream was refused. */
    CHECK(status >= 0 && status <= 999);
    run.responses++;
    if (status == 200)
        tstream_start(s, NULL, 0, NULL, 0);     /* as a gateway conn does: relay */
}

static void
on_stream_end(struct tstream *s, enum tstream_end why)
{
    struct sock *k = s->owner;

    (void)why;
    CHECK(!run.closed);
    if (k == NULL)
        return;                         /* a stream nobody took (a refused CONNECT) */
    CHECK(!k->ended);
    k->ended = true;
    k->s = NULL;
    run.ends++;
}

static void
on_tunnel_close(struct tunnel *t, const char *reason)
{
    (void)t;
    CHECK(!run.closed && reason != NULL && reason[0] != '\0');
    run.closed = true;
    snprintf(run.reason, sizeof(run.reason), "%s", reason);
}

static int
on_notice(struct tunnel *t, const char *path, const char *value, size_t len, bool too_big,
          const char **error)
{
    (void)t;
    (void)value;
    CHECK(path != NULL && len <= NOTICE_MAX_BYTES);
    (void)too_big;
    run.notices++;
    *error = "unknown notice";
    return strcmp(path, "/.ferry/replicas") == 0 ? 204 : 404;
}

static void
on_notice_reply(struct tunnel *t, int status, const char *error)
{
    (void)t;
    (void)error;
    CHECK(status >= 0 && status <= 999);
    run.notices++;
}

static const struct tunnel_ops ops = {
    .on_request = on_request, .on_response = on_response, .on_stream_end = on_stream_end,
    .on_tunnel_close = on_tunnel_close, .on_notice = on_notice,
    .on_notice_reply = on_notice_reply,
};

/* ---- one input ------------------------------------------------------------------- */

/* Write what the peer says; what does not fit now is dropped (the socket buffer of a
 * socketpair holds far more than max_len). */
static void
peer_write(int fd, const void *p, size_t n)
{
    if (n > 0)
        (void)!write(fd, p, n);
}

static const char *
fuzz_verdict(const uint8_t *data, size_t size)
{
    static const struct tunnel_params params = { 60000, 120000 };
    static char                       verdict[160];
    bool                              gateway;
    int                               sv[2], pfd;
    struct sock                      *gk = NULL;

    if (size == 0)
        return "empty";
    if (run.base == NULL) {
        /* As ferry's main does: a write to a socket whose peer left is an error
         * return, not the end of the process. */
        signal(SIGPIPE, SIG_IGN);
        CHECK((run.base = event_base_new()) != NULL);
    }
    gateway = (data[0] & 1) != 0;
    data++;
    size--;
    memset(&run.t, 0, sizeof(run) - offsetof(struct run, t));
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    nonblock(sv[0]);
    nonblock(sv[1]);
    pfd = sv[1];
    CHECK((run.t = tunnel_new(run.base, gateway ? TUNNEL_GATEWAY : TUNNEL_CONNECTOR, sv[0], NULL,
                              &ops, &params, NULL)) != NULL);
    if (gateway) {
        gk = sock_new();
        CHECK(gk != NULL);
        gk->s = tstream_open(run.t, "origin.internal:80", "tcp", "{\"sub\":\"u1\"}", gk,
                             &gk->near, &gk->readable, &gk->writable);
        if (gk->s == NULL)
            gk->ended = true;
        (void)tunnel_notify(run.t, "/.ferry/replicas", "{}", 2);
    }
    /* After the gateway's streams are open, so answers find their stream (1, 3). */
    if (!gateway)
        peer_write(pfd, preface, sizeof(preface) - 1);
    peer_write(pfd, data, size);
    for (int i = 0; i < ROUNDS && !run.closed; i++) {
        event_base_loop(run.base, EVLOOP_NONBLOCK);
        drain(pfd);
        for (unsigned k = 0; k < run.nsocks; k++) {
            drain(run.socks[k].far);
            if (!run.socks[k].ended && run.socks[k].s != NULL && !run.closed)
                tstream_on_socket(run.socks[k].s);
        }
        if (i == ROUNDS / 2) {
            /* Hang up; the tunnel must notice. */
            shutdown(pfd, SHUT_WR);
        }
    }
    if (gk != NULL && !gk->ended && !run.closed) {
        tstream_release(gk->s);         /* the owner leaves first, as a conn would */
        gk->ended = true;
    }
    if (!run.closed)
        tunnel_close(run.t, "fuzz input done");
    for (int i = 0; i < 8 && !run.closed; i++)
        event_base_loop(run.base, EVLOOP_NONBLOCK);
    CHECK(run.closed);
    for (unsigned k = 0; k < run.nsocks; k++) {
        CHECK(run.socks[k].ended || &run.socks[k] == gk);
        close(run.socks[k].far);
    }
    if (gk != NULL)
        close(gk->near);                /* the gateway's conn owns its socket */
    close(pfd);
    snprintf(verdict, sizeof(verdict), "%s requests %u responses %u notices %u: %s",
             gateway ? "gateway" : "connector", run.requests, run.responses, run.notices,
             run.reason);
    return verdict;
}

#ifdef FERRY_FUZZ_STANDALONE
static const struct fuzz_expect fuzz_expects[] = {
    { "cn-settings-only", "connector requests 0 responses 0 notices 0: peer closed the tunnel" },
    { "cn-connect-origin", "connector requests 1 responses 0 notices 0: peer closed the tunnel" },
    { "cn-connect-denied", "connector requests 1 responses 0 notices 0: peer closed the tunnel" },
    { "cn-continuation", "connector requests 1 responses 0 notices 0: peer closed the tunnel" },
    { "cn-notice", "connector requests 0 responses 0 notices 1: peer closed the tunnel" },
    { "cn-ping-goaway", "connector requests 0 responses 0 notices 0: drained after GOAWAY" },
    { "cn-bad-frame-size", "connector requests 0 responses 0 notices 0: HTTP/2 session finished" },
    { "gw-settings-200", "gateway requests 0 responses 1 notices 0: peer closed the tunnel" },
    { "gw-502-error", "gateway requests 0 responses 1 notices 1: peer closed the tunnel" },
    /* Found by the fuzzer: a status outside 100..599 reaches on_response as it is. */
    { "gw-status-781", "gateway requests 0 responses 1 notices 0: peer closed the tunnel" },
    { "gw-no-settings", "gateway requests 0 responses 0 notices 0: HTTP/2 session finished" },
};

int
main(int argc, char **argv)
{
    return fuzz_run_seeds(argc, argv, fuzz_verdict, fuzz_expects,
                          sizeof(fuzz_expects) / sizeof(fuzz_expects[0]));
}
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_verdict(data, size);
    return 0;
}
#endif
