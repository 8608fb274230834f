/*
 * conf_test.c: the gateway config loader (core/conf/conf.c, conf-yaml.c, conf-dest.c):
 * schema errors at their exact position, defaults, sections, relative paths.
 */
#include "core/conf/conf-test.h"

#include <ferry/dest.h>
#include <ferry/opts.h>

#include "cu.h"
#include "dest/dest-int.h"

static struct ferry_errlist errs;
static struct ferry_conf   *conf;

static int
load(const char *text)
{
    return conf_test_load(text, &conf, &errs);
}

static void
test_unknown_key_points_at_line_col_and_suggests(void)
{
    CU_ASSERT_EQUAL(load("listeners:\n  - { name: a, plugn: tcp }\n"), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(conf);
    CU_ASSERT_EQUAL_FATAL(errs.count, 2);
    /* listen is missing too, reported at the listener's mapping: first in file order */
    CU_ASSERT(errs_have(&errs, 2, 5, "missing required key 'listen'"));
    CU_ASSERT_STRING_EQUAL(errs.items[1].file, "t.yaml");
    CU_ASSERT_EQUAL(errs.items[1].line, 2);
    CU_ASSERT_EQUAL(errs.items[1].col, 16);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[1].msg,
                                  "listeners[0]: unknown key 'plugn' (did you mean 'plugin'?)"));
}

static void
test_unknown_top_level_key_suggests_closest(void)
{
    CU_ASSERT_EQUAL(load("workers: 2\nwokers: 3\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 2, 1, "unknown key 'wokers' (did you mean 'workers'?)"));
    CU_ASSERT_EQUAL(load("frobnicate: 1\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 1, "unknown key 'frobnicate'"));
    CU_ASSERT(!errs_mention(&errs, "did you mean"));
}

static void
test_unknown_key_in_section_names_the_section(void)
{
    CU_ASSERT_EQUAL(load("log:\n  levle: debug\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 3, "log: unknown key 'levle' (did you mean 'level'?)"));
    CU_ASSERT_EQUAL(load("admin: { listne: 127.0.0.1:9000 }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 10, "admin: unknown key 'listne' (did you mean 'listen'?)"));
}

static void
test_wrong_types_are_errors_at_the_node(void)
{
    CU_ASSERT_EQUAL(load("plugins_dir: { a: b }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 14, "plugins_dir: want a single value, not a mapping"));
    CU_ASSERT_EQUAL(load("drain_timeout_ms: soon\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 19, "drain_timeout_ms: want a whole number from 0 to"));
    CU_ASSERT(errs_have(&errs, 1, 19, "not 'soon'"));
    CU_ASSERT_EQUAL(load("listeners: { name: a }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 12, "listeners: want a list"));
    CU_ASSERT_EQUAL(load("log: [ debug ]\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 6, "log: want a mapping (key: value), not a list"));
    CU_ASSERT_EQUAL(load("listeners:\n  - name: a\n    plugin: tcp\n    listen: 127.0.0.1:1\n"
                         "    max_connections: [1]\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 22, "max_connections: want a single value, not a list"));
    CU_ASSERT_EQUAL(load("- a\n- b\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 1, "want a mapping"));
}

static void
test_missing_required_listener_keys(void)
{
    CU_ASSERT_EQUAL(load("listeners:\n  - name: a\n    listen: 127.0.0.1:1\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 2, 5, "listeners[0]: missing required key 'plugin'"));
    CU_ASSERT_EQUAL(load("listeners:\n  - { plugin: tcp, listen: '127.0.0.1:1' }\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 5, "missing required key 'name'"));
}

static void
test_listener_defaults_and_core_keys(void)
{
    const struct ferry_conf_listener *l;

    CU_ASSERT_EQUAL(load("listeners:\n"
                         "  - { name: a, plugin: tcp, listen: '127.0.0.1:3300' }\n"
                         "  - name: b\n    plugin: socks5\n    listen: '[::1]:20004'\n"
                         "    max_connections: 5\n    idle_timeout_ms: 1000\n"
                         "    connect_timeout_ms: 250\n"), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL_FATAL(conf->nlisteners, 2);
    l = &conf->listeners[0];
    CU_ASSERT_STRING_EQUAL(l->name, "a");
    CU_ASSERT_STRING_EQUAL(l->plugin, "tcp");
    CU_ASSERT_STRING_EQUAL(l->listen, "127.0.0.1:3300");
    CU_ASSERT_EQUAL(l->addr.ss_family, AF_INET);
    CU_ASSERT_EQUAL(l->max_connections, 10000);
    CU_ASSERT_EQUAL(l->idle_timeout_ms, 300000);
    CU_ASSERT_EQUAL(l->connect_timeout_ms, 5000);
    CU_ASSERT_PTR_NULL(l->destination);
    CU_ASSERT_PTR_NULL(l->tenant);
    CU_ASSERT_EQUAL(l->index, 0);
    CU_ASSERT_EQUAL(l->line, 2);
    CU_ASSERT_EQUAL(l->col, 5);
    l = &conf->listeners[1];
    CU_ASSERT_EQUAL(l->addr.ss_family, AF_INET6);
    CU_ASSERT_EQUAL(l->max_connections, 5);
    CU_ASSERT_EQUAL(l->idle_timeout_ms, 1000);
    CU_ASSERT_EQUAL(l->connect_timeout_ms, 250);
    CU_ASSERT_EQUAL(l->index, 1);
}

static void
test_listener_ranges_and_plugin_name_checked(void)
{
    CU_ASSERT_EQUAL(load("listeners:\n"
                         "  - { name: a, plugin: Tcp-1, listen: '127.0.0.1:1' }\n"
                         "  - { name: b, plugin: tcp, listen: '127.0.0.1:2', "
                         "max_connections: 0 }\n"
                         "  - { name: c, plugin: tcp, listen: 'localhost:3' }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 24, "plugin 'Tcp-1': want a plugin name"));
    CU_ASSERT(errs_have(&errs, 3, 69, "max_connections: want a whole number from 1 to 1000000"));
    CU_ASSERT(errs_have(&errs, 4, 37, "listen: 'localhost:3': host must be a numeric"));
}

static void
test_duplicate_listener_name_points_at_second(void)
{
    CU_ASSERT_EQUAL(load("listeners:\n"
                         "  - { name: a, plugin: tcp, listen: '127.0.0.1:1' }\n"
                         "  - { name: a, plugin: tcp, listen: '127.0.0.1:2' }\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 3, 13, "listeners[1]: duplicate listener name 'a' "
                        "(first at line 2)"));
}

static void
test_duplicate_yaml_key_is_an_error(void)
{
    CU_ASSERT_EQUAL(load("workers: 2\nworkers: 3\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 1, "duplicate key 'workers' (first at line 1)"));
}

static void
test_listener_unknown_destination_and_tenant(void)
{
    CU_ASSERT_EQUAL(load("tenants: [ { id: acme, token: t1 } ]\n"
                         "destinations:\n  - { Name: erp, Type: TCP, Address: 'tcp://h:1' }\n"
                         "listeners:\n"
                         "  - { name: a, plugin: tcp, listen: '127.0.0.1:1', destination: erq }\n"
                         "  - { name: b, plugin: tcp, listen: '127.0.0.1:2', tenant: acne }\n"),
                    FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 2);
    CU_ASSERT(errs_have(&errs, 5, 65, "listeners[0]: unknown destination 'erq' "
                        "(did you mean 'erp'?)"));
    CU_ASSERT(errs_have(&errs, 6, 60, "listeners[1]: unknown tenant 'acne'"));
}

static void
test_tenant_max_connections(void)
{
    CU_ASSERT_EQUAL_FATAL(load("tenants:\n  - { id: acme, token: t1, max_connections: 2 }\n"
                               "  - { id: other, token: t2 }\n"), FERRY_OK);
    CU_ASSERT_EQUAL(conf->tenants[0].max_connections, 2);
    CU_ASSERT_EQUAL(conf->tenants[1].max_connections, 0);   /* no bound */
    CU_ASSERT_EQUAL(load("tenants: [ { id: acme, token: t1, max_connections: -1 } ]\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 0, "max_connections"));
}

static void
test_listener_bound_to_known_destination_and_tenant(void)
{
    CU_ASSERT_EQUAL(load("tenants: [ { id: acme, token: t1 } ]\n"
                         "destinations:\n  - { Name: erp, Type: TCP, Address: 'tcp://h:1' }\n"
                         "listeners:\n"
                         "  - { name: a, plugin: tcp, listen: '127.0.0.1:1', destination: erp,"
                         " tenant: acme }\n"), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->listeners[0].destination, "erp");
    CU_ASSERT_STRING_EQUAL(conf->listeners[0].tenant, "acme");
    CU_ASSERT_PTR_NOT_NULL(ferry_registry_find(conf->registry, "erp"));
}

static void
test_listener_naming_an_invalid_destination_adds_no_second_error(void)
{
    CU_ASSERT_EQUAL(load("destinations:\n  - { Name: erp, Type: TCP }\n"
                         "listeners:\n"
                         "  - { name: a, plugin: tcp, listen: '127.0.0.1:1', destination: erp }\n"),
                    FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 2, 5, "missing required property 'Address'"));
}

static void
test_several_errors_are_collected_in_one_pass(void)
{
    CU_ASSERT_EQUAL(load("workers: lots\n"
                         "log: { level: verbose }\n"
                         "admin: { listen: nowhere }\n"
                         "listeners:\n"
                         "  - { name: a, plugin: tcp, listen: '127.0.0.1:99999' }\n"),
                    FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 4);
    CU_ASSERT(errs_have(&errs, 1, 10, "workers: want auto or a number from 1 to 256"));
    CU_ASSERT(errs_have(&errs, 2, 15, "log: level: unknown level 'verbose'"));
    CU_ASSERT(errs_have(&errs, 3, 18, "admin: listen: 'nowhere': want host:port"));
    CU_ASSERT(errs_have(&errs, 5, 37, "port must be 1..65535"));
}

static void
test_errors_are_capped_at_twenty_and_the_rest_counted(void)
{
    char   text[8192];
    size_t n = 0;

    n += (size_t)snprintf(text + n, sizeof(text) - n, "listeners:\n");
    for (int i = 0; i < 25; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "  - { name: l%d, plugin: BAD, listen: '127.0.0.1:%d' }\n", i,
                              i + 1);
    CU_ASSERT_EQUAL(load(text), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, FERRY_ERRLIST_MAX);
    CU_ASSERT_EQUAL(errs.dropped, 5);
    CU_ASSERT(errs_have(&errs, 21, 0, "listeners[19]: plugin 'BAD'"));
}

/* Load text as "t.yaml" for checking: the conf comes back with its errors. */
static int
load_partial(const char *text)
{
    int rc;

    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    conf = NULL;
    rc = ferry_conf_load_string_partial(text, "t.yaml", &conf, &errs);
    errs_dump(&errs);
    return rc;
}

static void
test_partial_load_keeps_listeners_for_their_plugins(void)
{
    /* The case: an error at line 1, and a listener key that only the plugin
     * phase can call unknown. The conf still comes back, with the options. */
    static const char text[] =
        "workrs: 2\n"
        "listeners:\n"
        "  - { name: a, plugin: tcp, listen: '127.0.0.1:1',\n"
        "      destinaton: erp }\n";
    const char *dest;

    CU_ASSERT_EQUAL(load(text), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(conf);                  /* the ordinary load gives nothing */
    CU_ASSERT_EQUAL(load_partial(text), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT(conf->has_errors);
    CU_ASSERT_EQUAL_FATAL(conf->nlisteners, 1);
    CU_ASSERT(conf->listeners[0].opts_checkable);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 1, 1, "unknown key 'workrs' (did you mean 'workers'?)"));
    /* what the plugin phase does: it reads its keys, core calls the rest unknown */
    CU_ASSERT_EQUAL(ferry_opts_str(conf->listeners[0].opts, "mode", &dest), FERRY_ENOTFOUND);
    ferry_opts_check_unused(conf->listeners[0].opts);
    CU_ASSERT_EQUAL_FATAL(errs.count, 2);
    CU_ASSERT_EQUAL(errs.items[1].line, 4);
    CU_ASSERT_EQUAL(errs.items[1].col, 7);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[1].msg, "listeners[0]: unknown key 'destinaton' "
                                  "(did you mean 'destination'?)"));

    /* A clean file loads the same either way. */
    CU_ASSERT_EQUAL(load_partial("workers: 2\n"), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT(!conf->has_errors);
    /* A YAML syntax error leaves nothing to check. */
    CU_ASSERT_EQUAL(load_partial("workers: [\n"), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(conf);
}

static void
test_listener_checks_run_past_a_bad_core_key(void)
{
    /* Each listener has one core key that does not load; every other check still runs
     * (before, the listener stopped at its first error). */
    CU_ASSERT_EQUAL(load_partial("tenants: [ { id: acme, token: t1 } ]\n"
                                 "listeners:\n"
                                 "  - { name: a, plugin: tcp, listen: '127.0.0.1:1' }\n"
                                 "  - { name: a, plugin: TCP, listen: nowhere, tenant: acne,"
                                 " max_connections: 0 }\n"
                                 "  - { name: c, listen: '127.0.0.1:1', destination: erp }\n"),
                    FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT(errs_have(&errs, 4, 13, "listeners[1]: duplicate listener name 'a'"));
    CU_ASSERT(errs_have(&errs, 4, 24, "listeners[1]: plugin 'TCP': want a plugin name"));
    CU_ASSERT(errs_have(&errs, 4, 37, "listeners[1]: listen: 'nowhere'"));
    CU_ASSERT(errs_have(&errs, 4, 54, "listeners[1]: unknown tenant 'acne'"));
    CU_ASSERT(errs_have(&errs, 4, 77, "listeners[1]: max_connections: want a whole number"));
    CU_ASSERT(errs_have(&errs, 5, 5, "listeners[2]: missing required key 'plugin'"));
    CU_ASSERT(errs_have(&errs, 5, 24, "listeners[2]: listen: 127.0.0.1:1 is already listener "
                        "'a''s address (line 3)"));
    CU_ASSERT(errs_have(&errs, 5, 52, "listeners[2]: unknown destination 'erp'"));
    CU_ASSERT_EQUAL(errs.count, 8);
    CU_ASSERT_EQUAL_FATAL(conf->nlisteners, 3);
    CU_ASSERT(conf->listeners[0].opts_checkable);
    CU_ASSERT(!conf->listeners[1].opts_checkable);     /* no plugin name to ask */
    CU_ASSERT(!conf->listeners[2].opts_checkable);
}

static void
test_plugin_not_asked_when_what_it_reads_did_not_load(void)
{
    /* destination: did not load (reported): the tcp plugin would call it missing. */
    unsetenv("FERRY_TEST_UNSET");
    CU_ASSERT_EQUAL(load_partial("listeners:\n"
                                 "  - { name: a, plugin: tcp, listen: '127.0.0.1:1',"
                                 " destination: '${env:FERRY_TEST_UNSET}' }\n"
                                 "  - { name: b, plugin: tcp, listen: '127.0.0.1:2',"
                                 " tenant: [ x ] }\n"),
                    FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(errs.count, 2);
    CU_ASSERT(errs_have(&errs, 2, 65, "${env:FERRY_TEST_UNSET}"));
    CU_ASSERT(errs_have(&errs, 3, 60, "tenant: want a single value, not a list"));
    CU_ASSERT_EQUAL_FATAL(conf->nlisteners, 2);
    CU_ASSERT(!conf->listeners[0].opts_checkable);
    CU_ASSERT(!conf->listeners[1].opts_checkable);
}

static void
test_partial_load_keeps_the_valid_destinations(void)
{
    CU_ASSERT_EQUAL(load_partial("destinations:\n"
                                 "  - { Name: bad, Type: TCP }\n"
                                 "  - { Name: good, Type: TCP, Address: 'tcp://h:1' }\n"),
                    FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT(errs_have(&errs, 2, 5, "missing required property 'Address'"));
    CU_ASSERT_PTR_NOT_NULL(ferry_registry_find(conf->registry, "good"));
    CU_ASSERT_PTR_NULL(ferry_registry_find(conf->registry, "bad"));
}

static void
test_tenant_checks_run_past_a_bad_key(void)
{
    unsetenv("FERRY_TEST_UNSET");
    CU_ASSERT_EQUAL(load_partial("tenants:\n"
                                 "  - { id: acme, token: t1 }\n"
                                 "  - { id: acme, token: '${env:FERRY_TEST_UNSET}' }\n"
                                 "  - { id: 'b c', token: t1, tokn: x }\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 11, "tenants[1]: tenant 'acme' is defined twice"));
    CU_ASSERT(errs_have(&errs, 3, 24, "${env:FERRY_TEST_UNSET}"));
    CU_ASSERT(errs_have(&errs, 4, 11, "tenants[2]: id 'b c': use letters"));
    CU_ASSERT(errs_have(&errs, 4, 25, "tenants[2]: token is the same as tenants[0]'s"));
    CU_ASSERT(errs_have(&errs, 4, 29, "tenants[2]: unknown key 'tokn'"));
    CU_ASSERT_EQUAL(errs.count, 5);
}

static void
test_log_and_tunnel_check_what_loaded(void)
{
    /* log: a bad access does not hide a bad level; tunnel: a refused keepalive_ms is not
     * compared as if the default had been written, and the files are still checked. */
    CU_ASSERT_EQUAL(load_partial("log: { level: loud, access: [ x ] }\n"
                                 "tunnel:\n  listen: '127.0.0.1:8443'\n  cert: no/such.crt\n"
                                 "  key: no/such.key\n  keepalive_ms: soon\n"
                                 "  dead_peer_timeout_ms: 5000\n  clientca: x\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 15, "log: level: unknown level 'loud'"));
    CU_ASSERT(errs_have(&errs, 1, 29, "log: access: want a single value"));
    CU_ASSERT(errs_have(&errs, 4, 9, "tunnel: cert: cannot read"));
    CU_ASSERT(errs_have(&errs, 5, 8, "tunnel: key: cannot read"));
    CU_ASSERT(errs_have(&errs, 6, 17, "tunnel: keepalive_ms: want a whole number"));
    CU_ASSERT(errs_have(&errs, 8, 3, "tunnel: unknown key 'clientca' (did you mean "
                        "'client_ca'?)"));
    CU_ASSERT(!errs_mention(&errs, "must be longer"));
    CU_ASSERT_EQUAL(errs.count, 6);
}

static void
test_yaml_syntax_error_has_position(void)
{
    CU_ASSERT_EQUAL(load("workers: 2\nlog: { level: info\nadmin: off\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[0].msg, "YAML syntax error"));
    CU_ASSERT_STRING_EQUAL(errs.items[0].file, "t.yaml");
    CU_ASSERT_EQUAL(errs.items[0].line, 3);
    CU_ASSERT_EQUAL(errs.items[0].col, 6);
    CU_ASSERT_EQUAL(load("a: [1, 2\n"), FERRY_EINVAL);
    CU_ASSERT(errs.items[0].line >= 1);
    CU_ASSERT_EQUAL(load("workers: 1\n---\nworkers: 2\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 1, "a second YAML document"));
}

static void
test_workers_auto_number_and_bad(void)
{
    CU_ASSERT_EQUAL(load("workers: auto\n"), FERRY_OK);
    CU_ASSERT_EQUAL(conf->workers, 0);
    CU_ASSERT_EQUAL(load("workers: 8\n"), FERRY_OK);
    CU_ASSERT_EQUAL(conf->workers, 8);
    CU_ASSERT_EQUAL(load("workers: 256\n"), FERRY_OK);
    CU_ASSERT_EQUAL(conf->workers, 256);
    CU_ASSERT_EQUAL(load("workers: 0\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 10, "workers: want auto or a number from 1 to 256"));
    CU_ASSERT_EQUAL(load("workers: 257\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(load("workers: -1\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(load("workers: { n: 1 }\n"), FERRY_EINVAL);
}

static void
test_defaults_for_an_empty_file(void)
{
    CU_ASSERT_EQUAL(load(""), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->path, "t.yaml");
    CU_ASSERT_STRING_EQUAL(conf->dir, ".");
    CU_ASSERT_EQUAL(conf->workers, 0);
    CU_ASSERT_EQUAL(conf->log_level, FERRY_INFO);
    CU_ASSERT_STRING_EQUAL(conf->access_log, "stdout");
    CU_ASSERT_STRING_EQUAL(conf->admin_listen, "127.0.0.1:9901");
    CU_ASSERT_EQUAL(conf->drain_timeout_ms, 30000);
    CU_ASSERT_PTR_NULL(conf->plugins_dir);
    CU_ASSERT_PTR_NULL(conf->tunnel.listen);
    CU_ASSERT_PTR_NOT_NULL(conf->registry);
    CU_ASSERT_EQUAL(conf->registry->n, 0);
    CU_ASSERT_EQUAL(conf->nlisteners, 0);
    CU_ASSERT_EQUAL(conf->ntenants, 0);
    CU_ASSERT_EQUAL(conf->warnings.count, 0);
}

static void
test_admin_off_and_listen(void)
{
    CU_ASSERT_EQUAL(load("admin: off\n"), FERRY_OK);
    CU_ASSERT_PTR_NULL(conf->admin_listen);
    CU_ASSERT_EQUAL(load("admin: { listen: '127.0.0.1:9999' }\n"), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(conf->admin_listen, "127.0.0.1:9999");
    CU_ASSERT_EQUAL(load("admin: on\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 8, "admin: want off or { listen: host:port }"));
    CU_ASSERT_EQUAL(load("admin: {}\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 8, "admin: missing required key 'listen'"));
}

static void
test_log_level_and_access(void)
{
    CU_ASSERT_EQUAL(load("log: { level: debug, access: 'off' }\n"), FERRY_OK);
    CU_ASSERT_EQUAL(conf->log_level, FERRY_DEBUG);
    CU_ASSERT_STRING_EQUAL(conf->access_log, "off");
    CU_ASSERT_EQUAL(load("log: { level: error, access: stdout }\n"), FERRY_OK);
    CU_ASSERT_EQUAL(conf->log_level, FERRY_ERROR);
    CU_ASSERT_STRING_EQUAL(conf->access_log, "stdout");
    CU_ASSERT_EQUAL(load("log: { level: wrn }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 15, "unknown level 'wrn' (did you mean 'warn'?)"));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_string("log: { access: logs/access.jsonl }\n",
                                           "/etc/ferry/ferry.yaml", &conf, &errs), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(conf->access_log, "/etc/ferry/logs/access.jsonl");
    CU_ASSERT_STRING_EQUAL(conf->dir, "/etc/ferry");
}

static void
test_empty_sections_mean_defaults(void)
{
    CU_ASSERT_EQUAL(load("workers:\nadmin: ~\ntenants:\ndestinations: null\nlisteners:\n"),
                    FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(conf->workers, 0);
    CU_ASSERT_STRING_EQUAL(conf->admin_listen, "127.0.0.1:9901");
    CU_ASSERT_EQUAL(conf->nlisteners, 0);
    CU_ASSERT_EQUAL(load("listeners: ''\n"), FERRY_EINVAL);      /* quoted: not null */
    CU_ASSERT(errs_have(&errs, 1, 12, "listeners: want a list"));
}

static void
test_without_an_errlist_plugin_errors_are_dropped_safely(void)
{
    struct ferry_conf *c = NULL;

    CU_ASSERT_EQUAL(ferry_conf_load_string("listeners:\n  - { name: a, plugin: tcp, "
                                           "listen: '127.0.0.1:1', mode: x }\n", "t.yaml",
                                           &c, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(ferry_opts_error(c->listeners[0].opts, "mode", "bad"), FERRY_EINVAL);
    ferry_opts_check_unused(c->listeners[0].opts);
    ferry_conf_free(c);
    CU_ASSERT_EQUAL(ferry_conf_load_string("workers: 0\n", "t.yaml", &c, NULL), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(c);
}

static void
test_drain_timeout(void)
{
    CU_ASSERT_EQUAL(load("drain_timeout_ms: 1500\n"), FERRY_OK);
    CU_ASSERT_EQUAL(conf->drain_timeout_ms, 1500);
}

/* tenants[].jwt: every key, the default leeway, a path resolved against the file's
 * directory; a tenant with jwt: needs no token; the errors point at the value. */
static void
test_tenant_jwt_parsed_and_checked(void)
{
    const struct ferry_conf_tenant *t;

    CU_ASSERT_EQUAL_FATAL(load("tenants:\n"
                               "  - id: acme\n"
                               "    jwt:\n"
                               "      issuer: https://idp.acme.example\n"
                               "      audience: ferry\n"
                               "      jwks: keys/acme.json\n"
                               "  - id: beta\n"
                               "    token: t2\n"
                               "    jwt: { issuer: i, audience: a, leeway_s: 0,"
                               " jwks_url: 'https://idp.beta.example/keys' }\n"), FERRY_OK);
    t = ferry_conf_tenant(conf, "acme");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_PTR_NULL(t->token);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t->jwt);
    CU_ASSERT_STRING_EQUAL(t->jwt->issuer, "https://idp.acme.example");
    CU_ASSERT_STRING_EQUAL(t->jwt->audience, "ferry");
    CU_ASSERT_STRING_EQUAL(t->jwt->jwks, "keys/acme.json");
    CU_ASSERT_PTR_NULL(t->jwt->jwks_url);
    CU_ASSERT_EQUAL(t->jwt->leeway_s, 60);
    CU_ASSERT_EQUAL(t->jwt->jwks_line, 6);
    CU_ASSERT_EQUAL(t->jwt->jwks_col, 13);
    /* No static token: ferry_conf_tenant_by_token never matches it. */
    CU_ASSERT_PTR_NULL(ferry_conf_tenant_by_token(conf, "acme", "x"));
    t = ferry_conf_tenant(conf, "beta");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t->jwt);
    CU_ASSERT_STRING_EQUAL(t->token, "t2");
    CU_ASSERT_EQUAL(t->jwt->leeway_s, 0);
    CU_ASSERT_PTR_NULL(t->jwt->jwks);
    CU_ASSERT_STRING_EQUAL(t->jwt->jwks_url, "https://idp.beta.example/keys");
    ferry_conf_free(conf);
    conf = NULL;

    CU_ASSERT_EQUAL(load("tenants:\n"
                         "  - { id: a, jwt: { issuer: i, audience: a, jwks: k, jwks_ulr: u } }\n"
                         "  - { id: b, jwt: { audience: a, jwks: k } }\n"
                         "  - { id: c, jwt: { issuer: i, audience: a } }\n"
                         "  - { id: d, jwt: { issuer: i, audience: a, jwks: k,"
                         " jwks_url: 'http://x/' } }\n"
                         "  - { id: e, jwt: { issuer: i, audience: a, jwks_url: 'ftp://x/k' } }\n"
                         "  - { id: f, jwt: { issuer: i, audience: a, jwks: k, leeway_s: 3601 } }\n"
                         "  - { id: g, jwt: [ i ] }\n"
                         "  - { id: h }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 54, "tenants[0]: jwt: unknown key 'jwks_ulr' (did you mean "
                        "'jwks_url'?)"));
    CU_ASSERT(errs_have(&errs, 3, 19, "tenants[1]: jwt: missing required key 'issuer'"));
    CU_ASSERT(errs_have(&errs, 4, 19, "tenants[2]: jwt: missing required key 'jwks' (a file) "
                        "or 'jwks_url'"));
    CU_ASSERT(errs_have(&errs, 5, 64, "tenants[3]: jwt: jwks and jwks_url: set one of them"));
    CU_ASSERT(errs_have(&errs, 6, 55, "tenants[4]: jwt: jwks_url: want an http:// or https:// "
                        "URL"));
    CU_ASSERT(errs_have(&errs, 7, 64, "tenants[5]: jwt: leeway_s: want a whole number from 0 "
                        "to 3600"));
    CU_ASSERT(errs_have(&errs, 8, 19, "tenants[6]: jwt: want a mapping"));
    CU_ASSERT(errs_have(&errs, 9, 5, "tenants[7]: missing required key 'token' (or 'jwt')"));
    CU_ASSERT_EQUAL(errs.count, 8);
}

static void
test_tenants_parsed_and_checked(void)
{
    const struct ferry_conf_tenant *t;

    CU_ASSERT_EQUAL(load("tenants:\n  - { id: acme, token: t1 }\n  - id: beta\n    token: t2\n"),
                    FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(conf->ntenants, 2);
    t = ferry_conf_tenant(conf, "beta");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t->token, "t2");
    CU_ASSERT_EQUAL(t->line, 3);
    CU_ASSERT_EQUAL(t->col, 5);
    CU_ASSERT_PTR_NULL(ferry_conf_tenant(conf, "gamma"));

    CU_ASSERT_EQUAL(load("tenants:\n  - { id: acme, token: t1 }\n  - { id: acme, token: t2 }\n"
                         "  - { id: beta }\n  - { id: gamma, token: t1 }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 11, "tenants[1]: tenant 'acme' is defined twice"));
    CU_ASSERT(errs_have(&errs, 4, 5, "tenants[2]: missing required key 'token'"));
    CU_ASSERT(errs_have(&errs, 5, 25, "tenants[3]: token is the same as tenants[0]'s"));
    CU_ASSERT(!errs_mention(&errs, "t1"));
}

/* tunnel.advertise: default listen; ${env:} works; a wildcard or a bad address is an
 * error at the value, quoted as written. */
static void
test_tunnel_advertise_default_env_and_errors(void)
{
    char *dir = tmpdir_new();
    char  path[512];
    const char *head = "tunnel:\n  listen: '0.0.0.0:8443'\n  cert: gw.crt\n  key: gw.key\n";
    char  text[512];

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT(file_write(dir, "gw.crt", "cert\n"));
    CU_ASSERT(file_write(dir, "gw.key", "key\n"));
    snprintf(path, sizeof(path), "%s/ferry.yaml", dir);

    /* Absent: a copy of listen, even a wildcard one, and no complaint. */
    CU_ASSERT(file_write(dir, "ferry.yaml", head));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->tunnel.advertise, "0.0.0.0:8443");
    CU_ASSERT_EQUAL(conf->warnings.count, 0);

    setenv("FERRY_TEST_POD_IP", "10.1.2.3", 1);
    snprintf(text, sizeof(text), "%s  advertise: ${env:FERRY_TEST_POD_IP}:8443\n", head);
    CU_ASSERT(file_write(dir, "ferry.yaml", text));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->tunnel.advertise, "10.1.2.3:8443");

    snprintf(text, sizeof(text), "%s  advertise: gw-0.ferry.svc:8443\n", head);
    CU_ASSERT(file_write(dir, "ferry.yaml", text));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->tunnel.advertise, "gw-0.ferry.svc:8443");

    /* Given explicitly, a wildcard cannot be dialed by anyone. */
    snprintf(text, sizeof(text), "%s  advertise: 0.0.0.0:8443\n", head);
    CU_ASSERT(file_write(dir, "ferry.yaml", text));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 14, "tunnel: advertise: '0.0.0.0:8443'"));
    CU_ASSERT(errs_have(&errs, 5, 14, "wildcard"));
    snprintf(text, sizeof(text), "%s  advertise: '[::]:8443'\n", head);
    CU_ASSERT(file_write(dir, "ferry.yaml", text));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 14, "wildcard"));

    /* An empty variable leaves ":8443": the message shows both forms. */
    setenv("FERRY_TEST_POD_IP", "", 1);
    snprintf(text, sizeof(text), "%s  advertise: ${env:FERRY_TEST_POD_IP}:8443\n", head);
    CU_ASSERT(file_write(dir, "ferry.yaml", text));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 14, "'${env:FERRY_TEST_POD_IP}:8443' (is ':8443')"));
    CU_ASSERT(errs_have(&errs, 5, 14, "missing host"));

    snprintf(text, sizeof(text), "%s  advertise: gw:99999\n", head);
    CU_ASSERT(file_write(dir, "ferry.yaml", text));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 14, "port must be 1..65535"));
    unsetenv("FERRY_TEST_POD_IP");
    tmpdir_free(dir);
}

static void
test_tunnel_needs_cert_and_key_that_exist(void)
{
    char *dir = tmpdir_new();
    char  path[512], text[512];

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_EQUAL(load("tunnel: { listen: '127.0.0.1:8443' }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 9, "tunnel: missing required key 'cert'"));
    CU_ASSERT(errs_have(&errs, 1, 9, "tunnel: missing required key 'key'"));

    CU_ASSERT(mkdir_in(dir, "tls"));
    CU_ASSERT(file_write(dir, "tls/gw.crt", "cert\n"));
    CU_ASSERT(file_write(dir, "tls/gw.key", "key\n"));
    snprintf(path, sizeof(path), "%s/ferry.yaml", dir);
    snprintf(text, sizeof(text), "tunnel:\n  listen: '127.0.0.1:8443'\n  cert: tls/gw.crt\n"
             "  key: tls/gw.key\n");
    CU_ASSERT(file_write(dir, "ferry.yaml", text));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    snprintf(path, sizeof(path), "%s/tls/gw.crt", dir);
    CU_ASSERT_STRING_EQUAL(conf->tunnel.cert, path);
    snprintf(path, sizeof(path), "%s/tls/gw.key", dir);
    CU_ASSERT_STRING_EQUAL(conf->tunnel.key, path);
    CU_ASSERT_PTR_NULL(conf->tunnel.client_ca);
    CU_ASSERT_STRING_EQUAL(conf->tunnel.listen, "127.0.0.1:8443");
    CU_ASSERT_EQUAL(conf->tunnel.keepalive_ms, 10000);
    CU_ASSERT_EQUAL(conf->tunnel.dead_peer_timeout_ms, 30000);

    /* Keepalive settings: the peer is dead only after more than one PING interval. */
    CU_ASSERT(file_write(dir, "ferry.yaml", "tunnel:\n  listen: '127.0.0.1:8443'\n"
                         "  cert: tls/gw.crt\n  key: tls/gw.key\n  keepalive_ms: 500\n"
                         "  dead_peer_timeout_ms: 2000\n"));
    snprintf(path, sizeof(path), "%s/ferry.yaml", dir);
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(conf->tunnel.keepalive_ms, 500);
    CU_ASSERT_EQUAL(conf->tunnel.dead_peer_timeout_ms, 2000);
    CU_ASSERT(file_write(dir, "ferry.yaml", "tunnel:\n  listen: '127.0.0.1:8443'\n"
                         "  cert: tls/gw.crt\n  key: tls/gw.key\n  keepalive_ms: 5000\n"
                         "  dead_peer_timeout_ms: 5000\n"));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_EINVAL);
    CU_ASSERT(errs_mention(&errs, "dead_peer_timeout_ms must be longer than keepalive_ms"));

    CU_ASSERT(file_write(dir, "ferry.yaml", "tunnel:\n  listen: '127.0.0.1:8443'\n"
                         "  cert: tls/gw.crt\n  key: tls/gw.key\n  client_ca: tls/ca.crt\n"));
    snprintf(path, sizeof(path), "%s/ferry.yaml", dir);
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 14, "tunnel: client_ca: cannot read"));
    CU_ASSERT(errs_have(&errs, 5, 14, "tls/ca.crt"));
    CU_ASSERT_STRING_EQUAL(errs.items[0].file, path);
    tmpdir_free(dir);
}

static void
test_relative_paths_resolve_against_the_config_directory(void)
{
    char *dir = tmpdir_new();
    char  path[512], want[512];
    const struct ferry_dest *d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT(mkdir_in(dir, "policies"));
    CU_ASSERT(mkdir_in(dir, "tls"));
    CU_ASSERT(mkdir_in(dir, "dests"));
    CU_ASSERT(file_write(dir, "policies/billing.lua", "return {}\n"));
    CU_ASSERT(file_write(dir, "tls/ca.pem", "pem\n"));
    CU_ASSERT(file_write(dir, "ferry.yaml",
                         "plugins_dir: ../build/plugins\n"
                         "destinations_dir: dests\n"
                         "destinations:\n"
                         "  - Name: billing\n    Type: HTTP\n    URL: https://b.example/api\n"
                         "    policy: policies/billing.lua\n"
                         "    TrustStoreLocation: tls/ca.pem\n"));
    snprintf(path, sizeof(path), "%s/ferry.yaml", dir);
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_OK);
    errs_dump(&errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    snprintf(want, sizeof(want), "%s/../build/plugins", dir);
    CU_ASSERT_STRING_EQUAL(conf->plugins_dir, want);
    snprintf(want, sizeof(want), "%s/dests", dir);
    CU_ASSERT_STRING_EQUAL(conf->destinations_dir, want);
    d = ferry_registry_find(conf->registry, "billing");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    snprintf(want, sizeof(want), "%s/policies/billing.lua", dir);
    CU_ASSERT_STRING_EQUAL(d->policy, want);
    snprintf(want, sizeof(want), "%s/tls/ca.pem", dir);
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop(d, "TrustStoreLocation"), want);

    /* The same config from elsewhere: the missing policy is named with its position. */
    CU_ASSERT(file_write(dir, "ferry.yaml",
                         "destinations:\n"
                         "  - Name: billing\n    Type: HTTP\n    URL: https://b.example/api\n"
                         "    policy: policies/missing.lua\n"
                         "    TrustStoreLocation: tls/nope.pem\n"));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 5, "destination 'billing': policy: cannot read"));
    CU_ASSERT(errs_have(&errs, 5, 5, "policies/missing.lua"));
    CU_ASSERT(errs_have(&errs, 6, 5, "TrustStoreLocation: cannot read"));
    tmpdir_free(dir);
}

static void
test_destinations_dir_reads_every_yaml_file_sorted(void)
{
    char *dir = tmpdir_new();
    char  path[512], bad[512], want[512];
    const struct ferry_dest *d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT(mkdir_in(dir, "d"));
    CU_ASSERT(mkdir_in(dir, "d/policies"));
    CU_ASSERT(file_write(dir, "d/policies/p.lua", "return {}\n"));
    CU_ASSERT(file_write(dir, "d/b-ldap.yml", "Name: corp-ad\nType: LDAP\n"
                         "ldap.url: ldap://ad.internal\npolicy: policies/p.lua\n"));
    CU_ASSERT(file_write(dir, "d/a-erp.yaml", "Name: erp\nType: RFC\n"
                         "jco.client.ashost: erp.internal\njco.client.sysnr: \"02\"\n"));
    CU_ASSERT(file_write(dir, "d/README.md", "not a destination\n"));
    CU_ASSERT(file_write(dir, "d/.hidden.yaml", "Name: [broken\n"));
    CU_ASSERT(file_write(dir, "ferry.yaml", "destinations_dir: d\n"
                         "listeners:\n  - { name: ad, plugin: ldap, listen: '127.0.0.1:1389',"
                         " destination: corp-ad }\n"));
    snprintf(path, sizeof(path), "%s/ferry.yaml", dir);
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_OK);
    errs_dump(&errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(conf->registry->n, 2);
    d = ferry_registry_find(conf->registry, "erp");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_port(d), 3302);
    snprintf(want, sizeof(want), "%s/d/a-erp.yaml", dir);
    CU_ASSERT_STRING_EQUAL(d->file, want);
    CU_ASSERT_EQUAL(d->line, 1);
    d = ferry_registry_find(conf->registry, "corp-ad");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    snprintf(want, sizeof(want), "%s/d/policies/p.lua", dir);
    CU_ASSERT_STRING_EQUAL(d->policy, want);

    /* One bad file: the error names that file and the line in it. */
    CU_ASSERT(file_write(dir, "d/c-bad.yaml", "Name: web\nType: HTTP\nURL: ftp://x\n"));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_EINVAL);
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    snprintf(bad, sizeof(bad), "%s/d/c-bad.yaml", dir);
    CU_ASSERT_STRING_EQUAL(errs.items[0].file, bad);
    CU_ASSERT_EQUAL(errs.items[0].line, 3);
    CU_ASSERT_EQUAL(errs.items[0].col, 1);
    CU_ASSERT(errs_have(&errs, 3, 1, "destination 'web': URL: scheme 'ftp' is not allowed"));

    /* A syntax error inside a destination file, and a duplicate across inline + dir. */
    CU_ASSERT(file_write(dir, "d/c-bad.yaml", "Name: [web\n"));
    CU_ASSERT(file_write(dir, "ferry.yaml", "destinations_dir: d\ndestinations:\n"
                         "  - { Name: erp, Type: TCP, Address: 'tcp://h:1' }\n"));
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    CU_ASSERT_EQUAL(ferry_conf_load_file(path, &conf, &errs), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 2);
    CU_ASSERT(errs_mention(&errs, "c-bad.yaml"));
    CU_ASSERT(errs_have(&errs, 0, 0, "YAML syntax error"));
    CU_ASSERT(errs_have(&errs, 1, 1, "destination 'erp' is defined twice (first at"));
    snprintf(want, sizeof(want), "(first at %s/ferry.yaml:3:5)", dir);
    CU_ASSERT(errs_have(&errs, 1, 1, want));
    tmpdir_free(dir);
}

static void
test_destinations_dir_missing_is_an_error(void)
{
    CU_ASSERT_EQUAL(load("destinations_dir: /nonexistent/ferry-dests\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 19, "destinations_dir: cannot open directory "
                        "/nonexistent/ferry-dests"));
}

static void
test_load_file_reports_unreadable_file(void)
{
    memset(&errs, 0, sizeof(errs));
    ferry_conf_free(conf);
    conf = NULL;
    CU_ASSERT_EQUAL(ferry_conf_load_file("/nonexistent/ferry.yaml", &conf, &errs),
                    FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(conf);
    CU_ASSERT_EQUAL_FATAL(errs.count, 1);
    CU_ASSERT_STRING_EQUAL(errs.items[0].file, "/nonexistent/ferry.yaml");
    CU_ASSERT_EQUAL(errs.items[0].line, 0);
    CU_ASSERT(errs_have(&errs, 0, 0, "No such file or directory"));
}

static void
test_listener_options_reach_the_plugin(void)
{
    const char         *s;
    const char *const  *list;
    size_t              n;

    CU_ASSERT_EQUAL(load("listeners:\n"
                         "  - name: socks\n    plugin: socks5\n    listen: '127.0.0.1:20004'\n"
                         "    auth: tenant\n    egress: [ '127.0.0.1:*', '*.example.com:443' ]\n"),
                    FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(ferry_opts_str(conf->listeners[0].opts, "auth", &s), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(s, "tenant");
    CU_ASSERT_EQUAL(ferry_opts_strlist(conf->listeners[0].opts, "egress", &list, &n), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(list[1], "*.example.com:443");
    CU_ASSERT_PTR_NULL(list[2]);
    /* core keys are not options */
    CU_ASSERT_EQUAL(ferry_opts_str(conf->listeners[0].opts, "listen", &s), FERRY_ENOTFOUND);
}

static void
test_errlist_print_formats_file_line_col(void)
{
    struct ferry_errlist l = {0};
    char                 buf[1024] = {0};
    FILE                *fp = fmemopen(buf, sizeof(buf) - 1, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    ferry_errlist_add(&l, "conf/ferry.yaml", 14, 7, "listeners[1]: unknown key '%s'", "x");
    ferry_errlist_add(&l, "conf/ferry.yaml", 0, 0, "cannot open");
    ferry_errlist_add(&l, NULL, 0, 0, "out of memory");
    ferry_errlist_print(&l, fp, false);
    ferry_errlist_print(&l, fp, true);
    fclose(fp);
    /* In file order: a whole-file error before the file's lines. */
    CU_ASSERT_STRING_EQUAL(buf,
                           "conf/ferry.yaml: cannot open\n"
                           "conf/ferry.yaml:14:7: listeners[1]: unknown key 'x'\n"
                           "out of memory\n"
                           "warning: conf/ferry.yaml: cannot open\n"
                           "warning: conf/ferry.yaml:14:7: listeners[1]: unknown key 'x'\n"
                           "warning: out of memory\n");
    CU_ASSERT_EQUAL(l.items[1].line, 14);
    CU_ASSERT_EQUAL(l.items[1].col, 7);
    CU_ASSERT_EQUAL(l.items[1].code, FERRY_EINVAL);
}

static void
test_errlist_caps_and_prints_the_dropped_count(void)
{
    struct ferry_errlist l = {0};
    char                 buf[4096] = {0};
    FILE                *fp = fmemopen(buf, sizeof(buf) - 1, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    for (int i = 0; i < 23; i++)
        ferry_errlist_add(&l, "f", i + 1, 1, "e%d", i);
    CU_ASSERT_EQUAL(l.count, 20);
    CU_ASSERT_EQUAL(l.dropped, 3);
    ferry_errlist_print(&l, fp, false);
    fclose(fp);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "f:20:1: e19\nferry: 20 errors shown, 3 more not shown\n"));
    CU_ASSERT_PTR_NULL(strstr(buf, "e20"));
}

static void
test_err_set_and_strerror(void)
{
    struct ferry_err e = { .line = 3 };

    CU_ASSERT_EQUAL(ferry_err_set(&e, FERRY_EIO, "cannot open %s", "x"), FERRY_EIO);
    CU_ASSERT_EQUAL(e.code, FERRY_EIO);
    CU_ASSERT_EQUAL(e.line, 0);
    CU_ASSERT_STRING_EQUAL(e.msg, "cannot open x");
    CU_ASSERT_EQUAL(ferry_err_set(NULL, FERRY_EINVAL, "ignored"), FERRY_EINVAL);
    CU_ASSERT_STRING_EQUAL(ferry_strerror(FERRY_OK), "OK");
    CU_ASSERT_STRING_EQUAL(ferry_strerror(FERRY_EINVAL), "EINVAL");
    CU_ASSERT_STRING_EQUAL(ferry_strerror(FERRY_ETIMEDOUT), "ETIMEDOUT");
    CU_ASSERT_STRING_EQUAL(ferry_strerror(FERRY_EUNAVAIL), "EUNAVAIL");
    CU_ASSERT_STRING_EQUAL(ferry_strerror(-99), "EUNKNOWN");
    CU_ASSERT_STRING_EQUAL(ferry_strerror(5), "EUNKNOWN");
}

static void
test_edit_distance_and_suggest(void)
{
    static const char *const keys[] = { "destination", "tenant", "listen", "plugin" };

    CU_ASSERT_EQUAL(ferry_edit_distance("plugin", "plugin", 2), 0);
    CU_ASSERT_EQUAL(ferry_edit_distance("plugn", "plugin", 2), 1);
    CU_ASSERT_EQUAL(ferry_edit_distance("pluign", "plugin", 2), 1);   /* swap */
    CU_ASSERT_EQUAL(ferry_edit_distance("Authentification", "Authentication", 2), 2);
    CU_ASSERT_EQUAL(ferry_edit_distance("abc", "xyz", 2), 3);            /* capped */
    CU_ASSERT_EQUAL(ferry_edit_distance("a", "abcdefgh", 2), 3);
    CU_ASSERT_STRING_EQUAL(ferry_suggest("destinaton", keys, 4, 2), "destination");
    CU_ASSERT_STRING_EQUAL(ferry_suggest("tenat", keys, 4, 2), "tenant");
    CU_ASSERT_PTR_NULL(ferry_suggest("zzzzzz", keys, 4, 2));
    CU_ASSERT_PTR_NULL(ferry_suggest("tenant", keys, 4, 2));   /* itself: no advice */
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "tenant max_connections", test_tenant_max_connections },
        { "unknown key points at line:col and suggests",
          test_unknown_key_points_at_line_col_and_suggests },
        { "unknown top-level key suggests the closest",
          test_unknown_top_level_key_suggests_closest },
        { "unknown key in a section names the section",
          test_unknown_key_in_section_names_the_section },
        { "wrong types are errors at the node", test_wrong_types_are_errors_at_the_node },
        { "missing required listener keys", test_missing_required_listener_keys },
        { "listener defaults and core keys", test_listener_defaults_and_core_keys },
        { "listener ranges and plugin name checked",
          test_listener_ranges_and_plugin_name_checked },
        { "duplicate listener name points at the second",
          test_duplicate_listener_name_points_at_second },
        { "duplicate YAML key is an error", test_duplicate_yaml_key_is_an_error },
        { "listener: unknown destination and tenant",
          test_listener_unknown_destination_and_tenant },
        { "listener bound to known destination and tenant",
          test_listener_bound_to_known_destination_and_tenant },
        { "listener naming an invalid destination: no second error",
          test_listener_naming_an_invalid_destination_adds_no_second_error },
        { "several errors collected in one pass", test_several_errors_are_collected_in_one_pass },
        { "errors capped at 20, the rest counted",
          test_errors_are_capped_at_twenty_and_the_rest_counted },
        { "partial load keeps listeners for their plugins",
          test_partial_load_keeps_listeners_for_their_plugins },
        { "listener checks run past a bad core key",
          test_listener_checks_run_past_a_bad_core_key },
        { "plugin not asked when what it reads did not load",
          test_plugin_not_asked_when_what_it_reads_did_not_load },
        { "partial load keeps the valid destinations",
          test_partial_load_keeps_the_valid_destinations },
        { "tenant checks run past a bad key", test_tenant_checks_run_past_a_bad_key },
        { "log and tunnel check what loaded", test_log_and_tunnel_check_what_loaded },
        { "YAML syntax error has a position", test_yaml_syntax_error_has_position },
        { "workers: auto, number, bad", test_workers_auto_number_and_bad },
        { "defaults for an empty file", test_defaults_for_an_empty_file },
        { "admin: off and listen", test_admin_off_and_listen },
        { "log level and access", test_log_level_and_access },
        { "drain_timeout_ms", test_drain_timeout },
        { "empty sections mean defaults", test_empty_sections_mean_defaults },
        { "without an errlist, plugin errors are dropped safely",
          test_without_an_errlist_plugin_errors_are_dropped_safely },
        { "tenants parsed and checked", test_tenants_parsed_and_checked },
        { "tenant jwt: parsed and checked", test_tenant_jwt_parsed_and_checked },
        { "tunnel needs cert and key that exist", test_tunnel_needs_cert_and_key_that_exist },
        { "tunnel.advertise: default, env, errors", test_tunnel_advertise_default_env_and_errors },
        { "relative paths resolve against the config's directory",
          test_relative_paths_resolve_against_the_config_directory },
        { "destinations_dir: every yaml file, sorted, errors name the file",
          test_destinations_dir_reads_every_yaml_file_sorted },
        { "destinations_dir missing is an error", test_destinations_dir_missing_is_an_error },
        { "load_file reports an unreadable file", test_load_file_reports_unreadable_file },
        { "listener options reach the plugin", test_listener_options_reach_the_plugin },
        { "errlist prints file:line:col", test_errlist_print_formats_file_line_col },
        { "errlist caps and prints the dropped count",
          test_errlist_caps_and_prints_the_dropped_count },
        { "err_set and strerror", test_err_set_and_strerror },
        { "edit distance and suggest", test_edit_distance_and_suggest },
        { NULL, NULL }
    };
    int rc = cu_run("conf", tests);

    ferry_conf_free(conf);
    return rc;
}
