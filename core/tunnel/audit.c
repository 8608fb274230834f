/*
 * audit.c: the connector's tamper-evident audit log (audit.h): JSON lines chained by
 * SHA-256, appended by any thread, and the verifier behind --verify-audit.
 *
 * Owns the log's file descriptor (O_APPEND) and the hash of the last line written.
 * A line is built off the lock; the lock covers only the time stamp, the "prev" hash
 * and one write(2), so lines never interleave and the chain follows file order. No
 * fdatasync per line: the chain makes loss or edits visible, it does not prevent them.
 * One process writes one file: two processes appending would fork the chain.
 *
 * A line that cannot be written (disk full, the file gone after a failed reopen) is
 * kept, with its time stamp, in a bounded pending queue and written first the next
 * time: "prev" is computed only when a line reaches the file, so the chain never skips
 * a record that failed. A write cut short is truncated away when the file allows it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <ferry/log.h>

#include "tunnel/audit.h"

#define AUDIT_HASH_LEN    32
#define AUDIT_HEX_LEN     (2 * AUDIT_HASH_LEN)
/* Room in front of a line's body for "\n" (ending a partial line), time and prev. */
#define AUDIT_HEAD_ROOM   128
/* A string field is cut here (an HTTP path can be long); the line says "truncated". */
#define AUDIT_MAX_FIELD   2048
/* The verifier refuses longer lines instead of growing without bound. */
#define AUDIT_MAX_LINE    (1024 * 1024)
#define AUDIT_MAX_DEPTH   16
/* Lines kept while the file cannot be written. With audit_fail: closed only streams
 * already open add to it; with open, lines past it are lost (and counted). */
#define AUDIT_MAX_PENDING 1024
/* While failing, one log line per this interval, with the count since the last. */
#define AUDIT_LOG_EVERY_S 10
#define AUDIT_STAMP_LEN   32

struct line {
    char  *p;           /* owns; the first AUDIT_HEAD_ROOM bytes are for the head */
    size_t len, cap;
    bool   oom, truncated;
};

struct pending {
    struct line l;                           /* owns l.p */
    char        stamp[AUDIT_STAMP_LEN];      /* when it happened, not when it was written */
};

struct ferry_audit {
    pthread_mutex_t mu;
    int             fd;                      /* owns: O_APPEND; -1 after a failed reopen */
    char           *path;                    /* owns: opened again on reopen */
    unsigned char   prev[AUDIT_HASH_LEN];    /* hash of the chain's last line written */
    bool            need_newline;            /* the file ends inside a line: end it first */
    bool            failing;                 /* a failure was logged; cleared by success */
    struct pending *pend;                    /* owns: AUDIT_MAX_PENDING slots, oldest first */
    size_t          npend;
    time_t          logged_at;               /* monotonic s of the last failure line */
    uint64_t        unlogged;                /* failures since that line */
    _Atomic uint64_t errors;                 /* for /metrics */
    atomic_bool     healthy;                 /* nothing pending and a file open */
};

static bool
sha256(const void *data, size_t len, unsigned char out[AUDIT_HASH_LEN])
{
    unsigned int n = 0;

    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == AUDIT_HASH_LEN;
}

static void
hex(const unsigned char h[AUDIT_HASH_LEN], char out[AUDIT_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < AUDIT_HASH_LEN; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 0xf];
    }
    out[AUDIT_HEX_LEN] = '\0';
}

/* ---- building a line ---------------------------------------------------------- */

static void
put(struct line *l, const char *s, size_t n)
{
    if (l->oom)
        return;
    if (l->len + n > l->cap) {
        size_t cap = l->cap * 2 > l->len + n ? l->cap * 2 : l->len + n + 256;
        char  *p = realloc(l->p, cap);

        if (p == NULL) {
            l->oom = true;
            return;
        }
        l->p = p;
        l->cap = cap;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;

    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        need = 1;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        need = 2;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        need = 3;
    else
        return 0;
    if (s[0] == 0xe0)
        lo = 0xa0;                          /* overlong */
    else if (s[0] == 0xed)
        hi = 0x9f;                          /* surrogates */
    else if (s[0] == 0xf0)
        lo = 0x90;                          /* overlong */
    else if (s[0] == 0xf4)
        hi = 0x8f;                          /* past U+10FFFF */
    if (need >= n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i <= need; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return need + 1;
}

/* "key":"value" with the value JSON-escaped: quotes, backslashes and every control
 * character, so a line stays one line; bytes that are not UTF-8 become \u00XX. */
static void
put_str(struct line *l, const char *key, const char *val)
{
    const unsigned char *s = (const unsigned char *)val;
    size_t               n = strlen(val), i = 0;
    char                 esc[8];

    if (n > AUDIT_MAX_FIELD) {
        n = AUDIT_MAX_FIELD;
        l->truncated = true;
    }
    put(l, ",\"", 2);
    put(l, key, strlen(key));
    put(l, "\":\"", 3);
    while (i < n) {
        size_t run = i, u;

        while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' && s[run] != '\\')
            run++;
        put(l, val + i, run - i);
        if ((i = run) >= n)
            break;
        if (s[i] == '"' || s[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)s[i];
            put(l, esc, 2);
            i++;
        } else if (s[i] >= 0x80 && (u = utf8_len(s + i, n - i)) > 0) {
            put(l, val + i, u);
            i += u;
        } else {
            const char *c = s[i] == '\n' ? "\\n" : s[i] == '\r' ? "\\r" : s[i] == '\t' ? "\\t"
                            : NULL;

            if (c != NULL)
                put(l, c, 2);
            else
                put(l, esc, (size_t)snprintf(esc, sizeof(esc), "\\u%04x", s[i]));
            i++;
        }
    }
    put(l, "\"", 1);
}

static void
put_u64(struct line *l, const char *key, uint64_t v)
{
    char num[48];
    int  n = snprintf(num, sizeof(num), ",\"%s\":%" PRIu64, key, v);

    put(l, num, (size_t)n);
}

/* Everything after "prev": the part of a line that needs no lock. */
static bool
build_body(struct line *l, const struct ferry_audit_rec *r)
{
    static const struct { const char *key; size_t off; } strs[] = {
        { "tenant",   offsetof(struct ferry_audit_rec, tenant) },
        { "location", offsetof(struct ferry_audit_rec, location) },
        { "virtual",  offsetof(struct ferry_audit_rec, virtual_target) },
        { "internal", offsetof(struct ferry_audit_rec, internal_target) },
        { "protocol", offsetof(struct ferry_audit_rec, protocol) },
        { "outcome",  offsetof(struct ferry_audit_rec, outcome) },
        { "reason",   offsetof(struct ferry_audit_rec, reason) },
        { "path",     offsetof(struct ferry_audit_rec, path) },
        { "user",     offsetof(struct ferry_audit_rec, user) },
    };

    l->cap = AUDIT_HEAD_ROOM + 512;
    l->len = AUDIT_HEAD_ROOM;
    if ((l->p = malloc(l->cap)) == NULL)
        return false;
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        const char *v = *(const char *const *)((const char *)r + strs[i].off);

        if (v != NULL)
            put_str(l, strs[i].key, v);
    }
    put_u64(l, "bytes_in", r->bytes_in);
    put_u64(l, "bytes_out", r->bytes_out);
    put_u64(l, "duration_ms", r->duration_ms);
    if (l->truncated)
        put(l, ",\"truncated\":true", 17);
    put(l, "}\n", 2);
    return !l->oom;
}

/* ---- writing ------------------------------------------------------------------ */

static time_t
mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* One failure: counted always; logged at once when the log was healthy, then at most
 * every AUDIT_LOG_EVERY_S with how many failed since (open mode fails per stream). */
static void
report(struct ferry_audit *a, const char *what, int errnum)
{
    time_t now = mono_s();

    atomic_fetch_add_explicit(&a->errors, 1, memory_order_relaxed);
    a->unlogged++;
    if (a->failing && now - a->logged_at < AUDIT_LOG_EVERY_S)
        return;
    a->failing = true;
    a->logged_at = now;
    ferry_log(NULL, FERRY_ERROR, "audit log write failed", FLOG_STR("path", a->path),
              FLOG_STR("what", what), FLOG_STR("error", errnum != 0 ? strerror(errnum) : ""),
              FLOG_INT("failures", a->unlogged), FLOG_INT("pending", a->npend));
    a->unlogged = 0;
}

static void
set_health(struct ferry_audit *a)
{
    bool ok = a->fd >= 0 && a->npend == 0;

    if (ok && a->failing) {
        a->failing = false;
        ferry_log(NULL, FERRY_INFO, "audit log writable again", FLOG_STR("path", a->path));
    }
    atomic_store(&a->healthy, ok);
}

static void
stamp_now(char out[AUDIT_STAMP_LEN])
{
    struct timespec ts;
    struct tm       tm;

    size_t          n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(out, AUDIT_STAMP_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, AUDIT_STAMP_LEN - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* The head goes right in front of the body, inside its reserved room. Returns where
 * the line (with a leading "\n" if needed) starts. */
static char *
put_head(struct ferry_audit *a, struct line *l, const char *stamp)
{
    char head[AUDIT_HEAD_ROOM], prev[AUDIT_HEX_LEN + 1];
    int  n;

    hex(a->prev, prev);
    n = snprintf(head, sizeof(head), "%s{\"time\":\"%s\",\"prev\":\"%s\"",
                 a->need_newline ? "\n" : "", stamp, prev);
    if (n < 0 || (size_t)n > AUDIT_HEAD_ROOM)
        return NULL;
    memcpy(l->p + AUDIT_HEAD_ROOM - (size_t)n, head, (size_t)n);
    return l->p + AUDIT_HEAD_ROOM - (size_t)n;
}

/* After a write of `done` of `len` bytes of line (which starts with "\n" if nl), make
 * prev and need_newline describe what the file now ends with. */
static void
account(struct ferry_audit *a, const char *line, size_t len, size_t done, bool nl)
{
    size_t start = nl ? 1 : 0, end;

    if (done == 0)
        return;
    if (done <= start) {                    /* only the newline ending the old partial */
        a->need_newline = false;
        return;
    }
    end = done < len ? done : len - 1;      /* the line's bytes, without its newline */
    if (!sha256(line + start, end - start, a->prev))
        report(a, "sha256", 0);
    a->need_newline = done < len;
}

static int reopen_locked(struct ferry_audit *a, struct ferry_err *err);

/* Under the lock: one line to the file. false (reported) if it did not get there whole;
 * then the line is still the caller's to keep. */
static bool
emit(struct ferry_audit *a, struct line *l, const char *stamp)
{
    struct ferry_err err = { 0 };
    char            *line;
    size_t           len, done = 0;
    off_t            before;
    bool             nl;
    int              errnum = 0;

    /* After a failed reopen every line tries the path again: the operator's fix (space,
     * permissions, a directory removed) is picked up without a signal. */
    if (a->fd < 0 && reopen_locked(a, &err) != FERRY_OK) {
        report(a, "open", errno);
        return false;
    }
    nl = a->need_newline;
    if ((line = put_head(a, l, stamp)) == NULL) {
        report(a, "line head", 0);
        return false;
    }
    len = (size_t)(l->p + l->len - line);
    before = lseek(a->fd, 0, SEEK_END);     /* one writer (the lock): the line starts here */
    while (done < len) {
        ssize_t n = write(a->fd, line + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            errnum = n < 0 ? errno : ENOSPC;
            break;
        }
        done += (size_t)n;
    }
    /* A line cut short by a full disk would be a broken line in the chain; removing it
     * lets the retry write the whole line where it belongs. */
    if (done > 0 && done < len && before >= 0 && ftruncate(a->fd, before) == 0)
        done = 0;
    account(a, line, len, done, nl);
    if (done < len) {
        report(a, "write", errnum);
        return false;
    }
    return true;
}

/* Under the lock: write what is pending, oldest first; true when nothing is left. */
static bool
flush(struct ferry_audit *a)
{
    size_t i = 0;

    while (i < a->npend && emit(a, &a->pend[i].l, a->pend[i].stamp)) {
        free(a->pend[i].l.p);
        i++;
    }
    if (i > 0) {
        memmove(a->pend, a->pend + i, (a->npend - i) * sizeof(*a->pend));
        a->npend -= i;
    }
    return a->npend == 0;
}

int
ferry_audit_write(struct ferry_audit *a, const struct ferry_audit_rec *r)
{
    struct line l = {0};
    char        stamp[AUDIT_STAMP_LEN];
    int         rc = FERRY_OK;

    if (a == NULL)
        return FERRY_OK;
    stamp_now(stamp);
    if (!build_body(&l, r)) {
        pthread_mutex_lock(&a->mu);
        report(a, "out of memory", ENOMEM);
        pthread_mutex_unlock(&a->mu);
        free(l.p);
        return FERRY_ENOMEM;
    }
    pthread_mutex_lock(&a->mu);
    if (!flush(a) || !emit(a, &l, stamp)) {
        rc = FERRY_EIO;
        if (a->npend < AUDIT_MAX_PENDING) {
            a->pend[a->npend].l = l;        /* the queue owns it now */
            memcpy(a->pend[a->npend].stamp, stamp, sizeof(stamp));
            a->npend++;
            l.p = NULL;
        }
    }
    set_health(a);
    pthread_mutex_unlock(&a->mu);
    free(l.p);
    return rc;
}

int
ferry_audit_retry(struct ferry_audit *a)
{
    struct ferry_err err = { 0 };
    bool             ok;

    if (a == NULL)
        return FERRY_OK;
    if (atomic_load(&a->healthy))
        return FERRY_OK;
    pthread_mutex_lock(&a->mu);
    if (a->fd < 0 && reopen_locked(a, &err) != FERRY_OK)
        report(a, "open", errno);
    ok = a->fd >= 0 && flush(a);
    set_health(a);
    pthread_mutex_unlock(&a->mu);
    return ok ? FERRY_OK : FERRY_EIO;
}

bool
ferry_audit_is_healthy(struct ferry_audit *a)
{
    return a == NULL || atomic_load(&a->healthy);
}

uint64_t
ferry_audit_errors(struct ferry_audit *a)
{
    return a == NULL ? 0 : atomic_load_explicit(&a->errors, memory_order_relaxed);
}

/* ---- opening: continue the chain ---------------------------------------------- */

/* Hash of the file's last line (bytes after the last newline before `end`) into prev;
 * *need_nl: the file ends inside a line. */
static int
hash_last_line(int fd, off_t size, const char *path, unsigned char prev[AUDIT_HASH_LEN],
               bool *need_nl, struct ferry_err *err)
{
    EVP_MD_CTX   *ctx = NULL;
    char          buf[8192], last;
    off_t         end = size, start = 0, pos;
    unsigned int  n = 0;
    int           rc = FERRY_EIO;

    if (pread(fd, &last, 1, size - 1) != 1)
        return ferry_err_set(err, FERRY_EIO, "%s: %s", path, strerror(errno));
    *need_nl = last != '\n';                /* a line was cut short: end it first */
    if (last == '\n')
        end = size - 1;
    for (pos = end; pos > 0 && start == 0;) {
        size_t  chunk = pos > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)pos;
        ssize_t r = pread(fd, buf, chunk, pos - (off_t)chunk);

        if (r != (ssize_t)chunk)
            return ferry_err_set(err, FERRY_EIO, "%s: %s", path,
                                 r < 0 ? strerror(errno) : "short read");
        pos -= (off_t)chunk;
        for (size_t i = chunk; i > 0; i--) {
            if (buf[i - 1] == '\n') {
                start = pos + (off_t)i;
                break;
            }
        }
    }
    if ((ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = ferry_err_set(err, FERRY_ENOMEM, "out of memory");
        goto out;
    }
    for (pos = start; pos < end;) {
        size_t  chunk = end - pos > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)(end - pos);
        ssize_t r = pread(fd, buf, chunk, pos);

        if (r <= 0) {
            rc = ferry_err_set(err, FERRY_EIO, "%s: %s", path,
                               r < 0 ? strerror(errno) : "short read");
            goto out;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)r);
        pos += r;
    }
    if (EVP_DigestFinal_ex(ctx, prev, &n) != 1 || n != AUDIT_HASH_LEN) {
        rc = ferry_err_set(err, FERRY_EIO, "sha256 failed");
        goto out;
    }
    rc = FERRY_OK;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* Under the lock (or before anyone shares a): open the path and continue the chain. An
 * empty file continues from a->prev (zeros for a new log, the previous file's last line
 * after a rotation); a file with lines continues from its last line. On failure a->fd
 * stays -1 and errno says why. */
static int
reopen_locked(struct ferry_audit *a, struct ferry_err *err)
{
    unsigned char prev[AUDIT_HASH_LEN];
    struct stat   st;
    bool          need_nl = false;
    int           fd, rc, saved;

    if ((fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return ferry_err_set(err, FERRY_EIO, "cannot open %s: %s", a->path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return ferry_err_set(err, FERRY_EIO, "%s: not a regular file", a->path);
    }
    memcpy(prev, a->prev, sizeof(prev));
    if (st.st_size > 0 &&
        (rc = hash_last_line(fd, st.st_size, a->path, prev, &need_nl, err)) != FERRY_OK) {
        saved = errno;
        close(fd);
        errno = saved;
        return rc;
    }
    a->fd = fd;
    memcpy(a->prev, prev, sizeof(prev));
    a->need_newline = need_nl;
    return FERRY_OK;
}

int
ferry_audit_reopen(struct ferry_audit *a, struct ferry_err *err)
{
    int rc;

    if (a == NULL)
        return FERRY_OK;
    pthread_mutex_lock(&a->mu);
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    if ((rc = reopen_locked(a, err)) != FERRY_OK)
        report(a, "reopen", errno);
    else
        flush(a);
    set_health(a);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int
ferry_audit_open(const char *path, struct ferry_audit **out, struct ferry_err *err)
{
    struct ferry_audit *a;
    int                 rc;

    *out = NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL || (a->path = strdup(path)) == NULL ||
        (a->pend = calloc(AUDIT_MAX_PENDING, sizeof(*a->pend))) == NULL) {
        if (a != NULL)
            free(a->path);
        free(a);
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    }
    a->fd = -1;
    if (pthread_mutex_init(&a->mu, NULL) != 0) {
        free(a->pend);
        free(a->path);
        free(a);
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    }
    if ((rc = reopen_locked(a, err)) != FERRY_OK)   /* new file: prev stays 64 zeros */
        goto fail;
    atomic_store(&a->healthy, true);
    *out = a;
    return FERRY_OK;
fail:
    ferry_audit_close(a);
    return rc;
}

void
ferry_audit_close(struct ferry_audit *a)
{
    if (a == NULL)
        return;
    if (a->fd >= 0)
        close(a->fd);
    for (size_t i = 0; i < a->npend; i++)
        free(a->pend[i].l.p);
    free(a->pend);
    pthread_mutex_destroy(&a->mu);
    free(a->path);
    free(a);
}

/* ---- verifying ---------------------------------------------------------------- */

struct jp {
    const char *s, *end;
    const char *prev;           /* the top-level "prev" string's content, or NULL */
    size_t      prev_len;
    int         nprev;
};

static void
ws(struct jp *j)
{
    while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\r'))
        j->s++;
}

static bool
is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A JSON string; *content and *n get its raw (still escaped) text. */
static bool
jstring(struct jp *j, const char **content, size_t *n)
{
    if (j->s >= j->end || *j->s != '"')
        return false;
    *content = ++j->s;
    while (j->s < j->end && *j->s != '"') {
        if ((unsigned char)*j->s < 0x20)
            return false;
        if (*j->s == '\\') {
            if (++j->s >= j->end)
                return false;
            if (*j->s == 'u') {
                if (j->end - j->s < 5 || !is_hex(j->s[1]) || !is_hex(j->s[2])
                    || !is_hex(j->s[3]) || !is_hex(j->s[4]))
                    return false;
                j->s += 4;
            } else if (strchr("\"\\/bfnrt", *j->s) == NULL) {
                return false;
            }
        }
        j->s++;
    }
    if (j->s >= j->end)
        return false;
    *n = (size_t)(j->s++ - *content);
    return true;
}

static bool
digits(struct jp *j)
{
    const char *from = j->s;

    while (j->s < j->end && *j->s >= '0' && *j->s <= '9')
        j->s++;
    return j->s > from;
}

static bool
jnumber(struct jp *j)
{
    if (j->s < j->end && *j->s == '-')
        j->s++;
    if (j->s < j->end && *j->s == '0')
        j->s++;
    else if (!digits(j))
        return false;
    if (j->s < j->end && *j->s == '.') {
        j->s++;
        if (!digits(j))
            return false;
    }
    if (j->s < j->end && (*j->s == 'e' || *j->s == 'E')) {
        j->s++;
        if (j->s < j->end && (*j->s == '+' || *j->s == '-'))
            j->s++;
        if (!digits(j))
            return false;
    }
    return true;
}

static bool jvalue(struct jp *j, int depth);

static bool
jword(struct jp *j, const char *w)
{
    size_t n = strlen(w);

    if ((size_t)(j->end - j->s) < n || memcmp(j->s, w, n) != 0)
        return false;
    j->s += n;
    return true;
}

static bool
jcontainer(struct jp *j, int depth, char close)
{
    j->s++;                                 /* '{' or '[' */
    ws(j);
    if (j->s < j->end && *j->s == close) {
        j->s++;
        return true;
    }
    for (;;) {
        if (close == '}') {
            const char *k;
            size_t      kn;

            if (!jstring(j, &k, &kn))
                return false;
            ws(j);
            if (j->s >= j->end || *j->s != ':')
                return false;
            j->s++;
            ws(j);
            if (depth == 1 && kn == 4 && memcmp(k, "prev", 4) == 0) {
                j->nprev++;
                if (!jstring(j, &j->prev, &j->prev_len))
                    return false;
            } else if (!jvalue(j, depth)) {
                return false;
            }
        } else if (!jvalue(j, depth)) {
            return false;
        }
        ws(j);
        if (j->s < j->end && *j->s == ',') {
            j->s++;
            ws(j);
            continue;
        }
        if (j->s < j->end && *j->s == close) {
            j->s++;
            return true;
        }
        return false;
    }
}

static bool
jvalue(struct jp *j, int depth)
{
    const char *c;
    size_t      n;

    if (j->s >= j->end)
        return false;
    switch (*j->s) {
    case '{':
        return depth < AUDIT_MAX_DEPTH && jcontainer(j, depth + 1, '}');
    case '[':
        return depth < AUDIT_MAX_DEPTH && jcontainer(j, depth + 1, ']');
    case '"':
        return jstring(j, &c, &n);
    case 't':
        return jword(j, "true");
    case 'f':
        return jword(j, "false");
    case 'n':
        return jword(j, "null");
    default:
        return jnumber(j);
    }
}

/* Why line (without its newline) is not an audit record, or NULL; *prev set if it is. */
static const char *
check_record(const char *line, size_t n, const char **prev)
{
    struct jp j = { .s = line, .end = line + n };

    ws(&j);
    if (j.s >= j.end || *j.s != '{' || !jcontainer(&j, 1, '}'))
        return "not JSON";
    ws(&j);
    if (j.s != j.end)
        return "not JSON (text after the object)";
    if (j.nprev == 0)
        return "no prev field";
    if (j.nprev > 1)
        return "more than one prev field";
    if (j.prev_len != AUDIT_HEX_LEN)
        return "prev is not 64 hex digits";
    for (size_t i = 0; i < AUDIT_HEX_LEN; i++)
        if (!((j.prev[i] >= '0' && j.prev[i] <= '9') || (j.prev[i] >= 'a' && j.prev[i] <= 'f')))
            return "prev is not 64 lowercase hex digits";
    *prev = j.prev;
    return NULL;
}

struct reader {
    int    fd;
    char   chunk[65536];
    size_t pos, fill;
    bool   eof;
    char  *line;                /* owns: up to AUDIT_MAX_LINE bytes */
    size_t len, cap;
};

/* Next line without its newline: 1, 0 at the end, or a negative FERRY_E* code. */
static int
next_line(struct reader *r)
{
    r->len = 0;
    for (;;) {
        if (r->pos == r->fill) {
            ssize_t n;

            if (r->eof)
                return r->len > 0 ? 1 : 0;
            if ((n = read(r->fd, r->chunk, sizeof(r->chunk))) < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return FERRY_EIO;
            r->pos = 0;
            r->fill = (size_t)n;
            r->eof = n == 0;
            continue;
        }
        char  *nl = memchr(r->chunk + r->pos, '\n', r->fill - r->pos);
        size_t take = nl != NULL ? (size_t)(nl - (r->chunk + r->pos)) : r->fill - r->pos;

        if (r->len + take > AUDIT_MAX_LINE)
            return FERRY_ELIMIT;
        if (r->len + take > r->cap) {
            size_t cap = r->cap == 0 ? 4096 : r->cap;
            char  *p;

            while (cap < r->len + take)
                cap *= 2;
            if ((p = realloc(r->line, cap)) == NULL)
                return FERRY_ENOMEM;
            r->line = p;
            r->cap = cap;
        }
        memcpy(r->line + r->len, r->chunk + r->pos, take);
        r->len += take;
        r->pos += take;
        if (nl != NULL) {
            r->pos++;
            return 1;
        }
    }
}

int
ferry_audit_verify_from(const char *path, char prev_hex[FERRY_AUDIT_HEX_LEN + 1],
                        uint64_t *nlines, struct ferry_err *err)
{
    static const char zeros[AUDIT_HEX_LEN + 1] =
        "0000000000000000000000000000000000000000000000000000000000000000";
    struct reader *r;
    unsigned char  h[AUDIT_HASH_LEN];
    char           want[AUDIT_HEX_LEN + 1];
    uint64_t       n = 0;
    int            rc, more;
    bool           first = memcmp(prev_hex, zeros, AUDIT_HEX_LEN) == 0;

    if (nlines != NULL)
        *nlines = 0;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = ferry_err_set(err, FERRY_EIO, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    memcpy(want, prev_hex, sizeof(want));
    want[AUDIT_HEX_LEN] = '\0';
    while ((more = next_line(r)) == 1) {
        const char *prev = NULL, *why;

        n++;
        if (r->len == 0) {
            rc = ferry_err_set(err, FERRY_EINVAL, "line %" PRIu64 ": empty line", n);
            goto out;
        }
        if ((why = check_record(r->line, r->len, &prev)) != NULL) {
            rc = ferry_err_set(err, FERRY_EINVAL, "line %" PRIu64 ": %s", n, why);
            goto out;
        }
        if (memcmp(prev, want, AUDIT_HEX_LEN) != 0) {
            if (n == 1 && first)
                rc = ferry_err_set(err, FERRY_EINVAL, "line 1: prev is not 64 zeros: the "
                                   "first line of the file is not the chain's first (a "
                                   "rotated log? name the older files first)");
            else if (n == 1)
                rc = ferry_err_set(err, FERRY_EINVAL, "line 1: prev does not match the "
                                   "previous file's last line: a gap between the files "
                                   "(one missing, or not in order)");
            else
                rc = ferry_err_set(err, FERRY_EINVAL, "line %" PRIu64 ": prev does not "
                                   "match line %" PRIu64, n, n - 1);
            goto out;
        }
        if (!sha256(r->line, r->len, h)) {
            rc = ferry_err_set(err, FERRY_ENOMEM, "sha256 failed");
            goto out;
        }
        hex(h, want);
        if (nlines != NULL)
            *nlines = n;
    }
    if (more == FERRY_ELIMIT)
        rc = ferry_err_set(err, FERRY_EINVAL, "line %" PRIu64 ": longer than %d bytes", n + 1,
                           AUDIT_MAX_LINE);
    else if (more < 0)
        rc = ferry_err_set(err, more, "cannot read %s: %s", path,
                           more == FERRY_ENOMEM ? "out of memory" : strerror(errno));
    else
        rc = FERRY_OK;
    if (rc == FERRY_OK)
        memcpy(prev_hex, want, sizeof(want));   /* where the next file must start */
out:
    if (r->fd >= 0)
        close(r->fd);
    free(r->line);
    free(r);
    return rc;
}

int
ferry_audit_verify(const char *path, uint64_t *nlines, struct ferry_err *err)
{
    char prev[FERRY_AUDIT_HEX_LEN + 1];

    memset(prev, '0', FERRY_AUDIT_HEX_LEN);
    prev[FERRY_AUDIT_HEX_LEN] = '\0';
    return ferry_audit_verify_from(path, prev, nlines, err);
}
