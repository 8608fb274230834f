/*
 * conn_user_test.c: ferry_conn_user_verify (worker/conn-user.c) and the tenants' keys of
 * a generation (worker/gen-jwt.c): a JWT of the tenant's issuer gives the user; each
 * refusal names its check; a tenant without jwt: is "no-jwt-config"; one signature
 * check per token on a worker, the rest are cache hits; a jwks file that does not parse
 * is a load error naming tenant, file, line and column; the JWT half of tenant
 * authentication picks the tenant whose keys validate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <ferry/user.h>

#include "cu.h"
#include "auth/user.h"
#include "worker/conn-int.h"

static EVP_PKEY *acme_key, *beta_key;
static char      dir[] = "/tmp/ferry-conn-user-XXXXXX";
static char      acme_jwks[256], beta_jwks[256], bad_jwks[256];

/* The test's own minimal JWS writer: base64url, an ES256 signature as R || S. */
static void
b64url(const unsigned char *in, size_t len, char *out)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        size_t   n = len - i < 3 ? len - i : 3;

        if (n > 1)
            v |= (unsigned)in[i + 1] << 8;
        if (n > 2)
            v |= in[i + 2];
        for (size_t k = 0; k <= n; k++)
            out[o++] = abc[(v >> (18 - 6 * k)) & 63];
    }
    out[o] = '\0';
}

static void
coord(EVP_PKEY *k, const char *param, char *out)
{
    BIGNUM       *bn = NULL;
    unsigned char raw[32];

    EVP_PKEY_get_bn_param(k, param, &bn);
    BN_bn2binpad(bn, raw, sizeof(raw));
    BN_free(bn);
    b64url(raw, sizeof(raw), out);
}

static void
write_jwks(const char *path, EVP_PKEY *k, const char *kid)
{
    char  x[64], y[64];
    FILE *fp = fopen(path, "w");

    coord(k, OSSL_PKEY_PARAM_EC_PUB_X, x);
    coord(k, OSSL_PKEY_PARAM_EC_PUB_Y, y);
    fprintf(fp, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\","
            "\"y\":\"%s\",\"alg\":\"ES256\",\"use\":\"sig\"}]}\n", kid, x, y);
    fclose(fp);
}

/* A token signed by k, kid, with these claims (a JSON object's text). */
static char *
es256(EVP_PKEY *k, const char *kid, const char *claims)
{
    char           head[128], *tok = malloc(4096);
    unsigned char  der[128], rs[64];
    size_t         dlen = sizeof(der), n;
    EVP_MD_CTX    *md = EVP_MD_CTX_new();
    ECDSA_SIG     *sig;
    const unsigned char *p = der;
    const BIGNUM  *r, *s;

    snprintf(head, sizeof(head), "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    b64url((const unsigned char *)head, strlen(head), tok);
    n = strlen(tok);
    tok[n++] = '.';
    b64url((const unsigned char *)claims, strlen(claims), tok + n);
    n = strlen(tok);
    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k);
    EVP_DigestSign(md, der, &dlen, (const unsigned char *)tok, n);
    EVP_MD_CTX_free(md);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    ECDSA_SIG_get0(sig, &r, &s);
    BN_bn2binpad(r, rs, 32);
    BN_bn2binpad(s, rs + 32, 32);
    ECDSA_SIG_free(sig);
    tok[n++] = '.';
    b64url(rs, sizeof(rs), tok + n);
    return tok;
}

static char *
claims(const char *iss, const char *aud, long exp_in)
{
    char *c = malloc(512);

    snprintf(c, 512, "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"u1\",\"user_name\":\"alice\","
             "\"exp\":%ld}", iss, aud, (long)time(NULL) + exp_in);
    return c;
}

static char *
token(EVP_PKEY *k, const char *kid, const char *iss, const char *aud, long exp_in)
{
    char *c = claims(iss, aud, exp_in), *t = es256(k, kid, c);

    free(c);
    return t;
}

/* A connection as conn-user.c sees one: its worker, generation and listener. */
struct rig {
    struct ferry_conf          *conf;
    struct gen                  g;
    struct worker               w;
    struct wgen                 wg;
    struct ferry_conf_listener  lc;
    struct ferry_listener       l;
    struct ferry_conn           c;
    struct ferry_errlist        errs;
};

static int
rig_up(struct rig *r, const char *yaml, unsigned worker)
{
    int rc;

    memset(r, 0, sizeof(*r));
    if (ferry_conf_load_string(yaml, "t.yaml", &r->conf, &r->errs) != FERRY_OK) {
        ferry_errlist_print(&r->errs, stderr, false);
        return FERRY_EINVAL;
    }
    r->g.conf = r->conf;
    if ((rc = gen_jwt_load(&r->g, NULL, &r->errs)) != FERRY_OK)
        return rc;
    r->w.id = worker;
    r->w.jwt_cache = ferry_jwt_cache_new(0);
    r->wg.w = &r->w;
    r->wg.g = &r->g;
    r->lc.tenant = "acme";
    r->l.lc = &r->lc;
    r->c.w = &r->w;
    r->c.wg = &r->wg;
    r->c.l = &r->l;
    return FERRY_OK;
}

static void
rig_down(struct rig *r)
{
    gen_jwt_free(&r->g);
    ferry_jwt_cache_free(r->w.jwt_cache);
    ferry_conf_free(r->conf);
}

static char *
two_tenants(void)
{
    char *y = malloc(1024);

    snprintf(y, 1024, "tenants:\n"
             "  - { id: acme, jwt: { issuer: 'https://idp.acme', audience: ferry, jwks: %s } }\n"
             "  - { id: beta, token: beta-token,"
             " jwt: { issuer: 'https://idp.beta', audience: ferry, jwks: %s, leeway_s: 0 } }\n"
             "  - { id: gamma, token: gamma-token }\n", acme_jwks, beta_jwks);
    return y;
}

static void
test_a_valid_token_gives_the_user_once_verified_then_cached(void)
{
    struct rig             r;
    char                  *y = two_tenants();
    char                  *tok = token(acme_key, "a1", "https://idp.acme", "ferry", 600);
    struct ferry_user     *u = NULL;
    const char            *why = NULL;
    struct stats_jwt_cell *cell = stats_jwt_cell(3);

    CU_ASSERT_EQUAL_FATAL(rig_up(&r, y, 3), FERRY_OK);
    CU_ASSERT_EQUAL(r.g.njwt, 2);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(ferry_conn_user_verify(&r.c, NULL, tok, strlen(tok), &u, &why),
                        FERRY_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(u);
        CU_ASSERT_STRING_EQUAL(ferry_user_name(u), "alice");
        CU_ASSERT_PTR_NOT_NULL(strstr(ferry_user_claims_json(u), "\"sub\":\"u1\""));
        ferry_user_unref(u);
        u = NULL;
    }
    /* One signature check for five uses on one worker; the rest from its cache. */
    CU_ASSERT_EQUAL(cell->verifications, 1);
    CU_ASSERT_EQUAL(cell->cache_hits, 4);
    /* The tenant named explicitly works the same; another tenant's keys do not. */
    CU_ASSERT_EQUAL(ferry_conn_user_verify(&r.c, "acme", tok, strlen(tok), &u, &why), FERRY_OK);
    ferry_user_unref(u);
    CU_ASSERT_EQUAL(ferry_conn_user_verify(&r.c, "beta", tok, strlen(tok), &u, &why),
                    FERRY_EDENIED);
    CU_ASSERT_PTR_NULL(u);
    CU_ASSERT_STRING_EQUAL(why, "unknown-key");
    rig_down(&r);
    free(tok);
    free(y);
}

static void
test_each_refusal_names_its_check_and_is_counted(void)
{
    struct rig             r;
    char                  *y = two_tenants();
    struct ferry_user     *u = NULL;
    const char            *why = NULL;
    struct stats_jwt_cell *cell = stats_jwt_cell(4);
    struct {
        char       *tok;
        const char *want;
    } cases[] = {
        { token(acme_key, "a1", "https://idp.acme", "ferry", -120), "expired" },
        { token(acme_key, "a1", "https://idp.acme", "other", 600), "wrong-audience" },
        { token(acme_key, "a1", "https://idp.evil", "ferry", 600), "wrong-issuer" },
        { token(beta_key, "a1", "https://idp.acme", "ferry", 600), "bad-signature" },
        { token(acme_key, "zz", "https://idp.acme", "ferry", 600), "unknown-key" },
        { strdup("not.a-jwt"), "malformed" },
    };

    CU_ASSERT_EQUAL_FATAL(rig_up(&r, y, 4), FERRY_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_EQUAL(ferry_conn_user_verify(&r.c, NULL, cases[i].tok, strlen(cases[i].tok),
                                               &u, &why), FERRY_EDENIED);
        CU_ASSERT_PTR_NULL(u);
        CU_ASSERT_PTR_NOT_NULL_FATAL(why);
        if (strcmp(why, cases[i].want) != 0)
            fprintf(stderr, "case %zu: want %s, got %s\n", i, cases[i].want, why);
        CU_ASSERT_STRING_EQUAL(why, cases[i].want);
        free(cases[i].tok);
    }
    CU_ASSERT_EQUAL(cell->refused[6], 1);      /* expired */
    CU_ASSERT_EQUAL(cell->refused[5], 1);      /* wrong-audience */
    CU_ASSERT_EQUAL(cell->refused[3], 1);      /* bad-signature */
    CU_ASSERT_EQUAL(cell->verifications, 4);   /* those that got to a signature */
    /* A tenant without jwt:, an unknown tenant, no tenant at all. */
    CU_ASSERT_EQUAL(ferry_conn_user_verify(&r.c, "gamma", "a.b.c", 5, &u, &why), FERRY_EDENIED);
    CU_ASSERT_STRING_EQUAL(why, "no-jwt-config");
    CU_ASSERT_EQUAL(ferry_conn_user_verify(&r.c, "nobody", "a.b.c", 5, &u, &why), FERRY_EDENIED);
    CU_ASSERT_STRING_EQUAL(why, "no-jwt-config");
    r.lc.tenant = NULL;
    CU_ASSERT_EQUAL(ferry_conn_user_verify(&r.c, NULL, "a.b.c", 5, &u, &why), FERRY_EDENIED);
    CU_ASSERT_STRING_EQUAL(why, "no-jwt-config");
    rig_down(&r);
    free(y);
}

static void
test_tenant_auth_by_jwt_picks_the_tenant_whose_keys_validate(void)
{
    struct rig                      r;
    char                           *y = two_tenants();
    char                           *a = token(acme_key, "a1", "https://idp.acme", "ferry", 600);
    char                           *b = token(beta_key, "b1", "https://idp.beta", "ferry", 600);
    char                           *bx = token(beta_key, "b1", "https://idp.beta", "ferry", -1);
    const struct ferry_conf_tenant *t = NULL;

    CU_ASSERT_EQUAL_FATAL(rig_up(&r, y, 5), FERRY_OK);
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, NULL, a, &t), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(t->id, "acme");
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, NULL, b, &t), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(t->id, "beta");
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, "beta", b, &t), FERRY_OK);
    /* Only tenant_id's keys when it is given; gamma has no jwt:. */
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, "acme", b, &t), FERRY_EDENIED);
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, "gamma", b, &t), FERRY_EDENIED);
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, NULL, bx, &t), FERRY_EDENIED);
    /* Only the tenants of the token's issuer are tried: a token of an issuer nobody has
     * costs one check (the first tenant's, to name the refusal), not one per tenant. */
    {
        char    *evil = token(acme_key, "a1", "https://idp.evil", "ferry", 600);
        uint64_t v0 = stats_jwt_cell(5)->verifications;

        CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, NULL, evil, &t), FERRY_EDENIED);
        CU_ASSERT_EQUAL(stats_jwt_cell(5)->verifications - v0, 1);
        CU_ASSERT_EQUAL(stats_jwt_cell(5)->refused[4], 1);      /* wrong-issuer */
        free(evil);
        v0 = stats_jwt_cell(5)->verifications;
        CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, NULL, b, &t), FERRY_OK);
        CU_ASSERT_EQUAL(stats_jwt_cell(5)->verifications - v0, 0);  /* beta's, cached */
    }
    /* Not shaped like a JWT: never parsed (the static token path answered already). */
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, NULL, "beta-token", &t), FERRY_EDENIED);
    CU_ASSERT_EQUAL(stats_jwt_cell(5)->refused[6], 1);
    CU_ASSERT(gen_jwt_looks_like("a.b.c", 5));
    CU_ASSERT(!gen_jwt_looks_like("a..c", 4));
    CU_ASSERT(!gen_jwt_looks_like("a.b.c.d", 7));
    CU_ASSERT(gen_jwt_looks_like("a.b.", 4));      /* alg none: tried, then refused */
    CU_ASSERT(!gen_jwt_looks_like(".b.c", 4));
    rig_down(&r);
    free(a);
    free(b);
    free(bx);
    free(y);
}

/* A jwks_url tenant before its first answer: its tokens are unknown-key, it does not
 * turn another tenant's better reason into unknown-key, and a next generation with the
 * same URL starts from the keys the last one fetched. */
static void
test_a_url_tenant_without_keys_yet_and_keys_kept_across_generations(void)
{
    struct rig                      r;
    struct gen                      next = { 0 };
    struct ferry_jwks              *fetched = NULL;
    struct ferry_errlist            errs = { 0 };
    char                            y[1024];
    char                           *b = token(beta_key, "b1", "https://idp.beta", "ferry", 600);
    char                           *a = token(acme_key, "a1", "https://idp.acme", "ferry", -60);
    struct ferry_user              *u = NULL;
    const struct ferry_conf_tenant *t = NULL;
    const char                     *why = NULL;

    snprintf(y, sizeof(y), "tenants:\n"
             "  - { id: acme, jwt: { issuer: 'https://idp.acme', audience: ferry, jwks: %s } }\n"
             "  - { id: beta, jwt: { issuer: 'https://idp.beta', audience: ferry,"
             " jwks_url: 'http://127.0.0.1:9/keys' } }\n", acme_jwks);
    CU_ASSERT_EQUAL_FATAL(rig_up(&r, y, 7), FERRY_OK);
    r.lc.tenant = "beta";
    CU_ASSERT_EQUAL(ferry_conn_user_verify(&r.c, NULL, b, strlen(b), &u, &why), FERRY_EDENIED);
    CU_ASSERT_STRING_EQUAL(why, "unknown-key");
    /* acme's expired token stays "expired" although beta could not look at it. */
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, NULL, a, &t), FERRY_EDENIED);
    CU_ASSERT_EQUAL(stats_jwt_cell(7)->refused[6], 1);
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, NULL, "x.y.z", &t), FERRY_EDENIED);
    CU_ASSERT_EQUAL(stats_jwt_cell(7)->refused[0], 1);      /* malformed */
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, NULL, b, &t), FERRY_EDENIED);
    CU_ASSERT_EQUAL(stats_jwt_cell(7)->refused[2], 2);      /* unknown-key, both */

    /* As if beta's first fetch had landed: the next generation starts with those keys. */
    CU_ASSERT_EQUAL_FATAL(ferry_jwks_load_file(beta_jwks, &fetched, NULL), FERRY_OK);
    gen_jwt_find(&r.g, "beta")->keys = fetched;
    next.conf = r.conf;
    CU_ASSERT_EQUAL_FATAL(gen_jwt_load(&next, &r.g, &errs), FERRY_OK);
    r.wg.g = &next;
    CU_ASSERT_EQUAL(conn_auth_tenant_jwt(&r.c, NULL, b, &t), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(t->id, "beta");
    CU_ASSERT_EQUAL(ferry_conn_user_verify(&r.c, NULL, b, strlen(b), &u, &why), FERRY_OK);
    ferry_user_unref(u);
    gen_jwt_free(&next);
    rig_down(&r);
    free(a);
    free(b);
}

static void
test_a_jwks_file_that_does_not_parse_is_a_load_error_naming_tenant_and_file(void)
{
    struct rig r;
    char       y[1024], want[512];

    snprintf(y, sizeof(y), "tenants:\n"
             "  - { id: acme, jwt: { issuer: i, audience: a, jwks: %s } }\n"
             "  - { id: beta, jwt: { issuer: i, audience: a, jwks: %s/missing.json } }\n",
             bad_jwks, dir);
    CU_ASSERT_EQUAL_FATAL(rig_up(&r, y, 6), FERRY_EINVAL);
    CU_ASSERT_EQUAL(r.errs.count, 2);
    snprintf(want, sizeof(want), "tenants[0] (acme): jwt.jwks: %s:2:9: JWKS is not JSON", bad_jwks);
    CU_ASSERT_EQUAL(r.errs.items[0].line, 2);
    CU_ASSERT_EQUAL(r.errs.items[0].col, 54);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.errs.items[0].msg, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.errs.items[1].msg, "tenants[1] (beta): jwt.jwks: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.errs.items[1].msg, "missing.json"));
    rig_down(&r);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "a valid token gives the user, verified once then cached",
          test_a_valid_token_gives_the_user_once_verified_then_cached },
        { "each refusal names its check and is counted",
          test_each_refusal_names_its_check_and_is_counted },
        { "tenant auth by JWT picks the tenant whose keys validate",
          test_tenant_auth_by_jwt_picks_the_tenant_whose_keys_validate },
        { "a URL tenant without keys yet; keys kept across generations",
          test_a_url_tenant_without_keys_yet_and_keys_kept_across_generations },
        { "a jwks file that does not parse is a load error naming tenant and file",
          test_a_jwks_file_that_does_not_parse_is_a_load_error_naming_tenant_and_file },
        { NULL, NULL }
    };
    FILE *fp;
    int   rc;

    if (mkdtemp(dir) == NULL)
        return 2;
    acme_key = EVP_EC_gen("P-256");
    beta_key = EVP_EC_gen("P-256");
    snprintf(acme_jwks, sizeof(acme_jwks), "%s/acme.json", dir);
    snprintf(beta_jwks, sizeof(beta_jwks), "%s/beta.json", dir);
    snprintf(bad_jwks, sizeof(bad_jwks), "%s/bad.json", dir);
    write_jwks(acme_jwks, acme_key, "a1");
    write_jwks(beta_jwks, beta_key, "b1");
    if ((fp = fopen(bad_jwks, "w")) != NULL) {
        fputs("{\"keys\": [\n  garbage ]}\n", fp);
        fclose(fp);
    }
    rc = cu_run("conn_user", tests);
    unlink(acme_jwks);
    unlink(beta_jwks);
    unlink(bad_jwks);
    rmdir(dir);
    EVP_PKEY_free(acme_key);
    EVP_PKEY_free(beta_key);
    return rc;
}
