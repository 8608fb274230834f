/*
 * loadgen.c: the load generator and origin for tests/bench/run.sh. One small C
 * program so that the measuring side costs the same for every subject (direct,
 * ferry, HAProxy, socat …) and stays cheap on a 2-core machine.
 *
 *   loadgen serve PORT             origin: "bulk" clients (first byte 'B') get an
 *                                  endless stream; others get their bytes echoed; a
 *                                  line "ping\n" is answered "pong\n" and closed.
 *   loadgen bulk HOST PORT SECS    one stream, prints MiB/s received
 *   loadgen fetch HOST PORT MIB    one stream, reads exactly MIB MiB, prints seconds and
 *                                  MiB/s (a fixed transfer, for profilers: per-byte cost)
 *   loadgen rate HOST PORT SECS C  C concurrent connect+ping+pong+close loops, prints conn/s
 *   loadgen idle HOST PORT N       opens N relayed connections (1 byte echoed on each),
 *                                  prints "ready N", holds them until stdin closes
 *   loadgen slow HOST PORT N SECS  slowloris: N connections, each sending an HTTP request
 *                                  head that never ends ("GET / HTTP/1.1\r\nHost: s\r\n"
 *                                  then one byte "X" every SECS seconds per connection);
 *                                  one the server closes is dialled again. Prints
 *                                  "ready N" once all N sent their first bytes, then holds
 *                                  them until stdin closes, then "reopened K" on stderr.
 *   loadgen http HOST PORT SECS C PATH
 *                                  C keep-alive HTTP/1.1 connections, each sending
 *                                  "GET PATH" again as soon as the previous response
 *                                  (Content-Length framed) is read whole; the first half
 *                                  second is not counted. Prints one line
 *                                  "REQ_PER_S P50_MS P99_MS ERRORS RECONNECTS"; latency is
 *                                  request sent -> last body byte read. An error (status
 *                                  other than 200, no Content-Length, EOF or reset mid
 *                                  response, refused connect) costs the connection, which
 *                                  is dialled again; its first line goes to stderr.
 *                                  LOADGEN_HEADERS=FILE: one header field per line; each
 *                                  request carries the next line, round-robin over all
 *                                  requests (50 users' tokens: 50 lines).
 *
 * With LOADGEN_SOCKS5=PORT in the environment, bulk and rate connect to a SOCKS5 proxy
 * on 127.0.0.1:PORT (method 00, no authentication) and CONNECT to HOST:PORT through it;
 * the handshake is part of each connection's cost.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_BYTES (1 << 20)

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
    perror(what);
    exit(1);
}

static struct sockaddr_in
addr_of(const char *host, const char *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };

    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad IPv4 address %s\n", host);
        exit(2);
    }
    return sa;
}

static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- origin ---------------------------------------------------------------------- */

enum { C_NEW, C_BULK, C_ECHO };

struct sconn {
    int  fd;
    int  kind;
    char line[8];
    int  nline;
};

static void *
bulk_sender(void *arg)
{
    static char   buf[BUF_BYTES];
    struct sconn *c = arg;
    int           fl = fcntl(c->fd, F_GETFL);

    fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
    memset(buf, 'x', sizeof(buf));
    while (send(c->fd, buf, sizeof(buf), MSG_NOSIGNAL) > 0)
        ;
    close(c->fd);
    free(c);
    return NULL;
}

static int
serve(const char *port)
{
    static char        buf[BUF_BYTES];
    struct sockaddr_in sa = addr_of("127.0.0.1", port);
    int                one = 1, lfd, ep;
    struct epoll_event ev, evs[256];

    memset(buf, 'x', sizeof(buf));
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
        die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0)
        die("bind/listen");
    if ((ep = epoll_create1(0)) < 0)
        die("epoll");
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);

        if (n < 0 && errno != EINTR)
            break;

        for (int i = 0; i < n; i++) {
            struct sconn *c = evs[i].data.ptr;

            if (c == NULL) {
                int fd;

                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    c = calloc(1, sizeof(*c));
                    c->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (c->kind == C_BULK) {
                if (evs[i].events & (EPOLLERR | EPOLLHUP) || send(c->fd, buf, sizeof(buf), 0) < 0) {
                    if (errno == EAGAIN)
                        continue;
                    close(c->fd);
                    free(c);
                }
                continue;
            }
            {
                char    in[4096];
                ssize_t r = recv(c->fd, in, sizeof(in), 0);

                if (r < 0 && errno == EAGAIN)
                    continue;
                if (r <= 0) {
                    close(c->fd);
                    free(c);
                    continue;
                }
                if (c->kind == C_NEW && in[0] == 'B') {
                    pthread_t th;

                    /* A blocking sender on its own thread: the kernel wakes it only when
                     * there is real room, so the origin costs the same whatever reads
                     * at the far end (a level-triggered EPOLLOUT loop spun on every ACK). */
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    if (pthread_create(&th, NULL, bulk_sender, c) == 0)
                        pthread_detach(th);
                    continue;
                }
                if (c->kind == C_NEW && r == 5 && memcmp(in, "ping\n", 5) == 0) {
                    /* The origin closes first: TIME_WAIT stays on the server side. */
                    send(c->fd, "pong\n", 5, 0);
                    close(c->fd);
                    free(c);
                    continue;
                }
                c->kind = C_ECHO;
                send(c->fd, in, (size_t)r, 0);
            }
        }
    }
    return 0;
}

/* ---- clients --------------------------------------------------------------------- */

static int
dial(const struct sockaddr_in *sa, int nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    int one = 1;

    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static struct sockaddr_in socks_sa;     /* the proxy, when socks_on */
static bool               socks_on;
static uint8_t            socks_req[10];  /* 05 01 00 01 addr port */

static void
socks_setup(const struct sockaddr_in *target)
{
    const char *p = getenv("LOADGEN_SOCKS5");

    if (p == NULL || *p == '\0')
        return;
    socks_on = true;
    socks_sa = addr_of("127.0.0.1", p);
    socks_req[0] = 5;
    socks_req[1] = 1;
    socks_req[2] = 0;
    socks_req[3] = 1;
    memcpy(socks_req + 4, &target->sin_addr, 4);
    memcpy(socks_req + 8, &target->sin_port, 2);
}

/* Blocking handshake for bulk: greeting, method 00, CONNECT, success reply. */
static void
socks_blocking(int fd)
{
    uint8_t r[10];

    if (send(fd, "\x05\x01\x00", 3, 0) != 3 || recv(fd, r, 2, MSG_WAITALL) != 2 || r[1] != 0 ||
        send(fd, socks_req, 10, 0) != 10 || recv(fd, r, 10, MSG_WAITALL) != 10 || r[1] != 0)
        die("socks5 handshake");
}

static int
bulk(const char *host, const char *port, double secs)
{
    static char        buf[BUF_BYTES];
    struct sockaddr_in sa = addr_of(host, port);
    int                fd;

    socks_setup(&sa);
    fd = dial(socks_on ? &socks_sa : &sa, 0);
    if (fd >= 0 && socks_on)
        socks_blocking(fd);
    double             t0, t1, deadline;
    uint64_t           total = 0;

    if (fd < 0 || send(fd, "B", 1, 0) != 1)
        die("bulk connect");
    t0 = now_s();
    deadline = t0 + secs;
    /* The first half second warms up windows and caches; it is not counted. */
    while (now_s() < t0 + 0.5) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);

        if (r <= 0)
            die("bulk recv");
    }
    t0 = now_s();
    while ((t1 = now_s()) < deadline) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);

        if (r <= 0)
            die("bulk recv");
        total += (uint64_t)r;
    }
    close(fd);
    printf("%.1f\n", (double)total / (1024.0 * 1024.0) / (t1 - t0));
    return 0;
}

struct rconn {
    int fd;
    int state;  /* 0 connecting, 1 waiting for pong/EOF, 2 socks method, 3 socks reply */
};

static int
fetch(const char *host, const char *port, uint64_t mib)
{
    static char        buf[BUF_BYTES];
    struct sockaddr_in sa = addr_of(host, port);
    uint64_t           left = mib << 20;
    double             t0, t1;
    int                fd = dial(&sa, 0);

    if (fd < 0 || send(fd, "B", 1, 0) != 1)
        die("fetch connect");
    t0 = now_s();
    while (left > 0) {
        ssize_t r = recv(fd, buf, left < sizeof(buf) ? left : sizeof(buf), 0);

        if (r <= 0)
            die("fetch recv");
        left -= (uint64_t)r;
    }
    t1 = now_s();
    close(fd);
    printf("%.3f s %.1f MiB/s\n", t1 - t0, (double)mib / (t1 - t0));
    return 0;
}

static int
rate(const char *host, const char *port, double secs, int conc)
{
    struct sockaddr_in  sa = addr_of(host, port);
    struct rconn       *rc = calloc((size_t)conc, sizeof(*rc));
    struct epoll_event  ev, evs[512];
    int                 ep = epoll_create1(0);
    uint64_t            done = 0, errors = 0;
    double              t0 = now_s(), deadline = t0 + secs;
    struct sockaddr_in *to = &sa;

    raise_nofile();
    socks_setup(&sa);
    if (socks_on)
        to = &socks_sa;
    for (int i = 0; i < conc; i++) {
        rc[i].fd = dial(to, 1);
        ev.events = EPOLLOUT;
        ev.data.ptr = &rc[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, rc[i].fd, &ev);
    }
    while (now_s() < deadline) {
        int n = epoll_wait(ep, evs, 512, 100);

        for (int i = 0; i < n; i++) {
            struct rconn *c = evs[i].data.ptr;
            char          in[64];
            ssize_t       r;

            if (c->state == 0 && socks_on) {
                if ((evs[i].events & (EPOLLERR | EPOLLHUP)) ||
                    send(c->fd, "\x05\x01\x00", 3, 0) != 3) {
                    errors++;
                    goto again;
                }
                c->state = 2;
                ev.events = EPOLLIN;
                ev.data.ptr = c;
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            if (c->state == 2 || c->state == 3) {
                /* Replies this small arrive whole on loopback; a short one is an error. */
                size_t want = c->state == 2 ? 2 : 10;

                r = recv(c->fd, in, want, 0);
                if (r < 0 && errno == EAGAIN)
                    continue;
                if (r != (ssize_t)want || in[1] != 0) {
                    errors++;
                    goto again;
                }
                if (c->state == 2) {
                    if (send(c->fd, socks_req, 10, 0) != 10) {
                        errors++;
                        goto again;
                    }
                    c->state = 3;
                    continue;
                }
                if (send(c->fd, "ping\n", 5, 0) != 5) {
                    errors++;
                    goto again;
                }
                c->state = 1;
                continue;
            }
            if (c->state == 0) {
                if ((evs[i].events & (EPOLLERR | EPOLLHUP)) || send(c->fd, "ping\n", 5, 0) != 5) {
                    errors++;
                    goto again;
                }
                c->state = 1;
                ev.events = EPOLLIN;
                ev.data.ptr = c;
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            r = recv(c->fd, in, sizeof(in), 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r > 0)
                continue;       /* "pong\n"; wait for the close */
            if (r == 0)
                done++;
            else
                errors++;
again:
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->state = 0;
            c->fd = dial(to, 1);
            ev.events = EPOLLOUT;
            ev.data.ptr = c;
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        }
    }
    printf("%.0f %llu\n", (double)done / (now_s() - t0), (unsigned long long)errors);
    return 0;
}

static int
idle(const char *host, const char *port, int n)
{
    struct sockaddr_in sa = addr_of(host, port);
    int               *fds = calloc((size_t)n, sizeof(int));
    char               b;

    raise_nofile();
    for (int i = 0; i < n; i++) {
        struct pollfd p;

        if ((fds[i] = dial(&sa, 0)) < 0 || send(fds[i], "i", 1, 0) != 1)
            die("idle connect");
        p.fd = fds[i];
        p.events = POLLIN;
        if (poll(&p, 1, 10000) != 1 || recv(fds[i], &b, 1, 0) != 1) {
            fprintf(stderr, "idle: connection %d not relayed\n", i);
            return 1;
        }
    }
    printf("ready %d\n", n);
    fflush(stdout);
    while (read(0, &b, 1) > 0)
        ;
    return 0;
}


static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* ---- slowloris ------------------------------------------------------------------- */

static int
slow_open(const struct sockaddr_in *sa)
{
    static const char head[] = "GET / HTTP/1.1\r\nHost: s\r\n";
    int               fd;

    for (int tries = 0; tries < 100; tries++) {
        struct pollfd p;

        if ((fd = dial(sa, 0)) < 0) {
            usleep(10000);
            continue;
        }
        p.fd = fd;
        p.events = POLLOUT;
        if (poll(&p, 1, 5000) == 1 && send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL) ==
            (ssize_t)(sizeof(head) - 1))
            return fd;
        close(fd);
    }
    die("slow connect");
    return -1;
}

static int
slow(const char *host, const char *port, int n, double every_s)
{
    struct sockaddr_in sa = addr_of(host, port);
    int               *fds = calloc((size_t)n, sizeof(int));
    unsigned long      reopened = 0;
    double             next;
    char               b;

    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if (fds == NULL)
        die("calloc");
    for (int i = 0; i < n; i++)
        fds[i] = slow_open(&sa);
    printf("ready %d\n", n);
    fflush(stdout);
    next = now_s() + every_s;
    for (;;) {
        struct pollfd in = { .fd = 0, .events = POLLIN };
        int           ms = (int)((next - now_s()) * 1000);

        if (poll(&in, 1, ms > 0 ? ms : 0) == 1 && read(0, &b, 1) <= 0)
            break;
        if (now_s() < next)
            continue;
        /* One byte each; a connection the server closed (its head timeout) comes back. */
        for (int i = 0; i < n; i++) {
            if (send(fds[i], "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1 && errno != EAGAIN) {
                close(fds[i]);
                fds[i] = slow_open(&sa);
                reopened++;
            }
        }
        next += every_s;
    }
    fprintf(stderr, "reopened %lu\n", reopened);
    return 0;
}

/* ---- HTTP keep-alive client ------------------------------------------------------- */

#define HEAD_BYTES 16384

enum { H_CONNECTING, H_HEAD, H_BODY };

struct hconn {
    int      fd;
    int      state;
    bool     must_close;        /* the response said Connection: close */
    double   sent_s;            /* when the request went out */
    uint64_t body_left;
    size_t   nhead;
    char     head[HEAD_BYTES];
};

struct hrun {
    const struct sockaddr_in *sa;
    int                       ep;
    const char               *req;
    size_t                    nreq;
    char                    **hdrs;           /* LOADGEN_HEADERS lines, or NULL */
    size_t                    nhdrs, next_hdr;
    const char               *path, *host, *port;
    double                    count_from_s;   /* end of the warm-up */
    uint64_t                  done, errors, reconnects;
    uint32_t                 *lat_us;         /* latencies of counted responses */
    size_t                    nlat, caplat;
    bool                      told;           /* first error already on stderr */
};

static void __attribute__((format(printf, 2, 3)))
http_err(struct hrun *h, const char *fmt, ...)
{
    va_list ap;

    h->errors++;
    if (h->told)
        return;
    h->told = true;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen http: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void
http_dial(struct hrun *h, struct hconn *c)
{
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

    c->state = H_CONNECTING;
    c->nhead = 0;
    c->must_close = false;
    if ((c->fd = dial(h->sa, 1)) < 0)
        die("socket");
    epoll_ctl(h->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void
http_redial(struct hrun *h, struct hconn *c)
{
    epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    h->reconnects++;
    http_dial(h, c);
}

/* Sends the request; false if it did not go out whole (a fresh request on an idle
 * connection always fits the socket buffer, so a short send is an error). */
static bool
http_send(struct hrun *h, struct hconn *c)
{
    static char one[20000];
    const char *req = h->req;
    size_t      nreq = h->nreq;

    if (h->nhdrs > 0) {
        int n = snprintf(one, sizeof(one), "GET %s HTTP/1.1\r\nHost: %s:%s\r\n"
                         "User-Agent: ferry-loadgen\r\nAccept: */*\r\n%s\r\n\r\n", h->path,
                         h->host, h->port, h->hdrs[h->next_hdr++ % h->nhdrs]);

        if (n < 0 || (size_t)n >= sizeof(one)) {
            http_err(h, "a LOADGEN_HEADERS line is too long");
            return false;
        }
        req = one;
        nreq = (size_t)n;
    }
    if (send(c->fd, req, nreq, MSG_NOSIGNAL) != (ssize_t)nreq) {
        http_err(h, "send: %s", strerror(errno));
        return false;
    }
    c->sent_s = now_s();
    c->state = H_HEAD;
    c->nhead = 0;
    return true;
}

static void
http_record(struct hrun *h, struct hconn *c)
{
    double t = now_s();

    if (c->sent_s < h->count_from_s)
        return;
    h->done++;
    if (h->nlat == h->caplat) {
        h->caplat = h->caplat ? 2 * h->caplat : 1 << 16;
        if ((h->lat_us = realloc(h->lat_us, h->caplat * sizeof(*h->lat_us))) == NULL)
            die("realloc");
    }
    h->lat_us[h->nlat++] = (uint32_t)((t - c->sent_s) * 1e6);
}

/* Case-insensitive search for header NAME (with its colon) in the head; returns the
 * value's first byte or NULL. The head is NUL-terminated by the caller. */
static const char *
http_header(const char *head, const char *name)
{
    size_t      n = strlen(name);
    const char *p = strstr(head, "\r\n");

    while (p != NULL && p[2] != '\r') {
        p += 2;
        if (strncasecmp(p, name, n) == 0) {
            p += n;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

/* Parses a whole head of HLEN bytes (the blank line included): false on an error. */
static bool
http_parse_head(struct hrun *h, struct hconn *c, size_t hlen)
{
    char        save = c->head[hlen];
    const char *v;
    char       *end;
    bool        ok = false;

    c->head[hlen] = '\0';
    if (strncmp(c->head, "HTTP/1.1 200 ", 13) != 0 && strncmp(c->head, "HTTP/1.0 200 ", 13) != 0) {
        char line[200];
        size_t n = strcspn(c->head, "\r\n");

        snprintf(line, sizeof(line), "%.*s", (int)(n < 150 ? n : 150), c->head);
        http_err(h, "status %s", line);
        goto out;
    }
    if ((v = http_header(c->head, "Content-Length:")) == NULL) {
        http_err(h, "response without Content-Length");
        goto out;
    }
    errno = 0;
    c->body_left = strtoull(v, &end, 10);
    if (errno != 0 || end == v) {
        http_err(h, "bad Content-Length");
        goto out;
    }
    v = http_header(c->head, "Connection:");
    c->must_close = v != NULL && strncasecmp(v, "close", 5) == 0;
    ok = true;
out:
    c->head[hlen] = save;
    return ok;
}

/* Consumes N bytes at P as part of the current response; -1 on an error, 1 when the
 * response is complete (no pipelining: nothing may follow it), else 0. The head is
 * gathered in c->head; body bytes are only counted. */
static int
http_consume(struct hrun *h, struct hconn *c, const char *p, size_t n)
{
    if (c->state == H_HEAD) {
        size_t before = c->nhead, take = sizeof(c->head) - 1 - c->nhead, hlen;
        char  *blank;

        if (take > n)
            take = n;
        memcpy(c->head + c->nhead, p, take);
        c->nhead += take;
        c->head[c->nhead] = '\0';
        /* The blank line may straddle two reads: search from 3 bytes back. */
        if ((blank = strstr(c->head + (before > 3 ? before - 3 : 0), "\r\n\r\n")) == NULL) {
            if (c->nhead == sizeof(c->head) - 1) {
                http_err(h, "response head over %zu bytes", sizeof(c->head) - 1);
                return -1;
            }
            return 0;
        }
        hlen = (size_t)(blank - c->head) + 4;
        if (!http_parse_head(h, c, hlen))
            return -1;
        c->state = H_BODY;
        p += hlen - before;     /* the body starts right after the head */
        n -= hlen - before;
    }
    if (n > c->body_left) {
        http_err(h, "bytes after the response body");
        return -1;
    }
    c->body_left -= n;
    return c->body_left == 0 ? 1 : 0;
}

static int
http_bench(const char *host, const char *port, double secs, int conc, const char *path)
{
    static char        buf[1 << 18];
    struct sockaddr_in sa = addr_of(host, port);
    struct hrun        h = { .sa = &sa };
    struct hconn      *hc;
    struct epoll_event ev, evs[512];
    char               req[1024];
    double             t0 = now_s(), deadline = t0 + secs, t1;
    int                n;

    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: ferry-loadgen\r\n"
                 "Accept: */*\r\n\r\n", path, host, port);
    if (n < 0 || (size_t)n >= sizeof(req) || conc < 1) {
        fprintf(stderr, "loadgen http: bad path or connection count\n");
        return 2;
    }
    h.req = req;
    h.nreq = (size_t)n;
    h.path = path;
    h.host = host;
    h.port = port;
    if (getenv("LOADGEN_HEADERS") != NULL && getenv("LOADGEN_HEADERS")[0] != '\0') {
        FILE  *f = fopen(getenv("LOADGEN_HEADERS"), "r");
        char   line[16384];

        if (f == NULL)
            die("LOADGEN_HEADERS");
        while (fgets(line, sizeof(line), f) != NULL) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] == '\0')
                continue;
            if ((h.hdrs = realloc(h.hdrs, (h.nhdrs + 1) * sizeof(*h.hdrs))) == NULL ||
                (h.hdrs[h.nhdrs] = strdup(line)) == NULL)
                die("LOADGEN_HEADERS");
            h.nhdrs++;
        }
        fclose(f);
    }
    h.count_from_s = t0 + (secs > 1.0 ? 0.5 : 0.0);
    if ((h.ep = epoll_create1(0)) < 0 || (hc = calloc((size_t)conc, sizeof(*hc))) == NULL)
        die("epoll/calloc");
    for (int i = 0; i < conc; i++)
        http_dial(&h, &hc[i]);
    while ((t1 = now_s()) < deadline) {
        int ne = epoll_wait(h.ep, evs, 512, 100);

        for (int i = 0; i < ne; i++) {
            struct hconn *c = evs[i].data.ptr;
            ssize_t       r;
            int           rc;

            if (c->state == H_CONNECTING) {
                int       soerr = 0;
                socklen_t sl = sizeof(soerr);

                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                if (soerr != 0) {
                    http_err(&h, "connect: %s", strerror(soerr));
                    usleep(10000);      /* a refusing port must not spin the loop */
                    http_redial(&h, c);
                    continue;
                }
                if (!http_send(&h, c)) {
                    http_redial(&h, c);
                    continue;
                }
                ev.events = EPOLLIN;
                ev.data.ptr = c;
                epoll_ctl(h.ep, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            r = recv(c->fd, buf, sizeof(buf), 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r <= 0) {
                http_err(&h, "%s", r == 0 ? "EOF before the response ended" : strerror(errno));
                http_redial(&h, c);
                continue;
            }
            rc = http_consume(&h, c, buf, (size_t)r);
            if (rc < 0) {
                http_redial(&h, c);
                continue;
            }
            if (rc == 0)
                continue;
            http_record(&h, c);
            if (c->must_close) {
                http_redial(&h, c);
                continue;
            }
            if (!http_send(&h, c))
                http_redial(&h, c);
        }
    }
    t1 = now_s();
    {
        double p50 = 0, p99 = 0, counted = t1 - h.count_from_s;

        if (h.nlat > 0) {
            size_t i50 = (h.nlat - 1) / 2, i99 = (size_t)((double)(h.nlat - 1) * 0.99);

            qsort(h.lat_us, h.nlat, sizeof(*h.lat_us), cmp_u32);
            p50 = h.lat_us[i50] / 1e3;
            p99 = h.lat_us[i99] / 1e3;
        }
        printf("%.0f %.3f %.3f %llu %llu\n", (double)h.done / counted, p50, p99,
               (unsigned long long)h.errors, (unsigned long long)h.reconnects);
    }
    for (int i = 0; i < conc; i++)
        close(hc[i].fd);
    free(hc);
    free(h.lat_us);
    close(h.ep);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "serve") == 0)
        return serve(argv[2]);
    if (argc >= 5 && strcmp(argv[1], "bulk") == 0)
        return bulk(argv[2], argv[3], atof(argv[4]));
    if (argc >= 5 && strcmp(argv[1], "fetch") == 0)
        return fetch(argv[2], argv[3], strtoull(argv[4], NULL, 10));
    if (argc >= 6 && strcmp(argv[1], "rate") == 0)
        return rate(argv[2], argv[3], atof(argv[4]), atoi(argv[5]));
    if (argc >= 5 && strcmp(argv[1], "idle") == 0)
        return idle(argv[2], argv[3], atoi(argv[4]));
    if (argc >= 6 && strcmp(argv[1], "slow") == 0)
        return slow(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
    if (argc >= 7 && strcmp(argv[1], "http") == 0)
        return http_bench(argv[2], argv[3], atof(argv[4]), atoi(argv[5]), argv[6]);
    fprintf(stderr, "usage: see the comment at the top of loadgen.c\n");
    return 2;
}
