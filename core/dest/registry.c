/*
 * registry.c: the immutable, reference-counted snapshot of every destination, and
 * the read-only accessors plugins use (ferry/dest.h).
 *
 * A reload builds a new registry and swaps it in; connections keep the snapshot they
 * started with until they drop their reference. Nothing here changes a registry
 * after ferry_registry_new() returns, so any thread may read it without a lock.
 */
#include <stdlib.h>
#include <string.h>

#include "dest/dest-int.h"
#include "util/errlist.h"

/* Sort by name, the instance level before the subaccount level (SAP's lookup order),
 * keeping definition order among equal ones (the first one wins). */
struct order {
    struct ferry_dest *d;
    size_t             seq;
};

static int
order_cmp(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    int                 c = strcmp(x->d->name, y->d->name);

    if (c != 0)
        return c;
    if (x->d->instance != y->d->instance)
        return x->d->instance ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
dest_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ferry_dest *)a)->name, ((const struct ferry_dest *)b)->name);
}

static int
dest_level_cmp(const void *a, const void *b)
{
    const struct ferry_dest *x = a, *y = b;
    int                      c = strcmp(x->name, y->name);

    if (c != 0 || x->instance == y->instance)
        return c;
    return x->instance ? -1 : 1;
}

static void
free_dests(struct ferry_dest *dests, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ferry_dest_fini(&dests[i]);
    free(dests);
}

int
ferry_registry_new(struct ferry_dest *dests, size_t n, struct ferry_registry **out,
                   struct ferry_errlist *errs)
{
    struct ferry_registry *r = NULL;
    struct order          *ord = NULL;
    struct ferry_dest     *sorted = NULL;
    size_t                 kept = 0;
    int                    rc = FERRY_ENOMEM;

    *out = NULL;
    if ((r = calloc(1, sizeof(*r))) == NULL
        || (n > 0 && ((ord = calloc(n, sizeof(*ord))) == NULL
                      || (sorted = calloc(n, sizeof(*sorted))) == NULL))) {
        ferry_errlist_add(errs, NULL, 0, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ord[i].d = &dests[i];
        ord[i].seq = i;
    }
    if (n > 0)
        qsort(ord, n, sizeof(*ord), order_cmp);
    rc = FERRY_OK;
    for (size_t i = 0; i < n; i++) {
        const struct ferry_dest *first = kept > 0 ? &sorted[kept - 1] : NULL, *dup = ord[i].d;

        /* Equal names: a clash, unless one tenant has the name at both levels. */
        if (first != NULL && strcmp(first->name, dup->name) == 0 &&
            (first->instance == dup->instance || strcmp(first->tenant, dup->tenant) != 0)) {
            if (first->instance == dup->instance)
                ferry_errlist_add(errs, dup->file, dup->line, dup->col,
                                  "destination '%s' is defined twice (first at %s:%d:%d)",
                                  dup->name, first->file, first->line, first->col);
            else
                ferry_errlist_add(errs, dup->file, dup->line, dup->col,
                                  "destination '%s' belongs to tenant '%s' at %s:%d:%d: a "
                                  "name is one tenant's, at either level", dup->name,
                                  first->tenant, first->file, first->line, first->col);
            ferry_dest_fini(ord[i].d);
            rc = FERRY_EINVAL;
            continue;
        }
        sorted[kept++] = *ord[i].d;           /* moved: the source slot is not freed */
    }
    free(dests);
    dests = NULL;
    n = 0;
    if (rc != FERRY_OK) {
        free_dests(sorted, kept);
        sorted = NULL;
        goto out;
    }
    atomic_init(&r->refs, 1);
    r->dests = sorted;
    r->n = kept;
    *out = r;
    r = NULL;
out:
    free_dests(dests, n);
    free(ord);
    free(r);
    return rc;
}

struct ferry_registry *
ferry_registry_ref(struct ferry_registry *r)
{
    if (r != NULL)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void
ferry_registry_unref(struct ferry_registry *r)
{
    if (r == NULL)
        return;
    /* acq_rel: the last owner must see every other owner's reads finished. */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    free_dests(r->dests, r->n);
    free(r);
}

const struct ferry_dest *
ferry_registry_find(const struct ferry_registry *r, const char *name)
{
    struct ferry_dest  key = { .name = (char *)name };
    struct ferry_dest *d;

    if (r == NULL || name == NULL || r->n == 0)
        return NULL;
    if ((d = bsearch(&key, r->dests, r->n, sizeof(*r->dests), dest_cmp)) == NULL)
        return NULL;
    /* At most two share a name, the instance one first. */
    if (!d->instance && d > r->dests && d[-1].instance && strcmp(d[-1].name, name) == 0)
        d--;
    return d;
}

const struct ferry_dest *
ferry_registry_find_level(const struct ferry_registry *r, const char *name, bool instance)
{
    struct ferry_dest key = { .name = (char *)name, .instance = instance };

    if (r == NULL || name == NULL || r->n == 0)
        return NULL;
    return bsearch(&key, r->dests, r->n, sizeof(*r->dests), dest_level_cmp);
}

const char *
ferry_dest_level(const struct ferry_dest *d)
{
    return d->instance ? "instance" : "subaccount";
}

FERRY_API const char *
ferry_dest_name(const struct ferry_dest *d)
{
    return d->name;
}

FERRY_API enum ferry_dest_type
ferry_dest_type(const struct ferry_dest *d)
{
    return d->type;
}

FERRY_API enum ferry_proxy_type
ferry_dest_proxy_type(const struct ferry_dest *d)
{
    return d->proxy_type;
}

FERRY_API const char *
ferry_dest_host(const struct ferry_dest *d)
{
    return d->host;
}

FERRY_API uint16_t
ferry_dest_port(const struct ferry_dest *d)
{
    return d->port;
}

FERRY_API const char *
ferry_dest_tenant(const struct ferry_dest *d)
{
    return d->tenant;
}

FERRY_API const char *
ferry_dest_location(const struct ferry_dest *d)
{
    return d->location;
}

FERRY_API const char *
ferry_dest_prop(const struct ferry_dest *d, const char *key)
{
    for (size_t i = 0; i < d->nprops; i++)
        if (strcmp(d->props[i].key, key) == 0)
            return d->props[i].value;
    return NULL;
}

FERRY_API size_t
ferry_dest_nprops(const struct ferry_dest *d)
{
    return d->nprops;
}

FERRY_API void
ferry_dest_prop_at(const struct ferry_dest *d, size_t i, const char **key, const char **value)
{
    *key = i < d->nprops ? d->props[i].key : NULL;
    *value = i < d->nprops ? d->props[i].value : NULL;
}

FERRY_API const char *
ferry_dest_scheme(const struct ferry_dest *d)
{
    return d->scheme != NULL ? d->scheme : "";
}

FERRY_API const char *
ferry_dest_path(const struct ferry_dest *d)
{
    return d->path != NULL ? d->path : "";
}

FERRY_API const char *
ferry_dest_authentication(const struct ferry_dest *d)
{
    return d->authentication != NULL ? d->authentication : "NoAuthentication";
}

FERRY_API uint32_t
ferry_dest_read_timeout_ms(const struct ferry_dest *d)
{
    return d->read_timeout_ms;
}
