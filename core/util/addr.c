/*
 * addr.c: socket addresses as text (addr.h). Parsing takes listen addresses as
 * written in the config: "127.0.0.1:3300", "[::1]:3300", "*:3300" (numeric only: a
 * listener must not depend on DNS at start); formatting writes peers for logs.
 * Knows nothing of config files or connections: conf, tunnel, worker and admin call it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/addr.h"

static int
parse_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return -1;
    }
    if (v == 0)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

int
ferry_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                 struct ferry_err *err)
{
    char        host[INET6_ADDRSTRLEN + 2];
    const char *colon, *port_s;
    size_t      hlen;
    uint16_t    port;
    bool        v6 = false;

    if (text == NULL || *text == '\0')
        return ferry_err_set(err, FERRY_EINVAL, "empty address (want host:port)");
    if (text[0] == '[') {
        const char *end = strchr(text, ']');

        if (end == NULL || end[1] != ':')
            return ferry_err_set(err, FERRY_EINVAL,
                                 "'%s': want [ipv6]:port, e.g. [::1]:3300", text);
        hlen = (size_t)(end - text - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            return ferry_err_set(err, FERRY_EINVAL, "'%s': bad IPv6 address", text);
        memcpy(host, text + 1, hlen);
        host[hlen] = '\0';
        port_s = end + 2;
        v6 = true;
    } else {
        if ((colon = strrchr(text, ':')) == NULL)
            return ferry_err_set(err, FERRY_EINVAL,
                                 "'%s': want host:port, e.g. 127.0.0.1:3300", text);
        if (memchr(text, ':', (size_t)(colon - text)) != NULL)
            return ferry_err_set(err, FERRY_EINVAL,
                                 "'%s': write IPv6 addresses in brackets: [::1]:3300", text);
        hlen = (size_t)(colon - text);
        if (hlen == 0 || hlen >= sizeof(host))
            return ferry_err_set(err, FERRY_EINVAL, "'%s': missing host (use *:port for "
                                 "every address)", text);
        memcpy(host, text, hlen);
        host[hlen] = '\0';
        port_s = colon + 1;
    }
    if (parse_port(port_s, &port) != 0)
        return ferry_err_set(err, FERRY_EINVAL, "'%s': port must be 1..65535", text);

    memset(ss, 0, sizeof(*ss));
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return ferry_err_set(err, FERRY_EINVAL, "'%s': bad IPv6 address", text);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        *len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        if (strcmp(host, "*") == 0)
            s4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return ferry_err_set(err, FERRY_EINVAL, "'%s': host must be a numeric IPv4 "
                                 "address, [IPv6] or * (no host names)", text);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        *len = sizeof(*s4);
    }
    return FERRY_OK;
}

void
ferry_addr_format(const struct sockaddr *sa, char *buf, size_t size)
{
    char     host[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
        port = ntohs(s->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
        port = ntohs(s->sin6_port);
    }
    snprintf(buf, size, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}
