/*
 * store.c: a replica's mirror of `<prefix>/` in etcd (store.h).
 *
 * State: the destinations as last good JSON values with their mod_revision (sorted by
 * key), the live replicas, the last applied revision. A cycle:
 *
 *   snapshot (range of the prefix at revision R) ──► apply ──► watch from R + 1
 *        ▲                                                       │ events: apply
 *        └── compacted / revision went backwards / bad answer ────┘ broken: watch again
 *                                                                    from revision + 1
 *
 * Applying coalesces: events of one loop turn make one new registry. Each destination
 * is validated when its value arrives; a bad one is skipped and the last good one kept.
 * The lease of this replica's key is kept alive every 3 s; when that fails etcd counts
 * as down (degraded: serve what we have, refuse writes) and the watch is started over.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <malloc.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>

#include <ferry/log.h>

#include "conf/conf.h"
#include "dest/dest-int.h"
#include "store/etcd.h"
#include "store/store-int.h"
#include "store/store.h"
#include "util/errlist.h"

#define SNAPSHOT_TIMEOUT_MS  30000
/* Silence before the watch is made again. etcd sends nothing on a quiet prefix (its
 * progress notes come every 10 minutes by default), so this is long; a stuck etcd is
 * found by the 3 s lease keepalive instead, which starts the watch over. */
#define WATCH_IDLE_MS        300000
#define WATCH_CREATE_MS      5000       /* a new watch unanswered this long: degraded */
#define LEASE_TTL_S          10
#define KEEPALIVE_MS         3000
#define BACKOFF_MIN_MS       100
#define BACKOFF_MAX_MS       2000
#define CACHE_MIN_INTERVAL_S 1
#define MAX_REPLICAS         256


static void cycle_schedule(struct ferry_store *s, bool snapshot, const char *why);
static void cycle_schedule_quiet(struct ferry_store *s);
static void lease_schedule(struct ferry_store *s, uint32_t ms);

/* ---- entries ------------------------------------------------------------------------ */

static void
entry_fini(struct entry *e)
{
    free(e->key);
    free(e->tenant);
    free(e->name);
    if (e->value != NULL)
        explicit_bzero(e->value, e->value_len);
    free(e->value);
    ferry_dest_fini(&e->dest);
    memset(e, 0, sizeof(*e));
}

static size_t
entry_find(const struct ferry_store *s, const char *key, bool *found)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int    c = strcmp(s->entries[mid].key, key);

        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Put e (moved in) at its place, replacing an entry of the same key. */
static int
entry_put(struct ferry_store *s, struct entry *e)
{
    bool   found;
    size_t i = entry_find(s, e->key, &found);

    if (found) {
        entry_fini(&s->entries[i]);
        s->entries[i] = *e;
        return FERRY_OK;
    }
    if (s->n == s->cap) {
        size_t        cap = s->cap == 0 ? 64 : s->cap * 2;
        struct entry *ne = realloc(s->entries, cap * sizeof(*ne));

        if (ne == NULL)
            return FERRY_ENOMEM;
        s->entries = ne;
        s->cap = cap;
    }
    memmove(&s->entries[i + 1], &s->entries[i], (s->n - i) * sizeof(*s->entries));
    s->entries[i] = *e;
    s->n++;
    return FERRY_OK;
}

static bool
entry_remove(struct ferry_store *s, const char *key)
{
    bool   found;
    size_t i = entry_find(s, key, &found);

    if (!found)
        return false;
    entry_fini(&s->entries[i]);
    memmove(&s->entries[i], &s->entries[i + 1], (s->n - i - 1) * sizeof(*s->entries));
    s->n--;
    return true;
}

static void
entries_clear(struct ferry_store *s)
{
    for (size_t i = 0; i < s->n; i++)
        entry_fini(&s->entries[i]);
    s->n = 0;
}

/* ---- values into destinations ------------------------------------------------------- */

static char *
prop_text(const json_t *v)
{
    char buf[64];

    switch (json_typeof(v)) {
    case JSON_STRING:  return strdup(json_string_value(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(buf);
    case JSON_TRUE:    return strdup("true");
    case JSON_FALSE:   return strdup("false");
    default:           return NULL;
    }
}

static void
props_free(struct ferry_prop *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i].value != NULL)
            explicit_bzero(p[i].value, strlen(p[i].value));
        free(p[i].key);
        free(p[i].value);
    }
    free(p);
}

/* The properties of a value, tenant and Name from the key. FERRY_OK, or why. */
static int
value_props(const char *value, size_t len, const char *tenant, const char *key_name,
            struct ferry_prop **out, size_t *nout, char *why, size_t whylen)
{
    json_error_t       jerr;
    json_t            *o = NULL;
    struct ferry_prop *p = NULL;
    size_t             n = 0, cap, nlen = strlen(key_name);
    size_t             slen = strlen(STORE_INSTANCE_SUFFIX);
    const char        *k;
    json_t            *v;
    bool               has_name = false;
    bool               instance = nlen > slen &&
                                  strcmp(key_name + nlen - slen, STORE_INSTANCE_SUFFIX) == 0;
    char               name[512];

    /* The key's last segment: the Name, with "@instance" at the instance level. */
    if (instance)
        nlen -= slen;
    if (nlen >= sizeof(name)) {
        snprintf(why, whylen, "the key's name is too long");
        return FERRY_EINVAL;
    }
    memcpy(name, key_name, nlen);
    name[nlen] = '\0';
    o = json_loadb(value, len, 0, &jerr);

    if (o == NULL || !json_is_object(o)) {
        snprintf(why, whylen, o == NULL ? "not JSON (line %d, column %d)"
                 : "not a JSON object", jerr.line, jerr.column);
        json_decref(o);
        return FERRY_EINVAL;
    }
    cap = json_object_size(o) + 3;
    if (cap > 515 || (p = calloc(cap, sizeof(*p))) == NULL) {
        snprintf(why, whylen, cap > 515 ? "more than 512 properties" : "out of memory");
        json_decref(o);
        return FERRY_EINVAL;
    }
    json_object_foreach(o, k, v) {
        if (strcmp(k, "tenant") == 0) {
            /* The key says whose it is; a value claiming another tenant is a mistake. */
            if (!json_is_string(v) || strcmp(json_string_value(v), tenant) != 0) {
                snprintf(why, whylen, "its tenant property is not the key's tenant '%s'",
                         tenant);
                goto bad;
            }
            continue;
        }
        if (strcmp(k, "level") == 0) {
            /* Likewise the level. */
            if (!json_is_string(v) ||
                strcmp(json_string_value(v), instance ? "instance" : "subaccount") != 0) {
                snprintf(why, whylen, "its level property is not the key's level '%s'",
                         instance ? "instance" : "subaccount");
                goto bad;
            }
            continue;
        }
        if (strcmp(k, "Name") == 0) {
            if (!json_is_string(v) || strcmp(json_string_value(v), name) != 0) {
                snprintf(why, whylen, "its Name is not the key's name '%.200s'", name);
                goto bad;
            }
            has_name = true;
        }
        if (*k == '\0' || (p[n].key = strdup(k)) == NULL ||
            (p[n].value = prop_text(v)) == NULL) {
            snprintf(why, whylen, *k == '\0' ? "an empty property name"
                     : p[n].key == NULL ? "out of memory"
                     : "property '%.100s': want a string", k);
            n += p[n].key != NULL;
            goto bad;
        }
        n++;
    }
    if (!has_name && ((p[n].key = strdup("Name")) == NULL || (p[n++].value = strdup(name)) == NULL))
        goto oom;
    if ((p[n].key = strdup("tenant")) == NULL || (p[n++].value = strdup(tenant)) == NULL)
        goto oom;
    if (instance &&
        ((p[n].key = strdup("level")) == NULL || (p[n++].value = strdup("instance")) == NULL))
        goto oom;
    json_decref(o);
    *out = p;
    *nout = n;
    return FERRY_OK;
oom:
    snprintf(why, whylen, "out of memory");
bad:
    json_decref(o);
    props_free(p, n);
    return FERRY_EINVAL;
}

/* The tenant ids of the configuration, for validation. */
static const char **
tenant_ids(const struct ferry_conf *conf)
{
    const char **ids = calloc(conf->ntenants + 1, sizeof(*ids));

    for (size_t i = 0; ids != NULL && i < conf->ntenants; i++)
        ids[i] = conf->tenants[i].id;
    return ids;
}

/* Validate a value as a file's destination would be: FERRY_OK and *d filled (when d),
 * or why (the loader's first message: never a secret value). */
static int
validate(struct ferry_store *s, const char *key, const char *tenant, const char *name,
         const char *value, size_t len, struct ferry_dest *d, char *why, size_t whylen)
{
    struct ferry_prop *props;
    size_t             n;
    const char       **ids;
    int                rc;

    if (len > STORE_MAX_VALUE) {
        snprintf(why, whylen, "value over %d bytes", STORE_MAX_VALUE);
        return FERRY_EINVAL;
    }
    if (value_props(value, len, tenant, name, &props, &n, why, whylen) != FERRY_OK)
        return FERRY_EINVAL;
    if ((ids = tenant_ids(s->conf)) == NULL) {
        props_free(props, n);
        snprintf(why, whylen, "out of memory");
        return FERRY_ENOMEM;
    }
    ferry_errlist_reset(s->errs);
    {
        struct ferry_dest_env env = { .tenants = ids, .ntenants = s->conf->ntenants,
                                      .errs = s->errs };

        rc = ferry_dest_init(d, props, n, key, s->conf->dir, 0, 0, &env);
    }
    free(ids);
    if (rc != FERRY_OK) {
        snprintf(why, whylen, "%s", s->errs->count > 0 ? s->errs->items[0].msg : "invalid");
        ferry_dest_fini(d);
    }
    return rc;
}

/* ---- keys --------------------------------------------------------------------------- */

enum key_kind { KEY_OTHER, KEY_DEST, KEY_REPLICA };

/* Which kind of key, and its parts (pointers into key; *tlen: the tenant's length). */
static enum key_kind
key_kind(const struct ferry_store *s, const char *key, const char **tenant, size_t *tlen,
         const char **name)
{
    size_t      dp = strlen(s->dest_prefix), rp = strlen(s->rep_prefix);
    const char *slash;

    if (strncmp(key, s->dest_prefix, dp) == 0) {
        *tenant = key + dp;
        if ((slash = strchr(*tenant, '/')) == NULL || slash == *tenant || slash[1] == '\0' ||
            strchr(slash + 1, '/') != NULL)
            return KEY_OTHER;
        *tlen = (size_t)(slash - *tenant);
        *name = slash + 1;
        return KEY_DEST;
    }
    if (strncmp(key, s->rep_prefix, rp) == 0 && key[rp] != '\0' && strchr(key + rp, '/') == NULL) {
        *name = key + rp;
        return KEY_REPLICA;
    }
    return KEY_OTHER;
}

static void
reject(struct ferry_store *s, const char *key, const char *why)
{
    s->rejected++;
    ferry_log(NULL, FERRY_WARN, "store: skipping a bad value; the last good one stays",
              FLOG_STR("key", key), FLOG_STR("reason", why));
}

/* A destination's value arrived (snapshot or watch): keep it if it is good. */
static void
dest_put(struct ferry_store *s, const char *key, const char *value, size_t len, int64_t mod_rev)
{
    const char  *tenant, *name;
    size_t       tlen = 0;
    char         why[512];
    struct entry e = { 0 };

    if (key_kind(s, key, &tenant, &tlen, &name) != KEY_DEST)
        return;
    if ((e.tenant = strndup(tenant, tlen)) == NULL || (e.name = strdup(name)) == NULL ||
        (e.key = strdup(key)) == NULL) {
        entry_fini(&e);
        reject(s, key, "out of memory");
        return;
    }
    if (validate(s, key, e.tenant, e.name, value, len, &e.dest, why, sizeof(why)) != FERRY_OK) {
        entry_fini(&e);
        reject(s, key, why);
        return;
    }
    if ((e.value = malloc(len + 1)) == NULL) {
        entry_fini(&e);
        reject(s, key, "out of memory");
        return;
    }
    memcpy(e.value, value, len);
    e.value[len] = '\0';
    e.value_len = len;
    e.mod_rev = mod_rev;
    if (entry_put(s, &e) != FERRY_OK) {
        entry_fini(&e);
        reject(s, key, "out of memory");
        return;
    }
    s->dirty = true;
}

/* ---- replicas ----------------------------------------------------------------------- */

static void
replicas_clear(struct ferry_store *s)
{
    for (size_t i = 0; i < s->nreplicas; i++) {
        free(s->replicas[i].id);
        free(s->replicas[i].tunnel);
    }
    free(s->replicas);
    s->replicas = NULL;
    s->nreplicas = 0;
}

static void
replica_remove(struct ferry_store *s, const char *id)
{
    for (size_t i = 0; i < s->nreplicas; i++) {
        if (strcmp(s->replicas[i].id, id) == 0) {
            free(s->replicas[i].id);
            free(s->replicas[i].tunnel);
            s->replicas[i] = s->replicas[--s->nreplicas];
            s->replicas_dirty = true;
            return;
        }
    }
}

static void
replica_put(struct ferry_store *s, const char *key, const char *id, const char *value,
            size_t len)
{
    json_t         *o = json_loadb(value, len, 0, NULL);
    const char     *tunnel = json_string_value(json_object_get(o, "tunnel"));
    int64_t         slots = etcd_int(o, "slots", 0);
    struct replica *nr;

    if (o == NULL || !json_is_object(o) || (tunnel != NULL && strlen(tunnel) > 300) ||
        slots < 0 || slots > 4096) {
        json_decref(o);
        reject(s, key, "a replica's value: want {\"tunnel\": \"host:port\", \"slots\": N}");
        return;
    }
    replica_remove(s, id);
    if (s->nreplicas >= MAX_REPLICAS ||
        (nr = realloc(s->replicas, (s->nreplicas + 1) * sizeof(*nr))) == NULL) {
        json_decref(o);
        reject(s, key, s->nreplicas >= MAX_REPLICAS ? "too many replicas" : "out of memory");
        return;
    }
    s->replicas = nr;
    nr = &s->replicas[s->nreplicas];
    nr->id = strdup(id);
    nr->tunnel = strdup(tunnel != NULL ? tunnel : "");
    nr->slots = (unsigned)slots;
    json_decref(o);
    if (nr->id == NULL || nr->tunnel == NULL) {
        free(nr->id);
        free(nr->tunnel);
        return;
    }
    s->nreplicas++;
    s->replicas_dirty = true;
}

/* ---- applying ----------------------------------------------------------------------- */

/* Names in key order, to find a Name used by two tenants. */
struct by_name {
    const char *name;
    size_t      idx;
};

static int
by_name_cmp(const void *a, const void *b)
{
    const struct by_name *x = a, *y = b;
    int                   c = strcmp(x->name, y->name);

    return c != 0 ? c : x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Build the registry from the entries (copies of their validated destinations). A Name
 * used by two tenants is kept for the first key only: the registry finds destinations
 * by Name. With revalidate (the tenants or the directory changed), each value is
 * validated again and one that no longer passes is left out and logged. */
static struct ferry_registry *
registry_build(struct ferry_store *s, bool revalidate)
{
    struct ferry_dest     *dests = calloc(s->n + 1, sizeof(*dests));
    struct by_name        *order = calloc(s->n + 1, sizeof(*order));
    bool                  *skip = calloc(s->n + 1, sizeof(*skip));
    struct ferry_registry *reg = NULL;
    size_t                 n = 0;
    char                   why[512];

    if (dests == NULL || order == NULL || skip == NULL)
        goto out;
    for (size_t i = 0; i < s->n; i++) {
        order[i].name = s->entries[i].dest.name;    /* without "@instance" */
        order[i].idx = i;
    }
    qsort(order, s->n, sizeof(*order), by_name_cmp);
    /* One tenant may have a Name at both levels (two keys); the first in key order of
     * a name owns it. */
    for (size_t i = 1, first = 0; i < s->n; i++) {
        const struct entry *e = &s->entries[order[i].idx], *f;

        if (strcmp(order[i].name, order[i - 1].name) != 0) {
            first = i;
            continue;
        }
        f = &s->entries[order[first].idx];
        if (strcmp(e->tenant, f->tenant) != 0) {
            skip[order[i].idx] = true;
            ferry_log(NULL, FERRY_WARN, "store: a destination name is used by two tenants; "
                      "the first key wins", FLOG_STR("key", e->key), FLOG_STR("first", f->key));
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        struct entry *e = &s->entries[i];

        if (skip[i])
            continue;
        if (revalidate) {
            struct ferry_dest fresh;

            if (validate(s, e->key, e->tenant, e->name, e->value, e->value_len, &fresh, why,
                         sizeof(why)) != FERRY_OK) {
                ferry_log(NULL, FERRY_WARN, "store: a destination no longer validates; "
                          "left out", FLOG_STR("key", e->key), FLOG_STR("reason", why));
                continue;
            }
            ferry_dest_fini(&e->dest);
            e->dest = fresh;
        }
        if (ferry_dest_copy(&dests[n], &e->dest) != FERRY_OK) {
            for (size_t j = 0; j < n; j++)
                ferry_dest_fini(&dests[j]);
            goto out;
        }
        n++;
    }
    ferry_errlist_reset(s->errs);
    if (ferry_registry_new(dests, n, &reg, s->errs) != FERRY_OK)
        reg = NULL;
    dests = NULL;                   /* the registry took it, whatever the outcome */
out:
    free(dests);
    free(order);
    free(skip);
    return reg;
}

static void cache_schedule(struct ferry_store *s);

static void
apply_now(struct ferry_store *s)
{
    if (s->dirty || !s->have_data) {
        struct ferry_registry *reg = registry_build(s, s->revalidate);

        if (reg == NULL) {
            ferry_log(NULL, FERRY_ERROR, "store: out of memory building the registry; "
                      "keeping the previous one");
            return;
        }
        ferry_registry_unref(s->registry);
        s->registry = reg;
        s->dirty = false;
        s->revalidate = false;
        s->have_data = true;
        if (s->hooks.apply != NULL)
            s->hooks.apply(s->hooks.arg, reg);
        cache_schedule(s);
    }
    if (s->replicas_dirty) {
        struct store_replica r[MAX_REPLICAS];

        s->replicas_dirty = false;
        for (size_t i = 0; i < s->nreplicas; i++) {
            r[i].id = s->replicas[i].id;
            r[i].tunnel = s->replicas[i].tunnel;
            r[i].slots = s->replicas[i].slots;
        }
        if (s->hooks.replicas != NULL)
            s->hooks.replicas(s->hooks.arg, r, s->nreplicas);
    }
    store_waits_check(s);
}

static void
on_apply(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    apply_now(arg);
}

/* Apply on the next loop turn: every change that arrives before it goes in together. */
static void
apply_soon(struct ferry_store *s)
{
    static const struct timeval now = { 0, 0 };

    if (s->apply_ev != NULL && !evtimer_pending(s->apply_ev, NULL))
        evtimer_add(s->apply_ev, &now);
}

/* ---- the cache file ----------------------------------------------------------------- */

static void
cache_write(struct ferry_store *s)
{
    json_t          *dests = json_object(), *root;
    char            *text;
    struct ferry_err err = { 0 };

    if (dests == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        json_t *v = json_loadb(s->entries[i].value, s->entries[i].value_len, 0, NULL);

        if (v != NULL)
            json_object_set_new(dests, s->entries[i].key,
                                json_pack("{s:o, s:I}", "value", v, "mod_revision",
                                          (json_int_t)s->entries[i].mod_rev));
    }
    root = json_pack("{s:i, s:s, s:I, s:I, s:o}", "version", 1, "prefix", s->prefix,
                     "revision", (json_int_t)s->revision, "written", (json_int_t)time(NULL),
                     "destinations", dests);
    if (root == NULL || (text = json_dumps(root, JSON_COMPACT)) == NULL) {
        json_decref(root);
        return;
    }
    json_decref(root);
    /* 0600: the values hold credentials, like destination files. */
    if (ferry_conf_file_replace(s->cache_path, text, strlen(text), 0600, &err) != FERRY_OK)
        ferry_log(NULL, FERRY_WARN, "store: cannot write the cache",
                  FLOG_STR("cache", s->cache_path), FLOG_STR("error", err.msg));
    else
        s->cache_written = time(NULL);
    explicit_bzero(text, strlen(text));
    free(text);
}

static void
on_cache(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cache_write(arg);
}

/* At most once a second: a burst of changes writes the file once, at its end. */
static void
cache_schedule(struct ferry_store *s)
{
    time_t         now = time(NULL);
    struct timeval tv = { 0, 0 };

    if (s->cache_ev == NULL || evtimer_pending(s->cache_ev, NULL))
        return;
    if (now - s->cache_written < CACHE_MIN_INTERVAL_S)
        tv.tv_sec = CACHE_MIN_INTERVAL_S;
    evtimer_add(s->cache_ev, &tv);
}

/* Read the cache at start. FERRY_OK when it held a snapshot of this prefix. */
static int
cache_read(struct ferry_store *s)
{
    char            *text = NULL;
    size_t           len = 0;
    struct ferry_err err = { 0 };
    json_t          *root, *dests, *v;
    const char      *key;
    int64_t          written;

    if (access(s->cache_path, F_OK) != 0)
        return FERRY_ENOTFOUND;
    if (ferry_conf_file_read(s->cache_path, &text, &len, &err) != FERRY_OK &&
        (text = NULL, true)) {
        /* ferry_conf_file_read caps at 4 MiB: read bigger caches directly. */
        FILE *fp = fopen(s->cache_path, "r");

        if (fp == NULL)
            return FERRY_EIO;
        root = json_loadf(fp, 0, NULL);
        fclose(fp);
    } else {
        root = json_loadb(text, len, 0, NULL);
        explicit_bzero(text, len);
        free(text);
    }
    if (root == NULL || etcd_int(root, "version", 0) != 1 ||
        !json_is_string(json_object_get(root, "prefix")) ||
        strcmp(json_string_value(json_object_get(root, "prefix")), s->prefix) != 0 ||
        !json_is_object(dests = json_object_get(root, "destinations"))) {
        ferry_log(NULL, FERRY_WARN, "store: the cache is not a snapshot of this prefix; "
                  "ignored", FLOG_STR("cache", s->cache_path));
        json_decref(root);
        return FERRY_EINVAL;
    }
    json_object_foreach(dests, key, v) {
        char *val = json_dumps(json_object_get(v, "value"), JSON_COMPACT);

        if (val != NULL) {
            dest_put(s, key, val, strlen(val), etcd_int(v, "mod_revision", 0));
            explicit_bzero(val, strlen(val));
            free(val);
        }
    }
    s->revision = etcd_int(root, "revision", 0);
    written = etcd_int(root, "written", 0);
    ferry_log(NULL, FERRY_WARN, "store: serving from the cache until etcd answers",
              FLOG_STR("cache", s->cache_path), FLOG_INT("revision", s->revision),
              FLOG_INT("destinations", (long long)s->n),
              FLOG_INT("age_s", (long long)(time(NULL) - written)));
    json_decref(root);
    s->dirty = true;
    return FERRY_OK;
}

/* ---- snapshot and watch ------------------------------------------------------------- */

void
store_set_up(struct ferry_store *s, bool up, const char *why)
{
    if (s->up == up)
        return;
    s->up = up;
    if (up && !s->ever_up)
        ferry_log(NULL, FERRY_INFO, "store: in step with etcd",
                  FLOG_STR("endpoint", etcd_endpoint(s->etcd)),
                  FLOG_INT("revision", s->revision));
    else if (up)
        ferry_log(NULL, FERRY_INFO, "store: etcd is back; in step again",
                  FLOG_STR("endpoint", etcd_endpoint(s->etcd)),
                  FLOG_INT("revision", s->revision));
    else if (s->have_data)
        ferry_log(NULL, FERRY_WARN, "store: etcd unreachable; serving the last snapshot "
                  "(degraded)", FLOG_STR("reason", why), FLOG_INT("revision", s->revision));
    else
        ferry_log(NULL, FERRY_WARN, "store: etcd unreachable and no cache: not ready until "
                  "the first snapshot", FLOG_STR("reason", why));
    s->ever_up |= up;
}

/* One key-value of a range or an event. put: false for a DELETE. */
static void
kv_apply(struct ferry_store *s, const json_t *kv, bool put)
{
    size_t        klen, vlen;
    char         *key = etcd_unb64(json_object_get(kv, "key"), 4096, &klen, false);
    char         *val = NULL;
    const char   *tenant, *name;
    size_t        tlen;
    enum key_kind k;

    if (key == NULL || strlen(key) != klen)
        goto out;
    k = key_kind(s, key, &tenant, &tlen, &name);
    if (k == KEY_OTHER)
        goto out;
    if (!put) {
        if (k == KEY_DEST)
            s->dirty |= entry_remove(s, key);
        else
            replica_remove(s, name);
        goto out;
    }
    val = etcd_unb64(json_object_get(kv, "value"), STORE_MAX_VALUE, &vlen, true);
    if (val == NULL) {
        reject(s, key, "value over 1 MiB, or not base64");
        goto out;
    }
    if (k == KEY_DEST)
        dest_put(s, key, val, vlen, etcd_int(kv, "mod_revision", 0));
    else
        replica_put(s, key, name, val, vlen);
out:
    if (val != NULL)
        explicit_bzero(val, vlen);
    free(val);
    free(key);
}

static void watch_start(struct ferry_store *s);

/* The snapshot could not be read: degraded, logged, tried again. */
static void
snapshot_failed(struct ferry_store *s, const char *why)
{
    /* Said once, then every 30th try: a replica started before etcd waits quietly. */
    if (s->snap_failures++ % 30 == 0)
        ferry_log(NULL, FERRY_WARN, s->have_data ? "store: cannot read the snapshot; "
                  "serving what this replica has" : "store: cannot read the snapshot; "
                  "not ready until it can", FLOG_STR("reason", why),
                  FLOG_INT("tries", (long long)s->snap_failures));
    store_set_up(s, false, why);
    cycle_schedule(s, true, why);
}

static void
on_snapshot(const struct etcd_reply *r, void *arg)
{
    struct ferry_store *s = arg;
    json_t             *kvs, *kv;
    size_t              i;
    int64_t             rev;
    struct entry       *old;
    size_t              nold;

    s->snap_call = NULL;
    if (r->result == NULL) {
        snapshot_failed(s, r->why);
        return;
    }
    rev = etcd_int(json_object_get(r->result, "header"), "revision", -1);
    kvs = json_object_get(r->result, "kvs");
    if (rev < 0 || (kvs != NULL && !json_is_array(kvs))) {
        /* JSON, but not a range answer (an array, kvs an object): as much a failure as
         * no answer. Without this, a resync already under way retried silently. */
        snapshot_failed(s, "a range answer without header.revision, or kvs not a list");
        return;
    }
    /* A fresh picture: destinations that are gone go, bad values keep their last good
     * version (the old entries are the fallback for a key that fails to validate). */
    old = s->entries;
    nold = s->n;
    s->entries = NULL;
    s->n = s->cap = 0;
    replicas_clear(s);
    json_array_foreach(kvs, i, kv) {
        size_t before = s->rejected;

        kv_apply(s, kv, true);
        if (s->rejected != before) {
            size_t klen;
            char  *key = etcd_unb64(json_object_get(kv, "key"), 4096, &klen, false);

            for (size_t j = 0; key != NULL && j < nold; j++) {
                if (old[j].key != NULL && strcmp(old[j].key, key) == 0) {
                    struct entry keep = old[j];

                    memset(&old[j], 0, sizeof(old[j]));
                    if (entry_put(s, &keep) != FERRY_OK)
                        entry_fini(&keep);
                    break;
                }
            }
            free(key);
        }
    }
    for (i = 0; i < nold; i++)
        entry_fini(&old[i]);
    free(old);
    if (s->revision > rev)
        ferry_log(NULL, FERRY_WARN, "store: etcd's revision went backwards (restored from "
                  "a backup?); its snapshot is the truth", FLOG_INT("was", s->revision),
                  FLOG_INT("now", rev));
    s->revision = rev;
    s->dirty = true;
    s->replicas_dirty = true;
    s->need_snapshot = false;
    s->snap_failures = 0;
    ferry_log(NULL, FERRY_INFO, "store: snapshot read", FLOG_INT("revision", rev),
              FLOG_INT("destinations", (long long)s->n),
              FLOG_INT("replicas", (long long)s->nreplicas),
              FLOG_STR("endpoint", etcd_endpoint(s->etcd)));
    apply_now(s);
    /* A snapshot of thousands of destinations parsed a large answer and built the old
     * and the new registry side by side: give what is free back to the system, or the
     * peak stays in the RSS for the life of the process. */
    malloc_trim(0);
    watch_start(s);
}

static void
snapshot_start(struct ferry_store *s)
{
    json_t *body = json_pack("{s:o, s:o}", "key", etcd_b64s(s->prefix),
                             "range_end", etcd_prefix_end(s->prefix));

    if (body == NULL ||
        (s->snap_call = etcd_call(s->etcd, "/v3/kv/range", body, SNAPSHOT_TIMEOUT_MS,
                                  on_snapshot, s)) == NULL)
        cycle_schedule(s, true, "out of memory");
}

static void
on_watch_msg(json_t *res, void *arg)
{
    struct ferry_store *s = arg;
    int64_t             rev = etcd_int(json_object_get(res, "header"), "revision", -1);
    json_t             *events = json_object_get(res, "events"), *ev;
    size_t              i;
    int64_t             high = 0;

    if (json_is_true(json_object_get(res, "canceled")) ||
        etcd_int(res, "compact_revision", 0) > 0) {
        int64_t compacted = etcd_int(res, "compact_revision", 0);
        char    why[128];

        snprintf(why, sizeof(why), compacted > 0
                 ? "revision %lld was compacted" : "etcd cancelled the watch",
                 (long long)(s->revision + 1));
        etcd_watch_cancel(s->watch);
        s->watch = NULL;
        s->watch_live = false;
        cycle_schedule(s, compacted > 0, why);
        return;
    }
    if (rev >= 0 && rev < s->revision) {
        etcd_watch_cancel(s->watch);
        s->watch = NULL;
        s->watch_live = false;
        cycle_schedule(s, true, "etcd's revision went backwards (restored?)");
        return;
    }
    if (json_is_true(json_object_get(res, "created"))) {
        evtimer_del(s->watch_deadline);
        s->watch_live = true;
        s->backoff_ms = 0;
        if (s->lease_ok)
            store_set_up(s, true, NULL);
        return;
    }
    json_array_foreach(events, i, ev) {
        const json_t *kv = json_object_get(ev, "kv");
        bool          del = json_is_string(json_object_get(ev, "type")) &&
                            strcmp(json_string_value(json_object_get(ev, "type")), "DELETE") == 0;
        int64_t       mr = etcd_int(kv, "mod_revision", 0);

        if (mr <= s->revision)      /* seen already (a watch restarted from revision+1) */
            continue;
        kv_apply(s, kv, !del);
        s->events++;
        if (mr > high)
            high = mr;
    }
    /* A response with events has come as far as its last event: a watcher catching up
     * gets history in batches whose header already says the store's current revision.
     * Only a response without events (a progress note) vouches for the header's. */
    if (json_array_size(events) > 0) {
        if (high > s->revision)
            s->revision = high;
    } else if (rev > s->revision) {
        s->revision = rev;
    }
    if (s->dirty || s->replicas_dirty)
        apply_soon(s);
    else
        store_waits_check(s);
}

static void
on_watch_end(const char *why, bool broken, void *arg)
{
    struct ferry_store *s = arg;
    bool                was_live = s->watch_live;

    s->watch = NULL;
    s->watch_live = false;
    evtimer_del(s->watch_deadline);
    if (s->stopping)
        return;
    /* A quiet prefix times a live watch out now and then: routine, not news. */
    if (was_live && !broken && strstr(why, "timed out") != NULL) {
        ferry_log(NULL, FERRY_DEBUG, "store: a quiet watch is made again",
                  FLOG_INT("from_revision", s->revision + 1));
        s->backoff_ms = 0;
        cycle_schedule_quiet(s);
        return;
    }
    /* A live watch that ends may just be a member going away: one quick retry first.
     * A watch that could not even start means etcd is not there. */
    if (!was_live)
        store_set_up(s, false, why);
    /* The revision stays: the next watch starts after the last change applied. An
     * answer that broke etcd's API: read the whole snapshot again, trust nothing. */
    cycle_schedule(s, broken, why);
}

static void
watch_start(struct ferry_store *s)
{
    json_t *cr = json_pack("{s:o, s:o, s:I, s:b}", "key", etcd_b64s(s->prefix),
                           "range_end", etcd_prefix_end(s->prefix),
                           "start_revision", (json_int_t)(s->revision + 1),
                           "progress_notify", 1);

    if (cr == NULL ||
        (s->watch = etcd_watch(s->etcd, cr, WATCH_IDLE_MS, on_watch_msg, on_watch_end, s)) == NULL) {
        cycle_schedule(s, false, "out of memory");
        return;
    }
    {
        struct timeval tv = { WATCH_CREATE_MS / 1000, (WATCH_CREATE_MS % 1000) * 1000 };

        evtimer_add(s->watch_deadline, &tv);
    }
}

/* A new watch that etcd does not confirm: not in step, whatever the lease says; the
 * watch itself goes on waiting (its idle timeout, or the keepalive, ends it). */
static void
on_watch_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_store *s = arg;

    (void)fd;
    (void)what;
    if (s->watch != NULL && !s->watch_live)
        store_set_up(s, false, "etcd does not confirm a new watch");
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_store *s = arg;

    (void)fd;
    (void)what;
    if (s->stopping)
        return;
    if (s->need_snapshot)
        snapshot_start(s);
    else
        watch_start(s);
}

/* The next attempt after a jittered, doubling pause; a snapshot if asked for. */
static void
cycle_schedule(struct ferry_store *s, bool snapshot, const char *why)
{
    struct timeval tv;
    uint32_t       jitter = 0;

    if (s->stopping)
        return;
    if (snapshot && !s->need_snapshot) {
        s->resyncs++;
        ferry_log(NULL, FERRY_WARN, "store: reading the snapshot again",
                  FLOG_STR("reason", why), FLOG_INT("revision", s->revision));
    } else if (!snapshot) {
        ferry_log(NULL, s->backoff_ms == 0 ? FERRY_INFO : FERRY_DEBUG,
                  "store: watching again", FLOG_STR("reason", why),
                  FLOG_INT("from_revision", s->revision + 1));
    }
    s->need_snapshot |= snapshot;
    s->backoff_ms = s->backoff_ms == 0 ? BACKOFF_MIN_MS
                    : s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    RAND_bytes((unsigned char *)&jitter, sizeof(jitter));
    jitter %= s->backoff_ms / 2 + 1;
    tv.tv_sec = (s->backoff_ms + jitter) / 1000;
    tv.tv_usec = ((s->backoff_ms + jitter) % 1000) * 1000;
    if (s->watch != NULL) {
        etcd_watch_cancel(s->watch);
        s->watch = NULL;
    }
    etcd_call_cancel(s->snap_call);
    s->snap_call = NULL;
    evtimer_add(s->retry, &tv);
}

/* The watch again at once, without a word (a quiet watch that timed out). */
static void
cycle_schedule_quiet(struct ferry_store *s)
{
    static const struct timeval now = { 0, 0 };

    if (!s->stopping)
        evtimer_add(s->retry, &now);
}

/* ---- this replica's lease ----------------------------------------------------------- */

static void lease_grant(struct ferry_store *s);

static void
lease_lost(struct ferry_store *s, const char *why)
{
    s->lease_ok = false;
    store_set_up(s, false, why);
    /* A watch on a connection that no longer answers would wait for its idle timeout:
     * start it over now, from the last applied revision. */
    if (s->watch != NULL && !s->stopping)
        cycle_schedule(s, s->need_snapshot, why);
}

static void
on_put_self(const struct etcd_reply *r, void *arg)
{
    struct ferry_store *s = arg;

    s->lease_call = NULL;
    if (r->result == NULL) {
        lease_lost(s, r->why);
        lease_schedule(s, KEEPALIVE_MS);
        return;
    }
    s->lease_ok = true;
    if (s->watch_live)
        store_set_up(s, true, NULL);
    lease_schedule(s, KEEPALIVE_MS);
}

static void
put_self(struct ferry_store *s)
{
    char    key[512];
    json_t *body;

    snprintf(key, sizeof(key), "%s%s", s->rep_prefix, s->id);
    body = json_pack("{s:o, s:o, s:I}", "key", etcd_b64s(key), "value",
                     etcd_b64s(s->self_value), "lease", (json_int_t)s->lease);
    if (body == NULL || (s->lease_call = etcd_call(s->etcd, "/v3/kv/put", body,
                                                   CALL_TIMEOUT_MS, on_put_self, s)) == NULL)
        lease_schedule(s, KEEPALIVE_MS);
}

static void
on_grant(const struct etcd_reply *r, void *arg)
{
    struct ferry_store *s = arg;
    int64_t             id;

    s->lease_call = NULL;
    if (r->result == NULL || (id = etcd_int(r->result, "ID", 0)) == 0) {
        lease_lost(s, r->why != NULL ? r->why : "no lease ID in the answer");
        lease_schedule(s, s->backoff_ms > 0 ? s->backoff_ms : BACKOFF_MIN_MS * 5);
        return;
    }
    s->lease = id;
    put_self(s);
}

static void
lease_grant(struct ferry_store *s)
{
    json_t *body = json_pack("{s:i}", "TTL", LEASE_TTL_S);

    s->lease = 0;
    if (body == NULL || (s->lease_call = etcd_call(s->etcd, "/v3/lease/grant", body,
                                                   CALL_TIMEOUT_MS, on_grant, s)) == NULL)
        lease_schedule(s, KEEPALIVE_MS);
}

static void
on_keepalive(const struct etcd_reply *r, void *arg)
{
    struct ferry_store *s = arg;
    json_t             *res;

    s->lease_call = NULL;
    if (r->result == NULL) {
        lease_lost(s, r->why);
        lease_schedule(s, KEEPALIVE_MS / 3);
        return;
    }
    /* A stream answer: {"result": {"ID": …, "TTL": …}}; TTL absent or 0: it expired. */
    res = json_object_get(r->result, "result");
    if (etcd_int(res != NULL ? res : r->result, "TTL", 0) <= 0) {
        ferry_log(NULL, FERRY_WARN, "store: this replica's lease expired; registering again",
                  FLOG_STR("replica", s->id));
        lease_grant(s);
        return;
    }
    if (!s->lease_ok) {
        s->lease_ok = true;
        if (s->watch_live)
            store_set_up(s, true, NULL);
    }
    lease_schedule(s, KEEPALIVE_MS);
}

static void
on_lease_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_store *s = arg;
    json_t             *body;

    (void)fd;
    (void)what;
    if (s->stopping || s->lease_call != NULL)
        return;
    if (s->lease == 0) {
        lease_grant(s);
        return;
    }
    body = json_pack("{s:I}", "ID", (json_int_t)s->lease);
    if (body == NULL || (s->lease_call = etcd_call(s->etcd, "/v3/lease/keepalive", body,
                                                   CALL_TIMEOUT_MS / 2, on_keepalive, s)) == NULL)
        lease_schedule(s, KEEPALIVE_MS);
}

static void
lease_schedule(struct ferry_store *s, uint32_t ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    if (!s->stopping)
        evtimer_add(s->keepalive, &tv);
}

/* ---- life --------------------------------------------------------------------------- */

static char *
join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char  *s = malloc(n);

    if (s != NULL)
        snprintf(s, n, "%s%s", a, b);
    return s;
}

static void
make_id(char *out, size_t len)
{
    char          host[64] = "ferry";
    unsigned char r[4] = { 0 };
    const char   *pod = getenv("HOSTNAME");

    if (pod != NULL && *pod != '\0' && strlen(pod) < sizeof(host))
        snprintf(host, sizeof(host), "%s", pod);
    else
        gethostname(host, sizeof(host) - 1);
    RAND_bytes(r, sizeof(r));
    for (char *p = host; *p != '\0'; p++)
        if (*p == '/' || (unsigned char)*p <= ' ')
            *p = '-';
    snprintf(out, len, "%s-%d-%02x%02x%02x%02x", host, (int)getpid(), r[0], r[1], r[2], r[3]);
}

int
ferry_store_start(struct event_base *base, struct evdns_base *dns, struct ferry_tls_cache *tls,
                  const struct ferry_conf *conf, const struct store_self *self,
                  const struct store_hooks *hooks, struct ferry_store **out,
                  struct ferry_err *err)
{
    struct ferry_store *s = calloc(1, sizeof(*s));
    json_t             *me;

    *out = NULL;
    if (s == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    s->base = base;
    s->conf = conf;
    s->hooks = *hooks;
    make_id(s->id, sizeof(s->id));
    me = json_pack("{s:s, s:i, s:s}", "tunnel", self->tunnel != NULL ? self->tunnel : "",
                   "slots", (int)self->slots, "version", self->version);
    if (me != NULL)
        s->self_value = json_dumps(me, JSON_COMPACT);
    json_decref(me);
    if ((s->prefix = join(conf->store->prefix, "/")) == NULL ||
        (s->dest_prefix = join(s->prefix, "destinations/")) == NULL ||
        (s->rep_prefix = join(s->prefix, "replicas/")) == NULL || s->self_value == NULL ||
        (conf->store->cache != NULL && (s->cache_path = strdup(conf->store->cache)) == NULL) ||
        (s->etcd = etcd_new(base, dns, tls, conf->store)) == NULL ||
        (s->errs = calloc(1, sizeof(*s->errs))) == NULL ||
        (s->retry = evtimer_new(base, on_retry, s)) == NULL ||
        (s->watch_deadline = evtimer_new(base, on_watch_deadline, s)) == NULL ||
        (s->apply_ev = evtimer_new(base, on_apply, s)) == NULL ||
        (s->keepalive = evtimer_new(base, on_lease_timer, s)) == NULL ||
        (s->cache_path != NULL && (s->cache_ev = evtimer_new(base, on_cache, s)) == NULL)) {
        ferry_store_free(s);
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    }
    ferry_log(NULL, FERRY_INFO, "store: etcd", FLOG_STR("endpoint", conf->store->endpoints[0]),
              FLOG_STR("prefix", conf->store->prefix), FLOG_STR("replica", s->id));
    if (s->cache_path != NULL && cache_read(s) == FERRY_OK)
        apply_now(s);
    s->need_snapshot = true;
    snapshot_start(s);
    lease_grant(s);
    *out = s;
    return FERRY_OK;
}

/* The tenants and the base directory: what validating a destination depends on. */
static bool
same_context(const struct ferry_conf *a, const struct ferry_conf *b)
{
    if (a->ntenants != b->ntenants || strcmp(a->dir, b->dir) != 0)
        return false;
    for (size_t i = 0; i < a->ntenants; i++)
        if (strcmp(a->tenants[i].id, b->tenants[i].id) != 0)
            return false;
    return true;
}

void
ferry_store_set_conf(struct ferry_store *s, const struct ferry_conf *conf)
{
    bool same = s->conf == conf || same_context(s->conf, conf);

    s->conf = conf;
    if (!same && s->have_data) {
        s->dirty = true;
        s->revalidate = true;
        apply_now(s);
    }
}

static void
on_revoked(const struct etcd_reply *r, void *arg)
{
    struct ferry_store *s = arg;

    s->lease_call = NULL;
    if (r->result != NULL)
        ferry_log(NULL, FERRY_INFO, "store: this replica left", FLOG_STR("replica", s->id));
}

void
ferry_store_leave(struct ferry_store *s)
{
    json_t *body;

    if (s == NULL || s->lease == 0 || s->stopping)
        return;
    s->stopping = true;
    etcd_call_cancel(s->lease_call);
    s->lease_call = NULL;
    evtimer_del(s->keepalive);
    /* Fire and forget: the lease expires by itself within its TTL anyway. */
    body = json_pack("{s:I}", "ID", (json_int_t)s->lease);
    if (body != NULL)
        s->lease_call = etcd_call(s->etcd, "/v3/lease/revoke", body, CALL_TIMEOUT_MS / 5,
                                  on_revoked, s);
}

void
ferry_store_free(struct ferry_store *s)
{
    if (s == NULL)
        return;
    s->stopping = true;
    while (s->waits != NULL) {
        struct ferry_store_wait *wt = s->waits;

        store_wait_answer(wt, 503, "the gateway is stopping", NULL);
    }
    if (s->cache_path != NULL && s->have_data && s->cache_ev != NULL &&
        evtimer_pending(s->cache_ev, NULL))
        cache_write(s);
    etcd_free(s->etcd);     /* cancels the snapshot, the watch and the lease calls */
    if (s->retry != NULL)
        event_free(s->retry);
    if (s->watch_deadline != NULL)
        event_free(s->watch_deadline);
    if (s->apply_ev != NULL)
        event_free(s->apply_ev);
    if (s->keepalive != NULL)
        event_free(s->keepalive);
    if (s->cache_ev != NULL)
        event_free(s->cache_ev);
    entries_clear(s);
    free(s->entries);
    replicas_clear(s);
    ferry_registry_unref(s->registry);
    free(s->prefix);
    free(s->dest_prefix);
    free(s->rep_prefix);
    free(s->cache_path);
    free(s->self_value);
    free(s->errs);
    free(s);
}

void
ferry_store_replicas_again(struct ferry_store *s)
{
    if (s->nreplicas > 0) {
        s->replicas_dirty = true;
        apply_soon(s);
    }
}

struct ferry_registry *
ferry_store_registry(const struct ferry_store *s)
{
    return s->have_data ? s->registry : NULL;
}

void
ferry_store_stats(const struct ferry_store *s, struct store_stats *out)
{
    out->up = s->up;
    out->have_data = s->have_data;
    out->revision = s->revision;
    out->events = s->events;
    out->resyncs = s->resyncs;
    out->rejected = s->rejected;
    out->replicas = s->nreplicas;
    out->replica_id = s->id;
}

int64_t
ferry_store_etag(const struct ferry_store *s, const char *tenant, const char *name,
                 bool instance)
{
    char   key[1024];
    bool   found;
    size_t i;

    snprintf(key, sizeof(key), "%s%s/%s%s", s->dest_prefix, tenant, name,
             instance ? STORE_INSTANCE_SUFFIX : "");
    i = entry_find(s, key, &found);
    return found ? s->entries[i].mod_rev : 0;
}
