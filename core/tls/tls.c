/*
 * tls.c: building OpenSSL contexts (tls.h): the tunnel's (both ends), the connector's
 * towards internal hosts, and the upstream client contexts the cache (cache.c) keeps.
 * Every builder reads files: call them on the main thread only (at load, or from the
 * cache's loader); SSL objects made from a context are then used by one thread each.
 */
#include <arpa/inet.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"

/* AES-128-GCM first: with AES-NI it is the cheapest AEAD on the bulk path. */
#define TUNNEL_CIPHERSUITES \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

const char *
tls_error_text(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();

    if (e == 0)
        snprintf(buf, size, "unknown TLS error");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

static int
ctx_common(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    /* Tunnels are long-lived: no session tickets or resumption to manage. */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return SSL_CTX_set_ciphersuites(ctx, TUNNEL_CIPHERSUITES) == 1 ? 0 : -1;
}

int
tls_server_ctx(const char *cert, const char *key, const char *client_ca, SSL_CTX **out,
               struct ferry_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char     msg[256];

    if (ctx == NULL || ctx_common(ctx) != 0) {
        SSL_CTX_free(ctx);
        return ferry_err_set(err, FERRY_ENOMEM, "TLS context: %s", tls_error_text(msg, sizeof(msg)));
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ferry_err_set(err, FERRY_EINVAL, "%s: not a PEM certificate chain: %s", cert,
                      tls_error_text(msg, sizeof(msg)));
        goto bad;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ferry_err_set(err, FERRY_EINVAL, "%s: not the PEM private key of %s: %s", key, cert,
                      tls_error_text(msg, sizeof(msg)));
        goto bad;
    }
    if (client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);

        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1 || names == NULL) {
            ferry_err_set(err, FERRY_EINVAL, "%s: not a PEM CA bundle: %s", client_ca,
                          tls_error_text(msg, sizeof(msg)));
            goto bad;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    *out = ctx;
    return FERRY_OK;
bad:
    SSL_CTX_free(ctx);
    return FERRY_EINVAL;
}

int
tls_client_ctx(const char *ca, const char *cert, const char *key, SSL_CTX **out,
               struct ferry_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char     msg[256];

    if (ctx == NULL || ctx_common(ctx) != 0) {
        SSL_CTX_free(ctx);
        return ferry_err_set(err, FERRY_ENOMEM, "TLS context: %s", tls_error_text(msg, sizeof(msg)));
    }
    /* Only the configured CA: a connector trusts its gateway, not the Web PKI. */
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        ferry_err_set(err, FERRY_EINVAL, "%s: not a PEM CA bundle: %s", ca,
                      tls_error_text(msg, sizeof(msg)));
        goto bad;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            ferry_err_set(err, FERRY_EINVAL, "%s / %s: not a matching PEM certificate and key: %s",
                          cert, key, tls_error_text(msg, sizeof(msg)));
            goto bad;
        }
    }
    *out = ctx;
    return FERRY_OK;
bad:
    SSL_CTX_free(ctx);
    return FERRY_EINVAL;
}

int
tls_backend_ctx(const char *ca, SSL_CTX **out, struct ferry_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char     msg[256];

    if (ctx == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "TLS context: %s", tls_error_text(msg, sizeof(msg)));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    /* A backend that closes without close_notify ends the stream, it does not fail it. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1 ||
        (ca != NULL && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)) {
        ferry_err_set(err, FERRY_EINVAL, "%s: not a PEM CA bundle: %s", ca != NULL ? ca : "system store",
                      tls_error_text(msg, sizeof(msg)));
        SSL_CTX_free(ctx);
        return FERRY_EINVAL;
    }
    *out = ctx;
    return FERRY_OK;
}

int
tls_upstream_ctx(const char *ca, const char *cert, const char *key, bool insecure,
                 bool no_system_store, SSL_CTX **out, struct ferry_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char     msg[256];

    if (ctx == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "TLS context: %s", tls_error_text(msg, sizeof(msg)));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if ((!no_system_store && SSL_CTX_set_default_verify_paths(ctx) != 1) ||
        (ca != NULL && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)) {
        ferry_err_set(err, FERRY_EINVAL, "%s: not a PEM CA bundle: %s",
                      ca != NULL ? ca : "system store", tls_error_text(msg, sizeof(msg)));
        goto bad;
    }
    if (cert != NULL &&
        (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, key != NULL ? key : cert, SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(ctx) != 1)) {
        ferry_err_set(err, FERRY_EINVAL, "%s: not a matching PEM certificate and key: %s", cert,
                      tls_error_text(msg, sizeof(msg)));
        goto bad;
    }
    *out = ctx;
    return FERRY_OK;
bad:
    SSL_CTX_free(ctx);
    return FERRY_EINVAL;
}

SSL *
tls_client_ssl(SSL_CTX *ctx, int fd, const char *host)
{
    SSL            *ssl = SSL_new(ctx);
    unsigned char   ip[16];
    X509_VERIFY_PARAM *vp;

    if (ssl == NULL)
        return NULL;
    SSL_set_fd(ssl, fd);
    vp = SSL_get0_param(ssl);
    if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1) {
        /* An IP literal is checked against the certificate's IP SANs. */
        X509_VERIFY_PARAM_set1_ip_asc(vp, host);
    } else {
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(ssl, host);
        SSL_set_tlsext_host_name(ssl, host);
    }
    SSL_set_connect_state(ssl);
    return ssl;
}
