/*
 * loader.c: dlopen() protocol plugins and check their descriptor before trusting it.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ferry/metrics.h>

#include "plugin/loader.h"
#include "stats/stats.h"

#ifndef FERRY_PLUGIN_INSTALL_DIR
#define FERRY_PLUGIN_INSTALL_DIR "/usr/local/lib/ferry/plugins"
#endif
/* The install dir relative to the binary's (bin/ -> lib/<triplet>/ferry/plugins): a
 * package installs under another prefix than the build was configured for. */
#ifndef FERRY_PLUGIN_REL_DIR
#define FERRY_PLUGIN_REL_DIR "../lib/ferry/plugins"
#endif

#define MAX_PLUGINS 64

struct loaded {
    char                      *name;
    char                      *path;
    void                      *handle;
    const struct ferry_plugin *desc;
};

static struct loaded loaded[MAX_PLUGINS];   /* main thread only */
static size_t        nloaded;
static const char   *initializing;          /* the plugin whose init() runs now */
static char          exe_dir[PATH_MAX];

void
ferry_plugin_set_exe_dir(const char *dir)
{
    snprintf(exe_dir, sizeof(exe_dir), "%s", dir);
}

static bool
name_is_valid(const char *name)
{
    if (*name == '\0' || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static int
find_file(const char *name, const char *plugins_dir, char *path, size_t size, char *tried,
          size_t tried_size)
{
    const char *dirs[4];
    char        d1[PATH_MAX + 16], d2[PATH_MAX + 16], d3[PATH_MAX + 64];
    size_t      n = 0;

    tried[0] = '\0';
    if (plugins_dir != NULL) {
        dirs[n++] = plugins_dir;       /* explicit: nowhere else, or the error misleads */
    } else {
        if (exe_dir[0] != '\0') {
            snprintf(d1, sizeof(d1), "%s/../plugins", exe_dir);
            snprintf(d2, sizeof(d2), "%s/plugins", exe_dir);
            snprintf(d3, sizeof(d3), "%s/%s", exe_dir, FERRY_PLUGIN_REL_DIR);
            dirs[n++] = d1;
            dirs[n++] = d2;
            dirs[n++] = d3;
        }
        dirs[n++] = FERRY_PLUGIN_INSTALL_DIR;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(path, size, "%s/ferry_%s.so", dirs[i], name);
        if (access(path, R_OK) == 0)
            return 0;
        snprintf(tried + strlen(tried), tried_size - strlen(tried), "%s%s", i ? ", " : "",
                 dirs[i]);
    }
    return -1;
}

/* Another major, or a newer minor (it may call what this ferry lacks): refused with
 * both versions. Older minors of this major load. */
static int
abi_refused(const char *path, unsigned major, unsigned minor, struct ferry_err *err)
{
    if (major == FERRY_PLUGIN_ABI_MAJOR && minor <= FERRY_PLUGIN_ABI_MINOR)
        return FERRY_OK;
    return ferry_err_set(err, FERRY_EINVAL,
                         "plugin %s: built for ferry plugin ABI %u.%u, this ferry provides "
                         "%u.%u; %s", path, major, minor, FERRY_PLUGIN_ABI_MAJOR,
                         FERRY_PLUGIN_ABI_MINOR,
                         major == FERRY_PLUGIN_ABI_MAJOR
                             ? "upgrade ferry, or rebuild the plugin against this ferry's headers"
                             : "rebuild the plugin against this ferry's headers");
}

int
ferry_plugin_load(const char *name, const char *plugins_dir, const struct ferry_plugin **out,
                  struct ferry_err *err)
{
    char                       path[PATH_MAX + 32], tried[4 * PATH_MAX];
    void                      *h;
    const struct ferry_plugin *p;
    struct ferry_err           ierr = { 0 };
    struct plugin_abi          abi;

    for (size_t i = 0; i < nloaded; i++) {
        if (strcmp(loaded[i].name, name) == 0) {
            *out = loaded[i].desc;
            return FERRY_OK;
        }
    }
    if (!name_is_valid(name))
        return ferry_err_set(err, FERRY_EINVAL, "plugin name '%s' is not [a-z0-9_]+", name);
    if (nloaded == MAX_PLUGINS)
        return ferry_err_set(err, FERRY_ELIMIT, "more than %d plugins", MAX_PLUGINS);
    if (find_file(name, plugins_dir, path, sizeof(path), tried, sizeof(tried)) != 0)
        return ferry_err_set(err, FERRY_ENOTFOUND, "plugin '%s': ferry_%s.so not found in %s",
                             name, name, tried);
    /* Before dlopen: a newer plugin's missing symbols would fail the load first, with
     * a message that names neither version. */
    if (ferry_plugin_file_abi(path, &abi) == 0 &&
        abi_refused(path, abi.major, abi.minor, err) != FERRY_OK)
        return FERRY_EINVAL;
    if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
        return ferry_err_set(err, FERRY_EINVAL, "%s: cannot load: %s", path, dlerror());
    if ((p = dlsym(h, "ferry_plugin")) == NULL) {
        dlclose(h);
        return ferry_err_set(err, FERRY_EINVAL,
                             "%s: no 'ferry_plugin' symbol; export one with FERRY_PLUGIN_EXPORT",
                             path);
    }
    if (abi_refused(path, p->abi_major, p->abi_minor, err) != FERRY_OK) {
        dlclose(h);
        return FERRY_EINVAL;
    }
    if (p->struct_size < offsetof(struct ferry_plugin, fini) || p->name == NULL ||
        p->on_accept == NULL) {
        dlclose(h);
        return ferry_err_set(err, FERRY_EINVAL,
                             "%s: plugin descriptor incomplete (name and on_accept are required)",
                             path);
    }
    if (strcmp(p->name, name) != 0) {
        ferry_err_set(err, FERRY_EINVAL, "%s: plugin calls itself '%s', expected '%s'", path,
                      p->name, name);
        dlclose(h);
        return FERRY_EINVAL;
    }
    initializing = name;
    if (p->init != NULL && p->init(&ierr) != FERRY_OK) {
        initializing = NULL;
        ferry_err_set(err, FERRY_EINVAL, "%s: init failed: %s", path, ierr.msg);
        dlclose(h);
        return FERRY_EINVAL;
    }
    initializing = NULL;
    loaded[nloaded].name = strdup(name);
    loaded[nloaded].path = strdup(path);
    loaded[nloaded].handle = h;
    loaded[nloaded].desc = p;
    nloaded++;
    *out = p;
    return FERRY_OK;
}

static bool
counter_name_is_valid(const char *name)
{
    if (name == NULL || strlen(name) > 64 || !((*name >= 'a' && *name <= 'z') || *name == '_'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* Here, not in stats/: only the loader knows which plugins exist, so a counter is
 * always labelled with the name of a plugin that was really loaded. */
FERRY_API int
ferry_counter_register(const char *plugin, const char *name, const char *help,
                       struct ferry_counter **out)
{
    bool known = plugin != NULL && initializing != NULL && strcmp(plugin, initializing) == 0;

    for (size_t i = 0; i < nloaded && !known && plugin != NULL; i++)
        known = strcmp(loaded[i].name, plugin) == 0;
    if (!known || !counter_name_is_valid(name) || out == NULL)
        return FERRY_EINVAL;
    return stats_counter_get(plugin, name, help, FERRY_COUNTERS_PER_PLUGIN, out);
}

void
ferry_plugin_unload_all(void)
{
    while (nloaded > 0) {
        struct loaded *l = &loaded[--nloaded];

        if (l->desc->struct_size > offsetof(struct ferry_plugin, fini) && l->desc->fini != NULL)
            l->desc->fini();
        /* ASan reports leaks in unloaded code without symbols: keep the mapping. */
        free(l->name);
        free(l->path);
    }
}
