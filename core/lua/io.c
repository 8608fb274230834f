/*
 * io.c: the library functions a hook may wait on, and two small helpers.
 *
 *   ferry.http.request{method=, url=, headers=, body=, timeout_ms=, tls_of=}
 *       -> {status=, headers=, body=} or nil, reason
 *       tls_of = "tokenService" | "destination": https with the TLS settings of the
 *       hook's destination (tls/from-dest.h: its trust store and the key store of that
 *       use, e.g. tokenService.KeyStoreLocation for mTLS to a token service); absent:
 *       the system store, no client certificate. A script names a use, never a file.
 *   ferry.tokens.get(key, margin_ms, fetch) -> {type=, value=, expires_in=} or nil, reason
 *       (under `ferry policy test`: a stand-in Bearer token, fetch is never called)
 *   ferry.url.encode(s)   application/x-www-form-urlencoded
 *   ferry.sha256(s)       hex digest
 *
 * A wait starts the I/O (hclient on the worker's loop, or a waiter of the process-wide
 * token cache, auth/tokens.h), yields the coroutine through policy_run_wait() and is
 * resumed from the I/O's callback on the same worker (run.c). What the callback got is
 * copied here (struct http_wait / tok_wait) and pushed by the continuation, inside the
 * coroutine, so an allocation failure there is an error of the hook, not a panic.
 *
 * ferry.tokens.get runs fetch() in the caller's coroutine when the cache says so (single
 * flight: one caller per key in the whole process), reports the outcome with
 * tok_fetched(), and then waits for its own answer like every other waiter. A run that
 * ends while it fetches (error, budget, deadline, its connection gone) reports a
 * failure, so the other waiters are not left hanging. Token values never reach a log.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <lauxlib.h>
#include <openssl/evp.h>

#include "auth/tokens.h"
#include "fetch/client.h"
#include "lua/lua-int.h"
#include "tls/from-dest.h"

#define HTTP_MAX_HEADERS    64
#define HTTP_DEFAULT_MS     10000
#define HTTP_MAX_BODY       (1024 * 1024)

/* ---- waiting is possible? ------------------------------------------------------------- */

static struct policy_run *
waitable(lua_State *co, const char *fn)
{
    struct policy_run *run = policy_vm_of(co)->run;

    if (run == NULL || run->co != co || !run->heap || run->call == NULL ||
        run->call->home == NULL) {
        lua_pushfstring(co, "%s: no I/O here (only hooks of a running gateway may wait)", fn);
        return NULL;
    }
    if (!lua_isyieldable(co)) {
        lua_pushfstring(co, "%s: cannot wait here (inside a metamethod, an iterator or a "
                        "module's top level)", fn);
        return NULL;
    }
    return run;
}

/* ---- ferry.http.request ---------------------------------------------------------------- */

struct http_wait {
    struct policy_run *run;
    struct hclient    *h;
    int                status;
    char              *error;
    char              *body;
    size_t             body_len;
    char              *names[HTTP_MAX_HEADERS], *values[HTTP_MAX_HEADERS];
    size_t             nheaders;
};

static void
http_wait_free(struct http_wait *w)
{
    if (w == NULL)
        return;
    free(w->error);
    free(w->body);
    for (size_t i = 0; i < w->nheaders; i++) {
        free(w->names[i]);
        free(w->values[i]);
    }
    free(w);
}

static void
http_cancel(struct policy_run *run)
{
    struct http_wait *w = run->io;

    run->io = NULL;
    if (w == NULL)
        return;
    hclient_cancel(w->h);
    http_wait_free(w);
}

static void
http_cb(const struct hclient_resp *r, void *arg)
{
    struct http_wait *w = arg;
    bool              oom = false;

    w->h = NULL;
    w->status = r->status;
    if (r->error != NULL || r->status == 0)
        oom |= (w->error = strdup(r->error != NULL ? r->error : "no response")) == NULL;
    if (r->body != NULL) {
        if ((w->body = malloc(r->body_len + 1)) != NULL) {
            memcpy(w->body, r->body, r->body_len);
            w->body[r->body_len] = '\0';
            w->body_len = r->body_len;
        } else {
            oom = true;
        }
    }
    for (size_t i = 0; i < r->nheaders && w->nheaders < HTTP_MAX_HEADERS; i++) {
        char *n = strdup(r->headers[i].name), *v = strdup(r->headers[i].value);

        if (n == NULL || v == NULL) {
            free(n);
            free(v);
            oom = true;
            break;
        }
        w->names[w->nheaders] = n;
        w->values[w->nheaders++] = v;
    }
    if (oom && w->error == NULL)
        w->error = strdup("out of memory");
    policy_run_wake(w->run);
}

/* Protected: the response as Lua values (it may raise out of memory). */
static int
http_push(lua_State *L)
{
    struct http_wait *w = lua_touserdata(L, 1);

    lua_settop(L, 0);
    if (w->error != NULL) {
        lua_pushnil(L);
        lua_pushstring(L, w->error);
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, w->status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, w->body != NULL ? w->body : "", w->body_len);
    lua_setfield(L, -2, "body");
    lua_createtable(L, 0, (int)w->nheaders);
    for (size_t i = 0; i < w->nheaders; i++) {
        /* Lower-case names: one spelling to index by (repeated fields: the last). */
        for (char *p = w->names[i]; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        lua_pushstring(L, w->values[i]);
        lua_setfield(L, -2, w->names[i]);
    }
    lua_setfield(L, -2, "headers");
    return 1;
}

static int
http_k(lua_State *co, int status, lua_KContext ctx)
{
    struct http_wait *w = (struct http_wait *)ctx;
    struct policy_run *run = policy_vm_of(co)->run;
    int               rc;

    (void)status;
    run->io = NULL;
    lua_settop(co, 0);
    lua_pushcfunction(co, http_push);
    lua_pushlightuserdata(co, w);
    rc = lua_pcall(co, 1, LUA_MULTRET, 0);
    http_wait_free(w);
    if (rc != LUA_OK)
        return lua_error(co);
    return lua_gettop(co);
}

static const char *
opt_field(lua_State *L, const char *k, size_t *len)
{
    const char *s;

    lua_getfield(L, 1, k);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if ((s = lua_tolstring(L, -1, len)) == NULL || lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "ferry.http.request: %s must be a string", k);
    return s;                   /* stays on the stack (anchored) until the call returns */
}

static int
l_http_request(lua_State *co)
{
    struct hclient_header hs[HTTP_MAX_HEADERS];
    struct hclient_req    rq = { 0 };
    struct policy_run    *run;
    struct http_wait     *w;
    const char           *why;
    lua_Integer           ms = HTTP_DEFAULT_MS;
    size_t                n = 0;
    const char           *tls_of;
    int                   use = -1;

    luaL_checktype(co, 1, LUA_TTABLE);
    lua_settop(co, 1);
    rq.method = opt_field(co, "method", NULL);
    rq.url = opt_field(co, "url", NULL);
    rq.body = opt_field(co, "body", &rq.body_len);
    if (rq.url == NULL)
        return luaL_error(co, "ferry.http.request: url is required");
    if ((tls_of = opt_field(co, "tls_of", NULL)) != NULL) {
        if (strcmp(tls_of, "tokenService") == 0)
            use = FERRY_TLS_TOKEN_SERVICE;
        else if (strcmp(tls_of, "destination") == 0)
            use = FERRY_TLS_TARGET;
        else
            return luaL_error(co, "ferry.http.request: tls_of must be \"tokenService\" or "
                              "\"destination\"");
    }
    if (rq.method == NULL)
        rq.method = rq.body != NULL ? "POST" : "GET";
    if (lua_getfield(co, 1, "timeout_ms") != LUA_TNIL) {
        if (!lua_isinteger(co, -1))
            return luaL_error(co, "ferry.http.request: timeout_ms must be an integer");
        ms = lua_tointeger(co, -1);
        if (ms < 1 || ms > POLICY_WAIT_MS)
            return luaL_error(co, "ferry.http.request: timeout_ms must be 1-%d",
                              POLICY_WAIT_MS);
    }
    lua_pop(co, 1);
    if (lua_getfield(co, 1, "headers") == LUA_TTABLE) {
        int t = lua_gettop(co);

        lua_pushnil(co);
        while (lua_next(co, t) != 0) {
            if (lua_type(co, -2) != LUA_TSTRING || lua_type(co, -1) != LUA_TSTRING)
                return luaL_error(co, "ferry.http.request: headers are name = string");
            if (n == HTTP_MAX_HEADERS)
                return luaL_error(co, "ferry.http.request: more than %d headers",
                                  HTTP_MAX_HEADERS);
            hs[n].name = lua_tostring(co, -2);
            hs[n++].value = lua_tostring(co, -1);
            lua_pop(co, 1);         /* the table keeps both strings alive */
        }
    } else if (!lua_isnil(co, -1)) {
        return luaL_error(co, "ferry.http.request: headers must be a table");
    }
    rq.headers = hs;
    rq.nheaders = n;
    rq.timeout_ms = (uint32_t)ms;
    rq.max_body = HTTP_MAX_BODY;
    if ((run = waitable(co, "ferry.http.request")) == NULL) {
        lua_pushnil(co);
        lua_insert(co, -2);
        return 2;
    }
    rq.tls_cache = run->call->home->tls;    /* the default settings: the system store */
    rq.home = &run->call->home->post;
    if (use >= 0) {
        if (run->call->dest == NULL) {
            lua_pushnil(co);
            lua_pushstring(co, "ferry.http.request: tls_of needs a hook of a destination");
            return 2;
        }
        /* Borrowed from the destination, which the call holds; the cache copies what it
         * keeps before hclient_request returns. */
        ferry_tls_settings_from_dest(run->call->dest, (enum ferry_tls_use)use, &rq.tls);
    }
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return luaL_error(co, "ferry.http.request: out of memory");
    w->run = run;
    if ((w->h = hclient_request(run->call->home->base, run->call->home->dns, &rq, http_cb, w,
                                &why)) == NULL) {
        free(w);
        lua_pushnil(co);
        lua_pushstring(co, why != NULL ? why : "cannot start the request");
        return 2;
    }
    return policy_run_wait(co, run, http_k, http_cancel, w);
}

/* ---- ferry.tokens.get -------------------------------------------------------------------- */

struct tok_wait {
    struct policy_run *run;
    char              *key;          /* owns */
    struct tok_waiter *w;            /* while waiting for the cache's answer */
    bool               fetching;     /* this run must report on key */
    struct tok_result  r;            /* the answer (a copy), or the hit being refreshed */
};

static char *
dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* Run ended or went away: leave the cache as if this run had never asked. */
static void
tok_wait_end(struct tok_wait *tw, const char *why)
{
    if (tw == NULL)
        return;
    if (tw->w != NULL)
        tok_cancel(tw->w);
    if (tw->fetching) {
        struct tok_result f = { .status = FERRY_EIO, .error = (char *)why };

        tok_fetched(tw->key, &f);
    }
    tok_result_free(&tw->r);
    free(tw->key);
    free(tw);
}

static void
tok_answer(const struct tok_result *r, void *arg)
{
    struct tok_wait *tw = arg;

    tw->w = NULL;                   /* the handle is gone after this call */
    tok_result_free(&tw->r);
    tw->r.status = r->status;
    tw->r.http_status = r->http_status;
    tw->r.expires_in = r->expires_in;
    tw->r.type = dup_or_null(r->type);
    tw->r.value = dup_or_null(r->value);
    tw->r.error = dup_or_null(r->error);
    if ((r->value != NULL && tw->r.value == NULL) || (r->type != NULL && tw->r.type == NULL)) {
        tok_result_free(&tw->r);
        tw->r.status = FERRY_ENOMEM;
        tw->r.error = NULL;
    }
    policy_run_wake(tw->run);
}

/* Push r as the result of ferry.tokens.get: a token table, or nil and why. */
static int
push_result(lua_State *co, const struct tok_result *r)
{
    if (r->status != FERRY_OK || r->value == NULL) {
        lua_pushnil(co);
        lua_pushstring(co, r->error != NULL ? r->error : ferry_strerror(r->status));
        return 2;
    }
    lua_createtable(co, 0, 3);
    lua_pushstring(co, r->type != NULL ? r->type : "Bearer");
    lua_setfield(co, -2, "type");
    lua_pushstring(co, r->value);
    lua_setfield(co, -2, "value");
    lua_pushinteger(co, r->expires_in);
    lua_setfield(co, -2, "expires_in");
    return 1;
}

/* Protected half of the continuation: pushing may raise. */
static int
tok_push(lua_State *L)
{
    return push_result(L, lua_touserdata(L, 1));
}

static int
tok_finish(lua_State *co, struct policy_run *run, struct tok_wait *tw)
{
    int rc, nres;

    lua_settop(co, 0);
    lua_pushcfunction(co, tok_push);
    lua_pushlightuserdata(co, &tw->r);
    rc = lua_pcall(co, 1, LUA_MULTRET, 0);
    nres = lua_gettop(co);
    run->tok = NULL;
    tok_wait_end(tw, NULL);
    if (rc != LUA_OK)
        return lua_error(co);
    return nres;
}

/* Our own answer arrived (after someone's fetch, maybe ours). */
static int
tok_k(lua_State *co, int status, lua_KContext ctx)
{
    struct policy_run *run = policy_vm_of(co)->run;

    (void)status;
    (void)ctx;
    return tok_finish(co, run, run->tok);
}

static void
tok_cancel_wait(struct policy_run *run)
{
    (void)run;                      /* run->tok is ended by policy_io_end() */
}

/* fetch() returned (or raised): stack [key margin fetch | results...]. */
static int
fetch_k(lua_State *co, int status, lua_KContext ctx)
{
    struct tok_wait   *tw;
    struct policy_run *run = policy_vm_of(co)->run;
    struct tok_result  f = { 0 };

    (void)ctx;
    tw = run->tok;
    char               why[300];

    if (status != LUA_OK && status != LUA_YIELD) {
        const char *msg = lua_tostring(co, -1);

        snprintf(why, sizeof(why), "fetch failed: %s", msg != NULL ? msg : "(no message)");
        policy_scrub(run->call->dest, why, sizeof(why));
        f.status = FERRY_EIO;
        f.error = why;
    } else if (lua_istable(co, 4)) {
        lua_getfield(co, 4, "value");
        lua_getfield(co, 4, "type");
        lua_getfield(co, 4, "expires_in");
        f.status = FERRY_OK;
        f.value = (char *)lua_tostring(co, -3);
        f.type = (char *)lua_tostring(co, -2);
        f.expires_in = lua_isinteger(co, -1) || lua_isnumber(co, -1) ?
                       (uint32_t)(lua_tonumber(co, -1) > 0 ? lua_tonumber(co, -1) : 0) : 0;
        if (f.value == NULL || f.value[0] == '\0') {
            f.status = FERRY_EPROTO;
            f.value = NULL;
            f.error = "fetch returned a token without a value";
        }
    } else {
        const char *msg = lua_tostring(co, 5);

        snprintf(why, sizeof(why), "%s", msg != NULL ? msg : "token retrieval failed");
        policy_scrub(run->call->dest, why, sizeof(why));
        f.status = FERRY_EIO;
        f.error = why;
        f.http_status = (int)lua_tointeger(co, 6);
    }
    tw->fetching = false;
    tok_fetched(tw->key, &f);
    if (tw->w != NULL)              /* the answer comes to us like to every waiter */
        return policy_run_wait(co, run, tok_k, tok_cancel_wait, NULL);
    /* A refresh ahead of expiry: the new token, else the one we had. */
    if (f.status == FERRY_OK) {
        tok_result_free(&tw->r);
        tw->r.status = FERRY_OK;
        tw->r.type = dup_or_null(f.type);
        tw->r.value = dup_or_null(f.value);
        tw->r.expires_in = f.expires_in;
        if (tw->r.value == NULL)
            tw->r.status = FERRY_ENOMEM;
    }
    return tok_finish(co, run, tw);
}

static int
l_tokens_get(lua_State *co)
{
    const char        *key = luaL_checkstring(co, 1);
    lua_Integer        margin = luaL_checkinteger(co, 2);
    struct policy_run *run;
    struct tok_wait   *tw;
    struct tok_home    home;
    bool               fetch;
    int                rc;

    luaL_checktype(co, 3, LUA_TFUNCTION);
    luaL_argcheck(co, margin >= 0 && margin <= 24 * 3600 * 1000, 2, "0 to 1 day in ms");
    lua_settop(co, 3);
    run = policy_vm_of(co)->run;
    if (run != NULL && run->co == co && run->call != NULL && run->call->offline_token != NULL) {
        struct tok_result stand_in = { .status = FERRY_OK, .type = (char *)"Bearer",
                                       .value = (char *)run->call->offline_token };

        return push_result(co, &stand_in);      /* `ferry policy test`: fetch nothing */
    }
    if ((run = waitable(co, "ferry.tokens.get")) == NULL) {
        lua_pushnil(co);
        lua_insert(co, -2);
        return 2;
    }
    if (run->tok != NULL)
        return luaL_error(co, "ferry.tokens.get: already inside ferry.tokens.get");
    if ((tw = calloc(1, sizeof(*tw))) == NULL || (tw->key = strdup(key)) == NULL) {
        free(tw);
        return luaL_error(co, "ferry.tokens.get: out of memory");
    }
    tw->run = run;
    home.post = run->call->home->post.post; /* the answer comes back to this thread */
    home.ctx = run->call->home->post.ctx;
    rc = tok_get(key, (uint32_t)margin, &home, tok_answer, tw, &tw->r, &tw->w, &fetch);
    if (rc < 0) {
        tok_wait_end(tw, NULL);
        lua_pushnil(co);
        lua_pushliteral(co, "token cache: out of memory");
        return 2;
    }
    run->tok = tw;
    tw->fetching = fetch;
    if (fetch) {
        lua_pushvalue(co, 3);
        return fetch_k(co, lua_pcallk(co, 0, 3, 0, (lua_KContext)tw, fetch_k),
                       (lua_KContext)tw);
    }
    if (rc == TOK_WAIT)
        return policy_run_wait(co, run, tok_k, tok_cancel_wait, NULL);
    return tok_finish(co, run, tw);
}

void
policy_io_end(struct policy_run *run)
{
    if (run->waiting && run->cancel != NULL)
        run->cancel(run);
    run->cancel = NULL;
    run->io = NULL;
    tok_wait_end(run->tok, "the request that fetched the token went away");
    run->tok = NULL;
}

/* ---- ferry.url.encode, ferry.sha256 ------------------------------------------------------ */

static int
l_url_encode(lua_State *L)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t            len;
    const char       *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer       b;

    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '*') {
            luaL_addchar(&b, (char)c);
        } else if (c == ' ') {
            luaL_addchar(&b, '+');
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hex[c >> 4]);
            luaL_addchar(&b, hex[c & 15]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

static int
l_sha256(lua_State *L)
{
    static const char hex[] = "0123456789abcdef";
    size_t            len;
    const char       *s = luaL_checklstring(L, 1, &len);
    unsigned char     md[EVP_MAX_MD_SIZE];
    unsigned int      mdlen = 0;
    char              out[2 * EVP_MAX_MD_SIZE];

    if (EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return luaL_error(L, "ferry.sha256: digest failed");
    for (unsigned i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    lua_pushlstring(L, out, 2 * (size_t)mdlen);
    return 1;
}

void
policy_open_io(lua_State *L)
{
    static const luaL_Reg http[] = { { "request", l_http_request }, { NULL, NULL } };
    static const luaL_Reg tokens[] = { { "get", l_tokens_get }, { NULL, NULL } };
    static const luaL_Reg url[] = { { "encode", l_url_encode }, { NULL, NULL } };

    luaL_newlib(L, http);
    lua_setfield(L, -2, "http");
    luaL_newlib(L, tokens);
    lua_setfield(L, -2, "tokens");
    luaL_newlib(L, url);
    lua_setfield(L, -2, "url");
    lua_pushcfunction(L, l_sha256);
    lua_setfield(L, -2, "sha256");
}
