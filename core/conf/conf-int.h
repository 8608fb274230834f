/*
 * conf-int.h: what the files of the conf room share and nobody else sees: the YAML
 * document helpers, the schema-table walker and the listener options constructor.
 */
#ifndef FERRY_CONF_INT_H
#define FERRY_CONF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "conf/conf.h"

/* Bounds on what we read: a config or destination file, and a ${file:} secret. */
#define CONF_MAX_FILE_BYTES   (4u * 1024 * 1024)
#define CONF_MAX_SECRET_BYTES (64u * 1024)

/* One YAML document being read: where messages point and relative paths start. */
struct conf_ctx {
    const char           *file;   /* borrowed: the name printed in messages */
    const char           *dir;    /* borrowed: base for relative paths */
    yaml_document_t      *doc;    /* borrowed */
    struct ferry_errlist *errs;   /* borrowed */
};

/* Report at a node (NULL: at the file), prefixed "where: " unless where is "" or NULL. */
void conf_error(const struct conf_ctx *c, const yaml_node_t *n, const char *where,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Parse one YAML document from text. FERRY_OK and *doc initialised (the caller deletes
 * it), or an error (syntax errors carry their position) added to errs. */
int  conf_doc_load(const char *text, size_t len, const char *file, struct ferry_errlist *errs,
                   yaml_document_t *doc);
/* Read a whole file of at most cap bytes into a NUL-terminated buffer (owned by caller). */
int  conf_file_read(const char *path, size_t cap, char **out, size_t *len,
                    struct ferry_err *err);

/* "dir/rel" (rel as is when absolute or dir is "" or "."); NULL on ENOMEM. */
char *conf_path_join(const char *dir, const char *rel);
/* The directory part of a path ("." if none); NULL on ENOMEM. */
char *conf_dirname(const char *path);

yaml_node_t *conf_node(const struct conf_ctx *c, int index);

/* A scalar's text with secret references expanded (owned by caller). Errors (not a
 * scalar, a bad reference) are reported at the node as "where: key: ...". */
int  conf_scalar(const struct conf_ctx *c, const yaml_node_t *n, const char *where,
                 const char *key, char **out, bool *secret);
/* A scalar's raw text, no expansion (borrowed from the document); NULL if not a scalar. */
const char *conf_text(const yaml_node_t *n);

/* The value node of key in a mapping node, or NULL. */
const yaml_node_t *conf_value(const struct conf_ctx *c, const yaml_node_t *map,
                              const char *key);

/* Schema tables (STYLE §8). */
enum conf_type {
    CONF_END = 0,
    CONF_NODE,      /* store the yaml_node_t * for a section parser */
    CONF_STR,       /* char *, non-empty, secret references expanded */
    CONF_PATH,      /* char *, resolved against the file's directory */
    CONF_U32,       /* uint32_t in [min, max] */
    CONF_ADDR,      /* char *, checked with ferry_addr_parse */
    CONF_LATER,     /* a known key the caller reads itself (conf_value); nothing stored */
};

struct conf_key {
    const char    *key;
    enum conf_type type;
    bool           required;
    size_t         off;
    uint32_t       min, max;
};

/* Keys the table does not know go to pass() when it is set (listener options) and are
 * errors otherwise. A missing required key whose near miss went to pass() is reported
 * as that unknown key with the suggestion instead of as missing. Returns the number of
 * errors found. */
typedef int (*conf_pass_fn)(void *arg, const yaml_node_t *key, const yaml_node_t *val);
int  conf_mapping(const struct conf_ctx *c, const yaml_node_t *map, const char *where,
                  const struct conf_key *keys, void *obj, conf_pass_fn pass, void *arg);

/* Shared by the gateway and connector loaders (conf-shared.c). */
/* Is s non-empty and made of [a-z0-9_] and the characters in extra? */
bool conf_is_word(const char *s, const char *extra);
/* A value as it may be quoted in a message: "***" if map[key] used a ${...} reference. */
const char *conf_shown(const struct conf_ctx *c, const yaml_node_t *map, const char *key,
                       const char *v);
/* A YAML null: `key:` alone, `~` or `null`, unquoted. */
bool conf_is_null(const yaml_node_t *n);
/* Replace *slot with a copy of s. FERRY_OK or FERRY_ENOMEM. */
int  conf_set_dup(char **slot, const char *s);
/* `workers: auto | 1..max` into *out (0 = auto); errors reported at n. */
void conf_workers(const struct conf_ctx *c, const yaml_node_t *n, unsigned max, unsigned *out);
/* A log level name from the mapping sec ("debug" ... "error") into *out, or an error
 * at sec.level with a suggestion. */
void conf_log_level(const struct conf_ctx *c, const yaml_node_t *sec, const char *level,
                    enum ferry_log_level *out);
/* `admin: off` (sets *listen NULL) or `admin: { listen: host:port }`. */
void conf_admin(const struct conf_ctx *c, const yaml_node_t *n, char **listen);
/* Report "where: key: cannot read path" at sec.key unless path is NULL or readable. */
void conf_must_read(const struct conf_ctx *c, const yaml_node_t *sec, const char *where,
                    const char *key, const char *path);
/* A config file's text (NUL-free, owned by the caller), or errors in errs:
 * FERRY_EINVAL, or FERRY_ENOMEM. */
int  conf_file_text(const char *path, struct ferry_errlist *errs, char **text);

/* Listener options (opts.c). */
struct ferry_opts *conf_opts_new(const char *file, int index, const char *name, int line,
                                 int col, struct ferry_errlist *errs);
/* Add one option from the YAML (value: scalar or sequence of scalars; anything else is
 * kept as bad and reported only if the plugin asks for it). */
int  conf_opts_add(struct ferry_opts *o, const struct conf_ctx *c, const yaml_node_t *key,
                   const yaml_node_t *val);
void conf_opts_free(struct ferry_opts *o);
/* The listener's name, once known (for messages). */
int  conf_opts_set_name(struct ferry_opts *o, const char *name);

/* A listener's allow, proxy_protocol and rate (conf-limits.c), errors at their nodes. */
void conf_listener_limits(const struct conf_ctx *c, const yaml_node_t *ln, const char *where,
                          struct ferry_conf_listener *l);

/* Core listener keys: every listener has them; suggestions for unknown options. */
extern const char *const conf_listener_core_keys[];
extern const size_t      conf_listener_core_nkeys;

/* Destinations (conf-dest.c): inline sequence and destinations_dir, into a registry. */
struct conf_dest_in {
    const char *const *tenants;    /* borrowed ids */
    size_t             ntenants;
    const yaml_node_t *inline_seq; /* NULL if no `destinations:` */
    const char        *dir;        /* resolved destinations_dir or NULL */
    const yaml_node_t *dir_node;   /* for errors about the directory */
    const char        *file_text;  /* borrowed: one destination file's text, or NULL */
    size_t             file_len;
};
/* *out: a registry of the destinations that are valid, also when others are not
 * (then the return value is not FERRY_OK). */
int  conf_dests_load(const struct conf_ctx *c, const struct conf_dest_in *in,
                     struct ferry_errlist *warnings, struct ferry_registry **out,
                     char ***names, size_t *nnames);

#endif
