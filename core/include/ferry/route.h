/*
 * ferry/route.h: what a proxy plugin needs to decide where a client may go.
 *
 * Tenants: a client of a forward proxy (http forward mode, socks5) authenticates as a
 * tenant with the tenant's token; the connection then routes within that tenant only.
 *
 * Egress: the direct (non-tunnel) targets a listener allows, as a list option of
 * host:port patterns: "127.0.0.1:*", "*.example.com:443", "*:80". A host pattern is
 * an exact name or address, "*" (any) or "*.suffix" (any name ending in .suffix);
 * the port is a number or "*". Names compare case-insensitively. Default: nothing.
 */
#ifndef FERRY_ROUTE_H
#define FERRY_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#include <ferry/api.h>

struct ferry_conn;
struct ferry_opts;
struct ferry_egress;

/* Authenticate the connection as a tenant. tenant_id may be NULL (the token alone
 * names its tenant: tokens are unique). FERRY_OK, or FERRY_EDENIED for an unknown
 * tenant or a wrong token (compared in constant time; never logged). */
FERRY_API int ferry_conn_auth_tenant(struct ferry_conn *c, const char *tenant_id,
                                     const char *token);

/* The connection's tenant: authenticated, else the listener's `tenant:`, else NULL. */
FERRY_API const char *ferry_conn_tenant(const struct ferry_conn *c);

/* Read the list option `key` (absent = allow nothing) and check its patterns; errors
 * are reported at the option. *out is owned by the caller (free with _free). */
FERRY_API int  ferry_egress_new(struct ferry_opts *o, const char *key, struct ferry_egress **out);
FERRY_API bool ferry_egress_allows(const struct ferry_egress *e, const char *host, uint16_t port);
FERRY_API void ferry_egress_free(struct ferry_egress *e);

/* Standard base64 (RFC 4648, padded). Decode returns the length, or -1 if not valid. */
FERRY_API long ferry_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* Encode into out (NUL-terminated); returns the length, or -1 if cap is too small. */
FERRY_API long ferry_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap);

#endif
