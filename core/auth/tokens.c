/*
 * tokens.c: the token cache (tokens.h). One mutex guards the table and the waiter
 * lists; it is held for lookups and list edits only, never across I/O or a callback.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ferry/err.h>

#include "auth/tokens.h"
#include "stats/stats.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS   60000
#define UNKNOWN_LIFE_S   300

struct tok_waiter {
    struct tok_waiter *next;
    struct tok_home    home;
    tok_cb             cb;
    void              *arg;
    bool               posted;      /* moved to a delivery: cancel only flags it */
    bool               cancelled;
};

struct tok_entry {
    struct tok_entry  *next;
    char              *key;
    char              *type, *value;
    uint64_t           expires_at;      /* ms, monotonic; 0 = no token */
    uint64_t           life_ms;         /* the token's whole lifetime when fetched */
    char              *error;           /* last failure, while in backoff */
    int                status, http_status;
    uint64_t           retry_at;        /* backoff end */
    uint32_t           backoff_ms;
    bool               fetching;
    uint64_t           fetch_started;
    struct tok_waiter *waiters;
};

struct delivery {
    struct tok_waiter *w;
    struct tok_result  r;
};

static pthread_mutex_t   mu = PTHREAD_MUTEX_INITIALIZER;
static struct tok_entry *table;

static uint64_t
clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t (*now_ms)(void) = clock_ms;

void
tok_set_clock(uint64_t (*fn)(void))
{
    now_ms = fn != NULL ? fn : clock_ms;
}

/* The caller's margin, shortened for a short-lived token: refreshing 60 s ahead a
 * token that lives 8 s would refresh it on every request. The cache knows the
 * lifetime itself, so every worker decides alike (a margin computed per worker from
 * what that worker happened to fetch did not: a worker that never fetched refreshed
 * at once). */
static uint64_t
entry_margin_ms(const struct tok_entry *e, uint32_t margin_ms)
{
    uint64_t half = e->life_ms / 2;

    if (half < TOK_MIN_MARGIN_MS)
        half = TOK_MIN_MARGIN_MS;
    return e->life_ms != 0 && half < margin_ms ? half : margin_ms;
}

static char *
dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

void
tok_result_free(struct tok_result *r)
{
    if (r->value != NULL) {
        explicit_bzero(r->value, strlen(r->value));
        free(r->value);
    }
    free(r->type);
    free(r->error);
    r->value = r->type = r->error = NULL;
}

/* A copy of what the entry holds now (under mu). */
static int
entry_result(const struct tok_entry *e, uint64_t now, struct tok_result *out)
{
    memset(out, 0, sizeof(*out));
    out->status = e->value != NULL ? FERRY_OK : e->status;
    out->http_status = e->http_status;
    if (e->value != NULL) {
        out->type = dup_or_null(e->type);
        out->value = dup_or_null(e->value);
        out->expires_in = e->expires_at > now ? (uint32_t)((e->expires_at - now) / 1000) : 0;
        if (out->value == NULL || (e->type != NULL && out->type == NULL)) {
            tok_result_free(out);
            return FERRY_ENOMEM;
        }
    } else {
        out->error = dup_or_null(e->error != NULL ? e->error : "no token");
    }
    return FERRY_OK;
}

static struct tok_entry *
entry_find(const char *key, bool create)
{
    struct tok_entry *e;

    for (e = table; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    if (!create || (e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    if ((e->key = strdup(key)) == NULL) {
        free(e);
        return NULL;
    }
    e->next = table;
    table = e;
    return e;
}

int
tok_get(const char *key, uint32_t margin_ms, const struct tok_home *home, tok_cb cb, void *arg,
        struct tok_result *out, struct tok_waiter **w, bool *fetch)
{
    uint64_t          now = now_ms();
    struct tok_entry *e;
    int               rc;

    *w = NULL;
    *fetch = false;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&mu);
    if ((e = entry_find(key, true)) == NULL) {
        pthread_mutex_unlock(&mu);
        return FERRY_ENOMEM;
    }
    if (e->fetching && now - e->fetch_started > TOK_FETCH_STALE_MS)
        e->fetching = false;                /* its fetcher vanished: take over */
    if (e->value != NULL && e->expires_at > now + TOK_MIN_LEFT_MS) {
        /* Good enough to hand out; inside the margin, refresh in the background. */
        if (!e->fetching && e->expires_at <= now + entry_margin_ms(e, margin_ms)) {
            e->fetching = true;
            e->fetch_started = now;
            *fetch = true;
        }
        rc = entry_result(e, now, out);
        pthread_mutex_unlock(&mu);
        return rc == FERRY_OK ? TOK_HIT : rc;
    }
    if (e->value == NULL && e->error != NULL && now < e->retry_at && !e->fetching) {
        rc = entry_result(e, now, out);     /* negative cache: fail fast */
        pthread_mutex_unlock(&mu);
        return rc == FERRY_OK ? TOK_HIT : rc;
    }
    if ((*w = calloc(1, sizeof(**w))) == NULL) {
        pthread_mutex_unlock(&mu);
        return FERRY_ENOMEM;
    }
    (*w)->home = *home;
    (*w)->cb = cb;
    (*w)->arg = arg;
    (*w)->next = e->waiters;
    e->waiters = *w;
    if (!e->fetching) {
        e->fetching = true;
        e->fetch_started = now;
        *fetch = true;
    }
    pthread_mutex_unlock(&mu);
    return TOK_WAIT;
}

void
tok_cancel(struct tok_waiter *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&mu);
    if (w->posted) {
        w->cancelled = true;                /* the delivery frees it */
    } else {
        for (struct tok_entry *e = table; e != NULL; e = e->next) {
            for (struct tok_waiter **p = &e->waiters; *p != NULL; p = &(*p)->next) {
                if (*p == w) {
                    *p = w->next;
                    free(w);
                    pthread_mutex_unlock(&mu);
                    return;
                }
            }
        }
    }
    pthread_mutex_unlock(&mu);
}

static void
deliver(void *arg, bool run)
{
    struct delivery *d = arg;
    bool             cancelled;

    pthread_mutex_lock(&mu);
    cancelled = d->w->cancelled;
    pthread_mutex_unlock(&mu);
    if (run && !cancelled)
        d->w->cb(&d->r, d->w->arg);
    tok_result_free(&d->r);
    free(d->w);
    free(d);
}

void
tok_fetched(const char *key, const struct tok_result *r)
{
    uint64_t           now = now_ms();
    struct tok_entry  *e;
    struct tok_waiter *waiters;

    pthread_mutex_lock(&mu);
    if ((e = entry_find(key, true)) == NULL) {
        pthread_mutex_unlock(&mu);
        return;
    }
    e->fetching = false;
    e->http_status = r->http_status;
    stats_add(r->status == FERRY_OK && r->value != NULL ? &stats_tokens()->fetched
                                                        : &stats_tokens()->failed, 1);
    if (r->status == FERRY_OK && r->value != NULL) {
        char *type = dup_or_null(r->type != NULL ? r->type : "Bearer");
        char *value = strdup(r->value);

        if (type != NULL && value != NULL) {
            if (e->value != NULL)
                explicit_bzero(e->value, strlen(e->value));
            free(e->value);
            free(e->type);
            e->value = value;
            e->type = type;
            e->life_ms = (uint64_t)(r->expires_in != 0 ? r->expires_in : UNKNOWN_LIFE_S) * 1000;
            e->expires_at = now + e->life_ms;
            free(e->error);
            e->error = NULL;
            e->status = FERRY_OK;
            e->backoff_ms = 0;
        } else {
            free(type);
            free(value);
        }
    } else {
        /* A failed refresh keeps a still valid token; a failed first fetch backs off. */
        free(e->error);
        e->error = dup_or_null(r->error != NULL ? r->error : "token retrieval failed");
        e->status = r->status != FERRY_OK ? r->status : FERRY_EUNAVAIL;
        e->backoff_ms = e->backoff_ms == 0 ? BACKOFF_FIRST_MS
                                           : (e->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                                                 : e->backoff_ms * 2);
        e->retry_at = now + e->backoff_ms;
        if (e->value != NULL && e->expires_at <= now + TOK_MIN_LEFT_MS) {
            explicit_bzero(e->value, strlen(e->value));
            free(e->value);
            e->value = NULL;
        }
    }
    waiters = e->waiters;
    e->waiters = NULL;
    for (struct tok_waiter *w = waiters; w != NULL; w = w->next)
        w->posted = true;
    /* Each waiter gets its own copy, delivered on its own thread. */
    for (struct tok_waiter *w = waiters, *next; w != NULL; w = next) {
        struct delivery *d = calloc(1, sizeof(*d));

        next = w->next;
        if (d == NULL || entry_result(e, now, &d->r) != FERRY_OK) {
            free(d);
            w->cancelled = true;            /* out of memory: it never hears back */
            free(w);
            continue;
        }
        d->w = w;
        pthread_mutex_unlock(&mu);
        if (w->home.post(w->home.ctx, deliver, d) != FERRY_OK)
            deliver(d, false);
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
}

void
tok_forget(const char *key)
{
    pthread_mutex_lock(&mu);
    for (struct tok_entry *e = table; e != NULL; e = e->next) {
        if (strcmp(e->key, key) == 0 && e->value != NULL) {
            explicit_bzero(e->value, strlen(e->value));
            free(e->value);
            e->value = NULL;
            e->expires_at = 0;
        }
    }
    pthread_mutex_unlock(&mu);
}

void
tok_cache_free_all(void)
{
    pthread_mutex_lock(&mu);
    while (table != NULL) {
        struct tok_entry *e = table;

        table = e->next;
        while (e->waiters != NULL) {
            struct tok_waiter *w = e->waiters;

            e->waiters = w->next;
            free(w);
        }
        if (e->value != NULL)
            explicit_bzero(e->value, strlen(e->value));
        free(e->value);
        free(e->type);
        free(e->error);
        free(e->key);
        free(e);
    }
    pthread_mutex_unlock(&mu);
}
