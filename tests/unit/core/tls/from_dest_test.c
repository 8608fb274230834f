/*
 * from_dest_test.c: the one mapping of a destination's TLS properties
 * (core/tls/from-dest.c) and what the context cache makes of a key store
 * (core/tls/cache.c, tls.c): which properties count for which Type, Authentication
 * and use (the target or its token service); ferry_io_tls_from_dest for plugins; a
 * PKCS#12 context presents the store's certificate; the password is part of the cache
 * key (a wrong one is never served the context the right one built) and never part of
 * an error; HostnameVerifier BrowserCompatible lets "*." cover several labels.
 */
#include "core/conf/conf-test.h"

#include <event2/event.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ferry/io.h>

#include "cu.h"
#include "dest/dest-int.h"
#include "keystore-fixture.h"
#include "tls/cache.h"
#include "tls/from-dest.h"
#include "tls/tls.h"

#define PASSWORD "Unit-tls-pass-2a9c"

static char                *dir;
static struct ferry_errlist errs;
static struct ferry_conf   *conf;

static const char *
path_of(const char *name)
{
    static char buf[4][1024];
    static int  i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

/* Load "destinations:\n  - Name: x\n" + props and return x. */
static const struct ferry_dest *
one(const char *props)
{
    char text[4096];

    snprintf(text, sizeof(text), "destinations:\n  - Name: x\n%s", props);
    if (conf_test_load(text, &conf, &errs) != FERRY_OK)
        return NULL;
    return ferry_registry_find(conf->registry, "x");
}

static void
test_http_client_certificate_maps_trust_key_store_and_trust_all(void)
{
    struct ferry_tls_settings s;
    const struct ferry_dest  *d;
    char                      props[2048];

    snprintf(props, sizeof(props),
             "    Type: HTTP\n    URL: https://h.example\n"
             "    Authentication: ClientCertificateAuthentication\n"
             "    TrustStoreLocation: %s\n    KeyStoreLocation: %s\n"
             "    KeyStorePassword: %s\n    TrustAll: \"TRUE\"\n",
             path_of("ca.pem"), path_of("client.p12"), PASSWORD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = one(props));
    ferry_tls_settings_from_dest(d, FERRY_TLS_TARGET, &s);
    CU_ASSERT_STRING_EQUAL(s.ca_file, path_of("ca.pem"));
    CU_ASSERT_STRING_EQUAL(s.cert_file, path_of("client.p12"));
    CU_ASSERT_PTR_NULL(s.key_file);
    CU_ASSERT_STRING_EQUAL(s.cert_password, PASSWORD);
    CU_ASSERT_TRUE(s.insecure);
    CU_ASSERT_FALSE(s.no_system_store);
}

static void
test_http_key_store_of_other_authentications_is_no_client_certificate(void)
{
    struct ferry_tls_settings s;
    const struct ferry_dest  *d;
    char                      props[2048];

    /* OAuth2SAMLBearerAssertion signs assertions with KeyStoreLocation. */
    snprintf(props, sizeof(props),
             "    Type: HTTP\n    URL: https://h.example\n"
             "    Authentication: OAuth2SAMLBearerAssertion\n    audience: a\n"
             "    clientKey: k\n    tokenServiceURL: https://t.example/token\n"
             "    authnContextClassRef: r\n"
             "    KeyStoreLocation: %s\n    KeyStorePassword: %s\n",
             path_of("client.p12"), PASSWORD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = one(props));
    ferry_tls_settings_from_dest(d, FERRY_TLS_TARGET, &s);
    CU_ASSERT_PTR_NULL(s.cert_file);
    CU_ASSERT_PTR_NULL(s.cert_password);
    CU_ASSERT_PTR_NULL(s.ca_file);
    CU_ASSERT_FALSE(s.insecure);
}

static void
test_token_service_takes_its_own_key_store_and_is_always_verified(void)
{
    struct ferry_tls_settings s;
    const struct ferry_dest  *d;
    char                      props[2048];

    snprintf(props, sizeof(props),
             "    Type: HTTP\n    URL: https://h.example\n"
             "    Authentication: OAuth2ClientCredentials\n    clientId: c\n"
             "    tokenServiceURL: https://t.example/token\n"
             "    TrustStoreLocation: %s\n    TrustAll: \"true\"\n"
             "    tokenService.KeyStoreLocation: %s\n"
             "    tokenService.KeyStorePassword: %s\n",
             path_of("ca.pem"), path_of("client.p12"), PASSWORD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = one(props));
    ferry_tls_settings_from_dest(d, FERRY_TLS_TOKEN_SERVICE, &s);
    CU_ASSERT_STRING_EQUAL(s.ca_file, path_of("ca.pem"));
    CU_ASSERT_STRING_EQUAL(s.cert_file, path_of("client.p12"));
    CU_ASSERT_STRING_EQUAL(s.cert_password, PASSWORD);
    CU_ASSERT_FALSE(s.insecure);
    /* The target of the same destination has no client certificate. */
    ferry_tls_settings_from_dest(d, FERRY_TLS_TARGET, &s);
    CU_ASSERT_PTR_NULL(s.cert_file);
    CU_ASSERT_TRUE(s.insecure);
}

static void
test_ldap_maps_key_store_and_plugins_get_the_same(void)
{
    struct ferry_io_tls      t;
    const struct ferry_dest *d;
    char                     props[2048];

    snprintf(props, sizeof(props),
             "    Type: LDAP\n    ldap.url: ldaps://dir.example\n"
             "    TrustStoreLocation: %s\n    KeyStoreLocation: %s\n"
             "    KeyStorePassword: %s\n",
             path_of("ca.pem"), path_of("client.p12"), PASSWORD);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = one(props));
    memset(&t, 0xff, sizeof(t));            /* every field is set */
    ferry_io_tls_from_dest(d, &t);
    CU_ASSERT_TRUE(t.enable);
    CU_ASSERT_STRING_EQUAL(t.server_name, "dir.example");
    CU_ASSERT_STRING_EQUAL(t.ca_file, path_of("ca.pem"));
    CU_ASSERT_STRING_EQUAL(t.cert_file, path_of("client.p12"));
    CU_ASSERT_PTR_NULL(t.key_file);
    CU_ASSERT_STRING_EQUAL(t.cert_password, PASSWORD);
    CU_ASSERT_FALSE(t.insecure);
    CU_ASSERT_FALSE(t.no_system_store);

    CU_ASSERT_PTR_NOT_NULL_FATAL(d = one("    Type: LDAP\n    ldap.url: ldap://dir.example\n"));
    ferry_io_tls_from_dest(d, &t);
    CU_ASSERT_FALSE(t.enable);              /* ldap:// (StartTLS is the plugin's choice) */
    CU_ASSERT_PTR_NULL(t.cert_file);
    CU_ASSERT_PTR_NULL(t.ca_file);
}

static void
test_pkcs12_context_presents_the_key_stores_certificate(void)
{
    struct ferry_tls_settings s = { .cert_file = path_of("client.p12"),
                                    .cert_password = PASSWORD };
    struct ferry_err          err = { 0 };
    SSL_CTX                  *ctx = NULL;
    X509                     *x;
    char                      cn[64] = "";

    CU_ASSERT_EQUAL_FATAL(tls_upstream_ctx(&s, &ctx, &err), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x = SSL_CTX_get0_certificate(ctx));
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
    CU_ASSERT_STRING_EQUAL(cn, "unit tls client");
    CU_ASSERT_PTR_NOT_NULL(SSL_CTX_get0_privatekey(ctx));
    SSL_CTX_free(ctx);

    /* PEM key stores load as before; an encrypted key opens with the password. */
    s = (struct ferry_tls_settings){ .cert_file = path_of("client.pem") };
    CU_ASSERT_EQUAL_FATAL(tls_upstream_ctx(&s, &ctx, &err), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(SSL_CTX_get0_certificate(ctx));
    SSL_CTX_free(ctx);
    s = (struct ferry_tls_settings){ .cert_file = path_of("enc.pem"), .cert_password = PASSWORD };
    CU_ASSERT_EQUAL_FATAL(tls_upstream_ctx(&s, &ctx, &err), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(SSL_CTX_get0_privatekey(ctx));
    SSL_CTX_free(ctx);
    ctx = NULL;
    s.cert_password = "Not-" PASSWORD;
    CU_ASSERT_EQUAL(tls_upstream_ctx(&s, &ctx, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(ctx);
    CU_ASSERT_PTR_NULL(strstr(err.msg, PASSWORD));
}

static void
test_password_is_part_of_the_cache_key_and_never_of_an_error(void)
{
    struct event_base        *loader = event_base_new();
    struct ferry_tls_cache   *c = NULL;
    struct ferry_tls_settings s = { .cert_file = path_of("client.p12"),
                                    .cert_password = PASSWORD };
    struct ferry_err          err = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(loader);
    CU_ASSERT_EQUAL_FATAL(ferry_tls_cache_new(loader, 8, &c), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tls_cache_load(c, &s, &err), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tls_cache_size(c), 1);
    CU_ASSERT_EQUAL(ferry_tls_cache_load(c, &s, &err), FERRY_OK);    /* a hit */
    CU_ASSERT_EQUAL(ferry_tls_cache_size(c), 1);
    /* Same file, another password: a key of its own, so it is built and fails. */
    s.cert_password = "Not-" PASSWORD;
    CU_ASSERT_NOT_EQUAL(ferry_tls_cache_load(c, &s, &err), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path_of("client.p12")));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "wrong password"));
    CU_ASSERT_PTR_NULL(strstr(err.msg, PASSWORD));
    CU_ASSERT_EQUAL(ferry_tls_cache_size(c), 1);
    /* Another key store: another context. */
    s = (struct ferry_tls_settings){ .cert_file = path_of("other.p12"),
                                     .cert_password = PASSWORD };
    CU_ASSERT_EQUAL(ferry_tls_cache_load(c, &s, &err), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tls_cache_size(c), 2);
    ferry_tls_cache_free(c);
    event_base_free(loader);
}

/* Does the SSL made for host (as every upstream is, tls_client_ssl) accept a
 * certificate for CN=*.example.test, by its own verify parameters? */
static bool
ssl_accepts_wildcard(SSL_CTX *ctx, const char *host)
{
    X509     *x = NULL;
    EVP_PKEY *k = NULL;
    SSL      *ssl = tls_client_ssl(ctx, -1, host);
    bool      ok;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ssl);
    CU_ASSERT_FATAL(fixture_cert("*.example.test", &x, &k));
    ok = X509_check_host(x, host, 0, X509_VERIFY_PARAM_get_hostflags(SSL_get0_param(ssl)),
                         NULL) == 1;
    X509_free(x);
    EVP_PKEY_free(k);
    SSL_free(ssl);
    return ok;
}

static void
test_browser_compatible_wildcards_cover_several_labels(void)
{
    struct ferry_tls_settings s;
    struct ferry_io_tls       t;
    struct ferry_err          err = { 0 };
    const struct ferry_dest  *d;
    SSL_CTX                  *ctx = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d = one("    Type: HTTP\n    URL: https://a.b.example.test\n"
                                         "    HostnameVerifier: BrowserCompatible\n"));
    ferry_tls_settings_from_dest(d, FERRY_TLS_TARGET, &s);
    CU_ASSERT_TRUE(s.wildcard_any_depth);
    ferry_io_tls_from_dest(d, &t);
    CU_ASSERT_TRUE(t.wildcard_any_depth);
    ferry_tls_settings_from_dest(d, FERRY_TLS_TOKEN_SERVICE, &s);
    CU_ASSERT_FALSE(s.wildcard_any_depth);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = one("    Type: HTTP\n    URL: https://a.b.example.test\n"
                                         "    HostnameVerifier: Strict\n"));
    ferry_tls_settings_from_dest(d, FERRY_TLS_TARGET, &s);
    CU_ASSERT_FALSE(s.wildcard_any_depth);

    s = (struct ferry_tls_settings){ 0 };
    CU_ASSERT_EQUAL_FATAL(tls_upstream_ctx(&s, &ctx, &err), FERRY_OK);
    CU_ASSERT_TRUE(ssl_accepts_wildcard(ctx, "b.example.test"));
    CU_ASSERT_FALSE(ssl_accepts_wildcard(ctx, "a.b.example.test"));    /* Strict */
    SSL_CTX_free(ctx);
    s.wildcard_any_depth = true;
    CU_ASSERT_EQUAL_FATAL(tls_upstream_ctx(&s, &ctx, &err), FERRY_OK);
    CU_ASSERT_TRUE(ssl_accepts_wildcard(ctx, "b.example.test"));
    CU_ASSERT_TRUE(ssl_accepts_wildcard(ctx, "a.b.example.test"));
    CU_ASSERT_FALSE(ssl_accepts_wildcard(ctx, "example.test"));
    SSL_CTX_free(ctx);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "ClientCertificateAuthentication maps trust, key store and TrustAll",
          test_http_client_certificate_maps_trust_key_store_and_trust_all },
        { "HTTP's KeyStoreLocation of other authentications is no client certificate",
          test_http_key_store_of_other_authentications_is_no_client_certificate },
        { "a token service takes its own key store and is always verified",
          test_token_service_takes_its_own_key_store_and_is_always_verified },
        { "LDAP maps its key store; plugins get the same (ferry_io_tls_from_dest)",
          test_ldap_maps_key_store_and_plugins_get_the_same },
        { "a PKCS#12 context presents the key store's certificate; PEM as before",
          test_pkcs12_context_presents_the_key_stores_certificate },
        { "the password is part of the cache key and never of an error",
          test_password_is_part_of_the_cache_key_and_never_of_an_error },
        { "HostnameVerifier BrowserCompatible: wildcards cover several labels",
          test_browser_compatible_wildcards_cover_several_labels },
        { NULL, NULL },
    };
    int rc = 2;

    if ((dir = tmpdir_new()) == NULL)
        return 2;
    if (fixture_p12(path_of("client.p12"), "unit tls client", PASSWORD) &&
        fixture_p12(path_of("other.p12"), "unit tls other", PASSWORD) &&
        fixture_pem(path_of("client.pem"), "unit tls client") &&
        fixture_pem_key(path_of("enc.pem"), "unit tls client", PASSWORD) &&
        fixture_pem(path_of("ca.pem"), "unit tls ca"))
        rc = cu_run("tls/from-dest", tests);
    ferry_conf_free(conf);
    tmpdir_free(dir);
    return rc;
}
