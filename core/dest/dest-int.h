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
    bool                  instance;        /* `level: instance`: an instance-level
                                              destination (SAP's instanceDestinations);
                                              false: subaccount level (the default) */
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
    struct ferry_dest *dests;              /* sorted by name, then instance level first */
    size_t             n;
};

/* What validating a destination needs from the rest of the config. */
struct ferry_dest_env {
    const char *const    *tenants;     /* borrowed: the known tenant ids */
    size_t                ntenants;
    struct ferry_errlist *errs;        /* borrowed: errors go here */
    struct ferry_errlist *warnings;    /* borrowed: near-miss names, TrustAll; may be NULL */
};

/* Validate one destination's properties (SAP names) and fill *d. d takes ownership of
 * props (an array of nprops, keys and values malloc'ed) whatever the outcome; release
 * it with ferry_dest_fini(). file/line/col say where it was defined (for messages), dir
 * is the base for its relative paths (policy, TrustStoreLocation, KeyStoreLocation;
 * NULL: relative paths are refused). FERRY_OK, or FERRY_EINVAL with errors in env->errs. */
int  ferry_dest_init(struct ferry_dest *d, struct ferry_prop *props, size_t nprops,
                     const char *file, const char *dir, int line, int col,
                     const struct ferry_dest_env *env);
void ferry_dest_fini(struct ferry_dest *d);
/* A deep copy of a validated destination into *dst: the same as validating its
 * properties again, without the cost (a store rebuilds its registry on every change).
 * FERRY_OK or FERRY_ENOMEM (*dst then empty). */
int  ferry_dest_copy(struct ferry_dest *dst, const struct ferry_dest *src);

/* Is this property a credential by its name alone (Password, clientSecret, ...)? */
bool ferry_dest_prop_is_secret(const char *key);
/* A property name ferry does not know: the known name it is a near miss of (written
 * into buf, which may hold a family prefix plus the rest), or NULL if it looks like a
 * deliberate custom property. Known names and families return NULL too. */
const char *ferry_dest_prop_suggest(const char *key, char *buf, size_t len);

/* Build a snapshot from n validated destinations (takes ownership of the array and its
 * contents, even on error). A Name is unique per level; one tenant may have it at both
 * levels (instance and subaccount), two tenants never. Duplicates are errors at the
 * later one, naming where the first is. FERRY_OK and *out (one reference), or FERRY_EINVAL / FERRY_ENOMEM. */
int  ferry_registry_new(struct ferry_dest *dests, size_t n, struct ferry_registry **out,
                        struct ferry_errlist *errs);

struct ferry_registry *ferry_registry_ref(struct ferry_registry *r);
void                   ferry_registry_unref(struct ferry_registry *r);
/* SAP's order: the instance-level destination of that name, else the subaccount-level
 * one; NULL if neither. One binary search. */
const struct ferry_dest *ferry_registry_find(const struct ferry_registry *r, const char *name);
/* The destination of that name at one level only (SAP's v2 name@level), or NULL. */
const struct ferry_dest *ferry_registry_find_level(const struct ferry_registry *r,
                                                   const char *name, bool instance);
/* "instance" or "subaccount". */
const char *ferry_dest_level(const struct ferry_dest *d);

#endif
