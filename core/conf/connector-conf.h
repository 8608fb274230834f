/*
 * connector-conf.h: the connector's configuration (ferry connector -c connector.yaml),
 * loaded by the conf room with the same rules as the gateway's: file:line:col errors,
 * unknown keys with suggestions, ${env:}/${file:} secrets, relative paths against the
 * file's directory.
 */
#ifndef FERRY_CONNECTOR_CONF_H
#define FERRY_CONNECTOR_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"

/* What the connector speaks to the internal host (SAP Cloud Connector's protocols). */
enum ferry_sys_proto {
    FERRY_SYS_TCP = 1, FERRY_SYS_TCPS, FERRY_SYS_HTTP, FERRY_SYS_HTTPS,
    FERRY_SYS_LDAP, FERRY_SYS_LDAPS, FERRY_SYS_RFC, FERRY_SYS_RFCS,
};

/* Principal propagation per system (DESIGN.md, "User identity: principal propagation"):
 * how a stream's user reaches the internal host. OFF: streams with a user are refused. */
enum ferry_sys_pp { FERRY_PP_OFF = 0, FERRY_PP_HEADER, FERRY_PP_TLS };

struct ferry_conf_system {
    char                *virtual_host;   /* lower-cased host of `virtual:` (IPv6: canonical,
                                            no brackets) */
    uint16_t             virtual_port;   /* `sapgwNN` (RFC, RFCS) already mapped to 33NN */
    char                *internal_host;  /* never leaves the connector; IPv6 without
                                            brackets, ready for getaddrinfo */
    uint16_t             internal_port;
    enum ferry_sys_proto protocol;
    char               **paths;          /* NULL = every path; else NULL-terminated prefixes */
    bool                 tls;            /* TCPS/HTTPS/LDAPS/RFCS: TLS to the internal host */
    bool                 tls_verify;     /* check its certificate (default true) */
    char                *tls_ca;         /* PEM trust anchors; NULL: the system store */
    char                *tls_server_name;/* SNI and the name checked; NULL: internal host */
    size_t               npaths;
    enum ferry_sys_pp    pp;             /* default HEADER for HTTP/HTTPS when the
                                            connector has `principal_propagation:` */
    int                  line, col;      /* of the system's mapping */
};

struct ferry_conf_gateway_addr {
    char    *text;                       /* as written: "gw.example.com:8443" */
    char    *host;                       /* for DNS and the certificate check (IPv6: no
                                            brackets) */
    uint16_t port;
};

/* The top-level `principal_propagation:` section. The conf room keeps the strings; the
 * tunnel room builds the issuer from them (the subject pattern is parsed there, so its
 * errors are placed with subject_line/subject_col). */
struct ferry_conf_pp {
    char    *ca_cert, *ca_key;           /* resolved paths */
    char    *subject;                    /* default "CN=${name}" */
    uint32_t validity_minutes;           /* 1..43200, default 10 */
    uint32_t cache_size;                 /* certificates per worker, default 4096 */
    int      line, col;                  /* of the section */
    int      ca_line, ca_col;            /* of ca_cert's value: where CA errors point */
    int      subject_line, subject_col;  /* of the pattern's first character (best effort
                                            for quoted scalars: escapes shift it) */
};

struct ferry_connector_conf {
    char                           *path;
    char                           *dir;
    unsigned                        workers;          /* 0 = auto */
    enum ferry_log_level            log_level;
    char                           *admin_listen;     /* default 127.0.0.1:9902; NULL if off */
    struct ferry_conf_gateway_addr *gateways;         /* `gateway:` scalar or list, >= 1 */
    size_t                          ngateways;
    char                           *tenant;
    char                           *token;            /* secret */
    char                           *location_id;      /* "" = default location */
    char                           *ca;               /* resolved path, required */
    char                           *cert, *key;       /* resolved paths or NULL (both or none) */
    char                           *audit_log;        /* resolved path or NULL (no audit) */
    bool                            audit_fail_open;  /* audit_fail: open; default closed */
    uint32_t                        connect_timeout_ms;    /* to internal hosts, default 5000 */
    uint32_t                        keepalive_ms;          /* PING interval, default 10000 */
    uint32_t                        dead_peer_timeout_ms;  /* default 30000 */
    uint32_t                        reconnect_max_ms;      /* backoff cap, default 10000 */
    uint32_t                        drain_timeout_ms;      /* default 30000 */
    struct ferry_conf_system       *systems;
    size_t                          nsystems;
    struct ferry_conf_pp           *pp;               /* NULL: no principal propagation */
    struct ferry_errlist            warnings;         /* e.g. no systems */
};

/* Load and validate. FERRY_OK and *out set, or FERRY_EINVAL (FERRY_ENOMEM) with every
 * error in errs as file:line:col and *out NULL. The token is never quoted in a message. */
int  ferry_connector_conf_load_file(const char *path, struct ferry_connector_conf **out,
                                    struct ferry_errlist *errs);
int  ferry_connector_conf_load_string(const char *text, const char *name,
                                      struct ferry_connector_conf **out,
                                      struct ferry_errlist *errs);
void ferry_connector_conf_free(struct ferry_connector_conf *c);

/* The system for virtual host:port (host compared case-insensitively; IPv6 with or
 * without brackets, in any spelling); NULL if none. */
const struct ferry_conf_system *
ferry_connector_find_system(const struct ferry_connector_conf *c, const char *host, uint16_t port);

/* May an HTTP request for path (origin-form, "/a/b?q") reach system s? True if s has no
 * paths; else if path, up to '?' or '#', starts with one of the prefixes (plain string
 * prefix, case-sensitive, as SAP's "path and all sub-paths"). Paths with "." or ".."
 * segments (also percent-encoded) are refused unless a prefix is "/", since a backend
 * would resolve "/api/../admin" to "/admin". */
bool ferry_connector_path_allowed(const struct ferry_conf_system *s, const char *path);

/* "off", "header", "tls" */
const char *ferry_sys_pp_name(enum ferry_sys_pp pp);

/* "TCP", "HTTPS", … ("?" for a value outside the enum) */
const char *ferry_sys_proto_name(enum ferry_sys_proto p);

#endif
