/*
 * tunnel_hello_fuzz.c: libFuzzer target for the tunnel's registration messages, the
 * JSON both sides exchange after TLS and before HTTP/2 (core/tunnel/gateway.c,
 * replicas.c).
 *
 * Byte 0 even: the rest is a connector's registration as the gateway reads it
 * (gw_hello_check against a fixed configuration: tenants acme / token t1 and other /
 * token t2, 2 slots). Byte 0 odd: the rest is the gateway's reply as the connector
 * reads it: its replica list (replicas_parse), as in a reply or a pushed notice.
 *
 * Checks besides the sanitizers: a refused registration says why, in words from the
 * fixed set the gateway sends back; a list gives only valid entries (replica ids
 * that pass replica_id_ok, a port), no more than were sent, and a refused list has a
 * reason and no entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <ferry/err.h>

#include "conf/conf.h"
#include "tunnel/gateway.h"
#include "tunnel/replicas.h"
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
    "  - { id: other, token: t2 }\n";

static const char *const hello_whys[] = {
    "registration is not a JSON object", "out of memory",
    "registration misses tenant, token, location, connector, slot or systems",
    "unknown tenant", "bad token for tenant", "slot out of range", "too many systems",
    "systems must be \"host:port\" strings",
};

static const char *
hello(const uint8_t *d, size_t n)
{
    static struct ferry_conf *conf;
    struct ferry_errlist      errs;
    struct gw_handoff        *h;
    const char               *why = NULL;
    bool                      known = false;

    memset(&errs, 0, sizeof(errs));
    if (conf == NULL)
        CHECK(ferry_conf_load_string(gateway_yaml, "fuzz-nowhere/ferry.yaml", &conf, &errs)
              == FERRY_OK);
    if ((h = gw_hello_check(conf, 2, "127.0.0.1:1", d, n, &why)) != NULL) {
        gw_handoff_free(h);
        return "registered";
    }
    for (size_t i = 0; i < sizeof(hello_whys) / sizeof(hello_whys[0]); i++)
        known = known || (why != NULL && strcmp(why, hello_whys[i]) == 0);
    CHECK(known);
    return why;
}

static const char *
reply(const uint8_t *d, size_t n)
{
    static char         verdict[48];
    char                sender[REPLICA_ID_MAX + 1];
    struct replica_list list;
    unsigned            skipped = 0;
    const char         *why = NULL;
    int                 rc = replicas_parse((const char *)d, n, sender, &list, &skipped, &why);

    CHECK(strlen(sender) <= REPLICA_ID_MAX);
    if (rc == FERRY_ENOTFOUND) {
        CHECK(list.n == 0 && list.r == NULL);
        return "no-list";
    }
    if (rc != FERRY_OK) {
        CHECK(why != NULL && list.n == 0 && list.r == NULL);
        CHECK(rc == FERRY_EPROTO || rc == FERRY_ELIMIT || rc == FERRY_ENOMEM);
        return rc == FERRY_ELIMIT ? "too-big" : "bad-list";
    }
    CHECK(list.n + skipped <= REPLICAS_MAX);
    CHECK(skipped == 0 || why != NULL);
    for (size_t i = 0; i < list.n; i++) {
        CHECK(replica_id_ok(list.r[i].id) && list.r[i].port != 0);
        CHECK(list.r[i].host[0] != '\0');
    }
    snprintf(verdict, sizeof(verdict), "list %zu skipped %u", list.n, skipped);
    replicas_list_free(&list);
    return verdict;
}

static const char *
fuzz_verdict(const uint8_t *data, size_t size)
{
    if (size == 0)
        return "empty";
    return (data[0] & 1) ? reply(data + 1, size - 1) : hello(data + 1, size - 1);
}

#ifdef FERRY_FUZZ_STANDALONE
static const struct fuzz_expect fuzz_expects[] = {
    { "hello-good", "registered" },
    { "hello-good-follows", "registered" },
    { "hello-bad-token", "bad token for tenant" },
    { "hello-unknown-tenant", "unknown tenant" },
    { "hello-slot-range", "slot out of range" },
    { "hello-slot-negative", "slot out of range" },
    { "hello-missing-systems", "registration misses tenant, token, location, connector, "
                               "slot or systems" },
    { "hello-system-number", "systems must be \"host:port\" strings" },
    { "hello-not-json", "registration is not a JSON object" },
    { "hello-array", "registration is not a JSON object" },
    { "hello-nul-in-string", "registration is not a JSON object" },
    { "reply-ok-list", "list 2 skipped 0" },
    { "reply-bad-entries", "list 1 skipped 3" },
    { "reply-no-list", "no-list" },
    { "reply-refused", "no-list" },
    { "reply-list-not-array", "bad-list" },
    { "reply-duplicate-key", "bad-list" },
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
