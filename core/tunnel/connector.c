/*
 * connector.c: the connector: its workers and their links to gateways, started,
 * drained and stopped by main (which owns the process: signals, the admin listener).
 * Streams to internal hosts (access control, audit) are cstream.c's.
 *
 * A link is one tunnel slot to one gateway: dial, TLS (the gateway's certificate is
 * checked against `ca` and the dialed name), registration, then an HTTP/2 server
 * session (session.c). A lost link comes back with jittered exponential backoff.
 * Slot 0 learns the gateway's slot count; slot s lives on worker s % workers.
 *
 * Replicas: the configured gateways are where the connector starts. A gateway with a
 * store names itself in its reply and lists the live replicas, there and later in
 * notices (replicas.h). Every listed replica that no configured gateway reaches gets a
 * link set of its own at its advertised address; one that leaves the list loses it
 * (GOAWAY: its streams finish, other replicas' streams never notice). Without a list
 * nothing of this happens: the configured gateways, as before.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <ferry/log.h>

#include "conf/connector-conf.h"
#include "log/log.h"
#include "route/dial.h"
#include "stats/stats.h"
#include "tls/tls.h"
#include "tunnel/audit.h"
#include "tunnel/connector-int.h"
#include "tunnel/connector.h"
#include "tunnel/session.h"
#include "util/ncpu.h"

static void link_start(evutil_socket_t fd, short what, void *arg);
static void link_step(struct link *l);
static void wake_all(struct connector *cn);

static struct target *
link_target(const struct link *l)
{
    return &l->w->cn->targets[l->gw];
}

/* ---- links to gateways ------------------------------------------------------------------ */

static void
link_close_transport(struct link *l)
{
    if (l->dial != NULL)
        dial_abort(&l->dial);
    if (l->ev_added) {
        event_del(&l->ev);
        l->ev_added = false;
    }
    if (l->ssl != NULL) {
        SSL_free(l->ssl);
        l->ssl = NULL;
    }
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    free(l->buf);
    l->buf = NULL;
}

/* Jittered exponential backoff: a fleet of connectors does not reconnect in step. */
static void
link_retry(struct link *l, const char *why)
{
    struct connector *cn = l->w->cn;
    uint32_t          cap = cn->conf->reconnect_max_ms;
    uint32_t          delay;
    uint32_t          r = 0;
    struct timeval    tv;

    link_close_transport(l);
    if (atomic_load(&cn->draining) || l->st == L_STOPPED) {
        l->st = L_STOPPED;
        return;
    }
    l->backoff_ms = l->backoff_ms == 0 ? BACKOFF_FIRST_MS : l->backoff_ms * 2;
    if (l->backoff_ms > cap)
        l->backoff_ms = cap;
    RAND_bytes((unsigned char *)&r, sizeof(r));
    delay = l->backoff_ms / 2 + (l->backoff_ms > 1 ? r % (l->backoff_ms / 2) : 0);
    ferry_log(NULL, l->warned ? FERRY_DEBUG : FERRY_WARN, "gateway link down, retrying",
              FLOG_STR("gateway", link_target(l)->text), FLOG_INT("slot", l->slot),
              FLOG_STR("reason", why), FLOG_INT("retry_ms", delay));
    l->warned = true;
    l->st = L_WAIT;
    tv.tv_sec = delay / 1000;
    tv.tv_usec = (delay % 1000) * 1000;
    evtimer_add(&l->timer, &tv);
}

static void
on_link_event(evutil_socket_t fd, short what, void *arg)
{
    struct link *l = arg;

    (void)fd;
    if (l->dial != NULL) {
        dial_event(&l->dial, what);
        return;
    }
    if (what & EV_TIMEOUT) {
        link_retry(l, "registration timed out");
        return;
    }
    link_step(l);
}

static void
link_watch(void *owner, int fd, uint32_t timeout_ms)
{
    struct link   *l = owner;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

    if (l->ev_added)
        event_del(&l->ev);
    event_assign(&l->ev, l->w->base, fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST, on_link_event, l);
    l->ev_added = event_add(&l->ev, &tv) == 0;
}

static void
link_unwatch(void *owner)
{
    struct link *l = owner;

    if (l->ev_added) {
        event_del(&l->ev);
        l->ev_added = false;
    }
}

static char *
hello_json(struct link *l)
{
    struct connector *cn = l->w->cn;
    json_t           *o = json_object();
    json_error_t      jerr;
    char             *text;

    json_object_set_new(o, "tenant", json_string(cn->conf->tenant));
    json_object_set_new(o, "token", json_string(cn->conf->token));
    json_object_set_new(o, "location", json_string(cn->conf->location_id));
    json_object_set_new(o, "version", json_string(FERRY_VERSION));
    json_object_set_new(o, "connector", json_string(cn->id));
    json_object_set_new(o, "slot", json_integer(l->slot));
    json_object_set_new(o, "systems", json_loads(l->w->gen->systems_json, 0, &jerr));
    /* This connector follows replica lists: the gateway may list them in its reply
     * and push changes (an older connector is sent neither). */
    json_object_set_new(o, "replicas", json_true());
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void
link_dial_done(void *owner, int fd, int status, const char *reason)
{
    struct link      *l = owner;
    struct connector *cn = l->w->cn;
    char             *text;
    size_t            n;

    (void)status;
    if (fd < 0) {
        link_retry(l, reason);
        return;
    }
    l->fd = fd;
    if ((l->ssl = tls_client_ssl(cn->ctx, fd, link_target(l)->verify)) == NULL ||
        (text = hello_json(l)) == NULL) {
        link_retry(l, "out of memory");
        return;
    }
    n = strlen(text);
    l->cap = n + 4 > REPLY_FIRST_BYTES + 4 ? n + 4 : REPLY_FIRST_BYTES + 4;
    if ((l->buf = malloc(l->cap)) == NULL) {
        OPENSSL_cleanse(text, n);
        free(text);
        link_retry(l, "out of memory");
        return;
    }
    l->buf[0] = (uint8_t)(n >> 24);
    l->buf[1] = (uint8_t)(n >> 16);
    l->buf[2] = (uint8_t)(n >> 8);
    l->buf[3] = (uint8_t)n;
    memcpy(l->buf + 4, text, n);
    OPENSSL_cleanse(text, n);           /* it holds the token */
    free(text);
    l->len = n + 4;
    l->off = 0;
    l->st = L_TLS;
    link_watch(l, fd, REGISTER_TIMEOUT_MS);
    link_step(l);
}

static const struct dial_ops link_dial_ops = {
    .watch = link_watch, .unwatch = link_unwatch, .done = link_dial_done,
};

static void cn_on_tunnel_close(struct tunnel *t, const char *reason);
static void link_retire(struct link *l);
static int  cn_on_notice(struct tunnel *t, const char *path, const char *value, size_t len,
                         bool too_big, const char **error);

static const struct tunnel_ops cn_ops = {
    .on_request      = cn_on_request,
    .on_stream_end   = cn_on_stream_end,
    .on_bytes        = cn_on_bytes,
    .on_tunnel_close = cn_on_tunnel_close,
    .on_notice       = cn_on_notice,
};

/* ---- replicas ------------------------------------------------------------------------------ */

/* A free entry for a discovered replica (under cn->mu), or NULL when all are taken. */
static struct target *
target_free_entry(struct connector *cn)
{
    for (size_t i = cn->conf->ngateways; i < MAX_TARGETS; i++) {
        struct target *t = &cn->targets[i];

        if (!t->active && atomic_load(&t->nlinks) == 0)
            return t;
    }
    return NULL;
}

/* The latest list wins, whichever replica sent it: all read the same store. Called on
 * the worker that received it; the lock orders it against the others. */
static void
replicas_apply(struct connector *cn, const struct replica_list *list, const char *verify)
{
    struct recon_cfg cfg[MAX_GATEWAYS];
    struct replica  *have = NULL;
    unsigned        *where = NULL;
    bool            *keep = NULL;
    size_t          *add = NULL;
    struct recon     r = { 0 };
    bool             changed = false;

    if ((have = calloc(MAX_TARGETS, sizeof(*have))) == NULL ||
        (where = calloc(MAX_TARGETS, sizeof(*where))) == NULL ||
        (keep = calloc(MAX_TARGETS, sizeof(*keep))) == NULL ||
        (add = calloc(list->n + 1, sizeof(*add))) == NULL) {
        ferry_log(NULL, FERRY_ERROR, "cannot apply the gateway replica list: out of memory");
        goto out;
    }
    pthread_mutex_lock(&cn->mu);
    for (size_t i = 0; i < cn->conf->ngateways && i < MAX_GATEWAYS; i++) {
        struct target *t = &cn->targets[i];
        bool           listed = t->id[0] == '\0';

        for (size_t j = 0; !listed && j < list->n; j++)
            listed = strcmp(list->r[j].id, t->id) == 0;
        /* Its lease expired: the configured address stays (it is where the connector
         * starts, maybe a balancer), but it no longer stands for that replica. */
        if (!listed) {
            ferry_log(NULL, FERRY_INFO, "gateway replica dropped", FLOG_STR("replica", t->id),
                      FLOG_STR("gateway", t->text), FLOG_STR("note", "configured: still dialed"));
            t->id[0] = '\0';
        }
        cfg[i] = (struct recon_cfg){ t->id[0] != '\0' ? t->id : NULL, t->host, t->port };
    }
    for (size_t i = cn->conf->ngateways; i < MAX_TARGETS; i++) {
        struct target *t = &cn->targets[i];

        if (!t->active)
            continue;
        memcpy(have[r.nhave].id, t->id, sizeof(t->id));
        memcpy(have[r.nhave].host, t->host, sizeof(t->host));
        have[r.nhave].port = t->port;
        where[r.nhave++] = (unsigned)i;
    }
    r.cfg = cfg;
    r.ncfg = cn->conf->ngateways < MAX_GATEWAYS ? cn->conf->ngateways : MAX_GATEWAYS;
    r.have = have;
    r.want = list->r;
    r.nwant = list->n;
    r.keep = keep;
    r.add = add;
    replicas_reconcile(&r);
    for (size_t i = 0; i < r.nhave; i++) {
        struct target *t = &cn->targets[where[i]];

        if (keep[i])
            continue;
        t->active = false;              /* workers retire its links on the wake below */
        changed = true;
        ferry_log(NULL, FERRY_INFO, "gateway replica dropped", FLOG_STR("replica", t->id),
                  FLOG_STR("gateway", t->text));
    }
    for (size_t k = 0; k < r.nadd; k++) {
        const struct replica *w = &list->r[add[k]];
        struct target        *t = target_free_entry(cn);

        if (t == NULL) {
            ferry_log(NULL, FERRY_WARN, "gateway replica not dialed: too many replicas",
                      FLOG_STR("replica", w->id), FLOG_STR("gateway", w->tunnel));
            continue;
        }
        snprintf(t->text, sizeof(t->text), "%s", w->tunnel);
        memcpy(t->host, w->host, sizeof(t->host));
        snprintf(t->verify, sizeof(t->verify), "%s", verify);
        t->port = w->port;
        memcpy(t->id, w->id, sizeof(t->id));
        t->gen++;
        atomic_store(&t->slots, 1);     /* slot 0 first; it learns the rest */
        t->active = true;
        changed = true;
        ferry_log(NULL, FERRY_INFO, "gateway replica added", FLOG_STR("replica", w->id),
                  FLOG_STR("gateway", w->tunnel));
    }
    atomic_store(&cn->replicas, (int)list->n);
    pthread_mutex_unlock(&cn->mu);
    if (changed)
        wake_all(cn);                   /* each worker makes or retires its share */
out:
    free(have);
    free(where);
    free(keep);
    free(add);
}

/* A reply (or notice) named the replica that answered, and may carry a list (NULL:
 * none yet, the gateway's store has not answered it). A configured gateway is the
 * replica its slot 0 reached; with a list, another slot that reached a different one
 * (a balancer spreads connections) or a discovered address that reached another
 * replica is redialed: the list gives that one its own link set. false: this link
 * must not stay. */
static bool
replicas_learn(struct link *l, const char *sender, const struct replica_list *list)
{
    struct connector *cn = l->w->cn;
    struct target    *t = link_target(l);
    bool              ok = true;
    char              verify[FERRY_CONF_HOST_MAX];

    pthread_mutex_lock(&cn->mu);
    snprintf(verify, sizeof(verify), "%s", t->verify);
    if (sender[0] != '\0' && t->configured && l->slot == 0 && strcmp(t->id, sender) != 0) {
        ferry_log(NULL, FERRY_INFO, "gateway answered as replica", FLOG_STR("gateway", t->text),
                  FLOG_STR("replica", sender));
        snprintf(t->id, sizeof(t->id), "%s", sender);
    } else if (list != NULL && sender[0] != '\0' && t->id[0] != '\0' &&
               strcmp(t->id, sender) != 0) {
        ok = false;
    }
    pthread_mutex_unlock(&cn->mu);
    if (list != NULL)
        replicas_apply(cn, list, verify);
    return ok;
}

/* Every reply and notice carries the list: a bad entry (a replica advertising a
 * wildcard) is worth one warning per change of the count, not one per tunnel. */
static void
list_skipped(struct link *l, unsigned skipped, const char *why)
{
    struct connector *cn = l->w->cn;
    bool              news = atomic_exchange(&cn->skipped, skipped) != skipped;

    if (skipped > 0)
        ferry_log(NULL, news ? FERRY_WARN : FERRY_DEBUG, "gateway replica list: entries left out",
                  FLOG_STR("gateway", link_target(l)->text), FLOG_INT("skipped", skipped),
                  FLOG_STR("reason", why));
}

/* Connector side of a notice (session.h): POST /.ferry/replicas from a gateway. */
static int
cn_on_notice(struct tunnel *t, const char *path, const char *value, size_t len, bool too_big,
             const char **error)
{
    struct link        *l = tunnel_owner(t);
    struct replica_list list;
    char                sender[REPLICA_ID_MAX + 1];
    unsigned            skipped = 0;
    const char         *why = NULL;
    int                 rc;

    if (strcmp(path, REPLICAS_PATH) != 0) {
        *error = "unknown-notice";
        return 404;
    }
    rc = too_big ? FERRY_ELIMIT : replicas_parse(value, len, sender, &list, &skipped, &why);
    if (rc != FERRY_OK) {
        ferry_log(NULL, FERRY_WARN, "bad replica list from gateway",
                  FLOG_STR("gateway", link_target(l)->text),
                  FLOG_STR("reason", why != NULL ? why : "no replicas"));
        *error = "bad-replica-list";
        return 400;
    }
    list_skipped(l, skipped, why);
    /* The link is up already: a mismatch here only means the list is ahead of it. */
    (void)replicas_learn(l, sender, &list);
    replicas_list_free(&list);
    return 204;
}

/* The reply's replica part. false: the link reached another replica than the one it
 * stands for, and must be redialed. */
static bool
link_reply_replicas(struct link *l)
{
    struct replica_list list;
    char                sender[REPLICA_ID_MAX + 1];
    unsigned            skipped = 0;
    const char         *why = NULL;
    bool                ok;
    int                 rc;

    rc = replicas_parse((const char *)l->buf + 4, l->len - 4, sender, &list, &skipped, &why);
    if (rc == FERRY_ENOTFOUND)          /* no list: no store (then no id either), or */
        return replicas_learn(l, sender, NULL);     /* its store has not answered yet */
    if (rc != FERRY_OK) {
        ferry_log(NULL, FERRY_WARN, "bad replica list from gateway",
                  FLOG_STR("gateway", link_target(l)->text), FLOG_STR("reason", why));
        return true;                    /* the tunnel itself is fine */
    }
    list_skipped(l, skipped, why);
    ok = replicas_learn(l, sender, &list);
    replicas_list_free(&list);
    return ok;
}

static void
link_free(struct link *l)
{
    struct link **pp;

    for (pp = &l->w->links; *pp != NULL && *pp != l; pp = &(*pp)->next)
        ;
    if (*pp == l)
        *pp = l->next;
    evtimer_del(&l->timer);
    link_close_transport(l);
    atomic_fetch_sub(&link_target(l)->nlinks, 1);
    free(l);
}

static void
link_registered(struct link *l, json_t *reply)
{
    struct connector    *cn = l->w->cn;
    struct tunnel_params p = { cn->conf->keepalive_ms, cn->conf->dead_peer_timeout_ms };
    json_t              *slots = json_object_get(reply, "slots");
    unsigned             n = json_is_integer(slots) ? (unsigned)json_integer_value(slots) : 1;
    const char          *cipher;

    if (n < 1)
        n = 1;
    if (n > MAX_SLOTS)
        n = MAX_SLOTS;
    if (atomic_exchange(&link_target(l)->slots, n) != n)
        wake_all(cn);                   /* workers create the links for new slots */
    link_unwatch(l);
    free(l->buf);
    l->buf = NULL;
    cipher = SSL_get_cipher_name(l->ssl);   /* static text: outlives the SSL object */
    l->t = tunnel_new(l->w->base, TUNNEL_CONNECTOR, l->fd, l->ssl, &cn_ops, &p, l);
    l->fd = -1;                         /* the tunnel owns them now (even on failure) */
    l->ssl = NULL;
    if (l->t == NULL) {
        link_retry(l, "cannot start the HTTP/2 session");
        return;
    }
    l->st = L_UP;
    l->backoff_ms = 0;
    l->warned = false;
    atomic_fetch_add(&cn->live, 1);
    atomic_fetch_add(&cn->stats->tunnels, 1);
    ferry_log(NULL, FERRY_INFO, "tunnel up", FLOG_STR("gateway", link_target(l)->text),
              FLOG_INT("slot", l->slot), FLOG_STR("tenant", cn->conf->tenant),
              FLOG_STR("location", cn->conf->location_id), FLOG_STR("cipher", cipher));
    /* It registered the systems as they are now: the links it replaces get GOAWAY, so
     * the gateway opens new streams here and theirs finish there. */
    for (struct link *o = l->w->links, *next; o != NULL; o = next) {
        next = o->next;                 /* a retired link may be freed at once */
        if (o != l && o->superseded && !o->retired && o->gw == l->gw && o->slot == l->slot)
            link_retire(o);
    }
}

static void
cn_on_tunnel_close(struct tunnel *t, const char *reason)
{
    struct link      *l = tunnel_owner(t);
    struct connector *cn = l->w->cn;

    l->t = NULL;
    atomic_fetch_sub(&cn->live, 1);
    atomic_fetch_sub(&cn->stats->tunnels, 1);
    ferry_log(NULL, FERRY_INFO, "tunnel down", FLOG_STR("gateway", link_target(l)->text),
              FLOG_INT("slot", l->slot), FLOG_STR("reason", reason));
    if (l->retired || l->superseded) {  /* its replica left the list, or a reload made a
                                           new link for its slot: no redial */
        struct cworker *w = l->w;

        link_free(l);
        if (atomic_load(&cn->draining) && w->nstreams == 0)
            event_base_loopexit(w->base, NULL);
        return;
    }
    if (atomic_load(&cn->draining)) {
        l->st = L_STOPPED;
        if (l->w->nstreams == 0)
            event_base_loopexit(l->w->base, NULL);
        return;
    }
    l->backoff_ms = 0;                  /* first retry soon: the gateway may be restarting */
    l->warned = false;
    link_retry(l, reason);
}

static void
link_step(struct link *l)
{
    struct connector *cn = l->w->cn;
    char              msg[256];
    int               r = 1;

    for (;;) {
        size_t n = 0;

        ERR_clear_error();
        if (l->st == L_TLS) {
            if ((r = SSL_connect(l->ssl)) == 1) {
                l->st = L_HELLO_OUT;
                continue;
            }
        } else if (l->st == L_HELLO_OUT) {
            if (l->off == l->len) {
                OPENSSL_cleanse(l->buf, l->len);
                l->st = L_HELLO_IN;
                l->off = 0;
                l->len = 4;
                continue;
            }
            if ((r = SSL_write_ex(l->ssl, l->buf + l->off, l->len - l->off, &n)) == 1) {
                l->off += n;
                continue;
            }
        } else if (l->st == L_HELLO_IN) {
            if (l->off == l->len && l->len == 4) {
                size_t want = ((size_t)l->buf[0] << 24) | ((size_t)l->buf[1] << 16) |
                              ((size_t)l->buf[2] << 8) | l->buf[3];

                if (want == 0 || want > REPLY_MAX_BYTES) {
                    link_retry(l, "bad registration reply");
                    return;
                }
                if (4 + want > l->cap) {        /* a replica list came with it */
                    uint8_t *bigger = realloc(l->buf, 4 + want);

                    if (bigger == NULL) {
                        link_retry(l, "out of memory");
                        return;
                    }
                    l->buf = bigger;
                    l->cap = 4 + want;
                }
                l->len = 4 + want;
                continue;
            }
            if (l->off == l->len) {
                json_t *o = json_loadb((const char *)l->buf + 4, l->len - 4, 0, NULL);
                json_t *ok = json_object_get(o, "ok");
                json_t *err = json_object_get(o, "error");

                if (json_is_true(ok) && !link_reply_replicas(l)) {
                    link_retry(l, "reached another gateway replica than the one listed here");
                } else if (json_is_true(ok)) {
                    link_registered(l, o);
                } else {
                    const char *why = json_is_string(err) ? json_string_value(err) : "refused";

                    ferry_log(NULL, FERRY_ERROR, "gateway refused registration",
                              FLOG_STR("gateway", link_target(l)->text),
                              FLOG_INT("slot", l->slot), FLOG_STR("tenant", cn->conf->tenant),
                              FLOG_STR("reason", why));
                    l->warned = true;
                    if (strcmp(why, "slot out of range") == 0) {
                        link_close_transport(l);
                        l->st = L_STOPPED;      /* the gateway has fewer workers now */
                    } else {
                        link_retry(l, why);
                    }
                }
                json_decref(o);
                return;
            }
            if ((r = SSL_read_ex(l->ssl, l->buf + l->off, l->len - l->off, &n)) == 1) {
                l->off += n;
                continue;
            }
        } else {
            return;
        }
        switch (SSL_get_error(l->ssl, r)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            return;
        default: {
            long vr = SSL_get_verify_result(l->ssl);

            if (vr != X509_V_OK)
                snprintf(msg, sizeof(msg), "gateway certificate not trusted: %s",
                         X509_verify_cert_error_string(vr));
            else
                tls_error_text(msg, sizeof(msg));
            l->warned = false;          /* always say why TLS failed */
            link_retry(l, msg);
            return;
        }
        }
    }
}

static void
link_start(evutil_socket_t fd, short what, void *arg)
{
    struct link      *l = arg;
    struct connector *cn = l->w->cn;
    struct target    *g = link_target(l);

    (void)fd;
    (void)what;
    if (atomic_load(&cn->draining))
        return;
    l->st = L_DIAL;
    if (dial_begin(&l->dial, l->w->base, l->w->dns, &link_dial_ops, l, g->host, g->port,
                   5000) != FERRY_OK)
        link_retry(l, "out of memory");
}

/* A link whose replica left the list (or whose entry now stands for another): GOAWAY
 * when up, so its streams finish and it is freed when the tunnel closes; else now. */
static void
link_retire(struct link *l)
{
    if (l->retired)
        return;
    l->retired = true;
    if (l->t != NULL)
        tunnel_shutdown(l->t);          /* may close, and free l, at once */
    else
        link_free(l);
}

static void
worker_sync_links(struct cworker *w)
{
    struct connector *cn = w->cn;
    struct link      *l, *next;

    /* Decided under the lock, retired after it: a tunnel's GOAWAY runs its I/O, and a
     * notice read there takes the lock again (replicas_learn). */
    pthread_mutex_lock(&cn->mu);
    for (l = w->links; l != NULL; l = l->next) {
        const struct target *t = link_target(l);

        l->doomed = !t->configured && (!t->active || t->gen != l->gen);
    }
    for (unsigned g = 0; g < MAX_TARGETS; g++) {
        unsigned n;

        if (!cn->targets[g].configured && !cn->targets[g].active)
            continue;
        n = atomic_load(&cn->targets[g].slots);

        for (unsigned s = 0; s < n; s++) {
            struct timeval now = { 0, 0 };

            if (s % cn->nworkers != w->id)
                continue;
            for (l = w->links; l != NULL; l = l->next)
                if (l->gw == g && l->slot == s && !l->retired && !l->doomed &&
                    !l->superseded)
                    break;
            if (l != NULL) {
                if (l->st == L_STOPPED && !atomic_load(&cn->draining)) {
                    l->st = L_WAIT;     /* the gateway grew again */
                    evtimer_add(&l->timer, &now);
                }
                continue;
            }
            if ((l = calloc(1, sizeof(*l))) == NULL)
                continue;
            l->w = w;
            l->gw = g;
            l->gen = cn->targets[g].gen;
            l->slot = s;
            l->fd = -1;
            l->st = L_WAIT;
            atomic_fetch_add(&cn->targets[g].nlinks, 1);
            evtimer_assign(&l->timer, w->base, link_start, l);
            l->next = w->links;
            w->links = l;
            evtimer_add(&l->timer, &now);
        }
    }
    pthread_mutex_unlock(&cn->mu);
    for (l = w->links; l != NULL; l = next) {
        next = l->next;                 /* a retired link may be freed at once */
        if (l->doomed)
            link_retire(l);
    }
}

/* ---- workers ------------------------------------------------------------------------------ */

static void
cworker_wake(struct cworker *w)
{
    uint64_t one = 1;

    if (write(w->cmd_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        ferry_log(NULL, FERRY_ERROR, "cannot wake worker", FLOG_INT("worker", w->id));
}

static void
wake_all(struct connector *cn)
{
    for (unsigned i = 0; i < cn->nworkers; i++)
        cworker_wake(&cn->ws[i]);
}

/* A reload made a new generation: new streams use it from now on. When its systems
 * differ, every gateway must hear of them, and the names travel in the registration:
 * each tunnel that is up gets a successor link (made by worker_sync_links) and is
 * retired once that one is up, so no stream is dropped; a link still registering
 * starts over with the new names; one waiting to dial sends them anyway. */
static void
worker_sync_gen(struct cworker *w)
{
    struct connector *cn = w->cn;
    struct cgen      *old = w->gen, *g = NULL;
    bool              announce;

    pthread_mutex_lock(&cn->mu);
    if (cn->cur != w->gen)
        g = cgen_ref(cn->cur);
    pthread_mutex_unlock(&cn->mu);
    if (g == NULL)
        return;
    w->gen = g;
    announce = strcmp(old->systems_json, g->systems_json) != 0;
    /* A new issuer (or none): its own cache. Out of memory: none, so principal
     * propagation streams are refused until the next reload, not signed twice. */
    if (cpp_worker_regen(w) != FERRY_OK) {
        ferry_tls_usercache_free(w->pp_cache);
        w->pp_cache = NULL;
        ferry_log(NULL, FERRY_ERROR, "connector reload: no memory for the user certificate "
                  "cache", FLOG_INT("worker", w->id));
    }
    cgen_unref(old);                    /* after the cache made for its issuer */
    if (!announce)
        return;
    for (struct link *l = w->links; l != NULL; l = l->next) {
        struct timeval now = { 0, 0 };

        if (l->retired || l->superseded)
            continue;
        if (l->t != NULL) {
            l->superseded = true;
        } else if (l->st == L_TLS || l->st == L_HELLO_OUT || l->st == L_HELLO_IN) {
            link_close_transport(l);    /* its hello has the old names */
            l->st = L_WAIT;
            evtimer_add(&l->timer, &now);
        }
    }
}

static void
on_cworker_cmd(evutil_socket_t fd, short what, void *arg)
{
    struct cworker   *w = arg;
    struct connector *cn = w->cn;
    uint64_t          junk;

    (void)what;
    if (read(fd, &junk, sizeof(junk)) < 0 && errno != EAGAIN)
        return;
    if (atomic_load(&cn->stopping)) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    if (atomic_load(&cn->draining) && !w->draining) {
        struct link *next;

        w->draining = true;
        /* next first: a retired link's tunnel may close, and free it, at once. */
        for (struct link *l = w->links; l != NULL; l = next) {
            next = l->next;
            evtimer_del(&l->timer);
            if (l->t != NULL)
                tunnel_shutdown(l->t);      /* GOAWAY: no new streams, finish the rest */
            else {
                link_close_transport(l);
                l->st = L_STOPPED;
            }
        }
        if (w->nstreams == 0)
            event_base_loopexit(w->base, NULL);
        return;
    }
    worker_sync_gen(w);
    worker_sync_links(w);
}

static void *
cworker_main(void *arg)
{
    struct cworker *w = arg;

    event_base_dispatch(w->base);
    /* Stopping: close what is left. A retired link is freed by its tunnel's close. */
    for (struct link *l = w->links, *next; l != NULL; l = next) {
        bool gone = (l->retired || l->superseded) && l->t != NULL;

        next = l->next;
        evtimer_del(&l->timer);
        l->st = L_STOPPED;
        if (l->t != NULL)
            tunnel_close(l->t, "connector stopping");
        if (!gone)
            link_close_transport(l);
    }
    return NULL;
}

static int
cworker_init(struct cworker *w, unsigned id, struct connector *cn)
{
    struct event_config *cfg = event_config_new();

    w->id = id;
    w->cn = cn;
    w->cmd_fd = -1;
    w->pp_fd = -1;
    pthread_mutex_lock(&cn->mu);
    w->gen = cgen_ref(cn->cur);
    pthread_mutex_unlock(&cn->mu);
    if (cfg == NULL)
        return FERRY_ENOMEM;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (w->base == NULL || (w->cmd_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return FERRY_ENOMEM;
    if ((w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL &&
        (w->dns = evdns_base_new(w->base, 0)) == NULL)
        return FERRY_ENOMEM;
    evdns_base_load_hosts(w->dns, NULL);
    event_assign(&w->cmd_ev, w->base, w->cmd_fd, EV_READ | EV_PERSIST, on_cworker_cmd, w);
    event_add(&w->cmd_ev, NULL);
    if (cpp_worker_init(w) != FERRY_OK)
        return FERRY_ENOMEM;
    worker_sync_links(w);
    return FERRY_OK;
}

static void
cworker_fini(struct cworker *w)
{
    while (w->links != NULL) {
        struct link *l = w->links;

        w->links = l->next;
        evtimer_del(&l->timer);
        link_close_transport(l);
        atomic_fetch_sub(&w->cn->targets[l->gw].nlinks, 1);
        free(l);
    }
    cpp_worker_fini(w);
    if (w->dns != NULL)
        evdns_base_free(w->dns, 1);
    if (w->base != NULL) {
        event_del(&w->cmd_ev);
        event_base_free(w->base);
    }
    if (w->cmd_fd >= 0)
        close(w->cmd_fd);
    if (w->gen != NULL)
        cgen_unref(w->gen);
    w->gen = NULL;
}

/* ---- the connector as a whole (main drives it: signals, admin) -------------------------- */

static char *
systems_json(const struct ferry_connector_conf *conf)
{
    json_t *a = json_array();
    char   *text, name[300];

    for (size_t i = 0; i < conf->nsystems; i++) {
        const struct ferry_conf_system *s = &conf->systems[i];

        /* Virtual names only: the internal address never leaves the connector. */
        snprintf(name, sizeof(name), strchr(s->virtual_host, ':') ? "[%s]:%u" : "%s:%u",
                 s->virtual_host, s->virtual_port);
        json_array_append_new(a, json_string(name));
    }
    text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

struct cgen *
cgen_ref(struct cgen *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    return g;
}

void
cgen_unref(struct cgen *g)
{
    if (g == NULL || atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; g->sys_ctx != NULL && i < g->conf->nsystems; i++)
        SSL_CTX_free(g->sys_ctx[i]);
    free(g->sys_ctx);
    free(g->systems_json);
    ferry_tls_issuer_free(g->pp);       /* every cache made for it went before g */
    ferry_connector_conf_free(g->conf);
    free(g);
}

/* A generation of conf (taken: freed with it, or here on failure). Main thread: the
 * internal hosts' CA files and the principal propagation CA are read here. NULL with
 * err set to a whole message (the file named). */
static struct cgen *
cgen_new(struct ferry_connector_conf *conf, unsigned id, struct ferry_err *err)
{
    struct cgen *g = calloc(1, sizeof(*g));

    if (g == NULL) {
        ferry_connector_conf_free(conf);
        ferry_err_set(err, FERRY_ENOMEM, "out of memory");
        return NULL;
    }
    atomic_init(&g->refs, 1);
    g->id = id;
    g->conf = conf;
    if ((g->systems_json = systems_json(conf)) == NULL ||
        (g->sys_ctx = calloc(conf->nsystems + 1, sizeof(SSL_CTX *))) == NULL) {
        cgen_unref(g);
        ferry_err_set(err, FERRY_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < conf->nsystems; i++) {
        struct ferry_err e = { 0 };

        if (conf->systems[i].tls &&
            tls_backend_ctx(conf->systems[i].tls_ca, &g->sys_ctx[i], &e) != FERRY_OK) {
            ferry_err_set(err, FERRY_EINVAL, "%s: systems[%zu]: %s", conf->path, i, e.msg);
            cgen_unref(g);
            return NULL;
        }
    }
    if (cpp_issuer_new(conf, &g->pp, err) != FERRY_OK) {
        cgen_unref(g);
        return NULL;
    }
    return g;
}

int
ferry_connector_new(const char *conf_path, struct connector **out)
{
    struct connector    *cn;
    struct ferry_connector_conf *conf = NULL;
    struct ferry_errlist         errs = { 0 };
    struct ferry_err             err = { 0 };
    unsigned char                rnd[16];
    long                         ncpu;
    int                          rc = FERRY_EINVAL;

    if ((cn = calloc(1, sizeof(*cn))) == NULL)
        return FERRY_ENOMEM;
    pthread_mutex_init(&cn->mu, NULL);
    pthread_mutex_init(&cn->signer.mu, NULL);
    pthread_cond_init(&cn->signer.cv, NULL);
    cn->conf_path = conf_path;
    if (ferry_connector_conf_load_file(conf_path, &conf, &errs) != FERRY_OK) {
        ferry_errlist_print(&errs, stderr, false);
        goto fail;
    }
    ferry_errlist_print(&conf->warnings, stderr, true);
    if ((cn->first = cgen_new(conf, ++cn->reloads, &err)) == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        rc = err.code == FERRY_ENOMEM ? FERRY_ENOMEM : FERRY_EINVAL;
        goto fail;
    }
    cn->conf = cn->first->conf;
    cn->cur = cgen_ref(cn->first);
    /* `log: { level: }` was parsed but never applied before (found by
     * tests/integration/secrets_sweep.sh, which needs its debug lines to sweep them). */
    ferry_log_set_level(cn->conf->log_level);
    if (tls_client_ctx(cn->conf->ca, cn->conf->cert, cn->conf->key, &cn->ctx, &err) != FERRY_OK) {
        fprintf(stderr, "%s: %s\n", conf_path, err.msg);
        goto fail;
    }
    if (cn->conf->audit_log != NULL &&
        ferry_audit_open(cn->conf->audit_log, &cn->audit, &err) != FERRY_OK) {
        fprintf(stderr, "%s: audit_log: %s\n", conf_path, err.msg);
        rc = FERRY_EIO;
        goto fail;
    }
    RAND_bytes(rnd, sizeof(rnd));
    for (int i = 0; i < 16; i++)
        snprintf(cn->id + 2 * i, 3, "%02x", rnd[i]);
    rc = FERRY_ENOMEM;
    cn->stats = ferry_stats_tunnel_slot(cn->conf->tenant, cn->conf->location_id);
    if ((cn->targets = calloc(MAX_TARGETS, sizeof(*cn->targets))) == NULL)
        goto fail;
    for (size_t g = 0; g < cn->conf->ngateways && g < MAX_GATEWAYS; g++) {
        struct target                        *t = &cn->targets[g];
        const struct ferry_conf_gateway_addr *a = &cn->conf->gateways[g];

        snprintf(t->text, sizeof(t->text), "%s", a->text);
        snprintf(t->host, sizeof(t->host), "%s", a->host);
        snprintf(t->verify, sizeof(t->verify), "%s", a->host);
        t->port = a->port;
        t->configured = true;
        t->active = true;
        atomic_store(&t->slots, 1);     /* slot 0 first; it learns the rest */
    }
    ncpu = cn->conf->workers != 0 ? (long)cn->conf->workers : (long)ferry_ncpu();
    cn->nworkers = ncpu < 1 ? 1 : ncpu > MAX_CWORKERS ? MAX_CWORKERS : (unsigned)ncpu;
    if (cn->stats == NULL)
        goto fail;
    *out = cn;
    return FERRY_OK;
fail:
    ferry_connector_free(cn);
    return rc;
}

int
ferry_connector_start(struct connector *cn)
{
    if (cpp_signer_start(cn) != FERRY_OK)
        return FERRY_EIO;
    for (unsigned i = 0; i < cn->nworkers; i++) {
        cn->ninit = i + 1;                  /* cworker_fini undoes even a partial init */
        if (cworker_init(&cn->ws[i], i, cn) != FERRY_OK)
            return FERRY_ENOMEM;
    }
    for (unsigned i = 0; i < cn->nworkers; i++) {
        if (pthread_create(&cn->ws[i].thread, NULL, cworker_main, &cn->ws[i]) != 0)
            return FERRY_EIO;
        cn->nstarted++;
    }
    ferry_log(NULL, FERRY_INFO, "ferry connector started", FLOG_STR("version", FERRY_VERSION),
              FLOG_STR("config", cn->conf_path), FLOG_STR("tenant", cn->conf->tenant),
              FLOG_STR("location", cn->conf->location_id), FLOG_INT("workers", cn->nworkers),
              FLOG_INT("gateways", (long long)cn->conf->ngateways),
              FLOG_INT("systems", (long long)cn->conf->nsystems), FLOG_STR("id", cn->id));
    return FERRY_OK;
}

void
ferry_connector_drain(struct connector *cn)
{
    atomic_store(&cn->draining, true);
    wake_all(cn);
}

bool
ferry_connector_draining(const struct connector *cn)
{
    return atomic_load(&cn->draining);
}

bool
ferry_connector_idle(const struct connector *cn)
{
    /* Workers leave their loops when idle; approximate across threads. */
    for (unsigned i = 0; i < cn->nworkers; i++)
        if (__atomic_load_n(&cn->ws[i].nstreams, __ATOMIC_RELAXED) > 0)
            return false;
    return true;
}

void
ferry_connector_stop(struct connector *cn)
{
    if (cn->nstarted == 0) {
        cpp_signer_stop(cn);
        return;
    }
    atomic_store(&cn->stopping, true);
    wake_all(cn);
    for (unsigned i = 0; i < cn->nstarted; i++)
        pthread_join(cn->ws[i].thread, NULL);
    cn->nstarted = 0;
    cpp_signer_stop(cn);                /* after the workers: none posts any more */
    ferry_log(NULL, FERRY_INFO, "ferry connector stopped");
}

void
ferry_connector_free(struct connector *cn)
{
    if (cn == NULL)
        return;
    ferry_connector_stop(cn);
    for (unsigned i = 0; i < cn->ninit; i++)
        cworker_fini(&cn->ws[i]);
    if (cn->audit != NULL)
        ferry_audit_close(cn->audit);
    SSL_CTX_free(cn->ctx);
    cgen_unref(cn->cur);                /* the workers' and streams' are gone */
    cgen_unref(cn->first);              /* conf with it */
    free(cn->targets);
    pthread_cond_destroy(&cn->signer.cv);
    pthread_mutex_destroy(&cn->signer.mu);
    pthread_mutex_destroy(&cn->mu);
    free(cn);
}

atomic_int *
ferry_connector_live(struct connector *cn)
{
    return &cn->live;
}

atomic_int *
ferry_connector_replicas(struct connector *cn)
{
    return &cn->replicas;
}

void
ferry_connector_pp_counts(struct connector *cn, _Atomic uint64_t **issued,
                          _Atomic uint64_t **reused, _Atomic uint64_t **refused)
{
    *issued = &cn->pp_issued;
    *reused = &cn->pp_reused;
    *refused = &cn->pp_refused;
}

unsigned
ferry_connector_workers(const struct connector *cn)
{
    return cn->nworkers;
}

uint32_t
ferry_connector_drain_timeout_ms(const struct connector *cn)
{
    return cn->conf->drain_timeout_ms;
}

const char *
ferry_connector_admin_listen(const struct connector *cn)
{
    return cn->conf->admin_listen;
}

int
ferry_connector_check(const char *conf_path)
{
    struct ferry_errlist         errs = { 0 };
    struct ferry_connector_conf *conf = NULL;
    struct ferry_err             err = { 0 };
    SSL_CTX                     *ctx = NULL;
    struct ferry_tls_issuer     *iss = NULL;

    if (ferry_connector_conf_load_file(conf_path, &conf, &errs) != FERRY_OK) {
        ferry_errlist_print(&errs, stderr, false);
        return 2;
    }
    ferry_errlist_print(&conf->warnings, stderr, true);
    if (tls_client_ctx(conf->ca, conf->cert, conf->key, &ctx, &err) != FERRY_OK) {
        fprintf(stderr, "%s: %s\n", conf_path, err.msg);
        ferry_connector_conf_free(conf);
        return 2;
    }
    SSL_CTX_free(ctx);
    /* The CA and the subject pattern are checked as the connector would load them. */
    if (cpp_issuer_new(conf, &iss, &err) != FERRY_OK) {
        fprintf(stderr, "%s\n", err.msg);
        ferry_connector_conf_free(conf);
        return 2;
    }
    ferry_tls_issuer_free(iss);
    printf("%s: ok (connector: %zu gateways, %zu systems, tenant %s%s)\n", conf_path,
           conf->ngateways, conf->nsystems, conf->tenant,
           conf->pp != NULL ? ", principal propagation" : "");
    ferry_connector_conf_free(conf);
    return 0;
}

int
ferry_connector_verify_audit(const char *const *paths, int npaths)
{
    struct ferry_err err = { 0 };
    char             prev[FERRY_AUDIT_HEX_LEN + 1];
    uint64_t         n = 0, total = 0;
    int              rc;

    memset(prev, '0', FERRY_AUDIT_HEX_LEN);
    prev[FERRY_AUDIT_HEX_LEN] = '\0';
    for (int i = 0; i < npaths; i++) {
        if ((rc = ferry_audit_verify_from(paths[i], prev, &n, &err)) != FERRY_OK) {
            fprintf(stderr, "%s: %s\n", paths[i], err.msg);
            return rc == FERRY_EIO ? 2 : 1;
        }
        total += n;
        if (npaths > 1)
            printf("%s: %llu records\n", paths[i], (unsigned long long)n);
    }
    if (npaths == 1)
        printf("%s: chain intact, %llu records\n", paths[0], (unsigned long long)total);
    else
        printf("chain intact across %d files, %llu records\n", npaths,
               (unsigned long long)total);
    return 0;
}

bool
ferry_connector_has_audit(const struct connector *cn)
{
    return cn->audit != NULL;
}

uint64_t
ferry_connector_audit_errors(void *arg)
{
    struct connector *cn = arg;

    return ferry_audit_errors(cn->audit);
}

void
ferry_connector_reopen_audit(struct connector *cn)
{
    struct ferry_err err = { 0 };

    if (cn->audit == NULL)
        return;
    /* Blocking file I/O on the main thread, under the log's lock: workers writing a line
     * wait for one open(2) and one hash of the new file's last line. */
    if (ferry_audit_reopen(cn->audit, &err) == FERRY_OK)
        ferry_log(NULL, FERRY_INFO, "audit log reopened", FLOG_STR("path", cn->conf->audit_log));
    else
        ferry_log(NULL, FERRY_ERROR, "audit log reopen failed", FLOG_STR("error", err.msg));
}

/* ---- reload ----------------------------------------------------------------------------- */

static bool
str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* Keys read at start only: a change is named (it needs a restart) and the running value
 * stays. Returns how many differ. */
static unsigned
restart_only_changes(const struct ferry_connector_conf *run, const struct ferry_connector_conf *nc)
{
    const char *changed[20];
    unsigned    n = 0;
    bool        gw = run->ngateways != nc->ngateways;

    for (size_t i = 0; !gw && i < run->ngateways; i++)
        gw = strcmp(run->gateways[i].text, nc->gateways[i].text) != 0;
    if (gw)
        changed[n++] = "gateway";
    if (strcmp(run->tenant, nc->tenant) != 0)
        changed[n++] = "tenant";
    if (strcmp(run->token, nc->token) != 0)
        changed[n++] = "token";
    if (strcmp(run->location_id, nc->location_id) != 0)
        changed[n++] = "location_id";
    if (str_differs(run->ca, nc->ca) || str_differs(run->cert, nc->cert) ||
        str_differs(run->key, nc->key))
        changed[n++] = "tls (ca, cert, key)";
    if (run->workers != nc->workers)
        changed[n++] = "workers";
    if (str_differs(run->admin_listen, nc->admin_listen))
        changed[n++] = "admin";
    if (str_differs(run->audit_log, nc->audit_log))
        changed[n++] = "audit_log";
    if (run->keepalive_ms != nc->keepalive_ms ||
        run->dead_peer_timeout_ms != nc->dead_peer_timeout_ms ||
        run->reconnect_max_ms != nc->reconnect_max_ms ||
        run->drain_timeout_ms != nc->drain_timeout_ms)
        changed[n++] = "tunnel timers (keepalive_ms, dead_peer_timeout_ms, reconnect_max_ms, "
                       "drain_timeout_ms)";
    for (unsigned i = 0; i < n; i++)
        ferry_log(NULL, FERRY_WARN, "connector reload: this setting changed but is read at "
                  "start only; the running value stays until a restart",
                  FLOG_STR("setting", changed[i]), FLOG_STR("config", run->path));
    return n;
}

int
ferry_connector_reload(struct connector *cn)
{
    struct ferry_connector_conf *conf = NULL;
    struct ferry_errlist         errs = { 0 };
    struct ferry_err             err = { 0 };
    struct cgen                 *g, *old;
    bool                         announce;

    ferry_log(NULL, FERRY_INFO, "connector reload requested", FLOG_STR("config", cn->conf_path));
    if (ferry_connector_conf_load_file(cn->conf_path, &conf, &errs) != FERRY_OK) {
        ferry_errlist_print(&errs, stderr, false);
        for (int i = 0; i < errs.count; i++)
            ferry_log(NULL, FERRY_ERROR, "connector reload: configuration error",
                      FLOG_STR("file", errs.items[i].file), FLOG_INT("line", errs.items[i].line),
                      FLOG_INT("col", errs.items[i].col), FLOG_STR("error", errs.items[i].msg));
        ferry_log(NULL, FERRY_ERROR, "connector reload failed: configuration has errors; "
                  "keeping the running one", FLOG_STR("config", cn->conf_path),
                  FLOG_INT("errors", errs.count + errs.dropped));
        return FERRY_EINVAL;
    }
    ferry_errlist_print(&conf->warnings, stderr, true);
    (void)restart_only_changes(cn->conf, conf);
    if ((g = cgen_new(conf, cn->reloads + 1, &err)) == NULL) {
        ferry_log(NULL, FERRY_ERROR, "connector reload failed; keeping the running "
                  "configuration", FLOG_STR("config", cn->conf_path), FLOG_STR("error", err.msg));
        return err.code == FERRY_ENOMEM ? FERRY_ENOMEM : FERRY_EINVAL;
    }
    cn->reloads++;
    pthread_mutex_lock(&cn->mu);
    old = cn->cur;
    cn->cur = g;                        /* the reference cgen_new gave */
    pthread_mutex_unlock(&cn->mu);
    announce = strcmp(old->systems_json, g->systems_json) != 0;
    cgen_unref(old);                    /* workers and streams keep theirs */
    wake_all(cn);
    ferry_log(NULL, FERRY_INFO, "connector reloaded", FLOG_INT("generation", g->id),
              FLOG_INT("systems", (long long)g->conf->nsystems),
              FLOG_STR("virtual_names", announce ? "changed: re-registering every tunnel"
                                                 : "unchanged"));
    ferry_log_set_level(g->conf->log_level);    /* after the line that says it reloaded */
    return FERRY_OK;
}
