/*
 * dial_test.c: dial.h's promise that done() never runs from inside dial_begin(): a
 * socket() that fails at once (out of descriptors) is reported from the loop, and an
 * owner that aborts before then hears nothing.
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include <ferry/err.h>

#include "cu.h"
#include "route/dial.h"

struct owner {
    struct dial *dial;
    int          done, status, fd;
};

static void
o_watch(void *arg, int fd, uint32_t timeout_ms)
{
    (void)arg;
    (void)fd;
    (void)timeout_ms;
}

static void
o_unwatch(void *arg)
{
    (void)arg;
}

static void
o_done(void *arg, int fd, int status, const char *reason)
{
    struct owner *o = arg;

    (void)reason;
    o->done++;
    o->status = status;
    o->fd = fd;
}

static const struct dial_ops ops = { .watch = o_watch, .unwatch = o_unwatch, .done = o_done };

/* dial_begin to 127.0.0.1:9 with the descriptor limit just reached, so its socket()
 * fails with EMFILE inside the call. */
static void
with_no_fds(struct event_base *base, struct owner *o)
{
    struct rlimit old, lim;
    int           fds[64], n = 0, rc;

    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &old), 0);
    lim = old;
    /* Room for what is open now and no more: fill the rest, then lower the limit. */
    while (n < 64 && (fds[n] = dup(0)) >= 0)
        n++;
    lim.rlim_cur = (rlim_t)fds[n - 1] + 1;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &lim), 0);
    rc = dial_begin(&o->dial, base, NULL, &ops, o, "127.0.0.1", 9, 1000);
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_NOFILE, &old), 0);
    while (n > 0)
        close(fds[--n]);
    CU_ASSERT_EQUAL(rc, FERRY_OK);
}

static void
test_failure_inside_begin_is_reported_from_the_loop(void)
{
    struct event_base *base = event_base_new();
    struct owner       o = { .fd = -2 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    with_no_fds(base, &o);
    CU_ASSERT_EQUAL(o.done, 0);                 /* not from under the caller */
    CU_ASSERT_PTR_NOT_NULL(o.dial);
    event_base_loop(base, EVLOOP_ONCE);
    CU_ASSERT_EQUAL(o.done, 1);
    CU_ASSERT_EQUAL(o.fd, -1);
    CU_ASSERT(o.status < 0);
    CU_ASSERT_PTR_NULL(o.dial);
    event_base_free(base);
}

static void
test_abort_before_the_loop_hears_nothing(void)
{
    struct event_base *base = event_base_new();
    struct owner       o = { .fd = -2 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    with_no_fds(base, &o);
    dial_abort(&o.dial);
    CU_ASSERT_PTR_NULL(o.dial);
    event_base_loop(base, EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(o.done, 0);
    event_base_free(base);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "failure inside begin is reported from the loop",
          test_failure_inside_begin_is_reported_from_the_loop },
        { "abort before the loop hears nothing", test_abort_before_the_loop_hears_nothing },
        { NULL, NULL }
    };

    return cu_run("dial", tests);
}
