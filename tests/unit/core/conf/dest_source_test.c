/*
 * dest_source_test.c: destinations from a SOURCE other than the configuration
 * (core/conf/conf-dest-source.c, what `ferry store import` reads): a directory, a
 * gateway configuration's destinations: and destinations_dir, validated with the
 * target configuration's tenants; all or nothing.
 */
#include "core/conf/conf-test.h"

#include "conf/dest-source.h"
#include "cu.h"
#include "dest/dest-int.h"

static struct ferry_conf *one_tenant, *two_tenants;

/* Before the suite runs (no CUnit assertions yet): NULL if it does not load. */
static struct ferry_conf *
target(const char *text)
{
    struct ferry_errlist errs = {0};
    struct ferry_conf   *c = NULL;

    if (ferry_conf_load_string(text, "target.yaml", &c, &errs) != FERRY_OK)
        ferry_errlist_print(&errs, stderr, false);
    return c;
}

static void
test_directory_with_the_only_tenant(void)
{
    struct ferry_errlist   errs = {0}, warnings = {0};
    struct ferry_registry *reg = NULL;
    char                  *dir = tmpdir_new();
    const struct ferry_dest *d;

    CU_ASSERT_FATAL(dir != NULL);
    CU_ASSERT(file_write(dir, "a.yaml", "Name: a\nType: HTTP\nURL: http://a.example/\n"));
    CU_ASSERT(file_write(dir, "b.yml", "Name: b\nType: TCP\nAddress: tcp://b:1\n"));
    CU_ASSERT(file_write(dir, "notes.txt", "not a destination\n"));
    CU_ASSERT_EQUAL(ferry_conf_dests_from(dir, one_tenant, &reg, &errs, &warnings), FERRY_OK);
    errs_dump(&errs);
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(reg->n, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = ferry_registry_find(reg, "a"));
    CU_ASSERT_STRING_EQUAL(d->tenant, "acme");     /* the target's only tenant */
    ferry_registry_unref(reg);
    tmpdir_free(dir);
}

static void
test_gateway_config_inline_and_its_dir(void)
{
    struct ferry_errlist   errs = {0}, warnings = {0};
    struct ferry_registry *reg = NULL;
    char                  *dir = tmpdir_new(), path[1024];

    CU_ASSERT_FATAL(dir != NULL);
    CU_ASSERT(mkdir_in(dir, "dests"));
    CU_ASSERT(file_write(dir, "dests/x.yaml", "Name: x\nType: HTTP\nURL: http://x/\n"
                                              "tenant: beta\n"));
    /* Its other sections are not read: a listener on a plugin that does not exist and
     * a tunnel whose files are missing are no business of an import. */
    CU_ASSERT(file_write(dir, "old.yaml",
                         "tunnel: { listen: 127.0.0.1:1, cert: nope.crt, key: nope.key }\n"
                         "destinations_dir: dests\n"
                         "destinations:\n"
                         "  - { Name: y, Type: HTTP, URL: \"http://y/\", tenant: acme }\n"
                         "listeners:\n  - { name: l, plugin: nosuch, listen: 127.0.0.1:1 }\n"));
    snprintf(path, sizeof(path), "%s/old.yaml", dir);
    CU_ASSERT_EQUAL(ferry_conf_dests_from(path, two_tenants, &reg, &errs, &warnings), FERRY_OK);
    errs_dump(&errs);
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(reg->n, 2);
    CU_ASSERT_PTR_NOT_NULL(ferry_registry_find(reg, "x"));
    CU_ASSERT_PTR_NOT_NULL(ferry_registry_find(reg, "y"));
    ferry_registry_unref(reg);
    tmpdir_free(dir);
}

static void
test_invalid_destination_fails_all_with_position(void)
{
    struct ferry_errlist   errs = {0}, warnings = {0};
    struct ferry_registry *reg = NULL;
    char                  *dir = tmpdir_new();

    CU_ASSERT_FATAL(dir != NULL);
    CU_ASSERT(file_write(dir, "good.yaml", "Name: good\nType: HTTP\nURL: http://g/\n"
                                           "tenant: acme\n"));
    /* The target's tenants decide: beta is unknown to one_tenant. */
    CU_ASSERT(file_write(dir, "bad.yaml", "Name: bad\nType: HTTP\nURL: http://b/\n"
                                          "tenant: beta\n"));
    CU_ASSERT_EQUAL(ferry_conf_dests_from(dir, one_tenant, &reg, &errs, &warnings),
                    FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(reg);
    CU_ASSERT(errs_have(&errs, 4, 1, "unknown tenant 'beta'"));
    CU_ASSERT(errs.count == 1 && strstr(errs.items[0].file, "bad.yaml") != NULL);
    tmpdir_free(dir);
}

static void
test_several_tenants_need_tenant(void)
{
    struct ferry_errlist   errs = {0}, warnings = {0};
    struct ferry_registry *reg = NULL;
    char                  *dir = tmpdir_new();

    CU_ASSERT_FATAL(dir != NULL);
    CU_ASSERT(file_write(dir, "a.yaml", "Name: a\nType: HTTP\nURL: http://a/\n"));
    CU_ASSERT_EQUAL(ferry_conf_dests_from(dir, two_tenants, &reg, &errs, &warnings),
                    FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(reg);
    CU_ASSERT(errs_mention(&errs, "missing 'tenant'"));
    tmpdir_free(dir);
}

static void
test_config_without_destinations_and_missing_source(void)
{
    struct ferry_errlist   errs = {0}, warnings = {0};
    struct ferry_registry *reg = NULL;
    char                  *dir = tmpdir_new(), path[1024];

    CU_ASSERT_FATAL(dir != NULL);
    CU_ASSERT(file_write(dir, "empty.yaml", "workers: 1\n"));
    snprintf(path, sizeof(path), "%s/empty.yaml", dir);
    CU_ASSERT_EQUAL(ferry_conf_dests_from(path, one_tenant, &reg, &errs, &warnings),
                    FERRY_EINVAL);
    CU_ASSERT(errs_mention(&errs, "no destinations: and no destinations_dir:"));

    memset(&errs, 0, sizeof(errs));
    snprintf(path, sizeof(path), "%s/absent", dir);
    CU_ASSERT_EQUAL(ferry_conf_dests_from(path, one_tenant, &reg, &errs, &warnings),
                    FERRY_EINVAL);
    CU_ASSERT(errs.count == 1 && strstr(errs.items[0].file, "absent") != NULL);
    CU_ASSERT_PTR_NULL(reg);
    tmpdir_free(dir);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "a directory, with the target's only tenant", test_directory_with_the_only_tenant },
        { "a gateway config: inline and its destinations_dir, nothing else",
          test_gateway_config_inline_and_its_dir },
        { "one invalid destination fails all, at its position",
          test_invalid_destination_fails_all_with_position },
        { "several tenants: tenant is required", test_several_tenants_need_tenant },
        { "a config without destinations; a missing source",
          test_config_without_destinations_and_missing_source },
        { NULL, NULL }
    };
    int rc;

    one_tenant = target("tenants:\n  - { id: acme, token: t1 }\n");
    two_tenants = target("tenants:\n  - { id: acme, token: t1 }\n  - { id: beta, token: t2 }\n");
    rc = one_tenant != NULL && two_tenants != NULL ? cu_run("dest_source", tests) : 1;
    ferry_conf_free(one_tenant);
    ferry_conf_free(two_tenants);
    return rc;
}
