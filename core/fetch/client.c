/*
 * client.c: ferry's outbound HTTP calls (client.h), on libevent's evhttp client with
 * an OpenSSL bufferevent for https. One connection per request (token services are
 * called rarely: the token cache makes sure of that), Connection: close.
 *
 * A request starts in two steps: the message (head and body) is built at once; the
 * connection is made when the TLS context is there, which for https may be a moment
 * later (the cache builds it on the main thread and answers through h->home).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>     /* body_size: see on_chunk */
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ferry/err.h>

#include "fetch/client.h"
#include "tls/tls.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BODY   (1024 * 1024)
#define MAX_RESP_HEADERS   64

struct hclient {
    struct event_base          *base;
    struct evdns_base          *dns;
    struct evhttp_connection   *evcon;
    struct evhttp_request      *req;        /* ours until made, then evhttp's */
    bool                        made;       /* evhttp_make_request took req */
    struct bufferevent         *bev;
    SSL                        *ssl;        /* owned by bev */
    struct ferry_tls_wait      *tls_wait;   /* a context still being built */
    hclient_cb                  cb;
    void                       *arg;
    void                      (*on_data)(int status, const void *data, size_t len, void *arg);
    bool                        cancelled, done;
    enum evhttp_request_error   err;
    bool                        have_err;
    enum evhttp_cmd_type        method;
    uint16_t                    port;
    uint32_t                    timeout_ms;
    size_t                      max_body;
    char                        host[256];
    char                       *target;     /* owns: path and query */
};

static void
hclient_free_later(evutil_socket_t fd, short what, void *arg)
{
    struct hclient *h = arg;

    (void)fd;
    (void)what;
    if (h->evcon != NULL)
        evhttp_connection_free(h->evcon);   /* with a made request, frees it too */
    if (h->req != NULL && !h->made)
        evhttp_request_free(h->req);
    free(h->target);
    free(h);
}

static const char *
err_text(struct hclient *h, char *buf, size_t size)
{
    unsigned long e = h->bev != NULL && h->ssl != NULL ? bufferevent_get_openssl_error(h->bev) : 0;

    if (h->ssl != NULL) {
        long vr = SSL_get_verify_result(h->ssl);

        if (vr != X509_V_OK) {
            snprintf(buf, size, "TLS: certificate verify failed: %s",
                     X509_verify_cert_error_string(vr));
            return buf;
        }
        if (e != 0) {
            char tmp[160];

            ERR_error_string_n(e, tmp, sizeof(tmp));
            snprintf(buf, size, "TLS: %s", tmp);
            return buf;
        }
    }
    if (!h->have_err)
        return "no response";
    switch (h->err) {
    case EVREQ_HTTP_TIMEOUT:        return "timed out";
    case EVREQ_HTTP_EOF:            return "connection closed (refused or reset)";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid response head";
    case EVREQ_HTTP_BUFFER_ERROR:   return "connection failed";
    case EVREQ_HTTP_DATA_TOO_LONG:  return "response body too large";
    default:                        return "request failed";
    }
}

static void
on_error(enum evhttp_request_error err, void *arg)
{
    struct hclient *h = arg;

    h->err = err;
    h->have_err = true;
}

static void
on_done(struct evhttp_request *req, void *arg)
{
    struct hclient       *h = arg;
    struct hclient_resp   r = { 0 };
    struct hclient_header hdrs[MAX_RESP_HEADERS];
    char                  why[256];
    char                 *body = NULL;
    static const struct timeval now = { 0, 0 };

    if (h->done)
        return;
    h->done = true;
    h->req = NULL;                  /* evhttp frees it after this callback */
    if (!h->cancelled) {
        int code = req != NULL ? evhttp_request_get_response_code(req) : 0;

        if (code == 0) {
            r.error = err_text(h, why, sizeof(why));
            r.too_large = h->have_err && h->err == EVREQ_HTTP_DATA_TOO_LONG;
        } else {
            struct evbuffer    *in = evhttp_request_get_input_buffer(req);
            struct evkeyvalq   *kv = evhttp_request_get_input_headers(req);
            struct evkeyval    *e;
            size_t              n = evbuffer_get_length(in);

            r.status = code;
            if ((body = malloc(n + 1)) == NULL) {
                r.status = 0;
                r.error = "out of memory";
            } else {
                evbuffer_copyout(in, body, n);
                body[n] = '\0';
                r.body = body;
                r.body_len = n;
            }
            for (e = kv->tqh_first; e != NULL; e = e->next.tqe_next) {
                if (r.nheaders == MAX_RESP_HEADERS)
                    break;
                hdrs[r.nheaders].name = e->key;
                hdrs[r.nheaders].value = e->value;
                r.nheaders++;
            }
            r.headers = hdrs;
        }
        h->cb(&r, h->arg);
    }
    free(body);
    /* The connection may not be freed from inside its own callback. */
    event_base_once(h->base, -1, EV_TIMEOUT, hclient_free_later, h, &now);
}

/* A streamed response: hand each piece over as it arrives (evhttp drains it after). */
static void
on_chunk(struct evhttp_request *req, void *arg)
{
    struct hclient  *h = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t           n = evbuffer_get_length(in);

    /* evhttp counts a response's bytes from its start against max_body_size, and a
     * stream has no end: start the count again with each piece, so that the bound is
     * the largest chunk. evhttp checks it when a chunk's size line arrives, before
     * buffering the chunk: without a bound, one chunk announcing 4 GiB was held whole
     * in memory before the caller saw a byte of it. */
    req->body_size = 0;
    if (h->cancelled || h->done || n == 0)
        return;
    h->on_data(evhttp_request_get_response_code(req), evbuffer_pullup(in, -1), n, h->arg);
}

static enum evhttp_cmd_type
method_of(const char *m)
{
    if (strcmp(m, "POST") == 0)   return EVHTTP_REQ_POST;
    if (strcmp(m, "PUT") == 0)    return EVHTTP_REQ_PUT;
    if (strcmp(m, "DELETE") == 0) return EVHTTP_REQ_DELETE;
    if (strcmp(m, "PATCH") == 0)  return EVHTTP_REQ_PATCH;
    if (strcmp(m, "HEAD") == 0)   return EVHTTP_REQ_HEAD;
    return EVHTTP_REQ_GET;
}

/* Connect and send (ctx: a reference, taken; NULL for http). NULL, or why not. */
static const char *
hclient_connect(struct hclient *h, SSL_CTX *ctx)
{
    struct timeval tv = { h->timeout_ms / 1000, (h->timeout_ms % 1000) * 1000 };

    if (ctx != NULL) {
        h->ssl = tls_client_ssl(ctx, -1, h->host);
        SSL_CTX_free(ctx);                  /* the SSL holds its own reference */
        if (h->ssl == NULL)
            return "out of memory";
        h->bev = bufferevent_openssl_socket_new(h->base, -1, h->ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (h->bev == NULL) {
            SSL_free(h->ssl);
            h->ssl = NULL;
            return "out of memory";
        }
        bufferevent_openssl_set_allow_dirty_shutdown(h->bev, 1);
    } else if ((h->bev = bufferevent_socket_new(h->base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
        return "out of memory";
    }
    if ((h->evcon = evhttp_connection_base_bufferevent_new(h->base, h->dns, h->bev, h->host,
                                                           h->port)) == NULL) {
        bufferevent_free(h->bev);
        return "out of memory";
    }
    evhttp_connection_set_timeout_tv(h->evcon, &tv);
    evhttp_connection_set_retries(h->evcon, 0);
    evhttp_connection_set_max_body_size(h->evcon, (ev_ssize_t)h->max_body);
    h->made = true;             /* evhttp owns req from here, even when this fails */
    if (evhttp_make_request(h->evcon, h->req, h->method, h->target) != 0) {
        h->req = NULL;
        return "cannot send the request";
    }
    return NULL;
}

/* The request failed after hclient_request() returned: answer from the loop. */
static void
hclient_fail_later(struct hclient *h, const char *why)
{
    static const struct timeval now = { 0, 0 };
    struct hclient_resp         r = { .status = 0, .error = why };

    h->done = true;
    if (!h->cancelled)
        h->cb(&r, h->arg);
    event_base_once(h->base, -1, EV_TIMEOUT, hclient_free_later, h, &now);
}

/* The TLS context the request waited for (on its own thread, from the loop). */
static void
hclient_tls_ready(SSL_CTX *ctx, const char *why, void *arg)
{
    struct hclient *h = arg;
    char            msg[300];
    const char     *err;

    h->tls_wait = NULL;
    if (ctx == NULL) {
        snprintf(msg, sizeof(msg), "TLS settings: %s", why);
        hclient_fail_later(h, msg);
        return;
    }
    if ((err = hclient_connect(h, ctx)) != NULL)
        hclient_fail_later(h, err);
}

struct hclient *
hclient_request(struct event_base *base, struct evdns_base *dns, const struct hclient_req *rq,
                hclient_cb cb, void *arg, const char **why)
{
    struct evhttp_uri *uri = evhttp_uri_parse(rq->url);
    struct hclient    *h = NULL;
    const char        *scheme, *host, *path, *query;
    int                port;
    bool               tls;
    char               target[2048], hosthdr[300];
    SSL_CTX           *ctx = NULL;

    *why = NULL;
    if (uri == NULL || (scheme = evhttp_uri_get_scheme(uri)) == NULL ||
        (host = evhttp_uri_get_host(uri)) == NULL || *host == '\0' ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        *why = "not an http:// or https:// URL";
        goto fail;
    }
    tls = strcasecmp(scheme, "https") == 0;
    if (tls && (rq->tls_cache == NULL || rq->home == NULL)) {
        *why = "https: no TLS context cache here";
        goto fail;
    }
    port = evhttp_uri_get_port(uri);
    if (port <= 0)
        port = tls ? 443 : 80;
    path = evhttp_uri_get_path(uri);
    query = evhttp_uri_get_query(uri);
    snprintf(target, sizeof(target), "%s%s%s", path != NULL && *path ? path : "/",
             query != NULL ? "?" : "", query != NULL ? query : "");
    if ((h = calloc(1, sizeof(*h))) == NULL || (h->target = strdup(target)) == NULL) {
        *why = "out of memory";
        goto fail;
    }
    h->base = base;
    h->dns = dns;
    h->cb = cb;
    h->arg = arg;
    h->method = method_of(rq->method);
    h->port = (uint16_t)port;
    h->timeout_ms = rq->timeout_ms != 0 ? rq->timeout_ms : DEFAULT_TIMEOUT_MS;
    h->max_body = rq->max_body != 0 ? rq->max_body : DEFAULT_MAX_BODY;
    if ((h->on_data = rq->on_data) != NULL)     /* per piece: see on_chunk */
        h->max_body = rq->max_body != 0 ? rq->max_body : (size_t)EV_SSIZE_MAX;
    snprintf(h->host, sizeof(h->host), "%s", host);
    if ((h->req = evhttp_request_new(on_done, h)) == NULL) {
        *why = "out of memory";
        goto fail;
    }
    evhttp_request_set_error_cb(h->req, on_error);
    if (h->on_data != NULL)
        evhttp_request_set_chunked_cb(h->req, on_chunk);
    if ((tls && port == 443) || (!tls && port == 80))
        snprintf(hosthdr, sizeof(hosthdr), "%s", host);
    else
        snprintf(hosthdr, sizeof(hosthdr), "%s:%d", host, port);
    evhttp_add_header(evhttp_request_get_output_headers(h->req), "Host", hosthdr);
    evhttp_add_header(evhttp_request_get_output_headers(h->req), "Connection", "close");
    for (size_t i = 0; i < rq->nheaders; i++)
        evhttp_add_header(evhttp_request_get_output_headers(h->req), rq->headers[i].name,
                          rq->headers[i].value);
    if (rq->body_len > 0)
        evbuffer_add(evhttp_request_get_output_buffer(h->req), rq->body, rq->body_len);
    if (tls) {
        switch (ferry_tls_cache_get(rq->tls_cache, &rq->tls, rq->home, hclient_tls_ready, h,
                                    &ctx, &h->tls_wait)) {
        case FERRY_OK:
            break;
        case FERRY_EAGAIN:
            evhttp_uri_free(uri);           /* hclient_tls_ready connects */
            return h;
        default:
            *why = "TLS settings: too many contexts loading, or out of memory";
            goto fail;
        }
    }
    if ((*why = hclient_connect(h, ctx)) != NULL)
        goto fail;
    evhttp_uri_free(uri);
    return h;
fail:
    if (h != NULL) {
        if (h->evcon != NULL)
            evhttp_connection_free(h->evcon);
        if (h->req != NULL && !h->made)
            evhttp_request_free(h->req);
        free(h->target);
        free(h);
    }
    if (uri != NULL)
        evhttp_uri_free(uri);
    return NULL;
}

void
hclient_cancel(struct hclient *h)
{
    static const struct timeval now = { 0, 0 };

    if (h == NULL || h->cancelled)
        return;
    h->cancelled = true;
    ferry_tls_cache_cancel(h->tls_wait);    /* its answer is dropped, not delivered */
    h->tls_wait = NULL;
    if (!h->done) {
        /* Freeing the connection drops its pending request without a callback. */
        h->done = true;
        event_base_once(h->base, -1, EV_TIMEOUT, hclient_free_later, h, &now);
    }
}
