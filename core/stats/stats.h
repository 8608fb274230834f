/*
 * stats.h: counters for /metrics, per listener, destination and tunnel.
 *
 * A low room: workers, the tunnel and (through core) plugins count into it; the
 * admin room renders it (admin/metrics.c) and is the only reader.
 *
 * A slot is created on the main thread (at load or reload) and lives until exit, so
 * a worker may keep a pointer to it across reloads. Each worker writes only its own
 * cell (single writer: relaxed load + store, no locked instructions on the data path);
 * the admin thread sums the cells when scraped. `active` is the one shared counter,
 * because max_connections is a per-listener bound across workers.
 */
#ifndef FERRY_STATS_H
#define FERRY_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_MAX_WORKERS 64

/* Request latency histogram bounds, microseconds (Prometheus `le`, in seconds). */
#define STATS_BUCKETS 10
extern const uint64_t stats_bucket_us[STATS_BUCKETS];

/* STATS_TENANT: `active` is the tenant's open connections (tenants[].max_connections),
 * conns_rejected the ones refused over it. */
enum stats_kind { STATS_LISTENER, STATS_DEST, STATS_TUNNEL, STATS_TENANT };

/* Why a listener refused a client (DESIGN.md "Limits and source addresses"): the
 * `reason` label of ferry_listener_refused_total, in this order. */
enum stats_refused {
    STATS_REFUSED_NOT_ALLOWED,         /* allow: the source (or its PROXY address) */
    STATS_REFUSED_PROXY_HEADER,        /* proxy_protocol: no valid header in time */
    STATS_REFUSED_RATE_LIMITED,        /* rate: over the client's budget */
    STATS_REFUSED_REASONS
};
extern const char *const stats_refused_reasons[STATS_REFUSED_REASONS];

struct stats_cell {
    _Atomic uint64_t conns_total;
    _Atomic uint64_t conns_rejected;   /* over max_connections */
    _Atomic uint64_t conns_failed;     /* upstream could not be opened */
    _Atomic uint64_t accept_nofd;      /* listeners: accept failed, EMFILE or ENFILE */
    _Atomic uint64_t refused[STATS_REFUSED_REASONS];   /* listeners only */
    _Atomic uint64_t bytes_in;         /* client -> upstream */
    _Atomic uint64_t bytes_out;        /* upstream -> client */
    /* Requests of message-level plugins (ferry_conn_request_done); status classes are
     * counted per (listener, destination) in struct stats_pair. */
    _Atomic uint64_t req_hist[STATS_BUCKETS + 1];   /* listeners: latency; last = +Inf */
    _Atomic uint64_t req_us_sum;       /* listeners: total latency, microseconds */
} __attribute__((aligned(64)));

struct stats_slot {
    struct stats_slot *next;
    struct stats_slot *hnext;          /* the next in its bucket of the name index */
    enum stats_kind    kind;
    unsigned           ncells;         /* cell[] entries: workers when it was made */
    char              *name;           /* tunnels: "tenant/location" */
    char              *tenant, *location; /* tunnels only */
    atomic_int         active;         /* connections, or streams for tunnels */
    atomic_int         tunnels;        /* tunnels only: live tunnel connections */
    struct stats_cell  cell[];         /* one per worker: ferry_stats_set_workers() */
};

/* Find or create (main thread only). NULL when out of memory. */
struct stats_slot *ferry_stats_slot(enum stats_kind kind, const char *name);
/* How many workers count into the slots made from now on (default and at most
 * FERRY_MAX_WORKERS; a slot made earlier keeps its cells). Workers write cell[w] with
 * w below this, readers read below min(workers, ncells). A slot per destination is a
 * cell per worker: with thousands of destinations, cells for workers that do not
 * exist were most of the memory (12 KiB a destination). */
void               ferry_stats_set_workers(unsigned n);
/* The slot of a (tenant, location) pair's tunnels (main thread only). For tunnel slots
 * conns_total counts streams, conns_rejected refusals by the connector, conns_failed
 * other stream failures. */
struct stats_slot *ferry_stats_tunnel_slot(const char *tenant, const char *location);
void               ferry_stats_free_all(void);

static inline void
stats_add(_Atomic uint64_t *ctr, uint64_t n)
{
    atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* One finished request's latency on listener slot s. Worker w only. */
void stats_request(struct stats_slot *s, unsigned w, uint64_t us);

/* Requests per (listener, destination) pair: created on first use by any thread (a
 * mutex guards the list, never the counters), kept until exit. dest may be NULL. */
struct stats_pair {
    struct stats_pair       *next;
    const struct stats_slot *listener, *dest;
    struct {
        _Atomic uint64_t cls[5];        /* HTTP status classes 1xx..5xx */
        _Atomic uint64_t ldap[2];       /* LDAP operations: success, failure */
    } __attribute__((aligned(64))) cell[FERRY_MAX_WORKERS];
};
struct stats_pair *stats_pair_get(const struct stats_slot *listener, const struct stats_slot *dest);

/* A plugin's counter (ferry/metrics.h: struct ferry_counter is this). Created on the
 * main thread, kept until exit; one cell per worker, single writer. */
struct ferry_counter {
    struct ferry_counter *next;
    char                 *plugin, *name, *help;
    struct {
        _Atomic uint64_t v;
    } __attribute__((aligned(64))) cell[FERRY_MAX_WORKERS];
};
/* Find (plugin, name) or create it (main thread only): FERRY_OK and *out, FERRY_ELIMIT
 * when plugin has max counters already, FERRY_ENOMEM. */
int stats_counter_get(const char *plugin, const char *name, const char *help, size_t max,
                      struct ferry_counter **out);
/* The first counter (follow ->next; main thread only), sorted by name then plugin. */
const struct ferry_counter *stats_counters(void);

/* JWT validations (auth/jwt.h), per thread: cell w for worker w, cell
 * STATS_JWT_MAIN for the main thread (the destination API). Each thread writes only its
 * own cell; the renderer sums them. verifications counts signatures actually checked
 * (cache misses that got that far): the number a bench compares with tokens x workers. */
#define STATS_JWT_MAIN    FERRY_MAX_WORKERS
#define STATS_JWT_REASONS 9
/* "malformed", "bad-algorithm", "unknown-key", "bad-signature", "wrong-issuer",
 * "wrong-audience", "expired", "not-yet-valid", "other" (static strings). */
extern const char *const stats_jwt_reasons[STATS_JWT_REASONS];
struct stats_jwt_cell {
    _Atomic uint64_t verifications;
    _Atomic uint64_t cache_hits;
    _Atomic uint64_t refused[STATS_JWT_REASONS];
} __attribute__((aligned(64)));
/* The cell of thread (a worker id, or STATS_JWT_MAIN); lives until exit. */
struct stats_jwt_cell *stats_jwt_cell(unsigned thread);
/* Count one refusal under reason (an auth/jwt.h reason; anything else is "other"). */
void stats_jwt_refused(struct stats_jwt_cell *c, const char *reason);

/* Token service fetches (auth/tokens.c: OAuth2 destinations, policies' token flows),
 * counted when a fetch ends, on whichever thread ran it: a token came back (fetched) or
 * not (failed: an error, a refusal, an answer without a token). Lives until exit. */
struct stats_tokens {
    _Atomic uint64_t fetched;
    _Atomic uint64_t failed;
};
struct stats_tokens *stats_tokens(void);

/* For the renderer (main thread only, where slots are added): the first slot of the
 * list (follow ->next). */
const struct stats_slot *ferry_stats_slots(void);
/* fn(p, arg) for every pair, under the pairs' lock (fn must not call stats_pair_get). */
void stats_pairs_visit(void (*fn)(const struct stats_pair *p, void *arg), void *arg);

#endif
