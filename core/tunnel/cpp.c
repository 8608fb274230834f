/*
 * cpp.c: the connector's principal propagation machinery (DESIGN.md, "User identity:
 * principal propagation"): the issuer built from `principal_propagation:` at load, the
 * signer thread, and each worker's certificate cache and return path.
 *
 * Signing costs a private-key operation (about a millisecond with RSA, more on a busy
 * core); a worker's loop carries every stream of its tunnels, so it never signs. A
 * cache hit, the common case, is answered on the worker without a thread hop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <ferry/log.h>

#include "tunnel/connector-int.h"

int
cpp_issuer_new(const struct ferry_connector_conf *conf, struct ferry_tls_issuer **out,
               struct ferry_err *err)
{
    const struct ferry_conf_pp *pp = conf->pp;
    struct ferry_err            e = { 0 };
    int                         rc;

    *out = NULL;
    if (pp == NULL)
        return FERRY_OK;
    rc = ferry_tls_issuer_new(pp->ca_cert, pp->ca_key, pp->subject, pp->validity_minutes,
                              out, &e);
    if (rc == FERRY_OK)
        return FERRY_OK;
    /* A pattern error carries its column in the pattern: place it in the file. */
    if (e.col > 0)
        ferry_err_set(err, FERRY_EINVAL, "%s:%d:%d: principal_propagation: subject: %s",
                      conf->path, pp->subject_line, pp->subject_col + e.col - 1, e.msg);
    else
        ferry_err_set(err, FERRY_EINVAL, "%s:%d:%d: principal_propagation: %s", conf->path,
                      pp->ca_line, pp->ca_col, e.msg);
    return FERRY_EINVAL;
}

void
cpp_job_free(struct pp_job *job)
{
    if (job == NULL)
        return;
    free(job->dn);
    json_decref(job->claims);
    ferry_tls_usercert_unref(job->uc);
    cgen_unref(job->gen);
    free(job);
}

/* ---- the signer thread ---------------------------------------------------------------- */

/* Back to the worker that asked; its loop picks the job up (on_pp_done). */
static void
job_return(struct pp_job *job)
{
    struct cworker *w = job->w;
    uint64_t        one = 1;

    pthread_mutex_lock(&w->pp_mu);
    job->next = w->pp_done;
    w->pp_done = job;
    pthread_mutex_unlock(&w->pp_mu);
    if (write(w->pp_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        ferry_log(NULL, FERRY_ERROR, "cannot wake worker for a user certificate",
                  FLOG_INT("worker", w->id));
}

static void *
signer_main(void *arg)
{
    struct connector *cn = arg;
    struct signer    *sg = &cn->signer;

    pthread_mutex_lock(&sg->mu);
    for (;;) {
        struct pp_job   *job;
        struct ferry_err err = { 0 };

        while (sg->head == NULL && !sg->stop)
            pthread_cond_wait(&sg->cv, &sg->mu);
        if (sg->stop)
            break;
        job = sg->head;
        sg->head = job->next;
        if (sg->head == NULL)
            sg->tail = NULL;
        sg->n--;
        pthread_mutex_unlock(&sg->mu);
        job->next = NULL;
        job->rc = ferry_tls_issuer_issue(job->gen->pp, job->claims, time(NULL), &job->uc, &err);
        if (job->rc != FERRY_OK)
            snprintf(job->reason, sizeof(job->reason), "%.190s", err.msg);
        /* The claims stay here: nothing of the job is shared once it goes back. */
        json_decref(job->claims);
        job->claims = NULL;
        job_return(job);
        pthread_mutex_lock(&sg->mu);
    }
    pthread_mutex_unlock(&sg->mu);
    return NULL;
}

int
cpp_signer_start(struct connector *cn)
{
    struct signer *sg = &cn->signer;

    /* Always: a reload may add `principal_propagation:`; idle, it waits on its cv. */
    if (sg->started)
        return FERRY_OK;
    if (pthread_create(&sg->thread, NULL, signer_main, cn) != 0)
        return FERRY_EIO;
    sg->started = true;
    return FERRY_OK;
}

void
cpp_signer_stop(struct connector *cn)
{
    struct signer *sg = &cn->signer;

    if (!sg->started)
        return;
    pthread_mutex_lock(&sg->mu);
    sg->stop = true;
    pthread_cond_signal(&sg->cv);
    pthread_mutex_unlock(&sg->mu);
    pthread_join(sg->thread, NULL);
    sg->started = false;
    /* Jobs never signed: their streams are gone with the workers. */
    while (sg->head != NULL) {
        struct pp_job *job = sg->head;

        sg->head = job->next;
        cpp_job_free(job);
    }
    sg->tail = NULL;
    sg->n = 0;
}

static bool
cpp_post(struct connector *cn, struct pp_job *job)
{
    struct signer *sg = &cn->signer;
    bool           ok;

    pthread_mutex_lock(&sg->mu);
    if ((ok = sg->started && !sg->stop && sg->n < PP_QUEUE_MAX)) {
        job->next = NULL;
        if (sg->tail != NULL)
            sg->tail->next = job;
        else
            sg->head = job;
        sg->tail = job;
        sg->n++;
        pthread_cond_signal(&sg->cv);
    }
    pthread_mutex_unlock(&sg->mu);
    return ok;
}

/* ---- the worker's side ---------------------------------------------------------------- */

int
cpp_wait(struct cworker *w, struct cstream *cs, const char *dn, json_t *claims)
{
    struct pp_job *job;

    /* Joined only under the same issuer: after a reload a stream's certificate must
     * come from its own generation's issuer (the key it presents is that one's). */
    for (job = w->pp_pending; job != NULL; job = job->pend_next)
        if (job->gen == cs->gen && strcmp(job->dn, dn) == 0)
            break;
    if (job != NULL) {
        json_decref(claims);            /* the job in flight has the same subject's */
    } else {
        if ((job = calloc(1, sizeof(*job))) == NULL || (job->dn = strdup(dn)) == NULL) {
            free(job);
            json_decref(claims);
            return FERRY_ENOMEM;
        }
        job->w = w;
        job->gen = cgen_ref(cs->gen);
        job->claims = claims;
        if (!cpp_post(w->cn, job)) {
            cpp_job_free(job);
            return FERRY_ELIMIT;
        }
        /* Posted: it comes back through this loop, so the lists below are set in time. */
        job->pend_next = w->pp_pending;
        w->pp_pending = job;
    }
    cs->job = job;
    cs->job_next = job->waiters;
    job->waiters = cs;
    return FERRY_OK;
}

void
cpp_unwait(struct cstream *cs)
{
    struct cstream **pp = &cs->job->waiters;

    while (*pp != NULL && *pp != cs)
        pp = &(*pp)->job_next;
    if (*pp == cs)
        *pp = cs->job_next;
    cs->job = NULL;
    cs->job_next = NULL;
}

/* The worker is done with a job the signer returned: off the pending list. */
static void
pending_remove(struct cworker *w, struct pp_job *job)
{
    struct pp_job **pp = &w->pp_pending;

    while (*pp != NULL && *pp != job)
        pp = &(*pp)->pend_next;
    if (*pp == job)
        *pp = job->pend_next;
}

static void
on_pp_done(evutil_socket_t fd, short what, void *arg)
{
    struct cworker *w = arg;
    struct pp_job  *list, *next;
    uint64_t        junk;

    (void)what;
    if (read(fd, &junk, sizeof(junk)) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&w->pp_mu);
    list = w->pp_done;
    w->pp_done = NULL;
    pthread_mutex_unlock(&w->pp_mu);
    for (struct pp_job *job = list; job != NULL; job = next) {
        next = job->next;
        if (job->rc == FERRY_OK) {
            /* Kept even when its stream has ended: the user is likely to come back
             * (unless a reload replaced the issuer meanwhile). */
            if (job->gen == w->gen && w->pp_cache != NULL)
                ferry_tls_usercache_put(w->pp_cache, job->uc);
            atomic_fetch_add_explicit(&w->cn->pp_issued, 1, memory_order_relaxed);
        }
        pending_remove(w, job);
        /* A stream that ended meanwhile is no longer listed: nothing to continue. */
        while (job->waiters != NULL) {
            struct cstream *cs = job->waiters;

            job->waiters = cs->job_next;
            cs->job = NULL;
            cs->job_next = NULL;
            cs_pp_done(cs, job);
        }
        cpp_job_free(job);
    }
}

int
cpp_worker_regen(struct cworker *w)
{
    struct ferry_tls_usercache *c = NULL;
    const struct cgen          *g = w->gen;

    if (g->pp != NULL &&
        ferry_tls_usercache_new(g->pp, g->conf->pp->cache_size, &c) != FERRY_OK)
        return FERRY_ENOMEM;
    ferry_tls_usercache_free(w->pp_cache);
    w->pp_cache = c;
    return FERRY_OK;
}

int
cpp_worker_init(struct cworker *w)
{
    w->pp_fd = -1;
    if (pthread_mutex_init(&w->pp_mu, NULL) != 0)
        return FERRY_ENOMEM;
    w->pp_mu_init = true;
    if (cpp_worker_regen(w) != FERRY_OK ||
        (w->pp_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return FERRY_ENOMEM;
    event_assign(&w->pp_ev, w->base, w->pp_fd, EV_READ | EV_PERSIST, on_pp_done, w);
    w->pp_ev_added = event_add(&w->pp_ev, NULL) == 0;
    return w->pp_ev_added ? FERRY_OK : FERRY_ENOMEM;
}

/* After the signer stopped: nothing comes back any more. */
void
cpp_worker_fini(struct cworker *w)
{
    w->pp_pending = NULL;               /* those jobs were the signer's or are below */
    while (w->pp_done != NULL) {
        struct pp_job *job = w->pp_done;

        w->pp_done = job->next;
        cpp_job_free(job);
    }
    if (w->pp_ev_added)
        event_del(&w->pp_ev);
    w->pp_ev_added = false;
    if (w->pp_fd >= 0)
        close(w->pp_fd);
    w->pp_fd = -1;
    ferry_tls_usercache_free(w->pp_cache);
    w->pp_cache = NULL;
    if (w->pp_mu_init)
        pthread_mutex_destroy(&w->pp_mu);
    w->pp_mu_init = false;
}
