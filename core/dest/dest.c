/*
 * dest.c: one destination, checked the way SAP BTP reads it (SAP-NOTES.md §2).
 *
 * Input is a list of properties with SAP names, already expanded (secret references)
 * by whoever read them — the YAML loader today, the admin API later. Output is a
 * struct ferry_dest with the target (scheme, host, port, path) derived per Type, the
 * tenant and location it belongs to, and every property kept verbatim. This file
 * does not read YAML and does not dial anything.
 *
 * No message here may quote a secret value: values are quoted only through shown().
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dest/dest-int.h"
#include "dest/keystore.h"
#include "util/errlist.h"

#define DEST_MAX_NAME 200

struct check {
    struct ferry_dest           *d;
    const char                  *dir;
    const struct ferry_dest_env *env;
    int                          nerr;
};

static void
verr(struct check *k, struct ferry_errlist *l, const struct ferry_prop *p, const char *fmt,
     va_list ap)
{
    char msg[400];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (k->d->name != NULL)
        ferry_errlist_add(l, k->d->file, p != NULL ? p->line : k->d->line,
                          p != NULL ? p->col : k->d->col, "destination '%s': %s", k->d->name,
                          msg);
    else
        ferry_errlist_add(l, k->d->file, p != NULL ? p->line : k->d->line,
                          p != NULL ? p->col : k->d->col, "destination: %s", msg);
}

/* An error at property p (or at the destination when p is NULL). */
static void derr(struct check *k, const struct ferry_prop *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
derr(struct check *k, const struct ferry_prop *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verr(k, k->env->errs, p, fmt, ap);
    va_end(ap);
    k->nerr++;
}

static void dwarn(struct check *k, const struct ferry_prop *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
dwarn(struct check *k, const struct ferry_prop *p, const char *fmt, ...)
{
    va_list ap;

    if (k->env->warnings == NULL)
        return;
    va_start(ap, fmt);
    verr(k, k->env->warnings, p, fmt, ap);
    va_end(ap);
}

/* The value as it may appear in a message. */
static const char *
shown(const struct ferry_prop *p)
{
    return p->secret ? "***" : p->value;
}

static struct ferry_prop *
prop(struct check *k, const char *key)
{
    for (size_t i = 0; i < k->d->nprops; i++)
        if (strcmp(k->d->props[i].key, key) == 0)
            return &k->d->props[i];
    return NULL;
}

/* A property that is present and not empty, or NULL. */
static struct ferry_prop *
given(struct check *k, const char *key)
{
    struct ferry_prop *p = prop(k, key);

    return p != NULL && p->value[0] != '\0' ? p : NULL;
}

static int
set_str(struct check *k, char **slot, const char *s, size_t n)
{
    free(*slot);
    if ((*slot = strndup(s, n)) == NULL) {
        derr(k, NULL, "out of memory");
        return -1;
    }
    return 0;
}

static int
parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > max)
            return -1;
    }
    if (v < min)
        return -1;
    *out = v;
    return 0;
}

/* scheme://host[:port][/path]. Returns NULL or why the URL is bad. */
struct url {
    char     scheme[16];
    const char *host;
    size_t   hlen;
    uint16_t port;       /* 0 if absent */
    const char *path;    /* "" if none */
};

static const char *
url_parse(const char *s, struct url *u)
{
    const char *sep = strstr(s, "://"), *auth, *end, *hend;
    size_t      n;

    memset(u, 0, sizeof(*u));
    if (sep == NULL || sep == s)
        return "want scheme://host[:port][/path]";
    n = (size_t)(sep - s);
    if (n >= sizeof(u->scheme))
        return "unknown scheme";
    for (size_t i = 0; i < n; i++)
        u->scheme[i] = (char)tolower((unsigned char)s[i]);
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(end - auth)) != NULL)
        return "user info in the URL is not supported (use User and Password)";
    if (*auth == '[') {
        const char *rb = memchr(auth, ']', (size_t)(end - auth));

        if (rb == NULL)
            return "unclosed '[' in the host";
        u->host = auth + 1;
        u->hlen = (size_t)(rb - auth - 1);
        hend = rb + 1;
    } else {
        hend = auth + strcspn(auth, ":/?#");
        u->host = auth;
        u->hlen = (size_t)(hend - auth);
    }
    if (u->hlen == 0)
        return "no host";
    for (size_t i = 0; i < u->hlen; i++)
        if (isspace((unsigned char)u->host[i]) || iscntrl((unsigned char)u->host[i]))
            return "spaces in the host";
    if (*hend == ':') {
        char          port[8];
        unsigned long v;

        n = (size_t)(end - hend - 1);
        if (n == 0 || n >= sizeof(port))
            return "bad port";
        memcpy(port, hend + 1, n);
        port[n] = '\0';
        if (parse_uint(port, 1, 65535, &v) != 0)
            return "port must be 1..65535";
        u->port = (uint16_t)v;
    } else if (hend != end) {
        return "bad character after the host";
    }
    u->path = end;
    return NULL;
}

/* Fill scheme/host/port/path from a URL-valued property. */
static int
take_url(struct check *k, const struct ferry_prop *p, const char *const *schemes,
         const uint16_t *ports, const char *want)
{
    struct url  u;
    const char *why = url_parse(p->value, &u);
    size_t      i;

    if (why != NULL) {
        derr(k, p, "%s '%s': %s (want %s)", p->key, shown(p), why, want);
        return -1;
    }
    for (i = 0; schemes[i] != NULL && strcmp(schemes[i], u.scheme) != 0; i++)
        ;
    if (schemes[i] == NULL) {
        derr(k, p, "%s: scheme '%s' is not allowed here (want %s)", p->key,
             p->secret ? "***" : u.scheme, want);
        return -1;
    }
    if (ports[i] == 0 && u.port == 0) {
        derr(k, p, "%s '%s': needs a port (want %s)", p->key, shown(p), want);
        return -1;
    }
    k->d->port = u.port != 0 ? u.port : ports[i];
    if (set_str(k, &k->d->scheme, u.scheme, strlen(u.scheme)) != 0
        || set_str(k, &k->d->host, u.host, u.hlen) != 0
        || set_str(k, &k->d->path, u.path, strlen(u.path)) != 0)
        return -1;
    return 0;
}

/* One of a fixed set of values, with a suggestion when it is close. */
static int
one_of(struct check *k, const struct ferry_prop *p, const char *const *vals, size_t n)
{
    const char *s;

    for (size_t i = 0; i < n; i++)
        if (strcmp(p->value, vals[i]) == 0)
            return (int)i;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(p->value, vals[i]) == 0) {
            derr(k, p, "%s: unknown value '%s' (did you mean '%s'?)", p->key, shown(p),
                 vals[i]);
            return -1;
        }
    }
    if (!p->secret && (s = ferry_suggest(p->value, vals, n, 2)) != NULL)
        derr(k, p, "%s: unknown value '%s' (did you mean '%s'?)", p->key, p->value, s);
    else
        derr(k, p, "%s: unknown value '%s'", p->key, shown(p));
    return -1;
}

/* A file named relative to the defining file; the property then holds the full path. */
static int
resolve_file(struct check *k, struct ferry_prop *p, char **out)
{
    char *full;

    if (p->value[0] != '/' && k->dir == NULL) {
        derr(k, p, "%s: relative path needs a defining file; give an absolute path",
             p->key);
        return -1;
    }
    if (p->value[0] == '/' || strcmp(k->dir, ".") == 0 || k->dir[0] == '\0') {
        full = strdup(p->value);
    } else {
        size_t n = strlen(k->dir) + strlen(p->value) + 2;

        if ((full = malloc(n)) != NULL)
            snprintf(full, n, "%s/%s", k->dir, p->value);
    }
    if (full == NULL) {
        derr(k, p, "out of memory");
        return -1;
    }
    if (access(full, R_OK) != 0) {
        derr(k, p, "%s: cannot read %s: %s", p->key, p->secret ? "***" : full,
             strerror(errno));
        free(full);
        return -1;
    }
    *out = full;
    return 0;
}

static const char *const auth_names[] = {
    "NoAuthentication", "BasicAuthentication", "ClientCertificateAuthentication",
    "PrincipalPropagation", "OAuth2ClientCredentials", "OAuth2Password", "OAuth2JWTBearer",
    "OAuth2UserTokenExchange", "OAuth2SAMLBearerAssertion", "SAMLAssertion",
    "OAuth2RefreshToken", "OAuth2AuthorizationCode", "OAuth2TechnicalUserPropagation",
    "OAuth2TokenExchange", "SAPAssertionSSO",
};

/* Required properties per Authentication (SAP-NOTES.md §2.2), same order as above. */
static const char *const auth_required[][7] = {
    { NULL },
    { "User", "Password", NULL },
    { NULL },
    { NULL },
    { "clientId", "tokenServiceURL", NULL },
    { "clientId", "User", "Password", "tokenServiceURL", NULL },
    { "clientId", "tokenServiceURL", NULL },
    { "clientId", "tokenServiceURL", NULL },
    { "audience", "clientKey", "tokenServiceURL", "authnContextClassRef", NULL },
    { "audience", "authnContextClassRef", NULL },
    { "clientId", "tokenServiceURL", NULL },
    { "clientId", "tokenServiceURL", NULL },
    { "clientId", "tokenServiceURL", NULL },
    { "clientId", "tokenServiceURL", NULL },
    { "IssuerSID", "IssuerClient", "RecipientSID", "RecipientClient", "Certificate",
      "SigningKey", NULL },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void
check_timeout(struct check *k, const char *key, unsigned long max, uint32_t *ms)
{
    struct ferry_prop *p = given(k, key);
    unsigned long      v;

    if (p == NULL)
        return;
    if (parse_uint(p->value, 1, max, &v) != 0) {
        derr(k, p, "%s: want whole seconds from 1 to %lu, not '%s'", key, max, shown(p));
        return;
    }
    *ms = (uint32_t)(v * 1000);
}

/* Trust and key stores (paths resolved against the destination's file) and TrustAll,
 * for every type that may speak TLS. */
static void
check_tls_props(struct check *k)
{
    static const char *const stores[] = {
        "TrustStoreLocation", "KeyStoreLocation", "tokenService.KeyStoreLocation",
    };
    /* The password of each store above (a trust store has none ferry needs). */
    static const char *const passwords[] = {
        NULL, "KeyStorePassword", "tokenService.KeyStorePassword",
    };
    struct ferry_prop *p;

    for (size_t i = 0; i < COUNT(stores); i++) {
        struct ferry_prop *pw = passwords[i] != NULL ? given(k, passwords[i]) : NULL;
        struct ferry_err   err = { 0 };
        char              *full;

        if ((p = given(k, stores[i])) == NULL || resolve_file(k, p, &full) != 0)
            continue;
        free(p->value);
        p->value = full;
        /* A key store that will not open fails now, at its property, not on the first
         * request: a Java KeyStore (with the command that converts it), a PKCS#12 whose
         * password is wrong. err names the file, never the password. */
        if (passwords[i] != NULL &&
            ferry_dest_keystore_check(full, pw != NULL ? pw->value : NULL, &err) != FERRY_OK)
            derr(k, p, "%s: %s%s%s", p->key, err.msg,
                 err.code == FERRY_EDENIED && pw == NULL ? ": set " : "",
                 err.code == FERRY_EDENIED && pw == NULL ? passwords[i] : "");
    }
    if ((p = given(k, "TrustAll")) != NULL) {
        if (strcasecmp(p->value, "true") == 0)
            dwarn(k, p, "TrustAll is true: the server certificate is not checked");
        else if (strcasecmp(p->value, "false") != 0)
            derr(k, p, "TrustAll: want true or false, not '%s'", shown(p));
    }
}

static void
check_http(struct check *k)
{
    static const char *const schemes[] = { "http", "https", NULL };
    static const uint16_t    ports[] = { 80, 443 };
    static const char *const verifiers[] = { "Strict", "BrowserCompatible" };
    struct ferry_dest *d = k->d;
    struct ferry_prop *p;
    int                a = 0;

    if ((p = given(k, "URL")) == NULL)
        derr(k, NULL, "missing required property 'URL' (http:// or https://)");
    else
        take_url(k, p, schemes, ports, "http[s]://host[:port][/path]");

    if ((p = given(k, "Authentication")) != NULL) {
        a = one_of(k, p, auth_names, COUNT(auth_names));
        if (a >= 0 && set_str(k, &d->authentication, p->value, strlen(p->value)) != 0)
            a = -1;
    } else if (set_str(k, &d->authentication, "NoAuthentication", 16) != 0) {
        a = -1;
    }
    if (a >= 0) {
        for (const char *const *r = auth_required[a]; *r != NULL; r++)
            if (given(k, *r) == NULL)
                derr(k, NULL, "Authentication %s needs property '%s'", auth_names[a], *r);
        if (strcmp(auth_names[a], "ClientCertificateAuthentication") == 0 && d->scheme != NULL
            && strcmp(d->scheme, "https") != 0)
            derr(k, given(k, "URL"), "ClientCertificateAuthentication needs an https:// URL");
        if ((strcmp(auth_names[a], "PrincipalPropagation") == 0
             || strcmp(auth_names[a], "OAuth2TechnicalUserPropagation") == 0)
            && d->proxy_type != FERRY_PROXY_ONPREMISE)
            derr(k, given(k, "Authentication"), "Authentication %s needs ProxyType OnPremise",
                 auth_names[a]);
    }

    check_timeout(k, "URL.connectionTimeoutInSeconds", 300, &d->connect_timeout_ms);
    check_timeout(k, "URL.socketReadTimeoutInSeconds", 43200, &d->read_timeout_ms);

    check_tls_props(k);
    if ((p = given(k, "HostnameVerifier")) != NULL)
        one_of(k, p, verifiers, COUNT(verifiers));
}

static void
check_tcp(struct check *k)
{
    static const char *const schemes[] = { "tcp", NULL };
    static const uint16_t    ports[] = { 0 };
    struct ferry_prop       *addr = given(k, "Address"), *port = given(k, "Port");
    struct ferry_prop       *url = given(k, "URL");
    unsigned long            v;

    if (addr != NULL && strstr(addr->value, "://") != NULL) {
        if (port != NULL)
            derr(k, port, "Port: give the port in Address (tcp://host:port) or use "
                 "Address: host with Port, not both");
        else
            take_url(k, addr, schemes, ports, "tcp://host:port");
    } else if (addr != NULL) {
        if (port == NULL) {
            derr(k, addr, "Address without a port: write tcp://host:port or add 'Port'");
            return;
        }
        if (strpbrk(addr->value, ":/ ") != NULL && addr->value[0] != '[') {
            derr(k, addr, "Address '%s': want a host name or address (or tcp://host:port)",
                 shown(addr));
            return;
        }
        if (parse_uint(port->value, 1, 65535, &v) != 0) {
            derr(k, port, "Port: want 1..65535, not '%s'", shown(port));
            return;
        }
        const char *h = addr->value;
        size_t      n = strlen(h);

        if (h[0] == '[' && n > 2 && h[n - 1] == ']') {
            h++;
            n -= 2;
        }
        k->d->port = (uint16_t)v;
        if (set_str(k, &k->d->scheme, "tcp", 3) == 0)
            set_str(k, &k->d->host, h, n);
    } else if (url != NULL) {
        take_url(k, url, schemes, ports, "tcp://host:port");
    } else {
        derr(k, NULL, "missing required property 'Address' (tcp://host:port)");
    }
}

static void
check_rfc(struct check *k)
{
    struct ferry_prop *ashost = given(k, "jco.client.ashost");
    struct ferry_prop *sysnr = given(k, "jco.client.sysnr");
    struct ferry_prop *wshost = given(k, "jco.client.wshost");
    struct ferry_prop *wsport = given(k, "jco.client.wsport");
    unsigned long      v;

    if (ashost != NULL) {
        const char *s = sysnr != NULL ? sysnr->value : NULL;

        if (sysnr == NULL) {
            derr(k, NULL, "missing required property 'jco.client.sysnr' (two digits, "
                 "e.g. \"00\")");
            return;
        }
        if (strlen(s) != 2 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1])) {
            derr(k, sysnr, "jco.client.sysnr: want two digits \"00\"..\"99\", not '%s' "
                 "(quote it in YAML: \"%s\")", shown(sysnr), shown(sysnr));
            return;
        }
        k->d->port = (uint16_t)(3300 + (s[0] - '0') * 10 + (s[1] - '0'));
        if (set_str(k, &k->d->scheme, "rfc", 3) == 0)
            set_str(k, &k->d->host, ashost->value, strlen(ashost->value));
    } else if (wshost != NULL) {
        if (wsport == NULL) {
            derr(k, NULL, "missing required property 'jco.client.wsport'");
            return;
        }
        if (parse_uint(wsport->value, 1, 65535, &v) != 0) {
            derr(k, wsport, "jco.client.wsport: want 1..65535, not '%s'", shown(wsport));
            return;
        }
        k->d->port = (uint16_t)v;
        if (set_str(k, &k->d->scheme, "rfc", 3) == 0)
            set_str(k, &k->d->host, wshost->value, strlen(wshost->value));
    } else if (given(k, "jco.client.mshost") != NULL) {
        derr(k, given(k, "jco.client.mshost"), "load-balanced RFC (jco.client.mshost) is not "
             "supported yet; set jco.client.ashost and jco.client.sysnr");
    } else {
        derr(k, NULL, "missing required property 'jco.client.ashost' (with "
             "'jco.client.sysnr')");
    }
}

static void
check_ldap(struct check *k)
{
    static const char *const schemes[] = { "ldap", "ldaps", NULL };
    static const uint16_t    ports[] = { 389, 636 };
    struct ferry_prop       *p = given(k, "ldap.url");

    static const char *const auths[] = { "NoAuthentication", "BasicAuthentication" };

    if (p == NULL)
        derr(k, NULL, "missing required property 'ldap.url' (ldap://host[:389])");
    else
        take_url(k, p, schemes, ports, "ldap[s]://host[:port]");
    if ((p = given(k, "ldap.authentication")) != NULL &&
        one_of(k, p, auths, COUNT(auths)) == 1 &&
        (given(k, "ldap.user") == NULL || given(k, "ldap.password") == NULL))
        derr(k, p, "ldap.authentication BasicAuthentication needs 'ldap.user' and "
             "'ldap.password'");
    if ((p = given(k, "ldap.startTLS")) != NULL) {
        if (strcasecmp(p->value, "true") != 0 && strcasecmp(p->value, "false") != 0)
            derr(k, p, "ldap.startTLS: want true or false, not '%s'", shown(p));
        else if (strcasecmp(p->value, "true") == 0 && k->d->scheme != NULL &&
                 strcmp(k->d->scheme, "ldaps") == 0)
            derr(k, p, "ldap.startTLS with an ldaps:// URL: the connection is TLS already");
    }
    check_tls_props(k);
}

static void
check_mail(struct check *k)
{
    struct ferry_prop *host = given(k, "mail.smtp.host"), *port = given(k, "mail.smtp.port");
    unsigned long      v;

    if (host != NULL && set_str(k, &k->d->host, host->value, strlen(host->value)) != 0)
        return;
    if (port != NULL) {
        if (parse_uint(port->value, 1, 65535, &v) != 0)
            derr(k, port, "mail.smtp.port: want 1..65535, not '%s'", shown(port));
        else
            k->d->port = (uint16_t)v;
    }
    set_str(k, &k->d->scheme, "smtp", 4);
}

/* ProxyType, or the type's own spelling of it; they must agree when both are given. */
static void
check_proxy_type(struct check *k)
{
    static const char *const vals[] = { "Internet", "OnPremise", "PrivateLink" };
    struct ferry_prop       *p = given(k, "ProxyType"), *own = NULL;
    int                      a = -1, b = -1;

    if (k->d->type == FERRY_DEST_RFC)
        own = given(k, "jco.destination.proxy_type");
    else if (k->d->type == FERRY_DEST_LDAP)
        own = given(k, "ldap.proxyType");
    if (p != NULL)
        a = one_of(k, p, vals, COUNT(vals));
    if (own != NULL)
        b = one_of(k, own, vals, COUNT(vals));
    if (a >= 0 && b >= 0 && a != b)
        derr(k, own, "%s is %s but ProxyType is %s: remove one", own->key, vals[b], vals[a]);
    if (b >= 0)
        a = b;
    k->d->proxy_type = a >= 0 ? (enum ferry_proxy_type)(a + 1) : FERRY_PROXY_INTERNET;
}

static void
check_tenant(struct check *k)
{
    const struct ferry_dest_env *env = k->env;
    struct ferry_prop           *p = given(k, "tenant");
    const char                  *t = NULL;

    if (p != NULL) {
        size_t i;

        for (i = 0; i < env->ntenants && strcmp(env->tenants[i], p->value) != 0; i++)
            ;
        if (i == env->ntenants) {
            const char *s = ferry_suggest(p->value, env->tenants, env->ntenants, 2);

            if (env->ntenants == 0)
                derr(k, p, "tenant '%s': no tenants are configured (add tenants:)",
                     shown(p));
            else if (s != NULL && !p->secret)
                derr(k, p, "unknown tenant '%s' (did you mean '%s'?)", p->value, s);
            else
                derr(k, p, "unknown tenant '%s'", shown(p));
            return;
        }
        t = p->value;
    } else if (env->ntenants == 1) {
        t = env->tenants[0];
    } else if (env->ntenants > 1) {
        derr(k, NULL, "missing 'tenant': required when there are several tenants");
        return;
    } else {
        t = "";
    }
    if (set_str(k, &k->d->tenant, t, strlen(t)) != 0)
        return;
    if (t[0] == '\0' && k->d->proxy_type == FERRY_PROXY_ONPREMISE)
        derr(k, given(k, "ProxyType"), "OnPremise needs a tenant (add tenants: and tenant:)");
}

static void
check_unknown(struct check *k)
{
    for (size_t i = 0; i < k->d->nprops; i++) {
        char        buf[256];
        const char *s = ferry_dest_prop_suggest(k->d->props[i].key, buf, sizeof(buf));

        if (s != NULL)
            dwarn(k, &k->d->props[i], "unknown property '%s' (did you mean '%s'?)",
                  k->d->props[i].key, s);
    }
}

static void
check_name_type(struct check *k)
{
    static const char *const types[] = { "HTTP", "TCP", "LDAP", "RFC", "MAIL" };
    struct ferry_prop       *p;
    int                      t;

    if ((p = given(k, "Name")) == NULL) {
        derr(k, NULL, "missing required property 'Name'");
    } else if (strlen(p->value) > DEST_MAX_NAME) {
        derr(k, p, "Name is longer than %d characters", DEST_MAX_NAME);
    } else if (p->value[strspn(p->value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789-_.")] != '\0') {
        derr(k, p, "Name '%s': use letters, digits, '-', '_' and '.' only", shown(p));
    } else {
        set_str(k, &k->d->name, p->value, strlen(p->value));
    }
    if ((p = given(k, "Type")) == NULL) {
        derr(k, NULL, "missing required property 'Type' (HTTP, TCP, LDAP, RFC or MAIL)");
    } else if ((t = one_of(k, p, types, COUNT(types))) >= 0) {
        k->d->type = (enum ferry_dest_type)(t + 1);
    }
}

int
ferry_dest_init(struct ferry_dest *d, struct ferry_prop *props, size_t nprops,
                const char *file, const char *dir, int line, int col,
                const struct ferry_dest_env *env)
{
    struct check       k = { .d = d, .dir = dir, .env = env };
    struct ferry_prop *p;

    memset(d, 0, sizeof(*d));
    d->props = props;
    d->nprops = nprops;
    d->line = line;
    d->col = col;
    d->connect_timeout_ms = 5000;
    d->read_timeout_ms = 30000;
    d->proxy_type = FERRY_PROXY_INTERNET;
    for (size_t i = 0; i < nprops; i++)
        props[i].secret |= ferry_dest_prop_is_secret(props[i].key);
    if ((d->file = strdup(file != NULL ? file : "")) == NULL
        || (d->location = strdup("")) == NULL || (d->path = strdup("")) == NULL) {
        ferry_errlist_add(env->errs, file, line, col, "out of memory");
        return FERRY_ENOMEM;
    }

    check_name_type(&k);
    check_unknown(&k);
    check_proxy_type(&k);
    if ((p = given(&k, "CloudConnectorLocationId")) == NULL && d->type == FERRY_DEST_RFC)
        p = given(&k, "jco.client.cloud_connector_location_id");
    if (p != NULL)
        set_str(&k, &d->location, p->value, strlen(p->value));
    check_tenant(&k);
    if ((p = given(&k, "level")) != NULL) {
        static const char *const levels[] = { "subaccount", "instance" };

        d->instance = one_of(&k, p, levels, COUNT(levels)) == 1;
    }
    if ((p = given(&k, "policy")) != NULL) {
        size_t n = strlen(p->value);

        if (n < 5 || strcmp(p->value + n - 4, ".lua") != 0)
            derr(&k, p, "policy: want a .lua file, not '%s'", shown(p));
        else
            resolve_file(&k, p, &d->policy);
    }
    switch (d->type) {
    case FERRY_DEST_HTTP: check_http(&k); break;
    case FERRY_DEST_TCP:  check_tcp(&k);  break;
    case FERRY_DEST_RFC:  check_rfc(&k);  break;
    case FERRY_DEST_LDAP: check_ldap(&k); break;
    case FERRY_DEST_MAIL: check_mail(&k); break;
    default:              break;          /* Type was reported */
    }
    if (d->scheme == NULL && k.nerr == 0 && set_str(&k, &d->scheme, "", 0) != 0)
        return FERRY_ENOMEM;
    if (d->host == NULL && k.nerr == 0 && set_str(&k, &d->host, "", 0) != 0)
        return FERRY_ENOMEM;
    return k.nerr == 0 ? FERRY_OK : FERRY_EINVAL;
}

void
ferry_dest_fini(struct ferry_dest *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nprops; i++) {
        if (d->props[i].secret && d->props[i].value != NULL)
            explicit_bzero(d->props[i].value, strlen(d->props[i].value));
        free(d->props[i].key);
        free(d->props[i].value);
    }
    free(d->props);
    free(d->name);
    free(d->tenant);
    free(d->location);
    free(d->authentication);
    free(d->scheme);
    free(d->host);
    free(d->path);
    free(d->policy);
    free(d->file);
    memset(d, 0, sizeof(*d));
}

static int
copy_str(char **dst, const char *src)
{
    if (src == NULL) {
        *dst = NULL;
        return 0;
    }
    return (*dst = strdup(src)) == NULL ? -1 : 0;
}

int
ferry_dest_copy(struct ferry_dest *dst, const struct ferry_dest *src)
{
    int bad = 0;

    *dst = *src;                    /* the scalars; every pointer is replaced below */
    dst->props = NULL;
    dst->nprops = 0;
    bad |= copy_str(&dst->name, src->name);
    bad |= copy_str(&dst->tenant, src->tenant);
    bad |= copy_str(&dst->location, src->location);
    bad |= copy_str(&dst->authentication, src->authentication);
    bad |= copy_str(&dst->scheme, src->scheme);
    bad |= copy_str(&dst->host, src->host);
    bad |= copy_str(&dst->path, src->path);
    bad |= copy_str(&dst->policy, src->policy);
    bad |= copy_str(&dst->file, src->file);
    if (!bad && src->nprops > 0) {
        if ((dst->props = calloc(src->nprops, sizeof(*dst->props))) == NULL) {
            bad = 1;
        } else {
            for (size_t i = 0; i < src->nprops && !bad; i++) {
                dst->props[i] = src->props[i];
                bad |= copy_str(&dst->props[i].key, src->props[i].key);
                bad |= copy_str(&dst->props[i].value, src->props[i].value);
                dst->nprops = i + 1;
            }
        }
    }
    if (bad) {
        ferry_dest_fini(dst);
        return FERRY_ENOMEM;
    }
    return FERRY_OK;
}
