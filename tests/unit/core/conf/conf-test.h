/*
 * conf-test.h: helpers the conf and dest unit tests share: find an error by
 * position and text, check no message leaks a value, and throwaway directories.
 */
#ifndef FERRY_TEST_CONF_H
#define FERRY_TEST_CONF_H

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"

/* Is there an item at line:col (0 = any) whose message contains text? */
static inline bool
errs_have(const struct ferry_errlist *l, int line, int col, const char *text)
{
    for (int i = 0; i < l->count; i++) {
        const struct ferry_err *e = &l->items[i];

        if ((line == 0 || e->line == line) && (col == 0 || e->col == col)
            && strstr(e->msg, text) != NULL)
            return true;
    }
    return false;
}

/* Does any message (or file name) contain text? */
static inline bool
errs_mention(const struct ferry_errlist *l, const char *text)
{
    for (int i = 0; i < l->count; i++)
        if (strstr(l->items[i].msg, text) != NULL || strstr(l->items[i].file, text) != NULL)
            return true;
    return false;
}

/* Print the list when a test fails, so the failure explains itself. */
static inline void
errs_dump(const struct ferry_errlist *l)
{
    if (getenv("FERRY_TEST_VERBOSE") != NULL)
        ferry_errlist_print(l, stderr, false);
}

/* Free *conf and load text as "t.yaml" into it, with errs cleared first. */
static inline int
conf_test_load(const char *text, struct ferry_conf **conf, struct ferry_errlist *errs)
{
    int rc;

    memset(errs, 0, sizeof(*errs));
    ferry_conf_free(*conf);
    *conf = NULL;
    rc = ferry_conf_load_string(text, "t.yaml", conf, errs);
    errs_dump(errs);
    return rc;
}

static inline char *
tmpdir_new(void)
{
    char tmpl[] = "/tmp/ferry-conf-test-XXXXXX";

    if (mkdtemp(tmpl) == NULL)
        return NULL;
    return strdup(tmpl);
}

/* Write dir/rel (parent directories of rel must exist or be created by mkdir_in). */
static inline bool
file_write(const char *dir, const char *rel, const char *text)
{
    char  path[1024];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    if ((fp = fopen(path, "w")) == NULL)
        return false;
    fputs(text, fp);
    return fclose(fp) == 0;
}

static inline bool
mkdir_in(const char *dir, const char *rel)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return mkdir(path, 0700) == 0;
}

static inline int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void
tmpdir_free(char *dir)
{
    if (dir != NULL)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

#endif
