/*
 * dest-http.c: what a destination of Type HTTP adds to a request on its way out of
 * ferry (ferry/dest.h, ferry_dest_http_new): the URL's path in front of the request's,
 * URL.queries.* after the request's query (percent-encoded), URL.headers.* and the
 * destination's own credentials (BasicAuthentication's Authorization).
 *
 * One function, so that the http plugin (which sends it) and `ferry policy test`
 * (which shows it) cannot drift apart. It builds strings only: which client fields go
 * on, the request line, Host and framing are the plugin's. Credentials that need I/O
 * (OAuth2*) are the Lua modules' (lua/ferry/auth/), run before this as on_request.
 *
 * Which wins when the request has a field of the same name (SAP's Transparent Proxy,
 * SAP-NOTES.md section 2): URL.headers.* go out after the request's own, both of them;
 * the destination's credentials replace the request's Authorization.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ferry/err.h>
#include <ferry/route.h>

#include "dest/dest-int.h"

#define HTTP_MAX_BYTES   (64 * 1024)     /* path, query and added fields, together */
#define BASIC_MAX_BYTES  1024            /* "User:Password" before base64 */

struct dest_field {
    const char *name;                    /* borrowed from the property, or static */
    const char *value;                   /* borrowed from the property, or in buf */
    bool        secret;
};

struct ferry_dest_http {
    const char        *path;             /* in buf */
    const char        *query;            /* in buf, or NULL: no '?' at all */
    struct dest_field *fields;           /* in buf */
    size_t             nfields;
    bool               replaces_authz;
    char              *buf;              /* owns: everything above */
    size_t             size;             /* of buf */
};

static const char URL_HEADERS[] = "URL.headers.";
static const char URL_QUERIES[] = "URL.queries.";
#define PREFIX_LEN (sizeof(URL_HEADERS) - 1)    /* both prefixes are 12 bytes */

/* A value from the config goes into a head verbatim: no line break, no control byte. */
static bool
value_ok(const char *v)
{
    for (; *v; v++)
        if (*v == '\r' || *v == '\n' || ((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
            return false;
    return true;
}

/* An RFC 9110 token: a field name. */
static bool
token_ok(const char *v)
{
    if (*v == '\0')
        return false;
    for (; *v; v++)
        if ((unsigned char)*v <= 0x20 || (unsigned char)*v >= 0x7f ||
            strchr("\"(),/:;<=>?@[\\]{}", *v) != NULL)
            return false;
    return true;
}

static bool
unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static size_t
pct_len(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += unreserved((unsigned char)*s) ? 1 : 3;
    return n;
}

/* RFC 3986 percent-encoding of everything but unreserved characters: a space is %20,
 * so the query means the same to every reader (no '+' ambiguity). */
static char *
pct_put(char *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (unreserved(ch)) {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    return o;
}

static bool
is_basic(const struct ferry_dest *d)
{
    return strcmp(ferry_dest_authentication(d), "BasicAuthentication") == 0;
}

/* Bytes the result needs besides the fields array (every string with its NUL), after
 * checking URL.headers.*; the number of fields in *nfields. */
static int
measure(const struct ferry_dest *d, size_t path_len, const char *query, size_t query_len,
        size_t *bytes, size_t *nfields, size_t *basic_len, struct ferry_err *err)
{
    /* The URL's path and query, each with a NUL, and "/" when both paths are empty. */
    size_t n = strlen(ferry_dest_path(d)) + path_len + 3;

    *nfields = 0;
    if (query != NULL)
        n += query_len + 1;                                 /* "&" */
    for (size_t i = 0; i < d->nprops; i++) {
        const struct ferry_prop *p = &d->props[i];

        if (strncmp(p->key, URL_QUERIES, PREFIX_LEN) == 0 && p->key[PREFIX_LEN] != '\0') {
            n += 2 + pct_len(p->key + PREFIX_LEN) + pct_len(p->value);     /* "&k=v" */
        } else if (strncmp(p->key, URL_HEADERS, PREFIX_LEN) == 0) {
            if (!token_ok(p->key + PREFIX_LEN) || !value_ok(p->value))
                return ferry_err_set(err, FERRY_EINVAL,
                                     "destination '%s': %s is not a valid header field",
                                     d->name, p->key);
            (*nfields)++;
        }
    }
    n += 1;                                                 /* the query's NUL */
    *basic_len = 0;
    if (is_basic(d)) {
        const char *user = ferry_dest_prop(d, "User"), *pass = ferry_dest_prop(d, "Password");
        size_t      plain = (user != NULL ? strlen(user) : 0) + 1 +
                            (pass != NULL ? strlen(pass) : 0);

        if (plain >= BASIC_MAX_BYTES)
            return ferry_err_set(err, FERRY_EINVAL, "destination '%s': credentials too long",
                                 d->name);
        *basic_len = sizeof("Basic ") - 1 + 4 * ((plain + 2) / 3);
        n += *basic_len + 1;
        (*nfields)++;
    }
    if (n > HTTP_MAX_BYTES)
        return ferry_err_set(err, FERRY_ELIMIT,
                             "destination '%s': the request's target and fields would pass "
                             "%d bytes", d->name, HTTP_MAX_BYTES);
    *bytes = n;
    return FERRY_OK;
}

/* "/api" + "/x" = "/api/x", "/api/" + "/x" = "/api/x", "/api" + "" = "/api",
 * "" + "" = "/". The URL's query ("/api?x=1") is join_query's. */
static char *
join_path(char *o, const char *dpath, const char *rpath, size_t rlen)
{
    size_t dl = strcspn(dpath, "?"), skip = 0;

    if (dl > 0 && dpath[dl - 1] == '/' && rlen > 0 && rpath[0] == '/')
        skip = 1;
    memcpy(o, dpath, dl);
    o += dl;
    if (rlen > skip) {
        memcpy(o, rpath + skip, rlen - skip);
        o += rlen - skip;
    } else if (dl == 0) {
        *o++ = '/';
    }
    *o++ = '\0';
    return o;
}

/* Append n bytes of one part of the query, '&' before it unless it is the first
 * non-empty one. A part that is there but empty still makes a query ("?"). */
static char *
query_part(char *o, const char *s, size_t n, const char **start, bool *any)
{
    if (*start == NULL)
        *start = o;
    if (n == 0)
        return o;
    if (*any)
        *o++ = '&';
    memcpy(o, s, n);
    *any = true;
    return o + n;
}

/* The URL's own query, the request's query as it was (NULL: none), then
 * "name=value" per URL.queries.<name>. */
static char *
join_query(char *o, const struct ferry_dest *d, const char *query, size_t query_len,
           const char **out)
{
    const char *uq = strchr(ferry_dest_path(d), '?');
    bool        any = false;

    *out = NULL;
    if (uq != NULL)
        o = query_part(o, uq + 1, strlen(uq + 1), out, &any);
    if (query != NULL)
        o = query_part(o, query, query_len, out, &any);
    for (size_t i = 0; i < d->nprops; i++) {
        const struct ferry_prop *p = &d->props[i];

        if (strncmp(p->key, URL_QUERIES, PREFIX_LEN) != 0 || p->key[PREFIX_LEN] == '\0')
            continue;
        o = query_part(o, "", 0, out, &any);
        if (any)
            *o++ = '&';
        any = true;
        o = pct_put(o, p->key + PREFIX_LEN);
        *o++ = '=';
        o = pct_put(o, p->value);
    }
    if (*out != NULL)
        *o++ = '\0';
    return o;
}

static int
put_basic(const struct ferry_dest *d, char *o, size_t basic_len)
{
    const char *user = ferry_dest_prop(d, "User"), *pass = ferry_dest_prop(d, "Password");
    char        plain[BASIC_MAX_BYTES];
    int         len = snprintf(plain, sizeof(plain), "%s:%s", user != NULL ? user : "",
                               pass != NULL ? pass : "");
    long        enc;

    memcpy(o, "Basic ", 6);
    enc = ferry_base64_encode((const uint8_t *)plain, (size_t)len, o + 6, basic_len - 6 + 1);
    explicit_bzero(plain, sizeof(plain));   /* the password, in the clear */
    return enc < 0 ? FERRY_ELIMIT : FERRY_OK;
}

FERRY_API int
ferry_dest_http_new(const struct ferry_dest *d, const char *path, size_t path_len,
                    const char *query, size_t query_len, struct ferry_dest_http **out,
                    struct ferry_err *err)
{
    struct ferry_dest_http *r;
    size_t                  bytes = 0, nfields = 0, basic_len = 0, k = 0;
    char                   *o;
    int                     rc;

    *out = NULL;
    if (path == NULL)
        path_len = 0;
    if ((rc = measure(d, path_len, query, query_len, &bytes, &nfields, &basic_len, err))
        != FERRY_OK)
        return rc;
    if ((r = calloc(1, sizeof(*r))) == NULL ||
        (r->buf = malloc(nfields * sizeof(*r->fields) + bytes)) == NULL) {
        free(r);
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    }
    r->size = nfields * sizeof(*r->fields) + bytes;
    r->fields = (struct dest_field *)(void *)r->buf;
    o = r->buf + nfields * sizeof(*r->fields);
    r->path = o;
    o = join_path(o, ferry_dest_path(d), path != NULL ? path : "", path_len);
    o = join_query(o, d, query, query_len, &r->query);
    for (size_t i = 0; i < d->nprops; i++) {
        const struct ferry_prop *p = &d->props[i];

        if (strncmp(p->key, URL_HEADERS, PREFIX_LEN) != 0)
            continue;
        r->fields[k].name = p->key + PREFIX_LEN;
        r->fields[k].value = p->value;
        r->fields[k++].secret = p->secret;
    }
    if (is_basic(d)) {
        if (put_basic(d, o, basic_len) != FERRY_OK) {
            ferry_dest_http_free(r);
            return ferry_err_set(err, FERRY_EINVAL, "destination '%s': credentials too long",
                                 d->name);
        }
        r->fields[k].name = "Authorization";
        r->fields[k].value = o;
        r->fields[k++].secret = true;
        r->replaces_authz = true;
    }
    r->nfields = k;
    *out = r;
    return FERRY_OK;
}

FERRY_API void
ferry_dest_http_free(struct ferry_dest_http *r)
{
    if (r == NULL)
        return;
    if (r->buf != NULL)
        explicit_bzero(r->buf, r->size);    /* Basic credentials are in it */
    free(r->buf);
    free(r);
}

FERRY_API const char *
ferry_dest_http_path(const struct ferry_dest_http *r)
{
    return r->path;
}

FERRY_API const char *
ferry_dest_http_query(const struct ferry_dest_http *r)
{
    return r->query;
}

FERRY_API size_t
ferry_dest_http_nfields(const struct ferry_dest_http *r)
{
    return r->nfields;
}

FERRY_API bool
ferry_dest_http_field(const struct ferry_dest_http *r, size_t i, const char **name,
                      const char **value)
{
    *name = r->fields[i].name;
    *value = r->fields[i].value;
    return r->fields[i].secret;
}

FERRY_API bool
ferry_dest_http_replaces(const struct ferry_dest_http *r, const char *name)
{
    return r->replaces_authz && strcasecmp(name, "Authorization") == 0;
}
