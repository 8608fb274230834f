/*
 * connector-conf.c: the connector's configuration (connector.yaml) from YAML to
 * struct ferry_connector_conf: which gateways to dial, as whom, with which trust
 * anchor, the timeouts, and the systems it exposes — the access control of SAP's Cloud
 * Connector: a virtual host:port maps to an internal host:port with a protocol and, for
 * HTTP, allowed path prefixes. Nothing is exposed unless mapped.
 *
 * Same rules as ferry.yaml (conf-shared.c, conf-yaml.c): schema tables, every error at
 * file:line:col, unknown keys with a suggestion, ${env:}/${file:} references, relative
 * paths against the file's directory. This file opens no sockets and resolves no names:
 * host names are checked for shape only.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "conf/conf-int.h"
#include "conf/connector-conf.h"

#define CC_MAX_WORKERS      64
#define CC_MAX_GATEWAYS     16
#define CC_MAX_SYSTEMS      4096
#define CC_MAX_PATHS        256      /* per system */
#define CC_MAX_LOCATION_LEN 128      /* it travels in an HTTP header and a SOCKS5 field */
#define CC_MAX_HOST_LEN     253      /* a DNS name; IPv6 text is shorter */

static const char *const proto_names[] = {
    [FERRY_SYS_TCP] = "TCP",   [FERRY_SYS_TCPS] = "TCPS",
    [FERRY_SYS_HTTP] = "HTTP", [FERRY_SYS_HTTPS] = "HTTPS",
    [FERRY_SYS_LDAP] = "LDAP", [FERRY_SYS_LDAPS] = "LDAPS",
    [FERRY_SYS_RFC] = "RFC",   [FERRY_SYS_RFCS] = "RFCS",
};
#define NPROTO_SLOTS (sizeof(proto_names) / sizeof(proto_names[0]))

/* Top-level keys land here, so sections can be read after the whole mapping is known. */
struct top {
    const yaml_node_t *workers, *log, *gateway, *admin, *location_id, *systems, *pp;
    char              *tenant, *token, *ca, *cert, *key, *audit_log, *audit_fail;
    uint32_t           connect_timeout_ms, keepalive_ms, dead_peer_timeout_ms;
    uint32_t           reconnect_max_ms, drain_timeout_ms;
};

#define T_OFF(f) offsetof(struct top, f)
static const struct conf_key top_keys[] = {
    /* key                    type       required  where it lands            range */
    { "workers",              CONF_NODE, false, T_OFF(workers),              0, 0 },
    { "log",                  CONF_NODE, false, T_OFF(log),                  0, 0 },
    { "gateway",              CONF_NODE, true,  T_OFF(gateway),              0, 0 },
    { "admin",                CONF_NODE, false, T_OFF(admin),                0, 0 },
    { "tenant",               CONF_STR,  true,  T_OFF(tenant),               0, 0 },
    { "token",                CONF_STR,  true,  T_OFF(token),                0, 0 },
    { "location_id",          CONF_NODE, false, T_OFF(location_id),          0, 0 },
    { "ca",                   CONF_PATH, true,  T_OFF(ca),                   0, 0 },
    { "cert",                 CONF_PATH, false, T_OFF(cert),                 0, 0 },
    { "key",                  CONF_PATH, false, T_OFF(key),                  0, 0 },
    { "audit_log",            CONF_PATH, false, T_OFF(audit_log),            0, 0 },
    { "audit_fail",           CONF_STR,  false, T_OFF(audit_fail),           0, 0 },
    { "connect_timeout_ms",   CONF_U32,  false, T_OFF(connect_timeout_ms),   1, 600000 },
    { "keepalive_ms",         CONF_U32,  false, T_OFF(keepalive_ms),         1, 3600000 },
    { "dead_peer_timeout_ms", CONF_U32,  false, T_OFF(dead_peer_timeout_ms), 1, 3600000 },
    { "reconnect_max_ms",     CONF_U32,  false, T_OFF(reconnect_max_ms),     1, 3600000 },
    { "drain_timeout_ms",     CONF_U32,  false, T_OFF(drain_timeout_ms),     0, 3600000 },
    { "systems",              CONF_NODE, false, T_OFF(systems),              0, 0 },
    { "principal_propagation", CONF_NODE, false, T_OFF(pp),                 0, 0 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

struct log_in {
    char *level;
};

static const struct conf_key log_keys[] = {
    { "level", CONF_STR, false, offsetof(struct log_in, level), 0, 0 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

struct system_in {
    char              *virtual_target, *internal_target, *protocol;
    const yaml_node_t *paths;
    char              *tls_ca, *tls_verify, *tls_server_name, *pp;
};

#define S_OFF(f) offsetof(struct system_in, f)
static const struct conf_key system_keys[] = {
    { "virtual",  CONF_STR,  true,  S_OFF(virtual_target),  0, 0 },
    { "internal", CONF_STR,  true,  S_OFF(internal_target), 0, 0 },
    { "protocol", CONF_STR,  true,  S_OFF(protocol),        0, 0 },
    { "paths",    CONF_NODE, false, S_OFF(paths),           0, 0 },
    { "tls_ca",   CONF_PATH, false, S_OFF(tls_ca),          0, 0 },
    { "tls_verify", CONF_STR, false, S_OFF(tls_verify),     0, 0 },
    { "tls_server_name", CONF_STR, false, S_OFF(tls_server_name), 0, 0 },
    { "principal_propagation", CONF_STR, false, S_OFF(pp),  0, 0 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

struct pp_in {
    char              *ca_cert, *ca_key;
    const yaml_node_t *subject;          /* raw: its ${...} are claims, not references */
    uint32_t           validity_minutes, cache_size;
};

#define P_OFF(f) offsetof(struct pp_in, f)
static const struct conf_key pp_keys[] = {
    { "ca_cert",          CONF_PATH, true,  P_OFF(ca_cert),          0, 0 },
    { "ca_key",           CONF_PATH, true,  P_OFF(ca_key),           0, 0 },
    { "subject",          CONF_NODE, false, P_OFF(subject),          0, 0 },
    { "validity_minutes", CONF_U32,  false, P_OFF(validity_minutes), 1, 43200 },
    { "cache_size",       CONF_U32,  false, P_OFF(cache_size),       1, 1048576 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

/* A host:port as parsed: host without brackets, IPv6 in its canonical text. */
struct target {
    char     host[CC_MAX_HOST_LEN + 1];
    uint16_t port;
};

/* Port names are SAP's convention for the RFC gateway: sapgwNN is 33NN (SAP-NOTES §2.3). */
static const char *const sapgw_only_rfc =
    "port names (sapgwNN) are only for the virtual port of protocol RFC or RFCS";

static const char *
check_host(const char *h)
{
    size_t len = strlen(h), label = 0;

    if (strspn(h, "0123456789.") == len) {
        struct in_addr a;

        return inet_pton(AF_INET, h, &a) == 1 ? NULL : "bad IPv4 address";
    }
    if (len > CC_MAX_HOST_LEN)
        return "host name longer than 253 characters";
    for (size_t i = 0; i <= len; i++) {
        char ch = h[i];

        if (ch == '.' || ch == '\0') {
            if (label == 0 || label > 63 || h[i - 1] == '-' || h[i - label] == '-')
                return "want a host name (letters, digits, '-', labels of 1 to 63 "
                       "between dots), an IPv4 address or [IPv6]";
            label = 0;
        } else if (isalnum((unsigned char)ch) || ch == '-' || ch == '_') {
            label++;
        } else {
            return "want a host name (letters, digits, '-', labels of 1 to 63 "
                   "between dots), an IPv4 address or [IPv6]";
        }
    }
    return NULL;
}

static const char *
parse_port(const char *s, const char *no_sapgw, uint16_t *port)
{
    unsigned long v = 0;

    if (strncasecmp(s, "sapgw", 5) == 0) {
        if (no_sapgw != NULL)
            return no_sapgw;
        if (!isdigit((unsigned char)s[5]) || !isdigit((unsigned char)s[6]) || s[7] != '\0')
            return "want sapgwNN with a two-digit instance number (sapgw00 is 3300)";
        *port = (uint16_t)(3300 + (s[5] - '0') * 10 + (s[6] - '0'));
        return NULL;
    }
    if (*s == '\0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 5
        || (v = strtoul(s, NULL, 10)) < 1 || v > 65535)
        return no_sapgw != NULL ? "port must be 1..65535" : "port must be 1..65535 or sapgwNN";
    *port = (uint16_t)v;
    return NULL;
}

/* "host:port", "[v6]:port": NULL and *t filled, or why not. no_sapgw: why a sapgwNN
 * port is refused here, or NULL to accept it. */
static const char *
parse_target(const char *text, const char *no_sapgw, struct target *t)
{
    const char *port_s, *why;
    size_t      hlen;

    memset(t, 0, sizeof(*t));
    if (text[0] == '[') {
        const char     *end = strchr(text, ']');
        struct in6_addr a;

        if (end == NULL || end[1] != ':')
            return "want [IPv6]:port, e.g. [fd00::12]:3300";
        hlen = (size_t)(end - text - 1);
        if (hlen == 0 || hlen >= sizeof(t->host))
            return "bad IPv6 address";
        memcpy(t->host, text + 1, hlen);
        if (inet_pton(AF_INET6, t->host, &a) != 1)
            return "bad IPv6 address";
        inet_ntop(AF_INET6, &a, t->host, sizeof(t->host));
        port_s = end + 2;
    } else {
        const char *colon = strrchr(text, ':');

        if (colon == NULL)
            return "want host:port, e.g. erp.internal:3300";
        if (memchr(text, ':', (size_t)(colon - text)) != NULL)
            return "write IPv6 addresses in brackets, e.g. [fd00::12]:3300";
        if ((hlen = (size_t)(colon - text)) == 0)
            return "missing host before the port";
        if (hlen >= sizeof(t->host))
            return "host name longer than 253 characters";
        memcpy(t->host, text, hlen);
        if ((why = check_host(t->host)) != NULL)
            return why;
        port_s = colon + 1;
    }
    return parse_port(port_s, no_sapgw, &t->port);
}

/* The host as systems store it: brackets off, IPv6 canonical, lower case. False if
 * it does not fit. */
static bool
host_key(const char *in, char *out, size_t cap)
{
    struct in6_addr a;
    size_t          n = strlen(in);

    if (n >= 2 && in[0] == '[' && in[n - 1] == ']') {
        in++;
        n -= 2;
    }
    if (n >= cap)
        return false;
    memcpy(out, in, n);
    out[n] = '\0';
    if (strchr(out, ':') != NULL && inet_pton(AF_INET6, out, &a) == 1)
        inet_ntop(AF_INET6, &a, out, (socklen_t)cap);
    for (char *p = out; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return true;
}

const char *
ferry_conf_host_port(const char *text, char *host, size_t host_cap, uint16_t *port)
{
    struct target   t;
    const char     *why;
    struct in6_addr a6;
    struct in_addr  a4;

    if ((why = parse_target(text, "want a port number, not sapgwNN", &t)) != NULL)
        return why;
    /* A wildcard is where a gateway listens, never where anyone can dial it. */
    if ((inet_pton(AF_INET, t.host, &a4) == 1 && a4.s_addr == htonl(INADDR_ANY)) ||
        (inet_pton(AF_INET6, t.host, &a6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a6)))
        return "a wildcard address (0.0.0.0, ::) cannot be dialed: name this replica's "
               "own address";
    if (strlen(t.host) >= host_cap)
        return "host name too long";
    memcpy(host, t.host, strlen(t.host) + 1);
    *port = t.port;
    return NULL;
}

static void
load_log(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_connector_conf *conf)
{
    struct log_in lc = {0};

    if (conf_mapping(c, n, "log", log_keys, &lc, NULL, NULL) == 0 && lc.level != NULL)
        conf_log_level(c, n, lc.level, &conf->log_level);
    free(lc.level);
}

static void
load_location(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_connector_conf *conf)
{
    char *s = NULL;
    bool  secret;

    if (conf_is_null(n))
        return;                             /* `location_id:` alone: the default, "" */
    if (conf_scalar(c, n, NULL, "location_id", &s, &secret) != FERRY_OK)
        return;
    if (strlen(s) > CC_MAX_LOCATION_LEN) {
        conf_error(c, n, NULL, "location_id: longer than %d characters", CC_MAX_LOCATION_LEN);
        free(s);
        return;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            conf_error(c, n, NULL, "location_id: contains a control character");
            free(s);
            return;
        }
    }
    free(conf->location_id);
    conf->location_id = s;
}

static void
add_gateway(const struct conf_ctx *c, const yaml_node_t *n, const char *where,
            struct ferry_connector_conf *conf)
{
    struct ferry_conf_gateway_addr *g = &conf->gateways[conf->ngateways];
    struct target                   t;
    const char                     *why;
    char                           *text = NULL;
    bool                            secret;

    if (conf_scalar(c, n, where, NULL, &text, &secret) != FERRY_OK)
        return;
    if ((why = parse_target(text, sapgw_only_rfc, &t)) != NULL) {
        if (secret)
            conf_error(c, n, where, "%s", why);
        else
            conf_error(c, n, where, "'%s': %s", text, why);
        free(text);
        return;
    }
    for (size_t i = 0; i < conf->ngateways; i++) {
        if (strcasecmp(conf->gateways[i].host, t.host) == 0 && conf->gateways[i].port == t.port) {
            conf_error(c, n, where, "the same gateway as gateway[%zu]", i);
            free(text);
            return;
        }
    }
    g->text = text;
    g->port = t.port;
    if ((g->host = strdup(t.host)) == NULL) {
        conf_error(c, n, where, "out of memory");
        free(g->text);
        g->text = NULL;
        return;
    }
    conf->ngateways++;
}

static void
load_gateways(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_connector_conf *conf)
{
    size_t count = 1;

    if (n->type == YAML_MAPPING_NODE || conf_is_null(n)) {
        conf_error(c, n, "gateway", "want host:port or a list of them");
        return;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (count == 0 || count > CC_MAX_GATEWAYS) {
            conf_error(c, n, "gateway", "want from 1 to %d gateways", CC_MAX_GATEWAYS);
            return;
        }
    }
    if ((conf->gateways = calloc(count, sizeof(*conf->gateways))) == NULL) {
        conf_error(c, n, "gateway", "out of memory");
        return;
    }
    if (n->type == YAML_SCALAR_NODE) {
        add_gateway(c, n, "gateway", conf);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        char where[32];

        snprintf(where, sizeof(where), "gateway[%zu]", i);
        add_gateway(c, conf_node(c, n->data.sequence.items.start[i]), where, conf);
    }
}

static bool
parse_proto(const char *s, enum ferry_sys_proto *out)
{
    for (size_t i = 1; i < NPROTO_SLOTS; i++) {
        if (strcasecmp(s, proto_names[i]) == 0) {
            *out = (enum ferry_sys_proto)i;
            return true;
        }
    }
    return false;
}

static void
bad_proto(const struct conf_ctx *c, const yaml_node_t *sn, const char *where, const char *p)
{
    const char *shown = conf_shown(c, sn, "protocol", p);
    const char *s = NULL;
    char        upper[16];
    size_t      i;

    for (i = 0; p[i] != '\0' && i + 1 < sizeof(upper); i++)
        upper[i] = (char)toupper((unsigned char)p[i]);
    upper[i] = '\0';
    /* One edit only: the names are short, two edits turn SMTP into HTTP. */
    if (shown == p && p[i] == '\0')
        s = ferry_suggest(upper, proto_names + 1, NPROTO_SLOTS - 1, 1);
    conf_error(c, conf_value(c, sn, "protocol"), where, "protocol: unknown protocol '%s'%s%s%s "
               "(TCP, TCPS, HTTP, HTTPS, LDAP, LDAPS, RFC or RFCS)", shown,
               s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
}

/* Is this a "." or ".." segment, literal or percent-encoded ("%2e", "%2E")? */
static bool
is_dot_segment(const char *seg, size_t n)
{
    size_t dots = 0;

    for (size_t i = 0; i < n; dots++) {
        if (seg[i] == '.')
            i++;
        else if (n - i >= 3 && seg[i] == '%' && seg[i + 1] == '2' && (seg[i + 2] | 0x20) == 'e')
            i += 3;
        else
            return false;
    }
    return dots == 1 || dots == 2;
}

/* Why an allowed-path prefix is refused, or NULL. */
static const char *
check_path(const char *p)
{
    if (p[0] != '/')
        return "must start with '/'";
    for (const char *seg = p + 1;; seg++) {
        size_t n = strcspn(seg, "/");

        if (is_dot_segment(seg, n))
            return "must not contain '.' or '..' segments";
        if (seg[n] == '\0')
            break;
        seg += n;
    }
    for (; *p != '\0'; p++) {
        if (*p == '?' || *p == '#')
            return "must not contain '?' or '#' (paths are compared before the query)";
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return "must not contain spaces or control characters";
    }
    return NULL;
}

static void
load_paths(const struct conf_ctx *c, const yaml_node_t *n, const char *where,
           struct ferry_conf_system *s)
{
    size_t count;

    if (s->protocol != FERRY_SYS_HTTP && s->protocol != FERRY_SYS_HTTPS) {
        conf_error(c, n, where, "paths: only for protocol HTTP or HTTPS (a %s stream has "
                   "no paths to check)", ferry_sys_proto_name(s->protocol));
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        conf_error(c, n, where, "paths: want a list of path prefixes, e.g. [ \"/api/\" ]");
        return;
    }
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0 || count > CC_MAX_PATHS) {
        conf_error(c, n, where, "paths: want from 1 to %d prefixes (leave paths out to allow "
                   "every path)", CC_MAX_PATHS);
        return;
    }
    if ((s->paths = calloc(count + 1, sizeof(*s->paths))) == NULL) {
        conf_error(c, n, where, "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *pn = conf_node(c, n->data.sequence.items.start[i]);
        const char        *why;
        char              *p = NULL;
        char               key[32];
        bool               secret;

        snprintf(key, sizeof(key), "paths[%zu]", i);
        if (conf_scalar(c, pn, where, key, &p, &secret) != FERRY_OK)
            continue;
        if ((why = check_path(p)) != NULL) {
            if (secret)
                conf_error(c, pn, where, "%s: %s", key, why);
            else
                conf_error(c, pn, where, "%s: '%s' %s", key, p, why);
            free(p);
            continue;
        }
        s->paths[s->npaths++] = p;
    }
}

/* virtual/internal: parse, or report at the value's node. */
static bool
load_target(const struct conf_ctx *c, const yaml_node_t *sn, const char *where,
            const char *key, const char *text, const char *no_sapgw, struct target *t)
{
    const char *why = parse_target(text, no_sapgw, t);
    const char *shown = conf_shown(c, sn, key, text);

    if (why == NULL)
        return true;
    if (shown != text)
        conf_error(c, conf_value(c, sn, key), where, "%s: %s", key, why);
    else
        conf_error(c, conf_value(c, sn, key), where, "%s: '%s': %s", key, text, why);
    return false;
}

/* A system's `principal_propagation:`; the default (HTTP/HTTPS with the connector's
 * section: header) needs the protocol, so this runs after it is known. */
static void
load_system_pp(const struct conf_ctx *c, const yaml_node_t *sn, const char *where,
               bool proto_ok, const char *v, const struct ferry_connector_conf *conf,
               struct ferry_conf_system *s)
{
    bool http = proto_ok && (s->protocol == FERRY_SYS_HTTP || s->protocol == FERRY_SYS_HTTPS);

    s->pp = FERRY_PP_OFF;
    if (v == NULL) {
        if (conf->pp != NULL && http)
            s->pp = FERRY_PP_HEADER;
        return;
    }
    if (strcasecmp(v, "off") == 0)
        return;
    if (strcasecmp(v, "header") != 0 && strcasecmp(v, "tls") != 0) {
        conf_error(c, conf_value(c, sn, "principal_propagation"), where,
                   "principal_propagation: want header, tls or off, not '%s'", v);
        return;
    }
    if (conf->pp == NULL) {
        conf_error(c, conf_value(c, sn, "principal_propagation"), where,
                   "principal_propagation: %s needs the connector's top-level "
                   "principal_propagation: section (ca_cert, ca_key)", v);
        return;
    }
    if (!proto_ok)
        return;                         /* the protocol's error is reported */
    if (!http) {
        conf_error(c, conf_value(c, sn, "principal_propagation"), where,
                   "principal_propagation: only HTTP and HTTPS systems carry a user");
        return;
    }
    if (strcasecmp(v, "tls") == 0 && s->protocol != FERRY_SYS_HTTPS) {
        conf_error(c, conf_value(c, sn, "principal_propagation"), where,
                   "principal_propagation: tls needs protocol HTTPS (the user certificate "
                   "is the TLS client certificate to the internal host)");
        return;
    }
    s->pp = strcasecmp(v, "tls") == 0 ? FERRY_PP_TLS : FERRY_PP_HEADER;
}

/* The top-level `principal_propagation:` section. conf->pp is set whenever the key is
 * there, even with errors, so systems that name a mode are not reported a second time
 * as lacking the section. */
static void
load_pp(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_connector_conf *conf)
{
    static const char where[] = "principal_propagation";
    struct pp_in       in = { 0 };
    struct ferry_conf_pp *pp;
    const char        *text;
    const yaml_node_t *v;

    if ((pp = calloc(1, sizeof(*pp))) == NULL) {
        conf_error(c, n, where, "out of memory");
        return;
    }
    conf->pp = pp;
    pp->line = (int)n->start_mark.line + 1;
    pp->col = (int)n->start_mark.column + 1;
    pp->validity_minutes = 10;
    pp->cache_size = 4096;
    if (n->type != YAML_MAPPING_NODE) {
        conf_error(c, n, where, "want a mapping { ca_cert: ..., ca_key: ..., subject: ... }");
        return;
    }
    conf_mapping(c, n, where, pp_keys, &in, NULL, NULL);
    pp->ca_line = pp->line;
    pp->ca_col = pp->col;
    if ((v = conf_value(c, n, "ca_cert")) != NULL) {
        pp->ca_line = (int)v->start_mark.line + 1;
        pp->ca_col = (int)v->start_mark.column + 1;
    }
    conf_must_read(c, n, where, "ca_cert", in.ca_cert);
    conf_must_read(c, n, where, "ca_key", in.ca_key);
    pp->ca_cert = in.ca_cert;
    pp->ca_key = in.ca_key;
    if (in.validity_minutes != 0)
        pp->validity_minutes = in.validity_minutes;
    if (in.cache_size != 0)
        pp->cache_size = in.cache_size;
    text = "CN=${name}";
    pp->subject_line = pp->line;
    pp->subject_col = pp->col;
    if (in.subject != NULL && !conf_is_null(in.subject)) {
        if ((text = conf_text(in.subject)) == NULL) {
            conf_error(c, in.subject, where, "subject: want a single value, not a list or "
                       "mapping");
            return;
        }
        if (text[0] == '\0' || strlen(text) != in.subject->data.scalar.length) {
            conf_error(c, in.subject, where, "subject: want a pattern such as CN=${name}");
            return;
        }
        pp->subject_line = (int)in.subject->start_mark.line + 1;
        /* The pattern starts after the quote of a quoted scalar. */
        pp->subject_col = (int)in.subject->start_mark.column + 1 +
                          (in.subject->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                           in.subject->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    }
    if ((pp->subject = strdup(text)) == NULL)
        conf_error(c, n, where, "out of memory");
}

static void
load_system(const struct conf_ctx *c, const yaml_node_t *sn, size_t i,
            struct ferry_connector_conf *conf)
{
    struct ferry_conf_system *s = &conf->systems[conf->nsystems];
    struct system_in          in = {0};
    struct target             vt, it;
    char                      where[32];
    bool                      proto_ok = false, rfc, vok, iok;

    snprintf(where, sizeof(where), "systems[%zu]", i);
    s->line = (int)sn->start_mark.line + 1;
    s->col = (int)sn->start_mark.column + 1;
    conf->nsystems++;                       /* owned now, freed with conf */
    /* Every key that loaded is checked, whatever happened to the others: one run
     * reports all of a system's errors. A key that did not load was reported. */
    conf_mapping(c, sn, where, system_keys, &in, NULL, NULL);
    if (in.protocol != NULL && !(proto_ok = parse_proto(in.protocol, &s->protocol)))
        bad_proto(c, sn, where, in.protocol);
    /* With an unknown protocol, accept sapgwNN rather than pile up a second error. */
    rfc = !proto_ok || s->protocol == FERRY_SYS_RFC || s->protocol == FERRY_SYS_RFCS;
    vok = in.virtual_target != NULL &&
          load_target(c, sn, where, "virtual", in.virtual_target, rfc ? NULL : sapgw_only_rfc,
                      &vt);
    iok = in.internal_target != NULL &&
          load_target(c, sn, where, "internal", in.internal_target, sapgw_only_rfc, &it);
    if (in.paths != NULL && !conf_is_null(in.paths) && proto_ok)
        load_paths(c, in.paths, where, s);
    /* TLS to the internal host: only for the protocols that mean it. */
    s->tls = proto_ok && (s->protocol == FERRY_SYS_TCPS || s->protocol == FERRY_SYS_HTTPS ||
                          s->protocol == FERRY_SYS_LDAPS || s->protocol == FERRY_SYS_RFCS);
    s->tls_verify = true;
    if ((in.tls_ca != NULL || in.tls_verify != NULL || in.tls_server_name != NULL) && proto_ok &&
        !s->tls)
        conf_error(c, conf_value(c, sn, in.tls_ca != NULL ? "tls_ca" : in.tls_verify != NULL ?
                                 "tls_verify" : "tls_server_name"), where,
                   "tls_* keys need a TLS protocol (TCPS, HTTPS, LDAPS, RFCS)");
    if (in.tls_verify != NULL) {
        if (strcmp(in.tls_verify, "true") == 0)
            s->tls_verify = true;
        else if (strcmp(in.tls_verify, "false") == 0)
            s->tls_verify = false;
        else
            conf_error(c, conf_value(c, sn, "tls_verify"), where, "tls_verify: want true or "
                       "false");
        if (!s->tls_verify)
            ferry_errlist_add(&conf->warnings, c->file, s->line, s->col, "%s: tls_verify: "
                              "false: the internal host's certificate is not checked", where);
    }
    load_system_pp(c, sn, where, proto_ok, in.pp, conf, s);
    conf_must_read(c, sn, where, "tls_ca", in.tls_ca);
    s->tls_ca = in.tls_ca;
    s->tls_server_name = in.tls_server_name;
    in.tls_ca = in.tls_server_name = NULL;
    if (!vok || !iok)
        goto out;
    host_key(vt.host, vt.host, sizeof(vt.host));
    for (size_t j = 0; j + 1 < conf->nsystems; j++) {
        const struct ferry_conf_system *o = &conf->systems[j];

        if (o->virtual_host != NULL && strcmp(o->virtual_host, vt.host) == 0
            && o->virtual_port == vt.port) {
            conf_error(c, conf_value(c, sn, "virtual"), where, "virtual: %s:%u is already "
                       "mapped by systems[%zu] (line %d)",
                       conf_shown(c, sn, "virtual", vt.host), vt.port, j, o->line);
            goto out;
        }
    }
    if ((s->virtual_host = strdup(vt.host)) == NULL
        || (s->internal_host = strdup(it.host)) == NULL) {
        conf_error(c, sn, where, "out of memory");
        goto out;
    }
    s->virtual_port = vt.port;
    s->internal_port = it.port;
out:
    free(in.virtual_target);
    free(in.internal_target);
    free(in.protocol);
    free(in.tls_ca);
    free(in.tls_verify);
    free(in.tls_server_name);
    free(in.pp);
}

static void
load_systems(const struct conf_ctx *c, const yaml_node_t *n, struct ferry_connector_conf *conf)
{
    size_t count;

    if (n->type != YAML_SEQUENCE_NODE) {
        conf_error(c, n, "systems", "want a list of { virtual: ..., internal: ..., "
                   "protocol: ... }");
        return;
    }
    count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count > CC_MAX_SYSTEMS) {
        conf_error(c, n, "systems", "more than %d systems", CC_MAX_SYSTEMS);
        return;
    }
    if (count == 0)
        return;
    if ((conf->systems = calloc(count, sizeof(*conf->systems))) == NULL) {
        conf_error(c, n, "systems", "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++)
        load_system(c, conf_node(c, n->data.sequence.items.start[i]), i, conf);
}

/* Cross-checks once every top-level key is in: files, pairs, timeouts (compare_timeouts:
 * both loaded or took their default; a refused one was reported and is not compared). */
static void
check_top(const struct conf_ctx *c, const yaml_node_t *root, struct ferry_connector_conf *conf,
          bool compare_timeouts)
{
    struct stat st;

    if (conf->tenant != NULL && !conf_is_word(conf->tenant, "-.ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        conf_error(c, conf_value(c, root, "tenant"), NULL, "tenant '%s': use letters, "
                   "digits, '-', '_' and '.' only", conf_shown(c, root, "tenant", conf->tenant));
    conf_must_read(c, root, NULL, "ca", conf->ca);
    if ((conf->cert == NULL) != (conf->key == NULL))
        conf_error(c, conf_value(c, root, conf->cert != NULL ? "cert" : "key"), NULL,
                   "%s: needs %s as well (a client certificate and its key go together)",
                   conf->cert != NULL ? "cert" : "key", conf->cert != NULL ? "key" : "cert");
    conf_must_read(c, root, NULL, "cert", conf->cert);
    conf_must_read(c, root, NULL, "key", conf->key);
    if (conf->audit_log != NULL) {
        char *dir = conf_dirname(conf->audit_log);

        if (dir == NULL)
            conf_error(c, root, NULL, "out of memory");
        else if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            conf_error(c, conf_value(c, root, "audit_log"), NULL, "audit_log: directory %s "
                       "does not exist", dir);
        else if (stat(conf->audit_log, &st) == 0 && S_ISDIR(st.st_mode))
            conf_error(c, conf_value(c, root, "audit_log"), NULL, "audit_log: %s is a "
                       "directory, not a file", conf->audit_log);
        free(dir);
    }
    /* A peer is dead only after it missed a PING: the timeout must outlast the interval. */
    if (compare_timeouts && conf->dead_peer_timeout_ms <= conf->keepalive_ms) {
        const yaml_node_t *at = conf_value(c, root, "dead_peer_timeout_ms");

        conf_error(c, at != NULL ? at : conf_value(c, root, "keepalive_ms"), NULL,
                   "dead_peer_timeout_ms (%u) must be longer than keepalive_ms (%u)",
                   conf->dead_peer_timeout_ms, conf->keepalive_ms);
    }
}

static int
conf_defaults(struct ferry_connector_conf *conf, const char *name)
{
    conf->log_level = FERRY_INFO;
    conf->connect_timeout_ms = 5000;
    conf->keepalive_ms = 10000;
    conf->dead_peer_timeout_ms = 30000;
    conf->reconnect_max_ms = 10000;
    conf->drain_timeout_ms = 30000;
    if ((conf->path = strdup(name)) == NULL || (conf->dir = conf_dirname(name)) == NULL
        || (conf->location_id = strdup("")) == NULL
        || (conf->admin_listen = strdup("127.0.0.1:9902")) == NULL)
        return FERRY_ENOMEM;
    return FERRY_OK;
}

/* Move what the top-level table parsed into conf (owned strings change hands). */
static void
take_top(struct top *top, struct ferry_connector_conf *conf)
{
    conf->tenant = top->tenant;
    conf->token = top->token;
    conf->ca = top->ca;
    conf->cert = top->cert;
    conf->key = top->key;
    conf->audit_log = top->audit_log;
    conf->connect_timeout_ms = top->connect_timeout_ms;
    conf->keepalive_ms = top->keepalive_ms;
    conf->dead_peer_timeout_ms = top->dead_peer_timeout_ms;
    conf->reconnect_max_ms = top->reconnect_max_ms;
    conf->drain_timeout_ms = top->drain_timeout_ms;
    top->tenant = top->token = top->ca = top->cert = top->key = top->audit_log = NULL;
}

static void
load_root(const struct conf_ctx *c, const yaml_node_t *root, struct ferry_connector_conf *conf)
{
    struct conf_ctx w = *c;
    struct top      top = {
        .connect_timeout_ms = conf->connect_timeout_ms,
        .reconnect_max_ms = conf->reconnect_max_ms, .drain_timeout_ms = conf->drain_timeout_ms,
    };
    bool            compare;

    /* The two timeouts start at 0, below their minimum: still 0 afterwards means
     * absent (the default applies) or refused (reported, not to be compared). */
    conf_mapping(c, root, NULL, top_keys, &top, NULL, NULL);
    compare = (top.keepalive_ms != 0 || conf_value(c, root, "keepalive_ms") == NULL) &&
              (top.dead_peer_timeout_ms != 0 ||
               conf_value(c, root, "dead_peer_timeout_ms") == NULL);
    if (top.keepalive_ms == 0)
        top.keepalive_ms = conf->keepalive_ms;
    if (top.dead_peer_timeout_ms == 0)
        top.dead_peer_timeout_ms = conf->dead_peer_timeout_ms;
    take_top(&top, conf);
    if (top.audit_fail != NULL && strcmp(top.audit_fail, "open") == 0)
        conf->audit_fail_open = true;
    else if (top.audit_fail != NULL && strcmp(top.audit_fail, "closed") != 0)
        conf_error(c, conf_value(c, root, "audit_fail"), NULL, "audit_fail: want closed "
                   "(refuse new streams while the audit log cannot be written) or open");
    free(top.audit_fail);
    /* `key:` with nothing after it means the default, as if the key were absent. */
    const yaml_node_t **nodes[] = { &top.workers, &top.log, &top.admin, &top.systems,
                                    &top.pp };

    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
        if (*nodes[i] != NULL && conf_is_null(*nodes[i]))
            *nodes[i] = NULL;
    if (top.workers != NULL)
        conf_workers(c, top.workers, CC_MAX_WORKERS, &conf->workers);
    if (top.log != NULL)
        load_log(c, top.log, conf);
    if (top.admin != NULL)
        conf_admin(c, top.admin, &conf->admin_listen);
    if (top.gateway != NULL)
        load_gateways(c, top.gateway, conf);
    if (top.location_id != NULL)
        load_location(c, top.location_id, conf);
    /* Before the systems: their default mode depends on the section being there. */
    if (top.pp != NULL)
        load_pp(c, top.pp, conf);
    if (top.systems != NULL)
        load_systems(c, top.systems, conf);
    if (root->type == YAML_MAPPING_NODE)
        check_top(c, root, conf, compare);
    w.errs = &conf->warnings;
    if (conf->nsystems == 0 && root->type == YAML_MAPPING_NODE)
        conf_error(&w, top.systems != NULL ? top.systems : root, NULL,
                   "no systems: the connector exposes nothing");
}

int
ferry_connector_conf_load_string(const char *text, const char *name,
                                 struct ferry_connector_conf **out, struct ferry_errlist *errs)
{
    struct ferry_errlist         local = {0};
    struct ferry_connector_conf *conf = NULL;
    yaml_document_t              doc;
    struct conf_ctx              c = { .file = name, .doc = &doc };
    const yaml_node_t           *root;
    int                          rc, before;

    *out = NULL;
    if (errs == NULL)
        errs = &local;
    c.errs = errs;
    ferry_errlist_file(errs, name);
    before = errs->count + errs->dropped;
    if ((conf = calloc(1, sizeof(*conf))) == NULL || conf_defaults(conf, name) != FERRY_OK) {
        ferry_errlist_add(errs, name, 0, 0, "out of memory");
        ferry_connector_conf_free(conf);
        return FERRY_ENOMEM;
    }
    c.dir = conf->dir;
    if ((rc = conf_doc_load(text, strlen(text), name, errs, &doc)) != FERRY_OK) {
        ferry_connector_conf_free(conf);
        return rc;
    }
    root = yaml_document_get_root_node(&doc);
    if (root == NULL || conf_is_null(root))
        ferry_errlist_add(errs, name, 1, 1, "empty configuration: a connector needs at least "
                          "gateway, tenant, token and ca");
    else
        load_root(&c, root, conf);
    yaml_document_delete(&doc);
    if (errs->count + errs->dropped > before) {
        ferry_connector_conf_free(conf);
        return FERRY_EINVAL;
    }
    *out = conf;
    return FERRY_OK;
}

int
ferry_connector_conf_load_file(const char *path, struct ferry_connector_conf **out,
                               struct ferry_errlist *errs)
{
    char *text = NULL;
    int   rc;

    *out = NULL;
    ferry_errlist_file(errs, path);
    if ((rc = conf_file_text(path, errs, &text)) != FERRY_OK)
        return rc;
    rc = ferry_connector_conf_load_string(text, path, out, errs);
    free(text);
    return rc;
}

void
ferry_connector_conf_free(struct ferry_connector_conf *c)
{
    if (c == NULL)
        return;
    if (c->token != NULL)
        explicit_bzero(c->token, strlen(c->token));
    free(c->token);
    for (size_t i = 0; i < c->ngateways; i++) {
        free(c->gateways[i].text);
        free(c->gateways[i].host);
    }
    free(c->gateways);
    for (size_t i = 0; i < c->nsystems; i++) {
        struct ferry_conf_system *s = &c->systems[i];

        free(s->virtual_host);
        free(s->internal_host);
        free(s->tls_ca);
        free(s->tls_server_name);
        for (size_t j = 0; j < s->npaths; j++)
            free(s->paths[j]);
        free(s->paths);
    }
    free(c->systems);
    if (c->pp != NULL) {
        free(c->pp->ca_cert);
        free(c->pp->ca_key);
        free(c->pp->subject);
        free(c->pp);
    }
    free(c->path);
    free(c->dir);
    free(c->admin_listen);
    free(c->tenant);
    free(c->location_id);
    free(c->ca);
    free(c->cert);
    free(c->key);
    free(c->audit_log);
    free(c);
}

const struct ferry_conf_system *
ferry_connector_find_system(const struct ferry_connector_conf *c, const char *host, uint16_t port)
{
    char key[CC_MAX_HOST_LEN + 1];

    if (host == NULL || !host_key(host, key, sizeof(key)))
        return NULL;
    for (size_t i = 0; i < c->nsystems; i++) {
        const struct ferry_conf_system *s = &c->systems[i];

        if (s->virtual_host != NULL && s->virtual_port == port
            && strcmp(s->virtual_host, key) == 0)
            return s;
    }
    return NULL;
}

bool
ferry_connector_path_allowed(const struct ferry_conf_system *s, const char *path)
{
    size_t plen;

    if (s->paths == NULL)
        return true;
    if (path == NULL || path[0] != '/')
        return false;
    plen = strcspn(path, "?#");
    /* A prefix is a plain string prefix, so "/api/../admin" would pass "/api/" while
     * the backend serves /admin: refuse dot segments unless "/" allows everything. */
    for (size_t i = 0; i < s->npaths; i++)
        if (strcmp(s->paths[i], "/") == 0)
            return true;
    for (size_t i = 1; i <= plen;) {
        size_t n = strcspn(path + i, "/?#");

        if (n > plen - i)
            n = plen - i;
        if (is_dot_segment(path + i, n))
            return false;
        i += n + 1;
    }
    for (size_t i = 0; i < s->npaths; i++) {
        size_t n = strlen(s->paths[i]);

        if (n <= plen && memcmp(path, s->paths[i], n) == 0)
            return true;
    }
    return false;
}

const char *
ferry_sys_proto_name(enum ferry_sys_proto p)
{
    if ((size_t)p >= NPROTO_SLOTS || p < FERRY_SYS_TCP)
        return "?";
    return proto_names[p];
}

const char *
ferry_sys_pp_name(enum ferry_sys_pp pp)
{
    return pp == FERRY_PP_HEADER ? "header" : pp == FERRY_PP_TLS ? "tls" : "off";
}
