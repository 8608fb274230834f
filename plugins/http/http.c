/*
 * http.c: the `http` plugin: HTTP/1.1 proxy in transparent mode (call
 * http://<destination>/..., ferry adds the destination's URL, headers, queries and
 * credentials) and forward mode (the Connectivity proxy: absolute-form and CONNECT
 * from authenticated tenants).
 *
 * One connection runs this state machine, driven by the events of its two streams
 * (ferry/io.h):
 *
 *   HEAD      parse a request head from the client (strict parser, limits, timeouts)
 *   POLICY    the destination's on_request waits on I/O (an OAuth2 token): the head is
 *             consumed (the policy holds a copy), the body waits in the input buffer
 *   OPEN      an upstream from the keep-alive pool, or a new one (direct, TLS, tunnel)
 *   EXCHANGE  request head + body up, response head + body down, both streamed;
 *             then back to HEAD (keep-alive) or close
 *   TUNNEL    raw bytes both ways (CONNECT, 101 Switching Protocols)
 *
 * Bodies are never held whole: bytes are forwarded as they arrive, and a direction
 * stops consuming its input when the other side has PENDING_HIGH bytes queued, so the
 * input buffer fills and core stops reading that socket (backpressure end to end).
 * Chunked bodies pass through as received; the decoder only finds where they end
 * (and rejects bad framing). Every failure ferry answers itself carries `ferry-error`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ferry/dest.h>
#include <ferry/err.h>
#include <ferry/log.h>
#include <ferry/opts.h>
#include <ferry/plugin.h>
#include <ferry/policy.h>

#include "http-int.h"

#define PENDING_HIGH (256u * 1024)      /* stop reading the other side past this */
#define DRIVE_ROUNDS 64                 /* bounded work per event */

enum phase { PH_HEAD, PH_POLICY, PH_OPEN, PH_EXCHANGE, PH_TUNNEL, PH_DONE };

struct hconn {
    struct ferry_conn    *c;
    struct http_listener *l;
    struct ferry_io      *cio, *uio;
    enum phase            phase;
    unsigned              nreq;              /* requests finished on this connection */
    uint64_t              head_t0;           /* first byte of the current head */
    /* The request. */
    enum ferry_http_method method;
    char                  method_name[24];
    char                  path[160];         /* for the access log; no query */
    char                  reqid[40];
    uint32_t              retry_after_s;     /* rate: refused, for Retry-After (else 0) */
    unsigned              client_minor;
    bool                  client_keep;
    bool                  connect_req, upgrade_req;
    enum ferry_http_body  req_body;
    uint64_t              req_left;
    struct ferry_http_chunked *req_ch;       /* owns (h_free), like parser, resp_ch */
    bool                  req_done;
    bool                  req_has_body;
    struct http_plan     *plan;              /* owns; NULL like parser until a head */
    struct ferry_http_parser *parser;        /* request and response heads; allocated
                                                (h_work) once a whole head is in: a slow
                                                client's partial head costs none of it */
    size_t                head_scan;         /* head bytes searched for its end so far */
    bool                  head_bad;          /* ...and a byte no head holds was found */
    struct hp_scratch    *scratch;           /* owns: on_request's copy of the head */
    struct sbuf           head;              /* upstream request head: kept for a retry */
    bool                  from_pool, retried;
    bool                  recorded;
    /* The response. */
    bool                  resp_head_done;
    enum ferry_http_body  resp_body;
    uint64_t              resp_left;
    struct ferry_http_chunked *resp_ch;
    bool                  resp_done;
    int                   status;
    bool                  dechunk, close_after, upstream_keep;
    bool                  c_eof_done, u_eof_done; /* tunnel: FIN passed on */
    /* Accounting. */
    uint64_t              t0, t_sent, t_head;
    uint64_t              bytes_in, bytes_out;
};

static void h_drive(struct hconn *h);
static void h_open(struct hconn *h, bool allow_pool);
static long pump_body(struct ferry_io *from, struct ferry_io *to, enum ferry_http_body kind,
                      uint64_t *left, struct ferry_http_chunked *ch, bool dechunk, bool *done,
                      const struct sbuf *prefix);

/* ---- records and errors ---------------------------------------------------------------- */

static void
h_record(struct hconn *h, int status, const char *outcome)
{
    struct ferry_request_record r = FERRY_REQUEST_RECORD_INIT;
    uint64_t                    now = ferry_now_us();

    if (h->recorded || h->t0 == 0)
        return;
    h->recorded = true;
    r.method = h->method_name;
    r.path = h->path;
    r.dest = h->plan != NULL ? h->plan->dest : NULL;
    r.target = h->uio != NULL                          ? ferry_io_target(h->uio)
               : h->plan != NULL && h->plan->host[0] ? h->plan->host
                                                     : NULL;
    r.request_id = h->reqid[0] ? h->reqid : NULL;
    r.status = status;
    r.bytes_in = h->bytes_in;
    r.bytes_out = h->bytes_out;
    r.upstream_us = h->t_head > h->t_sent && h->t_sent != 0 ? h->t_head - h->t_sent : 0;
    r.total_us = now - h->t0;
    r.outcome = outcome;
    ferry_conn_request_done(h->c, &r);
}

static void
h_close(struct hconn *h, const char *outcome)
{
    if (h->phase == PH_DONE)
        return;
    h->phase = PH_DONE;
    sb_free(&h->head);
    if (h->uio != NULL) {
        ferry_io_close(h->uio);
        h->uio = NULL;
    }
    ferry_conn_close(h->c, outcome);
}

/* Answer with one of ferry's errors (if the response has not started) and close. */
static void
h_fail(struct hconn *h, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
h_fail(struct hconn *h, int status, const char *reason, const char *fmt, ...)
{
    char        text[300];
    va_list     ap;
    struct sbuf out = { 0 };

    if (h->phase == PH_DONE)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (h->t0 == 0)
        h->t0 = ferry_now_us();
    if (!h->resp_head_done) {
        if (!h->l->forward && h->reqid[0] == '\0')
            rw_request_id(h->reqid, sizeof(h->reqid));
        rw_error(h->l, status, reason, text, h->reqid[0] ? h->reqid : NULL, h->retry_after_s,
                 &out);
        if (!out.oom) {
            ferry_io_write(h->cio, out.p, out.len);
            h->bytes_out += out.len;
        }
        sb_free(&out);
        h_record(h, status, reason);
    } else {
        h_record(h, h->status, reason);
    }
    ferry_log(ferry_conn_log(h->c), status >= 500 ? FERRY_WARN : FERRY_INFO, "request failed",
              FLOG_INT("status", status), FLOG_STR("error", reason), FLOG_STR("detail", text),
              FLOG_STR("destination", h->plan != NULL && h->plan->dest != NULL
                                          ? ferry_dest_name(h->plan->dest) : NULL));
    h_close(h, reason);
}

/* The request body's chunked framing is broken: 400 with the decoder's reason. */
static void
h_fail_chunked(struct hconn *h)
{
    const char *reason, *detail;

    ferry_http_chunked_error(h->req_ch, &reason, &detail);
    h_fail(h, 400, reason != NULL ? reason : "bad-chunked",
           "the request body's chunked framing is invalid (%s)",
           detail != NULL ? detail : "syntax");
}

/* ---- request head ---------------------------------------------------------------------- */

static void
h_start_head(struct hconn *h)
{
    h->phase = PH_HEAD;
    h->head_t0 = 0;
    h->t0 = h->t_sent = h->t_head = 0;
    h->bytes_in = h->bytes_out = 0;
    h->recorded = false;
    h->resp_head_done = h->resp_done = h->req_done = false;
    h->from_pool = h->retried = false;
    h->c_eof_done = h->u_eof_done = false;
    h->reqid[0] = '\0';
    h->path[0] = '\0';
    h->method_name[0] = '\0';
    h->status = 0;
    h->head_scan = 0;
    h->head_bad = false;
    if (h->plan != NULL) {
        user_release(h->plan);
        memset(h->plan, 0, sizeof(*h->plan));
    }
    h->head.len = 0;                    /* the buffer is kept for the next request */
    ferry_io_timeout(h->cio, h->nreq == 0 ? h->l->request_timeout_ms : h->l->keepalive_timeout_ms);
}

static const char *
reject_text(const char *reason)
{
    if (strncmp(reason, "smuggling", 9) == 0 || strstr(reason, "content-length") != NULL ||
        strstr(reason, "transfer-encoding") != NULL)
        return "ambiguous message framing refused (request smuggling protection)";
    if (strcmp(reason, "uri-too-long") == 0)
        return "the request target is too long";
    if (strstr(reason, "too-large") != NULL || strstr(reason, "too-many") != NULL)
        return "the request head is too large";
    return "the request is not valid HTTP/1.1";
}

/* The head is rewritten (or refused): go on to the upstream. */
static bool
h_head_done(struct hconn *h)
{
    if (h->plan->status != 0) {
        h_fail(h, h->plan->status, h->plan->reason, "%s", h->plan->text);
        return false;
    }
    if (h->head.oom) {
        h_fail(h, 431, "header-too-large", "the rewritten request head is too large");
        return false;
    }
    ferry_io_timeout(h->cio, 0);
    h_open(h, true);
    return true;
}

/* on_request waited and has its verdict (from the loop, on this worker). */
static void
h_policy_done(struct ferry_conn *c, const struct ferry_policy_verdict *v, void *arg)
{
    struct hconn *h = arg;

    (void)c;
    if (h->phase != PH_POLICY)
        return;
    rw_transparent_resume(h->c, h->l, h->scratch, FERRY_OK, v, h->reqid, h->plan, &h->head);
    h->phase = PH_HEAD;                 /* h_open moves it on */
    if (h_head_done(h))
        h_drive(h);
}

/* What a request needs beyond the connection: the parser (its field array is most of
 * it), the chunked decoders and the plan. Allocated when the first whole head is in, so
 * that 10,000 clients trickling heads cost a few hundred bytes each, not 10 KiB. */
static bool
h_work(struct hconn *h)
{
    if (h->parser != NULL)
        return true;
    /* Requests are bounded by the listener's max_headers, responses by the cap. */
    if ((h->plan = calloc(1, sizeof(*h->plan))) == NULL ||
        (h->req_ch = ferry_http_chunked_new()) == NULL ||
        (h->resp_ch = ferry_http_chunked_new()) == NULL ||
        (h->parser = ferry_http_parser_new(HTTP_MAX_HEADERS_CAP)) == NULL)
        return false;
    return true;
}

/* Whether data[0..len) is worth a parse: it holds the end of a head (an empty line), is
 * as long as a head may be (the parser refuses it), or has a byte no head can hold (a
 * TLS hello, binary: refused now, not at the head timeout). Until then a partial head is
 * only searched, from where the last search ended: linear in the bytes however slowly
 * they come, where a parse from the start per arrival would be quadratic. */
static bool
h_head_ready(struct hconn *h, const uint8_t *data, size_t len)
{
    size_t i = h->head_scan > 2 ? h->head_scan - 2 : 0;

    if (len >= h->l->lim.max_head_bytes)
        return true;
    for (; i < len; i++) {
        uint8_t b = data[i];

        if (b == '\n') {
            if ((i >= 1 && data[i - 1] == '\n') ||
                (i >= 2 && data[i - 1] == '\r' && data[i - 2] == '\n'))
                return true;
        } else if ((b < 0x20 && b != '\r' && b != '\t') || b == 0x7f) {
            h->head_bad = true;
            return true;
        }
    }
    h->head_scan = len;
    return false;
}

/* Returns true when it made progress (a head was taken). */
static bool
h_read_head(struct hconn *h)
{
    const struct ferry_http_request *rq;
    const uint8_t                   *data;
    size_t                           len = ferry_io_peek(h->cio, &data);
    int                              rc;

    if (len == 0) {
        if (ferry_io_eof(h->cio) || ferry_io_error(h->cio, NULL) != 0)
            h_close(h, h->nreq > 0 ? "ok" : "client-closed");
        return false;
    }
    if (h->head_t0 == 0) {
        /* The first byte: from now on the whole head must arrive in request_timeout. */
        h->head_t0 = ferry_now_us();
        if (h->nreq > 0)
            ferry_io_timeout(h->cio, h->l->request_timeout_ms);
    } else if (ferry_now_us() - h->head_t0 > (uint64_t)h->l->request_timeout_ms * 1000) {
        h_fail(h, 408, "request-timeout", "the request head did not arrive within %u ms",
               h->l->request_timeout_ms);
        return false;
    }
    if (!h_head_ready(h, data, len)) {
        if (ferry_io_eof(h->cio))
            h_close(h, "client-closed");
        return false;
    }
    if (!h_work(h)) {
        h_fail(h, 503, "no-memory", "out of memory");
        return false;
    }
    rq = ferry_http_parser_request(h->parser);
    ferry_http_parser_reset(h->parser);     /* the bytes are whole again: from the start */
    rc = ferry_http_parser_request_head(h->parser, (const char *)data, len, &h->l->lim);
    if (rc == 0 && h->head_bad) {
        /* The parser waits for the line's end to judge it; no end makes it valid. */
        h->t0 = ferry_now_us();
        h_fail(h, 400, "bad-request", "the request is not valid HTTP/1.1 (a control byte "
               "in the head)");
        return false;
    }
    if (rc == 0) {
        if (ferry_io_eof(h->cio))
            h_close(h, "client-closed");
        return false;
    }
    h->t0 = ferry_now_us();
    if (rc < 0) {
        h_fail(h, rq->status, rq->reason, "%s (%s)", reject_text(rq->reason), rq->reason);
        return false;
    }
    h->method = rq->method;
    slice_copy(h->method_name, sizeof(h->method_name), rq->method_name.ptr, rq->method_name.len);
    slice_copy(h->path, sizeof(h->path), rq->path.ptr, rq->path.len);
    h->client_minor = rq->version_minor;
    h->client_keep = rq->keep_alive;
    h->req_body = rq->body;
    h->req_left = rq->content_length;
    h->req_has_body = rq->body == FERRY_HTTP_BODY_CHUNKED ||
                      (rq->body == FERRY_HTTP_BODY_LENGTH && rq->content_length > 0);
    ferry_http_chunked_reset(h->req_ch);
    h->connect_req = rq->method == FERRY_HTTP_CONNECT;
    h->upgrade_req = rq->upgrade && (rq->connection & FERRY_HTTP_CONN_UPGRADE) != 0;
    user_release(h->plan);
    memset(h->plan, 0, sizeof(*h->plan));
    h->head.len = 0;
    h->head.oom = false;
    /* The listener's rate: counts requests, each one here, before any work for it
     * (policy, token fetch, upstream). */
    if (ferry_conn_rate_take(h->c, &h->retry_after_s) != FERRY_OK) {
        ferry_io_consume(h->cio, (size_t)rc);
        h_fail(h, 429, "rate-limited", "too many requests from this client; retry in %u s",
               h->retry_after_s);
        return false;
    }
    if (h->connect_req && !h->l->forward) {
        ferry_io_consume(h->cio, (size_t)rc);
        h_fail(h, 405, "method-not-allowed", "CONNECT is for forward-mode listeners");
        return false;
    }
    if (rq->form == FERRY_HTTP_FORM_ASTERISK) {
        ferry_io_consume(h->cio, (size_t)rc);
        h_fail(h, 400, "bad-request", "OPTIONS * is not proxied");
        return false;
    }
    /* The head is rewritten while its bytes are still in the input buffer (the
     * parser's slices point there); only then is it consumed. */
    if (h->l->forward)
        rw_forward(h->c, h->l, rq, h->plan, &h->head);
    else
        rw_transparent(h->c, h->l, rq, h->reqid, sizeof(h->reqid), h->plan, &h->head,
                       &h->scratch, h_policy_done, h);
    ferry_io_consume(h->cio, (size_t)rc);
    if (h->plan->waiting) {
        h->phase = PH_POLICY;           /* h_policy_done goes on; the policy has its deadline */
        ferry_io_timeout(h->cio, 0);
        return false;
    }
    return h_head_done(h);
}

/* ---- upstream --------------------------------------------------------------------------- */

static void
h_up_cb(struct ferry_io *io, unsigned ev, void *arg)
{
    struct hconn *h = arg;

    (void)io;
    if (h->phase == PH_DONE)
        return;
    if (ev & FERRY_IO_TIMEOUT) {
        if (h->phase == PH_EXCHANGE && !h->resp_head_done)
            h_fail(h, 504, "upstream-timeout", "the upstream did not answer within %u ms",
                   h->plan->upstream_timeout_ms);
        else
            h_fail(h, 504, "upstream-timeout", "the upstream stalled for %u ms",
                   h->plan->upstream_timeout_ms);
        return;
    }
    h_drive(h);
}

/* Upstream ready: send the head (or answer the CONNECT). */
static void
h_upstream_ready(struct hconn *h)
{
    ferry_io_set_cb(h->uio, h_up_cb, h);
    h->t_sent = ferry_now_us();
    if (h->connect_req) {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

        ferry_io_write(h->cio, ok, sizeof(ok) - 1);
        h->bytes_out += sizeof(ok) - 1;
        h->status = 200;
        h->t_head = h->t_sent;
        h->resp_head_done = true;
        h->phase = PH_TUNNEL;
        return;
    }
    h->phase = PH_EXCHANGE;
    if (!h->req_has_body) {
        ferry_io_write(h->uio, h->head.p, h->head.len);
        h->req_done = true;
        ferry_io_timeout(h->uio, h->plan->upstream_timeout_ms);
    } else {
        /* The head and the body bytes already here leave in one write. */
        long n = pump_body(h->cio, h->uio, h->req_body, &h->req_left, h->req_ch, false,
                           &h->req_done, &h->head);

        if (n < 0) {
            h_fail_chunked(h);
            return;
        }
        h->bytes_in += (uint64_t)n;
        if (h->req_done) {
            ferry_io_timeout(h->uio, h->plan->upstream_timeout_ms);
        } else {
            /* The body is the client's to send: its silence is a 408, not a 504. */
            ferry_io_timeout(h->cio, h->l->request_timeout_ms);
        }
    }
}

static void
h_on_open(struct ferry_conn *c, struct ferry_io *io, int status, const char *reason, void *arg)
{
    struct hconn *h = arg;

    (void)c;
    if (h->phase == PH_DONE) {
        if (io != NULL)
            ferry_io_close(io);
        return;
    }
    if (status != FERRY_OK) {
        const char *target = h->plan->dest != NULL ? ferry_dest_name(h->plan->dest) : h->plan->host;

        switch (status) {
        case FERRY_ENOTUNNEL:
            h_fail(h, 503, "no-tunnel", "no connector serves tenant and location for %s (%s)",
                   target, reason);
            break;
        case FERRY_EDENIED:
            h_fail(h, 403, "access-denied", "%s is not allowed: %s", target, reason);
            break;
        case FERRY_ETIMEDOUT:
            h_fail(h, 504, "upstream-timeout", "connecting to %s timed out", target);
            break;
        case FERRY_EPROTO:
            h_fail(h, 502, "upstream-tls-failed", "%s: %s", target, reason);
            break;
        case FERRY_EINVAL:
            h_fail(h, 502, "destination-invalid", "%s: %s", target, reason);
            break;
        default:
            h_fail(h, 502, "upstream-unreachable", "cannot connect to %s: %s", target, reason);
            break;
        }
        return;
    }
    h->uio = io;
    h_upstream_ready(h);
    h_drive(h);
}

static void
h_open(struct hconn *h, bool allow_pool)
{
    struct ferry_target t = FERRY_TARGET_INIT;
    int                 rc;

    h->phase = PH_OPEN;
    if (allow_pool && !h->connect_req && !h->upgrade_req && h->plan->pool_key[0] != '\0' &&
        (h->uio = ferry_io_pool_get(h->c, h->plan->pool_key)) != NULL) {
        h->from_pool = true;
        h_upstream_ready(h);
        return;
    }
    h->from_pool = false;
    if (h->plan->dest != NULL) {
        t.dest = h->plan->dest;
        if (h->plan->has_location)
            t.location = h->plan->location;
    } else {
        t.host = h->plan->host;
        t.port = h->plan->port;
        t.location = h->plan->location;      /* "" = the default location */
        /* A user's request goes to a connector, which speaks for the user; never direct. */
        t.direct_ok = h->plan->user == NULL &&
                      ferry_egress_allows(h->l->egress, h->plan->host, h->plan->port);
        /* The connector checks HTTP systems per request; CONNECT is opaque bytes. */
        t.protocol = h->connect_req ? "tcp" : "http";
    }
    t.user = h->plan->user;      /* borrowed: core copies the claims onto the stream */
    rc = ferry_io_open(h->c, &t, h->plan->tls ? &h->plan->tlsopt : NULL, 0, h_on_open, h);
    if (rc != FERRY_OK)
        h_fail(h, 502, "upstream-unreachable", "cannot open an upstream (%s)",
               ferry_strerror(rc));
}

/* ---- exchange ---------------------------------------------------------------------------- */

static bool
io_gone(struct ferry_io *io)
{
    return ferry_io_eof(io) || ferry_io_error(io, NULL) != 0;
}

/* Write prefix (a head not sent yet, may be empty) and then data in one call: a head
 * and the body bytes that came with it leave in one syscall. */
static void
put2(struct ferry_io *to, const struct sbuf *prefix, const void *data, size_t len)
{
    struct ferry_iov v[2] = { { prefix != NULL ? prefix->p : NULL, prefix != NULL ? prefix->len : 0 },
                              { data, len } };

    if (v[0].len > 0)
        ferry_io_writev(to, v, 2);
    else if (len > 0)
        ferry_io_write(to, data, len);
}

/* Move body bytes of a framed message from `from` to `to`, after `prefix` (a head to
 * send first, or NULL). Returns bytes consumed, or -1 after a framing error (reason
 * in ch). *done set at the end of the body. The prefix is always written. */
static long
pump_body(struct ferry_io *from, struct ferry_io *to, enum ferry_http_body kind, uint64_t *left,
          struct ferry_http_chunked *ch, bool dechunk, bool *done, const struct sbuf *prefix)
{
    const uint8_t *data;
    size_t         len = ferry_io_peek(from, &data), used = 0;

    if (len == 0 || (prefix == NULL && ferry_io_pending(to) >= PENDING_HIGH)) {
        put2(to, prefix, NULL, 0);
        return 0;
    }
    switch (kind) {
    case FERRY_HTTP_BODY_LENGTH:
        used = len < *left ? len : (size_t)*left;
        put2(to, prefix, data, used);
        *left -= used;
        *done = *left == 0;
        break;
    case FERRY_HTTP_BODY_CHUNKED:
        if (dechunk)
            put2(to, prefix, NULL, 0);
        while (used < len) {
            size_t      consumed = 0, dl = 0;
            const char *d = NULL;
            int         rc = ferry_http_chunked_feed(ch, (const char *)data + used, len - used,
                                                     &consumed, &d, &dl);

            if (rc < 0) {
                if (!dechunk)
                    put2(to, prefix, NULL, 0);
                return -1;
            }
            if (dechunk && rc == FERRY_HTTP_CHUNK_DATA && dl > 0)
                ferry_io_write(to, d, dl);
            used += consumed;
            if (rc == FERRY_HTTP_CHUNK_END) {
                *done = true;
                break;
            }
            if (rc == FERRY_HTTP_CHUNK_MORE)
                break;
        }
        if (!dechunk)
            put2(to, prefix, data, used);
        break;
    default:                                    /* until EOF (responses) */
        used = len;
        put2(to, prefix, data, used);
        break;
    }
    ferry_io_consume(from, used);
    return (long)used;
}

static bool
h_request_body(struct hconn *h)
{
    long n;

    if (h->req_done)
        return false;
    n = pump_body(h->cio, h->uio, h->req_body, &h->req_left, h->req_ch, false, &h->req_done,
                  NULL);
    if (n < 0) {
        h_fail_chunked(h);
        return false;
    }
    h->bytes_in += (uint64_t)n;
    if (h->req_done) {
        ferry_io_timeout(h->cio, 0);
        ferry_io_timeout(h->uio, h->plan->upstream_timeout_ms);
    } else if (n == 0 && io_gone(h->cio) && ferry_io_peek(h->cio, &(const uint8_t *){ 0 }) == 0) {
        h_record(h, 499, "client-closed");
        h_close(h, "client-closed");
        return false;
    }
    return n > 0;
}

/* The destination's on_response, then the client's head from what the hook left. */
static bool
h_policy_response(struct hconn *h, const struct ferry_http_response *resp, int conn,
                  struct sbuf *out)
{
    const struct ferry_http_response *r = hp_response(h->c, h->plan->dest, resp, h->plan);

    if (r == NULL) {
        sb_free(out);
        h_fail(h, h->plan->status, h->plan->reason, "%s", h->plan->text);
        return false;
    }
    h->status = r->code;
    rw_response(h->l, r, h->reqid, conn, h->dechunk, out);
    hp_done(NULL);
    return true;
}

/* The response head arrived: rewrite it for the client. */
static bool
h_response_head(struct hconn *h)
{
    const struct ferry_http_response *rs = ferry_http_parser_response(h->parser);
    const uint8_t                    *data;
    size_t                            len = ferry_io_peek(h->uio, &data);
    struct sbuf                       out;
    char                              outbuf[4096];
    int                               rc, conn;

    if (len == 0) {
        if (!io_gone(h->uio))
            return false;
        if (h->from_pool && !h->retried && !h->req_has_body) {
            /* A pooled connection the server had closed as we reused it: the request
             * never reached anyone, so send it once more on a fresh connection. */
            ferry_io_close(h->uio);
            h->uio = NULL;
            h->retried = true;
            h_open(h, false);
            return false;
        }
        h_fail(h, 502, "bad-gateway", "the upstream closed the connection without a response");
        return false;
    }
    ferry_http_parser_reset(h->parser);
    sb_init(&out, outbuf, sizeof(outbuf));
    rc = ferry_http_parser_response_head(h->parser, (const char *)data, len, h->method,
                                         NULL);
    if (rc == 0) {
        if (io_gone(h->uio))
            h_fail(h, 502, "bad-gateway", "the upstream closed the connection mid-head");
        return false;
    }
    if (rc < 0) {
        h_fail(h, 502, "bad-gateway", "the upstream's response is not valid HTTP/1.1 (%s)",
               rs->reason);
        return false;
    }
    if (rs->code >= 100 && rs->code < 200 && rs->code != 101) {
        /* Interim (100 Continue, 103): pass on to HTTP/1.1 clients, wait for the real one. */
        if (h->client_minor >= 1) {
            rw_response(h->l, rs, NULL, 0, false, &out);
            if (!out.oom)
                ferry_io_write(h->cio, out.p, out.len);
            sb_free(&out);
        }
        ferry_io_consume(h->uio, (size_t)rc);
        return true;
    }
    if (rs->code == 101 && !h->upgrade_req) {
        h_fail(h, 502, "bad-gateway", "the upstream switched protocols unasked");
        return false;
    }
    h->t_head = ferry_now_us();
    h->status = rs->code;
    h->upstream_keep = rs->keep_alive;
    h->dechunk = h->client_minor == 0 && rs->body == FERRY_HTTP_BODY_CHUNKED;
    h->close_after = !h->client_keep || rs->body == FERRY_HTTP_BODY_EOF || h->dechunk;
    conn = h->close_after ? RW_CLOSE : h->client_minor == 0 ? RW_KEEP_ALIVE : 0;
    if (h->plan->dest != NULL && ferry_policy_has(h->c, h->plan->dest, "on_response")) {
        if (!h_policy_response(h, rs, conn, &out))
            return false;
    } else {
        rw_response(h->l, rs, h->l->forward ? NULL : h->reqid, conn, h->dechunk, &out);
    }
    if (out.oom) {
        sb_free(&out);
        h_fail(h, 502, "bad-gateway", "the upstream's response head is too large");
        return false;
    }
    ferry_io_consume(h->uio, (size_t)rc);
    h->bytes_out += out.len;
    h->resp_head_done = true;
    h->resp_body = rs->body;
    h->resp_left = rs->content_length;
    ferry_http_chunked_reset(h->resp_ch);
    if (rs->body == FERRY_HTTP_BODY_TUNNEL) {
        ferry_io_write(h->cio, out.p, out.len);
        h->phase = PH_TUNNEL;
        h->req_done = true;
    } else if (rs->body == FERRY_HTTP_BODY_NONE ||
               (rs->body == FERRY_HTTP_BODY_LENGTH && rs->content_length == 0)) {
        ferry_io_write(h->cio, out.p, out.len);
        h->resp_done = true;
    } else {
        /* The head and the body bytes that arrived with it leave in one write. */
        long n = pump_body(h->uio, h->cio, h->resp_body, &h->resp_left, h->resp_ch,
                           h->dechunk, &h->resp_done, &out);

        if (n < 0) {
            sb_free(&out);
            h_fail(h, 502, "bad-gateway", "the upstream's chunked framing is invalid");
            return false;
        }
        h->bytes_out += (uint64_t)n;
    }
    sb_free(&out);
    return true;
}

static bool
h_response_body(struct hconn *h)
{
    long n = pump_body(h->uio, h->cio, h->resp_body, &h->resp_left, h->resp_ch, h->dechunk,
                       &h->resp_done, NULL);

    if (n < 0) {
        h_fail(h, 502, "bad-gateway", "the upstream's chunked framing is invalid");
        return false;
    }
    h->bytes_out += (uint64_t)n;
    if (n == 0 && !h->resp_done && io_gone(h->uio) &&
        ferry_io_peek(h->uio, &(const uint8_t *){ 0 }) == 0) {
        bool reset = ferry_io_error(h->uio, NULL) != 0;

        /* Only a clean close ends a body delimited by the close: a reset (or a tunnel
         * stream reset, a lost tunnel) cut it short. */
        if (h->resp_body == FERRY_HTTP_BODY_EOF && !reset) {
            h->resp_done = true;
            h->upstream_keep = false;
            return true;
        }
        /* Truncated: the client must not take a cut body for a whole one. The outcome
         * makes core reset the client (conn.c), the only signal a close-delimited body
         * has. */
        h_fail(h, 502, "upstream-truncated", reset ? "the upstream reset mid-body"
                                                   : "the upstream closed mid-body");
        return false;
    }
    return n > 0;
}

/* Both messages are complete: log, pool or close the upstream, next request. */
static void
h_finish(struct hconn *h)
{
    h_record(h, h->status, "ok");
    if (h->upstream_keep && !io_gone(h->uio) && h->plan->pool_key[0] != '\0')
        ferry_io_pool_put(h->uio, h->plan->pool_key, h->l->pool_idle_ms);
    else if (!io_gone(h->uio))
        ferry_io_finish(h->uio, 2000);      /* a clean end, not a reset */
    else
        ferry_io_close(h->uio);
    h->uio = NULL;
    if (h->close_after) {
        h_close(h, "ok");
        return;
    }
    h->nreq++;
    h_start_head(h);
}

static bool
h_exchange(struct hconn *h)
{
    bool progress = h_request_body(h);

    if (h->phase != PH_EXCHANGE)
        return false;
    if (!h->resp_head_done)
        progress |= h_response_head(h);
    else if (!h->resp_done)
        progress |= h_response_body(h);
    if (h->phase != PH_EXCHANGE)
        return progress;
    if (h->resp_done && h->req_done) {
        h_finish(h);
        return true;
    }
    if (h->resp_done && !h->req_done) {
        /* The upstream answered before the body was through (an early 413, 401...):
         * the rest of the body has nowhere to go, so this connection ends here. */
        h_record(h, h->status, "ok");
        h_close(h, "ok");
        return false;
    }
    return progress;
}

/* ---- tunnel ------------------------------------------------------------------------------ */

static bool
h_tunnel_dir(struct ferry_io *from, struct ferry_io *to, bool *eof_done, uint64_t *bytes)
{
    const uint8_t *data;
    size_t         len;

    if (*eof_done || ferry_io_pending(to) >= PENDING_HIGH)
        return false;
    if ((len = ferry_io_peek(from, &data)) > 0) {
        ferry_io_write(to, data, len);
        ferry_io_consume(from, len);
        *bytes += len;
        return true;
    }
    if (ferry_io_eof(from)) {
        ferry_io_shutdown(to);
        *eof_done = true;
        return true;
    }
    return false;
}

static bool
h_tunnel(struct hconn *h)
{
    bool progress;

    if (ferry_io_error(h->cio, NULL) != 0 || ferry_io_error(h->uio, NULL) != 0) {
        h_record(h, h->status, "reset");
        h_close(h, "reset");
        return false;
    }
    progress = h_tunnel_dir(h->cio, h->uio, &h->c_eof_done, &h->bytes_in);
    progress |= h_tunnel_dir(h->uio, h->cio, &h->u_eof_done, &h->bytes_out);
    if (h->c_eof_done && h->u_eof_done && ferry_io_pending(h->cio) == 0) {
        h_record(h, h->status, "ok");
        h_close(h, "ok");
        return false;
    }
    return progress;
}

/* ---- driving --------------------------------------------------------------------------- */

static void
h_drive(struct hconn *h)
{
    for (int round = 0; round < DRIVE_ROUNDS; round++) {
        bool progress = false;

        switch (h->phase) {
        case PH_HEAD:     progress = h_read_head(h); break;
        case PH_EXCHANGE: progress = h_exchange(h); break;
        case PH_TUNNEL:   progress = h_tunnel(h); break;
        default:          return;
        }
        if (!progress)
            return;
    }
}

static void
h_client_cb(struct ferry_io *io, unsigned ev, void *arg)
{
    struct hconn *h = arg;

    (void)io;
    if (h->phase == PH_DONE)
        return;
    if ((ev & FERRY_IO_ERROR) && h->phase != PH_TUNNEL) {
        if (h->t0 != 0)
            h_record(h, 499, "client-reset");
        h_close(h, "client-reset");
        return;
    }
    if (ev & FERRY_IO_TIMEOUT) {
        const uint8_t *d;

        if (h->phase == PH_HEAD && ferry_io_peek(h->cio, &d) == 0 && h->nreq > 0) {
            h_close(h, "keepalive-timeout");        /* idle between requests: no reply */
            return;
        }
        if (h->phase == PH_HEAD || (h->phase == PH_EXCHANGE && !h->req_done)) {
            h_fail(h, 408, "request-timeout", "the request did not arrive within %u ms",
                   h->l->request_timeout_ms);
            return;
        }
    }
    h_drive(h);
}

static void
h_free(void *arg)
{
    struct hconn *h = arg;

    sb_free(&h->head);
    hp_free(h->scratch);
    h->scratch = NULL;
    if (h->plan != NULL)
        user_release(h->plan);
    free(h->plan);
    ferry_http_parser_free(h->parser);
    ferry_http_chunked_free(h->req_ch);
    ferry_http_chunked_free(h->resp_ch);
}

static void
http_on_accept(struct ferry_conn *c, void *state)
{
    struct hconn *h = ferry_conn_alloc(c, sizeof(*h));

    if (h == NULL || ferry_conn_on_cleanup(c, h_free, h) != FERRY_OK) {
        ferry_conn_close(c, "no-memory");
        return;
    }
    h->c = c;
    h->l = state;
    if ((h->cio = ferry_conn_io(c)) == NULL) {
        ferry_conn_close(c, "no-memory");
        return;
    }
    ferry_io_set_cb(h->cio, h_client_cb, h);
    h_start_head(h);
}

/* ---- listener ------------------------------------------------------------------------------ */

static int
opt_ms(struct ferry_opts *o, const char *key, uint64_t min, uint64_t max, uint32_t *out)
{
    uint64_t v;
    int      rc = ferry_opts_uint(o, key, min, max, &v);

    if (rc == FERRY_OK)
        *out = (uint32_t)v;
    return rc == FERRY_ENOTFOUND ? FERRY_OK : rc;
}

static int
opt_size(struct ferry_opts *o, const char *key, uint64_t min, uint64_t max, size_t *out)
{
    uint64_t v;
    int      rc = ferry_opts_uint(o, key, min, max, &v);

    if (rc == FERRY_OK)
        *out = (size_t)v;
    return rc == FERRY_ENOTFOUND ? FERRY_OK : rc;
}

static int
opt_bool(struct ferry_opts *o, const char *key, bool *out)
{
    const char *v;
    int         rc = ferry_opts_str(o, key, &v);

    if (rc == FERRY_ENOTFOUND)
        return FERRY_OK;
    if (rc != FERRY_OK)
        return rc;
    if (strcmp(v, "true") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0)
        *out = false;
    else
        return ferry_opts_error(o, key, "want true or false, not '%s'", v);
    return FERRY_OK;
}

/* Every option is read even after one failed: each reports its own error, so one
 * `ferry check` shows them all, and none is called unknown for going unread. */
static int
http_listener_open(struct ferry_listener *fl, struct ferry_opts *o, void **state)
{
    struct http_listener *l = calloc(1, sizeof(*l));
    const char           *mode = NULL, *auth = NULL;
    int                   bad = 0, rc;

    if (l == NULL)
        return FERRY_ENOMEM;
    ferry_http_limits_default(&l->lim);
    l->request_timeout_ms = 30000;
    l->upstream_timeout_ms = 60000;
    l->keepalive_timeout_ms = 60000;
    l->pool_idle_ms = 60000;
    l->forwarded_headers = true;
    l->bound = ferry_listener_destination(fl);

    rc = ferry_opts_str(o, "mode", &mode);
    if (rc == FERRY_OK && strcmp(mode, "forward") == 0)
        l->forward = true;
    else if (rc == FERRY_OK && strcmp(mode, "transparent") != 0)
        bad += ferry_opts_error(o, "mode", "want 'transparent' (call http://<destination>/) "
                                "or 'forward' (a proxy for tenants), not '%s'", mode) != FERRY_OK;
    else if (rc != FERRY_OK && rc != FERRY_ENOTFOUND)
        bad++;
    /* With a bad mode the forward-mode keys are checked too: it may have meant forward. */
    if (l->forward || bad > 0) {
        rc = ferry_opts_str(o, "auth", &auth);
        if (rc == FERRY_OK && strcmp(auth, "none") == 0)
            l->auth_none = true;
        else if (rc == FERRY_OK && strcmp(auth, "tenant") != 0)
            bad += ferry_opts_error(o, "auth", "want 'tenant' (Proxy-Authorization) or "
                                    "'none'") != FERRY_OK;
        else if (rc != FERRY_OK && rc != FERRY_ENOTFOUND)
            bad++;
        if (l->auth_none && ferry_listener_tenant(fl) == NULL)
            bad += ferry_opts_error(o, "auth", "auth: none needs the listener's "
                                    "`tenant:`") != FERRY_OK;
        if (l->forward && l->bound != NULL)
            bad += ferry_opts_error(o, NULL, "a forward-mode listener routes by the request's "
                                    "target; remove `destination:`") != FERRY_OK;
        bad += ferry_egress_new(o, "egress", &l->egress) != FERRY_OK;
    }
    bad += opt_size(o, "max_header_bytes", 1024, 65536, &l->lim.max_head_bytes) != FERRY_OK;
    bad += opt_size(o, "max_headers", 8, HTTP_MAX_HEADERS_CAP, &l->lim.max_headers) != FERRY_OK;
    bad += opt_size(o, "max_uri_bytes", 256, 65536, &l->lim.max_uri_bytes) != FERRY_OK;
    bad += opt_ms(o, "request_timeout_ms", 100, 3600000, &l->request_timeout_ms) != FERRY_OK;
    bad += opt_ms(o, "upstream_timeout_ms", 100, 43200000, &l->upstream_timeout_ms) != FERRY_OK;
    bad += opt_ms(o, "keepalive_timeout_ms", 100, 3600000, &l->keepalive_timeout_ms) != FERRY_OK;
    bad += opt_ms(o, "pool_idle_timeout_ms", 0, 600000, &l->pool_idle_ms) != FERRY_OK;
    bad += opt_bool(o, "forwarded_headers", &l->forwarded_headers) != FERRY_OK;
    if (bad > 0) {
        ferry_egress_free(l->egress);
        free(l);
        return FERRY_EINVAL;
    }
    *state = l;
    return FERRY_OK;
}

static void
http_listener_close(void *state)
{
    struct http_listener *l = state;

    ferry_egress_free(l->egress);
    free(l);
}

FERRY_PLUGIN_EXPORT const struct ferry_plugin ferry_plugin = {
    FERRY_PLUGIN_HEADER,
    .name           = "http",
    .version        = "0.1.0",
    .listener_open  = http_listener_open,
    .on_accept      = http_on_accept,
    .listener_close = http_listener_close,
};
