/*
 * jwt.h: validating JSON Web Tokens (RFC 7519) signed as compact JWS (RFC 7515) with
 * RS256 or ES256 (RFC 7518), against a JSON Web Key Set (RFC 7517), for principal
 * propagation and tenants that accept JWTs (DESIGN.md "User identity").
 *
 * What it owns: the key set (parsed once, immutable, reference-counted), the checks
 * (signature, iss, aud, exp/nbf/iat with leeway), and a per-thread cache of tokens
 * already verified. What it leaves to callers: where the token came from (header,
 * SOCKS5), what the refusal looks like on the wire, and the configuration keys.
 *
 * Refusal reasons: ferry_jwt_verify() answers FERRY_EDENIED with *reason pointing at
 * one of these static strings, and nothing else (callers may put it in `ferry-error`
 * and logs; it never holds token bytes or claim values):
 *   "malformed"      not three base64url parts, the first two non-empty (no padding, no other
 *                    characters), over FERRY_JWT_MAX_BYTES, header or payload not a JSON
 *                    object, no or non-string "alg", a "crit" header (no extension is
 *                    understood), a claim of the wrong type (exp not a number, ...),
 *                    no "exp", an ES256 signature that is not 64 bytes;
 *   "bad-algorithm"  a well-formed token whose "alg" is not RS256 or ES256 ("none",
 *                    with or without an empty signature, HS256, RS384, ...). Kept apart from "malformed" on purpose: it is
 *                    what an identity provider configured for HMAC or another
 *                    algorithm produces, and what the alg-confusion and "none" attacks
 *                    produce; an operator must be able to tell that from garbage;
 *   "unknown-key"    no key in the set for the token's kid (and type), or no kid and
 *                    not exactly one key of the algorithm's type (a caller whose keys
 *                    come from a jwks_url then calls ferry_jwks_source_refresh());
 *   "bad-signature"  the signature does not verify with that key (an RS256 one of
 *                    another size than the key's modulus included);
 *   "wrong-issuer"   "iss" missing or not exactly the configured issuer;
 *   "wrong-audience" "aud" missing, or neither the audience nor an array holding it;
 *   "expired"        now >= exp + leeway;
 *   "not-yet-valid"  now + leeway < nbf, or iat later than now + leeway.
 * The checks run in the order of the list: a token both forged and expired is
 * "bad-signature" (claims of an unverified token are not looked at).
 *
 * Threads: a key set is immutable once parsed and may be shared by threads (its
 * reference count is atomic). A cache is one per thread (one per worker): it has no
 * lock and must only be used by the thread that made it.
 */
#ifndef FERRY_AUTH_JWT_H
#define FERRY_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <ferry/err.h>

#define FERRY_JWT_MAX_BYTES       16384          /* a longer token is "malformed" */
#define FERRY_JWKS_MAX_BYTES      (1024 * 1024)  /* a JWKS document (file or URL answer) */
#define FERRY_JWKS_MAX_KEYS       64             /* entries of "keys" looked at */
#define FERRY_JWT_CACHE_MAX       4096           /* default entries of a cache */
#define FERRY_JWKS_REFRESH_MIN_S  60             /* a URL is fetched at most this often */
#define FERRY_JWT_RSA_MIN_BITS    2048           /* smaller RSA keys are skipped */

struct ferry_jwks;
struct ferry_jwt_cache;

/* base64url (RFC 4648 section 5) without padding, strictly: only the 64 characters,
 * no '=', a length that is not 1 mod 4, and unused trailing bits zero (one text per
 * byte string). The length written, or -1 (bad text, or over cap). */
long ferry_jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

struct ferry_jwt_conf {
    const char *issuer;     /* borrowed: compared exactly with "iss" */
    const char *audience;   /* borrowed: must be "aud" or one of its elements */
    uint32_t    leeway_s;   /* clock skew allowed on exp, nbf, iat */
};

/* Counters a caller may export (plain fields, read on the cache's own thread). */
struct ferry_jwt_counters {
    uint64_t verifications;     /* signatures checked (cache misses that got that far) */
    uint64_t cache_hits;        /* tokens answered from the cache */
    uint64_t evictions;         /* live entries pushed out by the bound */
};

/* Parse a JWKS document (json[0..len), not NUL-terminated). Keys that ferry cannot use
 * are skipped: kty other than RSA or EC, "use" other than "sig", an "alg" other than
 * RS256 (RSA) / ES256 (EC), a curve other than P-256, an RSA modulus under
 * FERRY_JWT_RSA_MIN_BITS, a key with missing or bad fields. FERRY_OK and *out (one
 * reference, the caller's), or FERRY_EINVAL with err saying why: for a syntax error
 * err->line and err->col (1-based) point into the document; for a set without a
 * usable key err->msg names each key and why it was skipped (kids only, no key
 * material). FERRY_ELIMIT: len over FERRY_JWKS_MAX_BYTES. */
int  ferry_jwks_parse(const char *json, size_t len, struct ferry_jwks **out,
                      struct ferry_err *err);
/* Read path and parse it (load time: blocking I/O). On failure err->file is path. */
int  ferry_jwks_load_file(const char *path, struct ferry_jwks **out, struct ferry_err *err);
/* Take another reference / drop one (NULL is fine). */
struct ferry_jwks *ferry_jwks_ref(struct ferry_jwks *k);
void ferry_jwks_unref(struct ferry_jwks *k);
/* Usable keys in the set, and keys of the document that were skipped. */
size_t ferry_jwks_count(const struct ferry_jwks *k);
size_t ferry_jwks_skipped(const struct ferry_jwks *k);

/* A cache of max_entries tokens (0: FERRY_JWT_CACHE_MAX); NULL when out of memory. */
struct ferry_jwt_cache *ferry_jwt_cache_new(size_t max_entries);
void ferry_jwt_cache_free(struct ferry_jwt_cache *c);
size_t ferry_jwt_cache_size(const struct ferry_jwt_cache *c);
const struct ferry_jwt_counters *ferry_jwt_cache_counters(const struct ferry_jwt_cache *c);

/* Validate token[0..len) against keys and cf at now (unix seconds; tests pass a fixed
 * time). FERRY_OK: *claims is a new reference to the payload (json_decref it). A token
 * is verified once per cache: its claims are kept (keyed by SHA-256 of the token, tied
 * to the key set that verified it: another set verifies again) and on each hit checked
 * again against cf and now, so one cache may serve several tenants; an entry goes at
 * exp or by eviction (least recently used first). Refused tokens are not kept. c may
 * be NULL (no caching). FERRY_EDENIED: *reason is one of the strings above. FERRY_ENOMEM: out of
 * memory while hashing (treat as a server error); other allocation failures deny. */
int  ferry_jwt_verify(struct ferry_jwt_cache *c, const struct ferry_jwks *keys,
                      const struct ferry_jwt_conf *cf, const char *token, size_t len,
                      int64_t now, json_t **claims, const char **reason);

/*
 * A tenant's key source: the current set, swapped whole. Readers take the set with
 * ferry_jwks_source_get() for the length of one verification; a refresh replaces it
 * for later readers while earlier ones keep their reference. One per thread, like the
 * cache (the swap is not locked).
 */
struct ferry_jwks_source;

/* url may be NULL (a file-only source). keys: the initial set; the source takes a
 * reference of its own. NULL when out of memory. */
struct ferry_jwks_source *ferry_jwks_source_new(struct ferry_jwks *keys, const char *url);
void ferry_jwks_source_free(struct ferry_jwks_source *s);
/* The current set (borrowed: valid until the next swap on this thread; take a
 * reference to keep it longer). */
const struct ferry_jwks *ferry_jwks_source_get(const struct ferry_jwks_source *s);
/* Replace the set (a reload or a refresh): the source drops its old reference. */
void ferry_jwks_source_set(struct ferry_jwks_source *s, struct ferry_jwks *keys);
/* Parse a fresh document (a URL's answer) and swap it in when it holds a usable key;
 * otherwise keep the last good set and return the parse error. */
int  ferry_jwks_source_update(struct ferry_jwks_source *s, const char *json, size_t len,
                              struct ferry_err *err);
/* May a refetch start now (an unknown kid was seen)? True at most once per
 * FERRY_JWKS_REFRESH_MIN_S for a source with a URL; records the attempt. */
int  ferry_jwks_source_may_refresh(struct ferry_jwks_source *s, int64_t now);

struct event_base;
struct evdns_base;
struct ferry_tls_cache;
struct ferry_post;

/* Where a refetch runs: the source's own thread (fetch/client.h's hclient_request). */
struct ferry_jwks_fetch {
    struct event_base       *base;        /* borrowed: this thread's loop */
    struct evdns_base       *dns;         /* borrowed */
    struct ferry_tls_cache  *tls_cache;   /* borrowed: https contexts */
    const struct ferry_post *home;        /* borrowed: this thread, for a context still
                                             being built */
    uint32_t                 timeout_ms;  /* 0: 10 s */
    /* Optional: the fetch is over; rc FERRY_OK (the set was swapped) or why not. */
    void                   (*done)(void *arg, int rc);
    void                    *arg;
};

/* Refetch the URL when ferry_jwks_source_may_refresh() allows it (and no fetch is
 * running): FERRY_OK, started (f->done reports); FERRY_EAGAIN, too soon or one is
 * running; FERRY_EINVAL, no URL; FERRY_EUNAVAIL, the request could not start. An answer
 * that is not 200 with a JWKS holding a usable key keeps the last good set and is logged
 * (warn, with the URL and the reason; the body is never logged). f is copied. Freeing
 * the source cancels a running fetch (done does not run). */
int  ferry_jwks_source_refresh(struct ferry_jwks_source *s, const struct ferry_jwks_fetch *f,
                               int64_t now);

#endif
