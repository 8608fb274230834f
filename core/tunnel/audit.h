/*
 * audit.h: the connector's tamper-evident audit log.
 *
 * JSON lines, one per opened stream (when it ends) and one per refusal. Each line
 * carries "prev": the lowercase hex SHA-256 of the previous line's bytes (without its
 * newline); the first line of a new file has 64 zeros. Editing, removing or reordering
 * a line breaks the chain, which `ferry connector --verify-audit FILE` detects.
 * Appends are serialised by a mutex: one line per stream, never per byte.
 *
 * Rotation: after a rename (logrotate), ferry_audit_reopen opens the path again; the
 * first line of the new file carries the last line's hash of the old one, so the chain
 * runs on across files (`--verify-audit OLD NEW` follows it).
 */
#ifndef FERRY_AUDIT_H
#define FERRY_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <ferry/err.h>

struct ferry_audit;

#define FERRY_AUDIT_HEX_LEN 64   /* a line's hash as lowercase hex */

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
 * bytes is cut and the line gets "truncated":true). FERRY_OK when it is in the file;
 * else FERRY_EIO (or ENOMEM): the line waits in a bounded queue (1024 lines; past it,
 * lost) and is written, in order and chained, before any later one. Failures are
 * counted (ferry_audit_errors) and logged at once, then at most every 10 s. */
int  ferry_audit_write(struct ferry_audit *a, const struct ferry_audit_rec *r);
/* Write what is pending (opening the path again first if a reopen failed): FERRY_OK
 * when the log is healthy afterwards. Cheap when it already is. */
int  ferry_audit_retry(struct ferry_audit *a);
/* Nothing pending and a file open (true for NULL: no audit log). Lock-free. */
bool ferry_audit_is_healthy(struct ferry_audit *a);
/* Failed writes and opens since the start (for /metrics). */
uint64_t ferry_audit_errors(struct ferry_audit *a);
/* Close the file and open the path again (SIGHUP/SIGUSR1 after logrotate renamed it).
 * An empty or new file continues the chain from the last line written; a file that
 * has lines, from its last line. On failure no file is open: writes fail (pending)
 * and each one tries the path again. */
int  ferry_audit_reopen(struct ferry_audit *a, struct ferry_err *err);
void ferry_audit_close(struct ferry_audit *a);

/* Check a file's chain. FERRY_OK, or FERRY_EINVAL with err naming the first bad line
 * (line number and why: "line 7: prev does not match line 6", "line 3: not JSON");
 * FERRY_EIO if unreadable. *nlines (may be NULL): the lines that checked out, all of
 * them on FERRY_OK. Removing the last lines cannot be seen from the file alone. */
int  ferry_audit_verify(const char *path, uint64_t *nlines, struct ferry_err *err);
/* The same for one file of a rotated series: its first line must carry prev_hex (64
 * zeros for the chain's first file); on FERRY_OK prev_hex becomes its last line's
 * hash, what the next file must start with. A mismatch on line 1 is a gap. */
int  ferry_audit_verify_from(const char *path, char prev_hex[FERRY_AUDIT_HEX_LEN + 1],
                             uint64_t *nlines, struct ferry_err *err);

#endif
