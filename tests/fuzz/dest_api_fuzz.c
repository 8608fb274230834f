/*
 * dest_api_fuzz.c: libFuzzer target for the destination API's request bodies: what
 * POST and PUT /subaccountDestinations do with their JSON (core/admin/dest-change.c,
 * admin_dest_change_parse: parse, check each destination like a file, render its
 * destinations_dir file). The HTTP around it, the writes and the reload are not
 * called.
 *
 * Byte 0: bit 0 set, PUT (update) rather than POST (create); bit 1, the caller is
 * tenant `other` rather than `acme`; bit 2, an If-Match revision came with it. The rest
 * is the body. The gateway's configuration is fixed: tenants acme and other, the
 * inline destination erp (acme), destinations_dir a directory that does not exist.
 *
 * Checks besides the sanitizers: a refusal has a status the API answers with and a
 * message; an accepted body gives 1..64 destinations, each rendered as a file that the
 * loader reads back (ferry_conf_dest_from_text) to a destination of the same name and
 * of the caller's tenant: what the API writes is what the gateway will load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>

#include "admin/admin-int.h"
#include "conf/conf.h"
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

static const char gateway_yaml[] =
    "tenants:\n"
    "  - { id: acme, token: t1 }\n"
    "  - { id: other, token: t2 }\n"
    "destinations_dir: /nonexistent-ferry-fuzz/destinations\n"
    "destinations:\n"
    "  - { Name: erp, Type: TCP, Address: 'tcp://erp.internal:3300', tenant: acme }\n";

static const struct ferry_conf *
gateway(void)
{
    static struct ferry_conf *conf;
    struct ferry_errlist      errs;

    /* A partial load: the missing destinations_dir is an error, the rest loads. */
    memset(&errs, 0, sizeof(errs));
    if (conf == NULL)
        ferry_conf_load_string_partial(gateway_yaml, "fuzz-nowhere/ferry.yaml", &conf, &errs);
    CHECK(conf != NULL && conf->registry != NULL);
    return conf;
}

/* The file the API would write, read back as the loader reads destinations_dir. */
static void
check_file(const struct ferry_conf *conf, const char *tenant, const char *name,
           const char *text, size_t len)
{
    struct ferry_errlist     errs, warnings;
    struct ferry_registry   *reg = NULL;
    const struct ferry_dest *d;

    memset(&errs, 0, sizeof(errs));
    memset(&warnings, 0, sizeof(warnings));
    CHECK(name != NULL && name[0] != '\0' && text != NULL && strlen(text) == len);
    if (ferry_conf_dest_from_text(text, len, "fuzz-nowhere/d.yaml", conf, &reg, &errs,
                                  &warnings) != FERRY_OK) {
        fprintf(stderr, "rendered %s does not load back: %s\n%s\n", name,
                errs.count > 0 ? errs.items[0].msg : "?", text);
        CHECK(!"the rendered file loads back");
    }
    CHECK((d = ferry_registry_find(reg, name)) != NULL);
    CHECK(strcmp(d->tenant, tenant) == 0);
    ferry_registry_unref(reg);
}

static const char *
fuzz_verdict(const uint8_t *data, size_t size)
{
    const struct ferry_conf *conf = gateway();
    static char              verdict[32];
    struct admin_refusal     rf;
    struct dest_change      *ch = NULL;
    const char              *tenant;
    bool                     create;
    int                      rc;

    if (size == 0)
        return "empty";
    create = (data[0] & 1) == 0;
    tenant = (data[0] & 2) ? "other" : "acme";
    rc = admin_dest_change_parse(conf, tenant, (data[0] & 8) != 0, (const char *)data + 1,
                                 size - 1, create,
                                 (data[0] & 4) ? 7 : 0, &ch, &rf);
    if (rc != 0) {
        CHECK(ch == NULL && rf.msg[0] != '\0');
        CHECK(rf.status == 400 || rf.status == 403 || rf.status == 409 || rf.status == 500);
        snprintf(verdict, sizeof(verdict), "%d", rf.status);
        return verdict;
    }
    /* 0: an update of names the caller has not (SAP answers {"Count": 0}). */
    CHECK(ch != NULL && admin_dest_change_count(ch) <= 64);
    CHECK(create ? admin_dest_change_count(ch) >= 1 : true);
    for (size_t i = 0; i < admin_dest_change_count(ch); i++) {
        const char *name, *text;
        size_t      len;

        text = admin_dest_change_file(ch, i, &name, &len);
        check_file(conf, tenant, name, text, len);
    }
    snprintf(verdict, sizeof(verdict), "%s %zu", create ? "created" : "updated",
             admin_dest_change_count(ch));
    admin_dest_change_free(ch);
    return verdict;
}

#ifdef FERRY_FUZZ_STANDALONE
static const struct fuzz_expect fuzz_expects[] = {
    { "post-tcp", "created 1" },
    { "post-http-basic", "created 1" },
    { "post-array", "created 2" },
    { "post-numbers-bools", "created 1" },
    { "post-dollar-brace", "created 1" },
    { "post-unicode", "created 1" },
    { "post-exists", "409" },
    { "post-other-tenant", "403" },
    { "post-keystore-path", "403" },
    { "post-not-json", "400" },
    { "post-duplicate-key", "400" },
    { "post-empty-array", "400" },
    { "post-empty-object", "400" },
    { "post-twice-in-body", "400" },
    { "post-nested-object", "400" },
    { "post-control-key", "400" },
    { "post-dot-name", "400" },
    { "post-bad-type", "400" },
    { "put-inline", "409" },
    { "put-unknown", "updated 0" },
    { "put-if-match-array", "400" },
    { "post-empty-body", "400" },
};

int
main(int argc, char **argv)
{
    return fuzz_run_seeds(argc, argv, fuzz_verdict, fuzz_expects,
                          sizeof(fuzz_expects) / sizeof(fuzz_expects[0]));
}
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_verdict(data, size);
    return 0;
}
#endif
