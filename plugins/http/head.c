/*
 * head.c: the building blocks of every head the http plugin writes: the bounded
 * buffer (sbuf), one pass that classifies a head's fields (struct hidx), copying the
 * client's fields minus what is not meant for the upstream, the fields both modes add
 * (framing, upgrade, X-Forwarded-*), request ids, Host and pool keys.
 *
 * Decides nothing: where a request goes is target.c's, who the client is tenant.c's,
 * and which head is built from these blocks rewrite.c's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ferry/err.h>

#include "http-int.h"

#define HEAD_MAX (64 * 1024)        /* a rewritten head never grows past this */

void
sb_add(struct sbuf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 1024 : b->cap;
        char  *np;

        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > HEAD_MAX || (np = b->fixed ? malloc(cap) : realloc(b->p, cap)) == NULL) {
            b->oom = true;
            return;
        }
        if (b->fixed)
            memcpy(np, b->p, b->len);
        b->fixed = false;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

void
sb_fmt(struct sbuf *b, const char *fmt, ...)
{
    char    tmp[1024];
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->oom = true;
        return;
    }
    sb_add(b, tmp, (size_t)n);
}

void
sb_init(struct sbuf *b, char *buf, size_t size)
{
    b->p = buf;
    b->len = 0;
    b->cap = size;
    b->oom = false;
    b->fixed = true;
}

void
sb_free(struct sbuf *b)
{
    if (!b->fixed)
        free(b->p);
    b->fixed = false;
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void
slice_copy(char *out, size_t size, const char *p, size_t n)
{
    if (n >= size)
        n = size - 1;
    if (n > 0)
        memcpy(out, p, n);
    out[n] = '\0';
}

void
hd_utoa(char *out, size_t size, unsigned v)
{
    char   t[12];
    size_t i = sizeof(t);

    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    slice_copy(out, size, t + i, sizeof(t) - i);
}

bool
hd_ieq(const struct ferry_http_str *s, const char *lit)
{
    size_t n = strlen(lit);

    return s->len == n && strncasecmp(s->ptr, lit, n) == 0;
}

void
sb_slice(struct sbuf *b, const struct ferry_http_str *s)
{
    if (s->ptr != NULL)
        sb_add(b, s->ptr, s->len);
}

void
sb_field(struct sbuf *b, const struct ferry_http_header *h)
{
    sb_slice(b, &h->name);
    sb_add(b, ": ", 2);
    sb_slice(b, &h->value);
    sb_add(b, "\r\n", 2);
}

void
plan_error(struct http_plan *p, int status, const char *reason, const char *fmt, ...)
{
    va_list ap;

    p->status = status;
    p->reason = reason;
    va_start(ap, fmt);
    vsnprintf(p->text, sizeof(p->text), fmt, ap);
    va_end(ap);
}

/* The client's address without the port, for X-Forwarded-For. */
void
hd_client_ip(struct ferry_conn *c, char *out, size_t size)
{
    const char *peer = ferry_conn_peer(c);
    const char *colon = strrchr(peer, ':');
    size_t      n = colon != NULL ? (size_t)(colon - peer) : strlen(peer);

    if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']') {  /* "[::1]" -> "::1" */
        peer++;
        n -= 2;
    }
    slice_copy(out, size, peer, n);
}

static enum hkind
kind_of(const struct ferry_http_str *n)
{
#define IS(lit) (strncasecmp(n->ptr, lit, n->len) == 0)
    switch (n->len) {
    case 2:  return IS("te") ? H_HOP : H_OTHER;
    case 4:  return IS("host") ? H_HOST : H_OTHER;
    case 7:  return IS("upgrade") ? H_UPGRADE : IS("trailer") ? H_HOP : H_OTHER;
    case 10: return IS("connection") || IS("keep-alive") ? H_HOP : H_OTHER;
    case 12: return IS("x-request-id") ? H_XREQID : H_OTHER;
    case 13: return IS("authorization") ? H_AUTHZ : H_OTHER;
    case 15: return IS("x-forwarded-for") ? H_XFF : IS("ssl_client_cert") ? H_SSLCERT : H_OTHER;
    case 16: return IS("proxy-connection") ? H_HOP : IS("x-forwarded-host") ? H_XFH : H_OTHER;
    case 17: return IS("transfer-encoding") ? H_TE : IS("x-forwarded-proto") ? H_XFP : H_OTHER;
    case 18: return IS("x-destination-name") ? H_XDEST : IS("proxy-authenticate") ? H_HOP
                                                                                   : H_OTHER;
    case 19: return IS("proxy-authorization") ? H_PROXYAUTHZ : H_OTHER;
    case 31: return IS("sap-connectivity-authentication") ? H_SAPAUTH : H_OTHER;
    case 32: return IS("sap-connectivity-scc-location_id") ? H_LOC :
                    IS("sap-connectivity-consumeraccount") ? H_CONSUMER : H_OTHER;
    default: return H_OTHER;
    }
#undef IS
}

void
hd_classify(const struct ferry_http_header *h, size_t n, unsigned connection, struct hidx *x)
{
    memset(x->first, 0, sizeof(x->first));
    memset(x->count, 0, sizeof(x->count));
    for (size_t i = 0; i < n && i < HTTP_MAX_HEADERS_CAP; i++) {
        enum hkind k = kind_of(&h[i].name);

        /* Fields named in Connection are hop-by-hop too (rare: only then look). */
        if (k == H_OTHER && (connection & FERRY_HTTP_CONN_OTHER) &&
            ferry_http_is_hop_by_hop(h[i].name.ptr, h[i].name.len, h, n))
            k = H_HOP;
        x->kind[i] = (uint8_t)k;
        if (x->count[k]++ == 0)
            x->first[k] = &h[i];
    }
}

void
sb_u(struct sbuf *b, unsigned long v)
{
    char   t[24];
    size_t i = sizeof(t);

    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    sb_add(b, t + i, sizeof(t) - i);
}

/* The client's fields that go on: everything but hop-by-hop ones (framing is re-added
 * by the caller), what the client meant for ferry, and what ferry sets itself. */
void
hd_copy_fields(struct sbuf *b, const struct ferry_http_header *h, size_t n, const struct hidx *x,
            bool forwarded, bool drop_auth, bool drop_sapauth)
{
    for (size_t i = 0; i < n && i < HTTP_MAX_HEADERS_CAP; i++) {
        switch (x->kind[i]) {
        case H_OTHER: case H_SSLCERT:      /* SSL_CLIENT_CERT: dropped for PP (rewrite.c) */
            break;
        case H_XFF: case H_XFP: case H_XFH:
            if (forwarded)
                continue;
            break;
        case H_AUTHZ:
            if (drop_auth)
                continue;
            break;
        case H_SAPAUTH:
            if (drop_sapauth)
                continue;
            break;
        default:
            continue;
        }
        sb_field(b, &h[i]);
    }
}

/* Fields shared by both modes after the client's own: framing, upgrade, X-Forwarded-*. */
void
hd_add_common(struct ferry_conn *c, const struct http_listener *l,
              const struct ferry_http_request *req, const struct hidx *x, struct sbuf *b)
{
    const struct ferry_http_header *h = req->headers;
    size_t                          n = req->header_count;

    if (req->body == FERRY_HTTP_BODY_CHUNKED)
        for (size_t i = 0; i < n && i < HTTP_MAX_HEADERS_CAP; i++)
            if (x->kind[i] == H_TE)
                sb_field(b, &h[i]);
    if (req->upgrade && (req->connection & FERRY_HTTP_CONN_UPGRADE) && x->first[H_UPGRADE]) {
        sb_str(b, "Connection: upgrade\r\n");
        sb_field(b, x->first[H_UPGRADE]);
    }
    if (l->forwarded_headers) {
        char ip[64];

        hd_client_ip(c, ip, sizeof(ip));
        sb_str(b, "X-Forwarded-For: ");
        for (size_t i = 0; x->count[H_XFF] > 0 && i < n && i < HTTP_MAX_HEADERS_CAP; i++) {
            if (x->kind[i] == H_XFF) {
                sb_slice(b, &h[i].value);
                sb_add(b, ", ", 2);
            }
        }
        sb_str(b, ip);
        sb_str(b, "\r\nX-Forwarded-Proto: http\r\n");
        if (x->first[H_HOST] != NULL) {
            sb_str(b, "X-Forwarded-Host: ");
            sb_slice(b, &x->first[H_HOST]->value);
            sb_add(b, "\r\n", 2);
        }
    }
}

/* The caller's X-Request-Id when it is a sane token (it ties its logs to ours), else a
 * new one: 32 hex digits, a per-thread random prefix and a counter. */
void
hd_request_id(const struct hidx *x, char *out, size_t size)
{
    static __thread uint64_t seed, ctr;
    static const char        hex[] = "0123456789abcdef";
    const struct ferry_http_header *r = x != NULL ? x->first[H_XREQID] : NULL;
    uint64_t                 v[2];

    if (r != NULL && x->count[H_XREQID] == 1 && r->value.len > 0 && r->value.len < size) {
        bool ok = true;

        for (size_t i = 0; i < r->value.len && ok; i++) {
            char ch = r->value.ptr[i];

            ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 ch == '-' || ch == '_' || ch == '.';
        }
        if (ok) {
            memcpy(out, r->value.ptr, r->value.len);
            out[r->value.len] = '\0';
            return;
        }
    }
    if (seed == 0)
        seed = (ferry_now_us() * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(uintptr_t)&ctr;
    v[0] = seed;
    v[1] = ++ctr;
    if (size < 33) {
        out[0] = '\0';
        return;
    }
    for (int k = 0; k < 32; k++)
        out[k] = hex[(v[k / 16] >> (60 - 4 * (k % 16))) & 15];
    out[32] = '\0';
}

/* "a|b|c" into out (truncated to size, always terminated): the pool key. */
void
hd_key_join(char *out, size_t size, const char *const *parts, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        const char *v = parts[i] != NULL ? parts[i] : "";
        size_t      l = strlen(v);

        if (i > 0 && o + 1 < size)
            out[o++] = '|';
        if (o + l >= size)
            l = size - 1 - o;
        memcpy(out + o, v, l);
        o += l;
    }
    out[o] = '\0';
}

void
hd_set_location(struct http_plan *p, const struct ferry_http_header *loc)
{
    memcpy(p->location, loc->value.ptr, loc->value.len);
    p->location[loc->value.len] = '\0';
    p->has_location = true;
}

void
hd_add_host(struct sbuf *b, const char *host, uint16_t port, bool default_port)
{
    bool v6 = strchr(host, ':') != NULL;

    sb_str(b, " HTTP/1.1\r\nHost: ");
    if (v6)
        sb_add(b, "[", 1);
    sb_str(b, host);
    if (v6)
        sb_add(b, "]", 1);
    if (!default_port) {
        sb_add(b, ":", 1);
        sb_u(b, port);
    }
    sb_add(b, "\r\n", 2);
}
