/*
 * dest-change.c: creating, updating and deleting destinations through the admin API
 * (POST and PUT /subaccountDestinations, DELETE /subaccountDestinations/{name}).
 *
 * A destination from a JSON body is checked exactly like one from a file
 * (ferry_dest_init), written as one file in destinations_dir (atomically, by
 * conf-dest-file.c) and applied by the reload SIGHUP uses; the client hears back once
 * every worker serves the new generation. If the reload fails, the files are put back
 * as they were: the running configuration never saw the change. Only files of
 * destinations_dir are written or removed, and each of them defines exactly one
 * destination; inline destinations (ferry.yaml) are refused. Logs name the tenant,
 * the destination and the action, never a property value.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include <ferry/log.h>

#include "admin/admin-int.h"
#include "conf/conf.h"
#include "dest/dest-int.h"
#include "store/store.h"

#define CHANGE_MAX_BATCH 100    /* destinations in one POST or PUT body */
#define CHANGE_MAX_PROPS 512    /* properties of one destination, as the loader's bound */

/* Properties naming files on the gateway's disk. A tenant must not point them at the
 * operator's or another tenant's files (a key store is a credential), so through the
 * API they can only keep the value the operator gave. */
static const char *const path_props[] = {
    "policy", "TrustStoreLocation", "KeyStoreLocation", "tokenService.KeyStoreLocation",
};

struct change_file {
    char    *name;          /* owns: the destination's Name */
    char    *path;          /* owns: its file in destinations_dir */
    char    *old;           /* owns: the file's previous content; NULL: no file before */
    size_t   old_len;
    unsigned old_mode;
    char    *text;          /* owns: the new content; NULL: remove the file */
    size_t   text_len;
    bool     written;       /* the disk has the change: a rollback puts `old` back */
    json_t  *value;         /* owns, with a store: the properties etcd gets (no tenant) */
};

struct dest_change {
    struct admin_pending p;         /* first: the pending list holds &p */
    bool                 instance;  /* instanceDestinations (else subaccountDestinations) */
    const char          *action;    /* "create", "update" or "delete" */
    int                  status;    /* the answer once applied: 201 or 200 */
    char                *tenant;    /* owns */
    struct change_file  *files;     /* owns, n entries */
    size_t               n;
    int64_t              if_match;  /* with a store: If-Match's mod_revision, 0: none */
    struct ferry_store_wait *wait;  /* with a store: the write in flight */
};

static int refuse(struct admin_refusal *rf, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
refuse(struct admin_refusal *rf, int status, const char *fmt, ...)
{
    va_list ap;

    rf->status = status;
    va_start(ap, fmt);
    vsnprintf(rf->msg, sizeof(rf->msg), fmt, ap);
    va_end(ap);
    return -1;
}

static void
wipe_free(char *s, size_t n)
{
    if (s != NULL)
        explicit_bzero(s, n);
    free(s);
}

static void
change_free(struct dest_change *ch)
{
    for (size_t i = 0; ch->files != NULL && i < ch->n; i++) {
        struct change_file *f = &ch->files[i];

        free(f->name);
        free(f->path);
        wipe_free(f->old, f->old_len);
        wipe_free(f->text, f->text_len);
        json_decref(f->value);
    }
    free(ch->files);
    free(ch->tenant);
    free(ch);
}

static struct dest_change *
change_new(const char *tenant, bool instance, const char *action, int status, size_t n)
{
    struct dest_change *ch = calloc(1, sizeof(*ch));

    if (ch == NULL)
        return NULL;
    ch->instance = instance;
    ch->action = action;
    ch->status = status;
    ch->n = n;
    if ((ch->tenant = strdup(tenant)) == NULL ||
        (ch->files = calloc(n, sizeof(*ch->files))) == NULL) {
        change_free(ch);
        return NULL;
    }
    return ch;
}

/* Is file one of destinations_dir's (not ferry.yaml, not elsewhere)? Paths are as the
 * loader joins them (conf_path_join): "dir/name", "dir/" not doubled, "." dropped. */
static bool
in_dest_dir(const struct ferry_conf *conf, const char *file)
{
    const char *slash = strrchr(file, '/');
    const char *dir = conf->destinations_dir;
    size_t      n;

    if (dir == NULL || strcmp(file, conf->path) == 0)
        return false;
    if (slash == NULL)
        return strcmp(dir, ".") == 0 || dir[0] == '\0';
    for (n = strlen(dir); n > 0 && dir[n - 1] == '/'; n--)
        ;
    return n == (size_t)(slash - file) && strncmp(file, dir, n) == 0;
}

/* The file a new destination gets, joined as the loader joins it (see above):
 * <Name>.yaml, or <Name>@instance.yaml at the instance level (a Name has no '@'). */
static char *
new_dest_path(const char *dir, const char *name, bool instance)
{
    const char *suffix = instance ? "@instance" : "";
    size_t      n = strlen(dir) + strlen(name) + 20;
    char       *p = malloc(n);

    if (p == NULL)
        return NULL;
    if (dir[0] == '\0' || strcmp(dir, ".") == 0)
        snprintf(p, n, "%s%s.yaml", name, suffix);
    else
        snprintf(p, n, "%s%s%s%s.yaml", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name,
                 suffix);
    return p;
}

/* Keep what is on disk now, for a rollback. */
static int
keep_old(struct change_file *f, struct admin_refusal *rf)
{
    struct ferry_err err = {0};
    struct stat      st;

    if (stat(f->path, &st) != 0 || !S_ISREG(st.st_mode)) {
        ferry_log(NULL, FERRY_ERROR, "admin: cannot stat a destination file",
                  FLOG_STR("file", f->path), FLOG_STR("error", strerror(errno)));
        return refuse(rf, 500, "cannot read the file of destination '%s' (see the gateway's "
                      "log); nothing changed", f->name);
    }
    if (ferry_conf_file_read(f->path, &f->old, &f->old_len, &err) != FERRY_OK) {
        ferry_log(NULL, FERRY_ERROR, "admin: cannot read a destination file",
                  FLOG_STR("error", err.msg));
        return refuse(rf, 500, "cannot read the file of destination '%s' (see the gateway's "
                      "log); nothing changed", f->name);
    }
    f->old_mode = (unsigned)(st.st_mode & 07777);
    return 0;
}

/* Checks that do not depend on the gateway's state. */
static bool
change_allowed(struct ferry_admin *a, struct evhttp_request *req)
{
    if (a->st->conf->destinations_dir == NULL && a->st->store == NULL) {
        admin_reply_error(req, 501, "changing destinations needs destinations_dir in the "
                          "gateway's configuration; ask the operator");
        return false;
    }
    if (!a->st->ready || a->st->reload == NULL) {
        admin_reply_error(req, 503, "the gateway is starting or stopping; try again");
        return false;
    }
    return true;
}

/* A property value as text: JSON strings as they are, numbers and booleans spelled. */
static char *
value_text(const json_t *v)
{
    char buf[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(buf);
    case JSON_REAL:
        return json_dumps(v, JSON_ENCODE_ANY);
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    default:
        return NULL;
    }
}

static bool
has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* One destination's properties from the body, in body order. */
struct item {
    char  **keys;   /* owns */
    char  **vals;   /* owns: may hold secrets */
    size_t  n;
};

static void
item_free(struct item *it)
{
    for (size_t i = 0; i < it->n; i++) {
        free(it->keys[i]);
        wipe_free(it->vals[i], it->vals[i] != NULL ? strlen(it->vals[i]) : 0);
    }
    free(it->keys);
    free(it->vals);
}

static const char *
item_get(const struct item *it, const char *key)
{
    for (size_t i = 0; i < it->n; i++)
        if (strcmp(it->keys[i], key) == 0)
            return it->vals[i];
    return NULL;
}

static int
item_read(const json_t *obj, const char *tenant, bool instance, struct item *it,
          struct admin_refusal *rf)
{
    size_t      cap = json_object_size(obj) + 2;    /* + tenant, level */
    const char *key;
    json_t     *v;

    if (cap == 2)
        return refuse(rf, 400, "a destination needs its properties (Name, Type, ...)");
    if (cap > CHANGE_MAX_PROPS)
        return refuse(rf, 400, "a destination has at most %d properties", CHANGE_MAX_PROPS);
    if ((it->keys = calloc(cap, sizeof(*it->keys))) == NULL ||
        (it->vals = calloc(cap, sizeof(*it->vals))) == NULL)
        return refuse(rf, 500, "out of memory");
    json_object_foreach((json_t *)obj, key, v) {
        if (*key == '\0' || has_control(key))
            return refuse(rf, 400, "property names must be non-empty and without control "
                          "characters");
        if ((it->keys[it->n] = strdup(key)) == NULL)
            return refuse(rf, 500, "out of memory");
        if ((it->vals[it->n] = value_text(v)) == NULL) {
            it->n++;
            return json_is_string(v) || json_is_number(v) || json_is_boolean(v)
                   ? refuse(rf, 500, "out of memory")
                   : refuse(rf, 400, "property '%.200s': want a string", key);
        }
        it->n++;
        if (strcmp(key, "tenant") == 0 && strcmp(it->vals[it->n - 1], tenant) != 0)
            return refuse(rf, 403, "tenant: a destination can only belong to the caller's "
                          "tenant");
        if (strcmp(key, "level") == 0 &&
            strcmp(it->vals[it->n - 1], instance ? "instance" : "subaccount") != 0)
            return refuse(rf, 400, "level: this path is for %s-level destinations; use "
                          "%sDestinations", instance ? "instance" : "subaccount",
                          instance ? "subaccount" : "instance");
    }
    if (instance && item_get(it, "level") == NULL) {
        /* The file says which level it is. */
        if ((it->keys[it->n] = strdup("level")) == NULL ||
            (it->vals[it->n] = strdup("instance")) == NULL) {
            it->n++;
            return refuse(rf, 500, "out of memory");
        }
        it->n++;
    }
    if (item_get(it, "tenant") == NULL) {
        /* Explicit in the file: with several tenants the loader requires it. */
        if ((it->keys[it->n] = strdup("tenant")) == NULL ||
            (it->vals[it->n] = strdup(tenant)) == NULL) {
            it->n++;
            return refuse(rf, 500, "out of memory");
        }
        it->n++;
    }
    return 0;
}

/* Validate like a destination file; 400 with every message the loader would print. */
static int
item_validate(const struct ferry_conf *conf, const struct item *it, struct ferry_dest *d,
              struct admin_refusal *rf)
{
    struct ferry_errlist  errs = {0};
    struct ferry_prop    *props = calloc(it->n, sizeof(*props));
    const char          **ids = calloc(conf->ntenants + 1, sizeof(*ids));
    struct ferry_dest_env env = { .ntenants = conf->ntenants, .errs = &errs };
    size_t                off = 0;
    int                   rc;

    memset(d, 0, sizeof(*d));
    if (props == NULL || ids == NULL) {
        free(props);
        free(ids);
        return refuse(rf, 500, "out of memory");
    }
    for (size_t i = 0; i < conf->ntenants; i++)
        ids[i] = conf->tenants[i].id;
    env.tenants = ids;
    for (size_t i = 0; i < it->n; i++) {
        if ((props[i].key = strdup(it->keys[i])) == NULL ||
            (props[i].value = strdup(it->vals[i])) == NULL) {
            for (size_t j = 0; j <= i; j++) {
                free(props[j].key);
                wipe_free(props[j].value, props[j].value != NULL ? strlen(props[j].value) : 0);
            }
            free(props);
            free(ids);
            return refuse(rf, 500, "out of memory");
        }
    }
    /* d owns props from here on, whatever the outcome. */
    rc = ferry_dest_init(d, props, it->n, NULL, conf->destinations_dir, 0, 0, &env);
    free(ids);
    if (rc == FERRY_OK)
        return 0;
    rf->status = rc == FERRY_ENOMEM ? 500 : 400;
    rf->msg[0] = '\0';
    for (int i = 0; i < errs.count && off < sizeof(rf->msg); i++)
        off += (size_t)snprintf(rf->msg + off, sizeof(rf->msg) - off, "%s%s",
                                i > 0 ? "; " : "", errs.items[i].msg);
    if (errs.dropped > 0 && off < sizeof(rf->msg))
        snprintf(rf->msg + off, sizeof(rf->msg) - off, "; and %d more errors", errs.dropped);
    ferry_dest_fini(d);
    return -1;
}

/* One destination of a POST (create) or PUT (update) body into f: 0, 1 for an update of
 * a name the caller has not at this level (SAP counts it out, no error), or -1 refused. */
static int
item_prepare(const struct ferry_conf *conf, const char *tenant, bool instance,
             const json_t *obj, bool create, struct change_file *f, struct admin_refusal *rf)
{
    struct item              it = {0};
    struct ferry_dest        d;
    struct ferry_err         err = {0};
    const struct ferry_dest *old, *other;
    const char              *name;
    char                     comment[160];
    int                      rc = -1;

    memset(&d, 0, sizeof(d));
    if (!json_is_object(obj)) {
        refuse(rf, 400, "want a destination object (\"Name\": ..., \"Type\": ...) or an array "
               "of them");
        goto out;
    }
    if (item_read(obj, tenant, instance, &it, rf) != 0)
        goto out;
    name = item_get(&it, "Name");
    old = name != NULL ? ferry_registry_find_level(conf->registry, name, instance) : NULL;
    /* The name at the other level: only the same tenant may have it there too. */
    other = name != NULL ? ferry_registry_find_level(conf->registry, name, !instance) : NULL;
    if (old == NULL && other != NULL && strcmp(other->tenant, tenant) != 0) {
        refuse(rf, 409, "destination '%s' exists already (names are unique across the "
               "gateway)", name);
        goto out;
    }
    /* Before validation: validating resolves the paths, and its messages would tell
     * which files exist on the gateway. */
    for (size_t i = 0; i < sizeof(path_props) / sizeof(path_props[0]); i++) {
        const char *v = item_get(&it, path_props[i]), *was;

        if (v == NULL)
            continue;
        was = old != NULL && strcmp(old->tenant, tenant) == 0 && !create
              ? ferry_dest_prop(old, path_props[i]) : NULL;
        if (was == NULL || strcmp(was, v) != 0) {
            refuse(rf, 403, "%s: files on the gateway cannot be named through the API; "
                   "the operator sets key stores, trust stores and policies", path_props[i]);
            goto out;
        }
    }
    if (item_validate(conf, &it, &d, rf) != 0)
        goto out;
    if (d.name[0] == '.') {
        refuse(rf, 400, "destination '%s': Name must not start with '.'", d.name);
        goto out;
    }
    if ((f->name = strdup(d.name)) == NULL) {
        refuse(rf, 500, "out of memory");
        goto out;
    }
    if (conf->store != NULL) {
        /* etcd decides (409, 404, 412 in its transaction); these answer early what the
         * replica knows already. The key holds the tenant: the value does not. */
        if (create && old != NULL) {
            refuse(rf, 409, "destination '%s' exists already (names are unique across the "
                   "gateway)", d.name);
            goto out;
        }
        if (!create && (old == NULL || strcmp(old->tenant, tenant) != 0)) {
            rc = 1;                 /* nothing to update: not counted */
            goto out;
        }
        if ((f->value = json_object()) == NULL) {
            refuse(rf, 500, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < it.n; i++)
            if (strcmp(it.keys[i], "tenant") != 0 && strcmp(it.keys[i], "level") != 0 &&
                json_object_set_new(f->value, it.keys[i], json_string(it.vals[i])) != 0) {
                refuse(rf, 500, "out of memory");
                goto out;
            }
        rc = 0;
        goto out;
    }
    if (create) {
        if (old != NULL) {
            refuse(rf, 409, "destination '%s' exists already (names are unique across the "
                   "gateway)", d.name);
            goto out;
        }
        if ((f->path = new_dest_path(conf->destinations_dir, d.name, instance)) == NULL) {
            refuse(rf, 500, "out of memory");
            goto out;
        }
        if (access(f->path, F_OK) == 0) {
            refuse(rf, 409, "destination '%s': a file %s%s.yaml exists in destinations_dir "
                   "already", d.name, d.name, instance ? "@instance" : "");
            goto out;
        }
    } else {
        if (old == NULL || strcmp(old->tenant, tenant) != 0) {
            rc = 1;                 /* nothing to update: not counted */
            goto out;
        }
        if (!in_dest_dir(conf, old->file)) {
            refuse(rf, 409, "destination '%s' is defined in the gateway's configuration file, "
                   "not in destinations_dir: the operator changes it there", d.name);
            goto out;
        }
        if ((f->path = strdup(old->file)) == NULL) {
            refuse(rf, 500, "out of memory");
            goto out;
        }
        if (keep_old(f, rf) != 0)
            goto out;
    }
    snprintf(comment, sizeof(comment), "Written by ferry's destination API for tenant %s. "
             "An update through the API replaces this file.", tenant);
    if (ferry_conf_dest_render((const char *const *)it.keys, (const char *const *)it.vals,
                               it.n, comment, &f->text, &f->text_len, &err) != FERRY_OK) {
        refuse(rf, 500, "destination '%s': %s", d.name, err.msg);
        goto out;
    }
    rc = 0;
out:
    ferry_dest_fini(&d);
    item_free(&it);
    return rc;
}

/* Put every written file back as it was (newest first). */
static void
change_rollback(struct dest_change *ch)
{
    for (size_t i = ch->n; i-- > 0;) {
        struct change_file *f = &ch->files[i];
        struct ferry_err    err = {0};
        int                 rc;

        if (!f->written)
            continue;
        rc = f->old != NULL ? ferry_conf_file_replace(f->path, f->old, f->old_len, f->old_mode,
                                                      &err)
                            : ferry_conf_file_remove(f->path, &err);
        if (rc != FERRY_OK)
            ferry_log(NULL, FERRY_ERROR, "admin: cannot restore a destination file; fix it "
                      "before the next reload", FLOG_STR("error", err.msg));
        f->written = false;
    }
}

static void
change_applied(void *arg)
{
    struct dest_change *ch = arg;

    admin_pending_del(&ch->p);
    admin_reply_json(ch->p.req, ch->status, json_pack("{s:I}", "Count", (json_int_t)ch->n));
    change_free(ch);
}

static void
change_stop(struct admin_pending *p)
{
    struct dest_change *ch = (struct dest_change *)p;

    admin_pending_del(p);
    admin_reply_error(p->req, 503, "the gateway is stopping; the change is saved and applies "
                      "at its next start");
    change_free(ch);
}

/* The reload refused the change: say why, from the errors in our own files, or send the
 * operator to the log (other files' errors are none of the tenant's business). */
static void
reply_reload_failed(struct evhttp_request *req, const struct dest_change *ch,
                    const struct ferry_errlist *errs, int rc)
{
    char   msg[2048];
    size_t off = 0;

    msg[0] = '\0';
    if (rc == FERRY_EAGAIN) {
        admin_reply_error(req, 503, "the gateway is stopping; nothing changed");
        return;
    }
    for (int i = 0; i < errs->count && off < sizeof(msg); i++) {
        bool ours = false;

        for (size_t j = 0; j < ch->n && !ours; j++)
            ours = strncmp(errs->items[i].file, ch->files[j].path,
                           sizeof(errs->items[i].file) - 1) == 0;
        if (ours)
            off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s%s", off > 0 ? "; " : "",
                                    errs->items[i].msg);
    }
    if (off > 0)
        admin_reply_error(req, 400, "%s", msg);
    else
        admin_reply_error(req, 500, "the gateway's configuration does not load with this "
                          "change (the gateway's log has the errors); nothing changed");
}

/* With a store: etcd answered (and this replica applied the change, or etcd said no). */
static void
store_written(void *arg, int status, const char *why, const char *name, int64_t revision)
{
    struct dest_change *ch = arg;
    struct evhttp_request *req = ch->p.req;

    (void)revision;
    ch->wait = NULL;
    admin_pending_del(&ch->p);
    if (status == 200 || status == 201) {
        for (size_t i = 0; i < ch->n; i++)
            ferry_log(NULL, FERRY_INFO, "destination changed", FLOG_STR("tenant", ch->tenant),
                      FLOG_STR("destination", ch->files[i].name),
                      FLOG_STR("action", ch->action), FLOG_INT("revision", revision));
        admin_reply_json(req, ch->status, json_pack("{s:I}", "Count", (json_int_t)ch->n));
    } else if (status == 404) {
        /* Gone in the meantime: etcd's transaction changed nothing. */
        admin_reply_json(req, 200, json_pack("{s:i}", "Count", 0));
    } else if (status == 409) {
        admin_reply_error(req, 409, "destination '%s' exists already (names are unique "
                          "across the gateway)", name != NULL ? name : "?");
    } else if (status == 412) {
        admin_reply_error(req, 412, "destination '%s' changed since that ETag (If-Match); "
                          "read it again", name != NULL ? name : "?");
    } else if (status == 503) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "ferry-error",
                          "store-unavailable");
        admin_reply_error(req, 503, "the destination store (etcd) is unreachable; nothing "
                          "changed, try again");
    } else {
        ferry_log(NULL, FERRY_ERROR, "admin: etcd refused a destination change",
                  FLOG_STR("tenant", ch->tenant), FLOG_STR("action", ch->action),
                  FLOG_STR("error", why));
        admin_reply_error(req, 500, "the destination store refused the change (see the "
                          "gateway's log)");
    }
    change_free(ch);
}

static void
store_change_stop(struct admin_pending *p)
{
    struct dest_change *ch = (struct dest_change *)p;

    admin_pending_del(p);
    ferry_store_write_cancel(ch->wait);
    admin_reply_error(p->req, 503, "the gateway is stopping; the change may or may not be "
                      "made: read the destination again");
    change_free(ch);
}

static void
store_change_run(struct ferry_admin *a, struct evhttp_request *req, struct dest_change *ch)
{
    struct store_write *w = calloc(ch->n, sizeof(*w));

    if (w == NULL) {
        admin_reply_error(req, 500, "out of memory");
        change_free(ch);
        return;
    }
    for (size_t i = 0; i < ch->n; i++) {
        w[i].op = strcmp(ch->action, "create") == 0 ? STORE_CREATE
                  : strcmp(ch->action, "update") == 0 ? STORE_UPDATE : STORE_DELETE;
        w[i].tenant = ch->tenant;
        w[i].name = ch->files[i].name;
        w[i].instance = ch->instance;
        w[i].value = ch->files[i].value;
        w[i].if_match = ch->if_match;
    }
    ch->p.stop = store_change_stop;
    admin_pending_add(a, &ch->p, req);
    if (ferry_store_write(a->st->store, w, ch->n, store_written, ch, &ch->wait) != FERRY_OK) {
        admin_pending_del(&ch->p);
        admin_reply_error(req, 500, "out of memory");
        change_free(ch);
    }
    free(w);
}

/* If-Match: "<mod_revision>" (an ETag of ours), W/ and quotes allowed; "*": any. 0 when
 * absent or "*", -1 when it cannot be one of ours (a 412 then, as RFC 9110 says). */
static int64_t
if_match(struct evhttp_request *req)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "If-Match");
    char       *end;
    long long   r;

    if (v == NULL || strcmp(v, "*") == 0)
        return 0;
    if (strncmp(v, "W/", 2) == 0)
        v += 2;
    if (*v == '"')
        v++;
    r = strtoll(v, &end, 10);
    if (end == v || r <= 0 || (*end != '"' && *end != '\0'))
        return -1;
    return r;
}

/* Write, reload, answer when applied; or put everything back and answer why not. */
static void
change_run(struct ferry_admin *a, struct evhttp_request *req, struct dest_change *ch)
{
    struct ferry_errlist errs = {0};
    int                  rc;

    if (ch->n == 0) {               /* an update of names the caller has not */
        admin_reply_json(req, 200, json_pack("{s:i}", "Count", 0));
        change_free(ch);
        return;
    }
    if (a->st->store != NULL) {
        store_change_run(a, req, ch);
        return;
    }

    for (size_t i = 0; i < ch->n; i++) {
        struct change_file *f = &ch->files[i];
        struct ferry_err    err = {0};

        rc = f->text != NULL ? ferry_conf_file_replace(f->path, f->text, f->text_len, 0, &err)
                             : ferry_conf_file_remove(f->path, &err);
        if (rc != FERRY_OK) {
            ferry_log(NULL, FERRY_ERROR, "admin: cannot write a destination file",
                      FLOG_STR("error", err.msg));
            change_rollback(ch);
            admin_reply_error(req, 500, "cannot write the file of destination '%s' (see the "
                              "gateway's log); nothing changed", f->name);
            change_free(ch);
            return;
        }
        f->written = true;
    }
    rc = a->st->reload(a->st->reload_self, &errs, change_applied, ch);
    if (rc != FERRY_OK) {
        change_rollback(ch);
        ferry_log(NULL, FERRY_WARN, "admin: destination change refused by the reload",
                  FLOG_STR("tenant", ch->tenant), FLOG_STR("action", ch->action),
                  FLOG_STR("destination", ch->files[0].name));
        reply_reload_failed(req, ch, &errs, rc);
        change_free(ch);
        return;
    }
    for (size_t i = 0; i < ch->n; i++)
        ferry_log(NULL, FERRY_INFO, "destination changed", FLOG_STR("tenant", ch->tenant),
                  FLOG_STR("destination", ch->files[i].name), FLOG_STR("action", ch->action));
    ch->p.stop = change_stop;
    admin_pending_add(a, &ch->p, req);
}

/* The body as JSON. */
static json_t *
body_json(const char *body, size_t len, struct admin_refusal *rf)
{
    json_error_t je;
    json_t      *root;

    if (len == 0) {
        refuse(rf, 400, "the body is empty: want a destination object or an array of them");
        return NULL;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL && json_error_code(&je) == json_error_duplicate_key)
        refuse(rf, 400, "the body names a property twice (line %d)", je.line);
    else if (root == NULL)
        refuse(rf, 400, "the body is not valid JSON (line %d, column %d)", je.line, je.column);
    return root;
}

int
admin_dest_change_parse(const struct ferry_conf *conf, const char *tenant, bool instance,
                        const char *body, size_t len, bool create, int64_t if_match,
                        struct dest_change **out, struct admin_refusal *rf)
{
    struct dest_change *ch = NULL;
    json_t             *root;
    size_t              n;

    *out = NULL;
    rf->status = 500;
    snprintf(rf->msg, sizeof(rf->msg), "out of memory");
    if ((root = body_json(body, len, rf)) == NULL)
        goto refused;
    n = json_is_array(root) ? json_array_size(root) : 1;
    if (n == 0 || n > CHANGE_MAX_BATCH) {
        refuse(rf, 400, "want 1 to %d destinations in one body", CHANGE_MAX_BATCH);
        goto refused;
    }
    if ((ch = change_new(tenant, instance, create ? "create" : "update", create ? 201 : 200,
                         n)) == NULL)
        goto refused;
    if ((ch->if_match = if_match) != 0 && json_is_array(root)) {
        refuse(rf, 400, "If-Match applies to one destination: send one object");
        goto refused;
    }
    ch->n = 0;                      /* grows with each destination to change */
    for (size_t i = 0; i < n; i++) {
        const json_t       *obj = json_is_array(root) ? json_array_get(root, i) : root;
        struct change_file *f = &ch->files[ch->n];
        int                 rc = item_prepare(conf, tenant, instance, obj, create, f, rf);

        if (rc < 0) {
            ch->n++;                /* freed with ch */
            goto refused;
        }
        if (rc > 0) {
            free(f->name);
            free(f->path);
            json_decref(f->value);
            memset(f, 0, sizeof(*f));
            continue;
        }
        for (size_t j = 0; j < ch->n; j++) {
            if (strcmp(ch->files[j].name, f->name) == 0) {
                refuse(rf, 400, "destination '%s' appears twice in the body", f->name);
                ch->n++;
                goto refused;
            }
        }
        ch->n++;
    }
    json_decref(root);
    *out = ch;
    return 0;
refused:
    json_decref(root);
    if (ch != NULL)
        change_free(ch);
    return -1;
}

size_t
admin_dest_change_count(const struct dest_change *ch)
{
    return ch->n;
}

const char *
admin_dest_change_file(const struct dest_change *ch, size_t i, const char **name,
                       size_t *len)
{
    *name = ch->files[i].name;
    *len = ch->files[i].text_len;
    return ch->files[i].text;
}

void
admin_dest_change_free(struct dest_change *ch)
{
    if (ch != NULL)
        change_free(ch);
}

static void
change_body(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
            bool instance, bool create)
{
    struct admin_refusal rf = { .status = 500, .msg = "out of memory" };
    struct evbuffer     *in = evhttp_request_get_input_buffer(req);
    size_t               len = evbuffer_get_length(in);
    unsigned char       *p = len > 0 ? evbuffer_pullup(in, -1) : NULL;
    struct dest_change  *ch = NULL;
    int64_t              im;
    int                  rc;

    if (!change_allowed(a, req))
        return;
    im = a->st->store != NULL && !create ? if_match(req) : 0;
    rc = admin_dest_change_parse(a->st->conf, tenant, instance, p != NULL ? (const char *)p : "",
                                 p != NULL ? len : 0, create, im, &ch, &rf);
    /* The request's copy of the body is wiped: it may hold passwords. */
    if (p != NULL)
        explicit_bzero(p, len);
    evbuffer_drain(in, len);
    if (rc != 0) {
        admin_reply_error(req, rf.status, "%s", rf.msg);
        return;
    }
    change_run(a, req, ch);
}

void
admin_dest_create(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
                  bool instance)
{
    change_body(a, req, tenant, instance, true);
}

void
admin_dest_update(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
                  bool instance)
{
    change_body(a, req, tenant, instance, false);
}

void
admin_dest_delete(struct ferry_admin *a, struct evhttp_request *req, const char *tenant,
                  bool instance, const char *name)
{
    const struct ferry_conf *conf = a->st->conf;
    const struct ferry_dest *d;
    struct admin_refusal           rf = { .status = 500, .msg = "out of memory" };
    struct dest_change           *ch;

    if (!change_allowed(a, req))
        return;
    if ((d = admin_dest_find(conf, tenant, name, instance)) == NULL) {
        /* SAP: delete answers how many it deleted; 404 is for finds only. */
        admin_reply_json(req, 200, json_pack("{s:i}", "Count", 0));
        return;
    }
    if (a->st->store == NULL && !in_dest_dir(conf, d->file)) {
        admin_reply_error(req, 409, "destination '%s' is defined in the gateway's "
                          "configuration file, not in destinations_dir: the operator "
                          "removes it there", d->name);
        return;
    }
    for (size_t i = 0; i < conf->nlisteners; i++) {
        const char *bound = conf->listeners[i].destination;

        if (bound != NULL && strcmp(bound, d->name) == 0 &&
            ferry_registry_find(conf->registry, bound) == d) {
            admin_reply_error(req, 409, "listener '%s' is bound to destination '%s': the "
                              "operator changes the listener first", conf->listeners[i].name,
                              d->name);
            return;
        }
    }
    if (a->st->store != NULL) {
        if ((ch = change_new(tenant, instance, "delete", 200, 1)) == NULL ||
            (ch->files[0].name = strdup(d->name)) == NULL) {
            if (ch != NULL)
                change_free(ch);
            admin_reply_error(req, 500, "out of memory");
            return;
        }
        ch->if_match = if_match(req);
        store_change_run(a, req, ch);
        return;
    }
    if ((ch = change_new(tenant, instance, "delete", 200, 1)) == NULL ||
        (ch->files[0].name = strdup(d->name)) == NULL ||
        (ch->files[0].path = strdup(d->file)) == NULL || keep_old(&ch->files[0], &rf) != 0) {
        if (ch != NULL)
            change_free(ch);
        admin_reply_error(req, rf.status, "%s", rf.msg);
        return;
    }
    change_run(a, req, ch);
}
