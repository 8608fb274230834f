/*
 * conn-user.c: ferry/user.h's ferry_conn_user_verify on a connection — a JWT checked
 * against the `jwt:` of a tenant with the worker's cache of verified tokens, and the
 * user (the claims, never the token) handed back. Also the JWT half of
 * ferry_conn_auth_tenant (a tenant authenticated by a JWT where a static token works).
 *
 * Leaves the keys to gen-jwt.c and the checks to auth/jwt.h; what a refusal looks like
 * on the wire is the plugin's (401, 407, a SOCKS5 reply).
 */
#include <string.h>

#include <ferry/route.h>
#include <ferry/user.h>

#include "auth/user.h"
#include "worker/conn-int.h"

FERRY_API int
ferry_conn_user_verify(struct ferry_conn *c, const char *tenant, const char *token,
                       size_t len, struct ferry_user **user, const char **reason)
{
    struct stats_jwt_cell *cell = stats_jwt_cell(c->w->id);
    struct gen_jwt        *j;
    json_t                *claims = NULL;
    int                    rc;

    *user = NULL;
    *reason = NULL;
    if (tenant == NULL)
        tenant = ferry_conn_tenant(c);
    if (tenant == NULL || (j = gen_jwt_find(c->wg->g, tenant)) == NULL) {
        *reason = "no-jwt-config";
        return FERRY_EDENIED;
    }
    rc = gen_jwt_verify(j, c->w->jwt_cache, cell, true, token, len, &claims, reason);
    if (rc == FERRY_EDENIED)
        stats_jwt_refused(cell, *reason);
    if (rc != FERRY_OK)
        return rc;
    *user = ferry_user_new(claims);
    json_decref(claims);
    return *user != NULL ? FERRY_OK : FERRY_ENOMEM;
}

int
conn_auth_tenant_jwt(struct ferry_conn *c, const char *tenant_id, const char *token,
                     const struct ferry_conf_tenant **out)
{
    const char *reason = NULL;
    size_t      len = token != NULL ? strlen(token) : 0;
    int         rc;

    *out = NULL;
    if (c->wg->g->njwt == 0 || !gen_jwt_looks_like(token, len))
        return FERRY_EDENIED;
    rc = gen_jwt_tenant(c->wg->g, c->w->jwt_cache, stats_jwt_cell(c->w->id), tenant_id,
                        token, len, out, &reason);
    if (rc != FERRY_EDENIED || strcmp(reason, "no-jwt-config") == 0)
        return rc;
    if (tenant_id != NULL)                  /* the tenant the client named */
        ferry_log(&c->logctx, FERRY_INFO, "tenant JWT refused", FLOG_STR("reason", reason),
                  FLOG_STR("tenant", tenant_id));
    else
        ferry_log(&c->logctx, FERRY_INFO, "tenant JWT refused", FLOG_STR("reason", reason));
    return rc;
}
