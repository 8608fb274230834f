/*
 * conf_fuzz.c: libFuzzer target for core/conf's loaders, each given the input as YAML
 * text: byte 0 modulo 3 picks the gateway configuration (ferry_conf_load_string_partial,
 * what `ferry check` runs), the connector configuration
 * (ferry_connector_conf_load_string) or one destination file
 * (ferry_conf_dest_from_text, validated against a fixed gateway configuration with the
 * tenants acme and other, as a file of its destinations_dir would be).
 *
 * Nothing is written. ${env:} and ${file:} references are live but reach little: the
 * name "fuzz-nowhere/f.yaml" makes relative paths point into a directory that does not
 * exist, and stdin is /dev/null, so ${file:/dev/stdin} cannot wait for input.
 *
 * Checks besides the sanitizers: every error has a message and a 1-based position (or
 * 0:0 for the file as a whole), the error count stays within its cap, a load that
 * fails leaves no result (the partial gateway load: has_errors instead), one that
 * succeeds reports no error; loading the same text twice gives the same verdict and
 * the same first error.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ferry/err.h>

#include "conf/conf.h"
#include "conf/connector-conf.h"
#include "conf/dest-source.h"
#include "dest/dest-int.h"
#ifdef FERRY_FUZZ_STANDALONE
#include "standalone.h"
#endif

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#define FUZZ_NAME "fuzz-nowhere/f.yaml"

static const char target_yaml[] =
    "tenants:\n"
    "  - { id: acme, token: t1 }\n"
    "  - { id: other, token: t2 }\n"
    "destinations:\n"
    "  - { Name: erp, Type: TCP, Address: 'tcp://erp.internal:3300', tenant: acme }\n";

static void
check_errs(const struct ferry_errlist *errs)
{
    CHECK(errs->count >= 0 && errs->count <= FERRY_ERRLIST_MAX && errs->dropped >= 0);
    for (int i = 0; i < errs->count; i++) {
        CHECK(errs->items[i].msg[0] != '\0');
        CHECK(errs->items[i].line >= 0 && errs->items[i].col >= 0);
        CHECK(errs->items[i].line > 0 || errs->items[i].col == 0);
    }
}

/* One load; "ok", "partial" (gateway: loaded with errors), "error"; first into err0. */
static const char *
load(unsigned mode, const char *text, size_t len, struct ferry_err *err0)
{
    static struct ferry_conf *target;
    struct ferry_errlist      errs, warnings;
    const char               *v;
    int                       rc;

    memset(&errs, 0, sizeof(errs));
    memset(&warnings, 0, sizeof(warnings));
    if (mode == 0) {
        struct ferry_conf *conf = NULL;

        rc = ferry_conf_load_string_partial(text, FUZZ_NAME, &conf, &errs);
        CHECK(rc == FERRY_OK || errs.count > 0 || rc == FERRY_ENOMEM);
        CHECK(rc != FERRY_OK || (conf != NULL && !conf->has_errors));
        v = rc == FERRY_OK ? "ok" : conf != NULL ? "partial" : "error";
        if (conf != NULL)
            check_errs(&conf->warnings);
        ferry_conf_free(conf);
    } else if (mode == 1) {
        struct ferry_connector_conf *cc = NULL;

        rc = ferry_connector_conf_load_string(text, FUZZ_NAME, &cc, &errs);
        CHECK((rc == FERRY_OK) == (cc != NULL));
        CHECK(rc == FERRY_OK || errs.count > 0 || rc == FERRY_ENOMEM);
        v = rc == FERRY_OK ? "ok" : "error";
        if (cc != NULL)
            check_errs(&cc->warnings);
        ferry_connector_conf_free(cc);
    } else {
        struct ferry_registry *reg = NULL;

        if (target == NULL)
            CHECK(ferry_conf_load_string(target_yaml, "target/ferry.yaml", &target, &errs)
                  == FERRY_OK);
        rc = ferry_conf_dest_from_text(text, len, FUZZ_NAME, target, &reg, &errs, &warnings);
        CHECK((rc == FERRY_OK) == (reg != NULL));
        CHECK(rc == FERRY_OK || errs.count > 0 || rc == FERRY_ENOMEM);
        v = rc == FERRY_OK ? "ok" : "error";
        ferry_registry_unref(reg);
        check_errs(&warnings);
    }
    check_errs(&errs);
    CHECK(strcmp(v, "ok") != 0 || errs.count == 0);
    memset(err0, 0, sizeof(*err0));
    if (errs.count > 0)
        *err0 = errs.items[0];
    return v;
}

static const char *
fuzz_verdict(const uint8_t *data, size_t size)
{
    static const char *const modes[] = { "gateway", "connector", "dest" };
    static char              verdict[64];
    struct ferry_err         e1, e2;
    char                    *text;
    const char              *v1, *v2;
    unsigned                 mode;

    if (size == 0)
        return "empty";
    mode = data[0] % 3;
    /* The loaders take C strings: a NUL ends the text, as it ends a file's (the
     * file reader refuses one; here it just ends the input). */
    if ((text = malloc(size)) == NULL)
        return "no-memory";
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    v1 = load(mode, text, strlen(text), &e1);
    v2 = load(mode, text, strlen(text), &e2);
    CHECK(strcmp(v1, v2) == 0 && e1.line == e2.line && e1.col == e2.col);
    CHECK(strcmp(e1.msg, e2.msg) == 0);
    free(text);
    snprintf(verdict, sizeof(verdict), "%s %s", modes[mode], v1);
    return verdict;
}

static void
quiet_stdin(void)
{
    int fd = open("/dev/null", O_RDONLY);

    if (fd >= 0 && fd != STDIN_FILENO) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }
}

#ifdef FERRY_FUZZ_STANDALONE
static const struct fuzz_expect fuzz_expects[] = {
    { "gw-minimal", "gateway ok" },
    { "gw-full", "gateway ok" },
    { "gw-unknown-key", "gateway partial" },
    { "gw-duplicate-key", "gateway partial" },
    { "gw-bad-yaml", "gateway error" },
    { "gw-anchors-aliases", "gateway partial" },
    { "gw-env-ref", "gateway partial" },
    /* Complete but for its CA file, which fuzz-nowhere/ does not have: every key is
     * read and checked before the file is looked for. */
    { "cn-ca-file-missing", "connector error" },
    { "cn-bad-system", "connector error" },
    { "cn-not-mapping", "connector error" },
    { "dest-tcp", "dest ok" },
    { "dest-http-basic", "dest ok" },
    { "dest-unknown-tenant", "dest error" },
    { "dest-empty", "dest error" },
    { "dest-file-ref-nowhere", "dest error" },
};

int
main(int argc, char **argv)
{
    quiet_stdin();
    return fuzz_run_seeds(argc, argv, fuzz_verdict, fuzz_expects,
                          sizeof(fuzz_expects) / sizeof(fuzz_expects[0]));
}
#else
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    quiet_stdin();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_verdict(data, size);
    return 0;
}
#endif
