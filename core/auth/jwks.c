/*
 * jwks.c: JSON Web Key Sets (RFC 7517, key types of RFC 7518 section 6) into OpenSSL
 * public keys, the strict base64url decoder JWS needs, and the key source that swaps a
 * set whole. Owns the parsed set; knows nothing of tokens (jwt.c) or of where the
 * document came from (the caller: a file at load time, a URL later).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <ferry/log.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "fetch/client.h"

#define KID_MAX      256        /* longer kids are a bad key */
#define RSA_MAX_BYTES 1024      /* 8192-bit modulus: more is a bad key */
#define RSA_E_MAX    8
#define SKIP_NOTE_MAX 6         /* skipped keys named in a "no usable key" error */

struct jwk {
    enum jwks_type type;
    char          *kid;         /* owns; NULL: the key has none */
    EVP_PKEY      *pkey;        /* owns */
};

struct ferry_jwks {
    atomic_uint refs;
    size_t      n, skipped;
    struct jwk  keys[];         /* n of them */
};

static int
b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long
ferry_jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t   o = 0;

    if (len % 4 == 1)
        return -1;              /* 6 bits cannot end a byte */
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);

        if (v < 0)
            return -1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* The 2 or 4 bits left over must be zero: otherwise two texts decode alike. */
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}

/* A base64url member of key into a fresh buffer. -1: absent, not a string or bad. */
static long
member_b64(json_t *key, const char *name, uint8_t **out)
{
    json_t     *v = json_object_get(key, name);
    const char *s;
    size_t      len;
    long        n;

    *out = NULL;
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len == 0 || len > 4 * RSA_MAX_BYTES)
        return -1;
    if ((*out = malloc(len / 4 * 3 + 3)) == NULL)
        return -1;
    if ((n = ferry_jwt_b64url_decode(s, len, *out, len / 4 * 3 + 3)) <= 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return n;
}

static EVP_PKEY *
pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM   *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    EVP_PKEY     *pkey = NULL;

    if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto out;
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL)
        goto out;
    if (EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto out;
    /* An EC point off the curve (or an RSA key OpenSSL dislikes) is a bad key, not a
     * verification that fails later for every token. */
    if ((check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL
        || EVP_PKEY_public_check(check) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
out:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

/* Why an RSA key is unusable, or NULL with *pkey set. */
static const char *
rsa_key(json_t *key, EVP_PKEY **pkey)
{
    uint8_t        *n = NULL, *e = NULL;
    long            nlen, elen;
    size_t          skip = 0;
    BIGNUM         *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    const char     *why = NULL;

    if ((nlen = member_b64(key, "n", &n)) < 0) {
        why = "RSA key without a valid 'n'";
        goto out;
    }
    if ((elen = member_b64(key, "e", &e)) < 0 || elen > RSA_E_MAX) {
        why = "RSA key without a valid 'e'";
        goto out;
    }
    while (skip < (size_t)nlen && n[skip] == 0)
        skip++;
    if ((size_t)nlen - skip > RSA_MAX_BYTES) {
        why = "RSA key over 8192 bits";
        goto out;
    }
    if ((bn_n = BN_bin2bn(n + skip, (int)((size_t)nlen - skip), NULL)) == NULL
        || (bn_e = BN_bin2bn(e, (int)elen, NULL)) == NULL) {
        why = "out of memory";
        goto out;
    }
    if (BN_num_bits(bn_n) < FERRY_JWT_RSA_MIN_BITS) {
        why = "RSA key under 2048 bits";
        goto out;
    }
    if (!BN_is_odd(bn_e) || BN_is_one(bn_e)) {
        why = "RSA key with a bad exponent";
        goto out;
    }
    why = "RSA key OpenSSL refuses";
    if ((bld = OSSL_PARAM_BLD_new()) == NULL
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)
        || (*pkey = pkey_fromdata("RSA", bld)) == NULL)
        goto out;
    why = NULL;
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return why;
}

static const char *
ec_key(json_t *key, EVP_PKEY **pkey)
{
    uint8_t        *x = NULL, *y = NULL, pub[65];
    const char     *crv = json_string_value(json_object_get(key, "crv"));
    OSSL_PARAM_BLD *bld = NULL;
    const char     *why = NULL;

    if (crv == NULL) {
        why = "EC key without 'crv'";
        goto out;
    }
    if (strcmp(crv, "P-256") != 0) {
        why = "EC key on a curve other than P-256";
        goto out;
    }
    /* RFC 7518 section 6.2.1.2: x and y are the full field size, 32 bytes for P-256. */
    if (member_b64(key, "x", &x) != 32 || member_b64(key, "y", &y) != 32) {
        why = "EC key without valid 32-byte 'x' and 'y'";
        goto out;
    }
    pub[0] = 0x04;                  /* uncompressed point: 04 || x || y */
    memcpy(pub + 1, x, 32);
    memcpy(pub + 33, y, 32);
    why = "EC key OpenSSL refuses (not on the curve)";
    if ((bld = OSSL_PARAM_BLD_new()) == NULL
        || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0)
        || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub))
        || (*pkey = pkey_fromdata("EC", bld)) == NULL)
        goto out;
    why = NULL;
out:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return why;
}

/* One entry of "keys": NULL and *k filled, or why it is skipped. */
static const char *
one_key(json_t *key, struct jwk *k)
{
    json_t     *kty = json_object_get(key, "kty"), *use = json_object_get(key, "use");
    json_t     *alg = json_object_get(key, "alg"), *kid = json_object_get(key, "kid");
    const char *want, *why;

    if (!json_is_object(key))
        return "not an object";
    if (!json_is_string(kty))
        return "no 'kty'";
    if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
        return "'use' is not \"sig\"";
    if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) == 0
                        || json_string_length(kid) > KID_MAX))
        return "'kid' is not a short string";
    if (strcmp(json_string_value(kty), "RSA") == 0) {
        k->type = JWKS_RSA;
        want = "RS256";
    } else if (strcmp(json_string_value(kty), "EC") == 0) {
        k->type = JWKS_EC;
        want = "ES256";
    } else {
        return "'kty' is neither RSA nor EC";
    }
    if (alg != NULL && (!json_is_string(alg) || strcmp(json_string_value(alg), want) != 0))
        return k->type == JWKS_RSA ? "'alg' is not RS256" : "'alg' is not ES256";
    if ((why = k->type == JWKS_RSA ? rsa_key(key, &k->pkey) : ec_key(key, &k->pkey)) != NULL)
        return why;
    if (kid != NULL && (k->kid = strdup(json_string_value(kid))) == NULL) {
        EVP_PKEY_free(k->pkey);
        k->pkey = NULL;
        return "out of memory";
    }
    return NULL;
}

/* Append "keys[i] (kid 'x'): why" to a bounded note. The kid is printed only when it
 * is a short string of printable ASCII (it is public, but it came from outside). */
static void
note_skip(char *note, size_t cap, size_t i, json_t *key, const char *why)
{
    const char *kid = json_string_value(json_object_get(key, "kid"));
    size_t      used = strlen(note);
    int         printable = kid != NULL && strlen(kid) <= 64;

    for (const char *p = kid; printable && *p != '\0'; p++)
        printable = *p >= 0x20 && *p < 0x7f && *p != '\'';
    if (used + 1 >= cap)
        return;
    if (printable)
        snprintf(note + used, cap - used, "%skeys[%zu] (kid '%s'): %s", used > 0 ? "; " : "",
                 i, kid, why);
    else
        snprintf(note + used, cap - used, "%skeys[%zu]: %s", used > 0 ? "; " : "", i, why);
}

int
ferry_jwks_parse(const char *json, size_t len, struct ferry_jwks **out, struct ferry_err *err)
{
    json_t            *doc = NULL, *keys;
    json_error_t       jerr;
    struct ferry_jwks *set = NULL;
    char               note[320] = "";
    size_t             nkeys, noted = 0;
    int                rc;

    *out = NULL;
    if (len > FERRY_JWKS_MAX_BYTES)
        return ferry_err_set(err, FERRY_ELIMIT, "JWKS over %d bytes", FERRY_JWKS_MAX_BYTES);
    if ((doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        rc = ferry_err_set(err, FERRY_EINVAL, "JWKS is not JSON: %s", jerr.text);
        if (err != NULL) {
            err->line = jerr.line > 0 ? jerr.line : 1;
            err->col = jerr.column > 0 ? jerr.column : 1;
        }
        goto out;
    }
    keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        rc = ferry_err_set(err, FERRY_EINVAL, "JWKS has no \"keys\" array");
        goto out;
    }
    if ((nkeys = json_array_size(keys)) > FERRY_JWKS_MAX_KEYS) {
        rc = ferry_err_set(err, FERRY_EINVAL, "JWKS has %zu keys, at most %d are allowed",
                           nkeys, FERRY_JWKS_MAX_KEYS);
        goto out;
    }
    if ((set = calloc(1, sizeof(*set) + nkeys * sizeof(set->keys[0]))) == NULL) {
        rc = ferry_err_set(err, FERRY_ENOMEM, "out of memory");
        goto out;
    }
    atomic_init(&set->refs, 1);
    for (size_t i = 0; i < nkeys; i++) {
        json_t     *key = json_array_get(keys, i);
        const char *why = one_key(key, &set->keys[set->n]);

        if (why == NULL) {
            set->n++;
            continue;
        }
        memset(&set->keys[set->n], 0, sizeof(set->keys[0]));
        set->skipped++;
        if (noted++ < SKIP_NOTE_MAX)
            note_skip(note, sizeof(note), i, key, why);
    }
    if (set->n == 0) {
        rc = ferry_err_set(err, FERRY_EINVAL, "JWKS holds no usable key (RS256 or ES256 "
                           "signing keys)%s%s", noted > 0 ? ": " : "", note);
        goto out;
    }
    *out = set;
    set = NULL;
    rc = FERRY_OK;
out:
    ferry_jwks_unref(set);
    json_decref(doc);
    return rc;
}

int
ferry_jwks_load_file(const char *path, struct ferry_jwks **out, struct ferry_err *err)
{
    FILE  *fp = NULL;
    char  *buf = NULL;
    size_t n;
    int    rc;

    *out = NULL;
    if ((fp = fopen(path, "rb")) == NULL) {
        rc = ferry_err_set(err, FERRY_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((buf = malloc(FERRY_JWKS_MAX_BYTES + 1)) == NULL) {
        rc = ferry_err_set(err, FERRY_ENOMEM, "out of memory");
        goto out;
    }
    n = fread(buf, 1, FERRY_JWKS_MAX_BYTES + 1, fp);
    if (ferror(fp)) {
        rc = ferry_err_set(err, FERRY_EIO, "%s: read error", path);
        goto out;
    }
    rc = ferry_jwks_parse(buf, n, out, err);
    if (rc != FERRY_OK && err != NULL) {
        int line = err->line, col = err->col;
        char msg[sizeof(err->msg)];

        snprintf(msg, sizeof(msg), "%s", err->msg);
        ferry_err_set(err, rc, "%s", msg);
        err->line = line;
        err->col = col;
        snprintf(err->file, sizeof(err->file), "%s", path);
    }
out:
    free(buf);
    if (fp != NULL)
        fclose(fp);
    return rc;
}

struct ferry_jwks *
ferry_jwks_ref(struct ferry_jwks *k)
{
    if (k != NULL)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void
ferry_jwks_unref(struct ferry_jwks *k)
{
    if (k == NULL || atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < k->n; i++) {
        EVP_PKEY_free(k->keys[i].pkey);
        free(k->keys[i].kid);
    }
    free(k);
}

size_t
ferry_jwks_count(const struct ferry_jwks *k)
{
    return k != NULL ? k->n : 0;
}

size_t
ferry_jwks_skipped(const struct ferry_jwks *k)
{
    return k != NULL ? k->skipped : 0;
}

EVP_PKEY *
ferry_jwks_find(const struct ferry_jwks *k, enum jwks_type type, const char *kid)
{
    EVP_PKEY *only = NULL;
    size_t    of_type = 0;

    for (size_t i = 0; k != NULL && i < k->n; i++) {
        if (k->keys[i].type != type)
            continue;
        if (kid != NULL && k->keys[i].kid != NULL && strcmp(kid, k->keys[i].kid) == 0)
            return k->keys[i].pkey;
        of_type++;
        only = k->keys[i].pkey;
    }
    return kid == NULL && of_type == 1 ? only : NULL;
}

struct ferry_jwks_source {
    struct ferry_jwks      *keys;       /* ref */
    char                   *url;        /* owns; NULL: no URL */
    int64_t                 last_try;   /* unix s of the last refetch allowed */
    int                     tried;
    struct hclient         *fetching;   /* the running refetch, or NULL */
    struct ferry_jwks_fetch fetch;      /* its settings (done, arg) */
};

struct ferry_jwks_source *
ferry_jwks_source_new(struct ferry_jwks *keys, const char *url)
{
    struct ferry_jwks_source *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    if (url != NULL && (s->url = strdup(url)) == NULL) {
        free(s);
        return NULL;
    }
    s->keys = ferry_jwks_ref(keys);
    return s;
}

void
ferry_jwks_source_free(struct ferry_jwks_source *s)
{
    if (s == NULL)
        return;
    if (s->fetching != NULL)
        hclient_cancel(s->fetching);
    ferry_jwks_unref(s->keys);
    free(s->url);
    free(s);
}

const struct ferry_jwks *
ferry_jwks_source_get(const struct ferry_jwks_source *s)
{
    return s->keys;
}

void
ferry_jwks_source_set(struct ferry_jwks_source *s, struct ferry_jwks *keys)
{
    struct ferry_jwks *old = s->keys;

    s->keys = ferry_jwks_ref(keys);
    ferry_jwks_unref(old);
}

int
ferry_jwks_source_update(struct ferry_jwks_source *s, const char *json, size_t len,
                         struct ferry_err *err)
{
    struct ferry_jwks *fresh = NULL;
    int                rc;

    if ((rc = ferry_jwks_parse(json, len, &fresh, err)) != FERRY_OK)
        return rc;                  /* the last good set stays */
    ferry_jwks_source_set(s, fresh);
    ferry_jwks_unref(fresh);
    return FERRY_OK;
}

int
ferry_jwks_source_may_refresh(struct ferry_jwks_source *s, int64_t now)
{
    if (s->url == NULL)
        return 0;
    if (s->tried && now - s->last_try < FERRY_JWKS_REFRESH_MIN_S && now >= s->last_try)
        return 0;
    s->tried = 1;
    s->last_try = now;
    return 1;
}

static void
source_on_answer(const struct hclient_resp *r, void *arg)
{
    struct ferry_jwks_source *s = arg;
    struct ferry_err          err = {0};
    int                       rc;

    s->fetching = NULL;
    if (r->status != 200) {
        rc = FERRY_EUNAVAIL;
        ferry_err_set(&err, rc, "%s", r->error != NULL ? r->error
                      : r->too_large ? "answer over 1 MiB" : "status not 200");
    } else {
        rc = ferry_jwks_source_update(s, r->body, r->body_len, &err);
    }
    if (rc == FERRY_OK)
        ferry_log(NULL, FERRY_INFO, "jwks: refetched", FLOG_STR("url", s->url),
                  FLOG_INT("keys", ferry_jwks_count(s->keys)));
    else
        ferry_log(NULL, FERRY_WARN, "jwks: refetch failed, keeping the last good keys",
                  FLOG_STR("url", s->url), FLOG_INT("status", r->status),
                  FLOG_STR("error", err.msg));
    if (s->fetch.done != NULL)
        s->fetch.done(s->fetch.arg, rc);
}

int
ferry_jwks_source_refresh(struct ferry_jwks_source *s, const struct ferry_jwks_fetch *f,
                          int64_t now)
{
    struct hclient_req rq = {0};
    const char        *why = NULL;

    if (s->url == NULL)
        return FERRY_EINVAL;
    if (s->fetching != NULL || !ferry_jwks_source_may_refresh(s, now))
        return FERRY_EAGAIN;
    s->fetch = *f;
    rq.method = "GET";
    rq.url = s->url;
    rq.timeout_ms = f->timeout_ms;
    rq.max_body = FERRY_JWKS_MAX_BYTES;
    rq.tls_cache = f->tls_cache;
    rq.home = f->home;
    if ((s->fetching = hclient_request(f->base, f->dns, &rq, source_on_answer, s, &why)) == NULL) {
        ferry_log(NULL, FERRY_WARN, "jwks: refetch could not start", FLOG_STR("url", s->url),
                  FLOG_STR("error", why != NULL ? why : "unknown"));
        return FERRY_EUNAVAIL;
    }
    return FERRY_OK;
}
