/*
 * timer.c: plugins' timers on a connection's worker loop (ferry/timer.h).
 *
 * A timer is a libevent timer event in the connection's arena, so it dies with the
 * connection and needs no free of its own. The plugin's callback runs between
 * conn_enter/conn_leave: it may close c, and c is freed only after it returns. Once the
 * plugin lets c go (close, relay) or core ends it, conn_timers_off() deletes every
 * event and refuses new starts: a plugin callback never sees a connection it gave away.
 */
#include <event2/event.h>

#include <ferry/timer.h>

#include "worker/conn-int.h"

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_timer *t = arg;
    struct ferry_conn  *c = t->c;
    bool                outer;

    (void)fd;
    (void)what;
    if (c->timers_off || c->close_pending)
        return;
    conn_enter(c, &outer);
    t->cb(c, t->arg);
    conn_leave(c, outer);
}

FERRY_API struct ferry_timer *
ferry_timer_new(struct ferry_conn *c, ferry_timer_cb cb, void *arg)
{
    struct ferry_timer *t;

    if (c == NULL || cb == NULL || c->timers_off || c->close_pending ||
        c->ntimers >= FERRY_TIMERS_PER_CONN)
        return NULL;
    if ((t = ferry_conn_alloc(c, sizeof(*t))) == NULL)
        return NULL;
    t->c = c;
    t->cb = cb;
    t->arg = arg;
    evtimer_assign(&t->ev, c->w->base, on_timer, t);
    t->next = c->timers;
    c->timers = t;
    c->ntimers++;
    return t;
}

FERRY_API int
ferry_timer_start(struct ferry_timer *t, uint32_t ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    if (t == NULL || t->c->timers_off || t->c->close_pending)
        return FERRY_EINVAL;
    return evtimer_add(&t->ev, &tv) == 0 ? FERRY_OK : FERRY_ENOMEM;
}

FERRY_API void
ferry_timer_cancel(struct ferry_timer *t)
{
    if (t != NULL)
        evtimer_del(&t->ev);
}

FERRY_API bool
ferry_timer_is_pending(const struct ferry_timer *t)
{
    return t != NULL && evtimer_pending(&t->ev, NULL);
}

FERRY_API struct ferry_timer *
ferry_timer_add(struct ferry_conn *c, uint32_t ms, ferry_timer_cb cb, void *arg)
{
    struct ferry_timer *t = ferry_timer_new(c, cb, arg);

    if (t != NULL && ferry_timer_start(t, ms) != FERRY_OK)
        return NULL;        /* stays in the arena, stopped, until c is freed */
    return t;
}

void
conn_timers_off(struct ferry_conn *c)
{
    c->timers_off = true;
    for (struct ferry_timer *t = c->timers; t != NULL; t = t->next)
        evtimer_del(&t->ev);
}
