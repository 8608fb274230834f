/*
 * corpus_test.c: the fuzz seeds (tests/fuzz/corpus/) in every build, without libFuzzer.
 * Each seed is parsed as the fuzz target reads it (byte 0: options; bits 2-5 the request
 * method, bit 6 small limits), whole and one byte at a time, and the seeds meant to show
 * one verdict must show it, so a parser change that makes a seed pointless is noticed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>
#include <ferry/http.h>

#include "http/parse.h"

#include "core/http/http-test.h"
#include "cu.h"

#define CORPUS_DIR "../fuzz/corpus"      /* ctest runs unit tests in tests/unit */

struct expect {
    const char *seed;
    int         what;        /* 'q' request, 'r' response, 'c' chunked */
    int         ok;          /* 1: accepted (head complete / END or DATA), 0: refused */
    const char *reason;      /* when refused: the reason or the chunked detail */
    int         body;        /* when a head is accepted: ferry_http_body, or -1 */
};

static const struct expect expects[] = {
    { "req-get", 'q', 1, NULL, FERRY_HTTP_BODY_NONE },
    { "req-post-length", 'q', 1, NULL, FERRY_HTTP_BODY_LENGTH },
    { "req-post-chunked", 'q', 1, NULL, FERRY_HTTP_BODY_CHUNKED },
    { "req-connect", 'q', 1, NULL, FERRY_HTTP_BODY_NONE },
    { "req-absolute", 'q', 1, NULL, FERRY_HTTP_BODY_NONE },
    { "req-options", 'q', 1, NULL, FERRY_HTTP_BODY_NONE },
    { "req-http10", 'q', 1, NULL, FERRY_HTTP_BODY_NONE },
    { "req-cl-te", 'q', 0, "smuggling-cl-te", -1 },
    { "req-obs-fold", 'q', 0, "obs-fold", -1 },
    { "req-bare-lf", 'q', 0, "bare-lf", -1 },
    { "req-long-uri", 'q', 0, "uri-too-long", -1 },
    { "req-many-headers", 'q', 0, "too-many-headers", -1 },
    { "resp-chunked", 'r', 1, NULL, FERRY_HTTP_BODY_CHUNKED },
    { "resp-head", 'r', 1, NULL, FERRY_HTTP_BODY_NONE },
    { "resp-connect", 'r', 1, NULL, FERRY_HTTP_BODY_TUNNEL },
    { "resp-100", 'r', 1, NULL, FERRY_HTTP_BODY_NONE },
    { "resp-eof", 'r', 1, NULL, FERRY_HTTP_BODY_EOF },
    { "chunked-body", 'c', 1, NULL, -1 },
    { "chunked-big", 'c', 1, NULL, -1 },
    { "chunked-bad", 'c', 0, "bad-chunk-ext", -1 },
};

static struct ferry_http_header h1[TEST_MAX_HEADERS], h2[TEST_MAX_HEADERS];

static const struct expect *
expect_of(const char *name)
{
    for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++)
        if (strcmp(expects[i].seed, name) == 0)
            return &expects[i];
    return NULL;
}

static void
run_request(const char *buf, size_t len, const struct ferry_http_limits *lim,
            const struct expect *e)
{
    struct ferry_http_req r1, r2;
    char                 *copy;
    int                   rc1, rc2;

    ferry_http_req_init(&r1, h1, TEST_MAX_HEADERS);
    ferry_http_req_init(&r2, h2, TEST_MAX_HEADERS);
    rc1 = ferry_http_parse_request(buf, len, lim, &r1);
    rc2 = req_bytewise(buf, len, lim, &r2, &copy);
    CU_ASSERT_EQUAL(rc1, rc2);
    CU_ASSERT(req_same(&r1, buf, &r2, copy));
    free(copy);
    if (e == NULL || e->what != 'q')
        return;
    CU_ASSERT_EQUAL(rc1 > 0, e->ok);
    if (e->ok) {
        CU_ASSERT_EQUAL((int)r1.body, e->body);
    } else {
        CU_ASSERT_STRING_EQUAL(r1.reason != NULL ? r1.reason : "(none)", e->reason);
    }
}

static void
run_response(const char *buf, size_t len, enum ferry_http_method m,
             const struct ferry_http_limits *lim, const struct expect *e)
{
    struct ferry_http_resp r1, r2;
    char                  *copy;
    int                    rc1, rc2;

    ferry_http_resp_init(&r1, h1, TEST_MAX_HEADERS);
    ferry_http_resp_init(&r2, h2, TEST_MAX_HEADERS);
    rc1 = ferry_http_parse_response(buf, len, m, lim, &r1);
    rc2 = resp_bytewise(buf, len, m, lim, &r2, &copy);
    CU_ASSERT_EQUAL(rc1, rc2);
    CU_ASSERT(resp_same(&r1, buf, &r2, copy));
    free(copy);
    if (e == NULL || e->what != 'r')
        return;
    CU_ASSERT_EQUAL(rc1 > 0, e->ok);
    if (e->ok) {
        CU_ASSERT_EQUAL((int)r1.body, e->body);
    }
}

/* Decode with one cut at `cut` (0: none); return the last result, payload length. */
static int
chunked_cut(const char *buf, size_t len, size_t cut, size_t *payload, const char **detail)
{
    struct ferry_http_chunked st;
    size_t                    pos = 0, stops[2] = { cut, len };
    int                       rc = FERRY_HTTP_CHUNK_MORE;

    ferry_http_chunked_init(&st);
    *payload = 0;
    for (int s = cut > 0 ? 0 : 1; s < 2; s++) {
        while (pos < stops[s]) {
            const char *d;
            size_t      n, used;

            rc = ferry_http_chunked_feed(&st, buf + pos, stops[s] - pos, &used, &d, &n);
            pos += used;
            *payload += n;
            if (rc != FERRY_HTTP_CHUNK_DATA && rc != FERRY_HTTP_CHUNK_MORE) {
                *detail = st.detail;
                return rc;
            }
        }
    }
    return rc;
}

static void
run_chunked(const char *buf, size_t len, const struct expect *e)
{
    const char *detail = NULL, *detail2 = NULL;
    size_t      payload, payload2;
    int         rc = chunked_cut(buf, len, 0, &payload, &detail);

    for (size_t cut = 1; cut < len; cut++) {
        int rc2 = chunked_cut(buf, len, cut, &payload2, &detail2);

        /* A cut may end the input inside a chunk: DATA then MORE are the same verdict. */
        CU_ASSERT(rc2 == rc || (rc2 >= 0 && rc >= 0 && rc != FERRY_HTTP_CHUNK_END &&
                                rc2 != FERRY_HTTP_CHUNK_END));
        CU_ASSERT_EQUAL(payload2, payload);
    }
    if (e == NULL || e->what != 'c')
        return;
    CU_ASSERT_EQUAL(rc >= 0, e->ok);
    if (!e->ok) {
        CU_ASSERT_STRING_EQUAL(detail != NULL ? detail : "(none)", e->reason);
    }
}

static void
test_every_seed_parses_the_same_whole_and_bytewise(void)
{
    struct ferry_http_limits small = { 256, 8, 64 };
    DIR                     *dir = opendir(CORPUS_DIR);
    struct dirent           *de;
    size_t                   seeds = 0, expected = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    while ((de = readdir(dir)) != NULL) {
        char                 path[512], buf[8192];
        FILE                *fp;
        size_t               n;
        const struct expect *e;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, de->d_name);
        if ((fp = fopen(path, "rb")) == NULL)
            continue;
        n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        if (n == 0)
            continue;
        seeds++;
        e = expect_of(de->d_name);
        expected += e != NULL;
        run_request(buf + 1, n - 1, (buf[0] & 0x40) ? &small : NULL, e);
        run_response(buf + 1, n - 1, (enum ferry_http_method)(((unsigned char)buf[0] >> 2) % 10),
                     (buf[0] & 0x40) ? &small : NULL, e);
        run_chunked(buf + 1, n - 1, e);
    }
    closedir(dir);
    CU_ASSERT(seeds >= sizeof(expects) / sizeof(expects[0]));
    CU_ASSERT_EQUAL(expected, sizeof(expects) / sizeof(expects[0]));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "every seed parses the same whole and bytewise",
          test_every_seed_parses_the_same_whole_and_bytewise },
        { NULL, NULL },
    };

    return cu_run("http-corpus", tests);
}
