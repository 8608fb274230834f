/*
 * conf-shared.c: what the gateway's ferry.yaml and the connector's connector.yaml read
 * the same way: `workers`, `log.level`, `admin`, files that must be readable, values
 * as they may be quoted in messages, and reading the file itself. Each loader keeps
 * its own sections and defaults (conf.c, connector-conf.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf-int.h"

bool
conf_is_word(const char *s, const char *extra)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'
              || (extra != NULL && strchr(extra, *s) != NULL)))
            return false;
    return true;
}

const char *
conf_shown(const struct conf_ctx *c, const yaml_node_t *map, const char *key, const char *v)
{
    const char *raw = conf_text(conf_value(c, map, key));

    return raw != NULL && strstr(raw, "${") != NULL ? "***" : v;
}

bool
conf_is_null(const yaml_node_t *n)
{
    const char *s = conf_text(n);

    return s != NULL && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
           && (*s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0);
}

int
conf_set_dup(char **slot, const char *s)
{
    free(*slot);
    return (*slot = strdup(s)) == NULL ? FERRY_ENOMEM : FERRY_OK;
}

void
conf_workers(const struct conf_ctx *c, const yaml_node_t *n, unsigned max, unsigned *out)
{
    const char   *s = conf_text(n);
    unsigned long v = 0;

    if (s != NULL && strcmp(s, "auto") == 0) {
        *out = 0;
        return;
    }
    if (s != NULL && *s != '\0' && strspn(s, "0123456789") == strlen(s) && strlen(s) <= 4)
        v = strtoul(s, NULL, 10);
    if (v < 1 || v > max) {
        conf_error(c, n, "workers", "want auto or a number from 1 to %u", max);
        return;
    }
    *out = (unsigned)v;
}

void
conf_log_level(const struct conf_ctx *c, const yaml_node_t *sec, const char *level,
               enum ferry_log_level *out)
{
    static const char *const levels[] = { "debug", "info", "warn", "error" };
    const char              *s;
    size_t                   i;

    for (i = 0; i < 4 && strcmp(levels[i], level) != 0; i++)
        ;
    if (i < 4) {
        *out = (enum ferry_log_level)i;
        return;
    }
    s = ferry_suggest(level, levels, 4, 2);
    if (strcmp(conf_shown(c, sec, "level", level), level) != 0)
        s = NULL;
    conf_error(c, conf_value(c, sec, "level"), "log", "level: unknown level "
               "'%s'%s%s%s (debug, info, warn or error)",
               conf_shown(c, sec, "level", level), s ? " (did you mean '" : "",
               s ? s : "", s ? "'?)" : "");
}

struct admin_conf {
    char *listen;
};

static const struct conf_key admin_keys[] = {
    { "listen", CONF_ADDR, true, offsetof(struct admin_conf, listen), 0, 0 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

void
conf_admin(const struct conf_ctx *c, const yaml_node_t *n, char **listen)
{
    struct admin_conf ac = {0};
    const char       *s = conf_text(n);

    if (s != NULL) {
        if (strcmp(s, "off") == 0) {
            free(*listen);
            *listen = NULL;
        } else {
            conf_error(c, n, "admin", "want off or { listen: host:port }");
        }
        return;
    }
    if (conf_mapping(c, n, "admin", admin_keys, &ac, NULL, NULL) == 0) {
        free(*listen);
        *listen = ac.listen;
        ac.listen = NULL;
    }
    free(ac.listen);
}

void
conf_must_read(const struct conf_ctx *c, const yaml_node_t *sec, const char *where,
               const char *key, const char *path)
{
    if (path != NULL && access(path, R_OK) != 0)
        conf_error(c, conf_value(c, sec, key), where, "%s: cannot read %s: %s", key, path,
                   strerror(errno));
}

int
conf_file_text(const char *path, struct ferry_errlist *errs, char **text)
{
    struct ferry_err err = {0};
    size_t           len;
    int              rc;

    if ((rc = conf_file_read(path, CONF_MAX_FILE_BYTES, text, &len, &err)) != FERRY_OK) {
        ferry_errlist_add(errs, path, 0, 0, "%s", err.msg);
        return rc == FERRY_ENOMEM ? rc : FERRY_EINVAL;
    }
    if (memchr(*text, '\0', len) != NULL) {
        ferry_errlist_add(errs, path, 0, 0, "contains a NUL byte: not a YAML text file");
        free(*text);
        *text = NULL;
        return FERRY_EINVAL;
    }
    return FERRY_OK;
}
