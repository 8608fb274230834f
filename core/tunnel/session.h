/*
 * session.h: one tunnel connection (TLS 1.3 + HTTP/2), used by both roles.
 *
 * Roles are reversed on purpose: the connector dialed out, but on the tunnel the
 * gateway is the HTTP/2 client and opens one CONNECT stream per proxied connection;
 * the connector is the HTTP/2 server. nghttp2 provides framing, flow control,
 * multiplexing, PING and GOAWAY.
 *
 * A stream joins an HTTP/2 stream to a socket (the client's on the gateway, the
 * internal host's on the connector). Memory per stream is bounded by the stream
 * window: bytes received but not yet written to the socket (the window is only
 * reopened as they leave). Socket bytes are read straight into nghttp2's frame buffer
 * when it asks for them, never ahead. An idle stream holds no buffer.
 *
 * A tunnel and its streams belong to one worker thread.
 */
#ifndef FERRY_TUNNEL_SESSION_H
#define FERRY_TUNNEL_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

struct tunnel;
struct tstream;
struct evbuffer;
struct hdrs;

enum tunnel_role { TUNNEL_GATEWAY = 1, TUNNEL_CONNECTOR };

/* Why a stream ended, for owners, logs and the audit log. */
enum tstream_end {
    TSTREAM_DONE = 0,       /* both directions finished */
    TSTREAM_RESET,          /* the peer or the socket reset it */
    TSTREAM_TUNNEL_LOST,    /* the tunnel died under it */
};

struct tunnel_ops {
    /* Connector: a CONNECT arrived. Answer with tstream_respond() (now or later).
     * user: the `ferry-user` header (the validated claims of the calling user as
     * compact JSON, principal propagation), NUL-terminated, or NULL when the stream
     * carries no user; user_big: one was sent but passed USER_MAX_BYTES (refuse the
     * stream). Borrowed for the call only. */
    void (*on_request)(struct tunnel *t, struct tstream *s, const char *authority,
                       const char *protocol, const char *user, bool user_big);
    /* Gateway: the answer to tstream_open(); status 200 = connected. error is the
     * connector's `ferry-error` header or NULL. */
    void (*on_response)(struct tstream *s, int status, const char *error);
    /* The stream is over; after this the owner must not touch s. */
    void (*on_stream_end)(struct tstream *s, enum tstream_end why);
    /* Bytes moved on s since the last call (in: socket -> peer, out: peer -> socket),
     * for live metrics. Optional; called often, keep it cheap. */
    void (*on_bytes)(struct tstream *s, uint64_t in, uint64_t out);
    /* The peer sent GOAWAY: no new streams (idle ones kept for reuse should go).
     * Optional; called once, from the loop. */
    void (*on_goaway)(struct tunnel *t);
    /* The tunnel is closed (every stream already ended); after this t is freed. */
    void (*on_tunnel_close)(struct tunnel *t, const char *reason);
    /* Connector, optional: a notice arrived (tunnel_notify: a request that is not a
     * CONNECT, with a :path and its `ferry-notice` value, NUL-terminated, len bytes;
     * value is "" when absent, too_big when it was cut at NOTICE_MAX_BYTES). Return the
     * status to answer: 204 taken, 4xx with *error (static text) otherwise. Without
     * this hook, or for a path it does not know, a notice is answered 404 (older
     * connectors answer 405). */
    int  (*on_notice)(struct tunnel *t, const char *path, const char *value, size_t len,
                      bool too_big, const char **error);
    /* Gateway, optional: the answer to a tunnel_notify(). */
    void (*on_notice_reply)(struct tunnel *t, int status, const char *error);
};

/* A notice's value: one HPACK field (nghttp2 refuses a field past 64 KiB as a
 * connection error, so the sender must stay well below). */
#define NOTICE_MAX_BYTES (48 * 1024)
/* A stream's user claims (`ferry-user`): a JWT is at most 16 KiB, its claims less. */
#define USER_MAX_BYTES   (16 * 1024)

struct tunnel_params {
    uint32_t keepalive_ms;          /* PING interval */
    uint32_t dead_peer_timeout_ms;  /* no frame received for this long: dead */
};

struct tstream {
    struct tunnel   *t;             /* NULL once the tunnel is gone */
    struct tstream  *prev, *next;   /* the tunnel's list */
    int32_t          id;
    void            *owner;         /* conn (gateway) / connector stream; NULL = orphan */
    /* The socket end. The gateway points these at its conn's fields; the connector
     * at the own_* ones. */
    int             *fd;
    bool            *readable, *writable;
    int              own_fd;
    bool             own_readable, own_writable;
    SSL             *ssl;           /* owns: TLS on the socket end (connector: TCPS, …), or
                                       NULL; set before tstream_start */
    size_t           tls_last;      /* OpenSSL: a retried write may not be shorter */
    /* Optional: sees every byte the peer sends before the socket does (the connector's
     * HTTP path rules). It forwards with tstream_sock_write, drops with tstream_drop,
     * answers with tstream_reply. Returns 0, or -1 to reset the stream. */
    int            (*filter)(struct tstream *s, const uint8_t *data, size_t len, void *arg);
    void            *filter_arg;
    struct hdrs     *hdrs;          /* owns: a header block being received */
    struct evbuffer *in;            /* owns: bytes for the peer queued before the relay */
    struct evbuffer *out;           /* owns: h2 -> socket, created on demand */
    size_t           out_raw;       /* leading bytes of `out` that are not h2 data */
    bool             relaying;      /* socket end attached: may read and write it */
    bool             sock_eof;      /* socket said EOF: END_STREAM once `in` drains */
    bool             h2_eof;        /* peer sent END_STREAM: shut the socket's write side */
    bool             shut_wr;
    bool             deferred;      /* the data provider waits for the socket */
    bool             h2_closed;     /* nghttp2 closed the stream */
    bool             ended;         /* on_stream_end delivered */
    bool             notice;        /* gateway: a tunnel_notify stream, no owner */
    uint64_t         bytes_in;      /* socket -> h2 */
    uint64_t         bytes_out;     /* h2 -> socket */
};

/* Wrap an established TLS connection (handshake and registration done). The tunnel
 * owns fd and ssl from now on. ssl NULL: HTTP/2 straight on fd, no TLS — for
 * tests/fuzz/tunnel_fuzz.c only; ferry never makes a tunnel without TLS. */
struct tunnel *tunnel_new(struct event_base *base, enum tunnel_role role, int fd, SSL *ssl,
                          const struct tunnel_ops *ops, const struct tunnel_params *p,
                          void *owner);
void          *tunnel_owner(const struct tunnel *t);
unsigned       tunnel_streams(const struct tunnel *t);
bool           tunnel_is_usable(const struct tunnel *t);   /* up and no GOAWAY */
/* Send GOAWAY (no new streams); the tunnel closes when its streams are done. */
void           tunnel_shutdown(struct tunnel *t);
/* Close now: every stream ends with TSTREAM_TUNNEL_LOST. */
void           tunnel_close(struct tunnel *t, const char *reason);

/* Gateway: tell the connector something outside any stream of data: a request
 * `POST path` (a reserved path, "/.ferry/...") whose header `ferry-notice` is value
 * (at most NOTICE_MAX_BYTES, no CR/LF/NUL), END_STREAM at once, no owner. The answer
 * comes to ops->on_notice_reply. 0 queued, -1 not (tunnel unusable, out of memory,
 * value too long). */
int  tunnel_notify(struct tunnel *t, const char *path, const char *value, size_t len);
/* Gateway: open a CONNECT stream to authority ("host:port"). user: the calling user's
 * claims as compact JSON (the `ferry-user` header: at most USER_MAX_BYTES, no CR/LF/NUL),
 * or NULL. NULL on failure. */
struct tstream *tstream_open(struct tunnel *t, const char *authority, const char *protocol,
                             const char *user, void *owner, int *fd, bool *readable,
                             bool *writable);
/* Connector: answer a CONNECT. status 200 keeps the stream open for data. */
int  tstream_respond(struct tstream *s, int status, const char *error);
/* Start moving bytes between the socket end and the stream; `raw` (may be empty) is
 * written to the socket first, unconsumed client bytes go to the peer first. */
void tstream_start(struct tstream *s, const void *to_sock, size_t to_sock_len,
                   const void *to_peer, size_t to_peer_len);
/* For filters: queue bytes for the socket (copied); count peer bytes as handled
 * without writing them (the window reopens); answer the peer with `data` and end the
 * stream (no more socket bytes are read or written). */
int  tstream_sock_write(struct tstream *s, const void *data, size_t len);
void tstream_drop(struct tstream *s, size_t len);
void tstream_reply(struct tstream *s, const void *data, size_t len);
/* The socket end became readable / writable (edge). */
void tstream_on_socket(struct tstream *s);
/* The owner is done (closing its socket): reset the h2 stream if still open. s is
 * freed by the tunnel; the owner must forget it. No on_stream_end follows. */
void tstream_release(struct tstream *s);

#endif
