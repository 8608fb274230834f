/*
 * log.c: JSON-lines logging. The process log goes to stderr, the access log to
 * stdout, a file or nowhere. Owns the access-log file descriptor. Knows nothing of
 * connections: a struct ferry_log_ctx adds context fields through its callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ferry/err.h>

#include "log/log.h"

static atomic_int log_level = FERRY_INFO;
static atomic_int access_fd = 1;          /* -1: off */

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
ferry_log_set_level(enum ferry_log_level level)
{
    atomic_store(&log_level, (int)level);
}

FERRY_API int
ferry_log_enabled(enum ferry_log_level level)
{
    return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void
logbuf_raw(struct logbuf *b, const char *s, size_t n)
{
    /* Keep 2 bytes for the closing "}\n" that every line gets. */
    size_t room = sizeof(b->data) - 2 - b->len;

    if (n > room) {
        n = room;
        b->truncated = 1;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void
logbuf_escaped(struct logbuf *b, const char *s)
{
    char   tmp[256];
    size_t t = 0;

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if (t + 6 >= sizeof(tmp)) {
            logbuf_raw(b, tmp, t);
            t = 0;
        }
        if (ch == '"' || ch == '\\') {
            tmp[t++] = '\\';
            tmp[t++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            t += (size_t)snprintf(tmp + t, sizeof(tmp) - t, "\\u%04x", ch);
        } else {
            tmp[t++] = (char)ch;
        }
    }
    logbuf_raw(b, tmp, t);
}

void
logbuf_str(struct logbuf *b, const char *key, const char *val)
{
    logbuf_raw(b, ",\"", 2);
    logbuf_escaped(b, key);
    logbuf_raw(b, "\":", 2);
    if (val == NULL) {
        logbuf_raw(b, "null", 4);
        return;
    }
    logbuf_raw(b, "\"", 1);
    logbuf_escaped(b, val);
    logbuf_raw(b, "\"", 1);
}

void
logbuf_int(struct logbuf *b, const char *key, long long val)
{
    char num[32];
    int  n = snprintf(num, sizeof(num), "%lld", val);

    logbuf_raw(b, ",\"", 2);
    logbuf_escaped(b, key);
    logbuf_raw(b, "\":", 2);
    logbuf_raw(b, num, (size_t)n);
}

static void
logbuf_begin(struct logbuf *b)
{
    struct timespec ts;
    struct tm       tm;
    char            head[64];
    int             n;

    b->len = 0;
    b->truncated = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(head, sizeof(head), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000);
    logbuf_raw(b, head, (size_t)n);
}

static void
logbuf_write(struct logbuf *b, int fd)
{
    ssize_t n;
    size_t  off = 0;

    if (b->truncated) {
        /* Leave room for the marker; the line stays valid JSON. */
        if (b->len > sizeof(b->data) - 32)
            b->len = sizeof(b->data) - 32;
        logbuf_raw(b, ",\"truncated\":true", 17);
    }
    b->data[b->len++] = '}';
    b->data[b->len++] = '\n';
    while (off < b->len) {
        n = write(fd, b->data + off, b->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;             /* nowhere to report a failing log */
        off += (size_t)n;
    }
}

FERRY_API void
ferry_log_emit(const struct ferry_log_ctx *ctx, enum ferry_log_level level, const char *msg, ...)
{
    struct logbuf b;
    va_list       ap;

    if ((unsigned)level > FERRY_ERROR)
        level = FERRY_ERROR;
    logbuf_begin(&b);
    logbuf_str(&b, "level", level_names[level]);
    logbuf_str(&b, "msg", msg);
    if (ctx != NULL && ctx->fields != NULL)
        ctx->fields(ctx, &b);
    va_start(ap, msg);
    for (;;) {
        struct ferry_log_field f = va_arg(ap, struct ferry_log_field);

        if (f.type == FERRY_LOGF_END || f.key == NULL)
            break;
        if (f.type == FERRY_LOGF_STR)
            logbuf_str(&b, f.key, f.s);
        else
            logbuf_int(&b, f.key, f.i);
    }
    va_end(ap);
    logbuf_write(&b, 2);
}

int
ferry_log_open_access(const char *where)
{
    int fd, old;

    if (where == NULL || strcmp(where, "stdout") == 0)
        fd = 1;
    else if (strcmp(where, "off") == 0)
        fd = -1;
    else if ((fd = open(where, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0)
        return FERRY_EIO;
    old = atomic_exchange(&access_fd, fd);
    if (old > 2)
        close(old);
    return FERRY_OK;
}

void
ferry_log_close_access(void)
{
    int old = atomic_exchange(&access_fd, -1);

    if (old > 2)
        close(old);
}

int
ferry_log_access_enabled(void)
{
    return atomic_load_explicit(&access_fd, memory_order_relaxed) >= 0;
}

void
ferry_log_access_begin(struct logbuf *b)
{
    logbuf_begin(b);
    logbuf_str(b, "type", "access");
}

void
ferry_log_access_end(struct logbuf *b)
{
    int fd = atomic_load_explicit(&access_fd, memory_order_relaxed);

    if (fd >= 0)
        logbuf_write(b, fd);
}
