/*
 * from-dest.h: the one mapping of a destination's TLS properties onto upstream TLS
 * settings (tls/cache.h). Every user of upstream TLS goes through it: the http and
 * ldap plugins (ferry_io_tls_from_dest() in ferry/io.h), token services (ferry.http.request
 * with `tls_of`), so a property means the same thing everywhere.
 *
 *   TrustStoreLocation      PEM CAs trusted besides the system store (both uses)
 *   TrustAll                "true": the server is not verified (the target only: a token
 *                           service is always verified)
 *   KeyStoreLocation +      the client key store (PKCS#12 or PEM): for HTTP only with
 *   KeyStorePassword        Authentication ClientCertificateAuthentication (other types
 *                           use it as a signing key), for LDAP, TCP and RFC whenever given
 *   tokenService.KeyStoreLocation + tokenService.KeyStorePassword
 *                           the client key store towards the token service (mTLS)
 *   HostnameVerifier        Strict (default): a "*." name of the server's certificate
 *                           covers one label; BrowserCompatible: any number of labels
 *                           (the target only). Partial wildcards ("f*.x") never match.
 *
 * Paths are already resolved against the defining file, and key stores were opened
 * once at load (dest/keystore.h), so a context build finds them as checked.
 */
#ifndef FERRY_TLS_FROM_DEST_H
#define FERRY_TLS_FROM_DEST_H

#include <ferry/dest.h>

#include "tls/cache.h"

enum ferry_tls_use {
    FERRY_TLS_TARGET = 0,       /* the destination's own server (URL, ldap.url, ...) */
    FERRY_TLS_TOKEN_SERVICE,    /* its tokenServiceURL */
};

/* Fill *s (zeroed first) for d used as `use`. Every string is borrowed from d (valid
 * while the caller holds d's registry snapshot); cert_password is a secret. */
void ferry_tls_settings_from_dest(const struct ferry_dest *d, enum ferry_tls_use use,
                                  struct ferry_tls_settings *s);

#endif
