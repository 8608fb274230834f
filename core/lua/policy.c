/*
 * policy.c: ferry/policy.h for plugins. A connection reaches the policies of the
 * configuration it was accepted with (c->wg->g->conf) and the Lua state of its worker
 * for that generation (c->wg->policy, created on the first call and closed with the
 * generation), so a reload never changes the scripts a live connection runs.
 *
 * Every hook finishes inside the call for now (FERRY_OK); cb is kept in the API for
 * library functions that will wait on I/O (ferry.http.request) and return FERRY_EAGAIN.
 */
#include <stdlib.h>
#include <string.h>

#include <ferry/policy.h>
#include <ferry/route.h>

#include "lua/lua-int.h"
#include "worker/conn-int.h"

static const struct ferry_policy_set *
conn_set(const struct ferry_conn *c)
{
    return c->wg->g->conf->policies;
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

static int
call(struct ferry_conn *c, struct policy_call *pc, struct ferry_policy_verdict *v)
{
    const struct ferry_policy_set *set = conn_set(c);

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
    return ferry_policy_vm_call(c->wg->policy, pc, v);
}

FERRY_API int
ferry_policy_connect(struct ferry_conn *c, const struct ferry_dest *d, const char *target,
                     struct ferry_policy_verdict *v, ferry_policy_cb cb, void *arg)
{
    struct policy_call pc = { .hook = POLICY_ON_CONNECT, .dest = d };

    (void)cb;
    (void)arg;
    pc.client = ferry_conn_peer(c);
    pc.tenant = tenant_of(c, d);
    pc.target = target;
    return call(c, &pc, v);
}

FERRY_API int
ferry_policy_ldap(struct ferry_conn *c, const struct ferry_dest *d, const char *op_type,
                  const char *dn, struct ferry_policy_verdict *v, ferry_policy_cb cb, void *arg)
{
    struct policy_call pc = { .hook = POLICY_ON_LDAP, .dest = d };

    (void)cb;
    (void)arg;
    pc.op_type = op_type;
    pc.dn = dn;
    pc.client = ferry_conn_peer(c);
    pc.tenant = tenant_of(c, d);
    return call(c, &pc, v);
}

FERRY_API int
ferry_policy_request(struct ferry_conn *c, const struct ferry_dest *d,
                     struct ferry_policy_http *req, struct ferry_policy_verdict *v,
                     ferry_policy_cb cb, void *arg)
{
    struct policy_call pc = { .hook = POLICY_ON_REQUEST, .dest = d, .http = req };

    (void)cb;
    (void)arg;
    return call(c, &pc, v);
}

FERRY_API int
ferry_policy_response(struct ferry_conn *c, const struct ferry_dest *d,
                      struct ferry_policy_http *res, struct ferry_policy_verdict *v,
                      ferry_policy_cb cb, void *arg)
{
    struct policy_call pc = { .hook = POLICY_ON_RESPONSE, .dest = d, .http = res };

    (void)cb;
    (void)arg;
    return call(c, &pc, v);
}

FERRY_API void
ferry_policy_http_free(struct ferry_policy_http *h)
{
    if (h == NULL)
        return;
    if (h->owned & FERRY_POLICY_OWN_METHOD) {
        free((char *)h->method);
        h->method = NULL;
    }
    if (h->owned & FERRY_POLICY_OWN_PATH) {
        free((char *)h->path);
        h->path = NULL;
    }
    if (h->owned & FERRY_POLICY_OWN_QUERY) {
        free((char *)h->query);
        h->query = NULL;
    }
    h->owned = 0;
    for (size_t i = 0; h->headers != NULL && i < h->nheaders; i++) {
        struct ferry_policy_header *f = &h->headers[i];

        if (f->owned) {
            free((char *)f->name);      /* name and value are one block (objects.c) */
            f->name = NULL;
            f->value = NULL;
            f->owned = false;
        }
    }
}
