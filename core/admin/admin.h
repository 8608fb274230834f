/*
 * admin.h: the admin HTTP listener (health, readiness, metrics). Runs on the main
 * thread's event_base, never on a worker.
 */
#ifndef FERRY_ADMIN_H
#define FERRY_ADMIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ferry/err.h>

struct event_base;
struct ferry_admin;

/* Process-level facts the admin reports; owned by main, read at scrape time. */
struct ferry_admin_state {
    bool     ready;             /* false while starting or draining */
    unsigned nworkers;
    uint64_t generation;
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    const char *role;           /* "gateway" | "connector" */
    atomic_int *live;           /* connector: tunnels up; ready only while > 0 */
};

int  ferry_admin_start(struct event_base *base, const char *listen,
                       const struct ferry_admin_state *st, struct ferry_admin **out,
                       struct ferry_err *err);
void ferry_admin_stop(struct ferry_admin *a);

#endif
