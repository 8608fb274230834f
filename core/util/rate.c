/*
 * rate.c: the per-client token buckets of rate.h, in a set-associative table: a
 * lookup reads one set of RATE_TABLE_WAYS entries, so its cost is fixed whatever the
 * number of clients.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/rate.h"

/* Tokens are counted in thousandths, so a rate of N a second refills N of them each
 * millisecond, without fractions. */
#define MILLI 1000u

struct rate_entry {
    const void *owner;              /* NULL: free */
    uint64_t    last_ms;            /* the last refill, also the LRU clock */
    uint32_t    milli;              /* tokens x 1000, at most burst x 1000 */
    uint8_t     addr[16];
};

struct ferry_rate_table {
    pthread_mutex_t   mu[RATE_TABLE_LOCKS];   /* set s is guarded by mu[s % LOCKS] */
    struct rate_entry e[RATE_TABLE_SETS][RATE_TABLE_WAYS];
};

struct ferry_rate_table *
ferry_rate_table_new(void)
{
    struct ferry_rate_table *t = calloc(1, sizeof(*t));

    for (int i = 0; t != NULL && i < RATE_TABLE_LOCKS; i++)
        pthread_mutex_init(&t->mu[i], NULL);
    return t;
}

void
ferry_rate_table_free(struct ferry_rate_table *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < RATE_TABLE_LOCKS; i++)
        pthread_mutex_destroy(&t->mu[i]);
    free(t);
}

/* FNV-1a over the address and the owner pointer: spreads clients of one listener and
 * the same client on several listeners. Not keyed: a client choosing addresses to
 * collide in one set only evicts its own set's buckets. */
static unsigned
set_of(const void *owner, const uint8_t addr[16])
{
    uint64_t  h = 1469598103934665603ull;
    uintptr_t o = (uintptr_t)owner;

    for (int i = 0; i < 16; i++)
        h = (h ^ addr[i]) * 1099511628211ull;
    for (size_t i = 0; i < sizeof(o); i++, o >>= 8)
        h = (h ^ (o & 0xff)) * 1099511628211ull;
    return (unsigned)(h % RATE_TABLE_SETS);
}

static bool
take_locked(struct rate_entry *set, const void *owner, const uint8_t addr[16],
            uint64_t now_ms, uint32_t per_s, uint32_t burst, uint32_t *retry_after_s)
{
    struct rate_entry *e = NULL, *victim = &set[0];
    uint64_t           cap = (uint64_t)burst * MILLI, milli;

    for (int i = 0; i < RATE_TABLE_WAYS; i++) {
        if (set[i].owner == owner && memcmp(set[i].addr, addr, 16) == 0) {
            e = &set[i];
            break;
        }
        if (set[i].owner == NULL || (victim->owner != NULL && set[i].last_ms < victim->last_ms))
            victim = &set[i];
    }
    if (e == NULL) {                    /* a new client starts with a full bucket */
        e = victim;
        e->owner = owner;
        memcpy(e->addr, addr, 16);
        e->milli = (uint32_t)cap;
        e->last_ms = now_ms;
    }
    milli = e->milli;
    if (now_ms > e->last_ms) {
        /* Saturates: a long-idle client's elapsed time times the rate can be huge. */
        uint64_t add = (now_ms - e->last_ms) > cap ? cap : (now_ms - e->last_ms) * per_s;

        milli = milli + add > cap ? cap : milli + add;
        e->last_ms = now_ms;
    }
    if (milli >= MILLI) {
        e->milli = (uint32_t)(milli - MILLI);
        return true;
    }
    e->milli = (uint32_t)milli;
    if (retry_after_s != NULL) {
        uint64_t wait_ms = ((MILLI - milli) + per_s - 1) / per_s;

        *retry_after_s = (uint32_t)((wait_ms + 999) / 1000);
        if (*retry_after_s == 0)
            *retry_after_s = 1;
    }
    return false;
}

bool
ferry_rate_take(struct ferry_rate_table *t, const void *owner, const uint8_t addr[16],
                uint64_t now_ms, uint32_t per_s, uint32_t burst, uint32_t *retry_after_s)
{
    unsigned s = set_of(owner, addr);
    bool     ok;

    pthread_mutex_lock(&t->mu[s % RATE_TABLE_LOCKS]);
    ok = take_locked(t->e[s], owner, addr, now_ms, per_s, burst, retry_after_s);
    pthread_mutex_unlock(&t->mu[s % RATE_TABLE_LOCKS]);
    return ok;
}
