/*
 * http-int.h: what the files of core/http/ share and plugins never see: the character
 * classes of RFC 9110 / RFC 3986 as one table, and small string helpers.
 */
#ifndef FERRY_HTTP_INT_H
#define FERRY_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/http.h>

#include "http/parse.h"

/* Bits of ferry_http_cc[byte]. */
#define HTTP_CC_TCHAR   0x01u   /* token character (RFC 9110 section 5.6.2) */
#define HTTP_CC_VALUE   0x02u   /* field-vchar, obs-text, SP, HTAB: a field value byte */
#define HTTP_CC_PCHAR   0x04u   /* RFC 3986 pchar without '%': unreserved, sub-delims, : @ */
#define HTTP_CC_HOST    0x08u   /* what we accept in a host name: unreserved only */
#define HTTP_CC_HEX     0x10u
#define HTTP_CC_SCHEME  0x20u   /* ALPHA DIGIT + - . */

extern const uint8_t ferry_http_cc[256];

static inline bool
http_is(unsigned char c, unsigned cls)
{
    return (ferry_http_cc[c] & cls) != 0;
}

static inline unsigned char
http_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Whether s[0..n) equals the lower-case NUL-terminated lit, ignoring ASCII case. */
static inline bool
http_ieq(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (lit[i] == '\0' || http_lower((unsigned char)s[i]) != http_lower((unsigned char)lit[i]))
            return false;
    return lit[i] == '\0';
}

/* Whether a[0..an) and b[0..bn) are equal ignoring ASCII case. */
static inline bool
http_ieq2(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++)
        if (http_lower((unsigned char)a[i]) != http_lower((unsigned char)b[i]))
            return false;
    return true;
}

static inline bool
http_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The next element of the comma-separated list v[0..len) from *pos, OWS trimmed; empty
 * elements come back with len 0. False when the list is exhausted. */
bool ferry_http_list_next(const char *v, size_t len, size_t *pos, struct ferry_http_str *el);

#endif
