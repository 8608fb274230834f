/*
 * route.c: the routing decision (route.h). Owns nothing: it reads the target and the
 * destination and fills a plan. Dialing is dial.c's, tunnel streams are tunnel/'s,
 * and the connection that asked (its counters, its events) stays in worker/.
 */
#include <stdbool.h>
#include <string.h>

#include <ferry/dest.h>
#include <ferry/err.h>

#include "dest/dest-int.h"
#include "route/route.h"

/* Append len bytes of s at buf[n] within size (truncating like snprintf); the new n. */
static size_t
put_text(char *buf, size_t size, size_t n, const char *s, size_t len)
{
    if (n + len >= size)
        len = size - 1 - n;
    memcpy(buf + n, s, len);
    return n + len;
}

/* "host:port" or "[v6]:port" (size > 0), without printf: its machinery cost more than the
 * rest of the routing. */
static void
format_authority(char *buf, size_t size, const char *host, uint16_t port)
{
    char   digits[5], *p = digits + sizeof(digits);
    size_t hl = strlen(host), n = 0;
    bool   v6 = memchr(host, ':', hl) != NULL;

    do {
        *--p = (char)('0' + port % 10);
        port /= 10;
    } while (port != 0);
    n = put_text(buf, size, n, "[", v6 ? 1 : 0);
    n = put_text(buf, size, n, host, hl);
    n = put_text(buf, size, n, v6 ? "]:" : ":", v6 ? 2 : 1);
    n = put_text(buf, size, n, p, (size_t)(digits + sizeof(digits) - p));
    buf[n] = '\0';
}

/* What the connector will check the stream against (its systems' protocol). */
static const char *
dest_protocol(const struct ferry_dest *d)
{
    switch (ferry_dest_type(d)) {
    case FERRY_DEST_HTTP: return "http";
    case FERRY_DEST_LDAP: return "ldap";
    case FERRY_DEST_RFC:  return "rfc";
    case FERRY_DEST_MAIL: return "mail";
    default:              return "tcp";
    }
}

int
route_decide(const struct ferry_target *t, const char *conn_tenant, uint32_t default_timeout_ms,
             struct route_plan *p)
{
    const char *host;
    uint16_t    port;

    p->timeout_ms = default_timeout_ms;
    p->reason = NULL;
    if (t->dest != NULL) {
        host = ferry_dest_host(t->dest);
        port = ferry_dest_port(t->dest);
        if (t->dest->connect_timeout_ms != 0)
            p->timeout_ms = t->dest->connect_timeout_ms;
    } else {
        host = t->host;
        port = t->port;
    }
    if (host == NULL || port == 0) {
        p->reason = "no target host/port";
        return FERRY_EINVAL;
    }
    p->host = host;
    p->port = port;
    format_authority(p->authority, sizeof(p->authority), host, port);
    if (t->dest != NULL && ferry_dest_proxy_type(t->dest) == FERRY_PROXY_ONPREMISE) {
        p->tenant = t->tenant != NULL ? t->tenant : ferry_dest_tenant(t->dest);
        p->location = t->location != NULL ? t->location : ferry_dest_location(t->dest);
        p->protocol = t->protocol != NULL ? t->protocol : dest_protocol(t->dest);
        p->must_expose = false;
        return ROUTE_TUNNEL;
    }
    if (t->dest == NULL) {
        p->tenant = t->tenant != NULL ? t->tenant : conn_tenant;
        p->location = t->location != NULL ? t->location : "";
        p->protocol = t->protocol != NULL ? t->protocol : "tcp";
        p->must_expose = true;
        /* DESIGN.md's order: the tenant's virtual host, then egress, then why not. */
        if (p->tenant != NULL)     /* a user's target is never dialed (below) */
            return t->direct_ok && t->user == NULL ? ROUTE_TUNNEL_OR_DIRECT : ROUTE_TUNNEL;
        if (!t->direct_ok) {
            p->reason = "target not allowed";
            return FERRY_EDENIED;
        }
    }
    if (t->user != NULL) {
        /* Principal propagation is the connector's (it issues the user's certificate):
         * dialed directly, the request would reach the backend as nobody. */
        p->reason = "principal propagation needs an OnPremise destination (a tunnel)";
        return FERRY_EDENIED;
    }
    return ROUTE_DIRECT;
}

int
route_refused(const struct ferry_log_ctx *log, struct route_plan *p, int rc)
{
    if (rc == FERRY_ENOTUNNEL) {
        ferry_log(log, FERRY_WARN, "no tunnel for tenant/location",
                  FLOG_STR("target", p->authority), FLOG_STR("tenant", p->tenant),
                  FLOG_STR("location", p->location));
        p->reason = p->must_expose ? "no connector for tenant/location"
                                   : "no tunnel for tenant/location";
        return FERRY_ENOTUNNEL;
    }
    p->reason = "target not allowed";
    return FERRY_EDENIED;
}
