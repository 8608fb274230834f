/*
 * dest-api.c: the destination API on the admin listener, on the paths of SAP's
 * Destination service (SAP-NOTES.md §3): find (GET destinations/{name}, with owner,
 * destinationConfiguration and authTokens: the instance level first, then the
 * subaccount level; v2's destinations/{name}@{level} at one level only) and the reads of
 * subaccountDestinations and instanceDestinations (lists in dest-list.c).
 *
 * Every call authenticates a tenant (Authorization: Bearer <tenant token>) and sees
 * only that tenant's destinations: another tenant's name is not found. Values are
 * shown as configured, secrets expanded, because this API serves the tenant's own
 * applications, as SAP's does; nothing here logs a value. Changes (POST, PUT, DELETE)
 * live in dest-change.c; token retrieval for OAuth2 and friends behind tokens.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <event2/http.h>

#include <ferry/log.h>
#include <ferry/route.h>

#include "admin/admin-int.h"
#include "admin/tokens.h"
#include "conf/conf.h"
#include "dest/dest-int.h"
#include "store/store.h"
#include "worker/worker.h"

/* How long a find waits for token retrieval before it answers with an error entry. */
#define TOKEN_TIMEOUT_MS 15000
/* Longest Basic credential we encode (User:Password). */
#define BASIC_MAX_BYTES  4096

/* A string for JSON: jansson wants UTF-8, and a ${file:} secret may not be. */
static json_t *
json_text(const char *s)
{
    json_t *j = json_string(s);
    char   *copy;

    if (j != NULL || (copy = strdup(s)) == NULL)
        return j;
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    explicit_bzero(copy, strlen(copy));
    free(copy);
    return j;
}

json_t *
admin_dest_json(const struct ferry_dest *d, bool no_secrets)
{
    json_t *o = json_object();

    for (size_t i = 0; o != NULL && i < d->nprops; i++) {
        /* level is where it lives, not a property SAP shows. */
        if (strcmp(d->props[i].key, "level") == 0 || (no_secrets && d->props[i].secret))
            continue;
        if (json_object_set_new(o, d->props[i].key, json_text(d->props[i].value)) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

const struct ferry_dest *
admin_dest_find(const struct ferry_conf *conf, const char *tenant, const char *name,
                bool instance)
{
    const struct ferry_dest *d = ferry_registry_find_level(conf->registry, name, instance);

    return d != NULL && strcmp(d->tenant, tenant) == 0 ? d : NULL;
}

/* The tenant of a JWT (a tenant with jwt:; SAP's clients send JWTs here), checked
 * with the main thread's cache against the current generation's keys; NULL if none
 * takes it (the reason logged, never the token). */
static const struct ferry_conf_tenant *
api_auth_jwt(struct ferry_admin *a, const char *token)
{
    const struct ferry_conf_tenant *t = NULL;
    const char                     *reason = NULL;
    size_t                          len = strlen(token);

    if (a->st->gen == NULL || a->st->gen->njwt == 0 || !gen_jwt_looks_like(token, len))
        return NULL;
    if (gen_jwt_tenant(a->st->gen, a->jwt_cache, stats_jwt_cell(STATS_JWT_MAIN), NULL, token,
                       len, &t, &reason) != FERRY_OK) {
        ferry_log(NULL, FERRY_INFO, "admin: destination API: tenant JWT refused",
                  FLOG_STR("reason", reason));
        return NULL;
    }
    return t;
}

/* The tenant of `Authorization: Bearer <token>`, or NULL after answering 401. */
static const char *
api_auth(struct ferry_admin *a, struct evhttp_request *req)
{
    const struct ferry_conf *conf = a->st->conf;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const struct ferry_conf_tenant *t;

    if (h == NULL) {
        admin_reply_error(req, 401, "missing Authorization: Bearer <tenant token>");
        return NULL;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        admin_reply_error(req, 401, "want Authorization: Bearer <tenant token>");
        return NULL;
    }
    for (h += 7; *h == ' '; h++)
        ;
    if ((t = ferry_conf_tenant_by_token(conf, NULL, h)) == NULL &&
        (t = api_auth_jwt(a, h)) == NULL) {
        char    *peer = NULL;
        uint16_t port = 0;

        evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
        ferry_log(NULL, FERRY_WARN, "admin: destination API: invalid tenant token",
                  FLOG_STR("client", peer), FLOG_INT("port", port));
        admin_reply_error(req, 401, "invalid token");
        return NULL;
    }
    return t->id;
}

/* The decoded last path segment after prefix (owned by the caller), or NULL when rest
 * does not start with prefix or the segment is empty, nested or not text. */
static char *
path_name(const char *rest, const char *prefix)
{
    size_t n = strlen(prefix);
    size_t len;
    char  *name;

    if (strncmp(rest, prefix, n) != 0 || rest[n] == '\0' || strchr(rest + n, '/') != NULL)
        return NULL;
    if ((name = evhttp_uridecode(rest + n, 0, &len)) == NULL)
        return NULL;
    if (len != strlen(name) || len == 0) {
        free(name);
        return NULL;
    }
    return name;
}

char *
admin_query_get(const char *query, const char *key)
{
    char *found = NULL;

    while (query != NULL && *query != '\0' && found == NULL) {
        size_t n = strcspn(query, "&");
        char  *pair = strndup(query, n), *k, *eq;

        if (pair != NULL) {
            if ((eq = strchr(pair, '=')) != NULL)
                *eq = '\0';
            k = evhttp_uridecode(pair, 1, NULL);
            if (k != NULL && strcmp(k, key) == 0)
                found = evhttp_uridecode(eq != NULL ? eq + 1 : "", 1, NULL);
            free(k);
            free(pair);
        }
        query += n;
        if (*query == '&')
            query++;
    }
    return found;
}

bool
admin_query_true(const char *query, const char *key)
{
    char *v = admin_query_get(query, key);
    bool  yes = v != NULL && strcasecmp(v, "true") == 0;

    free(v);
    return yes;
}

/* authTokens for BasicAuthentication: base64(User:Password), ready as a header. */
static json_t *
basic_tokens(const struct ferry_dest *d)
{
    const char *user = ferry_dest_prop(d, "User"), *pass = ferry_dest_prop(d, "Password");
    char        cred[BASIC_MAX_BYTES], b64[BASIC_MAX_BYTES / 3 * 4 + 8];
    char        header[sizeof(b64) + 8];
    json_t     *tokens = NULL;
    int         n;

    n = snprintf(cred, sizeof(cred), "%s:%s", user != NULL ? user : "",
                 pass != NULL ? pass : "");
    if (n >= 0 && (size_t)n < sizeof(cred) &&
        ferry_base64_encode((const uint8_t *)cred, (size_t)n, b64, sizeof(b64)) >= 0) {
        snprintf(header, sizeof(header), "Basic %s", b64);
        tokens = json_pack("[{s:s,s:s,s:{s:s,s:s}}]", "type", "Basic", "value", b64,
                           "http_header", "key", "Authorization", "value", header);
    } else {
        tokens = json_pack("[{s:s,s:s,s:s}]", "type", "", "value", "",
                           "error", "User and Password are too long for a Basic token");
    }
    explicit_bzero(cred, sizeof(cred));
    explicit_bzero(b64, sizeof(b64));
    explicit_bzero(header, sizeof(header));
    return tokens;
}

static json_t *
error_tokens(const char *why)
{
    return json_pack("[{s:s,s:s,s:s}]", "type", "", "value", "", "error", why);
}

/* One authTokens entry in SAP's field order. */
static json_t *
token_json(const struct admin_token *t)
{
    json_t *o;
    char    num[32];

    if (t->error != NULL)
        return json_pack("{s:s,s:s,s:s}", "type", "", "value", "", "error", t->error);
    if ((o = json_pack("{s:s,s:s}", "type", t->type, "value", t->value)) == NULL)
        return NULL;
    if (t->header_value != NULL) {
        json_object_set_new(o, "http_header", json_pack("{s:s,s:s}", "key",
                            t->header_key != NULL ? t->header_key : "Authorization",
                            "value", t->header_value));
    } else {
        size_t n = strlen(t->type) + strlen(t->value) + 2;
        char  *h = malloc(n);

        if (h != NULL) {
            snprintf(h, n, "%s %s", t->type, t->value);
            json_object_set_new(o, "http_header", json_pack("{s:s,s:s}", "key",
                                t->header_key != NULL ? t->header_key : "Authorization",
                                "value", h));
            explicit_bzero(h, n);
            free(h);
        }
    }
    if (t->expires_in_s >= 0) {
        snprintf(num, sizeof(num), "%lld", t->expires_in_s);
        json_object_set_new(o, "expires_in", json_string(num));
    }
    if (t->scope != NULL)
        json_object_set_new(o, "scope", json_text(t->scope));
    if (t->refresh_token != NULL)
        json_object_set_new(o, "refresh_token", json_text(t->refresh_token));
    if (t->issued_token_type != NULL)
        json_object_set_new(o, "issued_token_type", json_text(t->issued_token_type));
    return o;
}

/* A find waiting for token retrieval. */
struct find_wait {
    struct admin_pending   p;          /* first: the pending list holds &p */
    struct ferry_registry *reg;        /* ref: keeps tr.dest valid across reloads */
    json_t                *resp;       /* owns: the answer, all but authTokens */
    char                  *tenant;     /* owns */
    struct event          *deadline;   /* owns */
    struct admin_token_req tr;
};

static void
find_finish(struct find_wait *fw, json_t *tokens)
{
    if (tokens == NULL || json_object_set_new(fw->resp, "authTokens", tokens) != 0) {
        json_decref(fw->resp);
        fw->resp = NULL;
    }
    admin_pending_del(&fw->p);
    admin_reply_json(fw->p.req, 200, fw->resp);       /* NULL: 500 */
    event_free(fw->deadline);
    ferry_registry_unref(fw->reg);
    free(fw->tenant);
    free(fw);
}

static void
find_tokens_done(struct admin_token_req *r, const struct admin_token *tokens, size_t n)
{
    struct find_wait *fw = (struct find_wait *)((char *)r - offsetof(struct find_wait, tr));
    json_t           *arr = json_array();

    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (json_array_append_new(arr, token_json(&tokens[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    find_finish(fw, arr);
}

static void
find_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct find_wait *fw = arg;

    (void)fd;
    (void)what;
    if (fw->tr.cancel != NULL)
        fw->tr.cancel(&fw->tr);
    ferry_log(NULL, FERRY_WARN, "admin: token retrieval timed out",
              FLOG_STR("tenant", fw->tenant), FLOG_STR("destination", fw->tr.dest->name),
              FLOG_INT("timeout_ms", fw->tr.timeout_ms));
    find_finish(fw, error_tokens("token retrieval timed out"));
}

static void
find_stop(struct admin_pending *p)
{
    struct find_wait *fw = (struct find_wait *)p;

    if (fw->tr.cancel != NULL)
        fw->tr.cancel(&fw->tr);
    admin_pending_del(p);
    admin_reply_error(p->req, 503, "the gateway is stopping");
    json_decref(fw->resp);
    event_free(fw->deadline);
    ferry_registry_unref(fw->reg);
    free(fw->tenant);
    free(fw);
}

/* Ask tokens.c; the answer goes out when it calls back. */
static void
find_with_tokens(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
                 const struct ferry_dest *d, json_t *resp)
{
    struct find_wait *fw = calloc(1, sizeof(*fw));
    struct timeval    tv = { TOKEN_TIMEOUT_MS / 1000, (TOKEN_TIMEOUT_MS % 1000) * 1000 };
    int               rc;

    if (fw == NULL || (fw->tenant = strdup(tenant)) == NULL ||
        (fw->deadline = evtimer_new(a->base, find_timeout, fw)) == NULL) {
        if (fw != NULL)
            free(fw->tenant);
        free(fw);
        json_decref(resp);
        admin_reply_error(req, 500, "out of memory");
        return;
    }
    fw->reg = ferry_registry_ref(a->st->conf->registry);
    fw->resp = resp;
    fw->p.stop = find_stop;
    fw->tr.dest = d;
    fw->tr.tenant = fw->tenant;
    fw->tr.headers = evhttp_request_get_input_headers(req);
    fw->tr.base = a->base;
    fw->tr.worker = a->st->token_worker;
    fw->tr.timeout_ms = TOKEN_TIMEOUT_MS;
    fw->tr.done = find_tokens_done;
    admin_pending_add(a, &fw->p, req);
    evtimer_add(fw->deadline, &tv);
    if ((rc = admin_tokens_fetch(&fw->tr)) != FERRY_OK) {
        char why[96];

        snprintf(why, sizeof(why), "token retrieval failed (%s)", ferry_strerror(rc));
        find_finish(fw, error_tokens(why));
    }
}

/* Authentication types whose find answer has no authTokens at all. */
static bool
has_no_tokens(const char *auth)
{
    return strcmp(auth, "NoAuthentication") == 0 ||
           strcmp(auth, "ClientCertificateAuthentication") == 0 ||
           strcmp(auth, "PrincipalPropagation") == 0;
}

/* With a store: the ETag of a destination is its key's mod_revision in etcd (what
 * If-Match compares); of a list, the revision this replica has applied. */
static void
set_etag(struct evhttp_request *req, int64_t rev)
{
    char v[32];

    if (rev <= 0)
        return;
    snprintf(v, sizeof(v), "\"%lld\"", (long long)rev);
    evhttp_add_header(evhttp_request_get_output_headers(req), "ETag", v);
}

static void
dest_etag(struct ferry_admin *a, struct evhttp_request *req, const struct ferry_dest *d)
{
    if (a->st->store != NULL)
        set_etag(req, ferry_store_etag(a->st->store, d->tenant, d->name, d->instance));
}

/* Where a find looks: SAP's order (instance, then subaccount), or one level (v2). */
enum find_level { FIND_ANY, FIND_SUBACCOUNT, FIND_INSTANCE };

static void
api_find(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
         const char *name, enum find_level level, const char *query)
{
    const struct ferry_conf *conf = a->st->conf;
    const struct ferry_dest *d;
    json_t                  *resp;
    bool                     no_creds = query != NULL &&
                                        admin_query_true(query, "$skipCredentials");

    if (level == FIND_ANY) {
        /* One search: the registry keeps a name's instance level first. */
        d = ferry_registry_find(conf->registry, name);
        d = d != NULL && strcmp(d->tenant, tenant) == 0 ? d : NULL;
    } else {
        d = admin_dest_find(conf, tenant, name, level == FIND_INSTANCE);
    }
    if (d == NULL) {
        admin_reply_error(req, 404, ADMIN_NOT_FOUND_MSG);
        return;
    }
    dest_etag(a, req, d);
    /* ferry's destination service instance of a tenant is the tenant: InstanceId is its
     * id at the instance level, null at the subaccount level. */
    resp = json_pack("{s:{s:s,s:o},s:o}", "owner", "SubaccountId", tenant, "InstanceId",
                     d->instance ? json_string(tenant) : json_null(),
                     "destinationConfiguration", admin_dest_json(d, no_creds));
    if (resp == NULL || no_creds ||
        (query != NULL && admin_query_true(query, "$skipTokenRetrieval")) ||
        d->type != FERRY_DEST_HTTP ||
        has_no_tokens(d->authentication)) {
        admin_reply_json(req, 200, resp);
    } else if (strcmp(d->authentication, "BasicAuthentication") == 0) {
        if (json_object_set_new(resp, "authTokens", basic_tokens(d)) != 0) {
            json_decref(resp);
            resp = NULL;
        }
        admin_reply_json(req, 200, resp);
    } else {
        find_with_tokens(a, req, tenant, d, resp);
    }
}

void
admin_dest_list_etag(struct ferry_admin *a, struct evhttp_request *req)
{
    if (a->st->store != NULL) {
        struct store_stats ss;

        ferry_store_stats(a->st->store, &ss);
        set_etag(req, ss.revision);
    }
}

static void
api_get(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
        bool instance, const char *name)
{
    const struct ferry_dest *d = admin_dest_find(a->st->conf, tenant, name, instance);

    if (d == NULL) {
        admin_reply_error(req, 404, ADMIN_NOT_FOUND_MSG);
        return;
    }
    dest_etag(a, req, d);
    admin_reply_json(req, 200, admin_dest_json(d, false));
}

static void
not_allowed(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    admin_reply_error(req, 405, "method not allowed here (allowed: %s)", allow);
}

/* v2: destinations/{name}@{level} (level subaccount or instance; no fallback), or
 * destinations/{name} as v1. */
static void
api_find_v2(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
            char *name, const char *query)
{
    char *at = strrchr(name, '@');

    if (at == NULL) {
        api_find(a, req, tenant, name, FIND_ANY, query);
        return;
    }
    *at++ = '\0';
    if (strcmp(at, "subaccount") == 0 || strcmp(at, "instance") == 0) {
        api_find(a, req, tenant, name, at[0] == 'i' ? FIND_INSTANCE : FIND_SUBACCOUNT, query);
    } else if (strcmp(at, "provider_subaccount") == 0 || strcmp(at, "provider_instance") == 0) {
        admin_reply_error(req, 400, "level '%.40s': ferry has no provider account; use "
                          "subaccount or instance", at);
    } else {
        admin_reply_error(req, 400, "unknown level '%.40s' after '@': want subaccount or "
                          "instance", at);
    }
}

/* subaccountDestinations and instanceDestinations, with or without /{name}. */
static void
api_level(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
          bool instance, const char *name, const char *query)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    bool                 get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

    if (name == NULL) {
        if (get)
            admin_dest_list(a, req, tenant, instance, query);
        else if (cmd == EVHTTP_REQ_POST)
            admin_dest_create(a, req, tenant, instance);
        else if (cmd == EVHTTP_REQ_PUT)
            admin_dest_update(a, req, tenant, instance);
        else
            not_allowed(req, "GET, HEAD, POST, PUT");
    } else if (get) {
        api_get(a, req, tenant, instance, name);
    } else if (cmd == EVHTTP_REQ_DELETE) {
        admin_dest_delete(a, req, tenant, instance, name);
    } else {
        not_allowed(req, "GET, HEAD, DELETE");
    }
}

void
admin_dest_api(struct ferry_admin *a, struct evhttp_request *req, const char *path,
               const char *query)
{
    bool                    v1 = strncmp(path, ADMIN_API_PREFIX, strlen(ADMIN_API_PREFIX)) == 0;
    bool                    v2 = strncmp(path, ADMIN_API_PREFIX_V2,
                                         strlen(ADMIN_API_PREFIX_V2)) == 0;
    const char             *rest;
    enum evhttp_cmd_type    cmd = evhttp_request_get_command(req);
    bool                    get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
    const char             *tenant;
    char                   *name = NULL;

    if ((tenant = api_auth(a, req)) == NULL)
        return;
    if (!v1 && !v2) {
        admin_reply_error(req, 404, "unknown path: want " ADMIN_API_PREFIX " or "
                          ADMIN_API_PREFIX_V2);
        return;
    }
    rest = path + strlen(v2 ? ADMIN_API_PREFIX_V2 : ADMIN_API_PREFIX);
    if ((name = path_name(rest, "destinations/")) != NULL) {
        if (!get)
            not_allowed(req, "GET, HEAD");
        else if (v2)
            api_find_v2(a, req, tenant, name, query);
        else
            api_find(a, req, tenant, name, FIND_ANY, query);
    } else if (v2) {
        admin_reply_error(req, 404, "unknown path: want destinations/{name}@{level} under "
                          ADMIN_API_PREFIX_V2);
    } else if (strcmp(rest, "subaccountDestinations") == 0 ||
               strcmp(rest, "instanceDestinations") == 0) {
        api_level(a, req, tenant, rest[0] == 'i', NULL, query);
    } else if ((name = path_name(rest, "subaccountDestinations/")) != NULL ||
               (name = path_name(rest, "instanceDestinations/")) != NULL) {
        api_level(a, req, tenant, rest[0] == 'i', name, query);
    } else {
        admin_reply_error(req, 404, "unknown path: want destinations/{name}, "
                          "subaccountDestinations[/{name}] or instanceDestinations[/{name}] "
                          "under " ADMIN_API_PREFIX);
    }
    free(name);
}
