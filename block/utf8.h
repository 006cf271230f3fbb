/* utf8.h: the one UTF-8 encoder, for vhd/ (parent names, locators) and fs/ (FAT names); in block/ because that is the only layer both pure libraries already depend on. */
#ifndef BLOCK_UTF8_H
#define BLOCK_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Append code point cp (< 0x110000) as UTF-8 at out[*pos] and NUL-terminate; 0, or -1 if it and the NUL do
 * not fit in cap bytes (out and *pos unchanged). */
int utf8_put(char *out, size_t cap, size_t *pos, uint32_t cp);

#endif
