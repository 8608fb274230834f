/*
 * gateway.h: the gateway side of the tunnel.
 *
 * Main thread: the tunnel listener. A connector connects, completes TLS 1.3 and sends
 * its registration (tenant, token, location, version, connector id, slot, virtual
 * system names). A good registration is answered with the number of slots (= gateway
 * workers) and the connection is handed to worker `slot`. A connector opens one
 * connection per slot, so every worker has its own tunnel to every connector and a
 * proxied connection never leaves the worker that accepted it.
 *
 * Several replicas (DESIGN.md, "Several replicas"): main hands the listener the live
 * replicas it learns from the store. Registration replies name this replica and list
 * them (to connectors that announce they follow the list); when the list changes,
 * each worker tells the connectors on its slot-0 tunnels with a notice
 * (POST /.ferry/replicas, replicas.h has the format).
 *
 * Worker thread: the registry of live tunnels by (tenant, location) and stream opening
 * for OnPremise destinations. Each worker embeds a struct gw_worker and fills in how to
 * reach it (its loop, a post) and two hooks; this room never sees struct worker.
 */
#ifndef FERRY_TUNNEL_GATEWAY_H
#define FERRY_TUNNEL_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/err.h>

#include "util/post.h"

struct event_base;
struct ferry_conf;
struct gw_listener;
struct gw_handoff;
struct gw_tunnel;
struct gw_owner;
struct stats_slot;
struct tstream;
struct tunnel;

/* A worker's share of the gateway: the tunnels handed to it. The owner (worker/)
 * fills the first block before the first handoff; the rest is this room's. */
struct gw_worker {
    unsigned           id;              /* the worker's index: its slot, its stats cell */
    struct event_base *base;            /* its loop */
    struct ferry_post  post;            /* runs a handoff on that worker */
    /* A tunnel's peer sent GOAWAY: idle streams kept on it for reuse must go. */
    void             (*goaway)(struct gw_worker *gw, struct tunnel *t);
    /* The last tunnel closed while draining (the worker may be done). */
    void             (*idle)(struct gw_worker *gw);
    bool               draining;        /* the owner sets it: adopt no more tunnels */
    struct gw_tunnel  *tunnels;         /* live tunnels */
};

/* Where the listener hands a registered connection: the share of worker `slot`. */
struct gw_slots {
    unsigned           n;               /* workers: a connector opens one tunnel each */
    struct gw_worker *(*at)(void *ctx, unsigned slot);
    void              *ctx;
};

/* Main thread. slots is copied. */
int  gw_listener_start(struct event_base *base, const struct ferry_conf *conf,
                       const struct gw_slots *slots, struct gw_listener **out,
                       struct ferry_err *err);
/* A reload: new tenants and certificates apply to the next registration. */
int  gw_listener_set_conf(struct gw_listener *g, const struct ferry_conf *conf,
                          struct ferry_err *err);
/* The same configuration text loaded again (a store change: new destinations): the
 * tenants the next registration is checked against live in this conf now. The TLS
 * settings are unchanged, so nothing is read from disk. The old conf must not be used
 * after this: the caller frees it. */
void gw_listener_use_conf(struct gw_listener *g, const struct ferry_conf *conf);
void gw_listener_drain(struct gw_listener *g);      /* refuse new registrations */

/* One live replica as the store knows it (borrowed strings, copied by the call). */
struct gw_replica {
    const char *id;                     /* the store's replica id */
    const char *tunnel;                 /* its tunnel.advertise, "host:port" */
    unsigned    slots;                  /* its workers (informative: connectors learn
                                           the count from each replica's reply) */
};
/* Main thread. This replica's id (the store's; stable for the process). Replies name
 * it ("replica"), and the listener adds itself (with tunnel.advertise) to a list that
 * lacks it. Unset: replies name no replica. Call it before the first
 * gw_listener_set_replicas (the list it sends names its sender). */
void gw_listener_set_id(struct gw_listener *g, const char *id);
/* Main thread: the live replicas, this one included or not. Copied. Entries with a
 * bad id or address are left out (logged), duplicates by id too. The next
 * registration replies with the list; connectors already registered hear it within
 * a second (at once, unless it is the list they have). n == 0: no store, replies carry
 * no list, as without replicas. FERRY_OK; FERRY_ELIMIT when more than 256 replicas
 * or more than 32 KiB of JSON (the previous list stays); FERRY_ENOMEM. */
int  gw_listener_set_replicas(struct gw_listener *g, const struct gw_replica *r, size_t n);
/* Neither may be called after gw_listener_stop (stop the store's callbacks first). */
void gw_listener_stop(struct gw_listener *g);

/* Worker thread. */
void gw_worker_shutdown(struct gw_worker *gw);                 /* GOAWAY every tunnel */
void gw_worker_close_all(struct gw_worker *gw);
unsigned gw_worker_streams(struct gw_worker *gw);

/* Who waits for a gateway stream (a connection, an upstream stream of the io layer):
 * embed it and recover the container in the callbacks. */
struct gw_owner_ops {
    void (*response)(struct gw_owner *o, int status, const char *error);  /* 200 = open */
    void (*ended)(struct gw_owner *o, const char *outcome);   /* the stream is gone */
    void (*bytes)(struct gw_owner *o, uint64_t in, uint64_t out);          /* optional */
};
struct gw_owner {
    const struct gw_owner_ops *ops;
};

struct gw_stream_req {
    const char *tenant, *location;
    const char *authority;          /* "host:port" */
    const char *protocol;           /* what the connector checks: "http", "tcp", ... */
    bool        must_expose;        /* FERRY_ENOTFOUND unless a connector announced it */
    const char *user;               /* the calling user's claims (compact JSON) or NULL */
    int        *fd;                 /* the socket end, as tstream_open() */
    bool       *readable, *writable;
};

/* Open a stream through a tunnel of (tenant, location) on gw's worker. FERRY_OK (the
 * result arrives through o->ops; *ts and *tstats are set, tstats->active counted);
 * FERRY_ENOTUNNEL when no live tunnel serves (tenant, location); with must_expose,
 * FERRY_ENOTFOUND when tunnels exist but no connector announced that virtual host. */
int  gw_open_stream(struct gw_worker *gw, struct gw_owner *o, const struct gw_stream_req *r,
                    struct tstream **ts, struct stats_slot **tstats);

/* Main thread, no I/O: check a connector's registration (the JSON after its 4-byte
 * length) against conf's tenants, nslots the number of slots, peer its address. The
 * handoff to give its worker (gw_handoff_free if it goes nowhere), or NULL and *why
 * (static text, sent back to the connector). tests/fuzz/tunnel_hello_fuzz.c calls it. */
struct gw_handoff *gw_hello_check(const struct ferry_conf *conf, unsigned nslots,
                                  const char *peer, const uint8_t *data, size_t len,
                                  const char **why);
void gw_handoff_free(struct gw_handoff *h);

#endif
