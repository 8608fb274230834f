/*
 * proxy_fuzz.c: libFuzzer target for core/util's PROXY protocol parser (util/proxy.h).
 *
 * Every input is parsed as a v1 and as a v2 header. Besides "no crash, no sanitizer
 * report" it checks what proxy.h promises: a header is never longer than the bytes
 * given nor than its version's bound; "need more" is never the answer once the bound
 * is reached; a refusal is FERRY_EPROTO with a reason; a non-local header gives an
 * IPv4 or IPv6 address; and the same bytes given one at a time never get a different
 * verdict (a prefix is "need more" or the same refusal, the whole the same header).
 *
 * Built with -DFERRY_FUZZ_STANDALONE it is a plain program over the files named on its
 * command line; tests/unit/core/util/proxy_corpus_test.c includes it with
 * -DPROXY_FUZZ_NO_ENTRY to run the seeds (corpus/proxy/) in every build.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>

#include "util/proxy.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* One version over the input, checked; the verdict as "ok", "local", "more" or the
 * reason. */
static const char *
proxy_fuzz_version(const uint8_t *data, size_t size, int version)
{
    struct ferry_proxy_hdr h, hp;
    const char            *why = NULL, *whyp;
    size_t                 bound = version == 1 ? FERRY_PROXY_V1_MAX : FERRY_PROXY_MAX;
    int                    rc = ferry_proxy_parse(data, size, version, &h, &why);

    if (rc == 0) {
        CHECK(size < bound);
        return "more";
    }
    if (rc < 0) {
        CHECK(rc == FERRY_EPROTO && why != NULL && why[0] != '\0');
    } else {
        CHECK(rc == 1 && h.len > 0 && h.len <= size && h.len <= bound);
        CHECK(h.local || (h.src.ss_family == AF_INET && h.src_len == sizeof(struct sockaddr_in))
              || (h.src.ss_family == AF_INET6 && h.src_len == sizeof(struct sockaddr_in6)));
    }
    /* Byte by byte, as a slow client sends it: every prefix is "more" or the same
     * verdict (a refusal may come early, a header only once it is whole). */
    for (size_t k = 1; k < size && k <= bound; k++) {
        int rp = ferry_proxy_parse(data, k, version, &hp, &whyp);

        if (rp == 0)
            continue;
        if (rc < 0) {
            CHECK(rp < 0);              /* refused early: for a reason the whole has too? */
            break;
        }
        CHECK(rp == 1 && hp.len == h.len && hp.local == h.local);
        CHECK(memcmp(&hp.src, &h.src, sizeof(h.src)) == 0);
        break;
    }
    if (rc < 0)
        return why;
    return h.local ? "local" : "ok";
}

/* The verdict on one input, of the version its first byte suggests ('P': v1). */
static const char *
proxy_fuzz_one(const uint8_t *data, size_t size)
{
    const char *v1 = proxy_fuzz_version(data, size, 1);
    const char *v2 = proxy_fuzz_version(data, size, 2);

    /* The two signatures differ in their first byte: one input is never both. */
    CHECK(!(strcmp(v1, "ok") == 0 || strcmp(v1, "local") == 0) ||
          !(strcmp(v2, "ok") == 0 || strcmp(v2, "local") == 0));
    return size > 0 && data[0] == 'P' ? v1 : v2;
}

#ifndef PROXY_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proxy_fuzz_one(data, size);
    return 0;
}
#endif

#ifdef FERRY_FUZZ_STANDALONE
int
main(int argc, char **argv)
{
    static uint8_t buf[FERRY_PROXY_MAX + 64];

    for (int i = 1; i < argc; i++) {
        FILE  *fp = fopen(argv[i], "rb");
        size_t n;

        if (fp == NULL) {
            perror(argv[i]);
            return 1;
        }
        n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        printf("%s %s (%zu bytes)\n", proxy_fuzz_one(buf, n), argv[i], n);
    }
    return 0;
}
#endif
