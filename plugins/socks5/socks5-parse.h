/*
 * socks5-parse.h: the SOCKS5 handshake messages as pure functions, bytes in, verdict
 * and fields out: the greeting and method choice (RFC 1928 section 3), RFC 1929
 * username/password, SAP's method 0x80 (shared/SAP-NOTES.md section 4) and the request
 * (section 4). No connection, no I/O, no allocation: socks5.c does the replies, the
 * authentication and the routing; tests/fuzz/socks5_fuzz.c feeds these the fuzzer's
 * bytes.
 *
 * Every parser returns the bytes the message took (> 0), 0 when more bytes are needed,
 * or FERRY_EPROTO for a message that no further bytes could make valid.
 */
#ifndef FERRY_SOCKS5_PARSE_H
#define FERRY_SOCKS5_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOCKS5_TOKEN_MAX_BYTES 65536
#define SOCKS5_M_NONE          0x00
#define SOCKS5_M_USERPASS      0x02
#define SOCKS5_M_SAP           0x80
#define SOCKS5_M_REFUSE        0xff

/* 05 NMETHODS METHODS...: *choice is the method we take (SOCKS5_M_REFUSE when none of
 * the offered ones fits). auth_none: the listener takes only method 00; else only 80
 * (preferred: SAP's clients offer it alone) and 02. EPROTO: not SOCKS5 at all. */
int socks5_parse_greeting(const uint8_t *d, size_t n, bool auth_none, uint8_t *choice);

/* RFC 1929: 01 ULEN UNAME PLEN PASSWD. user and pass are NUL-terminated copies; ok is
 * false for an empty user or a NUL inside it (no tenant id has one). EPROTO: not
 * version 01 (the caller still answers 01 01). */
struct socks5_userpass {
    char user[256];
    char pass[256];             /* the tenant's token: the caller wipes it */
    bool ok;
};
int socks5_parse_userpass(const uint8_t *d, size_t n, struct socks5_userpass *out);

/* SAP 0x80: 01, uint32 BE token length, token, uint8 M, M bytes of base64 location id.
 * token points into d (tlen bytes, not terminated). location: the decoded id, or the
 * raw bytes when they are not base64 (an older SDK sent them raw). ok is false for a
 * NUL inside the token or the location. EPROTO: not version 01, or a token length of
 * 0 or over SOCKS5_TOKEN_MAX_BYTES. */
struct socks5_sap {
    const uint8_t *token;       /* borrowed: inside d */
    uint32_t       tlen;
    char           location[192];
    bool           ok;
};
int socks5_parse_sap(const uint8_t *d, size_t n, struct socks5_sap *out);

/* 05 CMD 00 ATYP DST.ADDR DST.PORT, CONNECT only. On success host is the target as
 * text ("10.0.0.1", "::1", the domain name) and port non-zero. On EPROTO, reply says
 * whether the client gets a reply (code rep, 0x07 command, 0x08 address type, 0x04 bad
 * host, 0x02 port 0) before the close; outcome names the close for the access log. */
struct socks5_request {
    char        host[256];
    uint16_t    port;
    bool        reply;
    uint8_t     rep;
    const char *outcome;        /* static */
};
int socks5_parse_request(const uint8_t *d, size_t n, struct socks5_request *out);

#endif
