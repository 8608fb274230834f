/*
 * jwt_refresh_test.c: a key source refetching its jwks_url (ferry_jwks_source_refresh)
 * from a real HTTP server on loopback (libevent's evhttp, on the test's own loop):
 * garbage and a 500 keep the last good set, a good answer swaps it, refetches wait a
 * minute between them, and freeing the source cancels a running fetch.
 * The key set is tests/fixtures/jwt/jwks.json (kids r1, e1); the "rotated" set is the
 * same keys under kids r2, e2.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <ferry/err.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "cu.h"

#define NOW 1700000000

static struct event_base *base;
static char               jwks_a[4096], jwks_b[4096], url[128];
static int                answer_status = 200;
static const char        *answer_body = "";
static int                requests, done_calls, done_rc;

static void
serve(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evbuffer_new();

    (void)arg;
    requests++;
    evbuffer_add(out, answer_body, strlen(answer_body));
    evhttp_send_reply(req, answer_status, answer_status == 200 ? "OK" : "Oops", out);
    evbuffer_free(out);
}

static void
on_done(void *arg, int rc)
{
    (void)arg;
    done_calls++;
    done_rc = rc;
    event_base_loopbreak(base);
}

/* Run the loop until the fetch reports, 5 s at most. */
static void
wait_done(void)
{
    struct timeval five = { 5, 0 };
    int            before = done_calls;

    event_base_loopexit(base, &five);
    event_base_dispatch(base);
    CU_ASSERT_EQUAL(done_calls, before + 1);
}

static const struct ferry_jwks_fetch fetch = {
    .timeout_ms = 3000, .done = on_done,
};

static struct ferry_jwks_fetch
fetch_here(void)
{
    struct ferry_jwks_fetch f = fetch;

    f.base = base;
    return f;
}

static void
test_garbage_and_errors_keep_the_last_good_set_and_a_good_answer_swaps(void)
{
    struct ferry_jwks        *a = NULL;
    struct ferry_jwks_source *s;
    struct ferry_jwks_fetch   f = fetch_here();
    const struct ferry_jwks  *held;

    CU_ASSERT_EQUAL_FATAL(ferry_jwks_parse(jwks_a, strlen(jwks_a), &a, NULL), FERRY_OK);
    s = ferry_jwks_source_new(a, url);
    ferry_jwks_unref(a);                /* the source holds its own reference */
    held = ferry_jwks_source_get(s);

    answer_body = "<html>not a key set</html>";
    CU_ASSERT_EQUAL(ferry_jwks_source_refresh(s, &f, NOW), FERRY_OK);
    wait_done();
    CU_ASSERT_EQUAL(done_rc, FERRY_EINVAL);
    CU_ASSERT_PTR_EQUAL(ferry_jwks_source_get(s), held);
    CU_ASSERT_EQUAL(requests, 1);

    /* Within the minute: not fetched again. */
    answer_body = jwks_b;
    CU_ASSERT_EQUAL(ferry_jwks_source_refresh(s, &f, NOW + 59), FERRY_EAGAIN);
    CU_ASSERT_EQUAL(requests, 1);

    CU_ASSERT_EQUAL(ferry_jwks_source_refresh(s, &f, NOW + 60), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_jwks_source_refresh(s, &f, NOW + 200), FERRY_EAGAIN);  /* running */
    wait_done();
    CU_ASSERT_EQUAL(done_rc, FERRY_OK);
    CU_ASSERT_EQUAL(requests, 2);
    held = ferry_jwks_source_get(s);
    CU_ASSERT_PTR_NOT_NULL(ferry_jwks_find(held, JWKS_EC, "e2"));
    CU_ASSERT_PTR_NULL(ferry_jwks_find(held, JWKS_EC, "e1"));

    answer_status = 500;
    answer_body = jwks_a;
    CU_ASSERT_EQUAL(ferry_jwks_source_refresh(s, &f, NOW + 120), FERRY_OK);
    wait_done();
    CU_ASSERT_EQUAL(done_rc, FERRY_EUNAVAIL);
    CU_ASSERT_PTR_EQUAL(ferry_jwks_source_get(s), held);
    answer_status = 200;

    answer_body = "{\"keys\":[]}";
    CU_ASSERT_EQUAL(ferry_jwks_source_refresh(s, &f, NOW + 180), FERRY_OK);
    wait_done();
    CU_ASSERT_EQUAL(done_rc, FERRY_EINVAL);
    CU_ASSERT_PTR_EQUAL(ferry_jwks_source_get(s), held);
    ferry_jwks_source_free(s);
}

static void
test_freeing_the_source_cancels_its_fetch(void)
{
    struct ferry_jwks        *a = NULL;
    struct ferry_jwks_source *s;
    struct ferry_jwks_fetch   f = fetch_here();
    struct timeval            short_tv = { 0, 300000 };
    int                       before = done_calls;

    CU_ASSERT_EQUAL_FATAL(ferry_jwks_parse(jwks_a, strlen(jwks_a), &a, NULL), FERRY_OK);
    s = ferry_jwks_source_new(a, url);
    answer_body = jwks_b;
    CU_ASSERT_EQUAL(ferry_jwks_source_refresh(s, &f, NOW), FERRY_OK);
    ferry_jwks_source_free(s);
    event_base_loopexit(base, &short_tv);
    event_base_dispatch(base);
    CU_ASSERT_EQUAL(done_calls, before);
    /* The caller's reference is still good: the source dropped only its own. */
    CU_ASSERT_EQUAL(ferry_jwks_count(a), 2);
    ferry_jwks_unref(a);

    s = ferry_jwks_source_new(NULL, NULL);
    CU_ASSERT_EQUAL(ferry_jwks_source_refresh(s, &f, NOW), FERRY_EINVAL);
    ferry_jwks_source_free(s);
}

/* s with every occurrence of from replaced by to (same length). */
static void
swap_all(char *s, const char *from, const char *to)
{
    for (char *p = strstr(s, from); p != NULL; p = strstr(p + 1, from))
        memcpy(p, to, strlen(to));
}

int
main(void)
{
    static const struct cu_test tests[] = {
        { "garbage and errors keep the last good set, a good answer swaps",
          test_garbage_and_errors_keep_the_last_good_set_and_a_good_answer_swaps },
        { "freeing the source cancels its fetch", test_freeing_the_source_cancels_its_fetch },
        { NULL, NULL },
    };
    FILE                      *fp = fopen("../fixtures/jwt/jwks.json", "r");
    size_t                     n;
    struct evhttp             *http;
    struct evhttp_bound_socket *sock;
    struct sockaddr_in         sin;
    socklen_t                  slen = sizeof(sin);
    int                        rc;

    if (fp == NULL)
        return 2;
    n = fread(jwks_a, 1, sizeof(jwks_a) - 1, fp);
    fclose(fp);
    jwks_a[n] = '\0';
    memcpy(jwks_b, jwks_a, n + 1);
    swap_all(jwks_b, "\"kid\":\"r1\"", "\"kid\":\"r2\"");
    swap_all(jwks_b, "\"kid\":\"e1\"", "\"kid\":\"e2\"");

    base = event_base_new();
    http = evhttp_new(base);
    if (base == NULL || http == NULL
        || (sock = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0)) == NULL)
        return 2;
    evhttp_set_gencb(http, serve, NULL);
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin, &slen);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/jwks.json", ntohs(sin.sin_port));
    rc = cu_run("auth/jwt_refresh", tests);
    evhttp_free(http);
    event_base_free(base);
    return rc;
}
