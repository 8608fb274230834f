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
        if (cap > HEAD_MAX || (np = realloc(b->p, cap)) == NULL) {
            b->oom = true;
            return;
        }
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
sb_free(struct sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
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

static size_t
count_fields(const struct ferry_http_header *h, size_t n, const char *name,
             const struct ferry_http_header **first)
{
    const struct ferry_http_header *x = NULL;
    size_t                          k = 0;

    *first = NULL;
    while ((x = ferry_http_header_find(h, n, name, x)) != NULL) {
        if (k++ == 0)
            *first = x;
    }
    return k;
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
    snprintf(out, size, "%.*s", (int)n, peer);
}

/* The fields every mode drops: hop-by-hop (framing is re-added by the caller), and
 * what the client meant for ferry. */
static bool
drop_field(const struct ferry_http_header *h, const struct ferry_http_header *all, size_t n,
           bool forwarded)
{
    static const char *const mine[] = {
        "host", "x-destination-name", "sap-connectivity-scc-location_id",
        "sap-connectivity-consumeraccount", "x-request-id",
    };
    static const char *const xf[] = {
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
    };

    if (ferry_http_is_hop_by_hop(h->name.ptr, h->name.len, all, n))
        return true;
    for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
        if (ieq(&h->name, mine[i]))
            return true;
    if (forwarded)
        for (size_t i = 0; i < sizeof(xf) / sizeof(xf[0]); i++)
            if (ieq(&h->name, xf[i]))
                return true;
    return false;
}

/* Fields shared by both modes after the client's own: framing, upgrade, X-Forwarded-*. */
static void
add_common(struct ferry_conn *c, const struct http_listener *l, const struct ferry_http_req *req,
           struct sbuf *b)
{
    const struct ferry_http_header *h = NULL;

    if (req->body == FERRY_HTTP_BODY_CHUNKED)
        while ((h = ferry_http_header_find(req->headers, req->header_count, "transfer-encoding",
                                           h)) != NULL)
            sb_field(b, h);
    if (req->upgrade && (req->connection & FERRY_HTTP_CONN_UPGRADE) &&
        (h = ferry_http_header_find(req->headers, req->header_count, "upgrade", NULL)) != NULL) {
        sb_str(b, "Connection: upgrade\r\n");
        sb_field(b, h);
    }
    if (l->forwarded_headers) {
        char                            ip[64];
        const struct ferry_http_header *prev = NULL, *host;

        client_ip(c, ip, sizeof(ip));
        sb_str(b, "X-Forwarded-For: ");
        while ((prev = ferry_http_header_find(req->headers, req->header_count, "x-forwarded-for",
                                              prev)) != NULL) {
            sb_slice(b, &prev->value);
            sb_add(b, ", ", 2);
        }
        sb_fmt(b, "%s\r\nX-Forwarded-Proto: http\r\n", ip);
        if ((host = ferry_http_header_find(req->headers, req->header_count, "host", NULL)) != NULL) {
            sb_str(b, "X-Forwarded-Host: ");
            sb_slice(b, &host->value);
            sb_add(b, "\r\n", 2);
        }
    }
}

/* ---- transparent mode ---------------------------------------------------------------- */

static const struct ferry_dest *
choose_dest(struct ferry_conn *c, const struct http_listener *l, const struct ferry_http_req *req,
            struct http_plan *p)
{
    const struct ferry_http_header *dn;
    size_t                          ndn = count_fields(req->headers, req->header_count,
                                                       "x-destination-name", &dn);
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
        snprintf(name, sizeof(name), "%.*s", (int)dn->value.len, dn->value.ptr);
    } else if (req->host.ptr != NULL && req->host.len > 0 && req->host.len <= 200) {
        snprintf(name, sizeof(name), "%.*s", (int)req->host.len, req->host.ptr);
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
        sb_fmt(b, "%s: %s\r\n", k + 12, v);
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
        sb_fmt(b, "Authorization: Basic %s\r\n", enc);
        memset(plain, 0, sizeof(plain));
        memset(enc, 0, sizeof(enc));
    }
    return true;
}

void
rw_transparent(struct ferry_conn *c, const struct http_listener *l,
               const struct ferry_http_req *req, const char *request_id, struct http_plan *p,
               struct sbuf *b)
{
    const struct ferry_dest        *d;
    const struct ferry_http_header *loc;
    const char                     *scheme, *auth;
    bool                            replace_auth;
    uint16_t                        port;

    if ((d = choose_dest(c, l, req, p)) == NULL)
        return;
    if (ferry_dest_type(d) != FERRY_DEST_HTTP) {
        plan_error(p, 502, "destination-invalid", "destination '%s' is not of Type HTTP",
                   ferry_dest_name(d));
        return;
    }
    p->dest = d;
    auth = ferry_dest_authentication(d);
    if (strcmp(auth, "NoAuthentication") != 0 && strcmp(auth, "BasicAuthentication") != 0 &&
        strcmp(auth, "ClientCertificateAuthentication") != 0) {
        /* OAuth2 and the other flows come with the policy engine (lua/ferry/auth). */
        plan_error(p, 502, "auth-not-supported",
                   "destination '%s': Authentication %s is not supported yet",
                   ferry_dest_name(d), auth);
        return;
    }
    replace_auth = strcmp(auth, "BasicAuthentication") == 0;
    if (count_fields(req->headers, req->header_count, "sap-connectivity-scc-location_id", &loc) == 1
        && loc->value.len < sizeof(p->location)) {
        /* SAP: the header overrides CloudConnectorLocationId (HTTP only). */
        snprintf(p->location, sizeof(p->location), "%.*s", (int)loc->value.len, loc->value.ptr);
        p->has_location = true;
    }
    tls_settings(d, p);
    p->upstream_timeout_ms = ferry_dest_prop(d, "URL.socketReadTimeoutInSeconds") != NULL
                                 ? ferry_dest_read_timeout_ms(d) : l->upstream_timeout_ms;
    scheme = ferry_dest_scheme(d);
    port = ferry_dest_port(d);
    snprintf(p->pool_key, sizeof(p->pool_key), "t|%s|%s|%s|%u|%s|%s|%d|%s",
             ferry_dest_name(d), scheme, ferry_dest_host(d), port,
             p->tlsopt.ca_file != NULL ? p->tlsopt.ca_file : "",
             p->tlsopt.cert_file != NULL ? p->tlsopt.cert_file : "", p->tlsopt.insecure,
             p->has_location ? p->location : "");

    sb_slice(b, &req->method_name);
    sb_add(b, " ", 1);
    add_path(b, ferry_dest_path(d), &req->path);
    add_queries(b, d, &req->query);
    sb_str(b, " HTTP/1.1\r\nHost: ");
    sb_str(b, strchr(ferry_dest_host(d), ':') != NULL ? "[" : "");
    sb_str(b, ferry_dest_host(d));
    sb_str(b, strchr(ferry_dest_host(d), ':') != NULL ? "]" : "");
    if (!((port == 80 && strcmp(scheme, "http") == 0) || (port == 443 && strcmp(scheme, "https") == 0)))
        sb_fmt(b, ":%u", port);
    sb_add(b, "\r\n", 2);
    for (size_t i = 0; i < req->header_count; i++) {
        const struct ferry_http_header *h = &req->headers[i];

        if (drop_field(h, req->headers, req->header_count, l->forwarded_headers) ||
            (replace_auth && ieq(&h->name, "authorization")))
            continue;
        sb_field(b, h);
    }
    add_common(c, l, req, b);
    if (!add_dest_fields(b, d, p))
        return;
    if (request_id != NULL)
        sb_fmt(b, "X-Request-Id: %s\r\n", request_id);
    sb_add(b, "\r\n", 2);
}

/* ---- forward mode ---------------------------------------------------------------------- */

/* Proxy-Authorization: Bearer <token> | Basic base64(tenant:token) | Basic base64(token:). */
static bool
proxy_auth(struct ferry_conn *c, const struct ferry_http_req *req)
{
    const struct ferry_http_header *h;
    char                            buf[4096];
    uint8_t                         dec[3072];
    bool                            ok = false;

    if (count_fields(req->headers, req->header_count, "proxy-authorization", &h) != 1 ||
        h->value.len >= sizeof(buf))
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
    const struct ferry_http_header *loc;
    size_t                          nloc;

    if (!l->auth_none && !proxy_auth(c, req)) {
        plan_error(p, 407, "proxy-auth-required",
                   "send Proxy-Authorization: Bearer <tenant token> (or Basic tenant:token)");
        return;
    }
    if ((nloc = count_fields(req->headers, req->header_count, "sap-connectivity-scc-location_id",
                             &loc)) > 1 ||
        (nloc == 1 && loc->value.len >= sizeof(p->location))) {
        plan_error(p, 400, "bad-location-header",
                   "SAP-Connectivity-SCC-Location_ID must be given once, under 256 bytes");
        return;
    }
    if (nloc == 1) {
        snprintf(p->location, sizeof(p->location), "%.*s", (int)loc->value.len, loc->value.ptr);
        p->has_location = true;
    }
    if (req->form == FERRY_HTTP_FORM_AUTHORITY) {           /* CONNECT host:port */
        if (req->host.len == 0 || req->host.len >= sizeof(p->host) || req->port_num == 0) {
            plan_error(p, 400, "bad-request", "CONNECT needs host:port");
            return;
        }
        snprintf(p->host, sizeof(p->host), "%.*s", (int)req->host.len, req->host.ptr);
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
    snprintf(p->host, sizeof(p->host), "%.*s", (int)req->host.len, req->host.ptr);
    p->port = req->port_num != 0 ? req->port_num : 80;
    p->upstream_timeout_ms = l->upstream_timeout_ms;
    snprintf(p->pool_key, sizeof(p->pool_key), "f|%s|%s|%s|%u",
             ferry_conn_tenant(c) != NULL ? ferry_conn_tenant(c) : "", p->location, p->host,
             p->port);

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
    sb_str(b, " HTTP/1.1\r\nHost: ");
    sb_str(b, strchr(p->host, ':') != NULL ? "[" : "");
    sb_str(b, p->host);
    sb_str(b, strchr(p->host, ':') != NULL ? "]" : "");
    if (p->port != 80)
        sb_fmt(b, ":%u", p->port);
    sb_add(b, "\r\n", 2);
    for (size_t i = 0; i < req->header_count; i++) {
        const struct ferry_http_header *h = &req->headers[i];

        if (drop_field(h, req->headers, req->header_count, l->forwarded_headers) ||
            ieq(&h->name, "sap-connectivity-authentication"))
            continue;
        sb_field(b, h);
    }
    add_common(c, l, req, b);
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
            const char *request_id, int conn, bool dechunk, struct sbuf *b)
{
    const struct ferry_http_header *h = NULL;

    sb_fmt(b, "HTTP/1.1 %d ", resp->code);
    sb_slice(b, &resp->phrase);
    sb_add(b, "\r\n", 2);
    for (size_t i = 0; i < resp->header_count; i++) {
        h = &resp->headers[i];
        if (ferry_http_is_hop_by_hop(h->name.ptr, h->name.len, resp->headers, resp->header_count))
            continue;
        if (request_id != NULL && ieq(&h->name, "x-request-id"))
            continue;
        sb_field(b, h);
    }
    if (resp->body == FERRY_HTTP_BODY_CHUNKED && !dechunk) {
        for (h = NULL; (h = ferry_http_header_find(resp->headers, resp->header_count,
                                                   "transfer-encoding", h)) != NULL;)
            sb_field(b, h);
        for (h = NULL; (h = ferry_http_header_find(resp->headers, resp->header_count, "trailer",
                                                   h)) != NULL;)
            sb_field(b, h);
    }
    if (resp->code == 101 &&
        (h = ferry_http_header_find(resp->headers, resp->header_count, "upgrade", NULL)) != NULL) {
        sb_str(b, "Connection: upgrade\r\n");
        sb_field(b, h);
    } else if (conn == RW_CLOSE) {
        sb_str(b, "Connection: close\r\n");
    } else if (conn == RW_KEEP_ALIVE) {
        sb_str(b, "Connection: keep-alive\r\n");
    }
    if (request_id != NULL && !l->forward)
        sb_fmt(b, "x-request-id: %s\r\n", request_id);
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
