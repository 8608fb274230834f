/*
 * ferry/conn.h: a client connection as a plugin drives it.
 *
 * Core owns the socket from accept to close; a plugin never sees a file descriptor.
 * Life of a connection in a plugin:
 *
 *   on_accept(c)  ->  [read the protocol's handshake: ferry_conn_read_start]
 *                 ->  ferry_conn_open(c, &target, on_open, arg)     (asynchronous)
 *   on_open(c, FERRY_OK)  ->  [write a success reply]  ->  ferry_conn_relay(c)
 *   on_open(c, error)     ->  [write the protocol's error reply]  ->  ferry_conn_close(c, …)
 *
 * After ferry_conn_relay() or ferry_conn_close() the plugin must not touch c again:
 * core finishes the connection, writes its access-log record and frees it. Every
 * callback runs on the connection's worker thread.
 */
#ifndef FERRY_CONN_H
#define FERRY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/api.h>
#include <ferry/dest.h>
#include <ferry/log.h>

struct ferry_conn;
struct ferry_user;

/* "127.0.0.1:41522" / "[::1]:41522"; valid until the connection closes. The client:
 * with the listener's proxy_protocol, the address its PROXY header named. */
FERRY_API const char *ferry_conn_peer(const struct ferry_conn *c);

/* ABI 1.5. The listener's `rate:` for one request of a message-level plugin (http):
 * take one token of the client's bucket. FERRY_OK (also when the listener has no
 * rate), or FERRY_ELIMIT with *retry_after_s (if not NULL) the whole seconds until
 * the client may try again (for Retry-After); the refusal is counted and logged. A
 * plugin that calls it counts per request: core then no longer takes the connection's
 * one token when it first opens an upstream (ferry_conn_open, ferry_io_open), refused
 * there as FERRY_EDENIED with reason "rate-limited". */
FERRY_API int ferry_conn_rate_take(struct ferry_conn *c, uint32_t *retry_after_s);

/* The destination the listener is bound to, from the registry snapshot this
 * connection holds; NULL if the listener has none or the name no longer exists. */
FERRY_API const struct ferry_dest *ferry_conn_dest(const struct ferry_conn *c);

/* Look a destination up by name in the connection's snapshot; NULL if absent. */
FERRY_API const struct ferry_dest *ferry_conn_lookup_dest(const struct ferry_conn *c,
                                                          const char *name);

/* The log context of this connection (worker, conn id, listener, client). */
FERRY_API const struct ferry_log_ctx *ferry_conn_log(const struct ferry_conn *c);

/* Memory that lives exactly as long as the connection (zeroed); NULL when out of memory. */
FERRY_API void *ferry_conn_alloc(struct ferry_conn *c, size_t size);

/* Where to go. Either dest (route by its ProxyType, tenant and location) or an explicit
 * host/port, routed in this order (DESIGN.md): (1) a virtual host of a live connector
 * of the tenant at the location -> tunnel; (2) direct_ok (the plugin checked its
 * egress rules, ferry/route.h) -> direct; (3) no live connector for tenant and
 * location -> FERRY_ENOTUNNEL; (4) otherwise FERRY_EDENIED. Start from
 * FERRY_TARGET_INIT (zeroed, size set): fields are appended after size. */
struct ferry_target {
    const struct ferry_dest *dest;       /* borrowed; may be NULL */
    const char              *host;       /* used when dest is NULL */
    uint16_t                 port;
    const char              *tenant;     /* NULL: the destination's / the connection's */
    const char              *location;   /* NULL: the destination's; "" default location */
    bool                     direct_ok;  /* host:port may be dialed directly */
    const char              *protocol;   /* ABI 1.2: what the connector checks the stream
                                          * against ("http", "ldap", ...); NULL: the
                                          * destination's Type, else "tcp" */
    uint32_t                 size;       /* ABI 1.3: sizeof(struct ferry_target) */
    /* ABI 1.4 (FERRY_HAS_FIELD): */
    struct ferry_user       *user;       /* borrowed; NULL: none. A tunnel stream carries
                                          * the user's claims to the connector (principal
                                          * propagation, ferry/user.h) */
};
#define FERRY_TARGET_INIT FERRY_STRUCT_INIT(ferry_target)

/* Upstream open finished. status: FERRY_OK (connected), FERRY_ENOTFOUND (name did not
 * resolve), FERRY_EUNAVAIL (connection refused), FERRY_EUNREACH (host unreachable),
 * FERRY_ETIMEDOUT, FERRY_ENOTUNNEL (no live connector for tenant and location),
 * FERRY_EDENIED (not allowed: egress, or the connector's access control), FERRY_EIO.
 * reason is a short text for logs and replies. */
typedef void (*ferry_open_cb)(struct ferry_conn *c, int status, const char *reason, void *arg);

/* Start opening the upstream. The target strings are copied. FERRY_OK when started (cb
 * will run later, never from inside this call) or a negative code if it could not
 * start. */
FERRY_API int ferry_conn_open(struct ferry_conn *c, const struct ferry_target *t,
                              ferry_open_cb cb, void *arg);

/* Bytes from the client: return how many were consumed (the rest is offered again
 * with more data). Return a negative FERRY_E* to close the connection. A call with
 * len == 0 means the client closed or the handshake timed out (status says which). */
typedef int (*ferry_data_cb)(struct ferry_conn *c, const uint8_t *data, size_t len,
                             int status, void *arg);

/* Deliver client bytes to cb until it returns and the plugin calls ferry_conn_open or
 * ferry_conn_close. At most max_bytes are held unconsumed (then FERRY_ELIMIT closes);
 * timeout_ms bounds the whole handshake. */
FERRY_API int ferry_conn_read_start(struct ferry_conn *c, size_t max_bytes,
                                    uint32_t timeout_ms, ferry_data_cb cb, void *arg);

/* Stop delivering client bytes (they stay queued for the relay). */
FERRY_API void ferry_conn_read_stop(struct ferry_conn *c);

/* Queue bytes to the client (a protocol reply). Copied. */
FERRY_API int ferry_conn_write(struct ferry_conn *c, const void *data, size_t len);

/* Relay bytes both ways between client and upstream until both directions are done.
 * Bytes read but not consumed by the plugin are sent upstream first. */
FERRY_API void ferry_conn_relay(struct ferry_conn *c);

/* ABI 1.3: fn(arg) runs once when c is freed, however it ends (the plugin's close,
 * an idle timeout, shutdown), before its ferry_conn_alloc() memory goes. Each call adds
 * one; they run in reverse order of registration (what was set up last is taken down
 * first), then the ferry_conn_on_free() slot of older plugins. FERRY_OK, FERRY_ELIMIT
 * past 64 per connection, FERRY_ENOMEM, FERRY_EINVAL once c is closed. */
FERRY_API int ferry_conn_on_cleanup(struct ferry_conn *c, void (*fn)(void *arg), void *arg);

/* Flush what was written, then close. outcome is a short word for the access log
 * ("denied", "no-tunnel", "bad-request", …). */
FERRY_API void ferry_conn_close(struct ferry_conn *c, const char *outcome);

#endif
