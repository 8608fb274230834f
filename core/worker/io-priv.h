/*
 * io-priv.h: the stream struct and the helpers io.c (reading, writing, events, pool)
 * and io-open.c (opening upstreams) share. Nothing else includes it.
 */
#ifndef FERRY_IO_PRIV_H
#define FERRY_IO_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include <ferry/io.h>

#include "tunnel/gateway.h"

struct conn_route;
struct dial;
struct ferry_tls_wait;
struct stats_slot;
struct tstream;
struct worker;

struct ferry_io {
    struct ferry_conn  *c;              /* owner; NULL while pooled */
    struct worker      *w;
    struct ferry_io    *prev, *next;    /* c->ios, or the worker's pool */
    bool                client;         /* c's own socket: fd, event, flags are c's */
    int                *fd;
    bool               *readable, *writable, *hup;
    int                 own_fd;
    bool                own_readable, own_writable, own_hup;
    struct event        ev;             /* upstream kinds: the socket's event */
    bool                ev_added;
    struct event        timer;          /* read timeout; pool idle; TLS handshake */
    struct event        notify;         /* deferred callbacks */
    uint32_t            timeout_ms;
    struct timeval      last_read;
    struct timeval      armed_until;    /* when the armed timer fires */
    bool                timer_armed;
    SSL                *ssl;
    size_t              tls_last;       /* a retried SSL_write may not be shorter */
    bool                handshaking;
    uint8_t            *in;
    size_t              in_off, in_len;
    size_t              in_size;        /* allocated bytes of `in` */
    size_t              in_max;         /* ferry_io_set_inbuf; FERRY_IO_INBUF by default */
    uint8_t            *out;
    size_t              out_off, out_len, out_cap;
    bool                eof, paused, shut_want, shut_done, closed, in_cb, queued;
    bool                stale;          /* pooled on a tunnel that got GOAWAY */
    bool                starttls;       /* ferry_io_starttls: begin the handshake */
    bool                lingering;      /* ferry_io_finish: waiting for the peer's end */
    int                 err;
    const char         *reason;
    char                reason_buf[200];
    ferry_io_cb         cb;
    void               *cb_arg;
    unsigned            later;          /* events for the notify callback */
    /* Opening. */
    struct dial        *dial;
    ferry_io_open_cb    open_cb;
    void               *open_arg;
    int                 open_status;
    SSL_CTX            *tls_ctx;        /* a reference from the TLS context cache */
    struct ferry_tls_wait *tls_wait;    /* the context is still being built */
    struct conn_route  *route;          /* owns, while the open waits for tls_wait */
    int                 route_kind;
    char               *sni;            /* owns */
    /* Tunnel kind. */
    struct gw_owner     gwo;
    struct tstream     *ts;
    struct stats_slot  *tstats;
    int                 ts_fd;
    bool                ts_readable, ts_writable;
    struct event        ts_ev;
    bool                ts_ev_added;
    /* The stream was reset or its tunnel lost ("reset", "tunnel-lost"; NULL: ended
     * cleanly). The pair only carries a FIN, so the EOF read once it is drained is
     * reported as this error instead: a cut body must not look like a whole one. */
    const char         *ts_cut;
    /* Pool. */
    char               *pool_key;       /* owns */
    char                target[300];
    uint64_t            nread, nwritten;    /* socket bytes, for the access log */
};

/* io.c */
struct ferry_io *io_alloc(struct worker *w);
void io_link(struct ferry_io **head, struct ferry_io *io);
void io_later(struct ferry_io *io, unsigned ev);    /* events from the loop, not now */
bool io_handshake(struct ferry_io *io);             /* true when the TLS handshake is over */
void io_on_sock(evutil_socket_t fd, short what, void *arg);

/* io-open.c */
void io_open_done(struct ferry_io *io, int status, const char *reason);
void io_transport_up(struct ferry_io *io);          /* connected: TLS next, if asked for */

#endif
