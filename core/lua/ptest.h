/*
 * ptest.h: `ferry policy test` (ptest.c), for main.c.
 */
#ifndef FERRY_LUA_PTEST_H
#define FERRY_LUA_PTEST_H

/* argv: "test" DESTINATION REQUEST_FILE; response_path: --response FILE, user_path:
 * --user FILE (claims JSON: req.user), each or NULL. Returns the exit status: 0 allowed, 1 denied, 2 a usage, config, request-file,
 * response-file or script error. */
int ferry_policy_test_main(const char *conf_path, const char *response_path,
                           const char *user_path, int argc, char **argv);

#endif
