/* test_vhd.c: cmocka unit tests of the vhd/ library over an in-memory block device. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../vhd/vhd.h"
#include "ramdev.h"

/* ------------------------------------------------------------------ RAM block devices: ramdev.h (growing, as a file) */

/* An opened image with its BAT. */
struct img {
	struct ramdev *m;
	struct vhd v;
	uint32_t *bat;
};

static int img_open(struct img *im, struct ramdev *m, unsigned flags)
{
	im->m = m;
	im->bat = NULL;
	int r = vhd_open(&im->v, &m->blk, flags);
	if (r)
		return r;
	size_t n = vhd_bat_bytes(&im->v);
	if (n) {
		im->bat = malloc(n);
		r = vhd_load_bat(&im->v, im->bat);
		if (r)
			return r;
		uint32_t *scratch = malloc(n);
		r = vhd_check_overlaps(&im->v, scratch);
		free(scratch);
	}
	return r;
}

static void img_close(struct img *im)
{
	free(im->bat);
	im->bat = NULL;
}

static struct ramdev *make_image(uint32_t type, uint64_t size, uint32_t bs)
{
	struct ramdev *m = ramdev_growing(1ull << 40, 0);
	struct vhd_create_opts o = { 0 };
	o.type = type;
	o.size = size;
	o.block_size = bs;
	o.timestamp = 12345;
	for (int i = 0; i < 16; i++)
		o.uuid[i] = (uint8_t)(i * 7 + type);
	assert_int_equal(vhd_create(&m->blk, &o), VHD_OK);
	return m;
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill_pattern(uint8_t *buf, uint64_t lba, uint32_t count, uint32_t seed)
{
	for (uint32_t s = 0; s < count; s++)
		for (int i = 0; i < 512; i += 4) {
			uint32_t x = (uint32_t)(lba + s) * 2654435761u ^ seed ^ (uint32_t)i;
			memcpy(buf + s * 512 + i, &x, 4);
		}
}

/* Count defects found by vhd_check (excluding nothing). */
static void count_cb(void *ctx, int code, uint64_t a, uint64_t b)
{
	(void)a;
	(void)b;
	int *codes = ctx;
	codes[0]++;
	if (code > 0 && code < VHD_C_COUNT)
		codes[code]++;
}

static int run_check(struct img *im, int *codes)
{
	memset(codes, 0, sizeof(int) * VHD_C_COUNT);
	size_t n = vhd_bat_bytes(&im->v);
	uint32_t *scratch = malloc(n ? n : 4);
	int r = vhd_check(&im->v, scratch, VHD_CHECK_DEEP, 0, count_cb, codes);
	free(scratch);
	return r;
}

/* ------------------------------------------------------------------ tests */

static void test_checksum_and_chs(void **state)
{
	(void)state;
	uint8_t b[8] = { 1, 2, 3, 4, 9, 9, 9, 9 };
	assert_int_equal(vhd_checksum(b, 8, 4), ~(uint32_t)10);
	uint16_t c;
	uint8_t h, s;
	vhd_chs_from_size(2048 * 1024 * 2, &c, &h, &s);  /* 2 GiB */
	assert_true((uint64_t)c * h * s <= 2048ull * 1024 * 2);
	assert_true(s == 17 || s == 31 || s == 63 || s == 255);
	vhd_chs_from_size(1ull << 40, &c, &h, &s);       /* huge: clamps */
	assert_int_equal(c, 65535);
	assert_int_equal(h, 16);
	assert_int_equal(s, 255);
	assert_string_equal(vhd_errname(VHD_E_FOOTER_CHECKSUM), "footer-checksum");
	/* Every error has a distinct name and a message. */
	for (int i = 1; i < VHD_E_COUNT; i++) {
		assert_string_not_equal(vhd_strerror(i), "unknown error");
		for (int j = 1; j < i; j++)
			assert_string_not_equal(vhd_errname(i), vhd_errname(j));
	}
	for (int i = 1; i < VHD_C_COUNT; i++)
		assert_string_not_equal(vhd_check_msg(i), "unknown defect");
	/* Out of range, negated (callers may pass -VHD_E_x) and INT_MIN (no overflow) through the errtab lookup. */
	assert_string_equal(vhd_errname(-VHD_E_FOOTER_CHECKSUM), "footer-checksum");
	assert_string_equal(vhd_strerror(VHD_E_COUNT), "unknown error");
	assert_string_equal(vhd_strerror(-2147483647 - 1), "unknown error");
	assert_string_equal(vhd_check_msg(0), "unknown defect");
	assert_string_equal(vhd_check_name(-1), "unknown-check");
	assert_string_equal(vhd_check_name(VHD_C_COUNT), "unknown-check");
}

/* Random reads and writes against a model, for one image type and block size. */
static void random_io(uint32_t type, uint64_t size, uint32_t bs, int ops)
{
	struct ramdev *m = make_image(type, size, bs);
	struct img im;
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	assert_int_equal(im.v.sectors, size / 512);
	uint8_t *model = calloc(1, size);
	uint8_t *buf = malloc(256 * 512), *rd = malloc(256 * 512);
	for (int op = 0; op < ops; op++) {
		uint32_t count = 1 + (uint32_t)(rng() % 200);
		uint64_t lba = rng() % (size / 512 - count + 1);
		if (op % 3 != 2) {
			fill_pattern(buf, lba, count, (uint32_t)op);
			if (op % 7 == 0)
				memset(buf, 0, (size_t)count * 512);  /* zero writes too */
			assert_int_equal(vhd_write(&im.v, lba, count, buf), VHD_OK);
			memcpy(model + lba * 512, buf, (size_t)count * 512);
		} else {
			assert_int_equal(vhd_read(&im.v, lba, count, rd), VHD_OK);
			assert_memory_equal(rd, model + lba * 512, (size_t)count * 512);
		}
	}
	/* Reopen from the bytes and compare everything. */
	img_close(&im);
	struct ramdev *c = ramdev_clone(m);
	struct img im2;
	assert_int_equal(img_open(&im2, c, 0), VHD_OK);
	for (uint64_t lba = 0; lba < size / 512; lba += 256) {
		uint32_t n = size / 512 - lba < 256 ? (uint32_t)(size / 512 - lba) : 256;
		assert_int_equal(vhd_read(&im2.v, lba, n, rd), VHD_OK);
		assert_memory_equal(rd, model + lba * 512, (size_t)n * 512);
	}
	int codes[VHD_C_COUNT];
	assert_int_equal(run_check(&im2, codes), 0);
	img_close(&im2);
	ramdev_free(c);
	ramdev_free(m);
	free(model);
	free(buf);
	free(rd);
}

static void test_fixed_io(void **state)
{
	(void)state;
	random_io(VHD_TYPE_FIXED, 8 << 20, 0, 300);
}

static void test_dynamic_io_block_sizes(void **state)
{
	(void)state;
	const uint32_t sizes[] = { 512, 4096, 65536, 512 << 10, 2 << 20, 4 << 20 };
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		random_io(VHD_TYPE_DYNAMIC, (12 << 20) + 512 * 3, sizes[i], 250);
}

static void test_range_and_readonly(void **state)
{
	(void)state;
	struct ramdev *m = make_image(VHD_TYPE_DYNAMIC, 1 << 20, 0);
	struct img im;
	assert_int_equal(img_open(&im, m, VHD_OPEN_RDONLY), VHD_OK);
	uint8_t buf[1024] = { 0 };
	assert_int_equal(vhd_read(&im.v, 2047, 2, buf), VHD_E_RANGE);
	assert_int_equal(vhd_read(&im.v, UINT64_MAX, 1, buf), VHD_E_RANGE);
	assert_int_equal(vhd_read(&im.v, 2047, 1, buf), VHD_OK);
	assert_int_equal(vhd_read(&im.v, 2048, 0, buf), VHD_OK);
	int before = m->stored;
	assert_int_equal(vhd_write(&im.v, 0, 1, buf), VHD_E_READ_ONLY);
	assert_int_equal(m->stored, before);
	img_close(&im);
	ramdev_free(m);
}

/* vhd_plain_block: only an allocated block with every bitmap bit set is a plain copy of the file's sectors. */
static void test_plain_block(void **state)
{
	(void)state;
	struct ramdev *m = make_image(VHD_TYPE_DYNAMIC, 4u << 20, 512 * 1024);   /* 1024-sector blocks */
	struct img im;
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	uint64_t lo = 1, fs = 1;
	uint32_t n = 1;
	assert_int_equal(vhd_plain_block(&im.v, 10, &lo, &n, &fs), 0);         /* not allocated */
	static uint8_t buf[1024 * 512];
	fill_pattern(buf, 1024, 1024, 3);
	assert_int_equal(vhd_write(&im.v, 1024, 1024, buf), VHD_OK);           /* block 1, every sector */
	assert_int_equal(vhd_write(&im.v, 2048, 8, buf), VHD_OK);              /* block 2, 8 sectors only */
	assert_int_equal(vhd_plain_block(&im.v, 1500, &lo, &n, &fs), 1);
	assert_int_equal(lo, 1024);
	assert_int_equal(n, 1024);
	assert_int_equal(fs, (uint64_t)im.v.bat[1] + im.v.bitmap_sectors);
	static uint8_t raw[1024 * 512];                                        /* the file's sectors are the data */
	assert_int_equal(blk_read(&m->blk, fs, 1024, raw), 0);
	assert_memory_equal(raw, buf, sizeof(raw));
	assert_int_equal(vhd_plain_block(&im.v, 2048, &lo, &n, &fs), 1);       /* dynamic: the zero fill is data too */
	assert_int_equal(vhd_plain_block(&im.v, 4u << 11, &lo, &n, &fs), 0);   /* past the end */
	uint64_t bm = im.v.bat[1];
	img_close(&im);
	uint8_t sec[512];                                                      /* block 1's last sector not in use */
	assert_int_equal(blk_read(&m->blk, bm, 1, sec), 0);
	sec[1023 / 8] &= (uint8_t)~(0x80 >> (1023 % 8));
	assert_int_equal(blk_write(&m->blk, bm, 1, sec), 0);
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	assert_int_equal(vhd_plain_block(&im.v, 1500, &lo, &n, &fs), 0);       /* bitmap partly set */
	assert_int_equal(vhd_plain_block(&im.v, 2048, &lo, &n, &fs), 1);
	img_close(&im);
	ramdev_free(m);
	struct ramdev *f = make_image(VHD_TYPE_FIXED, 1 << 20, 0);
	assert_int_equal(img_open(&im, f, 0), VHD_OK);
	assert_int_equal(vhd_plain_block(&im.v, 0, &lo, &n, &fs), 0);          /* fixed: the caller's linear view */
	img_close(&im);
	ramdev_free(f);
}

static void test_backup_footer_and_short_footer(void **state)
{
	(void)state;
	struct ramdev *m = make_image(VHD_TYPE_DYNAMIC, 4 << 20, 0);
	/* Damage the end footer's checksum. */
	uint64_t end = m->blk.size_bytes - 512;
	m->data[end + 64] ^= 0xFF;
	struct img im;
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	assert_true(im.v.state & VHD_ST_BACKUP_FOOTER);
	assert_int_equal(im.v.end_footer_err, VHD_E_FOOTER_CHECKSUM);
	uint8_t buf[512] = { 1 };
	assert_int_equal(vhd_write(&im.v, 0, 1, buf), VHD_E_READ_ONLY);  /* damaged: read-only */
	img_close(&im);
	/* Without the fallback the error is the end footer's. */
	assert_int_equal(img_open(&im, m, VHD_OPEN_NO_BACKUP), VHD_E_FOOTER_CHECKSUM);
	img_close(&im);
	m->data[end + 64] ^= 0xFF;
	/* A 511-byte footer (old Virtual PC): the file lacks the last reserved byte. */
	ramdev_truncate(m, m->blk.size_bytes - 1);
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	assert_true(im.v.state & VHD_ST_SHORT_FOOTER);
	/* Writing allocates a block and leaves a full 512-byte footer. */
	uint8_t w[512];
	fill_pattern(w, 5, 1, 9);
	assert_int_equal(vhd_write(&im.v, 5, 1, w), VHD_OK);
	img_close(&im);
	assert_int_equal(m->blk.size_bytes % 512, 0);
	struct ramdev *c = ramdev_clone(m);
	assert_int_equal(img_open(&im, c, 0), VHD_OK);
	assert_false(im.v.state & VHD_ST_SHORT_FOOTER);
	assert_int_equal(vhd_read(&im.v, 5, 1, buf), VHD_OK);
	assert_memory_equal(buf, w, 512);
	img_close(&im);
	ramdev_free(c);
	ramdev_free(m);
}

static void test_open_errors(void **state)
{
	(void)state;
	struct img im;
	struct ramdev *m = ramdev_growing(1 << 20, 0);
	assert_int_equal(img_open(&im, m, 0), VHD_E_TOO_SMALL);
	ramdev_free(m);
	/* Garbage, no cookie anywhere. */
	m = make_image(VHD_TYPE_FIXED, 1 << 20, 0);
	memset(m->data + (1 << 20), 'x', 8);
	assert_int_equal(img_open(&im, m, 0), VHD_E_FOOTER_COOKIE);
	ramdev_free(m);
	/* Dynamic header checksum. */
	m = make_image(VHD_TYPE_DYNAMIC, 1 << 20, 0);
	m->data[512 + 100] ^= 1;
	assert_int_equal(img_open(&im, m, 0), VHD_E_HEADER_CHECKSUM);
	ramdev_free(m);
	/* Truncated fixed image. */
	m = make_image(VHD_TYPE_FIXED, 1 << 20, 0);
	memmove(m->data + 4096, m->data + (1 << 20), 512);
	ramdev_truncate(m, 4096 + 512);
	assert_int_equal(img_open(&im, m, 0), VHD_E_FIXED_SIZE);
	ramdev_free(m);
}

static void test_bat_validation(void **state)
{
	(void)state;
	struct ramdev *m = make_image(VHD_TYPE_DYNAMIC, 8 << 20, 512 << 10);
	struct img im;
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	uint8_t *buf = malloc(2048 * 512);
	fill_pattern(buf, 0, 2048, 1);
	assert_int_equal(vhd_write(&im.v, 0, 2048, buf), VHD_OK);  /* blocks 0 and 1 */
	assert_true(im.v.bat[1] != VHD_BAT_FREE);
	uint32_t b0 = im.v.bat[0], b1 = im.v.bat[1];
	uint64_t toff = im.v.header.table_offset;
	img_close(&im);
	/* Make block 1 overlap block 0. */
	uint32_t be = __builtin_bswap32(b0 + 1);
	memcpy(m->data + toff + 4, &be, 4);
	assert_int_equal(img_open(&im, m, 0), VHD_E_BAT_OVERLAP);
	img_close(&im);
	/* An entry past the end of the file. */
	be = __builtin_bswap32(0x7FFFFFF0);
	memcpy(m->data + toff + 4, &be, 4);
	assert_int_equal(img_open(&im, m, 0), VHD_E_BAT_RANGE);
	img_close(&im);
	/* An entry on top of the header. */
	be = __builtin_bswap32(1);
	memcpy(m->data + toff + 4, &be, 4);
	assert_int_equal(img_open(&im, m, 0), VHD_E_BAT_OVERLAP_META);
	img_close(&im);
	be = __builtin_bswap32(b1);
	memcpy(m->data + toff + 4, &be, 4);
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	img_close(&im);
	free(buf);
	ramdev_free(m);
}

/* Build a child over parent p (opened in pim), with locators. */
static struct ramdev *make_child(struct img *pim, uint32_t bs)
{
	struct ramdev *m = ramdev_growing(1ull << 40, 0);
	struct vhd_create_opts o = { 0 };
	o.type = VHD_TYPE_DIFF;
	o.block_size = bs;
	o.timestamp = 777;
	for (int i = 0; i < 16; i++)
		o.uuid[i] = (uint8_t)(0xA0 + i + pim->v.footer.uuid[0]);
	o.parent = &pim->v;
	o.parent_name = "base.vhd";
	o.w2ru = "./imgs/base.vhd";
	o.w2ku = "C:/vm/imgs/b\xc3\xa4se.vhd";   /* UTF-8 "bäse" */
	assert_int_equal(vhd_create(&m->blk, &o), VHD_OK);
	return m;
}

static void test_differencing(void **state)
{
	(void)state;
	const uint64_t size = 6 << 20;
	struct ramdev *pm = make_image(VHD_TYPE_DYNAMIC, size, 0);
	struct img pim;
	assert_int_equal(img_open(&pim, pm, 0), VHD_OK);
	uint8_t *model = calloc(1, size);
	uint8_t *buf = malloc(300 * 512);
	/* Parent data: sectors 0..99 and 5000..5999. */
	fill_pattern(buf, 0, 100, 1);
	assert_int_equal(vhd_write(&pim.v, 0, 100, buf), VHD_OK);
	memcpy(model, buf, 100 * 512);
	for (uint64_t l = 5000; l < 6000; l += 200) {
		fill_pattern(buf, l, 200, 2);
		assert_int_equal(vhd_write(&pim.v, l, 200, buf), VHD_OK);
		memcpy(model + l * 512, buf, 200 * 512);
	}
	struct ramdev *snapshot = ramdev_clone(pm);
	struct ramdev *cm = make_child(&pim, 512 << 10);
	struct img cim;
	assert_int_equal(img_open(&cim, cm, 0), VHD_OK);
	assert_int_equal(cim.v.footer.type, VHD_TYPE_DIFF);
	/* Locator candidates in order W2ru, W2ku, name. */
	char path[VHD_PATH_MAX];
	uint32_t code;
	assert_int_equal(vhd_parent_candidate(&cim.v, 0, path, sizeof(path), &code), VHD_OK);
	assert_int_equal(code, VHD_PLAT_W2RU);
	assert_string_equal(path, "./imgs/base.vhd");
	assert_int_equal(vhd_parent_candidate(&cim.v, 1, path, sizeof(path), &code), VHD_OK);
	assert_int_equal(code, VHD_PLAT_W2KU);
	assert_string_equal(path, "C:/vm/imgs/b\xc3\xa4se.vhd");
	assert_int_equal(vhd_parent_candidate(&cim.v, 2, path, sizeof(path), &code), VHD_OK);
	assert_int_equal(code, 0);
	assert_string_equal(path, "base.vhd");
	assert_int_equal(vhd_parent_candidate(&cim.v, 3, path, sizeof(path), &code), VHD_E_NO_LOCATOR);
	/* No parent yet. */
	assert_int_equal(vhd_read(&cim.v, 0, 1, buf), VHD_E_NO_PARENT);
	assert_int_equal(vhd_set_parent(&cim.v, &pim.v, &cim.v, 0), VHD_OK);
	assert_int_equal(vhd_chain_depth(&cim.v), 1);
	/* Reads fall through to the parent. */
	assert_int_equal(vhd_read(&cim.v, 0, 100, buf), VHD_OK);
	assert_memory_equal(buf, model, 100 * 512);
	/* Partial writes into child blocks, including zeros over parent data. */
	for (int op = 0; op < 200; op++) {
		uint32_t count = 1 + (uint32_t)(rng() % 300);
		uint64_t lba = rng() % (size / 512 - count + 1);
		if (op % 10 == 0)
			lba = 40, count = 3;  /* overlaps parent data */
		fill_pattern(buf, lba, count, 100 + (uint32_t)op);
		if (op % 5 == 0)
			memset(buf, 0, (size_t)count * 512);
		assert_int_equal(vhd_write(&cim.v, lba, count, buf), VHD_OK);
		memcpy(model + lba * 512, buf, (size_t)count * 512);
		uint64_t rl = rng() % (size / 512 - 300);
		uint8_t *rd = malloc(300 * 512);
		assert_int_equal(vhd_read(&cim.v, rl, 300, rd), VHD_OK);
		assert_memory_equal(rd, model + rl * 512, 300 * 512);
		free(rd);
	}
	/* The parent's bytes never changed. */
	assert_int_equal(pm->blk.size_bytes, snapshot->blk.size_bytes);
	assert_memory_equal(pm->data, snapshot->data, pm->blk.size_bytes);
	int codes[VHD_C_COUNT];
	assert_int_equal(run_check(&cim, codes), 0);
	img_close(&cim);
	img_close(&pim);
	ramdev_free(snapshot);
	ramdev_free(cm);
	ramdev_free(pm);
	free(model);
	free(buf);
}

static void test_parent_checks(void **state)
{
	(void)state;
	struct ramdev *pm = make_image(VHD_TYPE_DYNAMIC, 2 << 20, 0);
	struct img pim, cim, other;
	assert_int_equal(img_open(&pim, pm, 0), VHD_OK);
	struct ramdev *cm = make_child(&pim, 0);
	assert_int_equal(img_open(&cim, cm, 0), VHD_OK);
	/* Wrong parent (different uuid). */
	struct ramdev *om = make_image(VHD_TYPE_FIXED, 2 << 20, 0);
	assert_int_equal(img_open(&other, om, 0), VHD_OK);
	assert_int_equal(vhd_set_parent(&cim.v, &other.v, &cim.v, 0), VHD_E_PARENT_UUID);
	/* Time stamp mismatch, and its explicit override. */
	pim.v.footer.timestamp++;
	assert_int_equal(vhd_set_parent(&cim.v, &pim.v, &cim.v, 0), VHD_E_PARENT_TIMESTAMP);
	assert_int_equal(vhd_set_parent(&cim.v, &pim.v, &cim.v, VHD_PARENT_IGNORE_TIMESTAMP), VHD_OK);
	pim.v.footer.timestamp--;
	/* Non-differencing child. */
	assert_int_equal(vhd_set_parent(&pim.v, &cim.v, &pim.v, 0), VHD_E_NOT_DIFF);
	/* A loop: the child named as its own parent's parent. */
	struct vhd fake = cim.v;
	fake.parent = NULL;
	memcpy(fake.header.parent_uuid, cim.v.footer.uuid, 16);
	fake.footer.type = VHD_TYPE_DIFF;
	memcpy(fake.footer.uuid, pim.v.footer.uuid, 16);
	cim.v.parent = &fake;
	fake.header.parent_timestamp = cim.v.footer.timestamp;
	assert_int_equal(vhd_set_parent(&fake, &cim.v, &cim.v, 0), VHD_E_CHAIN_LOOP);
	img_close(&cim);
	img_close(&pim);
	img_close(&other);
	ramdev_free(om);
	ramdev_free(cm);
	ramdev_free(pm);
}

static void test_chain_depth_limit(void **state)
{
	(void)state;
	enum { N = VHD_MAX_CHAIN + 2 };
	struct vhd *chain = calloc(N, sizeof(struct vhd));
	for (int i = 0; i < N; i++) {
		chain[i].footer.type = VHD_TYPE_DIFF;
		memset(chain[i].footer.uuid, 0, 16);
		chain[i].footer.uuid[0] = (uint8_t)i;
		chain[i].footer.uuid[1] = 0x55;
		chain[i].footer.timestamp = (uint32_t)i;
		if (i + 1 < N) {
			memset(chain[i].header.parent_uuid, 0, 16);
			chain[i].header.parent_uuid[0] = (uint8_t)(i + 1);
			chain[i].header.parent_uuid[1] = 0x55;
			chain[i].header.parent_timestamp = (uint32_t)(i + 1);
		}
	}
	int r = VHD_OK, i;
	for (i = 0; i + 1 < N && r == VHD_OK; i++)
		r = vhd_set_parent(&chain[i], &chain[i + 1], &chain[0], 0);
	assert_int_equal(r, VHD_E_CHAIN_DEPTH);
	assert_true(i - 1 <= VHD_MAX_CHAIN);
	assert_true(vhd_chain_depth(&chain[0]) <= VHD_MAX_CHAIN);
	free(chain);
}

/*
 * Power cut during block allocation: stop the device after k writes for
 * every k; the bytes left must open, check without structural defects and
 * hold either the old or the new data.
 */
static void test_power_cut(void **state)
{
	(void)state;
	for (int diff = 0; diff < 2; diff++) {
		struct ramdev *base = make_image(VHD_TYPE_DYNAMIC, 4 << 20, 512 << 10);
		struct img bim;
		assert_int_equal(img_open(&bim, base, 0), VHD_OK);
		uint8_t w[8 * 512], r[8 * 512], old[8 * 512];
		fill_pattern(w, 1020, 8, 1);
		/* The differencing case gets parent data under the write; the dynamic one starts empty. */
		if (diff)
			assert_int_equal(vhd_write(&bim.v, 1020, 8, w), VHD_OK);  /* straddles blocks 0/1 */
		struct ramdev *dev = base;
		struct img pim;
		struct ramdev *cdev = NULL;
		if (diff) {
			assert_int_equal(img_open(&pim, base, VHD_OPEN_RDONLY), VHD_OK);
			cdev = make_child(&pim, 512 << 10);
			dev = cdev;
		}
		assert_int_equal(vhd_read(&bim.v, 1020, 8, old), VHD_OK);
		fill_pattern(w, 1020, 8, 2);
		int total = -1;
		for (int k = 0; ; k++) {
			struct ramdev *c = ramdev_clone(dev);
			c->writes_left = k;
			struct img im;
			assert_int_equal(img_open(&im, c, 0), VHD_OK);
			if (diff)
				assert_int_equal(vhd_set_parent(&im.v, &pim.v, &im.v, 0), VHD_OK);
			int res = vhd_write(&im.v, 1020, 8, w);
			img_close(&im);
			/* "Reboot": reopen what reached the disk. */
			struct ramdev *after = ramdev_clone(c);
			assert_int_equal(img_open(&im, after, 0), VHD_OK);
			if (diff)
				assert_int_equal(vhd_set_parent(&im.v, &pim.v, &im.v, 0), VHD_OK);
			assert_int_equal(vhd_read(&im.v, 1020, 8, r), VHD_OK);
			for (int s = 0; s < 8; s++)
				assert_true(!memcmp(r + s * 512, w + s * 512, 512) ||
					    !memcmp(r + s * 512, old + s * 512, 512));
			if (res == VHD_OK)
				assert_memory_equal(r, w, sizeof(w));
			int codes[VHD_C_COUNT];
			assert_true(run_check(&im, codes) >= 0);
			/* Only leaked space / trailing bytes are acceptable leftovers. */
			assert_int_equal(codes[0] - codes[VHD_C_LEAKED_SPACE] - codes[VHD_C_TRAILING_BYTES], 0);
			img_close(&im);
			ramdev_free(after);
			int done = res == VHD_OK;
			ramdev_free(c);
			if (done) {
				total = k;
				break;
			}
			assert_true(k < 1000);
		}
		assert_true(total >= 4);  /* footer, bitmap, data, BAT at least */
		img_close(&bim);
		if (diff) {
			img_close(&pim);
			ramdev_free(cdev);
		}
		ramdev_free(base);
	}
}

/* A write over several new blocks (one already allocated in the middle): batched, three flushes, blocks in order. */
static void test_batched_alloc(void **state)
{
	(void)state;
	for (int diff = 0; diff < 2; diff++) {
		struct ramdev *base = make_image(VHD_TYPE_DYNAMIC, 8 << 20, 512 << 10);
		struct img pim, im;
		struct ramdev *m = base;
		if (diff) {
			assert_int_equal(img_open(&pim, base, VHD_OPEN_RDONLY), VHD_OK);
			m = make_child(&pim, 512 << 10);
		}
		assert_int_equal(img_open(&im, m, 0), VHD_OK);
		if (diff)
			assert_int_equal(vhd_set_parent(&im.v, &pim.v, &im.v, 0), VHD_OK);
		uint32_t spb = im.v.spb;
		uint8_t *w = malloc((size_t)4 * spb * 512), *r = malloc((size_t)4 * spb * 512);
		fill_pattern(w, spb + 5, 1, 9);
		assert_int_equal(vhd_write(&im.v, spb + 5, 1, w), VHD_OK);      /* block 1 exists before */
		uint32_t b1 = im.v.bat[1];
		uint64_t lba = 7, n = 3ull * spb;                             /* blocks 0..3, partly 0 and 3 */
		fill_pattern(w, lba, (uint32_t)n, 3);
		int f0 = m->flushes;
		assert_int_equal(vhd_write(&im.v, lba, (uint32_t)n, w), VHD_OK);
		assert_int_equal(m->flushes - f0, diff ? 5 : 3);   /* diff: block 1's bitmap, flushed before and after */
		assert_int_equal(im.v.bat[1], b1);
		uint32_t blen = im.v.bitmap_sectors + spb;
		assert_true(im.v.bat[0] != 0xFFFFFFFFu && im.v.bat[2] == im.v.bat[0] + blen && im.v.bat[3] == im.v.bat[2] + blen);
		assert_int_equal(vhd_read(&im.v, lba, (uint32_t)n, r), VHD_OK);
		assert_memory_equal(r, w, (size_t)n * 512);
		img_close(&im);
		/* Reopened from what reached the device: the same data, and the image checks clean. */
		assert_int_equal(img_open(&im, m, 0), VHD_OK);
		if (diff)
			assert_int_equal(vhd_set_parent(&im.v, &pim.v, &im.v, 0), VHD_OK);
		assert_int_equal(vhd_read(&im.v, lba, (uint32_t)n, r), VHD_OK);
		assert_memory_equal(r, w, (size_t)n * 512);
		int codes[VHD_C_COUNT];
		assert_true(run_check(&im, codes) >= 0);
		assert_int_equal(codes[0], 0);
		img_close(&im);
		free(w);
		free(r);
		if (diff) {
			img_close(&pim);
			ramdev_free(m);
		}
		ramdev_free(base);
	}
}

/*
 * A batched write over three new blocks, the first and last partly (dynamic): on a
 * zero_extend device (a file: the footer written first leaves zeros
 * behind) the zero fill around the data is not written, so fewer writes
 * reach the device; either way the data read back (and the rest of the
 * blocks as zeros) before and after reopening, and the image checks clean.
 */
static void test_zero_extend_fill(void **state)
{
	(void)state;
	int writes[2];
	for (int ze = 0; ze < 2; ze++) {
		struct ramdev *m = make_image(VHD_TYPE_DYNAMIC, 8 << 20, 512 << 10);
		m->blk.zero_extend = ze;
		struct img im;
		assert_int_equal(img_open(&im, m, 0), VHD_OK);
		uint32_t spb = im.v.spb;
		size_t bytes = (size_t)3 * spb * 512;
		uint8_t *w = calloc(1, bytes), *r = malloc(bytes);
		uint64_t lba = spb + 40;
		uint32_t n = 2 * spb + 100;            /* blocks 1 and 3 partly, 2 whole */
		fill_pattern(w + 40 * 512, lba, n, 5);
		int w0 = m->writes;
		assert_int_equal(vhd_write(&im.v, lba, n, w + 40 * 512), VHD_OK);
		writes[ze] = m->writes - w0;
		assert_true(im.v.bat[1] != 0xFFFFFFFFu && im.v.bat[2] != 0xFFFFFFFFu && im.v.bat[3] != 0xFFFFFFFFu);
		for (int pass = 0; pass < 2; pass++) {
			memset(r, 0xAA, bytes);
			assert_int_equal(vhd_read(&im.v, spb, 3 * spb, r), VHD_OK);
			assert_memory_equal(r, w, bytes);
			img_close(&im);
			assert_int_equal(img_open(&im, m, 0), VHD_OK);
		}
		int codes[VHD_C_COUNT];
		assert_true(run_check(&im, codes) >= 0);
		assert_int_equal(codes[0], 0);
		img_close(&im);
		free(w);
		free(r);
		ramdev_free(m);
	}
	assert_true(writes[1] < writes[0]);
}

static void test_nospace(void **state)
{
	(void)state;
	struct ramdev *m = make_image(VHD_TYPE_DYNAMIC, 8 << 20, 2 << 20);
	m->blk.max_sectors = m->blk.sectors + 100;  /* no room for a 2 MiB block */
	struct img im;
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	uint8_t w[512];
	fill_pattern(w, 0, 1, 3);
	uint64_t size = m->blk.size_bytes;
	int writes = m->stored;
	assert_int_equal(vhd_write(&im.v, 0, 1, w), VHD_E_NOSPACE);
	assert_int_equal(m->stored, writes);          /* nothing written */
	assert_int_equal(m->blk.size_bytes, size);
	img_close(&im);
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	img_close(&im);
	ramdev_free(m);
}

/* A write spanning an allocated block and one there is no room for changes nothing at all. */
static void test_nospace_refuses_whole_write(void **state)
{
	(void)state;
	struct ramdev *m = make_image(VHD_TYPE_DYNAMIC, 8 << 20, 512 << 10);
	struct img im;
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	uint8_t w[16 * 512], r[16 * 512], old[16 * 512];
	fill_pattern(w, 1016, 8, 1);
	assert_int_equal(vhd_write(&im.v, 1016, 8, w), VHD_OK);     /* allocates block 0 only */
	assert_int_equal(im.v.bat[1], VHD_BAT_FREE);
	m->blk.max_sectors = m->blk.sectors;                           /* the device is now full */
	assert_int_equal(vhd_read(&im.v, 1016, 16, old), VHD_OK);
	int writes = m->stored;
	fill_pattern(w, 1016, 16, 2);                                  /* block 0 tail + block 1 head */
	assert_int_equal(vhd_write(&im.v, 1016, 16, w), VHD_E_NOSPACE);
	assert_int_equal(m->stored, writes);                           /* not even block 0's part */
	assert_int_equal(vhd_read(&im.v, 1016, 16, r), VHD_OK);
	assert_memory_equal(r, old, sizeof(r));
	/* Zeros into the free block need no room, so the same span of zeros is fine. */
	memset(w, 0, sizeof(w));
	assert_int_equal(vhd_write(&im.v, 1016, 16, w), VHD_OK);
	assert_int_equal(im.v.bat[1], VHD_BAT_FREE);
	img_close(&im);
	ramdev_free(m);
}

static void test_check_finds_defects(void **state)
{
	(void)state;
	struct ramdev *m = make_image(VHD_TYPE_DYNAMIC, 4 << 20, 512 << 10);
	struct img im;
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	uint8_t w[512];
	fill_pattern(w, 0, 1, 3);
	assert_int_equal(vhd_write(&im.v, 0, 1, w), VHD_OK);
	int codes[VHD_C_COUNT];
	assert_int_equal(run_check(&im, codes), 0);
	img_close(&im);
	/* Backup footer differs; reserved byte set in the end footer (recomputed checksum). */
	m->data[100] ^= 1;
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	assert_true(run_check(&im, codes) >= 1);
	assert_int_equal(codes[VHD_C_BACKUP_FOOTER_MISSING], 1);
	img_close(&im);
	m->data[100] ^= 1;
	/* Data behind a clear bitmap bit (dynamic): deep scan finds it. */
	uint32_t e;
	memcpy(&e, m->data + 1536, 4);
	e = __builtin_bswap32(e);
	m->data[(uint64_t)e * 512] &= 0x7F;   /* clear bit of sector 0, which holds data */
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	assert_int_equal(vhd_read(&im.v, 0, 1, w), VHD_OK);
	uint8_t zero[512] = { 0 };
	assert_memory_equal(w, zero, 512);        /* clear bit reads as zeros */
	assert_true(run_check(&im, codes) >= 1);
	assert_int_equal(codes[VHD_C_DATA_BITMAP_CLEAR], 1);
	img_close(&im);
	ramdev_free(m);
}

/* Move the end footer of an opened image `by` sectors further out (unused space before it), reopen. */
static void push_footer(struct img *im, struct ramdev *m, uint64_t by)
{
	uint8_t f[512];
	uint64_t pos = im->v.footer_pos;
	memcpy(f, m->data + pos, 512);
	img_close(im);
	memset(m->data + pos, 0xA5, 512);   /* the old footer's place becomes unused junk */
	assert_int_equal(blk_write(&m->blk, pos / 512 + by, 1, f), BLK_OK);
	assert_int_equal(img_open(im, m, 0), VHD_OK);
}

/* Holes shorter than a block are alignment notes; holes with room for a block are leaks (check severities). */
static void test_check_gap_severity(void **state)
{
	(void)state;
	struct ramdev *m = make_image(VHD_TYPE_DYNAMIC, 4 << 20, 64 << 10);   /* a block: 1 + 128 sectors */
	struct img im;
	uint8_t w[512];
	int codes[VHD_C_COUNT];
	fill_pattern(w, 0, 1, 9);
	assert_int_equal(img_open(&im, m, 0), VHD_OK);
	assert_int_equal(vhd_write(&im.v, 0, 1, w), VHD_OK);
	/* 5 unused sectors before the next block: padding, a note. */
	push_footer(&im, m, 5);
	assert_int_equal(run_check(&im, codes), 1);
	assert_int_equal(codes[VHD_C_ALIGN_GAP], 1);
	assert_int_equal(vhd_check_severity(VHD_C_ALIGN_GAP), VHD_SEV_NOTE);
	assert_int_equal(vhd_write(&im.v, 128, 1, w), VHD_OK);   /* block 1 after the hole */
	assert_int_equal(run_check(&im, codes), 1);
	assert_int_equal(codes[VHD_C_ALIGN_GAP], 1);
	/* A block's room unused before the footer: trailing bytes, a leak. */
	push_footer(&im, m, 129);
	assert_int_equal(run_check(&im, codes), 2);
	assert_int_equal(codes[VHD_C_TRAILING_BYTES], 1);
	assert_int_equal(vhd_check_severity(VHD_C_TRAILING_BYTES), VHD_SEV_LEAK);
	/* ... and once a block follows it, leaked space in the middle. */
	assert_int_equal(vhd_write(&im.v, 256, 1, w), VHD_OK);
	assert_int_equal(run_check(&im, codes), 2);
	assert_int_equal(codes[VHD_C_LEAKED_SPACE], 1);
	assert_int_equal(codes[VHD_C_ALIGN_GAP], 1);
	assert_int_equal(vhd_check_severity(VHD_C_LEAKED_SPACE), VHD_SEV_LEAK);
	assert_int_equal(vhd_check_severity(VHD_C_BLOCK_OVERLAP), VHD_SEV_DEFECT);
	img_close(&im);
	ramdev_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum_and_chs),
		cmocka_unit_test(test_fixed_io),
		cmocka_unit_test(test_dynamic_io_block_sizes),
		cmocka_unit_test(test_range_and_readonly),
		cmocka_unit_test(test_backup_footer_and_short_footer),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_bat_validation),
		cmocka_unit_test(test_differencing),
		cmocka_unit_test(test_parent_checks),
		cmocka_unit_test(test_chain_depth_limit),
		cmocka_unit_test(test_power_cut),
		cmocka_unit_test(test_batched_alloc),
		cmocka_unit_test(test_zero_extend_fill),
		cmocka_unit_test(test_nospace),
		cmocka_unit_test(test_nospace_refuses_whole_write),
		cmocka_unit_test(test_check_finds_defects),
		cmocka_unit_test(test_check_gap_severity),
		cmocka_unit_test(test_plain_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
