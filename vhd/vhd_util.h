/* vhd_util.h: internal helpers of the vhd library: big-endian access, bounds-safe arithmetic. */
#ifndef VHD_UTIL_H
#define VHD_UTIL_H

#include <stdint.h>
#include <stddef.h>

static inline uint16_t vhd_be16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)((b[0] << 8) | b[1]);
}

static inline uint32_t vhd_be32(const void *p)
{
	const uint8_t *b = p;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static inline uint64_t vhd_be64(const void *p)
{
	const uint8_t *b = p;
	return ((uint64_t)vhd_be32(b) << 32) | vhd_be32(b + 4);
}

static inline void vhd_put16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline void vhd_put32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

static inline void vhd_put64(void *p, uint64_t v)
{
	vhd_put32(p, (uint32_t)(v >> 32));
	vhd_put32((uint8_t *)p + 4, (uint32_t)v);
}

#define VHD_MEMCPY __builtin_memcpy
#define VHD_MEMSET __builtin_memset
#define VHD_MEMCMP __builtin_memcmp

/* Byte offsets of footer and header fields (match struct vhd_disk_footer / vhd_disk_header). */
#define VHD_FOOTER_CSUM_OFF 64
#define VHD_HEADER_CSUM_OFF 36

/* Sectors (rounded up) covering bytes. */
static inline uint64_t vhd_sectors_of(uint64_t bytes)
{
	return (bytes + 511) >> 9;
}

/* Ranges [a, a+alen) and [b, b+blen) intersect. */
static inline int vhd_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* Space in bytes reserved for a locator's data (space field: sectors if < 512, else bytes). */
static inline uint64_t vhd_ploc_space_bytes(uint32_t space, uint32_t len)
{
	uint64_t s = space < 512 ? (uint64_t)space * 512 : space;
	return s > len ? s : len;
}

struct vhd;
/* Sort a[0..n) ascending in place (heap sort: no recursion, no extra memory). */
void vhd_sort_u32(uint32_t *a, uint32_t n);

#endif
