/*
 * ferry/http.h: a strict HTTP/1.1 message-head parser and body framer (RFC 9110, 9112).
 *
 * Used by the http plugin and by the connector. The parsers run in place over a buffer
 * the caller owns, and every ferry_http_str they fill is a (pointer, length) slice into
 * that buffer, valid while the caller keeps those bytes. Slices are not NUL-terminated.
 *
 * Strict means that anything a lenient peer might read differently is refused, because
 * two readers disagreeing on where a message ends is request smuggling: CL with TE,
 * duplicate or odd Content-Length, obs-fold, bare CR, bare LF, whitespace before a colon.
 *
 * ABI 1.3: the parsers' state is core's. A plugin holds a struct ferry_http_parser (and a
 * struct ferry_http_chunked) by pointer, from ferry_http_parser_new(); what a head says
 * comes back as a struct ferry_http_request / ferry_http_response that core fills and
 * owns, with its size set (FERRY_HAS_FIELD for fields newer than the plugin's minor).
 *
 * Head parsers return bytes consumed (> 0) when the head is complete, 0 when more bytes
 * are needed, or a negative FERRY_E* (FERRY_EPROTO for malformed input, FERRY_ELIMIT
 * for a limit) with the HTTP status to answer in ->status and a short stable
 * machine-readable reason in ->reason ("smuggling-cl-te", "uri-too-long", ...).
 *
 * Incremental use: after a return of 0, call again with the same bytes plus more (the
 * buffer may have moved: slices are rebased). Work is resumed at the first line not yet
 * complete, so feeding a head byte by byte costs linear time, not quadratic. After any
 * other return, the next call starts a new message; ferry_http_parser_reset() also does.
 */
#ifndef FERRY_HTTP_H
#define FERRY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/api.h>

#define FERRY_HTTP_MAX_HEAD_BYTES_DEFAULT  (16 * 1024)  /* 431 past this */
#define FERRY_HTTP_MAX_HEADERS_DEFAULT     100          /* 431 past this */
#define FERRY_HTTP_MAX_URI_BYTES_DEFAULT   (8 * 1024)   /* 414 past this */
#define FERRY_HTTP_MAX_TRAILER_BYTES       (8 * 1024)   /* chunked trailer section */
#define FERRY_HTTP_MAX_CHUNK_EXT_BYTES     1024         /* extensions of one chunk line */
#define FERRY_HTTP_MAX_CHUNK_SIZE_DIGITS   16           /* hex digits: fits uint64_t */
#define FERRY_HTTP_CHUNK_HEADER_MAX        19           /* "ffffffffffffffff\r\n" + NUL */
#define FERRY_HTTP_LAST_CHUNK              "0\r\n\r\n"  /* last chunk, no trailers */

/* A slice of the caller's buffer; ptr is NULL when the part is absent. */
struct ferry_http_str {
    const char *ptr;
    size_t      len;
};

struct ferry_http_header {
    struct ferry_http_str name;    /* a token, case as received */
    struct ferry_http_str value;   /* OWS trimmed both sides; may be empty */
};

/* A field of 0 means "the default". A NULL limits pointer means all defaults. */
struct ferry_http_limits {
    size_t max_head_bytes;   /* start line + fields + empty line, leading CRLFs included */
    size_t max_headers;      /* also capped by the caller's headers_cap, if headers given */
    size_t max_uri_bytes;    /* request-target as received */
};

enum ferry_http_method {
    FERRY_HTTP_OTHER = 0,    /* any other valid token: see method_name */
    FERRY_HTTP_GET,
    FERRY_HTTP_HEAD,
    FERRY_HTTP_POST,
    FERRY_HTTP_PUT,
    FERRY_HTTP_DELETE,
    FERRY_HTTP_CONNECT,
    FERRY_HTTP_OPTIONS,
    FERRY_HTTP_PATCH,
    FERRY_HTTP_TRACE,
};

enum ferry_http_target_form {
    FERRY_HTTP_FORM_ORIGIN = 1,   /* /path?query */
    FERRY_HTTP_FORM_ABSOLUTE,     /* http://host:port/path?query (proxy requests) */
    FERRY_HTTP_FORM_AUTHORITY,    /* host:port (CONNECT only) */
    FERRY_HTTP_FORM_ASTERISK,     /* * (OPTIONS only) */
};

/* How the message body is delimited (RFC 9112 section 6.3). */
enum ferry_http_body {
    FERRY_HTTP_BODY_NONE = 0,     /* no body */
    FERRY_HTTP_BODY_LENGTH,       /* exactly content_length bytes (may be 0) */
    FERRY_HTTP_BODY_CHUNKED,      /* feed the bytes to ferry_http_chunked_feed() */
    FERRY_HTTP_BODY_EOF,          /* responses only: until the server closes */
    FERRY_HTTP_BODY_TUNNEL,       /* responses only: 2xx to CONNECT, 101: raw bytes follow */
};

/* Tokens seen in Connection header fields. */
#define FERRY_HTTP_CONN_CLOSE       0x1u
#define FERRY_HTTP_CONN_KEEP_ALIVE  0x2u
#define FERRY_HTTP_CONN_UPGRADE     0x4u
#define FERRY_HTTP_CONN_OTHER       0x8u   /* other tokens: they name hop-by-hop fields */

/* What a request head says (ferry_http_parser_request). Filled and owned by core, valid
 * until the parser's next call; size is core's sizeof. */
struct ferry_http_request {
    uint32_t                    size;
    const struct ferry_http_header *headers;     /* the parser's array */
    size_t                      header_count;
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
    enum ferry_http_body        body;
    uint64_t                    content_length;  /* for FERRY_HTTP_BODY_LENGTH */
    unsigned                    connection;      /* FERRY_HTTP_CONN_* */
    bool                        keep_alive;      /* per version and Connection */
    bool                        expect_continue; /* Expect: 100-continue (HTTP/1.1) */
    bool                        upgrade;         /* an Upgrade field is present */
    /* After a negative return: the status to answer and why (static strings). */
    int                         status;
    const char                 *reason;
};

/* What a response head says (ferry_http_parser_response); as above. */
struct ferry_http_response {
    uint32_t                    size;
    const struct ferry_http_header *headers;
    size_t                      header_count;
    unsigned                    version_minor;
    int                         code;            /* 100..599 */
    struct ferry_http_str       phrase;          /* reason-phrase; may be empty */
    enum ferry_http_body        body;
    uint64_t                    content_length;
    unsigned                    connection;
    bool                        keep_alive;      /* false for BODY_EOF and BODY_TUNNEL too */
    bool                        upgrade;
    int                         status;          /* 502 after a negative return */
    const char                 *reason;
};

/* A head parser: its state, its field array and the two results. Opaque. */
struct ferry_http_parser;

/* Fill lim with the defaults above. */
FERRY_API void ferry_http_limits_default(struct ferry_http_limits *lim);

/* A parser storing up to max_headers fields (0: FERRY_HTTP_MAX_HEADERS_DEFAULT; at most
 * 1000) per head; NULL when out of memory. Owned by the caller: ferry_http_parser_free().
 * Requests and responses share its field array: a head's fields are valid until the
 * next parse call of either kind. */
FERRY_API struct ferry_http_parser *ferry_http_parser_new(size_t max_headers);
FERRY_API void ferry_http_parser_free(struct ferry_http_parser *p);
/* Forget a head in progress: the next call starts a new message. */
FERRY_API void ferry_http_parser_reset(struct ferry_http_parser *p);

/* Parse a request head from buf[0..len). See the top of this file for return values;
 * the result is in ferry_http_parser_request(p). */
FERRY_API int ferry_http_parser_request_head(struct ferry_http_parser *p, const char *buf,
                                             size_t len, const struct ferry_http_limits *lim);
/* Parse a response head; req_method (of the request it answers) decides the framing:
 * HEAD gets no body, CONNECT + 2xx is a tunnel. Errors set status to 502. */
FERRY_API int ferry_http_parser_response_head(struct ferry_http_parser *p, const char *buf,
                                              size_t len, enum ferry_http_method req_method,
                                              const struct ferry_http_limits *lim);
/* The last results; never NULL. */
FERRY_API const struct ferry_http_request *
ferry_http_parser_request(const struct ferry_http_parser *p);
FERRY_API const struct ferry_http_response *
ferry_http_parser_response(const struct ferry_http_parser *p);

/* The method enum for a method token (case-sensitive, as RFC 9110 says). */
FERRY_API enum ferry_http_method ferry_http_method_of(const char *name, size_t len);

/* The first field named name (case-insensitive, NUL-terminated) after `after` (NULL:
 * from the start), or NULL. Loop with after = the previous hit for repeated fields. */
FERRY_API const struct ferry_http_header *
ferry_http_header_find(const struct ferry_http_header *headers, size_t count, const char *name,
                       const struct ferry_http_header *after);

/* Whether the comma-separated list value[0..len) holds token (case-insensitive). */
FERRY_API bool ferry_http_list_has(const char *value, size_t len, const char *token);

/* Whether a field must not be forwarded by a proxy (RFC 9110 section 7.6.1): the fixed
 * hop-by-hop set, or any name listed in a Connection field of headers[0..count). */
FERRY_API bool ferry_http_is_hop_by_hop(const char *name, size_t len,
                                        const struct ferry_http_header *headers,
                                        size_t count);

/*
 * Streaming chunked-body decoder. Payload is yielded in place, never copied. Trailer
 * fields are checked (strict field syntax, FERRY_HTTP_MAX_TRAILER_BYTES) and, if the
 * caller gave a buffer (ferry_http_chunked_set_trailers), copied there as a raw field
 * block ("name: value\r\n"...). Errors: FERRY_EPROTO (syntax) or FERRY_ELIMIT (a bound),
 * with reason "bad-chunked" and a more specific detail (ferry_http_chunked_error).
 */
struct ferry_http_chunked;      /* opaque */

enum ferry_http_chunk_ret {
    FERRY_HTTP_CHUNK_MORE = 0,   /* all input consumed, no payload in it: feed more */
    FERRY_HTTP_CHUNK_DATA = 1,   /* *data, *data_len: payload; feed the rest after it */
    FERRY_HTTP_CHUNK_END  = 2,   /* last chunk and trailers done; bytes after *consumed
                                  * belong to the next message */
};

/* A decoder at the start of a body; NULL when out of memory. The caller frees it. */
FERRY_API struct ferry_http_chunked *ferry_http_chunked_new(void);
FERRY_API void ferry_http_chunked_free(struct ferry_http_chunked *st);
/* Start a new body. */
FERRY_API void ferry_http_chunked_reset(struct ferry_http_chunked *st);
/* Copy trailer fields into buf[0..cap) (borrowed until the body ends). */
FERRY_API void ferry_http_chunked_set_trailers(struct ferry_http_chunked *st, char *buf,
                                               size_t cap);
/* How many bytes of trailer fields were copied. */
FERRY_API size_t ferry_http_chunked_trailers_len(const struct ferry_http_chunked *st);
/* After a negative feed: its code, and static strings for why (NULL before). */
FERRY_API int ferry_http_chunked_error(const struct ferry_http_chunked *st, const char **reason,
                                       const char **detail);

/* Decode from in[0..len). *consumed is how many bytes were used (payload included);
 * returns a ferry_http_chunk_ret or a negative FERRY_E*. */
FERRY_API int ferry_http_chunked_feed(struct ferry_http_chunked *st, const char *in,
                                      size_t len, size_t *consumed, const char **data,
                                      size_t *data_len);

/* Write "<hex size>\r\n" (NUL-terminated) into buf; returns its length without the NUL,
 * or FERRY_ELIMIT if cap < FERRY_HTTP_CHUNK_HEADER_MAX could not hold it. A size of 0
 * starts the last chunk: follow it with trailers and "\r\n". */
FERRY_API int ferry_http_chunk_header(uint64_t size, char *buf, size_t cap);

#endif
