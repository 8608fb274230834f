/*
 * objects.c: what a hook is handed.
 *
 *   req / res   a userdata over the plugin's struct ferry_policy_http: reads come from
 *               it, writes are checked and stored back into it (strings malloc'ed and
 *               marked owned; ferry_policy_http_free() releases them)
 *   .headers    a case-insensitive view of the same struct's fields; assigning nil
 *               removes every field of that name, a string replaces them by one, a
 *               list of strings by several
 *   dest        a read-only userdata over the destination's properties (by SAP name)
 *   conn, op    plain tables (on_connect, on_ldap)
 *
 * A req or headers object is only valid during its call: it carries the call's serial,
 * and any use afterwards (a script keeping it in a global) raises instead of reaching
 * a struct the plugin has moved on from.
 *
 * Framing and hop-by-hop fields cannot be set: the plugin keeps the body framing it
 * parsed, so a policy could otherwise make the upstream read the body differently
 * from ferry (request smuggling).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "auth/user.h"
#include "lua/lua-int.h"

#define NAME_MAX_BYTES   256
#define VALUE_MAX_BYTES  8192
#define TARGET_MAX_BYTES 8192

static const char key_http;
static const char key_headers;
static const char key_dest;

struct http_ud {
    struct policy_vm *vm;
    uint64_t          serial;
    bool              response;
};

/* ---- validity ---------------------------------------------------------------------------- */

/* The struct behind a req/res/headers object, or a raise when its call is over. The
 * metamethods are reachable only through their own type's metatable (hidden by
 * __metatable), so idx holds that type: checking it would cost more than the rest. */
static struct ferry_policy_http *
live(lua_State *L, int idx, struct http_ud **out)
{
    struct http_ud *u = lua_touserdata(L, idx);

    if (u == NULL)
        luaL_error(L, "not a ferry request, response or headers object");
    if (u->vm->run == NULL || u->vm->run->serial != u->serial || u->vm->run->call == NULL ||
        u->vm->run->call->http == NULL)
        luaL_error(L, "this %s belongs to a finished call", u->response ? "response" : "request");
    *out = u;
    return u->vm->run->call->http;
}

/* ---- checks -------------------------------------------------------------------------------- */

/* RFC 9110 tchar: ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~ */
static const uint8_t tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

static bool
is_token(const char *s, size_t len)
{
    uint8_t all = len > 0;

    for (size_t i = 0; i < len; i++)
        all &= tchar[(unsigned char)s[i]];
    return all != 0;
}

/* Same field name? The first byte rules most fields out before strcasecmp. */
static bool
same_name(const char *a, const char *b)
{
    return ((unsigned char)a[0] | 0x20) == ((unsigned char)b[0] | 0x20) && strcasecmp(a, b) == 0;
}

static bool
is_field_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* A request target part: visible ASCII (and UTF-8 bytes), no space, no '#'. */
static bool
is_target_part(const char *s, size_t len, bool query)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= 0x20 || c == 0x7f || c == '#' || (!query && c == '?'))
            return false;
    }
    return true;
}

/* Fields the plugin owns: body framing and connection management. */
static bool
is_managed(const char *name, size_t len, bool response)
{
#define IS(lit) (strcasecmp(name, lit) == 0)
    switch (len) {
    case 2:  return IS("te");
    case 4:  return !response && IS("host");
    case 7:  return IS("trailer") || IS("upgrade");
    case 10: return IS("connection") || IS("keep-alive");
    case 12: return IS("x-request-id");
    case 14: return IS("content-length");
    case 16: return IS("proxy-connection");
    case 17: return IS("transfer-encoding");
    default: return false;
    }
#undef IS
}

/* ---- strings owned by the struct ------------------------------------------------------------ */

static char *
dup_or_raise(lua_State *L, const char *s, size_t len)
{
    char *p = malloc(len + 1);

    if (p == NULL)
        luaL_error(L, "out of memory");
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static void
set_part(lua_State *L, struct ferry_policy_http *h, const char **field, uint32_t bit,
         const char *s, size_t len)
{
    char *p = dup_or_raise(L, s, len);

    if (h->owned & bit)
        free((char *)*field);
    *field = p;
    h->owned |= bit;
}

/* An owned field is one allocation: "name\0value\0", f->name its start (policy.c frees
 * only that). */
static void
field_clear(struct ferry_policy_header *f)
{
    if (f->owned)
        free((char *)f->name);
    f->name = NULL;
    f->value = NULL;
    f->owned = false;
}

/* ---- headers ------------------------------------------------------------------------------- */

static int
headers_index(lua_State *L)
{
    struct http_ud           *u;
    struct ferry_policy_http *h = live(L, 1, &u);
    const char               *name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    const char               *first = NULL;
    luaL_Buffer               b;
    unsigned                  n = 0;

    for (size_t i = 0; name != NULL && i < h->nheaders; i++) {
        if (h->headers[i].name != NULL && same_name(h->headers[i].name, name)) {
            if (n++ == 0)
                first = h->headers[i].value;
        }
    }
    if (n <= 1) {
        lua_pushstring(L, first);          /* nil when absent */
        return 1;
    }
    /* Several fields of one name read as one, joined the way HTTP allows (RFC 9110 5.3). */
    luaL_buffinit(L, &b);
    for (size_t i = 0, k = 0; i < h->nheaders; i++) {
        if (h->headers[i].name != NULL && same_name(h->headers[i].name, name)) {
            if (k++ > 0)
                luaL_addstring(&b, ", ");
            luaL_addstring(&b, h->headers[i].value);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

/* Check value (idx) for field name: a string, a number, or a list of those. */
static size_t
check_values(lua_State *L, int idx, const char *name)
{
    size_t len, n;

    if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
        const char *v = lua_tolstring(L, idx, &len);

        if (len > VALUE_MAX_BYTES || !is_field_value(v, len) || strlen(v) != len)
            luaL_error(L, "header '%s': the value has a line break or control character, "
                       "or is longer than %d bytes", name, VALUE_MAX_BYTES);
        return 1;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "header '%s': want a string, a list of strings or nil, not %s", name,
                   luaL_typename(L, idx));
    n = (size_t)lua_rawlen(L, idx);
    for (size_t i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, idx, (lua_Integer)i);

        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            luaL_error(L, "header '%s': item %d of the list is %s, not a string", name, (int)i,
                       lua_typename(L, t));
        lua_replace(L, idx + 1);        /* scratch slot: keep the stack flat */
        check_values(L, idx + 1, name);
    }
    return n;
}

/* Append name: value into a free slot (the end, else a removed field's). */
static void
add_field(lua_State *L, struct ferry_policy_http *h, const char *name, size_t nlen,
          const char *v, size_t vlen)
{
    struct ferry_policy_header *f = NULL;
    char                       *n, *val;

    if (h->nheaders < h->headers_cap) {
        f = &h->headers[h->nheaders];
    } else {
        for (size_t i = 0; i < h->nheaders && f == NULL; i++)
            if (h->headers[i].name == NULL)
                f = &h->headers[i];
    }
    if (f == NULL)
        luaL_error(L, "header '%s': too many header fields (at most %d)", name,
                   (int)h->headers_cap);
    if ((n = malloc(nlen + vlen + 2)) == NULL)
        luaL_error(L, "out of memory");
    memcpy(n, name, nlen);
    n[nlen] = '\0';
    val = n + nlen + 1;
    memcpy(val, v, vlen);
    val[vlen] = '\0';
    if (f == &h->headers[h->nheaders])
        h->nheaders++;
    f->name = n;
    f->value = val;
    f->owned = true;
}

static int
headers_newindex(lua_State *L)
{
    struct http_ud           *u;
    struct ferry_policy_http *h = live(L, 1, &u);
    size_t                    nlen, count = 0;
    const char               *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &nlen)
                                                                    : NULL;

    if (name == NULL || nlen > NAME_MAX_BYTES || !is_token(name, nlen))
        return luaL_error(L, "a header name must be a token (letters, digits, !#$%%&'*+-.^_`|~)");
    if (is_managed(name, nlen, u->response))
        return luaL_error(L, "header '%s' is managed by ferry and cannot be set", name);
    lua_settop(L, 3);
    lua_pushnil(L);                     /* scratch slot for check_values */
    if (!lua_isnil(L, 3))
        count = check_values(L, 3, name);
    /* Checked: now nothing below raises before the struct is consistent again, except
     * an allocation failure, which leaves fields removed (the call fails anyway). */
    for (size_t i = 0; i < h->nheaders; i++)
        if (h->headers[i].name != NULL && same_name(h->headers[i].name, name))
            field_clear(&h->headers[i]);
    if (lua_isnil(L, 3))
        return 0;
    if (lua_type(L, 3) != LUA_TTABLE) {
        size_t      vlen;
        const char *v = lua_tolstring(L, 3, &vlen);

        add_field(L, h, name, nlen, v, vlen);
        return 0;
    }
    for (size_t i = 1; i <= count; i++) {
        size_t      vlen;
        const char *v;

        lua_rawgeti(L, 3, (lua_Integer)i);
        v = lua_tolstring(L, -1, &vlen);
        add_field(L, h, name, nlen, v, vlen);
        lua_pop(L, 1);
    }
    return 0;
}

/* for name, value in pairs(req.headers): every field in order, repeated names too. */
static int
headers_next(lua_State *L)
{
    struct http_ud           *u;
    struct ferry_policy_http *h = live(L, lua_upvalueindex(1), &u);
    lua_Integer               i = lua_tointeger(L, lua_upvalueindex(2));

    while ((size_t)i < h->nheaders && h->headers[i].name == NULL)
        i++;
    if ((size_t)i >= h->nheaders)
        return 0;
    lua_pushinteger(L, i + 1);
    lua_replace(L, lua_upvalueindex(2));
    lua_pushstring(L, h->headers[i].name);
    lua_pushstring(L, h->headers[i].value);
    return 2;
}

static int
headers_pairs(lua_State *L)
{
    struct http_ud *u;

    live(L, 1, &u);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, headers_next, 2);
    return 1;
}

/* ---- req / res ----------------------------------------------------------------------------- */

static void
push_headers(lua_State *L, int req)
{
    struct http_ud *u = lua_touserdata(L, req), *hu;

    if (lua_getiuservalue(L, req, 1) == LUA_TUSERDATA)
        return;
    lua_pop(L, 1);
    hu = lua_newuserdatauv(L, sizeof(*hu), 0);
    *hu = *u;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_headers);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, req, 1);
}

/* req.user: the validated claims as a table (a copy, built once per call: a policy
 * may change it, the claims stay what the token said), nil without a user. */
static void
push_user(lua_State *L, int req, const struct ferry_user *user)
{
    if (user == NULL) {
        lua_pushnil(L);
        return;
    }
    if (lua_getiuservalue(L, req, 2) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    policy_push_json(L, ferry_user_claims(user));
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, req, 2);
}

static int
http_index(lua_State *L)
{
    struct http_ud           *u;
    struct ferry_policy_http *h = live(L, 1, &u);
    const char               *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";

    if (k[0] == 'h' && strcmp(k, "headers") == 0)
        push_headers(L, 1);
    else if (u->response && strcmp(k, "status") == 0)
        lua_pushinteger(L, h->status);
    else if (!u->response && strcmp(k, "method") == 0)
        lua_pushstring(L, h->method);
    else if (!u->response && strcmp(k, "path") == 0)
        lua_pushstring(L, h->path);
    else if (!u->response && strcmp(k, "query") == 0)
        lua_pushstring(L, h->query != NULL ? h->query : "");
    else if (!u->response && strcmp(k, "client") == 0)
        lua_pushstring(L, h->client);
    else if (!u->response && strcmp(k, "tenant") == 0)
        lua_pushstring(L, h->tenant);
    else if (!u->response && strcmp(k, "user") == 0)
        push_user(L, 1, u->vm->run->call->user);
    else
        lua_pushnil(L);
    return 1;
}

static void
set_method(lua_State *L, struct ferry_policy_http *h, const char *v, size_t len)
{
    if (len > 32 || !is_token(v, len))
        luaL_error(L, "req.method must be a token of at most 32 characters");
    /* Framing of the answer depends on these two: HEAD has no body, CONNECT is a tunnel. */
    if (strcmp(v, "CONNECT") == 0 || (strcmp(v, "HEAD") == 0) != (strcmp(h->method, "HEAD") == 0))
        luaL_error(L, "req.method: a policy cannot turn a request into or out of %s",
                   strcmp(v, "CONNECT") == 0 ? "CONNECT" : "HEAD");
    set_part(L, h, &h->method, FERRY_POLICY_OWN_METHOD, v, len);
}

static void
set_status(lua_State *L, struct ferry_policy_http *h)
{
    lua_Integer s;
    int         ok;

    s = lua_tointegerx(L, 3, &ok);
    if (!ok || s < 200 || s > 599 || s == 204 || s == 304)
        luaL_error(L, "res.status must be an integer 200-599 other than 204 and 304");
    /* Whether a body follows depends on the status: never change those that have none. */
    if (h->status < 200 || h->status == 204 || h->status == 304)
        luaL_error(L, "res.status: a %d response cannot change its status", h->status);
    h->status = (int)s;
}

static int
http_newindex(lua_State *L)
{
    struct http_ud           *u;
    struct ferry_policy_http *h = live(L, 1, &u);
    const char               *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    size_t                    len = 0;
    const char               *v = lua_type(L, 3) == LUA_TSTRING ? lua_tolstring(L, 3, &len)
                                                                 : NULL;

    if (u->response) {
        if (strcmp(k, "status") != 0)
            return luaL_error(L, "res.%s cannot be set (status and headers can)", k);
        set_status(L, h);
        return 0;
    }
    if (strcmp(k, "method") != 0 && strcmp(k, "path") != 0 && strcmp(k, "query") != 0)
        return luaL_error(L, "req.%s cannot be set (method, path, query and headers can)", k);
    if (v == NULL)
        return luaL_error(L, "req.%s must be a string", k);
    if (strcmp(k, "method") == 0) {
        set_method(L, h, v, len);
    } else if (strcmp(k, "path") == 0) {
        if (len == 0 || v[0] != '/' || len > TARGET_MAX_BYTES || !is_target_part(v, len, false))
            return luaL_error(L, "req.path must start with '/' and have no space, '?' or '#'");
        set_part(L, h, &h->path, FERRY_POLICY_OWN_PATH, v, len);
    } else {
        if (len > 0 && v[0] == '?') {
            v++;
            len--;
        }
        if (len > TARGET_MAX_BYTES || !is_target_part(v, len, true))
            return luaL_error(L, "req.query must have no space or '#'");
        set_part(L, h, &h->query, FERRY_POLICY_OWN_QUERY, v, len);
    }
    return 0;
}

static int
http_tostring(lua_State *L)
{
    struct http_ud *u = lua_touserdata(L, 1);

    lua_pushstring(L, u != NULL && u->response ? "ferry response" : "ferry request");
    return 1;
}

/* ---- dest ---------------------------------------------------------------------------------- */

static const struct ferry_dest *
dest_of(lua_State *L, int idx)
{
    const struct ferry_dest **d = lua_touserdata(L, idx);     /* as in live() */

    if (d == NULL)
        luaL_error(L, "not a destination");
    return *d;
}

static int
dest_index(lua_State *L)
{
    const struct ferry_dest *d = dest_of(L, 1);
    const char              *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;

    lua_pushstring(L, k != NULL ? ferry_dest_prop(d, k) : NULL);
    return 1;
}

static int
dest_newindex(lua_State *L)
{
    dest_of(L, 1);
    return luaL_error(L, "dest is read-only");
}

static int
dest_next(lua_State *L)
{
    const struct ferry_dest *d = dest_of(L, lua_upvalueindex(1));
    lua_Integer              i = lua_tointeger(L, lua_upvalueindex(2));
    const char              *k, *v;

    if (i < 0 || (size_t)i >= ferry_dest_nprops(d))
        return 0;
    ferry_dest_prop_at(d, (size_t)i, &k, &v);
    lua_pushinteger(L, i + 1);
    lua_replace(L, lua_upvalueindex(2));
    lua_pushstring(L, k);
    lua_pushstring(L, v);
    return 2;
}

static int
dest_pairs(lua_State *L)
{
    dest_of(L, 1);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, dest_next, 2);
    return 1;
}

static int
dest_tostring(lua_State *L)
{
    lua_pushfstring(L, "destination %s", ferry_dest_name(dest_of(L, 1)));
    return 1;
}

void
policy_push_dest(lua_State *L, struct policy_vm *vm, const struct ferry_dest *d)
{
    size_t i;
    int   *ref;

    if (!policy_dest_index(vm->set, d, &i)) {
        lua_pushnil(L);
        return;
    }
    ref = &vm->dest_ref[i];
    if (*ref == LUA_NOREF) {
        *(const struct ferry_dest **)lua_newuserdatauv(L, sizeof(d), 0) = d;
        lua_rawgetp(L, LUA_REGISTRYINDEX, &key_dest);
        lua_setmetatable(L, -2);
        *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, *ref);
}

/* ---- arguments ------------------------------------------------------------------------------ */

void
policy_push_arg(lua_State *L, struct policy_run *run)
{
    const struct policy_call *c = run->call;
    struct http_ud           *u;

    switch (c->hook) {
    case POLICY_ON_REQUEST:
    case POLICY_ON_RESPONSE:
        u = lua_newuserdatauv(L, sizeof(*u), 2);     /* headers, user */
        u->vm = run->vm;
        u->serial = run->serial;
        u->response = c->hook == POLICY_ON_RESPONSE;
        lua_rawgetp(L, LUA_REGISTRYINDEX, &key_http);
        lua_setmetatable(L, -2);
        break;
    case POLICY_ON_CONNECT:
        lua_createtable(L, 0, 3);
        lua_pushstring(L, c->client);
        lua_setfield(L, -2, "client");
        lua_pushstring(L, c->tenant);
        lua_setfield(L, -2, "tenant");
        lua_pushstring(L, c->target);
        lua_setfield(L, -2, "target");
        break;
    default:
        lua_createtable(L, 0, 2);
        lua_pushstring(L, c->op_type);
        lua_setfield(L, -2, "type");
        lua_pushstring(L, c->dn != NULL ? c->dn : "");
        lua_setfield(L, -2, "dn");
        break;
    }
}

static void
new_meta(lua_State *L, const char *key, const char *name, const luaL_Reg *fns)
{
    lua_createtable(L, 0, 6);
    luaL_setfuncs(L, fns, 0);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void
policy_open_objects(lua_State *L)
{
    static const luaL_Reg http[] = {
        { "__index", http_index }, { "__newindex", http_newindex },
        { "__tostring", http_tostring }, { NULL, NULL },
    };
    static const luaL_Reg headers[] = {
        { "__index", headers_index }, { "__newindex", headers_newindex },
        { "__pairs", headers_pairs }, { NULL, NULL },
    };
    static const luaL_Reg dest[] = {
        { "__index", dest_index }, { "__newindex", dest_newindex }, { "__pairs", dest_pairs },
        { "__tostring", dest_tostring }, { NULL, NULL },
    };

    new_meta(L, &key_http, "ferry.http", http);
    new_meta(L, &key_headers, "ferry.headers", headers);
    new_meta(L, &key_dest, "ferry.dest", dest);
}

/* Strings objects.c allocated for a hook's changes are marked owned; give them back. */
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
