/*
 * replicas_test.c: the replica list on the tunnel (core/tunnel/replicas.c): what a
 * connector accepts from a gateway, what a gateway sends, and which link sets the
 * connector keeps, adds and drops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu.h"
#include "tunnel/gateway.h"
#include "tunnel/replicas.h"

static int
parse(const char *json, char *sender, struct replica_list *l, unsigned *skipped,
      const char **why)
{
    return replicas_parse(json, strlen(json), sender, l, skipped, why);
}

static void
test_list_parses_with_sender_and_order(void)
{
    struct replica_list l;
    char                sender[REPLICA_ID_MAX + 1];
    unsigned            skipped;
    const char         *why;

    CU_ASSERT_EQUAL(parse("{\"replica\":\"gw-a\",\"replicas\":[{\"id\":\"gw-a\",\"tunnel\":"
                          "\"10.0.0.1:8443\"},{\"id\":\"gw-b\",\"tunnel\":\"[fd00::2]:8443\"},"
                          "{\"id\":\"gw-c\",\"tunnel\":\"gw-c.ferry.svc:9443\",\"slots\":4}]}",
                          sender, &l, &skipped, &why), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(sender, "gw-a");
    CU_ASSERT_EQUAL(skipped, 0);
    CU_ASSERT_PTR_NULL(why);
    CU_ASSERT_EQUAL_FATAL(l.n, 3);
    CU_ASSERT_STRING_EQUAL(l.r[0].host, "10.0.0.1");
    CU_ASSERT_EQUAL(l.r[0].port, 8443);
    CU_ASSERT_STRING_EQUAL(l.r[1].host, "fd00::2");
    CU_ASSERT_STRING_EQUAL(l.r[1].tunnel, "[fd00::2]:8443");
    CU_ASSERT_STRING_EQUAL(l.r[2].id, "gw-c");
    CU_ASSERT_STRING_EQUAL(l.r[2].host, "gw-c.ferry.svc");
    CU_ASSERT_EQUAL(l.r[2].port, 9443);
    replicas_list_free(&l);

    /* An empty list is a list (every replica gone): not the same as no list. */
    CU_ASSERT_EQUAL(parse("{\"replicas\":[]}", sender, &l, &skipped, &why), FERRY_OK);
    CU_ASSERT_EQUAL(l.n, 0);
    CU_ASSERT_STRING_EQUAL(sender, "");
    CU_ASSERT_EQUAL(parse("{\"ok\":true,\"slots\":2,\"replica\":\"x\"}", sender, &l, &skipped,
                          &why), FERRY_ENOTFOUND);
    CU_ASSERT_STRING_EQUAL(sender, "x");
}

static void
test_bad_json_and_shapes_are_refused_whole(void)
{
    struct replica_list l;
    char                sender[REPLICA_ID_MAX + 1];
    unsigned            skipped;
    const char         *why;

    CU_ASSERT_EQUAL(parse("{\"replicas\":[", sender, &l, &skipped, &why), FERRY_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(why);
    CU_ASSERT_PTR_NULL(l.r);
    CU_ASSERT_EQUAL(parse("[]", sender, &l, &skipped, &why), FERRY_EPROTO);
    CU_ASSERT_EQUAL(parse("", sender, &l, &skipped, &why), FERRY_EPROTO);
    CU_ASSERT_EQUAL(parse("{\"replicas\":{\"id\":\"a\"}}", sender, &l, &skipped, &why),
                    FERRY_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not an array"));
    /* Two "replicas" keys: which one would win is the parser's whim. */
    CU_ASSERT_EQUAL(parse("{\"replicas\":[],\"replicas\":[]}", sender, &l, &skipped, &why),
                    FERRY_EPROTO);
}

static void
test_too_many_or_too_large_is_a_limit(void)
{
    struct replica_list l;
    char                sender[REPLICA_ID_MAX + 1];
    unsigned            skipped;
    const char         *why;
    char               *big = malloc(REPLICAS_JSON_MAX + 64);
    size_t              n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    /* 257 tiny entries fit the byte cap but not the count. */
    n = (size_t)snprintf(big, 32, "{\"replicas\":[");
    for (int i = 0; i <= REPLICAS_MAX; i++)
        n += (size_t)snprintf(big + n, 64, "%s{\"id\":\"%d\",\"tunnel\":\"a:1\"}",
                              i > 0 ? "," : "", i);
    memcpy(big + n, "]}", 3);
    CU_ASSERT(n + 2 < REPLICAS_JSON_MAX);
    CU_ASSERT_EQUAL(parse(big, sender, &l, &skipped, &why), FERRY_ELIMIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "256"));
    CU_ASSERT_PTR_NULL(l.r);
    /* Exactly 256 is fine. */
    n = (size_t)snprintf(big, 32, "{\"replicas\":[");
    for (int i = 0; i < REPLICAS_MAX; i++)
        n += (size_t)snprintf(big + n, 64, "%s{\"id\":\"%d\",\"tunnel\":\"a:1\"}",
                              i > 0 ? "," : "", i);
    memcpy(big + n, "]}", 3);
    CU_ASSERT_EQUAL(parse(big, sender, &l, &skipped, &why), FERRY_OK);
    CU_ASSERT_EQUAL(l.n, REPLICAS_MAX);
    replicas_list_free(&l);

    memset(big, ' ', REPLICAS_JSON_MAX + 1);
    CU_ASSERT_EQUAL(replicas_parse(big, REPLICAS_JSON_MAX + 1, sender, &l, &skipped, &why),
                    FERRY_ELIMIT);
    free(big);
}

static void
test_bad_entries_and_duplicates_are_skipped(void)
{
    struct replica_list l;
    char                sender[REPLICA_ID_MAX + 1];
    unsigned            skipped;
    const char         *why;

    CU_ASSERT_EQUAL(parse("{\"replicas\":["
                          "{\"id\":\"a\",\"tunnel\":\"10.0.0.1:8443\"},"
                          "{\"id\":\"b\",\"tunnel\":\"0.0.0.0:8443\"},"       /* wildcard */
                          "{\"id\":\"c\",\"tunnel\":\"[::]:8443\"},"          /* wildcard */
                          "{\"id\":\"d\",\"tunnel\":\"10.0.0.4\"},"           /* no port */
                          "{\"id\":\"e\",\"tunnel\":\"10.0.0.5:0\"},"         /* port 0 */
                          "{\"id\":\"f g\",\"tunnel\":\"10.0.0.6:1\"},"       /* space */
                          "{\"id\":\"\",\"tunnel\":\"10.0.0.7:1\"},"          /* empty */
                          "{\"id\":\"h\"},"                                   /* no tunnel */
                          "17,"
                          "{\"id\":\"a\",\"tunnel\":\"10.0.0.9:8443\"},"      /* dup id */
                          "{\"id\":\"i\",\"tunnel\":\"fd00::1:8443\"},"       /* no brackets */
                          "{\"id\":\"j\",\"tunnel\":\"gw.example:sapgw00\"},"
                          "{\"id\":\"k\",\"tunnel\":\"gw.example.com:443\"}]}",
                          sender, &l, &skipped, &why), FERRY_OK);
    CU_ASSERT_EQUAL(skipped, 11);
    CU_ASSERT_PTR_NOT_NULL(why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "wildcard"));   /* the first reason */
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    CU_ASSERT_STRING_EQUAL(l.r[0].id, "a");
    CU_ASSERT_STRING_EQUAL(l.r[0].host, "10.0.0.1");     /* the first "a" wins */
    CU_ASSERT_STRING_EQUAL(l.r[1].id, "k");
    replicas_list_free(&l);

    CU_ASSERT(replica_id_ok("gw-0.ferry:1f2e"));
    CU_ASSERT(!replica_id_ok("a\"b"));
    CU_ASSERT(!replica_id_ok("a\nb"));
    CU_ASSERT(!replica_id_ok("01234567890123456789012345678901234567890123456789012345678901234"));
}

static void
test_json_round_trip_and_cap(void)
{
    struct replica      r[2];
    struct replica_list in = { r, 2 }, back;
    char                sender[REPLICA_ID_MAX + 1];
    unsigned            skipped;
    const char         *why;
    char               *text;
    size_t              len;

    CU_ASSERT_PTR_NULL(replica_set(&r[0], "gw-a", "127.0.0.1:8443"));
    CU_ASSERT_PTR_NULL(replica_set(&r[1], "gw-b", "[::1]:8444"));
    CU_ASSERT_EQUAL_FATAL(replicas_json("gw-a", &in, &text, &len), FERRY_OK);
    CU_ASSERT_EQUAL(len, strlen(text));
    CU_ASSERT_PTR_NULL(strchr(text, '\n'));          /* it travels as a header value */
    CU_ASSERT_EQUAL(replicas_parse(text, len, sender, &back, &skipped, &why), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(sender, "gw-a");
    CU_ASSERT_EQUAL_FATAL(back.n, 2);
    CU_ASSERT_STRING_EQUAL(back.r[1].tunnel, "[::1]:8444");
    CU_ASSERT_STRING_EQUAL(back.r[1].host, "::1");
    replicas_list_free(&back);
    free(text);

    /* Without a list (no store): the sender only, no "replicas" key. */
    CU_ASSERT_EQUAL_FATAL(replicas_json("gw-a", NULL, &text, &len), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(text, "{\"replica\":\"gw-a\"}");
    free(text);

    /* 256 entries with long names do not fit 32 KiB: refused, never cut. */
    {
        struct replica_list many = { calloc(REPLICAS_MAX, sizeof(struct replica)),
                                     REPLICAS_MAX };
        char                id[REPLICA_ID_MAX + 1], addr[300];

        CU_ASSERT_PTR_NOT_NULL_FATAL(many.r);
        for (size_t i = 0; i < many.n; i++) {
            snprintf(id, sizeof(id), "replica-%0*zu", 50, i);
            snprintf(addr, sizeof(addr), "gateway-%zu.%s.example.com:8443", i,
                     "a-rather-long-namespace-name-for-the-cluster-dns");
            CU_ASSERT_PTR_NULL(replica_set(&many.r[i], id, addr));
        }
        CU_ASSERT_EQUAL(replicas_json("x", &many, &text, &len), FERRY_ELIMIT);
        CU_ASSERT_PTR_NULL(text);
        free(many.r);
    }
}

static unsigned skipped_n;
static char     skipped_why[128];

static void
on_skip(void *arg, const struct gw_replica *e, const char *why)
{
    (void)arg;
    (void)e;
    if (skipped_n++ == 0)
        snprintf(skipped_why, sizeof(skipped_why), "%s", why);
}

/* What the gateway makes of the store's list: bad entries out, itself in. */
static void
test_gateway_list_from_store(void)
{
    struct gw_replica   in[] = {
        { "gw-b", "10.0.0.2:8443", 2 }, { "gw-c", "0.0.0.0:8443", 2 },
        { "gw-b", "10.0.0.9:8443", 2 }, { NULL, "10.0.0.4:8443", 2 },
        { "gw-d", "gw-d.ferry.svc:8443", 4 },
    };
    struct replica_list l;

    skipped_n = 0;
    CU_ASSERT_EQUAL(replicas_from_store(in, 5, "gw-a", "10.0.0.1:8443", &l, on_skip, NULL),
                    FERRY_OK);
    CU_ASSERT_EQUAL(skipped_n, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(skipped_why, "wildcard"));
    CU_ASSERT_EQUAL_FATAL(l.n, 3);
    CU_ASSERT_STRING_EQUAL(l.r[0].id, "gw-b");
    CU_ASSERT_STRING_EQUAL(l.r[0].host, "10.0.0.2");
    CU_ASSERT_STRING_EQUAL(l.r[1].id, "gw-d");
    CU_ASSERT_STRING_EQUAL(l.r[2].id, "gw-a");           /* itself, added at the end */
    CU_ASSERT_STRING_EQUAL(l.r[2].tunnel, "10.0.0.1:8443");
    replicas_list_free(&l);

    /* Listed already: not twice (the store's entry wins). */
    in[0].id = "gw-a";
    skipped_n = 0;
    CU_ASSERT_EQUAL(replicas_from_store(in, 1, "gw-a", "10.0.0.1:8443", &l, on_skip, NULL),
                    FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(l.n, 1);
    CU_ASSERT_STRING_EQUAL(l.r[0].tunnel, "10.0.0.2:8443");
    replicas_list_free(&l);

    /* No id yet, or only a wildcard default to advertise: nothing to add. */
    CU_ASSERT_EQUAL(replicas_from_store(in, 1, NULL, "10.0.0.1:8443", &l, on_skip, NULL),
                    FERRY_OK);
    CU_ASSERT_EQUAL(l.n, 1);
    replicas_list_free(&l);
    in[0].id = "gw-b";
    CU_ASSERT_EQUAL(replicas_from_store(in, 1, "gw-a", "0.0.0.0:8443", &l, on_skip, NULL),
                    FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(l.n, 1);
    CU_ASSERT_STRING_EQUAL(l.r[0].id, "gw-b");
    replicas_list_free(&l);
}

/* Every cut of a good list is refused whole (never a partial list); so is noise. */
static void
test_truncated_and_random_input_is_refused(void)
{
    static const char   good[] = "{\"replica\":\"a\",\"replicas\":[{\"id\":\"a\",\"tunnel\":"
                                 "\"10.0.0.1:8443\"},{\"id\":\"b\",\"tunnel\":\"[::1]:8443\"}]}";
    struct replica_list l;
    char                sender[REPLICA_ID_MAX + 1];
    unsigned            skipped, seed = 12345;
    const char         *why;
    char                noise[256];

    for (size_t n = 0; n < sizeof(good) - 1; n++) {
        CU_ASSERT_NOT_EQUAL(replicas_parse(good, n, sender, &l, &skipped, &why), FERRY_OK);
        CU_ASSERT_PTR_NULL(l.r);
    }
    CU_ASSERT_EQUAL(replicas_parse(good, sizeof(good) - 1, sender, &l, &skipped, &why), FERRY_OK);
    CU_ASSERT_EQUAL(l.n, 2);
    replicas_list_free(&l);
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % (int)sizeof(noise));

        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            noise[i] = (char)(seed >> 16);
        }
        if (replicas_parse(noise, n, sender, &l, &skipped, &why) == FERRY_OK)
            replicas_list_free(&l);
        CU_ASSERT(strlen(sender) <= REPLICA_ID_MAX);
    }
}

/* Helpers for the reconciliation tests. */
static struct replica
rep(const char *id, const char *tunnel)
{
    struct replica r;

    memset(&r, 0, sizeof(r));
    CU_ASSERT_PTR_NULL(replica_set(&r, id, tunnel));
    return r;
}

static void
test_reconcile_adds_new_and_drops_gone(void)
{
    struct recon_cfg cfg[] = { { "a", "127.0.0.1", 8001 } };
    struct replica   have[] = { rep("b", "127.0.0.1:8002"), rep("old", "127.0.0.1:8009") };
    struct replica   want[] = { rep("a", "127.0.0.1:8001"), rep("b", "127.0.0.1:8002"),
                                rep("c", "127.0.0.1:8003") };
    bool             keep[2];
    size_t           add[3];
    struct recon     r = { cfg, 1, have, 2, want, 3, keep, add, 0 };

    replicas_reconcile(&r);
    CU_ASSERT(keep[0]);             /* b: still listed at the same place */
    CU_ASSERT(!keep[1]);            /* old: its lease expired */
    CU_ASSERT_EQUAL_FATAL(r.nadd, 1);
    CU_ASSERT_EQUAL(add[0], 2);     /* c is new; a is the configured gateway itself */

    /* Applied again with the result: nothing to do (idempotent). */
    {
        struct replica now[] = { have[0], want[2] };
        bool           k2[2];

        r.have = now;
        r.nhave = 2;
        r.keep = k2;
        replicas_reconcile(&r);
        CU_ASSERT(k2[0] && k2[1]);
        CU_ASSERT_EQUAL(r.nadd, 0);
    }
}

/* A configured load balancer answered as replica x: x's advertised address gets no
 * second link set; the other replica does. */
static void
test_reconcile_dedupes_by_the_id_that_answered(void)
{
    struct recon_cfg cfg[] = { { "x", "lb.example.com", 8443 } };
    struct replica   want[] = { rep("x", "10.0.0.1:8443"), rep("y", "10.0.0.2:8443") };
    size_t           add[2];
    struct recon     r = { cfg, 1, NULL, 0, want, 2, NULL, add, 0 };

    replicas_reconcile(&r);
    CU_ASSERT_EQUAL_FATAL(r.nadd, 1);
    CU_ASSERT_EQUAL(add[0], 1);

    /* Before the balancer's answer names a replica, only the address can tell: the
     * configured gateway is the same place as none of them, so both get link sets. */
    cfg[0].id = NULL;
    replicas_reconcile(&r);
    CU_ASSERT_EQUAL(r.nadd, 2);

    /* A configured direct address is the replica at that address, answered or not
     * (host compared without case). */
    cfg[0].host = "GW-1.example.com";
    want[0] = rep("x", "gw-1.example.com:8443");
    replicas_reconcile(&r);
    CU_ASSERT_EQUAL_FATAL(r.nadd, 1);
    CU_ASSERT_EQUAL(add[0], 1);
}

static void
test_reconcile_redials_a_moved_replica_and_empties(void)
{
    struct replica have[] = { rep("b", "10.0.0.2:8443") };
    struct replica want[] = { rep("b", "10.0.0.7:8443") };
    bool           keep[1];
    size_t         add[1];
    struct recon   r = { NULL, 0, have, 1, want, 1, keep, add, 0 };

    replicas_reconcile(&r);
    CU_ASSERT(!keep[0]);
    CU_ASSERT_EQUAL_FATAL(r.nadd, 1);
    CU_ASSERT_EQUAL(add[0], 0);

    /* An empty list drops every discovered link set. */
    r.nwant = 0;
    replicas_reconcile(&r);
    CU_ASSERT(!keep[0]);
    CU_ASSERT_EQUAL(r.nadd, 0);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "list parses with sender, in order", test_list_parses_with_sender_and_order },
        { "bad JSON and shapes are refused whole", test_bad_json_and_shapes_are_refused_whole },
        { "too many or too large is a limit", test_too_many_or_too_large_is_a_limit },
        { "bad entries and duplicates are skipped", test_bad_entries_and_duplicates_are_skipped },
        { "JSON round trip and cap", test_json_round_trip_and_cap },
        { "gateway list from the store's", test_gateway_list_from_store },
        { "truncated and random input is refused", test_truncated_and_random_input_is_refused },
        { "reconcile adds new, drops gone", test_reconcile_adds_new_and_drops_gone },
        { "reconcile dedupes by the id that answered",
          test_reconcile_dedupes_by_the_id_that_answered },
        { "reconcile redials a moved replica; empty list",
          test_reconcile_redials_a_moved_replica_and_empties },
        { NULL, NULL }
    };

    return cu_run("replicas", tests);
}
