/*
 * user.c: the calling user of a principal-propagation request (DESIGN.md "User
 * identity: principal propagation"). The user's JWT comes in
 * `SAP-Connectivity-Authentication: Bearer` (the forward proxy's; accepted on a
 * transparent listener too) or `Authorization: Bearer` (a transparent listener's); core
 * checks it (ferry_conn_user_verify) and hands back the claims, never the token.
 *
 * Finds and checks only: dropping the token's fields from the upstream head is
 * rewrite.c's (the backend never sees the token), opening the tunnel stream that
 * carries the claims is http.c's, through core.
 */
#include <string.h>
#include <strings.h>

#include <ferry/err.h>
#include <ferry/user.h>

#include "http-int.h"

/* A JWT this long is refused unread: no IdP issues one, and it bounds the work an
 * unauthenticated client can cause. */
#define USER_TOKEN_MAX_BYTES (16u * 1024)

/* The token of "Bearer <token>" (scheme case-insensitive, spaces around trimmed), or
 * false when value is not a Bearer credential. */
static bool
bearer(const struct ferry_http_str *value, const char **tok, size_t *len)
{
    const char *p = value->ptr;
    size_t      n = value->len;

    if (p == NULL || n < 7 || strncasecmp(p, "Bearer ", 7) != 0)
        return false;
    p += 7;
    n -= 7;
    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    *tok = p;
    *len = n;
    return n > 0;
}

/* Which field holds the token: SAP-Connectivity-Authentication wins (it is the one SAP's
 * clients set for principal propagation, and an Authorization beside it may be meant for
 * the backend's own scheme, which PP replaces anyway). 1 found, 0 none, -1 given twice. */
static int
find_token(const struct hidx *x, bool authz_ok, const char **tok, size_t *len)
{
    const struct ferry_http_header *h;
    enum hkind                      k;

    if (x->count[H_SAPAUTH] > 0)
        k = H_SAPAUTH;
    else if (authz_ok && x->count[H_AUTHZ] > 0)
        k = H_AUTHZ;
    else
        return 0;
    if (x->count[k] > 1)
        return -1;
    h = x->first[k];
    if (!bearer(&h->value, tok, len))
        return k == H_SAPAUTH ? -1 : 0;    /* Basic in Authorization: no user token */
    return 1;
}

bool
user_take(struct ferry_conn *c, const char *tenant, const struct hidx *x, bool authz_ok,
          bool required, struct http_plan *p)
{
    const char *tok = NULL, *reason = "malformed";
    size_t      len = 0;
    int         found = find_token(x, authz_ok, &tok, &len), rc;

    if (found == 0) {
        if (!required)
            return true;
        plan_error(p, 401, "user-token-missing",
                   "this destination uses principal propagation: send the user's JWT as %s",
                   authz_ok ? "Authorization: Bearer <jwt>"
                            : "SAP-Connectivity-Authentication: Bearer <jwt>");
        return false;
    }
    if (found < 0) {
        plan_error(p, 401, "user-token-invalid",
                   "the user token is not valid: malformed (one Bearer token in one field)");
        return false;
    }
    if (len > USER_TOKEN_MAX_BYTES) {
        plan_error(p, 401, "user-token-invalid", "the user token is not valid: malformed "
                   "(over %u bytes)", USER_TOKEN_MAX_BYTES);
        return false;
    }
    rc = ferry_conn_user_verify(c, tenant != NULL && tenant[0] != '\0' ? tenant : NULL, tok,
                                len, &p->user, &reason);
    if (rc == FERRY_ENOMEM) {
        plan_error(p, 500, "no-memory", "out of memory");
        return false;
    }
    if (rc != FERRY_OK) {
        p->user = NULL;
        /* reason is core's static name of the failed check: never the token. */
        plan_error(p, 401, "user-token-invalid", "the user token is not valid: %s",
                   reason != NULL ? reason : "rejected");
        return false;
    }
    return true;
}

/* The user's part of an upstream pool key: a stream carries one user's claims (the
 * connector has issued that user's certificate for it), so it is never reused for
 * another. "" without a user; NULL when out of memory. */
const char *
user_pool_part(struct http_plan *p)
{
    return p->user != NULL ? ferry_user_id(p->user) : "";
}

void
user_release(struct http_plan *p)
{
    ferry_user_unref(p->user);
    p->user = NULL;
}
