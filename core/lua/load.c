/*
 * load.c: policies as part of a configuration. Main thread only, at startup, for
 * `ferry check` and on SIGHUP: blocking file reads are fine here and nowhere else.
 *
 * For every destination with `policy:` the script is read (once per file), and so are
 * the .lua files `require` may reach: those under the script's own folder and under
 * the lua/ library folder (found like plugins: beside the binary, the source tree,
 * the install prefix). Each script is compiled and its top level run once in a
 * scratch state, under the same budget and memory cap as a hook, to learn which hooks
 * it defines. Errors are `file:line:col: message`. On a reload a script that no longer
 * loads is replaced by the previous configuration's script for that destination (its
 * text and modules as they were), and the reason is logged.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dest/dest-int.h"
#include "lua/lua-int.h"

#ifndef FERRY_LUA_INSTALL_DIR
#define FERRY_LUA_INSTALL_DIR "/usr/local/share/ferry/lua"
#endif
#ifndef FERRY_SOURCE_LUA_DIR
#define FERRY_SOURCE_LUA_DIR ""
#endif

#define DIR_MAX_BYTES (16u * 1024 * 1024)       /* module text read per folder */


static bool
is_dir(const char *path)
{
    struct stat st;

    return path[0] != '\0' && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *
policy_lib_dir(void)
{
    static char cand[2][PATH_MAX + 32];            /* main thread only */
    char        exe_dir[PATH_MAX], *slash;
    ssize_t     n = readlink("/proc/self/exe", exe_dir, sizeof(exe_dir) - 1);

    exe_dir[n > 0 ? n : 0] = '\0';
    if ((slash = strrchr(exe_dir, '/')) != NULL)
        *slash = '\0';
    snprintf(cand[0], sizeof(cand[0]), "%s/../share/ferry/lua", exe_dir);
    snprintf(cand[1], sizeof(cand[1]), "%s/lua", exe_dir);
    for (int i = 0; i < 2 && exe_dir[0] != '\0'; i++) {
        if (is_dir(cand[i]))
            return cand[i];
    }
    if (is_dir(FERRY_SOURCE_LUA_DIR))
        return FERRY_SOURCE_LUA_DIR;
    return FERRY_LUA_INSTALL_DIR;
}

/* ---- lookups --------------------------------------------------------------------------- */

const char *
policy_auth_module(const struct ferry_dest *d)
{
    static const char *const mods[] = {
        "ferry.auth.OAuth2ClientCredentials", "ferry.auth.OAuth2Password",
        "ferry.auth.OAuth2RefreshToken", "ferry.auth.OAuth2JWTBearer",
    };
    const char *a = ferry_dest_authentication(d);

    for (size_t i = 0; a != NULL && i < sizeof(mods) / sizeof(mods[0]); i++)
        if (strcmp(a, mods[i] + strlen("ferry.auth.")) == 0)
            return mods[i];
    return NULL;
}

bool
policy_dest_index(const struct ferry_policy_set *s, const struct ferry_dest *d, size_t *i)
{
    uintptr_t p = (uintptr_t)d, base;

    if (s == NULL || d == NULL)
        return false;
    base = (uintptr_t)s->dests;
    if (p < base || p >= base + s->ndests * sizeof(*d) || (p - base) % sizeof(*d) != 0)
        return false;
    *i = (p - base) / sizeof(*d);
    return true;
}

const struct policy_script *
policy_script_of(const struct ferry_policy_set *s, const struct ferry_dest *d, size_t *script)
{
    size_t i;

    if (!policy_dest_index(s, d, &i) || s->by_dest[i] == 0)
        return NULL;
    if (script != NULL)
        *script = s->by_dest[i] - 1;
    return &s->scripts[s->by_dest[i] - 1];
}

/* ---- files ------------------------------------------------------------------------------- */

static int
read_text(const char *path, char **out, size_t *len, char *why, size_t whylen)
{
    FILE  *fp = NULL;
    char  *buf = NULL;
    long   size;
    int    rc = FERRY_EIO;

    if ((fp = fopen(path, "rb")) == NULL) {
        snprintf(why, whylen, "cannot read: %s", strerror(errno));
        goto out;
    }
    if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        snprintf(why, whylen, "cannot read: %s", strerror(errno));
        goto out;
    }
    if (size > POLICY_MAX_SOURCE_BYTES) {
        snprintf(why, whylen, "larger than %d bytes", POLICY_MAX_SOURCE_BYTES);
        rc = FERRY_ELIMIT;
        goto out;
    }
    if ((buf = malloc((size_t)size + 1)) == NULL) {
        snprintf(why, whylen, "out of memory");
        rc = FERRY_ENOMEM;
        goto out;
    }
    if (fread(buf, 1, (size_t)size, fp) != (size_t)size) {
        snprintf(why, whylen, "cannot read: short read");
        goto out;
    }
    buf[size] = '\0';
    *out = buf;             /* the caller owns it now */
    buf = NULL;
    *len = (size_t)size;
    rc = FERRY_OK;
out:
    free(buf);
    if (fp != NULL)
        fclose(fp);
    return rc;
}

static void
dir_fini(struct policy_dir *d)
{
    for (size_t i = 0; i < d->nmods; i++) {
        free(d->mods[i].name);
        free(d->mods[i].path);
        free(d->mods[i].src);
    }
    free(d->mods);
    free(d->path);
    memset(d, 0, sizeof(*d));
}

static bool
ends_with_lua(const char *name)
{
    size_t n = strlen(name);

    return n > 4 && strcmp(name + n - 4, ".lua") == 0;
}

/* Every .lua file under root/rel (bounded: depth, count, bytes). Unreadable ones are
 * skipped: they can only matter if required, and then require says not found. */
static void
scan(struct policy_dir *d, const char *rel, int depth, size_t *total)
{
    char           full[PATH_MAX];
    DIR           *dp;
    struct dirent *e;

    snprintf(full, sizeof(full), "%s%s%s", d->path, rel[0] ? "/" : "", rel);
    if ((dp = opendir(full)) == NULL)
        return;
    while ((e = readdir(dp)) != NULL && d->nmods < POLICY_MAX_MODULES) {
        char                  sub[PATH_MAX], path[PATH_MAX + 2];
        struct stat           st;
        struct policy_module *m, *grown;
        char                  why[128];
        int                   n;

        if (e->d_name[0] == '.')
            continue;
        n = snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        if (n < 0 || (size_t)n >= sizeof(sub))
            continue;
        snprintf(path, sizeof(path), "%s/%s", d->path, sub);
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth + 1 < POLICY_MAX_DEPTH)
                scan(d, sub, depth + 1, total);
            continue;
        }
        if (!S_ISREG(st.st_mode) || !ends_with_lua(e->d_name) ||
            st.st_size > POLICY_MAX_SOURCE_BYTES || *total + (size_t)st.st_size > DIR_MAX_BYTES)
            continue;
        if ((grown = realloc(d->mods, (d->nmods + 1) * sizeof(*d->mods))) == NULL)
            break;
        d->mods = grown;
        m = &d->mods[d->nmods];
        memset(m, 0, sizeof(*m));
        if (read_text(path, &m->src, &m->len, why, sizeof(why)) != FERRY_OK)
            continue;
        if ((m->name = strdup(sub)) == NULL || (m->path = strdup(path)) == NULL) {
            free(m->name);
            free(m->src);
            break;
        }
        *total += m->len;
        d->nmods++;
    }
    closedir(dp);
}

/* The set's folder at path (scanned once), or a new one. 0 only for the library. */
static int
add_dir(struct ferry_policy_set *s, const char *path, size_t *out)
{
    struct policy_dir *grown;
    size_t             total = 0;

    for (size_t i = 1; i < s->ndirs; i++) {
        if (strcmp(s->dirs[i].path, path) == 0) {
            *out = i;
            return FERRY_OK;
        }
    }
    if ((grown = realloc(s->dirs, (s->ndirs + 1) * sizeof(*s->dirs))) == NULL)
        return FERRY_ENOMEM;
    s->dirs = grown;
    memset(&s->dirs[s->ndirs], 0, sizeof(*s->dirs));
    if ((s->dirs[s->ndirs].path = strdup(path)) == NULL)
        return FERRY_ENOMEM;
    scan(&s->dirs[s->ndirs], "", 0, &total);
    *out = s->ndirs++;
    return FERRY_OK;
}

static int
copy_dir(struct ferry_policy_set *s, const struct policy_dir *from, size_t *out)
{
    struct policy_dir *grown, *d;

    if ((grown = realloc(s->dirs, (s->ndirs + 1) * sizeof(*s->dirs))) == NULL)
        return FERRY_ENOMEM;
    s->dirs = grown;
    d = &s->dirs[s->ndirs];
    memset(d, 0, sizeof(*d));
    s->ndirs++;             /* counted now: dir_fini releases a partial copy */
    if ((d->path = strdup(from->path)) == NULL ||
        (from->nmods > 0 && (d->mods = calloc(from->nmods, sizeof(*d->mods))) == NULL))
        return FERRY_ENOMEM;
    for (size_t i = 0; i < from->nmods; i++, d->nmods++) {
        struct policy_module *m = &d->mods[i];

        m->len = from->mods[i].len;
        if ((m->name = strdup(from->mods[i].name)) == NULL ||
            (m->path = strdup(from->mods[i].path)) == NULL ||
            (m->src = malloc(m->len + 1)) == NULL) {
            d->nmods++;
            return FERRY_ENOMEM;
        }
        memcpy(m->src, from->mods[i].src, m->len + 1);
    }
    *out = s->ndirs - 1;
    return FERRY_OK;
}

static int
add_script(struct ferry_policy_set *s, const char *path, size_t *out)
{
    struct policy_script *grown, *sc;

    if ((grown = realloc(s->scripts, (s->nscripts + 1) * sizeof(*s->scripts))) == NULL)
        return FERRY_ENOMEM;
    s->scripts = grown;
    sc = &s->scripts[s->nscripts];
    memset(sc, 0, sizeof(*sc));
    if ((sc->path = strdup(path)) == NULL)
        return FERRY_ENOMEM;
    *out = s->nscripts++;
    return FERRY_OK;
}

void
ferry_policy_set_free(struct ferry_policy_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nscripts; i++) {
        free(s->scripts[i].path);
        free(s->scripts[i].src);
    }
    for (size_t i = 0; i < s->ndirs; i++)
        dir_fini(&s->dirs[i]);
    free(s->scripts);
    free(s->dirs);
    free(s->by_dest);
    free(s);
}

/* ---- positions ------------------------------------------------------------------------ */

/* "chunk:12: text" -> 12 and "text"; a message without a position -> 0 and itself. */
static const char *
split_pos(const char *msg, int *line)
{
    for (const char *p = strchr(msg, ':'); p != NULL; p = strchr(p + 1, ':')) {
        const char *q = p + 1;
        int         n = 0;

        if (!isdigit((unsigned char)*q))
            continue;
        while (isdigit((unsigned char)*q) && n < 10000000)
            n = n * 10 + (*q++ - '0');
        if (*q == ':') {
            *line = n;
            for (q++; *q == ' '; q++)
                ;
            return q;
        }
    }
    *line = 0;
    return msg;
}

/* Start of line `line` (1-based) in src and its length. */
static const char *
line_at(const char *src, int line, size_t *len)
{
    const char *p = src, *nl;

    for (int i = 1; i < line && (nl = strchr(p, '\n')) != NULL; i++)
        p = nl + 1;
    nl = strchr(p, '\n');
    *len = nl != NULL ? (size_t)(nl - p) : strlen(p);
    return p;
}

/* Lua reports no column: take the one of the token its message names ("near 'x'"). */
static int
near_col(const char *src, int line, const char *msg)
{
    const char *near = strstr(msg, " near ");
    size_t      len, tlen;
    const char *l = line_at(src, line, &len), *tok, *end, *at;
    char        t[128];

    if (near == NULL)
        return 1;
    tok = near + 6;
    if (strncmp(tok, "<eof>", 5) == 0)
        return (int)len + 1;
    if (*tok == '\'') {
        tok++;
        end = strrchr(tok, '\'');
        tlen = end != NULL ? (size_t)(end - tok) : strlen(tok);
    } else {
        tlen = strcspn(tok, " ");
    }
    if (tlen == 0 || tlen >= sizeof(t))
        return 1;
    memcpy(t, tok, tlen);
    t[tlen] = '\0';
    for (at = l; at + tlen <= l + len; at++)
        if (memcmp(at, t, tlen) == 0)
            return (int)(at - l) + 1;
    return 1;
}

/* Line and column of the first `word` in src (1, 1 if absent); last: the last one. */
static void
find_word(const char *src, const char *word, bool last, int *line, int *col)
{
    const char *hit = NULL, *p = src, *q;

    while ((q = strstr(p, word)) != NULL) {
        hit = q;
        if (!last)
            break;
        p = q + 1;
    }
    *line = 1;
    *col = 1;
    if (hit == NULL)
        return;
    for (p = src; p < hit; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

struct failure {
    char file[256];
    int  line, col;
    char msg[512];
};

/* Turn a failed check of script i into file:line:col and a message. */
static void
describe(const struct ferry_policy_set *s, size_t i, const struct policy_run *run,
         struct failure *f)
{
    const struct policy_script *sc = &s->scripts[i];
    int                         line = 0;
    const char                 *rest = split_pos(run->error, &line);
    bool                        own = sc->src != NULL && strcmp(run->where_src, sc->path) == 0;

    snprintf(f->file, sizeof(f->file), "%s", run->where_src[0] ? run->where_src : sc->path);
    f->col = 1;
    if (run->where_line > 0) {
        f->line = run->where_line;
    } else if (line > 0) {
        f->line = line;             /* a syntax error: no frame, the message says where */
        if (own)
            f->col = near_col(sc->src, line, rest);
    } else if (sc->src == NULL) {
        f->line = 1;
    } else if (strstr(run->error, "must return a table") != NULL) {
        find_word(sc->src, "return", true, &f->line, &f->col);
    } else if (strstr(run->error, "must be a function") != NULL) {
        char word[32];

        snprintf(word, sizeof(word), "%.*s", (int)strcspn(run->error, " "), run->error);
        find_word(sc->src, word, false, &f->line, &f->col);
    } else {
        f->line = 1;
    }
    /* The position is printed before the message: drop the one Lua put in it. */
    if (line > 0 && (line == f->line || run->where_line == 0))
        snprintf(f->msg, sizeof(f->msg), "%s", rest);
    else
        snprintf(f->msg, sizeof(f->msg), "%s", run->error);
}

/* ---- loading ----------------------------------------------------------------------------- */

static void
warn_unknown(struct ferry_errlist *warns, const struct policy_script *sc,
             const struct policy_run *r)
{
    static const char *const hooks[] = { "on_request", "on_response", "on_connect", "on_ldap" };

    for (unsigned k = 0; k < r->nunknown; k++) {
        const char *near = ferry_suggest(r->unknown[k], hooks, 4, 2);
        int         line, col;

        find_word(sc->src, r->unknown[k], false, &line, &col);
        ferry_errlist_add(warns, sc->path, line, col,
                          "'%s' is not a hook (on_request, on_response, on_connect, on_ldap)"
                          "%s%s%s", r->unknown[k], near ? "; did you mean '" : "",
                          near ? near : "", near ? "'?" : "");
    }
    if (r->hooks == 0 && r->nunknown == 0)
        ferry_errlist_add(warns, sc->path, 1, 1, "the policy defines no hooks");
}

/* prev's script for the destination named like d, copied into s; FERRY_ENOTFOUND if
 * prev had none. */
static int
keep_previous(struct ferry_policy_set *s, const struct ferry_policy_set *prev,
              const struct ferry_dest *d, size_t *out)
{
    const struct ferry_dest    *pd = NULL;
    const struct policy_script *old;
    struct policy_script       *sc;
    size_t                      dir = 0, i;
    int                         rc;

    /* A reload that failed to load a script: rare, so a linear search will do. */
    for (i = 0; prev != NULL && i < prev->ndests && pd == NULL; i++)
        if (strcmp(prev->dests[i].name, d->name) == 0)
            pd = &prev->dests[i];
    if (pd == NULL || (old = policy_script_of(prev, pd, NULL)) == NULL)
        return FERRY_ENOTFOUND;
    if (old->dir != 0 && (rc = copy_dir(s, &prev->dirs[old->dir], &dir)) != FERRY_OK)
        return rc;
    if ((rc = add_script(s, old->path, &i)) != FERRY_OK)
        return rc;
    sc = &s->scripts[i];
    if (old->src != NULL) {
        if ((sc->src = malloc(old->len + 1)) == NULL)
            return FERRY_ENOMEM;
        memcpy(sc->src, old->src, old->len + 1);
    }
    sc->len = old->len;
    sc->auth = policy_auth_module(d);
    sc->hooks = old->hooks;
    sc->dir = dir;
    sc->kept = true;
    *out = i;
    return FERRY_OK;
}

/* Read every destination's script into s (by_dest set); read errors become failures. */
static int
read_scripts(struct ferry_policy_set *s, const struct ferry_registry *reg, struct failure *fail)
{
    for (size_t i = 0; i < reg->n; i++) {
        const struct ferry_dest *d = &reg->dests[i];
        const char              *auth = policy_auth_module(d), *path = d->policy;
        struct policy_script    *sc;
        size_t                   k, dir;
        char                     dname[PATH_MAX], *slash, why[256], apath[PATH_MAX];
        int                      rc;

        if (d->policy == NULL && auth == NULL)
            continue;
        if (path == NULL) {
            /* Authentication alone: the module is the policy (vm.c composes them). */
            snprintf(apath, sizeof(apath), "%s/ferry/auth/%s.lua", s->dirs[0].path,
                     auth + strlen("ferry.auth."));
            path = apath;
        }
        for (k = 0; k < s->nscripts && (strcmp(s->scripts[k].path, path) != 0 ||
                                        s->scripts[k].auth != auth); k++)
            ;
        if (k == s->nscripts) {
            if ((rc = add_script(s, path, &k)) != FERRY_OK)
                return rc;
            s->scripts[k].auth = auth;
            if (d->policy == NULL) {
                s->by_dest[i] = (uint32_t)k + 1;
                continue;
            }
            snprintf(dname, sizeof(dname), "%s", d->policy);
            if ((slash = strrchr(dname, '/')) == NULL)
                snprintf(dname, sizeof(dname), ".");
            else
                slash[slash == dname ? 1 : 0] = '\0';      /* "/p.lua" -> "/" */
            if ((rc = add_dir(s, dname, &dir)) != FERRY_OK)
                return rc;
            sc = &s->scripts[k];
            sc->dir = dir;
            if (read_text(d->policy, &sc->src, &sc->len, why, sizeof(why)) != FERRY_OK) {
                snprintf(fail[k].file, sizeof(fail[k].file), "%s", d->policy);
                fail[k].line = 1;
                fail[k].col = 1;
                snprintf(fail[k].msg, sizeof(fail[k].msg), "%s", why);
            }
        }
        s->by_dest[i] = (uint32_t)k + 1;
    }
    return FERRY_OK;
}

static int
check_scripts(struct ferry_policy_set *s, struct failure *fail, struct ferry_errlist *warns)
{
    struct policy_vm *vm = ferry_policy_vm_new(s);
    struct policy_run run;

    if (vm == NULL)
        return FERRY_ENOMEM;
    for (size_t k = 0; k < s->nscripts; k++) {
        if (fail[k].msg[0] != '\0')
            continue;
        if (policy_vm_check(vm, k, &run) != FERRY_OK) {
            describe(s, k, &run, &fail[k]);
            continue;
        }
        s->scripts[k].hooks = run.hooks;
        warn_unknown(warns, &s->scripts[k], &run);
    }
    ferry_policy_vm_free(vm);
    return FERRY_OK;
}

int
ferry_policy_load(const struct ferry_conf *conf, const struct ferry_policy_set *prev,
                  struct ferry_policy_set **out, struct ferry_errlist *errs)
{
    const struct ferry_registry *reg = conf->registry;
    struct ferry_policy_set     *s;
    struct failure              *fail = NULL;
    struct ferry_errlist         warns = { 0 };
    size_t                       nchecked, n = 0;
    int                          rc = FERRY_ENOMEM;

    *out = NULL;
    for (size_t i = 0; reg != NULL && i < reg->n; i++)
        n += reg->dests[i].policy != NULL || policy_auth_module(&reg->dests[i]) != NULL;
    if (n == 0)
        return FERRY_OK;
    if ((s = calloc(1, sizeof(*s))) == NULL ||
        (s->by_dest = calloc(reg->n, sizeof(*s->by_dest))) == NULL ||
        (fail = calloc(n, sizeof(*fail))) == NULL)
        goto out;
    s->dests = reg->dests;
    s->ndests = reg->n;
    s->lim.instructions = POLICY_INSTRUCTIONS;
    s->lim.call_bytes = POLICY_CALL_BYTES;
    s->lim.state_bytes = POLICY_STATE_BYTES;
    if ((s->dirs = calloc(1, sizeof(*s->dirs))) == NULL)
        goto out;
    s->ndirs = 1;
    if ((s->dirs[0].path = strdup(policy_lib_dir())) == NULL)
        goto out;
    {
        size_t total = 0;

        scan(&s->dirs[0], "", 0, &total);
    }
    if ((rc = read_scripts(s, reg, fail)) != FERRY_OK ||
        (rc = check_scripts(s, fail, &warns)) != FERRY_OK)
        goto out;
    nchecked = s->nscripts;
    rc = FERRY_OK;
    for (size_t i = 0; i < reg->n; i++) {
        const struct ferry_dest *d = &reg->dests[i];
        size_t                   k = s->by_dest[i], kept;
        struct failure          *f;
        int                      krc;

        if (k == 0 || k > nchecked || fail[k - 1].msg[0] == '\0')
            continue;
        f = &fail[k - 1];
        if ((krc = keep_previous(s, prev, d, &kept)) == FERRY_OK) {
            char what[900];

            s->by_dest[i] = (uint32_t)kept + 1;
            snprintf(what, sizeof(what), "%s:%d:%d: %s", f->file, f->line, f->col, f->msg);
            ferry_log(NULL, FERRY_ERROR, "policy did not load; keeping the previous one",
                      FLOG_STR("destination", d->name), FLOG_STR("error", what));
            continue;
        }
        if (krc != FERRY_ENOTFOUND) {
            rc = krc;
            goto out;
        }
        /* Once per script, not once per destination sharing it. */
        if (f->line >= 0)
            ferry_errlist_add(errs, f->file, f->line, f->col, "%s (policy of destination '%s')",
                              f->msg, d->name);
        f->line = -1;
        rc = FERRY_EINVAL;
    }
out:
    free(fail);
    ferry_errlist_print(&warns, stderr, true);
    if (rc != FERRY_OK) {
        if (rc == FERRY_ENOMEM)
            ferry_errlist_add(errs, conf->path, 0, 0, "out of memory loading policies");
        ferry_policy_set_free(s);
        return rc;
    }
    *out = s;
    return FERRY_OK;
}
