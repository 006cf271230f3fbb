/* test_overlay.c: cmocka tests for kernel/overlay.c (mode=snapshot's RAM overlay) over a RAM lower device and a model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../kernel/overlay.h"
#include "ramdev.h"

/* ------------------------------------------------------------ a lower device that must never be written */

/* A read-only RAM lower device of sectors sectors, sector i filled with byte (i * 7 + 1); a write that
 * reached it anyway would be counted and dropped (ramdev.h). */
static struct ramdev *low_new(uint64_t sectors)
{
	struct ramdev *l = ramdev_new(sectors, sectors, 0);
	for (uint64_t i = 0; i < sectors; i++)
		memset(l->data + i * 512, (int)(i * 7 + 1), 512);
	l->blk.name = NULL;
	l->blk.read_only = 1;
	l->drop_writes = 1;
	return l;
}

static int full_calls;
static uint64_t full_lba;
static uint32_t full_count, full_missing;

/* on_full hook: remember the last refusal. */
static void on_full(struct overlay *o, uint64_t lba, uint32_t count, uint32_t missing)
{
	(void)o;
	full_calls++;
	full_lba = lba;
	full_count = count;
	full_missing = missing;
}

/* ------------------------------------------------------------ tests */

/* Sizes: overlay_bytes and overlay_capacity_for agree, the table keeps 2x entries. */
static void test_sizes(void **state)
{
	(void)state;
	assert_int_equal(overlay_bytes(0), 0);
	assert_int_equal(overlay_bytes(1), 512 + 2 * 8);
	assert_int_equal(overlay_bytes(128), 128 * 512 + 256 * 8);
	assert_int_equal(overlay_bytes(129), 129 * 512 + 512 * 8);
	uint64_t sizes[] = { 600, 64 << 10, 1 << 20, 64 << 20, 256ull << 20, 100000 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t c = overlay_capacity_for(sizes[i]);
		assert_true(c > 0);
		assert_true(overlay_bytes(c) <= sizes[i]);
		assert_true(overlay_bytes(c + 1) > sizes[i]);
	}
	assert_int_equal(overlay_capacity_for(100), 0);
}

/* Random reads and writes against a model; the lower device is never written or flushed. */
static void test_random_model(void **state)
{
	(void)state;
	const uint64_t n = 4096;
	const uint32_t cap = 1500;
	struct ramdev *l = low_new(n);
	uint8_t *model = malloc(n * 512);
	memcpy(model, l->data, n * 512);
	uint8_t *orig = malloc(n * 512);
	memcpy(orig, l->data, n * 512);
	void *mem = malloc(overlay_bytes(cap));
	struct overlay o;
	struct blk_dev *d = overlay_init(&o, &l->blk, mem, cap, "snap");
	assert_non_null(d);
	assert_int_equal(d->sectors, n);
	uint8_t *buf = malloc(128 * 512), *chk = malloc(128 * 512);
	srand(7);
	int refused = 0;
	for (int it = 0; it < 20000; it++) {
		uint32_t cnt = 1 + rand() % 127;
		uint64_t lba = rand() % (n - cnt + 1);
		if (rand() % 3 == 0) {
			for (uint32_t i = 0; i < cnt * 512; i++)
				buf[i] = (uint8_t)rand();
			uint32_t before = o.used;
			int st = blk_write(d, lba, cnt, buf);
			if (st == BLK_OK) {
				memcpy(model + lba * 512, buf, (size_t)cnt * 512);
			} else {
				assert_int_equal(st, BLK_E_NOSPACE);
				assert_int_equal(o.used, before);   /* all or nothing */
				refused++;
			}
		} else {
			assert_int_equal(blk_read(d, lba, cnt, chk), BLK_OK);
			assert_memory_equal(chk, model + lba * 512, (size_t)cnt * 512);
		}
		assert_true(o.used <= cap);
	}
	assert_true(refused > 0);               /* the pool did fill up in this run */
	assert_int_equal(o.refused, (uint32_t)refused);
	assert_int_equal(blk_flush(d), BLK_OK);
	assert_int_equal(l->writes, 0);
	assert_int_equal(l->flushes, 0);
	assert_memory_equal(l->data, orig, n * 512);
	for (uint64_t lba = 0; lba < n; lba += 128) {
		assert_int_equal(blk_read(d, lba, 128, chk), BLK_OK);
		assert_memory_equal(chk, model + lba * 512, 128 * 512);
	}
	free(buf), free(chk), free(mem), free(model), free(orig), ramdev_free(l);
}

/* Runs of sectors not in the overlay go to the lower device as one request each. */
static void test_runs_coalesce(void **state)
{
	(void)state;
	struct ramdev *l = low_new(256);
	void *mem = malloc(overlay_bytes(64));
	struct overlay o;
	struct blk_dev *d = overlay_init(&o, &l->blk, mem, 64, "snap");
	uint8_t buf[128 * 512];
	assert_int_equal(blk_read(d, 0, 128, buf), BLK_OK);
	assert_int_equal(l->reads, 1);            /* empty overlay: one request */
	memset(buf, 0xAB, 512);
	assert_int_equal(blk_write(d, 10, 1, buf), BLK_OK);
	assert_int_equal(blk_write(d, 20, 1, buf), BLK_OK);
	assert_int_equal(blk_write(d, 21, 1, buf), BLK_OK);
	l->reads = 0;
	assert_int_equal(blk_read(d, 0, 128, buf), BLK_OK);
	assert_int_equal(l->reads, 3);            /* [0,10) [11,20) [22,128) */
	assert_int_equal(buf[10 * 512], 0xAB);
	assert_int_equal(buf[9 * 512], (uint8_t)(9 * 7 + 1));
	assert_int_equal(buf[22 * 512], (uint8_t)(22 * 7 + 1));
	l->reads = 0;
	assert_int_equal(blk_read(d, 20, 2, buf), BLK_OK);
	assert_int_equal(l->reads, 0);            /* all from the overlay */
	free(mem), ramdev_free(l);
}

/* Full: the refused write stores nothing, reports lba/count/missing, and rewrites of stored sectors still work. */
static void test_full(void **state)
{
	(void)state;
	struct ramdev *l = low_new(1024);
	void *mem = malloc(overlay_bytes(16));
	struct overlay o;
	struct blk_dev *d = overlay_init(&o, &l->blk, mem, 16, "snap");
	o.on_full = on_full;
	full_calls = 0;
	uint8_t buf[32 * 512], chk[32 * 512];
	memset(buf, 0x11, sizeof(buf));
	assert_int_equal(blk_write(d, 100, 12, buf), BLK_OK);
	assert_int_equal(blk_write(d, 200, 8, buf), BLK_E_NOSPACE);   /* 4 free, 8 needed */
	assert_int_equal(full_calls, 1);
	assert_int_equal(full_lba, 200);
	assert_int_equal(full_count, 8);
	assert_int_equal(full_missing, 4);
	assert_int_equal(o.used, 12);
	assert_int_equal(blk_read(d, 200, 8, chk), BLK_OK);
	assert_int_equal(chk[0], (uint8_t)(200 * 7 + 1));            /* nothing of the refused write */
	/* Overlapping write: 8 already stored + 4 new fits exactly. */
	memset(buf, 0x22, sizeof(buf));
	assert_int_equal(blk_write(d, 104, 12, buf), BLK_OK);
	assert_int_equal(o.used, 16);
	assert_int_equal(blk_write(d, 100, 16, buf), BLK_OK);         /* all stored: no room needed */
	assert_int_equal(blk_write(d, 0, 1, buf), BLK_E_NOSPACE);
	assert_int_equal(full_calls, 2);
	assert_int_equal(o.refused, 2);
	assert_int_equal(l->writes, 0);
	free(mem), ramdev_free(l);
}

/* Range checks and lower-device errors pass through; bad arguments are refused. */
static void test_errors(void **state)
{
	(void)state;
	struct ramdev *l = low_new(64);
	void *mem = malloc(overlay_bytes(8));
	struct overlay o;
	assert_null(overlay_init(&o, &l->blk, NULL, 8, "x"));
	assert_null(overlay_init(&o, &l->blk, mem, 0, "x"));
	struct blk_dev *d = overlay_init(&o, &l->blk, mem, 8, "a-rather-long-overlay-device-name");
	assert_non_null(d);
	assert_int_equal(strlen(d->name), sizeof(o.name) - 1);
	uint8_t buf[4 * 512];
	assert_int_equal(blk_read(d, 62, 4, buf), BLK_E_RANGE);
	assert_int_equal(blk_write(d, 63, 2, buf), BLK_E_NOSPACE);
	assert_int_equal(blk_write(d, 64, 0, buf), BLK_OK);
	l->fail_reads = 1;
	assert_int_equal(blk_read(d, 0, 4, buf), BLK_E_IO);
	assert_int_equal(blk_write(d, 0, 1, buf), BLK_OK);
	assert_int_equal(blk_read(d, 0, 1, buf), BLK_OK);             /* served from memory */
	free(mem), ramdev_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_random_model),
		cmocka_unit_test(test_runs_coalesce),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
