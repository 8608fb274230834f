/*
 * counter_test.c: plugins' counters in stats/ (ferry/metrics.h behind them): found
 * again by name, bounded per plugin, and kept in (name, plugin) order so /metrics
 * prints each metric's lines together.
 */
#include <stdio.h>
#include <string.h>

#include <ferry/err.h>

#include "cu.h"
#include "stats/stats.h"

static void
test_same_name_is_the_same_counter(void)
{
    struct ferry_counter *a = NULL, *b = NULL;

    CU_ASSERT_EQUAL(stats_counter_get("p1", "hits_total", "Hits", 4, &a), FERRY_OK);
    CU_ASSERT_EQUAL(stats_counter_get("p1", "hits_total", "ignored", 4, &b), FERRY_OK);
    CU_ASSERT_PTR_EQUAL(a, b);
    CU_ASSERT_STRING_EQUAL(a->help, "Hits");
    stats_add(&a->cell[0].v, 2);
    stats_add(&a->cell[3].v, 5);
    CU_ASSERT_EQUAL(a->cell[0].v + a->cell[3].v, 7);
}

static void
test_bound_per_plugin(void)
{
    struct ferry_counter *k;
    char                  name[16];

    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "c%d_total", i);
        CU_ASSERT_EQUAL(stats_counter_get("p2", name, "", 3, &k), FERRY_OK);
    }
    CU_ASSERT_EQUAL(stats_counter_get("p2", "c3_total", "", 3, &k), FERRY_ELIMIT);
    CU_ASSERT_EQUAL(stats_counter_get("p2", "c0_total", "", 3, &k), FERRY_OK);  /* exists */
    CU_ASSERT_EQUAL(stats_counter_get("p3", "c3_total", "", 3, &k), FERRY_OK);  /* others' */
}

static void
test_sorted_by_name_then_plugin(void)
{
    struct ferry_counter *k;
    const char           *prev_name = "", *prev_plugin = "";

    CU_ASSERT_EQUAL(stats_counter_get("zz", "aa_total", "", 8, &k), FERRY_OK);
    CU_ASSERT_EQUAL(stats_counter_get("aa", "zz_total", "", 8, &k), FERRY_OK);
    CU_ASSERT_EQUAL(stats_counter_get("aa", "aa_total", "", 8, &k), FERRY_OK);
    for (const struct ferry_counter *c = stats_counters(); c != NULL; c = c->next) {
        int by_name = strcmp(prev_name, c->name);

        CU_ASSERT_TRUE(by_name < 0 || (by_name == 0 && strcmp(prev_plugin, c->plugin) < 0));
        prev_name = c->name;
        prev_plugin = c->plugin;
    }
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "the same name is the same counter", test_same_name_is_the_same_counter },
        { "a bound per plugin", test_bound_per_plugin },
        { "sorted by name, then plugin", test_sorted_by_name_then_plugin },
        { NULL, NULL },
    };
    int rc = cu_run("counter", tests);

    ferry_stats_free_all();
    return rc;
}
