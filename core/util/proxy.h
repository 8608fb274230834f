/*
 * proxy.h: the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2)
 * that a load balancer in front of a listener sends before the client's bytes. A pure
 * parser: bytes in, the client's address out, no I/O; the worker reads the socket.
 *
 * Strict and bounded: v1 is one line of at most 107 bytes with its CRLF; v2 is a
 * 16-byte head and at most FERRY_PROXY_V2_BODY_MAX bytes of addresses and TLVs (TLVs
 * are skipped, not interpreted). Anything else is refused, never guessed at.
 */
#ifndef FERRY_UTIL_PROXY_H
#define FERRY_UTIL_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define FERRY_PROXY_V1_MAX       107        /* the spec's bound, CRLF included */
#define FERRY_PROXY_V2_HEAD      16
#define FERRY_PROXY_V2_BODY_MAX  1024       /* addresses (at most 216) + TLVs we accept */
#define FERRY_PROXY_MAX          (FERRY_PROXY_V2_HEAD + FERRY_PROXY_V2_BODY_MAX)

struct ferry_proxy_hdr {
    size_t                  len;    /* bytes the header takes; what follows is the client's */
    bool                    local;  /* v2 LOCAL, v1 UNKNOWN, or a family we do not route
                                       (unix, unspecified): keep the socket's address */
    struct sockaddr_storage src;    /* the client, when !local */
    socklen_t               src_len;
};

/* Parse the header of `version` (1 or 2) at the start of p[0..n). Returns 1 with *out
 * filled, 0 when the bytes so far are a valid beginning and more are needed (never once
 * n reaches the version's bound), or FERRY_EPROTO with *why a static reason
 * ("bad-signature", "too-long", "bad-address", ...). */
int ferry_proxy_parse(const uint8_t *p, size_t n, int version, struct ferry_proxy_hdr *out,
                      const char **why);

#endif
