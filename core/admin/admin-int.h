/*
 * admin-int.h: what the files of the admin room share: the listener, requests that are
 * answered later, JSON replies, and the destination API's entry points.
 */
#ifndef FERRY_ADMIN_INT_H
#define FERRY_ADMIN_INT_H

#include <jansson.h>

#include "admin/admin.h"

struct evbuffer;
struct evhttp;
struct evhttp_request;
struct ferry_conf;
struct ferry_dest;
struct ferry_jwt_cache;

struct ferry_admin {
    struct evhttp                  *http;      /* owns */
    const struct ferry_admin_state *st;        /* borrowed: main owns it */
    struct event_base              *base;      /* borrowed: the main thread's */
    struct admin_pending           *pending;   /* requests answered later */
    struct ferry_jwt_cache         *jwt_cache; /* owns: tenants' JWTs verified on this
                                                  (the main) thread; NULL: no caching */
    struct evconnlistener          *listener;  /* evhttp owns it (bound to http) */
    struct event                   *nofd_timer; /* owns: ends an accept pause */
    unsigned                        nofd_ms;   /* the current pause; 0: not pausing */
    int64_t                         nofd_logged_ms;
    uint64_t                        nofd_total; /* accept() refusals for want of an fd */
};

/* A request answered later (after token retrieval, after a reload). evhttp keeps the
 * request until we answer it, even when the client has gone, so every pending request
 * is answered exactly once: by its own completion, or by stop() when the admin stops. */
struct admin_pending {
    struct admin_pending  *next, **pprev;
    struct ferry_admin    *a;
    struct evhttp_request *req;                /* borrowed from evhttp until answered */
    void                 (*stop)(struct admin_pending *p);   /* answer 503, free */
};

void admin_pending_add(struct ferry_admin *a, struct admin_pending *p, struct evhttp_request *req);
void admin_pending_del(struct admin_pending *p);

/* Replies. body is stolen (NULL: 500). Errors are SAP's {"ErrorMessage": "..."}; a
 * message never holds a property value. */
void admin_reply_json(struct evhttp_request *req, int code, json_t *body);
void admin_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ADMIN_API_ROOT       "/destination-configuration/"
#define ADMIN_API_PREFIX     "/destination-configuration/v1/"
#define ADMIN_API_PREFIX_V2  "/destination-configuration/v2/"
#define ADMIN_NOT_FOUND_MSG  "Configuration with the specified name was not found"

/* dest-api.c: everything under ADMIN_API_ROOT (v1, v2; another version is a 404 in SAP's
 * error shape); path and query as in the URI. */
void admin_dest_api(struct ferry_admin *a, struct evhttp_request *req, const char *path,
                    const char *query);
/* A destination's properties as SAP's destinationConfiguration object (new ref); without
 * the secret ones (Password, clientSecret, ${env:} values...) when no_secrets. */
json_t *admin_dest_json(const struct ferry_dest *d, bool no_secrets);
/* With a store: the list's ETag (the revision this replica has applied). */
void admin_dest_list_etag(struct ferry_admin *a, struct evhttp_request *req);
/* The tenant's destination of that name at that level, or NULL (absent, or another
 * tenant's). */
const struct ferry_dest *admin_dest_find(const struct ferry_conf *conf, const char *tenant,
                                         const char *name, bool instance);

/* dest-list.c: GET subaccountDestinations / instanceDestinations with SAP's options
 * ($filter, $select, $page, $pageSize, $pageCount, $entityCount). */
void admin_dest_list(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
                     bool instance, const char *query);
/* The decoded value of query parameter key (owned by the caller), or NULL if absent. */
char *admin_query_get(const char *query, const char *key);
/* Is query parameter key "true" (case-insensitive)? */
bool  admin_query_true(const char *query, const char *key);

/* dest-change.c: POST / PUT on subaccountDestinations or instanceDestinations (instance)
 * (JSON body), DELETE of one. The caller has authenticated `tenant`. */
void admin_dest_create(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
                       bool instance);
void admin_dest_update(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
                       bool instance);
void admin_dest_delete(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
                       bool instance, const char *name);

/* Why a change is refused: an HTTP status and a message without property values. */
struct admin_refusal {
    int  status;
    char msg[2048];
};
struct dest_change;
/* A POST (create) or PUT (update) body, JSON: one destination object or an array, into
 * the change it asks for: each destination validated like a file and rendered as its
 * destinations_dir file. No HTTP and no writes (it looks at destinations_dir: does a
 * new file exist, the old content to roll back to), so tests/fuzz/dest_api_fuzz.c can
 * call it. if_match: the If-Match revision (with a store, update), 0 if none. 0 and
 * *out (admin_dest_change_free), or -1 with the refusal in rf. */
int  admin_dest_change_parse(const struct ferry_conf *conf, const char *tenant, bool instance,
                             const char *body, size_t len, bool create, int64_t if_match,
                             struct dest_change **out, struct admin_refusal *rf);
size_t admin_dest_change_count(const struct dest_change *ch);
/* Destination i's file: its text (borrowed from ch, may hold secrets), *name, *len. */
const char *admin_dest_change_file(const struct dest_change *ch, size_t i, const char **name,
                                   size_t *len);
void admin_dest_change_free(struct dest_change *ch);

/* metrics.c: the Prometheus text of every counter (workers' cells summed). */
void admin_metrics_render(struct evbuffer *out, unsigned nworkers);

#endif
