/*
 * route_test.c: the routing decision (core/route/route.c) in DESIGN.md's order: an
 * OnPremise destination goes through a tunnel of its tenant and location; a tenant's
 * host:port tries a connector's virtual host first and goes direct only where egress
 * allows; without a tenant, only what egress allows; and the reasons for a refusal.
 */
#include <string.h>

#include <ferry/err.h>

#include "cu.h"
#include "dest/dest-int.h"
#include "route/route.h"

static struct ferry_dest
dest_of(enum ferry_dest_type type, enum ferry_proxy_type proxy, const char *host, uint16_t port)
{
    struct ferry_dest d;

    memset(&d, 0, sizeof(d));
    d.name = "erp";
    d.type = type;
    d.proxy_type = proxy;
    d.tenant = "acme";
    d.location = "berlin";
    d.host = (char *)host;
    d.port = port;
    return d;
}

static void
test_onpremise_destination_goes_through_its_tunnel(void)
{
    struct ferry_dest   d = dest_of(FERRY_DEST_LDAP, FERRY_PROXY_ONPREMISE, "ad.internal", 389);
    struct ferry_target t = { .dest = &d };
    struct route_plan   p;

    d.connect_timeout_ms = 7000;
    CU_ASSERT_EQUAL(route_decide(&t, "other", 5000, &p), ROUTE_TUNNEL);
    CU_ASSERT_STRING_EQUAL(p.authority, "ad.internal:389");
    CU_ASSERT_STRING_EQUAL(p.tenant, "acme");           /* the destination's, not the conn's */
    CU_ASSERT_STRING_EQUAL(p.location, "berlin");
    CU_ASSERT_STRING_EQUAL(p.protocol, "ldap");         /* from its Type */
    CU_ASSERT_FALSE(p.must_expose);
    CU_ASSERT_EQUAL(p.timeout_ms, 7000);                /* the destination's timeout wins */
    /* The plugin may name tenant, location and protocol itself. */
    t.tenant = "t2";
    t.location = "";
    t.protocol = "http";
    CU_ASSERT_EQUAL(route_decide(&t, NULL, 5000, &p), ROUTE_TUNNEL);
    CU_ASSERT_STRING_EQUAL(p.tenant, "t2");
    CU_ASSERT_STRING_EQUAL(p.location, "");
    CU_ASSERT_STRING_EQUAL(p.protocol, "http");
}

static void
test_internet_destination_is_dialed(void)
{
    struct ferry_dest   d = dest_of(FERRY_DEST_HTTP, FERRY_PROXY_INTERNET, "::1", 443);
    struct ferry_target t = { .dest = &d };
    struct route_plan   p;

    CU_ASSERT_EQUAL(route_decide(&t, NULL, 5000, &p), ROUTE_DIRECT);
    CU_ASSERT_STRING_EQUAL(p.host, "::1");
    CU_ASSERT_EQUAL(p.port, 443);
    CU_ASSERT_STRING_EQUAL(p.authority, "[::1]:443");
    CU_ASSERT_EQUAL(p.timeout_ms, 5000);                /* the listener's */
}

static void
test_tenant_host_tries_a_virtual_host_first(void)
{
    struct ferry_target t = { .host = "shop.internal", .port = 80 };
    struct route_plan   p;

    CU_ASSERT_EQUAL(route_decide(&t, "acme", 5000, &p), ROUTE_TUNNEL);
    CU_ASSERT_STRING_EQUAL(p.tenant, "acme");
    CU_ASSERT_STRING_EQUAL(p.location, "");             /* the default location */
    CU_ASSERT_STRING_EQUAL(p.protocol, "tcp");
    CU_ASSERT_TRUE(p.must_expose);                      /* only an announced host */
    t.direct_ok = true;                                 /* egress allows it too */
    CU_ASSERT_EQUAL(route_decide(&t, "acme", 5000, &p), ROUTE_TUNNEL_OR_DIRECT);
}

static void
test_without_tenant_only_egress_goes(void)
{
    struct ferry_target t = { .host = "127.0.0.1", .port = 8080 };
    struct route_plan   p;

    CU_ASSERT_EQUAL(route_decide(&t, NULL, 5000, &p), FERRY_EDENIED);
    CU_ASSERT_STRING_EQUAL(p.reason, "target not allowed");
    t.direct_ok = true;
    CU_ASSERT_EQUAL(route_decide(&t, NULL, 5000, &p), ROUTE_DIRECT);
    CU_ASSERT_STRING_EQUAL(p.authority, "127.0.0.1:8080");
    t.host = NULL;
    CU_ASSERT_EQUAL(route_decide(&t, NULL, 5000, &p), FERRY_EINVAL);
    CU_ASSERT_STRING_EQUAL(p.reason, "no target host/port");
}

static void
test_refusals_say_why(void)
{
    struct ferry_target t = { .host = "shop.internal", .port = 80 };
    struct ferry_dest   d = dest_of(FERRY_DEST_RFC, FERRY_PROXY_ONPREMISE, "erp", 3300);
    struct ferry_target td = { .dest = &d };
    struct route_plan   p;

    CU_ASSERT_EQUAL(route_decide(&t, "acme", 5000, &p), ROUTE_TUNNEL);
    CU_ASSERT_EQUAL(route_refused(NULL, &p, FERRY_ENOTUNNEL), FERRY_ENOTUNNEL);
    CU_ASSERT_STRING_EQUAL(p.reason, "no connector for tenant/location");
    CU_ASSERT_EQUAL(route_refused(NULL, &p, FERRY_ENOTFOUND), FERRY_EDENIED);
    CU_ASSERT_STRING_EQUAL(p.reason, "target not allowed");
    CU_ASSERT_EQUAL(route_decide(&td, NULL, 5000, &p), ROUTE_TUNNEL);
    CU_ASSERT_EQUAL(route_refused(NULL, &p, FERRY_ENOTUNNEL), FERRY_ENOTUNNEL);
    CU_ASSERT_STRING_EQUAL(p.reason, "no tunnel for tenant/location");
}

/* Principal propagation: the connector speaks for the user, so a target with a user
 * goes to a tunnel or nowhere (the user pointer is only compared with NULL here). */
static void
test_a_user_is_never_dialed(void)
{
    struct ferry_dest   in = dest_of(FERRY_DEST_HTTP, FERRY_PROXY_INTERNET, "erp", 443);
    struct ferry_dest   on = dest_of(FERRY_DEST_HTTP, FERRY_PROXY_ONPREMISE, "erp", 443);
    struct ferry_user  *user = (struct ferry_user *)&in;     /* any non-NULL */
    struct ferry_target t = { .host = "shop.internal", .port = 80, .direct_ok = true,
                              .user = user };
    struct ferry_target td = { .dest = &on, .user = user };
    struct route_plan   p;

    /* Egress would allow the direct fallback: not for a user. */
    CU_ASSERT_EQUAL(route_decide(&t, "acme", 5000, &p), ROUTE_TUNNEL);
    CU_ASSERT_EQUAL(route_decide(&t, NULL, 5000, &p), FERRY_EDENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.reason, "principal propagation"));
    CU_ASSERT_EQUAL(route_decide(&td, NULL, 5000, &p), ROUTE_TUNNEL);
    td.dest = &in;
    CU_ASSERT_EQUAL(route_decide(&td, NULL, 5000, &p), FERRY_EDENIED);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "an OnPremise destination goes through its tunnel",
          test_onpremise_destination_goes_through_its_tunnel },
        { "an Internet destination is dialed", test_internet_destination_is_dialed },
        { "a tenant's host tries a virtual host first",
          test_tenant_host_tries_a_virtual_host_first },
        { "without a tenant only egress goes", test_without_tenant_only_egress_goes },
        { "refusals say why", test_refusals_say_why },
        { "a user is never dialed", test_a_user_is_never_dialed },
        { NULL, NULL }
    };

    return cu_run("route", tests);
}
