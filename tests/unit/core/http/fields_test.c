/*
 * fields_test.c: the helpers of core/http/fields.c: defaults, method names, field
 * lookup, list membership and the hop-by-hop rule, on a parsed request.
 */
#include <string.h>

#include <ferry/http.h>

#include "http/parse.h"

#include "core/http/http-test.h"
#include "cu.h"

static struct ferry_http_header hdrs[TEST_MAX_HEADERS];
static struct ferry_http_req    r;

static const char req_text[] = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret,"
                               " Upgrade\r\nX-Secret: s\r\nAccept: a\r\naccept: b\r\n"
                               "Keep-Alive: 5\r\nconnection: x-other\r\n\r\n";

static void
parse(void)
{
    ferry_http_req_init(&r, hdrs, TEST_MAX_HEADERS);
    CU_ASSERT_EQUAL_FATAL(ferry_http_parse_request(req_text, sizeof(req_text) - 1, NULL, &r),
                          (int)sizeof(req_text) - 1);
}

static void
test_limits_default(void)
{
    struct ferry_http_limits lim;

    ferry_http_limits_default(&lim);
    CU_ASSERT_EQUAL(lim.max_head_bytes, 16384);
    CU_ASSERT_EQUAL(lim.max_headers, 100);
    CU_ASSERT_EQUAL(lim.max_uri_bytes, 8192);
}

static void
test_method_of(void)
{
    CU_ASSERT_EQUAL(ferry_http_method_of("CONNECT", 7), FERRY_HTTP_CONNECT);
    CU_ASSERT_EQUAL(ferry_http_method_of("CONNECTX", 7), FERRY_HTTP_CONNECT);
    CU_ASSERT_EQUAL(ferry_http_method_of("connect", 7), FERRY_HTTP_OTHER);
    CU_ASSERT_EQUAL(ferry_http_method_of("GE", 2), FERRY_HTTP_OTHER);
}

static void
test_header_find_ignores_case_and_iterates(void)
{
    const struct ferry_http_header *h;

    parse();
    h = ferry_http_header_find(hdrs, r.header_count, "ACCEPT", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT(str_is(h->value, "a"));
    h = ferry_http_header_find(hdrs, r.header_count, "accept", h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT(str_is(h->value, "b"));
    CU_ASSERT_PTR_NULL(ferry_http_header_find(hdrs, r.header_count, "accept", h));
    CU_ASSERT_PTR_NULL(ferry_http_header_find(hdrs, r.header_count, "accep", NULL));
    CU_ASSERT_PTR_NULL(ferry_http_header_find(hdrs, 0, "host", NULL));
}

static void
test_list_has(void)
{
    const char *v = " gzip ,  Chunked\t,,x";

    CU_ASSERT(ferry_http_list_has(v, strlen(v), "chunked"));
    CU_ASSERT(ferry_http_list_has(v, strlen(v), "GZIP"));
    CU_ASSERT(ferry_http_list_has(v, strlen(v), "x"));
    CU_ASSERT(!ferry_http_list_has(v, strlen(v), "chunk"));
    CU_ASSERT(!ferry_http_list_has(v, strlen(v), ""));
    CU_ASSERT(!ferry_http_list_has("", 0, "x"));
}

static void
test_hop_by_hop_fixed_set_and_connection_named(void)
{
    static const char *const hop[] = {
        "Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
        "upgrade", "Proxy-Authorization", "Proxy-Authenticate", "x-secret", "X-Other",
    };
    static const char *const end[] = { "Host", "Accept", "Authorization", "X-Secre", "Trailers" };

    parse();
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        CU_ASSERT(ferry_http_is_hop_by_hop(hop[i], strlen(hop[i]), hdrs, r.header_count));
    for (size_t i = 0; i < sizeof(end) / sizeof(end[0]); i++)
        CU_ASSERT(!ferry_http_is_hop_by_hop(end[i], strlen(end[i]), hdrs, r.header_count));
    /* Without the fields, only the fixed set. */
    CU_ASSERT(!ferry_http_is_hop_by_hop("X-Secret", 8, NULL, 0));
    CU_ASSERT(ferry_http_is_hop_by_hop("TE", 2, NULL, 0));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "limits default", test_limits_default },
        { "method_of", test_method_of },
        { "header_find ignores case and iterates", test_header_find_ignores_case_and_iterates },
        { "list_has", test_list_has },
        { "hop-by-hop: fixed set and Connection-named",
          test_hop_by_hop_fixed_set_and_connection_named },
        { NULL, NULL },
    };

    return cu_run("http-fields", tests);
}
