/*
 * chars.c: one 256-entry table of the character classes the HTTP parsers test, so the hot
 * loops do one load per byte. Ranges use the GNU "[a ... b]" designator (gnu11).
 */
#include "http/http-int.h"

#define T HTTP_CC_TCHAR
#define V HTTP_CC_VALUE
#define P HTTP_CC_PCHAR
#define H HTTP_CC_HOST
#define X HTTP_CC_HEX
#define S HTTP_CC_SCHEME

const uint8_t ferry_http_cc[256] = {
    ['\t'] = V,
    [' '] = V,
    ['!'] = T | V | P,
    ['"'] = V,
    ['#'] = T | V,
    ['$'] = T | V | P,
    ['%'] = T | V,              /* pct-encoding is checked by hand */
    ['&'] = T | V | P,
    ['\''] = T | V | P,
    ['('] = V | P,
    [')'] = V | P,
    ['*'] = T | V | P,
    ['+'] = T | V | P | S,
    [','] = V | P,
    ['-'] = T | V | P | H | S,
    ['.'] = T | V | P | H | S,
    ['/'] = V,
    ['0' ... '9'] = T | V | P | H | X | S,
    [':'] = V | P,
    [';'] = V | P,
    ['<'] = V,
    ['='] = V | P,
    ['>'] = V,
    ['?'] = V,
    ['@'] = V | P,
    ['A' ... 'F'] = T | V | P | H | X | S,
    ['G' ... 'Z'] = T | V | P | H | S,
    ['['] = V,
    ['\\'] = V,
    [']'] = V,
    ['^'] = T | V,
    ['_'] = T | V | P | H,
    ['`'] = T | V,
    ['a' ... 'f'] = T | V | P | H | X | S,
    ['g' ... 'z'] = T | V | P | H | S,
    ['{'] = V,
    ['|'] = T | V,
    ['}'] = V,
    ['~'] = T | V | P | H,
    [0x80 ... 0xff] = V,        /* obs-text: allowed in values, never in tokens */
};
