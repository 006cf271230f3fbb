/* vhdx_crc.c: CRC-32C (Castagnoli, 16-entry nibble table), GUID text helpers, the heap sort and the UTF-8 -> UTF-16LE encoder. */
#include "vhdx.h"
#include "vhdx_util.h"

/* CRC-32C of the 4-bit values 0..15 (reflected polynomial 0x82F63B78): a constant table, not state. */
static const uint32_t vx_crc_nib[16] = {
	0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1, 0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
	0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9, 0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75,
};

uint32_t vhdx_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		crc = (crc >> 4) ^ vx_crc_nib[crc & 15];
		crc = (crc >> 4) ^ vx_crc_nib[crc & 15];
	}
	return ~crc;
}

/* GUIDs in stored order: Data1 (LE 4), Data2 (LE 2), Data3 (LE 2), Data4 (8 as written). */
#define VX_GUID(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7) { { \
	(uint8_t)(a), (uint8_t)((a) >> 8), (uint8_t)((a) >> 16), (uint8_t)((uint32_t)(a) >> 24), \
	(uint8_t)(b), (uint8_t)((b) >> 8), (uint8_t)(c), (uint8_t)((c) >> 8), \
	d0, d1, d2, d3, d4, d5, d6, d7 } }

const struct vhdx_guid vx_guid_bat = VX_GUID(0x2DC27766u, 0xF623, 0x4200, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08);
const struct vhdx_guid vx_guid_meta = VX_GUID(0x8B7CA206u, 0x4790, 0x4B9A, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E);
const struct vhdx_guid vx_guid_file_params = VX_GUID(0xCAA16737u, 0xFA36, 0x4D43, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B);
const struct vhdx_guid vx_guid_vsize = VX_GUID(0x2FA54224u, 0xCD1B, 0x4876, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8);
const struct vhdx_guid vx_guid_page83 = VX_GUID(0xBECA12ABu, 0xB2E6, 0x4523, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46);
const struct vhdx_guid vx_guid_lss = VX_GUID(0x8141BF1Du, 0xA96F, 0x4709, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F);
const struct vhdx_guid vx_guid_pss = VX_GUID(0xCDA348C7u, 0x445D, 0x4471, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56);
const struct vhdx_guid vx_guid_locator = VX_GUID(0xA8D35F2Du, 0xB30B, 0x454D, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C);
const struct vhdx_guid vx_guid_loc_type = VX_GUID(0xB04AEFB7u, 0xD19E, 0x4A81, 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13);

/* Text position of each stored byte in "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}". */
static const uint8_t vx_guid_pos[16] = { 7, 5, 3, 1, 12, 10, 17, 15, 20, 22, 25, 27, 29, 31, 33, 35 };

void vhdx_guid_str(const struct vhdx_guid *g, char out[39])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 38; i++)
		out[i] = '-';
	out[0] = '{';
	out[37] = '}';
	out[38] = 0;
	for (int i = 0; i < 16; i++) {
		out[vx_guid_pos[i]] = hex[g->b[i] >> 4];
		out[vx_guid_pos[i] + 1] = hex[g->b[i] & 15];
	}
}

/* Value of hex digit c, or -1. */
static int vx_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vhdx_guid_parse(const char *s, size_t n, struct vhdx_guid *g)
{
	if (n != 38 || s[0] != '{' || s[37] != '}' || s[9] != '-' || s[14] != '-' || s[19] != '-' || s[24] != '-')
		return -1;
	for (int i = 0; i < 16; i++) {
		int hi = vx_hex(s[vx_guid_pos[i]]), lo = vx_hex(s[vx_guid_pos[i] + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		g->b[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int vhdx_volume_guid(const char *path, struct vhdx_guid *g, const char **rest)
{
	static const char pre[] = "\\\\?\\Volume";
	for (int i = 0; pre[i]; i++) {
		char c = path[i];
		if (pre[i] == '\\' ? (c != '\\' && c != '/') : c != pre[i])
			return -1;
	}
	const char *p = path + sizeof(pre) - 1;
	size_t n = 0;
	while (p[n] && n < 38)
		n++;
	if (n < 38 || vhdx_guid_parse(p, 38, g))
		return -1;
	*rest = p + 38;
	return 0;
}

int vhdx_guid_is_zero(const struct vhdx_guid *g)
{
	for (int i = 0; i < 16; i++)
		if (g->b[i])
			return 0;
	return 1;
}

/* Move a[i] down the heap of n elements until both children are smaller. */
static void vx_sift(uint64_t *a, uint64_t i, uint64_t n)
{
	for (;;) {
		uint64_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && a[c + 1] > a[c])
			c++;
		if (a[i] >= a[c])
			return;
		uint64_t t = a[i];
		a[i] = a[c];
		a[c] = t;
		i = c;
	}
}

void vx_sort_u64(uint64_t *a, uint64_t n)
{
	for (uint64_t i = n / 2; i-- > 0;)
		vx_sift(a, i, n);
	for (uint64_t e = n; e > 1; e--) {
		uint64_t t = a[0];
		a[0] = a[e - 1];
		a[e - 1] = t;
		vx_sift(a, 0, e - 1);
	}
}

long vx_utf8_to_utf16le(const char *s, size_t n, uint8_t *out, size_t cap, int backslash)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint8_t c = (uint8_t)s[i];
		uint32_t cp;
		int more;
		if (c < 0x80) {
			cp = c;
			more = 0;
		} else if ((c & 0xE0) == 0xC0) {
			cp = c & 0x1F;
			more = 1;
		} else if ((c & 0xF0) == 0xE0) {
			cp = c & 0x0F;
			more = 2;
		} else if ((c & 0xF8) == 0xF0) {
			cp = c & 0x07;
			more = 3;
		} else {
			return -1;
		}
		if (i + 1 + (size_t)more > n)
			return -1;
		for (int k = 1; k <= more; k++) {
			uint8_t d = (uint8_t)s[i + k];
			if ((d & 0xC0) != 0x80)
				return -1;
			cp = cp << 6 | (d & 0x3F);
		}
		i += 1 + (size_t)more;
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0)
			return -1;
		if (backslash && cp == '/')
			cp = '\\';
		if (cp >= 0x10000) {
			if (o + 4 > cap)
				return -1;
			cp -= 0x10000;
			vx_put16(out + o, (uint16_t)(0xD800 | (cp >> 10)));
			vx_put16(out + o + 2, (uint16_t)(0xDC00 | (cp & 0x3FF)));
			o += 4;
		} else {
			if (o + 2 > cap)
				return -1;
			vx_put16(out + o, (uint16_t)cp);
			o += 2;
		}
	}
	return (long)o;
}
