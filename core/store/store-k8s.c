/*
 * store-k8s.c: `ferry store export --k8s-services`: one Kubernetes Service per HTTP
 * destination in etcd, each in front of the gateway pods' shared transparent http
 * listener, so that an app in the cluster calls http://<service>/ as it would call
 * SAP's Transparent Proxy.
 *
 * That listener picks the destination by X-Destination-Name, else by the Host header
 * (port dropped; an exact, case-sensitive match of Name: plugins/http/target.c). An app
 * that calls http://<service>/ from the Service's namespace sends Host: <service>, so a
 * Service named exactly like its destination needs nothing more. A Name that is not a
 * DNS label (capitals, '_', '.') gets a Service named after it — lowercased, other
 * characters '-' — whose Host the listener does not know: we say so on stderr, and the
 * app must send X-Destination-Name. Non-HTTP destinations are not served by an http
 * listener: they get no Service (stderr says which).
 *
 * Output is YAML written by hand: every string that did not come from us is a JSON
 * string, which YAML reads as a double-quoted scalar, so nothing can break out of it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/opts.h>

#include "conf/conf.h"
#include "store/store-cli-int.h"

#define K8S_NAME_MAX     63         /* a Service name is an RFC 1035 label */
/* The gateway pods' labels in deploy/kubernetes (base/deployment.yaml). */
#define K8S_DEFAULT_SELECTOR "    app.kubernetes.io/name: ferry\n" \
                             "    app.kubernetes.io/component: gateway\n"

struct svc {
    char                      name[K8S_NAME_MAX + 1];
    const struct store_entry *e;    /* borrowed */
};

static bool
is_label_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
}

const char *
store_k8s_check_namespace(const char *ns)
{
    size_t n = strlen(ns);

    if (n == 0 || n > K8S_NAME_MAX || ns[0] == '-' || ns[n - 1] == '-')
        return "want a namespace name: 1 to 63 of a-z, 0-9 and '-', not at either end";
    for (size_t i = 0; i < n; i++)
        if (!is_label_char(ns[i]))
            return "want a namespace name: 1 to 63 of a-z, 0-9 and '-', not at either end";
    return NULL;
}

/* Kubernetes' label syntax, loosely: [prefix/]name=value; printing quotes them anyway. */
const char *
store_k8s_check_selector(const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t      klen, vlen;

    if (eq == NULL || eq == kv)
        return "want KEY=VALUE, e.g. app.kubernetes.io/component=gateway";
    klen = (size_t)(eq - kv);
    vlen = strlen(eq + 1);
    if (klen > 253 || vlen > 63)
        return "a label key has at most 253 characters, a value 63";
    for (const char *p = kv; *p != '\0'; p++) {
        if (p == eq)
            continue;
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
              || *p == '-' || *p == '_' || *p == '.' || (*p == '/' && p < eq)))
            return "labels are letters, digits, '-', '_' and '.' (and one '/' in the key)";
    }
    return NULL;
}

/* Lowercase, '-' for anything outside [a-z0-9-], starting with a letter, at most 63,
 * not ending with '-'. 0, or -1 when nothing is left. */
static int
service_name(const char *name, char *out)
{
    size_t n = 0;

    for (const char *p = name; *p != '\0' && n < K8S_NAME_MAX; p++) {
        char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;

        if (!is_label_char(ch))
            ch = '-';
        if (n == 0 && !(ch >= 'a' && ch <= 'z'))
            continue;
        out[n++] = ch;
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

/* A JSON string is a YAML double-quoted scalar. */
static int
put_str(FILE *out, const char *s)
{
    json_t *j = json_string(s);
    char   *t = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

    json_decref(j);
    if (t == NULL)
        return -1;
    fputs(t, out);
    free(t);
    return 0;
}

/* The shared transparent http listener of conf: http, not `mode: forward`, not bound
 * to one destination. Its port, or 0 (the caller says why). */
static unsigned
transparent_port(const struct ferry_conf *conf)
{
    for (size_t i = 0; i < conf->nlisteners; i++) {
        const struct ferry_conf_listener *l = &conf->listeners[i];
        const char                       *mode = NULL;
        unsigned                          port = 0;

        if (strcmp(l->plugin, "http") != 0 || l->destination != NULL)
            continue;
        if (ferry_opts_str(l->opts, "mode", &mode) == FERRY_OK && strcmp(mode, "forward") == 0)
            continue;
        if (l->addr.ss_family == AF_INET)
            port = ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
        else if (l->addr.ss_family == AF_INET6)
            port = ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
        if (port == 0)
            continue;
        /* A Service reaches the pod's address, never its loopback. */
        if (strncmp(l->listen, "127.", 4) == 0 || strncmp(l->listen, "[::1]", 5) == 0)
            fprintf(stderr, "%s: warning: listener '%s' listens on %s: a Service cannot reach "
                    "it; in the pod, listen on *:%u\n", conf->path, l->name, l->listen, port);
        return port;
    }
    return 0;
}

static int
svc_cmp(const void *a, const void *b)
{
    const struct svc *x = a, *y = b;
    int               c = strcmp(x->name, y->name);

    return c != 0 ? c : (x->e < y->e ? -1 : x->e > y->e);
}

static bool
is_http(const struct store_entry *e)
{
    json_t *t = json_object_get(e->props, "Type");

    return t != NULL && strcmp(json_string_value(t), "HTTP") == 0;
}

static void
print_service(FILE *out, const struct svc *s, const struct store_k8s_opts *o, unsigned target)
{
    fprintf(out, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n", s->name);
    if (o->ns != NULL)
        fprintf(out, "  namespace: %s\n", o->ns);
    /* component: destination, as deploy/kubernetes/README.md shows them: `kubectl
     * delete svc -l app.kubernetes.io/component=destination` finds them all. */
    fprintf(out, "  labels:\n    app.kubernetes.io/name: ferry\n"
                 "    app.kubernetes.io/component: destination\n"
                 "    app.kubernetes.io/managed-by: ferry-store-export\n"
                 "  annotations:\n    ferry.io/destination: ");
    put_str(out, s->e->name);
    fprintf(out, "\n    ferry.io/tenant: ");
    put_str(out, s->e->tenant);
    fprintf(out, "\nspec:\n  type: ClusterIP\n  selector:\n");
    if (o->nselectors == 0)
        fputs(K8S_DEFAULT_SELECTOR, out);
    for (size_t i = 0; i < o->nselectors; i++) {
        const char *eq = strchr(o->selector[i], '=');
        char        key[256];

        snprintf(key, sizeof(key), "%.*s", (int)(eq - o->selector[i]), o->selector[i]);
        fprintf(out, "    ");
        put_str(out, key);
        fprintf(out, ": ");
        put_str(out, eq + 1);
        fprintf(out, "\n");
    }
    fprintf(out, "  ports:\n    - name: http\n      protocol: TCP\n      port: %u\n"
                 "      targetPort: %u\n", o->port, target);
}

int
store_k8s_print(const struct ferry_conf *conf, const struct store_entry *e, size_t n,
                const struct store_k8s_opts *o, FILE *out)
{
    struct svc *svcs = calloc(n + 1, sizeof(*svcs));
    unsigned    target = o->target_port;
    size_t      ns = 0;
    int         rc = STORE_EXIT_OK;

    if (svcs == NULL) {
        fprintf(stderr, "ferry store: out of memory\n");
        return STORE_EXIT_FAIL;
    }
    if (target == 0 && (target = transparent_port(conf)) == 0) {
        fprintf(stderr, "%s: no shared transparent http listener (plugin: http, without "
                "mode: forward and without destination:); give --target-port\n", conf->path);
        free(svcs);
        return STORE_EXIT_CONFIG;
    }
    for (size_t i = 0; i < n; i++) {
        struct svc *s = &svcs[ns];

        if (!is_http(&e[i])) {
            fprintf(stderr, "%s: not Type HTTP: an http listener does not serve it; no "
                    "Service\n", e[i].key);
            continue;
        }
        if (service_name(e[i].name, s->name) != 0) {
            fprintf(stderr, "%s: no Service name can be made of '%s' (it needs a letter)\n",
                    e[i].key, e[i].name);
            rc = STORE_EXIT_FAIL;
            continue;
        }
        s->e = &e[i];
        ns++;
    }
    /* By name (then key order, for a stable message): a clash is two neighbours. */
    if (ns > 1)
        qsort(svcs, ns, sizeof(*svcs), svc_cmp);
    /* One tenant's Name at both levels is one Service: Host <Name> reaches the instance
     * level first, as SAP's lookup does. */
    if (ns > 1) {
        size_t kept = 1;

        for (size_t i = 1; i < ns; i++) {
            const struct store_entry *x = svcs[kept - 1].e, *y = svcs[i].e;

            if (strcmp(svcs[kept - 1].name, svcs[i].name) == 0 &&
                strcmp(x->name, y->name) == 0 && strcmp(x->tenant, y->tenant) == 0 &&
                x->instance != y->instance)
                svcs[kept - 1].e = x->instance ? x : y;
            else
                svcs[kept++] = svcs[i];
        }
        ns = kept;
    }
    for (size_t i = 1; i < ns; i++) {
        if (strcmp(svcs[i - 1].name, svcs[i].name) == 0) {
            fprintf(stderr, "%s and %s: both would be Service '%s'; rename one\n",
                    svcs[i - 1].e->key, svcs[i].e->key, svcs[i].name);
            free(svcs);
            return STORE_EXIT_FAIL;
        }
    }
    for (size_t i = 0; i < ns; i++) {
        if (strcmp(svcs[i].name, svcs[i].e->name) != 0)
            fprintf(stderr, "note: destination '%s' is Service '%s': the listener does not know "
                    "Host %s; apps must send X-Destination-Name: %s\n", svcs[i].e->name,
                    svcs[i].name, svcs[i].name, svcs[i].e->name);
        print_service(out, &svcs[i], o, target);
    }
    if (fflush(out) != 0) {
        fprintf(stderr, "ferry store: cannot write the output\n");
        rc = STORE_EXIT_FAIL;
    }
    free(svcs);
    return rc;
}
