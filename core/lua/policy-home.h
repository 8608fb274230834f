/*
 * policy-home.h: struct policy_home, the small handle the Lua room gets instead of a
 * worker: the loop, the resolver and a way to post work to the thread that runs a
 * hook. Types only (no lua.h), so the worker can embed one.
 */
#ifndef FERRY_LUA_POLICY_HOME_H
#define FERRY_LUA_POLICY_HOME_H

#include <stdbool.h>

struct event_base;
struct evdns_base;

/* What a hook that waits needs of the thread it runs on. Whoever runs hooks fills one
 * per thread (worker/worker.c for each worker); it outlives every run started there. */
struct policy_home {
    struct event_base *base;        /* the thread's loop: wait deadlines, HTTP requests */
    struct evdns_base *dns;         /* its resolver */
    /* Run fn(arg, true) on that thread soon, from its loop (any thread may call), or
     * fn(arg, false) on the stopping thread when it stops first. FERRY_OK or
     * FERRY_ENOMEM. */
    int              (*post)(void *ctx, void (*fn)(void *arg, bool run), void *arg);
    void              *post_ctx;
};

#endif
