/*
 * fields.c: the small public helpers around parsed heads: defaults and init, method
 * names, field lookup, list membership and the hop-by-hop rule a proxy applies when it
 * forwards a message. Parsing itself is in parse.c, bodies in chunked.c.
 */
#include <string.h>

#include <ferry/http.h>

#include "http/http-int.h"

FERRY_API void
ferry_http_limits_default(struct ferry_http_limits *lim)
{
    lim->max_head_bytes = FERRY_HTTP_MAX_HEAD_BYTES_DEFAULT;
    lim->max_headers = FERRY_HTTP_MAX_HEADERS_DEFAULT;
    lim->max_uri_bytes = FERRY_HTTP_MAX_URI_BYTES_DEFAULT;
}

FERRY_API void
ferry_http_req_init(struct ferry_http_req *r, struct ferry_http_header *headers,
                    size_t headers_cap)
{
    memset(r, 0, sizeof(*r));
    r->headers = headers;
    r->headers_cap = headers != NULL ? headers_cap : 0;
}

FERRY_API void
ferry_http_resp_init(struct ferry_http_resp *r, struct ferry_http_header *headers,
                     size_t headers_cap)
{
    memset(r, 0, sizeof(*r));
    r->headers = headers;
    r->headers_cap = headers != NULL ? headers_cap : 0;
}

FERRY_API enum ferry_http_method
ferry_http_method_of(const char *name, size_t len)
{
    static const struct {
        const char            *name;
        enum ferry_http_method method;
    } methods[] = {
        { "GET", FERRY_HTTP_GET },         { "HEAD", FERRY_HTTP_HEAD },
        { "POST", FERRY_HTTP_POST },       { "PUT", FERRY_HTTP_PUT },
        { "DELETE", FERRY_HTTP_DELETE },   { "CONNECT", FERRY_HTTP_CONNECT },
        { "OPTIONS", FERRY_HTTP_OPTIONS }, { "PATCH", FERRY_HTTP_PATCH },
        { "TRACE", FERRY_HTTP_TRACE },
    };

    /* Methods are case-sensitive (RFC 9110 section 9.1): "get" is some other method. */
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, name, len) == 0)
            return methods[i].method;
    return FERRY_HTTP_OTHER;
}

FERRY_API const struct ferry_http_header *
ferry_http_header_find(const struct ferry_http_header *headers, size_t count, const char *name,
                       const struct ferry_http_header *after)
{
    size_t i = after != NULL ? (size_t)(after - headers) + 1 : 0;

    for (; i < count; i++)
        if (http_ieq(headers[i].name.ptr, headers[i].name.len, name))
            return &headers[i];
    return NULL;
}

bool
ferry_http_list_next(const char *v, size_t len, size_t *pos, struct ferry_http_str *el)
{
    size_t i = *pos, end;

    if (i > len || (i == len && (len == 0 || v[len - 1] != ',')))
        return false;
    while (i < len && http_is_ows(v[i]))
        i++;
    el->ptr = v + i;
    while (i < len && v[i] != ',')
        i++;
    end = i;
    while (end > (size_t)(el->ptr - v) && http_is_ows(v[end - 1]))
        end--;
    el->len = end - (size_t)(el->ptr - v);
    *pos = i + 1;     /* past the comma; len + 1 once the last element is out */
    return true;
}

FERRY_API bool
ferry_http_list_has(const char *value, size_t len, const char *token)
{
    struct ferry_http_str el;
    size_t                pos = 0;

    while (ferry_http_list_next(value, len, &pos, &el))
        if (el.len > 0 && http_ieq(el.ptr, el.len, token))
            return true;
    return false;
}

FERRY_API bool
ferry_http_is_hop_by_hop(const char *name, size_t len, const struct ferry_http_header *headers,
                         size_t count)
{
    /* RFC 9110 section 7.6.1 names Connection, Proxy-Connection, Keep-Alive, TE,
     * Transfer-Encoding and Upgrade; Trailer goes with the chunked framing we redo, and
     * the Proxy-Auth* pair is meant for this proxy, never for the next hop. */
    static const char *const fixed[] = {
        "connection", "keep-alive", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate",
    };
    const struct ferry_http_header *c = NULL;

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (http_ieq(name, len, fixed[i]))
            return true;
    while ((c = ferry_http_header_find(headers, count, "connection", c)) != NULL) {
        struct ferry_http_str el;
        size_t                pos = 0;

        while (ferry_http_list_next(c->value.ptr, c->value.len, &pos, &el))
            if (el.len > 0 && http_ieq2(el.ptr, el.len, name, len))
                return true;
    }
    return false;
}
