/*
 * conf-yaml.c: libyaml documents as the conf room reads them: loading with syntax
 * errors at their position, scalars with secret references expanded, and the walker
 * that checks a mapping against a schema table (STYLE §8). Positions in libyaml are
 * 0-based; everything reported here is 1-based.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf-int.h"

void
conf_error(const struct conf_ctx *c, const yaml_node_t *n, const char *where,
           const char *fmt, ...)
{
    char    msg[sizeof(((struct ferry_err *)0)->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ferry_errlist_add(c->errs, c->file, n != NULL ? (int)n->start_mark.line + 1 : 0,
                      n != NULL ? (int)n->start_mark.column + 1 : 0, "%s%s%s",
                      where != NULL && *where != '\0' ? where : "",
                      where != NULL && *where != '\0' ? ": " : "", msg);
}

int
conf_file_read(const char *path, size_t cap, char **out, size_t *len, struct ferry_err *err)
{
    struct stat st;
    char       *buf = NULL;
    size_t      n = 0;
    int         fd, rc = FERRY_EIO;

    *out = NULL;
    *len = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return ferry_err_set(err, FERRY_EIO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = ferry_err_set(err, FERRY_EIO, "%s is a directory, not a file", path);
        goto out;
    }
    if ((buf = malloc(cap + 1)) == NULL) {
        rc = ferry_err_set(err, FERRY_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, cap + 1 - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ferry_err_set(err, FERRY_EIO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > cap) {
            rc = ferry_err_set(err, FERRY_ELIMIT, "%s is larger than %zu bytes", path, cap);
            goto out;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = FERRY_OK;
out:
    free(buf);
    close(fd);
    return rc;
}

int
conf_doc_load(const char *text, size_t len, const char *file, struct ferry_errlist *errs,
              yaml_document_t *doc)
{
    yaml_parser_t   parser;
    yaml_document_t extra;
    int             rc = FERRY_OK;

    if (!yaml_parser_initialize(&parser)) {
        ferry_errlist_add(errs, file, 0, 0, "out of memory");
        return FERRY_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, doc)) {
        ferry_errlist_add(errs, file, (int)parser.problem_mark.line + 1,
                          (int)parser.problem_mark.column + 1, "YAML syntax error: %s%s%s",
                          parser.problem != NULL ? parser.problem : "unknown",
                          parser.context != NULL ? " " : "",
                          parser.context != NULL ? parser.context : "");
        yaml_parser_delete(&parser);
        return FERRY_EINVAL;
    }
    /* One document per file: a second one is almost surely a stray "---". */
    if (yaml_parser_load(&parser, &extra)) {
        yaml_node_t *root = yaml_document_get_root_node(&extra);

        if (root != NULL) {
            ferry_errlist_add(errs, file, (int)extra.start_mark.line + 1,
                              (int)extra.start_mark.column + 1,
                              "a second YAML document: put everything in one");
            rc = FERRY_EINVAL;
        }
        yaml_document_delete(&extra);
    } else {
        ferry_errlist_add(errs, file, (int)parser.problem_mark.line + 1,
                          (int)parser.problem_mark.column + 1, "YAML syntax error: %s",
                          parser.problem != NULL ? parser.problem : "unknown");
        rc = FERRY_EINVAL;
    }
    yaml_parser_delete(&parser);
    if (rc != FERRY_OK)
        yaml_document_delete(doc);
    return rc;
}

char *
conf_path_join(const char *dir, const char *rel)
{
    char  *p;
    size_t n;

    if (rel[0] == '/' || dir == NULL || dir[0] == '\0' || strcmp(dir, ".") == 0)
        return strdup(rel);
    n = strlen(dir) + strlen(rel) + 2;
    if ((p = malloc(n)) == NULL)
        return NULL;
    snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel);
    return p;
}

char *
conf_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

yaml_node_t *
conf_node(const struct conf_ctx *c, int index)
{
    return yaml_document_get_node(c->doc, index);
}

const char *
conf_text(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)n->data.scalar.value;
}

const yaml_node_t *
conf_value(const struct conf_ctx *c, const yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        const char *k = conf_text(conf_node(c, p->key));

        if (k != NULL && strcmp(k, key) == 0)
            return conf_node(c, p->value);
    }
    return NULL;
}

static const char *
node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:  return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default:                 return "a scalar";
    }
}

int
conf_scalar(const struct conf_ctx *c, const yaml_node_t *n, const char *where,
            const char *key, char **out, bool *secret)
{
    struct ferry_err err = {0};
    const char      *text = conf_text(n);
    char             pre[160];
    int              rc;

    *out = NULL;
    *secret = false;
    snprintf(pre, sizeof(pre), "%s%s%s", where != NULL ? where : "",
             where != NULL && *where != '\0' && key != NULL ? ": " : "",
             key != NULL ? key : "");
    if (text == NULL) {
        conf_error(c, n, pre, "want a single value, not %s", node_kind(n));
        return FERRY_EINVAL;
    }
    if (strlen(text) != n->data.scalar.length) {
        conf_error(c, n, pre, "contains a NUL byte");
        return FERRY_EINVAL;
    }
    if ((rc = ferry_conf_expand(text, c->dir, out, secret, &err)) != FERRY_OK) {
        conf_error(c, n, pre, "%s", err.msg);
        return rc;
    }
    return FERRY_OK;
}

static int
parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return -1;
    }
    if (v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int
store(const struct conf_ctx *c, const struct conf_key *k, const yaml_node_t *val,
      const char *where, void *obj)
{
    char            *s = NULL;
    char           **slot = (char **)((char *)obj + k->off);
    bool             secret;
    struct ferry_err err = {0};
    struct sockaddr_storage ss;
    socklen_t        sl;

    if (k->type == CONF_NODE) {
        *(const yaml_node_t **)((char *)obj + k->off) = val;
        return 0;
    }
    if (k->type == CONF_LATER)          /* the caller reads it with conf_value() */
        return 0;
    if (conf_scalar(c, val, where, k->key, &s, &secret) != FERRY_OK)
        return 1;
    if (*s == '\0') {
        conf_error(c, val, where, "%s: must not be empty", k->key);
        free(s);
        return 1;
    }
    switch (k->type) {
    case CONF_U32:
        if (parse_u32(s, k->min, k->max, (uint32_t *)slot) != 0) {
            conf_error(c, val, where, "%s: want a whole number from %u to %u%s%s%s", k->key,
                       k->min, k->max, secret ? "" : ", not '", secret ? "" : s,
                       secret ? "" : "'");
            free(s);
            return 1;
        }
        free(s);
        return 0;
    case CONF_ADDR:
        if (ferry_addr_parse(s, &ss, &sl, &err) != FERRY_OK) {
            conf_error(c, val, where, "%s: %s", k->key, secret ? "not host:port" : err.msg);
            free(s);
            return 1;
        }
        break;
    case CONF_PATH: {
        char *full = conf_path_join(c->dir, s);

        free(s);
        if ((s = full) == NULL) {
            conf_error(c, val, where, "out of memory");
            return 1;
        }
        break;
    }
    default:
        break;
    }
    free(*slot);
    *slot = s;
    return 0;
}

/* Remember unknown keys handed to pass(), to explain a missing required key. */
#define CONF_MAX_PASSED 64

int
conf_mapping(const struct conf_ctx *c, const yaml_node_t *map, const char *where,
             const struct conf_key *keys, void *obj, conf_pass_fn pass, void *arg)
{
    const yaml_node_t *passed[CONF_MAX_PASSED];
    const char        *names[64];
    const char        *suggested[64];     /* keys an unknown key was told it may mean */
    bool               seen[64] = {0};
    size_t             nkeys = 0, npassed = 0, nsuggested = 0;
    int                nerr = 0;

    while (keys[nkeys].key != NULL && nkeys < 64) {
        names[nkeys] = keys[nkeys].key;
        nkeys++;
    }
    if (map->type != YAML_MAPPING_NODE) {
        conf_error(c, map, where, "want a mapping (key: value), not %s", node_kind(map));
        return 1;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *kn = conf_node(c, p->key), *vn = conf_node(c, p->value);
        const char        *key = conf_text(kn);
        size_t             i;
        bool               dup = false;

        if (key == NULL) {
            conf_error(c, kn, where, "keys must be plain words, not %s", node_kind(kn));
            nerr++;
            continue;
        }
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            const yaml_node_t *qk = conf_node(c, q->key);
            const char        *qt = conf_text(qk);

            if (qt != NULL && strcmp(qt, key) == 0) {
                conf_error(c, kn, where, "duplicate key '%s' (first at line %d)", key,
                           (int)qk->start_mark.line + 1);
                dup = true;
                break;
            }
        }
        if (dup) {
            nerr++;
            continue;
        }
        for (i = 0; i < nkeys && strcmp(keys[i].key, key) != 0; i++)
            ;
        if (i < nkeys) {
            seen[i] = true;
            nerr += store(c, &keys[i], vn, where, obj);
        } else if (pass != NULL) {
            if (npassed < CONF_MAX_PASSED)
                passed[npassed++] = kn;
            nerr += pass(arg, kn, vn);
        } else {
            const char *s = ferry_suggest(key, names, nkeys, 2);

            if (s != NULL)
                conf_error(c, kn, where, "unknown key '%s' (did you mean '%s'?)", key, s);
            else
                conf_error(c, kn, where, "unknown key '%s'", key);
            if (s != NULL && nsuggested < 64)
                suggested[nsuggested++] = s;
            nerr++;
        }
    }
    for (size_t i = 0; i < nkeys; i++) {
        const yaml_node_t *near = NULL;
        bool               told = false;

        if (!keys[i].required || seen[i])
            continue;
        for (size_t j = 0; j < nsuggested && !told; j++)
            told = strcmp(suggested[j], keys[i].key) == 0;
        if (told) {                 /* "did you mean" it already: one mistake, one error */
            nerr++;
            continue;
        }
        for (size_t j = 0; j < npassed && near == NULL; j++)
            if (ferry_edit_distance(conf_text(passed[j]), keys[i].key, 2) <= 2)
                near = passed[j];
        if (near != NULL)
            conf_error(c, near, where, "unknown key '%s' (did you mean '%s'?)",
                       conf_text(near), keys[i].key);
        else
            conf_error(c, map, where, "missing required key '%s'", keys[i].key);
        nerr++;
    }
    return nerr;
}
