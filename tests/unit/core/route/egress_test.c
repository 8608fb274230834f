/*
 * egress_test.c: egress patterns (core/route/egress.c) and base64 decoding
 * (core/util/base64.c), as the socks5 plugin uses them.
 */
#include "core/conf/conf-test.h"

#include <ferry/route.h>

#include "cu.h"

static struct ferry_errlist errs;
static struct ferry_conf   *conf;

/* The options of a one-listener config with the given extra lines. */
static struct ferry_opts *
opts_of(const char *extra)
{
    char text[2048];

    snprintf(text, sizeof(text), "listeners:\n  - name: socks\n    plugin: socks5\n"
             "    listen: '127.0.0.1:20004'\n%s", extra);
    if (conf_test_load(text, &conf, &errs) != FERRY_OK)
        return NULL;
    ferry_opts_set_errlist(conf->listeners[0].opts, &errs);
    return conf->listeners[0].opts;
}

static void
test_absent_egress_allows_nothing(void)
{
    struct ferry_opts   *o = opts_of("");
    struct ferry_egress *e = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(ferry_egress_new(o, "egress", &e), FERRY_OK);
    CU_ASSERT_FALSE(ferry_egress_allows(e, "127.0.0.1", 80));
    CU_ASSERT_FALSE(ferry_egress_allows(e, "example.com", 443));
    ferry_egress_free(e);
}

static void
test_patterns_match_exact_wildcard_suffix_and_port(void)
{
    struct ferry_opts   *o = opts_of("    egress: [ '127.0.0.1:*', '*.example.com:443',"
                                     " 'db.internal:5432', '[::1]:8080', '*:7' ]\n");
    struct ferry_egress *e = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL_FATAL(ferry_egress_new(o, "egress", &e), FERRY_OK);
    CU_ASSERT_TRUE(ferry_egress_allows(e, "127.0.0.1", 1));
    CU_ASSERT_TRUE(ferry_egress_allows(e, "127.0.0.1", 65535));
    CU_ASSERT_FALSE(ferry_egress_allows(e, "127.0.0.2", 80));
    CU_ASSERT_TRUE(ferry_egress_allows(e, "api.example.com", 443));
    CU_ASSERT_TRUE(ferry_egress_allows(e, "A.B.EXAMPLE.COM", 443));    /* case-insensitive */
    CU_ASSERT_FALSE(ferry_egress_allows(e, "example.com", 443));      /* suffix needs a label */
    CU_ASSERT_FALSE(ferry_egress_allows(e, "badexample.com", 443));   /* the dot is kept */
    CU_ASSERT_FALSE(ferry_egress_allows(e, "api.example.com", 80));
    CU_ASSERT_TRUE(ferry_egress_allows(e, "db.internal", 5432));
    CU_ASSERT_FALSE(ferry_egress_allows(e, "db.internal", 5433));
    CU_ASSERT_TRUE(ferry_egress_allows(e, "::1", 8080));
    CU_ASSERT_TRUE(ferry_egress_allows(e, "0:0:0:0:0:0:0:1", 8080));  /* one address */
    CU_ASSERT_TRUE(ferry_egress_allows(e, "anything.at.all", 7));
    CU_ASSERT_FALSE(ferry_egress_allows(e, NULL, 7));
    CU_ASSERT_EQUAL(errs.count, 0);
    ferry_egress_free(e);
}

static void
test_bad_patterns_are_errors_at_the_option(void)
{
    static const char *const bad[] = {
        "'example.com'", "'example.com:0'", "'example.com:70000'", "'ex*mple.com:80'",
        "':80'", "'[::1:80'", "'host:http'",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char                 line[128];
        struct ferry_opts   *o;
        struct ferry_egress *e = NULL;

        snprintf(line, sizeof(line), "    egress: [ %s ]\n", bad[i]);
        o = opts_of(line);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_EQUAL(ferry_egress_new(o, "egress", &e), FERRY_EINVAL);
        CU_ASSERT_PTR_NULL(e);
        CU_ASSERT_EQUAL_FATAL(errs.count, 1);
        CU_ASSERT_EQUAL(errs.items[0].line, 5);
        CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[0].msg, "egress"));
        CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[0].msg, "want host:port"));
    }
}

static void
test_every_bad_pattern_is_reported(void)
{
    struct ferry_opts   *o = opts_of("    egress: [ 'a', 'ok:1', 'b:0', '*:*' ]\n");
    struct ferry_egress *e = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(ferry_egress_new(o, "egress", &e), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_EQUAL_FATAL(errs.count, 2);       /* not only the first */
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[0].msg, "egress: 'a': want host:port"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[1].msg, "egress: 'b:0': want host:port"));
}

static void
test_base64_decodes_padded_standard_alphabet(void)
{
    uint8_t out[32];

    CU_ASSERT_EQUAL(ferry_base64_decode("YmVybGlu", 8, out, sizeof(out)), 6);
    CU_ASSERT_EQUAL(memcmp(out, "berlin", 6), 0);
    CU_ASSERT_EQUAL(ferry_base64_decode("YQ==", 4, out, sizeof(out)), 1);
    CU_ASSERT_EQUAL(out[0], 'a');
    CU_ASSERT_EQUAL(ferry_base64_decode("YWI=", 4, out, sizeof(out)), 2);
    CU_ASSERT_EQUAL(ferry_base64_decode("", 0, out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(ferry_base64_decode("+/+/", 4, out, sizeof(out)), 3);
}

static void
test_base64_refuses_what_is_not_base64(void)
{
    uint8_t out[4];

    CU_ASSERT_EQUAL(ferry_base64_decode("berlin", 6, out, sizeof(out)), -1);   /* length */
    CU_ASSERT_EQUAL(ferry_base64_decode("YQ=a", 4, out, sizeof(out)), -1);     /* after pad */
    CU_ASSERT_EQUAL(ferry_base64_decode("Y===", 4, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(ferry_base64_decode("YQ==YQ==", 8, out, sizeof(out)), -1); /* pad inside */
    CU_ASSERT_EQUAL(ferry_base64_decode("ab-_", 4, out, sizeof(out)), -1);     /* url alphabet */
    CU_ASSERT_EQUAL(ferry_base64_decode("YmVybGlu", 8, out, sizeof(out)), -1); /* no room */
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "absent egress allows nothing", test_absent_egress_allows_nothing },
        { "patterns match exact, wildcard, suffix and port",
          test_patterns_match_exact_wildcard_suffix_and_port },
        { "bad patterns are errors at the option", test_bad_patterns_are_errors_at_the_option },
        { "every bad pattern is reported", test_every_bad_pattern_is_reported },
        { "base64 decodes the padded standard alphabet",
          test_base64_decodes_padded_standard_alphabet },
        { "base64 refuses what is not base64", test_base64_refuses_what_is_not_base64 },
        { NULL, NULL },
    };
    int rc = cu_run("egress", tests);

    ferry_conf_free(conf);
    return rc;
}
