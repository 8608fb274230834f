/*
 * abi_test.c: reading a plugin's struct only as far as its ABI minor had it
 * (core/util/abi.h), and FERRY_HAS_FIELD (ferry/api.h).
 */
#include <stdint.h>
#include <string.h>

#include <ferry/conn.h>
#include <ferry/io.h>
#include <ferry/policy.h>

#include "cu.h"
#include "util/abi.h"

/* A 1.1 plugin's target, and what happens to lie after it in the plugin's memory. */
struct frame_1_1 {
    unsigned char t[offsetof(struct ferry_target, protocol)];
    const char   *after;
};

static void
test_1_1_target_ends_before_protocol(void)
{
    struct frame_1_1    f;
    struct ferry_target plugin = { .host = "h", .port = 7, .direct_ok = true };
    struct ferry_target t;

    memcpy(f.t, &plugin, sizeof(f.t));
    f.after = "http";
    ABI_COPY(&t, (const struct ferry_target *)(const void *)&f, 1, ABI_TARGET_SIZES);
    CU_ASSERT_PTR_NULL(t.protocol);                 /* not "http" from past its end */
    CU_ASSERT_STRING_EQUAL(t.host, "h");
    CU_ASSERT_EQUAL(t.port, 7);
    CU_ASSERT_TRUE(t.direct_ok);
    CU_ASSERT_EQUAL(t.size, sizeof(t));
}

static void
test_1_2_target_has_protocol_but_no_size(void)
{
    struct ferry_target plugin = { .host = "h", .port = 7, .protocol = "ldap" };
    struct ferry_target t;

    plugin.size = 0xdeadbeef;                        /* 1.2 had no size: never read */
    ABI_COPY(&t, &plugin, 2, ABI_TARGET_SIZES);
    CU_ASSERT_STRING_EQUAL(t.protocol, "ldap");
    CU_ASSERT_EQUAL(t.size, sizeof(t));
}

static void
test_1_3_size_is_trusted_within_bounds(void)
{
    struct ferry_target plugin = FERRY_TARGET_INIT;
    struct ferry_target t;

    plugin.protocol = "http";
    ABI_COPY(&t, &plugin, 3, ABI_TARGET_SIZES);
    CU_ASSERT_STRING_EQUAL(t.protocol, "http");
    /* A 1.3 plugin that forgot size still has every field up to size. */
    plugin.size = 0;
    ABI_COPY(&t, &plugin, 3, ABI_TARGET_SIZES);
    CU_ASSERT_STRING_EQUAL(t.protocol, "http");
    /* A size past core's struct reads no further than core's struct. */
    CU_ASSERT_EQUAL(abi_struct_size(3, &(struct ferry_target){ .size = 1u << 20 },
                                    offsetof(struct ferry_target, size),
                                    sizeof(struct ferry_target), ABI_TARGET_SIZES),
                    sizeof(struct ferry_target));
}

static void
test_record_of_1_1_defaults_protocol(void)
{
    struct {
        unsigned char r[offsetof(struct ferry_request_record, protocol)];
        const char   *after;
    } f;
    struct ferry_request_record plugin = { .method = "GET", .status = 200 };
    struct ferry_request_record r;

    memcpy(f.r, &plugin, sizeof(f.r));
    f.after = "ldap";
    ABI_COPY(&r, (const struct ferry_request_record *)(const void *)&f, 1, ABI_RECORD_SIZES);
    CU_ASSERT_PTR_NULL(r.protocol);
    CU_ASSERT_EQUAL(r.status, 200);
}

static void
test_1_0_target_ends_before_direct_ok(void)
{
    struct {
        unsigned char t[offsetof(struct ferry_target, direct_ok)];
        bool          after;
    } f;
    struct ferry_target plugin = { .host = "h", .port = 7 };
    struct ferry_target t;

    memcpy(f.t, &plugin, sizeof(f.t));
    f.after = true;
    ABI_COPY(&t, (const struct ferry_target *)(const void *)&f, 0, ABI_TARGET_SIZES);
    CU_ASSERT_FALSE(t.direct_ok);                   /* 1.0 could not allow direct */
    CU_ASSERT_STRING_EQUAL(t.host, "h");
}

static void
test_has_field_follows_size(void)
{
    struct ferry_target t = FERRY_TARGET_INIT;

    CU_ASSERT_TRUE(FERRY_HAS_FIELD(&t, protocol));
    CU_ASSERT_TRUE(FERRY_HAS_FIELD(&t, size));
    t.size = (uint32_t)offsetof(struct ferry_target, protocol);
    CU_ASSERT_FALSE(FERRY_HAS_FIELD(&t, protocol));
    CU_ASSERT_TRUE(FERRY_HAS_FIELD(&t, direct_ok));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "a 1.0 target ends before direct_ok", test_1_0_target_ends_before_direct_ok },
        { "a 1.1 target ends before protocol", test_1_1_target_ends_before_protocol },
        { "a 1.2 target has protocol, no size", test_1_2_target_has_protocol_but_no_size },
        { "a 1.3 size is trusted within bounds", test_1_3_size_is_trusted_within_bounds },
        { "a 1.1 record defaults protocol", test_record_of_1_1_defaults_protocol },
        { "FERRY_HAS_FIELD follows size", test_has_field_follows_size },
        { NULL, NULL },
    };

    return cu_run("abi", tests);
}
