/*
 * subject.c: SAP's subject patterns (usercert.h): parsed once at load, then applied to
 * a user's claims to make the X509_NAME of a user certificate and its RFC 4514 text.
 * Owns the pattern's parsed form; knows nothing of keys, certificates or caches
 * (usercert.c). Values enter the name attribute by attribute
 * (X509_NAME_add_entry_by_NID), never through a DN string, so no claim can inject one.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#include "tls/usercert.h"

#define CLAIM_NAME_MAX_BYTES 64
#define PARTS_MAX            16     /* literal pieces and claims in one value */
#define VALUE_MAX_BYTES      1024   /* one value after the claims are put in */

/* X.520 / RFC 5280 upper bounds, in characters. */
struct dn_field {
    const char *name;       /* as written in a pattern (any case) */
    const char *rfc4514;    /* as rendered (OpenSSL's short name) */
    int         nid;
    size_t      min_chars;
    size_t      max_chars;
};

static const struct dn_field fields[] = {
    { "CN",    "CN",           NID_commonName,             1, 64 },
    { "EMAIL", "emailAddress", NID_pkcs9_emailAddress,     1, 255 },
    { "L",     "L",            NID_localityName,           1, 128 },
    { "O",     "O",            NID_organizationName,       1, 64 },
    { "OU",    "OU",           NID_organizationalUnitName, 1, 64 },
    { "ST",    "ST",           NID_stateOrProvinceName,    1, 128 },
    { "C",     "C",            NID_countryName,            2, 2 },
};
#define FIELDS_KNOWN "CN, EMAIL, L, O, OU, ST, C"

/* ${name}: SAP's order for business users. */
static const char *const name_claims[] = { "user_name", "email", "mail", "user_uuid", "sub" };

enum part_kind { PART_TEXT, PART_CLAIM, PART_NAME };

struct part {
    enum part_kind kind;
    size_t         off;         /* into subject->buf: unescaped text or the claim's name */
    size_t         len;
};

struct rdn {
    const struct dn_field *field;
    struct part            parts[PARTS_MAX];
    size_t                 nparts;
};

struct ferry_tls_subject {
    char      *buf;             /* owns: literal text and claim names, each NUL-ended */
    size_t     used;
    struct rdn rdns[FERRY_TLS_SUBJECT_MAX_RDNS];
    size_t     nrdns;
};

static int
at(struct ferry_err *err, size_t i, const char *fmt, const char *what)
{
    ferry_err_set(err, FERRY_EINVAL, fmt, what);
    if (err != NULL)
        err->col = (int)i + 1;
    return FERRY_EINVAL;
}

static bool
is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool
is_claim_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.' || ch == ':';
}

static const struct dn_field *
field_named(const char *p, size_t len)
{
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strlen(fields[i].name) == len && strncasecmp(fields[i].name, p, len) == 0)
            return &fields[i];
    return NULL;
}

/* Start a part in s->buf; text parts grow as characters come. */
static struct part *
part_open(struct ferry_tls_subject *s, struct rdn *r, enum part_kind kind)
{
    struct part *pt;

    if (r->nparts == PARTS_MAX)
        return NULL;
    pt = &r->parts[r->nparts++];
    pt->kind = kind;
    pt->off = s->used;
    pt->len = 0;
    return pt;
}

/* One value: from p[*i] to an unescaped ',' or the end. */
static int
parse_value(struct ferry_tls_subject *s, struct rdn *r, const char *p, size_t len, size_t *i,
            struct ferry_err *err)
{
    struct part *text = NULL;
    size_t       start = *i;

    while (*i < len && p[*i] != ',') {
        char ch = p[*i];

        if (ch == '$' && *i + 1 < len && p[*i + 1] == '{') {
            size_t       name_at = *i + 2, j = name_at;
            struct part *pt;

            while (j < len && is_claim_char(p[j]))
                j++;
            if (j == len || p[j] != '}') {
                if (j == len || p[j] == ',')
                    return at(err, *i, "unclosed '%s' (a claim is written ${claim})", "${");
                return at(err, j, "'%.1s' cannot be part of a claim name", &p[j]);
            }
            if (j == name_at)
                return at(err, *i, "%s: an empty claim name", "${}");
            if (j - name_at > CLAIM_NAME_MAX_BYTES)
                return at(err, name_at, "%s: a claim name longer than 64 bytes", "${");
            if ((pt = part_open(s, r, PART_CLAIM)) == NULL)
                return at(err, *i, "%s: more than 16 pieces in one value", r->field->name);
            if (j - name_at == 4 && memcmp(&p[name_at], "name", 4) == 0)
                pt->kind = PART_NAME;
            pt->len = j - name_at;
            memcpy(&s->buf[s->used], &p[name_at], pt->len);
            s->used += pt->len;
            s->buf[s->used++] = '\0';
            text = NULL;
            *i = j + 1;
            continue;
        }
        if (ch == '\\') {
            if (*i + 1 == len)
                return at(err, *i, "a '%s' at the end (it escapes the next character)", "\\");
            ch = p[++*i];
        }
        if (text == NULL) {
            if ((text = part_open(s, r, PART_TEXT)) == NULL)
                return at(err, *i, "%s: more than 16 pieces in one value", r->field->name);
        }
        s->buf[s->used++] = ch;         /* text is read by length: no NUL */
        text->len++;
        (*i)++;
    }
    if (r->nparts == 0)
        return at(err, start, "%s= has no value", r->field->name);
    return FERRY_OK;
}

int
ferry_tls_subject_parse(const char *pattern, struct ferry_tls_subject **out,
                        struct ferry_err *err)
{
    struct ferry_tls_subject *s;
    size_t                    len = strlen(pattern), i = 0;
    int                       rc;

    if (len == 0)
        return at(err, 0, "%s", "an empty subject pattern");
    if (len > FERRY_TLS_SUBJECT_MAX_BYTES)
        return at(err, FERRY_TLS_SUBJECT_MAX_BYTES, "%s", "a subject pattern over 1024 bytes");
    if ((s = calloc(1, sizeof(*s))) == NULL || (s->buf = malloc(2 * len + 2)) == NULL) {
        free(s);
        return ferry_err_set(err, FERRY_ENOMEM, "subject pattern: out of memory");
    }
    for (;;) {
        struct rdn *r;
        size_t      name_at;

        while (i < len && is_space(pattern[i]))
            i++;
        if (i == len) {
            rc = at(err, i == 0 ? 0 : i - 1, "%s",
                    s->nrdns == 0 ? "an empty subject pattern" : "a ',' with no field after it");
            goto bad;
        }
        if (pattern[i] == ',') {
            rc = at(err, i, "%s", s->nrdns == 0 ? "a ',' before the first field"
                                                : "two ',' in a row (an empty field)");
            goto bad;
        }
        if (s->nrdns == FERRY_TLS_SUBJECT_MAX_RDNS) {
            rc = at(err, i, "%s", "more than 16 fields");
            goto bad;
        }
        r = &s->rdns[s->nrdns];
        name_at = i;
        while (i < len && ((pattern[i] >= 'A' && pattern[i] <= 'Z') ||
                           (pattern[i] >= 'a' && pattern[i] <= 'z')))
            i++;
        if (i == name_at) {
            rc = at(err, i, "expected a field name (%s)", FIELDS_KNOWN);
            goto bad;
        }
        if ((r->field = field_named(&pattern[name_at], i - name_at)) == NULL) {
            char name[32];

            snprintf(name, sizeof(name), "%.*s", (int)(i - name_at), &pattern[name_at]);
            ferry_err_set(err, FERRY_EINVAL, "unknown field '%s' (known: %s)", name,
                          FIELDS_KNOWN);
            if (err != NULL)
                err->col = (int)name_at + 1;
            rc = FERRY_EINVAL;
            goto bad;
        }
        while (i < len && is_space(pattern[i]))
            i++;
        if (i == len || pattern[i] != '=') {
            rc = at(err, i, "expected '=' after %s", r->field->name);
            goto bad;
        }
        i++;
        if ((rc = parse_value(s, r, pattern, len, &i, err)) != FERRY_OK)
            goto bad;
        s->nrdns++;
        if (i == len)
            break;
        i++;                                    /* the ',' */
    }
    *out = s;
    return FERRY_OK;
bad:
    ferry_tls_subject_free(s);
    return rc;
}

void
ferry_tls_subject_free(struct ferry_tls_subject *s)
{
    if (s == NULL)
        return;
    free(s->buf);
    free(s);
}

long
ferry_tls_dn_escape(const char *value, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t            o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value[i];
        char          esc[3];
        size_t        n = 0;

        if (ch < 0x20 || ch == 0x7f) {
            esc[n++] = '\\';
            esc[n++] = hex[ch >> 4];
            esc[n++] = hex[ch & 0x0f];
        } else {
            if (strchr("\"+,;<>\\", ch) != NULL || (i == 0 && (ch == '#' || ch == ' ')) ||
                (i == len - 1 && ch == ' '))
                esc[n++] = '\\';
            esc[n++] = (char)ch;
        }
        if (o + n >= cap) {
            if (cap > 0)
                out[0] = '\0';
            return FERRY_ELIMIT;
        }
        memcpy(&out[o], esc, n);
        o += n;
    }
    if (cap == 0)
        return FERRY_ELIMIT;
    out[o] = '\0';
    return (long)o;
}

/* A claim as text: strings as they are, integers and reals in decimal. NULL when
 * absent, of another type, or holding a NUL. */
static const char *
claim_text(const json_t *claims, const char *name, char *num, size_t num_size, size_t *len)
{
    const json_t *v = json_object_get(claims, name);

    if (json_is_string(v)) {
        const char *str = json_string_value(v);

        *len = json_string_length(v);
        return strlen(str) == *len ? str : NULL;
    }
    if (json_is_integer(v))
        snprintf(num, num_size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(num, num_size, "%.15g", json_real_value(v));
    else
        return NULL;
    *len = strlen(num);
    return num;
}

static size_t
utf8_chars(const char *p, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        if (((unsigned char)p[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* Fill value (VALUE_MAX_BYTES + 1) for r from claims; *len its length. */
static int
rdn_value(const struct ferry_tls_subject *s, const struct rdn *r, const json_t *claims,
          char *value, size_t *len, struct ferry_err *err)
{
    size_t n = 0;

    for (size_t k = 0; k < r->nparts; k++) {
        const struct part *pt = &r->parts[k];
        const char        *piece = &s->buf[pt->off];
        const char        *name = piece;
        char               num[64];
        size_t             plen = pt->len;

        if (pt->kind == PART_CLAIM) {
            if ((piece = claim_text(claims, name, num, sizeof(num), &plen)) == NULL)
                return ferry_err_set(err, FERRY_EDENIED,
                                     "%s: the claim '%s' is missing (or not a string)",
                                     r->field->name, name);
        } else if (pt->kind == PART_NAME) {
            piece = NULL;
            for (size_t c = 0; c < sizeof(name_claims) / sizeof(name_claims[0]); c++) {
                piece = claim_text(claims, name_claims[c], num, sizeof(num), &plen);
                if (piece != NULL && plen > 0)
                    break;
                piece = NULL;
            }
            if (piece == NULL)
                return ferry_err_set(err, FERRY_EDENIED,
                                     "%s: ${name} found none of the claims user_name, email, "
                                     "mail, user_uuid, sub", r->field->name);
        }
        if (plen > VALUE_MAX_BYTES - n)
            return ferry_err_set(err, FERRY_EDENIED, "%s: a value over %d bytes",
                                 r->field->name, VALUE_MAX_BYTES);
        memcpy(&value[n], piece, plen);
        n += plen;
    }
    value[n] = '\0';
    *len = n;
    return FERRY_OK;
}

int
ferry_tls_subject_build(const struct ferry_tls_subject *s, const json_t *claims,
                        X509_NAME **name, char *dn, size_t dn_size, struct ferry_err *err)
{
    char        values[FERRY_TLS_SUBJECT_MAX_RDNS][VALUE_MAX_BYTES + 1];
    size_t      lens[FERRY_TLS_SUBJECT_MAX_RDNS];
    X509_NAME  *nm = NULL;
    size_t      o = 0;
    int         rc;

    if (!json_is_object(claims))
        return ferry_err_set(err, FERRY_EDENIED, "the user's claims are not a JSON object");
    for (size_t k = 0; k < s->nrdns; k++) {
        const struct dn_field *f = s->rdns[k].field;
        size_t                 chars;

        if ((rc = rdn_value(s, &s->rdns[k], claims, values[k], &lens[k], err)) != FERRY_OK)
            return rc;
        chars = utf8_chars(values[k], lens[k]);
        if (chars == 0)
            return ferry_err_set(err, FERRY_EDENIED, "%s: an empty value", f->name);
        if (f->min_chars == f->max_chars && chars != f->max_chars)
            return ferry_err_set(err, FERRY_EDENIED, "%s: %zu characters, must be exactly %zu",
                                 f->name, chars, f->max_chars);
        if (chars > f->max_chars)
            return ferry_err_set(err, FERRY_EDENIED,
                                 "%s: %zu characters, over its upper bound of %zu", f->name,
                                 chars, f->max_chars);
    }
    /* RFC 4514 writes the last RDN of the sequence first: add them back to front. */
    if (name != NULL && (nm = X509_NAME_new()) == NULL)
        return ferry_err_set(err, FERRY_ENOMEM, "subject: out of memory");
    for (size_t k = s->nrdns; nm != NULL && k-- > 0;) {
        if (X509_NAME_add_entry_by_NID(nm, s->rdns[k].field->nid, MBSTRING_UTF8,
                                       (const unsigned char *)values[k], (int)lens[k], -1,
                                       0) != 1) {
            X509_NAME_free(nm);
            ERR_clear_error();
            return ferry_err_set(err, FERRY_EDENIED, "%s: the value cannot be encoded in it",
                                 s->rdns[k].field->name);
        }
    }
    for (size_t k = 0; k < s->nrdns; k++) {
        const char *type = s->rdns[k].field->rfc4514;
        size_t      tlen = strlen(type);
        long        n;

        if (o + tlen + 2 >= dn_size)
            goto toolong;
        if (k > 0)
            dn[o++] = ',';
        memcpy(&dn[o], type, tlen);
        o += tlen;
        dn[o++] = '=';
        if ((n = ferry_tls_dn_escape(values[k], lens[k], &dn[o], dn_size - o)) < 0)
            goto toolong;
        o += (size_t)n;
    }
    dn[o] = '\0';                                /* o < dn_size: the escape left room */
    if (name != NULL)
        *name = nm;
    return FERRY_OK;
toolong:
    X509_NAME_free(nm);
    return ferry_err_set(err, FERRY_EDENIED, "subject: the distinguished name is too long");
}
