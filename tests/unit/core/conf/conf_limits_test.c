/*
 * conf_limits_test.c: a listener's allow, proxy_protocol and rate (core/conf/
 * conf-limits.c): the defaults, what loads, and each error at its node with the
 * message an operator needs.
 */
#include "conf-test.h"
#include "cu.h"

static struct ferry_conf    *conf;
static struct ferry_errlist  errs;

/* A listener whose last line is `extra` (line 3, column 5). */
static int
load_with(const char *extra)
{
    char text[512];

    snprintf(text, sizeof(text),
             "listeners:\n  - name: a\n    %s\n    plugin: tcp\n    listen: 127.0.0.1:3300\n",
             extra);
    return conf_test_load(text, &conf, &errs);
}

static void
test_defaults_are_any_client_no_header_no_rate(void)
{
    CU_ASSERT_EQUAL_FATAL(conf_test_load("listeners:\n  - { name: a, plugin: tcp, "
                                         "listen: \"127.0.0.1:3300\" }\n", &conf, &errs),
                          FERRY_OK);
    CU_ASSERT_PTR_NULL(conf->listeners[0].allow);
    CU_ASSERT_EQUAL(conf->listeners[0].proxy_protocol, 0);
    CU_ASSERT_EQUAL(conf->listeners[0].rate_per_s, 0);
}

static void
test_limits_load(void)
{
    CU_ASSERT_EQUAL_FATAL(load_with("allow: [ \"10.0.0.0/8\", \"::1\" ]\n"
                                    "    proxy_protocol: v2\n"
                                    "    rate: { per_client: 50, burst: 100 }"), FERRY_OK);
    CU_ASSERT_EQUAL(conf->listeners[0].nallow, 2);
    CU_ASSERT_EQUAL(conf->listeners[0].allow[1].bits, 128);
    CU_ASSERT_EQUAL(conf->listeners[0].proxy_protocol, 2);
    CU_ASSERT_EQUAL(conf->listeners[0].rate_per_s, 50);
    CU_ASSERT_EQUAL(conf->listeners[0].rate_burst, 100);
    /* one rule without brackets, and burst defaulting to per_client */
    CU_ASSERT_EQUAL_FATAL(load_with("allow: 192.0.2.7\n    proxy_protocol: v1\n"
                                    "    rate: { per_client: 7 }"), FERRY_OK);
    CU_ASSERT_EQUAL(conf->listeners[0].nallow, 1);
    CU_ASSERT_EQUAL(conf->listeners[0].allow[0].bits, 32);
    CU_ASSERT_EQUAL(conf->listeners[0].proxy_protocol, 1);
    CU_ASSERT_EQUAL(conf->listeners[0].rate_burst, 7);
}

static void
test_bad_cidr_is_an_error_at_the_rule(void)
{
    CU_ASSERT_EQUAL(load_with("allow: [ \"10.0.0.0/8\", \"10.0.0.0/33\", bad ]"), FERRY_EINVAL);
    /* every bad rule, each at its own column */
    CU_ASSERT(errs_have(&errs, 3, 28, "listeners[0]: allow[1]: '10.0.0.0/33': the prefix "
                        "length must be 0 to 32"));
    CU_ASSERT(errs_have(&errs, 3, 43, "allow[2]: 'bad' is not an address or CIDR"));
    CU_ASSERT_EQUAL(load_with("allow: [ \"10.1.2.3/8\" ]"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 14, "did you mean '10.0.0.0/8'?"));
    CU_ASSERT_EQUAL(load_with("allow: []"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 12, "admits nobody"));
    CU_ASSERT_EQUAL(load_with("allow: { a: b }"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 12, "want a list of CIDRs"));
}

static void
test_bad_proxy_protocol_suggests(void)
{
    CU_ASSERT_EQUAL(load_with("proxy_protocol: V2"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 21, "proxy_protocol: 'V2' is not off, v1 or v2 (did you "
                        "mean 'v2'?)"));
    CU_ASSERT_EQUAL(load_with("proxy_protocol: [ v1 ]"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 21, "want off, v1 or v2"));
    /* `true` (YAML 1.1's on) is no version either */
    CU_ASSERT_EQUAL(load_with("proxy_protocol: true"), FERRY_EINVAL);
}

static void
test_bad_rate_is_an_error_at_its_key(void)
{
    CU_ASSERT_EQUAL(load_with("rate: { per_client: 0 }"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 25, "rate: per_client: want a whole number from 1 to 1000000"));
    CU_ASSERT_EQUAL(load_with("rate: { burst: 5 }"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 0, 0, "missing required key 'per_client'"));
    CU_ASSERT_EQUAL(load_with("rate: { per_client: 5, brust: 9 }"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 28, "unknown key 'brust' (did you mean 'burst'?)"));
    CU_ASSERT_EQUAL(load_with("rate: 50"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 11, "want a mapping"));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "defaults: any client, no header, no rate",
          test_defaults_are_any_client_no_header_no_rate },
        { "limits load", test_limits_load },
        { "a bad CIDR is an error at the rule", test_bad_cidr_is_an_error_at_the_rule },
        { "a bad proxy_protocol suggests", test_bad_proxy_protocol_suggests },
        { "a bad rate is an error at its key", test_bad_rate_is_an_error_at_its_key },
        { NULL, NULL },
    };
    int rc = cu_run("conf/limits", tests);

    ferry_conf_free(conf);
    return rc;
}
