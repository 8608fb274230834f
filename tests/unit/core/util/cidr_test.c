/*
 * cidr_test.c: client source rules (core/util/cidr.c): parsing CIDRs and bare
 * addresses, refusing bad ones with a reason, and matching IPv4, IPv6 and IPv4-mapped
 * IPv6 peers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cu.h"
#include "util/cidr.h"

static struct sockaddr_storage
peer(const char *ip)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &s4->sin_addr);
    }
    return ss;
}

static bool
matches(const char *rule, const char *ip)
{
    struct ferry_cidr       r;
    struct sockaddr_storage ss = peer(ip);

    CU_ASSERT_EQUAL_FATAL(ferry_cidr_parse(rule, &r, NULL), FERRY_OK);
    return ferry_cidr_match(&r, 1, (struct sockaddr *)&ss);
}

static void
test_ipv4_prefixes_match_inside_only(void)
{
    CU_ASSERT_TRUE(matches("10.0.0.0/8", "10.255.1.2"));
    CU_ASSERT_FALSE(matches("10.0.0.0/8", "11.0.0.1"));
    CU_ASSERT_TRUE(matches("192.168.4.0/22", "192.168.7.255"));
    CU_ASSERT_FALSE(matches("192.168.4.0/22", "192.168.8.0"));
    CU_ASSERT_TRUE(matches("0.0.0.0/0", "203.0.113.9"));
}

static void
test_bare_address_is_one_host(void)
{
    CU_ASSERT_TRUE(matches("127.0.0.1", "127.0.0.1"));
    CU_ASSERT_FALSE(matches("127.0.0.1", "127.0.0.2"));
    CU_ASSERT_TRUE(matches("::1", "::1"));
    CU_ASSERT_FALSE(matches("::1", "::2"));
}

static void
test_ipv6_prefixes(void)
{
    CU_ASSERT_TRUE(matches("::1/128", "::1"));
    CU_ASSERT_TRUE(matches("2001:db8::/32", "2001:db8:ffff::1"));
    CU_ASSERT_FALSE(matches("2001:db8::/32", "2001:db9::1"));
    CU_ASSERT_TRUE(matches("fe80::/10", "febf::1"));
    CU_ASSERT_FALSE(matches("fe80::/10", "fec0::1"));
}

static void
test_mapped_ipv4_peer_matches_ipv4_rules_only(void)
{
    CU_ASSERT_TRUE(matches("127.0.0.0/8", "::ffff:127.0.0.1"));
    CU_ASSERT_FALSE(matches("10.0.0.0/8", "::ffff:127.0.0.1"));
    /* "any IPv6" is not "any client" */
    CU_ASSERT_FALSE(matches("::/0", "::ffff:127.0.0.1"));
    CU_ASSERT_FALSE(matches("::/0", "127.0.0.1"));
    CU_ASSERT_FALSE(matches("127.0.0.0/8", "::1"));
}

static void
test_list_matches_any_rule(void)
{
    struct ferry_cidr       r[2];
    struct sockaddr_storage a = peer("10.1.2.3"), b = peer("::1"), x = peer("8.8.8.8");

    CU_ASSERT_EQUAL(ferry_cidr_parse("10.0.0.0/8", &r[0], NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_cidr_parse("::1/128", &r[1], NULL), FERRY_OK);
    CU_ASSERT_TRUE(ferry_cidr_match(r, 2, (struct sockaddr *)&a));
    CU_ASSERT_TRUE(ferry_cidr_match(r, 2, (struct sockaddr *)&b));
    CU_ASSERT_FALSE(ferry_cidr_match(r, 2, (struct sockaddr *)&x));
    CU_ASSERT_FALSE(ferry_cidr_match(r, 0, (struct sockaddr *)&a));
}

static void
test_bad_rules_are_refused_with_a_reason(void)
{
    static const char *const bad[] = {
        "", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/08", "10.0.0.0/-1",
        "10.0.0/8", "host.example", "10.0.0.0/8/8", "1.2.3.4 ", "::1/1a",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    };
    struct ferry_cidr r;
    struct ferry_err  err;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        CU_ASSERT_EQUAL(ferry_cidr_parse(bad[i], &r, &err), FERRY_EINVAL);
        CU_ASSERT(err.msg[0] != '\0');
    }
}

static void
test_host_bits_are_refused_with_the_network_suggested(void)
{
    struct ferry_cidr r;
    struct ferry_err  err = {0};

    CU_ASSERT_EQUAL(ferry_cidr_parse("10.1.2.3/8", &r, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "did you mean '10.0.0.0/8'"));
    memset(&err, 0, sizeof(err));
    CU_ASSERT_EQUAL(ferry_cidr_parse("2001:db8::1/32", &r, &err), FERRY_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "did you mean '2001:db8::/32'"));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "ipv4 prefixes match inside only", test_ipv4_prefixes_match_inside_only },
        { "a bare address is one host", test_bare_address_is_one_host },
        { "ipv6 prefixes", test_ipv6_prefixes },
        { "a mapped ipv4 peer matches ipv4 rules only",
          test_mapped_ipv4_peer_matches_ipv4_rules_only },
        { "a list matches any of its rules", test_list_matches_any_rule },
        { "bad rules are refused with a reason", test_bad_rules_are_refused_with_a_reason },
        { "host bits are refused, the network suggested",
          test_host_bits_are_refused_with_the_network_suggested },
        { NULL, NULL },
    };

    return cu_run("util/cidr", tests);
}
