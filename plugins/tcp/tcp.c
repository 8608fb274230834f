/*
 * tcp.c: the `tcp` plugin. A listener bound to one destination: every client
 * connection is dialed to the destination (directly for ProxyType Internet, through
 * the tenant's tunnel for OnPremise) and relayed byte for byte. Also carries SAP RFC
 * (Type RFC maps jco.client.ashost/sysnr to host:33NN) and any other TCP protocol.
 *
 * No protocol bytes are read: the client may speak first or last, core's relay
 * queues whatever arrives before the upstream is connected.
 */
#include <string.h>

#include <ferry/conn.h>
#include <ferry/log.h>
#include <ferry/opts.h>
#include <ferry/plugin.h>

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
tcp_on_accept(struct ferry_conn *c, void *state)
{
    const struct ferry_dest *dest = ferry_conn_dest(c);
    struct ferry_target      t;

    (void)state;
    if (dest == NULL) {
        /* Removed by a reload after this listener's generation was built. */
        ferry_log(ferry_conn_log(c), FERRY_WARN, "destination not found");
        ferry_conn_close(c, "destination-not-found");
        return;
    }
    memset(&t, 0, sizeof(t));
    t.dest = dest;
    if (ferry_conn_open(c, &t, tcp_on_open, NULL) != FERRY_OK)
        ferry_conn_close(c, "no-memory");
}

FERRY_PLUGIN_EXPORT const struct ferry_plugin ferry_plugin = {
    FERRY_PLUGIN_HEADER,
    .name          = "tcp",
    .version       = FERRY_VERSION,
    .listener_open = tcp_listener_open,
    .on_accept     = tcp_on_accept,
};
