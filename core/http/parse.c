/*
 * parse.c: HTTP/1.x request and response heads (RFC 9112 sections 2-6), in place.
 *
 * Owns the line discipline (CRLF only), the start lines, field syntax, the limits and
 * the framing decision (Content-Length, Transfer-Encoding, Host, Connection, Expect).
 * Bodies are someone else's: chunked.c decodes chunked ones, the caller counts the rest.
 *
 * Work is done line by line: a line is parsed once it is complete (its LF is in the
 * buffer), and a call that returns 0 records where the incomplete line starts, so the
 * next call neither rescans the finished lines nor searches the same bytes for LF again.
 * The checks that must fire before a line completes (414, 431) are monotonic in the
 * bytes seen, so fed whole or one byte at a time a head gets the same verdict.
 */
#include <limits.h>
#include <string.h>

#include <ferry/err.h>
#include <ferry/http.h>

#include "http/http-int.h"

enum {
    PHASE_FRESH = 0,   /* nothing parsed: the next call starts a new message */
    PHASE_START,       /* waiting for the start line (leading CRLFs skipped) */
    PHASE_FIELDS,      /* start line done, waiting for fields or the empty line */
    PHASE_DONE,        /* returned > 0 or < 0: the next call starts a new message */
};

struct limits {
    size_t head_bytes;
    size_t headers;
    size_t uri_bytes;
};

/* A parse failure: the status to answer, the reason, the FERRY_E* to return. */
struct verdict {
    int         status;
    const char *reason;
    int         rc;
};

static void
limits_of(const struct ferry_http_limits *lim, struct limits *out)
{
    out->head_bytes = lim != NULL && lim->max_head_bytes > 0 ? lim->max_head_bytes
                                                            : FERRY_HTTP_MAX_HEAD_BYTES_DEFAULT;
    out->headers = lim != NULL && lim->max_headers > 0 ? lim->max_headers
                                                      : FERRY_HTTP_MAX_HEADERS_DEFAULT;
    out->uri_bytes = lim != NULL && lim->max_uri_bytes > 0 ? lim->max_uri_bytes
                                                          : FERRY_HTTP_MAX_URI_BYTES_DEFAULT;
    /* The head length is returned as an int. */
    if (out->head_bytes > INT_MAX)
        out->head_bytes = INT_MAX;
}

static void
str_shift(struct ferry_http_str *s, uintptr_t delta)
{
    /* Unsigned arithmetic wraps, so this also moves slices down; it never dereferences
     * the old buffer, which the caller may have freed. */
    if (s->ptr != NULL)
        s->ptr = (const char *)((uintptr_t)s->ptr + delta);
}

static void
headers_shift(struct ferry_http_header *h, size_t n, uintptr_t delta)
{
    for (size_t i = 0; i < n; i++) {
        str_shift(&h[i].name, delta);
        str_shift(&h[i].value, delta);
    }
}

/*
 * Find the next line in buf[0..end): true with [*s, *s + *n) the raw line (its CR kept,
 * its LF not), or false when its LF is not there yet. Searching resumes where the last
 * call stopped, so a head fed in small pieces is searched once.
 */
static bool
next_line(const char *buf, size_t end, struct ferry_http_progress *pg, const char **s,
          size_t *n)
{
    const char *lf = NULL;

    if (end > pg->scan)
        lf = memchr(buf + pg->scan, '\n', end - pg->scan);
    if (lf == NULL) {
        pg->scan = end > pg->scan ? end : pg->scan;
        return false;
    }
    *s = buf + pg->line;
    *n = (size_t)(lf - *s);
    pg->line = pg->scan = (size_t)(lf - buf) + 1;
    return true;
}

/* Strip the CR of a raw line; NULL or the reason the line ending is refused. */
static const char *
line_end(const char *s, size_t *n)
{
    /* RFC 9112 section 2.2 lets a recipient take a bare LF as a line end. We refuse it:
     * a proxy that accepts what the next hop rejects (or splits it differently) is how
     * requests are smuggled. A CR anywhere but before the LF is refused likewise. */
    if (*n == 0 || s[*n - 1] != '\r')
        return "bare-lf";
    (*n)--;
    if (memchr(s, '\r', *n) != NULL)
        return "bare-cr";
    return NULL;
}

/* The request-target's length in a request line, complete or not: from the first SP
 * to the next SP or CR. Used for 414 before and after the line completes. */
static size_t
target_len(const char *s, size_t n)
{
    const char *sp = memchr(s, ' ', n);
    size_t      i, j;

    if (sp == NULL)
        return 0;
    i = j = (size_t)(sp - s) + 1;
    while (j < n && s[j] != ' ' && s[j] != '\r')
        j++;
    return j - i;
}

/* "HTTP/" DIGIT "." DIGIT: 0 for 1.0 and 1.1 (minor in *minor), 505 for another
 * well-formed version (we speak 1.0 and 1.1 only, not 1.2 as if it were 1.1), 400
 * for anything else. */
static int
version_of(const char *s, size_t n, unsigned *minor)
{
    if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || s[5] < '0' || s[5] > '9' || s[6] != '.' ||
        s[7] < '0' || s[7] > '9')
        return 400;
    if (s[5] != '1' || s[7] > '1')
        return 505;
    *minor = (unsigned)(s[7] - '0');
    return 0;
}

/*
 * uri-host [":" port]. Stricter than RFC 3986: a reg-name is unreserved characters
 * only (no pct-encoding, no sub-delims), an IP-literal is hex, ':' and '.' (no
 * IPvFuture, no zone), and a ':' must be followed by a 1-5 digit port <= 65535. These
 * names end up in DNS lookups, logs and policy matches, where "%2e" or ";" only
 * confuse. The host slice of an IP-literal excludes the brackets.
 */
static bool
authority_split(const char *s, size_t n, bool need_port, struct ferry_http_str *host,
                struct ferry_http_str *port, uint16_t *port_num)
{
    size_t   i = 0, hs, he;
    uint32_t p = 0;

    if (n > 0 && s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!http_is((unsigned char)s[i], HTTP_CC_HEX) && s[i] != ':' && s[i] != '.')
                return false;
        if (i == n || i < 3)
            return false;
        hs = 1;
        he = i++;
    } else {
        while (i < n && http_is((unsigned char)s[i], HTTP_CC_HOST))
            i++;
        if (i == 0)
            return false;
        hs = 0;
        he = i;
    }
    host->ptr = s + hs;
    host->len = he - hs;
    port->ptr = NULL;
    port->len = 0;
    *port_num = 0;
    if (i == n)
        return !need_port;
    if (s[i++] != ':' || i == n || n - i > 5)
        return false;
    port->ptr = s + i;
    port->len = n - i;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        p = p * 10 + (uint32_t)(s[i] - '0');
    }
    if (p > 65535)
        return false;
    *port_num = (uint16_t)p;
    return true;
}

/* path-abempty/absolute-path [ "?" query ] per RFC 3986, strictly: no fragment, no
 * space, no '\\', '"', '<', '>', '^', '`', '{', '|', '}' and no raw non-ASCII. */
static bool
path_query_split(const char *s, size_t n, struct ferry_http_str *path,
                 struct ferry_http_str *query)
{
    bool   in_query = false;
    size_t i;

    path->ptr = s;
    path->len = n;
    query->ptr = NULL;
    query->len = 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (http_is(c, HTTP_CC_PCHAR) || c == '/')
            continue;
        if (c == '%') {
            if (n - i < 3 || !http_is((unsigned char)s[i + 1], HTTP_CC_HEX) ||
                !http_is((unsigned char)s[i + 2], HTTP_CC_HEX))
                return false;
            i += 2;
        } else if (c == '?') {
            if (!in_query) {
                in_query = true;
                path->len = i;
                query->ptr = s + i + 1;
                query->len = n - i - 1;
            }
        } else {
            return false;
        }
    }
    return true;
}

/* The request-target in its four forms (RFC 9112 section 3.2). */
static const char *
target_split(struct ferry_http_req *r)
{
    const char *t = r->target.ptr;
    size_t      n = r->target.len, i, a;

    if (t[0] == '/') {
        r->form = FERRY_HTTP_FORM_ORIGIN;
        if (r->method == FERRY_HTTP_CONNECT)
            return "bad-target";
        return path_query_split(t, n, &r->path, &r->query) ? NULL : "bad-target";
    }
    if (n == 1 && t[0] == '*') {
        r->form = FERRY_HTTP_FORM_ASTERISK;
        return r->method == FERRY_HTTP_OPTIONS ? NULL : "bad-target";
    }
    if (r->method == FERRY_HTTP_CONNECT) {
        /* CONNECT takes authority-form and nothing else (RFC 9112 section 3.2.3). */
        r->form = FERRY_HTTP_FORM_AUTHORITY;
        return authority_split(t, n, true, &r->host, &r->port, &r->port_num) ? NULL
                                                                              : "bad-target";
    }
    /* absolute-form: scheme "://" authority path-abempty [ "?" query ]. An http(s) URI
     * always has an authority, so "//" is required; userinfo is refused (RFC 9110
     * section 4.2.4: a recipient should treat it as an error). */
    r->form = FERRY_HTTP_FORM_ABSOLUTE;
    if (!((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z')))
        return "bad-target";
    for (i = 1; i < n && http_is((unsigned char)t[i], HTTP_CC_SCHEME); i++)
        ;
    if (n - i < 3 || memcmp(t + i, "://", 3) != 0)
        return "bad-target";
    r->scheme.ptr = t;
    r->scheme.len = i;
    a = i + 3;
    for (i = a; i < n && t[i] != '/' && t[i] != '?'; i++)
        ;
    if (!authority_split(t + a, i - a, false, &r->host, &r->port, &r->port_num))
        return "bad-target";
    return path_query_split(t + i, n - i, &r->path, &r->query) ? NULL : "bad-target";
}

static const char *
request_line(const char *s, size_t n, struct ferry_http_req *r, int *status)
{
    const char *sp1, *sp2;
    size_t      i;
    int         v;

    /* Exactly one SP between the parts (RFC 9112 section 3): no tabs, no runs. */
    if ((sp1 = memchr(s, ' ', n)) == NULL || sp1 == s)
        return sp1 == s ? "bad-method" : "bad-request";
    for (i = 0; s + i < sp1; i++)
        if (!http_is((unsigned char)s[i], HTTP_CC_TCHAR))
            return "bad-method";
    r->method_name.ptr = s;
    r->method_name.len = i;
    r->method = ferry_http_method_of(s, i);
    sp2 = memchr(sp1 + 1, ' ', (size_t)(s + n - sp1 - 1));
    if (sp2 == NULL)
        return "bad-request";            /* HTTP/0.9 "GET /" is not spoken here */
    if (sp2 == sp1 + 1)
        return "bad-target";
    if ((v = version_of(sp2 + 1, (size_t)(s + n - sp2 - 1), &r->version_minor)) != 0) {
        *status = v;
        return "bad-version";
    }
    r->target.ptr = sp1 + 1;
    r->target.len = (size_t)(sp2 - sp1 - 1);
    return target_split(r);
}

/*
 * Whether every byte of s[0..n) may be in a field value (no CTL but HTAB, no DEL). Eight
 * bytes per step: "some byte < 0x20" and "some byte == 0x7f" are exact word tests
 * (hasless/haszero); a word that trips one, HTAB included, is rechecked byte by byte.
 * Values are most of a head's bytes, so this is most of the parser's time.
 */
static bool
value_bytes_ok(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t         i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t x, del;

        memcpy(&x, s + i, 8);
        del = x ^ (0x7f * ones);
        if ((((x - 0x20 * ones) & ~x) | ((del - ones) & ~del)) & highs)
            break;
    }
    for (; i < n; i++)
        if (!http_is((unsigned char)s[i], HTTP_CC_VALUE))
            return false;
    return true;
}

/* field-name ":" OWS field-value OWS (RFC 9112 section 5), strictly. */
static const char *
field_split(const char *s, size_t n, struct ferry_http_header *h)
{
    size_t i = 0, vs, ve;

    /* obs-fold (RFC 9112 section 5.2): a line starting with SP/HTAB continues the last
     * field; a server may reject it with 400, and a proxy must, or unfold it. We reject.
     * Whitespace before the first field (section 2.2) is refused the same way. */
    if (n > 0 && http_is_ows(s[0]))
        return "obs-fold";
    while (i < n && http_is((unsigned char)s[i], HTTP_CC_TCHAR))
        i++;
    /* No whitespace between name and colon (section 5.1: MUST reject with 400). */
    if (i == 0 || i == n || s[i] != ':')
        return "bad-header-name";
    h->name.ptr = s;
    h->name.len = i++;
    while (i < n && http_is_ows(s[i]))
        i++;
    vs = i;
    if (!value_bytes_ok(s + i, n - i))
        return "bad-header-value";        /* a CTL: NUL, DEL, ... (CR was caught before) */
    ve = n;
    while (ve > vs && http_is_ows(s[ve - 1]))
        ve--;
    h->value.ptr = s + vs;
    h->value.len = ve - vs;
    return NULL;
}

/* 1*DIGIT, once. A list ("5, 5") or a second field is refused even if the values agree:
 * RFC 9110 section 8.6 allows merging them, but a peer that takes the first or the
 * last instead is exactly what smuggling needs. */
static const char *
content_length(struct ferry_http_str v, struct ferry_http_progress *pg, uint64_t *out)
{
    uint64_t x = 0;

    if (++pg->cl_count > 1 || memchr(v.ptr, ',', v.len) != NULL)
        return "duplicate-content-length";
    if (v.len == 0)
        return "bad-content-length";
    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned char)v.ptr[i] - '0';

        if (d > 9)
            return "bad-content-length";     /* sign, space, hex, ... */
        if (x > ((uint64_t)INT64_MAX - d) / 10)
            return "bad-content-length";     /* beyond what off_t can count */
        x = x * 10 + d;
    }
    *out = x;
    return NULL;
}

/* transfer-coding list; the verdict (chunked last, nothing else) waits for the end of
 * the head because codings may be split over several Transfer-Encoding fields. */
static const char *
transfer_encoding(struct ferry_http_str v, struct ferry_http_progress *pg)
{
    struct ferry_http_str el;
    size_t                pos = 0;

    if (v.len == 0)
        return "bad-transfer-encoding";
    while (ferry_http_list_next(v.ptr, v.len, &pos, &el)) {
        size_t i = 0;

        /* RFC 9110 section 5.6.1 says to ignore empty list elements; in this field we
         * refuse them: ", chunked" is a known way to make two parsers disagree. */
        if (el.len == 0)
            return "bad-transfer-encoding";
        while (i < el.len && http_is((unsigned char)el.ptr[i], HTTP_CC_TCHAR))
            i++;
        if (i == 0)
            return "bad-transfer-encoding";
        for (size_t k = i; k < el.len; k++)          /* parameters: tokens, no quotes */
            if (!http_is((unsigned char)el.ptr[k], HTTP_CC_TCHAR) && el.ptr[k] != ';' &&
                el.ptr[k] != '=' && !http_is_ows(el.ptr[k]))
                return "bad-transfer-encoding";
        pg->te_count++;
        pg->te_chunked_last = i == el.len && http_ieq(el.ptr, el.len, "chunked");
        if (pg->te_chunked_last)
            pg->te_chunked++;
    }
    return NULL;
}

static const char *
connection(struct ferry_http_str v, unsigned *flags)
{
    struct ferry_http_str el;
    size_t                pos = 0;

    while (ferry_http_list_next(v.ptr, v.len, &pos, &el)) {
        if (el.len == 0)
            continue;
        for (size_t i = 0; i < el.len; i++)
            if (!http_is((unsigned char)el.ptr[i], HTTP_CC_TCHAR))
                return "bad-header-value";
        if (http_ieq(el.ptr, el.len, "close"))
            *flags |= FERRY_HTTP_CONN_CLOSE;
        else if (http_ieq(el.ptr, el.len, "keep-alive"))
            *flags |= FERRY_HTTP_CONN_KEEP_ALIVE;
        else if (http_ieq(el.ptr, el.len, "upgrade"))
            *flags |= FERRY_HTTP_CONN_UPGRADE;
        else
            *flags |= FERRY_HTTP_CONN_OTHER;
    }
    return NULL;
}

/* The fields whose meaning the parser itself needs; the rest are only stored. */
enum known { K_OTHER, K_HOST, K_EXPECT, K_UPGRADE, K_CONNECTION, K_CL, K_TE };

static enum known
known_of(const struct ferry_http_str *name)
{
    switch (name->len) {
    case 4:
        return http_ieq(name->ptr, 4, "host") ? K_HOST : K_OTHER;
    case 6:
        return http_ieq(name->ptr, 6, "expect") ? K_EXPECT : K_OTHER;
    case 7:
        return http_ieq(name->ptr, 7, "upgrade") ? K_UPGRADE : K_OTHER;
    case 10:
        return http_ieq(name->ptr, 10, "connection") ? K_CONNECTION : K_OTHER;
    case 14:
        return http_ieq(name->ptr, 14, "content-length") ? K_CL : K_OTHER;
    case 17:
        return http_ieq(name->ptr, 17, "transfer-encoding") ? K_TE : K_OTHER;
    default:
        return K_OTHER;
    }
}

static const char *
request_field(struct ferry_http_req *r, const struct ferry_http_header *h, int *status)
{
    struct ferry_http_progress *pg = &r->progress;
    struct ferry_http_str       host, port;
    uint16_t                    port_num;

    switch (known_of(&h->name)) {
    case K_HOST:
        /* RFC 9112 section 3.2: 400 for a missing, repeated or invalid Host. */
        if (++pg->host_count > 1 || !authority_split(h->value.ptr, h->value.len, false, &host,
                                                     &port, &port_num))
            return "bad-host";
        pg->host_value = h->value;
        return NULL;
    case K_EXPECT:
        /* HTTP/1.0 servers must ignore 100-continue (RFC 9110 section 10.1.1). */
        if (r->version_minor == 0)
            return NULL;
        if (!http_ieq(h->value.ptr, h->value.len, "100-continue")) {
            *status = 417;
            return "unsupported-expect";
        }
        r->expect_continue = true;
        return NULL;
    case K_UPGRADE:
        r->upgrade = r->version_minor == 1;   /* ignored in HTTP/1.0 (RFC 9110 7.8) */
        return NULL;
    case K_CONNECTION:
        return connection(h->value, &r->connection);
    case K_CL:
        return content_length(h->value, pg, &r->content_length);
    case K_TE:
        return transfer_encoding(h->value, pg);
    default:
        return NULL;
    }
}

/* Framing and the checks that need every field (RFC 9112 section 6). */
/* RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive". */
static bool
keep_alive_of(unsigned version_minor, unsigned connection)
{
    if (connection & FERRY_HTTP_CONN_CLOSE)
        return false;
    return version_minor == 1 || (connection & FERRY_HTTP_CONN_KEEP_ALIVE) != 0;
}

static const char *
request_end(struct ferry_http_req *r, int *status)
{
    struct ferry_http_progress *pg = &r->progress;
    struct ferry_http_str       host, port;
    uint16_t                    port_num;

    if (r->version_minor == 1 && pg->host_count == 0)
        return "bad-host";
    if (pg->te_count > 0) {
        /* RFC 9112 section 6.1 lets TE override CL; we refuse the pair (it "ought to be
         * handled as an error"), since the next hop may pick the other one. */
        if (pg->cl_count > 0)
            return "smuggling-cl-te";
        if (r->version_minor == 0)
            return "bad-transfer-encoding";   /* RFC 9112 6.1: faulty framing in 1.0 */
        if (!pg->te_chunked_last || pg->te_chunked > 1)
            return "bad-transfer-encoding";   /* RFC 9112 6.3: MUST answer 400 */
        if (pg->te_count > 1) {
            *status = 501;
            return "unsupported-transfer-encoding";
        }
        r->body = FERRY_HTTP_BODY_CHUNKED;
    } else if (pg->cl_count > 0) {
        r->body = FERRY_HTTP_BODY_LENGTH;
    }
    /* CONNECT has no content (RFC 9110 section 9.3.6); bytes after its head belong to
     * the tunnel, so a body there would be read twice. */
    if (r->method == FERRY_HTTP_CONNECT &&
        (r->body == FERRY_HTTP_BODY_CHUNKED || r->content_length > 0))
        return "connect-with-body";
    if (r->host.ptr == NULL && pg->host_value.ptr != NULL) {
        authority_split(pg->host_value.ptr, pg->host_value.len, false, &host, &port, &port_num);
        r->host = host;
        r->port = port;
        r->port_num = port_num;
    }
    r->keep_alive = keep_alive_of(r->version_minor, r->connection);
    return NULL;
}

static void
req_reset(struct ferry_http_req *r)
{
    struct ferry_http_header *h = r->headers;
    size_t                    cap = r->headers_cap;

    memset(r, 0, sizeof(*r));
    r->headers = h;
    r->headers_cap = h != NULL ? cap : 0;
    r->progress.phase = PHASE_START;
}

static void
req_shift(struct ferry_http_req *r, uintptr_t delta)
{
    str_shift(&r->method_name, delta);
    str_shift(&r->target, delta);
    str_shift(&r->scheme, delta);
    str_shift(&r->host, delta);
    str_shift(&r->port, delta);
    str_shift(&r->path, delta);
    str_shift(&r->query, delta);
    str_shift(&r->progress.host_value, delta);
    if (r->headers != NULL)
        headers_shift(r->headers, r->header_count, delta);
}

/* Whether this call continues a head that returned 0 last time. Fewer bytes than were
 * already searched means the caller started something else: start over. */
static bool
resuming(const struct ferry_http_progress *pg, size_t len)
{
    return (pg->phase == PHASE_START || pg->phase == PHASE_FIELDS) && len >= pg->scan;
}

FERRY_API int
ferry_http_parse_request(const char *buf, size_t len, const struct ferry_http_limits *lim,
                         struct ferry_http_req *out)
{
    struct ferry_http_progress *pg = &out->progress;
    struct ferry_http_header    h;
    struct verdict              bad = { 400, NULL, FERRY_EPROTO };
    struct limits               L;
    size_t                      end, max_fields;
    const char                 *s;
    size_t                      n;

    limits_of(lim, &L);
    if (!resuming(pg, len))
        req_reset(out);
    else if ((uintptr_t)buf != pg->base)
        req_shift(out, (uintptr_t)buf - pg->base);
    pg->base = (uintptr_t)buf;
    max_fields = out->headers != NULL && out->headers_cap < L.headers ? out->headers_cap
                                                                       : L.headers;
    /* A head must end within head_bytes, so bytes past that are never searched. */
    end = len < L.head_bytes ? len : L.head_bytes;
    for (;;) {
        if (!next_line(buf, end, pg, &s, &n)) {
            if (pg->phase == PHASE_START && end > pg->line && end - pg->line > L.uri_bytes &&
                target_len(buf + pg->line, end - pg->line) > L.uri_bytes)
                goto uri_too_long;
            if (len >= L.head_bytes) {
                bad = (struct verdict){ 431, "headers-too-large", FERRY_ELIMIT };
                goto fail;
            }
            return 0;
        }
        if (pg->phase == PHASE_START && target_len(s, n) > L.uri_bytes)
            goto uri_too_long;
        if ((bad.reason = line_end(s, &n)) != NULL)
            goto fail;
        if (pg->phase == PHASE_START) {
            if (n == 0)
                continue;      /* RFC 9112 section 2.2: CRLFs before a request-line */
            if ((bad.reason = request_line(s, n, out, &bad.status)) != NULL)
                goto fail;
            pg->phase = PHASE_FIELDS;
            continue;
        }
        if (n == 0)
            break;
        if (out->header_count >= max_fields) {
            bad = (struct verdict){ 431, "too-many-headers", FERRY_ELIMIT };
            goto fail;
        }
        if ((bad.reason = field_split(s, n, &h)) != NULL ||
            (bad.reason = request_field(out, &h, &bad.status)) != NULL)
            goto fail;
        if (out->headers != NULL)
            out->headers[out->header_count] = h;
        out->header_count++;
    }
    if ((bad.reason = request_end(out, &bad.status)) != NULL)
        goto fail;
    pg->phase = PHASE_DONE;
    return (int)pg->line;

uri_too_long:
    bad = (struct verdict){ 414, "uri-too-long", FERRY_ELIMIT };
fail:
    pg->phase = PHASE_DONE;
    out->status = bad.status;
    out->reason = bad.reason;
    return bad.rc;
}

/* HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 section 4). */
static const char *
status_line(const char *s, size_t n, struct ferry_http_resp *r)
{
    size_t i;

    if (n < 12 || s[8] != ' ' || version_of(s, 8, &r->version_minor) != 0)
        return "bad-version";
    for (i = 9; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return "bad-status";
    r->code = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (r->code < 100 || r->code > 599)
        return "bad-status";
    /* The one leniency: "HTTP/1.1 200" without the SP before an empty reason. It is
     * unambiguous, and some origins send it. */
    if (n == 12) {
        r->phrase.ptr = s + 12;
        r->phrase.len = 0;
        return NULL;
    }
    if (s[12] != ' ')
        return "bad-status";
    for (i = 13; i < n; i++)
        if (!http_is((unsigned char)s[i], HTTP_CC_VALUE))
            return "bad-status";
    r->phrase.ptr = s + 13;
    r->phrase.len = n - 13;
    return NULL;
}

static const char *
response_field(struct ferry_http_resp *r, const struct ferry_http_header *h)
{
    switch (known_of(&h->name)) {
    case K_UPGRADE:
        r->upgrade = true;
        return NULL;
    case K_CONNECTION:
        return connection(h->value, &r->connection);
    case K_CL:
        return content_length(h->value, &r->progress, &r->content_length);
    case K_TE:
        return transfer_encoding(h->value, &r->progress);
    default:
        return NULL;
    }
}

/* Framing of a response (RFC 9112 section 6.3, in its order). */
static const char *
response_end(struct ferry_http_resp *r, enum ferry_http_method req_method)
{
    struct ferry_http_progress *pg = &r->progress;

    if (pg->te_count > 0) {
        if (pg->cl_count > 0)
            return "smuggling-cl-te";      /* a proxy must not forward both (6.3 item 3) */
        if (r->version_minor == 0 || pg->te_chunked > 1)
            return "bad-transfer-encoding";
    }
    if (r->code == 101)
        r->body = FERRY_HTTP_BODY_TUNNEL;
    else if (req_method == FERRY_HTTP_HEAD || r->code < 200 || r->code == 204 || r->code == 304)
        r->body = FERRY_HTTP_BODY_NONE;
    else if (req_method == FERRY_HTTP_CONNECT && r->code < 300)
        r->body = FERRY_HTTP_BODY_TUNNEL;
    else if (pg->te_count > 0)
        r->body = pg->te_chunked_last ? FERRY_HTTP_BODY_CHUNKED : FERRY_HTTP_BODY_EOF;
    else if (pg->cl_count > 0)
        r->body = FERRY_HTTP_BODY_LENGTH;
    else
        r->body = FERRY_HTTP_BODY_EOF;
    r->keep_alive = keep_alive_of(r->version_minor, r->connection);
    if (r->body == FERRY_HTTP_BODY_EOF || r->body == FERRY_HTTP_BODY_TUNNEL)
        r->keep_alive = false;
    return NULL;
}

static void
resp_reset(struct ferry_http_resp *r)
{
    struct ferry_http_header *h = r->headers;
    size_t                    cap = r->headers_cap;

    memset(r, 0, sizeof(*r));
    r->headers = h;
    r->headers_cap = h != NULL ? cap : 0;
    r->progress.phase = PHASE_START;
}

FERRY_API int
ferry_http_parse_response(const char *buf, size_t len, enum ferry_http_method req_method,
                          const struct ferry_http_limits *lim, struct ferry_http_resp *out)
{
    struct ferry_http_progress *pg = &out->progress;
    struct ferry_http_header    h;
    struct verdict              bad = { 502, NULL, FERRY_EPROTO };
    struct limits               L;
    size_t                      end, max_fields;
    const char                 *s;
    size_t                      n;

    limits_of(lim, &L);
    if (!resuming(pg, len)) {
        resp_reset(out);
    } else if ((uintptr_t)buf != pg->base) {
        str_shift(&out->phrase, (uintptr_t)buf - pg->base);
        if (out->headers != NULL)
            headers_shift(out->headers, out->header_count, (uintptr_t)buf - pg->base);
    }
    pg->base = (uintptr_t)buf;
    max_fields = out->headers != NULL && out->headers_cap < L.headers ? out->headers_cap
                                                                       : L.headers;
    end = len < L.head_bytes ? len : L.head_bytes;
    for (;;) {
        if (!next_line(buf, end, pg, &s, &n)) {
            if (len >= L.head_bytes) {
                bad = (struct verdict){ 502, "headers-too-large", FERRY_ELIMIT };
                goto fail;
            }
            return 0;
        }
        if ((bad.reason = line_end(s, &n)) != NULL)
            goto fail;
        if (pg->phase == PHASE_START) {
            /* No leading CRLFs here: a server has no reason to send them, and extra
             * bytes after a body usually mean the framing was already wrong. */
            if ((bad.reason = status_line(s, n, out)) != NULL)
                goto fail;
            pg->phase = PHASE_FIELDS;
            continue;
        }
        if (n == 0)
            break;
        if (out->header_count >= max_fields) {
            bad = (struct verdict){ 502, "too-many-headers", FERRY_ELIMIT };
            goto fail;
        }
        if ((bad.reason = field_split(s, n, &h)) != NULL ||
            (bad.reason = response_field(out, &h)) != NULL)
            goto fail;
        if (out->headers != NULL)
            out->headers[out->header_count] = h;
        out->header_count++;
    }
    if ((bad.reason = response_end(out, req_method)) != NULL)
        goto fail;
    pg->phase = PHASE_DONE;
    return (int)pg->line;

fail:
    pg->phase = PHASE_DONE;
    out->status = bad.status;
    out->reason = bad.reason;
    return bad.rc;
}
