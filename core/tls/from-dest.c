/*
 * from-dest.c: a destination's TLS properties as upstream TLS settings (from-dest.h),
 * and the same for plugins as struct ferry_io_tls (ferry/io.h).
 *
 * Reads properties only: no file is opened here (the dest room opened the key stores
 * at load, the cache's loader builds contexts).
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include <ferry/io.h>

#include "tls/from-dest.h"

/* A property that is given and not empty, or NULL. */
static const char *
given(const struct ferry_dest *d, const char *key)
{
    const char *v = ferry_dest_prop(d, key);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

void
ferry_tls_settings_from_dest(const struct ferry_dest *d, enum ferry_tls_use use,
                             struct ferry_tls_settings *s)
{
    const char *all = given(d, "TrustAll");
    const char *hv = given(d, "HostnameVerifier");

    memset(s, 0, sizeof(*s));
    s->ca_file = given(d, "TrustStoreLocation");
    if (use == FERRY_TLS_TOKEN_SERVICE) {
        s->cert_file = given(d, "tokenService.KeyStoreLocation");
        s->cert_password = given(d, "tokenService.KeyStorePassword");
        return;
    }
    s->insecure = all != NULL && strcasecmp(all, "true") == 0;
    s->wildcard_any_depth = hv != NULL && strcmp(hv, "BrowserCompatible") == 0;
    /* HTTP's KeyStoreLocation is the TLS client certificate only for certificate
     * authentication; OAuth2SAMLBearerAssertion, say, signs with it. */
    if (ferry_dest_type(d) != FERRY_DEST_HTTP ||
        strcmp(ferry_dest_authentication(d), "ClientCertificateAuthentication") == 0) {
        s->cert_file = given(d, "KeyStoreLocation");
        s->cert_password = given(d, "KeyStorePassword");
    }
}

FERRY_API void
ferry_io_tls_from_dest(const struct ferry_dest *d, struct ferry_io_tls *out)
{
    /* The caller's struct is out->size long (FERRY_IO_TLS_INIT); 0 is taken as 1.3's
     * layout, the oldest that has this call. A newer core never writes past it. */
    const size_t              v13 = offsetof(struct ferry_io_tls, wildcard_any_depth) +
                                    sizeof(out->wildcard_any_depth);
    size_t                    n = out->size != 0 ? out->size : v13;
    struct ferry_io_tls       t = FERRY_IO_TLS_INIT;
    struct ferry_tls_settings s;
    const char               *scheme = ferry_dest_scheme(d);

    ferry_tls_settings_from_dest(d, FERRY_TLS_TARGET, &s);
    t.enable = strcmp(scheme, "https") == 0 || strcmp(scheme, "ldaps") == 0;
    t.server_name = ferry_dest_host(d);
    t.ca_file = s.ca_file;
    t.cert_file = s.cert_file;
    t.key_file = s.key_file;
    t.cert_password = s.cert_password;
    t.insecure = s.insecure;
    t.no_system_store = s.no_system_store;
    t.wildcard_any_depth = s.wildcard_any_depth;
    if (n > sizeof(t))
        n = sizeof(t);
    t.size = (uint32_t)n;
    memcpy(out, &t, n);
}
