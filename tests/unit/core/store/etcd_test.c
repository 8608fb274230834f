/*
 * etcd_test.c: what the store room builds on, without an etcd: the `store:` section of
 * ferry.yaml (core/conf/conf.c), the etcd JSON helpers (core/store/etcd.c: base64 keys
 * and values, int64 revisions written as strings, the range end of a prefix) and the
 * deep copy of a validated destination the store puts into each registry
 * (core/dest/dest.c). A real etcd is driven by tests/integration/store_*.sh.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf/conf.h"
#include "cu.h"
#include "dest/dest-int.h"
#include "store/etcd.h"
#include "../conf/conf-test.h"

static struct ferry_conf   *conf;
static struct ferry_errlist errs;

static void
test_store_section_loads_with_defaults(void)
{
    CU_ASSERT_EQUAL(conf_test_load(
        "tenants: [ { id: acme, token: t } ]\n"
        "store:\n"
        "  etcd:\n"
        "    endpoints: [ \"http://127.0.0.1:2379\", \"https://etcd.example:2379/\" ]\n"
        "    cache: state/snap.json\n", &conf, &errs), FERRY_OK);
    CU_ASSERT_FATAL(conf != NULL && conf->store != NULL);
    CU_ASSERT_EQUAL(conf->store->nendpoints, 2);
    CU_ASSERT_STRING_EQUAL(conf->store->endpoints[0], "http://127.0.0.1:2379");
    CU_ASSERT_STRING_EQUAL(conf->store->prefix, "/ferry");
    CU_ASSERT_PTR_NULL(conf->store->user);
    CU_ASSERT_PTR_NOT_NULL(strstr(conf->store->cache, "state/snap.json"));
    CU_ASSERT_EQUAL(conf->registry->n, 0);
}

static void
test_store_section_errors_point_at_the_value(void)
{
    CU_ASSERT_EQUAL(conf_test_load(
        "store:\n"
        "  etcd:\n"
        "    endpoints: [ \"ftp://h:1\", \"http://h:2/v3\" ]\n"
        "    prefix: ferry/\n"
        "    user: ferry\n", &conf, &errs), FERRY_EINVAL);
    CU_ASSERT_TRUE(errs_have(&errs, 3, 18, "endpoints[0]: want http://host:port"));
    CU_ASSERT_TRUE(errs_have(&errs, 3, 31, "endpoints[1]"));
    CU_ASSERT_TRUE(errs_have(&errs, 4, 13, "prefix: want a key path like /ferry"));
    CU_ASSERT_TRUE(errs_mention(&errs, "user and password go together"));
    CU_ASSERT_EQUAL(conf_test_load("store: { etcd: { prefix: /x } }\n", &conf, &errs),
                    FERRY_EINVAL);
    CU_ASSERT_TRUE(errs_mention(&errs, "endpoints"));
    CU_ASSERT_EQUAL(conf_test_load("store: { redis: {} }\n", &conf, &errs), FERRY_EINVAL);
    CU_ASSERT_TRUE(errs_mention(&errs, "redis"));
}

static void
test_destinations_beside_a_store_name_the_import_command(void)
{
    CU_ASSERT_EQUAL(conf_test_load(
        "store: { etcd: { endpoints: [ \"http://127.0.0.1:2379\" ] } }\n"
        "destinations:\n"
        "  - { Name: a, Type: TCP, Address: \"tcp://h:1\" }\n"
        "destinations_dir: dests\n", &conf, &errs), FERRY_EINVAL);
    CU_ASSERT_TRUE(errs_have(&errs, 3, 0, "ferry store import -c t.yaml t.yaml"));
    CU_ASSERT_TRUE(errs_have(&errs, 4, 0, "destinations live in etcd"));
}

static void
test_a_listener_may_name_a_destination_the_store_will_have(void)
{
    CU_ASSERT_EQUAL(conf_test_load(
        "store: { etcd: { endpoints: [ \"http://127.0.0.1:2379\" ] } }\n"
        "listeners:\n"
        "  - { name: l, plugin: tcp, listen: \"127.0.0.1:1\", destination: later }\n",
        &conf, &errs), FERRY_OK);
    CU_ASSERT_EQUAL(errs.count, 0);
}

static void
test_base64_values_round_trip(void)
{
    json_t *v = etcd_b64s("/ferry/destinations/acme/x");
    size_t  n = 0;
    char   *s;

    CU_ASSERT_STRING_EQUAL(json_string_value(v), "L2ZlcnJ5L2Rlc3RpbmF0aW9ucy9hY21lL3g=");
    s = etcd_unb64(v, 100, &n, false);
    CU_ASSERT_STRING_EQUAL(s, "/ferry/destinations/acme/x");
    CU_ASSERT_EQUAL(n, strlen("/ferry/destinations/acme/x"));
    free(s);
    CU_ASSERT_PTR_NULL(etcd_unb64(v, 10, &n, false));          /* over max */
    json_decref(v);
    v = json_string("not base64!");
    CU_ASSERT_PTR_NULL(etcd_unb64(v, 100, &n, false));
    json_decref(v);
    v = json_integer(3);
    CU_ASSERT_PTR_NULL(etcd_unb64(v, 100, &n, false));
    json_decref(v);
    s = etcd_unb64(NULL, 100, &n, true);                       /* etcd omits "" values */
    CU_ASSERT_STRING_EQUAL(s, "");
    CU_ASSERT_EQUAL(n, 0);
    free(s);
    CU_ASSERT_PTR_NULL(etcd_unb64(NULL, 100, &n, false));
}

static void
test_revisions_read_as_strings_or_numbers(void)
{
    json_t *o = json_pack("{s:s, s:i, s:s, s:b}", "a", "9007199254740993", "b", 42, "c", "12x",
                          "d", 1);

    CU_ASSERT_EQUAL(etcd_int(o, "a", -1), 9007199254740993LL);
    CU_ASSERT_EQUAL(etcd_int(o, "b", -1), 42);
    CU_ASSERT_EQUAL(etcd_int(o, "c", -1), -1);
    CU_ASSERT_EQUAL(etcd_int(o, "d", -1), -1);
    CU_ASSERT_EQUAL(etcd_int(o, "missing", 7), 7);
    CU_ASSERT_EQUAL(etcd_int(NULL, "a", 5), 5);
    json_decref(o);
}

static void
test_prefix_end_is_the_next_key(void)
{
    json_t *v = etcd_prefix_end("/ferry/");
    size_t  n;
    char   *s = etcd_unb64(v, 100, &n, false);

    CU_ASSERT_STRING_EQUAL(s, "/ferry0");                  /* '/' + 1 */
    free(s);
    json_decref(v);
    v = etcd_prefix_end("a\xff");
    s = etcd_unb64(v, 100, &n, false);
    CU_ASSERT_STRING_EQUAL(s, "b");                        /* 0xff carries */
    free(s);
    json_decref(v);
}

static void
test_a_copied_destination_is_independent_and_equal(void)
{
    static const char *const tenants[] = { "acme" };
    struct ferry_errlist     e = { 0 };
    struct ferry_dest_env    env = { tenants, 1, &e, NULL };
    struct ferry_prop       *p = calloc(4, sizeof(*p));
    struct ferry_dest        d, c;

    p[0].key = strdup("Name");     p[0].value = strdup("billing");
    p[1].key = strdup("Type");     p[1].value = strdup("HTTP");
    p[2].key = strdup("URL");      p[2].value = strdup("https://h.example:8443/api");
    p[3].key = strdup("Password"); p[3].value = strdup("s3cret");
    CU_ASSERT_FATAL(ferry_dest_init(&d, p, 4, "etcd:/k", NULL, 0, 0, &env) == FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_dest_copy(&c, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(c.name, "billing");
    CU_ASSERT_STRING_EQUAL(c.tenant, "acme");
    CU_ASSERT_STRING_EQUAL(c.host, "h.example");
    CU_ASSERT_EQUAL(c.port, 8443);
    CU_ASSERT_STRING_EQUAL(c.path, "/api");
    CU_ASSERT_EQUAL(c.nprops, 4);
    CU_ASSERT_TRUE(c.props[3].secret);
    CU_ASSERT_PTR_NOT_EQUAL(c.props[3].value, d.props[3].value);
    ferry_dest_fini(&d);                        /* the copy outlives the original */
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop(&c, "Password"), "s3cret");
    CU_ASSERT_STRING_EQUAL(c.file, "etcd:/k");
    ferry_dest_fini(&c);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "store section loads with defaults", test_store_section_loads_with_defaults },
        { "store section errors point at the value",
          test_store_section_errors_point_at_the_value },
        { "destinations beside a store name the import command",
          test_destinations_beside_a_store_name_the_import_command },
        { "a listener may name a destination the store will have",
          test_a_listener_may_name_a_destination_the_store_will_have },
        { "base64 values round trip", test_base64_values_round_trip },
        { "revisions read as strings or numbers", test_revisions_read_as_strings_or_numbers },
        { "prefix end is the next key", test_prefix_end_is_the_next_key },
        { "a copied destination is independent and equal",
          test_a_copied_destination_is_independent_and_equal },
        { NULL, NULL }
    };
    int rc = cu_run("store", tests);

    ferry_conf_free(conf);
    return rc;
}
