/* ramdev.c: the unit tests' one RAM block device (see ramdev.h); linked into every tests/unit program. */
#include <stdlib.h>
#include <string.h>
#include "ramdev.h"
#include "../../block/disk.h"

/* Fill 512 bytes at dst with sector lba: fill() or zeros, then the backed bytes below min(cap, size_bytes). */
static void rd_sector(const struct ramdev *r, uint64_t lba, uint8_t *dst)
{
	uint64_t off = lba * 512, end = r->cap < r->blk.size_bytes ? r->cap : r->blk.size_bytes;
	if (r->fill)
		r->fill(lba, dst);
	else
		memset(dst, 0, 512);
	if (off < end)
		memcpy(dst, r->data + off, end - off < 512 ? end - off : 512);
}

/* Read callback: counted, faults, range (bad), then sector by sector. */
static int rd_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct ramdev *r = d->priv;
	r->reads++;
	r->last_lba = lba;
	r->max_seen = count > r->max_seen ? count : r->max_seen;
	if (r->fail_io || r->fail_reads) {
		if (r->fail_status)
			disk_note_status(r->fail_status);
		return BLK_E_IO;
	}
	if (!count || blk_out_of_range(lba, count, d->sectors)) {
		r->bad++;
		return BLK_E_RANGE;
	}
	for (uint32_t i = 0; i < count; i++)
		rd_sector(r, lba + i, (uint8_t *)buf + (size_t)i * 512);
	return BLK_OK;
}

/* Grow data to hold end bytes (doubling, zero-filled). */
static void rd_reserve(struct ramdev *r, uint64_t end)
{
	if (end <= r->cap)
		return;
	uint64_t nc = r->cap ? r->cap : 4096;
	while (nc < end)
		nc *= 2;
	r->data = realloc(r->data, nc);
	memset(r->data + r->cap, 0, nc - r->cap);
	r->cap = nc;
}

/* The checks a write and a write_zeroes share; BLK_OK when [lba, lba + count) may be stored. */
static int rd_write_check(struct ramdev *r, uint64_t lba, uint64_t count)
{
	struct blk_dev *d = &r->blk;
	if (r->fail_io)
		return BLK_E_IO;
	if (r->writes_left == 0)
		return BLK_E_IO;
	if (r->writes_left > 0)
		r->writes_left--;
	if (d->read_only)
		return BLK_E_RO;
	if (r->nospace)
		return BLK_E_NOSPACE;
	if (!count || blk_out_of_range(lba, count, (r->flags & RAMDEV_GROW) ? d->max_sectors : d->sectors)) {
		r->bad++;
		return (r->flags & RAMDEV_GROW) ? BLK_E_NOSPACE : BLK_E_RANGE;
	}
	if (r->flags & RAMDEV_GROW)
		return BLK_OK;
	if (!r->cap)
		return BLK_E_IO;          /* pattern only: no medium to write to */
	if ((lba + count) * 512 > r->cap)
		return BLK_E_RANGE;
	return BLK_OK;
}

/* Store [lba, lba + count) from buf (NULL: zeros), growing a RAMDEV_GROW device. */
static void rd_store(struct ramdev *r, uint64_t lba, uint64_t count, const void *buf)
{
	uint64_t end = (lba + count) * 512;
	if (r->flags & RAMDEV_GROW) {
		rd_reserve(r, end);
		if (end > r->blk.size_bytes) {
			r->blk.size_bytes = end;
			r->blk.sectors = lba + count;
		}
	}
	if (buf)
		memcpy(r->data + lba * 512, buf, (size_t)count * 512);
	else
		memset(r->data + lba * 512, 0, (size_t)count * 512);
	r->stored++;
}

/* Write callback: counted, checked (rd_write_check), stored unless drop_writes. */
static int rd_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct ramdev *r = d->priv;
	r->writes++;
	r->last_lba = lba;
	r->max_seen = count > r->max_seen ? count : r->max_seen;
	int st = rd_write_check(r, lba, count);
	if (st == BLK_OK && !r->drop_writes)
		rd_store(r, lba, count, buf);
	return st;
}

/* write_zeroes callback (RAMDEV_ZEROES): as rd_write with zeros. */
static int rd_zeroes(struct blk_dev *d, uint64_t lba, uint64_t count)
{
	struct ramdev *r = d->priv;
	r->zeroes++;
	int st = rd_write_check(r, lba, count);
	if (st == BLK_OK && !r->drop_writes)
		rd_store(r, lba, count, NULL);
	return st;
}

/* Flush callback: counted; fails under fail_io or after a power cut. */
static int rd_flush(struct blk_dev *d)
{
	struct ramdev *r = d->priv;
	r->flushes++;
	return r->fail_io || r->writes_left == 0 ? BLK_E_IO : BLK_OK;
}

/* A zeroed device with the callbacks set and no data; the constructors size it. */
static struct ramdev *rd_alloc(unsigned flags)
{
	struct ramdev *r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	r->flags = flags;
	r->writes_left = -1;
	r->blk.name = "ram";
	r->blk.read = rd_read;
	r->blk.write = rd_write;
	r->blk.flush = rd_flush;
	r->blk.write_zeroes = (flags & RAMDEV_ZEROES) ? rd_zeroes : NULL;
	r->blk.priv = r;
	return r;
}

struct ramdev *ramdev_new(uint64_t sectors, uint64_t cap_sectors, unsigned flags)
{
	struct ramdev *r = rd_alloc(flags & ~(unsigned)RAMDEV_GROW);
	r->cap = cap_sectors * 512;
	r->data = calloc(1, r->cap ? r->cap : 1);
	if (!r->data)
		abort();
	r->blk.sectors = r->blk.max_sectors = sectors;
	r->blk.size_bytes = sectors * 512;
	return r;
}

struct ramdev *ramdev_growing(uint64_t max_sectors, unsigned flags)
{
	struct ramdev *r = rd_alloc(flags | RAMDEV_GROW);
	r->blk.max_sectors = max_sectors;
	return r;
}

struct ramdev *ramdev_clone(const struct ramdev *r)
{
	struct ramdev *c = rd_alloc(r->flags);
	c->blk = r->blk;
	c->blk.priv = c;
	c->fill = r->fill;
	c->cap = r->cap;
	c->data = malloc(r->cap ? r->cap : 1);
	if (!c->data)
		abort();
	memcpy(c->data, r->data, r->cap);
	return c;
}

void ramdev_truncate(struct ramdev *r, uint64_t bytes)
{
	r->blk.size_bytes = bytes;
	r->blk.sectors = (bytes + 511) / 512;
}

void ramdev_free(struct ramdev *r)
{
	if (r) {
		free(r->data);
		free(r);
	}
}
