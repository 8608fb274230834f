/*
 * client.h: a small asynchronous HTTP/1.1 client for ferry's own calls (OAuth2 token
 * services, policies' ferry.http.request). Runs on any event_base (a worker's, or the
 * main thread's), never blocks, and is bounded: a timeout for the whole exchange and
 * a cap on the response body.
 *
 * The fetch room sits above tls (its contexts come from the TLS context cache) and
 * below auth and lua, its callers. It speaks HTTP through libevent's evhttp, so it
 * needs neither core's HTTP parser nor route/'s dialer; it names no worker: the
 * caller hands it a loop, a resolver and a way back to its thread (a ferry_post).
 *
 * https:// URLs use TLS 1.2+ with SNI and verification as the request's TLS settings
 * say (by default: the system store). The context comes from the cache; when it is
 * not built yet the request waits for it (on the loader's thread, never here).
 */
#ifndef FERRY_FETCH_CLIENT_H
#define FERRY_FETCH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls/cache.h"
#include "util/post.h"

struct event_base;
struct evdns_base;
struct hclient;

struct hclient_header {
    const char *name;
    const char *value;
};

struct hclient_req {
    const char                  *method;      /* "GET", "POST", ... */
    const char                  *url;         /* http[s]://host[:port]/path?query */
    const struct hclient_header *headers;     /* Host, Content-Length: set by the client */
    size_t                       nheaders;
    const void                  *body;
    size_t                       body_len;
    uint32_t                     timeout_ms;  /* 0: 10 s; with on_data: the longest
                                                 silence of the connection */
    size_t                       max_body;    /* 0: 1 MiB; with on_data: the largest
                                                 piece (chunk) held at once, 0: none */
    /* https only. */
    struct ferry_tls_cache      *tls_cache;   /* borrowed: where contexts come from */
    const struct ferry_post     *home;        /* borrowed: this thread, for a context that
                                                 is still being built */
    struct ferry_tls_settings    tls;         /* zero: the system store, verified */
    /* A streamed response (an etcd watch): each piece of the body as it arrives, with
     * the response's status; the body is not kept and cb runs at the end with an
     * empty body. A chunk announced over max_body ends the request before its bytes
     * are read (too_large). NULL: the whole body, to cb. Same arg. */
    void                       (*on_data)(int status, const void *data, size_t len,
                                          void *arg);
};

struct hclient_resp {
    int                          status;      /* 0 when there is no response */
    const char                  *error;       /* NULL, or why there is no response */
    bool                         too_large;   /* the body (or one piece) over max_body */
    const char                  *body;        /* NUL-terminated copy */
    size_t                       body_len;
    const struct hclient_header *headers;
    size_t                       nheaders;
};

/* Runs once, from the loop; r and everything in it are valid during the call only. */
typedef void (*hclient_cb)(const struct hclient_resp *r, void *arg);

/* Start a request. NULL if it could not even start (bad URL, out of memory, https
 * without a cache): then *why says so and cb never runs. */
struct hclient *hclient_request(struct event_base *base, struct evdns_base *dns,
                                const struct hclient_req *rq, hclient_cb cb, void *arg,
                                const char **why);
/* Give up on a request: its cb will not run. */
void hclient_cancel(struct hclient *h);

#endif
