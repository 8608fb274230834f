/*
 * rate.h: token buckets per (owner, client address), for a listener's `rate:`. No I/O:
 * the caller passes the time, so a test drives the clock.
 *
 * One table per rate-limited listener, shared by every worker: the kernel spreads a
 * client's connections over the workers (SO_REUSEPORT hashes the source port), so
 * per-worker buckets would give a client the rate once per worker. A lookup locks one
 * of RATE_TABLE_LOCKS stripes (by set), so workers rarely wait on each other.
 *
 * Bounded: RATE_TABLE_SETS sets of RATE_TABLE_WAYS entries (65536 entries, about
 * 2.5 MiB per listener with a rate). A new client takes the way of its set that was
 * used least recently. An evicted client comes back with a full bucket: the bound costs
 * accuracy under a flood of distinct addresses, never memory.
 */
#ifndef FERRY_UTIL_RATE_H
#define FERRY_UTIL_RATE_H

#include <stdbool.h>
#include <stdint.h>

#define RATE_TABLE_WAYS 8
#define RATE_TABLE_SETS 8192
#define RATE_TABLE_LOCKS 64

struct ferry_rate_table;

struct ferry_rate_table *ferry_rate_table_new(void);     /* NULL: out of memory */
void                     ferry_rate_table_free(struct ferry_rate_table *t);

/* Take one token (any thread) from the bucket of (owner, addr) that refills per_s tokens a second up
 * to burst (both >= 1), at time now_ms (any monotonic clock). true: taken. false: over
 * the rate, and *retry_after_s (if not NULL) is the whole seconds until a token is
 * back (at least 1). owner is compared by address only (a listener's identity). */
bool ferry_rate_take(struct ferry_rate_table *t, const void *owner, const uint8_t addr[16],
                     uint64_t now_ms, uint32_t per_s, uint32_t burst, uint32_t *retry_after_s);

#endif
