/* overlay.h: a RAM copy-on-write overlay over a struct blk_dev (mode=snapshot): writes stay in memory, reads see them first. */
#ifndef OVERLAY_H
#define OVERLAY_H

#include <stddef.h>
#include <stdint.h>
#include "../block/blk.h"

/*
 * The overlay keeps whole 512-byte sectors in a fixed pool (no heap: the
 * caller hands it one block of memory, overlay_bytes(capacity) long) and an
 * open-addressed hash table lba -> pool slot. The lower device is never
 * written or flushed through the overlay. A write that needs more free
 * slots than are left is refused whole with BLK_E_NOSPACE (nothing stored)
 * and reported through on_full.
 */
struct overlay {
	struct blk_dev blk;       /* what int13.c serves: same size as the lower device, writable */
	struct blk_dev *lower;    /* the image (read only through the overlay) */
	uint32_t capacity;        /* sectors the pool holds */
	uint32_t used;            /* sectors stored so far */
	uint32_t mask;            /* hash table entries - 1 (a power of two >= 2 * capacity) */
	uint32_t *keys;           /* lba + 1 per entry, 0 = empty (VHD sizes keep lba + 1 < 2^32) */
	uint32_t *slots;          /* pool slot per entry */
	uint8_t *pool;            /* capacity sectors */
	uint32_t refused;         /* writes refused because the pool was full */
	uint64_t lower_reads;     /* read requests passed to the lower device (tests, logs) */
	/* Optional: told about every refused write (the firmware logs it on COM1). */
	void (*on_full)(struct overlay *o, uint64_t lba, uint32_t count, uint32_t missing);
	char name[24];
};

/* Bytes of memory an overlay of capacity sectors needs (pool + table); 0 if capacity is 0 or too big. */
uint64_t overlay_bytes(uint32_t capacity);
/* Largest capacity (sectors) whose overlay_bytes() fits in bytes. */
uint32_t overlay_capacity_for(uint64_t bytes);
/*
 * Make o an overlay of capacity sectors over lower, using mem
 * (overlay_bytes(capacity) bytes, 4-byte aligned). Returns &o->blk, or NULL
 * if the arguments are unusable (lower larger than 2^32 - 2 sectors, no memory).
 */
struct blk_dev *overlay_init(struct overlay *o, struct blk_dev *lower, void *mem, uint32_t capacity,
			     const char *name);

#endif
