/*
 * k8s_test.c: `ferry store export --k8s-services` (core/store/store-k8s.c): Service
 * names made of destination names, clashes, the transparent listener's port, which
 * destinations get a Service, the options' checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "cu.h"
#include "store/store-cli-int.h"

static struct ferry_conf *conf;        /* forward listener first, then the transparent one */
static struct ferry_conf *forward_only;

static struct ferry_conf *
load(const char *text)
{
    struct ferry_errlist errs = {0};
    struct ferry_conf   *c = NULL;

    if (ferry_conf_load_string(text, "gw.yaml", &c, &errs) != FERRY_OK)
        ferry_errlist_print(&errs, stderr, false);
    return c;
}

static struct store_entry
entry(const char *tenant, const char *name, const char *type)
{
    struct store_entry e = {0};
    char               key[256];

    snprintf(key, sizeof(key), "/ferry/destinations/%s/%s", tenant, name);
    e.key = strdup(key);
    e.tenant = strdup(tenant);
    e.name = strdup(name);
    e.props = json_pack("{s:s,s:s}", "Name", name, "Type", type);
    return e;
}

static void
entries_fini(struct store_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].key);
        free(e[i].tenant);
        free(e[i].name);
        json_decref(e[i].props);
    }
}

/* store_k8s_print into a string (owned by the caller); its exit code in *rc. */
static char *
print(const struct ferry_conf *c, const struct store_entry *e, size_t n,
      const struct store_k8s_opts *o, int *rc)
{
    char  *text = NULL;
    size_t len = 0;
    FILE  *fp = open_memstream(&text, &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    *rc = store_k8s_print(c, e, n, o, fp);
    fclose(fp);
    return text;
}

static void
test_names_ports_selector_and_http_only(void)
{
    struct store_entry    e[] = {
        entry("acme", "billing", "HTTP"), entry("beta", "Shop_API", "HTTP"),
        entry("acme", "9.Lives", "HTTP"), entry("acme", "erp", "TCP"),
    };
    struct store_k8s_opts o = { .port = 80, .ns = "apps" };
    int                   rc;
    char                 *out = print(conf, e, 4, &o, &rc);

    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  name: billing\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  name: shop-api\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  name: lives\n"));   /* starts with a letter */
    CU_ASSERT_PTR_NULL(strstr(out, "name: erp"));             /* TCP: no Service */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ferry.io/destination: \"Shop_API\"\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  namespace: apps\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  selector:\n    app.kubernetes.io/name: ferry\n"
                                       "    app.kubernetes.io/component: gateway\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "    app.kubernetes.io/component: destination\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "      port: 80\n      targetPort: 8080\n"));
    free(out);
    entries_fini(e, 4);
}

static void
test_options_replace_selector_and_ports(void)
{
    struct store_entry    e[] = { entry("acme", "billing", "HTTP") };
    struct store_k8s_opts o = { .port = 8000, .target_port = 9999,
                                .selector = { "app=gw", "tier=edge" }, .nselectors = 2 };
    int                   rc;
    char                 *out = print(forward_only, e, 1, &o, &rc);

    CU_ASSERT_EQUAL(rc, 0);     /* --target-port: no transparent listener needed */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "    \"app\": \"gw\"\n    \"tier\": \"edge\"\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "component: gateway"));
    CU_ASSERT_PTR_NULL(strstr(out, "namespace"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "      port: 8000\n      targetPort: 9999\n"));
    free(out);
    entries_fini(e, 1);
}

static void
test_clash_prints_nothing(void)
{
    struct store_entry    e[] = { entry("acme", "Shop.API", "HTTP"),
                                  entry("beta", "shop_api", "HTTP") };
    struct store_k8s_opts o = { .port = 80 };
    int                   rc;
    char                 *out = print(conf, e, 2, &o, &rc);

    CU_ASSERT_EQUAL(rc, STORE_EXIT_FAIL);
    CU_ASSERT_STRING_EQUAL(out, "");
    free(out);
    entries_fini(e, 2);
}

static void
test_no_transparent_listener_is_a_config_error(void)
{
    struct store_entry    e[] = { entry("acme", "billing", "HTTP") };
    struct store_k8s_opts o = { .port = 80 };
    int                   rc;
    char                 *out = print(forward_only, e, 1, &o, &rc);

    CU_ASSERT_EQUAL(rc, STORE_EXIT_CONFIG);
    CU_ASSERT_STRING_EQUAL(out, "");
    free(out);
    entries_fini(e, 1);
}

static void
test_option_checks(void)
{
    CU_ASSERT_PTR_NULL(store_k8s_check_namespace("apps-1"));
    CU_ASSERT_PTR_NOT_NULL(store_k8s_check_namespace("Apps"));
    CU_ASSERT_PTR_NOT_NULL(store_k8s_check_namespace("-a"));
    CU_ASSERT_PTR_NOT_NULL(store_k8s_check_namespace(""));
    CU_ASSERT_PTR_NULL(store_k8s_check_selector("app.kubernetes.io/component=gateway"));
    CU_ASSERT_PTR_NULL(store_k8s_check_selector("app="));
    CU_ASSERT_PTR_NOT_NULL(store_k8s_check_selector("app"));
    CU_ASSERT_PTR_NOT_NULL(store_k8s_check_selector("=x"));
    CU_ASSERT_PTR_NOT_NULL(store_k8s_check_selector("a=\"x\"\ny: z"));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "Service names, ports, selector; HTTP destinations only",
          test_names_ports_selector_and_http_only },
        { "options replace selector and ports", test_options_replace_selector_and_ports },
        { "a clash of two names prints nothing", test_clash_prints_nothing },
        { "no transparent listener is a config error",
          test_no_transparent_listener_is_a_config_error },
        { "namespace and selector checks", test_option_checks },
        { NULL, NULL }
    };
    int rc;

    /* The http listener bound to one destination is not the shared one either. */
    conf = load("destinations:\n  - { Name: one, Type: HTTP, URL: \"http://one/\" }\n"
                "listeners:\n"
                "  - { name: p, plugin: http, listen: \"*:3128\", mode: forward }\n"
                "  - { name: b, plugin: http, listen: \"*:7000\", destination: one }\n"
                "  - { name: t, plugin: tcp, listen: \"*:7001\", destination: one }\n"
                "  - { name: a, plugin: http, listen: \"*:8080\" }\n");
    forward_only = load("listeners:\n"
                        "  - { name: p, plugin: http, listen: \"*:3128\", mode: forward }\n");
    rc = conf != NULL && forward_only != NULL ? cu_run("k8s", tests) : 1;
    ferry_conf_free(conf);
    ferry_conf_free(forward_only);
    return rc;
}
