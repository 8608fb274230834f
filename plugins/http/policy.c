/*
 * policy.c: the destination's Lua policy on an HTTP exchange (ferry/policy.h).
 *
 * The parser's slices point into the client's (or upstream's) input buffer and are
 * not NUL-terminated, so the head is copied once into strings for the hook; what the
 * hook leaves is turned back into a parsed head (slices over those strings) that
 * rewrite.c builds from exactly as it builds from a client's. Framing fields never
 * change (core refuses to set them), so the body is forwarded as it was parsed.
 *
 * on_request may wait on I/O (an OAuth2 token, ferry.http.request): its scratch is the
 * connection's own (struct hp_scratch, kept across requests), so the copied head and
 * the struct the hook edits stay valid until the verdict comes back through the
 * callback. on_response finishes inside the call and uses a per-thread scratch.
 * Without a policy nothing here runs.
 */
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>
#include <ferry/policy.h>
#include <ferry/route.h>

#include "http-int.h"

struct hp_scratch {
    struct ferry_policy_header f[HTTP_MAX_HEADERS_CAP];
    struct ferry_http_header   out[HTTP_MAX_HEADERS_CAP];
    struct ferry_policy_http   h;
    struct ferry_http_request  req;
    struct ferry_http_response resp;
    char                      *heap;        /* owns: the strings, when buf is too small */
    char                       buf[8192];
    char                      *at;          /* next free byte of buf or heap */
};

static __thread struct hp_scratch S_resp;
static __thread struct hp_scratch *S;     /* the one in use: S_resp or a connection's */

static const char *
copy(const char *p, size_t n)
{
    char *s = S->at;

    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    S->at += n + 1;
    return s;
}

static const char *
copy_slice(const struct ferry_http_str *s)
{
    return copy(s->ptr != NULL ? s->ptr : "", s->ptr != NULL ? s->len : 0);
}

/* Room for every string of the head (one allocation at most). */
static bool
reserve(const struct ferry_http_header *hs, size_t n, size_t extra)
{
    size_t total = extra;

    for (size_t i = 0; i < n; i++)
        total += hs[i].name.len + hs[i].value.len + 2;
    S->heap = NULL;
    S->at = S->buf;
    if (total > sizeof(S->buf)) {
        if ((S->heap = malloc(total)) == NULL)
            return false;
        S->at = S->heap;
    }
    return true;
}

static void
fields_in(const struct ferry_http_header *hs, size_t n)
{
    memset(&S->h, 0, sizeof(S->h));
    S->h.size = sizeof(S->h);
    for (size_t i = 0; i < n && i < HTTP_MAX_HEADERS_CAP; i++) {
        S->f[i].name = copy_slice(&hs[i].name);
        S->f[i].value = copy_slice(&hs[i].value);
        S->f[i].owned = false;
    }
    S->h.headers = S->f;
    S->h.nheaders = n < HTTP_MAX_HEADERS_CAP ? n : HTTP_MAX_HEADERS_CAP;
    S->h.headers_cap = HTTP_MAX_HEADERS_CAP;
}

/* The fields the hook left, as parser slices. */
static size_t
fields_out(void)
{
    size_t k = 0;

    for (size_t i = 0; i < S->h.nheaders; i++) {
        if (S->f[i].name == NULL)
            continue;
        S->out[k].name = (struct ferry_http_str){ S->f[i].name, strlen(S->f[i].name) };
        S->out[k].value = (struct ferry_http_str){ S->f[i].value, strlen(S->f[i].value) };
        k++;
    }
    return k;
}

static void
plan_set(struct http_plan *p, int status, const char *reason, const char *text)
{
    p->status = status;
    p->reason = reason;
    slice_copy(p->text, sizeof(p->text), text, strlen(text));
}

static void
refuse(struct http_plan *p, const struct ferry_policy_verdict *v, int rc)
{
    static const char *const own[] = { "token-error", "destination-invalid" };

    if (rc == FERRY_OK && !v->error) {
        /* ferry's auth modules deny as "token-error: why": that is the ferry-error. */
        for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
            size_t n = strlen(own[i]);

            if (strncmp(v->reason, own[i], n) == 0 && v->reason[n] == ':') {
                plan_set(p, v->code, own[i], v->reason + n + 1 + (v->reason[n + 1] == ' '));
                return;
            }
        }
        plan_set(p, v->code, "policy-denied", v->reason);
    } else {
        plan_set(p, 500, "policy-error", "the destination's policy failed");
    }
}

/* The head the hook left, as a parsed request over the scratch's strings. The slices
 * that still point into the client's input (target, host, ...) are not used after the
 * policy (transparent mode has chosen its destination), and are cleared. */
static const struct ferry_http_request *
request_out(void)
{
    S->req.method_name = (struct ferry_http_str){ S->h.method, strlen(S->h.method) };
    S->req.path = (struct ferry_http_str){ S->h.path, strlen(S->h.path) };
    S->req.query = S->h.query[0] != '\0' ?
        (struct ferry_http_str){ S->h.query, strlen(S->h.query) } :
        (struct ferry_http_str){ NULL, 0 };     /* "" is no query at all */
    S->req.target = S->req.scheme = S->req.host = S->req.port =
        (struct ferry_http_str){ NULL, 0 };
    S->req.headers = S->out;
    S->req.header_count = fields_out();
    return &S->req;
}

const struct ferry_http_request *
hp_request(struct ferry_conn *c, const struct ferry_dest *d, const struct ferry_http_request *req,
           struct http_plan *p, struct hp_scratch **mine, ferry_policy_cb cb, void *arg)
{
    struct ferry_policy_verdict v;
    const char                 *tenant = ferry_conn_tenant(c);
    int                         rc;

    if (*mine == NULL && (*mine = calloc(1, sizeof(**mine))) == NULL) {
        plan_set(p, 500, "no-memory", "out of memory");
        return NULL;
    }
    S = *mine;
    if (!reserve(req->headers, req->header_count,
                 req->method_name.len + req->path.len + req->query.len + 3)) {
        plan_set(p, 500, "no-memory", "out of memory");
        return NULL;
    }
    fields_in(req->headers, req->header_count);
    S->h.method = copy_slice(&req->method_name);
    S->h.path = copy_slice(&req->path);
    S->h.query = copy_slice(&req->query);
    S->h.client = ferry_conn_peer(c);
    S->h.tenant = tenant != NULL ? tenant : ferry_dest_tenant(d)[0] ? ferry_dest_tenant(d) : NULL;
    S->h.user = p->user;        /* req.user; the plan holds the reference until it resets */
    S->req = *req;
    rc = ferry_policy_request(c, d, &S->h, &v, cb, arg);
    if (rc == FERRY_EAGAIN)
        return HP_WAIT;
    if (rc == FERRY_ENOTFOUND) {
        hp_done(*mine);
        return req;
    }
    return hp_request_done(*mine, rc, &v, p);
}

const struct ferry_http_request *
hp_request_done(struct hp_scratch *mine, int rc, const struct ferry_policy_verdict *v,
                struct http_plan *p)
{
    S = mine;
    if (rc != FERRY_OK || !v->allowed) {
        refuse(p, v, rc);
        hp_done(mine);
        return NULL;
    }
    return request_out();
}

const struct ferry_http_response *
hp_response(struct ferry_conn *c, const struct ferry_dest *d,
            const struct ferry_http_response *resp, struct http_plan *p)
{
    struct ferry_policy_verdict v;
    int                         rc;

    S = &S_resp;
    if (!reserve(resp->headers, resp->header_count, 0)) {
        plan_set(p, 502, "no-memory", "out of memory");
        return NULL;
    }
    fields_in(resp->headers, resp->header_count);
    S->h.status = resp->code;
    rc = ferry_policy_response(c, d, &S->h, &v, NULL, NULL);
    if (rc == FERRY_ENOTFOUND) {
        hp_done(S);
        return resp;
    }
    if (rc != FERRY_OK || !v.allowed) {
        refuse(p, &v, rc);
        hp_done(S);
        return NULL;
    }
    S->resp = *resp;
    if (S->h.status != resp->code) {
        const char *phrase = rw_phrase(S->h.status);

        S->resp.code = S->h.status;
        S->resp.phrase = (struct ferry_http_str){ phrase, strlen(phrase) };
    }
    S->resp.headers = S->out;
    S->resp.header_count = fields_out();
    return &S->resp;
}

void
hp_done(struct hp_scratch *sc)
{
    if (sc == NULL)
        sc = &S_resp;
    ferry_policy_http_free(&sc->h);
    free(sc->heap);
    sc->heap = NULL;
}

void
hp_free(struct hp_scratch *sc)
{
    if (sc == NULL)
        return;
    hp_done(sc);
    free(sc);
}
