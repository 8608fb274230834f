/*
 * jwt_corpus_test.c: the jwt fuzz seeds (tests/fuzz/corpus/jwt/, made by
 * tests/fixtures/jwt/make.sh) in every build, without libFuzzer: each seed goes
 * through the fuzz target's own checks (tests/fuzz/jwt_fuzz.c, included), and the
 * seeds meant to show one verdict must show it, so a change that makes a seed
 * pointless (a "valid" token no longer valid) is noticed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWT_FUZZ_NO_ENTRY
#include "../fuzz/jwt_fuzz.c"

#include "cu.h"

#define CORPUS_DIR "../fuzz/corpus/jwt"     /* ctest runs unit tests in tests/unit */

struct expect {
    const char *seed;
    const char *verdict;
};

static const struct expect expects[] = {
    { "tok-rs256", "OK" },
    { "tok-es256", "OK" },
    { "tok-es256-nokid-audarray", "OK" },
    { "tok-expired", "expired" },
    { "tok-wrong-iss", "wrong-issuer" },
    { "tok-unknown-kid", "unknown-key" },
    { "tok-none", "bad-algorithm" },        /* an empty signature part: alg none */
    { "tok-hs256", "bad-algorithm" },
    { "jwks-good", "jwks-ok" },
    { "jwks-unusable", "jwks-error" },
    { "jwks-not-json", "jwks-error" },
};

static void
test_every_seed_gets_its_verdict(void)
{
    DIR           *dir = opendir(CORPUS_DIR);
    struct dirent *de;
    size_t         seeds = 0, expected = 0;
    static uint8_t buf[FERRY_JWKS_MAX_BYTES + 2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    while ((de = readdir(dir)) != NULL) {
        char        path[512];
        FILE       *fp;
        size_t      n;
        const char *got;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, de->d_name);
        if ((fp = fopen(path, "rb")) == NULL)
            continue;
        n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        seeds++;
        got = jwt_fuzz_one(buf, n);
        for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
            if (strcmp(expects[i].seed, de->d_name) != 0)
                continue;
            expected++;
            if (strcmp(got, expects[i].verdict) != 0)
                fprintf(stderr, "\n    %s: wanted %s, got %s\n", de->d_name,
                        expects[i].verdict, got);
            CU_ASSERT_STRING_EQUAL(got, expects[i].verdict);
        }
    }
    closedir(dir);
    CU_ASSERT(seeds >= sizeof(expects) / sizeof(expects[0]));
    CU_ASSERT_EQUAL(expected, sizeof(expects) / sizeof(expects[0]));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "every jwt seed gets its verdict", test_every_seed_gets_its_verdict },
        { NULL, NULL },
    };

    return cu_run("auth/jwt_corpus", tests);
}
