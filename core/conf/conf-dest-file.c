/*
 * conf-dest-file.c: writing destination files, the other half of conf-dest.c.
 *
 * The admin API (core/admin/dest-change.c) creates, replaces and removes files in
 * destinations_dir. This file renders one destination as YAML that the loader reads
 * back to exactly the same values, and replaces files atomically (temp file, fsync,
 * rename, fsync of the directory), so a crash leaves the old file or the new one,
 * never half of either. Main thread only: blocking file I/O.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf-int.h"

struct out_buf {
    char  *p;      /* owns */
    size_t len, cap;
    bool   failed;
};

static int
out_add(void *arg, unsigned char *data, size_t n)
{
    struct out_buf *b = arg;

    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 1024 : b->cap;
        char  *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        if ((p = malloc(cap)) == NULL) {
            b->failed = true;
            return 0;
        }
        if (b->p != NULL) {
            memcpy(p, b->p, b->len);
            explicit_bzero(b->p, b->cap);      /* values may be passwords */
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 1;
}

static void
out_free(struct out_buf *b)
{
    if (b->p != NULL)
        explicit_bzero(b->p, b->cap);
    free(b->p);
}

/* The value with every "${" written "$${": the loader expands references, and a value
 * that came through the API is literal text, never a reference to a file or variable. */
static char *
escape_refs(const char *v)
{
    size_t n = 0, len = strlen(v);
    char  *out, *o;

    for (const char *p = v; (p = strstr(p, "${")) != NULL; p += 2)
        n++;
    if ((out = malloc(len + n + 1)) == NULL)
        return NULL;
    o = out;
    for (const char *p = v; *p != '\0'; p++) {
        if (p[0] == '$' && p[1] == '{')
            *o++ = '$';
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

static int
emit_scalar(yaml_emitter_t *em, const char *s, bool quoted)
{
    yaml_event_t ev;

    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s),
                                      !quoted, 1, quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                                         : YAML_ANY_SCALAR_STYLE))
        return -1;
    return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

int
ferry_conf_dest_render(const char *const *keys, const char *const *values, size_t n,
                       const char *comment, char **out, size_t *len, struct ferry_err *err)
{
    struct out_buf b = {0};
    yaml_emitter_t em;
    yaml_event_t   ev;
    int            ok;

    *out = NULL;
    if (!yaml_emitter_initialize(&em))
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    yaml_emitter_set_output(&em, out_add, &b);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);           /* never fold a long value */
    if (comment != NULL) {
        unsigned char hash[] = "# ";

        out_add(&b, hash, 2);
        out_add(&b, (unsigned char *)comment, strlen(comment));
        out_add(&b, (unsigned char *)"\n", 1);
    }
    ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)
         && yaml_emitter_emit(&em, &ev)
         && yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)
         && yaml_emitter_emit(&em, &ev)
         && yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)
         && yaml_emitter_emit(&em, &ev);
    for (size_t i = 0; ok && i < n; i++) {
        char *v = escape_refs(values[i]);

        ok = v != NULL && emit_scalar(&em, keys[i], false) == 0 && emit_scalar(&em, v, true) == 0;
        if (v != NULL) {
            explicit_bzero(v, strlen(v));
            free(v);
        }
    }
    ok = ok && yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev)
         && yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev)
         && yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev)
         && yaml_emitter_flush(&em);
    yaml_emitter_delete(&em);
    if (!ok || b.failed) {
        out_free(&b);
        return ferry_err_set(err, b.failed ? FERRY_ENOMEM : FERRY_EINVAL,
                             b.failed ? "out of memory" : "cannot write the properties as YAML");
    }
    *out = b.p;
    *len = b.len;
    return FERRY_OK;
}

int
ferry_conf_file_read(const char *path, char **out, size_t *len, struct ferry_err *err)
{
    return conf_file_read(path, CONF_MAX_FILE_BYTES, out, len, err);
}

static int
sync_dir(const char *dir, struct ferry_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = FERRY_OK;

    if (fd < 0)
        return ferry_err_set(err, FERRY_EIO, "%s: %s", dir, strerror(errno));
    if (fsync(fd) != 0)
        rc = ferry_err_set(err, FERRY_EIO, "%s: fsync: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int
ferry_conf_file_replace(const char *path, const char *data, size_t len, unsigned mode,
                        struct ferry_err *err)
{
    char       *dir = conf_dirname(path), *tmp = NULL;
    const char *base = strrchr(path, '/');
    struct stat st;
    size_t      n, off = 0;
    int         fd = -1, rc = FERRY_EIO;

    base = base != NULL ? base + 1 : path;
    n = (dir != NULL ? strlen(dir) : 0) + strlen(base) + 16;
    if (dir == NULL || (tmp = malloc(n)) == NULL) {
        rc = ferry_err_set(err, FERRY_ENOMEM, "out of memory");
        goto out;
    }
    /* A dot file: the loader skips it if we die before the rename. */
    snprintf(tmp, n, "%s/.%s.XXXXXX", dir, base);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        ferry_err_set(err, FERRY_EIO, "%s: cannot create a temporary file: %s", dir,
                      strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    if (mode == 0)
        mode = stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0600;
    if (fchmod(fd, (mode_t)mode) != 0) {
        ferry_err_set(err, FERRY_EIO, "%s: chmod: %s", tmp, strerror(errno));
        goto out;
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            ferry_err_set(err, FERRY_EIO, "%s: write: %s", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        ferry_err_set(err, FERRY_EIO, "%s: fsync: %s", tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        ferry_err_set(err, FERRY_EIO, "%s: rename: %s", path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;                 /* renamed: nothing to clean up */
    rc = sync_dir(dir, err);
out:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    return rc;
}

/* ".<name>.XXXXXX": what ferry_conf_file_replace's mkostemp makes. */
static bool
is_replace_temp(const char *name)
{
    size_t n = strlen(name);

    if (name[0] != '.' || n < 9 || name[n - 7] != '.')
        return false;
    for (size_t i = n - 6; i < n; i++)
        if (!isalnum((unsigned char)name[i]))
            return false;
    return true;
}

int
ferry_conf_dir_sweep_temp(const char *dir, unsigned min_age_s, unsigned *removed)
{
    DIR           *dp = opendir(dir);
    struct dirent *de;
    time_t         now = time(NULL);

    *removed = 0;
    if (dp == NULL)
        return errno == ENOENT ? FERRY_OK : FERRY_EIO;
    while ((de = readdir(dp)) != NULL) {
        struct stat st;

        if (!is_replace_temp(de->d_name) ||
            fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) || now - st.st_mtime < (time_t)min_age_s)
            continue;
        if (unlinkat(dirfd(dp), de->d_name, 0) == 0)
            (*removed)++;
    }
    closedir(dp);
    return FERRY_OK;
}

int
ferry_conf_file_remove(const char *path, struct ferry_err *err)
{
    char *dir;
    int   rc;

    if (unlink(path) != 0)
        return ferry_err_set(err, FERRY_EIO, "%s: %s", path, strerror(errno));
    if ((dir = conf_dirname(path)) == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    rc = sync_dir(dir, err);
    free(dir);
    return rc;
}
