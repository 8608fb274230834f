/*
 * usercert.h: the connector's user certificates for principal propagation (DESIGN.md,
 * "User identity: principal propagation"): a subject pattern turns a user's validated
 * JWT claims into a distinguished name, the issuer signs a short-lived certificate for
 * it with the configured CA, and a per-worker cache hands the same certificate back
 * until a minute before it expires.
 *
 * Subject patterns are SAP Cloud Connector's: RDNs separated by ',', written most
 * specific first as in RFC 4514 ("CN=${name},OU=Sales,O=Acme,C=DE"). Fields: CN, EMAIL
 * (emailAddress), L, O, OU, ST, C. A value is literal text and claim references:
 * ${name} is the first non-empty of the claims user_name, email, mail, user_uuid, sub;
 * ${<claim>} any string (or number) claim. In literal text '\' takes the next character
 * as it is ("\," is a comma). Claim values never go through a DN string: each RDN is
 * added as one attribute value, so a claim cannot add or change an RDN. The textual DN
 * (RFC 4514, escaped) is what the audit log and the cache key use.
 *
 * Threads: a subject and an issuer are built at load (the issuer reads files: main
 * thread only), then only read, so all workers may share them. A cache and the
 * certificates it hands out belong to one thread: one cache per worker.
 */
#ifndef FERRY_TLS_USERCERT_H
#define FERRY_TLS_USERCERT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <ferry/err.h>

#define FERRY_TLS_SUBJECT_MAX_BYTES   1024  /* a pattern's length */
#define FERRY_TLS_SUBJECT_MAX_RDNS    16    /* fields in one pattern */
#define FERRY_TLS_DN_MAX_BYTES        4096  /* the textual DN of one certificate */
#define FERRY_TLS_VALIDITY_MAX_MIN    43200 /* 30 days, SAP's upper bound */
#define FERRY_TLS_USERCACHE_DEFAULT   4096  /* certificates one worker keeps */
#define FERRY_TLS_USERCACHE_MAX       1048576
#define FERRY_TLS_REUSE_MARGIN_S      60    /* not handed out with less left than this */
#define FERRY_TLS_BACKDATE_S          60    /* notBefore = now - this (clock skew) */

struct ferry_tls_subject;
struct ferry_tls_issuer;
struct ferry_tls_usercert;
struct ferry_tls_usercache;

/* Parse pattern once, at load. FERRY_OK and the caller owns *out; or FERRY_EINVAL with
 * err->col the 1-based column in the pattern (err->line 0: the caller knows the file
 * and line of the pattern and adds them). FERRY_ENOMEM. */
int  ferry_tls_subject_parse(const char *pattern, struct ferry_tls_subject **out,
                             struct ferry_err *err);
void ferry_tls_subject_free(struct ferry_tls_subject *s);

/* The subject for claims (a JSON object). FERRY_OK: the caller owns *name (name may be
 * NULL: the text only, as a cache lookup needs), and dn
 * (dn_size bytes, at most FERRY_TLS_DN_MAX_BYTES are needed) holds its RFC 4514 text.
 * FERRY_EDENIED with the reason in err (a claim missing, a value empty or over its
 * field's X.520 upper bound: CN, O, OU 64 characters, L, ST 128, EMAIL 255, C exactly
 * 2; not encodable); the reason names the field and claim, never a value. FERRY_ENOMEM. */
int  ferry_tls_subject_build(const struct ferry_tls_subject *s, const json_t *claims,
                             X509_NAME **name, char *dn, size_t dn_size,
                             struct ferry_err *err);

/* RFC 4514 section 2.4: value (len bytes) escaped into out (cap bytes, NUL-terminated):
 * '"' '+' ',' ';' '<' '>' '\' get a '\', as do a leading '#' or space and a trailing
 * space; NUL and other control bytes become \XX. The length written (without the NUL),
 * or FERRY_ELIMIT when out is too small (out is then "", if cap > 0). */
long ferry_tls_dn_escape(const char *value, size_t len, char *out, size_t cap);

/* Load the CA (PEM certificate and PEM private key, unencrypted; RSA or EC) and make the
 * issuer's user key (EC P-256, one per issuer: every user certificate of this issuer
 * carries it). Refused, with the file named (never key bytes): a file that does not
 * load, a key that is not the certificate's, a certificate that is not a CA
 * (basicConstraints CA:TRUE and keyUsage keyCertSign) or has expired; validity_minutes
 * outside 1..FERRY_TLS_VALIDITY_MAX_MIN; a bad pattern (FERRY_EINVAL, err->col set as
 * by ferry_tls_subject_parse). FERRY_OK: the caller owns *out. Main thread: reads files. */
int  ferry_tls_issuer_new(const char *ca_cert, const char *ca_key, const char *pattern,
                          unsigned validity_minutes, struct ferry_tls_issuer **out,
                          struct ferry_err *err);
/* After every cache made from it is freed. */
void ferry_tls_issuer_free(struct ferry_tls_issuer *iss);

/* The user certificates' private key (TLS mode), borrowed: valid until the issuer is
 * freed; EVP_PKEY_up_ref() to keep it longer. */
EVP_PKEY *ferry_tls_issuer_key(const struct ferry_tls_issuer *iss);

/* Issue a new certificate for claims at time now (no cache): version 3, a random
 * positive 128-bit serial, valid from now - FERRY_TLS_BACKDATE_S to now + validity (or
 * to the CA's own notAfter if that comes first; FERRY_EUNAVAIL once the CA has less
 * than FERRY_TLS_REUSE_MARGIN_S left),
 * subject from the pattern, issuer the CA's subject, basicConstraints CA:FALSE and
 * keyUsage digitalSignature (both critical), extendedKeyUsage clientAuth, subject and
 * authority key identifiers; signed by the CA key with SHA-256. FERRY_OK: the caller
 * holds one reference to *out (ferry_tls_usercert_unref). FERRY_EDENIED (the claims,
 * see ferry_tls_subject_build), FERRY_ENOMEM, FERRY_EIO (OpenSSL failed). */
int  ferry_tls_issuer_issue(const struct ferry_tls_issuer *iss, const json_t *claims,
                            time_t now, struct ferry_tls_usercert **out,
                            struct ferry_err *err);

/* References are not atomic: a certificate stays on the thread that got it. */
void ferry_tls_usercert_ref(struct ferry_tls_usercert *uc);
void ferry_tls_usercert_unref(struct ferry_tls_usercert *uc);
/* Accessors; every pointer is borrowed, valid while the caller holds its reference. */
X509       *ferry_tls_usercert_x509(const struct ferry_tls_usercert *uc);
const uint8_t *ferry_tls_usercert_der(const struct ferry_tls_usercert *uc, size_t *len);
/* Base64 of the DER, one line, no newline: the SSL_CLIENT_CERT header's value. */
const char *ferry_tls_usercert_base64(const struct ferry_tls_usercert *uc);
/* The subject as RFC 4514 text (for the audit line). */
const char *ferry_tls_usercert_subject(const struct ferry_tls_usercert *uc);
time_t      ferry_tls_usercert_not_after(const struct ferry_tls_usercert *uc);

/* One per worker (not thread-safe): at most max_entries certificates (1..
 * FERRY_TLS_USERCACHE_MAX), keyed by subject DN, the least recently used leaving when
 * full. iss is borrowed and must outlive the cache. FERRY_OK, FERRY_EINVAL, FERRY_ENOMEM. */
int  ferry_tls_usercache_new(const struct ferry_tls_issuer *iss, size_t max_entries,
                             struct ferry_tls_usercache **out);
void ferry_tls_usercache_free(struct ferry_tls_usercache *c);

/* The certificate for claims at time now: the cached one for the same subject while it
 * has more than FERRY_TLS_REUSE_MARGIN_S left, else a new one (which replaces it). The
 * caller holds one reference to *out. Errors as ferry_tls_issuer_issue. */
int  ferry_tls_usercache_get(struct ferry_tls_usercache *c, const json_t *claims, time_t now,
                             struct ferry_tls_usercert **out, struct ferry_err *err);

/* The cached certificate for claims at time now, without signing (the connector signs
 * on another thread, ferry_tls_issuer_issue, and puts the result back). dn (dn_size
 * bytes, FERRY_TLS_DN_MAX_BYTES suffice) gets the subject text either way, for the audit
 * line of a refusal and the caller's bookkeeping. FERRY_OK: a hit with more than
 * FERRY_TLS_REUSE_MARGIN_S left (counted as reused), the caller holds one reference.
 * FERRY_ENOTFOUND: none usable (one too close to its end is dropped). FERRY_EDENIED
 * with err as ferry_tls_subject_build (the claims make no subject). */
int  ferry_tls_usercache_find(struct ferry_tls_usercache *c, const json_t *claims, time_t now,
                              char *dn, size_t dn_size, struct ferry_tls_usercert **out,
                              struct ferry_err *err);
/* Keep uc (issued by this cache's issuer) under its subject, replacing any entry for the
 * same subject, the least recently used leaving when full; counted as issued. The cache
 * takes its own reference: the caller keeps its own. Without memory it is simply not
 * kept (the caller's certificate stays good). */
void ferry_tls_usercache_put(struct ferry_tls_usercache *c, struct ferry_tls_usercert *uc);

struct ferry_tls_usercache_counts {
    uint64_t issued;    /* certificates signed through this cache */
    uint64_t reused;    /* answers from the cache */
    size_t   entries;   /* certificates kept now */
};
void ferry_tls_usercache_counts(const struct ferry_tls_usercache *c,
                                struct ferry_tls_usercache_counts *out);

#endif
