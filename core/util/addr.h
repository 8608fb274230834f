/*
 * addr.h: socket addresses as text, both ways. Numeric only: nothing here resolves
 * a name, so it is safe on a worker and at start before DNS is up.
 */
#ifndef FERRY_UTIL_ADDR_H
#define FERRY_UTIL_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include <ferry/err.h>

/* Parse "host:port", "[v6]:port", "*:port" (a listen address as written in the
 * config) into a socket address. FERRY_OK, or FERRY_EINVAL with the reason in err. */
int  ferry_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                      struct ferry_err *err);

/* "1.2.3.4:5" / "[::1]:5" into buf (truncated to size, NUL-terminated). */
void ferry_addr_format(const struct sockaddr *sa, char *buf, size_t size);

#endif
