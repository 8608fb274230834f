/*
 * hello.c: the smallest useful ferry plugin. Every client that connects to a `hello`
 * listener gets one line (the listener's `greeting:` option) and is closed.
 *
 *     listeners:
 *       - { name: hi, plugin: hello, listen: 127.0.0.1:7000, greeting: "hi there\n" }
 *
 * It shows the whole plugin ABI in one file: the exported descriptor, options
 * validated in listener_open, per-listener state, on_accept on a worker thread, and a
 * connection handed back to core with ferry_conn_close(). It never sees a socket.
 *
 * It also builds against older ferry headers (down to ABI 1.1): what came later, here
 * the greetings counter of ABI 1.3, is compiled in only when the headers have it, and
 * the descriptor then declares the minor it was built for.
 */
#include <stdlib.h>
#include <string.h>

#include <ferry/conn.h>
#include <ferry/log.h>
#include <ferry/opts.h>
#include <ferry/plugin.h>
#if FERRY_PLUGIN_ABI_MINOR >= 3
#include <ferry/metrics.h>
#endif

#define HELLO_DEFAULT_GREETING "hello from ferry\n"
#define HELLO_MAX_GREETING_BYTES 4096

#if FERRY_PLUGIN_ABI_MINOR >= 3
/* /metrics: ferry_plugin_greetings_total{plugin="hello"}. Registered once, at load. */
static struct ferry_counter *greeted;

static int
hello_init(struct ferry_err *err)
{
    int rc = ferry_counter_register("hello", "greetings_total", "Clients greeted", &greeted);

    if (rc != FERRY_OK)
        return ferry_err_set(err, rc, "greetings_total: %s", ferry_strerror(rc));
    return FERRY_OK;
}
#endif

/* Built in listener_open (main thread), read-only afterwards: every worker reads it. */
struct hello_listener {
    const char *greeting;   /* borrowed: an option string, valid until listener_close */
    size_t      len;
};

static int
hello_listener_open(struct ferry_listener *l, struct ferry_opts *opts, void **state)
{
    struct hello_listener *h;
    const char            *greeting = NULL;
    int                    rc;

    (void)l;    /* ferry_listener_name(l) / ferry_listener_destination(l) if needed */

    /* Reading an option is what declares it: core reports every key of this listener
     * that no plugin asked for as unknown, with a "did you mean". */
    rc = ferry_opts_str(opts, "greeting", &greeting);
    if (rc == FERRY_ENOTFOUND)
        greeting = HELLO_DEFAULT_GREETING;
    else if (rc != FERRY_OK)
        return rc;                          /* core already reported it at the key */
    if (greeting[0] == '\0')
        return ferry_opts_error(opts, "greeting", "must not be empty");
    if (strlen(greeting) > HELLO_MAX_GREETING_BYTES)
        return ferry_opts_error(opts, "greeting", "longer than %d bytes",
                                HELLO_MAX_GREETING_BYTES);

    /* listener_open runs for `ferry check` too: build state, never bind or dial. */
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return FERRY_ENOMEM;
    h->greeting = greeting;
    h->len = strlen(greeting);
    *state = h;                             /* owned by core until listener_close */
    return FERRY_OK;
}

/* On the worker thread that owns c. c is ours until ferry_conn_close() returns. */
static void
hello_on_accept(struct ferry_conn *c, void *state)
{
    const struct hello_listener *h = state;

    ferry_log(ferry_conn_log(c), FERRY_DEBUG, "greeting client",
              FLOG_INT("bytes", h->len));
    if (ferry_conn_write(c, h->greeting, h->len) != FERRY_OK) {
        ferry_conn_close(c, "error");
        return;
    }
#if FERRY_PLUGIN_ABI_MINOR >= 3
    ferry_counter_add(greeted, c, 1);       /* on this worker's own cell: no lock */
#endif
    ferry_conn_close(c, "greeted");         /* flushes the greeting, then closes */
    /* c must not be touched past this point: core frees it. */
}

/* No connection refers to the state any more. */
static void
hello_listener_close(void *state)
{
    free(state);
}

FERRY_PLUGIN_EXPORT const struct ferry_plugin ferry_plugin = {
    FERRY_PLUGIN_HEADER,                    /* abi_major, abi_minor, struct_size */
    .name           = "hello",              /* must match ferry_hello.so */
    .version        = "0.1.0",
    .listener_open  = hello_listener_open,
    .on_accept      = hello_on_accept,
    .listener_close = hello_listener_close,
#if FERRY_PLUGIN_ABI_MINOR >= 3
    .init           = hello_init,           /* once per process: the counter */
#endif
    /* .fini is optional: the counter is core's, nothing to release. */
};
