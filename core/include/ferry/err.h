/*
 * ferry/err.h: the one error enum of ferry and the detail record that goes with it.
 *
 * Functions return FERRY_OK (0), a count, or a negative FERRY_E* code. The codes are
 * part of the plugin ABI: they are never renumbered, only appended.
 */
#ifndef FERRY_ERR_H
#define FERRY_ERR_H

#include <stdarg.h>

#include <ferry/api.h>

enum ferry_errcode {
    FERRY_OK        = 0,
    FERRY_EAGAIN    = -1,   /* try again later (would block, not ready yet) */
    FERRY_EINVAL    = -2,   /* bad input: config, arguments, protocol fields */
    FERRY_ENOMEM    = -3,   /* allocation failed: fails one connection, never the process */
    FERRY_ELIMIT    = -4,   /* a named bound was reached (buffer cap, max_connections) */
    FERRY_ETIMEDOUT = -5,   /* a deadline passed */
    FERRY_EDENIED   = -6,   /* refused by access rules or a policy */
    FERRY_EPROTO    = -7,   /* the peer broke its protocol */
    FERRY_EIO       = -8,   /* an OS call failed (file, socket) */
    FERRY_ENOTFOUND = -9,   /* no such destination, tenant, host name */
    FERRY_EUNAVAIL  = -10,  /* a needed service is down (no tunnel, upstream refused) */
    FERRY_ENOTUNNEL = -11,  /* no live connector for the tenant and location */
    FERRY_EUNREACH  = -12,  /* the target host or network is unreachable */
};

/* Detail for the caller or the operator. For config errors file/line/col are set
 * (1-based); otherwise line is 0. msg never holds a secret value. */
struct ferry_err {
    int  code;
    int  line;
    int  col;
    char file[256];
    char msg[512];
};

/* Fill err (if not NULL) and return code, so callers can `return ferry_err_set(...)`. */
FERRY_API int ferry_err_set(struct ferry_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
FERRY_API int ferry_err_vset(struct ferry_err *err, int code, const char *fmt, va_list ap);

/* A short stable name for a code: "EINVAL", "ETIMEDOUT", ... ("EUNKNOWN" otherwise). */
FERRY_API const char *ferry_strerror(int code);

#endif
