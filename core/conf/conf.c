/*
 * conf.c: the gateway configuration (ferry.yaml) from YAML to struct ferry_conf.
 *
 * Reads the document, checks each section against its schema table, resolves
 * relative paths against the file's directory, builds the destination registry and
 * checks what listeners refer to. Every error is collected (up to the cap) with its
 * position. Listener options beyond the core keys are kept for the plugin, which
 * validates them later (ferry/opts.h). This file opens no sockets and loads no plugins.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "conf/conf-int.h"
#include "dest/dest-int.h"

#define CONF_MAX_WORKERS   256
#define CONF_MAX_LISTENERS 1024
#define CONF_MAX_TENANTS   10000

/* Top-level keys land here first, so sections can be read in dependency order:
 * tenants before destinations, destinations before listeners. */
struct top {
    const yaml_node_t *workers, *log, *admin, *tunnel, *tenants, *destinations, *listeners;
    const yaml_node_t *affinity, *store;
    const yaml_node_t *destinations_dir_node;
    char              *plugins_dir;
    char              *destinations_dir;
    uint32_t           drain_timeout_ms;
};

static const struct conf_key top_keys[] = {
    { "workers",          CONF_NODE, false, offsetof(struct top, workers), 0, 0 },
    { "worker_cpu_affinity", CONF_NODE, false, offsetof(struct top, affinity), 0, 0 },
    { "plugins_dir",      CONF_PATH, false, offsetof(struct top, plugins_dir), 0, 0 },
    { "log",              CONF_NODE, false, offsetof(struct top, log), 0, 0 },
    { "admin",            CONF_NODE, false, offsetof(struct top, admin), 0, 0 },
    { "drain_timeout_ms", CONF_U32,  false, offsetof(struct top, drain_timeout_ms), 0, 3600000 },
    { "tunnel",           CONF_NODE, false, offsetof(struct top, tunnel), 0, 0 },
    { "tenants",          CONF_NODE, false, offsetof(struct top, tenants), 0, 0 },
    { "store",            CONF_NODE, false, offsetof(struct top, store), 0, 0 },
    { "destinations_dir", CONF_PATH, false, offsetof(struct top, destinations_dir), 0, 0 },
    { "destinations",     CONF_NODE, false, offsetof(struct top, destinations), 0, 0 },
    { "listeners",        CONF_NODE, false, offsetof(struct top, listeners), 0, 0 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

struct log_conf {
    char *level;
    char *access;
};

static const struct conf_key log_keys[] = {
    { "level",  CONF_STR, false, offsetof(struct log_conf, level), 0, 0 },
    { "access", CONF_STR, false, offsetof(struct log_conf, access), 0, 0 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

#define TUNNEL_OFF(f) offsetof(struct ferry_conf, tunnel.f)
static const struct conf_key tunnel_keys[] = {
    { "listen",    CONF_ADDR, true,  TUNNEL_OFF(listen), 0, 0 },
    { "advertise", CONF_STR,  false, TUNNEL_OFF(advertise), 0, 0 },
    { "cert",      CONF_PATH, true,  TUNNEL_OFF(cert), 0, 0 },
    { "key",       CONF_PATH, true,  TUNNEL_OFF(key), 0, 0 },
    { "client_ca", CONF_PATH, false, TUNNEL_OFF(client_ca), 0, 0 },
    { "keepalive_ms", CONF_U32, false, TUNNEL_OFF(keepalive_ms), 100, 3600000 },
    { "dead_peer_timeout_ms", CONF_U32, false, TUNNEL_OFF(dead_peer_timeout_ms), 100, 3600000 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

/* `store: etcd: {...}`: the one backend there is. */
static const struct conf_key store_keys[] = {
    { "etcd", CONF_NODE, true, 0, 0, 0 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

struct etcd_conf {
    const yaml_node_t *endpoints;
    char              *prefix, *user, *password, *ca, *cert, *key, *cache;
};

#define E_OFF(f) offsetof(struct etcd_conf, f)
static const struct conf_key etcd_keys[] = {
    { "endpoints", CONF_NODE, true,  E_OFF(endpoints), 0, 0 },
    { "prefix",    CONF_STR,  false, E_OFF(prefix), 0, 0 },
    { "user",      CONF_STR,  false, E_OFF(user), 0, 0 },
    { "password",  CONF_STR,  false, E_OFF(password), 0, 0 },
    { "ca",        CONF_PATH, false, E_OFF(ca), 0, 0 },
    { "cert",      CONF_PATH, false, E_OFF(cert), 0, 0 },
    { "key",       CONF_PATH, false, E_OFF(key), 0, 0 },
    { "cache",     CONF_PATH, false, E_OFF(cache), 0, 0 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

/* A tenant as read, before its strings move into struct ferry_conf_tenant. token is
 * required unless the tenant has jwt: (load_tenants checks that pair). */
struct tenant_in {
    char              *id;
    char              *token;
    const yaml_node_t *jwt;
    uint32_t           max_connections;
};

static const struct conf_key tenant_keys[] = {
    { "id",    CONF_STR,  true,  offsetof(struct tenant_in, id), 0, 0 },
    { "token", CONF_STR,  false, offsetof(struct tenant_in, token), 0, 0 },
    { "jwt",   CONF_NODE, false, offsetof(struct tenant_in, jwt), 0, 0 },
    { "max_connections", CONF_U32, false, offsetof(struct tenant_in, max_connections),
      0, 10000000 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

#define J_OFF(f) offsetof(struct ferry_conf_tenant_jwt, f)
static const struct conf_key jwt_keys[] = {
    { "issuer",   CONF_STR,  true,  J_OFF(issuer), 0, 0 },
    { "audience", CONF_STR,  true,  J_OFF(audience), 0, 0 },
    { "jwks",     CONF_PATH, false, J_OFF(jwks), 0, 0 },
    { "jwks_url", CONF_STR,  false, J_OFF(jwks_url), 0, 0 },
    { "leeway_s", CONF_U32,  false, J_OFF(leeway_s), 0, 3600 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

#define JWT_LEEWAY_S_DEFAULT 60

#define L_OFF(f) offsetof(struct ferry_conf_listener, f)
static const struct conf_key listener_keys[] = {
    /* key                  type       required  where it lands      range */
    { "name",               CONF_STR,  true,  L_OFF(name),           0, 0 },
    { "plugin",             CONF_STR,  true,  L_OFF(plugin),         0, 0 },
    { "listen",             CONF_ADDR, true,  L_OFF(listen),         0, 0 },
    { "destination",        CONF_STR,  false, L_OFF(destination),    0, 0 },
    { "tenant",             CONF_STR,  false, L_OFF(tenant),         0, 0 },
    { "max_connections",    CONF_U32,  false, L_OFF(max_connections), 1, 1000000 },
    { "idle_timeout_ms",    CONF_U32,  false, L_OFF(idle_timeout_ms), 1, 86400000 },
    { "connect_timeout_ms", CONF_U32,  false, L_OFF(connect_timeout_ms), 1, 600000 },
    { "allow",              CONF_LATER, false, 0,                    0, 0 },
    { "proxy_protocol",     CONF_LATER, false, 0,                    0, 0 },
    { "rate",               CONF_LATER, false, 0,                    0, 0 },
    { NULL, CONF_END, false, 0, 0, 0 }      /* the rest goes to the plugin (opts.c) */
};

static void
load_workers(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_conf *conf)
{
    conf_workers(c, n, CONF_MAX_WORKERS, &conf->workers);
}

/* The same family, address and port (the rest of a sockaddr is padding). */
static bool
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

/* `worker_cpu_affinity: auto` pins worker i to the i-th CPU ferry may run on: a worker
 * that stays on its CPU keeps its caches, and a request/response exchange (LDAP, keep-
 * alive HTTP) no longer pays a migration on most wake-ups. Off by default: on a machine
 * shared with other busy processes a pinned worker cannot move to an idle CPU. */
static void
load_affinity(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_conf *conf)
{
    const char *s = conf_text(n);

    if (s != NULL && strcmp(s, "auto") == 0)
        conf->worker_cpu_affinity = true;
    else if (s != NULL && strcmp(s, "off") == 0)
        conf->worker_cpu_affinity = false;
    else
        conf_error(c, n, "worker_cpu_affinity", "want auto or off");
}

static void
load_log(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_conf *conf)
{
    struct log_conf lc = {0};

    /* Each key that loaded is checked, whatever happened to the other. */
    conf_mapping(c, n, "log", log_keys, &lc, NULL, NULL);
    if (lc.level != NULL)
        conf_log_level(c, n, lc.level, &conf->log_level);
    if (lc.access != NULL && strcmp(lc.access, "stdout") != 0 && strcmp(lc.access, "off") != 0) {
        char *full = conf_path_join(c->dir, lc.access);

        if (full == NULL) {
            conf_error(c, n, "log", "out of memory");
        } else {
            free(conf->access_log);
            conf->access_log = full;
        }
    } else if (lc.access != NULL && conf_set_dup(&conf->access_log, lc.access) != FERRY_OK) {
        conf_error(c, n, "log", "out of memory");
    }
    free(lc.level);
    free(lc.access);
}

/* tunnel.advertise: what other replicas tell connectors to dial (DESIGN.md, "Several
 * replicas"). Given, it must be dialable; absent, it is listen as written, which is
 * right for one gateway or a test on loopback and harmless otherwise: without a store
 * nobody hears it. */
static void
load_advertise(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_conf *conf)
{
    const yaml_node_t *at = conf_value(c, n, "advertise");
    char               host[FERRY_CONF_HOST_MAX];
    uint16_t           port;
    const char        *why;

    if (conf->tunnel.advertise == NULL) {
        if (at == NULL && conf->tunnel.listen != NULL &&
            conf_set_dup(&conf->tunnel.advertise, conf->tunnel.listen) != FERRY_OK)
            conf_error(c, n, "tunnel", "out of memory");
        return;
    }
    if ((why = ferry_conf_host_port(conf->tunnel.advertise, host, sizeof(host), &port)) != NULL) {
        /* Quote it as written: a reference (${env:POD_IP}:8443) names no secret, and
         * the expanded text is what was wrong with it. */
        conf_error(c, at, "tunnel", "advertise: '%s'%s%s%s: %s", conf_text(at),
                   strcmp(conf_text(at), conf->tunnel.advertise) != 0 ? " (is '" : "",
                   strcmp(conf_text(at), conf->tunnel.advertise) != 0
                       ? conf->tunnel.advertise : "",
                   strcmp(conf_text(at), conf->tunnel.advertise) != 0 ? "')" : "", why);
        free(conf->tunnel.advertise);
        conf->tunnel.advertise = NULL;
    }
}

static void
load_tunnel(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_conf *conf)
{
    bool compare;

    /* 0 is below both minimums: still 0 afterwards means absent, or refused (reported),
     * and a refused value must not be compared as if it were the default. */
    conf->tunnel.keepalive_ms = 0;
    conf->tunnel.dead_peer_timeout_ms = 0;
    conf_mapping(c, n, "tunnel", tunnel_keys, conf, NULL, NULL);
    compare = (conf->tunnel.keepalive_ms != 0 || conf_value(c, n, "keepalive_ms") == NULL) &&
              (conf->tunnel.dead_peer_timeout_ms != 0 ||
               conf_value(c, n, "dead_peer_timeout_ms") == NULL);
    if (conf->tunnel.keepalive_ms == 0)
        conf->tunnel.keepalive_ms = 10000;
    if (conf->tunnel.dead_peer_timeout_ms == 0)
        conf->tunnel.dead_peer_timeout_ms = 30000;
    if (compare && conf->tunnel.dead_peer_timeout_ms <= conf->tunnel.keepalive_ms)
        conf_error(c, n, "tunnel", "dead_peer_timeout_ms must be longer than keepalive_ms");
    load_advertise(c, n, conf);
    conf_must_read(c, n, "tunnel", "cert", conf->tunnel.cert);
    conf_must_read(c, n, "tunnel", "key", conf->tunnel.key);
    conf_must_read(c, n, "tunnel", "client_ca", conf->tunnel.client_ca);
}

#define CONF_MAX_ENDPOINTS 16

/* One etcd endpoint: http:// or https://, a host, an optional port, nothing after. */
static bool
endpoint_ok(const char *s)
{
    const char *host;
    size_t      n;

    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return false;
    n = strlen(host);
    if (n == 0 || n > 255 || host[0] == ':' || host[0] == '/')
        return false;
    if (host[n - 1] == '/')         /* "http://h:2379/" is fine; a path is not */
        n--;
    for (size_t i = 0; i < n; i++)
        if (host[i] == '/' || host[i] == '?' || host[i] == '#' || host[i] == '@' ||
            (unsigned char)host[i] <= ' ')
            return false;
    return true;
}

static bool
prefix_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || strchr("/-_.", *s) != NULL) || (s[0] == '/' && s[1] == '/'))
            return false;
    return true;
}

static void
store_free(struct ferry_conf_store *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->nendpoints; i++)
        free(st->endpoints[i]);
    free(st->endpoints);
    free(st->prefix);
    free(st->user);
    if (st->password != NULL)
        explicit_bzero(st->password, strlen(st->password));
    free(st->password);
    free(st->ca);
    free(st->cert);
    free(st->key);
    free(st->cache);
    free(st);
}

static void
load_store(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_conf *conf)
{
    struct {
        const yaml_node_t *etcd;
    } top = { 0 };
    struct etcd_conf          ec = { 0 };
    struct ferry_conf_store  *st;
    const yaml_node_t        *eps;
    size_t                    count;

    if (conf_mapping(c, n, "store", store_keys, &top, NULL, NULL) > 0 || top.etcd == NULL)
        return;
    if ((st = calloc(1, sizeof(*st))) == NULL) {
        conf_error(c, n, "store", "out of memory");
        return;
    }
    st->line = (int)n->start_mark.line + 1;
    st->col = (int)n->start_mark.column + 1;
    conf_mapping(c, top.etcd, "store.etcd", etcd_keys, &ec, NULL, NULL);
    st->prefix = ec.prefix;
    st->user = ec.user;
    st->password = ec.password;
    st->ca = ec.ca;
    st->cert = ec.cert;
    st->key = ec.key;
    st->cache = ec.cache;
    conf->store = st;
    if (st->prefix == NULL && (st->prefix = strdup("/ferry")) == NULL) {
        conf_error(c, top.etcd, "store.etcd", "out of memory");
        return;
    }
    if (st->prefix[0] != '/' || st->prefix[strlen(st->prefix) - 1] == '/' ||
        strlen(st->prefix) > 200 || !prefix_ok(st->prefix))
        conf_error(c, conf_value(c, top.etcd, "prefix"), "store.etcd",
                   "prefix: want a key path like /ferry (a leading '/', no trailing '/', "
                   "letters, digits, '/', '-', '_', '.')");
    if ((st->user == NULL) != (st->password == NULL))
        conf_error(c, top.etcd, "store.etcd", "user and password go together");
    if ((st->cert == NULL) != (st->key == NULL))
        conf_error(c, top.etcd, "store.etcd", "cert and key go together");
    conf_must_read(c, top.etcd, "store.etcd", "ca", st->ca);
    conf_must_read(c, top.etcd, "store.etcd", "cert", st->cert);
    conf_must_read(c, top.etcd, "store.etcd", "key", st->key);
    if ((eps = ec.endpoints) == NULL)
        return;
    if (eps->type == YAML_SCALAR_NODE) {
        count = 1;
    } else if (eps->type == YAML_SEQUENCE_NODE) {
        count = (size_t)(eps->data.sequence.items.top - eps->data.sequence.items.start);
    } else {
        conf_error(c, eps, "store.etcd", "endpoints: want a list of http://host:port");
        return;
    }
    if (count == 0 || count > CONF_MAX_ENDPOINTS) {
        conf_error(c, eps, "store.etcd", "endpoints: want 1 to %d of them",
                   CONF_MAX_ENDPOINTS);
        return;
    }
    if ((st->endpoints = calloc(count, sizeof(*st->endpoints))) == NULL) {
        conf_error(c, eps, "store.etcd", "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *e = eps->type == YAML_SCALAR_NODE
                               ? eps : conf_node(c, eps->data.sequence.items.start[i]);
        const char        *t = e != NULL ? conf_text(e) : NULL;

        if (t == NULL || !endpoint_ok(t)) {
            conf_error(c, e != NULL ? e : eps, "store.etcd",
                       "endpoints[%zu]: want http://host:port or https://host:port", i);
            continue;
        }
        if ((st->endpoints[st->nendpoints] = strdup(t)) == NULL) {
            conf_error(c, e, "store.etcd", "out of memory");
            return;
        }
        st->nendpoints++;
    }
}

/* A URL's scheme and a host: the fetch itself reports what else is wrong. */
static bool
is_http_url(const char *u)
{
    const char *rest;

    if (strncmp(u, "http://", 7) == 0)
        rest = u + 7;
    else if (strncmp(u, "https://", 8) == 0)
        rest = u + 8;
    else
        return false;
    return *rest != '\0' && *rest != '/' && strpbrk(u, " \t\r\n") == NULL;
}

static void
load_tenant_jwt(const struct conf_ctx *c, const yaml_node_t *n, const char *tenant_where,
                struct ferry_conf_tenant *t)
{
    struct ferry_conf_tenant_jwt *j;
    const yaml_node_t            *src;
    char                          where[48];

    snprintf(where, sizeof(where), "%s: jwt", tenant_where);
    if ((j = calloc(1, sizeof(*j))) == NULL) {
        conf_error(c, n, where, "out of memory");
        return;
    }
    t->jwt = j;
    j->leeway_s = JWT_LEEWAY_S_DEFAULT;
    j->line = (int)n->start_mark.line + 1;
    j->col = (int)n->start_mark.column + 1;
    if (conf_mapping(c, n, where, jwt_keys, j, NULL, NULL) > 0)
        return;                     /* one mistake, one error: no "missing" on top */
    if (conf_value(c, n, "jwks") != NULL && conf_value(c, n, "jwks_url") != NULL) {
        conf_error(c, conf_value(c, n, "jwks_url"), where, "jwks and jwks_url: set one "
                   "of them, not both");
        return;
    }
    if ((src = conf_value(c, n, "jwks")) == NULL && (src = conf_value(c, n, "jwks_url")) == NULL) {
        conf_error(c, n, where, "missing required key 'jwks' (a file) or 'jwks_url'");
        return;
    }
    j->jwks_line = (int)src->start_mark.line + 1;
    j->jwks_col = (int)src->start_mark.column + 1;
    if (j->jwks_url != NULL && !is_http_url(j->jwks_url))
        conf_error(c, src, where, "jwks_url: want an http:// or https:// URL, not '%s'",
                   conf_shown(c, n, "jwks_url", j->jwks_url));
}

static void
load_tenants(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_conf *conf)
{
    size_t count;

    if (n->type != YAML_SEQUENCE_NODE) {
        conf_error(c, n, "tenants", "want a list of { id: ..., token: ... }");
        return;
    }
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count > CONF_MAX_TENANTS) {
        conf_error(c, n, "tenants", "more than %d tenants", CONF_MAX_TENANTS);
        return;
    }
    if (count == 0 || (conf->tenants = calloc(count, sizeof(*conf->tenants))) == NULL) {
        if (count > 0)
            conf_error(c, n, "tenants", "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t        *tn = conf_node(c, n->data.sequence.items.start[i]);
        struct ferry_conf_tenant *t = &conf->tenants[conf->ntenants];
        char                      where[32];

        struct tenant_in          in = { 0 };
        int                       nerr;

        snprintf(where, sizeof(where), "tenants[%zu]", i);
        t->line = (int)tn->start_mark.line + 1;
        t->col = (int)tn->start_mark.column + 1;
        nerr = conf_mapping(c, tn, where, tenant_keys, &in, NULL, NULL);
        t->id = in.id;
        t->token = in.token;
        t->max_connections = in.max_connections;
        conf->ntenants++;                   /* owned now, freed with conf */
        if (in.jwt != NULL)
            load_tenant_jwt(c, in.jwt, where, t);
        else if (in.token == NULL && nerr == 0 && tn->type == YAML_MAPPING_NODE)
            conf_error(c, tn, where, "missing required key 'token' (or 'jwt')");
        /* An id or token that did not load is reported; check the other one anyway. */
        if (t->id != NULL && !conf_is_word(t->id, "-.ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
            conf_error(c, conf_value(c, tn, "id"), where, "id '%s': use letters, digits, "
                       "'-', '_' and '.' only", conf_shown(c, tn, "id", t->id));
        for (size_t j = 0; j + 1 < conf->ntenants; j++) {
            const struct ferry_conf_tenant *o = &conf->tenants[j];

            if (t->id != NULL && o->id != NULL && strcmp(o->id, t->id) == 0)
                conf_error(c, conf_value(c, tn, "id"), where, "tenant '%s' is defined twice "
                           "(first at line %d)", conf_shown(c, tn, "id", t->id), o->line);
            else if (t->token != NULL && o->token != NULL && strcmp(o->token, t->token) == 0)
                conf_error(c, conf_value(c, tn, "token"), where, "token is the same as "
                           "tenants[%zu]'s: each tenant needs its own", j);
        }
    }
}

static bool
name_in(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static int
pass_opt(void *arg, const yaml_node_t *key, const yaml_node_t *val)
{
    void **a = arg;

    return conf_opts_add(a[0], a[1], key, val);
}

/* Did key load, or is it absent? (A value that did not load was reported already.) */
static bool
is_loaded_or_absent(const struct conf_ctx *c, const yaml_node_t *ln, const char *key,
                    const char *value)
{
    return value != NULL || conf_value(c, ln, key) == NULL;
}

/* The value of a key of map that is not `key` but a misspelling of it (edit distance 1
 * or 2, not itself a listener key), e.g. `destinaton: x` for "destination"; NULL if none.
 * The misspelt key itself is reported (with "did you mean") when the plugin's options
 * are checked. */
static const char *
misspelt_value(const struct conf_ctx *c, const yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        const char *k = conf_text(conf_node(c, p->key));
        bool        known = false;

        if (k == NULL || strcmp(k, key) == 0)
            continue;
        for (const struct conf_key *lk = listener_keys; lk->key != NULL && !known; lk++)
            known = strcmp(lk->key, k) == 0;
        if (!known && ferry_edit_distance(k, key, 2) <= 2)
            return conf_text(conf_node(c, p->value));
    }
    return NULL;
}

/* Every check runs on the keys that loaded, whatever happened to the others, so one
 * run reports all of a listener's errors; a key that did not load is reported once,
 * by conf_mapping(), and checked no further. */
static void
load_listener(const struct conf_ctx *c, const yaml_node_t *ln, size_t i,
              struct ferry_conf *conf, char *const *dnames, size_t ndnames)
{
    struct ferry_conf_listener *l = &conf->listeners[conf->nlisteners];
    struct ferry_err            err = {0};
    char                        where[32];
    void                       *arg[2];
    const yaml_node_t          *vn;
    const char                 *vt;
    bool                        plugin_ok;

    snprintf(where, sizeof(where), "listeners[%zu]", i);
    l->index = (int)i;
    l->line = (int)ln->start_mark.line + 1;
    l->col = (int)ln->start_mark.column + 1;
    l->max_connections = 10000;
    l->idle_timeout_ms = 300000;
    l->connect_timeout_ms = 5000;
    if ((l->opts = conf_opts_new(c->file, (int)i, NULL, l->line, l->col, c->errs)) == NULL) {
        conf_error(c, ln, where, "out of memory");
        return;
    }
    conf->nlisteners++;                     /* owned now, freed with conf */
    arg[0] = l->opts;
    arg[1] = (void *)c;
    conf_mapping(c, ln, where, listener_keys, l, pass_opt, arg);
    conf_listener_limits(c, ln, where, l);
    if (l->name != NULL && conf_opts_set_name(l->opts, l->name) != FERRY_OK)
        conf_error(c, ln, where, "out of memory");
    for (size_t j = 0; l->name != NULL && j + 1 < conf->nlisteners; j++) {
        if (conf->listeners[j].name != NULL && strcmp(conf->listeners[j].name, l->name) == 0) {
            conf_error(c, conf_value(c, ln, "name"), where, "duplicate listener name '%s' "
                       "(first at line %d)", conf_shown(c, ln, "name", l->name),
                       conf->listeners[j].line);
            break;
        }
    }
    plugin_ok = l->plugin != NULL && conf_is_word(l->plugin, NULL);
    if (l->plugin != NULL && !plugin_ok)
        conf_error(c, conf_value(c, ln, "plugin"), where, "plugin '%s': want a plugin name "
                   "([a-z0-9_]+, as in ferry_<name>.so)", conf_shown(c, ln, "plugin", l->plugin));
    if (l->listen != NULL &&
        ferry_addr_parse(l->listen, &l->addr, &l->addr_len, &err) != FERRY_OK) {
        conf_error(c, conf_value(c, ln, "listen"), where, "listen: %s", err.msg);
    } else if (l->listen != NULL) {
        /* Listening sockets take SO_REUSEPORT (one per worker), so the kernel would let
         * two listeners share an address and split their connections between them. */
        for (size_t j = 0; j + 1 < conf->nlisteners; j++) {
            const struct ferry_conf_listener *o = &conf->listeners[j];

            if (o->addr_len != 0 && same_addr(&o->addr, &l->addr)) {
                conf_error(c, conf_value(c, ln, "listen"), where, "listen: %s is already "
                           "listener '%s''s address (line %d)", l->listen,
                           o->name != NULL ? o->name : "?", o->line);
                break;
            }
        }
    }
    /* With a store the destinations come later (and change): a listener bound to one
     * that is missing answers "destination not found" until it exists. */
    if (l->destination != NULL && conf->store == NULL &&
        ferry_registry_find(conf->registry, l->destination) == NULL
        && !name_in(dnames, ndnames, l->destination)) {
        const char *s = ferry_suggest(l->destination, (const char *const *)dnames,
                                           ndnames, 2);

        vn = conf_value(c, ln, "destination");
        if (strcmp(conf_shown(c, ln, "destination", l->destination), l->destination) != 0)
            conf_error(c, vn, where, "unknown destination");
        else if (s != NULL)
            conf_error(c, vn, where, "unknown destination '%s' (did you mean '%s'?)",
                       l->destination, s);
        else
            conf_error(c, vn, where, "unknown destination '%s'", l->destination);
    }
    if (l->tenant != NULL && ferry_conf_tenant(conf, l->tenant) == NULL)
        conf_error(c, conf_value(c, ln, "tenant"), where, "unknown tenant '%s'",
                   conf_shown(c, ln, "tenant", l->tenant));
    /* A misspelt `destinaton:` or `tenat:` is one mistake: the unknown key's error
     * says so, and the plugin, which reads the intended key, is shown its value rather
     * than made to report it missing. The conf has an error either way; nothing runs
     * with it. */
    if (l->destination == NULL && conf_value(c, ln, "destination") == NULL &&
        (vt = misspelt_value(c, ln, "destination")) != NULL)
        l->destination = strdup(vt);
    if (l->tenant == NULL && conf_value(c, ln, "tenant") == NULL &&
        (vt = misspelt_value(c, ln, "tenant")) != NULL)
        l->tenant = strdup(vt);
    /* The plugin reads destination and tenant: one that did not load would make it
     * report a second, wrong error (e.g. "needs `destination:`"). */
    l->opts_checkable = l->name != NULL && plugin_ok &&
                        is_loaded_or_absent(c, ln, "destination", l->destination) &&
                        is_loaded_or_absent(c, ln, "tenant", l->tenant);
}

static void
load_listeners(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_conf *conf,
               char *const *dnames, size_t ndnames)
{
    size_t count;

    if (n->type != YAML_SEQUENCE_NODE) {
        conf_error(c, n, "listeners", "want a list of listeners (- name: ...)");
        return;
    }
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count > CONF_MAX_LISTENERS) {
        conf_error(c, n, "listeners", "more than %d listeners", CONF_MAX_LISTENERS);
        return;
    }
    if (count == 0)
        return;
    if ((conf->listeners = calloc(count, sizeof(*conf->listeners))) == NULL) {
        conf_error(c, n, "listeners", "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++)
        load_listener(c, conf_node(c, n->data.sequence.items.start[i]), i, conf, dnames,
                      ndnames);
}

/* The registry holds the valid destinations even when others failed (rc says so):
 * listeners look names up in it, a partial load checks their policies. */
static int
load_destinations(const struct conf_ctx *c, const struct top *top, struct ferry_conf *conf,
                  char ***dnames, size_t *ndnames)
{
    const char         **ids = NULL;
    struct conf_dest_in  in = {
        .inline_seq = top->destinations, .dir = conf->destinations_dir,
        .dir_node = top->destinations_dir_node,
    };
    int                  rc;

    if (conf->ntenants > 0 && (ids = calloc(conf->ntenants, sizeof(*ids))) == NULL) {
        conf_error(c, NULL, NULL, "out of memory");
        return FERRY_ENOMEM;
    }
    /* Each id once: a tenant defined twice (reported) must not make every destination
     * "need tenant: with several tenants" as well. */
    for (size_t i = 0; i < conf->ntenants; i++)
        if (conf->tenants[i].id != NULL && ferry_conf_tenant(conf, conf->tenants[i].id) ==
            &conf->tenants[i])
            ids[in.ntenants++] = conf->tenants[i].id;
    in.tenants = ids;
    rc = conf_dests_load(c, &in, &conf->warnings, &conf->registry, dnames, ndnames);
    free(ids);
    if (conf->registry == NULL) {           /* listeners still look names up */
        struct ferry_registry *empty = NULL;

        if (ferry_registry_new(NULL, 0, &empty, c->errs) == FERRY_OK)
            conf->registry = empty;
    }
    return rc;
}

static int
conf_defaults(struct ferry_conf *conf, const char *name)
{
    conf->log_level = FERRY_INFO;
    conf->drain_timeout_ms = 30000;
    if ((conf->path = strdup(name)) == NULL || (conf->dir = conf_dirname(name)) == NULL
        || (conf->access_log = strdup("stdout")) == NULL
        || (conf->admin_listen = strdup("127.0.0.1:9901")) == NULL)
        return FERRY_ENOMEM;
    return FERRY_OK;
}

static int
load_string(const char *text, const char *name, bool partial, struct ferry_conf **out,
            struct ferry_errlist *errs)
{
    struct ferry_errlist local = {0};
    struct ferry_conf   *conf = NULL;
    struct top           top = { .drain_timeout_ms = 30000 };
    yaml_document_t      doc;
    struct conf_ctx      c = { .file = name, .doc = &doc };
    const yaml_node_t   *root;
    char               **dnames = NULL;
    size_t               ndnames = 0;
    int                  rc, dests_rc;

    *out = NULL;
    if (errs == NULL)
        errs = &local;
    c.errs = errs;
    ferry_errlist_file(errs, name);         /* the main file's errors come first */
    int before = errs->count + errs->dropped;

    if ((conf = calloc(1, sizeof(*conf))) == NULL || conf_defaults(conf, name) != FERRY_OK) {
        ferry_errlist_add(errs, name, 0, 0, "out of memory");
        ferry_conf_free(conf);
        return FERRY_ENOMEM;
    }
    c.dir = conf->dir;
    if ((rc = conf_doc_load(text, strlen(text), name, errs, &doc)) != FERRY_OK) {
        ferry_conf_free(conf);
        return rc;
    }
    root = yaml_document_get_root_node(&doc);
    if (root != NULL && !(root->type == YAML_SCALAR_NODE && conf_text(root)[0] == '\0'))
        conf_mapping(&c, root, NULL, top_keys, &top, NULL, NULL);
    if (root != NULL && root->type == YAML_MAPPING_NODE)
        top.destinations_dir_node = conf_value(&c, root, "destinations_dir");

    /* `key:` with nothing after it means the default, as if the key were absent. */
    const yaml_node_t **nodes[] = { &top.workers, &top.affinity, &top.log, &top.admin,
                                    &top.tunnel, &top.tenants, &top.destinations,
                                    &top.listeners, &top.store };

    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
        if (*nodes[i] != NULL && conf_is_null(*nodes[i]))
            *nodes[i] = NULL;
    conf->plugins_dir = top.plugins_dir;
    conf->destinations_dir = top.destinations_dir;
    conf->drain_timeout_ms = top.drain_timeout_ms;
    if (top.workers != NULL)
        load_workers(&c, top.workers, conf);
    if (top.affinity != NULL)
        load_affinity(&c, top.affinity, conf);
    if (top.log != NULL)
        load_log(&c, top.log, conf);
    if (top.admin != NULL)
        conf_admin(&c, top.admin, &conf->admin_listen);
    if (top.tunnel != NULL)
        load_tunnel(&c, top.tunnel, conf);
    if (top.tenants != NULL)
        load_tenants(&c, top.tenants, conf);
    if (top.store != NULL)
        load_store(&c, top.store, conf);
    if (conf->store != NULL && conf->tunnel.advertise != NULL) {
        char        host[FERRY_CONF_HOST_MAX];
        uint16_t    port;
        const char *why = ferry_conf_host_port(conf->tunnel.advertise, host, sizeof(host),
                                               &port);

        /* Connectors dial every replica at what it registers: listen's wildcard (the
         * default advertise) is no address to dial. */
        if (why != NULL)
            conf_error(&c, top.tunnel, "tunnel", "with store:, connectors dial each replica "
                       "at its tunnel.advertise; '%s' will not do (%s): set advertise, e.g. "
                       "${env:POD_IP}:8443", conf->tunnel.advertise, why);
    }
    if (conf->store != NULL) {
        /* One truth: destinations beside the store would be a second one. */
        if (top.destinations != NULL)
            conf_error(&c, top.destinations, "destinations", "with store:, destinations "
                       "live in etcd: move these there with `ferry store import -c %s %s`",
                       name, name);
        if (top.destinations_dir_node != NULL)
            conf_error(&c, top.destinations_dir_node, "destinations_dir", "with store:, "
                       "destinations live in etcd: move these there with `ferry store "
                       "import -c %s %s`", name, conf->destinations_dir != NULL
                       ? conf->destinations_dir : "DIR");
        top.destinations = NULL;
        free(conf->destinations_dir);
        conf->destinations_dir = NULL;
    }
    dests_rc = load_destinations(&c, &top, conf, &dnames, &ndnames);
    if (top.listeners != NULL)
        load_listeners(&c, top.listeners, conf, dnames, ndnames);

    for (size_t i = 0; i < ndnames; i++)
        free(dnames[i]);
    free(dnames);
    yaml_document_delete(&doc);
    conf->has_errors = errs->count + errs->dropped > before || dests_rc != FERRY_OK;
    if (conf->registry == NULL || (conf->has_errors && !partial)) {
        ferry_conf_free(conf);
        return dests_rc == FERRY_ENOMEM ? FERRY_ENOMEM : FERRY_EINVAL;
    }
    /* Plugins report option errors later: never into our caller-less local list. */
    if (errs == &local)
        for (size_t i = 0; i < conf->nlisteners; i++)
            ferry_opts_set_errlist(conf->listeners[i].opts, NULL);
    *out = conf;
    return conf->has_errors ? FERRY_EINVAL : FERRY_OK;
}

int
ferry_conf_load_string(const char *text, const char *name, struct ferry_conf **out,
                       struct ferry_errlist *errs)
{
    return load_string(text, name, false, out, errs);
}

int
ferry_conf_load_string_partial(const char *text, const char *name, struct ferry_conf **out,
                               struct ferry_errlist *errs)
{
    return load_string(text, name, true, out, errs);
}

static int
load_file(const char *path, bool partial, struct ferry_conf **out, struct ferry_errlist *errs)
{
    char *text = NULL;
    int   rc;

    *out = NULL;
    ferry_errlist_file(errs, path);
    if ((rc = conf_file_text(path, errs, &text)) != FERRY_OK)
        return rc;
    rc = load_string(text, path, partial, out, errs);
    free(text);
    return rc;
}

int
ferry_conf_load_file(const char *path, struct ferry_conf **out, struct ferry_errlist *errs)
{
    return load_file(path, false, out, errs);
}

int
ferry_conf_load_file_partial(const char *path, struct ferry_conf **out,
                             struct ferry_errlist *errs)
{
    return load_file(path, true, out, errs);
}

const struct ferry_conf_tenant *
ferry_conf_tenant(const struct ferry_conf *conf, const char *id)
{
    for (size_t i = 0; i < conf->ntenants; i++)
        if (conf->tenants[i].id != NULL && strcmp(conf->tenants[i].id, id) == 0)
            return &conf->tenants[i];
    return NULL;
}

const struct ferry_conf_tenant *
ferry_conf_tenant_by_token(const struct ferry_conf *conf, const char *id, const char *token)
{
    size_t tlen = token != NULL ? strlen(token) : 0;

    if (tlen == 0)
        return NULL;
    for (size_t i = 0; i < conf->ntenants; i++) {
        const struct ferry_conf_tenant *t = &conf->tenants[i];

        if (t->id == NULL || t->token == NULL || (id != NULL && strcmp(t->id, id) != 0))
            continue;
        /* Constant time in the token's bytes: no early exit on the first mismatch. */
        if (strlen(t->token) == tlen && CRYPTO_memcmp(t->token, token, tlen) == 0)
            return t;
        if (id != NULL)
            break;
    }
    return NULL;
}

void
ferry_conf_free(struct ferry_conf *conf)
{
    if (conf == NULL)
        return;
    for (size_t i = 0; i < conf->ntenants; i++) {
        if (conf->tenants[i].token != NULL)
            explicit_bzero(conf->tenants[i].token, strlen(conf->tenants[i].token));
        free(conf->tenants[i].id);
        free(conf->tenants[i].token);
        if (conf->tenants[i].jwt != NULL) {
            free(conf->tenants[i].jwt->issuer);
            free(conf->tenants[i].jwt->audience);
            free(conf->tenants[i].jwt->jwks);
            free(conf->tenants[i].jwt->jwks_url);
            free(conf->tenants[i].jwt);
        }
    }
    free(conf->tenants);
    for (size_t i = 0; i < conf->nlisteners; i++) {
        struct ferry_conf_listener *l = &conf->listeners[i];

        free(l->name);
        free(l->plugin);
        free(l->listen);
        free(l->destination);
        free(l->tenant);
        free(l->allow);
        conf_opts_free(l->opts);
    }
    free(conf->listeners);
    ferry_registry_unref(conf->registry);
    free(conf->path);
    free(conf->dir);
    free(conf->plugins_dir);
    free(conf->access_log);
    free(conf->admin_listen);
    free(conf->tunnel.listen);
    free(conf->tunnel.advertise);
    free(conf->tunnel.cert);
    free(conf->tunnel.key);
    free(conf->tunnel.client_ca);
    free(conf->destinations_dir);
    store_free(conf->store);
    free(conf);
}

void
ferry_conf_set_registry(struct ferry_conf *conf, struct ferry_registry *reg)
{
    ferry_registry_unref(conf->registry);
    conf->registry = ferry_registry_ref(reg);
}
