/*
 * keystore_test.c: key stores a destination names (core/dest/keystore.c): a PKCS#12
 * opens with its password and gives certificate, key and chain; a wrong or missing
 * password is refused naming the file and never the password; a Java KeyStore is
 * refused with the keytool line that converts it, while keytool's PKCS#12 in a file
 * called .jks is read; PEM is left to the context build. And at load (dest.c), those
 * errors land at KeyStoreLocation's line and column.
 */
#include "core/conf/conf-test.h"

#include <openssl/x509.h>

#include "cu.h"
#include "dest/keystore.h"
#include "keystore-fixture.h"

#define PASSWORD "Unit-p12-pass-61f0"

static char *dir;

static const char *
path_of(const char *name)
{
    static char buf[4][1024];
    static int  i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static void
test_pkcs12_opens_with_its_password(void)
{
    X509           *cert = NULL;
    EVP_PKEY       *key = NULL;
    STACK_OF(X509) *chain = NULL;
    struct ferry_err err = { 0 };
    enum ferry_keystore_kind kind = 0;
    char            cn[64] = "";

    CU_ASSERT_FATAL(fixture_p12(path_of("a.p12"), "unit client", PASSWORD));
    CU_ASSERT_EQUAL(ferry_dest_keystore_kind(path_of("a.p12"), &kind, &err), FERRY_OK);
    CU_ASSERT_EQUAL(kind, FERRY_KEYSTORE_PKCS12);
    CU_ASSERT_EQUAL_FATAL(ferry_dest_keystore_pkcs12(path_of("a.p12"), PASSWORD, &cert, &key,
                                                     &chain, &err), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(key);
    CU_ASSERT_PTR_NOT_NULL(chain);
    CU_ASSERT_EQUAL(sk_X509_num(chain), 0);
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    CU_ASSERT_STRING_EQUAL(cn, "unit client");
    CU_ASSERT_EQUAL(ferry_dest_keystore_check(path_of("a.p12"), PASSWORD, &err), FERRY_OK);
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void
test_wrong_or_missing_password_names_the_file_never_the_password(void)
{
    struct ferry_err err = { 0 };

    CU_ASSERT_FATAL(fixture_p12(path_of("b.p12"), "unit client", PASSWORD));
    CU_ASSERT_EQUAL(ferry_dest_keystore_check(path_of("b.p12"), "Not-" PASSWORD, &err),
                    FERRY_EDENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path_of("b.p12")));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "wrong password"));
    CU_ASSERT_PTR_NULL(strstr(err.msg, PASSWORD));
    memset(&err, 0, sizeof(err));
    CU_ASSERT_EQUAL(ferry_dest_keystore_check(path_of("b.p12"), NULL, &err), FERRY_EDENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "none is given"));
    memset(&err, 0, sizeof(err));
    CU_ASSERT_EQUAL(ferry_dest_keystore_check(path_of("missing.p12"), PASSWORD, &err), FERRY_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "missing.p12"));
}

static void
test_java_keystore_is_refused_with_the_keytool_line(void)
{
    struct ferry_err err = { 0 };
    char             want[3000];

    CU_ASSERT_FATAL(fixture_jks(path_of("store.jks")));
    CU_ASSERT_EQUAL(ferry_dest_keystore_check(path_of("store.jks"), PASSWORD, &err), FERRY_EINVAL);
    snprintf(want, sizeof(want),
             "`keytool -importkeystore -srckeystore %s -destkeystore %s -deststoretype PKCS12`",
             path_of("store.jks"), path_of("store.p12"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Java KeyStore"));
}

static void
test_pkcs12_named_jks_is_read_and_pem_left_to_the_context(void)
{
    struct ferry_err         err = { 0 };
    enum ferry_keystore_kind kind = 0;

    /* keytool has written PKCS#12 by default since Java 9, whatever the file's name. */
    CU_ASSERT_FATAL(fixture_p12(path_of("modern.jks"), "unit client", PASSWORD));
    CU_ASSERT_EQUAL(ferry_dest_keystore_check(path_of("modern.jks"), PASSWORD, &err), FERRY_OK);
    CU_ASSERT_FATAL(fixture_pem(path_of("c.pem"), "unit client"));
    CU_ASSERT_EQUAL(ferry_dest_keystore_kind(path_of("c.pem"), &kind, &err), FERRY_OK);
    CU_ASSERT_EQUAL(kind, FERRY_KEYSTORE_PEM);
    CU_ASSERT_EQUAL(ferry_dest_keystore_check(path_of("c.pem"), NULL, &err), FERRY_OK);
}

static void
test_load_reports_at_key_store_location_without_the_password(void)
{
    struct ferry_errlist errs;
    struct ferry_conf   *conf = NULL;
    char                 text[4096];

    CU_ASSERT_FATAL(fixture_p12(path_of("d.p12"), "unit client", PASSWORD));
    CU_ASSERT_FATAL(fixture_jks(path_of("d.jks")));
    snprintf(text, sizeof(text),
             "destinations:\n"
             "  - Name: wrong\n"
             "    Type: HTTP\n"
             "    URL: https://h\n"
             "    Authentication: ClientCertificateAuthentication\n"
             "    KeyStoreLocation: %s\n"
             "    KeyStorePassword: Not-%s\n"
             "  - Name: token\n"
             "    Type: HTTP\n"
             "    URL: https://h\n"
             "    Authentication: OAuth2ClientCredentials\n"
             "    clientId: c\n"
             "    tokenServiceURL: https://t/oauth/token\n"
             "    tokenService.KeyStoreLocation: %s\n"
             "  - Name: ldap\n"
             "    Type: LDAP\n"
             "    ldap.url: ldaps://h\n"
             "    KeyStoreLocation: %s\n"
             "  - Name: good\n"
             "    Type: LDAP\n"
             "    ldap.url: ldaps://h\n"
             "    KeyStoreLocation: %s\n"
             "    KeyStorePassword: %s\n",
             path_of("d.p12"), PASSWORD, path_of("d.p12"), path_of("d.jks"), path_of("d.p12"),
             PASSWORD);
    CU_ASSERT_EQUAL(conf_test_load(text, &conf, &errs), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 5, "destination 'wrong': KeyStoreLocation: "));
    CU_ASSERT(errs_have(&errs, 6, 5, "wrong password"));
    CU_ASSERT(errs_have(&errs, 14, 5, "tokenService.KeyStoreLocation: "));
    CU_ASSERT(errs_have(&errs, 14, 5, "set tokenService.KeyStorePassword"));
    CU_ASSERT(errs_have(&errs, 18, 5, "destination 'ldap': KeyStoreLocation: "));
    CU_ASSERT(errs_have(&errs, 18, 5, "keytool -importkeystore"));
    CU_ASSERT_EQUAL(errs.count, 3);
    CU_ASSERT_FALSE(errs_mention(&errs, PASSWORD));
    ferry_conf_free(conf);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "a PKCS#12 opens with its password", test_pkcs12_opens_with_its_password },
        { "a wrong or missing password names the file, never the password",
          test_wrong_or_missing_password_names_the_file_never_the_password },
        { "a Java KeyStore is refused with the keytool line",
          test_java_keystore_is_refused_with_the_keytool_line },
        { "a PKCS#12 named .jks is read; PEM is left to the context",
          test_pkcs12_named_jks_is_read_and_pem_left_to_the_context },
        { "load errors land at KeyStoreLocation without the password",
          test_load_reports_at_key_store_location_without_the_password },
        { NULL, NULL },
    };
    int rc;

    if ((dir = tmpdir_new()) == NULL)
        return 2;
    rc = cu_run("dest/keystore", tests);
    tmpdir_free(dir);
    return rc;
}
