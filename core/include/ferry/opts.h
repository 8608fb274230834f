/*
 * ferry/opts.h: a listener's options from YAML, as its plugin sees them.
 *
 * Core handles the keys every listener has (name, plugin, listen, destination,
 * tenant, max_connections, idle_timeout_ms, connect_timeout_ms). Every other key of
 * the listener's mapping reaches the plugin here. A key the plugin never asks for is
 * reported by core as unknown (with a "did you mean" among the keys the plugin did
 * ask for), so a plugin validates its own options just by reading them.
 *
 * Returned strings are borrowed: valid until listener_close().
 */
#ifndef FERRY_OPTS_H
#define FERRY_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include <ferry/api.h>

struct ferry_opts;

/* A scalar option. FERRY_OK and *out set; FERRY_ENOTFOUND if absent (*out = NULL);
 * FERRY_EINVAL (error reported at the key) if it is not a scalar. */
FERRY_API int ferry_opts_str(struct ferry_opts *o, const char *key, const char **out);

/* A list of scalars (a single scalar counts as a list of one). *out is NULL-terminated.
 * Same return codes as ferry_opts_str. */
FERRY_API int ferry_opts_strlist(struct ferry_opts *o, const char *key,
                                 const char *const **out, size_t *n);

/* An unsigned integer in [min, max]; absent leaves *out untouched (FERRY_ENOTFOUND). */
FERRY_API int ferry_opts_uint(struct ferry_opts *o, const char *key, uint64_t min,
                              uint64_t max, uint64_t *out);

/* Report an error at the key's position (or the listener's, if key is NULL or absent):
 * printed as `file:line:col: listeners[i] (name): key: message`. Returns FERRY_EINVAL. */
FERRY_API int ferry_opts_error(struct ferry_opts *o, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
