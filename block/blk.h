/* blk.h: the block-device interface every storage backend implements (ATA disk, host file, RAM, views), and the one range check and splitter in front of it. */
#ifndef BLK_H
#define BLK_H

#include <stdint.h>

#define BLK_SECTOR 512u

/* Status codes returned by every blk_dev operation (0 = success). */
enum blk_status {
	BLK_OK = 0,
	BLK_E_IO = 1,      /* device reported an error or timed out */
	BLK_E_RANGE = 2,   /* read past the end */
	BLK_E_RO = 3,      /* device is read-only */
	BLK_E_NOSPACE = 4, /* a write past max_sectors: the device cannot hold it */
};

/*
 * A device of 512-byte sectors. Reads past size_bytes inside the last
 * partial sector return zeros. Writes may grow a growable device (a host
 * file, a disk prefix) up to max_sectors; a fixed device has max_sectors
 * == sectors.
 *
 * Callers never call read/write/write_zeroes directly: blk_read,
 * blk_write and blk_write_zeroes check the range once and split by
 * max_count, so a backend's callbacks only ever see requests with
 * 0 < count <= max_count inside [0, sectors) (reads) or [0, max_sectors)
 * (writes) of a device that is not read_only.
 */
struct blk_dev {
	const char *name;      /* for messages */
	uint64_t sectors;      /* current size in sectors, rounded up */
	uint64_t size_bytes;   /* exact size in bytes (a file may end mid-sector) */
	uint64_t max_sectors;  /* writes may extend the device up to here */
	uint32_t max_count;    /* most sectors one read/write callback takes (0: no limit) */
	int read_only;
	/* Read count sectors at lba into buf. */
	int (*read)(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf);
	/* Write count sectors at lba from buf (NULL: read-only); grows sectors/size_bytes if allowed. */
	int (*write)(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf);
	/* Make every completed write durable (NULL: nothing to do). */
	int (*flush)(struct blk_dev *d);
	/* Optional (may be NULL): write count zero sectors at lba, faster than write(). */
	int (*write_zeroes)(struct blk_dev *d, uint64_t lba, uint64_t count);
	/*
	 * Optional (may be NULL): when sector lba of d is sector *start + lba of
	 * *under for every lba < sectors, unchanged (a window, a fixed image's
	 * data), fill both and return 1; else 0. Lets a caller hand a request to
	 * the device below as it is (kernel/resident.c: the real-mode fast path).
	 */
	int (*linear)(const struct blk_dev *d, struct blk_dev **under, uint64_t *start);
	/*
	 * Optional (may be NULL): when sectors [*lo, *hi) around lba of d are
	 * sectors *start + s of *under, unchanged, for as long as d stays open
	 * (a dynamic image's fully written block), fill them and return 1; else
	 * 0. May read (a bitmap). kernel/resident.c: the fast path's window.
	 */
	int (*window)(struct blk_dev *d, uint64_t lba, struct blk_dev **under, uint64_t *start, uint64_t *lo,
		      uint64_t *hi);
	uint32_t window_unit;  /* with window: its windows are whole aligned blocks of this many sectors (a power of two) */
	void *priv;            /* backend state */
	/* Counted by blk_read (statistics for the boot log; never reset): requests and sectors read. */
	uint64_t read_reqs, read_sectors;
	/* Sectors a write past the end skips over read as zeros afterwards (a regular file: POSIX); 0 unknown. */
	int zero_extend;
};

/* Nonzero when [lba, lba + count) does not fit in [0, limit): the one range test (overflow-safe). */
static inline int blk_out_of_range(uint64_t lba, uint64_t count, uint64_t limit)
{
	return lba > limit || count > limit - lba;
}

/* Read count sectors at lba: BLK_E_RANGE past d->sectors; split by d->max_count; counted in d->read_reqs/read_sectors. */
int blk_read(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf);
/* Write count sectors at lba: BLK_E_RO on a read-only device, BLK_E_NOSPACE past d->max_sectors; split by d->max_count. */
int blk_write(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf);
/* Zero count sectors at lba with d->write_zeroes (same checks as blk_write); BLK_E_IO if the device has none. */
int blk_write_zeroes(struct blk_dev *d, uint64_t lba, uint64_t count);
/* Make completed writes durable (BLK_OK when the device has no flush). */
int blk_flush(struct blk_dev *d);
/* Nonzero when d can write zeroes without a buffer (blk_write_zeroes is usable). */
static inline int blk_has_write_zeroes(const struct blk_dev *d)
{
	return d->write_zeroes != 0;
}

/*
 * The device at the bottom of d's chain of linear views (blk_dev.linear),
 * with *start = where d's sector 0 lies on it; d itself (start 0) when d
 * is no view. Every level is checked to hold d's sectors.
 */
struct blk_dev *blk_linear_bottom(struct blk_dev *d, uint64_t *start);

/*
 * A window onto another device: a partition, or a prefix of a disk that
 * may grow up to the disk's end (a dynamic VHD dd'ed to a larger disk).
 * Flushes are passed on only after a write through the window.
 */
struct blk_window {
	struct blk_dev dev;       /* the window (dev.priv = this) */
	struct blk_dev *under;    /* the device below */
	uint64_t start;           /* first sector of the window on under */
	int dirty;                /* writes since the last flush */
};

/*
 * Make w->dev the sectors [start, start + sectors) of under, writable up
 * to start + max_sectors (max_sectors >= sectors; a write past sectors
 * grows the window). Returns &w->dev, or NULL when the window does not
 * fit on under.
 */
struct blk_dev *blk_window_init(struct blk_window *w, struct blk_dev *under, uint64_t start,
				uint64_t sectors, uint64_t max_sectors, const char *name);

#endif
