/*
 * tokens_test.c: the token cache's promises (core/auth/tokens.h): single flight,
 * reuse until the margin, refresh ahead (half the life of a short-lived token), negative
 * cache with backoff, cancellation. The cache's clock is a fake one the tests move.
 * Waiters are "posted" to a queue this test drains, as a worker's loop would.
 */
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>

#include "auth/tokens.h"
#include "cu.h"
#include "stats/stats.h"

struct posted {
    void (*fn)(void *, bool);
    void *arg;
};
static struct posted queue[256];
static int           nqueue;
static int           calls;
static char          last_value[64];
static int           last_status;

static int
post(void *ctx, void (*fn)(void *arg, bool run), void *arg)
{
    (void)ctx;
    if (nqueue == 256)
        return FERRY_ENOMEM;
    queue[nqueue].fn = fn;
    queue[nqueue].arg = arg;
    nqueue++;
    return FERRY_OK;
}

static void
drain(void)
{
    for (int i = 0; i < nqueue; i++)
        queue[i].fn(queue[i].arg, true);
    nqueue = 0;
}

static void
on_token(const struct tok_result *r, void *arg)
{
    (void)arg;
    calls++;
    last_status = r->status;
    snprintf(last_value, sizeof(last_value), "%s", r->value != NULL ? r->value : "");
}

static const struct tok_home home = { post, NULL };

/* The cache's clock, moved by the tests. */
static uint64_t fake_now_ms = 1000000;

static uint64_t
fake_clock(void)
{
    return fake_now_ms;
}

static void
ok_result(struct tok_result *r, const char *value, uint32_t expires_in)
{
    memset(r, 0, sizeof(*r));
    r->status = FERRY_OK;
    r->type = (char *)"Bearer";
    r->value = (char *)value;
    r->expires_in = expires_in;
    r->http_status = 200;
}

/* 100 concurrent first requests: exactly one is told to fetch, all get the token. */
static void
test_single_flight(void)
{
    struct tok_result  out, r;
    struct tok_waiter *w;
    bool               fetch;
    int                fetchers = 0;

    calls = 0;
    for (int i = 0; i < 100; i++) {
        CU_ASSERT_EQUAL(tok_get("sf", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_WAIT);
        fetchers += fetch;
    }
    CU_ASSERT_EQUAL(fetchers, 1);
    ok_result(&r, "tok-1", 3600);
    tok_fetched("sf", &r);
    drain();
    CU_ASSERT_EQUAL(calls, 100);
    CU_ASSERT_STRING_EQUAL(last_value, "tok-1");
    /* Cached now: a hit without a fetch. */
    CU_ASSERT_EQUAL(tok_get("sf", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_FALSE(fetch);
    CU_ASSERT_STRING_EQUAL(out.value, "tok-1");
    CU_ASSERT(out.expires_in > 3500);
    tok_result_free(&out);
}

/* Inside the margin: still handed out, and one caller refreshes in the background. */
static void
test_refresh_ahead(void)
{
    struct tok_result  out, r;
    struct tok_waiter *w;
    bool               fetch;

    ok_result(&r, "old", 3600);
    tok_fetched("ra", &r);
    CU_ASSERT_EQUAL(tok_get("ra", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_FALSE(fetch);                 /* an hour left, margin 30 s */
    tok_result_free(&out);
    fake_now_ms += 3600 * 1000 - 20000;     /* 20 s left */
    CU_ASSERT_EQUAL(tok_get("ra", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_TRUE(fetch);
    CU_ASSERT_STRING_EQUAL(out.value, "old");
    tok_result_free(&out);
    CU_ASSERT_EQUAL(tok_get("ra", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_FALSE(fetch);                 /* the refresh is already running */
    tok_result_free(&out);
    ok_result(&r, "new", 3600);
    tok_fetched("ra", &r);
    CU_ASSERT_EQUAL(tok_get("ra", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_STRING_EQUAL(out.value, "new");
    CU_ASSERT_FALSE(fetch);
    tok_result_free(&out);
}

/* A token that lives 8 s with a 60 s margin: refreshed from half its life (at least
 * TOK_MIN_MARGIN_MS before it expires), not on every request; the same for every
 * caller, whichever worker fetched it. */
static void
test_short_lived_margin(void)
{
    struct tok_result  out, r;
    struct tok_waiter *w;
    bool               fetch;

    ok_result(&r, "short-1", 8);
    tok_fetched("sl", &r);
    CU_ASSERT_EQUAL(tok_get("sl", 60000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_FALSE(fetch);
    tok_result_free(&out);
    fake_now_ms += 1900;                    /* 6.1 s left: outside the 6 s margin */
    CU_ASSERT_EQUAL(tok_get("sl", 60000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_FALSE(fetch);
    tok_result_free(&out);
    fake_now_ms += 200;                     /* 5.9 s left: refresh, still handed out */
    CU_ASSERT_EQUAL(tok_get("sl", 60000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_TRUE(fetch);
    CU_ASSERT_STRING_EQUAL(out.value, "short-1");
    tok_result_free(&out);
    ok_result(&r, "short-2", 8);
    tok_fetched("sl", &r);
    CU_ASSERT_EQUAL(tok_get("sl", 60000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_FALSE(fetch);
    CU_ASSERT_STRING_EQUAL(out.value, "short-2");
    tok_result_free(&out);
}

/* A token with less than TOK_MIN_LEFT_MS left is never handed out. */
static void
test_min_left(void)
{
    struct tok_result  out, r;
    struct tok_waiter *w;
    bool               fetch;

    ok_result(&r, "dying", 2);
    tok_fetched("ml", &r);
    CU_ASSERT_EQUAL(tok_get("ml", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_WAIT);
    CU_ASSERT_TRUE(fetch);
    tok_cancel(w);
    ok_result(&r, "fresh", 3600);
    tok_fetched("ml", &r);
    drain();
}

/* A failure is cached with a backoff: callers fail fast, then one retries. */
static void
test_negative_cache(void)
{
    struct tok_result  out, fail = { 0 };
    struct tok_waiter *w;
    bool               fetch;

    calls = 0;
    CU_ASSERT_EQUAL(tok_get("nc", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_WAIT);
    CU_ASSERT_TRUE(fetch);
    fail.status = FERRY_EUNAVAIL;
    fail.error = (char *)"token service answered 503";
    fail.http_status = 503;
    tok_fetched("nc", &fail);
    drain();
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT_EQUAL(last_status, FERRY_EUNAVAIL);
    CU_ASSERT_EQUAL(tok_get("nc", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_FALSE(fetch);
    CU_ASSERT_EQUAL(out.status, FERRY_EUNAVAIL);
    CU_ASSERT_STRING_EQUAL(out.error, "token service answered 503");
    tok_result_free(&out);
    fake_now_ms += 999;                     /* the first backoff is 1 s */
    CU_ASSERT_EQUAL(tok_get("nc", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_HIT);
    CU_ASSERT_FALSE(fetch);
    tok_result_free(&out);
    fake_now_ms += 2;
    CU_ASSERT_EQUAL(tok_get("nc", 30000, &home, on_token, NULL, &out, &w, &fetch), TOK_WAIT);
    CU_ASSERT_TRUE(fetch);
    tok_cancel(w);
}

/* A cancelled waiter is never called, before or after the answer is posted. */
static void
test_cancel(void)
{
    struct tok_result  out, r;
    struct tok_waiter *a, *b;
    bool               fetch;

    calls = 0;
    CU_ASSERT_EQUAL(tok_get("cx", 30000, &home, on_token, NULL, &out, &a, &fetch), TOK_WAIT);
    CU_ASSERT_EQUAL(tok_get("cx", 30000, &home, on_token, NULL, &out, &b, &fetch), TOK_WAIT);
    tok_cancel(a);
    ok_result(&r, "x", 3600);
    tok_fetched("cx", &r);
    tok_cancel(b);                          /* posted, not yet delivered */
    drain();
    CU_ASSERT_EQUAL(calls, 0);
}

/* Every fetch that ends is counted once, by result, for ferry_token_fetches_total: a
 * token, an error, and a "success" without a token (a failure too). */
static void
test_fetches_counted_by_result(void)
{
    struct stats_tokens *t = stats_tokens();
    uint64_t             ok0 = atomic_load(&t->fetched), failed0 = atomic_load(&t->failed);
    struct tok_result    r;

    ok_result(&r, "counted-1", 3600);
    tok_fetched("count", &r);
    memset(&r, 0, sizeof(r));
    r.status = FERRY_EIO;
    r.error = (char *)"token service answered 500";
    tok_fetched("count-bad", &r);
    ok_result(&r, NULL, 3600);
    tok_fetched("count-empty", &r);
    drain();
    CU_ASSERT_EQUAL(atomic_load(&t->fetched) - ok0, 1);
    CU_ASSERT_EQUAL(atomic_load(&t->failed) - failed0, 2);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "single flight", test_single_flight },
        { "refresh ahead", test_refresh_ahead },
        { "short-lived token's margin", test_short_lived_margin },
        { "never nearly expired", test_min_left },
        { "negative cache", test_negative_cache },
        { "cancel", test_cancel },
        { "fetches counted by result", test_fetches_counted_by_result },
        { NULL, NULL },
    };
    int rc;

    tok_set_clock(fake_clock);
    rc = cu_run("tokens", tests);

    tok_cache_free_all();
    return rc;
}
