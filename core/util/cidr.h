/*
 * cidr.h: client source address rules (a listener's `allow:`). Pure: parsing text and
 * matching an address, no I/O, so it is safe on a worker and in a unit test.
 *
 * An IPv4-mapped IPv6 peer (::ffff:a.b.c.d, what a dual-stack socket reports for an
 * IPv4 client) is matched as the IPv4 address it carries: an operator writes
 * 10.0.0.0/8 and means those clients whichever socket family accepted them. IPv6 rules
 * match IPv6 clients only.
 */
#ifndef FERRY_UTIL_CIDR_H
#define FERRY_UTIL_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ferry/err.h>

struct ferry_cidr {
    uint8_t family;                 /* AF_INET or AF_INET6 */
    uint8_t bits;                   /* prefix length: 0..32 or 0..128 */
    uint8_t net[16];                /* network, host bits zero; IPv4 in the first 4 */
};

/* "10.0.0.0/8", "::1/128", or a bare address (/32, /128). Host bits set under the
 * prefix ("10.0.0.1/8") are refused: the operator meant one of two things. FERRY_OK
 * and *out, or FERRY_EINVAL with the reason in err. */
int  ferry_cidr_parse(const char *text, struct ferry_cidr *out, struct ferry_err *err);

/* Does sa (AF_INET or AF_INET6; anything else never matches) fall in one of the n
 * rules? */
bool ferry_cidr_match(const struct ferry_cidr *rules, size_t n, const struct sockaddr *sa);

/* sa as 16 bytes (IPv4 as ::ffff:a.b.c.d), the same for both ways an IPv4 client can
 * arrive: a key for per-client tables. false for other families. */
bool ferry_addr_key(const struct sockaddr *sa, uint8_t out[16]);

#endif
