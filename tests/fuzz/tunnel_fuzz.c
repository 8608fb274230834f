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
 * The session only runs over TLS (its BIO pair is part of the send and receive
 * path), so each input gets a fresh TLS 1.3 handshake over a socketpair with a
 * throwaway key: slow next to the parsers' targets, but the code under test is the
 * one the gateway and the connector run. The loop is driven a bounded number of
 * rounds, then the harness closes its side and the tunnel must close and free
 * everything (LeakSanitizer checks the rest).
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
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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
    SSL_CTX           *sctx, *cctx;
    struct tunnel     *t;
    bool               closed;
    char               reason[64];      /* why the tunnel closed */
    unsigned           requests, responses, notices, ends;
    struct sock        socks[MAX_SOCKS];
    unsigned           nsocks;
} run;

static SSL_CTX *
new_ctx(bool server)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    CHECK(ctx != NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
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
                                   (const unsigned char *)"tunnel-fuzz", -1, -1, 0);
        X509_set_issuer_name(crt, X509_get_subject_name(crt));
        X509_set_pubkey(crt, key);
        X509_sign(crt, key, EVP_sha256());
        CHECK(SSL_CTX_use_certificate(ctx, crt) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1);
        X509_free(crt);
        EVP_PKEY_free(key);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);   /* the key is made up here */
    }
    return ctx;
}

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

/* A socketpair with TLS on both ends, handshaken; tun_* is the tunnel's side. */
static bool
tls_pair(bool tun_is_server, int *tun_fd, SSL **tun_ssl, int *peer_fd, SSL **peer_ssl)
{
    int  sv[2];
    bool a = false, b = false;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return false;
    nonblock(sv[0]);
    nonblock(sv[1]);
    *tun_fd = sv[0];
    *peer_fd = sv[1];
    *tun_ssl = SSL_new(tun_is_server ? run.sctx : run.cctx);
    *peer_ssl = SSL_new(tun_is_server ? run.cctx : run.sctx);
    CHECK(*tun_ssl != NULL && *peer_ssl != NULL);
    SSL_set_fd(*tun_ssl, sv[0]);
    SSL_set_fd(*peer_ssl, sv[1]);
    if (tun_is_server) {
        SSL_set_accept_state(*tun_ssl);
        SSL_set_connect_state(*peer_ssl);
    } else {
        SSL_set_connect_state(*tun_ssl);
        SSL_set_accept_state(*peer_ssl);
    }
    /* Both ends in this thread: take turns until both are done. */
    for (int i = 0; i < 100 && !(a && b); i++) {
        a = a || SSL_do_handshake(*tun_ssl) == 1;
        b = b || SSL_do_handshake(*peer_ssl) == 1;
    }
    CHECK(a && b);
    return true;
}

/* Write what the peer says; what does not fit now is dropped (the socket buffer of a
 * socketpair holds far more than max_len). */
static void
peer_write(SSL *ssl, const void *p, size_t n)
{
    size_t w;

    if (n > 0)
        (void)SSL_write_ex(ssl, p, n, &w);
}

static void
peer_drain(SSL *ssl)
{
    char   buf[16384];
    size_t got;

    while (SSL_read_ex(ssl, buf, sizeof(buf), &got) == 1)
        ;
}

static const char *
fuzz_verdict(const uint8_t *data, size_t size)
{
    static const struct tunnel_params params = { 60000, 120000 };
    static char                       verdict[160];
    bool                              gateway;
    int                               tfd, pfd;
    SSL                              *tssl, *pssl;
    struct sock                      *gk = NULL;

    if (size == 0)
        return "empty";
    if (run.base == NULL) {
        /* As ferry's main does: a write to a socket whose peer left is an error
         * return, not the end of the process. */
        signal(SIGPIPE, SIG_IGN);
        CHECK((run.base = event_base_new()) != NULL);
        run.sctx = new_ctx(true);
        run.cctx = new_ctx(false);
    }
    gateway = (data[0] & 1) != 0;
    data++;
    size--;
    memset(&run.t, 0, sizeof(run) - offsetof(struct run, t));
    /* The connector dials out: on TLS the gateway is the server whatever h2 says. */
    CHECK(tls_pair(gateway, &tfd, &tssl, &pfd, &pssl));
    CHECK((run.t = tunnel_new(run.base, gateway ? TUNNEL_GATEWAY : TUNNEL_CONNECTOR, tfd, tssl,
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
        peer_write(pssl, preface, sizeof(preface) - 1);
    peer_write(pssl, data, size);
    for (int i = 0; i < ROUNDS && !run.closed; i++) {
        event_base_loop(run.base, EVLOOP_NONBLOCK);
        peer_drain(pssl);
        for (unsigned k = 0; k < run.nsocks; k++) {
            drain(run.socks[k].far);
            if (!run.socks[k].ended && run.socks[k].s != NULL && !run.closed)
                tstream_on_socket(run.socks[k].s);
        }
        if (i == ROUNDS / 2) {
            /* Hang up: close_notify, then the socket; the tunnel must notice. */
            SSL_shutdown(pssl);
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
    SSL_free(pssl);
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
