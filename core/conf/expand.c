/*
 * expand.c: secret references inside config values.
 *
 *   ${env:NAME}   the environment variable NAME (must be set; may be empty)
 *   ${file:path}  the contents of a file, path relative to the file that names it;
 *                 one trailing newline ("\n" or "\r\n") is dropped
 *   $${           a literal "${" (so a value can contain the two characters)
 *
 * References may appear anywhere inside a scalar ("Bearer ${env:T}"). A value that
 * used one is secret. Errors name the reference, never what it expanded to, and never
 * quote the surrounding value (it may be an inline password).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"

struct sbuf {
    char  *p;      /* owns */
    size_t len, cap;
};

static int
sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 64 : b->cap;
        char  *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL)
            return FERRY_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return FERRY_OK;
}

static bool
is_env_name(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

static int
expand_env(struct sbuf *b, const char *name, size_t n, struct ferry_err *err)
{
    char        var[256];
    const char *v;

    if (!is_env_name(name, n) || n >= sizeof(var))
        return ferry_err_set(err, FERRY_EINVAL, "${env:%.*s}: not a variable name "
                             "(letters, digits, _)", (int)(n > 64 ? 64 : n), name);
    memcpy(var, name, n);
    var[n] = '\0';
    if ((v = getenv(var)) == NULL)
        return ferry_err_set(err, FERRY_EINVAL, "${env:%s} is not set", var);
    return sbuf_add(b, v, strlen(v));
}

static int
expand_file(struct sbuf *b, const char *path, size_t n, const char *base_dir,
            struct ferry_err *err)
{
    char  rel[1024];
    char *full = NULL, *data = NULL;
    size_t len = 0;
    int   rc;

    if (n == 0 || n >= sizeof(rel))
        return ferry_err_set(err, FERRY_EINVAL, "${file:%.*s}: want a file path",
                             (int)(n > 64 ? 64 : n), path);
    memcpy(rel, path, n);
    rel[n] = '\0';
    if ((full = conf_path_join(base_dir, rel)) == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    rc = conf_file_read(full, CONF_MAX_SECRET_BYTES, &data, &len, err);
    if (rc != FERRY_OK) {
        /* err->msg names the resolved path and the cause; say which reference. */
        char cause[sizeof(err->msg)];

        snprintf(cause, sizeof(cause), "%s", err != NULL ? err->msg : "");
        ferry_err_set(err, rc, "${file:%s}: %s", rel, cause);
        goto out;
    }
    if (memchr(data, '\0', len) != NULL) {
        rc = ferry_err_set(err, FERRY_EINVAL, "${file:%s}: contains a NUL byte", rel);
        goto out;
    }
    if (len > 0 && data[len - 1] == '\n') {
        len--;
        if (len > 0 && data[len - 1] == '\r')
            len--;
    }
    rc = sbuf_add(b, data, len);
out:
    if (data != NULL) {
        explicit_bzero(data, len);
        free(data);
    }
    free(full);
    return rc;
}

int
ferry_conf_expand(const char *value, const char *base_dir, char **out, bool *secret,
                  struct ferry_err *err)
{
    struct sbuf b = {0};
    const char *p = value;
    int         rc = FERRY_OK;

    *out = NULL;
    *secret = false;
    while (*p != '\0' && rc == FERRY_OK) {
        const char *ref, *end;

        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {      /* $${ → literal ${ */
            rc = sbuf_add(&b, "${", 2);
            p += 3;
            continue;
        }
        if (!(p[0] == '$' && p[1] == '{')) {
            size_t n = strcspn(p + 1, "$") + 1;

            rc = sbuf_add(&b, p, n);
            p += n;
            continue;
        }
        ref = p + 2;
        if ((end = strchr(ref, '}')) == NULL) {
            rc = ferry_err_set(err, FERRY_EINVAL, "unterminated '${' reference "
                               "(write $${ for a literal ${)");
            break;
        }
        if (strncmp(ref, "env:", 4) == 0) {
            rc = expand_env(&b, ref + 4, (size_t)(end - ref - 4), err);
        } else if (strncmp(ref, "file:", 5) == 0) {
            rc = expand_file(&b, ref + 5, (size_t)(end - ref - 5), base_dir, err);
        } else {
            size_t kind = strcspn(ref, ":}");

            if (ref[kind] == ':' && kind > 0 && kind < 16 && is_env_name(ref, kind))
                rc = ferry_err_set(err, FERRY_EINVAL, "unknown reference type '%.*s' "
                                   "(use ${env:NAME} or ${file:path}; $${ for a literal ${)",
                                   (int)kind, ref);
            else
                rc = ferry_err_set(err, FERRY_EINVAL, "'${' must start ${env:NAME} or "
                                   "${file:path} (write $${ for a literal ${)");
        }
        *secret = true;
        p = end + 1;
    }
    if (rc == FERRY_OK && b.p == NULL)
        rc = sbuf_add(&b, "", 0);
    if (rc != FERRY_OK) {
        if (b.p != NULL)
            explicit_bzero(b.p, b.cap);
        free(b.p);
        *secret = false;
        if (rc == FERRY_ENOMEM)
            ferry_err_set(err, rc, "out of memory");
        return rc;
    }
    *out = b.p;
    return FERRY_OK;
}
