/*
 * keystore.c: telling key store files apart and opening PKCS#12 ones (keystore.h).
 *
 * Owns nothing past a call: what it opens goes to the caller. Does not build TLS
 * contexts (tls/ does, from what this returns) and does not resolve paths (dest.c
 * does, against the defining file).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>

#include "dest/keystore.h"

/* JKS and JCEKS files start with these magic numbers (big-endian). */
#define JKS_MAGIC   0xfeedfeedu
#define JCEKS_MAGIC 0xcecececeu

static const char *
ssl_error(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();

    if (e == 0)
        snprintf(buf, size, "unknown error");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

int
ferry_dest_keystore_kind(const char *path, enum ferry_keystore_kind *kind, struct ferry_err *err)
{
    unsigned char b[4] = { 0 };
    FILE         *fp;
    size_t        n;
    uint32_t      magic;

    if ((fp = fopen(path, "rb")) == NULL)
        return ferry_err_set(err, FERRY_EIO, "%s: %s", path, strerror(errno));
    n = fread(b, 1, sizeof(b), fp);
    fclose(fp);
    magic = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (n == sizeof(b) && (magic == JKS_MAGIC || magic == JCEKS_MAGIC))
        *kind = FERRY_KEYSTORE_JKS;
    else if (n >= 2 && b[0] == 0x30 && (b[1] & 0x80) != 0)    /* DER SEQUENCE, long length */
        *kind = FERRY_KEYSTORE_PKCS12;
    else
        *kind = FERRY_KEYSTORE_PEM;     /* text; the PEM reader says what is wrong */
    return FERRY_OK;
}

/* keytool's conversion, with path's name and the same name ending in .p12. */
static int
jks_refused(const char *path, struct ferry_err *err)
{
    static const char *const exts[] = { ".jks", ".jceks", ".keystore", ".ks" };
    size_t                   n = strlen(path);
    char                     p12[4096];

    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        size_t e = strlen(exts[i]);

        if (n > e && strcasecmp(path + n - e, exts[i]) == 0) {
            n -= e;
            break;
        }
    }
    snprintf(p12, sizeof(p12), "%.*s.p12", (int)(n < 4000 ? n : 4000), path);
    return ferry_err_set(err, FERRY_EINVAL,
                         "%s is a Java KeyStore (JKS), which ferry cannot read: convert it to "
                         "PKCS#12 with `keytool -importkeystore -srckeystore %s -destkeystore %s "
                         "-deststoretype PKCS12` and name the .p12 file instead",
                         path, path, p12);
}

/* The MAC proves the password (and that the file is whole) before anything is
 * decrypted. An empty password may have been written as "" or as none at all. */
static bool
mac_ok(PKCS12 *p12, const char *password)
{
    if (!PKCS12_mac_present(p12))
        return true;
    if (password != NULL && password[0] != '\0')
        return PKCS12_verify_mac(p12, password, -1) == 1;
    return PKCS12_verify_mac(p12, "", 0) == 1 || PKCS12_verify_mac(p12, NULL, 0) == 1;
}

int
ferry_dest_keystore_pkcs12(const char *path, const char *password, X509 **cert,
                           EVP_PKEY **key, STACK_OF(X509) **chain, struct ferry_err *err)
{
    FILE           *fp = NULL;
    PKCS12         *p12 = NULL;
    EVP_PKEY       *k = NULL;
    X509           *c = NULL;
    STACK_OF(X509) *ca = NULL;
    OSSL_PROVIDER  *legacy = NULL;
    char            msg[256];
    int             rc;

    if ((fp = fopen(path, "rb")) == NULL) {
        rc = ferry_err_set(err, FERRY_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((p12 = d2i_PKCS12_fp(fp, NULL)) == NULL) {
        rc = ferry_err_set(err, FERRY_EINVAL, "%s: not a PKCS#12 key store: %s", path,
                           ssl_error(msg, sizeof(msg)));
        goto out;
    }
    if (!mac_ok(p12, password)) {
        ERR_clear_error();
        if (password == NULL || password[0] == '\0')
            rc = ferry_err_set(err, FERRY_EDENIED, "%s: the PKCS#12 key store is protected by "
                               "a password and none is given", path);
        else
            rc = ferry_err_set(err, FERRY_EDENIED, "%s: wrong password for the PKCS#12 key "
                               "store (its integrity check fails)", path);
        goto out;
    }
    if (PKCS12_parse(p12, password, &k, &c, &ca) != 1) {
        /* Older exports (Windows, Java 8) encrypt with RC2, which OpenSSL 3 keeps in its
         * legacy provider: load it for this one parse (what it decrypted does not need
         * it afterwards) and try again. */
        ERR_clear_error();
        if (OSSL_PROVIDER_available(NULL, "legacy") ||
            (legacy = OSSL_PROVIDER_try_load(NULL, "legacy", 1)) == NULL ||
            PKCS12_parse(p12, password, &k, &c, &ca) != 1) {
            rc = ferry_err_set(err, FERRY_EINVAL, "%s: cannot decrypt the PKCS#12 key store: %s",
                               path, ssl_error(msg, sizeof(msg)));
            goto out;
        }
    }
    if (k == NULL) {
        rc = ferry_err_set(err, FERRY_EINVAL, "%s: the PKCS#12 key store holds no private key",
                           path);
        goto out;
    }
    if (c == NULL) {
        rc = ferry_err_set(err, FERRY_EINVAL, "%s: the PKCS#12 key store holds no certificate "
                           "for its private key", path);
        goto out;
    }
    if (ca == NULL && (ca = sk_X509_new_null()) == NULL) {
        rc = ferry_err_set(err, FERRY_ENOMEM, "out of memory");
        goto out;
    }
    *cert = c;                  /* the caller owns them now */
    *key = k;
    *chain = ca;
    c = NULL;
    k = NULL;
    ca = NULL;
    rc = FERRY_OK;
out:
    sk_X509_pop_free(ca, X509_free);
    X509_free(c);
    EVP_PKEY_free(k);
    PKCS12_free(p12);
    if (legacy != NULL)
        OSSL_PROVIDER_unload(legacy);
    if (fp != NULL)
        fclose(fp);
    return rc;
}

int
ferry_dest_keystore_check(const char *path, const char *password, struct ferry_err *err)
{
    enum ferry_keystore_kind kind;
    X509                    *cert = NULL;
    EVP_PKEY                *key = NULL;
    STACK_OF(X509)          *chain = NULL;
    int                      rc;

    if ((rc = ferry_dest_keystore_kind(path, &kind, err)) != FERRY_OK)
        return rc;
    if (kind == FERRY_KEYSTORE_JKS)
        return jks_refused(path, err);
    if (kind != FERRY_KEYSTORE_PKCS12)
        return FERRY_OK;
    if ((rc = ferry_dest_keystore_pkcs12(path, password, &cert, &key, &chain, err)) != FERRY_OK)
        return rc;
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    EVP_PKEY_free(key);
    return FERRY_OK;
}
