/*
 * dest_test.c: destination validation per Type (core/dest/dest.c) through the
 * loader: derived host/port/path, required properties named in errors, SAP value
 * sets, tenants and locations, near-miss warnings while custom properties are kept.
 */
#include "core/conf/conf-test.h"

#include <ferry/dest.h>

#include "cu.h"
#include "dest/dest-int.h"

static struct ferry_errlist errs;
static struct ferry_conf   *conf;

static int
load(const char *text)
{
    return conf_test_load(text, &conf, &errs);
}

/* Load one destination given as its property lines (each "    Key: value\n");
 * lines 1-2 are "destinations:" and "  - Name: x", so the first line is line 3. */
static const struct ferry_dest *
one(const char *props)
{
    char text[4096];

    snprintf(text, sizeof(text), "destinations:\n  - Name: x\n%s", props);
    if (load(text) != FERRY_OK)
        return NULL;
    return ferry_registry_find(conf->registry, "x");
}

static void
test_http_url_gives_scheme_host_port_path(void)
{
    const struct ferry_dest *d;

    d = one("    Type: HTTP\n    URL: http://billing.example.com\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_type(d), FERRY_DEST_HTTP);
    CU_ASSERT_STRING_EQUAL(d->scheme, "http");
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "billing.example.com");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 80);
    CU_ASSERT_STRING_EQUAL(d->path, "");
    CU_ASSERT_STRING_EQUAL(d->authentication, "NoAuthentication");
    CU_ASSERT_EQUAL(ferry_dest_proxy_type(d), FERRY_PROXY_INTERNET);
    CU_ASSERT_EQUAL(d->connect_timeout_ms, 5000);
    CU_ASSERT_EQUAL(d->read_timeout_ms, 30000);
    CU_ASSERT_STRING_EQUAL(ferry_dest_name(d), "x");
    CU_ASSERT_STRING_EQUAL(ferry_dest_tenant(d), "");
    CU_ASSERT_STRING_EQUAL(ferry_dest_location(d), "");
    CU_ASSERT_PTR_NULL(d->policy);
    CU_ASSERT_STRING_EQUAL(d->file, "t.yaml");
    CU_ASSERT_EQUAL(d->line, 2);
    CU_ASSERT_EQUAL(d->col, 5);

    d = one("    Type: HTTP\n    URL: HTTPS://billing.example.com/api/v1?x=1\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(d->scheme, "https");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 443);
    CU_ASSERT_STRING_EQUAL(d->path, "/api/v1?x=1");

    d = one("    Type: HTTP\n    URL: https://[2001:db8::1]:8443/\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "2001:db8::1");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 8443);
    CU_ASSERT_STRING_EQUAL(d->path, "/");
}

static void
test_http_bad_or_missing_url_names_the_property(void)
{
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n"));
    CU_ASSERT(errs_have(&errs, 2, 5, "destination 'x': missing required property 'URL'"));
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: ftp://files.example\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "URL: scheme 'ftp' is not allowed here"));
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: billing.example\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "URL 'billing.example': want scheme://host"));
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: http://h:0/\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "port must be 1..65535"));
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: http://u:p@h/\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "user info in the URL is not supported"));
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: http:///path\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "no host"));
}

static void
test_authentication_requires_its_properties(void)
{
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: https://h\n"
                           "    Authentication: BasicAuthentication\n    User: u\n"));
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 2, 5, "destination 'x': Authentication BasicAuthentication "
                        "needs property 'Password'"));
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: https://h\n"
                           "    Authentication: OAuth2ClientCredentials\n    clientId: c\n"));
    CU_ASSERT(errs_have(&errs, 2, 5, "needs property 'tokenServiceURL'"));
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: https://h\n"
                           "    Authentication: OAuth2Password\n    tokenServiceURL: https://a\n"));
    CU_ASSERT_EQUAL(errs.count, 3);
    CU_ASSERT(errs_have(&errs, 2, 5, "OAuth2Password needs property 'clientId'"));
    CU_ASSERT(errs_have(&errs, 2, 5, "OAuth2Password needs property 'User'"));
    CU_ASSERT(errs_have(&errs, 2, 5, "OAuth2Password needs property 'Password'"));
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: https://h\n"
                           "    Authentication: OAuth2JWTBearer\n    clientId: ''\n"
                           "    tokenServiceURL: https://a\n"));
    CU_ASSERT(errs_have(&errs, 2, 5, "OAuth2JWTBearer needs property 'clientId'"));
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: http://h\n"
                           "    Authentication: ClientCertificateAuthentication\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "ClientCertificateAuthentication needs an https:// URL"));

    const struct ferry_dest *d = one("    Type: HTTP\n    URL: https://h\n"
                                     "    Authentication: OAuth2ClientCredentials\n"
                                     "    clientId: c\n    tokenServiceURL: https://a/t\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(d->authentication, "OAuth2ClientCredentials");
}

static void
test_unknown_authentication_value_suggests(void)
{
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: https://h\n"
                           "    Authentication: OAuth2ClientCredential\n"));
    CU_ASSERT(errs_have(&errs, 5, 5, "Authentication: unknown value 'OAuth2ClientCredential' "
                        "(did you mean 'OAuth2ClientCredentials'?)"));
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: https://h\n    Authentication: Kerberos\n"));
    CU_ASSERT(errs_have(&errs, 5, 5, "Authentication: unknown value 'Kerberos'"));
    CU_ASSERT(!errs_mention(&errs, "did you mean"));
}

static void
test_http_timeouts_and_tls_options(void)
{
    const struct ferry_dest *d;

    d = one("    Type: HTTP\n    URL: https://h\n    URL.connectionTimeoutInSeconds: 10\n"
            "    URL.socketReadTimeoutInSeconds: 43200\n    HostnameVerifier: BrowserCompatible\n"
            "    TrustAll: 'false'\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(d->connect_timeout_ms, 10000);
    CU_ASSERT_EQUAL(d->read_timeout_ms, 43200000);
    CU_ASSERT_EQUAL(conf->warnings.count, 0);

    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: https://h\n"
                           "    URL.connectionTimeoutInSeconds: 301\n"
                           "    URL.socketReadTimeoutInSeconds: 0\n"
                           "    HostnameVerifier: strict\n    TrustAll: maybe\n"));
    CU_ASSERT_EQUAL(errs.count, 4);
    CU_ASSERT(errs_have(&errs, 5, 5, "URL.connectionTimeoutInSeconds: want whole seconds "
                        "from 1 to 300, not '301'"));
    CU_ASSERT(errs_have(&errs, 6, 5, "URL.socketReadTimeoutInSeconds: want whole seconds "
                        "from 1 to 43200"));
    CU_ASSERT(errs_have(&errs, 7, 5, "HostnameVerifier: unknown value 'strict' (did you "
                        "mean 'Strict'?)"));
    CU_ASSERT(errs_have(&errs, 8, 5, "TrustAll: want true or false, not 'maybe'"));
}

static void
test_trust_all_true_is_warned(void)
{
    const struct ferry_dest *d = one("    Type: HTTP\n    URL: https://h\n    TrustAll: TRUE\n");

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(conf->warnings.count, 1);
    CU_ASSERT(errs_have(&conf->warnings, 5, 5, "destination 'x': TrustAll is true"));
    CU_ASSERT_STRING_EQUAL(conf->warnings.items[0].file, "t.yaml");
}

static void
test_tcp_address_forms(void)
{
    const struct ferry_dest *d;

    d = one("    Type: TCP\n    Address: tcp://db.internal:5432\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_type(d), FERRY_DEST_TCP);
    CU_ASSERT_STRING_EQUAL(d->scheme, "tcp");
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "db.internal");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 5432);

    d = one("    Type: TCP\n    Address: db.internal\n    Port: 5433\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "db.internal");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 5433);

    d = one("    Type: TCP\n    URL: tcp://10.0.0.5:6379\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "10.0.0.5");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 6379);
}

static void
test_tcp_missing_or_bad_address_names_the_property(void)
{
    CU_ASSERT_PTR_NULL(one("    Type: TCP\n"));
    CU_ASSERT(errs_have(&errs, 2, 5, "missing required property 'Address' (tcp://host:port)"));
    CU_ASSERT_PTR_NULL(one("    Type: TCP\n    Address: tcp://db.internal\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "Address 'tcp://db.internal': needs a port"));
    CU_ASSERT_PTR_NULL(one("    Type: TCP\n    Address: db.internal\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "Address without a port"));
    CU_ASSERT_PTR_NULL(one("    Type: TCP\n    Address: db.internal\n    Port: http\n"));
    CU_ASSERT(errs_have(&errs, 5, 5, "Port: want 1..65535, not 'http'"));
    CU_ASSERT_PTR_NULL(one("    Type: TCP\n    Address: http://h:80\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "Address: scheme 'http' is not allowed here"));
    CU_ASSERT_PTR_NULL(one("    Type: TCP\n    URL: tcp://h:99999\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "URL 'tcp://h:99999': port must be 1..65535"));
}

static void
test_rfc_sysnr_maps_to_port_33nn(void)
{
    static const struct {
        const char *sysnr;
        uint16_t    port;
    } ok[] = { { "\"00\"", 3300 }, { "\"02\"", 3302 }, { "\"99\"", 3399 }, { "00", 3300 },
               { "'42'", 3342 } };
    char props[256];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const struct ferry_dest *d;

        snprintf(props, sizeof(props), "    Type: RFC\n    jco.client.ashost: erp.internal\n"
                 "    jco.client.sysnr: %s\n", ok[i].sysnr);
        d = one(props);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        CU_ASSERT_EQUAL(ferry_dest_type(d), FERRY_DEST_RFC);
        CU_ASSERT_STRING_EQUAL(d->scheme, "rfc");
        CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "erp.internal");
        CU_ASSERT_EQUAL(ferry_dest_port(d), ok[i].port);
        CU_ASSERT_STRING_EQUAL(ferry_dest_prop(d, "jco.client.sysnr"), ok[i].port == 3342
                               ? "42" : ok[i].port == 3302 ? "02" : ok[i].port == 3399 ? "99"
                               : "00");
    }
}

static void
test_rfc_bad_sysnr_rejected(void)
{
    static const char *const bad[] = { "\"7\"", "7", "\"100\"", "ab", "\"0x\"", "''" };
    char props[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(props, sizeof(props), "    Type: RFC\n    jco.client.ashost: erp.internal\n"
                 "    jco.client.sysnr: %s\n", bad[i]);
        CU_ASSERT_PTR_NULL(one(props));
        CU_ASSERT_EQUAL(errs.count, 1);
        CU_ASSERT(errs_mention(&errs, "jco.client.sysnr"));
    }
    CU_ASSERT_PTR_NULL(one("    Type: RFC\n    jco.client.ashost: h\n    jco.client.sysnr: ab\n"));
    CU_ASSERT(errs_have(&errs, 5, 5, "jco.client.sysnr: want two digits \"00\"..\"99\", "
                        "not 'ab'"));
}

static void
test_rfc_target_forms_and_errors(void)
{
    const struct ferry_dest *d;

    d = one("    Type: RFC\n    jco.client.wshost: erp.example.com\n"
            "    jco.client.wsport: 443\n    jco.client.client: '100'\n"
            "    jco.client.custom_thing: kept\n    jco.destination.pool_capacity: 3\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "erp.example.com");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 443);
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop(d, "jco.client.custom_thing"), "kept");
    CU_ASSERT_EQUAL(conf->warnings.count, 0);

    CU_ASSERT_PTR_NULL(one("    Type: RFC\n    jco.client.mshost: ms.internal\n"
                           "    jco.client.r3name: ERP\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "load-balanced RFC (jco.client.mshost) is not supported "
                        "yet; set jco.client.ashost and jco.client.sysnr"));
    CU_ASSERT_PTR_NULL(one("    Type: RFC\n    jco.client.ashost: h\n"));
    CU_ASSERT(errs_have(&errs, 2, 5, "missing required property 'jco.client.sysnr'"));
    CU_ASSERT_PTR_NULL(one("    Type: RFC\n"));
    CU_ASSERT(errs_have(&errs, 2, 5, "missing required property 'jco.client.ashost'"));
}

static void
test_rfc_onpremise_via_jco_names_with_location(void)
{
    const struct ferry_dest *d;

    d = one("    Type: RFC\n    jco.client.ashost: erp.internal\n    jco.client.sysnr: '00'\n"
            "    jco.destination.proxy_type: OnPremise\n"
            "    jco.client.cloud_connector_location_id: berlin\n    tenant: acme\n"
            "tenants: [ { id: acme, token: t } ]\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_proxy_type(d), FERRY_PROXY_ONPREMISE);
    CU_ASSERT_STRING_EQUAL(ferry_dest_location(d), "berlin");
    CU_ASSERT_STRING_EQUAL(ferry_dest_tenant(d), "acme");

    CU_ASSERT_PTR_NULL(one("    Type: RFC\n    jco.client.ashost: h\n    jco.client.sysnr: '00'\n"
                           "    jco.destination.proxy_type: OnPremise\n"
                           "    ProxyType: Internet\n"));
    CU_ASSERT(errs_have(&errs, 6, 5, "jco.destination.proxy_type is OnPremise but ProxyType "
                        "is Internet"));
}

static void
test_ldap_url_default_ports(void)
{
    const struct ferry_dest *d;

    d = one("    Type: LDAP\n    ldap.url: ldap://ad.internal\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_type(d), FERRY_DEST_LDAP);
    CU_ASSERT_STRING_EQUAL(d->scheme, "ldap");
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "ad.internal");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 389);
    d = one("    Type: LDAP\n    ldap.url: ldaps://ad.internal\n    ldap.proxyType: OnPremise\n"
            "tenants: [ { id: acme, token: t } ]\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(d->scheme, "ldaps");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 636);
    CU_ASSERT_EQUAL(ferry_dest_proxy_type(d), FERRY_PROXY_ONPREMISE);
    d = one("    Type: LDAP\n    ldap.url: ldap://ad.internal:10389\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_port(d), 10389);

    CU_ASSERT_PTR_NULL(one("    Type: LDAP\n"));
    CU_ASSERT(errs_have(&errs, 2, 5, "missing required property 'ldap.url'"));
    CU_ASSERT_PTR_NULL(one("    Type: LDAP\n    ldap.url: http://ad\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "ldap.url: scheme 'http' is not allowed here"));
}

static void
test_mail_takes_smtp_host_and_port(void)
{
    const struct ferry_dest *d;

    d = one("    Type: MAIL\n    mail.smtp.host: smtp.example.com\n    mail.smtp.port: 587\n"
            "    mail.user: u\n    mail.password: p\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_type(d), FERRY_DEST_MAIL);
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "smtp.example.com");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 587);
    d = one("    Type: MAIL\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(ferry_dest_host(d), "");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 0);
}

static void
test_name_and_type_checked(void)
{
    char text[512];

    CU_ASSERT_EQUAL(load("destinations:\n  - Type: HTTP\n    URL: http://h\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 5, "destination: missing required property 'Name'"));
    CU_ASSERT_PTR_NULL(one("    URL: http://h\n"));
    CU_ASSERT(errs_have(&errs, 2, 5, "destination 'x': missing required property 'Type'"));
    CU_ASSERT_PTR_NULL(one("    Type: http\n    URL: http://h\n"));
    CU_ASSERT(errs_have(&errs, 3, 5, "Type: unknown value 'http' (did you mean 'HTTP'?)"));
    CU_ASSERT_PTR_NULL(one("    Type: SOAP\n"));
    CU_ASSERT(errs_have(&errs, 3, 5, "Type: unknown value 'SOAP'"));

    snprintf(text, sizeof(text), "destinations:\n  - { Type: MAIL, Name: %0201d }\n", 0);
    CU_ASSERT_EQUAL(load(text), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 19, "Name is longer than 200 characters"));
    snprintf(text, sizeof(text), "destinations:\n  - { Type: MAIL, Name: %0200d }\n", 0);
    CU_ASSERT_EQUAL(load(text), FERRY_OK);
    CU_ASSERT_EQUAL(load("destinations:\n  - { Type: MAIL, Name: 'a b/c' }\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 19, "use letters, digits"));
    CU_ASSERT_EQUAL(load("destinations:\n  - [ Name, x ]\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 5, "destinations[0]: a destination is a mapping"));
    CU_ASSERT_EQUAL(load("destinations:\n  - { Name: x, Type: MAIL, User: [ a ] }\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 34, "destination 'x': User: want a single value, not a list"));
}

static void
test_duplicate_name_points_at_second_and_names_first(void)
{
    CU_ASSERT_EQUAL(load("destinations:\n  - { Name: a, Type: MAIL }\n  - { Name: b, Type: MAIL }\n"
                         "  - { Name: a, Type: MAIL }\n"), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 4, 5, "destination 'a' is defined twice (first at t.yaml:2:5)"));
    CU_ASSERT_EQUAL(load("destinations:\n  - { Name: a, Type: MAIL, Type: TCP }\n"),
                    FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 2, 28, "property 'Type' given twice (first at line 2)"));
}

static void
test_near_miss_warns_and_custom_properties_are_kept(void)
{
    const struct ferry_dest *d;

    d = one("    Type: HTTP\n    URL: https://h\n    Authentification: BasicAuthentication\n"
            "    URL.headers.X-Client: ferry\n    URL.queries.sap-client: '100'\n"
            "    X-Custom-Thing: keep me\n    sap-client: '100'\n    url: http://other\n"
            "    URL.header.X-Typo: v\n    tokenService.body.resource: r\n"
            "    cost_center: 4711\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(conf->warnings.count, 3);
    CU_ASSERT(errs_have(&conf->warnings, 5, 5, "destination 'x': unknown property "
                        "'Authentification' (did you mean 'Authentication'?)"));
    CU_ASSERT(errs_have(&conf->warnings, 10, 5, "unknown property 'url' (did you mean 'URL'?)"));
    CU_ASSERT(errs_have(&conf->warnings, 11, 5, "unknown property 'URL.header.X-Typo' (did you "
                        "mean 'URL.headers.X-Typo'?)"));
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop(d, "Authentification"), "BasicAuthentication");
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop(d, "X-Custom-Thing"), "keep me");
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop(d, "URL.headers.X-Client"), "ferry");
    CU_ASSERT_STRING_EQUAL(ferry_dest_prop(d, "cost_center"), "4711");
    CU_ASSERT_PTR_NULL(ferry_dest_prop(d, "x-custom-thing"));        /* case-sensitive */
    CU_ASSERT_PTR_NULL(ferry_dest_prop(d, "Password"));
    CU_ASSERT_EQUAL_FATAL(d->nprops, 12);
    CU_ASSERT_STRING_EQUAL(d->props[0].key, "Name");                  /* file order */
    CU_ASSERT_STRING_EQUAL(d->props[11].key, "cost_center");
    /* The misspelt Authentication does not count: the default applies. */
    CU_ASSERT_STRING_EQUAL(d->authentication, "NoAuthentication");
}

static void
test_several_tenants_make_tenant_required(void)
{
    const char *base = "tenants:\n  - { id: acme, token: t1 }\n  - { id: beta, token: t2 }\n"
                       "destinations:\n  - Name: x\n    Type: MAIL\n";
    char        text[512];

    CU_ASSERT_EQUAL(load(base), FERRY_EINVAL);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT(errs_have(&errs, 5, 5, "destination 'x': missing 'tenant': required when there "
                        "are several tenants"));
    snprintf(text, sizeof(text), "%s    tenant: beta\n", base);
    CU_ASSERT_EQUAL(load(text), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(ferry_dest_tenant(ferry_registry_find(conf->registry, "x")), "beta");
    snprintf(text, sizeof(text), "%s    tenant: acne\n", base);
    CU_ASSERT_EQUAL(load(text), FERRY_EINVAL);
    CU_ASSERT(errs_have(&errs, 7, 5, "unknown tenant 'acne' (did you mean 'acme'?)"));
}

static void
test_the_only_tenant_is_the_default(void)
{
    const struct ferry_dest *d = one("    Type: MAIL\ntenants: [ { id: acme, token: t1 } ]\n");

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(ferry_dest_tenant(d), "acme");
    CU_ASSERT_PTR_NULL(one("    Type: MAIL\n    tenant: acme\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "tenant 'acme': no tenants are configured"));
}

static void
test_onpremise_needs_a_tenant_and_maps_location(void)
{
    const struct ferry_dest *d;

    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: http://erp.internal:8000\n"
                           "    ProxyType: OnPremise\n"));
    CU_ASSERT(errs_have(&errs, 5, 5, "destination 'x': OnPremise needs a tenant"));

    d = one("    Type: HTTP\n    URL: http://erp.internal:8000\n    ProxyType: OnPremise\n"
            "    CloudConnectorLocationId: berlin\n"
            "tenants: [ { id: acme, token: t1 } ]\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_proxy_type(d), FERRY_PROXY_ONPREMISE);
    CU_ASSERT_STRING_EQUAL(ferry_dest_location(d), "berlin");
    CU_ASSERT_STRING_EQUAL(ferry_dest_tenant(d), "acme");
    CU_ASSERT_EQUAL(ferry_dest_port(d), 8000);

    d = one("    Type: TCP\n    Address: tcp://h:1\n    ProxyType: PrivateLink\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_proxy_type(d), FERRY_PROXY_PRIVATELINK);
    CU_ASSERT_PTR_NULL(one("    Type: TCP\n    Address: tcp://h:1\n    ProxyType: onpremise\n"));
    CU_ASSERT(errs_have(&errs, 5, 5, "ProxyType: unknown value 'onpremise' (did you mean "
                        "'OnPremise'?)"));
}

static void
test_principal_propagation_needs_onpremise(void)
{
    CU_ASSERT_PTR_NULL(one("    Type: HTTP\n    URL: http://h\n"
                           "    Authentication: PrincipalPropagation\n"));
    CU_ASSERT(errs_have(&errs, 5, 5, "Authentication PrincipalPropagation needs ProxyType "
                        "OnPremise"));
}

static void
test_policy_must_be_a_lua_file(void)
{
    CU_ASSERT_PTR_NULL(one("    Type: MAIL\n    policy: policies/x.py\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "policy: want a .lua file"));
    CU_ASSERT_PTR_NULL(one("    Type: MAIL\n    policy: /nonexistent/p.lua\n"));
    CU_ASSERT(errs_have(&errs, 4, 5, "policy: cannot read /nonexistent/p.lua"));
}

static void
test_known_secret_properties_are_marked(void)
{
    const struct ferry_dest *d;

    d = one("    Type: HTTP\n    URL: https://h\n    Authentication: BasicAuthentication\n"
            "    User: alice\n    Password: pw\n    URL.headers.Authorization: Basic eA==\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (size_t i = 0; i < d->nprops; i++) {
        const char *k = d->props[i].key;

        CU_ASSERT_EQUAL(d->props[i].secret, strcmp(k, "Password") == 0
                                            || strcmp(k, "URL.headers.Authorization") == 0);
        CU_ASSERT(d->props[i].line >= 2);
    }
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "HTTP URL gives scheme, host, port, path", test_http_url_gives_scheme_host_port_path },
        { "HTTP bad or missing URL names the property",
          test_http_bad_or_missing_url_names_the_property },
        { "Authentication requires its properties", test_authentication_requires_its_properties },
        { "unknown Authentication value suggests", test_unknown_authentication_value_suggests },
        { "HTTP timeouts and TLS options", test_http_timeouts_and_tls_options },
        { "TrustAll true is warned", test_trust_all_true_is_warned },
        { "TCP address forms", test_tcp_address_forms },
        { "TCP missing or bad address names the property",
          test_tcp_missing_or_bad_address_names_the_property },
        { "RFC sysnr maps to port 33NN", test_rfc_sysnr_maps_to_port_33nn },
        { "RFC bad sysnr rejected", test_rfc_bad_sysnr_rejected },
        { "RFC target forms and errors", test_rfc_target_forms_and_errors },
        { "RFC OnPremise via jco names, with location",
          test_rfc_onpremise_via_jco_names_with_location },
        { "LDAP URL default ports", test_ldap_url_default_ports },
        { "MAIL takes smtp host and port", test_mail_takes_smtp_host_and_port },
        { "Name and Type checked", test_name_and_type_checked },
        { "duplicate Name points at the second, names the first",
          test_duplicate_name_points_at_second_and_names_first },
        { "near miss warns; custom properties are kept",
          test_near_miss_warns_and_custom_properties_are_kept },
        { "several tenants make tenant: required", test_several_tenants_make_tenant_required },
        { "the only tenant is the default", test_the_only_tenant_is_the_default },
        { "OnPremise needs a tenant; location mapped",
          test_onpremise_needs_a_tenant_and_maps_location },
        { "PrincipalPropagation needs OnPremise", test_principal_propagation_needs_onpremise },
        { "policy must be a .lua file", test_policy_must_be_a_lua_file },
        { "known secret properties are marked", test_known_secret_properties_are_marked },
        { NULL, NULL }
    };
    int rc = cu_run("dest", tests);

    ferry_conf_free(conf);
    return rc;
}
