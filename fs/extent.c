/* extent.c: build a FAT file's extent list and serve a blk_dev over it (O(log n) lookup, split across runs). */
#include <stddef.h>
#include "extent.h"
#include "fat_format.h"
#include "fs_util.h"

static const struct errtab_msg ext_msgs[EXT_E_COUNT] = {
	[EXT_OK] = { "ok", "success" },
	[EXT_E_BAD_ARG] = { "bad-arg", "invalid argument" },
	[EXT_E_IS_DIR] = { "is-dir", "a directory, not a file" },
	[EXT_E_CHAIN] = { "chain", "the file's cluster chain is damaged" },
	[EXT_E_OVERFLOW] = { "overflow", "the file has more fragments than the extent array holds" },
	[EXT_E_FS] = { "refused", "the file system cannot serve this file as it is" },
};

const char *ext_strerror(int err)
{
	return errtab_text(ext_msgs, EXT_E_COUNT, err, "unknown extent error");
}

const char *ext_errname(int err)
{
	return errtab_name(ext_msgs, EXT_E_COUNT, err, "unknown");
}

int ext_map_begin(struct ext_map *map, struct blk_dev *dev, struct ext_run *runs, uint32_t cap, int is_dir)
{
	FS_MEMSET(map, 0, sizeof(*map));
	map->dev = dev;
	map->runs = runs;
	map->cap = cap;
	return is_dir ? EXT_E_IS_DIR : EXT_OK;
}

int ext_map_end(struct ext_map *map, int loop_err)
{
	if (map->needed > map->cap)
		return EXT_E_OVERFLOW;
	/*
	 * A chain that loops back inside the walked length would make two parts
	 * of the file share sectors (a write to one would change the other):
	 * any such revisit shows up as two overlapping runs.
	 */
	if (ext_overlap(map)) {
		map->fat_err = loop_err;
		return EXT_E_CHAIN;
	}
	map->count = map->needed;
	return EXT_OK;
}

int ext_build(struct fat_vol *v, const struct fat_file *f, struct ext_map *map, struct ext_run *runs, uint32_t cap)
{
	uint32_t spc, c, k, nclus, file_sector = 0;
	uint64_t run_end = 0, clus_bytes;
	int rc;
	if (!v || !f || !map || (!runs && cap))
		return EXT_E_BAD_ARG;
	rc = ext_map_begin(map, v->dev, runs, cap, f->attr & FAT_ATTR_DIR);
	if (rc)
		return rc;
	spc = v->sec_per_clus;
	clus_bytes = (uint64_t)spc << 9;
	nclus = (uint32_t)((f->size + clus_bytes - 1) >> (9 + v->clus_shift));
	map->size_bytes = f->size;
	map->sectors = (uint32_t)(((uint64_t)f->size + BLK_SECTOR - 1) >> 9);
	map->alloc_sectors = nclus * spc;
	if (nclus == 0)
		return EXT_OK;
	if (nclus > v->clusters) {
		map->fat_err = FAT_E_CHAIN_SHORT;
		return EXT_E_CHAIN;
	}
	c = f->first_cluster;
	if (c < 2 || c > v->clusters + 1) {
		map->fat_err = c ? FAT_E_CHAIN_RANGE : FAT_E_CHAIN_SHORT;
		return EXT_E_CHAIN;
	}
	/* The walk stops after nclus <= clusters steps, so a looping chain cannot hang it. */
	for (k = 0;; k++) {
		ext_append(map, &run_end, file_sector, fat_cluster_lba(v, c), spc);
		file_sector += spc;
		rc = fat_next_cluster(v, c, &c);
		if (k + 1 == nclus) {
			map->chain_longer = rc == FAT_OK && c != FAT_EOC;
			break;
		}
		if (rc == FAT_OK && c == FAT_EOC)
			rc = FAT_E_CHAIN_SHORT;
		if (rc) {
			map->fat_err = rc;
			map->needed = 0;
			return EXT_E_CHAIN;
		}
	}
	return ext_map_end(map, FAT_E_CHAIN_LOOP);
}

int32_t ext_find(const struct ext_map *map, uint64_t s)
{
	uint32_t lo = 0, hi = map->count;
	if (s >= map->alloc_sectors || map->count == 0)
		return -1;
	/* The last run whose file_sector <= s. */
	while (hi - lo > 1) {
		uint32_t mid = lo + ((hi - lo) >> 1);
		if (map->runs[mid].file_sector <= s)
			lo = mid;
		else
			hi = mid;
	}
	return (int32_t)lo;
}

enum ext_op { EXT_READ, EXT_WRITE, EXT_ZEROES };

/* Split [lba, lba+count) of the file over its runs and apply op to each piece. */
static int ext_io(struct ext_map *m, enum ext_op op, uint64_t lba, uint64_t count, uint8_t *rbuf, const uint8_t *wbuf)
{
	int32_t i = ext_find(m, lba);
	if (i < 0)
		return BLK_E_RANGE;
	while (count) {
		const struct ext_run *r;
		uint64_t off, n;
		int rc;
		if ((uint32_t)i >= m->count)
			return BLK_E_RANGE;
		r = &m->runs[i++];
		off = lba - r->file_sector;
		n = r->sectors - off < count ? r->sectors - off : count;
		if (op == EXT_READ)
			rc = blk_read(m->dev, r->lba + off, (uint32_t)n, rbuf);
		else if (op == EXT_WRITE)
			rc = blk_write(m->dev, r->lba + off, (uint32_t)n, wbuf);
		else
			rc = blk_write_zeroes(m->dev, r->lba + off, n);
		if (rc)
			return rc;
		if (rbuf)
			rbuf += n << 9;
		if (wbuf)
			wbuf += n << 9;
		lba += n;
		count -= n;
	}
	return BLK_OK;
}

static int ext_blk_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf)
{
	struct ext_map *m = d->priv;
	uint32_t tail = (uint32_t)(m->size_bytes & (BLK_SECTOR - 1));
	int rc;
	rc = ext_io(m, EXT_READ, lba, count, buf, NULL);
	/* The slack after the file's end in its last sector reads as zeros, as blk.h promises. */
	if (rc == BLK_OK && tail && lba + count == m->sectors)
		FS_MEMSET((uint8_t *)buf + ((uint64_t)(count - 1) << 9) + tail, 0, BLK_SECTOR - tail);
	return rc;
}

/* A write reaching past the file's last sector: have the file system extend the file first. */
static int ext_blk_extend(struct blk_dev *d, struct ext_map *m, uint64_t end)
{
	int rc;
	if (end <= m->sectors)
		return BLK_OK;
	if (!m->grow)
		return BLK_E_NOSPACE;
	rc = m->grow(m->grow_ctx, m, end << 9);
	d->sectors = m->sectors;
	d->size_bytes = m->size_bytes;
	if (rc == BLK_OK && end > m->sectors)
		rc = BLK_E_NOSPACE;     /* a grow callback that did less than asked */
	return rc;
}

static int ext_blk_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf)
{
	struct ext_map *m = d->priv;
	int rc = ext_blk_extend(d, m, lba + count);
	if (rc)
		return rc;
	return ext_io(m, EXT_WRITE, lba, count, NULL, buf);
}

static int ext_blk_zeroes(struct blk_dev *d, uint64_t lba, uint64_t count)
{
	struct ext_map *m = d->priv;
	int rc = ext_blk_extend(d, m, lba + count);
	if (rc)
		return rc;
	return ext_io(m, EXT_ZEROES, lba, count, NULL, NULL);
}

static int ext_blk_flush(struct blk_dev *d)
{
	struct ext_map *m = d->priv;
	return blk_flush(m->dev);
}

/* blk_dev.linear: a file in one run from its first sector, whole sectors only, is that run of the volume as it is. */
static int ext_blk_linear(const struct blk_dev *d, struct blk_dev **under, uint64_t *start)
{
	const struct ext_map *m = d->priv;
	if (!m->dev || m->count != 1 || m->runs[0].file_sector != 0 || m->runs[0].sectors < m->sectors ||
	    (m->size_bytes & (BLK_SECTOR - 1)))
		return 0;
	*under = m->dev;
	*start = m->runs[0].lba;
	return 1;
}

void ext_blk_init(struct ext_map *map, struct blk_dev *out)
{
	FS_MEMSET(out, 0, sizeof(*out));
	out->name = map->dev ? map->dev->name : "file";
	out->sectors = map->sectors;
	out->size_bytes = map->size_bytes;
	out->max_sectors = map->grow && map->max_bytes / BLK_SECTOR > map->sectors ? map->max_bytes / BLK_SECTOR
									: map->sectors;
	out->read_only = !map->dev || map->dev->read_only || !map->dev->write;
	out->read = ext_blk_read;
	out->write = ext_blk_write;
	out->flush = ext_blk_flush;
	out->write_zeroes = map->dev && map->dev->write_zeroes ? ext_blk_zeroes : NULL;
	out->linear = ext_blk_linear;
	out->priv = map;
}
