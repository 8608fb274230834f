/*
 * expand_test.c: secret references (core/conf/expand.c) on their own and through the
 * loader: values expand, errors name the reference, and no message ever holds a value.
 */
#include "core/conf/conf-test.h"

#include <ferry/dest.h>

#include "cu.h"
#include "dest/dest-int.h"

#define SECRET "s3cr3t-VALUE-never-print"

static struct ferry_errlist errs;
static struct ferry_conf   *conf;

static int
load(const char *text)
{
    return conf_test_load(text, &conf, &errs);
}

/* No error or warning message may contain the secret. */
static void
assert_no_leak(const struct ferry_errlist *l)
{
    for (int i = 0; i < l->count; i++)
        CU_ASSERT_PTR_NULL(strstr(l->items[i].msg, SECRET));
    for (int i = 0; i < l->count; i++)
        CU_ASSERT_PTR_NULL(strstr(l->items[i].msg, "VALUE"));
}

static void
test_env_reference_expands_and_marks_secret(void)
{
    struct ferry_err err = {0};
    char            *out = NULL;
    bool             secret = false;

    setenv("FERRY_T_TOKEN", SECRET, 1);
    CU_ASSERT_EQUAL(ferry_conf_expand("${env:FERRY_T_TOKEN}", ".", &out, &secret, &err),
                    FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, SECRET);
    CU_ASSERT_TRUE(secret);
    free(out);
    CU_ASSERT_EQUAL(ferry_conf_expand("Bearer ${env:FERRY_T_TOKEN}!", ".", &out, &secret, &err),
                    FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "Bearer " SECRET "!");
    free(out);
}

static void
test_plain_value_is_not_secret(void)
{
    char *out = NULL;
    bool  secret = true;

    CU_ASSERT_EQUAL(ferry_conf_expand("cost: $5 {x}", ".", &out, &secret, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "cost: $5 {x}");
    CU_ASSERT_FALSE(secret);
    free(out);
    CU_ASSERT_EQUAL(ferry_conf_expand("", ".", &out, &secret, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "");
    free(out);
}

static void
test_double_dollar_escapes_a_literal_reference(void)
{
    char *out = NULL;
    bool  secret = true;

    CU_ASSERT_EQUAL(ferry_conf_expand("$${env:HOME} and $$", ".", &out, &secret, NULL),
                    FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "${env:HOME} and $$");
    CU_ASSERT_FALSE(secret);
    free(out);
}

static void
test_unset_env_names_the_reference(void)
{
    struct ferry_err err = {0};
    char            *out = (char *)1;
    bool             secret;

    unsetenv("FERRY_T_UNSET");
    CU_ASSERT_EQUAL(ferry_conf_expand("x${env:FERRY_T_UNSET}", ".", &out, &secret, &err),
                    FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_STRING_EQUAL(err.msg, "${env:FERRY_T_UNSET} is not set");
}

static void
test_bad_references_are_errors(void)
{
    struct ferry_err err = {0};
    char            *out;
    bool             secret;

    CU_ASSERT_EQUAL(ferry_conf_expand(SECRET "${env:X", ".", &out, &secret, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unterminated '${'"));
    CU_ASSERT_PTR_NULL(strstr(err.msg, SECRET));
    CU_ASSERT_EQUAL(ferry_conf_expand("${vault:kv/x}", ".", &out, &secret, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown reference type 'vault'"));
    CU_ASSERT_EQUAL(ferry_conf_expand("${" SECRET "}", ".", &out, &secret, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "must start ${env:NAME} or ${file:path}"));
    CU_ASSERT_PTR_NULL(strstr(err.msg, SECRET));
    CU_ASSERT_EQUAL(ferry_conf_expand("${env:1BAD}", ".", &out, &secret, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a variable name"));
    CU_ASSERT_EQUAL(ferry_conf_expand("${file:}", ".", &out, &secret, &err), FERRY_EINVAL);
}

static void
test_file_reference_is_relative_and_drops_one_newline(void)
{
    char            *dir = tmpdir_new();
    struct ferry_err err = {0};
    char            *out = NULL;
    bool             secret = false;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT(mkdir_in(dir, "secrets"));
    CU_ASSERT(file_write(dir, "secrets/billing", SECRET "\n"));
    CU_ASSERT(file_write(dir, "secrets/crlf", "abc\r\n"));
    CU_ASSERT(file_write(dir, "secrets/two", "abc\n\n"));
    CU_ASSERT_EQUAL(ferry_conf_expand("${file:secrets/billing}", dir, &out, &secret, &err),
                    FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, SECRET);
    CU_ASSERT_TRUE(secret);
    free(out);
    CU_ASSERT_EQUAL(ferry_conf_expand("${file:secrets/crlf}", dir, &out, &secret, &err),
                    FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "abc");
    free(out);
    CU_ASSERT_EQUAL(ferry_conf_expand("${file:secrets/two}", dir, &out, &secret, &err),
                    FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "abc\n");
    free(out);
    CU_ASSERT_EQUAL(ferry_conf_expand("${file:secrets/none}", dir, &out, &secret, &err),
                    FERRY_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "${file:secrets/none}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "No such file"));
    tmpdir_free(dir);
}

static void
test_tenant_token_from_env_through_the_loader(void)
{
    setenv("FERRY_T_ACME", SECRET, 1);
    CU_ASSERT_EQUAL(load("tenants:\n  - { id: acme, token: '${env:FERRY_T_ACME}' }\n"), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(ferry_conf_tenant(conf, "acme")->token, SECRET);

    unsetenv("FERRY_T_ACME");
    CU_ASSERT_EQUAL(load("tenants:\n  - { id: acme, token: '${env:FERRY_T_ACME}' }\n"),
                    FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 2, 24, "tenants[0]: token: ${env:FERRY_T_ACME} is not set"));
}

static void
test_destination_secret_from_file_is_marked_secret(void)
{
    char                    *dir = tmpdir_new();
    char                     path[512];
    const struct ferry_dest *d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT(mkdir_in(dir, "secrets"));
    CU_ASSERT(file_write(dir, "secrets/billing", SECRET "\n"));
    CU_ASSERT(file_write(dir, "ferry.yaml",
                         "destinations:\n  - Name: billing\n    Type: HTTP\n"
                         "    URL: https://b.example\n"
                         "    Authentication: OAuth2ClientCredentials\n"
                         "    tokenServiceURL: https://auth.example/oauth/token\n"
                         "    clientId: ferry\n"
                         "    clientSecret: ${file:secrets/billing}\n"
                         "    X-Custom: id-${file:secrets/billing}\n"
                         "    Password: inline\n"));
    snprintf(path, sizeof(path), "%s/ferry.yaml", dir);
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    d = ferry_registry_find(conf->registry, "billing");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop(d, "clientSecret"), SECRET);
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop(d, "X-Custom"), "id-" SECRET);
    for (size_t i = 0; i < d->nprops; i++) {
        const struct ferry_prop *p = &d->props[i];
        bool want = strcmp(p->key, "clientSecret") == 0 || strcmp(p->key, "X-Custom") == 0
                    || strcmp(p->key, "Password") == 0;

        CU_ASSERT_EQUAL(p->secret, want);
    }
    tmpdir_free(dir);
}

static void
test_error_messages_never_hold_a_secret_value(void)
{
    setenv("FERRY_T_SECRET", SECRET, 1);
    /* A secret where a number, an address, a URL or an enum is expected. */
    CU_ASSERT_EQUAL(load("workers: ${env:FERRY_T_SECRET}\n"
                         "drain_timeout_ms: ${env:FERRY_T_SECRET}\n"
                         "admin: { listen: '${env:FERRY_T_SECRET}' }\n"
                         "log: { level: '${env:FERRY_T_SECRET}' }\n"
                         "destinations:\n"
                         "  - Name: a\n    Type: HTTP\n    URL: '${env:FERRY_T_SECRET}'\n"
                         "    TrustAll: '${env:FERRY_T_SECRET}'\n"
                         "    HostnameVerifier: '${env:FERRY_T_SECRET}'\n"
                         "    Authentication: '${env:FERRY_T_SECRET}'\n"
                         "    URL.connectionTimeoutInSeconds: '${env:FERRY_T_SECRET}'\n"
                         "  - Name: b\n    Type: RFC\n    jco.client.ashost: h\n"
                         "    jco.client.sysnr: '${env:FERRY_T_SECRET}'\n"
                         "  - Name: c\n    Type: TCP\n    Address: h\n"
                         "    Port: '${env:FERRY_T_SECRET}'\n"
                         "  - Name: d\n    Type: HTTP\n    URL: http://h\n"
                         "    tenant: '${env:FERRY_T_SECRET}'\n"
                         "    ProxyType: '${env:FERRY_T_SECRET}'\n"
                         "listeners:\n"
                         "  - name: l\n    plugin: tcp\n    listen: '127.0.0.1:1'\n"
                         "    max_connections: '${env:FERRY_T_SECRET}'\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs.count >= 12);
    assert_no_leak(&errs);
    CU_ASSERT_EQUAL(load("tenants:\n  - { id: '${env:FERRY_T_SECRET}', token: a }\n"
                         "  - { id: '${env:FERRY_T_SECRET}', token: b }\n"
                         "listeners:\n"
                         "  - { name: '${env:FERRY_T_SECRET}', plugin: '${env:FERRY_T_SECRET}',"
                         " listen: '127.0.0.1:1', destination: '${env:FERRY_T_SECRET}',"
                         " tenant: '${env:FERRY_T_SECRET}x' }\n"
                         "  - { name: '${env:FERRY_T_SECRET}', plugin: tcp,"
                         " listen: '127.0.0.1:2' }\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 5);
    assert_no_leak(&errs);
    /* A known secret property written inline is not quoted either. */
    CU_ASSERT_EQUAL(load("destinations:\n  - Name: a\n    Type: LDAP\n"
                         "    ldap.url: ldap://h\n    ldap.password: " SECRET "${env:X\n"),
                    FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 5, 20, "ldap.password: unterminated '${'"));
    assert_no_leak(&errs);
}

static void
test_warnings_never_hold_a_secret_value(void)
{
    setenv("FERRY_T_SECRET", SECRET, 1);
    CU_ASSERT_EQUAL(load("destinations:\n  - Name: a\n    Type: HTTP\n    URL: https://h\n"
                         "    TrustAll: 'TRUE'\n    Pasword: '${env:FERRY_T_SECRET}'\n"),
                    FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(conf->warnings.count, 2);
    CU_ASSERT(errs_have(&conf->warnings, 5, 5, "TrustAll is true"));
    CU_ASSERT(errs_have(&conf->warnings, 6, 5, "unknown property 'Pasword' (did you mean "
                        "'Password'?)"));
    assert_no_leak(&conf->warnings);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "env reference expands and marks secret", test_env_reference_expands_and_marks_secret },
        { "plain value is not secret", test_plain_value_is_not_secret },
        { "$${ escapes a literal reference", test_double_dollar_escapes_a_literal_reference },
        { "unset env names the reference", test_unset_env_names_the_reference },
        { "bad references are errors", test_bad_references_are_errors },
        { "file reference is relative and drops one newline",
          test_file_reference_is_relative_and_drops_one_newline },
        { "tenant token from env through the loader",
          test_tenant_token_from_env_through_the_loader },
        { "destination secret from file is marked secret",
          test_destination_secret_from_file_is_marked_secret },
        { "error messages never hold a secret value",
          test_error_messages_never_hold_a_secret_value },
        { "warnings never hold a secret value", test_warnings_never_hold_a_secret_value },
        { NULL, NULL }
    };
    int rc = cu_run("expand", tests);

    ferry_conf_free(conf);
    return rc;
}
