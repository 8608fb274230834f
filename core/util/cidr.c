/*
 * cidr.c: CIDR rules for client source addresses (cidr.h). Parses with inet_pton and
 * matches by prefix bytes; nothing here resolves a name.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cidr.h"

#define CIDR_TEXT_MAX 64            /* longest IPv6 text (45) + "/128", with room */

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* The prefix length: 1 to 3 digits, no sign, no leading zero (so "08" is a typo, not
 * eight), at most max. -1 if not one. */
static int
prefix_bits(const char *s, int max)
{
    int v = 0;

    if (s[0] == '\0' || strlen(s) > 3 || (s[0] == '0' && s[1] != '\0'))
        return -1;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v <= max ? v : -1;
}

int
ferry_cidr_parse(const char *text, struct ferry_cidr *out, struct ferry_err *err)
{
    char  buf[CIDR_TEXT_MAX];
    char *slash;
    int   max, bits;

    if (text == NULL || strlen(text) >= sizeof(buf))
        return ferry_err_set(err, FERRY_EINVAL, "'%.64s' is not an address or CIDR",
                             text != NULL ? text : "");
    memset(out, 0, sizeof(*out));
    strcpy(buf, text);
    if ((slash = strchr(buf, '/')) != NULL)
        *slash = '\0';
    if (inet_pton(AF_INET, buf, out->net) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->net) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return ferry_err_set(err, FERRY_EINVAL, "'%s' is not an address or CIDR (want "
                             "10.0.0.0/8, ::1/128 or a bare IPv4 or IPv6 address)", text);
    }
    bits = slash != NULL ? prefix_bits(slash + 1, max) : max;
    if (bits < 0)
        return ferry_err_set(err, FERRY_EINVAL, "'%s': the prefix length must be 0 to %d",
                             text, max);
    out->bits = (uint8_t)bits;
    for (int i = bits; i < max; i++) {
        if (out->net[i / 8] & (0x80 >> (i % 8))) {
            char net[INET6_ADDRSTRLEN];

            for (int j = bits; j < max; j++)      /* for the suggestion */
                out->net[j / 8] &= (uint8_t)~(0x80 >> (j % 8));
            inet_ntop(out->family, out->net, net, sizeof(net));
            return ferry_err_set(err, FERRY_EINVAL, "'%s' has host bits set (did you mean "
                                 "'%s/%d'?)", text, net, bits);
        }
    }
    return FERRY_OK;
}

bool
ferry_addr_key(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        memcpy(out, v4mapped, 12);
        memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((a[whole] ^ b[whole]) & (uint8_t)(0xff00 >> rest)) == 0;
}

bool
ferry_cidr_match(const struct ferry_cidr *rules, size_t n, const struct sockaddr *sa)
{
    uint8_t key[16];
    bool    is_v4;

    if (!ferry_addr_key(sa, key))
        return false;
    is_v4 = memcmp(key, v4mapped, 12) == 0;
    for (size_t i = 0; i < n; i++) {
        const struct ferry_cidr *r = &rules[i];

        if (r->family == AF_INET && is_v4 && prefix_equal(key + 12, r->net, r->bits))
            return true;
        /* IPv4 clients only ever match IPv4 rules, however the socket saw them:
         * otherwise `::/0`, meant as "any IPv6", would quietly admit all of IPv4. */
        if (r->family == AF_INET6 && !is_v4 && prefix_equal(key, r->net, r->bits))
            return true;
    }
    return false;
}
