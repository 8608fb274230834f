/*
 * user.c: the validated claims of a user token (ferry/user.h). The JSON text and its
 * hash are made on first use and kept: most requests need neither (a policy reads the
 * claims, a pooled stream is found by the id once per request).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "auth/user.h"

struct ferry_user {
    unsigned  refs;             /* one worker: no atomics */
    json_t   *claims;           /* ref */
    char     *json;             /* owns, lazily */
    char      id[SHA256_DIGEST_LENGTH * 2 + 1];     /* "" until made */
};

struct ferry_user *
ferry_user_new(json_t *claims)
{
    struct ferry_user *u;

    if (!json_is_object(claims) || (u = calloc(1, sizeof(*u))) == NULL)
        return NULL;
    u->refs = 1;
    u->claims = json_incref(claims);
    return u;
}

json_t *
ferry_user_claims(const struct ferry_user *u)
{
    return u->claims;
}

FERRY_API struct ferry_user *
ferry_user_ref(struct ferry_user *u)
{
    if (u != NULL)
        u->refs++;
    return u;
}

FERRY_API void
ferry_user_unref(struct ferry_user *u)
{
    if (u == NULL || --u->refs > 0)
        return;
    json_decref(u->claims);
    free(u->json);
    free(u);
}

FERRY_API const char *
ferry_user_claims_json(struct ferry_user *u)
{
    if (u->json == NULL)
        u->json = json_dumps(u->claims, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    return u->json;
}

FERRY_API const char *
ferry_user_id(struct ferry_user *u)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t           md[SHA256_DIGEST_LENGTH];
    const char       *j;

    if (u->id[0] != '\0')
        return u->id;
    if ((j = ferry_user_claims_json(u)) == NULL)
        return NULL;
    SHA256((const unsigned char *)j, strlen(j), md);
    for (size_t i = 0; i < sizeof(md); i++) {
        u->id[2 * i] = hex[md[i] >> 4];
        u->id[2 * i + 1] = hex[md[i] & 0xf];
    }
    u->id[sizeof(u->id) - 1] = '\0';
    return u->id;
}

FERRY_API const char *
ferry_user_name(const struct ferry_user *u)
{
    static const char *const keys[] = { "user_name", "email", "mail", "user_uuid", "sub" };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = json_string_value(json_object_get(u->claims, keys[i]));

        if (v != NULL && v[0] != '\0')
            return v;
    }
    return "";
}
