/*
 * conn-route.c: a connection's side of routing. route/ decides where a target goes
 * (route_decide: DESIGN.md's order); this file accounts the connection to its
 * destination's counters once and turns the plan into a tunnel stream request. Opening
 * the upstream is the caller's: conn-handoff.c for ferry_conn_open, io-open.c for
 * ferry_io_open.
 */
#include <stdatomic.h>
#include <string.h>

#include <ferry/conn.h>
#include <ferry/route.h>
#include <ferry/user.h>

#include "dest/dest-int.h"
#include "route/route.h"
#include "tunnel/session.h"
#include "worker/conn-int.h"

/* Account c to destination d (its /metrics slot) once. */
static void
conn_set_dest(struct ferry_conn *c, const struct ferry_dest *d)
{
    const struct ferry_registry *reg = c->wg->g->conf->registry;
    size_t                       i = (size_t)(d - reg->dests);

    c->dest = d;
    if (c->dstats != NULL)
        return;
    /* A destination from this generation's snapshot has a slot (gen.c). */
    if (i < reg->n && c->wg->g->dest_stats != NULL &&
        (c->dstats = c->wg->g->dest_stats[i]) != NULL) {
        atomic_fetch_add(&c->dstats->active, 1);
        stats_add(&c->dstats->cell[c->w->id].conns_total, 1);
    }
}

struct stats_slot *
conn_dest_stats(const struct ferry_conn *c, const struct ferry_dest *d)
{
    const struct ferry_registry *reg = c->wg->g->conf->registry;
    size_t                       i = (size_t)(d - reg->dests);

    return d != NULL && i < reg->n && c->wg->g->dest_stats != NULL ? c->wg->g->dest_stats[i]
                                                                   : NULL;
}

int
conn_route(struct ferry_conn *c, const struct ferry_target *t, struct conn_route *r)
{
    int kind;

    if (t->dest != NULL)
        conn_set_dest(c, t->dest);
    kind = route_decide(t, ferry_conn_tenant(c), c->l->lc->connect_timeout_ms, &r->p);
    if (kind == ROUTE_TUNNEL || kind == ROUTE_TUNNEL_OR_DIRECT) {
        r->req.tenant = r->p.tenant;
        r->req.location = r->p.location;
        r->req.authority = r->p.authority;
        r->req.protocol = r->p.protocol;
        r->req.must_expose = r->p.must_expose;
        r->req.user = NULL;
        if (t->user != NULL && (r->req.user = ferry_user_claims_json(t->user)) == NULL) {
            r->p.reason = "out of memory";
            return FERRY_ENOMEM;
        }
        /* Escaped non-ASCII claims can outgrow the token; the stream would refuse them
         * as "no tunnel", which they are not. */
        if (r->req.user != NULL && strlen(r->req.user) > USER_MAX_BYTES) {
            r->p.reason = "the user's claims are too large for a tunnel stream";
            return FERRY_EDENIED;
        }
    }
    return kind;
}

/* Why gw_open_stream() said no, for a route that has no direct fallback. */
int
conn_route_refused(struct ferry_conn *c, struct conn_route *r, int rc)
{
    return route_refused(&c->logctx, &r->p, rc);
}
