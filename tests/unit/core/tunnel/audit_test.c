/*
 * audit_test.c: the connector's audit log (core/tunnel/audit.c): the SHA-256 chain
 * across threads and reopening, what the verifier catches (an edited byte, a removed
 * or reordered line, a bad first line), JSON escaping, and files cut mid-line.
 */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cu.h"
#include "tunnel/audit.h"

#define THREADS     2
#define PER_THREAD  500

static char  dir[64];
static char  path[128];
static int   seq;

/* A fresh, not yet existing log path for each test. */
static const char *
new_path(void)
{
    snprintf(path, sizeof(path), "%s/audit-%d.jsonl", dir, ++seq);
    return path;
}

static const struct ferry_audit_rec rec_ok = {
    .tenant = "acme", .location = "berlin", .virtual_target = "erp.internal:3300",
    .internal_target = "10.0.0.12:3300", .protocol = "TCP", .outcome = "ok",
    .bytes_in = 120, .bytes_out = 4096, .duration_ms = 35,
};

static void
write_n(const char *p, int n)
{
    struct ferry_audit *a = NULL;
    struct ferry_err    err = {0};

    CU_ASSERT_EQUAL_FATAL(ferry_audit_open(p, &a, &err), FERRY_OK);
    for (int i = 0; i < n; i++) {
        struct ferry_audit_rec r = rec_ok;

        r.duration_ms = (uint64_t)i;
        ferry_audit_write(a, &r);
    }
    ferry_audit_close(a);
}

/* The whole file (NUL-terminated, owned by caller) and its size. */
static char *
slurp(const char *p, size_t *len)
{
    FILE  *fp = fopen(p, "rb");
    char  *buf = NULL;
    long   n;

    if (fp == NULL)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0
        && (buf = malloc((size_t)n + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)n, fp);
        buf[*len] = '\0';
    }
    fclose(fp);
    return buf;
}

static bool
spit(const char *p, const char *data, size_t len)
{
    FILE *fp = fopen(p, "wb");
    bool  ok;

    if (fp == NULL)
        return false;
    ok = fwrite(data, 1, len, fp) == len;
    return fclose(fp) == 0 && ok;
}

static size_t
count_lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* Start of line k (1-based) in s, or NULL. */
static char *
line_at(char *s, int k)
{
    for (int i = 1; i < k && s != NULL; i++)
        if ((s = strchr(s, '\n')) != NULL)
            s++;
    return s;
}

/* The hex SHA-256 of line k, computed here rather than by the code under test. */
static void
line_hash(char *s, int k, char out[65])
{
    unsigned char md[32];
    unsigned int  n;
    char         *l = line_at(s, k);
    size_t        len = strcspn(l, "\n");

    EVP_Digest(l, len, md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The 64 characters of line k's "prev". */
static const char *
prev_of(char *s, int k)
{
    char *p = strstr(line_at(s, k), "\"prev\":\"");

    return p != NULL ? p + 8 : "";
}

static int
verify(const char *p, uint64_t *n, struct ferry_err *err)
{
    memset(err, 0, sizeof(*err));
    return ferry_audit_verify(p, n, err);
}

struct writer {
    struct ferry_audit *a;
    int                 id;
};

static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    char           reason[32];

    for (int i = 0; i < PER_THREAD; i++) {
        struct ferry_audit_rec r = rec_ok;

        snprintf(reason, sizeof(reason), "t%d-%d", w->id, i);
        r.reason = reason;
        ferry_audit_write(w->a, &r);
    }
    return NULL;
}

static void
test_two_threads_keep_one_chain(void)
{
    struct ferry_audit *a = NULL;
    struct ferry_err    err = {0};
    struct writer       w[THREADS];
    pthread_t           t[THREADS];
    struct stat         st;
    uint64_t            n = 0;
    size_t              len;
    char               *s, h[65];

    CU_ASSERT_EQUAL_FATAL(ferry_audit_open(new_path(), &a, &err), FERRY_OK);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct writer){ .a = a, .id = i };
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    ferry_audit_close(a);

    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_OK);
    CU_ASSERT_EQUAL(n, THREADS * PER_THREAD);
    CU_ASSERT_FATAL((s = slurp(path, &len)) != NULL);
    CU_ASSERT_EQUAL(count_lines(s), THREADS * PER_THREAD);
    CU_ASSERT_EQUAL(s[len - 1], '\n');
    /* every record is there once: the last of each thread */
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"reason\":\"t0-499\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"reason\":\"t1-499\""));
    /* the chain, checked independently of the verifier */
    CU_ASSERT_NSTRING_EQUAL(prev_of(s, 1), "0000000000000000000000000000000000000000000000000000"
                            "000000000000", 64);
    line_hash(s, 1, h);
    CU_ASSERT_NSTRING_EQUAL(prev_of(s, 2), h, 64);
    line_hash(s, 999, h);
    CU_ASSERT_NSTRING_EQUAL(prev_of(s, 1000), h, 64);
    free(s);
}

static void
test_line_format(void)
{
    struct ferry_audit_rec r = {
        .tenant = "acme", .location = "", .virtual_target = "shop.internal:80",
        .outcome = "denied", .reason = "path not allowed", .path = "/admin",
        .user = "CN=alice\\, B,O=Acme",
        .bytes_in = 0, .bytes_out = 0, .duration_ms = 18446744073709551615ull,
    };
    struct ferry_audit *a = NULL;
    struct ferry_err    err = {0};
    size_t              len;
    char               *s;

    CU_ASSERT_EQUAL_FATAL(ferry_audit_open(new_path(), &a, &err), FERRY_OK);
    ferry_audit_write(a, &r);
    ferry_audit_close(a);
    CU_ASSERT_FATAL((s = slurp(path, &len)) != NULL);
    /* {"time":"YYYY-MM-DDTHH:MM:SS.mmmZ","prev":"<64>", ... */
    CU_ASSERT_EQUAL(strncmp(s, "{\"time\":\"", 9), 0);
    CU_ASSERT(len > 33 && s[13] == '-' && s[16] == '-' && s[19] == 'T' && s[22] == ':'
              && s[25] == ':' && s[28] == '.' && s[32] == 'Z' && s[33] == '"');
    CU_ASSERT_STRING_EQUAL(s + 34, ",\"prev\":\"00000000000000000000000000000000000000000000"
                           "00000000000000000000\",\"tenant\":\"acme\",\"location\":\"\","
                           "\"virtual\":\"shop.internal:80\",\"outcome\":\"denied\","
                           "\"reason\":\"path not allowed\",\"path\":\"/admin\","
                           "\"user\":\"CN=alice\\\\, B,O=Acme\",\"bytes_in\":0,"
                           "\"bytes_out\":0,\"duration_ms\":18446744073709551615}\n");
    /* null fields are left out, not written as null */
    CU_ASSERT_PTR_NULL(strstr(s, "internal\""));
    CU_ASSERT_PTR_NULL(strstr(s, "protocol"));
    CU_ASSERT_PTR_NULL(strstr(s, "null"));
    free(s);
    /* The user is part of the line, so the chain covers it. */
    CU_ASSERT_EQUAL(verify(path, NULL, &err), FERRY_OK);
}

static void
test_special_characters_are_escaped_on_one_line(void)
{
    struct ferry_audit_rec r = rec_ok;
    struct ferry_audit    *a = NULL;
    struct ferry_err       err = {0};
    uint64_t               n = 0;
    size_t                 len;
    char                  *s, longpath[5000];

    r.reason = "a\"b\\c\nd\re\tf\001g\037h\177i";
    r.path = "/caf\xc3\xa9/\xff\xfe/\xe2\x82\xac/\xed\xa0\x80/\xc3";   /* é, bad, €, surrogate */
    r.tenant = "</script>\u2028";
    CU_ASSERT_EQUAL_FATAL(ferry_audit_open(new_path(), &a, &err), FERRY_OK);
    ferry_audit_write(a, &r);
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    r = rec_ok;
    r.path = longpath;
    ferry_audit_write(a, &r);
    ferry_audit_close(a);

    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_FATAL((s = slurp(path, &len)) != NULL);
    CU_ASSERT_EQUAL(count_lines(s), 2);
    CU_ASSERT_EQUAL(strlen(s), len);                /* no NUL, nothing cut */
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"reason\":\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001fh"
                                     "\\u007fi\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"path\":\"/caf\xc3\xa9/\\u00ff\\u00fe/\xe2\x82\xac/"
                                     "\\u00ed\\u00a0\\u0080/\\u00c3\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"tenant\":\"</script>\xe2\x80\xa8\""));
    for (const char *p = s; *p != '\0'; p++)
        CU_ASSERT((unsigned char)*p >= 0x20 || *p == '\n');
    /* a long field is cut and the line says so */
    CU_ASSERT_PTR_NOT_NULL(strstr(line_at(s, 2), "\",\"bytes_in\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(line_at(s, 2), ",\"truncated\":true}\n"));
    CU_ASSERT(strcspn(line_at(s, 2), "\n") < 2500);
    free(s);
}

static void
test_reopen_continues_the_chain(void)
{
    uint64_t         n = 0;
    struct ferry_err err;
    size_t           len;
    char            *s, h[65];

    write_n(new_path(), 3);
    write_n(path, 2);
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_OK);
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_FATAL((s = slurp(path, &len)) != NULL);
    line_hash(s, 3, h);
    CU_ASSERT_NSTRING_EQUAL(prev_of(s, 4), h, 64);
    free(s);
    /* an empty existing file starts a chain */
    CU_ASSERT_FATAL(spit(new_path(), "", 0));
    write_n(path, 1);
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_OK);
    CU_ASSERT_EQUAL(n, 1);
}

static void
test_edited_byte_is_caught(void)
{
    uint64_t         n = 0;
    struct ferry_err err;
    size_t           len;
    char            *s, *l;

    write_n(new_path(), 8);
    CU_ASSERT_FATAL((s = slurp(path, &len)) != NULL);
    l = strstr(line_at(s, 4), "\"bytes_out\":4096");
    CU_ASSERT_FATAL(l != NULL);
    l[12] = '5';                                    /* 4096 -> 5096: still JSON */
    CU_ASSERT_FATAL(spit(path, s, len));
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_EINVAL);
    CU_ASSERT_STRING_EQUAL(err.msg, "line 5: prev does not match line 4");
    CU_ASSERT_EQUAL(n, 4);

    l[12] = '4';                                    /* put it back: good again */
    l = strstr(line_at(s, 6), "\"tenant\"");
    l[0] = '\'';                                    /* breaks the JSON of line 6 */
    CU_ASSERT_FATAL(spit(path, s, len));
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_EINVAL);
    CU_ASSERT_STRING_EQUAL(err.msg, "line 6: not JSON");
    l[0] = '"';
    l = strstr(line_at(s, 2), "\"prev\":\"") + 8;
    l[0] = l[0] == 'f' ? 'e' : 'f';                 /* the hash itself */
    CU_ASSERT_FATAL(spit(path, s, len));
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_EINVAL);
    CU_ASSERT_STRING_EQUAL(err.msg, "line 2: prev does not match line 1");
    free(s);
}

static void
test_removed_or_reordered_lines_are_caught(void)
{
    uint64_t         n = 0;
    struct ferry_err err;
    size_t           len;
    char            *s, *l3, *l4, *l5, *out;

    write_n(new_path(), 6);
    CU_ASSERT_FATAL((s = slurp(path, &len)) != NULL);
    CU_ASSERT_FATAL((out = malloc(len + 1)) != NULL);
    l3 = line_at(s, 3);
    l4 = line_at(s, 4);
    l5 = line_at(s, 5);
    /* without line 3 */
    memcpy(out, s, (size_t)(l3 - s));
    memcpy(out + (l3 - s), l4, len - (size_t)(l4 - s));
    CU_ASSERT_FATAL(spit(path, out, len - (size_t)(l4 - l3)));
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_EINVAL);
    CU_ASSERT_STRING_EQUAL(err.msg, "line 3: prev does not match line 2");
    /* without line 1 */
    CU_ASSERT_FATAL(spit(path, line_at(s, 2), len - (size_t)(line_at(s, 2) - s)));
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "line 1: prev is not 64 zeros"));
    /* lines 3 and 4 swapped */
    memcpy(out, s, len);
    memcpy(out + (l3 - s), l4, (size_t)(l5 - l4));
    memcpy(out + (l3 - s) + (l5 - l4), l3, (size_t)(l4 - l3));
    CU_ASSERT_FATAL(spit(path, out, len));
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_EINVAL);
    CU_ASSERT_STRING_EQUAL(err.msg, "line 3: prev does not match line 2");
    /* an empty line in the middle */
    memcpy(out, s, (size_t)(l3 - s));
    out[l3 - s] = '\n';
    memcpy(out + (l3 - s) + 1, l3, len - (size_t)(l3 - s));
    CU_ASSERT_FATAL(spit(path, out, len + 1));
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_EINVAL);
    CU_ASSERT_STRING_EQUAL(err.msg, "line 3: empty line");
    free(out);
    free(s);
}

static void
test_cut_or_malformed_last_line_still_opens(void)
{
    static const char cut[] = "{\"time\":\"2026-11-30T04:50:00.123Z\",\"prev\":\"00";
    uint64_t          n = 0;
    struct ferry_err  err;
    size_t            len;
    char             *s, h[65];

    /* a good line, then a line cut short (no newline) */
    write_n(new_path(), 1);
    CU_ASSERT_FATAL((s = slurp(path, &len)) != NULL);
    CU_ASSERT_FATAL((s = realloc(s, len + sizeof(cut))) != NULL);
    memcpy(s + len, cut, sizeof(cut));
    CU_ASSERT_FATAL(spit(path, s, len + sizeof(cut) - 1));
    free(s);
    write_n(path, 2);
    CU_ASSERT_FATAL((s = slurp(path, &len)) != NULL);
    CU_ASSERT_EQUAL(count_lines(s), 4);             /* the cut line got its own end */
    CU_ASSERT_EQUAL(strncmp(line_at(s, 2), cut, sizeof(cut) - 1), 0);
    CU_ASSERT_EQUAL(line_at(s, 2)[sizeof(cut) - 1], '\n');
    line_hash(s, 2, h);
    CU_ASSERT_NSTRING_EQUAL(prev_of(s, 3), h, 64);  /* chained to whatever was there */
    free(s);
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_EINVAL);
    CU_ASSERT_STRING_EQUAL(err.msg, "line 2: not JSON");
    CU_ASSERT_EQUAL(n, 1);

    /* a complete but malformed last line: continue from its hash too */
    CU_ASSERT_FATAL(spit(new_path(), "garbage\n", 8));
    write_n(path, 1);
    CU_ASSERT_FATAL((s = slurp(path, &len)) != NULL);
    line_hash(s, 1, h);
    CU_ASSERT_NSTRING_EQUAL(prev_of(s, 2), h, 64);
    free(s);
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_EINVAL);
    CU_ASSERT_STRING_EQUAL(err.msg, "line 1: not JSON");
}

/* A full disk in miniature: RLIMIT_FSIZE lets a write through only in part. The cut
 * line is taken back, the failed records wait, and the first write that works puts
 * them in the file in order, chained: nothing lost, nothing broken. */
static void
test_short_write_is_removed_and_retried(void)
{
    struct ferry_audit *a = NULL;
    struct ferry_err    err = {0};
    struct rlimit       old, lim;
    struct stat         st;
    uint64_t            n = 0;
    size_t              len;
    char               *s, *logged, logpath[160];
    int                 saved, fd;

    snprintf(logpath, sizeof(logpath), "%s/stderr.txt", dir);
    CU_ASSERT_EQUAL_FATAL(ferry_audit_open(new_path(), &a, &err), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_audit_write(a, &rec_ok), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    fflush(stderr);
    saved = dup(2);
    fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 40;
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    CU_ASSERT_EQUAL(ferry_audit_write(a, &rec_ok), FERRY_EIO);  /* 40 bytes, taken back */
    CU_ASSERT_EQUAL(ferry_audit_write(a, &rec_ok), FERRY_EIO);  /* waits behind it */
    CU_ASSERT_FALSE(ferry_audit_is_healthy(a));
    CU_ASSERT_EQUAL(ferry_audit_retry(a), FERRY_EIO);
    CU_ASSERT_EQUAL(ferry_audit_errors(a), 3);
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    lim.rlim_cur = old.rlim_cur;
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    CU_ASSERT_EQUAL(ferry_audit_retry(a), FERRY_OK);            /* the two, then healthy */
    CU_ASSERT_TRUE(ferry_audit_is_healthy(a));
    CU_ASSERT_EQUAL(ferry_audit_write(a, &rec_ok), FERRY_OK);
    ferry_audit_close(a);
    dup2(saved, 2);
    close(saved);
    close(fd);

    CU_ASSERT_FATAL((logged = slurp(logpath, &len)) != NULL);
    CU_ASSERT_EQUAL(count_lines(logged), 2);        /* failing once, writable again */
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "audit log write failed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "audit log writable again"));
    free(logged);
    CU_ASSERT_FATAL((s = slurp(path, &len)) != NULL);
    CU_ASSERT_EQUAL(count_lines(s), 4);
    free(s);
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_OK);
    CU_ASSERT_EQUAL(n, 4);
}

/* logrotate: rename, reopen. The new file's first line carries the old file's last
 * hash; the verifier follows the chain across both, and names a gap. */
static void
test_rotation_continues_the_chain_across_files(void)
{
    struct ferry_audit *a = NULL;
    struct ferry_err    err = {0};
    char                old[200], cur[160], prev[FERRY_AUDIT_HEX_LEN + 1], h[65], *s;
    uint64_t            n = 0;
    size_t              len;

    snprintf(cur, sizeof(cur), "%s", new_path());
    snprintf(old, sizeof(old), "%s.1", cur);
    CU_ASSERT_EQUAL_FATAL(ferry_audit_open(cur, &a, &err), FERRY_OK);
    ferry_audit_write(a, &rec_ok);
    ferry_audit_write(a, &rec_ok);
    CU_ASSERT_EQUAL_FATAL(rename(cur, old), 0);
    CU_ASSERT_EQUAL(ferry_audit_reopen(a, &err), FERRY_OK);
    ferry_audit_write(a, &rec_ok);
    ferry_audit_close(a);

    CU_ASSERT_FATAL((s = slurp(old, &len)) != NULL);
    line_hash(s, 2, h);
    free(s);
    CU_ASSERT_FATAL((s = slurp(cur, &len)) != NULL);
    CU_ASSERT_EQUAL(count_lines(s), 1);
    CU_ASSERT_NSTRING_EQUAL(prev_of(s, 1), h, 64);
    free(s);

    memset(prev, '0', FERRY_AUDIT_HEX_LEN);
    prev[FERRY_AUDIT_HEX_LEN] = '\0';
    CU_ASSERT_EQUAL(ferry_audit_verify_from(old, prev, &n, &err), FERRY_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_NSTRING_EQUAL(prev, h, 64);
    CU_ASSERT_EQUAL(ferry_audit_verify_from(cur, prev, &n, &err), FERRY_OK);
    CU_ASSERT_EQUAL(n, 1);
    /* alone, the new file does not start the chain; after a foreign file, a gap */
    CU_ASSERT_EQUAL(verify(cur, &n, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not the chain's first"));
    memset(prev, '0', FERRY_AUDIT_HEX_LEN);
    CU_ASSERT_EQUAL(ferry_audit_verify_from(cur, prev, &n, &err), FERRY_EINVAL);
    write_n(new_path(), 1);
    memset(prev, '0', FERRY_AUDIT_HEX_LEN);
    CU_ASSERT_EQUAL(ferry_audit_verify_from(path, prev, &n, &err), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_audit_verify_from(cur, prev, &n, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "line 1: prev does not match the previous file"));
}

/* A reopen that fails (a directory where the file was) leaves no file: records wait,
 * the log is unhealthy, and each retry tries the path again until it works. */
static void
test_failed_reopen_waits_and_recovers(void)
{
    struct ferry_audit *a = NULL;
    struct ferry_err    err = {0};
    char                cur[160], old[200], *s;
    uint64_t            n = 0;
    size_t              len;
    int                 saved = dup(2), fd = open("/dev/null", O_WRONLY);

    CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
    dup2(fd, 2);                                    /* the failure lines are expected */
    snprintf(cur, sizeof(cur), "%s", new_path());
    snprintf(old, sizeof(old), "%s.1", cur);
    CU_ASSERT_EQUAL_FATAL(ferry_audit_open(cur, &a, &err), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_audit_write(a, &rec_ok), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(rename(cur, old), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(cur, 0700), 0);
    CU_ASSERT_NOT_EQUAL(ferry_audit_reopen(a, &err), FERRY_OK);
    CU_ASSERT_FALSE(ferry_audit_is_healthy(a));
    CU_ASSERT_EQUAL(ferry_audit_retry(a), FERRY_EIO);
    CU_ASSERT_EQUAL(ferry_audit_write(a, &rec_ok), FERRY_EIO);  /* kept */
    CU_ASSERT_TRUE(ferry_audit_errors(a) >= 3);
    CU_ASSERT_EQUAL_FATAL(rmdir(cur), 0);
    CU_ASSERT_EQUAL(ferry_audit_retry(a), FERRY_OK);
    CU_ASSERT_TRUE(ferry_audit_is_healthy(a));
    ferry_audit_close(a);
    dup2(saved, 2);
    close(saved);
    close(fd);

    CU_ASSERT_FATAL((s = slurp(cur, &len)) != NULL);
    CU_ASSERT_EQUAL(count_lines(s), 1);             /* the record that waited */
    free(s);
    CU_ASSERT_EQUAL(verify(old, &n, &err), FERRY_OK);
    {
        char prev[FERRY_AUDIT_HEX_LEN + 1];

        memset(prev, '0', FERRY_AUDIT_HEX_LEN);
        prev[FERRY_AUDIT_HEX_LEN] = '\0';
        CU_ASSERT_EQUAL(ferry_audit_verify_from(old, prev, &n, &err), FERRY_OK);
        CU_ASSERT_EQUAL(ferry_audit_verify_from(cur, prev, &n, &err), FERRY_OK);
    }
}

static void
test_verify_reasons(void)
{
    static const char *const cases[][2] = {
        { "{\"time\":\"x\"}\n", "line 1: no prev field" },
        { "{\"prev\":\"00\"}\n", "line 1: prev is not 64 hex digits" },
        { "{\"prev\":1}\n", "line 1: not JSON" },
        { "[1,2]\n", "line 1: not JSON" },
        { "{\"a\":1} x\n", "line 1: not JSON (text after the object)" },
        { "{\"a\":\"\\q\"}\n", "line 1: not JSON" },
        { "{\"prev\":\"000000000000000000000000000000000000000000000000000000000000000A\"}\n",
          "line 1: prev is not 64 lowercase hex digits" },
        { "{\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
          "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n",
          "line 1: more than one prev field" },
    };
    uint64_t         n = 7;
    struct ferry_err err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_FATAL(spit(new_path(), cases[i][0], strlen(cases[i][0])));
        CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_EINVAL);
        CU_ASSERT_STRING_EQUAL(err.msg, cases[i][1]);
    }
    /* nested values are JSON too; a prev inside them is not the record's prev */
    static const char nested[] = "{\"x\":{\"prev\":\"1\",\"y\":[true,false,null,-1.5e3]},"
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}\n";

    CU_ASSERT_FATAL(spit(new_path(), nested, sizeof(nested) - 1));
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_OK);
    CU_ASSERT_EQUAL(n, 1);
    /* an empty file is a valid, empty chain; a missing one is an I/O error */
    CU_ASSERT_FATAL(spit(new_path(), "", 0));
    CU_ASSERT_EQUAL(verify(path, &n, &err), FERRY_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(verify(new_path(), &n, &err), FERRY_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot open"));
}

static void
test_open_errors(void)
{
    struct ferry_audit *a = NULL;
    struct ferry_err    err = {0};
    char                p[160];

    CU_ASSERT_EQUAL(ferry_audit_open(dir, &a, &err), FERRY_EIO);
    CU_ASSERT_PTR_NULL(a);
    snprintf(p, sizeof(p), "%s/no/such/dir/audit.jsonl", dir);
    CU_ASSERT_EQUAL(ferry_audit_open(p, &a, &err), FERRY_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot open"));
    CU_ASSERT_PTR_NULL(a);
    ferry_audit_write(NULL, &rec_ok);               /* no log: nothing happens */
    ferry_audit_close(NULL);
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "two threads keep one chain", test_two_threads_keep_one_chain },
        { "line format", test_line_format },
        { "special characters are escaped on one line",
          test_special_characters_are_escaped_on_one_line },
        { "reopen continues the chain", test_reopen_continues_the_chain },
        { "edited byte is caught", test_edited_byte_is_caught },
        { "removed or reordered lines are caught", test_removed_or_reordered_lines_are_caught },
        { "cut or malformed last line still opens", test_cut_or_malformed_last_line_still_opens },
        { "short write is removed and retried", test_short_write_is_removed_and_retried },
        { "rotation continues the chain across files",
          test_rotation_continues_the_chain_across_files },
        { "failed reopen waits and recovers", test_failed_reopen_waits_and_recovers },
        { "verify reasons", test_verify_reasons },
        { "open errors", test_open_errors },
        { NULL, NULL }
    };
    int rc;

    snprintf(dir, sizeof(dir), "/tmp/ferry-audit-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 2;
    rc = cu_run("audit", tests);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
