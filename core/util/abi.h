/*
 * abi.h: reading a struct a plugin filled, as far as that plugin's ABI minor had it.
 *
 * Structs that cross the plugin boundary grow at their end (ferry/api.h). Since 1.3 the
 * plugin says how big its struct is (`size`); a plugin of 1.0, 1.1 or 1.2 does not, and
 * its struct is exactly as long as that minor's header made it. abi_copy() gives core a whole,
 * current struct: the plugin's bytes that exist, zero (the default) for the rest.
 */
#ifndef FERRY_UTIL_ABI_H
#define FERRY_UTIL_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ferry/plugin.h>

/* How long a plugin's struct is: legacy[minor] below 1.3 (sizes at 1.0, 1.1, 1.2), else
 * its size field (never less than the fields before size, which every 1.3 plugin has;
 * never more than core's). */
static inline size_t
abi_struct_size(unsigned minor, const void *p, size_t size_off, size_t full,
                const size_t legacy[3])
{
    uint32_t n;

    if (minor < 3)
        return legacy[minor];
    memcpy(&n, (const char *)p + size_off, sizeof(n));
    if (n < size_off + sizeof(n))
        return size_off + sizeof(n);
    return n > full ? full : n;
}

/* Copy what the plugin has of *src into *dst (sizeof *dst == full), zero the rest, and
 * set dst's size to full. */
#define ABI_COPY(dst, src, minor, legacy)                                                  \
    do {                                                                                   \
        size_t abi_n_ = abi_struct_size((minor), (src), offsetof(__typeof__(*(dst)), size), \
                                        sizeof(*(dst)), (legacy));                         \
        memset((dst), 0, sizeof(*(dst)));                                                  \
        memcpy((dst), (src), abi_n_);                                                      \
        (dst)->size = (uint32_t)sizeof(*(dst));                                            \
    } while (0)

/* The sizes the headers of 1.0, 1.1 and 1.2 gave each growing struct (one that did not
 * exist yet gets its first size: a plugin of that minor cannot have called for it). */
#define ABI_TARGET_SIZES ((const size_t[3]){                                               \
    offsetof(struct ferry_target, direct_ok), offsetof(struct ferry_target, protocol),     \
    offsetof(struct ferry_target, size) })
#define ABI_IO_TLS_SIZES ((const size_t[3]){                                               \
    offsetof(struct ferry_io_tls, size), offsetof(struct ferry_io_tls, size),              \
    offsetof(struct ferry_io_tls, size) })
#define ABI_RECORD_SIZES ((const size_t[3]){                                               \
    offsetof(struct ferry_request_record, protocol),                                      \
    offsetof(struct ferry_request_record, protocol),                                      \
    offsetof(struct ferry_request_record, size) })

#endif
