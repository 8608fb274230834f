/*
 * jwks.h: what jwt.c needs from a key set (jwks.c), not for other rooms.
 */
#ifndef FERRY_AUTH_JWKS_H
#define FERRY_AUTH_JWKS_H

#include <stddef.h>

#include <openssl/evp.h>

struct ferry_jwks;

enum jwks_type { JWKS_RSA = 1, JWKS_EC = 2 };

/* The key for a token: with a kid, the key of that kid and type; without one, the one
 * key of that type when there is exactly one. Borrowed from the set; NULL if none. */
EVP_PKEY *ferry_jwks_find(const struct ferry_jwks *k, enum jwks_type type, const char *kid);

#endif
