/* test_blk.c: block/blk.c: the one range check, the split by max_count, read-only and no-room refusals, windows (partition, growing prefix). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "../../block/blk.h"
#include "ramdev.h"

/* A RAM device of sectors sectors (64 backed, sector i holding byte i) split by max_count; it records every callback. */
static struct ramdev *rec_new(uint64_t sectors, uint32_t max_count)
{
	struct ramdev *r = ramdev_new(sectors, 64, RAMDEV_ZEROES);
	for (size_t i = 0; i < r->cap; i++)
		r->data[i] = (uint8_t)(i / 512);
	r->blk.name = "rec";
	r->blk.max_count = max_count;
	return r;
}

static uint8_t buf[64 * 512];

static void test_split_and_range(void **state)
{
	(void)state;
	struct ramdev *r = rec_new(40, 3);
	assert_int_equal(blk_read(&r->blk, 5, 10, buf), BLK_OK);
	assert_int_equal(r->reads, 4);              /* 3 + 3 + 3 + 1 */
	assert_int_equal(r->max_seen, 3);
	for (int i = 0; i < 10; i++)
		assert_int_equal(buf[i * 512], 5 + i);
	assert_int_equal(blk_read(&r->blk, 0, 0, buf), BLK_OK);
	assert_int_equal(r->reads, 4);              /* nothing to do: no callback */
	assert_int_equal(blk_read(&r->blk, 39, 1, buf), BLK_OK);
	assert_int_equal(blk_read(&r->blk, 39, 2, buf), BLK_E_RANGE);
	assert_int_equal(blk_read(&r->blk, 40, 1, buf), BLK_E_RANGE);
	assert_int_equal(blk_read(&r->blk, UINT64_MAX, 2, buf), BLK_E_RANGE);
	memset(buf, 0xEE, 7 * 512);
	assert_int_equal(blk_write(&r->blk, 33, 7, buf), BLK_OK);
	assert_int_equal(r->writes, 3);
	assert_int_equal(r->data[39 * 512], 0xEE);
	assert_int_equal(blk_write(&r->blk, 34, 7, buf), BLK_E_NOSPACE);
	assert_int_equal(blk_write_zeroes(&r->blk, 30, 11), BLK_E_NOSPACE);
	assert_int_equal(blk_write_zeroes(&r->blk, 30, 10), BLK_OK);
	assert_int_equal(r->data[39 * 512], 0);
	assert_int_equal(blk_flush(&r->blk), BLK_OK);
	assert_int_equal(r->flushes, 1);
	/* No limit: one callback. */
	r->blk.max_count = 0;
	r->reads = 0;
	assert_int_equal(blk_read(&r->blk, 0, 40, buf), BLK_OK);
	assert_int_equal(r->reads, 1);
	/* Read-only and write-less devices refuse before any callback. */
	r->blk.read_only = 1;
	r->writes = 0;
	assert_int_equal(blk_write(&r->blk, 0, 1, buf), BLK_E_RO);
	assert_int_equal(blk_write_zeroes(&r->blk, 0, 1), BLK_E_RO);
	r->blk.read_only = 0;
	r->blk.write_zeroes = NULL;
	assert_int_equal(blk_write_zeroes(&r->blk, 0, 1), BLK_E_IO);
	r->blk.write = NULL;
	assert_int_equal(blk_write(&r->blk, 0, 1, buf), BLK_E_RO);
	assert_int_equal(r->writes, 0);
	r->blk.flush = NULL;
	assert_int_equal(blk_flush(&r->blk), BLK_OK);
	assert_int_equal(r->bad, 0);
	ramdev_free(r);
}

static void test_windows(void **state)
{
	(void)state;
	struct ramdev *r = rec_new(64, 4);
	struct blk_window w;
	/* A partition: sectors 10..29; offsets applied, ranges its own, split below. */
	struct blk_dev *p = blk_window_init(&w, &r->blk, 10, 20, 20, NULL);
	assert_non_null(p);
	assert_string_equal(p->name, "rec");
	assert_int_equal(p->sectors, 20);
	assert_int_equal(blk_read(p, 0, 9, buf), BLK_OK);
	assert_int_equal(buf[0], 10);
	assert_int_equal(buf[8 * 512], 18);
	assert_int_equal(r->max_seen, 4);
	assert_int_equal(blk_read(p, 19, 2, buf), BLK_E_RANGE);
	assert_int_equal(blk_write(p, 19, 2, buf), BLK_E_NOSPACE);
	/* Flushes pass only after a write through the window. */
	assert_int_equal(blk_flush(p), BLK_OK);
	assert_int_equal(r->flushes, 0);
	assert_int_equal(blk_write(p, 19, 1, buf), BLK_OK);
	assert_int_equal(blk_flush(p), BLK_OK);
	assert_int_equal(blk_flush(p), BLK_OK);
	assert_int_equal(r->flushes, 1);
	/* A growing prefix: 8 sectors now, may grow to the disk's end. */
	p = blk_window_init(&w, &r->blk, 0, 8, 64, "prefix");
	assert_non_null(p);
	assert_int_equal(blk_read(p, 8, 1, buf), BLK_E_RANGE);
	memset(buf, 0x77, 512);
	assert_int_equal(blk_write(p, 12, 1, buf), BLK_OK);
	assert_int_equal(p->sectors, 13);
	assert_int_equal(p->size_bytes, 13 * 512);
	assert_int_equal(blk_read(p, 12, 1, buf), BLK_OK);
	assert_int_equal(buf[0], 0x77);
	assert_int_equal(blk_write(p, 64, 1, buf), BLK_E_NOSPACE);
	assert_int_equal(blk_write_zeroes(p, 20, 2), BLK_OK);
	assert_int_equal(p->sectors, 22);
	/* Windows that do not fit, or a max below the size, are refused. */
	assert_null(blk_window_init(&w, &r->blk, 60, 5, 5, NULL));
	assert_null(blk_window_init(&w, &r->blk, 0, 8, 65, NULL));
	assert_null(blk_window_init(&w, &r->blk, 0, 8, 4, NULL));
	assert_null(blk_window_init(&w, &r->blk, UINT64_MAX, 2, 2, NULL));
	/* Read-only carries over. */
	r->blk.read_only = 1;
	p = blk_window_init(&w, &r->blk, 0, 8, 8, NULL);
	assert_int_equal(p->read_only, 1);
	assert_int_equal(blk_write(p, 0, 1, buf), BLK_E_RO);
	assert_int_equal(r->bad, 0);
	ramdev_free(r);
}

/* A view that claims to be linear over `under` from `start` (or refuses: start == UINT64_MAX). */
struct fake_view {
	struct blk_dev dev;
	struct blk_dev *under;
	uint64_t start;
};

static int fake_linear(const struct blk_dev *d, struct blk_dev **under, uint64_t *start)
{
	const struct fake_view *f = d->priv;
	if (f->start == UINT64_MAX)
		return 0;
	*under = f->under;
	*start = f->start;
	return 1;
}

static void fake_init(struct fake_view *f, struct blk_dev *under, uint64_t start, uint64_t sectors)
{
	memset(f, 0, sizeof(*f));
	f->dev.sectors = sectors;
	f->dev.linear = fake_linear;
	f->dev.priv = f;
	f->under = under;
	f->start = start;
}

static void test_linear_bottom(void **state)
{
	(void)state;
	struct ramdev *r = rec_new(64, 4);
	struct blk_window w1, w2;
	uint64_t start = 99;
	/* A device with no linear view is its own bottom. */
	assert_ptr_equal(blk_linear_bottom(&r->blk, &start), &r->blk);
	assert_int_equal(start, 0);
	/* A partition (sectors 10..49) and a window inside it (its 5..24): the offsets add up. */
	struct blk_dev *p = blk_window_init(&w1, &r->blk, 10, 40, 40, NULL);
	struct blk_dev *q = blk_window_init(&w2, p, 5, 20, 20, NULL);
	assert_ptr_equal(blk_linear_bottom(q, &start), &r->blk);
	assert_int_equal(start, 15);
	/* A view on top that is linear too (a fixed image over q from 0), and one that is not (a dynamic image). */
	struct fake_view f;
	fake_init(&f, q, 0, 20);
	assert_ptr_equal(blk_linear_bottom(&f.dev, &start), &r->blk);
	assert_int_equal(start, 15);
	f.start = UINT64_MAX;
	assert_ptr_equal(blk_linear_bottom(&f.dev, &start), &f.dev);
	assert_int_equal(start, 0);
	/* A view that claims more than the device below holds stops the walk where it still holds. */
	fake_init(&f, q, 1, 20);
	assert_ptr_equal(blk_linear_bottom(&f.dev, &start), &f.dev);
	assert_int_equal(start, 0);
	fake_init(&f, q, UINT64_MAX - 1, 20);
	assert_ptr_equal(blk_linear_bottom(&f.dev, &start), &f.dev);
	/* A loop of views ends after a bounded number of steps. */
	struct fake_view a, b;
	fake_init(&a, &b.dev, 0, 8);
	fake_init(&b, &a.dev, 0, 8);
	struct blk_dev *end = blk_linear_bottom(&a.dev, &start);
	assert_true(end == &a.dev || end == &b.dev);
	ramdev_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_and_range),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_linear_bottom),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
