/*
 * standalone.h: for a fuzz target built with -DFERRY_FUZZ_STANDALONE, a plain program
 * (any compiler, no libFuzzer) that runs the target's checks over the seed files named
 * on its command line, as ctest does in every build (tests/fuzz/seeds.cmake).
 *
 * The target's main() calls fuzz_run_seeds() with its verdict function (its checks,
 * then a short word for what the input got) and the verdict each named seed must get:
 * a seed whose verdict drifts (a "valid" seed no longer valid) fails the run, so the
 * corpus keeps covering what its names say. Every named seed must be given.
 */
#ifndef FERRY_FUZZ_STANDALONE_H
#define FERRY_FUZZ_STANDALONE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fuzz_expect {
    const char *seed;           /* file name inside corpus/<target>/ */
    const char *verdict;
};

#define FUZZ_STANDALONE_MAX_BYTES (1u << 20)

static int
fuzz_run_seeds(int argc, char **argv, const char *(*fuzz_verdict)(const uint8_t *, size_t),
               const struct fuzz_expect *fuzz_expects, size_t fuzz_expects_count)
{
    uint8_t *buf = malloc(FUZZ_STANDALONE_MAX_BYTES);
    size_t   matched = 0;
    int      bad = 0;

    if (buf == NULL)
        return 1;
    for (int i = 1; i < argc; i++) {
        FILE       *fp = fopen(argv[i], "rb");
        const char *base = strrchr(argv[i], '/');
        const char *got;
        size_t      n;

        if (fp == NULL) {
            perror(argv[i]);
            free(buf);
            return 1;
        }
        n = fread(buf, 1, FUZZ_STANDALONE_MAX_BYTES, fp);
        fclose(fp);
        base = base != NULL ? base + 1 : argv[i];
        got = fuzz_verdict(buf, n);
        printf("%s %s (%zu bytes)\n", got, argv[i], n);
        for (size_t k = 0; k < fuzz_expects_count; k++) {
            if (strcmp(fuzz_expects[k].seed, base) != 0)
                continue;
            matched++;
            if (strcmp(fuzz_expects[k].verdict, got) != 0) {
                fprintf(stderr, "%s: wanted '%s', got '%s'\n", argv[i],
                        fuzz_expects[k].verdict, got);
                bad = 1;
            }
        }
    }
    free(buf);
    if (matched != fuzz_expects_count) {
        fprintf(stderr, "%zu of %zu named seeds given\n", matched, fuzz_expects_count);
        bad = 1;
    }
    return bad;
}

#endif
