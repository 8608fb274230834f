/*
 * main.c: the ferry command line. Parses arguments and calls the rooms: conf/ to load,
 * worker/ (gateway) or tunnel/ (connector) to run, admin/ to report. No logic of its
 * own beyond signals, the admin listener and the reload/drain sequence of each role.
 * The top room: it may call every other, and none calls it.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <ferry/api.h>
#include <ferry/log.h>

#include "admin/admin.h"
#include "auth/tokens.h"
#include "conf/conf.h"
#include "dest/dest-int.h"
#include "log/log.h"
#include "lua/lua-int.h"
#include "lua/ptest.h"
#include "plugin/loader.h"
#include "stats/stats.h"
#include "store/store-cli.h"
#include "store/store.h"
#include "tls/cache.h"
#include "tunnel/connector.h"
#include "tunnel/gateway.h"
#include "util/ncpu.h"
#include "worker/io-int.h"
#include "worker/worker.h"

#define EXIT_CONFIG 2

struct reload_wait;

struct gateway {
    const char               *conf_path;
    struct event_base        *base;
    struct worker            *workers;
    unsigned                  nworkers;
    struct gen               *gen;          /* current; main holds one ref */
    struct ferry_admin       *admin;
    struct gw_listener       *tunnels;       /* NULL without a tunnel: section */
    struct ferry_tls_cache   *tls;           /* upstream TLS contexts, built on this thread */
    struct ferry_admin_state  st;
    struct event             *drain_poll;
    struct event             *drain_deadline;
    bool                      draining;
    struct reload_wait       *waits;         /* admin reloads not yet on every worker */
    /* With `store:`: the etcd mirror, and the configuration text it was loaded from
     * (an etcd change builds a generation from the same text, not from a file that may
     * have been edited since: the file counts on SIGHUP only). */
    struct ferry_store       *store;
    struct evdns_base        *dns;
    char                     *conf_text;
    struct ferry_post         home;          /* this loop, for TLS contexts being built */
};

/* A serving generation: its tenants' jwks_url keys are fetched on this loop. Before
 * the workers see it, so they read the fetch settings it keeps. */
static void
gen_jwt_begin(struct gateway *gw, struct gen *g)
{
    struct ferry_jwks_fetch f = { .base = gw->base, .dns = gw->dns, .tls_cache = gw->tls,
                                  .home = &gw->home, .timeout_ms = 10000 };

    ferry_gen_jwt_start(g, &f);
}

static void
usage(FILE *fp)
{
    fprintf(fp,
        "usage: ferry [gateway] -c FILE        run the gateway (default)\n"
        "       ferry connector -c FILE        run the on-premise connector\n"
        "       ferry connector --verify-audit FILE...\n"
        "                                      check an audit log's hash chain (a rotated\n"
        "                                      log's files oldest first: one chain)\n"
        "       ferry check -c FILE            validate a configuration (exit 2 on errors)\n"
        "       ferry policy test -c FILE DESTINATION REQUEST_FILE [--response FILE]\n"
        "                         [--user FILE]\n"
        "                                      show a sample request as it would leave\n"
        "                                      ferry (on_request, then what the destination\n"
        "                                      adds); with --response, on_response on FILE\n"
        "                                      (a raw HTTP response head); with --user,\n"
        "                                      req.user is FILE's claims (a JSON object)\n");
    ferry_store_cli_usage(fp);
    fprintf(fp,
        "       ferry --version | --help\n"
        "\n"
        "options:\n"
        "  -c, --config FILE   configuration file (default conf/ferry.yaml)\n"
        "\n"
        "signals: SIGHUP reloads the configuration; SIGTERM drains and exits;\n"
        "         the connector reloads (systems, access control, log level) and reopens\n"
        "         its audit log on SIGHUP; SIGUSR1 reopens the audit log only.\n");
}

static unsigned
count_workers(const struct ferry_conf *conf)
{
    long n = conf->workers != 0 ? (long)conf->workers : (long)ferry_ncpu();

    if (n < 1)
        n = 1;
    if (n > FERRY_MAX_WORKERS)
        n = FERRY_MAX_WORKERS;
    return (unsigned)n;
}

static void
raise_fd_limit(void)
{
    struct rlimit rl;

    /* Every relayed connection needs 2 sockets and, while busy, 2 pipe fds. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void
set_exe_dir(void)
{
    char    path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

    if (n > 0) {
        path[n] = '\0';
        ferry_plugin_set_exe_dir(dirname(path));
    }
}

static struct ferry_conf *load_checked_with(const char *path, const char *text,
                                            struct ferry_store *store, const struct gen *prev,
                                            struct ferry_policy_set **policies,
                                            struct ferry_errlist *errs);

/* Load and fully validate: every phase reports into errs in one run — the YAML's
 * sections, destinations, then (on what did load) policies and each plugin's options.
 * prev: the running generation on a reload (policies that no longer load fall back on
 * its scripts), else NULL. Returns the conf and the policies its validation generation
 * loaded (NULL when no destination has one), or NULL with the errors in errs. */
static struct ferry_conf *
load_checked(const char *path, const struct gen *prev, struct ferry_policy_set **policies,
             struct ferry_errlist *errs)
{
    return load_checked_with(path, NULL, NULL, prev, policies, errs);
}

/* The same, from text when not NULL (else the file), with a store's destinations when
 * store is not NULL (a conf with `store:` has none of its own). */
static struct ferry_conf *
load_checked_with(const char *path, const char *text, struct ferry_store *store,
                  const struct gen *prev, struct ferry_policy_set **policies,
                  struct ferry_errlist *errs)
{
    struct ferry_conf *conf = NULL;
    struct gen        *g;

    *policies = NULL;
    if (text != NULL)
        ferry_conf_load_string_partial(text, path, &conf, errs);
    else
        ferry_conf_load_file_partial(path, &conf, errs);
    if (conf == NULL)
        return NULL;
    if (store != NULL && conf->store != NULL && ferry_store_registry(store) != NULL)
        ferry_conf_set_registry(conf, ferry_store_registry(store));
    ferry_errlist_print(&conf->warnings, stderr, true);
    /* Validation generation: plugins check their options; nothing binds. */
    if ((g = ferry_gen_new(conf, NULL, prev, 0, errs)) == NULL) {
        if (errs->count == 0)
            ferry_errlist_add(errs, path, 0, 0, "out of memory");
        ferry_conf_free(conf);
        return NULL;
    }
    g->conf = NULL;                 /* keep conf and its policies for the caller */
    *policies = g->policies;
    g->policies = NULL;
    ferry_gen_unref(g, NULL);
    return conf;
}

/* A connector's file has a top-level `gateway:` key; a gateway's never does. */
static bool
is_connector_conf(const char *path)
{
    FILE *fp = fopen(path, "r");
    char  line[256];
    bool  found = false;

    if (fp == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), fp) != NULL)
        found = strncmp(line, "gateway:", 8) == 0;
    fclose(fp);
    return found;
}

static int
cmd_check(const char *path)
{
    struct ferry_errlist     errs = { 0 };
    struct ferry_conf       *conf;
    struct ferry_policy_set *policies;

    if (is_connector_conf(path))
        return ferry_connector_check(path);
    if ((conf = load_checked(path, NULL, &policies, &errs)) == NULL) {
        ferry_errlist_print(&errs, stderr, false);
        return EXIT_CONFIG;
    }
    if (conf->store != NULL)
        printf("%s: ok (%zu listeners, destinations in etcd under %s/, %zu tenants)\n", path,
               conf->nlisteners, conf->store->prefix, conf->ntenants);
    else
        printf("%s: ok (%zu listeners, %zu destinations, %zu tenants)\n", path,
               conf->nlisteners, conf->registry->n, conf->ntenants);
    ferry_policy_set_free(policies);
    ferry_conf_free(conf);
    return 0;
}

/* The configuration's text, kept (a store change loads it again): as long as the file,
 * not the reader's 4 MiB buffer. */
static int
read_text(const char *path, char **out, struct ferry_err *err)
{
    char  *buf = NULL;
    size_t len = 0;

    *out = NULL;
    if (ferry_conf_file_read(path, &buf, &len, err) != FERRY_OK)
        return FERRY_EIO;
    *out = strndup(buf, len);
    free(buf);
    return *out != NULL ? FERRY_OK : ferry_err_set(err, FERRY_ENOMEM, "out of memory");
}

/* Load the configuration from disk and switch to it: SIGHUP and the admin API. Errors go
 * to stderr and to errs; on failure the running configuration stays. */
static int
gateway_reload(struct gateway *gw, const char *by, struct ferry_errlist *errs)
{
    struct ferry_conf       *conf;
    struct ferry_policy_set *policies;
    struct gen              *g, *old;
    char                    *text = NULL;
    struct ferry_err         rerr = { 0 };

    ferry_log(NULL, FERRY_INFO, "reload requested", FLOG_STR("config", gw->conf_path),
              FLOG_STR("by", by));
    if (read_text(gw->conf_path, &text, &rerr) != FERRY_OK) {
        ferry_errlist_add(errs, gw->conf_path, 0, 0, "%s", rerr.msg);
        conf = NULL;
    } else {
        conf = load_checked_with(gw->conf_path, text, gw->store, gw->gen, &policies, errs);
    }
    if (conf != NULL && (conf->store != NULL) != (gw->store != NULL)) {
        ferry_errlist_add(errs, gw->conf_path, 0, 0, "adding or removing `store:` needs a "
                          "restart");
        ferry_policy_set_free(policies);
        ferry_conf_free(conf);
        conf = NULL;
    }
    if (conf == NULL) {
        free(text);
        ferry_errlist_print(errs, stderr, false);
        gw->st.reloads_failed++;
        ferry_log(NULL, FERRY_ERROR, "reload failed: configuration has errors; keeping the "
                  "running one", FLOG_STR("config", gw->conf_path));
        return FERRY_EINVAL;
    }
    if ((g = ferry_gen_new(conf, policies, gw->gen, gw->nworkers, errs)) == NULL) {
        free(text);
        ferry_errlist_print(errs, stderr, false);
        ferry_policy_set_free(policies);
        ferry_conf_free(conf);
        gw->st.reloads_failed++;
        ferry_log(NULL, FERRY_ERROR, "reload failed; keeping the running configuration",
                  FLOG_STR("config", gw->conf_path));
        return FERRY_EINVAL;
    }
    gen_jwt_begin(gw, g);
    if (gw->tunnels != NULL && conf->tunnel.listen != NULL) {
        struct ferry_err err = { 0 };

        if (gw_listener_set_conf(gw->tunnels, conf, &err) != FERRY_OK) {
            ferry_log(NULL, FERRY_ERROR, "reload failed: tunnel TLS settings; keeping the "
                      "running configuration", FLOG_STR("error", err.msg));
            ferry_errlist_add(errs, gw->conf_path, 0, 0, "tunnel: %s", err.msg);
            ferry_gen_unref(g, gw->base);
            free(text);
            gw->st.reloads_failed++;
            return FERRY_EINVAL;
        }
    } else if ((gw->tunnels != NULL) != (conf->tunnel.listen != NULL)) {
        ferry_log(NULL, FERRY_WARN, "adding or removing the tunnel section needs a restart");
    }
    ferry_log_set_level(conf->log_level);
    ferry_log_open_access(conf->access_log);
    ferry_workers_switch(gw->workers, gw->nworkers, g);
    /* Trust and key stores are read again: a renewed certificate counts from now. */
    ferry_tls_cache_flush(gw->tls);
    {
        struct ferry_err err = { 0 };

        if (ferry_tls_cache_load(gw->tls, &(struct ferry_tls_settings){ 0 }, &err) != FERRY_OK)
            ferry_log(NULL, FERRY_WARN, "TLS: the system trust store did not load",
                      FLOG_STR("error", err.msg));
    }
    old = gw->gen;
    gw->gen = g;
    gw->st.generation = g->id;
    gw->st.conf = conf;
    gw->st.gen = g;
    gw->st.reloads_ok++;
    free(gw->conf_text);
    gw->conf_text = text;
    /* New tenants: the store validates its destinations against them again (and may
     * switch once more, from this text). The old conf is still alive to compare with. */
    if (gw->store != NULL)
        ferry_store_set_conf(gw->store, conf);
    ferry_gen_unref(old, gw->base);
    ferry_log(NULL, FERRY_INFO, "reloaded", FLOG_INT("generation", (long long)g->id),
              FLOG_INT("listeners", (long long)conf->nlisteners),
              FLOG_INT("destinations", (long long)conf->registry->n));
    return FERRY_OK;
}

/* The store applied a change (an etcd event, a snapshot): a new generation with the
 * same configuration text and the store's destinations, the way SIGHUP switches, so
 * live connections keep theirs. Before the first generation (start), nothing to do. */
static void
on_store_apply(void *arg, struct ferry_registry *reg)
{
    struct gateway         *gw = arg;
    struct ferry_errlist    errs = { 0 };
    struct ferry_conf      *conf = NULL;
    struct gen             *g, *old;

    if (gw->gen == NULL || gw->draining || gw->conf_text == NULL)
        return;
    if (ferry_conf_load_string(gw->conf_text, gw->conf_path, &conf, &errs) != FERRY_OK) {
        ferry_errlist_print(&errs, stderr, false);
        ferry_log(NULL, FERRY_ERROR, "store: the configuration no longer loads; the change "
                  "waits for a good reload", FLOG_STR("config", gw->conf_path));
        ferry_conf_free(conf);
        return;
    }
    ferry_conf_set_registry(conf, reg);
    if ((g = ferry_gen_new(conf, NULL, gw->gen, gw->nworkers, &errs)) == NULL) {
        ferry_errlist_print(&errs, stderr, false);
        ferry_conf_free(conf);
        gw->st.reloads_failed++;
        ferry_log(NULL, FERRY_ERROR, "store: applying a change failed; keeping the running "
                  "destinations");
        return;
    }
    gen_jwt_begin(gw, g);
    ferry_workers_switch(gw->workers, gw->nworkers, g);
    old = gw->gen;
    gw->gen = g;
    gw->st.generation = g->id;
    gw->st.conf = conf;
    gw->st.gen = g;
    /* Everything that keeps a pointer into the running conf moves to the new one
     * before the old generation (and its conf) can go. */
    gw_listener_use_conf(gw->tunnels, conf);
    ferry_store_set_conf(gw->store, conf);      /* same text, same tenants: no apply */
    ferry_gen_unref(old, gw->base);
    ferry_log(NULL, FERRY_DEBUG, "store: change applied", FLOG_INT("generation", (long long)g->id),
              FLOG_INT("destinations", (long long)conf->registry->n));
}

/* The live replicas changed: connectors hear it through the tunnel listener (the
 * registration reply, and a notice to those registered already). */
static void
on_store_replicas(void *arg, const struct store_replica *r, size_t n)
{
    struct gateway    *gw = arg;
    struct gw_replica *list;

    ferry_log(NULL, FERRY_INFO, "store: live replicas", FLOG_INT("replicas", (long long)n));
    if (gw->tunnels == NULL || gw->store == NULL || gw->draining || n == 0)
        return;
    if ((list = calloc(n, sizeof(*list))) == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        list[i].id = r[i].id;
        list[i].tunnel = r[i].tunnel;
        list[i].slots = r[i].slots;
    }
    gw_listener_set_replicas(gw->tunnels, list, n);
    free(list);
}

static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
    struct gateway      *gw = arg;
    struct ferry_errlist errs = { 0 };

    (void)sig;
    (void)what;
    if (gw->draining)
        return;
    gateway_reload(gw, "SIGHUP", &errs);
}

/* An admin reload waiting until every worker serves generation `id`. Each worker gets a
 * post; it runs before that wake-up's generation switch (worker.c runs posts first), so
 * a post that still sees an older generation posts itself once more. */
struct wait_slot {
    struct reload_wait *rw;
    struct worker      *w;
    unsigned            tries;
};

struct reload_wait {
    struct reload_wait *next;
    struct gateway     *gw;
    uint64_t            id;
    atomic_uint         left;            /* workers still to confirm */
    struct event       *ev;              /* main thread: the last worker activates it */
    void              (*applied)(void *arg);
    void               *arg;
    struct wait_slot    slots[];         /* one per worker */
};

/* Worker thread (or, with run false, the thread stopping the workers). */
static void
wait_on_worker(void *arg, bool run)
{
    struct wait_slot   *s = arg;
    struct reload_wait *rw = s->rw;

    if (run && !s->w->draining && s->w->cur->g->id < rw->id && ++s->tries < 4 &&
        worker_post(s->w, wait_on_worker, s) == FERRY_OK)
        return;
    if (atomic_fetch_sub(&rw->left, 1) == 1)
        event_active(rw->ev, EV_TIMEOUT, 1);
}

static void
wait_unlink_free(struct reload_wait *rw)
{
    for (struct reload_wait **pp = &rw->gw->waits; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == rw) {
            *pp = rw->next;
            break;
        }
    }
    event_free(rw->ev);
    free(rw);
}

static void
on_wait_done(evutil_socket_t fd, short what, void *arg)
{
    struct reload_wait *rw = arg;
    void              (*applied)(void *) = rw->applied;
    void               *applied_arg = rw->arg;

    (void)fd;
    (void)what;
    wait_unlink_free(rw);
    applied(applied_arg);
}

/* After the workers are joined (every post has run): forget what still waits; the
 * admin answers those requests itself when it stops. */
static void
waits_free(struct gateway *gw)
{
    while (gw->waits != NULL)
        wait_unlink_free(gw->waits);
}

/* The admin API's reload (struct ferry_admin_state.reload). */
static int
admin_reload(void *self, struct ferry_errlist *errs, void (*applied)(void *arg), void *arg)
{
    struct gateway     *gw = self;
    struct reload_wait *rw;
    int                 rc;

    if (gw->draining) {
        ferry_errlist_add(errs, NULL, 0, 0, "the gateway is draining");
        return FERRY_EAGAIN;
    }
    /* Allocate first: once the workers switch, the wait must not fail. */
    if ((rw = calloc(1, sizeof(*rw) + gw->nworkers * sizeof(rw->slots[0]))) == NULL ||
        (rw->ev = event_new(gw->base, -1, 0, on_wait_done, rw)) == NULL) {
        free(rw);
        ferry_errlist_add(errs, NULL, 0, 0, "out of memory");
        return FERRY_ENOMEM;
    }
    if ((rc = gateway_reload(gw, "admin API", errs)) != FERRY_OK) {
        event_free(rw->ev);
        free(rw);
        return rc;
    }
    rw->gw = gw;
    rw->id = gw->gen->id;
    rw->applied = applied;
    rw->arg = arg;
    atomic_init(&rw->left, gw->nworkers);
    rw->next = gw->waits;
    gw->waits = rw;
    for (unsigned i = 0; i < gw->nworkers; i++) {
        rw->slots[i].rw = rw;
        rw->slots[i].w = &gw->workers[i];
        if (worker_post(&gw->workers[i], wait_on_worker, &rw->slots[i]) != FERRY_OK)
            wait_on_worker(&rw->slots[i], false);   /* cannot ask it: count it as done */
    }
    return FERRY_OK;
}

static void
on_drain_poll(evutil_socket_t fd, short what, void *arg)
{
    struct gateway *gw = arg;

    (void)fd;
    (void)what;
    if (ferry_workers_active(gw->workers, gw->nworkers) == 0)
        event_base_loopexit(gw->base, NULL);
}

static void
on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct gateway *gw = arg;

    (void)fd;
    (void)what;
    ferry_log(NULL, FERRY_WARN, "drain timeout: closing remaining connections",
              FLOG_INT("active", (long long)ferry_workers_active(gw->workers, gw->nworkers)));
    event_base_loopexit(gw->base, NULL);
}

static void
on_terminate(evutil_socket_t sig, short what, void *arg)
{
    struct gateway *gw = arg;
    struct timeval  poll = { 0, 100000 };
    struct timeval  deadline;
    uint32_t        ms = gw->gen->conf->drain_timeout_ms;

    (void)what;
    if (gw->draining) {             /* a second signal: stop now */
        event_base_loopexit(gw->base, NULL);
        return;
    }
    gw->draining = true;
    gw->st.ready = false;
    ferry_log(NULL, FERRY_INFO, "draining", FLOG_STR("signal", sig == SIGINT ? "INT" : "TERM"),
              FLOG_INT("active", (long long)ferry_workers_active(gw->workers, gw->nworkers)),
              FLOG_INT("drain_timeout_ms", ms));
    gw_listener_drain(gw->tunnels);
    ferry_store_leave(gw->store);
    ferry_workers_drain(gw->workers, gw->nworkers);
    deadline.tv_sec = ms / 1000;
    deadline.tv_usec = (ms % 1000) * 1000;
    gw->drain_poll = event_new(gw->base, -1, EV_PERSIST, on_drain_poll, gw);
    gw->drain_deadline = evtimer_new(gw->base, on_drain_deadline, gw);
    event_add(gw->drain_poll, &poll);
    evtimer_add(gw->drain_deadline, &deadline);
}

static int
cmd_gateway(const char *path)
{
    struct gateway           gw = { 0 };
    struct ferry_errlist     errs = { 0 };
    struct ferry_conf       *conf;
    struct ferry_policy_set *policies;
    struct ferry_err         err = { 0 };
    struct gw_slots          slots;
    struct event            *sig_hup = NULL, *sig_term = NULL, *sig_int = NULL;
    int                      rc = 1;

    gw.conf_path = path;
    gw.st.role = "gateway";
    gw.st.reload = admin_reload;
    gw.st.reload_self = &gw;
    if ((conf = load_checked(path, NULL, &policies, &errs)) == NULL) {
        ferry_errlist_print(&errs, stderr, false);
        return EXIT_CONFIG;
    }
    ferry_log_set_level(conf->log_level);
    if (conf->destinations_dir != NULL) {
        unsigned gone = 0;

        /* A gateway killed in a destination API write leaves its temporary file (the
         * loader skips dot files, but it holds the destination's credentials). */
        if (ferry_conf_dir_sweep_temp(conf->destinations_dir, 60, &gone) == FERRY_OK &&
            gone > 0)
            ferry_log(NULL, FERRY_INFO, "removed temporary files of interrupted destination "
                      "writes", FLOG_STR("dir", conf->destinations_dir), FLOG_INT("files", gone));
    }
    if (ferry_log_open_access(conf->access_log) != FERRY_OK) {
        fprintf(stderr, "%s: cannot open access log %s\n", path, conf->access_log);
        ferry_policy_set_free(policies);
        ferry_conf_free(conf);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    gw.nworkers = count_workers(conf);
    ferry_stats_set_workers(gw.nworkers);   /* before the first generation's slots */
    if ((gw.base = event_base_new()) == NULL ||
        (gw.workers = calloc(gw.nworkers, sizeof(*gw.workers))) == NULL) {
        ferry_policy_set_free(policies);
        ferry_conf_free(conf);
        goto out;
    }
    if (ferry_tls_cache_new(gw.base, FERRY_TLS_CACHE_MAX, &gw.tls) != FERRY_OK) {
        ferry_policy_set_free(policies);
        ferry_conf_free(conf);
        goto out;
    }
    ferry_post_init_base(&gw.home, gw.base);
    /* The main loop's resolver: the store's etcd and tenants' jwks_url. Without one
     * (no resolv.conf), addresses still work. */
    gw.dns = evdns_base_new(gw.base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (conf->store != NULL) {
        /* The store first: a cache gives the first generation its destinations. */
        struct store_self  self = { .tunnel = conf->tunnel.advertise, .slots = gw.nworkers,
                                    .version = FERRY_VERSION };
        struct store_hooks hooks = { .apply = on_store_apply,
                                     .replicas = on_store_replicas, .arg = &gw };

        if (read_text(path, &gw.conf_text, &err) != FERRY_OK || gw.dns == NULL ||
            ferry_store_start(gw.base, gw.dns, gw.tls, conf, &self, &hooks, &gw.store,
                              &err) != FERRY_OK) {
            ferry_log(NULL, FERRY_ERROR, "cannot start the store", FLOG_STR("error", err.msg));
            ferry_policy_set_free(policies);
            ferry_conf_free(conf);
            goto out;
        }
        if (ferry_store_registry(gw.store) != NULL) {
            /* Policies were loaded for the file's (empty) destinations: again, for these. */
            ferry_conf_set_registry(conf, ferry_store_registry(gw.store));
            ferry_policy_set_free(policies);
            policies = NULL;
        }
        gw.st.store = gw.store;
    }
    if ((gw.gen = ferry_gen_new(conf, policies, NULL, gw.nworkers, &errs)) == NULL) {
        ferry_errlist_print(&errs, stderr, false);
        ferry_policy_set_free(policies);
        ferry_conf_free(conf);
        goto out;
    }
    gen_jwt_begin(&gw, gw.gen);
    /* The system store's context serves ferry.http.request and most HTTPS upstreams:
     * build it now rather than on the first request. */
    if (ferry_tls_cache_load(gw.tls, &(struct ferry_tls_settings){ 0 }, &err) != FERRY_OK)
        ferry_log(NULL, FERRY_WARN, "TLS: the system trust store did not load",
                  FLOG_STR("error", err.msg));
    gw.st.nworkers = gw.nworkers;
    gw.st.token_worker = &gw.workers[0];
    gw.st.generation = gw.gen->id;
    gw.st.conf = conf;
    gw.st.gen = gw.gen;
    if (conf->admin_listen != NULL &&
        ferry_admin_start(gw.base, conf->admin_listen, &gw.st, &gw.admin, &err) != FERRY_OK) {
        ferry_log(NULL, FERRY_ERROR, "cannot start admin listener", FLOG_STR("error", err.msg));
        goto out;
    }
    sig_hup = evsignal_new(gw.base, SIGHUP, on_reload, &gw);
    sig_term = evsignal_new(gw.base, SIGTERM, on_terminate, &gw);
    sig_int = evsignal_new(gw.base, SIGINT, on_terminate, &gw);
    event_add(sig_hup, NULL);
    event_add(sig_term, NULL);
    event_add(sig_int, NULL);
    if (ferry_workers_start(gw.workers, gw.nworkers, gw.gen, gw.base, gw.tls,
                            conf->worker_cpu_affinity) != FERRY_OK) {
        ferry_log(NULL, FERRY_ERROR, "cannot start workers");
        goto out;
    }
    slots.n = gw.nworkers;
    slots.at = ferry_worker_gw;
    slots.ctx = gw.workers;
    if (conf->tunnel.listen != NULL &&
        gw_listener_start(gw.base, conf, &slots, &gw.tunnels, &err) != FERRY_OK) {
        ferry_log(NULL, FERRY_ERROR, "cannot start the tunnel listener", FLOG_STR("error", err.msg));
        ferry_workers_stop(gw.workers, gw.nworkers);
        ferry_workers_join(gw.workers, gw.nworkers);
        goto out;
    }
    if (gw.tunnels != NULL && gw.store != NULL) {
        struct store_stats ss;

        ferry_store_stats(gw.store, &ss);
        gw_listener_set_id(gw.tunnels, ss.replica_id);
        ferry_store_replicas_again(gw.store);   /* the list it had before the listener */
    }
    gw.st.ready = true;
    ferry_log(NULL, FERRY_INFO, "ferry gateway started", FLOG_STR("version", FERRY_VERSION),
              FLOG_STR("config", path), FLOG_INT("workers", gw.nworkers),
              FLOG_INT("listeners", (long long)conf->nlisteners),
              FLOG_INT("destinations", (long long)conf->registry->n),
              FLOG_STR("admin", conf->admin_listen), FLOG_STR("tunnel", conf->tunnel.listen));
    event_base_dispatch(gw.base);

    ferry_workers_stop(gw.workers, gw.nworkers);
    ferry_workers_join(gw.workers, gw.nworkers);
    ferry_log(NULL, FERRY_INFO, "ferry gateway stopped");
    rc = 0;
out:
    waits_free(&gw);                /* the workers are joined (or never started) */
    if (gw.gen != NULL)
        ferry_gen_unref(gw.gen, NULL);
    if (gw.drain_poll != NULL)
        event_free(gw.drain_poll);
    if (gw.drain_deadline != NULL)
        event_free(gw.drain_deadline);
    if (sig_hup != NULL)
        event_free(sig_hup);
    if (sig_term != NULL)
        event_free(sig_term);
    if (sig_int != NULL)
        event_free(sig_int);
    ferry_admin_stop(gw.admin);
    /* The store after the admin (which cancels the writes it waits for) and before the
     * tunnel listener its replica list feeds and the TLS cache its https calls use. */
    ferry_store_free(gw.store);
    gw.store = NULL;
    gw_listener_stop(gw.tunnels);
    if (gw.dns != NULL)
        evdns_base_free(gw.dns, 0);
    free(gw.conf_text);
    ferry_tls_cache_free(gw.tls);   /* workers are gone; builds not run yet go with it */
    if (gw.base != NULL) {
        event_base_loop(gw.base, EVLOOP_NONBLOCK);    /* run posted frees */
        event_base_free(gw.base);
    }
    free(gw.workers);
    ferry_plugin_unload_all();
    ferry_stats_free_all();
    tok_cache_free_all();           /* workers are gone: nobody waits on a token */
    ferry_log_close_access();
    return rc;
}

/* ---- the connector process ------------------------------------------------------------ */

struct cmain {
    struct connector         *cn;
    struct ferry_admin_state  st;
    struct event_base        *base;
    struct event             *deadline, *poll;
};

static void
on_connector_drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct cmain *m = arg;

    (void)fd;
    (void)what;
    /* Workers leave their loops when idle; the last one ends the main loop. */
    if (ferry_connector_idle(m->cn))
        event_base_loopexit(m->base, NULL);
}

static void
on_connector_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct cmain *m = arg;

    (void)fd;
    (void)what;
    ferry_log(NULL, FERRY_WARN, "drain timeout: closing remaining streams");
    event_base_loopexit(m->base, NULL);
}

static void
on_connector_signal(evutil_socket_t sig, short what, void *arg)
{
    struct cmain  *m = arg;
    struct timeval poll = { 0, 100000 };
    struct timeval dl;
    uint32_t       ms = ferry_connector_drain_timeout_ms(m->cn);

    (void)what;
    if (ferry_connector_draining(m->cn)) {
        event_base_loopexit(m->base, NULL);
        return;
    }
    ferry_log(NULL, FERRY_INFO, "connector draining", FLOG_STR("signal", sig == SIGINT ? "INT" : "TERM"));
    m->st.ready = false;                /* /readyz: 503 from now on */
    ferry_connector_drain(m->cn);
    dl.tv_sec = ms / 1000;
    dl.tv_usec = (ms % 1000) * 1000;
    m->poll = event_new(m->base, -1, EV_PERSIST, on_connector_drain_check, m);
    m->deadline = evtimer_new(m->base, on_connector_deadline, m);
    event_add(m->poll, &poll);
    evtimer_add(m->deadline, &dl);
}

static void
on_connector_hup(evutil_socket_t sig, short what, void *arg)
{
    struct cmain *m = arg;

    (void)what;
    /* Both signals reopen the audit log (logrotate's postrotate sends either). */
    ferry_connector_reopen_audit(m->cn);
    if (sig != SIGHUP || ferry_connector_draining(m->cn))
        return;
    (void)ferry_connector_reload(m->cn);     /* it logs what happened */
}

/* Run until SIGTERM/SIGINT. Exit code: 0, 1 runtime error, 2 config error. */
static int
cmd_connector(const char *path)
{
    struct cmain        m = { 0 };
    struct ferry_admin *admin = NULL;
    struct ferry_err    err = { 0 };
    struct event       *sig_term = NULL, *sig_int = NULL, *sig_hup = NULL, *sig_usr1 = NULL;
    int                 rc;

    if ((rc = ferry_connector_new(path, &m.cn)) != FERRY_OK)
        return rc == FERRY_EINVAL ? EXIT_CONFIG : 1;
    rc = 1;
    signal(SIGPIPE, SIG_IGN);
    if ((m.base = event_base_new()) == NULL)
        goto out;
    m.st.role = "connector";
    m.st.ready = true;
    m.st.live = ferry_connector_live(m.cn);
    m.st.replicas = ferry_connector_replicas(m.cn);
    ferry_connector_pp_counts(m.cn, &m.st.pp_issued, &m.st.pp_reused, &m.st.pp_refused);
    m.st.nworkers = ferry_connector_workers(m.cn);
    if (ferry_connector_has_audit(m.cn)) {
        m.st.audit_errors = ferry_connector_audit_errors;
        m.st.audit_arg = m.cn;
    }
    if (ferry_connector_admin_listen(m.cn) != NULL &&
        ferry_admin_start(m.base, ferry_connector_admin_listen(m.cn), &m.st, &admin, &err) !=
            FERRY_OK) {
        ferry_log(NULL, FERRY_ERROR, "cannot start admin listener", FLOG_STR("error", err.msg));
        goto out;
    }
    sig_term = evsignal_new(m.base, SIGTERM, on_connector_signal, &m);
    sig_int = evsignal_new(m.base, SIGINT, on_connector_signal, &m);
    sig_hup = evsignal_new(m.base, SIGHUP, on_connector_hup, &m);
    sig_usr1 = evsignal_new(m.base, SIGUSR1, on_connector_hup, &m);
    event_add(sig_term, NULL);
    event_add(sig_int, NULL);
    event_add(sig_hup, NULL);
    event_add(sig_usr1, NULL);
    if (ferry_connector_start(m.cn) != FERRY_OK)
        goto out;
    event_base_dispatch(m.base);
    ferry_connector_stop(m.cn);
    rc = 0;
out:
    ferry_connector_free(m.cn);         /* joins its workers first */
    if (sig_term != NULL)
        event_free(sig_term);
    if (sig_int != NULL)
        event_free(sig_int);
    if (sig_hup != NULL)
        event_free(sig_hup);
    if (sig_usr1 != NULL)
        event_free(sig_usr1);
    if (m.poll != NULL)
        event_free(m.poll);
    if (m.deadline != NULL)
        event_free(m.deadline);
    ferry_admin_stop(admin);
    if (m.base != NULL)
        event_base_free(m.base);
    ferry_stats_free_all();
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "verify-audit", required_argument, NULL, 'A' },
        { "response", required_argument, NULL, 'R' },
        { "user", required_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "gateway";
    const char *path = NULL;
    const char *audit = NULL;
    const char *response = NULL;
    const char *user = NULL;
    int         opt;

    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        argv++;
        argc--;
    }
    /* Its own options (--dry-run, --k8s-services, ...): it parses them itself. */
    if (strcmp(cmd, "store") == 0) {
        evthread_use_pthreads();
        return ferry_store_cli_main(argc, argv);
    }
    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("ferry %s\n", FERRY_VERSION);
            return 0;
        case 'A':
            audit = optarg;
            break;
        case 'R':
            response = optarg;
            break;
        case 'U':
            user = optarg;
            break;
        default:
            usage(stderr);
            return EXIT_CONFIG;
        }
    }
    if (strcmp(cmd, "policy") == 0)
        return ferry_policy_test_main(path != NULL ? path : "conf/ferry.yaml", response,
                                      user, argc - optind, argv + optind);
    if (response != NULL || user != NULL) {
        fprintf(stderr, "ferry: --%s is an option of `ferry policy test`\n",
                response != NULL ? "response" : "user");
        usage(stderr);
        return EXIT_CONFIG;
    }
    /* --verify-audit OLDEST ... NEWEST: the files of a rotated log, one chain. */
    if (audit != NULL && strcmp(cmd, "connector") == 0) {
        const char **files = calloc((size_t)(argc - optind) + 1, sizeof(*files));
        int          vrc;

        if (files == NULL)
            return 2;
        files[0] = audit;
        for (int i = optind; i < argc; i++)
            files[i - optind + 1] = argv[i];
        vrc = ferry_connector_verify_audit(files, argc - optind + 1);
        free(files);
        return vrc;
    }
    if (optind < argc) {
        fprintf(stderr, "ferry: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_CONFIG;
    }
    if (path == NULL)
        path = strcmp(cmd, "connector") == 0 ? "conf/connector.yaml" : "conf/ferry.yaml";
    set_exe_dir();
    evthread_use_pthreads();
    if (strcmp(cmd, "gateway") == 0)
        return cmd_gateway(path);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(path);
    if (strcmp(cmd, "connector") == 0)
        return cmd_connector(path);
    fprintf(stderr, "ferry: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_CONFIG;
}
