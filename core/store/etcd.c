/*
 * etcd.c: etcd's v3 JSON API over ferry's HTTP client (etcd.h).
 *
 * A call is a small state machine: (authenticate) → send to the current endpoint →
 * answer, or on to the next endpoint when this one could not answer. Nothing waits
 * inside a call: every step is an hclient callback or a zero timer, so a caller's
 * callback never runs inside the function that started it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include <ferry/err.h>
#include <ferry/route.h>

#include "conf/conf.h"
#include "fetch/client.h"
#include "store/etcd.h"

#define ETCD_AUTH_TIMEOUT_MS 5000
#define ETCD_MAX_BODY        (512u * 1024 * 1024)  /* a range of the whole prefix */
#define ETCD_MAX_MESSAGE     (64u * 1024 * 1024)   /* one watch response */
#define ETCD_MAX_ERROR_BODY  (64u * 1024)

struct etcd {
    struct event_base      *base;
    struct evdns_base      *dns;
    struct ferry_tls_cache *tls;
    struct ferry_post       home;       /* this loop, for a TLS context being built */
    char                  **endpoints;  /* owns */
    size_t                  n;
    size_t                  cur;        /* the endpoint that answered last */
    char                   *user;       /* owns */
    char                   *password;   /* owns; secret */
    char                   *token;      /* owns; secret: etcd's auth token */
    struct ferry_tls_settings tls_settings;
    char                   *ca, *cert, *key;    /* owns: tls_settings points here */
    struct etcd_call       *calls;      /* live calls, to cancel on free */
    struct etcd_watch      *watches;
};

/* What a call or a watch has in common: one HTTP exchange at a time, endpoints in turn. */
struct exchange {
    struct etcd    *e;
    struct hclient *h;
    struct event   *later;      /* a failure found synchronously, answered from the loop */
    const char     *path;
    char           *body;       /* owns: the JSON request */
    size_t          body_len;
    uint32_t        timeout_ms;
    size_t          tried;      /* endpoints tried for this step */
    bool            reauthed;   /* one fresh token per call */
    bool            authing;    /* the step in flight is /v3/auth/authenticate */
    char            why[256];
};

struct etcd_call {
    struct exchange   x;
    struct etcd_call *prev, *next;
    etcd_cb           cb;
    void             *arg;
};

struct etcd_watch {
    struct exchange    x;
    struct etcd_watch *prev, *next;
    etcd_watch_msg_cb  msg;
    etcd_watch_end_cb  end;
    void              *arg;
    char              *buf;         /* owns: bytes of a message not complete yet */
    size_t             len, cap;
    int                status;      /* the response's status once known */
    bool               streaming;   /* a 200 head came: failures end the watch */
    bool               in_cb, cancelled, over;
};

/* ---- helpers ------------------------------------------------------------------------ */

json_t *
etcd_b64(const void *s, size_t n)
{
    size_t  cap = (n + 2) / 3 * 4 + 1;
    char   *out = malloc(cap);
    json_t *v;

    if (out == NULL)
        return NULL;
    if (ferry_base64_encode(s, n, out, cap) < 0) {
        free(out);
        return NULL;
    }
    v = json_string(out);
    free(out);
    return v;
}

json_t *
etcd_b64s(const char *s)
{
    return etcd_b64(s, strlen(s));
}

char *
etcd_unb64(const json_t *v, size_t max, size_t *len, bool allow_absent)
{
    const char *s;
    size_t      n;
    char       *out;
    long        got;

    if (v == NULL && allow_absent) {
        *len = 0;
        return strdup("");
    }
    if (!json_is_string(v))
        return NULL;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n / 4 * 3 > max + 3 || (out = malloc(n / 4 * 3 + 4)) == NULL)
        return NULL;
    if ((got = ferry_base64_decode(s, n, (uint8_t *)out, n / 4 * 3 + 3)) < 0 ||
        (size_t)got > max) {
        free(out);
        return NULL;
    }
    out[got] = '\0';
    *len = (size_t)got;
    return out;
}

int64_t
etcd_int(const json_t *obj, const char *key, int64_t def)
{
    const json_t *v = json_object_get(obj, key);

    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v)) {
        char     *end;
        long long r = strtoll(json_string_value(v), &end, 10);

        if (end != json_string_value(v) && *end == '\0')
            return r;
    }
    return def;
}

json_t *
etcd_prefix_end(const char *prefix)
{
    size_t  n = strlen(prefix);
    char   *end = strdup(prefix);
    json_t *v;

    if (end == NULL)
        return NULL;
    /* The last byte that can grow grows; a prefix of 0xff bytes only has no end. */
    while (n > 0 && (unsigned char)end[n - 1] == 0xff)
        n--;
    if (n == 0) {
        free(end);
        return etcd_b64("\0", 1);
    }
    end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    v = etcd_b64(end, n);
    free(end);
    return v;
}

/* ---- the client --------------------------------------------------------------------- */

static char *
dup_or_null(const char *s, bool *bad)
{
    char *d;

    if (s == NULL)
        return NULL;
    if ((d = strdup(s)) == NULL)
        *bad = true;
    return d;
}

struct etcd *
etcd_new(struct event_base *base, struct evdns_base *dns, struct ferry_tls_cache *tls,
         const struct ferry_conf_store *sc)
{
    struct etcd *e = calloc(1, sizeof(*e));
    bool         bad = false;

    if (e == NULL || (e->endpoints = calloc(sc->nendpoints + 1, sizeof(char *))) == NULL) {
        free(e);
        return NULL;
    }
    e->base = base;
    e->dns = dns;
    e->tls = tls;
    ferry_post_init_base(&e->home, e->base);
    for (size_t i = 0; i < sc->nendpoints; i++) {
        size_t len = strlen(sc->endpoints[i]);

        if ((e->endpoints[i] = strdup(sc->endpoints[i])) == NULL) {
            bad = true;
            break;
        }
        if (len > 0 && e->endpoints[i][len - 1] == '/')
            e->endpoints[i][len - 1] = '\0';
        e->n++;
    }
    e->user = dup_or_null(sc->user, &bad);
    e->password = dup_or_null(sc->password, &bad);
    e->ca = dup_or_null(sc->ca, &bad);
    e->cert = dup_or_null(sc->cert, &bad);
    e->key = dup_or_null(sc->key, &bad);
    e->tls_settings.ca_file = e->ca;
    e->tls_settings.cert_file = e->cert;
    e->tls_settings.key_file = e->key;
    if (bad || e->n == 0) {
        etcd_free(e);
        return NULL;
    }
    return e;
}

static void exchange_stop(struct exchange *x);

void
etcd_free(struct etcd *e)
{
    if (e == NULL)
        return;
    while (e->calls != NULL)
        etcd_call_cancel(e->calls);
    while (e->watches != NULL)
        etcd_watch_cancel(e->watches);
    for (size_t i = 0; i < e->n; i++)
        free(e->endpoints[i]);
    free(e->endpoints);
    free(e->user);
    if (e->password != NULL)
        explicit_bzero(e->password, strlen(e->password));
    free(e->password);
    if (e->token != NULL)
        explicit_bzero(e->token, strlen(e->token));
    free(e->token);
    free(e->ca);
    free(e->cert);
    free(e->key);
    free(e);
}

const char *
etcd_endpoint(const struct etcd *e)
{
    return e->endpoints[e->cur];
}

/* ---- one exchange: authenticate if needed, then the request, endpoints in turn ------- */

typedef void (*exchange_resp_cb)(const struct hclient_resp *r, void *arg);

static void
exchange_stop(struct exchange *x)
{
    if (x->h != NULL) {
        hclient_cancel(x->h);
        x->h = NULL;
    }
    if (x->later != NULL) {
        event_free(x->later);
        x->later = NULL;
    }
}

/* Send the step (authenticate, or the request itself) to the current endpoint. */
static const char *
exchange_send(struct exchange *x, hclient_cb cb, void (*on_data)(int, const void *, size_t,
                                                                  void *), void *arg)
{
    struct etcd          *e = x->e;
    struct hclient_header hdrs[2] = { { "Content-Type", "application/json" } };
    struct hclient_req    rq = { .method = "POST", .headers = hdrs, .nheaders = 1 };
    char                  url[600];
    char                 *auth_body = NULL;
    const char           *why = NULL;

    if (x->authing) {
        json_t *o = json_pack("{s:s, s:s}", "name", e->user, "password", e->password);

        if (o == NULL || (auth_body = json_dumps(o, JSON_COMPACT)) == NULL) {
            json_decref(o);
            return "out of memory";
        }
        json_decref(o);
        snprintf(url, sizeof(url), "%s/v3/auth/authenticate", e->endpoints[e->cur]);
        rq.body = auth_body;
        rq.body_len = strlen(auth_body);
        rq.timeout_ms = ETCD_AUTH_TIMEOUT_MS;
    } else {
        snprintf(url, sizeof(url), "%s%s", e->endpoints[e->cur], x->path);
        rq.body = x->body;
        rq.body_len = x->body_len;
        rq.timeout_ms = x->timeout_ms;
        rq.on_data = on_data;
        if (e->token != NULL) {
            hdrs[1].name = "Authorization";
            hdrs[1].value = e->token;
            rq.nheaders = 2;
        }
    }
    rq.url = url;
    /* A watch: the bound is one chunk (a message is at most ETCD_MAX_MESSAGE anyway),
     * checked before the chunk is read. */
    rq.max_body = on_data != NULL && !x->authing ? ETCD_MAX_MESSAGE : ETCD_MAX_BODY;
    rq.tls_cache = e->tls;
    rq.home = &e->home;
    rq.tls = e->tls_settings;
    x->h = hclient_request(e->base, e->dns, &rq, cb, arg, &why);
    if (auth_body != NULL) {
        explicit_bzero(auth_body, strlen(auth_body));
        free(auth_body);
    }
    return x->h != NULL ? NULL : why;
}

/* The gRPC code and message of an error body ({"error": "...", "code": 14, ...}). */
static int
error_of(json_t *body, const char **msg)
{
    json_t *err = json_object_get(body, "error");

    *msg = NULL;
    if (json_is_object(err))                 /* a stream's error: {"error": {...}} */
        body = err;
    if (json_is_string(json_object_get(body, "message")))
        *msg = json_string_value(json_object_get(body, "message"));
    else if (json_is_string(json_object_get(body, "error")))
        *msg = json_string_value(json_object_get(body, "error"));
    return (int)etcd_int(body, "code", 0);
}

/* The start of an answer that is not JSON (etcd's own plain-text refusals, a proxy's
 * page), printable characters only, for a log line: never a secret of ours. */
static const char *
body_text(const struct hclient_resp *r, char *buf, size_t size)
{
    size_t n = 0;

    for (size_t i = 0; r->body != NULL && i < r->body_len && n + 1 < size && n < 120; i++)
        buf[n++] = (r->body[i] >= 0x20 && r->body[i] < 0x7f) ? r->body[i] : ' ';
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return n > 0 ? buf : "an empty answer";
}

/* Is this error the endpoint's, so that another may do better? gRPC Unavailable (14):
 * no leader, a member stopping, a leader change. */
static bool
endpoint_trouble(int status, int code)
{
    return status == 0 || code == 14 || status == 502 || status == 503;
}

static bool
token_trouble(struct etcd *e, int code, const char *msg)
{
    return e->user != NULL &&
           (code == 16 || (msg != NULL && strstr(msg, "invalid auth token") != NULL));
}

/* After an authenticate answer: FERRY_OK and the token kept, or why in x->why. */
static int
exchange_take_token(struct exchange *x, const struct hclient_resp *r)
{
    struct etcd *e = x->e;
    json_t      *body = r->body != NULL ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    const char  *tok = json_string_value(json_object_get(body, "token"));
    const char  *msg;

    if (r->status == 200 && tok != NULL && *tok != '\0') {
        if (e->token != NULL) {
            explicit_bzero(e->token, strlen(e->token));
            free(e->token);
        }
        e->token = strdup(tok);
        json_decref(body);
        if (e->token == NULL) {
            snprintf(x->why, sizeof(x->why), "out of memory");
            return FERRY_ENOMEM;
        }
        return FERRY_OK;
    }
    error_of(body, &msg);
    if (msg == NULL && body == NULL && r->status != 200) {
        char text[128];

        snprintf(x->why, sizeof(x->why), "etcd authentication as '%s' failed: HTTP %d: %s",
                 e->user, r->status, body_text(r, text, sizeof(text)));
    } else {
        snprintf(x->why, sizeof(x->why), "etcd authentication as '%s' failed: %s", e->user,
                 msg != NULL ? msg : r->error != NULL ? r->error : "no token in the answer");
    }
    json_decref(body);
    return FERRY_EINVAL;
}

/* ---- unary calls -------------------------------------------------------------------- */

static void call_step(struct etcd_call *c);

static void
call_finish(struct etcd_call *c, const struct etcd_reply *r)
{
    struct etcd *e = c->x.e;

    exchange_stop(&c->x);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        e->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->cb(r, c->arg);
    free(c->x.body);
    free(c);
}

static void
call_fail(struct etcd_call *c, int status, int code)
{
    struct etcd_reply r = { .why = c->x.why, .status = status, .code = code };

    call_finish(c, &r);
}

/* This endpoint could not answer: the next one, unless each had its turn. */
static void
call_next_endpoint(struct etcd_call *c, const char *why)
{
    struct etcd *e = c->x.e;

    snprintf(c->x.why, sizeof(c->x.why), "etcd %s: %s", e->endpoints[e->cur], why);
    if (++c->x.tried >= e->n) {
        call_fail(c, 0, 14);
        return;
    }
    e->cur = (e->cur + 1) % e->n;
    call_step(c);
}

static void
call_on_resp(const struct hclient_resp *r, void *arg)
{
    struct etcd_call *c = arg;
    struct etcd      *e = c->x.e;
    json_t           *body;
    const char       *msg;
    int               code;

    c->x.h = NULL;
    if (c->x.authing) {
        if (r->status == 0) {
            call_next_endpoint(c, r->error);
            return;
        }
        if (exchange_take_token(&c->x, r) != FERRY_OK) {
            call_fail(c, r->status, 16);
            return;
        }
        c->x.authing = false;
        call_step(c);
        return;
    }
    if (r->status == 0) {
        call_next_endpoint(c, r->error);
        return;
    }
    if ((body = json_loadb(r->body, r->body_len, 0, NULL)) == NULL) {
        char text[128];

        snprintf(c->x.why, sizeof(c->x.why), "etcd %s: HTTP %d, and the answer is not JSON: %s",
                 e->endpoints[e->cur], r->status, body_text(r, text, sizeof(text)));
        call_fail(c, r->status, 0);
        return;
    }
    if (r->status != 200) {
        code = error_of(body, &msg);
        if (token_trouble(e, code, msg) && !c->x.reauthed) {
            json_decref(body);
            c->x.reauthed = true;
            free(e->token);
            e->token = NULL;
            call_step(c);
            return;
        }
        if (endpoint_trouble(r->status, code)) {
            char why[200];

            snprintf(why, sizeof(why), "%s", msg != NULL ? msg : "unavailable");
            json_decref(body);
            call_next_endpoint(c, why);
            return;
        }
        snprintf(c->x.why, sizeof(c->x.why), "etcd: %s (HTTP %d)",
                 msg != NULL ? msg : "error", r->status);
        json_decref(body);
        call_fail(c, r->status, code);
        return;
    }
    {
        struct etcd_reply rep = { .result = body, .status = 200 };

        call_finish(c, &rep);
    }
    json_decref(body);
}

static void
call_later(evutil_socket_t fd, short what, void *arg)
{
    struct etcd_call *c = arg;

    (void)fd;
    (void)what;
    call_next_endpoint(c, c->x.why);
}

static void
call_step(struct etcd_call *c)
{
    struct etcd *e = c->x.e;
    const char  *why;

    c->x.authing = e->user != NULL && e->token == NULL;
    if ((why = exchange_send(&c->x, call_on_resp, NULL, c)) == NULL)
        return;
    /* Could not even start (a bad URL, out of memory): count it as this endpoint's
     * failure, from the loop. */
    snprintf(c->x.why, sizeof(c->x.why), "%s", why);
    if (c->x.later == NULL)
        c->x.later = evtimer_new(e->base, call_later, c);
    if (c->x.later != NULL) {
        static const struct timeval now = { 0, 0 };

        evtimer_add(c->x.later, &now);
    }
}

struct etcd_call *
etcd_call(struct etcd *e, const char *path, json_t *body, uint32_t timeout_ms, etcd_cb cb,
          void *arg)
{
    struct etcd_call *c = calloc(1, sizeof(*c));

    if (c == NULL || (c->x.body = json_dumps(body, JSON_COMPACT)) == NULL) {
        free(c);
        json_decref(body);
        return NULL;
    }
    json_decref(body);
    c->x.e = e;
    c->x.path = path;
    c->x.body_len = strlen(c->x.body);
    c->x.timeout_ms = timeout_ms;
    c->cb = cb;
    c->arg = arg;
    c->next = e->calls;
    if (e->calls != NULL)
        e->calls->prev = c;
    e->calls = c;
    call_step(c);
    return c;
}

void
etcd_call_cancel(struct etcd_call *c)
{
    struct etcd *e;

    if (c == NULL)
        return;
    e = c->x.e;
    exchange_stop(&c->x);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        e->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c->x.body);
    free(c);
}

/* ---- watch streams ------------------------------------------------------------------ */

static void watch_step(struct etcd_watch *w);

static void
watch_unlink_free(struct etcd_watch *w)
{
    struct etcd *e = w->x.e;

    exchange_stop(&w->x);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        e->watches = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    free(w->x.body);
    free(w->buf);
    free(w);
}

/* broken: etcd's answer was not what its API promises (not JSON, no result, too big):
 * the caller should not trust what it built from this stream. */
static void
watch_end_as(struct etcd_watch *w, const char *why, bool broken)
{
    if (w->over)
        return;
    w->over = true;
    exchange_stop(&w->x);
    w->in_cb = true;
    w->end(why, broken, w->arg);
    w->in_cb = false;
    watch_unlink_free(w);
}

/* Complete lines are complete messages: etcd's gateway writes one JSON object per
 * line, and JSON text has no raw newline inside a string. */
static void
watch_end(struct etcd_watch *w, const char *why)
{
    watch_end_as(w, why, false);
}

static void
watch_lines(struct etcd_watch *w)
{
    size_t start = 0;
    char   why[200];

    while (!w->over && !w->cancelled) {
        char       *nl = memchr(w->buf + start, '\n', w->len - start);
        size_t      n;
        json_t     *o, *res;
        json_error_t jerr;
        const char *msg;

        if (nl == NULL)
            break;
        n = (size_t)(nl - (w->buf + start));
        if (n == 0) {
            start++;
            continue;
        }
        if ((o = json_loadb(w->buf + start, n, 0, &jerr)) == NULL || !json_is_object(o)) {
            json_decref(o);
            watch_end_as(w, "a watch message is not JSON", true);
            return;
        }
        start += n + 1;
        if ((res = json_object_get(o, "result")) == NULL || !json_is_object(res)) {
            int code = error_of(o, &msg);

            if (token_trouble(w->x.e, code, msg)) {
                free(w->x.e->token);
                w->x.e->token = NULL;
            }
            snprintf(why, sizeof(why), "etcd ended the watch: %s",
                     msg != NULL ? msg : "no result in a message");
            json_decref(o);
            watch_end_as(w, why, msg == NULL);
            return;
        }
        w->in_cb = true;
        w->msg(res, w->arg);
        w->in_cb = false;
        json_decref(o);
        if (w->cancelled) {
            watch_unlink_free(w);
            return;
        }
    }
    if (w->over)
        return;
    memmove(w->buf, w->buf + start, w->len - start);
    w->len -= start;
}

static void
watch_on_data(int status, const void *data, size_t len, void *arg)
{
    struct etcd_watch *w = arg;
    size_t             limit = status == 200 ? ETCD_MAX_MESSAGE : ETCD_MAX_ERROR_BODY;

    if (w->over || w->cancelled)
        return;
    w->status = status;
    w->streaming = status == 200;
    if (w->len + len > limit) {
        watch_end_as(w, status == 200 ? "a watch message over 64 MiB"
                                      : "an error answer that is too long", true);
        return;
    }
    if (w->len + len + 1 > w->cap) {
        size_t cap = w->cap == 0 ? 16384 : w->cap;
        char  *nb;

        while (cap < w->len + len + 1)
            cap *= 2;
        if ((nb = realloc(w->buf, cap)) == NULL) {
            watch_end(w, "out of memory");
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    if (status == 200)
        watch_lines(w);
}

static void
watch_next_endpoint(struct etcd_watch *w, const char *why)
{
    struct etcd *e = w->x.e;
    char         msg[300];

    snprintf(msg, sizeof(msg), "etcd %s: %s", e->endpoints[e->cur], why);
    if (++w->x.tried >= e->n) {
        watch_end(w, msg);
        return;
    }
    e->cur = (e->cur + 1) % e->n;
    watch_step(w);
}

static void
watch_on_resp(const struct hclient_resp *r, void *arg)
{
    struct etcd_watch *w = arg;
    struct etcd       *e = w->x.e;
    char               why[300];

    w->x.h = NULL;
    if (w->x.authing) {
        if (r->status == 0) {
            watch_next_endpoint(w, r->error);
            return;
        }
        if (exchange_take_token(&w->x, r) != FERRY_OK) {
            watch_end(w, w->x.why);
            return;
        }
        w->x.authing = false;
        watch_step(w);
        return;
    }
    if (r->too_large) {
        /* A chunk over the bound, refused before it was read: the stream broke the
         * API as a long line does (watch_on_data), whichever came first. */
        watch_end_as(w, "a watch message over 64 MiB", true);
        return;
    }
    if (r->status == 0 && !w->streaming) {
        watch_next_endpoint(w, r->error);
        return;
    }
    if (r->status == 0) {
        snprintf(why, sizeof(why), "the watch stream broke: %s", r->error);
        watch_end(w, why);
        return;
    }
    if (w->status != 200 && r->status != 200) {
        json_t     *body = json_loadb(w->buf != NULL ? w->buf : "", w->len, 0, NULL);
        const char *msg;
        int         code = error_of(body, &msg);

        if (token_trouble(e, code, msg)) {
            free(e->token);
            e->token = NULL;
        }
        snprintf(why, sizeof(why), "etcd refused the watch: %s (HTTP %d)",
                 msg != NULL ? msg : "error", r->status);
        json_decref(body);
        if (endpoint_trouble(r->status, code)) {
            watch_next_endpoint(w, why);
            return;
        }
        watch_end(w, why);
        return;
    }
    watch_end(w, "etcd closed the watch stream");
}

static void
watch_later(evutil_socket_t fd, short what, void *arg)
{
    struct etcd_watch *w = arg;

    (void)fd;
    (void)what;
    watch_next_endpoint(w, w->x.why);
}

static void
watch_step(struct etcd_watch *w)
{
    struct etcd *e = w->x.e;
    const char  *why;

    w->x.authing = e->user != NULL && e->token == NULL;
    w->len = 0;
    w->status = 0;
    if ((why = exchange_send(&w->x, watch_on_resp, watch_on_data, w)) == NULL)
        return;
    snprintf(w->x.why, sizeof(w->x.why), "%s", why);
    if (w->x.later == NULL)
        w->x.later = evtimer_new(e->base, watch_later, w);
    if (w->x.later != NULL) {
        static const struct timeval now = { 0, 0 };

        evtimer_add(w->x.later, &now);
    }
}

struct etcd_watch *
etcd_watch(struct etcd *e, json_t *create_request, uint32_t idle_ms, etcd_watch_msg_cb msg,
           etcd_watch_end_cb end, void *arg)
{
    struct etcd_watch *w = calloc(1, sizeof(*w));
    json_t            *body = json_pack("{s:o}", "create_request", create_request);

    if (w == NULL || body == NULL || (w->x.body = json_dumps(body, JSON_COMPACT)) == NULL) {
        free(w);
        json_decref(body);
        return NULL;
    }
    json_decref(body);
    w->x.e = e;
    w->x.path = "/v3/watch";
    w->x.body_len = strlen(w->x.body);
    w->x.timeout_ms = idle_ms;
    w->msg = msg;
    w->end = end;
    w->arg = arg;
    w->next = e->watches;
    if (e->watches != NULL)
        e->watches->prev = w;
    e->watches = w;
    watch_step(w);
    return w;
}

void
etcd_watch_cancel(struct etcd_watch *w)
{
    if (w == NULL || w->cancelled)
        return;
    w->cancelled = true;
    exchange_stop(&w->x);
    if (!w->in_cb)
        watch_unlink_free(w);
}
