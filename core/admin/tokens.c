/*
 * tokens.c: token retrieval for the destination API (the seam of tokens.h).
 *
 * The admin runs on the main thread, which has no Lua state; the destination's auth
 * module (lua/ferry/auth/<Authentication>.lua) runs its token(dest, ctx) on a worker
 * (r->worker), through the same token cache the gateway uses, so the API answers the
 * token an origin sees. The answer goes back to the main loop with event_base_once()
 * (evthread_use_pthreads is on). A cancel() from the admin only marks the fetch: the
 * worker finishes it (bounded by the policy deadline) and the main loop frees it.
 *
 *   main: admin_tokens_fetch --worker_post--> worker: on_worker -> policy_vm_token
 *                                                        (may wait: token_done later)
 *   main: on_main -> r->done()  <--event_base_once--  answer()
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <ferry/err.h>

#include "admin/tokens.h"
#include "conf/conf.h"
#include "dest/dest-int.h"
#include "lua/lua-int.h"
#include "worker/worker.h"

#define CTX_HEADERS_MAX 32

struct fetch {
    struct admin_token_req     *r;          /* borrowed; not touched once cancelled */
    atomic_bool                 cancelled;
    struct event_base          *main;
    struct worker              *w;          /* borrowed: lives until exit */
    char                       *name, *tenant;          /* owns */
    bool                        instance;               /* the destination's level */
    struct ferry_policy_header  hs[CTX_HEADERS_MAX];    /* owns name and value */
    size_t                      nhs;
    struct wgen                *wg;         /* ref, worker-local, while the module runs */
    struct policy_token         tok;        /* the answer */
};

static void
fetch_free(struct fetch *f)
{
    for (size_t i = 0; i < f->nhs; i++) {
        free((char *)f->hs[i].name);
        free((char *)f->hs[i].value);
    }
    policy_token_free(&f->tok);
    free(f->name);
    free(f->tenant);
    free(f);
}

/* Main thread: hand the answer to the admin, unless it gave up. */
static void
on_main(evutil_socket_t fd, short what, void *arg)
{
    struct fetch           *f = arg;
    struct admin_token_req *r = f->r;
    struct admin_token      t = { .expires_in_s = -1 };
    char                    hv[8192];

    (void)fd;
    (void)what;
    if (atomic_load(&f->cancelled)) {
        fetch_free(f);
        return;
    }
    r->cancel = NULL;
    r->fetch = NULL;
    if (f->tok.value != NULL && f->tok.error == NULL) {
        t.type = f->tok.type != NULL ? f->tok.type : "";
        t.value = f->tok.value;
        t.expires_in_s = f->tok.expires_in;
        if (f->tok.header != NULL) {
            t.header_key = f->tok.header;   /* a static header: its value as is */
            t.header_value = f->tok.value;
        } else {
            snprintf(hv, sizeof(hv), "%s %s", t.type, t.value);
            t.header_value = hv;
        }
    } else {
        t.type = "";
        t.value = "";
        t.error = f->tok.error != NULL ? f->tok.error : "token retrieval failed";
    }
    r->done(r, &t, 1);
    explicit_bzero(hv, sizeof(hv));         /* the token; memset may be dropped */
    fetch_free(f);
}

static void
answer(struct fetch *f)
{
    static const struct timeval now = { 0, 0 };

    if (event_base_once(f->main, -1, EV_TIMEOUT, on_main, f, &now) != 0)
        fetch_free(f);              /* the admin times out on its own */
}

static void
fail(struct fetch *f, const char *why)
{
    policy_token_free(&f->tok);
    f->tok.error = strdup(why);
    answer(f);
}

/* Worker: the module's run ended after a wait. */
static void
token_done(struct policy_run *run)
{
    struct fetch *f = run->done_arg;

    f->tok = run->token;
    memset(&run->token, 0, sizeof(run->token));
    policy_run_free(run);
    wgen_unref(f->wg);
    f->wg = NULL;
    answer(f);
}

static void
on_worker(void *arg, bool run_it)
{
    struct fetch               *f = arg;
    struct worker              *w;
    struct wgen                *wg;
    const struct ferry_conf    *conf;
    const struct ferry_dest    *d;
    struct policy_call          call = { .hook = POLICY_TOKEN };
    struct policy_run          *run;
    int                         rc;

    if (!run_it) {
        fail(f, "the gateway is stopping");
        return;
    }
    if (atomic_load(&f->cancelled)) {
        answer(f);
        return;
    }
    w = f->w;
    wg = w->cur;
    conf = wg != NULL ? wg->g->conf : NULL;
    if (conf == NULL || wg->g->policies == NULL ||
        (d = ferry_registry_find_level(conf->registry, f->name, f->instance)) == NULL ||
        (call.module = policy_auth_module(d)) == NULL) {
        fail(f, "no token retrieval for this destination's Authentication");
        return;
    }
    if (wg->policy == NULL && (wg->policy = ferry_policy_vm_new(wg->g->policies)) == NULL) {
        fail(f, "out of memory");
        return;
    }
    call.dest = d;
    call.tenant = f->tenant;
    call.home = &w->home;
    call.ctx_headers = f->hs;
    call.nctx_headers = f->nhs;
    wg->refs++;                     /* the module's state lives as long as it runs */
    f->wg = wg;
    rc = policy_vm_token(wg->policy, &call, &f->tok, token_done, f, &run);
    if (rc == FERRY_EAGAIN)
        return;
    wgen_unref(wg);
    f->wg = NULL;
    if (rc != FERRY_OK) {
        fail(f, "out of memory");
        return;
    }
    answer(f);
}

static void
fetch_cancel(struct admin_token_req *r)
{
    struct fetch *f = r->fetch;

    atomic_store(&f->cancelled, true);     /* on_main frees it */
    r->fetch = NULL;
    r->cancel = NULL;
}

int
admin_tokens_fetch(struct admin_token_req *r)
{
    struct fetch          *f;
    const struct evkeyval *e;

    if (r->worker == NULL)
        return FERRY_ENOTFOUND;
    if ((f = calloc(1, sizeof(*f))) == NULL)
        return FERRY_ENOMEM;
    f->r = r;
    f->main = r->base;
    f->w = r->worker;
    f->tok.expires_in = -1;
    atomic_init(&f->cancelled, false);
    f->instance = r->dest->instance;
    if ((f->name = strdup(r->dest->name)) == NULL ||
        (f->tenant = strdup(r->tenant != NULL ? r->tenant : "")) == NULL)
        goto oom;
    /* The caller's headers (X-user-token, X-refresh-token, ...), copied for the worker. */
    for (e = r->headers != NULL ? r->headers->tqh_first : NULL; e != NULL;
         e = e->next.tqe_next) {
        if (f->nhs == CTX_HEADERS_MAX)
            break;
        if (strcasecmp(e->key, "Authorization") == 0)
            continue;               /* the tenant's token for this API, not the module's */
        if ((f->hs[f->nhs].name = strdup(e->key)) == NULL ||
            (f->hs[f->nhs].value = strdup(e->value)) == NULL) {
            free((char *)f->hs[f->nhs].name);
            goto oom;
        }
        f->nhs++;
    }
    r->fetch = f;
    r->cancel = fetch_cancel;
    if (worker_post(r->worker, on_worker, f) != FERRY_OK) {
        r->fetch = NULL;
        r->cancel = NULL;
        goto oom;
    }
    return FERRY_OK;
oom:
    fetch_free(f);
    return FERRY_ENOMEM;
}
