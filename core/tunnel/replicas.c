/*
 * replicas.c: the replica list's JSON (both directions) and the connector's choice of
 * link sets. No I/O and no state: gateway.c and connector.c own the lists and decide
 * what to do with a bad one (log it, keep the previous).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "tunnel/gateway.h"
#include "tunnel/replicas.h"

bool
replica_id_ok(const char *id)
{
    size_t n = 0;

    for (; id[n] != '\0'; n++)
        if ((unsigned char)id[n] <= 0x20 || (unsigned char)id[n] >= 0x7f || id[n] == '"' ||
            id[n] == '\\')
            return false;
    return n >= 1 && n <= REPLICA_ID_MAX;
}

const char *
replica_set(struct replica *r, const char *id, const char *tunnel)
{
    const char *why;

    if (!replica_id_ok(id))
        return "bad replica id (1 to 64 printable characters, no space or quote)";
    if (strlen(tunnel) >= sizeof(r->tunnel))
        return "tunnel address too long";
    if ((why = ferry_conf_host_port(tunnel, r->host, sizeof(r->host), &r->port)) != NULL)
        return why;
    memcpy(r->id, id, strlen(id) + 1);
    memcpy(r->tunnel, tunnel, strlen(tunnel) + 1);
    return NULL;
}

void
replicas_list_free(struct replica_list *l)
{
    free(l->r);
    l->r = NULL;
    l->n = 0;
}

int
replicas_from_store(const struct gw_replica *r, size_t n, const char *self_id,
                    const char *self_tunnel, struct replica_list *out,
                    void (*skip)(void *arg, const struct gw_replica *e, const char *why),
                    void *arg)
{
    bool self = false;

    out->n = 0;
    if ((out->r = calloc(n + 1, sizeof(*out->r))) == NULL)
        return FERRY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *why = r[i].id == NULL || r[i].tunnel == NULL
                              ? "no id or tunnel address"
                              : replica_set(&out->r[out->n], r[i].id, r[i].tunnel);

        for (size_t j = 0; why == NULL && j < out->n; j++)
            if (strcmp(out->r[j].id, r[i].id) == 0)
                why = "the same replica id twice";
        if (why != NULL) {
            skip(arg, &r[i], why);
            continue;
        }
        self = self || (self_id != NULL && strcmp(out->r[out->n].id, self_id) == 0);
        out->n++;
    }
    /* Its own lease may lag (or the store lists others only): connectors must still
     * learn this replica's address. A wildcard default listen is no address. */
    if (!self && self_id != NULL && self_id[0] != '\0' && self_tunnel != NULL &&
        replica_set(&out->r[out->n], self_id, self_tunnel) == NULL)
        out->n++;
    return FERRY_OK;
}

int
replicas_parse(const char *json, size_t len, char sender[REPLICA_ID_MAX + 1],
               struct replica_list *out, unsigned *skipped, const char **why)
{
    json_t *o = NULL, *arr, *from;
    size_t  n;
    int     rc;

    out->r = NULL;
    out->n = 0;
    *skipped = 0;
    *why = NULL;
    sender[0] = '\0';
    if (len > REPLICAS_JSON_MAX) {
        *why = "replica list larger than 32 KiB";
        return FERRY_ELIMIT;
    }
    /* JSON_REJECT_DUPLICATES: one object with two "replicas" keys is not a list. */
    if ((o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL)) == NULL || !json_is_object(o)) {
        *why = "replica list is not a JSON object";
        rc = FERRY_EPROTO;
        goto out;
    }
    from = json_object_get(o, "replica");
    if (json_is_string(from) && replica_id_ok(json_string_value(from)))
        memcpy(sender, json_string_value(from), strlen(json_string_value(from)) + 1);
    if ((arr = json_object_get(o, "replicas")) == NULL) {
        rc = FERRY_ENOTFOUND;
        goto out;
    }
    if (!json_is_array(arr)) {
        *why = "\"replicas\" is not an array";
        rc = FERRY_EPROTO;
        goto out;
    }
    if ((n = json_array_size(arr)) > REPLICAS_MAX) {
        *why = "more than 256 replicas";
        rc = FERRY_ELIMIT;
        goto out;
    }
    if (n > 0 && (out->r = calloc(n, sizeof(*out->r))) == NULL) {
        rc = FERRY_ENOMEM;
        goto out;
    }
    /* A bad entry costs that replica, not the list: the others stay reachable. */
    for (size_t i = 0; i < n; i++) {
        json_t     *e = json_array_get(arr, i);
        json_t     *id = json_object_get(e, "id"), *tunnel = json_object_get(e, "tunnel");
        const char *bad = NULL;
        size_t      j;

        if (!json_is_object(e) || !json_is_string(id) || !json_is_string(tunnel))
            bad = "an entry needs \"id\" and \"tunnel\" strings";
        else
            bad = replica_set(&out->r[out->n], json_string_value(id),
                              json_string_value(tunnel));
        for (j = 0; bad == NULL && j < out->n; j++)
            if (strcmp(out->r[j].id, out->r[out->n].id) == 0)
                bad = "the same replica id twice";
        if (bad != NULL) {
            if (*why == NULL)
                *why = bad;
            (*skipped)++;
            continue;
        }
        out->n++;
    }
    rc = FERRY_OK;
out:
    json_decref(o);
    if (rc != FERRY_OK)
        replicas_list_free(out);
    return rc;
}

int
replicas_json(const char *sender, const struct replica_list *list, char **out, size_t *len)
{
    json_t *o = json_object(), *arr = NULL;
    char   *text = NULL;
    int     rc = FERRY_ENOMEM;

    *out = NULL;
    if (o == NULL)
        goto out;
    if (sender != NULL && json_object_set_new(o, "replica", json_string(sender)) != 0)
        goto out;
    if (list != NULL) {
        if ((arr = json_array()) == NULL || json_object_set(o, "replicas", arr) != 0)
            goto out;
        for (size_t i = 0; i < list->n; i++) {
            json_t *e = json_pack("{s:s,s:s}", "id", list->r[i].id, "tunnel",
                                  list->r[i].tunnel);

            if (e == NULL || json_array_append_new(arr, e) != 0)
                goto out;
        }
    }
    if ((text = json_dumps(o, JSON_COMPACT)) == NULL)
        goto out;
    if ((*len = strlen(text)) > REPLICAS_JSON_MAX) {
        free(text);
        rc = FERRY_ELIMIT;
        goto out;
    }
    *out = text;
    rc = FERRY_OK;
out:
    json_decref(arr);
    json_decref(o);
    return rc;
}

static bool
same_place(const char *host_a, uint16_t port_a, const char *host_b, uint16_t port_b)
{
    return port_a == port_b && strcasecmp(host_a, host_b) == 0;
}

/* Does a configured gateway already reach w? Then w gets no link set of its own. */
static bool
covered(const struct recon *r, const struct replica *w)
{
    for (size_t i = 0; i < r->ncfg; i++) {
        if (r->cfg[i].id != NULL && strcmp(r->cfg[i].id, w->id) == 0)
            return true;
        if (same_place(r->cfg[i].host, r->cfg[i].port, w->host, w->port))
            return true;
    }
    return false;
}

void
replicas_reconcile(struct recon *r)
{
    r->nadd = 0;
    for (size_t i = 0; i < r->nhave; i++)
        r->keep[i] = false;
    for (size_t j = 0; j < r->nwant; j++) {
        const struct replica *w = &r->want[j];
        bool                  kept = false;

        if (covered(r, w))
            continue;
        /* A replica that moved (same id, new address) is dialed afresh: the old
         * address may be another pod by now. */
        for (size_t i = 0; i < r->nhave && !kept; i++) {
            if (!r->keep[i] && strcmp(r->have[i].id, w->id) == 0 &&
                same_place(r->have[i].host, r->have[i].port, w->host, w->port))
                kept = r->keep[i] = true;
        }
        if (!kept)
            r->add[r->nadd++] = j;
    }
}
