/*
 * cache_test.c: the upstream TLS context cache's promises (core/tls/cache.h): a miss
 * never reads a file on the caller's thread (the build runs on the loader's loop and
 * the answer is posted back), one build per setting however many ask, at most `max`
 * contexts kept with the least recently used leaving, failures reported and not kept,
 * cancelled waiters never called, and nothing leaks when the cache goes with builds
 * still queued. The "worker" is a queue this test drains; the loader is a real loop.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <ferry/err.h>

#include "cu.h"
#include "tls/cache.h"

struct posted {
    void (*fn)(void *, bool);
    void *arg;
};
static struct posted queue[64];
static int           nqueue;
static bool          refuse_posts;

static int
post(void *ctx, void (*fn)(void *arg, bool run), void *arg)
{
    (void)ctx;
    if (refuse_posts || nqueue == 64)
        return FERRY_ENOMEM;
    queue[nqueue].fn = fn;
    queue[nqueue].arg = arg;
    nqueue++;
    return FERRY_OK;
}

static const struct ferry_post home = { post, NULL };

/* What one waiter got. */
struct got {
    int      calls;
    SSL_CTX *ctx;
    char     why[512];
};

static void
ready(SSL_CTX *ctx, const char *why, void *arg)
{
    struct got *g = arg;

    g->calls++;
    g->ctx = ctx;
    snprintf(g->why, sizeof(g->why), "%s", why != NULL ? why : "");
}

/* Run the loader's queued builds, then the answers they posted to "the worker". */
static void
run_loader_and_worker(struct event_base *loader)
{
    event_base_loop(loader, EVLOOP_NONBLOCK);
    for (int i = 0; i < nqueue; i++)
        queue[i].fn(queue[i].arg, true);
    nqueue = 0;
}

static struct event_base *
loader_new(void)
{
    struct event_base *b = event_base_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    nqueue = 0;
    refuse_posts = false;
    return b;
}

static void
test_a_miss_is_built_on_the_loader_once_then_hits(void)
{
    struct event_base        *loader = loader_new();
    struct ferry_tls_cache   *c = NULL;
    struct ferry_tls_settings s = { .insecure = true };
    struct ferry_tls_wait    *w1, *w2, *w3;
    struct got                g1 = { 0 }, g2 = { 0 };
    SSL_CTX                  *ctx = NULL;

    CU_ASSERT_EQUAL_FATAL(ferry_tls_cache_new(loader, 4, &c), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &s, &home, ready, &g1, &ctx, &w1), FERRY_EAGAIN);
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &s, &home, ready, &g2, &ctx, &w2), FERRY_EAGAIN);
    CU_ASSERT_PTR_NULL(ctx);
    CU_ASSERT_EQUAL(ferry_tls_cache_size(c), 0);        /* nothing built on this thread */
    CU_ASSERT_EQUAL(nqueue, 0);                         /* and nobody answered inside get */
    run_loader_and_worker(loader);
    CU_ASSERT_EQUAL(g1.calls, 1);
    CU_ASSERT_EQUAL(g2.calls, 1);
    CU_ASSERT_PTR_NOT_NULL(g1.ctx);
    CU_ASSERT_PTR_EQUAL(g1.ctx, g2.ctx);                /* one build for both */
    CU_ASSERT_EQUAL(ferry_tls_cache_size(c), 1);
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &s, &home, ready, NULL, &ctx, &w3), FERRY_OK);
    CU_ASSERT_PTR_EQUAL(ctx, g1.ctx);
    CU_ASSERT_PTR_NULL(w3);
    SSL_CTX_free(ctx);                                  /* every answer is a reference */
    SSL_CTX_free(g1.ctx);
    SSL_CTX_free(g2.ctx);
    ferry_tls_cache_free(c);
    event_base_free(loader);
}

static void
test_full_cache_drops_the_least_recently_used(void)
{
    struct event_base        *loader = loader_new();
    struct ferry_tls_cache   *c = NULL;
    struct ferry_tls_settings a = { .insecure = true }, b = { .no_system_store = true },
                              d = { .insecure = true, .no_system_store = true };
    struct ferry_tls_wait    *w;
    struct ferry_err          err = { 0 };
    struct got                g = { 0 };
    SSL_CTX                  *ctx = NULL, *held = NULL;
    SSL                      *ssl;

    CU_ASSERT_EQUAL_FATAL(ferry_tls_cache_new(loader, 2, &c), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tls_cache_load(c, &a, &err), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tls_cache_load(c, &b, &err), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tls_cache_load(c, &b, &err), FERRY_OK);   /* cached: no-op */
    CU_ASSERT_EQUAL(ferry_tls_cache_size(c), 2);
    /* Touch a: b is now the least recently used. Keep a reference to b's context. */
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &a, &home, ready, &g, &ctx, &w), FERRY_OK);
    SSL_CTX_free(ctx);
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &b, &home, ready, &g, &held, &w), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &a, &home, ready, &g, &ctx, &w), FERRY_OK);
    SSL_CTX_free(ctx);
    CU_ASSERT_EQUAL(ferry_tls_cache_load(c, &d, &err), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tls_cache_size(c), 2);        /* the bound holds */
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &a, &home, ready, &g, &ctx, &w), FERRY_OK);
    SSL_CTX_free(ctx);
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &b, &home, ready, &g, &ctx, &w), FERRY_EAGAIN);
    ssl = SSL_new(held);                                /* evicted, still usable */
    CU_ASSERT_PTR_NOT_NULL(ssl);
    SSL_free(ssl);
    ferry_tls_cache_cancel(w);
    run_loader_and_worker(loader);
    CU_ASSERT_EQUAL(g.calls, 0);                        /* cancelled: never called */
    SSL_CTX_free(held);
    ferry_tls_cache_free(c);
    event_base_free(loader);
}

static void
test_a_file_that_does_not_load_is_reported_and_not_kept(void)
{
    struct event_base        *loader = loader_new();
    struct ferry_tls_cache   *c = NULL;
    struct ferry_tls_settings s = { .ca_file = "/nonexistent/ca.pem" };
    struct ferry_tls_wait    *w;
    struct ferry_err          err = { 0 };
    struct got                g = { 0 };
    SSL_CTX                  *ctx = NULL;

    CU_ASSERT_EQUAL_FATAL(ferry_tls_cache_new(loader, 4, &c), FERRY_OK);
    /* On the caller's thread the file is never opened: the answer comes later. */
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &s, &home, ready, &g, &ctx, &w), FERRY_EAGAIN);
    run_loader_and_worker(loader);
    CU_ASSERT_EQUAL(g.calls, 1);
    CU_ASSERT_PTR_NULL(g.ctx);
    CU_ASSERT_PTR_NOT_NULL(strstr(g.why, "/nonexistent/ca.pem"));
    CU_ASSERT_EQUAL(ferry_tls_cache_size(c), 0);
    CU_ASSERT_EQUAL(ferry_tls_cache_load(c, &s, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a PEM CA bundle"));
    ferry_tls_cache_free(c);
    event_base_free(loader);
}

static void
test_queued_builds_and_unreachable_waiters_are_freed(void)
{
    struct event_base        *loader = loader_new();
    struct ferry_tls_cache   *c = NULL;
    struct ferry_tls_settings a = { .insecure = true }, b = { .no_system_store = true };
    struct ferry_tls_wait    *w;
    struct got                g = { 0 };
    SSL_CTX                  *ctx = NULL;

    CU_ASSERT_EQUAL_FATAL(ferry_tls_cache_new(loader, 4, &c), FERRY_OK);
    /* a's answer cannot be posted (its thread is gone): kept until the cache goes. */
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &a, &home, ready, &g, &ctx, &w), FERRY_EAGAIN);
    refuse_posts = true;
    event_base_loop(loader, EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(g.calls, 0);
    CU_ASSERT_EQUAL(ferry_tls_cache_size(c), 1);        /* built and kept all the same */
    /* b's build never runs: the cache goes first (ASan checks nothing leaks). */
    CU_ASSERT_EQUAL(ferry_tls_cache_get(c, &b, &home, ready, &g, &ctx, &w), FERRY_EAGAIN);
    ferry_tls_cache_free(c);
    event_base_free(loader);
    CU_ASSERT_EQUAL(g.calls, 0);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "a miss is built on the loader once, then hits",
          test_a_miss_is_built_on_the_loader_once_then_hits },
        { "a full cache drops the least recently used",
          test_full_cache_drops_the_least_recently_used },
        { "a file that does not load is reported and not kept",
          test_a_file_that_does_not_load_is_reported_and_not_kept },
        { "queued builds and unreachable waiters are freed",
          test_queued_builds_and_unreachable_waiters_are_freed },
        { NULL, NULL }
    };

    return cu_run("tls-cache", tests);
}
