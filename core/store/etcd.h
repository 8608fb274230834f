/*
 * etcd.h: a small client of etcd's v3 JSON API (the grpc-gateway etcd serves beside
 * gRPC on its client port: POST /v3/kv/range, /v3/kv/txn, /v3/watch, /v3/lease/...,
 * /v3/auth/authenticate), on ferry's own HTTP client (fetch/client.h) and jansson.
 * No gRPC library: every call is one HTTP/1.1 POST of a JSON body.
 *
 * Everything runs on the loop the client was made with (the main thread's) and never
 * blocks it. Every call has a timeout. Endpoints are tried in turn: a call that cannot
 * reach one endpoint (connection refused, reset, timed out, "no leader") goes on to the
 * next, starting from the last one that answered, and fails only when each was tried
 * once; the caller retries with its own backoff. With `user`, the client authenticates
 * first (/v3/auth/authenticate) and sends the token as a bare Authorization header; a
 * token etcd no longer knows is fetched again, once per call.
 *
 * Keys and values are base64 in the JSON API; the helpers below encode and decode them.
 * Revisions are int64 in etcd and strings in its JSON: etcd_int() reads either.
 */
#ifndef FERRY_STORE_ETCD_H
#define FERRY_STORE_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct event_base;
struct evdns_base;
struct ferry_tls_cache;
struct ferry_conf_store;
struct etcd;
struct etcd_call;
struct etcd_watch;

/* base: the loop everything runs on; tls: where https contexts come from (NULL: only
 * http:// endpoints work). sc is copied. NULL on out of memory. */
struct etcd *etcd_new(struct event_base *base, struct evdns_base *dns,
                      struct ferry_tls_cache *tls, const struct ferry_conf_store *sc);
/* Cancels every call and watch still running (their callbacks do not run). */
void etcd_free(struct etcd *e);

/* The endpoint that answered last, for logs. */
const char *etcd_endpoint(const struct etcd *e);

/* A unary call's answer: result is the response object (borrowed, valid during the
 * call), or NULL with why (never a secret). status: the HTTP status (0: no answer).
 * code: etcd's gRPC code from an error body (e.g. 9 FailedPrecondition), else 0. */
struct etcd_reply {
    json_t     *result;
    const char *why;
    int         status;
    int         code;
};
typedef void (*etcd_cb)(const struct etcd_reply *r, void *arg);

/* POST path (e.g. "/v3/kv/range") with body (stolen, also on failure). cb runs once,
 * from the loop, never inside this call; NULL on out of memory (cb never runs). */
struct etcd_call *etcd_call(struct etcd *e, const char *path, json_t *body, uint32_t timeout_ms,
                            etcd_cb cb, void *arg);
/* cb will not run. NULL is fine. */
void etcd_call_cancel(struct etcd_call *c);

/* A watch stream (/v3/watch with one create_request): msg runs for each message
 * etcd sends (the object under "result"; borrowed), end runs once when the stream is
 * over, with why (never NULL): the connection closed, no data for idle_ms, a message
 * that is not JSON or over 64 MiB, or an error object. broken: etcd's answers were not
 * what its API promises (not JSON, no result, too big). After end, the watch is freed. */
typedef void (*etcd_watch_msg_cb)(json_t *result, void *arg);
typedef void (*etcd_watch_end_cb)(const char *why, bool broken, void *arg);
struct etcd_watch *etcd_watch(struct etcd *e, json_t *create_request, uint32_t idle_ms,
                              etcd_watch_msg_cb msg, etcd_watch_end_cb end, void *arg);
/* Neither callback runs any more. NULL is fine. */
void etcd_watch_cancel(struct etcd_watch *w);

/* Helpers. A JSON string of base64(s, n), or NULL on out of memory. */
json_t *etcd_b64(const void *s, size_t n);
json_t *etcd_b64s(const char *s);
/* Decode a base64 JSON string into a NUL-terminated malloc'ed buffer (*len without
 * the NUL). NULL if v is absent, not a string, not base64, or over max bytes. An absent
 * value (etcd omits empty ones) gives "" when allow_absent. */
char   *etcd_unb64(const json_t *v, size_t max, size_t *len, bool allow_absent);
/* An int64 that etcd's JSON writes as a string ("123") or a number; def if absent. */
int64_t etcd_int(const json_t *obj, const char *key, int64_t def);
/* The key just after every key starting with prefix (range_end for a prefix). */
json_t *etcd_prefix_end(const char *prefix);

#endif
