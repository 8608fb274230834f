/*
 * socks5_fuzz.c: libFuzzer target for the socks5 plugin's handshake parsers
 * (plugins/socks5/socks5-parse.c, the code the plugin runs).
 *
 * Byte 0 of the input: bit 0 set, the listener is `auth: none`. The rest is what a
 * client sends: it goes through the handshake as the plugin walks it (greeting, the
 * chosen method's sub-negotiation taken as a good login, the request), and each
 * parser also reads the whole rest on its own, so every parser sees every input.
 *
 * Checks besides the sanitizers: a parser's answer on any prefix of its input is
 * "need more" or its answer on the whole input (bytes arriving one by one never give
 * another verdict than all at once), the bytes taken never exceed the bytes given,
 * strings out are terminated, a refused request names its outcome.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/err.h>

#include "socks5-parse.h"
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

/* Prefixes checked one by one up to this length, beyond it only the one before the end. */
#define PREFIX_ALL_BYTES 300

static bool auth_none;

static int
run(int which, const uint8_t *d, size_t n)
{
    struct socks5_userpass up;
    struct socks5_sap      sap;
    struct socks5_request  req;
    uint8_t                choice;
    int                    rc;

    switch (which) {
    case 0:
        rc = socks5_parse_greeting(d, n, auth_none, &choice);
        CHECK(rc <= 0 || choice == SOCKS5_M_REFUSE || choice == SOCKS5_M_NONE
              || choice == SOCKS5_M_SAP || choice == SOCKS5_M_USERPASS);
        return rc;
    case 1:
        rc = socks5_parse_userpass(d, n, &up);
        CHECK(rc <= 0 || (strlen(up.user) < sizeof(up.user) && strlen(up.pass) < sizeof(up.pass)));
        return rc;
    case 2:
        rc = socks5_parse_sap(d, n, &sap);
        CHECK(rc <= 0 || (sap.token == d + 5 && sap.tlen > 0 && sap.tlen <= SOCKS5_TOKEN_MAX_BYTES
                          && strlen(sap.location) < sizeof(sap.location)));
        return rc;
    default:
        rc = socks5_parse_request(d, n, &req);
        CHECK(rc <= 0 || (req.port != 0 && req.host[0] != '\0'));
        CHECK(rc >= 0 || req.outcome != NULL);
        return rc;
    }
}

static int
run_checked(int which, const uint8_t *d, size_t n)
{
    int whole = run(which, d, n);

    CHECK(whole == 0 || whole == FERRY_EPROTO || (whole > 0 && (size_t)whole <= n));
    for (size_t k = 0; k < n && k <= PREFIX_ALL_BYTES; k++) {
        int part = run(which, d, k);

        CHECK(part == 0 || part == whole);
    }
    if (whole > 0 && (size_t)whole > PREFIX_ALL_BYTES + 1)
        CHECK(run(which, d, (size_t)whole - 1) == 0);
    return whole;
}

/* The handshake as the plugin walks it; a word for where it ended. */
static const char *
handshake(const uint8_t *d, size_t n)
{
    static char            verdict[600];    /* host 255, location 191, the words */
    struct socks5_userpass up;
    struct socks5_sap      sap;
    struct socks5_request  req;
    uint8_t                choice;
    const char            *method;
    size_t                 off = 0;
    int                    rc;

    if ((rc = run_checked(0, d, n)) <= 0)
        return rc == 0 ? "more" : "not-socks5";
    socks5_parse_greeting(d, n, auth_none, &choice);
    off = (size_t)rc;
    if (choice == SOCKS5_M_REFUSE)
        return "no-acceptable-method";
    if (choice == SOCKS5_M_USERPASS) {
        method = "userpass";
        if ((rc = run_checked(1, d + off, n - off)) <= 0)
            return rc == 0 ? "more" : "auth-bad";
        socks5_parse_userpass(d + off, n - off, &up);
        if (!up.ok)
            return "auth-bad";
        off += (size_t)rc;
    } else if (choice == SOCKS5_M_SAP) {
        method = "sap";
        if ((rc = run_checked(2, d + off, n - off)) <= 0)
            return rc == 0 ? "more" : "auth-bad";
        socks5_parse_sap(d + off, n - off, &sap);
        if (!sap.ok)
            return "auth-bad";
        off += (size_t)rc;
    } else {
        method = "none";
        sap.location[0] = '\0';
    }
    if ((rc = run_checked(3, d + off, n - off)) == 0)
        return "more";
    socks5_parse_request(d + off, n - off, &req);
    if (rc < 0)
        return req.outcome;
    snprintf(verdict, sizeof(verdict), "%s connect %s %u%s%s", method, req.host,
             (unsigned)req.port, choice == SOCKS5_M_SAP ? " loc=" : "",
             choice == SOCKS5_M_SAP ? sap.location : "");
    return verdict;
}

static const char *
fuzz_verdict(const uint8_t *data, size_t size)
{
    if (size == 0)
        return "empty";
    auth_none = (data[0] & 1) != 0;
    for (int which = 0; which < 4; which++)
        run_checked(which, data + 1, size - 1);
    return handshake(data + 1, size - 1);
}

#ifdef FERRY_FUZZ_STANDALONE
static const struct fuzz_expect fuzz_expects[] = {
    { "sap-ipv4", "sap connect 10.0.0.1 443 loc=loc1" },
    { "sap-raw-location", "sap connect host.internal 8080 loc=raw id" },
    { "sap-no-location", "sap connect 10.0.0.1 443 loc=" },
    { "sap-zero-token", "auth-bad" },
    { "sap-nul-location", "auth-bad" },
    { "sap-long-token-location", "auth-bad" },  /* a 255-byte raw id: too long to keep */
    { "userpass-domain", "userpass connect virtual.host 389" },
    { "userpass-ipv6", "userpass connect ::1 22" },
    { "userpass-empty-user", "auth-bad" },
    { "userpass-bad-version", "auth-bad" },
    { "none-ipv4", "none connect 127.0.0.1 80" },
    { "none-not-offered", "no-acceptable-method" },
    { "not-socks5", "not-socks5" },
    { "greeting-short", "more" },
    { "req-bind", "command-not-supported" },
    { "req-udp", "command-not-supported" },
    { "req-atyp-bad", "address-type" },
    { "req-port-zero", "bad-port" },
    { "req-host-nul", "bad-host" },
    { "req-host-empty", "bad-host" },
    { "req-bad-version", "bad-request" },
    { "req-truncated", "more" },
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
