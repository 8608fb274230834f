/*
 * usercert.c: the connector's user-certificate issuer and its per-worker cache
 * (usercert.h). Owns the CA certificate and key, the issuer's user key and the
 * extensions every user certificate carries (built once: they do not depend on the
 * user), the certificates it signs and the cache's LRU. The subject comes from
 * subject.c; streams, headers and the audit line are the caller's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"
#include "tls/usercert.h"

#define NEXTS 5

struct ferry_tls_issuer {
    X509                     *ca;          /* owns */
    EVP_PKEY                 *ca_key;      /* owns */
    EVP_PKEY                 *user_key;    /* owns: EC P-256, in every user certificate */
    struct ferry_tls_subject *subject;     /* owns */
    long                      validity_s;
    time_t                    ca_not_after; /* no user certificate outlives its CA */
    X509_EXTENSION           *exts[NEXTS]; /* owns: copied into each certificate */
};

struct ferry_tls_usercert {
    unsigned       refs;
    X509          *x509;        /* owns */
    unsigned char *der;         /* owns (OPENSSL_free) */
    size_t         der_len;
    char          *b64;         /* owns */
    char          *dn;          /* owns */
    time_t         not_after;
};

/* Never prompt on a terminal for an encrypted key: refuse it. */
static int
no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static int
load_ca(const char *cert_path, const char *key_path, X509 **cert, EVP_PKEY **key,
        struct ferry_err *err)
{
    FILE *fp;
    char  msg[256];

    if ((fp = fopen(cert_path, "r")) == NULL)
        return ferry_err_set(err, FERRY_EIO, "%s: %s", cert_path, strerror(errno));
    *cert = PEM_read_X509(fp, NULL, no_password, NULL);
    fclose(fp);
    if (*cert == NULL)
        return ferry_err_set(err, FERRY_EINVAL, "%s: not a PEM certificate: %s", cert_path,
                             tls_error_text(msg, sizeof(msg)));
    if ((fp = fopen(key_path, "r")) == NULL)
        return ferry_err_set(err, FERRY_EIO, "%s: %s", key_path, strerror(errno));
    *key = PEM_read_PrivateKey(fp, NULL, no_password, NULL);
    fclose(fp);
    if (*key == NULL) {
        /* OpenSSL's reason names a decoder, never the key's bytes. */
        return ferry_err_set(err, FERRY_EINVAL,
                             "%s: not an unencrypted PEM private key: %s", key_path,
                             tls_error_text(msg, sizeof(msg)));
    }
    return FERRY_OK;
}

/* RFC 5280 4.2.1.9 and 4.2.1.3: only a CA with keyCertSign may sign certificates. */
static int
check_ca(X509 *ca, EVP_PKEY *key, const char *cert_path, const char *key_path,
         time_t *not_after, struct ferry_err *err)
{
    uint32_t  flags = X509_get_extension_flags(ca);
    struct tm tm;

    if (X509_check_private_key(ca, key) != 1) {
        ERR_clear_error();
        return ferry_err_set(err, FERRY_EINVAL, "%s: not the private key of %s", key_path,
                             cert_path);
    }
    if (!EVP_PKEY_is_a(key, "RSA") && !EVP_PKEY_is_a(key, "EC"))
        return ferry_err_set(err, FERRY_EINVAL, "%s: a %s key; the CA key must be RSA or EC",
                             key_path, EVP_PKEY_get0_type_name(key));
    if ((flags & EXFLAG_INVALID) != 0)
        return ferry_err_set(err, FERRY_EINVAL, "%s: its extensions do not parse", cert_path);
    if ((flags & EXFLAG_CA) == 0)
        return ferry_err_set(err, FERRY_EINVAL,
                             "%s: not a CA certificate (basicConstraints CA:TRUE missing)",
                             cert_path);
    if ((flags & EXFLAG_KUSAGE) == 0 || (X509_get_key_usage(ca) & KU_KEY_CERT_SIGN) == 0)
        return ferry_err_set(err, FERRY_EINVAL,
                             "%s: its keyUsage does not allow keyCertSign", cert_path);
    if (X509_cmp_current_time(X509_get0_notAfter(ca)) <= 0)
        return ferry_err_set(err, FERRY_EINVAL, "%s: the CA certificate has expired",
                             cert_path);
    if (ASN1_TIME_to_tm(X509_get0_notAfter(ca), &tm) != 1)
        return ferry_err_set(err, FERRY_EINVAL, "%s: its notAfter does not parse", cert_path);
    *not_after = timegm(&tm);
    return FERRY_OK;
}

/* The five extensions, made once against a scratch certificate that carries the user
 * key (the subject key identifier is its hash) and is issued by the CA. */
static int
make_exts(struct ferry_tls_issuer *iss, struct ferry_err *err)
{
    static const struct { int nid; const char *value; } specs[NEXTS] = {
        { NID_basic_constraints,        "critical,CA:FALSE" },
        { NID_key_usage,                "critical,digitalSignature" },
        { NID_ext_key_usage,            "clientAuth" },
        { NID_subject_key_identifier,   "hash" },
        { NID_authority_key_identifier, "keyid:always" },
    };
    X509      *scratch;
    X509V3_CTX ctx;
    char       msg[256];
    int        rc = FERRY_OK;

    if ((scratch = X509_new()) == NULL || X509_set_pubkey(scratch, iss->user_key) != 1) {
        X509_free(scratch);
        return ferry_err_set(err, FERRY_ENOMEM, "user certificates: out of memory");
    }
    X509V3_set_ctx(&ctx, iss->ca, scratch, NULL, NULL, 0);
    for (int k = 0; k < NEXTS; k++) {
        iss->exts[k] = X509V3_EXT_nconf_nid(NULL, &ctx, specs[k].nid, specs[k].value);
        if (iss->exts[k] == NULL) {
            rc = ferry_err_set(err, FERRY_EINVAL, "user certificates: extension %s: %s",
                               OBJ_nid2sn(specs[k].nid), tls_error_text(msg, sizeof(msg)));
            break;
        }
    }
    X509_free(scratch);
    return rc;
}

int
ferry_tls_issuer_new(const char *ca_cert, const char *ca_key, const char *pattern,
                     unsigned validity_minutes, struct ferry_tls_issuer **out,
                     struct ferry_err *err)
{
    struct ferry_tls_issuer *iss;
    char                     msg[256];
    int                      rc;

    if (validity_minutes < 1 || validity_minutes > FERRY_TLS_VALIDITY_MAX_MIN)
        return ferry_err_set(err, FERRY_EINVAL, "validity_minutes: %u is outside 1..%d",
                             validity_minutes, FERRY_TLS_VALIDITY_MAX_MIN);
    if ((iss = calloc(1, sizeof(*iss))) == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "user certificates: out of memory");
    iss->validity_s = (long)validity_minutes * 60;
    if ((rc = ferry_tls_subject_parse(pattern, &iss->subject, err)) != FERRY_OK)
        goto bad;
    if ((rc = load_ca(ca_cert, ca_key, &iss->ca, &iss->ca_key, err)) != FERRY_OK)
        goto bad;
    if ((rc = check_ca(iss->ca, iss->ca_key, ca_cert, ca_key, &iss->ca_not_after, err)) !=
        FERRY_OK)
        goto bad;
    if ((iss->user_key = EVP_EC_gen("P-256")) == NULL) {
        rc = ferry_err_set(err, FERRY_ENOMEM, "user certificates: EC P-256 key: %s",
                           tls_error_text(msg, sizeof(msg)));
        goto bad;
    }
    if ((rc = make_exts(iss, err)) != FERRY_OK)
        goto bad;
    *out = iss;
    return FERRY_OK;
bad:
    ferry_tls_issuer_free(iss);
    return rc;
}

void
ferry_tls_issuer_free(struct ferry_tls_issuer *iss)
{
    if (iss == NULL)
        return;
    for (int k = 0; k < NEXTS; k++)
        X509_EXTENSION_free(iss->exts[k]);
    ferry_tls_subject_free(iss->subject);
    EVP_PKEY_free(iss->user_key);
    EVP_PKEY_free(iss->ca_key);
    X509_free(iss->ca);
    free(iss);
}

EVP_PKEY *
ferry_tls_issuer_key(const struct ferry_tls_issuer *iss)
{
    return iss->user_key;
}

/* RFC 5280 4.1.2.2: positive, at most 20 octets; 128 random bits, top bit clear. */
static int
set_serial(X509 *x)
{
    unsigned char bytes[16];
    BIGNUM       *bn;
    int           ok;

    do {
        if (RAND_bytes(bytes, sizeof(bytes)) != 1)
            return -1;
        bytes[0] &= 0x7f;
    } while (bytes[0] == 0 && memcmp(bytes, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) == 0);
    if ((bn = BN_bin2bn(bytes, sizeof(bytes), NULL)) == NULL)
        return -1;
    ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static void
usercert_free(struct ferry_tls_usercert *uc)
{
    X509_free(uc->x509);
    OPENSSL_free(uc->der);
    free(uc->b64);
    free(uc->dn);
    free(uc);
}

/* x is signed: keep it with its DER, base64 and subject text. */
static int
usercert_wrap(X509 *x, const char *dn, time_t not_after, struct ferry_tls_usercert **out)
{
    struct ferry_tls_usercert *uc;
    int                        n;

    if ((uc = calloc(1, sizeof(*uc))) == NULL)
        return FERRY_ENOMEM;
    uc->refs = 1;
    uc->x509 = x;
    uc->not_after = not_after;
    if ((n = i2d_X509(x, &uc->der)) <= 0)
        goto bad;
    uc->der_len = (size_t)n;
    /* EVP_EncodeBlock writes one line, no newline, and a NUL. */
    if ((uc->b64 = malloc(4 * ((uc->der_len + 2) / 3) + 1)) == NULL ||
        (uc->dn = strdup(dn)) == NULL)
        goto bad;
    EVP_EncodeBlock((unsigned char *)uc->b64, uc->der, n);
    *out = uc;
    return FERRY_OK;
bad:
    uc->x509 = NULL;                /* the caller still owns x */
    usercert_free(uc);
    return FERRY_ENOMEM;
}

/* Sign a certificate for claims; dn is filled (FERRY_TLS_DN_MAX_BYTES). */
static int
issue(const struct ferry_tls_issuer *iss, const json_t *claims, time_t now, char *dn,
      struct ferry_tls_usercert **out, struct ferry_err *err)
{
    X509_NAME *name = NULL;
    X509      *x = NULL;
    time_t     not_after = now + iss->validity_s;
    char       msg[256];
    int        rc;

    if (not_after > iss->ca_not_after)
        not_after = iss->ca_not_after;
    if (not_after <= now + FERRY_TLS_REUSE_MARGIN_S)
        return ferry_err_set(err, FERRY_EUNAVAIL, "user certificates: the CA expires %s",
                             not_after <= now ? "now" : "within a minute");
    if ((rc = ferry_tls_subject_build(iss->subject, claims, &name, dn, FERRY_TLS_DN_MAX_BYTES,
                                      err)) != FERRY_OK)
        return rc;
    if ((x = X509_new()) == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        set_serial(x) != 0 ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, -FERRY_TLS_BACKDATE_S, &now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &not_after) == NULL ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(iss->ca)) != 1 ||
        X509_set_pubkey(x, iss->user_key) != 1)
        goto fail;
    for (int k = 0; k < NEXTS; k++)
        if (X509_add_ext(x, iss->exts[k], -1) != 1)
            goto fail;
    if (X509_sign(x, iss->ca_key, EVP_sha256()) <= 0)
        goto fail;
    if (usercert_wrap(x, dn, not_after, out) != FERRY_OK) {
        rc = ferry_err_set(err, FERRY_ENOMEM, "user certificate: out of memory");
        goto out;
    }
    x = NULL;                       /* the certificate owns it now */
    rc = FERRY_OK;
    goto out;
fail:
    rc = ferry_err_set(err, FERRY_EIO, "user certificate for %s: %s", dn,
                       tls_error_text(msg, sizeof(msg)));
out:
    X509_free(x);
    X509_NAME_free(name);
    return rc;
}

int
ferry_tls_issuer_issue(const struct ferry_tls_issuer *iss, const json_t *claims, time_t now,
                       struct ferry_tls_usercert **out, struct ferry_err *err)
{
    char dn[FERRY_TLS_DN_MAX_BYTES];

    return issue(iss, claims, now, dn, out, err);
}

void
ferry_tls_usercert_ref(struct ferry_tls_usercert *uc)
{
    uc->refs++;
}

void
ferry_tls_usercert_unref(struct ferry_tls_usercert *uc)
{
    if (uc != NULL && --uc->refs == 0)
        usercert_free(uc);
}

X509 *
ferry_tls_usercert_x509(const struct ferry_tls_usercert *uc)
{
    return uc->x509;
}

const uint8_t *
ferry_tls_usercert_der(const struct ferry_tls_usercert *uc, size_t *len)
{
    *len = uc->der_len;
    return uc->der;
}

const char *
ferry_tls_usercert_base64(const struct ferry_tls_usercert *uc)
{
    return uc->b64;
}

const char *
ferry_tls_usercert_subject(const struct ferry_tls_usercert *uc)
{
    return uc->dn;
}

time_t
ferry_tls_usercert_not_after(const struct ferry_tls_usercert *uc)
{
    return uc->not_after;
}

/*
 * The cache: a chained hash over the subject text and a doubly linked LRU list, most
 * recent first. One per worker, so no lock. An entry holds one reference; a caller
 * that still holds a certificate that left the cache keeps it alive.
 */
struct entry {
    struct ferry_tls_usercert *uc;      /* ref */
    uint32_t                   hash;
    struct entry              *hnext;   /* the bucket's chain */
    struct entry              *prev, *next;
};

struct ferry_tls_usercache {
    const struct ferry_tls_issuer *iss; /* borrowed */
    struct entry                 **buckets;  /* owns the array; entries via the list */
    size_t                         nbuckets; /* a power of two, >= max */
    size_t                         max;
    size_t                         count;
    struct entry                  *head, *tail;
    uint64_t                       issued, reused;
};

/* FNV-1a: subjects are short; the table is private to one worker. */
static uint32_t
hash_of(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int
ferry_tls_usercache_new(const struct ferry_tls_issuer *iss, size_t max_entries,
                        struct ferry_tls_usercache **out)
{
    struct ferry_tls_usercache *c;
    size_t                      n = 16;

    if (max_entries < 1 || max_entries > FERRY_TLS_USERCACHE_MAX)
        return FERRY_EINVAL;
    while (n < max_entries)
        n *= 2;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return FERRY_ENOMEM;
    if ((c->buckets = calloc(n, sizeof(*c->buckets))) == NULL) {
        free(c);
        return FERRY_ENOMEM;
    }
    c->iss = iss;
    c->nbuckets = n;
    c->max = max_entries;
    *out = c;
    return FERRY_OK;
}

static void
list_unlink(struct ferry_tls_usercache *c, struct entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void
list_push_front(struct ferry_tls_usercache *c, struct entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void
entry_remove(struct ferry_tls_usercache *c, struct entry *e)
{
    struct entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    list_unlink(c, e);
    ferry_tls_usercert_unref(e->uc);
    free(e);
    c->count--;
}

void
ferry_tls_usercache_free(struct ferry_tls_usercache *c)
{
    if (c == NULL)
        return;
    while (c->head != NULL)
        entry_remove(c, c->head);
    free(c->buckets);
    free(c);
}

static struct entry *
entry_find(struct ferry_tls_usercache *c, const char *dn, uint32_t hash)
{
    for (struct entry *e = c->buckets[hash & (c->nbuckets - 1)]; e != NULL; e = e->hnext)
        if (e->hash == hash && strcmp(e->uc->dn, dn) == 0)
            return e;
    return NULL;
}

/* Keep uc under its subject (hash of its dn) at the front; the cache's own reference. */
static void
entry_add(struct ferry_tls_usercache *c, struct ferry_tls_usercert *uc, uint32_t hash)
{
    struct entry *e;

    if ((e = calloc(1, sizeof(*e))) == NULL)
        return;                         /* not kept: the caller still has its certificate */
    if (c->count == c->max)
        entry_remove(c, c->tail);
    e->uc = uc;
    ferry_tls_usercert_ref(uc);
    e->hash = hash;
    e->hnext = c->buckets[hash & (c->nbuckets - 1)];
    c->buckets[hash & (c->nbuckets - 1)] = e;
    list_push_front(c, e);
    c->count++;
}

/* A usable entry for dn moves to the front and is returned; one too close to its end
 * leaves the cache. */
static struct entry *
lookup(struct ferry_tls_usercache *c, const char *dn, uint32_t hash, time_t now)
{
    struct entry *e = entry_find(c, dn, hash);

    if (e == NULL)
        return NULL;
    if (now + FERRY_TLS_REUSE_MARGIN_S >= e->uc->not_after) {
        entry_remove(c, e);
        return NULL;
    }
    list_unlink(c, e);
    list_push_front(c, e);
    return e;
}

int
ferry_tls_usercache_get(struct ferry_tls_usercache *c, const json_t *claims, time_t now,
                        struct ferry_tls_usercert **out, struct ferry_err *err)
{
    struct ferry_tls_usercert *uc;
    struct entry              *e;
    char                       dn[FERRY_TLS_DN_MAX_BYTES];
    uint32_t                   hash;
    int                        rc;

    /* The text alone is enough to look up: no X509_NAME unless we sign. */
    if ((rc = ferry_tls_subject_build(c->iss->subject, claims, NULL, dn, sizeof(dn), err)) !=
        FERRY_OK)
        return rc;
    hash = hash_of(dn);
    if ((e = lookup(c, dn, hash, now)) != NULL) {
        ferry_tls_usercert_ref(e->uc);
        *out = e->uc;
        c->reused++;
        return FERRY_OK;
    }
    if ((rc = issue(c->iss, claims, now, dn, &uc, err)) != FERRY_OK)
        return rc;
    c->issued++;
    entry_add(c, uc, hash);
    *out = uc;
    return FERRY_OK;
}

int
ferry_tls_usercache_find(struct ferry_tls_usercache *c, const json_t *claims, time_t now,
                         char *dn, size_t dn_size, struct ferry_tls_usercert **out,
                         struct ferry_err *err)
{
    struct entry *e;
    int           rc;

    if ((rc = ferry_tls_subject_build(c->iss->subject, claims, NULL, dn, dn_size, err)) !=
        FERRY_OK)
        return rc;
    if ((e = lookup(c, dn, hash_of(dn), now)) == NULL)
        return FERRY_ENOTFOUND;
    ferry_tls_usercert_ref(e->uc);
    *out = e->uc;
    c->reused++;
    return FERRY_OK;
}

void
ferry_tls_usercache_put(struct ferry_tls_usercache *c, struct ferry_tls_usercert *uc)
{
    uint32_t      hash = hash_of(uc->dn);
    struct entry *e = entry_find(c, uc->dn, hash);

    /* Two streams of one user may both have asked the signer: the later one wins. */
    if (e != NULL)
        entry_remove(c, e);
    c->issued++;
    entry_add(c, uc, hash);
}

void
ferry_tls_usercache_counts(const struct ferry_tls_usercache *c,
                           struct ferry_tls_usercache_counts *out)
{
    out->issued = c->issued;
    out->reused = c->reused;
    out->entries = c->count;
}
