/*
 * ferry/dest.h: a destination as plugins see it: read-only, from one registry snapshot.
 *
 * A connection holds a reference to the snapshot that was current when it was
 * accepted, so every pointer returned here stays valid until that connection closes,
 * even across a SIGHUP reload.
 */
#ifndef FERRY_DEST_H
#define FERRY_DEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/api.h>

struct ferry_err;

struct ferry_dest;

enum ferry_dest_type {
    FERRY_DEST_HTTP = 1,
    FERRY_DEST_TCP,
    FERRY_DEST_LDAP,
    FERRY_DEST_RFC,
    FERRY_DEST_MAIL,
};

enum ferry_proxy_type {
    FERRY_PROXY_INTERNET = 1,
    FERRY_PROXY_ONPREMISE,
    FERRY_PROXY_PRIVATELINK,
};

FERRY_API const char *ferry_dest_name(const struct ferry_dest *d);
FERRY_API enum ferry_dest_type ferry_dest_type(const struct ferry_dest *d);
FERRY_API enum ferry_proxy_type ferry_dest_proxy_type(const struct ferry_dest *d);
/* The target host and port derived from URL / Address+Port / jco.client.* / ldap.url. */
FERRY_API const char *ferry_dest_host(const struct ferry_dest *d);
FERRY_API uint16_t ferry_dest_port(const struct ferry_dest *d);
/* The tenant id ("" never: the registry fills the only tenant in) and the location
 * id ("" is the default location). */
FERRY_API const char *ferry_dest_tenant(const struct ferry_dest *d);
FERRY_API const char *ferry_dest_location(const struct ferry_dest *d);
/* Any property by its SAP name, verbatim ("URL.headers.X-Client"); NULL if absent.
 * Secret references are already expanded: never log the result. */
FERRY_API const char *ferry_dest_prop(const struct ferry_dest *d, const char *key);
/* The i-th property in definition order (0 <= i < ferry_dest_nprops); for prefixed
 * families such as URL.headers.* and URL.queries.*. */
FERRY_API size_t ferry_dest_nprops(const struct ferry_dest *d);
FERRY_API void ferry_dest_prop_at(const struct ferry_dest *d, size_t i, const char **key,
                                  const char **value);
/* From the URL: "http"/"https"/... and its path ("" if none). */
FERRY_API const char *ferry_dest_scheme(const struct ferry_dest *d);
FERRY_API const char *ferry_dest_path(const struct ferry_dest *d);
/* `Authentication` ("NoAuthentication" when absent, HTTP). */
FERRY_API const char *ferry_dest_authentication(const struct ferry_dest *d);
/* URL.socketReadTimeoutInSeconds in ms (0: not given). */
FERRY_API uint32_t ferry_dest_read_timeout_ms(const struct ferry_dest *d);

/*
 * What a destination of Type HTTP adds to a request on its way out: the one place this
 * is computed, for the http plugin and for `ferry policy test`. Run it on the request
 * as the policy left it (on_request runs first, on the client's path and query).
 *
 *   path    the URL's path joined with the request's: "/api" + "/x" = "/api/x",
 *           "/api/" + "/x" = "/api/x", "/api" + "" = "/api", "" + "" = "/"
 *   query   the URL's own query (URL: https://h/api?v=2), the request's as it came
 *           (query NULL: none), then one name=value per URL.queries.<name>,
 *           percent-encoded (RFC 3986: "a b&c" is "a%20b%26c"), joined with '&'; NULL
 *           when there is none at all (no '?' to write)
 *   fields  URL.headers.<Name> in definition order, then BasicAuthentication's
 *           "Authorization: Basic base64(User:Password)". The request's own fields go
 *           before them and stay (SAP's Transparent Proxy sends both), except those
 *           ferry_dest_http_replaces() names: Authorization, for BasicAuthentication.
 *
 * OAuth2* credentials are not here: they need a token fetch, done by the Lua modules
 * of lua/ferry/auth/ as the destination's implicit on_request.
 *
 * path (path_len bytes) and query need not be NUL-terminated. FERRY_OK and *out (free
 * it with ferry_dest_http_free, which wipes the credentials), or FERRY_EINVAL (a
 * URL.headers.* that is not a valid field, credentials too long), FERRY_ELIMIT (the
 * result would pass 64 KiB), FERRY_ENOMEM, with err's message (no secret in it).
 * Strings returned are valid until ferry_dest_http_free, and while d is.
 */
struct ferry_dest_http;
FERRY_API int ferry_dest_http_new(const struct ferry_dest *d, const char *path, size_t path_len,
                                  const char *query, size_t query_len,
                                  struct ferry_dest_http **out, struct ferry_err *err);
FERRY_API void ferry_dest_http_free(struct ferry_dest_http *r);
FERRY_API const char *ferry_dest_http_path(const struct ferry_dest_http *r);
FERRY_API const char *ferry_dest_http_query(const struct ferry_dest_http *r);
FERRY_API size_t ferry_dest_http_nfields(const struct ferry_dest_http *r);
/* The i-th field (0 <= i < nfields). true: the value is a credential or a secret
 * property: never log or print it. */
FERRY_API bool ferry_dest_http_field(const struct ferry_dest_http *r, size_t i,
                                     const char **name, const char **value);
/* true: the request's own fields of this name (case-insensitive) are dropped. */
FERRY_API bool ferry_dest_http_replaces(const struct ferry_dest_http *r, const char *name);

#endif
