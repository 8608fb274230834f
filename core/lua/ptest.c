/*
 * ptest.c: `ferry policy test -c FILE DESTINATION REQUEST_FILE [--response FILE]
 * [--user FILE]`.
 * Runs a destination's on_request against a request described in a small YAML or JSON
 * file, offline (no listener, no upstream), then applies what the destination adds the
 * way the http plugin does, and prints the request as it would leave ferry, as one
 * JSON object on stdout:
 *
 *   {"allowed": true, "request": {"method", "path", "query", "headers": [[n, v], ...],
 *                                 "url"}, "response": {"status", "headers"}}
 *   {"allowed": false, "status": 403, "reason": "..."}
 *
 * The order is the data path's: on_request (the Authentication module, then the
 * script) on the client's request, then core's ferry_dest_http_new() (the URL's path
 * in front, URL.queries.*, URL.headers.*, Basic credentials) - the same function the
 * http plugin calls. With --response, FILE holds a raw response head (a body may
 * follow; it is ignored) that on_response runs on; "response" is what would go back.
 *
 * Exit 0 allowed, 1 denied (by on_request or on_response), 2 a usage, config,
 * request-file, response-file or script error. Header values that are or contain a
 * secret are shown as "***". Nothing is fetched: ferry.http.request answers nil and a
 * reason, ferry.tokens.get a stand-in Bearer token (printed as ***), so an OAuth2*
 * destination shows "Authorization: Bearer ***" and a note. With --user, FILE holds a
 * user's claims as a JSON object: on_request sees them as req.user, as if a
 * principal-propagation token with those claims had been validated (no token is
 * checked here).
 *
 *   # req.yaml (JSON works too: it is YAML)
 *   method: POST
 *   path: /orders
 *   query: a=1
 *   client: 10.0.0.5:41522
 *   tenant: acme
 *   headers: { Content-Type: application/json, X-Api-Version: "2" }
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ferry/http.h>
#include <jansson.h>
#include <yaml.h>

#include "conf/conf.h"
#include "dest/dest-int.h"
#include "auth/user.h"
#include "http/parse.h"           /* the parser's state: core may hold it */
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

/* What ferry.tokens.get hands out offline; replaced by "***" wherever it is shown. */
static const char STAND_IN[] = "ferry-policy-test-stand-in-token";

/* Copy value into out with every stand-in token replaced by "***". */
static void
replace_stand_in(const char *value, char *out, size_t size)
{
    size_t o = 0, n = sizeof(STAND_IN) - 1;

    while (*value != '\0' && o + 1 < size) {
        if (strncmp(value, STAND_IN, n) == 0) {
            o += (size_t)snprintf(out + o, size - o, "***");
            if (o >= size)
                o = size - 1;
            value += n;
        } else {
            out[o++] = *value++;
        }
    }
    out[o] = '\0';
}

/* A value shown in the output: the stand-in token as "***" (so "Bearer ***" shows the
 * scheme), otherwise credentials by name wholly hidden, secrets in others. Returns
 * true when the stand-in token was in it. */
static bool
shown(const struct ferry_dest *d, const char *name, const char *value, char *out, size_t size)
{
    static const char *const hide[] = { "authorization", "proxy-authorization", "cookie",
                                        "set-cookie" };
    static const char *const parts[] = { "key", "token", "secret", "password" };

    if (strstr(value, STAND_IN) != NULL) {
        replace_stand_in(value, out, size);
        policy_scrub(d, out, size);
        return true;
    }
    for (size_t i = 0; i < sizeof(hide) / sizeof(hide[0]); i++) {
        if (strcasecmp(name, hide[i]) == 0) {
            snprintf(out, size, "***");
            return false;
        }
    }
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (strcasestr(name, parts[i]) != NULL) {
            snprintf(out, size, "***");
            return false;
        }
    }
    snprintf(out, size, "%s", value);
    policy_scrub(d, out, size);
    return false;
}

/* What is printed, gathered on the way. */
struct outcome {
    const struct ferry_dest           *d;
    const struct ferry_policy_http    *req;     /* as on_request left it */
    const struct ferry_dest_http      *add;     /* what d adds; NULL: not Type HTTP */
    const struct ferry_policy_http    *res;     /* as on_response left it, or NULL */
    const struct ferry_policy_verdict *v;       /* the deciding verdict */
    const char                        *hook;    /* "on_response" when that one denied */
    bool                               stand_in;    /* the stand-in token was shown */
};

/* The fields of h (minus those add replaces), then add's. */
static json_t *
headers_json(struct outcome *o, const struct ferry_policy_http *h,
             const struct ferry_dest_http *add)
{
    json_t *hs = json_array();
    char    buf[8300];

    for (size_t i = 0; i < h->nheaders; i++) {
        if (h->headers[i].name == NULL ||
            (add != NULL && ferry_dest_http_replaces(add, h->headers[i].name)))
            continue;
        o->stand_in |= shown(o->d, h->headers[i].name, h->headers[i].value, buf, sizeof(buf));
        json_array_append_new(hs, json_pack("[ss]", h->headers[i].name, buf));
    }
    for (size_t i = 0; add != NULL && i < ferry_dest_http_nfields(add); i++) {
        const char *name, *value;

        if (ferry_dest_http_field(add, i, &name, &value))
            snprintf(buf, sizeof(buf), "***");          /* a credential or a secret */
        else
            shown(o->d, name, value, buf, sizeof(buf));
        json_array_append_new(hs, json_pack("[ss]", name, buf));
    }
    return hs;
}

/* "scheme://host[:port]" + target, as the upstream is addressed. */
static json_t *
url_json(const struct ferry_dest *d, const char *path, const char *query)
{
    const char *scheme = ferry_dest_scheme(d), *host = ferry_dest_host(d);
    uint16_t    port = ferry_dest_port(d);
    bool        dflt = (port == 80 && strcmp(scheme, "http") == 0) ||
                       (port == 443 && strcmp(scheme, "https") == 0);
    bool        v6 = strchr(host, ':') != NULL;
    char        portbuf[8] = "";
    json_t     *u;
    char       *s;
    size_t      n = strlen(scheme) + strlen(host) + strlen(path) + strlen(query) + 20;

    if (!dflt)
        snprintf(portbuf, sizeof(portbuf), ":%u", (unsigned)port);
    if ((s = malloc(n)) == NULL)
        return json_null();
    snprintf(s, n, "%s://%s%s%s%s%s%s%s", scheme, v6 ? "[" : "", host, v6 ? "]" : "", portbuf,
             path, query[0] != '\0' ? "?" : "", query);
    policy_scrub(d, s, n);
    u = json_string(s);
    free(s);
    return u;
}

static json_t *
request_json(struct outcome *o)
{
    const struct ferry_policy_http *h = o->req;
    const char                     *path = h->path, *query = h->query, *q;
    json_t                         *req = json_object();

    if (o->add != NULL) {
        path = ferry_dest_http_path(o->add);
        q = ferry_dest_http_query(o->add);
        query = q != NULL ? q : "";
    }
    json_object_set_new(req, "method", json_string(h->method));
    json_object_set_new(req, "path", json_string(path));
    json_object_set_new(req, "query", json_string(query));
    json_object_set_new(req, "headers", headers_json(o, h, o->add));
    if (o->add != NULL)
        json_object_set_new(req, "url", url_json(o->d, path, query));
    return req;
}

static int
print_outcome(struct outcome *o)
{
    const struct ferry_policy_verdict *v = o->v;
    json_t                            *out = json_object(), *res, *notes;

    if (out == NULL)
        return 2;
    json_object_set_new(out, "allowed", json_boolean(v->allowed));
    if (!v->allowed) {
        json_object_set_new(out, "status", json_integer(v->code));
        json_object_set_new(out, "reason", json_string(v->reason));
        if (v->error)
            json_object_set_new(out, "error", json_true());
    }
    if (o->hook != NULL)
        json_object_set_new(out, "hook", json_string(o->hook));
    if (v->allowed || o->hook != NULL)
        json_object_set_new(out, "request", request_json(o));
    if (v->allowed && o->res != NULL) {
        res = json_object();
        json_object_set_new(res, "status", json_integer(o->res->status));
        json_object_set_new(res, "headers", headers_json(o, o->res, NULL));
        json_object_set_new(out, "response", res);
    }
    if (o->stand_in) {
        const char *auth = ferry_dest_authentication(o->d);
        char        note[300];

        snprintf(note, sizeof(note), "%s: no token was fetched (offline); *** stands for the "
                 "one ferry.tokens.get would return%s", strncmp(auth, "OAuth2", 6) == 0 ? auth
                 : "ferry.tokens.get", strncmp(auth, "OAuth2", 6) == 0 ?
                 ", from tokenServiceURL" : "");
        notes = json_array();
        json_array_append_new(notes, json_string(note));
        json_object_set_new(out, "notes", notes);
    }
    json_dumpf(out, stdout, JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(out);
    return v->allowed ? 0 : v->error ? 2 : 1;
}

/* ---- --response FILE --------------------------------------------------------------- */

#define MAX_RESPONSE_BYTES (1024 * 1024)

struct sample_resp {
    char                      *buf;          /* owns: the file, its head NUL-split */
    struct ferry_http_header   raw[MAX_FIELDS];
    struct ferry_http_resp     resp;
    struct ferry_policy_header f[MAX_FIELDS];
};

/* The file's bytes with bare LF line ends made CRLF (a head typed in an editor), with
 * room for four more bytes. NULL with why on stderr. */
static char *
read_response(const char *file, size_t *len)
{
    FILE   *fp = fopen(file, "rb");
    char   *raw = NULL, *out = NULL;
    size_t  n, o = 0;

    if (fp == NULL) {
        fprintf(stderr, "%s: %s\n", file, strerror(errno));
        return NULL;
    }
    if ((raw = malloc(MAX_RESPONSE_BYTES + 1)) == NULL) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    n = fread(raw, 1, MAX_RESPONSE_BYTES + 1, fp);
    if (ferror(fp)) {
        fprintf(stderr, "%s: cannot read it\n", file);
        goto out;
    }
    if (n > MAX_RESPONSE_BYTES) {
        fprintf(stderr, "%s: larger than %d bytes\n", file, MAX_RESPONSE_BYTES);
        goto out;
    }
    if ((out = malloc(2 * n + 5)) == NULL) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
            out[o++] = '\r';
        out[o++] = raw[i];
    }
    *len = o;
out:
    free(raw);
    fclose(fp);
    return out;
}

/* Parse the response head of file into r (strings NUL-terminated in r->buf) and
 * h (the fields as on_response gets them). FERRY_OK, or FERRY_EINVAL with why on
 * stderr. */
static int
load_response(const char *file, const char *method, struct sample_resp *r,
              struct ferry_policy_http *h)
{
    size_t len = 0;
    int    n;

    if ((r->buf = read_response(file, &len)) == NULL)
        return FERRY_EIO;
    if (len == 0) {
        fprintf(stderr, "%s: empty (want a response head: \"HTTP/1.1 200 OK\", fields, "
                        "an empty line)\n", file);
        return FERRY_EINVAL;
    }
    ferry_http_resp_init(&r->resp, r->raw, MAX_FIELDS);
    n = ferry_http_parse_response(r->buf, len, ferry_http_method_of(method, strlen(method)),
                                  NULL, &r->resp);
    if (n == 0) {
        /* The file ends inside the head: end it (read_response left room for that). */
        size_t end = len >= 2 && memcmp(r->buf + len - 2, "\r\n", 2) == 0 ? 2 : 4;

        memcpy(r->buf + len, "\r\n\r\n", end);
        ferry_http_resp_init(&r->resp, r->raw, MAX_FIELDS);
        n = ferry_http_parse_response(r->buf, len + end,
                                      ferry_http_method_of(method, strlen(method)), NULL,
                                      &r->resp);
    }
    if (n <= 0) {
        fprintf(stderr, "%s: not an HTTP response head (%s)\n", file,
                n == 0 ? "incomplete" : r->resp.reason != NULL ? r->resp.reason : "malformed");
        return FERRY_EINVAL;
    }
    /* Each slice is followed by ':', OWS or CR inside the head: end it there. */
    for (size_t i = 0; i < r->resp.header_count; i++) {
        ((char *)r->raw[i].name.ptr)[r->raw[i].name.len] = '\0';
        if (r->raw[i].value.ptr != NULL)
            ((char *)r->raw[i].value.ptr)[r->raw[i].value.len] = '\0';
        r->f[i].name = r->raw[i].name.ptr;
        r->f[i].value = r->raw[i].value.ptr != NULL ? r->raw[i].value.ptr : "";
        r->f[i].owned = false;
    }
    h->status = r->resp.code;
    h->headers = r->f;
    h->nheaders = r->resp.header_count;
    h->headers_cap = MAX_FIELDS;
    return FERRY_OK;
}

/* ---- the command ---------------------------------------------------------------------- */

/* What d adds to the request on_request left, as the http plugin computes it: into
 * *add (NULL when d is not Type HTTP). FERRY_OK, or an error on stderr. */
static int
destination_adds(const char *conf_path, const struct ferry_dest *d,
                 const struct ferry_policy_http *h, struct ferry_dest_http **add)
{
    struct ferry_err err = { 0 };

    *add = NULL;
    if (ferry_dest_type(d) != FERRY_DEST_HTTP)
        return FERRY_OK;
    if (ferry_dest_http_new(d, h->path, strlen(h->path), h->query[0] != '\0' ? h->query : NULL,
                            strlen(h->query), add, &err) != FERRY_OK) {
        fprintf(stderr, "%s: %s\n", conf_path, err.msg);
        return FERRY_EINVAL;
    }
    return FERRY_OK;
}

/* --user FILE: the claims (a JSON object, at most 64 KiB) as a user. NULL with why on
 * stderr. */
static struct ferry_user *
load_user(const char *file)
{
    json_error_t       e;
    json_t            *claims;
    struct ferry_user *u;
    FILE              *fp;
    long               size;

    if ((fp = fopen(file, "r")) == NULL) {
        fprintf(stderr, "%s: %s\n", file, strerror(errno));
        return NULL;
    }
    /* Claims come from a token of at most 16 KiB: a larger file is a mistake. */
    if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 || size > 64 * 1024 ||
        fseek(fp, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: not a file of at most 64 KiB\n", file);
        fclose(fp);
        return NULL;
    }
    claims = json_loadf(fp, JSON_REJECT_DUPLICATES, &e);
    fclose(fp);
    if (claims == NULL) {
        fprintf(stderr, "%s:%d:%d: %s\n", file, e.line, e.column, e.text);
        return NULL;
    }
    if ((u = ferry_user_new(claims)) == NULL)
        fprintf(stderr, "%s: want a JSON object of claims\n", file);
    json_decref(claims);
    return u;
}

int
ferry_policy_test_main(const char *conf_path, const char *response_path,
                       const char *user_path, int argc, char **argv)
{
    struct ferry_errlist        errs = { 0 };
    struct ferry_conf          *conf = NULL;
    struct ferry_policy_set    *policies = NULL;
    const struct ferry_dest    *d;
    struct policy_vm           *vm = NULL;
    yaml_document_t             doc;
    bool                        have_doc = false;
    static struct sample        s;
    static struct sample_resp   sr;
    struct ferry_policy_http    h = FERRY_POLICY_HTTP_INIT, rh = FERRY_POLICY_HTTP_INIT;
    struct ferry_policy_verdict v = { .allowed = true }, rv = { .allowed = true };
    struct policy_call          call = { .hook = POLICY_ON_REQUEST, .offline_token = STAND_IN };
    struct ferry_dest_http     *add = NULL;
    struct outcome              o = { 0 };
    struct ferry_user          *user = NULL;
    int                         rc = 2;

    memset(&sr, 0, sizeof(sr));
    if (argc != 3 || strcmp(argv[0], "test") != 0) {
        fprintf(stderr, "usage: ferry policy test -c FILE DESTINATION REQUEST_FILE "
                        "[--response FILE] [--user FILE]\n");
        return 2;
    }
    if (user_path != NULL && (user = load_user(user_path)) == NULL)
        return 2;
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
    /* Read the response before anything runs: a bad file is a usage error, exit 2. */
    if (response_path != NULL && load_response(response_path, h.method, &sr, &rh) != FERRY_OK)
        goto out;
    call.dest = d;
    call.http = &h;
    call.user = user;
    if (policies != NULL && (vm = ferry_policy_vm_new(policies)) == NULL) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    /* FERRY_ENOTFOUND (no policy, or no on_request): the request goes on unchanged. */
    if (vm != NULL)
        ferry_policy_vm_call(vm, &call, &v);
    o.d = d;
    o.req = &h;
    o.v = &v;
    if (v.allowed) {
        if (destination_adds(conf_path, d, &h, &add) != FERRY_OK)
            goto out;
        o.add = add;
    }
    if (v.allowed && response_path != NULL) {
        call.hook = POLICY_ON_RESPONSE;
        call.http = &rh;
        if (vm != NULL)
            ferry_policy_vm_call(vm, &call, &rv);
        o.res = &rh;
        if (!rv.allowed) {
            o.v = &rv;
            o.hook = "on_response";
        }
    }
    rc = print_outcome(&o);
out:
    ferry_dest_http_free(add);
    ferry_policy_http_free(&rh);
    free(sr.buf);
    ferry_policy_http_free(&h);
    ferry_policy_vm_free(vm);
    if (have_doc)
        yaml_document_delete(&doc);
    ferry_policy_set_free(policies);
    ferry_conf_free(conf);
    ferry_user_unref(user);
    return rc;
}
