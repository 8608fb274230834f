/*
 * rate_test.c: per-client token buckets (core/util/rate.c) on a clock the test
 * drives: the burst, the refill, Retry-After, clients and listeners kept apart, and the
 * bound (a full set evicts its least recently used client).
 */
#include <string.h>

#include "cu.h"
#include "util/rate.h"

static void
addr_of(uint8_t a[16], unsigned n)
{
    memset(a, 0, 16);
    a[12] = (uint8_t)(n >> 24);
    a[13] = (uint8_t)(n >> 16);
    a[14] = (uint8_t)(n >> 8);
    a[15] = (uint8_t)n;
}

static void
test_burst_then_refused_then_refilled(void)
{
    struct ferry_rate_table *t = ferry_rate_table_new();
    uint8_t                  a[16];
    uint32_t                 retry = 0;
    int                      owner;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    addr_of(a, 1);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_TRUE(ferry_rate_take(t, &owner, a, 1000, 2, 3, &retry));
    CU_ASSERT_FALSE(ferry_rate_take(t, &owner, a, 1000, 2, 3, &retry));
    CU_ASSERT_EQUAL(retry, 1);
    /* 2 a second: one token after 500 ms, not before */
    CU_ASSERT_FALSE(ferry_rate_take(t, &owner, a, 1499, 2, 3, NULL));
    CU_ASSERT_TRUE(ferry_rate_take(t, &owner, a, 1500, 2, 3, NULL));
    CU_ASSERT_FALSE(ferry_rate_take(t, &owner, a, 1500, 2, 3, NULL));
    /* a long pause refills to the burst, no further */
    for (int i = 0; i < 3; i++)
        CU_ASSERT_TRUE(ferry_rate_take(t, &owner, a, 100000000, 2, 3, NULL));
    CU_ASSERT_FALSE(ferry_rate_take(t, &owner, a, 100000000, 2, 3, NULL));
    ferry_rate_table_free(t);
}

static void
test_clients_and_listeners_have_their_own_buckets(void)
{
    struct ferry_rate_table *t = ferry_rate_table_new();
    uint8_t                  a[16], b[16];
    int                      l1, l2;

    addr_of(a, 1);
    addr_of(b, 2);
    CU_ASSERT_TRUE(ferry_rate_take(t, &l1, a, 5, 1, 1, NULL));
    CU_ASSERT_FALSE(ferry_rate_take(t, &l1, a, 5, 1, 1, NULL));
    CU_ASSERT_TRUE(ferry_rate_take(t, &l1, b, 5, 1, 1, NULL));
    CU_ASSERT_TRUE(ferry_rate_take(t, &l2, a, 5, 1, 1, NULL));
    ferry_rate_table_free(t);
}

static void
test_the_table_is_bounded_and_evicts_the_oldest(void)
{
    struct ferry_rate_table *t = ferry_rate_table_new();
    uint8_t                  a[16];
    int                      owner;
    unsigned                 n = RATE_TABLE_SETS * RATE_TABLE_WAYS * 4;

    addr_of(a, 0);
    CU_ASSERT_TRUE(ferry_rate_take(t, &owner, a, 1, 1, 1, NULL));
    CU_ASSERT_FALSE(ferry_rate_take(t, &owner, a, 1, 1, 1, NULL));
    /* Four times as many clients as entries, all newer: client 0 was evicted and
     * comes back with a full bucket (the bound's price, never memory). */
    for (unsigned i = 1; i <= n; i++) {
        addr_of(a, i);
        CU_ASSERT_TRUE(ferry_rate_take(t, &owner, a, 2, 1, 1, NULL));
    }
    addr_of(a, 0);
    CU_ASSERT_TRUE(ferry_rate_take(t, &owner, a, 2, 1, 1, NULL));
    ferry_rate_table_free(t);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "the burst, then refused, then refilled", test_burst_then_refused_then_refilled },
        { "clients and listeners have their own buckets",
          test_clients_and_listeners_have_their_own_buckets },
        { "the table is bounded and evicts the oldest",
          test_the_table_is_bounded_and_evicts_the_oldest },
        { NULL, NULL },
    };

    return cu_run("util/rate", tests);
}
