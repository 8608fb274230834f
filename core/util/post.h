/*
 * post.h: how to run a function on another thread's loop. Lower rooms that answer
 * later on the caller's own thread (the TLS context cache, the Lua engine) take one
 * of these instead of knowing what a worker is; the worker room fills it with
 * worker_post().
 */
#ifndef FERRY_UTIL_POST_H
#define FERRY_UTIL_POST_H

#include <stdbool.h>

struct ferry_post {
    /* Queue fn(arg, true) to run on that thread soon, from its loop (any thread may
     * call); or, when that thread stops first, fn(arg, false) runs on the stopping
     * thread and must only release arg. FERRY_OK or FERRY_ENOMEM (fn never runs). */
    int  (*post)(void *ctx, void (*fn)(void *arg, bool run), void *arg);
    void  *ctx;
};

struct event_base;
/* p posts to base (a loop that outlives every poster: the main loop). */
void ferry_post_init_base(struct ferry_post *p, struct event_base *base);

static inline int
ferry_post_run(const struct ferry_post *p, void (*fn)(void *arg, bool run), void *arg)
{
    return p->post(p->ctx, fn, arg);
}

#endif
