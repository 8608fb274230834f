/*
 * lib.c: the `ferry` table policies call: ferry.deny, ferry.log, ferry.now and
 * ferry.base64 (ferry.json is json.c; ferry.http, ferry.tokens, ferry.url and
 * ferry.sha256 are io.c). Nothing here blocks or touches a file.
 *
 * Logs written for a script never carry the destination's secret property values:
 * policy_scrub() replaces them by "***" in every message, deny reason and error.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include <ferry/route.h>

#include "dest/dest-int.h"
#include "lua/lua-int.h"

const char policy_key_deny;

#define LOG_MAX_BYTES 1024

struct deny {
    int  code;
    char reason[256];
};

void
policy_scrub(const struct ferry_dest *d, char *buf, size_t cap)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nprops; i++) {
        const char *v = d->props[i].value;
        size_t      n = v != NULL ? strlen(v) : 0;
        char       *at;

        if (!d->props[i].secret || n < 3)
            continue;
        while ((at = strstr(buf, v)) != NULL) {
            size_t rest = strlen(at + n);

            memmove(at + 3, at + n, rest + 1);
            memcpy(at, "***", 3);
        }
    }
    (void)cap;          /* "***" never makes the text longer than a 3+ byte secret */
}

/* Copy text into out: at most size - 1 bytes, never splitting a UTF-8 sequence,
 * control characters turned into spaces (reasons end up in HTTP fields and logs). */
static void
copy_clean(char *out, size_t size, const char *s, size_t len)
{
    size_t n = len < size - 1 ? len : size - 1;

    while (n > 0 && n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        out[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    out[n] = '\0';
}

/* ---- ferry.deny --------------------------------------------------------------------- */

static int
l_deny(lua_State *L)
{
    struct policy_vm  *vm = policy_vm_of(L);
    struct policy_run *run = vm->run;
    lua_Integer        code = luaL_checkinteger(L, 1);
    size_t             len;
    const char        *reason = luaL_optlstring(L, 2, "denied", &len);
    lua_Integer        lo = 0, hi = 65535;
    struct deny       *d;

    if (run != NULL && run->call != NULL) {
        switch (run->call->hook) {
        case POLICY_ON_REQUEST: case POLICY_ON_RESPONSE: lo = 400; hi = 599; break;
        case POLICY_ON_LDAP: lo = 1; break;
        default: break;
        }
    }
    if (code < lo || code > hi)
        return luaL_error(L, "ferry.deny: code %I is out of range for %s (%I-%I)", code,
                          run != NULL && run->call != NULL ? policy_hook_name(run->call->hook)
                                                           : "a hook", lo, hi);
    d = lua_newuserdatauv(L, sizeof(*d), 0);
    d->code = (int)code;
    copy_clean(d->reason, sizeof(d->reason), reason, len);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &policy_key_deny);
    lua_setmetatable(L, -2);
    return 1;
}

bool
policy_is_deny(lua_State *L, int idx, int *code, const char **reason)
{
    struct deny *d = lua_touserdata(L, idx);
    bool         same;

    if (d == NULL || lua_islightuserdata(L, idx) || !lua_getmetatable(L, idx))
        return false;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &policy_key_deny);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!same)
        return false;
    *code = d->code;
    *reason = d->reason;
    return true;
}

static int
deny_tostring(lua_State *L)
{
    int         code;
    const char *reason;

    if (!policy_is_deny(L, 1, &code, &reason))
        return 0;
    lua_pushfstring(L, "ferry.deny(%d, \"%s\")", code, reason);
    return 1;
}

/* ---- ferry.log, ferry.now ----------------------------------------------------------- */

static int
l_log(lua_State *L)
{
    static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
    static const enum ferry_log_level lv[] = { FERRY_DEBUG, FERRY_INFO, FERRY_WARN, FERRY_ERROR };
    struct policy_vm  *vm = policy_vm_of(L);
    struct policy_run *run = vm->run;
    int                i = luaL_checkoption(L, 1, NULL, levels);
    size_t             len;
    const char        *msg = luaL_checklstring(L, 2, &len);
    const struct ferry_dest *d = run != NULL && run->call != NULL ? run->call->dest : NULL;
    char               text[LOG_MAX_BYTES], where[320] = "";
    lua_Debug          ar;

    if (!ferry_log_enabled(lv[i]))
        return 0;
    copy_clean(text, sizeof(text), msg, len);
    policy_scrub(d, text, sizeof(text));
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.source[0] == '@')
        snprintf(where, sizeof(where), "%s:%d", ar.source + 1, ar.currentline);
    ferry_log(run != NULL && run->call != NULL ? run->call->log : NULL, lv[i], text,
              FLOG_STR("destination", d != NULL ? ferry_dest_name(d) : NULL),
              FLOG_STR("policy", where[0] ? where : NULL));
    return 0;
}

static int
l_now(lua_State *L)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)(ts.tv_nsec / 1000) / 1e6);
    return 1;
}

/* ---- ferry.base64 --------------------------------------------------------------------- */

static int
l_b64_encode(lua_State *L)
{
    size_t      len, cap;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    char       *out;
    long        n;

    if (len > ((size_t)1 << 30))
        return luaL_error(L, "ferry.base64.encode: input too large");
    cap = (len + 2) / 3 * 4 + 1;
    out = luaL_buffinitsize(L, &b, cap);
    n = ferry_base64_encode((const uint8_t *)s, len, out, cap);
    luaL_pushresultsize(&b, n < 0 ? 0 : (size_t)n);
    return 1;
}

/* Returns the bytes, or nil and a message when the text is not padded base64. */
static int
l_b64_decode(lua_State *L)
{
    size_t      len, cap;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    char       *out;
    long        n;

    cap = len / 4 * 3 + 3;
    out = luaL_buffinitsize(L, &b, cap);
    n = ferry_base64_decode(s, len, (uint8_t *)out, cap);
    if (n < 0) {
        luaL_pushresultsize(&b, 0);
        luaL_pushfail(L);
        lua_pushliteral(L, "invalid base64");
        return 2;
    }
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

void
policy_open_lib(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "deny", l_deny }, { "log", l_log }, { "now", l_now }, { NULL, NULL },
    };
    static const luaL_Reg b64[] = {
        { "encode", l_b64_encode }, { "decode", l_b64_decode }, { NULL, NULL },
    };

    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, deny_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "ferry.deny");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &policy_key_deny);

    luaL_newlib(L, fns);
    luaL_newlib(L, b64);
    lua_setfield(L, -2, "base64");
    policy_open_json(L);
    lua_setfield(L, -2, "json");
    policy_open_io(L);
}
