/* int13_geom.c: the BIOS geometry (cylinders x heads x sectors) an emulated drive reports: the one its MBR agrees with, else a size-based default. */
#include <stdint.h>
#include "int13_priv.h"

/* MBR partition table. */
#define INT13_MBR_TABLE 446u
#define INT13_MBR_ENTRY 16u
#define INT13_MBR_ENTRIES 4u
#define INT13_MBR_SIG 510u
#define INT13_CHS_SATURATED 1023u  /* partition tools write 1023/x/y for "beyond CHS" */

/* Geometry defaults. */
#define INT13_SPT 63u
#define INT13_HEADS_SMALL 16u
#define INT13_HEADS_LARGE 255u
#define INT13_MAX_CYLS 65535u

/* Little-endian 32-bit value at p (any alignment). */
static uint32_t int13_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Cylinders for a geometry, clamped to 16 bits; 32-bit division only. */
static uint16_t int13_cyls(uint64_t sectors, uint32_t heads, uint32_t spt)
{
	uint32_t per_cyl = heads * spt;
	if (sectors >= (uint64_t)INT13_MAX_CYLS * per_cyl)
		return INT13_MAX_CYLS;
	return (uint16_t)((uint32_t)sectors / per_cyl);
}

/*
 * Nonzero when every CHS tuple (start and end) of every used partition maps
 * to its LBA under heads x spt, and at least one tuple could be checked.
 * Tuples at cylinder 1023 that don't map are skipped: tools write
 * 1023/254/63 or 1023/H-1/S for "beyond CHS".
 */
static int int13_mbr_fits(const uint8_t *mbr, uint32_t heads, uint32_t spt)
{
	int checked = 0;
	for (uint32_t i = 0; i < INT13_MBR_ENTRIES; i++) {
		const uint8_t *e = mbr + INT13_MBR_TABLE + i * INT13_MBR_ENTRY;
		uint32_t start = int13_le32(e + 8), count = int13_le32(e + 12);
		if (e[4] == 0 || count == 0)
			continue;
		for (int end = 0; end < 2; end++) {
			const uint8_t *chs = e + (end ? 5 : 1);
			uint32_t h = chs[0], s = chs[1] & 0x3Fu;
			uint32_t c = chs[2] | ((chs[1] & 0xC0u) << 2);
			uint32_t lba = end ? start + count - 1 : start;
			int ok = s != 0 && s <= spt && h < heads &&
				 (c * heads + h) * spt + s - 1 == lba;
			if (ok)
				checked = 1;
			else if (c != INT13_CHS_SATURATED)
				return 0;
		}
	}
	return checked;
}

/*
 * Geometry search: first what the partition ends claim (largest end head
 * + 1, largest end sector), then common partitioner geometries; the first
 * one under which every partition's CHS fields agree with its LBA fields
 * wins. This accepts DOS-era tables (ends on cylinder boundaries) and
 * rejects a modern 1 MiB-aligned table whose end CHS is not a boundary.
 * Without an answer: 255x63 above 1024x16x63 sectors (~504 MiB), 16x63
 * below, and for disks under 16x63 sectors fewer heads (and sectors).
 */
void int13_geometry(uint64_t sectors, const uint8_t *mbr, uint16_t *cyl, uint16_t *heads, uint8_t *spt)
{
	static const uint8_t common[][2] = {
		{ 255, 63 }, { 16, 63 }, { 240, 63 }, { 128, 63 }, { 64, 63 }, { 32, 63 }, { 64, 32 },
	};
	if (mbr && mbr[INT13_MBR_SIG] == 0x55 && mbr[INT13_MBR_SIG + 1] == 0xAA) {
		uint32_t maxh = 0, maxs = 0;
		int valid = 1;
		for (uint32_t i = 0; i < INT13_MBR_ENTRIES; i++) {
			const uint8_t *e = mbr + INT13_MBR_TABLE + i * INT13_MBR_ENTRY;
			if (e[0] != 0x00 && e[0] != 0x80)
				valid = 0;  /* not a partition table (a FAT boot sector, say) */
			uint32_t c = e[7] | ((e[6] & 0xC0u) << 2);
			if (e[4] == 0 || c == INT13_CHS_SATURATED)
				continue;
			if (e[5] > maxh)
				maxh = e[5];
			if ((e[6] & 0x3Fu) > maxs)
				maxs = e[6] & 0x3Fu;
		}
		for (int k = -1; valid && k < (int)(sizeof(common) / sizeof(common[0])); k++) {
			uint32_t h = k < 0 ? maxh + 1 : common[k][0];
			uint32_t s = k < 0 ? maxs : common[k][1];
			if (h > INT13_HEADS_LARGE || s == 0 || s > INT13_SPT)
				continue;
			if (sectors < h * s || !int13_mbr_fits(mbr, h, s))
				continue;
			*heads = (uint16_t)h;
			*spt = (uint8_t)s;
			*cyl = int13_cyls(sectors, h, s);
			return;
		}
	}
	uint32_t h, s;
	if (sectors >= (uint64_t)INT13_CHS_MAX_CYL * INT13_HEADS_SMALL * INT13_SPT) {
		h = INT13_HEADS_LARGE;
		s = INT13_SPT;
	} else if (sectors >= INT13_HEADS_SMALL * INT13_SPT) {
		h = INT13_HEADS_SMALL;
		s = INT13_SPT;
	} else {
		/* Tiny: one cylinder of up to 16 tracks of up to 63 sectors. */
		s = sectors >= INT13_SPT ? INT13_SPT : (sectors ? (uint32_t)sectors : 1);
		h = (uint32_t)sectors / s;
		if (h == 0)
			h = 1;
	}
	*heads = (uint16_t)h;
	*spt = (uint8_t)s;
	*cyl = int13_cyls(sectors, h, s);
}
