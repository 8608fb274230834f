/*
 * tokens.h: the process-wide cache of OAuth2 (and similar) tokens.
 *
 * Keyed by a string the caller builds (destination, tenant, user when a user flow is
 * involved: SAP-NOTES.md section 7 items 2 and 3). What it guarantees:
 *   - single flight: however many requests on however many workers ask for a key
 *     whose token is missing, exactly one is told to fetch; the others wait and are
 *     called back on their own thread when it arrives;
 *   - refresh ahead: a token is handed out until `margin` before it expires, and the
 *     first caller inside that margin also starts a refresh in the background; for a
 *     token that lives less than twice the margin, the margin is half its lifetime
 *     (at least TOK_MIN_MARGIN_MS); a token with less than TOK_MIN_LEFT_MS left is
 *     never handed out;
 *   - negative caching: a failed fetch is remembered with a growing backoff (1 s
 *     doubling to 60 s) so a token service that is down is not hammered; callers get
 *     the error at once meanwhile;
 *   - a fetch that never reports (its requester vanished) is taken over after
 *     TOK_FETCH_STALE_MS by the next caller.
 * Token values never reach a log.
 */
#ifndef FERRY_AUTH_TOKENS_H
#define FERRY_AUTH_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

#define TOK_MIN_LEFT_MS    5000
#define TOK_MIN_MARGIN_MS  6000     /* > TOK_MIN_LEFT_MS: a refresh has time to land */
#define TOK_FETCH_STALE_MS 60000

struct tok_result {
    int       status;       /* FERRY_OK or the fetch's error code */
    char     *type;         /* "Bearer" ...; owned */
    char     *value;        /* the token; owned */
    uint32_t  expires_in;   /* seconds left when handed out */
    int       http_status;  /* of the token service, when it answered */
    char     *error;        /* why, on failure; owned; never holds a secret */
};

/* Where a waiter's callback must run: post(ctx, fn, arg) schedules fn(arg, true) on
 * the waiter's own thread (worker_post for workers), or fn(arg, false) when that
 * thread is going away. */
struct tok_home {
    int  (*post)(void *ctx, void (*fn)(void *arg, bool run), void *arg);
    void  *ctx;
};

struct tok_waiter;
/* r is valid during the call only. After it, the waiter handle is gone. */
typedef void (*tok_cb)(const struct tok_result *r, void *arg);

enum { TOK_HIT = 0, TOK_WAIT = 1 };

/* Look key up. TOK_HIT: *out is a copy (release with tok_result_free), maybe an error
 * still inside its backoff (out->status != FERRY_OK). TOK_WAIT: cb runs later on home;
 * *w cancels it. In both cases *fetch tells the caller to fetch now and report with
 * tok_fetched() (in the TOK_HIT case: a refresh ahead of expiry). margin_ms: refresh
 * this long before expiry (shortened for short-lived tokens, above). A negative return: out of memory. */
int  tok_get(const char *key, uint32_t margin_ms, const struct tok_home *home, tok_cb cb,
             void *arg, struct tok_result *out, struct tok_waiter **w, bool *fetch);
/* The caller does not want the answer any more (its request ended). */
void tok_cancel(struct tok_waiter *w);
/* The fetch of key is over (any thread): r->status FERRY_OK with type, value and
 * expires_in (seconds; 0 = unknown, kept 5 minutes), or a failure with error. */
void tok_fetched(const char *key, const struct tok_result *r);
void tok_result_free(struct tok_result *r);
/* Drop a key (a destination changed or went away). */
void tok_forget(const char *key);
void tok_cache_free_all(void);
/* Tests only: the monotonic clock in ms the cache reads (NULL: the real one). */
void tok_set_clock(uint64_t (*fn)(void));

#endif
