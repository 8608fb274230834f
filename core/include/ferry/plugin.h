/*
 * ferry/plugin.h: the descriptor a protocol plugin exports, and the listener it serves.
 *
 * A plugin is a shared object `ferry_<name>.so` exporting one symbol:
 *
 *     FERRY_PLUGIN_EXPORT const struct ferry_plugin ferry_plugin = {
 *         FERRY_PLUGIN_HEADER,
 *         .name = "tcp", .version = "0.1.0",
 *         .listener_open = ..., .on_accept = ..., .listener_close = ...,
 *     };
 *
 * Core reads abi_major and abi_minor from the file before the dynamic linker resolves
 * anything, and refuses, with the file name and both versions, a plugin built for
 * another major or for a newer minor than it provides (such a plugin may call functions
 * this ferry does not have). Older minors load: what they lack is treated as absent —
 * hooks past an older plugin's struct_size, fields of structs past their size
 * (FERRY_HAS_FIELD in ferry/api.h). Hooks and fields are only ever appended, with an
 * abi_minor bump; they are never reordered.
 *
 * Threads: init/fini/listener_open/listener_close run on the main thread; on_accept
 * runs on the worker thread that owns the connection, and everything the plugin does
 * with that connection happens on that thread. Listener state is shared by all workers
 * and must be read-only after listener_open returns.
 */
#ifndef FERRY_PLUGIN_H
#define FERRY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <ferry/api.h>
#include <ferry/err.h>

#define FERRY_PLUGIN_ABI_MAJOR 1
#define FERRY_PLUGIN_ABI_MINOR 5     /* 1.1: ferry/route.h, ferry_target.direct_ok;
                                        1.2: ferry/io.h, ferry_target.protocol, dest
                                        accessors, ferry_base64_encode;
                                        1.3: size in growing structs, opaque HTTP
                                        parser, cleanup list, ferry/timer.h,
                                        ferry/metrics.h, ferry_io_tls.cert_password and
                                        .wildcard_any_depth, ferry_io_tls_from_dest
                                        (plugins/README.md);
                                        1.4: ferry/user.h, ferry_target.user,
                                        ferry_policy_http.user;
                                        1.5: ferry_conn_rate_take (a listener's
                                        rate: per request) */

struct ferry_conn;
struct ferry_opts;
struct ferry_listener;

struct ferry_plugin {
    uint16_t    abi_major;
    uint16_t    abi_minor;
    uint32_t    struct_size;
    const char *name;           /* must match the file name: ferry_<name>.so */
    const char *version;

    /* Once per process, before any listener. Optional. */
    int  (*init)(struct ferry_err *err);
    /* Validate this listener's options (ferry/opts.h) and build its state. Called for
     * `ferry check` too, so it must not bind or dial anything. Returns FERRY_OK or a
     * negative code after reporting errors through ferry_opts_error(). */
    int  (*listener_open)(struct ferry_listener *l, struct ferry_opts *opts, void **state);
    /* A client connected. The plugin now drives the connection (ferry/conn.h) until
     * it hands it to ferry_conn_relay() or closes it. Required. */
    void (*on_accept)(struct ferry_conn *c, void *state);
    /* The listener is gone and no connection refers to its state any more. Optional. */
    void (*listener_close)(void *state);
    /* Once per process at exit. Optional. */
    void (*fini)(void);
};

/* Plugins build with -fvisibility=hidden too; the descriptor must stay visible. */
#define FERRY_PLUGIN_EXPORT __attribute__((visibility("default")))

#define FERRY_PLUGIN_HEADER                     \
    .abi_major   = FERRY_PLUGIN_ABI_MAJOR,      \
    .abi_minor   = FERRY_PLUGIN_ABI_MINOR,      \
    .struct_size = sizeof(struct ferry_plugin)

/* The listener's `name:` from the config. Valid while the listener exists. */
FERRY_API const char *ferry_listener_name(const struct ferry_listener *l);

/* The listener's `destination:` name, or NULL when it is not bound to one. */
FERRY_API const char *ferry_listener_destination(const struct ferry_listener *l);

/* The listener's `tenant:`, or NULL. */
FERRY_API const char *ferry_listener_tenant(const struct ferry_listener *l);

#endif
