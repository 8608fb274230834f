/*
 * tls13_suites.c: an LD_PRELOAD shim for the benchmark only. Every
 * SSL_CTX_set_ciphersuites() call of the process it is loaded into uses
 * $BENCH_TLS13_CIPHERSUITES (when set and not empty) instead of the caller's list, so
 * tunnel.sh can run ferry's tunnel with the cipher its peers are forced to (ssh -c
 * aes256-gcm@openssh.com) without a configuration key. Loaded into the connector: a
 * TLS 1.3 server follows the client's preference, so that decides the suite.
 */
#include <dlfcn.h>                      /* RTLD_NEXT: _GNU_SOURCE comes from CMake */
#include <stdlib.h>

#include <openssl/ssl.h>

int
SSL_CTX_set_ciphersuites(SSL_CTX *ctx, const char *str)
{
    static int (*real)(SSL_CTX *, const char *);
    const char *forced = getenv("BENCH_TLS13_CIPHERSUITES");

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "SSL_CTX_set_ciphersuites");
    if (real == NULL)
        return 0;
    return real(ctx, forced != NULL && *forced != '\0' ? forced : str);
}
