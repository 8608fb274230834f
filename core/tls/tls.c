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

#include "dest/keystore.h"
#include "tls/cache.h"
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

/* The client certificate of a PKCS#12 key store: its certificate, key and the other
 * certificates as the chain sent with it. */
static int
use_pkcs12(SSL_CTX *ctx, const char *path, const char *password, struct ferry_err *err)
{
    X509           *cert = NULL;
    EVP_PKEY       *key = NULL;
    STACK_OF(X509) *chain = NULL;
    char            msg[256];
    int             rc;

    if ((rc = ferry_dest_keystore_pkcs12(path, password, &cert, &key, &chain, err)) != FERRY_OK)
        return rc;
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        rc = ferry_err_set(err, FERRY_EINVAL, "%s: the PKCS#12 key store's certificate and "
                           "key do not go together: %s", path, tls_error_text(msg, sizeof(msg)));
        goto out;
    }
    /* set1 takes its own references: chain is ours to free either way. */
    if (sk_X509_num(chain) > 0 && SSL_CTX_set1_chain(ctx, chain) != 1) {
        rc = ferry_err_set(err, FERRY_ENOMEM, "%s: certificate chain: %s", path,
                           tls_error_text(msg, sizeof(msg)));
        goto out;
    }
    rc = FERRY_OK;
out:
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* A PEM certificate (and chain) and its key, which cert_password may decrypt. */
static int
use_pem(SSL_CTX *ctx, const char *cert, const char *key, const char *password,
        struct ferry_err *err)
{
    char msg[256];
    int  ok;

    /* OpenSSL's default callback reads the password from the userdata; it must not
     * outlive this call (the caller's copy is wiped). */
    SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)(password != NULL ? password : ""));
    ok = SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 &&
         SSL_CTX_use_PrivateKey_file(ctx, key != NULL ? key : cert, SSL_FILETYPE_PEM) == 1 &&
         SSL_CTX_check_private_key(ctx) == 1;
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    if (!ok)
        return ferry_err_set(err, FERRY_EINVAL, "%s: not a matching PEM certificate and key: %s",
                             cert, tls_error_text(msg, sizeof(msg)));
    return FERRY_OK;
}

static int
use_keystore(SSL_CTX *ctx, const struct ferry_tls_settings *s, struct ferry_err *err)
{
    enum ferry_keystore_kind kind = FERRY_KEYSTORE_PEM;
    int                      rc;

    if (s->key_file == NULL &&
        (rc = ferry_dest_keystore_kind(s->cert_file, &kind, err)) != FERRY_OK)
        return rc;
    switch (kind) {
    case FERRY_KEYSTORE_PKCS12:
        return use_pkcs12(ctx, s->cert_file, s->cert_password, err);
    case FERRY_KEYSTORE_JKS:
        return ferry_dest_keystore_check(s->cert_file, NULL, err);     /* says how to convert */
    default:
        return use_pem(ctx, s->cert_file, s->key_file, s->cert_password, err);
    }
}

int
tls_upstream_ctx(const struct ferry_tls_settings *s, SSL_CTX **out, struct ferry_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char     msg[256];

    if (ctx == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "TLS context: %s", tls_error_text(msg, sizeof(msg)));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, s->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    /* SSLs made from ctx start with its parameters; tls_client_ssl() adds to them. */
    if (s->wildcard_any_depth)
        X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(ctx),
                                        X509_CHECK_FLAG_MULTI_LABEL_WILDCARDS);
    if ((!s->no_system_store && SSL_CTX_set_default_verify_paths(ctx) != 1) ||
        (s->ca_file != NULL && SSL_CTX_load_verify_locations(ctx, s->ca_file, NULL) != 1)) {
        ferry_err_set(err, FERRY_EINVAL, "%s: not a PEM CA bundle: %s",
                      s->ca_file != NULL ? s->ca_file : "system store",
                      tls_error_text(msg, sizeof(msg)));
        goto bad;
    }
    if (s->cert_file != NULL && use_keystore(ctx, s, err) != FERRY_OK)
        goto bad;
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
        /* Never "f*.example.com"; whether "*" covers more than one label is the
         * context's (HostnameVerifier). */
        X509_VERIFY_PARAM_set_hostflags(vp, X509_VERIFY_PARAM_get_hostflags(vp) |
                                                X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(ssl, host);
        SSL_set_tlsext_host_name(ssl, host);
    }
    SSL_set_connect_state(ssl);
    return ssl;
}
