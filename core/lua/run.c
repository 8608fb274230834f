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
#include <string.h>

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
            (strncmp(k, "on_", 3) == 0 || ferry_conf_suggest(k, near, 4, 2) != NULL))
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

static int
run_entry(lua_State *L)
{
    struct policy_run *run = lua_touserdata(L, 1);

    lua_settop(L, 0);
    if (run->call == NULL) {
        check_loaded(L, run);
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

/* Run run->call (or the script's top level when call is NULL) to the end. */
static int
run_start(struct policy_vm *vm, struct policy_run *run)
{
    const struct policy_limits *lim = &vm->set->lim;
    int                         status, nres = 0, ref = LUA_NOREF, rc = FERRY_OK;

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
        policy_vm_close(vm);
        return FERRY_ENOMEM;
    }
    lua_sethook(run->co, count_hook, LUA_MASKCOUNT, HOOK_STEP);
    lua_pushcfunction(run->co, run_entry);
    lua_pushlightuserdata(run->co, run);
    status = lua_resume(run->co, vm->L, 1, &nres);
    vm->run = NULL;
    if (status == LUA_OK && !run->killed) {
        lua_settop(run->co, 0);
        pool_put(vm, run->co, ref);
    } else {
        run_error(run, status);
        luaL_unref(vm->L, LUA_REGISTRYINDEX, ref);
        rc = FERRY_EINVAL;
    }
    vm->cap = lim->state_bytes + lim->call_bytes;
    if (vm->used > lim->state_bytes)
        policy_vm_close(vm);        /* a leaking script: start over on the next call */
    return rc;
}

int
policy_vm_check(struct policy_vm *vm, size_t script, struct policy_run *run)
{
    memset(run, 0, sizeof(*run));
    run->script = script;
    return run_start(vm, run);
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
    v->allowed = true;
    v->error = false;
    v->code = 0;
    v->reason[0] = '\0';
    if (run_start(vm, &run) != FERRY_OK) {
        v->allowed = false;
        v->error = true;
        v->code = call->hook == POLICY_ON_LDAP ? 80 : 500;
        snprintf(v->reason, sizeof(v->reason), "policy-error");
        policy_scrub(call->dest, run.error, sizeof(run.error));
        ferry_log(call->log, FERRY_WARN, "policy failed",
                  FLOG_STR("destination", ferry_dest_name(call->dest)),
                  FLOG_STR("hook", policy_hook_name(call->hook)),
                  FLOG_STR("where", run.where), FLOG_STR("error", run.error));
    } else if (run.denied) {
        v->allowed = false;
        v->code = run.code;
        policy_scrub(call->dest, run.reason, sizeof(run.reason));
        snprintf(v->reason, sizeof(v->reason), "%s", run.reason);
    }
    return FERRY_OK;
}
