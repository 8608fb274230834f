/*
 * store.h: one truth for several replicas — destinations (and the live replicas) in
 * etcd, mirrored in memory (DESIGN.md "Several replicas: one truth in etcd").
 *
 * A replica reads one snapshot of `<prefix>/` (a range read), then watches from the
 * snapshot's revision + 1 (with progress_notify) and applies each change to its own
 * copy; every change hands main a new registry through the same path a SIGHUP takes,
 * so lookups never touch etcd and live connections keep their generation. A watch
 * cancelled for compaction, or a revision going backwards (etcd restored from a
 * backup), reads the snapshot again. etcd unreachable: the replica keeps serving what
 * it has (degraded), and resumes from the last applied revision when etcd is back.
 *
 * Keys: `<prefix>/destinations/<tenant>/<Name>` (the properties as the destination
 * API's destinationConfiguration, a JSON object of strings; `<Name>@instance` for an
 * instance-level destination: a Name never holds '@') and `<prefix>/replicas/<id>`
 * (`{"tunnel":"host:port","slots":N,"version":"…"}` under a 10 s lease that this
 * replica keeps alive). A value that does not parse, or fails the validation a file
 * would, or is over 1 MiB, is logged with its key, counted and skipped: the last good
 * version of that destination stays in use.
 *
 * Main thread only. The store room sits above fetch (its HTTP client), dest and conf
 * (validation, the configuration) and below worker and admin, its users.
 */
#ifndef FERRY_STORE_STORE_H
#define FERRY_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <ferry/err.h>

struct event_base;
struct evdns_base;
struct ferry_conf;
struct ferry_registry;
struct ferry_tls_cache;
struct ferry_store;
struct ferry_store_wait;

#define STORE_MAX_VALUE (1024 * 1024)   /* bytes of one destination's JSON */

/* One live replica, as registered in etcd. */
struct store_replica {
    const char *id;
    const char *tunnel;         /* "host:port" connectors dial; "" without a tunnel */
    unsigned    slots;          /* its workers: tunnels per connector */
};

/* What this replica registers about itself. */
struct store_self {
    const char *tunnel;         /* advertise address, or NULL (no tunnel) */
    unsigned    slots;
    const char *version;
};

struct store_hooks {
    /* A new set of destinations to serve (borrowed: take a reference to keep it). */
    void (*apply)(void *arg, struct ferry_registry *reg);
    /* The live replicas changed (this one included). Optional. */
    void (*replicas)(void *arg, const struct store_replica *r, size_t n);
    void  *arg;
};

/* Start: read the cache if there is one (then apply runs before this returns, with
 * what it held), then connect in the background. conf: the running configuration
 * (its store section, tenants and directory; see ferry_store_set_conf). */
int  ferry_store_start(struct event_base *base, struct evdns_base *dns,
                       struct ferry_tls_cache *tls, const struct ferry_conf *conf,
                       const struct store_self *self, const struct store_hooks *hooks,
                       struct ferry_store **out, struct ferry_err *err);
/* A reload: tenants and the directory for relative paths come from conf (borrowed
 * until the next call); the destinations are validated again and applied. The store
 * section itself changes with a restart only. */
void ferry_store_set_conf(struct ferry_store *s, const struct ferry_conf *conf);
/* Draining: remove this replica's key (revoke its lease) so connectors drop it now. */
void ferry_store_leave(struct ferry_store *s);
void ferry_store_free(struct ferry_store *s);

/* Call hooks.replicas again soon with the current list (a listener started later). */
void ferry_store_replicas_again(struct ferry_store *s);

/* The destinations to serve now (borrowed), or NULL before a snapshot or cache. */
struct ferry_registry *ferry_store_registry(const struct ferry_store *s);

struct store_stats {
    bool     up;                /* etcd answers and the watch is live */
    bool     have_data;         /* a snapshot (or the cache) was applied: ready */
    int64_t  revision;          /* the last applied etcd revision */
    uint64_t events;            /* changes applied from the watch */
    uint64_t resyncs;           /* snapshots read again */
    uint64_t rejected;          /* bad values skipped */
    size_t   replicas;          /* live replicas, this one included */
    const char *replica_id;
};
void ferry_store_stats(const struct ferry_store *s, struct store_stats *out);

/* A destination's mod_revision in etcd (its ETag), or 0 when the store has none. */
int64_t ferry_store_etag(const struct ferry_store *s, const char *tenant, const char *name,
                         bool instance);

/* The key suffix of an instance-level destination. */
#define STORE_INSTANCE_SUFFIX "@instance"

/* ---- writes (the destination API) ---- */

enum store_op { STORE_CREATE, STORE_UPDATE, STORE_DELETE };

struct store_write {
    enum store_op op;
    const char   *tenant;
    const char   *name;
    bool          instance;     /* an instance-level destination */
    json_t       *value;        /* borrowed: the properties (not for DELETE) */
    int64_t       if_match;     /* > 0: only if the key's mod_revision is this (If-Match) */
};

/* The outcome: status 200 (or 201 for creates) once this replica applied the change,
 * 404 (no such destination), 409 (a create of an existing one), 412 (If-Match did not
 * hold), 503 (etcd unreachable), 500 (etcd said no); why for the non-2xx (no values).
 * name: the destination the refusal is about, or NULL. */
typedef void (*store_write_cb)(void *arg, int status, const char *why, const char *name,
                               int64_t revision);

/* Up to 128 writes in one etcd transaction: all or none. cb runs once, from the loop.
 * FERRY_OK, or FERRY_ENOMEM (cb never runs). */
int  ferry_store_write(struct ferry_store *s, const struct store_write *w, size_t n,
                       store_write_cb cb, void *arg, struct ferry_store_wait **out);
/* The caller goes away: cb will not run (the write itself may still happen). */
void ferry_store_write_cancel(struct ferry_store_wait *wt);

#endif
