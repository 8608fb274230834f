/*
 * jwt.c: compact JWS parsing, RS256/ES256 verification and the claim checks of
 * jwt.h, plus the per-thread cache of verified tokens. Keys come from jwks.c; the
 * token's own key hints ("jku", "x5u", "jwk", "x5c") are ignored: only the configured
 * set is trusted. No token byte or claim value is ever copied into a message.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "auth/jwks.h"
#include "auth/jwt.h"

#define ES256_SIG_BYTES 64      /* JWS: R || S, 32 bytes each (RFC 7518 section 3.4) */
#define RSA_SIG_MAX     1024    /* the largest modulus jwks.c accepts */
#define DER_SIG_MAX     80      /* a DER ECDSA-Sig-Value of P-256 is at most 72 */

struct centry {
    uint8_t            hash[32];        /* SHA-256 of the token */
    json_t            *claims;          /* ref */
    struct ferry_jwks *keys;            /* ref: the set that verified it */
    struct centry     *hnext;           /* bucket chain */
    struct centry     *prev, *next;     /* recency list, head = most recent */
};

struct ferry_jwt_cache {
    struct ferry_jwt_counters counters;
    size_t                    max, n, nbuckets;  /* nbuckets: a power of two */
    struct centry           **buckets;           /* owns the entries through the list */
    struct centry            *head, *tail;
};

/* --- the cache ---------------------------------------------------------------------- */

struct ferry_jwt_cache *
ferry_jwt_cache_new(size_t max_entries)
{
    struct ferry_jwt_cache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->max = max_entries != 0 ? max_entries : FERRY_JWT_CACHE_MAX;
    c->nbuckets = 16;
    while (c->nbuckets < c->max)
        c->nbuckets *= 2;
    if ((c->buckets = calloc(c->nbuckets, sizeof(c->buckets[0]))) == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

static size_t
bucket_of(const struct ferry_jwt_cache *c, const uint8_t hash[32])
{
    size_t v;

    memcpy(&v, hash, sizeof(v));        /* already a hash: any of its bytes will do */
    return v & (c->nbuckets - 1);
}

static void
entry_unlink(struct ferry_jwt_cache *c, struct centry *e)
{
    struct centry **pp = &c->buckets[bucket_of(c, e->hash)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    c->n--;
}

static void
entry_free(struct centry *e)
{
    json_decref(e->claims);
    ferry_jwks_unref(e->keys);
    free(e);
}

static void
entry_to_front(struct ferry_jwt_cache *c, struct centry *e)
{
    if (c->head == e)
        return;
    e->prev->next = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = NULL;
    e->next = c->head;
    c->head->prev = e;
    c->head = e;
}

static struct centry *
cache_find(struct ferry_jwt_cache *c, const uint8_t hash[32])
{
    for (struct centry *e = c->buckets[bucket_of(c, hash)]; e != NULL; e = e->hnext)
        if (CRYPTO_memcmp(e->hash, hash, 32) == 0)
            return e;
    return NULL;
}

static void
cache_add(struct ferry_jwt_cache *c, const uint8_t hash[32], json_t *claims,
          const struct ferry_jwks *keys)
{
    struct centry *e, *old;
    size_t         b = bucket_of(c, hash);

    if ((old = cache_find(c, hash)) != NULL) {      /* verified again with a newer set */
        entry_unlink(c, old);
        entry_free(old);
    }
    if (c->n >= c->max && (old = c->tail) != NULL) {
        entry_unlink(c, old);
        entry_free(old);
        c->counters.evictions++;
    }
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return;                         /* not cached: the next request verifies again */
    memcpy(e->hash, hash, 32);
    e->claims = json_incref(claims);
    /* The set is immutable and its count atomic: taking a reference through a const
     * pointer changes nothing a reader sees. */
    e->keys = ferry_jwks_ref((struct ferry_jwks *)keys);
    e->hnext = c->buckets[b];
    c->buckets[b] = e;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
    c->n++;
}

void
ferry_jwt_cache_free(struct ferry_jwt_cache *c)
{
    struct centry *e, *next;

    if (c == NULL)
        return;
    for (e = c->head; e != NULL; e = next) {
        next = e->next;
        entry_free(e);
    }
    free(c->buckets);
    free(c);
}

size_t
ferry_jwt_cache_size(const struct ferry_jwt_cache *c)
{
    return c->n;
}

const struct ferry_jwt_counters *
ferry_jwt_cache_counters(const struct ferry_jwt_cache *c)
{
    return &c->counters;
}

/* --- claims --------------------------------------------------------------------------- */

/* A NumericDate (RFC 7519 section 2): a JSON number, integer or not. 0: absent,
 * 1: *t set, -1: present but not a number. */
static int
numeric_date(json_t *claims, const char *name, double *t)
{
    json_t *v = json_object_get(claims, name);

    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return -1;
    *t = json_number_value(v);
    return 1;
}

static int
aud_holds(json_t *aud, const char *want)
{
    size_t  i;
    json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    json_array_foreach(aud, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return 1;
    return 0;
}

/* NULL if the claims pass at now, else the reason. */
static const char *
check_claims(json_t *claims, const struct ferry_jwt_conf *cf, int64_t now)
{
    json_t *iss = json_object_get(claims, "iss"), *aud = json_object_get(claims, "aud");
    double  exp = 0, nbf = 0, iat = 0, t = (double)now, leeway = (double)cf->leeway_s;
    int     has_exp, has_nbf, has_iat;

    has_exp = numeric_date(claims, "exp", &exp);
    has_nbf = numeric_date(claims, "nbf", &nbf);
    has_iat = numeric_date(claims, "iat", &iat);
    if (has_exp <= 0 || has_nbf < 0 || has_iat < 0)
        return "malformed";             /* exp is required (jwt.h) */
    if (iss != NULL && !json_is_string(iss))
        return "malformed";
    if (aud != NULL && !json_is_string(aud) && !json_is_array(aud))
        return "malformed";
    if (iss == NULL || cf->issuer == NULL || strcmp(json_string_value(iss), cf->issuer) != 0)
        return "wrong-issuer";
    if (aud == NULL || cf->audience == NULL || !aud_holds(aud, cf->audience))
        return "wrong-audience";
    /* RFC 7519 4.1.4: the current time must be before exp. */
    if (t >= exp + leeway)
        return "expired";
    if ((has_nbf && t + leeway < nbf) || (has_iat && iat > t + leeway))
        return "not-yet-valid";
    return NULL;
}

/* --- the signature -------------------------------------------------------------------- */

/* 1: valid; 0: not. */
static int
digest_verify(EVP_PKEY *pkey, const uint8_t *sig, size_t siglen, const char *tbs,
              size_t tbslen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int         ok = 0;

    if (md != NULL && EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) > 0)
        ok = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)tbs, tbslen) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* JWS carries R || S; OpenSSL verifies the DER ECDSA-Sig-Value of RFC 3279. */
static int
es256_verify(EVP_PKEY *pkey, const uint8_t *sig, const char *tbs, size_t tbslen)
{
    ECDSA_SIG     *es = ECDSA_SIG_new();
    BIGNUM        *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char  der[DER_SIG_MAX], *p = der;
    int            ok = 0, len;

    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s))
        goto out;
    r = s = NULL;                       /* es owns them now */
    if ((len = i2d_ECDSA_SIG(es, NULL)) <= 0 || len > (int)sizeof(der))
        goto out;
    if (i2d_ECDSA_SIG(es, &p) != len)
        goto out;
    ok = digest_verify(pkey, der, (size_t)len, tbs, tbslen);
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return ok;
}

/* --- the token ------------------------------------------------------------------------ */

/* A base64url part decoded as a JSON object (NULL if it is not one). */
static json_t *
part_json(const char *b64, size_t len)
{
    uint8_t *raw = malloc(len / 4 * 3 + 3);
    long     n;
    json_t  *v = NULL;

    if (raw == NULL)
        return NULL;
    if ((n = ferry_jwt_b64url_decode(b64, len, raw, len / 4 * 3 + 3)) > 0)
        v = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

int
ferry_jwt_verify(struct ferry_jwt_cache *c, const struct ferry_jwks *keys,
                 const struct ferry_jwt_conf *cf, const char *token, size_t len,
                 int64_t now, json_t **claims, const char **reason)
{
    const char    *dot1, *dot2, *kid = NULL, *alg, *why;
    size_t         hlen, plen, slen;
    json_t        *header = NULL, *payload = NULL, *kidv;
    uint8_t        hash[32], sig[RSA_SIG_MAX];
    long           siglen;
    enum jwks_type type;
    EVP_PKEY      *pkey;
    struct centry *e;
    int            rc = FERRY_EDENIED;

    *claims = NULL;
    *reason = "malformed";
    if (token == NULL || len == 0 || len > FERRY_JWT_MAX_BYTES)
        return FERRY_EDENIED;
    if ((dot1 = memchr(token, '.', len)) == NULL
        || (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL
        || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return FERRY_EDENIED;
    hlen = (size_t)(dot1 - token);
    plen = (size_t)(dot2 - dot1 - 1);
    slen = len - (size_t)(dot2 + 1 - token);
    /* An empty signature is let through to the algorithm check: `alg: none` comes with
     * one, and is "bad-algorithm" (an attack to name), not "malformed". RS256/ES256 with
     * an empty signature fail its decoding below ("malformed"). */
    if (hlen == 0 || plen == 0)
        return FERRY_EDENIED;

    if (c != NULL) {
        if (EVP_Digest(token, len, hash, NULL, EVP_sha256(), NULL) != 1)
            return FERRY_ENOMEM;
        if ((e = cache_find(c, hash)) != NULL && e->keys == keys) {
            if ((why = check_claims(e->claims, cf, now)) != NULL) {
                /* Expired (or checked against another tenant's settings): the entry
                 * is of no use to anyone once expired; otherwise keep it. */
                if (strcmp(why, "expired") == 0) {
                    entry_unlink(c, e);
                    entry_free(e);
                }
                *reason = why;
                return FERRY_EDENIED;
            }
            entry_to_front(c, e);
            c->counters.cache_hits++;
            *claims = json_incref(e->claims);
            *reason = NULL;
            return FERRY_OK;
        }
    }

    if ((header = part_json(token, hlen)) == NULL)
        goto out;
    alg = json_string_value(json_object_get(header, "alg"));
    kidv = json_object_get(header, "kid");
    if (alg == NULL || json_object_get(header, "crit") != NULL
        || (kidv != NULL && !json_is_string(kidv)))
        goto out;
    kid = json_string_value(kidv);
    if (strcmp(alg, "RS256") == 0) {
        type = JWKS_RSA;
    } else if (strcmp(alg, "ES256") == 0) {
        type = JWKS_EC;
    } else {
        *reason = "bad-algorithm";
        goto out;
    }
    if ((payload = part_json(dot1 + 1, plen)) == NULL)
        goto out;
    if (slen > sizeof(sig) / 3 * 4 + 3
        || (siglen = ferry_jwt_b64url_decode(dot2 + 1, slen, sig, sizeof(sig))) <= 0)
        goto out;
    if (type == JWKS_EC && siglen != ES256_SIG_BYTES)
        goto out;
    if ((pkey = ferry_jwks_find(keys, type, kid)) == NULL) {
        *reason = "unknown-key";
        goto out;
    }
    *reason = "bad-signature";
    if (c != NULL)
        c->counters.verifications++;
    if (type == JWKS_RSA) {
        if ((size_t)siglen != (size_t)EVP_PKEY_get_size(pkey)
            || !digest_verify(pkey, sig, (size_t)siglen, token, (size_t)(dot2 - token)))
            goto out;
    } else if (!es256_verify(pkey, sig, token, (size_t)(dot2 - token))) {
        goto out;
    }
    if ((*reason = check_claims(payload, cf, now)) != NULL)
        goto out;
    if (c != NULL)
        cache_add(c, hash, payload, keys);
    *claims = payload;
    payload = NULL;
    rc = FERRY_OK;
out:
    json_decref(header);
    json_decref(payload);
    return rc;
}
