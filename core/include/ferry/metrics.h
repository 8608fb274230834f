/*
 * ferry/metrics.h: a plugin's own counters in /metrics (ABI 1.3).
 *
 * Register at load time, on the main thread (in init or listener_open), then count on
 * any worker:
 *
 *     static struct ferry_counter *greeted;
 *     ferry_counter_register("hello", "greetings_total", "Clients greeted", &greeted);
 *     ...
 *     ferry_counter_add(greeted, c, 1);
 *
 * which /metrics shows as
 *
 *     # HELP ferry_plugin_greetings_total Clients greeted
 *     # TYPE ferry_plugin_greetings_total counter
 *     ferry_plugin_greetings_total{plugin="hello"} 42
 *
 * Counting is one relaxed store into the worker's own cell: no lock, no shared cache
 * line. A counter lives until exit (across reloads); registering the same name again
 * returns the same counter.
 */
#ifndef FERRY_METRICS_H
#define FERRY_METRICS_H

#include <stdint.h>

#include <ferry/api.h>

struct ferry_conn;
struct ferry_counter;

#define FERRY_COUNTERS_PER_PLUGIN 32

/* plugin: the plugin's own name (its descriptor's); name: [a-z_][a-z0-9_]*, at most 64
 * bytes, by convention ending in _total; help: one line. FERRY_OK and *out set;
 * FERRY_EINVAL (a bad name, not a loaded plugin, not the main thread's load time),
 * FERRY_ELIMIT (past FERRY_COUNTERS_PER_PLUGIN), FERRY_ENOMEM. */
FERRY_API int  ferry_counter_register(const char *plugin, const char *name, const char *help,
                                      struct ferry_counter **out);
/* Add n, counted on c's worker. Only on c's worker thread. */
FERRY_API void ferry_counter_add(struct ferry_counter *ctr, struct ferry_conn *c, uint64_t n);

#endif
