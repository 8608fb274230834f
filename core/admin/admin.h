/*
 * admin.h: the admin HTTP listener (health, readiness, metrics and, for the gateway,
 * the destination API). Runs on the main thread's event_base, never on a worker.
 */
#ifndef FERRY_ADMIN_H
#define FERRY_ADMIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ferry/err.h>

struct event_base;
struct ferry_admin;
struct worker;
struct ferry_conf;
struct ferry_errlist;
struct ferry_store;
struct gen;

/* Process-level facts the admin reports; owned by main, read at scrape time. */
struct ferry_admin_state {
    bool     ready;             /* false while starting or draining */
    unsigned nworkers;
    uint64_t generation;
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    const char *role;           /* "gateway" | "connector" */
    atomic_int *live;           /* connector: tunnels up; ready only while > 0 */
    atomic_int *replicas;       /* connector: gateway replicas in the latest list, or NULL */
    /* Connector: principal propagation's user certificates, or NULL. */
    _Atomic uint64_t *pp_issued, *pp_reused, *pp_refused;
    /* Connector with an audit log: failed audit writes so far (audit_errors(audit_arg)),
     * or NULL. */
    uint64_t        (*audit_errors)(void *audit_arg);
    void             *audit_arg;
    /* Gateway only; the connector leaves them NULL (no destination API). */
    const struct ferry_conf *conf;   /* the current generation's: main keeps it current */
    struct gen *gen;                 /* borrowed: that generation (its tenants' JWT keys);
                                        main keeps it current with conf */
    struct worker *token_worker;     /* borrowed: where authTokens are retrieved (Lua runs
                                        on workers only); NULL: no retrieval */
    /* Re-read the configuration from disk and switch to it, as SIGHUP does. FERRY_OK:
     * the new generation is built (st->conf is its conf) and handed to the workers;
     * applied(arg) runs later on the main thread once every worker serves it, or never
     * when the process stops first (ferry_admin_stop answers whatever still waits).
     * Otherwise errs says why and the running configuration is unchanged. */
    /* With `store:` (gateway): the etcd mirror, for readiness, metrics and the
     * destination API's writes; NULL: destinations from files. */
    struct ferry_store *store;
    int   (*reload)(void *self, struct ferry_errlist *errs, void (*applied)(void *arg),
                    void *arg);
    void   *reload_self;
};

int  ferry_admin_start(struct event_base *base, const char *listen,
                       const struct ferry_admin_state *st, struct ferry_admin **out,
                       struct ferry_err *err);
/* Answers 503 to requests still waiting (token retrieval, a reload), then closes. */
void ferry_admin_stop(struct ferry_admin *a);

#endif
