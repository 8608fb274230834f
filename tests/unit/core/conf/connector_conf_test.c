/*
 * connector_conf_test.c: the connector config loader (core/conf/connector-conf.c):
 * every field and default, gateway forms, systems (targets, protocols, sapgwNN ports,
 * paths, duplicates), errors at file:line:col, and that the token never shows.
 */
#include "core/conf/conf-test.h"

#include "conf/connector-conf.h"
#include "cu.h"

static struct ferry_errlist         errs;
static struct ferry_connector_conf *cc;
static char                        *dir;       /* has tls/ca.crt, tls/connector.{crt,key} */
static char                         name[1100];

/* The four required keys: every test's config starts with them (lines 1-4). */
#define BASE "gateway: 127.0.0.1:8443\ntenant: acme\ntoken: ${env:ACME_TOKEN}\nca: tls/ca.crt\n"
#define TOKEN "s3cr3t-t0ken-value"

static int
load(const char *text)
{
    memset(&errs, 0, sizeof(errs));
    ferry_connector_conf_free(cc);
    cc = NULL;
    int rc = ferry_connector_conf_load_string(text, name, &cc, &errs);

    errs_dump(&errs);
    return rc;
}

static char *
in_dir(const char *rel)
{
    static char path[1200];

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return path;
}

static void
test_full_config_lands_in_every_field(void)
{
    CU_ASSERT_EQUAL_FATAL(load(
        "workers: 4\n"
        "log: { level: debug }\n"
        "gateway: 127.0.0.1:8443\n"
        "admin: { listen: 127.0.0.1:9911 }\n"
        "tenant: acme\n"
        "token: ${env:ACME_TOKEN}\n"
        "location_id: berlin\n"
        "ca: tls/ca.crt\n"
        "cert: tls/connector.crt\n"
        "key: tls/connector.key\n"
        "audit_log: audit.jsonl\n"
        "connect_timeout_ms: 1500\n"
        "keepalive_ms: 2000\n"
        "dead_peer_timeout_ms: 7000\n"
        "reconnect_max_ms: 4000\n"
        "drain_timeout_ms: 0\n"
        "systems:\n"
        "  - { virtual: erp.internal:3300, internal: 10.0.0.12:3300, protocol: TCP }\n"
        "  - virtual: Shop.Internal:80\n"
        "    internal: 10.0.0.20:8080\n"
        "    protocol: http\n"
        "    paths: [ \"/api/\", \"/health\" ]\n"), FERRY_OK);
    CU_ASSERT_EQUAL(errs.count, 0);
    CU_ASSERT_STRING_EQUAL(cc->path, name);
    CU_ASSERT_STRING_EQUAL(cc->dir, dir);
    CU_ASSERT_EQUAL(cc->workers, 4);
    CU_ASSERT_EQUAL(cc->log_level, FERRY_DEBUG);
    CU_ASSERT_STRING_EQUAL(cc->admin_listen, "127.0.0.1:9911");
    CU_ASSERT_EQUAL_FATAL(cc->ngateways, 1);
    CU_ASSERT_STRING_EQUAL(cc->gateways[0].text, "127.0.0.1:8443");
    CU_ASSERT_STRING_EQUAL(cc->gateways[0].host, "127.0.0.1");
    CU_ASSERT_EQUAL(cc->gateways[0].port, 8443);
    CU_ASSERT_STRING_EQUAL(cc->tenant, "acme");
    CU_ASSERT_STRING_EQUAL(cc->token, TOKEN);
    CU_ASSERT_STRING_EQUAL(cc->location_id, "berlin");
    CU_ASSERT_STRING_EQUAL(cc->ca, in_dir("tls/ca.crt"));
    CU_ASSERT_STRING_EQUAL(cc->cert, in_dir("tls/connector.crt"));
    CU_ASSERT_STRING_EQUAL(cc->key, in_dir("tls/connector.key"));
    CU_ASSERT_STRING_EQUAL(cc->audit_log, in_dir("audit.jsonl"));
    CU_ASSERT_EQUAL(cc->connect_timeout_ms, 1500);
    CU_ASSERT_EQUAL(cc->keepalive_ms, 2000);
    CU_ASSERT_EQUAL(cc->dead_peer_timeout_ms, 7000);
    CU_ASSERT_EQUAL(cc->reconnect_max_ms, 4000);
    CU_ASSERT_EQUAL(cc->drain_timeout_ms, 0);
    CU_ASSERT_EQUAL_FATAL(cc->nsystems, 2);

    const struct ferry_conf_system *s = &cc->systems[0];

    CU_ASSERT_STRING_EQUAL(s->virtual_host, "erp.internal");
    CU_ASSERT_EQUAL(s->virtual_port, 3300);
    CU_ASSERT_STRING_EQUAL(s->internal_host, "10.0.0.12");
    CU_ASSERT_EQUAL(s->internal_port, 3300);
    CU_ASSERT_EQUAL(s->protocol, FERRY_SYS_TCP);
    CU_ASSERT_PTR_NULL(s->paths);
    CU_ASSERT_EQUAL(s->npaths, 0);
    CU_ASSERT_EQUAL(s->line, 18);
    CU_ASSERT_EQUAL(s->col, 5);
    s = &cc->systems[1];
    CU_ASSERT_STRING_EQUAL(s->virtual_host, "shop.internal");     /* lower-cased */
    CU_ASSERT_EQUAL(s->virtual_port, 80);
    CU_ASSERT_STRING_EQUAL(s->internal_host, "10.0.0.20");
    CU_ASSERT_EQUAL(s->internal_port, 8080);
    CU_ASSERT_EQUAL(s->protocol, FERRY_SYS_HTTP);                  /* case-insensitive */
    CU_ASSERT_EQUAL_FATAL(s->npaths, 2);
    CU_ASSERT_STRING_EQUAL(s->paths[0], "/api/");
    CU_ASSERT_STRING_EQUAL(s->paths[1], "/health");
    CU_ASSERT_PTR_NULL(s->paths[2]);
    CU_ASSERT_EQUAL(s->line, 19);
    CU_ASSERT_EQUAL(s->col, 5);
    CU_ASSERT_EQUAL(cc->warnings.count, 0);
}

static void
test_minimal_config_gets_the_defaults(void)
{
    CU_ASSERT_EQUAL_FATAL(load(BASE), FERRY_OK);
    CU_ASSERT_EQUAL(cc->workers, 0);
    CU_ASSERT_EQUAL(cc->log_level, FERRY_INFO);
    CU_ASSERT_STRING_EQUAL(cc->admin_listen, "127.0.0.1:9902");
    CU_ASSERT_STRING_EQUAL(cc->location_id, "");
    CU_ASSERT_PTR_NULL(cc->cert);
    CU_ASSERT_PTR_NULL(cc->key);
    CU_ASSERT_PTR_NULL(cc->audit_log);
    CU_ASSERT_FALSE(cc->audit_fail_open);          /* closed: refuse what cannot be audited */
    CU_ASSERT_EQUAL(cc->connect_timeout_ms, 5000);
    CU_ASSERT_EQUAL(cc->keepalive_ms, 10000);
    CU_ASSERT_EQUAL(cc->dead_peer_timeout_ms, 30000);
    CU_ASSERT_EQUAL(cc->reconnect_max_ms, 10000);
    CU_ASSERT_EQUAL(cc->drain_timeout_ms, 30000);
    CU_ASSERT_EQUAL(cc->nsystems, 0);
    CU_ASSERT(errs_have(&cc->warnings, 1, 1, "no systems: the connector exposes nothing"));

    /* `key:` alone means the default; `admin: off` turns the admin listener off */
    CU_ASSERT_EQUAL_FATAL(load(BASE "workers:\nlog:\nlocation_id:\nadmin: off\nsystems:\n"),
                          FERRY_OK);
    CU_ASSERT_EQUAL(cc->workers, 0);
    CU_ASSERT_STRING_EQUAL(cc->location_id, "");
    CU_ASSERT_PTR_NULL(cc->admin_listen);
    CU_ASSERT_EQUAL_FATAL(load(BASE "workers: auto\nlocation_id: \"\"\n"), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(cc->location_id, "");
    CU_ASSERT_EQUAL_FATAL(load(BASE "workers: 64\n"), FERRY_OK);
    CU_ASSERT_EQUAL(cc->workers, 64);
}

static void
test_gateway_list_form(void)
{
    CU_ASSERT_EQUAL_FATAL(load("tenant: acme\ntoken: t\nca: tls/ca.crt\n"
                               "gateway: [ \"GW1.example.com:8443\", 10.0.0.5:8443, "
                               "\"[FD00::0:1]:443\" ]\n"), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cc->ngateways, 3);
    CU_ASSERT_STRING_EQUAL(cc->gateways[0].text, "GW1.example.com:8443");
    CU_ASSERT_STRING_EQUAL(cc->gateways[0].host, "GW1.example.com");
    CU_ASSERT_EQUAL(cc->gateways[0].port, 8443);
    CU_ASSERT_STRING_EQUAL(cc->gateways[1].host, "10.0.0.5");
    CU_ASSERT_EQUAL(cc->gateways[1].port, 8443);
    CU_ASSERT_STRING_EQUAL(cc->gateways[2].text, "[FD00::0:1]:443");
    CU_ASSERT_STRING_EQUAL(cc->gateways[2].host, "fd00::1");
    CU_ASSERT_EQUAL(cc->gateways[2].port, 443);
    /* block style */
    CU_ASSERT_EQUAL_FATAL(load("tenant: acme\ntoken: t\nca: tls/ca.crt\n"
                               "gateway:\n  - gw1:1\n  - gw2:2\n"), FERRY_OK);
    CU_ASSERT_EQUAL(cc->ngateways, 2);
    CU_ASSERT_STRING_EQUAL(cc->gateways[1].host, "gw2");
}

static void
test_gateway_errors_point_at_the_item(void)
{
    CU_ASSERT_EQUAL(load("tenant: acme\ntoken: t\nca: tls/ca.crt\n"
                         "gateway: [ gw:99999, gw, \"fd00::1:8443\", \"[fd00::zz]:1\", "
                         "\"bad!host:1\", 10.0.0.300:1, \"-gw:1\", gw:0, gw:sapgw00 ]\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 4, 12, "gateway[0]: 'gw:99999': port must be 1..65535"));
    CU_ASSERT(errs_have(&errs, 4, 22, "gateway[1]: 'gw': want host:port"));
    CU_ASSERT(errs_have(&errs, 4, 26, "gateway[2]: 'fd00::1:8443': write IPv6 addresses in "
                        "brackets"));
    CU_ASSERT(errs_have(&errs, 4, 42, "gateway[3]: '[fd00::zz]:1': bad IPv6 address"));
    CU_ASSERT(errs_have(&errs, 4, 58, "gateway[4]: 'bad!host:1': want a host name"));
    CU_ASSERT(errs_have(&errs, 4, 72, "gateway[5]: '10.0.0.300:1': bad IPv4 address"));
    CU_ASSERT(errs_have(&errs, 4, 86, "gateway[6]: '-gw:1': want a host name"));
    CU_ASSERT(errs_have(&errs, 4, 95, "gateway[7]: 'gw:0': port must be 1..65535"));
    CU_ASSERT(errs_have(&errs, 4, 101, "gateway[8]: 'gw:sapgw00': port names (sapgwNN)"));
    CU_ASSERT_EQUAL(errs.count, 9);

    CU_ASSERT_EQUAL(load("tenant: acme\ntoken: t\nca: tls/ca.crt\ngateway: []\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 4, 10, "gateway: want from 1 to 16 gateways"));
    CU_ASSERT_EQUAL(load("tenant: acme\ntoken: t\nca: tls/ca.crt\ngateway: { a: b }\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 4, 10, "gateway: want host:port or a list of them"));
    CU_ASSERT_EQUAL(load("tenant: acme\ntoken: t\nca: tls/ca.crt\ngateway:\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 4, 9, "gateway: want host:port or a list of them"));
    CU_ASSERT_EQUAL(load("tenant: acme\ntoken: t\nca: tls/ca.crt\n"
                         "gateway: [ gw:1, [ x ], GW:1 ]\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 4, 18, "gateway[1]: want a single value, not a list"));
    CU_ASSERT(errs_have(&errs, 4, 25, "gateway[2]: the same gateway as gateway[0]"));
}

static void
test_missing_required_keys_and_empty_file(void)
{
    CU_ASSERT_EQUAL(load("workers: 2\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 1, "missing required key 'gateway'"));
    CU_ASSERT(errs_have(&errs, 1, 1, "missing required key 'tenant'"));
    CU_ASSERT(errs_have(&errs, 1, 1, "missing required key 'token'"));
    CU_ASSERT(errs_have(&errs, 1, 1, "missing required key 'ca'"));
    CU_ASSERT_EQUAL(errs.count, 4);
    CU_ASSERT_PTR_NULL(cc);
    CU_ASSERT_EQUAL(load(""), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 1, "empty configuration: a connector needs at least gateway, "
                        "tenant, token and ca"));
    CU_ASSERT_EQUAL(load("# nothing\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT_EQUAL(load("- a\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 1, 1, "want a mapping (key: value), not a list"));
    CU_ASSERT_EQUAL(load(BASE "token: again\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 1, "duplicate key 'token' (first at line 3)"));
    CU_ASSERT_STRING_EQUAL(errs.items[0].file, name);
}

static void
test_unknown_keys_suggest(void)
{
    CU_ASSERT_EQUAL(load(BASE "tenat: x\nlocation: berlin\nfrobnicate: 1\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 1, "unknown key 'tenat' (did you mean 'tenant'?)"));
    CU_ASSERT(errs_have(&errs, 6, 1, "unknown key 'location'"));
    CU_ASSERT(errs_have(&errs, 7, 1, "unknown key 'frobnicate'"));
    CU_ASSERT_EQUAL(errs.count, 3);
    CU_ASSERT_EQUAL(load(BASE "log: { levle: debug, access: stdout }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 8, "log: unknown key 'levle' (did you mean 'level'?)"));
    CU_ASSERT(errs_have(&errs, 5, 22, "log: unknown key 'access'"));
    CU_ASSERT_EQUAL(load(BASE "systems:\n"
                         "  - { virtual: a:1, internal: b:1, protocl: TCP }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 36, "systems[0]: unknown key 'protocl' (did you mean "
                        "'protocol'?)"));
    CU_ASSERT_EQUAL(load(BASE "systems:\n"
                         "  - { virtual: a:1, internl: b:1, protocol: TCP, path: [\"/\"] }\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 21, "systems[0]: unknown key 'internl' (did you mean "
                        "'internal'?)"));
    CU_ASSERT(errs_have(&errs, 6, 50, "systems[0]: unknown key 'path' (did you mean 'paths'?)"));
    /* the misspelt key is the missing one: one mistake, one error */
    CU_ASSERT(!errs_have(&errs, 0, 0, "missing required key 'internal'"));
    CU_ASSERT_EQUAL(errs.count, 2);
    CU_ASSERT_EQUAL(load(BASE "admin: { listne: 127.0.0.1:1 }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 10, "admin: unknown key 'listne' (did you mean 'listen'?)"));
}

static void
test_values_out_of_range(void)
{
    CU_ASSERT_EQUAL(load(BASE "workers: 65\nlog: { level: loud }\nconnect_timeout_ms: 0\n"
                         "keepalive_ms: soon\nadmin: { listen: localhost:1 }\n"
                         "drain_timeout_ms: 3600001\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 10, "workers: want auto or a number from 1 to 64"));
    CU_ASSERT(errs_have(&errs, 6, 15, "log: level: unknown level 'loud'"));
    CU_ASSERT(errs_have(&errs, 7, 21, "connect_timeout_ms: want a whole number from 1 to "
                        "600000, not '0'"));
    CU_ASSERT(errs_have(&errs, 8, 15, "keepalive_ms: want a whole number"));
    CU_ASSERT(errs_have(&errs, 9, 18, "admin: listen: 'localhost:1': host must be a "
                        "numeric IPv4 address"));
    CU_ASSERT(errs_have(&errs, 10, 19, "drain_timeout_ms: want a whole number from 0 to"));
    CU_ASSERT_EQUAL(load(BASE "keepalive_ms: 30000\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 15, "dead_peer_timeout_ms (30000) must be longer than "
                        "keepalive_ms (30000)"));
    CU_ASSERT_EQUAL(load(BASE "keepalive_ms: 500\ndead_peer_timeout_ms: 400\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 23, "dead_peer_timeout_ms (400) must be longer than "
                        "keepalive_ms (500)"));
    CU_ASSERT_EQUAL(load(BASE "log: { level: debgu }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 15, "(did you mean 'debug'?)"));
    CU_ASSERT_EQUAL(load(BASE "audit_fail: ajar\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 13, "audit_fail: want closed (refuse new streams while"));
    CU_ASSERT_EQUAL_FATAL(load(BASE "audit_fail: open\n"), FERRY_OK);
    CU_ASSERT_TRUE(cc->audit_fail_open);
    CU_ASSERT_EQUAL_FATAL(load(BASE "audit_fail: closed\n"), FERRY_OK);
    CU_ASSERT_FALSE(cc->audit_fail_open);
}

static void
test_tenant_and_location_checks(void)
{
    CU_ASSERT_EQUAL(load("gateway: g:1\ntenant: \"ac me\"\ntoken: t\nca: tls/ca.crt\n"
                         "location_id: \"a\\tb\"\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 9, "tenant 'ac me': use letters, digits"));
    CU_ASSERT(errs_have(&errs, 5, 14, "location_id: contains a control character"));
    CU_ASSERT_EQUAL(load(BASE "location_id: [ a ]\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 14, "location_id: want a single value, not a list"));

    char text[512];

    snprintf(text, sizeof(text), BASE "location_id: %0129d\n", 0);
    CU_ASSERT_EQUAL(load(text), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 14, "location_id: longer than 128 characters"));
    CU_ASSERT_EQUAL(load("gateway: g:1\ntenant: ${env:FERRY_TEST_BAD}\ntoken: t\n"
                         "ca: tls/ca.crt\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 9, "tenant '***': use letters"));
    CU_ASSERT(!errs_mention(&errs, "a b"));
    CU_ASSERT_EQUAL(load(BASE "location_id: ${env:FERRY_TEST_LOC}\n"), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(cc->location_id, "Berlin-1");
}

static void
test_tls_files_must_exist_and_pair(void)
{
    CU_ASSERT_EQUAL(load("gateway: g:1\ntenant: a\ntoken: t\nca: tls/nope.crt\n"
                         "cert: tls/connector.crt\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 4, 5, "ca: cannot read "));
    CU_ASSERT(errs_have(&errs, 4, 5, "tls/nope.crt: No such file or directory"));
    CU_ASSERT(errs_have(&errs, 5, 7, "cert: needs key as well"));
    CU_ASSERT_EQUAL(load(BASE "key: tls/connector.key\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 6, "key: needs cert as well"));
    CU_ASSERT_EQUAL(load(BASE "cert: tls/connector.crt\nkey: tls/missing.key\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 6, "key: cannot read "));
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT_EQUAL(load(BASE "audit_log: nodir/audit.jsonl\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 12, "audit_log: directory "));
    CU_ASSERT(errs_have(&errs, 5, 12, "nodir does not exist"));
    CU_ASSERT_EQUAL(load(BASE "audit_log: tls\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 12, "is a directory, not a file"));
    /* absolute paths stay as written */
    CU_ASSERT_EQUAL_FATAL(load(BASE "audit_log: /tmp/ferry-audit-test.jsonl\n"), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(cc->audit_log, "/tmp/ferry-audit-test.jsonl");
}

static void
test_systems_targets_and_protocols(void)
{
    CU_ASSERT_EQUAL(load(BASE "systems:\n"
                         "  - { virtual: erp, internal: 10.0.0.1:1, protocol: TCP }\n"
                         "  - { virtual: \"erp:0\", internal: \"[::1]:x\", protocol: htps }\n"
                         "  - { virtual: a:1, internal: b:1, protocol: SMTP }\n"
                         "  - { virtual: a:2, internal: b:2, protocol: [ TCP ] }\n"
                         "  - [ a, b ]\n"
                         "  - { virtual: a:3, internal: b:3, protocol: \"\" }\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 16, "systems[0]: virtual: 'erp': want host:port"));
    CU_ASSERT(errs_have(&errs, 7, 16, "systems[1]: virtual: 'erp:0': port must be 1..65535"));
    CU_ASSERT(errs_have(&errs, 7, 35, "systems[1]: internal: '[::1]:x': port must be 1..65535"));
    CU_ASSERT(errs_have(&errs, 7, 56, "systems[1]: protocol: unknown protocol 'htps' (did you "
                        "mean 'HTTPS'?) (TCP, TCPS, HTTP, HTTPS, LDAP, LDAPS, RFC or RFCS)"));
    CU_ASSERT(errs_have(&errs, 8, 46, "systems[2]: protocol: unknown protocol 'SMTP' (TCP,"));
    CU_ASSERT(errs_have(&errs, 9, 46, "systems[3]: protocol: want a single value, not a list"));
    CU_ASSERT(errs_have(&errs, 10, 5, "systems[4]: want a mapping"));
    CU_ASSERT(errs_have(&errs, 11, 46, "systems[5]: protocol: must not be empty"));
    CU_ASSERT_EQUAL(errs.count, 8);

    CU_ASSERT_EQUAL(load(BASE "systems: { virtual: a:1 }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 10, "systems: want a list"));

    /* every protocol, any case; IPv6 hosts */
    CU_ASSERT_EQUAL_FATAL(load(BASE "systems:\n"
                               "  - { virtual: a:1, internal: b:1, protocol: tcp }\n"
                               "  - { virtual: a:2, internal: b:1, protocol: Tcps }\n"
                               "  - { virtual: a:3, internal: b:1, protocol: HTTP }\n"
                               "  - { virtual: a:4, internal: b:1, protocol: https }\n"
                               "  - { virtual: a:5, internal: b:1, protocol: ldap }\n"
                               "  - { virtual: a:6, internal: b:1, protocol: LDAPS }\n"
                               "  - { virtual: a:7, internal: b:1, protocol: rfc }\n"
                               "  - { virtual: a:8, internal: b:1, protocol: rfcs }\n"
                               "  - { virtual: \"[FD00::A]:9\", internal: \"[fd00::12]:22\", "
                               "protocol: TCP }\n"), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cc->nsystems, 9);
    for (size_t i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(cc->systems[i].protocol, (enum ferry_sys_proto)(FERRY_SYS_TCP + i));
    CU_ASSERT_STRING_EQUAL(cc->systems[8].virtual_host, "fd00::a");
    CU_ASSERT_STRING_EQUAL(cc->systems[8].internal_host, "fd00::12");
    CU_ASSERT_EQUAL(cc->systems[8].internal_port, 22);
}

static void
test_a_system_with_a_bad_key_still_has_the_others_checked(void)
{
    /* A misspelt protocol key: reported with its suggestion, and the targets and paths
     * are checked in the same run (before, the system stopped at its first error). */
    CU_ASSERT_EQUAL(load(BASE "systems:\n"
                         "  - { virtual: erp, internal: 10.0.0.1:1, protcol: TCP }\n"
                         "  - { virtual: \"a:1\", internal: b, protocol: HTTP, paths: [ x ],"
                         " tls_verify: \"false\", port: 2 }\n"
                         "  - { virtual: \"a:1\", internal: \"b:1\", protocol: TCP }\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 16, "systems[0]: virtual: 'erp': want host:port"));
    CU_ASSERT(errs_have(&errs, 6, 43, "systems[0]: unknown key 'protcol' (did you mean "
                        "'protocol'?)"));
    CU_ASSERT(!errs_have(&errs, 0, 0, "missing required key 'protocol'"));  /* said once */
    CU_ASSERT(errs_have(&errs, 7, 33, "systems[1]: internal: 'b': want host:port"));
    CU_ASSERT(errs_have(&errs, 7, 61, "systems[1]: paths[0]: 'x' must start with '/'"));
    CU_ASSERT(errs_have(&errs, 7, 78, "systems[1]: tls_* keys need a TLS protocol"));
    CU_ASSERT(errs_have(&errs, 7, 87, "systems[1]: unknown key 'port'"));
    CU_ASSERT_EQUAL(errs.count, 6);     /* systems[1]'s bad internal: no duplicate check */
    /* in file order, whatever the order found */
    CU_ASSERT_EQUAL(errs.items[0].line, 6);
    CU_ASSERT_EQUAL(errs.items[0].col, 16);
    CU_ASSERT_EQUAL(errs.items[5].col, 87);
}

static void
test_a_refused_timeout_is_not_compared(void)
{
    /* keepalive_ms refused: the default is not compared with dead_peer_timeout_ms as if
     * the operator had written it; a valid pair still is, with another key wrong. */
    CU_ASSERT_EQUAL(load(BASE "keepalive_ms: 0\ndead_peer_timeout_ms: 5000\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 5, 15, "keepalive_ms: want a whole number"));
    CU_ASSERT_EQUAL(load(BASE "keepalive_ms: 500\ndead_peer_timeout_ms: 400\nworkrs: 2\n"),
                    FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 2);
    CU_ASSERT(errs_have(&errs, 6, 23, "dead_peer_timeout_ms (400) must be longer"));
    CU_ASSERT(errs_have(&errs, 7, 1, "unknown key 'workrs'"));
}

static void
test_sapgw_ports_for_rfc_only(void)
{
    CU_ASSERT_EQUAL_FATAL(load(BASE "systems:\n"
                               "  - { virtual: erp:sapgw00, internal: h:3300, protocol: RFC }\n"
                               "  - { virtual: erp:SAPGW42, internal: h:3342, protocol: RFCS }\n"
                               "  - { virtual: erp:3301, internal: h:3301, protocol: RFC }\n"),
                          FERRY_OK);
    CU_ASSERT_EQUAL(cc->systems[0].virtual_port, 3300);
    CU_ASSERT_EQUAL(cc->systems[1].virtual_port, 3342);
    CU_ASSERT_EQUAL(cc->systems[2].virtual_port, 3301);
    CU_ASSERT_PTR_EQUAL(ferry_connector_find_system(cc, "ERP", 3342), &cc->systems[1]);

    CU_ASSERT_EQUAL(load(BASE "systems:\n"
                         "  - { virtual: erp:sapgw00, internal: h:3300, protocol: TCP }\n"
                         "  - { virtual: erp:sapgw01, internal: h:sapgw01, protocol: RFC }\n"
                         "  - { virtual: erp:sapgw1, internal: h:3300, protocol: RFC }\n"
                         "  - { virtual: erp:sapms01, internal: h:3300, protocol: RFC }\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 16, "systems[0]: virtual: 'erp:sapgw00': port names "
                        "(sapgwNN) are only for the virtual port of protocol RFC or RFCS"));
    CU_ASSERT(errs_have(&errs, 7, 39, "systems[1]: internal: 'h:sapgw01': port names"));
    CU_ASSERT(errs_have(&errs, 8, 16, "systems[2]: virtual: 'erp:sapgw1': want sapgwNN with "
                        "a two-digit instance number"));
    CU_ASSERT(errs_have(&errs, 9, 16, "systems[3]: virtual: 'erp:sapms01': port must be "
                        "1..65535 or sapgwNN"));
    CU_ASSERT_EQUAL(errs.count, 4);
}

static void
test_duplicate_virtual_names_the_first_line(void)
{
    CU_ASSERT_EQUAL(load(BASE "systems:\n"
                         "  - { virtual: erp.internal:3300, internal: h:1, protocol: RFC }\n"
                         "  - { virtual: erp.internal:3301, internal: h:1, protocol: RFC }\n"
                         "  - { virtual: ERP.Internal:3300, internal: h:2, protocol: TCP }\n"
                         "  - { virtual: erp.internal:sapgw01, internal: h:2, protocol: RFC }\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 8, 16, "systems[2]: virtual: erp.internal:3300 is already "
                        "mapped by systems[0] (line 6)"));
    CU_ASSERT(errs_have(&errs, 9, 16, "systems[3]: virtual: erp.internal:3301 is already "
                        "mapped by systems[1] (line 7)"));
    CU_ASSERT_EQUAL(errs.count, 2);
    /* the same host on another port, or another host on the same port, is fine */
    CU_ASSERT_EQUAL(load(BASE "systems:\n"
                         "  - { virtual: a:1, internal: h:1, protocol: TCP }\n"
                         "  - { virtual: a:2, internal: h:1, protocol: TCP }\n"
                         "  - { virtual: b:1, internal: h:1, protocol: TCP }\n"), FERRY_OK);
}

static void
test_paths_rules(void)
{
    CU_ASSERT_EQUAL(load(BASE "systems:\n"
                         "  - { virtual: a:1, internal: h:1, protocol: TCP, paths: [ \"/\" ] }\n"
                         "  - { virtual: a:2, internal: h:1, protocol: HTTP, paths: /api/ }\n"
                         "  - { virtual: a:3, internal: h:1, protocol: HTTP, paths: [] }\n"
                         "  - virtual: a:4\n"
                         "    internal: h:1\n"
                         "    protocol: HTTPS\n"
                         "    paths: [ api/, \"/a?b\", \"/a b\", \"/x/../y\", \"/%2E%2e\", "
                         "[ \"/\" ], \"/ok\" ]\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 58, "systems[0]: paths: only for protocol HTTP or HTTPS"));
    CU_ASSERT(errs_have(&errs, 7, 59, "systems[1]: paths: want a list of path prefixes"));
    CU_ASSERT(errs_have(&errs, 8, 59, "systems[2]: paths: want from 1 to 256 prefixes"));
    CU_ASSERT(errs_have(&errs, 12, 14, "systems[3]: paths[0]: 'api/' must start with '/'"));
    CU_ASSERT(errs_have(&errs, 12, 20, "systems[3]: paths[1]: '/a?b' must not contain '?'"));
    CU_ASSERT(errs_have(&errs, 12, 28, "systems[3]: paths[2]: '/a b' must not contain spaces"));
    CU_ASSERT(errs_have(&errs, 12, 36, "systems[3]: paths[3]: '/x/../y' must not contain '.' "
                        "or '..' segments"));
    CU_ASSERT(errs_have(&errs, 12, 47, "systems[3]: paths[4]: '/%2E%2e' must not contain"));
    CU_ASSERT(errs_have(&errs, 12, 58, "systems[3]: paths[5]: want a single value, not a list"));
    CU_ASSERT_EQUAL(errs.count, 9);

    /* absent or null: every path; `paths` on HTTPS is fine */
    CU_ASSERT_EQUAL_FATAL(load(BASE "systems:\n"
                               "  - { virtual: a:1, internal: h:1, protocol: HTTP }\n"
                               "  - { virtual: a:2, internal: h:1, protocol: HTTP, paths: }\n"
                               "  - { virtual: a:3, internal: h:1, protocol: HTTPS, "
                               "paths: [ /api/, /production/accounting, /v1.2/ ] }\n"
                               "  - { virtual: a:4, internal: h:1, protocol: HTTP, "
                               "paths: [ / ] }\n"), FERRY_OK);
    const struct ferry_conf_system *all = &cc->systems[0], *some = &cc->systems[2];

    CU_ASSERT_PTR_NULL(cc->systems[1].paths);
    CU_ASSERT(ferry_connector_path_allowed(all, "/anything/../at/all"));
    CU_ASSERT(ferry_connector_path_allowed(some, "/api/"));
    CU_ASSERT(ferry_connector_path_allowed(some, "/api/x?y=1"));
    CU_ASSERT(ferry_connector_path_allowed(some, "/production/accounting"));
    CU_ASSERT(ferry_connector_path_allowed(some, "/production/accounting-plus-more"));
    CU_ASSERT(ferry_connector_path_allowed(some, "/v1.2/x"));
    CU_ASSERT(!ferry_connector_path_allowed(some, "/api"));          /* shorter than prefix */
    CU_ASSERT(!ferry_connector_path_allowed(some, "/API/x"));        /* case-sensitive */
    CU_ASSERT(!ferry_connector_path_allowed(some, "/ap?i/"));        /* compared up to '?' */
    CU_ASSERT(!ferry_connector_path_allowed(some, "/admin"));
    CU_ASSERT(!ferry_connector_path_allowed(some, "/api/../admin"));
    CU_ASSERT(!ferry_connector_path_allowed(some, "/api/%2e%2E/admin"));
    CU_ASSERT(!ferry_connector_path_allowed(some, "/api/./x"));
    CU_ASSERT(!ferry_connector_path_allowed(some, "/api/.."));
    CU_ASSERT(ferry_connector_path_allowed(some, "/api/..x/y"));     /* not a dot segment */
    CU_ASSERT(ferry_connector_path_allowed(some, "/api/x?q=/../"));  /* the query is not a path */
    CU_ASSERT(!ferry_connector_path_allowed(some, "api/x"));
    CU_ASSERT(!ferry_connector_path_allowed(some, ""));
    CU_ASSERT(ferry_connector_path_allowed(&cc->systems[3], "/x/../y"));   /* "/" is all */
}

static void
test_find_system_and_proto_names(void)
{
    CU_ASSERT_EQUAL_FATAL(load(BASE "systems:\n"
                               "  - { virtual: Erp.Internal:3300, internal: h:1, protocol: RFC }\n"
                               "  - { virtual: \"[fd00::1]:80\", internal: h:1, protocol: HTTP }\n"
                               "  - { virtual: 10.1.2.3:80, internal: h:1, protocol: HTTP }\n"),
                          FERRY_OK);
    CU_ASSERT_PTR_EQUAL(ferry_connector_find_system(cc, "erp.internal", 3300), &cc->systems[0]);
    CU_ASSERT_PTR_EQUAL(ferry_connector_find_system(cc, "ERP.INTERNAL", 3300), &cc->systems[0]);
    CU_ASSERT_PTR_NULL(ferry_connector_find_system(cc, "erp.internal", 3301));
    CU_ASSERT_PTR_NULL(ferry_connector_find_system(cc, "erp.internal.", 3300));
    CU_ASSERT_PTR_NULL(ferry_connector_find_system(cc, "erp", 3300));
    CU_ASSERT_PTR_EQUAL(ferry_connector_find_system(cc, "[FD00:0::1]", 80), &cc->systems[1]);
    CU_ASSERT_PTR_EQUAL(ferry_connector_find_system(cc, "fd00::1", 80), &cc->systems[1]);
    CU_ASSERT_PTR_EQUAL(ferry_connector_find_system(cc, "10.1.2.3", 80), &cc->systems[2]);
    CU_ASSERT_PTR_NULL(ferry_connector_find_system(cc, NULL, 80));
    CU_ASSERT_STRING_EQUAL(ferry_sys_proto_name(FERRY_SYS_TCP), "TCP");
    CU_ASSERT_STRING_EQUAL(ferry_sys_proto_name(FERRY_SYS_HTTPS), "HTTPS");
    CU_ASSERT_STRING_EQUAL(ferry_sys_proto_name(FERRY_SYS_LDAPS), "LDAPS");
    CU_ASSERT_STRING_EQUAL(ferry_sys_proto_name(FERRY_SYS_RFCS), "RFCS");
    CU_ASSERT_STRING_EQUAL(ferry_sys_proto_name((enum ferry_sys_proto)0), "?");
    CU_ASSERT_STRING_EQUAL(ferry_sys_proto_name((enum ferry_sys_proto)99), "?");
}

static bool
no_message_has(const char *text)
{
    for (int i = 0; i < errs.count; i++)
        if (strstr(errs.items[i].msg, text) != NULL)
            return false;
    return true;
}

static void
test_token_never_in_a_message(void)
{
    /* inline token, every other key wrong: all reported, none quotes the token */
    CU_ASSERT_EQUAL(load("gateway: g\ntenant: \"a b\"\ntoken: " TOKEN "\nca: nope\n"
                         "tokn: x\nworkers: many\nkeepalive_ms: 0\n"
                         "systems:\n  - { virtual: v, internal: i, protocol: p, token: t }\n"),
                    FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 10);    /* systems[0] is checked past its unknown key */
    CU_ASSERT(errs_have(&errs, 5, 1, "unknown key 'tokn' (did you mean 'token'?)"));
    CU_ASSERT(errs_have(&errs, 9, 16, "systems[0]: virtual: 'v': want host:port"));
    CU_ASSERT(errs_have(&errs, 9, 42, "systems[0]: protocol: unknown protocol 'p'"));
    CU_ASSERT(errs_have(&errs, 9, 45, "systems[0]: unknown key 'token'"));
    CU_ASSERT(no_message_has(TOKEN));

    /* the same value given by reference is never quoted anywhere */
    CU_ASSERT_EQUAL(load("gateway: ${env:ACME_TOKEN}\ntenant: ${env:ACME_TOKEN}\n"
                         "token: ${env:ACME_TOKEN}\nca: tls/nope\n"
                         "location_id: ${env:ACME_TOKEN}\nlog:\n  level: ${env:ACME_TOKEN}\n"
                         "systems:\n  - virtual: ${env:ACME_TOKEN}\n"
                         "    internal: ${env:ACME_TOKEN}\n    protocol: ${env:ACME_TOKEN}\n"
                         "  - virtual: a:1\n    internal: b:1\n    protocol: HTTP\n"
                         "    paths: [ \"${env:ACME_TOKEN}\" ]\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 7);
    CU_ASSERT(no_message_has(TOKEN));
    CU_ASSERT(errs_have(&errs, 1, 10, "gateway: want host:port"));
    CU_ASSERT(errs_have(&errs, 4, 5, "ca: cannot read "));
    CU_ASSERT(errs_have(&errs, 7, 10, "log: level: unknown level '***'"));
    CU_ASSERT(errs_have(&errs, 9, 14, "systems[0]: virtual: want host:port"));
    CU_ASSERT(errs_have(&errs, 10, 15, "systems[0]: internal: want host:port"));
    CU_ASSERT(errs_have(&errs, 11, 15, "systems[0]: protocol: unknown protocol '***'"));
    CU_ASSERT(errs_have(&errs, 15, 14, "systems[1]: paths[0]: must start with '/'"));

    /* a reference that fails names the reference, not a value */
    CU_ASSERT_EQUAL(load("gateway: g:1\ntenant: a\ntoken: ${env:FERRY_TEST_UNSET}\nca: "
                         "tls/ca.crt\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 8, "token: ${env:FERRY_TEST_UNSET} is not set"));
    CU_ASSERT_EQUAL(load("gateway: g:1\ntenant: a\ntoken: \"\"\nca: tls/ca.crt\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 8, "token: must not be empty"));

    /* ${file:} tokens lose one trailing newline, relative to the config's directory */
    CU_ASSERT_EQUAL_FATAL(load("gateway: g:1\ntenant: a\ntoken: ${file:tls/token}\n"
                               "ca: tls/ca.crt\n"), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(cc->token, "from-a-file");
}

static void
test_inline_token_is_not_quoted(void)
{
    /* The token's own errors never quote it, even when inline. */
    CU_ASSERT_EQUAL(load("gateway: g:1\ntenant: a\ntoken: [ " TOKEN " ]\nca: tls/ca.crt\n"
                         "tokn: " TOKEN "\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 3, 8, "token: want a single value, not a list"));
    CU_ASSERT(errs_have(&errs, 5, 1, "unknown key 'tokn' (did you mean 'token'?)"));
    CU_ASSERT(no_message_has(TOKEN));
}

static void
test_errors_are_capped_and_counted(void)
{
    char   text[8192];
    size_t n = (size_t)snprintf(text, sizeof(text), BASE "systems:\n");

    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "  - { virtual: bad, internal: h:1, protocol: TCP }\n");
    CU_ASSERT_EQUAL(load(text), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, FERRY_ERRLIST_MAX);
    CU_ASSERT_EQUAL(errs.dropped, 10);
    CU_ASSERT(errs_have(&errs, 6, 16, "systems[0]: virtual: 'bad': want host:port"));
    CU_ASSERT(errs_have(&errs, 25, 16, "systems[19]: virtual"));
}

static void
test_load_file_reads_and_resolves_against_its_directory(void)
{
    char path[1200];

    CU_ASSERT_FATAL(file_write(dir, "connector.yaml", BASE "audit_log: audit.jsonl\n"));
    snprintf(path, sizeof(path), "%s/connector.yaml", dir);
    memset(&errs, 0, sizeof(errs));
    ferry_connector_conf_free(cc);
    CU_ASSERT_EQUAL_FATAL(ferry_connector_conf_load_file(path, &cc, &errs), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(cc->ca, in_dir("tls/ca.crt"));
    CU_ASSERT_STRING_EQUAL(cc->audit_log, in_dir("audit.jsonl"));
    ferry_connector_conf_free(cc);
    cc = NULL;

    snprintf(path, sizeof(path), "%s/missing.yaml", dir);
    memset(&errs, 0, sizeof(errs));
    CU_ASSERT_EQUAL(ferry_connector_conf_load_file(path, &cc, &errs), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(cc);
    CU_ASSERT(errs_have(&errs, 0, 0, "cannot open"));
    CU_ASSERT_STRING_EQUAL(errs.items[0].file, path);
}

static void
test_principal_propagation_section_and_modes(void)
{
    /* Defaults: the section makes HTTP/HTTPS systems `header`, others stay off. */
    CU_ASSERT_EQUAL_FATAL(load(BASE "principal_propagation:\n"
                               "  ca_cert: tls/ca.crt\n"
                               "  ca_key: tls/connector.key\n"
                               "systems:\n"
                               "  - { virtual: a:1, internal: b:1, protocol: HTTP }\n"
                               "  - { virtual: a:2, internal: b:1, protocol: HTTPS,"
                               " principal_propagation: tls }\n"
                               "  - { virtual: a:3, internal: b:1, protocol: TCP }\n"
                               "  - { virtual: a:4, internal: b:1, protocol: HTTPS,"
                               " principal_propagation: off }\n"), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cc->pp);
    CU_ASSERT_STRING_EQUAL(cc->pp->ca_cert, in_dir("tls/ca.crt"));
    CU_ASSERT_STRING_EQUAL(cc->pp->ca_key, in_dir("tls/connector.key"));
    CU_ASSERT_STRING_EQUAL(cc->pp->subject, "CN=${name}");
    CU_ASSERT_EQUAL(cc->pp->validity_minutes, 10);
    CU_ASSERT_EQUAL(cc->pp->cache_size, 4096);
    CU_ASSERT_EQUAL(cc->systems[0].pp, FERRY_PP_HEADER);
    CU_ASSERT_EQUAL(cc->systems[1].pp, FERRY_PP_TLS);
    CU_ASSERT_EQUAL(cc->systems[2].pp, FERRY_PP_OFF);
    CU_ASSERT_EQUAL(cc->systems[3].pp, FERRY_PP_OFF);
    CU_ASSERT_STRING_EQUAL(ferry_sys_pp_name(FERRY_PP_TLS), "tls");

    /* Every key; the subject is kept raw (its ${...} are claims) with its column. */
    CU_ASSERT_EQUAL_FATAL(load(BASE "principal_propagation:\n"
                               "  ca_cert: tls/ca.crt\n"
                               "  ca_key: tls/connector.key\n"
                               "  subject: \"CN=${user_name},O=Acme\"\n"
                               "  validity_minutes: 43200\n"
                               "  cache_size: 7\n"
                               "systems:\n"
                               "  - { virtual: a:1, internal: b:1, protocol: HTTP }\n"),
                          FERRY_OK);
    CU_ASSERT_STRING_EQUAL(cc->pp->subject, "CN=${user_name},O=Acme");
    CU_ASSERT_EQUAL(cc->pp->subject_line, 8);
    CU_ASSERT_EQUAL(cc->pp->subject_col, 13);
    CU_ASSERT_EQUAL(cc->pp->ca_line, 6);
    CU_ASSERT_EQUAL(cc->pp->ca_col, 12);
    CU_ASSERT_EQUAL(cc->pp->validity_minutes, 43200);
    CU_ASSERT_EQUAL(cc->pp->cache_size, 7);

    /* Without the section: systems are off, and naming a mode is an error. */
    CU_ASSERT_EQUAL_FATAL(load(BASE "systems:\n"
                               "  - { virtual: a:1, internal: b:1, protocol: HTTP }\n"),
                          FERRY_OK);
    CU_ASSERT_PTR_NULL(cc->pp);
    CU_ASSERT_EQUAL(cc->systems[0].pp, FERRY_PP_OFF);
    CU_ASSERT_EQUAL(load(BASE "systems:\n"
                         "  - { virtual: a:1, internal: b:1, protocol: HTTP,"
                         " principal_propagation: header }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 75, "systems[0]: principal_propagation: header needs the "
                        "connector's top-level principal_propagation: section"));
    CU_ASSERT_EQUAL(errs.count, 1);
}

static void
test_principal_propagation_errors(void)
{
    CU_ASSERT_EQUAL(load(BASE "principal_propagation:\n"
                         "  ca_cert: tls/missing.crt\n"
                         "  validity_minutes: 43201\n"
                         "  cache_size: 0\n"
                         "  subject: [ CN ]\n"
                         "systems:\n"
                         "  - { virtual: a:1, internal: b:1, protocol: HTTP,"
                         " principal_propagation: tls }\n"
                         "  - { virtual: a:2, internal: b:1, protocol: TCP,"
                         " principal_propagation: header }\n"
                         "  - { virtual: a:3, internal: b:1, protocol: HTTPS,"
                         " principal_propagation: both }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 6, 3, "principal_propagation: missing required key 'ca_key'"));
    CU_ASSERT(errs_have(&errs, 6, 12, "principal_propagation: ca_cert: cannot read"));
    CU_ASSERT(errs_have(&errs, 7, 21, "principal_propagation: validity_minutes"));
    CU_ASSERT(errs_have(&errs, 8, 15, "principal_propagation: cache_size"));
    CU_ASSERT(errs_have(&errs, 9, 12, "principal_propagation: subject: want a single value"));
    CU_ASSERT(errs_have(&errs, 11, 75, "systems[0]: principal_propagation: tls needs protocol "
                        "HTTPS"));
    CU_ASSERT(errs_have(&errs, 12, 74, "systems[1]: principal_propagation: only HTTP and HTTPS"));
    CU_ASSERT(errs_have(&errs, 13, 76, "systems[2]: principal_propagation: want header, tls "
                        "or off, not 'both'"));
    CU_ASSERT_EQUAL(load(BASE "principal_propagation: tls/ca.crt\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 5, 24, "principal_propagation: want a mapping"));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "full config lands in every field", test_full_config_lands_in_every_field },
        { "minimal config gets the defaults", test_minimal_config_gets_the_defaults },
        { "gateway list form", test_gateway_list_form },
        { "gateway errors point at the item", test_gateway_errors_point_at_the_item },
        { "missing required keys and empty file", test_missing_required_keys_and_empty_file },
        { "unknown keys suggest", test_unknown_keys_suggest },
        { "values out of range", test_values_out_of_range },
        { "tenant and location checks", test_tenant_and_location_checks },
        { "tls files must exist and pair", test_tls_files_must_exist_and_pair },
        { "systems: targets and protocols", test_systems_targets_and_protocols },
        { "a system with a bad key still has the others checked",
          test_a_system_with_a_bad_key_still_has_the_others_checked },
        { "a refused timeout is not compared", test_a_refused_timeout_is_not_compared },
        { "sapgwNN ports for RFC only", test_sapgw_ports_for_rfc_only },
        { "duplicate virtual names the first line",
          test_duplicate_virtual_names_the_first_line },
        { "paths rules", test_paths_rules },
        { "find system and protocol names", test_find_system_and_proto_names },
        { "token never in a message", test_token_never_in_a_message },
        { "inline token is not quoted", test_inline_token_is_not_quoted },
        { "errors are capped and counted", test_errors_are_capped_and_counted },
        { "load_file reads and resolves against its directory",
          test_load_file_reads_and_resolves_against_its_directory },
        { "principal propagation section and modes",
          test_principal_propagation_section_and_modes },
        { "principal propagation errors", test_principal_propagation_errors },
        { NULL, NULL }
    };
    int rc;

    setenv("ACME_TOKEN", TOKEN, 1);
    setenv("FERRY_TEST_LOC", "Berlin-1", 1);
    setenv("FERRY_TEST_BAD", "a b", 1);
    unsetenv("FERRY_TEST_UNSET");
    if ((dir = tmpdir_new()) == NULL || !mkdir_in(dir, "tls")
        || !file_write(dir, "tls/ca.crt", "ca\n") || !file_write(dir, "tls/connector.crt", "c\n")
        || !file_write(dir, "tls/connector.key", "k\n")
        || !file_write(dir, "tls/token", "from-a-file\n"))
        return 2;
    snprintf(name, sizeof(name), "%s/connector.yaml", dir);
    rc = cu_run("connector-conf", tests);
    ferry_connector_conf_free(cc);
    tmpdir_free(dir);
    return rc;
}
