/*
 * keystore.h: the key stores a destination names (KeyStoreLocation,
 * tokenService.KeyStoreLocation): what kind of file one is, and opening a PKCS#12
 * (.p12/.pfx, as SAP exports client certificates) with its KeyStorePassword.
 *
 * The dest room checks them at load (a wrong password or a Java KeyStore is a
 * configuration error at the property); the tls room builds contexts from what
 * ferry_dest_keystore_pkcs12() returns. Files are read here: main thread only (at load,
 * or from the TLS cache's loader). No message names a password or quotes key material.
 */
#ifndef FERRY_DEST_KEYSTORE_H
#define FERRY_DEST_KEYSTORE_H

#include <openssl/x509.h>

#include <ferry/err.h>

enum ferry_keystore_kind {
    FERRY_KEYSTORE_PEM = 1,     /* certificate (and chain), key in the same file or another */
    FERRY_KEYSTORE_PKCS12,      /* DER PKCS#12: .p12 / .pfx */
    FERRY_KEYSTORE_JKS,         /* Java KeyStore or JCEKS: refused, with the keytool line */
};

/* The kind of path by its first bytes (not its name: keytool writes PKCS#12 into files
 * called .jks too). FERRY_OK, or FERRY_EIO with why (names path). */
int ferry_dest_keystore_kind(const char *path, enum ferry_keystore_kind *kind,
                             struct ferry_err *err);

/* Open the PKCS#12 at path with password (NULL or "": none). FERRY_OK and the caller
 * owns *cert, *key and *chain (the other certificates, maybe empty); or why: FERRY_EDENIED
 * for a wrong or missing password, FERRY_EINVAL for no key or no certificate in it or a
 * file that is not PKCS#12, FERRY_EIO, FERRY_ENOMEM. */
int ferry_dest_keystore_pkcs12(const char *path, const char *password, X509 **cert,
                               EVP_PKEY **key, STACK_OF(X509) **chain, struct ferry_err *err);

/* The load-time check of a key store property: a Java KeyStore is refused with the
 * keytool command that converts it; a PKCS#12 must open with password. A PEM file is
 * left to the TLS context build (as before PKCS#12 support). FERRY_OK or why. */
int ferry_dest_keystore_check(const char *path, const char *password, struct ferry_err *err);

#endif
