/*
 * admin.c: /healthz, /readyz and /metrics (Prometheus text) on the admin listener.
 * Owns the evhttp server and the list of requests answered later. Counter values come
 * from stats.c; process facts from the ferry_admin_state that main keeps current; the
 * destination API (gateway only) from dest-api.c and dest-change.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "admin/admin-int.h"
#include "auth/jwt.h"
#include "conf/conf.h"
#include "stats/stats.h"
#include "store/store.h"

static void
reply_text(struct evhttp_request *req, int code, const char *reason, const char *body)
{
    struct evbuffer *out = evbuffer_new();

    if (out == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    evbuffer_add(out, body, strlen(body));
    evhttp_send_reply(req, code, reason, out);
    evbuffer_free(out);
}

void
admin_reply_json(struct evhttp_request *req, int code, json_t *body)
{
    char            *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    struct evbuffer *out = text != NULL ? evbuffer_new() : NULL;

    json_decref(body);
    if (out == NULL) {
        static const char oom[] = "{\"ErrorMessage\":\"out of memory\"}";

        free(text);
        /* Still SAP's error shape, from static text. */
        if ((out = evbuffer_new()) == NULL) {
            evhttp_send_error(req, 500, NULL);
            return;
        }
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        evbuffer_add(out, oom, sizeof(oom) - 1);
        evhttp_send_reply(req, 500, NULL, out);
        evbuffer_free(out);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evbuffer_add(out, text, strlen(text));
    explicit_bzero(text, strlen(text));        /* destination properties hold passwords */
    free(text);
    evhttp_send_reply(req, code, NULL, out);
    evbuffer_free(out);
}

void
admin_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
    char    msg[2048];
    va_list ap;
    json_t *probe;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A name echoed from the request, or a cut, may not be UTF-8: JSON wants it. */
    if ((probe = json_string(msg)) == NULL)
        for (char *c = msg; *c != '\0'; c++)
            if ((unsigned char)*c >= 0x80)
                *c = '?';
    json_decref(probe);
    if (code == 401)
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
    admin_reply_json(req, code, json_pack("{s:s}", "ErrorMessage", msg));
}

void
admin_pending_add(struct ferry_admin *a, struct admin_pending *p, struct evhttp_request *req)
{
    p->a = a;
    p->req = req;
    p->next = a->pending;
    p->pprev = &a->pending;
    if (a->pending != NULL)
        a->pending->pprev = &p->next;
    a->pending = p;
}

void
admin_pending_del(struct admin_pending *p)
{
    if (p->pprev == NULL)
        return;
    *p->pprev = p->next;
    if (p->next != NULL)
        p->next->pprev = p->pprev;
    p->next = NULL;
    p->pprev = NULL;
}

/* A gateway with a store is ready once it has destinations to serve (a snapshot, or
 * the cache); etcd going away later leaves it ready (degraded), not unready. */
static bool
admin_is_ready(const struct ferry_admin_state *st)
{
    struct store_stats ss = { .have_data = true };

    if (st->store != NULL)
        ferry_store_stats(st->store, &ss);
    return st->ready && ss.have_data && (st->live == NULL || atomic_load(st->live) > 0);
}

static void
store_metrics(struct evbuffer *out, const struct ferry_store *store)
{
    struct store_stats ss;

    ferry_store_stats(store, &ss);
    evbuffer_add_printf(out,
        "# HELP ferry_store_up 1 while etcd answers and the watch is live\n"
        "# TYPE ferry_store_up gauge\nferry_store_up %d\n"
        "# HELP ferry_store_revision The last etcd revision applied\n"
        "# TYPE ferry_store_revision gauge\nferry_store_revision %lld\n"
        "# HELP ferry_store_events_total Changes applied from the etcd watch\n"
        "# TYPE ferry_store_events_total counter\nferry_store_events_total %llu\n"
        "# HELP ferry_store_resyncs_total Snapshots read again (compaction, restore, "
        "bad answers)\n"
        "# TYPE ferry_store_resyncs_total counter\nferry_store_resyncs_total %llu\n"
        "# HELP ferry_store_rejected_total Values in etcd skipped as invalid\n"
        "# TYPE ferry_store_rejected_total counter\nferry_store_rejected_total %llu\n"
        "# HELP ferry_replicas Live gateway replicas registered in etcd\n"
        "# TYPE ferry_replicas gauge\nferry_replicas %zu\n",
        ss.up ? 1 : 0, (long long)ss.revision, (unsigned long long)ss.events,
        (unsigned long long)ss.resyncs, (unsigned long long)ss.rejected, ss.replicas);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct ferry_admin *a = arg;
    const char         *uri = evhttp_request_get_uri(req);
    struct evhttp_uri  *u = evhttp_uri_parse(uri);
    const char         *path = u != NULL ? evhttp_uri_get_path(u) : NULL;

    a->nofd_ms = 0;     /* descriptors again: the next accept pause starts short */
    if (path == NULL) {
        reply_text(req, 400, "Bad Request", "bad request\n");
    } else if (a->st->conf != NULL &&
               strncmp(path, ADMIN_API_ROOT, strlen(ADMIN_API_ROOT)) == 0) {
        admin_dest_api(a, req, path, evhttp_uri_get_query(u));
    } else if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
               evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
        reply_text(req, 405, "Method Not Allowed", "method not allowed\n");
    } else if (strcmp(path, "/healthz") == 0) {
        reply_text(req, 200, "OK", "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        struct store_stats ss = { .up = true };

        if (a->st->store != NULL)
            ferry_store_stats(a->st->store, &ss);
        if (admin_is_ready(a->st) && !ss.up)
            reply_text(req, 200, "OK", "ready\nstore: degraded\n");
        else if (admin_is_ready(a->st))
            reply_text(req, 200, "OK", "ready\n");
        else if (a->st->store != NULL && !ss.have_data)
            reply_text(req, 503, "Service Unavailable", "not ready\nstore: no snapshot yet\n");
        else
            reply_text(req, 503, "Service Unavailable", "not ready\n");
    } else if (strcmp(path, "/metrics") == 0) {
        struct evbuffer *out = evbuffer_new();

        if (out == NULL) {
            evhttp_send_error(req, 500, NULL);
        } else {
            evbuffer_add_printf(out,
                "# HELP ferry_up 1 while the process serves\n# TYPE ferry_up gauge\n"
                "ferry_up{role=\"%s\"} 1\n"
                "# HELP ferry_ready 1 when ready, 0 while starting or draining\n"
                "# TYPE ferry_ready gauge\nferry_ready %d\n"
                "# HELP ferry_workers Worker threads\n# TYPE ferry_workers gauge\n"
                "ferry_workers %u\n"
                "# HELP ferry_config_generation Configuration generation in use\n"
                "# TYPE ferry_config_generation gauge\nferry_config_generation %llu\n"
                "# HELP ferry_reloads_total Configuration reloads by result\n"
                "# TYPE ferry_reloads_total counter\n"
                "ferry_reloads_total{result=\"ok\"} %llu\n"
                "ferry_reloads_total{result=\"failed\"} %llu\n",
                a->st->role, admin_is_ready(a->st) ? 1 : 0, a->st->nworkers,
                (unsigned long long)a->st->generation,
                (unsigned long long)a->st->reloads_ok,
                (unsigned long long)a->st->reloads_failed);
            if (a->st->live != NULL)
                evbuffer_add_printf(out, "# HELP ferry_connector_tunnels_up Tunnel connections "
                                    "up to gateways\n# TYPE ferry_connector_tunnels_up gauge\n"
                                    "ferry_connector_tunnels_up %d\n", atomic_load(a->st->live));
            if (a->st->store != NULL)
                store_metrics(out, a->st->store);
            if (a->st->replicas != NULL)
                evbuffer_add_printf(out, "# HELP ferry_connector_gateway_replicas Gateway "
                                    "replicas in the latest list a gateway sent (0: no list, "
                                    "the configured gateways only)\n"
                                    "# TYPE ferry_connector_gateway_replicas gauge\n"
                                    "ferry_connector_gateway_replicas %d\n",
                                    atomic_load(a->st->replicas));
            if (a->st->pp_issued != NULL)
                evbuffer_add_printf(out, "# HELP ferry_pp_certificates_issued_total User "
                                    "certificates signed (principal propagation)\n"
                                    "# TYPE ferry_pp_certificates_issued_total counter\n"
                                    "ferry_pp_certificates_issued_total %llu\n"
                                    "# HELP ferry_pp_certificates_reused_total Streams served "
                                    "a cached user certificate\n"
                                    "# TYPE ferry_pp_certificates_reused_total counter\n"
                                    "ferry_pp_certificates_reused_total %llu\n"
                                    "# HELP ferry_pp_refused_total Streams with a user "
                                    "refused (no principal propagation for the system, "
                                    "claims without a subject)\n"
                                    "# TYPE ferry_pp_refused_total counter\n"
                                    "ferry_pp_refused_total %llu\n",
                                    (unsigned long long)atomic_load(a->st->pp_issued),
                                    (unsigned long long)atomic_load(a->st->pp_reused),
                                    (unsigned long long)atomic_load(a->st->pp_refused));
            if (a->st->audit_errors != NULL)
                evbuffer_add_printf(out, "# HELP ferry_audit_errors_total Audit log writes "
                                    "and opens that failed (audit_fail: closed refuses new "
                                    "streams until one succeeds)\n"
                                    "# TYPE ferry_audit_errors_total counter\n"
                                    "ferry_audit_errors_total %llu\n",
                                    (unsigned long long)a->st->audit_errors(a->st->audit_arg));
            evbuffer_add_printf(out, "# HELP ferry_admin_accept_errors_total accept() "
                                "failures of the admin listener: emfile = out of file "
                                "descriptors (it pauses)\n"
                                "# TYPE ferry_admin_accept_errors_total counter\n"
                                "ferry_admin_accept_errors_total{reason=\"emfile\"} %llu\n",
                                (unsigned long long)a->nofd_total);
            admin_metrics_render(out, a->st->nworkers);
            evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                              "text/plain; version=0.0.4; charset=utf-8");
            evhttp_send_reply(req, 200, "OK", out);
            evbuffer_free(out);
        }
    } else {
        reply_text(req, 404, "Not Found", "not found\n");
    }
    if (u != NULL)
        evhttp_uri_free(u);
}

#define NOFD_PAUSE_MIN_MS 100     /* as the workers' listeners (worker.c) */
#define NOFD_PAUSE_MAX_MS 1000
#define NOFD_LOG_EVERY_MS 1000

static int64_t
admin_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The running admins (one per process in practice: gateway or connector). The error
 * callback receives the listener and its user data, which evhttp set to its own; the
 * listener itself finds the admin here. Main thread only. */
static struct ferry_admin *admins[4];

static struct ferry_admin *
admin_of_listener(struct evconnlistener *l)
{
    for (size_t i = 0; i < sizeof(admins) / sizeof(admins[0]); i++)
        if (admins[i] != NULL && admins[i]->listener == l)
            return admins[i];
    return NULL;
}

static void
admins_set(struct ferry_admin *from, struct ferry_admin *to)
{
    for (size_t i = 0; i < sizeof(admins) / sizeof(admins[0]); i++)
        if (admins[i] == from) {
            admins[i] = to;
            return;
        }
}

static void
on_nofd_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_admin *a = arg;

    (void)fd;
    (void)what;
    evconnlistener_enable(a->listener);
}

/* accept(2) failed. libevent's listener logs and stays armed, so at EMFILE/ENFILE (the
 * connection still queued, the socket still readable) the main loop would spin a core
 * until a descriptor frees up. Pause the listener instead, doubling up to a second, and
 * say so at most once a second. Other errors (ECONNABORTED and the like) pass. */
static void
on_accept_error(struct evconnlistener *l, void *arg)
{
    struct ferry_admin *a = admin_of_listener(l);
    int                 e = EVUTIL_SOCKET_ERROR();
    int64_t             now;
    struct timeval      tv;

    (void)arg;
    if (a == NULL || (e != EMFILE && e != ENFILE))
        return;
    a->nofd_total++;
    a->nofd_ms = a->nofd_ms == 0 ? NOFD_PAUSE_MIN_MS
                                 : (a->nofd_ms * 2 > NOFD_PAUSE_MAX_MS ? NOFD_PAUSE_MAX_MS
                                                                       : a->nofd_ms * 2);
    now = admin_mono_ms();
    if (a->nofd_logged_ms == 0 || now - a->nofd_logged_ms >= NOFD_LOG_EVERY_MS) {
        ferry_log(NULL, FERRY_ERROR, "admin: accept: out of file descriptors, pausing",
                  FLOG_STR("error", strerror(e)), FLOG_INT("pause_ms", a->nofd_ms));
        a->nofd_logged_ms = now;
    }
    evconnlistener_disable(a->listener);
    tv.tv_sec = a->nofd_ms / 1000;
    tv.tv_usec = (a->nofd_ms % 1000) * 1000;
    evtimer_add(a->nofd_timer, &tv);
}

int
ferry_admin_start(struct event_base *base, const char *listen_addr,
                  const struct ferry_admin_state *st, struct ferry_admin **out,
                  struct ferry_err *err)
{
    struct ferry_admin     *a;
    struct sockaddr_storage ss;
    socklen_t               len;
    evutil_socket_t         fd;
    int                     one = 1;

    if (ferry_addr_parse(listen_addr, &ss, &len, err) != FERRY_OK)
        return FERRY_EINVAL;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    a->st = st;
    a->base = base;
    a->jwt_cache = ferry_jwt_cache_new(0);  /* NULL only costs a verification per call */
    if ((a->http = evhttp_new(base)) == NULL) {
        ferry_jwt_cache_free(a->jwt_cache);
        free(a);
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0 ||
        (a->nofd_timer = evtimer_new(base, on_nofd_timer, a)) == NULL ||
        (a->listener = evconnlistener_new(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE |
                                          LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, -1,
                                          fd)) == NULL) {
        if (fd >= 0)
            evutil_closesocket(fd);
        goto fail;
    }
    /* evhttp takes the listener (and frees it) and sets its accept callback; the error
     * callback stays ours: the EMFILE pause above. */
    if (evhttp_bind_listener(a->http, a->listener) == NULL) {
        evconnlistener_free(a->listener);
        goto fail;
    }
    admins_set(NULL, a);        /* a fifth admin in one process only loses the pause */
    evconnlistener_set_error_cb(a->listener, on_accept_error);
    evconnlistener_enable(a->listener);
    evhttp_set_timeout(a->http, 10);
    evhttp_set_max_headers_size(a->http, 16384);
    evhttp_set_max_body_size(a->http, 1 << 20);
    /* Every method reaches on_request, which answers 405 itself (evhttp: 501 in HTML). */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                               EVHTTP_REQ_PATCH);
    evhttp_set_gencb(a->http, on_request, a);
    *out = a;
    return FERRY_OK;

fail:
    if (a->nofd_timer != NULL)
        event_free(a->nofd_timer);
    evhttp_free(a->http);
    ferry_jwt_cache_free(a->jwt_cache);
    free(a);
    return ferry_err_set(err, FERRY_EIO, "admin: cannot listen on %s", listen_addr);
}

void
ferry_admin_stop(struct ferry_admin *a)
{
    if (a == NULL)
        return;
    while (a->pending != NULL)
        a->pending->stop(a->pending);       /* answers and unlinks itself */
    admins_set(a, NULL);
    evhttp_free(a->http);           /* frees the listener too */
    event_free(a->nofd_timer);
    ferry_jwt_cache_free(a->jwt_cache);
    free(a);
}
