/*
 * ferry/dest.h: a destination as plugins see it: read-only, from one registry snapshot.
 *
 * A connection holds a reference to the snapshot that was current when it was
 * accepted, so every pointer returned here stays valid until that connection closes,
 * even across a SIGHUP reload.
 */
#ifndef FERRY_DEST_H
#define FERRY_DEST_H

#include <stddef.h>
#include <stdint.h>

#include <ferry/api.h>

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

#endif
