/*
 * policy-home.h: struct policy_home, the small handle the Lua room gets instead of a
 * worker: the loop, the resolver, a way to post work to the thread that runs a hook,
 * and where HTTPS contexts come from. Types only (no lua.h), so the worker can embed
 * one.
 */
#ifndef FERRY_LUA_POLICY_HOME_H
#define FERRY_LUA_POLICY_HOME_H

#include "util/post.h"

struct event_base;
struct evdns_base;
struct ferry_tls_cache;

/* What a hook that waits needs of the thread it runs on. Whoever runs hooks fills one
 * per thread (worker/worker.c for each worker); it outlives every run started there. */
struct policy_home {
    struct event_base *base;        /* the thread's loop: wait deadlines, HTTP requests */
    struct evdns_base *dns;         /* its resolver */
    struct ferry_post  post;        /* back to that thread: waits end there */
    struct ferry_tls_cache *tls;    /* borrowed: contexts for ferry.http.request */
};

#endif
