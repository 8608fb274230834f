/*
 * addr_test.c: socket addresses as text (core/util/addr.c): listen addresses (IPv4,
 * [IPv6], *, and the forms we refuse: names, missing or bad ports, bare IPv6) and
 * peers formatted for logs.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cu.h"
#include "util/addr.h"

static void
test_ipv4_with_port(void)
{
    struct sockaddr_storage ss;
    socklen_t               len = 0;
    struct sockaddr_in     *s4 = (struct sockaddr_in *)&ss;

    CU_ASSERT_EQUAL(ferry_addr_parse("127.0.0.1:3300", &ss, &len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(s4->sin_family, AF_INET);
    CU_ASSERT_EQUAL(ntohs(s4->sin_port), 3300);
    CU_ASSERT_EQUAL(ntohl(s4->sin_addr.s_addr), 0x7f000001);
    CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in));
    CU_ASSERT_EQUAL(ferry_addr_parse("0.0.0.0:65535", &ss, &len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(s4->sin_addr.s_addr, htonl(INADDR_ANY));
    CU_ASSERT_EQUAL(ntohs(s4->sin_port), 65535);
}

static void
test_star_means_every_ipv4_address(void)
{
    struct sockaddr_storage ss;
    socklen_t               len;
    struct sockaddr_in     *s4 = (struct sockaddr_in *)&ss;

    CU_ASSERT_EQUAL(ferry_addr_parse("*:3300", &ss, &len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(s4->sin_family, AF_INET);
    CU_ASSERT_EQUAL(s4->sin_addr.s_addr, htonl(INADDR_ANY));
    CU_ASSERT_EQUAL(ntohs(s4->sin_port), 3300);
}

static void
test_ipv6_in_brackets(void)
{
    struct sockaddr_storage ss;
    socklen_t               len;
    struct sockaddr_in6    *s6 = (struct sockaddr_in6 *)&ss;

    CU_ASSERT_EQUAL(ferry_addr_parse("[::1]:3300", &ss, &len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(s6->sin6_family, AF_INET6);
    CU_ASSERT_EQUAL(ntohs(s6->sin6_port), 3300);
    CU_ASSERT_TRUE(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
    CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in6));
    CU_ASSERT_EQUAL(ferry_addr_parse("[::]:80", &ss, &len, NULL), FERRY_OK);
    CU_ASSERT_TRUE(IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr));
}

static void
test_bad_addresses_are_refused_with_a_reason(void)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        { "127.0.0.1", "want host:port" },
        { "127.0.0.1:", "port must be 1..65535" },
        { "127.0.0.1:0", "port must be 1..65535" },
        { "127.0.0.1:65536", "port must be 1..65535" },
        { "127.0.0.1:80x", "port must be 1..65535" },
        { "localhost:80", "host must be a numeric" },
        { "256.0.0.1:80", "host must be a numeric" },
        { "::1:80", "write IPv6 addresses in brackets" },
        { "[::1]80", "want [ipv6]:port" },
        { "[zz]:80", "bad IPv6 address" },
        { "[]:80", "bad IPv6 address" },
        { ":80", "missing host" },
        { "", "empty address" },
    };
    struct sockaddr_storage ss;
    socklen_t               len;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ferry_err err = {0};

        CU_ASSERT_EQUAL(ferry_addr_parse(bad[i].text, &ss, &len, &err), FERRY_EINVAL);
        CU_ASSERT_EQUAL(err.code, FERRY_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad[i].why));
    }
}

static void
test_format_writes_v4_and_bracketed_v6(void)
{
    struct sockaddr_storage ss;
    socklen_t               len = 0;
    char                    buf[64], small[6];

    CU_ASSERT_EQUAL_FATAL(ferry_addr_parse("10.0.0.5:41522", &ss, &len, NULL), FERRY_OK);
    ferry_addr_format((struct sockaddr *)&ss, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "10.0.0.5:41522");
    CU_ASSERT_EQUAL_FATAL(ferry_addr_parse("[::1]:80", &ss, &len, NULL), FERRY_OK);
    ferry_addr_format((struct sockaddr *)&ss, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "[::1]:80");
    ferry_addr_format((struct sockaddr *)&ss, small, sizeof(small));
    CU_ASSERT_STRING_EQUAL(small, "[::1]");      /* truncated, still terminated */
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "IPv4 with port", test_ipv4_with_port },
        { "* means every IPv4 address", test_star_means_every_ipv4_address },
        { "IPv6 in brackets", test_ipv6_in_brackets },
        { "bad addresses are refused with a reason", test_bad_addresses_are_refused_with_a_reason },
        { "format writes v4 and bracketed v6", test_format_writes_v4_and_bracketed_v6 },
        { NULL, NULL }
    };

    return cu_run("addr", tests);
}
