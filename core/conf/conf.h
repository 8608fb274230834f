/*
 * conf.h: the gateway configuration, loaded from YAML (libyaml) into typed structs.
 *
 * The conf room owns parsing, validation, secret references and error reporting.
 * It does not open sockets, load plugins or start workers (worker/ and plugin/ do).
 * Every error names file:line:col (1-based) and is collected in a struct ferry_errlist
 * (util/errlist.h), so an operator sees all of them in one `ferry check`.
 */
#ifndef FERRY_CONF_H
#define FERRY_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <ferry/err.h>
#include <ferry/log.h>

#include "util/addr.h"
#include "util/cidr.h"
#include "util/errlist.h"

struct ferry_registry;
struct ferry_opts;

/* `tenants[].jwt:` — JWTs of this issuer authenticate the tenant (DESIGN.md "User
 * identity"). conf only reads the strings; worker/ loads the keys and verifies. */
struct ferry_conf_tenant_jwt {
    char    *issuer;            /* owns: compared exactly with "iss" */
    char    *audience;          /* owns: must be "aud" or one of its elements */
    char    *jwks;              /* owns: resolved path of a JWKS file, or NULL */
    char    *jwks_url;          /* owns: http(s) URL of a JWKS, or NULL; exactly one is set */
    uint32_t leeway_s;          /* clock skew allowed on exp/nbf/iat, default 60 */
    int      line, col;         /* of the `jwt:` mapping */
    int      jwks_line, jwks_col; /* of the jwks (or jwks_url) value, for load errors */
};

struct ferry_conf_tenant {
    char *id;
    char *token;                /* owns; secret: never print; NULL when jwt is set and
                                   there is no static token */
    struct ferry_conf_tenant_jwt *jwt;   /* owns; NULL: no `jwt:` */
    uint32_t max_connections;   /* open connections authenticated as it, per process;
                                   0 (default): no bound */
    int   line, col;
};

#define FERRY_CONF_ALLOW_MAX 1024              /* rules in one listener's allow: */

struct ferry_conf_listener {
    char                   *name;
    char                   *plugin;
    char                   *listen;          /* as written: "127.0.0.1:3300" */
    struct sockaddr_storage addr;            /* parsed listen address */
    socklen_t               addr_len;
    char                   *destination;     /* NULL if none; checked to exist */
    char                   *tenant;          /* NULL if none; checked to exist */
    uint32_t                max_connections; /* default 10000 */
    uint32_t                idle_timeout_ms; /* default 300000 */
    uint32_t                connect_timeout_ms; /* default 5000 */
    /* Limits and source addresses (DESIGN.md): who may connect, who the client is. */
    struct ferry_cidr      *allow;           /* owns; NULL: any client */
    size_t                  nallow;          /* at most FERRY_CONF_ALLOW_MAX */
    int                     proxy_protocol;  /* 0 off (default), 1 or 2: the header's version */
    uint32_t                rate_per_s;      /* rate.per_client: tokens a second; 0: no rate */
    uint32_t                rate_burst;      /* rate.burst: the bucket; default per_client */
    struct ferry_opts      *opts;            /* owns: the remaining keys, for the plugin */
    int                     index;           /* position in listeners[] */
    int                     line, col;       /* of the listener's mapping */
    bool                    opts_checkable;  /* name, a plugin name and what the plugin
                                                reads loaded: its plugin can check opts
                                                (false only in a partial load) */
};

/* `store: etcd:` — destinations (and the replica list) in etcd instead of files. */
struct ferry_conf_store {
    char   **endpoints;          /* "http[s]://host:port", at least one */
    size_t   nendpoints;
    char    *prefix;             /* default "/ferry"; starts with '/', no trailing '/' */
    char    *user;               /* NULL: no etcd authentication */
    char    *password;           /* owns; secret: never print */
    char    *ca, *cert, *key;    /* resolved paths or NULL (https endpoints) */
    char    *cache;              /* resolved path of the snapshot cache, or NULL */
    int      line, col;          /* of the `store:` section */
};

struct ferry_conf {
    char                       *path;            /* as given */
    char                       *dir;             /* its directory: base for relative paths */
    unsigned                    workers;         /* 0 = auto (one per usable CPU) */
    bool                        worker_cpu_affinity; /* worker i on the i-th usable CPU */
    char                       *plugins_dir;     /* resolved; NULL = default search */
    enum ferry_log_level        log_level;       /* default FERRY_INFO */
    char                       *access_log;      /* "stdout", "off" or a resolved path */
    char                       *admin_listen;    /* default "127.0.0.1:9901"; NULL: `admin: off` */
    uint32_t                    drain_timeout_ms;/* default 30000 */
    struct {
        char *listen;                            /* NULL if no tunnel section */
        char *advertise;                         /* "host:port" as connectors reach this
                                                    replica; default: a copy of listen */
        char *cert, *key, *client_ca;            /* resolved paths; client_ca may be NULL */
        uint32_t keepalive_ms;                   /* PING interval, default 10000 */
        uint32_t dead_peer_timeout_ms;           /* no frame this long: dead, default 30000 */
    } tunnel;
    struct ferry_conf_store    *store;           /* NULL: destinations from files */
    struct ferry_conf_tenant   *tenants;
    size_t                      ntenants;
    char                       *destinations_dir;/* resolved; NULL if absent */
    struct ferry_registry      *registry;        /* owns one reference */
    struct ferry_conf_listener *listeners;
    size_t                      nlisteners;
    struct ferry_errlist        warnings;        /* e.g. near-miss property names, TrustAll */
    bool                        has_errors;      /* a partial load: check it, never serve it */
};

/* Load and validate. FERRY_OK and *out set, or FERRY_EINVAL with every error in errs
 * (*out NULL). I/O errors on the main file are reported in errs too. */
int  ferry_conf_load_file(const char *path, struct ferry_conf **out, struct ferry_errlist *errs);
/* Same from a string; `name` stands for the file in messages and its directory is the
 * base for relative paths (use "." based names in tests). */
int  ferry_conf_load_string(const char *text, const char *name, struct ferry_conf **out,
                            struct ferry_errlist *errs);
/* For checking (ferry check, start, reload): the same, but on FERRY_EINVAL *out is
 * still set, with has_errors, whenever the YAML parsed: what did load (listeners and
 * their options, the destinations that are valid), so that the later phases —
 * policies, each plugin's options — report their errors in the same run. Only a YAML
 * syntax error, an unreadable file or running out of memory leaves *out NULL. */
int  ferry_conf_load_file_partial(const char *path, struct ferry_conf **out,
                                  struct ferry_errlist *errs);
int  ferry_conf_load_string_partial(const char *text, const char *name,
                                    struct ferry_conf **out, struct ferry_errlist *errs);
void ferry_conf_free(struct ferry_conf *conf);
/* With a store: the destinations come from it, not from the file. conf takes a
 * reference to reg and drops the one it had. */
void ferry_conf_set_registry(struct ferry_conf *conf, struct ferry_registry *reg);

/* Find a tenant by id; NULL if absent. */
const struct ferry_conf_tenant *ferry_conf_tenant(const struct ferry_conf *conf, const char *id);
/* The tenant whose token is `token` (and whose id is `id`, unless id is NULL); NULL if
 * none. Compares tokens in constant time in their bytes. */
const struct ferry_conf_tenant *ferry_conf_tenant_by_token(const struct ferry_conf *conf,
                                                           const char *id, const char *token);

/* After the plugin's listener_open(): report every option key it never asked for as
 * unknown, suggesting the closest known key (core keys + keys the plugin asked for). */
void ferry_opts_check_unused(struct ferry_opts *o);
/* Errors that plugins reported through ferry_opts_error() go to this list (by default
 * the one given to the loader; NULL drops them). */
void ferry_opts_set_errlist(struct ferry_opts *o, struct ferry_errlist *errs);

/* Secret references: expand every ${env:NAME} and ${file:path} in `value` (file paths
 * relative to base_dir; one trailing newline of a file is dropped); `$${` stands for a
 * literal `${`. *secret is set when anything was expanded. Errors name the reference,
 * never its value nor the text around it. */
int  ferry_conf_expand(const char *value, const char *base_dir, char **out, bool *secret,
                       struct ferry_err *err);

/* A gateway's tunnel address as connectors dial it: "host:port" or "[v6]:port", the
 * host a DNS name, an IPv4 or an IPv6 address, never a wildcard ("0.0.0.0", "::", "*")
 * nor a sapgwNN port. NULL and host (at most host_cap bytes with its NUL; IPv6 without
 * brackets, canonical) and *port set, or the reason it is not one (static text).
 * Shared by tunnel.advertise and the connector's reading of a replica list. */
#define FERRY_CONF_HOST_MAX 254                  /* a DNS name (253) and its NUL */
const char *ferry_conf_host_port(const char *text, char *host, size_t host_cap,
                                 uint16_t *port);

/* Destination files for the admin API (conf-dest-file.c; main thread, blocking I/O). */
/* One destination as a destinations_dir file: `# comment` (if not NULL), then a YAML
 * mapping of keys[i]: values[i] in order, values double-quoted and every "${" written
 * "$${", so the loader reads back exactly these values and never a reference. *out
 * (owned by the caller, NUL-terminated, may hold secrets) and *len. */
int  ferry_conf_dest_render(const char *const *keys, const char *const *values, size_t n,
                            const char *comment, char **out, size_t *len,
                            struct ferry_err *err);
/* A whole file (at most 4 MiB) into *out (owned by the caller, NUL-terminated). */
int  ferry_conf_file_read(const char *path, char **out, size_t *len, struct ferry_err *err);
/* Replace (or create) path with data atomically: a temporary dot file in the same
 * directory, fsync, rename, fsync of the directory. mode 0 keeps the current file's
 * permissions (0600 for a new file). */
/* Remove what an interrupted ferry_conf_file_replace left in dir (".<name>.XXXXXX": a
 * whole or partial copy of a destination, credentials included), when older than
 * min_age_s (a write in flight elsewhere is never that old). *removed: how many. */
int  ferry_conf_dir_sweep_temp(const char *dir, unsigned min_age_s, unsigned *removed);
int  ferry_conf_file_replace(const char *path, const char *data, size_t len, unsigned mode,
                             struct ferry_err *err);
/* Unlink path and fsync its directory. */
int  ferry_conf_file_remove(const char *path, struct ferry_err *err);

#endif
