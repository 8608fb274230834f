/*
 * base64.c: RFC 4648 base64 (standard alphabet, padded) both ways, for the
 * SOCKS5 0x80 location id, Basic credentials (http) and, later, Lua.
 */
#include <stdint.h>
#include <string.h>

#include <ferry/route.h>

static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

FERRY_API long
ferry_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    size_t o = 0;

    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int    v[4];
        size_t pad = 0;

        for (int k = 0; k < 4; k++) {
            unsigned char ch = (unsigned char)in[i + (size_t)k];

            if (ch == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad > 0 || (v[k] = b64_value(ch)) < 0)
                return -1;      /* data after padding, or not in the alphabet */
        }
        if (o + 3 - pad > cap)
            return -1;
        out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (pad < 2)
            out[o++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
        if (pad < 1)
            out[o++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
    }
    return (long)o;
}

FERRY_API long
ferry_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t need = (len + 2) / 3 * 4, o = 0;

    if (need + 1 > cap)
        return -1;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;

        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return (long)o;
}
