/* test_handover.c: cmocka tests for handover/ho.c (the hand-over table): build and parse back, checksum, version, sizes, offsets, finding it in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../include/vhdboot_handover.h"
#include "../../fs/part.h"        /* part_crc32: re-sign a table after a deliberate edit */

#define TBL_PHYS 0x9E000u

static uint8_t tbl[HO_MAX_BYTES];

/* A two-drive table: drive 80h a differencing file on FAT32 with a two-member chain and 3 extents, 81h a whole disk. */
static uint32_t build_sample(uint8_t *buf, uint32_t cap, uint32_t phys)
{
	struct ho_builder b;
	assert_int_equal(ho_begin(&b, buf, cap, 2), HO_OK);
	ho_head(&b)->firmware_off = ho_put_str(&b, "vhdboot test", 64);
	struct ho_drive *d = ho_drive_at(&b, 0);
	d->bios_drive = 0x80;
	d->mode = HO_MODE_RW;
	d->format = HO_FMT_VHD;
	d->image_type = HO_TYPE_DIFF;
	d->place = HO_PLACE_FILE;
	d->fs = HO_FS_FAT32;
	d->iface = HO_IFACE_ATA;
	d->disk_sectors = 1000000;
	d->part_number = 1;
	d->part_start = 2048;
	d->model_off = ho_put_str(&b, "QEMU HARDDISK", 47);
	d->serial_off = ho_put_str(&b, "QM00001", 23);
	d->chain_len = 2;
	d->chain_off = ho_put(&b, 4, 2);
	uint16_t p0 = ho_put_str(&b, "/images/child.vhd", 256), p1 = ho_put_str(&b, "/images/base.vhd", 256);
	uint8_t *c = ho_ptr(&b, d->chain_off);
	c[0] = (uint8_t)p0, c[1] = (uint8_t)(p0 >> 8), c[2] = (uint8_t)p1, c[3] = (uint8_t)(p1 >> 8);
	d->extents_off = ho_put(&b, 3 * sizeof(struct ho_extent), 8);
	d->extents_count = 3;
	d->extents_total = 3;
	for (uint32_t i = 0; i < 3; i++) {
		struct ho_extent e = {i * 64, 64, 10000 + i * 1000};
		memcpy(ho_ptr(&b, (uint16_t)(d->extents_off + i * sizeof(e))), &e, sizeof(e));
	}
	d = ho_drive_at(&b, 1);
	d->bios_drive = 0x81;
	d->mode = HO_MODE_SNAPSHOT;
	d->format = HO_FMT_VHD;
	d->image_type = HO_TYPE_FIXED;
	d->place = HO_PLACE_DISK;
	d->iface = HO_IFACE_BIOS;
	d->chain_len = 1;
	d->overlay_phys = 0x7000000;
	d->overlay_bytes = 1 << 20;
	assert_null(ho_drive_at(&b, 2));
	return ho_finish(&b, phys);
}

/* Recompute the checksum after a test changed a field on purpose. */
static void resign(uint8_t *t)
{
	struct ho_header *h = (struct ho_header *)(void *)t;
	h->crc32 = 0;
	h->crc32 = part_crc32(0, t, h->total_bytes);
}

static void test_roundtrip(void **state)
{
	(void)state;
	uint32_t n = build_sample(tbl, sizeof(tbl), TBL_PHYS);
	assert_true(n > 64 + 2 * 160);
	assert_int_equal(ho_check(tbl, n), HO_OK);
	const struct ho_header *h = (const struct ho_header *)(const void *)tbl;
	assert_memory_equal(h->signature, "$VHDBOOT", 8);
	assert_int_equal(h->version_major, 1);
	assert_int_equal(h->total_bytes, n);
	assert_int_equal(h->self_phys, TBL_PHYS);
	assert_string_equal(ho_str(tbl, h->firmware_off), "vhdboot test");
	const struct ho_drive *d = ho_drive_get(tbl, 0);
	assert_non_null(d);
	assert_string_equal(ho_str(tbl, d->model_off), "QEMU HARDDISK");
	assert_string_equal(ho_str(tbl, d->serial_off), "QM00001");
	assert_string_equal(ho_chain_path(tbl, d, 0), "/images/child.vhd");
	assert_string_equal(ho_chain_path(tbl, d, 1), "/images/base.vhd");
	assert_string_equal(ho_chain_path(tbl, d, 2), "");
	struct ho_extent e;
	assert_int_equal(ho_extent_get(tbl, d, 2, &e), HO_OK);
	assert_int_equal(e.file_sector, 128);
	assert_int_equal(e.lba, 12000);
	assert_int_equal(ho_extent_get(tbl, d, 3, &e), HO_E_ARG);
	d = ho_drive_get(tbl, 1);
	assert_int_equal(d->mode, HO_MODE_SNAPSHOT);
	assert_int_equal(d->overlay_bytes, 1 << 20);
	assert_string_equal(ho_str(tbl, d->where_off), "");
	assert_null(ho_drive_get(tbl, 2));
}

static void test_checksum(void **state)
{
	(void)state;
	uint32_t n = build_sample(tbl, sizeof(tbl), TBL_PHYS);
	for (uint32_t i = 0; i < n; i += 7) {     /* any flipped byte but the signature's is a CRC error */
		if (i < 8)
			continue;
		tbl[i] ^= 0x40;
		int rc = ho_check(tbl, n);
		assert_true(rc == HO_E_CRC || rc == HO_E_VERSION || rc == HO_E_SIZE);
		tbl[i] ^= 0x40;
	}
	tbl[100] ^= 1;
	assert_int_equal(ho_check(tbl, n), HO_E_CRC);
	tbl[100] ^= 1;
	tbl[0] = '#';
	assert_int_equal(ho_check(tbl, n), HO_E_SIGNATURE);
}

static void test_version(void **state)
{
	(void)state;
	uint32_t n = build_sample(tbl, sizeof(tbl), TBL_PHYS);
	struct ho_header *h = (struct ho_header *)(void *)tbl;
	h->version_major = 2;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_VERSION);
	h->version_major = 1;
	h->version_minor = 7;             /* a later minor: accepted */
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_OK);
	h->header_bytes = 32;             /* smaller than 1.0's header: refused */
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_SIZE);
}

static void test_bounds(void **state)
{
	(void)state;
	uint32_t n = build_sample(tbl, sizeof(tbl), TBL_PHYS);
	struct ho_header *h = (struct ho_header *)(void *)tbl;
	struct ho_drive *d = (struct ho_drive *)(void *)(tbl + 64);
	assert_int_equal(ho_check(tbl, n - 1), HO_E_SIZE);          /* fewer bytes readable than the table */
	assert_int_equal(ho_check(tbl, 40), HO_E_SIZE);
	uint16_t keep = d->model_off;
	d->model_off = (uint16_t)n;                                 /* past the end */
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_OFFSET);
	d->model_off = 10;                                          /* inside the header */
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_OFFSET);
	d->model_off = keep;
	uint8_t last = tbl[n - 1];
	tbl[n - 1] = 'x';                                           /* a string with no NUL before the end */
	d->where_off = (uint16_t)(n - 1);
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_OFFSET);
	tbl[n - 1] = last;
	d->where_off = 0;
	d->extents_count = 200;                                     /* more extents than total, past the end */
	d->extents_total = 200;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_OFFSET);
	d->extents_count = 2;                                       /* partial without the flag */
	d->extents_total = 3;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_FIELD);
	d->flags |= HO_DF_EXT_PARTIAL;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_OK);
	d->mode = 9;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_FIELD);
	d->mode = HO_MODE_RW;
	h->ndrives = 0;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_DRIVES);
	h->ndrives = 30;                                            /* records would overrun the table */
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_DRIVES);
	h->ndrives = 2;
	h->total_bytes = HO_MAX_BYTES + 16;
	assert_int_equal(ho_check(tbl, sizeof(tbl)), HO_E_SIZE);
}

static void test_builder_full(void **state)
{
	(void)state;
	struct ho_builder b;
	uint8_t small[300];
	assert_int_equal(ho_begin(&b, small, sizeof(small), 2), HO_E_FULL);   /* 64 + 2 x 160 > 300 */
	assert_int_equal(ho_begin(&b, small, sizeof(small), 0), HO_E_ARG);
	assert_int_equal(ho_begin(&b, small, sizeof(small), HO_MAX_DRIVES + 1), HO_E_ARG);
	assert_int_equal(ho_begin(&b, small, sizeof(small), 1), HO_OK);
	char big[200];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(ho_put_str(&b, big, 256), 0);             /* 224 + 200 > 300 */
	assert_int_equal(b.err, HO_E_FULL);
	assert_int_equal(ho_put_str(&b, "x", 8), 0);               /* sticky */
	assert_int_equal(ho_finish(&b, 0), 0);
}

static void test_find(void **state)
{
	(void)state;
	static uint8_t mem[0x20000];
	memset(mem, 0xA5, sizeof(mem));
	uint32_t at = 0x1E000, off = 0;
	uint32_t n = build_sample(mem + at, HO_MAX_BYTES, HO_SCAN_LO + at);
	assert_true(n > 0);
	assert_int_equal(ho_find(mem, sizeof(mem), HO_SCAN_LO, &off), HO_OK);
	assert_int_equal(off, at);
	/* A copy elsewhere (self_phys differs) is not the table; the real one is still found after it. */
	memcpy(mem + 0x100, mem + at, n);
	assert_int_equal(ho_find(mem, sizeof(mem), HO_SCAN_LO, &off), HO_OK);
	assert_int_equal(off, at);
	/* Only a copy (the original zeroed): refused as stale. */
	uint8_t keep[HO_MAX_BYTES];
	memcpy(keep, mem + at, n);
	memset(mem + at, 0, n);
	assert_int_equal(ho_find(mem, sizeof(mem), HO_SCAN_LO, &off), HO_E_MOVED);
	memcpy(mem + at, keep, n);
	memset(mem + 0x100, 0, n);
	/* Damaged: the defect of the candidate is reported. */
	mem[at + 200] ^= 0xFF;
	assert_int_equal(ho_find(mem, sizeof(mem), HO_SCAN_LO, &off), HO_E_CRC);
	memset(mem, 0, sizeof(mem));
	assert_int_equal(ho_find(mem, sizeof(mem), HO_SCAN_LO, &off), HO_E_NOT_FOUND);
	/* A signature at the very end (no room for a header) is not a crash. */
	memcpy(mem + sizeof(mem) - 16, "$VHDBOOT", 8);
	assert_int_equal(ho_find(mem, sizeof(mem), HO_SCAN_LO, &off), HO_E_SIZE);
	assert_string_equal(ho_errname(HO_E_CRC), "crc");
	assert_non_null(ho_strerror(1000));
}

/* 1.2's codes: exFAT and NTFS files and VHDX images are accepted, values past them are not, and fs stays tied to place. */
static void test_v12_codes(void **state)
{
	(void)state;
	uint32_t n = build_sample(tbl, sizeof(tbl), TBL_PHYS);
	struct ho_drive *d = (struct ho_drive *)(void *)(tbl + 64);
	const uint8_t ok[] = {HO_FS_FAT12, HO_FS_FAT16, HO_FS_FAT32, HO_FS_EXFAT, HO_FS_NTFS};
	for (unsigned i = 0; i < sizeof(ok); i++) {
		d->fs = ok[i];
		resign(tbl);
		assert_int_equal(ho_check(tbl, n), HO_OK);
	}
	assert_int_equal(HO_FS_EXFAT, 4);
	assert_int_equal(HO_FS_NTFS, 5);
	d->fs = HO_FS_NTFS + 1;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_FIELD);
	d->fs = HO_FS_NONE;                                         /* a file with no file system */
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_FIELD);
	d = (struct ho_drive *)(void *)(tbl + 64 + 160);            /* a whole disk with one */
	d->fs = HO_FS_EXFAT;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_FIELD);
	d->fs = HO_FS_NONE;
	d = (struct ho_drive *)(void *)(tbl + 64);
	d->fs = HO_FS_FAT32;
	d->format = HO_FMT_VHDX;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_OK);
	d->format = HO_FMT_VHDX + 1;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_FIELD);
	d->format = 0;
	resign(tbl);
	assert_int_equal(ho_check(tbl, n), HO_E_FIELD);
	assert_int_equal(HO_VERSION_MINOR, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_checksum),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_builder_full),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_v12_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
