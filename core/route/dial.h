/*
 * dial.h: open a TCP connection to host:port without blocking the thread.
 *
 * The owner supplies the event plumbing (watch/unwatch: wait for the socket to become
 * writable, with a timeout) so a connection can keep one event per socket from dial
 * to close. `done` runs exactly once, never from inside dial_begin(), unless
 * dial_abort() came first.
 */
#ifndef FERRY_DIAL_H
#define FERRY_DIAL_H

#include <stdint.h>

struct dial;
struct event_base;
struct evdns_base;

struct dial_ops {
    void (*watch)(void *owner, int fd, uint32_t timeout_ms);  /* EV_WRITE or timeout */
    void (*unwatch)(void *owner);
    /* fd >= 0 and status FERRY_OK, or fd -1 and a negative FERRY_E* with a reason. */
    void (*done)(void *owner, int fd, int status, const char *reason);
};

/* *slot is set while the dial is in flight and cleared when it ends. */
int  dial_begin(struct dial **slot, struct event_base *base, struct evdns_base *dns,
                const struct dial_ops *ops, void *owner, const char *host, uint16_t port,
                uint32_t timeout_ms);
/* What the socket's wake-up really says: with EV_TIMEOUT, the readiness the socket has
 * now (EV_READ, EV_WRITE, EV_CLOSED) when it has any, else `what`. An owner that keeps
 * the readiness a connect's wake-up saw calls this first and keeps its answer. */
short dial_readiness(const struct dial *d, short what);
/* The owner's watched socket fired (EV_WRITE / EV_TIMEOUT), `what` from
 * dial_readiness(): a connect that completed by the deadline is not a timeout. */
void dial_event(struct dial **slot, short what);
void dial_abort(struct dial **slot);

#endif
