/*
 * keystore-fixture.h: key stores for the dest and tls unit tests, made in-process: a
 * self-signed P-256 certificate and key, written as PKCS#12 (with a password), as PEM
 * (certificate then key), or as the header of a Java KeyStore.
 */
#ifndef FERRY_TEST_KEYSTORE_FIXTURE_H
#define FERRY_TEST_KEYSTORE_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

/* A self-signed certificate for CN=cn and its key; false on failure. */
static inline bool
fixture_cert(const char *cn, X509 **cert, EVP_PKEY **key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509     *x = X509_new();
    bool      ok;

    ok = k != NULL && x != NULL && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(x), -60) != NULL &&
         X509_gmtime_adj(X509_getm_notAfter(x), 3600) != NULL &&
         X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn, -1, -1, 0) == 1 &&
         X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
         X509_set_pubkey(x, k) == 1 && X509_sign(x, k, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        EVP_PKEY_free(k);
        return false;
    }
    *cert = x;
    *key = k;
    return true;
}

/* path: a PKCS#12 of a fresh certificate for CN=cn, protected by password. */
static inline bool
fixture_p12(const char *path, const char *cn, const char *password)
{
    X509     *x = NULL;
    EVP_PKEY *k = NULL;
    PKCS12   *p = NULL;
    FILE     *fp = NULL;
    bool      ok = false;

    if (!fixture_cert(cn, &x, &k))
        return false;
    if ((p = PKCS12_create(password, cn, k, x, NULL, 0, 0, 0, 0, 0)) != NULL &&
        (fp = fopen(path, "wb")) != NULL)
        ok = i2d_PKCS12_fp(fp, p) == 1;
    if (fp != NULL)
        ok = fclose(fp) == 0 && ok;
    PKCS12_free(p);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

/* path: certificate then key, PEM, for CN=cn; the key encrypted (AES-256) with
 * password unless it is NULL. */
static inline bool
fixture_pem_key(const char *path, const char *cn, const char *password)
{
    X509     *x = NULL;
    EVP_PKEY *k = NULL;
    FILE     *fp;
    bool      ok = false;

    if (!fixture_cert(cn, &x, &k))
        return false;
    if ((fp = fopen(path, "w")) != NULL) {
        ok = PEM_write_X509(fp, x) == 1 &&
             PEM_write_PrivateKey(fp, k, password != NULL ? EVP_aes_256_cbc() : NULL, NULL, 0,
                                  NULL, (void *)password) == 1;
        ok = fclose(fp) == 0 && ok;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

static inline bool
fixture_pem(const char *path, const char *cn)
{
    return fixture_pem_key(path, cn, NULL);
}

/* path: what a Java KeyStore starts with (magic FEEDFEED, version 2, no entries). */
static inline bool
fixture_jks(const char *path)
{
    static const unsigned char head[] = { 0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 0 };
    FILE                      *fp = fopen(path, "wb");
    bool                       ok;

    if (fp == NULL)
        return false;
    ok = fwrite(head, 1, sizeof(head), fp) == sizeof(head);
    return fclose(fp) == 0 && ok;
}

#endif
