/*
 * err.c: the error detail record shared by every room (ferry/err.h).
 *
 * Fills a struct ferry_err and hands the code back so callers can
 * `return ferry_err_set(...)`. Does not log: the caller decides where detail goes.
 */
#include <stdio.h>
#include <string.h>

#include <ferry/err.h>

FERRY_API int
ferry_err_vset(struct ferry_err *err, int code, const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->line = 0;
    err->col = 0;
    err->file[0] = '\0';
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return code;
}

FERRY_API int
ferry_err_set(struct ferry_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ferry_err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

FERRY_API const char *
ferry_strerror(int code)
{
    static const char *const names[] = {
        "OK", "EAGAIN", "EINVAL", "ENOMEM", "ELIMIT", "ETIMEDOUT",
        "EDENIED", "EPROTO", "EIO", "ENOTFOUND", "EUNAVAIL", "ENOTUNNEL", "EUNREACH",
    };

    if (code > 0 || -code >= (int)(sizeof(names) / sizeof(names[0])))
        return "EUNKNOWN";
    return names[-code];
}
