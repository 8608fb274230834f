/*
 * ferry/log.h: structured JSON-lines logging.
 *
 *     ferry_log(ferry_conn_log(c), FERRY_WARN, "upstream refused",
 *               FLOG_STR("target", host), FLOG_INT("port", port));
 *
 * prints one line: {"time":"…","level":"warn","msg":"upstream refused",
 * "worker":0,"conn":17,"listener":"rfc","client":"127.0.0.1:41522",
 * "target":"…","port":3300}. The handle adds its context fields, so a call site
 * adds only what is new. Never pass a credential, token or password as a field.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdint.h>

#include <ferry/api.h>

enum ferry_log_level {
    FERRY_DEBUG = 0,   /* per connection; off by default */
    FERRY_INFO,        /* start, reload, tunnel up/down */
    FERRY_WARN,        /* one request or connection failed */
    FERRY_ERROR,       /* the operator must act */
};

enum ferry_log_ftype { FERRY_LOGF_END = 0, FERRY_LOGF_STR, FERRY_LOGF_INT };

struct ferry_log_field {
    const char          *key;
    enum ferry_log_ftype type;
    const char          *s;
    long long            i;
};

#define FLOG_STR(k, v) ((struct ferry_log_field){ .key = (k), .type = FERRY_LOGF_STR, .s = (v) })
#define FLOG_INT(k, v) ((struct ferry_log_field){ .key = (k), .type = FERRY_LOGF_INT, .i = (long long)(v) })
#define FLOG_END       ((struct ferry_log_field){ .key = NULL, .type = FERRY_LOGF_END })

/* A context whose fields prefix every line written through it; NULL = process log. */
struct ferry_log_ctx;

FERRY_API void ferry_log_emit(const struct ferry_log_ctx *ctx, enum ferry_log_level level,
                              const char *msg, ...);
FERRY_API int  ferry_log_enabled(enum ferry_log_level level);

#define ferry_log(ctx, level, ...) \
    (ferry_log_enabled(level) ? ferry_log_emit((ctx), (level), __VA_ARGS__, FLOG_END) : (void)0)

#endif
