/*
 * ferry/user.h: the calling user, for principal propagation (ABI 1.4; DESIGN.md "User
 * identity: principal propagation").
 *
 * A plugin that finds a user's JWT (the http plugin: `Authorization: Bearer` on a
 * transparent listener, `SAP-Connectivity-Authentication: Bearer` on the forward proxy)
 * has core validate it against the `jwt:` settings of a tenant. What it gets back is the
 * user: the validated claims, never the token. The plugin then names the user in
 * ferry_target.user (the tunnel stream carries the claims to the connector, which issues
 * the user's certificate) and in ferry_policy_http.user (Lua's req.user).
 *
 * A user is reference-counted without atomics: it stays on the worker that validated it.
 */
#ifndef FERRY_USER_H
#define FERRY_USER_H

#include <stddef.h>

#include <ferry/api.h>
#include <ferry/conn.h>

struct ferry_user;

/* Validate token[0..len) (the JWT alone, without "Bearer ") with the `jwt:` settings of
 * tenant (NULL: the connection's tenant, ferry_conn_tenant). A signature is verified once
 * per token and worker; later calls answer from the worker's cache until the token
 * expires. FERRY_OK: *user is a new reference (ferry_user_unref). FERRY_EDENIED: *reason
 * is a static string — malformed, bad-algorithm, unknown-key, bad-signature,
 * wrong-issuer, wrong-audience, expired, not-yet-valid (ferry's auth/jwt.h) or
 * "no-jwt-config" (the tenant has no `jwt:`, or there is no tenant). Never logs the
 * token. FERRY_ENOMEM. */
FERRY_API int ferry_conn_user_verify(struct ferry_conn *c, const char *tenant,
                                     const char *token, size_t len,
                                     struct ferry_user **user, const char **reason);

FERRY_API struct ferry_user *ferry_user_ref(struct ferry_user *u);
FERRY_API void ferry_user_unref(struct ferry_user *u);      /* NULL is fine */

/* The claims as compact JSON (keys sorted, ASCII only: \u escapes), NUL-terminated:
 * what travels to the connector. NULL when out of memory. */
FERRY_API const char *ferry_user_claims_json(struct ferry_user *u);
/* 64 hex digits: SHA-256 of ferry_user_claims_json(). Equal claims, equal id: upstream
 * streams that carry a user are pooled under it. NULL when out of memory. */
FERRY_API const char *ferry_user_id(struct ferry_user *u);
/* The user's name for logs and SAP's ${name}: the first non-empty string of the claims
 * user_name, email, mail, user_uuid, sub; "" when none. */
FERRY_API const char *ferry_user_name(const struct ferry_user *u);

#endif
