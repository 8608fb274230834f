/*
 * conn-int.h: a connection inside core. Plugins see only the opaque struct ferry_conn
 * of ferry/conn.h.
 *
 * Memory budget: an idle relayed connection holds this struct and nothing else (pipes
 * go back to the worker's pool whenever they are empty; handshake buffers are freed
 * when the relay starts), so it stays well under 2 KiB of user-space memory.
 */
#ifndef FERRY_CONN_INT_H
#define FERRY_CONN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event_struct.h>

#include <ferry/conn.h>
#include <ferry/timer.h>

#include "log/log.h"
#include "route/route.h"
#include "tunnel/gateway.h"
#include "worker/worker.h"

struct dial;
struct policy_run;
struct tstream;

/* One direction of the relay: bytes read from `from`, written to `to`. */
struct relay_dir {
    int           *from, *to;     /* point at conn->cfd / conn->ufd */
    bool          *from_ready;    /* edge-triggered: set by EV_READ, cleared by EAGAIN */
    bool          *to_ready;      /* set by EV_WRITE, cleared by EAGAIN */
    bool          *from_hup;      /* the peer's FIN was seen (EV_CLOSED) */
    int            pipe[2];       /* -1 when none: taken from the pool on demand */
    size_t         in_pipe;       /* bytes sitting in the pipe */
    char          *buf;           /* owns: bytes still to write to `to` (exists only while
                                     non-empty) */
    size_t         buf_off, buf_len, buf_cap;
    uint64_t       bytes;         /* delivered to `to` */
    bool           eof;           /* `from` reached end of stream */
    bool           shut;          /* shutdown(to, SHUT_WR) done */
    bool           splicing;      /* bulk seen: zero-copy through a pipe from now on */
    bool           no_splice;     /* splice refused by an fd: recv/send only */
};

struct conn_chunk {               /* ferry_conn_alloc() memory */
    struct conn_chunk *next;
    max_align_t        data[];
};

/* ferry_conn_on_cleanup(): a LIFO list, so freeing runs it in reverse order. */
struct conn_cleanup {
    struct conn_cleanup *next;
    void               (*fn)(void *arg);
    void                *arg;
};
#define CONN_CLEANUPS_MAX 64      /* per connection: ferry_conn_on_cleanup fails past it */

/* ferry/timer.h: a plugin's timer, in c's arena; its event is on c's worker. */
struct ferry_timer {
    struct ferry_timer *next;     /* c->timers */
    struct ferry_conn  *c;
    struct event        ev;
    ferry_timer_cb      cb;
    void               *arg;
};

enum conn_state {
    CONN_PLUGIN,                  /* the plugin drives it (handshake, open) */
    CONN_RELAY,                   /* relaying */
    CONN_CLOSING,                 /* flushing a reply before close */
    CONN_IO,                      /* stream mode: the plugin drives ferry_io streams */
    CONN_PROXY,                   /* reading the PROXY header: no plugin has it yet */
};

struct ferry_conn {
    struct ferry_log_ctx    logctx;         /* adds worker, conn, listener, client */
    struct ferry_conn      *prev, *next;    /* worker's list */
    struct worker          *w;              /* borrowed */
    struct wgen            *wg;             /* worker-local ref */
    struct ferry_listener  *l;              /* borrowed from wg->g */
    struct stats_slot      *dstats;         /* destination stats, once routed */
    struct stats_slot      *tenstats;       /* the tenant it is counted against, or NULL */
    const struct ferry_dest *dest;          /* borrowed from wg->g->conf->registry */
    uint64_t                id;
    enum conn_state         state;
    int                     cfd, ufd;       /* client / upstream socket, -1 when none */
    /* One edge-triggered read+write event per socket: added once, never modified, so
     * a connection costs two epoll_ctl(ADD) and nothing while it runs. */
    struct event            cev, uev, timer;
    bool                    cev_added, uev_added;
    bool                    c_readable, c_writable, u_readable, u_writable;
    bool                    c_hup, u_hup;   /* EV_CLOSED seen: a short read is no proof
                                               of an empty socket, the FIN may wait */
    bool                    open_deferred;  /* a result waits for the next loop turn */
    int                     open_status;
    struct timeval          started;        /* for the access log */
    struct timeval          last_active;    /* for the idle timeout */
    struct timeval          hs_deadline;    /* end of the plugin's handshake */
    bool                    hs_deadline_set;
    struct sockaddr_storage peer;
    socklen_t               peer_len;
    char                   *peer_text;      /* lazily formatted, arena */
    struct relay_dir        up, down;       /* client->upstream, upstream->client */
    struct dial            *dial;           /* owns while an upstream open is in flight */
    struct tstream         *ts;             /* the tunnel stream, when upstream is one */
    struct gw_owner         gwo;            /* how the tunnel reaches back to c */
    struct ferry_io        *cio;            /* stream mode (ferry/io.h): the client's end */
    struct ferry_io        *ios;            /* stream mode: upstream streams of c */
    void                  (*on_free)(void *arg);    /* a pre-1.3 plugin's one cleanup */
    struct conn_cleanup    *cleanups;       /* arena: newest first */
    unsigned                ncleanups;
    struct ferry_timer     *timers;         /* arena: the plugin's timers */
    unsigned                ntimers;
    bool                    timers_off;     /* the plugin let c go: no timer fires */
    struct stats_pair      *req_pair;       /* ferry_conn_request_done's last pair */
    void                   *on_free_arg;
    struct stats_slot      *tstats;         /* its tunnel's (tenant, location) stats */
    const char             *tenant;         /* authenticated tenant id (borrowed: conf) */
    ferry_open_cb           open_cb;
    void                   *open_arg;
    ferry_data_cb           data_cb;
    void                   *data_arg;
    size_t                  read_max;
    const char             *outcome;        /* static string for the access log */
    char                   *target;         /* arena: "host:port" routed to */
    struct conn_chunk      *chunks;         /* arena */
    struct policy_run      *policy_wait;    /* a policy hook waiting on I/O (conn-policy.c) */
    bool                    rate_taken;     /* the handoff model's one token (rate:) */
    bool                    rate_refused;   /* ...and it was refused */
    bool                    in_callback;    /* a plugin callback is running: defer free */
    bool                    close_pending;
};

/* The ABI minor c's plugin was built for: how much of its structs core may read. */
static inline unsigned
conn_abi_minor(const struct ferry_conn *c)
{
    return c->l->plugin->abi_minor;
}

#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* conn.c: the lifecycle. */
void  conn_finish(struct ferry_conn *c, const char *outcome);  /* close both ends now */
void  conn_free(struct ferry_conn *c);      /* only with no plugin callback on the stack */
void  conn_touch(struct ferry_conn *c);
/* A plugin callback is about to run / has returned: c is not freed in between. */
void  conn_enter(struct ferry_conn *c, bool *outer);
void  conn_leave(struct ferry_conn *c, bool outer);
void  conn_arm_idle(struct ferry_conn *c, uint32_t ms);
void  conn_arm_timer(struct ferry_conn *c, uint32_t ms);   /* a full-length deadline */
char *conn_strdup(struct ferry_conn *c, const char *s);     /* from the arena */
/* conn-user.c: the tenant token (a JWT) authenticates, tenant_id's if not NULL. FERRY_OK
 * and *out, or FERRY_EDENIED (the reason logged at info, never the token). */
int   conn_auth_tenant_jwt(struct ferry_conn *c, const char *tenant_id, const char *token,
                           const struct ferry_conf_tenant **out);
/* The connection's first upstream, for its access-log line (stream mode). */
void  conn_set_target(struct ferry_conn *c, const char *authority);
/* Make sure the client socket's event is registered. */
void  conn_watch_client(struct ferry_conn *c);
/* The upstream socket's event, for dial.c (fd changes per attempt). */
void  conn_watch_upstream(struct ferry_conn *c, int fd, uint32_t timeout_ms);
void  conn_unwatch_upstream(struct ferry_conn *c);

/* conn-limits.c: a listener's allow, proxy_protocol and rate (DESIGN.md "Limits and
 * source addresses"). */
/* May a client from sa connect to l? Counted and logged (at most once a second) when not. */
bool conn_allowed(struct wlistener *wl, const struct sockaddr *sa);
/* Count (and log, at most once a second) one client refused for reason. */
void conn_refused(struct wlistener *wl, const struct sockaddr *sa, enum stats_refused reason);
/* proxy_protocol: read the header before the plugin sees c (armed with its deadline);
 * conn_proxy_io on every client event until then; conn_proxy_timeout when it is over. */
void conn_proxy_start(struct ferry_conn *c);
void conn_proxy_io(struct ferry_conn *c);
void conn_proxy_timeout(struct ferry_conn *c);
/* One token of c's client from its listener's rate. FERRY_OK (also with no rate), or
 * FERRY_ELIMIT with *retry_after_s (counted and logged). */
int  conn_rate_take(struct ferry_conn *c, uint32_t *retry_after_s);
/* conn.c: hand c to its plugin (on_accept), once it is known who the client is. */
void conn_start_plugin(struct ferry_conn *c);

/* conn-route.c: route/'s plan and, for the tunnel kinds, the stream request from it. */
struct conn_route {
    struct route_plan    p;
    struct gw_stream_req req;               /* fd fields unset */
};
/* Decide (and account the destination to c). A ROUTE_* or a negative FERRY_E* with
 * r->p.reason. */
int  conn_route(struct ferry_conn *c, const struct ferry_target *t, struct conn_route *r);
/* The final error for a tunnel refusal rc of gw_open_stream (logs it; sets r->p.reason). */
int  conn_route_refused(struct ferry_conn *c, struct conn_route *r, int rc);
struct stats_slot *conn_dest_stats(const struct ferry_conn *c, const struct ferry_dest *d);

/* timer.c: stop every plugin timer of c for good (the plugin let c go). */
void conn_timers_off(struct ferry_conn *c);

/* conn-handoff.c: the relay-handoff model (handshake bytes, one upstream, relay). */
void conn_handshake_io(struct ferry_conn *c, short what);      /* client socket, before relay */
void conn_deliver_open(struct ferry_conn *c, int status, const char *reason);
void conn_upstream_ready(struct ferry_conn *c, int fd);         /* dial succeeded */
void conn_upstream_failed(struct ferry_conn *c, int status, const char *reason);
/* A tunnel stream's totals become the connection's (for the access log). */
void conn_stream_account(struct ferry_conn *c, const struct tstream *ts);

/* conn-log.c */
void conn_log_fields(const struct ferry_log_ctx *ctx, struct logbuf *b);
void conn_write_access(struct ferry_conn *c);

/* conn-policy.c: abort c's policy hook waiting on I/O, if any (c is going away). */
void policy_conn_gone(struct ferry_conn *c);

/* relay.c */
void relay_start(struct ferry_conn *c);
void relay_on_event(struct ferry_conn *c);           /* either socket changed state */
void relay_release(struct ferry_conn *c);    /* pipes back to the pool, buffers freed */
void relay_dir_init(struct relay_dir *d);

#endif
