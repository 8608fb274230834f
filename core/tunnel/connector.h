/*
 * connector.h: `ferry connector`, the on-premise agent. It dials out to every
 * configured gateway and to every replica the gateways list (one TLS tunnel per
 * gateway worker, "slots"), registers with its tenant token, and serves the gateway's
 * CONNECT streams by dialing the internal host of a configured system: nothing else
 * is reachable. Every stream and every refusal is written to the hash-chained audit
 * log.
 *
 * The process around it (signals, the drain deadline, the admin listener with
 * /readyz) is main's: this room starts, drains and stops the connector on request.
 */
#ifndef FERRY_TUNNEL_CONNECTOR_H
#define FERRY_TUNNEL_CONNECTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct connector;

/* Load conf_path (kept borrowed) and build what runs: TLS contexts, the audit log, the
 * worker count. FERRY_OK, FERRY_EINVAL (a configuration error, printed to stderr as
 * file:line:col) or another negative code (printed; a runtime error). */
int  ferry_connector_new(const char *conf_path, struct connector **out);
/* Start the workers: they dial every gateway. FERRY_OK, or an error (free it then). */
int  ferry_connector_start(struct connector *cn);
/* Stop taking streams (GOAWAY on every tunnel) and let the open ones finish. */
void ferry_connector_drain(struct connector *cn);
bool ferry_connector_draining(const struct connector *cn);
/* No stream open on any worker (approximate across threads; for the drain poll). */
bool ferry_connector_idle(const struct connector *cn);
/* Close what is left and join the workers. */
void ferry_connector_stop(struct connector *cn);
void ferry_connector_free(struct connector *cn);        /* stops it first */

/* Tunnels up now: /readyz answers 200 only while this is > 0. */
atomic_int *ferry_connector_live(struct connector *cn);
/* Gateway replicas in the latest list a gateway sent (0: none sent one), for /metrics. */
atomic_int *ferry_connector_replicas(struct connector *cn);
/* Principal propagation counters for /metrics (zero without it). */
void        ferry_connector_pp_counts(struct connector *cn, _Atomic uint64_t **issued,
                                      _Atomic uint64_t **reused, _Atomic uint64_t **refused);
unsigned    ferry_connector_workers(const struct connector *cn);
uint32_t    ferry_connector_drain_timeout_ms(const struct connector *cn);
const char *ferry_connector_admin_listen(const struct connector *cn);  /* NULL: off */

/* `ferry check -c connector.yaml`: 0 valid, 2 errors (printed as file:line:col). */
int ferry_connector_check(const char *conf_path);
/* `ferry connector --verify-audit FILE...` (oldest first: a rotated series is one
 * chain): 0 chain intact, 1 broken or a gap between files, 2 unreadable. */
int ferry_connector_verify_audit(const char *const *paths, int npaths);
/* Failed audit writes for /metrics (arg: the connector); false when it has no audit log. */
bool     ferry_connector_has_audit(const struct connector *cn);
uint64_t ferry_connector_audit_errors(void *cn);
/* SIGHUP: load the file again and switch to its systems (access control, paths, TLS
 * to internal hosts), principal propagation issuer, audit_fail, connect_timeout_ms and
 * log level; live streams keep
 * the rules they began with; changed virtual names are registered anew with every
 * gateway without dropping a stream. A file with errors changes nothing (each error is
 * logged); settings read at start only are named in a warning and keep their value.
 * FERRY_OK or the error. Main thread. */
int      ferry_connector_reload(struct connector *cn);
/* Reopen the audit log by its path (after logrotate renamed it): SIGHUP and SIGUSR1. */
void     ferry_connector_reopen_audit(struct connector *cn);

#endif
