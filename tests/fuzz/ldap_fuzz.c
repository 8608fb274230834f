/*
 * ldap_fuzz.c: libFuzzer target for the ldap plugin's BER code (plugins/ldap/ber.c):
 * ber_frame() and ldap_parse() on a stream of LDAPMessages as either side sends it
 * (client requests, server responses: the plugin reads both with the same two
 * functions), and the writers on what was read.
 *
 * Byte 0 of the input picks max_message_bytes (bits 0-1: 64, 512, 65536, 16 MiB) so the
 * "too big" path is reachable with short inputs. The rest is the stream: messages
 * are framed and parsed one after another until one is incomplete or refused.
 *
 * Checks besides the sanitizers: a framed message lies inside the bytes given and
 * within max; a parsed message's DN and OID lie inside the message; a refusal says
 * why; what the writers make of the parsed fields (a result to the request, a bind
 * with its DN) frames to exactly its length and parses back to the same id, op and
 * result code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ber.h"
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

#define MAX_MESSAGES 64         /* per input: enough to walk a session, bounded */

static bool
inside(const uint8_t *p, size_t n, const uint8_t *msg, size_t len)
{
    return p == NULL || (p >= msg && n <= len && (size_t)(p - msg) <= len - n);
}

/* A NUL-terminated copy of at most cap - 1 bytes, for the writers' C strings. */
static void
text(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; p != NULL && i < n && k + 1 < cap; i++)
        if (p[i] != 0)
            out[k++] = (char)p[i];
    out[k] = '\0';
}

/* Write it, frame it, parse it back: the same id, op and result. */
static void
round_trip(const uint8_t *out, size_t n, uint32_t id, int op, int result)
{
    struct ldap_msg m;
    const char     *why = NULL;
    size_t          len = 0;

    if (n == 0)
        return;                         /* did not fit: the writers' documented answer */
    CHECK(ber_frame(out, n, n, &len, &why) == 1 && len == n);
    CHECK(ldap_parse(out, n, &m, &why) == 0);
    CHECK(m.id == id && m.op == op && m.result == result);
}

static void
write_back(const struct ldap_msg *m)
{
    static uint8_t out[4096];
    char           dn[600], oid[100];
    int            rop = ldap_response_op(m->op);
    size_t         n;

    text(dn, sizeof(dn), m->dn, m->dn_len);
    text(oid, sizeof(oid), m->oid, m->oid_len);
    if (m->id > 0x7fffffff)
        return;                         /* ids are 0..2^31-1 (RFC 4511 MessageID) */
    if (rop >= 0) {
        n = ldap_write_result(out, sizeof(out), m->id, rop, LDAP_OTHER, dn,
                              rop == LDAP_EXT_RESP ? oid : NULL);
        round_trip(out, n, m->id, rop, LDAP_OTHER);
    }
    if (m->op == LDAP_BIND_REQ) {
        n = ldap_write_bind(out, sizeof(out), m->id, dn, "secret");
        round_trip(out, n, m->id, LDAP_BIND_REQ, -1);
    }
}

static const char *
fuzz_verdict(const uint8_t *data, size_t size)
{
    static const size_t maxes[] = { 64, 512, 65536, 16u << 20 };
    static char         verdict[MAX_MESSAGES * 16 + 32];
    size_t              max, off = 0, vlen = 0;
    const uint8_t      *d;
    int                 i;

    if (size == 0)
        return "empty";
    max = maxes[data[0] & 3];
    d = data + 1;
    size--;
    verdict[0] = '\0';
    for (i = 0; i < MAX_MESSAGES && off < size; i++) {
        struct ldap_msg m;
        const char     *why = NULL, *end = NULL;
        size_t          len = 0;
        int             rc = ber_frame(d + off, size - off, max, &len, &why);

        if (rc == 0)
            end = "more";
        else if (rc == -2)
            end = "too-big";
        else if (rc < 0)
            end = "malformed";
        if (end != NULL) {
            CHECK(rc == 0 || why != NULL);
            snprintf(verdict + vlen, sizeof(verdict) - vlen, "%s%s", vlen ? " " : "", end);
            return verdict;
        }
        CHECK(rc == 1 && len > 0 && len <= max && len <= size - off);
        if (ldap_parse(d + off, len, &m, &why) != 0) {
            CHECK(why != NULL);
            snprintf(verdict + vlen, sizeof(verdict) - vlen, "%sbad", vlen ? " " : "");
            return verdict;
        }
        CHECK(inside(m.dn, m.dn_len, d + off, len) && inside(m.oid, m.oid_len, d + off, len));
        CHECK(ldap_op_name(m.op) != NULL);
        write_back(&m);
        if (m.result >= 0)
            vlen += (size_t)snprintf(verdict + vlen, sizeof(verdict) - vlen, "%sop%d=%d",
                                     vlen ? " " : "", m.op, m.result);
        else
            vlen += (size_t)snprintf(verdict + vlen, sizeof(verdict) - vlen, "%s%s",
                                     vlen ? " " : "", ldap_op_name(m.op));
        off += len;
    }
    return verdict;
}

#ifdef FERRY_FUZZ_STANDALONE
static const struct fuzz_expect fuzz_expects[] = {
    { "client-bind-search-unbind", "bind search unbind" },
    { "client-sasl-bind", "bind" },
    { "client-starttls", "extended" },
    { "client-modify-add-del-moddn-compare", "modify add delete modrdn compare" },
    { "client-abandon", "abandon" },
    { "server-bind-ok", "op1=0" },
    { "server-search-entry-done", "other other op5=0" },
    { "server-starttls-resp", "op24=0" },
    { "server-notice-of-disconnection", "op24=52" },
    { "server-result-4-octets", "op5=2147483647" },
    { "long-length", "search" },
    { "too-big", "too-big" },
    { "indefinite-length", "malformed" },
    { "five-length-octets", "malformed" },
    { "not-a-sequence", "malformed" },
    { "bad-message-id", "bad" },
    { "inner-overrun", "bad" },
    { "truncated", "bind more" },
    { "server-negative-result", "bad" },        /* was a signed overflow in ldap_parse */
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
