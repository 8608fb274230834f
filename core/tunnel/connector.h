/*
 * connector.h: `ferry connector`, the on-premise agent. It dials out to every
 * configured gateway (one TLS tunnel per gateway worker, "slots"), registers with its
 * tenant token, and serves the gateway's CONNECT streams by dialing the internal host
 * of a configured system: nothing else is reachable. Every stream and every refusal
 * is written to the hash-chained audit log.
 */
#ifndef FERRY_TUNNEL_CONNECTOR_H
#define FERRY_TUNNEL_CONNECTOR_H

/* Run until SIGTERM/SIGINT. Exit code: 0, 1 runtime error, 2 config error. */
int ferry_connector_main(const char *conf_path);
/* `ferry check -c connector.yaml`: 0 valid, 2 errors (printed as file:line:col). */
int ferry_connector_check(const char *conf_path);
/* `ferry connector --verify-audit FILE`: 0 chain intact, 1 broken, 2 unreadable. */
int ferry_connector_verify_audit(const char *path);

#endif
