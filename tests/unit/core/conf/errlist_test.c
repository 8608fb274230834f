/*
 * errlist_test.c: the error list (core/conf/errlist.c) as loading fills it, phase after
 * phase: kept in file order (the main file first, other files in the order met, then
 * line and column), and past the cap the first 20 in that order stay, whenever found.
 */
#include "core/conf/conf-test.h"

#include "cu.h"

/* The list printed into buf. */
static void
print_into(const struct ferry_errlist *l, char *buf, size_t cap)
{
    FILE *fp = fmemopen(buf, cap - 1, "w");

    memset(buf, 0, cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    ferry_errlist_print(l, fp, false);
    fclose(fp);
}

static void
test_errors_of_later_phases_sort_into_line_order(void)
{
    struct ferry_errlist l = {0};
    char                 buf[2048];

    /* A top-level key, then a listener core key, then a plugin option found last,
     * on a line between them. */
    ferry_errlist_add(&l, "gw.yaml", 1, 1, "top");
    ferry_errlist_add(&l, "gw.yaml", 9, 5, "listener");
    ferry_errlist_add(&l, "gw.yaml", 4, 40, "option");
    ferry_errlist_add(&l, "gw.yaml", 4, 7, "key before it on the same line");
    print_into(&l, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "gw.yaml:1:1: top\n"
                                "gw.yaml:4:7: key before it on the same line\n"
                                "gw.yaml:4:40: option\n"
                                "gw.yaml:9:5: listener\n");
}

static void
test_main_file_first_then_files_in_the_order_met(void)
{
    struct ferry_errlist l = {0};
    char                 buf[2048];

    ferry_errlist_file(&l, "gw.yaml");
    ferry_errlist_add(&l, "dests/b.yaml", 3, 1, "b3");
    ferry_errlist_add(&l, "dests/a.yaml", 1, 1, "a1");      /* met after b */
    ferry_errlist_add(&l, "dests/b.yaml", 1, 1, "b1");
    ferry_errlist_add(&l, "gw.yaml", 20, 3, "main, found last");
    ferry_errlist_add(&l, "p.lua", 2, 9, "policy");
    ferry_errlist_add(&l, "gw.yaml", 0, 0, "whole main file");
    print_into(&l, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "gw.yaml: whole main file\n"
                                "gw.yaml:20:3: main, found last\n"
                                "dests/b.yaml:1:1: b1\n"
                                "dests/b.yaml:3:1: b3\n"
                                "dests/a.yaml:1:1: a1\n"
                                "p.lua:2:9: policy\n");
}

static void
test_same_position_keeps_the_order_reported(void)
{
    struct ferry_errlist l = {0};

    ferry_errlist_add(&l, "f", 2, 5, "first");
    ferry_errlist_add(&l, "f", 2, 5, "second");
    ferry_errlist_add(&l, "f", 1, 1, "earlier");
    CU_ASSERT_EQUAL_FATAL(l.count, 3);
    CU_ASSERT_STRING_EQUAL(l.items[0].msg, "earlier");
    CU_ASSERT_STRING_EQUAL(l.items[1].msg, "first");
    CU_ASSERT_STRING_EQUAL(l.items[2].msg, "second");
}

static void
test_past_the_cap_the_first_twenty_in_file_order_stay(void)
{
    struct ferry_errlist l = {0};
    char                 buf[4096];

    ferry_errlist_file(&l, "gw.yaml");
    /* 25 errors on lines 30..54 first, then a late phase finds 3 on lines 1..3 and
     * one more in another file. */
    for (int i = 0; i < 25; i++)
        ferry_errlist_add(&l, "gw.yaml", 30 + i, 1, "late line %d", 30 + i);
    for (int i = 0; i < 3; i++)
        ferry_errlist_add(&l, "gw.yaml", 1 + i, 2, "early line %d", 1 + i);
    ferry_errlist_add(&l, "other.yaml", 1, 1, "other file");
    CU_ASSERT_EQUAL(l.count, FERRY_ERRLIST_MAX);
    CU_ASSERT_EQUAL(l.dropped, 9);
    CU_ASSERT_EQUAL(l.items[0].line, 1);
    CU_ASSERT_EQUAL(l.items[2].line, 3);
    CU_ASSERT_EQUAL(l.items[3].line, 30);
    CU_ASSERT_EQUAL(l.items[19].line, 46);
    print_into(&l, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "gw.yaml:1:2: early line 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "gw.yaml:46:1: late line 46\n"
                                       "ferry: 20 errors shown, 9 more not shown\n"));
    CU_ASSERT_PTR_NULL(strstr(buf, "late line 47"));
    CU_ASSERT_PTR_NULL(strstr(buf, "other file"));
}

static void
test_files_past_the_table_keep_the_order_reported(void)
{
    struct ferry_errlist l = {0};
    char                 name[32];

    for (int i = 0; i < FERRY_ERRLIST_MAX_FILES; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        ferry_errlist_file(&l, name);
    }
    ferry_errlist_add(&l, "late-b", 1, 1, "b");
    ferry_errlist_add(&l, "late-a", 1, 1, "a");
    ferry_errlist_add(&l, "f3", 7, 1, "known");
    CU_ASSERT_EQUAL_FATAL(l.count, 3);
    CU_ASSERT_STRING_EQUAL(l.items[0].msg, "known");
    CU_ASSERT_STRING_EQUAL(l.items[1].msg, "b");
    CU_ASSERT_STRING_EQUAL(l.items[2].msg, "a");
}

static void
test_warnings_summary_names_warnings(void)
{
    struct ferry_errlist l = {0};
    char                 buf[4096] = {0};
    FILE                *fp = fmemopen(buf, sizeof(buf) - 1, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    for (int i = 0; i < 21; i++)
        ferry_errlist_add(&l, "f", i + 1, 1, "w%d", i);
    ferry_errlist_print(&l, fp, true);
    fclose(fp);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "warning: f:20:1: w19\n"
                                       "ferry: 20 warnings shown, 1 more not shown\n"));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "errors of later phases sort into line order",
          test_errors_of_later_phases_sort_into_line_order },
        { "main file first, then files in the order met",
          test_main_file_first_then_files_in_the_order_met },
        { "same position keeps the order reported", test_same_position_keeps_the_order_reported },
        { "past the cap the first 20 in file order stay",
          test_past_the_cap_the_first_twenty_in_file_order_stay },
        { "files past the table keep the order reported",
          test_files_past_the_table_keep_the_order_reported },
        { "warnings summary names warnings", test_warnings_summary_names_warnings },
        { NULL, NULL }
    };

    return cu_run("errlist", tests);
}
