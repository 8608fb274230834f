/*
 * opts.c: a listener's own options (ferry/opts.h), handed to its plugin.
 *
 * The loader keeps every key that is not a core listener key, with its position.
 * Reading a key marks it used and remembers the name, so that afterwards
 * ferry_opts_check_unused() can call the rest unknown and suggest a key the plugin did
 * ask for: a plugin validates its options just by reading them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/opts.h>

#include "conf/conf-int.h"

/* A plugin asks for a handful of keys; more than this is a bug, not a config. */
#define OPTS_MAX_ASKED 64

enum opt_kind { OPT_SCALAR, OPT_LIST, OPT_BAD };

struct opt {
    char         *key;      /* owns */
    enum opt_kind kind;
    char        **list;     /* owns: NULL-terminated; one item for a scalar */
    size_t        n;
    bool          secret;   /* some value came from a ${...} reference */
    bool          used, reported;
    int           line, col;
};

struct ferry_opts {
    struct opt           *items;   /* owns */
    size_t                n;
    char                 *asked[OPTS_MAX_ASKED];  /* owns: the keys the plugin asked for */
    size_t                nasked;
    char                 *file;    /* owns */
    char                 *name;    /* owns: listener name, may be NULL */
    int                   index, line, col;
    struct ferry_errlist *errs;    /* borrowed */
};

const char *const conf_listener_core_keys[] = {
    "name", "plugin", "listen", "destination", "tenant", "max_connections",
    "idle_timeout_ms", "connect_timeout_ms", "allow", "proxy_protocol", "rate",
};
const size_t conf_listener_core_nkeys =
    sizeof(conf_listener_core_keys) / sizeof(conf_listener_core_keys[0]);

struct ferry_opts *
conf_opts_new(const char *file, int index, const char *name, int line, int col,
              struct ferry_errlist *errs)
{
    struct ferry_opts *o = calloc(1, sizeof(*o));

    if (o == NULL)
        return NULL;
    o->file = strdup(file != NULL ? file : "");
    o->name = name != NULL ? strdup(name) : NULL;
    if (o->file == NULL || (name != NULL && o->name == NULL)) {
        conf_opts_free(o);
        return NULL;
    }
    o->index = index;
    o->line = line;
    o->col = col;
    o->errs = errs;
    return o;
}

void
conf_opts_free(struct ferry_opts *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->items[i].key);
        for (size_t j = 0; j < o->items[i].n; j++) {
            if (o->items[i].secret)
                explicit_bzero(o->items[i].list[j], strlen(o->items[i].list[j]));
            free(o->items[i].list[j]);
        }
        free(o->items[i].list);
    }
    for (size_t i = 0; i < o->nasked; i++)
        free(o->asked[i]);
    free(o->items);
    free(o->file);
    free(o->name);
    free(o);
}

int
conf_opts_set_name(struct ferry_opts *o, const char *name)
{
    char *copy = strdup(name);

    if (copy == NULL)
        return FERRY_ENOMEM;
    free(o->name);
    o->name = copy;
    return FERRY_OK;
}

int
conf_opts_add(struct ferry_opts *o, const struct conf_ctx *c, const yaml_node_t *key,
              const yaml_node_t *val)
{
    struct opt *items, *it;
    char        where[96];
    size_t      cap;

    if ((items = realloc(o->items, (o->n + 1) * sizeof(*items))) == NULL)
        goto nomem;
    o->items = items;
    it = &items[o->n];
    memset(it, 0, sizeof(*it));
    it->line = (int)key->start_mark.line + 1;
    it->col = (int)key->start_mark.column + 1;
    if ((it->key = strdup(conf_text(key))) == NULL)
        goto nomem;
    snprintf(where, sizeof(where), "listeners[%d]", o->index);
    if (val->type == YAML_SCALAR_NODE) {
        it->kind = OPT_SCALAR;
        cap = 1;
    } else if (val->type == YAML_SEQUENCE_NODE) {
        it->kind = OPT_LIST;
        cap = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
        for (yaml_node_item_t *i = val->data.sequence.items.start;
             i < val->data.sequence.items.top; i++)
            if (conf_node(c, *i)->type != YAML_SCALAR_NODE)
                it->kind = OPT_BAD;
    } else {
        it->kind = OPT_BAD;
        cap = 0;
    }
    if (it->kind == OPT_BAD)
        cap = 0;
    if ((it->list = calloc(cap + 1, sizeof(char *))) == NULL) {
        free(it->key);
        goto nomem;
    }
    o->n++;                                 /* from here conf_opts_free cleans up */
    for (size_t i = 0; i < cap; i++) {
        const yaml_node_t *v = val->type == YAML_SCALAR_NODE
                                   ? val : conf_node(c, val->data.sequence.items.start[i]);
        bool               secret;

        if (conf_scalar(c, v, where, it->key, &it->list[i], &secret) != FERRY_OK)
            return 1;
        it->n++;
        it->secret |= secret;
    }
    return 0;
nomem:
    conf_error(c, key, NULL, "out of memory");
    return 1;
}

static void
report(struct ferry_opts *o, int line, int col, const char *key, const char *fmt, va_list ap)
{
    char msg[400];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (o->errs == NULL)
        return;
    ferry_errlist_add(o->errs, o->file, line, col, "listeners[%d] (%s): %s%s%s", o->index,
                      o->name != NULL ? o->name : "?", key != NULL ? key : "",
                      key != NULL ? ": " : "", msg);
}

static struct opt *
lookup(struct ferry_opts *o, const char *key)
{
    size_t i;

    for (i = 0; i < o->nasked && strcmp(o->asked[i], key) != 0; i++)
        ;
    if (i == o->nasked && o->nasked < OPTS_MAX_ASKED) {
        if ((o->asked[o->nasked] = strdup(key)) != NULL)
            o->nasked++;
    }
    for (i = 0; i < o->n; i++) {
        if (strcmp(o->items[i].key, key) == 0) {
            o->items[i].used = true;
            return &o->items[i];
        }
    }
    return NULL;
}

static int
opt_error(struct ferry_opts *o, const struct opt *it, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
opt_error(struct ferry_opts *o, const struct opt *it, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report(o, it->line, it->col, it->key, fmt, ap);
    va_end(ap);
    return FERRY_EINVAL;
}

FERRY_API int
ferry_opts_str(struct ferry_opts *o, const char *key, const char **out)
{
    struct opt *it = lookup(o, key);

    *out = NULL;
    if (it == NULL)
        return FERRY_ENOTFOUND;
    if (it->kind != OPT_SCALAR)
        return opt_error(o, it, "want a single value, not %s",
                         it->kind == OPT_LIST ? "a list" : "a mapping");
    if (it->n == 0)                         /* the reference failed: already reported */
        return FERRY_EINVAL;
    *out = it->list[0];
    return FERRY_OK;
}

FERRY_API int
ferry_opts_strlist(struct ferry_opts *o, const char *key, const char *const **out, size_t *n)
{
    struct opt *it = lookup(o, key);

    *out = NULL;
    *n = 0;
    if (it == NULL)
        return FERRY_ENOTFOUND;
    if (it->kind == OPT_BAD)
        return opt_error(o, it, "want a value or a list of values");
    *out = (const char *const *)it->list;
    *n = it->n;
    return FERRY_OK;
}

FERRY_API int
ferry_opts_uint(struct ferry_opts *o, const char *key, uint64_t min, uint64_t max,
                uint64_t *out)
{
    const char *s;
    struct opt *it;
    uint64_t    v = 0;
    int         rc;

    if ((rc = ferry_opts_str(o, key, &s)) != FERRY_OK)
        return rc;
    it = lookup(o, key);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*s == '\0' || v < min || v > max)
        goto bad;
    *out = v;
    return FERRY_OK;
bad:
    if (it->secret)
        return opt_error(o, it, "want a whole number from %llu to %llu",
                         (unsigned long long)min, (unsigned long long)max);
    return opt_error(o, it, "want a whole number from %llu to %llu, not '%s'",
                     (unsigned long long)min, (unsigned long long)max, s);
}

FERRY_API int
ferry_opts_error(struct ferry_opts *o, const char *key, const char *fmt, ...)
{
    struct opt *it = NULL;
    va_list     ap;

    for (size_t i = 0; key != NULL && i < o->n; i++)
        if (strcmp(o->items[i].key, key) == 0)
            it = &o->items[i];
    va_start(ap, fmt);
    if (it != NULL)
        report(o, it->line, it->col, key, fmt, ap);
    else
        report(o, o->line, o->col, key, fmt, ap);
    va_end(ap);
    return FERRY_EINVAL;
}

void
ferry_opts_set_errlist(struct ferry_opts *o, struct ferry_errlist *errs)
{
    o->errs = errs;
}

void
ferry_opts_check_unused(struct ferry_opts *o)
{
    const char *cands[OPTS_MAX_ASKED + 16];
    size_t      nc = 0;

    for (size_t i = 0; i < conf_listener_core_nkeys; i++)
        cands[nc++] = conf_listener_core_keys[i];
    for (size_t i = 0; i < o->nasked; i++)
        cands[nc++] = o->asked[i];
    for (size_t i = 0; i < o->n; i++) {
        struct opt *it = &o->items[i];
        const char *s;

        if (it->used || it->reported)
            continue;
        it->reported = true;
        if (o->errs == NULL)
            continue;
        if ((s = ferry_suggest(it->key, cands, nc, 2)) != NULL)
            ferry_errlist_add(o->errs, o->file, it->line, it->col,
                              "listeners[%d]: unknown key '%s' (did you mean '%s'?)",
                              o->index, it->key, s);
        else
            ferry_errlist_add(o->errs, o->file, it->line, it->col,
                              "listeners[%d]: unknown key '%s'", o->index, it->key);
    }
}
