/*
 * http_parse_bench.c: ns per request for ferry's request-head parser (core/http/parse.c)
 * on a typical browser request of about 500 bytes, and for Debian's libhttp-parser on
 * the same bytes when it is installed (loaded with dlopen, so ferry never links it).
 *
 *     ferry-http-bench [iterations [ferry|http-parser]]   (default 1000000, both)
 *
 * One side alone is for `perf stat`: instructions per request do not move with the
 * load of a shared machine the way nanoseconds do.
 *
 * Both sides keep every header as a (pointer, length) slice, which is what a proxy
 * needs; libhttp-parser does fewer checks (no Host rule, no target grammar, no CL+TE
 * refusal in its default mode), so the comparison favours it.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ferry/http.h>

#include "http/parse.h"

#if __has_include(<http_parser.h>)
#include <http_parser.h>
#define HAVE_HTTP_PARSER_H 1
#endif

static const char request[] =
    "GET /app/orders/2024/list?status=open&sort=-created&page=3 HTTP/1.1\r\n"
    "Host: billing.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://billing.example.com/app/orders/2024\r\n"
    "Cookie: session=7f3c9a1e5b2d4c6a8e0f; theme=dark; lang=en\r\n"
    "Connection: keep-alive\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "\r\n";

static volatile size_t sink;

static double
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double
bench_ferry(long iterations)
{
    struct ferry_http_header hdrs[64];
    struct ferry_http_req    r;
    double                   t0 = now_ns();

    for (long i = 0; i < iterations; i++) {
        ferry_http_req_init(&r, hdrs, 64);
        if (ferry_http_parse_request(request, sizeof(request) - 1, NULL, &r) <= 0) {
            fprintf(stderr, "ferry: parse failed: %s\n", r.reason);
            exit(1);
        }
        sink += r.header_count + r.path.len;
    }
    return (now_ns() - t0) / (double)iterations;
}

#ifdef HAVE_HTTP_PARSER_H
struct hp_state {
    struct { const char *p; size_t n; } name[64], value[64], url;
    size_t count;
    int    done;
};

static int
hp_url(http_parser *p, const char *at, size_t n)
{
    struct hp_state *s = p->data;

    s->url.p = at;
    s->url.n = n;
    return 0;
}

static int
hp_field(http_parser *p, const char *at, size_t n)
{
    struct hp_state *s = p->data;

    if (s->count < 64) {
        s->name[s->count].p = at;
        s->name[s->count].n = n;
    }
    return 0;
}

static int
hp_value(http_parser *p, const char *at, size_t n)
{
    struct hp_state *s = p->data;

    if (s->count < 64) {
        s->value[s->count].p = at;
        s->value[s->count].n = n;
    }
    s->count++;
    return 0;
}

static int
hp_headers_done(http_parser *p)
{
    ((struct hp_state *)p->data)->done = 1;
    return 0;
}

static double
bench_http_parser(long iterations, const char **why)
{
    void (*init)(http_parser *, enum http_parser_type);
    size_t (*execute)(http_parser *, const http_parser_settings *, const char *, size_t);
    unsigned long (*version)(void);
    http_parser_settings settings;
    http_parser          p;
    struct hp_state      s;
    void                *lib = dlopen("libhttp_parser.so.2.9", RTLD_NOW);
    double               t0;

    if (lib == NULL)
        lib = dlopen("libhttp_parser.so", RTLD_NOW);
    if (lib == NULL) {
        *why = "libhttp_parser.so not found (apt-get install libhttp-parser-dev)";
        return -1;
    }
    *(void **)&init = dlsym(lib, "http_parser_init");
    *(void **)&execute = dlsym(lib, "http_parser_execute");
    *(void **)&version = dlsym(lib, "http_parser_version");
    if (init == NULL || execute == NULL || version == NULL) {
        *why = "libhttp_parser.so lacks http_parser_init/execute/version";
        return -1;
    }
    printf("libhttp-parser %lu.%lu.%lu\n", version() >> 16, (version() >> 8) & 255,
           version() & 255);
    memset(&settings, 0, sizeof(settings));
    settings.on_url = hp_url;
    settings.on_header_field = hp_field;
    settings.on_header_value = hp_value;
    settings.on_headers_complete = hp_headers_done;
    t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        s.count = 0;
        s.done = 0;
        init(&p, HTTP_REQUEST);
        p.data = &s;
        if (execute(&p, &settings, request, sizeof(request) - 1) != sizeof(request) - 1 ||
            !s.done) {
            fprintf(stderr, "libhttp-parser: parse failed (errno %u)\n", p.http_errno);
            exit(1);
        }
        sink += s.count + s.url.n;
    }
    return (now_ns() - t0) / (double)iterations;
}
#endif

int
main(int argc, char **argv)
{
    long        iterations = argc > 1 ? atol(argv[1]) : 1000000;
    const char *only = argc > 2 ? argv[2] : "";
    const char *why = "built without <http_parser.h> (apt-get install libhttp-parser-dev)";
    double      ns;

    if (iterations <= 0)
        iterations = 1000000;
    printf("request head: %zu bytes, %ld iterations\n", sizeof(request) - 1, iterations);
    if (strcmp(only, "http-parser") != 0) {
        bench_ferry(iterations / 10);             /* warm caches and the branch predictor */
        ns = bench_ferry(iterations);
        printf("ferry_http_parse_request: %8.1f ns/request  %6.2f GB/s\n", ns,
               (double)(sizeof(request) - 1) / ns);
    }
    if (strcmp(only, "ferry") == 0)
        return 0;
#ifdef HAVE_HTTP_PARSER_H
    if (bench_http_parser(iterations / 10, &why) >= 0) {
        ns = bench_http_parser(iterations, &why);
        printf("libhttp-parser:           %8.1f ns/request  %6.2f GB/s\n", ns,
               (double)(sizeof(request) - 1) / ns);
        return 0;
    }
#endif
    printf("libhttp-parser: skipped: %s\n", why);
    return 0;
}
