/*
 * conf-dest.c: destinations from the config: the inline `destinations:` list and one
 * mapping per *.yaml / *.yml file in `destinations_dir`. Turns each YAML mapping into
 * SAP properties (secret references expanded, positions kept) and hands them to the
 * dest room, which validates them and builds the registry.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf/conf-int.h"
#include "dest/dest-int.h"

/* Bounds: a destination with more properties, or a directory with more files, is a
 * mistake (or an attack on the loader), not a configuration. */
#define CONF_MAX_DEST_PROPS 512
#define CONF_MAX_DEST_FILES 10000

struct dest_acc {
    struct ferry_dest *dests;   /* owns: validated ones */
    size_t             n;
    char             **names;   /* owns: every Name seen, valid or not */
    size_t             nnames;
    int                rc;
};

static int
remember_name(struct dest_acc *acc, const char *name)
{
    char **names = realloc(acc->names, (acc->nnames + 1) * sizeof(*names));

    if (names == NULL)
        return FERRY_ENOMEM;
    acc->names = names;
    if ((names[acc->nnames] = strdup(name)) == NULL)
        return FERRY_ENOMEM;
    acc->nnames++;
    return FERRY_OK;
}

static void
free_props(struct ferry_prop *props, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (props[i].secret && props[i].value != NULL)
            explicit_bzero(props[i].value, strlen(props[i].value));
        free(props[i].key);
        free(props[i].value);
    }
    free(props);
}

/* One destination mapping. `label` names it when it has no usable Name. */
static void
dest_from_node(const struct conf_ctx *c, const yaml_node_t *map, const char *label,
               const struct ferry_dest_env *env, struct dest_acc *acc)
{
    struct ferry_prop *props = NULL;
    size_t             n = 0, npairs;
    const char        *name = conf_text(conf_value(c, map, "Name"));
    char               where[256];
    struct ferry_dest  d;
    int                bad = 0, rc;

    if (map->type != YAML_MAPPING_NODE) {
        conf_error(c, map, label, "a destination is a mapping of properties (Name: ..., "
                   "Type: ...)");
        acc->rc = FERRY_EINVAL;
        return;
    }
    if (name != NULL && *name != '\0' && strstr(name, "${") == NULL)
        snprintf(where, sizeof(where), "destination '%s'", name);
    else
        snprintf(where, sizeof(where), "%s", label);
    npairs = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (npairs > CONF_MAX_DEST_PROPS) {
        conf_error(c, map, where, "more than %d properties", CONF_MAX_DEST_PROPS);
        acc->rc = FERRY_EINVAL;
        return;
    }
    if (npairs > 0 && (props = calloc(npairs, sizeof(*props))) == NULL) {
        conf_error(c, map, where, "out of memory");
        acc->rc = FERRY_ENOMEM;
        return;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *kn = conf_node(c, p->key), *vn = conf_node(c, p->value);
        const char        *key = conf_text(kn);
        bool               dup = false;

        if (key == NULL) {
            conf_error(c, kn, where, "property names must be plain words");
            bad++;
            continue;
        }
        for (size_t i = 0; i < n && !dup; i++) {
            if (strcmp(props[i].key, key) == 0) {
                conf_error(c, kn, where, "property '%s' given twice (first at line %d)", key,
                           props[i].line);
                dup = true;
            }
        }
        if (dup) {
            bad++;
            continue;
        }
        props[n].line = (int)kn->start_mark.line + 1;
        props[n].col = (int)kn->start_mark.column + 1;
        if ((props[n].key = strdup(key)) == NULL) {
            conf_error(c, kn, where, "out of memory");
            bad++;
            continue;
        }
        if (conf_scalar(c, vn, where, key, &props[n].value, &props[n].secret) != FERRY_OK) {
            free(props[n].key);
            props[n].key = NULL;
            bad++;
            continue;
        }
        n++;
    }
    if (name != NULL && *name != '\0' && remember_name(acc, name) != FERRY_OK) {
        free_props(props, n);
        conf_error(c, map, where, "out of memory");
        acc->rc = FERRY_ENOMEM;
        return;
    }
    if (bad > 0) {              /* reported; validating the rest would only add noise */
        free_props(props, n);
        acc->rc = FERRY_EINVAL;
        return;
    }
    rc = ferry_dest_init(&d, props, n, c->file, c->dir, (int)map->start_mark.line + 1,
                         (int)map->start_mark.column + 1, env);
    if (rc != FERRY_OK) {
        ferry_dest_fini(&d);
        acc->rc = rc;
        return;
    }
    struct ferry_dest *grown = realloc(acc->dests, (acc->n + 1) * sizeof(*grown));

    if (grown == NULL) {
        ferry_dest_fini(&d);
        conf_error(c, map, where, "out of memory");
        acc->rc = FERRY_ENOMEM;
        return;
    }
    acc->dests = grown;
    acc->dests[acc->n++] = d;               /* moved */
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
is_dest_file(const char *name)
{
    size_t n = strlen(name);

    if (name[0] == '.')
        return false;
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0)
           || (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

/* One destination file's text (path names it in messages; relative references resolve
 * against dir). Split from dest_file so a text that never was a file (a fuzzer's input,
 * ferry_conf_dest_from_text) goes through the same validation. */
static void
dest_text(const struct conf_ctx *c, const char *dir, const char *path, const char *text,
          size_t len, const struct ferry_dest_env *env, struct dest_acc *acc)
{
    yaml_document_t doc;
    struct conf_ctx fc = { .file = path, .dir = dir, .doc = &doc, .errs = c->errs };
    yaml_node_t    *root;

    if (conf_doc_load(text, len, path, c->errs, &doc) != FERRY_OK) {
        acc->rc = FERRY_EINVAL;
        return;
    }
    if ((root = yaml_document_get_root_node(&doc)) == NULL) {
        ferry_errlist_add(c->errs, path, 0, 0, "empty file: want one destination mapping");
        acc->rc = FERRY_EINVAL;
    } else {
        dest_from_node(&fc, root, "destination", env, acc);
    }
    yaml_document_delete(&doc);
}

static void
dest_file(const struct conf_ctx *c, const char *dir, const char *fname,
          const struct ferry_dest_env *env, struct dest_acc *acc)
{
    struct ferry_err err = {0};
    char            *path = conf_path_join(dir, fname), *text = NULL;
    size_t           len;

    if (path == NULL) {
        ferry_errlist_add(c->errs, c->file, 0, 0, "out of memory");
        acc->rc = FERRY_ENOMEM;
        return;
    }
    if (conf_file_read(path, CONF_MAX_FILE_BYTES, &text, &len, &err) != FERRY_OK) {
        ferry_errlist_add(c->errs, path, 0, 0, "%s", err.msg);
        acc->rc = FERRY_EINVAL;
    } else {
        dest_text(c, dir, path, text, len, env, acc);
    }
    free(text);
    free(path);
}

static void
dest_dir(const struct conf_ctx *c, const struct conf_dest_in *in,
         const struct ferry_dest_env *env, struct dest_acc *acc)
{
    DIR           *dp;
    struct dirent *de;
    char         **files = NULL;
    size_t         n = 0;

    if ((dp = opendir(in->dir)) == NULL) {
        conf_error(c, in->dir_node, "destinations_dir", "cannot open directory %s: %s",
                   in->dir, strerror(errno));
        acc->rc = FERRY_EINVAL;
        return;
    }
    while ((de = readdir(dp)) != NULL) {
        char      **grown;
        char       *full;
        struct stat st;

        if (!is_dest_file(de->d_name))
            continue;
        if ((full = conf_path_join(in->dir, de->d_name)) == NULL)
            goto nomem;
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(full);
            continue;
        }
        free(full);
        if (n >= CONF_MAX_DEST_FILES) {
            conf_error(c, in->dir_node, "destinations_dir", "more than %d files in %s",
                       CONF_MAX_DEST_FILES, in->dir);
            acc->rc = FERRY_EINVAL;
            break;
        }
        if ((grown = realloc(files, (n + 1) * sizeof(*files))) == NULL)
            goto nomem;
        files = grown;
        if ((files[n] = strdup(de->d_name)) == NULL)
            goto nomem;
        n++;
    }
    closedir(dp);
    dp = NULL;
    if (n > 0)
        qsort(files, n, sizeof(*files), name_cmp);
    for (size_t i = 0; i < n; i++)
        dest_file(c, in->dir, files[i], env, acc);
    goto out;
nomem:
    conf_error(c, in->dir_node, "destinations_dir", "out of memory");
    acc->rc = FERRY_ENOMEM;
out:
    if (dp != NULL)
        closedir(dp);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

int
conf_dests_load(const struct conf_ctx *c, const struct conf_dest_in *in,
                struct ferry_errlist *warnings, struct ferry_registry **out,
                char ***names, size_t *nnames)
{
    struct ferry_dest_env env = {
        .tenants = in->tenants, .ntenants = in->ntenants,
        .errs = c->errs, .warnings = warnings,
    };
    struct dest_acc acc = { .rc = FERRY_OK };
    int             rc;

    *out = NULL;
    if (in->inline_seq != NULL) {
        const yaml_node_t *seq = in->inline_seq;

        if (seq->type != YAML_SEQUENCE_NODE) {
            conf_error(c, seq, "destinations", "want a list of destinations (- Name: ...)");
            acc.rc = FERRY_EINVAL;
        } else {
            for (yaml_node_item_t *i = seq->data.sequence.items.start;
                 i < seq->data.sequence.items.top; i++) {
                char label[48];

                snprintf(label, sizeof(label), "destinations[%d]",
                         (int)(i - seq->data.sequence.items.start));
                dest_from_node(c, conf_node(c, *i), label, &env, &acc);
            }
        }
    }
    if (in->dir != NULL)
        dest_dir(c, in, &env, &acc);
    if (in->file_text != NULL)
        dest_text(c, c->dir, c->file, in->file_text, in->file_len, &env, &acc);
    rc = ferry_registry_new(acc.dests, acc.n, out, c->errs);
    *names = acc.names;
    *nnames = acc.nnames;
    if (rc != FERRY_OK)
        return rc;
    return acc.rc;              /* *out holds the valid ones either way */
}
