/*
 * cache.c: the upstream TLS context cache (cache.h).
 *
 * Owns the kept contexts (one reference each), the builds in progress and their
 * waiters. Builds run on the loader's loop through tls_upstream_ctx() (tls.c); answers
 * go back through each waiter's ferry_post, so this room never knows what a worker is.
 *
 *   worker: get --miss--> load queued (event_active on the loader's base) --> EAGAIN
 *   loader: load_run: build (no lock held) -> keep it (lock) -> post an answer per waiter
 *   worker: answer(): cb(ctx, why), or drop it when the waiter cancelled
 *
 * A waiter belongs to the cache until its answer is posted, then to that post. Its
 * `cancelled` flag is touched on the waiter's thread only (cancel and answer), so the
 * loader never reads it and no lock is needed for it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "tls/cache.h"
#include "tls/tls.h"

struct tls_entry {
    struct tls_entry *prev, *next;      /* most recently used first */
    char             *key;              /* owns */
    SSL_CTX          *ctx;              /* owns one reference */
};

struct ferry_tls_wait {
    struct ferry_tls_wait *next;
    struct ferry_post      home;
    ferry_tls_ready_cb     cb;
    void                  *arg;
    bool                   cancelled;   /* home's thread only */
    SSL_CTX               *ctx;         /* the answer: a reference, or NULL and why */
    char                   why[512];      /* as struct ferry_err.msg */
};

struct tls_load {
    struct tls_load        *next;
    struct ferry_tls_cache *c;
    char                   *key;        /* owns */
    char                   *ca, *cert, *pkey;   /* owns: copies of the settings' strings */
    char                   *password;   /* owns: a secret, wiped before it is freed */
    bool                    insecure, no_system_store, wildcard_any_depth;
    struct event           *ev;         /* owns: on the loader's base */
    struct ferry_tls_wait  *waiters;    /* owns until answered */
};

struct ferry_tls_cache {
    pthread_mutex_t        mu;          /* guards everything below */
    struct event_base     *loader;      /* borrowed */
    size_t                 max, n, nloads;
    struct tls_entry      *head, *tail;
    struct tls_load       *loads;
    struct ferry_tls_wait *orphans;     /* answers that could not be posted (no memory) */
    unsigned char          salt[32];    /* keys the password's hash in cache keys */
};

/* "len:text" per string, then the flags: no two settings share a key. The password
 * enters as HMAC-SHA256 under the cache's random salt, so the key (kept as long as the
 * context) never holds it, and two passwords for one file are two keys. */
static char *
make_key(const struct ferry_tls_cache *c, const struct ferry_tls_settings *s)
{
    const char   *ca = s->ca_file != NULL ? s->ca_file : "";
    const char   *cert = s->cert_file != NULL ? s->cert_file : "";
    const char   *key = s->key_file != NULL ? s->key_file : "";
    char          pw[2 * EVP_MAX_MD_SIZE + 1] = "";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int  mdlen = 0;
    int           n;
    char         *out;

    if (s->cert_password != NULL && s->cert_password[0] != '\0') {
        if (HMAC(EVP_sha256(), c->salt, (int)sizeof(c->salt),
                 (const unsigned char *)s->cert_password, strlen(s->cert_password), md,
                 &mdlen) == NULL)
            return NULL;
        for (unsigned int i = 0; i < mdlen; i++)
            snprintf(pw + 2 * i, 3, "%02x", md[i]);
    }
    n = snprintf(NULL, 0, "%zu:%s%zu:%s%zu:%s%zu:%s%d%d%d", strlen(ca), ca, strlen(cert), cert,
                 strlen(key), key, strlen(pw), pw, s->insecure, s->no_system_store,
                 s->wildcard_any_depth);
    if (n < 0 || (out = malloc((size_t)n + 1)) == NULL)
        return NULL;
    snprintf(out, (size_t)n + 1, "%zu:%s%zu:%s%zu:%s%zu:%s%d%d%d", strlen(ca), ca, strlen(cert),
             cert, strlen(key), key, strlen(pw), pw, s->insecure, s->no_system_store,
             s->wildcard_any_depth);
    return out;
}

/* The settings a build needs, as l's copies. */
static void
load_settings(const struct tls_load *l, struct ferry_tls_settings *s)
{
    *s = (struct ferry_tls_settings){
        .ca_file = l->ca, .cert_file = l->cert, .key_file = l->pkey,
        .cert_password = l->password, .insecure = l->insecure,
        .no_system_store = l->no_system_store, .wildcard_any_depth = l->wildcard_any_depth,
    };
}

static char *
dup_or_null(const char *s, bool *oom)
{
    char *d;

    if (s == NULL)
        return NULL;
    if ((d = strdup(s)) == NULL)
        *oom = true;
    return d;
}

/* ---- the kept contexts (under mu) ------------------------------------------------------ */

static void
entry_unlink(struct ferry_tls_cache *c, struct tls_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void
entry_push_front(struct ferry_tls_cache *c, struct tls_entry *e)
{
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void
entry_free(struct tls_entry *e)
{
    SSL_CTX_free(e->ctx);       /* connections using it hold their own references */
    free(e->key);
    free(e);
}

static struct tls_entry *
entry_find(struct ferry_tls_cache *c, const char *key)
{
    for (struct tls_entry *e = c->head; e != NULL; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            if (e != c->head) {
                entry_unlink(c, e);
                entry_push_front(c, e);
            }
            return e;
        }
    }
    return NULL;
}

/* Keep ctx under key (takes key and one reference of ctx, even on failure); the least
 * recently used context leaves when the cache is full. */
static void
entry_add(struct ferry_tls_cache *c, char *key, SSL_CTX *ctx)
{
    struct tls_entry *e = calloc(1, sizeof(*e));

    if (e == NULL) {            /* not kept: the waiters still get their references */
        SSL_CTX_free(ctx);
        free(key);
        return;
    }
    e->key = key;
    e->ctx = ctx;
    if (c->n == c->max) {
        struct tls_entry *old = c->tail;

        entry_unlink(c, old);
        entry_free(old);
        c->n--;
    }
    entry_push_front(c, e);
    c->n++;
}

/* ---- building on the loader ------------------------------------------------------------- */

static void
load_free(struct tls_load *l)
{
    while (l->waiters != NULL) {
        struct ferry_tls_wait *w = l->waiters;

        l->waiters = w->next;
        SSL_CTX_free(w->ctx);
        free(w);
    }
    if (l->ev != NULL)
        event_free(l->ev);
    free(l->key);
    free(l->ca);
    free(l->cert);
    free(l->pkey);
    if (l->password != NULL) {
        explicit_bzero(l->password, strlen(l->password));
        free(l->password);
    }
    free(l);
}

/* The waiter's thread: hand the answer over, unless the waiter went away. */
static void
answer(void *arg, bool run)
{
    struct ferry_tls_wait *w = arg;

    if (run && !w->cancelled) {
        w->cb(w->ctx, w->ctx != NULL ? NULL : w->why, w->arg);    /* ctx is the callee's */
        w->ctx = NULL;
    }
    SSL_CTX_free(w->ctx);
    free(w);
}

static void
load_run(evutil_socket_t fd, short what, void *arg)
{
    struct tls_load        *l = arg;
    struct ferry_tls_cache *c = l->c;
    struct ferry_tls_wait  *waiters;
    struct ferry_err        err = { 0 };
    struct ferry_tls_settings s;
    SSL_CTX                *ctx = NULL;

    (void)fd;
    (void)what;
    /* The only place a worker's request reads files: here, on the loader's thread. */
    load_settings(l, &s);
    if (tls_upstream_ctx(&s, &ctx, &err) != FERRY_OK)
        ctx = NULL;
    pthread_mutex_lock(&c->mu);
    for (struct tls_load **pp = &c->loads; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    c->nloads--;
    if (ctx != NULL && SSL_CTX_up_ref(ctx) == 1) {
        entry_add(c, l->key, ctx);          /* the cache's own reference */
        l->key = NULL;
    }
    waiters = l->waiters;
    l->waiters = NULL;
    pthread_mutex_unlock(&c->mu);
    while (waiters != NULL) {
        struct ferry_tls_wait *w = waiters;

        waiters = w->next;
        w->next = NULL;
        if (ctx != NULL && SSL_CTX_up_ref(ctx) == 1)
            w->ctx = ctx;
        else
            snprintf(w->why, sizeof(w->why), "%s",
                     ctx == NULL ? err.msg : "TLS context: out of memory");
        if (ferry_post_run(&w->home, answer, w) != FERRY_OK) {
            /* Cannot reach the waiter's thread: it times out on its own; the wait is
             * freed with the cache. */
            SSL_CTX_free(w->ctx);
            w->ctx = NULL;
            pthread_mutex_lock(&c->mu);
            w->next = c->orphans;
            c->orphans = w;
            pthread_mutex_unlock(&c->mu);
        }
    }
    SSL_CTX_free(ctx);          /* the build's own reference */
    load_free(l);               /* frees l->ev: allowed from its own (non-persistent) callback */
}

/* ---- the API ----------------------------------------------------------------------------- */

int
ferry_tls_cache_new(struct event_base *loader, size_t max, struct ferry_tls_cache **out)
{
    struct ferry_tls_cache *c;

    if (loader == NULL || max == 0 || max > FERRY_TLS_CACHE_MAX)
        return FERRY_EINVAL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return FERRY_ENOMEM;
    if (RAND_bytes(c->salt, (int)sizeof(c->salt)) != 1) {
        free(c);
        return FERRY_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->loader = loader;
    c->max = max;
    *out = c;
    return FERRY_OK;
}

void
ferry_tls_cache_flush(struct ferry_tls_cache *c)
{
    struct tls_entry *head;

    pthread_mutex_lock(&c->mu);
    head = c->head;
    c->head = c->tail = NULL;
    c->n = 0;
    pthread_mutex_unlock(&c->mu);
    /* Outside the lock: entry_free only drops the cache's references. */
    while (head != NULL) {
        struct tls_entry *e = head;

        head = e->next;
        entry_free(e);
    }
}

void
ferry_tls_cache_free(struct ferry_tls_cache *c)
{
    if (c == NULL)
        return;
    while (c->head != NULL) {
        struct tls_entry *e = c->head;

        entry_unlink(c, e);
        entry_free(e);
    }
    while (c->loads != NULL) {
        struct tls_load *l = c->loads;

        c->loads = l->next;
        load_free(l);
    }
    while (c->orphans != NULL) {
        struct ferry_tls_wait *w = c->orphans;

        c->orphans = w->next;
        free(w);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int
ferry_tls_cache_load(struct ferry_tls_cache *c, const struct ferry_tls_settings *s,
                     struct ferry_err *err)
{
    char    *key = make_key(c, s);
    SSL_CTX *ctx = NULL;
    bool     have;
    int      rc;

    if (key == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    pthread_mutex_lock(&c->mu);
    have = entry_find(c, key) != NULL;
    pthread_mutex_unlock(&c->mu);
    if (have) {
        free(key);
        return FERRY_OK;
    }
    if ((rc = tls_upstream_ctx(s, &ctx, err)) != FERRY_OK) {
        free(key);
        return rc;
    }
    pthread_mutex_lock(&c->mu);
    if (entry_find(c, key) == NULL) {
        entry_add(c, key, ctx);
        key = NULL;
        ctx = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    SSL_CTX_free(ctx);
    free(key);
    return FERRY_OK;
}

int
ferry_tls_cache_get(struct ferry_tls_cache *c, const struct ferry_tls_settings *s,
                    const struct ferry_post *home, ferry_tls_ready_cb cb, void *arg,
                    SSL_CTX **out, struct ferry_tls_wait **wout)
{
    char                  *key;
    struct ferry_tls_wait *w;
    struct tls_load       *l, *fresh = NULL;
    struct tls_entry      *e;
    bool                   oom = false;
    int                    rc = FERRY_EAGAIN;

    *out = NULL;
    *wout = NULL;
    if ((key = make_key(c, s)) == NULL)
        return FERRY_ENOMEM;
    pthread_mutex_lock(&c->mu);
    if ((e = entry_find(c, key)) != NULL && SSL_CTX_up_ref(e->ctx) == 1) {
        *out = e->ctx;
        pthread_mutex_unlock(&c->mu);
        free(key);
        return FERRY_OK;
    }
    pthread_mutex_unlock(&c->mu);
    /* A miss: allocate outside the lock, a waiter and (in case nobody builds these
     * settings yet) a build. */
    if ((w = calloc(1, sizeof(*w))) == NULL || (fresh = calloc(1, sizeof(*fresh))) == NULL)
        goto oom;
    w->home = *home;
    w->cb = cb;
    w->arg = arg;
    fresh->c = c;
    fresh->ca = dup_or_null(s->ca_file, &oom);
    fresh->cert = dup_or_null(s->cert_file, &oom);
    fresh->pkey = dup_or_null(s->key_file, &oom);
    fresh->password = dup_or_null(s->cert_password, &oom);
    fresh->insecure = s->insecure;
    fresh->no_system_store = s->no_system_store;
    fresh->wildcard_any_depth = s->wildcard_any_depth;
    if (oom || (fresh->ev = event_new(c->loader, -1, 0, load_run, fresh)) == NULL)
        goto oom;
    pthread_mutex_lock(&c->mu);
    if ((e = entry_find(c, key)) != NULL && SSL_CTX_up_ref(e->ctx) == 1) {
        *out = e->ctx;          /* built while we allocated */
        rc = FERRY_OK;
    } else {
        for (l = c->loads; l != NULL && strcmp(l->key, key) != 0; l = l->next)
            ;
        if (l == NULL && c->nloads >= FERRY_TLS_CACHE_MAX) {
            rc = FERRY_ELIMIT;
        } else if (l == NULL) {
            l = fresh;
            fresh = NULL;
            l->key = key;
            key = NULL;
            l->next = c->loads;
            c->loads = l;
            c->nloads++;
            event_active(l->ev, EV_TIMEOUT, 1);     /* wakes the loader */
        }
        if (rc == FERRY_EAGAIN) {
            w->next = l->waiters;   /* single flight: one build, every waiter answered */
            l->waiters = w;
            *wout = w;
            w = NULL;
        }
    }
    pthread_mutex_unlock(&c->mu);
    free(w);
    free(key);
    if (fresh != NULL)
        load_free(fresh);
    return rc;
oom:
    free(w);
    free(key);
    if (fresh != NULL)
        load_free(fresh);
    return FERRY_ENOMEM;
}

void
ferry_tls_cache_cancel(struct ferry_tls_wait *w)
{
    if (w != NULL)
        w->cancelled = true;    /* answer() frees it on this thread */
}

size_t
ferry_tls_cache_size(struct ferry_tls_cache *c)
{
    size_t n;

    pthread_mutex_lock(&c->mu);
    n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}
