/*
 * errlist.c: collecting config errors and warnings, and the "did you mean" helpers.
 *
 * Every message carries file, line and column separately; printing joins them as
 * `file:line:col: message`. The list is bounded (FERRY_CONF_MAX_ERRORS): the rest is
 * counted so the operator still learns how many there were.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf-int.h"

void
ferry_errlist_add(struct ferry_errlist *l, const char *file, int line, int col,
                  const char *fmt, ...)
{
    struct ferry_err *e;
    va_list           ap;

    if (l == NULL)
        return;
    if (l->count >= FERRY_CONF_MAX_ERRORS) {
        l->dropped++;
        return;
    }
    e = &l->items[l->count++];
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
        fprintf(fp, "%sand %d more %s\n", prefix, l->dropped,
                is_warning ? "warnings" : "errors");
}

/* Optimal string alignment distance (a swap of two neighbours is one edit), stopping
 * early once every path costs more than max. */
int
ferry_conf_edit_distance(const char *a, const char *b, int max)
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
ferry_conf_suggest(const char *word, const char *const *cands, size_t n, int max)
{
    const char *best = NULL;
    int         best_d = max + 1;

    for (size_t i = 0; i < n; i++) {
        int d;

        if (cands[i] == NULL)
            continue;
        d = ferry_conf_edit_distance(word, cands[i], max);
        if (d < best_d && d > 0) {
            best = cands[i];
            best_d = d;
        }
    }
    return best;
}
