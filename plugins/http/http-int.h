/*
 * http-int.h: the http plugin's pieces.
 *
 *   http.c     listener options, the per-connection state machine (head, open,
 *              exchange, tunnel), bodies, timeouts, keep-alive and the pool
 *   target.c   where a request goes: the destination (transparent mode) or the
 *              request's own host:port and location (forward mode)
 *   tenant.c   who a forward-mode client is (Proxy-Authorization)
 *   user.c     who the calling user is (principal propagation: the user's JWT)
 *   rewrite.c  building heads: the upstream request (transparent and forward mode),
 *              the client's response, and ferry's own error replies
 *   head.c     the blocks heads are built from: sbuf, field classification, copying
 *   policy.c   the destination's Lua policy (on_request, on_response) on those heads
 */
#ifndef FERRY_HTTP_PLUGIN_INT_H
#define FERRY_HTTP_PLUGIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/conn.h>
#include <ferry/http.h>
#include <ferry/io.h>
#include <ferry/policy.h>
#include <ferry/route.h>

struct hp_scratch;
struct ferry_user;

#define HTTP_MAX_HEADERS_CAP 256    /* upper bound of the max_headers option */

struct http_listener {
    bool                     forward;
    bool                     auth_none;
    bool                     forwarded_headers;   /* X-Forwarded-For/Proto/Host */
    struct ferry_egress     *egress;              /* forward mode; owns */
    struct ferry_http_limits lim;
    uint32_t                 request_timeout_ms;
    uint32_t                 upstream_timeout_ms;
    uint32_t                 keepalive_timeout_ms;
    uint32_t                 pool_idle_ms;
    const char              *bound;               /* the listener's destination or NULL */
};

/* A growing byte buffer for heads (bounded by the caller). */
struct sbuf {
    char  *p;
    size_t len, cap;
    bool   oom;
    bool   fixed;           /* p is the caller's (stack) buffer: copied out to grow */
};
/* Start b in the caller's buffer; it moves to the heap only if it outgrows it. */
void sb_init(struct sbuf *b, char *buf, size_t size);
void sb_add(struct sbuf *b, const void *p, size_t n);
void sb_str(struct sbuf *b, const char *s);
void sb_fmt(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(struct sbuf *b);

/* What a request head turned into. */
struct http_plan {
    const struct ferry_dest *dest;          /* transparent mode */
    char                     host[256];     /* forward mode: target host */
    uint16_t                 port;
    char                     location[256]; /* forward mode: SCC location id */
    bool                     has_location;
    bool                     tls;
    struct ferry_io_tls      tlsopt;
    char                     pool_key[600];
    uint32_t                 upstream_timeout_ms;
    bool                     waiting;       /* on_request waits on I/O (policy.c) */
    struct ferry_user       *user;          /* owns (user_release): the validated user of
                                               a principal-propagation request, or NULL */
    /* An error instead (status != 0): answer it and close. */
    int                      status;
    const char              *reason;
    char                     text[256];
};

/* Copy a slice into a C string of size bytes (truncated, always terminated). */
void slice_copy(char *out, size_t size, const char *p, size_t n);

/* ---- head.c ---------------------------------------------------------------------- */

/* What a field is to the proxy. Names are compared once per field, by length first,
 * instead of once per question asked. */
enum hkind {
    H_OTHER = 0, H_HOP, H_TE, H_UPGRADE, H_HOST, H_XDEST, H_LOC, H_CONSUMER, H_XREQID,
    H_XFF, H_XFP, H_XFH, H_AUTHZ, H_PROXYAUTHZ, H_SAPAUTH, H_SSLCERT, H_KINDS
};
/* One pass over a head's fields: each field's kind, the first and the count of each. */
struct hidx {
    uint8_t                         kind[HTTP_MAX_HEADERS_CAP];
    const struct ferry_http_header *first[H_KINDS];
    unsigned                        count[H_KINDS];
};
void hd_classify(const struct ferry_http_header *h, size_t n, unsigned connection, struct hidx *x);

/* An error answer instead of a head (status, ferry-error reason, text). */
void plan_error(struct http_plan *p, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sb_slice(struct sbuf *b, const struct ferry_http_str *s);
void sb_field(struct sbuf *b, const struct ferry_http_header *h);     /* "name: value\r\n" */
void sb_u(struct sbuf *b, unsigned long v);
void hd_utoa(char *out, size_t size, unsigned v);
bool hd_ieq(const struct ferry_http_str *s, const char *lit);          /* case-insensitive */
void hd_client_ip(struct ferry_conn *c, char *out, size_t size);
/* The client's fields that go on (see head.c); forwarded: X-Forwarded-* are ferry's. */
void hd_copy_fields(struct sbuf *b, const struct ferry_http_header *h, size_t n,
                    const struct hidx *x, bool forwarded, bool drop_auth, bool drop_sapauth);
/* Framing, upgrade and X-Forwarded-* after the client's fields (both modes). */
void hd_add_common(struct ferry_conn *c, const struct http_listener *l,
                   const struct ferry_http_request *req, const struct hidx *x, struct sbuf *b);
/* The client's X-Request-Id when sane (x may be NULL), else a new one. */
void hd_request_id(const struct hidx *x, char *out, size_t size);
void hd_key_join(char *out, size_t size, const char *const *parts, size_t n);
void hd_set_location(struct http_plan *p, const struct ferry_http_header *loc);
/* " HTTP/1.1\r\nHost: host[:port]\r\n" after the request target. */
void hd_add_host(struct sbuf *b, const char *host, uint16_t port, bool default_port);

/* ---- target.c, tenant.c ------------------------------------------------------------ */

/* Transparent mode: the destination of req (the listener's, X-Destination-Name or
 * Host), or NULL with the error in p. */
const struct ferry_dest *target_dest(struct ferry_conn *c, const struct http_listener *l,
                                     const struct ferry_http_request *req, const struct hidx *x,
                                     struct http_plan *p);
/* The destination's TLS settings (https URL, TrustStoreLocation, TrustAll, the client
 * certificate of ClientCertificateAuthentication) into p->tls and p->tlsopt. */
void target_tls(const struct ferry_dest *d, struct http_plan *p);
int  target_forward(const struct ferry_http_request *req, const struct hidx *x,
                    struct http_plan *p);
/* Forward mode: authenticate c as a tenant from Proxy-Authorization. */
int  tenant_auth(struct ferry_conn *c, const struct hidx *x);

/* ---- user.c ------------------------------------------------------------------------- */

/* The user's JWT of the head indexed by x (SAP-Connectivity-Authentication: Bearer; also
 * Authorization: Bearer when authz_ok), checked against tenant's `jwt:` (NULL or "": the
 * connection's tenant); the user goes to p->user. No token: fine unless required. false
 * with the 401 (user-token-missing, user-token-invalid and the failed check) in p. */
bool        user_take(struct ferry_conn *c, const char *tenant, const struct hidx *x,
                      bool authz_ok, bool required, struct http_plan *p);
/* The user's pool-key part ("" without one); NULL when out of memory. */
const char *user_pool_part(struct http_plan *p);
/* Let p->user go (a plan is reset, the connection ends). */
void        user_release(struct http_plan *p);

/* Transparent mode: choose the destination, build the upstream request head; the
 * request id (the client's X-Request-Id, or a new one) goes to reqid. When the
 * destination's on_request waits on I/O, plan->waiting is set and nothing is built:
 * cb(c, v, arg) runs later, and rw_transparent_resume() builds the head then. */
void rw_transparent(struct ferry_conn *c, const struct http_listener *l,
                    const struct ferry_http_request *req, char *reqid, size_t reqid_size,
                    struct http_plan *plan, struct sbuf *head, struct hp_scratch **sc,
                    ferry_policy_cb cb, void *arg);
void rw_transparent_resume(struct ferry_conn *c, const struct http_listener *l,
                           struct hp_scratch *sc, int rc, const struct ferry_policy_verdict *v,
                           const char *reqid, struct http_plan *plan, struct sbuf *head);
/* A new request id (32 hex digits) when there is no parsed request to take one from. */
void rw_request_id(char *out, size_t size);
/* Forward mode (absolute-form or CONNECT): authenticate, choose the target, build the
 * head (not for CONNECT). */
void rw_forward(struct ferry_conn *c, const struct http_listener *l,
                const struct ferry_http_request *req, struct http_plan *plan, struct sbuf *head);
/* The client's response head from the upstream's. conn: 0 no Connection field,
 * RW_CLOSE or RW_KEEP_ALIVE (an HTTP/1.0 client that asked for it). dechunk: the
 * client is HTTP/1.0 and the body is chunked (sent decoded, end by close). */
enum { RW_CLOSE = 1, RW_KEEP_ALIVE = 2 };
void rw_response(const struct http_listener *l, const struct ferry_http_response *resp,
                 const char *request_id, int conn, bool dechunk, struct sbuf *head);
/* One of ferry's own error replies (always with Connection: close); a Retry-After
 * header when retry_after_s is not 0. */
void rw_error(const struct http_listener *l, int status, const char *reason, const char *text,
              const char *request_id, unsigned retry_after_s, struct sbuf *out);
const char *rw_phrase(int status);

/* The destination's on_request / on_response (policy.c): the head as the hook left
 * it (valid until hp_done()), the original when the hook does not exist, or NULL with
 * the answer in plan (policy-denied with the hook's status and reason, token-error,
 * policy-error 500). on_request may also give HP_WAIT: the hook waits on I/O, cb(c, v,
 * arg) runs later and hands v to hp_request_done(). The request's scratch is the
 * connection's (*mine, allocated on first use, hp_free() with the connection). Call
 * hp_done() once the head built from it has been written. */
struct hp_scratch;
#define HP_WAIT ((const struct ferry_http_request *)(uintptr_t)1)
const struct ferry_http_request  *hp_request(struct ferry_conn *c, const struct ferry_dest *d,
                                             const struct ferry_http_request *req,
                                             struct http_plan *plan, struct hp_scratch **mine,
                                             ferry_policy_cb cb, void *arg);
const struct ferry_http_request  *hp_request_done(struct hp_scratch *mine, int rc,
                                                  const struct ferry_policy_verdict *v,
                                                  struct http_plan *plan);
const struct ferry_http_response *hp_response(struct ferry_conn *c, const struct ferry_dest *d,
                                              const struct ferry_http_response *resp,
                                              struct http_plan *plan);
void                              hp_done(struct hp_scratch *sc);  /* NULL: on_response's */
void                              hp_free(struct hp_scratch *sc);

#endif
