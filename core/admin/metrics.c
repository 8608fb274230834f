/*
 * metrics.c: /metrics, the Prometheus text of every counter slot and request pair.
 *
 * Reads what stats/ holds (the counters live there, in a room below everything that
 * counts); owns no counter itself. Runs on the admin's (main) thread, the only thread
 * that adds slots, so walking the slot list needs no lock; the pair list is walked
 * under its own (stats_pairs_visit).
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "admin/admin-int.h"
#include "stats/stats.h"

static void add_escaped(struct evbuffer *out, const char *v);

struct pairs_out {
    struct evbuffer *out;
    unsigned         nworkers;
    bool             head;
};

static void
render_ldap_pair(const struct stats_pair *p, void *arg)
{
    struct pairs_out *po = arg;
    struct evbuffer  *out = po->out;
    uint64_t          ld[2] = { 0 };

    for (unsigned w = 0; w < po->nworkers && w < FERRY_MAX_WORKERS; w++)
        for (int k = 0; k < 2; k++)
            ld[k] += atomic_load_explicit(&p->cell[w].ldap[k], memory_order_relaxed);
    if (ld[0] + ld[1] == 0)
        return;
    if (!po->head) {
        evbuffer_add_printf(out, "# HELP ferry_ldap_operations_total LDAP operations "
                            "answered, by listener, destination and result\n"
                            "# TYPE ferry_ldap_operations_total counter\n");
        po->head = true;
    }
    for (int k = 0; k < 2; k++) {
        evbuffer_add_printf(out, "ferry_ldap_operations_total{listener=\"");
        add_escaped(out, p->listener->name);
        evbuffer_add_printf(out, "\",destination=\"");
        add_escaped(out, p->dest != NULL ? p->dest->name : "");
        evbuffer_add_printf(out, "\",result=\"%s\"} %llu\n", k == 0 ? "success" : "failure",
                            (unsigned long long)ld[k]);
    }
}

static void
render_http_pair(const struct stats_pair *p, void *arg)
{
    struct pairs_out *po = arg;
    struct evbuffer  *out = po->out;
    uint64_t          cls[5] = { 0 }, any = 0;

    for (unsigned w = 0; w < po->nworkers && w < FERRY_MAX_WORKERS; w++)
        for (int k = 0; k < 5; k++)
            cls[k] += atomic_load_explicit(&p->cell[w].cls[k], memory_order_relaxed);
    for (int k = 0; k < 5; k++)
        any += cls[k];
    if (any == 0)
        return;
    if (!po->head) {
        evbuffer_add_printf(out, "# HELP ferry_http_requests_total Requests answered, by "
                            "listener, destination and status class\n"
                            "# TYPE ferry_http_requests_total counter\n");
        po->head = true;
    }
    for (int k = 0; k < 5; k++) {
        evbuffer_add_printf(out, "ferry_http_requests_total{listener=\"");
        add_escaped(out, p->listener->name);
        evbuffer_add_printf(out, "\",destination=\"");
        add_escaped(out, p->dest != NULL ? p->dest->name : "");
        evbuffer_add_printf(out, "\",class=\"%dxx\"} %llu\n", k + 1,
                            (unsigned long long)cls[k]);
    }
}

/* Requests by listener, destination and status class; the listeners' latency
 * histogram. Only what saw a request is shown. */
static void
render_requests(struct evbuffer *out, unsigned nworkers)
{
    struct pairs_out ldap = { out, nworkers, false }, http = { out, nworkers, false };

    stats_pairs_visit(render_ldap_pair, &ldap);
    stats_pairs_visit(render_http_pair, &http);
    if (!http.head)
        return;
    evbuffer_add_printf(out, "# HELP ferry_http_request_duration_seconds Request head read to "
                        "response done\n# TYPE ferry_http_request_duration_seconds histogram\n");
    for (const struct stats_slot *s = ferry_stats_slots(); s != NULL; s = s->next) {
        uint64_t h[STATS_BUCKETS + 1] = { 0 }, sum = 0, cum = 0;

        if (s->kind != STATS_LISTENER)
            continue;
        for (unsigned w = 0; w < nworkers && w < s->ncells; w++) {
            for (int b = 0; b <= STATS_BUCKETS; b++)
                h[b] += atomic_load_explicit(&s->cell[w].req_hist[b], memory_order_relaxed);
            sum += atomic_load_explicit(&s->cell[w].req_us_sum, memory_order_relaxed);
        }
        for (int b = 0; b <= STATS_BUCKETS; b++)
            cum += h[b];
        if (cum == 0)
            continue;
        cum = 0;
        for (int b = 0; b <= STATS_BUCKETS; b++) {
            cum += h[b];
            evbuffer_add_printf(out, "ferry_http_request_duration_seconds_bucket{listener=\"");
            add_escaped(out, s->name);
            if (b < STATS_BUCKETS)
                evbuffer_add_printf(out, "\",le=\"%g\"} %llu\n", (double)stats_bucket_us[b] / 1e6,
                                    (unsigned long long)cum);
            else
                evbuffer_add_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        evbuffer_add_printf(out, "ferry_http_request_duration_seconds_sum{listener=\"");
        add_escaped(out, s->name);
        evbuffer_add_printf(out, "\"} %.6f\n", (double)sum / 1e6);
        evbuffer_add_printf(out, "ferry_http_request_duration_seconds_count{listener=\"");
        add_escaped(out, s->name);
        evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)cum);
    }
}

struct sum {
    uint64_t total, rejected, failed, in, out;
};

static struct sum
slot_sum(const struct stats_slot *s, unsigned nworkers)
{
    struct sum r = { 0 };

    for (unsigned w = 0; w < nworkers && w < s->ncells; w++) {
        r.total += atomic_load_explicit(&s->cell[w].conns_total, memory_order_relaxed);
        r.rejected += atomic_load_explicit(&s->cell[w].conns_rejected, memory_order_relaxed);
        r.failed += atomic_load_explicit(&s->cell[w].conns_failed, memory_order_relaxed);
        r.in += atomic_load_explicit(&s->cell[w].bytes_in, memory_order_relaxed);
        r.out += atomic_load_explicit(&s->cell[w].bytes_out, memory_order_relaxed);
    }
    return r;
}

static void
add_escaped(struct evbuffer *out, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            evbuffer_add(out, "\\", 1);
        if (*p == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, p, 1);
    }
}

static void
add_labels(struct evbuffer *out, const struct stats_slot *s)
{
    if (s->kind == STATS_TUNNEL) {
        evbuffer_add_printf(out, "{tenant=\"");
        add_escaped(out, s->tenant);
        evbuffer_add_printf(out, "\",location=\"");
        add_escaped(out, s->location);
    } else {
        evbuffer_add_printf(out, "{%s=\"", s->kind == STATS_LISTENER ? "listener" : "destination");
        add_escaped(out, s->name);
    }
    evbuffer_add(out, "\"}", 2);
}

static void
render_kind(struct evbuffer *out, enum stats_kind kind, unsigned nworkers)
{
    const char *prefix = kind == STATS_LISTENER ? "ferry_listener" :
                         kind == STATS_DEST ? "ferry_destination" : "ferry_tunnel";

    static const struct {
        const char *suffix, *type, *help;
    } metrics[] = {
        { "connections_total", "counter", "Connections accepted (listener) or routed (destination)" },
        { "connections_active", "gauge", "Connections open now" },
        { "connections_rejected_total", "counter", "Connections closed at once: max_connections reached" },
        { "connections_failed_total", "counter", "Connections whose upstream could not be opened" },
        { "bytes_received_total", "counter", "Bytes from clients towards upstreams" },
        { "bytes_sent_total", "counter", "Bytes from upstreams towards clients" },
    }, tunnel_metrics[] = {
        { "streams_total", "counter", "Streams opened through tunnels" },
        { "streams_active", "gauge", "Streams open now" },
        { "refusals_total", "counter", "Streams the connector refused (access control)" },
        { "streams_failed_total", "counter", "Streams that failed: unreachable, timeout, lost" },
        { "bytes_received_total", "counter", "Bytes from clients into tunnels" },
        { "bytes_sent_total", "counter", "Bytes from tunnels to clients" },
    };

    for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
        const char *suffix = kind == STATS_TUNNEL ? tunnel_metrics[m].suffix : metrics[m].suffix;

        evbuffer_add_printf(out, "# HELP %s_%s %s\n# TYPE %s_%s %s\n", prefix, suffix,
                            kind == STATS_TUNNEL ? tunnel_metrics[m].help : metrics[m].help,
                            prefix, suffix, metrics[m].type);
        for (const struct stats_slot *s = ferry_stats_slots(); s != NULL; s = s->next) {
            struct sum v;
            uint64_t   x;

            if (s->kind != kind)
                continue;
            v = slot_sum(s, nworkers);
            switch (m) {
            case 0: x = v.total; break;
            case 1: x = (uint64_t)atomic_load(&s->active); break;
            case 2: x = v.rejected; break;
            case 3: x = v.failed; break;
            case 4: x = v.in; break;
            default: x = v.out; break;
            }
            evbuffer_add_printf(out, "%s_%s", prefix, suffix);
            add_labels(out, s);
            evbuffer_add_printf(out, " %llu\n", (unsigned long long)x);
        }
    }
}

/* accept(2) failures for want of a descriptor, per listener (a pause each, worker.c). */
static void
render_accept_errors(struct evbuffer *out, unsigned nworkers)
{
    bool head = false;

    for (const struct stats_slot *s = ferry_stats_slots(); s != NULL; s = s->next) {
        uint64_t x = 0;

        if (s->kind != STATS_LISTENER)
            continue;
        if (!head)
            evbuffer_add_printf(out, "# HELP ferry_accept_errors_total accept() failures: "
                                "emfile = out of file descriptors (the listener pauses)\n"
                                "# TYPE ferry_accept_errors_total counter\n");
        head = true;
        for (unsigned w = 0; w < nworkers && w < s->ncells; w++)
            x += atomic_load_explicit(&s->cell[w].accept_nofd, memory_order_relaxed);
        evbuffer_add_printf(out, "ferry_accept_errors_total{listener=\"");
        add_escaped(out, s->name);
        evbuffer_add_printf(out, "\",reason=\"emfile\"} %llu\n", (unsigned long long)x);
    }
}

/* Per tenant (tenants[].max_connections): open connections counted against it and the
 * ones refused over its bound. */
static void
render_tenants(struct evbuffer *out, unsigned nworkers)
{
    bool head = false;

    for (const struct stats_slot *s = ferry_stats_slots(); s != NULL; s = s->next) {
        if (s->kind != STATS_TENANT)
            continue;
        if (!head)
            evbuffer_add_printf(out, "# HELP ferry_tenant_connections_active Open "
                                "connections authenticated as (or bound to) the tenant\n"
                                "# TYPE ferry_tenant_connections_active gauge\n");
        head = true;
        evbuffer_add_printf(out, "ferry_tenant_connections_active{tenant=\"");
        add_escaped(out, s->name);
        evbuffer_add_printf(out, "\"} %d\n", atomic_load(&s->active));
    }
    if (!head)
        return;
    evbuffer_add_printf(out, "# HELP ferry_tenant_connections_rejected_total Connections "
                        "refused: the tenant had max_connections open\n"
                        "# TYPE ferry_tenant_connections_rejected_total counter\n");
    for (const struct stats_slot *s = ferry_stats_slots(); s != NULL; s = s->next) {
        if (s->kind != STATS_TENANT)
            continue;
        evbuffer_add_printf(out, "ferry_tenant_connections_rejected_total{tenant=\"");
        add_escaped(out, s->name);
        evbuffer_add_printf(out, "\"} %llu\n",
                            (unsigned long long)slot_sum(s, nworkers).rejected);
    }
}

/* Clients a listener refused (allow, proxy_protocol, rate), by reason: every reason of
 * every listener, zeros included, so a rate() over them starts from the first scrape. */
static void
render_refused(struct evbuffer *out, unsigned nworkers)
{
    evbuffer_add_printf(out, "# HELP ferry_listener_refused_total Clients refused by the "
                        "listener's allow, proxy_protocol or rate\n"
                        "# TYPE ferry_listener_refused_total counter\n");
    for (const struct stats_slot *s = ferry_stats_slots(); s != NULL; s = s->next) {
        if (s->kind != STATS_LISTENER)
            continue;
        for (unsigned r = 0; r < STATS_REFUSED_REASONS; r++) {
            uint64_t v = 0;

            for (unsigned w = 0; w < nworkers && w < s->ncells; w++)
                v += atomic_load_explicit(&s->cell[w].refused[r], memory_order_relaxed);
            evbuffer_add_printf(out, "ferry_listener_refused_total{listener=\"");
            add_escaped(out, s->name);
            evbuffer_add_printf(out, "\",reason=\"%s\"} %llu\n", stats_refused_reasons[r],
                                (unsigned long long)v);
        }
    }
}

/* Plugins' counters (ferry/metrics.h): one metric per name, a `plugin` label each. */
static void
render_plugin_counters(struct evbuffer *out, unsigned nworkers)
{
    const char *last = NULL;

    for (const struct ferry_counter *k = stats_counters(); k != NULL; k = k->next) {
        uint64_t v = 0;

        for (unsigned w = 0; w < nworkers && w < FERRY_MAX_WORKERS; w++)
            v += atomic_load_explicit(&k->cell[w].v, memory_order_relaxed);
        if (last == NULL || strcmp(last, k->name) != 0) {
            evbuffer_add_printf(out, "# HELP ferry_plugin_%s ", k->name);
            for (const char *p = k->help; *p; p++)      /* HELP escapes \ and newline */
                if (*p == '\\')
                    evbuffer_add(out, "\\\\", 2);
                else if (*p == '\n')
                    evbuffer_add(out, "\\n", 2);
                else
                    evbuffer_add(out, p, 1);
            evbuffer_add_printf(out, "\n# TYPE ferry_plugin_%s counter\n", k->name);
            last = k->name;
        }
        evbuffer_add_printf(out, "ferry_plugin_%s{plugin=\"", k->name);
        add_escaped(out, k->plugin);
        evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)v);
    }
}

/* JWT validations (tenants' jwt:): the workers' cells and the main thread's. */
static void
render_jwt(struct evbuffer *out, unsigned nworkers)
{
    uint64_t ver = 0, hits = 0, refused[STATS_JWT_REASONS] = { 0 };

    for (unsigned w = 0; w <= STATS_JWT_MAIN; w++) {
        const struct stats_jwt_cell *c;

        if (w >= nworkers && w != STATS_JWT_MAIN)
            continue;
        c = stats_jwt_cell(w);
        ver += atomic_load_explicit(&c->verifications, memory_order_relaxed);
        hits += atomic_load_explicit(&c->cache_hits, memory_order_relaxed);
        for (unsigned r = 0; r < STATS_JWT_REASONS; r++)
            refused[r] += atomic_load_explicit(&c->refused[r], memory_order_relaxed);
    }
    evbuffer_add_printf(out, "# HELP ferry_jwt_verifications_total JWT signatures checked "
                        "(once per token and thread; the rest are cache hits)\n"
                        "# TYPE ferry_jwt_verifications_total counter\n"
                        "ferry_jwt_verifications_total %llu\n"
                        "# HELP ferry_jwt_cache_hits_total JWTs answered from a thread's cache\n"
                        "# TYPE ferry_jwt_cache_hits_total counter\n"
                        "ferry_jwt_cache_hits_total %llu\n"
                        "# HELP ferry_jwt_refused_total JWTs refused, by the failed check\n"
                        "# TYPE ferry_jwt_refused_total counter\n",
                        (unsigned long long)ver, (unsigned long long)hits);
    for (unsigned r = 0; r < STATS_JWT_REASONS; r++)
        evbuffer_add_printf(out, "ferry_jwt_refused_total{reason=\"%s\"} %llu\n",
                            stats_jwt_reasons[r], (unsigned long long)refused[r]);
}

/* Token service fetches, by result (stats_tokens: the auth room counts them). */
static void
render_tokens(struct evbuffer *out)
{
    const struct stats_tokens *t = stats_tokens();

    evbuffer_add_printf(out, "# HELP ferry_token_fetches_total Token service requests "
                        "(OAuth2 destinations), by result\n"
                        "# TYPE ferry_token_fetches_total counter\n"
                        "ferry_token_fetches_total{result=\"ok\"} %llu\n"
                        "ferry_token_fetches_total{result=\"failed\"} %llu\n",
                        (unsigned long long)atomic_load(&t->fetched),
                        (unsigned long long)atomic_load(&t->failed));
}

void
admin_metrics_render(struct evbuffer *out, unsigned nworkers)
{
    bool any = false;

    render_kind(out, STATS_LISTENER, nworkers);
    render_accept_errors(out, nworkers);
    render_tenants(out, nworkers);
    render_refused(out, nworkers);
    render_kind(out, STATS_DEST, nworkers);
    render_requests(out, nworkers);
    render_plugin_counters(out, nworkers);
    render_jwt(out, nworkers);
    render_tokens(out);
    for (const struct stats_slot *s = ferry_stats_slots(); s != NULL; s = s->next)
        any |= s->kind == STATS_TUNNEL;
    if (!any)
        return;
    evbuffer_add_printf(out, "# HELP ferry_tunnels Live tunnel connections per tenant and "
                        "location\n# TYPE ferry_tunnels gauge\n");
    for (const struct stats_slot *s = ferry_stats_slots(); s != NULL; s = s->next) {
        if (s->kind != STATS_TUNNEL)
            continue;
        evbuffer_add_printf(out, "ferry_tunnels");
        add_labels(out, s);
        evbuffer_add_printf(out, " %d\n", atomic_load(&s->tunnels));
    }
    render_kind(out, STATS_TUNNEL, nworkers);
}
