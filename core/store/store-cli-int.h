/*
 * store-cli-int.h: what the files of `ferry store` share and nobody else sees:
 * store-cli.c (the command line, import, export to files), store-read.c (waiting for
 * etcd, reading destinations back) and store-k8s.c (export as Kubernetes Services).
 */
#ifndef FERRY_STORE_CLI_INT_H
#define FERRY_STORE_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "store/store.h"

struct etcd;
struct event;
struct event_base;
struct evdns_base;
struct ferry_conf;
struct ferry_conf_store;
struct ferry_tls_cache;

#define STORE_EXIT_OK     0
#define STORE_EXIT_FAIL   1     /* etcd or I/O failed, or a destination was skipped */
#define STORE_EXIT_CONFIG 2     /* usage, configuration or validation: nothing written */

#define STORE_K8S_MAX_SELECTORS 8

/* One destination read back from etcd, checked: the key is
 * <prefix>/destinations/<tenant>/<Name>, Name is one the loader accepts, and the value
 * is a JSON object of strings whose Name (and tenant, if it has one) match the key. */
struct store_entry {
    char   *key;        /* owns: the key, printable (for messages) */
    char   *tenant;     /* owns */
    char   *name;       /* owns: without "@instance" */
    bool    instance;   /* the key ends in "@instance": an instance-level destination */
    json_t *props;      /* ref: the properties without "tenant"; values may be secrets */
};

struct store_k8s_opts {
    const char *ns;                                   /* NULL: no metadata.namespace */
    const char *selector[STORE_K8S_MAX_SELECTORS];    /* "key=value"; none: the default */
    size_t      nselectors;
    unsigned    port;                                 /* the Service's port (default 80) */
    unsigned    target_port;                          /* 0: the transparent listener's */
};

/* The loop, the resolver and the etcd client of one command (store-read.c). */
struct store_cli {
    struct event_base      *base;       /* owns */
    struct evdns_base      *dns;        /* owns */
    struct ferry_tls_cache *tls;        /* owns; NULL without https endpoints */
    struct etcd            *etcd;       /* owns */
    struct event           *deadline;   /* owns: etcd silent this long ends the command */
    bool                    expired;
};

/* FERRY_OK, or FERRY_ENOMEM (printed). */
int  store_cli_open(struct store_cli *cli, const struct ferry_conf_store *sc);
/* Cancels what still runs: no callback after this. */
void store_cli_close(struct store_cli *cli);
/* One call (body stolen), waited for. FERRY_OK and *out (a reference), or an error
 * already printed: "etcd unreachable: ..." when no endpoint answered in time, else
 * etcd's answer. */
int  store_cli_call(struct store_cli *cli, const char *path, json_t *body, json_t **out);

/* Every destination under prefix ("<prefix>/destinations/"), a page at a time, in key
 * order. Keys or values that are not a destination are reported by key and counted in
 * *skipped; with keys_only, values are not read (props stay NULL) and keys that are not
 * a destination's are passed over in silence. FERRY_OK and *out (free it with
 * store_entries_free), or an error already printed. */
int  store_read_entries(struct store_cli *cli, const char *prefix, bool keys_only,
                        struct store_entry **out, size_t *n, int *skipped);
void store_entries_free(struct store_entry *e, size_t n);

/* Check an option's value before anything runs: NULL if fine, else why (static text). */
const char *store_k8s_check_selector(const char *kv);
const char *store_k8s_check_namespace(const char *ns);

/* One Service per HTTP destination of e[0..n) to out (all or nothing: a clash between
 * two Service names prints none). conf: the gateway configuration, for the transparent
 * listener's port. Returns the exit code. */
int  store_k8s_print(const struct ferry_conf *conf, const struct store_entry *e, size_t n,
                     const struct store_k8s_opts *o, FILE *out);

#endif
