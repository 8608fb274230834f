/*
 * elf_abi_test.c: reading a plugin's ABI version from its file (core/plugin/elf-abi.c)
 * never trusts the file: what is not a native ELF shared object with an exported
 * ferry_plugin says "I cannot tell" (-1), truncated or corrupted ones included. The
 * positive path is tests/integration/plugin_abi.sh (real plugins, 1.1 to 1.4).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cu.h"
#include "plugin/loader.h"

static uint8_t *self;         /* this test's own executable: an ELF without ferry_plugin */
static size_t   self_len;

static void
load_self(void)
{
    FILE *fp = fopen("/proc/self/exe", "rb");
    long  n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    CU_ASSERT_FATAL(n > 64);
    self = malloc((size_t)n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(self);
    CU_ASSERT_EQUAL_FATAL(fread(self, 1, (size_t)n, fp), (size_t)n);
    self_len = (size_t)n;
    fclose(fp);
}

static int
abi_of_bytes(const uint8_t *b, size_t n)
{
    char              path[] = "/tmp/ferry-elf-abi-XXXXXX";
    int               fd = mkstemp(path), rc;
    struct plugin_abi abi;

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(write(fd, b, n), (ssize_t)n);
    close(fd);
    rc = ferry_plugin_file_abi(path, &abi);
    unlink(path);
    return rc;
}

static void
test_not_a_file_or_not_elf_is_unknown(void)
{
    struct plugin_abi abi;
    static const uint8_t junk[] = "#!/bin/sh\necho not a plugin\n";

    CU_ASSERT_EQUAL(ferry_plugin_file_abi("/nonexistent/ferry_x.so", &abi), -1);
    CU_ASSERT_EQUAL(ferry_plugin_file_abi("/tmp", &abi), -1);
    CU_ASSERT_EQUAL(abi_of_bytes(junk, 0), -1);
    CU_ASSERT_EQUAL(abi_of_bytes(junk, sizeof(junk)), -1);
}

static void
test_elf_without_descriptor_is_unknown(void)
{
    if (self == NULL)
        load_self();
    CU_ASSERT_EQUAL(abi_of_bytes(self, self_len), -1);
}

/* Every cut of the headers, and the tables' offsets and counts bent: no read outside
 * the file (ASan builds would stop here), never a made-up answer. */
static void
test_truncated_or_bent_elf_is_unknown(void)
{
    uint8_t *b;
    unsigned seed = 12345;

    if (self == NULL)
        load_self();
    for (size_t n = 0; n < 256 && n < self_len; n++)
        CU_ASSERT_EQUAL(abi_of_bytes(self, n), -1);
    for (size_t n = 256; n < self_len; n += self_len / 64 + 1)
        CU_ASSERT_EQUAL(abi_of_bytes(self, n), -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b = malloc(self_len));
    for (int round = 0; round < 400; round++) {
        size_t at = 16, span = 48;          /* e_type .. e_shstrndx */

        if (round % 2 == 1) {               /* or the section headers: offsets, sizes, links */
            uint64_t shoff = 0;

            memcpy(&shoff, self + (sizeof(void *) == 8 ? 0x28 : 0x20), sizeof(void *));
            if (shoff >= self_len)
                continue;
            at = (size_t)shoff;
            span = self_len - at;
        }
        memcpy(b, self, self_len);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            b[at + (seed >> 8) % span] = (uint8_t)(seed >> 16);
        }
        CU_ASSERT_EQUAL(abi_of_bytes(b, self_len), -1);
    }
    free(b);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "not a file, or not ELF: unknown", test_not_a_file_or_not_elf_is_unknown },
        { "ELF without ferry_plugin: unknown", test_elf_without_descriptor_is_unknown },
        { "truncated or bent ELF: unknown", test_truncated_or_bent_elf_is_unknown },
        { NULL, NULL },
    };
    int rc = cu_run("elf_abi", tests);

    free(self);
    return rc;
}
