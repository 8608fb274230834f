/*
 * parser.c: the parsers as plugins hold them from ABI 1.3 (ferry/http.h): behind a
 * pointer, with results core fills.
 *
 * Wraps the 1.2-layout state of parse.h, which stays exported unchanged for plugins
 * built before 1.3. Because core allocates these objects, what they hold may grow
 * without a plugin noticing; the result structs carry their size.
 */
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

#define PARSER_MAX_HEADERS 1000

struct ferry_http_parser {
    struct ferry_http_req      req;         /* state and results of the last request head */
    struct ferry_http_resp     resp;        /* ... and response head */
    struct ferry_http_request  rq;          /* the plugins' view of req */
    struct ferry_http_response rs;          /* ... and of resp */
    size_t                     cap;
    struct ferry_http_header   headers[];   /* shared by req and resp */
};

FERRY_API struct ferry_http_parser *
ferry_http_parser_new(size_t max_headers)
{
    struct ferry_http_parser *p;

    if (max_headers == 0)
        max_headers = FERRY_HTTP_MAX_HEADERS_DEFAULT;
    if (max_headers > PARSER_MAX_HEADERS)
        max_headers = PARSER_MAX_HEADERS;
    /* The header array is written before it is read (req_init/resp_init count what
     * they filled): left unzeroed, its pages stay untouched until a head has that many
     * fields, so an idle or slow connection costs the struct, not 256 entries. */
    if ((p = malloc(sizeof(*p) + max_headers * sizeof(p->headers[0]))) == NULL)
        return NULL;
    memset(p, 0, sizeof(*p));
    p->cap = max_headers;
    ferry_http_parser_reset(p);
    return p;
}

FERRY_API void
ferry_http_parser_free(struct ferry_http_parser *p)
{
    free(p);
}

FERRY_API void
ferry_http_parser_reset(struct ferry_http_parser *p)
{
    ferry_http_req_init(&p->req, p->headers, p->cap);
    ferry_http_resp_init(&p->resp, p->headers, p->cap);
    memset(&p->rq, 0, sizeof(p->rq));
    memset(&p->rs, 0, sizeof(p->rs));
    p->rq.size = sizeof(p->rq);
    p->rs.size = sizeof(p->rs);
    p->rq.headers = p->rs.headers = p->headers;
}

FERRY_API int
ferry_http_parser_request_head(struct ferry_http_parser *p, const char *buf, size_t len,
                               const struct ferry_http_limits *lim)
{
    const struct ferry_http_req *r = &p->req;
    struct ferry_http_request   *v = &p->rq;
    int                          rc = ferry_http_parse_request(buf, len, lim, &p->req);

    v->headers = r->headers;
    v->header_count = r->header_count;
    v->method = r->method;
    v->method_name = r->method_name;
    v->version_minor = r->version_minor;
    v->form = r->form;
    v->target = r->target;
    v->scheme = r->scheme;
    v->host = r->host;
    v->port = r->port;
    v->port_num = r->port_num;
    v->path = r->path;
    v->query = r->query;
    v->body = r->body;
    v->content_length = r->content_length;
    v->connection = r->connection;
    v->keep_alive = r->keep_alive;
    v->expect_continue = r->expect_continue;
    v->upgrade = r->upgrade;
    v->status = r->status;
    v->reason = r->reason;
    return rc;
}

FERRY_API int
ferry_http_parser_response_head(struct ferry_http_parser *p, const char *buf, size_t len,
                                enum ferry_http_method req_method,
                                const struct ferry_http_limits *lim)
{
    const struct ferry_http_resp *r = &p->resp;
    struct ferry_http_response   *v = &p->rs;
    int rc = ferry_http_parse_response(buf, len, req_method, lim, &p->resp);

    v->headers = r->headers;
    v->header_count = r->header_count;
    v->version_minor = r->version_minor;
    v->code = r->code;
    v->phrase = r->phrase;
    v->body = r->body;
    v->content_length = r->content_length;
    v->connection = r->connection;
    v->keep_alive = r->keep_alive;
    v->upgrade = r->upgrade;
    v->status = r->status;
    v->reason = r->reason;
    return rc;
}

FERRY_API const struct ferry_http_request *
ferry_http_parser_request(const struct ferry_http_parser *p)
{
    return &p->rq;
}

FERRY_API const struct ferry_http_response *
ferry_http_parser_response(const struct ferry_http_parser *p)
{
    return &p->rs;
}

FERRY_API struct ferry_http_chunked *
ferry_http_chunked_new(void)
{
    struct ferry_http_chunked *st = malloc(sizeof(*st));

    if (st != NULL)
        ferry_http_chunked_init(st);
    return st;
}

FERRY_API void
ferry_http_chunked_free(struct ferry_http_chunked *st)
{
    free(st);
}

FERRY_API void
ferry_http_chunked_reset(struct ferry_http_chunked *st)
{
    char  *trailers = st->trailers;
    size_t cap = st->trailers_cap;

    ferry_http_chunked_init(st);
    st->trailers = trailers;        /* the caller's buffer outlives one body */
    st->trailers_cap = cap;
}

FERRY_API void
ferry_http_chunked_set_trailers(struct ferry_http_chunked *st, char *buf, size_t cap)
{
    st->trailers = buf;
    st->trailers_cap = buf != NULL ? cap : 0;
}

FERRY_API size_t
ferry_http_chunked_trailers_len(const struct ferry_http_chunked *st)
{
    return st->trailers_len;
}

FERRY_API int
ferry_http_chunked_error(const struct ferry_http_chunked *st, const char **reason,
                         const char **detail)
{
    if (reason != NULL)
        *reason = st->reason;
    if (detail != NULL)
        *detail = st->detail;
    return st->error;
}
