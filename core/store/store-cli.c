/*
 * store-cli.c: `ferry store import` and `ferry store export`, the bridge between
 * destination files and etcd (DESIGN.md, "Several replicas: one truth in etcd").
 *
 * import reads SOURCE with conf's own loader (conf/dest-source.h: the validation and
 * the file:line:col of `ferry check`, the tenants of the -c configuration), refuses a
 * Name that etcd holds for another tenant (names are unique across a gateway), writes
 * each destination to <prefix>/destinations/<tenant>/<Name> as the JSON object of its
 * properties, secret references expanded, in transactions of at most STORE_BATCH_KEYS
 * keys: a failure leaves no half of a batch. export range-reads those keys page by page
 * and writes one <Name>.yaml per destination (conf's renderer, atomic replace, 0600),
 * or Kubernetes Services (store-k8s.c).
 *
 * A command-line tool: it runs its own loop with the etcd client (store-read.c) and
 * blocks the process until it is done, or until etcd was silent for 30 s.
 * It prints names and keys, never a property value: values are passwords as often as
 * not.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf/conf.h"
#include "conf/dest-source.h"
#include "dest/dest-int.h"
#include "store/etcd.h"
#include "store/store-cli-int.h"
#include "store/store-cli.h"

/* etcd refuses a transaction of more than --max-txn-ops (128 by default) operations,
 * or a request over --max-request-bytes (1.5 MiB): stay under both, base64 included. */
#define STORE_BATCH_KEYS     100
#define STORE_BATCH_BYTES    (768u * 1024)

struct store_args {
    const char           *conf_path;
    const char           *sub;          /* "import" or "export" */
    const char           *operand;      /* SOURCE or DIR; NULL with --k8s-services */
    bool                  dry_run;
    bool                  k8s;
    bool                  k8s_opts;     /* a --namespace/--selector/--port/... was given */
    struct store_k8s_opts k8s_o;
};

void
ferry_store_cli_usage(FILE *fp)
{
    fprintf(fp,
        "       ferry store import -c FILE [--dry-run] SOURCE\n"
        "                                      write SOURCE's destinations (a destinations\n"
        "                                      directory, or a gateway config's destinations:\n"
        "                                      and destinations_dir) into the etcd of FILE's\n"
        "                                      store:, validated as by ferry check. Secret\n"
        "                                      references are written EXPANDED: etcd becomes\n"
        "                                      the truth. --dry-run: list the keys only\n"
        "       ferry store export -c FILE DIR  write the destinations in etcd as DIR/<Name>.yaml\n"
        "       ferry store export -c FILE --k8s-services [--namespace NS] [--selector K=V]\n"
        "                          [--port 80] [--target-port N]\n"
        "                                      print a Kubernetes Service per HTTP destination,\n"
        "                                      to the transparent http listener of FILE on the\n"
        "                                      pods app.kubernetes.io/name=ferry,\n"
        "                                      app.kubernetes.io/component=gateway; a\n"
        "                                      Service named otherwise than its destination\n"
        "                                      (lowercased, '-' for other characters) needs\n"
        "                                      X-Destination-Name: <Name> from apps\n");
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "ferry store: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage:\n");
    ferry_store_cli_usage(stderr);
}

/* ---- loading the -c configuration ----------------------------------------------------- */

static struct ferry_conf *
load_target(const char *path, const char *sub)
{
    struct ferry_errlist errs = {0};
    struct ferry_conf   *conf = NULL;

    if (ferry_conf_load_file(path, &conf, &errs) != FERRY_OK) {
        if (errs.count == 0)
            fprintf(stderr, "%s: cannot load the configuration\n", path);
        ferry_errlist_print(&errs, stderr, false);
        return NULL;
    }
    /* Listener options keep the list for later reports: not this frame's. */
    for (size_t i = 0; i < conf->nlisteners; i++)
        ferry_opts_set_errlist(conf->listeners[i].opts, NULL);
    ferry_errlist_print(&conf->warnings, stderr, true);
    if (conf->store == NULL) {
        fprintf(stderr, "%s: store %s needs a store: section\n", path, sub);
        ferry_conf_free(conf);
        return NULL;
    }
    return conf;
}

/* "<prefix>/destinations/" (the prefix has no trailing '/'). */
static char *
dests_prefix(const struct ferry_conf_store *sc)
{
    size_t n = strlen(sc->prefix) + sizeof("/destinations/");
    char  *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/destinations/", sc->prefix);
    return p;
}

/* ---- file paths in properties --------------------------------------------------------- */

/* Properties naming files. A file resolves them against its own directory; the gateway
 * resolves etcd's against its configuration's (store.c): import and export move the
 * base, so that a relative path keeps naming the same file. */
static const char *const path_props[] = {
    "policy", "TrustStoreLocation", "KeyStoreLocation", "tokenService.KeyStoreLocation",
};

static bool
is_path_prop(const char *key)
{
    for (size_t i = 0; i < sizeof(path_props) / sizeof(path_props[0]); i++)
        if (strcmp(key, path_props[i]) == 0)
            return true;
    return false;
}

/* path (relative to from_dir, or absolute) as a path relative to to_dir; the same text
 * when it is relative and both are one directory. NULL when the file or a directory
 * does not exist (or ENOMEM). */
static char *
rebase(const char *from_dir, const char *path, const char *to_dir)
{
    char   fdir[PATH_MAX], tdir[PATH_MAX], joined[PATH_MAX], target[PATH_MAX];
    char  *out;
    size_t i = 0, last = 0, ups = 0, n;

    if (realpath(from_dir, fdir) == NULL || realpath(to_dir, tdir) == NULL)
        return NULL;
    if (path[0] != '/' && strcmp(fdir, tdir) == 0)
        return strdup(path);
    if (path[0] == '/')
        snprintf(joined, sizeof(joined), "%s", path);
    else if ((size_t)snprintf(joined, sizeof(joined), "%s/%s", fdir, path) >= sizeof(joined))
        return NULL;
    if (realpath(joined, target) == NULL)
        return NULL;
    /* The common directories: last is the '/' that ends them in target. */
    for (; target[i] != '\0' && target[i] == tdir[i]; i++)
        if (target[i] == '/')
            last = i;
    if (tdir[i] == '\0' && target[i] == '/')
        last = i;
    if (tdir[last] != '\0' && tdir[last + 1] != '\0') {
        ups = 1;
        for (const char *p = tdir + last + 1; *p != '\0'; p++)
            ups += *p == '/';
    }
    n = ups * 3 + strlen(target + last + 1) + 1;
    if ((out = malloc(n)) == NULL)
        return NULL;
    out[0] = '\0';
    for (size_t u = 0; u < ups; u++)
        strcat(out, "../");
    strcat(out, target + last + 1);
    return out;
}

/* ---- import --------------------------------------------------------------------------- */

struct put {
    char  *key;         /* owns */
    char  *value;       /* owns: JSON text, may hold secrets (wiped) */
    size_t value_len;
};

static void
puts_free(struct put *p, size_t n)
{
    for (size_t i = 0; p != NULL && i < n; i++) {
        free(p[i].key);
        if (p[i].value != NULL)
            explicit_bzero(p[i].value, p[i].value_len);
        free(p[i].value);
    }
    free(p);
}

/* A path property of a validated destination whose file is in base, as the gateway
 * will resolve it from conf_dir: *out NULL when it stays as it is (absolute). Validation
 * resolved the key and trust stores already (their values are base/<as written>, from
 * the working directory); policy is as written, relative to base. 0, or -1 when the
 * file is gone (a race with validation) or out of memory. */
static int
import_path(const struct ferry_prop *pr, const char *base, const char *conf_dir, char **out)
{
    size_t blen = strlen(base);

    *out = NULL;
    if (strcmp(pr->key, "policy") == 0) {
        if (pr->value[0] != '/')
            *out = rebase(base, pr->value, conf_dir);
    } else if (pr->value[0] != '/') {
        *out = rebase(".", pr->value, conf_dir);
    } else if (base[0] == '/' && strncmp(pr->value, base, blen) == 0 &&
               pr->value[blen] == '/') {
        *out = rebase("/", pr->value, conf_dir);    /* written relative to an absolute base */
    } else {
        return 0;                                   /* written absolute: stays so */
    }
    return *out != NULL ? 0 : -1;
}

/* A destination's value: its properties but tenant (the key has it), in file order.
 * 2 after printing why (a value JSON cannot hold), 1 out of memory, else 0. */
static int
put_value(const struct ferry_dest *d, const char *conf_dir, struct put *p)
{
    json_t     *o = json_object();
    char       *dir = NULL;         /* owns: a copy of d->file that dirname() cuts */
    const char *base = NULL;        /* the directory d's relative paths start from */

    if (o == NULL)
        return 1;
    for (size_t i = 0; i < d->nprops; i++) {
        const struct ferry_prop *pr = &d->props[i];
        char                    *moved = NULL;
        json_t                  *v;

        if (strcmp(pr->key, "tenant") == 0 || strcmp(pr->key, "level") == 0)
            continue;       /* the key says both */
        if (base == NULL && is_path_prop(pr->key) && (dir = strdup(d->file)) != NULL)
            base = dirname(dir);
        if (is_path_prop(pr->key) &&
            (base == NULL || import_path(pr, base, conf_dir, &moved) != 0)) {
            fprintf(stderr, "%s:%d:%d: destination '%s': %s: cannot name the file relative "
                    "to %s\n", d->file, pr->line, pr->col, d->name, pr->key, conf_dir);
            json_decref(o);
            free(dir);
            return 2;
        }
        v = json_string(moved != NULL ? moved : pr->value);
        free(moved);
        if (v == NULL) {
            json_decref(o);
            free(dir);
            fprintf(stderr, "%s:%d:%d: destination '%s': property '%s' is not UTF-8 text; "
                    "etcd's JSON cannot hold it\n", d->file != NULL ? d->file : "?", pr->line,
                    pr->col, d->name, pr->key);
            return 2;
        }
        if (json_object_set_new(o, pr->key, v) != 0) {
            json_decref(o);
            free(dir);
            return 1;
        }
    }
    free(dir);
    /* jansson keeps insertion order: export writes the file in the same order, and a
     * second import writes the very same bytes. */
    p->value = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (p->value == NULL)
        return 1;
    p->value_len = strlen(p->value);
    return 0;
}

/* Every key and value first: nothing is written unless all of them could be made. */
static int
make_puts(const struct ferry_registry *reg, const char *prefix, const char *conf_dir,
          struct put **out)
{
    struct put *p = calloc(reg->n + 1, sizeof(*p));
    int         rc;

    *out = NULL;
    if (p == NULL)
        goto nomem;
    for (size_t i = 0; i < reg->n; i++) {
        const struct ferry_dest *d = &reg->dests[i];
        size_t                   n = strlen(prefix) + strlen(d->tenant) + strlen(d->name) +
                                     sizeof(STORE_INSTANCE_SUFFIX) + 2;

        if ((p[i].key = malloc(n)) == NULL)
            goto nomem_free;
        snprintf(p[i].key, n, "%s%s/%s%s", prefix, d->tenant, d->name,
                 d->instance ? STORE_INSTANCE_SUFFIX : "");
        if ((rc = put_value(d, conf_dir, &p[i])) == 2) {
            puts_free(p, reg->n);
            return STORE_EXIT_CONFIG;
        }
        if (rc != 0)
            goto nomem_free;
    }
    *out = p;
    return STORE_EXIT_OK;
nomem_free:
    puts_free(p, reg->n);
nomem:
    fprintf(stderr, "ferry store: out of memory\n");
    return STORE_EXIT_FAIL;
}

/* One transaction for p[0..n): all of it or none. */
static int
put_batch(struct store_cli *cli, const struct put *p, size_t n)
{
    json_t *ops = json_array(), *result = NULL;
    int     rc;

    for (size_t i = 0; ops != NULL && i < n; i++) {
        json_t *k = etcd_b64s(p[i].key), *v = etcd_b64(p[i].value, p[i].value_len);
        json_t *op = k != NULL && v != NULL
                     ? json_pack("{s:{s:o,s:o}}", "request_put", "key", k, "value", v) : NULL;

        if (op == NULL) {
            if (k != NULL && v != NULL)
                k = v = NULL;               /* json_pack took them, even when it failed */
            json_decref(k);
            json_decref(v);
            json_decref(ops);
            ops = NULL;
        } else if (json_array_append_new(ops, op) != 0) {
            json_decref(ops);
            ops = NULL;
        }
    }
    /* No compare: a put-only transaction always takes the success branch. */
    rc = store_cli_call(cli, "/v3/kv/txn",
                        ops != NULL ? json_pack("{s:o}", "success", ops) : NULL, &result);
    if (rc != FERRY_OK)
        return rc;
    if (!json_is_true(json_object_get(result, "succeeded"))) {
        fprintf(stderr, "etcd %s: the transaction was not applied\n", etcd_endpoint(cli->etcd));
        rc = FERRY_EIO;
    }
    json_decref(result);
    return rc;
}

/* ---- import, continued ------------------------------------------------------------------ */

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct store_entry *)a)->name, ((const struct store_entry *)b)->name);
}

/* Names are unique across a gateway, tenants or not: a Name etcd has for another tenant
 * would make the gateway skip one of the two. 0, or the number of clashes (printed). */
static int
clashes(const struct ferry_registry *reg, struct store_entry *have, size_t nhave)
{
    int bad = 0;

    if (nhave > 0)
        qsort(have, nhave, sizeof(*have), name_cmp);
    for (size_t i = 0; i < reg->n; i++) {
        const struct ferry_dest *d = &reg->dests[i];
        struct store_entry       key = { .name = d->name };
        struct store_entry      *hit = nhave > 0 ? bsearch(&key, have, nhave, sizeof(*have),
                                                           name_cmp) : NULL;

        if (hit == NULL)
            continue;
        while (hit > have && strcmp(hit[-1].name, d->name) == 0)
            hit--;
        for (; hit < have + nhave && strcmp(hit->name, d->name) == 0; hit++) {
            if (strcmp(hit->tenant, d->tenant) == 0)
                continue;
            fprintf(stderr, "%s:%d:%d: destination '%s' (tenant %s): etcd has it for tenant "
                    "%s already (%s); names are unique across a gateway\n", d->file, d->line,
                    d->col, d->name, d->tenant, hit->tenant, hit->key);
            bad++;
            break;
        }
    }
    return bad;
}

static int
cmd_import(const struct store_args *a)
{
    struct ferry_errlist   errs = {0}, warnings = {0};
    struct ferry_conf     *conf;
    struct ferry_registry *reg = NULL;
    struct put            *p = NULL;
    struct store_entry    *have = NULL;     /* the keys etcd has now (no values) */
    struct store_cli       cli;
    char                  *prefix = NULL;
    size_t                 done = 0, nhave = 0;
    int                    rc, skipped = 0;

    if ((conf = load_target(a->conf_path, "import")) == NULL)
        return STORE_EXIT_CONFIG;
    rc = ferry_conf_dests_from(a->operand, conf, &reg, &errs, &warnings);
    ferry_errlist_print(&warnings, stderr, true);
    if (rc != FERRY_OK) {
        if (errs.count == 0)
            fprintf(stderr, "%s: %s\n", a->operand, rc == FERRY_ENOMEM ? "out of memory"
                    : "cannot read destinations");
        ferry_errlist_print(&errs, stderr, false);
        fprintf(stderr, "ferry store: nothing imported\n");
        ferry_conf_free(conf);
        return rc == FERRY_ENOMEM ? STORE_EXIT_FAIL : STORE_EXIT_CONFIG;
    }
    rc = STORE_EXIT_CONFIG;
    if (reg->n == 0) {
        fprintf(stderr, "%s: no destinations to import\n", a->operand);
        goto out;
    }
    if ((prefix = dests_prefix(conf->store)) == NULL) {
        fprintf(stderr, "ferry store: out of memory\n");
        rc = STORE_EXIT_FAIL;
        goto out;
    }
    if ((rc = make_puts(reg, prefix, conf->dir, &p)) != STORE_EXIT_OK)
        goto out;
    if (a->dry_run) {
        for (size_t i = 0; i < reg->n; i++)
            printf("would write %s\n", p[i].key);
        printf("dry run: %zu destinations would be imported into %s%s; nothing was written\n",
               reg->n, conf->store->endpoints[0], conf->store->prefix);
        goto out;
    }
    if (store_cli_open(&cli, conf->store) != FERRY_OK) {
        rc = STORE_EXIT_FAIL;
        goto out;
    }
    if (store_read_entries(&cli, prefix, true, &have, &nhave, &skipped) != FERRY_OK) {
        fprintf(stderr, "ferry store: nothing imported\n");
        rc = STORE_EXIT_FAIL;
        goto close;
    }
    if (clashes(reg, have, nhave) > 0) {
        fprintf(stderr, "ferry store: nothing imported\n");
        rc = STORE_EXIT_CONFIG;
        goto close;
    }
    while (done < reg->n) {
        size_t n = 0, bytes = 0;

        /* At least one: a destination over the byte bound alone is etcd's to refuse. */
        while (done + n < reg->n && n < STORE_BATCH_KEYS &&
               (n == 0 || bytes + p[done + n].value_len + strlen(p[done + n].key) <=
                          STORE_BATCH_BYTES)) {
            bytes += p[done + n].value_len + strlen(p[done + n].key);
            n++;
        }
        if (put_batch(&cli, p + done, n) != FERRY_OK) {
            if (done == 0)
                fprintf(stderr, "ferry store: nothing imported\n");
            else
                fprintf(stderr, "ferry store: %zu of %zu destinations were imported before "
                        "the failure (each transaction of up to %d is all or nothing); the "
                        "next would have been %s\n", done, reg->n, STORE_BATCH_KEYS,
                        p[done].key);
            break;
        }
        done += n;
    }
    if (done == reg->n) {
        printf("imported %zu destinations into %s%s\n", done, etcd_endpoint(cli.etcd),
               conf->store->prefix);
        rc = STORE_EXIT_OK;
    } else {
        rc = STORE_EXIT_FAIL;
    }
close:
    store_cli_close(&cli);
out:
    store_entries_free(have, nhave);
    puts_free(p, p != NULL ? reg->n : 0);
    free(prefix);
    ferry_registry_unref(reg);
    ferry_conf_free(conf);
    return rc;
}

/* ---- export to files ------------------------------------------------------------------ */

/* mkdir -p, new directories 0700: the files will hold credentials. */
static int
make_dir(const char *dir)
{
    char   *p = strdup(dir);
    size_t  n;
    int     rc = FERRY_OK;

    if (p == NULL)
        return FERRY_ENOMEM;
    n = strlen(p);
    for (size_t i = 1; i <= n && rc == FERRY_OK; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "%s: cannot create: %s\n", p, strerror(errno));
            rc = FERRY_EIO;
        }
        if (i < n)
            p[i] = '/';
    }
    free(p);
    return rc;
}

/* One <Name>.yaml (<Name>@instance.yaml at the instance level): the properties in etcd's
 * order with tenant (and level) after Name. */
static int
write_entry(const char *conf_dir, const char *dir, const char *endpoint,
            const struct store_entry *e)
{
    size_t           n = json_object_size(e->props) + 2, i = 0, len = 0, nmoved = 0;
    const char     **keys = calloc(n, sizeof(*keys)), **vals = calloc(n, sizeof(*vals));
    char           **moved = calloc(n, sizeof(*moved));
    struct ferry_err err = {0};
    char             comment[512], *text = NULL, *path = NULL;
    const char      *k;
    json_t          *v;
    int              rc = FERRY_ENOMEM;

    if (keys == NULL || vals == NULL || moved == NULL)
        goto out;
    json_object_foreach(e->props, k, v) {
        keys[i] = k;
        vals[i++] = json_string_value(v);
        if (is_path_prop(k) && vals[i - 1][0] != '/' && vals[i - 1][0] != '\0') {
            /* etcd's is relative to the configuration; the file's is to DIR. */
            if ((moved[nmoved] = rebase(conf_dir, vals[i - 1], dir)) != NULL)
                vals[i - 1] = moved[nmoved++];
            else
                fprintf(stderr, "%s: warning: %s names a file not found from %s; written as "
                        "it is\n", e->key, k, conf_dir);
        }
        if (strcmp(k, "Name") == 0) {
            keys[i] = "tenant";
            vals[i++] = e->tenant;
            if (e->instance) {
                keys[i] = "level";
                vals[i++] = "instance";
            }
        }
    }
    snprintf(comment, sizeof(comment), "Exported by `ferry store export` from %s%s.",
             endpoint, e->key);
    if ((rc = ferry_conf_dest_render(keys, vals, i, comment, &text, &len, &err)) != FERRY_OK) {
        fprintf(stderr, "%s: %s\n", e->key, err.msg);
        goto out;
    }
    n = strlen(dir) + strlen(e->name) + sizeof(STORE_INSTANCE_SUFFIX) + 8;
    if ((path = malloc(n)) == NULL) {
        rc = FERRY_ENOMEM;
        goto out;
    }
    snprintf(path, n, "%s%s%s%s.yaml", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->name,
             e->instance ? STORE_INSTANCE_SUFFIX : "");
    if ((rc = ferry_conf_file_replace(path, text, len, 0600, &err)) != FERRY_OK)
        fprintf(stderr, "%s\n", err.msg);
out:
    if (rc == FERRY_ENOMEM)
        fprintf(stderr, "ferry store: out of memory\n");
    if (text != NULL)
        explicit_bzero(text, len);
    free(text);
    free(path);
    for (size_t j = 0; j < nmoved; j++)
        free(moved[j]);
    free(moved);
    free(keys);
    free(vals);
    return rc;
}

static int
by_name_then_place(const void *a, const void *b)
{
    const struct store_entry *x = *(const struct store_entry *const *)a;
    const struct store_entry *y = *(const struct store_entry *const *)b;
    int                       c = strcmp(x->name, y->name);

    return c != 0 ? c : (x < y ? -1 : x > y);
}

/* dup[i]: an earlier entry (in key order) of another tenant has e[i]'s Name (one tenant
 * may have it at both levels: two files). NULL on ENOMEM (printed). */
static bool *
later_duplicates(const struct store_entry *e, size_t n)
{
    const struct store_entry **by = calloc(n + 1, sizeof(*by));
    bool                      *dup = calloc(n + 1, sizeof(*dup));

    if (by == NULL || dup == NULL) {
        fprintf(stderr, "ferry store: out of memory\n");
        free(by);
        free(dup);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        by[i] = &e[i];
    if (n > 1)
        qsort(by, n, sizeof(*by), by_name_then_place);
    for (size_t i = 1, first = 0; i < n; i++) {
        if (strcmp(by[first]->name, by[i]->name) != 0)
            first = i;
        else if (strcmp(by[first]->tenant, by[i]->tenant) != 0)
            dup[by[i] - e] = true;
    }
    free(by);
    return dup;
}

static int
export_files(const struct ferry_conf *conf, const char *dir, const char *endpoint,
             const struct store_entry *e, size_t n, int skipped)
{
    size_t written = 0;
    bool  *dup;

    if (make_dir(dir) != FERRY_OK || (dup = later_duplicates(e, n)) == NULL)
        return STORE_EXIT_FAIL;
    for (size_t i = 0; i < n; i++) {
        /* Names are unique across a gateway: a second tenant's would overwrite the file. */
        if (dup[i]) {
            fprintf(stderr, "%s: another tenant has a destination '%s' (names are unique "
                    "across a gateway); skipped\n", e[i].key, e[i].name);
            skipped++;
            continue;
        }
        /* Written all the same: a copy of what etcd holds, which the gateway skips. */
        if (ferry_conf_tenant(conf, e[i].tenant) == NULL)
            fprintf(stderr, "%s: warning: tenant '%s' is not one of %s's: the gateway skips "
                    "this destination and ferry check refuses its file\n", e[i].key,
                    e[i].tenant, conf->path);
        if (write_entry(conf->dir, dir, endpoint, &e[i]) != FERRY_OK) {
            fprintf(stderr, "ferry store: stopped after %zu files\n", written);
            free(dup);
            return STORE_EXIT_FAIL;
        }
        written++;
    }
    free(dup);
    printf("exported %zu destinations to %s\n", written, dir);
    if (skipped > 0) {
        fprintf(stderr, "ferry store: %d keys skipped\n", skipped);
        return STORE_EXIT_FAIL;
    }
    return STORE_EXIT_OK;
}

static int
cmd_export(const struct store_args *a)
{
    struct ferry_conf  *conf;
    struct store_entry *e = NULL;
    struct store_cli    cli;
    char               *prefix;
    size_t              n = 0;
    int                 skipped = 0, rc = STORE_EXIT_FAIL;

    if ((conf = load_target(a->conf_path, "export")) == NULL)
        return STORE_EXIT_CONFIG;
    if ((prefix = dests_prefix(conf->store)) == NULL ||
        store_cli_open(&cli, conf->store) != FERRY_OK) {
        free(prefix);
        ferry_conf_free(conf);
        return STORE_EXIT_FAIL;
    }
    if (store_read_entries(&cli, prefix, false, &e, &n, &skipped) == FERRY_OK) {
        if (a->k8s) {
            rc = store_k8s_print(conf, e, n, &a->k8s_o, stdout);
            if (rc == STORE_EXIT_OK && skipped > 0) {
                fprintf(stderr, "ferry store: %d keys skipped\n", skipped);
                rc = STORE_EXIT_FAIL;
            }
        } else {
            rc = export_files(conf, a->operand, etcd_endpoint(cli.etcd), e, n, skipped);
        }
    }
    store_entries_free(e, n);
    store_cli_close(&cli);
    free(prefix);
    ferry_conf_free(conf);
    return rc;
}

/* ---- the command line ----------------------------------------------------------------- */

static int
parse_port(const char *s, unsigned *out)
{
    char         *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || !isdigit((unsigned char)*s) || v < 1 ||
        v > 65535)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int
parse_args(int argc, char **argv, struct store_args *a)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "dry-run", no_argument, NULL, 'n' },
        { "k8s-services", no_argument, NULL, 'k' },
        { "namespace", required_argument, NULL, 'N' },
        { "selector", required_argument, NULL, 'S' },
        { "port", required_argument, NULL, 'P' },
        { "target-port", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *why;
    int         opt;

    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            a->conf_path = optarg;
            break;
        case 'n':
            a->dry_run = true;
            break;
        case 'k':
            a->k8s = true;
            break;
        case 'N':
            if ((why = store_k8s_check_namespace(optarg)) != NULL) {
                usage_error("--namespace: %s", why);
                return STORE_EXIT_CONFIG;
            }
            a->k8s_o.ns = optarg;
            a->k8s_opts = true;
            break;
        case 'S':
            if ((why = store_k8s_check_selector(optarg)) != NULL) {
                usage_error("--selector: %s", why);
                return STORE_EXIT_CONFIG;
            }
            if (a->k8s_o.nselectors == STORE_K8S_MAX_SELECTORS) {
                usage_error("--selector: at most %d", STORE_K8S_MAX_SELECTORS);
                return STORE_EXIT_CONFIG;
            }
            a->k8s_o.selector[a->k8s_o.nselectors++] = optarg;
            a->k8s_opts = true;
            break;
        case 'P':
        case 'T':
            if (parse_port(optarg, opt == 'P' ? &a->k8s_o.port : &a->k8s_o.target_port) != 0) {
                usage_error("want a port from 1 to 65535, not '%s'", optarg);
                return STORE_EXIT_CONFIG;
            }
            a->k8s_opts = true;
            break;
        case 'h':
            printf("usage:\n");
            ferry_store_cli_usage(stdout);
            return STORE_EXIT_OK;
        default:
            usage_error("%s", "unknown option");
            return STORE_EXIT_CONFIG;
        }
    }
    if (optind >= argc) {
        usage_error("%s", "want a subcommand: import or export");
        return STORE_EXIT_CONFIG;
    }
    a->sub = argv[optind++];
    if (strcmp(a->sub, "import") != 0 && strcmp(a->sub, "export") != 0) {
        usage_error("unknown subcommand '%s'", a->sub);
        return STORE_EXIT_CONFIG;
    }
    if (strcmp(a->sub, "import") == 0 && (a->k8s || a->k8s_opts)) {
        usage_error("%s", "--k8s-services and its options are for `store export`");
        return STORE_EXIT_CONFIG;
    }
    if (strcmp(a->sub, "export") == 0 && a->dry_run) {
        usage_error("%s", "--dry-run is for `store import`");
        return STORE_EXIT_CONFIG;
    }
    if (a->k8s_opts && !a->k8s) {
        usage_error("%s", "--namespace, --selector, --port and --target-port need "
                    "--k8s-services");
        return STORE_EXIT_CONFIG;
    }
    if (a->k8s) {
        if (optind < argc) {
            usage_error("--k8s-services prints to stdout: unexpected '%s'", argv[optind]);
            return STORE_EXIT_CONFIG;
        }
        return -1;
    }
    if (argc - optind != 1) {
        usage_error("%s", strcmp(a->sub, "import") == 0 ? "store import wants one SOURCE"
                    : "store export wants one DIR (or --k8s-services)");
        return STORE_EXIT_CONFIG;
    }
    a->operand = argv[optind];
    if (a->operand[0] == '\0') {
        usage_error("%s", "an empty path");
        return STORE_EXIT_CONFIG;
    }
    return -1;                      /* go on */
}

int
ferry_store_cli_main(int argc, char **argv)
{
    struct store_args a = { .conf_path = "conf/ferry.yaml", .k8s_o.port = 80 };
    int               rc;

    if ((rc = parse_args(argc, argv, &a)) >= 0)
        return rc;
    return strcmp(a.sub, "import") == 0 ? cmd_import(&a) : cmd_export(&a);
}
