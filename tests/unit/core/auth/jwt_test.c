/*
 * jwt_test.c: the promises of core/auth/jwt.h. Keys are generated here (RSA 2048 and
 * 1024, EC P-256) and tokens signed here with EVP, so every case is a real token:
 * valid, expired, at the leeway's edges, wrong audience and issuer, forged, of an
 * unknown key, "none" and the HS256-with-the-public-key confusion, truncated, padded,
 * over 16 KiB; the cache counts one verification per token and forgets expired ones;
 * JWKS documents with usable and unusable keys. Ends by printing (not asserting) what
 * one RS256 and one ES256 verification cost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <ferry/err.h>

#include "auth/jwt.h"
#include "cu.h"

#define NOW 1700000000

static EVP_PKEY *rsa_key, *rsa2_key, *rsa1024_key, *ec_key;
static struct ferry_jwks *keys;     /* rsa "r1", rsa2 "r2", ec "e1" */
static const struct ferry_jwt_conf conf = { "https://idp.example", "ferry", 60 };

/* --- helpers: base64url, JWKs and tokens made with OpenSSL ---------------------------- */

static char *
b64url(const uint8_t *in, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char  *out = malloc(len / 3 * 4 + 5);
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;

        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = tab[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = tab[v & 63];
    }
    out[o] = '\0';
    return out;
}

static char *
bn_b64(const BIGNUM *bn, int pad)
{
    uint8_t buf[1024];
    int     n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);

    return b64url(buf, (size_t)n);
}

/* A JWK for pkey as JSON text; extra: more members ("" or ", \"use\": \"sig\""). */
static char *
jwk_of(EVP_PKEY *pkey, const char *kid, const char *extra)
{
    char   *out = malloc(4096), *a, *b;
    BIGNUM *x = NULL, *y = NULL;

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &x);
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &y);
        a = bn_b64(x, 0);
        b = bn_b64(y, 0);
        snprintf(out, 4096, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}",
                 kid, a, b, extra);
    } else {
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x);
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y);
        a = bn_b64(x, 32);
        b = bn_b64(y, 32);
        snprintf(out, 4096, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\","
                 "\"y\":\"%s\"%s}", kid, a, b, extra);
    }
    free(a);
    free(b);
    BN_free(x);
    BN_free(y);
    return out;
}

static struct ferry_jwks *
jwks_of(const char *doc, int expect_rc, struct ferry_err *err)
{
    struct ferry_jwks *k = NULL;

    CU_ASSERT_EQUAL(ferry_jwks_parse(doc, strlen(doc), &k, err), expect_rc);
    return k;
}

/* sig over data with pkey: RS256 (PKCS#1 v1.5) or ES256 (R || S). */
static size_t
sign(EVP_PKEY *pkey, const char *data, uint8_t *sig)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t     der[512];
    size_t      len = sizeof(der);

    EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL);
    EVP_DigestSign(md, der, &len, (const uint8_t *)data, strlen(data));
    EVP_MD_CTX_free(md);
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        memcpy(sig, der, len);
        return len;
    } else {
        const unsigned char *p = der;
        ECDSA_SIG           *es = d2i_ECDSA_SIG(NULL, &p, (long)len);

        BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
        ECDSA_SIG_free(es);
        return 64;
    }
}

/* header and payload as JSON text; sig_adjust: bytes added (>0: zeros) or cut (<0). */
static char *
token_raw(EVP_PKEY *pkey, const char *header, const char *payload, int sig_adjust)
{
    char   *h = b64url((const uint8_t *)header, strlen(header));
    char   *p = b64url((const uint8_t *)payload, strlen(payload));
    char   *input = malloc(strlen(h) + strlen(p) + 2), *s, *out;
    uint8_t sig[600] = {0};
    size_t  n;

    sprintf(input, "%s.%s", h, p);
    n = sign(pkey, input, sig);
    n = (size_t)((long)n + sig_adjust);
    s = b64url(sig, n);
    out = malloc(strlen(input) + strlen(s) + 2);
    sprintf(out, "%s.%s", input, s);
    free(h);
    free(p);
    free(s);
    free(input);
    return out;
}

static char *
token(EVP_PKEY *pkey, const char *kid, const char *payload)
{
    char header[128];

    if (kid != NULL)
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                 EVP_PKEY_is_a(pkey, "RSA") ? "RS256" : "ES256", kid);
    else
        snprintf(header, sizeof(header), "{\"alg\":\"%s\"}",
                 EVP_PKEY_is_a(pkey, "RSA") ? "RS256" : "ES256");
    return token_raw(pkey, header, payload, 0);
}

/* Claims with exp = NOW + exp_in and more members (extra: "" or ",\"nbf\":1"). */
static char *
claims(long exp_in, const char *extra)
{
    static char buf[20000];

    snprintf(buf, sizeof(buf), "{\"iss\":\"https://idp.example\",\"aud\":\"ferry\","
             "\"sub\":\"alice\",\"exp\":%ld%s}", (long)NOW + exp_in, extra);
    return buf;
}

/* The reason a token gets at now ("OK": accepted), without a cache. */
static const char *
verdict_at(const char *tok, int64_t now)
{
    json_t     *cl = NULL;
    const char *reason = NULL;
    int         rc = ferry_jwt_verify(NULL, keys, &conf, tok, strlen(tok), now, &cl, &reason);

    if (rc == FERRY_OK) {
        CU_ASSERT_PTR_NOT_NULL(cl);
        json_decref(cl);
        return "OK";
    }
    CU_ASSERT_EQUAL(rc, FERRY_EDENIED);
    CU_ASSERT_PTR_NULL(cl);
    CU_ASSERT_PTR_NOT_NULL(reason);
    return reason != NULL ? reason : "(none)";
}

static const char *
verdict(const char *tok)
{
    return verdict_at(tok, NOW);
}

/* want NULL: accepted. Prints what came instead, so a failure says which case. */
static int
reason_is(const char *tok, const char *want, int line)
{
    const char *got = verdict(tok);
    int         same = strcmp(got, want != NULL ? want : "OK") == 0;

    if (!same)
        fprintf(stderr, "\n    line %d: wanted %s, got %s\n", line, want ? want : "OK", got);
    return same;
}

#define ASSERT_REASON(tok, want) CU_ASSERT(reason_is((tok), (want), __LINE__))

#define OK_ ((const char *)NULL)

/* --- the tests ------------------------------------------------------------------------ */

static void
test_valid_rs256_and_es256_tokens_pass_with_their_claims(void)
{
    char       *r = token(rsa_key, "r1", claims(300, ""));
    char       *e = token(ec_key, "e1", claims(300, ",\"nbf\":1699999990.5,\"iat\":1700000000"));
    json_t     *cl = NULL;
    const char *reason = NULL;

    CU_ASSERT_EQUAL(ferry_jwt_verify(NULL, keys, &conf, r, strlen(r), NOW, &cl, &reason),
                    FERRY_OK);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(cl, "sub")), "alice");
    json_decref(cl);
    ASSERT_REASON(e, OK_);
    free(r);
    free(e);
}

static void
test_exp_nbf_iat_with_leeway_edges(void)
{
    char *t;

    /* leeway 60: exp = now - 60 is expired, now - 59 is not. */
    t = token(rsa_key, "r1", claims(-60, ""));
    ASSERT_REASON(t, "expired");
    free(t);
    t = token(rsa_key, "r1", claims(-59, ""));
    ASSERT_REASON(t, OK_);
    CU_ASSERT_STRING_EQUAL(verdict_at(t, NOW + 1), "expired");
    free(t);
    t = token(ec_key, "e1", claims(-3600, ""));
    ASSERT_REASON(t, "expired");
    free(t);
    /* A real exp: 59.5 s ago is inside the leeway, 60.5 s is not. */
    t = token(rsa_key, "r1", "{\"iss\":\"https://idp.example\",\"aud\":\"ferry\","
                             "\"exp\":1699999940.5}");
    ASSERT_REASON(t, OK_);
    CU_ASSERT_STRING_EQUAL(verdict_at(t, NOW + 1), "expired");
    free(t);
    /* nbf: now + 60 passes, now + 61 is not yet valid; the same for iat. */
    t = token(rsa_key, "r1", claims(600, ",\"nbf\":1700000060"));
    ASSERT_REASON(t, OK_);
    CU_ASSERT_STRING_EQUAL(verdict_at(t, NOW - 1), "not-yet-valid");
    free(t);
    t = token(rsa_key, "r1", claims(600, ",\"nbf\":1700000061"));
    ASSERT_REASON(t, "not-yet-valid");
    free(t);
    t = token(rsa_key, "r1", claims(600, ",\"iat\":1700000061"));
    ASSERT_REASON(t, "not-yet-valid");
    free(t);
    t = token(rsa_key, "r1", claims(600, ",\"iat\":1700000060"));
    ASSERT_REASON(t, OK_);
    free(t);
}

static void
test_claims_of_the_wrong_type_or_missing_exp_are_malformed(void)
{
    char *t;

    t = token(rsa_key, "r1", "{\"iss\":\"https://idp.example\",\"aud\":\"ferry\"}");
    ASSERT_REASON(t, "malformed");
    free(t);
    t = token(rsa_key, "r1", "{\"iss\":\"https://idp.example\",\"aud\":\"ferry\","
                             "\"exp\":\"1800000000\"}");
    ASSERT_REASON(t, "malformed");
    free(t);
    t = token(rsa_key, "r1", claims(600, ",\"nbf\":null"));
    ASSERT_REASON(t, "malformed");
    free(t);
    t = token(rsa_key, "r1", "[1,2]");
    ASSERT_REASON(t, "malformed");
    free(t);
}

static void
test_audience_string_or_array_and_issuer_exact(void)
{
    char *t;

    t = token(rsa_key, "r1", "{\"iss\":\"https://idp.example\",\"aud\":\"other\","
                             "\"exp\":1800000000}");
    ASSERT_REASON(t, "wrong-audience");
    free(t);
    t = token(rsa_key, "r1", "{\"iss\":\"https://idp.example\",\"aud\":[\"a\",\"ferry\"],"
                             "\"exp\":1800000000}");
    ASSERT_REASON(t, OK_);
    free(t);
    t = token(rsa_key, "r1", "{\"iss\":\"https://idp.example\",\"aud\":[\"a\",\"ferryx\",1],"
                             "\"exp\":1800000000}");
    ASSERT_REASON(t, "wrong-audience");
    free(t);
    t = token(rsa_key, "r1", "{\"iss\":\"https://idp.example\",\"exp\":1800000000}");
    ASSERT_REASON(t, "wrong-audience");
    free(t);
    t = token(rsa_key, "r1", "{\"iss\":\"https://idp.example/\",\"aud\":\"ferry\","
                             "\"exp\":1800000000}");
    ASSERT_REASON(t, "wrong-issuer");
    free(t);
    t = token(ec_key, "e1", "{\"aud\":\"ferry\",\"exp\":1800000000}");
    ASSERT_REASON(t, "wrong-issuer");
    free(t);
}

static void
test_a_flipped_byte_is_a_bad_signature(void)
{
    char  *t = token(rsa_key, "r1", claims(300, ""));
    char  *e = token(ec_key, "e1", claims(300, ""));
    char  *sig = strrchr(t, '.') + 1, *esig = strrchr(e, '.') + 1, *u, *forged;

    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    ASSERT_REASON(t, "bad-signature");
    esig[10] = esig[10] == 'A' ? 'B' : 'A';
    ASSERT_REASON(e, "bad-signature");
    free(t);
    /* Another payload under a good signature (sub alice -> mallory). */
    t = token(rsa_key, "r1", claims(300, ""));
    u = token(rsa_key, "r1", "{\"iss\":\"https://idp.example\",\"aud\":\"ferry\","
                             "\"sub\":\"mallory\",\"exp\":1700000300}");
    ASSERT_REASON(u, OK_);
    forged = malloc(strlen(t) + strlen(u) + 1);
    sprintf(forged, "%.*s%s", (int)(strrchr(u, '.') - u), u, strrchr(t, '.'));
    ASSERT_REASON(forged, "bad-signature");
    free(forged);
    free(u);
    free(t);
    free(e);
    /* An RS256 signature one byte short. */
    t = token_raw(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims(300, ""), -1);
    ASSERT_REASON(t, "bad-signature");
    free(t);
    /* Signed by rsa2 but naming r1. */
    t = token(rsa2_key, "r1", claims(300, ""));
    ASSERT_REASON(t, "bad-signature");
    free(t);
}

static void
test_unknown_kid_and_kidless_tokens(void)
{
    char *t;

    t = token(rsa_key, "nope", claims(300, ""));
    ASSERT_REASON(t, "unknown-key");
    free(t);
    /* An ES256 token naming an RSA key's kid. */
    t = token(ec_key, "r1", claims(300, ""));
    ASSERT_REASON(t, "unknown-key");
    free(t);
    /* No kid: one EC key in the set, so it is used; two RSA keys, so none is. */
    t = token(ec_key, NULL, claims(300, ""));
    ASSERT_REASON(t, OK_);
    free(t);
    t = token(rsa_key, NULL, claims(300, ""));
    ASSERT_REASON(t, "unknown-key");
    free(t);
}

static void
test_alg_none_hs256_confusion_and_others_are_refused(void)
{
    char   *pem = NULL, *h, *p, *input, *s, *t;
    BIO    *bio = BIO_new(BIO_s_mem());
    long    pemlen;
    uint8_t mac[32];
    unsigned maclen = 0;

    /* "none": no signature, and with some bytes in its place. */
    h = b64url((const uint8_t *)"{\"alg\":\"none\"}", 14);
    p = b64url((const uint8_t *)claims(300, ""), strlen(claims(300, "")));
    input = malloc(strlen(h) + strlen(p) + 64);
    sprintf(input, "%s.%s.", h, p);
    ASSERT_REASON(input, "bad-algorithm");      /* what the attack is, not "malformed" */
    sprintf(input, "%s.%s.AAAA", h, p);
    ASSERT_REASON(input, "bad-algorithm");
    free(h);

    /* HS256 keyed with the RSA public key as PEM text: the classic confusion. */
    PEM_write_bio_PUBKEY(bio, rsa_key);
    pemlen = BIO_get_mem_data(bio, &pem);
    h = b64url((const uint8_t *)"{\"alg\":\"HS256\",\"kid\":\"r1\"}", 26);
    sprintf(input, "%s.%s", h, p);
    HMAC(EVP_sha256(), pem, (int)pemlen, (const uint8_t *)input, strlen(input), mac, &maclen);
    s = b64url(mac, maclen);
    t = malloc(strlen(input) + strlen(s) + 2);
    sprintf(t, "%s.%s", input, s);
    ASSERT_REASON(t, "bad-algorithm");
    free(t);
    free(s);
    free(h);
    free(p);
    free(input);
    BIO_free(bio);

    t = token_raw(rsa_key, "{\"alg\":\"RS384\",\"kid\":\"r1\"}", claims(300, ""), 0);
    ASSERT_REASON(t, "bad-algorithm");
    free(t);
    t = token_raw(rsa_key, "{\"alg\":\"rs256\",\"kid\":\"r1\"}", claims(300, ""), 0);
    ASSERT_REASON(t, "bad-algorithm");
    free(t);
    t = token_raw(rsa_key, "{\"kid\":\"r1\"}", claims(300, ""), 0);
    ASSERT_REASON(t, "malformed");
    free(t);
}

static void
test_header_shapes_that_are_malformed(void)
{
    char *t;

    t = token_raw(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp\"]}",
                  claims(300, ""), 0);
    ASSERT_REASON(t, "malformed");
    free(t);
    t = token_raw(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"alg\":\"RS256\"}",
                  claims(300, ""), 0);
    ASSERT_REASON(t, "malformed");
    free(t);
    t = token_raw(rsa_key, "{\"alg\":\"RS256\",\"kid\":5}", claims(300, ""), 0);
    ASSERT_REASON(t, "malformed");
    free(t);
    t = token_raw(rsa_key, "[\"RS256\"]", claims(300, ""), 0);
    ASSERT_REASON(t, "malformed");
    free(t);
}

static void
test_truncated_padded_and_odd_shapes_are_malformed(void)
{
    char  *t = token(rsa_key, "r1", claims(300, "")), *u;
    size_t len = strlen(t);

    ASSERT_REASON(t, OK_);
    /* Every proper prefix is refused. */
    for (size_t i = 0; i < len; i++) {
        json_t     *cl = NULL;
        const char *reason = NULL;

        CU_ASSERT_EQUAL(ferry_jwt_verify(NULL, keys, &conf, t, i, NOW, &cl, &reason),
                        FERRY_EDENIED);
        CU_ASSERT_PTR_NULL(cl);
    }
    u = malloc(len + 8);
    sprintf(u, "%s=", t);
    ASSERT_REASON(u, "malformed");
    sprintf(u, "%s==", t);
    ASSERT_REASON(u, "malformed");
    sprintf(u, "%s.", t);
    ASSERT_REASON(u, "malformed");
    sprintf(u, "%s.abc", t);
    ASSERT_REASON(u, "malformed");
    /* Padding inside the header, a space, the standard alphabet's '+'. */
    memcpy(u, t, len + 1);
    u[strchr(u, '.') - u - 1] = '=';
    ASSERT_REASON(u, "malformed");
    memcpy(u, t, len + 1);
    u[3] = ' ';
    ASSERT_REASON(u, "malformed");
    memcpy(u, t, len + 1);
    strrchr(u, '.')[3] = '+';
    ASSERT_REASON(u, "malformed");
    ASSERT_REASON("..", "malformed");
    ASSERT_REASON("a..b", "malformed");
    ASSERT_REASON(".a.b", "malformed");
    ASSERT_REASON("a.b.", "malformed");
    ASSERT_REASON("abc", "malformed");
    ASSERT_REASON("", "malformed");
    free(u);
    free(t);
}

/* The encoded length of a token over payload (no signing needed to know it). */
static size_t
token_len(const char *header, const char *payload, size_t sig_bytes)
{
    return (strlen(header) * 4 + 2) / 3 + 1 + (strlen(payload) * 4 + 2) / 3 + 1
           + (sig_bytes * 4 + 2) / 3;
}

static void
test_tokens_up_to_16_kib_pass_and_longer_ones_are_malformed(void)
{
    const char *header = "{\"alg\":\"ES256\",\"kid\":\"e1\"}";
    char       *pad = malloc(FERRY_JWT_MAX_BYTES), *payload, *t;
    size_t      n = 0, under = 0;

    memset(pad, 'x', FERRY_JWT_MAX_BYTES - 1);
    pad[FERRY_JWT_MAX_BYTES - 1] = '\0';
    /* The largest padding that keeps the token within the bound, then one more. */
    for (n = 10000; n < FERRY_JWT_MAX_BYTES; n++) {
        char saved = pad[n];

        pad[n] = '\0';
        if (token_len(header, claims(300, ",\"pad\":\"\""), 64) + (n * 4 + 2) / 3
            > FERRY_JWT_MAX_BYTES + 2) {
            pad[n] = saved;
            break;
        }
        pad[n] = saved;
    }
    payload = malloc(FERRY_JWT_MAX_BYTES + 100);
    for (under = n; under > n - 8; under--) {
        char saved = pad[under];

        pad[under] = '\0';
        snprintf(payload, FERRY_JWT_MAX_BYTES + 100, "%s", claims(300, ""));
        payload[strlen(payload) - 1] = '\0';
        strcat(payload, ",\"pad\":\"");
        strcat(payload, pad);
        strcat(payload, "\"}");
        pad[under] = saved;
        t = token_raw(ec_key, header, payload, 0);
        if (strlen(t) <= FERRY_JWT_MAX_BYTES) {
            ASSERT_REASON(t, OK_);
            CU_ASSERT(strlen(t) > FERRY_JWT_MAX_BYTES - 4);
            free(t);
            break;
        }
        /* A good token, refused for its length alone. */
        CU_ASSERT(strlen(t) > FERRY_JWT_MAX_BYTES);
        ASSERT_REASON(t, "malformed");
        free(t);
    }
    CU_ASSERT(under > n - 8);
    /* 16 KiB + 1 exactly. */
    t = malloc(FERRY_JWT_MAX_BYTES + 2);
    memset(t, 'A', FERRY_JWT_MAX_BYTES + 1);
    t[100] = '.';
    t[200] = '.';
    t[FERRY_JWT_MAX_BYTES + 1] = '\0';
    ASSERT_REASON(t, "malformed");
    free(t);
    free(payload);
    free(pad);
}

static void
test_es256_signature_of_the_wrong_length_is_malformed(void)
{
    char *t = token_raw(ec_key, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims(300, ""), -1);

    ASSERT_REASON(t, "malformed");
    free(t);
    t = token_raw(ec_key, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims(300, ""), 1);
    ASSERT_REASON(t, "malformed");
    free(t);
    /* A DER signature (what OpenSSL makes) where R || S belongs. */
    t = token_raw(ec_key, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims(300, ""), 6);
    ASSERT_REASON(t, "malformed");
    free(t);
}

static void
test_rsa_1024_key_is_refused(void)
{
    struct ferry_err   err = {0};
    struct ferry_jwks *k;
    char              *small = jwk_of(rsa1024_key, "small", ""), *big = jwk_of(rsa_key, "r1", "");
    char               doc[8192], *t;
    json_t            *cl = NULL;
    const char        *reason = NULL;

    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", small);
    CU_ASSERT_PTR_NULL(jwks_of(doc, FERRY_EINVAL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "under 2048 bits"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "kid 'small'"));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", small, big);
    k = jwks_of(doc, FERRY_OK, &err);
    CU_ASSERT_EQUAL(ferry_jwks_count(k), 1);
    CU_ASSERT_EQUAL(ferry_jwks_skipped(k), 1);
    t = token(rsa1024_key, "small", claims(300, ""));
    CU_ASSERT_EQUAL(ferry_jwt_verify(NULL, k, &conf, t, strlen(t), NOW, &cl, &reason),
                    FERRY_EDENIED);
    CU_ASSERT_STRING_EQUAL(reason != NULL ? reason : "OK", "unknown-key");
    free(t);
    ferry_jwks_unref(k);
    free(small);
    free(big);
}

static void
test_cache_verifies_each_token_once(void)
{
    struct ferry_jwt_cache *c = ferry_jwt_cache_new(4);
    char                   *a = token(rsa_key, "r1", claims(300, ""));
    char                   *b = token(ec_key, "e1", claims(300, ""));
    json_t                 *cl = NULL;
    const char             *reason = NULL;
    const struct ferry_jwt_counters *n = ferry_jwt_cache_counters(c);

    CU_ASSERT_EQUAL(ferry_jwt_verify(c, keys, &conf, a, strlen(a), NOW, &cl, &reason), FERRY_OK);
    json_decref(cl);
    CU_ASSERT_EQUAL(ferry_jwt_verify(c, keys, &conf, a, strlen(a), NOW + 1, &cl, &reason),
                    FERRY_OK);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(cl, "sub")), "alice");
    json_decref(cl);
    CU_ASSERT_EQUAL(n->verifications, 1);
    CU_ASSERT_EQUAL(n->cache_hits, 1);
    CU_ASSERT_EQUAL(ferry_jwt_verify(c, keys, &conf, b, strlen(b), NOW, &cl, &reason), FERRY_OK);
    json_decref(cl);
    CU_ASSERT_EQUAL(n->verifications, 2);
    CU_ASSERT_EQUAL(ferry_jwt_cache_size(c), 2);

    /* Another tenant's settings on a cached token: checked again, refused. */
    {
        struct ferry_jwt_conf other = { "https://idp.example", "someone-else", 0 };

        CU_ASSERT_EQUAL(ferry_jwt_verify(c, keys, &other, a, strlen(a), NOW, &cl, &reason),
                        FERRY_EDENIED);
        CU_ASSERT_STRING_EQUAL(reason != NULL ? reason : "OK", "wrong-audience");
    }
    /* Expired entries are not served and leave the cache. */
    CU_ASSERT_EQUAL(ferry_jwt_verify(c, keys, &conf, a, strlen(a), NOW + 360, &cl, &reason),
                    FERRY_EDENIED);
    CU_ASSERT_STRING_EQUAL(reason != NULL ? reason : "OK", "expired");
    CU_ASSERT_PTR_NULL(cl);
    CU_ASSERT_EQUAL(ferry_jwt_cache_size(c), 1);
    CU_ASSERT_EQUAL(n->cache_hits, 1);
    /* A failed token is not cached. */
    a[strlen(a) - 5] = a[strlen(a) - 5] == 'A' ? 'B' : 'A';
    CU_ASSERT_EQUAL(ferry_jwt_verify(c, keys, &conf, a, strlen(a), NOW, &cl, &reason),
                    FERRY_EDENIED);
    CU_ASSERT_EQUAL(ferry_jwt_verify(c, keys, &conf, a, strlen(a), NOW, &cl, &reason),
                    FERRY_EDENIED);
    CU_ASSERT_STRING_EQUAL(reason != NULL ? reason : "OK", "bad-signature");
    CU_ASSERT_EQUAL(n->verifications, 4);
    CU_ASSERT_EQUAL(ferry_jwt_cache_size(c), 1);
    free(a);
    free(b);
    ferry_jwt_cache_free(c);
}

static void
test_cache_is_bounded_and_evicts_the_least_recent(void)
{
    struct ferry_jwt_cache *c = ferry_jwt_cache_new(4);
    const struct ferry_jwt_counters *n = ferry_jwt_cache_counters(c);
    char                   *t[6];
    json_t                 *cl = NULL;
    const char             *reason = NULL;

    for (int i = 0; i < 6; i++) {
        t[i] = token(ec_key, "e1", claims(300 + i, ""));
        CU_ASSERT_EQUAL(ferry_jwt_verify(c, keys, &conf, t[i], strlen(t[i]), NOW, &cl, &reason),
                        FERRY_OK);
        json_decref(cl);
        if (i == 3) {           /* t[0] used again: t[1] is now the least recent */
            CU_ASSERT_EQUAL(ferry_jwt_verify(c, keys, &conf, t[0], strlen(t[0]), NOW, &cl,
                                             &reason), FERRY_OK);
            json_decref(cl);
        }
    }
    CU_ASSERT_EQUAL(ferry_jwt_cache_size(c), 4);
    CU_ASSERT_EQUAL(n->evictions, 2);
    CU_ASSERT_EQUAL(n->verifications, 6);
    CU_ASSERT_EQUAL(n->cache_hits, 1);
    ferry_jwt_verify(c, keys, &conf, t[0], strlen(t[0]), NOW, &cl, &reason);
    json_decref(cl);
    CU_ASSERT_EQUAL(n->cache_hits, 2);          /* kept */
    ferry_jwt_verify(c, keys, &conf, t[1], strlen(t[1]), NOW, &cl, &reason);
    json_decref(cl);
    CU_ASSERT_EQUAL(n->verifications, 7);       /* evicted: verified again */
    for (int i = 0; i < 6; i++)
        free(t[i]);
    ferry_jwt_cache_free(c);
}

static void
test_cache_entry_is_tied_to_its_key_set(void)
{
    struct ferry_jwt_cache *c = ferry_jwt_cache_new(0);
    const struct ferry_jwt_counters *n = ferry_jwt_cache_counters(c);
    char                   *r2 = jwk_of(rsa2_key, "r2", ""), doc[4096];
    struct ferry_jwks      *only_r2;
    char                   *t = token(rsa_key, "r1", claims(300, ""));
    json_t                 *cl = NULL;
    const char             *reason = NULL;

    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", r2);
    only_r2 = jwks_of(doc, FERRY_OK, NULL);
    CU_ASSERT_EQUAL(ferry_jwt_verify(c, keys, &conf, t, strlen(t), NOW, &cl, &reason), FERRY_OK);
    json_decref(cl);
    /* r1 rotated out: the cached verdict of the old set does not carry over. */
    CU_ASSERT_EQUAL(ferry_jwt_verify(c, only_r2, &conf, t, strlen(t), NOW, &cl, &reason),
                    FERRY_EDENIED);
    CU_ASSERT_STRING_EQUAL(reason != NULL ? reason : "OK", "unknown-key");
    CU_ASSERT_EQUAL(n->cache_hits, 0);
    ferry_jwks_unref(only_r2);
    free(r2);
    free(t);
    ferry_jwt_cache_free(c);
}

static void
test_jwks_with_rsa_and_ec_keys_and_skipped_ones(void)
{
    char              *r = jwk_of(rsa_key, "r1", ",\"use\":\"sig\",\"alg\":\"RS256\"");
    char              *e = jwk_of(ec_key, "e1", ",\"alg\":\"ES256\"");
    char              *enc = jwk_of(rsa2_key, "enc1", ",\"use\":\"enc\"");
    char              *ralg = jwk_of(rsa2_key, "r384", ",\"alg\":\"RS384\"");
    char              *doc = malloc(20000);
    struct ferry_jwks *k;
    struct ferry_err   err = {0};

    snprintf(doc, 20000, "{\"keys\":[%s,%s,%s,%s,"
             "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p384\",\"x\":\"%s\",\"y\":\"%s\"},"
             "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},"
             "{\"kty\":\"RSA\",\"kid\":\"noe\",\"n\":\"AQAB\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"noy\",\"x\":\"AQAB\"},"
             "\"junk\"]}", r, e, enc, ralg,
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    k = jwks_of(doc, FERRY_OK, &err);
    CU_ASSERT_EQUAL(ferry_jwks_count(k), 2);
    CU_ASSERT_EQUAL(ferry_jwks_skipped(k), 7);
    /* The enc key and the RS384 key are not used to verify. */
    {
        char       *t = token(rsa2_key, "enc1", claims(300, ""));
        json_t     *cl = NULL;
        const char *reason = NULL;

        CU_ASSERT_EQUAL(ferry_jwt_verify(NULL, k, &conf, t, strlen(t), NOW, &cl, &reason),
                        FERRY_EDENIED);
        CU_ASSERT_STRING_EQUAL(reason != NULL ? reason : "OK", "unknown-key");
        free(t);
        t = token(ec_key, "e1", claims(300, ""));
        CU_ASSERT_EQUAL(ferry_jwt_verify(NULL, k, &conf, t, strlen(t), NOW, &cl, &reason),
                        FERRY_OK);
        json_decref(cl);
        free(t);
    }
    ferry_jwks_unref(k);

    /* Only unusable keys: an error naming each. */
    snprintf(doc, 20000, "{\"keys\":[%s,"
             "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p384\",\"x\":\"AA\",\"y\":\"AA\"},"
             "{\"kty\":\"RSA\",\"kid\":\"noe\",\"n\":\"AQAB\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"bad'kid\",\"x\":\"AQAB\"}]}", enc);
    CU_ASSERT_PTR_NULL(jwks_of(doc, FERRY_EINVAL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no usable key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "keys[0] (kid 'enc1'): 'use' is not \"sig\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "keys[1] (kid 'p384'): EC key on a curve other"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "keys[2] (kid 'noe'): RSA key without a valid 'e'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "keys[3]: EC key without valid"));
    CU_ASSERT_PTR_NULL(strstr(err.msg, "AQAB"));
    CU_ASSERT_EQUAL(err.line, 0);
    free(doc);
    free(r);
    free(e);
    free(enc);
    free(ralg);
}

static void
test_jwks_documents_that_are_not_key_sets(void)
{
    struct ferry_err err = {0};

    CU_ASSERT_PTR_NULL(jwks_of("{\"keys\": [\n  {\"kty\": \"RSA\",,}]}", FERRY_EINVAL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not JSON"));
    CU_ASSERT_EQUAL(err.line, 2);
    CU_ASSERT(err.col > 0);
    CU_ASSERT_PTR_NULL(jwks_of("not json", FERRY_EINVAL, &err));
    CU_ASSERT_EQUAL(err.line, 1);
    CU_ASSERT_PTR_NULL(jwks_of("{\"keys\": {}}", FERRY_EINVAL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no \"keys\" array"));
    CU_ASSERT_PTR_NULL(jwks_of("[]", FERRY_EINVAL, &err));
    CU_ASSERT_PTR_NULL(jwks_of("{\"keys\": []}", FERRY_EINVAL, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no usable key"));
    CU_ASSERT_PTR_NULL(jwks_of("{\"keys\": [], \"keys\": []}", FERRY_EINVAL, &err));
}

static void
test_jwks_file_load_names_the_file(void)
{
    char               path[] = "/tmp/jwt_test_XXXXXX", *e = jwk_of(ec_key, "e1", "");
    int                fd = mkstemp(path);
    FILE              *fp = fdopen(fd, "w");
    struct ferry_jwks *k = NULL;
    struct ferry_err   err = {0};

    fprintf(fp, "{\"keys\":[%s]}\n", e);
    fclose(fp);
    CU_ASSERT_EQUAL(ferry_jwks_load_file(path, &k, &err), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_jwks_count(k), 1);
    ferry_jwks_unref(k);
    fp = fopen(path, "w");
    fprintf(fp, "{\n  \"keys\": [\n    oops\n  ]\n}\n");
    fclose(fp);
    CU_ASSERT_EQUAL(ferry_jwks_load_file(path, &k, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_STRING_EQUAL(err.file, path);
    CU_ASSERT_EQUAL(err.line, 3);
    CU_ASSERT(err.col >= 5);
    unlink(path);
    CU_ASSERT_EQUAL(ferry_jwks_load_file(path, &k, &err), FERRY_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    free(e);
}

static void
test_source_keeps_the_last_good_set_and_limits_refetches(void)
{
    char                     *e = jwk_of(ec_key, "e1", ""), doc[4096];
    struct ferry_jwks_source *s = ferry_jwks_source_new(keys, "https://idp.example/jwks");
    const struct ferry_jwks  *held;
    struct ferry_err          err = {0};

    CU_ASSERT_PTR_EQUAL(ferry_jwks_source_get(s), keys);
    CU_ASSERT_EQUAL(ferry_jwks_source_update(s, "<html>", 6, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_EQUAL(ferry_jwks_source_get(s), keys);
    CU_ASSERT_EQUAL(ferry_jwks_source_update(s, "{\"keys\":[]}", 11, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_EQUAL(ferry_jwks_source_get(s), keys);
    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", e);
    CU_ASSERT_EQUAL(ferry_jwks_source_update(s, doc, strlen(doc), &err), FERRY_OK);
    held = ferry_jwks_source_get(s);
    CU_ASSERT_PTR_NOT_EQUAL(held, keys);
    CU_ASSERT_EQUAL(ferry_jwks_count(held), 1);

    CU_ASSERT_TRUE(ferry_jwks_source_may_refresh(s, NOW));
    CU_ASSERT_FALSE(ferry_jwks_source_may_refresh(s, NOW + 59));
    CU_ASSERT_TRUE(ferry_jwks_source_may_refresh(s, NOW + 60));
    CU_ASSERT_FALSE(ferry_jwks_source_may_refresh(s, NOW + 61));
    ferry_jwks_source_free(s);
    s = ferry_jwks_source_new(keys, NULL);
    CU_ASSERT_FALSE(ferry_jwks_source_may_refresh(s, NOW));
    ferry_jwks_source_free(s);
    free(e);
}

static void
test_b64url_decoder_is_strict(void)
{
    uint8_t out[16];

    CU_ASSERT_EQUAL(ferry_jwt_b64url_decode("TWFu", 4, out, sizeof(out)), 3);
    CU_ASSERT_EQUAL(memcmp(out, "Man", 3), 0);
    CU_ASSERT_EQUAL(ferry_jwt_b64url_decode("TWE", 3, out, sizeof(out)), 2);
    CU_ASSERT_EQUAL(ferry_jwt_b64url_decode("TQ", 2, out, sizeof(out)), 1);
    CU_ASSERT_EQUAL(ferry_jwt_b64url_decode("TR", 2, out, sizeof(out)), -1);  /* bits left */
    CU_ASSERT_EQUAL(ferry_jwt_b64url_decode("TQ==", 4, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(ferry_jwt_b64url_decode("T", 1, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(ferry_jwt_b64url_decode("-_-_", 4, out, sizeof(out)), 3);
    CU_ASSERT_EQUAL(ferry_jwt_b64url_decode("+/+/", 4, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(ferry_jwt_b64url_decode("TWFuTWFu", 8, out, 5), -1);     /* cap */
}

static double
per_verify_us(const char *t, int rounds)
{
    struct timespec a, b;
    json_t         *cl = NULL;
    const char     *reason = NULL;

    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < rounds; i++) {
        CU_ASSERT_EQUAL(ferry_jwt_verify(NULL, keys, &conf, t, strlen(t), NOW, &cl, &reason),
                        FERRY_OK);
        json_decref(cl);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    return ((double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3) / rounds;
}

static void
test_print_the_cost_of_one_verification(void)
{
    char *r = token(rsa_key, "r1", claims(300, ""));
    char *e = token(ec_key, "e1", claims(300, ""));

    printf("\n    RS256 (2048): %.1f us per verification (uncached)\n", per_verify_us(r, 300));
    printf("    ES256 (P-256): %.1f us per verification (uncached)\n    ", per_verify_us(e, 300));
    free(r);
    free(e);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "valid RS256 and ES256 tokens pass with their claims",
          test_valid_rs256_and_es256_tokens_pass_with_their_claims },
        { "exp, nbf, iat with the leeway's edges", test_exp_nbf_iat_with_leeway_edges },
        { "claims of the wrong type or without exp are malformed",
          test_claims_of_the_wrong_type_or_missing_exp_are_malformed },
        { "aud string or array, iss exact", test_audience_string_or_array_and_issuer_exact },
        { "a flipped byte is a bad signature", test_a_flipped_byte_is_a_bad_signature },
        { "unknown kid and kid-less tokens", test_unknown_kid_and_kidless_tokens },
        { "alg none, HS256 confusion and others refused",
          test_alg_none_hs256_confusion_and_others_are_refused },
        { "header shapes that are malformed", test_header_shapes_that_are_malformed },
        { "truncated, padded and odd shapes are malformed",
          test_truncated_padded_and_odd_shapes_are_malformed },
        { "tokens up to 16 KiB pass, longer ones are malformed",
          test_tokens_up_to_16_kib_pass_and_longer_ones_are_malformed },
        { "ES256 signature of the wrong length is malformed",
          test_es256_signature_of_the_wrong_length_is_malformed },
        { "an RSA 1024 key is refused", test_rsa_1024_key_is_refused },
        { "the cache verifies each token once", test_cache_verifies_each_token_once },
        { "the cache is bounded and evicts the least recent",
          test_cache_is_bounded_and_evicts_the_least_recent },
        { "a cache entry is tied to its key set", test_cache_entry_is_tied_to_its_key_set },
        { "JWKS with RSA and EC keys and skipped ones",
          test_jwks_with_rsa_and_ec_keys_and_skipped_ones },
        { "JWKS documents that are not key sets", test_jwks_documents_that_are_not_key_sets },
        { "JWKS file load names the file", test_jwks_file_load_names_the_file },
        { "a source keeps the last good set and limits refetches",
          test_source_keeps_the_last_good_set_and_limits_refetches },
        { "the base64url decoder is strict", test_b64url_decoder_is_strict },
        { "print the cost of one verification", test_print_the_cost_of_one_verification },
        { NULL, NULL },
    };
    char *r1, *r2, *e1, doc[8192];
    int   rc;

    rsa_key = EVP_RSA_gen(2048);
    rsa2_key = EVP_RSA_gen(2048);
    rsa1024_key = EVP_RSA_gen(1024);
    ec_key = EVP_EC_gen("P-256");
    if (rsa_key == NULL || rsa2_key == NULL || rsa1024_key == NULL || ec_key == NULL)
        return 2;
    r1 = jwk_of(rsa_key, "r1", "");
    r2 = jwk_of(rsa2_key, "r2", "");
    e1 = jwk_of(ec_key, "e1", "");
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s,%s]}", r1, r2, e1);
    free(r1);
    free(r2);
    free(e1);
    if (ferry_jwks_parse(doc, strlen(doc), &keys, NULL) != FERRY_OK)
        return 2;
    rc = cu_run("auth/jwt", tests);
    ferry_jwks_unref(keys);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa2_key);
    EVP_PKEY_free(rsa1024_key);
    EVP_PKEY_free(ec_key);
    return rc;
}
