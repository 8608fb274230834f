/*
 * vm.c: a worker's Lua state and the sandbox scripts run in.
 *
 * One state per worker and configuration generation (owned by struct wgen, created on
 * the first policy call), so workers share nothing and need no locks. The allocator
 * counts every byte the state holds and refuses past vm->cap (run.c moves the cap per
 * call). Code never sees the real globals: each script and module gets a fresh
 * environment copied from a template of whitelisted functions, with its own copies of
 * the library tables, so one policy cannot change what another one calls. `require`
 * loads modules from memory (load.c read them with the configuration).
 *
 * Everything that can raise (allocation included) runs under lua_pcall or lua_resume.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua/lua-int.h"

const char policy_key_proto;
const char policy_key_loaded;
static const char loading_mark;        /* loaded[m] while m's top level runs */

static void *
l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct policy_vm *vm = ud;
    size_t            old = ptr != NULL ? osize : 0;  /* ptr NULL: osize is a type tag */
    void             *p;

    if (nsize == 0) {
        free(ptr);
        vm->used -= old;
        return NULL;
    }
    if (nsize > old && vm->used - old + nsize > vm->cap) {
        vm->refused++;          /* Lua collects garbage and asks once more, then raises */
        return NULL;
    }
    if ((p = realloc(ptr, nsize)) == NULL) {
        vm->refused++;
        return NULL;
    }
    vm->used = vm->used - old + nsize;
    return p;
}

struct policy_vm *
policy_vm_of(lua_State *L)
{
    /* Every thread starts with a copy of the main thread's extra space. */
    return *(struct policy_vm **)lua_getextraspace(L);
}

/* ---- sandboxed base functions ---------------------------------------------------------- */

/* setmetatable without __gc: finalizers run with hooks off, so a loop in one could
 * never be stopped (and they run at lua_close, on reload). */
static int
l_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc is not allowed in policies");
        lua_pop(L, 1);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/* load(chunk [, chunkname [, mode [, env]]]): text only, from a string; without env
 * the chunk gets a fresh sandbox of its own. */
static int
l_load(lua_State *L)
{
    size_t      len;
    const char *s = lua_tolstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    const char *mode = luaL_optstring(L, 3, "t");

    if (s == NULL || lua_type(L, 1) != LUA_TSTRING) {
        luaL_pushfail(L);
        lua_pushliteral(L, "load: policies load chunks from strings only");
        return 2;
    }
    if (strchr(mode, 't') == NULL) {
        luaL_pushfail(L);
        lua_pushliteral(L, "load: binary chunks are not allowed");
        return 2;
    }
    if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (!lua_isnone(L, 4))
        lua_pushvalue(L, 4);
    else
        policy_push_env(L, policy_vm_of(L), 0);
    lua_setupvalue(L, -2, 1);
    return 1;
}

/* ---- require ------------------------------------------------------------------------------ */

static const struct policy_module *
find_module(const struct ferry_policy_set *s, size_t dir, const char *rel, size_t *found)
{
    size_t order[2] = { dir, 0 };

    for (size_t k = dir == 0 ? 1 : 0; k < 2; k++) {
        const struct policy_dir *d = &s->dirs[order[k]];

        for (size_t i = 0; i < d->nmods; i++) {
            if (strcmp(d->mods[i].name, rel) == 0) {
                *found = order[k];
                return &d->mods[i];
            }
        }
    }
    return NULL;
}

static bool
module_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > 128 || name[0] == '.' || name[len - 1] == '.' ||
        strstr(name, "..") != NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* require(name): "a.b" is a/b.lua or a/b/init.lua in the requiring code's folder, then
 * in the lua/ library folder; nothing else is reachable. */
static int
l_require(lua_State *L)
{
    struct policy_vm           *vm = policy_vm_of(L);
    size_t                      len, found = 0;
    const char                 *name = luaL_checklstring(L, 1, &len);
    size_t                      dir = (size_t)lua_tointeger(L, lua_upvalueindex(1));
    const struct policy_module *m;
    char                        rel[160];
    int                         lt;

    if (!module_name_ok(name, len))
        return luaL_error(L, "require: '%s' is not a module name (letters, digits, _ - .)",
                          name);
    for (size_t i = 0; i <= len; i++)
        rel[i] = name[i] == '.' ? '/' : name[i];
    memcpy(rel + len, ".lua", 5);
    if ((m = find_module(vm->set, dir, rel, &found)) == NULL) {
        memcpy(rel + len, "/init.lua", 10);
        m = find_module(vm->set, dir, rel, &found);
    }
    if (m == NULL)
        return luaL_error(L, "module '%s' not found (policies may require modules of their "
                          "own folder%s%s)", name, dir != 0 ? " or of " : "",
                          dir != 0 ? vm->set->dirs[0].path : "");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &policy_key_loaded);
    lt = lua_gettop(L);
    if (lua_rawgetp(L, lt, m) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == &loading_mark)
            return luaL_error(L, "module '%s' requires itself (a loop)", name);
        return 1;
    }
    lua_pop(L, 1);
    lua_pushlightuserdata(L, (void *)&loading_mark);
    lua_rawsetp(L, lt, m);
    lua_pushfstring(L, "@%s", m->path);
    if (luaL_loadbufferx(L, m->src, m->len, lua_tostring(L, -1), "t") != LUA_OK) {
        lua_pushnil(L);
        lua_rawsetp(L, lt, m);
        return lua_error(L);
    }
    policy_push_env(L, vm, found);
    lua_setupvalue(L, -2, 1);
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pushnil(L);             /* a later require tries again instead of "a loop" */
        lua_rawsetp(L, lt, m);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_rawsetp(L, lt, m);
    return 1;
}

/* ---- environments ----------------------------------------------------------------------- */

/* Replace the table at the top by a copy (nested tables copied up to depth levels). */
static void
copy_top(lua_State *L, int depth)
{
    int src = lua_gettop(L), dst;

    lua_createtable(L, 0, (int)lua_rawlen(L, src) + 8);
    dst = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, src) != 0) {
        if (depth > 0 && lua_type(L, -1) == LUA_TTABLE)
            copy_top(L, depth - 1);
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, dst);
    }
    lua_remove(L, src);
}

void
policy_push_env(lua_State *L, struct policy_vm *vm, size_t dir)
{
    (void)vm;
    luaL_checkstack(L, 8, "policy environment");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &policy_key_proto);
    copy_top(L, 2);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    lua_pushinteger(L, (lua_Integer)dir);
    lua_pushcclosure(L, l_require, 1);
    lua_setfield(L, -2, "require");
}

/* ---- the state ---------------------------------------------------------------------- */

static void
take(lua_State *L, int from, int to, const char *const *names)
{
    for (; *names != NULL; names++) {
        lua_getfield(L, from, *names);
        lua_setfield(L, to, *names);
    }
}

static int
vm_init(lua_State *L)
{
    static const char *const base[] = {
        "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal",
        "rawget", "rawlen", "rawset", "select", "tonumber", "tostring", "type", "xpcall",
        "_VERSION", NULL,
    };
    static const char *const os_ok[] = { "time", "clock", "date", NULL };
    static const struct { const char *name; lua_CFunction open; } libs[] = {
        { LUA_GNAME, luaopen_base }, { LUA_STRLIBNAME, luaopen_string },
        { LUA_TABLIBNAME, luaopen_table }, { LUA_MATHLIBNAME, luaopen_math },
        { LUA_UTF8LIBNAME, luaopen_utf8 }, { LUA_OSLIBNAME, luaopen_os },
    };
    int g, proto;

    for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
        luaL_requiref(L, libs[i].name, libs[i].open, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    g = lua_gettop(L);
    /* The string metatable's __index is the real string table, reachable from any
     * string: no string.dump there, and getmetatable("") gives nothing to change. */
    lua_getfield(L, g, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    lua_createtable(L, 0, 32);
    proto = lua_gettop(L);
    take(L, g, proto, base);
    lua_pushcfunction(L, l_setmetatable);
    lua_setfield(L, proto, "setmetatable");
    lua_pushcfunction(L, l_load);
    lua_setfield(L, proto, "load");
    for (size_t i = 1; i < sizeof(libs) / sizeof(libs[0]) - 1; i++) {
        lua_getfield(L, g, libs[i].name);
        lua_setfield(L, proto, libs[i].name);
    }
    lua_getfield(L, g, LUA_OSLIBNAME);
    lua_createtable(L, 0, 3);
    take(L, lua_gettop(L) - 1, lua_gettop(L), os_ok);
    lua_setfield(L, proto, LUA_OSLIBNAME);
    lua_pop(L, 1);
    policy_open_lib(L);
    lua_setfield(L, proto, "ferry");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &policy_key_proto);

    /* Nothing reaches the real globals (chunks always get a sandbox as _ENV); empty
     * them anyway, so a mistake cannot hand out os.execute. */
    lua_pushnil(L);
    while (lua_next(L, g) != 0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, g);
    }
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &policy_key_loaded);
    policy_open_objects(L);
    return 0;
}

static void
refs_reset(struct policy_vm *vm)
{
    for (size_t i = 0; i < vm->set->nscripts * POLICY_NHOOKS; i++)
        vm->fn_ref[i] = LUA_NOREF;
    for (size_t i = 0; i < vm->set->ndests; i++)
        vm->dest_ref[i] = LUA_NOREF;
    vm->npool = 0;
}

int
policy_vm_open(struct policy_vm *vm)
{
    lua_State *L;

    if (vm->L != NULL)
        return FERRY_OK;
    vm->used = 0;
    vm->cap = vm->set->lim.state_bytes;
    if ((L = lua_newstate(l_alloc, vm)) == NULL)
        return FERRY_ENOMEM;
    *(struct policy_vm **)lua_getextraspace(L) = vm;
    lua_pushcfunction(L, vm_init);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_close(L);
        return FERRY_ENOMEM;
    }
    /* Most of a hook's garbage dies young (req, headers, strings): generational. */
    lua_gc(L, LUA_GCGEN, 0, 0);
    refs_reset(vm);
    vm->L = L;
    return FERRY_OK;
}

void
policy_vm_close(struct policy_vm *vm)
{
    if (vm->L == NULL)
        return;
    lua_close(vm->L);
    vm->L = NULL;
    vm->used = 0;
    refs_reset(vm);
}

struct policy_vm *
ferry_policy_vm_new(const struct ferry_policy_set *set)
{
    struct policy_vm *vm = calloc(1, sizeof(*vm));

    if (vm == NULL)
        return NULL;
    vm->set = set;
    vm->fn_ref = calloc(set->nscripts * POLICY_NHOOKS + 1, sizeof(int));
    vm->dest_ref = calloc(set->ndests + 1, sizeof(int));
    if (vm->fn_ref == NULL || vm->dest_ref == NULL) {
        ferry_policy_vm_free(vm);
        return NULL;
    }
    refs_reset(vm);
    return vm;
}

void
ferry_policy_vm_free(struct policy_vm *vm)
{
    if (vm == NULL)
        return;
    policy_vm_close(vm);
    while (vm->nspare > 0)
        free(vm->spare[--vm->nspare]);
    free(vm->fn_ref);
    free(vm->dest_ref);
    free(vm);
}

/* ---- scripts ------------------------------------------------------------------------- */

static const char *const hook_names[POLICY_NHOOKS] = {
    "on_request", "on_response", "on_connect", "on_ldap",
};

const char *
policy_hook_name(enum policy_hook h)
{
    return h < POLICY_NHOOKS ? hook_names[h] : "the top level";
}

int
policy_hook_of(const char *name)
{
    for (int h = 0; h < POLICY_NHOOKS; h++)
        if (strcmp(name, hook_names[h]) == 0)
            return h;
    return -1;
}

/* An Authentication module's hooks run first; the destination's own script's after
 * them, unless the module's hook denied. */
static const char compose_src[] =
    "local auth, own = ...\n"
    "local t = {}\n"
    "for k, v in pairs(own) do t[k] = v end\n"
    "for _, h in ipairs({ 'on_request', 'on_response', 'on_connect', 'on_ldap' }) do\n"
    "  local a, o = auth[h], own[h]\n"
    "  if type(a) == 'function' then\n"
    "    if type(o) == 'function' then\n"
    "      t[h] = function(x, dest)\n"
    "        local r = a(x, dest)\n"
    "        if r ~= nil and r ~= true then return r end\n"
    "        return o(x, dest)\n"
    "      end\n"
    "    else\n"
    "      t[h] = a\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return t\n";

void
policy_load_script(lua_State *L, struct policy_vm *vm, size_t i)
{
    const struct policy_script *s = &vm->set->scripts[i];

    if (s->src == NULL) {
        lua_newtable(L);            /* only an Authentication module */
    } else {
        lua_pushfstring(L, "@%s", s->path);
        if (luaL_loadbufferx(L, s->src, s->len, lua_tostring(L, -1), "t") != LUA_OK)
            lua_error(L);
        lua_remove(L, -2);
        policy_push_env(L, vm, s->dir);
        lua_setupvalue(L, -2, 1);
        lua_call(L, 0, 1);
        if (!lua_istable(L, -1)) {
            lua_pushfstring(L, "the script must return a table of hooks, not %s",
                            luaL_typename(L, -1));
            lua_error(L);
        }
    }
    if (s->auth == NULL)
        return;
    /*   [own]  ->  [own compose]  ->  [own compose module own]  ->  [own t]  ->  [t] */
    if (luaL_loadbufferx(L, compose_src, sizeof(compose_src) - 1, "=(ferry auth)", "t") != LUA_OK)
        lua_error(L);
    policy_push_env(L, vm, 0);
    lua_setupvalue(L, -2, 1);
    policy_push_env(L, vm, 0);
    lua_getfield(L, -1, "require");
    lua_remove(L, -2);
    lua_pushstring(L, s->auth);
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1)) {
        lua_pushfstring(L, "module %s must return a table of hooks, not %s", s->auth,
                        luaL_typename(L, -1));
        lua_error(L);
    }
    lua_pushvalue(L, -3);
    lua_call(L, 2, 1);
    lua_remove(L, -2);
}

void
policy_push_hook(lua_State *L, struct policy_vm *vm, size_t i, enum policy_hook hook)
{
    int *refs = &vm->fn_ref[i * POLICY_NHOOKS];

    if (refs[hook] == LUA_NOREF) {
        policy_load_script(L, vm, i);
        for (int h = 0; h < POLICY_NHOOKS; h++) {
            if (lua_getfield(L, -1, hook_names[h]) == LUA_TFUNCTION) {
                int ref = luaL_ref(L, LUA_REGISTRYINDEX);

                if (refs[h] != LUA_NOREF && refs[h] != LUA_REFNIL)
                    luaL_unref(L, LUA_REGISTRYINDEX, refs[h]);
                refs[h] = ref;
            } else {
                lua_pop(L, 1);
                refs[h] = LUA_REFNIL;
            }
        }
        lua_pop(L, 1);
    }
    if (refs[hook] == LUA_REFNIL) {
        lua_pushfstring(L, "the script's %s is not a function", hook_names[hook]);
        lua_error(L);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, refs[hook]);
}
