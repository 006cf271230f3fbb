/* extent.h: a FAT file's cluster chain as a list of contiguous runs, and a fixed-size blk_dev over them. */
#ifndef EXTENT_H
#define EXTENT_H

#include <stdint.h>
#include "../block/blk.h"
#include "fat.h"

/* Error codes of ext_build (ext_strerror). */
enum ext_err {
	EXT_OK = 0,
	EXT_E_BAD_ARG,
	EXT_E_IS_DIR,              /* the entry is a directory */
	EXT_E_CHAIN,               /* the cluster chain is damaged: map->fat_err says how */
	EXT_E_OVERFLOW,            /* more runs than the caller's array holds: map->needed says how many */
	EXT_E_FS,                  /* the file system refuses to serve this file: map->fat_err says why */
	EXT_E_COUNT
};

/* The message for an error code; never NULL. */
const char *ext_strerror(int err);
/* The stable short name of an error code ("overflow"...); never NULL. */
const char *ext_errname(int err);

/* One run: file sectors [file_sector, file_sector+sectors) live at lba.. on the volume's device. */
struct ext_run {
	uint32_t file_sector;
	uint32_t sectors;
	uint64_t lba;
};
_Static_assert(sizeof(struct ext_run) == 16, "ext_run is 16 bytes");

/* A file mapped to runs; the caller owns it and the runs array. */
struct ext_map {
	struct blk_dev *dev;       /* the volume's device (a partition view or a disk) */
	struct ext_run *runs;      /* sorted by file_sector, no gaps */
	uint32_t count;            /* runs in use (0 after EXT_E_OVERFLOW) */
	uint32_t cap;              /* runs the array holds */
	uint32_t needed;           /* runs the file needs (set even on EXT_E_OVERFLOW) */
	uint64_t size_bytes;       /* the file's exact size */
	uint32_t sectors;          /* sectors covering size_bytes */
	uint32_t alloc_sectors;    /* sectors of the clusters that hold the file */
	int chain_longer;          /* the chain goes on past the clusters the size needs (tolerated) */
	int fat_err;               /* with EXT_E_CHAIN or EXT_E_FS: the file system's error (fat_err, exfat_err) */
	/*
	 * Growth (NULL: the file can't grow; fs/grow.h sets it): make the file
	 * at least bytes long (clusters, runs, size in its directory entry,
	 * all on disk before it returns); a BLK_E_* status. Writes through
	 * ext_blk may then reach max_bytes.
	 */
	int (*grow)(void *ctx, struct ext_map *map, uint64_t bytes);
	void *grow_ctx;
	uint64_t max_bytes;        /* with grow: the largest size the file system allows this file */
};

/*
 * Start a mapping: *map zeroed, then dev, runs and cap set (what every
 * builder does first); EXT_E_IS_DIR if is_dir (nothing to map), else EXT_OK.
 */
int ext_map_begin(struct ext_map *map, struct blk_dev *dev, struct ext_run *runs, uint32_t cap, int is_dir);

/*
 * Append secs volume sectors at lba as the file's next sectors, from
 * file_sector, to map->runs: merged into the last run when it ends at
 * *run_end, else a new run (counted in map->needed even past map->cap,
 * stored only below it); *run_end becomes lba + secs.
 */
static inline void ext_append(struct ext_map *map, uint64_t *run_end, uint32_t file_sector, uint64_t lba, uint32_t secs)
{
	if (map->needed && lba == *run_end) {
		if (map->needed <= map->cap)
			map->runs[map->needed - 1].sectors += secs;
	} else {
		if (map->needed < map->cap) {
			map->runs[map->needed].file_sector = file_sector;
			map->runs[map->needed].sectors = secs;
			map->runs[map->needed].lba = lba;
		}
		map->needed++;
	}
	*run_end = lba + secs;
}

/*
 * 1 if two of map's first map->needed runs overlap on the volume (a chain
 * that loops back would make two parts of the file share sectors); O(n^2),
 * no memory. Also sets map->needed = 0 then.
 */
static inline int ext_overlap(struct ext_map *map)
{
	const struct ext_run *r = map->runs;
	for (uint32_t k = 0; k < map->needed; k++)
		for (uint32_t j = k + 1; j < map->needed; j++)
			if (r[k].lba < r[j].lba + r[j].sectors && r[j].lba < r[k].lba + r[k].sectors) {
				map->needed = 0;
				return 1;
			}
	return 0;
}

/*
 * End a mapping whose map->needed runs were appended: EXT_E_OVERFLOW past
 * map->cap; EXT_E_CHAIN with map->fat_err = loop_err (the file system's own
 * code) if two runs overlap; else map->count = map->needed and EXT_OK.
 */
int ext_map_end(struct ext_map *map, int loop_err);

/*
 * Walk f's cluster chain (only as far as its size needs, so it is bounded)
 * on v and merge physically contiguous clusters into runs[0..cap). A chain
 * that revisits a cluster (overlapping runs, O(n^2) check) is EXT_E_CHAIN
 * with fat_err FAT_E_CHAIN_LOOP.
 */
int ext_build(struct fat_vol *v, const struct fat_file *f, struct ext_map *map, struct ext_run *runs, uint32_t cap);

/* Index of the run holding file sector s (binary search), or -1 if s is past the file. */
int32_t ext_find(const struct ext_map *map, uint64_t s);

/*
 * Make *out a device over the mapped file (out->priv = map): sectors =
 * ceil(size/512), size_bytes exact, max_sectors = sectors (it can't grow)
 * or, with map->grow, max_bytes / 512. Reads past the size fail
 * BLK_E_RANGE; the bytes after the size in the last sector read as zeros.
 * Without map->grow writes land in the file's existing sectors only:
 * anything past its last sector fails BLK_E_NOSPACE. With it, a write past
 * the end first has map->grow extend the file (its status is the write's),
 * then out->sectors/size_bytes follow. read_only carries over; flush passes through.
 */
void ext_blk_init(struct ext_map *map, struct blk_dev *out);

#endif
