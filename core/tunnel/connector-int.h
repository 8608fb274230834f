/*
 * connector-int.h: the connector's runtime, shared by connector.c (process, workers,
 * links to gateways) and cstream.c (streams to internal hosts: access control, TLS to
 * the internal host, HTTP path rules, audit records).
 */
#ifndef FERRY_CONNECTOR_INT_H
#define FERRY_CONNECTOR_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include <ferry/http.h>

#include "conf/connector-conf.h"
#include "http/parse.h"
#include "stats/stats.h"
#include "tunnel/audit.h"
#include "tunnel/replicas.h"
#include "tls/usercert.h"
#include "tunnel/session.h"

struct dial;

#define MAX_CWORKERS       64
#define MAX_GATEWAYS       16
#define MAX_TARGETS        (MAX_GATEWAYS + REPLICAS_MAX)   /* configured + discovered */
#define MAX_SLOTS          64
#define BACKOFF_FIRST_MS   250
#define REGISTER_TIMEOUT_MS 10000
/* A reply with a replica list: the gateway's bound (gateway.c, REPLY_MAX_BYTES). The
 * buffer starts at REPLY_FIRST_BYTES and grows to the announced length only. */
#define REPLY_MAX_BYTES    (REPLICAS_JSON_MAX + 1024)
#define REPLY_FIRST_BYTES  4096

struct connector;
struct cstream;

/* What a reload (SIGHUP) replaces: the systems (access control, HTTP paths, TLS to the
 * internal hosts, per-system principal propagation), the user-certificate issuer
 * (principal_propagation:, built anew: a reload picks up a rotated CA file, and each
 * worker's certificate cache starts empty) and the settings read per stream
 * (audit_fail, connect_timeout_ms; log.level is process-wide). The rest of the file
 * (gateways, tenant, token, tunnel TLS, workers, admin, audit_log, the tunnel timers) is
 * read at start only: a reload that changes it says so and keeps the running value. A worker holds a reference to the generation its new
 * streams use; a stream holds one to the generation it began in, so a reload never
 * changes a live stream's rules, and a generation is freed (on whichever thread drops
 * the last reference) once no stream needs it. */
struct cgen {
    atomic_int                   refs;
    unsigned                     id;            /* 1 at start, +1 per reload */
    struct ferry_connector_conf *conf;          /* owns */
    SSL_CTX                    **sys_ctx;       /* owns: per system, NULL without TLS */
    char                        *systems_json;  /* owns: virtual names, for the hello */
    struct ferry_tls_issuer     *pp;            /* owns: principal_propagation:, or NULL;
                                                   freed after every cache made for it */
};
struct cgen *cgen_ref(struct cgen *g);
void         cgen_unref(struct cgen *g);

/* Principal propagation (cpp.c): a user certificate is signed on the connector's
 * signer thread, off the workers' loops. A worker posts a job (the claims, its stream)
 * and continues with other streams; the signer signs and posts the job back to that
 * worker's done list; the worker caches the certificate and resumes the stream. Only
 * whole objects change hands: the claims go to the signer (it drops them), the
 * certificate comes back with its one reference (usercert references are not atomic). */
#define PP_QUEUE_MAX 1024               /* jobs waiting for the signer, all workers */

struct pp_job {
    struct pp_job             *next;    /* the signer's queue, then the done list */
    struct cworker            *w;       /* whose done list it returns to */
    /* Worker only (the signer never reads these): */
    struct cstream            *waiters; /* streams of this subject, via cs->job_next; a
                                           stream that ends leaves the list */
    struct pp_job             *pend_next;  /* the worker's jobs still out */
    struct cgen               *gen;     /* a reference: its issuer signs this job */
    char                      *dn;      /* owns: the subject, to join a job in flight */
    /* Handed over whole: */
    json_t                    *claims;  /* owns until the signer has signed */
    struct ferry_tls_usercert *uc;      /* the result: one reference, or NULL */
    int                        rc;
    char                       reason[200];
};

struct signer {
    pthread_t       thread;
    bool            started;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    struct pp_job  *head, *tail;        /* under mu */
    unsigned        n;
    bool            stop;
};

/* Where links go: a configured gateway (entries 0 .. ngateways-1, for the process's
 * life) or a replica learned from a list (the rest; an entry is reused only once no
 * link refers to it). Workers read text/host/port without the lock: they are written
 * only while the entry is unused, before the lock that publishes it as active. */
struct target {
    char        text[FERRY_CONF_HOST_MAX + 10];   /* "host:port", for logs */
    char        host[FERRY_CONF_HOST_MAX];        /* dialed */
    /* The name its certificate must carry (and the SNI): a configured gateway's own
     * host; a listed replica's, the host of the configured gateway whose list named it.
     * Replicas of one fleet share the tunnel certificate of the name connectors are
     * given, while their advertised addresses (pod IPs) come and go. */
    char        verify[FERRY_CONF_HOST_MAX];
    uint16_t    port;
    bool        configured;
    /* Under connector.mu: */
    bool        active;                  /* links wanted (configured: always) */
    char        id[REPLICA_ID_MAX + 1];  /* the replica: "" until a reply names it */
    unsigned    gen;                     /* bumped on each reuse: old links retire */
    /* Any thread: */
    atomic_uint slots;                   /* the gateway's worker count, as learned */
    atomic_uint nlinks;                  /* link objects pointing here */
};

struct cworker {
    unsigned           id;
    pthread_t          thread;
    struct connector  *cn;
    struct event_base *base;
    struct evdns_base *dns;
    int                cmd_fd;
    struct event       cmd_ev;
    struct link       *links;
    unsigned           nstreams;
    bool               draining;
    struct cgen       *gen;                /* a reference: what new streams use */
    /* Principal propagation (the signer's return path is always there: a reload may
     * add `principal_propagation:`): */
    struct ferry_tls_usercache *pp_cache;  /* this worker's, for gen->pp; NULL without */
    int                pp_fd;              /* eventfd: the signer returned jobs */
    struct event       pp_ev;
    bool               pp_ev_added;
    pthread_mutex_t    pp_mu;              /* pp_done */
    bool               pp_mu_init;
    struct pp_job     *pp_done;
    /* Jobs out at the signer: a second stream of a subject waits for the first's
     * certificate instead of asking for another (one signature per user and worker). */
    struct pp_job     *pp_pending;
};

struct connector {
    const char                  *conf_path;  /* borrowed: main's argument */
    struct ferry_connector_conf *conf;       /* the start's: first->conf */
    struct cgen                 *first;      /* a reference, for conf's sake */
    struct cgen                 *cur;        /* under mu; a reference: the latest */
    unsigned                     reloads;    /* main thread: generations made */
    SSL_CTX                     *ctx;
    struct ferry_audit          *audit;      /* NULL: no audit_log */
    struct cworker               ws[MAX_CWORKERS];
    unsigned                     nworkers;
    unsigned                     ninit;      /* workers cworker_init ran for */
    unsigned                     nstarted;   /* worker threads running */
    atomic_int                   live;       /* tunnels up, for /readyz */
    atomic_int                   replicas;   /* in the latest list, for /metrics */
    atomic_uint                  skipped;    /* its entries left out, to warn on change */
    pthread_mutex_t              mu;         /* targets' id, active, gen */
    struct target               *targets;    /* owns: MAX_TARGETS */
    char                         id[33];
    struct stats_slot           *stats;
    atomic_bool                  draining;
    atomic_bool                  stopping;
    struct signer                signer;
    _Atomic uint64_t             pp_issued, pp_reused, pp_refused;  /* for /metrics */
};

enum link_state { L_WAIT, L_DIAL, L_TLS, L_HELLO_OUT, L_HELLO_IN, L_UP, L_STOPPED };

struct link {
    struct link     *next;
    struct cworker  *w;
    unsigned         gw, slot;    /* gw: its target's index */
    unsigned         gen;         /* the target's gen when the link was made */
    bool             retired;     /* its replica left the list: closing, then freed */
    bool             superseded;  /* a reload changed the systems: a new link for its
                                     gateway and slot says so; this one is retired
                                     once that one is up (its streams finish) */
    bool             doomed;      /* worker_sync_links: to retire once the lock is off */
    enum link_state  st;
    struct event     ev, timer;
    bool             ev_added;
    int              fd;
    SSL             *ssl;
    struct dial     *dial;
    struct tunnel   *t;
    uint32_t         backoff_ms;
    uint8_t         *buf;         /* owns: the hello, then the reply; cap bytes */
    size_t           cap, len, off;
    bool             warned;      /* a refusal is logged once per outage, then debug */
};

/* HTTP systems with `paths`: the connector reads each request head the gateway sends
 * and lets it through only if its path is allowed (SAP's "path and all sub-paths"). */
#define HF_HEAD_MAX (16 * 1024)

enum hf_state { HF_HEAD, HF_BODY_LENGTH, HF_BODY_CHUNKED, HF_PASS, HF_DENIED };

struct http_filter {
    enum hf_state             st;
    char                     *head;       /* owns: HF_HEAD_MAX, the head being read */
    size_t                    head_len;
    uint64_t                  remaining;  /* HF_BODY_LENGTH */
    struct ferry_http_chunked chunked;    /* HF_BODY_CHUNKED */
    struct ferry_http_req     req;
};

struct cstream {
    struct cgen                    *gen;       /* a reference: sys lives in it */
    struct http_filter             *hf;        /* owns; NULL unless the system has paths */
    struct tstream                 *s;
    struct link                    *l;
    const struct ferry_conf_system *sys;
    struct dial                    *dial;
    struct event                    ev;
    bool                            ev_added;
    SSL                            *ssl;        /* owns during the TLS handshake */
    struct timeval                  started;
    char                            vtarget[300];
    struct ferry_tls_usercert      *uc;         /* ref: the user's certificate, or NULL */
    struct pp_job                  *job;        /* waiting for the signer, or NULL */
    struct cstream                 *job_next;   /* the job's other waiters */
};

/* cpp.c */
/* The issuer for conf's `principal_propagation:` (*out NULL without one). An error goes
 * to err as "file:line:col: principal_propagation: ..." (a bad subject points into the
 * pattern; a CA error at ca_cert). FERRY_OK, FERRY_EINVAL. Main thread. */
int  cpp_issuer_new(const struct ferry_connector_conf *conf, struct ferry_tls_issuer **out,
                    struct ferry_err *err);
/* w->gen changed: a cache for its issuer (or none), the old one dropped. */
int  cpp_worker_regen(struct cworker *w);
int  cpp_signer_start(struct connector *cn);
void cpp_signer_stop(struct connector *cn);       /* after the workers are joined */
int  cpp_worker_init(struct cworker *w);
void cpp_worker_fini(struct cworker *w);
/* cs waits for the certificate of subject dn (claims: owned, given to the signer if a
 * new job is needed). FERRY_OK; FERRY_ELIMIT (the signer's queue is full), FERRY_ENOMEM:
 * claims freed, cs not waiting. */
int  cpp_wait(struct cworker *w, struct cstream *cs, const char *dn, json_t *claims);
/* cs ended while waiting: it leaves its job's waiters. */
void cpp_unwait(struct cstream *cs);
void cpp_job_free(struct pp_job *job);

/* cstream.c: the tunnel callbacks for streams. */
/* Principal propagation, header mode: a complete request head (len bytes) into out
 * without any SSL_CLIENT_CERT field (any case, '-' for '_'), and with
 * "SSL_CLIENT_CERT: <b64>" before its blank line unless b64 is NULL. cap >= len, plus
 * strlen(b64) + CN_PP_HEAD_EXTRA with b64. Returns the length written. */
#define CN_PP_HEAD_EXTRA 32
size_t cn_pp_head_rewrite(const char *head, size_t len, const char *b64, char *out, size_t cap);
/* The signer answered for cs's user (job->uc taken on success). */
void cs_pp_done(struct cstream *cs, struct pp_job *job);
void cn_on_request(struct tunnel *t, struct tstream *s, const char *authority,
                   const char *protocol, const char *user, bool user_big);
void cn_on_stream_end(struct tstream *s, enum tstream_end why);
void cn_on_bytes(struct tstream *s, uint64_t in, uint64_t out);

#endif
