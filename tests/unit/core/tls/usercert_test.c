/*
 * usercert_test.c: the connector's user certificates (core/tls/usercert.c, subject.c):
 * a certificate issued for a user's claims verifies against the CA (signature and a
 * chain check for client authentication), carries the subject the pattern makes, the
 * promised validity, serial and extensions, and travels as one base64 line; the
 * per-worker cache reuses it until a minute before expiry, keeps its LRU bound and
 * counts; ${name} falls back through SAP's claims; DN text is RFC 4514-escaped and no
 * claim can add an RDN; bad patterns, bad claims and bad CAs are refused with a reason
 * (and a column for patterns). The CAs are made here with OpenSSL's C API into a fresh
 * temporary directory. Prints the median cost of one issue (EC and RSA CAs).
 */
#include "tls/usercert.h"        /* first: the header compiles alone */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "cu.h"

static char      dir[] = "/tmp/ferry-usercert-XXXXXX";
static EVP_PKEY *ec_ca_key;
static X509     *ec_ca;

static const char *
path_of(const char *name)
{
    static char buf[8][1024];
    static int  i;

    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

/* Plain checks, no CUnit assertions: main() calls these before any test runs. */
static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX      ctx;
    X509_EXTENSION *ext;
    int             ok;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    if ((ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value)) == NULL)
        return -1;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* A self-signed certificate for key with the given basicConstraints and keyUsage,
 * written to name; NULL if that fails. */
static X509 *
make_ca_for(EVP_PKEY *key, const char *name, const char *bc, const char *ku, long lifetime_s)
{
    X509 *x = X509_new();
    FILE *fp;

    if (x == NULL || key == NULL)
        goto bad;
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), lifetime_s);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"ferry test user CA", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    if (add_ext(x, x, NID_basic_constraints, bc) != 0 ||
        add_ext(x, x, NID_key_usage, ku) != 0 ||
        add_ext(x, x, NID_subject_key_identifier, "hash") != 0 ||
        X509_sign(x, key, EVP_sha256()) <= 0 || (fp = fopen(path_of(name), "w")) == NULL)
        goto bad;
    PEM_write_X509(fp, x);
    fclose(fp);
    return x;
bad:
    X509_free(x);
    return NULL;
}

static X509 *
make_ca(EVP_PKEY *key, const char *name, const char *bc, const char *ku)
{
    return make_ca_for(key, name, bc, ku, 86400L * 365);
}

static int
write_key(EVP_PKEY *key, const char *name)
{
    FILE *fp = fopen(path_of(name), "w");
    int   ok;

    if (fp == NULL)
        return -1;
    ok = PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    return ok == 1 ? 0 : -1;
}

static struct ferry_tls_issuer *
issuer(const char *pattern, unsigned validity_minutes)
{
    struct ferry_tls_issuer *iss = NULL;
    struct ferry_err         err = {0};

    if (ferry_tls_issuer_new(path_of("ec-ca.crt"), path_of("ec-ca.key"), pattern,
                             validity_minutes, &iss, &err) != FERRY_OK)
        fprintf(stderr, "issuer: %s\n", err.msg);
    return iss;
}

static json_t *
claims(const char *text)
{
    json_t *j = json_loads(text, JSON_ALLOW_NUL, NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

/* Seconds from a to b. */
static long
seconds_between(const ASN1_TIME *a, const ASN1_TIME *b)
{
    int days = 0, secs = 0;

    CU_ASSERT_FATAL(ASN1_TIME_diff(&days, &secs, a, b) == 1);
    return (long)days * 86400 + secs;
}

static const char *
rfc2253(const X509_NAME *name, char *buf, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int  n;

    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    n = BIO_read(bio, buf, (int)size - 1);
    buf[n > 0 ? n : 0] = '\0';
    BIO_free(bio);
    return buf;
}

static void
test_issued_certificate_verifies_and_has_subject_validity_and_extensions(void)
{
    struct ferry_tls_issuer   *iss = issuer("CN=${name},O=Acme", 10);
    struct ferry_tls_usercert *uc = NULL;
    struct ferry_err           err = {0};
    json_t                    *alice = claims("{\"user_name\":\"alice\",\"email\":\"a@x\"}");
    time_t                     now = time(NULL);
    X509                      *x;
    X509_STORE                *store = X509_STORE_new();
    X509_STORE_CTX            *sctx = X509_STORE_CTX_new();
    ASN1_TIME                 *t_now = ASN1_TIME_set(NULL, now);
    BIGNUM                    *serial;
    BASIC_CONSTRAINTS         *bc;
    char                       text[256];
    int                        crit = -1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(iss);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_issuer_issue(iss, alice, now, &uc, &err), FERRY_OK);
    x = ferry_tls_usercert_x509(uc);

    CU_ASSERT_EQUAL(X509_verify(x, ec_ca_key), 1);
    X509_STORE_add_cert(store, ec_ca);
    X509_STORE_CTX_init(sctx, store, x, NULL);
    X509_STORE_CTX_set_purpose(sctx, X509_PURPOSE_SSL_CLIENT);
    X509_STORE_CTX_set_time(sctx, 0, now);
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(sctx), X509_V_FLAG_X509_STRICT);
    CU_ASSERT_EQUAL(X509_verify_cert(sctx), 1);
    if (X509_STORE_CTX_get_error(sctx) != X509_V_OK)
        fprintf(stderr, "chain: %s\n",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));

    CU_ASSERT_EQUAL(X509_get_version(x), X509_VERSION_3);
    CU_ASSERT_EQUAL(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, text,
                                              sizeof(text)), 5);
    CU_ASSERT_STRING_EQUAL(text, "alice");
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, text,
                              sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "Acme");
    CU_ASSERT_EQUAL(X509_NAME_entry_count(X509_get_subject_name(x)), 2);
    CU_ASSERT_STRING_EQUAL(ferry_tls_usercert_subject(uc), "CN=alice,O=Acme");
    CU_ASSERT_STRING_EQUAL(rfc2253(X509_get_subject_name(x), text, sizeof(text)),
                           "CN=alice,O=Acme");
    CU_ASSERT_EQUAL(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ec_ca)), 0);

    CU_ASSERT(seconds_between(X509_get0_notBefore(x), t_now) >= 59);
    CU_ASSERT_EQUAL(seconds_between(X509_get0_notBefore(x), X509_get0_notAfter(x)),
                    10 * 60 + 60);
    CU_ASSERT_EQUAL(ferry_tls_usercert_not_after(uc), now + 600);

    serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    CU_ASSERT_FALSE(BN_is_negative(serial));
    CU_ASSERT_FALSE(BN_is_zero(serial));
    CU_ASSERT(BN_num_bits(serial) <= 127);
    BN_free(serial);

    CU_ASSERT((X509_get_extension_flags(x) & EXFLAG_BCONS) != 0);
    CU_ASSERT((X509_get_extension_flags(x) & EXFLAG_CA) == 0);
    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    CU_ASSERT_PTR_NOT_NULL(bc);
    CU_ASSERT_EQUAL(crit, 1);
    if (bc != NULL) {
        CU_ASSERT_EQUAL(bc->ca, 0);
        BASIC_CONSTRAINTS_free(bc);
    }
    CU_ASSERT_EQUAL(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    CU_ASSERT_EQUAL(X509_EXTENSION_get_critical(
                        X509_get_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1))), 1);
    CU_ASSERT_EQUAL(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    CU_ASSERT_PTR_NOT_NULL(X509_get0_subject_key_id(x));
    CU_ASSERT_EQUAL(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
                                          X509_get0_subject_key_id(ec_ca)), 0);
    CU_ASSERT_EQUAL(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    CU_ASSERT_EQUAL(EVP_PKEY_eq(X509_get0_pubkey(x), ferry_tls_issuer_key(iss)), 1);
    CU_ASSERT_TRUE(EVP_PKEY_is_a(ferry_tls_issuer_key(iss), "EC"));

    ASN1_TIME_free(t_now);
    X509_STORE_CTX_free(sctx);
    X509_STORE_free(store);
    ferry_tls_usercert_unref(uc);
    json_decref(alice);
    ferry_tls_issuer_free(iss);
}

static void
test_base64_is_one_line_of_the_der(void)
{
    struct ferry_tls_issuer   *iss = issuer("CN=${name}", 5);
    struct ferry_tls_usercert *uc = NULL;
    json_t                    *alice = claims("{\"user_name\":\"alice\"}");
    const uint8_t             *der, *p;
    const char                *b64;
    size_t                     der_len, b64_len;
    unsigned char             *back;
    int                        n;
    X509                      *again;

    CU_ASSERT_PTR_NOT_NULL_FATAL(iss);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_issuer_issue(iss, alice, time(NULL), &uc, NULL), FERRY_OK);
    der = ferry_tls_usercert_der(uc, &der_len);
    b64 = ferry_tls_usercert_base64(uc);
    b64_len = strlen(b64);
    CU_ASSERT(der_len > 200);
    CU_ASSERT_PTR_NULL(strchr(b64, '\n'));
    CU_ASSERT_PTR_NULL(strchr(b64, '\r'));
    CU_ASSERT_EQUAL(b64_len, 4 * ((der_len + 2) / 3));
    back = malloc(b64_len);
    n = EVP_DecodeBlock(back, (const unsigned char *)b64, (int)b64_len);
    /* DecodeBlock counts the padding's zero bytes too. */
    CU_ASSERT_EQUAL((size_t)n - (b64[b64_len - 1] == '=') - (b64[b64_len - 2] == '='), der_len);
    CU_ASSERT_EQUAL(memcmp(back, der, der_len), 0);
    p = der;
    CU_ASSERT_PTR_NOT_NULL_FATAL(again = d2i_X509(NULL, &p, (long)der_len));
    CU_ASSERT_EQUAL(X509_cmp(again, ferry_tls_usercert_x509(uc)), 0);
    X509_free(again);
    free(back);
    ferry_tls_usercert_unref(uc);
    json_decref(alice);
    ferry_tls_issuer_free(iss);
}

static void
test_serials_differ_between_users(void)
{
    struct ferry_tls_issuer   *iss = issuer("CN=${name}", 5);
    struct ferry_tls_usercert *a = NULL, *b = NULL;
    json_t                    *alice = claims("{\"user_name\":\"alice\"}");
    json_t                    *bob = claims("{\"user_name\":\"bob\"}");

    CU_ASSERT_PTR_NOT_NULL_FATAL(iss);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_issuer_issue(iss, alice, time(NULL), &a, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_issuer_issue(iss, bob, time(NULL), &b, NULL), FERRY_OK);
    CU_ASSERT_NOT_EQUAL(ASN1_INTEGER_cmp(X509_get0_serialNumber(ferry_tls_usercert_x509(a)),
                                         X509_get0_serialNumber(ferry_tls_usercert_x509(b))),
                        0);
    CU_ASSERT_STRING_EQUAL(ferry_tls_usercert_subject(b), "CN=bob");
    ferry_tls_usercert_unref(a);
    ferry_tls_usercert_unref(b);
    json_decref(alice);
    json_decref(bob);
    ferry_tls_issuer_free(iss);
}

static void
test_cache_reuses_until_a_minute_before_expiry(void)
{
    struct ferry_tls_issuer          *iss = issuer("CN=${name}", 10);
    struct ferry_tls_usercache       *c = NULL;
    struct ferry_tls_usercert        *first = NULL, *second = NULL, *late = NULL,
                                     *renewed = NULL, *other = NULL;
    struct ferry_tls_usercache_counts n;
    json_t                           *alice = claims("{\"user_name\":\"alice\",\"x\":1}");
    json_t                           *alice2 = claims("{\"email\":\"q@x\","
                                                      "\"user_name\":\"alice\"}");
    json_t                           *bob = claims("{\"user_name\":\"bob\"}");
    time_t                            t0 = time(NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(iss);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_usercache_new(iss, FERRY_TLS_USERCACHE_DEFAULT, &c),
                          FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tls_usercache_get(c, alice, t0, &first, NULL), FERRY_OK);
    /* Other claims, the same subject: the same certificate. */
    CU_ASSERT_EQUAL(ferry_tls_usercache_get(c, alice2, t0 + 5, &second, NULL), FERRY_OK);
    CU_ASSERT_PTR_EQUAL(first, second);
    ferry_tls_usercache_counts(c, &n);
    CU_ASSERT_EQUAL(n.issued, 1);
    CU_ASSERT_EQUAL(n.reused, 1);
    /* 61 s left: still reused; 60 s left: a new one. */
    CU_ASSERT_EQUAL(ferry_tls_usercache_get(c, alice, t0 + 539, &late, NULL), FERRY_OK);
    CU_ASSERT_PTR_EQUAL(late, first);
    CU_ASSERT_EQUAL(ferry_tls_usercache_get(c, alice, t0 + 540, &renewed, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_EQUAL(renewed, first);
    CU_ASSERT_EQUAL(ferry_tls_usercert_not_after(renewed), t0 + 540 + 600);
    CU_ASSERT_STRING_EQUAL(ferry_tls_usercert_subject(renewed), "CN=alice");
    CU_ASSERT_EQUAL(ferry_tls_usercache_get(c, bob, t0 + 540, &other, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_EQUAL(other, renewed);
    CU_ASSERT_STRING_EQUAL(ferry_tls_usercert_subject(other), "CN=bob");
    ferry_tls_usercache_counts(c, &n);
    CU_ASSERT_EQUAL(n.issued, 3);
    CU_ASSERT_EQUAL(n.reused, 2);
    CU_ASSERT_EQUAL(n.entries, 2);
    /* The replaced certificate outlives its cache entry while its holder keeps it. */
    CU_ASSERT_STRING_EQUAL(ferry_tls_usercert_subject(first), "CN=alice");
    ferry_tls_usercert_unref(first);
    ferry_tls_usercert_unref(second);
    ferry_tls_usercert_unref(late);
    ferry_tls_usercache_free(c);
    CU_ASSERT_STRING_EQUAL(ferry_tls_usercert_subject(renewed), "CN=alice");
    ferry_tls_usercert_unref(renewed);
    ferry_tls_usercert_unref(other);
    json_decref(alice);
    json_decref(alice2);
    json_decref(bob);
    ferry_tls_issuer_free(iss);
}

static void
test_find_and_put_sign_off_the_cache(void)
{
    struct ferry_tls_issuer          *iss = issuer("CN=${name}", 10);
    struct ferry_tls_usercache       *c = NULL;
    struct ferry_tls_usercert        *uc = NULL, *hit = NULL, *again = NULL, *old = NULL;
    struct ferry_tls_usercache_counts n;
    struct ferry_err                  err = {0};
    json_t                           *alice = claims("{\"user_name\":\"alice\"}");
    json_t                           *nobody = claims("{\"aud\":\"x\"}");
    char                              dn[FERRY_TLS_DN_MAX_BYTES];
    time_t                            t0 = time(NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(iss);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_usercache_new(iss, 2, &c), FERRY_OK);
    /* A miss names the subject and signs nothing. */
    CU_ASSERT_EQUAL(ferry_tls_usercache_find(c, alice, t0, dn, sizeof(dn), &hit, &err),
                    FERRY_ENOTFOUND);
    CU_ASSERT_STRING_EQUAL(dn, "CN=alice");
    ferry_tls_usercache_counts(c, &n);
    CU_ASSERT_EQUAL(n.issued + n.reused + n.entries, 0);
    /* Claims without a name: refused, as the signer would. */
    CU_ASSERT_EQUAL(ferry_tls_usercache_find(c, nobody, t0, dn, sizeof(dn), &hit, &err),
                    FERRY_EDENIED);
    /* Signed elsewhere (the signer thread), put back: found, the same certificate. */
    CU_ASSERT_EQUAL_FATAL(ferry_tls_issuer_issue(iss, alice, t0, &uc, &err), FERRY_OK);
    ferry_tls_usercache_put(c, uc);
    CU_ASSERT_EQUAL(ferry_tls_usercache_find(c, alice, t0 + 1, dn, sizeof(dn), &hit, &err),
                    FERRY_OK);
    CU_ASSERT_PTR_EQUAL(hit, uc);
    ferry_tls_usercache_counts(c, &n);
    CU_ASSERT_EQUAL(n.issued, 1);
    CU_ASSERT_EQUAL(n.reused, 1);
    CU_ASSERT_EQUAL(n.entries, 1);
    /* A second put for the subject replaces the first; its holders keep theirs. */
    old = uc;
    CU_ASSERT_EQUAL_FATAL(ferry_tls_issuer_issue(iss, alice, t0 + 2, &again, &err), FERRY_OK);
    ferry_tls_usercache_put(c, again);
    ferry_tls_usercache_counts(c, &n);
    CU_ASSERT_EQUAL(n.entries, 1);
    ferry_tls_usercert_unref(hit);
    hit = NULL;
    CU_ASSERT_EQUAL(ferry_tls_usercache_find(c, alice, t0 + 3, dn, sizeof(dn), &hit, &err),
                    FERRY_OK);
    CU_ASSERT_PTR_EQUAL(hit, again);
    CU_ASSERT_STRING_EQUAL(ferry_tls_usercert_subject(old), "CN=alice");
    ferry_tls_usercert_unref(hit);
    /* A minute before its end it is no longer handed out, and leaves. */
    CU_ASSERT_EQUAL(ferry_tls_usercache_find(c, alice, t0 + 2 + 540, dn, sizeof(dn), &hit,
                                             &err), FERRY_ENOTFOUND);
    ferry_tls_usercache_counts(c, &n);
    CU_ASSERT_EQUAL(n.entries, 0);
    ferry_tls_usercert_unref(old);
    ferry_tls_usercert_unref(again);
    ferry_tls_usercache_free(c);
    json_decref(alice);
    json_decref(nobody);
    ferry_tls_issuer_free(iss);
}

static struct ferry_tls_usercert *
get_user(struct ferry_tls_usercache *c, const char *user, time_t now)
{
    struct ferry_tls_usercert *uc = NULL;
    json_t                    *j = json_pack("{s:s}", "user_name", user);

    CU_ASSERT_EQUAL(ferry_tls_usercache_get(c, j, now, &uc, NULL), FERRY_OK);
    json_decref(j);
    return uc;
}

static void
test_cache_keeps_its_bound_and_evicts_the_least_recently_used(void)
{
    struct ferry_tls_issuer          *iss = issuer("CN=${name}", 10);
    struct ferry_tls_usercache       *c = NULL;
    struct ferry_tls_usercache_counts n;
    time_t                            now = time(NULL);
    char                              user[32];

    CU_ASSERT_PTR_NOT_NULL_FATAL(iss);
    CU_ASSERT_EQUAL(ferry_tls_usercache_new(iss, 0, &c), FERRY_EINVAL);
    CU_ASSERT_EQUAL(ferry_tls_usercache_new(iss, FERRY_TLS_USERCACHE_MAX + 1, &c), FERRY_EINVAL);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_usercache_new(iss, 3, &c), FERRY_OK);
    ferry_tls_usercert_unref(get_user(c, "u1", now));
    ferry_tls_usercert_unref(get_user(c, "u2", now));
    ferry_tls_usercert_unref(get_user(c, "u3", now));
    ferry_tls_usercert_unref(get_user(c, "u1", now));   /* u1 is the most recent now */
    ferry_tls_usercert_unref(get_user(c, "u4", now));   /* u2 leaves */
    ferry_tls_usercache_counts(c, &n);
    CU_ASSERT_EQUAL(n.entries, 3);
    CU_ASSERT_EQUAL(n.issued, 4);
    CU_ASSERT_EQUAL(n.reused, 1);
    ferry_tls_usercert_unref(get_user(c, "u1", now));
    ferry_tls_usercert_unref(get_user(c, "u3", now));
    ferry_tls_usercache_counts(c, &n);
    CU_ASSERT_EQUAL(n.issued, 4);
    CU_ASSERT_EQUAL(n.reused, 3);
    ferry_tls_usercert_unref(get_user(c, "u2", now));
    ferry_tls_usercache_counts(c, &n);
    CU_ASSERT_EQUAL(n.issued, 5);
    CU_ASSERT_EQUAL(n.entries, 3);
    /* Many more users than entries: the bound holds. */
    for (int i = 0; i < 50; i++) {
        snprintf(user, sizeof(user), "many%d", i);
        ferry_tls_usercert_unref(get_user(c, user, now));
    }
    ferry_tls_usercache_counts(c, &n);
    CU_ASSERT_EQUAL(n.entries, 3);
    CU_ASSERT_EQUAL(n.issued, 55);
    ferry_tls_usercache_free(c);
    ferry_tls_issuer_free(iss);
}

/* The DN text pattern makes of claims_text, or the refusal's message. */
static int
build(const char *pattern, const char *claims_text, char *dn, size_t dn_size,
      struct ferry_err *err)
{
    struct ferry_tls_subject *s = NULL;
    X509_NAME                *name = NULL;
    json_t                   *j = claims(claims_text);
    int                       rc;

    CU_ASSERT_EQUAL_FATAL(ferry_tls_subject_parse(pattern, &s, err), FERRY_OK);
    rc = ferry_tls_subject_build(s, j, &name, dn, dn_size, err);
    if (rc == FERRY_OK && strspn(dn, " !\"#$%&'()*+,-./0123456789:;<=>?@"
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                                     "abcdefghijklmnopqrstuvwxyz{|}~") == strlen(dn)) {
        char text[1024];

        /* What OpenSSL renders from the X509_NAME is the text we audit (for ASCII:
         * OpenSSL also escapes UTF-8 bytes, RFC 4514 does not ask for it). */
        CU_ASSERT_STRING_EQUAL(rfc2253(name, text, sizeof(text)), dn);
    }
    X509_NAME_free(name);
    json_decref(j);
    ferry_tls_subject_free(s);
    return rc;
}

static void
test_name_falls_back_through_sap_claims(void)
{
    static const struct { const char *claims, *dn; } cases[] = {
        { "{\"user_name\":\"un\",\"email\":\"e@x\",\"mail\":\"m@x\",\"user_uuid\":\"uu\","
          "\"sub\":\"s\"}", "CN=un" },
        { "{\"user_name\":\"\",\"email\":\"e@x\",\"mail\":\"m@x\",\"sub\":\"s\"}", "CN=e@x" },
        { "{\"mail\":\"m@x\",\"user_uuid\":\"uu\",\"sub\":\"s\"}", "CN=m@x" },
        { "{\"user_uuid\":\"uu\",\"sub\":\"s\",\"email\":null}", "CN=uu" },
        { "{\"sub\":\"s\"}", "CN=s" },
        { "{\"sub\":12345}", "CN=12345" },
    };
    struct ferry_err err = {0};
    char             dn[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_EQUAL(build("CN=${name}", cases[i].claims, dn, sizeof(dn), &err), FERRY_OK);
        CU_ASSERT_STRING_EQUAL(dn, cases[i].dn);
    }
    CU_ASSERT_EQUAL(build("CN=${name}", "{\"client_id\":\"c\"}", dn, sizeof(dn), &err),
                    FERRY_EDENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "${name}"));
}

static void
test_pattern_fields_claims_and_literals(void)
{
    struct ferry_err err = {0};
    char             dn[512];

    CU_ASSERT_EQUAL(build("CN=${email}, OU=Sales,O=Acme ${tenant},C=DE, EMAIL=${email}, "
                          "L=x\\,y,ST=${region}",
                          "{\"email\":\"a@x\",\"tenant\":\"t1\",\"region\":\"BW\"}", dn,
                          sizeof(dn), &err), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(dn, "CN=a@x,OU=Sales,O=Acme t1,C=DE,emailAddress=a@x,L=x\\,y,ST=BW");
    CU_ASSERT_EQUAL(build("cn=${id}-${n}", "{\"id\":\"u\",\"n\":42}", dn, sizeof(dn), &err),
                    FERRY_OK);
    CU_ASSERT_STRING_EQUAL(dn, "CN=u-42");
    CU_ASSERT_EQUAL(build("CN=${missing}", "{\"sub\":\"s\"}", dn, sizeof(dn), &err),
                    FERRY_EDENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'missing'"));
    CU_ASSERT_EQUAL(build("CN=${obj}", "{\"obj\":{\"a\":1}}", dn, sizeof(dn), &err),
                    FERRY_EDENIED);
}

static void
test_dn_escape_follows_rfc4514(void)
{
    static const struct { const char *in, *out; } cases[] = {
        { "Smith, John", "Smith\\, John" },
        { "#hash", "\\#hash" },
        { "a#b", "a#b" },
        { " lead", "\\ lead" },
        { "trail ", "trail\\ " },
        { "a+b", "a\\+b" },
        { "say \"hi\"", "say \\\"hi\\\"" },
        { "back\\slash", "back\\\\slash" },
        { "<tag>", "\\<tag\\>" },
        { "a;b", "a\\;b" },
        { "a=b", "a=b" },
        { "tab\there", "tab\\09here" },
        { "Jürgen", "Jürgen" },
        { "", "" },
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_EQUAL(ferry_tls_dn_escape(cases[i].in, strlen(cases[i].in), out, sizeof(out)),
                        (long)strlen(cases[i].out));
        CU_ASSERT_STRING_EQUAL(out, cases[i].out);
    }
    CU_ASSERT_EQUAL(ferry_tls_dn_escape("a\0b", 3, out, sizeof(out)), 5);
    CU_ASSERT_STRING_EQUAL(out, "a\\00b");
    CU_ASSERT_EQUAL(ferry_tls_dn_escape("a,b", 3, out, 4), FERRY_ELIMIT);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(ferry_tls_dn_escape("a,b", 3, out, 5), 4);
}

static void
test_claims_cannot_inject_rdns(void)
{
    struct ferry_tls_subject *s = NULL;
    X509_NAME                *name = NULL;
    json_t                   *j = claims("{\"user_name\":\"Smith, John,O=Evil+OU=x\"}");
    char                      dn[256], text[256];

    CU_ASSERT_EQUAL_FATAL(ferry_tls_subject_parse("CN=${name}", &s, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_subject_build(s, j, &name, dn, sizeof(dn), NULL), FERRY_OK);
    CU_ASSERT_EQUAL(X509_NAME_entry_count(name), 1);
    CU_ASSERT_STRING_EQUAL(dn, "CN=Smith\\, John\\,O=Evil\\+OU=x");
    CU_ASSERT_STRING_EQUAL(rfc2253(name, text, sizeof(text)), dn);
    CU_ASSERT_EQUAL(X509_NAME_get_text_by_NID(name, NID_commonName, text, sizeof(text)), 23);
    CU_ASSERT_STRING_EQUAL(text, "Smith, John,O=Evil+OU=x");
    X509_NAME_free(name);
    json_decref(j);
    ferry_tls_subject_free(s);
}

static void
test_claims_over_bounds_or_empty_are_refused(void)
{
    struct ferry_err err = {0};
    char             dn[512], claim[512];

    memset(claim, 'a', 64);
    snprintf(&claim[64], sizeof(claim) - 64, "\"}");
    {
        char text[600];

        snprintf(text, sizeof(text), "{\"user_name\":\"%s", claim);
        CU_ASSERT_EQUAL(build("CN=${name}", text, dn, sizeof(dn), &err), FERRY_OK);
        memset(claim, 'a', 65);
        snprintf(&claim[65], sizeof(claim) - 65, "\"}");
        snprintf(text, sizeof(text), "{\"user_name\":\"%s", claim);
        CU_ASSERT_EQUAL(build("CN=${name}", text, dn, sizeof(dn), &err), FERRY_EDENIED);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "CN: 65 characters"));
        CU_ASSERT_PTR_NULL(strstr(err.msg, "aaaa"));
    }
    /* Characters, not bytes: 64 two-byte letters fit. */
    {
        char text[600] = "{\"user_name\":\"";

        for (int i = 0; i < 64; i++)
            strcat(text, "\xc3\xbc");
        strcat(text, "\"}");
        CU_ASSERT_EQUAL(build("CN=${name}", text, dn, sizeof(dn), &err), FERRY_OK);
    }
    CU_ASSERT_EQUAL(build("CN=x,C=${c}", "{\"c\":\"DE\"}", dn, sizeof(dn), &err), FERRY_OK);
    CU_ASSERT_EQUAL(build("CN=x,C=${c}", "{\"c\":\"DEU\"}", dn, sizeof(dn), &err),
                    FERRY_EDENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "C: 3 characters, must be exactly 2"));
    CU_ASSERT_EQUAL(build("CN=x,C=${c}", "{\"c\":\"D\"}", dn, sizeof(dn), &err),
                    FERRY_EDENIED);
    CU_ASSERT_EQUAL(build("CN=${name}", "{}", dn, sizeof(dn), &err), FERRY_EDENIED);
    CU_ASSERT_EQUAL(build("CN=${name}", "{\"user_name\":\"\"}", dn, sizeof(dn), &err),
                    FERRY_EDENIED);
    CU_ASSERT_EQUAL(build("CN=${x},O=Acme", "{\"x\":\"\"}", dn, sizeof(dn), &err),
                    FERRY_EDENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "CN: an empty value"));
    /* A claim with a NUL inside is not taken. */
    CU_ASSERT_EQUAL(build("CN=${x}", "{\"x\":\"a\\u0000b\"}", dn, sizeof(dn), &err),
                    FERRY_EDENIED);
    /* A DN text that does not fit is refused, not cut. */
    CU_ASSERT_EQUAL(build("CN=${x}", "{\"x\":\"abcdefghij\"}", dn, 8, &err), FERRY_EDENIED);
}

static void
test_bad_patterns_are_refused_with_the_column(void)
{
    static const struct { const char *pattern; int col; const char *says; } cases[] = {
        { "", 1, "empty" },
        { "   ", 3, "empty" },
        { "XX=a", 1, "unknown field 'XX'" },
        { "CN=a,XX=${name}", 6, "unknown field 'XX'" },
        { "CN=${name", 4, "unclosed '${'" },
        { "CN=${name,O=x", 4, "unclosed '${'" },
        { "CN=${}", 4, "empty claim name" },
        { "CN=${a b}", 7, "cannot be part of a claim name" },
        { "CN=a,,O=b", 6, "two ','" },
        { ",CN=a", 1, "before the first field" },
        { "CN=a,", 5, "no field after it" },
        { "CN=", 4, "no value" },
        { "CN", 3, "expected '='" },
        { "=x", 1, "expected a field name" },
        { "CN=a\\", 5, "at the end" },
    };
    struct ferry_tls_subject *s = NULL;
    struct ferry_err          err = {0};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err.col = 0;
        CU_ASSERT_EQUAL(ferry_tls_subject_parse(cases[i].pattern, &s, &err), FERRY_EINVAL);
        if (err.col != cases[i].col || strstr(err.msg, cases[i].says) == NULL)
            fprintf(stderr, "pattern '%s': col %d, '%s'\n", cases[i].pattern, err.col, err.msg);
        CU_ASSERT_EQUAL(err.col, cases[i].col);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].says));
    }
    {
        char long_pattern[FERRY_TLS_SUBJECT_MAX_BYTES + 8];

        memset(long_pattern, 'a', sizeof(long_pattern) - 1);
        memcpy(long_pattern, "CN=", 3);
        long_pattern[sizeof(long_pattern) - 1] = '\0';
        CU_ASSERT_EQUAL(ferry_tls_subject_parse(long_pattern, &s, &err), FERRY_EINVAL);
    }
    /* The issuer reports a bad pattern the same way. */
    CU_ASSERT_PTR_NULL(issuer("CN=${name", 5));
}

static void
test_bad_cas_and_settings_are_refused(void)
{
    struct ferry_tls_issuer *iss = NULL;
    struct ferry_err         err = {0};
    EVP_PKEY                *other = EVP_EC_gen("P-256");
    X509                    *leaf, *nosign, *short_ca;

    leaf = make_ca(ec_ca_key, "leaf.crt", "critical,CA:FALSE", "critical,digitalSignature");
    nosign = make_ca(ec_ca_key, "nosign.crt", "critical,CA:TRUE", "critical,digitalSignature");
    CU_ASSERT_PTR_NOT_NULL_FATAL(leaf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nosign);
    CU_ASSERT_EQUAL_FATAL(write_key(other, "other.key"), 0);

    CU_ASSERT_EQUAL(ferry_tls_issuer_new(path_of("leaf.crt"), path_of("ec-ca.key"),
                                         "CN=${name}", 5, &iss, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "leaf.crt: not a CA certificate"));
    CU_ASSERT_EQUAL(ferry_tls_issuer_new(path_of("nosign.crt"), path_of("ec-ca.key"),
                                         "CN=${name}", 5, &iss, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "keyCertSign"));
    CU_ASSERT_EQUAL(ferry_tls_issuer_new(path_of("ec-ca.crt"), path_of("other.key"),
                                         "CN=${name}", 5, &iss, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "other.key: not the private key of"));
    CU_ASSERT_PTR_NULL(strstr(err.msg, "BEGIN"));
    CU_ASSERT_EQUAL(ferry_tls_issuer_new(path_of("ec-ca.crt"), path_of("absent.key"),
                                         "CN=${name}", 5, &iss, &err), FERRY_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "absent.key"));
    /* A certificate where the key should be, and the other way round. */
    CU_ASSERT_EQUAL(ferry_tls_issuer_new(path_of("ec-ca.crt"), path_of("ec-ca.crt"),
                                         "CN=${name}", 5, &iss, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "ec-ca.crt: not an unencrypted PEM private key"));
    CU_ASSERT_EQUAL(ferry_tls_issuer_new(path_of("ec-ca.key"), path_of("ec-ca.key"),
                                         "CN=${name}", 5, &iss, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "ec-ca.key: not a PEM certificate"));
    CU_ASSERT_PTR_NULL(strstr(err.msg, "BEGIN"));
    CU_ASSERT_EQUAL(ferry_tls_issuer_new(path_of("ec-ca.crt"), path_of("ec-ca.key"),
                                         "CN=${name}", 0, &iss, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "validity_minutes"));
    CU_ASSERT_EQUAL(ferry_tls_issuer_new(path_of("ec-ca.crt"), path_of("ec-ca.key"),
                                         "CN=${name}", FERRY_TLS_VALIDITY_MAX_MIN + 1, &iss,
                                         &err), FERRY_EINVAL);
    CU_ASSERT_EQUAL(ferry_tls_issuer_new(path_of("ec-ca.crt"), path_of("ec-ca.key"),
                                         "CN=${name},XX=1", 5, &iss, &err), FERRY_EINVAL);
    CU_ASSERT_EQUAL(err.col, 12);
    CU_ASSERT_PTR_NULL(iss);
    CU_ASSERT_PTR_NOT_NULL(iss = issuer("CN=${name}", FERRY_TLS_VALIDITY_MAX_MIN));
    ferry_tls_issuer_free(iss);
    iss = NULL;
    /* A CA with 5 minutes left: a 10-minute certificate ends with it; at its end no more. */
    short_ca = make_ca_for(ec_ca_key, "short.crt", "critical,CA:TRUE", "critical,keyCertSign",
                           300);
    CU_ASSERT_PTR_NOT_NULL_FATAL(short_ca);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_issuer_new(path_of("short.crt"), path_of("ec-ca.key"),
                                               "CN=${name}", 10, &iss, &err), FERRY_OK);
    {
        struct ferry_tls_usercert *uc = NULL;
        json_t                    *j = claims("{\"user_name\":\"alice\"}");
        time_t                     now = time(NULL);
        X509                      *x;

        CU_ASSERT_EQUAL_FATAL(ferry_tls_issuer_issue(iss, j, now, &uc, &err), FERRY_OK);
        x = ferry_tls_usercert_x509(uc);
        CU_ASSERT_EQUAL(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(short_ca)),
                        0);
        CU_ASSERT(ferry_tls_usercert_not_after(uc) <= now + 300);
        CU_ASSERT(ferry_tls_usercert_not_after(uc) >= now + 298);
        ferry_tls_usercert_unref(uc);
        uc = NULL;
        CU_ASSERT_EQUAL(ferry_tls_issuer_issue(iss, j, now + 250, &uc, &err), FERRY_EUNAVAIL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "the CA expires"));
        CU_ASSERT_PTR_NULL(uc);
        json_decref(j);
    }
    ferry_tls_issuer_free(iss);
    X509_free(short_ca);
    X509_free(leaf);
    X509_free(nosign);
    EVP_PKEY_free(other);
}

struct worker_run {
    struct ferry_tls_issuer *iss;       /* shared by every worker */
    int                      id;
    int                      verified;
};

/* One worker: its own cache, the shared issuer. */
static void *
worker_issue(void *arg)
{
    struct worker_run          *w = arg;
    struct ferry_tls_usercache *c = NULL;
    char                        user[32];

    if (ferry_tls_usercache_new(w->iss, 8, &c) != FERRY_OK)
        return NULL;
    for (int i = 0; i < 40; i++) {
        struct ferry_tls_usercert *uc = NULL;
        json_t                    *j;

        snprintf(user, sizeof(user), "w%d-u%d", w->id, i % 12);
        j = json_pack("{s:s}", "user_name", user);
        if (ferry_tls_usercache_get(c, j, time(NULL), &uc, NULL) == FERRY_OK &&
            X509_verify(ferry_tls_usercert_x509(uc), ec_ca_key) == 1)
            w->verified++;
        ferry_tls_usercert_unref(uc);
        json_decref(j);
    }
    ferry_tls_usercache_free(c);
    return NULL;
}

static void
test_workers_share_one_issuer(void)
{
    struct ferry_tls_issuer *iss = issuer("CN=${name},O=Acme", 10);
    struct worker_run        runs[4];
    pthread_t                threads[4];

    CU_ASSERT_PTR_NOT_NULL_FATAL(iss);
    for (int i = 0; i < 4; i++) {
        runs[i] = (struct worker_run){ iss, i, 0 };
        CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[i], NULL, worker_issue, &runs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CU_ASSERT_EQUAL(runs[i].verified, 40);
    }
    ferry_tls_issuer_free(iss);
}

static int
cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return (x > y) - (x < y);
}

/* The done-when of the issue asks for the cost of one issue: printed, not asserted. */
static long
median_issue_us(struct ferry_tls_issuer *iss)
{
    long    us[200];
    json_t *j = NULL;

    for (int i = 0; i < 200; i++) {
        struct ferry_tls_usercert *uc = NULL;
        struct timespec            a, b;

        j = json_pack("{s:s,s:s}", "user_name", "alice", "email", "a@x");
        clock_gettime(CLOCK_MONOTONIC, &a);
        CU_ASSERT_EQUAL(ferry_tls_issuer_issue(iss, j, time(NULL), &uc, NULL), FERRY_OK);
        clock_gettime(CLOCK_MONOTONIC, &b);
        us[i] = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
        ferry_tls_usercert_unref(uc);
        json_decref(j);
    }
    qsort(us, 200, sizeof(us[0]), cmp_long);
    return us[100];
}

static void
test_issue_cost_with_ec_and_rsa_cas(void)
{
    struct ferry_tls_issuer *ec = issuer("CN=${name},O=Acme", 10), *rsa = NULL;
    EVP_PKEY                *rsa_key = EVP_RSA_gen(2048);
    X509                    *rsa_ca;
    struct ferry_err         err = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(ec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rsa_key);
    rsa_ca = make_ca(rsa_key, "rsa-ca.crt", "critical,CA:TRUE", "critical,keyCertSign");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rsa_ca);
    CU_ASSERT_EQUAL_FATAL(write_key(rsa_key, "rsa-ca.key"), 0);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_issuer_new(path_of("rsa-ca.crt"), path_of("rsa-ca.key"),
                                               "CN=${name},O=Acme", 10, &rsa, &err), FERRY_OK);
    {
        struct ferry_tls_usercert *uc = NULL;
        json_t                    *j = claims("{\"user_name\":\"alice\"}");

        CU_ASSERT_EQUAL_FATAL(ferry_tls_issuer_issue(rsa, j, time(NULL), &uc, NULL), FERRY_OK);
        CU_ASSERT_EQUAL(X509_verify(ferry_tls_usercert_x509(uc), rsa_key), 1);
        CU_ASSERT_EQUAL(X509_get_signature_nid(ferry_tls_usercert_x509(uc)),
                        NID_sha256WithRSAEncryption);
        ferry_tls_usercert_unref(uc);
        json_decref(j);
    }
    printf("\n    one user certificate issue, median of 200: EC P-256 CA %ld us, "
           "RSA 2048 CA %ld us\n", median_issue_us(ec), median_issue_us(rsa));
    ferry_tls_issuer_free(ec);
    ferry_tls_issuer_free(rsa);
    X509_free(rsa_ca);
    EVP_PKEY_free(rsa_key);
}

static void
remove_dir(void)
{
    static const char *const names[] = {
        "ec-ca.crt", "ec-ca.key", "leaf.crt", "nosign.crt", "other.key", "rsa-ca.crt",
        "rsa-ca.key", "short.crt",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unlink(path_of(names[i]));
    rmdir(dir);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "issued certificate verifies, has subject, validity, extensions",
          test_issued_certificate_verifies_and_has_subject_validity_and_extensions },
        { "base64 is one line of the DER", test_base64_is_one_line_of_the_der },
        { "serials differ between users", test_serials_differ_between_users },
        { "cache reuses until a minute before expiry",
          test_cache_reuses_until_a_minute_before_expiry },
        { "find and put: sign off the cache", test_find_and_put_sign_off_the_cache },
        { "cache keeps its bound, evicts the least recently used",
          test_cache_keeps_its_bound_and_evicts_the_least_recently_used },
        { "${name} falls back through SAP's claims", test_name_falls_back_through_sap_claims },
        { "pattern fields, claims and literals", test_pattern_fields_claims_and_literals },
        { "DN escaping follows RFC 4514", test_dn_escape_follows_rfc4514 },
        { "claims cannot inject RDNs", test_claims_cannot_inject_rdns },
        { "claims over bounds or empty are refused",
          test_claims_over_bounds_or_empty_are_refused },
        { "bad patterns are refused with the column",
          test_bad_patterns_are_refused_with_the_column },
        { "bad CAs and settings are refused", test_bad_cas_and_settings_are_refused },
        { "workers share one issuer", test_workers_share_one_issuer },
        { "issue cost with EC and RSA CAs (printed)", test_issue_cost_with_ec_and_rsa_cas },
        { NULL, NULL },
    };
    int rc;

    if (mkdtemp(dir) == NULL)
        return 2;
    ec_ca_key = EVP_EC_gen("P-256");
    ec_ca = make_ca(ec_ca_key, "ec-ca.crt", "critical,CA:TRUE", "critical,keyCertSign,cRLSign");
    if (ec_ca == NULL || write_key(ec_ca_key, "ec-ca.key") != 0)
        rc = 2;
    else
        rc = cu_run("tls/usercert", tests);
    X509_free(ec_ca);
    EVP_PKEY_free(ec_ca_key);
    remove_dir();
    return rc;
}
