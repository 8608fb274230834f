/*
 * lua-int.h: the Lua policy engine inside core (plugins see ferry/policy.h only).
 *
 *   load.c     main thread: read each destination's script and the modules it may
 *              require, compile it, run its top level once, note its hooks; on SIGHUP a
 *              script that no longer loads is replaced by the previous one
 *   vm.c       one lua_State per worker and generation: the counting allocator, the
 *              sandboxed environments, require from memory, loading a script
 *   run.c      one hook call in a coroutine: budget, memory cap, verdict, error log
 *   lib.c      the `ferry` table (deny, log, now, base64); json.c: ferry.json
 *   objects.c  what hooks get: req/res and their headers, dest, conn, op
 *   io.c       what a hook may wait on: ferry.http.request, ferry.tokens.get (and
 *              ferry.url.encode, ferry.sha256)
 *
 * ferry/policy.h on top of a connection is the worker's (worker/conn-policy.c): this
 * room never sees a connection or a worker. A hook that may wait is handed a struct
 * policy_home, the few things of its thread it needs (loop, resolver, a way to post).
 *
 * Sources live in the configuration (struct ferry_policy_set, immutable once loaded,
 * shared read-only by all workers); each worker compiles them from memory into its
 * own state, so a worker never reads a file.
 */
#ifndef FERRY_LUA_INT_H
#define FERRY_LUA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include <ferry/dest.h>
#include <ferry/err.h>
#include <ferry/log.h>
#include <ferry/policy.h>

#include "lua/policy-home.h"

struct ferry_conf;
struct ferry_errlist;
struct json_t;

enum policy_hook {
    POLICY_ON_REQUEST = 0,
    POLICY_ON_RESPONSE,
    POLICY_ON_CONNECT,
    POLICY_ON_LDAP,
    POLICY_NHOOKS,
    POLICY_LOAD = POLICY_NHOOKS,     /* not a hook: run a script's top level (load.c) */
    POLICY_TOKEN,                    /* not a hook: an auth module's token(dest, ctx) */
};

#define POLICY_MAX_SOURCE_BYTES  (1024 * 1024)      /* a script or a module */
#define POLICY_MAX_MODULES       256                /* .lua files per folder */
#define POLICY_MAX_DEPTH         4                  /* folder levels scanned for modules */
#define POLICY_POOL_MAX          16                 /* idle coroutines kept per state */

/* Defaults of struct policy_limits. */
#define POLICY_INSTRUCTIONS      1000000L           /* per hook call */
#define POLICY_CALL_BYTES        (16u * 1024 * 1024)  /* memory growth per hook call */
#define POLICY_STATE_BYTES       (64u * 1024 * 1024)  /* a state past this is recycled */
#define POLICY_WAIT_MS           15000              /* a hook that waits on I/O, in all */

struct policy_limits {
    long   instructions;        /* VM instructions per call (counted in steps of 1000) */
    size_t call_bytes;          /* allocation fails past the call's start + this */
    size_t state_bytes;         /* past this after a call, the worker's state is rebuilt */
};

/* A .lua file `require` may load: found under a folder when the config loaded. */
struct policy_module {
    char   *name;               /* relative to its folder: "util.lua", "ferry/auth/x.lua" */
    char   *path;               /* for messages */
    char   *src;                /* owns */
    size_t  len;
};

struct policy_dir {
    char                 *path;
    struct policy_module *mods;     /* owns */
    size_t                nmods;
};

struct policy_script {
    char     *path;             /* as the destination resolved it; used in messages */
    char     *src;              /* owns: the text, compiled again by every worker */
    size_t    len;
    unsigned  hooks;            /* 1u << POLICY_ON_*: the hooks it defines */
    size_t    dir;              /* set->dirs index of its own folder (0: none) */
    bool      kept;             /* the previous configuration's: the new one did not load */
    const char *auth;           /* static: "ferry.auth.<Authentication>" whose hooks run
                                   before the script's (NULL: none); src NULL: none */
};

/* The module of destination d's Authentication run as an implicit policy, or NULL. */
const char *policy_auth_module(const struct ferry_dest *d);

/* Every destination's policy of one configuration. The generation built from that
 * configuration owns it (worker/gen.c); read-only after ferry_policy_load(), workers
 * share it without locks. Its destinations are the configuration's: free the set
 * before the configuration. */
struct ferry_policy_set {
    struct policy_script     *scripts;      /* owns */
    size_t                    nscripts;
    uint32_t                 *by_dest;      /* per registry entry: script index + 1, 0 none */
    const struct ferry_dest  *dests;        /* borrowed: conf->registry->dests */
    size_t                    ndests;
    struct policy_dir        *dirs;         /* owns; dirs[0] is the lua/ library folder */
    size_t                    ndirs;
    struct policy_limits      lim;
};

/* ---- load.c (main thread) ------------------------------------------------------------ */

/* Read, compile and check every destination's policy of conf into *out (NULL when no
 * destination has one; the caller owns it). Errors go to errs as file:line:col. With
 * prev (the running configuration's set, on a reload), a script that does not load is
 * replaced by prev's script of the destination of the same name, and the reason is
 * logged; a destination without one in prev is an error. Warnings (a hook name
 * misspelt) are printed to stderr. FERRY_OK or FERRY_EINVAL / FERRY_ENOMEM. */
int  ferry_policy_load(const struct ferry_conf *conf, const struct ferry_policy_set *prev,
                       struct ferry_policy_set **out, struct ferry_errlist *errs);
void ferry_policy_set_free(struct ferry_policy_set *s);
/* The lua/ library folder: <binary's folder>/../share/ferry/lua, <binary's folder>/lua,
 * the source tree's lua/, the install prefix's share/ferry/lua (the first that exists). */
const char *policy_lib_dir(void);

/* d's index in the registry s was loaded with; false if d is not one of its entries. */
bool policy_dest_index(const struct ferry_policy_set *s, const struct ferry_dest *d, size_t *i);
/* The script of destination d in s (and its index, if script is not NULL), or NULL. */
const struct policy_script *policy_script_of(const struct ferry_policy_set *s,
                                             const struct ferry_dest *d, size_t *script);

/* ---- vm.c / run.c (one per worker and generation) ---------------------------------- */

struct policy_run;

struct policy_vm {
    lua_State                     *L;          /* owns; NULL until the first call */
    const struct ferry_policy_set *set;        /* borrowed: the generation's config */
    size_t                         used;       /* bytes the state holds */
    size_t                         cap;        /* allocations past this fail */
    unsigned                       refused;    /* allocations refused in this call */
    struct policy_run             *run;        /* the call running now, or NULL */
    uint64_t                       serial;     /* of the last call started */
    int                           *fn_ref;     /* nscripts * POLICY_NHOOKS registry refs:
                                                  LUA_NOREF not loaded, LUA_REFNIL absent */
    int                           *dest_ref;   /* per registry entry: its `dest` object */
    lua_State                     *pool[POLICY_POOL_MAX];  /* idle coroutines */
    int                            pool_ref[POLICY_POOL_MAX];
    unsigned                       npool;
    unsigned                       nwaiting;   /* runs suspended on I/O: keep the state */
    struct policy_run             *spare[4];   /* freed runs, reused: no malloc per call */
    unsigned                       nspare;
};

/* What one call is about. Strings are borrowed for the call. */
struct policy_call {
    enum policy_hook             hook;
    const struct ferry_dest     *dest;
    const struct ferry_log_ctx  *log;      /* NULL: the process log */
    const char                  *client;   /* on_connect: "ip:port" */
    const char                  *tenant;   /* on_connect: or NULL */
    const char                  *target;   /* on_connect: "host:port" */
    const char                  *op_type;  /* on_ldap */
    const char                  *dn;       /* on_ldap */
    struct ferry_policy_http    *http;     /* on_request, on_response */
    struct ferry_user           *user;     /* on_request: req.user (validated claims),
                                              NULL: nil */
    const struct policy_home    *home;     /* where a wait resumes; NULL: no waiting */
    const char                  *offline_token;  /* `ferry policy test`: ferry.tokens.get
                                                    answers this Bearer token, fetches
                                                    nothing; NULL: it may not */
    const char                  *module;   /* POLICY_TOKEN: "ferry.auth.X" */
    const struct ferry_policy_header *ctx_headers;  /* POLICY_TOKEN: ctx.headers */
    size_t                       nctx_headers;
};

/* What POLICY_TOKEN produced (strings owned, freed by policy_run_free). */
struct policy_token {
    char       *type, *value, *header, *error;
    long long   expires_in;     /* < 0: unknown */
};

/* One call in progress (run.c); objects.c and lib.c reach it through vm->run. */
struct policy_run {
    struct policy_vm         *vm;
    lua_State                *co;
    uint64_t                  serial;
    const struct policy_call *call;
    size_t                    script;       /* index in set->scripts */
    long                      budget;       /* instructions left */
    bool                      killed;       /* the budget ran out */
    /* Results. */
    bool                      denied;
    int                       code;
    char                      reason[256];
    unsigned                  hooks;        /* POLICY_LOAD: hooks found */
    char                      unknown[4][64];   /* POLICY_LOAD: odd keys, for warnings */
    unsigned                  nunknown;
    char                      error[512];   /* when the call failed */
    char                      where[320];   /* "script.lua:14", or "" */
    char                      where_src[256];
    int                       where_line;
    struct policy_token       token;        /* POLICY_TOKEN */
    /* A run that may wait (ferry_policy_vm_start) lives on the heap until it ends. */
    struct policy_call        callbuf;      /* the call, copied: the caller's is gone */
    int                       co_ref;
    bool                      heap;
    bool                      waiting;      /* suspended on I/O (io.c) */
    void                    (*cancel)(struct policy_run *run);  /* drops the I/O */
    void                     *io;           /* io.c's state of the pending wait */
    void                     *tok;          /* owns: io.c's ferry.tokens.get in progress */
    struct event             *deadline;     /* owns: POLICY_WAIT_MS from the first wait */
    int                       rc;           /* the outcome, for done() */
    struct ferry_policy_verdict verdict;
    void                    (*done)(struct policy_run *run);    /* after a wait */
    void                     *done_arg;
};

struct policy_vm *ferry_policy_vm_new(const struct ferry_policy_set *set);
void              ferry_policy_vm_free(struct policy_vm *vm);
/* Create the state (protected: out of memory is an error, not an abort). */
int               policy_vm_open(struct policy_vm *vm);
void              policy_vm_close(struct policy_vm *vm);
struct policy_vm *policy_vm_of(lua_State *L);

/* Run call->hook of the destination's script. FERRY_OK with *v filled (an error of the
 * script is a verdict, logged here), or FERRY_ENOTFOUND when there is no such hook. */
int  ferry_policy_vm_call(struct policy_vm *vm, const struct policy_call *call,
                          struct ferry_policy_verdict *v);
/* The same, for a call that may wait on I/O (call->home set, on that home's thread).
 * FERRY_OK: *v filled; FERRY_EAGAIN: *out is the suspended run, and done(run) runs
 * later on that thread with run->verdict (and run->token), from the
 * loop; it must call policy_run_free(run). FERRY_ENOTFOUND as above. */
int  ferry_policy_vm_start(struct policy_vm *vm, const struct policy_call *call,
                           struct ferry_policy_verdict *v, void (*done)(struct policy_run *),
                           void *done_arg, struct policy_run **out);
/* POLICY_TOKEN: call->module's token(dest, ctx). Same returns as _start (no
 * FERRY_ENOTFOUND); the answer is in run->token (and out_tok when FERRY_OK). */
int  policy_vm_token(struct policy_vm *vm, const struct policy_call *call,
                     struct policy_token *out_tok, void (*done)(struct policy_run *),
                     void *done_arg, struct policy_run **out);
/* The waiter went away (its connection closed): drop the wait and the run, silently. */
void policy_run_abort(struct policy_run *run);
void policy_run_free(struct policy_run *run);
void policy_token_free(struct policy_token *t);

/* io.c -> run.c: suspend run (the C function returns what this returns) until
 * policy_run_wake(); k then runs inside the coroutine to push the results. cancel
 * drops the I/O if the run is aborted first. */
int  policy_run_wait(lua_State *co, struct policy_run *run, lua_KFunction k,
                     void (*cancel)(struct policy_run *run), void *io);
/* The I/O finished (on the run's worker, from the loop): resume the coroutine. */
void policy_run_wake(struct policy_run *run);
/* The run ended or goes away: stop its I/O, report a token fetch it owned (io.c). */
void policy_io_end(struct policy_run *run);
/* The ferry.http, ferry.tokens, ferry.url tables and ferry.sha256 into the table at -1. */
void policy_open_io(lua_State *L);
/* Load script i at the top level in its own run (load.c's check). FERRY_OK with
 * run->hooks, or an error in run->error / run->where*. */
int  policy_vm_check(struct policy_vm *vm, size_t script, struct policy_run *run);

/* Push the function of `hook` in script i (loading the script on first use). Raises. */
void policy_push_hook(lua_State *L, struct policy_vm *vm, size_t script, enum policy_hook hook);
/* Push script i's table of hooks, loading it afresh (POLICY_LOAD). Raises. */
void policy_load_script(lua_State *L, struct policy_vm *vm, size_t script);
/* A fresh sandboxed environment for code from folder dir (0: the library only). */
void policy_push_env(lua_State *L, struct policy_vm *vm, size_t dir);

const char *policy_hook_name(enum policy_hook h);
int         policy_hook_of(const char *name);      /* -1 if unknown */

/* ---- lib.c, json.c, objects.c ------------------------------------------------------ */

/* The `ferry` table with its functions (into the sandbox template). Raises. */
void policy_open_lib(lua_State *L);
void policy_open_json(lua_State *L);                /* pushes the ferry.json table */
/* Push j as ferry.json.decode would (a new table for an object). Raises. */
void policy_push_json(lua_State *L, struct json_t *j);
/* Registers the metatables of the objects hooks get. Raises. */
void policy_open_objects(lua_State *L);
/* Push the hook's first argument (req, res, conn or op) for run. Raises. */
void policy_push_arg(lua_State *L, struct policy_run *run);
/* Push d's read-only `dest` object (cached per state). Raises. */
void policy_push_dest(lua_State *L, struct policy_vm *vm, const struct ferry_dest *d);
/* If the value at idx is a ferry.deny result: its code and reason. */
bool policy_is_deny(lua_State *L, int idx, int *code, const char **reason);

/* Replace every secret property value of d found in buf by "***" (in place). */
void policy_scrub(const struct ferry_dest *d, char *buf, size_t cap);

/* Registry keys (addresses) of the metatables and tables ferry keeps. */
extern const char policy_key_proto;     /* the sandbox template */
extern const char policy_key_loaded;    /* module -> value */
extern const char policy_key_deny;      /* metatable of ferry.deny results */

#endif
