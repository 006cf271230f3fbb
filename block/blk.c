/* blk.c: the one range check and request splitter in front of every blk_dev, and the window view (partition or disk prefix). */
#include "blk.h"

/* Pass [lba, lba + count) to d's read (write = 0) or write callback in pieces of at most d->max_count sectors. */
static int blk_split(struct blk_dev *d, uint64_t lba, uint32_t count, uint8_t *p, int write)
{
	while (count) {
		uint32_t n = d->max_count && count > d->max_count ? d->max_count : count;
		int st = write ? d->write(d, lba, n, p) : d->read(d, lba, n, p);
		if (st != BLK_OK)
			return st;
		lba += n;
		count -= n;
		p += (uint64_t)n * BLK_SECTOR;
	}
	return BLK_OK;
}

int blk_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	if (blk_out_of_range(lba, count, d->sectors))
		return BLK_E_RANGE;
	d->read_reqs++;
	d->read_sectors += count;
	return blk_split(d, lba, count, buf, 0);
}

int blk_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	if (d->read_only || !d->write)
		return BLK_E_RO;
	if (blk_out_of_range(lba, count, d->max_sectors))
		return BLK_E_NOSPACE;
	return blk_split(d, lba, count, (uint8_t *)(uintptr_t)buf, 1);   /* the write callback takes it as const again */
}

int blk_write_zeroes(struct blk_dev *d, uint64_t lba, uint64_t count)
{
	if (d->read_only || !d->write)
		return BLK_E_RO;
	if (!d->write_zeroes)
		return BLK_E_IO;
	if (blk_out_of_range(lba, count, d->max_sectors))
		return BLK_E_NOSPACE;
	return count ? d->write_zeroes(d, lba, count) : BLK_OK;
}

int blk_flush(struct blk_dev *d)
{
	return d->flush ? d->flush(d) : BLK_OK;
}

struct blk_dev *blk_linear_bottom(struct blk_dev *d, uint64_t *start)
{
	uint64_t at = 0, need = d->sectors;
	struct blk_dev *under;
	uint64_t s;
	for (int depth = 0; depth < 8 && d->linear && d->linear(d, &under, &s); depth++) {
		if (!under || blk_out_of_range(at + s, need, under->sectors) || at + s < at)
			break;            /* a view past its device's end: stop where it still holds */
		at += s;
		d = under;
	}
	*start = at;
	return d;
}

/* ------------------------------------------------------------------ the window */

/* Window linear: the same sectors of the device below, from start. */
static int blk_window_linear(const struct blk_dev *d, struct blk_dev **under, uint64_t *start)
{
	const struct blk_window *w = d->priv;
	*under = w->under;
	*start = w->start;
	return 1;
}

/* Window read: the same sectors of the device below. */
static int blk_window_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct blk_window *w = d->priv;
	return blk_read(w->under, w->start + lba, count, buf);
}

/* Window write: below, then grow the window when written past its current end. */
static int blk_window_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct blk_window *w = d->priv;
	w->dirty = 1;
	int st = blk_write(w->under, w->start + lba, count, buf);
	if (st == BLK_OK && lba + count > d->sectors) {
		d->sectors = lba + count;
		d->size_bytes = d->sectors * BLK_SECTOR;
	}
	return st;
}

/* Window write_zeroes: below (only set when the device below has it). */
static int blk_window_zeroes(struct blk_dev *d, uint64_t lba, uint64_t count)
{
	struct blk_window *w = d->priv;
	w->dirty = 1;
	int st = blk_write_zeroes(w->under, w->start + lba, count);
	if (st == BLK_OK && lba + count > d->sectors) {
		d->sectors = lba + count;
		d->size_bytes = d->sectors * BLK_SECTOR;
	}
	return st;
}

/* Window flush: passed on unless nothing was written through the window since the last one. */
static int blk_window_flush(struct blk_dev *d)
{
	struct blk_window *w = d->priv;
	if (!w->dirty)
		return BLK_OK;
	int st = blk_flush(w->under);
	if (st == BLK_OK)
		w->dirty = 0;
	return st;
}

struct blk_dev *blk_window_init(struct blk_window *w, struct blk_dev *under, uint64_t start,
				uint64_t sectors, uint64_t max_sectors, const char *name)
{
	struct blk_dev *d = &w->dev;
	if (max_sectors < sectors || blk_out_of_range(start, sectors, under->sectors) ||
	    blk_out_of_range(start, max_sectors, under->max_sectors > under->sectors ? under->max_sectors : under->sectors))
		return 0;
	w->under = under;
	w->start = start;
	w->dirty = 0;
	*d = (struct blk_dev){ 0 };
	d->name = name ? name : under->name;
	d->sectors = sectors;
	d->size_bytes = sectors * BLK_SECTOR;
	d->max_sectors = max_sectors;
	d->read_only = under->read_only || !under->write;
	d->read = blk_window_read;
	d->write = d->read_only ? 0 : blk_window_write;
	d->flush = blk_window_flush;
	d->write_zeroes = under->write_zeroes && !d->read_only ? blk_window_zeroes : 0;
	d->linear = blk_window_linear;
	d->priv = w;
	return d;
}
