/*
 * ferry/io.h: byte streams for plugins that work at message level (http, ldap).
 *
 * ferry_conn_relay() suits a plugin that only needs a handshake and then moves bytes
 * blindly. A protocol that reads every message of both directions (rewrites headers,
 * injects credentials, reuses upstream connections) instead drives two or more
 * streams itself:
 *
 *   io = ferry_conn_io(c)                       the client's end, switched to stream mode
 *   ferry_io_open(c, &target, &tls, cb, arg)    an upstream: TCP, TLS over TCP, or a
 *                                               tunnel stream; or ferry_io_pool_get()
 *
 * Core owns the sockets, TLS and the tunnel; a plugin sees bytes. Reading is pull
 * style: core reads into the stream's input buffer (at most FERRY_IO_INBUF bytes) and
 * calls the event callback with FERRY_IO_READ; the plugin looks at the bytes with
 * ferry_io_peek() and removes what it used with ferry_io_consume(). Unconsumed bytes
 * stay; a full buffer stops reading from the socket (backpressure) until the plugin
 * consumes. Writing copies what the socket does not take at once; the plugin watches
 * ferry_io_pending() and waits for FERRY_IO_DRAINED before it writes more, so no
 * buffer grows without bound.
 *
 * Every callback runs on the connection's worker thread. A stream's callback is never
 * called from inside a ferry_io_* call of the plugin (always from the loop).
 */
#ifndef FERRY_IO_H
#define FERRY_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/api.h>
#include <ferry/conn.h>
#include <ferry/dest.h>

struct ferry_io;

#define FERRY_IO_INBUF (64 * 1024)   /* input buffered per stream (ferry_io_set_inbuf) */

/* Events (a bit set). */
#define FERRY_IO_READ     0x01u  /* new input; or the peer's end of stream (ferry_io_eof) */
#define FERRY_IO_DRAINED  0x02u  /* everything written has reached the socket */
#define FERRY_IO_TIMEOUT  0x04u  /* nothing was read for the ferry_io_timeout() period */
#define FERRY_IO_ERROR    0x08u  /* reset, TLS failure: the stream is dead (ferry_io_error) */

typedef void (*ferry_io_cb)(struct ferry_io *io, unsigned events, void *arg);

/* Upstream TLS. Start from FERRY_IO_TLS_INIT: every field has a safe default.
 * Fill it from a destination with ferry_io_tls_from_dest() rather than reading
 * TLS properties yourself. */
struct ferry_io_tls {
    bool        enable;
    const char *server_name;    /* SNI and the name checked; NULL: the target host */
    const char *ca_file;        /* PEM CAs trusted (besides the system store); NULL: none */
    const char *cert_file;      /* client key store: PKCS#12 (.p12/.pfx) or PEM certificate
                                   (key may be in the same file) */
    const char *key_file;       /* NULL: taken from cert_file */
    bool        insecure;       /* do not verify the server (TrustAll) */
    bool        no_system_store;/* trust ca_file only */
    uint32_t    size;           /* ABI 1.3: sizeof(struct ferry_io_tls) */
    /* ABI 1.3 (FERRY_HAS_FIELD; core reads them only from plugins built for 1.3+): */
    const char *cert_password;  /* opens cert_file (KeyStorePassword); a secret, never log */
    bool        wildcard_any_depth; /* "*.example.com" in the server's certificate also
                                   covers a.b.example.com (HostnameVerifier
                                   BrowserCompatible); default: one label */
};
#define FERRY_IO_TLS_INIT FERRY_STRUCT_INIT(ferry_io_tls)

/* The upstream TLS of destination d, as every ferry component reads its properties
 * (TrustStoreLocation, TrustAll, KeyStoreLocation + KeyStorePassword, HostnameVerifier):
 * enable is set for https:// and ldaps://, server_name is the host; a plugin may change
 * enable (StartTLS, OnPremise) before use. Strings are borrowed from d. (ABI 1.3) */
FERRY_API void ferry_io_tls_from_dest(const struct ferry_dest *d, struct ferry_io_tls *out);

/* The client's end of c as a stream. From now on the connection is in stream mode:
 * ferry_conn_read_start/relay no longer apply; ferry_conn_close() flushes what was
 * written to the client, closes the upstream streams of c and ends c. NULL if c is not
 * in the plugin's hands any more. */
FERRY_API struct ferry_io *ferry_conn_io(struct ferry_conn *c);

/* Opened (or not). On success io is ready for reads and writes; on failure io is NULL
 * and status/reason are as for ferry_open_cb (FERRY_EPROTO with a reason for a TLS
 * failure: "certificate verify failed: ..."). */
typedef void (*ferry_io_open_cb)(struct ferry_conn *c, struct ferry_io *io, int status,
                                 const char *reason, void *arg);

/* Open an upstream stream for c, routed like ferry_conn_open(). tls may be NULL.
 * connect_timeout_ms 0: the listener's. FERRY_OK when started (cb runs later, never
 * from inside this call), or a negative code. The stream belongs to c: it is closed
 * with c unless handed to the pool. */
FERRY_API int ferry_io_open(struct ferry_conn *c, const struct ferry_target *t,
                            const struct ferry_io_tls *tls, uint32_t connect_timeout_ms,
                            ferry_io_open_cb cb, void *arg);

/* StartTLS: turn an open plain upstream stream into TLS (tls->enable is implied).
 * Nothing may be buffered either way. cb runs once the handshake is over: with io on
 * success, or with NULL (io closed) and a reason. FERRY_OK when started. */
FERRY_API int ferry_io_starttls(struct ferry_io *io, const struct ferry_io_tls *tls,
                                ferry_io_open_cb cb, void *arg);

/* Set the callback for io's events. */
FERRY_API void ferry_io_set_cb(struct ferry_io *io, ferry_io_cb cb, void *arg);

/* The buffered input (may be empty); ferry_io_consume() removes the first n bytes. */
FERRY_API size_t ferry_io_peek(struct ferry_io *io, const uint8_t **data);
FERRY_API void   ferry_io_consume(struct ferry_io *io, size_t n);
/* The peer finished sending (and every byte of it is in the input buffer). */
FERRY_API bool   ferry_io_eof(const struct ferry_io *io);
/* 0, or the FERRY_E* that killed the stream; reason for logs. */
FERRY_API int    ferry_io_error(const struct ferry_io *io, const char **reason);

/* Queue bytes (copied if the socket does not take them now). FERRY_OK, or the error
 * the stream died of. */
FERRY_API int    ferry_io_write(struct ferry_io *io, const void *data, size_t len);
/* Two or more pieces in one call (one syscall when the socket takes them). */
struct ferry_iov { const void *base; size_t len; };
FERRY_API int    ferry_io_writev(struct ferry_io *io, const struct ferry_iov *iov, int n);
/* Bytes written but not yet taken by the socket. */
FERRY_API size_t ferry_io_pending(const struct ferry_io *io);
/* After what is queued: end the write direction (FIN / TLS close_notify). */
FERRY_API void   ferry_io_shutdown(struct ferry_io *io);

/* Let the input buffer grow up to max bytes (default and minimum FERRY_IO_INBUF) for a
 * protocol that must see whole messages; it only grows while it is full and shrinks
 * back when emptied. */
FERRY_API void   ferry_io_set_inbuf(struct ferry_io *io, size_t max);

/* Stop / start reading from the socket (input already buffered stays). */
FERRY_API void   ferry_io_pause(struct ferry_io *io, bool paused);
/* FERRY_IO_TIMEOUT when nothing arrives for ms (0: off). Restarted by every read and
 * by this call. */
FERRY_API void   ferry_io_timeout(struct ferry_io *io, uint32_t ms);

/* Close an upstream stream now (the client's end closes with ferry_conn_close): for
 * errors; a tunnel stream is reset. */
FERRY_API void   ferry_io_close(struct ferry_io *io);
/* End an upstream stream gracefully: what is queued is sent, then the write side is
 * shut (FIN, TLS close_notify, END_STREAM in a tunnel) and ferry waits up to linger_ms
 * for the peer's end, discarding anything it still sends. io is no longer the caller's
 * (nor the connection's) from this call on. */
FERRY_API void   ferry_io_finish(struct ferry_io *io, uint32_t linger_ms);

/* Keep-alive pool, per worker. Give an idle upstream stream (nothing buffered, nothing
 * pending) to the pool under key; it is closed after idle_ms or when the peer closes
 * it. Returns false (and closes io) if the pool does not take it. */
FERRY_API bool   ferry_io_pool_put(struct ferry_io *io, const char *key, uint32_t idle_ms);
/* Take a pooled stream for key and attach it to c; NULL if none. */
FERRY_API struct ferry_io *ferry_io_pool_get(struct ferry_conn *c, const char *key);

/* The address the stream is connected to, "host:port" (for logs); "" if unknown. */
FERRY_API const char *ferry_io_target(const struct ferry_io *io);
/* Whether it goes through a tunnel to a connector. */
FERRY_API bool   ferry_io_tunneled(const struct ferry_io *io);

/* One finished request of a message-level protocol: written to the access log (one
 * JSON line) and counted in /metrics by listener and destination (status class and a
 * latency histogram). Strings are copied or used during the call only. Start from
 * FERRY_REQUEST_RECORD_INIT. */
struct ferry_request_record {
    const char              *method;        /* "GET", LDAP "search", ... */
    const char              *path;          /* without the query (may hold secrets) */
    const struct ferry_dest *dest;          /* may be NULL */
    const char              *target;        /* "host:port" or NULL */
    const char              *request_id;    /* may be NULL */
    int                      status;        /* HTTP status, or the protocol's result */
    uint64_t                 bytes_in;      /* client -> upstream, body included */
    uint64_t                 bytes_out;     /* upstream -> client */
    uint64_t                 upstream_us;   /* request sent -> response head, 0 if none */
    uint64_t                 total_us;      /* request head read -> response done */
    const char              *outcome;       /* "ok", or the error reason */
    const char              *protocol;      /* NULL: "http" (status is an HTTP status);
                                             * "ldap": status is an LDAP resultCode */
    uint32_t                 size;          /* ABI 1.3: sizeof(struct ferry_request_record) */
};
#define FERRY_REQUEST_RECORD_INIT FERRY_STRUCT_INIT(ferry_request_record)
FERRY_API void ferry_conn_request_done(struct ferry_conn *c, const struct ferry_request_record *r);

/* fn(arg) runs once when c is freed, however it ends (the plugin's own close, an idle
 * timeout, shutdown): for memory the plugin owns beyond ferry_conn_alloc(). One slot: a
 * second call replaces the first. Kept for plugins built before 1.3; new code uses
 * ferry_conn_on_cleanup() (ferry/conn.h), a list. */
FERRY_API void ferry_conn_on_free(struct ferry_conn *c, void (*fn)(void *arg), void *arg);

/* Microseconds from a monotonic clock (for the record's durations). */
FERRY_API uint64_t ferry_now_us(void);

#endif
