/*
 * proxy.c: PROXY protocol v1 and v2 headers (proxy.h). Only the header: reading it off
 * a socket within a deadline, and what its address then means, is the worker's job.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <ferry/err.h>

#include "util/proxy.h"

static const uint8_t v2_sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

static int
fail(const char **why, const char *reason)
{
    *why = reason;
    return FERRY_EPROTO;
}

/* "0".."65535" without a sign or leading zero (the spec writes ports that way). */
static bool
v1_port(const char *s, size_t len, uint16_t *out)
{
    unsigned v = 0;

    if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* The next space-separated field of line[*at..end): exactly one space before the
 * next field, none at either end. */
static bool
v1_field(const char *line, size_t end, size_t *at, const char **f, size_t *flen)
{
    size_t i = *at;

    while (i < end && line[i] != ' ')
        i++;
    if (i == *at)
        return false;
    *f = line + *at;
    *flen = i - *at;
    *at = i < end ? i + 1 : i;          /* past the one space, if any */
    return i == end || i + 1 < end;     /* a trailing space is no field */
}

static int
parse_v1(const uint8_t *p, size_t n, struct ferry_proxy_hdr *out, const char **why)
{
    static const char prefix[] = "PROXY ";
    const char       *line = (const char *)p;
    const char       *f[5];
    size_t            flen[5], end = 0, at = 6;
    char              text[INET6_ADDRSTRLEN];
    int               family;
    uint16_t          sport, dport;

    if (memcmp(p, prefix, n < 6 ? n : 6) != 0)
        return fail(why, "bad-signature");
    for (size_t i = 0; i < n && i < FERRY_PROXY_V1_MAX && end == 0; i++) {
        if (p[i] == '\r' && i + 1 == n)   /* its \n may be on the way, if it fits */
            return n < FERRY_PROXY_V1_MAX ? 0 : fail(why, "too-long");
        if (p[i] == '\r' && p[i + 1] == '\n' && i + 2 <= FERRY_PROXY_V1_MAX)
            end = i;
        else if (p[i] < 0x20 || p[i] > 0x7e)
            return fail(why, "bad-character");
    }
    if (end == 0)
        return n >= FERRY_PROXY_V1_MAX ? fail(why, "too-long") : 0;
    if (end < 6)
        return fail(why, "bad-signature");
    out->len = end + 2;
    if (end - at >= 7 && memcmp(line + at, "UNKNOWN", 7) == 0 &&
        (end - at == 7 || line[at + 7] == ' ')) {
        out->local = true;              /* the rest of the line is ignored (spec 2.1) */
        return 1;
    }
    if (end - at < 5 || line[at + 4] != ' ' ||
        (memcmp(line + at, "TCP4", 4) != 0 && memcmp(line + at, "TCP6", 4) != 0))
        return fail(why, "bad-protocol");
    family = line[at + 3] == '4' ? AF_INET : AF_INET6;
    at += 5;
    for (int k = 0; k < 4; k++)
        if (!v1_field(line, end, &at, &f[k], &flen[k]))
            return fail(why, "bad-fields");
    if (at != end)
        return fail(why, "bad-fields");
    if (!v1_port(f[2], flen[2], &sport) || !v1_port(f[3], flen[3], &dport))
        return fail(why, "bad-port");
    if (flen[0] >= sizeof(text))
        return fail(why, "bad-address");
    memcpy(text, f[0], flen[0]);
    text[flen[0]] = '\0';
    memset(&out->src, 0, sizeof(out->src));
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;

        if (inet_pton(AF_INET, text, &s4->sin_addr) != 1)
            return fail(why, "bad-address");
        s4->sin_family = AF_INET;
        s4->sin_port = htons(sport);
        out->src_len = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;

        if (inet_pton(AF_INET6, text, &s6->sin6_addr) != 1)
            return fail(why, "bad-address");
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(sport);
        out->src_len = sizeof(*s6);
    }
    /* The destination is checked for form only: where the balancer sent the client
     * is not ours to route by. */
    if (flen[1] >= sizeof(text))
        return fail(why, "bad-address");
    memcpy(text, f[1], flen[1]);
    text[flen[1]] = '\0';
    {
        uint8_t dst[16];

        if (inet_pton(family, text, dst) != 1)
            return fail(why, "bad-address");
    }
    return 1;
}

static int
parse_v2(const uint8_t *p, size_t n, struct ferry_proxy_hdr *out, const char **why)
{
    size_t  body;
    uint8_t cmd, fam, proto;

    if (memcmp(p, v2_sig, n < sizeof(v2_sig) ? n : sizeof(v2_sig)) != 0)
        return fail(why, "bad-signature");
    if (n >= 13 && (p[12] >> 4) != 2)
        return fail(why, "bad-version");
    if (n >= 13 && (p[12] & 0x0f) > 1)
        return fail(why, "bad-command");
    if (n >= 14 && ((p[13] >> 4) > 3 || (p[13] & 0x0f) > 2))
        return fail(why, "bad-family");
    if (n < FERRY_PROXY_V2_HEAD)
        return 0;
    body = (size_t)p[14] << 8 | p[15];
    if (body > FERRY_PROXY_V2_BODY_MAX)
        return fail(why, "too-long");
    cmd = p[12] & 0x0f;
    fam = p[13] >> 4;
    proto = p[13] & 0x0f;
    /* Short address blocks are refused before the body arrives: no waiting on a length
     * that could never hold the family's addresses. */
    if (cmd == 1 && ((fam == 1 && body < 12) || (fam == 2 && body < 36) ||
                     (fam == 3 && body < 216)))
        return fail(why, "bad-length");
    if (n < FERRY_PROXY_V2_HEAD + body)
        return 0;
    out->len = FERRY_PROXY_V2_HEAD + body;
    memset(&out->src, 0, sizeof(out->src));
    /* LOCAL: the balancer's own connection (a health check). UNSPEC or unix: nothing
     * we could route by. Either way the socket's address stays. */
    if (cmd == 0 || fam == 0 || fam == 3) {
        out->local = true;
        return 1;
    }
    if (proto != 1)                     /* a stream listener: only STREAM is ours */
        return fail(why, "bad-protocol");
    out->local = false;
    if (fam == 1) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;

        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, p + 16, 4);
        memcpy(&s4->sin_port, p + 24, 2);   /* network order on both sides */
        out->src_len = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;

        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, p + 16, 16);
        memcpy(&s6->sin6_port, p + 48, 2);
        out->src_len = sizeof(*s6);
    }
    return 1;
}

int
ferry_proxy_parse(const uint8_t *p, size_t n, int version, struct ferry_proxy_hdr *out,
                  const char **why)
{
    static const char *ignored;

    if (why == NULL)
        why = &ignored;
    *why = NULL;
    memset(out, 0, sizeof(*out));
    if (version != 1 && version != 2)
        return fail(why, "bad-version");
    if (n == 0)
        return 0;
    return version == 1 ? parse_v1(p, n, out, why) : parse_v2(p, n, out, why);
}
