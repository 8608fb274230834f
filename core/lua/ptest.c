/*
 * ptest.c: `ferry policy test -c FILE DESTINATION REQUEST_FILE`. Runs a destination's
 * on_request against a request described in a small YAML or JSON file, offline (no
 * listener, no upstream), and prints the outcome as one JSON object on stdout:
 *
 *   {"allowed": true, "request": {"method", "path", "query", "headers": [[n, v], ...]}}
 *   {"allowed": false, "status": 403, "reason": "..."}
 *
 * Exit 0 allowed, 1 denied, 2 a usage, config, request-file or script error. Header
 * values that are or contain a secret are shown as "***". What the http plugin adds
 * after the policy (the URL's path, URL.headers/queries, credentials) is not shown.
 *
 *   # req.yaml (JSON works too: it is YAML)
 *   method: POST
 *   path: /orders
 *   query: a=1
 *   client: 10.0.0.5:41522
 *   tenant: acme
 *   headers: { Content-Type: application/json, X-Api-Version: "2" }
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <yaml.h>

#include "conf/conf.h"
#include "dest/dest-int.h"
#include "lua/lua-int.h"
#include "lua/ptest.h"

#define MAX_FIELDS 256

struct sample {
    const char                 *method, *path, *query, *client, *tenant;
    struct ferry_policy_header  f[MAX_FIELDS];
    size_t                      n;
};

static int
bad(const char *file, const yaml_node_t *node, const char *what)
{
    fprintf(stderr, "%s:%zu:%zu: %s\n", file, node->start_mark.line + 1,
            node->start_mark.column + 1, what);
    return FERRY_EINVAL;
}

static const char *
scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int
add_field(struct sample *s, const char *file, const yaml_node_t *at, const char *name,
          const char *value)
{
    if (name == NULL || value == NULL)
        return bad(file, at, "a header is a name and a string value");
    if (s->n == MAX_FIELDS)
        return bad(file, at, "more than 256 header fields");
    s->f[s->n].name = name;
    s->f[s->n].value = value;
    s->f[s->n++].owned = false;
    return FERRY_OK;
}

/* headers: a mapping name -> value, or a list of [name, value] pairs (repeated names). */
static int
read_headers(yaml_document_t *doc, const yaml_node_t *h, const char *file, struct sample *s)
{
    if (h->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = h->data.mapping.pairs.start; p < h->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            yaml_node_t *v = yaml_document_get_node(doc, p->value);

            if (add_field(s, file, k, scalar(k), scalar(v)) != FERRY_OK)
                return FERRY_EINVAL;
        }
        return FERRY_OK;
    }
    if (h->type != YAML_SEQUENCE_NODE)
        return bad(file, h, "headers: want a mapping (name: value) or a list of [name, value]");
    for (yaml_node_item_t *i = h->data.sequence.items.start; i < h->data.sequence.items.top;
         i++) {
        yaml_node_t *pair = yaml_document_get_node(doc, *i);

        if (pair->type != YAML_SEQUENCE_NODE ||
            pair->data.sequence.items.top - pair->data.sequence.items.start != 2)
            return bad(file, pair, "headers: each item is [name, value]");
        if (add_field(s, file, pair,
                      scalar(yaml_document_get_node(doc, pair->data.sequence.items.start[0])),
                      scalar(yaml_document_get_node(doc, pair->data.sequence.items.start[1])))
            != FERRY_OK)
            return FERRY_EINVAL;
    }
    return FERRY_OK;
}

static int
read_sample(yaml_document_t *doc, const char *file, struct sample *s)
{
    static const char *const keys[] = { "method", "path", "query", "client", "tenant" };
    const char             **slots[] = { &s->method, &s->path, &s->query, &s->client,
                                         &s->tenant };
    yaml_node_t             *root = yaml_document_get_root_node(doc);

    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        fprintf(stderr, "%s: want a mapping (method, path, query, headers, client, tenant)\n",
                file);
        return FERRY_EINVAL;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        const char  *name = scalar(k), **slot = NULL;

        if (name != NULL && strcmp(name, "headers") == 0) {
            if (read_headers(doc, v, file, s) != FERRY_OK)
                return FERRY_EINVAL;
            continue;
        }
        for (size_t i = 0; name != NULL && i < sizeof(keys) / sizeof(keys[0]); i++)
            if (strcmp(name, keys[i]) == 0)
                slot = slots[i];
        if (slot == NULL)
            return bad(file, k, "unknown key (method, path, query, headers, client, tenant)");
        if ((*slot = scalar(v)) == NULL)
            return bad(file, v, "want a string");
    }
    if (s->query != NULL && s->query[0] == '?')
        s->query++;
    return FERRY_OK;
}

static int
load_yaml(const char *file, yaml_document_t *doc)
{
    FILE         *fp = fopen(file, "rb");
    yaml_parser_t parser;
    int           rc = FERRY_EINVAL;

    if (fp == NULL) {
        perror(file);
        return FERRY_EIO;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return FERRY_ENOMEM;
    }
    yaml_parser_set_input_file(&parser, fp);
    if (yaml_parser_load(&parser, doc))
        rc = FERRY_OK;
    else
        fprintf(stderr, "%s:%zu:%zu: %s\n", file, parser.problem_mark.line + 1,
                parser.problem_mark.column + 1, parser.problem ? parser.problem : "not YAML");
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

/* A value shown in the output: credentials by name wholly hidden, secrets in others. */
static void
shown(const struct ferry_dest *d, const char *name, const char *value, char *out, size_t size)
{
    static const char *const hide[] = { "authorization", "proxy-authorization", "cookie",
                                        "set-cookie" };
    static const char *const parts[] = { "key", "token", "secret", "password" };

    for (size_t i = 0; i < sizeof(hide) / sizeof(hide[0]); i++) {
        if (strcasecmp(name, hide[i]) == 0) {
            snprintf(out, size, "***");
            return;
        }
    }
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (strcasestr(name, parts[i]) != NULL) {
            snprintf(out, size, "***");
            return;
        }
    }
    snprintf(out, size, "%s", value);
    policy_scrub(d, out, size);
}

static int
print_outcome(const struct ferry_dest *d, const struct ferry_policy_http *h,
              const struct ferry_policy_verdict *v)
{
    json_t *o = json_object(), *req, *hs;
    char    buf[8300];

    if (o == NULL)
        return 2;
    json_object_set_new(o, "allowed", json_boolean(v->allowed));
    if (!v->allowed) {
        json_object_set_new(o, "status", json_integer(v->code));
        json_object_set_new(o, "reason", json_string(v->reason));
        if (v->error)
            json_object_set_new(o, "error", json_true());
    } else {
        req = json_object();
        hs = json_array();
        json_object_set_new(req, "method", json_string(h->method));
        json_object_set_new(req, "path", json_string(h->path));
        json_object_set_new(req, "query", json_string(h->query));
        for (size_t i = 0; i < h->nheaders; i++) {
            if (h->headers[i].name == NULL)
                continue;
            shown(d, h->headers[i].name, h->headers[i].value, buf, sizeof(buf));
            json_array_append_new(hs, json_pack("[ss]", h->headers[i].name, buf));
        }
        json_object_set_new(req, "headers", hs);
        json_object_set_new(o, "request", req);
    }
    json_dumpf(o, stdout, JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(o);
    return v->allowed ? 0 : v->error ? 2 : 1;
}

int
ferry_policy_test_main(const char *conf_path, int argc, char **argv)
{
    struct ferry_errlist        errs = { 0 };
    struct ferry_conf          *conf = NULL;
    struct ferry_policy_set    *policies = NULL;
    const struct ferry_dest    *d;
    struct policy_vm           *vm = NULL;
    yaml_document_t             doc;
    bool                        have_doc = false;
    static struct sample        s;
    struct ferry_policy_http    h = FERRY_POLICY_HTTP_INIT;
    struct ferry_policy_verdict v = { .allowed = true };
    struct policy_call          call = { .hook = POLICY_ON_REQUEST };
    int                         rc = 2;

    if (argc != 3 || strcmp(argv[0], "test") != 0) {
        fprintf(stderr, "usage: ferry policy test -c FILE DESTINATION REQUEST_FILE\n");
        return 2;
    }
    if (ferry_conf_load_file(conf_path, &conf, &errs) != FERRY_OK ||
        ferry_policy_load(conf, NULL, &policies, &errs) != FERRY_OK) {
        ferry_errlist_print(&errs, stderr, false);
        goto out;
    }
    if ((d = ferry_registry_find(conf->registry, argv[1])) == NULL) {
        fprintf(stderr, "%s: no destination named '%s'\n", conf_path, argv[1]);
        goto out;
    }
    if (load_yaml(argv[2], &doc) != FERRY_OK)
        goto out;
    have_doc = true;
    memset(&s, 0, sizeof(s));
    if (read_sample(&doc, argv[2], &s) != FERRY_OK)
        goto out;
    h.method = s.method != NULL ? s.method : "GET";
    h.path = s.path != NULL ? s.path : "/";
    h.query = s.query != NULL ? s.query : "";
    h.client = s.client != NULL ? s.client : "127.0.0.1:50000";
    h.tenant = s.tenant != NULL ? s.tenant : d->tenant != NULL && d->tenant[0] ? d->tenant : NULL;
    h.headers = s.f;
    h.nheaders = s.n;
    h.headers_cap = MAX_FIELDS;
    call.dest = d;
    call.http = &h;
    if (policies != NULL && (vm = ferry_policy_vm_new(policies)) == NULL) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    /* FERRY_ENOTFOUND (no policy, or no on_request): the request goes on unchanged. */
    if (vm != NULL)
        ferry_policy_vm_call(vm, &call, &v);
    rc = print_outcome(d, &h, &v);
out:
    ferry_policy_http_free(&h);
    ferry_policy_vm_free(vm);
    if (have_doc)
        yaml_document_delete(&doc);
    ferry_policy_set_free(policies);
    ferry_conf_free(conf);
    return rc;
}
