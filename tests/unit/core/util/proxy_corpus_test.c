/*
 * proxy_corpus_test.c: the PROXY protocol fuzz seeds (tests/fuzz/corpus/proxy/) in
 * every build, without libFuzzer: each seed goes through the fuzz target's own checks
 * (tests/fuzz/proxy_fuzz.c, included) and must get its verdict, so a seed that stops
 * proving its case is noticed. Also the addresses the good headers carry.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROXY_FUZZ_NO_ENTRY
#include "../fuzz/proxy_fuzz.c"

#include "cu.h"

#define CORPUS_DIR "../fuzz/corpus/proxy"   /* ctest runs unit tests in tests/unit */

struct expect {
    const char *seed;
    const char *verdict;
};

static const struct expect expects[] = {
    { "v1-tcp4", "ok" },
    { "v1-tcp6", "ok" },
    { "v1-unknown", "local" },
    { "v1-unknown-fields", "local" },
    { "v1-max", "ok" },
    { "v1-too-long", "too-long" },
    { "v1-bad-port", "bad-port" },
    { "v1-lead-zero", "bad-port" },
    { "v1-family-mismatch", "bad-address" },
    { "v1-double-space", "bad-fields" },
    { "v1-bare-lf", "bad-character" },
    { "v1-partial", "more" },
    { "v1-lowercase", "bad-signature" },
    { "v2-tcp4", "ok" },
    { "v2-tcp6", "ok" },
    { "v2-tcp4-tlv", "ok" },
    { "v2-local", "local" },
    { "v2-unix", "local" },
    { "v2-unspec", "local" },
    { "v2-udp4", "bad-protocol" },
    { "v2-short", "bad-length" },
    { "v2-too-long", "too-long" },
    { "v2-bad-version", "bad-version" },
    { "v2-bad-command", "bad-command" },
    { "v2-partial", "more" },
    { "v2-bad-signature", "bad-signature" },
};

static size_t
seed(const char *name, uint8_t *buf, size_t cap)
{
    char   path[512];
    FILE  *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, name);
    if ((fp = fopen(path, "rb")) == NULL)
        return 0;
    n = fread(buf, 1, cap, fp);
    fclose(fp);
    return n;
}

static void
test_every_seed_gets_its_verdict(void)
{
    DIR           *dir = opendir(CORPUS_DIR);
    struct dirent *de;
    size_t         seeds = 0, expected = 0;
    static uint8_t buf[FERRY_PROXY_MAX + 64];

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    while ((de = readdir(dir)) != NULL) {
        size_t      n;
        const char *got;

        if (de->d_name[0] == '.')
            continue;
        n = seed(de->d_name, buf, sizeof(buf));
        seeds++;
        got = proxy_fuzz_one(buf, n);
        for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
            if (strcmp(expects[i].seed, de->d_name) != 0)
                continue;
            expected++;
            if (strcmp(got, expects[i].verdict) != 0)
                fprintf(stderr, "\n    %s: wanted %s, got %s\n", de->d_name,
                        expects[i].verdict, got);
            CU_ASSERT_STRING_EQUAL(got, expects[i].verdict);
        }
    }
    closedir(dir);
    CU_ASSERT(seeds >= sizeof(expects) / sizeof(expects[0]));
    CU_ASSERT_EQUAL(expected, sizeof(expects) / sizeof(expects[0]));
}

static void
test_headers_give_the_client_and_leave_the_rest(void)
{
    static uint8_t          buf[FERRY_PROXY_MAX + 64];
    struct ferry_proxy_hdr  h;
    struct sockaddr_in     *s4 = (struct sockaddr_in *)&h.src;
    struct sockaddr_in6    *s6 = (struct sockaddr_in6 *)&h.src;
    char                    text[INET6_ADDRSTRLEN];
    size_t                  n;

    n = seed("v1-tcp4", buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(ferry_proxy_parse(buf, n, 1, &h, NULL), 1);
    CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text)), "192.0.2.10");
    CU_ASSERT_EQUAL(ntohs(s4->sin_port), 51234);
    CU_ASSERT_EQUAL(memcmp(buf + h.len, "GET / ", 6), 0);   /* the client's bytes */
    n = seed("v2-tcp4", buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(ferry_proxy_parse(buf, n, 2, &h, NULL), 1);
    CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text)), "203.0.113.5");
    CU_ASSERT_EQUAL(ntohs(s4->sin_port), 44444);
    CU_ASSERT_EQUAL(h.len, 28);
    CU_ASSERT_EQUAL(memcmp(buf + h.len, "GET / ", 6), 0);
    n = seed("v2-tcp6", buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(ferry_proxy_parse(buf, n, 2, &h, NULL), 1);
    CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text)), "2001:db8::5");
    n = seed("v2-tcp4-tlv", buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(ferry_proxy_parse(buf, n, 2, &h, NULL), 1);
    CU_ASSERT_EQUAL(h.len, n);          /* the TLV belongs to the header */
}

static void
test_a_listener_takes_only_its_version(void)
{
    static uint8_t         buf[FERRY_PROXY_MAX + 64];
    struct ferry_proxy_hdr h;
    const char            *why = NULL;
    size_t                 n = seed("v1-tcp4", buf, sizeof(buf));

    CU_ASSERT_EQUAL(ferry_proxy_parse(buf, n, 2, &h, &why), FERRY_EPROTO);
    CU_ASSERT_STRING_EQUAL(why, "bad-signature");
    n = seed("v2-tcp4", buf, sizeof(buf));
    CU_ASSERT_EQUAL(ferry_proxy_parse(buf, n, 1, &h, &why), FERRY_EPROTO);
    /* a plain request where a header must be */
    CU_ASSERT_EQUAL(ferry_proxy_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, 1, &h, &why),
                    FERRY_EPROTO);
    CU_ASSERT_EQUAL(ferry_proxy_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, 2, &h, &why),
                    FERRY_EPROTO);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "every proxy seed gets its verdict", test_every_seed_gets_its_verdict },
        { "headers give the client and leave the rest",
          test_headers_give_the_client_and_leave_the_rest },
        { "a listener takes only its version", test_a_listener_takes_only_its_version },
        { NULL, NULL },
    };

    return cu_run("util/proxy_corpus", tests);
}
