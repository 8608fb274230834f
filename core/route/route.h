/*
 * route.h: where a connection's target goes, in DESIGN.md's routing order: a
 * destination's OnPremise target through a tunnel; a host:port of a tenant's client
 * to a connector's virtual host if one serves it, else direct when egress allows;
 * otherwise refused. A pure decision: nothing is dialed or opened here, no connection
 * is touched. The worker room (worker/conn-route.c) asks, accounts the destination and
 * opens what the plan says.
 */
#ifndef FERRY_ROUTE_ROUTE_H
#define FERRY_ROUTE_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include <ferry/conn.h>
#include <ferry/log.h>

enum route_kind {
    ROUTE_DIRECT = 1,               /* dial host:port */
    ROUTE_TUNNEL,                   /* a tunnel stream; its refusal is final */
    ROUTE_TUNNEL_OR_DIRECT,         /* try the tunnel, dial directly if it refuses */
};

struct route_plan {
    const char *host;               /* borrowed: the destination's or the target's */
    uint16_t    port;
    uint32_t    timeout_ms;         /* connect timeout */
    char        authority[300];     /* "host:port" / "[v6]:port" */
    /* The tunnel kinds only (borrowed like host). */
    const char *tenant, *location;
    const char *protocol;           /* what the connector checks: "http", "tcp", ... */
    bool        must_expose;        /* only a connector that announced the host will do */
    const char *reason;             /* after a negative return */
};

/* Decide for target t of a connection whose tenant is conn_tenant (NULL: none) and
 * whose listener connects within default_timeout_ms. A route_kind, or a negative
 * FERRY_E* with p->reason (FERRY_EINVAL: no host/port; FERRY_EDENIED: not allowed). */
int  route_decide(const struct ferry_target *t, const char *conn_tenant,
                  uint32_t default_timeout_ms, struct route_plan *p);
/* The final error for a tunnel refusal rc of a plan without a direct fallback; logs
 * through log and sets p->reason. */
int  route_refused(const struct ferry_log_ctx *log, struct route_plan *p, int rc);

#endif
