/*
 * replicas.h: the list of live gateway replicas as the tunnel carries it, and the
 * connector's decision of which replicas to keep links to. Pure: no I/O, no threads,
 * no clock, so both are unit-tested on their own (tests/unit/core/tunnel/).
 *
 * Wire format (a registration reply's fields, and the value of the `ferry-notice`
 * header of a gateway's POST /.ferry/replicas on a tunnel, session.h's tunnel_notify):
 *
 *   {"replica":"<id of the gateway that sends it>",
 *    "replicas":[{"id":"<replica id>","tunnel":"host:port"}, ...]}
 *
 * At most REPLICAS_MAX entries and REPLICAS_JSON_MAX bytes of JSON: the header travels
 * in one HPACK field, and nghttp2 refuses a field past 64 KiB as a connection error.
 */
#ifndef FERRY_TUNNEL_REPLICAS_H
#define FERRY_TUNNEL_REPLICAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

#define REPLICAS_MAX       256              /* entries in one list */
#define REPLICA_ID_MAX     64               /* bytes of an id, without the NUL */
#define REPLICAS_JSON_MAX  (32 * 1024)      /* bytes of the whole JSON object */
#define REPLICAS_PATH      "/.ferry/replicas"

struct replica {
    char     id[REPLICA_ID_MAX + 1];
    char     tunnel[FERRY_CONF_HOST_MAX + 10];  /* "host:port" / "[v6]:port" as given */
    char     host[FERRY_CONF_HOST_MAX];         /* for dialing and the certificate check */
    uint16_t port;
};

struct replica_list {
    struct replica *r;                          /* owns: n entries */
    size_t          n;
};

/* Is id a replica id: 1 to REPLICA_ID_MAX printable ASCII characters, no space, quote
 * or backslash (it is logged and compared, never interpreted)? */
bool replica_id_ok(const char *id);

/* Fill r from id and tunnel ("host:port"). NULL, or why the entry is unusable. */
const char *replica_set(struct replica *r, const char *id, const char *tunnel);

/* Read a list from JSON text (the reply, or a pushed header value): the object above.
 * FERRY_OK: *sender is the "replica" field ("" when absent), out holds the valid
 * entries in order (out->n may be 0) and *skipped counts entries left out (a bad id or
 * address, an id seen before; why names the first such reason). A list that is not
 * there at all ("replicas" absent) is FERRY_ENOTFOUND. Not JSON, not an object, a
 * "replicas" that is not an array, more than REPLICAS_MAX entries or more than
 * REPLICAS_JSON_MAX bytes: FERRY_EPROTO or FERRY_ELIMIT, why says which; out empty.
 * out->r is the caller's (replicas_list_free). */
int  replicas_parse(const char *json, size_t len, char sender[REPLICA_ID_MAX + 1],
                    struct replica_list *out, unsigned *skipped, const char **why);

/* The object above as compact JSON text (owned by the caller, NUL-terminated), *len
 * its length. sender may be NULL (no "replica" field); list NULL: no "replicas".
 * FERRY_ELIMIT past REPLICAS_JSON_MAX, FERRY_ENOMEM. */
int  replicas_json(const char *sender, const struct replica_list *list, char **out,
                   size_t *len);

void replicas_list_free(struct replica_list *l);

/* The gateway's list from the store's (gateway.h's struct gw_replica): entries with a
 * bad id or address, and repeated ids, are left out (skip(arg, entry, why) tells each);
 * this replica (self_id, self_tunnel) is added when missing and both are usable (no id
 * set, or a wildcard default `advertise`: not added). out->r is the caller's.
 * FERRY_OK or FERRY_ENOMEM. */
struct gw_replica;
int  replicas_from_store(const struct gw_replica *r, size_t n, const char *self_id,
                         const char *self_tunnel, struct replica_list *out,
                         void (*skip)(void *arg, const struct gw_replica *e, const char *why),
                         void *arg);

/* The connector's links. Configured gateways are always dialed (they are where it
 * starts, maybe a load balancer); each may have learned which replica answered it.
 * Every listed replica that no configured gateway reaches (by id, or by the same
 * address) gets its own link set, at its advertised address. */
struct recon_cfg {
    const char *id;                 /* the replica that answered it, or NULL */
    const char *host;               /* as configured */
    uint16_t    port;
};

struct recon {
    /* in */
    const struct recon_cfg *cfg;
    size_t                  ncfg;
    const struct replica   *have;   /* replicas with their own link set now */
    size_t                  nhave;
    const struct replica   *want;   /* the latest list */
    size_t                  nwant;
    /* out, arrays the caller sized: keep[nhave], add[nwant] */
    bool                   *keep;   /* keep[i]: have[i] stays (same id, same address) */
    size_t                 *add;    /* indices into want of link sets to create */
    size_t                  nadd;
};

/* Decide. Never fails; entries of want are assumed unique by id (replicas_parse). */
void replicas_reconcile(struct recon *r);

#endif
