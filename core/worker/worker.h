/*
 * worker.h: generations, workers and listeners inside core.
 *
 * A generation is one loaded configuration with its listeners (plugin state, stats
 * slot, one listening socket per worker). SIGHUP builds a new generation and hands it
 * to every worker; connections keep the generation they were accepted in, so live
 * connections never see a reload. Sockets whose address survives a reload are dup()ed
 * into the new generation: same kernel socket, same accept queue, nothing dropped.
 *
 * Workers are share-nothing: each owns an event_base, a DNS resolver, a pipe pool and
 * its connections. Every worker has its own SO_REUSEPORT socket per listener, so the
 * kernel spreads new connections across workers without a shared accept lock, and a
 * connection stays on the worker that accepted it until it closes.
 */
#ifndef FERRY_WORKER_H
#define FERRY_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include <ferry/plugin.h>

#include "auth/jwt.h"
#include "conf/conf.h"
#include "lua/policy-home.h"
#include "stats/stats.h"
#include "tunnel/gateway.h"
#include "util/post.h"

struct evdns_base;
struct ferry_conn;
struct ferry_tls_cache;
struct ferry_io;
struct loaded_plugin;
struct ferry_policy_set;
struct ferry_rate_table;
struct policy_vm;

/* One config listener in one generation: shared by all workers, read-only. */
struct ferry_listener {
    struct ferry_conf_listener  *lc;        /* borrowed from gen->conf */
    const struct ferry_plugin   *plugin;    /* borrowed: plugins stay loaded until exit */
    void                        *pstate;    /* plugin's listener state */
    bool                         opened;    /* listener_open succeeded */
    struct stats_slot           *stats;     /* lives until exit */
    int                         *fds;       /* owns: one socket per worker */
    struct ferry_rate_table     *rate;      /* owns: `rate:`'s per-client buckets, shared
                                               by the workers (util/rate.h: bounded,
                                               locked by stripes); NULL: no rate, or not
                                               serving. A reload starts them afresh. */
};

/* One tenant's `jwt:` in one generation (gen-jwt.c). Workers and the main thread read
 * its keys; only the main thread fetches a jwks_url and swaps them. */
struct gen_jwt {
    const struct ferry_conf_tenant *t;      /* borrowed from gen->conf */
    struct ferry_jwt_conf   cf;             /* borrows t->jwt's strings */
    pthread_mutex_t         mu;             /* guards keys only: held to take a ref */
    struct ferry_jwks      *keys;           /* ref; NULL until a jwks_url's first answer */
    /* jwks_url only, main thread: the first fetch when the generation starts serving,
     * and the refetches an unknown kid asks for (at most one a minute: their own
     * source, so the first fetch does not hold back the first refetch). */
    struct ferry_jwks_source *boot, *refetch;
    _Atomic int64_t         asked_s;        /* last refetch request (any thread), unix s */
    struct gen             *g;              /* borrowed: the generation holding this */
};

struct gen {
    atomic_uint            refs;            /* main + each worker's wgen */
    uint64_t               id;
    struct ferry_conf     *conf;            /* owns */
    struct ferry_policy_set *policies;      /* owns (lua/): its scripts; NULL when no
                                               destination has one, or not loaded (a
                                               reload's validation generation) */
    struct ferry_listener *listeners;       /* owns */
    size_t                 nlisteners;
    unsigned               nworkers;
    struct stats_slot    **dest_stats;      /* owns the array: one per registry entry */
    struct stats_slot    **tenant_stats;    /* owns the array: one per conf->tenants entry;
                                               the slots live until exit, so a count
                                               outlives a reload */
    bool                   serving;         /* has sockets: a gateway's, not a check's */
    struct gen_jwt        *jwt;             /* owns: one per tenant with `jwt:` */
    size_t                 njwt;
    struct ferry_jwks_fetch jwks_fetch;     /* main's loop for jwks_url fetches; base NULL
                                               until ferry_gen_jwt_start */
};

/* A listener's socket as one worker watches it. */
struct wlistener {
    struct wgen           *wg;
    struct ferry_listener *l;
    int                    fd;              /* borrowed from l->fds[worker] */
    struct event           ev;
    bool                   armed;
    /* Out of fds (EMFILE/ENFILE): the readable socket would wake the loop again at once,
     * so it is unwatched for backoff_ms (100 doubling to 1000) and watched again. */
    struct event           backoff;         /* timer */
    bool                   paused;          /* ev is off until backoff fires */
    uint32_t               backoff_ms;      /* the next pause; 0: none yet */
    uint64_t               fd_refusals;     /* since the last log line */
    int64_t                fd_logged_ms;    /* monotonic ms of that line */
    int64_t                refused_log_s;   /* when this worker last logged a refusal */
    uint64_t               refused_quiet;   /* refusals since, not logged (at most one
                                               line a second per listener and worker) */
};

/* A worker's view of a generation; refs counts its connections (+1 while current). */
struct wgen {
    struct worker    *w;
    struct gen       *g;                    /* ref */
    unsigned          refs;                 /* worker-local, no atomics */
    struct wlistener *wl;                   /* owns, g->nlisteners entries */
    struct policy_vm *policy;               /* owns: Lua policies (lua/), on first use */
};

#define FERRY_PIPE_POOL_MAX 64

struct worker {
    unsigned           id;
    pthread_t          thread;
    struct event_base *base;               /* owns */
    struct evdns_base *dns;                /* owns */
    struct ferry_post  post;               /* worker_post, for rooms below that answer
                                              later (the TLS context cache) */
    struct ferry_tls_cache *tls;           /* borrowed: main's upstream TLS contexts */
    struct policy_home home;               /* base, dns, post and tls, for lua/ */
    struct wgen       *cur;                /* the generation new connections get */
    struct event       cmd_ev;             /* main -> worker commands (cmd_fd readable) */
    pthread_mutex_t    mu;                 /* guards the command fields below */
    struct gen        *cmd_gen;            /* ref: switch to this generation */
    bool               cmd_drain;          /* stop accepting; exit when idle */
    bool               cmd_stop;           /* close everything now and exit */
    struct wpost      *cmd_posts;          /* owns: functions to run on this worker */
    struct wpost     **cmd_posts_tail;
    struct gw_worker   gw;                 /* its tunnels (gateway role; tunnel/) */
    bool               draining;
    uint64_t           next_conn_id;
    size_t             nconns;
    struct ferry_conn *conns;              /* list of live connections (for stop) */
    int                pipes[FERRY_PIPE_POOL_MAX][2];  /* idle pipes, ready for splice */
    unsigned           npipes;
    size_t             pipe_size;          /* bytes asked with F_SETPIPE_SZ */
    struct event_base *main_base;          /* borrowed: to post frees to the main thread */
    int                cmd_fd;             /* eventfd: the base runs without locks */
    struct ferry_jwt_cache *jwt_cache;     /* owns: tokens this worker verified */
    struct ferry_io   *io_pool;            /* idle upstream streams (io.c) */
    unsigned           io_npool;
    struct ferry_io   *io_linger;          /* upstream streams ending gracefully (io.c) */
    uint8_t           *iobufs[32];         /* spare stream input buffers (io.c) */
    unsigned           niobufs;
    unsigned           ncommon;            /* common-timeout durations in use */
    uint32_t           common_ms[8];
    const struct timeval *common_tv[8];
};

/* Run fn(arg, true) on worker w's thread, from its loop, soon (any thread may call).
 * If the worker stops first, fn(arg, false) runs instead on the stopping thread: it
 * must only release arg then. FERRY_OK or FERRY_ENOMEM. */
struct wpost;
int  worker_post(struct worker *w, void (*fn)(void *arg, bool run), void *arg);

/* The tunnel listener's way to worker i's share of the tunnels (struct gw_slots.at;
 * ws is the array given to ferry_workers_start). */
struct gw_worker *ferry_worker_gw(void *ws, unsigned i);

/* libevent's O(1) queue for a duration many timers share; NULL if the table is full. */
const struct timeval *worker_common_timeout(struct worker *w, uint32_t ms);

/* Generations (main thread). Takes conf and policies (NULL: load them here, unless
 * this is a validation generation of a running gateway) when it succeeds; on failure
 * the caller still owns both. */
struct gen *ferry_gen_new(struct ferry_conf *conf, struct ferry_policy_set *policies,
                          const struct gen *prev, unsigned nworkers,
                          struct ferry_errlist *errs);
void        ferry_gen_unref(struct gen *g, struct event_base *main_base);

/* Tenants' JWT keys (gen-jwt.c). */
/* Load every jwks file of g's tenants (errors, naming tenant and file, go to errs) and
 * take a jwks_url's last keys from prev when the URL is the same. Main thread. */
int  gen_jwt_load(struct gen *g, const struct gen *prev, struct ferry_errlist *errs);
void gen_jwt_free(struct gen *g);
/* A serving generation starts: fetch every jwks_url that has no keys yet, on the main
 * loop f describes (copied; f->done and f->arg are ferry's own). Main thread. */
void ferry_gen_jwt_start(struct gen *g, const struct ferry_jwks_fetch *f);
/* The jwt: of tenant id in g, or NULL. */
struct gen_jwt *gen_jwt_find(const struct gen *g, const char *id);
/* Verify token with j's current keys on the calling thread's cache, counting into cell
 * (auth/jwt.h's ferry_jwt_verify otherwise). An unknown kid of a jwks_url tenant asks the
 * main thread for a refetch when ask is true (at most once a minute). */
int  gen_jwt_verify(struct gen_jwt *j, struct ferry_jwt_cache *cache,
                    struct stats_jwt_cell *cell, bool ask, const char *token, size_t len,
                    json_t **claims, const char **reason);
/* Ask the main thread to refetch j's jwks_url (rate-limited; any thread). */
void gen_jwt_ask_refetch(struct gen_jwt *j);
/* Does text look like a compact JWS (three dot-separated parts, the first two
 * non-empty)? */
bool gen_jwt_looks_like(const char *text, size_t len);
/* Which tenant does token belong to: tenant_id's if given, else the first tenant with
 * jwt: that validates it. FERRY_OK and *out; FERRY_EDENIED with *reason the refusal
 * of the tenant whose check got furthest ("no-jwt-config": no tenant to try). The
 * refusal is counted; unknown kids ask for refetches. */
int  gen_jwt_tenant(struct gen *g, struct ferry_jwt_cache *cache, struct stats_jwt_cell *cell,
                    const char *tenant_id, const char *token, size_t len,
                    const struct ferry_conf_tenant **out, const char **reason);

/* Workers. */
/* pin: worker i runs on the i-th usable CPU only (worker_cpu_affinity: auto). tls: the
 * upstream TLS contexts (main owns it; it outlives the workers). */
int  ferry_workers_start(struct worker *ws, unsigned n, struct gen *g, struct event_base *main_base,
                         struct ferry_tls_cache *tls, bool pin);
void ferry_workers_switch(struct worker *ws, unsigned n, struct gen *g);
void ferry_workers_drain(struct worker *ws, unsigned n);
void ferry_workers_stop(struct worker *ws, unsigned n);
void ferry_workers_join(struct worker *ws, unsigned n);
size_t ferry_workers_active(struct worker *ws, unsigned n);

/* Drop one worker-local reference on a wgen (a connection closed). */
void wgen_unref(struct wgen *wg);

/* Pipe pool for splice (worker thread). */
int  worker_pipe_get(struct worker *w, int p[2]);
void worker_pipe_put(struct worker *w, int p[2]);

/* conn.c: a new client socket on worker w, listener wl. */
void ferry_conn_accepted(struct wlistener *wl, int fd, const struct sockaddr *sa, socklen_t len);
/* Close every connection of the worker at once (stop). */
void ferry_conn_close_all(struct worker *w);

#endif
