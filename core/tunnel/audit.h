/*
 * audit.h: the connector's tamper-evident audit log.
 *
 * JSON lines, one per opened stream (when it ends) and one per refusal. Each line
 * carries "prev": the lowercase hex SHA-256 of the previous line's bytes (without its
 * newline); the first line of a new file has 64 zeros. Editing, removing or reordering
 * a line breaks the chain, which `ferry connector --verify-audit FILE` detects.
 * Appends are serialised by a mutex: one line per stream, never per byte.
 */
#ifndef FERRY_AUDIT_H
#define FERRY_AUDIT_H

#include <stdint.h>

#include <ferry/err.h>

struct ferry_audit;

struct ferry_audit_rec {
    const char *tenant;
    const char *location;        /* "" default */
    const char *virtual_target;  /* "erp.internal:3300" */
    const char *internal_target; /* "10.0.0.12:3300" or NULL (refusals) */
    const char *protocol;        /* "TCP", … or NULL */
    const char *outcome;         /* "ok", "denied", "refused", "unreachable", "timeout", "reset" */
    const char *reason;          /* short text or NULL */
    const char *path;            /* HTTP path for per-request records, or NULL */
    const char *user;            /* the propagated user's subject DN (RFC 4514), or NULL */
    uint64_t    bytes_in;        /* gateway -> internal */
    uint64_t    bytes_out;       /* internal -> gateway */
    uint64_t    duration_ms;
};

/* Open for append (creating it 0600); continues the chain from the file's last line.
 * A file that ends inside a line (a write cut short) still opens: the next record
 * first ends that line, and chains from its bytes; the verifier will name it. */
int  ferry_audit_open(const char *path, struct ferry_audit **out, struct ferry_err *err);
/* Append one record (thread-safe; a NULL string field is left out, a string over 2048
 * bytes is cut and the line gets "truncated":true). Errors are reported once through
 * the process log, and again only after a write has succeeded in between. */
void ferry_audit_write(struct ferry_audit *a, const struct ferry_audit_rec *r);
void ferry_audit_close(struct ferry_audit *a);

/* Check a file's chain. FERRY_OK, or FERRY_EINVAL with err naming the first bad line
 * (line number and why: "line 7: prev does not match line 6", "line 3: not JSON");
 * FERRY_EIO if unreadable. *nlines (may be NULL): the lines that checked out, all of
 * them on FERRY_OK. Removing the last lines cannot be seen from the file alone. */
int  ferry_audit_verify(const char *path, uint64_t *nlines, struct ferry_err *err);

#endif
