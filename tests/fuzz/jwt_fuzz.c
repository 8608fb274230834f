/*
 * jwt_fuzz.c: libFuzzer target for core/auth's JWT and JWKS parsers (jwt.h).
 *
 * Byte 0 of the input picks what the rest is: 'k' a JWKS document, parsed (and, when
 * it holds keys, used to check one fixed token); anything else a compact JWS, verified
 * against the fixed key set of tests/fixtures/jwt/jwks.json at a fixed time.
 *
 * Besides "no crash, no sanitizer report" it checks what jwt.h promises: a refusal is
 * FERRY_EDENIED with a reason from the fixed set and no claims; an acceptance gives an
 * object; the same token verified with and without the cache, and again from the
 * cache, gets the same verdict; a JWKS either parses to at least one key or fails with
 * a message.
 *
 * Built with -DFERRY_FUZZ_STANDALONE it is a plain program over the files named on its
 * command line; tests/unit/core/auth/jwt_corpus_test.c includes it with
 * -DJWT_FUZZ_NO_ENTRY to run the seeds in every build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>

#include "auth/jwt.h"

#define JWT_FUZZ_NOW 1700000000

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* tests/fixtures/jwt/jwks.json (make.sh there signs the seeds with its keys). */
static const char jwt_fuzz_jwks[] =
    "{\"keys\":[ {\"kty\":\"RSA\",\"kid\":\"r1\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"tC"
    "RpCypN00l_yPeMWZlJLi1F7Rdszngw0BZIaCLQATccC2q9QlaeSd-jb_bvQlZ9myRUJyX-DGV2HXXRlWKWvZomn9"
    "hx7_ZuyHlnBOp-_vzsNqQtLT83f4zD_fnMQ-JracVIKCdqJHBimgjr856hwmbzT0Q6B--S-kU_jydvoXl8BPz_MS"
    "7_j62l4CIlJxuXu__ZwQQrk0lb0Sy29uiM7pjKxpfMMUQ9avClu71vAtrzeV9rGt-D9XGpu31Yk2QBftFpinu53T"
    "88UVQa05NHIVIXlp_MWemL5B6dFiWLCc-g651tQ_XGLyrefsog7dfIHp-lO0s7h3xK8aaKwAjSnQ\",\"e\":\"A"
    "QAB\"}, {\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\",\"x\":\"moouDsdPbhsnHylUkH8EFQg"
    "Xlkv4zop-vPBMDzNIkRM\",\"y\":\"o0k2vpoO6nC4e9VzeM2zwADkqZyyiV3uHOf0if3ooJo\"}]}";

static const char *const jwt_fuzz_reasons[] = {
    "malformed", "bad-algorithm", "unknown-key", "bad-signature", "wrong-issuer",
    "wrong-audience", "expired", "not-yet-valid",
};

static const struct ferry_jwt_conf jwt_fuzz_conf = { "https://idp.example", "ferry", 60 };

static int
jwt_fuzz_known_reason(const char *r)
{
    for (size_t i = 0; i < sizeof(jwt_fuzz_reasons) / sizeof(jwt_fuzz_reasons[0]); i++)
        if (r != NULL && strcmp(r, jwt_fuzz_reasons[i]) == 0)
            return 1;
    return 0;
}

/* One verification, checked; "OK" or the reason. */
static const char *
jwt_fuzz_verify(struct ferry_jwt_cache *c, const struct ferry_jwks *keys, const char *tok,
                size_t len)
{
    json_t     *claims = NULL;
    const char *reason = NULL;
    int         rc = ferry_jwt_verify(c, keys, &jwt_fuzz_conf, tok, len, JWT_FUZZ_NOW, &claims,
                                      &reason);

    if (rc == FERRY_OK) {
        CHECK(json_is_object(claims));
        json_decref(claims);
        return "OK";
    }
    CHECK(rc == FERRY_EDENIED);
    CHECK(claims == NULL);
    CHECK(jwt_fuzz_known_reason(reason));
    CHECK(len <= FERRY_JWT_MAX_BYTES || strcmp(reason, "malformed") == 0);
    return reason;
}

/* The verdict on one input: "OK" or a reason for a token, "jwks-ok" / "jwks-error". */
static const char *
jwt_fuzz_one(const uint8_t *data, size_t size)
{
    static struct ferry_jwks *keys;
    struct ferry_jwt_cache   *cache;
    const char               *a, *b, *c;

    if (keys == NULL)
        CHECK(ferry_jwks_parse(jwt_fuzz_jwks, strlen(jwt_fuzz_jwks), &keys, NULL) == FERRY_OK);
    if (size == 0)
        return "malformed";
    if (data[0] == 'k') {
        struct ferry_jwks *k = NULL;
        struct ferry_err   err = {0};
        int                rc = ferry_jwks_parse((const char *)data + 1, size - 1, &k, &err);

        if (rc != FERRY_OK) {
            CHECK(k == NULL && err.msg[0] != '\0' && err.code == rc);
            return "jwks-error";
        }
        CHECK(ferry_jwks_count(k) >= 1 && ferry_jwks_count(k) <= FERRY_JWKS_MAX_KEYS);
        CHECK(ferry_jwks_count(k) + ferry_jwks_skipped(k) <= FERRY_JWKS_MAX_KEYS);
        a = "eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjF9.AAAA";
        (void)jwt_fuzz_verify(NULL, k, a, strlen(a));
        ferry_jwks_unref(k);
        return "jwks-ok";
    }
    if ((cache = ferry_jwt_cache_new(2)) == NULL)
        return "malformed";
    a = jwt_fuzz_verify(NULL, keys, (const char *)data + 1, size - 1);
    b = jwt_fuzz_verify(cache, keys, (const char *)data + 1, size - 1);
    c = jwt_fuzz_verify(cache, keys, (const char *)data + 1, size - 1);
    CHECK(strcmp(a, b) == 0 && strcmp(b, c) == 0);
    /* A good token is verified once and then served; a refused one is not cached. */
    if (strcmp(a, "OK") == 0)
        CHECK(ferry_jwt_cache_counters(cache)->verifications == 1
              && ferry_jwt_cache_counters(cache)->cache_hits == 1);
    else
        CHECK(ferry_jwt_cache_counters(cache)->cache_hits == 0);
    ferry_jwt_cache_free(cache);
    return a;
}

#ifndef JWT_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jwt_fuzz_one(data, size);
    return 0;
}
#endif

#ifdef FERRY_FUZZ_STANDALONE
int
main(int argc, char **argv)
{
    static uint8_t buf[FERRY_JWKS_MAX_BYTES + 2];

    for (int i = 1; i < argc; i++) {
        FILE  *fp = fopen(argv[i], "rb");
        size_t n;

        if (fp == NULL) {
            perror(argv[i]);
            return 1;
        }
        n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        printf("%s %s (%zu bytes)\n", jwt_fuzz_one(buf, n), argv[i], n);
    }
    return 0;
}
#endif
