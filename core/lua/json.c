/*
 * json.c: ferry.json.encode / ferry.json.decode with jansson.
 *
 *   encode(v) -> text   tables with keys 1..n are arrays, tables with string keys are
 *                       objects (keys sorted), {} is an object, ferry.json.null is
 *                       null; functions, userdata, NaN, mixed keys, invalid UTF-8 and
 *                       nesting past 64 levels are errors
 *   decode(text) -> v   or nil and "line L column C: why"; null becomes ferry.json.null;
 *                       texts over 1 MiB are refused (jansson's tree lives outside the
 *                       state's memory cap, so its size is bounded by the input's)
 *
 * jansson memory is never held across a call that can raise: the tree and the dumped
 * text sit in a to-be-closed box whose __close releases them, so an error or an
 * out-of-memory in the middle frees everything.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <lauxlib.h>

#include "lua/lua-int.h"

#define JSON_MAX_DEPTH       64
#define JSON_MAX_INPUT_BYTES (1024 * 1024)

static const char key_box;
static const char null_mark;        /* its address is ferry.json.null */

struct box {
    json_t *root;
    char   *text;
};

static int
box_close(lua_State *L)
{
    struct box *b = lua_touserdata(L, 1);

    if (b != NULL) {
        json_decref(b->root);
        free(b->text);
        b->root = NULL;
        b->text = NULL;
    }
    return 0;
}

static struct box *
push_box(lua_State *L)
{
    struct box *b = lua_newuserdatauv(L, sizeof(*b), 0);

    b->root = NULL;
    b->text = NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_box);
    lua_setmetatable(L, -2);
    lua_toclose(L, -1);
    return b;
}

/* ---- encode ------------------------------------------------------------------------------ */

/* Build the JSON value of the Lua value at idx. NULL with *why set on error; raises
 * nothing (lua_next and lua_rawgeti do not allocate; lua_checkstack reports). */
static json_t *
to_json(lua_State *L, int idx, int depth, const char **why)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        if (!isfinite(lua_tonumber(L, idx))) {
            *why = "NaN and infinities have no JSON form";
            return NULL;
        }
        return json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t      len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t     *j = json_stringn(s, len);

        if (j == NULL)
            *why = "a string is not valid UTF-8";
        return j;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == &null_mark)
            return json_null();
        break;
    case LUA_TTABLE:
        break;
    default:
        *why = "functions, userdata and threads have no JSON form";
        return NULL;
    }
    if (lua_type(L, idx) != LUA_TTABLE) {
        *why = "userdata has no JSON form";
        return NULL;
    }
    if (depth >= JSON_MAX_DEPTH || !lua_checkstack(L, 4)) {
        *why = "nesting too deep (or a table contains itself)";
        return NULL;
    }
    idx = lua_absindex(L, idx);
    {
        size_t  n = 0, max = 0;
        bool    strings = false, ints = false;
        json_t *out;

        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            n++;
            if (lua_type(L, -1) == LUA_TSTRING) {
                strings = true;
            } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0) {
                ints = true;
                if ((size_t)lua_tointeger(L, -1) > max)
                    max = (size_t)lua_tointeger(L, -1);
            } else {
                lua_pop(L, 1);
                *why = "object keys must be strings";
                return NULL;
            }
        }
        if (strings && ints) {
            *why = "a table mixes array and object keys";
            return NULL;
        }
        if (ints && max != n) {
            *why = "an array has holes";
            return NULL;
        }
        if (ints) {
            if ((out = json_array()) == NULL)
                goto oom;
            for (size_t i = 1; i <= n; i++) {
                json_t *v;

                lua_rawgeti(L, idx, (lua_Integer)i);
                v = to_json(L, -1, depth + 1, why);
                lua_pop(L, 1);
                if (v == NULL || json_array_append_new(out, v) != 0) {
                    json_decref(out);
                    return NULL;
                }
            }
            return out;
        }
        if ((out = json_object()) == NULL)
            goto oom;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            size_t      klen;
            const char *k = lua_tolstring(L, -2, &klen);
            json_t     *v = to_json(L, -1, depth + 1, why);

            lua_pop(L, 1);
            if (v == NULL || json_object_setn_new(out, k, klen, v) != 0) {
                if (v != NULL && *why == NULL)
                    *why = "an object key is not valid UTF-8";
                lua_pop(L, 1);
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
oom:
    *why = "out of memory";
    return NULL;
}

static int
l_encode(lua_State *L)
{
    struct box *b;
    const char *why = NULL;

    luaL_checkany(L, 1);
    lua_settop(L, 1);
    b = push_box(L);
    if ((b->root = to_json(L, 1, 0, &why)) == NULL)
        return luaL_error(L, "ferry.json.encode: %s", why != NULL ? why : "out of memory");
    if ((b->text = json_dumps(b->root, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)) == NULL)
        return luaL_error(L, "ferry.json.encode: out of memory");
    lua_pushstring(L, b->text);
    return 1;
}

/* ---- decode ------------------------------------------------------------------------------ */

static void
push_json(lua_State *L, json_t *j, int depth)
{
    luaL_checkstack(L, 4, "ferry.json.decode: nesting too deep");
    if (depth > JSON_MAX_DEPTH)
        luaL_error(L, "JSON nested deeper than %d levels", JSON_MAX_DEPTH);
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t     *v;

        lua_createtable(L, 0, (int)json_object_size(j));
        json_object_foreach(j, k, v) {
            push_json(L, v, depth + 1);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t  i;
        json_t *v;

        lua_createtable(L, (int)json_array_size(j), 0);
        json_array_foreach(j, i, v) {
            push_json(L, v, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    default:
        lua_pushlightuserdata(L, (void *)&null_mark);
        break;
    }
}

void
policy_push_json(lua_State *L, json_t *j)
{
    push_json(L, j, 0);
}

static int
l_decode(lua_State *L)
{
    size_t       len;
    const char  *s = luaL_checklstring(L, 1, &len);
    struct box  *b;
    json_error_t err;

    if (len > JSON_MAX_INPUT_BYTES) {
        luaL_pushfail(L);
        lua_pushfstring(L, "input larger than %d bytes", JSON_MAX_INPUT_BYTES);
        return 2;
    }
    b = push_box(L);
    if ((b->root = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err)) == NULL) {
        luaL_pushfail(L);
        lua_pushfstring(L, "line %d column %d: %s", err.line, err.column, err.text);
        return 2;
    }
    push_json(L, b->root, 0);
    return 1;
}

void
policy_open_json(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "encode", l_encode }, { "decode", l_decode }, { NULL, NULL },
    };

    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, box_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, box_close);
    lua_setfield(L, -2, "__gc");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_box);
    luaL_newlib(L, fns);
    lua_pushlightuserdata(L, (void *)&null_mark);
    lua_setfield(L, -2, "null");
}
