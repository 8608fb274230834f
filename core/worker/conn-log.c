/*
 * conn-log.c: what a connection writes to the logs. The fields its log context adds
 * to every process-log line (worker, conn, listener, client), its access-log line when
 * it ends, and for message-level plugins one line per request
 * (ferry_conn_request_done), counted in /metrics on the way.
 *
 * Formats only: the log room writes the lines, stats/ holds the counters, and conn.c
 * decides when a connection ends.
 */
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include <ferry/conn.h>
#include <ferry/io.h>
#include <ferry/route.h>

#include "util/abi.h"
#include "worker/conn-int.h"
#include "worker/io-int.h"

void
conn_log_fields(const struct ferry_log_ctx *ctx, struct logbuf *b)
{
    const struct ferry_conn *c = (const struct ferry_conn *)ctx;

    logbuf_int(b, "worker", c->w->id);
    logbuf_int(b, "conn", (long long)c->id);
    logbuf_str(b, "listener", c->l->lc->name);
    logbuf_str(b, "client", ferry_conn_peer(c));
}

void
conn_write_access(struct ferry_conn *c)
{
    struct logbuf  b;
    struct timeval now, dur;

    if (!ferry_log_access_enabled())
        return;
    /* The same (cached) clock as `started`: mixing clocks gave negative durations. */
    event_base_gettimeofday_cached(c->w->base, &now);
    timersub(&now, &c->started, &dur);
    ferry_log_access_begin(&b);
    logbuf_str(&b, "listener", c->l->lc->name);
    logbuf_str(&b, "plugin", c->l->plugin->name);
    logbuf_str(&b, "destination", c->dest != NULL ? ferry_dest_name(c->dest) : NULL);
    logbuf_str(&b, "client", ferry_conn_peer(c));
    if (ferry_conn_tenant(c) != NULL)
        logbuf_str(&b, "tenant", ferry_conn_tenant(c));
    logbuf_str(&b, "target", c->target);
    if (c->cio != NULL) {
        uint64_t in, out;

        io_bytes(c->cio, &in, &out);
        logbuf_int(&b, "bytes_in", (long long)in);
        logbuf_int(&b, "bytes_out", (long long)out);
    } else {
        logbuf_int(&b, "bytes_in", (long long)c->up.bytes);
        logbuf_int(&b, "bytes_out", (long long)c->down.bytes);
    }
    logbuf_int(&b, "duration_ms", (long long)dur.tv_sec * 1000 + dur.tv_usec / 1000);
    logbuf_str(&b, "outcome", c->outcome != NULL ? c->outcome : "ok");
    logbuf_int(&b, "worker", c->w->id);
    logbuf_int(&b, "conn", (long long)c->id);
    ferry_log_access_end(&b);
}

FERRY_API void
ferry_conn_request_done(struct ferry_conn *c, const struct ferry_request_record *pr)
{
    struct logbuf               b;
    struct ferry_request_record rec;
    const struct ferry_request_record *r = &rec;
    struct stats_slot          *ds;

    /* A 1.1 plugin's record ends before protocol: "http" then. */
    ABI_COPY(&rec, pr, conn_abi_minor(c), ABI_RECORD_SIZES);
    ds = r->dest != NULL ? conn_dest_stats(c, r->dest) : NULL;

    stats_request(c->l->stats, c->w->id, r->total_us);
    /* The (listener, destination) pair: looked up when the destination changes. */
    if (c->req_pair == NULL || c->req_pair->dest != ds)
        c->req_pair = stats_pair_get(c->l->stats, ds);
    if (c->req_pair != NULL && c->w->id < FERRY_MAX_WORKERS) {
        if (r->protocol != NULL && strcmp(r->protocol, "ldap") == 0)
            stats_add(&c->req_pair->cell[c->w->id].ldap[r->status == 0 ? 0 : 1], 1);
        else if (r->status >= 100 && r->status <= 599)
            stats_add(&c->req_pair->cell[c->w->id].cls[r->status / 100 - 1], 1);
    }
    if (!ferry_log_access_enabled())
        return;
    ferry_log_access_begin(&b);
    logbuf_str(&b, "msg", "request");
    logbuf_str(&b, "protocol", r->protocol != NULL ? r->protocol : "http");
    logbuf_str(&b, "listener", c->l->lc->name);
    logbuf_str(&b, "client", ferry_conn_peer(c));
    if (ferry_conn_tenant(c) != NULL)
        logbuf_str(&b, "tenant", ferry_conn_tenant(c));
    logbuf_str(&b, "method", r->method);
    logbuf_str(&b, "path", r->path);
    logbuf_str(&b, "destination", r->dest != NULL ? ferry_dest_name(r->dest) : NULL);
    logbuf_str(&b, "target", r->target);
    logbuf_int(&b, "status", r->status);
    logbuf_int(&b, "bytes_in", (long long)r->bytes_in);
    logbuf_int(&b, "bytes_out", (long long)r->bytes_out);
    logbuf_int(&b, "upstream_ms", (long long)(r->upstream_us / 1000));
    logbuf_int(&b, "total_ms", (long long)(r->total_us / 1000));
    if (r->request_id != NULL)
        logbuf_str(&b, "request_id", r->request_id);
    logbuf_str(&b, "outcome", r->outcome != NULL ? r->outcome : "ok");
    logbuf_int(&b, "worker", c->w->id);
    logbuf_int(&b, "conn", (long long)c->id);
    ferry_log_access_end(&b);
}
