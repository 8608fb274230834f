/*
 * ferry/api.h: visibility and version macros shared by every public header.
 *
 * Core builds with -fvisibility=hidden; only functions marked FERRY_API are
 * exported from the ferry binary for plugins to call.
 */
#ifndef FERRY_API_H
#define FERRY_API_H

#define FERRY_API __attribute__((visibility("default")))

#define FERRY_VERSION "0.1.0"

#endif
