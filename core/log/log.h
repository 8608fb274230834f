/*
 * log.h: the process logger (JSON lines on stderr) and the access log (JSON lines on
 * stdout, a file, or off). Lines are built in a stack buffer and written with one
 * write(2), so lines from different workers never interleave.
 */
#ifndef FERRY_LOG_INT_H
#define FERRY_LOG_INT_H

#include <stddef.h>

#include <ferry/log.h>

/* A line under construction; fixed capacity, truncated (and marked) if too long. */
struct logbuf {
    char   data[4096];
    size_t len;
    int    truncated;
};

void logbuf_raw(struct logbuf *b, const char *s, size_t n);
/* Append "key":"escaped" (with a leading comma). */
void logbuf_str(struct logbuf *b, const char *key, const char *val);
void logbuf_int(struct logbuf *b, const char *key, long long val);

/* A log context adds its own fields to every line written through it. */
struct ferry_log_ctx {
    void (*fields)(const struct ferry_log_ctx *ctx, struct logbuf *b);
};

void ferry_log_set_level(enum ferry_log_level level);
/* "stdout", "off" or a file path (opened O_APPEND). Returns FERRY_OK or FERRY_EIO. */
int  ferry_log_open_access(const char *where);
void ferry_log_close_access(void);
int  ferry_log_access_enabled(void);
/* Start an access line: {"time":…,"type":"access" — the caller appends fields and
 * calls ferry_log_access_end(). */
void ferry_log_access_begin(struct logbuf *b);
void ferry_log_access_end(struct logbuf *b);

#endif
