/* test_fs.c: cmocka unit tests of fs/ (partitions, FAT, extents, the fs.h interface, exFAT/NTFS boot checks) over hand-made in-memory disks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../fs/part.h"
#include "../../fs/part_format.h"
#include "../../fs/fat.h"
#include "../../fs/fat_format.h"
#include "../../fs/extent.h"
#include "../../fs/fs.h"
#include "ramdev.h"

/* ------------------------------------------------------------------ RAM disks (ramdev.h; sparse past cap: zeros) */

static uint8_t *sec(struct ramdev *r, uint64_t lba)
{
	assert_true((lba + 1) * 512 <= r->cap);
	return r->data + lba * 512;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* ------------------------------------------------------------------ MBR builders */

static void mbr_entry(uint8_t *s, int slot, uint8_t boot, uint8_t type, uint32_t start, uint32_t n)
{
	uint8_t *e = s + MBR_PART_OFF + slot * 16;
	e[0] = boot;
	e[4] = type;
	put32(e + 8, start);
	put32(e + 12, n);
	s[510] = 0x55;
	s[511] = 0xAA;
}

/* Collect every partition of r; returns the count, last status in *last. */
static int list_parts(struct ramdev *r, struct part_info *out, int max, int *last)
{
	struct part_iter it;
	int n = 0, rc = part_open(&it, &r->blk);
	if (rc) {
		*last = rc;
		return 0;
	}
	while ((rc = part_next(&it, &out[n])) == PART_OK || rc == PART_E_BEYOND_DISK || rc == PART_E_GPT_BAD_RANGE) {
		if (rc == PART_OK && ++n == max)
			break;
	}
	*last = rc;
	return n;
}

static void test_crc32_and_guid(void **state)
{
	(void)state;
	static const uint8_t esp[16] = { 0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
					 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B };
	char s[37];
	assert_int_equal(part_crc32(0, "123456789", 9), 0xCBF43926u);
	assert_int_equal(part_crc32(part_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
	part_guid_str(esp, s);
	assert_string_equal(s, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
	for (int i = 0; i < PART_E_COUNT; i++) {
		assert_non_null(part_strerror(i));
		assert_string_not_equal(part_errname(i), "unknown");
	}
	for (int i = 0; i < FAT_E_COUNT; i++)
		assert_string_not_equal(fat_errname(i), "unknown");
	for (int i = 0; i < EXT_E_COUNT; i++)
		assert_string_not_equal(ext_errname(i), "unknown");
	assert_string_equal(part_errname(-1), "unknown");
	assert_string_equal(fat_errname(FAT_E_COUNT), "unknown");
	assert_string_equal(fat_strerror(-1), "unknown FAT error");
	assert_string_equal(ext_strerror(EXT_E_COUNT), "unknown extent error");
	assert_string_equal(ext_errname(EXT_E_FS), "refused");
}

static void test_mbr_primary(void **state)
{
	(void)state;
	struct ramdev *r = ramdev_new(10000, 16, RAMDEV_ZEROES);
	struct part_info p[8];
	int last;
	mbr_entry(sec(r, 0), 0, 0x80, 0x0C, 2048, 4000);
	mbr_entry(sec(r, 0), 2, 0x00, 0x83, 6048, 3952);
	assert_int_equal(list_parts(r, p, 8, &last), 2);
	assert_int_equal(last, PART_E_END);
	assert_int_equal(p[0].index, 1);
	assert_int_equal(p[0].start, 2048);
	assert_int_equal(p[0].sectors, 4000);
	assert_int_equal(p[0].type, 0x0C);
	assert_int_equal(p[0].flags, PART_F_BOOTABLE);
	assert_int_equal(p[0].scheme, PART_SCHEME_MBR);
	assert_string_equal(p[0].name, "");
	assert_int_equal(p[1].index, 3); /* numbered by slot, as Linux does */
	assert_int_equal(p[1].start + p[1].sectors, 10000);
	ramdev_free(r);
}

static void test_mbr_errors(void **state)
{
	(void)state;
	struct ramdev *r = ramdev_new(10000, 16, RAMDEV_ZEROES);
	struct part_iter it;
	struct part_info p;
	assert_int_equal(part_open(&it, &r->blk), PART_E_NO_SIGNATURE);
	assert_int_equal(part_next(&it, &p), PART_E_END);
	mbr_entry(sec(r, 0), 0, 0x00, 0x0C, 2048, 4000);
	sec(r, 0)[MBR_PART_OFF + 16] = 0x29; /* a FAT boot sector's code where entry 1 would be */
	assert_int_equal(part_open(&it, &r->blk), PART_E_BOOT_FLAG);
	sec(r, 0)[MBR_PART_OFF + 16] = 0;
	/* Beyond the disk: reported with the partition filled in, and iteration goes on. */
	mbr_entry(sec(r, 0), 1, 0, 0x07, 9000, 1001);
	mbr_entry(sec(r, 0), 3, 0, 0x07, 9500, 500);
	assert_int_equal(part_open(&it, &r->blk), PART_OK);
	assert_int_equal(part_next(&it, &p), PART_OK);
	assert_int_equal(part_next(&it, &p), PART_E_BEYOND_DISK);
	assert_int_equal(p.index, 2);
	assert_int_equal(p.start, 9000);
	assert_int_equal(part_next(&it, &p), PART_OK);
	assert_int_equal(p.index, 4);
	assert_int_equal(part_next(&it, &p), PART_E_END);
	/* A start past the end, too. */
	mbr_entry(sec(r, 0), 1, 0, 0x07, 0xFFFFFFF0u, 0x20);
	assert_int_equal(part_find(&it, &r->blk, 2, &p), PART_E_BEYOND_DISK);
	struct blk_window v;
	assert_int_equal(part_blk_init(&v, &r->blk, &p), PART_E_BEYOND_DISK);
	assert_int_equal(part_find(&it, &r->blk, 4, &p), PART_OK);
	assert_int_equal(part_find(&it, &r->blk, 3, &p), PART_E_NOT_FOUND);
	/* A disk that can't be read. */
	r->blk.sectors = 0;
	assert_int_equal(part_open(&it, &r->blk), PART_E_IO);
	assert_int_equal(part_open(NULL, &r->blk), PART_E_BAD_ARG);
	ramdev_free(r);
}

/* An extended partition at ext (sectors n) with EBRs at the given relative offsets. */
static void ebr(struct ramdev *r, uint32_t ext, uint32_t rel, uint8_t type, uint32_t start, uint32_t n, uint32_t next_rel, uint32_t next_n)
{
	uint8_t *s = sec(r, ext + rel);
	memset(s, 0, 512);
	mbr_entry(s, 0, 0, type, start, n);
	if (next_n)
		mbr_entry(s, 1, 0, 0x05, next_rel, next_n);
}

static void test_mbr_extended(void **state)
{
	(void)state;
	struct ramdev *r = ramdev_new(20000, 20000, RAMDEV_ZEROES);
	struct part_info p[16];
	int last;
	mbr_entry(sec(r, 0), 0, 0, 0x06, 63, 937);
	mbr_entry(sec(r, 0), 1, 0, 0x0F, 1000, 9000);
	mbr_entry(sec(r, 0), 2, 0, 0x0B, 10000, 1000);
	ebr(r, 1000, 0, 0x06, 63, 937, 1000, 2000);      /* logical 5 at 1063 */
	ebr(r, 1000, 1000, 0x00, 0, 0, 2000, 2000);      /* an empty EBR: no number */
	ebr(r, 1000, 2000, 0x83, 2048, 1000, 5000, 4000); /* logical 6 at 5048 */
	ebr(r, 1000, 5000, 0x0C, 1, 3999, 0, 0);         /* logical 7 at 6001, end */
	assert_int_equal(list_parts(r, p, 16, &last), 5);
	assert_int_equal(last, PART_E_END);
	assert_int_equal(p[0].index, 1);
	assert_int_equal(p[1].index, 3);
	assert_int_equal(p[2].index, 5);
	assert_int_equal(p[2].start, 1063);
	assert_int_equal(p[2].sectors, 937);
	assert_int_equal(p[2].flags, PART_F_LOGICAL);
	assert_int_equal(p[3].index, 6);
	assert_int_equal(p[3].start, 5048);
	assert_int_equal(p[3].type, 0x83);
	assert_int_equal(p[4].index, 7);
	assert_int_equal(p[4].start, 6001);
	/* A link back to an earlier EBR: a loop, found without reading forever. */
	ebr(r, 1000, 5000, 0x0C, 1, 3999, 1000, 100);
	assert_int_equal(list_parts(r, p, 16, &last), 5);
	assert_int_equal(last, PART_E_EXT_LOOP);
	/* A self-link of the first EBR. */
	ebr(r, 1000, 0, 0x06, 63, 937, 0, 2000);
	assert_int_equal(list_parts(r, p, 16, &last), 3);
	assert_int_equal(last, PART_E_EXT_LOOP);
	/* A link outside the extended partition. */
	ebr(r, 1000, 0, 0x06, 63, 937, 9000, 100);
	list_parts(r, p, 16, &last);
	assert_int_equal(last, PART_E_EXT_RANGE);
	/* An EBR without its signature. */
	ebr(r, 1000, 0, 0x06, 63, 937, 1000, 100);
	sec(r, 2000)[511] = 0;
	list_parts(r, p, 16, &last);
	assert_int_equal(last, PART_E_EXT_SIGNATURE);
	/* A logical partition past the disk's end is reported, and the chain goes on. */
	ebr(r, 1000, 0, 0x06, 63, 30000, 2000, 100);
	ebr(r, 1000, 2000, 0x06, 1, 99, 0, 0);
	struct part_iter it;
	struct part_info q;
	assert_int_equal(part_open(&it, &r->blk), PART_OK);
	assert_int_equal(part_next(&it, &q), PART_OK);
	assert_int_equal(part_next(&it, &q), PART_OK);
	assert_int_equal(part_next(&it, &q), PART_E_BEYOND_DISK);
	assert_int_equal(q.index, 5);
	assert_int_equal(part_next(&it, &q), PART_OK);
	assert_int_equal(q.index, 6);
	assert_int_equal(q.start, 3001);
	ramdev_free(r);
}

static void test_mbr_extended_too_many(void **state)
{
	(void)state;
	struct ramdev *r = ramdev_new(4000, 4000, RAMDEV_ZEROES);
	struct part_info *p = calloc(200, sizeof(*p));
	int last, i;
	mbr_entry(sec(r, 0), 0, 0, 0x05, 100, 3800);
	for (i = 0; i < 200; i++)
		ebr(r, 100, (uint32_t)i * 10, 0x06, 1, 9, (uint32_t)(i + 1) * 10, 10);
	assert_int_equal(list_parts(r, p, 200, &last), PART_MAX_LOGICAL);
	assert_int_equal(last, PART_E_EXT_TOO_MANY);
	assert_int_equal(p[PART_MAX_LOGICAL - 1].index, 4 + PART_MAX_LOGICAL);
	free(p);
	ramdev_free(r);
}

/* ------------------------------------------------------------------ GPT builder */

static const uint8_t guid_basic[16] = { 0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44,
					0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7 };

/* Write a GPT header at lba (entries at elba) over the entry array already in place; fix both CRCs. */
static void gpt_header(struct ramdev *r, uint64_t lba, uint64_t alt, uint64_t elba, uint32_t n, uint32_t esize)
{
	uint8_t *h = sec(r, lba);
	uint32_t bytes = n * esize;
	memset(h, 0, 512);
	memcpy(h, "EFI PART", 8);
	put32(h + 8, 0x00010000);
	put32(h + 12, 92);
	put64(h + 24, lba);
	put64(h + 32, alt);
	put64(h + 40, 34);
	put64(h + 48, r->blk.sectors - 34);
	memset(h + 56, 0x11, 16);
	put64(h + 72, elba);
	put32(h + 80, n);
	put32(h + 84, esize);
	put32(h + 88, part_crc32(0, sec(r, elba), bytes));
	put32(h + 16, part_crc32(0, h, 92));
}

static void gpt_fix_crc(struct ramdev *r, uint64_t lba)
{
	uint8_t *h = sec(r, lba);
	put32(h + 16, 0);
	put32(h + 16, part_crc32(0, h, 92));
}

static void gpt_entry(struct ramdev *r, uint64_t elba, uint32_t i, uint64_t first, uint64_t last, const uint16_t *name)
{
	uint8_t *e = r->data + elba * 512 + (uint64_t)i * 128;
	memcpy(e, guid_basic, 16);
	memset(e + 16, (int)i + 1, 16);
	put64(e + 32, first);
	put64(e + 40, last);
	put64(e + 48, 1ull << 63);
	for (int k = 0; name && name[k] && k < 36; k++)
		put16(e + 56 + 2 * k, name[k]);
}

/* A 20000-sector GPT disk with two partitions, primary and backup tables. */
static struct ramdev *gpt_disk(void)
{
	struct ramdev *r = ramdev_new(20000, 20000, RAMDEV_ZEROES);
	static const uint16_t name1[] = { 'E', 'F', 'I', ' ', 0x00E9, 't', 0xD83D, 0xDE00, 0 }; /* é and U+1F600 */
	static const uint16_t name2[] = { 'd', 'a', 't', 'a', 0 };
	mbr_entry(sec(r, 0), 0, 0, MBR_TYPE_GPT, 1, 19999);
	gpt_entry(r, 2, 0, 2048, 4095, name1);
	gpt_entry(r, 2, 5, 4096, 19966, name2);
	memcpy(sec(r, 19967), sec(r, 2), 32 * 512);
	gpt_header(r, 1, 19999, 2, 128, 128);
	gpt_header(r, 19999, 1, 19967, 128, 128);
	return r;
}

static void test_gpt(void **state)
{
	(void)state;
	struct ramdev *r = gpt_disk();
	struct part_info p[8];
	struct part_iter it;
	char g[37];
	int last;
	assert_int_equal(list_parts(r, p, 8, &last), 2);
	assert_int_equal(last, PART_E_END);
	assert_int_equal(p[0].scheme, PART_SCHEME_GPT);
	assert_int_equal(p[0].index, 1);
	assert_int_equal(p[0].start, 2048);
	assert_int_equal(p[0].sectors, 2048);
	assert_string_equal(p[0].name, "EFI \xC3\xA9t\xF0\x9F\x98\x80");
	assert_int_equal(p[0].attrs, 1ull << 63);
	part_guid_str(p[0].type_guid, g);
	assert_string_equal(g, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");
	assert_int_equal(p[0].type, 0);
	assert_int_equal(p[1].index, 6);
	assert_int_equal(p[1].sectors, 19966 - 4096 + 1);
	assert_string_equal(p[1].name, "data");
	assert_int_equal(part_open(&it, &r->blk), PART_OK);
	assert_int_equal(it.state, 0);
	/* Hybrid MBR (0xEE plus a FAT entry): the GPT wins. */
	mbr_entry(sec(r, 0), 1, 0, 0x0C, 2048, 2048);
	assert_int_equal(list_parts(r, p, 8, &last), 2);
	assert_int_equal(p[1].index, 6);
	ramdev_free(r);
}

static void test_gpt_errors(void **state)
{
	(void)state;
	struct ramdev *r = gpt_disk();
	struct part_iter it;
	struct part_info p[8];
	int last;
	/* Primary header CRC broken: the backup at the last LBA takes over. */
	sec(r, 1)[40] ^= 1;
	assert_int_equal(part_open(&it, &r->blk), PART_OK);
	assert_int_equal(it.state, PART_ST_GPT_BACKUP);
	assert_int_equal(it.primary_err, PART_E_GPT_HEADER_CRC);
	assert_int_equal(list_parts(r, p, 8, &last), 2);
	assert_int_equal(p[1].start, 4096);
	/* Both broken: the primary's reason. */
	sec(r, 19999)[40] ^= 1;
	assert_int_equal(part_open(&it, &r->blk), PART_E_GPT_HEADER_CRC);
	ramdev_free(r);

	struct {
		int off, width;
		uint64_t val;
		int want;
	} cases[] = {
		{ 0, 1, 'X', PART_E_GPT_SIGNATURE },
		{ 8, 4, 0x00020000, PART_E_GPT_REVISION },
		{ 12, 4, 91, PART_E_GPT_HEADER_SIZE },
		{ 12, 4, 513, PART_E_GPT_HEADER_SIZE },
		{ 24, 8, 2, PART_E_GPT_MY_LBA },
		{ 84, 4, 64, PART_E_GPT_ENTRY_SIZE },
		{ 84, 4, 384, PART_E_GPT_ENTRY_SIZE },
		{ 80, 4, 0, PART_E_GPT_ENTRY_COUNT },
		{ 80, 4, 5000, PART_E_GPT_ENTRY_COUNT },
		{ 72, 8, 19990, PART_E_GPT_ENTRIES_RANGE },
		{ 72, 8, 1, PART_E_GPT_ENTRIES_RANGE },
		{ 88, 4, 0x12345678, PART_E_GPT_ENTRIES_CRC },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = gpt_disk();
		memset(sec(r, 19999), 0, 512); /* no backup */
		uint8_t *h = sec(r, 1);
		if (cases[i].width == 1)
			h[cases[i].off] = (uint8_t)cases[i].val;
		else if (cases[i].width == 4)
			put32(h + cases[i].off, (uint32_t)cases[i].val);
		else
			put64(h + cases[i].off, cases[i].val);
		gpt_fix_crc(r, 1);
		print_message("gpt case %zu\n", i);
		assert_int_equal(part_open(&it, &r->blk), cases[i].want);
		ramdev_free(r);
	}
	/* A header CRC mismatch without a backup. */
	r = gpt_disk();
	memset(sec(r, 19999), 0, 512);
	sec(r, 1)[60] ^= 0xFF;
	assert_int_equal(part_open(&it, &r->blk), PART_E_GPT_HEADER_CRC);
	ramdev_free(r);
	/* Entries: past the disk, and backwards. */
	r = gpt_disk();
	gpt_entry(r, 2, 0, 2048, 20000, NULL);
	gpt_entry(r, 2, 1, 3000, 2999, NULL);
	gpt_header(r, 1, 19999, 2, 128, 128);
	assert_int_equal(part_open(&it, &r->blk), PART_OK);
	assert_int_equal(part_next(&it, &p[0]), PART_E_BEYOND_DISK);
	assert_int_equal(p[0].index, 1);
	assert_int_equal(part_next(&it, &p[0]), PART_E_GPT_BAD_RANGE);
	assert_int_equal(p[0].index, 2);
	assert_int_equal(part_next(&it, &p[0]), PART_OK);
	assert_int_equal(p[0].index, 6);
	assert_int_equal(part_next(&it, &p[0]), PART_E_END);
	ramdev_free(r);
}

static void test_part_blk(void **state)
{
	(void)state;
	struct ramdev *r = ramdev_new(1000, 1000, RAMDEV_ZEROES);
	struct part_info p = { .index = 1, .start = 100, .sectors = 50 };
	struct blk_window v;
	struct blk_dev *d = &v.dev;
	uint8_t buf[3 * 512];
	memset(sec(r, 100), 0xAB, 512);
	memset(sec(r, 149), 0xCD, 512);
	assert_int_equal(part_blk_init(&v, &r->blk, &p), PART_OK);
	assert_int_equal(d->sectors, 50);
	assert_int_equal(d->size_bytes, 50 * 512);
	assert_int_equal(d->max_sectors, 50);
	assert_int_equal(d->read_only, 0);
	assert_int_equal(blk_read(d, 0, 1, buf), BLK_OK);
	assert_int_equal(buf[0], 0xAB);
	assert_int_equal(blk_read(d, 49, 1, buf), BLK_OK);
	assert_int_equal(buf[511], 0xCD);
	assert_int_equal(blk_read(d, 49, 2, buf), BLK_E_RANGE);
	assert_int_equal(blk_read(d, 50, 1, buf), BLK_E_RANGE);
	assert_int_equal(blk_read(d, UINT64_MAX, 2, buf), BLK_E_RANGE);
	memset(buf, 0x11, sizeof(buf));
	assert_int_equal(blk_write(d, 48, 2, buf), BLK_OK);
	assert_int_equal(r->last_lba, 148);
	assert_int_equal(sec(r, 149)[0], 0x11);
	assert_int_equal(blk_write(d, 48, 3, buf), BLK_E_NOSPACE);
	assert_int_equal(blk_write_zeroes(d, 49, 1), BLK_OK);
	assert_int_equal(sec(r, 149)[0], 0);
	assert_int_equal(blk_write_zeroes(d, 49, 2), BLK_E_NOSPACE);
	assert_int_equal(blk_flush(d), BLK_OK);
	assert_int_equal(r->flushes, 1);
	/* read-only carries over; no write_zeroes below means none above. */
	r->blk.read_only = 1;
	r->blk.write_zeroes = NULL;
	assert_int_equal(part_blk_init(&v, &r->blk, &p), PART_OK);
	assert_int_equal(d->read_only, 1);
	assert_null(d->write_zeroes);
	assert_int_equal(blk_write(d, 0, 1, buf), BLK_E_RO);
	p.sectors = 901;
	assert_int_equal(part_blk_init(&v, &r->blk, &p), PART_E_BEYOND_DISK);
	ramdev_free(r);
}

/* ------------------------------------------------------------------ FAT builder */

struct fimg {
	struct ramdev *r;
	int type;
	uint32_t total, spc, reserved, fats, fatsz, root_entries, root_start, root_sectors, data_start, clusters;
};

/* Format a volume of total sectors (backed up to cap sectors) as FAT type with spc sectors per cluster. */
static struct fimg fmk(int type, uint32_t total, uint32_t spc, uint32_t cap)
{
	struct fimg f = { .type = type, .total = total, .spc = spc, .fats = 2 };
	uint8_t *b;
	f.r = ramdev_new(total, cap, RAMDEV_ZEROES);
	f.reserved = type == 32 ? 32 : 1;
	f.root_entries = type == 32 ? 0 : 512;
	f.root_sectors = f.root_entries * 32 / 512;
	for (f.fatsz = 1;; f.fatsz++) {
		uint32_t data = total - f.reserved - f.fats * f.fatsz - f.root_sectors;
		uint32_t cl = data / spc;
		uint32_t need = type == 12 ? ((cl + 2) * 3 + 1) / 2 : (cl + 2) * (uint32_t)(type / 8);
		if (f.fatsz * 512 >= need) {
			f.clusters = cl;
			break;
		}
	}
	f.root_start = f.reserved + f.fats * f.fatsz;
	f.data_start = f.root_start + f.root_sectors;
	b = sec(f.r, 0);
	b[0] = 0xEB;
	b[1] = 0x3C;
	b[2] = 0x90;
	memcpy(b + 3, "MSWIN4.1", 8);
	put16(b + 11, 512);
	b[13] = (uint8_t)spc;
	put16(b + 14, (uint16_t)f.reserved);
	b[16] = (uint8_t)f.fats;
	put16(b + 17, (uint16_t)f.root_entries);
	if (total < 65536)
		put16(b + 19, (uint16_t)total);
	else
		put32(b + 32, total);
	b[21] = 0xF8;
	if (type == 32) {
		put32(b + 36, f.fatsz);
		put32(b + 44, 2);
		b[66] = 0x29;
		put32(b + 67, 0x12345678);
		memcpy(b + 71, "MYLABEL    ", 11);
	} else {
		put16(b + 22, (uint16_t)f.fatsz);
		b[38] = 0x29;
		put32(b + 39, 0xCAFEF00D);
		memcpy(b + 43, "NO NAME    ", 11);
	}
	b[510] = 0x55;
	b[511] = 0xAA;
	return f;
}

/* Set FAT entry c to val in every FAT copy. */
static void fset(struct fimg *f, uint32_t c, uint32_t val)
{
	for (uint32_t k = 0; k < f->fats; k++) {
		uint8_t *fat = f->r->data + (uint64_t)(f->reserved + k * f->fatsz) * 512;
		if (f->type == 12) {
			uint32_t off = c + c / 2;
			uint16_t v = (uint16_t)(fat[off] | fat[off + 1] << 8);
			v = (c & 1) ? (uint16_t)((v & 0x000F) | (val << 4)) : (uint16_t)((v & 0xF000) | (val & 0xFFF));
			put16(fat + off, v);
		} else if (f->type == 16) {
			put16(fat + c * 2, (uint16_t)val);
		} else {
			put32(fat + c * 4, val);
		}
	}
}

static uint32_t feoc(const struct fimg *f)
{
	return f->type == 12 ? 0xFFF : f->type == 16 ? 0xFFFF : 0x0FFFFFFF;
}

/* Chain clusters c[0..n) in order, the last one end-of-chain. */
static void fchain(struct fimg *f, const uint32_t *c, int n)
{
	for (int i = 0; i < n; i++)
		fset(f, c[i], i + 1 < n ? c[i + 1] : feoc(f));
}

static uint8_t *fclus(struct fimg *f, uint32_t c)
{
	return sec(f->r, f->data_start + (uint64_t)(c - 2) * f->spc);
}

/* Pointer to 32-byte entry idx of the directory starting at cluster dc (0: the fixed root), following the chain in order of dcs. */
static uint8_t *fslot(struct fimg *f, const uint32_t *dcs, uint32_t idx)
{
	uint32_t per = f->spc * 16;
	if (!dcs)
		return sec(f->r, f->root_start) + idx * 32;
	return fclus(f, dcs[idx / per]) + (idx % per) * 32;
}

static void fshort(uint8_t *e, const char *name11, uint8_t attr, uint32_t cluster, uint32_t size)
{
	memset(e, 0, 32);
	memcpy(e, name11, 11);
	e[11] = attr;
	put16(e + 20, (uint16_t)(cluster >> 16));
	put16(e + 26, (uint16_t)cluster);
	put32(e + 28, size);
}

static uint8_t lfn_sum(const char *name11)
{
	uint8_t s = 0;
	for (int i = 0; i < 11; i++)
		s = (uint8_t)(((s & 1) << 7) + (s >> 1) + (uint8_t)name11[i]);
	return s;
}

/* Write UTF-16 long name u (n units) + short entry at dir slots idx..; returns the next free slot. */
static uint32_t flong16(struct fimg *f, const uint32_t *dcs, uint32_t idx, const uint16_t *u, int n,
			const char *name11, uint8_t attr, uint32_t cluster, uint32_t size)
{
	int parts = (n + 12) / 13;
	static const int pos[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	for (int p = parts; p >= 1; p--) {
		uint8_t *e = fslot(f, dcs, idx++);
		memset(e, 0, 32);
		e[0] = (uint8_t)(p | (p == parts ? 0x40 : 0));
		e[11] = 0x0F;
		e[13] = lfn_sum(name11);
		for (int k = 0; k < 13; k++) {
			int i = (p - 1) * 13 + k;
			put16(e + pos[k], i < n ? u[i] : i == n ? 0 : 0xFFFF);
		}
	}
	fshort(fslot(f, dcs, idx++), name11, attr, cluster, size);
	return idx;
}

static uint32_t flong(struct fimg *f, const uint32_t *dcs, uint32_t idx, const char *ascii, const char *name11,
		      uint8_t attr, uint32_t cluster, uint32_t size)
{
	uint16_t u[260];
	int n = 0;
	while (ascii[n]) {
		u[n] = (uint8_t)ascii[n];
		n++;
	}
	return flong16(f, dcs, idx, u, n, name11, attr, cluster, size);
}

static void test_fat_mount_types(void **state)
{
	(void)state;
	struct fat_vol v;
	struct fimg f12 = fmk(12, 4000, 1, 64);
	assert_int_equal(fat_mount(&v, &f12.r->blk), FAT_OK);
	assert_int_equal(v.type, 12);
	assert_int_equal(v.clusters, f12.clusters);
	assert_int_equal(v.data_start, f12.data_start);
	assert_int_equal(v.root_start, f12.root_start);
	assert_int_equal(v.root_sectors, 32);
	assert_int_equal(v.serial, 0xCAFEF00D);
	assert_string_equal(v.label, "NO NAME");
	ramdev_free(f12.r);
	struct fimg f16 = fmk(16, 40000, 4, 512);
	assert_int_equal(fat_mount(&v, &f16.r->blk), FAT_OK);
	assert_int_equal(v.type, 16);
	assert_int_equal(v.sec_per_clus, 4);
	assert_int_equal(v.clus_shift, 2);
	ramdev_free(f16.r);
	struct fimg f32 = fmk(32, 70000, 1, 2048);
	assert_int_equal(fat_mount(&v, &f32.r->blk), FAT_OK);
	assert_int_equal(v.type, 32);
	assert_true(v.clusters >= 65525);
	assert_int_equal(v.root_cluster, 2);
	assert_int_equal(v.root_sectors, 0);
	assert_string_equal(v.label, "MYLABEL");
	/* Microsoft's boundaries: 4084 clusters is FAT12, 4085 FAT16 (the BPB layouts agree). */
	ramdev_free(f32.r);
}

/* Mount after a one-field change at off (width 1, 2 or 4 bytes). */
static int mount_with(struct fimg *f, int off, int width, uint32_t val)
{
	struct fat_vol v;
	uint8_t save[4];
	uint8_t *b = sec(f->r, 0);
	int rc;
	memcpy(save, b + off, 4);
	if (width == 1)
		b[off] = (uint8_t)val;
	else if (width == 2)
		put16(b + off, (uint16_t)val);
	else
		put32(b + off, val);
	rc = fat_mount(&v, &f->r->blk);
	memcpy(b + off, save, 4);
	return rc;
}

static void test_fat_bpb_errors(void **state)
{
	(void)state;
	struct fimg f = fmk(16, 40000, 4, 512);
	struct fat_vol v;
	assert_int_equal(mount_with(&f, 510, 1, 0x54), FAT_E_SIGNATURE);
	assert_int_equal(mount_with(&f, 0, 1, 0x00), FAT_E_JUMP);
	assert_int_equal(mount_with(&f, 0, 1, 0xE9), FAT_OK);
	assert_int_equal(mount_with(&f, 11, 2, 1000), FAT_E_SECTOR_SIZE);
	assert_int_equal(mount_with(&f, 11, 2, 256), FAT_E_SECTOR_SIZE);
	assert_int_equal(mount_with(&f, 11, 2, 8192), FAT_E_SECTOR_SIZE);
	assert_int_equal(mount_with(&f, 11, 2, 4096), FAT_E_SECTOR_SIZE_UNSUPPORTED);
	assert_int_equal(mount_with(&f, 11, 2, 1024), FAT_E_SECTOR_SIZE_UNSUPPORTED);
	assert_int_equal(mount_with(&f, 13, 1, 3), FAT_E_CLUSTER_SIZE);
	assert_int_equal(mount_with(&f, 13, 1, 0), FAT_E_CLUSTER_SIZE);
	assert_int_equal(mount_with(&f, 14, 2, 0), FAT_E_RESERVED);
	assert_int_equal(mount_with(&f, 16, 1, 0), FAT_E_NO_FATS);
	assert_int_equal(mount_with(&f, 21, 1, 0x12), FAT_E_MEDIA);
	assert_int_equal(mount_with(&f, 21, 1, 0xF0), FAT_OK);
	assert_int_equal(mount_with(&f, 19, 2, 0), FAT_E_TOTAL_SECTORS);
	assert_int_equal(mount_with(&f, 17, 2, 0), FAT_E_ROOT_ENTRIES);
	assert_int_equal(mount_with(&f, 14, 2, 39990), FAT_E_LAYOUT);
	assert_int_equal(mount_with(&f, 22, 2, (uint16_t)(f.fatsz - 1)), FAT_E_FAT_TOO_SMALL);
	/* Volume larger than its device. */
	f.r->blk.sectors = 39999;
	assert_int_equal(fat_mount(&v, &f.r->blk), FAT_E_BEYOND_DEVICE);
	f.r->blk.sectors = 40000;
	/* A FAT16 BPB with no FATSz16 is read as the FAT32 layout: its FATSz32 (the FAT16 serial here) is absurd. */
	assert_int_equal(mount_with(&f, 22, 2, 0), FAT_E_LAYOUT);
	put32(sec(f.r, 0) + 36, 0);
	assert_int_equal(mount_with(&f, 22, 2, 0), FAT_E_FAT_SIZE);
	ramdev_free(f.r);
	/* Bigger clusters: the same BPB with 64 sectors per cluster counts < 4085 clusters: FAT12 by the rule. */
	f = fmk(16, 40000, 4, 512);
	assert_int_equal(mount_with(&f, 13, 1, 64), FAT_OK);
	ramdev_free(f.r);

	struct fimg g = fmk(32, 70000, 1, 2048);
	assert_int_equal(mount_with(&g, 44, 4, 1), FAT_E_ROOT_CLUSTER);
	assert_int_equal(mount_with(&g, 44, 4, g.clusters + 2), FAT_E_ROOT_CLUSTER);
	assert_int_equal(mount_with(&g, 44, 4, g.clusters + 1), FAT_OK);
	assert_int_equal(mount_with(&g, 42, 2, 0x0001), FAT_E_FS_VERSION);
	assert_int_equal(mount_with(&g, 40, 2, 0x0082), FAT_E_ACTIVE_FAT);
	assert_int_equal(mount_with(&g, 40, 2, 0x0081), FAT_OK);
	assert_int_equal(mount_with(&g, 40, 2, 0x0002), FAT_OK); /* mirroring on: the active number is ignored */
	assert_int_equal(mount_with(&g, 17, 2, 16), FAT_E_ROOT_ENTRIES);
	assert_int_equal(mount_with(&g, 36, 4, 0), FAT_E_FAT_SIZE);
	/* FAT32 layout with 8 sectors per cluster: < 65525 clusters (mkfs.fat -F 32 on a small volume). */
	assert_int_equal(mount_with(&g, 13, 1, 8), FAT_E_TYPE_MISMATCH);
	/* FAT16 layout (FATSz16 set) but a FAT32-sized cluster count. */
	assert_int_equal(mount_with(&g, 22, 2, 600), FAT_E_TYPE_MISMATCH);
	/* Mirroring off with FAT 1 active: the chain lookups read the second copy. */
	put16(sec(g.r, 0) + 40, 0x0081);
	assert_int_equal(fat_mount(&v, &g.r->blk), FAT_OK);
	assert_int_equal(v.fat_start, g.reserved + g.fatsz);
	ramdev_free(g.r);
	assert_int_equal(fat_mount(NULL, NULL), FAT_E_BAD_ARG);
}

static void test_fat_chain(void **state)
{
	(void)state;
	struct fimg f = fmk(12, 4000, 1, 64);
	struct fat_vol v;
	uint32_t n;
	/* FAT12 entries 341 and 682 straddle sector boundaries (byte offsets 511 and 1023). */
	fset(&f, 340, 341);
	fset(&f, 341, 682);
	fset(&f, 682, 0xFF8);
	fset(&f, 683, 0xFA0); /* 4000 > clusters + 1 */
	fset(&f, 10, 0xFF7);
	fset(&f, 11, 0);
	fset(&f, 12, 1);
	fset(&f, 13, 0xFF0);
	fset(&f, 14, 3900);
	assert_int_equal(fat_mount(&v, &f.r->blk), FAT_OK);
	assert_int_equal(fat_next_cluster(&v, 340, &n), FAT_OK);
	assert_int_equal(n, 341);
	assert_int_equal(fat_next_cluster(&v, 341, &n), FAT_OK);
	assert_int_equal(n, 682);
	assert_int_equal(fat_next_cluster(&v, 682, &n), FAT_OK);
	assert_int_equal(n, FAT_EOC);
	assert_int_equal(fat_next_cluster(&v, 683, &n), FAT_E_CHAIN_RANGE);
	assert_int_equal(fat_next_cluster(&v, 10, &n), FAT_E_CHAIN_BAD);
	assert_int_equal(fat_next_cluster(&v, 11, &n), FAT_E_CHAIN_FREE);
	assert_int_equal(fat_next_cluster(&v, 12, &n), FAT_E_CHAIN_RANGE);
	assert_int_equal(fat_next_cluster(&v, 13, &n), FAT_E_CHAIN_RANGE);
	assert_int_equal(fat_next_cluster(&v, 14, &n), FAT_OK);
	assert_int_equal(fat_next_cluster(&v, 1, &n), FAT_E_CHAIN_RANGE);
	assert_int_equal(fat_next_cluster(&v, v.clusters + 2, &n), FAT_E_CHAIN_RANGE);
	assert_int_equal(fat_cluster_lba(&v, 2), f.data_start);
	/* A read failure of the FAT. */
	f.r->blk.sectors = 1;
	v.cache_valid = 0;
	assert_int_equal(fat_next_cluster(&v, 340, &n), FAT_E_IO);
	ramdev_free(f.r);
	/* FAT32: the top four bits are reserved. */
	struct fimg g = fmk(32, 70000, 1, 2048);
	fset(&g, 5, 0xF0000006);
	fset(&g, 6, 0xFFFFFFF8);
	fset(&g, 7, 0x0FFFFFF7);
	assert_int_equal(fat_mount(&v, &g.r->blk), FAT_OK);
	assert_int_equal(fat_next_cluster(&v, 5, &n), FAT_OK);
	assert_int_equal(n, 6);
	assert_int_equal(fat_next_cluster(&v, 6, &n), FAT_OK);
	assert_int_equal(n, FAT_EOC);
	assert_int_equal(fat_next_cluster(&v, 7, &n), FAT_E_CHAIN_BAD);
	ramdev_free(g.r);
}

/* All names in a directory listing, joined with '|'; returns the final status. */
static int list_names(struct fat_vol *v, const char *path, char *out, size_t cap)
{
	struct fat_file f;
	struct fat_dir d;
	int rc = fat_open_path(v, path, &f);
	out[0] = 0;
	if (rc == FAT_OK)
		rc = fat_dir_open(v, &f, &d);
	while (rc == FAT_OK && (rc = fat_dir_next(&d, &f)) == FAT_OK) {
		if (out[0])
			strncat(out, "|", cap - strlen(out) - 1);
		strncat(out, f.name, cap - strlen(out) - 1);
	}
	return rc;
}

static void test_fat_dir_names(void **state)
{
	(void)state;
	struct fimg f = fmk(16, 40000, 1, 512);
	struct fat_vol v;
	struct fat_file e;
	char names[4096];
	uint32_t i = 0;
	uint8_t *s;
	/* é, a surrogate pair (U+1F600) and an unpaired surrogate. */
	static const uint16_t uni[] = { 'c', 'a', 'f', 0x00E9, '-', 0xD83D, 0xDE00, '-', 0xDC00, '.', 'v', 'h', 'd' };
	fshort(fslot(&f, NULL, i++), "VOLUMELABEL", FAT_ATTR_VOLUME, 0, 0);
	fshort(fslot(&f, NULL, i++), "PLAIN   TXT", FAT_ATTR_ARCHIVE, 0, 0);
	i = flong(&f, NULL, i, "A long file name.vhd", "ALONGF~1VHD", FAT_ATTR_ARCHIVE, 0, 0);
	i = flong(&f, NULL, i, "exactly13char", "EXACTL~1   ", 0, 0, 0);                /* 13 units: no NUL */
	i = flong(&f, NULL, i, "a name that needs three entries.txt", "ANAMET~1TXT", 0, 0, 0);
	i = flong16(&f, NULL, i, uni, 13, "CAF--~1 VHD", 0, 0, 0);
	/* A long name whose checksum does not match its short entry: the 8.3 name wins. */
	i = flong(&f, NULL, i, "wrong checksum", "WRONGC~1   ", 0, 0, 0);
	fslot(&f, NULL, i - 1)[0] = 'X';
	/* A long name missing its middle part. */
	i = flong(&f, NULL, i, "a name that needs three entries too", "MISSIN~1   ", 0, 0, 0);
	fslot(&f, NULL, i - 3)[0] = 0xE5; /* deleting one part orphans the rest */
	/* Deleted entries, "." entries and the NT lower-case bits. */
	fshort(fslot(&f, NULL, i++), "\xE5" "ELETED TXT", 0, 0, 0);
	fshort(fslot(&f, NULL, i++), ".          ", FAT_ATTR_DIR, 0, 0);
	s = fslot(&f, NULL, i++);
	fshort(s, "LOWER   TXT", 0, 0, 0);
	s[12] = 0x08;
	s = fslot(&f, NULL, i++);
	fshort(s, "MIXED   TXT", 0, 0, 0);
	s[12] = 0x10;
	fshort(fslot(&f, NULL, i++), "\x05" "ABC    TXT", 0, 0, 0); /* 0x05 = 0xE5: CP437 sigma */
	fshort(fslot(&f, NULL, i++), "NOEXT      ", 0, 0, 0);
	/* An orphan LFN part right before a short entry without a name. */
	i = flong(&f, NULL, i, "orphan", "ORPHAN  X  ", 0, 0, 0);
	fslot(&f, NULL, i - 2)[0] = 0x02; /* ordinal 2 without the 0x40 start */
	/* The end marker: nothing after it counts. */
	i++;
	fshort(fslot(&f, NULL, i++), "AFTEREND   ", 0, 0, 0);
	assert_int_equal(fat_mount(&v, &f.r->blk), FAT_OK);
	assert_int_equal(list_names(&v, "/", names, sizeof(names)), FAT_E_END);
	assert_string_equal(names,
			    "PLAIN.TXT|A long file name.vhd|exactly13char|a name that needs three entries.txt|"
			    "caf\xC3\xA9-\xF0\x9F\x98\x80-\xEF\xBF\xBD.vhd|XRONGC~1|MISSIN~1|"
			    "lower.TXT|MIXED.txt|\xCF\x83" "ABC.TXT|NOEXT|ORPHAN.X");
	assert_int_equal(fat_open_path(&v, "/a long FILE name.VHD", &e), FAT_OK);
	assert_string_equal(e.short_name, "ALONGF~1.VHD");
	assert_int_equal(fat_open_path(&v, "alongf~1.vhd", &e), FAT_OK);
	assert_string_equal(e.name, "A long file name.vhd");
	assert_int_equal(fat_open_path(&v, "/afterend", &e), FAT_E_NOT_FOUND);
	assert_int_equal(fat_open_path(&v, "/VOLUMELABEL", &e), FAT_E_NOT_FOUND);
	ramdev_free(f.r);
}

/* A FAT16 volume: /images (2 clusters of entries) with sub/disk.vhd; root has win.vhd, notes.txt. */
static struct fimg tree16(void)
{
	struct fimg f = fmk(16, 40000, 1, 40000);
	static const uint32_t images[] = { 3, 9, 15 }, sub[] = { 4 }, vhdd[] = { 12 };
	uint32_t i = 0, j = 0;
	char nm[32], n11[12];
	i = flong(&f, NULL, i, "images", "IMAGES     ", FAT_ATTR_DIR, 3, 0);
	i = flong(&f, NULL, i, "win.vhd", "WIN     VHD", FAT_ATTR_ARCHIVE, 5, 1500);
	i = flong(&f, NULL, i, "notes.txt", "NOTES   TXT", FAT_ATTR_ARCHIVE, 0, 0);
	i = flong(&f, NULL, i, "vhd", "VHD        ", FAT_ATTR_DIR, 12, 0);
	(void)i;
	fchain(&f, images, 3);
	fchain(&f, sub, 1);
	fchain(&f, vhdd, 1);
	/* /images: ".", "..", 20 files filling into the second cluster, a sub directory last. */
	fshort(fslot(&f, images, j++), ".          ", FAT_ATTR_DIR, 3, 0);
	fshort(fslot(&f, images, j++), "..         ", FAT_ATTR_DIR, 0, 0);
	for (int k = 0; k < 20; k++) {
		snprintf(nm, sizeof(nm), "%s%02d.vhd", k % 2 ? "Disk" : "other", k);
		snprintf(n11, sizeof(n11), "F%02d     %s", k, k % 2 ? "VHD" : "VHX");
		j = k % 2 ? flong(&f, images, j, nm, n11, FAT_ATTR_ARCHIVE, 0, (uint32_t)k) : (fshort(fslot(&f, images, j), n11, 0, 0, (uint32_t)k), j + 1);
	}
	assert_true(j > 16);
	j = flong(&f, images, j, "sub", "SUB        ", FAT_ATTR_DIR, 4, 0);
	j = flong(&f, images, j, "dir.vhd", "DIR     VHD", FAT_ATTR_DIR, 4, 0); /* a directory named *.vhd */
	fshort(fslot(&f, sub, 0), ".          ", FAT_ATTR_DIR, 4, 0);
	fshort(fslot(&f, sub, 1), "..         ", FAT_ATTR_DIR, 3, 0);
	flong(&f, sub, 2, "Deep Disk.VHD", "DEEPDI~1VHD", 0, 0, 7);
	flong(&f, vhdd, 0, "x.vhd", "X       VHD", 0, 0, 1);
	return f;
}

struct found {
	char buf[2048];
	int n;
	int stop_at;
};

/* What the firmware's scan lists (kernel/scan.c's folders, the VHD format's suffix). */
static const char *const vhd_dirs[] = { "/", "/vhd", "/images", NULL };
static const char *const vhd_sfx[] = { ".vhd", NULL };

static int found_cb(void *ctx, const char *dir, const struct fat_file *f)
{
	struct found *fo = ctx;
	char line[900];
	snprintf(line, sizeof(line), "%s:%s:%u;", dir, f->name, f->size);
	strncat(fo->buf, line, sizeof(fo->buf) - strlen(fo->buf) - 1);
	return ++fo->n == fo->stop_at ? 42 : 0;
}

static void test_fat_paths(void **state)
{
	(void)state;
	struct fimg f = tree16();
	struct fat_vol v;
	struct fat_file e;
	struct fat_dir d;
	struct found fo = { .n = 0 };
	char names[4096];
	assert_int_equal(fat_mount(&v, &f.r->blk), FAT_OK);
	assert_int_equal(fat_open_path(&v, "/images/sub/deep disk.vhd", &e), FAT_OK);
	assert_int_equal(e.size, 7);
	assert_int_equal(fat_open_path(&v, "\\IMAGES\\SUB\\DEEPDI~1.VHD", &e), FAT_OK);
	assert_int_equal(fat_open_path(&v, "//images///./sub/", &e), FAT_OK);
	assert_true(e.attr & FAT_ATTR_DIR);
	assert_int_equal(e.first_cluster, 4);
	assert_int_equal(fat_open_path(&v, "", &e), FAT_OK);
	assert_int_equal(e.first_cluster, 0);
	assert_true(e.attr & FAT_ATTR_DIR);
	assert_int_equal(fat_open_path(&v, "/images/Disk19.vhd", &e), FAT_OK);
	assert_int_equal(e.size, 19);
	assert_int_equal(fat_open_path(&v, "/images/nothere", &e), FAT_E_NOT_FOUND);
	assert_int_equal(fat_open_path(&v, "/win.vhd/x", &e), FAT_E_NOT_DIR);
	assert_int_equal(fat_open_path(&v, "/images/../win.vhd", &e), FAT_E_BAD_PATH);
	assert_int_equal(fat_open_path(&v, "/win.vh", &e), FAT_E_NOT_FOUND);
	assert_int_equal(fat_open_path(&v, "/win.vhdx", &e), FAT_E_NOT_FOUND);
	memset(names, 'a', 800);
	names[800] = 0;
	assert_int_equal(fat_open_path(&v, names, &e), FAT_E_BAD_PATH);
	assert_int_equal(fat_open_path(&v, "/win.vhd", &e), FAT_OK);
	assert_int_equal(fat_dir_open(&v, &e, &d), FAT_E_NOT_DIR);
	assert_int_equal(list_names(&v, "/images/sub", names, sizeof(names)), FAT_E_END);
	assert_string_equal(names, "Deep Disk.VHD");
	/* *.vhd in /, /vhd and /images: not other*.vhx short names, not directories, not deeper. */
	assert_int_equal(fat_list_dirs(&v, vhd_dirs, vhd_sfx, found_cb, &fo), FAT_OK);
	assert_string_equal(fo.buf, "/:win.vhd:1500;/vhd:x.vhd:1;/images:Disk01.vhd:1;/images:Disk03.vhd:3;"
			    "/images:Disk05.vhd:5;/images:Disk07.vhd:7;/images:Disk09.vhd:9;/images:Disk11.vhd:11;"
			    "/images:Disk13.vhd:13;/images:Disk15.vhd:15;/images:Disk17.vhd:17;/images:Disk19.vhd:19;");
	memset(&fo, 0, sizeof(fo));
	fo.stop_at = 2;
	assert_int_equal(fat_list_dirs(&v, vhd_dirs, vhd_sfx, found_cb, &fo), 42);
	assert_int_equal(fat_list_suffix(&v, "/win.vhd", vhd_sfx, found_cb, &fo), FAT_E_NOT_DIR);
	assert_int_equal(fat_list_suffix(&v, "/none", vhd_sfx, found_cb, &fo), FAT_E_NOT_FOUND);
	/* Several suffixes (the format table's list): each file once, matching any of them. */
	{
		static const char *const vhx[] = { ".VHX", NULL }, *const both[] = { ".vhx", ".vhd", NULL };
		struct found one, other, all;
		memset(&one, 0, sizeof(one));
		memset(&other, 0, sizeof(other));
		memset(&all, 0, sizeof(all));
		assert_int_equal(fat_list_suffix(&v, "/images", vhd_sfx, found_cb, &one), FAT_OK);
		assert_int_equal(fat_list_suffix(&v, "/images", vhx, found_cb, &other), FAT_OK);
		assert_int_equal(fat_list_suffix(&v, "/images", both, found_cb, &all), FAT_OK);
		assert_true(one.n > 0 && other.n > 0);
		assert_int_equal(all.n, one.n + other.n);
	}
	/* Without /vhd and /images only the root counts. */
	fslot(&f, NULL, 0)[0] = 0xE5;
	fslot(&f, NULL, 1)[0] = 0xE5;
	fslot(&f, NULL, 6)[0] = 0xE5;
	fslot(&f, NULL, 7)[0] = 0xE5;
	memset(&fo, 0, sizeof(fo));
	assert_int_equal(fat_list_dirs(&v, vhd_dirs, vhd_sfx, found_cb, &fo), FAT_OK);
	assert_string_equal(fo.buf, "/:win.vhd:1500;");
	ramdev_free(f.r);
}

static void test_fat_dir_chain_errors(void **state)
{
	(void)state;
	struct fimg f = tree16();
	struct fat_vol v;
	char names[4096];
	assert_int_equal(fat_mount(&v, &f.r->blk), FAT_OK);
	fset(&f, 9, 3); /* /images: 3 -> 9 -> 3 ... */
	v.cache_valid = 0;
	assert_int_equal(list_names(&v, "/images", names, sizeof(names)), FAT_E_CHAIN_LOOP);
	fset(&f, 9, 0);
	v.cache_valid = 0;
	assert_int_equal(list_names(&v, "/images", names, sizeof(names)), FAT_E_CHAIN_FREE);
	fset(&f, 9, 0xFFF7);
	v.cache_valid = 0;
	assert_int_equal(list_names(&v, "/images", names, sizeof(names)), FAT_E_CHAIN_BAD);
	fset(&f, 9, 0xFFF8);
	v.cache_valid = 0;
	assert_int_equal(list_names(&v, "/images", names, sizeof(names)), FAT_E_END);
	/* A directory entry pointing outside the volume. */
	put16(fslot(&f, NULL, 1) + 26, 0xFFF0);
	assert_int_equal(list_names(&v, "/images", names, sizeof(names)), FAT_E_CHAIN_RANGE);
	/* Disk errors while listing. */
	put16(fslot(&f, NULL, 1) + 26, 3);
	f.r->blk.sectors = f.data_start + 2;
	assert_int_equal(fat_open_path(&v, "/images/sub/x", &(struct fat_file){ 0 }), FAT_E_IO);
	ramdev_free(f.r);
}

static void test_fat32_root_chain(void **state)
{
	(void)state;
	struct fimg f = fmk(32, 70000, 1, 2048);
	static const uint32_t root[] = { 2, 7, 5, 10, 11, 30 };
	struct fat_vol v;
	struct fat_file e;
	char nm[40], n11[12];
	uint32_t i = 0;
	fchain(&f, root, 6);
	for (int k = 0; k < 20; k++) {
		snprintf(nm, sizeof(nm), "a rather long file name %02d.vhd", k);
		snprintf(n11, sizeof(n11), "AR%02d~1  VHD", k);
		i = flong(&f, root, i, nm, n11, 0, 0x12345, (uint32_t)k * 1000);
	}
	assert_true(i > 32);
	assert_int_equal(fat_mount(&v, &f.r->blk), FAT_OK);
	assert_int_equal(fat_open_path(&v, "/A RATHER LONG FILE NAME 19.VHD", &e), FAT_OK);
	assert_int_equal(e.size, 19000);
	assert_int_equal(e.first_cluster, 0x12345); /* the high word counts on FAT32 */
	assert_int_equal(fat_open_path(&v, "/ar00~1.vhd", &e), FAT_OK);
	ramdev_free(f.r);
}

static void test_fat_dir_too_big(void **state)
{
	(void)state;
	/* FAT16, 32 KiB clusters: a 65-cluster directory of deleted entries is more than 65536 entries. */
	enum { NC = 65, SPC = 64 };
	struct fimg f = fmk(16, 300000, SPC, 3000 + (NC + 1) * SPC);
	struct fat_vol v;
	struct fat_dir d;
	struct fat_file e;
	uint32_t c[NC];
	for (int k = 0; k < NC; k++)
		c[k] = 2 + (uint32_t)k;
	fchain(&f, c, NC);
	assert_int_equal(fat_mount(&v, &f.r->blk), FAT_OK);
	assert_int_equal(v.type, 16);
	memset(fclus(&f, 2), 0xE5, NC * SPC * 512);
	for (uint32_t k = 0; k < NC * SPC * 16; k++)
		fclus(&f, 2)[k * 32 + 11] = 0;
	flong(&f, NULL, 0, "big", "BIG        ", FAT_ATTR_DIR, 2, 0);
	assert_int_equal(fat_open_path(&v, "/big", &e), FAT_OK);
	assert_int_equal(fat_dir_open(&v, &e, &d), FAT_OK);
	assert_int_equal(fat_dir_next(&d, &e), FAT_E_DIR_TOO_BIG);
	assert_int_equal(fat_dir_next(&d, &e), FAT_E_END);
	ramdev_free(f.r);
}

/* ------------------------------------------------------------------ extents */

/* A FAT16 volume whose /f is 'size' bytes in the given clusters (2 sectors each); sector s of the file holds byte s+1. */
static struct fimg ext_img(const uint32_t *c, int n, uint32_t size)
{
	struct fimg f = fmk(16, 40000, 2, 40000);
	fchain(&f, c, n);
	for (int i = 0; i < n; i++)
		for (uint32_t s = 0; s < 2; s++)
			memset(fclus(&f, c[i]) + s * 512, (int)(i * 2 + s + 1), 512);
	flong(&f, NULL, 0, "f", "F          ", 0, c[0], size);
	return f;
}

static void test_ext_build(void **state)
{
	(void)state;
	static const uint32_t c[] = { 5, 6, 7, 20, 21, 3, 100 };
	struct fimg f = ext_img(c, 7, 7 * 1024 - 100);
	struct fat_vol v;
	struct fat_file e;
	struct ext_map m;
	struct ext_run runs[8];
	assert_int_equal(fat_mount(&v, &f.r->blk), FAT_OK);
	assert_int_equal(fat_open_path(&v, "/f", &e), FAT_OK);
	assert_int_equal(ext_build(&v, &e, &m, runs, 3), EXT_E_OVERFLOW);
	assert_int_equal(m.needed, 4);
	assert_int_equal(m.count, 0);
	assert_int_equal(ext_build(&v, &e, &m, runs, 4), EXT_OK);
	assert_int_equal(m.count, 4);
	assert_int_equal(m.sectors, 14);
	assert_int_equal(m.alloc_sectors, 14);
	assert_int_equal(m.size_bytes, 7 * 1024 - 100);
	assert_int_equal(m.chain_longer, 0);
	assert_int_equal(runs[0].file_sector, 0);
	assert_int_equal(runs[0].sectors, 6);
	assert_int_equal(runs[0].lba, fat_cluster_lba(&v, 5));
	assert_int_equal(runs[1].file_sector, 6);
	assert_int_equal(runs[1].sectors, 4);
	assert_int_equal(runs[2].file_sector, 10);
	assert_int_equal(runs[2].sectors, 2);
	assert_int_equal(runs[2].lba, fat_cluster_lba(&v, 3));
	assert_int_equal(runs[3].file_sector, 12);
	for (uint32_t s = 0; s < 14; s++) {
		int32_t r = ext_find(&m, s);
		assert_true(r >= 0);
		assert_true(s >= runs[r].file_sector && s < runs[r].file_sector + runs[r].sectors);
	}
	assert_int_equal(ext_find(&m, 14), -1);
	assert_int_equal(ext_find(&m, UINT64_MAX), -1);
	/* The size needs only 5 clusters: the rest of the chain is ignored but noted. */
	put32(fslot(&f, NULL, 1) + 28, 5 * 1024);
	assert_int_equal(fat_open_path(&v, "/f", &e), FAT_OK);
	assert_int_equal(ext_build(&v, &e, &m, runs, 8), EXT_OK);
	assert_int_equal(m.count, 2);
	assert_int_equal(m.chain_longer, 1);
	/* Size zero: no runs. */
	put32(fslot(&f, NULL, 1) + 28, 0);
	assert_int_equal(fat_open_path(&v, "/f", &e), FAT_OK);
	assert_int_equal(ext_build(&v, &e, &m, NULL, 0), EXT_OK);
	assert_int_equal(m.count, 0);
	assert_int_equal(m.sectors, 0);
	/* Chain shorter than the size. */
	put32(fslot(&f, NULL, 1) + 28, 8 * 1024);
	assert_int_equal(fat_open_path(&v, "/f", &e), FAT_OK);
	assert_int_equal(ext_build(&v, &e, &m, runs, 8), EXT_E_CHAIN);
	assert_int_equal(m.fat_err, FAT_E_CHAIN_SHORT);
	/* A loop inside the file's length: runs would overlap. */
	put32(fslot(&f, NULL, 1) + 28, 7 * 1024);
	fset(&f, 21, 6);
	v.cache_valid = 0;
	assert_int_equal(fat_open_path(&v, "/f", &e), FAT_OK);
	assert_int_equal(ext_build(&v, &e, &m, runs, 8), EXT_E_CHAIN);
	assert_int_equal(m.fat_err, FAT_E_CHAIN_LOOP);
	/* A chain into a free cluster, a bad one, or out of range. */
	fset(&f, 21, 0);
	v.cache_valid = 0;
	assert_int_equal(ext_build(&v, &e, &m, runs, 8), EXT_E_CHAIN);
	assert_int_equal(m.fat_err, FAT_E_CHAIN_FREE);
	e.first_cluster = 0;
	assert_int_equal(ext_build(&v, &e, &m, runs, 8), EXT_E_CHAIN);
	assert_int_equal(m.fat_err, FAT_E_CHAIN_SHORT);
	e.first_cluster = 60000;
	assert_int_equal(ext_build(&v, &e, &m, runs, 8), EXT_E_CHAIN);
	assert_int_equal(m.fat_err, FAT_E_CHAIN_RANGE);
	e.attr = FAT_ATTR_DIR;
	assert_int_equal(ext_build(&v, &e, &m, runs, 8), EXT_E_IS_DIR);
	assert_int_equal(ext_build(&v, NULL, &m, runs, 8), EXT_E_BAD_ARG);
	ramdev_free(f.r);
}

static void test_ext_blk(void **state)
{
	(void)state;
	static const uint32_t c[] = { 5, 6, 7, 20, 21, 3, 100 };
	struct fimg f = ext_img(c, 7, 6 * 1024 + 700); /* 7 clusters, 14 sectors: last sector has 188 bytes */
	struct fat_vol v;
	struct fat_file e;
	struct ext_map m;
	struct ext_run runs[8];
	struct blk_dev b;
	uint8_t buf[16 * 512];
	assert_int_equal(fat_mount(&v, &f.r->blk), FAT_OK);
	assert_int_equal(fat_open_path(&v, "/f", &e), FAT_OK);
	assert_int_equal(ext_build(&v, &e, &m, runs, 8), EXT_OK);
	ext_blk_init(&m, &b);
	assert_int_equal(b.sectors, 14);
	assert_int_equal(b.size_bytes, 6 * 1024 + 700);
	assert_int_equal(b.max_sectors, 14);
	assert_int_equal(b.read_only, 0);
	assert_non_null(b.write_zeroes);
	/* One request over all four runs: split, in order. */
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(blk_read(&b, 0, 14, buf), BLK_OK);
	for (int s = 0; s < 13; s++)
		for (int k = 0; k < 512; k += 97)
			assert_int_equal(buf[s * 512 + k], s + 1);
	assert_int_equal(buf[13 * 512 + 187], 14);
	assert_int_equal(buf[13 * 512 + 188], 0); /* after the end of the file: zeros */
	assert_int_equal(buf[13 * 512 + 511], 0);
	assert_int_equal(blk_read(&b, 5, 2, buf), BLK_OK); /* across a run boundary */
	assert_int_equal(buf[0], 6);
	assert_int_equal(buf[512], 7);
	assert_int_equal(blk_read(&b, 14, 1, buf), BLK_E_RANGE);
	assert_int_equal(blk_read(&b, 13, 2, buf), BLK_E_RANGE);
	assert_int_equal(blk_read(&b, UINT64_MAX, 1, buf), BLK_E_RANGE);
	assert_int_equal(blk_read(&b, 14, 0, buf), BLK_OK);
	/* Writes land in the file's own sectors. */
	memset(buf, 0xEE, sizeof(buf));
	int w0 = f.r->writes;
	assert_int_equal(blk_write(&b, 9, 3, buf), BLK_OK); /* sectors 9 | 10-11: two runs */
	assert_int_equal(f.r->writes - w0, 2);
	assert_int_equal(fclus(&f, 21)[512], 0xEE);
	assert_int_equal(fclus(&f, 3)[0], 0xEE);
	assert_int_equal(fclus(&f, 3)[1023], 0xEE);
	assert_int_equal(fclus(&f, 100)[0], 13);
	assert_int_equal(blk_write(&b, 13, 1, buf), BLK_OK); /* the partial last sector */
	/* Past the file: the directory entry would have to change, or a cluster be added. */
	assert_int_equal(blk_write(&b, 14, 1, buf), BLK_E_NOSPACE);
	assert_int_equal(blk_write(&b, 13, 2, buf), BLK_E_NOSPACE);
	assert_int_equal(blk_write(&b, 100, 1, buf), BLK_E_NOSPACE);
	assert_int_equal(blk_write_zeroes(&b, 4, 4), BLK_OK);
	assert_int_equal(fclus(&f, 7)[0], 0);
	assert_int_equal(fclus(&f, 20)[1023], 0);
	assert_int_equal(fclus(&f, 20)[1024], 0xEE - 0xEE + fclus(&f, 20)[1024]);
	assert_int_equal(blk_write_zeroes(&b, 10, 5), BLK_E_NOSPACE);
	assert_int_equal(blk_flush(&b), BLK_OK);
	assert_int_equal(f.r->flushes, 1);
	/* A file whose size ends inside its last cluster: sectors past the size are refused. */
	put32(fslot(&f, NULL, 1) + 28, 6 * 1024 + 100);
	assert_int_equal(fat_open_path(&v, "/f", &e), FAT_OK);
	assert_int_equal(ext_build(&v, &e, &m, runs, 8), EXT_OK);
	ext_blk_init(&m, &b);
	assert_int_equal(b.sectors, 13);
	assert_int_equal(m.alloc_sectors, 14);
	assert_int_equal(blk_write(&b, 13, 1, buf), BLK_E_NOSPACE);
	assert_int_equal(blk_read(&b, 13, 1, buf), BLK_E_RANGE);
	/* Read-only underneath: read-only on top. */
	f.r->blk.read_only = 1;
	f.r->blk.write_zeroes = NULL;
	ext_blk_init(&m, &b);
	assert_int_equal(b.read_only, 1);
	assert_null(b.write_zeroes);
	assert_int_equal(blk_write(&b, 0, 1, buf), BLK_E_RO);
	/* An I/O error below passes through. */
	f.r->blk.sectors = f.data_start;
	assert_int_equal(blk_read(&b, 0, 1, buf), BLK_E_RANGE);
	ramdev_free(f.r);
}

/* Many fragments: every other cluster, read back in odd-sized requests. */
static void test_ext_many_fragments(void **state)
{
	(void)state;
	enum { N = 300 };
	uint32_t c[N];
	for (int i = 0; i < N; i++)
		c[i] = 2 + (uint32_t)((i * 2) % (N * 2)) + (i >= N / 2 ? 1 : 0);
	struct fimg f = ext_img(c, N, N * 1024);
	struct fat_vol v;
	struct fat_file e;
	struct ext_map m;
	struct ext_run *runs = calloc(N, sizeof(*runs));
	struct blk_dev b;
	uint8_t buf[37 * 512];
	assert_int_equal(fat_mount(&v, &f.r->blk), FAT_OK);
	assert_int_equal(fat_open_path(&v, "/f", &e), FAT_OK);
	assert_int_equal(ext_build(&v, &e, &m, runs, N), EXT_OK);
	assert_int_equal(m.count, N);
	ext_blk_init(&m, &b);
	for (uint32_t s = 0; s < 2 * N; s += 37) {
		uint32_t n = 2 * N - s < 37 ? 2 * N - s : 37;
		assert_int_equal(blk_read(&b, s, n, buf), BLK_OK);
		for (uint32_t k = 0; k < n; k++)
			assert_int_equal(buf[k * 512 + 3], (uint8_t)(s + k + 1));
	}
	free(runs);
	ramdev_free(f.r);
}

/* A partition view under a FAT volume under a file: offsets add up. */
static void test_stack(void **state)
{
	(void)state;
	static const uint32_t c[] = { 9, 4 };
	struct fimg f = ext_img(c, 2, 2048);
	struct ramdev *disk = ramdev_new(100 + 40000, 100 + 40000, RAMDEV_ZEROES);
	struct part_iter it;
	struct part_info p;
	struct blk_window pv;
	struct blk_dev b;
	struct fat_vol v;
	struct fat_file e;
	struct ext_map m;
	struct ext_run runs[2];
	uint8_t buf[4 * 512];
	memcpy(disk->data + 100 * 512, f.r->data, 40000 * 512);
	mbr_entry(sec(disk, 0), 0, 0x80, 0x06, 100, 40000);
	assert_int_equal(part_find(&it, &disk->blk, 1, &p), PART_OK);
	assert_int_equal(part_blk_init(&pv, &disk->blk, &p), PART_OK);
	assert_int_equal(fat_mount(&v, &pv.dev), FAT_OK);
	assert_int_equal(fat_open_path(&v, "F", &e), FAT_OK);
	assert_int_equal(ext_build(&v, &e, &m, runs, 2), EXT_OK);
	ext_blk_init(&m, &b);
	assert_int_equal(blk_read(&b, 0, 4, buf), BLK_OK);
	assert_int_equal(buf[0], 1);
	assert_int_equal(buf[3 * 512], 4);
	assert_int_equal(disk->last_lba, 100 + f.data_start + 2 * 2);
	/* The volume must fit its partition. */
	mbr_entry(sec(disk, 0), 0, 0x80, 0x06, 100, 39999);
	assert_int_equal(part_find(&it, &disk->blk, 1, &p), PART_OK);
	assert_int_equal(part_blk_init(&pv, &disk->blk, &p), PART_OK);
	assert_int_equal(fat_mount(&v, &pv.dev), FAT_E_BEYOND_DEVICE);
	ramdev_free(disk);
	ramdev_free(f.r);
}

/* fs.h's suffix listing callback: collect "dir/name size" lines. */
static int fs_found_cb(void *ctx, const char *dir, const struct fs_file *f)
{
	char *out = ctx;
	size_t n = strlen(out);
	snprintf(out + n, 2048 - n, "%s%s%s %llu\n", dir, dir[1] ? "/" : "", fs_file_name(f),
		 (unsigned long long)fs_file_size(f));
	return 0;
}

/* fs.h over a FAT16 volume: the same answers as fat_* (type, label, paths, listing, extents). */
static void test_fs_interface_fat(void **state)
{
	(void)state;
	static const char *const dirs[] = { "/", "/vhd", "/images", NULL };
	static const char *const sfx[] = { ".vhd", NULL };
	struct fimg f = tree16();
	struct fs_vol *v = calloc(1, sizeof(*v));
	struct fs_file fl;
	struct fat_vol fv;
	struct fat_file ff;
	struct ext_map m1, m2;
	struct ext_run r1[8], r2[8];
	char *out = calloc(1, 2048);
	assert_int_equal(fs_mount(v, &f.r->blk), 0);
	assert_int_equal(v->type, FS_FAT);
	assert_string_equal(fs_type_name(v), "FAT16");
	assert_int_equal(fs_open_path(v, "/IMAGES/sub/deep disk.vhd", &fl), 0);
	assert_string_equal(fs_file_name(&fl), "Deep Disk.VHD");
	assert_int_equal(fs_file_size(&fl), 7);
	assert_false(fs_file_is_dir(&fl));
	assert_int_equal(fat_mount(&fv, &f.r->blk), FAT_OK);
	assert_int_equal(fat_open_path(&fv, "/images/sub/Deep Disk.VHD", &ff), FAT_OK);
	assert_int_equal(fs_extents(v, &fl, &m1, r1, 8), ext_build(&fv, &ff, &m2, r2, 8));
	assert_int_equal(m1.count, m2.count);
	assert_memory_equal(r1, r2, m1.count * sizeof(r1[0]));
	assert_true(fs_missing(v, fs_open_path(v, "/nope.vhd", &fl)));
	assert_true(fs_missing(v, fs_open_path(v, "/win.vhd/x", &fl)));
	assert_int_equal(fs_list_dirs(v, dirs, sfx, fs_found_cb, out), 0);
	assert_non_null(strstr(out, "/win.vhd 1500\n"));
	assert_non_null(strstr(out, "/vhd/x.vhd 1\n"));
	assert_non_null(strstr(out, "/images/Disk01.vhd 1\n"));
	assert_null(strstr(out, "dir.vhd"));          /* a directory is not listed */
	free(out);
	free(v);
	ramdev_free(f.r);
}

/* exFAT and NTFS boot sectors are told apart by their names; their defects come back with the right type's codes. */
static void test_fs_mount_exfat_ntfs_refusals(void **state)
{
	(void)state;
	struct ramdev *r = ramdev_new(4096, 4096, 0);
	struct fs_vol *v = calloc(1, sizeof(*v));
	uint8_t *b = sec(r, 0);
	/* exFAT: a valid-looking main boot sector whose checksum sector disagrees, and no backup region. */
	memcpy(b + 3, "EXFAT   ", 8);
	b[0] = 0xEB; b[1] = 0x76; b[2] = 0x90;
	b[108] = 9; b[109] = 3; b[110] = 1; b[105] = 1;
	b[510] = 0x55; b[511] = 0xAA;
	assert_int_equal(fs_mount(v, &r->blk), EXFAT_E_BOOT_CHECKSUM);
	assert_int_equal(v->type, FS_EXFAT);
	assert_string_equal(fs_errname(v, EXFAT_E_BOOT_CHECKSUM), "boot-checksum");
	b[20] = 1;                                      /* inside the must-be-zero FAT BPB */
	assert_int_equal(fs_mount(v, &r->blk), EXFAT_E_ZERO_FIELD);
	b[20] = 0;
	b[108] = 12;                                    /* 4 KiB sectors */
	assert_int_equal(fs_mount(v, &r->blk), EXFAT_E_SECTOR_SIZE_UNSUPPORTED);
	/* NTFS: 4096-byte sectors refused by name, then a bad record size. */
	memset(b, 0, 512);
	memcpy(b + 3, "NTFS    ", 8);
	b[510] = 0x55; b[511] = 0xAA;
	put16(b + 11, 4096);
	assert_int_equal(fs_mount(v, &r->blk), NTFS_E_SECTOR_SIZE);
	assert_int_equal(v->type, FS_NTFS);
	assert_string_equal(fs_type_name(v), "NTFS");
	put16(b + 11, 512);
	b[13] = 8;
	b[0x40] = 0xF6;                                 /* 2^10 = 1 KiB records */
	b[0x44] = 0x01;                                 /* one 4 KiB cluster per index block */
	put64(b + 0x28, 4095);
	put64(b + 0x30, 4);
	assert_int_equal(fs_mount(v, &r->blk), NTFS_E_RECORD);   /* no FILE record at the $MFT */
	b[0x40] = 0xF0;                                 /* 64 KiB records: refused */
	assert_int_equal(fs_mount(v, &r->blk), NTFS_E_RECORD_SIZE);
	b[0x40] = 0xF6;
	put64(b + 0x30, 600);                           /* $MFT past the volume */
	assert_int_equal(fs_mount(v, &r->blk), NTFS_E_LAYOUT);
	/* Neither name: FAT's verdict. */
	memset(b, 0, 512);
	assert_int_equal(fs_mount(v, &r->blk), FAT_E_SIGNATURE);
	assert_int_equal(v->type, FS_FAT);
	free(v);
	ramdev_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32_and_guid),
		cmocka_unit_test(test_mbr_primary),
		cmocka_unit_test(test_mbr_errors),
		cmocka_unit_test(test_mbr_extended),
		cmocka_unit_test(test_mbr_extended_too_many),
		cmocka_unit_test(test_gpt),
		cmocka_unit_test(test_gpt_errors),
		cmocka_unit_test(test_part_blk),
		cmocka_unit_test(test_fat_mount_types),
		cmocka_unit_test(test_fat_bpb_errors),
		cmocka_unit_test(test_fat_chain),
		cmocka_unit_test(test_fat_dir_names),
		cmocka_unit_test(test_fat_paths),
		cmocka_unit_test(test_fat_dir_chain_errors),
		cmocka_unit_test(test_fat32_root_chain),
		cmocka_unit_test(test_fat_dir_too_big),
		cmocka_unit_test(test_ext_build),
		cmocka_unit_test(test_ext_blk),
		cmocka_unit_test(test_ext_many_fragments),
		cmocka_unit_test(test_stack),
		cmocka_unit_test(test_fs_interface_fat),
		cmocka_unit_test(test_fs_mount_exfat_ntfs_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
