/*
 * errlist.c: collecting config errors and warnings, and the "did you mean" helpers.
 *
 * Every message carries file, line and column separately; printing joins them as
 * `file:line:col: message`. Loading runs in phases (top-level keys, tenants,
 * destinations, listeners, policies, then each plugin's options), each reporting at
 * its own time, so the list sorts as it goes: an operator reads the errors top to
 * bottom of each file, whichever phase found them. The list is bounded
 * (FERRY_ERRLIST_MAX): it keeps the first ones in that order and counts the rest,
 * so the operator still learns how many there were.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/errlist.h"

/* FNV-1a: the list remembers which files it met without storing their names. */
static uint64_t
name_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

/* The file's place: 0 for the first file met, 1 for the next... Files met after the
 * table is full share the last place and keep the order their errors came in. */
static unsigned
file_place(struct ferry_errlist *l, const char *file)
{
    uint64_t h = name_hash(file != NULL ? file : "");

    for (unsigned i = 0; i < l->nfiles; i++)
        if (l->files[i] == h)
            return i;
    if (l->nfiles < FERRY_ERRLIST_MAX_FILES) {
        l->files[l->nfiles] = h;
        return l->nfiles++;
    }
    return FERRY_ERRLIST_MAX_FILES;
}

void
ferry_errlist_file(struct ferry_errlist *l, const char *file)
{
    if (l != NULL)
        file_place(l, file);
}

/* Does item i come after (place, line, col)? Equal keys keep the order reported. */
static bool
is_after(const struct ferry_errlist *l, int i, unsigned place, int line, int col)
{
    if (l->place[i] != place)
        return l->place[i] > place;
    if (l->items[i].line != line)
        return l->items[i].line > line;
    return l->items[i].col > col;
}

void
ferry_errlist_reset(struct ferry_errlist *l)
{
    l->count = 0;
    l->dropped = 0;
    l->nfiles = 0;
}

void
ferry_errlist_add(struct ferry_errlist *l, const char *file, int line, int col,
                  const char *fmt, ...)
{
    struct ferry_err *e;
    va_list           ap;
    unsigned          place;
    int               at;

    if (l == NULL)
        return;
    place = file_place(l, file);
    for (at = l->count; at > 0 && is_after(l, at - 1, place, line, col); at--)
        ;
    if (l->count >= FERRY_ERRLIST_MAX) {
        l->dropped++;               /* this one or the last kept one: the later in order */
        if (at == l->count)
            return;
        l->count--;
    }
    memmove(&l->items[at + 1], &l->items[at], (size_t)(l->count - at) * sizeof(l->items[0]));
    memmove(&l->place[at + 1], &l->place[at], (size_t)(l->count - at) * sizeof(l->place[0]));
    l->count++;
    l->place[at] = place;
    e = &l->items[at];
    va_start(ap, fmt);
    ferry_err_vset(e, FERRY_EINVAL, fmt, ap);
    va_end(ap);
    e->line = line;
    e->col = col;
    snprintf(e->file, sizeof(e->file), "%s", file != NULL ? file : "");
}

void
ferry_errlist_print(const struct ferry_errlist *l, FILE *fp, bool is_warning)
{
    const char *prefix = is_warning ? "warning: " : "";

    for (int i = 0; i < l->count; i++) {
        const struct ferry_err *e = &l->items[i];

        if (e->file[0] != '\0' && e->line > 0)
            fprintf(fp, "%s%s:%d:%d: %s\n", prefix, e->file, e->line, e->col, e->msg);
        else if (e->file[0] != '\0')
            fprintf(fp, "%s%s: %s\n", prefix, e->file, e->msg);
        else
            fprintf(fp, "%s%s\n", prefix, e->msg);
    }
    if (l->dropped > 0)
        fprintf(fp, "ferry: %d %s shown, %d more not shown\n", l->count,
                is_warning ? "warnings" : "errors", l->dropped);
}

/* Optimal string alignment distance (a swap of two neighbours is one edit), stopping
 * early once every path costs more than max. */
int
ferry_edit_distance(const char *a, const char *b, int max)
{
    enum { N = 64 };
    size_t la = strlen(a), lb = strlen(b);
    int    rows[3][N + 1];
    int   *pp = rows[0], *prev = rows[1], *cur = rows[2];

    if (max < 0)
        max = 0;
    if (la > N || lb > N) {                 /* long names: only exact matters */
        return strcmp(a, b) == 0 ? 0 : max + 1;
    }
    if ((la > lb ? la - lb : lb - la) > (size_t)max)
        return max + 1;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int best;

        cur[0] = (int)i;
        best = cur[0];
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int v = prev[j - 1] + cost;

            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
            if (v < best)
                best = v;
        }
        if (best > max)
            return max + 1;
        int *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] > max ? max + 1 : prev[lb];
}

const char *
ferry_suggest(const char *word, const char *const *cands, size_t n, int max)
{
    const char *best = NULL;
    int         best_d = max + 1;

    for (size_t i = 0; i < n; i++) {
        int d;

        if (cands[i] == NULL)
            continue;
        d = ferry_edit_distance(word, cands[i], max);
        if (d < best_d && d > 0) {
            best = cands[i];
            best_d = d;
        }
    }
    return best;
}
