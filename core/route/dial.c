/*
 * dial.c: open a TCP connection to host:port without blocking the worker.
 *
 * Names resolve through the thread's evdns resolver (IP literals skip it); each
 * resolved address is tried in turn, each attempt bounded by the connect timeout.
 * The result goes to the owner's done(); the owner may give up while a dial is in
 * flight: dial_abort() stops it safely (a pending DNS query is cancelled and frees
 * the dial from its callback).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include <ferry/err.h>

#include "route/dial.h"

struct dial {
    struct dial                       **slot;    /* the owner's pointer to us */
    const struct dial_ops              *ops;
    void                               *owner;   /* NULL once aborted */
    struct event_base                  *base;
    struct evdns_getaddrinfo_request   *req;     /* in flight, or NULL */
    struct evutil_addrinfo             *ai;      /* owns: resolved list */
    struct evutil_addrinfo             *next;    /* next address to try */
    struct sockaddr_storage             literal; /* when host is an IP literal */
    socklen_t                           literal_len;
    bool                                use_literal;
    int                                 fd;
    int                                 last_errno;
    uint32_t                            timeout_ms;
    char                                port_text[8];
    /* A failure found inside dial_begin (socket() out of descriptors, a resolver that
     * answers at once) is reported from the loop: the owner is still in the middle of
     * starting the dial, and done() may free it under its caller's feet. */
    bool                                in_begin;
    struct event                       *later;   /* owns: that report, or NULL */
    int                                 later_status;
    const char                         *later_reason;  /* a literal */
};

static void dial_try_next(struct dial *d);
static void dial_on_later(evutil_socket_t fd, short what, void *arg);

static void
dial_free(struct dial *d)
{
    if (d->later != NULL)
        event_free(d->later);
    if (d->fd >= 0)
        close(d->fd);
    if (d->ai != NULL)
        evutil_freeaddrinfo(d->ai);
    free(d);
}

static void
dial_fail(struct dial *d, int status, const char *reason)
{
    const struct dial_ops *ops = d->ops;
    void                  *owner = d->owner;

    if (d->in_begin && d->later == NULL) {
        static const struct timeval now = { 0, 0 };

        d->later_status = status;
        d->later_reason = reason;
        if ((d->later = evtimer_new(d->base, dial_on_later, d)) != NULL &&
            evtimer_add(d->later, &now) == 0)
            return;
        /* No timer: reporting now is the lesser evil than never. */
    }
    ops->unwatch(owner);
    *d->slot = NULL;
    dial_free(d);
    ops->done(owner, -1, status, reason);
}

static void
dial_on_later(evutil_socket_t fd, short what, void *arg)
{
    struct dial *d = arg;

    (void)fd;
    (void)what;
    d->in_begin = false;
    dial_fail(d, d->later_status, d->later_reason);
}

short
dial_readiness(const struct dial *d, short what)
{
    struct pollfd p = { .fd = d->fd, .events = POLLIN | POLLOUT | POLLRDHUP };
    short         seen = 0;

    /* The deadline alone, or with the socket's edge: a process that was starved wakes
     * up late with both, or with the deadline first while the connect completed in
     * the meantime. Only a socket that is still not writable has timed out. */
    if (!(what & EV_TIMEOUT) || d->fd < 0)
        return what;
    if (poll(&p, 1, 0) != 1)
        return what;
    if (p.revents & (POLLERR | POLLHUP))
        seen |= EV_READ | EV_WRITE;     /* as libevent reports them */
    if (p.revents & POLLIN)
        seen |= EV_READ;
    if (p.revents & POLLOUT)
        seen |= EV_WRITE;
    if (p.revents & POLLRDHUP)
        seen |= EV_CLOSED;
    return seen != 0 ? seen : what;
}

void
dial_event(struct dial **slot, short what)
{
    struct dial           *d = *slot;
    const struct dial_ops *ops = d->ops;
    void                  *owner = d->owner;
    int                    err = 0;
    int                    fd;
    socklen_t              len = sizeof(err);

    if (!(what & (EV_READ | EV_WRITE | EV_CLOSED))) {
        d->last_errno = ETIMEDOUT;      /* the deadline, and the socket not ready */
    } else {
        /* Writable and nothing else means connected: libevent reports an error or a
         * hang-up (EPOLLERR, EPOLLHUP) as EV_READ | EV_WRITE, and only then is SO_ERROR
         * worth a system call. */
        if ((what & (EV_READ | EV_WRITE | EV_CLOSED)) != EV_WRITE &&
            getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == 0) {
            *slot = NULL;
            fd = d->fd;
            d->fd = -1;
            dial_free(d);
            ops->done(owner, fd, FERRY_OK, "connected");
            return;
        }
        d->last_errno = err;
    }
    ops->unwatch(owner);
    close(d->fd);
    d->fd = -1;
    dial_try_next(d);
}

static int
dial_connect(struct dial *d, const struct sockaddr *sa, socklen_t len)
{
    int one = 1;

    d->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->fd < 0) {
        d->last_errno = errno;
        return -1;
    }
    setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(d->fd, sa, len) < 0 && errno != EINPROGRESS) {
        d->last_errno = errno;
        close(d->fd);
        d->fd = -1;
        return -1;
    }
    d->ops->watch(d->owner, d->fd, d->timeout_ms);
    return 0;
}

static void
dial_try_next(struct dial *d)
{
    if (d->use_literal) {
        d->use_literal = false;
        if (dial_connect(d, (struct sockaddr *)&d->literal, d->literal_len) == 0)
            return;
    }
    while (d->next != NULL) {
        struct evutil_addrinfo *ai = d->next;

        d->next = ai->ai_next;
        if (dial_connect(d, ai->ai_addr, (socklen_t)ai->ai_addrlen) == 0)
            return;
    }
    switch (d->last_errno) {
    case ETIMEDOUT:
        dial_fail(d, FERRY_ETIMEDOUT, "connect timed out");
        break;
    case ECONNREFUSED:
        dial_fail(d, FERRY_EUNAVAIL, "connection refused");
        break;
    case ENETUNREACH:
    case EHOSTUNREACH:
        dial_fail(d, FERRY_EUNREACH, "host unreachable");
        break;
    default:
        dial_fail(d, FERRY_EIO, "connect failed");
        break;
    }
}

static void
dial_on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct dial *d = arg;

    d->req = NULL;
    if (d->owner == NULL) {             /* dial_abort() left the freeing to us */
        if (res != NULL)
            evutil_freeaddrinfo(res);
        dial_free(d);
        return;
    }
    if (result != 0 || res == NULL) {
        if (res != NULL)
            evutil_freeaddrinfo(res);
        dial_fail(d, FERRY_ENOTFOUND, "name did not resolve");
        return;
    }
    d->ai = res;
    d->next = res;
    dial_try_next(d);
}

int
dial_begin(struct dial **slot, struct event_base *base, struct evdns_base *dns,
           const struct dial_ops *ops, void *owner, const char *host, uint16_t port,
           uint32_t timeout_ms)
{
    struct dial                      *d;
    struct evutil_addrinfo            hints;
    struct sockaddr_in               *s4;
    struct sockaddr_in6              *s6;
    struct evdns_getaddrinfo_request *req;

    if ((d = calloc(1, sizeof(*d))) == NULL)
        return FERRY_ENOMEM;
    d->slot = slot;
    d->ops = ops;
    d->owner = owner;
    d->base = base;
    d->fd = -1;
    d->timeout_ms = timeout_ms != 0 ? timeout_ms : 5000;
    *slot = d;
    s4 = (struct sockaddr_in *)&d->literal;
    s6 = (struct sockaddr_in6 *)&d->literal;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        d->literal_len = sizeof(*s4);
        d->use_literal = true;
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        d->literal_len = sizeof(*s6);
        d->use_literal = true;
    }
    d->in_begin = true;
    if (d->use_literal) {
        d->last_errno = ECONNREFUSED;
        dial_try_next(d);
        d->in_begin = false;
        return FERRY_OK;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    snprintf(d->port_text, sizeof(d->port_text), "%u", port);
    req = evdns_getaddrinfo(dns, host, d->port_text, &hints, dial_on_resolved, d);
    /* NULL means it already finished (and called back) or failed synchronously; a
     * failure then waits in d->later, so d is still ours. */
    if (*slot == d) {
        d->in_begin = false;
        if (req != NULL)
            d->req = req;
    }
    return FERRY_OK;
}

void
dial_abort(struct dial **slot)
{
    struct dial *d = *slot;

    if (d == NULL)
        return;
    *slot = NULL;
    d->ops->unwatch(d->owner);
    if (d->req != NULL) {
        /* The resolver calls back (cancelled); that callback frees d. */
        d->owner = NULL;
        evdns_getaddrinfo_cancel(d->req);
        return;
    }
    dial_free(d);
}
