/*
 * target.c: where a request goes. Transparent mode: the destination named by the
 * listener, X-Destination-Name or Host, and what it says about TLS; forward mode: the
 * host:port of the request itself (CONNECT or an absolute http:// URI) and the SCC
 * location the client asked for.
 *
 * Picks only: who the client is (forward mode) is tenant.c's; building the upstream
 * head is rewrite.c's; opening the upstream is http.c's, through core.
 */
#include <string.h>

#include <ferry/dest.h>

#include "http-int.h"

const struct ferry_dest *
target_dest(struct ferry_conn *c, const struct http_listener *l,
            const struct ferry_http_request *req, const struct hidx *x, struct http_plan *p)
{
    const struct ferry_http_header *dn = x->first[H_XDEST];
    size_t                          ndn = x->count[H_XDEST];
    const struct ferry_dest        *d;
    char                            name[201];

    if (ndn > 1) {
        plan_error(p, 400, "bad-destination-header", "X-Destination-Name given more than once");
        return NULL;
    }
    if (l->bound != NULL) {
        if (ndn == 1) {
            plan_error(p, 400, "bad-destination-header",
                       "this listener serves destination '%s': X-Destination-Name is not allowed",
                       l->bound);
            return NULL;
        }
        if ((d = ferry_conn_dest(c)) == NULL)
            plan_error(p, 404, "destination-not-found", "destination '%s' does not exist",
                       l->bound);
        return d;
    }
    if (ndn == 1) {
        if (dn->value.len == 0 || dn->value.len > 200) {
            plan_error(p, 400, "bad-destination-header",
                       "X-Destination-Name must have 1 to 200 characters");
            return NULL;
        }
        slice_copy(name, sizeof(name), dn->value.ptr, dn->value.len);
    } else if (req->host.ptr != NULL && req->host.len > 0 && req->host.len <= 200) {
        slice_copy(name, sizeof(name), req->host.ptr, req->host.len);
    } else {
        plan_error(p, 400, "missing-destination",
                   "name the destination in the Host or X-Destination-Name header");
        return NULL;
    }
    if ((d = ferry_conn_lookup_dest(c, name)) == NULL) {
        /* Host names compare case-insensitively; destination names are exact. */
        plan_error(p, 404, "destination-not-found", "no destination named '%.200s'", name);
        return NULL;
    }
    return d;
}

/* Core maps the TLS properties (trust, TrustAll, the key store of
 * ClientCertificateAuthentication), the same way for every component. */
void
target_tls(const struct ferry_dest *d, struct http_plan *p)
{
    p->tlsopt = (struct ferry_io_tls)FERRY_IO_TLS_INIT;
    ferry_io_tls_from_dest(d, &p->tlsopt);
    p->tls = p->tlsopt.enable;
}

/* Forward mode: the target is the request's own (CONNECT host:port, or an absolute
 * http:// URI), and the SCC location the client asked for. 1: p->host and p->port are
 * set for an absolute-form request (a head follows); 0: the same for CONNECT (no head);
 * -1: an error in plan. */
int
target_forward(const struct ferry_http_request *req, const struct hidx *x, struct http_plan *p)
{
    if (x->count[H_LOC] > 1 ||
        (x->count[H_LOC] == 1 && x->first[H_LOC]->value.len >= sizeof(p->location))) {
        plan_error(p, 400, "bad-location-header",
                   "SAP-Connectivity-SCC-Location_ID must be given once, under 256 bytes");
        return -1;
    }
    if (x->count[H_LOC] == 1)
        hd_set_location(p, x->first[H_LOC]);
    if (req->form == FERRY_HTTP_FORM_AUTHORITY) {           /* CONNECT host:port */
        if (req->host.len == 0 || req->host.len >= sizeof(p->host) || req->port_num == 0) {
            plan_error(p, 400, "bad-request", "CONNECT needs host:port");
            return -1;
        }
        slice_copy(p->host, sizeof(p->host), req->host.ptr, req->host.len);
        p->port = req->port_num;
        return 0;
    }
    if (req->form != FERRY_HTTP_FORM_ABSOLUTE) {
        plan_error(p, 400, "absolute-uri-required",
                   "a forward proxy needs absolute-form requests (http://host/path) or CONNECT");
        return -1;
    }
    if (hd_ieq(&req->scheme, "https")) {
        plan_error(p, 405, "https-not-supported",
                   "https:// targets are not proxied in absolute form: use CONNECT or SOCKS5 "
                   "for end-to-end TLS");
        return -1;
    }
    if (!hd_ieq(&req->scheme, "http") || req->host.len == 0 || req->host.len >= sizeof(p->host)) {
        plan_error(p, 400, "bad-request", "only http:// absolute URIs are proxied");
        return -1;
    }
    slice_copy(p->host, sizeof(p->host), req->host.ptr, req->host.len);
    p->port = req->port_num != 0 ? req->port_num : 80;
    return 1;
}
