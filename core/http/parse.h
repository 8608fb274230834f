/*
 * parse.h: the parsers' state, inside core (ferry/http.h has the plugins' view).
 *
 * These structs are the layout of ABI 1.2, when plugins allocated them: the functions
 * below stay exported with exactly that layout for plugins built against 1.1 and 1.2,
 * and must never change it. Core's own users (the connector, tests, the fuzz target)
 * use them directly; plugins of 1.3 on get a struct ferry_http_parser (parser.c) that
 * wraps them, so what core keeps may grow there instead.
 */
#ifndef FERRY_HTTP_PARSE_H
#define FERRY_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/http.h>

/* Where to resume after a return of 0. */
struct ferry_http_progress {
    uintptr_t             base;       /* the buffer's address on the last call */
    size_t                line;       /* offset of the first line not parsed yet */
    size_t                scan;       /* offset up to which that line was searched for LF */
    unsigned              phase;
    unsigned              cl_count;
    unsigned              te_count;   /* transfer-codings seen, all TE fields together */
    unsigned              te_chunked; /* how many of them were "chunked" */
    bool                  te_chunked_last;
    unsigned              host_count;
    struct ferry_http_str host_value;
};

struct ferry_http_req {
    /* In: set by ferry_http_req_init(). headers may be NULL (fields are then checked
     * and counted but not stored). */
    struct ferry_http_header *headers;       /* borrowed: the caller's array */
    size_t                    headers_cap;

    /* Out, valid after a return > 0. */
    enum ferry_http_method      method;
    struct ferry_http_str       method_name;
    unsigned                    version_minor;   /* 0 or 1: HTTP/1.0 or HTTP/1.1 */
    enum ferry_http_target_form form;
    struct ferry_http_str       target;          /* the request-target as received */
    struct ferry_http_str       scheme;          /* absolute-form only */
    struct ferry_http_str       host;            /* from the target, else from Host;
                                                  * an IPv6 literal without brackets */
    struct ferry_http_str       port;            /* ditto; ptr NULL when absent */
    uint16_t                    port_num;        /* 0 when port is absent */
    struct ferry_http_str       path;            /* origin/absolute-form; may be empty */
    struct ferry_http_str       query;           /* without '?'; ptr NULL when no '?' */
    size_t                      header_count;
    enum ferry_http_body        body;
    uint64_t                    content_length;  /* for FERRY_HTTP_BODY_LENGTH */
    unsigned                    connection;      /* FERRY_HTTP_CONN_* */
    bool                        keep_alive;      /* per version and Connection */
    bool                        expect_continue; /* Expect: 100-continue (HTTP/1.1) */
    bool                        upgrade;         /* an Upgrade field is present */

    /* Out, after a negative return: the status to answer and why (static strings). */
    int                         status;
    const char                 *reason;

    struct ferry_http_progress  progress;
};

struct ferry_http_resp {
    struct ferry_http_header *headers;       /* borrowed: the caller's array, or NULL */
    size_t                    headers_cap;

    unsigned                    version_minor;
    int                         code;            /* 100..599 */
    struct ferry_http_str       phrase;          /* reason-phrase; may be empty */
    size_t                      header_count;
    enum ferry_http_body        body;
    uint64_t                    content_length;
    unsigned                    connection;
    bool                        keep_alive;      /* false for BODY_EOF and BODY_TUNNEL too */
    bool                        upgrade;

    int                         status;          /* 502 after a negative return */
    const char                 *reason;

    struct ferry_http_progress  progress;
};

/*
 * The chunked-body decoder's state (ferry/http.h has the contract). Payload is yielded
 * in place, never copied. Trailer fields are checked (strict field syntax,
 * FERRY_HTTP_MAX_TRAILER_BYTES) and, if the caller set trailers/trailers_cap after
 * init, copied there as a raw field block ("name: value\r\n"...). Errors: FERRY_EPROTO
 * (syntax) or FERRY_ELIMIT (a bound), with reason "bad-chunked" and a more specific
 * detail.
 */
struct ferry_http_chunked {
    uint64_t    remaining;       /* payload bytes left in the current chunk */
    unsigned    state;
    unsigned    size_digits;
    size_t      ext_bytes;
    size_t      trailer_bytes;
    size_t      trailer_count;
    char       *trailers;        /* borrowed, optional: where trailer fields are copied */
    size_t      trailers_cap;
    size_t      trailers_len;
    int         error;           /* the negative return, repeated on later calls */
    const char *reason;          /* static, after a negative return */
    const char *detail;          /* static, after a negative return */
};

/* Reset r to parse a new message, storing up to headers_cap fields in headers. */
FERRY_API void ferry_http_req_init(struct ferry_http_req *r, struct ferry_http_header *headers,
                                   size_t headers_cap);
FERRY_API void ferry_http_resp_init(struct ferry_http_resp *r,
                                    struct ferry_http_header *headers, size_t headers_cap);

/* Parse a request head from buf[0..len). See the top of this file for return values. */
FERRY_API int ferry_http_parse_request(const char *buf, size_t len,
                                       const struct ferry_http_limits *lim,
                                       struct ferry_http_req *out);

/* Parse a response head; req_method (of the request it answers) decides the framing:
 * HEAD gets no body, CONNECT + 2xx is a tunnel. Errors set out->status to 502. */
FERRY_API int ferry_http_parse_response(const char *buf, size_t len,
                                        enum ferry_http_method req_method,
                                        const struct ferry_http_limits *lim,
                                        struct ferry_http_resp *out);

FERRY_API void ferry_http_chunked_init(struct ferry_http_chunked *st);

#endif
