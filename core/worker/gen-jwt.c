/*
 * gen-jwt.c: the keys of tenants that accept JWTs (`tenants[].jwt:`), per generation.
 *
 * Owns each tenant's current key set and how it gets there: a jwks file read when the
 * generation is built (an error there fails the load, so `ferry check` reports it), or
 * a jwks_url fetched on the main thread's loop when a serving generation starts and
 * again when a token names a kid the set does not hold. Workers and the main thread
 * read the set through a mutex held only to take a reference, so a swap never waits
 * for a verification. Leaves the checks themselves to auth/jwt.h, and what a refusal
 * looks like on the wire to the callers (conn.c, conn-user.c, admin/).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "worker/worker.h"

/* Unix seconds between two refetch requests of one tenant: the same bound as
 * ferry_jwks_source_may_refresh, checked first on the asking thread so that a flood
 * of tokens with unknown kids costs an atomic load each, not a post to main. */
#define JWT_ASK_MIN_S FERRY_JWKS_REFRESH_MIN_S

static void
report_jwks_error(struct ferry_errlist *errs, const struct ferry_conf *conf, size_t ti,
                  const struct ferry_conf_tenant *t, const struct ferry_err *err, int rc)
{
    const struct ferry_conf_tenant_jwt *cj = t->jwt;

    if (rc == FERRY_EIO || rc == FERRY_ENOMEM)      /* the message names the file */
        ferry_errlist_add(errs, conf->path, cj->jwks_line, cj->jwks_col,
                          "tenants[%zu] (%s): jwt.jwks: %s", ti, t->id, err->msg);
    else if (err->line > 0)
        ferry_errlist_add(errs, conf->path, cj->jwks_line, cj->jwks_col,
                          "tenants[%zu] (%s): jwt.jwks: %s:%d:%d: %s", ti, t->id, cj->jwks,
                          err->line, err->col, err->msg);
    else
        ferry_errlist_add(errs, conf->path, cj->jwks_line, cj->jwks_col,
                          "tenants[%zu] (%s): jwt.jwks: %s: %s", ti, t->id, cj->jwks,
                          err->msg);
}

/* prev's keys for the same tenant and URL: a reload or a store change keeps them
 * rather than refusing every token until a new fetch lands. */
static struct ferry_jwks *
prev_url_keys(const struct gen *prev, const struct ferry_conf_tenant *t)
{
    struct gen_jwt    *o;
    struct ferry_jwks *keys;

    if (prev == NULL || (o = gen_jwt_find(prev, t->id)) == NULL ||
        o->t->jwt->jwks_url == NULL || strcmp(o->t->jwt->jwks_url, t->jwt->jwks_url) != 0)
        return NULL;
    pthread_mutex_lock(&o->mu);
    keys = ferry_jwks_ref(o->keys);
    pthread_mutex_unlock(&o->mu);
    return keys;
}

int
gen_jwt_load(struct gen *g, const struct gen *prev, struct ferry_errlist *errs)
{
    const struct ferry_conf *conf = g->conf;
    size_t                   n = 0;
    int                      rc = FERRY_OK;

    for (size_t i = 0; i < conf->ntenants; i++)
        n += conf->tenants[i].jwt != NULL && conf->tenants[i].id != NULL;
    if (n == 0)
        return FERRY_OK;
    if ((g->jwt = calloc(n, sizeof(*g->jwt))) == NULL)
        return FERRY_ENOMEM;
    for (size_t i = 0; i < conf->ntenants; i++) {
        const struct ferry_conf_tenant *t = &conf->tenants[i];
        struct gen_jwt                 *j;
        struct ferry_err                err = { 0 };
        int                             lrc;

        if (t->jwt == NULL || t->id == NULL)
            continue;
        j = &g->jwt[g->njwt++];             /* freed by gen_jwt_free from here on */
        pthread_mutex_init(&j->mu, NULL);
        j->t = t;
        j->g = g;
        j->cf.issuer = t->jwt->issuer;
        j->cf.audience = t->jwt->audience;
        j->cf.leeway_s = t->jwt->leeway_s;
        if (t->jwt->jwks != NULL) {
            if ((lrc = ferry_jwks_load_file(t->jwt->jwks, &j->keys, &err)) != FERRY_OK) {
                report_jwks_error(errs, conf, i, t, &err, lrc);
                rc = lrc == FERRY_ENOMEM ? FERRY_ENOMEM : FERRY_EINVAL;
            }
            continue;
        }
        if (t->jwt->jwks_url == NULL)
            continue;                       /* a partial conf: reported already */
        j->keys = prev_url_keys(prev, t);
        if ((j->boot = ferry_jwks_source_new(NULL, t->jwt->jwks_url)) == NULL ||
            (j->refetch = ferry_jwks_source_new(NULL, t->jwt->jwks_url)) == NULL)
            rc = FERRY_ENOMEM;
    }
    return rc;
}

void
gen_jwt_free(struct gen *g)
{
    for (size_t i = 0; i < g->njwt; i++) {
        struct gen_jwt *j = &g->jwt[i];

        ferry_jwks_source_free(j->boot);    /* cancels a fetch in flight */
        ferry_jwks_source_free(j->refetch);
        ferry_jwks_unref(j->keys);
        pthread_mutex_destroy(&j->mu);
    }
    free(g->jwt);
    g->jwt = NULL;
    g->njwt = 0;
}

struct gen_jwt *
gen_jwt_find(const struct gen *g, const char *id)
{
    if (id == NULL)
        return NULL;
    for (size_t i = 0; i < g->njwt; i++)
        if (strcmp(g->jwt[i].t->id, id) == 0)
            return &g->jwt[i];
    return NULL;
}

static bool
has_keys(struct gen_jwt *j)
{
    bool have;

    pthread_mutex_lock(&j->mu);
    have = j->keys != NULL;
    pthread_mutex_unlock(&j->mu);
    return have;
}

/* A fetch is over (main thread): publish the source's set to the readers. A failure
 * was logged by the source (URL and reason, never the body); the last good set stays. */
static void
publish(struct gen_jwt *j, struct ferry_jwks_source *src, int rc)
{
    struct ferry_jwks *fresh, *old;

    if (rc != FERRY_OK)
        return;
    fresh = ferry_jwks_ref((struct ferry_jwks *)ferry_jwks_source_get(src));
    pthread_mutex_lock(&j->mu);
    old = j->keys;
    j->keys = fresh;
    pthread_mutex_unlock(&j->mu);
    ferry_jwks_unref(old);
    ferry_log(NULL, FERRY_INFO, "jwt: tenant keys loaded", FLOG_STR("tenant", j->t->id),
              FLOG_STR("url", j->t->jwt->jwks_url),
              FLOG_INT("keys", (long long)ferry_jwks_count(fresh)));
}

static void
on_boot_done(void *arg, int rc)
{
    struct gen_jwt *j = arg;

    publish(j, j->boot, rc);
}

static void
on_refetch_done(void *arg, int rc)
{
    struct gen_jwt *j = arg;

    publish(j, j->refetch, rc);
}

void
ferry_gen_jwt_start(struct gen *g, const struct ferry_jwks_fetch *f)
{
    g->jwks_fetch = *f;
    g->jwks_fetch.done = NULL;
    g->jwks_fetch.arg = NULL;
    for (size_t i = 0; i < g->njwt; i++) {
        struct gen_jwt         *j = &g->jwt[i];
        struct ferry_jwks_fetch fj = g->jwks_fetch;

        if (j->boot == NULL || has_keys(j))
            continue;                       /* a file, or the last generation's keys */
        fj.done = on_boot_done;
        fj.arg = j;
        ferry_log(NULL, FERRY_INFO, "jwt: fetching tenant keys; its tokens are refused "
                  "until they land", FLOG_STR("tenant", j->t->id),
                  FLOG_STR("url", j->t->jwt->jwks_url));
        ferry_jwks_source_refresh(j->boot, &fj, (int64_t)time(NULL));
    }
}

/* Main thread: a worker saw an unknown kid. The request holds a generation reference,
 * so j is alive here whatever reloads happened since. When that reference is the last
 * one, nobody verifies with these keys any more — and at exit the loop runs this after
 * the TLS cache a fetch would use is gone —, so nothing is fetched. */
static void
on_ask(evutil_socket_t fd, short what, void *arg)
{
    struct gen_jwt         *j = arg;
    struct gen             *g = j->g;
    struct ferry_jwks_fetch fj = g->jwks_fetch;

    (void)fd;
    (void)what;
    fj.done = on_refetch_done;
    fj.arg = j;
    if (atomic_load(&g->refs) > 1)
        ferry_jwks_source_refresh(j->refetch, &fj, (int64_t)time(NULL));
    ferry_gen_unref(g, NULL);               /* main thread: a last reference frees here */
}

void
gen_jwt_ask_refetch(struct gen_jwt *j)
{
    static const struct timeval now0 = { 0, 0 };
    struct event_base          *base = j->g->jwks_fetch.base;
    int64_t                     now = (int64_t)time(NULL);
    int64_t                     last = atomic_load_explicit(&j->asked_s, memory_order_relaxed);

    if (j->refetch == NULL || base == NULL)
        return;                             /* a file, or a generation that never served */
    if (last != 0 && now >= last && now - last < JWT_ASK_MIN_S)
        return;
    if (!atomic_compare_exchange_strong(&j->asked_s, &last, now))
        return;                             /* another thread asked just now */
    atomic_fetch_add(&j->g->refs, 1);
    if (event_base_once(base, -1, EV_TIMEOUT, on_ask, j, &now0) != 0)
        ferry_gen_unref(j->g, base);
}

int
gen_jwt_verify(struct gen_jwt *j, struct ferry_jwt_cache *cache, struct stats_jwt_cell *cell,
               bool ask, const char *token, size_t len, json_t **claims, const char **reason)
{
    struct ferry_jwks        *keys;
    struct ferry_jwt_counters before = { 0 };
    int                       rc;

    *claims = NULL;
    pthread_mutex_lock(&j->mu);
    keys = ferry_jwks_ref(j->keys);
    pthread_mutex_unlock(&j->mu);
    if (keys == NULL) {                     /* a jwks_url whose first answer is not in */
        *reason = "unknown-key";
        if (ask)
            gen_jwt_ask_refetch(j);
        return FERRY_EDENIED;
    }
    if (cache != NULL)
        before = *ferry_jwt_cache_counters(cache);
    rc = ferry_jwt_verify(cache, keys, &j->cf, token, len, (int64_t)time(NULL), claims,
                          reason);
    if (cache != NULL) {
        const struct ferry_jwt_counters *after = ferry_jwt_cache_counters(cache);

        stats_add(&cell->verifications, after->verifications - before.verifications);
        stats_add(&cell->cache_hits, after->cache_hits - before.cache_hits);
    } else if (rc == FERRY_OK || (rc == FERRY_EDENIED && strcmp(*reason, "bad-signature") == 0)) {
        stats_add(&cell->verifications, 1);     /* no cache: every check verifies */
    }
    ferry_jwks_unref(keys);
    if (rc == FERRY_EDENIED && ask && strcmp(*reason, "unknown-key") == 0)
        gen_jwt_ask_refetch(j);
    return rc;
}

bool
gen_jwt_looks_like(const char *text, size_t len)
{
    size_t dots = 0, part = 0;

    if (text == NULL || len == 0 || len > FERRY_JWT_MAX_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '.') {
            part++;
            continue;
        }
        if (part == 0 || ++dots > 2)
            return false;
        part = 0;
    }
    /* An empty signature ("alg": "none") is still tried: refused as malformed, and
     * logged as such, rather than passed over silently. */
    return dots == 2;
}

/* How far a refusal got in auth/jwt.h's order of checks ("other" counts least). */
static int
reason_rank(const char *reason)
{
    for (int i = 0; i + 1 < STATS_JWT_REASONS; i++)
        if (strcmp(stats_jwt_reasons[i], reason) == 0)
            return i;
    return -1;
}

/* The token's "iss" before any check (owned by the caller), or NULL when its payload
 * does not decode to an object with a string "iss". Only to choose whose keys to try:
 * the verification compares it again, after the signature. */
static char *
peek_issuer(const char *token, size_t len)
{
    const char *p1 = memchr(token, '.', len), *p2;
    uint8_t    *buf;
    size_t      plen;
    long        n;
    json_t     *o;
    char       *iss = NULL;

    if (p1 == NULL || (p2 = memchr(p1 + 1, '.', len - (size_t)(p1 + 1 - token))) == NULL)
        return NULL;
    if ((plen = (size_t)(p2 - p1 - 1)) == 0 || (buf = malloc(plen)) == NULL)
        return NULL;                        /* base64 decodes to fewer bytes than it has */
    n = ferry_jwt_b64url_decode(p1 + 1, plen, buf, plen);
    if (n > 0 && (o = json_loadb((const char *)buf, (size_t)n, 0, NULL)) != NULL) {
        const char *v = json_string_value(json_object_get(o, "iss"));

        if (v != NULL)
            iss = strdup(v);
        json_decref(o);
    }
    free(buf);
    return iss;
}

/* Tenants a refused token may ask to refetch: bounded, the rest wait for the next. */
#define JWT_ASK_MAX 16

int
gen_jwt_tenant(struct gen *g, struct ferry_jwt_cache *cache, struct stats_jwt_cell *cell,
               const char *tenant_id, const char *token, size_t len,
               const struct ferry_conf_tenant **out, const char **reason)
{
    struct gen_jwt *ask[JWT_ASK_MAX];
    size_t          nask = 0, tried = 0;
    const char     *best = NULL;
    bool            no_keys = false;
    /* Without a tenant named, only tenants of the token's issuer are tried: a token
     * must not cost a parse (or a signature check) per tenant in the configuration. */
    bool            by_iss = tenant_id == NULL && g->njwt > 1;
    char           *iss = by_iss ? peek_issuer(token, len) : NULL;
    int             rc = FERRY_EDENIED;

    *out = NULL;
    /* Pass 1: no tenant has that issuer; the first tenant with keys names the refusal
     * (malformed, bad-signature, wrong-issuer ... in auth/jwt.h's order). */
    for (int pass = 0; pass < 2 && rc == FERRY_EDENIED; pass++) {
        if (pass == 1 && (!by_iss || tried > 0))
            break;
        for (size_t i = 0; i < g->njwt; i++) {
            struct gen_jwt *j = &g->jwt[i];
            json_t         *claims = NULL;
            const char     *why = NULL;

            if (tenant_id != NULL && strcmp(j->t->id, tenant_id) != 0)
                continue;
            if (pass == 0 && by_iss && (iss == NULL || strcmp(j->cf.issuer, iss) != 0))
                continue;
            if (!has_keys(j)) {
                /* A jwks_url not fetched yet: "unknown-key", but only when no tenant
                 * with keys had a better reason (a malformed token is malformed). */
                if (pass == 0) {
                    tried++;
                    no_keys = true;
                    if (nask < JWT_ASK_MAX)
                        ask[nask++] = j;
                }
                continue;
            }
            tried++;
            rc = gen_jwt_verify(j, cache, cell, false, token, len, &claims, &why);
            if (rc == FERRY_OK) {
                json_decref(claims);
                *out = j->t;
                goto out;
            }
            if (rc != FERRY_EDENIED)
                goto out;
            if (pass == 0 && strcmp(why, "unknown-key") == 0 && j->refetch != NULL &&
                nask < JWT_ASK_MAX)
                ask[nask++] = j;
            if (best == NULL || reason_rank(why) > reason_rank(best))
                best = why;
            if (pass == 1)
                break;
        }
    }
    if (best == NULL && !no_keys && !(by_iss && g->njwt > 0)) {
        *reason = "no-jwt-config";
        goto out;
    }
    if (best == NULL)
        best = "unknown-key";           /* the tenants tried have no keys yet */
    /* No tenant took it: one whose keys come from a URL may have rotated. Asked only
     * now, so that a good token of the second tenant never refetches the first's keys
     * (and each tenant's asks stay bounded to one a minute). */
    for (size_t i = 0; i < nask; i++)
        gen_jwt_ask_refetch(ask[i]);
    stats_jwt_refused(cell, best);
    *reason = best;
out:
    free(iss);
    return rc;
}
