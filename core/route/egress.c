/*
 * egress.c: which direct (non-tunnel) targets a listener allows. Patterns are parsed
 * once when the listener opens; a match is a short loop over them per connection.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ferry/err.h>
#include <ferry/opts.h>
#include <ferry/route.h>

#define EGRESS_MAX 256

struct egress_rule {
    char    *host;        /* "*" any, "*.sfx" suffix (stored as ".sfx"), else exact */
    bool     any_host;
    bool     suffix;
    bool     any_port;
    uint16_t port;
};

struct ferry_egress {
    struct egress_rule *rules;
    size_t              n;
};

static bool
parse_rule(const char *text, struct egress_rule *r)
{
    const char *colon = strrchr(text, ':');
    const char *host = text;
    size_t      hlen;
    char       *end;
    long        port;

    if (colon == NULL || colon == text)
        return false;
    hlen = (size_t)(colon - text);
    if (host[0] == '[') {               /* [v6]:port */
        if (hlen < 3 || host[hlen - 1] != ']')
            return false;
        host++;
        hlen -= 2;
    }
    if (strcmp(colon + 1, "*") == 0) {
        r->any_port = true;
    } else {
        port = strtol(colon + 1, &end, 10);
        if (*end != '\0' || port < 1 || port > 65535 || colon[1] == '\0')
            return false;
        r->port = (uint16_t)port;
    }
    if (hlen == 1 && host[0] == '*') {
        r->any_host = true;
        return true;
    }
    if (hlen > 2 && host[0] == '*' && host[1] == '.') {
        r->suffix = true;
        host++;                         /* keep the dot: "*.a.com" must not match "xa.com" */
        hlen--;
    } else if (memchr(host, '*', hlen) != NULL) {
        return false;
    }
    if ((r->host = strndup(host, hlen)) == NULL)
        return false;
    return true;
}

FERRY_API int
ferry_egress_new(struct ferry_opts *o, const char *key, struct ferry_egress **out)
{
    struct ferry_egress *e = calloc(1, sizeof(*e));
    const char *const   *list = NULL;
    size_t               n = 0;
    int                  rc;

    if (e == NULL)
        return FERRY_ENOMEM;
    rc = ferry_opts_strlist(o, key, &list, &n);
    if (rc == FERRY_ENOTFOUND) {
        *out = e;                       /* allow nothing */
        return FERRY_OK;
    }
    if (rc != FERRY_OK) {
        free(e);
        return rc;
    }
    if (n > EGRESS_MAX) {
        free(e);
        return ferry_opts_error(o, key, "at most %d patterns", EGRESS_MAX);
    }
    if ((e->rules = calloc(n + 1, sizeof(*e->rules))) == NULL) {
        free(e);
        return FERRY_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!parse_rule(list[i], &e->rules[e->n])) {    /* report each, check the rest */
            memset(&e->rules[e->n], 0, sizeof(e->rules[e->n]));
            rc = ferry_opts_error(o, key, "'%s': want host:port, host being a name, an "
                                  "address, '*' or '*.suffix', port a number or '*'", list[i]);
            continue;
        }
        e->n++;
    }
    if (rc != FERRY_OK) {
        ferry_egress_free(e);
        return rc;
    }
    *out = e;
    return FERRY_OK;
}

/* Two spellings of one IPv6 address ("::1", "0:0:0:0:0:0:0:1") are one target. */
static bool
same_address(const char *a, const char *b)
{
    struct in6_addr x, y;

    return inet_pton(AF_INET6, a, &x) == 1 && inet_pton(AF_INET6, b, &y) == 1 &&
           memcmp(&x, &y, sizeof(x)) == 0;
}

FERRY_API bool
ferry_egress_allows(const struct ferry_egress *e, const char *host, uint16_t port)
{
    size_t hlen;

    if (e == NULL || host == NULL)
        return false;
    hlen = strlen(host);
    for (size_t i = 0; i < e->n; i++) {
        const struct egress_rule *r = &e->rules[i];
        size_t                    rl;

        if (!r->any_port && r->port != port)
            continue;
        if (r->any_host)
            return true;
        rl = strlen(r->host);
        if (r->suffix) {
            if (hlen > rl && strcasecmp(host + hlen - rl, r->host) == 0)
                return true;
        } else if (strcasecmp(host, r->host) == 0 || same_address(host, r->host)) {
            return true;
        }
    }
    return false;
}

FERRY_API void
ferry_egress_free(struct ferry_egress *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->rules[i].host);
    free(e->rules);
    free(e);
}
