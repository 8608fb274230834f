/*
 * store-write.c: the destination API's writes through the store (store.h): one etcd
 * transaction per call, answered once this replica applied the revision it committed at
 * (or by a deadline), 503 at once while etcd is away. The mirror itself is store.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include <ferry/log.h>

#include "store/etcd.h"
#include "store/store-int.h"
#include "store/store.h"

#define WRITE_APPLY_WAIT_MS 5000    /* a committed write answers by then at the latest */
#define MAX_WRITES          128

/* ---- writes ------------------------------------------------------------------------- */

static void
wait_free(struct ferry_store_wait *wt)
{
    for (size_t i = 0; i < wt->n; i++)
        free(wt->w[i].name);
    free(wt->w);
    if (wt->timer != NULL)
        event_free(wt->timer);
    etcd_call_cancel(wt->call);
    free(wt);
}

static void
wait_unlink(struct ferry_store_wait *wt)
{
    for (struct ferry_store_wait **pp = &wt->s->waits; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == wt) {
            *pp = wt->next;
            return;
        }
    }
}

void
store_wait_answer(struct ferry_store_wait *wt, int status, const char *why, const char *name)
{
    wait_unlink(wt);
    if (!wt->cancelled)
        wt->cb(wt->arg, status, why, name, wt->revision);
    wait_free(wt);
}

static int
wait_ok_status(const struct ferry_store_wait *wt)
{
    return wt->n > 0 && wt->w[0].op == STORE_CREATE ? 201 : 200;
}

/* Answer the writes this replica has applied by now. */
void
store_waits_check(struct ferry_store *s)
{
    struct ferry_store_wait *wt = s->waits, *next;

    for (; wt != NULL; wt = next) {
        next = wt->next;
        if (wt->call == NULL && wt->revision > 0 && s->revision >= wt->revision &&
            !s->dirty)
            store_wait_answer(wt, wait_ok_status(wt), NULL, NULL);
    }
}

static void
on_wait_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct ferry_store_wait *wt = arg;

    (void)fd;
    (void)what;
    /* Committed in etcd, only not seen here yet (the watch is being made again): the
     * change is done; say so rather than keep the client waiting. */
    ferry_log(NULL, FERRY_WARN, "store: a committed write is not applied here yet; "
              "answering anyway", FLOG_INT("revision", wt->revision),
              FLOG_INT("applied", wt->s->revision));
    store_wait_answer(wt, wait_ok_status(wt), NULL, NULL);
}

static void
on_degraded(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store_wait_answer(arg, 503, "the store (etcd) is unreachable; try again", NULL);
}

static void
on_txn(const struct etcd_reply *r, void *arg)
{
    struct ferry_store_wait *wt = arg;
    struct ferry_store      *s = wt->s;
    json_t                  *resps;
    size_t                   i;

    wt->call = NULL;
    if (r->result == NULL) {
        if (r->status == 0 || r->code == 14) {
            store_set_up(s, false, r->why);
            store_wait_answer(wt, 503, "the store (etcd) is unreachable; try again", NULL);
        } else {
            store_wait_answer(wt, 500, r->why, NULL);
        }
        return;
    }
    wt->revision = etcd_int(json_object_get(r->result, "header"), "revision", 0);
    if (!json_is_true(json_object_get(r->result, "succeeded"))) {
        /* Which compare failed: the failure branch read each key. */
        resps = json_object_get(r->result, "responses");
        for (i = 0; i < wt->n; i++) {
            const json_t *rr = json_object_get(json_array_get(resps, i), "response_range");
            const json_t *kv = json_array_get(json_object_get(rr, "kvs"), 0);
            bool          exists = kv != NULL;
            int64_t       mr = etcd_int(kv, "mod_revision", 0);

            if (wt->w[i].op == STORE_CREATE && exists) {
                store_wait_answer(wt, 409, "a destination of this name exists", wt->w[i].name);
                return;
            }
            if (wt->w[i].op != STORE_CREATE && !exists) {
                store_wait_answer(wt, 404, "no such destination", wt->w[i].name);
                return;
            }
            if (wt->w[i].if_match != 0 && mr != wt->w[i].if_match) {
                store_wait_answer(wt, 412, "the destination changed since that ETag",
                            wt->w[i].name);
                return;
            }
        }
        store_wait_answer(wt, 409, "the store changed meanwhile; try again", NULL);
        return;
    }
    /* Committed: answer once this replica serves it (or by the deadline). */
    if (s->revision >= wt->revision && !s->dirty) {
        store_wait_answer(wt, wait_ok_status(wt), NULL, NULL);
        return;
    }
    if ((wt->timer = evtimer_new(s->base, on_wait_deadline, wt)) != NULL) {
        struct timeval tv = { WRITE_APPLY_WAIT_MS / 1000, 0 };

        evtimer_add(wt->timer, &tv);
    }
}

int
ferry_store_write(struct ferry_store *s, const struct store_write *w, size_t n,
                  store_write_cb cb, void *arg, struct ferry_store_wait **out)
{
    struct ferry_store_wait *wt;
    json_t                  *cmp = json_array(), *ok = json_array(), *fail = json_array();
    json_t                  *body = NULL;
    char                     key[1024];

    *out = NULL;
    if (n == 0 || n > MAX_WRITES || cmp == NULL || ok == NULL || fail == NULL ||
        (wt = calloc(1, sizeof(*wt))) == NULL) {
        json_decref(cmp);
        json_decref(ok);
        json_decref(fail);
        return FERRY_ENOMEM;
    }
    wt->s = s;
    wt->cb = cb;
    wt->arg = arg;
    if ((wt->w = calloc(n, sizeof(*wt->w))) == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        char *text = NULL;

        snprintf(key, sizeof(key), "%s%s/%s%s", s->dest_prefix, w[i].tenant, w[i].name,
                 w[i].instance ? STORE_INSTANCE_SUFFIX : "");
        wt->w[i].op = w[i].op;
        wt->w[i].if_match = w[i].if_match;
        if ((wt->w[i].name = strdup(w[i].name)) == NULL)
            goto oom;
        wt->n++;
        /* Compares: a create needs the key absent (create_revision 0), an update or a
         * delete needs it present, and If-Match its mod_revision. */
        if (w[i].op == STORE_CREATE)
            json_array_append_new(cmp, json_pack("{s:o, s:s, s:s, s:i}", "key",
                                  etcd_b64s(key), "target", "CREATE", "result", "EQUAL",
                                  "create_revision", 0));
        else
            json_array_append_new(cmp, json_pack("{s:o, s:s, s:s, s:i}", "key",
                                  etcd_b64s(key), "target", "CREATE", "result", "GREATER",
                                  "create_revision", 0));
        if (w[i].if_match != 0)
            json_array_append_new(cmp, json_pack("{s:o, s:s, s:s, s:I}", "key",
                                  etcd_b64s(key), "target", "MOD", "result", "EQUAL",
                                  "mod_revision", (json_int_t)w[i].if_match));
        if (w[i].op == STORE_DELETE) {
            json_array_append_new(ok, json_pack("{s:{s:o}}", "request_delete_range", "key",
                                  etcd_b64s(key)));
        } else {
            if ((text = json_dumps(w[i].value, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
                goto oom;
            json_array_append_new(ok, json_pack("{s:{s:o, s:o}}", "request_put", "key",
                                  etcd_b64s(key), "value", etcd_b64s(text)));
            explicit_bzero(text, strlen(text));
            free(text);
        }
        /* Keys only: the failure branch tells 404, 409 and 412 apart by existence and
         * mod_revision; the values (credentials) need not come back. */
        json_array_append_new(fail, json_pack("{s:{s:o, s:b}}", "request_range", "key",
                              etcd_b64s(key), "keys_only", 1));
    }
    body = json_pack("{s:o, s:o, s:o}", "compare", cmp, "success", ok, "failure", fail);
    cmp = ok = fail = NULL;
    if (body == NULL)
        goto oom;
    wt->next = s->waits;
    s->waits = wt;
    if (!s->up) {
        /* Degraded: say so now, from the loop, rather than after every endpoint's
         * timeout. The change is not made: etcd is the truth and it cannot be told. */
        static const struct timeval now = { 0, 0 };

        json_decref(body);
        if ((wt->timer = evtimer_new(s->base, on_degraded, wt)) == NULL) {
            wait_unlink(wt);
            goto oom;
        }
        evtimer_add(wt->timer, &now);
        *out = wt;
        return FERRY_OK;
    }
    if ((wt->call = etcd_call(s->etcd, "/v3/kv/txn", body, CALL_TIMEOUT_MS, on_txn, wt)) == NULL) {
        wait_unlink(wt);
        goto oom;
    }
    *out = wt;
    return FERRY_OK;
oom:
    json_decref(cmp);
    json_decref(ok);
    json_decref(fail);
    wait_free(wt);
    return FERRY_ENOMEM;
}

void
ferry_store_write_cancel(struct ferry_store_wait *wt)
{
    if (wt != NULL)
        wt->cancelled = true;
}
