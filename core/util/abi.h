/*
 * abi.h: reading a struct a plugin filled, as far as that plugin's ABI minor had it.
 *
 * Structs that cross the plugin boundary grow at their end (ferry/api.h). Since 1.3 the
 * plugin says how big its struct is (`size`); a 1.1 or 1.2 plugin does not, and its struct
 * is exactly as long as that minor's header made it. abi_copy() gives core a whole,
 * current struct: the plugin's bytes that exist, zero (the default) for the rest.
 */
#ifndef FERRY_UTIL_ABI_H
#define FERRY_UTIL_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ferry/plugin.h>

/* How long a plugin's struct is: legacy[minor] below 1.3, else its size field (never less
 * than the fields before size, which every 1.3 plugin has; never more than core's). */
static inline size_t
abi_struct_size(unsigned minor, const void *p, size_t size_off, size_t full,
                size_t size_1_1, size_t size_1_2)
{
    uint32_t n;

    if (minor <= 1)
        return size_1_1;
    if (minor == 2)
        return size_1_2;
    memcpy(&n, (const char *)p + size_off, sizeof(n));
    if (n < size_off + sizeof(n))
        return size_off + sizeof(n);
    return n > full ? full : n;
}

/* Copy what the plugin has of *src into *dst (sizeof *dst == full), zero the rest, and
 * set dst's size to full. */
#define ABI_COPY(dst, src, minor, size_1_1, size_1_2)                                      \
    do {                                                                                   \
        size_t abi_n_ = abi_struct_size((minor), (src), offsetof(__typeof__(*(dst)), size), \
                                        sizeof(*(dst)), (size_1_1), (size_1_2));           \
        memset((dst), 0, sizeof(*(dst)));                                                  \
        memcpy((dst), (src), abi_n_);                                                      \
        (dst)->size = (uint32_t)sizeof(*(dst));                                            \
    } while (0)

/* The sizes older minors' headers gave each growing struct. */
#define ABI_TARGET_1_1   offsetof(struct ferry_target, protocol)
#define ABI_TARGET_1_2   offsetof(struct ferry_target, size)
#define ABI_IO_TLS_1_2   offsetof(struct ferry_io_tls, size)          /* same in 1.1 */
#define ABI_RECORD_1_1   offsetof(struct ferry_request_record, protocol)
#define ABI_RECORD_1_2   offsetof(struct ferry_request_record, size)
#define ABI_POLICY_1_2   offsetof(struct ferry_policy_http, size)     /* new in 1.2 */

#endif
