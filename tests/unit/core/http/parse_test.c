/*
 * parse_test.c: request heads (core/http/parse.c): every target form, the smuggling
 * shapes refused with their exact status and reason, the limits (431, 414), pipelining,
 * and incremental parsing: every request here is also fed one byte at a time from a
 * moving buffer, and must give the same verdict and the same slices as all at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>
#include <ferry/http.h>

#include "http/parse.h"

#include "core/http/http-test.h"
#include "cu.h"

static struct ferry_http_header hdrs[TEST_MAX_HEADERS], hdrs2[TEST_MAX_HEADERS];
static struct ferry_http_req    r, r2;

/* Parse text[0..len) whole into r, and byte by byte into r2; assert they agree. */
static int
req_lim(const char *text, size_t len, const struct ferry_http_limits *lim)
{
    char *copy;
    int   rc, rc2;

    ferry_http_req_init(&r, hdrs, TEST_MAX_HEADERS);
    rc = ferry_http_parse_request(text, len, lim, &r);
    ferry_http_req_init(&r2, hdrs2, TEST_MAX_HEADERS);
    rc2 = req_bytewise(text, len, lim, &r2, &copy);
    CU_ASSERT_EQUAL(rc, rc2);
    CU_ASSERT(req_same(&r, text, &r2, copy));
    free(copy);
    return rc;
}

static int
req(const char *text)
{
    return req_lim(text, strlen(text), NULL);
}

#define REFUSED(text, st, why)                                                   \
    do {                                                                         \
        CU_ASSERT(req(text) < 0);                                                \
        CU_ASSERT_EQUAL(r.status, (st));                                         \
        CU_ASSERT_STRING_EQUAL(r.reason != NULL ? r.reason : "(none)", (why));   \
    } while (0)

#define ACCEPTED(text) CU_ASSERT_EQUAL(req(text), (int)strlen(text))

static void
test_origin_form_get_splits_path_query_and_host(void)
{
    const char *t = "GET /a/b%20c?x=1&y=/? HTTP/1.1\r\nHost: example.com:8080\r\n"
                    "User-Agent:  t/1  \r\nAccept: */*\r\n\r\n";

    CU_ASSERT_EQUAL(req(t), (int)strlen(t));
    CU_ASSERT_EQUAL(r.method, FERRY_HTTP_GET);
    CU_ASSERT(str_is(r.method_name, "GET"));
    CU_ASSERT_EQUAL(r.version_minor, 1);
    CU_ASSERT_EQUAL(r.form, FERRY_HTTP_FORM_ORIGIN);
    CU_ASSERT(str_is(r.target, "/a/b%20c?x=1&y=/?"));
    CU_ASSERT(str_is(r.path, "/a/b%20c"));
    CU_ASSERT(str_is(r.query, "x=1&y=/?"));
    CU_ASSERT_PTR_NULL(r.scheme.ptr);
    CU_ASSERT(str_is(r.host, "example.com"));
    CU_ASSERT(str_is(r.port, "8080"));
    CU_ASSERT_EQUAL(r.port_num, 8080);
    CU_ASSERT_EQUAL(r.header_count, 3);
    CU_ASSERT(str_is(hdrs[1].name, "User-Agent"));
    CU_ASSERT(str_is(hdrs[1].value, "t/1"));
    CU_ASSERT_EQUAL(r.body, FERRY_HTTP_BODY_NONE);
    CU_ASSERT(r.keep_alive);
    CU_ASSERT(!r.expect_continue);
    CU_ASSERT(!r.upgrade);
}

static void
test_origin_form_without_query_has_null_query(void)
{
    ACCEPTED("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    CU_ASSERT(str_is(r.path, "/"));
    CU_ASSERT_PTR_NULL(r.query.ptr);
    CU_ASSERT_PTR_NULL(r.port.ptr);
    CU_ASSERT_EQUAL(r.port_num, 0);
    ACCEPTED("GET /? HTTP/1.1\r\nHost: h\r\n\r\n");
    CU_ASSERT(str_is(r.query, ""));
}

static void
test_absolute_form_takes_authority_from_target(void)
{
    ACCEPTED("GET http://Example.com:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n");
    CU_ASSERT_EQUAL(r.form, FERRY_HTTP_FORM_ABSOLUTE);
    CU_ASSERT(str_is(r.scheme, "http"));
    CU_ASSERT(str_is(r.host, "Example.com"));
    CU_ASSERT_EQUAL(r.port_num, 81);
    CU_ASSERT(str_is(r.path, "/p"));
    CU_ASSERT(str_is(r.query, "q"));
    ACCEPTED("GET https://h HTTP/1.1\r\nHost: h\r\n\r\n");
    CU_ASSERT(str_is(r.scheme, "https"));
    CU_ASSERT(str_is(r.path, ""));
    CU_ASSERT_PTR_NULL(r.query.ptr);
    ACCEPTED("GET http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    CU_ASSERT(str_is(r.host, "::1"));
    CU_ASSERT_EQUAL(r.port_num, 8080);
}

static void
test_absolute_form_refuses_userinfo_empty_host_and_no_slashes(void)
{
    REFUSED("GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-target");
    REFUSED("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-target");
    REFUSED("GET http:/x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-target");
    REFUSED("GET 1http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-target");
    REFUSED("GET http://h:99999/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-target");
    REFUSED("GET http://h%41/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-target");
}

static void
test_authority_form_only_for_connect_and_needs_port(void)
{
    ACCEPTED("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n");
    CU_ASSERT_EQUAL(r.method, FERRY_HTTP_CONNECT);
    CU_ASSERT_EQUAL(r.form, FERRY_HTTP_FORM_AUTHORITY);
    CU_ASSERT(str_is(r.host, "db.internal"));
    CU_ASSERT_EQUAL(r.port_num, 5432);
    CU_ASSERT_EQUAL(r.body, FERRY_HTTP_BODY_NONE);
    ACCEPTED("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n");
    CU_ASSERT(str_is(r.host, "2001:db8::1"));
    REFUSED("CONNECT db.internal HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad-target");
    REFUSED("CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad-target");
    REFUSED("CONNECT http://h:1/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad-target");
    REFUSED("GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-target");
}

static void
test_connect_with_a_body_is_refused(void)
{
    ACCEPTED("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 0\r\n\r\n");
    REFUSED("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\n\r\n", 400,
            "connect-with-body");
    REFUSED("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
            "connect-with-body");
}

static void
test_asterisk_form_only_for_options(void)
{
    ACCEPTED("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    CU_ASSERT_EQUAL(r.form, FERRY_HTTP_FORM_ASTERISK);
    CU_ASSERT_EQUAL(r.method, FERRY_HTTP_OPTIONS);
    REFUSED("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-target");
    REFUSED("OPTIONS ** HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-target");
}

static void
test_target_characters_outside_rfc3986_are_refused(void)
{
    static const char *const bad[] = {
        "/a#frag", "/a\\b", "/a\"b", "/<", "/a{b}", "/a|b", "/a^b", "/a`b", "/%zz", "/%4",
        "/\xc3\xa9", "/a\tb", "/a\x01", "/a\x7f",
    };
    char text[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", bad[i]);
        REFUSED(text, 400, "bad-target");
    }
}

static void
test_methods_are_tokens_and_case_sensitive(void)
{
    static const struct {
        const char            *name;
        enum ferry_http_method m;
    } ms[] = {
        { "GET", FERRY_HTTP_GET },     { "HEAD", FERRY_HTTP_HEAD },
        { "POST", FERRY_HTTP_POST },   { "PUT", FERRY_HTTP_PUT },
        { "DELETE", FERRY_HTTP_DELETE }, { "OPTIONS", FERRY_HTTP_OPTIONS },
        { "PATCH", FERRY_HTTP_PATCH }, { "TRACE", FERRY_HTTP_TRACE },
        { "PROPFIND", FERRY_HTTP_OTHER }, { "get", FERRY_HTTP_OTHER },
    };
    char text[128];

    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        snprintf(text, sizeof(text), "%s / HTTP/1.1\r\nHost: h\r\n\r\n", ms[i].name);
        ACCEPTED(text);
        CU_ASSERT_EQUAL(r.method, ms[i].m);
        CU_ASSERT(str_is(r.method_name, ms[i].name));
    }
    REFUSED("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-method");
    REFUSED(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-method");
    REFUSED("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-method");
}

static void
test_request_line_needs_single_spaces(void)
{
    REFUSED("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-target");
    REFUSED("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "bad-version");
    REFUSED("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad-version");
    REFUSED("GET /\r\n\r\n", 400, "bad-request");
    REFUSED("GET\r\n\r\n", 400, "bad-request");
}

static void
test_versions_other_than_1_0_and_1_1(void)
{
    REFUSED("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "bad-version");
    REFUSED("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "bad-version");
    REFUSED("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505, "bad-version");
    REFUSED("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400, "bad-version");
    REFUSED("GET / http/1.1\r\nHost: h\r\n\r\n", 400, "bad-version");
    REFUSED("GET / HTTP/1\r\nHost: h\r\n\r\n", 400, "bad-version");
}

static void
test_host_rules(void)
{
    REFUSED("GET / HTTP/1.1\r\n\r\n", 400, "bad-host");
    REFUSED("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "bad-host");
    REFUSED("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad-host");
    REFUSED("GET / HTTP/1.1\r\nHost: \r\n\r\n", 400, "bad-host");
    REFUSED("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", 400, "bad-host");
    REFUSED("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400, "bad-host");
    REFUSED("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "bad-host");
    REFUSED("GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", 400, "bad-host");
    REFUSED("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", 400, "bad-host");
    ACCEPTED("GET / HTTP/1.1\r\nhOsT: a.b-c_d~e:65535\r\n\r\n");
    CU_ASSERT(str_is(r.host, "a.b-c_d~e"));
    CU_ASSERT_EQUAL(r.port_num, 65535);
    /* HTTP/1.0 does not need Host. */
    ACCEPTED("GET / HTTP/1.0\r\n\r\n");
    CU_ASSERT_PTR_NULL(r.host.ptr);
}

static void
test_smuggling_content_length_with_transfer_encoding(void)
{
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n", 400, "smuggling-cl-te");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 5\r\n\r\n", 400, "smuggling-cl-te");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 0\r\n"
            "TRANSFER-ENCODING: gzip, chunked\r\n\r\n", 400, "smuggling-cl-te");
}

static void
test_smuggling_duplicate_or_malformed_content_length(void)
{
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            400, "duplicate-content-length");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            400, "duplicate-content-length");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400,
            "duplicate-content-length");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400,
            "bad-content-length");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400,
            "bad-content-length");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", 400,
            "bad-content-length");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", 400,
            "bad-content-length");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400,
            "bad-content-length");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", 400,
            "bad-content-length");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            400, "bad-content-length");
    ACCEPTED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n");
    CU_ASSERT_EQUAL(r.body, FERRY_HTTP_BODY_LENGTH);
    CU_ASSERT_EQUAL(r.content_length, 9223372036854775807ull);
    /* OWS around the value is not part of it (RFC 9112 section 5). */
    ACCEPTED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \t 0042 \r\n\r\n");
    CU_ASSERT_EQUAL(r.content_length, 42);
    ACCEPTED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    CU_ASSERT_EQUAL(r.body, FERRY_HTTP_BODY_LENGTH);
    CU_ASSERT_EQUAL(r.content_length, 0);
}

static void
test_transfer_encoding_chunked_only_and_last(void)
{
    ACCEPTED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
    CU_ASSERT_EQUAL(r.body, FERRY_HTTP_BODY_CHUNKED);
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400,
            "bad-transfer-encoding");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 400,
            "bad-transfer-encoding");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400,
            "bad-transfer-encoding");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: chunked\r\n\r\n", 400, "bad-transfer-encoding");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: gzip\r\n\r\n", 400, "bad-transfer-encoding");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked\r\n\r\n", 400,
            "bad-transfer-encoding");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400,
            "bad-transfer-encoding");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400,
            "bad-transfer-encoding");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
            "unsupported-transfer-encoding");
    REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
            "Transfer-Encoding: chunked\r\n\r\n", 501, "unsupported-transfer-encoding");
    REFUSED("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
            "bad-transfer-encoding");
}

static void
test_obs_fold_is_refused(void)
{
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", 400, "obs-fold");
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\t2\r\n\r\n", 400, "obs-fold");
    REFUSED("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400, "obs-fold");
}

static void
test_bare_cr_and_bare_lf_are_refused(void)
{
    REFUSED("GET / HTTP/1.1\rHost: h\r\n\r\n", 400, "bare-cr");
    REFUSED("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bare-cr");
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400, "bare-cr");
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\r\n\r\n", 400, "bare-cr");
    REFUSED("GET / HTTP/1.1\nHost: h\r\n\r\n", 400, "bare-lf");
    REFUSED("GET / HTTP/1.1\r\nHost: h\n\r\n", 400, "bare-lf");
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\n\n", 400, "bare-lf");
    REFUSED("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bare-lf");
}

static void
test_field_syntax(void)
{
    REFUSED("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "bad-header-name");
    REFUSED("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400, "bad-header-name");
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400, "bad-header-name");
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400, "bad-header-name");
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n", 400, "bad-header-name");
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01" "b\r\n\r\n", 400, "bad-header-value");
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n", 400, "bad-header-value");
    /* obs-text and HTAB inside a value are fine; OWS at both ends is trimmed. */
    ACCEPTED("GET / HTTP/1.1\r\nHost: h\r\nX-A:\t caf\xc3\xa9\ta b \t\r\nX-E:\r\n\r\n");
    CU_ASSERT(str_is(hdrs[1].value, "caf\xc3\xa9\ta b"));
    CU_ASSERT(str_is(hdrs[2].value, ""));
}

/* The word-at-a-time value check must see a bad byte wherever it is in the word. */
static void
test_ctl_anywhere_in_a_long_value_is_refused(void)
{
    static const unsigned char bad[] = { 0x00, 0x01, 0x0b, 0x1f, 0x7f };
    static const unsigned char good[] = { '\t', ' ', '~', 0x80, 0xfe, 0xff };
    char                       text[128];
    size_t                     n;

    for (size_t pos = 0; pos < 24; pos++) {
        for (size_t b = 0; b < sizeof(bad) + sizeof(good); b++) {
            unsigned char c = b < sizeof(bad) ? bad[b] : good[b - sizeof(bad)];

            n = (size_t)sprintf(text, "GET / HTTP/1.1\r\nHost: h\r\nX-V: ");
            memset(text + n, 'v', 24);
            text[n + pos] = (char)c;
            memcpy(text + n + 24, "v\r\n\r\n", 6);
            ferry_http_req_init(&r, hdrs, TEST_MAX_HEADERS);
            if (b < sizeof(bad)) {
                CU_ASSERT_EQUAL(ferry_http_parse_request(text, n + 29, NULL, &r), FERRY_EPROTO);
                CU_ASSERT_STRING_EQUAL(r.reason != NULL ? r.reason : "(none)",
                                       "bad-header-value");
            } else {
                CU_ASSERT_EQUAL(ferry_http_parse_request(text, n + 29, NULL, &r),
                                (int)(n + 29));
            }
        }
    }
}

static void
test_nul_bytes_are_refused_in_name_value_and_target(void)
{
    static const char v[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n";
    static const char n[] = "GET / HTTP/1.1\r\nHost: h\r\nX\0A: b\r\n\r\n";
    static const char m[] = "G\0T / HTTP/1.1\r\nHost: h\r\n\r\n";
    static const char t[] = "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n";

    CU_ASSERT(req_lim(v, sizeof(v) - 1, NULL) == FERRY_EPROTO);
    CU_ASSERT_STRING_EQUAL(r.reason, "bad-header-value");
    CU_ASSERT(req_lim(n, sizeof(n) - 1, NULL) == FERRY_EPROTO);
    CU_ASSERT_STRING_EQUAL(r.reason, "bad-header-name");
    CU_ASSERT(req_lim(m, sizeof(m) - 1, NULL) == FERRY_EPROTO);
    CU_ASSERT_STRING_EQUAL(r.reason, "bad-method");
    CU_ASSERT(req_lim(t, sizeof(t) - 1, NULL) == FERRY_EPROTO);
    CU_ASSERT_STRING_EQUAL(r.reason, "bad-target");
}

static void
test_connection_keep_alive_and_flags(void)
{
    ACCEPTED("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    CU_ASSERT(!r.keep_alive);
    CU_ASSERT_EQUAL(r.connection, FERRY_HTTP_CONN_CLOSE);
    ACCEPTED("GET / HTTP/1.0\r\n\r\n");
    CU_ASSERT(!r.keep_alive);
    ACCEPTED("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    CU_ASSERT(r.keep_alive);
    ACCEPTED("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade, X-Foo,\r\n"
             "Upgrade: websocket\r\n\r\n");
    CU_ASSERT(r.keep_alive);
    CU_ASSERT(r.upgrade);
    CU_ASSERT_EQUAL(r.connection, FERRY_HTTP_CONN_KEEP_ALIVE | FERRY_HTTP_CONN_UPGRADE |
                                      FERRY_HTTP_CONN_OTHER);
    ACCEPTED("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n");
    CU_ASSERT(!r.keep_alive);
    REFUSED("GET / HTTP/1.1\r\nHost: h\r\nConnection: a b\r\n\r\n", 400, "bad-header-value");
    /* Upgrade in HTTP/1.0 is ignored (RFC 9110 section 7.8). */
    ACCEPTED("GET / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n");
    CU_ASSERT(!r.upgrade);
}

static void
test_expect(void)
{
    ACCEPTED("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 9\r\n\r\n");
    CU_ASSERT(r.expect_continue);
    ACCEPTED("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n");
    CU_ASSERT(!r.expect_continue);
    REFUSED("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417, "unsupported-expect");
}

static void
test_leading_crlfs_are_skipped_and_counted(void)
{
    const char *t = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";

    CU_ASSERT_EQUAL(req(t), (int)strlen(t));
    CU_ASSERT(str_is(r.method_name, "GET"));
}

/* A head built to an exact size: request line, filler fields, the empty line. */
static char *
head_of_size(size_t size, const char *target_fill, size_t nfields)
{
    char  *t = malloc(size + 1);
    size_t n;

    n = (size_t)sprintf(t, "GET /%s HTTP/1.1\r\nHost: h\r\n", target_fill);
    for (size_t i = 0; i < nfields; i++)
        n += (size_t)sprintf(t + n, "X-%zu: v\r\n", i);
    if (n + 2 + 8 > size) {     /* "X: " + at least one byte + CRLF + CRLF */
        free(t);
        return NULL;
    }
    n += (size_t)sprintf(t + n, "X: ");
    memset(t + n, 'a', size - n - 4);
    memcpy(t + size - 4, "\r\n\r\n", 5);
    return t;
}

static void
test_head_size_limit_431(void)
{
    struct ferry_http_limits lim = { .max_head_bytes = 512 };
    char                    *t = head_of_size(512, "", 0);

    CU_ASSERT_EQUAL_FATAL(strlen(t), 512);
    CU_ASSERT_EQUAL(req_lim(t, 512, &lim), 512);
    free(t);
    t = head_of_size(513, "", 0);
    CU_ASSERT_EQUAL(req_lim(t, 513, &lim), FERRY_ELIMIT);
    CU_ASSERT_EQUAL(r.status, 431);
    CU_ASSERT_STRING_EQUAL(r.reason, "headers-too-large");
    /* Incomplete: 431 as soon as the limit is reached without an end of head. */
    CU_ASSERT_EQUAL(req_lim(t, 511, &lim), 0);
    CU_ASSERT_EQUAL(req_lim(t, 512, &lim), FERRY_ELIMIT);
    CU_ASSERT_EQUAL(r.status, 431);
    free(t);
    /* The default: 16 KiB. */
    t = head_of_size(16 * 1024 + 1, "", 0);
    CU_ASSERT_EQUAL(ferry_http_parse_request(t, strlen(t), NULL, &r), FERRY_ELIMIT);
    CU_ASSERT_EQUAL(r.status, 431);
    free(t);
    t = head_of_size(16 * 1024, "", 0);
    CU_ASSERT_EQUAL(ferry_http_parse_request(t, strlen(t), NULL, &r), 16 * 1024);
    free(t);
}

static void
test_header_count_limit_431(void)
{
    struct ferry_http_limits lim = { .max_headers = 10 };
    char                    *t;

    t = head_of_size(4096, "", 8);       /* Host + 8 + X = 10 fields */
    CU_ASSERT_EQUAL(req_lim(t, strlen(t), &lim), (int)strlen(t));
    CU_ASSERT_EQUAL(r.header_count, 10);
    free(t);
    t = head_of_size(4096, "", 9);
    CU_ASSERT_EQUAL(req_lim(t, strlen(t), &lim), FERRY_ELIMIT);
    CU_ASSERT_EQUAL(r.status, 431);
    CU_ASSERT_STRING_EQUAL(r.reason, "too-many-headers");
    free(t);
    /* The default is 100; a smaller caller array is a smaller limit. */
    t = head_of_size(8192, "", 98);
    ferry_http_req_init(&r, hdrs, TEST_MAX_HEADERS);
    CU_ASSERT_EQUAL(ferry_http_parse_request(t, strlen(t), NULL, &r), (int)strlen(t));
    ferry_http_req_init(&r, hdrs, 50);
    CU_ASSERT_EQUAL(ferry_http_parse_request(t, strlen(t), NULL, &r), FERRY_ELIMIT);
    CU_ASSERT_STRING_EQUAL(r.reason, "too-many-headers");
    free(t);
    t = head_of_size(8192, "", 99);
    ferry_http_req_init(&r, hdrs, TEST_MAX_HEADERS);
    CU_ASSERT_EQUAL(ferry_http_parse_request(t, strlen(t), NULL, &r), FERRY_ELIMIT);
    CU_ASSERT_EQUAL(r.status, 431);
    /* Without an array the fields are still checked and counted. */
    ferry_http_req_init(&r, NULL, 0);
    CU_ASSERT_EQUAL(ferry_http_parse_request(t, strlen(t), NULL, &r), FERRY_ELIMIT);
    free(t);
}

static void
test_uri_length_limit_414(void)
{
    struct ferry_http_limits lim = { .max_uri_bytes = 64 };
    char                     fill[128], *t;

    memset(fill, 'a', sizeof(fill));
    fill[63] = '\0';              /* "/" + 63 = 64 bytes: at the limit */
    t = head_of_size(300, fill, 0);
    CU_ASSERT_EQUAL(req_lim(t, strlen(t), &lim), (int)strlen(t));
    free(t);
    fill[63] = 'a';
    fill[64] = '\0';
    t = head_of_size(300, fill, 0);
    CU_ASSERT_EQUAL(req_lim(t, strlen(t), &lim), FERRY_ELIMIT);
    CU_ASSERT_EQUAL(r.status, 414);
    CU_ASSERT_STRING_EQUAL(r.reason, "uri-too-long");
    /* Before the request line is complete: 414 once the target is too long. */
    CU_ASSERT_EQUAL(req_lim(t, 4 + 64, &lim), 0);
    CU_ASSERT_EQUAL(req_lim(t, 4 + 65, &lim), FERRY_ELIMIT);
    CU_ASSERT_EQUAL(r.status, 414);
    free(t);
    /* The default is 8 KiB. */
    t = malloc(9000);
    memcpy(t, "GET /", 5);
    memset(t + 5, 'b', 8192);
    ferry_http_req_init(&r, hdrs, TEST_MAX_HEADERS);
    CU_ASSERT_EQUAL(ferry_http_parse_request(t, 5 + 8191, NULL, &r), 0);
    CU_ASSERT_EQUAL(ferry_http_parse_request(t, 5 + 8192, NULL, &r), FERRY_ELIMIT);
    CU_ASSERT_EQUAL(r.status, 414);
    free(t);
}

static void
test_every_prefix_of_a_complete_head_needs_more(void)
{
    const char *t = "POST /x?y HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\n\r\nabc";
    size_t      head = strlen(t) - 3;

    for (size_t k = 0; k < head; k++) {
        ferry_http_req_init(&r, hdrs, TEST_MAX_HEADERS);
        CU_ASSERT_EQUAL(ferry_http_parse_request(t, k, NULL, &r), 0);
    }
    ferry_http_req_init(&r, hdrs, TEST_MAX_HEADERS);
    CU_ASSERT_EQUAL(ferry_http_parse_request(t, strlen(t), NULL, &r), (int)head);
}

static void
test_pipelined_requests_are_parsed_one_after_the_other(void)
{
    const char *t = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                    "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
                    "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n";
    size_t      off = 0, len = strlen(t);
    int         rc;

    ferry_http_req_init(&r, hdrs, TEST_MAX_HEADERS);
    rc = ferry_http_parse_request(t, len, NULL, &r);
    CU_ASSERT_EQUAL(rc, 28);
    CU_ASSERT(str_is(r.path, "/1"));
    off += (size_t)rc;
    rc = ferry_http_parse_request(t + off, len - off, NULL, &r);
    CU_ASSERT_EQUAL(rc, 48);
    CU_ASSERT(str_is(r.path, "/2"));
    CU_ASSERT_EQUAL(r.content_length, 2);
    off += (size_t)rc + r.content_length;
    rc = ferry_http_parse_request(t + off, len - off, NULL, &r);
    CU_ASSERT_EQUAL(off + (size_t)rc, len);
    CU_ASSERT(str_is(r.path, "/3"));
}

static void
test_resume_after_zero_in_larger_pieces(void)
{
    const char *t = "GET /p HTTP/1.1\r\nHost: h\r\nX-Long: 0123456789\r\nX-B: b\r\n\r\n";
    size_t      len = strlen(t);

    for (size_t piece = 2; piece < len; piece++) {
        size_t k = 0;
        int    rc = 0;

        ferry_http_req_init(&r, hdrs, TEST_MAX_HEADERS);
        while (rc == 0 && k < len) {
            k = k + piece < len ? k + piece : len;
            rc = ferry_http_parse_request(t, k, NULL, &r);
        }
        CU_ASSERT_EQUAL(rc, (int)len);
        CU_ASSERT_EQUAL(r.header_count, 3);
        CU_ASSERT(str_is(hdrs[1].value, "0123456789"));
    }
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "origin-form GET splits path, query and host",
          test_origin_form_get_splits_path_query_and_host },
        { "origin-form without query", test_origin_form_without_query_has_null_query },
        { "absolute-form takes authority from target",
          test_absolute_form_takes_authority_from_target },
        { "absolute-form refuses userinfo, empty host, no //",
          test_absolute_form_refuses_userinfo_empty_host_and_no_slashes },
        { "authority-form only for CONNECT, with port",
          test_authority_form_only_for_connect_and_needs_port },
        { "CONNECT with a body is refused", test_connect_with_a_body_is_refused },
        { "asterisk-form only for OPTIONS", test_asterisk_form_only_for_options },
        { "target characters outside RFC 3986 are refused",
          test_target_characters_outside_rfc3986_are_refused },
        { "methods are case-sensitive tokens", test_methods_are_tokens_and_case_sensitive },
        { "request line needs single spaces", test_request_line_needs_single_spaces },
        { "versions other than 1.0 and 1.1", test_versions_other_than_1_0_and_1_1 },
        { "Host rules", test_host_rules },
        { "smuggling: CL with TE", test_smuggling_content_length_with_transfer_encoding },
        { "smuggling: duplicate or malformed CL",
          test_smuggling_duplicate_or_malformed_content_length },
        { "TE: chunked only, and last", test_transfer_encoding_chunked_only_and_last },
        { "obs-fold is refused", test_obs_fold_is_refused },
        { "bare CR and bare LF are refused", test_bare_cr_and_bare_lf_are_refused },
        { "field syntax", test_field_syntax },
        { "a CTL anywhere in a long value is refused",
          test_ctl_anywhere_in_a_long_value_is_refused },
        { "NUL bytes are refused", test_nul_bytes_are_refused_in_name_value_and_target },
        { "Connection, keep-alive and flags", test_connection_keep_alive_and_flags },
        { "Expect", test_expect },
        { "leading CRLFs are skipped", test_leading_crlfs_are_skipped_and_counted },
        { "head size limit: 431", test_head_size_limit_431 },
        { "header count limit: 431", test_header_count_limit_431 },
        { "URI length limit: 414", test_uri_length_limit_414 },
        { "every prefix of a head needs more", test_every_prefix_of_a_complete_head_needs_more },
        { "pipelined requests", test_pipelined_requests_are_parsed_one_after_the_other },
        { "resume in larger pieces", test_resume_after_zero_in_larger_pieces },
        { NULL, NULL },
    };

    return cu_run("http-parse", tests);
}
