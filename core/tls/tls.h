/*
 * tls.h: OpenSSL contexts, built from files, and client SSL objects.
 * The tunnel is TLS 1.3 only. The gateway is the TLS server (connectors dial out to
 * it); the connector verifies the gateway's certificate against its own `ca` and the
 * host name or IP it dialed. Upstream client contexts (HTTPS, LDAPS, token services)
 * are shared through the cache (tls/cache.h); the builders here read files, so they
 * run on the main thread only.
 */
#ifndef FERRY_TLS_TLS_H
#define FERRY_TLS_TLS_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include <ferry/err.h>

/* Gateway: server context; client_ca (may be NULL) makes client certificates
 * mandatory and checked against it. */
int tls_server_ctx(const char *cert, const char *key, const char *client_ca, SSL_CTX **out,
                   struct ferry_err *err);
/* Connector: client context trusting only `ca`; cert/key optional (both or none). */
int tls_client_ctx(const char *ca, const char *cert, const char *key, SSL_CTX **out,
                   struct ferry_err *err);
/* Connector -> internal host (TCPS, HTTPS, LDAPS, RFCS): TLS 1.2+, the system trust
 * store plus `ca` (may be NULL). */
int tls_backend_ctx(const char *ca, SSL_CTX **out, struct ferry_err *err);
struct ferry_tls_settings;
/* Upstream HTTPS and friends: TLS 1.2+, the system store (unless no_system_store)
 * plus ca_file, an optional client key store (PKCS#12, opened with cert_password; or
 * PEM, key_file NULL: in the cert file), or no verification at all when insecure;
 * wildcard_any_depth lets "*." names of the server's certificate cover several labels. */
int tls_upstream_ctx(const struct ferry_tls_settings *s, SSL_CTX **out, struct ferry_err *err);
/* A client SSL for fd that checks `host` (DNS name or IP literal) and sends SNI. */
SSL *tls_client_ssl(SSL_CTX *ctx, int fd, const char *host);

/* The most recent OpenSSL error as text (and clears the queue). */
const char *tls_error_text(char *buf, size_t size);

#endif
