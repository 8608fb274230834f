/*
 * opts_test.c: listener options as a plugin reads them (core/conf/opts.c): typed
 * reads, errors at the key's position, unused keys reported with a suggestion.
 */
#include "core/conf/conf-test.h"

#include <ferry/opts.h>

#include "cu.h"

static struct ferry_errlist errs;
static struct ferry_conf   *conf;

/* Load a config whose only listener is `name: socks` with the given extra lines. */
static struct ferry_opts *
opts_of(const char *extra)
{
    char text[2048];

    snprintf(text, sizeof(text), "listeners:\n  - name: socks\n    plugin: socks5\n"
             "    listen: '127.0.0.1:20004'\n%s", extra);
    if (conf_test_load(text, &conf, &errs) != FERRY_OK)
        return NULL;
    return conf->listeners[0].opts;
}

static void
test_str_reads_a_scalar_and_reports_absent(void)
{
    struct ferry_opts *o = opts_of("    auth: tenant\n    port_hint: 00\n");
    const char        *s = "x";

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(ferry_opts_str(o, "auth", &s), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(s, "tenant");
    CU_ASSERT_EQUAL(ferry_opts_str(o, "port_hint", &s), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(s, "00");                  /* kept as written */
    CU_ASSERT_EQUAL(ferry_opts_str(o, "mode", &s), FERRY_ENOTFOUND);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(errs.count, 0);
}

static void
test_str_on_a_list_is_an_error_at_the_key(void)
{
    struct ferry_opts *o = opts_of("    auth: [ a, b ]\n");
    const char        *s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(ferry_opts_str(o, "auth", &s), FERRY_EINVAL);
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    CU_ASSERT_STRING_EQUAL(errs.items[0].file, "t.yaml");
    CU_ASSERT_EQUAL(errs.items[0].line, 5);
    CU_ASSERT_EQUAL(errs.items[0].col, 5);
    CU_ASSERT_STRING_EQUAL(errs.items[0].msg,
                           "listeners[0] (socks): auth: want a single value, not a list");
}

static void
test_strlist_takes_a_list_or_a_single_value(void)
{
    struct ferry_opts  *o = opts_of("    egress: [ '127.0.0.1:*', '*.example.com:443' ]\n"
                                    "    one: solo\n    none: []\n    bad: { a: b }\n"
                                    "    nested: [ [ a ] ]\n");
    const char *const  *list;
    size_t              n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(ferry_opts_strlist(o, "egress", &list, &n), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(list[0], "127.0.0.1:*");
    CU_ASSERT_STRING_EQUAL(list[1], "*.example.com:443");
    CU_ASSERT_PTR_NULL(list[2]);
    CU_ASSERT_EQUAL(ferry_opts_strlist(o, "one", &list, &n), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(list[0], "solo");
    CU_ASSERT_EQUAL(ferry_opts_strlist(o, "none", &list, &n), FERRY_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    CU_ASSERT_PTR_NULL(list[0]);
    CU_ASSERT_EQUAL(ferry_opts_strlist(o, "absent", &list, &n), FERRY_ENOTFOUND);
    CU_ASSERT_PTR_NULL(list);
    CU_ASSERT_EQUAL(errs.count, 0);
    CU_ASSERT_EQUAL(ferry_opts_strlist(o, "bad", &list, &n), FERRY_EINVAL);
    CU_ASSERT_EQUAL(ferry_opts_strlist(o, "nested", &list, &n), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 2);
    CU_ASSERT(errs_have(&errs, 8, 5, "listeners[0] (socks): bad: want a value or a list"));
    CU_ASSERT(errs_have(&errs, 9, 5, "listeners[0] (socks): nested: want a value or a list"));
}

static void
test_uint_checks_range_and_digits(void)
{
    struct ferry_opts *o = opts_of("    window: 64\n    big: 70000\n    neg: -1\n    word: ten\n"
                                   "    huge: 99999999999999999999999\n");
    uint64_t           v = 7;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(ferry_opts_uint(o, "window", 1, 100, &v), FERRY_OK);
    CU_ASSERT_EQUAL(v, 64);
    v = 7;
    CU_ASSERT_EQUAL(ferry_opts_uint(o, "absent", 1, 100, &v), FERRY_ENOTFOUND);
    CU_ASSERT_EQUAL(v, 7);                            /* untouched */
    CU_ASSERT_EQUAL(ferry_opts_uint(o, "big", 1, 65535, &v), FERRY_EINVAL);
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT_EQUAL(ferry_opts_uint(o, "neg", 0, 10, &v), FERRY_EINVAL);
    CU_ASSERT_EQUAL(ferry_opts_uint(o, "word", 0, 10, &v), FERRY_EINVAL);
    CU_ASSERT_EQUAL(ferry_opts_uint(o, "huge", 0, UINT64_MAX, &v), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 4);
    CU_ASSERT(errs_have(&errs, 6, 5, "listeners[0] (socks): big: want a whole number from 1 "
                        "to 65535, not '70000'"));
    CU_ASSERT(errs_have(&errs, 7, 5, "neg: want a whole number"));
    CU_ASSERT(errs_have(&errs, 8, 5, "word: want a whole number"));
}

static void
test_unused_key_reported_with_suggestion_from_asked_keys(void)
{
    struct ferry_opts *o = opts_of("    auth: tenant\n    egres: [ '127.0.0.1:*' ]\n"
                                   "    destinaton: erp\n    zzz: 1\n");
    const char        *s;
    const char *const *list;
    size_t             n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(ferry_opts_str(o, "auth", &s), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_opts_strlist(o, "egress", &list, &n), FERRY_ENOTFOUND);
    ferry_opts_check_unused(o);
    CU_ASSERT_EQUAL(errs.count, 3);
    CU_ASSERT(errs_have(&errs, 6, 5, "listeners[0]: unknown key 'egres' (did you mean "
                        "'egress'?)"));
    CU_ASSERT(errs_have(&errs, 7, 5, "listeners[0]: unknown key 'destinaton' (did you mean "
                        "'destination'?)"));
    CU_ASSERT(errs_have(&errs, 8, 5, "listeners[0]: unknown key 'zzz'"));
    CU_ASSERT(!errs_have(&errs, 8, 5, "did you mean"));
    CU_ASSERT(!errs_mention(&errs, "'auth'"));
    ferry_opts_check_unused(o);                       /* reported once only */
    CU_ASSERT_EQUAL(errs.count, 3);
}

static void
test_error_goes_to_the_list_set_for_it(void)
{
    struct ferry_opts   *o = opts_of("    mode: sideways\n");
    struct ferry_errlist other = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    ferry_opts_set_errlist(o, &other);
    CU_ASSERT_EQUAL(ferry_opts_error(o, "mode", "want forward or transparent, not '%s'",
                                     "sideways"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(ferry_opts_error(o, NULL, "needs a destination"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(ferry_opts_error(o, "upstream", "is required"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 0);
    CU_ASSERT_EQUAL_FATAL(other.count, 3);
    CU_ASSERT(errs_have(&other, 5, 5, "listeners[0] (socks): mode: want forward or "
                        "transparent, not 'sideways'"));
    /* no key, or an absent one: at the listener's mapping */
    CU_ASSERT(errs_have(&other, 2, 5, "listeners[0] (socks): needs a destination"));
    CU_ASSERT(errs_have(&other, 2, 5, "listeners[0] (socks): upstream: is required"));
    CU_ASSERT_STRING_EQUAL(other.items[0].file, "t.yaml");
}

static void
test_options_expand_secret_references(void)
{
    struct ferry_opts *o;
    const char        *s;
    uint64_t           v;

    setenv("FERRY_T_OPT", "opt-secret-99", 1);
    o = opts_of("    key: '${env:FERRY_T_OPT}'\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(ferry_opts_str(o, "key", &s), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(s, "opt-secret-99");
    CU_ASSERT_EQUAL(ferry_opts_uint(o, "key", 0, 10, &v), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(!errs_mention(&errs, "opt-secret"));

    unsetenv("FERRY_T_OPT");
    CU_ASSERT_PTR_NULL(opts_of("    key: '${env:FERRY_T_OPT}'\n"));
    CU_ASSERT(errs_have(&errs, 5, 10, "listeners[0]: key: ${env:FERRY_T_OPT} is not set"));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "str reads a scalar and reports absent", test_str_reads_a_scalar_and_reports_absent },
        { "str on a list is an error at the key", test_str_on_a_list_is_an_error_at_the_key },
        { "strlist takes a list or a single value", test_strlist_takes_a_list_or_a_single_value },
        { "uint checks range and digits", test_uint_checks_range_and_digits },
        { "unused key reported with suggestion from asked keys",
          test_unused_key_reported_with_suggestion_from_asked_keys },
        { "error goes to the list set for it", test_error_goes_to_the_list_set_for_it },
        { "options expand secret references", test_options_expand_secret_references },
        { NULL, NULL }
    };
    int rc = cu_run("opts", tests);

    ferry_conf_free(conf);
    return rc;
}
