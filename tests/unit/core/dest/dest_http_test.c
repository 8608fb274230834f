/*
 * dest_http_test.c: what a destination adds to an HTTP request (core/dest/dest-http.c,
 * ferry_dest_http_new): the joined path, the query with the URL's own query and
 * URL.queries.* percent-encoded, URL.headers.* and BasicAuthentication's Authorization,
 * which of the request's fields it replaces, and its errors.
 */
#include "core/conf/conf-test.h"

#include <ferry/dest.h>
#include <ferry/err.h>

#include "cu.h"
#include "dest/dest-int.h"

static struct ferry_errlist errs;
static struct ferry_conf   *conf;

/* One HTTP destination "x" from its property lines ("    Key: value\n"). */
static const struct ferry_dest *
one(const char *props)
{
    char text[4096];

    snprintf(text, sizeof(text), "destinations:\n  - Name: x\n    Type: HTTP\n%s", props);
    if (conf_test_load(text, &conf, &errs) != FERRY_OK)
        return NULL;
    return ferry_registry_find(conf->registry, "x");
}

/* The target ferry would write: path, then "?query" if there is one. */
static const char *
target(const struct ferry_dest_http *r)
{
    static char buf[1024];
    const char *q = ferry_dest_http_query(r);

    snprintf(buf, sizeof(buf), "%s%s%s", ferry_dest_http_path(r), q != NULL ? "?" : "",
             q != NULL ? q : "");
    return buf;
}

/* ferry_dest_http_new on a NUL-terminated path and query (NULL: none). */
static struct ferry_dest_http *
apply(const struct ferry_dest *d, const char *path, const char *query)
{
    struct ferry_dest_http *r = NULL;
    struct ferry_err        err = { 0 };

    CU_ASSERT_EQUAL(ferry_dest_http_new(d, path, strlen(path), query,
                                        query != NULL ? strlen(query) : 0, &r, &err),
                    FERRY_OK);
    return r;
}

static const char *
joined(const char *url, const char *path, const char *query)
{
    static char             buf[1024];
    char                    props[512];
    const struct ferry_dest *d;
    struct ferry_dest_http  *r;

    snprintf(props, sizeof(props), "    URL: \"%s\"\n", url);
    if ((d = one(props)) == NULL || (r = apply(d, path, query)) == NULL)
        return "(failed)";
    snprintf(buf, sizeof(buf), "%s", target(r));
    ferry_dest_http_free(r);
    return buf;
}

static void
test_path_join_has_one_slash_between(void)
{
    CU_ASSERT_STRING_EQUAL(joined("http://h", "/x", NULL), "/x");
    CU_ASSERT_STRING_EQUAL(joined("http://h", "", NULL), "/");
    CU_ASSERT_STRING_EQUAL(joined("http://h/", "/x", NULL), "/x");
    CU_ASSERT_STRING_EQUAL(joined("http://h/api", "/x", NULL), "/api/x");
    CU_ASSERT_STRING_EQUAL(joined("http://h/api/", "/x", NULL), "/api/x");
    CU_ASSERT_STRING_EQUAL(joined("http://h/api", "", NULL), "/api");
    CU_ASSERT_STRING_EQUAL(joined("http://h/api", "/", NULL), "/api/");
    CU_ASSERT_STRING_EQUAL(joined("http://h/api/", "/", NULL), "/api/");
    CU_ASSERT_STRING_EQUAL(joined("http://h/api/v1", "/orders/1", NULL), "/api/v1/orders/1");
}

static void
test_request_query_is_kept_as_it_came(void)
{
    CU_ASSERT_STRING_EQUAL(joined("http://h/api", "/x", "a=1&b=%20"), "/api/x?a=1&b=%20");
    /* "/x?" stays "/x?": the origin may tell them apart. */
    CU_ASSERT_STRING_EQUAL(joined("http://h/api", "/x", ""), "/api/x?");
}

static void
test_query_in_the_url_goes_first(void)
{
    CU_ASSERT_STRING_EQUAL(joined("http://h/api?v=2", "/x", NULL), "/api/x?v=2");
    CU_ASSERT_STRING_EQUAL(joined("http://h/api?v=2", "/x", "a=1"), "/api/x?v=2&a=1");
    CU_ASSERT_STRING_EQUAL(joined("http://h/api/?v=2", "/x", ""), "/api/x?v=2");
    CU_ASSERT_STRING_EQUAL(joined("http://h?v=2", "", NULL), "/?v=2");
}

static void
test_url_queries_are_percent_encoded_after_the_request_query(void)
{
    const struct ferry_dest *d;
    struct ferry_dest_http  *r;

    d = one("    URL: \"http://h/sap/opu?v=2\"\n"
            "    URL.queries.sap-client: \"a b&c\"\n"
            "    URL.queries.$format: json/ü~x\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    r = apply(d, "/Orders", "$top=1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(ferry_dest_http_path(r), "/sap/opu/Orders");
    CU_ASSERT_STRING_EQUAL(ferry_dest_http_query(r),
                           "v=2&$top=1&sap-client=a%20b%26c&%24format=json%2F%C3%BC~x");
    ferry_dest_http_free(r);

    r = apply(d, "/Orders", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(ferry_dest_http_query(r),
                           "v=2&sap-client=a%20b%26c&%24format=json%2F%C3%BC~x");
    ferry_dest_http_free(r);

    d = one("    URL: http://h\n    URL.queries.q: \"1\"\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    r = apply(d, "/", NULL);
    CU_ASSERT_STRING_EQUAL(target(r), "/?q=1");
    ferry_dest_http_free(r);
    r = apply(d, "/", "");
    CU_ASSERT_STRING_EQUAL(target(r), "/?q=1");
    ferry_dest_http_free(r);
}

static void
test_no_query_at_all_is_null(void)
{
    const struct ferry_dest *d = one("    URL: http://h/api\n");
    struct ferry_dest_http  *r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    r = apply(d, "/x", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NULL(ferry_dest_http_query(r));
    CU_ASSERT_EQUAL(ferry_dest_http_nfields(r), 0);
    CU_ASSERT_FALSE(ferry_dest_http_replaces(r, "Authorization"));
    ferry_dest_http_free(r);
}

/* Slices: neither path nor query needs a NUL after it. */
static void
test_path_and_query_are_slices(void)
{
    const struct ferry_dest *d = one("    URL: http://h/api\n    URL.queries.c: \"1\"\n");
    const char              *line = "/orders/1?a=1 HTTP/1.1";
    struct ferry_dest_http  *r = NULL;
    struct ferry_err         err = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_http_new(d, line, 9, line + 10, 3, &r, &err), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(target(r), "/api/orders/1?a=1&c=1");
    ferry_dest_http_free(r);
}

static void
test_url_headers_then_basic_authorization(void)
{
    const struct ferry_dest *d;
    struct ferry_dest_http  *r;
    const char              *n, *v;

    d = one("    URL: http://h/api\n"
            "    Authentication: BasicAuthentication\n"
            "    User: alice\n"
            "    Password: s3cr:et\n"
            "    URL.headers.X-Demo: demo value\n"
            "    URL.headers.X-Client: ferry\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    r = apply(d, "/x", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL_FATAL(ferry_dest_http_nfields(r), 3);
    CU_ASSERT_FALSE(ferry_dest_http_field(r, 0, &n, &v));
    CU_ASSERT_STRING_EQUAL(n, "X-Demo");
    CU_ASSERT_STRING_EQUAL(v, "demo value");
    CU_ASSERT_FALSE(ferry_dest_http_field(r, 1, &n, &v));
    CU_ASSERT_STRING_EQUAL(n, "X-Client");
    CU_ASSERT_STRING_EQUAL(v, "ferry");
    CU_ASSERT_TRUE(ferry_dest_http_field(r, 2, &n, &v));        /* a credential */
    CU_ASSERT_STRING_EQUAL(n, "Authorization");
    CU_ASSERT_STRING_EQUAL(v, "Basic YWxpY2U6czNjcjpldA==");     /* alice:s3cr:et */
    ferry_dest_http_free(r);
}

/* Which wins: the destination's credentials replace the request's Authorization;
 * URL.headers.* go out beside the request's own fields of the same name. */
static void
test_basic_replaces_authorization_only(void)
{
    const struct ferry_dest *d;
    struct ferry_dest_http  *r;

    d = one("    URL: http://h\n    Authentication: BasicAuthentication\n    User: u\n"
            "    Password: p\n    URL.headers.X-Demo: d\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    r = apply(d, "/", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(ferry_dest_http_replaces(r, "Authorization"));
    CU_ASSERT_TRUE(ferry_dest_http_replaces(r, "authorization"));
    CU_ASSERT_FALSE(ferry_dest_http_replaces(r, "X-Demo"));
    CU_ASSERT_FALSE(ferry_dest_http_replaces(r, "Proxy-Authorization"));
    ferry_dest_http_free(r);
}

static void
test_secret_property_in_a_header_is_marked(void)
{
    const struct ferry_dest *d;
    struct ferry_dest_http  *r;
    const char              *n, *v;

    setenv("FERRY_UT_KEY", "k-4711", 1);
    d = one("    URL: http://h\n    URL.headers.X-Key: ${env:FERRY_UT_KEY}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    r = apply(d, "/", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL_FATAL(ferry_dest_http_nfields(r), 1);
    CU_ASSERT_TRUE(ferry_dest_http_field(r, 0, &n, &v));
    CU_ASSERT_STRING_EQUAL(v, "k-4711");
    ferry_dest_http_free(r);
}

static void
test_bad_header_or_long_credentials_are_errors_without_secrets(void)
{
    const struct ferry_dest *d;
    struct ferry_dest_http  *r = NULL;
    struct ferry_err         err = { 0 };
    char                     props[4096];
    char                     pass[1100];

    d = one("    URL: http://h\n    \"URL.headers.X Bad\": v\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_http_new(d, "/", 1, NULL, 0, &r, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_STRING_EQUAL(err.msg,
                           "destination 'x': URL.headers.X Bad is not a valid header field");

    memset(pass, 'p', sizeof(pass) - 1);
    pass[sizeof(pass) - 1] = '\0';
    snprintf(props, sizeof(props),
             "    URL: http://h\n    Authentication: BasicAuthentication\n    User: u\n"
             "    Password: %s\n", pass);
    d = one(props);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(ferry_dest_http_new(d, "/", 1, NULL, 0, &r, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_STRING_EQUAL(err.msg, "destination 'x': credentials too long");
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "path join has one slash between", test_path_join_has_one_slash_between },
        { "request query is kept as it came", test_request_query_is_kept_as_it_came },
        { "query in the URL goes first", test_query_in_the_url_goes_first },
        { "URL.queries percent-encoded after the request query",
          test_url_queries_are_percent_encoded_after_the_request_query },
        { "no query at all is NULL", test_no_query_at_all_is_null },
        { "path and query are slices", test_path_and_query_are_slices },
        { "URL.headers then Basic Authorization", test_url_headers_then_basic_authorization },
        { "Basic replaces Authorization only", test_basic_replaces_authorization_only },
        { "secret property in a header is marked", test_secret_property_in_a_header_is_marked },
        { "bad header or long credentials are errors without secrets",
          test_bad_header_or_long_credentials_are_errors_without_secrets },
        { NULL, NULL }
    };
    int rc = cu_run("dest-http", tests);

    ferry_conf_free(conf);
    return rc;
}
