/*
 * gen.c: build a generation from a loaded configuration: load plugins, let each
 * plugin validate and open its listeners, create the listening sockets (one per worker,
 * SO_REUSEPORT), and give every listener and destination its stats slot.
 * Main thread only. Freed on the main thread once no worker or connection uses it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "dest/dest-int.h"
#include "lua/lua-int.h"
#include "util/rate.h"
#include "plugin/loader.h"
#include "worker/worker.h"

#define LISTEN_BACKLOG 4096

static unsigned nserving;      /* generations with sockets: a gateway runs (main thread) */

static int
open_socket(const struct ferry_conf_listener *lc, int *fd_out, struct ferry_err *err)
{
    int one = 1;
    int fd = socket(lc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return ferry_err_set(err, FERRY_EIO, "socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* Accepted sockets inherit it: relayed small writes must not wait for Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* One socket per worker on the same address: the kernel balances accepts. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&lc->addr, lc->addr_len) < 0 ||
        listen(fd, LISTEN_BACKLOG) < 0) {
        ferry_err_set(err, FERRY_EIO, "cannot listen on %s: %s", lc->listen, strerror(errno));
        close(fd);
        return FERRY_EIO;
    }
    *fd_out = fd;
    return FERRY_OK;
}

static const struct ferry_listener *
prev_listener_on(const struct gen *prev, const struct ferry_conf_listener *lc)
{
    if (prev == NULL)
        return NULL;
    for (size_t i = 0; i < prev->nlisteners; i++) {
        const struct ferry_conf_listener *o = prev->listeners[i].lc;

        if (o->addr_len == lc->addr_len && memcmp(&o->addr, &lc->addr, lc->addr_len) == 0 &&
            prev->listeners[i].fds != NULL)
            return &prev->listeners[i];
    }
    return NULL;
}

static void
gen_free(struct gen *g)
{
    if (g->serving)
        nserving--;
    for (size_t i = 0; i < g->nlisteners; i++) {
        struct ferry_listener *l = &g->listeners[i];

        if (l->fds != NULL) {
            for (unsigned w = 0; w < g->nworkers; w++)
                if (l->fds[w] >= 0)
                    close(l->fds[w]);
            free(l->fds);
        }
        if (l->opened && l->plugin->listener_close != NULL)
            l->plugin->listener_close(l->pstate);
        ferry_rate_table_free(l->rate);     /* no connection of g is left to use it */
    }
    free(g->listeners);
    free(g->dest_stats);
    free(g->tenant_stats);
    ferry_policy_set_free(g->policies);     /* borrows the registry's destinations */
    gen_jwt_free(g);                        /* borrows the conf's tenants */
    ferry_conf_free(g->conf);
    free(g);
}

/* nworkers == 0: validation only (ferry check): plugins open and close, nothing binds. */
struct gen *
ferry_gen_new(struct ferry_conf *conf, struct ferry_policy_set *policies, const struct gen *prev,
              unsigned nworkers, struct ferry_errlist *errs)
{
    static uint64_t next_id;
    struct gen     *g;
    int             bad = 0;

    if ((g = calloc(1, sizeof(*g))) == NULL)
        return NULL;
    atomic_init(&g->refs, 1);
    g->id = ++next_id;
    g->conf = conf;
    g->nworkers = nworkers;
    g->nlisteners = conf->nlisteners;
    if ((g->listeners = calloc(conf->nlisteners + 1, sizeof(*g->listeners))) == NULL ||
        (g->dest_stats = calloc(conf->registry->n + 1, sizeof(*g->dest_stats))) == NULL ||
        (g->tenant_stats = calloc(conf->ntenants + 1, sizeof(*g->tenant_stats))) == NULL) {
        g->conf = NULL;
        gen_free(g);
        return NULL;
    }
    g->policies = policies;
    for (size_t i = 0; i < conf->registry->n; i++)
        g->dest_stats[i] = ferry_stats_slot(STATS_DEST, conf->registry->dests[i].name);
    for (size_t i = 0; i < conf->ntenants; i++)     /* NULL (no memory): not bounded */
        if (conf->tenants[i].id != NULL)
            g->tenant_stats[i] = ferry_stats_slot(STATS_TENANT, conf->tenants[i].id);
    /* Policies load once per configuration, by its first generation: the validation
     * one of ferry check, of the start and of a reload (given prev: a destination whose
     * new script does not load keeps prev's). Without prev while a gateway runs, they
     * wait for a generation that has it. Scripts with errors (reported) leave the
     * listeners to be checked all the same: one run reports both. The validation
     * generation hands the set on to the real one (main.c's load_checked). */
    if (g->policies == NULL && (nworkers > 0 || nserving == 0 || prev != NULL)) {
        int rc = ferry_policy_load(conf, prev != NULL ? prev->policies : NULL, &g->policies,
                                   errs);

        if (rc == FERRY_EINVAL) {
            bad = 1;
        } else if (rc != FERRY_OK) {
            g->conf = NULL;
            gen_free(g);
            return NULL;
        }
    }

    for (size_t i = 0; i < conf->nlisteners; i++) {
        struct ferry_conf_listener *lc = &conf->listeners[i];
        struct ferry_listener      *l = &g->listeners[i];
        struct ferry_err            err = { 0 };

        l->lc = lc;
        if (!lc->opts_checkable) {          /* a partial conf: its errors are reported */
            bad = 1;
            continue;
        }
        if (ferry_plugin_load(lc->plugin, conf->plugins_dir, &l->plugin, &err) != FERRY_OK) {
            ferry_errlist_add(errs, conf->path, lc->line, lc->col, "listeners[%d] (%s): %s",
                              lc->index, lc->name, err.msg);
            bad = 1;
            continue;
        }
        ferry_opts_set_errlist(lc->opts, errs);
        if (l->plugin->listener_open != NULL) {
            if (l->plugin->listener_open(l, lc->opts, &l->pstate) != FERRY_OK) {
                bad = 1;
                ferry_opts_check_unused(lc->opts);
                continue;
            }
        }
        l->opened = true;
        ferry_opts_check_unused(lc->opts);
        if ((l->stats = ferry_stats_slot(STATS_LISTENER, lc->name)) == NULL)
            bad = 1;
    }
    /* Tenants' JWT keys: a jwks file that does not load is a configuration error,
     * reported by ferry check like the rest. */
    {
        int rc = gen_jwt_load(g, prev, errs);

        if (rc == FERRY_ENOMEM)
            goto fail;
        if (rc != FERRY_OK)
            bad = 1;
    }
    if (bad || errs->count > 0 || conf->has_errors)
        goto fail;
    for (size_t i = 0; i < conf->nlisteners && nworkers > 0; i++) {
        struct ferry_listener       *l = &g->listeners[i];
        const struct ferry_listener *old = prev_listener_on(prev, l->lc);

        if ((l->fds = malloc(nworkers * sizeof(int))) == NULL)
            goto fail;
        if (l->lc->rate_per_s != 0 && (l->rate = ferry_rate_table_new()) == NULL)
            goto fail;
        for (unsigned w = 0; w < nworkers; w++)
            l->fds[w] = -1;
        for (unsigned w = 0; w < nworkers; w++) {
            struct ferry_err err = { 0 };

            if (old != NULL && w < prev->nworkers) {
                /* Same kernel socket and accept queue: a reload drops nothing. */
                if ((l->fds[w] = dup(old->fds[w])) >= 0)
                    continue;
            }
            if (open_socket(l->lc, &l->fds[w], &err) != FERRY_OK) {
                ferry_errlist_add(errs, conf->path, l->lc->line, l->lc->col,
                                  "listeners[%d] (%s): %s", l->lc->index, l->lc->name, err.msg);
                goto fail;
            }
        }
    }
    if (nworkers > 0) {
        g->serving = true;
        nserving++;
    }
    return g;
fail:
    if (g->policies == policies)
        g->policies = NULL;     /* the caller still owns conf and its policies on failure */
    g->conf = NULL;
    gen_free(g);
    return NULL;
}

static void
gen_free_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gen_free(arg);
}

void
ferry_gen_unref(struct gen *g, struct event_base *main_base)
{
    static const struct timeval now = { 0, 0 };

    if (atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    /* Plugin listener_close() and config frees belong to the main thread. */
    if (main_base == NULL || event_base_once(main_base, -1, EV_TIMEOUT, gen_free_cb, g, &now) != 0)
        gen_free(g);
}

FERRY_API const char *
ferry_listener_name(const struct ferry_listener *l)
{
    return l->lc->name;
}

FERRY_API const char *
ferry_listener_destination(const struct ferry_listener *l)
{
    return l->lc->destination;
}

FERRY_API const char *
ferry_listener_tenant(const struct ferry_listener *l)
{
    return l->lc->tenant;
}
