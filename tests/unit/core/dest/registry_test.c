/*
 * registry_test.c: the destination registry (core/dest/registry.c) built directly
 * from property lists, as the admin API will: lookup by name, duplicates, reference
 * counting; and the property tables (core/dest/dest-props.c).
 */
#include <stdlib.h>
#include <string.h>

#include <ferry/dest.h>

#include "conf/conf.h"
#include "cu.h"
#include "dest/dest-int.h"

static struct ferry_errlist errs, warns;

/* Properties from "key=value" strings (NULL-terminated), malloc'ed as init wants. */
static struct ferry_prop *
props_of(const char *const *kv, size_t *n)
{
    struct ferry_prop *p;

    for (*n = 0; kv[*n] != NULL; (*n)++)
        ;
    p = calloc(*n, sizeof(*p));
    for (size_t i = 0; i < *n; i++) {
        const char *eq = strchr(kv[i], '=');

        p[i].key = strndup(kv[i], (size_t)(eq - kv[i]));
        p[i].value = strdup(eq + 1);
        p[i].line = (int)i + 1;
        p[i].col = 3;
    }
    return p;
}

static int
init_one(struct ferry_dest *d, const char *const *kv, const char *dir)
{
    static const char *const tenants[] = { "acme" };
    struct ferry_dest_env    env = { tenants, 1, &errs, &warns };
    size_t                   n;
    struct ferry_prop       *p = props_of(kv, &n);

    return ferry_dest_init(d, p, n, "api", dir, 1, 1, &env);
}

static struct ferry_registry *
registry_of(const char *const *names, size_t n)
{
    struct ferry_dest     *dests = calloc(n, sizeof(*dests));
    struct ferry_registry *r = NULL;

    for (size_t i = 0; i < n; i++) {
        char        name[64];
        const char *kv[] = { name, "Type=TCP", "Address=tcp://h:1", NULL };

        snprintf(name, sizeof(name), "Name=%s", names[i]);
        CU_ASSERT_EQUAL(init_one(&dests[i], kv, NULL), FERRY_OK);
    }
    CU_ASSERT_EQUAL(ferry_registry_new(dests, n, &r, &errs), FERRY_OK);
    return r;
}

static void
test_find_by_name_in_an_unsorted_input(void)
{
    static const char *const names[] = { "zeta", "alpha", "mid", "beta", "omega", "a" };
    struct ferry_registry   *r;

    memset(&errs, 0, sizeof(errs));
    r = registry_of(names, 6);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->n, 6);
    for (size_t i = 0; i < 6; i++) {
        const struct ferry_dest *d = ferry_registry_find(r, names[i]);

        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        CU_ASSERT_STRING_EQUAL(ferry_dest_name(d), names[i]);
    }
    for (size_t i = 1; i < r->n; i++)
        CU_ASSERT(strcmp(r->dests[i - 1].name, r->dests[i].name) < 0);
    CU_ASSERT_PTR_NULL(ferry_registry_find(r, "Alpha"));
    CU_ASSERT_PTR_NULL(ferry_registry_find(r, "nope"));
    CU_ASSERT_PTR_NULL(ferry_registry_find(r, NULL));
    CU_ASSERT_PTR_NULL(ferry_registry_find(NULL, "alpha"));
    CU_ASSERT_EQUAL(errs.count, 0);
    ferry_registry_unref(r);
}

static void
test_empty_registry_finds_nothing(void)
{
    struct ferry_registry *r = NULL;

    CU_ASSERT_EQUAL(ferry_registry_new(NULL, 0, &r, &errs), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->n, 0);
    CU_ASSERT_PTR_NULL(ferry_registry_find(r, "x"));
    ferry_registry_unref(r);
}

static void
test_reference_counting_keeps_the_snapshot_alive(void)
{
    static const char *const names[] = { "erp" };
    struct ferry_registry   *r = registry_of(names, 1), *held;
    const struct ferry_dest *d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(atomic_load(&r->refs), 1);
    held = ferry_registry_ref(r);                  /* a connection takes the snapshot */
    CU_ASSERT_PTR_EQUAL(held, r);
    CU_ASSERT_EQUAL(atomic_load(&r->refs), 2);
    d = ferry_registry_find(held, "erp");
    ferry_registry_unref(r);                       /* a reload drops the old one */
    CU_ASSERT_EQUAL(atomic_load(&held->refs), 1);
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "h"); /* still valid (ASan would object) */
    ferry_registry_unref(held);
    CU_ASSERT_PTR_NULL(ferry_registry_ref(NULL));
    ferry_registry_unref(NULL);
}

static void
test_duplicate_names_are_refused_naming_the_first(void)
{
    struct ferry_dest     *dests = calloc(3, sizeof(*dests));
    struct ferry_registry *r = (struct ferry_registry *)1;
    const char *const      a[] = { "Name=dup", "Type=MAIL", NULL };
    const char *const      b[] = { "Name=other", "Type=MAIL", NULL };

    memset(&errs, 0, sizeof(errs));
    CU_ASSERT_EQUAL(init_one(&dests[0], a, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(init_one(&dests[1], b, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(init_one(&dests[2], a, NULL), FERRY_OK);
    dests[2].line = 40;
    CU_ASSERT_EQUAL(ferry_registry_new(dests, 3, &r, &errs), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    CU_ASSERT_EQUAL(errs.items[0].line, 40);
    CU_ASSERT_STRING_EQUAL(errs.items[0].msg, "destination 'dup' is defined twice "
                           "(first at api:1:1)");
}

static void
test_init_without_a_directory_refuses_relative_paths(void)
{
    struct ferry_dest d;
    const char *const kv[] = { "Name=x", "Type=HTTP", "URL=https://h",
                               "TrustStoreLocation=tls/ca.pem", NULL };

    memset(&errs, 0, sizeof(errs));
    CU_ASSERT_EQUAL(init_one(&d, kv, NULL), FERRY_EINVAL);
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[0].msg, "TrustStoreLocation: relative path needs "
                                  "a defining file"));
    CU_ASSERT_EQUAL(errs.items[0].line, 4);
    CU_ASSERT_EQUAL(errs.items[0].col, 3);
    CU_ASSERT_STRING_EQUAL(errs.items[0].file, "api");
    ferry_dest_fini(&d);
}

static void
test_accessors_return_the_derived_fields(void)
{
    struct ferry_dest d;
    const char *const kv[] = { "Name=erp", "Type=RFC", "jco.client.ashost=erp.internal",
                               "jco.client.sysnr=01", "ProxyType=OnPremise",
                               "CloudConnectorLocationId=berlin", "jco.client.passwd=pw", NULL };

    memset(&errs, 0, sizeof(errs));
    CU_ASSERT_EQUAL_FATAL(init_one(&d, kv, "."), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(ferry_dest_name(&d), "erp");
    CU_ASSERT_EQUAL(ferry_dest_type(&d), FERRY_DEST_RFC);
    CU_ASSERT_EQUAL(ferry_dest_proxy_type(&d), FERRY_PROXY_ONPREMISE);
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(&d), "erp.internal");
    CU_ASSERT_EQUAL(ferry_dest_port(&d), 3301);
    CU_ASSERT_STRING_EQUAL(ferry_dest_tenant(&d), "acme");
    CU_ASSERT_STRING_EQUAL(ferry_dest_location(&d), "berlin");
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop(&d, "jco.client.passwd"), "pw");
    CU_ASSERT_TRUE(d.props[6].secret);
    CU_ASSERT_FALSE(d.props[2].secret);
    CU_ASSERT_PTR_NULL(ferry_dest_prop(&d, "URL"));
    ferry_dest_fini(&d);
}

static void
test_secret_property_names(void)
{
    static const char *const yes[] = {
        "Password", "clientSecret", "tokenServicePassword", "KeyStorePassword",
        "TrustStorePassword", "ldap.password", "jco.client.passwd", "mail.password",
        "URL.headers.Authorization", "URL.headers.authorization",
        "tokenServiceURL.headers.Authorization",
    };
    static const char *const no[] = {
        "User", "clientId", "password", "URL", "URL.headers.X-Client", "Name", "tenant",
    };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        CU_ASSERT_TRUE(ferry_dest_prop_is_secret(yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        CU_ASSERT_FALSE(ferry_dest_prop_is_secret(no[i]));
}

static void
test_property_suggestions(void)
{
    char buf[128];

    CU_ASSERT_PTR_NULL(ferry_dest_prop_suggest("Authentication", buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(ferry_dest_prop_suggest("URL.headers.X-Anything", buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(ferry_dest_prop_suggest("jco.client.my_own", buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(ferry_dest_prop_suggest("tcp.socket.whatever", buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(ferry_dest_prop_suggest("CostCenter", buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(ferry_dest_prop_suggest("Usr", buf, sizeof(buf)));  /* too short */
    CU_ASSERT_PTR_NULL(ferry_dest_prop_suggest("foo.bar", buf, sizeof(buf)));
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop_suggest("Authentification", buf, sizeof(buf)),
                           "Authentication");
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop_suggest("tokenServiceUrl", buf, sizeof(buf)),
                           "tokenServiceURL");
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop_suggest("clientID", buf, sizeof(buf)), "clientId");
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop_suggest("type", buf, sizeof(buf)), "Type");
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop_suggest("jco.client.sysnrr", buf, sizeof(buf)),
                           "jco.client.sysnr");
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop_suggest("URL.querys.a", buf, sizeof(buf)),
                           "URL.queries.a");
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop_suggest("tokenService.bdy.scope", buf, sizeof(buf)),
                           "tokenService.body.scope");
}

/* name, tenant and level ("" subaccount) into d, with tenants acme and beta. */
static int
init_level(struct ferry_dest *d, const char *name, const char *tenant, const char *level)
{
    static const char *const tenants[] = { "acme", "beta" };
    struct ferry_dest_env    env = { tenants, 2, &errs, &warns };
    char                     nm[64], tn[64], lv[64];
    const char              *kv[] = { nm, tn, "Type=TCP", "Address=tcp://h:1", lv, NULL };
    size_t                   n;
    struct ferry_prop       *p;

    snprintf(nm, sizeof(nm), "Name=%s", name);
    snprintf(tn, sizeof(tn), "tenant=%s", tenant);
    snprintf(lv, sizeof(lv), "level=%s", level);
    if (level[0] == '\0')
        kv[4] = NULL;
    p = props_of(kv, &n);
    return ferry_dest_init(d, p, n, "api", NULL, 1, 1, &env);
}

static void
test_levels_instance_first(void)
{
    struct ferry_dest       *dests = calloc(5, sizeof(*dests));
    struct ferry_registry   *r = NULL;
    const struct ferry_dest *d;

    memset(&errs, 0, sizeof(errs));
    CU_ASSERT_EQUAL(init_level(&dests[0], "twin", "acme", ""), FERRY_OK);
    CU_ASSERT_EQUAL(init_level(&dests[1], "b", "acme", "subaccount"), FERRY_OK);
    CU_ASSERT_EQUAL(init_level(&dests[2], "twin", "acme", "instance"), FERRY_OK);
    CU_ASSERT_EQUAL(init_level(&dests[3], "c", "beta", "instance"), FERRY_OK);
    CU_ASSERT_EQUAL(init_level(&dests[4], "a", "acme", ""), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_registry_new(dests, 5, &r, &errs), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = ferry_registry_find(r, "twin"));
    CU_ASSERT_TRUE(d->instance);
    CU_ASSERT_STRING_EQUAL(ferry_dest_level(d), "instance");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = ferry_registry_find_level(r, "twin", false));
    CU_ASSERT_FALSE(d->instance);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = ferry_registry_find_level(r, "twin", true));
    CU_ASSERT_TRUE(d->instance);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = ferry_registry_find(r, "c"));
    CU_ASSERT_TRUE(d->instance);
    CU_ASSERT_PTR_NULL(ferry_registry_find_level(r, "c", false));
    CU_ASSERT_PTR_NOT_NULL_FATAL(d = ferry_registry_find(r, "b"));
    CU_ASSERT_FALSE(d->instance);
    CU_ASSERT_PTR_NULL(ferry_registry_find_level(r, "b", true));
    CU_ASSERT_PTR_NOT_NULL(ferry_registry_find(r, "a"));
    CU_ASSERT_PTR_NULL(ferry_registry_find(r, "tw"));
    ferry_registry_unref(r);
}

static void
test_levels_clashes(void)
{
    struct ferry_dest     *dests = calloc(4, sizeof(*dests));
    struct ferry_registry *r = NULL;
    struct ferry_dest      bad;

    memset(&errs, 0, sizeof(errs));
    CU_ASSERT_EQUAL(init_level(&dests[0], "x", "acme", "instance"), FERRY_OK);
    CU_ASSERT_EQUAL(init_level(&dests[1], "x", "acme", "instance"), FERRY_OK);
    CU_ASSERT_EQUAL(init_level(&dests[2], "y", "acme", ""), FERRY_OK);
    CU_ASSERT_EQUAL(init_level(&dests[3], "y", "beta", "instance"), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_registry_new(dests, 4, &r, &errs), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_EQUAL_FATAL(errs.count, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[0].msg, "'x' is defined twice"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[1].msg, "belongs to tenant 'beta'"));
    memset(&errs, 0, sizeof(errs));
    CU_ASSERT_EQUAL(init_level(&bad, "z", "acme", "Instance"), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[0].msg, "did you mean 'instance'"));
    ferry_dest_fini(&bad);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "find by name in an unsorted input", test_find_by_name_in_an_unsorted_input },
        { "empty registry finds nothing", test_empty_registry_finds_nothing },
        { "reference counting keeps the snapshot alive",
          test_reference_counting_keeps_the_snapshot_alive },
        { "duplicate names are refused, naming the first",
          test_duplicate_names_are_refused_naming_the_first },
        { "init without a directory refuses relative paths",
          test_init_without_a_directory_refuses_relative_paths },
        { "accessors return the derived fields", test_accessors_return_the_derived_fields },
        { "secret property names", test_secret_property_names },
        { "property suggestions", test_property_suggestions },
        { "levels: instance first, one level on demand", test_levels_instance_first },
        { "levels: a name per level, one tenant's", test_levels_clashes },
        { NULL, NULL }
    };

    return cu_run("registry", tests);
}
