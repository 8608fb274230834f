/*
 * cache.h: upstream TLS client contexts, one per distinct setting, shared by every
 * thread of the process (HTTPS and LDAPS upstreams, StartTLS, ferry.http.request).
 *
 * A context is built from files, and files are read on one thread only: the loader,
 * the main thread's loop. A worker asks by settings: a context already built comes
 * back at once (a reference, under a short lock: no I/O is ever done under it); one
 * that is not is built by the loader while the worker goes on, and the answer is
 * posted back to the worker's own loop. Asking twice for the same settings while they
 * load starts one build, not two.
 *
 * Bounded: at most FERRY_TLS_CACHE_MAX contexts are kept (each holds its own copy of
 * the system trust store, some hundreds of KiB). When a new one is built and the
 * cache is full, the least recently used context leaves it; connections that use it
 * keep their reference, and the next request with those settings builds it again. At
 * most FERRY_TLS_CACHE_MAX builds may be waiting at once; past that a request fails
 * with FERRY_ELIMIT. A build that fails (a file missing, not PEM) is not kept: its
 * waiters get the reason, and the next request tries again.
 *
 * The settings are the cache key: two settings that differ in any field (the key store's
 * path or its password included) never share a context. A destination's TLS properties
 * map onto them in one place, ferry_tls_settings_from_dest() (tls/from-dest.h), which
 * every user calls (the http and ldap plugins through ferry_io_tls_from_dest(), token
 * services through ferry.http.request's `tls_of`).
 */
#ifndef FERRY_TLS_CACHE_H
#define FERRY_TLS_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include <ferry/err.h>

#include "util/post.h"

#define FERRY_TLS_CACHE_MAX 64

struct event_base;
struct ferry_tls_cache;
struct ferry_tls_wait;

/* What an upstream client context is made of. Zero it: every field has a safe
 * default. Strings are borrowed for the call (the cache copies what it keeps). */
struct ferry_tls_settings {
    const char *ca_file;        /* PEM CAs trusted besides the system store; NULL: none */
    const char *cert_file;      /* client key store: PKCS#12 (.p12/.pfx), or PEM certificate
                                   and chain (key in the same file unless key_file) */
    const char *key_file;       /* NULL: taken from cert_file */
    const char *cert_password;  /* opens a PKCS#12 cert_file or an encrypted PEM key; NULL:
                                   none. A secret: never logged, kept only as a keyed hash
                                   in the cache key, copies wiped */
    bool        insecure;       /* do not verify the server (TrustAll) */
    bool        no_system_store;/* trust ca_file only */
    bool        wildcard_any_depth; /* HostnameVerifier BrowserCompatible: "*.example.com"
                                   also matches a.b.example.com (default: one label) */
};

/* loader: the loop of the thread that builds contexts (the main thread's; it must be
 * created after evthread_use_pthreads(), since workers wake it). max: contexts kept,
 * 1..FERRY_TLS_CACHE_MAX. FERRY_OK or FERRY_ENOMEM. */
int  ferry_tls_cache_new(struct event_base *loader, size_t max, struct ferry_tls_cache **out);
/* Once nobody asks any more (workers joined) and before the loader's base is freed:
 * builds not yet run are dropped with their waiters. */
void ferry_tls_cache_free(struct ferry_tls_cache *c);

/* The loader's thread (start, a reload): build the context for s now unless it is
 * cached, so the first request finds it. FERRY_OK, or why not in err. */
int  ferry_tls_cache_load(struct ferry_tls_cache *c, const struct ferry_tls_settings *s,
                          struct ferry_err *err);

/* A context is ready: ctx is a reference the callee owns (SSL_CTX_free), or NULL with
 * why (a file did not load; says which and why, never key material). */
typedef void (*ferry_tls_ready_cb)(SSL_CTX *ctx, const char *why, void *arg);

/* Any thread. FERRY_OK: *out is a reference to the cached context (the caller frees
 * it). FERRY_EAGAIN: it is being built; cb runs later on home's thread, from its
 * loop (never inside this call), unless ferry_tls_cache_cancel(*w) comes first.
 * FERRY_ENOMEM, or FERRY_ELIMIT when too many builds wait already. */
int  ferry_tls_cache_get(struct ferry_tls_cache *c, const struct ferry_tls_settings *s,
                         const struct ferry_post *home, ferry_tls_ready_cb cb, void *arg,
                         SSL_CTX **out, struct ferry_tls_wait **w);
/* On home's thread, before cb ran: cb will not run (the context is dropped). */
void ferry_tls_cache_cancel(struct ferry_tls_wait *w);

/* Forget every kept context (connections keep their references): the next use of any
 * settings builds again, reading the files again. A reload (SIGHUP) does this, so a
 * certificate or key store renewed on disk is used from then on. Loader's thread. */
void ferry_tls_cache_flush(struct ferry_tls_cache *c);

/* Contexts kept now (for tests and logs). */
size_t ferry_tls_cache_size(struct ferry_tls_cache *c);

#endif
