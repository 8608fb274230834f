/*
 * tcp.c: the `tcp` plugin. A listener bound to one destination: every client
 * connection is dialed to the destination (directly for ProxyType Internet, through
 * the tenant's tunnel for OnPremise) and relayed byte for byte. Also carries SAP RFC
 * (Type RFC maps jco.client.ashost/sysnr to host:33NN) and any other TCP protocol.
 *
 * No protocol bytes are read: the client may speak first or last, core's relay
 * queues whatever arrives before the upstream is connected. A destination's policy
 * with on_connect is asked first; a denial closes the connection.
 */
#include <stdio.h>
#include <string.h>

#include <ferry/conn.h>
#include <ferry/log.h>
#include <ferry/opts.h>
#include <ferry/plugin.h>
#include <ferry/policy.h>

static int
tcp_listener_open(struct ferry_listener *l, struct ferry_opts *opts, void **state)
{
    if (ferry_listener_destination(l) == NULL)
        return ferry_opts_error(opts, NULL, "the tcp plugin needs `destination:`");
    *state = NULL;
    return FERRY_OK;
}

static const char *
outcome_of(int status)
{
    switch (status) {
    case FERRY_ENOTFOUND: return "upstream-not-found";
    case FERRY_ETIMEDOUT: return "upstream-timeout";
    case FERRY_EUNAVAIL:  return "upstream-unavailable";
    case FERRY_EDENIED:   return "denied";
    default:              return "upstream-error";
    }
}

static void
tcp_on_open(struct ferry_conn *c, int status, const char *reason, void *arg)
{
    (void)arg;
    (void)reason;
    if (status != FERRY_OK) {
        /* TCP has no error reply: the client sees the connection close. */
        ferry_conn_close(c, outcome_of(status));
        return;
    }
    ferry_conn_relay(c);
}

static void
tcp_open(struct ferry_conn *c, const struct ferry_dest *dest)
{
    struct ferry_target t = FERRY_TARGET_INIT;

    t.dest = dest;
    if (ferry_conn_open(c, &t, tcp_on_open, NULL) != FERRY_OK)
        ferry_conn_close(c, "no-memory");
}

/* The destination's on_connect answered: a denial closes (TCP has no error reply). */
static void
tcp_on_verdict(struct ferry_conn *c, const struct ferry_policy_verdict *v, void *arg)
{
    if (v->allowed) {
        tcp_open(c, arg);
        return;
    }
    if (!v->error)
        ferry_log(ferry_conn_log(c), FERRY_INFO, "connection denied by policy",
                  FLOG_STR("destination", ferry_dest_name(arg)), FLOG_STR("reason", v->reason));
    ferry_conn_close(c, v->error ? "policy-error" : "denied");
}

static void
tcp_on_accept(struct ferry_conn *c, void *state)
{
    const struct ferry_dest    *dest = ferry_conn_dest(c);
    struct ferry_policy_verdict v;
    char                        target[300];
    const char                 *host;

    (void)state;
    if (dest == NULL) {
        /* Removed by a reload after this listener's generation was built. */
        ferry_log(ferry_conn_log(c), FERRY_WARN, "destination not found");
        ferry_conn_close(c, "destination-not-found");
        return;
    }
    if (ferry_policy_has(c, dest, "on_connect")) {
        host = ferry_dest_host(dest);
        snprintf(target, sizeof(target), strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host,
                 (unsigned)ferry_dest_port(dest));
        switch (ferry_policy_connect(c, dest, target, &v, tcp_on_verdict, (void *)dest)) {
        case FERRY_OK:
            tcp_on_verdict(c, &v, (void *)dest);
            return;
        case FERRY_EAGAIN:              /* tcp_on_verdict runs later */
            return;
        default:                        /* no such hook after all */
            break;
        }
    }
    tcp_open(c, dest);
}

FERRY_PLUGIN_EXPORT const struct ferry_plugin ferry_plugin = {
    FERRY_PLUGIN_HEADER,
    .name          = "tcp",
    .version       = FERRY_VERSION,
    .listener_open = tcp_listener_open,
    .on_accept     = tcp_on_accept,
};
