/*
 * tokens.h: the seam between the destination API's find and token retrieval.
 *
 * GET /destination-configuration/v1/destinations/{name} answers `authTokens` itself
 * for BasicAuthentication; every other Authentication that yields a token (OAuth2*,
 * SAMLAssertion, SAPAssertionSSO, ...) is asked for here. The admin asks once per
 * request and answers its client when done() runs, so a token service may take its
 * time while the main loop keeps serving. tokens.c runs the destination's auth module
 * (lua/ferry/auth/<Authentication>.lua, its token(dest, ctx)) on a worker, through the
 * process-wide token cache, so the API hands out the very token the gateway sends.
 */
#ifndef FERRY_ADMIN_TOKENS_H
#define FERRY_ADMIN_TOKENS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evkeyvalq;
struct worker;
struct ferry_dest;

/* One entry of authTokens (SAP-NOTES.md §3). Borrowed for the duration of done(). */
struct admin_token {
    const char *type;              /* "Bearer", "SAML2.0", ...; "" with an error */
    const char *value;             /* the token; "" with an error */
    const char *header_key;        /* http_header.key; NULL: "Authorization" */
    const char *header_value;      /* http_header.value; NULL: "<type> <value>" */
    long long   expires_in_s;      /* < 0: absent; sent as a string, as SAP does */
    const char *scope;             /* NULL: absent */
    const char *refresh_token;     /* NULL: absent */
    const char *issued_token_type; /* NULL: absent */
    const char *error;             /* not NULL: retrieval failed (type and value "") */
};

struct admin_token_req {
    /* In, set by the admin; borrowed, valid until done() returns or cancel() is called. */
    const struct ferry_dest *dest;       /* HTTP; the registry snapshot is held */
    const char              *tenant;     /* the caller's tenant id (the dest's too) */
    const struct evkeyvalq  *headers;    /* the request's: X-user-token, X-refresh-token,
                                            X-code, X-tenant, ... (SAP-NOTES.md §3) */
    struct event_base       *base;       /* the main thread's: done() runs there */
    struct worker           *worker;     /* where the auth module runs (NULL: nowhere) */
    uint32_t                 timeout_ms; /* the admin gives up after this (cancel()) */
    /* Set by the admin: the answer, exactly once, on the main thread, never from
     * inside admin_tokens_fetch(). A usable token comes first (SAP's SDKs take the
     * first entry without an error). */
    void (*done)(struct admin_token_req *r, const struct admin_token *tokens, size_t n);
    /* Set by the fetcher while it works: the admin calls it instead of waiting any
     * longer (timeout, shutdown); done() must not run after it. */
    void (*cancel)(struct admin_token_req *r);
    void  *fetch;                        /* the fetcher's own state */
};

/* Start retrieving r->dest's tokens. FERRY_OK: r->done() runs later (unless r->cancel()
 * runs first). An error code: no callback; the admin answers an error entry. */
int admin_tokens_fetch(struct admin_token_req *r);

#endif
