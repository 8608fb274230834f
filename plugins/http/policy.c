/*
 * policy.c: the destination's Lua policy on an HTTP exchange (ferry/policy.h).
 *
 * The parser's slices point into the client's (or upstream's) input buffer and are
 * not NUL-terminated, so the head is copied once into strings for the hook; what the
 * hook leaves is turned back into a parsed head (slices over those strings) that
 * rewrite.c builds from exactly as it builds from a client's. Framing fields never
 * change (core refuses to set them), so the body is forwarded as it was parsed.
 *
 * The scratch is one per worker thread: a hook finishes inside the call, and the head
 * is built before hp_*_done(). Without a policy nothing here runs.
 */
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>
#include <ferry/policy.h>
#include <ferry/route.h>

#include "http-int.h"

struct scratch {
    struct ferry_policy_header f[HTTP_MAX_HEADERS_CAP];
    struct ferry_http_header   out[HTTP_MAX_HEADERS_CAP];
    struct ferry_policy_http   h;
    struct ferry_http_req      req;
    struct ferry_http_resp     resp;
    char                      *heap;        /* owns: the strings, when buf is too small */
    char                       buf[8192];
    char                      *at;          /* next free byte of buf or heap */
};

static __thread struct scratch S;

static const char *
copy(const char *p, size_t n)
{
    char *s = S.at;

    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    S.at += n + 1;
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
    S.heap = NULL;
    S.at = S.buf;
    if (total > sizeof(S.buf)) {
        if ((S.heap = malloc(total)) == NULL)
            return false;
        S.at = S.heap;
    }
    return true;
}

static void
fields_in(const struct ferry_http_header *hs, size_t n)
{
    memset(&S.h, 0, sizeof(S.h));
    for (size_t i = 0; i < n && i < HTTP_MAX_HEADERS_CAP; i++) {
        S.f[i].name = copy_slice(&hs[i].name);
        S.f[i].value = copy_slice(&hs[i].value);
        S.f[i].owned = false;
    }
    S.h.headers = S.f;
    S.h.nheaders = n < HTTP_MAX_HEADERS_CAP ? n : HTTP_MAX_HEADERS_CAP;
    S.h.headers_cap = HTTP_MAX_HEADERS_CAP;
}

/* The fields the hook left, as parser slices. */
static size_t
fields_out(void)
{
    size_t k = 0;

    for (size_t i = 0; i < S.h.nheaders; i++) {
        if (S.f[i].name == NULL)
            continue;
        S.out[k].name = (struct ferry_http_str){ S.f[i].name, strlen(S.f[i].name) };
        S.out[k].value = (struct ferry_http_str){ S.f[i].value, strlen(S.f[i].value) };
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
    if (rc == FERRY_OK && !v->error)
        plan_set(p, v->code, "policy-denied", v->reason);
    else if (rc == FERRY_EAGAIN)        /* a hook waiting on I/O: not supported here yet */
        plan_set(p, 500, "policy-error", "the destination's policy waits on I/O, which the "
                 "http plugin does not support yet");
    else
        plan_set(p, 500, "policy-error", "the destination's policy failed");
}

const struct ferry_http_req *
hp_request(struct ferry_conn *c, const struct ferry_dest *d, const struct ferry_http_req *req,
           struct http_plan *p)
{
    struct ferry_policy_verdict v;
    const char                 *tenant = ferry_conn_tenant(c);
    int                         rc;

    if (!reserve(req->headers, req->header_count,
                 req->method_name.len + req->path.len + req->query.len + 3)) {
        plan_set(p, 500, "no-memory", "out of memory");
        return NULL;
    }
    fields_in(req->headers, req->header_count);
    S.h.method = copy_slice(&req->method_name);
    S.h.path = copy_slice(&req->path);
    S.h.query = copy_slice(&req->query);
    S.h.client = ferry_conn_peer(c);
    S.h.tenant = tenant != NULL ? tenant : ferry_dest_tenant(d)[0] ? ferry_dest_tenant(d) : NULL;
    rc = ferry_policy_request(c, d, &S.h, &v, NULL, NULL);
    if (rc == FERRY_ENOTFOUND) {
        hp_done();
        return req;
    }
    if (rc != FERRY_OK || !v.allowed) {
        refuse(p, &v, rc);
        hp_done();
        return NULL;
    }
    S.req = *req;
    S.req.method_name = (struct ferry_http_str){ S.h.method, strlen(S.h.method) };
    S.req.path = (struct ferry_http_str){ S.h.path, strlen(S.h.path) };
    if (S.h.owned & FERRY_POLICY_OWN_QUERY)     /* "" is no query at all */
        S.req.query = S.h.query[0] != '\0' ?
            (struct ferry_http_str){ S.h.query, strlen(S.h.query) } :
            (struct ferry_http_str){ NULL, 0 };
    S.req.headers = S.out;
    S.req.header_count = fields_out();
    return &S.req;
}

const struct ferry_http_resp *
hp_response(struct ferry_conn *c, const struct ferry_dest *d, const struct ferry_http_resp *resp,
            struct http_plan *p)
{
    struct ferry_policy_verdict v;
    int                         rc;

    if (!reserve(resp->headers, resp->header_count, 0)) {
        plan_set(p, 502, "no-memory", "out of memory");
        return NULL;
    }
    fields_in(resp->headers, resp->header_count);
    S.h.status = resp->code;
    rc = ferry_policy_response(c, d, &S.h, &v, NULL, NULL);
    if (rc == FERRY_ENOTFOUND) {
        hp_done();
        return resp;
    }
    if (rc != FERRY_OK || !v.allowed) {
        refuse(p, &v, rc);
        hp_done();
        return NULL;
    }
    S.resp = *resp;
    if (S.h.status != resp->code) {
        const char *phrase = rw_phrase(S.h.status);

        S.resp.code = S.h.status;
        S.resp.phrase = (struct ferry_http_str){ phrase, strlen(phrase) };
    }
    S.resp.headers = S.out;
    S.resp.header_count = fields_out();
    return &S.resp;
}

void
hp_done(void)
{
    ferry_policy_http_free(&S.h);
    free(S.heap);
    S.heap = NULL;
}
