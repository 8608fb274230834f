/*
 * stats.c: the registry of counter slots and request pairs (stats.h).
 *
 * Owns every slot and pair until exit. Workers, the tunnel and plugins count into
 * them; the admin room reads them to render /metrics (admin/metrics.c). Knows no
 * output format and no room above it.
 */
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>

#include "stats/stats.h"

/* Written only by the main thread; workers only follow pointers they were handed. */
static struct stats_slot *slots;
static unsigned           slot_cells = FERRY_MAX_WORKERS;

void
ferry_stats_set_workers(unsigned n)
{
    if (n > 0 && n <= FERRY_MAX_WORKERS)
        slot_cells = n;
}

/* An index by (kind, name): a generation asks for one slot per destination, and with
 * thousands of destinations (a store) a walk of the list for each made every change
 * quadratic. Tunnel slots are found by tenant and location, not indexed. */
#define SLOT_BUCKETS 4096
static struct stats_slot *buckets[SLOT_BUCKETS];

static size_t
slot_bucket(enum stats_kind kind, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind;   /* FNV-1a */

    for (; *name != '\0'; name++)
        h = (h ^ (unsigned char)*name) * 1099511628211ull;
    return (size_t)(h % SLOT_BUCKETS);
}

static void pairs_free(void);
static void counters_free(void);

/* Plugins' counters, sorted by (name, plugin) so one metric's lines stay together. */
static struct ferry_counter *counters;

int
stats_counter_get(const char *plugin, const char *name, const char *help, size_t max,
                  struct ferry_counter **out)
{
    struct ferry_counter **at = &counters, *k;
    size_t                 count = 0;

    for (k = counters; k != NULL; k = k->next) {
        if (strcmp(k->plugin, plugin) != 0)
            continue;
        if (strcmp(k->name, name) == 0) {
            *out = k;
            return FERRY_OK;
        }
        count++;
    }
    if (count >= max)
        return FERRY_ELIMIT;
    while (*at != NULL && (strcmp((*at)->name, name) < 0 ||
                           (strcmp((*at)->name, name) == 0 && strcmp((*at)->plugin, plugin) < 0)))
        at = &(*at)->next;
    if ((k = aligned_alloc(64, sizeof(*k))) == NULL)
        return FERRY_ENOMEM;
    memset(k, 0, sizeof(*k));
    k->plugin = strdup(plugin);
    k->name = strdup(name);
    k->help = strdup(help != NULL ? help : "");
    if (k->plugin == NULL || k->name == NULL || k->help == NULL) {
        free(k->plugin);
        free(k->name);
        free(k->help);
        free(k);
        return FERRY_ENOMEM;
    }
    k->next = *at;
    *at = k;
    *out = k;
    return FERRY_OK;
}

const struct ferry_counter *
stats_counters(void)
{
    return counters;
}

static void
counters_free(void)
{
    while (counters != NULL) {
        struct ferry_counter *next = counters->next;

        free(counters->plugin);
        free(counters->name);
        free(counters->help);
        free(counters);
        counters = next;
    }
}

struct stats_slot *
ferry_stats_slot(enum stats_kind kind, const char *name)
{
    struct stats_slot *s;
    size_t             b = slot_bucket(kind, name);
    size_t             size = sizeof(*s) + slot_cells * sizeof(s->cell[0]);

    for (s = buckets[b]; s != NULL && kind != STATS_TUNNEL; s = s->hnext)
        if (s->kind == kind && strcmp(s->name, name) == 0)
            return s;

    if ((s = aligned_alloc(64, (size + 63) / 64 * 64)) == NULL)
        return NULL;
    memset(s, 0, size);
    s->ncells = slot_cells;
    if ((s->name = strdup(name)) == NULL) {
        free(s);
        return NULL;
    }
    s->kind = kind;
    s->next = slots;
    slots = s;
    if (kind != STATS_TUNNEL) {
        s->hnext = buckets[b];
        buckets[b] = s;
    }
    return s;
}

struct stats_slot *
ferry_stats_tunnel_slot(const char *tenant, const char *location)
{
    struct stats_slot *s;

    for (s = slots; s != NULL; s = s->next)
        if (s->kind == STATS_TUNNEL && strcmp(s->tenant, tenant) == 0 &&
            strcmp(s->location, location) == 0)
            return s;
    if ((s = ferry_stats_slot(STATS_TUNNEL, "")) == NULL)
        return NULL;
    /* A fresh slot: the lookup above keys tunnel slots by these two fields. */
    if (s->tenant == NULL) {
        s->tenant = strdup(tenant);
        s->location = strdup(location);
    }
    return s;
}

void
ferry_stats_free_all(void)
{
    pairs_free();
    counters_free();
    while (slots != NULL) {
        struct stats_slot *next = slots->next;

        free(slots->tenant);
        free(slots->location);
        free(slots->name);
        free(slots);
        slots = next;
    }
    memset(buckets, 0, sizeof(buckets));
}

const char *const stats_refused_reasons[STATS_REFUSED_REASONS] = {
    "not-allowed", "proxy-header", "rate-limited",
};

const uint64_t stats_bucket_us[STATS_BUCKETS] = {
    500, 1000, 2500, 5000, 10000, 25000, 100000, 500000, 2500000, 10000000,
};

const char *const stats_jwt_reasons[STATS_JWT_REASONS] = {
    "malformed", "bad-algorithm", "unknown-key", "bad-signature", "wrong-issuer",
    "wrong-audience", "expired", "not-yet-valid", "other",
};

/* Fixed size (65 cells of 128 bytes): no allocation, nothing to free at exit. */
static struct stats_jwt_cell jwt_cells[FERRY_MAX_WORKERS + 1];

struct stats_jwt_cell *
stats_jwt_cell(unsigned thread)
{
    return &jwt_cells[thread <= STATS_JWT_MAIN ? thread : STATS_JWT_MAIN];
}

static struct stats_tokens tokens;

struct stats_tokens *
stats_tokens(void)
{
    return &tokens;
}

void
stats_jwt_refused(struct stats_jwt_cell *c, const char *reason)
{
    unsigned i = 0;

    while (i + 1 < STATS_JWT_REASONS &&
           (reason == NULL || strcmp(stats_jwt_reasons[i], reason) != 0))
        i++;
    stats_add(&c->refused[i], 1);
}

void
stats_request(struct stats_slot *s, unsigned w, uint64_t us)
{
    struct stats_cell *cell;
    unsigned           b = 0;

    if (s == NULL || w >= s->ncells)
        return;
    cell = &s->cell[w];
    while (b < STATS_BUCKETS && us > stats_bucket_us[b])
        b++;
    stats_add(&cell->req_hist[b], 1);
    stats_add(&cell->req_us_sum, us);
}

static pthread_mutex_t    pairs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct stats_pair *pairs;

struct stats_pair *
stats_pair_get(const struct stats_slot *listener, const struct stats_slot *dest)
{
    struct stats_pair *p;

    pthread_mutex_lock(&pairs_mu);
    for (p = pairs; p != NULL; p = p->next)
        if (p->listener == listener && p->dest == dest)
            break;
    if (p == NULL && (p = aligned_alloc(64, sizeof(*p))) != NULL) {
        memset(p, 0, sizeof(*p));
        p->listener = listener;
        p->dest = dest;
        p->next = pairs;
        pairs = p;
    }
    pthread_mutex_unlock(&pairs_mu);
    return p;
}

static void
pairs_free(void)
{
    pthread_mutex_lock(&pairs_mu);
    while (pairs != NULL) {
        struct stats_pair *next = pairs->next;

        free(pairs);
        pairs = next;
    }
    pthread_mutex_unlock(&pairs_mu);
}

const struct stats_slot *
ferry_stats_slots(void)
{
    return slots;
}

void
stats_pairs_visit(void (*fn)(const struct stats_pair *p, void *arg), void *arg)
{
    pthread_mutex_lock(&pairs_mu);
    for (const struct stats_pair *p = pairs; p != NULL; p = p->next)
        fn(p, arg);
    pthread_mutex_unlock(&pairs_mu);
}
