/*
 * tenant.c: who a forward-mode client is. Proxy-Authorization names a tenant by its
 * token (Bearer, or Basic with user = tenant id, or the token alone as the user);
 * core checks the token (ferry_conn_auth_tenant) and remembers the tenant on the
 * connection. Credentials are wiped from the stack once checked and never logged.
 *
 * Authenticates only: what is allowed for the tenant (its connectors, egress) is
 * decided by core's routing when the upstream opens.
 */
#include <string.h>
#include <strings.h>

#include <ferry/err.h>
#include <ferry/route.h>

#include "http-int.h"

/* Proxy-Authorization: Bearer <token> | Basic base64(tenant:token) | Basic base64(token:).
 * FERRY_OK, FERRY_EDENIED (no or a bad credential) or FERRY_ELIMIT (the tenant is at its
 * max_connections). */
int
tenant_auth(struct ferry_conn *c, const struct hidx *x)
{
    const struct ferry_http_header *h = x->first[H_PROXYAUTHZ];
    char                            buf[4096];
    uint8_t                         dec[3072];
    int                             rc = FERRY_EDENIED;

    if (x->count[H_PROXYAUTHZ] != 1 || h->value.len >= sizeof(buf))
        return FERRY_EDENIED;
    memcpy(buf, h->value.ptr, h->value.len);
    buf[h->value.len] = '\0';
    if (strncasecmp(buf, "Bearer ", 7) == 0) {
        rc = ferry_conn_auth_tenant(c, NULL, buf + 7);
    } else if (strncasecmp(buf, "Basic ", 6) == 0) {
        long  n = ferry_base64_decode(buf + 6, strlen(buf + 6), dec, sizeof(dec) - 1);
        char *colon;

        if (n > 0 && memchr(dec, 0, (size_t)n) == NULL) {
            dec[n] = '\0';
            if ((colon = strchr((char *)dec, ':')) != NULL) {
                *colon = '\0';
                if (colon[1] == '\0')
                    rc = ferry_conn_auth_tenant(c, NULL, (char *)dec);
                else
                    rc = ferry_conn_auth_tenant(c, (char *)dec, colon + 1);
            }
        }
        explicit_bzero(dec, sizeof(dec));   /* dead after: memset may be dropped */
    }
    explicit_bzero(buf, sizeof(buf));       /* the tenant's token */
    return rc;
}
