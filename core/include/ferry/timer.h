/*
 * ferry/timer.h: timers on a connection's worker loop (ABI 1.3).
 *
 *     struct ferry_timer *t = ferry_timer_new(c, on_tick, s);   // lives as long as c
 *     ferry_timer_start(t, 250);                                // fires once, in 250 ms
 *     ferry_timer_cancel(t);                                    // or not at all
 *
 * A timer belongs to its connection: core allocates it, the callback runs on the
 * connection's worker thread (never from inside a ferry_timer_* call), and it never
 * fires once the connection ends — ferry_conn_close(), ferry_conn_relay() (the plugin
 * gave c away) and any end core decides (idle timeout, shutdown) cancel every timer of
 * c. The handle stays valid until c is freed, so cancelling a timer that has fired, or
 * re-starting it, is always safe. The callback may close c.
 */
#ifndef FERRY_TIMER_H
#define FERRY_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include <ferry/api.h>

struct ferry_conn;
struct ferry_timer;

#define FERRY_TIMERS_PER_CONN 16    /* ferry_timer_new() fails past this */

typedef void (*ferry_timer_cb)(struct ferry_conn *c, void *arg);

/* A stopped timer of c; NULL when out of memory, past FERRY_TIMERS_PER_CONN or once c
 * is closing. */
FERRY_API struct ferry_timer *ferry_timer_new(struct ferry_conn *c, ferry_timer_cb cb,
                                              void *arg);
/* (Re)arm: cb runs once, ms from now (a pending timer is moved). FERRY_OK, or
 * FERRY_EINVAL once c is closing. */
FERRY_API int  ferry_timer_start(struct ferry_timer *t, uint32_t ms);
/* Stop it if pending; a no-op otherwise. */
FERRY_API void ferry_timer_cancel(struct ferry_timer *t);
FERRY_API bool ferry_timer_is_pending(const struct ferry_timer *t);

/* ferry_timer_new() + ferry_timer_start(), for a one-off. */
FERRY_API struct ferry_timer *ferry_timer_add(struct ferry_conn *c, uint32_t ms,
                                              ferry_timer_cb cb, void *arg);

#endif
