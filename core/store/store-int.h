/*
 * store-int.h: the store's state, shared by store.c (the mirror: snapshot, watch,
 * lease, cache) and store-write.c (the destination API's writes). Main thread only.
 */
#ifndef FERRY_STORE_INT_H
#define FERRY_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dest/dest-int.h"
#include "store/store.h"
#include "util/errlist.h"

#define CALL_TIMEOUT_MS 5000        /* every unary etcd call */

struct event;
struct etcd;
struct etcd_call;
struct etcd_watch;

struct entry {
    char    *key;           /* owns: the full etcd key */
    char    *tenant;        /* owns */
    char    *name;          /* owns */
    char    *value;         /* owns: the last good JSON text; secret */
    size_t   value_len;
    int64_t  mod_rev;
    struct ferry_dest dest; /* owns: that value, validated (copied into registries) */
};

struct replica {
    char    *id, *tunnel;
    unsigned slots;
};

struct ferry_store_wait {
    struct ferry_store_wait *next;
    struct ferry_store      *s;
    struct etcd_call        *call;
    store_write_cb           cb;
    void                    *arg;
    struct store_write_copy {
        enum store_op op;
        char         *name;
        int64_t       if_match;
    }                       *w;
    size_t                   n;
    int64_t                  revision;  /* committed at; waits until applied */
    struct event            *timer;     /* the apply wait's deadline */
    bool                     cancelled;
};

struct ferry_store {
    struct event_base       *base;
    struct etcd             *etcd;
    const struct ferry_conf *conf;      /* borrowed: tenants, dir */
    struct store_hooks       hooks;
    char                    *prefix;    /* owns: "<prefix>/" */
    char                    *dest_prefix, *rep_prefix;  /* owns */
    char                    *cache_path;
    char                     id[96];
    char                    *self_value;    /* owns: this replica's JSON */

    struct entry            *entries;   /* sorted by key */
    size_t                   n, cap;
    struct replica          *replicas;
    size_t                   nreplicas;

    struct ferry_registry   *registry;  /* one reference: what we serve */
    int64_t                  revision;  /* last applied */
    bool                     have_data;
    bool                     up;        /* the watch is live and the lease is kept */
    bool                     stopping;
    bool                     ever_up;
    uint64_t                 events, resyncs, rejected;

    /* The cycle. */
    struct etcd_call        *snap_call;
    struct etcd_watch       *watch;
    bool                     watch_live;    /* etcd said "created" */
    struct event            *watch_deadline;/* a new watch's "created" is late */
    struct event            *retry;         /* the next snapshot or watch attempt */
    uint32_t                 backoff_ms;
    bool                     need_snapshot;
    unsigned                 snap_failures;
    struct event            *apply_ev;      /* coalesces changes into one apply */
    bool                     dirty, replicas_dirty;
    bool                     revalidate;    /* the tenants changed: validate again */

    /* This replica's key and lease. */
    int64_t                  lease;
    struct etcd_call        *lease_call;
    struct event            *keepalive;
    bool                     lease_ok;

    /* The cache file. */
    struct event            *cache_ev;
    time_t                   cache_written;

    struct ferry_store_wait *waits;     /* writes committed, waiting to be applied */
    struct ferry_errlist    *errs;      /* owns: reused by every validation (it is big) */
};

/* store.c: etcd answers or not (logs the change, feeds ferry_store_up). */
void store_set_up(struct ferry_store *s, bool up, const char *why);
/* store-write.c: answer the writes this replica has applied by now. */
void store_waits_check(struct ferry_store *s);
/* store-write.c: answer one write (unless cancelled) and free it. */
void store_wait_answer(struct ferry_store_wait *wt, int status, const char *why,
                       const char *name);

#endif
