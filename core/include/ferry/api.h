/*
 * ferry/api.h: visibility and version macros shared by every public header.
 *
 * Core builds with -fvisibility=hidden; only functions marked FERRY_API are
 * exported from the ferry binary for plugins to call.
 */
#ifndef FERRY_API_H
#define FERRY_API_H

#include <stddef.h>     /* FERRY_HAS_FIELD is a size_t expression */

#define FERRY_API __attribute__((visibility("default")))

#define FERRY_VERSION "0.1.0"

/*
 * Structs that grow (ABI 1.3 on). A struct that crosses the plugin boundary and may gain
 * fields carries a `uint32_t size`: whoever allocates it sets it to the sizeof it was
 * compiled with (FERRY_STRUCT_INIT for a plugin's own struct; core sets it in the structs
 * it hands out). The reader then uses only the fields that fit:
 *
 *     if (FERRY_HAS_FIELD(t, some_1_4_field)) ... t->some_1_4_field ...
 *
 * Core reads a struct of an older plugin only as far as that plugin's minor had it
 * (ferry_target.protocol is absent for a 1.1 plugin) and defaults the rest.
 */
#define FERRY_HAS_FIELD(p, field) \
    ((size_t)((const char *)&(p)->field - (const char *)(p)) + sizeof((p)->field) <= (p)->size)

/* A zeroed struct of type T with its size set:
 *     struct ferry_target t = FERRY_STRUCT_INIT(ferry_target);  (or FERRY_TARGET_INIT) */
#define FERRY_STRUCT_INIT(T) { .size = sizeof(struct T) }

#endif
