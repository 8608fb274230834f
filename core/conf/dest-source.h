/*
 * dest-source.h: destinations read from somewhere else than the configuration they are
 * meant for — a directory of destination files, or the destinations of another gateway
 * configuration — and validated exactly as that configuration's own would be, with its
 * tenants. `ferry store import` reads its SOURCE with it before writing to etcd.
 *
 * Main thread, blocking file I/O (a command-line tool's load).
 */
#ifndef FERRY_CONF_DEST_SOURCE_H
#define FERRY_CONF_DEST_SOURCE_H

#include "conf/conf.h"
#include "util/errlist.h"

struct ferry_registry;

/* source: a directory (every *.yaml / *.yml file in it is one destination, as in
 * destinations_dir), or a gateway configuration file, of which only `destinations:`
 * and `destinations_dir:` are read (relative to that file; its other sections are
 * none of an import's business). Tenants, and whether `tenant:` may be left out, come
 * from target. Secret references are expanded as the loader expands them.
 * FERRY_OK and *out (one reference) when every destination is valid; else FERRY_EINVAL
 * (or FERRY_ENOMEM) with every error in errs as file:line:col, and *out NULL. Near-miss
 * property names and TrustAll go to warnings. */
int ferry_conf_dests_from(const char *source, const struct ferry_conf *target,
                          struct ferry_registry **out, struct ferry_errlist *errs,
                          struct ferry_errlist *warnings);

/* One destination file's text, validated as the loader validates a file of target's
 * destinations_dir; name stands for the file in messages, its directory is the base of
 * relative references. The same results as ferry_conf_dests_from(). No file is read
 * but what a ${file:} reference names. */
int ferry_conf_dest_from_text(const char *text, size_t len, const char *name,
                              const struct ferry_conf *target, struct ferry_registry **out,
                              struct ferry_errlist *errs, struct ferry_errlist *warnings);

#endif
