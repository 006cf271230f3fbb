/* fs_util.h: internal helpers of fs/: little-endian access, memory builtins, UTF-16 to UTF-8. */
#ifndef FS_UTIL_H
#define FS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "../block/utf8.h"   /* utf8_put */
#include "../include/errtab.h" /* errtab_msg, errtab_text, errtab_name: the fs/ message tables */

#define FS_MEMCPY __builtin_memcpy
#define FS_MEMSET __builtin_memset
#define FS_MEMCMP __builtin_memcmp

static inline uint16_t fs_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | (b[1] << 8));
}

static inline uint32_t fs_le32(const void *p)
{
	const uint8_t *b = p;
	return b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

static inline uint64_t fs_le64(const void *p)
{
	return fs_le32(p) | ((uint64_t)fs_le32((const uint8_t *)p + 4) << 32);
}

static inline void fs_put_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}

/* ASCII-only lower case (file names compare case-insensitively on ASCII only). */
static inline char fs_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/*
 * Convert n UTF-16 units (stopping at a NUL) to NUL-terminated UTF-8 in
 * out[cap]; unpaired surrogates become U+FFFD. Returns 0, or -1 if cut short.
 */
static inline int fs_utf16_to_utf8(const uint16_t *in, size_t n, char *out, size_t cap)
{
	size_t i, pos = 0;
	int rc = 0;
	for (i = 0; i < n && in[i]; i++) {
		uint32_t cp = in[i];
		if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < n && in[i + 1] >= 0xDC00 && in[i + 1] < 0xE000) {
			cp = 0x10000 + ((cp - 0xD800) << 10) + (in[i + 1] - 0xDC00u);
			i++;
		} else if (cp >= 0xD800 && cp < 0xE000) {
			cp = 0xFFFD;
		}
		if (utf8_put(out, cap, &pos, cp)) {
			rc = -1;
			break;
		}
	}
	if (cap)
		out[pos] = 0;
	return rc;
}

#endif
