/*
 * conf-limits.c: a listener's limits and source addresses (DESIGN.md "Limits and
 * source addresses"): `allow` (client CIDRs), `proxy_protocol` (off | v1 | v2) and
 * `rate` ({ per_client, burst }). Only the reading: the worker enforces them.
 */
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"

struct rate_in {
    uint32_t per_client, burst;
};

static const struct conf_key rate_keys[] = {
    { "per_client", CONF_U32, true,  offsetof(struct rate_in, per_client), 1, 1000000 },
    { "burst",      CONF_U32, false, offsetof(struct rate_in, burst),      1, 1000000 },
    { NULL, CONF_END, false, 0, 0, 0 }
};

static void
load_allow(const struct conf_ctx *c, const yaml_node_t *n, const char *where,
           struct ferry_conf_listener *l)
{
    const yaml_node_item_t *items;
    size_t                  count;
    struct ferry_cidr      *rules;
    bool                    bad = false;

    if (n->type == YAML_SCALAR_NODE) {  /* one rule written without brackets */
        items = NULL;
        count = 1;
    } else if (n->type == YAML_SEQUENCE_NODE) {
        items = n->data.sequence.items.start;
        count = (size_t)(n->data.sequence.items.top - items);
    } else {
        conf_error(c, n, where, "allow: want a list of CIDRs ([\"10.0.0.0/8\", \"::1\"])");
        return;
    }
    if (count == 0) {
        conf_error(c, n, where, "allow: an empty list admits nobody (leave the key out to "
                   "admit any client)");
        return;
    }
    if (count > FERRY_CONF_ALLOW_MAX) {
        conf_error(c, n, where, "allow: more than %d rules", FERRY_CONF_ALLOW_MAX);
        return;
    }
    if ((rules = calloc(count, sizeof(*rules))) == NULL) {
        conf_error(c, n, where, "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *it = items != NULL ? conf_node(c, items[i]) : n;
        const char        *text = it != NULL ? conf_text(it) : NULL;
        struct ferry_err   err = {0};

        if (text == NULL)
            conf_error(c, it, where, "allow[%zu]: want a CIDR such as 10.0.0.0/8", i);
        else if (ferry_cidr_parse(text, &rules[i], &err) != FERRY_OK)
            conf_error(c, it, where, "allow[%zu]: %s", i, err.msg);
        else
            continue;
        bad = true;                     /* and on to report the next bad rule too */
    }
    if (bad) {                          /* the conf has errors: it never serves */
        free(rules);
        return;
    }
    l->allow = rules;
    l->nallow = count;
}

static void
load_proxy(const struct conf_ctx *c, const yaml_node_t *n, const char *where,
           struct ferry_conf_listener *l)
{
    static const char *const names[] = { "off", "v1", "v2" };
    const char              *v = conf_text(n);
    const char              *s;

    for (int i = 0; v != NULL && i < 3; i++) {
        if (strcmp(v, names[i]) == 0) {
            l->proxy_protocol = i;
            return;
        }
    }
    if (v != NULL && (s = ferry_suggest(v, names, 3, 1)) != NULL)
        conf_error(c, n, where, "proxy_protocol: '%s' is not off, v1 or v2 (did you mean "
                   "'%s'?)", v, s);
    else
        conf_error(c, n, where, "proxy_protocol: want off, v1 or v2");
}

static void
load_rate(const struct conf_ctx *c, const yaml_node_t *n, const char *where,
          struct ferry_conf_listener *l)
{
    struct rate_in r = { 0, 0 };
    char           w[48];

    snprintf(w, sizeof(w), "%s: rate", where);
    if (conf_mapping(c, n, w, rate_keys, &r, NULL, NULL) != 0 || r.per_client == 0)
        return;
    l->rate_per_s = r.per_client;
    l->rate_burst = r.burst != 0 ? r.burst : r.per_client;
}

void
conf_listener_limits(const struct conf_ctx *c, const yaml_node_t *ln, const char *where,
                     struct ferry_conf_listener *l)
{
    const yaml_node_t *n;

    if ((n = conf_value(c, ln, "allow")) != NULL)
        load_allow(c, n, where, l);
    if ((n = conf_value(c, ln, "proxy_protocol")) != NULL)
        load_proxy(c, n, where, l);
    if ((n = conf_value(c, ln, "rate")) != NULL)
        load_rate(c, n, where, l);
}
