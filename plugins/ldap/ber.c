/*
 * ber.c: LDAPMessage framing, reading and writing (see ber.h).
 */
#include <string.h>

#include "ber.h"

/* Read one TLV header at p[0..len): tag, content offset and length. 1 ok, 0 need more,
 * -1 malformed. */
static int
tlv(const uint8_t *p, size_t len, uint8_t *tag, size_t *hdr, size_t *clen)
{
    size_t n, v = 0;

    if (len < 2)
        return 0;
    *tag = p[0];
    if ((p[0] & 0x1f) == 0x1f)
        return -1;                          /* multi-octet tags: none in LDAP */
    if (p[1] < 0x80) {
        *hdr = 2;
        *clen = p[1];
        return 1;
    }
    n = p[1] & 0x7f;
    if (n == 0 || n > 4)
        return -1;                          /* indefinite, or absurdly long */
    if (len < 2 + n)
        return 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[2 + i];
    *hdr = 2 + n;
    *clen = v;
    return 1;
}

int
ber_frame(const uint8_t *buf, size_t len, size_t max, size_t *msg_len, const char **why)
{
    uint8_t tag;
    size_t  hdr, clen;
    int     rc;

    if (len > 0 && buf[0] != 0x30) {
        *why = "not an LDAPMessage (SEQUENCE expected)";
        return -1;
    }
    if ((rc = tlv(buf, len, &tag, &hdr, &clen)) <= 0) {
        if (rc < 0)
            *why = "bad BER length (indefinite or over 4 octets)";
        return rc;
    }
    if (clen > max || hdr + clen > max) {
        *msg_len = hdr + clen;
        *why = "message over max_message_bytes";
        return -2;
    }
    if (len < hdr + clen)
        return 0;
    *msg_len = hdr + clen;
    return 1;
}

/* The element at *p (within end): its tag and content. Advances *p past it. */
static int
next(const uint8_t **p, const uint8_t *end, uint8_t *tag, const uint8_t **c, size_t *clen)
{
    size_t hdr, n;

    if (tlv(*p, (size_t)(end - *p), tag, &hdr, &n) != 1 || n > (size_t)(end - *p) - hdr)
        return -1;
    *c = *p + hdr;
    *clen = n;
    *p = *c + n;
    return 0;
}

int
ldap_parse(const uint8_t *msg, size_t len, struct ldap_msg *out, const char **why)
{
    const uint8_t *p = msg, *end = msg + len, *c, *body, *op_end, *q;
    size_t         n, blen;
    uint8_t        tag;

    memset(out, 0, sizeof(*out));
    out->result = -1;
    if (next(&p, end, &tag, &body, &blen) != 0 || tag != 0x30 || p != end) {
        *why = "bad LDAPMessage envelope";
        return -1;
    }
    p = body;
    end = body + blen;
    if (next(&p, end, &tag, &c, &n) != 0 || tag != 0x02 || n == 0 || n > 4 || (c[0] & 0x80)) {
        *why = "bad messageID";
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        out->id = (out->id << 8) | c[i];
    if (p >= end || (p[0] & 0xc0) != 0x40) {
        *why = "bad protocolOp (APPLICATION tag expected)";
        return -1;
    }
    out->op = p[0] & 0x1f;
    if (next(&p, end, &tag, &body, &blen) != 0) {
        *why = "bad protocolOp length";
        return -1;
    }
    /* What follows (controls [0]) is passed through untouched. */
    op_end = body + blen;
    q = body;
    switch (out->op) {
    case LDAP_BIND_REQ:
        if (next(&q, op_end, &tag, &c, &n) != 0 || tag != 0x02 ||      /* version */
            next(&q, op_end, &tag, &c, &n) != 0 || tag != 0x04) {      /* name */
            *why = "bad BindRequest";
            return -1;
        }
        out->dn = c;
        out->dn_len = n;
        if (q >= op_end) {
            *why = "BindRequest without authentication";
            return -1;
        }
        out->sasl = q[0] == 0xa3;
        break;
    case LDAP_SEARCH_REQ: case LDAP_MODIFY_REQ: case LDAP_ADD_REQ: case LDAP_MODDN_REQ:
    case LDAP_COMPARE_REQ:
        if (next(&q, op_end, &tag, &c, &n) != 0 || tag != 0x04) {
            *why = "bad request (LDAPDN expected first)";
            return -1;
        }
        out->dn = c;
        out->dn_len = n;
        break;
    case LDAP_DEL_REQ:
        out->dn = body;                     /* [APPLICATION 10] LDAPDN, primitive */
        out->dn_len = blen;
        break;
    case LDAP_EXT_REQ:
        if (next(&q, op_end, &tag, &c, &n) != 0 || tag != 0x80) {
            *why = "bad ExtendedRequest";
            return -1;
        }
        out->oid = c;
        out->oid_len = n;
        break;
    case LDAP_BIND_RESP: case LDAP_SEARCH_DONE: case LDAP_MODIFY_RESP: case LDAP_ADD_RESP:
    case LDAP_DEL_RESP: case LDAP_MODDN_RESP: case LDAP_COMPARE_RESP: case LDAP_EXT_RESP:
        /* resultCode is a non-negative ENUMERATED: a leading 1 bit would be a
         * negative number, and shifting it into an int overflows. */
        if (next(&q, op_end, &tag, &c, &n) != 0 || tag != 0x0a || n == 0 || n > 4 ||
            (c[0] & 0x80)) {
            *why = "bad LDAPResult";
            return -1;
        }
        out->result = 0;
        for (size_t i = 0; i < n; i++)
            out->result = (out->result << 8) | c[i];
        if (out->op == LDAP_EXT_RESP) {
            /* matchedDN, diagnosticMessage, [referral], then responseName [10] */
            for (int k = 0; k < 2; k++)
                if (next(&q, op_end, &tag, &c, &n) != 0) {
                    *why = "bad ExtendedResponse";
                    return -1;
                }
            while (q < op_end && next(&q, op_end, &tag, &c, &n) == 0)
                if (tag == 0x8a) {
                    out->oid = c;
                    out->oid_len = n;
                }
        }
        break;
    default:
        break;
    }
    return 0;
}

int
ldap_response_op(int op)
{
    switch (op) {
    case LDAP_BIND_REQ:    return LDAP_BIND_RESP;
    case LDAP_SEARCH_REQ:  return LDAP_SEARCH_DONE;
    case LDAP_MODIFY_REQ:  return LDAP_MODIFY_RESP;
    case LDAP_ADD_REQ:     return LDAP_ADD_RESP;
    case LDAP_DEL_REQ:     return LDAP_DEL_RESP;
    case LDAP_MODDN_REQ:   return LDAP_MODDN_RESP;
    case LDAP_COMPARE_REQ: return LDAP_COMPARE_RESP;
    case LDAP_EXT_REQ:     return LDAP_EXT_RESP;
    default:               return -1;
    }
}

const char *
ldap_op_name(int op)
{
    switch (op) {
    case LDAP_BIND_REQ:    return "bind";
    case LDAP_UNBIND_REQ:  return "unbind";
    case LDAP_SEARCH_REQ:  return "search";
    case LDAP_MODIFY_REQ:  return "modify";
    case LDAP_ADD_REQ:     return "add";
    case LDAP_DEL_REQ:     return "delete";
    case LDAP_MODDN_REQ:   return "modrdn";
    case LDAP_COMPARE_REQ: return "compare";
    case LDAP_ABANDON_REQ: return "abandon";
    case LDAP_EXT_REQ:     return "extended";
    default:               return "other";
    }
}

/* ---- writing ------------------------------------------------------------------------ */

struct w {
    uint8_t *p;
    size_t   len, cap;
    bool     full;
};

static void
put(struct w *w, const void *d, size_t n)
{
    if (w->full || w->len + n > w->cap) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, d, n);
    w->len += n;
}

/* A length in BER (definite, minimal). */
static void
put_len(struct w *w, size_t n)
{
    uint8_t b[5];

    if (n < 0x80) {
        b[0] = (uint8_t)n;
        put(w, b, 1);
    } else if (n <= 0xff) {
        b[0] = 0x81;
        b[1] = (uint8_t)n;
        put(w, b, 2);
    } else if (n <= 0xffff) {
        b[0] = 0x82;
        b[1] = (uint8_t)(n >> 8);
        b[2] = (uint8_t)n;
        put(w, b, 3);
    } else {
        b[0] = 0x84;
        b[1] = (uint8_t)(n >> 24);
        b[2] = (uint8_t)(n >> 16);
        b[3] = (uint8_t)(n >> 8);
        b[4] = (uint8_t)n;
        put(w, b, 5);
    }
}

static void
put_tlv(struct w *w, uint8_t tag, const void *d, size_t n)
{
    put(w, &tag, 1);
    put_len(w, n);
    put(w, d, n);
}

/* A non-negative INTEGER (or ENUMERATED) in minimal two's complement. */
static void
put_int(struct w *w, uint8_t tag, uint32_t v)
{
    uint8_t b[5];
    size_t  n = 0;
    int     start = 0;

    b[0] = 0;
    b[1] = (uint8_t)(v >> 24);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 8);
    b[4] = (uint8_t)v;
    for (start = 1; start < 4 && b[start] == 0 && !(b[start + 1] & 0x80); start++)
        ;
    if (b[start] & 0x80)
        start--;                            /* keep it positive */
    n = 5 - (size_t)start;
    put_tlv(w, tag, b + start, n);
}

/* Wrap inner[0..n) as the protocolOp of an LDAPMessage with id. */
static size_t
envelope(uint8_t *out, size_t cap, uint32_t id, uint8_t optag, const uint8_t *inner, size_t n)
{
    uint8_t  tmp[16];
    struct w idw = { tmp, 0, sizeof(tmp), false }, w = { out, 0, cap, false };
    uint8_t  seq = 0x30;
    uint8_t  oh[6];
    struct w ohw = { oh, 0, sizeof(oh), false };

    put_int(&idw, 0x02, id);
    put(&ohw, &optag, 1);
    put_len(&ohw, n);
    put(&w, &seq, 1);
    put_len(&w, idw.len + ohw.len + n);
    put(&w, tmp, idw.len);
    put(&w, oh, ohw.len);
    put(&w, inner, n);
    return w.full ? 0 : w.len;
}

size_t
ldap_write_bind(uint8_t *out, size_t cap, uint32_t id, const char *dn, const char *password)
{
    uint8_t  inner[2048];
    struct w w = { inner, 0, sizeof(inner), false };
    size_t   n;

    put_int(&w, 0x02, 3);                                   /* version */
    put_tlv(&w, 0x04, dn, strlen(dn));                      /* name */
    put_tlv(&w, 0x80, password, strlen(password));          /* simple [0] */
    n = w.full ? 0 : envelope(out, cap, id, 0x60, inner, w.len);
    explicit_bzero(inner, sizeof(inner));                   /* the password */
    return n;
}

size_t
ldap_write_starttls(uint8_t *out, size_t cap, uint32_t id)
{
    uint8_t  inner[64];
    struct w w = { inner, 0, sizeof(inner), false };

    put_tlv(&w, 0x80, LDAP_OID_STARTTLS, strlen(LDAP_OID_STARTTLS));
    return w.full ? 0 : envelope(out, cap, id, 0x77, inner, w.len);
}

size_t
ldap_write_result(uint8_t *out, size_t cap, uint32_t id, int op, int code, const char *diag,
                  const char *oid)
{
    uint8_t  inner[1024];
    struct w w = { inner, 0, sizeof(inner), false };
    size_t   dl = strlen(diag);

    if (dl > 512)
        dl = 512;
    put_int(&w, 0x0a, (uint32_t)code);                      /* resultCode */
    put_tlv(&w, 0x04, "", 0);                               /* matchedDN */
    put_tlv(&w, 0x04, diag, dl);                            /* diagnosticMessage */
    if (oid != NULL)
        put_tlv(&w, 0x8a, oid, strlen(oid));                /* responseName [10] */
    return w.full ? 0 : envelope(out, cap, id, (uint8_t)(0x60 | op), inner, w.len);
}
