/*
 * conn-policy.c: ferry/policy.h for plugins, on top of a connection. A connection
 * reaches the policies of the generation it was accepted in (c->wg->g->policies) and
 * the Lua state of its worker for that generation (c->wg->policy, created on the first
 * call and closed with the generation), so a reload never changes the scripts a live
 * connection runs. The Lua engine itself is lua/'s: this file only brings it the
 * connection's facts and its worker's home (w->home), and keeps the connection alive
 * around the plugin's callback.
 *
 * A hook that waits on I/O (ferry.http.request, ferry.tokens.get) makes the call return
 * FERRY_EAGAIN when the plugin gave a callback: the run stays on the heap, noted in
 * c->policy_wait, and the callback gets the verdict on the worker once the hook ends
 * (from the loop, never inside the call). A connection that closes meanwhile aborts
 * the run (conn.c calls policy_conn_gone), which cancels its I/O. Without a callback a
 * hook cannot wait: the library functions answer nil and a reason.
 */
#include <stdlib.h>
#include <string.h>

#include <ferry/policy.h>
#include <ferry/route.h>

#include "lua/lua-int.h"
#include "util/abi.h"
#include "worker/conn-int.h"

static const struct ferry_policy_set *
conn_set(const struct ferry_conn *c)
{
    return c->wg->g->policies;
}

FERRY_API bool
ferry_policy_has(struct ferry_conn *c, const struct ferry_dest *d, const char *hook)
{
    const struct ferry_policy_set *set = conn_set(c);
    const struct policy_script    *s;
    int                            h;

    if (set == NULL || (s = policy_script_of(set, d, NULL)) == NULL)
        return false;
    h = policy_hook_of(hook);
    return h >= 0 && (s->hooks & (1u << h)) != 0;
}

/* The tenant a hook sees: the connection's (authenticated or the listener's), else
 * the destination's. */
static const char *
tenant_of(const struct ferry_conn *c, const struct ferry_dest *d)
{
    const char *t = ferry_conn_tenant(c);

    if (t == NULL && d != NULL && ferry_dest_tenant(d)[0] != '\0')
        t = ferry_dest_tenant(d);
    return t;
}

struct conn_wait {
    struct ferry_conn *c;
    ferry_policy_cb    cb;
    void              *arg;
};

static void
conn_done(struct policy_run *run)
{
    struct conn_wait  *cw = run->done_arg;
    struct ferry_conn *c = cw->c;
    bool               outer;

    c->policy_wait = NULL;
    if (!c->close_pending && c->state != CONN_CLOSING) {
        conn_enter(c, &outer);
        cw->cb(c, &run->verdict, cw->arg);
        conn_leave(c, outer);
    }
    policy_run_free(run);
    free(cw);
}

void
policy_conn_gone(struct ferry_conn *c)
{
    struct policy_run *run = c->policy_wait;

    if (run == NULL)
        return;
    c->policy_wait = NULL;
    free(run->done_arg);
    policy_run_abort(run);
}

static int
call(struct ferry_conn *c, struct policy_call *pc, struct ferry_policy_verdict *v,
     ferry_policy_cb cb, void *arg)
{
    const struct ferry_policy_set *set = conn_set(c);
    struct conn_wait              *cw;
    struct policy_run             *run;
    int                            rc;

    if (set == NULL || policy_script_of(set, pc->dest, NULL) == NULL)
        return FERRY_ENOTFOUND;
    pc->log = ferry_conn_log(c);
    if (c->wg->policy == NULL && (c->wg->policy = ferry_policy_vm_new(set)) == NULL) {
        v->allowed = false;
        v->error = true;
        v->code = pc->hook == POLICY_ON_LDAP ? 80 : 500;
        strcpy(v->reason, "policy-error");
        ferry_log(pc->log, FERRY_WARN, "policy failed",
                  FLOG_STR("destination", ferry_dest_name(pc->dest)),
                  FLOG_STR("error", "out of memory"));
        return FERRY_OK;
    }
    if (cb == NULL || c->policy_wait != NULL)
        return ferry_policy_vm_call(c->wg->policy, pc, v);
    if ((cw = malloc(sizeof(*cw))) == NULL)
        return ferry_policy_vm_call(c->wg->policy, pc, v);
    cw->c = c;
    cw->cb = cb;
    cw->arg = arg;
    pc->home = &c->w->home;
    rc = ferry_policy_vm_start(c->wg->policy, pc, v, conn_done, cw, &run);
    if (rc == FERRY_EAGAIN) {
        c->policy_wait = run;
        return FERRY_EAGAIN;
    }
    free(cw);
    return rc;
}

FERRY_API int
ferry_policy_connect(struct ferry_conn *c, const struct ferry_dest *d, const char *target,
                     struct ferry_policy_verdict *v, ferry_policy_cb cb, void *arg)
{
    struct policy_call pc = { .hook = POLICY_ON_CONNECT, .dest = d };

    pc.client = ferry_conn_peer(c);
    pc.tenant = tenant_of(c, d);
    pc.target = target;
    return call(c, &pc, v, cb, arg);
}

FERRY_API int
ferry_policy_ldap(struct ferry_conn *c, const struct ferry_dest *d, const char *op_type,
                  const char *dn, struct ferry_policy_verdict *v, ferry_policy_cb cb, void *arg)
{
    struct policy_call pc = { .hook = POLICY_ON_LDAP, .dest = d };

    pc.op_type = op_type;
    pc.dn = dn;
    pc.client = ferry_conn_peer(c);
    pc.tenant = tenant_of(c, d);
    return call(c, &pc, v, cb, arg);
}

/* The http struct is read and written in place (a hook may wait, keeping the pointer),
 * so nothing of it may lie past a 1.2 plugin's end: that is fields before size only.
 * A field appended after size is read (never written) through abi_struct_size()
 * (util/abi.h): `user` (1.4) is the last one so far. */
_Static_assert(sizeof(struct ferry_policy_http) ==
               offsetof(struct ferry_policy_http, user) + sizeof(struct ferry_user *),
               "a field past ferry_policy_http.user: gate it on the plugin's size");

/* req->user when the plugin's struct has it (1.4 on), else NULL. */
static struct ferry_user *
request_user(const struct ferry_conn *c, const struct ferry_policy_http *req)
{
    static const size_t legacy[3] = { 0, 0, 0 };    /* below 1.3: no user field */
    size_t n = abi_struct_size(conn_abi_minor(c), req, offsetof(struct ferry_policy_http, size),
                               sizeof(*req), legacy);

    if (n < offsetof(struct ferry_policy_http, user) + sizeof(req->user))
        return NULL;
    return req->user;
}

FERRY_API int
ferry_policy_request(struct ferry_conn *c, const struct ferry_dest *d,
                     struct ferry_policy_http *req, struct ferry_policy_verdict *v,
                     ferry_policy_cb cb, void *arg)
{
    struct policy_call pc = { .hook = POLICY_ON_REQUEST, .dest = d, .http = req };

    pc.user = request_user(c, req);
    return call(c, &pc, v, cb, arg);
}

FERRY_API int
ferry_policy_response(struct ferry_conn *c, const struct ferry_dest *d,
                      struct ferry_policy_http *res, struct ferry_policy_verdict *v,
                      ferry_policy_cb cb, void *arg)
{
    struct policy_call pc = { .hook = POLICY_ON_RESPONSE, .dest = d, .http = res };

    return call(c, &pc, v, cb, arg);
}
