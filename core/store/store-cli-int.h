/*
 * store-cli-int.h: what store-cli.c (options, etcd, import, export to files) shares
 * with store-k8s.c (export as Kubernetes Services), and nobody else sees.
 */
#ifndef FERRY_STORE_CLI_INT_H
#define FERRY_STORE_CLI_INT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

struct ferry_conf;

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
    char   *name;       /* owns */
    json_t *props;      /* ref: the properties without "tenant"; values may be secrets */
};

struct store_k8s_opts {
    const char *ns;                                   /* NULL: no metadata.namespace */
    const char *selector[STORE_K8S_MAX_SELECTORS];    /* "key=value"; none: the default */
    size_t      nselectors;
    unsigned    port;                                 /* the Service's port (default 80) */
    unsigned    target_port;                          /* 0: the transparent listener's */
};

/* Check an option's value before anything runs: NULL if fine, else why (static text). */
const char *store_k8s_check_selector(const char *kv);
const char *store_k8s_check_namespace(const char *ns);

/* One Service per HTTP destination of e[0..n) to out (all or nothing: a clash between
 * two Service names prints none). conf: the gateway configuration, for the transparent
 * listener's port. Returns the exit code. */
int  store_k8s_print(const struct ferry_conf *conf, const struct store_entry *e, size_t n,
                     const struct store_k8s_opts *o, FILE *out);

#endif
