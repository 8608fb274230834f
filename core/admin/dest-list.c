/*
 * dest-list.c: the lists of the destination API, GET subaccountDestinations and GET
 * instanceDestinations: the caller's tenant's destinations of that level, sorted by
 * Name, with the options SAP's Destination service takes:
 *
 *   $filter=Name eq 'a' or Type eq 'HTTP' and ProxyType ne 'OnPremise'
 *            equality (eq, ne) on any property, joined by and / or (and binds tighter,
 *            as in OData); values in single quotes, '' is a quote; no parentheses
 *   $select=Name            only these properties (a comma list) of each destination
 *   $page=N, $pageSize=M    page N (from 1) of M destinations (default 1 and 100, M at
 *                           most 1000); the answer says how many pages in Page-Count
 *   $pageCount=true         Page-Count without paging too (1 page, or 0 when empty)
 *   $entityCount=true       Entity-Count: how many destinations match the filter
 *
 * A malformed option is a 400 that names it. Nothing here logs a value.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "admin/admin-int.h"
#include "conf/conf.h"
#include "dest/dest-int.h"

#define FILTER_MAX_TERMS   32       /* comparisons in one $filter */
#define SELECT_MAX_PROPS   32       /* names in one $select */
#define PAGE_SIZE_DEFAULT  100
#define PAGE_SIZE_MAX      1000

/* One comparison of a $filter: key eq|ne 'value'; or_before: an "or" precedes it. */
struct term {
    char *key;          /* owns */
    char *value;        /* owns */
    bool  ne;
    bool  or_before;
};

struct list_opts {
    struct term  terms[FILTER_MAX_TERMS];
    size_t       nterms;
    char        *select;                        /* owns: the $select text, cut at commas */
    const char  *props[SELECT_MAX_PROPS];       /* borrowed from select */
    size_t       nprops;
    long         page, page_size;               /* page 0: no paging */
    bool         page_count, entity_count;
};

static void
opts_fini(struct list_opts *o)
{
    for (size_t i = 0; i < o->nterms; i++) {
        free(o->terms[i].key);
        free(o->terms[i].value);
    }
    free(o->select);
}

static const char *
skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A word (a property name or an operator): letters, digits and . - _ */
static size_t
word_len(const char *p)
{
    size_t n = 0;

    while (isalnum((unsigned char)p[n]) || p[n] == '.' || p[n] == '-' || p[n] == '_')
        n++;
    return n;
}

static bool
word_is(const char *p, size_t n, const char *w)
{
    return n == strlen(w) && strncasecmp(p, w, n) == 0;
}

/* $filter into o->terms; NULL or why not (static text). */
static const char *
filter_parse(const char *f, struct list_opts *o)
{
    const char *p = skip_space(f);
    bool        or_next = false;

    if (*p == '\0')
        return "$filter is empty";
    while (*p != '\0') {
        struct term *t;
        size_t       n = word_len(p), cap, len = 0;

        if (o->nterms == FILTER_MAX_TERMS)
            return "$filter: too many comparisons (at most 32)";
        if (n == 0)
            return "$filter: want <property> eq '<value>' (and / or between them)";
        t = &o->terms[o->nterms];
        if ((t->key = strndup(p, n)) == NULL)
            return "out of memory";
        t->or_before = or_next;
        o->nterms++;
        p = skip_space(p + n);
        n = word_len(p);
        if (word_is(p, n, "eq"))
            t->ne = false;
        else if (word_is(p, n, "ne"))
            t->ne = true;
        else
            return "$filter: only eq and ne compare (as in Name eq 'billing')";
        p = skip_space(p + n);
        if (*p != '\'')
            return "$filter: a value is a quoted string (as in Type eq 'HTTP')";
        p++;
        cap = strlen(p) + 1;
        if ((t->value = malloc(cap)) == NULL)
            return "out of memory";
        for (;;) {
            if (*p == '\0')
                return "$filter: a quoted value is not closed";
            if (*p == '\'' && p[1] == '\'') {
                t->value[len++] = '\'';
                p += 2;
            } else if (*p == '\'') {
                p++;
                break;
            } else {
                t->value[len++] = *p++;
            }
        }
        t->value[len] = '\0';
        p = skip_space(p);
        if (*p == '\0')
            break;
        n = word_len(p);
        if (word_is(p, n, "and"))
            or_next = false;
        else if (word_is(p, n, "or"))
            or_next = true;
        else
            return "$filter: join comparisons with and / or";
        p = skip_space(p + n);
        if (*p == '\0')
            return "$filter: a comparison is missing after and / or";
    }
    return NULL;
}

static bool
term_holds(const struct term *t, const struct ferry_dest *d)
{
    const char *v = strcmp(t->key, "level") == 0 ? NULL : ferry_dest_prop(d, t->key);
    bool        eq = v != NULL && strcmp(v, t->value) == 0;

    return t->ne ? !eq : eq;
}

/* OR of AND groups. */
static bool
filter_holds(const struct list_opts *o, const struct ferry_dest *d)
{
    bool group = true;

    if (o->nterms == 0)
        return true;
    for (size_t i = 0; i < o->nterms; i++) {
        if (o->terms[i].or_before) {
            if (group)
                return true;
            group = true;
        }
        group = group && term_holds(&o->terms[i], d);
    }
    return group;
}

/* A whole number from 1 to max, or -1. */
static long
positive(const char *s, long max)
{
    char *end;
    long  v;

    if (s == NULL || !isdigit((unsigned char)s[0]))
        return -1;
    v = strtol(s, &end, 10);
    return *end == '\0' && v >= 1 && v <= max ? v : -1;
}

/* The options of query into o; NULL or why not (static text). */
static const char *
opts_parse(const char *query, struct list_opts *o)
{
    char       *v;
    const char *bad = NULL;

    if ((v = admin_query_get(query, "$filter")) != NULL) {
        bad = filter_parse(v, o);
        free(v);
        if (bad != NULL)
            return bad;
    }
    if ((o->select = admin_query_get(query, "$select")) != NULL) {
        for (char *tok = o->select, *next; tok != NULL; tok = next) {
            if ((next = strchr(tok, ',')) != NULL)
                *next++ = '\0';
            tok = (char *)skip_space(tok);
            tok[word_len(tok)] = '\0';
            if (*tok == '\0')
                return "$select: want property names separated by commas (as in Name)";
            if (o->nprops == SELECT_MAX_PROPS)
                return "$select: at most 32 properties";
            o->props[o->nprops++] = tok;
        }
    }
    if ((v = admin_query_get(query, "$page")) != NULL) {
        o->page = positive(v, 1000000);
        free(v);
        if (o->page < 0)
            return "$page: want a whole number from 1";
    }
    if ((v = admin_query_get(query, "$pageSize")) != NULL) {
        o->page_size = positive(v, PAGE_SIZE_MAX);
        free(v);
        if (o->page_size < 0)
            return "$pageSize: want a whole number from 1 to 1000";
        if (o->page == 0)
            o->page = 1;
    }
    if (o->page > 0 && o->page_size == 0)
        o->page_size = PAGE_SIZE_DEFAULT;
    o->page_count = o->page > 0 || admin_query_true(query, "$pageCount");
    o->entity_count = admin_query_true(query, "$entityCount");
    return NULL;
}

static json_t *
selected(const struct list_opts *o, const struct ferry_dest *d)
{
    json_t *obj;

    if (o->nprops == 0)
        return admin_dest_json(d, false);
    if ((obj = json_object()) == NULL)
        return NULL;
    for (size_t i = 0; i < o->nprops; i++) {
        const char *v = strcmp(o->props[i], "level") == 0 ? NULL
                        : ferry_dest_prop(d, o->props[i]);

        if (v != NULL && json_object_set_new(obj, o->props[i], json_string(v)) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static void
count_header(struct evhttp_request *req, const char *name, size_t n)
{
    char v[32];

    snprintf(v, sizeof(v), "%zu", n);
    evhttp_add_header(evhttp_request_get_output_headers(req), name, v);
}

void
admin_dest_list(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
                bool instance, const char *query)
{
    const struct ferry_registry *reg = a->st->conf->registry;
    struct list_opts             o;
    const char                  *bad;
    json_t                      *arr;
    size_t                       matched = 0, first = 0, last = SIZE_MAX;

    memset(&o, 0, sizeof(o));
    if ((bad = opts_parse(query, &o)) != NULL) {
        admin_reply_error(req, strcmp(bad, "out of memory") == 0 ? 500 : 400, "%s", bad);
        opts_fini(&o);
        return;
    }
    if (o.page > 0) {
        first = (size_t)(o.page - 1) * (size_t)o.page_size;
        last = first + (size_t)o.page_size;
    }
    admin_dest_list_etag(a, req);
    arr = json_array();
    for (size_t i = 0; arr != NULL && reg != NULL && i < reg->n; i++) {
        const struct ferry_dest *d = &reg->dests[i];

        if (d->instance != instance || strcmp(d->tenant, tenant) != 0 || !filter_holds(&o, d))
            continue;
        if (matched >= first && matched < last &&
            json_array_append_new(arr, selected(&o, d)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
        matched++;
    }
    if (o.page_count)
        count_header(req, "Page-Count", o.page > 0 ? (matched + (size_t)o.page_size - 1) /
                                                     (size_t)o.page_size
                                                   : matched > 0);
    if (o.entity_count)
        count_header(req, "Entity-Count", matched);
    opts_fini(&o);
    admin_reply_json(req, 200, arr);
}
