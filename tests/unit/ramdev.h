/* ramdev.h: the unit tests' one RAM block device (fixed, sparse, growing or pattern-only), with call counters and fault injection. */
#ifndef TESTS_UNIT_RAMDEV_H
#define TESTS_UNIT_RAMDEV_H

#include <stdint.h>
#include "../../block/blk.h"

enum {
	RAMDEV_ZEROES = 1,   /* offer blk.write_zeroes (without it, callers must write zeros themselves) */
	RAMDEV_GROW = 2,     /* writes extend data and the device up to blk.max_sectors, else BLK_E_NOSPACE */
};

struct ramdev {
	struct blk_dev blk;  /* blk.priv points back here */
	uint8_t *data;       /* backing store, owned (ramdev_free) */
	uint64_t cap;        /* bytes in data; bytes past min(cap, blk.size_bytes) read as fill() or zeros */
	unsigned flags;      /* RAMDEV_* */
	/* The content of a sector that is not backed (NULL: zeros); int13's LBA pattern. */
	void (*fill)(uint64_t lba, uint8_t *sector);
	/* Fault injection: each makes the callbacks fail (after being counted). */
	int fail_io;         /* every read, write, flush and write_zeroes: BLK_E_IO */
	int fail_reads;      /* reads: BLK_E_IO */
	uint8_t fail_status; /* nonzero: a failed read notes it first (disk_note_status), as the BIOS backend does */
	int nospace;         /* writes and write_zeroes: BLK_E_NOSPACE */
	int drop_writes;     /* writes and write_zeroes: BLK_OK, nothing stored */
	long writes_left;    /* -1: no limit; else a power cut once it reaches 0: writes and flushes BLK_E_IO */
	/* Counters. */
	int reads, writes, zeroes, flushes;  /* callbacks received, failed or not */
	int stored;          /* writes and write_zeroes that changed data */
	uint32_t max_seen;   /* largest count a read or write callback got */
	uint64_t last_lba;   /* of the last read or write */
	uint64_t bad;        /* callbacks with count 0 or outside the device: the layer above should never send them */
};

/* A device of sectors sectors (also max_sectors), the first cap_sectors backed by zeroed memory; flags RAMDEV_ZEROES.
 * cap_sectors 0: nothing backed (reads give fill(), writes fail with BLK_E_IO). */
struct ramdev *ramdev_new(uint64_t sectors, uint64_t cap_sectors, unsigned flags);
/* An empty device (0 sectors) that writes grow up to max_sectors, as a file does (RAMDEV_GROW | flags). */
struct ramdev *ramdev_growing(uint64_t max_sectors, unsigned flags);
/* A copy of r's bytes, size and options with fresh counters (a "disk after power loss"). */
struct ramdev *ramdev_clone(const struct ramdev *r);
/* Cut the device to bytes (a file may end mid-sector); the data past it stays in memory but reads as zeros. */
void ramdev_truncate(struct ramdev *r, uint64_t bytes);
/* Free r and its data; NULL is allowed. */
void ramdev_free(struct ramdev *r);

#endif
