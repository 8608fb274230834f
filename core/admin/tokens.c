/*
 * tokens.c: token retrieval for the destination API (the seam of tokens.h).
 *
 * Placeholder until the token cache lands: every request is answered, on the next
 * turn of the main loop (so the admin's asynchronous path is the one in use), with
 * one error entry. Replace admin_tokens_fetch() with the real retrieval; keep the
 * contract of tokens.h.
 */
#include <event2/event.h>

#include <ferry/err.h>

#include "admin/tokens.h"

static void
placeholder_answer(evutil_socket_t fd, short what, void *arg)
{
    struct admin_token_req *r = arg;
    struct admin_token      t = {
        .type = "", .value = "", .expires_in_s = -1,
        .error = "token retrieval not available yet",
    };

    (void)fd;
    (void)what;
    event_free(r->fetch);
    r->fetch = NULL;
    r->cancel = NULL;
    r->done(r, &t, 1);
}

static void
placeholder_cancel(struct admin_token_req *r)
{
    event_free(r->fetch);
    r->fetch = NULL;
    r->cancel = NULL;
}

int
admin_tokens_fetch(struct admin_token_req *r)
{
    static const struct timeval now = { 0, 0 };
    struct event               *ev = evtimer_new(r->base, placeholder_answer, r);

    if (ev == NULL)
        return FERRY_ENOMEM;
    r->fetch = ev;
    r->cancel = placeholder_cancel;
    evtimer_add(ev, &now);
    return FERRY_OK;
}
