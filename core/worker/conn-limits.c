/*
 * conn-limits.c: a listener's limits and source addresses (DESIGN.md "Limits and
 * source addresses"), applied to its connections: `allow` at accept (and again against
 * a PROXY header's address), `proxy_protocol` (the header is read here, before the
 * plugin gets the connection) and `rate` (one token per connection, taken when it
 * first opens an upstream, ferry_conn_open or ferry_io_open; per request instead for a
 * plugin that calls ferry_conn_rate_take, as http does).
 *
 * Parsing is util's (cidr.h, proxy.h, rate.h); this file owns the socket reads of the
 * header, the counting and the refusal log lines. The plugin's reply to a rate refusal
 * (429, SOCKS5 02) is the plugin's.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include <event2/event.h>

#include <ferry/conn.h>

#include "util/addr.h"
#include "util/cidr.h"
#include "util/proxy.h"
#include "util/rate.h"
#include "worker/conn-int.h"

/* The PROXY header comes from a balancer on the same network, right after connect:
 * it gets this long (or idle_timeout_ms, when that is shorter). */
#define PROXY_HEADER_TIMEOUT_MS 5000

static struct wlistener *
conn_wl(const struct ferry_conn *c)
{
    return &c->wg->wl[c->l - c->wg->g->listeners];
}

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
conn_refused(struct wlistener *wl, const struct sockaddr *sa, enum stats_refused reason)
{
    struct worker *w = wl->wg->w;
    int64_t        now_s = mono_ms() / 1000;
    char           peer[INET6_ADDRSTRLEN + 10];

    stats_add(&wl->l->stats->cell[w->id].refused[reason], 1);
    /* A flood of refusals must not become a flood of log lines: the first of each
     * second is logged with how many went unlogged before it. */
    if (wl->refused_log_s == now_s && wl->refused_log_s != 0) {
        wl->refused_quiet++;
        return;
    }
    ferry_addr_format(sa, peer, sizeof(peer));
    ferry_log(NULL, FERRY_INFO, "client refused", FLOG_STR("listener", wl->l->lc->name),
              FLOG_STR("client", peer), FLOG_STR("reason", stats_refused_reasons[reason]),
              FLOG_INT("unlogged", wl->refused_quiet));
    wl->refused_log_s = now_s;
    wl->refused_quiet = 0;
}

bool
conn_allowed(struct wlistener *wl, const struct sockaddr *sa)
{
    const struct ferry_conf_listener *lc = wl->l->lc;

    if (lc->allow == NULL || ferry_cidr_match(lc->allow, lc->nallow, sa))
        return true;
    conn_refused(wl, sa, STATS_REFUSED_NOT_ALLOWED);
    return false;
}

/* ---- proxy_protocol ------------------------------------------------------------- */

static void
proxy_fail(struct ferry_conn *c, const char *why)
{
    conn_refused(conn_wl(c), (const struct sockaddr *)&c->peer, STATS_REFUSED_PROXY_HEADER);
    ferry_log(&c->logctx, FERRY_DEBUG, "no valid PROXY header", FLOG_STR("error", why));
    conn_finish(c, "proxy-header-invalid");
}

void
conn_proxy_start(struct ferry_conn *c)
{
    uint32_t ms = c->l->lc->idle_timeout_ms;

    c->state = CONN_PROXY;
    conn_watch_client(c);
    conn_arm_timer(c, ms < PROXY_HEADER_TIMEOUT_MS ? ms : PROXY_HEADER_TIMEOUT_MS);
}

void
conn_proxy_timeout(struct ferry_conn *c)
{
    conn_refused(conn_wl(c), (const struct sockaddr *)&c->peer, STATS_REFUSED_PROXY_HEADER);
    conn_finish(c, "proxy-header-timeout");
}

/* The header is read with MSG_PEEK until it is whole, then exactly its bytes are
 * taken off the socket: what follows stays there for the plugin, as if the header had
 * never been sent. A client trickling bytes only extends the wait to the deadline. */
void
conn_proxy_io(struct ferry_conn *c)
{
    uint8_t                buf[FERRY_PROXY_MAX];
    size_t                 cap = c->l->lc->proxy_protocol == 1 ? FERRY_PROXY_V1_MAX :
                                 FERRY_PROXY_MAX;
    struct ferry_proxy_hdr h;
    const char            *why = "closed";
    ssize_t                n;
    int                    rc;

    n = recv(c->cfd, buf, cap, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        c->c_readable = false;
        return;
    }
    if (n <= 0) {
        proxy_fail(c, n == 0 ? "closed before the header" : "read error");
        return;
    }
    rc = ferry_proxy_parse(buf, (size_t)n, c->l->lc->proxy_protocol, &h, &why);
    if (rc == 0 && !c->c_hup) {         /* the next edge brings the rest */
        c->c_readable = false;
        return;
    }
    if (rc <= 0) {
        proxy_fail(c, rc == 0 ? "closed inside the header" : why);
        return;
    }
    if (recv(c->cfd, buf, h.len, 0) != (ssize_t)h.len) {   /* peeked: it is all there */
        proxy_fail(c, "read error");
        return;
    }
    if (!h.local) {
        /* From here the header's client is the client: logs, req.client, allow, rate. */
        memcpy(&c->peer, &h.src, h.src_len);
        c->peer_len = h.src_len;
        c->peer_text = NULL;
        if (!conn_allowed(conn_wl(c), (const struct sockaddr *)&c->peer)) {
            conn_finish(c, "not-allowed");
            return;
        }
    }
    event_del(&c->timer);
    c->state = CONN_PLUGIN;
    c->c_readable = true;               /* bytes after the header may be waiting: no new
                                           edge will tell the plugin about them */
    conn_start_plugin(c);
}

/* ---- rate --------------------------------------------------------------------------- */

int
conn_rate_take(struct ferry_conn *c, uint32_t *retry_after_s)
{
    const struct ferry_conf_listener *lc = c->l->lc;
    uint8_t                           key[16];
    uint32_t                          retry = 1;

    if (retry_after_s != NULL)
        *retry_after_s = 0;
    if (c->l->rate == NULL || !ferry_addr_key((const struct sockaddr *)&c->peer, key))
        return FERRY_OK;
    if (ferry_rate_take(c->l->rate, c->l, key, (uint64_t)mono_ms(), lc->rate_per_s,
                        lc->rate_burst, &retry))
        return FERRY_OK;
    conn_refused(conn_wl(c), (const struct sockaddr *)&c->peer, STATS_REFUSED_RATE_LIMITED);
    if (retry_after_s != NULL)
        *retry_after_s = retry;
    return FERRY_ELIMIT;
}

FERRY_API int
ferry_conn_rate_take(struct ferry_conn *c, uint32_t *retry_after_s)
{
    if (c == NULL)
        return FERRY_EINVAL;
    c->rate_taken = true;               /* the plugin counts per request: core never at open */
    return conn_rate_take(c, retry_after_s);
}
