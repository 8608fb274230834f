/*
 * loader.h: finding, dlopen()ing and checking protocol plugins (main thread only).
 * A loaded plugin stays loaded until exit (connections of old generations may still
 * run its code after a reload).
 */
#ifndef FERRY_LOADER_H
#define FERRY_LOADER_H

#include <stdint.h>

#include <ferry/err.h>
#include <ferry/plugin.h>

/* Set where the running binary lives (for the "beside the binary" search). */
void ferry_plugin_set_exe_dir(const char *dir);

/* Load ferry_<name>.so from plugins_dir (if set), else beside the binary
 * (<exe>/../plugins, <exe>/plugins), else the install dir. Refuses a wrong ABI major,
 * a too-small descriptor, a name mismatch or a missing on_accept with a message naming
 * the file. Calls init() once. */
int  ferry_plugin_load(const char *name, const char *plugins_dir,
                       const struct ferry_plugin **out, struct ferry_err *err);
void ferry_plugin_unload_all(void);

/* The head of a plugin's descriptor as its file holds it. */
struct plugin_abi {
    uint16_t major, minor;
    uint32_t struct_size;
};
/* Read it from the ELF file without loading it (elf-abi.c): 0, or -1 when the file
 * does not say (not a native ELF shared object, no exported ferry_plugin). */
int  ferry_plugin_file_abi(const char *path, struct plugin_abi *out);

#endif
