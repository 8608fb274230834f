/*
 * policy_test.c: the Lua policy engine (core/lua): loading and its errors, hooks and
 * what they may change, the sandbox (escapes must fail without effect), the budget and
 * the memory cap (a failing call leaves the state usable), reload fallback.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "auth/user.h"
#include "core/conf/conf-test.h"
#include "cu.h"
#include "dest/dest-int.h"
#include "lua/lua-int.h"

/* ---- fixture: one HTTP destination `api` with the script under test ---------------------- */

struct fx {
    char                    *dir;
    struct ferry_conf       *conf;
    struct ferry_policy_set *set;           /* the conf's policies */
    struct ferry_errlist     errs;
    struct policy_vm        *vm;
    const struct ferry_dest *d;
};

static struct fx F;

static void
fx_free(void)
{
    ferry_policy_vm_free(F.vm);
    ferry_policy_set_free(F.set);
    ferry_conf_free(F.conf);
    tmpdir_free(F.dir);
    memset(&F, 0, sizeof(F));
}

/* Load `script` as p.lua (extra: more destination properties). FERRY_OK or the error. */
static int
fx_load_with(const char *script, const char *extra)
{
    char yaml[2048];
    int  rc;

    fx_free();
    F.dir = tmpdir_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(F.dir);
    CU_ASSERT_FATAL(file_write(F.dir, "p.lua", script));
    snprintf(yaml, sizeof(yaml),
             "destinations:\n"
             "  - Name: api\n    Type: HTTP\n    URL: http://127.0.0.1:1/base\n"
             "    policy: %s/p.lua\n%s", F.dir, extra != NULL ? extra : "");
    CU_ASSERT_EQUAL_FATAL(conf_test_load(yaml, &F.conf, &F.errs), FERRY_OK);
    F.d = ferry_registry_find(F.conf->registry, "api");
    rc = ferry_policy_load(F.conf, NULL, &F.set, &F.errs);
    errs_dump(&F.errs);
    if (rc == FERRY_OK)
        F.vm = ferry_policy_vm_new(F.set);
    return rc;
}

static int
fx_load(const char *script)
{
    return fx_load_with(script, NULL);
}

/* stderr (where ferry_log writes) into a string. */
static int cap_saved = -1;
static char cap_path[64];

static void
capture_begin(void)
{
    int fd;

    snprintf(cap_path, sizeof(cap_path), "/tmp/ferry-policy-test-XXXXXX");
    fd = mkstemp(cap_path);
    fflush(stderr);
    cap_saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

static char *
capture_end(void)
{
    static char buf[16384];
    FILE       *fp;
    size_t      n = 0;

    fflush(stderr);
    dup2(cap_saved, 2);
    close(cap_saved);
    if ((fp = fopen(cap_path, "r")) != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
    }
    buf[n] = '\0';
    unlink(cap_path);
    return buf;
}

/* A request the way the http plugin describes one. */
struct req {
    struct ferry_policy_header h[16];
    struct ferry_policy_http   http;
};

static void
req_init(struct req *r)
{
    memset(r, 0, sizeof(*r));
    r->h[0] = (struct ferry_policy_header){ "Host", "api", false };
    r->h[1] = (struct ferry_policy_header){ "User-Agent", "curl/8", false };
    r->h[2] = (struct ferry_policy_header){ "Accept", "a/b", false };
    r->h[3] = (struct ferry_policy_header){ "accept", "c/d", false };
    r->http.method = "GET";
    r->http.path = "/orders/7";
    r->http.query = "x=1";
    r->http.client = "10.1.2.3:5555";
    r->http.tenant = "acme";
    r->http.headers = r->h;
    r->http.nheaders = 4;
    r->http.headers_cap = 16;
}

static int
call_hook(enum policy_hook hook, struct req *r, struct ferry_policy_verdict *v)
{
    struct policy_call c = { .hook = hook, .dest = F.d, .http = r != NULL ? &r->http : NULL,
                             .client = "10.1.2.3:5555", .tenant = "acme",
                             .target = "db.internal:5432", .op_type = "modify",
                             .dn = "cn=x,dc=example" };

    return ferry_policy_vm_call(F.vm, &c, v);
}

static int
request(struct req *r, struct ferry_policy_verdict *v)
{
    return call_hook(POLICY_ON_REQUEST, r, v);
}

static const char *
field(const struct req *r, const char *name)
{
    for (size_t i = 0; i < r->http.nheaders; i++)
        if (r->h[i].name != NULL && strcasecmp(r->h[i].name, name) == 0)
            return r->h[i].value;
    return NULL;
}

static size_t
nfields(const struct req *r, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < r->http.nheaders; i++)
        n += r->h[i].name != NULL && strcasecmp(r->h[i].name, name) == 0;
    return n;
}

/* The hook errors with a log line containing `want` (and "policy failed"). */
static void
want_policy_error(const char *want)
{
    struct ferry_policy_verdict v;
    struct req                  r;
    char                       *log;

    req_init(&r);
    capture_begin();
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    log = capture_end();
    CU_ASSERT_FALSE(v.allowed);
    CU_ASSERT_TRUE(v.error);
    CU_ASSERT_EQUAL(v.code, 500);
    CU_ASSERT_STRING_EQUAL(v.reason, "policy-error");
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"policy failed\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, want));
    if (strstr(log, want) == NULL)
        fprintf(stdout, "\n  want '%s' in the log, got: %s\n", want, log);
    ferry_policy_http_free(&r.http);
}

/* After a failure the same state still answers. */
static void
want_state_usable(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;

    req_init(&r);
    r.http.path = "/ok";
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_TRUE(v.allowed);
    CU_ASSERT_FALSE(v.error);
    ferry_policy_http_free(&r.http);
}

/* The script shape most tests use: a body for on_request that may short-circuit on
 * path "/ok" (so want_state_usable can call it after a failure). */
static int
load_request_hook(const char *body)
{
    char script[4096];

    snprintf(script, sizeof(script),
             "return { on_request = function(req, dest)\n"
             "  if req.path == '/ok' then return end\n"
             "%s\n"
             "end }\n", body);
    return fx_load(script);
}

/* ---- hooks ------------------------------------------------------------------------------- */

static void
test_header_rewrite_sets_adds_and_removes_fields(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;

    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  req.headers['X-Tenant'] = req.tenant\n"
        "  req.headers['user-agent'] = nil\n"
        "  req.headers['X-Seen'] = req.headers['ACCEPT'] .. '|' .. req.method .. '|' ..\n"
        "                          req.path .. '|' .. req.query .. '|' .. req.client\n"
        "  req.headers['Accept'] = 'text/plain'\n"
        "  req.headers['X-Many'] = { 'a', 'b' }\n"
        "  req.path = '/v2' .. req.path\n"
        "  req.query = '?y=2'\n"
        "  req.method = 'POST'\n"), FERRY_OK);
    CU_ASSERT_TRUE(F.set->scripts[0].hooks == (1u << POLICY_ON_REQUEST));
    req_init(&r);
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_TRUE(v.allowed);
    CU_ASSERT_STRING_EQUAL(field(&r, "x-tenant"), "acme");
    CU_ASSERT_PTR_NULL(field(&r, "User-Agent"));
    CU_ASSERT_STRING_EQUAL(field(&r, "x-seen"), "a/b, c/d|GET|/orders/7|x=1|10.1.2.3:5555");
    CU_ASSERT_EQUAL(nfields(&r, "accept"), 1);
    CU_ASSERT_STRING_EQUAL(field(&r, "accept"), "text/plain");
    CU_ASSERT_EQUAL(nfields(&r, "x-many"), 2);
    CU_ASSERT_STRING_EQUAL(field(&r, "host"), "api");
    CU_ASSERT_STRING_EQUAL(r.http.path, "/v2/orders/7");
    CU_ASSERT_STRING_EQUAL(r.http.query, "y=2");
    CU_ASSERT_STRING_EQUAL(r.http.method, "POST");
    CU_ASSERT_EQUAL(r.http.owned, FERRY_POLICY_OWN_METHOD | FERRY_POLICY_OWN_PATH |
                                  FERRY_POLICY_OWN_QUERY);
    ferry_policy_http_free(&r.http);
    CU_ASSERT_EQUAL(r.http.owned, 0);
    fx_free();
}

static void
test_pairs_over_headers_and_dest(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;

    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  local n, names = 0, {}\n"
        "  for k, v in pairs(req.headers) do n = n + 1; names[#names + 1] = k end\n"
        "  local props = 0\n"
        "  for k, v in pairs(dest) do props = props + 1 end\n"
        "  req.headers['X-Count'] = n .. ' ' .. table.concat(names, ',') .. ' ' .. props\n"),
        FERRY_OK);
    req_init(&r);
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(field(&r, "x-count"), "4 Host,User-Agent,Accept,accept 4");
    ferry_policy_http_free(&r.http);
    fx_free();
}

static void
test_deny_returns_code_and_reason(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;

    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  if req.path:match('^/orders') then\n"
        "    return ferry.deny(403, 'orders are closed\\r\\nX-Evil: 1')\n"
        "  end\n"), FERRY_OK);
    req_init(&r);
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_FALSE(v.allowed);
    CU_ASSERT_FALSE(v.error);
    CU_ASSERT_EQUAL(v.code, 403);
    /* A reason ends up in an HTTP field: line breaks are gone. */
    CU_ASSERT_STRING_EQUAL(v.reason, "orders are closed  X-Evil: 1");
    want_state_usable();
    fx_free();
}

static void
test_deny_code_out_of_range_is_an_error(void)
{
    CU_ASSERT_EQUAL_FATAL(load_request_hook("  return ferry.deny(200, 'fine')\n"), FERRY_OK);
    want_policy_error("out of range for on_request (400-599)");
    fx_free();
}

static void
test_hook_returning_something_else_is_an_error(void)
{
    CU_ASSERT_EQUAL_FATAL(load_request_hook("  return 'no'\n"), FERRY_OK);
    want_policy_error("on_request returned string");
    fx_free();
}

static void
test_response_hook_changes_status_and_headers(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;

    CU_ASSERT_EQUAL_FATAL(fx_load(
        "return { on_response = function(res, dest)\n"
        "  res.headers.Server = nil\n"
        "  res.headers['X-Status'] = res.status\n"
        "  if res.status == 500 then res.status = 502 end\n"
        "end }\n"), FERRY_OK);
    req_init(&r);
    r.http.status = 500;
    r.h[0] = (struct ferry_policy_header){ "Server", "nginx", false };
    CU_ASSERT_EQUAL(call_hook(POLICY_ON_RESPONSE, &r, &v), FERRY_OK);
    CU_ASSERT_TRUE(v.allowed);
    CU_ASSERT_EQUAL(r.http.status, 502);
    CU_ASSERT_PTR_NULL(field(&r, "server"));
    CU_ASSERT_STRING_EQUAL(field(&r, "x-status"), "500");
    ferry_policy_http_free(&r.http);
    /* No on_request: the plugin goes on as if allowed. */
    CU_ASSERT_EQUAL(call_hook(POLICY_ON_REQUEST, &r, &v), FERRY_ENOTFOUND);
    fx_free();
}

static void
test_connect_and_ldap_hooks(void)
{
    struct ferry_policy_verdict v;

    CU_ASSERT_EQUAL_FATAL(fx_load(
        "return {\n"
        "  on_connect = function(conn, dest)\n"
        "    if conn.target ~= 'db.internal:5432' or conn.tenant ~= 'acme' then error('x') end\n"
        "    if conn.client:match('^10%.') then return ferry.deny(0, 'no 10/8') end\n"
        "  end,\n"
        "  on_ldap = function(op, dest)\n"
        "    if op.type ~= 'search' and op.type ~= 'bind' then\n"
        "      return ferry.deny(50, 'read-only: ' .. op.dn)\n"
        "    end\n"
        "  end,\n"
        "}\n"), FERRY_OK);
    CU_ASSERT_EQUAL(call_hook(POLICY_ON_CONNECT, NULL, &v), FERRY_OK);
    CU_ASSERT_FALSE(v.allowed);
    CU_ASSERT_STRING_EQUAL(v.reason, "no 10/8");
    CU_ASSERT_EQUAL(call_hook(POLICY_ON_LDAP, NULL, &v), FERRY_OK);
    CU_ASSERT_FALSE(v.allowed);
    CU_ASSERT_EQUAL(v.code, 50);
    CU_ASSERT_STRING_EQUAL(v.reason, "read-only: cn=x,dc=example");
    fx_free();
}

static void
test_ldap_hook_error_is_result_80(void)
{
    struct ferry_policy_verdict v;

    CU_ASSERT_EQUAL_FATAL(fx_load("return { on_ldap = function(op) error('boom') end }\n"),
                          FERRY_OK);
    capture_begin();
    CU_ASSERT_EQUAL(call_hook(POLICY_ON_LDAP, NULL, &v), FERRY_OK);
    capture_end();
    CU_ASSERT_TRUE(v.error);
    CU_ASSERT_EQUAL(v.code, 80);
    fx_free();
}

static void
test_dest_is_readable_and_read_only(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;

    CU_ASSERT_EQUAL_FATAL(fx_load_with(
        "return { on_request = function(req, dest)\n"
        "  if req.path == '/write' then dest.URL = 'x' end\n"
        "  if req.path == '/raw' then rawset(dest, 'URL', 'x') end\n"
        "  req.headers['X-Key'] = dest['URL.headers.X-Api-Key'] or 'none'\n"
        "  req.headers['X-Url'] = dest.URL .. ' ' .. tostring(dest.Nope)\n"
        "end }\n",
        "    URL.headers.X-Api-Key: k-123\n"), FERRY_OK);
    req_init(&r);
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(field(&r, "x-key"), "k-123");
    CU_ASSERT_STRING_EQUAL(field(&r, "x-url"), "http://127.0.0.1:1/base nil");
    ferry_policy_http_free(&r.http);
    req_init(&r);
    r.http.path = "/write";
    capture_begin();
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(capture_end(), "dest is read-only"));
    CU_ASSERT_TRUE(v.error);
    r.http.path = "/raw";
    capture_begin();
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(capture_end(), "bad argument #1 to 'rawset'"));
    CU_ASSERT_TRUE(v.error);
    ferry_policy_http_free(&r.http);
    fx_free();
}

static void
test_framing_fields_and_bad_values_are_refused(void)
{
    CU_ASSERT_EQUAL_FATAL(load_request_hook("  req.headers['Content-Length'] = '0'\n"),
                          FERRY_OK);
    want_policy_error("header 'Content-Length' is managed by ferry");
    CU_ASSERT_EQUAL_FATAL(load_request_hook("  req.headers['Transfer-Encoding'] = nil\n"),
                          FERRY_OK);
    want_policy_error("managed by ferry");
    CU_ASSERT_EQUAL_FATAL(load_request_hook("  req.headers['X-A'] = 'v\\r\\nX-Injected: 1'\n"),
                          FERRY_OK);
    want_policy_error("line break or control character");
    CU_ASSERT_EQUAL_FATAL(load_request_hook("  req.headers['Bad Name'] = 'v'\n"), FERRY_OK);
    want_policy_error("must be a token");
    CU_ASSERT_EQUAL_FATAL(load_request_hook("  req.path = '/a b'\n"), FERRY_OK);
    want_policy_error("req.path must start with '/'");
    CU_ASSERT_EQUAL_FATAL(load_request_hook("  req.method = 'HEAD'\n"), FERRY_OK);
    want_policy_error("into or out of HEAD");
    CU_ASSERT_EQUAL_FATAL(load_request_hook("  req.client = 'x'\n"), FERRY_OK);
    want_policy_error("req.client cannot be set");
    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  for i = 1, 20 do req.headers['X-' .. i] = 'v' end\n"), FERRY_OK);
    want_policy_error("too many header fields (at most 16)");
    fx_free();
}

static void
test_request_object_dies_with_its_call(void)
{
    CU_ASSERT_EQUAL_FATAL(fx_load(
        "local saved\n"
        "return { on_request = function(req)\n"
        "  if saved then return ferry.deny(400, saved.method) end\n"
        "  saved = req\n"
        "end }\n"), FERRY_OK);
    {
        struct ferry_policy_verdict v;
        struct req                  r;

        req_init(&r);
        CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
        CU_ASSERT_TRUE(v.allowed);
    }
    want_policy_error("belongs to a finished call");
    fx_free();
}

/* ---- sandbox --------------------------------------------------------------------------- */

static void
test_io_open_is_not_there(void)
{
    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  local f = io.open('/etc/passwd')\n"), FERRY_OK);
    want_policy_error("global 'io'");
    want_state_usable();
    fx_free();
}

static void
test_os_execute_exit_getenv_are_not_there(void)
{
    static const char *const calls[] = {
        "os.execute('touch /tmp/ferry-pwned')", "os.exit(1)", "os.getenv('HOME')",
        "os.remove('/tmp/x')", "dofile('/etc/passwd')", "loadfile('/etc/passwd')",
        "debug.getinfo(1)", "package.loadlib('x', 'y')", "collectgarbage('stop')",
        "print('x')", "coroutine.create(print)",
    };

    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        char body[200];

        snprintf(body, sizeof(body), "  %s\n", calls[i]);
        CU_ASSERT_EQUAL_FATAL(load_request_hook(body), FERRY_OK);
        want_policy_error("attempt to");
    }
    CU_ASSERT_EQUAL(access("/tmp/ferry-pwned", F_OK), -1);
    /* What is there works: os.time, os.clock, os.date, string, table, math, utf8. */
    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  assert(os.time() > 0 and os.clock() >= 0 and #os.date('%Y') == 4)\n"
        "  assert(utf8.len('h\\u{e9}') == 2 and math.max(1, 2) == 2)\n"
        "  assert(table.concat({'a', 'b'}, '-') == 'a-b' and ('x'):upper() == 'X')\n"
        "  return ferry.deny(418, 'ok')\n"), FERRY_OK);
    {
        struct ferry_policy_verdict v;
        struct req                  r;

        req_init(&r);
        CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
        CU_ASSERT_EQUAL(v.code, 418);
    }
    fx_free();
}

static void
test_bytecode_cannot_be_loaded(void)
{
    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  assert(string.dump == nil and ('').dump == nil, 'string.dump is there')\n"
        "  assert(getmetatable('') == false, 'the string metatable is reachable')\n"
        "  local f, err = load('\\27Lua\\84\\0\\25\\147\\r\\n\\26\\n')\n"
        "  assert(f == nil and err:match('binary'), 'bytecode loaded')\n"
        "  f, err = load('return 1', 'x', 'b')\n"
        "  assert(f == nil, 'mode b accepted')\n"
        "  f = load('return io')\n"
        "  assert(f() == nil, 'load gave the real globals')\n"
        "  f = load('x = 5; return x')\n"
        "  assert(f() == 5 and x == nil, 'load shares the environment')\n"
        "  error('reached the end')\n"), FERRY_OK);
    want_policy_error("reached the end");
    fx_free();
}

static void
test_gc_metamethods_are_refused(void)
{
    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  setmetatable({}, { __gc = function() while true do end end })\n"), FERRY_OK);
    want_policy_error("__gc is not allowed");
    fx_free();
}

static void
test_scripts_do_not_share_globals_or_libraries(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;

    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  string.upper = function() return 'hijacked' end\n"
        "  counter = (counter or 0) + 1\n"
        "  req.headers['X-N'] = counter\n"
        "  req.headers['X-U'] = load('return string.upper(\"a\")')()\n"), FERRY_OK);
    req_init(&r);
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    /* Its own globals persist across calls; another chunk's string table is untouched. */
    CU_ASSERT_STRING_EQUAL(field(&r, "x-n"), "2");
    CU_ASSERT_STRING_EQUAL(field(&r, "x-u"), "A");
    ferry_policy_http_free(&r.http);
    fx_free();
}

static void
test_require_reaches_the_own_folder_only(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;

    fx_free();
    F.dir = tmpdir_new();
    CU_ASSERT_FATAL(mkdir_in(F.dir, "lib"));
    CU_ASSERT_FATAL(file_write(F.dir, "lib/util.lua",
                               "return { tag = function() return 'u' end }\n"));
    CU_ASSERT_FATAL(file_write(F.dir, "p.lua",
        "local util = require('lib.util')\n"
        "assert(require('lib.util') == util)\n"
        "return { on_request = function(req)\n"
        "  req.headers['X-Tag'] = util.tag()\n"
        "  for _, m in ipairs({ '../etc/passwd', '/etc/passwd', 'os', 'io', 'nope.x' }) do\n"
        "    assert(not pcall(require, m), m .. ' was required')\n"
        "  end\n"
        "end }\n"));
    {
        char yaml[1024];

        snprintf(yaml, sizeof(yaml), "destinations:\n  - Name: api\n    Type: HTTP\n"
                 "    URL: http://127.0.0.1:1\n    policy: %s/p.lua\n", F.dir);
        CU_ASSERT_EQUAL_FATAL(conf_test_load(yaml, &F.conf, &F.errs), FERRY_OK);
    }
    CU_ASSERT_EQUAL_FATAL(ferry_policy_load(F.conf, NULL, &F.set, &F.errs), FERRY_OK);
    F.d = ferry_registry_find(F.conf->registry, "api");
    F.vm = ferry_policy_vm_new(F.set);
    req_init(&r);
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_TRUE(v.allowed);
    CU_ASSERT_STRING_EQUAL(field(&r, "x-tag"), "u");
    ferry_policy_http_free(&r.http);
    fx_free();
}

/* ---- budget and memory --------------------------------------------------------------- */

static void
test_infinite_loop_exhausts_the_budget(void)
{
    CU_ASSERT_EQUAL_FATAL(load_request_hook("  while true do end\n"), FERRY_OK);
    want_policy_error("instruction budget exceeded");
    want_state_usable();
    /* A pcall in the script cannot catch it. */
    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  while true do pcall(function() while true do end end) end\n"), FERRY_OK);
    want_policy_error("instruction budget exceeded");
    want_state_usable();
    /* Nor can a loop run through a metamethod (not yieldable). */
    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  local t = setmetatable({}, { __index = function() while true do end end })\n"
        "  while true do pcall(function() return t.x end) end\n"), FERRY_OK);
    want_policy_error("instruction budget exceeded");
    want_state_usable();
    fx_free();
}

static void
test_string_rep_bomb_hits_the_memory_cap(void)
{
    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  local s = string.rep('x', 1 << 30)\n"), FERRY_OK);
    want_policy_error("memory cap exceeded");
    want_state_usable();
    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  local s = 'xxxxxxxxxxxxxxxx'\n"
        "  while true do s = s .. s end\n"), FERRY_OK);
    want_policy_error("memory cap exceeded");
    want_state_usable();
    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  local t = {}\n"
        "  for i = 1, 1e7 do t[i] = { i } end\n"), FERRY_OK);
    want_policy_error("memory cap exceeded");
    want_state_usable();
    fx_free();
}

static void
test_a_leaking_script_gets_a_fresh_state(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;

    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  leak = leak or {}\n"
        "  leak[#leak + 1] = string.rep('x', 1 << 20)\n"
        "  req.headers['X-Held'] = #leak\n"), FERRY_OK);
    F.set->lim.state_bytes = 4u << 20;
    for (int i = 0; i < 10; i++) {
        req_init(&r);
        CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
        CU_ASSERT_TRUE(v.allowed);
        ferry_policy_http_free(&r.http);
    }
    /* Past 4 MiB the state was rebuilt: the count started over. */
    CU_ASSERT(F.vm->used < (6u << 20));
    fx_free();
}

static void
test_runtime_error_names_script_and_line(void)
{
    char want[600];

    CU_ASSERT_EQUAL_FATAL(load_request_hook("  local n = nil\n  return n.field\n"), FERRY_OK);
    snprintf(want, sizeof(want), "\"where\":\"%s/p.lua:4\"", F.dir);
    want_policy_error(want);
    want_policy_error("attempt to index a nil value (local 'n')");
    fx_free();
}

/* ---- library --------------------------------------------------------------------------- */

static void
test_json_and_base64(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;

    CU_ASSERT_EQUAL_FATAL(load_request_hook(
        "  local t = ferry.json.decode('{\"a\":[1,2.5,\"x\",null,true],\"b\":{}}')\n"
        "  assert(t.a[1] == 1 and t.a[2] == 2.5 and t.a[4] == ferry.json.null)\n"
        "  req.headers['X-Json'] = ferry.json.encode({ b = { 1, 2 }, a = 'q\"' , c = {} })\n"
        "  local bad, err = ferry.json.decode('{')\n"
        "  assert(bad == nil and err:match('line 1'))\n"
        "  assert(not pcall(ferry.json.encode, { f = pairs }))\n"
        "  local cyc = {}; cyc.self = cyc\n"
        "  assert(not pcall(ferry.json.encode, cyc))\n"
        "  req.headers['X-B64'] = ferry.base64.encode('user:pa ss')\n"
        "  assert(ferry.base64.decode('dXNlcjpwYSBzcw==') == 'user:pa ss')\n"
        "  assert(ferry.base64.decode('%%%') == nil)\n"
        "  assert(type(ferry.now()) == 'number' and ferry.now() > 1.7e9)\n"), FERRY_OK);
    req_init(&r);
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_TRUE(v.allowed);
    CU_ASSERT_STRING_EQUAL(field(&r, "x-json"), "{\"a\":\"q\\\"\",\"b\":[1,2],\"c\":{}}");
    CU_ASSERT_STRING_EQUAL(field(&r, "x-b64"), "dXNlcjpwYSBzcw==");
    ferry_policy_http_free(&r.http);
    fx_free();
}

static void
test_log_never_shows_secret_values(void)
{
    struct ferry_policy_verdict v;
    struct req                  r;
    char                       *log;

    CU_ASSERT_EQUAL_FATAL(fx_load_with(
        "return { on_request = function(req, dest)\n"
        "  ferry.log('warn', 'the password is ' .. dest.Password)\n"
        "  error('failed with ' .. dest.Password)\n"
        "end }\n",
        "    Authentication: BasicAuthentication\n    User: u\n    Password: s3cr3t-pw\n"),
        FERRY_OK);
    req_init(&r);
    capture_begin();
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    log = capture_end();
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "the password is ***"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "failed with ***"));
    CU_ASSERT_PTR_NULL(strstr(log, "s3cr3t"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"policy\":\""));
    fx_free();
}

/* ---- loading ------------------------------------------------------------------------------ */

static void
test_syntax_error_is_file_line_col(void)
{
    char file[512];

    CU_ASSERT_EQUAL(fx_load("return {\n  on_request = function(req)\n"
                            "    local x = 1 +* 2\n  end\n}\n"), FERRY_EINVAL);
    snprintf(file, sizeof(file), "%s/p.lua", F.dir);
    CU_ASSERT_EQUAL_FATAL(F.errs.count, 1);
    CU_ASSERT_STRING_EQUAL(F.errs.items[0].file, file);
    CU_ASSERT_EQUAL(F.errs.items[0].line, 3);
    CU_ASSERT_EQUAL(F.errs.items[0].col, 18);
    CU_ASSERT(errs_have(&F.errs, 3, 18,
                        "unexpected symbol near '*' (policy of destination 'api')"));
    CU_ASSERT_PTR_NULL(F.set);
    /* Unfinished: the column is the end of the last line. */
    CU_ASSERT_EQUAL(fx_load("return { on_request = function(req)"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&F.errs, 1, 36, "'end' expected"));
    fx_free();
}

static void
test_script_must_return_a_table_of_functions(void)
{
    CU_ASSERT_EQUAL(fx_load("local x = 1\nreturn 42\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&F.errs, 2, 1, "must return a table of hooks, not number"));
    CU_ASSERT_EQUAL(fx_load("return {\n  on_request = 'yes',\n}\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&F.errs, 2, 3, "on_request must be a function, not string"));
    CU_ASSERT_EQUAL(fx_load("error('at load')\nreturn {}\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&F.errs, 1, 1, "at load"));
    CU_ASSERT_EQUAL(fx_load("while true do end\n"), FERRY_EINVAL);
    CU_ASSERT(errs_have(&F.errs, 1, 1, "instruction budget exceeded"));
    fx_free();
}

static void
test_reload_keeps_the_previous_script(void)
{
    struct ferry_conf          *old;
    struct ferry_policy_set    *old_set;
    struct ferry_errlist        errs = { 0 };
    struct ferry_policy_verdict v;
    struct req                  r;
    char                        yaml[1024];

    CU_ASSERT_EQUAL_FATAL(load_request_hook("  return ferry.deny(451, 'old script')\n"),
                          FERRY_OK);
    old = F.conf;
    old_set = F.set;
    F.conf = NULL;
    F.set = NULL;
    CU_ASSERT_FATAL(file_write(F.dir, "p.lua", "return { on_request = function( }\n"));
    snprintf(yaml, sizeof(yaml), "destinations:\n  - Name: api\n    Type: HTTP\n"
             "    URL: http://127.0.0.1:2\n    policy: %s/p.lua\n"
             "  - Name: fresh\n    Type: HTTP\n    URL: http://127.0.0.1:3\n", F.dir);
    CU_ASSERT_EQUAL_FATAL(conf_test_load(yaml, &F.conf, &F.errs), FERRY_OK);
    capture_begin();
    CU_ASSERT_EQUAL(ferry_policy_load(F.conf, old_set, &F.set, &errs), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(capture_end(), "keeping the previous one"));
    CU_ASSERT_EQUAL(errs.count, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(F.set);
    CU_ASSERT_TRUE(F.set->scripts[1].kept);
    ferry_policy_vm_free(F.vm);     /* it runs the old set's scripts */
    ferry_policy_set_free(old_set); /* the kept script is a copy */
    ferry_conf_free(old);
    F.vm = ferry_policy_vm_new(F.set);
    F.d = ferry_registry_find(F.conf->registry, "api");
    req_init(&r);
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_EQUAL(v.code, 451);
    CU_ASSERT_STRING_EQUAL(v.reason, "old script");
    /* Without a previous script (a new destination, or at startup) it is an error. */
    CU_ASSERT_EQUAL(fx_load("return { on_request = function( }\n"), FERRY_EINVAL);
    fx_free();
}

/* req.user: the claims as Lua values (nested), the same table within a call, nil
 * without a user. */
static void
test_req_user_is_the_claims(void)
{
    struct req                  r;
    struct ferry_policy_verdict v;
    json_t                     *claims;
    struct ferry_user          *u;
    struct policy_call          c = { .hook = POLICY_ON_REQUEST };

    CU_ASSERT_EQUAL_FATAL(fx_load(
        "return { on_request = function(req)\n"
        "  local u = req.user\n"
        "  if u == nil then req.headers['X-None'] = '1' return end\n"
        "  req.headers['X-Sub'] = u.sub\n"
        "  req.headers['X-G'] = u.groups[2] .. #u.groups\n"
        "  req.headers['X-Admin'] = tostring(u.admin)\n"
        "  req.headers['X-N'] = tostring(u.n)\n"
        "  req.headers['X-Unit'] = u.org.unit\n"
        "  req.headers['X-Same'] = tostring(rawequal(u, req.user))\n"
        "end }\n"), FERRY_OK);
    claims = json_loads("{\"sub\":\"alice\",\"groups\":[\"staff\",\"erp\"],\"admin\":true,"
                        "\"n\":7,\"org\":{\"unit\":\"sales\"}}", 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(claims);
    u = ferry_user_new(claims);
    json_decref(claims);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    req_init(&r);
    c.dest = F.d;
    c.http = &r.http;
    c.user = u;
    CU_ASSERT_EQUAL(ferry_policy_vm_call(F.vm, &c, &v), FERRY_OK);
    CU_ASSERT_TRUE(v.allowed);
    CU_ASSERT_STRING_EQUAL(field(&r, "X-Sub"), "alice");
    CU_ASSERT_STRING_EQUAL(field(&r, "X-G"), "erp2");
    CU_ASSERT_STRING_EQUAL(field(&r, "X-Admin"), "true");
    CU_ASSERT_STRING_EQUAL(field(&r, "X-N"), "7");
    CU_ASSERT_STRING_EQUAL(field(&r, "X-Unit"), "sales");
    CU_ASSERT_STRING_EQUAL(field(&r, "X-Same"), "true");
    CU_ASSERT_PTR_NULL(field(&r, "X-None"));
    ferry_policy_http_free(&r.http);
    ferry_user_unref(u);
    req_init(&r);
    CU_ASSERT_EQUAL(request(&r, &v), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(field(&r, "X-None"), "1");
    ferry_policy_http_free(&r.http);
    fx_free();
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "header rewrite sets, adds and removes fields",
          test_header_rewrite_sets_adds_and_removes_fields },
        { "pairs over headers and dest", test_pairs_over_headers_and_dest },
        { "deny returns code and reason", test_deny_returns_code_and_reason },
        { "deny code out of range is an error", test_deny_code_out_of_range_is_an_error },
        { "hook returning something else is an error",
          test_hook_returning_something_else_is_an_error },
        { "response hook changes status and headers",
          test_response_hook_changes_status_and_headers },
        { "connect and ldap hooks", test_connect_and_ldap_hooks },
        { "ldap hook error is result 80", test_ldap_hook_error_is_result_80 },
        { "dest is readable and read-only", test_dest_is_readable_and_read_only },
        { "framing fields and bad values are refused",
          test_framing_fields_and_bad_values_are_refused },
        { "request object dies with its call", test_request_object_dies_with_its_call },
        { "io.open is not there", test_io_open_is_not_there },
        { "os.execute, exit, getenv are not there", test_os_execute_exit_getenv_are_not_there },
        { "bytecode cannot be loaded", test_bytecode_cannot_be_loaded },
        { "__gc metamethods are refused", test_gc_metamethods_are_refused },
        { "scripts do not share globals or libraries",
          test_scripts_do_not_share_globals_or_libraries },
        { "require reaches the own folder only", test_require_reaches_the_own_folder_only },
        { "infinite loop exhausts the budget", test_infinite_loop_exhausts_the_budget },
        { "string.rep bomb hits the memory cap", test_string_rep_bomb_hits_the_memory_cap },
        { "a leaking script gets a fresh state", test_a_leaking_script_gets_a_fresh_state },
        { "runtime error names script and line", test_runtime_error_names_script_and_line },
        { "json and base64", test_json_and_base64 },
        { "log never shows secret values", test_log_never_shows_secret_values },
        { "syntax error is file:line:col", test_syntax_error_is_file_line_col },
        { "script must return a table of functions",
          test_script_must_return_a_table_of_functions },
        { "reload keeps the previous script", test_reload_keeps_the_previous_script },
        { "req.user is the claims", test_req_user_is_the_claims },
        { NULL, NULL },
    };
    int rc = cu_run("lua policy", tests);

    fx_free();
    return rc;
}
