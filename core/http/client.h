/*
 * client.h: a small asynchronous HTTP/1.1 client for ferry's own calls (OAuth2 token
 * services, policies' ferry.http.request). Runs on any event_base (a worker's, or the
 * main thread's), never blocks, and is bounded: a timeout for the whole exchange and
 * a cap on the response body.
 *
 * https:// URLs use TLS 1.2+ with SNI and verification against the system store plus
 * an optional CA file (insecure skips it) and an optional client certificate.
 */
#ifndef FERRY_HTTP_CLIENT_H
#define FERRY_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    uint32_t                     timeout_ms;  /* 0: 10 s */
    size_t                       max_body;    /* 0: 1 MiB */
    const char                  *ca_file;     /* https: extra trusted CAs (PEM) */
    const char                  *cert_file;   /* https: client certificate (PEM) */
    const char                  *key_file;
    bool                         insecure;    /* https: no verification */
};

struct hclient_resp {
    int                          status;      /* 0 when there is no response */
    const char                  *error;       /* NULL, or why there is no response */
    const char                  *body;        /* NUL-terminated copy */
    size_t                       body_len;
    const struct hclient_header *headers;
    size_t                       nheaders;
};

/* Runs once, from the loop; r and everything in it are valid during the call only. */
typedef void (*hclient_cb)(const struct hclient_resp *r, void *arg);

/* Start a request. NULL if it could not even start (bad URL, out of memory): then
 * *why says so and cb never runs. */
struct hclient *hclient_request(struct event_base *base, struct evdns_base *dns,
                                const struct hclient_req *rq, hclient_cb cb, void *arg,
                                const char **why);
/* Give up on a request: its cb will not run. */
void hclient_cancel(struct hclient *h);

#endif
