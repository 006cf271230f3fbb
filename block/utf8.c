/* utf8.c: the one UTF-8 encoder (see utf8.h for why it lives in block/). */
#include "utf8.h"

int utf8_put(char *out, size_t cap, size_t *pos, uint32_t cp)
{
	uint8_t b[4];
	size_t n, i;
	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xC0 | (cp >> 6));
		b[1] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xE0 | (cp >> 12));
		b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xF0 | (cp >> 18));
		b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (uint8_t)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (*pos + n >= cap)
		return -1;
	for (i = 0; i < n; i++)
		out[(*pos)++] = (char)b[i];
	out[*pos] = 0;
	return 0;
}
