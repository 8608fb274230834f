/*
 * chunked.c: the chunked transfer coding (RFC 9112 section 7.1), both ways.
 *
 * The decoder is a byte-wise state machine for the framing (size lines, CRLFs,
 * trailers) and hands payload back as slices of the caller's input, so a body of any
 * size streams through without being buffered. Every line it has to hold state for is
 * bounded: 16 hex digits, 1 KiB of extensions, 8 KiB of trailers. The encoder writes
 * chunk-size lines; the caller writes payload and the CRLF after it.
 */
#include <string.h>

#include <ferry/err.h>
#include <ferry/http.h>

#include "http/http-int.h"

enum {
    S_SIZE_FIRST = 0,  /* the first hex digit of a chunk-size */
    S_SIZE,            /* more hex digits, ';', BWS or CR */
    S_EXT_WS,          /* BWS after the size or a value: only ';' or more BWS may follow */
    S_EXT_NAME_PRE,    /* after ';': BWS, then a token */
    S_EXT_NAME,        /* in the extension name */
    S_EXT_NAME_WS,     /* BWS after the name: '=', ';' or CR */
    S_EXT_VAL_PRE,     /* after '=': BWS, then a token or a quoted-string */
    S_EXT_VAL,         /* in a token value */
    S_EXT_QUOTED,      /* in a quoted-string value */
    S_EXT_QUOTED_BS,   /* after a backslash in a quoted-string */
    S_EXT_QUOTED_END,  /* after the closing quote: ';', BWS or CR */
    S_SIZE_LF,         /* after the CR ending a size line */
    S_DATA,            /* payload: `remaining` bytes */
    S_DATA_CR,         /* the CRLF after the payload */
    S_DATA_LF,
    S_TR_START,        /* start of a trailer line, or of the final CRLF */
    S_TR_NAME,
    S_TR_VALUE,
    S_TR_LF,           /* after the CR ending a trailer field */
    S_END_LF,          /* after the CR of the final empty line */
    S_DONE,
    S_FAILED,
};

FERRY_API void
ferry_http_chunked_init(struct ferry_http_chunked *st)
{
    memset(st, 0, sizeof(*st));
    st->state = S_SIZE_FIRST;
}

static int
fail(struct ferry_http_chunked *st, int rc, const char *detail)
{
    st->state = S_FAILED;
    st->error = rc;
    st->reason = "bad-chunked";
    st->detail = detail;
    return rc;
}

/* One byte of a chunk-size line after the size: chunk-ext per RFC 9112 section 7.1.1,
 * chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ). Returns false if the
 * byte does not fit the grammar. */
static bool
ext_step(struct ferry_http_chunked *st, unsigned char c)
{
    bool ws = c == ' ' || c == '\t', tchar = http_is(c, HTTP_CC_TCHAR);

    switch (st->state) {
    case S_SIZE:
    case S_EXT_WS:
        if (c == ';')
            st->state = S_EXT_NAME_PRE;
        else if (ws)
            st->state = S_EXT_WS;
        else
            return false;
        return true;
    case S_EXT_NAME_PRE:
        if (tchar)
            st->state = S_EXT_NAME;
        return ws || tchar;
    case S_EXT_NAME:
    case S_EXT_NAME_WS:
        if (c == '=')
            st->state = S_EXT_VAL_PRE;
        else if (c == ';')
            st->state = S_EXT_NAME_PRE;
        else if (ws)
            st->state = S_EXT_NAME_WS;
        else if (!(tchar && st->state == S_EXT_NAME))
            return false;
        return true;
    case S_EXT_VAL_PRE:
        if (c == '"')
            st->state = S_EXT_QUOTED;
        else if (tchar)
            st->state = S_EXT_VAL;
        else if (!ws)
            return false;
        return true;
    case S_EXT_VAL:
    case S_EXT_QUOTED_END:
        if (c == ';')
            st->state = S_EXT_NAME_PRE;
        else if (ws)
            st->state = S_EXT_WS;
        else if (!(tchar && st->state == S_EXT_VAL))
            return false;
        return true;
    case S_EXT_QUOTED:
        if (c == '"')
            st->state = S_EXT_QUOTED_END;
        else if (c == '\\')
            st->state = S_EXT_QUOTED_BS;
        return http_is(c, HTTP_CC_VALUE);
    case S_EXT_QUOTED_BS:
        st->state = S_EXT_QUOTED;
        return http_is(c, HTTP_CC_VALUE);
    default:
        return false;
    }
}

/* Whether a CR may end the size line in the current state: after the size, a name, a
 * token value or a closing quote; never after BWS, ';', '=' or inside quotes. */
static bool
size_line_may_end(unsigned state)
{
    return state == S_SIZE || state == S_EXT_NAME || state == S_EXT_NAME_WS ||
           state == S_EXT_VAL || state == S_EXT_QUOTED_END;
}

static bool
trailer_keep(struct ferry_http_chunked *st, char c)
{
    if (st->trailers == NULL)
        return true;
    if (st->trailers_len == st->trailers_cap)
        return false;
    st->trailers[st->trailers_len++] = c;
    return true;
}

/* One byte of the trailer section: strict field lines as in a head, then CRLF. */
static int
trailer_step(struct ferry_http_chunked *st, unsigned char c)
{
    if (++st->trailer_bytes > FERRY_HTTP_MAX_TRAILER_BYTES)
        return fail(st, FERRY_ELIMIT, "trailers-too-large");
    switch (st->state) {
    case S_TR_START:
        if (c == '\r') {
            st->state = S_END_LF;
            return FERRY_OK;
        }
        if (c == ' ' || c == '\t')
            return fail(st, FERRY_EPROTO, "obs-fold");
        if (!http_is(c, HTTP_CC_TCHAR))
            return fail(st, FERRY_EPROTO, "bad-trailer-name");
        st->state = S_TR_NAME;
        break;
    case S_TR_NAME:
        if (c == ':')
            st->state = S_TR_VALUE;
        else if (!http_is(c, HTTP_CC_TCHAR))
            return fail(st, FERRY_EPROTO, "bad-trailer-name");
        break;
    case S_TR_VALUE:
        if (c == '\r')
            st->state = S_TR_LF;
        else if (!http_is(c, HTTP_CC_VALUE))
            return fail(st, FERRY_EPROTO, c == '\n' ? "bare-lf" : "bad-trailer-value");
        break;
    case S_TR_LF:
        if (c != '\n')
            return fail(st, FERRY_EPROTO, "bare-cr");
        st->trailer_count++;
        st->state = S_TR_START;
        break;
    case S_END_LF:
        if (c != '\n')
            return fail(st, FERRY_EPROTO, "bare-cr");
        st->state = S_DONE;
        return FERRY_OK;
    default:
        return fail(st, FERRY_EPROTO, "bad-state");
    }
    if (!trailer_keep(st, (char)c))
        return fail(st, FERRY_ELIMIT, "trailers-too-large");
    return FERRY_OK;
}

FERRY_API int
ferry_http_chunked_feed(struct ferry_http_chunked *st, const char *in, size_t len,
                        size_t *consumed, const char **data, size_t *data_len)
{
    size_t i = 0;
    int    rc;

    *data = NULL;
    *data_len = 0;
    *consumed = 0;
    if (st->state == S_DONE)
        return FERRY_HTTP_CHUNK_END;
    if (st->state == S_FAILED)
        return st->error;
    while (i < len) {
        unsigned char c;
        unsigned      d;

        if (st->state == S_DATA) {
            size_t n = len - i < st->remaining ? len - i : (size_t)st->remaining;

            *data = in + i;
            *data_len = n;
            st->remaining -= n;
            if (st->remaining == 0)
                st->state = S_DATA_CR;
            *consumed = i + n;
            return FERRY_HTTP_CHUNK_DATA;
        }
        c = (unsigned char)in[i++];
        switch (st->state) {
        case S_SIZE_FIRST:
        case S_SIZE:
            d = c >= '0' && c <= '9' ? c - '0'
                : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : 16;
            if (d < 16) {
                /* Leading zeros count too: the line, not only the value, is bounded. */
                if (++st->size_digits > FERRY_HTTP_MAX_CHUNK_SIZE_DIGITS) {
                    *consumed = i;
                    return fail(st, FERRY_ELIMIT, "chunk-size-too-long");
                }
                st->remaining = st->remaining << 4 | d;
                st->state = S_SIZE;
                break;
            }
            if (st->state == S_SIZE_FIRST) {
                *consumed = i;
                return fail(st, FERRY_EPROTO, "bad-chunk-size");
            }
            /* not a digit: an extension, BWS or the CR after the size */
            __attribute__((fallthrough));
        case S_EXT_WS:
        case S_EXT_NAME_PRE:
        case S_EXT_NAME:
        case S_EXT_NAME_WS:
        case S_EXT_VAL_PRE:
        case S_EXT_VAL:
        case S_EXT_QUOTED:
        case S_EXT_QUOTED_BS:
        case S_EXT_QUOTED_END:
            if (c == '\r' && size_line_may_end(st->state)) {
                st->state = S_SIZE_LF;
                break;
            }
            if (++st->ext_bytes > FERRY_HTTP_MAX_CHUNK_EXT_BYTES) {
                *consumed = i;
                return fail(st, FERRY_ELIMIT, "chunk-ext-too-long");
            }
            if (!ext_step(st, c)) {
                *consumed = i;
                return fail(st, FERRY_EPROTO, c == '\n' ? "bare-lf" : "bad-chunk-ext");
            }
            break;
        case S_SIZE_LF:
            if (c != '\n') {
                *consumed = i;
                return fail(st, FERRY_EPROTO, "bare-cr");
            }
            st->size_digits = 0;
            st->ext_bytes = 0;
            st->state = st->remaining > 0 ? S_DATA : S_TR_START;
            break;
        case S_DATA_CR:
            if (c != '\r') {
                *consumed = i;
                return fail(st, FERRY_EPROTO, "no-crlf-after-data");
            }
            st->state = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (c != '\n') {
                *consumed = i;
                return fail(st, FERRY_EPROTO, "bare-cr");
            }
            st->state = S_SIZE_FIRST;
            break;
        default:
            if ((rc = trailer_step(st, c)) != FERRY_OK) {
                *consumed = i;
                return rc;
            }
            if (st->state == S_DONE) {
                *consumed = i;
                return FERRY_HTTP_CHUNK_END;
            }
            break;
        }
    }
    *consumed = i;
    return FERRY_HTTP_CHUNK_MORE;
}

FERRY_API int
ferry_http_chunk_header(uint64_t size, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    char              tmp[16];
    size_t            n = 0;

    do {
        tmp[n++] = hex[size & 0xf];
        size >>= 4;
    } while (size > 0);
    if (cap < n + 3)
        return FERRY_ELIMIT;
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    memcpy(buf + n, "\r\n", 3);
    return (int)n + 2;
}
