/*
 * user.h: struct ferry_user (ferry/user.h) inside core: the validated claims of one
 * user token, shared by the rooms that read them (lua/ for req.user, worker/ for the
 * tunnel stream) without a copy.
 */
#ifndef FERRY_AUTH_USER_H
#define FERRY_AUTH_USER_H

#include <jansson.h>

#include <ferry/user.h>

/* A user of claims (takes a new reference to the object). NULL when out of memory or
 * claims is not an object. */
struct ferry_user *ferry_user_new(json_t *claims);
/* Borrowed: valid while the caller holds its reference to u. */
json_t *ferry_user_claims(const struct ferry_user *u);

#endif
