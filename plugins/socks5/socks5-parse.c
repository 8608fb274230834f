/*
 * socks5-parse.c: the SOCKS5 handshake parsers (see socks5-parse.h). Pure: the plugin
 * and the fuzz target call the same code.
 */
#include <arpa/inet.h>
#include <string.h>

#include <ferry/err.h>
#include <ferry/route.h>

#include "socks5-parse.h"

int
socks5_parse_greeting(const uint8_t *d, size_t n, bool auth_none, uint8_t *choice)
{
    bool has[256] = { false };

    *choice = SOCKS5_M_REFUSE;
    if (n < 2)
        return 0;
    if (d[0] != 0x05 || d[1] == 0)
        return FERRY_EPROTO;
    if (n < 2u + d[1])
        return 0;
    for (unsigned i = 0; i < d[1]; i++)
        has[d[2 + i]] = true;
    if (auth_none && has[SOCKS5_M_NONE])
        *choice = SOCKS5_M_NONE;
    else if (!auth_none && has[SOCKS5_M_SAP])
        *choice = SOCKS5_M_SAP;
    else if (!auth_none && has[SOCKS5_M_USERPASS])
        *choice = SOCKS5_M_USERPASS;
    return (int)(2u + d[1]);
}

int
socks5_parse_userpass(const uint8_t *d, size_t n, struct socks5_userpass *out)
{
    size_t ulen, plen;

    out->ok = false;
    if (n < 2)
        return 0;
    if (d[0] != 0x01)
        return FERRY_EPROTO;
    ulen = d[1];
    if (n < 2 + ulen + 1)
        return 0;
    plen = d[2 + ulen];
    if (n < 3 + ulen + plen)
        return 0;
    memcpy(out->user, d + 2, ulen);
    out->user[ulen] = '\0';
    memcpy(out->pass, d + 3 + ulen, plen);
    out->pass[plen] = '\0';
    out->ok = ulen > 0 && memchr(out->user, 0, ulen) == NULL;
    return (int)(3 + ulen + plen);
}

int
socks5_parse_sap(const uint8_t *d, size_t n, struct socks5_sap *out)
{
    const size_t cap = sizeof(out->location) - 1;
    uint32_t     tlen;
    size_t       m;
    uint8_t      loc[sizeof(out->location)];
    long         ll;

    out->ok = false;
    out->token = NULL;
    out->tlen = 0;
    out->location[0] = '\0';
    if (n < 5)
        return 0;
    tlen = (uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 8 | d[4];
    if (d[0] != 0x01 || tlen == 0 || tlen > SOCKS5_TOKEN_MAX_BYTES)
        return FERRY_EPROTO;
    if (n < 5 + (size_t)tlen + 1)
        return 0;
    m = d[5 + tlen];
    if (n < 6 + (size_t)tlen + m)
        return 0;
    out->token = d + 5;
    out->tlen = tlen;
    out->ok = memchr(out->token, 0, tlen) == NULL;
    if (m > 0) {
        /* base64 is the contract; a raw id (an older SDK sent one) is accepted too. */
        ll = ferry_base64_decode((const char *)d + 6 + tlen, m, loc, cap);
        if (ll < 0) {
            memcpy(out->location, d + 6 + tlen, m < cap ? m : cap);
            out->location[m < cap ? m : cap] = '\0';
        } else {
            memcpy(out->location, loc, (size_t)ll);
            out->location[ll] = '\0';
        }
        /* A NUL inside the id, or a raw id too long to keep whole. */
        if (strlen(out->location) != (ll < 0 ? m : (size_t)ll))
            out->ok = false;
    }
    return (int)(6 + tlen + m);
}

/* "a.b.c.d" without printf, whose machinery cost more than the rest of the request. */
static void
ipv4_text(const uint8_t *a, char *out)
{
    for (int i = 0; i < 4; i++) {
        if (a[i] >= 100)
            *out++ = (char)('0' + a[i] / 100);
        if (a[i] >= 10)
            *out++ = (char)('0' + a[i] / 10 % 10);
        *out++ = (char)('0' + a[i] % 10);
        *out++ = i < 3 ? '.' : '\0';
    }
}

static int
refuse(struct socks5_request *out, bool reply, uint8_t rep, const char *outcome)
{
    out->reply = reply;
    out->rep = rep;
    out->outcome = outcome;
    return FERRY_EPROTO;
}

int
socks5_parse_request(const uint8_t *d, size_t n, struct socks5_request *out)
{
    size_t alen, need;

    out->host[0] = '\0';
    out->port = 0;
    out->reply = false;
    out->rep = 0;
    out->outcome = NULL;
    if (n < 5)
        return 0;
    if (d[0] != 0x05)
        return refuse(out, false, 0, "bad-request");
    switch (d[3]) {
    case 0x01: alen = 4; need = 4 + 4 + 2; break;
    case 0x04: alen = 16; need = 4 + 16 + 2; break;
    case 0x03: alen = d[4]; need = 5 + alen + 2; break;
    default:   return refuse(out, true, 0x08, "address-type");
    }
    if (n < need)
        return 0;
    if (d[1] != 0x01)                   /* BIND, UDP ASSOCIATE: not a general proxy */
        return refuse(out, true, 0x07, "command-not-supported");
    if (d[3] == 0x01) {
        ipv4_text(d + 4, out->host);
    } else if (d[3] == 0x04) {
        /* The canonical text ("::1"), as operators write it in egress rules and logs. */
        inet_ntop(AF_INET6, d + 4, out->host, sizeof(out->host));
    } else {
        if (alen == 0 || memchr(d + 5, 0, alen) != NULL)
            return refuse(out, true, 0x04, "bad-host");
        memcpy(out->host, d + 5, alen);
        out->host[alen] = '\0';
    }
    out->port = (uint16_t)(d[need - 2] << 8 | d[need - 1]);
    if (out->port == 0)
        return refuse(out, true, 0x02, "bad-port");
    return (int)need;
}
