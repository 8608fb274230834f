/*
 * errlist.h: a bounded list of errors (or warnings) with file, line and column, and
 * the "did you mean" helpers. Every room that validates input reports through it:
 * dest (properties), conf (YAML), lua (scripts), the plugins' options.
 */
#ifndef FERRY_UTIL_ERRLIST_H
#define FERRY_UTIL_ERRLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <ferry/err.h>

#define FERRY_ERRLIST_MAX       20  /* errors kept; the rest are only counted */
#define FERRY_ERRLIST_MAX_FILES 64  /* files ordered apart; later ones share a place */

/* Errors (or warnings) collected while loading, kept in file order: files in the order
 * they were met (ferry_errlist_file() puts the main file first; any other file takes
 * its place with its first error, which is when it is read), then line, then column,
 * then the order reported. Past the cap the list keeps the first FERRY_ERRLIST_MAX in
 * that order, whichever phase found them, and counts the rest. */
struct ferry_errlist {
    struct ferry_err items[FERRY_ERRLIST_MAX];      /* sorted as above */
    int              count;
    int              dropped;   /* past the cap; reported as "N more not shown" */
    unsigned         place[FERRY_ERRLIST_MAX];      /* items[i]'s file in the order */
    uint64_t         files[FERRY_ERRLIST_MAX_FILES];    /* hashes of names, in order met */
    unsigned         nfiles;
};

/* Empty the list again, cheaply (it is large: a caller validating many things in a row
 * keeps one and resets it rather than zeroing a new one each time). */
void ferry_errlist_reset(struct ferry_errlist *l);

/* Add in file order; file may be NULL, line/col 1-based (0 = the whole file, first). */
void ferry_errlist_add(struct ferry_errlist *l, const char *file, int line, int col,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Give file its place in the order now, before any error names it (the main file). */
void ferry_errlist_file(struct ferry_errlist *l, const char *file);
/* Print as `file:line:col: message` lines (prefix "warning: " if is_warning), then
 * `ferry: 20 errors shown, N more not shown` if some were dropped. */
void ferry_errlist_print(const struct ferry_errlist *l, FILE *fp, bool is_warning);

/* Edit distance capped at max+1 (for "did you mean"). */
int  ferry_edit_distance(const char *a, const char *b, int max);

/* The candidate closest to word within max edits (not word itself), or NULL. */
const char *ferry_suggest(const char *word, const char *const *cands, size_t n, int max);

#endif
