/*
 * conf-dest-source.c: destinations from a SOURCE that is not the configuration being
 * loaded (dest-source.h): a directory of destination files, or another gateway
 * configuration's `destinations:` and `destinations_dir:`. The work is conf-dest.c's
 * (the same walker, the same validation, the same file:line:col); this file only finds
 * what to hand it and lends it the target configuration's tenants, so a destination
 * that `ferry check` of the target would refuse is refused here too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf/conf-int.h"
#include "conf/dest-source.h"
#include "dest/dest-int.h"

/* The target's tenant ids, each once (as the loader counts them). */
static const char **
target_tenants(const struct ferry_conf *target, size_t *n)
{
    const char **ids = calloc(target->ntenants + 1, sizeof(*ids));

    *n = 0;
    if (ids == NULL)
        return NULL;
    for (size_t i = 0; i < target->ntenants; i++)
        if (target->tenants[i].id != NULL &&
            ferry_conf_tenant(target, target->tenants[i].id) == &target->tenants[i])
            ids[(*n)++] = target->tenants[i].id;
    return ids;
}

static void
free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Load what in names, with c's file for messages; *out only when all of it is valid. */
static int
load_in(const struct conf_ctx *c, struct conf_dest_in *in, struct ferry_errlist *warnings,
        struct ferry_registry **out)
{
    struct ferry_registry *reg = NULL;
    char                 **names = NULL;
    size_t                 nnames = 0;
    int                    before = c->errs->count + c->errs->dropped;
    int                    rc;

    rc = conf_dests_load(c, in, warnings, &reg, &names, &nnames);
    free_names(names, nnames);
    if (rc == FERRY_OK && c->errs->count + c->errs->dropped > before)
        rc = FERRY_EINVAL;
    if (rc != FERRY_OK) {
        ferry_registry_unref(reg);
        return rc;
    }
    *out = reg;
    return FERRY_OK;
}

/* A gateway configuration: its `destinations:` and `destinations_dir:` only. */
static int
from_file(const char *path, struct conf_dest_in *in, struct ferry_errlist *errs,
          struct ferry_errlist *warnings, struct ferry_registry **out)
{
    yaml_document_t    doc;
    struct conf_ctx    c = { .file = path, .doc = &doc, .errs = errs };
    const yaml_node_t *root, *seq, *dirn;
    char              *text = NULL, *dir = NULL, *rel = NULL, *base = NULL;
    bool               secret;
    int                rc;

    if ((rc = conf_file_text(path, errs, &text)) != FERRY_OK)
        return rc;
    if ((base = conf_dirname(path)) == NULL) {
        free(text);
        ferry_errlist_add(errs, path, 0, 0, "out of memory");
        return FERRY_ENOMEM;
    }
    c.dir = base;
    if ((rc = conf_doc_load(text, strlen(text), path, errs, &doc)) != FERRY_OK) {
        free(base);
        free(text);
        return rc;
    }
    root = yaml_document_get_root_node(&doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        conf_error(&c, root, NULL, "want a gateway configuration (a mapping with "
                   "destinations: or destinations_dir:) or a directory of destination files");
        rc = FERRY_EINVAL;
        goto out;
    }
    seq = conf_value(&c, root, "destinations");
    dirn = conf_value(&c, root, "destinations_dir");
    if (seq != NULL && conf_is_null(seq))
        seq = NULL;
    if (dirn != NULL && conf_is_null(dirn))
        dirn = NULL;
    if (seq == NULL && dirn == NULL) {
        conf_error(&c, NULL, NULL, "no destinations: and no destinations_dir: to read "
                   "destinations from");
        rc = FERRY_EINVAL;
        goto out;
    }
    if (dirn != NULL) {
        /* As the loader reads it: references expanded, relative to this file. */
        if ((rc = conf_scalar(&c, dirn, NULL, "destinations_dir", &rel, &secret)) != FERRY_OK)
            goto out;
        if ((dir = conf_path_join(base, rel)) == NULL) {
            conf_error(&c, dirn, "destinations_dir", "out of memory");
            rc = FERRY_ENOMEM;
            goto out;
        }
    }
    in->inline_seq = seq;
    in->dir = dir;
    in->dir_node = dirn;
    rc = load_in(&c, in, warnings, out);
out:
    yaml_document_delete(&doc);
    free(rel);
    free(dir);
    free(base);
    free(text);
    return rc;
}

int
ferry_conf_dests_from(const char *source, const struct ferry_conf *target,
                      struct ferry_registry **out, struct ferry_errlist *errs,
                      struct ferry_errlist *warnings)
{
    struct conf_dest_in in = {0};
    struct stat         st;
    const char        **ids;
    int                 rc;

    *out = NULL;
    if (stat(source, &st) != 0) {
        ferry_errlist_add(errs, source, 0, 0, "%s", strerror(errno));
        return FERRY_EINVAL;
    }
    if ((ids = target_tenants(target, &in.ntenants)) == NULL) {
        ferry_errlist_add(errs, source, 0, 0, "out of memory");
        return FERRY_ENOMEM;
    }
    in.tenants = ids;
    if (S_ISDIR(st.st_mode)) {
        /* Messages about the directory itself name it; each file names itself. */
        struct conf_ctx c = { .file = source, .dir = source, .errs = errs };

        in.dir = source;
        rc = load_in(&c, &in, warnings, out);
    } else {
        rc = from_file(source, &in, errs, warnings, out);
    }
    free(ids);
    return rc;
}

int
ferry_conf_dest_from_text(const char *text, size_t len, const char *name,
                          const struct ferry_conf *target, struct ferry_registry **out,
                          struct ferry_errlist *errs, struct ferry_errlist *warnings)
{
    struct conf_dest_in in = { .file_text = text, .file_len = len };
    struct conf_ctx     c = { .file = name, .errs = errs };
    char               *dir;
    const char        **ids;
    int                 rc;

    *out = NULL;
    if ((dir = conf_dirname(name)) == NULL ||
        (ids = target_tenants(target, &in.ntenants)) == NULL) {
        free(dir);
        ferry_errlist_add(errs, name, 0, 0, "out of memory");
        return FERRY_ENOMEM;
    }
    c.dir = dir;
    in.tenants = ids;
    rc = load_in(&c, &in, warnings, out);
    free(ids);
    free(dir);
    return rc;
}
