/*
 * post.c: a ferry_post for a loop that is not a worker's (the main loop): the function
 * runs from the loop's next turn. Such a loop outlives whatever posts to it, so the
 * "stopping first" case of post.h never arises here.
 */
#include <stdlib.h>

#include <event2/event.h>

#include <ferry/err.h>

#include "util/post.h"

static void
post_run(evutil_socket_t fd, short what, void *arg)
{
    void **pair = arg;
    void (*fn)(void *, bool) = (void (*)(void *, bool))pair[0];

    (void)fd;
    (void)what;
    fn(pair[1], true);
    free(pair);
}

static int
post_to_base(void *ctx, void (*fn)(void *arg, bool run), void *arg)
{
    static const struct timeval now = { 0, 0 };
    void                      **pair = malloc(2 * sizeof(void *));

    if (pair == NULL)
        return FERRY_ENOMEM;
    pair[0] = (void *)fn;
    pair[1] = arg;
    if (event_base_once(ctx, -1, EV_TIMEOUT, post_run, pair, &now) != 0) {
        free(pair);
        return FERRY_ENOMEM;
    }
    return FERRY_OK;
}

void
ferry_post_init_base(struct ferry_post *p, struct event_base *base)
{
    p->post = post_to_base;
    p->ctx = base;
}
