/*
 * dest-int.h: the destination registry inside core.
 *
 * A registry is an immutable snapshot of all destinations, reference-counted: a reload
 * builds a new one and swaps it in; connections keep the snapshot they started with.
 * Destinations accept SAP BTP property names verbatim (../shared/SAP-NOTES.md §2).
 */
#ifndef FERRY_DEST_INT_H
#define FERRY_DEST_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/dest.h>

struct ferry_errlist;

struct ferry_prop {
    char *key;                  /* SAP name, verbatim */
    char *value;                /* expanded */
    bool  secret;               /* came from ${env:} / ${file:} or is a known secret
                                   property (Password, clientSecret, …): print "***" */
    int   line, col;
};

struct ferry_dest {
    char                 *name;
    enum ferry_dest_type  type;
    enum ferry_proxy_type proxy_type;
    char                 *tenant;          /* filled with the only tenant if absent */
    char                 *location;        /* "" = default location */
    char                 *authentication;  /* "NoAuthentication" if absent (HTTP) */
    char                 *scheme;          /* "http", "https", "tcp", "ldap", "ldaps", "rfc" */
    char                 *host;
    uint16_t              port;
    char                 *path;            /* URL path ("" if none) */
    char                 *policy;          /* resolved path of `policy:` or NULL */
    uint32_t              connect_timeout_ms;  /* URL.connectionTimeoutInSeconds, default 5 s */
    uint32_t              read_timeout_ms;     /* URL.socketReadTimeoutInSeconds, default 30 s */
    struct ferry_prop    *props;           /* every property as given, in file order */
    size_t                nprops;
    char                 *file;            /* where it was defined */
    int                   line, col;
};

struct ferry_registry {
    atomic_uint        refs;
    struct ferry_dest *dests;              /* sorted by name */
    size_t             n;
};

struct ferry_registry *ferry_registry_ref(struct ferry_registry *r);
void                   ferry_registry_unref(struct ferry_registry *r);
/* NULL if absent. */
const struct ferry_dest *ferry_registry_find(const struct ferry_registry *r, const char *name);

#endif
