/*
 * http_parse_fuzz.c: libFuzzer target for core/http: the input is parsed as a request
 * head (and the pipelined heads after it), as a response head and as a chunked body.
 *
 * Besides "no crash, no sanitizer report" it checks what the parsers promise: every
 * slice lies inside the bytes consumed, and feeding the input in pieces from a moving
 * buffer gives the same verdict, the same slices and the same payload as all at once.
 *
 * Byte 0 of the input picks the options: bits 0-1 the piece size (1, 3, 16, 61 bytes),
 * bits 2-5 the request method a response answers, bit 6 small limits (so 414/431 are
 * reachable with short inputs). The rest is the message.
 *
 * Built with -DFERRY_FUZZ_STANDALONE it is a plain program that runs the same checks
 * over the files named on its command line (no libFuzzer needed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>
#include <ferry/http.h>

#include "http/parse.h"

#include "core/http/http-test.h"

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                              \
        }                                                                         \
    } while (0)

#define MAX_PIPELINED 8

static int
inside(struct ferry_http_str s, const char *buf, size_t len)
{
    return s.ptr == NULL || (s.ptr >= buf && s.len <= len && (size_t)(s.ptr - buf) <= len - s.len);
}

static void
check_req_slices(const struct ferry_http_req *r, const char *buf, size_t len)
{
    CHECK(inside(r->method_name, buf, len) && inside(r->target, buf, len));
    CHECK(inside(r->scheme, buf, len) && inside(r->host, buf, len));
    CHECK(inside(r->port, buf, len) && inside(r->path, buf, len));
    CHECK(inside(r->query, buf, len));
    for (size_t i = 0; i < r->header_count; i++)
        CHECK(inside(r->headers[i].name, buf, len) && inside(r->headers[i].value, buf, len));
}

/* Feed buf[0..len) growing by `piece` bytes per call, each from a fresh copy. */
static int
req_pieces(const char *buf, size_t len, size_t piece, const struct ferry_http_limits *lim,
           struct ferry_http_req *r, char **copy)
{
    int rc = 0;

    *copy = NULL;
    for (size_t k = piece < len ? piece : len; k > 0; k = k + piece < len ? k + piece : len) {
        char *c = malloc(k);

        CHECK(c != NULL);
        memcpy(c, buf, k);
        rc = ferry_http_parse_request(c, k, lim, r);
        free(*copy);
        *copy = c;
        if (rc != 0 || k == len)
            break;
    }
    return rc;
}

static int
resp_pieces(const char *buf, size_t len, size_t piece, enum ferry_http_method m,
            const struct ferry_http_limits *lim, struct ferry_http_resp *r, char **copy)
{
    int rc = 0;

    *copy = NULL;
    for (size_t k = piece < len ? piece : len; k > 0; k = k + piece < len ? k + piece : len) {
        char *c = malloc(k);

        CHECK(c != NULL);
        memcpy(c, buf, k);
        rc = ferry_http_parse_response(c, k, m, lim, r);
        free(*copy);
        *copy = c;
        if (rc != 0 || k == len)
            break;
    }
    return rc;
}

static void
fuzz_requests(const char *buf, size_t len, size_t piece, const struct ferry_http_limits *lim)
{
    static struct ferry_http_header h1[TEST_MAX_HEADERS], h2[TEST_MAX_HEADERS];
    struct ferry_http_req           r1, r2;
    size_t                          off = 0;

    for (int i = 0; i < MAX_PIPELINED && off < len; i++) {
        char *copy;
        int   rc1, rc2;

        ferry_http_req_init(&r1, h1, TEST_MAX_HEADERS);
        ferry_http_req_init(&r2, h2, TEST_MAX_HEADERS);
        rc1 = ferry_http_parse_request(buf + off, len - off, lim, &r1);
        rc2 = req_pieces(buf + off, len - off, piece, lim, &r2, &copy);
        CHECK(rc1 == rc2);
        if (rc1 != 0)
            CHECK(req_same(&r1, buf + off, &r2, copy));
        free(copy);
        if (rc1 <= 0) {
            CHECK(rc1 == 0 || (r1.status >= 400 && r1.reason != NULL));
            return;
        }
        CHECK((size_t)rc1 <= len - off);
        check_req_slices(&r1, buf + off, (size_t)rc1);
        off += (size_t)rc1;
        if (r1.body == FERRY_HTTP_BODY_LENGTH)
            off += r1.content_length < len - off ? (size_t)r1.content_length : len - off;
    }
}

static void
fuzz_response(const char *buf, size_t len, size_t piece, enum ferry_http_method m,
              const struct ferry_http_limits *lim)
{
    static struct ferry_http_header h1[TEST_MAX_HEADERS], h2[TEST_MAX_HEADERS];
    struct ferry_http_resp          r1, r2;
    char                           *copy;
    int                             rc1, rc2;

    ferry_http_resp_init(&r1, h1, TEST_MAX_HEADERS);
    ferry_http_resp_init(&r2, h2, TEST_MAX_HEADERS);
    rc1 = ferry_http_parse_response(buf, len, m, lim, &r1);
    rc2 = resp_pieces(buf, len, piece, m, lim, &r2, &copy);
    CHECK(rc1 == rc2);
    if (rc1 != 0)
        CHECK(resp_same(&r1, buf, &r2, copy));
    free(copy);
    if (rc1 > 0) {
        CHECK((size_t)rc1 <= len && r1.code >= 100 && r1.code <= 599);
        CHECK(inside(r1.phrase, buf, (size_t)rc1));
        for (size_t i = 0; i < r1.header_count; i++)
            CHECK(inside(h1[i].name, buf, (size_t)rc1) && inside(h1[i].value, buf, (size_t)rc1));
    } else if (rc1 < 0) {
        CHECK(r1.status == 502 && r1.reason != NULL);
    }
}

struct chunked_run {
    int      rc;
    size_t   consumed;
    size_t   payload;
    uint64_t sum;        /* a position-weighted checksum of the payload */
};

static void
chunked_pieces(const char *buf, size_t len, size_t piece, struct chunked_run *out)
{
    struct ferry_http_chunked st;
    size_t                    pos = 0;

    memset(out, 0, sizeof(*out));
    ferry_http_chunked_init(&st);
    while (pos < len) {
        size_t stop = pos + piece < len ? pos + piece : len;

        while (pos < stop) {
            const char *d;
            size_t      n, used;
            int         rc = ferry_http_chunked_feed(&st, buf + pos, stop - pos, &used, &d, &n);

            CHECK(used <= stop - pos);
            out->rc = rc;
            if (rc == FERRY_HTTP_CHUNK_DATA) {
                CHECK(n > 0 && d == buf + pos + used - n);
                for (size_t i = 0; i < n; i++)
                    out->sum += (uint64_t)(unsigned char)d[i] * (out->payload + i + 1);
                out->payload += n;
            }
            pos += used;
            out->consumed = pos;
            if (rc != FERRY_HTTP_CHUNK_DATA && rc != FERRY_HTTP_CHUNK_MORE) {
                CHECK(rc == FERRY_HTTP_CHUNK_END || st.reason != NULL);
                return;
            }
        }
    }
}

static void
fuzz_chunked(const char *buf, size_t len, size_t piece)
{
    struct chunked_run whole, cut;

    chunked_pieces(buf, len, len > 0 ? len : 1, &whole);
    chunked_pieces(buf, len, piece, &cut);
    CHECK(whole.rc == cut.rc && whole.consumed == cut.consumed);
    CHECK(whole.payload == cut.payload && whole.sum == cut.sum);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t      pieces[] = { 1, 3, 16, 61 };
    struct ferry_http_limits small = { 256, 8, 64 };
    const char              *buf = (const char *)data + 1;
    size_t                   len, piece;
    unsigned                 opt;

    if (size == 0)
        return 0;
    opt = data[0];
    len = size - 1;
    piece = pieces[opt & 3];
    /* One byte at a time costs len^2 copies: keep it for short inputs. */
    if (piece == 1 && len > 1024)
        piece = 16;
    fuzz_requests(buf, len, piece, (opt & 0x40) ? &small : NULL);
    fuzz_response(buf, len, piece, (enum ferry_http_method)((opt >> 2) % 10),
                  (opt & 0x40) ? &small : NULL);
    fuzz_chunked(buf, len, piece);
    return 0;
}

#ifdef FERRY_FUZZ_STANDALONE
int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE   *fp = fopen(argv[i], "rb");
        uint8_t buf[65536];
        size_t  n;

        if (fp == NULL) {
            perror(argv[i]);
            return 1;
        }
        n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        LLVMFuzzerTestOneInput(buf, n);
        printf("ok %s (%zu bytes)\n", argv[i], n);
    }
    return 0;
}
#endif
