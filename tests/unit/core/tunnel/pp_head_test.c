/*
 * pp_head_test.c: principal propagation's header mode on the connector
 * (cn_pp_head_rewrite, core/tunnel/cstream.c): the backend sees exactly one
 * SSL_CLIENT_CERT, the connector's, whatever the client sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu.h"
#include "tunnel/connector-int.h"

static char out[4096];

static const char *
rewrite(const char *head, const char *b64)
{
    size_t n = cn_pp_head_rewrite(head, strlen(head), b64, out, sizeof(out) - 1);

    out[n] = '\0';
    return out;
}

static void
test_adds_the_certificate_before_the_blank_line(void)
{
    CU_ASSERT_STRING_EQUAL(rewrite("GET /a HTTP/1.1\r\nHost: erp\r\n\r\n", "MIIB+/=="),
                           "GET /a HTTP/1.1\r\nHost: erp\r\nSSL_CLIENT_CERT: MIIB+/==\r\n\r\n");
    /* bare LF heads keep their own line ends; the added field uses CRLF */
    CU_ASSERT_STRING_EQUAL(rewrite("GET / HTTP/1.1\nHost: erp\n\n", "AA"),
                           "GET / HTTP/1.1\nHost: erp\nSSL_CLIENT_CERT: AA\r\n\n");
}

static void
test_drops_every_client_sent_spelling(void)
{
    CU_ASSERT_STRING_EQUAL(rewrite("POST /x HTTP/1.1\r\nSSL_CLIENT_CERT: forged\r\n"
                                   "Host: erp\r\nssl_client_cert: b\r\nSSL-Client-Cert: c\r\n"
                                   "ssl-client_CERT:d\r\nContent-Length: 0\r\n\r\n", "OK"),
                           "POST /x HTTP/1.1\r\nHost: erp\r\nContent-Length: 0\r\n"
                           "SSL_CLIENT_CERT: OK\r\n\r\n");
    /* without a user: stripped, none added */
    CU_ASSERT_STRING_EQUAL(rewrite("GET / HTTP/1.1\r\nSSL_CLIENT_CERT: forged\r\n"
                                   "Host: erp\r\n\r\n", NULL),
                           "GET / HTTP/1.1\r\nHost: erp\r\n\r\n");
}

static void
test_leaves_lookalikes_alone(void)
{
    const char *head = "GET /SSL_CLIENT_CERT: HTTP/1.1\r\nSSL_CLIENT_CERTS: a\r\n"
                       "X-SSL_CLIENT_CERT: b\r\nSSL_CLIENT_CER: c\r\n\r\n";

    CU_ASSERT_STRING_EQUAL(rewrite(head, NULL), head);
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "adds the certificate before the blank line",
          test_adds_the_certificate_before_the_blank_line },
        { "drops every client-sent spelling", test_drops_every_client_sent_spelling },
        { "leaves lookalikes alone", test_leaves_lookalikes_alone },
        { NULL, NULL }
    };

    return cu_run("tunnel/pp_head", tests);
}
