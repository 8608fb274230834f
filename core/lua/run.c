/*
 * run.c: one hook call. The hook runs in a coroutine (taken from a small pool), so a
 * library function that waits can later yield it and resume on the same worker; the
 * instruction budget is a count hook, the memory cap is the allocator's (vm.c).
 *
 * A budget that runs out is enforced by yielding the coroutine from the count hook
 * (a yield is not an error, so a pcall in the script cannot catch it). Where the
 * coroutine cannot yield (inside a pcall, a metamethod, a module's top level) the hook
 * raises instead and keeps raising at every instruction, so each enclosing pcall gives
 * up in turn. A failed coroutine is dropped, never reused.
 *
 *   coroutine stack in run_entry:   [fn] [arg] [dest]  --lua_callk-->  [result]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <lauxlib.h>

#include "conf/conf.h"
#include "dest/dest-int.h"
#include "lua/lua-int.h"

#define HOOK_STEP 1000          /* instructions between two count-hook calls */

static void
count_hook(lua_State *L, lua_Debug *ar)
{
    struct policy_vm  *vm = policy_vm_of(L);
    struct policy_run *run = vm->run;

    (void)ar;
    if (run == NULL)
        return;
    run->budget -= HOOK_STEP;
    if (run->budget > 0 && !run->killed)
        return;
    run->killed = true;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    if (L == run->co && lua_isyieldable(L)) {
        lua_yield(L, 0);
        return;
    }
    luaL_error(L, "instruction budget exceeded");
}

/* ---- the coroutine pool ---------------------------------------------------------------- */

struct newco {
    lua_State *co;
    int        ref;
};

static int
newco(lua_State *L)
{
    struct newco *n = lua_touserdata(L, 1);

    n->co = lua_newthread(L);
    n->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static lua_State *
pool_get(struct policy_vm *vm, int *ref)
{
    struct newco n = { NULL, LUA_NOREF };

    if (vm->npool > 0) {
        vm->npool--;
        *ref = vm->pool_ref[vm->npool];
        return vm->pool[vm->npool];
    }
    lua_pushcfunction(vm->L, newco);
    lua_pushlightuserdata(vm->L, &n);
    if (lua_pcall(vm->L, 1, 0, 0) != LUA_OK) {
        lua_pop(vm->L, 1);
        return NULL;
    }
    *ref = n.ref;
    return n.co;
}

static void
pool_put(struct policy_vm *vm, lua_State *co, int ref)
{
    if (vm->npool < POLICY_POOL_MAX) {
        vm->pool[vm->npool] = co;
        vm->pool_ref[vm->npool++] = ref;
        return;
    }
    luaL_unref(vm->L, LUA_REGISTRYINDEX, ref);
}

/* ---- inside the coroutine -------------------------------------------------------------- */

static void
check_loaded(lua_State *L, struct policy_run *run)
{
    static const char *const near[] = {
        "on_request", "on_response", "on_connect", "on_ldap",
    };

    policy_load_script(L, run->vm, run->script);
    for (int h = 0; h < POLICY_NHOOKS; h++) {
        int t = lua_getfield(L, -1, policy_hook_name((enum policy_hook)h));

        if (t == LUA_TFUNCTION)
            run->hooks |= 1u << h;
        else if (t != LUA_TNIL)
            luaL_error(L, "%s must be a function, not %s", policy_hook_name((enum policy_hook)h),
                       lua_typename(L, t));
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

        if (k != NULL && policy_hook_of(k) < 0 && run->nunknown < 4 &&
            (strncmp(k, "on_", 3) == 0 || ferry_suggest(k, near, 4, 2) != NULL))
            snprintf(run->unknown[run->nunknown++], sizeof(run->unknown[0]), "%s", k);
        lua_pop(L, 1);
    }
}

static int
run_done(lua_State *L, int status, lua_KContext ctx)
{
    struct policy_run *run = (struct policy_run *)ctx;
    const char        *reason;
    int                code;

    (void)status;
    if (lua_isnoneornil(L, -1) || (lua_isboolean(L, -1) && lua_toboolean(L, -1)))
        return 0;
    if (policy_is_deny(L, -1, &code, &reason)) {
        run->denied = true;
        run->code = code;
        snprintf(run->reason, sizeof(run->reason), "%s", reason);
        return 0;
    }
    return luaL_error(L, "%s returned %s; return nothing to allow or ferry.deny(code, reason)",
                      policy_hook_name(run->call->hook), luaL_typename(L, -1));
}

static char *
field_dup(lua_State *L, int t, const char *k)
{
    const char *v;
    char       *d;

    lua_getfield(L, t, k);
    v = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                                                         : NULL;
    if (v == NULL) {
        lua_pop(L, 1);
        return NULL;
    }
    if ((d = strdup(v)) == NULL)
        luaL_error(L, "out of memory");
    lua_pop(L, 1);
    return d;
}

/* token(dest, ctx) returned: [tok | nil, reason]. */
static int
token_done(lua_State *L, int status, lua_KContext ctx)
{
    struct policy_run   *run = (struct policy_run *)ctx;
    struct policy_token *t = &run->token;

    (void)status;
    if (lua_istable(L, -2)) {
        t->type = field_dup(L, -2, "type");
        t->value = field_dup(L, -2, "value");
        t->header = field_dup(L, -2, "header");
        lua_getfield(L, -2, "expires_in");
        t->expires_in = lua_isnumber(L, -1) ? (long long)lua_tonumber(L, -1) : -1;
        lua_pop(L, 1);
        if (t->value == NULL)
            luaL_error(L, "%s.token returned a token without a value", run->call->module);
    } else {
        const char *why = lua_tostring(L, -1);

        if ((t->error = strdup(why != NULL ? why : "token retrieval failed")) == NULL)
            luaL_error(L, "out of memory");
    }
    return 0;
}

/* ctx.headers: the caller's fields, looked up case-insensitively. */
static int
ctx_headers_index(lua_State *L)
{
    char        low[128];
    size_t      len;
    const char *k = lua_tolstring(L, 2, &len);

    if (k == NULL || len >= sizeof(low))
        return 0;
    for (size_t i = 0; i <= len; i++)
        low[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] - 'A' + 'a' : k[i]);
    lua_pushstring(L, low);
    lua_rawget(L, 1);
    return 1;
}

static void
token_entry(lua_State *L, struct policy_run *run)
{
    const struct policy_call *c = run->call;

    policy_push_env(L, run->vm, 0);
    lua_getfield(L, -1, "require");
    lua_pushstring(L, c->module);
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1) || lua_getfield(L, -1, "token") != LUA_TFUNCTION)
        luaL_error(L, "module %s has no token(dest, ctx) function", c->module);
    run->budget = run->vm->set->lim.instructions;
    policy_push_dest(L, run->vm, c->dest);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, c->tenant);
    lua_setfield(L, -2, "tenant");
    lua_createtable(L, 0, (int)c->nctx_headers);
    for (size_t i = 0; i < c->nctx_headers; i++) {
        const char *n = c->ctx_headers[i].name;
        char        low[128];
        size_t      k;

        for (k = 0; n[k] != '\0' && k + 1 < sizeof(low); k++)
            low[k] = (char)(n[k] >= 'A' && n[k] <= 'Z' ? n[k] - 'A' + 'a' : n[k]);
        low[k] = '\0';
        lua_pushstring(L, c->ctx_headers[i].value);
        lua_setfield(L, -2, low);
    }
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, ctx_headers_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "headers");
    lua_callk(L, 2, 2, (lua_KContext)run, token_done);
    token_done(L, LUA_OK, (lua_KContext)run);
}

static int
run_entry(lua_State *L)
{
    struct policy_run *run = lua_touserdata(L, 1);

    lua_settop(L, 0);
    if (run->call == NULL) {
        check_loaded(L, run);
        return 0;
    }
    if (run->call->hook == POLICY_TOKEN) {
        token_entry(L, run);
        return 0;
    }
    policy_push_hook(L, run->vm, run->script, run->call->hook);
    run->budget = run->vm->set->lim.instructions;       /* loading had its own */
    policy_push_arg(L, run);
    policy_push_dest(L, run->vm, run->call->dest);
    lua_callk(L, 2, 1, (lua_KContext)run, run_done);
    return run_done(L, LUA_OK, (lua_KContext)run);
}

/* ---- outcome --------------------------------------------------------------------------- */

/* The innermost Lua frame of the failed coroutine: "script.lua:14". */
static void
run_where(struct policy_run *run)
{
    lua_Debug ar;

    for (int level = 0; lua_getstack(run->co, level, &ar); level++) {
        if (lua_getinfo(run->co, "Sl", &ar) && ar.currentline > 0 && ar.source[0] == '@') {
            snprintf(run->where_src, sizeof(run->where_src), "%s", ar.source + 1);
            run->where_line = ar.currentline;
            break;
        }
    }
    if (run->where_src[0] == '\0') {
        snprintf(run->where_src, sizeof(run->where_src), "%s",
                 run->vm->set->scripts[run->script].path);
        run->where_line = 0;
    }
    if (run->where_line > 0)
        snprintf(run->where, sizeof(run->where), "%s:%d", run->where_src, run->where_line);
    else
        snprintf(run->where, sizeof(run->where), "%s", run->where_src);
}

static void
run_error(struct policy_run *run, int status)
{
    lua_State  *co = run->co;
    const char *msg = lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : NULL;

    if (run->killed)
        snprintf(run->error, sizeof(run->error), "instruction budget exceeded (%ld)",
                 run->vm->set->lim.instructions);
    else if (status == LUA_ERRMEM ||
             (run->vm->refused > 0 && msg != NULL && strstr(msg, "not enough memory") != NULL))
        snprintf(run->error, sizeof(run->error), "memory cap exceeded (%zu bytes per call)",
                 run->vm->set->lim.call_bytes);
    else if (status == LUA_YIELD)
        snprintf(run->error, sizeof(run->error), "the hook yielded outside a ferry call");
    else if (msg != NULL)
        snprintf(run->error, sizeof(run->error), "%s", msg);
    else
        snprintf(run->error, sizeof(run->error), "(error object is a %s value)",
                 luaL_typename(co, -1));
    run_where(run);
}

/* lua_resume returned status: FERRY_EAGAIN (the run waits on I/O), FERRY_OK, or
 * FERRY_EINVAL with the error in run. */
static int
run_after(struct policy_vm *vm, struct policy_run *run, int status)
{
    const struct policy_limits *lim = &vm->set->lim;
    int                         rc = FERRY_OK;

    vm->run = NULL;
    vm->cap = lim->state_bytes + lim->call_bytes;
    if (status == LUA_YIELD && run->waiting && !run->killed) {
        vm->nwaiting++;
        return FERRY_EAGAIN;
    }
    if (status == LUA_OK && !run->killed) {
        lua_settop(run->co, 0);
        pool_put(vm, run->co, run->co_ref);
    } else {
        run_error(run, status);
        luaL_unref(vm->L, LUA_REGISTRYINDEX, run->co_ref);
        rc = FERRY_EINVAL;
    }
    run->co_ref = LUA_NOREF;
    policy_io_end(run);
    if (vm->used > lim->state_bytes && vm->nwaiting == 0)
        policy_vm_close(vm);        /* a leaking script: start over on the next call */
    return rc;
}

/* Run run->call (or the script's top level when call is NULL) until it ends or waits. */
static int
run_start(struct policy_vm *vm, struct policy_run *run)
{
    const struct policy_limits *lim = &vm->set->lim;
    int                         status, nres = 0, ref = LUA_NOREF;

    if (vm->L == NULL && policy_vm_open(vm) != FERRY_OK) {
        snprintf(run->error, sizeof(run->error), "cannot create a Lua state (out of memory)");
        snprintf(run->where, sizeof(run->where), "%s", vm->set->scripts[run->script].path);
        return FERRY_ENOMEM;
    }
    run->vm = vm;
    run->serial = ++vm->serial;
    run->budget = lim->instructions;
    vm->refused = 0;
    vm->cap = vm->used + lim->call_bytes;
    vm->run = run;
    if ((run->co = pool_get(vm, &ref)) == NULL) {
        vm->run = NULL;
        vm->cap = lim->state_bytes;
        snprintf(run->error, sizeof(run->error), "memory cap exceeded (no room for a call)");
        snprintf(run->where, sizeof(run->where), "%s", vm->set->scripts[run->script].path);
        if (vm->nwaiting == 0)
            policy_vm_close(vm);
        return FERRY_ENOMEM;
    }
    run->co_ref = ref;
    lua_sethook(run->co, count_hook, LUA_MASKCOUNT, HOOK_STEP);
    lua_pushcfunction(run->co, run_entry);
    lua_pushlightuserdata(run->co, run);
    status = lua_resume(run->co, vm->L, 1, &nres);
    return run_after(vm, run, status);
}

int
policy_vm_check(struct policy_vm *vm, size_t script, struct policy_run *run)
{
    memset(run, 0, sizeof(*run));
    run->script = script;
    return run_start(vm, run);
}

/* The verdict of a finished call (rc from run_start / run_after). */
static void
run_verdict(struct policy_run *run, int rc, struct ferry_policy_verdict *v)
{
    const struct policy_call *call = run->call;

    v->allowed = true;
    v->error = false;
    v->code = 0;
    v->reason[0] = '\0';
    if (rc != FERRY_OK) {
        v->allowed = false;
        v->error = true;
        v->code = call->hook == POLICY_ON_LDAP ? 80 : 500;
        snprintf(v->reason, sizeof(v->reason), "policy-error");
        policy_scrub(call->dest, run->error, sizeof(run->error));
        ferry_log(call->log, FERRY_WARN, "policy failed",
                  FLOG_STR("destination", ferry_dest_name(call->dest)),
                  FLOG_STR("hook", call->hook == POLICY_TOKEN ? "token"
                                                              : policy_hook_name(call->hook)),
                  FLOG_STR("where", run->where), FLOG_STR("error", run->error));
    } else if (run->denied) {
        v->allowed = false;
        v->code = run->code;
        policy_scrub(call->dest, run->reason, sizeof(run->reason));
        snprintf(v->reason, sizeof(v->reason), "%s", run->reason);
    }
}

int
ferry_policy_vm_call(struct policy_vm *vm, const struct policy_call *call,
                     struct ferry_policy_verdict *v)
{
    const struct policy_script *s;
    struct policy_run           run;
    size_t                      i;

    if (vm == NULL || (s = policy_script_of(vm->set, call->dest, &i)) == NULL ||
        call->hook >= POLICY_NHOOKS || (s->hooks & (1u << call->hook)) == 0)
        return FERRY_ENOTFOUND;
    memset(&run, 0, sizeof(run));
    run.call = call;
    run.script = i;
    run_verdict(&run, run_start(vm, &run), v);
    return FERRY_OK;
}

/* ---- runs that wait ------------------------------------------------------------------- */

void
policy_token_free(struct policy_token *t)
{
    if (t->value != NULL)
        explicit_bzero(t->value, strlen(t->value));   /* freed next: memset may be dropped */
    free(t->type);
    free(t->value);
    free(t->header);
    free(t->error);
    memset(t, 0, sizeof(*t));
    t->expires_in = -1;
}

void
policy_run_free(struct policy_run *run)
{
    if (run == NULL)
        return;
    if (run->deadline != NULL)
        event_free(run->deadline);
    policy_token_free(&run->token);
    if (run->vm != NULL && run->vm->nspare < sizeof(run->vm->spare) / sizeof(run->vm->spare[0]))
        run->vm->spare[run->vm->nspare++] = run;
    else
        free(run);
}

static int
start_heap(struct policy_vm *vm, const struct policy_call *call, size_t script,
           void (*done)(struct policy_run *), void *done_arg, struct policy_run **out)
{
    struct policy_run *run = vm->nspare > 0 ? vm->spare[--vm->nspare] : malloc(sizeof(*run));
    int                rc;

    *out = NULL;
    if (run == NULL)
        return FERRY_ENOMEM;
    memset(run, 0, sizeof(*run));
    run->callbuf = *call;
    run->call = &run->callbuf;
    run->script = script;
    run->heap = true;
    run->co_ref = LUA_NOREF;
    run->token.expires_in = -1;
    run->done = done;
    run->done_arg = done_arg;
    rc = run_start(vm, run);
    *out = run;
    return rc;
}

int
ferry_policy_vm_start(struct policy_vm *vm, const struct policy_call *call,
                      struct ferry_policy_verdict *v, void (*done)(struct policy_run *),
                      void *done_arg, struct policy_run **out)
{
    const struct policy_script *s;
    struct policy_run          *run;
    size_t                      i;
    int                         rc;

    *out = NULL;
    if (vm == NULL || (s = policy_script_of(vm->set, call->dest, &i)) == NULL ||
        call->hook >= POLICY_NHOOKS || (s->hooks & (1u << call->hook)) == 0)
        return FERRY_ENOTFOUND;
    if (call->home == NULL)
        return ferry_policy_vm_call(vm, call, v);
    rc = start_heap(vm, call, i, done, done_arg, &run);
    if (run == NULL) {
        struct policy_run tmp = { .call = call };

        snprintf(tmp.error, sizeof(tmp.error), "out of memory");
        run_verdict(&tmp, rc, v);
        return FERRY_OK;
    }
    if (rc == FERRY_EAGAIN) {
        *out = run;
        return FERRY_EAGAIN;
    }
    run_verdict(run, rc, v);
    policy_run_free(run);
    return FERRY_OK;
}

int
policy_vm_token(struct policy_vm *vm, const struct policy_call *call,
                struct policy_token *tok, void (*done)(struct policy_run *), void *done_arg,
                struct policy_run **out)
{
    struct policy_run *run;
    int                rc;

    *out = NULL;
    memset(tok, 0, sizeof(*tok));
    tok->expires_in = -1;
    rc = start_heap(vm, call, 0, done, done_arg, &run);
    if (run == NULL)
        return rc;
    if (rc == FERRY_EAGAIN) {
        *out = run;
        return FERRY_EAGAIN;
    }
    if (rc != FERRY_OK) {
        run_verdict(run, rc, &run->verdict);        /* logs it */
        policy_token_free(&run->token);
        run->token.error = strdup("the authentication module failed (see the log)");
    }
    *tok = run->token;
    memset(&run->token, 0, sizeof(run->token));
    policy_run_free(run);
    return FERRY_OK;
}

/* The run is over after a wait: its verdict, then its owner. */
static void
run_end(struct policy_run *run, int rc)
{
    run->rc = rc;
    run_verdict(run, rc, &run->verdict);
    if (rc != FERRY_OK && run->call->hook == POLICY_TOKEN && run->token.error == NULL) {
        policy_token_free(&run->token);
        run->token.error = strdup("the authentication module failed (see the log)");
    }
    run->done(run);
}

/* Drop the suspended coroutine: it is never resumed, the collector takes it. */
static void
run_drop(struct policy_run *run)
{
    struct policy_vm *vm = run->vm;

    policy_io_end(run);
    run->waiting = false;
    vm->nwaiting--;
    if (vm->L != NULL && run->co_ref != LUA_NOREF)
        luaL_unref(vm->L, LUA_REGISTRYINDEX, run->co_ref);
    run->co_ref = LUA_NOREF;
    if (vm->L != NULL && vm->used > vm->set->lim.state_bytes && vm->nwaiting == 0)
        policy_vm_close(vm);
}

static void
run_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct policy_run *run = arg;

    (void)fd;
    (void)what;
    if (!run->waiting)
        return;
    run_where(run);
    run_drop(run);
    snprintf(run->error, sizeof(run->error), "the hook waited on I/O for more than %d ms",
             POLICY_WAIT_MS);
    run_end(run, FERRY_ETIMEDOUT);
}

int
policy_run_wait(lua_State *co, struct policy_run *run, lua_KFunction k,
                void (*cancel)(struct policy_run *run), void *io)
{
    if (run->deadline == NULL) {
        struct timeval tv = { POLICY_WAIT_MS / 1000, (POLICY_WAIT_MS % 1000) * 1000 };

        if ((run->deadline = evtimer_new(run->call->home->base, run_deadline, run)) == NULL ||
            evtimer_add(run->deadline, &tv) != 0) {
            if (cancel != NULL)
                run->io = io, cancel(run);
            return luaL_error(co, "out of memory");
        }
    }
    run->waiting = true;
    run->cancel = cancel;
    run->io = io;
    return lua_yieldk(co, 0, (lua_KContext)io, k);
}

void
policy_run_wake(struct policy_run *run)
{
    struct policy_vm *vm = run->vm;
    int               status, nres = 0;

    run->waiting = false;
    run->cancel = NULL;
    run->io = NULL;
    vm->nwaiting--;
    if (vm->L == NULL) {            /* cannot happen while nwaiting > 0; be safe */
        snprintf(run->error, sizeof(run->error), "the Lua state went away");
        run_end(run, FERRY_EINVAL);
        return;
    }
    vm->refused = 0;
    vm->cap = vm->used + vm->set->lim.call_bytes;
    vm->run = run;
    status = lua_resume(run->co, vm->L, 0, &nres);
    if ((status = run_after(vm, run, status)) == FERRY_EAGAIN)
        return;
    run_end(run, status);
}

void
policy_run_abort(struct policy_run *run)
{
    if (run == NULL)
        return;
    if (run->waiting)
        run_drop(run);
    else
        policy_io_end(run);
    policy_run_free(run);
}
