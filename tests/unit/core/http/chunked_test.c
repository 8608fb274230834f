/*
 * chunked_test.c: the chunked decoder and encoder (core/http/chunked.c): payload comes
 * back in place whatever the split of the input (every split point, and one byte at a
 * time), extensions, trailers and their bounds, and every refusal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>
#include <ferry/http.h>

#include "http/parse.h"

#include "cu.h"

struct decoded {
    int    rc;           /* last return: END or an error */
    char   data[4096];   /* payload, concatenated */
    size_t data_len;
    size_t consumed;     /* bytes used in total */
    const char *detail;
};

/* Feed in[0..len) cut at the given points (sorted, < len; NULL: none), then report. */
static void
decode(struct ferry_http_chunked *st, const char *in, size_t len, const size_t *cuts,
       size_t ncuts, struct decoded *out)
{
    size_t start = 0;

    memset(out, 0, sizeof(*out));
    for (size_t c = 0; c <= ncuts; c++) {
        size_t stop = c < ncuts ? cuts[c] : len, pos = start;

        while (pos < stop) {
            const char *d;
            size_t      n, used;
            int         rc = ferry_http_chunked_feed(st, in + pos, stop - pos, &used, &d, &n);

            out->rc = rc;
            pos += used;
            out->consumed += used;
            if (rc == FERRY_HTTP_CHUNK_DATA) {
                CU_ASSERT(d >= in && d + n <= in + len);    /* in place, never copied */
                if (out->data_len + n <= sizeof(out->data)) {
                    memcpy(out->data + out->data_len, d, n);
                    out->data_len += n;
                }
            } else if (rc != FERRY_HTTP_CHUNK_MORE) {
                out->detail = st->detail;
                return;
            }
        }
        start = stop;
    }
}

static void
decode_whole(const char *in, size_t len, struct decoded *out)
{
    struct ferry_http_chunked st;

    ferry_http_chunked_init(&st);
    decode(&st, in, len, NULL, 0, out);
}

static const char body[] = "5\r\nhello\r\n1A;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                           "0\r\nX-Sum: 42\r\n\r\n";

static void
test_decodes_chunks_and_reports_end(void)
{
    struct decoded d;

    decode_whole(body, sizeof(body) - 1, &d);
    CU_ASSERT_EQUAL(d.rc, FERRY_HTTP_CHUNK_END);
    CU_ASSERT_EQUAL(d.consumed, sizeof(body) - 1);
    CU_ASSERT_EQUAL(d.data_len, 31);
    CU_ASSERT_NSTRING_EQUAL(d.data, "helloabcdefghijklmnopqrstuvwxyz", 31);
}

static void
test_split_at_every_byte_position_gives_the_same_payload(void)
{
    size_t len = sizeof(body) - 1;

    for (size_t cut = 1; cut < len; cut++) {
        struct ferry_http_chunked st;
        struct decoded            d;

        ferry_http_chunked_init(&st);
        decode(&st, body, len, &cut, 1, &d);
        CU_ASSERT_EQUAL(d.rc, FERRY_HTTP_CHUNK_END);
        CU_ASSERT_EQUAL(d.consumed, len);
        CU_ASSERT_EQUAL(d.data_len, 31);
        CU_ASSERT_NSTRING_EQUAL(d.data, "helloabcdefghijklmnopqrstuvwxyz", 31);
    }
}

static void
test_one_byte_at_a_time(void)
{
    size_t                    len = sizeof(body) - 1, cuts[sizeof(body)];
    struct ferry_http_chunked st;
    struct decoded            d;

    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    ferry_http_chunked_init(&st);
    decode(&st, body, len, cuts, len - 1, &d);
    CU_ASSERT_EQUAL(d.rc, FERRY_HTTP_CHUNK_END);
    CU_ASSERT_EQUAL(d.consumed, len);
    CU_ASSERT_NSTRING_EQUAL(d.data, "helloabcdefghijklmnopqrstuvwxyz", 31);
}

static void
test_bytes_after_the_end_are_left_alone(void)
{
    const char    *t = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    struct decoded d;

    decode_whole(t, strlen(t), &d);
    CU_ASSERT_EQUAL(d.rc, FERRY_HTTP_CHUNK_END);
    CU_ASSERT_EQUAL(d.consumed, 13);
}

static void
test_extensions(void)
{
    static const char *const good[] = {
        "1;a\r\nx\r\n0\r\n\r\n",
        "1;a=b\r\nx\r\n0\r\n\r\n",
        "1 ; a = b ; c\r\nx\r\n0\r\n\r\n",
        "1;a=\"q \\\" ;x\"\r\nx\r\n0;last\r\n\r\n",
        "000001;a=b;c=d\r\nx\r\n0\r\n\r\n",
        "A\r\n0123456789\r\n0\r\n\r\n",
    };
    static const char *const bad[] = {
        "1;\r\nx\r\n0\r\n\r\n",          "1 \r\nx\r\n0\r\n\r\n",
        "1;a=\r\nx\r\n0\r\n\r\n",        "1;a=\"x\r\nx\r\n0\r\n\r\n",
        "1;a b\r\nx\r\n0\r\n\r\n",       "1;=b\r\nx\r\n0\r\n\r\n",
        "1;a=b \r\nx\r\n0\r\n\r\n",      "1;a=\"x\"y\r\nx\r\n0\r\n\r\n",
        "1;a=\x01\r\nx\r\n0\r\n\r\n",
    };
    struct decoded d;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        decode_whole(good[i], strlen(good[i]), &d);
        CU_ASSERT_EQUAL(d.rc, FERRY_HTTP_CHUNK_END);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        decode_whole(bad[i], strlen(bad[i]), &d);
        CU_ASSERT_EQUAL(d.rc, FERRY_EPROTO);
        CU_ASSERT_STRING_EQUAL(d.detail != NULL ? d.detail : "(none)", "bad-chunk-ext");
    }
}

static void
test_refusals(void)
{
    static const struct {
        const char *in;
        int         rc;
        const char *detail;
    } rows[] = {
        { "\r\n", FERRY_EPROTO, "bad-chunk-size" },
        { "x\r\n", FERRY_EPROTO, "bad-chunk-size" },
        { "-1\r\n", FERRY_EPROTO, "bad-chunk-size" },
        { "+1\r\n", FERRY_EPROTO, "bad-chunk-size" },
        { " 1\r\n", FERRY_EPROTO, "bad-chunk-size" },
        { "0x1\r\n", FERRY_EPROTO, "bad-chunk-ext" },
        { "1\nx\r\n", FERRY_EPROTO, "bare-lf" },
        { "1\rx", FERRY_EPROTO, "bare-cr" },
        { "1\r\nxy\r\n", FERRY_EPROTO, "no-crlf-after-data" },
        { "1\r\nx\n", FERRY_EPROTO, "no-crlf-after-data" },
        { "1\r\nx\rz", FERRY_EPROTO, "bare-cr" },
        { "0\r\n\n", FERRY_EPROTO, "bad-trailer-name" },
        { "0\r\n\rx", FERRY_EPROTO, "bare-cr" },
        { "0\r\n a: b\r\n\r\n", FERRY_EPROTO, "obs-fold" },
        { "0\r\na : b\r\n\r\n", FERRY_EPROTO, "bad-trailer-name" },
        { "0\r\na: b\nc: d\r\n\r\n", FERRY_EPROTO, "bare-lf" },
        { "0\r\na: b\x7f\r\n\r\n", FERRY_EPROTO, "bad-trailer-value" },
        { "0\r\na: b\rc\r\n\r\n", FERRY_EPROTO, "bare-cr" },
        { "00000000000000001\r\n", FERRY_ELIMIT, "chunk-size-too-long" },
        { "10000000000000000\r\n", FERRY_ELIMIT, "chunk-size-too-long" },
    };
    struct decoded d;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct ferry_http_chunked st;
        const char               *dd;
        size_t                    n, used;

        ferry_http_chunked_init(&st);
        decode(&st, rows[i].in, strlen(rows[i].in), NULL, 0, &d);
        CU_ASSERT_EQUAL(d.rc, rows[i].rc);
        CU_ASSERT_STRING_EQUAL(d.detail != NULL ? d.detail : "(none)", rows[i].detail);
        CU_ASSERT_STRING_EQUAL(st.reason != NULL ? st.reason : "(none)", "bad-chunked");
        /* A failed decoder stays failed. */
        CU_ASSERT_EQUAL(ferry_http_chunked_feed(&st, "0\r\n\r\n", 5, &used, &dd, &n), rows[i].rc);
        CU_ASSERT_EQUAL(used, 0);
    }
}

static void
test_sixteen_hex_digits_are_fine(void)
{
    struct ferry_http_chunked st;
    const char               *d;
    size_t                    n, used;

    ferry_http_chunked_init(&st);
    CU_ASSERT_EQUAL(ferry_http_chunked_feed(&st, "FFFFFFFFFFFFFFFF\r\nab", 20, &used, &d, &n),
                    FERRY_HTTP_CHUNK_DATA);
    CU_ASSERT_EQUAL(used, 20);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(st.remaining, UINT64_MAX - 2);
}

static void
test_extension_bound(void)
{
    char           t[2048];
    struct decoded d;
    size_t         n;

    /* 1 KiB of extension is fine, one byte more is not. */
    n = (size_t)sprintf(t, "1;a=");         /* the extension starts at ';' */
    memset(t + n, 'v', 1024 - 3);
    n = 1 + 1024;
    memcpy(t + n, "\r\nx\r\n0\r\n\r\n", 11);
    decode_whole(t, strlen(t), &d);
    CU_ASSERT_EQUAL(d.rc, FERRY_HTTP_CHUNK_END);
    memmove(t + n + 1, t + n, 11);
    t[n] = 'v';
    decode_whole(t, strlen(t), &d);
    CU_ASSERT_EQUAL(d.rc, FERRY_ELIMIT);
    CU_ASSERT_STRING_EQUAL(d.detail, "chunk-ext-too-long");
}

static void
test_trailers_are_copied_and_bounded(void)
{
    const char               *t = "0\r\nX-A: 1\r\nX-B:2\r\n\r\n";
    char                      keep[64], big[FERRY_HTTP_MAX_TRAILER_BYTES + 64];
    struct ferry_http_chunked st;
    struct decoded            d;
    size_t                    n;

    ferry_http_chunked_init(&st);
    st.trailers = keep;
    st.trailers_cap = sizeof(keep);
    decode(&st, t, strlen(t), NULL, 0, &d);
    CU_ASSERT_EQUAL(d.rc, FERRY_HTTP_CHUNK_END);
    CU_ASSERT_EQUAL(st.trailer_count, 2);
    CU_ASSERT_EQUAL(st.trailers_len, 15);
    CU_ASSERT_NSTRING_EQUAL(keep, "X-A: 1\r\nX-B:2\r\n", 15);
    /* A caller buffer too small for them. */
    ferry_http_chunked_init(&st);
    st.trailers = keep;
    st.trailers_cap = 10;
    decode(&st, t, strlen(t), NULL, 0, &d);
    CU_ASSERT_EQUAL(d.rc, FERRY_ELIMIT);
    CU_ASSERT_STRING_EQUAL(d.detail, "trailers-too-large");
    /* 8 KiB in all (the final CRLF included) is the bound. */
    n = (size_t)sprintf(big, "0\r\nX: ");
    memset(big + n, 'a', FERRY_HTTP_MAX_TRAILER_BYTES + 3 - n - 4);
    n = FERRY_HTTP_MAX_TRAILER_BYTES + 3 - 4;
    memcpy(big + n, "\r\n\r\n", 5);
    decode_whole(big, strlen(big), &d);
    CU_ASSERT_EQUAL(d.rc, FERRY_HTTP_CHUNK_END);
    memmove(big + n + 1, big + n, 5);
    big[n] = 'a';
    decode_whole(big, strlen(big), &d);
    CU_ASSERT_EQUAL(d.rc, FERRY_ELIMIT);
    CU_ASSERT_STRING_EQUAL(d.detail, "trailers-too-large");
}

static void
test_encoder(void)
{
    char                      buf[FERRY_HTTP_CHUNK_HEADER_MAX];
    struct ferry_http_chunked st;
    const char               *d;
    size_t                    n, used;

    CU_ASSERT_EQUAL(ferry_http_chunk_header(0, buf, sizeof(buf)), 3);
    CU_ASSERT_STRING_EQUAL(buf, "0\r\n");
    CU_ASSERT_EQUAL(ferry_http_chunk_header(0xabc, buf, sizeof(buf)), 5);
    CU_ASSERT_STRING_EQUAL(buf, "abc\r\n");
    CU_ASSERT_EQUAL(ferry_http_chunk_header(UINT64_MAX, buf, sizeof(buf)), 18);
    CU_ASSERT_STRING_EQUAL(buf, "ffffffffffffffff\r\n");
    CU_ASSERT_EQUAL(ferry_http_chunk_header(UINT64_MAX, buf, 18), FERRY_ELIMIT);
    CU_ASSERT_EQUAL(ferry_http_chunk_header(1, buf, 4), 3);
    /* What the encoder writes, the decoder reads. */
    ferry_http_chunk_header(4096, buf, sizeof(buf));
    ferry_http_chunked_init(&st);
    CU_ASSERT_EQUAL(ferry_http_chunked_feed(&st, buf, strlen(buf), &used, &d, &n),
                    FERRY_HTTP_CHUNK_MORE);
    CU_ASSERT_EQUAL(st.remaining, 4096);
    ferry_http_chunked_init(&st);
    CU_ASSERT_EQUAL(ferry_http_chunked_feed(&st, FERRY_HTTP_LAST_CHUNK, 5, &used, &d, &n),
                    FERRY_HTTP_CHUNK_END);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "decodes chunks and reports the end", test_decodes_chunks_and_reports_end },
        { "split at every byte position",
          test_split_at_every_byte_position_gives_the_same_payload },
        { "one byte at a time", test_one_byte_at_a_time },
        { "bytes after the end are left alone", test_bytes_after_the_end_are_left_alone },
        { "chunk extensions", test_extensions },
        { "refusals", test_refusals },
        { "16 hex digits are fine", test_sixteen_hex_digits_are_fine },
        { "chunk extension bound", test_extension_bound },
        { "trailers are copied and bounded", test_trailers_are_copied_and_bounded },
        { "encoder", test_encoder },
        { NULL, NULL },
    };

    return cu_run("http-chunked", tests);
}
