/*
 * elf-abi.c: read a plugin's ABI version from its file, before dlopen().
 *
 * dlopen() resolves a plugin's symbols against the ferry binary while it loads (with
 * RTLD_NOW, -z now, or any data reference to a function), so a plugin built for a newer
 * minor fails there with "undefined symbol: ferry_something" — which names neither
 * version nor the fix. Instead the loader looks the exported `ferry_plugin` descriptor
 * up in the file's dynamic symbol table and reads its first bytes (abi_major, abi_minor,
 * struct_size: plain integers, stored as written, never relocated). Every plugin ever
 * built has that descriptor, so this works for old plugins too.
 *
 * Reads an operator's file on the main thread at load time; every offset is checked
 * against the file's size. Only the native ELF class and byte order are understood:
 * anything else is left to dlopen() to refuse.
 */
#include <fcntl.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/loader.h"

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_DATA ELFDATA2LSB
#else
#define NATIVE_DATA ELFDATA2MSB
#endif
#if __SIZEOF_POINTER__ == 8
#define NATIVE_CLASS ELFCLASS64
#else
#define NATIVE_CLASS ELFCLASS32
#endif

/* off..off+len lies in the file, and off is aligned for the table read there (the
 * mapping is page-aligned, so the file offset decides). */
static bool
in_file(size_t size, uint64_t off, uint64_t len, size_t align)
{
    return off <= size && len <= size - off && off % align == 0;
}

/* The file offset of virtual address vaddr (len bytes of file-backed data), or 0. */
static uint64_t
vaddr_to_off(const uint8_t *base, size_t size, const ElfW(Ehdr) *eh, uint64_t vaddr,
             uint64_t len)
{
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(base + eh->e_phoff) + i;

        if (ph->p_type != PT_LOAD || !in_file(size, ph->p_offset, ph->p_filesz, 1) ||
            vaddr < ph->p_vaddr || len > ph->p_filesz ||
            vaddr - ph->p_vaddr > ph->p_filesz - len)
            continue;
        return ph->p_offset + (vaddr - ph->p_vaddr);
    }
    return 0;
}

static int
descriptor_head(const uint8_t *base, size_t size, struct plugin_abi *out)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)base;

    if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != NATIVE_CLASS || eh->e_ident[EI_DATA] != NATIVE_DATA ||
        eh->e_shentsize != sizeof(ElfW(Shdr)) || eh->e_phentsize != sizeof(ElfW(Phdr)) ||
        !in_file(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(ElfW(Shdr)),
                 _Alignof(ElfW(Shdr))) ||
        !in_file(size, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(ElfW(Phdr)),
                 _Alignof(ElfW(Phdr))))
        return -1;
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(base + eh->e_shoff) + i;
        const ElfW(Shdr) *strs;
        const ElfW(Sym)  *syms;
        size_t            nsyms;

        if (sh->sh_type != SHT_DYNSYM || sh->sh_link >= eh->e_shnum ||
            sh->sh_entsize != sizeof(ElfW(Sym)) ||
            !in_file(size, sh->sh_offset, sh->sh_size, _Alignof(ElfW(Sym))))
            continue;
        strs = (const ElfW(Shdr) *)(base + eh->e_shoff) + sh->sh_link;
        if (!in_file(size, strs->sh_offset, strs->sh_size, 1))
            continue;
        syms = (const ElfW(Sym) *)(base + sh->sh_offset);
        nsyms = sh->sh_size / sizeof(ElfW(Sym));
        for (size_t k = 0; k < nsyms; k++) {
            static const char want[] = "ferry_plugin";
            uint64_t          off;

            if (syms[k].st_shndx == SHN_UNDEF || syms[k].st_name >= strs->sh_size ||
                strs->sh_size - syms[k].st_name < sizeof(want) ||
                memcmp(base + strs->sh_offset + syms[k].st_name, want, sizeof(want)) != 0)
                continue;
            off = vaddr_to_off(base, size, eh, syms[k].st_value, 8);
            if (off == 0 || !in_file(size, off, 8, 1))
                return -1;
            memcpy(&out->major, base + off, 2);
            memcpy(&out->minor, base + off + 2, 2);
            memcpy(&out->struct_size, base + off + 4, 4);
            return 0;
        }
    }
    return -1;
}

int
ferry_plugin_file_abi(const char *path, struct plugin_abi *out)
{
    struct stat st;
    void       *map;
    int         fd, rc;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        close(fd);
        return -1;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -1;
    rc = descriptor_head(map, (size_t)st.st_size, out);
    munmap(map, (size_t)st.st_size);
    return rc;
}
