/*
 * ber.h: the part of BER (X.690) and LDAPv3 (RFC 4511) the ldap plugin needs: find
 * where one LDAPMessage ends, read its messageID, operation and DN, and write the few
 * messages ferry sends itself (its bind, StartTLS, results, Notice of Disconnection).
 *
 * Only definite lengths are accepted (RFC 4511 section 5.1 requires them), at most four
 * length octets, and every inner length must fit inside its container: a message is
 * either well framed or refused, never guessed at.
 */
#ifndef FERRY_LDAP_BER_H
#define FERRY_LDAP_BER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* protocolOp tags (class APPLICATION; constructed unless noted). */
enum ldap_op {
    LDAP_BIND_REQ = 0, LDAP_BIND_RESP = 1, LDAP_UNBIND_REQ = 2 /* primitive */,
    LDAP_SEARCH_REQ = 3, LDAP_SEARCH_ENTRY = 4, LDAP_SEARCH_DONE = 5,
    LDAP_MODIFY_REQ = 6, LDAP_MODIFY_RESP = 7, LDAP_ADD_REQ = 8, LDAP_ADD_RESP = 9,
    LDAP_DEL_REQ = 10 /* primitive */, LDAP_DEL_RESP = 11, LDAP_MODDN_REQ = 12,
    LDAP_MODDN_RESP = 13, LDAP_COMPARE_REQ = 14, LDAP_COMPARE_RESP = 15,
    LDAP_ABANDON_REQ = 16 /* primitive */, LDAP_SEARCH_REF = 19, LDAP_EXT_REQ = 23,
    LDAP_EXT_RESP = 24, LDAP_INTERMEDIATE = 25,
};

/* Result codes ferry uses. */
#define LDAP_SUCCESS                 0
#define LDAP_PROTOCOL_ERROR          2
#define LDAP_AUTH_METHOD_NOT_SUPP    7
#define LDAP_INSUFFICIENT_ACCESS     50
#define LDAP_UNAVAILABLE             52
#define LDAP_OTHER                   80

#define LDAP_OID_STARTTLS   "1.3.6.1.4.1.1466.20037"
#define LDAP_OID_NOTICE     "1.3.6.1.4.1.1466.20036"

/* Where the first message in buf[0..len) ends. 1: complete, *msg_len set; 0: need
 * more bytes; -1: malformed (*why); -2: larger than max (*msg_len = its size when the
 * header is complete). */
int ber_frame(const uint8_t *buf, size_t len, size_t max, size_t *msg_len, const char **why);

struct ldap_msg {
    uint32_t       id;
    int            op;          /* enum ldap_op */
    bool           sasl;        /* bind request: SASL rather than simple */
    const uint8_t *dn;          /* bind name, search base, entry ...; NULL if none */
    size_t         dn_len;
    const uint8_t *oid;         /* extended request/response name, or NULL */
    size_t         oid_len;
    int            result;      /* responses with an LDAPResult: resultCode; else -1 */
};

/* Parse one framed message (from ber_frame). 0, or -1 with *why. */
int ldap_parse(const uint8_t *msg, size_t len, struct ldap_msg *out, const char **why);

/* A request's final response op (the one carrying its result), or -1 for requests
 * that get no response (unbind, abandon). */
int ldap_response_op(int request_op);
/* "search", "bind", ... for logs and policies. */
const char *ldap_op_name(int op);

/* Writers: return the message length written into out (cap bytes), or 0 if it does
 * not fit. */
size_t ldap_write_bind(uint8_t *out, size_t cap, uint32_t id, const char *dn,
                       const char *password);
size_t ldap_write_starttls(uint8_t *out, size_t cap, uint32_t id);
/* An LDAPResult-shaped response (op = response tag); oid adds responseName (extended
 * responses). */
size_t ldap_write_result(uint8_t *out, size_t cap, uint32_t id, int op, int code,
                         const char *diag, const char *oid);

#endif
