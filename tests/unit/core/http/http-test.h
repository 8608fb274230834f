/*
 * http-test.h: helpers the core/http tests share: parse a request or response whole,
 * or one byte at a time from a buffer that moves on every call (so resuming and
 * rebasing are exercised), and compare two parses slice by slice.
 */
#ifndef FERRY_TEST_HTTP_H
#define FERRY_TEST_HTTP_H

#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>
#include <ferry/http.h>

#include "http/parse.h"

#define TEST_MAX_HEADERS 128

/* Whether a slice holds exactly the NUL-terminated lit. */
static inline int
str_is(struct ferry_http_str s, const char *lit)
{
    return s.ptr != NULL && s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* Offset of a slice in its buffer, or -1 for an absent part. */
static inline long
off_of(struct ferry_http_str s, const char *base)
{
    return s.ptr == NULL ? -1 : (long)(s.ptr - base);
}

static inline int
same_str(struct ferry_http_str a, const char *abase, struct ferry_http_str b,
         const char *bbase)
{
    return off_of(a, abase) == off_of(b, bbase) && a.len == b.len;
}

/*
 * Feed buf[0..len) one byte more per call, each time from a fresh copy at a new
 * address. Returns the first non-zero result (or 0); *copy is the last buffer, which
 * the caller frees after comparing slices.
 */
static inline int
req_bytewise(const char *buf, size_t len, const struct ferry_http_limits *lim,
             struct ferry_http_req *r, char **copy)
{
    int rc = 0;

    *copy = NULL;
    for (size_t k = 1; k <= len; k++) {
        char *c = malloc(k);

        memcpy(c, buf, k);
        rc = ferry_http_parse_request(c, k, lim, r);
        free(*copy);
        *copy = c;
        if (rc != 0)
            break;
    }
    return rc;
}

static inline int
resp_bytewise(const char *buf, size_t len, enum ferry_http_method m,
              const struct ferry_http_limits *lim, struct ferry_http_resp *r, char **copy)
{
    int rc = 0;

    *copy = NULL;
    for (size_t k = 1; k <= len; k++) {
        char *c = malloc(k);

        memcpy(c, buf, k);
        rc = ferry_http_parse_response(c, k, m, lim, r);
        free(*copy);
        *copy = c;
        if (rc != 0)
            break;
    }
    return rc;
}

/* Whether two request parses (rc already equal) agree on every output. */
static inline int
req_same(const struct ferry_http_req *a, const char *ab, const struct ferry_http_req *b,
         const char *bb)
{
    if (a->status != b->status || (a->reason == NULL) != (b->reason == NULL) ||
        (a->reason != NULL && strcmp(a->reason, b->reason) != 0))
        return 0;
    if (a->reason != NULL)
        return 1;
    if (a->method != b->method || a->version_minor != b->version_minor ||
        a->form != b->form || a->header_count != b->header_count || a->body != b->body ||
        a->content_length != b->content_length || a->connection != b->connection ||
        a->keep_alive != b->keep_alive || a->expect_continue != b->expect_continue ||
        a->upgrade != b->upgrade || a->port_num != b->port_num)
        return 0;
    if (!same_str(a->method_name, ab, b->method_name, bb) ||
        !same_str(a->target, ab, b->target, bb) || !same_str(a->scheme, ab, b->scheme, bb) ||
        !same_str(a->host, ab, b->host, bb) || !same_str(a->port, ab, b->port, bb) ||
        !same_str(a->path, ab, b->path, bb) || !same_str(a->query, ab, b->query, bb))
        return 0;
    for (size_t i = 0; i < a->header_count && a->headers != NULL; i++)
        if (!same_str(a->headers[i].name, ab, b->headers[i].name, bb) ||
            !same_str(a->headers[i].value, ab, b->headers[i].value, bb))
            return 0;
    return 1;
}

static inline int
resp_same(const struct ferry_http_resp *a, const char *ab, const struct ferry_http_resp *b,
          const char *bb)
{
    if (a->status != b->status || (a->reason == NULL) != (b->reason == NULL) ||
        (a->reason != NULL && strcmp(a->reason, b->reason) != 0))
        return 0;
    if (a->reason != NULL)
        return 1;
    if (a->code != b->code || a->version_minor != b->version_minor ||
        a->header_count != b->header_count || a->body != b->body ||
        a->content_length != b->content_length || a->keep_alive != b->keep_alive ||
        a->connection != b->connection || a->upgrade != b->upgrade ||
        !same_str(a->phrase, ab, b->phrase, bb))
        return 0;
    for (size_t i = 0; i < a->header_count && a->headers != NULL; i++)
        if (!same_str(a->headers[i].name, ab, b->headers[i].name, bb) ||
            !same_str(a->headers[i].value, ab, b->headers[i].value, bb))
            return 0;
    return 1;
}

#endif
