/* blk.h: the block-device interface every storage backend implements (ATA disk, host file, RAM). */
#ifndef BLK_H
#define BLK_H

#include <stdint.h>

#define BLK_SECTOR 512u

/* Status codes returned by every blk_dev operation (0 = success). */
enum blk_status {
	BLK_OK = 0,
	BLK_E_IO = 1,      /* device reported an error or timed out */
	BLK_E_RANGE = 2,   /* request past the end (or past max_sectors for a write) */
	BLK_E_RO = 3,      /* device is read-only */
	BLK_E_NOSPACE = 4, /* a write would grow the device past what it can hold */
};

/*
 * A device of 512-byte sectors. Reads past size_bytes inside the last
 * partial sector return zeros. Writes may grow a growable device (a host
 * file) up to max_sectors; a fixed device has max_sectors == sectors.
 */
struct blk_dev {
	const char *name;      /* for messages */
	uint64_t sectors;      /* current size in sectors, rounded up */
	uint64_t size_bytes;   /* exact size in bytes (a file may end mid-sector) */
	uint64_t max_sectors;  /* writes may extend the device up to here */
	int read_only;
	/* Read count sectors at lba into buf. */
	int (*read)(struct blk_dev *d, uint64_t lba, uint32_t count, void *buf);
	/* Write count sectors at lba from buf; grows sectors/size_bytes if allowed. */
	int (*write)(struct blk_dev *d, uint64_t lba, uint32_t count, const void *buf);
	/* Make every completed write durable. */
	int (*flush)(struct blk_dev *d);
	/* Optional (may be NULL): write count zero sectors at lba, faster than write(). */
	int (*write_zeroes)(struct blk_dev *d, uint64_t lba, uint64_t count);
	void *priv;            /* backend state */
};

#endif
