/*
 * rewrite.c: the heads the http plugin writes.
 *
 * The upstream request is built fresh from the parsed client head, never patched in
 * place: the request line in origin-form, Host for the real target, the client's
 * fields minus hop-by-hop ones and minus what was meant for ferry (proxy credentials,
 * destination and location selectors), then what the destination adds
 * (URL.headers.*, credentials) and the X-Forwarded-* set. Framing fields
 * (Content-Length, Transfer-Encoding) are kept exactly: bodies pass through as
 * received, and the parser already refused every ambiguous framing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ferry/dest.h>
#include <ferry/err.h>
#include <ferry/policy.h>

#include "http-int.h"

#define HEAD_MAX (64 * 1024)        /* a rewritten head never grows past this */

/* ---- sbuf ---------------------------------------------------------------------------- */

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

static void
utoa(char *out, size_t size, unsigned v)
{
    char   t[12];
    size_t i = sizeof(t);

    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    slice_copy(out, size, t + i, sizeof(t) - i);
}

/* ---- helpers --------------------------------------------------------------------------- */

static bool
ieq(const struct ferry_http_str *s, const char *lit)
{
    size_t n = strlen(lit);

    return s->len == n && strncasecmp(s->ptr, lit, n) == 0;
}

static void
sb_slice(struct sbuf *b, const struct ferry_http_str *s)
{
    if (s->ptr != NULL)
        sb_add(b, s->ptr, s->len);
}

static void
sb_field(struct sbuf *b, const struct ferry_http_header *h)
{
    sb_slice(b, &h->name);
    sb_add(b, ": ", 2);
    sb_slice(b, &h->value);
    sb_add(b, "\r\n", 2);
}

static void
plan_error(struct http_plan *p, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
plan_error(struct http_plan *p, int status, const char *reason, const char *fmt, ...)
{
    va_list ap;

    p->status = status;
    p->reason = reason;
    va_start(ap, fmt);
    vsnprintf(p->text, sizeof(p->text), fmt, ap);
    va_end(ap);
}

/* A value from the config is put in a head verbatim: no line breaks, no NUL. */
static bool
field_value_ok(const char *v)
{
    for (; *v; v++)
        if (*v == '\r' || *v == '\n' || ((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
            return false;
    return true;
}

static bool
token_ok(const char *v)
{
    if (*v == '\0')
        return false;
    for (; *v; v++)
        if (!(((unsigned char)*v > 0x20 && (unsigned char)*v < 0x7f) && strchr("\"(),/:;<=>?@[\\]{}", *v) == NULL))
            return false;
    return true;
}

static void
sb_pct(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            sb_add(b, s, 1);
        } else {
            char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };

            sb_add(b, e, 3);
        }
    }
}

/* The client's address without the port, for X-Forwarded-For. */
static void
client_ip(struct ferry_conn *c, char *out, size_t size)
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

/* ---- one pass over the fields ------------------------------------------------------ */

/* What a field is to the proxy. Names are compared once per field, by length first,
 * instead of once per question asked. */
enum hkind {
    H_OTHER = 0, H_HOP, H_TE, H_UPGRADE, H_HOST, H_XDEST, H_LOC, H_CONSUMER, H_XREQID,
    H_XFF, H_XFP, H_XFH, H_AUTHZ, H_PROXYAUTHZ, H_SAPAUTH, H_KINDS
};

struct hidx {
    uint8_t                         kind[HTTP_MAX_HEADERS_CAP];
    const struct ferry_http_header *first[H_KINDS];
    unsigned                        count[H_KINDS];
};

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
    case 15: return IS("x-forwarded-for") ? H_XFF : H_OTHER;
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

static void
classify(const struct ferry_http_header *h, size_t n, unsigned connection, struct hidx *x)
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

static void
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
static void
copy_fields(struct sbuf *b, const struct ferry_http_header *h, size_t n, const struct hidx *x,
            bool forwarded, bool drop_auth, bool drop_sapauth)
{
    for (size_t i = 0; i < n && i < HTTP_MAX_HEADERS_CAP; i++) {
        switch (x->kind[i]) {
        case H_OTHER:
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
static void
add_common(struct ferry_conn *c, const struct http_listener *l, const struct ferry_http_req *req,
           const struct hidx *x, struct sbuf *b)
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

        client_ip(c, ip, sizeof(ip));
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
static void
request_id(const struct hidx *x, char *out, size_t size)
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

/* ---- transparent mode ---------------------------------------------------------------- */

static const struct ferry_dest *
choose_dest(struct ferry_conn *c, const struct http_listener *l, const struct ferry_http_req *req,
            const struct hidx *x, struct http_plan *p)
{
    const struct ferry_http_header *dn = x->first[H_XDEST];
    size_t                          ndn = x->count[H_XDEST];
    const struct ferry_dest        *d;
    char                            name[201];

    if (ndn > 1) {
        plan_error(p, 400, "bad-destination-header", "X-Destination-Name given more than once");
        return NULL;
    }
    if (l->bound != NULL) {
        if (ndn == 1) {
            plan_error(p, 400, "bad-destination-header",
                       "this listener serves destination '%s': X-Destination-Name is not allowed",
                       l->bound);
            return NULL;
        }
        if ((d = ferry_conn_dest(c)) == NULL)
            plan_error(p, 404, "destination-not-found", "destination '%s' does not exist",
                       l->bound);
        return d;
    }
    if (ndn == 1) {
        if (dn->value.len == 0 || dn->value.len > 200) {
            plan_error(p, 400, "bad-destination-header",
                       "X-Destination-Name must have 1 to 200 characters");
            return NULL;
        }
        slice_copy(name, sizeof(name), dn->value.ptr, dn->value.len);
    } else if (req->host.ptr != NULL && req->host.len > 0 && req->host.len <= 200) {
        slice_copy(name, sizeof(name), req->host.ptr, req->host.len);
    } else {
        plan_error(p, 400, "missing-destination",
                   "name the destination in the Host or X-Destination-Name header");
        return NULL;
    }
    if ((d = ferry_conn_lookup_dest(c, name)) == NULL) {
        /* Host names compare case-insensitively; destination names are exact. */
        plan_error(p, 404, "destination-not-found", "no destination named '%.200s'", name);
        return NULL;
    }
    return d;
}

static void
tls_settings(const struct ferry_dest *d, struct http_plan *p)
{
    const char *all = ferry_dest_prop(d, "TrustAll");

    p->tls = strcmp(ferry_dest_scheme(d), "https") == 0;
    if (!p->tls)
        return;
    p->tlsopt.enable = true;
    p->tlsopt.server_name = ferry_dest_host(d);
    p->tlsopt.ca_file = ferry_dest_prop(d, "TrustStoreLocation");
    p->tlsopt.insecure = all != NULL && strcasecmp(all, "true") == 0;
    if (strcmp(ferry_dest_authentication(d), "ClientCertificateAuthentication") == 0)
        p->tlsopt.cert_file = ferry_dest_prop(d, "KeyStoreLocation");
}

/* The destination's URL path joined with the request's: "/api" + "/x" = "/api/x",
 * "/api/" + "/x" = "/api/x", "" + "" = "/". */
static void
add_path(struct sbuf *b, const char *dpath, const struct ferry_http_str *rpath)
{
    size_t dl = strlen(dpath);
    size_t skip = 0;

    if (dl > 0 && dpath[dl - 1] == '/' && rpath->len > 0 && rpath->ptr[0] == '/')
        skip = 1;
    sb_add(b, dpath, dl);
    if (rpath->len > skip)
        sb_add(b, rpath->ptr + skip, rpath->len - skip);
    else if (dl == 0)
        sb_add(b, "/", 1);
}

static void
add_queries(struct sbuf *b, const struct ferry_dest *d, const struct ferry_http_str *q)
{
    const char *sep = "?";
    size_t      n = ferry_dest_nprops(d);

    if (q->ptr != NULL) {
        sb_add(b, "?", 1);
        sb_slice(b, q);
        sep = q->len > 0 ? "&" : "";
    }
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;

        ferry_dest_prop_at(d, i, &k, &v);
        if (strncmp(k, "URL.queries.", 12) != 0 || k[12] == '\0')
            continue;
        sb_str(b, sep);
        sep = "&";
        sb_pct(b, k + 12);
        sb_add(b, "=", 1);
        sb_pct(b, v);
    }
}

static bool
add_dest_fields(struct sbuf *b, const struct ferry_dest *d, struct http_plan *p)
{
    size_t n = ferry_dest_nprops(d);

    for (size_t i = 0; i < n; i++) {
        const char *k, *v;

        ferry_dest_prop_at(d, i, &k, &v);
        if (strncmp(k, "URL.headers.", 12) != 0)
            continue;
        if (!token_ok(k + 12) || !field_value_ok(v)) {
            plan_error(p, 502, "destination-invalid",
                       "destination '%s': %s is not a valid header field", ferry_dest_name(d), k);
            return false;
        }
        sb_str(b, k + 12);
        sb_add(b, ": ", 2);
        sb_str(b, v);
        sb_add(b, "\r\n", 2);
    }
    if (strcmp(ferry_dest_authentication(d), "BasicAuthentication") == 0) {
        const char *user = ferry_dest_prop(d, "User"), *pass = ferry_dest_prop(d, "Password");
        char        plain[1024], enc[1400];
        int         len = snprintf(plain, sizeof(plain), "%s:%s", user != NULL ? user : "",
                                   pass != NULL ? pass : "");

        if (len < 0 || (size_t)len >= sizeof(plain) ||
            ferry_base64_encode((const uint8_t *)plain, (size_t)len, enc, sizeof(enc)) < 0) {
            memset(plain, 0, sizeof(plain));
            plan_error(p, 502, "destination-invalid", "destination '%s': credentials too long",
                       ferry_dest_name(d));
            return false;
        }
        sb_str(b, "Authorization: Basic ");
        sb_str(b, enc);
        sb_add(b, "\r\n", 2);
        memset(plain, 0, sizeof(plain));
        memset(enc, 0, sizeof(enc));
    }
    return true;
}

/* "a|b|c" into out (truncated to size, always terminated): the pool key. */
static void
key_join(char *out, size_t size, const char *const *parts, size_t n)
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

static void
set_location(struct http_plan *p, const struct ferry_http_header *loc)
{
    memcpy(p->location, loc->value.ptr, loc->value.len);
    p->location[loc->value.len] = '\0';
    p->has_location = true;
}

static void
add_host(struct sbuf *b, const char *host, uint16_t port, bool default_port)
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

/* The upstream head for destination p->dest from req (the client's, or as its
 * policy left it). */
static void
transparent_head(struct ferry_conn *c, const struct http_listener *l,
                 const struct ferry_http_req *req, const char *reqid, struct http_plan *p,
                 struct sbuf *b)
{
    const struct ferry_dest *d = p->dest;
    struct hidx              x;
    const char              *scheme, *auth = ferry_dest_authentication(d);
    uint16_t                 port;
    char                     portbuf[8];

    classify(req->headers, req->header_count, req->connection, &x);
    if (x.count[H_LOC] == 1 && x.first[H_LOC]->value.len < sizeof(p->location))
        set_location(p, x.first[H_LOC]);   /* SAP: overrides CloudConnectorLocationId */
    tls_settings(d, p);
    p->upstream_timeout_ms = ferry_dest_prop(d, "URL.socketReadTimeoutInSeconds") != NULL
                                 ? ferry_dest_read_timeout_ms(d) : l->upstream_timeout_ms;
    scheme = ferry_dest_scheme(d);
    port = ferry_dest_port(d);
    utoa(portbuf, sizeof(portbuf), port);
    {
        const char *parts[] = {
            "t", ferry_dest_name(d), scheme, ferry_dest_host(d), portbuf, p->tlsopt.ca_file,
            p->tlsopt.cert_file, p->tlsopt.insecure ? "1" : "0", p->has_location ? "L" : "-",
            p->location,
        };

        key_join(p->pool_key, sizeof(p->pool_key), parts, sizeof(parts) / sizeof(parts[0]));
    }

    sb_slice(b, &req->method_name);
    sb_add(b, " ", 1);
    add_path(b, ferry_dest_path(d), &req->path);
    add_queries(b, d, &req->query);
    add_host(b, ferry_dest_host(d), port,
             (port == 80 && strcmp(scheme, "http") == 0) ||
             (port == 443 && strcmp(scheme, "https") == 0));
    copy_fields(b, req->headers, req->header_count, &x, l->forwarded_headers,
                strcmp(auth, "BasicAuthentication") == 0, false);
    add_common(c, l, req, &x, b);
    if (add_dest_fields(b, d, p)) {
        sb_str(b, "X-Request-Id: ");
        sb_str(b, reqid);
        sb_add(b, "\r\n\r\n", 4);
    }
}

void
rw_transparent(struct ferry_conn *c, const struct http_listener *l,
               const struct ferry_http_req *req, char *reqid, size_t reqid_size,
               struct http_plan *p, struct sbuf *b, struct hp_scratch **sc,
               ferry_policy_cb cb, void *arg)
{
    struct hidx              x;
    const struct ferry_dest *d;
    const char              *auth;
    bool                     policy;

    classify(req->headers, req->header_count, req->connection, &x);
    request_id(&x, reqid, reqid_size);
    if ((d = choose_dest(c, l, req, &x, p)) == NULL)
        return;
    if (ferry_dest_type(d) != FERRY_DEST_HTTP) {
        plan_error(p, 502, "destination-invalid", "destination '%s' is not of Type HTTP",
                   ferry_dest_name(d));
        return;
    }
    p->dest = d;
    auth = ferry_dest_authentication(d);
    policy = ferry_policy_has(c, d, "on_request");
    /* OAuth2* run as Lua modules (lua/ferry/auth/), an implicit on_request. */
    if (strcmp(auth, "NoAuthentication") != 0 && strcmp(auth, "BasicAuthentication") != 0 &&
        strcmp(auth, "ClientCertificateAuthentication") != 0 &&
        (!policy || strncmp(auth, "OAuth2", 6) != 0)) {
        plan_error(p, 502, "auth-not-supported",
                   "destination '%s': Authentication %s is not supported yet",
                   ferry_dest_name(d), auth);
        return;
    }
    if (!policy) {
        transparent_head(c, l, req, reqid, p, b);
        return;
    }
    /* From here on the head is the one the policy left (framing unchanged). */
    req = hp_request(c, d, req, p, sc, cb, arg);
    if (req == HP_WAIT) {
        p->waiting = true;
        return;
    }
    if (req == NULL)
        return;
    transparent_head(c, l, req, reqid, p, b);
    hp_done(*sc);
}

void
rw_transparent_resume(struct ferry_conn *c, const struct http_listener *l,
                      struct hp_scratch *sc, int rc, const struct ferry_policy_verdict *v,
                      const char *reqid, struct http_plan *p, struct sbuf *b)
{
    const struct ferry_http_req *req = hp_request_done(sc, rc, v, p);

    p->waiting = false;
    if (req == NULL)
        return;
    transparent_head(c, l, req, reqid, p, b);
    hp_done(sc);
}

void
rw_request_id(char *out, size_t size)
{
    request_id(NULL, out, size);
}

/* ---- forward mode ---------------------------------------------------------------------- */

/* Proxy-Authorization: Bearer <token> | Basic base64(tenant:token) | Basic base64(token:). */
static bool
proxy_auth(struct ferry_conn *c, const struct hidx *x)
{
    const struct ferry_http_header *h = x->first[H_PROXYAUTHZ];
    char                            buf[4096];
    uint8_t                         dec[3072];
    bool                            ok = false;

    if (x->count[H_PROXYAUTHZ] != 1 || h->value.len >= sizeof(buf))
        return false;
    memcpy(buf, h->value.ptr, h->value.len);
    buf[h->value.len] = '\0';
    if (strncasecmp(buf, "Bearer ", 7) == 0) {
        ok = ferry_conn_auth_tenant(c, NULL, buf + 7) == FERRY_OK;
    } else if (strncasecmp(buf, "Basic ", 6) == 0) {
        long  n = ferry_base64_decode(buf + 6, strlen(buf + 6), dec, sizeof(dec) - 1);
        char *colon;

        if (n > 0 && memchr(dec, 0, (size_t)n) == NULL) {
            dec[n] = '\0';
            if ((colon = strchr((char *)dec, ':')) != NULL) {
                *colon = '\0';
                if (colon[1] == '\0')
                    ok = ferry_conn_auth_tenant(c, NULL, (char *)dec) == FERRY_OK;
                else
                    ok = ferry_conn_auth_tenant(c, (char *)dec, colon + 1) == FERRY_OK;
            }
        }
        memset(dec, 0, sizeof(dec));
    }
    memset(buf, 0, sizeof(buf));
    return ok;
}

void
rw_forward(struct ferry_conn *c, const struct http_listener *l, const struct ferry_http_req *req,
           struct http_plan *p, struct sbuf *b)
{
    struct hidx x;
    char        portbuf[8];

    classify(req->headers, req->header_count, req->connection, &x);
    if (!l->auth_none && !proxy_auth(c, &x)) {
        plan_error(p, 407, "proxy-auth-required",
                   "send Proxy-Authorization: Bearer <tenant token> (or Basic tenant:token)");
        return;
    }
    if (x.count[H_LOC] > 1 ||
        (x.count[H_LOC] == 1 && x.first[H_LOC]->value.len >= sizeof(p->location))) {
        plan_error(p, 400, "bad-location-header",
                   "SAP-Connectivity-SCC-Location_ID must be given once, under 256 bytes");
        return;
    }
    if (x.count[H_LOC] == 1)
        set_location(p, x.first[H_LOC]);
    if (req->form == FERRY_HTTP_FORM_AUTHORITY) {           /* CONNECT host:port */
        if (req->host.len == 0 || req->host.len >= sizeof(p->host) || req->port_num == 0) {
            plan_error(p, 400, "bad-request", "CONNECT needs host:port");
            return;
        }
        slice_copy(p->host, sizeof(p->host), req->host.ptr, req->host.len);
        p->port = req->port_num;
        return;
    }
    if (req->form != FERRY_HTTP_FORM_ABSOLUTE) {
        plan_error(p, 400, "absolute-uri-required",
                   "a forward proxy needs absolute-form requests (http://host/path) or CONNECT");
        return;
    }
    if (ieq(&req->scheme, "https")) {
        plan_error(p, 405, "https-not-supported",
                   "https:// targets are not proxied in absolute form: use CONNECT or SOCKS5 "
                   "for end-to-end TLS");
        return;
    }
    if (!ieq(&req->scheme, "http") || req->host.len == 0 || req->host.len >= sizeof(p->host)) {
        plan_error(p, 400, "bad-request", "only http:// absolute URIs are proxied");
        return;
    }
    slice_copy(p->host, sizeof(p->host), req->host.ptr, req->host.len);
    p->port = req->port_num != 0 ? req->port_num : 80;
    p->upstream_timeout_ms = l->upstream_timeout_ms;
    utoa(portbuf, sizeof(portbuf), p->port);
    {
        const char *parts[] = { "f", ferry_conn_tenant(c), p->location, p->host, portbuf };

        key_join(p->pool_key, sizeof(p->pool_key), parts, sizeof(parts) / sizeof(parts[0]));
    }

    sb_slice(b, &req->method_name);
    sb_add(b, " ", 1);
    if (req->path.len > 0)
        sb_slice(b, &req->path);
    else
        sb_add(b, "/", 1);
    if (req->query.ptr != NULL) {
        sb_add(b, "?", 1);
        sb_slice(b, &req->query);
    }
    add_host(b, p->host, p->port, p->port == 80);
    copy_fields(b, req->headers, req->header_count, &x, l->forwarded_headers, false, true);
    add_common(c, l, req, &x, b);
    sb_add(b, "\r\n", 2);
}

/* ---- responses ---------------------------------------------------------------------- */

const char *
rw_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return status < 500 ? "Client Error" : "Server Error";
    }
}

void
rw_response(const struct http_listener *l, const struct ferry_http_resp *resp,
            const char *reqid, int conn, bool dechunk, struct sbuf *b)
{
    struct hidx x;
    const struct ferry_http_header *h = resp->headers;
    size_t                          n = resp->header_count;

    classify(h, n, resp->connection, &x);
    sb_str(b, "HTTP/1.1 ");
    sb_u(b, (unsigned long)resp->code);
    sb_add(b, " ", 1);
    sb_slice(b, &resp->phrase);
    sb_add(b, "\r\n", 2);
    for (size_t i = 0; i < n && i < HTTP_MAX_HEADERS_CAP; i++) {
        switch (x.kind[i]) {
        case H_HOP: case H_UPGRADE:
            continue;
        case H_TE:
            if (resp->body != FERRY_HTTP_BODY_CHUNKED || dechunk)
                continue;
            break;
        case H_XREQID:
            if (reqid != NULL)
                continue;
            break;
        default:
            break;
        }
        sb_field(b, &h[i]);
    }
    if (resp->code == 101 && x.first[H_UPGRADE] != NULL) {
        sb_str(b, "Connection: upgrade\r\n");
        sb_field(b, x.first[H_UPGRADE]);
    } else if (conn == RW_CLOSE) {
        sb_str(b, "Connection: close\r\n");
    } else if (conn == RW_KEEP_ALIVE) {
        sb_str(b, "Connection: keep-alive\r\n");
    }
    if (reqid != NULL && !l->forward) {
        sb_str(b, "x-request-id: ");
        sb_str(b, reqid);
        sb_add(b, "\r\n", 2);
    }
    sb_add(b, "\r\n", 2);
}

void
rw_error(const struct http_listener *l, int status, const char *reason, const char *text,
         const char *request_id, struct sbuf *b)
{
    char body[400];
    int  n = snprintf(body, sizeof(body), "%s: %s\n", reason, text);

    if (n < 0 || (size_t)n >= sizeof(body))
        n = (int)strlen(body);
    sb_fmt(b, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: %d\r\nferry-error: %s\r\n", status, rw_phrase(status), n, reason);
    if (status == 407)
        sb_str(b, "Proxy-Authenticate: Bearer realm=\"ferry\"\r\n"
                  "Proxy-Authenticate: Basic realm=\"ferry\"\r\n");
    if (!l->forward) {
        /* The SAP Transparent Proxy's error set, so SAP-trained clients read it as is. */
        sb_fmt(b, "x-error-message: %s\r\nx-error-origin: Transparent Proxy\r\n"
                  "x-internal-error-code: %d\r\nx-proxy-server: ferry\r\n", text, status);
        if (request_id != NULL)
            sb_fmt(b, "x-request-id: %s\r\n", request_id);
    }
    sb_str(b, "Connection: close\r\n\r\n");
    sb_add(b, body, (size_t)n);
}
