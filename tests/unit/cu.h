/*
 * cu.h: the few lines every CUnit test program shares: run the named tests of one
 * suite and exit non-zero if any assertion failed (ctest reads the exit code).
 */
#ifndef FERRY_TEST_CU_H
#define FERRY_TEST_CU_H

#include <CUnit/Basic.h>

struct cu_test {
    const char *name;
    void      (*fn)(void);
};

static inline int
cu_run(const char *suite_name, const struct cu_test *tests)
{
    CU_pSuite suite;
    unsigned  failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if ((suite = CU_add_suite(suite_name, NULL, NULL)) == NULL)
        return 2;
    for (const struct cu_test *t = tests; t->name != NULL; t++)
        if (CU_add_test(suite, t->name, t->fn) == NULL)
            return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}

#endif
