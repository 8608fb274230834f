/*
 * store-read.c: the etcd side of `ferry store`: a loop that waits for one etcd call at
 * a time (the async client of store/etcd.h, driven until its answer or the deadline),
 * and the destinations read back from `<prefix>/destinations/`, page by page, each key
 * and value checked as the gateway checks them (store.c) before anyone writes a file
 * or a Service of it. store-cli.c does the rest.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "store/etcd.h"
#include "store/store-cli-int.h"
#include "tls/cache.h"

/* etcd silent this long, every endpoint and retry included: "etcd unreachable". Each
 * answer starts it again, so a large import is bounded by progress, not by its size. */
#define STORE_DEADLINE_MS    30000
/* One call (the client goes on to the next endpoint after this). */
#define STORE_CALL_MS        10000
/* A range page; and bounds on what we accept back from etcd. */
#define STORE_PAGE_KEYS      500
#define STORE_MAX_DESTS      100000
#define STORE_MAX_KEY_BYTES  4096
#define STORE_MAX_VALUE_BYTES (4u * 1024 * 1024)
/* As the loader (dest.c): longer names and other characters are not destinations. */
#define STORE_MAX_NAME       200
#define STORE_NAME_CHARS     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

/* ---- waiting for etcd ------------------------------------------------------------------ */

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct store_cli *cli = arg;

    (void)fd;
    (void)what;
    cli->expired = true;
    event_base_loopbreak(cli->base);
}

void
store_cli_close(struct store_cli *cli)
{
    etcd_free(cli->etcd);           /* cancels what still runs: no callback after this */
    if (cli->deadline != NULL)
        event_free(cli->deadline);
    ferry_tls_cache_free(cli->tls);
    if (cli->dns != NULL)
        evdns_base_free(cli->dns, 0);
    if (cli->base != NULL)
        event_base_free(cli->base);
    memset(cli, 0, sizeof(*cli));
}

/* (Re)start the deadline. */
static int
cli_arm(struct store_cli *cli)
{
    struct timeval tv = { STORE_DEADLINE_MS / 1000, (STORE_DEADLINE_MS % 1000) * 1000 };

    return evtimer_add(cli->deadline, &tv);
}

int
store_cli_open(struct store_cli *cli, const struct ferry_conf_store *sc)
{
    bool https = false;

    memset(cli, 0, sizeof(*cli));
    for (size_t i = 0; i < sc->nendpoints; i++)
        https = https || strncmp(sc->endpoints[i], "https://", 8) == 0;
    if ((cli->base = event_base_new()) == NULL)
        goto nomem;
    /* No resolv.conf (a bare container): numeric endpoints still work. */
    if ((cli->dns = evdns_base_new(cli->base, EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL &&
        (cli->dns = evdns_base_new(cli->base, 0)) == NULL)
        goto nomem;
    if (https && ferry_tls_cache_new(cli->base, 4, &cli->tls) != FERRY_OK)
        goto nomem;
    if ((cli->etcd = etcd_new(cli->base, cli->dns, cli->tls, sc)) == NULL ||
        (cli->deadline = evtimer_new(cli->base, on_deadline, cli)) == NULL ||
        cli_arm(cli) != 0)
        goto nomem;
    return FERRY_OK;
nomem:
    fprintf(stderr, "ferry store: out of memory\n");
    store_cli_close(cli);
    return FERRY_ENOMEM;
}

struct sync_call {
    bool    done;
    json_t *result;     /* owns a reference */
    int     status;
    char    why[256];
};

static void
on_reply(const struct etcd_reply *r, void *arg)
{
    struct sync_call *sc = arg;

    sc->done = true;
    sc->status = r->status;
    if (r->result != NULL)
        sc->result = json_incref(r->result);
    else
        snprintf(sc->why, sizeof(sc->why), "%s", r->why != NULL ? r->why : "no answer");
}

/* One call, waited for. FERRY_OK and *out (a reference), or an error already printed:
 * "etcd unreachable: ..." when no endpoint answered (or time ran out), else etcd's. */
int
store_cli_call(struct store_cli *cli, const char *path, json_t *body, json_t **out)
{
    struct sync_call  sc = { .done = false };
    struct etcd_call *call;

    *out = NULL;
    if (body == NULL) {
        fprintf(stderr, "ferry store: out of memory\n");
        return FERRY_ENOMEM;
    }
    if ((call = etcd_call(cli->etcd, path, body, STORE_CALL_MS, on_reply, &sc)) == NULL) {
        fprintf(stderr, "ferry store: out of memory\n");
        return FERRY_ENOMEM;
    }
    while (!sc.done && !cli->expired)
        if (event_base_loop(cli->base, EVLOOP_ONCE) < 0)
            break;
    if (!sc.done) {
        etcd_call_cancel(call);
        fprintf(stderr, "etcd unreachable: no answer within %d s\n", STORE_DEADLINE_MS / 1000);
        return FERRY_ETIMEDOUT;
    }
    if (sc.result == NULL) {
        if (sc.status == 0)
            fprintf(stderr, "etcd unreachable: %s\n", sc.why);
        else
            fprintf(stderr, "etcd %s: %s: %s (HTTP %d)\n", etcd_endpoint(cli->etcd), path,
                    sc.why, sc.status);
        return FERRY_EIO;
    }
    *out = sc.result;
    cli_arm(cli);
    return FERRY_OK;
}

/* ---- reading destinations back -------------------------------------------------------- */

/* A key or name for a message: control bytes and non-ASCII shown as '?'. */
static char *
printable(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
    p[n] = '\0';
    return p;
}

static void
entry_fini(struct store_entry *e)
{
    free(e->key);
    free(e->tenant);
    free(e->name);
    json_decref(e->props);
    memset(e, 0, sizeof(*e));
}

void
store_entries_free(struct store_entry *e, size_t n)
{
    for (size_t i = 0; e != NULL && i < n; i++)
        entry_fini(&e[i]);
    free(e);
}

/* The tenant and Name of a key into *e: NULL, or why not (static text). */
static const char *
key_parse(const char *prefix, const char *key, size_t klen, struct store_entry *e)
{
    size_t      plen = strlen(prefix);
    const char *rest = key + plen, *slash;
    size_t      nlen, slen = strlen(STORE_INSTANCE_SUFFIX);

    if (klen != strlen(key) || klen <= plen || strncmp(key, prefix, plen) != 0 ||
        (slash = strchr(rest, '/')) == NULL || slash == rest || slash[1] == '\0' ||
        strchr(slash + 1, '/') != NULL)
        return "not <prefix>/destinations/<tenant>/<Name>";
    nlen = strlen(slash + 1);
    if (nlen > slen && strcmp(slash + 1 + nlen - slen, STORE_INSTANCE_SUFFIX) == 0) {
        e->instance = true;
        nlen -= slen;
    }
    if (nlen > STORE_MAX_NAME || slash[1] == '.' || strspn(slash + 1, STORE_NAME_CHARS) != nlen)
        return "the Name in the key is not one a destination file can have (letters, "
               "digits, '-', '_', '.'; not starting with '.'; at most 200)";
    if ((e->tenant = strndup(rest, (size_t)(slash - rest))) == NULL ||
        (e->name = strndup(slash + 1, nlen)) == NULL)
        return "out of memory";
    return NULL;
}

/* A property as the gateway reads it from etcd (store.c): strings as they are, whole
 * numbers and booleans spelled; NULL for anything else. */
static json_t *
prop_string(const json_t *v)
{
    char buf[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string(json_string_value(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return json_string(buf);
    case JSON_TRUE:
        return json_string("true");
    case JSON_FALSE:
        return json_string("false");
    default:
        return NULL;
    }
}

/* Check one key and value into *e, as the gateway reads them (store.c): Name and tenant
 * come from the key, and the value may repeat them but not contradict them. NULL if
 * fine, else why it is skipped (static or in buf; never a value). */
static const char *
entry_parse(const char *prefix, const char *key, size_t klen, const char *val, size_t vlen,
            struct store_entry *e, char *buf, size_t cap)
{
    const char  *bad, *k;
    json_error_t je;
    json_t      *o, *v, *name;

    if ((bad = key_parse(prefix, key, klen, e)) != NULL)
        return bad;
    if ((e->props = json_object()) == NULL)
        return "out of memory";
    /* No JSON_REJECT_DUPLICATES: the gateway takes the last of a repeated property. */
    if ((o = json_loadb(val, vlen, 0, &je)) == NULL) {
        snprintf(buf, cap, "the value is not JSON (line %d, column %d)", je.line, je.column);
        return buf;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        return "the value is not a JSON object of properties";
    }
    name = json_object_get(o, "Name");
    if (name != NULL && (!json_is_string(name) || strcmp(json_string_value(name), e->name) != 0)) {
        json_decref(o);
        return "the value's Name is not the key's";
    }
    v = json_object_get(o, "tenant");
    if (v != NULL && (!json_is_string(v) || strcmp(json_string_value(v), e->tenant) != 0)) {
        json_decref(o);
        return "the value's tenant is not the key's";
    }
    v = json_object_get(o, "level");
    if (v != NULL && (!json_is_string(v) || strcmp(json_string_value(v),
                                                    e->instance ? "instance" : "subaccount") != 0)) {
        json_decref(o);
        return "the value's level is not the key's";
    }
    /* Name first when the value left it out; tenant out: export adds it back after Name. */
    if (name == NULL && json_object_set_new(e->props, "Name", json_string(e->name)) != 0) {
        json_decref(o);
        return "out of memory";
    }
    json_object_foreach(o, k, v) {
        json_t *text;

        if (strcmp(k, "tenant") == 0 || strcmp(k, "level") == 0)
            continue;
        if (*k == '\0' || (text = prop_string(v)) == NULL) {
            snprintf(buf, cap, *k == '\0' ? "an empty property name"
                     : "property '%.200s' is not a string", k);
            json_decref(o);
            return buf;
        }
        if (json_object_set_new(e->props, k, text) != 0) {
            json_decref(o);
            return "out of memory";
        }
    }
    json_decref(o);
    return NULL;
}

/* Every destination under prefix, a page at a time, in key order. Keys or values that
 * do not parse are reported and counted in *skipped; with keys_only, values are not
 * read (props stay NULL) and keys that do not parse are passed over in silence.
 * FERRY_OK or an error already printed. */
int
store_read_entries(struct store_cli *cli, const char *prefix, bool keys_only,
                   struct store_entry **out, size_t *n, int *skipped)
{
    struct store_entry *e = NULL;
    char               *from = strdup(prefix), *k = NULL, *v = NULL;
    size_t              from_len = strlen(prefix), cap = 0;
    json_t             *res = NULL;
    bool                more = true;
    int                 rc = FERRY_OK;

    *out = NULL;
    *n = 0;
    while (rc == FERRY_OK && more) {
        json_t *kvs, *kv;
        size_t  i;

        if (from == NULL) {
            fprintf(stderr, "ferry store: out of memory\n");
            rc = FERRY_ENOMEM;
            break;
        }
        rc = store_cli_call(cli, "/v3/kv/range",
                            json_pack("{s:o,s:o,s:i,s:b}", "key", etcd_b64(from, from_len),
                                      "range_end", etcd_prefix_end(prefix),
                                      "limit", STORE_PAGE_KEYS, "keys_only", keys_only),
                            &res);
        if (rc != FERRY_OK)
            break;
        more = json_is_true(json_object_get(res, "more"));
        kvs = json_object_get(res, "kvs");
        if (json_array_size(kvs) == 0)
            more = false;
        json_array_foreach(kvs, i, kv) {
            size_t      klen, vlen;
            char        why[256];
            const char *bad;

            if ((k = etcd_unb64(json_object_get(kv, "key"), STORE_MAX_KEY_BYTES, &klen,
                                false)) == NULL) {
                fprintf(stderr, "etcd %s: a key that is not base64 or over %d bytes\n",
                        etcd_endpoint(cli->etcd), STORE_MAX_KEY_BYTES);
                rc = FERRY_EPROTO;
                break;
            }
            /* The next page starts just after this key: key + "\0". */
            free(from);
            if ((from = malloc(klen + 1)) != NULL) {
                memcpy(from, k, klen);
                from[klen] = '\0';
                from_len = klen + 1;
            }
            if (*n >= STORE_MAX_DESTS) {
                fprintf(stderr, "ferry store: more than %d keys under %s\n", STORE_MAX_DESTS,
                        prefix);
                rc = FERRY_ELIMIT;
                break;
            }
            if (*n == cap) {
                struct store_entry *grown = realloc(e, (cap * 2 + 16) * sizeof(*e));

                if (grown == NULL) {
                    fprintf(stderr, "ferry store: out of memory\n");
                    rc = FERRY_ENOMEM;
                    break;
                }
                e = grown;
                cap = cap * 2 + 16;
            }
            memset(&e[*n], 0, sizeof(e[*n]));
            e[*n].key = printable(k, klen);
            if (!keys_only)
                v = etcd_unb64(json_object_get(kv, "value"), STORE_MAX_VALUE_BYTES, &vlen,
                               true);
            if (e[*n].key == NULL)
                bad = "out of memory";
            else if (keys_only)
                bad = key_parse(prefix, k, klen, &e[*n]);
            else if (v == NULL)
                bad = "the value is not base64 or over 4 MiB";
            else
                bad = entry_parse(prefix, k, klen, v, vlen, &e[*n], why, sizeof(why));
            if (bad != NULL && keys_only && strcmp(bad, "out of memory") != 0) {
                entry_fini(&e[*n]);     /* not a destination: no clash with one */
            } else if (bad != NULL) {
                fprintf(stderr, "%s: %s; skipped\n", e[*n].key != NULL ? e[*n].key : "?", bad);
                entry_fini(&e[*n]);
                (*skipped)++;
            } else {
                (*n)++;
            }
            if (v != NULL)
                explicit_bzero(v, vlen);
            free(v);
            free(k);
            v = k = NULL;
        }
        json_decref(res);
        res = NULL;
    }
    free(k);
    free(from);
    if (rc != FERRY_OK) {
        store_entries_free(e, *n);
        *n = 0;
        return rc;
    }
    *out = e;
    return FERRY_OK;
}
