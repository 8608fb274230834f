/*
 * pp_cost.c: what principal propagation costs per operation, for tests/bench/pp.sh:
 * one RS256 and one ES256 signature verification (uncached: the cost a token pays once
 * per worker) and one user certificate issue (the cost a user pays once per worker and
 * validity window). Files come from the script (jwt_mint.py, openssl), so the figures
 * are for the same keys the end-to-end run uses.
 *
 *   ferry-pp-cost JWKS RS256_TOKEN_FILE ES256_TOKEN_FILE ISSUER AUDIENCE CA_CERT CA_KEY N
 *
 * Prints "RS256_US ES256_US ISSUE_US" (microseconds per operation, the median of five
 * runs of N operations each).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwt.h"
#include "tls/usercert.h"

static double
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static char *
slurp(const char *path)
{
    FILE  *f = fopen(path, "r");
    char  *buf;
    size_t n;

    if (f == NULL || (buf = calloc(1, 65536)) == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    n = fread(buf, 1, 65535, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Microseconds per verification of token, no cache: every call checks the signature. */
static double
verify_us(const struct ferry_jwks *keys, const struct ferry_jwt_conf *cf, const char *token,
          int n)
{
    double runs[5];

    for (int r = 0; r < 5; r++) {
        double t0 = now_us();

        for (int i = 0; i < n; i++) {
            json_t     *claims = NULL;
            const char *reason = NULL;

            if (ferry_jwt_verify(NULL, keys, cf, token, strlen(token), time(NULL), &claims,
                                 &reason) != FERRY_OK) {
                fprintf(stderr, "token refused: %s\n", reason != NULL ? reason : "?");
                exit(1);
            }
            json_decref(claims);
        }
        runs[r] = (now_us() - t0) / n;
    }
    qsort(runs, 5, sizeof(runs[0]), cmp_d);
    return runs[2];
}

static double
issue_us(const struct ferry_tls_issuer *iss, int n)
{
    double  runs[5];
    json_t *claims = json_pack("{s:s}", "user_name", "bench-user");

    for (int r = 0; r < 5; r++) {
        double t0 = now_us();

        for (int i = 0; i < n; i++) {
            struct ferry_tls_usercert *uc = NULL;
            struct ferry_err           err = { 0 };

            if (ferry_tls_issuer_issue(iss, claims, time(NULL), &uc, &err) != FERRY_OK) {
                fprintf(stderr, "issue: %s\n", err.msg);
                exit(1);
            }
            ferry_tls_usercert_unref(uc);
        }
        runs[r] = (now_us() - t0) / n;
    }
    json_decref(claims);
    qsort(runs, 5, sizeof(runs[0]), cmp_d);
    return runs[2];
}

int
main(int argc, char **argv)
{
    struct ferry_jwks       *keys = NULL;
    struct ferry_tls_issuer *iss = NULL;
    struct ferry_err         err = { 0 };
    struct ferry_jwt_conf    cf = { 0 };
    char                    *rs, *es;
    int                      n;

    if (argc != 9 || (n = atoi(argv[8])) < 1) {
        fprintf(stderr, "usage: %s JWKS RS256_TOKEN ES256_TOKEN ISSUER AUDIENCE CA_CERT "
                "CA_KEY N\n", argv[0]);
        return 2;
    }
    if (ferry_jwks_load_file(argv[1], &keys, &err) != FERRY_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], err.msg);
        return 2;
    }
    if (ferry_tls_issuer_new(argv[6], argv[7], "CN=${name}", 10, &iss, &err) != FERRY_OK) {
        fprintf(stderr, "issuer: %s\n", err.msg);
        return 2;
    }
    rs = slurp(argv[2]);
    es = slurp(argv[3]);
    cf.issuer = argv[4];
    cf.audience = argv[5];
    cf.leeway_s = 60;
    printf("%.1f %.1f %.1f\n", verify_us(keys, &cf, rs, n), verify_us(keys, &cf, es, n),
           issue_us(iss, n));
    free(rs);
    free(es);
    ferry_tls_issuer_free(iss);
    ferry_jwks_unref(keys);
    return 0;
}
