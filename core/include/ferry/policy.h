/*
 * ferry/policy.h: running a destination's Lua policy from a plugin (ABI 1.2).
 *
 * A destination may name a script (`policy: policies/x.lua`) that returns a table of
 * hooks (DESIGN.md, lua/README.md). Core owns the Lua states (one per worker, no
 * locks), the sandbox, the instruction budget and the memory cap; a plugin only asks
 * "may this go on, and what did the policy change?".
 *
 * Every call returns:
 *   FERRY_OK      the verdict is in *v now (most hooks finish at once);
 *   FERRY_EAGAIN  the hook waits for I/O (ferry.http.request): cb(c, v, arg) runs later
 *                 on the connection's worker, never from inside this call;
 *   FERRY_ENOTFOUND  the destination has no policy or no such hook: go on as if allowed.
 * A policy that errors, loops past its budget or exceeds its memory cap yields a
 * verdict with allowed = false, error = true, code 500 (HTTP) / 80 other (LDAP), and
 * reason "policy-error"; core logs destination, script:line and the message. Only that
 * request fails.
 */
#ifndef FERRY_POLICY_H
#define FERRY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/api.h>
#include <ferry/conn.h>
#include <ferry/dest.h>
#include <ferry/err.h>

struct ferry_policy_verdict {
    bool allowed;
    bool error;             /* the policy failed (runtime error, budget, memory) */
    int  code;              /* ferry.deny's code: HTTP status, LDAP result code */
    char reason[256];       /* ferry.deny's reason, or "policy-error" */
};

typedef void (*ferry_policy_cb)(struct ferry_conn *c, const struct ferry_policy_verdict *v,
                                void *arg);

/* Whether d's policy defines hook ("on_request", "on_response", "on_connect",
 * "on_ldap"). Cheap: plugins use it to skip building arguments. */
FERRY_API bool ferry_policy_has(struct ferry_conn *c, const struct ferry_dest *d,
                                const char *hook);

/* on_connect(conn, dest): conn.client, conn.tenant, conn.target ("host:port"). */
FERRY_API int ferry_policy_connect(struct ferry_conn *c, const struct ferry_dest *d,
                                   const char *target, struct ferry_policy_verdict *v,
                                   ferry_policy_cb cb, void *arg);

/* on_ldap(op, dest): op.type is one of bind search add modify delete modrdn compare
 * extended (also abandon unbind, which cannot be denied); op.dn the operation's DN
 * ("" for the root DSE or when the operation has none). */
FERRY_API int ferry_policy_ldap(struct ferry_conn *c, const struct ferry_dest *d,
                                const char *op_type, const char *dn,
                                struct ferry_policy_verdict *v, ferry_policy_cb cb, void *arg);

/* HTTP hooks. The plugin fills a request (or response) description; the hook may
 * change method, path, query and headers (status and headers for a response). The
 * strings the hook sets are owned by the struct afterwards (malloc'ed by core):
 * release them with ferry_policy_http_free(). headers is an array the plugin
 * provides; a hook may add fields up to headers_cap (more is an error of the policy),
 * and a removed field has name == NULL. Names compare case-insensitively. Start from
 * FERRY_POLICY_HTTP_INIT. */
struct ferry_policy_header {
    const char *name;
    const char *value;
    bool        owned;      /* set by core: name/value were allocated by the policy */
};

struct ferry_policy_http {
    /* Request (on_request); response (on_response) uses status and headers. */
    const char                  *method;
    const char                  *path;      /* no query */
    const char                  *query;     /* "" if none */
    const char                  *client;    /* "ip:port" */
    const char                  *tenant;    /* or NULL */
    int                          status;    /* on_response */
    struct ferry_policy_header  *headers;
    size_t                       nheaders;
    size_t                       headers_cap;
    uint32_t                     owned;     /* set by core: which of method/path/query
                                               were replaced (FERRY_POLICY_OWN_*) */
    uint32_t                     size;      /* ABI 1.3: sizeof(struct ferry_policy_http) */
    /* ABI 1.4 (FERRY_HAS_FIELD): */
    struct ferry_user           *user;      /* borrowed: req.user (on_request); NULL: nil */
};
#define FERRY_POLICY_HTTP_INIT FERRY_STRUCT_INIT(ferry_policy_http)
#define FERRY_POLICY_OWN_METHOD 0x1u
#define FERRY_POLICY_OWN_PATH   0x2u
#define FERRY_POLICY_OWN_QUERY  0x4u

FERRY_API int ferry_policy_request(struct ferry_conn *c, const struct ferry_dest *d,
                                   struct ferry_policy_http *req,
                                   struct ferry_policy_verdict *v, ferry_policy_cb cb, void *arg);
FERRY_API int ferry_policy_response(struct ferry_conn *c, const struct ferry_dest *d,
                                    struct ferry_policy_http *res,
                                    struct ferry_policy_verdict *v, ferry_policy_cb cb,
                                    void *arg);
/* Free what a hook allocated in h (owned strings); h itself stays the plugin's. */
FERRY_API void ferry_policy_http_free(struct ferry_policy_http *h);

#endif
