/*
 * response_test.c: response heads (core/http/parse.c): the status line, and the body
 * framing table of RFC 9112 section 6.3 given the request method; errors answer 502.
 * Every response is also parsed one byte at a time and must agree with the whole parse.
 */
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>
#include <ferry/http.h>

#include "http/parse.h"

#include "core/http/http-test.h"
#include "cu.h"

static struct ferry_http_header hdrs[TEST_MAX_HEADERS], hdrs2[TEST_MAX_HEADERS];
static struct ferry_http_resp   r, r2;

static int
resp(enum ferry_http_method m, const char *text)
{
    size_t len = strlen(text);
    char  *copy;
    int    rc, rc2;

    ferry_http_resp_init(&r, hdrs, TEST_MAX_HEADERS);
    rc = ferry_http_parse_response(text, len, m, NULL, &r);
    ferry_http_resp_init(&r2, hdrs2, TEST_MAX_HEADERS);
    rc2 = resp_bytewise(text, len, m, NULL, &r2, &copy);
    CU_ASSERT_EQUAL(rc, rc2);
    CU_ASSERT(resp_same(&r, text, &r2, copy));
    free(copy);
    return rc;
}

#define REFUSED(m, text, why)                                                    \
    do {                                                                         \
        CU_ASSERT(resp((m), (text)) < 0);                                        \
        CU_ASSERT_EQUAL(r.status, 502);                                          \
        CU_ASSERT_STRING_EQUAL(r.reason != NULL ? r.reason : "(none)", (why));   \
    } while (0)

static void
test_status_line_parts(void)
{
    const char *t = "HTTP/1.1 404 Not \tFound\xff\r\nContent-Length: 0\r\n\r\n";

    CU_ASSERT_EQUAL(resp(FERRY_HTTP_GET, t), (int)strlen(t));
    CU_ASSERT_EQUAL(r.code, 404);
    CU_ASSERT_EQUAL(r.version_minor, 1);
    CU_ASSERT(str_is(r.phrase, "Not \tFound\xff"));
    CU_ASSERT_EQUAL(r.header_count, 1);
    CU_ASSERT(str_is(hdrs[0].name, "Content-Length"));
    CU_ASSERT_EQUAL(resp(FERRY_HTTP_GET, "HTTP/1.0 200 \r\n\r\n"), 17);
    CU_ASSERT(str_is(r.phrase, ""));
    /* The one leniency: no SP before an empty reason phrase. */
    CU_ASSERT_EQUAL(resp(FERRY_HTTP_GET, "HTTP/1.1 200\r\n\r\n"), 16);
    CU_ASSERT_EQUAL(r.code, 200);
}

static void
test_bad_status_lines_give_502(void)
{
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 099 x\r\n\r\n", "bad-status");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 600 x\r\n\r\n", "bad-status");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 20x x\r\n\r\n", "bad-status");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 2000 x\r\n\r\n", "bad-status");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 200 a\x01\r\n\r\n", "bad-status");
    REFUSED(FERRY_HTTP_GET, "HTTP/2.0 200 OK\r\n\r\n", "bad-version");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1  200 OK\r\n\r\n", "bad-status");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1\r\n\r\n", "bad-version");
    REFUSED(FERRY_HTTP_GET, "\r\nHTTP/1.1 200 OK\r\n\r\n", "bad-version");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 200 OK\n\r\n", "bare-lf");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", "bare-cr");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "obs-fold");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nA : b\r\n\r\n", "bad-header-name");
}

static void
test_smuggling_shapes_give_502(void)
{
    REFUSED(FERRY_HTTP_GET,
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "smuggling-cl-te");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            "duplicate-content-length");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
            "bad-content-length");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "bad-transfer-encoding");
    REFUSED(FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "bad-transfer-encoding");
}

static void
test_framing_table(void)
{
    static const struct {
        enum ferry_http_method m;
        const char            *head;
        enum ferry_http_body   body;
        uint64_t               length;
        bool                   keep_alive;
    } rows[] = {
        { FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
          FERRY_HTTP_BODY_LENGTH, 5, true },
        { FERRY_HTTP_HEAD, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
          FERRY_HTTP_BODY_NONE, 5, true },
        { FERRY_HTTP_HEAD, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
          FERRY_HTTP_BODY_NONE, 0, true },
        { FERRY_HTTP_GET, "HTTP/1.1 204 No Content\r\n\r\n", FERRY_HTTP_BODY_NONE, 0, true },
        { FERRY_HTTP_GET, "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
          FERRY_HTTP_BODY_NONE, 9, true },
        { FERRY_HTTP_PUT, "HTTP/1.1 100 Continue\r\n\r\n", FERRY_HTTP_BODY_NONE, 0, true },
        { FERRY_HTTP_GET, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
          FERRY_HTTP_BODY_NONE, 0, true },
        { FERRY_HTTP_GET, "HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\n"
                          "Connection: upgrade\r\n\r\n", FERRY_HTTP_BODY_TUNNEL, 0, false },
        { FERRY_HTTP_CONNECT, "HTTP/1.1 200 Connection established\r\n\r\n",
          FERRY_HTTP_BODY_TUNNEL, 0, false },
        { FERRY_HTTP_CONNECT, "HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n",
          FERRY_HTTP_BODY_LENGTH, 2, true },
        { FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
          FERRY_HTTP_BODY_CHUNKED, 0, true },
        { FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
          FERRY_HTTP_BODY_CHUNKED, 0, true },
        { FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
          FERRY_HTTP_BODY_EOF, 0, false },
        { FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\n\r\n", FERRY_HTTP_BODY_EOF, 0, false },
        { FERRY_HTTP_GET, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n",
          FERRY_HTTP_BODY_LENGTH, 1, false },
        { FERRY_HTTP_GET, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
          FERRY_HTTP_BODY_LENGTH, 1, false },
        { FERRY_HTTP_GET, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n",
          FERRY_HTTP_BODY_LENGTH, 1, true },
        { FERRY_HTTP_POST, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
          FERRY_HTTP_BODY_LENGTH, 0, true },
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        CU_ASSERT_EQUAL(resp(rows[i].m, rows[i].head), (int)strlen(rows[i].head));
        CU_ASSERT_EQUAL(r.body, rows[i].body);
        CU_ASSERT_EQUAL(r.content_length, rows[i].length);
        CU_ASSERT_EQUAL(r.keep_alive, rows[i].keep_alive);
    }
}

static void
test_response_limits(void)
{
    struct ferry_http_limits lim = { .max_head_bytes = 64, .max_headers = 2 };
    const char *big = "HTTP/1.1 200 OK\r\n"
                      "X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    const char *many = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";

    ferry_http_resp_init(&r, hdrs, TEST_MAX_HEADERS);
    CU_ASSERT_EQUAL(ferry_http_parse_response(big, strlen(big), FERRY_HTTP_GET, &lim, &r),
                    FERRY_ELIMIT);
    CU_ASSERT_EQUAL(r.status, 502);
    CU_ASSERT_STRING_EQUAL(r.reason, "headers-too-large");
    ferry_http_resp_init(&r, hdrs, TEST_MAX_HEADERS);
    CU_ASSERT_EQUAL(ferry_http_parse_response(many, strlen(many), FERRY_HTTP_GET, &lim, &r),
                    FERRY_ELIMIT);
    CU_ASSERT_STRING_EQUAL(r.reason, "too-many-headers");
}

static void
test_100_continue_then_final_response(void)
{
    const char *t = "HTTP/1.1 100 Continue\r\n\r\n"
                    "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    int         rc;

    ferry_http_resp_init(&r, hdrs, TEST_MAX_HEADERS);
    rc = ferry_http_parse_response(t, strlen(t), FERRY_HTTP_PUT, NULL, &r);
    CU_ASSERT_EQUAL(rc, 25);
    CU_ASSERT_EQUAL(r.code, 100);
    CU_ASSERT_EQUAL(ferry_http_parse_response(t + rc, strlen(t) - (size_t)rc, FERRY_HTTP_PUT,
                                              NULL, &r), (int)strlen(t) - rc);
    CU_ASSERT_EQUAL(r.code, 201);
    CU_ASSERT_EQUAL(r.body, FERRY_HTTP_BODY_LENGTH);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "status line parts", test_status_line_parts },
        { "bad status lines give 502", test_bad_status_lines_give_502 },
        { "smuggling shapes give 502", test_smuggling_shapes_give_502 },
        { "framing table (RFC 9112 6.3)", test_framing_table },
        { "response limits", test_response_limits },
        { "100 Continue, then the final response", test_100_continue_then_final_response },
        { NULL, NULL },
    };

    return cu_run("http-response", tests);
}
