/*
 * rewrite.c: the heads the http plugin writes: the upstream request (transparent and
 * forward mode), the client's response, and ferry's own error replies.
 *
 * The upstream request is built fresh from the parsed client head, never patched in
 * place: the request line in origin-form, Host for the real target, the client's
 * fields minus hop-by-hop ones and minus what was meant for ferry (proxy credentials,
 * destination and location selectors), the X-Forwarded-* set, then what the
 * destination adds. That last part (joined path, URL.queries.*, URL.headers.*, Basic
 * credentials) is core's ferry_dest_http_new(), which `ferry policy test` shows, so
 * the two cannot disagree. It runs after the policy's on_request. Framing fields
 * (Content-Length, Transfer-Encoding) are kept exactly: bodies pass through as
 * received, and the parser already refused every ambiguous framing.
 *
 * Leaves choosing the target to target.c, authenticating the tenant to tenant.c, the
 * destination's policy to policy.c, and the building blocks to head.c.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <ferry/dest.h>
#include <ferry/err.h>
#include <ferry/policy.h>

#include "http-int.h"

/* The upstream head for destination p->dest from req (the client's, or as its
 * policy left it). */
static void
transparent_head(struct ferry_conn *c, const struct http_listener *l,
                 const struct ferry_http_request *req, const char *reqid, struct http_plan *p,
                 struct sbuf *b)
{
    const struct ferry_dest *d = p->dest;
    struct hidx              x;
    struct ferry_dest_http  *add = NULL;
    struct ferry_err         err = { 0 };
    const char              *scheme, *q, *uid;
    uint16_t                 port;
    char                     portbuf[8];
    int                      rc;

    hd_classify(req->headers, req->header_count, req->connection, &x);
    if (x.count[H_LOC] == 1 && x.first[H_LOC]->value.len < sizeof(p->location))
        hd_set_location(p, x.first[H_LOC]);   /* SAP: overrides CloudConnectorLocationId */
    target_tls(d, p);
    p->upstream_timeout_ms = ferry_dest_prop(d, "URL.socketReadTimeoutInSeconds") != NULL
                                 ? ferry_dest_read_timeout_ms(d) : l->upstream_timeout_ms;
    scheme = ferry_dest_scheme(d);
    port = ferry_dest_port(d);
    hd_utoa(portbuf, sizeof(portbuf), port);
    if ((uid = user_pool_part(p)) == NULL) {
        plan_error(p, 500, "no-memory", "out of memory");
        return;
    }
    {
        /* The user first: a long key is cut at its end, and the user must never be. */
        const char *parts[] = {
            "t", uid, ferry_dest_name(d), scheme, ferry_dest_host(d), portbuf, p->tlsopt.ca_file,
            p->tlsopt.cert_file, p->tlsopt.insecure ? "1" : "0", p->has_location ? "L" : "-",
            p->location,
        };

        hd_key_join(p->pool_key, sizeof(p->pool_key), parts, sizeof(parts) / sizeof(parts[0]));
    }

    /* What the destination adds (core computes it for `ferry policy test` too). */
    if ((rc = ferry_dest_http_new(d, req->path.ptr, req->path.len, req->query.ptr,
                                  req->query.len, &add, &err)) != FERRY_OK) {
        if (rc == FERRY_ENOMEM)
            plan_error(p, 500, "no-memory", "out of memory");
        else if (rc == FERRY_ELIMIT)    /* as when the head outgrows its cap (http.c) */
            plan_error(p, 431, "header-too-large", "the rewritten request head is too large");
        else
            plan_error(p, 502, "destination-invalid", "%s", err.msg);
        return;
    }
    q = ferry_dest_http_query(add);
    sb_slice(b, &req->method_name);
    sb_add(b, " ", 1);
    sb_str(b, ferry_dest_http_path(add));
    if (q != NULL) {
        sb_add(b, "?", 1);
        sb_str(b, q);
    }
    hd_add_host(b, ferry_dest_host(d), port,
             (port == 80 && strcmp(scheme, "http") == 0) ||
             (port == 443 && strcmp(scheme, "https") == 0));
    hd_copy_fields(b, req->headers, req->header_count, &x, l->forwarded_headers,
                ferry_dest_http_replaces(add, "Authorization"), false);
    hd_add_common(c, l, req, &x, b);
    for (size_t i = 0; i < ferry_dest_http_nfields(add); i++) {
        const char *name, *value;

        ferry_dest_http_field(add, i, &name, &value);
        sb_str(b, name);
        sb_add(b, ": ", 2);
        sb_str(b, value);
        sb_add(b, "\r\n", 2);
    }
    ferry_dest_http_free(add);
    sb_str(b, "X-Request-Id: ");
    sb_str(b, reqid);
    sb_add(b, "\r\n\r\n", 4);
}

/* req without the fields that carry the user's token (into out, over kept): neither the
 * policy nor the backend sees the token. The backend authenticates the user by the
 * certificate the connector issues, so its Authorization has nothing left to say, and
 * an SSL_CLIENT_CERT of the client's would claim to be that certificate: it goes too
 * (the connector drops one as well; a connector that predates principal propagation
 * would not). */
static const struct ferry_http_request *
strip_token(const struct ferry_http_request *req, const struct hidx *x,
            struct ferry_http_request *out, struct ferry_http_header *kept)
{
    size_t k = 0;

    for (size_t i = 0; i < req->header_count && i < HTTP_MAX_HEADERS_CAP; i++)
        if (x->kind[i] != H_AUTHZ && x->kind[i] != H_SAPAUTH && x->kind[i] != H_SSLCERT)
            kept[k++] = req->headers[i];
    *out = *req;
    out->headers = kept;
    out->header_count = k;
    return out;
}

void
rw_transparent(struct ferry_conn *c, const struct http_listener *l,
               const struct ferry_http_request *req, char *reqid, size_t reqid_size,
               struct http_plan *p, struct sbuf *b, struct hp_scratch **sc,
               ferry_policy_cb cb, void *arg)
{
    struct hidx              x;
    const struct ferry_dest *d;
    const char              *auth;
    bool                     policy, pp;
    struct ferry_http_request stripped;
    struct ferry_http_header  kept[HTTP_MAX_HEADERS_CAP];

    hd_classify(req->headers, req->header_count, req->connection, &x);
    hd_request_id(&x, reqid, reqid_size);
    if ((d = target_dest(c, l, req, &x, p)) == NULL)
        return;
    if (ferry_dest_type(d) != FERRY_DEST_HTTP) {
        plan_error(p, 502, "destination-invalid", "destination '%s' is not of Type HTTP",
                   ferry_dest_name(d));
        return;
    }
    p->dest = d;
    auth = ferry_dest_authentication(d);
    policy = ferry_policy_has(c, d, "on_request");
    pp = strcmp(auth, "PrincipalPropagation") == 0;
    /* OAuth2* run as Lua modules (lua/ferry/auth/), an implicit on_request. */
    if (strcmp(auth, "NoAuthentication") != 0 && strcmp(auth, "BasicAuthentication") != 0 &&
        strcmp(auth, "ClientCertificateAuthentication") != 0 && !pp &&
        (!policy || strncmp(auth, "OAuth2", 6) != 0)) {
        plan_error(p, 502, "auth-not-supported",
                   "destination '%s': Authentication %s is not supported yet",
                   ferry_dest_name(d), auth);
        return;
    }
    if (pp) {
        /* The connector speaks for the user (it issues the certificate): no tunnel, no
         * principal propagation. Said before the token is looked at. */
        if (ferry_dest_proxy_type(d) != FERRY_PROXY_ONPREMISE) {
            plan_error(p, 502, "destination-invalid",
                       "destination '%s': PrincipalPropagation needs ProxyType OnPremise",
                       ferry_dest_name(d));
            return;
        }
        if (!user_take(c, ferry_dest_tenant(d), &x, true, true, p))
            return;
        req = strip_token(req, &x, &stripped, kept);
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
    const struct ferry_http_request *req = hp_request_done(sc, rc, v, p);

    p->waiting = false;
    if (req == NULL)
        return;
    transparent_head(c, l, req, reqid, p, b);
    hp_done(sc);
}

void
rw_request_id(char *out, size_t size)
{
    hd_request_id(NULL, out, size);
}

void
rw_forward(struct ferry_conn *c, const struct http_listener *l,
           const struct ferry_http_request *req, struct http_plan *p, struct sbuf *b)
{
    struct hidx x;
    char        portbuf[8];
    const char *uid;
    int         rc;

    hd_classify(req->headers, req->header_count, req->connection, &x);
    if (!l->auth_none && (rc = tenant_auth(c, &x)) != FERRY_OK) {
        if (rc == FERRY_ELIMIT)
            plan_error(p, 429, "tenant-limit", "the tenant has max_connections open "
                       "connections; retry when one has closed");
        else
            plan_error(p, 407, "proxy-auth-required",
                       "send Proxy-Authorization: Bearer <tenant token> (or Basic tenant:token)");
        return;
    }
    /* A user token is optional here: without one the request is the tenant's. With
     * one, the stream to the connector carries the user (CONNECT too: a system with
     * `principal_propagation: tls` presents the user's certificate). */
    if (!user_take(c, NULL, &x, false, false, p))
        return;
    if (target_forward(req, &x, p) <= 0)   /* an error, or CONNECT: no head to build */
        return;
    p->upstream_timeout_ms = l->upstream_timeout_ms;
    hd_utoa(portbuf, sizeof(portbuf), p->port);
    if ((uid = user_pool_part(p)) == NULL) {
        plan_error(p, 500, "no-memory", "out of memory");
        return;
    }
    {
        const char *parts[] = { "f", uid, ferry_conn_tenant(c), p->location, p->host, portbuf };

        hd_key_join(p->pool_key, sizeof(p->pool_key), parts, sizeof(parts) / sizeof(parts[0]));
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
    hd_add_host(b, p->host, p->port, p->port == 80);
    hd_copy_fields(b, req->headers, req->header_count, &x, l->forwarded_headers, false, true);
    hd_add_common(c, l, req, &x, b);
    sb_add(b, "\r\n", 2);
}

const char *
rw_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
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
rw_response(const struct http_listener *l, const struct ferry_http_response *resp,
            const char *reqid, int conn, bool dechunk, struct sbuf *b)
{
    struct hidx x;
    const struct ferry_http_header *h = resp->headers;
    size_t                          n = resp->header_count;

    hd_classify(h, n, resp->connection, &x);
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
         const char *request_id, unsigned retry_after_s, struct sbuf *b)
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
    if (retry_after_s != 0)     /* RFC 9110 10.2.3: delay-seconds */
        sb_fmt(b, "Retry-After: %u\r\n", retry_after_s);
    if (status == 401)          /* the user's token (principal propagation), RFC 6750 */
        sb_fmt(b, "WWW-Authenticate: Bearer realm=\"ferry\"%s\r\n",
               strcmp(reason, "user-token-invalid") == 0 ? ", error=\"invalid_token\"" : "");
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

