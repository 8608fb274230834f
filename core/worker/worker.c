/*
 * worker.c: worker threads. Each owns an event_base, an evdns resolver, a pipe pool,
 * its connections and one listening socket per listener. The main thread talks to a
 * worker only through the command fields under w->mu plus a write to its eventfd:
 * control-plane traffic, never on the data path.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <ferry/log.h>

#include "lua/lua-int.h"
#include "tunnel/gateway.h"
#include "util/ncpu.h"
#include "worker/conn-int.h"
#include "worker/io-int.h"
#include "worker/worker.h"

#define PIPE_BYTES     (1024 * 1024)   /* throughput per splice scales with this */
#define ACCEPT_BATCH   64              /* accepts per wake-up, then let others run */

static void
on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct wlistener       *wl = arg;
    struct sockaddr_storage ss;
    socklen_t               len;
    int                     cfd;

    (void)what;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        len = sizeof(ss);
        cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                ferry_log(NULL, FERRY_ERROR, "accept: out of file descriptors",
                          FLOG_STR("listener", wl->l->lc->name));
            return;     /* EAGAIN, or an error the next wake-up will see again */
        }
        ferry_conn_accepted(wl, cfd, (struct sockaddr *)&ss, len);
        if (wl->wg->w->cur != wl->wg)     /* a reload moved us on: stop using this one */
            return;
    }
}

static struct wgen *
wgen_new(struct worker *w, struct gen *g)
{
    struct wgen *wg = calloc(1, sizeof(*wg));

    if (wg == NULL || (wg->wl = calloc(g->nlisteners + 1, sizeof(*wg->wl))) == NULL) {
        free(wg);
        return NULL;
    }
    wg->w = w;
    wg->g = g;              /* the caller passes its reference on */
    wg->refs = 1;
    for (size_t i = 0; i < g->nlisteners; i++) {
        struct wlistener *wl = &wg->wl[i];

        wl->wg = wg;
        wl->l = &g->listeners[i];
        wl->fd = g->listeners[i].fds[w->id];
        event_assign(&wl->ev, w->base, wl->fd, EV_READ | EV_PERSIST, on_accept, wl);
    }
    return wg;
}

static void
wgen_arm(struct wgen *wg, bool on)
{
    for (size_t i = 0; i < wg->g->nlisteners; i++) {
        struct wlistener *wl = &wg->wl[i];

        if (on && !wl->armed)
            event_add(&wl->ev, NULL);
        else if (!on && wl->armed)
            event_del(&wl->ev);
        wl->armed = on;
    }
}

/* Stop accepting on this worker's sockets of a generation for good. Closing (not just
 * unwatching) matters: an open listening socket keeps completing handshakes into its
 * accept queue, and those clients would hang until the process exits. A socket that
 * a newer generation still serves survives: that generation holds a dup(). */
static void
wgen_close_sockets(struct wgen *wg)
{
    wgen_arm(wg, false);
    for (size_t i = 0; i < wg->g->nlisteners; i++) {
        int *fds = wg->g->listeners[i].fds;

        if (fds != NULL && fds[wg->w->id] >= 0) {
            close(fds[wg->w->id]);
            fds[wg->w->id] = -1;
        }
        wg->wl[i].fd = -1;
    }
}

void
wgen_unref(struct wgen *wg)
{
    if (--wg->refs > 0)
        return;
    wgen_arm(wg, false);
    ferry_policy_vm_free(wg->policy);      /* before the gen: it reads its config */
    ferry_gen_unref(wg->g, wg->w->main_base);
    free(wg->wl);
    free(wg);
}

int
worker_pipe_get(struct worker *w, int p[2])
{
    if (w->npipes > 0) {
        w->npipes--;
        p[0] = w->pipes[w->npipes][0];
        p[1] = w->pipes[w->npipes][1];
        return 0;
    }
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    /* Best effort: without it (pipe-max-size, per-user limits) splice still works. */
    if (w->pipe_size > 65536 && fcntl(p[0], F_SETPIPE_SZ, (int)w->pipe_size) < 0)
        w->pipe_size = 65536;
    return 0;
}

void
worker_pipe_put(struct worker *w, int p[2])
{
    if (w->npipes < FERRY_PIPE_POOL_MAX) {
        w->pipes[w->npipes][0] = p[0];
        w->pipes[w->npipes][1] = p[1];
        w->npipes++;
        return;
    }
    close(p[0]);
    close(p[1]);
}

struct wpost {
    struct wpost *next;
    void        (*fn)(void *arg, bool run);
    void         *arg;
};

/* Take the queued posts (under mu). */
static struct wpost *
posts_take(struct worker *w)
{
    struct wpost *p = w->cmd_posts;

    w->cmd_posts = NULL;
    w->cmd_posts_tail = &w->cmd_posts;
    return p;
}

static void
posts_run(struct wpost *p, bool run)
{
    while (p != NULL) {
        struct wpost *next = p->next;

        p->fn(p->arg, run);
        free(p);
        p = next;
    }
}

static void
on_command(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct gen        *g;
    struct wpost      *posts;
    bool               drain, stop;

    uint64_t       junk;

    (void)what;
    if (read(fd, &junk, sizeof(junk)) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&w->mu);
    g = w->cmd_gen;
    w->cmd_gen = NULL;
    drain = w->cmd_drain;
    stop = w->cmd_stop;
    posts = posts_take(w);
    pthread_mutex_unlock(&w->mu);

    posts_run(posts, true);

    if (g != NULL && !w->draining) {
        struct wgen *wg = wgen_new(w, g);

        if (wg == NULL) {
            ferry_log(NULL, FERRY_ERROR, "reload: out of memory on a worker",
                      FLOG_INT("worker", w->id));
            ferry_gen_unref(g, w->main_base);
        } else {
            struct wgen *old = w->cur;

            w->cur = wg;
            wgen_arm(wg, true);
            wgen_close_sockets(old);
            wgen_unref(old);         /* freed when its last connection closes */
            io_pool_drop_idle(w);    /* the next request dials with what was reloaded */
        }
    } else if (g != NULL) {
        ferry_gen_unref(g, w->main_base);
    }
    if (drain && !w->draining) {
        w->draining = true;
        w->gw.draining = true;
        io_pool_close_all(w);       /* pooled tunnel streams would hold the tunnels */
        gw_worker_shutdown(&w->gw);
        wgen_close_sockets(w->cur);
        if (w->nconns == 0)
            event_base_loopexit(w->base, NULL);
    }
    if (stop) {
        ferry_conn_close_all(w);
        event_base_loopexit(w->base, NULL);
    }
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    ferry_conn_close_all(w);
    io_worker_free(w);
    gw_worker_close_all(&w->gw);
    ferry_jwt_cache_free(w->jwt_cache);     /* its thread's: no connection uses it now */
    w->jwt_cache = NULL;
    return NULL;
}

/* The tunnel room's hooks (struct gw_worker). */
static void
gw_goaway(struct gw_worker *gw, struct tunnel *t)
{
    io_pool_drop_tunnel(container_of(gw, struct worker, gw), t);
}

static void
gw_idle(struct gw_worker *gw)
{
    struct worker *w = container_of(gw, struct worker, gw);

    if (w->draining && w->nconns == 0)
        event_base_loopexit(w->base, NULL);
}

static int
post_fn(void *ctx, void (*fn)(void *arg, bool run), void *arg)
{
    return worker_post(ctx, fn, arg);
}

static int
worker_init(struct worker *w, unsigned id, struct gen *g, struct event_base *main_base,
            struct ferry_tls_cache *tls)
{
    memset(w, 0, sizeof(*w));
    w->cmd_fd = -1;
    w->id = id;
    w->main_base = main_base;
    w->tls = tls;
    w->pipe_size = PIPE_BYTES;
    pthread_mutex_init(&w->mu, NULL);
    struct event_config *cfg = event_config_new();

    /* No locks in the worker's base: only this thread touches it. The main thread
     * wakes it through an eventfd instead of event_active(). */
    if (cfg == NULL)
        return FERRY_ENOMEM;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (w->base == NULL)
        return FERRY_ENOMEM;
    if ((w->cmd_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return FERRY_EIO;
    if ((w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL &&
        (w->dns = evdns_base_new(w->base, 0)) == NULL)
        return FERRY_ENOMEM;
    /* Names in /etc/hosts (localhost, test hosts) resolve without a DNS server. */
    evdns_base_load_hosts(w->dns, NULL);
    /* Tokens verified on this worker (one signature check per token and worker); a
     * cache that did not allocate only makes every check verify. */
    w->jwt_cache = ferry_jwt_cache_new(0);
    w->post.post = post_fn;
    w->post.ctx = w;
    w->gw.id = id;
    w->gw.base = w->base;
    w->gw.post = w->post;
    w->gw.goaway = gw_goaway;
    w->gw.idle = gw_idle;
    w->home.base = w->base;
    w->home.dns = w->dns;
    w->home.post = w->post;
    w->home.tls = w->tls;
    event_assign(&w->cmd_ev, w->base, w->cmd_fd, EV_READ | EV_PERSIST, on_command, w);
    event_add(&w->cmd_ev, NULL);
    atomic_fetch_add(&g->refs, 1);
    if ((w->cur = wgen_new(w, g)) == NULL)
        return FERRY_ENOMEM;
    wgen_arm(w->cur, true);
    return FERRY_OK;
}

static void
worker_wake(struct worker *w)
{
    uint64_t one = 1;

    if (write(w->cmd_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        ferry_log(NULL, FERRY_ERROR, "cannot wake worker", FLOG_INT("worker", w->id));
}

int
worker_post(struct worker *w, void (*fn)(void *arg, bool run), void *arg)
{
    struct wpost *p = malloc(sizeof(*p));

    if (p == NULL)
        return FERRY_ENOMEM;
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&w->mu);
    if (w->cmd_posts_tail == NULL)
        w->cmd_posts_tail = &w->cmd_posts;
    *w->cmd_posts_tail = p;
    w->cmd_posts_tail = &p->next;
    pthread_mutex_unlock(&w->mu);
    worker_wake(w);
    return FERRY_OK;
}

struct gw_worker *
ferry_worker_gw(void *ws, unsigned i)
{
    return &((struct worker *)ws)[i].gw;
}

const struct timeval *
worker_common_timeout(struct worker *w, uint32_t ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    for (unsigned i = 0; i < w->ncommon; i++)
        if (w->common_ms[i] == ms)
            return w->common_tv[i];
    if (w->ncommon == sizeof(w->common_ms) / sizeof(w->common_ms[0]))
        return NULL;
    if ((w->common_tv[w->ncommon] = event_base_init_common_timeout(w->base, &tv)) == NULL)
        return NULL;
    w->common_ms[w->ncommon] = ms;
    return w->common_tv[w->ncommon++];
}

int
ferry_workers_start(struct worker *ws, unsigned n, struct gen *g, struct event_base *main_base,
                    struct ferry_tls_cache *tls, bool pin)
{
    for (unsigned i = 0; i < n; i++)
        if (worker_init(&ws[i], i, g, main_base, tls) != FERRY_OK)
            return FERRY_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        int cpu = pin ? ferry_cpu_nth(i) : -1;

        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
            return FERRY_EIO;
        if (cpu >= 0) {
            cpu_set_t set;
            int       rc;

            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            if ((rc = pthread_setaffinity_np(ws[i].thread, sizeof(set), &set)) != 0)
                ferry_log(NULL, FERRY_WARN, "worker_cpu_affinity: cannot pin the worker",
                          FLOG_INT("worker", i), FLOG_INT("cpu", cpu),
                          FLOG_STR("error", strerror(rc)));
            else
                ferry_log(NULL, FERRY_DEBUG, "worker pinned", FLOG_INT("worker", i),
                          FLOG_INT("cpu", cpu));
        }
    }
    return FERRY_OK;
}

void
ferry_workers_switch(struct worker *ws, unsigned n, struct gen *g)
{
    for (unsigned i = 0; i < n; i++) {
        struct gen *old;

        atomic_fetch_add(&g->refs, 1);
        pthread_mutex_lock(&ws[i].mu);
        old = ws[i].cmd_gen;            /* two reloads in a row: the last one wins */
        ws[i].cmd_gen = g;
        pthread_mutex_unlock(&ws[i].mu);
        if (old != NULL)
            ferry_gen_unref(old, ws[i].main_base);
        worker_wake(&ws[i]);
    }
}

void
ferry_workers_drain(struct worker *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        pthread_mutex_lock(&ws[i].mu);
        ws[i].cmd_drain = true;
        pthread_mutex_unlock(&ws[i].mu);
        worker_wake(&ws[i]);
    }
}

void
ferry_workers_stop(struct worker *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        pthread_mutex_lock(&ws[i].mu);
        ws[i].cmd_stop = true;
        pthread_mutex_unlock(&ws[i].mu);
        worker_wake(&ws[i]);
    }
}

void
ferry_workers_join(struct worker *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        pthread_join(ws[i].thread, NULL);
        pthread_mutex_lock(&ws[i].mu);
        {
            struct wpost *left = posts_take(&ws[i]);

            pthread_mutex_unlock(&ws[i].mu);
            posts_run(left, false);
        }
        ws[i].main_base = NULL;     /* the main loop is done: free on this thread */
        if (ws[i].cur != NULL)
            wgen_unref(ws[i].cur);
        while (ws[i].npipes > 0) {
            ws[i].npipes--;
            close(ws[i].pipes[ws[i].npipes][0]);
            close(ws[i].pipes[ws[i].npipes][1]);
        }
        ferry_jwt_cache_free(ws[i].jwt_cache);     /* a worker that never ran */
        ws[i].jwt_cache = NULL;
        if (ws[i].dns != NULL)
            evdns_base_free(ws[i].dns, 1);
        event_del(&ws[i].cmd_ev);
        event_base_free(ws[i].base);
        if (ws[i].cmd_fd >= 0)
            close(ws[i].cmd_fd);
        pthread_mutex_destroy(&ws[i].mu);
    }
}

size_t
ferry_workers_active(struct worker *ws, unsigned n)
{
    size_t total = 0;

    /* Approximate across threads; only used for logs. */
    for (unsigned i = 0; i < n; i++)
        total += __atomic_load_n(&ws[i].nconns, __ATOMIC_RELAXED);
    return total;
}
